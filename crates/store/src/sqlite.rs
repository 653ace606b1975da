//! The SQLite backend: one writer thread with group commit, readers on their own connections.
//!
//! The writer owns the only write connection and an in-memory copy of every ledger account
//! (accounts change only through it, and a lock file keeps other processes out). Callers send
//! jobs through a bounded queue; the writer takes as many as are waiting (up to
//! [`MAX_GROUP_REQUESTS`]), runs them in one transaction, commits with `synchronous=FULL`, and
//! only then answers each caller. A failed commit rolls everything back, reloads the account
//! cache from disk and answers every caller of the group with the error.

use crate::cards::{
    self, Authorization, AuthorizationResult, CardOutcome, CardSet, ISSUER_CARD_COLUMNS, IssuerCard,
};
use crate::committed::{Committed, MAX_CACHED_CARDS};
use crate::directory::{
    self, Card, CardProduct, Cardholder, Directory, Institution, InstitutionKind, Merchant, Staff,
    StaffRole, StoredKey, Terminal,
};
use crate::directory::{
    CARD_COLUMNS, CARD_UPSERT, SessionChange, SignOn, TERMINAL_SESSION_COLUMNS, TerminalSession,
};
use crate::group::{next_timestamp, take_waiting};
use crate::journal::{JOURNAL_COLUMN_COUNT, JOURNAL_COLUMNS, JournalEntry};
use crate::migrate::{self, MIGRATIONS_TABLE, Migration};
use crate::rows::{
    ACCOUNT_COLUMNS, AccountRow, TRANSFER_COLUMNS, TransferRow, id_bytes, id_from_bytes,
    timestamp_to_sql,
};
use crate::saf::{PENDING_REVERSAL_COLUMNS, PendingReversal, ReversalAttempt};
use crate::{Clock, CommitFault, Counters, StoreError, StoreStats, TransferResults};
use ledger::{
    Account, AccountError, AccountId, AccountSpec, Changes, InstitutionId, LedgerState, Transfer,
    TransferId, TransferRequest,
};
use money::Currency;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// SQL text built once per call site from the column lists (statements are looked up in each
/// connection's cache by their text, so it must not be formatted again for every call).
macro_rules! sql {
    ($($format:tt)*) => {{
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| format!($($format)*));
        SQL.as_str()
    }};
}

/// Jobs waiting for the writer; a full queue makes callers wait (back-pressure) instead of
/// growing memory without bound.
pub const QUEUE_CAPACITY: usize = 16_384;
/// Most transfer requests committed in one transaction: large enough to amortise the fsync,
/// small enough that a commit holds callers for milliseconds, not seconds.
pub const MAX_GROUP_REQUESTS: usize = 8_192;
/// Holds expired per sweep, so one sweep cannot stall the writer.
pub const MAX_EXPIRE_PER_SWEEP: usize = 4_096;
/// Read connections: at most this many reads run at once, each on a pooled connection that
/// keeps its prepared statements. (Unbounded, the blocking pool ran hundreds of reads at once,
/// each opening, preparing and closing a connection of its own.)
const MAX_READERS: usize = 8;
/// Page cache of the writer connection, in KiB.
const WRITER_CACHE_KIB: u32 = 256 * 1024;
/// How often the checkpointer copies committed WAL frames into the database file.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);
/// How long a connection waits for a lock held by a checkpoint or a reader.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

type WriteFn = Box<dyn FnOnce(&Connection) -> Result<Box<dyn Any + Send>, StoreError> + Send>;
type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Job {
    Transfers {
        requests: Vec<TransferRequest>,
        reply: Reply<TransferResults>,
        /// A meta row written in the same transaction when every transfer is made (or was).
        record: Option<(String, String)>,
    },
    Authorize {
        authorization: Authorization,
        reply: Reply<AuthorizationResult>,
    },
    Accounts {
        specs: Vec<AccountSpec>,
        reply: Reply<Vec<Result<Account, AccountError>>>,
    },
    Expire {
        reply: Reply<usize>,
    },
    Write {
        work: WriteFn,
        reply: Reply<Box<dyn Any + Send>>,
        /// Whether the work runs in a savepoint of its own (see [`SqliteStore::write`]).
        savepoint: bool,
    },
}

impl Job {
    /// An answer that will only ever be failed (the group broke before this job ran).
    fn into_unanswered(self) -> Answer {
        match self {
            Job::Transfers { reply, .. } => Answer::Transfers(reply, Vec::new()),
            Job::Authorize { reply, .. } => Answer::Authorized(
                reply,
                AuthorizationResult {
                    card: CardOutcome::UnknownCard,
                    transfers: Vec::new(),
                },
            ),
            Job::Accounts { reply, .. } => Answer::Accounts(reply, Vec::new()),
            Job::Expire { reply } => Answer::Expired(reply, 0),
            Job::Write { reply, .. } => Answer::Written(reply, Box::new(())),
        }
    }

    fn fail(self, message: &str) {
        self.into_unanswered().fail(message);
    }

    fn weight(&self) -> usize {
        match self {
            Job::Transfers { requests, .. } => requests.len(),
            Job::Authorize { authorization, .. } => authorization.transfers.len() + 1,
            Job::Accounts { specs, .. } => specs.len(),
            Job::Expire { .. } => MAX_EXPIRE_PER_SWEEP / 16,
            Job::Write { .. } => 1,
        }
    }
}

/// An answer computed inside the transaction, delivered only after it commits.
enum Answer {
    Transfers(Reply<TransferResults>, TransferResults),
    Authorized(Reply<AuthorizationResult>, AuthorizationResult),
    Accounts(
        Reply<Vec<Result<Account, AccountError>>>,
        Vec<Result<Account, AccountError>>,
    ),
    Expired(Reply<usize>, usize),
    Written(Reply<Box<dyn Any + Send>>, Box<dyn Any + Send>),
}

impl Answer {
    fn deliver(self) {
        // A caller that went away (timed out, shut down) no longer needs its answer; the work
        // is committed either way, and its retry will find it by id.
        match self {
            Answer::Transfers(reply, value) => drop(reply.send(Ok(value))),
            Answer::Authorized(reply, value) => drop(reply.send(Ok(value))),
            Answer::Accounts(reply, value) => drop(reply.send(Ok(value))),
            Answer::Expired(reply, value) => drop(reply.send(Ok(value))),
            Answer::Written(reply, value) => drop(reply.send(Ok(value))),
        }
    }

    fn fail(self, message: &str) {
        let error = || StoreError::Write(message.to_owned());
        match self {
            Answer::Transfers(reply, _) => drop(reply.send(Err(error()))),
            Answer::Authorized(reply, _) => drop(reply.send(Err(error()))),
            Answer::Accounts(reply, _) => drop(reply.send(Err(error()))),
            Answer::Expired(reply, _) => drop(reply.send(Err(error()))),
            Answer::Written(reply, _) => drop(reply.send(Err(error()))),
        }
    }
}

#[derive(Debug)]
pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
    writer: Option<std::thread::JoinHandle<()>>,
    checkpointer: Option<Checkpointer>,
    readers: Arc<Readers>,
    counters: Arc<Counters>,
    /// Per terminal batch, the highest trace number the journal holds, for the batches seen
    /// since start (see [`SqliteStore::journal_may_have`]).
    watermarks: Arc<Mutex<HashMap<(String, i64), i64>>>,
    /// Terminal sessions as last read or written (see [`SqliteStore::terminal_session`]).
    sessions: Committed<String, TerminalSession>,
    /// Directory cards by number fingerprint (see [`SqliteStore::card_by_fingerprint`]).
    cards: Committed<[u8; 32], Card>,
    /// The issuer's state of each card authorized since start, kept by the writer (see
    /// [`SqliteStore::issuer_card`]).
    issuer_cards: Arc<Committed<String, IssuerCard>>,
    /// Held for the life of the store: a second process on the same file is refused.
    _lock: std::fs::File,
}

