//! Reading a cycle: the journal's approved messages that move a merchant's money, each
//! matched with the acquirer's transfer it made (found by the id the host derived from the
//! message's business key, `acquirer::effects::BusinessKey`), and the breaks between the two.
//!
//! | journal message | acquirer transfer (key, purpose) | effect |
//! |---|---|---|
//! | sale | own key, `sale/acquirer` | purchase |
//! | completion | pre-authorization's key, `completion/acquirer` | purchase |
//! | sale void | sale's key, `undo/acquirer` (code 23) | cancel |
//! | refund | sale's key, `undo/acquirer` (code 25) | refund |
//! | completion void | pre-authorization's key, `completion-void/acquirer` | cancel |
//! | reversal of a sale | sale's key, `reversal/acquirer` | cancel |
//! | reversal of a completion | pre-authorization's key, `completion-reversal/acquirer` | cancel |
//! | reversal of a void | sale's key, `undo-reversal/acquirer` | purchase |
//! | reversal of a refund | sale's key, `undo-reversal/acquirer` | refund reversed |
//! | reversal of a completion void | pre-authorization's key, `completion-void-reversal/acquirer` | purchase |
//!
//! The follow-ups' purposes are their first slot's: a follow-up posted after an earlier one of
//! the same original was reversed is in a later slot (`undo#1/acquirer`, and its reversal
//! `undo-reversal#1/acquirer`; `acquirer::effects::in_slot`), found by its trace number.
//!
//! Pre-authorizations and their voids only hold money in the issuer's books, and inquiries
//! move nothing: neither reaches a merchant. A message belongs to the cycle its journal row
//! was received in.

use crate::cycle::Window;
use crate::{ClearingError, Progress};
use acquirer::effects::{BusinessKey, FOLLOW_UP_SLOTS, in_slot};
use ledger::{AccountId, InstitutionId, Transfer, TransferId};
use money::{Amount, Currency};
use std::collections::{BTreeMap, HashMap, HashSet};
use store::Store;
use store::accounts::{
    MAX_TRANSACTIONS_PER_READ, TransactionFilter, TransactionRecord, TransactionStatus,
};
use store::directory::{CardProduct, Directory, InstitutionKind};
use store::journal::JournalEntry;

/// Journal rows one cycle may hold. A day beyond it needs a streaming run (not written yet);
/// until then it is refused rather than exhausting memory.
pub const MAX_ROWS_PER_CYCLE: usize = 2_000_000;

/// Transfers on the acquirer's "due from issuers" accounts one cycle may hold (each approved
/// message makes at most one, and end of day's own postings a few per counterparty).
pub const MAX_TRANSFERS_PER_CYCLE: u32 = 4_000_000;

/// Journal rows read on each side of the cycle to match transfers near the cut-off: a message
/// is journaled after its transfer commits, within the host's answer deadline
/// (`acquirer::ANSWER_WITHIN`, 15 s); five minutes leaves room for a slow journal write.
const BOUNDARY_MARGIN_US: i64 = 5 * 60 * 1_000_000;

/// What a message did to its merchant's takings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Effect {
    /// A sale or completion (or a void of one, undone by a reversal): adds to the gross.
    Purchase,
    /// A void, or a reversal of a purchase: takes from the gross.
    Cancel,
    /// Money given back to the card.
    Refund,
    /// A refund undone by its reversal.
    RefundReversed,
    /// A chargeback: the card's issuer took the money back from the merchant
    /// (`aftersale::disputes`).
    Chargeback,
    /// A chargeback reversed by a decision for the merchant.
    ChargebackReversed,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Purchase => "purchase",
            Effect::Cancel => "cancel",
            Effect::Refund => "refund",
            Effect::RefundReversed => "refund_reversed",
            Effect::Chargeback => "chargeback",
            Effect::ChargebackReversed => "chargeback_reversed",
        }
    }
}

