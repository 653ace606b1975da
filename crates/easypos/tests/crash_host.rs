#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The whole host under load, killed (issue 14): `easypos up` (the real binary, on its own data
//! directory or PostgreSQL database and free ports) sells to the bench's terminals
//! (`bench::sales_against`, in this process) and is killed with SIGKILL at a random moment,
//! then started again, `EASYPOS_CRASH_KILLS` times (20 unless set; 1,000 for the long run,
//! RELIABILITY.md). The terminals do what real ones do: a sale whose answer did not come is
//! reversed (0400) when the host is back, before anything else. At the end:
//! - every approval a terminal received is in the ledger once and stands (its transfer is
//!   there, its reversal is not);
//! - nothing a terminal did not receive stands: each card paid exactly the sum of the
//!   approvals its terminal received, no more;
//! - the host's own store-and-forward queue is empty (every reversal it queued was
//!   acknowledged);
//! - the books balance;
//! - each terminal's batch totals (its approvals) agree with the host's (counted from the
//!   journal, as the host does for a 0500).
//!
//! The kill moments come from `EASYPOS_CRASH_SEED` (printed, and named in any failure).

mod common;

use acquirer::effects::BusinessKey;
use bench::{Fleet, SaleLog, SaleOutcome, SaleRecord, SalesLoad};
use common::{Running, run, start_with, temp_dir};
use iso8583::{LengthPrefix, ResponseCode, Stan};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// The bench's terminals and each one's cards: few, so that each sells often between kills.
const TERMINALS: usize = 4;
const CARDS_PER_TERMINAL: usize = 2;
/// The longest a load runs before its host is killed (the kill comes first).
const LOAD_SECONDS: u64 = 3;
/// Kill moments are drawn from this range after the load starts.
const KILL_AFTER_MS: std::ops::Range<u64> = 100..1_500;
/// How long a terminal waits for the host's answer to a reversal.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the host's own queued reversals may take to be acknowledged after the last start.
const QUEUE_DRAINS_WITHIN: Duration = Duration::from_secs(60);

/// A small deterministic generator (SplitMix64): the kill moments replay from the seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn within(&mut self, range: std::ops::Range<u64>) -> u64 {
        range.start + self.next() % (range.end - range.start)
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|value| value.parse().unwrap_or_else(|_| panic!("{name}: a number")))
        .unwrap_or(default)
}

/// `easypos up` on the backend `backend_args` name, on free loopback ports.
fn start_host(dir: &Path, backend_args: &[&str]) -> Running {
    let mut args = backend_args.to_vec();
    args.extend(["up", "--http", "127.0.0.1:0", "--iso8583", "127.0.0.1:0"]);
    start_with(dir, &args)
}

/// SIGKILL: no shutdown, no flush, nothing the host could do about it.
fn kill(mut host: Running) {
    host.child.kill().unwrap();
    host.child.wait().unwrap();
}

/// Sends the reversal (0400, reason 98: no answer) of each sale in `unanswered` from its
/// terminal, as the terminal does on its next start, after signing on; every reversal must be
/// acknowledged (00). Moves the terminals' trace numbers on by their sign-on.
async fn reverse(
    target: std::net::SocketAddr,
    fleet: &mut Fleet,
    unanswered: &[SaleRecord],
    what: &str,
) {
    for bench in &mut fleet.terminals {
        let mine: Vec<&SaleRecord> = unanswered
            .iter()
            .filter(|record| record.terminal == bench.id)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let terminal = terminal::Terminal::new(&bench.id, demo::SHANGHAI_MERCHANT).unwrap();
        let mut client = host::Client::connect(target, LengthPrefix::Binary2, ANSWER_TIMEOUT)
            .await
            .unwrap();
        bench.last_stan += 1;
        let sign_on = terminal
            .sign_on(Stan::new(bench.last_stan).unwrap(), "01")
            .unwrap();
        let reply = client
            .exchange(&terminal.pack(&sign_on).unwrap(), ANSWER_TIMEOUT)
            .await
            .unwrap();
        let keys = terminal
            .signed_on(&sign_on, &reply, &bench.master_key)
            .unwrap()
            .keys;
        for record in mine {
            let sale = terminal
                .sale(&terminal::Sale {
                    stan: Stan::new(record.stan).unwrap(),
                    batch: record.batch,
                    amount_minor: record.amount_minor,
                    currency: money::Currency::CNY,
                    pan: &bench.cards[record.card].pan,
                    field55: None,
                    pin_block: None,
                })
                .unwrap();
            let mut reversal = terminal
                .reversal(&sale, false, terminal::ReversalReason::NoAnswer)
                .unwrap();
            let frame = terminal.pack_with_mac(&mut reversal, &keys).unwrap();
            let reply = client.exchange(&frame, ANSWER_TIMEOUT).await.unwrap();
            let answer = terminal.answer(&reversal, &reply, Some(&keys)).unwrap();
            assert_eq!(
                answer.response,
                ResponseCode::Approved,
                "{what}: the reversal of {} trace number {} is acknowledged",
                record.terminal,
                record.stan
            );
        }
    }
}