/// Terminal sessions kept in memory (every financial message needs its terminal's keys).
const MAX_CACHED_SESSIONS: usize = 200_000;

/// Terminal batches whose journal watermark is kept; beyond, the map starts again empty.
const MAX_WATERMARKS: usize = 500_000;

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl SqliteStore {
    pub async fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(path, clock))
            .await
            .map_err(|error| StoreError::Write(error.to_string()))?
    }

    fn open_blocking(path: PathBuf, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|error| {
                StoreError::Config(format!("cannot create {}: {error}", parent.display()))
            })?;
        }
        let lock = lock_file(&path)?;
        let connection = open_writer(&path)?;
        migrate(&connection)?;
        let accounts = load_accounts(&connection)?;
        ledger::check_books(accounts.values())
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        let last_timestamp: i64 = connection.query_row(
            "SELECT coalesce(max(timestamp), 0) FROM ledger_transfers",
            [],
            |row| row.get(0),
        )?;
        let max_id: Option<Vec<u8>> =
            connection.query_row("SELECT max(id) FROM ledger_transfers", [], |row| row.get(0))?;
        let max_transfer_id = max_id
            .as_deref()
            .map(id_from_bytes)
            .transpose()?
            .unwrap_or(0);
        let counters = Arc::new(Counters::default());
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let issuer_cards = Arc::new(Committed::new(MAX_CACHED_CARDS));
        let mut writer = Writer {
            connection,
            accounts,
            issuer_cards: issuer_cards.clone(),
            max_transfer_id,
            clock,
            last_timestamp: u64::try_from(last_timestamp).unwrap_or(0),
            counters: counters.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|error| {
                StoreError::Write(format!("cannot start the writer thread: {error}"))
            })?;
        let checkpointer = Checkpointer::start(&path)?;
        Ok(SqliteStore {
            jobs: sender,
            writer: Some(handle),
            checkpointer: Some(checkpointer),
            readers: Arc::new(Readers::new(path)),
            counters,
            watermarks: Arc::default(),
            sessions: Committed::new(MAX_CACHED_SESSIONS),
            cards: Committed::new(MAX_CACHED_CARDS),
            issuer_cards,
            _lock: lock,
        })
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Job) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(make(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    pub async fn submit(
        &self,
        requests: Vec<TransferRequest>,
    ) -> Result<TransferResults, StoreError> {
        self.call(|reply| Job::Transfers {
            requests,
            reply,
            record: None,
        })
        .await
    }

    /// [`SqliteStore::submit`], and the meta row `record` in the same transaction when every
    /// transfer is made now or was made before.
    pub async fn submit_recording(
        &self,
        requests: Vec<TransferRequest>,
        record: (String, String),
    ) -> Result<TransferResults, StoreError> {
        self.call(|reply| Job::Transfers {
            requests,
            reply,
            record: Some(record),
        })
        .await
    }

    pub async fn create_accounts(
        &self,
        specs: Vec<AccountSpec>,
    ) -> Result<Vec<Result<Account, AccountError>>, StoreError> {
        self.call(|reply| Job::Accounts { specs, reply }).await
    }

    pub async fn expire_due(&self) -> Result<usize, StoreError> {
        self.call(|reply| Job::Expire { reply }).await
    }

    /// Runs `work` on the writer connection inside the current group's transaction (in a
    /// savepoint of its own, so its failure touches nothing else) and returns its result after
    /// the commit. This is how later tables write on SQLite.
    pub async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.write_in(true, work).await
    }

    /// [`SqliteStore::write`], where work that is one SQL statement, atomic by itself, may go
    /// without the savepoint (`savepoint: false`), which costs two statements and a copy of
    /// every page the work changes.
    async fn write_in<T: Send + 'static>(
        &self,
        savepoint: bool,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let work: WriteFn = Box::new(move |connection| {
            work(connection).map(|value| Box::new(value) as Box<dyn Any + Send>)
        });
        let value = self
            .call(|reply| Job::Write {
                work,
                reply,
                savepoint,
            })
            .await?;
        value
            .downcast::<T>()
            .map(|boxed| *boxed)
            .map_err(|_| StoreError::Write("writer returned an unexpected type".into()))
    }

    /// Runs `work` on a read connection on the blocking pool.
    pub async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = self
            .readers
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let result = readers.with(work);
            drop(permit);
            result
        })
        .await
        .map_err(|error| StoreError::Write(error.to_string()))?
    }

    /// Runs a point read (one indexed row, microseconds) on the calling task when a pooled
    /// connection is free, saving the hop to the blocking pool; otherwise as [`Self::read`].
    pub async fn read_point<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let has_idle = self
            .readers
            .idle
            .lock()
            .map(|idle| !idle.is_empty())
            .unwrap_or(false);
        if has_idle && let Ok(permit) = self.readers.permits.clone().try_acquire_owned() {
            let result = self.readers.with(work);
            drop(permit);
            return result;
        }
        self.read(work).await
    }

    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        self.read(current_version).await
    }

    pub async fn accounts(&self, ids: Vec<AccountId>) -> Result<Vec<Account>, StoreError> {
        self.read(move |connection| {
            let mut statement = connection.prepare_cached(sql!(
                "SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id = ?1"
            ))?;
            let mut found = Vec::new();
            for id in ids.into_iter().collect::<BTreeSet<_>>() {
                if let Some(row) = statement
                    .query_row([id_bytes(id.0)], account_row)
                    .optional()?
                {
                    found.push(row.into_account()?);
                }
            }
            Ok(found)
        })
        .await
    }

    pub async fn all_accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.read(|connection| Ok(load_accounts(connection)?.into_values().collect::<Vec<_>>()))
            .await
            .map(|mut accounts| {
                accounts.sort_by_key(|account| account.id);
                accounts
            })
    }

    pub async fn transfer(&self, id: TransferId) -> Result<Option<Transfer>, StoreError> {
        self.read_point(move |connection| find_transfer(connection, id))
            .await
    }

    pub async fn all_transfers(&self) -> Result<Vec<Transfer>, StoreError> {
        self.read(|connection| {
            let mut statement = connection.prepare(&format!(
                "SELECT {TRANSFER_COLUMNS} FROM ledger_transfers ORDER BY timestamp, id"
            ))?;
            let rows = statement.query_map([], transfer_row)?;
            rows.map(|row| row?.into_transfer()).collect()
        })
        .await
    }

    pub async fn transfers_touching(
        &self,
        accounts: Vec<AccountId>,
        from: i64,
        to: i64,
        limit: u32,
    ) -> Result<Vec<Transfer>, StoreError> {
        self.read(move |connection| {
            let list = (0..accounts.len())
                .map(|index| format!("?{}", index + 4))
                .collect::<Vec<_>>()
                .join(", ");
            let mut statement = connection.prepare(&format!(
                "SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE timestamp >= ?1 AND timestamp < ?2 AND (debit IN ({list}) OR credit IN ({list})) ORDER BY timestamp, id LIMIT ?3"
            ))?;
            let mut values: Vec<rusqlite::types::Value> = vec![
                from.into(),
                to.into(),
                i64::from(limit).into(),
            ];
            values.extend(
                accounts
                    .iter()
                    .map(|id| rusqlite::types::Value::Blob(id_bytes(id.0).to_vec())),
            );
            let rows = statement.query_map(rusqlite::params_from_iter(values), transfer_row)?;
            rows.map(|row| row?.into_transfer()).collect()
        })
        .await
    }

    pub async fn put_directory(&self, directory: Directory) -> Result<(), StoreError> {
        let written = self
            .write(move |connection| insert_directory(connection, &directory))
            .await;
        // Cards may have been replaced (upsert); whether or not the write committed, the cached
        // ones are read again.
        self.cards.forget_all();
        written
    }

    pub async fn load_directory(&self) -> Result<Directory, StoreError> {
        self.read(read_directory).await
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.read(move |connection| {
            Ok(connection
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                    row.get(0)
                })
                .optional()?)
        })
        .await
    }

    pub async fn set_meta(&self, key: String, value: String) -> Result<(), StoreError> {
        self.write_in(false, move |connection| set_meta(connection, &key, &value))
            .await
    }

    pub fn stats(&self) -> StoreStats {
        self.counters.snapshot()
    }

    /// Closes the queue; the writer finishes every job already queued, commits, and exits.
    pub async fn close(mut self) -> Result<(), StoreError> {
        let SqliteStore {
            jobs,
            writer,
            checkpointer,
            ..
        } = &mut self;
        drop(std::mem::replace(jobs, mpsc::channel(1).0));
        if let Some(handle) = writer.take() {
            tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|error| StoreError::Write(error.to_string()))?
                .map_err(|_| StoreError::Write("the writer thread panicked".into()))?;
        }
        if let Some(checkpointer) = checkpointer.take() {
            tokio::task::spawn_blocking(move || checkpointer.stop())
                .await
                .map_err(|error| StoreError::Write(error.to_string()))?;
        }
        Ok(())
    }
}

