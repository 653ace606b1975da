#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End of day over a generated day of real terminal traffic: a host on loopback answers
//! sales, voids, refunds, reversals, pre-authorizations and completions in two currencies,
//! over ISO 8583 as a terminal sends them, QR payments are paid and refunded from a wallet
//! (Panda Pay), and disputes are charged back through the same
//! host (one of them reversed by a decision for the merchant, and enough of them in dollars
//! that the dollar merchant's net is negative and carried forward); then the day is settled and its figures checked
//! against a model the test keeps as it goes, computed here independently of the crate. A
//! rerun changes nothing, a date still open and a missing fee are refused without posting,
//! and a journal row removed behind the platform's back shows up as a break. On SQLite, and on
//! PostgreSQL when `EASYPOS_TEST_DATABASE_URL` is set.

#[path = "../../acquirer/tests/common/mod.rs"]
mod common;

use clearing::cycle::CycleRule;
use clearing::{BreakKind, ClearingError, Request, Settings, Status};
use common::*;
use ledger::AccountSpec;
use money::Currency;
use store::directory::{Directory, Merchant, Terminal};

const SHANGHAI: &str = "898310058120001";
/// A merchant the test adds that prices in US dollars, with its own terminal.
const DUTY_FREE: &str = "898310059990001";
const USD_TERMINAL: &str = "30000001";
/// The wallet institution, Panda Pay.
const PANDA_PAY: u32 = 40;

/// The demo world with test keys for both card issuers and terminals 10000001 and 30000001,
/// plus the dollar merchant, its terminal and the acquirer's dollar accounts.
async fn world_on(backend: store::testing::TestBackend) -> World {
    let store = Arc::new(Store::open(&backend.backend).await.unwrap());
    let hsm = Arc::new(SoftHsm::new(&[0x42; 32]).unwrap());
    let key = |spec: KeySpec, clear: &str, name: String| StoredKey {
        name,
        token: hsm
            .import_clear_key(&spec, &hex::decode(clear).unwrap())
            .unwrap()
            .as_str()
            .to_owned(),
        check_value: "TEST".into(),
    };
    let mut keys = Vec::new();
    for terminal in ["10000001", USD_TERMINAL] {
        keys.push(key(
            KeySpec::terminal_master_key(),
            TEST_TMK,
            demo::terminal_master_key_name(terminal),
        ));
    }
    for issuer in [demo::DEBIT_BANK, demo::CREDIT_ISSUER] {
        keys.push(key(
            KeySpec::issuer_master_key(),
            TEST_IMK,
            format!("issuer/{}/imk-ac", issuer.0),
        ));
        keys.push(key(
            KeySpec::cvk(),
            TEST_IMK,
            format!("issuer/{}/cvk", issuer.0),
        ));
    }
    store.put_keys(keys).await.unwrap();
    demo::seed(&store, hsm.as_ref()).await.unwrap();
    store
        .put_directory(Directory {
            merchants: vec![Merchant {
                id: DUTY_FREE.into(),
                acquirer: demo::ACQUIRER,
                name: "Pudong Duty Free".into(),
                name_zh: "浦东免税店".into(),
                city: "Shanghai".into(),
                mcc: "5309".into(),
                settlement_account: demo::account_id("merchant/898310059990001/USD"),
            }],
            terminals: vec![Terminal {
                id: USD_TERMINAL.into(),
                merchant_id: DUTY_FREE.into(),
                status: "active".into(),
            }],
            ..Directory::default()
        })
        .await
        .unwrap();
    store
        .put_terminal_sessions(vec![demo::terminal_session(USD_TERMINAL)])
        .await
        .unwrap();
    let opened = store
        .create_accounts(vec![
            AccountSpec::new(
                demo::account_id("merchant/898310059990001/USD"),
                demo::ACQUIRER,
                Currency::USD,
                demo::CODE_MERCHANT_PAYABLE,
            ),
            AccountSpec::new(
                demo::acquirer_due_from_issuers(demo::ACQUIRER, Currency::USD),
                demo::ACQUIRER,
                Currency::USD,
                demo::CODE_DUE_FROM_ISSUERS,
            ),
        ])
        .await
        .unwrap();
    assert!(opened.iter().all(Result::is_ok));
    World {
        store,
        hsm,
        _backend: Some(backend),
    }
}

