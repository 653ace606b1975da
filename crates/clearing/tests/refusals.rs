#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A cycle that cannot be settled whole is not settled at all: a card whose BIN no issuer in
//! the directory has, or of an issuer without a settlement account, refuses the run
//! before anything is written — no posting, no account opened, no record — and once the
//! account exists the same cycle settles. The day here is forged straight into the journal and
//! the ledger, as the host would have written it.

use clearing::cycle::CycleRule;
use clearing::{ClearingError, Request, Settings, Status};
use ledger::{AccountId, AccountSpec, InstitutionId, TransferRequest};
use money::{Amount, Currency};
use store::Store;
use store::directory::{Card, CardProduct, Directory, Institution, InstitutionKind};

const SHANGHAI: &str = "898310058120001";
const REMOTE_BANK: InstitutionId = InstitutionId(50);

async fn seeded(backend: &store::testing::TestBackend) -> Store {
    let store = Store::open(&backend.backend).await.unwrap();
    let hsm = hsm::SoftHsm::new(&[0x42; 32]).unwrap();
    demo::seed(&store, &hsm).await.unwrap();
    store
        .put_directory(Directory {
            institutions: vec![Institution {
                id: REMOTE_BANK,
                kind: InstitutionKind::DebitBank,
                name: "Remote Bank".into(),
                name_zh: "远程银行".into(),
            }],
            cards: vec![Card {
                id: "card-remote".into(),
                cardholder_id: "CH001".into(),
                issuer: REMOTE_BANK,
                product: CardProduct::Debit,
                pan_first6: "699999".into(),
                pan_last4: "1234".into(),
                expiry: "3012".into(),
                currency: Currency::CNY,
                account: AccountId::from_key("test", b"card-remote"),
                pan_fingerprint: None,
            }],
            ..Directory::default()
        })
        .await
        .unwrap();
    store
}

/// An approved sale of `card` journaled now, with the acquirer's transfer the host makes.
async fn forged_sale(store: &Store, stan: u32, card: &str, minor: i64) {
    forged_sale_at(store, SHANGHAI, stan, card, minor).await;
}

async fn forged_sale_at(store: &Store, merchant: &str, stan: u32, card: &str, minor: i64) {
    let key = acquirer::effects::BusinessKey {
        terminal_id: "10000001".into(),
        batch: 1,
        stan,
    };
    let results = store
        .submit(vec![TransferRequest::posted(
            key.transfer_id("sale/acquirer"),
            acquirer::chart::acquirer_due_from_issuers(demo::ACQUIRER, Currency::CNY),
            demo::account_id("merchant/898310058120001"),
            Amount::new(minor, Currency::CNY),
        )])
        .await
        .unwrap();
    assert!(results[0].is_ok());
    store
        .journal(vec![store::journal::JournalEntry {
            received_at: now() * 1_000_000,
            terminal_id: "10000001".into(),
            merchant_id: merchant.into(),
            mti: "0200".into(),
            kind: "Sale".into(),
            batch: Some(1),
            stan: Some(i64::from(stan)),
            amount_minor: Some(minor),
            currency: Some(156),
            card: Some(card.into()),
            response: Some("00".into()),
            ..Default::default()
        }])
        .await
        .unwrap();
}

/// A demo debit card's masked number, as the journal keeps it.
fn debit_card() -> String {
    demo::cards()[0].card.masked_pan()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Settings whose cycle holds this moment, and a request made after its cut-off.
fn settings_and_request() -> (Settings, Request) {
    let mut settings = Settings::parse(clearing::schedule::DEFAULT).unwrap();
    let local = (now() + 8 * 3_600).rem_euclid(86_400);
    let cut_off = ((local + 12 * 3_600) % 86_400) / 60 * 60;
    settings.cycle = CycleRule {
        utc_offset_seconds: 8 * 3_600,
        cut_off_seconds: if cut_off == 0 { 86_400 } else { cut_off },
    };
    let date = settings.cycle.date_of(now());
    let request = Request {
        date,
        now_unix_seconds: settings.cycle.window(date).end_us / 1_000_000 + 1,
        rerun: false,
    };
    (settings, request)
}

/// What a refused run must leave as it was.
async fn untouched(store: &Store, request: &Request, before: (usize, usize)) {
    assert_eq!(store.all_transfers().await.unwrap().len(), before.0);
    assert_eq!(store.all_accounts().await.unwrap().len(), before.1);
    assert!(
        clearing::post::record_of(store, request.date)
            .await
            .unwrap()
            .is_none()
    );
}

async fn counts(store: &Store) -> (usize, usize) {
    (
        store.all_transfers().await.unwrap().len(),
        store.all_accounts().await.unwrap().len(),
    )
}

#[tokio::test]
async fn an_issuer_without_a_settlement_account_refuses_the_cycle_until_it_has_one() {
    for backend in store::testing::backends().await {
        let store = seeded(&backend).await;
        let (settings, request) = settings_and_request();
        forged_sale(&store, 1, &debit_card(), 1_000).await;
        forged_sale(&store, 2, "699999******1234", 2_000).await;
        let before = counts(&store).await;
        let refused = clearing::run(&store, &settings, &request, &mut |_| {}).await;
        assert!(
            matches!(
                refused,
                Err(ClearingError::CounterpartyWithoutAccount {
                    issuer: 50,
                    currency: "CNY"
                })
            ),
            "{}: {refused:?}",
            backend.name
        );
        untouched(&store, &request, before).await;

        // The fix the message names: open the issuer's settlement account.
        store
            .create_accounts(vec![AccountSpec::new(
                acquirer::chart::issuer_settlement(REMOTE_BANK, Currency::CNY),
                REMOTE_BANK,
                Currency::CNY,
                acquirer::chart::CODE_ISSUER_SETTLEMENT,
            )])
            .await
            .unwrap();
        let outcome = clearing::run(&store, &settings, &request, &mut |_| {})
            .await
            .unwrap();
        assert!(matches!(outcome.status, Status::Posted { .. }));
        assert_eq!(outcome.settlement.counterparties.len(), 2);
        store.check_books().await.unwrap();
        store.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_card_of_no_known_issuer_refuses_the_cycle() {
    for backend in store::testing::backends().await {
        let store = seeded(&backend).await;
        let (settings, request) = settings_and_request();
        forged_sale(&store, 1, &debit_card(), 1_000).await;
        forged_sale(&store, 2, "400000******0002", 500).await;
        let before = counts(&store).await;
        let refused = clearing::run(&store, &settings, &request, &mut |_| {}).await;
        let message = match refused {
            Err(error @ ClearingError::UnknownCounterparty { .. }) => error.to_string(),
            other => panic!("{}: {other:?}", backend.name),
        };
        assert!(message.contains("400000******0002"), "{message}");
        untouched(&store, &request, before).await;
        store.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_merchant_missing_from_the_directory_refuses_the_cycle() {
    for backend in store::testing::backends().await {
        let store = seeded(&backend).await;
        let (settings, request) = settings_and_request();
        forged_sale(&store, 1, &debit_card(), 1_000).await;
        forged_sale_at(&store, "898999999999999", 2, &debit_card(), 700).await;
        let before = counts(&store).await;
        let refused = clearing::run(&store, &settings, &request, &mut |_| {}).await;
        assert!(
            matches!(&refused, Err(ClearingError::UnknownMerchant { merchant_id }) if merchant_id == "898999999999999"),
            "{}: {refused:?}",
            backend.name
        );
        untouched(&store, &request, before).await;
        store.close().await.unwrap();
    }
}
