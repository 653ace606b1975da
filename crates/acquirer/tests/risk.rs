//! The acquirer's risk rules in the authorization path, through real ISO 8583 messages: a
//! velocity rule declines the n-th sale with its own code before the issuer sees it, nothing
//! is posted, and the journal says which rule fired and why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

const RULES: &str = r#"
[[rule]]
name = "card-velocity"
kind = "velocity"
scope = "card"
window_secs = 600
max_count = 2
action = "decline"
response_code = "65"
score = 50

[[rule]]
name = "cross-border"
kind = "cross_border"
action = "alert"
score = 10
"#;

#[tokio::test]
async fn a_velocity_rule_declines_the_third_sale_with_its_code_and_nothing_is_posted() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    for backend in store::testing::backends().await {
        let world = world_on(backend).await;
        let engine = Arc::new(risk::Engine::new(risk::Config::from_toml(RULES).unwrap()));
        let (mut client, stop, server, _handler) =
            start_configured(&world, Limits::default(), |handler| {
                handler.with_risk(engine.clone())
            })
            .await;
        let keys = signed_on(&mut client).await;
        let card = demo_card("card-CH001-D");
        let before = available(&world, &card).await;

        for (stan, atc) in [(700, 1), (701, 2)] {
            let (_, code) = ask(
                &mut client,
                &chip_sale(&card, 1_000, stan, atc, demo::DEMO_PIN, &keys),
            )
            .await;
            assert_eq!(code, "00");
        }
        assert_eq!(available(&world, &card).await, before - 2_000);

        let third = chip_sale(&card, 1_000, 702, 3, demo::DEMO_PIN, &keys);
        assert_eq!(ask(&mut client, &third).await, ("0210".into(), "65".into()));
        assert_eq!(
            available(&world, &card).await,
            before - 2_000,
            "the declined sale moved nothing"
        );
        // Its transfers were never made.
        let message = cup().unpack(&third).unwrap();
        let request = acquirer::Request::parse(cup(), &message).unwrap();
        let accounts = acquirer::effects::SaleAccounts {
            card: card.card.account,
            product: card.card.product,
            issuer_settlement: acquirer::chart::issuer_settlement(
                card.card.issuer,
                money::Currency::parse("CNY").unwrap(),
            ),
            acquirer_due_from_issuers: acquirer::chart::acquirer_due_from_issuers(
                demo::ACQUIRER,
                money::Currency::parse("CNY").unwrap(),
            ),
            merchant_payable: demo::account_id("merchant/898310058120001"),
        };
        let transfers = acquirer::effects::sale_transfers(
            &request.key(),
            &accounts,
            money::Amount::new(1_000, money::Currency::parse("CNY").unwrap()),
        );
        for transfer in &transfers {
            assert_eq!(world.store.transfer(transfer.id).await.unwrap(), None);
        }

        // The journal explains the decline; the approved sales fired nothing.
        let journal = world.store.journal_recent(10).await.unwrap();
        let sales: Vec<_> = journal
            .iter()
            .filter(|entry| entry.kind == "Sale")
            .collect();
        assert_eq!(sales.len(), 3);
        assert_eq!(sales[0].risk, None);
        assert_eq!(sales[2].response.as_deref(), Some("65"));
        let note = sales[2].risk.as_deref().unwrap();
        assert!(
            note.starts_with("card-velocity(decline,50): 3 authorizations on the card"),
            "{note}"
        );
        assert!(!note.contains(&card.pan), "no card number in the journal");

        // A sale on another card still passes.
        let other = demo_card("card-CH002-D");
        let (_, code) = ask(
            &mut client,
            &chip_sale(&other, 1_000, 703, 1, demo::DEMO_PIN, &keys),
        )
        .await;
        assert_eq!(code, "00");

        let _ = stop.send(true);
        server.await.unwrap();
    }
}

