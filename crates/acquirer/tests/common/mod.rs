//! What the acquirer's integration tests share: the demo world with known test keys, a host
//! on loopback, and the terminal's side of every message, built with the codec and MACed
//! the way a terminal does.
#![allow(dead_code)]

pub use acquirer::{TerminalHandler, TerminalRecord};
pub use host::{Client, Limits, Listener};
pub use hsm::{Hsm, KeySpec, SoftHsm};
pub use iso8583::{LengthPrefix, Message, Mti, Profile, Tpdu};
pub use paycrypto::mac::Padding;
pub use paycrypto::{Pan, TdesKey};
pub use std::collections::HashMap;
pub use std::sync::Arc;
pub use std::time::Duration;
pub use store::Store;
pub use store::directory::StoredKey;

/// A small deterministic generator (SplitMix64): a storm or a simulation replays exactly from
/// its seed.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }
}

pub const TIMEOUT: Duration = Duration::from_secs(5);

pub fn cup() -> &'static Profile {
    Profile::builtin("cup-bcd").unwrap()
}

/// A message from terminal 10000001's side of the line: TPDU, header, the text fields given.
pub fn terminal_message(mti: &str, fields: &[(u8, &str)]) -> Message<'static> {
    let mut message = Message::new(Mti::parse(mti).unwrap());
    message.tpdu = Some(Tpdu {
        id: 0x60,
        destination: 3,
        source: 1,
    });
    message.header = vec![0x60, 0x31, 0, 0x31, 0, 0].into();
    for (field, value) in fields {
        message.set_text(*field, value.to_string());
    }
    message
}

pub fn frame(mti: &str, fields: &[(u8, &str)]) -> Vec<u8> {
    let text: Vec<(u8, &str)> = fields
        .iter()
        .filter(|(field, _)| *field != 64)
        .copied()
        .collect();
    let mut message = terminal_message(mti, &text);
    if let Some((_, mac)) = fields.iter().find(|(field, _)| *field == 64) {
        message.set_bytes(64, hex::decode(mac).unwrap());
    }
    cup().pack(&message).unwrap()
}

/// Packs with the MAC the terminal computes under its MAC key.
pub fn maced(mut message: Message<'_>, mac_key: &TdesKey) -> Vec<u8> {
    acquirer::mac::pack_with_mac(cup(), &mut message, |covered| {
        paycrypto::mac::iso9797_alg3(mac_key, covered, Padding::Method1)
            .unwrap()
            .to_vec()
    })
    .unwrap()
}

/// A sale from terminal 10000001, not yet MACed.
pub fn sale_message() -> Message<'static> {
    let mut message = terminal_message("0200", &[]);
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

