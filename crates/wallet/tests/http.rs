//! The wallet's JSON routes in-process (`oneshot`), on SQLite: shapes of answers and
//! refusals, the body limit, and that no password comes back in any answer.
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
    (wallet::http::router(wallets), backend)
}

async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<String>,
) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
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