fn lock_file(path: &Path) -> Result<std::fs::File, StoreError> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|error| {
            StoreError::Config(format!(
                "cannot open lock file {}: {error}",
                PathBuf::from(&lock_path).display()
            ))
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Config(format!(
            "{} is in use by another easypos process; stop it first (only one process may write an SQLite database — use PostgreSQL to run several)",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(error)) => Err(StoreError::Config(format!(
            "cannot lock {}: {error}",
            PathBuf::from(&lock_path).display()
        ))),
    }
}

/// Opens the write connection and makes sure durability is what we promise: WAL journal and
/// `synchronous=FULL`, read back rather than assumed.
fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(path).map_err(|error| describe_open_error(path, error))?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|error| describe_open_error(path, error))?;
    // A large page cache keeps the B-tree pages of hot indexes in memory (random 128-bit ids
    // touch pages all over the transfer table); WAL frames are checkpointed by a separate
    // thread so that the writer never stalls on a checkpoint.
    connection.execute_batch(&format!(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -{WRITER_CACHE_KIB}; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0;"
    ))?;
    let synchronous: i64 = connection.query_row("PRAGMA synchronous", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") || synchronous != 2 {
        return Err(StoreError::Config(format!(
            "{}: expected journal_mode=wal and synchronous=FULL, got {mode} and {synchronous}",
            path.display()
        )));
    }
    Ok(connection)
}

fn describe_open_error(path: &Path, error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt(format!(
                "{} is not a valid SQLite database ({error}); restore it from a backup or move it aside",
                path.display()
            ))
        }
        _ => StoreError::Sqlite(error),
    }
}

fn current_version(connection: &Connection) -> Result<u32, StoreError> {
    let version: i64 = connection.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |row| row.get(0),
    )?;
    u32::try_from(version).map_err(|_| StoreError::Corrupt(format!("schema version {version}")))
}

fn migrate(connection: &Connection) -> Result<(), StoreError> {
    connection.execute_batch(MIGRATIONS_TABLE)?;
    let migrations: &[Migration] = migrate::sqlite_migrations();
    let found = current_version(connection)?;
    let supported = migrate::latest(migrations);
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    for migration in migrations
        .iter()
        .filter(|migration| migration.version > found)
    {
        connection.execute_batch("BEGIN IMMEDIATE")?;
        let applied = connection.execute_batch(migration.sql).and_then(|()| {
            connection.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, strftime('%s', 'now'))",
                params![migration.version, migration.name],
            )
        });
        match applied {
            Ok(_) => connection.execute_batch("COMMIT")?,
            Err(error) => {
                connection.execute_batch("ROLLBACK")?;
                return Err(error.into());
            }
        }
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied migration"
        );
    }
    Ok(())
}

fn account_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok(AccountRow {
        id: row.get(0)?,
        institution: row.get(1)?,
        currency: row.get(2)?,
        code: row.get(3)?,
        balance_rule: row.get(4)?,
        debits_pending: row.get(5)?,
        debits_posted: row.get(6)?,
        credits_pending: row.get(7)?,
        credits_posted: row.get(8)?,
        created_at: row.get(9)?,
    })
}

fn transfer_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TransferRow> {
    Ok(TransferRow {
        id: row.get(0)?,
        kind: row.get(1)?,
        debit: row.get(2)?,
        credit: row.get(3)?,
        amount: row.get(4)?,
        currency: row.get(5)?,
        requested_amount: row.get(6)?,
        pending_id: row.get(7)?,
        timeout_seconds: row.get(8)?,
        linked: row.get(9)?,
        code: row.get(10)?,
        user_data: row.get(11)?,
        institution: row.get(12)?,
        timestamp: row.get(13)?,
        expires_at: row.get(14)?,
        status: row.get(15)?,
    })
}

fn load_accounts(connection: &Connection) -> Result<ledger::IdMap<AccountId, Account>, StoreError> {
    let mut statement =
        connection.prepare(&format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts"))?;
    let rows = statement.query_map([], account_row)?;
    let mut accounts = ledger::IdMap::default();
    for row in rows {
        let account = row?.into_account()?;
        accounts.insert(account.id, account);
    }
    Ok(accounts)
}

fn find_transfer(connection: &Connection, id: TransferId) -> Result<Option<Transfer>, StoreError> {
    let mut statement = connection.prepare_cached(sql!(
        "SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE id = ?1"
    ))?;
    statement
        .query_row([id_bytes(id.0)], transfer_row)
        .optional()?
        .map(TransferRow::into_transfer)
        .transpose()
}

/// The ledger's view of committed state during a group: accounts from the writer's cache,
/// transfers from the database. Ids above the largest stored id cannot exist, so fresh
/// time-ordered ids are answered without a query; only retries and old ids are looked up.
struct WriterView<'a> {
    connection: &'a Connection,
    accounts: &'a ledger::IdMap<AccountId, Account>,
    max_transfer_id: u128,
    error: RefCell<Option<StoreError>>,
}

impl LedgerState for WriterView<'_> {
    fn account(&self, id: AccountId) -> Option<Account> {
        self.accounts.get(&id).copied()
    }

    fn transfer(&self, id: TransferId) -> Option<Transfer> {
        if id.0 > self.max_transfer_id {
            return None;
        }
        match find_transfer(self.connection, id) {
            Ok(found) => found,
            Err(error) => {
                self.error.borrow_mut().get_or_insert(error);
                None
            }
        }
    }
}

struct Writer {
    connection: Connection,
    accounts: ledger::IdMap<AccountId, Account>,
    /// Shared with the store's readers; changed only here, after commits.
    issuer_cards: Arc<Committed<String, IssuerCard>>,
    max_transfer_id: u128,
    clock: Arc<dyn Clock>,
    last_timestamp: u64,
    counters: Arc<Counters>,
}

impl Writer {
    fn run(&mut self, mut jobs: mpsc::Receiver<Job>) {
        while let Some(first) = jobs.blocking_recv() {
            let (group, weight) = take_waiting(first, &mut jobs, Job::weight, MAX_GROUP_REQUESTS);
            self.run_group(group, weight as u64);
        }
        tracing::debug!("sqlite writer drained and stopped");
    }

