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
        mcc: 5814,
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

/// Field 62 of a sign-on of terminal 10000001, decrypted under `tmk`: the working keys, or
/// an error when they were not encrypted under it.
async fn sign_on_under(client: &mut host::Client, tmk: &[u8]) -> Result<(), paycrypto::Error> {
    let sign_on = frame(
        "0800",
        &[
            (11, "000002"),
            (41, "10000001"),
            (42, "898310058120001"),
            (60, "00000000003"),
            (63, "001"),
        ],
    );
    let answer = cup()
        .unpack(&client.exchange(&sign_on, TIMEOUT).await.unwrap())
        .unwrap()
        .into_owned();
    let keys = answer.get(62).unwrap().to_bytes().to_vec();
    let tmk = paycrypto::TdesKey::new(tmk).unwrap();
    paycrypto::session::decrypt_working_key(
        &tmk,
        &paycrypto::session::EncryptedWorkingKey {
            encrypted: keys[..16].to_vec(),
            check_value: keys[16..20].to_vec(),
        },
    )
    .map(drop)
}

#[tokio::test]
async fn a_replaced_master_key_is_used_once_the_host_forgets_the_old_one() {
    let world = world_on(store::testing::sqlite()).await;
    let (mut client, stop, server, handler) =
        start_configured(&world, Limits::default(), |handler| handler).await;
    let old = hex::decode(TEST_TMK).unwrap();
    assert!(sign_on_under(&mut client, &old).await.is_ok());
    // A forced key change stores a new master key (as onboarding does).
    let new = [0x5Au8; 16];
    let token = hsm::Hsm::import_clear_key(
        world.hsm.as_ref(),
        &hsm::KeySpec::terminal_master_key(),
        &new,
    )
    .unwrap();
    let replaced = world
        .store
        .onboarding_execute(vec![
            store::onboarding::Step::new(
                "UPDATE hsm_keys SET token = $2 WHERE name = $1",
                vec![
                    store::onboarding::Cell::text("terminal/10000001/tmk"),
                    store::onboarding::Cell::text(token.as_str()),
                ],
            )
            .expect_one(),
        ])
        .await
        .unwrap();
    assert!(replaced);
    handler.forget_key("terminal/10000001/tmk");
    assert!(
        sign_on_under(&mut client, &new).await.is_ok(),
        "the new key is used"
    );
    assert!(
        sign_on_under(&mut client, &old).await.is_err(),
        "the old key is not"
    );
    let _ = stop.send(true);
    server.await.unwrap();
}
