//! Persistence for easypos, on two backends behind one API:
//!
//! * **SQLite** (the embedded default): WAL with `synchronous=FULL`, verified at start-up; one
//!   writer thread fed by a bounded queue commits many callers' requests per transaction
//!   (group commit) and answers each caller only after the commit; reads use other connections.
//! * **PostgreSQL**: the same operations inside transactions that lock the rows they change
//!   (`SELECT … FOR UPDATE`, in id order), so several easypos processes can share one database.
//!
//! Both run the ledger's pure state machine ([`ledger::execute`]) over the rows a batch
//! touches, so the rules are identical; the conformance suite in `tests/` runs the same
//! sequences against both and compares the results.
//!
//! ```no_run
//! # async fn demo() -> Result<(), store::StoreError> {
//! use store::{Backend, Store};
//! let store = Store::open(&Backend::Sqlite { path: "easypos-data/easypos.db".into() }).await?;
//! let accounts = store.all_accounts().await?;
//! println!("{} accounts", accounts.len());
//! store.close().await?;
//! # Ok(()) }
//! ```

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod backup;
/// A PostgreSQL connection string without its password, for messages and `config show`.
pub use postgres::redact_url;
pub use postgres::{DEFAULT_POOL_SIZE, MAX_POOL_SIZE, PostgresTuning};
pub mod audit_anchors;
pub mod audit_export;
pub mod batches;
pub mod cards;
pub mod cases;
mod clock;
mod committed;
pub mod directory;
pub mod disputes;
pub mod fraud_reports;
pub mod freezes;
mod group;
pub mod host_changes;
pub mod incidents;
pub mod journal;
pub mod journal_feed;
pub mod key_tokens;
pub mod leader;
pub mod migrate;
pub mod onboarding;
pub mod password_resets;
mod postgres;
pub mod procedures;
pub mod receipt_keys;
pub mod refunds;
pub mod risk_rules;
mod rows;
pub mod saf;
pub mod settlement_reports;
mod sqlite;
mod sqlite_accounts;
mod sqlite_wallets;
pub mod staff_passwords;
pub mod supervisor_terminals;
pub mod testing;
pub mod wallets;
pub mod webhooks;

pub use clock::{Clock, CommitFault, ManualClock, SystemClock};
pub use migrate::{Migration, latest as latest_version, postgres_migrations, sqlite_migrations};

use ledger::{
    Account, AccountError, AccountId, AccountSpec, Outcome, Transfer, TransferError, TransferId,
    TransferRequest,
};
use std::path::PathBuf;
use std::sync::Arc;

/// Where the data lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite {
        path: PathBuf,
    },
    /// A libpq-style connection string or URL, e.g. `postgres://postgres@127.0.0.1/easypos`.
    Postgres {
        url: String,
    },
}

/// Failures of the store itself (not business refusals, which are [`TransferError`] values).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error(
        "the database has schema version {found}, newer than this easypos understands (up to {supported}); run a newer easypos or restore a backup"
    )]
    SchemaTooNew { found: u32, supported: u32 },
    #[error("the database is damaged or not an easypos database: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Config(String),
    #[error("the write failed and was rolled back: {0}")]
    Write(String),
    #[error("the store is shutting down")]
    Closed,
    /// A PostgreSQL connection is lost and not back yet; a later call may succeed.
    #[error("the database is unreachable: {0}")]
    Unavailable(String),
}

/// Results of one submitted batch: one entry per request, in order.
pub type TransferResults = Vec<Result<Outcome, TransferError>>;

#[derive(Debug)]
pub enum Store {
    Sqlite(Box<sqlite::SqliteStore>),
    Postgres(postgres::PostgresStore),
}

impl Store {
    /// Opens (creating if needed) and migrates the database, then checks that the books balance.
    pub async fn open(backend: &Backend) -> Result<Store, StoreError> {
        Self::open_with_clock(backend, Arc::new(SystemClock)).await
    }

