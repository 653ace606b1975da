//! The PostgreSQL backend: several easypos processes may share one database.
//!
//! A writer task per process takes the transfer jobs that are waiting (group commit) and runs
//! them in one transaction that first locks every row it may change — the holds it posts or
//! voids, then the accounts — with `SELECT … FOR UPDATE` in id order, so concurrent processes
//! serialise on the rows they share and never deadlock on each other's order. The ledger's pure
//! state machine then decides against those locked rows, exactly as on SQLite. Two processes
//! inserting the same transfer id at once end in a unique violation for one of them, which
//! retries and finds the transfer: exactly once either way. Decisions always read the primary
//! this store is connected to; point read-only console queries at replicas elsewhere. Each
//! connection (pool, writer, journal, leader lock) is opened again with its session settings
//! after PostgreSQL loses it (`postgres_connection.rs`).

use crate::cards::{
    self, Authorization, AuthorizationResult, CardSet, ISSUER_CARD_COLUMNS, IssuerCard,
};
use crate::directory::{
    self, Card, CardProduct, Cardholder, Directory, Institution, InstitutionKind, Merchant, Staff,
    StaffRole, Terminal,
};
use crate::directory::{
    CARD_COLUMNS, CARD_UPSERT, SessionChange, SignOn, StoredKey, TERMINAL_SESSION_COLUMNS,
    TerminalSession,
};
use crate::group::{next_timestamp, take_waiting};
use crate::journal::{JOURNAL_COLUMN_COUNT, JOURNAL_COLUMNS, JournalEntry};
use crate::migrate::{self, MIGRATIONS_TABLE};
use crate::rows::{
    ACCOUNT_COLUMNS, AccountRow, TRANSFER_COLUMNS, TransferRow, id_bytes, id_from_bytes,
    timestamp_to_sql,
};
use crate::saf::{PENDING_REVERSAL_COLUMNS, PendingReversal, ReversalAttempt};
use crate::{Clock, Counters, StoreError, StoreStats, TransferResults};
use ledger::{
    Account, AccountError, AccountId, AccountSpec, InstitutionId, MemoryLedger, Transfer,
    TransferId, TransferKind, TransferRequest,
};
use money::Currency;
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Row, Statement};

/// Jobs waiting for the writer task (back-pressure beyond this).
pub const QUEUE_CAPACITY: usize = 16_384;
/// Most transfer requests in one transaction.
pub const MAX_GROUP_REQUESTS: usize = 8_192;
/// Most holds expired per sweep.
pub const MAX_EXPIRE_PER_SWEEP: i64 = 4_096;
/// Retries of a group that lost a race with another process (unique violation, deadlock).
const MAX_CONFLICT_RETRIES: usize = 10;
/// Key of the advisory lock that serialises migrations across processes ("easypos" in ASCII).
const MIGRATION_LOCK: i64 = 0x0065_6173_7970_6f73;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

// Accounts, API keys and console reads (issue 7), in a file of their own.
#[path = "postgres_accounts.rs"]
mod accounts;

// Wallets and QR orders (issue 8), in a file of their own.
#[path = "postgres_wallets.rs"]
mod wallets;
// Emergency freezes (issue 10).
#[path = "postgres_freezes.rs"]
mod freezes;
// Terminal batch closes and batch uploads (issue 12).
#[path = "postgres_batches.rs"]
mod batches;
// Receipt signing keys (issue 9).
#[path = "postgres_receipt_keys.rs"]
mod receipt_keys;
// Fraud reports (issue 9).
#[path = "postgres_fraud_reports.rs"]
mod fraud_reports;
// Getting a terminal (issue 11).
#[path = "postgres_onboarding.rs"]
mod onboarding;
// The hash-chained audit log (issue 10).
#[path = "postgres_audit.rs"]
mod audit;
// The case queue (issue 10).
#[path = "postgres_cases.rs"]
mod cases;
// Refunds from the console and the API (issue 9).
#[path = "postgres_refunds.rs"]
mod refunds;
// Connections opened again after PostgreSQL loses them.
#[path = "postgres_connection.rs"]
pub(crate) mod connection;
use connection::{Backoff, Redial, Session};
// The journal's group-commit writer.
#[path = "postgres_journal.rs"]
mod journal_writer;
// Disputes and chargebacks (issue 9).
#[path = "postgres_disputes.rs"]
pub(crate) mod disputes;

enum Job {
    Transfers {
        requests: Vec<TransferRequest>,
        reply: Reply<TransferResults>,
        /// A meta row written in the same transaction when every transfer is made (or was).
        record: Option<(String, String)>,
    },
    Accounts {
        specs: Vec<AccountSpec>,
        reply: Reply<Vec<Result<Account, AccountError>>>,
    },
    Expire {
        reply: Reply<usize>,
    },
    Authorize {
        authorization: Authorization,
        reply: Reply<AuthorizationResult>,
    },
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Job {
    fn weight(&self) -> usize {
        match self {
            Job::Transfers { requests, .. } => requests.len(),
            Job::Accounts { specs, .. } => specs.len(),
            Job::Expire { .. } => 1,
            Job::Authorize { authorization, .. } => authorization.transfers.len() + 1,
        }
    }
}

#[derive(Debug)]
pub struct PostgresStore {
    jobs: mpsc::Sender<Job>,
    writer: Option<tokio::task::JoinHandle<()>>,
    /// For reads and the occasional non-ledger write (directory, meta, expiry).
    pub(crate) other: Arc<Pool>,
    /// A streaming replica for the console's and the API's read-only listings
    /// (`database.replica_url`, docs/scaling.md); `None`: they read the primary.
    replica: Option<Arc<Pool>>,
    counters: Arc<Counters>,
    /// The background jobs' locks, on a connection of their own (`leader.rs`).
    pub(crate) leadership: Box<crate::leader::Leadership>,
    /// The journal's writer, on a connection of its own.
    journal: journal_writer::JournalWriter,
    /// Directory cards found by their number's fingerprint (see
    /// [`PostgresStore::card_by_fingerprint`]).
    cards: crate::committed::Committed<[u8; 32], Card>,
}

/// How a PostgreSQL store connects (`database.*` in docs/configuration.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresTuning {
    /// Connections for reads and non-ledger writes, besides the writer's and the leader lock's.
    pub pool_size: usize,
    /// Longest a statement may run before PostgreSQL cancels it; 0: no limit.
    pub statement_timeout_ms: u64,
    /// A streaming replica for read-only listings, or `None`.
    pub replica_url: Option<String>,
}

/// Pooled connections unless configured: enough for the console, the API and the background
/// jobs to read at once, few enough that ten nodes stay far below `max_connections` (100).
pub const DEFAULT_POOL_SIZE: usize = 4;
/// The most pooled connections a node may be told to open (PostgreSQL's default
/// `max_connections` is 100 for every node together).
pub const MAX_POOL_SIZE: usize = 64;

impl Default for PostgresTuning {
    fn default() -> Self {
        PostgresTuning {
            pool_size: DEFAULT_POOL_SIZE,
            statement_timeout_ms: 0,
            replica_url: None,
        }
    }
}

/// The application name of pooled connections in `pg_stat_activity`.
pub const POOL_APPLICATION_NAME: &str = "easypos pool";

/// A few connections; a caller takes a free one, or waits its turn on one of them. A
/// connection found closed is opened again by the caller that takes it
/// (`postgres_connection.rs`).
pub(crate) struct Pool {
    session: Session,
    connections: Vec<Mutex<Pooled>>,
    next: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({} connections)", self.connections.len())
    }
}

