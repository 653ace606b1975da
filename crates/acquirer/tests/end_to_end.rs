#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A terminal's day, end to end, over TCP on loopback, on every backend: sign-on, balance
//! inquiry, chip sale with PIN, void, magstripe sale, refund, pre-authorization, completion, a
//! sale whose answer is lost and its reversal, the decline paths, and batch settlement with
//! totals that match the host's. Each step checks the response code and the books.

mod common;

use acquirer::settlement::Totals;
use common::*;

const MERCHANT: &str = "merchant/898310058120001";

/// What a terminal sees of an answer.
struct Seen {
    mti: String,
    code: String,
    rrn: String,
    auth_code: String,
    message: Message<'static>,
}

async fn send(client: &mut Client, request: &[u8]) -> Seen {
    let reply = client.exchange(request, TIMEOUT).await.unwrap();
    let message = cup().unpack(&reply).unwrap().into_owned();
    Seen {
        mti: message.mti.as_str().to_owned(),
        code: message.response_code().unwrap(),
        rrn: message.rrn().unwrap_or_default(),
        auth_code: message.auth_code().unwrap_or_default(),
        message,
    }
}

/// The merchant's takings: what the acquirer owes it.
async fn takings(world: &World) -> i64 {
    let account = world
        .store
        .account(demo::account_id(MERCHANT))
        .await
        .unwrap()
        .unwrap();
    account.credits_posted - account.debits_posted
}

async fn pin_failures(world: &World, card: &demo::DemoCard) -> i64 {
    world
        .store
        .issuer_card(&card.card.id)
        .await
        .unwrap()
        .unwrap()
        .pin_failures
}