pub fn echo(terminal: &str, merchant: &str) -> Vec<u8> {
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
pub const TEST_TMK: &str = "0123456789ABCDEFFEDCBA9876543210";
/// The debit bank's EMV issuer master key in these tests, so the test can play the chip.
pub const TEST_IMK: &str = "89B07B35A1B3F47E89B07B35A1B3F47E";

pub struct World {
    pub store: Arc<Store>,
    pub hsm: Arc<SoftHsm>,
    /// The database, dropped with the world; `None` for [`another_host`]'s, which shares it.
    pub _backend: Option<store::testing::TestBackend>,
}

/// Another host on `world`'s database: a store of its own (connections, writer), as a second
/// process would open, with the same HSM master key.
pub async fn another_host(world: &World) -> World {
    let backend = world
        ._backend
        .as_ref()
        .expect("the world that owns the database");
    World {
        store: Arc::new(Store::open(&backend.backend).await.unwrap()),
        hsm: world.hsm.clone(),
        _backend: None,
    }
}

/// The demo world on a fresh SQLite store, with a known master key for terminal 10000001.
pub async fn world() -> World {
    world_on(store::testing::sqlite()).await
}

/// The demo world on `backend`, with test keys for terminal 10000001 and the debit bank.
pub async fn world_on(backend: store::testing::TestBackend) -> World {
    world_with_keys(backend, Vec::new()).await
}

/// A world whose key table starts as `other`'s: the two institutions share zone keys, and the
/// test keys (both HSMs have the same test master key, so the tokens open in both).
pub async fn world_sharing_keys(backend: store::testing::TestBackend, other: &World) -> World {
    world_with_keys(backend, other.store.keys().await.unwrap()).await
}

async fn world_with_keys(backend: store::testing::TestBackend, keys: Vec<StoredKey>) -> World {
    let store = Arc::new(Store::open(&backend.backend).await.unwrap());
    store.put_keys(keys).await.unwrap();
    let hsm = Arc::new(SoftHsm::new(&[0x42; 32]).unwrap());
    let tmk = hsm
        .import_clear_key(
            &KeySpec::terminal_master_key(),
            &hex::decode(TEST_TMK).unwrap(),
        )
        .unwrap();
    let imk = hsm
        .import_clear_key(
            &KeySpec::issuer_master_key(),
            &hex::decode(TEST_IMK).unwrap(),
        )
        .unwrap();
    store
        .put_keys(vec![
            StoredKey {
                name: demo::terminal_master_key_name("10000001"),
                token: tmk.as_str().to_owned(),
                check_value: "TEST".into(),
            },
            StoredKey {
                name: "issuer/20/imk-ac".into(),
                token: imk.as_str().to_owned(),
                check_value: "TEST".into(),
            },
            // The CVV key too, so the test can write a card's stripe.
            StoredKey {
                name: "issuer/20/cvk".into(),
                token: hsm
                    .import_clear_key(&KeySpec::cvk(), &hex::decode(TEST_IMK).unwrap())
                    .unwrap()
                    .as_str()
                    .to_owned(),
                check_value: "TEST".into(),
            },
        ])
        .await
        .unwrap();
    demo::seed(&store, hsm.as_ref()).await.unwrap();
    World {
        store,
        hsm,
        _backend: Some(backend),
    }
}

pub async fn start(
    world: &World,
) -> (
    Client,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
    Arc<TerminalHandler>,
) {
    start_with(world, Limits::default()).await
}

pub async fn start_with(
    world: &World,
    limits: Limits,
) -> (
    Client,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
    Arc<TerminalHandler>,
) {
    start_configured(world, limits, |handler| handler).await
}

/// A host whose handler `configure` adjusts (its deadlines, for example).
pub async fn start_configured(
    world: &World,
    limits: Limits,
    configure: impl FnOnce(TerminalHandler) -> TerminalHandler,
) -> (
    Client,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
    Arc<TerminalHandler>,
) {
    let (_, client, stop, server, handler) = start_listening(world, limits, configure).await;
    (client, stop, server, handler)
}

/// As [`start_configured`], with the listener's address, for tests that open more connections.
pub async fn start_listening(
    world: &World,
    limits: Limits,
    configure: impl FnOnce(TerminalHandler) -> TerminalHandler,
) -> (
    std::net::SocketAddr,
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
                acquirer: demo::ACQUIRER,
                merchant_payable: demo::account_id("merchant/898310058120001"),
                mcc: 5814,
            },
        ),
        (
            "40000001".to_owned(),
            TerminalRecord {
                merchant_id: "898310058120001".into(),
                active: true,
                acquirer: demo::ACQUIRER,
                merchant_payable: demo::account_id("merchant/898310058120001"),
                mcc: 5814,
            },
        ),
        (
            "40000002".to_owned(),
            TerminalRecord {
                merchant_id: "898310058120001".into(),
                active: true,
                acquirer: demo::ACQUIRER,
                merchant_payable: demo::account_id("merchant/898310058120001"),
                mcc: 5814,
            },
        ),
        (
            "10000009".to_owned(),
            TerminalRecord {
                merchant_id: "898310058120001".into(),
                active: false,
                acquirer: demo::ACQUIRER,
                merchant_payable: demo::account_id("merchant/898310058120001"),
                mcc: 5814,
            },
        ),
    ]);
    let handler = Arc::new(configure(TerminalHandler::new(
        cup(),
        terminals,
        world.store.clone(),
        world.hsm.clone(),
    )));
    let listener = Listener::bind(([127, 0, 0, 1], 0).into(), LengthPrefix::Binary2, limits)
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(listener.serve(handler.clone(), stopped));
    let client = Client::connect(address, LengthPrefix::Binary2, TIMEOUT)
        .await
        .unwrap();
    (address, client, stop, server, handler)
}