    /// Runs every job of the group in one ledger session and one transaction, commits, and only
    /// then applies the changes to the account cache and answers the callers.
    fn run_group(&mut self, group: Vec<Job>, weight: u64) {
        if let Err(error) = self
            .connection
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut begin| begin.execute([]))
        {
            let message = error.to_string();
            group.into_iter().for_each(|job| job.fail(&message));
            return;
        }
        let view = WriterView {
            connection: &self.connection,
            accounts: &self.accounts,
            max_transfer_id: self.max_transfer_id,
            error: RefCell::new(None),
        };
        let mut session = ledger::Session::new(&view);
        let mut cards = CardSet::default();
        let mut answers = Vec::with_capacity(group.len());
        let mut failure: Option<StoreError> = None;
        for job in group {
            if failure.is_some() {
                answers.push(job.into_unanswered());
                continue;
            }
            match run_job(
                &self.connection,
                &self.issuer_cards,
                &mut session,
                &mut cards,
                self.clock.as_ref(),
                &mut self.last_timestamp,
                job,
            ) {
                Ok(Some(answer)) => answers.push(answer),
                Ok(None) => {}
                Err((error, answer)) => {
                    failure = Some(error);
                    answers.push(answer);
                }
            }
        }
        let changes = session.finish();
        let fault = self.clock.commit_fault();
        let outcome = match (failure, view.error.into_inner()) {
            (Some(error), _) | (None, Some(error)) => Err(error),
            (None, None) => write_changes(&self.connection, &changes)
                .and_then(|()| write_cards(&self.connection, &cards))
                .and_then(|()| match fault {
                    Some(CommitFault::Fail) => {
                        Err(StoreError::Write("injected commit failure".into()))
                    }
                    _ => {
                        self.connection.prepare_cached("COMMIT")?.execute([])?;
                        Ok(())
                    }
                }),
        };
        match outcome {
            Ok(()) => {
                self.counters.add(1, weight, changes.created.len() as u64);
                if let Some(max) = changes.created.iter().map(|transfer| transfer.id().0).max() {
                    self.max_transfer_id = self.max_transfer_id.max(max);
                }
                self.accounts.extend(changes.accounts);
                for card in cards.dirty() {
                    self.issuer_cards
                        .remember(card.card_id.clone(), Some(card.clone()));
                }
                if fault == Some(CommitFault::LoseAnswer) {
                    let message = "injected fault: committed, but the answer was lost";
                    answers.into_iter().for_each(|answer| answer.fail(message));
                } else {
                    answers.into_iter().for_each(Answer::deliver);
                }
            }
            Err(error) => {
                let message = error.to_string();
                tracing::error!(error = %message, "group commit failed; rolled back");
                // The rollback fails only if no transaction is open, which is what we want anyway.
                let _ = self.connection.execute_batch("ROLLBACK");
                answers.into_iter().for_each(|answer| answer.fail(&message));
            }
        }
    }
}

/// Runs one job inside the group's session and transaction. `Ok(None)` means the job already
/// got its answer (its own failure, rolled back to its savepoint) and the group goes on.
fn run_job(
    connection: &Connection,
    issuer_cards: &Committed<String, IssuerCard>,
    session: &mut ledger::Session<'_, WriterView<'_>>,
    cards: &mut CardSet,
    clock: &dyn Clock,
    last: &mut u64,
    job: Job,
) -> Result<Option<Answer>, (StoreError, Answer)> {
    match job {
        Job::Authorize {
            authorization,
            reply,
        } => {
            let now = next_timestamp(clock, last, authorization.transfers.len());
            // Issuer cards change only in this thread, so the remembered ones are current.
            let mut load = |card_id: &str| match issuer_cards.get(card_id) {
                Ok(card) => Ok(Some(card)),
                Err(missed) => {
                    let card = find_issuer_card(connection, card_id)?;
                    if let Some(card) = &card {
                        issuer_cards.fill(missed, card.card_id.clone(), card.clone());
                    }
                    Ok(card)
                }
            };
            match cards::authorize(session, cards, &mut load, &authorization, now) {
                Ok(result) => Ok(Some(Answer::Authorized(reply, result))),
                Err(error) => Err((
                    error,
                    Job::Authorize {
                        authorization,
                        reply,
                    }
                    .into_unanswered(),
                )),
            }
        }
        Job::Transfers {
            requests,
            reply,
            record,
        } => {
            let now = next_timestamp(clock, last, requests.len());
            let results = session.execute(&requests, now);
            if let Some((key, value)) = record
                && results.iter().all(Result::is_ok)
                && let Err(error) = set_meta(connection, &key, &value)
            {
                return Err((error, Answer::Transfers(reply, Vec::new())));
            }
            Ok(Some(Answer::Transfers(reply, results)))
        }
        Job::Accounts { specs, reply } => {
            let now = next_timestamp(clock, last, 0);
            Ok(Some(Answer::Accounts(
                reply,
                session.open_accounts(&specs, now),
            )))
        }
        Job::Expire { reply } => {
            let now = next_timestamp(clock, last, 0);
            match due_holds(connection, now) {
                Ok(due) => Ok(Some(Answer::Expired(reply, session.expire(&due, now)))),
                Err(error) => Err((error, Answer::Expired(reply, 0))),
            }
        }
        Job::Write {
            work,
            reply,
            savepoint: false,
        } => match work(connection) {
            Ok(value) => Ok(Some(Answer::Written(reply, value))),
            // A failed statement undid only itself; the group goes on.
            Err(error) => {
                drop(reply.send(Err(error)));
                Ok(None)
            }
        },
        Job::Write {
            work,
            reply,
            savepoint: true,
        } => {
            let savepoint = |sql: &str| {
                // Single statements are prepared once; the two-statement rollback is rare.
                let result = if sql.contains(';') {
                    connection.execute_batch(sql)
                } else {
                    connection
                        .prepare_cached(sql)
                        .and_then(|mut statement| statement.execute([]).map(drop))
                };
                result.map_err(StoreError::from)
            };
            if let Err(error) = savepoint("SAVEPOINT job") {
                return Err((error, Answer::Written(reply, Box::new(()))));
            }
            match work(connection) {
                Ok(value) => match savepoint("RELEASE job") {
                    Ok(()) => Ok(Some(Answer::Written(reply, value))),
                    Err(error) => Err((error, Answer::Written(reply, Box::new(())))),
                },
                Err(error) => match savepoint("ROLLBACK TO job; RELEASE job") {
                    Ok(()) => {
                        drop(reply.send(Err(error)));
                        Ok(None)
                    }
                    Err(rollback_error) => {
                        Err((rollback_error, Answer::Written(reply, Box::new(()))))
                    }
                },
            }
        }
    }
}

fn set_meta(connection: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    connection
        .prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")?
        .execute([key, value])?;
    Ok(())
}

fn due_holds(connection: &Connection, now: u64) -> Result<Vec<TransferId>, StoreError> {
    let mut statement = connection.prepare_cached("SELECT id FROM ledger_transfers WHERE status = 1 AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2")?;
    let rows = statement.query_map(
        params![timestamp_to_sql(now), MAX_EXPIRE_PER_SWEEP as i64],
        |row| row.get::<_, Vec<u8>>(0),
    )?;
    rows.map(|row| Ok(TransferId(id_from_bytes(&row?)?)))
        .collect()
}

