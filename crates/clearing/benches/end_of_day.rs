//! End of day for a busy day: `cargo bench -p clearing --bench end_of_day` forges N approved
//! sales (journal rows and the acquirer's transfers, as the host writes them;
//! `EASYPOS_SETTLE_SALES`, default 20 000) into a fresh SQLite demo world, outside the timing,
//! then times `clearing::run` settling them, and checks that every sale settled without a
//! break. Each sample settles a fresh world (a closed cycle is not settled twice).

use clearing::cycle::CycleRule;
use clearing::{Request, Settings};
use ledger::TransferRequest;
use money::{Amount, Currency};

fn main() {
    divan::main();
}

fn sales() -> u32 {
    std::env::var("EASYPOS_SETTLE_SALES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(20_000)
}

/// A demo world with `sales` approved sales of today, and the request that settles them.
struct Day {
    store: store::Store,
    settings: Settings,
    request: Request,
    _backend: store::testing::TestBackend,
}

async fn busy_day(sales: u32) -> Day {
    let backend = store::testing::sqlite();
    let store = store::Store::open(&backend.backend)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    demo::seed(
        &store,
        &hsm::SoftHsm::new(&[0x42; 32]).unwrap_or_else(|error| panic!("{error}")),
    )
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_else(|error| panic!("{error}"))
        .as_secs() as i64;
    let cards: Vec<_> = demo::cards()
        .into_iter()
        .filter(|card| card.card.currency == Currency::CNY)
        .collect();
    for chunk in (1..=sales).collect::<Vec<_>>().chunks(1_000) {
        let mut transfers = Vec::new();
        let mut rows = Vec::new();
        for stan in chunk {
            let key = acquirer::effects::BusinessKey {
                terminal_id: "10000001".into(),
                batch: 1 + stan / 1_000_000,
                stan: stan % 1_000_000,
            };
            let minor = 100 + i64::from(stan % 9_000);
            transfers.push(TransferRequest::posted(
                key.transfer_id("sale/acquirer"),
                acquirer::chart::acquirer_due_from_issuers(demo::ACQUIRER, Currency::CNY),
                demo::account_id("merchant/898310058120001"),
                Amount::new(minor, Currency::CNY),
            ));
            rows.push(store::journal::JournalEntry {
                received_at: now * 1_000_000,
                terminal_id: "10000001".into(),
                merchant_id: "898310058120001".into(),
                mti: "0200".into(),
                kind: "Sale".into(),
                batch: Some(i64::from(key.batch)),
                stan: Some(i64::from(key.stan)),
                amount_minor: Some(minor),
                currency: Some(156),
                card: Some(cards[*stan as usize % cards.len()].card.masked_pan()),
                response: Some("00".into()),
                ..Default::default()
            });
        }
        assert!(
            store
                .submit(transfers)
                .await
                .unwrap_or_else(|error| panic!("{error}"))
                .iter()
                .all(Result::is_ok)
        );
        store
            .journal(rows)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
    }
    let mut settings =
        Settings::parse(clearing::schedule::DEFAULT).unwrap_or_else(|error| panic!("{error}"));
    let local = (now + 8 * 3_600).rem_euclid(86_400);
    let cut_off = ((local + 12 * 3_600) % 86_400) / 60 * 60;
    settings.cycle = CycleRule {
        utc_offset_seconds: 8 * 3_600,
        cut_off_seconds: if cut_off == 0 { 86_400 } else { cut_off },
    };
    let date = settings.cycle.date_of(now);
    let request = Request {
        date,
        now_unix_seconds: settings.cycle.window(date).end_us / 1_000_000 + 1,
        rerun: false,
    };
    Day {
        store,
        settings,
        request,
        _backend: backend,
    }
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn settle_a_busy_day(bencher: divan::Bencher) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("{error}"));
    let sales = sales();
    bencher
        .with_inputs(|| runtime.block_on(busy_day(sales)))
        .bench_local_values(|day| {
            let outcome = runtime
                .block_on(clearing::run(
                    &day.store,
                    &day.settings,
                    &day.request,
                    &mut |_| {},
                ))
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(outcome.settlement.items.len(), sales as usize);
            assert!(outcome.settlement.breaks.is_empty());
            day
        });
}