/// Least time between two attempts to reopen one pooled connection while the server is away.
const POOL_RECONNECT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl Pool {
    /// `size` connections to `url` (at least one), each with the statement timeout.
    async fn open(url: &str, size: usize, statement_timeout_ms: u64) -> Result<Pool, StoreError> {
        // Named, so operators (and the tests) tell the pool from the writer and the lock.
        let session = Session::new(url, POOL_APPLICATION_NAME, statement_timeout_ms, "");
        let mut connections = Vec::new();
        for _ in 0..size.max(1) {
            connections.push(Mutex::new(Pooled {
                client: session.connect().await?,
                statements: std::sync::Mutex::default(),
                backoff: Backoff::new(POOL_RECONNECT_INTERVAL, POOL_RECONNECT_INTERVAL),
            }));
        }
        Ok(Pool {
            session,
            connections,
            next: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// A connection to use alone until the guard drops: a free one when there is one, opened
    /// again first if it was lost.
    pub(crate) async fn lock(&self) -> Result<tokio::sync::MutexGuard<'_, Pooled>, StoreError> {
        let mut pooled = self.take().await;
        if pooled.client.is_closed() {
            pooled.reconnect(&self.session).await?;
        }
        Ok(pooled)
    }

    async fn take(&self) -> tokio::sync::MutexGuard<'_, Pooled> {
        for connection in &self.connections {
            if let Ok(guard) = connection.try_lock() {
                return guard;
            }
        }
        let index =
            self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.connections.len();
        self.connections[index].lock().await
    }
}

/// Most statements a pooled connection keeps prepared; past this the cache starts again (the
/// console's searches make statements from their filters, so the set is not fixed).
const MAX_CACHED_STATEMENTS: usize = 256;

/// A pooled connection that prepares each statement text once. `query`, `query_opt`,
/// `query_one` and `execute` with SQL text are tokio-postgres's own, except that the parse is
/// done the first time only: every later use is one round trip instead of two. Everything
/// else (transactions, `batch_execute` …) is the [`Client`]'s, through `Deref`.
pub(crate) struct Pooled {
    client: Client,
    statements: std::sync::Mutex<std::collections::HashMap<String, Statement>>,
    /// At most one attempt a second to reopen this connection while the server is away.
    backoff: Backoff,
}

impl std::ops::Deref for Pooled {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl Pooled {
    /// A new connection in place of the lost one; the statements prepared on the old are gone.
    async fn reconnect(&mut self, session: &Session) -> Result<(), StoreError> {
        if let Err(wait) = self.backoff.may_try() {
            let why = format!("the next attempt in {} ms", wait.as_millis().max(1));
            return Err(session.unavailable(&why));
        }
        match session.reconnect().await {
            Ok(client) => {
                self.backoff.succeeded();
                self.client = client;
                self.statements
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clear();
                Ok(())
            }
            Err(error) => {
                self.backoff.failed();
                Err(error)
            }
        }
    }

    async fn statement(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        let cached = self
            .statements
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(sql)
            .cloned();
        if let Some(statement) = cached {
            return Ok(statement);
        }
        let statement = self.client.prepare(sql).await?;
        let mut statements = self
            .statements
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if statements.len() >= MAX_CACHED_STATEMENTS {
            statements.clear();
        }
        statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub(crate) async fn query(
        &self,
        sql: &str,
        parameters: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let statement = self.statement(sql).await?;
        self.client.query(&statement, parameters).await
    }

    pub(crate) async fn query_opt(
        &self,
        sql: &str,
        parameters: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let statement = self.statement(sql).await?;
        self.client.query_opt(&statement, parameters).await
    }

    pub(crate) async fn query_one(
        &self,
        sql: &str,
        parameters: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Row, tokio_postgres::Error> {
        let statement = self.statement(sql).await?;
        self.client.query_one(&statement, parameters).await
    }

    pub(crate) async fn execute(
        &self,
        sql: &str,
        parameters: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        let statement = self.statement(sql).await?;
        self.client.execute(&statement, parameters).await
    }
}

/// Sets the session's statement timeout (0 leaves PostgreSQL's, normally none).
async fn limit_statements(client: &Client, statement_timeout_ms: u64) -> Result<(), StoreError> {
    if statement_timeout_ms > 0 {
        client
            .batch_execute(&format!("SET statement_timeout = {statement_timeout_ms}"))
            .await?;
    }
    Ok(())
}

pub(crate) async fn connect(url: &str) -> Result<Client, StoreError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.map_err(|error| {
        StoreError::Config(format!(
            "cannot connect to PostgreSQL ({}): {}",
            redact_url(url),
            connection::reason(&error)
        ))
    })?;
    let database = redact_url(url);
    tokio::spawn(async move {
        // Ended by the server (a restart, a failover, `pg_terminate_backend`) or the network;
        // the connection's owner opens another on its next use (`postgres_connection.rs`).
        if let Err(error) = connection.await {
            let error = connection::reason(&error);
            tracing::warn!(%database, %error, "lost a PostgreSQL connection");
        }
    });
    Ok(client)
}

/// A connection string without its password, for error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url
            .split_whitespace()
            .filter(|part| !part.starts_with("password="))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

impl PostgresStore {
    pub async fn open(
        url: &str,
        tuning: &PostgresTuning,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        // Migrations run without the statement timeout: a long one must not be cut off.
        {
            let mut client = connect(url).await?;
            migrate(&mut client).await?;
        }
        let other = Pool::open(url, tuning.pool_size, tuning.statement_timeout_ms).await?;
        let accounts = select_all_accounts(&*other.lock().await?).await?;
        ledger::check_books(&accounts).map_err(|error| StoreError::Corrupt(error.to_string()))?;
        let replica = match &tuning.replica_url {
            Some(replica_url) => Some(Arc::new(
                Pool::open(replica_url, tuning.pool_size, tuning.statement_timeout_ms).await?,
            )),
            None => None,
        };
        // The writer only reads rows by key (`id = ANY($1)`, and the due holds' partial
        // index). Its statements are prepared once, and a generic plan made while a table was
        // small (a new database) scans the whole table: on a bench that grew ledger_transfers
        // from 800 to 20,000 rows in seconds, before autovacuum analysed it, that scan was
        // 13 ms of every group. Without sequential scans the plans are index scans at any size.
        let writer_session = Session::new(
            url,
            "easypos writer",
            tuning.statement_timeout_ms,
            "SET enable_seqscan = off",
        );
        let link = Redial::open(writer_session).await?;
        let counters = Arc::new(Counters::default());
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let writer = Writer {
            link,
            clock,
            last_timestamp: 0,
            counters: counters.clone(),
        };
        let handle = tokio::spawn(writer.run(receiver));
        let journal =
            journal_writer::JournalWriter::start(url, tuning.statement_timeout_ms).await?;
        Ok(PostgresStore {
            jobs: sender,
            writer: Some(handle),
            other: Arc::new(other),
            replica,
            counters,
            leadership: Box::new(crate::leader::Leadership::new(url)),
            cards: crate::committed::Committed::new(crate::committed::MAX_CACHED_CARDS),
            journal,
        })
    }

    /// Connections for a read that may lag the primary by the replication delay (the
    /// console's and the API's listings): the replica when there is one. Never for what an
    /// authorization decides on.
    pub(crate) async fn lagging_reader(
        &self,
    ) -> Result<tokio::sync::MutexGuard<'_, Pooled>, StoreError> {
        match &self.replica {
            Some(replica) => replica.lock().await,
            None => self.other.lock().await,
        }
    }

    /// Whether listings read a replica.
    pub fn reads_replica(&self) -> bool {
        self.replica.is_some()
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

    /// [`PostgresStore::submit`], and the meta row `record` in the same transaction when every
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

    /// Expires due holds (through the writer, so timestamps stay in one sequence).
    pub async fn expire_due(&self) -> Result<usize, StoreError> {
        self.call(|reply| Job::Expire { reply }).await
    }

    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        current_version(&*self.other.lock().await?).await
    }

    pub async fn accounts(&self, ids: Vec<AccountId>) -> Result<Vec<Account>, StoreError> {
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| id_bytes(id.0).to_vec()).collect();
        let client = self.other.lock().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id = ANY($1) ORDER BY id"
                ),
                &[&keys],
            )
            .await?;
        rows.iter().map(account_from_row).collect()
    }

    pub async fn all_accounts(&self) -> Result<Vec<Account>, StoreError> {
        select_all_accounts(&*self.other.lock().await?).await
    }

    pub async fn transfer(&self, id: TransferId) -> Result<Option<Transfer>, StoreError> {
        let client = self.other.lock().await?;
        let row = client
            .query_opt(
                &format!("SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE id = $1"),
                &[&id_bytes(id.0).as_slice()],
            )
            .await?;
        row.as_ref().map(transfer_from_row).transpose()
    }

    pub async fn all_transfers(&self) -> Result<Vec<Transfer>, StoreError> {
        let client = self.other.lock().await?;
        let rows = client
            .query(
                &format!("SELECT {TRANSFER_COLUMNS} FROM ledger_transfers ORDER BY timestamp, id"),
                &[],
            )
            .await?;
        rows.iter().map(transfer_from_row).collect()
    }

    pub async fn transfers_touching(
        &self,
        accounts: Vec<AccountId>,
        from: i64,
        to: i64,
        limit: u32,
    ) -> Result<Vec<Transfer>, StoreError> {
        let keys: Vec<Vec<u8>> = accounts.iter().map(|id| id_bytes(id.0).to_vec()).collect();
        let client = self.other.lock().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE timestamp >= $1 AND timestamp < $2 AND (debit = ANY($4) OR credit = ANY($4)) ORDER BY timestamp, id LIMIT $3"
                ),
                &[&from, &to, &i64::from(limit), &keys],
            )
            .await?;
        rows.iter().map(transfer_from_row).collect()
    }

    pub async fn put_directory(&self, directory: Directory) -> Result<(), StoreError> {
        let mut client = self.other.lock().await?;
        let transaction = client.transaction().await?;
        insert_directory(&transaction, &directory).await?;
        transaction.commit().await?;
        self.cards.forget_all();
        Ok(())
    }

    pub async fn load_directory(&self) -> Result<Directory, StoreError> {
        read_directory(&*self.other.lock().await?).await
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let client = self.other.lock().await?;
        Ok(client
            .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
            .await?
            .map(|row| row.get(0)))
    }

    pub async fn set_meta(&self, key: String, value: String) -> Result<(), StoreError> {
        let client = self.other.lock().await?;
        client.execute("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value", &[&key, &value]).await?;
        Ok(())
    }

    pub fn stats(&self) -> StoreStats {
        self.counters.snapshot()
    }

    pub async fn close(mut self) -> Result<(), StoreError> {
        drop(std::mem::replace(&mut self.jobs, mpsc::channel(1).0));
        self.journal.close().await?;
        if let Some(handle) = self.writer.take() {
            handle
                .await
                .map_err(|error| StoreError::Write(format!("the writer task failed: {error}")))?;
        }
        Ok(())
    }
}

