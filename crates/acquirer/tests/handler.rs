#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The acquirer handler behind a real listener, driven by a real client over loopback.

use acquirer::{TerminalHandler, TerminalRecord};
use host::{Client, Limits, Listener};
use hsm::{Hsm, KeySpec, MacAlgorithm, SoftHsm};
use iso8583::{LengthPrefix, Message, Mti, Profile, Tpdu};
use paycrypto::TdesKey;
use paycrypto::mac::Padding;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use store::directory::StoredKey;

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

/// A sale from terminal 10000001, not yet MACed.
fn sale_message() -> Message<'static> {
    let mut message = Message::new(Mti::parse("0200").unwrap());
    message.tpdu = Some(Tpdu {
        id: 0x60,
        destination: 3,
        source: 1,
    });
    message.header = vec![0x60, 0x31, 0, 0x31, 0, 0].into();
    for (field, value) in [
        (2, "6212340000100008"),
        (3, "000000"),
        (4, "1200"),
        (11, "000010"),
        (22, "051"),
        (25, "00"),
        (41, "10000001"),
        (42, "898310058120001"),
        (49, "156"),
        (60, "22000001"),
    ] {
        message.set_text(field, value);
    }
    message
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

/// The terminal master key of terminal 10000001 in these tests (a test key: the terminal must
/// know it in clear to take its working keys).
const TEST_TMK: &str = "0123456789ABCDEFFEDCBA9876543210";

struct World {
    store: Arc<Store>,
    hsm: Arc<SoftHsm>,
    _backend: store::testing::TestBackend,
}

/// The demo world on a fresh SQLite store, with a known master key for terminal 10000001.
async fn world() -> World {
    let backend = store::testing::sqlite();
    let store = Arc::new(Store::open(&backend.backend).await.unwrap());
    let hsm = Arc::new(SoftHsm::new(&[0x42; 32]).unwrap());
    let tmk = hsm
        .import_clear_key(
            &KeySpec::terminal_master_key(),
            &hex::decode(TEST_TMK).unwrap(),
        )
        .unwrap();
    store
        .put_keys(vec![StoredKey {
            name: demo::terminal_master_key_name("10000001"),
            token: tmk.as_str().to_owned(),
            check_value: "TEST".into(),
        }])
        .await
        .unwrap();
    demo::seed(&store, hsm.as_ref()).await.unwrap();
    World {
        store,
        hsm,
        _backend: backend,
    }
}

async fn start(
    world: &World,
) -> (
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
    let handler = Arc::new(TerminalHandler::new(
        cup(),
        terminals,
        world.store.clone(),
        world.hsm.clone(),
    ));
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
    let world = world().await;
    let (mut client, stop, server, handler) = start(&world).await;
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
        ("0210".into(), "58".into()),
        "a financial message before sign-on"
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

    // A sale MACed with the current MAC key passes the MAC check (and is answered 40 until the
    // authorization path lands); a wrong MAC gets A0; a MAC under the old key too.
    let mut sale = sale_message();
    let signed = acquirer::mac::pack_with_mac(cup(), &mut sale, |covered| {
        paycrypto::mac::iso9797_alg3(&mac_key, covered, Padding::Method1)
            .unwrap()
            .to_vec()
    })
    .unwrap();
    assert_eq!(
        ask(&mut client, &signed).await,
        ("0210".into(), "40".into())
    );
    // The amount changed on the way, the MAC kept: A0.
    let tampered = {
        let mut changed = cup().unpack(&signed).unwrap().into_owned();
        changed.set_text(4, "1300");
        cup().pack(&changed).unwrap()
    };
    let old = acquirer::mac::pack_with_mac(cup(), &mut sale_message(), |covered| {
        paycrypto::mac::iso9797_alg3(&_pin_key, covered, Padding::Method1)
            .unwrap()
            .to_vec()
    })
    .unwrap();
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