async fn start(
    world: &World,
) -> (
    Client,
    tokio::sync::watch::Sender<bool>,
    Arc<TerminalHandler>,
) {
    let record = |merchant: &str, payable: &str| TerminalRecord {
        merchant_id: merchant.into(),
        active: true,
        acquirer: demo::ACQUIRER,
        merchant_payable: demo::account_id(payable),
        mcc: 0,
    };
    let terminals = HashMap::from([
        (
            "10000001".to_owned(),
            record(SHANGHAI, "merchant/898310058120001"),
        ),
        (
            USD_TERMINAL.to_owned(),
            record(DUTY_FREE, "merchant/898310059990001/USD"),
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
    tokio::spawn(listener.serve(handler.clone(), stopped));
    let client = Client::connect(address, LengthPrefix::Binary2, TIMEOUT)
        .await
        .unwrap();
    (client, stop, handler)
}

/// Terminal `terminal` signs on: its clear PIN and MAC working keys.
async fn sign_on(client: &mut Client, terminal: &str, merchant: &str) -> (TdesKey, TdesKey) {
    let answer = cup()
        .unpack(
            &client
                .exchange(
                    &frame(
                        "0800",
                        &[
                            (11, "000001"),
                            (41, terminal),
                            (42, merchant),
                            (60, "00000000003"),
                            (63, "001"),
                        ],
                    ),
                    TIMEOUT,
                )
                .await
                .unwrap(),
        )
        .unwrap()
        .into_owned();
    assert_eq!(answer.response_code().unwrap(), "00");
    let keys = answer.get(62).unwrap().to_bytes().to_vec();
    let tmk = TdesKey::new(&hex::decode(TEST_TMK).unwrap()).unwrap();
    let key = |from: usize| {
        paycrypto::session::decrypt_working_key(
            &tmk,
            &paycrypto::session::EncryptedWorkingKey {
                encrypted: keys[from..from + 16].to_vec(),
                check_value: keys[from + 16..from + 20].to_vec(),
            },
        )
        .unwrap()
    };
    (key(0), key(20))
}

/// What the terminal reads of an answer.
struct Seen {
    code: String,
    rrn: String,
    auth_code: String,
}

async fn send(client: &mut Client, request: &[u8]) -> Seen {
    let message = cup()
        .unpack(&client.exchange(request, TIMEOUT).await.unwrap())
        .unwrap()
        .into_owned();
    Seen {
        code: message.response_code().unwrap(),
        rrn: message.rrn().unwrap_or_default(),
        auth_code: message.auth_code().unwrap_or_default(),
    }
}

/// The test's own ledger of the day: one line per approved money movement, as the terminal
/// saw it (issuer, product, currency, MCC, gross change, refund change).
#[derive(Default)]
struct Model {
    lines: Vec<ModelLine>,
}

/// (issuer, product, currency, MCC, gross change, refund change, chargeback change).
type ModelLine = (u32, &'static str, Currency, &'static str, i64, i64, i64);

impl Model {
    fn gross(&mut self, card: &demo::DemoCard, mcc: &'static str, minor: i64) {
        self.push(card, mcc, minor, 0, 0);
    }
    fn refund(&mut self, card: &demo::DemoCard, mcc: &'static str, minor: i64) {
        self.push(card, mcc, 0, minor, 0);
    }
    fn chargeback(&mut self, card: &demo::DemoCard, mcc: &'static str, minor: i64) {
        self.push(card, mcc, 0, 0, minor);
    }
    /// A QR payment (gross) or refund from a Panda Pay wallet in yuan.
    fn wallet(&mut self, mcc: &'static str, gross: i64, refund: i64) {
        self.lines
            .push((PANDA_PAY, "wallet", Currency::CNY, mcc, gross, refund, 0));
    }
    fn push(
        &mut self,
        card: &demo::DemoCard,
        mcc: &'static str,
        gross: i64,
        refund: i64,
        chargeback: i64,
    ) {
        self.lines.push((
            card.card.issuer.0,
            card.card.product.as_str(),
            card.card.currency,
            mcc,
            gross,
            refund,
            chargeback,
        ));
    }
}

/// The approved sale `stan` of `terminal`, as the journal holds it.
async fn sale_record(
    store: &Store,
    terminal: &str,
    stan: i64,
) -> store::accounts::TransactionRecord {
    store
        .transactions(&store::accounts::TransactionFilter {
            terminal_id: Some(terminal.into()),
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .find(|record| record.kind == "Sale" && record.stan == Some(stan))
        .unwrap()
}

/// The cardholder disputes the sale and its issuer charges it back; `reversed`: the merchant
/// answers and the issuer decides for it, which reverses the chargeback. The amount charged
/// back.
async fn charge_back(
    disputes: &aftersale::disputes::Disputes,
    store: &Store,
    terminal: &str,
    stan: i64,
    card_id: &str,
    reversed: bool,
) -> i64 {
    use aftersale::disputes::{Decision, Party, Review};
    let sale = sale_record(store, terminal, stan).await;
    let at = now();
    let (dispute, _) = disputes
        .open(
            &sale,
            Party::Cardholder,
            "cardholder",
            card_id,
            "not_recognised",
            "not me",
            at,
        )
        .await
        .unwrap();
    let dispute = disputes
        .review(
            &sale,
            dispute,
            Party::Issuer,
            "bank",
            Review::ChargeBack,
            "",
            at,
        )
        .await
        .unwrap();
    assert_eq!(dispute.status, "charged_back");
    let amount = dispute.amount_minor;
    if reversed {
        let dispute = disputes
            .answer(dispute, Party::Merchant, "merchant", "the signed slip", at)
            .await
            .unwrap();
        let dispute = disputes
            .decide(
                &sale,
                dispute,
                Party::Issuer,
                "bank",
                Decision::ForMerchant,
                "the slip is signed",
                at,
            )
            .await
            .unwrap();
        assert_eq!(dispute.status, "won_by_merchant");
    }
    amount
}

/// Half-up fee in basis points, for the positive sums of this test.
fn fee(gross: i64, bps: i64) -> i64 {
    (gross * bps + 5_000) / 10_000
}

/// The default schedule's rates, written out again here: (product, MCC) → (MDR, interchange).
fn rates(product: &str, mcc: &str) -> (i64, i64) {
    match (product, mcc) {
        ("wallet", _) => (38, 20),
        ("credit", "5814") => (38, 26),
        ("credit", _) => (60, 45),
        _ => (50, 35),
    }
}

/// A reversal (0400) of `request`, as a terminal sends it when the answer did not come.
fn reversal_of(request: &[u8], keys: &(TdesKey, TdesKey)) -> Vec<u8> {
    edited(request, keys, |message| {
        message.mti = Mti::parse("0400").unwrap();
        for field in [2, 35, 37, 38, 52, 55] {
            message.remove(field);
        }
        message.set_text(39, "98");
    })
}

/// The day: every message the model counts is asserted approved first.
async fn generate_day(
    client: &mut Client,
    store: &Arc<Store>,
    handler: Arc<TerminalHandler>,
) -> Model {
    let mut model = Model::default();
    let keys = sign_on(client, "10000001", SHANGHAI).await;
    let coffee = "5814";
    let d1 = demo_card("card-CH001-D");
    let d2 = demo_card("card-CH002-D");
    let c1 = demo_card("card-CH001-C");
    let c2 = demo_card("card-CH002-C");
    let mut atc: HashMap<String, u16> = HashMap::new();
    let mut next_atc = |card: &demo::DemoCard| {
        let counter = atc.entry(card.card.id.clone()).or_insert(0);
        *counter += 1;
        *counter
    };
    let sale =
        async |client: &mut Client, card: &demo::DemoCard, minor: u64, stan: u32, atc: u16| {
            let request = chip_sale(card, minor, stan, atc, demo::DEMO_PIN, &keys);
            let seen = send(client, &request).await;
            assert_eq!(seen.code, "00", "sale {stan}");
            (request, seen)
        };

    // Sales on debit and credit cards.
    let (_, first) = sale(client, &d1, 12_345, 1, next_atc(&d1)).await;
    model.gross(&d1, coffee, 12_345);
    sale(client, &c1, 88_800, 2, next_atc(&c1)).await;
    model.gross(&c1, coffee, 88_800);
    // A sale and its void.
    let (_, voided) = sale(client, &d2, 5_000, 3, next_atc(&d2)).await;
    model.gross(&d2, coffee, 5_000);
    assert_eq!(
        send(client, &void(&d2, 5_000, 4, 3, &voided.rrn, &keys))
            .await
            .code,
        "00"
    );
    model.gross(&d2, coffee, -5_000);
    // A sale refunded in part.
    let (_, refunded) = sale(client, &c2, 20_000, 5, next_atc(&c2)).await;
    model.gross(&c2, coffee, 20_000);
    let refund = |amount, stan, original, rrn: &str, card: &demo::DemoCard| {
        edited(
            &void(card, amount, stan, original, rrn, &keys),
            &keys,
            |message| {
                message.mti = Mti::parse("0220").unwrap();
                message.set_text(60, "25000001");
            },
        )
    };
    assert_eq!(
        send(client, &refund(7_500, 6, 5, &refunded.rrn, &c2))
            .await
            .code,
        "00"
    );
    model.refund(&c2, coffee, 7_500);
    // A sale whose answer was lost, reversed.
    let (lost, _) = sale(client, &d1, 3_333, 7, next_atc(&d1)).await;
    model.gross(&d1, coffee, 3_333);
    assert_eq!(send(client, &reversal_of(&lost, &keys)).await.code, "00");
    assert_eq!(
        send(client, &reversal_of(&lost, &keys)).await.code,
        "00",
        "a repeat"
    );
    model.gross(&d1, coffee, -3_333);
    // A pre-authorization completed for less than its hold.
    let held = send(
        client,
        &preauthorization(&c1, 50_000, 8, next_atc(&c1), &keys),
    )
    .await;
    assert_eq!(held.code, "00");
    let completed = send(
        client,
        &completion(&c1, 45_678, 9, 8, &held.auth_code, &keys),
    )
    .await;
    assert_eq!(completed.code, "00");
    model.gross(&c1, coffee, 45_678);
    // Another completed, its completion voided, and that void reversed: it stands.
    let held = send(
        client,
        &preauthorization(&d2, 10_000, 10, next_atc(&d2), &keys),
    )
    .await;
    assert_eq!(held.code, "00");
    let completed = send(
        client,
        &completion(&d2, 10_000, 11, 10, &held.auth_code, &keys),
    )
    .await;
    assert_eq!(completed.code, "00");
    model.gross(&d2, coffee, 10_000);
    let completion_void = edited(
        &void(&d2, 10_000, 12, 11, &completed.rrn, &keys),
        &keys,
        |message| {
            message.set_text(25, "06");
            message.set_text(60, "21000001");
        },
    );
    assert_eq!(send(client, &completion_void).await.code, "00");
    model.gross(&d2, coffee, -10_000);
    assert_eq!(
        send(client, &reversal_of(&completion_void, &keys))
            .await
            .code,
        "00"
    );
    model.gross(&d2, coffee, 10_000);
    // A partial refund of the first sale, then a refund reversed.
    assert_eq!(
        send(client, &refund(2_345, 13, 1, &first.rrn, &d1))
            .await
            .code,
        "00"
    );
    model.refund(&d1, coffee, 2_345);
    let (_, other) = sale(client, &c2, 9_900, 14, next_atc(&c2)).await;
    model.gross(&c2, coffee, 9_900);
    let undone = refund(900, 15, 14, &other.rrn, &c2);
    assert_eq!(send(client, &undone).await.code, "00");
    model.refund(&c2, coffee, 900);
    assert_eq!(send(client, &reversal_of(&undone, &keys)).await.code, "00");
    model.refund(&c2, coffee, -900);
    // The refund reversed, the sale is refunded again (the second slot under the sale), and
    // a sale voided, its void reversed and voided again: each follow-up found in its slot.
    assert_eq!(
        send(client, &refund(1_200, 40, 14, &other.rrn, &c2))
            .await
            .code,
        "00"
    );
    model.refund(&c2, coffee, 1_200);
    // Two parts refunded from the console beside the terminal's standing refund: each in a slot
    // of its own after it (parts 2 and 3), found by the number its journal row carries.
    let refunds = aftersale::refunds::Refunds::new(store.clone(), handler.clone());
    let manager = aftersale::refunds::Actor {
        username: "shanghai.admin".into(),
        role: aftersale::refunds::ActorRole::Supervisor,
    };
    let refunded_sale = sale_record(store, "10000001", 14).await;
    for minor in [500, 300] {
        let part = refunds
            .ask(&refunded_sale, &manager, minor, "returned", now())
            .await
            .unwrap();
        assert_eq!(part.status, "refunded", "{part:?}");
        model.refund(&c2, coffee, minor);
    }
    let (_, revoided) = sale(client, &d1, 4_400, 41, next_atc(&d1)).await;
    model.gross(&d1, coffee, 4_400);
    let first_void = void(&d1, 4_400, 42, 41, &revoided.rrn, &keys);
    assert_eq!(send(client, &first_void).await.code, "00");
    assert_eq!(
        send(client, &reversal_of(&first_void, &keys)).await.code,
        "00"
    );
    assert_eq!(
        send(client, &void(&d1, 4_400, 43, 41, &revoided.rrn, &keys))
            .await
            .code,
        "00"
    );
    model.gross(&d1, coffee, -4_400);
    // A pre-authorization that is only held, one reversed, a wrong PIN, and a reversal that
    // overtakes its sale: none of them reaches the merchant.
    assert_eq!(
        send(
            client,
            &preauthorization(&d1, 700, 16, next_atc(&d1), &keys)
        )
        .await
        .code,
        "00"
    );
    let lost_hold = preauthorization(&d1, 800, 17, next_atc(&d1), &keys);
    assert_eq!(send(client, &lost_hold).await.code, "00");
    assert_eq!(
        send(client, &reversal_of(&lost_hold, &keys)).await.code,
        "00"
    );
    let wrong = chip_sale(&d2, 100, 18, next_atc(&d2), "654321", &keys);
    assert_eq!(send(client, &wrong).await.code, "55");
    let late = chip_sale(&d2, 400, 19, next_atc(&d2), demo::DEMO_PIN, &keys);
    assert_eq!(send(client, &reversal_of(&late, &keys)).await.code, "00");
    assert_ne!(
        send(client, &late).await.code,
        "00",
        "a reversed sale never posts"
    );

    // Dollars at the duty-free shop: two sales on the USD credit card, one refunded in part.
    let usd_keys = sign_on(client, USD_TERMINAL, DUTY_FREE).await;
    let duty_free = "5309";
    let u = demo_card("card-CH004-U");
    let in_dollars = |request: Vec<u8>| {
        edited(&request, &usd_keys, |message| {
            message.set_text(41, USD_TERMINAL);
            message.set_text(42, DUTY_FREE);
            message.set_text(49, "840");
        })
    };
    let usd_sale = in_dollars(chip_sale(
        &u,
        12_000,
        1,
        next_atc(&u),
        demo::DEMO_PIN,
        &usd_keys,
    ));
    assert_eq!(send(client, &usd_sale).await.code, "00");
    model.gross(&u, duty_free, 12_000);
    let usd_sale = in_dollars(chip_sale(
        &u,
        4_550,
        2,
        next_atc(&u),
        demo::DEMO_PIN,
        &usd_keys,
    ));
    let seen = send(client, &usd_sale).await;
    assert_eq!(seen.code, "00");
    model.gross(&u, duty_free, 4_550);
    let usd_refund = edited(
        &in_dollars(void(&u, 1_000, 3, 2, &seen.rrn, &usd_keys)),
        &usd_keys,
        |message| {
            message.mti = Mti::parse("0220").unwrap();
            message.set_text(60, "25000001");
        },
    );
    assert_eq!(send(client, &usd_refund).await.code, "00");
    model.refund(&u, duty_free, 1_000);

    // Chargebacks. Two more sales in yuan: one charged back for good, one charged back and
    // then reversed by a decision for the merchant (it nets to nothing).
    let (_, _) = sale(client, &c1, 3_000, 20, next_atc(&c1)).await;
    model.gross(&c1, coffee, 3_000);
    let (_, _) = sale(client, &d1, 6_600, 21, next_atc(&d1)).await;
    model.gross(&d1, coffee, 6_600);
    let disputes = aftersale::disputes::Disputes::new(store.clone(), handler);
    assert_eq!(
        charge_back(&disputes, store, "10000001", 20, "card-CH001-C", false).await,
        3_000
    );
    model.chargeback(&c1, coffee, 3_000);
    assert_eq!(
        charge_back(&disputes, store, "10000001", 21, "card-CH001-D", true).await,
        6_600
    );
    model.chargeback(&d1, coffee, 6_600);
    model.chargeback(&d1, coffee, -6_600);
    // Both dollar sales charged back, the second for what its refund left: the duty-free
    // shop's day nets below zero by its fees.
    assert_eq!(
        charge_back(&disputes, store, USD_TERMINAL, 1, "card-CH004-U", false).await,
        12_000
    );
    model.chargeback(&u, duty_free, 12_000);
    assert_eq!(
        charge_back(&disputes, store, USD_TERMINAL, 2, "card-CH004-U", false).await,
        4_550 - 1_000
    );
    model.chargeback(&u, duty_free, 4_550 - 1_000);

    // QR payments at the coffee shop's terminal from a Panda Pay wallet: two paid, one of them
    // refunded.
    let wallets = wallet::Wallets::new(store.clone(), wallet::WalletConfig::demo());
    wallets
        .open_wallet(wallet::NewWallet {
            id: "W-CH001".into(),
            cardholder_id: "CH001".into(),
            currency: Currency::CNY,
            linked_card_id: Some("card-CH001-D".into()),
            password: "135790".into(),
        })
        .await
        .unwrap();
    wallets
        .top_up("W-CH001", "t1", money::Amount::new(10_000, Currency::CNY))
        .await
        .unwrap();
    for (order, minor) in [("o-1", 1_234), ("o-2", 500)] {
        let created = wallets
            .create_order(wallet::NewOrder {
                order_id: order.into(),
                terminal_id: "10000001".into(),
                amount: money::Amount::new(minor, Currency::CNY),
                timeout_seconds: None,
            })
            .await
            .unwrap();
        wallets
            .pay(&created.payload, "W-CH001", "135790")
            .await
            .unwrap();
        model.wallet(coffee, minor, 0);
    }
    wallets.refund("o-2").await.unwrap();
    model.wallet(coffee, 0, 500);
    model
}

/// A cycle rule whose cut-off is twelve hours from now, so the whole day falls in one cycle.
fn rule_around_now(now: i64) -> CycleRule {
    let offset = 8 * 3_600;
    let local = (now + offset).rem_euclid(86_400);
    let cut_off = ((local + 12 * 3_600) % 86_400) / 60 * 60;
    CycleRule {
        utc_offset_seconds: offset,
        cut_off_seconds: if cut_off == 0 { 86_400 } else { cut_off },
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn balance(world: &World, account: ledger::AccountId) -> i64 {
    let account = world.store.account(account).await.unwrap().unwrap();
    account.credits_posted - account.debits_posted
}

/// Removes one journal row behind the platform's back, as a damaged or tampered journal would.
async fn delete_journal_row(backend: &store::Backend, id: i64) {
    match backend {
        store::Backend::Sqlite { path } => {
            let connection = rusqlite::Connection::open(path).unwrap();
            connection.busy_timeout(TIMEOUT).unwrap();
            assert_eq!(
                connection
                    .execute("DELETE FROM journal WHERE id = ?1", [id])
                    .unwrap(),
                1
            );
        }
        store::Backend::Postgres { url } => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            assert_eq!(
                client
                    .execute("DELETE FROM journal WHERE id = $1", &[&id])
                    .await
                    .unwrap(),
                1
            );
        }
    }
}

async fn a_day_settles_to_the_expected_figures(backend: store::testing::TestBackend) {
    let name = backend.name;
    let world = world_on(backend).await;
    let (mut client, stop, handler) = start(&world).await;
    let begun = now();
    let model = generate_day(&mut client, &world.store, handler).await;
    let mut settings = Settings::parse(clearing::schedule::DEFAULT).unwrap();
    settings.cycle = rule_around_now(begun);
    let date = settings.cycle.date_of(begun);
    assert_eq!(
        settings.cycle.date_of(now()),
        date,
        "{name}: the day is one cycle"
    );
    let window = settings.cycle.window(date);
    let after_cut_off = window.end_us / 1_000_000 + 1;
    let request = Request {
        date,
        now_unix_seconds: after_cut_off,
        rerun: false,
    };
    let store = world.store.as_ref();
    let transfers_before = store.all_transfers().await.unwrap().len();

    // Refusals first; none of them posts anything.
    let still_open = Request {
        now_unix_seconds: now(),
        ..request
    };
    assert!(matches!(
        clearing::run(store, &settings, &still_open, &mut |_| {}).await,
        Err(ClearingError::StillOpen { .. })
    ));
    let mut no_credit = settings.clone();
    no_credit
        .fees
        .mdr
        .retain(|rate| rate.product.as_str() == "debit");
    let refused = clearing::run(store, &no_credit, &request, &mut |_| {}).await;
    assert!(
        matches!(
            &refused,
            Err(ClearingError::NoFee {
                kind: "mdr",
                product: "credit",
                ..
            })
        ),
        "{name}: {refused:?}"
    );
    assert_eq!(store.all_transfers().await.unwrap().len(), transfers_before);
    assert!(
        clearing::post::record_of(store, date)
            .await
            .unwrap()
            .is_none()
    );

    // The cycle settles.
    let mut stages = Vec::new();
    let outcome = clearing::run(store, &settings, &request, &mut |stage| stages.push(stage))
        .await
        .unwrap();
    assert!(!stages.is_empty(), "progress is reported");
    assert!(
        // Per counterparty, transactions and interchange, except the dollar issuer's
        // transactions, which net to zero (7); per merchant, MDR and a payout (yuan) or a carry
        // (dollars) (4).
        matches!(outcome.status, Status::Posted { transfers: 11 }),
        "{name}: {:?}",
        outcome.status
    );
    let settlement = &outcome.settlement;
    assert!(
        settlement.breaks.is_empty(),
        "{name}: {:?}",
        settlement.breaks
    );

    // The figures, recomputed from the model.
    let sum = |filter: &dyn Fn(&ModelLine) -> bool| {
        let lines: Vec<_> = model.lines.iter().filter(|line| filter(line)).collect();
        (
            lines.iter().map(|line| line.4).sum::<i64>(),
            lines.iter().map(|line| line.5).sum::<i64>(),
            lines.iter().map(|line| line.6).sum::<i64>(),
        )
    };
    for merchant in &settlement.merchants {
        let mcc = if merchant.merchant_id == SHANGHAI {
            "5814"
        } else {
            "5309"
        };
        let mut fees = 0;
        let mut gross_total = 0;
        let mut refunds_total = 0;
        let mut chargebacks_total = 0;
        for product in ["debit", "credit", "wallet"] {
            let (gross, refunds, chargebacks) =
                sum(&|line| line.1 == product && line.2 == merchant.currency && line.3 == mcc);
            fees += fee(gross, rates(product, mcc).0);
            gross_total += gross;
            refunds_total += refunds;
            chargebacks_total += chargebacks;
        }
        assert_eq!(
            merchant.gross.minor(),
            gross_total,
            "{name}: {}",
            merchant.merchant_id
        );
        assert_eq!(merchant.refunds.minor(), refunds_total);
        assert_eq!(merchant.chargebacks.minor(), chargebacks_total);
        assert_eq!(merchant.fees.minor(), fees);
        let net = gross_total - refunds_total - chargebacks_total - fees;
        assert_eq!(
            (
                merchant.net.minor(),
                merchant.payout.minor(),
                merchant.carried_out.minor()
            ),
            (net, net.max(0), (-net).max(0)),
            "{name}: {}",
            merchant.merchant_id
        );
        assert_eq!(merchant.carried_in.minor(), 0, "nothing owed before");
        // What is not paid is owed by the merchant, in its own account.
        assert_eq!(
            -balance(
                &world,
                clearing::chart::due_from_merchant(
                    demo::ACQUIRER,
                    &merchant.merchant_id,
                    merchant.currency
                )
            )
            .await,
            (-net).max(0)
        );
        // The payable is paid out whole: the merchant's day ends at zero.
        assert_eq!(
            balance(&world, merchant.account).await,
            0,
            "{name}: {}",
            merchant.merchant_id
        );
    }
    assert_eq!(
        settlement
            .merchants
            .iter()
            .map(|merchant| (
                merchant.merchant_id.as_str(),
                merchant.currency.alpha(),
                merchant.net.minor()
            ))
            .collect::<Vec<_>>(),
        // Written out once, to catch a model and a crate wrong the same way.
        vec![(SHANGHAI, "CNY", 181_924), (DUTY_FREE, "USD", -99)]
    );
    for party in &settlement.counterparties {
        let mut interchange = 0;
        for (product, mcc) in [
            ("debit", "5814"),
            ("credit", "5814"),
            ("credit", "5309"),
            ("wallet", "5814"),
        ] {
            let (gross, _, _) = sum(&|line| {
                line.0 == party.issuer.0
                    && line.1 == product
                    && line.2 == party.currency
                    && line.3 == mcc
            });
            interchange += fee(gross, rates(product, mcc).1);
        }
        let (gross, refunds, chargebacks) =
            sum(&|line| line.0 == party.issuer.0 && line.2 == party.currency);
        assert_eq!(
            (
                party.gross.minor(),
                party.refunds.minor(),
                party.chargebacks.minor(),
                party.interchange.minor()
            ),
            (gross, refunds, chargebacks, interchange),
            "{name}: issuer {} {}",
            party.issuer.0,
            party.currency.alpha()
        );
        assert_eq!(
            party.net.minor(),
            gross - refunds - chargebacks - interchange
        );
        let due =
            clearing::chart::due_from_counterparty(demo::ACQUIRER, party.issuer, party.currency);
        assert_eq!(
            -balance(&world, due).await,
            party.net.minor(),
            "the net position is booked"
        );
    }
    assert_eq!(
        settlement.counterparties.len(),
        4,
        "debit bank CNY, credit issuer CNY and USD, Panda Pay CNY"
    );
    for currency in [Currency::CNY, Currency::USD] {
        let pooled = demo::acquirer_due_from_issuers(demo::ACQUIRER, currency);
        assert_eq!(
            balance(&world, pooled).await,
            0,
            "{name}: cleared out of the pool"
        );
    }
    store.check_books().await.unwrap();

    // Reports: every row as wide as its header, a statement per merchant, a file per issuer.
    let out = store::testing::tempdir::TempDir::new();
    let written = clearing::report::write_all(&settings.cycle, &outcome, out.path()).unwrap();
    assert_eq!(
        written.len(),
        2 * 2 + 4 + 1 + 1,
        "statements (CSV and PDF), clearing files, reconciliation, batches"
    );
    for path in written
        .iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "pdf"))
    {
        let bytes = std::fs::read(path).unwrap();
        assert!(bytes.starts_with(b"%PDF-1.4"), "{}", path.display());
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("SETTLEMENT STATEMENT") && text.contains("Payout"));
        assert!(!text.contains(&demo_card("card-CH001-D").pan));
    }
    for path in written
        .iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "csv"))
    {
        let text = std::fs::read_to_string(path).unwrap();
        let width = text.lines().next().unwrap().split(',').count();
        for line in text.lines().filter(|line| !line.contains('"')) {
            assert_eq!(line.split(',').count(), width, "{}: {line}", path.display());
        }
        assert!(
            !text.contains(&demo_card("card-CH001-D").pan),
            "no card number in clear"
        );
    }

    // Kept for the console: a merchant's staff see only its statements.
    clearing::report::keep(store, &settings.cycle, &outcome, after_cut_off)
        .await
        .unwrap();
    let day = clearing::cycle::format_date(date);
    let everyone = store::settlement_reports::ReportQuery::default();
    let all = store.settlement_reports_of(&day, &everyone).await.unwrap();
    assert_eq!(all.len(), written.len(), "{name}");
    let duty_free = store::settlement_reports::ReportQuery {
        merchants: Some(vec![DUTY_FREE.to_owned()]),
    };
    let own = store.settlement_reports_of(&day, &duty_free).await.unwrap();
    assert_eq!(
        own.iter()
            .map(|report| report.name.as_str())
            .collect::<Vec<_>>(),
        vec![
            format!("statement-{DUTY_FREE}-USD-{day}.csv"),
            format!("statement-{DUTY_FREE}-USD-{day}.pdf")
        ],
        "{name}"
    );
    assert_eq!(
        store.settlement_dates(&duty_free).await.unwrap(),
        vec![day.clone()]
    );
    let pdf = store
        .settlement_report(&day, &own[1].name, &duty_free)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        pdf.content,
        std::fs::read(out.path().join(&own[1].name)).unwrap()
    );
    assert!(
        store
            .settlement_report(&day, &format!("reconciliation-{day}.csv"), &duty_free)
            .await
            .unwrap()
            .is_none(),
        "{name}: not the acquirer's reports"
    );

    // Closed: a second run is refused, a rerun changes nothing.
    let accounts = store.all_accounts().await.unwrap();
    let transfers = store.all_transfers().await.unwrap().len();
    assert!(matches!(
        clearing::run(store, &settings, &request, &mut |_| {}).await,
        Err(ClearingError::AlreadyClosed { .. })
    ));
    let rerun = Request {
        rerun: true,
        ..request
    };
    let again = clearing::run(store, &settings, &rerun, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        again.status,
        Status::Rerun {
            differences: Vec::new()
        },
        "{name}"
    );
    assert_eq!(store.all_accounts().await.unwrap(), accounts);
    assert_eq!(store.all_transfers().await.unwrap().len(), transfers);

    // A journal row lost: its sale's transfer is a break, and the rerun says the figures moved.
    let rows = store
        .transactions(&store::accounts::TransactionFilter {
            terminal_id: Some("10000001".into()),
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    let row = rows
        .iter()
        .find(|row| row.kind == "Sale" && row.stan == Some(2))
        .unwrap();
    delete_journal_row(&world._backend.as_ref().unwrap().backend, row.id).await;
    // And an approved sale journaled that the ledger never saw.
    store
        .journal(vec![store::journal::JournalEntry {
            received_at: row.received_at,
            terminal_id: "10000001".into(),
            merchant_id: SHANGHAI.into(),
            mti: "0200".into(),
            kind: "Sale".into(),
            batch: Some(1),
            stan: Some(98),
            amount_minor: Some(4_242),
            currency: Some(156),
            card: Some(demo_card("card-CH001-D").card.masked_pan()),
            response: Some("00".into()),
            ..Default::default()
        }])
        .await
        .unwrap();
    let phantom = acquirer::effects::BusinessKey {
        terminal_id: "10000001".into(),
        batch: 1,
        stan: 98,
    }
    .transfer_id("sale/acquirer");
    let damaged = clearing::run(store, &settings, &rerun, &mut |_| {})
        .await
        .unwrap();
    let sale = acquirer::effects::BusinessKey {
        terminal_id: "10000001".into(),
        batch: 1,
        stan: 2,
    }
    .transfer_id("sale/acquirer");
    assert_eq!(
        damaged
            .settlement
            .breaks
            .iter()
            .map(|found| (found.kind, found.transfer))
            .collect::<Vec<_>>(),
        vec![
            (BreakKind::NotInLedger, Some(phantom)),
            (BreakKind::NotInJournal, Some(sale))
        ],
        "{name}"
    );
    let report = clearing::report::reconciliation(&damaged.settlement);
    assert!(report.contains("transfer_not_in_journal"), "{report}");
    assert!(report.contains("approved_not_in_ledger"), "{report}");
    assert!(report.contains(&format!("{:032x}", sale.0)), "{report}");
    assert!(matches!(&damaged.status, Status::Rerun { differences } if !differences.is_empty()));
    assert_eq!(
        store.all_accounts().await.unwrap(),
        accounts,
        "a rerun posts nothing"
    );
    let _ = stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_settles_on_sqlite() {
    a_day_settles_to_the_expected_figures(store::testing::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_settles_on_postgres() {
    if let Some(url) = store::testing::postgres_url() {
        a_day_settles_to_the_expected_figures(store::testing::postgres(&url).await).await;
    }
}
