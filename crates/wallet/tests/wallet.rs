//! The wallet on both stores, over the demo world: top-ups, payments, the password's try
//! limit, balances, timeouts, refunds, and the close that gives back a one-sided payment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ledger::TransferRequest;
use money::{Amount, Currency};
use std::sync::Arc;
use store::wallets::OrderStatus;
use store::{ManualClock, Store};
use wallet::{NewOrder, NewWallet, WalletConfig, WalletError, Wallets, chart};

const START_NANOS: u64 = 1_764_100_000 * 1_000_000_000;
const SECOND: u64 = 1_000_000_000;
const PASSWORD: &str = "135790";

fn cny(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

struct World {
    wallets: Wallets,
    clock: Arc<ManualClock>,
    store: Arc<Store>,
    _backend: store::testing::TestBackend,
}

async fn worlds() -> Vec<World> {
    let mut out = Vec::new();
    for backend in store::testing::backends().await {
        let store = Arc::new(Store::open(&backend.backend).await.unwrap());
        demo::seed(&store, &hsm::SoftHsm::new(&[0x42; 32]).unwrap())
            .await
            .unwrap();
        let clock = Arc::new(ManualClock::new(START_NANOS));
        let wallets = Wallets::new(store.clone(), WalletConfig::demo()).with_clock(clock.clone());
        for (wallet, holder) in [("W-CH001", "CH001"), ("W-CH002", "CH002")] {
            wallets
                .open_wallet(NewWallet {
                    id: wallet.into(),
                    cardholder_id: holder.into(),
                    currency: Currency::CNY,
                    linked_card_id: Some(format!("card-{holder}-D")),
                    password: PASSWORD.into(),
                })
                .await
                .unwrap();
        }
        out.push(World {
            wallets,
            clock,
            store,
            _backend: backend,
        });
    }
    out
}

async fn order(world: &World, id: &str, minor: i64) -> wallet::Order {
    world
        .wallets
        .create_order(NewOrder {
            order_id: id.into(),
            terminal_id: "10000001".into(),
            amount: cny(minor),
            timeout_seconds: Some(60),
        })
        .await
        .unwrap()
}

async fn card_balance(store: &Store, card: &str) -> i64 {
    store
        .account(demo::account_id(card))
        .await
        .unwrap()
        .unwrap()
        .available()
}

#[tokio::test]
async fn a_top_up_moves_money_from_the_card_into_the_wallet_once() {
    for world in worlds().await {
        let card_before = card_balance(&world.store, "card-CH001-D").await;
        let balance = world
            .wallets
            .top_up("W-CH001", "t1", cny(10_000))
            .await
            .unwrap();
        assert_eq!(balance, cny(10_000), "{}", world.store.backend_name());
        // The same top-up again is the same movement, not a second one.
        world
            .wallets
            .top_up("W-CH001", "t1", cny(10_000))
            .await
            .unwrap();
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(10_000));
        assert_eq!(
            card_balance(&world.store, "card-CH001-D").await,
            card_before - 10_000
        );
        // More than the card holds: declined, nothing moves.
        let error = world
            .wallets
            .top_up("W-CH001", "t2", cny(card_before))
            .await
            .unwrap_err();
        assert!(matches!(error, WalletError::CardDeclined), "{error}");
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(10_000));
        world.store.check_books().await.unwrap();
    }
}

