#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Batch close with batch upload (批结算 / 批上送), on every backend: totals that disagree are
//! answered 2, the terminal uploads its transactions (0320), and the next settlement closes
//! the batch with each difference recorded — a transaction only the terminal has, one only
//! the host has, and one whose amount differs.

mod common;

use acquirer::settlement::Totals;
use common::*;

/// A 0320 of one transaction of batch 1: its type (60.1), trace number, amount and card
/// (field 48: length, first six, last four).
fn upload(
    stan: u32,
    type_code: &str,
    original_stan: u32,
    amount_minor: u64,
    card: &str,
) -> Vec<u8> {
    let stan = format!("{stan:06}");
    let amount = format!("{amount_minor:012}");
    let field60 = format!("{type_code}000001201");
    let field61 = format!("000001{original_stan:06}");
    frame(
        "0320",
        &[
            (4, amount.as_str()),
            (11, stan.as_str()),
            (41, "10000001"),
            (42, "898310058120001"),
            (48, card),
            (49, "156"),
            (60, field60.as_str()),
            (61, field61.as_str()),
        ],
    )
}

async fn reconciliation_code(client: &mut Client, request: &[u8]) -> String {
    let reply = client.exchange(request, TIMEOUT).await.unwrap();
    let message = cup().unpack(&reply).unwrap().into_owned();
    assert_eq!(
        (
            message.mti.as_str(),
            message.response_code().unwrap().as_str()
        ),
        ("0510", "00")
    );
    message.get(48).unwrap().to_text()[30..31].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disagreeing_batch_closes_after_the_upload_with_each_difference_reported() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let (mut client, stop, server, _handler) = start(&world).await;
        let keys = signed_on(&mut client).await;
        let card = demo_card("card-CH001-D");
        let field48 = format!(
            "{:02}{}{}",
            card.pan.len(),
            &card.pan[..6],
            &card.pan[card.pan.len() - 4..]
        );

        // The host approves two sales: trace 1 for 10.00 and trace 2 for 5.00.
        for (stan, atc, amount) in [(1, 1, 1_000), (2, 2, 500)] {
            let (_, code) = ask(
                &mut client,
                &chip_sale(&card, amount, stan, atc, demo::DEMO_PIN, &keys),
            )
            .await;
            assert_eq!(code, "00", "{name}: sale {stan}");
        }
        // The terminal's batch: trace 1 for 11.00 (it differs), trace 3 for 7.00 (the host
        // never saw it), and no trace 2.
        let terminal = Totals {
            debit_minor: 1_100 + 700,
            debit_count: 2,
            ..Totals::default()
        };
        assert_eq!(
            reconciliation_code(&mut client, &settlement(10, &terminal)).await,
            "2",
            "{name}"
        );

        // An upload names its transaction completely, and never carries a whole card number.
        let (_, code) = ask(&mut client, &upload(11, "22", 1, 1_100, &card.pan)).await;
        assert_eq!(code, "30", "{name}: a whole card number in field 48");
        let (_, code) = ask(&mut client, &upload(11, "99", 1, 1_100, &field48)).await;
        assert_eq!(code, "30", "{name}: an unknown transaction type");

        // A partial upload does not explain the totals: still 2, and the round starts again.
        let (_, code) = ask(&mut client, &upload(11, "22", 1, 1_100, &field48)).await;
        assert_eq!(code, "00");
        assert_eq!(
            reconciliation_code(&mut client, &settlement(12, &terminal)).await,
            "2",
            "{name}: partial"
        );
        assert!(
            world
                .store
                .batch_advices("10000001", 1)
                .await
                .unwrap()
                .is_empty(),
            "{name}: a new round"
        );

        for (stan, original, amount) in [(13, 1, 1_100), (14, 3, 700)] {
            let (_, code) = ask(&mut client, &upload(stan, "22", original, amount, &field48)).await;
            assert_eq!(code, "00", "{name}: upload of trace {original}");
        }
        // Repeating an advice replaces it.
        let (_, code) = ask(&mut client, &upload(15, "22", 3, 700, &field48)).await;
        assert_eq!(code, "00");
        assert_eq!(
            reconciliation_code(&mut client, &settlement(16, &terminal)).await,
            "3",
            "{name}: resolved"
        );
        assert_eq!(
            world
                .store
                .terminal_session("10000001")
                .await
                .unwrap()
                .unwrap()
                .batch,
            2,
            "{name}: the batch is closed"
        );
        // A repeat of the settlement that closed it changes nothing.
        assert_eq!(
            reconciliation_code(&mut client, &settlement(16, &terminal)).await,
            "3"
        );

        let closes = world.store.batch_closes(0, i64::MAX).await.unwrap();
        assert_eq!(closes.len(), 1, "{name}: one close");
        let close = &closes[0];
        assert_eq!(
            (
                close.status.as_str(),
                close.batch,
                close.currency,
                close.terminal.debit_minor,
                close.host.debit_minor
            ),
            ("resolved", 1, 156, 1_800, 1_500),
            "{name}"
        );
        let found: Vec<_> = close
            .differences
            .iter()
            .map(|difference| {
                (
                    difference.stan,
                    difference.difference.as_str(),
                    difference.terminal_amount_minor,
                    difference.host_amount_minor,
                    difference
                        .card
                        .as_deref()
                        .is_some_and(|card| card.contains("******")),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                (1, "differs", Some(1_100), Some(1_000), true),
                (2, "host_only", None, Some(500), true),
                (3, "terminal_only", Some(700), None, true),
            ],
            "{name}"
        );
        // Every 0320 is in the journal, its card masked.
        let journal = world.store.journal_of("10000001", 1, None).await.unwrap();
        let uploads: Vec<_> = journal
            .iter()
            .filter(|entry| entry.kind == "BatchUpload")
            .collect();
        assert_eq!(uploads.len(), 6, "{name}");
        assert!(uploads.iter().all(|entry| entry.card.is_none()));
        let _ = stop.send(true);
        server.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn agreeing_totals_close_the_batch_with_no_upload_and_per_type_totals_count() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let (mut client, stop, server, _handler) = start(&world).await;
        let keys = signed_on(&mut client).await;
        let card = demo_card("card-CH001-D");
        let (_, code) = ask(
            &mut client,
            &chip_sale(&card, 1_000, 1, 1, demo::DEMO_PIN, &keys),
        )
        .await;
        assert_eq!(code, "00");
        let totals = Totals {
            debit_minor: 1_000,
            debit_count: 1,
            ..Totals::default()
        };
        // The same debit total, but claimed as a completion: per type, it disagrees.
        let as_completion = acquirer::settlement::SettlementTotals {
            domestic: totals,
            foreign: Totals::default(),
            by_type: Some([("20".to_owned(), (1, 1_000))].into()),
        }
        .format(0, 0);
        let mut request = cup().unpack(&settlement(2, &totals)).unwrap().into_owned();
        request.set_text(48, as_completion);
        let request = cup().pack(&request).unwrap();
        assert_eq!(
            reconciliation_code(&mut client, &request).await,
            "2",
            "{name}: per type"
        );

        let as_sale = acquirer::settlement::SettlementTotals {
            domestic: totals,
            foreign: Totals::default(),
            by_type: Some([("22".to_owned(), (1, 1_000))].into()),
        }
        .format(0, 0);
        let mut request = cup().unpack(&settlement(3, &totals)).unwrap().into_owned();
        request.set_text(48, as_sale);
        let request = cup().pack(&request).unwrap();
        assert_eq!(
            reconciliation_code(&mut client, &request).await,
            "1",
            "{name}: agreed"
        );
        let closes = world.store.batch_closes(0, i64::MAX).await.unwrap();
        assert_eq!(
            closes
                .iter()
                .map(|close| (close.status.as_str(), close.differences.len()))
                .collect::<Vec<_>>(),
            [("agreed", 0)],
            "{name}"
        );
        let _ = stop.send(true);
        server.await.unwrap();
    }
}
