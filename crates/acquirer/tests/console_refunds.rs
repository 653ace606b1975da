//! Refunds from the console and the API (`aftersale::refunds`) posted by the acquirer host's
//! terminal refund path, end to end: a chip sale at the terminal, then refunds in parts, with
//! approval above the threshold, freezes, and the terminal's void excluded; on SQLite and,
//! when configured, PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aftersale::refunds::{Actor, ActorRole, RefundError, Refunds};
use common::*;
use store::accounts::{TransactionFilter, TransactionRecord};

fn actor(username: &str, role: ActorRole) -> Actor {
    Actor {
        username: username.into(),
        role,
    }
}

/// The journal's record of the sale with trace number `stan`.
async fn sale_record(world: &World, stan: i64) -> TransactionRecord {
    world
        .store
        .transactions(&TransactionFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .find(|record| record.kind == "Sale" && record.stan == Some(stan))
        .unwrap()
}

async fn merchant_owed(world: &World) -> i64 {
    let account = world
        .store
        .account(demo::account_id("merchant/898310058120001"))
        .await
        .unwrap()
        .unwrap();
    account.credits_posted - account.debits_posted
}

/// A chip sale of `amount_minor` from terminal 10000001 with trace number `stan`, approved.
async fn sale(client: &mut Client, keys: &(TdesKey, TdesKey), amount_minor: u64, stan: u32) {
    let card = demo_card("card-CH001-D");
    let reply = client
        .exchange(
            &chip_sale(&card, amount_minor, stan, stan as u16, demo::DEMO_PIN, keys),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(cup().unpack(&reply).unwrap().response_code().unwrap(), "00");
}

#[tokio::test]
async fn parts_add_up_to_the_sale_and_not_one_cent_more_and_the_terminal_cannot_void_it() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let (mut client, stop, server, handler) = start(&world).await;
        let keys = signed_on(&mut client).await;
        let card = demo_card("card-CH001-D");
        let before = available(&world, &card).await;
        sale(&mut client, &keys, 6_000, 900).await;
        let owed_after_sale = merchant_owed(&world).await;
        let record = sale_record(&world, 900).await;
        let refunds = Refunds::new(world.store.clone(), handler.clone()).with_approval_above(5_000);
        let cashier = actor("cashier1", ActorRole::Cashier);

        let mut seqs = Vec::new();
        for amount in [2_000, 3_000, 1_000] {
            let refund = refunds
                .ask(
                    &record,
                    &cashier,
                    amount,
                    "customer returned goods",
                    1_764_000_100,
                )
                .await
                .unwrap();
            assert_eq!(refund.status, "refunded", "{name}: {refund:?}");
            assert_eq!(refund.response, "00");
            seqs.push(refund.seq);
        }
        assert_eq!(seqs, [1, 2, 3], "{name}: each part its own number");
        assert_eq!(
            available(&world, &card).await,
            before,
            "{name}: all back on the card"
        );
        assert_eq!(merchant_owed(&world).await, owed_after_sale - 6_000);

        let more = refunds
            .ask(&record, &cashier, 1, "one cent more", 1_764_000_200)
            .await;
        assert!(
            matches!(
                more,
                Err(RefundError::OverCaptured {
                    asked_minor: 1,
                    remaining_minor: 0
                })
            ),
            "{name}: {more:?}"
        );
        assert_eq!(available(&world, &card).await, before);

        // The terminal's void of the refunded sale finds the undo ids taken.
        let rrn = record.rrn.clone().unwrap();
        let reply = client
            .exchange(&void(&card, 6_000, 901, 900, &rrn, &keys), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(cup().unpack(&reply).unwrap().response_code().unwrap(), "12");

        // Each part is journaled like a terminal refund, naming the sale.
        let journaled: Vec<_> = world
            .store
            .transactions(&TransactionFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .filter(|entry| entry.kind == "Refund")
            .collect();
        assert_eq!(journaled.len(), 3, "{name}");
        assert!(journaled.iter().all(|entry| {
            entry.response.as_deref() == Some("00")
                && entry.original_stan == Some(900)
                && entry.batch.is_none()
                && entry.card == record.card
        }));
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }
}

/// The response code of `request` sent on `client`.
async fn code_of(client: &mut Client, request: &[u8]) -> String {
    let reply = client.exchange(request, TIMEOUT).await.unwrap();
    cup()
        .unpack(&reply)
        .unwrap()
        .response_code()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_terminal_void_or_refund_that_was_reversed_leaves_the_whole_sale_to_the_console() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let (mut client, stop, server, handler) = start(&world).await;
        let keys = signed_on(&mut client).await;
        let card = demo_card("card-CH001-D");
        let refunds = Refunds::new(world.store.clone(), handler.clone());
        let manager = actor("shanghai.admin", ActorRole::Supervisor);
        let before = available(&world, &card).await;

        // A sale refunded in part at the terminal, the refund reversed: the sale stands in
        // full again, and the console refunds all of it.
        sale(&mut client, &keys, 6_000, 900).await;
        let record = sale_record(&world, 900).await;
        let rrn = record.rrn.clone().unwrap();
        let terminal_refund = refund(&card, 2_000, 901, 900, &rrn, &keys);
        assert_eq!(code_of(&mut client, &terminal_refund).await, "00", "{name}");
        assert_eq!(
            code_of(&mut client, &reversal_of(&terminal_refund, "0400", &keys)).await,
            "00"
        );
        assert_eq!(available(&world, &card).await, before - 6_000, "{name}");
        let whole = refunds
            .ask(&record, &manager, 6_000, "returned", 1_764_000_100)
            .await
            .unwrap();
        assert_eq!(
            (whole.status.as_str(), whole.response.as_str()),
            ("refunded", "00"),
            "{name}: {whole:?}"
        );
        assert_eq!(available(&world, &card).await, before, "{name}");
        // The console's part stands now: the terminal's void finds the sale taken.
        assert_eq!(
            code_of(&mut client, &void(&card, 6_000, 902, 900, &rrn, &keys)).await,
            "12",
            "{name}"
        );

        // A sale voided at the terminal, the void reversed: refundable from the console.
        sale(&mut client, &keys, 3_000, 903).await;
        let other = sale_record(&world, 903).await;
        let other_rrn = other.rrn.clone().unwrap();
        let voided = void(&card, 3_000, 904, 903, &other_rrn, &keys);
        assert_eq!(code_of(&mut client, &voided).await, "00", "{name}");
        let refused = refunds
            .ask(&other, &manager, 1_000, "while voided", 1_764_000_200)
            .await;
        assert!(
            matches!(refused, Err(RefundError::NotRefundable(_))),
            "{name}: {refused:?}"
        );
        assert_eq!(
            code_of(&mut client, &reversal_of(&voided, "0400", &keys)).await,
            "00"
        );
        assert_eq!(available(&world, &card).await, before - 3_000, "{name}");
        for (amount, at) in [(1_000, 1_764_000_300), (2_000, 1_764_000_400)] {
            let part = refunds
                .ask(&other, &manager, amount, "returned", at)
                .await
                .unwrap();
            assert_eq!(part.status, "refunded", "{name}: {part:?}");
        }
        assert_eq!(available(&world, &card).await, before, "{name}");
        // Each part is in a slot of its own, after the reversed void's, named by its number.
        let key = acquirer::effects::BusinessKey {
            terminal_id: "10000001".into(),
            batch: 1,
            stan: 903,
        };
        let mut numbers = Vec::new();
        for slot in ["undo", "undo#1", "undo#2"] {
            let transfer = world
                .store
                .transfer(key.transfer_id(&format!("{slot}/issuer")))
                .await
                .unwrap()
                .unwrap();
            numbers.push(transfer.request.user_data);
        }
        assert_eq!(numbers, [904, 1_000_001, 1_000_002], "{name}");
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }
}

#[tokio::test]
async fn above_the_threshold_another_supervisor_approves_and_frozen_refunds_move_nothing() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let (mut client, stop, server, handler) = start(&world).await;
        let keys = signed_on(&mut client).await;
        let card = demo_card("card-CH001-D");
        sale(&mut client, &keys, 9_000, 900).await;
        let after_sale = available(&world, &card).await;
        let record = sale_record(&world, 900).await;
        let refunds = Refunds::new(world.store.clone(), handler.clone()).with_approval_above(5_000);
        let (cashier, manager, admin) = (
            actor("cashier1", ActorRole::Cashier),
            actor("manager1", ActorRole::Supervisor),
            actor("admin1", ActorRole::Supervisor),
        );

        let pending = refunds
            .ask(
                &record,
                &manager,
                6_000,
                "wrong item rung up",
                1_764_000_100,
            )
            .await
            .unwrap();
        assert_eq!(pending.status, "pending_approval", "{name}");
        assert_eq!(
            available(&world, &card).await,
            after_sale,
            "nothing moved yet"
        );
        // Reserved: only 3 000 is left to ask for meanwhile.
        assert!(matches!(
            refunds
                .ask(&record, &cashier, 3_001, "more", 1_764_000_110)
                .await,
            Err(RefundError::OverCaptured {
                remaining_minor: 3_000,
                ..
            })
        ));
        for (who, why) in [(&cashier, "a cashier"), (&manager, "the one who asked")] {
            let refused = refunds
                .approve(&record, pending.clone(), who, 1_764_000_120)
                .await;
            assert!(
                matches!(refused, Err(RefundError::Forbidden(_))),
                "{name}: {why} approves: {refused:?}"
            );
        }
        let approved = refunds
            .approve(&record, pending.clone(), &admin, 1_764_000_130)
            .await
            .unwrap();
        assert_eq!(
            (approved.status.as_str(), approved.decided_by.as_str()),
            ("refunded", "admin1"),
            "{name}"
        );
        assert_eq!(available(&world, &card).await, after_sale + 6_000);
        assert!(matches!(
            refunds
                .approve(&record, approved, &admin, 1_764_000_140)
                .await,
            Err(RefundError::Conflict(_))
        ));

        // The merchant's refunds frozen: refused 58 like a terminal's, nothing moves, and the
        // amount is free again.
        handler
            .freezes()
            .set(risk::FreezeScope::Refunds, "898310058120001", true);
        let frozen = refunds
            .ask(&record, &cashier, 1_000, "frozen", 1_764_000_150)
            .await
            .unwrap();
        assert_eq!(frozen.status, "failed", "{name}");
        assert!(frozen.response.starts_with("58"), "{}", frozen.response);
        assert_eq!(available(&world, &card).await, after_sale + 6_000);
        handler
            .freezes()
            .set(risk::FreezeScope::Refunds, "898310058120001", false);
        // A frozen card stops it too (62).
        handler
            .freezes()
            .set(risk::FreezeScope::Card, "card-CH001-D", true);
        let card_frozen = refunds
            .ask(&record, &cashier, 1_000, "frozen card", 1_764_000_160)
            .await
            .unwrap();
        assert!(card_frozen.response.starts_with("62"), "{card_frozen:?}");
        handler
            .freezes()
            .set(risk::FreezeScope::Card, "card-CH001-D", false);

        // The cardholder asks; the merchant accepts part of it, and declines a second request.
        let cardholder = actor("cardholder1", ActorRole::Cardholder);
        let request = refunds
            .ask(&record, &cardholder, 2_000, "charged twice", 1_764_000_200)
            .await
            .unwrap();
        assert_eq!((request.status.as_str(), request.seq), ("requested", 0));
        assert_eq!(available(&world, &card).await, after_sale + 6_000);
        let part = refunds
            .accept(
                &record,
                request.clone(),
                &cashier,
                Some(1_500),
                1_764_000_210,
            )
            .await
            .unwrap();
        assert_eq!(
            (part.status.as_str(), part.request_id.as_str()),
            ("refunded", request.id.as_str()),
            "{name}"
        );
        assert_eq!(available(&world, &card).await, after_sale + 7_500);
        let again = refunds
            .accept(&record, request.clone(), &cashier, None, 1_764_000_220)
            .await;
        assert!(matches!(again, Err(RefundError::Conflict(_))), "{again:?}");
        let second = refunds
            .ask(&record, &cardholder, 1_500, "and the rest", 1_764_000_230)
            .await
            .unwrap();
        let declined = refunds
            .decline(second, &cashier, "the rest was a tip", 1_764_000_240)
            .await
            .unwrap();
        assert_eq!(
            (declined.status.as_str(), declined.response.as_str()),
            ("declined", "the rest was a tip")
        );
        let statuses: Vec<String> = world
            .store
            .refunds_of_transaction(record.id)
            .await
            .unwrap()
            .into_iter()
            .map(|refund| refund.status)
            .collect();
        assert_eq!(
            statuses,
            [
                "refunded", "failed", "failed", "accepted", "refunded", "declined"
            ],
            "{name}"
        );
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }
}