async fn current_version(client: &Client) -> Result<u32, StoreError> {
    let version: i32 = client
        .query_one(
            "SELECT coalesce(max(version), 0)::int FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    u32::try_from(version).map_err(|_| StoreError::Corrupt(format!("schema version {version}")))
}

/// Applies missing migrations under an advisory lock, so processes starting together migrate
/// once.
async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = migrate_locked(client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    result
}

async fn migrate_locked(client: &mut Client) -> Result<(), StoreError> {
    client.batch_execute(MIGRATIONS_TABLE).await?;
    let migrations = migrate::postgres_migrations();
    let found = current_version(client).await?;
    let supported = migrate::latest(migrations);
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    for migration in migrations
        .iter()
        .filter(|migration| migration.version > found)
    {
        let transaction = client.transaction().await?;
        transaction.batch_execute(migration.sql).await?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, extract(epoch FROM now())::bigint)",
                &[&(migration.version as i32), &migration.name],
            )
            .await?;
        transaction.commit().await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied migration"
        );
    }
    Ok(())
}

fn account_from_row(row: &Row) -> Result<Account, StoreError> {
    AccountRow {
        id: row.try_get(0)?,
        institution: i64::from(row.try_get::<_, i32>(1)?),
        currency: i64::from(row.try_get::<_, i32>(2)?),
        code: i64::from(row.try_get::<_, i32>(3)?),
        balance_rule: i64::from(row.try_get::<_, i16>(4)?),
        debits_pending: row.try_get(5)?,
        debits_posted: row.try_get(6)?,
        credits_pending: row.try_get(7)?,
        credits_posted: row.try_get(8)?,
        created_at: row.try_get(9)?,
    }
    .into_account()
}

fn transfer_from_row(row: &Row) -> Result<Transfer, StoreError> {
    TransferRow {
        id: row.try_get(0)?,
        kind: i64::from(row.try_get::<_, i16>(1)?),
        debit: row.try_get(2)?,
        credit: row.try_get(3)?,
        amount: row.try_get(4)?,
        currency: i64::from(row.try_get::<_, i32>(5)?),
        requested_amount: row.try_get(6)?,
        pending_id: row.try_get(7)?,
        timeout_seconds: row.try_get::<_, Option<i32>>(8)?.map(i64::from),
        linked: row.try_get(9)?,
        code: i64::from(row.try_get::<_, i32>(10)?),
        user_data: row.try_get(11)?,
        institution: i64::from(row.try_get::<_, i32>(12)?),
        timestamp: row.try_get(13)?,
        expires_at: row.try_get(14)?,
        status: row.try_get::<_, Option<i16>>(15)?.map(i64::from),
    }
    .into_transfer()
}

async fn select_all_accounts(client: &Client) -> Result<Vec<Account>, StoreError> {
    let rows = client
        .query(
            &format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts ORDER BY id"),
            &[],
        )
        .await?;
    rows.iter().map(account_from_row).collect()
}

/// The writer's statements, prepared once on its connection: each group then costs one round
/// trip per statement instead of a parse and an execute.
struct Statements {
    lock_cards: Statement,
    lock_transfers: Statement,
    lock_accounts: Statement,
    insert_accounts: Statement,
    insert_transfers: Statement,
    update_statuses: Statement,
    update_accounts: Statement,
    update_cards: Statement,
    record_meta: Statement,
    due_holds: Statement,
}

impl connection::Prepare for Statements {
    async fn prepare(client: &Client) -> Result<Statements, StoreError> {
        Ok(Statements {
            lock_cards: client.prepare(&format!("SELECT {ISSUER_CARD_COLUMNS} FROM issuer_cards WHERE card_id = ANY($1) ORDER BY card_id FOR UPDATE")).await?,
            lock_transfers: client.prepare(&format!("SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE id = ANY($1) ORDER BY id FOR UPDATE")).await?,
            lock_accounts: client.prepare(&format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE")).await?,
            insert_accounts: client.prepare(&format!("INSERT INTO ledger_accounts ({ACCOUNT_COLUMNS}) SELECT * FROM UNNEST($1::bytea[], $2::int4[], $3::int4[], $4::int4[], $5::int2[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[])")).await?,
            insert_transfers: client.prepare(&format!("INSERT INTO ledger_transfers ({TRANSFER_COLUMNS}) SELECT * FROM UNNEST($1::bytea[], $2::int2[], $3::bytea[], $4::bytea[], $5::int8[], $6::int4[], $7::int8[], $8::bytea[], $9::int4[], $10::bool[], $11::int4[], $12::bytea[], $13::int4[], $14::int8[], $15::int8[], $16::int2[])")).await?,
            update_statuses: client.prepare("UPDATE ledger_transfers AS t SET status = u.status FROM UNNEST($1::bytea[], $2::int2[]) AS u(id, status) WHERE t.id = u.id").await?,
            update_accounts: client.prepare("UPDATE ledger_accounts AS a SET debits_pending = u.dp, debits_posted = u.dpo, credits_pending = u.cp, credits_posted = u.cpo \
                 FROM UNNEST($1::bytea[], $2::int8[], $3::int8[], $4::int8[], $5::int8[]) AS u(id, dp, dpo, cp, cpo) WHERE a.id = u.id").await?,
            update_cards: client.prepare("UPDATE issuer_cards AS c SET pin_failures = u.pf, last_atc = u.atc, spent_minor = u.spent, spent_on = u.day \
                 FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::text[]) AS u(id, pf, atc, spent, day) WHERE c.card_id = u.id").await?,
            record_meta: client.prepare("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value").await?,
            due_holds: client.prepare(&format!("SELECT {TRANSFER_COLUMNS} FROM ledger_transfers WHERE status = 1 AND expires_at <= $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED")).await?,
        })
    }
}

fn keys<'a>(ids: impl IntoIterator<Item = &'a u128>) -> Vec<Vec<u8>> {
    ids.into_iter().map(|id| id_bytes(*id).to_vec()).collect()
}

