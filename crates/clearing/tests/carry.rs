#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What a cycle leaves to later ones, and a chargeback that does not match its dispute. A merchant whose refunds exceed its sales in a cycle is
//! not paid, and what it owes is carried to the next cycles: taken from its next positive net
//! before anything is paid. A break resolved by an operator's adjustment is settled with the
//! merchant's next cycle the same way. Past business dates are forged straight into the journal
//! and the ledger, as the host would have written them; each is settled, then checked again
//! with `--rerun`. On SQLite, and on PostgreSQL when `EASYPOS_TEST_DATABASE_URL` is set.

use clearing::cycle::{CycleRule, parse_date};
use clearing::{Request, Settings, Status};
use ledger::TransferRequest;
use money::{Amount, Currency};
use store::Store;

const SHANGHAI: &str = "898310058120001";
const TERMINAL: &str = "10000001";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn payable() -> ledger::AccountId {
    demo::account_id("merchant/898310058120001")
}

fn pool() -> ledger::AccountId {
    acquirer::chart::acquirer_due_from_issuers(demo::ACQUIRER, Currency::CNY)
}

fn debit_card() -> String {
    demo::cards()
        .into_iter()
        .find(|card| card.card.id == "card-CH001-D")
        .unwrap()
        .card
        .masked_pan()
}

/// An approved sale journaled an hour into `date`'s cycle, with the acquirer's transfer.
async fn sale(store: &Store, date: &str, batch: u32, stan: u32, minor: i64) {
    let key = acquirer::effects::BusinessKey {
        terminal_id: TERMINAL.into(),
        batch,
        stan,
    };
    let posted = store
        .submit(vec![TransferRequest::posted(
            key.transfer_id("sale/acquirer"),
            pool(),
            payable(),
            Amount::new(minor, Currency::CNY),
        )])
        .await
        .unwrap();
    assert!(posted[0].is_ok(), "{posted:?}");
    journal(store, date, "0200", "Sale", batch, stan, None, minor).await;
}

/// An approved terminal refund (stan) of the sale (batch, `original`) in `date`'s cycle.
async fn refund(store: &Store, date: &str, batch: u32, stan: u32, original: u32, minor: i64) {
    let key = acquirer::effects::BusinessKey {
        terminal_id: TERMINAL.into(),
        batch,
        stan: original,
    };
    let posted = store
        .submit(vec![
            TransferRequest::posted(
                key.transfer_id("undo/acquirer"),
                payable(),
                pool(),
                Amount::new(minor, Currency::CNY),
            )
            .code(25)
            .user_data(u128::from(stan)),
        ])
        .await
        .unwrap();
    assert!(posted[0].is_ok(), "{posted:?}");
    journal(
        store,
        date,
        "0220",
        "Refund",
        batch,
        stan,
        Some(original),
        minor,
    )
    .await;
}

#[allow(clippy::too_many_arguments)] // a journal row's facts
async fn journal(
    store: &Store,
    date: &str,
    mti: &str,
    kind: &str,
    batch: u32,
    stan: u32,
    original: Option<u32>,
    minor: i64,
) {
    let window = CycleRule::default().window(parse_date(date).unwrap());
    store
        .journal(vec![store::journal::JournalEntry {
            received_at: window.start_us + 3_600_000_000 + i64::from(stan),
            terminal_id: TERMINAL.into(),
            merchant_id: SHANGHAI.into(),
            mti: mti.into(),
            kind: kind.into(),
            batch: Some(i64::from(batch)),
            stan: Some(i64::from(stan)),
            original_batch: original.map(|_| i64::from(batch)),
            original_stan: original.map(i64::from),
            amount_minor: Some(minor),
            currency: Some(156),
            card: Some(debit_card()),
            response: Some("00".into()),
            ..Default::default()
        }])
        .await
        .unwrap();
}

async fn balance(store: &Store, account: ledger::AccountId) -> i64 {
    let account = store.account(account).await.unwrap().unwrap();
    account.credits_posted - account.debits_posted
}

async fn settle(store: &Store, date: &str, rerun: bool) -> clearing::Outcome {
    let settings = Settings::parse(clearing::schedule::DEFAULT).unwrap();
    clearing::run(
        store,
        &settings,
        &Request {
            date: parse_date(date).unwrap(),
            now_unix_seconds: now(),
            rerun,
        },
        &mut |_| {},
    )
    .await
    .unwrap()
}