/// One approved message of the cycle and the transfer it made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub journal_id: i64,
    pub received_at_us: i64,
    /// The journal's message type (`Sale`, `Reversal` …).
    pub kind: String,
    /// For a reversal, the type of the message it reversed.
    pub reverses: Option<String>,
    pub effect: Effect,
    pub terminal_id: String,
    pub merchant_id: String,
    pub batch: i64,
    pub stan: i64,
    pub rrn: Option<String>,
    /// Masked: at most the first six and last four digits.
    pub card: String,
    pub issuer: InstitutionId,
    pub product: crate::schedule::Product,
    pub mcc: String,
    /// Always positive; [`Item::gross`] and [`Item::refunds`] give it its sign.
    pub amount: Amount,
    pub transfer: TransferId,
}

impl Item {
    /// What the item adds to (or, negative, takes from) the gross.
    pub fn gross(&self) -> Amount {
        match self.effect {
            Effect::Purchase => self.amount,
            Effect::Cancel => Amount::new(-self.amount.minor(), self.amount.currency()),
            Effect::Refund
            | Effect::RefundReversed
            | Effect::Chargeback
            | Effect::ChargebackReversed => Amount::zero(self.amount.currency()),
        }
    }

    pub fn refunds(&self) -> Amount {
        match self.effect {
            Effect::Refund => self.amount,
            Effect::RefundReversed => Amount::new(-self.amount.minor(), self.amount.currency()),
            _ => Amount::zero(self.amount.currency()),
        }
    }

    /// What the item adds to (or, reversed, takes from) the chargebacks.
    pub fn chargebacks(&self) -> Amount {
        match self.effect {
            Effect::Chargeback => self.amount,
            Effect::ChargebackReversed => Amount::new(-self.amount.minor(), self.amount.currency()),
            _ => Amount::zero(self.amount.currency()),
        }
    }
}

/// The kinds of disagreement between journal and ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BreakKind {
    /// An approved message with no transfer where its id says.
    NotInLedger,
    /// A transfer of the cycle that no journaled message made.
    NotInJournal,
    /// The transfer's amount or currency differs from the journal's.
    AmountDiffers,
    /// The transfer moved another merchant's account than the journal's merchant's.
    WrongAccount,
    /// The transfer was made by another message (another trace number) than the journal's.
    OtherMessage,
}

impl BreakKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakKind::NotInLedger => "approved_not_in_ledger",
            BreakKind::NotInJournal => "transfer_not_in_journal",
            BreakKind::AmountDiffers => "amount_differs",
            BreakKind::WrongAccount => "wrong_account",
            BreakKind::OtherMessage => "made_by_another_message",
        }
    }
}

/// A break: left out of the cycle's figures and listed for operations to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Break {
    pub kind: BreakKind,
    /// The merchant whose money the break is about, when known (for a transfer made by no
    /// message: the merchant whose settlement account it moved).
    pub merchant_id: Option<String>,
    pub journal_id: Option<i64>,
    pub transfer: Option<TransferId>,
    pub terminal_id: String,
    pub batch: Option<i64>,
    pub stan: Option<i64>,
    pub message_kind: String,
    pub amount: Option<Amount>,
    pub detail: String,
    /// The operator's adjustment that resolved it, if any (`crate::adjust`).
    pub resolution: Option<crate::adjust::Adjustment>,
}

impl Break {
    /// How an operator names the break: its transfer id (32 hex digits), else
    /// `journal:<id>`.
    pub fn reference(&self) -> String {
        match (self.transfer, self.journal_id) {
            (Some(transfer), _) => format!("{:032x}", transfer.0),
            (None, Some(id)) => format!("journal:{id}"),
            (None, None) => String::new(),
        }
    }
}

/// A cycle as read: its items, breaks, and who the acquirer is.
#[derive(Clone, Debug)]
pub struct Day {
    pub acquirer: InstitutionId,
    pub items: Vec<Item>,
    pub breaks: Vec<Break>,
}

/// The codes of end of day's own postings, which touch "due from issuers" but come from no
/// terminal message.
pub(crate) fn is_clearing_code(code: u16) -> bool {
    (crate::post::CODE_CLEARING..=crate::adjust::CODE_ADJUSTMENT).contains(&code)
}

