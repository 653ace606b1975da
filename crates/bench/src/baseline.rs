//! The conventional baseline (issue 13): the ledger and card effects of the sales workload done
//! the way most payment back ends do them, one PostgreSQL transaction per authorization.
//!
//! [`baseline_throughput`] makes its own tables in a schema of its own (`bench_baseline` by
//! default) of the database it is given, dropped and made again at every run, so it never
//! touches easypos's tables. Then many clients, each on its own connection and each with its own
//! cards (as a terminal has its own in `bench sales`, so clients never wait for each other's
//! rows), authorize sales of 1.00 to 99.99 CNY in a closed loop. One authorization is:
//!
//! ```sql
//! BEGIN;
//! SELECT c.state, a.id, a.balance_minor FROM cards c JOIN accounts a ON a.id = c.account_id
//!  WHERE c.id = $1 FOR UPDATE;           -- lock the card and its account
//! -- checked here: the card is active and the balance covers the amount
//! UPDATE accounts SET balance_minor = balance_minor - $2 WHERE id = $3;
//! INSERT INTO transfers (…) VALUES (…);  -- card account to the merchant's settlement account
//! INSERT INTO journal (…) VALUES (…);    -- the authorization and its answer
//! COMMIT;                                 -- durable as the server is set (synchronous_commit)
//! ```
//!
//! A declined authorization (a blocked card, [`BaselineLoad::blocked_every`]) writes only its
//! journal row. The merchant's settlement account is credited by the transfer row alone and its
//! balance is not updated per sale: one row updated by every client would serialize them all,
//! and a conventional design avoids that hot row too. That makes the baseline as fast as it can
//! honestly be.
//!
//! After the run the books are checked: a journal row per answer, a transfer per approval, and
//! the cards' balances down by exactly what the transfers moved. A mismatch fails the run.

use crate::BenchError;
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::{Client, NoTls};

/// Most clients a run may have: each holds one PostgreSQL connection, and a server allows 100
/// by default.
pub const MAX_CLIENTS: usize = 1_000;
/// Longest run, as for `bench sales`.
pub const MAX_SECONDS: u64 = 3_600;
/// Most cards per client (the setup inserts them all).
pub const MAX_CARDS_PER_CLIENT: usize = 1_000;
/// Latency samples kept per client (the first ones).
const MAX_SAMPLES_PER_CLIENT: usize = 200_000;
/// Opening balance of a card, in fen: more than any run spends.
const CARD_OPENING_MINOR: i64 = 1_000_000_000_000;
/// The merchant's settlement account (card ids and their accounts count from 1).
const MERCHANT_ACCOUNT: i64 = 0;
/// Sale amounts run from 1.00 to 99.99 CNY, as in `bench sales`.
const MIN_AMOUNT_MINOR: i64 = 100;
const AMOUNT_SPREAD_MINOR: u64 = 9_900;
/// Answers in the journal, as the host would give them: approved, and restricted card.
const APPROVED: &str = "00";
const BLOCKED: &str = "62";

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BaselineLoad {
    /// Concurrent clients, one connection and one authorization in flight each.
    pub clients: usize,
    pub seconds: u64,
    /// Active cards per client, used in turn.
    pub cards_per_client: usize,
    /// Every n-th authorization of a client is on its blocked card and must be declined; 0 for
    /// none.
    pub blocked_every: u64,
    /// The schema the baseline's tables are made in (dropped first, and again after the run).
    pub schema: String,
}

impl BaselineLoad {
    pub fn new(clients: usize, seconds: u64) -> Self {
        Self {
            clients,
            seconds,
            cards_per_client: 4,
            blocked_every: 0,
            schema: "bench_baseline".into(),
        }
    }

