#![allow(clippy::unwrap_used, clippy::expect_used)]
//! QR payments settle like card sales: a day of wallet payments, a refund and a terminal's
//! cancel is cleared with the wallet (Panda Pay, institution 40) as the counterparty that owes
//! the acquirer, with no breaks, on both stores.

use clearing::cycle::CycleRule;
use clearing::{Request, Settings, Status};
use money::{Amount, Currency};
use std::sync::Arc;
use store::Store;
use wallet::{NewOrder, NewWallet, WalletConfig, Wallets};

fn cny(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
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

/// The demo world with W-CH001 opened and topped up with 100.00, on `backend`.
async fn world(backend: &store::testing::TestBackend) -> (Arc<Store>, Wallets) {
    let store = Arc::new(Store::open(&backend.backend).await.unwrap());
    demo::seed(&store, &hsm::SoftHsm::new(&[0x42; 32]).unwrap())
        .await
        .unwrap();
    let wallets = Wallets::new(store.clone(), WalletConfig::demo());
    wallets
        .open_wallet(NewWallet {
            id: "W-CH001".into(),
            cardholder_id: "CH001".into(),
            currency: Currency::CNY,
            linked_card_id: Some("card-CH001-D".into()),
            password: "135790".into(),
        })
        .await
        .unwrap();
    wallets.top_up("W-CH001", "t1", cny(10_000)).await.unwrap();
    (store, wallets)
}

async fn paid(wallets: &Wallets, id: &str, minor: i64) {
    let order = wallets
        .create_order(NewOrder {
            order_id: id.into(),
            terminal_id: "10000001".into(),
            amount: cny(minor),
            timeout_seconds: None,
        })
        .await
        .unwrap();
    wallets
        .pay(&order.payload, "W-CH001", "135790")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_day_of_qr_payments_settles_with_the_wallet_as_counterparty() {
    for backend in store::testing::backends().await {
        let store = Arc::new(Store::open(&backend.backend).await.unwrap());
        demo::seed(&store, &hsm::SoftHsm::new(&[0x42; 32]).unwrap())
            .await
            .unwrap();
        let wallets = Wallets::new(store.clone(), WalletConfig::demo());
        wallets
            .open_wallet(NewWallet {
                id: "W-CH001".into(),
                cardholder_id: "CH001".into(),
                currency: Currency::CNY,
                linked_card_id: Some("card-CH001-D".into()),
                password: "135790".into(),
            })
            .await
            .unwrap();
        wallets.top_up("W-CH001", "t1", cny(10_000)).await.unwrap();
        paid(&wallets, "o-1", 1_234).await;
        paid(&wallets, "o-2", 500).await;
        wallets.refund("o-2").await.unwrap();
        // A payment code charged, then cancelled by its terminal: it nets to nothing.
        let code = wallets.issue_code("W-CH001").await.unwrap().code;
        wallets
            .charge(wallet::payment_code::NewCharge {
                charge_id: "c-1".into(),
                terminal_id: "10000001".into(),
                amount: cny(300),
                code,
            })
            .await
            .unwrap();
        wallets.cancel("c-1", "10000001", cny(300)).await.unwrap();

        let (settings, request) = settings_and_request();
        let outcome = clearing::run(&store, &settings, &request, &mut |_| {})
            .await
            .unwrap();
        let settlement = &outcome.settlement;
        assert!(
            settlement.breaks.is_empty(),
            "{}: {:?}",
            backend.name,
            settlement.breaks
        );
        let kinds: Vec<&str> = settlement
            .items
            .iter()
            .map(|item| item.kind.as_str())
            .collect();
        assert_eq!(
            kinds.iter().filter(|kind| **kind == "QrPayment").count(),
            3,
            "{kinds:?}"
        );
        assert_eq!(kinds.iter().filter(|kind| **kind == "QrRefund").count(), 1);
        assert_eq!(
            kinds.iter().filter(|kind| **kind == "QrReversal").count(),
            1
        );
        let wallet = settlement
            .counterparties
            .iter()
            .find(|party| party.issuer.0 == 40)
            .expect("the wallet is a counterparty");
        // Gross: 12.34 + 5.00 + 3.00 − 3.00 (cancelled); refunds 5.00.
        assert_eq!((wallet.gross, wallet.refunds), (cny(1_734), cny(500)));
        let merchant = settlement
            .merchants
            .iter()
            .find(|merchant| merchant.merchant_id == "898310058120001")
            .unwrap();
        assert_eq!((merchant.gross, merchant.refunds), (cny(1_734), cny(500)));
        // Priced on the wallet's own lines (MDR 38 bp, interchange 20 bp in the default
        // schedule), not as debit cards (50 bp, 35 bp).
        let line = merchant
            .lines
            .iter()
            .find(|line| line.product == clearing::Product::Wallet)
            .expect("a wallet line");
        assert_eq!(line.rate.get(), 38);
        assert!(
            merchant
                .lines
                .iter()
                .all(|line| line.product != clearing::Product::Debit),
            "{:?}",
            merchant.lines
        );
        let wallet_line = wallet
            .lines
            .iter()
            .find(|line| line.product == clearing::Product::Wallet)
            .expect("a wallet line");
        assert_eq!(wallet_line.rate.get(), 20);
        assert!(matches!(outcome.status, Status::Posted { .. }));
        store.check_books().await.unwrap();
        drop(wallets);
        Arc::try_unwrap(store).unwrap().close().await.unwrap();
    }
}

#[tokio::test]
async fn a_schedule_without_wallet_rates_refuses_a_day_with_qr_payments() {
    let backend = store::testing::sqlite();
    let (store, wallets) = world(&backend).await;
    paid(&wallets, "o-1", 1_234).await;
    let (mut settings, request) = settings_and_request();
    settings
        .fees
        .mdr
        .retain(|rate| rate.product != clearing::Product::Wallet);
    let error = clearing::run(&store, &settings, &request, &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            clearing::ClearingError::NoFee {
                kind: "mdr",
                product: "wallet",
                ..
            }
        ),
        "{error}"
    );
    // The message names what to add.
    let message = error.to_string();
    assert!(message.contains("wallet"), "{message}");
    // Nothing was posted: with the rate back, the day settles.
    let (settings, _) = settings_and_request();
    let outcome = clearing::run(&store, &settings, &request, &mut |_| {})
        .await
        .unwrap();
    assert!(matches!(outcome.status, Status::Posted { .. }));
}

#[test]
fn the_fee_schedule_reads_wallet_lines_and_names_the_products_it_takes() {
    let settings = Settings::parse(
        "[fees]\n[[fees.mdr]]\nproduct = \"wallet\"\nmcc = \"5814\"\nbps = 30\n[[fees.mdr]]\nproduct = \"wallet\"\nmcc = \"*\"\nbps = 38\n",
    )
    .unwrap();
    assert_eq!(
        settings
            .fees
            .mdr(clearing::Product::Wallet, "5814")
            .unwrap()
            .get(),
        30
    );
    assert_eq!(
        settings
            .fees
            .mdr(clearing::Product::Wallet, "5942")
            .unwrap()
            .get(),
        38
    );
    let error = Settings::parse("[fees]\n[[fees.mdr]]\nproduct = \"qr\"\nmcc = \"*\"\nbps = 38\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("\"wallet\""), "{error}");
}