mod disputes {
    use super::*;
    use aftersale::disputes::{Decision, DisputeError, Disputes, Party, Review};

    const DAY: i64 = 86_400;
    const OPENED: i64 = 1_764_000_000;

    /// A sale of 5 000 disputed by its cardholder and charged back by the issuer: the card is
    /// credited and the merchant debited.
    async fn charged_back(
        name: &str,
        world: &World,
        handler: Arc<TerminalHandler>,
        client: &mut Client,
        keys: &(TdesKey, TdesKey),
        stan: u32,
    ) -> (
        Disputes,
        TransactionRecord,
        store::disputes::Dispute,
        i64,
        i64,
    ) {
        sale(client, keys, 5_000, stan).await;
        let card = demo_card("card-CH001-D");
        let (card_after_sale, merchant_after_sale) =
            (available(world, &card).await, merchant_owed(world).await);
        let record = sale_record(world, i64::from(stan)).await;
        let disputes = Disputes::new(world.store.clone(), handler).with_answer_within(10 * DAY);
        let (dispute, new) = disputes
            .open(
                &record,
                Party::Cardholder,
                "cardholder1",
                "card-CH001-D",
                "not_recognised",
                "I was at home that day",
                OPENED,
            )
            .await
            .unwrap();
        assert!(new && dispute.status == "opened", "{name}: {dispute:?}");
        assert_eq!(dispute.amount_minor, 5_000);
        let merchant_reviews = disputes
            .review(
                &record,
                dispute.clone(),
                Party::Merchant,
                "shanghai.admin",
                Review::ChargeBack,
                "",
                OPENED + 60,
            )
            .await;
        assert!(matches!(merchant_reviews, Err(DisputeError::Forbidden(_))));
        let dispute = disputes
            .review(
                &record,
                dispute,
                Party::Issuer,
                "bank",
                Review::ChargeBack,
                "",
                OPENED + 3_600,
            )
            .await
            .unwrap();
        assert_eq!(dispute.status, "charged_back", "{name}");
        assert_eq!(dispute.answer_due_at, Some(OPENED + 3_600 + 10 * DAY));
        assert_eq!(available(world, &card).await, card_after_sale + 5_000);
        assert_eq!(merchant_owed(world).await, merchant_after_sale - 5_000);
        world.store.check_books().await.unwrap();
        (
            disputes,
            record,
            dispute,
            card_after_sale,
            merchant_after_sale,
        )
    }

