//! The risk engine's windows rebuilt from the journal at start. The engine keeps them in
//! memory only (the hot path reads no store), so without this a restart would make every card
//! "new" and forget every velocity, card-testing and PIN-failure count. Each journal row of a
//! purchase names the directory's card id (`card_id`), and the rows of the engine's longest
//! window are replayed, oldest first, as the live path remembered them.

use store::{Store, StoreError};

/// Journal rows read per page while replaying.
pub const REPLAY_PAGE_ROWS: i64 = 10_000;

/// Replays the journal's purchases of the last [`risk::Engine::retention_secs`] before
/// `now_ms` into `engine`; returns how many rows it replayed.
pub async fn replay_risk(
    store: &Store,
    engine: &risk::Engine,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let since_micros = now_ms
        .saturating_sub(engine.retention_secs().saturating_mul(1000))
        .saturating_mul(1000);
    let mut after_id = 0;
    let mut replayed = 0;
    loop {
        let page = store
            .journal_with_cards(since_micros, after_id, REPLAY_PAGE_ROWS)
            .await?;
        let Some((last, _)) = page.last() else {
            return Ok(replayed);
        };
        after_id = *last;
        for (_, entry) in &page {
            if replay_one(engine, entry) {
                replayed += 1;
            }
        }
    }
}

/// One row, as the live path saw it; `false` for a row the engine never evaluated.
fn replay_one(engine: &risk::Engine, entry: &store::journal::JournalEntry) -> bool {
    let kind = match entry.kind.as_str() {
        "Sale" => risk::Kind::Sale,
        "PreAuthorization" => risk::Kind::PreAuthorization,
        "BalanceInquiry" => risk::Kind::BalanceInquiry,
        // Refunds and voids are evaluated but not remembered.
        _ => return false,
    };
    let (Some(card), Some(response)) = (&entry.card_id, &entry.response) else {
        return false;
    };
    // A frozen authorization is declined before the rules see it.
    if entry
        .risk
        .as_deref()
        .is_some_and(|note| note.starts_with("frozen "))
    {
        return false;
    }
    let amount_minor = entry.amount_minor.unwrap_or(0);
    let authorization = risk::Authorization {
        kind,
        card,
        terminal: &entry.terminal_id,
        merchant: &entry.merchant_id,
        amount_minor,
        // What only the rules read (not the windows): any values do.
        currency: money::Currency::CNY,
        card_currency: money::Currency::CNY,
        mcc: 0,
        entry: risk::Entry::Chip,
        chip_card: true,
    };
    let outcome = risk::Outcome {
        kind,
        card,
        terminal: &entry.terminal_id,
        merchant: &entry.merchant_id,
        amount_minor,
        approved: response == "00",
        wrong_pin: response == "55",
    };
    engine.replay(&authorization, &outcome, entry.received_at / 1000);
    true
}