async fn lock_accounts(
    transaction: &tokio_postgres::Transaction<'_>,
    statements: &Statements,
    ids: &BTreeSet<AccountId>,
) -> Result<Vec<Account>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = transaction
        .query(
            &statements.lock_accounts,
            &[&keys(ids.iter().map(|id| &id.0))],
        )
        .await?;
    rows.iter().map(account_from_row).collect()
}

async fn lock_transfers(
    transaction: &tokio_postgres::Transaction<'_>,
    statements: &Statements,
    ids: &BTreeSet<TransferId>,
) -> Result<Vec<Transfer>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = transaction
        .query(
            &statements.lock_transfers,
            &[&keys(ids.iter().map(|id| &id.0))],
        )
        .await?;
    rows.iter().map(transfer_from_row).collect()
}

async fn update_statuses(
    transaction: &tokio_postgres::Transaction<'_>,
    statements: &Statements,
    statuses: &[(TransferId, i16)],
) -> Result<(), StoreError> {
    if statuses.is_empty() {
        return Ok(());
    }
    let ids = keys(statuses.iter().map(|(id, _)| &id.0));
    let codes: Vec<i16> = statuses.iter().map(|(_, code)| *code).collect();
    transaction
        .execute(&statements.update_statuses, &[&ids, &codes])
        .await?;
    Ok(())
}

async fn update_accounts<'a>(
    transaction: &tokio_postgres::Transaction<'_>,
    statements: &Statements,
    accounts: impl IntoIterator<Item = &'a Account>,
) -> Result<(), StoreError> {
    let accounts: Vec<&Account> = accounts.into_iter().collect();
    if accounts.is_empty() {
        return Ok(());
    }
    let ids = keys(accounts.iter().map(|account| &account.id.0));
    let column = |pick: fn(&Account) -> i64| {
        accounts
            .iter()
            .map(|account| pick(account))
            .collect::<Vec<i64>>()
    };
    transaction
        .execute(
            &statements.update_accounts,
            &[
                &ids,
                &column(|a| a.debits_pending),
                &column(|a| a.debits_posted),
                &column(|a| a.credits_pending),
                &column(|a| a.credits_posted),
            ],
        )
        .await?;
    Ok(())
}

async fn insert_accounts(
    transaction: &tokio_postgres::Transaction<'_>,
    statements: &Statements,
    accounts: &[Account],
) -> Result<(), StoreError> {
    if accounts.is_empty() {
        return Ok(());
    }
    let rows: Vec<AccountRow> = accounts.iter().map(AccountRow::from_account).collect();
    let ids: Vec<&[u8]> = rows.iter().map(|row| row.id.as_slice()).collect();
    let int4 = |pick: fn(&AccountRow) -> i64| {
        rows.iter()
            .map(|row| pick(row) as i32)
            .collect::<Vec<i32>>()
    };
    let int8 = |pick: fn(&AccountRow) -> i64| rows.iter().map(pick).collect::<Vec<i64>>();
    let rules: Vec<i16> = rows.iter().map(|row| row.balance_rule as i16).collect();
    transaction
        .execute(
            &statements.insert_accounts,
            &[
                &ids,
                &int4(|row| row.institution),
                &int4(|row| row.currency),
                &int4(|row| row.code),
                &rules,
                &int8(|row| row.debits_pending),
                &int8(|row| row.debits_posted),
                &int8(|row| row.credits_pending),
                &int8(|row| row.credits_posted),
                &int8(|row| row.created_at),
            ],
        )
        .await?;
    Ok(())
}

async fn insert_transfers(
    transaction: &tokio_postgres::Transaction<'_>,
    statements: &Statements,
    transfers: &[Transfer],
) -> Result<(), StoreError> {
    if transfers.is_empty() {
        return Ok(());
    }
    let rows: Vec<TransferRow> = transfers.iter().map(TransferRow::from_transfer).collect();
    let bytes = |pick: fn(&TransferRow) -> &[u8]| rows.iter().map(pick).collect::<Vec<&[u8]>>();
    let int2 = |pick: fn(&TransferRow) -> i64| {
        rows.iter()
            .map(|row| pick(row) as i16)
            .collect::<Vec<i16>>()
    };
    let int4 = |pick: fn(&TransferRow) -> i64| {
        rows.iter()
            .map(|row| pick(row) as i32)
            .collect::<Vec<i32>>()
    };
    let int8 = |pick: fn(&TransferRow) -> i64| rows.iter().map(pick).collect::<Vec<i64>>();
    let requested: Vec<Option<i64>> = rows.iter().map(|row| row.requested_amount).collect();
    let pending: Vec<Option<&[u8]>> = rows.iter().map(|row| row.pending_id.as_deref()).collect();
    let timeouts: Vec<Option<i32>> = rows
        .iter()
        .map(|row| row.timeout_seconds.map(|value| value as i32))
        .collect();
    let linked: Vec<bool> = rows.iter().map(|row| row.linked).collect();
    let expires: Vec<Option<i64>> = rows.iter().map(|row| row.expires_at).collect();
    let statuses: Vec<Option<i16>> = rows
        .iter()
        .map(|row| row.status.map(|value| value as i16))
        .collect();
    transaction
        .execute(
            &statements.insert_transfers,
            &[
                &bytes(|row| &row.id),
                &int2(|row| row.kind),
                &bytes(|row| &row.debit),
                &bytes(|row| &row.credit),
                &int8(|row| row.amount),
                &int4(|row| row.currency),
                &requested,
                &pending,
                &timeouts,
                &linked,
                &int4(|row| row.code),
                &bytes(|row| &row.user_data),
                &int4(|row| row.institution),
                &int8(|row| row.timestamp),
                &expires,
                &statuses,
            ],
        )
        .await?;
    Ok(())
}

/// Answers of one group, delivered after the commit.
enum Answer {
    Transfers(Reply<TransferResults>, TransferResults),
    Authorized(Reply<AuthorizationResult>, AuthorizationResult),
    Accounts(
        Reply<Vec<Result<Account, AccountError>>>,
        Vec<Result<Account, AccountError>>,
    ),
}

struct Writer {
    /// Its own connection, opened again before the next group after it is lost.
    link: Redial<Statements>,
    clock: Arc<dyn Clock>,
    last_timestamp: u64,
    counters: Arc<Counters>,
}

/// Whether an error means "another process got there first; run the group again".
fn is_conflict(error: &StoreError) -> bool {
    match error {
        StoreError::Postgres(error) => {
            matches!(error.code(), Some(code) if *code == SqlState::UNIQUE_VIOLATION || *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE)
        }
        _ => false,
    }
}