    #[tokio::test]
    async fn the_cardholder_wins_when_the_merchant_does_not_answer_in_time() {
        for backend in store::testing::backends().await {
            let name = backend.name;
            let world = world_on(backend).await;
            let (mut client, stop, server, handler) = start(&world).await;
            let keys = signed_on(&mut client).await;
            let (disputes, record, dispute, card_after_sale, merchant_after_sale) =
                charged_back(name, &world, handler.clone(), &mut client, &keys, 900).await;
            let card = demo_card("card-CH001-D");
            let due = dispute.answer_due_at.unwrap();
            // The issuer cannot decide before the merchant's time is up.
            let early = disputes
                .decide(
                    &record,
                    dispute.clone(),
                    Party::Issuer,
                    "bank",
                    Decision::ForCardholder,
                    "no answer",
                    due,
                )
                .await;
            assert!(matches!(early, Err(DisputeError::Conflict(_))), "{early:?}");
            let late = disputes
                .answer(
                    dispute.clone(),
                    Party::Merchant,
                    "shanghai.admin",
                    "signed receipt",
                    due + 1,
                )
                .await;
            assert!(
                matches!(late, Err(DisputeError::Late { .. })),
                "{name}: {late:?}"
            );
            let decided = disputes
                .decide(
                    &record,
                    dispute,
                    Party::Issuer,
                    "bank",
                    Decision::ForCardholder,
                    "the merchant did not answer",
                    due + 2,
                )
                .await
                .unwrap();
            assert_eq!(decided.status, "won_by_cardholder");
            assert_eq!(decided.decided_at, Some(due + 2));
            // The credit is final; a refund now would pay the card twice.
            assert_eq!(available(&world, &card).await, card_after_sale + 5_000);
            assert_eq!(merchant_owed(&world).await, merchant_after_sale - 5_000);
            let refunds = Refunds::new(world.store.clone(), handler.clone());
            let refund = refunds
                .ask(
                    &record,
                    &actor("shanghai.admin", ActorRole::Supervisor),
                    100,
                    "goodwill",
                    due + 3,
                )
                .await;
            assert!(
                matches!(refund, Err(RefundError::NotRefundable(_))),
                "{refund:?}"
            );
            world.store.check_books().await.unwrap();
            let _ = stop.send(true);
            server.await.unwrap();
        }
    }