async fn a_negative_net_is_carried_forward(backend: store::testing::TestBackend) {
    let name = backend.name;
    let store = Store::open(&backend.backend).await.unwrap();
    demo::seed(&store, &hsm::SoftHsm::new(&[0x42; 32]).unwrap())
        .await
        .unwrap();
    let owed = clearing::chart::due_from_merchant(demo::ACQUIRER, SHANGHAI, Currency::CNY);
    // Day 1: a sale of 6 000 (settled, paid). Day 2: a sale of 1 000 and the first sale
    // refunded in full. Day 3: a sale of 20 000.
    sale(&store, "2026-11-10", 1, 1, 6_000).await;
    sale(&store, "2026-11-11", 2, 1, 1_000).await;
    refund(&store, "2026-11-11", 1, 2, 1, 6_000).await;

    let first = settle(&store, "2026-11-10", false).await;
    // Debit at MCC 5814: 50 bp. 6 000 − 30.
    assert_eq!(
        first.settlement.merchants[0].payout.minor(),
        5_970,
        "{name}"
    );

    let second = settle(&store, "2026-11-11", false).await;
    let merchant = &second.settlement.merchants[0];
    // 1 000 − 6 000 − 5 (the refund keeps its fee) = −5 005: nothing paid, all carried.
    assert_eq!(
        (
            merchant.net.minor(),
            merchant.carried_in.minor(),
            merchant.payout.minor(),
            merchant.carried_out.minor()
        ),
        (-5_005, 0, 0, 5_005),
        "{name}"
    );
    assert_eq!(
        balance(&store, payable()).await,
        0,
        "{name}: the debt left the settlement account"
    );
    assert_eq!(
        balance(&store, owed).await,
        -5_005,
        "{name}: owed by the merchant"
    );

    sale(&store, "2026-11-12", 3, 1, 20_000).await;
    let third = settle(&store, "2026-11-12", false).await;
    let merchant = &third.settlement.merchants[0];
    // 20 000 − 100 = 19 900, of which 5 005 pays the debt back.
    assert_eq!(
        (
            merchant.net.minor(),
            merchant.carried_in.minor(),
            merchant.payout.minor(),
            merchant.carried_out.minor()
        ),
        (19_900, 5_005, 14_895, 0),
        "{name}"
    );
    assert_eq!(third.record.carried_in.len(), 1, "the record keeps it");
    assert_eq!(balance(&store, owed).await, 0, "{name}: paid back");
    assert_eq!(balance(&store, payable()).await, 0, "{name}");
    let statement = &clearing::report::statements(&CycleRule::default(), &third.settlement)[0].2;
    assert!(
        statement
            .lines()
            .last()
            .unwrap()
            .ends_with(",19900,5005,0,14895"),
        "{statement}"
    );
    store.check_books().await.unwrap();

    // Each cycle checked again after the later ones moved the debt: nothing differs, nothing
    // is posted.
    let transfers = store.all_transfers().await.unwrap().len();
    for date in ["2026-11-10", "2026-11-11", "2026-11-12"] {
        let again = settle(&store, date, true).await;
        assert_eq!(
            again.status,
            Status::Rerun {
                differences: Vec::new()
            },
            "{name}: {date}"
        );
    }
    assert_eq!(store.all_transfers().await.unwrap().len(), transfers);
    store.close().await.unwrap();
}

