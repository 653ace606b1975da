#![allow(clippy::unwrap_used, clippy::expect_used)]
//! DUKPT terminals (AES, X9.24-3; TDES, X9.24-1) over TCP: the KSN in field 62, PIN blocks and
//! MACs under each transaction's derived keys, answers MACed under the response key.

mod common;

use common::*;

fn sign_on(terminal: &DukptTerminal) -> Vec<u8> {
    frame(
        "0800",
        &[
            (11, "000001"),
            (41, terminal.id),
            (42, "898310058120001"),
            (60, "00000000003"),
            (63, "001"),
        ],
    )
}

async fn answer(client: &mut Client, request: &[u8]) -> (Vec<u8>, Message<'static>) {
    let reply = client.exchange(request, TIMEOUT).await.unwrap();
    let message = cup().unpack(&reply).unwrap().into_owned();
    (reply, message)
}

#[tokio::test(flavor = "multi_thread")]
async fn dukpt_terminals_sell_with_pin_under_their_derived_keys() {
    for terminal in [DukptTerminal::aes(), DukptTerminal::tdes()] {
        let scheme = terminal.scheme;
        let world = world().await;
        terminal.provision(&world).await;
        let (mut client, stop, server, handler) = start(&world).await;
        let card = demo_card("card-CH001-D");
        let pan = Pan::new(&card.pan).unwrap();
        let opening = available(&world, &card).await;
        // The chip data and the rest of the sale, as terminal 10000001 would build them.
        let unused = (
            TdesKey::new(&[0x11; 16]).unwrap(),
            TdesKey::new(&[0x22; 16]).unwrap(),
        );
        let sale = |stan, atc| chip_sale(&card, 2_000, stan, atc, demo::DEMO_PIN, &unused);

        // Before sign-on: 58.
        let early = terminal.retag(&sale(1, 1), 1, Some((demo::DEMO_PIN, &pan)));
        assert_eq!(
            answer(&mut client, &early).await.1.response_code().unwrap(),
            "58",
            "{scheme}"
        );

        // Sign-on opens the day without keys: they come from each message's KSN.
        let (_, signed) = answer(&mut client, &sign_on(&terminal)).await;
        assert_eq!(signed.response_code().unwrap(), "00", "{scheme}");
        assert!(
            !signed.has(62),
            "{scheme}: no working keys for a DUKPT terminal"
        );

        // A chip sale with PIN, transaction counter 2.
        let request = terminal.retag(&sale(2, 2), 2, Some((demo::DEMO_PIN, &pan)));
        let (reply, approved) = answer(&mut client, &request).await;
        assert_eq!(approved.response_code().unwrap(), "00", "{scheme}");
        let (covered, mac) = acquirer::mac::mac_parts(cup(), &reply).unwrap();
        assert_eq!(
            mac,
            terminal.mac(2, true, covered).as_slice(),
            "{scheme}: the answer is MACed under the response key"
        );
        assert_eq!(available(&world, &card).await, opening - 2_000);

        // A wrong PIN is found wrong: the PIN block was translated from the DUKPT key.
        let wrong = terminal.retag(&sale(3, 3), 3, Some(("654321", &pan)));
        assert_eq!(
            answer(&mut client, &wrong).await.1.response_code().unwrap(),
            "55",
            "{scheme}"
        );

        // A MAC under another transaction's key: A0.
        let mut forged = cup().unpack(&sale(4, 4)).unwrap().into_owned();
        forged.remove(64);
        forged.set_text(41, terminal.id);
        forged.set_bytes(62, terminal.ksn(4));
        let forged = acquirer::mac::pack_with_mac(cup(), &mut forged, |covered| {
            terminal.mac(5, false, covered)
        })
        .unwrap();
        assert_eq!(
            answer(&mut client, &forged)
                .await
                .1
                .response_code()
                .unwrap(),
            "A0",
            "{scheme}"
        );

        // A KSN of another device: 63; no KSN at all: 30.
        let other_device = {
            let mut message = cup().unpack(&request).unwrap().into_owned();
            let mut ksn = terminal.ksn(6);
            ksn[0] ^= 0x01;
            message.set_bytes(62, ksn);
            message.set_text(11, "000006");
            cup().pack(&message).unwrap()
        };
        assert_eq!(
            answer(&mut client, &other_device)
                .await
                .1
                .response_code()
                .unwrap(),
            "63",
            "{scheme}"
        );
        let without_ksn = {
            let mut message = cup().unpack(&request).unwrap().into_owned();
            message.remove(62);
            message.set_text(11, "000007");
            cup().pack(&message).unwrap()
        };
        assert_eq!(
            answer(&mut client, &without_ksn)
                .await
                .1
                .response_code()
                .unwrap(),
            "30",
            "{scheme}"
        );
        assert_eq!(available(&world, &card).await, opening - 2_000);
        assert_eq!(
            handler
                .counters
                .mac_failures
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        world.store.check_books().await.unwrap();
        let _ = stop.send(true);
        server.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dukpt_message_whose_ksn_counter_is_not_above_the_last_accepted_is_refused() {
    for terminal in [DukptTerminal::aes(), DukptTerminal::tdes()] {
        for backend in store::testing::backends().await {
            let what = format!("{} on {}", terminal.scheme, backend.name);
            let world = world_on(backend).await;
            terminal.provision(&world).await;
            let (mut client, stop, server, handler) = start(&world).await;
            let card = demo_card("card-CH001-D");
            let pan = Pan::new(&card.pan).unwrap();
            let opening = available(&world, &card).await;
            let unused = (
                TdesKey::new(&[0x11; 16]).unwrap(),
                TdesKey::new(&[0x22; 16]).unwrap(),
            );
            let sale = |stan, atc, counter| {
                terminal.retag(
                    &chip_sale(&card, 1_000, stan, atc, demo::DEMO_PIN, &unused),
                    counter,
                    Some((demo::DEMO_PIN, &pan)),
                )
            };
            let code = |reply: Message<'static>| reply.response_code().unwrap().to_owned();
            assert_eq!(code(answer(&mut client, &sign_on(&terminal)).await.1), "00");

            // Normal progression: counters 3, then 4, then 9 (a device may skip counters).
            let first = sale(2, 2, 3);
            assert_eq!(code(answer(&mut client, &first).await.1), "00", "{what}");
            assert_eq!(
                code(answer(&mut client, &sale(3, 3, 4)).await.1),
                "00",
                "{what}"
            );
            let third = sale(4, 4, 9);
            assert_eq!(code(answer(&mut client, &third).await.1), "00", "{what}");
            assert_eq!(available(&world, &card).await, opening - 3_000, "{what}");

            // The last message again, byte for byte: a duplicate, answered with its original
            // answer (same RRN), and nothing moves. So is an older one sent again.
            let (_, original) = answer(&mut client, &third).await;
            let rrn = |reply: &Message<'static>| reply.get(37).map(|value| value.to_text());
            let (_, again) = answer(&mut client, &third).await;
            assert_eq!(code(again.clone()), "00", "{what}");
            assert_eq!(rrn(&again), rrn(&original), "{what}");
            assert_eq!(code(answer(&mut client, &first).await.1), "00", "{what}");
            assert_eq!(available(&world, &card).await, opening - 3_000, "{what}");
            // A new message under an older counter (decreasing): 63, nothing moves.
            assert_eq!(
                code(answer(&mut client, &sale(5, 5, 8)).await.1),
                "63",
                "{what}"
            );
            // A new message reusing the last counter (a replay of the KSN with other content,
            // validly MACed only by the device itself): 63 too.
            assert_eq!(
                code(answer(&mut client, &sale(5, 5, 9)).await.1),
                "63",
                "{what}"
            );
            assert_eq!(available(&world, &card).await, opening - 3_000, "{what}");
            // A forged message with a high counter (bad MAC) does not raise the mark.
            let mut forged = cup().unpack(&sale(6, 6, 10)).unwrap().into_owned();
            forged.remove(64);
            let forged = acquirer::mac::pack_with_mac(cup(), &mut forged, |covered| {
                terminal.mac(11, false, covered)
            })
            .unwrap();
            assert_eq!(code(answer(&mut client, &forged).await.1), "A0", "{what}");
            assert_eq!(
                world
                    .store
                    .terminal_session(terminal.id)
                    .await
                    .unwrap()
                    .unwrap()
                    .ksn_counter,
                9,
                "{what}: the high-water mark is the last accepted counter"
            );
            // The device goes on above it.
            assert_eq!(
                code(answer(&mut client, &sale(7, 7, 10)).await.1),
                "00",
                "{what}"
            );
            assert_eq!(available(&world, &card).await, opening - 4_000, "{what}");
            assert_eq!(
                handler
                    .counters
                    .ksn_replays
                    .load(std::sync::atomic::Ordering::Relaxed),
                2,
                "{what}"
            );
            drop(client);
            stop.send(true).unwrap();
            server.await.unwrap();
        }
    }
}