/// Persists a session's changes: new transfers, new hold statuses, new accounts, and the final
/// totals of every other account touched (each written once per group).
fn write_changes(connection: &Connection, changes: &Changes) -> Result<(), StoreError> {
    let mut insert = connection.prepare_cached(sql!(
        "INSERT INTO ledger_transfers ({TRANSFER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    ))?;
    for transfer in &changes.created {
        let row = TransferRow::from_transfer(transfer);
        insert.execute(params![
            row.id,
            row.kind,
            row.debit,
            row.credit,
            row.amount,
            row.currency,
            row.requested_amount,
            row.pending_id,
            row.timeout_seconds,
            row.linked,
            row.code,
            row.user_data,
            row.institution,
            row.timestamp,
            row.expires_at,
            row.status
        ])?;
    }
    let mut status =
        connection.prepare_cached("UPDATE ledger_transfers SET status = ?1 WHERE id = ?2")?;
    for (id, new_status) in &changes.statuses {
        status.execute(params![new_status.code(), id_bytes(id.0)])?;
    }
    let mut open = connection.prepare_cached(sql!("INSERT INTO ledger_accounts ({ACCOUNT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"))?;
    for account in changes.opened_accounts() {
        let row = AccountRow::from_account(account);
        open.execute(params![
            row.id,
            row.institution,
            row.currency,
            row.code,
            row.balance_rule,
            row.debits_pending,
            row.debits_posted,
            row.credits_pending,
            row.credits_posted,
            row.created_at
        ])?;
    }
    let mut update = connection.prepare_cached(
        "UPDATE ledger_accounts SET debits_pending = ?1, debits_posted = ?2, credits_pending = ?3, credits_posted = ?4 WHERE id = ?5",
    )?;
    for account in changes.updated_accounts() {
        update.execute(params![
            account.debits_pending,
            account.debits_posted,
            account.credits_pending,
            account.credits_posted,
            id_bytes(account.id.0)
        ])?;
    }
    Ok(())
}

/// Copies committed WAL frames back into the database file from its own connection, so the
/// writer never pays for a checkpoint inside a commit. PASSIVE: it never blocks the writer or
/// readers; what it cannot copy now it copies next time.
#[derive(Debug)]
struct Checkpointer {
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// The thread gives its connection back when it stops, for the last checkpoint.
    handle: Option<std::thread::JoinHandle<Connection>>,
}

/// A store dropped without `close` (a panic, a test that bails out) still stops its
/// checkpointer; it just does not wait for it.
impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let tick = std::time::Duration::from_millis(50);
                let mut waited = std::time::Duration::ZERO;
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    waited += tick;
                    if waited >= CHECKPOINT_INTERVAL {
                        waited = std::time::Duration::ZERO;
                        if let Err(error) =
                            connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                        {
                            tracing::warn!(%error, "WAL checkpoint failed; will retry");
                        }
                    }
                }
                connection
            })
            .map_err(|error| {
                StoreError::Write(format!("cannot start the checkpoint thread: {error}"))
            })?;
        Ok(Checkpointer {
            stop,
            handle: Some(handle),
        })
    }

    /// Stops the thread, then copies the whole WAL into the database file and empties it
    /// (TRUNCATE), the writer being stopped already: a closed database is its file alone. The
    /// readers' connections are read-only and cannot checkpoint when they close, so without
    /// this the last commits could stay in the WAL file (a copy of the file alone, as a test
    /// template or a hand-made backup, would miss them).
    fn stop(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(handle) = self.handle.take()
            && let Ok(connection) = handle.join()
        {
            // One row: whether a reader kept it from finishing, then the WAL's frame counts.
            match connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                row.get::<_, i64>(0)
            }) {
                Ok(0) => {}
                Ok(_) => tracing::warn!(
                    "the last WAL checkpoint was kept from finishing by a reader; the WAL file keeps the rest"
                ),
                Err(error) => {
                    tracing::warn!(%error, "the last WAL checkpoint failed; the WAL file keeps the rest")
                }
            }
        }
    }
}

/// Read-only connections, opened on demand and kept for reuse.
#[derive(Debug)]
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection.
    permits: Arc<tokio::sync::Semaphore>,
}

impl Readers {
    fn new(path: PathBuf) -> Self {
        Readers {
            path,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(MAX_READERS)),
        }
    }

    fn with<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let reused = self
            .idle
            .lock()
            .map_err(|_| StoreError::Write("reader pool poisoned".into()))?
            .pop();
        let connection = match reused {
            Some(connection) => connection,
            None => {
                let connection = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                connection.busy_timeout(BUSY_TIMEOUT)?;
                connection
            }
        };
        let result = work(&connection);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_READERS
        {
            idle.push(connection);
        }
        result
    }
}

fn insert_directory(connection: &Connection, directory: &Directory) -> Result<(), StoreError> {
    for record in &directory.institutions {
        connection.execute(
            "INSERT INTO institutions (id, kind, name, name_zh) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            params![record.id.0, record.kind.as_str(), record.name, record.name_zh],
        )?;
    }
    for record in &directory.merchants {
        connection.execute(
            "INSERT INTO merchants (id, acquirer, name, name_zh, city, mcc, settlement_account) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
            params![record.id, record.acquirer.0, record.name, record.name_zh, record.city, record.mcc, id_bytes(record.settlement_account.0)],
        )?;
    }
    for record in &directory.terminals {
        connection.execute("INSERT INTO terminals (id, merchant_id, status) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING", params![record.id, record.merchant_id, record.status])?;
    }
    for record in &directory.staff {
        connection.execute(
            "INSERT INTO staff (merchant_id, operator_no, name, role) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            params![record.merchant_id, record.operator_no, record.name, record.role.as_str()],
        )?;
    }
    for record in &directory.cardholders {
        connection.execute("INSERT INTO cardholders (id, name, name_zh) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING", params![record.id, record.name, record.name_zh])?;
    }
    for record in &directory.cards {
        connection.execute(
            &format!("INSERT INTO cards ({CARD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) {CARD_UPSERT}"),
            params![
                record.id,
                record.cardholder_id,
                record.issuer.0,
                record.product.as_str(),
                record.pan_first6,
                record.pan_last4,
                record.expiry,
                record.currency.numeric(),
                id_bytes(record.account.0),
                record.pan_fingerprint.map(|fingerprint| fingerprint.to_vec())
            ],
        )?;
    }
    Ok(())
}

/// A merchant row's columns from `first` on (`id, acquirer, name, name_zh, city, mcc,
/// settlement_account`).
fn merchant_from_row(row: &rusqlite::Row<'_>, first: usize) -> Result<Merchant, StoreError> {
    Ok(Merchant {
        id: row.get(first)?,
        acquirer: InstitutionId(row.get(first + 1)?),
        name: row.get(first + 2)?,
        name_zh: row.get(first + 3)?,
        city: row.get(first + 4)?,
        mcc: row.get(first + 5)?,
        settlement_account: AccountId(id_from_bytes(&row.get::<_, Vec<u8>>(first + 6)?)?),
    })
}

/// A terminal row (`id, merchant_id, status`).
fn terminal_from_row(row: &rusqlite::Row<'_>) -> Result<Terminal, StoreError> {
    Ok(Terminal {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        status: row.get(2)?,
    })
}

impl SqliteStore {
    pub async fn terminal_with_merchant(
        &self,
        id: &str,
    ) -> Result<Option<(Terminal, Merchant)>, StoreError> {
        let id = id.to_owned();
        self.read(move |connection| {
            let sql = crate::onboarding::sqlite_sql(crate::host_changes::TERMINAL_WITH_MERCHANT);
            let mut statement = connection.prepare_cached(&sql)?;
            let mut rows = statement.query([id])?;
            match rows.next()? {
                Some(row) => Ok(Some((terminal_from_row(row)?, merchant_from_row(row, 3)?))),
                None => Ok(None),
            }
        })
        .await
    }
}