pub async fn ask(client: &mut Client, request: &[u8]) -> (String, String) {
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

pub use paycrypto::emv::{self, CryptogramVersion};
pub use paycrypto::pinblock::{self, PinBlockFormat, PinKey};

/// A signed-on terminal 10000001: the client and its clear PIN and MAC keys.
pub async fn signed_on(client: &mut Client) -> (TdesKey, TdesKey) {
    signed_on_as(client, "10000001").await
}

/// Signs `terminal` on (its master key is [`TEST_TMK`]): its clear PIN and MAC keys.
pub async fn signed_on_as(client: &mut Client, terminal: &str) -> (TdesKey, TdesKey) {
    let sign_on = frame(
        "0800",
        &[
            (11, "000001"),
            (41, terminal),
            (42, "898310058120001"),
            (60, "00000000003"),
            (63, "001"),
        ],
    );
    let answer = cup()
        .unpack(&client.exchange(&sign_on, TIMEOUT).await.unwrap())
        .unwrap()
        .into_owned();
    working_keys(&answer.get(62).unwrap().to_bytes())
}

/// The clear PIN and MAC keys of a sign-on answer's field 62 (PIK 16 ‖ check 4 ‖ MAK 16 ‖
/// check 4, under [`TEST_TMK`]).
pub fn working_keys(field62: &[u8]) -> (TdesKey, TdesKey) {
    let tmk = TdesKey::new(&hex::decode(TEST_TMK).unwrap()).unwrap();
    let key = |from: usize| {
        paycrypto::session::decrypt_working_key(
            &tmk,
            &paycrypto::session::EncryptedWorkingKey {
                encrypted: field62[from..from + 16].to_vec(),
                check_value: field62[from + 16..from + 20].to_vec(),
            },
        )
        .unwrap()
    };
    (key(0), key(20))
}

pub const UN: [u8; 4] = [0x38, 0x04, 0x82, 0x3E];

/// A chip sale with PIN, as the demo card `card` and terminal 10000001 would send it.
pub fn chip_sale(
    card: &demo::DemoCard,
    amount_minor: u64,
    stan: u32,
    atc: u16,
    pin: &str,
    keys: &(TdesKey, TdesKey),
) -> Vec<u8> {
    let pan = Pan::new(&card.pan).unwrap();
    let amount = format!("{amount_minor:012}");
    let objects: Vec<(u32, Vec<u8>)> = vec![
        (0x9F02, hex::decode(&amount).unwrap()),
        (0x9F03, vec![0; 6]),
        (0x9F1A, hex::decode("0156").unwrap()),
        (0x95, hex::decode("0000008000").unwrap()),
        (0x5F2A, hex::decode("0156").unwrap()),
        (0x9A, hex::decode("261125").unwrap()),
        (0x9C, vec![0]),
        (0x9F37, UN.to_vec()),
        (0x82, hex::decode("5C00").unwrap()),
        (0x9F36, atc.to_be_bytes().to_vec()),
        (0x9F10, hex::decode("06010A03A0A000").unwrap()),
    ];
    let data: Vec<u8> = objects
        .iter()
        .flat_map(|(_, value)| value.clone())
        .collect();
    let imk = TdesKey::new(&hex::decode(TEST_IMK).unwrap()).unwrap();
    let icc = emv::icc_master_key(&imk, &pan, 1).unwrap();
    let session = emv::session_key(
        &icc,
        atc.to_be_bytes(),
        CryptogramVersion::Visa18.session_derivation(UN),
    )
    .unwrap();
    let arqc = emv::generate_arqc(&session, &data, CryptogramVersion::Visa18.padding()).unwrap();
    let mut tlv: Vec<(::emv::tlv::Tag, &[u8])> = objects
        .iter()
        .map(|(tag, value)| (::emv::tlv::Tag(*tag), value.as_slice()))
        .collect();
    tlv.push((::emv::tlv::Tag(0x9F26), &arqc));
    tlv.push((::emv::tlv::Tag(0x5F34), &[0x01]));
    let field55 = ::emv::field55::build(&tlv).unwrap();
    let block = pinblock::encrypt_pin_block(
        PinBlockFormat::Iso0,
        PinKey::Tdes(&keys.0),
        &paycrypto::Pin::new(pin).unwrap(),
        Some(&pan),
        &[0; 8],
    )
    .unwrap();

    let mut message = terminal_message("0200", &[]);
    let stan = format!("{stan:06}");
    for (field, value) in [
        (2, card.pan.as_str()),
        (3, "000000"),
        (4, amount.as_str()),
        (11, stan.as_str()),
        (22, "051"),
        (25, "00"),
        (41, "10000001"),
        (42, "898310058120001"),
        (49, "156"),
        (60, "22000001"),
    ] {
        message.set_text(field, value);
    }
    message.set_bytes(52, block.as_bytes().to_vec());
    message.set_bytes(55, field55);
    maced(message, &keys.1)
}

/// A swipe of `card` (track 2 with its CVV), with `entry_mode` "021" (stripe) or "801"
/// (fallback after a failed chip read), no PIN.
pub fn swipe(
    card: &demo::DemoCard,
    amount_minor: u64,
    stan: u32,
    entry_mode: &str,
    keys: &(TdesKey, TdesKey),
) -> Vec<u8> {
    let pan = Pan::new(&card.pan).unwrap();
    let cvk = TdesKey::new(&hex::decode(TEST_IMK).unwrap()).unwrap();
    let cvv = paycrypto::card::cvv(&cvk, &pan, "3012", "201").unwrap();
    let track2 = format!("{}=3012201{cvv}00000", card.pan);
    let mut message = terminal_message("0200", &[]);
    let amount = format!("{amount_minor:012}");
    let stan = format!("{stan:06}");
    for (field, value) in [
        (3, "000000"),
        (4, amount.as_str()),
        (11, stan.as_str()),
        (22, entry_mode),
        (25, "00"),
        (35, track2.as_str()),
        (41, "10000001"),
        (42, "898310058120001"),
        (49, "156"),
        (60, "22000001"),
    ] {
        message.set_text(field, value);
    }
    maced(message, &keys.1)
}

/// A reversal of the sale with trace number `stan`, as a terminal sends it after a timeout.
pub fn reversal(mti: &str, stan: u32, amount_minor: u64, keys: &(TdesKey, TdesKey)) -> Vec<u8> {
    let mut message = terminal_message(mti, &[]);
    let amount = format!("{amount_minor:012}");
    let stan = format!("{stan:06}");
    for (field, value) in [
        (3, "000000"),
        (4, amount.as_str()),
        (11, stan.as_str()),
        (22, "051"),
        (25, "00"),
        (39, "98"),
        (41, "10000001"),
        (42, "898310058120001"),
        (49, "156"),
        (60, "22000001"),
    ] {
        message.set_text(field, value);
    }
    maced(message, &keys.1)
}

/// A void (消费撤销) of the sale with trace number `original_stan` and RRN `rrn`.
pub fn void(
    card: &demo::DemoCard,
    amount_minor: u64,
    stan: u32,
    original_stan: u32,
    rrn: &str,
    keys: &(TdesKey, TdesKey),
) -> Vec<u8> {
    let amount = format!("{amount_minor:012}");
    let stan = format!("{stan:06}");
    let original = format!("000001{original_stan:06}");
    let fields = [
        (2, card.pan.as_str()),
        (3, "200000"),
        (4, amount.as_str()),
        (11, stan.as_str()),
        (22, "011"),
        (25, "00"),
        (37, rrn),
        (41, "10000001"),
        (42, "898310058120001"),
        (49, "156"),
        (60, "23000001"),
        (61, original.as_str()),
    ];
    maced(terminal_message("0200", &fields), &keys.1)
}

/// A refund (退货, 0220 with 60.1 = 25) of `amount_minor` of the sale with trace number
/// `original_stan` and RRN `rrn`: a void turned into a refund.
pub fn refund(
    card: &demo::DemoCard,
    amount_minor: u64,
    stan: u32,
    original_stan: u32,
    rrn: &str,
    keys: &(TdesKey, TdesKey),
) -> Vec<u8> {
    edited(
        &void(card, amount_minor, stan, original_stan, rrn, keys),
        keys,
        |message| {
            message.mti = Mti::parse("0220").unwrap();
            message.set_text(60, "25000001");
        },
    )
}

/// A completion void (预授权完成撤销, 60.1 = 21) of the completion with trace number
/// `completion_stan` and RRN `rrn`: the void's layout with condition 06.
pub fn completion_void(
    card: &demo::DemoCard,
    amount_minor: u64,
    stan: u32,
    completion_stan: u32,
    rrn: &str,
    keys: &(TdesKey, TdesKey),
) -> Vec<u8> {
    edited(
        &void(card, amount_minor, stan, completion_stan, rrn, keys),
        keys,
        |message| {
            message.set_text(25, "06");
            message.set_text(60, "21000001");
        },
    )
}

/// A pre-authorization void (预授权撤销, 0100 with condition 06 and 60.1 = 11) of the hold
/// with trace number `original_stan` and RRN `rrn`: the void's layout.
pub fn preauthorization_void(
    card: &demo::DemoCard,
    amount_minor: u64,
    stan: u32,
    original_stan: u32,
    rrn: &str,
    keys: &(TdesKey, TdesKey),
) -> Vec<u8> {
    edited(
        &void(card, amount_minor, stan, original_stan, rrn, keys),
        keys,
        |message| {
            message.mti = Mti::parse("0100").unwrap();
            message.set_text(25, "06");
            message.set_text(60, "11000001");
        },
    )
}

/// A pre-authorization: a chip sale turned into 0100 with processing code 03, condition 06
/// and 60.1 = 10.
pub fn preauthorization(
    card: &demo::DemoCard,
    amount_minor: u64,
    stan: u32,
    atc: u16,
    keys: &(TdesKey, TdesKey),
) -> Vec<u8> {
    let sale = cup()
        .unpack(&chip_sale(
            card,
            amount_minor,
            stan,
            atc,
            demo::DEMO_PIN,
            keys,
        ))
        .unwrap()
        .into_owned();
    let mut message = terminal_message("0100", &[]);
    for (field, value) in sale.iter() {
        message.set(field, value.clone());
    }
    message.set_text(3, "030000");
    message.set_text(25, "06");
    message.set_text(60, "10000001");
    message.remove(64);
    maced(message, &keys.1)
}

/// A completion of the pre-authorization with trace number `original_stan`: the void's
/// layout with processing code 00, condition 06, 60.1 = 20 and the auth code in field 38.
pub fn completion(
    card: &demo::DemoCard,
    amount_minor: u64,
    stan: u32,
    original_stan: u32,
    auth_code: &str,
    keys: &(TdesKey, TdesKey),
) -> Vec<u8> {
    let mut message = cup()
        .unpack(&void(
            card,
            amount_minor,
            stan,
            original_stan,
            "000000000000",
            keys,
        ))
        .unwrap()
        .into_owned();
    message.remove(37);
    message.set_text(3, "000000");
    message.set_text(25, "06");
    message.set_text(38, auth_code.to_owned());
    message.set_text(60, "20000001");
    maced(message, &keys.1)
}

pub async fn available(world: &World, card: &demo::DemoCard) -> i64 {
    world
        .store
        .account(card.card.account)
        .await
        .unwrap()
        .unwrap()
        .available()
}

/// The demo card with this id.
pub fn demo_card(id: &str) -> demo::DemoCard {
    demo::cards()
        .into_iter()
        .find(|card| card.card.id == id)
        .unwrap()
}

/// The reversal (`mti` 0400, or 0401 for its repeat) a terminal makes of `request`: the same
/// trace number and amount, without the card data (fields 2, 35, 52, 55) or the approval (37,
/// 38), with reason 98 (no answer) in field 39, MACed again.
pub fn reversal_of(request: &[u8], mti: &str, keys: &(TdesKey, TdesKey)) -> Vec<u8> {
    edited(request, keys, |message| {
        message.mti = Mti::parse(mti).unwrap();
        for field in [2, 35, 37, 38, 52, 55] {
            message.remove(field);
        }
        message.set_text(39, "98");
    })
}

/// `request` changed by `edit` and MACed again: how the tests turn one message into another
/// (a void into a refund, a sale into its reversal).
pub fn edited(
    request: &[u8],
    keys: &(TdesKey, TdesKey),
    edit: impl FnOnce(&mut Message<'static>),
) -> Vec<u8> {
    let mut message = cup().unpack(request).unwrap().into_owned();
    message.remove(64);
    edit(&mut message);
    maced(message, &keys.1)
}

/// Batch settlement (0500) of batch 1 with the terminal's domestic totals.
pub fn settlement(stan: u32, totals: &acquirer::settlement::Totals) -> Vec<u8> {
    let field48 = acquirer::settlement::SettlementTotals {
        domestic: *totals,
        foreign: acquirer::settlement::Totals::default(),
        by_type: None,
    }
    .format(0, 0);
    let stan = format!("{stan:06}");
    frame(
        "0500",
        &[
            (11, stan.as_str()),
            (41, "10000001"),
            (42, "898310058120001"),
            (48, field48.as_str()),
            (49, "156"),
            (60, "00000001201"),
            (63, "001"),
        ],
    )
}

/// A DUKPT terminal of the tests: its id, scheme, BDK (test key, in clear so the test can play
/// the PIN pad) and device KSN (counter 0).
pub struct DukptTerminal {
    pub id: &'static str,
    pub scheme: &'static str,
    pub bdk: Vec<u8>,
    pub initial_ksn: Vec<u8>,
}

impl DukptTerminal {
    /// AES DUKPT (X9.24-3 B.1's BDK and initial key id) as terminal 40000001.
    pub fn aes() -> Self {
        DukptTerminal {
            id: "40000001",
            scheme: acquirer::keys::DUKPT_AES,
            bdk: hex::decode("FEDCBA9876543210F1F1F1F1F1F1F1F1").unwrap(),
            initial_ksn: hex::decode("123456789012345600000000").unwrap(),
        }
    }

    /// TDES DUKPT (X9.24-1 Annex A's BDK and KSN) as terminal 40000002.
    pub fn tdes() -> Self {
        DukptTerminal {
            id: "40000002",
            scheme: acquirer::keys::DUKPT_TDES,
            bdk: hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap(),
            initial_ksn: hex::decode("FFFF9876543210E00000").unwrap(),
        }
    }

    fn is_aes(&self) -> bool {
        self.scheme == acquirer::keys::DUKPT_AES
    }

    /// The KSN of transaction `counter`.
    pub fn ksn(&self, counter: u32) -> Vec<u8> {
        use paycrypto::dukpt::{aes as aes_dukpt, tdes};
        if self.is_aes() {
            aes_dukpt::Ksn::new(&self.initial_ksn)
                .unwrap()
                .with_counter(counter)
                .bytes()
                .to_vec()
        } else {
            tdes::Ksn::new(&self.initial_ksn)
                .unwrap()
                .with_counter(counter)
                .unwrap()
                .bytes()
                .to_vec()
        }
    }

    fn aes_key(&self, counter: u32, usage: paycrypto::dukpt::aes::KeyUsage) -> paycrypto::AesKey {
        use paycrypto::dukpt::aes as aes_dukpt;
        let ksn = aes_dukpt::Ksn::new(&self.ksn(counter)).unwrap();
        let bdk = paycrypto::AesKey::new(&self.bdk).unwrap();
        let initial = aes_dukpt::initial_key(&bdk, &ksn.initial_key_id()).unwrap();
        let derivation = aes_dukpt::derivation_key(&initial, &ksn).unwrap();
        aes_dukpt::aes_working_key(&derivation, &ksn, usage, aes_dukpt::KeyType::Aes128).unwrap()
    }

    fn tdes_key(&self, counter: u32, variant: paycrypto::dukpt::tdes::Variant) -> TdesKey {
        use paycrypto::dukpt::tdes;
        let ksn = tdes::Ksn::new(&self.ksn(counter)).unwrap();
        let bdk = TdesKey::new(&self.bdk).unwrap();
        tdes::working_key(&tdes::host_transaction_key(&bdk, &ksn).unwrap(), variant).unwrap()
    }

    /// The PIN block the PIN pad makes for transaction `counter`.
    pub fn pin_block(&self, counter: u32, pin: &str, pan: &Pan) -> Vec<u8> {
        let pin = paycrypto::Pin::new(pin).unwrap();
        let block = if self.is_aes() {
            let key = self.aes_key(counter, paycrypto::dukpt::aes::KeyUsage::PinEncryption);
            paycrypto::pinblock::encrypt_pin_block(
                paycrypto::pinblock::PinBlockFormat::Iso4,
                paycrypto::pinblock::PinKey::Aes(&key),
                &pin,
                Some(pan),
                &[0x5A; 8],
            )
        } else {
            let key = self.tdes_key(counter, paycrypto::dukpt::tdes::Variant::Pin);
            paycrypto::pinblock::encrypt_pin_block(
                paycrypto::pinblock::PinBlockFormat::Iso0,
                paycrypto::pinblock::PinKey::Tdes(&key),
                &pin,
                Some(pan),
                &[0; 8],
            )
        };
        block.unwrap().as_bytes().to_vec()
    }

    /// The MAC of transaction `counter`'s request (`response` false) or answer, 8 bytes.
    pub fn mac(&self, counter: u32, response: bool, data: &[u8]) -> Vec<u8> {
        use paycrypto::dukpt::{aes::KeyUsage, tdes::Variant};
        let mut mac = if self.is_aes() {
            let usage = if response {
                KeyUsage::MacVerification
            } else {
                KeyUsage::MacGeneration
            };
            paycrypto::mac::aes_cmac(&self.aes_key(counter, usage), data).to_vec()
        } else {
            let variant = if response {
                Variant::MacResponse
            } else {
                Variant::MacRequest
            };
            paycrypto::mac::iso9797_alg3(&self.tdes_key(counter, variant), data, Padding::Method1)
                .unwrap()
                .to_vec()
        };
        mac.truncate(8);
        mac
    }

    /// Provisions the terminal in `world`: directory record, BDK in the HSM and the key table,
    /// and its session.
    pub async fn provision(&self, world: &World) {
        use store::directory::{Directory, Terminal, TerminalSession};
        world
            .store
            .put_directory(Directory {
                terminals: vec![Terminal {
                    id: self.id.into(),
                    merchant_id: "898310058120001".into(),
                    status: "active".into(),
                }],
                ..Directory::default()
            })
            .await
            .unwrap();
        let spec = if self.is_aes() {
            KeySpec::bdk_aes(self.bdk.len())
        } else {
            KeySpec::bdk_tdes()
        };
        let name = format!("acquirer/bdk/{}", self.id);
        let token = world.hsm.import_clear_key(&spec, &self.bdk).unwrap();
        world
            .store
            .put_keys(vec![StoredKey {
                name: name.clone(),
                token: token.as_str().to_owned(),
                check_value: "TEST".into(),
            }])
            .await
            .unwrap();
        world
            .store
            .put_terminal_sessions(vec![TerminalSession {
                terminal_id: self.id.into(),
                key_scheme: self.scheme.into(),
                tmk_key: name,
                pin_key: None,
                mac_key: None,
                batch: 1,
                operator: None,
                signed_on_at: None,
                initial_ksn: Some(hex::encode_upper(&self.initial_ksn)),
                ksn_counter: 0,
            }])
            .await
            .unwrap();
    }

    /// `request` (a sale of terminal 10000001's) as this terminal's transaction `counter`: its
    /// terminal id, a PIN block for `pin` when given, the KSN in field 62, the DUKPT MAC.
    pub fn retag(&self, request: &[u8], counter: u32, pin: Option<(&str, &Pan)>) -> Vec<u8> {
        let mut message = cup().unpack(request).unwrap().into_owned();
        message.remove(64);
        message.set_text(41, self.id);
        message.remove(52);
        let mut field62 = self.ksn(counter);
        match pin {
            // A format 4 block (16 bytes) follows the KSN in field 62 (easypos convention).
            Some((pin, pan)) if self.is_aes() => {
                field62.extend(self.pin_block(counter, pin, pan));
            }
            Some((pin, pan)) => message.set_bytes(52, self.pin_block(counter, pin, pan)),
            None => {}
        }
        message.set_bytes(62, field62);
        acquirer::mac::pack_with_mac(cup(), &mut message, |covered| {
            self.mac(counter, false, covered)
        })
        .unwrap()
    }
}

/// An issuer host (`iso87-ascii`, 2-byte length) on loopback for `world`'s cards.
pub async fn start_issuer_host(
    world: &World,
) -> (
    std::net::SocketAddr,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    start_issuer_host_with(world, Limits::default()).await
}

/// An issuer host for `world`'s cards, with the listener's `limits`.
pub async fn start_issuer_host_with(
    world: &World,
    limits: Limits,
) -> (
    std::net::SocketAddr,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let handler = Arc::new(TerminalHandler::issuer(
        world.store.clone(),
        world.hsm.clone(),
    ));
    let listener = Listener::bind(([127, 0, 0, 1], 0).into(), LengthPrefix::Binary2, limits)
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(listener.serve(handler, stopped));
    (address, stop, server)
}

/// Every demo issuer reached at `address`, by the BINs of its demo cards.
pub fn remote_issuers(
    mut handler: TerminalHandler,
    address: std::net::SocketAddr,
) -> TerminalHandler {
    let mut bins: HashMap<ledger::InstitutionId, Vec<String>> = HashMap::new();
    for card in demo::cards() {
        bins.entry(card.card.issuer)
            .or_default()
            .push(card.pan[..6].to_owned());
    }
    for (institution, bins) in bins {
        handler = handler.with_remote_issuer(
            institution,
            acquirer::switch::RemoteIssuer::new(address),
            bins,
        );
    }
    handler
}

/// An issuer host with its own store and an acquirer host that sends every demo card to it:
/// two institutions, each with its books, talking over the switch link.
pub struct RemotePair {
    pub issuer: World,
    pub acquirer: World,
    /// Where the acquirer host listens.
    pub address: std::net::SocketAddr,
    pub client: Client,
    pub handler: Arc<TerminalHandler>,
    stops: Vec<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    )>,
}

impl RemotePair {
    pub async fn start(
        issuer_backend: store::testing::TestBackend,
        acquirer_backend: store::testing::TestBackend,
    ) -> RemotePair {
        Self::start_configured(
            issuer_backend,
            acquirer_backend,
            Limits::default(),
            |handler| handler,
        )
        .await
    }

    /// Both hosts' listeners with `limits`, the acquirer's handler adjusted by `configure`.
    pub async fn start_configured(
        issuer_backend: store::testing::TestBackend,
        acquirer_backend: store::testing::TestBackend,
        limits: Limits,
        configure: impl FnOnce(TerminalHandler) -> TerminalHandler,
    ) -> RemotePair {
        Self::start_via(issuer_backend, acquirer_backend, limits, configure, false)
            .await
            .0
    }

    /// As [`RemotePair::start_configured`], the link running through a [`LossyLink`], which
    /// is returned with the pair.
    pub async fn start_lossy(
        issuer_backend: store::testing::TestBackend,
        acquirer_backend: store::testing::TestBackend,
        limits: Limits,
        configure: impl FnOnce(TerminalHandler) -> TerminalHandler,
    ) -> (RemotePair, Arc<LossyLink>) {
        let (pair, link) =
            Self::start_via(issuer_backend, acquirer_backend, limits, configure, true).await;
        (pair, link.unwrap())
    }

    async fn start_via(
        issuer_backend: store::testing::TestBackend,
        acquirer_backend: store::testing::TestBackend,
        limits: Limits,
        configure: impl FnOnce(TerminalHandler) -> TerminalHandler,
        lossy: bool,
    ) -> (RemotePair, Option<Arc<LossyLink>>) {
        let issuer = world_on(issuer_backend).await;
        // The acquirer shares the issuers' zone keys (and the test keys): the key exchange
        // between the two institutions, done here by copying the key table.
        let acquirer = world_sharing_keys(acquirer_backend, &issuer).await;
        let (address, issuer_stop, issuer_server) =
            start_issuer_host_with(&issuer, limits.clone()).await;
        let link = match lossy {
            true => Some(LossyLink::start(address).await),
            false => None,
        };
        let address = link.as_ref().map_or(address, |link| link.address);
        let (acquirer_address, client, stop, server, handler) =
            start_listening(&acquirer, limits, |handler| {
                configure(remote_issuers(handler, address))
            })
            .await;
        let pair = RemotePair {
            issuer,
            acquirer,
            address: acquirer_address,
            client,
            handler,
            stops: vec![(stop, server), (issuer_stop, issuer_server)],
        };
        (pair, link)
    }

    /// Checks both institutions' books and stops both hosts.
    pub async fn stop(self) {
        self.issuer.store.check_books().await.unwrap();
        self.acquirer.store.check_books().await.unwrap();
        for (stop, server) in self.stops {
            let _ = stop.send(true);
            server.await.unwrap();
        }
    }
}

/// A terminal and a trace number: what the [`LossyLink`] loses and holds by.
type LinkKey = (String, u32);

/// The switch link between an acquirer and an issuer host, relaying each frame, that can lose
/// an issuer's answer: told to lose a trace number's messages, it keeps each back and breaks
/// the acquirer's connection, so the acquirer gets no answer (its second try on a new
/// connection neither) and answers the terminal 91. The requests it kept reach the issuer only
/// when released — the issuer then decides them, after the acquirer has given up, and their
/// answers (the late answers) have nowhere to go. Released or not, they never reach the
/// acquirer.
pub struct LossyLink {
    pub address: std::net::SocketAddr,
    issuer: std::net::SocketAddr,
    lose: std::sync::Mutex<std::collections::HashSet<LinkKey>>,
    held: std::sync::Mutex<HashMap<LinkKey, Vec<Vec<u8>>>>,
    accepting: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl LossyLink {
    async fn start(issuer: std::net::SocketAddr) -> Arc<LossyLink> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let link = Arc::new(LossyLink {
            address: listener.local_addr().unwrap(),
            issuer,
            lose: Default::default(),
            held: Default::default(),
            accepting: Default::default(),
        });
        let relaying = link.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(relaying.clone().relay(socket));
            }
        });
        *link.accepting.lock().unwrap() = Some(accepting);
        link
    }

    /// The messages of `terminal` under trace number `stan` are lost on their way (see the
    /// type) until [`LossyLink::keep`].
    pub fn lose(&self, terminal: &str, stan: u32) {
        self.lose
            .lock()
            .unwrap()
            .insert((terminal.to_owned(), stan));
    }

    /// Stops losing those messages (if none came, none was lost).
    pub fn keep(&self, terminal: &str, stan: u32) {
        self.lose
            .lock()
            .unwrap()
            .remove(&(terminal.to_owned(), stan));
    }

    /// Delivers the requests of `terminal` under `stan` that the link kept back to the
    /// issuer, whose answers are thrown away; returns how many there were.
    pub async fn release(&self, terminal: &str, stan: u32) -> usize {
        let held = self
            .held
            .lock()
            .unwrap()
            .remove(&(terminal.to_owned(), stan))
            .unwrap_or_default();
        for request in &held {
            let mut client = Client::connect(self.issuer, LengthPrefix::Binary2, TIMEOUT)
                .await
                .unwrap();
            client.exchange(request, TIMEOUT).await.unwrap();
        }
        held.len()
    }

    /// Stops accepting connections (the ones open end when the acquirer closes them).
    pub fn stop(&self) {
        if let Some(accepting) = self.accepting.lock().unwrap().take() {
            accepting.abort();
        }
    }

    async fn relay(self: Arc<Self>, mut socket: tokio::net::TcpStream) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let link = Profile::builtin("iso87-ascii").unwrap();
        loop {
            let Ok(length) = socket.read_u16().await else {
                return;
            };
            let mut request = vec![0; usize::from(length)];
            if socket.read_exact(&mut request).await.is_err() {
                return;
            }
            let key = link.unpack(&request).ok().and_then(|message| {
                let text = |field| message.get(field).map(|value| value.to_text());
                Some((text(41)?.trim().to_owned(), text(11)?.parse::<u32>().ok()?))
            });
            if let Some(key) = key
                && self.lose.lock().unwrap().contains(&key)
            {
                self.held
                    .lock()
                    .unwrap()
                    .entry(key)
                    .or_default()
                    .push(request);
                // Dropping the socket breaks the acquirer's exchange: no answer comes.
                return;
            }
            // A connection of its own per request: one kept would be closed by the issuer
            // host after its idle timeout while the acquirer's side of it stays open.
            let mut client = Client::connect(self.issuer, LengthPrefix::Binary2, TIMEOUT)
                .await
                .unwrap();
            let answer = client.exchange(&request, TIMEOUT).await.unwrap();
            let length = u16::try_from(answer.len()).unwrap();
            if socket.write_u16(length).await.is_err() || socket.write_all(&answer).await.is_err() {
                return;
            }
        }
    }
}
