//! The SQLite backend: one writer thread with group commit, readers on their own connections.
//!
//! The writer owns the only write connection and an in-memory copy of every ledger account
//! (accounts change only through it, and a lock file keeps other processes out). Callers send
//! jobs through a bounded queue; the writer takes as many as are waiting (up to
//! [`MAX_GROUP_REQUESTS`]), runs them in one transaction, commits with `synchronous=FULL`, and
//! only then answers each caller. A failed commit rolls everything back, reloads the account
//! cache from disk and answers every caller of the group with the error.

use crate::directory::{self, Card, CardProduct, Cardholder, Directory, Institution, InstitutionKind, Merchant, Staff, StaffRole, Terminal};
use crate::migrate::{self, MIGRATIONS_TABLE, Migration};
use crate::rows::{ACCOUNT_COLUMNS, AccountRow, TRANSFER_COLUMNS, TransferRow, id_bytes, id_from_bytes, timestamp_to_sql};
use crate::{Clock, Counters, StoreError, StoreStats, TransferResults};
use ledger::{Account, AccountError, AccountId, AccountSpec, Changes, InstitutionId, LedgerState, Transfer, TransferId, TransferRequest};
use money::Currency;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Jobs waiting for the writer; a full queue makes callers wait (back-pressure) instead of
/// growing memory without bound.
pub const QUEUE_CAPACITY: usize = 16_384;
/// Most transfer requests committed in one transaction: large enough to amortise the fsync,
/// small enough that a commit holds callers for milliseconds, not seconds.
pub const MAX_GROUP_REQUESTS: usize = 8_192;
/// Holds expired per sweep, so one sweep cannot stall the writer.
pub const MAX_EXPIRE_PER_SWEEP: usize = 4_096;
/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;
/// How long a connection waits for a lock held by a checkpoint or a reader.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

type WriteFn = Box<dyn FnOnce(&Connection) -> Result<Box<dyn Any + Send>, StoreError> + Send>;
type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Job {
    Transfers { requests: Vec<TransferRequest>, reply: Reply<TransferResults> },
    Accounts { specs: Vec<AccountSpec>, reply: Reply<Vec<Result<Account, AccountError>>> },
    Expire { reply: Reply<usize> },
    Write { work: WriteFn, reply: Reply<Box<dyn Any + Send>> },
}

impl Job {
    fn weight(&self) -> usize {
        match self {
            Job::Transfers { requests, .. } => requests.len(),
            Job::Accounts { specs, .. } => specs.len(),
            Job::Expire { .. } => MAX_EXPIRE_PER_SWEEP / 16,
            Job::Write { .. } => 1,
        }
    }
}

/// An answer computed inside the transaction, delivered only after it commits.
enum Answer {
    Transfers(Reply<TransferResults>, TransferResults),
    Accounts(Reply<Vec<Result<Account, AccountError>>>, Vec<Result<Account, AccountError>>),
    Expired(Reply<usize>, usize),
    Written(Reply<Box<dyn Any + Send>>, Box<dyn Any + Send>),
}

impl Answer {
    fn deliver(self) {
        // A caller that went away (timed out, shut down) no longer needs its answer; the work
        // is committed either way, and its retry will find it by id.
        match self {
            Answer::Transfers(reply, value) => drop(reply.send(Ok(value))),
            Answer::Accounts(reply, value) => drop(reply.send(Ok(value))),
            Answer::Expired(reply, value) => drop(reply.send(Ok(value))),
            Answer::Written(reply, value) => drop(reply.send(Ok(value))),
        }
    }