#[tokio::test]
async fn a_frozen_terminal_or_card_is_declined_on_its_next_sale_and_thawing_lets_it_pass() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    for backend in store::testing::backends().await {
        let world = world_on(backend).await;
        let freezes = Arc::new(risk::Freezes::new());
        let shared = freezes.clone();
        let (mut client, stop, server, _handler) =
            start_configured(&world, Limits::default(), |handler| {
                handler.with_freezes(shared)
            })
            .await;
        let keys = signed_on(&mut client).await;
        let card = demo_card("card-CH001-D");
        let before = available(&world, &card).await;

        // Stored as the API stores it, and read back.
        let freeze = store::freezes::Freeze {
            scope: "terminal".into(),
            target: "10000001".into(),
            reason: "stolen terminal".into(),
            frozen_by: "shanghai.admin".into(),
            frozen_at: 1_800_000_000,
        };
        world.store.put_freeze(freeze.clone()).await.unwrap();
        assert_eq!(world.store.freezes().await.unwrap(), vec![freeze]);
        freezes.set(risk::FreezeScope::Terminal, "10000001", true);

        let sale = chip_sale(&card, 1_000, 800, 1, demo::DEMO_PIN, &keys);
        assert_eq!(ask(&mut client, &sale).await.1, "58");
        assert_eq!(available(&world, &card).await, before, "nothing posted");
        let journal = world.store.journal_recent(1).await.unwrap();
        assert_eq!(journal[0].risk.as_deref(), Some("frozen terminal"));
        // Who keyed it: the operator of the sign-on (field 63), for the insider alerts.
        assert_eq!(journal[0].operator.as_deref(), Some("001"));

        assert!(
            world
                .store
                .delete_freeze("terminal", "10000001")
                .await
                .unwrap()
        );
        assert!(
            !world
                .store
                .delete_freeze("terminal", "10000001")
                .await
                .unwrap()
        );
        assert_eq!(world.store.freezes().await.unwrap(), vec![]);
        freezes.set(risk::FreezeScope::Terminal, "10000001", false);
        freezes.set(risk::FreezeScope::Card, "card-CH001-D", true);
        let sale = chip_sale(&card, 1_000, 801, 2, demo::DEMO_PIN, &keys);
        assert_eq!(ask(&mut client, &sale).await.1, "62");

        freezes.set(risk::FreezeScope::Card, "card-CH001-D", false);
        let sale = chip_sale(&card, 1_000, 802, 3, demo::DEMO_PIN, &keys);
        assert_eq!(ask(&mut client, &sale).await.1, "00");
        assert_eq!(available(&world, &card).await, before - 1_000);

        let _ = stop.send(true);
        server.await.unwrap();
    }
}

#[tokio::test]
async fn a_card_its_holder_froze_is_declined_62_and_unfreezing_lets_it_pass() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    for backend in store::testing::backends().await {
        let world = world_on(backend).await;
        let freezes = Arc::new(risk::Freezes::new());
        let shared = freezes.clone();
        let (mut client, stop, server, _handler) =
            start_configured(&world, Limits::default(), |handler| {
                handler.with_freezes(shared)
            })
            .await;
        let keys = signed_on(&mut client).await;
        let card = demo_card("card-CH001-D");
        let before = available(&world, &card).await;
        // The API's state shares the host's freezes, as `easypos up` wires them.
        let api = api::ApiState::new(world.store.clone()).with_freezes(freezes.clone());
        let holder = api::access::Principal {
            user: world
                .store
                .user_by_username("cardholder1")
                .await
                .unwrap()
                .unwrap(),
        };
        let own = api::alerts::own_card(&api, &holder, "card-CH001-D")
            .await
            .unwrap();

        api::alerts::set_frozen(&api, &holder, &own, true)
            .await
            .unwrap();
        let sale = chip_sale(&card, 1_000, 811, 1, demo::DEMO_PIN, &keys);
        assert_eq!(ask(&mut client, &sale).await.1, "62");
        assert_eq!(available(&world, &card).await, before, "nothing posted");
        let journal = world.store.journal_recent(1).await.unwrap();
        assert_eq!(journal[0].risk.as_deref(), Some("frozen card"));

        api::alerts::set_frozen(&api, &holder, &own, false)
            .await
            .unwrap();
        let sale = chip_sale(&card, 1_000, 812, 2, demo::DEMO_PIN, &keys);
        assert_eq!(ask(&mut client, &sale).await.1, "00");
        assert_eq!(available(&world, &card).await, before - 1_000);
        // The journal keeps the entry mode and what the issuer's decision proved, for
        // statements and certificates.
        let journal = world.store.journal_recent(1).await.unwrap();
        assert_eq!(journal[0].entry_mode.as_deref(), Some("051"));
        assert_eq!(
            journal[0].card_verification.as_deref(),
            Some("chip: cryptogram verified; PIN verified")
        );
        let wrong = chip_sale(&card, 1_000, 813, 3, "000000", &keys);
        assert_eq!(ask(&mut client, &wrong).await.1, "55");
        let journal = world.store.journal_recent(1).await.unwrap();
        assert_eq!(
            journal[0].card_verification.as_deref(),
            Some("chip: PIN failed (PinIncorrect)")
        );

        let _ = stop.send(true);
        server.await.unwrap();
    }
}