#[tokio::test]
async fn a_wallet_pays_an_order_once_and_the_merchant_is_owed_it() {
    for world in worlds().await {
        world
            .wallets
            .top_up("W-CH001", "t1", cny(10_000))
            .await
            .unwrap();
        let merchant = demo::directory()
            .merchants
            .into_iter()
            .find(|merchant| merchant.id == "898310058120001")
            .unwrap()
            .settlement_account;
        let owed_before = world.store.account(merchant).await.unwrap().unwrap();
        let created = order(&world, "10000001-1", 1_234).await;
        assert_eq!(created.status, OrderStatus::Created);
        // Asking again with the same id is the same order and the same code.
        assert_eq!(order(&world, "10000001-1", 1_234).await, created);
        let conflict = world
            .wallets
            .create_order(NewOrder {
                order_id: "10000001-1".into(),
                terminal_id: "10000001".into(),
                amount: cny(999),
                timeout_seconds: None,
            })
            .await
            .unwrap_err();
        assert_eq!(conflict.code(), "order_conflict");

        let paid = world
            .wallets
            .pay(&created.payload, "W-CH001", PASSWORD)
            .await
            .unwrap();
        assert_eq!(paid.status, OrderStatus::Paid);
        assert_eq!(paid.wallet_id.as_deref(), Some("W-CH001"));
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(8_766));
        // Paying again from the same wallet is the first answer; nothing more is charged.
        let again = world
            .wallets
            .pay(&created.payload, "W-CH001", PASSWORD)
            .await
            .unwrap();
        assert_eq!(again.status, OrderStatus::Paid);
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(8_766));
        // Another wallet cannot pay it.
        let other = world
            .wallets
            .pay(&created.payload, "W-CH002", PASSWORD)
            .await
            .unwrap_err();
        assert_eq!(other.code(), "order_already_paid");
        let owed_after = world.store.account(merchant).await.unwrap().unwrap();
        assert_eq!(owed_after.balance() - owed_before.balance(), 1_234);
        assert_eq!(
            world.wallets.query("10000001-1").await.unwrap().status,
            OrderStatus::Paid
        );

        // A refund gives it all back to the wallet, once.
        let refunded = world.wallets.refund("10000001-1").await.unwrap();
        assert_eq!(refunded.status, OrderStatus::Refunded);
        world.wallets.refund("10000001-1").await.unwrap();
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(10_000));
        let owed_refunded = world.store.account(merchant).await.unwrap().unwrap();
        assert_eq!(owed_refunded.balance(), owed_before.balance());
        world.store.check_books().await.unwrap();
    }
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_charged() {
    for world in worlds().await {
        world
            .wallets
            .top_up("W-CH001", "t1", cny(1_000))
            .await
            .unwrap();
        let created = order(&world, "10000001-2", 500).await;

        // A tampered payload: the amount changed, the CRC left as it was.
        let tampered = created.payload.replace("54045.00", "54045.01");
        assert_ne!(tampered, created.payload);
        let error = world
            .wallets
            .pay(&tampered, "W-CH001", PASSWORD)
            .await
            .unwrap_err();
        assert_eq!(error.code(), "bad_crc");

        // A well-formed code with the order's reference but another amount.
        let mut other_record = created.record.clone();
        other_record.amount = cny(1);
        let forged = wallet::qr::order_payload(
            &WalletConfig::demo(),
            &other_record,
            wallet::qr::MerchantFields {
                id: &created.merchant_id,
                name: &created.merchant_name,
                city: "Shanghai",
                mcc: "5814",
            },
        )
        .unwrap();
        let error = world
            .wallets
            .pay(&forged, "W-CH001", PASSWORD)
            .await
            .unwrap_err();
        assert_eq!(error.code(), "payload_mismatch");

        // Insufficient balance.
        let big = order(&world, "10000001-3", 5_000).await;
        let error = world
            .wallets
            .pay(&big.payload, "W-CH001", PASSWORD)
            .await
            .unwrap_err();
        assert_eq!(error.code(), "insufficient_balance");
        assert_eq!(
            world.wallets.query("10000001-3").await.unwrap().status,
            OrderStatus::Created
        );

        // Wrong passwords: counted, then locked; the right one is not even checked while
        // locked.
        for tries_left in (1..wallet::MAX_PASSWORD_TRIES).rev() {
            let error = world
                .wallets
                .pay(&created.payload, "W-CH001", "000000")
                .await
                .unwrap_err();
            assert!(
                matches!(error, WalletError::WrongPassword { tries_left: left } if left == tries_left),
                "{error}"
            );
        }
        let error = world
            .wallets
            .pay(&created.payload, "W-CH001", "000000")
            .await
            .unwrap_err();
        assert_eq!(error.code(), "password_locked");
        let error = world
            .wallets
            .pay(&created.payload, "W-CH001", PASSWORD)
            .await
            .unwrap_err();
        assert_eq!(error.code(), "password_locked");
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(1_000));

        // After the lockout the right password pays and clears the count.
        world.clock.advance(wallet::LOCKOUT_SECONDS as u64 * SECOND);
        let fresh = order(&world, "10000001-4", 500).await;
        world
            .wallets
            .pay(&fresh.payload, "W-CH001", PASSWORD)
            .await
            .unwrap();
        assert_eq!(
            world
                .wallets
                .wallet("W-CH001")
                .await
                .unwrap()
                .password_failures,
            0
        );
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(500));
        world.store.check_books().await.unwrap();
    }
}