    fn check(&self) -> Result<(), BenchError> {
        let invalid = |why: String| Err(BenchError::Setup(why));
        if !(1..=MAX_CLIENTS).contains(&self.clients) {
            return invalid(format!("clients must be 1 to {MAX_CLIENTS}"));
        }
        if !(1..=MAX_SECONDS).contains(&self.seconds) {
            return invalid(format!("seconds must be 1 to {MAX_SECONDS}"));
        }
        if !(1..=MAX_CARDS_PER_CLIENT).contains(&self.cards_per_client) {
            return invalid(format!(
                "cards per client must be 1 to {MAX_CARDS_PER_CLIENT}"
            ));
        }
        // The name goes into SQL text: only plain lower-case identifiers.
        let plain = self.schema.len() <= 63
            && self
                .schema
                .bytes()
                .next()
                .is_some_and(|first| first.is_ascii_lowercase() || first == b'_')
            && self
                .schema
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
        if !plain || self.schema == "public" {
            return invalid(format!(
                "schema {:?}: a lower-case name of letters, digits and _ (not public), at most 63 characters",
                self.schema
            ));
        }
        Ok(())
    }
}

/// What a run measured. Latencies are from BEGIN to the COMMIT's answer.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BaselineReport {
    pub backend: &'static str,
    pub load: BaselineLoad,
    /// Authorizations answered as expected: approvals plus expected declines.
    pub authorizations: u64,
    pub approvals: u64,
    pub declines: u64,
    /// Clients stopped by a failed statement or a wrong answer.
    pub errors: u64,
    pub elapsed_micros: u64,
    pub authorizations_per_second: f64,
    pub p50_micros: u64,
    pub p90_micros: u64,
    pub p99_micros: u64,
    pub p999_micros: u64,
    pub max_micros: u64,
    /// The server's `synchronous_commit` and `fsync`: where the durability point is.
    pub synchronous_commit: String,
    pub fsync: String,
    /// Making the tables and the cards.
    pub setup_micros: u64,
    /// CPU time this process (the clients) used during the run (`/proc/self/stat`).
    pub client_cpu_micros: Option<u64>,
    /// CPU time the clients' server processes used during the run, read from
    /// `/proc/<backend pid>/stat` when the server runs on this machine (its WAL writer and
    /// checkpointer are not counted); `None` otherwise.
    pub server_cpu_micros: Option<u64>,
}

fn database(what: &str) -> impl Fn(tokio_postgres::Error) -> BenchError + '_ {
    move |error| BenchError::Database(format!("{what}: {error}"))
}

async fn connect(url: &str) -> Result<Client, BenchError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.map_err(|error| {
        BenchError::Database(format!(
            "cannot connect to PostgreSQL ({}): {error}",
            store::redact_url(url)
        ))
    })?;
    tokio::spawn(connection);
    Ok(client)
}

/// Card `index` of client `client` (ids from 1; each card has its own account, same id).
fn card_id(load: &BaselineLoad, client: usize, index: usize) -> i64 {
    // One more card per client than `cards_per_client`: the last is the blocked one.
    (client * (load.cards_per_client + 1) + index + 1) as i64
}

/// Makes the schema, its tables and the cards, in one transaction.
async fn create(client: &mut Client, load: &BaselineLoad) -> Result<(), BenchError> {
    let schema = &load.schema;
    let cards = (load.clients * (load.cards_per_client + 1)) as i64;
    let transaction = client
        .transaction()
        .await
        .map_err(database("starting the setup"))?;
    transaction
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE;
             CREATE SCHEMA {schema};
             CREATE TABLE {schema}.accounts (
                 id bigint PRIMARY KEY,
                 balance_minor bigint NOT NULL,
                 currency char(3) NOT NULL
             );
             CREATE TABLE {schema}.cards (
                 id bigint PRIMARY KEY,
                 account_id bigint NOT NULL REFERENCES {schema}.accounts (id),
                 state text NOT NULL CHECK (state IN ('active', 'blocked'))
             );
             CREATE TABLE {schema}.transfers (
                 id bigserial PRIMARY KEY,
                 debit_account bigint NOT NULL REFERENCES {schema}.accounts (id),
                 credit_account bigint NOT NULL REFERENCES {schema}.accounts (id),
                 amount_minor bigint NOT NULL CHECK (amount_minor > 0),
                 created_at timestamptz NOT NULL DEFAULT now()
             );
             CREATE TABLE {schema}.journal (
                 id bigserial PRIMARY KEY,
                 client integer NOT NULL,
                 trace bigint NOT NULL,
                 card_id bigint NOT NULL,
                 amount_minor bigint NOT NULL,
                 response_code char(2) NOT NULL,
                 transfer_id bigint,
                 created_at timestamptz NOT NULL DEFAULT now(),
                 UNIQUE (client, trace)
             );
             INSERT INTO {schema}.accounts (id, balance_minor, currency)
                 SELECT id, CASE WHEN id = {MERCHANT_ACCOUNT} THEN 0 ELSE {CARD_OPENING_MINOR} END, 'CNY'
                 FROM generate_series(0, {cards}) AS id;
             INSERT INTO {schema}.cards (id, account_id, state)
                 SELECT id, id, CASE WHEN id % {per} = 0 THEN 'blocked' ELSE 'active' END
                 FROM generate_series(1, {cards}) AS id;
             ANALYZE {schema}.accounts;
             ANALYZE {schema}.cards;",
            per = load.cards_per_client + 1,
        ))
        .await
        .map_err(database("making the baseline's tables"))?;
    transaction
        .commit()
        .await
        .map_err(database("committing the setup"))
}

