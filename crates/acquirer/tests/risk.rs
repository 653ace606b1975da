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
        let mccs = HashMap::from([("898310058120001".to_owned(), 5411u16)]);
        let (mut client, stop, server, _handler) =
            start_configured(&world, Limits::default(), |handler| {
                handler.with_risk(engine.clone(), mccs)
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