#[tokio::test]
async fn an_unpaid_order_closes_after_its_timeout_and_cannot_be_paid() {
    for world in worlds().await {
        world
            .wallets
            .top_up("W-CH001", "t1", cny(1_000))
            .await
            .unwrap();
        let created = order(&world, "10000001-5", 100).await;
        world.clock.advance(59 * SECOND);
        assert_eq!(
            world.wallets.query("10000001-5").await.unwrap().status,
            OrderStatus::Created
        );
        world.clock.advance(SECOND);
        assert_eq!(world.wallets.close_due().await.unwrap(), 1);
        assert_eq!(
            world.wallets.query("10000001-5").await.unwrap().status,
            OrderStatus::Closed
        );
        let error = world
            .wallets
            .pay(&created.payload, "W-CH001", PASSWORD)
            .await
            .unwrap_err();
        assert_eq!(error.code(), "order_closed");
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(1_000));

        // A query alone closes an order whose time ran out.
        order(&world, "10000001-6", 100).await;
        world.clock.advance(61 * SECOND);
        assert_eq!(
            world.wallets.query("10000001-6").await.unwrap().status,
            OrderStatus::Closed
        );
    }
}

#[tokio::test]
async fn a_payment_that_never_marked_its_order_is_given_back_when_the_order_closes() {
    for world in worlds().await {
        world
            .wallets
            .top_up("W-CH001", "t1", cny(1_000))
            .await
            .unwrap();
        let created = order(&world, "10000001-7", 300).await;
        // The payment's transfers committed, then the process died before the order said paid.
        let merchant = demo::directory().merchants[0].settlement_account;
        let config = WalletConfig::demo();
        let results = world
            .store
            .submit(vec![
                TransferRequest::posted(
                    chart::transfer_id("pay/wallet", &created.id),
                    chart::wallet_account("W-CH001"),
                    chart::wallet_settlement(config.institution, Currency::CNY),
                    cny(300),
                )
                .linked(),
                TransferRequest::posted(
                    chart::transfer_id("pay/acquirer", &created.id),
                    acquirer_due(&config),
                    merchant,
                    cny(300),
                ),
            ])
            .await
            .unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(700));
        world.clock.advance(61 * SECOND);
        let closed = world.wallets.query("10000001-7").await.unwrap();
        assert_eq!(closed.status, OrderStatus::Reversed);
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(1_000));
        world.store.check_books().await.unwrap();
    }
}

fn acquirer_due(config: &WalletConfig) -> ledger::AccountId {
    // The acquirer's clearing account, as `acquirer::chart` names it.
    ledger::AccountId::from_key(
        "chart",
        format!("acquirer/{}/due-from-issuers/CNY", config.acquirer.0).as_bytes(),
    )
}

