#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The sales bench against a host it did not start (`bench provision`, then `sales_against`):
//! a world provisioned into a database, a host serving it, two runs from the fleet in turn (the
//! second goes on from the counters the first left), the sale log against the ledger, and the
//! fleet file. Nothing here asserts a speed.

use bench::{Fleet, SaleLog, SaleOutcome, SalesLoad, provision, sales_against};
use hsm::SoftHsm;
use iso8583::LengthPrefix;
use std::path::PathBuf;
use std::sync::Arc;
use store::{Backend, Store};

struct Place(PathBuf);

impl Place {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "easypos-bench-target-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn open(place: &Place) -> Arc<Store> {
    Arc::new(
        Store::open(&Backend::Sqlite {
            path: place.0.join("easypos.db"),
        })
        .await
        .unwrap(),
    )
}

/// The acquirer host on loopback, signing receipts as `easypos up`'s does (without risk rules).
async fn serve(
    store: Arc<Store>,
    hsm: Arc<SoftHsm>,
) -> (
    std::net::SocketAddr,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let directory = store.load_directory().await.unwrap();
    let receipts = aftersale::ReceiptKeys::load(store.clone(), hsm.clone(), 1_790_000_000)
        .await
        .unwrap();
    let handler = Arc::new(
        acquirer::TerminalHandler::new(
            iso8583::Profile::builtin("cup-bcd").unwrap(),
            acquirer::TerminalRecord::from_directory(&directory),
            store,
            hsm,
        )
        .with_receipts(Arc::new(receipts)),
    );
    let listener = host::Listener::bind(
        ([127, 0, 0, 1], 0).into(),
        LengthPrefix::Binary2,
        host::Limits::default(),
    )
    .await
    .unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    (
        address,
        stop,
        tokio::spawn(listener.serve(handler, stopped)),
    )
}