/// A terminal's day: `cards` keeps the issuers' books (card balances, card state),
/// `acquirer` the acquirer's (merchant takings, journal, terminal session) — the same world
/// when the issuers are in-process.
async fn a_terminals_day(
    name: &str,
    cards: &World,
    acquirer: &World,
    client: &mut Client,
    handler: &TerminalHandler,
) {
    let card = demo_card("card-CH001-D");
    let opening = available(cards, &card).await;

    // Sign-on: working keys for the day, batch 1.
    let keys = signed_on(client).await;

    // Balance inquiry: the card and PIN are checked, nothing moves.
    let inquiry = edited(
        &chip_sale(&card, 0, 1, 1, demo::DEMO_PIN, &keys),
        &keys,
        |message| {
            message.remove(4);
            message.set_text(3, "310000");
            message.set_text(60, "01000001");
        },
    );
    let seen = send(client, &inquiry).await;
    assert_eq!((seen.mti.as_str(), seen.code.as_str()), ("0210", "00"));
    assert_eq!(
        seen.message.get(54).unwrap().to_text(),
        format!("1002156C{opening:012}"),
        "{name}: the available balance"
    );

    // Chip sale with PIN, then its void.
    let sale = send(
        client,
        &chip_sale(&card, 1_200, 2, 2, demo::DEMO_PIN, &keys),
    )
    .await;
    assert_eq!((sale.mti.as_str(), sale.code.as_str()), ("0210", "00"));
    assert_eq!(available(cards, &card).await, opening - 1_200);
    assert_eq!(takings(acquirer).await, 1_200);
    let voided = send(client, &void(&card, 1_200, 3, 2, &sale.rrn, &keys)).await;
    assert_eq!(voided.code, "00", "{name}: void");
    assert_eq!(available(cards, &card).await, opening);
    assert_eq!(takings(acquirer).await, 0);

    // Magstripe sale (after a failed chip read), then a partial refund.
    let swiped = send(client, &swipe(&card, 500, 4, "801", &keys)).await;
    assert_eq!(swiped.code, "00", "{name}: magstripe sale");
    let refund = refund(&card, 200, 5, 4, &swiped.rrn, &keys);
    let refunded = send(client, &refund).await;
    assert_eq!(
        (refunded.mti.as_str(), refunded.code.as_str()),
        ("0230", "00")
    );
    assert_eq!(available(cards, &card).await, opening - 300);
    assert_eq!(takings(acquirer).await, 300);

    // Pre-authorization of 3 000.00 held, completed for 2 500.00.
    let held = send(client, &preauthorization(&card, 3_000, 6, 3, &keys)).await;
    assert_eq!((held.mti.as_str(), held.code.as_str()), ("0110", "00"));
    assert_eq!(available(cards, &card).await, opening - 3_300);
    let completed = send(
        client,
        &completion(&card, 2_500, 7, 6, &held.auth_code, &keys),
    )
    .await;
    assert_eq!(completed.code, "00", "{name}: completion");
    assert_eq!(available(cards, &card).await, opening - 2_800);
    assert_eq!(takings(acquirer).await, 2_800);

    // A sale whose answer is lost: the terminal sends it again (a duplicate, answered the
    // same), then gives up and reverses it, twice.
    let lost = chip_sale(&card, 800, 8, 4, demo::DEMO_PIN, &keys);
    let first = send(client, &lost).await;
    let again = send(client, &lost).await;
    assert_eq!(
        (again.code.as_str(), again.rrn.as_str()),
        ("00", first.rrn.as_str()),
        "{name}: a duplicate gets the original answer"
    );
    assert_eq!(
        available(cards, &card).await,
        opening - 3_600,
        "posted once"
    );
    let reversal = edited(&lost, &keys, |message| {
        message.mti = Mti::parse("0400").unwrap();
        for field in [2, 52, 55] {
            message.remove(field);
        }
        message.set_text(39, "98");
    });
    assert_eq!(send(client, &reversal).await.code, "00");
    let repeat = edited(&reversal, &keys, |message| {
        message.mti = Mti::parse("0401").unwrap();
    });
    let repeated = send(client, &repeat).await;
    assert_eq!(
        (repeated.mti.as_str(), repeated.code.as_str()),
        ("0411", "00")
    );
    assert_eq!(
        available(cards, &card).await,
        opening - 2_800,
        "undone once"
    );
    assert_eq!(takings(acquirer).await, 2_800);

    // Declines. A wrong PIN three times: 55, 55, 75 — a duplicate of a wrong-PIN message
    // is answered without counting another try.
    let other = demo_card("card-CH002-D");
    let wrong = chip_sale(&other, 100, 9, 1, "654321", &keys);
    assert_eq!(send(client, &wrong).await.code, "55");
    assert_eq!(send(client, &wrong).await.code, "55");
    assert_eq!(pin_failures(cards, &other).await, 1, "{name}: one try");
    assert_eq!(
        send(client, &chip_sale(&other, 100, 10, 2, "654321", &keys))
            .await
            .code,
        "55"
    );
    assert_eq!(
        send(client, &chip_sale(&other, 100, 11, 3, "654321", &keys))
            .await
            .code,
        "75"
    );
    let poor = demo_card("card-CH003-D");
    assert_eq!(
        send(
            client,
            &chip_sale(&poor, 90_000, 12, 1, demo::DEMO_PIN, &keys)
        )
        .await
        .code,
        "51",
        "{name}: insufficient funds"
    );
    let expired = demo_card("card-CH005-X");
    assert_eq!(
        send(
            client,
            &chip_sale(&expired, 100, 13, 1, demo::DEMO_PIN, &keys)
        )
        .await
        .code,
        "54",
        "{name}: expired card"
    );
    let blocked = demo_card("card-CH005-B");
    assert_eq!(
        send(
            client,
            &chip_sale(&blocked, 100, 14, 1, demo::DEMO_PIN, &keys)
        )
        .await
        .code,
        "62",
        "{name}: blocked card"
    );
    assert_eq!(
        send(client, &chip_sale(&card, 100, 15, 4, demo::DEMO_PIN, &keys))
            .await
            .code,
        "05",
        "{name}: a replayed cryptogram (ATC 4 was used)"
    );
    let mut forged = chip_sale(&card, 100, 16, 5, demo::DEMO_PIN, &keys);
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    assert_eq!(send(client, &forged).await.code, "A0", "{name}: MAC");
    assert_eq!(available(cards, &card).await, opening - 2_800);
    assert_eq!(takings(acquirer).await, 2_800);

    // Batch settlement: the terminal's totals against the host's. Debits: the chip sale,
    // the magstripe sale and the completion; credits: the void and the refund. The lost
    // sale was reversed and is not counted.
    let totals = Totals {
        debit_minor: 1_200 + 500 + 2_500,
        debit_count: 3,
        credit_minor: 1_200 + 200,
        credit_count: 2,
    };
    let wrong_totals = Totals {
        debit_count: 4,
        ..totals
    };
    let disagree = send(client, &settlement(17, &wrong_totals)).await;
    assert_eq!(
        (disagree.mti.as_str(), disagree.code.as_str()),
        ("0510", "00")
    );
    let field48 = disagree.message.get(48).unwrap().to_text();
    assert_eq!(&field48[30..31], "2", "{name}: totals disagree");
    let agree = send(client, &settlement(18, &totals)).await;
    let field48 = agree.message.get(48).unwrap().to_text();
    assert_eq!(
        (&field48[30..31], &field48[61..62]),
        ("1", "1"),
        "{name}: totals agree"
    );
    let session = acquirer
        .store
        .terminal_session("10000001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.batch, 2, "{name}: the batch is closed");

    // The journal has every message, with the card numbers masked.
    let journal = acquirer
        .store
        .journal_of("10000001", 1, None)
        .await
        .unwrap();
    assert_eq!(
        journal.len(),
        22,
        "{name}: one entry per message of batch 1"
    );
    assert!(
        journal
            .iter()
            .filter_map(|entry| entry.card.as_deref())
            .all(|card| card.contains("******")),
        "{name}: masked card numbers"
    );
    assert!(
        handler
            .counters
            .duplicates
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminals_day_from_sign_on_to_batch_settlement() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    for backend in store::testing::backends().await {
        let name = backend.name;
        let sqlite_dir = match &backend.backend {
            store::Backend::Sqlite { path } => path.parent().map(|dir| dir.to_path_buf()),
            store::Backend::Postgres { .. } => None,
        };
        let world = world_on(backend).await;
        let (mut client, stop, server, handler) = start(&world).await;
        a_terminals_day(name, &world, &world, &mut client, &handler).await;
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
        if let Some(dir) = sqlite_dir {
            assert_no_card_number_in(&dir);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_day_with_a_remote_issuer_host_over_iso87_ascii() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    for (issuer_backend, acquirer_backend) in store::testing::backends()
        .await
        .into_iter()
        .zip(store::testing::backends().await)
    {
        let name = issuer_backend.name;
        let directories: Vec<std::path::PathBuf> = [&issuer_backend, &acquirer_backend]
            .iter()
            .filter_map(|backend| match &backend.backend {
                store::Backend::Sqlite { path } => path.parent().map(|dir| dir.to_path_buf()),
                store::Backend::Postgres { .. } => None,
            })
            .collect();
        let mut pair = RemotePair::start(issuer_backend, acquirer_backend).await;
        a_terminals_day(
            name,
            &pair.issuer,
            &pair.acquirer,
            &mut pair.client,
            &pair.handler,
        )
        .await;
        let card = demo_card("card-CH001-D");
        assert_eq!(
            available(&pair.acquirer, &card).await,
            card.opening_minor,
            "{name}: the acquirer keeps no issuer books"
        );
        for dir in directories {
            assert_no_card_number_in(&dir);
        }
        pair.stop().await;
    }
}

/// No demo card number, in clear, in any file of the database directory.
fn assert_no_card_number_in(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for demo in demo::cards() {
            assert!(
                !bytes
                    .windows(demo.pan.len())
                    .any(|window| window == demo.pan.as_bytes()),
                "a card number in clear in the database"
            );
        }
    }
}

/// Reversals of every follow-up, with the card's books in `cards`.
async fn reversals_of_every_follow_up(name: &str, cards: &World, client: &mut Client) {
    let keys = signed_on(client).await;
    let card = demo_card("card-CH001-D");
    let opening = available(cards, &card).await;
    let reversal_of = |request: &[u8]| common::reversal_of(request, "0400", &keys);

    // A void whose answer was lost: its reversal puts the sale back.
    let sale = send(
        client,
        &chip_sale(&card, 1_000, 20, 1, demo::DEMO_PIN, &keys),
    )
    .await;
    let sale_void = void(&card, 1_000, 21, 20, &sale.rrn, &keys);
    assert_eq!(send(client, &sale_void).await.code, "00");
    assert_eq!(available(cards, &card).await, opening);
    assert_eq!(send(client, &reversal_of(&sale_void)).await.code, "00");
    assert_eq!(
        available(cards, &card).await,
        opening - 1_000,
        "{name}: the void is undone"
    );
    assert_eq!(send(client, &reversal_of(&sale_void)).await.code, "00");
    assert_eq!(available(cards, &card).await, opening - 1_000, "once");
    // Voided again under a new trace number (the next slot), and that void reversed too.
    let again = void(&card, 1_000, 32, 20, &sale.rrn, &keys);
    assert_eq!(
        send(client, &again).await.code,
        "00",
        "{name}: voided again"
    );
    assert_eq!(available(cards, &card).await, opening);
    assert_eq!(send(client, &reversal_of(&again)).await.code, "00");
    assert_eq!(available(cards, &card).await, opening - 1_000);

    // A refund likewise.
    let sale = send(client, &chip_sale(&card, 700, 22, 2, demo::DEMO_PIN, &keys)).await;
    let refund = refund(&card, 300, 23, 22, &sale.rrn, &keys);
    assert_eq!(send(client, &refund).await.code, "00");
    assert_eq!(available(cards, &card).await, opening - 1_400);
    assert_eq!(send(client, &reversal_of(&refund)).await.code, "00");
    assert_eq!(available(cards, &card).await, opening - 1_700);

    // A completion, voided; the completion void reversed; then the completion reversed.
    let held = send(client, &preauthorization(&card, 2_000, 24, 3, &keys)).await;
    assert_eq!(held.code, "00");
    let completion = completion(&card, 1_500, 25, 24, &held.auth_code, &keys);
    let completed = send(client, &completion).await;
    assert_eq!(completed.code, "00");
    assert_eq!(available(cards, &card).await, opening - 3_200);
    let completion_void = completion_void(&card, 1_500, 26, 25, &completed.rrn, &keys);
    assert_eq!(
        send(client, &completion_void).await.code,
        "00",
        "{name}: completion void"
    );
    assert_eq!(available(cards, &card).await, opening - 1_700);
    assert_eq!(send(client, &completion_void).await.code, "00", "a repeat");
    assert_eq!(available(cards, &card).await, opening - 1_700);
    assert_eq!(
        send(client, &reversal_of(&completion_void)).await.code,
        "00"
    );
    assert_eq!(available(cards, &card).await, opening - 3_200);
    assert_eq!(send(client, &reversal_of(&completion)).await.code, "00");
    assert_eq!(
        available(cards, &card).await,
        opening - 3_700,
        "{name}: the completion is undone, and the pre-authorization holds again"
    );
    // Completed again (a cashier does, when the completion's answer was lost), that completion
    // voided; the pre-authorization voided then releases the hold once.
    let completion = common::completion(&card, 2_000, 51, 24, &held.auth_code, &keys);
    let completed = send(client, &completion).await;
    assert_eq!(completed.code, "00", "{name}: completed again");
    assert_eq!(available(cards, &card).await, opening - 3_700);
    assert_eq!(send(client, &reversal_of(&completion)).await.code, "00");
    assert_eq!(send(client, &reversal_of(&completion)).await.code, "00");
    assert_eq!(
        available(cards, &card).await,
        opening - 3_700,
        "{name}: reversed again, held again, once"
    );
    let release = preauthorization_void(&card, 2_000, 52, 24, &held.rrn, &keys);
    assert_eq!(send(client, &release).await.code, "00", "{name}: released");
    assert_eq!(send(client, &release).await.code, "00", "{name}: a repeat");
    assert_eq!(available(cards, &card).await, opening - 1_700);
    assert_ne!(
        send(
            client,
            &common::completion(&card, 2_000, 53, 24, &held.auth_code, &keys)
        )
        .await
        .code,
        "00",
        "{name}: a released hold is not completed"
    );
    assert_eq!(available(cards, &card).await, opening - 1_700);

    // A pre-authorization whose answer was lost: its reversal releases the hold.
    let lost = preauthorization(&card, 900, 27, 4, &keys);
    assert_eq!(send(client, &lost).await.code, "00");
    assert_eq!(available(cards, &card).await, opening - 2_600);
    assert_eq!(send(client, &reversal_of(&lost)).await.code, "00");
    assert_eq!(available(cards, &card).await, opening - 1_700);
    assert_eq!(send(client, &reversal_of(&lost)).await.code, "00");
    assert_eq!(available(cards, &card).await, opening - 1_700);
    // A reversal that overtakes its pre-authorization: the late hold never takes.
    let late = preauthorization(&card, 400, 28, 5, &keys);
    assert_eq!(send(client, &reversal_of(&late)).await.code, "00");
    assert_ne!(send(client, &late).await.code, "00");
    assert_eq!(available(cards, &card).await, opening - 1_700);

    // A reversal that overtakes a completion marks its slot: the late completion is refused as
    // a late sale is, and another completion (a new trace number) completes the hold, once.
    let held = send(client, &preauthorization(&card, 600, 29, 6, &keys)).await;
    assert_eq!(held.code, "00");
    assert_eq!(available(cards, &card).await, opening - 2_300);
    let late = common::completion(&card, 600, 30, 29, &held.auth_code, &keys);
    assert_eq!(send(client, &reversal_of(&late)).await.code, "00");
    assert_eq!(
        send(client, &late).await.code,
        "94",
        "{name}: a completion after its reversal"
    );
    assert_eq!(available(cards, &card).await, opening - 2_300);
    let again = common::completion(&card, 500, 31, 29, &held.auth_code, &keys);
    assert_eq!(
        send(client, &again).await.code,
        "00",
        "{name}: the hold completed by another completion"
    );
    assert_eq!(available(cards, &card).await, opening - 2_200);
    assert_eq!(
        send(client, &late).await.code,
        "94",
        "{name}: still refused"
    );
    assert_eq!(available(cards, &card).await, opening - 2_200);
}

#[tokio::test(flavor = "multi_thread")]
async fn reversals_undo_voids_refunds_completions_and_completion_voids_once() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let (mut client, stop, server, _handler) = start(&world).await;
        reversals_of_every_follow_up(name, &world, &mut client).await;
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_reversals_with_a_remote_issuer_host() {
    for (issuer_backend, acquirer_backend) in store::testing::backends()
        .await
        .into_iter()
        .zip(store::testing::backends().await)
    {
        let name = issuer_backend.name;
        let mut pair = RemotePair::start(issuer_backend, acquirer_backend).await;
        reversals_of_every_follow_up(name, &pair.issuer, &mut pair.client).await;
        assert_eq!(
            takings(&pair.acquirer).await,
            1_000 + 700 + 500,
            "{name}: the acquirer's books follow: the two sales stand (their voids and refund \
             were reversed), the first completion was reversed, the last hold's second \
             completion stands (its first was marked)"
        );
        pair.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_issuer_that_cannot_be_reached_gets_91_and_the_reversal_once_it_is_back() {
    for (issuer_backend, acquirer_backend) in store::testing::backends()
        .await
        .into_iter()
        .zip(store::testing::backends().await)
    {
        let name = issuer_backend.name;
        let issuer = world_on(issuer_backend).await;
        let acquirer = world_sharing_keys(acquirer_backend, &issuer).await;
        // A port nobody listens on yet.
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let (mut client, stop, server, handler) =
            start_configured(&acquirer, Limits::default(), |handler| {
                remote_issuers(handler, address).with_reversal_grace(Duration::ZERO)
            })
            .await;
        let keys = signed_on(&mut client).await;
        let card = demo_card("card-CH001-D");
        let opening = available(&issuer, &card).await;
        let sale = chip_sale(&card, 900, 50, 1, demo::DEMO_PIN, &keys);
        assert_eq!(send(&mut client, &sale).await.code, "91", "{name}");
        assert_eq!(acquirer.store.all_reversals().await.unwrap().len(), 1);
        // While the issuer is away the reversal waits in the queue.
        assert_eq!(handler.forward_reversals().await.unwrap(), 0);
        assert_eq!(takings(&acquirer).await, 0);

        // The issuer comes up on that address: the reversal goes through, and the sale can
        // never post there afterwards.
        let issuer_handler = Arc::new(TerminalHandler::issuer(
            issuer.store.clone(),
            issuer.hsm.clone(),
        ));
        let listener = Listener::bind(address, LengthPrefix::Binary2, Limits::default())
            .await
            .unwrap();
        let (issuer_stop, stopped) = tokio::sync::watch::channel(false);
        let issuer_server = tokio::spawn(listener.serve(issuer_handler, stopped));
        let mut acknowledged = 0;
        for _ in 0..50 {
            acknowledged += handler.forward_reversals().await.unwrap();
            if acknowledged > 0 {
                break;
            }
            // Each failed attempt backs off: look again a little later.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = acquirer.store.all_reversals().await;
        }
        assert_eq!(acknowledged, 1, "{name}");
        let late = edited(&sale, &keys, |message| message.set_text(11, "000050"));
        assert_ne!(send(&mut client, &late).await.code, "00");
        assert_eq!(available(&issuer, &card).await, opening, "{name}");
        assert_eq!(takings(&acquirer).await, 0);
        issuer.store.check_books().await.unwrap();
        acquirer.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
        let _ = issuer_stop.send(true);
        issuer_server.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_not_decided_in_time_is_answered_96_and_reversed_by_the_host() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let (mut client, stop, server, handler) = start(&world).await;
        let keys = signed_on(&mut client).await;
        let card = demo_card("card-CH001-D");
        let opening = available(&world, &card).await;

        // A second host on the same store that never has time to decide.
        let (mut hurried, hurried_stop, hurried_server, _) =
            start_configured(&world, Limits::default(), |handler| {
                handler
                    .with_answer_within(Duration::ZERO)
                    .with_reversal_grace(Duration::ZERO)
            })
            .await;
        let sale = chip_sale(&card, 1_500, 40, 1, demo::DEMO_PIN, &keys);
        let late = send(&mut hurried, &sale).await;
        assert_eq!((late.mti.as_str(), late.code.as_str()), ("0210", "96"));
        let queued = world.store.all_reversals().await.unwrap();
        assert_eq!(
            queued.len(),
            1,
            "{name}: a reversal is queued before the 96"
        );
        assert_eq!((queued[0].stan, queued[0].amount_minor), (40, 1_500));

        // The host forwards it until acknowledged: nothing stays posted, and the sale can
        // never post later; its retransmission gets the 96 again.
        assert_eq!(handler.forward_reversals().await.unwrap(), 1);
        assert_eq!(
            handler.forward_reversals().await.unwrap(),
            0,
            "{name}: once"
        );
        assert_eq!(send(&mut client, &sale).await.code, "96");
        assert_eq!(available(&world, &card).await, opening);
        let journal = world
            .store
            .journal_of("10000001", 1, Some(40))
            .await
            .unwrap();
        assert!(
            journal.iter().any(|entry| entry.kind == "Reversal"
                && entry.peer == acquirer::STORE_AND_FORWARD_PEER
                && entry.response.as_deref() == Some("00")),
            "{name}: the forwarded reversal is journaled"
        );

        // A sale that did post before its answer was abandoned is undone by the same path.
        let posted = send(
            &mut client,
            &chip_sale(&card, 700, 41, 2, demo::DEMO_PIN, &keys),
        )
        .await;
        assert_eq!(posted.code, "00");
        assert_eq!(available(&world, &card).await, opening - 700);
        world
            .store
            .queue_reversal(store::saf::PendingReversal {
                created_at: 1,
                terminal_id: "10000001".into(),
                merchant_id: "898310058120001".into(),
                batch: 1,
                stan: 41,
                processing_code: "000000".into(),
                condition_code: "00".into(),
                transaction_type: "22".into(),
                amount_minor: 700,
                currency: 156,
                next_attempt_at: 1,
                ..store::saf::PendingReversal::default()
            })
            .await
            .unwrap();
        assert_eq!(handler.forward_reversals().await.unwrap(), 1);
        assert_eq!(available(&world, &card).await, opening, "{name}: undone");
        assert_eq!(
            handler
                .counters
                .reversals_forwarded
                .load(std::sync::atomic::Ordering::Relaxed),
            2
        );
        world.store.check_books().await.unwrap();
        let _ = hurried_stop.send(true);
        hurried_server.await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }
}

/// The daily limit counts purchases that stand: a voided or reversed purchase, or a released
/// hold, gives its day's spend back.
async fn spend_given_back(name: &str, cards: &World, client: &mut Client) {
    let keys = signed_on(client).await;
    // 50 000.00 on the account, a daily limit of 20 000.00.
    let card = demo_card("card-CH004-D");
    let spent = |world: &World| {
        let store = world.store.clone();
        async move {
            store
                .issuer_card("card-CH004-D")
                .await
                .unwrap()
                .unwrap()
                .spent_minor
        }
    };
    let big = 1_500_000;
    let sale = send(client, &chip_sale(&card, big, 60, 1, demo::DEMO_PIN, &keys)).await;
    assert_eq!(sale.code, "00", "{name}");
    assert_eq!(
        send(client, &chip_sale(&card, big, 61, 2, demo::DEMO_PIN, &keys))
            .await
            .code,
        "61",
        "{name}: over the daily limit"
    );
    assert_eq!(
        send(client, &void(&card, big, 62, 60, &sale.rrn, &keys))
            .await
            .code,
        "00"
    );
    assert_eq!(
        spent(cards).await,
        0,
        "{name}: the void gave the spend back"
    );

    let again = chip_sale(&card, big, 63, 3, demo::DEMO_PIN, &keys);
    assert_eq!(send(client, &again).await.code, "00", "{name}");
    let reversal = edited(&again, &keys, |message| {
        message.mti = Mti::parse("0400").unwrap();
        for field in [2, 52, 55] {
            message.remove(field);
        }
        message.set_text(39, "98");
    });
    assert_eq!(send(client, &reversal).await.code, "00");
    assert_eq!(spent(cards).await, 0, "{name}: so did the reversal");

    let held = send(client, &preauthorization(&card, big, 64, 4, &keys)).await;
    assert_eq!(held.code, "00");
    assert_eq!(spent(cards).await, big as i64);
    let release = preauthorization_void(&card, big, 65, 64, &held.rrn, &keys);
    assert_eq!(send(client, &release).await.code, "00");
    assert_eq!(spent(cards).await, 0, "{name}: and the released hold");
    assert_eq!(
        send(client, &chip_sale(&card, big, 66, 5, demo::DEMO_PIN, &keys))
            .await
            .code,
        "00",
        "{name}: the limit is whole again"
    );
    assert_eq!(spent(cards).await, big as i64);
}

#[tokio::test(flavor = "multi_thread")]
async fn voids_reversals_and_released_holds_give_the_days_spend_back() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let (mut client, stop, server, _handler) = start(&world).await;
        spend_given_back(name, &world, &mut client).await;
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }
    // The same at a remote issuer host.
    for (issuer_backend, acquirer_backend) in store::testing::backends()
        .await
        .into_iter()
        .zip(store::testing::backends().await)
    {
        let name = issuer_backend.name;
        let mut pair = RemotePair::start(issuer_backend, acquirer_backend).await;
        spend_given_back(name, &pair.issuer, &mut pair.client).await;
        pair.stop().await;
    }
}