    /// As [`Store::open`], with an injected clock (tests move time to expire holds).
    pub async fn open_with_clock(
        backend: &Backend,
        clock: Arc<dyn Clock>,
    ) -> Result<Store, StoreError> {
        match backend {
            Backend::Sqlite { path } => Ok(Store::Sqlite(Box::new(
                sqlite::SqliteStore::open(path, clock).await?,
            ))),
            Backend::Postgres { url } => {
                Self::open_postgres(url, &PostgresTuning::default(), clock).await
            }
        }
    }

    /// Opens a PostgreSQL store with its pool size, statement timeout and replica.
    pub async fn open_postgres(
        url: &str,
        tuning: &PostgresTuning,
        clock: Arc<dyn Clock>,
    ) -> Result<Store, StoreError> {
        Ok(Store::Postgres(
            postgres::PostgresStore::open(url, tuning, clock).await?,
        ))
    }

    /// Whether the console's and the API's listings read a streaming replica.
    pub fn reads_replica(&self) -> bool {
        match self {
            Store::Sqlite(_) => false,
            Store::Postgres(store) => store.reads_replica(),
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Highest schema version applied.
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        match self {
            Store::Sqlite(store) => store.schema_version().await,
            Store::Postgres(store) => store.schema_version().await,
        }
    }

    /// Opens accounts (idempotent by id); nothing is written for a refused spec.
    pub async fn create_accounts(
        &self,
        specs: Vec<AccountSpec>,
    ) -> Result<Vec<Result<Account, AccountError>>, StoreError> {
        match self {
            Store::Sqlite(store) => store.create_accounts(specs).await,
            Store::Postgres(store) => store.create_accounts(specs).await,
        }
    }

    /// Executes a batch of transfer requests durably: when this returns, every `Ok` result is
    /// committed. Linked chains never span two calls.
    pub async fn submit(
        &self,
        requests: Vec<TransferRequest>,
    ) -> Result<TransferResults, StoreError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Store::Sqlite(store) => store.submit(requests).await,
            Store::Postgres(store) => store.submit(requests).await,
        }
    }

    /// [`Store::submit`], and the meta row `key = value` in the same transaction when every
    /// transfer is made now or was made before (the same content): a record of what the
    /// transfers did that can never exist without them, nor they without it.
    pub async fn submit_recording(
        &self,
        requests: Vec<TransferRequest>,
        key: &str,
        value: &str,
    ) -> Result<TransferResults, StoreError> {
        let record = (key.to_owned(), value.to_owned());
        match self {
            Store::Sqlite(store) => store.submit_recording(requests, record).await,
            Store::Postgres(store) => store.submit_recording(requests, record).await,
        }
    }

    /// Commits an authorization: its card checks and effects and its ledger transfers in one
    /// transaction (see [`cards`]). When this returns, everything it reports is durable.
    pub async fn authorize(
        &self,
        authorization: cards::Authorization,
    ) -> Result<cards::AuthorizationResult, StoreError> {
        match self {
            Store::Sqlite(store) => store.authorize(authorization).await,
            Store::Postgres(store) => store.authorize(authorization).await,
        }
    }

    /// Records issuer card profiles (at issuance); a card that has one keeps it.
    pub async fn put_issuer_cards(&self, cards: Vec<cards::IssuerCard>) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.put_issuer_cards(cards).await,
            Store::Postgres(store) => store.put_issuer_cards(cards).await,
        }
    }

    pub async fn issuer_card(
        &self,
        card_id: &str,
    ) -> Result<Option<cards::IssuerCard>, StoreError> {
        match self {
            Store::Sqlite(store) => store.issuer_card(card_id.to_owned()).await,
            Store::Postgres(store) => store.issuer_card(card_id).await,
        }
    }

    /// Expires holds whose timeout has passed; returns how many expired.
    pub async fn expire_due(&self) -> Result<usize, StoreError> {
        match self {
            Store::Sqlite(store) => store.expire_due().await,
            Store::Postgres(store) => store.expire_due().await,
        }
    }

    pub async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        Ok(self.accounts(vec![id]).await?.into_iter().next())
    }

    /// The accounts that exist among `ids`, in id order.
    pub async fn accounts(&self, ids: Vec<AccountId>) -> Result<Vec<Account>, StoreError> {
        match self {
            Store::Sqlite(store) => store.accounts(ids).await,
            Store::Postgres(store) => store.accounts(ids).await,
        }
    }

    pub async fn all_accounts(&self) -> Result<Vec<Account>, StoreError> {
        match self {
            Store::Sqlite(store) => store.all_accounts().await,
            Store::Postgres(store) => store.all_accounts().await,
        }
    }

    pub async fn transfer(&self, id: TransferId) -> Result<Option<Transfer>, StoreError> {
        match self {
            Store::Sqlite(store) => store.transfer(id).await,
            Store::Postgres(store) => store.transfer(id).await,
        }
    }

    /// Every transfer, oldest first. For checks, exports and tests, not for hot paths.
    pub async fn all_transfers(&self) -> Result<Vec<Transfer>, StoreError> {
        match self {
            Store::Sqlite(store) => store.all_transfers().await,
            Store::Postgres(store) => store.all_transfers().await,
        }
    }

    /// The transfers stamped in `[from, to)` (ledger timestamps, nanoseconds) that debit or
    /// credit one of `accounts`, oldest first, at most `limit`. The ledger keeps no index by
    /// time or account (ARCHITECTURE.md), so the database still reads the table, but only these
    /// transfers are sent back and held in memory.
    pub async fn transfers_touching(
        &self,
        accounts: Vec<AccountId>,
        from: u64,
        to: u64,
        limit: u32,
    ) -> Result<Vec<Transfer>, StoreError> {
        let (from, to) = (
            i64::try_from(from).unwrap_or(i64::MAX),
            i64::try_from(to).unwrap_or(i64::MAX),
        );
        if accounts.is_empty() || from >= to || limit == 0 {
            return Ok(Vec::new());
        }
        match self {
            Store::Sqlite(store) => store.transfers_touching(accounts, from, to, limit).await,
            Store::Postgres(store) => store.transfers_touching(accounts, from, to, limit).await,
        }
    }

    /// Σ debits = Σ credits per institution and currency over the stored accounts.
    pub async fn check_books(&self) -> Result<(), StoreError> {
        let accounts = self.all_accounts().await?;
        ledger::check_books(&accounts).map_err(|error| StoreError::Corrupt(error.to_string()))
    }

    /// Stops accepting work, lets the writer drain and commit what it has, and closes.
    pub async fn close(self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.close().await,
            Store::Postgres(store) => store.close().await,
        }
    }

    /// Whether this node runs `job`'s next pass ([`leader`]): always on SQLite, whose one
    /// process owns the database; on PostgreSQL while this node holds the job's lock.
    pub async fn leads(&self, job: leader::Job) -> bool {
        match self {
            Store::Sqlite(_) => true,
            Store::Postgres(store) => store.leadership.leads(job).await,
        }
    }

    /// Counters for `/metrics`.
    pub fn stats(&self) -> StoreStats {
        match self {
            Store::Sqlite(store) => store.stats(),
            Store::Postgres(store) => store.stats(),
        }
    }
}