    fn fail(self, message: &str) {
        let error = || StoreError::Write(message.to_owned());
        match self {
            Answer::Transfers(reply, _) => drop(reply.send(Err(error()))),
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
    readers: Arc<Readers>,
    counters: Arc<Counters>,
    /// Held for the life of the store: a second process on the same file is refused.
    _lock: std::fs::File,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl SqliteStore {
    pub async fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(path, clock)).await.map_err(|error| StoreError::Write(error.to_string()))?
    }

    fn open_blocking(path: PathBuf, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|error| StoreError::Config(format!("cannot create {}: {error}", parent.display())))?;
        }
        let lock = lock_file(&path)?;
        let connection = open_writer(&path)?;
        migrate(&connection)?;
        let accounts = load_accounts(&connection)?;
        ledger::check_books(accounts.values()).map_err(|error| StoreError::Corrupt(error.to_string()))?;
        let last_timestamp: i64 = connection.query_row("SELECT coalesce(max(timestamp), 0) FROM ledger_transfers", [], |row| row.get(0))?;
        let counters = Arc::new(Counters::default());
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let mut writer = Writer { connection, accounts, clock, last_timestamp: u64::try_from(last_timestamp).unwrap_or(0), counters: counters.clone() };
        let handle = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|error| StoreError::Write(format!("cannot start the writer thread: {error}")))?;
        Ok(SqliteStore { jobs: sender, writer: Some(handle), readers: Arc::new(Readers::new(path)), counters, _lock: lock })
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Job) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(make(reply)).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    pub async fn submit(&self, requests: Vec<TransferRequest>) -> Result<TransferResults, StoreError> {
        self.call(|reply| Job::Transfers { requests, reply }).await
    }

    pub async fn create_accounts(&self, specs: Vec<AccountSpec>) -> Result<Vec<Result<Account, AccountError>>, StoreError> {
        self.call(|reply| Job::Accounts { specs, reply }).await
    }

    pub async fn expire_due(&self) -> Result<usize, StoreError> {
        self.call(|reply| Job::Expire { reply }).await
    }

    /// Runs `work` on the writer connection inside the current group's transaction (in a
    /// savepoint of its own, so its failure touches nothing else) and returns its result after
    /// the commit. This is how later tables write on SQLite.
    pub async fn write<T: Send + 'static>(&self, work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
        let work: WriteFn = Box::new(move |connection| work(connection).map(|value| Box::new(value) as Box<dyn Any + Send>));
        let value = self.call(|reply| Job::Write { work, reply }).await?;
        value.downcast::<T>().map(|boxed| *boxed).map_err(|_| StoreError::Write("writer returned an unexpected type".into()))
    }

    /// Runs `work` on a read connection on the blocking pool.
    pub async fn read<T: Send + 'static>(&self, work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.with(work)).await.map_err(|error| StoreError::Write(error.to_string()))?
    }

    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        self.read(|connection| current_version(connection)).await
    }

    pub async fn accounts(&self, ids: Vec<AccountId>) -> Result<Vec<Account>, StoreError> {
        self.read(move |connection| {
            let mut statement = connection.prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id = ?1"))?;
            let mut found = Vec::new();
            for id in ids.into_iter().collect::<BTreeSet<_>>() {
                if let Some(row) = statement.query_row([id_bytes(id.0)], account_row).optional()? {
                    found.push(row.into_account()?);
                }
            }
            Ok(found)
        })
        .await
    }

    pub async fn all_accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.read(|connection| Ok(load_accounts(connection)?.into_values().collect::<Vec<_>>())).await.map(|mut accounts| {
            accounts.sort_by_key(|account| account.id);
            accounts
        })
    }

    pub async fn transfer(&self, id: TransferId) -> Result<Option<Transfer>, StoreError> {
        self.read(move |connection| find_transfer(connection, id)).await
    }

    pub async fn all_transfers(&self) -> Result<Vec<Transfer>, StoreError> {
        self.read(|connection| {
            let mut statement = connection.prepare(&format!("SELECT {TRANSFER_COLUMNS} FROM ledger_transfers ORDER BY timestamp, id"))?;
            let rows = statement.query_map([], transfer_row)?;
            rows.map(|row| row?.into_transfer()).collect()
        })
        .await
    }

    pub async fn put_directory(&self, directory: Directory) -> Result<(), StoreError> {
        self.write(move |connection| insert_directory(connection, &directory)).await
    }

    pub async fn load_directory(&self) -> Result<Directory, StoreError> {
        self.read(|connection| read_directory(connection)).await
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.read(move |connection| Ok(connection.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| row.get(0)).optional()?)).await
    }

    pub async fn set_meta(&self, key: String, value: String) -> Result<(), StoreError> {
        self.write(move |connection| {
            connection.execute("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [key, value])?;
            Ok(())
        })
        .await
    }

    pub fn stats(&self) -> StoreStats {
        self.counters.snapshot()
    }

    /// Closes the queue; the writer finishes every job already queued, commits, and exits.
    pub async fn close(mut self) -> Result<(), StoreError> {
        let SqliteStore { jobs, writer, .. } = &mut self;
        drop(std::mem::replace(jobs, mpsc::channel(1).0));
        if let Some(handle) = writer.take() {
            tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|error| StoreError::Write(error.to_string()))?
                .map_err(|_| StoreError::Write("the writer thread panicked".into()))?;
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
        .map_err(|error| StoreError::Config(format!("cannot open lock file {}: {error}", PathBuf::from(&lock_path).display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Config(format!(
            "{} is in use by another easypos process; stop it first (only one process may write an SQLite database — use PostgreSQL to run several)",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(error)) => Err(StoreError::Config(format!("cannot lock {}: {error}", PathBuf::from(&lock_path).display()))),
    }
}

/// Opens the write connection and makes sure durability is what we promise: WAL journal and
/// `synchronous=FULL`, read back rather than assumed.
fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(path).map_err(|error| describe_open_error(path, error))?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).map_err(|error| describe_open_error(path, error))?;
    connection.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    let synchronous: i64 = connection.query_row("PRAGMA synchronous", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") || synchronous != 2 {
        return Err(StoreError::Config(format!("{}: expected journal_mode=wal and synchronous=FULL, got {mode} and {synchronous}", path.display())));
    }
    Ok(connection)
}

fn describe_open_error(path: &Path, error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt(format!("{} is not a valid SQLite database ({error}); restore it from a backup or move it aside", path.display()))
        }
        _ => StoreError::Sqlite(error),
    }
}