#[tokio::test]
async fn opening_a_wallet_checks_the_card_and_the_password() {
    for world in worlds().await {
        let new = |card: &str, password: &str| NewWallet {
            id: "W-X".into(),
            cardholder_id: "CH003".into(),
            currency: Currency::CNY,
            linked_card_id: Some(card.into()),
            password: password.into(),
        };
        // Another cardholder's card, a credit card, a bad password.
        for (card, password, code) in [
            ("card-CH001-D", PASSWORD, "bad_linked_card"),
            ("card-CH003-C", PASSWORD, "bad_linked_card"),
            ("card-CH003-D", "12345", "bad_password_format"),
            ("card-CH003-D", "abcdef", "bad_password_format"),
        ] {
            let error = world
                .wallets
                .open_wallet(new(card, password))
                .await
                .unwrap_err();
            assert_eq!(error.code(), code, "{card} {error}");
        }
        let opened = world
            .wallets
            .open_wallet(new("card-CH003-D", PASSWORD))
            .await
            .unwrap();
        // Nothing of the password but its argon2id hash is kept.
        assert!(opened.password_hash.starts_with("$argon2id$"));
        assert!(!format!("{opened:?}").contains("argon2"));
        let taken = world
            .wallets
            .open_wallet(NewWallet {
                cardholder_id: "CH004".into(),
                linked_card_id: None,
                ..new("card-CH003-D", PASSWORD)
            })
            .await
            .unwrap_err();
        assert_eq!(taken.code(), "wallet_conflict");
    }
}

#[tokio::test]
async fn a_scan_shows_a_payable_order_and_the_history_lists_what_a_wallet_paid() {
    for world in worlds().await {
        world
            .wallets
            .top_up("W-CH001", "t1", cny(10_000))
            .await
            .unwrap();
        let first = order(&world, "10000001-h1", 100).await;
        let second = order(&world, "10000001-h2", 200).await;
        let unpaid = order(&world, "10000001-h3", 300).await;
        // A scan reads the order without paying it.
        let scanned = world.wallets.scan(&first.payload).await.unwrap();
        assert_eq!(
            (
                scanned.merchant_name.as_str(),
                scanned.merchant_city.as_str()
            ),
            ("Lujiazui Coffee", "Shanghai")
        );
        assert_eq!(scanned.amount, cny(100));
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(10_000));
        assert!(
            world
                .wallets
                .history("W-CH001", 10)
                .await
                .unwrap()
                .is_empty()
        );

        world
            .wallets
            .pay(&first.payload, "W-CH001", PASSWORD)
            .await
            .unwrap();
        world.clock.advance(SECOND);
        world
            .wallets
            .pay(&second.payload, "W-CH001", PASSWORD)
            .await
            .unwrap();
        world.clock.advance(SECOND);
        world.wallets.refund("10000001-h1").await.unwrap();
        // Newest change first; an unpaid order and other wallets' orders are not in it.
        let history = world.wallets.history("W-CH001", 10).await.unwrap();
        let lines: Vec<(&str, OrderStatus)> = history
            .iter()
            .map(|order| (order.id.as_str(), order.status))
            .collect();
        assert_eq!(
            lines,
            [
                ("10000001-h1", OrderStatus::Refunded),
                ("10000001-h2", OrderStatus::Paid)
            ]
        );
        assert_eq!(world.wallets.history("W-CH001", 1).await.unwrap().len(), 1);
        // The merchant's record: every order of its terminals, newest first.
        let merchant: Vec<String> = world
            .wallets
            .merchant_orders("898310058120001", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|order| order.id.clone())
            .collect();
        assert_eq!(merchant, ["10000001-h3", "10000001-h2", "10000001-h1"]);
        assert!(
            world
                .wallets
                .history("W-CH002", 10)
                .await
                .unwrap()
                .is_empty()
        );
        // A paid order's code no longer scans as payable; an unpaid one still does.
        assert_eq!(
            world
                .wallets
                .scan(&second.payload)
                .await
                .unwrap_err()
                .code(),
            "order_already_paid"
        );
        assert!(world.wallets.scan(&unpaid.payload).await.is_ok());
        world.clock.advance(61 * SECOND);
        assert_eq!(
            world
                .wallets
                .scan(&unpaid.payload)
                .await
                .unwrap_err()
                .code(),
            "order_closed"
        );
    }
}