/// One client's statements, prepared once on its connection.
struct Statements {
    lock: tokio_postgres::Statement,
    debit: tokio_postgres::Statement,
    transfer: tokio_postgres::Statement,
    journal: tokio_postgres::Statement,
}

impl Statements {
    async fn prepare(client: &Client, schema: &str) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            lock: client
                .prepare(&format!(
                    "SELECT c.state, a.id, a.balance_minor FROM {schema}.cards c
                     JOIN {schema}.accounts a ON a.id = c.account_id
                     WHERE c.id = $1 FOR UPDATE"
                ))
                .await?,
            debit: client
                .prepare(&format!(
                    "UPDATE {schema}.accounts SET balance_minor = balance_minor - $2 WHERE id = $1"
                ))
                .await?,
            transfer: client
                .prepare(&format!(
                    "INSERT INTO {schema}.transfers (debit_account, credit_account, amount_minor)
                     VALUES ($1, $2, $3) RETURNING id"
                ))
                .await?,
            journal: client
                .prepare(&format!(
                    "INSERT INTO {schema}.journal
                     (client, trace, card_id, amount_minor, response_code, transfer_id)
                     VALUES ($1, $2, $3, $4, $5, $6)"
                ))
                .await?,
        })
    }
}

/// What one client did.
#[derive(Debug, Default)]
struct Tally {
    approvals: u64,
    declines: u64,
    latencies: Vec<u64>,
    /// CPU time of its server process during the run, when that process is on this machine.
    server_cpu_micros: Option<u64>,
    error: Option<String>,
}

/// The CPU time so far of the server process serving `client`, if it runs on this machine.
async fn server_cpu_micros(client: &Client) -> Option<u64> {
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .ok()?
        .get(0);
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    if !comm.starts_with("postgres") {
        return None;
    }
    crate::cpu_micros(&pid.to_string())
}

/// One authorization in its own transaction; the response code it answered.
async fn authorize(
    client: &mut Client,
    statements: &Statements,
    index: i32,
    trace: i64,
    card: i64,
    amount_minor: i64,
) -> Result<&'static str, tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    let row = transaction.query_one(&statements.lock, &[&card]).await?;
    let state: &str = row.get(0);
    let account: i64 = row.get(1);
    let balance_minor: i64 = row.get(2);
    let (code, transfer) = if state == "active" && balance_minor >= amount_minor {
        transaction
            .execute(&statements.debit, &[&account, &amount_minor])
            .await?;
        let transfer: i64 = transaction
            .query_one(
                &statements.transfer,
                &[&account, &MERCHANT_ACCOUNT, &amount_minor],
            )
            .await?
            .get(0);
        (APPROVED, Some(transfer))
    } else {
        (BLOCKED, None)
    };
    transaction
        .execute(
            &statements.journal,
            &[&index, &trace, &card, &amount_minor, &code, &transfer],
        )
        .await?;
    transaction.commit().await?;
    Ok(code)
}

