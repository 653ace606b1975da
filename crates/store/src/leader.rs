//! Background jobs on exactly one node (docs/scaling.md).
//!
//! Several easypos processes may share one PostgreSQL database. Their terminal listeners and
//! APIs all serve, but each background job (store-and-forward, hold expiry, webhooks, …) must
//! run on one of them at a time. A node runs a job's pass only while it holds that job's
//! session-level advisory lock, taken with `pg_try_advisory_lock` on a connection of its own
//! that does nothing else. The lock lives as long as that session: when the node dies, its
//! connection closes and PostgreSQL releases the lock, and the next node to ask gets it.
//! Every node asks before every pass, so a job moves within one pass interval. A node whose
//! own lock connection is lost (PostgreSQL restarted, failed over or ended the backend) has
//! lost its locks with it: it forgets them, opens a new connection and asks for each lock
//! again, which another node may have taken meanwhile; while it cannot connect it answers no.
//!
//! On SQLite the single process that owns the database always leads.
//!
//! ```
//! # async fn example(store: &store::Store) {
//! if store.leads(store::leader::Job::Webhooks).await {
//!     // run one pass of the webhook deliveries
//! }
//! # }
//! ```

use crate::StoreError;
use crate::postgres::connection::Session as Connection;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_postgres::Client;

/// A background job that must run on one node at a time; each has its own lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Job {
    /// Queued reversals forwarded until acknowledged (`acquirer::saf`).
    StoreAndForward,
    /// Authorization holds released after their timeout.
    HoldExpiry,
    /// Insider alerts from the journal (`api::insider`).
    InsiderAlerts,
    /// Signed anchors of the audit log's head (`api::audit_anchors`).
    AuditAnchoring,
    /// Webhook deliveries (`api::webhooks`).
    Webhooks,
    /// Cardholder alerts from the journal and the wallet (`api::alerts`).
    CardholderAlerts,
    /// Unpaid wallet orders closed on time.
    WalletOrders,
    /// What fraud reports set in motion, retried until done (`api::fraud`).
    FraudFollowUps,
}

impl Job {
    pub const ALL: [Job; 8] = [
        Job::StoreAndForward,
        Job::HoldExpiry,
        Job::InsiderAlerts,
        Job::AuditAnchoring,
        Job::Webhooks,
        Job::CardholderAlerts,
        Job::WalletOrders,
        Job::FraudFollowUps,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Job::StoreAndForward => "store-and-forward",
            Job::HoldExpiry => "hold expiry",
            Job::InsiderAlerts => "insider alerts",
            Job::AuditAnchoring => "audit anchoring",
            Job::Webhooks => "webhooks",
            Job::CardholderAlerts => "cardholder alerts",
            Job::WalletOrders => "wallet orders",
            Job::FraudFollowUps => "fraud report follow-ups",
        }
    }

    /// The second half of the job's advisory lock key (`pg_locks.objid`). Never renumber:
    /// nodes of two versions running side by side during an upgrade must agree.
    pub fn lock_key(self) -> i32 {
        match self {
            Job::StoreAndForward => 1,
            Job::HoldExpiry => 2,
            Job::InsiderAlerts => 3,
            Job::AuditAnchoring => 4,
            Job::Webhooks => 5,
            Job::CardholderAlerts => 6,
            Job::WalletOrders => 7,
            Job::FraudFollowUps => 8,
        }
    }

    fn bit(self) -> u32 {
        1 << self.lock_key()
    }
}

/// The first half of every job lock's key (`pg_locks.classid`), "epos" in ASCII. The two-key
/// form (`objsubid = 2`) never meets the one-key locks of migrations and the audit log.
pub const LOCK_CLASS: i32 = 0x6570_6f73;

/// How long a leader waits for the database to confirm its session is alive before it
/// assumes the session is lost and stops running its jobs.
const SESSION_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The application name of the lock connection, so operators see it in `pg_stat_activity`.
const APPLICATION_NAME: &str = "easypos leader";

/// The PostgreSQL side: one connection, opened on first use and again after it is lost (the
/// locks it held are gone with it, so they are asked for anew).
pub(crate) struct Leadership {
    connection: Connection,
    session: Mutex<Session>,
}

#[derive(Default)]
struct Session {
    client: Option<Client>,
    /// The jobs whose locks this session holds, one bit per [`Job::lock_key`].
    held: u32,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Leadership")
    }
}

impl Leadership {
    pub(crate) fn new(url: &str) -> Leadership {
        Leadership {
            connection: Connection::new(url, APPLICATION_NAME, 0, ""),
            session: Mutex::new(Session::default()),
        }
    }

    /// Whether this node runs `job` now. A database that does not answer means no: a node
    /// that cannot prove it holds the lock must not run the job.
    pub(crate) async fn leads(&self, job: Job) -> bool {
        let mut session = self.session.lock().await;
        let attempt = tokio::time::timeout(SESSION_CHECK_TIMEOUT, self.ask(&mut session, job));
        match attempt.await {
            Ok(Ok(leads)) => leads,
            Ok(Err(error)) => {
                lose(&mut session, &error.to_string());
                false
            }
            Err(_) => {
                lose(&mut session, "the database did not answer in time");
                false
            }
        }
    }

    async fn ask(&self, session: &mut Session, job: Job) -> Result<bool, StoreError> {
        if session.client.as_ref().is_none_or(Client::is_closed) {
            if session.client.is_some() {
                lose(session, "the connection closed");
            }
            session.client = Some(self.connection.connect().await?);
        }
        let Some(client) = session.client.as_ref() else {
            return Ok(false);
        };
        if session.held & job.bit() != 0 {
            // Still ours while the session lives; one round trip proves that it does.
            client.simple_query("SELECT 1").await?;
            return Ok(true);
        }
        let taken: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, $2)",
                &[&LOCK_CLASS, &job.lock_key()],
            )
            .await?
            .get(0);
        if taken {
            session.held |= job.bit();
            tracing::info!(job = job.name(), "this node now runs the job");
        }
        Ok(taken)
    }
}

/// Forgets the session: its locks are gone (or will be, when PostgreSQL notices).
fn lose(session: &mut Session, reason: &str) {
    if session.held != 0 {
        let jobs: Vec<&str> = Job::ALL
            .iter()
            .filter(|job| session.held & job.bit() != 0)
            .map(|job| job.name())
            .collect();
        tracing::warn!(reason, jobs = %jobs.join(", "), "lost the leader session; these jobs may move to another node");
    }
    session.client = None;
    session.held = 0;
}