fn charge(id: &str, minor: i64, code: &str) -> wallet::payment_code::NewCharge {
    wallet::payment_code::NewCharge {
        charge_id: id.into(),
        terminal_id: "10000001".into(),
        amount: cny(minor),
        code: code.into(),
    }
}

async fn merchant_owed(world: &World) -> i64 {
    let merchant = demo::directory().merchants[0].settlement_account;
    world
        .store
        .account(merchant)
        .await
        .unwrap()
        .unwrap()
        .balance()
}

#[tokio::test]
async fn a_payment_code_is_charged_once_by_the_terminal_that_scans_it() {
    for world in worlds().await {
        world
            .wallets
            .top_up("W-CH001", "t1", cny(10_000))
            .await
            .unwrap();
        let owed = merchant_owed(&world).await;
        let issued = world.wallets.issue_code("W-CH001").await.unwrap();
        assert_eq!(issued.code.len(), 21);
        // The wallet field starts with the institution (40) and says nothing about the wallet.
        assert_eq!(&issued.code[..4], "8840");
        assert_eq!(issued.expires_at - issued.issued_at, 120);

        let paid = world
            .wallets
            .charge(charge("c-1", 1_234, &issued.code))
            .await
            .unwrap();
        assert_eq!(paid.status, OrderStatus::Paid);
        assert_eq!(paid.wallet_id.as_deref(), Some("W-CH001"));
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(8_766));
        assert_eq!(merchant_owed(&world).await - owed, 1_234);
        // The terminal retrying the same charge (a lost answer) gets the same answer.
        let again = world
            .wallets
            .charge(charge("c-1", 1_234, &issued.code))
            .await
            .unwrap();
        assert_eq!(
            (again.status, again.id.as_str()),
            (OrderStatus::Paid, "c-1")
        );
        // Another charge with the same code: refused, nothing charged, its order closed.
        let used = world
            .wallets
            .charge(charge("c-2", 100, &issued.code))
            .await
            .unwrap_err();
        assert_eq!(used.code(), "code_used");
        assert_eq!(
            world.wallets.query("c-2").await.unwrap().status,
            OrderStatus::Closed
        );
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(8_766));
        // The charge is in the wallet's history like a scanned order.
        let history = world.wallets.history("W-CH001", 10).await.unwrap();
        assert_eq!(history[0].id, "c-1");
        world.store.check_books().await.unwrap();
    }
}

#[tokio::test]
async fn bad_payment_codes_are_refused_and_charge_nothing() {
    for world in worlds().await {
        world
            .wallets
            .top_up("W-CH001", "t1", cny(1_000))
            .await
            .unwrap();
        let now = START_NANOS / SECOND;
        // Expired: the phone showed it three minutes ago.
        let old = world.wallets.issue_code("W-CH001").await.unwrap();
        world.clock.advance(180 * SECOND);
        let expired = world
            .wallets
            .charge(charge("c-old", 100, &old.code))
            .await
            .unwrap_err();
        assert_eq!(expired.code(), "code_expired");
        let now = now + 180;
        // Typos fail the check digit; other lengths and letters are not codes.
        let fresh = world.wallets.issue_code("W-CH001").await.unwrap();
        let mut typo = fresh.code.clone().into_bytes();
        typo[12] = if typo[12] == b'9' { b'0' } else { typo[12] + 1 };
        for bad in [
            String::from_utf8(typo).unwrap(),
            "12345".into(),
            "88abc".into(),
        ] {
            let refused = world
                .wallets
                .charge(charge("c-bad", 100, &bad))
                .await
                .unwrap_err();
            assert_eq!(refused.code(), "bad_code", "{bad}");
        }
        // Another institution's code (institution 41), well formed.
        let foreign =
            emvqr::PaymentCode::generate(41_000_001, 123_456, now, emvqr::Policy::default())
                .unwrap();
        let refused = world
            .wallets
            .charge(charge("c-foreign", 100, &foreign))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "foreign_institution");
        // Ours in form, but never issued.
        let forged =
            emvqr::PaymentCode::generate(40_000_001, 123_456, now, emvqr::Policy::default())
                .unwrap();
        let refused = world
            .wallets
            .charge(charge("c-forged", 100, &forged))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "unknown_code");
        // More than the balance: refused, and the order is closed.
        let refused = world
            .wallets
            .charge(charge("c-big", 100_000, &fresh.code))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "insufficient_balance");
        assert_eq!(
            world.wallets.query("c-big").await.unwrap().status,
            OrderStatus::Closed
        );
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(1_000));
        world.store.check_books().await.unwrap();
    }
}

