#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Three `easypos up` processes (the real binary, each with its own ports and data directory)
//! on one PostgreSQL database, behind HAProxy with the repository's configuration
//! (packaging/haproxy/easypos.cfg), and the load generator selling through HAProxy
//! (docs/scaling.md). One host is killed with SIGKILL in the middle of the run and started
//! again. Afterwards every approval a terminal received is in the journal and the ledger
//! exactly once, nothing is left half-done, and the books balance.
//!
//! PostgreSQL and HAProxy are required; with `CI=true` a missing one fails the test. The load
//! is small by default so that CI stays quick: `EASYPOS_MULTINODE_RATE` (sales/s, through
//! HAProxy), `EASYPOS_MULTINODE_SECONDS` and `EASYPOS_MULTINODE_TERMINALS` make it bigger.

mod common;

use common::{Running, STARTUP_TIMEOUT, start_with};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HOSTS: usize = 3;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// HAProxy, stopped when dropped.
struct Balancer {
    child: Child,
    address: SocketAddr,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HAProxy on the repository's configuration, in front of `hosts`.
fn balancer(dir: &Path, hosts: &[SocketAddr]) -> Balancer {
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../packaging/haproxy/easypos.cfg"
    );
    let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new("haproxy")
        .args(["-f", config, "-db"])
        .env("EASYPOS_LB_LISTEN", address.to_string())
        .env("EASYPOS_LB_MAXCONN", "2000")
        .env("EASYPOS_HOST1", hosts[0].to_string())
        .env("EASYPOS_HOST2", hosts[1].to_string())
        .env("EASYPOS_HOST3", hosts[2].to_string())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("haproxy.log")).unwrap())
        .spawn()
        .expect("haproxy runs (Debian package haproxy; .ci/run installs it)");
    let balancer = Balancer { child, address };
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while std::net::TcpStream::connect(address).is_err() {
        assert!(Instant::now() < deadline, "haproxy listens in time");
        std::thread::sleep(Duration::from_millis(50));
    }
    balancer
}

/// Whether HAProxy is installed; with `CI=true` it must be.
fn haproxy_installed() -> bool {
    let installed = Command::new("haproxy")
        .arg("-v")
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        installed || std::env::var("CI").as_deref() != Ok("true"),
        "haproxy is not installed but CI=true: the multi-node test must run in CI"
    );
    if !installed {
        eprintln!("note: haproxy is not installed; skipping the multi-node test");
    }
    installed
}

/// A host's configuration file in its own data directory: the shared database, HSM master key
/// and risk rules; its own ports.
fn host_dir(base: &Path, index: usize, url: &str, iso8583: SocketAddr) -> PathBuf {
    let dir = base.join(format!("host{}", index + 1));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("easypos.toml"),
        format!(
            "data_dir = \".\"\n\
             [database]\nurl = \"{url}\"\n\
             [http]\nlisten = \"127.0.0.1:{}\"\n\
             [iso8583]\nlisten = \"{iso8583}\"\n\
             [hsm]\nlmk_file = \"{}\"\n\
             [risk]\nrules = \"{}\"\n\
             [log]\nlevel = \"warn\"\n",
            free_port(),
            base.join("hsm-lmk.key").display(),
            base.join("risk.toml").display()
        ),
    )
    .unwrap();
    dir
}

fn easypos(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_easypos"));
    command
        .current_dir(dir)
        .env_remove("EASYPOS_DATABASE_URL")
        .env_remove("EASYPOS_DATA_DIR");
    command
}

