//! The wallet's JSON routes in-process (`oneshot`), on SQLite: shapes of answers and
//! refusals, the body limit, that no password comes back in any answer, and that a wallet's
//! routes answer only its owner.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use money::Currency;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use store::Store;
use tower::ServiceExt;
use wallet::{NewWallet, WalletConfig, Wallets};

/// The wallet's routes over the demo world, with the host's ISO 8583 handler that checks the
/// terminals' signatures, and the test's side of the demo terminals' keys.
struct Fixture {
    router: axum::Router,
    handler: Arc<acquirer::TerminalHandler>,
    keys: Mutex<HashMap<&'static str, TestKeys>>,
    _backend: store::testing::TestBackend,
}

/// A signed-on terminal's keys as the terminal holds them.
enum TestKeys {
    Session(terminal::WorkingKeys),
    Dukpt {
        device: terminal::dukpt::AesDukptDevice,
        counter: u32,
    },
}

async fn router() -> Fixture {
    let backend = store::testing::sqlite();
    let store = Arc::new(Store::open(&backend.backend).await.unwrap());
    let hsm = Arc::new(hsm::SoftHsm::new(&[0x42; 32]).unwrap());
    demo::seed(&store, hsm.as_ref()).await.unwrap();
    demo::seed_users(&store).await.unwrap();
    let api = api::ApiState::new(store.clone());
    let directory = store.load_directory().await.unwrap();
    let handler = Arc::new(acquirer::TerminalHandler::new(
        iso8583::Profile::builtin("cup-bcd").unwrap(),
        acquirer::TerminalRecord::from_directory(&directory),
        store.clone(),
        hsm,
    ));
    let wallets = Wallets::new(store, WalletConfig::demo());
    wallets
        .open_wallet(NewWallet {
            id: "W-CH001".into(),
            cardholder_id: "CH001".into(),
            currency: Currency::CNY,
            linked_card_id: Some("card-CH001-D".into()),
            password: "135790".into(),
        })
        .await
        .unwrap();
    let fixture = Fixture {
        router: wallet::http::router(wallets, api, handler.clone()),
        handler,
        keys: Mutex::new(HashMap::new()),
        _backend: backend,
    };
    fixture.sign_on("10000001").await;
    fixture
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

impl Fixture {
    /// Signs `terminal_id` on over ISO 8583, as the terminal does, and keeps its keys.
    async fn sign_on(&self, terminal_id: &'static str) {
        use host::Handler;
        let directory = demo::directory();
        let merchant = directory
            .terminals
            .iter()
            .find(|terminal| terminal.id == terminal_id)
            .map(|terminal| terminal.merchant_id.clone())
            .unwrap();
        let terminal = terminal::Terminal::new(terminal_id, &merchant).unwrap();
        let request = terminal
            .sign_on(iso8583::Stan::new(1).unwrap(), "001")
            .unwrap();
        let frame = terminal.pack(&request).unwrap();
        let host::Reply::Send(reply) = self
            .handler
            .handle(&frame, "127.0.0.1:1".parse().unwrap())
            .await
        else {
            panic!("no answer to the sign-on");
        };
        let answer = terminal.answer(&request, &reply, None).unwrap();
        assert!(
            answer.response.is_approved(),
            "{terminal_id}: {}",
            answer.response
        );
        let keys = match demo::dukpt_initial_ksn(terminal_id) {
            Some(ksn) => TestKeys::Dukpt {
                device: terminal::dukpt::AesDukptDevice::new(
                    demo::demo_dukpt_initial_key(terminal_id).unwrap(),
                    &hex::decode(ksn).unwrap(),
                )
                .unwrap(),
                counter: 0,
            },
            None => {
                let tmk = paycrypto::TdesKey::new(
                    &demo::demo_test_key(&demo::terminal_master_key_name(terminal_id)).unwrap(),
                )
                .unwrap();
                TestKeys::Session(
                    terminal::WorkingKeys::from_sign_on(&tmk, &answer.message)
                        .unwrap()
                        .keys,
                )
            }
        };
        self.keys.lock().unwrap().insert(terminal_id, keys);
    }

    /// The headers that sign a request as `terminal_id` at `timestamp` with `nonce`.
    fn headers(
        &self,
        terminal_id: &'static str,
        method: &str,
        path: &str,
        body: &[u8],
        timestamp: i64,
        nonce: &str,
    ) -> Vec<(&'static str, String)> {
        use wallet::terminal_auth::{self as auth, Signed};
        let mut keys = self.keys.lock().unwrap();
        let keys = keys.get_mut(terminal_id).expect("signed on");
        let text = |ksn: Option<&str>| {
            auth::canonical(&Signed {
                method,
                path,
                terminal_id,
                timestamp,
                nonce,
                ksn,
                body,
            })
        };
        let (ksn, mac) = match keys {
            TestKeys::Session(keys) => (None, keys.mac(text(None).as_bytes())),
            TestKeys::Dukpt { device, counter } => {
                *counter = device.next_counter(*counter).unwrap();
                let transaction = device.transaction(*counter).unwrap();
                let ksn = transaction.ksn().to_hex();
                let mac = transaction.request_mac(text(Some(&ksn)).as_bytes());
                (Some(ksn), mac)
            }
        };
        let mut headers = vec![
            (auth::HEADER_TERMINAL, terminal_id.to_owned()),
            (auth::HEADER_TIMESTAMP, timestamp.to_string()),
            (auth::HEADER_NONCE, nonce.to_owned()),
        ];
        if let Some(ksn) = ksn {
            headers.push((auth::HEADER_KSN, ksn));
        }
        headers.push((auth::HEADER_MAC, hex::encode(mac)));
        headers
    }

    /// A request signed by `terminal_id` now, with a new nonce.
    async fn terminal(
        &self,
        terminal_id: &'static str,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, String) {
        let body = body.map(|body| body.to_string());
        let nonce = format!("nonce-{:08}", rand_nonce());
        let headers = self.headers(
            terminal_id,
            method,
            uri,
            body.as_deref().unwrap_or("").as_bytes(),
            now(),
            &nonce,
        );
        self.send(method, uri, body, &headers).await
    }

    async fn send(
        &self,
        method: &str,
        uri: &str,
        body: Option<String>,
        headers: &[(&'static str, String)],
    ) -> (StatusCode, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request
            .body(body.map_or_else(Body::empty, Body::from))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// A nonce no other request of the test run uses.
fn rand_nonce() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// HTTP Basic of a demo user (password `easypos-demo-2026`).
fn basic(user: &str) -> String {
    use base64::Engine;
    let credentials = format!("{user}:{}", demo::DEMO_PASSWORD);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

/// A call as the owner of W-CH001 (cardholder1).
async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<String>,
) -> (StatusCode, String) {
    call_as(router, Some("cardholder1"), method, uri, body).await
}

async fn call_as(
    router: &axum::Router,
    user: Option<&str>,
    method: &str,
    uri: &str,
    body: Option<String>,
) -> (StatusCode, String) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(user) = user {
        request = request.header("authorization", basic(user));
    }
    let request = request
        .body(body.map_or_else(Body::empty, Body::from))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn orders_payments_and_refusals_have_one_shape_each() {
    let fixture = router().await;
    let router = &fixture.router;
    let (status, body) = fixture
        .terminal(
            "10000001",
            "POST",
            "/wallet/v1/orders",
            Some(json!({"order_id": "o-1", "terminal_id": "10000001", "amount": "12.34"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let order: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(order["status"], "created");
    assert_eq!(order["amount_minor"], 1234);
    assert_eq!(order["currency"], "CNY");
    assert_eq!(
        order["expires_at"].as_i64().unwrap() - order["created_at"].as_i64().unwrap(),
        120
    );

    let (status, body) = fixture
        .terminal("10000001", "GET", "/wallet/v1/orders/o-1", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["payload"],
        order["payload"]
    );

    for (method, uri, request, expected, code) in [
        (
            "GET",
            "/wallet/v1/orders/nope",
            None,
            StatusCode::NOT_FOUND,
            "unknown_order",
        ),
        (
            "POST",
            "/wallet/v1/orders",
            Some(json!({"order_id": "o 2", "terminal_id": "10000001", "amount": "1.00"})),
            StatusCode::BAD_REQUEST,
            "bad_order_id",
        ),
        (
            "POST",
            "/wallet/v1/orders",
            Some(json!({"order_id": "o-2", "terminal_id": "99999999", "amount": "1.00"})),
            StatusCode::UNAUTHORIZED,
            "terminal_mismatch",
        ),
        (
            "POST",
            "/wallet/v1/orders",
            Some(json!({"order_id": "o-2", "terminal_id": "10000001", "amount": "-1.00"})),
            StatusCode::BAD_REQUEST,
            "bad_amount",
        ),
        (
            "POST",
            "/wallet/v1/payments",
            Some(json!({"payload": "not a code", "wallet_id": "W-CH001", "password": "135790"})),
            StatusCode::BAD_REQUEST,
            "bad_payload",
        ),
        (
            "POST",
            "/wallet/v1/payments",
            Some(
                json!({"payload": order["payload"], "wallet_id": "W-CH001", "password": "135790"}),
            ),
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_balance",
        ),
        (
            "POST",
            "/wallet/v1/wallets/W-CH001/top-ups",
            Some(json!({"top_up_id": "t-1", "amount": "10.00", "password": "024680"})),
            StatusCode::UNAUTHORIZED,
            "wrong_password",
        ),
        (
            "POST",
            "/wallet/v1/wallets/W-NONE/top-ups",
            Some(json!({"top_up_id": "t-1", "amount": "10.00", "password": "135790"})),
            StatusCode::NOT_FOUND,
            "unknown_wallet",
        ),
    ] {
        let (status, body) = if uri.starts_with("/wallet/v1/orders") {
            fixture.terminal("10000001", method, uri, request).await
        } else {
            call(router, method, uri, request.map(|r| r.to_string())).await
        };
        assert_eq!(status, expected, "{uri} {body}");
        let refusal: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(refusal["error"], code, "{body}");
        assert!(refusal["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(
            !body.contains("024680") && !body.contains("135790"),
            "{body}"
        );
    }

    let (status, body) = call(
        router,
        "POST",
        "/wallet/v1/wallets/W-CH001/top-ups",
        Some(json!({"top_up_id": "t-1", "amount": "20.00", "password": "135790"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["balance"],
        "20.00"
    );
    let (status, body) = call(
        router,
        "POST",
        "/wallet/v1/payments",
        Some(
            json!({"payload": order["payload"], "wallet_id": "W-CH001", "password": "135790"})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let paid: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (paid["status"].as_str(), paid["wallet_id"].as_str()),
        (Some("paid"), Some("W-CH001"))
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_before_it_is_read() {
    let fixture = router().await;
    let router = &fixture.router;
    let big = json!({"payload": "0".repeat(wallet::http::MAX_BODY_BYTES), "wallet_id": "W", "password": "1"});
    let (status, _) = call(router, "POST", "/wallet/v1/payments", Some(big.to_string())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_wallets_routes_answer_only_its_owner() {
    let fixture = router().await;
    let router = &fixture.router;
    let top_up = json!({"top_up_id": "t-9", "amount": "5.00", "password": "135790"}).to_string();
    // Nobody signed in: refused before anything is looked at.
    let (status, body) = call_as(
        router,
        None,
        "POST",
        "/wallet/v1/wallets/W-CH001/top-ups",
        Some(top_up.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "unauthorized"
    );
    // Another cardholder, a merchant's cashier: the wallet is unknown to them, and the
    // wallet password (right as it is) moves nothing.
    for user in ["cardholder2", "shanghai.cashier"] {
        for (method, uri, request) in [
            (
                "POST",
                "/wallet/v1/wallets/W-CH001/top-ups",
                Some(top_up.clone()),
            ),
            ("GET", "/wallet/v1/wallets/W-CH001", None),
            (
                "POST",
                "/wallet/v1/payments",
                Some(
                    json!({"payload": "x", "wallet_id": "W-CH001", "password": "135790"})
                        .to_string(),
                ),
            ),
        ] {
            let (status, body) = call_as(router, Some(user), method, uri, request).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{user} {uri} {body}");
            assert_eq!(
                serde_json::from_str::<Value>(&body).unwrap()["error"],
                "unknown_wallet"
            );
        }
    }
    // A wrong login password: refused as the API refuses it.
    let mut wrong = Request::builder()
        .method("GET")
        .uri("/wallet/v1/wallets/W-CH001")
        .header(
            "authorization",
            format!("Basic {}", {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode("cardholder1:nope")
            }),
        )
        .body(Body::empty())
        .unwrap();
    let response = router
        .clone()
        .oneshot(std::mem::take(&mut wrong))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // The owner: the balance is untouched, then a top-up shows in it.
    let (status, body) = call(router, "GET", "/wallet/v1/wallets/W-CH001", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let view: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            view["balance"].as_str(),
            view["orders"].as_array().map(Vec::len)
        ),
        (Some("0.00"), Some(0))
    );
    let (status, _) = call(
        router,
        "POST",
        "/wallet/v1/wallets/W-CH001/top-ups",
        Some(top_up),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = call(router, "GET", "/wallet/v1/wallets/W-CH001", None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["balance"],
        "5.00"
    );
}

#[tokio::test]
async fn a_merchant_manager_refunds_a_paid_order_back_to_the_wallet() {
    let fixture = router().await;
    let router = &fixture.router;
    let (status, _) = call(
        router,
        "POST",
        "/wallet/v1/wallets/W-CH001/top-ups",
        Some(json!({"top_up_id": "t-r", "amount": "20.00", "password": "135790"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = fixture
        .terminal(
            "10000001",
            "POST",
            "/wallet/v1/orders",
            Some(json!({"order_id": "o-r", "terminal_id": "10000001", "amount": "5.00"})),
        )
        .await;
    let order: Value = serde_json::from_str(&body).unwrap();
    // Not paid yet: nothing to refund.
    let (status, body) = call_as(
        router,
        Some("shanghai.manager"),
        "POST",
        "/wallet/v1/orders/o-r/refund",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = call(
        router,
        "POST",
        "/wallet/v1/payments",
        Some(
            json!({"payload": order["payload"], "wallet_id": "W-CH001", "password": "135790"})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // The payer and a cashier: not theirs to refund (an administrator signs in with a second
    // factor, which Basic cannot carry: 401 before anything is looked at).
    let (status, _) = call_as(
        router,
        Some("beijing.admin"),
        "POST",
        "/wallet/v1/orders/o-r/refund",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for user in ["cardholder1", "shanghai.cashier"] {
        let (status, body) = call_as(
            router,
            Some(user),
            "POST",
            "/wallet/v1/orders/o-r/refund",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{user} {body}");
    }
    let (status, _) = call_as(router, None, "POST", "/wallet/v1/orders/o-r/refund", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The merchant's manager: refunded in full, once.
    for _ in 0..2 {
        let (status, body) = call_as(
            router,
            Some("shanghai.manager"),
            "POST",
            "/wallet/v1/orders/o-r/refund",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["status"],
            "refunded"
        );
    }
    let (_, body) = call(router, "GET", "/wallet/v1/wallets/W-CH001", None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["balance"],
        "20.00"
    );
}

fn error_of(body: &str) -> String {
    serde_json::from_str::<Value>(body).unwrap()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn terminal_routes_refuse_requests_not_signed_by_the_terminal() {
    let fixture = router().await;
    let create = json!({"order_id": "o-a", "terminal_id": "10000001", "amount": "5.00"});
    let cancel = json!({"terminal_id": "10000001", "amount": "5.00"});
    let charge = json!({"charge_id": "c-a", "terminal_id": "10000001", "amount": "5.00", "code": "884000000000000000000"});
    // No signature at all, even with a cardholder's login: 401 `unsigned`, nothing created.
    for (method, uri, body) in [
        ("POST", "/wallet/v1/orders", Some(create.to_string())),
        ("GET", "/wallet/v1/orders/o-a", None),
        (
            "POST",
            "/wallet/v1/orders/o-a/cancel",
            Some(cancel.to_string()),
        ),
        ("POST", "/wallet/v1/charges", Some(charge.to_string())),
    ] {
        let (status, body) = call(&fixture.router, method, uri, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} {body}");
        assert_eq!(error_of(&body), "unsigned", "{body}");
    }

    let body = create.to_string();
    let signed = |timestamp, nonce: &str| {
        fixture.headers(
            "10000001",
            "POST",
            "/wallet/v1/orders",
            body.as_bytes(),
            timestamp,
            nonce,
        )
    };
    // A wrong MAC, and a right one over another body: `bad_mac`, and never the MAC in the
    // answer.
    let mut headers = signed(now(), "nonce-bad-mac");
    let sent_mac = headers.last().unwrap().1.clone();
    let wrong_mac = format!(
        "{}{}",
        if sent_mac.starts_with('0') { "1" } else { "0" },
        &sent_mac[1..]
    );
    headers.last_mut().unwrap().1 = wrong_mac.clone();
    let (status, answer) = fixture
        .send("POST", "/wallet/v1/orders", Some(body.clone()), &headers)
        .await;
    assert_eq!(
        (status, error_of(&answer).as_str()),
        (StatusCode::UNAUTHORIZED, "bad_mac"),
        "{answer}"
    );
    assert!(
        !answer.contains(&sent_mac) && !answer.contains(&wrong_mac),
        "{answer}"
    );
    let headers = signed(now(), "nonce-other-body");
    let tampered = json!({"order_id": "o-a", "terminal_id": "10000001", "amount": "0.01"});
    let (status, answer) = fixture
        .send(
            "POST",
            "/wallet/v1/orders",
            Some(tampered.to_string()),
            &headers,
        )
        .await;
    assert_eq!(
        (status, error_of(&answer).as_str()),
        (StatusCode::UNAUTHORIZED, "bad_mac"),
        "{answer}"
    );

    // Too old, and too far ahead: `stale_timestamp`. A minute past the 300 s window each way,
    // so that a second ticking over between this clock read and the host's cannot bring the
    // time back inside it.
    for timestamp in [now() - 360, now() + 360] {
        let headers = signed(timestamp, &format!("nonce-stale-{timestamp}"));
        let (status, answer) = fixture
            .send("POST", "/wallet/v1/orders", Some(body.clone()), &headers)
            .await;
        assert_eq!(
            (status, error_of(&answer).as_str()),
            (StatusCode::UNAUTHORIZED, "stale_timestamp"),
            "{answer}"
        );
    }

    // Signed right: taken once; the same request again is a replay.
    let headers = signed(now(), "nonce-once-only");
    let (status, answer) = fixture
        .send("POST", "/wallet/v1/orders", Some(body.clone()), &headers)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = fixture
        .send("POST", "/wallet/v1/orders", Some(body.clone()), &headers)
        .await;
    assert_eq!(
        (status, error_of(&answer).as_str()),
        (StatusCode::UNAUTHORIZED, "replayed_nonce"),
        "{answer}"
    );

    // A body that names another terminal than the signer: `terminal_mismatch`.
    let (status, answer) = fixture
        .terminal(
            "10000001",
            "POST",
            "/wallet/v1/orders",
            Some(json!({"order_id": "o-b", "terminal_id": "10000002", "amount": "5.00"})),
        )
        .await;
    assert_eq!(
        (status, error_of(&answer).as_str()),
        (StatusCode::UNAUTHORIZED, "terminal_mismatch"),
        "{answer}"
    );

    // A terminal that has not signed on (its keys are made up: the host has none for it).
    fixture.keys.lock().unwrap().insert(
        "20000001",
        TestKeys::Session(
            terminal::WorkingKeys::new(
                paycrypto::TdesKey::new(&[0x13; 16]).unwrap(),
                paycrypto::TdesKey::new(&[0x31; 16]).unwrap(),
            )
            .unwrap(),
        ),
    );
    let (status, answer) = fixture
        .terminal("20000001", "GET", "/wallet/v1/orders/o-a", None)
        .await;
    assert_eq!(
        (status, error_of(&answer).as_str()),
        (StatusCode::UNAUTHORIZED, "terminal_not_signed_on"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_terminal_sees_and_cancels_only_its_own_orders() {
    let fixture = router().await;
    fixture.sign_on("10000002").await;
    let (status, _) = call(
        &fixture.router,
        "POST",
        "/wallet/v1/wallets/W-CH001/top-ups",
        Some(json!({"top_up_id": "t-o", "amount": "20.00", "password": "135790"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = fixture
        .terminal(
            "10000002",
            "POST",
            "/wallet/v1/orders",
            Some(json!({"order_id": "o-2nd", "terminal_id": "10000002", "amount": "5.00"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let order: Value = serde_json::from_str(&body).unwrap();
    let (status, _) = call(
        &fixture.router,
        "POST",
        "/wallet/v1/payments",
        Some(
            json!({"payload": order["payload"], "wallet_id": "W-CH001", "password": "135790"})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Terminal 10000001, signed right, is told the order does not exist, and its cancel
    // gives nothing back.
    let (status, body) = fixture
        .terminal("10000001", "GET", "/wallet/v1/orders/o-2nd", None)
        .await;
    assert_eq!(
        (status, error_of(&body).as_str()),
        (StatusCode::NOT_FOUND, "unknown_order")
    );
    let (status, body) = fixture
        .terminal(
            "10000001",
            "POST",
            "/wallet/v1/orders/o-2nd/cancel",
            Some(json!({"terminal_id": "10000001", "amount": "5.00"})),
        )
        .await;
    assert_eq!(
        (status, error_of(&body).as_str()),
        (StatusCode::NOT_FOUND, "unknown_order")
    );
    let (_, body) = call(&fixture.router, "GET", "/wallet/v1/wallets/W-CH001", None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["balance"],
        "15.00"
    );
    // Its own terminal sees it paid and can cancel (reverse) it.
    let (status, body) = fixture
        .terminal("10000002", "GET", "/wallet/v1/orders/o-2nd", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "paid"
    );
    let (status, body) = fixture
        .terminal(
            "10000002",
            "POST",
            "/wallet/v1/orders/o-2nd/cancel",
            Some(json!({"terminal_id": "10000002", "amount": "5.00"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "reversed"
    );
}

#[tokio::test]
async fn a_dukpt_terminal_signs_with_a_new_ksn_each_request() {
    let fixture = router().await;
    let dukpt = demo::DUKPT_TERMINAL;
    fixture.sign_on(dukpt).await;
    let (status, body) = fixture
        .terminal(
            dukpt,
            "POST",
            "/wallet/v1/orders",
            Some(json!({"order_id": "o-dukpt", "terminal_id": dukpt, "amount": "3.00"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = fixture
        .terminal(dukpt, "GET", "/wallet/v1/orders/o-dukpt", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["terminal_id"],
        dukpt
    );
    // The KSN is signed: another counter's KSN in the header does not verify.
    let mut headers = fixture.headers(
        dukpt,
        "GET",
        "/wallet/v1/orders/o-dukpt",
        b"",
        now(),
        "nonce-dukpt-swap",
    );
    let ksn = headers
        .iter_mut()
        .find(|(name, _)| *name == wallet::terminal_auth::HEADER_KSN)
        .unwrap();
    let mut bytes = hex::decode(&ksn.1).unwrap();
    *bytes.last_mut().unwrap() ^= 0x01;
    ksn.1 = hex::encode(bytes);
    let (status, body) = fixture
        .send("GET", "/wallet/v1/orders/o-dukpt", None, &headers)
        .await;
    assert_eq!(
        (status, error_of(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "bad_mac"),
        "{body}"
    );
    // Without its KSN, a DUKPT terminal's request cannot be checked.
    headers.retain(|(name, _)| *name != wallet::terminal_auth::HEADER_KSN);
    let (status, body) = fixture
        .send("GET", "/wallet/v1/orders/o-dukpt", None, &headers)
        .await;
    assert_eq!(
        (status, error_of(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "bad_ksn"),
        "{body}"
    );
}

#[tokio::test]
async fn answers_carry_the_apis_security_headers() {
    let fixture = router().await;
    for (user, uri, status) in [
        (
            Some("cardholder1"),
            "/wallet/v1/wallets/W-CH001",
            StatusCode::OK,
        ),
        (None, "/wallet/v1/wallets/W-CH001", StatusCode::UNAUTHORIZED),
    ] {
        let mut request = Request::get(uri);
        if let Some(user) = user {
            request = request.header("authorization", basic(user));
        }
        let response = fixture
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{uri}");
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(
            headers["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'"
        );
    }
}