fn read_directory(connection: &Connection) -> Result<Directory, StoreError> {
    fn all<T>(
        connection: &Connection,
        sql: &str,
        map: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut statement = connection.prepare(sql)?;
        let mut rows = statement.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(map(row)?);
        }
        Ok(out)
    }
    Ok(Directory {
        institutions: all(
            connection,
            "SELECT id, kind, name, name_zh FROM institutions",
            |row| {
                let kind: String = row.get(1)?;
                Ok(Institution {
                    id: InstitutionId(row.get(0)?),
                    kind: InstitutionKind::parse(&kind)
                        .ok_or_else(|| directory::unknown("institution kind", &kind))?,
                    name: row.get(2)?,
                    name_zh: row.get(3)?,
                })
            },
        )?,
        merchants: all(
            connection,
            "SELECT id, acquirer, name, name_zh, city, mcc, settlement_account FROM merchants",
            |row| merchant_from_row(row, 0),
        )?,
        terminals: all(
            connection,
            "SELECT id, merchant_id, status FROM terminals",
            terminal_from_row,
        )?,
        staff: all(
            connection,
            "SELECT merchant_id, operator_no, name, role FROM staff",
            |row| {
                let role: String = row.get(3)?;
                Ok(Staff {
                    merchant_id: row.get(0)?,
                    operator_no: row.get(1)?,
                    name: row.get(2)?,
                    role: StaffRole::parse(&role)
                        .ok_or_else(|| directory::unknown("staff role", &role))?,
                })
            },
        )?,
        cardholders: all(
            connection,
            "SELECT id, name, name_zh FROM cardholders",
            |row| {
                Ok(Cardholder {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    name_zh: row.get(2)?,
                })
            },
        )?,
        cards: all(
            connection,
            &format!("SELECT {CARD_COLUMNS} FROM cards"),
            card_from_row,
        )?,
    })
}

fn card_from_row(row: &rusqlite::Row<'_>) -> Result<Card, StoreError> {
    let product: String = row.get(3)?;
    let numeric: i64 = row.get(7)?;
    Ok(Card {
        id: row.get(0)?,
        cardholder_id: row.get(1)?,
        issuer: InstitutionId(row.get(2)?),
        product: CardProduct::parse(&product)
            .ok_or_else(|| directory::unknown("card product", &product))?,
        pan_first6: row.get(4)?,
        pan_last4: row.get(5)?,
        expiry: row.get(6)?,
        currency: u16::try_from(numeric)
            .ok()
            .and_then(|code| Currency::from_numeric(code).ok())
            .ok_or_else(|| directory::unknown("currency", &numeric.to_string()))?,
        account: AccountId(id_from_bytes(&row.get::<_, Vec<u8>>(8)?)?),
        pan_fingerprint: directory::fingerprint(row.get(9)?)?,
    })
}

impl SqliteStore {
    pub async fn put_keys(&self, keys: Vec<StoredKey>) -> Result<(), StoreError> {
        self.write(move |connection| {
            let mut insert = connection.prepare_cached("INSERT INTO hsm_keys (name, token, check_value) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING")?;
            for key in &keys {
                insert.execute(params![key.name, key.token, key.check_value])?;
            }
            Ok(())
        })
        .await
    }

