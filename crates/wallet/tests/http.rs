//! The wallet's JSON routes in-process (`oneshot`), on SQLite: shapes of answers and
//! refusals, the body limit, that no password comes back in any answer, and that a wallet's
//! routes answer only its owner.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use money::Currency;
use serde_json::{Value, json};
use std::sync::Arc;
use store::Store;
use tower::ServiceExt;
use wallet::{NewWallet, WalletConfig, Wallets};

async fn router() -> (axum::Router, store::testing::TestBackend) {
    let backend = store::testing::sqlite();
    let store = Arc::new(Store::open(&backend.backend).await.unwrap());
    demo::seed(&store, &hsm::SoftHsm::new(&[0x42; 32]).unwrap())
        .await
        .unwrap();
    demo::seed_users(&store).await.unwrap();
    let api = api::ApiState::new(store.clone());
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
    (wallet::http::router(wallets, api), backend)
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
    let (router, _backend) = router().await;
    let (status, body) = call(
        &router,
        "POST",
        "/wallet/v1/orders",
        Some(json!({"order_id": "o-1", "terminal_id": "10000001", "amount": "12.34"}).to_string()),
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

    let (status, body) = call(&router, "GET", "/wallet/v1/orders/o-1", None).await;
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
            StatusCode::NOT_FOUND,
            "unknown_terminal",
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
        let (status, body) = call(&router, method, uri, request.map(|r| r.to_string())).await;
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
        &router,
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
        &router,
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
    let (router, _backend) = router().await;
    let big = json!({"payload": "0".repeat(wallet::http::MAX_BODY_BYTES), "wallet_id": "W", "password": "1"});
    let (status, _) = call(
        &router,
        "POST",
        "/wallet/v1/payments",
        Some(big.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_wallets_routes_answer_only_its_owner() {
    let (router, _backend) = router().await;
    let top_up = json!({"top_up_id": "t-9", "amount": "5.00", "password": "135790"}).to_string();
    // Nobody signed in: refused before anything is looked at.
    let (status, body) = call_as(
        &router,
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
            let (status, body) = call_as(&router, Some(user), method, uri, request).await;
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
    let (status, body) = call(&router, "GET", "/wallet/v1/wallets/W-CH001", None).await;
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
        &router,
        "POST",
        "/wallet/v1/wallets/W-CH001/top-ups",
        Some(top_up),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = call(&router, "GET", "/wallet/v1/wallets/W-CH001", None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["balance"],
        "5.00"
    );
}

#[tokio::test]
async fn a_merchant_manager_refunds_a_paid_order_back_to_the_wallet() {
    let (router, _backend) = router().await;
    let (status, _) = call(
        &router,
        "POST",
        "/wallet/v1/wallets/W-CH001/top-ups",
        Some(json!({"top_up_id": "t-r", "amount": "20.00", "password": "135790"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = call(
        &router,
        "POST",
        "/wallet/v1/orders",
        Some(json!({"order_id": "o-r", "terminal_id": "10000001", "amount": "5.00"}).to_string()),
    )
    .await;
    let order: Value = serde_json::from_str(&body).unwrap();
    // Not paid yet: nothing to refund.
    let (status, body) = call_as(
        &router,
        Some("shanghai.manager"),
        "POST",
        "/wallet/v1/orders/o-r/refund",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = call(
        &router,
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
        &router,
        Some("beijing.admin"),
        "POST",
        "/wallet/v1/orders/o-r/refund",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for user in ["cardholder1", "shanghai.cashier"] {
        let (status, body) = call_as(
            &router,
            Some(user),
            "POST",
            "/wallet/v1/orders/o-r/refund",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{user} {body}");
    }
    let (status, _) = call_as(&router, None, "POST", "/wallet/v1/orders/o-r/refund", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The merchant's manager: refunded in full, once.
    for _ in 0..2 {
        let (status, body) = call_as(
            &router,
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
    let (_, body) = call(&router, "GET", "/wallet/v1/wallets/W-CH001", None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["balance"],
        "20.00"
    );
}
