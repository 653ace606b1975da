//! End of day for the acquirer (issue 12): a business date's cycle is read from what the host
//! recorded — the message journal and the ledger transfers each approved message made — and
//! settled:
//!
//! * **clearing**: the net position of each counterparty issuer (what it owes the acquirer for
//!   the day, less interchange), moved out of the pooled "due from issuers" account into one
//!   account per counterparty;
//! * **fees**: interchange (paid to issuers) and the merchant discount rate (MDR, charged to
//!   merchants), in basis points by card product and MCC, from the fee schedule;
//! * **merchant settlement**: gross − refunds − chargebacks − fees, less what the merchant
//!   still owed from earlier cycles, paid out to the merchant when positive and carried to
//!   later cycles when negative;
//! * **reconciliation**: every break between journal and ledger.
//!
//! Every posting's id comes from (date, counterparty or merchant, purpose), and all of a
//! cycle's postings go in one linked chain: they commit together or not at all, and running a
//! date again finds them instead of paying twice.
//!
//! ```no_run
//! # async fn demo(store: &store::Store) -> Result<(), clearing::ClearingError> {
//! let settings = clearing::Settings::parse(clearing::schedule::DEFAULT)?;
//! let request = clearing::Request {
//!     date: clearing::cycle::parse_date("2026-11-25")?,
//!     now_unix_seconds: 1_795_700_000,
//!     rerun: false,
//! };
//! let outcome = clearing::run(store, &settings, &request, &mut |_| {}).await?;
//! for merchant in &outcome.settlement.merchants {
//!     println!("{} is paid {}", merchant.merchant_id, merchant.payout.format_major());
//! }
//! # Ok(()) }
//! ```

pub mod adjust;
mod chargebacks;
pub mod chart;
mod collect;
pub mod compute;
pub mod cycle;
pub mod post;
pub mod report;
pub mod schedule;
mod wallet;

pub use collect::{
    Break, BreakKind, Day, Effect, Item, MAX_ROWS_PER_CYCLE, MAX_TRANSFERS_PER_CYCLE,
};
pub use compute::{CounterpartySettlement, Line, MerchantSettlement, Settlement};
pub use post::{Carried, CycleRecord, Status};
pub use schedule::{FeeSchedule, Product, Settings};

use issuer::BusinessDate;
use store::{Store, StoreError};

/// Why a cycle was not settled. Nothing is posted when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum ClearingError {
    #[error("{0}")]
    Config(String),
    #[error(
        "the cycle of {date} is still open: it closes at {closes_at} in the acquirer's time zone; settle it after that"
    )]
    StillOpen { date: String, closes_at: String },
    #[error(
        "the cycle of {date} was closed at {closed_at} (UTC); run again with --rerun to check it and write its reports (a rerun posts nothing)"
    )]
    AlreadyClosed { date: String, closed_at: String },
    #[error(
        "no {kind} rate for {product} cards at MCC {mcc}: add a [[fees.{kind}]] line with product = \"{product}\" and mcc = \"{mcc}\" (or \"*\") to the clearing configuration"
    )]
    NoFee {
        kind: &'static str,
        product: &'static str,
        mcc: String,
    },
    #[error(
        "merchant {merchant_id} has transactions but is not in the directory: add it, with its settlement account, and settle again"
    )]
    UnknownMerchant { merchant_id: String },
    #[error(
        "merchant {merchant_id} has {currency} transactions but no {currency} settlement account in the ledger: open one and settle again"
    )]
    MerchantWithoutAccount {
        merchant_id: String,
        currency: &'static str,
    },
    #[error(
        "card {card} belongs to no issuer in the directory, so it has no counterparty to clear with: add its issuer and card range, and settle again"
    )]
    UnknownCounterparty { card: String },
    #[error(
        "issuer {issuer} has {currency} transactions but no {currency} settlement account (acquirer::chart::issuer_settlement): open it and settle again"
    )]
    CounterpartyWithoutAccount { issuer: u32, currency: &'static str },
    #[error(
        "the acquirer has {currency} transactions but no {currency} account of what issuers owe it (acquirer::chart::acquirer_due_from_issuers): open it and settle again"
    )]
    AcquirerWithoutAccount { currency: &'static str },
    #[error("the directory must hold exactly one acquirer, found {0}")]
    Acquirer(usize),
    #[error(
        "the books already hold postings of {date} with other figures ({what}): the journal or the ledger changed after the cycle was posted; read the reconciliation report"
    )]
    PostedDifferently { date: String, what: String },
    #[error("the ledger refused the cycle's postings ({0}); nothing was posted")]
    Refused(String),
    #[error("{0}")]
    TooLarge(String),
    /// An adjustment refused (`adjust`): nothing was posted.
    #[error("{0}")]
    Adjustment(String),
    #[error("cannot write the report {path}: {reason}")]
    Report { path: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to settle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub date: BusinessDate,
    /// The current time (injected: tests settle a cycle "after" its cut-off).
    pub now_unix_seconds: i64,
    /// Check a closed cycle again and produce its reports, posting nothing.
    pub rerun: bool,
}

