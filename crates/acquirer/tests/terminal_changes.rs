//! A terminal changed while the host runs (onboarding activates one, an operator reports one
//! lost): the next message is checked against the new record, with no restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

#[tokio::test]
async fn a_terminal_reported_lost_is_declined_at_once_and_a_found_one_sells_again() {
    let world = world_on(store::testing::sqlite()).await;
    let (mut client, stop, server, handler) =
        start_configured(&world, Limits::default(), |handler| handler).await;
    let keys = signed_on(&mut client).await;
    let card = demo_card("card-CH001-D");
    let before = available(&world, &card).await;
    let record = |active| acquirer::TerminalRecord {
        merchant_id: demo::SHANGHAI_MERCHANT.into(),
        active,
        acquirer: demo::ACQUIRER,
        merchant_payable: demo::account_id(&format!("merchant/{}", demo::SHANGHAI_MERCHANT)),
    };
    handler.set_terminal("10000001", record(false));
    let sale = chip_sale(&card, 1_000, 900, 1, demo::DEMO_PIN, &keys);
    assert_eq!(ask(&mut client, &sale).await.1, "58");
    assert_eq!(available(&world, &card).await, before, "nothing posted");
    handler.set_terminal("10000001", record(true));
    let sale = chip_sale(&card, 1_000, 901, 2, demo::DEMO_PIN, &keys);
    assert_eq!(ask(&mut client, &sale).await.1, "00");
    let _ = stop.send(true);
    server.await.unwrap();
}