/// A chip sale answered 00, and its RRN.
async fn approved_sale(
    client: &mut Client,
    card: &demo::DemoCard,
    amount: u64,
    stan: u32,
    atc: u16,
    keys: &(TdesKey, TdesKey),
) -> String {
    let reply = client
        .exchange(
            &chip_sale(card, amount, stan, atc, demo::DEMO_PIN, keys),
            TIMEOUT,
        )
        .await
        .unwrap();
    let message = cup().unpack(&reply).unwrap();
    assert_eq!(message.response_code().unwrap(), "00");
    message.rrn().unwrap()
}

#[tokio::test]
async fn refunds_and_voids_meet_the_freezes_and_a_refund_freeze_leaves_sales_alone() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    for backend in store::testing::backends().await {
        let world = world_on(backend).await;
        let freezes = Arc::new(risk::Freezes::new());
        let shared = freezes.clone();
        let (mut client, stop, server, _handler) =
            start_configured(&world, Limits::default(), |handler| {
                handler.with_freezes(shared)
            })
            .await;
        let keys = signed_on(&mut client).await;
        let card = demo_card("card-CH001-D");
        let first = approved_sale(&mut client, &card, 6_000, 900, 1, &keys).await;
        let before = available(&world, &card).await;

        freezes.set(risk::FreezeScope::Terminal, "10000001", true);
        let (mti, code) = ask(&mut client, &refund(&card, 2_000, 901, 900, &first, &keys)).await;
        assert_eq!((mti.as_str(), code.as_str()), ("0230", "58"));
        assert_eq!(available(&world, &card).await, before, "nothing given back");
        let journal = world.store.journal_recent(1).await.unwrap();
        assert_eq!(journal[0].risk.as_deref(), Some("frozen terminal"));
        assert_eq!(journal[0].card_id.as_deref(), Some("card-CH001-D"));
        freezes.set(risk::FreezeScope::Terminal, "10000001", false);

        // Refunds frozen for the merchant: its refunds stop, its sales go on.
        freezes.set(risk::FreezeScope::Refunds, "898310058120001", true);
        assert_eq!(
            ask(&mut client, &refund(&card, 2_000, 902, 900, &first, &keys))
                .await
                .1,
            "58"
        );
        let journal = world.store.journal_recent(1).await.unwrap();
        assert_eq!(journal[0].risk.as_deref(), Some("frozen refunds"));
        let second = approved_sale(&mut client, &card, 3_000, 903, 2, &keys).await;

        // A frozen card's void is refused with 62; thawed, the void and the refund pass.
        freezes.set(risk::FreezeScope::Card, "card-CH001-D", true);
        assert_eq!(
            ask(&mut client, &void(&card, 3_000, 904, 903, &second, &keys))
                .await
                .1,
            "62"
        );
        freezes.set(risk::FreezeScope::Card, "card-CH001-D", false);
        freezes.set(risk::FreezeScope::Refunds, "898310058120001", false);
        assert_eq!(
            ask(&mut client, &void(&card, 3_000, 905, 903, &second, &keys))
                .await
                .1,
            "00"
        );
        assert_eq!(
            ask(&mut client, &refund(&card, 2_000, 906, 900, &first, &keys))
                .await
                .1,
            "00"
        );
        assert_eq!(available(&world, &card).await, before + 2_000);

        let _ = stop.send(true);
        server.await.unwrap();
    }
}