async fn a_break_is_resolved_by_an_adjustment(backend: store::testing::TestBackend) {
    use clearing::adjust::{AdjustRequest, adjust};
    let name = backend.name;
    let store = Store::open(&backend.backend).await.unwrap();
    demo::seed(&store, &hsm::SoftHsm::new(&[0x42; 32]).unwrap())
        .await
        .unwrap();
    let settings = Settings::parse(clearing::schedule::DEFAULT).unwrap();
    // The cycle that holds this moment: a sale, and a sale's transfer whose journal row was
    // lost (made by no message; the ledger dates it now).
    let date = CycleRule::default().date_of(now());
    let window = CycleRule::default().window(date);
    let today = clearing::cycle::format_date(date);
    sale(&store, &today, 1, 1, 1_000).await;
    let stray = acquirer::effects::BusinessKey {
        terminal_id: TERMINAL.into(),
        batch: 1,
        stan: 5,
    }
    .transfer_id("sale/acquirer");
    let posted = store
        .submit(vec![TransferRequest::posted(
            stray,
            pool(),
            payable(),
            Amount::new(700, Currency::CNY),
        )])
        .await
        .unwrap();
    assert!(posted[0].is_ok());
    let reference = format!("{:032x}", stray.0);
    let request = AdjustRequest {
        date,
        reference: reference.clone(),
        amount_minor: None,
        reason: "the terminal's paper slip of trace 5 was found: pay it".into(),
        operator: "ops.lee".into(),
        now_unix_seconds: now(),
    };
    // Not before the cycle is closed.
    assert!(matches!(
        adjust(&store, &settings, &request).await,
        Err(clearing::ClearingError::Adjustment(_))
    ));
    let after_cut_off = window.end_us / 1_000_000 + 1;
    let run = |rerun| Request {
        date,
        now_unix_seconds: after_cut_off,
        rerun,
    };
    let settled = clearing::run(&store, &settings, &run(false), &mut |_| {})
        .await
        .unwrap();
    let breaks = &settled.settlement.breaks;
    assert_eq!(breaks.len(), 1, "{name}: {breaks:?}");
    assert_eq!(breaks[0].reference(), reference);
    assert_eq!(breaks[0].merchant_id.as_deref(), Some(SHANGHAI));
    assert!(breaks[0].resolution.is_none());
    assert!(
        clearing::report::reconciliation(&settled.settlement).contains(",open,"),
        "{name}"
    );
    // The paid sale leaves the payable at the stray 700, which nobody was paid.
    assert_eq!(balance(&store, payable()).await, 700, "{name}");

    // Refusals post nothing.
    let transfers = store.all_transfers().await.unwrap().len();
    for (bad, why) in [
        (
            AdjustRequest {
                reason: "  ".into(),
                ..request.clone()
            },
            "no reason",
        ),
        (
            AdjustRequest {
                reference: format!("{:032x}", 42),
                ..request.clone()
            },
            "no such break",
        ),
        (
            AdjustRequest {
                operator: String::new(),
                ..request.clone()
            },
            "no operator",
        ),
    ] {
        assert!(
            matches!(
                adjust(&store, &settings, &bad).await,
                Err(clearing::ClearingError::Adjustment(_))
            ),
            "{name}: {why}"
        );
    }
    assert_eq!(store.all_transfers().await.unwrap().len(), transfers);

    // Adjusted: the 700 leaves the payable for what is owed to the merchant; twice posts once.
    let (adjustment, now_posted) = adjust(&store, &settings, &request).await.unwrap();
    assert!(now_posted, "{name}");
    assert_eq!(
        (adjustment.amount_minor, adjustment.against.as_str()),
        (700, "settlement")
    );
    let owed = clearing::chart::due_from_merchant(demo::ACQUIRER, SHANGHAI, Currency::CNY);
    assert_eq!(
        balance(&store, owed).await,
        700,
        "{name}: owed to the merchant"
    );
    assert_eq!(balance(&store, payable()).await, 0);
    let (again, now_posted) = adjust(&store, &settings, &request).await.unwrap();
    assert!(!now_posted && again == adjustment, "{name}");
    let changed = AdjustRequest {
        amount_minor: Some(500),
        ..request.clone()
    };
    assert!(matches!(
        adjust(&store, &settings, &changed).await,
        Err(clearing::ClearingError::Adjustment(_))
    ));
    assert_eq!(store.all_transfers().await.unwrap().len(), transfers + 1);
    let audit = store
        .audit_entries(store::audit::AuditQuery {
            action_prefix: Some("settlement.".into()),
            ..store::audit::AuditQuery::page(0, 10)
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "{name}: audited once");
    assert_eq!(audit[0].actor, "ops.lee");
    assert_eq!(audit[0].tenant, format!("merchant:{SHANGHAI}"));
    assert!(
        audit[0].detail.contains("paper slip"),
        "{}",
        audit[0].detail
    );

    // The rerun reports it resolved and finds nothing else changed.
    let rerun = clearing::run(&store, &settings, &run(true), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        rerun.status,
        Status::Rerun {
            differences: Vec::new()
        },
        "{name}"
    );
    let report = clearing::report::reconciliation(&rerun.settlement);
    assert!(
        report.contains(&format!(
            ",resolved,{},700,the terminal's paper slip of trace 5 was found: pay it (ops.lee)",
            adjustment.transfer
        )),
        "{name}: {report}"
    );

    // The merchant's next cycle pays it with its own takings: 2 000 − 10 MDR + 700.
    let next = CycleRule::default().date_of(window.end_us / 1_000_000 + 1);
    sale(&store, &clearing::cycle::format_date(next), 2, 1, 2_000).await;
    let next_outcome = clearing::run(
        &store,
        &settings,
        &Request {
            date: next,
            now_unix_seconds: CycleRule::default().window(next).end_us / 1_000_000 + 1,
            rerun: false,
        },
        &mut |_| {},
    )
    .await
    .unwrap();
    let merchant = &next_outcome.settlement.merchants[0];
    assert_eq!(
        (
            merchant.net.minor(),
            merchant.carried_in.minor(),
            merchant.payout.minor(),
            merchant.carried_out.minor()
        ),
        (1_990, -700, 2_690, 0),
        "{name}"
    );
    assert_eq!(balance(&store, owed).await, 0, "{name}: settled");
    store.check_books().await.unwrap();
    store.close().await.unwrap();
}

/// A chargeback whose transfer does not match its dispute is a break, not a figure.
async fn a_chargeback_unlike_its_dispute_is_a_break(backend: store::testing::TestBackend) {
    let name = backend.name;
    let store = Store::open(&backend.backend).await.unwrap();
    demo::seed(&store, &hsm::SoftHsm::new(&[0x42; 32]).unwrap())
        .await
        .unwrap();
    let date = CycleRule::default().date_of(now());
    let today = clearing::cycle::format_date(date);
    sale(&store, &today, 1, 1, 5_000).await;
    let sale_row = store
        .transactions(&store::accounts::TransactionFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .find(|row| row.kind == "Sale")
        .unwrap();
    store
        .put_dispute(store::disputes::Dispute {
            id: "dp_0000000000000001".into(),
            transaction_id: sale_row.id,
            merchant_id: SHANGHAI.into(),
            card_id: "card-CH001-D".into(),
            amount_minor: 5_000,
            currency: 156,
            reason: "not_recognised".into(),
            description: "not me".into(),
            status: "charged_back".into(),
            opened_by: "cardholder".into(),
            opened_at: now(),
            reviewed_by: "bank".into(),
            reviewed_at: Some(now()),
            ..Default::default()
        })
        .await
        .unwrap();
    // The ledger moved 4 000, not the 5 000 disputed.
    let chargeback = acquirer::effects::BusinessKey {
        terminal_id: TERMINAL.into(),
        batch: 1,
        stan: 1,
    }
    .transfer_id("chargeback/acquirer");
    let posted = store
        .submit(vec![
            TransferRequest::posted(
                chargeback,
                payable(),
                pool(),
                Amount::new(4_000, Currency::CNY),
            )
            .code(40),
        ])
        .await
        .unwrap();
    assert!(posted[0].is_ok());
    let settings = Settings::parse(clearing::schedule::DEFAULT).unwrap();
    let outcome = clearing::run(
        &store,
        &settings,
        &Request {
            date,
            now_unix_seconds: CycleRule::default().window(date).end_us / 1_000_000 + 1,
            rerun: false,
        },
        &mut |_| {},
    )
    .await
    .unwrap();
    let breaks = &outcome.settlement.breaks;
    assert_eq!(breaks.len(), 1, "{name}: {breaks:?}");
    assert_eq!(
        (
            breaks[0].kind,
            breaks[0].transfer,
            breaks[0].message_kind.as_str()
        ),
        (
            clearing::BreakKind::AmountDiffers,
            Some(chargeback),
            "Chargeback"
        ),
        "{name}"
    );
    let merchant = &outcome.settlement.merchants[0];
    assert_eq!(
        (merchant.chargebacks.minor(), merchant.gross.minor()),
        (0, 5_000),
        "{name}: left out of the figures"
    );
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chargeback_unlike_its_dispute_is_a_break_on_sqlite() {
    a_chargeback_unlike_its_dispute_is_a_break(store::testing::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chargeback_unlike_its_dispute_is_a_break_on_postgres() {
    if let Some(url) = store::testing::postgres_url() {
        a_chargeback_unlike_its_dispute_is_a_break(store::testing::postgres(&url).await).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_break_is_resolved_by_an_adjustment_on_sqlite() {
    a_break_is_resolved_by_an_adjustment(store::testing::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_break_is_resolved_by_an_adjustment_on_postgres() {
    if let Some(url) = store::testing::postgres_url() {
        a_break_is_resolved_by_an_adjustment(store::testing::postgres(&url).await).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negative_net_is_carried_forward_on_sqlite() {
    a_negative_net_is_carried_forward(store::testing::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negative_net_is_carried_forward_on_postgres() {
    if let Some(url) = store::testing::postgres_url() {
        a_negative_net_is_carried_forward(store::testing::postgres(&url).await).await;
    }
}
