#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The acquirer handler behind a real listener, driven by a real client over loopback.

mod common;

use common::*;
use hsm::MacAlgorithm;

#[tokio::test]
async fn terminals_get_answers_for_everything_they_can_be_answered() {
    let world = world().await;
    let (mut client, stop, server, handler) = start(&world).await;
    assert_eq!(
        ask(&mut client, &echo("10000001", "898310058120001")).await,
        ("0830".into(), "00".into())
    );
    assert_eq!(
        ask(&mut client, &echo("10000099", "898310058120001"))
            .await
            .1,
        "58",
        "unknown terminal"
    );
    // 20000001 is in the store but not in this host's table (made through another host
    // sharing the database): read from the store, not refused.
    assert_eq!(
        ask(&mut client, &echo("20000001", demo::BEIJING_MERCHANT)).await,
        ("0830".into(), "00".into()),
        "a terminal the host did not know yet"
    );
    assert_eq!(
        ask(&mut client, &echo("10000009", "898310058120001"))
            .await
            .1,
        "58",
        "inactive terminal"
    );
    assert_eq!(
        ask(&mut client, &echo("10000001", "898110054110001"))
            .await
            .1,
        "03",
        "another merchant's terminal"
    );
    let without_stan = frame(
        "0820",
        &[
            (41, "10000001"),
            (42, "898310058120001"),
            (60, "00000001301"),
        ],
    );
    assert_eq!(ask(&mut client, &without_stan).await.1, "30");
    let sale = frame(
        "0200",
        &[
            (2, "6212340000100008"),
            (3, "000000"),
            (4, "1200"),
            (11, "000002"),
            (22, "051"),
            (25, "00"),
            (41, "10000001"),
            (42, "898310058120001"),
            (49, "156"),
            (60, "22000001"),
            (64, "0000000000000000"),
        ],
    );
    assert_eq!(
        ask(&mut client, &sale).await,
        ("0210".into(), "58".into()),
        "a financial message before sign-on"
    );
    assert_eq!(
        handler
            .counters
            .answered
            .load(std::sync::atomic::Ordering::Relaxed),
        7
    );

    // Bytes that do not unpack cannot be answered: the connection is closed.
    let error = client
        .exchange(b"\x60\x00\x03\x00\x01garbage", TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            host::Error::Closed | host::Error::Io(_) | host::Error::Broken
        ),
        "{error:?}"
    );
    assert_eq!(
        handler
            .counters
            .unparsable
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let _ = stop.send(true);
    server.await.unwrap();
}

/// A terminal the host does not know, read from a store that cannot be read at that moment, is
/// answered 96 (try again), not 58 (not permitted): the store's trouble is not the terminal's.
/// Once the store is back the same terminal is answered, with nothing remembered as unknown.
#[tokio::test]
async fn a_terminal_read_from_a_failing_store_gets_96_then_its_answer() {
    for backend in store::testing::backends().await {
        let world = world_on(backend).await;
        let name = world.store.backend_name();
        let (mut client, stop, server, _handler) = start(&world).await;
        let rename = |from: &str, to: &str| {
            vec![store::onboarding::Step::new(
                format!("ALTER TABLE {from} RENAME TO {to}"),
                vec![],
            )]
        };
        assert!(
            world
                .store
                .onboarding_execute(rename("merchants", "merchants_away"))
                .await
                .unwrap()
        );
        assert_eq!(
            ask(&mut client, &echo("20000001", demo::BEIJING_MERCHANT)).await,
            ("0830".into(), "96".into()),
            "{name}: the store could not be read"
        );
        assert!(
            world
                .store
                .onboarding_execute(rename("merchants_away", "merchants"))
                .await
                .unwrap()
        );
        assert_eq!(
            ask(&mut client, &echo("20000001", demo::BEIJING_MERCHANT)).await,
            ("0830".into(), "00".into()),
            "{name}: the store is back"
        );
        let _ = stop.send(true);
        server.await.unwrap();
    }
}