#[tokio::test]
async fn a_cancel_after_an_unknown_outcome_reverses_the_charge_and_blocks_a_late_one() {
    for world in worlds().await {
        world
            .wallets
            .top_up("W-CH001", "t1", cny(5_000))
            .await
            .unwrap();
        let owed = merchant_owed(&world).await;
        // The charge went through, but the terminal never heard: it cancels.
        let code = world.wallets.issue_code("W-CH001").await.unwrap().code;
        world
            .wallets
            .charge(charge("c-lost", 2_000, &code))
            .await
            .unwrap();
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(3_000));
        let cancelled = world
            .wallets
            .cancel("c-lost", "10000001", cny(2_000))
            .await
            .unwrap();
        assert_eq!(cancelled.status, OrderStatus::Reversed);
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(5_000));
        assert_eq!(merchant_owed(&world).await, owed);
        // A repeated cancel moves nothing more; a refund after it is refused.
        world
            .wallets
            .cancel("c-lost", "10000001", cny(2_000))
            .await
            .unwrap();
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(5_000));
        assert_eq!(
            world.wallets.refund("c-lost").await.unwrap_err().code(),
            "not_refundable"
        );
        // Another terminal cannot cancel it.
        let other = world
            .wallets
            .cancel("c-lost", "10000002", cny(2_000))
            .await
            .unwrap_err();
        assert_eq!(other.code(), "order_conflict");

        // The cancel overtook its charge: the charge, arriving late, is refused and the code
        // stays unused for the next one.
        let code = world.wallets.issue_code("W-CH001").await.unwrap().code;
        let tombstone = world
            .wallets
            .cancel("c-late", "10000001", cny(700))
            .await
            .unwrap();
        assert_eq!(tombstone.status, OrderStatus::Closed);
        let late = world
            .wallets
            .charge(charge("c-late", 700, &code))
            .await
            .unwrap_err();
        assert_eq!(late.code(), "order_closed");
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(5_000));
        world
            .wallets
            .charge(charge("c-next", 700, &code))
            .await
            .unwrap();
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(4_300));

        // Money that moved for an order that never said paid (the host died in between) is
        // given back by the cancel too.
        let created = order(&world, "10000001-9", 300).await;
        let config = WalletConfig::demo();
        let merchant = demo::directory().merchants[0].settlement_account;
        let results = world
            .store
            .submit(vec![
                TransferRequest::posted(
                    chart::transfer_id("pay/wallet", &created.id),
                    chart::wallet_account("W-CH001"),
                    chart::wallet_settlement(config.institution, Currency::CNY),
                    cny(300),
                )
                .linked(),
                TransferRequest::posted(
                    chart::transfer_id("pay/acquirer", &created.id),
                    acquirer_due(&config),
                    merchant,
                    cny(300),
                ),
            ])
            .await
            .unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(4_000));
        let cancelled = world
            .wallets
            .cancel("10000001-9", "10000001", cny(300))
            .await
            .unwrap();
        assert_eq!(cancelled.status, OrderStatus::Reversed);
        assert_eq!(world.wallets.balance("W-CH001").await.unwrap(), cny(4_300));
        world.store.check_books().await.unwrap();
    }
}