impl Writer {
    async fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        while let Some(first) = jobs.recv().await {
            let (group, weight) = take_waiting(first, &mut jobs, Job::weight, MAX_GROUP_REQUESTS);
            let (expiries, transfers): (Vec<Job>, Vec<Job>) = group
                .into_iter()
                .partition(|job| matches!(job, Job::Expire { .. }));
            if !transfers.is_empty() {
                self.run_group(transfers, weight).await;
            }
            for job in expiries {
                if let Job::Expire { reply } = job {
                    let result = self.expire().await;
                    if let Err(error) = &result {
                        self.link.lost(error);
                    }
                    drop(reply.send(result));
                }
            }
        }
        tracing::debug!("postgres writer drained and stopped");
    }

    /// Expires due holds in one transaction. `SKIP LOCKED` passes over holds another process
    /// is resolving right now; they are either resolved or picked up by the next sweep.
    async fn expire(&mut self) -> Result<usize, StoreError> {
        let now = self.next_timestamp(0);
        let (client, statements) = self.link.ready().await?;
        let transaction = client.transaction().await?;
        let rows = transaction
            .query(
                &statements.due_holds,
                &[&timestamp_to_sql(now), &MAX_EXPIRE_PER_SWEEP],
            )
            .await?;
        let holds = rows
            .iter()
            .map(transfer_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let account_ids: BTreeSet<AccountId> = holds
            .iter()
            .flat_map(|hold| [hold.debit, hold.credit])
            .collect();
        let accounts = lock_accounts(&transaction, statements, &account_ids).await?;
        let ids: Vec<TransferId> = holds.iter().map(Transfer::id).collect();
        let mut state = MemoryLedger::default();
        state.load(accounts, holds);
        let changes = ledger::expire(&state, &ids, now);
        let statuses: Vec<(TransferId, i16)> = changes
            .statuses
            .iter()
            .map(|(id, status)| (*id, status.code() as i16))
            .collect();
        update_statuses(&transaction, statements, &statuses).await?;
        update_accounts(&transaction, statements, changes.accounts.values()).await?;
        transaction.commit().await?;
        self.counters.add(1, 0, 0);
        Ok(statuses.len())
    }

    fn next_timestamp(&mut self, count: usize) -> u64 {
        next_timestamp(self.clock.as_ref(), &mut self.last_timestamp, count)
    }

    async fn run_group(&mut self, mut group: Vec<Job>, weight: usize) {
        let mut attempt = 0;
        loop {
            match self.try_group(&mut group).await {
                Ok((answers, created)) => {
                    self.counters.add(1, weight as u64, created);
                    for answer in answers {
                        match answer {
                            Answer::Transfers(reply, results) => drop(reply.send(Ok(results))),
                            Answer::Authorized(reply, result) => drop(reply.send(Ok(result))),
                            Answer::Accounts(reply, results) => drop(reply.send(Ok(results))),
                        }
                    }
                    return;
                }
                Err(error) if is_conflict(&error) && attempt < MAX_CONFLICT_RETRIES => {
                    attempt += 1;
                    tracing::debug!(attempt, %error, "group lost a race with another process; retrying");
                }
                Err(error) => {
                    // A group whose connection was lost is not run again: its COMMIT may have
                    // landed. Its callers answer 96 and the terminals' reversals settle it.
                    let lost = self.link.lost(&error);
                    let (failed, message): (fn(String) -> StoreError, String) = match error {
                        error if lost => {
                            let message = connection::lost_reason(&error);
                            tracing::warn!(error = %message, "the writer lost its connection; the group in flight failed and the next one reconnects");
                            (
                                |message| {
                                    StoreError::Unavailable(format!(
                                        "the connection was lost during the write, which may or may not have committed: {message}"
                                    ))
                                },
                                message,
                            )
                        }
                        StoreError::Unavailable(message) => {
                            tracing::debug!(error = %message, "group refused while the database is away");
                            (StoreError::Unavailable, message)
                        }
                        error => {
                            let message = error.to_string();
                            tracing::error!(error = %message, "group commit failed; rolled back");
                            (StoreError::Write, message)
                        }
                    };
                    for job in group {
                        match job {
                            Job::Transfers { reply, .. } => {
                                drop(reply.send(Err(failed(message.clone()))))
                            }
                            Job::Accounts { reply, .. } => {
                                drop(reply.send(Err(failed(message.clone()))))
                            }
                            Job::Expire { reply } => drop(reply.send(Err(failed(message.clone())))),
                            Job::Authorize { reply, .. } => {
                                drop(reply.send(Err(failed(message.clone()))))
                            }
                        }
                    }
                    return;
                }
            }
        }
    }

    /// One attempt at a group: lock, decide, write, commit. On success the jobs' replies are
    /// moved into the answers; on failure they stay in `group` for a retry or an error reply.
    async fn try_group(&mut self, group: &mut Vec<Job>) -> Result<(Vec<Answer>, u64), StoreError> {
        let mut transfer_ids = BTreeSet::new();
        let mut account_ids = BTreeSet::new();
        let mut card_ids = BTreeSet::new();
        for job in group.iter() {
            let requests = match job {
                Job::Transfers { requests, .. } => requests.as_slice(),
                Job::Authorize { authorization, .. } => {
                    card_ids.insert(authorization.card.card_id.clone());
                    authorization.transfers.as_slice()
                }
                Job::Accounts { specs, .. } => {
                    account_ids.extend(specs.iter().map(|spec| spec.id));
                    &[]
                }
                Job::Expire { .. } => &[],
            };
            for request in requests {
                transfer_ids.insert(request.id);
                match request.kind {
                    TransferKind::Posted { debit, credit, .. }
                    | TransferKind::Pending { debit, credit, .. } => {
                        account_ids.insert(debit);
                        account_ids.insert(credit);
                    }
                    TransferKind::PostPending { pending_id, .. }
                    | TransferKind::VoidPending { pending_id } => {
                        transfer_ids.insert(pending_id);
                    }
                }
            }
        }
        // Stamped exactly as the SQLite writer does, so both backends give identical records.
        let stamps: Vec<u64> = group
            .iter()
            .map(|job| match job {
                Job::Transfers { requests, .. } => self.next_timestamp(requests.len()),
                Job::Authorize { authorization, .. } => {
                    self.next_timestamp(authorization.transfers.len())
                }
                Job::Accounts { .. } | Job::Expire { .. } => self.next_timestamp(0),
            })
            .collect();
        let (client, statements) = self.link.ready().await?;
        let transaction = client.transaction().await?;
        // Lock order, the same in every process: cards, then transfers, then accounts. The
        // first two are independent, so they go out together (pipelined; PostgreSQL still
        // runs them in that order).
        let (locked_cards, transfers) = tokio::join!(
            lock_issuer_cards(&transaction, statements, &card_ids),
            lock_transfers(&transaction, statements, &transfer_ids),
        );
        let (locked_cards, transfers) = (locked_cards?, transfers?);
        let mut cards = CardSet::preloaded(card_ids, locked_cards);
        account_ids.extend(
            transfers
                .iter()
                .flat_map(|transfer| [transfer.debit, transfer.credit]),
        );
        let accounts = lock_accounts(&transaction, statements, &account_ids).await?;
        let mut state = MemoryLedger::default();
        state.load(accounts, transfers);

        let mut session = ledger::Session::new(&state);
        let mut outcomes = Vec::with_capacity(group.len());
        for (job, now) in group.iter().zip(stamps) {
            outcomes.push(match job {
                Job::Transfers { requests, .. } => {
                    Outcome::Transfers(session.execute(requests, now))
                }
                Job::Accounts { specs, .. } => Outcome::Accounts(session.open_accounts(specs, now)),
                Job::Expire { .. } => Outcome::Skipped,
                Job::Authorize { authorization, .. } => {
                    // Every card of the group is preloaded and locked: one not there does not exist.
                    let mut load = |_: &str| Ok(None);
                    Outcome::Authorized(cards::authorize(
                        &mut session,
                        &mut cards,
                        &mut load,
                        authorization,
                        now,
                    )?)
                }
            });
        }
        let changes = session.finish();
        let statuses: Vec<(TransferId, i16)> = changes
            .statuses
            .iter()
            .map(|(id, status)| (*id, status.code() as i16))
            .collect();
        let opened: Vec<Account> = changes.opened_accounts().copied().collect();
        // The writes go out together too, in this order. `join!`, not `try_join!`: after a
        // failure the later statements fail as "transaction aborted", and the error that
        // counts (a unique violation means "retry") is the first in statement order.
        let written = tokio::join!(
            insert_accounts(&transaction, statements, &opened),
            insert_transfers(&transaction, statements, &changes.created),
            update_statuses(&transaction, statements, &statuses),
            update_accounts(&transaction, statements, changes.updated_accounts()),
            update_issuer_cards(&transaction, statements, &cards),
        );
        written.0?;
        written.1?;
        written.2?;
        written.3?;
        written.4?;
        for (job, outcome) in group.iter().zip(&outcomes) {
            if let (
                Job::Transfers {
                    record: Some((key, value)),
                    ..
                },
                Outcome::Transfers(results),
            ) = (job, outcome)
                && results.iter().all(Result::is_ok)
            {
                transaction
                    .execute(&statements.record_meta, &[key, value])
                    .await?;
            }
        }
        transaction.commit().await?;

        let answers = std::mem::take(group)
            .into_iter()
            .zip(outcomes)
            .filter_map(|(job, outcome)| match (job, outcome) {
                (Job::Transfers { reply, .. }, Outcome::Transfers(results)) => {
                    Some(Answer::Transfers(reply, results))
                }
                (Job::Accounts { reply, .. }, Outcome::Accounts(results)) => {
                    Some(Answer::Accounts(reply, results))
                }
                (Job::Authorize { reply, .. }, Outcome::Authorized(result)) => {
                    Some(Answer::Authorized(reply, result))
                }
                _ => None,
            })
            .collect();
        Ok((answers, changes.created.len() as u64))
    }
}