async fn run_client(url: String, load: BaselineLoad, index: usize, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut client = match connect(&url).await {
        Ok(client) => client,
        Err(error) => {
            tally.error = Some(format!("client {index}: {error}"));
            return tally;
        }
    };
    let statements = match Statements::prepare(&client, &load.schema).await {
        Ok(statements) => statements,
        Err(error) => {
            tally.error = Some(format!("client {index}: preparing: {error}"));
            return tally;
        }
    };
    let server_before = server_cpu_micros(&client).await;
    let mut sequence = 0_u64;
    while Instant::now() < deadline {
        sequence += 1;
        let blocked = load.blocked_every > 0 && sequence.is_multiple_of(load.blocked_every);
        let card = if blocked {
            card_id(&load, index, load.cards_per_client)
        } else {
            card_id(
                &load,
                index,
                (sequence % load.cards_per_client as u64) as usize,
            )
        };
        let amount_minor = MIN_AMOUNT_MINOR
            + ((sequence.wrapping_mul(7_919) + index as u64) % AMOUNT_SPREAD_MINOR) as i64;
        let started = Instant::now();
        let answered = authorize(
            &mut client,
            &statements,
            index as i32,
            sequence as i64,
            card,
            amount_minor,
        )
        .await;
        let micros = started.elapsed().as_micros() as u64;
        let expected = if blocked { BLOCKED } else { APPROVED };
        match answered {
            Ok(code) if code == expected => {
                if tally.latencies.len() < MAX_SAMPLES_PER_CLIENT {
                    tally.latencies.push(micros);
                }
                if blocked {
                    tally.declines += 1;
                } else {
                    tally.approvals += 1;
                }
            }
            Ok(code) => {
                tally.error = Some(format!(
                    "client {index}, authorization {sequence}: answered {code}, expected {expected}"
                ));
                break;
            }
            Err(error) => {
                tally.error = Some(format!("client {index}, authorization {sequence}: {error}"));
                break;
            }
        }
    }
    tally.server_cpu_micros = server_cpu_micros(&client)
        .await
        .zip(server_before)
        .map(|(after, before)| after.saturating_sub(before));
    tally
}

/// The books after the run, against what the clients counted: `None` when they agree.
async fn audit(
    client: &Client,
    schema: &str,
    answers: u64,
    approvals: u64,
) -> Result<Option<String>, BenchError> {
    let row = client
        .query_one(
            &format!(
                "SELECT
                   (SELECT count(*) FROM {schema}.journal),
                   (SELECT count(*) FROM {schema}.transfers),
                   (SELECT coalesce(sum(amount_minor), 0)::bigint FROM {schema}.transfers),
                   (SELECT coalesce(sum({CARD_OPENING_MINOR} - balance_minor), 0)::bigint
                      FROM {schema}.accounts WHERE id <> {MERCHANT_ACCOUNT})"
            ),
            &[],
        )
        .await
        .map_err(database("checking the books"))?;
    let (journal, transfers, moved, spent): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    Ok(
        if journal as u64 != answers || transfers as u64 != approvals {
            Some(format!(
                "the books disagree with the answers: {journal} journal rows for {answers} answers, {transfers} transfers for {approvals} approvals"
            ))
        } else if moved != spent {
            Some(format!(
                "the transfers moved {moved} but the cards' balances went down by {spent}"
            ))
        } else {
            None
        },
    )
}

async fn setting(client: &Client, name: &str) -> Result<String, BenchError> {
    Ok(client
        .query_one(&format!("SHOW {name}"), &[])
        .await
        .map_err(database("reading the server's settings"))?
        .get(0))
}

