#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Cardholder alerts end to end, on SQLite and (when configured) PostgreSQL: the cardholder
//! sets channels and a threshold, new journal rows become alerts after the cursor, each is
//! sent once per channel — a signed webhook to a receiver on 127.0.0.1, an e-mail to a tiny
//! SMTP server on 127.0.0.1, a text through the SMS adapter — a failed one is retried after
//! its backoff by a fresh dispatcher over the same store (a restart); and the cardholder
//! freezes and unfreezes their own card.

mod common;

use api::alerts::{AlertSenders, SmsSender, SmtpConfig};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use common::{masked, world_on};
use std::sync::{Arc, Mutex};
use store::journal::JournalEntry;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Clone, Default)]
struct Received {
    requests: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    /// Answers to give, in order; 200 after them.
    answers: Arc<Mutex<Vec<u16>>>,
}

async fn receiver(received: Received) -> String {
    let app = axum::Router::new()
        .route(
            "/alerts",
            axum::routing::post(
                |axum::extract::State(received): axum::extract::State<Received>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    received
                        .requests
                        .lock()
                        .unwrap()
                        .push((headers, String::from_utf8(body.to_vec()).unwrap()));
                    let mut answers = received.answers.lock().unwrap();
                    let status = if answers.is_empty() {
                        200
                    } else {
                        answers.remove(0)
                    };
                    StatusCode::from_u16(status).unwrap()
                },
            ),
        )
        .with_state(received);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/alerts")
}

/// A tiny SMTP server: answers each command as a relay would and keeps each message's
/// recipient and data. Bounded: it serves `connections` conversations, then stops.
async fn smtp_server(mails: Arc<Mutex<Vec<(String, String)>>>, connections: usize) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        for _ in 0..connections {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut reader = BufReader::new(read);
            write.write_all(b"220 test ESMTP\r\n").await.unwrap();
            let mut recipient = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).await.unwrap() == 0 {
                    break;
                }
                let command = line.trim_end().to_owned();
                if command.starts_with("EHLO") {
                    write
                        .write_all(b"250-test greets easypos\r\n250 8BITMIME\r\n")
                        .await
                        .unwrap();
                } else if command.starts_with("MAIL FROM:") {
                    write.write_all(b"250 OK\r\n").await.unwrap();
                } else if let Some(to) = command.strip_prefix("RCPT TO:") {
                    recipient = to.to_owned();
                    write.write_all(b"250 OK\r\n").await.unwrap();
                } else if command == "DATA" {
                    write.write_all(b"354 go on\r\n").await.unwrap();
                    let mut data = String::new();
                    loop {
                        let mut line = String::new();
                        reader.read_line(&mut line).await.unwrap();
                        if line == ".\r\n" || line.is_empty() {
                            break;
                        }
                        data.push_str(&line);
                    }
                    mails.lock().unwrap().push((recipient.clone(), data));
                    write.write_all(b"250 queued\r\n").await.unwrap();
                } else if command == "QUIT" {
                    let _ = write.write_all(b"221 bye\r\n").await;
                    break;
                } else {
                    write.write_all(b"500 what\r\n").await.unwrap();
                }
            }
        }
    });
    port
}

/// An SMS adapter that keeps what it was asked to send.
#[derive(Debug, Default)]
struct RecordingSms(Mutex<Vec<(String, String)>>);

impl SmsSender for RecordingSms {
    fn send(&self, phone: &str, text: &str) -> Result<(), String> {
        self.0.lock().unwrap().push((phone.into(), text.into()));
        Ok(())
    }
}