/// Where a message's acquirer transfer is, and what it does.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Expected {
    transfer: TransferId,
    effect: Effect,
    reverses: Option<String>,
    /// The trace number the transfer carries in its user data (follow-ups and reversals).
    user_data: Option<u128>,
    /// For a reversal: the reversed message's own transfer, to tell "nothing was posted to
    /// undo" from a missing reversal.
    reversed: Option<TransferId>,
    /// For a reversal: the reversed message's card (a reversal carries none).
    card: Option<String>,
}

pub(crate) async fn collect(
    store: &Store,
    directory: &Directory,
    window: Window,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Day, ClearingError> {
    let acquirers: Vec<_> = directory
        .institutions
        .iter()
        .filter(|institution| institution.kind == InstitutionKind::Acquirer)
        .collect();
    let [acquirer] = acquirers.as_slice() else {
        return Err(ClearingError::Acquirer(acquirers.len()));
    };
    let acquirer = acquirer.id;
    let rows = read_journal(store, window, progress).await?;
    let lookup = Lookup::new(directory);
    let mut items = Vec::new();
    let mut breaks = Vec::new();
    let mut journaled: HashSet<TransferId> = HashSet::new();
    let total = rows.len();
    for (done, row) in rows.iter().enumerate() {
        if done % 1_000 == 0 {
            progress(Progress::Matching { done, total });
        }
        let Some(expected) = expected(store, acquirer, row).await? else {
            continue;
        };
        journaled.insert(expected.transfer);
        if !window.contains(row.received_at) {
            continue;
        }
        match matched(store, acquirer, &lookup, row, &expected).await? {
            Matched::Item(item) => items.push(*item),
            Matched::Break(found) => breaks.push(*found),
            Matched::Nothing => {}
        }
    }
    progress(Progress::Matching { done: total, total });
    // QR payments: the wallet's orders, matched with the acquirer transfers they made.
    let (qr_items, qr_breaks) =
        crate::wallet::items(store, directory, window, &mut journaled).await?;
    items.extend(qr_items);
    breaks.extend(qr_breaks);
    // Chargebacks: the disputes whose money moved in the cycle.
    let (chargebacks, chargeback_breaks) =
        crate::chargebacks::items(store, acquirer, &lookup, window, &mut journaled).await?;
    items.extend(chargebacks);
    breaks.extend(chargeback_breaks);
    progress(Progress::Ledger);
    breaks.extend(unjournaled(store, acquirer, &lookup, window, &journaled).await?);
    Ok(Day {
        acquirer,
        items,
        breaks,
    })
}

/// The approved transactions journaled in the cycle (and a margin on each side), oldest
/// first, each message once (a retransmission answered from the journal is the same message).
async fn read_journal(
    store: &Store,
    window: Window,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Vec<TransactionRecord>, ClearingError> {
    let mut rows: Vec<TransactionRecord> = Vec::new();
    let mut seen = HashSet::new();
    let mut after = 0;
    loop {
        let page = store
            .transactions(&TransactionFilter {
                status: Some(TransactionStatus::Approved),
                from: Some(window.start_us - BOUNDARY_MARGIN_US),
                to: Some(window.end_us + BOUNDARY_MARGIN_US),
                after_id: Some(after),
                limit: MAX_TRANSACTIONS_PER_READ,
                ..TransactionFilter::default()
            })
            .await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.id;
        for row in page {
            let key = (
                row.terminal_id.clone(),
                row.batch,
                row.stan,
                row.kind.clone(),
            );
            if seen.insert(key) {
                rows.push(row);
            }
        }
        if rows.len() > MAX_ROWS_PER_CYCLE {
            return Err(ClearingError::TooLarge(format!(
                "the cycle holds more than {MAX_ROWS_PER_CYCLE} journal rows, more than one run settles"
            )));
        }
        progress(Progress::Journal { rows: rows.len() });
    }
    Ok(rows)
}

pub(crate) fn key(terminal_id: &str, batch: Option<i64>, stan: Option<i64>) -> Option<BusinessKey> {
    Some(BusinessKey {
        terminal_id: terminal_id.to_owned(),
        batch: u32::try_from(batch?).ok()?,
        stan: u32::try_from(stan?).ok()?,
    })
}

/// The approved message with this key other than a reversal: what a reversal reverses, or
/// the completion a completion void names.
async fn original_message(
    store: &Store,
    terminal_id: &str,
    batch: Option<i64>,
    stan: Option<i64>,
) -> Result<Option<JournalEntry>, ClearingError> {
    let (Some(batch), Some(stan)) = (batch, stan) else {
        return Ok(None);
    };
    Ok(store
        .journal_of(terminal_id, batch, Some(stan))
        .await?
        .into_iter()
        .find(|entry| entry.kind != "Reversal" && entry.response.as_deref() == Some("00")))
}

/// The pre-authorization a completion (`terminal`, `batch`, `stan`) completed.
async fn completed_preauthorization(
    store: &Store,
    terminal_id: &str,
    batch: Option<i64>,
    stan: Option<i64>,
) -> Result<Option<BusinessKey>, ClearingError> {
    Ok(original_message(store, terminal_id, batch, stan)
        .await?
        .filter(|entry| entry.kind == "PreAuthorizationCompletion")
        .and_then(|entry| key(terminal_id, entry.original_batch, entry.original_stan)))
}

/// Where the acquirer transfer of an approved message is, by the host's own key derivation.
/// A follow-up (completion, void, refund, completion void) and its reversal are in the slot
/// the follow-up took under its original (`acquirer::effects::in_slot`).
async fn expected(
    store: &Store,
    acquirer: InstitutionId,
    row: &TransactionRecord,
) -> Result<Option<Expected>, ClearingError> {
    let terminal = row.terminal_id.as_str();
    let own = key(terminal, row.batch, row.stan);
    let original = key(terminal, row.original_batch, row.original_stan);
    let stan = row.stan.and_then(|stan| u128::try_from(stan).ok());
    let marks = marks(acquirer, row.currency);
    let follow_up = async |key: Option<BusinessKey>, purpose: &str, effect| {
        let Some(key) = key else {
            return Ok::<_, ClearingError>(None);
        };
        let generation = slot_of(store, &key, purpose, stan, marks).await?;
        Ok(Some(Expected {
            transfer: key.transfer_id(&format!("{}/acquirer", in_slot(purpose, generation))),
            effect,
            reverses: None,
            user_data: stan,
            reversed: None,
            card: None,
        }))
    };
    Ok(match row.kind.as_str() {
        "Sale" => own.map(|key| Expected {
            transfer: key.transfer_id("sale/acquirer"),
            effect: Effect::Purchase,
            reverses: None,
            user_data: None,
            reversed: None,
            card: None,
        }),
        "PreAuthorizationCompletion" => follow_up(original, "completion", Effect::Purchase).await?,
        "SaleVoid" => follow_up(original, "undo", Effect::Cancel).await?,
        "Refund" => follow_up(original, "undo", Effect::Refund).await?,
        "CompletionVoid" => {
            let preauthorization =
                completed_preauthorization(store, terminal, row.original_batch, row.original_stan)
                    .await?;
            follow_up(preauthorization, "completion-void", Effect::Cancel).await?
        }
        "Reversal" => reversal(store, row, own, stan, marks).await?,
        _ => None,
    })
}

/// The reversal-marks account of the acquirer's books in the row's currency: a reversal that
/// overtook its follow-up holds the follow-up's slot with a transfer from it.
fn marks(acquirer: InstitutionId, currency: Option<i64>) -> Option<AccountId> {
    let currency = Currency::from_numeric(u16::try_from(currency?).ok()?).ok()?;
    Some(acquirer::chart::reversal_marks(acquirer, currency).0)
}

/// The slot of `purpose` under `original` that the follow-up with trace number `stan` posted
/// in: follow-ups of one original take slots in order, each carrying its trace number in its
/// transfers' user data (a reversal's mark does too, from the reversal-marks account; in a
/// slot a mark holds, the acquirer's transfer may be missing, so a slot is free only when
/// neither side holds it). The first slot when none is found, so that a follow-up missing from
/// the ledger is reported as it always was.
async fn slot_of(
    store: &Store,
    original: &BusinessKey,
    purpose: &str,
    stan: Option<u128>,
    marks: Option<AccountId>,
) -> Result<u32, ClearingError> {
    let Some(stan) = stan else {
        return Ok(0);
    };
    for generation in 0..FOLLOW_UP_SLOTS {
        let slot = in_slot(purpose, generation);
        match store
            .transfer(original.transfer_id(&format!("{slot}/acquirer")))
            .await?
        {
            Some(transfer)
                if transfer.request.user_data == stan && Some(transfer.debit) != marks =>
            {
                return Ok(generation);
            }
            Some(_) => {}
            None => {
                if store
                    .transfer(original.transfer_id(&format!("{slot}/issuer")))
                    .await?
                    .is_none()
                {
                    break;
                }
            }
        }
    }
    Ok(0)
}

async fn reversal(
    store: &Store,
    row: &TransactionRecord,
    own: Option<BusinessKey>,
    stan: Option<u128>,
    marks: Option<AccountId>,
) -> Result<Option<Expected>, ClearingError> {
    let terminal = row.terminal_id.as_str();
    let Some(reversed) = original_message(store, terminal, row.batch, row.stan).await? else {
        // Nothing approved to reverse: the host only left a mark, which moves no money.
        return Ok(None);
    };
    let original = key(terminal, reversed.original_batch, reversed.original_stan);
    let expected = |base: BusinessKey, purpose: &str, effect, reversed_purpose: &str| Expected {
        transfer: base.transfer_id(purpose),
        effect,
        reverses: Some(reversed.kind.clone()),
        user_data: stan,
        reversed: Some(base.transfer_id(reversed_purpose)),
        card: reversed.card.clone(),
    };
    // A follow-up's reversal is in the slot its follow-up took (the reversal carries the
    // follow-up's trace number).
    let follow_up = async |base: Option<BusinessKey>, reversal: &str, effect, purpose: &str| {
        let Some(base) = base else {
            return Ok::<_, ClearingError>(None);
        };
        let generation = slot_of(store, &base, purpose, stan, marks).await?;
        Ok(Some(expected(
            base.clone(),
            &format!("{}/acquirer", in_slot(reversal, generation)),
            effect,
            &format!("{}/acquirer", in_slot(purpose, generation)),
        )))
    };
    Ok(match reversed.kind.as_str() {
        "Sale" => {
            own.map(|own| expected(own, "reversal/acquirer", Effect::Cancel, "sale/acquirer"))
        }
        "PreAuthorizationCompletion" => {
            follow_up(
                original,
                "completion-reversal",
                Effect::Cancel,
                "completion",
            )
            .await?
        }
        "SaleVoid" => follow_up(original, "undo-reversal", Effect::Purchase, "undo").await?,
        "Refund" => follow_up(original, "undo-reversal", Effect::RefundReversed, "undo").await?,
        "CompletionVoid" => {
            let preauthorization = completed_preauthorization(
                store,
                terminal,
                reversed.original_batch,
                reversed.original_stan,
            )
            .await?;
            follow_up(
                preauthorization,
                "completion-void-reversal",
                Effect::Purchase,
                "completion-void",
            )
            .await?
        }
        // Pre-authorizations, their voids and inquiries move no merchant money.
        _ => None,
    })
}

/// Merchants and cards of the directory, by what the journal carries.
pub(crate) struct Lookup<'a> {
    pub(crate) merchants: HashMap<&'a str, &'a store::directory::Merchant>,
    /// (first six, last four) → (issuer, product).
    cards: HashMap<(&'a str, &'a str), (InstitutionId, CardProduct)>,
    /// First six (the BIN) → (issuer, product), for a BIN whose cards all agree; `None` when
    /// they do not.
    bins: HashMap<&'a str, Option<(InstitutionId, CardProduct)>>,
}

impl<'a> Lookup<'a> {
    fn new(directory: &'a Directory) -> Self {
        Lookup {
            merchants: directory
                .merchants
                .iter()
                .map(|merchant| (merchant.id.as_str(), merchant))
                .collect(),
            cards: directory
                .cards
                .iter()
                .map(|card| {
                    (
                        (card.pan_first6.as_str(), card.pan_last4.as_str()),
                        (card.issuer, card.product),
                    )
                })
                .collect(),
            bins: directory
                .cards
                .iter()
                .fold(HashMap::new(), |mut bins, card| {
                    let seen = (card.issuer, card.product);
                    bins.entry(card.pan_first6.as_str())
                        .and_modify(|known: &mut Option<_>| {
                            if *known != Some(seen) {
                                *known = None;
                            }
                        })
                        .or_insert(Some(seen));
                    bins
                }),
        }
    }

    pub(crate) fn card(&self, masked: &str) -> Result<(InstitutionId, CardProduct), ClearingError> {
        let unknown = || ClearingError::UnknownCounterparty {
            card: masked.to_owned(),
        };
        let (Some(first6), Some(last4)) = (
            masked.get(..6),
            masked.len().checked_sub(4).and_then(|at| masked.get(at..)),
        ) else {
            return Err(unknown());
        };
        // The card itself, else its BIN when all the directory's cards of it agree (a card
        // issued after the directory was read).
        self.cards
            .get(&(first6, last4))
            .copied()
            .or_else(|| self.bins.get(first6).copied().flatten())
            .ok_or_else(unknown)
    }
}

enum Matched {
    Item(Box<Item>),
    Break(Box<Break>),
    Nothing,
}

async fn matched(
    store: &Store,
    acquirer: InstitutionId,
    lookup: &Lookup<'_>,
    row: &TransactionRecord,
    expected: &Expected,
) -> Result<Matched, ClearingError> {
    let breaking = |kind, transfer: Option<TransferId>, amount, detail: String| {
        Matched::Break(Box::new(Break {
            kind,
            merchant_id: Some(row.merchant_id.clone()),
            resolution: None,
            journal_id: Some(row.id),
            transfer,
            terminal_id: row.terminal_id.clone(),
            batch: row.batch,
            stan: row.stan,
            message_kind: row.kind.clone(),
            amount,
            detail,
        }))
    };
    let journal_amount = row
        .currency
        .and_then(|numeric| u16::try_from(numeric).ok())
        .and_then(|numeric| Currency::from_numeric(numeric).ok())
        .zip(row.amount_minor)
        .map(|(currency, minor)| Amount::new(minor, currency));
    let Some(transfer) = store.transfer(expected.transfer).await? else {
        if let Some(reversed) = expected.reversed
            && store.transfer(reversed).await?.is_none()
        {
            // The reversed message never posted: the reversal had nothing to undo.
            return Ok(Matched::Nothing);
        }
        return Ok(breaking(
            BreakKind::NotInLedger,
            Some(expected.transfer),
            journal_amount,
            "approved in the journal, but the ledger has no transfer for it".to_owned(),
        ));
    };
    if journal_amount != Some(transfer.amount) {
        return Ok(breaking(
            BreakKind::AmountDiffers,
            Some(transfer.id()),
            journal_amount,
            format!(
                "the journal says {}, the ledger {} {}",
                journal_amount.map_or("no amount".to_owned(), describe),
                transfer.amount.currency().alpha(),
                transfer.amount.format_major()
            ),
        ));
    }
    if let Some(user_data) = expected.user_data
        && transfer.request.user_data != user_data
    {
        return Ok(breaking(
            BreakKind::OtherMessage,
            Some(transfer.id()),
            journal_amount,
            format!(
                "the transfer was made by trace number {:06}",
                transfer.request.user_data
            ),
        ));
    }
    let currency = transfer.amount.currency();
    let pooled = acquirer::chart::acquirer_due_from_issuers(acquirer, currency);
    let merchant_side = merchant_side(&transfer, pooled);
    let merchant = lookup
        .merchants
        .get(row.merchant_id.as_str())
        .ok_or_else(|| ClearingError::UnknownMerchant {
            merchant_id: row.merchant_id.clone(),
        })?;
    if merchant_side != Some(merchant.settlement_account) {
        return Ok(breaking(
            BreakKind::WrongAccount,
            Some(transfer.id()),
            journal_amount,
            format!(
                "the transfer does not move merchant {}'s settlement account",
                row.merchant_id
            ),
        ));
    }
    let card = row
        .card
        .clone()
        .or_else(|| expected.card.clone())
        .unwrap_or_default();
    let (issuer, product) = lookup.card(&card)?;
    Ok(Matched::Item(Box::new(Item {
        journal_id: row.id,
        received_at_us: row.received_at,
        kind: row.kind.clone(),
        reverses: expected.reverses.clone(),
        effect: expected.effect,
        terminal_id: row.terminal_id.clone(),
        merchant_id: row.merchant_id.clone(),
        batch: row.batch.unwrap_or_default(),
        stan: row.stan.unwrap_or_default(),
        rrn: row.rrn.clone(),
        card,
        issuer,
        product: product.into(),
        mcc: merchant.mcc.clone(),
        amount: transfer.amount,
        transfer: transfer.id(),
    })))
}

pub(crate) fn describe(amount: Amount) -> String {
    format!("{} {}", amount.currency().alpha(), amount.format_major())
}

/// The merchant's account in an acquirer transfer: the side that is not the pool of what
/// issuers owe (`None` when neither side is the pool).
pub(crate) fn merchant_side(transfer: &Transfer, pooled: AccountId) -> Option<AccountId> {
    if transfer.debit == pooled {
        Some(transfer.credit)
    } else if transfer.credit == pooled {
        Some(transfer.debit)
    } else {
        None
    }
}

/// Transfers of the cycle on the acquirer's "due from issuers" accounts that no journaled
/// message explains.
async fn unjournaled(
    store: &Store,
    acquirer: InstitutionId,
    lookup: &Lookup<'_>,
    window: Window,
    journaled: &HashSet<TransferId>,
) -> Result<Vec<Break>, ClearingError> {
    let pooled: BTreeMap<AccountId, Currency> = Currency::ALL
        .iter()
        .map(|currency| {
            (
                acquirer::chart::acquirer_due_from_issuers(acquirer, *currency),
                *currency,
            )
        })
        .collect();
    // Only the cycle's transfers on the pools are read out. The ledger keeps no index by time
    // or account (ARCHITECTURE.md, "No secondary indexes on ledger_transfers"), so the database
    // still scans the table, but memory holds the cycle's transfers, not the whole ledger.
    let from = u64::try_from(window.start_us).unwrap_or(0) * 1_000;
    let to = u64::try_from(window.end_us).unwrap_or(0) * 1_000;
    let transfers = store
        .transfers_touching(
            pooled.keys().copied().collect(),
            from,
            to,
            MAX_TRANSFERS_PER_CYCLE + 1,
        )
        .await?;
    if transfers.len() > MAX_TRANSFERS_PER_CYCLE as usize {
        return Err(ClearingError::TooLarge(format!(
            "the cycle holds more than {MAX_TRANSFERS_PER_CYCLE} transfers on what issuers owe, more than one run settles"
        )));
    }
    Ok(transfers
        .into_iter()
        .filter(|transfer| {
            let at_us = i64::try_from(transfer.timestamp / 1_000).unwrap_or(i64::MAX);
            window.contains(at_us)
                && (pooled.contains_key(&transfer.debit) || pooled.contains_key(&transfer.credit))
                && !is_clearing_code(transfer.request.code)
                && !journaled.contains(&transfer.id())
        })
        .map(|transfer| Break {
            kind: BreakKind::NotInJournal,
            merchant_id: lookup
                .merchants
                .values()
                .find(|merchant| {
                    merchant.settlement_account == transfer.debit
                        || merchant.settlement_account == transfer.credit
                })
                .map(|merchant| merchant.id.clone()),
            resolution: None,
            journal_id: None,
            transfer: Some(transfer.id()),
            terminal_id: String::new(),
            batch: None,
            stan: None,
            message_kind: String::new(),
            amount: Some(transfer.amount),
            detail: format!(
                "a transfer on what issuers owe (code {}), made by no message in the journal",
                transfer.request.code
            ),
        })
        .collect())
}
