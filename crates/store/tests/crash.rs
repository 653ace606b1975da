#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Crash consistency: a child process runs the writer under load and prints every transfer id
//! it got an acknowledgement for; the parent kills it with SIGKILL at a varying moment,
//! reopens the database and checks that every acknowledged transfer is there exactly once, that
//! a retry of it is recognised as a duplicate, and that the books balance.
//!
//! `EASYPOS_CRASH_KILLS` sets the number of kills per backend (default 5).

mod common;

use ledger::testing::verify_totals;
use ledger::*;
use money::{Amount, Currency};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use store::{Backend, Store};

const CHILD_BACKEND: &str = "EASYPOS_CRASH_CHILD_BACKEND";
const CHILD_GENERATION: &str = "EASYPOS_CRASH_CHILD_GENERATION";
const BANK: InstitutionId = InstitutionId(1);
const FUNDING: AccountId = AccountId(1);
const CUSTOMERS: u128 = 8;
/// Concurrent callers in the child, so kills land in the middle of group commits.
const CALLERS: u128 = 32;

fn specs() -> Vec<AccountSpec> {
    let mut specs = vec![AccountSpec::new(FUNDING, BANK, Currency::CNY, 1)];
    specs.extend(
        (0..CUSTOMERS)
            .map(|index| AccountSpec::new(AccountId(100 + index), BANK, Currency::CNY, 2)),
    );
    specs
}

/// The request a child sends for (generation, caller, sequence): deterministic, so the parent
/// can rebuild exactly what was acknowledged.
fn request(generation: u128, caller: u128, sequence: u128) -> TransferRequest {
    let id = TransferId((generation << 64) | (caller << 32) | sequence | 1 << 120);
    let customer = AccountId(100 + (caller + sequence) % CUSTOMERS);
    TransferRequest::posted(
        id,
        FUNDING,
        customer,
        Amount::new(1 + (sequence % 500) as i64, Currency::CNY),
    )
}

fn parse_backend(text: &str) -> Backend {
    match text.strip_prefix("sqlite:") {
        Some(path) => Backend::Sqlite { path: path.into() },
        None => Backend::Postgres {
            url: text.to_owned(),
        },
    }
}

fn describe(backend: &Backend) -> String {
    match backend {
        Backend::Sqlite { path } => format!("sqlite:{}", path.display()),
        Backend::Postgres { url } => url.clone(),
    }
}

/// The child: runs only when the parent starts this test binary with the variables set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs as the child process of the crash tests"]
async fn crash_child() {
    let Ok(backend) = std::env::var(CHILD_BACKEND) else {
        return;
    };
    let generation: u128 = std::env::var(CHILD_GENERATION).unwrap().parse().unwrap();
    let store = std::sync::Arc::new(Store::open(&parse_backend(&backend)).await.unwrap());
    store.create_accounts(specs()).await.unwrap();
    println!("READY");
    let mut tasks = Vec::new();
    for caller in 0..CALLERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for sequence in 0.. {
                let request = request(generation, caller, sequence);
                let result = store.submit(vec![request]).await.unwrap().remove(0);
                assert!(result.is_ok());
                let mut out = std::io::stdout().lock();
                writeln!(out, "ACK {caller} {sequence}").unwrap();
                out.flush().unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

async fn crash_rounds(backend: &Backend, kills: usize) {
    let executable = std::env::current_exe().unwrap();
    let mut acknowledged: Vec<TransferRequest> = Vec::new();
    for round in 0..kills {
        let generation = round as u128 + 1;
        let mut child = Command::new(&executable)
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_BACKEND, describe(backend))
            .env(CHILD_GENERATION, generation.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        // Kill somewhere between 50 and 400 ms after the child is ready, varying by round.
        let delay = Duration::from_millis(50 + (round as u64 * 137) % 350);
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            let mut ready_at = None;
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                // libtest prints "test crash_child ... " without a newline before the test runs.
                if line.ends_with("READY") {
                    ready_at = Some(Instant::now());
                } else if let Some(rest) = line.strip_prefix("ACK ") {
                    let mut parts = rest.split(' ').map(|part| part.parse::<u128>().unwrap());
                    acks.push((parts.next().unwrap(), parts.next().unwrap()));
                }
                if ready_at.is_some_and(|ready: Instant| ready.elapsed() >= delay) {
                    break;
                }
            }
            acks
        });
        let acks = reader.join().unwrap();
        child.kill().unwrap(); // SIGKILL on Unix: no destructor, no flush, no goodbye.
        child.wait().unwrap();
        assert!(
            !acks.is_empty(),
            "round {round}: the child acknowledged nothing before the kill"
        );
        acknowledged.extend(
            acks.into_iter()
                .map(|(caller, sequence)| request(generation, caller, sequence)),
        );

        let store = Store::open(backend).await.unwrap();
        for request in &acknowledged {
            let stored = store.transfer(request.id).await.unwrap();
            assert_eq!(
                stored.map(|transfer| transfer.request),
                Some(*request),
                "round {round}: acknowledged transfer {:?} is missing",
                request.id
            );
        }
        // Retrying what was acknowledged changes nothing.
        let sample: Vec<TransferRequest> = acknowledged.iter().rev().take(200).copied().collect();
        let results = store.submit(sample).await.unwrap();
        assert!(
            results
                .iter()
                .all(|result| matches!(result, Ok(Outcome::AlreadyExists(_)))),
            "round {round}: a retry created something"
        );
        store.check_books().await.unwrap();
        let accounts = store.all_accounts().await.unwrap();
        let transfers = store.all_transfers().await.unwrap();
        verify_totals(&accounts, &transfers).unwrap();
        let ids: std::collections::HashSet<TransferId> =
            transfers.iter().map(Transfer::id).collect();
        assert_eq!(ids.len(), transfers.len(), "every transfer is stored once");
        store.close().await.unwrap();
    }
}

fn kills() -> usize {
    std::env::var("EASYPOS_CRASH_KILLS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(5)
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_survives_sigkill_without_losing_acknowledged_transfers() {
    let backend = common::sqlite();
    crash_rounds(&backend.backend, kills()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_survives_sigkill_without_losing_acknowledged_transfers() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let backend = common::postgres(&url).await;
    crash_rounds(&backend.backend, kills()).await;
}