fn sale(card: &str, stan: i64, response: &str, amount: i64) -> JournalEntry {
    JournalEntry {
        received_at: 1_764_000_000_000_000 + stan * 1_000_000,
        terminal_id: "10000001".into(),
        merchant_id: demo::SHANGHAI_MERCHANT.into(),
        mti: "0200".into(),
        kind: "Sale".into(),
        batch: Some(9),
        stan: Some(stan),
        amount_minor: Some(amount),
        currency: Some(156),
        card: Some(masked(card)),
        card_id: Some(card.into()),
        response: Some(response.into()),
        rrn: Some(format!("RRNALERT{stan:04}")),
        ..JournalEntry::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn transactions_alert_their_cardholder_on_each_chosen_channel_once() {
    for backend in store::testing::backends().await {
        let world = world_on(backend).await;
        let card = "card-CH001-D";
        let path = format!("/api/v1/cards/{card}/alerts");

        // Nothing set yet: no channels, not frozen.
        let first = world.get("cardholder1", &path).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text);
        assert_eq!(first.json()["channels"], serde_json::json!([]));
        assert_eq!(first.json()["frozen"], false);
        // Only the card's holder: another role is refused, another's card is not found.
        assert_eq!(
            world.get("shanghai.admin", &path).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            world
                .get("cardholder1", "/api/v1/cards/card-CH002-C/alerts")
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        // Bad settings are refused with the field named, and nothing is saved.
        for (body, field) in [
            (r#"{"channels":["pigeon"]}"#, "pigeon"),
            (r#"{"channels":["email"]}"#, "needs email"),
            (r#"{"channels":["sms"],"phone":"12"}"#, "phone"),
            (
                r#"{"channels":["email"],"email":"a@b\r\nRCPT TO:<x@y>"}"#,
                "email",
            ),
            (
                r#"{"channels":["webhook"],"webhook_url":"https://x.test/"}"#,
                "webhook_url",
            ),
            (r#"{"min_amount_minor":-1}"#, "min_amount_minor"),
        ] {
            let refused = world.call("cardholder1", "PUT", &path, None, body).await;
            assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{body}");
            assert!(refused.text.contains(field), "{body}: {}", refused.text);
        }
        assert!(world.store.alert_preferences(card).await.unwrap().is_none());

        let received = Received::default();
        received.answers.lock().unwrap().push(500);
        let url = receiver(received.clone()).await;
        let body = format!(
            r#"{{"channels":["sms","email","webhook"],"min_amount_minor":1000,"declines_only":false,"webhook_url":"{url}","email":"li.lei@example.test","phone":"+8613800001234"}}"#
        );
        let saved = world.call("cardholder1", "PUT", &path, None, &body).await;
        assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
        assert_eq!(
            saved.json()["channels"],
            serde_json::json!(["webhook", "email", "sms"])
        );

        let mails = Arc::new(Mutex::new(Vec::new()));
        let smtp_port = smtp_server(mails.clone(), 2).await;
        let sms = Arc::new(RecordingSms::default());
        let hsm: Arc<dyn hsm::Hsm> = Arc::new(hsm::SoftHsm::new(&[0x42; 32]).unwrap());
        let webhook_keys = api::webhooks::WebhookKeys::ensure(&world.store, hsm.clone())
            .await
            .unwrap();
        let dispatcher = || {
            api::ApiState::new(world.store.clone())
                .with_webhooks(webhook_keys.clone())
                .with_alert_senders(AlertSenders {
                    smtp: Some(SmtpConfig {
                        host: "127.0.0.1".into(),
                        port: smtp_port,
                        from: "alerts@bank.test".into(),
                    }),
                    sms: sms.clone(),
                })
        };
        // The webhook secret is shown on a change that sets a URL: the world's API has no
        // webhook key, so ask the dispatcher's.
        let secret = api::alerts::save_settings(
            &dispatcher(),
            &api::access::Principal {
                user: world
                    .store
                    .user_by_username("cardholder1")
                    .await
                    .unwrap()
                    .unwrap(),
            },
            &demo::cards()
                .into_iter()
                .find(|demo| demo.card.id == card)
                .unwrap()
                .card,
            serde_json::from_str(&body).unwrap(),
        )
        .await
        .unwrap()
        .webhook_secret
        .unwrap();

        let state = dispatcher();
        let now = 1_800_000_000;
        // The first pass starts at the journal's end: the planted transactions are history.
        assert_eq!(api::alerts::pass(&state, now).await.unwrap().queued, 0);
        world
            .store
            .journal(vec![
                // Approved, above the threshold: alerted.
                sale(card, 1, "00", 2_000),
                // Its retransmission: the same transaction, alerted once.
                sale(card, 1, "00", 2_000),
                // Approved below the threshold: not alerted.
                sale(card, 2, "00", 999),
                // Declined, however small: alerted.
                sale(card, 3, "51", 100),
                // Another card, whose holder set nothing.
                sale("card-CH002-C", 4, "00", 5_000),
            ])
            .await
            .unwrap();
        // Too new: rows younger than SETTLE_SECONDS wait for the next pass.
        let early = api::alerts::pass(&state, 1_764_000_002).await.unwrap();
        assert_eq!(early.queued, 0);

        // Two transactions × three channels; the webhook's first answer is 500.
        let first = api::alerts::pass(&state, now).await.unwrap();
        assert_eq!(
            (first.queued, first.delivered, first.failed),
            (6, 5, 1),
            "{first:?}"
        );
        assert_eq!(
            api::alerts::pass(&state, now).await.unwrap(),
            api::alerts::PassReport::default(),
            "nothing twice"
        );

        // A restart: a new dispatcher over the same store retries the failed webhook after
        // its backoff, not before.
        let restarted = dispatcher();
        let soon = api::alerts::pass(&restarted, now + 9).await.unwrap();
        assert_eq!(soon.delivered + soon.failed, 0, "not before its backoff");
        let retried = api::alerts::pass(&restarted, now + 10).await.unwrap();
        assert_eq!((retried.delivered, retried.failed), (1, 0));

        // The webhook: both transactions, signed with the card's secret, the card masked.
        let requests = received.requests.lock().unwrap().clone();
        assert_eq!(requests.len(), 3, "a 500, then two delivered");
        let raw: Vec<u8> = (0..16)
            .map(|index| u8::from_str_radix(&secret[6 + 2 * index..8 + 2 * index], 16).unwrap())
            .collect();
        for (headers, body) in &requests {
            assert_eq!(headers["easypos-event-type"], "card.transaction");
            let signature = headers["easypos-signature"].to_str().unwrap();
            let timestamp: i64 = signature[2..].split(',').next().unwrap().parse().unwrap();
            assert_eq!(
                signature,
                api::webhooks::signature(&raw, timestamp, body.as_bytes())
            );
            assert!(body.contains(&masked(card)), "{body}");
        }
        let events: std::collections::BTreeSet<String> = requests
            .iter()
            .map(|(headers, _)| headers["easypos-event-id"].to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            events.into_iter().collect::<Vec<_>>(),
            ["txn:10000001:9:1:0200", "txn:10000001:9:3:0200"]
        );

        // The e-mails and texts: one each per transaction, the card masked, the decline said.
        let mails = mails.lock().unwrap().clone();
        assert_eq!(mails.len(), 2);
        assert!(mails.iter().all(|(to, _)| to == "<li.lei@example.test>"));
        // In no promised order: PostgreSQL's claim returns rows as it finds them.
        assert!(
            mails.iter().any(
                |(_, data)| data.contains("Subject: easypos: Purchase DECLINED (51), CNY 1.00")
            ),
            "{mails:?}"
        );
        let texts = sms.0.lock().unwrap().clone();
        assert_eq!(texts.len(), 2);
        assert!(
            texts
                .iter()
                .all(|(phone, text)| phone == "+8613800001234" && text.contains(&masked(card)))
        );
        assert!(
            texts
                .iter()
                .any(|(_, text)| text.contains("Purchase approved, CNY 20.00")),
            "{texts:?}"
        );

        // The cardholder sees them with their card.
        let shown = world.get("cardholder1", &path).await.json();
        let recent = shown["recent"].as_array().unwrap();
        assert_eq!(recent.len(), 6);
        assert!(recent.iter().all(|alert| alert["state"] == "delivered"));
        let webhook = recent
            .iter()
            .find(|alert| alert["channel"] == "webhook" && alert["attempts"] == 2)
            .unwrap();
        assert!(webhook["text"].as_str().unwrap().contains(&masked(card)));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cardholder_freezes_and_unfreezes_their_card_but_not_a_fraud_freeze() {
    for backend in store::testing::backends().await {
        let world = world_on(backend).await;
        let card = "card-CH001-D";
        let path = format!("/api/v1/cards/{card}/freeze");

        assert_eq!(
            world.call("operator", "PUT", &path, None, "").await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            world
                .call(
                    "cardholder1",
                    "PUT",
                    "/api/v1/cards/card-CH002-C/freeze",
                    None,
                    ""
                )
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert!(world.freezes.is_empty());

        let frozen = world.call("cardholder1", "PUT", &path, None, "").await;
        assert_eq!(frozen.status, StatusCode::NO_CONTENT, "{}", frozen.text);
        // For the host's next authorization (declined 62: crates/acquirer/tests/risk.rs),
        // and in the store.
        assert_eq!(
            world.freezes.frozen("x", "y", card),
            Some(risk::FreezeScope::Card)
        );
        let shown = world
            .get("cardholder1", &format!("/api/v1/cards/{card}/alerts"))
            .await
            .json();
        assert_eq!(shown["frozen"], true);
        assert_eq!(
            shown["frozen_reason"],
            api::alerts::CARDHOLDER_FREEZE_REASON
        );
        // Freezing again changes nothing.
        let again = world.call("cardholder1", "PUT", &path, None, "").await;
        assert_eq!(again.status, StatusCode::NO_CONTENT);

        let thawed = world.call("cardholder1", "DELETE", &path, None, "").await;
        assert_eq!(thawed.status, StatusCode::NO_CONTENT, "{}", thawed.text);
        assert_eq!(world.freezes.frozen("x", "y", card), None);
        assert!(world.store.freezes().await.unwrap().is_empty());

        // A freeze the cardholder did not set (a fraud report's, an operator's) stays.
        world
            .store
            .put_freeze(store::freezes::Freeze {
                scope: "card".into(),
                target: card.into(),
                reason: "fraud reported on transaction 7".into(),
                frozen_by: "cardholder1".into(),
                frozen_at: 1_800_000_000,
            })
            .await
            .unwrap();
        world.freezes.set(risk::FreezeScope::Card, card, true);
        let refused = world.call("cardholder1", "DELETE", &path, None, "").await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
        assert!(refused.text.contains("fraud reported"), "{}", refused.text);
        assert_eq!(
            world.freezes.frozen("x", "y", card),
            Some(risk::FreezeScope::Card)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wallet_qr_payment_alerts_its_holder_once() {
    for backend in store::testing::backends().await {
        let world = world_on(backend).await;
        let sms = Arc::new(RecordingSms::default());
        let state = api::ApiState::new(world.store.clone()).with_alert_senders(AlertSenders {
            smtp: None,
            sms: sms.clone(),
        });
        let start = 1_800_000_000;
        // The first pass starts both cursors now.
        assert_eq!(api::alerts::pass(&state, start).await.unwrap().queued, 0);
        let cny = money::Currency::from_alpha("CNY").unwrap();
        let wallet = "wl_alerts_test_1";
        assert!(
            world
                .store
                .put_wallet(store::wallets::WalletRecord {
                    id: wallet.into(),
                    cardholder_id: "CH001".into(),
                    currency: cny,
                    linked_card_id: None,
                    password_hash: "unused".into(),
                    password_failures: 0,
                    locked_until: None,
                    created_at: start,
                })
                .await
                .unwrap()
        );
        // The holder sets the wallet's own alerts through the API, under the card's rules.
        let path = format!("/api/v1/wallets/{wallet}/alerts");
        let first = world.get("cardholder1", &path).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text);
        assert_eq!(first.json()["channels"], serde_json::json!([]));
        // Only its holder: another cardholder does not find it, a merchant is refused.
        assert_eq!(
            world.get("cardholder2", &path).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            world
                .call("shanghai.admin", "PUT", &path, None, r#"{"channels":[]}"#)
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        let refused = world
            .call("cardholder1", "PUT", &path, None, r#"{"channels":["sms"]}"#)
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert!(refused.text.contains("needs phone"), "{}", refused.text);
        assert!(
            world
                .store
                .alert_preferences(wallet)
                .await
                .unwrap()
                .is_none()
        );
        let saved = world
            .call(
                "cardholder1",
                "PUT",
                &path,
                None,
                r#"{"channels":["sms"],"phone":"+8613800001234","min_amount_minor":1000}"#,
            )
            .await;
        assert_eq!(saved.status, StatusCode::OK, "{}", saved.text);
        assert_eq!(saved.json()["min_amount_minor"], 1000);
        let stored = world
            .store
            .alert_preferences(wallet)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (stored.target_kind.as_str(), stored.cardholder_id.as_str()),
            ("wallet", "CH001")
        );
        world
            .store
            .create_order(store::wallets::OrderRecord {
                id: "ORDALERT0001".into(),
                merchant_id: demo::SHANGHAI_MERCHANT.into(),
                terminal_id: "10000001".into(),
                amount: money::Amount::new(1_500, cny),
                status: store::wallets::OrderStatus::Created,
                wallet_id: None,
                created_at: start + 1,
                expires_at: start + 600,
                updated_at: start + 1,
            })
            .await
            .unwrap();
        assert!(
            world
                .store
                .transition_order(store::wallets::OrderTransition {
                    order_id: "ORDALERT0001".into(),
                    from: store::wallets::OrderStatus::Created,
                    to: store::wallets::OrderStatus::Paid,
                    wallet_id: Some(wallet.into()),
                    at: start + 5,
                })
                .await
                .unwrap()
        );
        let paid = api::alerts::pass(&state, start + 10).await.unwrap();
        assert_eq!((paid.queued, paid.delivered), (1, 1), "{paid:?}");
        assert_eq!(
            api::alerts::pass(&state, start + 11).await.unwrap(),
            api::alerts::PassReport::default(),
            "once"
        );
        let texts = sms.0.lock().unwrap().clone();
        assert_eq!(texts.len(), 1);
        assert!(
            texts[0].1.contains("QR payment approved, CNY 15.00"),
            "{texts:?}"
        );
        // The holder sees it among the wallet's newest alerts.
        let seen = world.get("cardholder1", &path).await.json();
        assert_eq!(seen["recent"][0]["state"], "delivered", "{seen}");
        assert!(
            seen["recent"][0]["text"]
                .as_str()
                .unwrap()
                .contains("CNY 15.00")
        );
    }
}