/// Runs `load` against the PostgreSQL database at `url` and reports. Fails with
/// [`BenchError::WrongBaseline`] (carrying the report) when a client stopped or the books do
/// not add up.
pub async fn baseline_throughput(
    url: &str,
    load: BaselineLoad,
) -> Result<BaselineReport, BenchError> {
    load.check()?;
    let setting_up = Instant::now();
    let mut admin = connect(url).await?;
    create(&mut admin, &load).await?;
    let synchronous_commit = setting(&admin, "synchronous_commit").await?;
    let fsync = setting(&admin, "fsync").await?;
    let setup_micros = setting_up.elapsed().as_micros() as u64;

    let started = Instant::now();
    let client_before = crate::cpu_micros("self");
    let deadline = started + Duration::from_secs(load.seconds);
    let clients: Vec<_> = (0..load.clients)
        .map(|index| tokio::spawn(run_client(url.to_owned(), load.clone(), index, deadline)))
        .collect();
    let mut tallies = Vec::with_capacity(clients.len());
    for client in clients {
        tallies.push(client.await.unwrap_or_else(|error| Tally {
            error: Some(format!("a client task failed: {error}")),
            ..Tally::default()
        }));
    }
    let elapsed_micros = started.elapsed().as_micros() as u64;
    let client_cpu_micros = crate::cpu_micros("self")
        .zip(client_before)
        .map(|(after, before)| after.saturating_sub(before));

    let (mut approvals, mut declines, mut errors) = (0, 0, 0);
    let mut first_error = None;
    let mut latencies = Vec::new();
    let mut server_cpu = Some(0);
    for tally in tallies {
        server_cpu = server_cpu
            .zip(tally.server_cpu_micros)
            .map(|(sum, more)| sum + more);
        approvals += tally.approvals;
        declines += tally.declines;
        latencies.extend(tally.latencies);
        if let Some(error) = tally.error {
            errors += 1;
            first_error.get_or_insert(error);
        }
    }
    // A failed authorization rolled back: the books hold what was answered, no more.
    if let Some(problem) = audit(&admin, &load.schema, approvals + declines, approvals).await? {
        errors += 1;
        first_error.get_or_insert(problem);
    }
    admin
        .batch_execute(&format!("DROP SCHEMA {} CASCADE", load.schema))
        .await
        .map_err(database("dropping the baseline's tables"))?;

    latencies.sort_unstable();
    let authorizations = approvals + declines;
    let report = BaselineReport {
        backend: "postgres",
        load,
        authorizations,
        approvals,
        declines,
        errors,
        elapsed_micros,
        authorizations_per_second: authorizations as f64 * 1e6 / elapsed_micros.max(1) as f64,
        p50_micros: crate::percentile(&latencies, 500),
        p90_micros: crate::percentile(&latencies, 900),
        p99_micros: crate::percentile(&latencies, 990),
        p999_micros: crate::percentile(&latencies, 999),
        max_micros: latencies.last().copied().unwrap_or(0),
        synchronous_commit,
        fsync,
        setup_micros,
        client_cpu_micros,
        server_cpu_micros: server_cpu,
    };
    match first_error {
        None => Ok(report),
        Some(first) => Err(BenchError::WrongBaseline {
            errors,
            first,
            report: Box::new(report),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_schemas_that_cannot_run_are_refused() {
        assert!(BaselineLoad::new(4, 1).check().is_ok());
        for bad in [
            BaselineLoad::new(0, 1),
            BaselineLoad::new(MAX_CLIENTS + 1, 1),
            BaselineLoad::new(4, 0),
            BaselineLoad::new(4, MAX_SECONDS + 1),
            BaselineLoad {
                cards_per_client: 0,
                ..BaselineLoad::new(4, 1)
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
        for schema in [
            "public",
            "Bench",
            "x; DROP TABLE t",
            "",
            "1abc",
            &"a".repeat(64),
        ] {
            let load = BaselineLoad {
                schema: schema.to_owned(),
                ..BaselineLoad::new(4, 1)
            };
            assert!(load.check().is_err(), "{schema:?}");
        }
    }

    #[test]
    fn every_client_has_its_own_cards_and_one_blocked_card() {
        let load = BaselineLoad::new(3, 1);
        let mut seen = std::collections::HashSet::new();
        for client in 0..3 {
            for index in 0..=load.cards_per_client {
                assert!(seen.insert(card_id(&load, client, index)));
            }
            // The blocked card is the one the setup marks blocked (id a multiple of 5).
            assert_eq!(
                card_id(&load, client, load.cards_per_client) % (load.cards_per_client as i64 + 1),
                0
            );
        }
        assert_eq!(seen.len(), 15);
        assert!(!seen.contains(&MERCHANT_ACCOUNT));
    }
}