    #[tokio::test]
    async fn the_merchant_answers_in_time_and_wins_the_chargeback_back() {
        for backend in store::testing::backends().await {
            let name = backend.name;
            let world = world_on(backend).await;
            let (mut client, stop, server, handler) = start(&world).await;
            let keys = signed_on(&mut client).await;
            let (disputes, record, dispute, card_after_sale, merchant_after_sale) =
                charged_back(name, &world, handler.clone(), &mut client, &keys, 900).await;
            let card = demo_card("card-CH001-D");
            let due = dispute.answer_due_at.unwrap();
            let answered = disputes
                .answer(
                    dispute,
                    Party::Merchant,
                    "shanghai.admin",
                    "chip and PIN, signed receipt attached",
                    due,
                )
                .await
                .unwrap();
            assert_eq!(
                (answered.status.as_str(), answered.answered_at),
                ("answered", Some(due))
            );
            let decided = disputes
                .decide(
                    &record,
                    answered,
                    Party::Issuer,
                    "bank",
                    Decision::ForMerchant,
                    "chip and PIN verified",
                    due + 60,
                )
                .await
                .unwrap();
            assert_eq!(decided.status, "won_by_merchant", "{name}");
            assert_eq!(available(&world, &card).await, card_after_sale);
            assert_eq!(merchant_owed(&world).await, merchant_after_sale);
            // Decided once.
            let again = disputes
                .decide(
                    &record,
                    decided,
                    Party::Issuer,
                    "bank",
                    Decision::ForCardholder,
                    "again",
                    due + 120,
                )
                .await;
            assert!(matches!(again, Err(DisputeError::Conflict(_))));
            world.store.check_books().await.unwrap();

            // Another sale, disputed and rejected at review: nothing moves.
            sale(&mut client, &keys, 700, 901).await;
            let before = available(&world, &card).await;
            let other = sale_record(&world, 901).await;
            let (opened, _) = disputes
                .open(
                    &other,
                    Party::Cardholder,
                    "cardholder1",
                    "card-CH001-D",
                    "duplicate",
                    "charged twice",
                    OPENED,
                )
                .await
                .unwrap();
            let (again, new) = disputes
                .open(
                    &other,
                    Party::Cardholder,
                    "cardholder1",
                    "card-CH001-D",
                    "duplicate",
                    "charged twice",
                    OPENED + 1,
                )
                .await
                .unwrap();
            assert!(!new && again.id == opened.id, "one dispute per sale");
            let rejected = disputes
                .review(
                    &other,
                    opened,
                    Party::Issuer,
                    "bank",
                    Review::Reject,
                    "two different purchases",
                    OPENED + 60,
                )
                .await
                .unwrap();
            assert_eq!(rejected.status, "rejected");
            assert_eq!(available(&world, &card).await, before);
            let _ = stop.send(true);
            server.await.unwrap();
        }
    }
}