/// `easypos bench sales` through `target`, started; its JSON report is read by [`report`].
fn bench(base: &Path, target: SocketAddr, log: &str, seconds: u64, rate: u64) -> Child {
    easypos(base)
        .args([
            "bench",
            "sales",
            "--target",
            &target.to_string(),
            "--fleet",
            "fleet.json",
            "--seconds",
            &seconds.to_string(),
            "--rate",
            &rate.to_string(),
            "--sale-log",
            log,
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn report(child: Child) -> (bool, serde_json::Value, String) {
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let report = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
    (
        output.status.success(),
        report,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn three_hosts_behind_haproxy_lose_one_to_sigkill_and_every_approval_is_booked_once() {
    let Some(admin_url) = store::testing::postgres_url() else {
        return;
    };
    if !haproxy_installed() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime.block_on(store::testing::postgres(&admin_url));
    let store::Backend::Postgres { url } = database.backend.clone() else {
        unreachable!("a PostgreSQL test backend");
    };
    let base = common::temp_dir("multinode", "three-hosts");
    let terminals = setting("EASYPOS_MULTINODE_TERMINALS", 24);
    let seconds = setting("EASYPOS_MULTINODE_SECONDS", 8);
    let rate = setting("EASYPOS_MULTINODE_RATE", 240);

    // The bench world in the new database, with the load's risk rules and the HSM master key
    // that every host shares.
    std::fs::write(
        base.join("easypos.toml"),
        format!("data_dir = \".\"\n[database]\nurl = \"{url}\"\n[log]\nlevel = \"warn\"\n"),
    )
    .unwrap();
    let provisioned = easypos(&base)
        .args([
            "bench",
            "provision",
            "--terminals",
            &terminals.to_string(),
            "--cards-per-terminal",
            "4",
            "--fleet",
            "fleet.json",
        ])
        .output()
        .unwrap();
    assert!(
        provisioned.status.success(),
        "{}",
        String::from_utf8_lossy(&provisioned.stderr)
    );

    // Three hosts, one after another (the first start stores the risk rules), then HAProxy.
    let addresses: Vec<SocketAddr> = (0..HOSTS)
        .map(|_| format!("127.0.0.1:{}", free_port()).parse().unwrap())
        .collect();
    let dirs: Vec<PathBuf> = (0..HOSTS)
        .map(|index| host_dir(&base, index, &url, addresses[index]))
        .collect();
    let mut hosts: Vec<Running> = dirs.iter().map(|dir| start_with(dir, &["up"])).collect();
    for (host, address) in hosts.iter().zip(&addresses) {
        assert_eq!(host.terminals, *address);
    }
    let balancer = balancer(&base, &addresses);

    let fleet = bench::Fleet::load(&base.join("fleet.json")).unwrap();
    let opening = runtime.block_on(card_debits(&url, &fleet));

    // The load through HAProxy; a third of the way in, the second host dies (no shutdown,
    // no commit of what it had in hand) and is started again with the same configuration.
    let run = bench(&base, balancer.address, "sales-1.jsonl", seconds, rate);
    std::thread::sleep(Duration::from_secs(seconds / 3));
    hosts[1].child.kill().unwrap();
    hosts[1].child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    hosts[1] = start_with(&dirs[1], &["up"]);
    let (_, first, stderr) = report(run);
    assert!(first.is_object(), "a report from the first run: {stderr}");
    assert!(first["approvals"].as_u64().unwrap() > 0, "{first}");
    // The terminals on the killed host stop at their broken connection; the others go on.
    let stopped = first["errors"].as_u64().unwrap();
    assert!(
        stopped > 0 && stopped < terminals,
        "the killed host's terminals stopped, and only they: {first}"
    );

    // Every host serves again: a second run from where the fleet's counters are, with every
    // terminal (each reconnecting through HAProxy) and no error.
    let (succeeded, second, stderr) =
        report(bench(&base, balancer.address, "sales-2.jsonl", 2, rate));
    assert!(succeeded, "{second} {stderr}");
    assert_eq!(second["errors"], 0, "{second}");
    assert!(second["approvals"].as_u64().unwrap() > 0, "{second}");

    // Stop: HAProxy, then the hosts cleanly (each drains and commits).
    drop(balancer);
    for host in &mut hosts {
        host.stop();
    }

    let mut records = bench::SaleLog::read(&base.join("sales-1.jsonl")).unwrap();
    records.extend(bench::SaleLog::read(&base.join("sales-2.jsonl")).unwrap());
    runtime.block_on(check_ledger(&url, &fleet, &opening, &records));
    drop(database);
    let _ = std::fs::remove_dir_all(&base);
}

/// Each bench card's posted and pending debits, by card id.
async fn card_debits(url: &str, fleet: &bench::Fleet) -> HashMap<String, (i64, i64)> {
    let store = store::Store::open(&store::Backend::Postgres {
        url: url.to_owned(),
    })
    .await
    .unwrap();
    let mut debits = HashMap::new();
    for card in fleet.terminals.iter().flat_map(|terminal| &terminal.cards) {
        let account = store
            .account(demo::account_id(&card.id))
            .await
            .unwrap()
            .unwrap();
        debits.insert(
            card.id.clone(),
            (account.debits_posted, account.debits_pending),
        );
    }
    store.check_books().await.unwrap();
    store.close().await.unwrap();
    debits
}

/// Every approval the terminals heard is one approved sale in the journal and one debit of
/// its card; the journal's approvals the terminals did not hear are sales whose answer was
/// lost with the killed host; no hold is left; the books balance.
async fn check_ledger(
    url: &str,
    fleet: &bench::Fleet,
    opening: &HashMap<String, (i64, i64)>,
    records: &[bench::SaleRecord],
) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    // (terminal, batch, stan) -> (approved journal rows, amount, card id)
    let mut journaled: HashMap<(String, i64, i64), (usize, i64, String)> = HashMap::new();
    for row in client
        .query(
            "SELECT terminal_id, batch, stan, amount_minor, card_id FROM journal WHERE kind = 'Sale' AND response = '00'",
            &[],
        )
        .await
        .unwrap()
    {
        let key = (row.get(0), row.get(1), row.get(2));
        let card: Option<String> = row.get(4);
        let entry = journaled
            .entry(key)
            .or_insert((0, row.get(3), card.expect("an approved sale names its card")));
        entry.0 += 1;
    }
    let mut heard = std::collections::HashSet::new();
    let mut unanswered = std::collections::HashSet::new();
    for record in records {
        let key = (
            record.terminal.clone(),
            i64::from(record.batch),
            i64::from(record.stan),
        );
        match record.outcome {
            bench::SaleOutcome::Approved => {
                let (count, amount, _) = journaled
                    .get(&key)
                    .unwrap_or_else(|| panic!("approval {key:?} is not in the journal"));
                assert_eq!(*count, 1, "approval {key:?} journaled once");
                assert_eq!(*amount, i64::try_from(record.amount_minor).unwrap());
                heard.insert(key);
            }
            bench::SaleOutcome::Unanswered => {
                unanswered.insert(key);
            }
            bench::SaleOutcome::Declined => {
                assert!(!journaled.contains_key(&key), "decline {key:?} approved");
            }
        }
    }
    for (key, (count, ..)) in &journaled {
        assert_eq!(*count, 1, "{key:?} approved once");
        assert!(
            heard.contains(key) || unanswered.contains(key),
            "the journal's approval {key:?} is one the terminal heard, or lost with the host"
        );
    }

    // The ledger, by the sales' own transfer ids (a sale's ids come from its terminal, batch
    // and trace number, so a second posting of one sale is impossible by construction, and
    // any debit of a card by anything else would show in its total): every approval heard
    // is posted with both its halves; a decline is not; a sale whose answer was lost with the
    // killed host may be posted (decided and committed, not yet answered: its terminal's
    // reversal undoes it) or not, never half.
    let store = store::Store::open(&store::Backend::Postgres {
        url: url.to_owned(),
    })
    .await
    .unwrap();
    let cards: HashMap<(&str, usize), &str> = fleet
        .terminals
        .iter()
        .flat_map(|terminal| {
            terminal
                .cards
                .iter()
                .enumerate()
                .map(|(index, card)| ((terminal.id.as_str(), index), card.id.as_str()))
        })
        .collect();
    let mut posted_per_card: HashMap<&str, i64> = HashMap::new();
    let mut lost_but_posted = 0;
    for record in records {
        let key = acquirer::effects::BusinessKey {
            terminal_id: record.terminal.clone(),
            batch: record.batch,
            stan: record.stan,
        };
        let issuer = store
            .transfer(key.transfer_id("sale/issuer"))
            .await
            .unwrap();
        let acquirer = store
            .transfer(key.transfer_id("sale/acquirer"))
            .await
            .unwrap();
        assert_eq!(
            issuer.is_some(),
            acquirer.is_some(),
            "sale {key:?}: both halves or neither"
        );
        let card = cards[&(record.terminal.as_str(), record.card)];
        match (&record.outcome, issuer) {
            (bench::SaleOutcome::Approved, Some(transfer)) => {
                assert_eq!(transfer.debit, demo::account_id(card), "{key:?}");
                assert_eq!(
                    transfer.amount.minor(),
                    i64::try_from(record.amount_minor).unwrap()
                );
                *posted_per_card.entry(card).or_default() += transfer.amount.minor();
            }
            (bench::SaleOutcome::Approved, None) => panic!("approval {key:?} is not posted"),
            (bench::SaleOutcome::Declined, posted) => {
                assert!(posted.is_none(), "decline {key:?} posted");
            }
            (bench::SaleOutcome::Unanswered, Some(transfer)) => {
                lost_but_posted += 1;
                *posted_per_card.entry(card).or_default() += transfer.amount.minor();
            }
            (bench::SaleOutcome::Unanswered, None) => {}
        }
    }
    let now = card_debits(url, fleet).await;
    for (card, (posted, pending)) in &now {
        let (posted_before, pending_before) = opening[card];
        assert_eq!(
            posted - posted_before,
            posted_per_card.get(card.as_str()).copied().unwrap_or(0),
            "card {card}: its debits are its sales' own transfers, nothing else"
        );
        assert_eq!(pending, &pending_before, "card {card}: no hold left");
    }
    eprintln!(
        "{} sales, {} unanswered ({lost_but_posted} of them posted before the host died)",
        records.len(),
        unanswered.len()
    );
    store.close().await.unwrap();
}