fn current_version(connection: &Connection) -> Result<u32, StoreError> {
    let version: i64 = connection.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |row| row.get(0))?;
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
    for migration in migrations.iter().filter(|migration| migration.version > found) {
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
        tracing::info!(version = migration.version, name = migration.name, "applied migration");
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

fn load_accounts(connection: &Connection) -> Result<HashMap<AccountId, Account>, StoreError> {
    let mut statement = connection.prepare(&format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts"))?;
    let rows = statement.query_map([], account_row)?;
    let mut accounts = HashMap::new();
    for row in rows {
        let account = row?.into_account()?;
        accounts.insert(account.id, account);
    }
    Ok(accounts)
}

fn find_transfer(connection: &Connection, id: TransferId) -> Result<Option<Transfer>, StoreError> {
    let mut statement = connection.prepare_cached(&format!("SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE id = ?1"))?;
    statement.query_row([id_bytes(id.0)], transfer_row).optional()?.map(TransferRow::into_transfer).transpose()
}

/// The ledger's view of the database during a group: accounts from the writer's cache,
/// transfers from the open transaction (which sees the group's own inserts).
struct WriterView<'a> {
    connection: &'a Connection,
    accounts: &'a HashMap<AccountId, Account>,
    error: RefCell<Option<StoreError>>,
}

impl LedgerState for WriterView<'_> {
    fn account(&self, id: AccountId) -> Option<Account> {
        self.accounts.get(&id).copied()
    }

    fn transfer(&self, id: TransferId) -> Option<Transfer> {
        match find_transfer(self.connection, id) {
            Ok(found) => found,
            Err(error) => {
                self.error.borrow_mut().get_or_insert(error);
                None
            }
        }
    }
}