    pub async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.read(|connection| {
            let mut statement =
                connection.prepare("SELECT name, token, check_value FROM hsm_keys")?;
            let rows = statement.query_map([], |row| {
                Ok(StoredKey {
                    name: row.get(0)?,
                    token: row.get(1)?,
                    check_value: row.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// The card with this number fingerprint, from memory when read before (directory writes
    /// go through [`SqliteStore::put_directory`], which forgets them).
    pub async fn card_by_fingerprint(
        &self,
        fingerprint: [u8; 32],
    ) -> Result<Option<Card>, StoreError> {
        let missed = match self.cards.get(&fingerprint) {
            Ok(card) => return Ok(Some(card)),
            Err(missed) => missed,
        };
        let card = self
            .card_where(CardKey::Fingerprint, fingerprint.to_vec())
            .await?;
        if let Some(card) = &card {
            self.cards.fill(missed, fingerprint, card.clone());
        }
        Ok(card)
    }

    pub async fn card_by_account(&self, account: AccountId) -> Result<Option<Card>, StoreError> {
        self.card_where(CardKey::Account, id_bytes(account.0).to_vec())
            .await
    }

    /// The card whose `column` (an indexed blob) is `key`.
    async fn card_where(&self, column: CardKey, key: Vec<u8>) -> Result<Option<Card>, StoreError> {
        self.read_point(move |connection| {
            let sql = match column {
                CardKey::Fingerprint => {
                    sql!("SELECT {CARD_COLUMNS} FROM cards WHERE pan_fingerprint = ?1")
                }
                CardKey::Account => sql!("SELECT {CARD_COLUMNS} FROM cards WHERE account = ?1"),
            };
            let mut statement = connection.prepare_cached(sql)?;
            let mut rows = statement.query([key])?;
            rows.next()?.map(card_from_row).transpose()
        })
        .await
    }
}

/// The indexed columns a card is found by.
#[derive(Clone, Copy, Debug)]
enum CardKey {
    Fingerprint,
    Account,
}

fn issuer_card_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<IssuerCard> {
    Ok(IssuerCard {
        card_id: row.get(0)?,
        status: row.get(1)?,
        service_code: row.get(2)?,
        pin_method: row.get(3)?,
        pin_key_index: row.get(4)?,
        pin_reference: row.get(5)?,
        cryptogram_version: row.get(6)?,
        daily_limit_minor: row.get(7)?,
        pin_failures: row.get(8)?,
        last_atc: row.get(9)?,
        spent_minor: row.get(10)?,
        spent_on: row.get(11)?,
    })
}

fn find_issuer_card(
    connection: &Connection,
    card_id: &str,
) -> Result<Option<IssuerCard>, StoreError> {
    let mut statement = connection.prepare_cached(sql!(
        "SELECT {ISSUER_CARD_COLUMNS} FROM issuer_cards WHERE card_id = ?1"
    ))?;
    Ok(statement
        .query_row([card_id], issuer_card_from_row)
        .optional()?)
}

/// Writes the state of every card the group changed, once.
fn write_cards(connection: &Connection, cards: &CardSet) -> Result<(), StoreError> {
    let mut update = connection.prepare_cached("UPDATE issuer_cards SET pin_failures = ?1, last_atc = ?2, spent_minor = ?3, spent_on = ?4 WHERE card_id = ?5")?;
    for card in cards.dirty() {
        update.execute(params![
            card.pin_failures,
            card.last_atc,
            card.spent_minor,
            card.spent_on,
            card.card_id
        ])?;
    }
    Ok(())
}

impl SqliteStore {
    pub async fn authorize(
        &self,
        authorization: Authorization,
    ) -> Result<AuthorizationResult, StoreError> {
        self.call(|reply| Job::Authorize {
            authorization,
            reply,
        })
        .await
    }

    pub async fn put_issuer_cards(&self, cards: Vec<IssuerCard>) -> Result<(), StoreError> {
        self.write(move |connection| {
            let mut insert = connection.prepare_cached(sql!(
                "INSERT INTO issuer_cards ({ISSUER_CARD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (card_id) DO NOTHING"
            ))?;
            for card in &cards {
                insert.execute(params![
                    card.card_id,
                    card.status,
                    card.service_code,
                    card.pin_method,
                    card.pin_key_index,
                    card.pin_reference,
                    card.cryptogram_version,
                    card.daily_limit_minor,
                    card.pin_failures,
                    card.last_atc,
                    card.spent_minor,
                    card.spent_on
                ])?;
            }
            Ok(())
        })
        .await
    }

    /// The issuer's state of a card as last committed: from memory for a card the writer has
    /// read or changed since start (it remembers every change after its commit), else from the
    /// database.
    pub async fn issuer_card(&self, card_id: String) -> Result<Option<IssuerCard>, StoreError> {
        let missed = match self.issuer_cards.get(card_id.as_str()) {
            Ok(card) => return Ok(Some(card)),
            Err(missed) => missed,
        };
        let card = self
            .read_point(move |connection| find_issuer_card(connection, &card_id))
            .await?;
        if let Some(card) = &card {
            self.issuer_cards
                .fill(missed, card.card_id.clone(), card.clone());
        }
        Ok(card)
    }
}

fn terminal_session_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TerminalSession> {
    Ok(TerminalSession {
        terminal_id: row.get(0)?,
        key_scheme: row.get(1)?,
        tmk_key: row.get(2)?,
        pin_key: row.get(3)?,
        mac_key: row.get(4)?,
        batch: row.get(5)?,
        operator: row.get(6)?,
        signed_on_at: row.get(7)?,
        initial_ksn: row.get(8)?,
        ksn_counter: row.get(9)?,
    })
}

pub(crate) fn find_terminal_session(
    connection: &Connection,
    terminal_id: &str,
) -> Result<Option<TerminalSession>, StoreError> {
    let mut statement = connection.prepare_cached(sql!(
        "SELECT {TERMINAL_SESSION_COLUMNS} FROM terminal_sessions WHERE terminal_id = ?1"
    ))?;
    Ok(statement
        .query_row([terminal_id], terminal_session_from_row)
        .optional()?)
}

impl SqliteStore {
    pub async fn put_terminal_sessions(
        &self,
        sessions: Vec<TerminalSession>,
    ) -> Result<(), StoreError> {
        self.write(move |connection| {
            let mut insert = connection.prepare_cached(sql!(
                "INSERT INTO terminal_sessions ({TERMINAL_SESSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (terminal_id) DO NOTHING"
            ))?;
            for session in &sessions {
                insert.execute(params![
                    session.terminal_id,
                    session.key_scheme,
                    session.tmk_key,
                    session.pin_key,
                    session.mac_key,
                    session.batch,
                    session.operator,
                    session.signed_on_at,
                    session.initial_ksn,
                    session.ksn_counter
                ])?;
            }
            Ok(())
        })
        .await
    }

    /// A terminal's session, from memory when this process has read or written it before:
    /// it is the only writer (the lock file), and every session write updates the cache after
    /// its commit.
    pub async fn terminal_session(
        &self,
        terminal_id: String,
    ) -> Result<Option<TerminalSession>, StoreError> {
        let missed = match self.sessions.get(&terminal_id) {
            Ok(session) => return Ok(Some(session)),
            Err(missed) => missed,
        };
        let session = self
            .read_point(move |connection| find_terminal_session(connection, &terminal_id))
            .await?;
        if let Some(session) = &session {
            self.sessions
                .fill(missed, session.terminal_id.clone(), session.clone());
        }
        Ok(session)
    }

    /// Records a session as committed.
    pub(crate) fn remember_session(&self, terminal_id: &str, session: &Option<TerminalSession>) {
        self.sessions
            .remember(terminal_id.to_owned(), session.clone());
    }

    pub async fn change_session(
        &self,
        terminal_id: String,
        change: SessionChange,
    ) -> Result<Option<TerminalSession>, StoreError> {
        let id = terminal_id.clone();
        let session = self
            .write(move |connection| {
                let sql = change.sql("?1", "?2");
                match change {
                    SessionChange::SignOff => connection.execute(&sql, params![terminal_id])?,
                    SessionChange::CloseBatch { batch } => {
                        connection.execute(&sql, params![terminal_id, batch])?
                    }
                };
                find_terminal_session(connection, &terminal_id)
            })
            .await?;
        self.remember_session(&id, &session);
        Ok(session)
    }

    /// Raises a DUKPT terminal's accepted KSN counter to `counter` if it is above it. A replay
    /// is refused from memory when the session is cached (no write); an accepted counter is
    /// one conditional UPDATE, atomic by itself (no savepoint), committed in the writer's
    /// group commit with whatever else is waiting, and the cache takes the row it returned.
    pub async fn accept_ksn_counter(
        &self,
        terminal_id: String,
        counter: i64,
    ) -> Result<bool, StoreError> {
        if let Ok(session) = self.sessions.get(&terminal_id)
            && session.ksn_counter >= counter
        {
            return Ok(false);
        }
        let id = terminal_id.clone();
        let session = self
            .write_in(false, move |connection| {
                let mut statement = connection.prepare_cached(sql!(
                    "UPDATE terminal_sessions SET ksn_counter = ?2 WHERE terminal_id = ?1 AND ksn_counter < ?2 RETURNING {TERMINAL_SESSION_COLUMNS}"
                ))?;
                Ok(statement
                    .query_row(params![terminal_id, counter], terminal_session_from_row)
                    .optional()?)
            })
            .await?;
        let accepted = session.is_some();
        if accepted {
            self.remember_session(&id, &session);
        }
        Ok(accepted)
    }

    pub async fn sign_on(&self, sign_on: SignOn) -> Result<Option<TerminalSession>, StoreError> {
        let id = sign_on.terminal_id.clone();
        let session = self.write(move |connection| {
            connection.execute(
                "UPDATE terminal_sessions SET pin_key = ?1, mac_key = ?2, operator = ?3, signed_on_at = ?4 WHERE terminal_id = ?5",
                params![sign_on.pin_key, sign_on.mac_key, sign_on.operator, sign_on.at, sign_on.terminal_id],
            )?;
            find_terminal_session(connection, &sign_on.terminal_id)
        })
        .await?;
        self.remember_session(&id, &session);
        Ok(session)
    }
}

pub(crate) fn journal_entry_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<JournalEntry> {
    Ok(JournalEntry {
        received_at: row.get(0)?,
        duration_us: row.get(1)?,
        peer: row.get(2)?,
        terminal_id: row.get(3)?,
        merchant_id: row.get(4)?,
        mti: row.get(5)?,
        kind: row.get(6)?,
        batch: row.get(7)?,
        stan: row.get(8)?,
        transmission: row.get(9)?,
        amount_minor: row.get(10)?,
        currency: row.get(11)?,
        card: row.get(12)?,
        original_batch: row.get(13)?,
        original_stan: row.get(14)?,
        response: row.get(15)?,
        rrn: row.get(16)?,
        auth_code: row.get(17)?,
        answer: row.get(18)?,
        request_mac: row.get(19)?,
        risk: row.get(20)?,
        card_id: row.get(21)?,
        operator: row.get(22)?,
        entry_mode: row.get(23)?,
        card_verification: row.get(24)?,
    })
}

impl SqliteStore {
    /// Whether the journal may hold a message with this trace number in this terminal batch:
    /// `false` when it is above the highest one journaled. This process is the only writer
    /// (the lock file), and every journal row goes through its writer thread, which keeps the
    /// watermarks: a batch's watermark is loaded in the writer the first time it is asked for
    /// and raised by every journal write after it (before commit, so a rolled-back group can
    /// only leave it too high — more look-ups, never a missed duplicate).
    pub async fn journal_may_have(
        &self,
        terminal_id: &str,
        batch: i64,
        stan: i64,
    ) -> Result<bool, StoreError> {
        let key = (terminal_id.to_owned(), batch);
        let known = self
            .watermarks
            .lock()
            .map_err(|_| StoreError::Write("watermarks poisoned".into()))?
            .get(&key)
            .copied();
        let mark = match known {
            Some(mark) => mark,
            None => {
                let watermarks = self.watermarks.clone();
                self.write(move |connection| {
                    let mark: Option<i64> = connection
                        .prepare_cached(
                            "SELECT max(stan) FROM journal WHERE terminal_id = ?1 AND batch = ?2",
                        )?
                        .query_row(params![key.0, key.1], |row| row.get(0))?;
                    let mark = mark.unwrap_or(0);
                    let mut watermarks = watermarks
                        .lock()
                        .map_err(|_| StoreError::Write("watermarks poisoned".into()))?;
                    if watermarks.len() >= MAX_WATERMARKS {
                        watermarks.clear();
                    }
                    let kept = watermarks.entry(key).or_insert(mark);
                    *kept = (*kept).max(mark);
                    Ok(*kept)
                })
                .await?
            }
        };
        Ok(stan <= mark)
    }

    /// Appends entries through the writer, group-committed with whatever else is waiting.
    pub async fn journal(&self, entries: Vec<JournalEntry>) -> Result<(), StoreError> {
        let watermarks = self.watermarks.clone();
        // One entry is one INSERT: atomic without a savepoint.
        let one_statement = entries.len() == 1;
        self.write_in(!one_statement, move |connection| {
            let mut insert = connection.prepare_cached(sql!(
                "INSERT INTO journal ({JOURNAL_COLUMNS}) VALUES ({})",
                (1..=JOURNAL_COLUMN_COUNT)
                    .map(|index| format!("?{index}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))?;
            for entry in &entries {
                insert.execute(params![
                    entry.received_at,
                    entry.duration_us,
                    entry.peer,
                    entry.terminal_id,
                    entry.merchant_id,
                    entry.mti,
                    entry.kind,
                    entry.batch,
                    entry.stan,
                    entry.transmission,
                    entry.amount_minor,
                    entry.currency,
                    entry.card,
                    entry.original_batch,
                    entry.original_stan,
                    entry.response,
                    entry.rrn,
                    entry.auth_code,
                    entry.answer,
                    entry.request_mac,
                    entry.risk,
                    entry.card_id,
                    entry.operator,
                    entry.entry_mode,
                    entry.card_verification
                ])?;
            }
            if let Ok(mut watermarks) = watermarks.lock() {
                for entry in &entries {
                    if let (Some(batch), Some(stan)) = (entry.batch, entry.stan)
                        && let Some(mark) = watermarks.get_mut(&(entry.terminal_id.clone(), batch))
                    {
                        *mark = (*mark).max(stan);
                    }
                }
            }
            Ok(())
        })
        .await
    }

    pub async fn journal_of(
        &self,
        terminal_id: String,
        batch: i64,
        stan: Option<i64>,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let read = move |connection: &Connection| {
            // Two statements, so that the index is used on all three columns when a trace
            // number is given (the duplicate check of every financial message).
            let rows = match stan {
                Some(stan) => connection
                    .prepare_cached(sql!(
                        "SELECT {JOURNAL_COLUMNS} FROM journal WHERE terminal_id = ?1 AND batch = ?2 AND stan = ?3 ORDER BY id"
                    ))?
                    .query_map(params![terminal_id, batch, stan], journal_entry_from_row)?
                    .collect::<Result<Vec<_>, _>>()?,
                None => connection
                    .prepare_cached(sql!(
                        "SELECT {JOURNAL_COLUMNS} FROM journal WHERE terminal_id = ?1 AND batch = ?2 ORDER BY id"
                    ))?
                    .query_map(params![terminal_id, batch], journal_entry_from_row)?
                    .collect::<Result<Vec<_>, _>>()?,
            };
            Ok(rows)
        };
        match stan {
            Some(_) => self.read_point(read).await,
            None => self.read(read).await,
        }
    }

    pub async fn journal_with_cards(
        &self,
        since_micros: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<(i64, JournalEntry)>, StoreError> {
        self.read(move |connection| {
            let mut select = connection.prepare_cached(sql!(
                "SELECT {JOURNAL_COLUMNS}, id FROM journal WHERE id > ?1 AND received_at >= ?2 AND card_id IS NOT NULL ORDER BY id LIMIT ?3"
            ))?;
            let rows = select.query_map(params![after_id, since_micros, limit], |row| {
                Ok((row.get(JOURNAL_COLUMN_COUNT)?, journal_entry_from_row(row)?))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn journal_recent(&self, limit: i64) -> Result<Vec<JournalEntry>, StoreError> {
        self.read(move |connection| {
            let mut select = connection.prepare_cached(sql!(
                "SELECT {JOURNAL_COLUMNS} FROM (SELECT * FROM journal ORDER BY id DESC LIMIT ?1) ORDER BY id"
            ))?;
            let rows = select.query_map(params![limit], journal_entry_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}

fn pending_reversal_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PendingReversal> {
    Ok(PendingReversal {
        id: row.get(0)?,
        created_at: row.get(1)?,
        terminal_id: row.get(2)?,
        merchant_id: row.get(3)?,
        batch: row.get(4)?,
        stan: row.get(5)?,
        processing_code: row.get(6)?,
        condition_code: row.get(7)?,
        transaction_type: row.get(8)?,
        original_batch: row.get(9)?,
        original_stan: row.get(10)?,
        amount_minor: row.get(11)?,
        currency: row.get(12)?,
        attempts: row.get(13)?,
        next_attempt_at: row.get(14)?,
        last_response: row.get(15)?,
        done_at: row.get(16)?,
    })
}

impl SqliteStore {
    pub async fn queue_reversal(&self, reversal: PendingReversal) -> Result<(), StoreError> {
        self.write(move |connection| {
            connection.execute(
                "INSERT INTO pending_reversals (created_at, terminal_id, merchant_id, batch, stan, processing_code, condition_code, transaction_type, original_batch, original_stan, amount_minor, currency, attempts, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 0, ?13) ON CONFLICT (terminal_id, batch, stan, transaction_type) DO NOTHING",
                params![
                    reversal.created_at,
                    reversal.terminal_id,
                    reversal.merchant_id,
                    reversal.batch,
                    reversal.stan,
                    reversal.processing_code,
                    reversal.condition_code,
                    reversal.transaction_type,
                    reversal.original_batch,
                    reversal.original_stan,
                    reversal.amount_minor,
                    reversal.currency,
                    reversal.next_attempt_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn due_reversals(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<PendingReversal>, StoreError> {
        self.read(move |connection| {
            let mut select = connection.prepare_cached(sql!(
                "SELECT {PENDING_REVERSAL_COLUMNS} FROM pending_reversals WHERE done_at IS NULL AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2"
            ))?;
            let rows = select.query_map(params![now, limit], pending_reversal_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn all_reversals(&self) -> Result<Vec<PendingReversal>, StoreError> {
        self.read(move |connection| {
            let mut select = connection.prepare_cached(sql!(
                "SELECT {PENDING_REVERSAL_COLUMNS} FROM pending_reversals ORDER BY id"
            ))?;
            let rows = select.query_map([], pending_reversal_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub async fn reversal_queued(
        &self,
        terminal_id: &str,
        batch: i64,
        stan: i64,
        transaction_type: &str,
    ) -> Result<bool, StoreError> {
        let terminal_id = terminal_id.to_owned();
        let transaction_type = transaction_type.to_owned();
        self.read(move |connection| {
            let mut select = connection.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM pending_reversals WHERE terminal_id = ?1 AND batch = ?2 AND stan = ?3 AND transaction_type = ?4)",
            )?;
            Ok(select.query_row(params![terminal_id, batch, stan, transaction_type], |row| {
                row.get::<_, bool>(0)
            })?)
        })
        .await
    }

    pub async fn record_reversal_attempt(
        &self,
        attempt: ReversalAttempt,
    ) -> Result<(), StoreError> {
        self.write(move |connection| {
            connection.execute(
                "UPDATE pending_reversals SET attempts = attempts + 1, last_response = ?1, done_at = ?2, next_attempt_at = ?3 WHERE id = ?4 AND done_at IS NULL",
                params![attempt.response, attempt.done_at, attempt.next_attempt_at, attempt.id],
            )?;
            Ok(())
        })
        .await
    }
}