enum Outcome {
    Skipped,
    Transfers(TransferResults),
    Authorized(AuthorizationResult),
    Accounts(Vec<Result<Account, AccountError>>),
}

async fn insert_directory(
    transaction: &tokio_postgres::Transaction<'_>,
    directory: &Directory,
) -> Result<(), StoreError> {
    for record in &directory.institutions {
        transaction
            .execute(
                "INSERT INTO institutions (id, kind, name, name_zh) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&(record.id.0 as i32), &record.kind.as_str(), &record.name, &record.name_zh],
            )
            .await?;
    }
    for record in &directory.merchants {
        transaction
            .execute(
                "INSERT INTO merchants (id, acquirer, name, name_zh, city, mcc, settlement_account) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                &[&record.id, &(record.acquirer.0 as i32), &record.name, &record.name_zh, &record.city, &record.mcc, &id_bytes(record.settlement_account.0).as_slice()],
            )
            .await?;
    }
    for record in &directory.terminals {
        transaction
            .execute("INSERT INTO terminals (id, merchant_id, status) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", &[&record.id, &record.merchant_id, &record.status])
            .await?;
    }
    for record in &directory.staff {
        transaction
            .execute(
                "INSERT INTO staff (merchant_id, operator_no, name, role) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&record.merchant_id, &record.operator_no, &record.name, &record.role.as_str()],
            )
            .await?;
    }
    for record in &directory.cardholders {
        transaction
            .execute("INSERT INTO cardholders (id, name, name_zh) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", &[&record.id, &record.name, &record.name_zh])
            .await?;
    }
    for record in &directory.cards {
        transaction
            .execute(
                &format!("INSERT INTO cards ({CARD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) {CARD_UPSERT}"),
                &[
                    &record.id,
                    &record.cardholder_id,
                    &(record.issuer.0 as i32),
                    &record.product.as_str(),
                    &record.pan_first6,
                    &record.pan_last4,
                    &record.expiry,
                    &i32::from(record.currency.numeric()),
                    &id_bytes(record.account.0).as_slice(),
                    &record.pan_fingerprint.as_ref().map(|fingerprint| fingerprint.as_slice()),
                ],
            )
            .await?;
    }
    Ok(())
}

fn institution_id(value: i32) -> Result<InstitutionId, StoreError> {
    u32::try_from(value)
        .map(InstitutionId)
        .map_err(|_| directory::unknown("institution", &value.to_string()))
}

/// A merchant row's columns from `first` on (`id, acquirer, name, name_zh, city, mcc,
/// settlement_account`).
fn merchant_from_row(row: &Row, first: usize) -> Result<Merchant, StoreError> {
    Ok(Merchant {
        id: row.try_get(first)?,
        acquirer: institution_id(row.try_get(first + 1)?)?,
        name: row.try_get(first + 2)?,
        name_zh: row.try_get(first + 3)?,
        city: row.try_get(first + 4)?,
        mcc: row.try_get(first + 5)?,
        settlement_account: AccountId(id_from_bytes(row.try_get(first + 6)?)?),
    })
}

/// A terminal row (`id, merchant_id, status`).
fn terminal_from_row(row: &Row) -> Result<Terminal, StoreError> {
    Ok(Terminal {
        id: row.try_get(0)?,
        merchant_id: row.try_get(1)?,
        status: row.try_get(2)?,
    })
}

impl PostgresStore {
    pub async fn terminal_with_merchant(
        &self,
        id: &str,
    ) -> Result<Option<(Terminal, Merchant)>, StoreError> {
        let client = self.other.lock().await?;
        let row = client
            .query_opt(crate::host_changes::TERMINAL_WITH_MERCHANT, &[&id])
            .await?;
        row.map(|row| Ok((terminal_from_row(&row)?, merchant_from_row(&row, 3)?)))
            .transpose()
    }
}

async fn read_directory(client: &Client) -> Result<Directory, StoreError> {
    let institutions = client
        .query("SELECT id, kind, name, name_zh FROM institutions", &[])
        .await?;
    let merchants = client
        .query(
            "SELECT id, acquirer, name, name_zh, city, mcc, settlement_account FROM merchants",
            &[],
        )
        .await?;
    let terminals = client
        .query("SELECT id, merchant_id, status FROM terminals", &[])
        .await?;
    let staff = client
        .query(
            "SELECT merchant_id, operator_no, name, role FROM staff",
            &[],
        )
        .await?;
    let cardholders = client
        .query("SELECT id, name, name_zh FROM cardholders", &[])
        .await?;
    let cards = client
        .query(&format!("SELECT {CARD_COLUMNS} FROM cards"), &[])
        .await?;
    Ok(Directory {
        institutions: institutions
            .iter()
            .map(|row| {
                let kind: String = row.try_get(1)?;
                Ok(Institution {
                    id: institution_id(row.try_get(0)?)?,
                    kind: InstitutionKind::parse(&kind)
                        .ok_or_else(|| directory::unknown("institution kind", &kind))?,
                    name: row.try_get(2)?,
                    name_zh: row.try_get(3)?,
                })
            })
            .collect::<Result<_, StoreError>>()?,
        merchants: merchants
            .iter()
            .map(|row| merchant_from_row(row, 0))
            .collect::<Result<_, StoreError>>()?,
        terminals: terminals
            .iter()
            .map(terminal_from_row)
            .collect::<Result<_, StoreError>>()?,
        staff: staff
            .iter()
            .map(|row| {
                let role: String = row.try_get(3)?;
                Ok(Staff {
                    merchant_id: row.try_get(0)?,
                    operator_no: row.try_get(1)?,
                    name: row.try_get(2)?,
                    role: StaffRole::parse(&role)
                        .ok_or_else(|| directory::unknown("staff role", &role))?,
                })
            })
            .collect::<Result<_, StoreError>>()?,
        cardholders: cardholders
            .iter()
            .map(|row| {
                Ok(Cardholder {
                    id: row.try_get(0)?,
                    name: row.try_get(1)?,
                    name_zh: row.try_get(2)?,
                })
            })
            .collect::<Result<_, StoreError>>()?,
        cards: cards
            .iter()
            .map(card_from_row)
            .collect::<Result<_, StoreError>>()?,
    })
}

fn card_from_row(row: &Row) -> Result<Card, StoreError> {
    let product: String = row.try_get(3)?;
    let numeric: i32 = row.try_get(7)?;
    Ok(Card {
        id: row.try_get(0)?,
        cardholder_id: row.try_get(1)?,
        issuer: institution_id(row.try_get(2)?)?,
        product: CardProduct::parse(&product)
            .ok_or_else(|| directory::unknown("card product", &product))?,
        pan_first6: row.try_get(4)?,
        pan_last4: row.try_get(5)?,
        expiry: row.try_get(6)?,
        currency: u16::try_from(numeric)
            .ok()
            .and_then(|code| Currency::from_numeric(code).ok())
            .ok_or_else(|| directory::unknown("currency", &numeric.to_string()))?,
        account: AccountId(id_from_bytes(row.try_get(8)?)?),
        pan_fingerprint: directory::fingerprint(row.try_get(9)?)?,
    })
}