/// Monotonic counters of the writer, exported as Prometheus metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub commits: u64,
    pub transfers_created: u64,
    pub requests: u64,
}

#[derive(Debug, Default)]
struct Counters {
    commits: std::sync::atomic::AtomicU64,
    transfers_created: std::sync::atomic::AtomicU64,
    requests: std::sync::atomic::AtomicU64,
}

impl Counters {
    fn add(&self, commits: u64, requests: u64, created: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.commits.fetch_add(commits, Relaxed);
        self.requests.fetch_add(requests, Relaxed);
        self.transfers_created.fetch_add(created, Relaxed);
    }

    fn snapshot(&self) -> StoreStats {
        use std::sync::atomic::Ordering::Relaxed;
        StoreStats {
            commits: self.commits.load(Relaxed),
            transfers_created: self.transfers_created.load(Relaxed),
            requests: self.requests.load(Relaxed),
        }
    }
}

use directory::Directory;

impl Store {
    /// Writes directory records in one transaction; records that exist already are kept as
    /// they are (seeding twice changes nothing).
    pub async fn put_directory(&self, directory: Directory) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.put_directory(directory).await,
            Store::Postgres(store) => store.put_directory(directory).await,
        }
    }

    pub async fn load_directory(&self) -> Result<Directory, StoreError> {
        let directory = match self {
            Store::Sqlite(store) => store.load_directory().await?,
            Store::Postgres(store) => store.load_directory().await?,
        };
        Ok(directory.sorted())
    }

    /// Stores keys by name; a name that exists keeps its key (keys are never replaced silently —
    /// a key change is a new name or an explicit rotation).
    pub async fn put_keys(&self, keys: Vec<directory::StoredKey>) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.put_keys(keys).await,
            Store::Postgres(store) => store.put_keys(keys).await,
        }
    }

    /// Provisions terminal sessions (key scheme, master key); a terminal that has one keeps it.
    pub async fn put_terminal_sessions(
        &self,
        sessions: Vec<directory::TerminalSession>,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.put_terminal_sessions(sessions).await,
            Store::Postgres(store) => store.put_terminal_sessions(sessions).await,
        }
    }

    pub async fn terminal_session(
        &self,
        terminal_id: &str,
    ) -> Result<Option<directory::TerminalSession>, StoreError> {
        match self {
            Store::Sqlite(store) => store.terminal_session(terminal_id.to_owned()).await,
            Store::Postgres(store) => store.terminal_session(terminal_id).await,
        }
    }

    /// Records a sign-on (new working keys, the operator); `None` when the terminal has no
    /// session to sign on to.
    pub async fn sign_on(
        &self,
        sign_on: directory::SignOn,
    ) -> Result<Option<directory::TerminalSession>, StoreError> {
        match self {
            Store::Sqlite(store) => store.sign_on(sign_on).await,
            Store::Postgres(store) => store.sign_on(sign_on).await,
        }
    }

    /// Accepts KSN transaction counter `counter` from a DUKPT terminal if it is above the
    /// highest accepted so far, and makes it the new high-water mark (durably, before the
    /// message is acted on). `false`: a replay or an out-of-order counter, or no session.
    pub async fn accept_ksn_counter(
        &self,
        terminal_id: &str,
        counter: u32,
    ) -> Result<bool, StoreError> {
        let counter = i64::from(counter);
        match self {
            Store::Sqlite(store) => {
                store
                    .accept_ksn_counter(terminal_id.to_owned(), counter)
                    .await
            }
            Store::Postgres(store) => store.accept_ksn_counter(terminal_id, counter).await,
        }
    }

    /// Signs a terminal off or closes its batch; the session as it is now, `None` for a
    /// terminal without one.
    pub async fn change_session(
        &self,
        terminal_id: &str,
        change: directory::SessionChange,
    ) -> Result<Option<directory::TerminalSession>, StoreError> {
        match self {
            Store::Sqlite(store) => store.change_session(terminal_id.to_owned(), change).await,
            Store::Postgres(store) => store.change_session(terminal_id, change).await,
        }
    }

    /// Every stored key, by name.
    pub async fn keys(&self) -> Result<Vec<directory::StoredKey>, StoreError> {
        let mut keys = match self {
            Store::Sqlite(store) => store.keys().await?,
            Store::Postgres(store) => store.keys().await?,
        };
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }

    /// The card with this number fingerprint, if any.
    pub async fn card_by_fingerprint(
        &self,
        fingerprint: [u8; 32],
    ) -> Result<Option<directory::Card>, StoreError> {
        match self {
            Store::Sqlite(store) => store.card_by_fingerprint(fingerprint).await,
            Store::Postgres(store) => store.card_by_fingerprint(fingerprint).await,
        }
    }

    /// Appends messages to the journal; durable when this returns.
    pub async fn journal(&self, entries: Vec<journal::JournalEntry>) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.journal(entries).await,
            Store::Postgres(store) => store.journal(entries).await,
        }
    }

    /// A terminal's journal entries of one batch (of one trace number, when `stan` is given),
    /// oldest first.
    pub async fn journal_of(
        &self,
        terminal_id: &str,
        batch: i64,
        stan: Option<i64>,
    ) -> Result<Vec<journal::JournalEntry>, StoreError> {
        match self {
            Store::Sqlite(store) => store.journal_of(terminal_id.to_owned(), batch, stan).await,
            Store::Postgres(store) => store.journal_of(terminal_id, batch, stan).await,
        }
    }

    /// Whether the journal may hold a message with this trace number in this terminal batch.
    /// `false` is certain (it is above every trace number journaled; SQLite, whose only
    /// writer is this process, keeps that watermark in memory); `true` means "look".
    pub async fn journal_may_have(
        &self,
        terminal_id: &str,
        batch: i64,
        stan: i64,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(store) => store.journal_may_have(terminal_id, batch, stan).await,
            // Several hosts share the journal: only the journal knows.
            Store::Postgres(_) => Ok(true),
        }
    }

    /// The last `limit` journal entries, oldest first.
    /// Journal rows that name a card, received at or after `since_micros`, with row ids above
    /// `after_id`, oldest first, at most `limit`: what the risk engine replays at start. Pass
    /// the last id of a page to read the next.
    pub async fn journal_with_cards(
        &self,
        since_micros: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<(i64, journal::JournalEntry)>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .journal_with_cards(since_micros, after_id, limit)
                    .await
            }
            Store::Postgres(store) => {
                store
                    .journal_with_cards(since_micros, after_id, limit)
                    .await
            }
        }
    }

    pub async fn journal_recent(
        &self,
        limit: i64,
    ) -> Result<Vec<journal::JournalEntry>, StoreError> {
        match self {
            Store::Sqlite(store) => store.journal_recent(limit).await,
            Store::Postgres(store) => store.journal_recent(limit).await,
        }
    }

    /// Queues a reversal for store-and-forward; a message already queued is left as it is.
    pub async fn queue_reversal(&self, reversal: saf::PendingReversal) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.queue_reversal(reversal).await,
            Store::Postgres(store) => store.queue_reversal(reversal).await,
        }
    }

    /// Queued reversals not yet acknowledged whose next attempt is due at `now` (microseconds
    /// since the epoch), oldest first, at most `limit`.
    pub async fn due_reversals(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<saf::PendingReversal>, StoreError> {
        match self {
            Store::Sqlite(store) => store.due_reversals(now, limit).await,
            Store::Postgres(store) => store.due_reversals(now, limit).await,
        }
    }

    /// Every queued reversal, done or not, oldest first (for operators and tests).
    pub async fn all_reversals(&self) -> Result<Vec<saf::PendingReversal>, StoreError> {
        match self {
            Store::Sqlite(store) => store.all_reversals().await,
            Store::Postgres(store) => store.all_reversals().await,
        }
    }

    /// Whether the host queued a reversal of the message (terminal, batch, trace number, 60.1),
    /// acknowledged or not: the host took that message as failed, so it must not be decided
    /// again when the terminal repeats it.
    pub async fn reversal_queued(
        &self,
        terminal_id: &str,
        batch: i64,
        stan: i64,
        transaction_type: &str,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .reversal_queued(terminal_id, batch, stan, transaction_type)
                    .await
            }
            Store::Postgres(store) => {
                store
                    .reversal_queued(terminal_id, batch, stan, transaction_type)
                    .await
            }
        }
    }

    /// Records an attempt at forwarding a queued reversal.
    pub async fn record_reversal_attempt(
        &self,
        attempt: saf::ReversalAttempt,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.record_reversal_attempt(attempt).await,
            Store::Postgres(store) => store.record_reversal_attempt(attempt).await,
        }
    }

    /// The card whose ledger account is `account`, if any.
    pub async fn card_by_account(
        &self,
        account: AccountId,
    ) -> Result<Option<directory::Card>, StoreError> {
        match self {
            Store::Sqlite(store) => store.card_by_account(account).await,
            Store::Postgres(store) => store.card_by_account(account).await,
        }
    }

    /// A small key/value setting of the installation (for example when the demo was seeded).
    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        match self {
            Store::Sqlite(store) => store.meta(key).await,
            Store::Postgres(store) => store.meta(key).await,
        }
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.set_meta(key.to_owned(), value.to_owned()).await,
            Store::Postgres(store) => store.set_meta(key.to_owned(), value.to_owned()).await,
        }
    }
}