/// The whole run on one backend: `backend_args` selects it for every command, `url` opens
/// its store from the test.
fn crash_and_check(name: &str, backend_args: &[&str], backend: store::Backend) {
    let kills = env_number("EASYPOS_CRASH_KILLS", 20);
    let seed = env_number("EASYPOS_CRASH_SEED", 14);
    eprintln!("crash harness ({name}): {kills} kills, seed {seed}");
    let what = |round: u64| format!("{name}: seed {seed}, round {round} of {kills}");
    let dir = temp_dir("crash-host", name);
    std::fs::write(dir.join("quiet.toml"), "[log]\nlevel = \"warn\"\n").unwrap();
    let mut args = vec!["--config", "quiet.toml"];
    args.extend_from_slice(backend_args);
    let mut provision = args.clone();
    let (terminals, cards) = (TERMINALS.to_string(), CARDS_PER_TERMINAL.to_string());
    provision.extend([
        "bench",
        "provision",
        "--terminals",
        &terminals,
        "--cards-per-terminal",
        &cards,
        "--fleet",
        "fleet.json",
    ]);
    let provisioned = run(&dir, &provision);
    assert_eq!(provisioned.code, 0, "{}", provisioned.stderr);
    let fleet_file = dir.join("fleet.json");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let balance = |card: &str| {
        runtime.block_on(async {
            let store = store::Store::open(&backend).await.unwrap();
            let account = store
                .account(demo::account_id(card))
                .await
                .unwrap()
                .unwrap();
            let balance = account.credits_posted - account.debits_posted;
            store.close().await.unwrap();
            balance
        })
    };
    let fleet = Fleet::load(&fleet_file).unwrap();
    let mut opening = HashMap::new();
    for card in fleet.terminals.iter().flat_map(|terminal| &terminal.cards) {
        opening.insert(card.id.clone(), balance(&card.id));
    }

    let mut random = SplitMix(seed);
    let mut records: Vec<SaleRecord> = Vec::new();
    let mut unanswered: Vec<SaleRecord> = Vec::new();
    for round in 0..=kills {
        let host = start_host(&dir, &args);
        let target = host.terminals;
        let mut fleet = Fleet::load(&fleet_file).unwrap();
        // Back up: first the reversals of the sales the terminals heard nothing of.
        runtime.block_on(reverse(target, &mut fleet, &unanswered, &what(round)));
        fleet.save(&fleet_file).unwrap();
        unanswered.clear();
        if round == kills {
            // The last start: no kill; the host's own queue drains, and it stops cleanly.
            drain_the_queue(host, &dir, &args, &runtime, &backend, &what(round));
            break;
        }
        let log_path = dir.join(format!("sales-{round}.jsonl"));
        let log = std::sync::Arc::new(SaleLog::create(&log_path).unwrap());
        let load = SalesLoad {
            cards_per_terminal: CARDS_PER_TERMINAL,
            ..SalesLoad::new(TERMINALS, LOAD_SECONDS)
        };
        let after = Duration::from_millis(random.within(KILL_AFTER_MS));
        let killer = std::thread::spawn(move || {
            std::thread::sleep(after);
            kill(host);
        });
        let (fleet, _report) =
            runtime.block_on(bench::sales_against(target, fleet, load, Some(log.clone())));
        killer.join().unwrap();
        log.finish().unwrap();
        fleet.save(&fleet_file).unwrap();
        for record in SaleLog::read(&log_path).unwrap() {
            if record.outcome == SaleOutcome::Unanswered {
                unanswered.push(record.clone());
            }
            records.push(record);
        }
    }
    let approvals = records
        .iter()
        .filter(|record| record.outcome == SaleOutcome::Approved)
        .count();
    let reversed = records
        .iter()
        .filter(|record| record.outcome == SaleOutcome::Unanswered)
        .count();
    eprintln!(
        "crash harness ({name}): {} sales, {approvals} approved, {reversed} unanswered and reversed",
        records.len()
    );
    assert!(approvals > 0, "{name}: the load sold between kills");

    runtime.block_on(check(&backend, &records, &opening, name, seed));
    // Kept for a look when a check fails; a passed run's logs and fleet are not needed.
    let _ = std::fs::remove_dir_all(&dir);
}

