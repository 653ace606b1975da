//! Parameter changes reach a terminal at its next sign-on: the 0810 asks for a download (the
//! header's processing requirement) when the terminal names another parameter version in
//! field 62, and the MACed download (0800, 60.3 = 360) gets the set in field 62, MACed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use acquirer::parameters::{TerminalParameters, download_requested, version_field};
use common::*;

fn parameters(version: u32) -> TerminalParameters {
    TerminalParameters {
        version,
        merchant_name: "静安茶馆 Jing'an Tea".into(),
        merchant_city: "Shanghai".into(),
        host: "127.0.0.1:8583".into(),
        currency: "CNY".into(),
        contactless_cvm_limit: "500.00".into(),
        languages: vec!["zh".into(), "en".into()],
        payment_methods: vec!["chip".into(), "contactless".into()],
    }
}

/// The 0810 to a sign-on of terminal 10000001 naming parameter `version` (none: no field 62).
async fn sign_on_answer(
    client: &mut host::Client,
    version: Option<u32>,
) -> iso8583::Message<'static> {
    let mut sign_on = terminal_message(
        "0800",
        &[
            (11, "000002"),
            (41, "10000001"),
            (42, "898310058120001"),
            (60, "00000000003"),
            (63, "001"),
        ],
    );
    if let Some(version) = version {
        sign_on.set_bytes(62, version_field(version));
    }
    let reply = client
        .exchange(&cup().pack(&sign_on).unwrap(), TIMEOUT)
        .await
        .unwrap();
    let answer = cup().unpack(&reply).unwrap().into_owned();
    assert_eq!(answer.response_code().unwrap(), "00");
    answer
}

/// A parameter download of terminal 10000001, MACed under `mac_key`; the reply frame.
async fn download(client: &mut host::Client, mac_key: &paycrypto::TdesKey) -> Vec<u8> {
    let request = terminal_message(
        "0800",
        &[
            (11, "000003"),
            (41, "10000001"),
            (42, "898310058120001"),
            (60, "00000001360"),
        ],
    );
    client
        .exchange(&maced(request, mac_key), TIMEOUT)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_changed_parameter_set_is_asked_for_at_sign_on_and_downloaded_maced() {
    let world = world_on(store::testing::sqlite()).await;
    let (mut client, stop, server, handler) =
        start_configured(&world, Limits::default(), |handler| handler).await;

    // A terminal whose parameters the host does not manage: never asked, and 40 to a download.
    assert!(!download_requested(
        &sign_on_answer(&mut client, Some(1)).await
    ));
    let (_, mac_key) = signed_on(&mut client).await;
    let reply = cup()
        .unpack(&download(&mut client, &mac_key).await)
        .unwrap()
        .into_owned();
    assert_eq!(reply.response_code().unwrap(), "40");

    handler.set_parameters("10000001", parameters(3));
    assert!(download_requested(
        &sign_on_answer(&mut client, Some(2)).await
    ));
    assert!(download_requested(&sign_on_answer(&mut client, None).await));
    assert!(!download_requested(
        &sign_on_answer(&mut client, Some(3)).await
    ));

    let (_, mac_key) = signed_on(&mut client).await;
    let frame = download(&mut client, &mac_key).await;
    let answer = cup().unpack(&frame).unwrap().into_owned();
    assert_eq!(answer.mti.as_str(), "0810");
    assert_eq!(answer.response_code().unwrap(), "00");
    let field62 = answer.get(62).unwrap().to_bytes().into_owned();
    assert_eq!(TerminalParameters::decode(&field62).unwrap(), parameters(3));
    let (covered, mac) = acquirer::mac::mac_parts(cup(), &frame).unwrap();
    let expected =
        paycrypto::mac::iso9797_alg3(&mac_key, covered, paycrypto::mac::Padding::Method1).unwrap();
    assert_eq!(
        mac,
        &expected[..],
        "the answer is MACed under the sign-on's MAC key"
    );

    // A download whose MAC does not verify gets no parameters.
    let wrong = paycrypto::TdesKey::new(&[0x11; 16]).unwrap();
    let refused = cup()
        .unpack(&download(&mut client, &wrong).await)
        .unwrap()
        .into_owned();
    assert_eq!(refused.response_code().unwrap(), "A0");
    assert!(!refused.has(62));

    let _ = stop.send(true);
    server.await.unwrap();
}