async fn balance(store: &Store, card_id: &str) -> i64 {
    let account = store
        .account(demo::account_id(card_id))
        .await
        .unwrap()
        .unwrap();
    account.credits_posted - account.debits_posted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_from_a_provisioned_fleet_are_approved_and_the_sale_log_matches_the_ledger() {
    let place = Place::new("runs");
    let store = open(&place).await;
    let hsm = Arc::new(SoftHsm::new(&[7; 32]).unwrap());
    let fleet = provision(&store, &hsm, 3, 2).await.unwrap();
    assert_eq!(fleet.terminals.len(), 3);
    let mut opening = std::collections::HashMap::new();
    for card in fleet.terminals.iter().flat_map(|terminal| &terminal.cards) {
        opening.insert(card.id.clone(), balance(&store, &card.id).await);
    }
    let (address, stop, server) = serve(store.clone(), hsm.clone()).await;

    let fleet_file = place.0.join("fleet.json");
    fleet.save(&fleet_file).unwrap();
    let mut approved = std::collections::HashMap::<String, i64>::new();
    let mut approvals = 0;
    for run in 0..2 {
        // Each run starts from the file, as the command does: the second goes on from the
        // first's trace numbers and ATCs, or its sales would be repeats and replays.
        let fleet = Fleet::load(&fleet_file).unwrap();
        let log_path = place.0.join(format!("sales-{run}.jsonl"));
        let log = Arc::new(SaleLog::create(&log_path).unwrap());
        let load = SalesLoad {
            wrong_pin_every: 5,
            ..SalesLoad::new(3, 1)
        };
        let (fleet, report) = sales_against(address, fleet, load, Some(log)).await;
        let report = report.unwrap();
        assert_eq!(report.errors, 0, "{report:?}");
        assert!(report.approvals > 0 && report.declines > 0, "{report:?}");
        assert_eq!(report.backend, "external");
        assert_eq!((report.commits, report.receipt_signatures), (None, None));
        fleet.save(&fleet_file).unwrap();

        let records = SaleLog::read(&log_path).unwrap();
        assert_eq!(records.len() as u64, report.sales, "every sale is logged");
        for record in &records {
            let card = &fleet
                .terminals
                .iter()
                .find(|terminal| terminal.id == record.terminal)
                .unwrap()
                .cards[record.card];
            match record.outcome {
                SaleOutcome::Approved => {
                    assert_eq!(record.response.as_deref(), Some("00"));
                    assert_eq!(record.rrn.as_ref().map(String::len), Some(12));
                    *approved.entry(card.id.clone()).or_default() +=
                        i64::try_from(record.amount_minor).unwrap();
                    approvals += 1;
                }
                SaleOutcome::Declined => assert_eq!(record.response.as_deref(), Some("55")),
                SaleOutcome::Unanswered => panic!("a sale went unanswered: {record:?}"),
            }
        }
        let stans: std::collections::HashSet<_> = records
            .iter()
            .map(|record| (record.terminal.clone(), record.stan))
            .collect();
        assert_eq!(stans.len(), records.len(), "trace numbers are not reused");
    }
    let saved = Fleet::load(&fleet_file).unwrap();
    assert!(
        saved
            .terminals
            .iter()
            .all(|terminal| terminal.last_stan > 2)
    );
    assert!(
        saved
            .terminals
            .iter()
            .flat_map(|terminal| &terminal.cards)
            .all(|card| card.atc > 0)
    );
    assert!(approvals > 0);

    // Every approval the terminals heard of is in the books once, and nothing else moved.
    let _ = stop.send(true);
    server.await.unwrap();
    for (card_id, before) in opening {
        let spent = approved.get(&card_id).copied().unwrap_or(0);
        assert_eq!(balance(&store, &card_id).await, before - spent, "{card_id}");
    }
}

#[tokio::test]
async fn only_a_new_database_is_provisioned() {
    let place = Place::new("twice");
    let store = open(&place).await;
    let hsm = SoftHsm::new(&[9; 32]).unwrap();
    provision(&store, &hsm, 1, 1).await.unwrap();
    let error = provision(&store, &hsm, 1, 1).await.unwrap_err().to_string();
    assert!(error.contains("new, empty database"), "{error}");
    for (terminals, cards) in [(0, 1), (bench::MAX_TERMINALS + 1, 1), (1, 0)] {
        let place = Place::new(&format!("bad-{terminals}-{cards}"));
        let store = open(&place).await;
        assert!(provision(&store, &hsm, terminals, cards).await.is_err());
    }
}

#[tokio::test]
async fn a_fleet_file_keeps_its_keys_and_counters_and_a_wrong_file_is_refused() {
    let place = Place::new("file");
    let store = open(&place).await;
    let hsm = SoftHsm::new(&[3; 32]).unwrap();
    let mut fleet = provision(&store, &hsm, 2, 2).await.unwrap();
    fleet.terminals[1].last_stan = 41;
    fleet.terminals[1].cards[0].atc = 17;
    let path = place.0.join("fleet.json");
    fleet.save(&path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600,
        "bench secrets are readable by their owner only"
    );
    let back = Fleet::load(&path).unwrap();
    assert_eq!(back.issuer_master_key, fleet.issuer_master_key);
    for (a, b) in back.terminals.iter().zip(&fleet.terminals) {
        assert_eq!(
            (&a.id, &a.master_key, a.last_stan),
            (&b.id, &b.master_key, b.last_stan)
        );
        for (x, y) in a.cards.iter().zip(&b.cards) {
            assert_eq!(
                (&x.id, &x.pan, &x.wrong_pin, x.atc),
                (&y.id, &y.pan, &y.wrong_pin, y.atc)
            );
        }
    }
    assert!(!format!("{fleet:?}").contains(&hex::encode_upper(fleet.issuer_master_key.expose())));

    for (name, text) in [
        ("garbage", "not json"),
        (
            "format",
            r#"{"format":"other/1","warning":"","issuer_master_key":"00","terminals":[]}"#,
        ),
    ] {
        let bad = place.0.join(name);
        std::fs::write(&bad, text).unwrap();
        let error = Fleet::load(&bad).unwrap_err().to_string();
        assert!(error.contains("not a bench fleet file"), "{error}");
        assert!(error.contains("easypos bench provision"), "{error}");
    }
}

#[test]
fn the_loads_risk_rules_parse_and_keep_every_demo_rule() {
    let load = risk::Config::from_toml(bench::LOAD_RULES).unwrap();
    let demo = risk::Config::from_toml(risk::DEMO_RULES).unwrap();
    let names = |config: &risk::Config| {
        config
            .rules
            .iter()
            .map(|rule| rule.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&load), names(&demo));
    assert_ne!(load, demo, "the limits a load reaches are raised");
}
