#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A real streaming replica (docs/scaling.md): `pg_basebackup -R` of the test server into a
//! temporary directory, started as a second cluster on a free loopback port, and a store
//! whose `replica_url` points there. Replay is paused on the replica, so whatever is written
//! after that shows which reads went where: the listings for people read the replica (and
//! miss it), and every decision reads the primary (and sees it). Then the replica restarts, and
//! the listings read it again without restarting the host.
//!
//! PostgreSQL only; it needs the server's binaries on this machine and a replication
//! connection from loopback (`.ci/run` allows one in pg_hba.conf).

mod common;

use ledger::*;
use money::{Amount, Currency};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use store::Store;

/// Where Debian puts `pg_ctl`, which is not on the PATH.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// How long the test waits for the replica to start and to catch up, in 100 ms steps.
const WAIT_STEPS: u32 = 300;

/// A second cluster, stopped and deleted when dropped (also when the test panics).
struct Replica {
    dir: PathBuf,
    port: u16,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if data.join("postmaster.pid").exists() {
            let _ = as_postgres(Command::new(format!("{PG_BIN}/pg_ctl")).args([
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ]))
            .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `command` as the `postgres` OS user when this test runs as root: PostgreSQL refuses to run
/// as root, and the data directory must belong to the server's user.
fn as_postgres(command: &mut Command) -> Command {
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
    if running_as_root() {
        let mut wrapped = Command::new("runuser");
        wrapped
            .args(["-u", "postgres", "--"])
            .arg(program)
            .args(args);
        wrapped
    } else {
        let mut plain = Command::new(program);
        plain.args(args);
        plain
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(mut command: Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The replica of the server at `server_url`: a base backup that follows the primary, with
/// the primary's limits (a standby refuses lower ones) on `port`.
async fn start_replica(server_url: &str) -> Replica {
    let (client, connection) = tokio_postgres::connect(server_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut limits = String::new();
    for setting in [
        "max_connections",
        "max_worker_processes",
        "max_wal_senders",
        "max_prepared_transactions",
        "max_locks_per_transaction",
    ] {
        let value: String = client
            .query_one(&format!("SHOW {setting}"), &[])
            .await
            .unwrap()
            .get(0);
        limits.push_str(&format!("{setting} = {value}\n"));
    }
    let dir = std::env::temp_dir().join(format!(
        "easypos-replica-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let replica = Replica {
        dir: dir.clone(),
        port: free_port(),
    };
    if running_as_root() {
        run(
            {
                let mut chown = Command::new("chown");
                chown.arg("postgres").arg(&dir);
                chown
            },
            "chown",
        );
    }
    let data = dir.join("data");
    run(
        as_postgres(Command::new("pg_basebackup").args([
            "-d",
            server_url,
            "-D",
            data.to_str().unwrap(),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        ])),
        "pg_basebackup",
    );
    // Debian keeps the configuration outside the data directory: the replica gets its own.
    let config = format!(
        "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nhot_standby = on\nfsync = off\n{limits}",
        replica.port,
        dir.display()
    );
    write_as_postgres(&data.join("postgresql.conf"), &config);
    write_as_postgres(
        &data.join("pg_hba.conf"),
        "local all all trust\nhost all all 127.0.0.1/32 trust\n",
    );
    write_as_postgres(&data.join("pg_ident.conf"), "");
    replica.start();
    replica
}

impl Replica {
    fn start(&self) {
        run(
            as_postgres(Command::new(format!("{PG_BIN}/pg_ctl")).args([
                "-D",
                self.dir.join("data").to_str().unwrap(),
                "-l",
                self.dir.join("log").to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ])),
            "pg_ctl start",
        );
    }

    /// A clean shutdown, as for a restart: the server ends every connection first.
    fn stop(&self) {
        run(
            as_postgres(Command::new(format!("{PG_BIN}/pg_ctl")).args([
                "-D",
                self.dir.join("data").to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "stop",
            ])),
            "pg_ctl stop",
        );
    }
}

fn write_as_postgres(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    if running_as_root() {
        run(
            {
                let mut chown = Command::new("chown");
                chown.arg("postgres").arg(path);
                chown
            },
            "chown",
        );
    }
}

/// `url` with another port (the replica serves the same databases).
fn on_port(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host);
    format!("{scheme}://{host}:{port}/{path}")
}

/// A query on its own connection to `url`.
async fn query_one_i64(url: &str, sql: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.query_one(sql, &[]).await.unwrap().get(0)
}

fn journal_row(stan: i64) -> store::journal::JournalEntry {
    store::journal::JournalEntry {
        received_at: 1_800_000_000_000_000 + stan,
        duration_us: 10,
        peer: "127.0.0.1:1".into(),
        terminal_id: "10000001".into(),
        merchant_id: "898310058120001".into(),
        mti: "0200".into(),
        kind: "Sale".into(),
        batch: Some(1),
        stan: Some(stan),
        amount_minor: Some(100),
        currency: Some(156),
        response: Some("00".into()),
        ..store::journal::JournalEntry::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_read_the_replica_and_decisions_read_the_primary() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    // The database first, so the base backup has it.
    let backend = common::postgres(&url).await;
    let store::Backend::Postgres { url: primary_url } = backend.backend.clone() else {
        unreachable!("a PostgreSQL test backend");
    };
    // Migrated before the backup too: a replica cannot be migrated.
    Store::open(&backend.backend)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    let replica = start_replica(&url).await;
    let replica_url = on_port(&primary_url, replica.port);
    assert_eq!(
        query_one_i64(&replica_url, "SELECT pg_is_in_recovery()::int::bigint").await,
        1,
        "the second cluster is a standby"
    );

    let tuning = store::PostgresTuning {
        replica_url: Some(replica_url.clone()),
        ..store::PostgresTuning::default()
    };
    let store = Store::open_postgres(&primary_url, &tuning, Arc::new(store::SystemClock))
        .await
        .unwrap();
    assert!(store.reads_replica());
    const BANK: InstitutionId = InstitutionId(1);
    const FUNDING: AccountId = AccountId(1);
    const ALICE: AccountId = AccountId(2);
    store
        .create_accounts(vec![
            AccountSpec::new(FUNDING, BANK, Currency::CNY, 1),
            AccountSpec::new(ALICE, BANK, Currency::CNY, 2)
                .constraint(BalanceConstraint::DebitsMustNotExceedCredits),
        ])
        .await
        .unwrap();
    let cny = |minor| Amount::new(minor, Currency::CNY);
    store
        .submit(vec![TransferRequest::posted(
            TransferId(1),
            FUNDING,
            ALICE,
            cny(1_000),
        )])
        .await
        .unwrap();
    store.journal(vec![journal_row(1)]).await.unwrap();

    // The replica catches up, and then stops replaying.
    let target = query_one_i64(
        &primary_url,
        "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint",
    )
    .await;
    let mut caught_up = false;
    for _ in 0..WAIT_STEPS {
        let replayed = query_one_i64(
            &replica_url,
            "SELECT coalesce((pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, 0)",
        )
        .await;
        if replayed >= target {
            caught_up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(caught_up, "the replica replays the primary's writes");
    assert_eq!(store.journal_recent(10).await.unwrap().len(), 1);
    query_one_i64(&replica_url, "SELECT 1::bigint FROM pg_wal_replay_pause()").await;

    // Written after the pause: on the primary only.
    store.journal(vec![journal_row(2)]).await.unwrap();
    store
        .submit(vec![TransferRequest::posted(
            TransferId(2),
            ALICE,
            FUNDING,
            cny(900),
        )])
        .await
        .unwrap();

    // The console's journal page reads the replica: it does not have the second row yet.
    let listed = store.journal_recent(10).await.unwrap();
    assert_eq!(
        listed.iter().map(|entry| entry.stan).collect::<Vec<_>>(),
        vec![Some(1)],
        "the listing came from the paused replica"
    );
    // What a duplicate check reads is the primary's: the second row is there.
    assert_eq!(
        store
            .journal_of("10000001", 1, Some(2))
            .await
            .unwrap()
            .len(),
        1
    );
    // And the balance a decision depends on is the primary's: 100 left, not 1,000.
    let refused = store
        .submit(vec![TransferRequest::posted(
            TransferId(3),
            ALICE,
            FUNDING,
            cny(500),
        )])
        .await
        .unwrap();
    assert!(
        refused[0].is_err(),
        "decided on the primary's balance: {refused:?}"
    );
    assert_eq!(
        store.account(ALICE).await.unwrap().unwrap().available(),
        100
    );
    store.check_books().await.unwrap();

    // Replay resumes: the listing shows the second row once the replica has it.
    query_one_i64(&replica_url, "SELECT 1::bigint FROM pg_wal_replay_resume()").await;
    let mut seen = false;
    for _ in 0..WAIT_STEPS {
        if store.journal_recent(10).await.unwrap().len() == 2 {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(seen, "the replica catches up after replay resumes");

    // The replica restarts: its listings fail while it is down (at once, with a clear error),
    // and are read from it again when it is back, without restarting the host.
    replica.stop();
    let error = store.journal_recent(10).await.unwrap_err();
    assert!(error.to_string().contains("database"), "{error}");
    replica.start();
    let mut back = false;
    for _ in 0..50 {
        if store
            .journal_recent(10)
            .await
            .is_ok_and(|rows| rows.len() == 2)
        {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(back, "the listings read the restarted replica");
    store.close().await.unwrap();
    drop(replica);
}