#[tokio::test]
async fn sign_on_delivers_working_keys_the_terminal_can_use() {
    let world = world().await;
    let (mut client, stop, server, handler) = start(&world).await;
    let sign_on = frame(
        "0800",
        &[
            (11, "000003"),
            (41, "10000001"),
            (42, "898310058120001"),
            (60, "00000000003"),
            (63, "001"),
        ],
    );
    let reply = client.exchange(&sign_on, TIMEOUT).await.unwrap();
    let answer = cup().unpack(&reply).unwrap();
    assert_eq!(
        (
            answer.mti.as_str(),
            answer.response_code().unwrap().as_str()
        ),
        ("0810", "00")
    );
    assert_eq!(
        cup().subfield_text(&answer, 60, 2).as_deref(),
        Some("000001"),
        "the host tells the terminal its batch"
    );
    let keys = answer.get(62).unwrap().to_bytes().to_vec();
    assert_eq!(keys.len(), 40, "PIK 16 + check 4 + MAK 16 + check 4");

    // The terminal decrypts its keys with its master key; the check values prove them.
    let tmk = TdesKey::new(&hex::decode(TEST_TMK).unwrap()).unwrap();
    let delivered = |from: usize| paycrypto::session::EncryptedWorkingKey {
        encrypted: keys[from..from + 16].to_vec(),
        check_value: keys[from + 16..from + 20].to_vec(),
    };
    let _pin_key = paycrypto::session::decrypt_working_key(&tmk, &delivered(0)).unwrap();
    let mac_key = paycrypto::session::decrypt_working_key(&tmk, &delivered(20)).unwrap();

    // The host recorded the session: its MAC key MACs as the terminal's does.
    let session = world
        .store
        .terminal_session("10000001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.operator.as_deref(), Some("001"));
    let data = b"any message bytes";
    let host = world
        .hsm
        .generate_mac(
            &hsm::KeyToken::new(session.mac_key.unwrap()),
            MacAlgorithm::Iso9797Alg3(Padding::Method1),
            data,
        )
        .unwrap();
    assert_eq!(
        host,
        paycrypto::mac::iso9797_alg3(&mac_key, data, Padding::Method1)
            .unwrap()
            .to_vec()
    );
    assert_eq!(
        handler
            .counters
            .sign_ons
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // Single-length keys are refused; a second sign-on replaces the keys.
    let single = frame(
        "0800",
        &[
            (11, "000004"),
            (41, "10000001"),
            (42, "898310058120001"),
            (60, "00000000001"),
        ],
    );
    assert_eq!(ask(&mut client, &single).await.1, "12");
    let again = cup()
        .unpack(&client.exchange(&sign_on, TIMEOUT).await.unwrap())
        .unwrap()
        .get(62)
        .unwrap()
        .to_bytes()
        .to_vec();
    assert_ne!(again, keys, "new keys at every sign-on");
    let mac_key = {
        let again = |from: usize| paycrypto::session::EncryptedWorkingKey {
            encrypted: again[from..from + 16].to_vec(),
            check_value: again[from + 16..from + 20].to_vec(),
        };
        paycrypto::session::decrypt_working_key(&tmk, &again(20)).unwrap()
    };

    // A sale MACed with the current MAC key passes the MAC check (and, for a card number no
    // issuer knows, is answered 14); a wrong MAC gets A0; a MAC under the old key too.
    let sale = sale_message();
    let signed = maced(sale.clone(), &mac_key);
    assert_eq!(
        ask(&mut client, &signed).await,
        ("0210".into(), "14".into())
    );
    // The amount changed on the way, the MAC kept: A0.
    let tampered = {
        let mut changed = cup().unpack(&signed).unwrap().into_owned();
        changed.set_text(4, "1300");
        cup().pack(&changed).unwrap()
    };
    let old = maced(sale_message(), &_pin_key);
    for bad in [tampered, old] {
        assert_eq!(ask(&mut client, &bad).await.1, "A0");
    }
    assert_eq!(
        handler
            .counters
            .mac_failures
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    let _ = stop.send(true);
    server.await.unwrap();
}

#[tokio::test]
async fn a_terminal_sending_too_fast_is_answered_65() {
    let world = world().await;
    // The listener's own per-connection limit is raised, so the terminal's limit is what acts.
    let limits = Limits {
        connection_rate: host::Rate::new(10_000, 10_000).unwrap(),
        ..Limits::default()
    };
    let (mut client, stop, server, handler) = start_with(&world, limits).await;
    // All sent before any answer is read, so the test does not depend on how fast this machine
    // answers (one at a time, a slow debug build let the bucket refill between messages).
    let sent = acquirer::TERMINAL_RATE_BURST + 100;
    let request = echo("10000001", "898310058120001");
    for _ in 0..sent {
        client.send(&request, TIMEOUT).await.unwrap();
    }
    let mut codes = Vec::new();
    for _ in 0..sent {
        let reply = client.receive(TIMEOUT).await.unwrap();
        codes.push(cup().unpack(&reply).unwrap().response_code().unwrap());
    }
    assert!(
        codes.iter().filter(|code| *code == "00").count() >= acquirer::TERMINAL_RATE_BURST as usize,
        "the burst passes"
    );
    assert!(
        codes.iter().any(|code| code == "65"),
        "beyond the burst the terminal is slowed down"
    );
    assert!(
        handler
            .counters
            .rate_limited
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    // Another terminal is not held back by this one.
    assert_eq!(
        ask(&mut client, &echo("10000009", "898310058120001"))
            .await
            .1,
        "58"
    );
    let _ = stop.send(true);
    server.await.unwrap();
}

mod sales {
    use super::*;

    #[tokio::test]
    async fn a_swiped_chip_card_needs_a_failed_chip_read_first() {
        let world = world().await;
        let (mut client, stop, server, _handler) = start(&world).await;
        let keys = signed_on(&mut client).await;
        let card = demo::cards()
            .into_iter()
            .find(|card| card.card.id == "card-CH001-D")
            .unwrap();
        let before = available(&world, &card).await;
        let mut code = async |request: Vec<u8>| {
            cup()
                .unpack(&client.exchange(&request, TIMEOUT).await.unwrap())
                .unwrap()
                .response_code()
                .unwrap()
        };
        assert_eq!(
            code(swipe(&card, 500, 300, "021", &keys)).await,
            "05",
            "a chip card swiped without trying the chip"
        );
        assert_eq!(
            code(swipe(&card, 500, 301, "801", &keys)).await,
            "00",
            "fallback after a failed chip read"
        );
        assert_eq!(available(&world, &card).await, before - 500);
        let _ = stop.send(true);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_sale_whose_answer_was_lost_is_reversed_exactly_once() {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        for backend in store::testing::backends().await {
            let world = world_on(backend).await;
            let (mut client, stop, server, _handler) = start(&world).await;
            let keys = signed_on(&mut client).await;
            let card = demo::cards()
                .into_iter()
                .find(|card| card.card.id == "card-CH001-D")
                .unwrap();
            let before = available(&world, &card).await;
            let mut answer = async |request: Vec<u8>| {
                let reply = client.exchange(&request, TIMEOUT).await.unwrap();
                let message = cup().unpack(&reply).unwrap();
                (
                    message.mti.as_str().to_owned(),
                    message.response_code().unwrap(),
                )
            };
            assert_eq!(
                answer(chip_sale(&card, 2_500, 400, 1, demo::DEMO_PIN, &keys))
                    .await
                    .1,
                "00"
            );
            assert_eq!(available(&world, &card).await, before - 2_500);
            // The terminal never saw that answer: it reverses, then repeats the reversal.
            assert_eq!(
                answer(reversal("0400", 400, 2_500, &keys)).await,
                ("0410".into(), "00".into())
            );
            assert_eq!(available(&world, &card).await, before, "the sale is undone");
            assert_eq!(
                answer(reversal("0401", 400, 2_500, &keys)).await,
                ("0411".into(), "00".into())
            );
            assert_eq!(available(&world, &card).await, before, "and only once");
            let merchant = world
                .store
                .account(demo::account_id("merchant/898310058120001"))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(merchant.credits_posted - merchant.debits_posted, 0);
            // A reversal with another amount than the original's is refused; one of a sale that
            // never reached the host has nothing to undo.
            assert_eq!(answer(reversal("0400", 400, 9_999, &keys)).await.1, "13");
            assert_eq!(answer(reversal("0400", 999, 2_500, &keys)).await.1, "00");
            assert_eq!(available(&world, &card).await, before);
            // A reversal that overtakes its sale: the late sale can never post.
            assert_eq!(answer(reversal("0400", 500, 3_000, &keys)).await.1, "00");
            assert_eq!(
                answer(chip_sale(&card, 3_000, 500, 2, demo::DEMO_PIN, &keys))
                    .await
                    .1,
                "94"
            );
            assert_eq!(
                available(&world, &card).await,
                before,
                "the late original moved nothing"
            );
            assert_eq!(
                answer(reversal("0401", 500, 3_000, &keys)).await.1,
                "00",
                "a repeated reversal is still fine"
            );
            let (marks, _) = acquirer::chart::reversal_marks(demo::ACQUIRER, money::Currency::CNY);
            let marks = world.store.account(marks).await.unwrap().unwrap();
            assert_eq!(
                (marks.debits_pending, marks.debits_posted),
                (0, 0),
                "marks hold nothing"
            );
            world.store.check_books().await.unwrap();
            let _ = stop.send(true);
            server.await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_balance_inquiry_checks_the_card_and_pin_and_moves_nothing() {
        let world = world().await;
        let (mut client, stop, server, _handler) = start(&world).await;
        let keys = signed_on(&mut client).await;
        let card = demo::cards()
            .into_iter()
            .find(|card| card.card.id == "card-CH001-D")
            .unwrap();
        let inquiry = |pin: &str, stan: u32, atc: u16| {
            // A chip read for no amount, turned into an inquiry: processing code 31, 60.1 = 01.
            let mut message = cup()
                .unpack(&chip_sale(&card, 0, stan, atc, pin, &keys))
                .unwrap()
                .into_owned();
            message.remove(4);
            message.set_text(3, "310000");
            message.set_text(60, "01000001");
            maced(message, &keys.1)
        };
        let reply = client
            .exchange(&inquiry(demo::DEMO_PIN, 600, 1), TIMEOUT)
            .await
            .unwrap();
        let answer = cup().unpack(&reply).unwrap();
        assert_eq!(answer.response_code().unwrap(), "00");
        assert_eq!(
            answer.get(54).unwrap().to_text(),
            "1002156C000000500000",
            "5 000.00 CNY available"
        );
        let wrong = client
            .exchange(&inquiry("000000", 601, 2), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(cup().unpack(&wrong).unwrap().response_code().unwrap(), "55");
        assert_eq!(
            available(&world, &card).await,
            500_000,
            "an inquiry moves nothing"
        );
        let _ = stop.send(true);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_sale_is_voided_once_with_its_rrn_card_and_amount() {
        let world = world().await;
        let (mut client, stop, server, _handler) = start(&world).await;
        let keys = signed_on(&mut client).await;
        let card = demo::cards()
            .into_iter()
            .find(|card| card.card.id == "card-CH001-D")
            .unwrap();
        let before = available(&world, &card).await;
        let reply = client
            .exchange(
                &chip_sale(&card, 4_000, 700, 1, demo::DEMO_PIN, &keys),
                TIMEOUT,
            )
            .await
            .unwrap();
        let rrn = cup().unpack(&reply).unwrap().rrn().unwrap();
        let mut code = async |request: Vec<u8>| {
            let reply = client.exchange(&request, TIMEOUT).await.unwrap();
            cup().unpack(&reply).unwrap().response_code().unwrap()
        };
        assert_eq!(
            code(void(&card, 4_000, 701, 700, "999999999999", &keys)).await,
            "25",
            "another sale's RRN"
        );
        assert_eq!(
            code(void(&card, 3_000, 701, 700, &rrn, &keys)).await,
            "13",
            "another amount"
        );
        assert_eq!(
            code(void(&card, 4_000, 701, 799, &rrn, &keys)).await,
            "25",
            "no such sale"
        );
        let other_card = demo::cards()
            .into_iter()
            .find(|card| card.card.id == "card-CH002-D")
            .unwrap();
        assert_eq!(
            code(void(&other_card, 4_000, 701, 700, &rrn, &keys)).await,
            "25",
            "another card"
        );
        assert_eq!(code(void(&card, 4_000, 701, 700, &rrn, &keys)).await, "00");
        assert_eq!(available(&world, &card).await, before, "the sale is undone");
        assert_eq!(
            code(void(&card, 4_000, 701, 700, &rrn, &keys)).await,
            "00",
            "a repeat of the same void"
        );
        assert_eq!(
            code(void(&card, 4_000, 702, 700, &rrn, &keys)).await,
            "12",
            "a second void of the same sale"
        );
        assert_eq!(available(&world, &card).await, before, "undone once");
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_preauthorization_holds_and_its_completion_captures_at_most_the_hold() {
        let world = world().await;
        let (mut client, stop, server, _handler) = start(&world).await;
        let keys = signed_on(&mut client).await;
        let card = demo::cards()
            .into_iter()
            .find(|card| card.card.id == "card-CH001-D")
            .unwrap();
        let account = |world: &World| {
            let store = world.store.clone();
            let id = card.card.account;
            async move { store.account(id).await.unwrap().unwrap() }
        };
        let before = account(&world).await;
        let reply = client
            .exchange(&preauthorization(&card, 50_000, 800, 1, &keys), TIMEOUT)
            .await
            .unwrap();
        let answer = cup().unpack(&reply).unwrap().into_owned();
        assert_eq!(
            (
                answer.mti.as_str(),
                answer.response_code().unwrap().as_str()
            ),
            ("0110", "00")
        );
        let auth_code = answer.auth_code().unwrap();
        let held = account(&world).await;
        assert_eq!(
            (held.debits_pending, held.debits_posted),
            (50_000, before.debits_posted),
            "held, not posted"
        );

        let mut code = async |request: Vec<u8>| {
            let reply = client.exchange(&request, TIMEOUT).await.unwrap();
            cup().unpack(&reply).unwrap().response_code().unwrap()
        };
        assert_eq!(
            code(completion(&card, 50_001, 801, 800, &auth_code, &keys)).await,
            "13",
            "more than the hold"
        );
        assert_eq!(
            code(completion(&card, 45_000, 801, 800, "000000", &keys)).await,
            "25",
            "another auth code"
        );
        assert_eq!(
            code(completion(&card, 45_000, 801, 800, &auth_code, &keys)).await,
            "00"
        );
        let completed = account(&world).await;
        assert_eq!(
            (completed.debits_pending, completed.debits_posted),
            (0, before.debits_posted + 45_000),
            "captured 450.00, the rest released"
        );
        assert_eq!(
            code(completion(&card, 45_000, 801, 800, &auth_code, &keys)).await,
            "00",
            "a repeat of the same completion"
        );
        assert_eq!(
            code(completion(&card, 45_000, 802, 800, &auth_code, &keys)).await,
            "12",
            "a second completion"
        );
        let merchant = world
            .store
            .account(demo::account_id("merchant/898310058120001"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(merchant.credits_posted, 45_000);
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_refund_gives_back_up_to_the_sale_once_and_excludes_a_void() {
        let world = world().await;
        let (mut client, stop, server, _handler) = start(&world).await;
        let keys = signed_on(&mut client).await;
        let card = demo::cards()
            .into_iter()
            .find(|card| card.card.id == "card-CH001-D")
            .unwrap();
        let before = available(&world, &card).await;
        let reply = client
            .exchange(
                &chip_sale(&card, 6_000, 900, 1, demo::DEMO_PIN, &keys),
                TIMEOUT,
            )
            .await
            .unwrap();
        let rrn = cup().unpack(&reply).unwrap().rrn().unwrap();
        let refund = |amount: u64, stan: u32| common::refund(&card, amount, stan, 900, &rrn, &keys);
        let mut answer = async |request: Vec<u8>| {
            let reply = client.exchange(&request, TIMEOUT).await.unwrap();
            let message = cup().unpack(&reply).unwrap();
            (
                message.mti.as_str().to_owned(),
                message.response_code().unwrap(),
            )
        };
        assert_eq!(
            answer(refund(6_001, 901)).await.1,
            "13",
            "more than the sale"
        );
        assert_eq!(
            answer(refund(2_000, 901)).await,
            ("0230".into(), "00".into())
        );
        assert_eq!(
            available(&world, &card).await,
            before - 4_000,
            "2 000 of the 6 000 given back"
        );
        assert_eq!(
            answer(refund(2_000, 901)).await.1,
            "00",
            "a repeat of the same refund"
        );
        assert_eq!(answer(refund(1_000, 902)).await.1, "12", "a second refund");
        assert_eq!(
            answer(void(&card, 6_000, 903, 900, &rrn, &keys)).await.1,
            "12",
            "a refunded sale cannot be voided"
        );
        assert_eq!(available(&world, &card).await, before - 4_000);
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_preauthorization_void_releases_the_hold_unless_completed() {
        let world = world().await;
        let (mut client, stop, server, _handler) = start(&world).await;
        let keys = signed_on(&mut client).await;
        let card = demo::cards()
            .into_iter()
            .find(|card| card.card.id == "card-CH001-D")
            .unwrap();
        let before = available(&world, &card).await;
        let reply = client
            .exchange(&preauthorization(&card, 3_000, 1_000, 1, &keys), TIMEOUT)
            .await
            .unwrap();
        let authorized = cup().unpack(&reply).unwrap().into_owned();
        let (rrn, auth_code) = (authorized.rrn().unwrap(), authorized.auth_code().unwrap());
        assert_eq!(available(&world, &card).await, before - 3_000, "held");
        let preauth_void =
            |stan: u32| common::preauthorization_void(&card, 3_000, stan, 1_000, &rrn, &keys);
        let mut answer = async |request: Vec<u8>| {
            let reply = client.exchange(&request, TIMEOUT).await.unwrap();
            let message = cup().unpack(&reply).unwrap();
            (
                message.mti.as_str().to_owned(),
                message.response_code().unwrap(),
            )
        };
        assert_eq!(
            answer(preauth_void(1_001)).await,
            ("0110".into(), "00".into())
        );
        assert_eq!(available(&world, &card).await, before, "released");
        assert_eq!(
            answer(preauth_void(1_001)).await.1,
            "00",
            "a repeat of the same void"
        );
        assert_eq!(
            answer(completion(&card, 3_000, 1_002, 1_000, &auth_code, &keys))
                .await
                .1,
            "12",
            "a voided hold cannot be completed"
        );
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_chip_sale_with_pin_is_approved_posted_once_and_answered_with_arpc_and_mac() {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        for backend in store::testing::backends().await {
            let world = world_on(backend).await;
            let (mut client, stop, server, _handler) = start(&world).await;
            let keys = signed_on(&mut client).await;
            let card = demo::cards()
                .into_iter()
                .find(|card| card.card.id == "card-CH001-D")
                .unwrap();
            let before = available(&world, &card).await;

            let request = chip_sale(&card, 1_200, 100, 1, demo::DEMO_PIN, &keys);
            let reply = client.exchange(&request, TIMEOUT).await.unwrap();
            let answer = cup().unpack(&reply).unwrap().into_owned();
            assert_eq!(
                (
                    answer.mti.as_str(),
                    answer.response_code().unwrap().as_str()
                ),
                ("0210", "00")
            );
            assert_eq!(answer.rrn().unwrap().len(), 12);
            assert_eq!(answer.auth_code().unwrap().len(), 6);
            let tag91 =
                ::emv::tlv::find(&answer.get(55).unwrap().to_bytes(), ::emv::tlv::Tag(0x91))
                    .unwrap()
                    .unwrap()
                    .to_vec();
            assert_eq!(tag91.len(), 8, "ARPC (4) and card status update (4)");
            let (covered, mac) = acquirer::mac::mac_parts(cup(), &reply).unwrap();
            assert_eq!(
                mac,
                paycrypto::mac::iso9797_alg3(&keys.1, covered, Padding::Method1).unwrap(),
                "the approval is MACed"
            );
            assert_eq!(
                available(&world, &card).await,
                before - 1_200,
                "the sale is posted"
            );
            let merchant = world
                .store
                .account(demo::account_id("merchant/898310058120001"))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(merchant.credits_posted, 1_200);

            // The terminal did not get the answer and sends the same message again: same answer
            // codes, nothing posted twice.
            let again = cup()
                .unpack(&client.exchange(&request, TIMEOUT).await.unwrap())
                .unwrap()
                .into_owned();
            assert_eq!(
                (
                    again.response_code().unwrap(),
                    again.rrn().unwrap(),
                    again.auth_code().unwrap()
                ),
                (
                    "00".into(),
                    answer.rrn().unwrap(),
                    answer.auth_code().unwrap()
                )
            );
            assert_eq!(available(&world, &card).await, before - 1_200);

            // Sent again rebuilt (another MAC, so not a duplicate the journal knows): the issuer
            // sees the card's ATC again, and the host finds the sale made under the message's
            // business key — the original approval, nothing posted twice.
            let rebuilt = edited(&request, &keys, |message| message.set_text(22, "052"));
            let repeat = cup()
                .unpack(&client.exchange(&rebuilt, TIMEOUT).await.unwrap())
                .unwrap()
                .into_owned();
            assert_eq!(
                (
                    repeat.response_code().unwrap(),
                    repeat.rrn().unwrap(),
                    repeat.auth_code().unwrap()
                ),
                (
                    "00".into(),
                    answer.rrn().unwrap(),
                    answer.auth_code().unwrap()
                ),
                "{}",
                world.store.backend_name()
            );
            assert_eq!(available(&world, &card).await, before - 1_200);
            // The same trace number for another sale (a new cryptogram, another amount): 94.
            let other = chip_sale(&card, 1_300, 100, 2, demo::DEMO_PIN, &keys);
            let refused = cup()
                .unpack(&client.exchange(&other, TIMEOUT).await.unwrap())
                .unwrap()
                .into_owned();
            assert_eq!(refused.response_code().unwrap(), "94");
            assert_eq!(available(&world, &card).await, before - 1_200);
            world.store.check_books().await.unwrap();
            let _ = stop.send(true);
            server.await.unwrap();
        }
    }

    #[tokio::test]
    async fn declines_answer_with_their_codes_and_move_nothing() {
        let world = world().await;
        let (mut client, stop, server, _handler) = start(&world).await;
        let keys = signed_on(&mut client).await;
        let card = demo::cards()
            .into_iter()
            .find(|card| card.card.id == "card-CH001-D")
            .unwrap();
        let before = available(&world, &card).await;
        let mut code = async |request: Vec<u8>| {
            cup()
                .unpack(&client.exchange(&request, TIMEOUT).await.unwrap())
                .unwrap()
                .response_code()
                .unwrap()
        };

        // Wrong PIN three times: 55, 55, 75; then even the right PIN is refused.
        assert_eq!(
            code(chip_sale(&card, 100, 200, 1, "654321", &keys)).await,
            "55"
        );
        assert_eq!(
            code(chip_sale(&card, 100, 201, 2, "654321", &keys)).await,
            "55"
        );
        assert_eq!(
            code(chip_sale(&card, 100, 202, 3, "654321", &keys)).await,
            "75"
        );
        assert_eq!(
            code(chip_sale(&card, 100, 203, 4, demo::DEMO_PIN, &keys)).await,
            "75"
        );
        // A replayed cryptogram (ATC not above the last one seen).
        assert_eq!(
            code(chip_sale(&card, 100, 204, 2, demo::DEMO_PIN, &keys)).await,
            "05"
        );
        assert_eq!(available(&world, &card).await, before, "nothing moved");

        // Insufficient funds on another card (800.00 on its account).
        let poor = demo::cards()
            .into_iter()
            .find(|card| card.card.id == "card-CH003-D")
            .unwrap();
        assert_eq!(
            code(chip_sale(&poor, 90_000, 205, 1, demo::DEMO_PIN, &keys)).await,
            "51"
        );
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }
}