/// Lets the host forward the reversals it queued itself (2 s after queueing, every second)
/// until none is left, then leaves it stopped. The store is read with the host stopped (an
/// SQLite database has one process at a time), so the host is stopped, the queue read, and
/// the host started again while reversals wait, within [`QUEUE_DRAINS_WITHIN`].
fn drain_the_queue(
    mut host: Running,
    dir: &Path,
    args: &[&str],
    runtime: &tokio::runtime::Runtime,
    backend: &store::Backend,
    what: &str,
) {
    let deadline = std::time::Instant::now() + QUEUE_DRAINS_WITHIN;
    loop {
        std::thread::sleep(Duration::from_secs(3));
        host.stop();
        let waiting = runtime.block_on(async {
            let store = store::Store::open(backend).await.unwrap();
            let waiting = store
                .all_reversals()
                .await
                .unwrap()
                .into_iter()
                .filter(|reversal| reversal.done_at.is_none())
                .count();
            store.close().await.unwrap();
            waiting
        });
        if waiting == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: {waiting} reversals queued by the host are still not acknowledged"
        );
        host = start_host(dir, args);
    }
}

/// The checks of the module's comment, with the host stopped.
async fn check(
    backend: &store::Backend,
    records: &[SaleRecord],
    opening: &HashMap<String, i64>,
    name: &str,
    seed: u64,
) {
    let store = store::Store::open(backend).await.unwrap();
    let mut paid: HashMap<String, i64> = HashMap::new();
    let mut terminal_totals: HashMap<(String, u32), (u64, u64)> = HashMap::new();
    for record in records {
        let key = BusinessKey {
            terminal_id: record.terminal.clone(),
            batch: record.batch,
            stan: record.stan,
        };
        let sale = store
            .transfer(key.transfer_id("sale/issuer"))
            .await
            .unwrap();
        let reversal = store
            .transfer(key.transfer_id("reversal/issuer"))
            .await
            .unwrap();
        let what = format!(
            "{name}: seed {seed}: terminal {} trace number {} ({:?})",
            record.terminal, record.stan, record.outcome
        );
        match record.outcome {
            SaleOutcome::Approved => {
                let sale = sale.unwrap_or_else(|| panic!("{what}: the approval is in the ledger"));
                assert_eq!(
                    sale.amount.minor(),
                    i64::try_from(record.amount_minor).unwrap(),
                    "{what}: for its amount"
                );
                assert!(reversal.is_none(), "{what}: the approval stands");
                let card = card_of(&store, &sale).await;
                *paid.entry(card).or_default() += i64::try_from(record.amount_minor).unwrap();
                let totals = terminal_totals
                    .entry((record.terminal.clone(), record.batch))
                    .or_default();
                totals.0 += record.amount_minor;
                totals.1 += 1;
            }
            SaleOutcome::Declined => assert!(sale.is_none(), "{what}: nothing posted"),
            SaleOutcome::Unanswered => assert!(
                sale.is_none() || reversal.is_some(),
                "{what}: not half-done: never posted, or reversed"
            ),
        }
    }
    for (card, before) in opening {
        let account = store
            .account(demo::account_id(card))
            .await
            .unwrap()
            .unwrap();
        let after = account.credits_posted - account.debits_posted;
        assert_eq!(
            before - after,
            paid.get(card).copied().unwrap_or(0),
            "{name}: seed {seed}: {card} paid exactly its approvals"
        );
    }
    for ((terminal, batch), (amount, count)) in &terminal_totals {
        let entries = store
            .journal_of(terminal, i64::from(*batch), None)
            .await
            .unwrap();
        let host = acquirer::settlement::batch_totals(&entries);
        assert_eq!(
            (
                host.debit_minor + host.credit_minor,
                host.debit_count + host.credit_count
            ),
            (*amount, *count),
            "{name}: seed {seed}: terminal {terminal} batch {batch}: the host's totals are the terminal's"
        );
    }
    store.check_books().await.unwrap();
    store.close().await.unwrap();
}

/// The card (its directory id) whose account a sale's issuer transfer debited.
async fn card_of(store: &store::Store, sale: &ledger::Transfer) -> String {
    store
        .card_by_account(sale.debit)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("the sale debits a card: {sale:?}"))
        .id
}

#[test]
fn the_host_killed_under_load_keeps_every_approval_and_nothing_half_done_on_sqlite() {
    let dir = temp_dir("crash-host", "sqlite-data");
    let data = dir.join("data");
    let data_arg = data.display().to_string();
    crash_and_check(
        "sqlite",
        &["--data-dir", &data_arg],
        store::Backend::Sqlite {
            path: data.join("easypos.db"),
        },
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_host_killed_under_load_keeps_every_approval_and_nothing_half_done_on_postgresql() {
    let Some(admin) = store::testing::postgres_url() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let database = runtime.block_on(store::testing::postgres(&admin));
    let backend = database.backend.clone();
    let store::Backend::Postgres { url } = backend.clone() else {
        unreachable!()
    };
    crash_and_check("postgres", &["--database-url", &url], backend);
    drop(database);
}