impl WriterView<'_> {
    fn into_result<T>(self, value: T) -> Result<T, StoreError> {
        match self.error.into_inner() {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}

struct Writer {
    connection: Connection,
    accounts: HashMap<AccountId, Account>,
    clock: Arc<dyn Clock>,
    last_timestamp: u64,
    counters: Arc<Counters>,
}

impl Writer {
    fn run(&mut self, mut jobs: mpsc::Receiver<Job>) {
        while let Some(first) = jobs.blocking_recv() {
            let mut weight = first.weight();
            let mut group = vec![first];
            while weight < MAX_GROUP_REQUESTS {
                match jobs.try_recv() {
                    Ok(job) => {
                        weight += job.weight();
                        group.push(job);
                    }
                    Err(_) => break,
                }
            }
            self.run_group(group);
        }
        tracing::debug!("sqlite writer drained and stopped");
    }

    /// Timestamps are unique and increasing even if the wall clock steps back.
    fn next_timestamp(&mut self, count: usize) -> u64 {
        let now = self.clock.now().max(self.last_timestamp + 1);
        self.last_timestamp = now + count as u64;
        now
    }

    fn run_group(&mut self, group: Vec<Job>) {
        let mut answers = Vec::with_capacity(group.len());
        let mut dirty = BTreeSet::new();
        let mut requests = 0_u64;
        let mut created = 0_u64;
        let outcome = self.connection.execute_batch("BEGIN IMMEDIATE").map_err(StoreError::from).and_then(|()| {
            for job in group {
                requests += job.weight() as u64;
                answers.extend(self.run_job(job, &mut dirty, &mut created)?);
            }
            self.flush_accounts(&dirty)?;
            self.connection.execute_batch("COMMIT")?;
            Ok(())
        });
        match outcome {
            Ok(()) => {
                self.counters.add(1, requests, created);
                answers.into_iter().for_each(Answer::deliver);
            }
            Err(error) => {
                let message = error.to_string();
                tracing::error!(error = %message, "group commit failed; rolled back");
                // The rollback fails only if no transaction is open, which is what we want anyway.
                let _ = self.connection.execute_batch("ROLLBACK");
                if let Ok(accounts) = load_accounts(&self.connection) {
                    self.accounts = accounts;
                }
                answers.into_iter().for_each(|answer| answer.fail(&message));
            }
        }
    }

    /// Runs one job inside the group's transaction. `None` means the job already got its
    /// answer (its own failure, rolled back to its savepoint) and the group goes on.
    fn run_job(&mut self, job: Job, dirty: &mut BTreeSet<AccountId>, created: &mut u64) -> Result<Option<Answer>, StoreError> {
        match job {
            Job::Transfers { requests, reply } => {
                let now = self.next_timestamp(requests.len());
                let view = WriterView { connection: &self.connection, accounts: &self.accounts, error: RefCell::new(None) };
                let (results, changes) = ledger::execute(&view, &requests, now);
                let changes = view.into_result(changes)?;
                *created += changes.created.len() as u64;
                self.write_changes(changes, dirty)?;
                Ok(Some(Answer::Transfers(reply, results)))
            }
            Job::Accounts { specs, reply } => {
                let now = self.next_timestamp(0);
                let view = WriterView { connection: &self.connection, accounts: &self.accounts, error: RefCell::new(None) };
                let (results, new) = ledger::open_accounts(&view, &specs, now);
                let new = view.into_result(new)?;
                let mut statement = self.connection.prepare_cached(&format!("INSERT INTO ledger_accounts ({ACCOUNT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"))?;
                for account in new {
                    let row = AccountRow::from_account(&account);
                    statement.execute(params![row.id, row.institution, row.currency, row.code, row.balance_rule, row.debits_pending, row.debits_posted, row.credits_pending, row.credits_posted, row.created_at])?;
                    self.accounts.insert(account.id, account);
                }
                Ok(Some(Answer::Accounts(reply, results)))
            }
            Job::Expire { reply } => {
                let now = self.next_timestamp(0);
                let due = self.due_holds(now)?;
                let view = WriterView { connection: &self.connection, accounts: &self.accounts, error: RefCell::new(None) };
                let changes = ledger::expire(&view, &due, now);
                let changes = view.into_result(changes)?;
                let expired = changes.statuses.len();
                self.write_changes(changes, dirty)?;
                Ok(Some(Answer::Expired(reply, expired)))
            }
            Job::Write { work, reply } => {
                self.connection.execute_batch("SAVEPOINT job")?;
                match work(&self.connection) {
                    Ok(value) => {
                        self.connection.execute_batch("RELEASE job")?;
                        Ok(Some(Answer::Written(reply, value)))
                    }
                    Err(error) => {
                        self.connection.execute_batch("ROLLBACK TO job; RELEASE job")?;
                        drop(reply.send(Err(error)));
                        Ok(None)
                    }
                }
            }
        }
    }

    fn due_holds(&self, now: u64) -> Result<Vec<TransferId>, StoreError> {
        let mut statement = self.connection.prepare_cached("SELECT id FROM ledger_transfers WHERE status = 1 AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2")?;
        let rows = statement.query_map(params![timestamp_to_sql(now), MAX_EXPIRE_PER_SWEEP as i64], |row| row.get::<_, Vec<u8>>(0))?;
        rows.map(|row| Ok(TransferId(id_from_bytes(&row?)?))).collect()
    }

    fn write_changes(&mut self, changes: Changes, dirty: &mut BTreeSet<AccountId>) -> Result<(), StoreError> {
        let mut insert = self.connection.prepare_cached(&format!(
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
        let mut status = self.connection.prepare_cached("UPDATE ledger_transfers SET status = ?1 WHERE id = ?2")?;
        for (id, new_status) in &changes.statuses {
            status.execute(params![new_status.code(), id_bytes(id.0)])?;
        }
        for (id, account) in changes.accounts {
            self.accounts.insert(id, account);
            dirty.insert(id);
        }
        Ok(())
    }

    /// Writes each account touched by the group once, with its final totals.
    fn flush_accounts(&self, dirty: &BTreeSet<AccountId>) -> Result<(), StoreError> {
        let mut update = self.connection.prepare_cached(
            "UPDATE ledger_accounts SET debits_pending = ?1, debits_posted = ?2, credits_pending = ?3, credits_posted = ?4 WHERE id = ?5",
        )?;
        for id in dirty {
            if let Some(account) = self.accounts.get(id) {
                update.execute(params![account.debits_pending, account.debits_posted, account.credits_pending, account.credits_posted, id_bytes(id.0)])?;
            }
        }
        Ok(())
    }
}

/// Read-only connections, opened on demand and kept for reuse.
#[derive(Debug)]
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn new(path: PathBuf) -> Self {
        Readers { path, idle: Mutex::new(Vec::new()) }
    }

    fn with<T>(&self, work: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let reused = self.idle.lock().map_err(|_| StoreError::Write("reader pool poisoned".into()))?.pop();
        let connection = match reused {
            Some(connection) => connection,
            None => {
                let connection = Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
                connection.busy_timeout(BUSY_TIMEOUT)?;
                connection
            }
        };
        let result = work(&connection);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE_READERS
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
            "INSERT INTO cards (id, cardholder_id, issuer, product, pan_first6, pan_last4, expiry, currency, account) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
            params![
                record.id,
                record.cardholder_id,
                record.issuer.0,
                record.product.as_str(),
                record.pan_first6,
                record.pan_last4,
                record.expiry,
                record.currency.numeric(),
                id_bytes(record.account.0)
            ],
        )?;
    }
    Ok(())
}

fn read_directory(connection: &Connection) -> Result<Directory, StoreError> {
    fn all<T>(connection: &Connection, sql: &str, map: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
        let mut statement = connection.prepare(sql)?;
        let mut rows = statement.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(map(row)?);
        }
        Ok(out)
    }
    let currency = |numeric: i64| u16::try_from(numeric).ok().and_then(|code| Currency::from_numeric(code).ok()).ok_or_else(|| directory::unknown("currency", &numeric.to_string()));
    Ok(Directory {
        institutions: all(connection, "SELECT id, kind, name, name_zh FROM institutions", |row| {
            let kind: String = row.get(1)?;
            Ok(Institution { id: InstitutionId(row.get(0)?), kind: InstitutionKind::parse(&kind).ok_or_else(|| directory::unknown("institution kind", &kind))?, name: row.get(2)?, name_zh: row.get(3)? })
        })?,
        merchants: all(connection, "SELECT id, acquirer, name, name_zh, city, mcc, settlement_account FROM merchants", |row| {
            Ok(Merchant {
                id: row.get(0)?,
                acquirer: InstitutionId(row.get(1)?),
                name: row.get(2)?,
                name_zh: row.get(3)?,
                city: row.get(4)?,
                mcc: row.get(5)?,
                settlement_account: AccountId(id_from_bytes(&row.get::<_, Vec<u8>>(6)?)?),
            })
        })?,
        terminals: all(connection, "SELECT id, merchant_id, status FROM terminals", |row| Ok(Terminal { id: row.get(0)?, merchant_id: row.get(1)?, status: row.get(2)? }))?,
        staff: all(connection, "SELECT merchant_id, operator_no, name, role FROM staff", |row| {
            let role: String = row.get(3)?;
            Ok(Staff { merchant_id: row.get(0)?, operator_no: row.get(1)?, name: row.get(2)?, role: StaffRole::parse(&role).ok_or_else(|| directory::unknown("staff role", &role))? })
        })?,
        cardholders: all(connection, "SELECT id, name, name_zh FROM cardholders", |row| Ok(Cardholder { id: row.get(0)?, name: row.get(1)?, name_zh: row.get(2)? }))?,
        cards: all(connection, "SELECT id, cardholder_id, issuer, product, pan_first6, pan_last4, expiry, currency, account FROM cards", |row| {
            let product: String = row.get(3)?;
            Ok(Card {
                id: row.get(0)?,
                cardholder_id: row.get(1)?,
                issuer: InstitutionId(row.get(2)?),
                product: CardProduct::parse(&product).ok_or_else(|| directory::unknown("card product", &product))?,
                pan_first6: row.get(4)?,
                pan_last4: row.get(5)?,
                expiry: row.get(6)?,
                currency: currency(row.get(7)?)?,
                account: AccountId(id_from_bytes(&row.get::<_, Vec<u8>>(8)?)?),
            })
        })?,
    })
}

