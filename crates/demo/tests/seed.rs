#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Seeding the demo world on every backend: once, balanced, with its keys inside the HSM and
//! its cards findable by number — and a second start changes nothing.

use demo::{DemoError, PAN_FINGERPRINT_KEY, Seeded};
use hsm::{Hsm, KeyToken, SoftHsm};
use money::Currency;
use paycrypto::Pan;
use store::Store;
use store::testing::backends;

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_world_seeds_once_balances_and_finds_cards_by_number() {
    let hsm = SoftHsm::new(&[0x42; 32]).unwrap();
    for backend in backends().await {
        let store = Store::open(&backend.backend).await.unwrap();
        assert_eq!(
            demo::seed(&store, &hsm).await.unwrap(),
            Seeded::Now,
            "{}",
            backend.name
        );
        let keys = store.keys().await.unwrap();
        assert_eq!(keys.len(), demo::key_specs().len());
        assert!(
            keys.iter()
                .all(|key| key.token.starts_with('D') && key.check_value.len() == 6),
            "keys are TR-31 blocks with check values"
        );

        assert_eq!(demo::seed(&store, &hsm).await.unwrap(), Seeded::Already);
        assert_eq!(
            store.keys().await.unwrap(),
            keys,
            "{}: a restart keeps every key",
            backend.name
        );
        let transfers = store.all_transfers().await.unwrap();
        assert_eq!(
            transfers.len(),
            demo::cards().len(),
            "{}: one opening transfer per card",
            backend.name
        );
        store.check_books().await.unwrap();

        let usd = demo::cards()
            .into_iter()
            .find(|card| card.card.currency == Currency::USD)
            .unwrap();
        let line = store.account(usd.card.account).await.unwrap().unwrap();
        assert_eq!(
            (line.currency, line.available()),
            (Currency::USD, 500_000),
            "{}",
            backend.name
        );
        assert_eq!(
            store
                .account(demo::account_id("card-CH001-D"))
                .await
                .unwrap()
                .unwrap()
                .available(),
            500_000
        );

        let fingerprint_key = KeyToken::new(
            keys.iter()
                .find(|key| key.name == PAN_FINGERPRINT_KEY)
                .unwrap()
                .token
                .clone(),
        );
        for card in demo::cards() {
            let fingerprint = hsm
                .pan_fingerprint(&fingerprint_key, &Pan::new(&card.pan).unwrap())
                .unwrap();
            let found = store
                .card_by_fingerprint(fingerprint)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(found.id, card.card.id, "{}", backend.name);
        }
        assert_eq!(store.card_by_fingerprint([0; 32]).await.unwrap(), None);
        // Every card has an issuer profile whose PVV verifies the demo PIN.
        let pvk = KeyToken::new(
            keys.iter()
                .find(|key| key.name == "issuer/20/pvk")
                .unwrap()
                .token
                .clone(),
        );
        let card = demo::cards()
            .into_iter()
            .find(|card| card.card.issuer.0 == 20)
            .unwrap();
        let profile = store.issuer_card(&card.card.id).await.unwrap().unwrap();
        assert_eq!(
            profile.daily_limit_minor,
            Some(demo::DEBIT_DAILY_LIMIT_MINOR)
        );
        let expected = hsm
            .generate_pvv(
                &pvk,
                &Pan::new(&card.pan).unwrap(),
                demo::DEMO_PVKI,
                &paycrypto::Pin::new(demo::DEMO_PIN).unwrap(),
            )
            .unwrap();
        assert_eq!(profile.pin_reference, Some(expected));
        let wrong = hsm
            .generate_pvv(
                &pvk,
                &Pan::new(&card.pan).unwrap(),
                demo::DEMO_PVKI,
                &paycrypto::Pin::new("654321").unwrap(),
            )
            .unwrap();
        assert_ne!(
            profile.pin_reference,
            Some(wrong),
            "the PVV depends on the PIN"
        );
        for session in demo::terminal_sessions() {
            let stored = store
                .terminal_session(&session.terminal_id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(stored, session);
            assert!(
                keys.iter().any(|key| key.name == session.tmk_key),
                "{} has its master key",
                session.terminal_id
            );
        }
        for demo_card in demo::cards() {
            assert!(
                store
                    .issuer_card(&demo_card.card.id)
                    .await
                    .unwrap()
                    .is_some(),
                "{}",
                demo_card.card.id
            );
        }
        let directory = store.load_directory().await.unwrap();
        assert_eq!(
            (
                directory.merchants.len(),
                directory.terminals.len(),
                directory.cardholders.len()
            ),
            (2, 5, 5)
        );
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_different_master_key_cannot_use_the_stored_keys() {
    let backend = store::testing::sqlite();
    let store = Store::open(&backend.backend).await.unwrap();
    demo::seed(&store, &SoftHsm::new(&[0x42; 32]).unwrap())
        .await
        .unwrap();
    let error = demo::seed(&store, &SoftHsm::new(&[0x43; 32]).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, DemoError::Hsm(_)), "{error}");
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn terminal_master_keys_and_card_keys_are_the_published_test_keys_and_the_rest_secret() {
    let hsm = SoftHsm::new(&[0x42; 32]).unwrap();
    let backend = store::testing::sqlite();
    let store = Store::open(&backend.backend).await.unwrap();
    demo::seed(&store, &hsm).await.unwrap();
    let mut published = 0;
    for key in store.keys().await.unwrap() {
        match demo::demo_test_key(&key.name) {
            Some(clear) => {
                published += 1;
                let expected = if key.name == demo::demo_bdk_name() {
                    paycrypto::kcv::aes_cmac_kcv(&paycrypto::AesKey::new(&clear).unwrap())
                } else {
                    paycrypto::kcv::tdes(&paycrypto::TdesKey::new(&clear).unwrap())
                };
                assert_eq!(
                    key.check_value,
                    paycrypto::to_hex(&expected),
                    "{}: the stored key is the published one",
                    key.name
                );
            }
            None => assert!(
                !key.name.starts_with("terminal/") && !key.name.ends_with("/imk-ac"),
                "{} should be published",
                key.name
            ),
        }
    }
    // Three master/session terminals' master keys, the AES and TDES DUKPT terminals' base
    // keys, and an issuer master key and a CVV key for each of the two issuers.
    assert_eq!(published, 3 + 2 + 4);
    assert_eq!(
        demo::demo_test_key(&demo::terminal_master_key_name(demo::DUKPT_TERMINAL)),
        None,
        "a DUKPT terminal has no master key"
    );
    assert_ne!(
        demo::demo_test_key(&demo::terminal_master_key_name("10000001")),
        demo::demo_test_key(&demo::terminal_master_key_name("10000002")),
    );
    assert_eq!(demo::demo_test_key("issuer/20/zpk"), None);
    assert_eq!(demo::demo_test_key(PAN_FINGERPRINT_KEY), None);
}