impl PostgresStore {
    pub async fn put_keys(&self, keys: Vec<StoredKey>) -> Result<(), StoreError> {
        let mut client = self.other.lock().await?;
        let transaction = client.transaction().await?;
        for key in &keys {
            transaction
                .execute("INSERT INTO hsm_keys (name, token, check_value) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING", &[&key.name, &key.token, &key.check_value])
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    pub async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let client = self.other.lock().await?;
        let rows = client
            .query("SELECT name, token, check_value FROM hsm_keys", &[])
            .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredKey {
                    name: row.try_get(0)?,
                    token: row.try_get(1)?,
                    check_value: row.try_get(2)?,
                })
            })
            .collect()
    }

    /// The card with this number fingerprint, from memory when found before. Every
    /// authorization needs it, and every host sharing the database may keep it: a card's row,
    /// once it has its fingerprint, is never changed by any statement (`CARD_UPSERT` only fills
    /// a missing fingerprint; card status, limits and counters are the issuer's, in
    /// `issuer_cards`, read fresh). A card not found is not remembered: another host may issue
    /// it a moment later.
    pub async fn card_by_fingerprint(
        &self,
        fingerprint: [u8; 32],
    ) -> Result<Option<Card>, StoreError> {
        let missed = match self.cards.get(&fingerprint) {
            Ok(card) => return Ok(Some(card)),
            Err(missed) => missed,
        };
        let card = self.card_where("pan_fingerprint", &fingerprint).await?;
        if let Some(card) = &card {
            self.cards.fill(missed, fingerprint, card.clone());
        }
        Ok(card)
    }

    /// The card whose indexed bytea column `column` is `key`.
    async fn card_where(
        &self,
        column: &'static str,
        key: &[u8],
    ) -> Result<Option<Card>, StoreError> {
        let client = self.other.lock().await?;
        let row = client
            .query_opt(
                &format!("SELECT {CARD_COLUMNS} FROM cards WHERE {column} = $1"),
                &[&key],
            )
            .await?;
        row.as_ref().map(card_from_row).transpose()
    }
}

impl PostgresStore {
    pub async fn card_by_account(&self, account: AccountId) -> Result<Option<Card>, StoreError> {
        self.card_where("account", &crate::rows::id_bytes(account.0))
            .await
    }
}

fn issuer_card_from_row(row: &Row) -> Result<IssuerCard, StoreError> {
    Ok(IssuerCard {
        card_id: row.try_get(0)?,
        status: row.try_get(1)?,
        service_code: row.try_get(2)?,
        pin_method: row.try_get(3)?,
        pin_key_index: row.try_get(4)?,
        pin_reference: row.try_get(5)?,
        cryptogram_version: row.try_get(6)?,
        daily_limit_minor: row.try_get(7)?,
        pin_failures: row.try_get(8)?,
        last_atc: row.try_get(9)?,
        spent_minor: row.try_get(10)?,
        spent_on: row.try_get(11)?,
    })
}

async fn lock_issuer_cards(
    transaction: &tokio_postgres::Transaction<'_>,
    statements: &Statements,
    ids: &BTreeSet<String>,
) -> Result<Vec<IssuerCard>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let rows = transaction.query(&statements.lock_cards, &[&ids]).await?;
    rows.iter().map(issuer_card_from_row).collect()
}

/// The cards' counters an authorization changed, every card in one statement.
async fn update_issuer_cards(
    transaction: &tokio_postgres::Transaction<'_>,
    statements: &Statements,
    cards: &CardSet,
) -> Result<(), StoreError> {
    let dirty: Vec<&IssuerCard> = cards.dirty().collect();
    if dirty.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = dirty.iter().map(|card| card.card_id.as_str()).collect();
    let failures: Vec<i64> = dirty.iter().map(|card| card.pin_failures).collect();
    let atcs: Vec<Option<i64>> = dirty.iter().map(|card| card.last_atc).collect();
    let spent: Vec<i64> = dirty.iter().map(|card| card.spent_minor).collect();
    let days: Vec<Option<&str>> = dirty.iter().map(|card| card.spent_on.as_deref()).collect();
    transaction
        .execute(
            &statements.update_cards,
            &[&ids, &failures, &atcs, &spent, &days],
        )
        .await?;
    Ok(())
}

impl PostgresStore {
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
        let mut client = self.other.lock().await?;
        let transaction = client.transaction().await?;
        for card in &cards {
            transaction
                .execute(
                    &format!("INSERT INTO issuer_cards ({ISSUER_CARD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (card_id) DO NOTHING"),
                    &[
                        &card.card_id,
                        &card.status,
                        &card.service_code,
                        &card.pin_method,
                        &card.pin_key_index,
                        &card.pin_reference,
                        &card.cryptogram_version,
                        &card.daily_limit_minor,
                        &card.pin_failures,
                        &card.last_atc,
                        &card.spent_minor,
                        &card.spent_on,
                    ],
                )
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    pub async fn issuer_card(&self, card_id: &str) -> Result<Option<IssuerCard>, StoreError> {
        let client = self.other.lock().await?;
        let row = client
            .query_opt(
                &format!("SELECT {ISSUER_CARD_COLUMNS} FROM issuer_cards WHERE card_id = $1"),
                &[&card_id],
            )
            .await?;
        row.as_ref().map(issuer_card_from_row).transpose()
    }
}

fn terminal_session_from_row(row: &Row) -> Result<TerminalSession, StoreError> {
    Ok(TerminalSession {
        terminal_id: row.try_get(0)?,
        key_scheme: row.try_get(1)?,
        tmk_key: row.try_get(2)?,
        pin_key: row.try_get(3)?,
        mac_key: row.try_get(4)?,
        batch: row.try_get(5)?,
        operator: row.try_get(6)?,
        signed_on_at: row.try_get(7)?,
        initial_ksn: row.try_get(8)?,
        ksn_counter: row.try_get(9)?,
    })
}

impl PostgresStore {
    pub async fn put_terminal_sessions(
        &self,
        sessions: Vec<TerminalSession>,
    ) -> Result<(), StoreError> {
        let mut client = self.other.lock().await?;
        let transaction = client.transaction().await?;
        for session in &sessions {
            transaction
                .execute(
                    &format!("INSERT INTO terminal_sessions ({TERMINAL_SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (terminal_id) DO NOTHING"),
                    &[
                        &session.terminal_id,
                        &session.key_scheme,
                        &session.tmk_key,
                        &session.pin_key,
                        &session.mac_key,
                        &session.batch,
                        &session.operator,
                        &session.signed_on_at,
                        &session.initial_ksn,
                        &session.ksn_counter,
                    ],
                )
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    pub async fn terminal_session(
        &self,
        terminal_id: &str,
    ) -> Result<Option<TerminalSession>, StoreError> {
        let client = self.other.lock().await?;
        let row = client
            .query_opt(&format!("SELECT {TERMINAL_SESSION_COLUMNS} FROM terminal_sessions WHERE terminal_id = $1"), &[&terminal_id])
            .await?;
        row.as_ref().map(terminal_session_from_row).transpose()
    }

    pub async fn change_session(
        &self,
        terminal_id: &str,
        change: SessionChange,
    ) -> Result<Option<TerminalSession>, StoreError> {
        let client = self.other.lock().await?;
        let sql = change.sql("$1", "$2::BIGINT");
        match change {
            SessionChange::SignOff => client.execute(&sql, &[&terminal_id]).await?,
            SessionChange::CloseBatch { batch } => {
                client.execute(&sql, &[&terminal_id, &batch]).await?
            }
        };
        let row = client
            .query_opt(&format!("SELECT {TERMINAL_SESSION_COLUMNS} FROM terminal_sessions WHERE terminal_id = $1"), &[&terminal_id])
            .await?;
        row.as_ref().map(terminal_session_from_row).transpose()
    }

    pub async fn accept_ksn_counter(
        &self,
        terminal_id: &str,
        counter: i64,
    ) -> Result<bool, StoreError> {
        let client = self.other.lock().await?;
        // One conditional statement: two messages with the same counter cannot both pass.
        let changed = client
            .execute(
                "UPDATE terminal_sessions SET ksn_counter = $2 WHERE terminal_id = $1 AND ksn_counter < $2",
                &[&terminal_id, &counter],
            )
            .await?;
        Ok(changed == 1)
    }

    pub async fn sign_on(&self, sign_on: SignOn) -> Result<Option<TerminalSession>, StoreError> {
        let client = self.other.lock().await?;
        let row = client
            .query_opt(
                &format!("UPDATE terminal_sessions SET pin_key = $1, mac_key = $2, operator = $3, signed_on_at = $4 WHERE terminal_id = $5 RETURNING {TERMINAL_SESSION_COLUMNS}"),
                &[&sign_on.pin_key, &sign_on.mac_key, &sign_on.operator, &sign_on.at, &sign_on.terminal_id],
            )
            .await?;
        row.as_ref().map(terminal_session_from_row).transpose()
    }
}

pub(crate) fn journal_entry_from_row(row: &Row) -> Result<JournalEntry, StoreError> {
    Ok(JournalEntry {
        received_at: row.try_get(0)?,
        duration_us: row.try_get(1)?,
        peer: row.try_get(2)?,
        terminal_id: row.try_get(3)?,
        merchant_id: row.try_get(4)?,
        mti: row.try_get(5)?,
        kind: row.try_get(6)?,
        batch: row.try_get(7)?,
        stan: row.try_get(8)?,
        transmission: row.try_get(9)?,
        amount_minor: row.try_get(10)?,
        currency: row.try_get(11)?,
        card: row.try_get(12)?,
        original_batch: row.try_get(13)?,
        original_stan: row.try_get(14)?,
        response: row.try_get(15)?,
        rrn: row.try_get(16)?,
        auth_code: row.try_get(17)?,
        answer: row.try_get(18)?,
        request_mac: row.try_get(19)?,
        risk: row.try_get(20)?,
        card_id: row.try_get(21)?,
        operator: row.try_get(22)?,
        entry_mode: row.try_get(23)?,
        card_verification: row.try_get(24)?,
    })
}

impl PostgresStore {
    /// Appends entries through the journal's writer, committed with whatever other handlers
    /// journal at the same moment (`postgres_journal.rs`); returns after the commit.
    pub async fn journal(&self, entries: Vec<JournalEntry>) -> Result<(), StoreError> {
        self.journal.append(entries).await
    }

    pub async fn journal_of(
        &self,
        terminal_id: &str,
        batch: i64,
        stan: Option<i64>,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let client = self.other.lock().await?;
        // Two statements, so that the index is used on all three columns when a trace number
        // is given (the duplicate check of every financial message).
        let rows = match stan {
            Some(stan) => client
                .query(
                    &format!("SELECT {JOURNAL_COLUMNS} FROM journal WHERE terminal_id = $1 AND batch = $2 AND stan = $3 ORDER BY id"),
                    &[&terminal_id, &batch, &stan],
                )
                .await?,
            None => client
                .query(
                    &format!("SELECT {JOURNAL_COLUMNS} FROM journal WHERE terminal_id = $1 AND batch = $2 ORDER BY id"),
                    &[&terminal_id, &batch],
                )
                .await?,
        };
        rows.iter().map(journal_entry_from_row).collect()
    }

    pub async fn journal_with_cards(
        &self,
        since_micros: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<(i64, JournalEntry)>, StoreError> {
        let client = self.other.lock().await?;
        let rows = client
            .query(
                &format!("SELECT {JOURNAL_COLUMNS}, id FROM journal WHERE id > $1 AND received_at >= $2 AND card_id IS NOT NULL ORDER BY id LIMIT $3"),
                &[&after_id, &since_micros, &limit],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get(JOURNAL_COLUMN_COUNT)?,
                    journal_entry_from_row(row)?,
                ))
            })
            .collect()
    }

