#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Webhooks end to end: a receiver on 127.0.0.1 gets signed events for the transactions its
//! subscriber may see, a failed attempt is retried after its backoff, the log shows it, and a
//! delivery can be sent again.

mod common;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use common::{masked, world};
use std::sync::{Arc, Mutex};
use store::journal::JournalEntry;

#[derive(Clone, Default)]
struct Received {
    requests: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    /// Answers to give, in order; 200 after them.
    answers: Arc<Mutex<Vec<u16>>>,
}

async fn receiver(received: Received) -> String {
    let app = axum::Router::new()
        .route(
            "/hook",
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
    format!("http://{address}/hook")
}

fn sale(merchant: &str, terminal: &str, card: &str, rrn: &str) -> JournalEntry {
    JournalEntry {
        received_at: 1_764_000_000_000_000,
        terminal_id: terminal.into(),
        merchant_id: merchant.into(),
        mti: "0200".into(),
        kind: "Sale".into(),
        batch: Some(1),
        stan: Some(77),
        amount_minor: Some(2_000),
        currency: Some(156),
        card: Some(masked(card)),
        response: Some("00".into()),
        rrn: Some(rrn.into()),
        ..JournalEntry::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_are_signed_retried_logged_and_redelivered() {
    let world = world().await;
    let received = Received::default();
    received.answers.lock().unwrap().push(500);
    let url = receiver(received.clone()).await;

    // The partner (referred Beijing) subscribes.
    let created = world
        .call(
            "partner",
            "POST",
            "/api/v1/webhooks",
            Some("wh-1"),
            &format!(r#"{{"url":"{url}"}}"#),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let secret = created.json()["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let listed = world.get("partner", "/api/v1/webhooks").await;
    assert!(
        listed.text.contains(&id) && !listed.text.contains(&secret),
        "the secret is shown once"
    );
    let https = world
        .call(
            "partner",
            "POST",
            "/api/v1/webhooks",
            Some("wh-2"),
            r#"{"url":"https://example.test/"}"#,
        )
        .await;
    assert_eq!(https.status, StatusCode::BAD_REQUEST);

    let state = api::ApiState {
        freezes: Default::default(),
        receipts: None,
        refunds: None,
        disputes: None,
        webhooks: Some(
            api::webhooks::WebhookKeys::ensure(
                &world.store,
                Arc::new(hsm::SoftHsm::new(&[0x42; 32]).unwrap()),
            )
            .await
            .unwrap(),
        ),
        ..api::ApiState::new(world.store.clone())
    };
    let now = 1_800_000_000;
    // The first pass starts at the journal's end: the planted transactions are history.
    assert_eq!(api::webhooks::pass(&state, now).await.unwrap().queued, 0);
    world
        .store
        .journal(vec![
            sale(
                demo::BEIJING_MERCHANT,
                "20000001",
                "card-CH002-C",
                "RRNBJNEW0001",
            ),
            sale(
                demo::SHANGHAI_MERCHANT,
                "10000001",
                "card-CH001-D",
                "RRNSHNEW0001",
            ),
        ])
        .await
        .unwrap();
    // One event for each subscriber whose tenant covers it: the Beijing sale for the partner,
    // the Shanghai sale for the Shanghai admin's webhook (whose receiver is down). Neither
    // first attempt succeeds: ours answers 500.
    let first = api::webhooks::pass(&state, now).await.unwrap();
    assert_eq!((first.queued, first.delivered, first.failed), (2, 0, 2));
    let again = api::webhooks::pass(&state, now + 9).await.unwrap();
    assert_eq!(again.delivered + again.failed, 0, "not before its backoff");
    let retried = api::webhooks::pass(&state, now + 10).await.unwrap();
    assert_eq!((retried.delivered, retried.failed), (1, 1));

    let requests = received.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    let (headers, body) = &requests[1];
    assert!(body.contains("RRNBJNEW0001") && !body.contains("RRNSHNEW0001"));
    assert!(body.contains(&masked("card-CH002-C")));
    assert_eq!(headers["easypos-event-type"], "transaction.created");
    let signature = headers["easypos-signature"].to_str().unwrap();
    let timestamp: i64 = signature
        .strip_prefix("t=")
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let raw: Vec<u8> = (0..16)
        .map(|index| u8::from_str_radix(&secret[6 + 2 * index..8 + 2 * index], 16).unwrap())
        .collect();
    assert_eq!(
        signature,
        api::webhooks::signature(&raw, timestamp, body.as_bytes())
    );

    let log = world
        .get("partner", &format!("/api/v1/webhooks/{id}/deliveries"))
        .await;
    let delivery = &log.json()["data"][0];
    assert_eq!(delivery["state"], "delivered");
    assert_eq!(delivery["attempts"], 2);
    assert_eq!(delivery["payload"]["data"]["rrn"], "RRNBJNEW0001");
    let delivery_id = delivery["id"].as_str().unwrap().to_owned();

    let redeliver = world
        .call(
            "partner",
            "POST",
            &format!("/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver"),
            Some("re-1"),
            "",
        )
        .await;
    assert_eq!(redeliver.status, StatusCode::ACCEPTED, "{}", redeliver.text);
    let resent = api::webhooks::pass(&state, state.now_seconds())
        .await
        .unwrap();
    assert_eq!(resent.delivered, 1);
    assert_eq!(received.requests.lock().unwrap().len(), 3);

    let stopped = world
        .call(
            "partner",
            "DELETE",
            &format!("/api/v1/webhooks/{id}"),
            None,
            "",
        )
        .await;
    assert_eq!(stopped.status, StatusCode::NO_CONTENT);
    assert_eq!(
        world
            .get("partner", &format!("/api/v1/webhooks/{id}/deliveries"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}
