#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The acquirer handler behind a real listener, driven by a real client over loopback.

use acquirer::{TerminalHandler, TerminalRecord};
use host::{Client, Limits, Listener};
use iso8583::{LengthPrefix, Message, Mti, Profile, Tpdu};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

fn cup() -> &'static Profile {
    Profile::builtin("cup-bcd").unwrap()
}

fn frame(mti: &str, fields: &[(u8, &str)]) -> Vec<u8> {
    let mut message = Message::new(Mti::parse(mti).unwrap());
    message.tpdu = Some(Tpdu {
        id: 0x60,
        destination: 3,
        source: 1,
    });
    message.header = vec![0x60, 0x31, 0, 0x31, 0, 0].into();
    for (field, value) in fields {
        match field {
            64 => message.set_bytes(*field, hex::decode(value).unwrap()),
            _ => message.set_text(*field, *value),
        }
    }
    cup().pack(&message).unwrap()
}

fn echo(terminal: &str, merchant: &str) -> Vec<u8> {
    frame(
        "0820",
        &[
            (11, "000001"),
            (41, terminal),
            (42, merchant),
            (60, "00000001301"),
        ],
    )
}

async fn start() -> (
    Client,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
    Arc<TerminalHandler>,
) {
    let terminals = HashMap::from([
        (
            "10000001".to_owned(),
            TerminalRecord {
                merchant_id: "898310058120001".into(),
                active: true,
            },
        ),
        (
            "10000009".to_owned(),
            TerminalRecord {
                merchant_id: "898310058120001".into(),
                active: false,
            },
        ),
    ]);
    let handler = Arc::new(TerminalHandler::new(cup(), terminals));
    let listener = Listener::bind(
        ([127, 0, 0, 1], 0).into(),
        LengthPrefix::Binary2,
        Limits::default(),
    )
    .await
    .unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(listener.serve(handler.clone(), stopped));
    let client = Client::connect(address, LengthPrefix::Binary2, TIMEOUT)
        .await
        .unwrap();
    (client, stop, server, handler)
}

async fn ask(client: &mut Client, request: &[u8]) -> (String, String) {
    let reply = client.exchange(request, TIMEOUT).await.unwrap();
    let message = cup().unpack(&reply).unwrap();
    assert_eq!(
        message.tpdu,
        Some(Tpdu {
            id: 0x60,
            destination: 1,
            source: 3
        }),
        "the TPDU comes back turned round"
    );
    (
        message.mti.as_str().to_owned(),
        message.response_code().unwrap(),
    )
}

#[tokio::test]
async fn terminals_get_answers_for_everything_they_can_be_answered() {
    let (mut client, stop, server, handler) = start().await;
    assert_eq!(
        ask(&mut client, &echo("10000001", "898310058120001")).await,
        ("0830".into(), "00".into())
    );
    assert_eq!(
        ask(&mut client, &echo("10000002", "898310058120001"))
            .await
            .1,
        "58",
        "unknown terminal"
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
        ("0210".into(), "40".into()),
        "payments are not wired yet, and say so"
    );
    assert_eq!(
        handler
            .counters
            .answered
            .load(std::sync::atomic::Ordering::Relaxed),
        6
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