    pub async fn journal_recent(&self, limit: i64) -> Result<Vec<JournalEntry>, StoreError> {
        // A listing for people (the console's journal page): it may read the replica.
        let client = self.lagging_reader().await?;
        let rows = client
            .query(
                &format!("SELECT {JOURNAL_COLUMNS} FROM (SELECT * FROM journal ORDER BY id DESC LIMIT $1) AS recent ORDER BY id"),
                &[&limit],
            )
            .await?;
        rows.iter().map(journal_entry_from_row).collect()
    }
}

fn pending_reversal_from_row(row: &Row) -> Result<PendingReversal, StoreError> {
    Ok(PendingReversal {
        id: row.try_get(0)?,
        created_at: row.try_get(1)?,
        terminal_id: row.try_get(2)?,
        merchant_id: row.try_get(3)?,
        batch: row.try_get(4)?,
        stan: row.try_get(5)?,
        processing_code: row.try_get(6)?,
        condition_code: row.try_get(7)?,
        transaction_type: row.try_get(8)?,
        original_batch: row.try_get(9)?,
        original_stan: row.try_get(10)?,
        amount_minor: row.try_get(11)?,
        currency: row.try_get(12)?,
        attempts: row.try_get(13)?,
        next_attempt_at: row.try_get(14)?,
        last_response: row.try_get(15)?,
        done_at: row.try_get(16)?,
    })
}

impl PostgresStore {
    pub async fn queue_reversal(&self, reversal: PendingReversal) -> Result<(), StoreError> {
        let client = self.other.lock().await?;
        client
            .execute(
                "INSERT INTO pending_reversals (created_at, terminal_id, merchant_id, batch, stan, processing_code, condition_code, transaction_type, original_batch, original_stan, amount_minor, currency, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, $13) ON CONFLICT (terminal_id, batch, stan, transaction_type) DO NOTHING",
                &[
                    &reversal.created_at,
                    &reversal.terminal_id,
                    &reversal.merchant_id,
                    &reversal.batch,
                    &reversal.stan,
                    &reversal.processing_code,
                    &reversal.condition_code,
                    &reversal.transaction_type,
                    &reversal.original_batch,
                    &reversal.original_stan,
                    &reversal.amount_minor,
                    &reversal.currency,
                    &reversal.next_attempt_at,
                ],
            )
            .await?;
        Ok(())
    }

    pub async fn due_reversals(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<PendingReversal>, StoreError> {
        let client = self.other.lock().await?;
        let rows = client
            .query(
                &format!("SELECT {PENDING_REVERSAL_COLUMNS} FROM pending_reversals WHERE done_at IS NULL AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2"),
                &[&now, &limit],
            )
            .await?;
        rows.iter().map(pending_reversal_from_row).collect()
    }

    pub async fn all_reversals(&self) -> Result<Vec<PendingReversal>, StoreError> {
        let client = self.other.lock().await?;
        let rows = client
            .query(
                &format!("SELECT {PENDING_REVERSAL_COLUMNS} FROM pending_reversals ORDER BY id"),
                &[],
            )
            .await?;
        rows.iter().map(pending_reversal_from_row).collect()
    }

    pub async fn reversal_queued(
        &self,
        terminal_id: &str,
        batch: i64,
        stan: i64,
        transaction_type: &str,
    ) -> Result<bool, StoreError> {
        let client = self.other.lock().await?;
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pending_reversals WHERE terminal_id = $1 AND batch = $2 AND stan = $3 AND transaction_type = $4)",
                &[&terminal_id, &batch, &stan, &transaction_type],
            )
            .await?;
        Ok(row.get(0))
    }

    pub async fn record_reversal_attempt(
        &self,
        attempt: ReversalAttempt,
    ) -> Result<(), StoreError> {
        let client = self.other.lock().await?;
        client
            .execute(
                "UPDATE pending_reversals SET attempts = attempts + 1, last_response = $1, done_at = $2, next_attempt_at = $3 WHERE id = $4 AND done_at IS NULL",
                &[&attempt.response, &attempt.done_at, &attempt.next_attempt_at, &attempt.id],
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_error_messages() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db.example:5432/easypos"),
            "postgres://app@db.example:5432/easypos"
        );
        assert_eq!(
            redact_url("host=db user=app password=s3cret dbname=easypos"),
            "host=db user=app dbname=easypos"
        );
        assert_eq!(
            redact_url("postgres://127.0.0.1/test"),
            "postgres://127.0.0.1/test"
        );
    }
}