/// How far a run is, for a progress display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Journal rows read so far.
    Journal { rows: usize },
    /// Approved messages matched with their transfers.
    Matching { done: usize, total: usize },
    /// Reading the ledger's transfers of the cycle.
    Ledger,
    /// Posting (or, on a rerun, checking) this many transfers.
    Posting { transfers: usize },
}

/// A settled (or re-checked) cycle.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub settlement: Settlement,
    /// The terminal batches closed in the cycle's window, with the differences their batch
    /// uploads resolved (`batches-<date>.csv`).
    pub batches: Vec<store::batches::BatchClose>,
    pub status: Status,
    pub record: CycleRecord,
}

/// Settles `request.date`: reads the cycle, computes it, posts it (unless closed) and records
/// it as closed. Refusals post nothing.
pub async fn run(
    store: &Store,
    settings: &Settings,
    request: &Request,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Outcome, ClearingError> {
    let window = settings.cycle.window(request.date);
    let date = cycle::format_date(request.date);
    if request.now_unix_seconds * 1_000_000 < window.end_us {
        return Err(ClearingError::StillOpen {
            date,
            closes_at: cycle::format_local(&settings.cycle, window.end_us),
        });
    }
    let closed = post::record_of(store, request.date).await?;
    if let (Some(record), false) = (&closed, request.rerun) {
        return Err(ClearingError::AlreadyClosed {
            date,
            closed_at: record.closed_at_utc(),
        });
    }
    let directory = store.load_directory().await?;
    let day = collect::collect(store, &directory, window, progress).await?;
    // What merchants owed from earlier cycles: from the books on a first run, from the record
    // on a rerun (the cycle's own carry has changed the books since).
    let carried = match &closed {
        Some(record) => record.carried(),
        None => {
            let merchants = day
                .items
                .iter()
                .map(|item| (item.merchant_id.clone(), item.amount.currency()))
                .collect();
            post::carried_in(store, day.acquirer, &merchants).await?
        }
    };
    let mut settlement = compute::compute(&directory, day, &settings.fees, window, &carried)?;
    for found in &mut settlement.breaks {
        found.resolution = adjust::resolution(store, &date, found).await?;
    }
    let transfers = post::transfers(&settlement)?;
    let batches = store.batch_closes(window.start_us, window.end_us).await?;
    progress(Progress::Posting {
        transfers: transfers.len(),
    });
    match closed {
        Some(record) => {
            let differences = post::differences(store, &settlement, &transfers, &record).await?;
            Ok(Outcome {
                settlement,
                batches,
                status: Status::Rerun { differences },
                record,
            })
        }
        None => {
            let (status, record) =
                post::post(store, &settlement, transfers, request.now_unix_seconds).await?;
            Ok(Outcome {
                settlement,
                batches,
                status,
                record,
            })
        }
    }
}