const REFUND_RULES: &str = r#"
[[rule]]
name = "refund-without-sale"
kind = "refund_without_sale"
window_secs = 86400
action = "decline"
response_code = "57"

[[rule]]
name = "card-velocity"
kind = "velocity"
scope = "card"
window_secs = 600
max_count = 2
action = "decline"
response_code = "65"
"#;

fn refund_engine() -> Arc<risk::Engine> {
    Arc::new(risk::Engine::new(
        risk::Config::from_toml(REFUND_RULES).unwrap(),
    ))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn refunds_meet_the_rules_and_a_restart_rebuilds_the_windows_from_the_journal() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    for backend in store::testing::backends().await {
        let world = world_on(backend).await;
        let card = demo_card("card-CH001-D");

        // Before the restart: a sale the engine sees.
        let engine = refund_engine();
        let (mut client, stop, server, _handler) =
            start_configured(&world, Limits::default(), |handler| {
                handler.with_risk(engine.clone())
            })
            .await;
        let keys = signed_on(&mut client).await;
        let rrn = approved_sale(&mut client, &card, 5_000, 910, 1, &keys).await;
        let _ = stop.send(true);
        server.await.unwrap();

        // A restart that forgot it: the refund looks like one to a card that did not pay.
        let forgetful = refund_engine();
        let (mut client, stop, server, _handler) =
            start_configured(&world, Limits::default(), |handler| {
                handler.with_risk(forgetful.clone())
            })
            .await;
        let keys = signed_on(&mut client).await;
        assert_eq!(
            ask(&mut client, &refund(&card, 1_000, 911, 910, &rrn, &keys))
                .await
                .1,
            "57"
        );
        let journal = world.store.journal_recent(1).await.unwrap();
        assert!(
            journal[0]
                .risk
                .as_deref()
                .unwrap()
                .starts_with("refund-without-sale(decline,0)"),
            "{:?}",
            journal[0].risk
        );
        let _ = stop.send(true);
        server.await.unwrap();

        // A restart that replays the journal: the sale pays for the refund, and it counts
        // towards the card's velocity.
        let rebuilt = refund_engine();
        let replayed = acquirer::replay_risk(&world.store, &rebuilt, now_ms())
            .await
            .unwrap();
        assert_eq!(replayed, 1, "the sale; the refund is not a purchase");
        let (mut client, stop, server, _handler) =
            start_configured(&world, Limits::default(), |handler| {
                handler.with_risk(rebuilt.clone())
            })
            .await;
        let keys = signed_on(&mut client).await;
        assert_eq!(
            ask(&mut client, &refund(&card, 1_000, 912, 910, &rrn, &keys))
                .await
                .1,
            "00"
        );
        approved_sale(&mut client, &card, 1_000, 913, 2, &keys).await;
        assert_eq!(
            ask(
                &mut client,
                &chip_sale(&card, 1_000, 914, 3, demo::DEMO_PIN, &keys)
            )
            .await
            .1,
            "65",
            "the third sale in 10 minutes, counting the one before the restart"
        );
        let _ = stop.send(true);
        server.await.unwrap();
    }
}

#[tokio::test]
async fn rules_that_review_open_one_case_that_counts_its_hits_off_the_authorization_path() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let rules = r#"
[[rule]]
name = "big-sale"
kind = "velocity"
scope = "card"
window_secs = 600
max_amount_minor = 1000
action = "review"
score = 10

[[rule]]
name = "on-trial"
kind = "mcc"
mccs = ["5814"]
action = "approve"
"#;
    for backend in store::testing::backends().await {
        let world = world_on(backend).await;
        let engine = Arc::new(risk::Engine::new(risk::Config::from_toml(rules).unwrap()));
        let (cases, queue) = acquirer::cases::case_channel();
        let writer = tokio::spawn(acquirer::cases::write_cases(world.store.clone(), queue));
        let (mut client, stop, server, handler) =
            start_configured(&world, Limits::default(), |handler| {
                handler.with_risk(engine.clone()).with_cases(cases)
            })
            .await;
        let keys = signed_on(&mut client).await;
        let card = demo_card("card-CH001-D");
        // A small sale fires only the rule on trial: no case.
        approved_sale(&mut client, &card, 500, 920, 1, &keys).await;
        // Then two reviewed sales (still approved): one case, two hits.
        approved_sale(&mut client, &card, 800, 921, 2, &keys).await;
        approved_sale(&mut client, &card, 800, 922, 3, &keys).await;
        let _ = stop.send(true);
        server.await.unwrap();
        drop(handler);
        writer.await.unwrap();

        let cases = world
            .store
            .cases(store::cases::CaseQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(cases.len(), 1, "{cases:?}");
        let case = &cases[0];
        assert_eq!(
            (case.hits, case.severity.as_str(), case.card_id.as_str()),
            (2, "review", "card-CH001-D")
        );
        assert_eq!(
            (case.merchant_id.as_str(), case.terminal_id.as_str()),
            ("898310058120001", "10000001")
        );
        assert!(case.rules.contains("big-sale(review,10)"), "{}", case.rules);
        assert!(!case.rules.contains(&card.pan));
    }
}

/// Field 63 of a void or refund: supervisor `operator` keyed `password` at the terminal.
fn supervisor_field(operator: &str, password: &str, keys: &(TdesKey, TdesKey)) -> String {
    let account = store::staff_passwords::staff_account("898310058120001", operator).unwrap();
    let block = pinblock::encrypt_pin_block(
        PinBlockFormat::Iso0,
        PinKey::Tdes(&keys.0),
        &paycrypto::Pin::new(password).unwrap(),
        Some(&paycrypto::Pan::new(&account).unwrap()),
        &[0; 8],
    )
    .unwrap();
    acquirer::supervisor::field63(operator, &block).unwrap()
}

#[tokio::test]
async fn voids_and_refunds_need_an_enrolled_supervisors_password_checked_in_the_hsm() {
    use hsm::Hsm as _;
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    for backend in store::testing::backends().await {
        let world = world_on(backend).await;
        // Supervisor 099 of Shanghai enrols 135790 (as api::supervisors does).
        let pvk = world
            .hsm
            .generate_key(&hsm::KeySpec::pvk_ibm3624())
            .unwrap();
        world
            .store
            .put_keys(vec![store::directory::StoredKey {
                name: store::staff_passwords::STAFF_PVK.into(),
                token: pvk.as_str().to_owned(),
                check_value: String::new(),
            }])
            .await
            .unwrap();
        let offset = world
            .hsm
            .generate_pin_offset(
                &pvk,
                &store::staff_passwords::validation_data("898310058120001", "099").unwrap(),
                'F',
                &paycrypto::card::DecimalisationTable::DEFAULT,
                &paycrypto::Pin::new("135790").unwrap(),
            )
            .unwrap();
        assert_ne!(offset, "135790");
        world
            .store
            .put_staff_password("898310058120001", "099", &offset, "test", 1_764_000_000)
            .await
            .unwrap();
        let (sender, mut cases) = acquirer::cases::case_channel();
        let (mut client, stop, server, _handler) =
            start_configured(&world, Limits::default(), |handler| {
                handler.with_cases(sender)
            })
            .await;
        let keys = signed_on(&mut client).await;
        let card = demo_card("card-CH001-D");
        let first = approved_sale(&mut client, &card, 6_000, 900, 1, &keys).await;
        let before = available(&world, &card).await;
        let with_supervisor = |frame: &[u8], field: String| {
            edited(frame, &keys, |message| message.set_text(63, field))
        };

        // None, another supervisor's number, or a wrong password: 55, nothing given back.
        let refused = [
            void(&card, 6_000, 901, 900, &first, &keys),
            with_supervisor(
                &void(&card, 6_000, 902, 900, &first, &keys),
                supervisor_field("098", "135790", &keys),
            ),
            with_supervisor(
                &refund(&card, 2_000, 903, 900, &first, &keys),
                supervisor_field("099", "135791", &keys),
            ),
            with_supervisor(
                &refund(&card, 2_000, 904, 900, &first, &keys),
                "099NOTHEX".into(),
            ),
        ];
        for frame in &refused {
            assert_eq!(ask(&mut client, frame).await.1, "55");
        }
        assert_eq!(available(&world, &card).await, before, "nothing given back");
        let journal = world.store.journal_recent(1).await.unwrap();
        assert_eq!(
            journal[0].risk.as_deref(),
            Some("supervisor password refused")
        );

        // The right one: the refund passes, and learns the supervisor's usual terminal (no
        // alert for its first terminal).
        let allowed = with_supervisor(
            &refund(&card, 2_000, 905, 900, &first, &keys),
            supervisor_field("99", "135790", &keys),
        );
        assert_eq!(ask(&mut client, &allowed).await.1, "00");
        assert_eq!(available(&world, &card).await, before + 2_000);
        assert!(cases.try_recv().is_err(), "the usual terminal: no alert");
        // The usual terminal is kept in the store (written in the background: a bounded
        // wait), and a host started afresh on the same store learns it back.
        let mut kept = Vec::new();
        for _ in 0..100 {
            kept = world.store.supervisor_terminals().await.unwrap();
            if !kept.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let kept: Vec<_> = kept
            .iter()
            .map(|used| {
                (
                    used.merchant_id.as_str(),
                    used.operator_no.as_str(),
                    used.terminal_id.as_str(),
                )
            })
            .collect();
        assert_eq!(kept, [("898310058120001", "099", "10000001")]);
        let restarted = acquirer::TerminalHandler::new(
            cup(),
            std::collections::HashMap::new(),
            world.store.clone(),
            world.hsm.clone(),
        );
        assert_eq!(restarted.load_supervisor_terminals().await.unwrap(), 1);

        let _ = stop.send(true);
        server.await.unwrap();
    }
}

/// The merchant's category code comes with its terminal's record as read from the store
/// (`TerminalRecord::new`: at start, when a host follows another's change, and on the miss path
/// for a terminal onboarded after start), so an MCC rule screens every merchant by its own
/// category. The demo's Shanghai merchant is a coffee shop (5814).
#[tokio::test]
async fn an_mcc_rule_screens_by_the_category_read_with_the_terminal() {
    let rules = r#"
[[rule]]
name = "no-coffee"
kind = "mcc"
mccs = ["5814"]
action = "decline"
response_code = "57"
"#;
    for backend in store::testing::backends().await {
        let world = world_on(backend).await;
        let engine = Arc::new(risk::Engine::new(risk::Config::from_toml(rules).unwrap()));
        let (mut client, stop, server, handler) =
            start_configured(&world, Limits::default(), |handler| {
                handler.with_risk(engine.clone())
            })
            .await;
        let (terminal, merchant) = world
            .store
            .terminal_with_merchant("10000001")
            .await
            .unwrap()
            .unwrap();
        handler.set_terminal(
            "10000001",
            acquirer::TerminalRecord::new(&terminal, &merchant),
        );
        let keys = signed_on(&mut client).await;
        let card = demo_card("card-CH001-D");
        let before = available(&world, &card).await;
        assert_eq!(
            ask(
                &mut client,
                &chip_sale(&card, 1_000, 730, 1, demo::DEMO_PIN, &keys)
            )
            .await,
            ("0210".into(), "57".into()),
            "{}: the merchant's category is screened",
            world.store.backend_name()
        );
        assert_eq!(available(&world, &card).await, before);
        let _ = stop.send(true);
        server.await.unwrap();
    }
}
