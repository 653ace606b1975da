#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The REST API in-process (`Router` + `oneshot`): every route, the document, idempotency,
//! problems, and the tenant-isolation matrix.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Answer, PLANTED, World, masked, rrn, world};
use std::collections::BTreeSet;

const SH: &str = demo::SHANGHAI_MERCHANT;
const BJ: &str = demo::BEIJING_MERCHANT;

#[tokio::test(flavor = "multi_thread")]
async fn the_document_lists_exactly_the_routes_and_every_route_answers() {
    let world = world().await;
    let document = world.get("operator", "/api/openapi.json").await.json();
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routes: BTreeSet<(String, String)> = api::ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(documented, routes);
    for (method, path) in &routes {
        let path = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "x"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let answer = world
            .call("operator", method, &path, Some("k-routes"), "{}")
            .await;
        assert!(
            !answer.text.contains("no-route") && answer.status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {} {}",
            answer.status,
            answer.text
        );
    }
    let unknown = world.get("operator", "/api/v1/nothing-here").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown.text.contains("/api/problems#no-route"),
        "{}",
        unknown.text
    );
    let wrong_method = world
        .call("operator", "PUT", "/api/v1/merchants", None, "")
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.content_type, "application/problem+json");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_matches_its_snapshot() {
    let actual = serde_json::to_string_pretty(&api::openapi::document()).unwrap() + "\n";
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "the OpenAPI document changed; review it and run with UPDATE_SNAPSHOTS=1 to accept (and update docs/api.md)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_required_and_errors_are_problems() {
    let world = world().await;
    let none = world
        .send(Request::get("/api/v1/me").body(Body::empty()).unwrap())
        .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.content_type, "application/problem+json");
    let problem = none.json();
    assert_eq!(problem["type"], "/api/problems#unauthorized");
    assert_eq!(problem["status"], 401);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );

    let wrong = world
        .send(
            Request::get("/api/v1/me")
                .header("authorization", "Bearer ek_000000000000_0000000000000000000000000000000000000000000000000000000000000000")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);

    use base64::Engine;
    let basic = |user: &str, password: &str| {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Request::get("/api/v1/me")
            .header("authorization", format!("Basic {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let me = world
        .send(basic("shanghai.manager", demo::DEMO_PASSWORD))
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.json()["role"], "merchant_manager");
    assert_eq!(me.json()["tenant"]["id"], SH);
    assert_eq!(
        world
            .send(basic("shanghai.manager", "not the password"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // A role with a second factor cannot sign in with its password alone.
    let admin = world
        .send(basic("shanghai.admin", demo::DEMO_PASSWORD))
        .await;
    assert_eq!(admin.status, StatusCode::UNAUTHORIZED);
    assert_eq!(admin.json()["type"], "/api/problems#mfa-required");

    let bad = world
        .get("operator", "/api/v1/transactions?status=maybe")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.json()["detail"].as_str().unwrap().contains("`status`"),
        "{}",
        bad.text
    );
    let unknown = world
        .get("operator", "/api/v1/transactions?colour=red")
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.text.contains("colour"), "{}", unknown.text);
    let full_pan = world
        .get(
            "operator",
            &format!("/api/v1/transactions?card={}", demo::cards()[0].pan),
        )
        .await;
    assert_eq!(
        full_pan.status,
        StatusCode::BAD_REQUEST,
        "a full card number is never a filter"
    );
}

fn rrns(answer: &common::Answer) -> BTreeSet<String> {
    answer.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["rrn"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn transactions_filter_and_page() {
    let world = world().await;
    let page = |query: &'static str| world.get("operator", query);
    let all = page("/api/v1/transactions").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(rrns(&all).len(), 4, "the sign-on is not a transaction");
    let row = &all.json()["data"][0];
    assert_eq!(row["rrn"], rrn("t4"), "newest first");
    assert_eq!(row["amount"]["major"], "30.00");
    assert_eq!(row["amount"]["currency"], "CNY");
    assert_eq!(row["card"], masked("card-CH001-D"));
    assert_eq!(row["status"], "approved");
    assert_eq!(row["received_at"], "2025-11-24T16:04:00.000000Z");

    let declined = page("/api/v1/transactions?status=declined").await;
    assert_eq!(rrns(&declined), BTreeSet::from([rrn("t2")]));
    let by_card = world
        .get(
            "operator",
            &format!("/api/v1/transactions?card={}", masked("card-CH001-D")),
        )
        .await;
    assert_eq!(rrns(&by_card), BTreeSet::from([rrn("t1"), rrn("t4")]));
    let by_token = page("/api/v1/transactions?card=card-CH001-D").await;
    assert_eq!(rrns(&by_token), BTreeSet::from([rrn("t1"), rrn("t4")]));
    let no_such = page("/api/v1/transactions?card=card-nobody").await;
    assert_eq!(no_such.status, StatusCode::OK);
    assert!(rrns(&no_such).is_empty());
    let holder_other = world
        .get("cardholder1", "/api/v1/transactions?card=card-CH002-C")
        .await;
    assert!(
        rrns(&holder_other).is_empty(),
        "a token narrows, never widens"
    );
    let by_amount = page("/api/v1/transactions?min_amount_minor=3000&max_amount_minor=5000").await;
    assert_eq!(rrns(&by_amount), BTreeSet::from([rrn("t3"), rrn("t4")]));
    let by_time =
        page("/api/v1/transactions?from=2025-11-24T16:02:00Z&to=2025-11-24T16:04:00Z").await;
    assert_eq!(rrns(&by_time), BTreeSet::from([rrn("t2"), rrn("t3")]));
    let by_terminal = page("/api/v1/transactions?terminal_id=10000002").await;
    assert_eq!(rrns(&by_terminal), BTreeSet::from([rrn("t2")]));
    let by_merchant = world
        .get(
            "operator",
            &format!("/api/v1/transactions?merchant_id={BJ}"),
        )
        .await;
    assert_eq!(rrns(&by_merchant), BTreeSet::from([rrn("t3"), rrn("t4")]));

    // Three pages of at most two.
    let first = page("/api/v1/transactions?limit=3").await.json();
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = world
        .get(
            "operator",
            &format!("/api/v1/transactions?limit=3&cursor={cursor}"),
        )
        .await
        .json();
    assert_eq!(first["data"].as_array().unwrap().len(), 3);
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert_eq!(second["data"][0]["rrn"], rrn("t1"));
    assert!(second["next_cursor"].is_null());

    let id = world.transactions["t3"];
    let detail = world
        .get("operator", &format!("/api/v1/transactions/{id}"))
        .await;
    assert_eq!(detail.json()["rrn"], rrn("t3"));
}

#[tokio::test(flavor = "multi_thread")]
async fn posts_are_idempotent() {
    let world = world().await;
    let path = "/api/v1/api-keys";
    let missing = world
        .call("operator", "POST", path, None, r#"{"name":"a"}"#)
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.text.contains("Idempotency-Key"));

    let first = world
        .call(
            "operator",
            "POST",
            path,
            Some("k1"),
            r#"{"name":"reports"}"#,
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let secret = first.json()["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ek_"));
    let again = world
        .call(
            "operator",
            "POST",
            path,
            Some("k1"),
            r#"{"name":"reports"}"#,
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(
        again.text, first.text,
        "the original answer, not a second key"
    );
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let keys = world.get("operator", path).await.json();
    assert_eq!(
        keys["data"].as_array().unwrap().len(),
        2,
        "the test key and one new key"
    );
    assert!(
        !keys.to_string().contains(&secret),
        "a key's secret is shown once"
    );

    let other = world
        .call("operator", "POST", path, Some("k1"), r#"{"name":"other"}"#)
        .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.json()["type"], "/api/problems#idempotency-key-reused");

    // A request with this key is running (claimed, not yet answered): a duplicate gets 409.
    let user = world
        .store
        .user_by_username("operator")
        .await
        .unwrap()
        .unwrap();
    let body = r#"{"name":"slow"}"#;
    let digest = store::accounts::request_digest("POST", path, body.as_bytes());
    world
        .store
        .begin_idempotent(&user.id, "k2", digest, now())
        .await
        .unwrap();
    let racing = world.call("operator", "POST", path, Some("k2"), body).await;
    assert_eq!(racing.status, StatusCode::CONFLICT, "{}", racing.text);
    assert_eq!(
        racing.json()["type"],
        "/api/problems#idempotency-key-in-use"
    );

    // Keys are per user: another user's k1 is a new request.
    let theirs = world
        .call("bank", "POST", path, Some("k1"), r#"{"name":"other"}"#)
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED);

    // A refused request is kept too: its retry is refused the same way.
    let bad = world
        .call("operator", "POST", path, Some("k3"), r#"{"name":""}"#)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad_again = world
        .call("operator", "POST", path, Some("k3"), r#"{"name":""}"#)
        .await;
    assert_eq!(bad_again.text, bad.text);
    assert_eq!(bad_again.content_type, "application/problem+json");

    let id = first.json()["id"].as_str().unwrap().to_owned();
    let revoked = world
        .call("operator", "DELETE", &format!("{path}/{id}"), None, "")
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let refused = world
        .send(
            Request::get("/api/v1/me")
                .header("authorization", format!("Bearer {secret}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread")]
async fn cardholders_see_their_cards_with_balances() {
    let world = world().await;
    let cards = world.get("cardholder1", "/api/v1/cards").await.json();
    let ids: Vec<&str> = cards["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|card| card["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["card-CH001-C", "card-CH001-D"]);
    let debit = world
        .get("cardholder1", "/api/v1/cards/card-CH001-D")
        .await
        .json();
    assert_eq!(debit["masked_pan"], masked("card-CH001-D"));
    assert_eq!(debit["balance"]["major"], "5000.00");
    assert_eq!(debit["available"]["currency"], "CNY");
    let credit = world
        .get("cardholder1", "/api/v1/cards/card-CH001-C")
        .await
        .json();
    assert_eq!(
        credit["available"]["major"], "20000.00",
        "unused credit limit"
    );
}

/// One matrix line: method, path and the expected status for each demo user.
type Line = (String, String, Vec<(&'static str, u16)>);

/// What one role may do, per route: the expected status for each demo user.
type Row = (&'static str, &'static [(&'static str, u16)]);

/// Every API route × every role: allowed (200/201/204), 403 (role) or 404 (another tenant's).
fn matrix(world: &World) -> Vec<Line> {
    let t = |name: &str| world.transactions[name].to_string();
    let all = |status: u16| -> Vec<(&'static str, u16)> {
        USERS.iter().map(|user| (*user, status)).collect()
    };
    let per = |row: &[(&'static str, u16)]| row.to_vec();
    const MERCHANT_ROUTE: Row = (
        "",
        &[
            ("operator", 200),
            ("bank", 403),
            ("wallet", 403),
            ("shanghai.admin", 200),
            ("shanghai.manager", 200),
            ("shanghai.cashier", 200),
            ("beijing.admin", 404),
            ("cardholder1", 403),
            ("partner", 404),
        ],
    );
    let flip = |row: &[(&'static str, u16)]| -> Vec<(&'static str, u16)> {
        row.iter()
            .map(|(user, status)| {
                let status = match (
                    user.starts_with("shanghai")
                        || user.starts_with("beijing")
                        || *user == "partner",
                    *status,
                ) {
                    (true, 200) => 404,
                    (true, 404) => 200,
                    (_, status) => status,
                };
                (*user, status)
            })
            .collect()
    };
    let keys_allowed = |ok: u16| -> Vec<(&'static str, u16)> {
        USERS
            .iter()
            .map(|user| {
                let allowed = matches!(
                    *user,
                    "operator" | "bank" | "wallet" | "shanghai.admin" | "beijing.admin" | "partner"
                );
                (*user, if allowed { ok } else { 403 })
            })
            .collect()
    };
    vec![
        ("GET".into(), "/api/v1/me".into(), all(200)),
        ("GET".into(), "/api/v1/transactions".into(), all(200)),
        (
            "GET".into(),
            format!("/api/v1/transactions/{}", t("t1")),
            per(&[
                ("operator", 200),
                ("bank", 200),
                ("wallet", 404),
                ("shanghai.admin", 200),
                ("shanghai.manager", 200),
                ("shanghai.cashier", 200),
                ("beijing.admin", 404),
                ("cardholder1", 200),
                ("partner", 404),
            ]),
        ),
        // Statements: every role, within its tenant.
        ("GET".into(), "/api/v1/statements/2025-11".into(), all(200)),
        // The timeline: whoever may see the transaction (its cardholder, its issuer …).
        (
            "GET".into(),
            format!("/api/v1/transactions/{}/timeline", t("t1")),
            per(&[
                ("operator", 200),
                ("bank", 200),
                ("wallet", 404),
                ("shanghai.admin", 200),
                ("shanghai.manager", 200),
                ("shanghai.cashier", 200),
                ("beijing.admin", 404),
                ("cardholder1", 200),
                ("partner", 404),
            ]),
        ),
        (
            "GET".into(),
            format!("/api/v1/transactions/{}", t("t3")),
            per(&[
                ("operator", 200),
                ("bank", 404),
                ("wallet", 404),
                ("shanghai.admin", 404),
                ("shanghai.manager", 404),
                ("shanghai.cashier", 404),
                ("beijing.admin", 200),
                ("cardholder1", 404),
                ("partner", 200),
            ]),
        ),
        (
            "GET".into(),
            "/api/v1/merchants".into(),
            per(&[
                ("operator", 200),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 200),
                ("shanghai.manager", 200),
                ("shanghai.cashier", 200),
                ("beijing.admin", 200),
                ("cardholder1", 403),
                ("partner", 200),
            ]),
        ),
        (
            "GET".into(),
            format!("/api/v1/merchants/{SH}"),
            per(MERCHANT_ROUTE.1),
        ),
        (
            "GET".into(),
            format!("/api/v1/merchants/{BJ}"),
            flip(MERCHANT_ROUTE.1),
        ),
        (
            "GET".into(),
            "/api/v1/terminals".into(),
            per(&[
                ("operator", 200),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 200),
                ("shanghai.manager", 200),
                ("shanghai.cashier", 200),
                ("beijing.admin", 200),
                ("cardholder1", 403),
                ("partner", 200),
            ]),
        ),
        (
            "GET".into(),
            "/api/v1/terminals/10000001".into(),
            per(MERCHANT_ROUTE.1),
        ),
        (
            "GET".into(),
            "/api/v1/terminals/20000001".into(),
            flip(MERCHANT_ROUTE.1),
        ),
        (
            "GET".into(),
            "/api/v1/cards".into(),
            per(&[
                ("operator", 403),
                ("bank", 200),
                ("wallet", 200),
                ("shanghai.admin", 403),
                ("shanghai.manager", 403),
                ("shanghai.cashier", 403),
                ("beijing.admin", 403),
                ("cardholder1", 200),
                ("partner", 403),
            ]),
        ),
        (
            "GET".into(),
            "/api/v1/cards/card-CH001-D".into(),
            per(&[
                ("operator", 403),
                ("bank", 200),
                ("wallet", 404),
                ("shanghai.admin", 403),
                ("shanghai.manager", 403),
                ("shanghai.cashier", 403),
                ("beijing.admin", 403),
                ("cardholder1", 200),
                ("partner", 403),
            ]),
        ),
        (
            "GET".into(),
            "/api/v1/cards/card-CH002-C".into(),
            per(&[
                ("operator", 403),
                ("bank", 404),
                ("wallet", 404),
                ("shanghai.admin", 403),
                ("shanghai.manager", 403),
                ("shanghai.cashier", 403),
                ("beijing.admin", 403),
                ("cardholder1", 404),
                ("partner", 403),
            ]),
        ),
        // Alerts and the holder's own freeze: the card's holder only; another holder's card
        // is not found. Freeze, then unfreeze, before the fraud report below freezes it.
        (
            "GET".into(),
            "/api/v1/cards/card-CH001-D/alerts".into(),
            holder_only(200),
        ),
        (
            "PUT".into(),
            "/api/v1/cards/card-CH001-D/alerts".into(),
            holder_only(200),
        ),
        (
            "PUT".into(),
            "/api/v1/cards/card-CH001-D/freeze".into(),
            holder_only(204),
        ),
        (
            "DELETE".into(),
            "/api/v1/cards/card-CH001-D/freeze".into(),
            holder_only(204),
        ),
        (
            "PUT".into(),
            "/api/v1/cards/card-CH002-C/freeze".into(),
            holder_only(404),
        ),
        ("GET".into(), "/api/v1/api-keys".into(), keys_allowed(200)),
        ("POST".into(), "/api/v1/api-keys".into(), keys_allowed(201)),
        (
            "DELETE".into(),
            "/api/v1/api-keys/ek_000000000000".into(),
            keys_allowed(404),
        ),
        ("GET".into(), "/api/v1/webhooks".into(), keys_allowed(200)),
        ("POST".into(), "/api/v1/webhooks".into(), keys_allowed(201)),
        (
            "GET".into(),
            format!("/api/v1/webhooks/{}/deliveries", world.shanghai_webhook),
            shanghai_admin_only(200),
        ),
        (
            "POST".into(),
            format!(
                "/api/v1/webhooks/{}/deliveries/{}/redeliver",
                world.shanghai_webhook, world.shanghai_delivery
            ),
            shanghai_admin_only(202),
        ),
        // Emergency freezes: the acquirer's operator, and Shanghai's admin and manager for
        // their own terminal; only the operator freezes a card.
        (
            "PUT".into(),
            "/api/v1/freezes/terminal/10000001".into(),
            freezers(200, 404),
        ),
        ("GET".into(), "/api/v1/freezes".into(), freezers(200, 200)),
        (
            "DELETE".into(),
            "/api/v1/freezes/terminal/10000001".into(),
            freezers(204, 404),
        ),
        // The audit log: operators their institution's and merchants' entries, a merchant's
        // admin and manager their own; only operators walk the whole chain. Before the card
        // freeze: an operator's entries name the card it froze itself, which the leak check
        // here cannot tell from another tenant's card.
        ("GET".into(), "/api/v1/audit".into(), freezers(200, 200)),
        (
            "GET".into(),
            "/api/v1/audit/verify".into(),
            per(&[
                ("operator", 200),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 403),
                ("shanghai.manager", 403),
                ("shanghai.cashier", 403),
                ("beijing.admin", 403),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        (
            "PUT".into(),
            "/api/v1/freezes/card/card-CH002-C".into(),
            per(&[
                ("operator", 200),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 403),
                ("shanghai.manager", 403),
                ("shanghai.cashier", 403),
                ("beijing.admin", 403),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        // Receipts: anyone checks one and reads the public keys (the matrix's payload is not
        // a receipt); only the acquirer's operator rotates the signing key.
        ("POST".into(), "/api/v1/receipts/verify".into(), all(422)),
        ("GET".into(), "/api/v1/receipts/keys".into(), all(200)),
        (
            "POST".into(),
            "/api/v1/receipts/keys/rotate".into(),
            per(&[
                ("operator", 201),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 403),
                ("shanghai.manager", 403),
                ("shanghai.cashier", 403),
                ("beijing.admin", 403),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        // The case queue: the operator and Shanghai's admin and manager; resolved once (by
        // the operator, first in the row), then 409.
        ("GET".into(), "/api/v1/cases".into(), freezers(200, 200)),
        (
            "GET".into(),
            format!("/api/v1/cases/{}", world.shanghai_case),
            freezers(200, 404),
        ),
        (
            "POST".into(),
            format!("/api/v1/cases/{}/assign", world.shanghai_case),
            freezers(200, 404),
        ),
        (
            "POST".into(),
            format!("/api/v1/cases/{}/comments", world.shanghai_case),
            freezers(201, 404),
        ),
        (
            "POST".into(),
            format!("/api/v1/cases/{}/resolve", world.shanghai_case),
            per(&[
                ("operator", 200),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 409),
                ("shanghai.manager", 409),
                ("shanghai.cashier", 403),
                ("beijing.admin", 404),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        // Incidents: the merchant's admin and manager open them, operations acknowledge; the
        // partner sees its referred (Beijing) merchant's, not Shanghai's.
        (
            "GET".into(),
            "/api/v1/incidents".into(),
            per(&[
                ("operator", 200),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 200),
                ("shanghai.manager", 200),
                ("shanghai.cashier", 403),
                ("beijing.admin", 200),
                ("cardholder1", 403),
                ("partner", 200),
            ]),
        ),
        (
            "POST".into(),
            "/api/v1/incidents".into(),
            per(&[
                ("operator", 403),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 201),
                ("shanghai.manager", 201),
                ("shanghai.cashier", 403),
                ("beijing.admin", 201),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        (
            "GET".into(),
            format!("/api/v1/incidents/{}", world.shanghai_incident),
            incident_row(200),
        ),
        (
            "POST".into(),
            format!("/api/v1/incidents/{}/messages", world.shanghai_incident),
            incident_row(201),
        ),
        (
            "PUT".into(),
            format!(
                "/api/v1/incidents/{}/attachments/matrix.pdf",
                world.shanghai_incident
            ),
            incident_row(201),
        ),
        (
            "GET".into(),
            format!(
                "/api/v1/incidents/{}/messages/1/attachment",
                world.shanghai_incident
            ),
            incident_row(200),
        ),
        (
            "POST".into(),
            format!("/api/v1/incidents/{}/status", world.shanghai_incident),
            per(&[
                ("operator", 200),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 403),
                ("shanghai.manager", 403),
                ("shanghai.cashier", 403),
                ("beijing.admin", 404),
                ("cardholder1", 403),
                ("partner", 404),
            ]),
        ),
        // Fraud reports: only the cardholder, on their own transaction. After the freeze rows:
        // a report freezes the card, which the operator then sees among the freezes.
        (
            "POST".into(),
            format!("/api/v1/transactions/{}/fraud-report", t("t1")),
            per(&[
                ("operator", 403),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 403),
                ("shanghai.manager", 403),
                ("shanghai.cashier", 403),
                ("beijing.admin", 403),
                ("cardholder1", 201),
                ("partner", 403),
            ]),
        ),
        (
            "GET".into(),
            "/api/v1/fraud-reports/fr_0000000000000000".into(),
            all(404),
        ),
        (
            "GET".into(),
            "/api/v1/fraud-reports/fr_0000000000000000/pack".into(),
            all(404),
        ),
        (
            "GET".into(),
            "/api/v1/fraud-reports/fr_0000000000000000/pdf".into(),
            all(404),
        ),
        (
            "GET".into(),
            "/api/v1/fraud-reports/fr_0000000000000000/manifest".into(),
            all(404),
        ),
        // A wallet's alerts: its holder only (no wallet of that id: 404 for the cardholder).
        (
            "GET".into(),
            "/api/v1/wallets/wl_nobody/alerts".into(),
            holder_only(404),
        ),
        (
            "PUT".into(),
            "/api/v1/wallets/wl_nobody/alerts".into(),
            holder_only(404),
        ),
        // Refunds: the merchant's staff make them, the cardholder asks; whoever sees the sale
        // sees them; 404 for another tenant's.
        (
            "GET".into(),
            format!("/api/v1/transactions/{}/refunds", t("t1")),
            per(&[
                ("operator", 200),
                ("bank", 200),
                ("wallet", 404),
                ("shanghai.admin", 200),
                ("shanghai.manager", 200),
                ("shanghai.cashier", 200),
                ("beijing.admin", 404),
                ("cardholder1", 200),
                ("partner", 404),
            ]),
        ),
        (
            "POST".into(),
            format!("/api/v1/transactions/{}/refunds", t("t1")),
            per(&[
                ("operator", 403),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 201),
                ("shanghai.manager", 201),
                ("shanghai.cashier", 201),
                ("beijing.admin", 404),
                ("cardholder1", 201),
                ("partner", 403),
            ]),
        ),
        (
            "GET".into(),
            "/api/v1/refunds".into(),
            per(&[
                ("operator", 200),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 200),
                ("shanghai.manager", 200),
                ("shanghai.cashier", 200),
                ("beijing.admin", 200),
                ("cardholder1", 403),
                ("partner", 200),
            ]),
        ),
        (
            "GET".into(),
            format!("/api/v1/refunds/{}", world.pending_refund),
            per(&[
                ("operator", 200),
                ("bank", 200),
                ("wallet", 404),
                ("shanghai.admin", 200),
                ("shanghai.manager", 200),
                ("shanghai.cashier", 200),
                ("beijing.admin", 404),
                ("cardholder1", 200),
                ("partner", 404),
            ]),
        ),
        (
            "POST".into(),
            format!("/api/v1/refunds/{}/approve", world.pending_refund),
            per(&[
                ("operator", 403),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 200),
                ("shanghai.manager", 409),
                ("shanghai.cashier", 403),
                ("beijing.admin", 404),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        (
            "POST".into(),
            format!("/api/v1/refunds/{}/accept", world.refund_request),
            per(&[
                ("operator", 403),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 201),
                ("shanghai.manager", 409),
                ("shanghai.cashier", 409),
                ("beijing.admin", 404),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        (
            "POST".into(),
            format!("/api/v1/refunds/{}/decline", world.other_refund_request),
            per(&[
                ("operator", 403),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 200),
                ("shanghai.manager", 409),
                ("shanghai.cashier", 409),
                ("beijing.admin", 404),
                ("cardholder1", 409),
                ("partner", 403),
            ]),
        ),
        // Disputes: the cardholder opens (t1 is disputed already by the fraud report above: 200),
        // the issuer reviews and decides, the merchant's manager or administrator answers; the
        // planted dispute is on t4 (Beijing, cardholder1's card).
        (
            "POST".into(),
            format!("/api/v1/transactions/{}/dispute", t("t1")),
            per(&[
                ("operator", 403),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 403),
                ("shanghai.manager", 403),
                ("shanghai.cashier", 403),
                ("beijing.admin", 403),
                ("cardholder1", 200),
                ("partner", 403),
            ]),
        ),
        (
            "GET".into(),
            format!("/api/v1/disputes/{}", world.dispute),
            per(&[
                ("operator", 200),
                ("bank", 200),
                ("wallet", 404),
                ("shanghai.admin", 404),
                ("shanghai.manager", 404),
                ("shanghai.cashier", 404),
                ("beijing.admin", 200),
                ("cardholder1", 200),
                ("partner", 200),
            ]),
        ),
        (
            "POST".into(),
            format!("/api/v1/disputes/{}/review", world.dispute),
            per(&[
                ("operator", 403),
                ("bank", 200),
                ("wallet", 403),
                ("shanghai.admin", 404),
                ("shanghai.manager", 404),
                ("shanghai.cashier", 403),
                ("beijing.admin", 403),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        (
            "POST".into(),
            format!("/api/v1/disputes/{}/answer", world.dispute),
            per(&[
                ("operator", 403),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 404),
                ("shanghai.manager", 404),
                ("shanghai.cashier", 403),
                ("beijing.admin", 200),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        // With files: the same people; the dispute (answered just above) takes no second answer,
        // and a JSON body is no form (the files' rules are tested below, with forms).
        (
            "PUT".into(),
            format!("/api/v1/disputes/{}/answer", world.dispute),
            per(&[
                ("operator", 403),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 404),
                ("shanghai.manager", 404),
                ("shanghai.cashier", 403),
                ("beijing.admin", 400),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        // The answer's files: the dispute's parties only (this dispute has none by that name).
        (
            "GET".into(),
            format!("/api/v1/disputes/{}/documents/matrix.pdf", world.dispute),
            per(&[
                ("operator", 404),
                ("bank", 404),
                ("wallet", 404),
                ("shanghai.admin", 404),
                ("shanghai.manager", 404),
                ("shanghai.cashier", 404),
                ("beijing.admin", 404),
                ("cardholder1", 404),
                ("partner", 404),
            ]),
        ),
        (
            "POST".into(),
            format!("/api/v1/disputes/{}/decide", world.dispute),
            per(&[
                ("operator", 403),
                ("bank", 200),
                ("wallet", 403),
                ("shanghai.admin", 404),
                ("shanghai.manager", 404),
                ("shanghai.cashier", 403),
                ("beijing.admin", 403),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        (
            "GET".into(),
            format!("/api/v1/transactions/{}/certificate", t("t1")),
            per(&[
                ("operator", 200),
                ("bank", 200),
                ("wallet", 404),
                ("shanghai.admin", 200),
                ("shanghai.manager", 200),
                ("shanghai.cashier", 200),
                ("beijing.admin", 404),
                ("cardholder1", 200),
                ("partner", 404),
            ]),
        ),
        // Audit anchors: the acquirer's operators only (the rows above made entries to sign).
        (
            "GET".into(),
            "/api/v1/audit/anchors".into(),
            per(&[
                ("operator", 200),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 403),
                ("shanghai.manager", 403),
                ("shanghai.cashier", 403),
                ("beijing.admin", 403),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        (
            "POST".into(),
            "/api/v1/audit/anchors".into(),
            per(&[
                ("operator", 201),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 403),
                ("shanghai.manager", 403),
                ("shanghai.cashier", 403),
                ("beijing.admin", 403),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        // Risk rules: the acquirer's operators only (the world stores version 1). The matrix's
        // save starts from version 1, and the rollback returns to it.
        (
            "GET".into(),
            "/api/v1/risk/rules".into(),
            per(&[
                ("operator", 200),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 403),
                ("shanghai.manager", 403),
                ("shanghai.cashier", 403),
                ("beijing.admin", 403),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        (
            "GET".into(),
            "/api/v1/risk/rules/versions".into(),
            per(&[
                ("operator", 200),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 403),
                ("shanghai.manager", 403),
                ("shanghai.cashier", 403),
                ("beijing.admin", 403),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        (
            "POST".into(),
            "/api/v1/risk/rules/versions".into(),
            per(&[
                ("operator", 201),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 403),
                ("shanghai.manager", 403),
                ("shanghai.cashier", 403),
                ("beijing.admin", 403),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        (
            "POST".into(),
            "/api/v1/risk/rules/versions/1/rollback".into(),
            per(&[
                ("operator", 201),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 403),
                ("shanghai.manager", 403),
                ("shanghai.cashier", 403),
                ("beijing.admin", 403),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        // Emergency: a new key at the terminal's next sign-on.
        (
            "POST".into(),
            "/api/v1/terminals/10000002/key-change".into(),
            per(&[
                ("operator", 200),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 200),
                ("shanghai.manager", 200),
                ("shanghai.cashier", 403),
                ("beijing.admin", 404),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        // A supervisor's terminal password: the merchant's admin enrols its own supervisors.
        (
            "PUT".into(),
            "/api/v1/staff/99/terminal-password".into(),
            per(&[
                ("operator", 403),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 200),
                ("shanghai.manager", 403),
                ("shanghai.cashier", 403),
                ("beijing.admin", 200),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        // Operating procedures: each merchant's admin writes them, its staff acknowledge them.
        (
            "POST".into(),
            "/api/v1/procedures/versions".into(),
            per(&[
                ("operator", 403),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 201),
                ("shanghai.manager", 403),
                ("shanghai.cashier", 403),
                ("beijing.admin", 201),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        (
            "POST".into(),
            "/api/v1/procedures/acknowledgements".into(),
            per(&[
                ("operator", 403),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 201),
                ("shanghai.manager", 201),
                ("shanghai.cashier", 201),
                ("beijing.admin", 201),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        (
            "GET".into(),
            "/api/v1/procedures".into(),
            per(&[
                ("operator", 403),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 200),
                ("shanghai.manager", 200),
                ("shanghai.cashier", 200),
                ("beijing.admin", 200),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
        // Last: it stops the webhook the rows above use.
        (
            "DELETE".into(),
            format!("/api/v1/webhooks/{}", world.shanghai_webhook),
            shanghai_admin_only(204),
        ),
        // After everything: the operator's reset of Shanghai's passwords shuts its staff out
        // at once (401), until each chooses a new one.
        (
            "POST".into(),
            format!(
                "/api/v1/merchants/{}/password-reset",
                demo::SHANGHAI_MERCHANT
            ),
            per(&[
                ("operator", 200),
                ("bank", 403),
                ("wallet", 403),
                ("shanghai.admin", 401),
                ("shanghai.manager", 401),
                ("shanghai.cashier", 401),
                ("beijing.admin", 404),
                ("cardholder1", 403),
                ("partner", 403),
            ]),
        ),
    ]
}

/// A route on the Shanghai admin's webhook: `ok` for them, 404 for the other roles that
/// integrate, 403 for the roles that do not.
/// Who may use a freeze route on Shanghai's terminal: `ok` for its operator, admin and manager,
/// `beijing` for Beijing's admin, 403 for the other roles.
fn freezers(ok: u16, beijing: u16) -> Vec<(&'static str, u16)> {
    USERS
        .iter()
        .map(|user| {
            let status = match *user {
                "operator" | "shanghai.admin" | "shanghai.manager" => ok,
                "beijing.admin" => beijing,
                _ => 403,
            };
            (*user, status)
        })
        .collect()
}

fn shanghai_admin_only(ok: u16) -> Vec<(&'static str, u16)> {
    USERS
        .iter()
        .map(|user| {
            let status = match *user {
                "shanghai.admin" => ok,
                "operator" | "bank" | "wallet" | "beijing.admin" | "partner" => 404,
                _ => 403,
            };
            (*user, status)
        })
        .collect()
}

/// A route for the card's holder (`cardholder1`) only: every other role is refused.
fn holder_only(status: u16) -> Vec<(&'static str, u16)> {
    USERS
        .iter()
        .map(|user| (*user, if *user == "cardholder1" { status } else { 403 }))
        .collect()
}

/// The body a matrix POST sends to `path`.
/// A row of the matrix for a Shanghai incident: `status` for operations and the merchant's
/// admin and manager, 404 for Beijing's admin and the partner (not theirs), 403 for the rest.
fn incident_row(status: u16) -> Vec<(&'static str, u16)> {
    vec![
        ("operator", status),
        ("bank", 403),
        ("wallet", 403),
        ("shanghai.admin", status),
        ("shanghai.manager", status),
        ("shanghai.cashier", 403),
        ("beijing.admin", 404),
        ("cardholder1", 403),
        ("partner", 404),
    ]
}

fn body_for(path: &str) -> &'static str {
    if path.ends_with("/procedures/versions") {
        r#"{"based_on":0,"text":"matrix procedures"}"#
    } else if path.ends_with("/procedures/acknowledgements") {
        r#"{"version":1}"#
    } else if path.ends_with("/terminal-password") {
        r#"{"password":"135790"}"#
    } else if path.ends_with("/key-change") || path.ends_with("/password-reset") {
        r#"{"reason":"matrix"}"#
    } else if path.ends_with("/incidents") {
        r#"{"title":"matrix","severity":"low","description":"matrix"}"#
    } else if path.ends_with("/status") {
        r#"{"status":"acknowledged"}"#
    } else if path.contains("/attachments/") {
        "%PDF-1.4 matrix"
    } else if path.ends_with("/messages") {
        r#"{"text":"matrix"}"#
    } else if path.ends_with("/webhooks") {
        r#"{"url":"http://127.0.0.1:9/hook"}"#
    } else if path.starts_with("/api/v1/freezes/") {
        r#"{"reason":"matrix"}"#
    } else if path.ends_with("/redeliver") || path.ends_with("/rotate") {
        ""
    } else if path.ends_with("/fraud-report") {
        r#"{"description":"matrix"}"#
    } else if path.ends_with("/receipts/verify") {
        r#"{"payload":"EPR1|matrix"}"#
    } else if path.ends_with("/assign") {
        r#"{"assignee":"shanghai.manager"}"#
    } else if path.ends_with("/comments") {
        r#"{"text":"matrix"}"#
    } else if path.ends_with("/dispute") {
        r#"{"reason":"duplicate","description":"matrix"}"#
    } else if path.ends_with("/review") {
        r#"{"decision":"chargeback","note":"matrix"}"#
    } else if path.ends_with("/answer") {
        r#"{"evidence":"matrix"}"#
    } else if path.ends_with("/decide") {
        r#"{"in_favour_of":"merchant","note":"matrix"}"#
    } else if path.ends_with("/refunds") {
        r#"{"amount_minor":1,"reason":"matrix"}"#
    } else if path.ends_with("/accept") || path.ends_with("/approve") {
        "{}"
    } else if path.ends_with("/decline") {
        r#"{"reason":"matrix"}"#
    } else if path.ends_with("/resolve") {
        r#"{"outcome":"no_action","reason":"matrix"}"#
    } else if path.ends_with("/risk/rules/versions") {
        r#"{"based_on":1,"toml":"[[rule]]\nname = \"m\"\nkind = \"fallback\"\naction = \"alert\"\n"}"#
    } else if path.ends_with("/rollback") || path.ends_with("/freeze") {
        ""
    } else if path.ends_with("/alerts") {
        r#"{"channels":["sms"],"phone":"+8613800001234"}"#
    } else {
        r#"{"name":"matrix"}"#
    }
}

const USERS: [&str; 9] = [
    "operator",
    "bank",
    "wallet",
    "shanghai.admin",
    "shanghai.manager",
    "shanghai.cashier",
    "beijing.admin",
    "cardholder1",
    "partner",
];

/// The planted transactions each user may see.
fn visible(user: &str) -> &'static [&'static str] {
    match user {
        "operator" => &["t1", "t2", "t3", "t4"],
        "bank" | "cardholder1" => &["t1", "t4"],
        "shanghai.admin" | "shanghai.manager" | "shanghai.cashier" => &["t1", "t2"],
        "beijing.admin" | "partner" => &["t3", "t4"],
        _ => &[],
    }
}

/// Markers of everything in the world (merchant and terminal ids, card tokens, masked card
/// numbers, transaction RRNs) that `user` may not see.
fn foreign_markers(user: &str) -> Vec<String> {
    let seen = visible(user);
    let planted = PLANTED.iter().filter(|(name, ..)| seen.contains(name));
    let mut allowed: BTreeSet<String> = planted
        .clone()
        .flat_map(|(name, merchant, terminal, card, ..)| {
            [
                rrn(name),
                (*merchant).into(),
                (*terminal).into(),
                masked(card),
            ]
        })
        .collect();
    let (merchants, cards): (&[&str], &[&str]) = match user {
        "operator" => (&[SH, BJ], &[]),
        "shanghai.admin" | "shanghai.manager" | "shanghai.cashier" => (&[SH], &[]),
        "beijing.admin" | "partner" => (&[BJ], &[]),
        "cardholder1" => (&[], &["card-CH001-D", "card-CH001-C"]),
        "bank" => (
            &[],
            &[
                "card-CH001-D",
                "card-CH002-D",
                "card-CH003-D",
                "card-CH004-D",
                "card-CH005-D",
                "card-CH005-X",
                "card-CH005-B",
            ],
        ),
        _ => (&[], &[]),
    };
    let directory = demo::directory();
    for merchant in merchants {
        allowed.insert((*merchant).to_owned());
        for terminal in directory
            .terminals
            .iter()
            .filter(|t| &t.merchant_id == merchant)
        {
            allowed.insert(terminal.id.clone());
        }
    }
    for card in cards {
        allowed.insert((*card).to_owned());
        allowed.insert(masked(card));
    }
    let mut everything: Vec<String> = PLANTED.iter().map(|(name, ..)| rrn(name)).collect();
    everything.extend(directory.merchants.iter().map(|m| m.id.clone()));
    everything.extend(directory.terminals.iter().map(|t| t.id.clone()));
    everything.extend(
        directory
            .cards
            .iter()
            .flat_map(|c| [c.id.clone(), c.masked_pan()]),
    );
    everything
        .into_iter()
        .filter(|marker| !allowed.contains(marker))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tenant_isolation_matrix() {
    let world = world().await;
    let rows = matrix(&world);
    let covered: BTreeSet<(String, String)> = rows
        .iter()
        .map(|(method, path, _)| {
            let template = api::ROUTES
                .iter()
                .find(|(m, template)| {
                    let (ours, theirs): (Vec<_>, Vec<_>) =
                        (template.split('/').collect(), path.split('/').collect());
                    *m == method
                        && ours.len() == theirs.len()
                        && ours
                            .iter()
                            .zip(&theirs)
                            .all(|(a, b)| a.starts_with('{') || a == b)
                })
                .unwrap_or_else(|| panic!("{method} {path} is not a route"));
            (template.0.to_owned(), template.1.to_owned())
        })
        .collect();
    assert_eq!(
        covered.len(),
        api::ROUTES.len(),
        "the matrix covers every route"
    );

    let mut failures = Vec::new();
    for (step, (method, path, expected)) in rows.iter().enumerate() {
        assert_eq!(
            expected.len(),
            USERS.len(),
            "{method} {path}: one entry per user"
        );
        for (user, status) in expected {
            let key = format!("matrix-{step}-{user}");
            let answer = world
                .call(user, method, path, Some(&key), body_for(path))
                .await;
            if answer.status.as_u16() != *status {
                failures.push(format!(
                    "{user} {method} {path}: expected {status}, got {} {}",
                    answer.status, answer.text
                ));
            }
            // A 404 may repeat the id the caller asked for; anything else is a leak.
            for marker in foreign_markers(user)
                .iter()
                .filter(|marker| !path.contains(marker.as_str()))
            {
                if answer.text.contains(marker.as_str()) {
                    failures.push(format!(
                        "{user} {method} {path}: answer shows {marker:?}: {}",
                        answer.text
                    ));
                }
            }
            if method == "GET" && path == "/api/v1/transactions" {
                let expected: BTreeSet<String> =
                    visible(user).iter().map(|name| rrn(name)).collect();
                if rrns(&answer) != expected {
                    failures.push(format!(
                        "{user} lists {:?}, expected {expected:?}",
                        rrns(&answer)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_works_on_postgres_too() {
    let Some(url) = store::testing::postgres_url() else {
        return;
    };
    let world = common::world_on(store::testing::postgres(&url).await).await;
    let answer = world.get("cardholder1", "/api/v1/transactions").await;
    assert_eq!(rrns(&answer), BTreeSet::from([rrn("t1"), rrn("t4")]));
    let created = world
        .call(
            "partner",
            "POST",
            "/api/v1/api-keys",
            Some("pg"),
            r#"{"name":"pg"}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let replay = world
        .call(
            "partner",
            "POST",
            "/api/v1/api-keys",
            Some("pg"),
            r#"{"name":"pg"}"#,
        )
        .await;
    assert_eq!(replay.text, created.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_freeze_reaches_the_hosts_list_at_once_and_bad_requests_are_problems() {
    let world = world().await;
    let path = "/api/v1/freezes/terminal/10000001";
    let answer = world
        .call(
            "shanghai.admin",
            "PUT",
            path,
            None,
            r#"{"reason":"stolen at night"}"#,
        )
        .await;
    assert_eq!(answer.status.as_u16(), 200);
    let body = answer.json();
    assert_eq!(body["frozen_by"], "shanghai.admin");
    assert_eq!(body["reason"], "stolen at night");
    assert_eq!(
        world.freezes.frozen("10000001", "x", "y"),
        Some(risk::FreezeScope::Terminal)
    );
    let listed = world
        .get("shanghai.manager", "/api/v1/freezes")
        .await
        .json();
    assert_eq!(listed["data"][0]["target"], "10000001");
    let beijing = world.get("beijing.admin", "/api/v1/freezes").await.json();
    assert_eq!(beijing["data"].as_array().map(Vec::len), Some(0));

    for (path, body, status) in [
        (path, r#"{"reason":""}"#, 400),
        (path, r#"{"why":"x"}"#, 400),
        ("/api/v1/freezes/planet/10000001", r#"{"reason":"x"}"#, 404),
    ] {
        let answer = world.call("operator", "PUT", path, None, body).await;
        assert_eq!(answer.status.as_u16(), status, "{path} {body}");
        assert_eq!(
            answer.content_type, "application/problem+json",
            "{path} {body}"
        );
    }

    let answer = world.call("shanghai.admin", "DELETE", path, None, "").await;
    assert_eq!(answer.status.as_u16(), 204);
    assert!(world.freezes.is_empty());

    // The merchant's refunds, frozen and thawed by its manager; not Beijing's to touch.
    let refunds = "/api/v1/freezes/refunds/898310058120001";
    let answer = world
        .call(
            "shanghai.manager",
            "PUT",
            refunds,
            None,
            r#"{"reason":"refund spike"}"#,
        )
        .await;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text);
    assert!(world.freezes.refunds_frozen("898310058120001"));
    let answer = world
        .call("beijing.admin", "PUT", refunds, None, r#"{"reason":"x"}"#)
        .await;
    assert_eq!(answer.status.as_u16(), 404);
    let answer = world
        .call("shanghai.manager", "DELETE", refunds, None, "")
        .await;
    assert_eq!(answer.status.as_u16(), 204);
    assert!(world.freezes.is_empty());

    // Both actions are in the audit log, for Shanghai's eyes and the operator's, chained.
    let audit = world
        .get(
            "shanghai.manager",
            "/api/v1/audit?action=freeze.&target=terminal:10000001",
        )
        .await
        .json();
    let entries = audit["data"].as_array().unwrap();
    let actions: Vec<_> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("freeze.put", "terminal:10000001"),
            ("freeze.delete", "terminal:10000001")
        ]
    );
    assert_eq!(entries[0]["actor"], "shanghai.admin");
    assert_eq!(entries[0]["detail"], "stolen at night");
    assert_eq!(entries[1]["prev_hash"], entries[0]["hash"]);
    let beijing = world.get("beijing.admin", "/api/v1/audit").await.json();
    assert_eq!(beijing["data"].as_array().map(Vec::len), Some(0));
    let page = world.get("operator", "/api/v1/audit?limit=1").await.json();
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["next_cursor"], "1");
    let bad = world
        .call("operator", "GET", "/api/v1/audit?limit=x", None, "")
        .await;
    assert_eq!(bad.status.as_u16(), 400);
    let verified = world.get("operator", "/api/v1/audit/verify").await.json();
    assert_eq!(verified["first_break"], serde_json::Value::Null);
    assert_eq!(verified["entries"], 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_case_is_worked_and_its_outcome_freezes_what_it_blocks() {
    let world = world().await;
    let counter = std::cell::Cell::new(0);
    let key = || {
        counter.set(counter.get() + 1);
        format!("case-test-{}", counter.get())
    };
    let case = format!("/api/v1/cases/{}", world.shanghai_case);
    let listed = world
        .get("shanghai.manager", "/api/v1/cases?status=open")
        .await
        .json();
    assert_eq!(listed["data"][0]["id"], world.shanghai_case);
    assert_eq!(listed["data"][0]["card"], masked("card-CH001-D"));
    assert!(!listed.to_string().contains("card-CH001-D"), "no card id");
    let bad = world
        .call("operator", "GET", "/api/v1/cases?status=shut", None, "")
        .await;
    assert_eq!(bad.status.as_u16(), 400);

    // Assigned only to someone who may work it.
    for (body, status) in [
        (r#"{"assignee":"beijing.admin"}"#, 400),
        (r#"{"assignee":"shanghai.cashier"}"#, 400),
        (r#"{"assignee":"nobody"}"#, 400),
        (r#"{"assignee":"shanghai.admin"}"#, 200),
    ] {
        let answer = world
            .call(
                "shanghai.manager",
                "POST",
                &format!("{case}/assign"),
                Some(&key()),
                body,
            )
            .await;
        assert_eq!(answer.status.as_u16(), status, "{body}: {}", answer.text);
    }
    let answer = world
        .call(
            "shanghai.admin",
            "POST",
            &format!("{case}/comments"),
            Some(&key()),
            r#"{"text":"the night cashier ran these"}"#,
        )
        .await;
    assert_eq!(answer.status.as_u16(), 201);
    assert_eq!(answer.json()["comments"][0]["author"], "shanghai.admin");
    assert_eq!(answer.json()["assignee"], "shanghai.admin");

    // A merchant may not block a card; it blocks its terminal, which freezes it at once.
    let answer = world
        .call(
            "shanghai.admin",
            "POST",
            &format!("{case}/resolve"),
            Some(&key()),
            r#"{"outcome":"block_card","reason":"x"}"#,
        )
        .await;
    assert_eq!(answer.status.as_u16(), 403);
    let answer = world
        .call(
            "shanghai.admin",
            "POST",
            &format!("{case}/resolve"),
            Some(&key()),
            r#"{"outcome":"sleep","reason":"x"}"#,
        )
        .await;
    assert_eq!(answer.status.as_u16(), 400);
    let answer = world
        .call(
            "shanghai.admin",
            "POST",
            &format!("{case}/resolve"),
            Some(&key()),
            r#"{"outcome":"block_terminal","reason":"insider"}"#,
        )
        .await;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text);
    assert_eq!(answer.json()["status"], "resolved");
    assert_eq!(answer.json()["outcome"], "block_terminal");
    assert_eq!(
        world.freezes.frozen("10000001", "x", "y"),
        Some(risk::FreezeScope::Terminal)
    );
    let stored = world.store.freezes().await.unwrap();
    assert_eq!(
        stored[0].reason,
        format!("case {}: insider", world.shanghai_case)
    );
    let again = world
        .call(
            "operator",
            "POST",
            &format!("{case}/resolve"),
            Some(&key()),
            r#"{"outcome":"block_card","reason":"x"}"#,
        )
        .await;
    assert_eq!(again.status.as_u16(), 409, "resolved once");
    assert_eq!(
        world.freezes.len(),
        1,
        "the second resolution froze nothing"
    );

    let audit = world.get("shanghai.manager", "/api/v1/audit").await.json();
    let actions: Vec<_> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        ["case.assign", "case.comment", "case.resolve", "freeze.put"]
    );
}

/// A receipt statement as the host signs it for an approved sale.
fn receipt_statement() -> aftersale::receipt::Statement {
    aftersale::receipt::Statement {
        rrn: "000000012345".into(),
        terminal_id: "10000001".into(),
        merchant_id: demo::SHANGHAI_MERCHANT.into(),
        card: "621234******0003".into(),
        amount_minor: 1234,
        currency: "CNY".into(),
        time: 1_764_000_000,
        auth_code: "654321".into(),
        key_id: String::new(),
    }
}

async fn verify_anonymously(world: &World, payload: &str) -> Answer {
    let body = serde_json::json!({ "payload": payload }).to_string();
    world
        .send(
            Request::post("/api/v1/receipts/verify")
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn anyone_verifies_a_receipt_and_an_altered_one_is_refused_with_the_reason() {
    let world = world().await;
    let payload = world.receipts.sign(receipt_statement()).unwrap();

    let genuine = verify_anonymously(&world, &payload).await;
    assert_eq!(genuine.status, StatusCode::OK, "{}", genuine.text);
    let body = genuine.json();
    assert_eq!(body["genuine"], true);
    assert_eq!(body["rrn"], "000000012345");
    assert_eq!(body["amount"]["major"], "12.34");
    assert_eq!(body["time"], "2025-11-24T16:00:00Z");
    assert_eq!(body["key_retired_at"], serde_json::Value::Null);

    let altered = verify_anonymously(&world, &payload.replacen("|1234|", "|9234|", 1)).await;
    assert_eq!(altered.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        altered.text.contains("receipt-not-genuine") && altered.text.contains("altered"),
        "{}",
        altered.text
    );
    let garbage = verify_anonymously(&world, "hello").await;
    assert_eq!(garbage.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(garbage.text.contains("EPR1"), "{}", garbage.text);

    // The operator rotates; the old receipt still verifies, and says its key was retired.
    let rotated = world
        .call(
            "operator",
            "POST",
            "/api/v1/receipts/keys/rotate",
            Some("rotate-1"),
            "",
        )
        .await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.text);
    let new_key = rotated.json()["key_id"].as_str().unwrap().to_owned();
    let old = verify_anonymously(&world, &payload).await;
    assert_eq!(old.status, StatusCode::OK, "{}", old.text);
    assert!(old.json()["key_retired_at"].is_string());
    let fresh = world.receipts.sign(receipt_statement()).unwrap();
    assert!(fresh.contains(&format!("|{new_key}|")));

    let keys = world
        .send(
            Request::get("/api/v1/receipts/keys")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(keys.status, StatusCode::OK);
    let keys = keys.json();
    assert_eq!(keys["data"].as_array().unwrap().len(), 2);
    assert_eq!(keys["data"][1]["key_id"], new_key.as_str());
    assert_eq!(keys["data"][1]["algorithm"], "Ed25519");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_timeline_shows_its_refund_and_settlement_to_its_cardholder_only() {
    let world = world().await;
    let sale = world.transactions["t1"];
    let record = world
        .store
        .transactions(&store::accounts::TransactionFilter {
            id: Some(sale),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    let later =
        |kind: &str, minutes: i64, stan: i64, original: Option<i64>| store::journal::JournalEntry {
            received_at: record.received_at + minutes * 60_000_000,
            terminal_id: record.terminal_id.clone(),
            merchant_id: record.merchant_id.clone(),
            mti: "0220".into(),
            kind: kind.into(),
            batch: record.batch,
            stan: Some(stan),
            amount_minor: Some(300),
            currency: Some(156),
            original_batch: original.and(record.batch),
            original_stan: original,
            response: Some("00".into()),
            ..Default::default()
        };
    world
        .store
        .journal(vec![
            later("Refund", 60, 100, record.stan),
            later("BatchSettlement", 120, 101, None),
        ])
        .await
        .unwrap();
    let path = format!("/api/v1/transactions/{sale}/timeline");
    let answer = world.get("cardholder1", &path).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let body = answer.json();
    let states: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["state"].as_str().unwrap())
        // The world's planted refund requests on t1 come later (tests/refunds.rs).
        .filter(|state| !state.starts_with("refund-"))
        .collect();
    assert_eq!(states, ["authorized", "refunded", "settled"]);
    assert_eq!(body["data"][1]["amount"]["major"], "3.00");
    assert_eq!(body["data"][1]["message"], "Refund 00");
    // Another cardholder's transaction is not found, not refused: it does not exist for them.
    let beijing = world.transactions["t3"];
    let hidden = world
        .get(
            "cardholder1",
            &format!("/api/v1/transactions/{beijing}/timeline"),
        )
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn monthly_statements_are_csv_within_the_tenant() {
    let world = world().await;
    // The planted sales are on 2025-11-24 after 16:00 UTC: 25 November in Shanghai.
    let mine = world.get("cardholder1", "/api/v1/statements/2025-11").await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    assert!(
        mine.content_type.starts_with("text/csv"),
        "{}",
        mine.content_type
    );
    assert!(
        mine.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("statement-2025-11.csv")
    );
    let lines: Vec<&str> = mine.text.lines().collect();
    assert_eq!(lines[0], aftersale::statement::HEADER);
    let visible: Vec<&&str> = PLANTED
        .iter()
        .filter(|(name, ..)| visible("cardholder1").contains(name))
        .map(|(name, ..)| name)
        .collect();
    assert_eq!(lines.len(), 1 + visible.len(), "{}", mine.text);
    // The entry mode, as the journal kept it, and in words.
    assert!(
        lines[1..]
            .iter()
            .all(|line| line.contains(",051,chip,Sale,")),
        "{}",
        mine.text
    );
    assert!(lines[1].starts_with("2025-11-25 00:"), "{}", lines[1]);
    assert!(
        lines[1].contains(",Lujiazui Coffee,Shanghai,"),
        "{}",
        lines[1]
    );
    // Another month is empty; a malformed one is a problem.
    let october = world.get("cardholder1", "/api/v1/statements/2025-10").await;
    assert_eq!(october.text.lines().count(), 1);
    let bad = world
        .get("cardholder1", "/api/v1/statements/November")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("YYYY-MM"), "{}", bad.text);
    // One card of someone else's: nothing of theirs shows.
    let other = world
        .get(
            "cardholder1",
            &format!("/api/v1/statements/2025-11?card={}", masked("card-CH002-C")),
        )
        .await;
    assert_eq!(other.text.lines().count(), 1, "{}", other.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cardholder_reports_fraud_the_card_freezes_and_the_evidence_pack_is_sealed() {
    let world = world().await;
    let sale = world.transactions["t1"];
    let path = format!("/api/v1/transactions/{sale}/fraud-report");
    let body = r#"{"description":"I do not recognise this charge; my card was in my drawer"}"#;

    // Only the cardholder reports, and only their own transactions.
    let merchant = world
        .call("shanghai.admin", "POST", &path, Some("fr-0"), body)
        .await;
    assert_eq!(merchant.status, StatusCode::FORBIDDEN, "{}", merchant.text);
    let beijing = world.transactions["t3"];
    let foreign = world
        .call(
            "cardholder1",
            "POST",
            &format!("/api/v1/transactions/{beijing}/fraud-report"),
            Some("fr-1"),
            body,
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.text);
    assert!(world.freezes.is_empty(), "nothing was frozen");

    // The acquirer's operations listen too (the Shanghai merchant's admin has a webhook).
    world
        .store
        .put_subscription(store::webhooks::Subscription {
            id: "wh_operations".into(),
            owner_user_id: "demo-operator".into(),
            url: "http://127.0.0.1:9/ops".into(),
            secret_nonce: "nonce".into(),
            created_at: 1_764_000_000,
            disabled_at: None,
        })
        .await
        .unwrap();
    let made = world
        .call("cardholder1", "POST", &path, Some("fr-2"), body)
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let report = made.json();
    assert_eq!(report["card_id"], "card-CH001-D");
    assert_eq!(report["card_frozen"], true);
    // The card is frozen for the host's next authorization, and in the store.
    assert_eq!(
        world.freezes.frozen("x", "y", "card-CH001-D"),
        Some(risk::FreezeScope::Card)
    );
    assert!(
        world
            .store
            .freezes()
            .await
            .unwrap()
            .iter()
            .any(|freeze| freeze.target == "card-CH001-D")
    );
    // Reporting again finds the same report.
    let again = world
        .call("cardholder1", "POST", &path, Some("fr-3"), body)
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json()["id"], report["id"]);
    // The transaction's timeline says so.
    let timeline = world
        .get(
            "cardholder1",
            &format!("/api/v1/transactions/{sale}/timeline"),
        )
        .await
        .json();
    let states: Vec<&str> = timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["state"].as_str().unwrap())
        .collect();
    // The report opened a dispute too, for the issuer to charge back.
    assert!(
        states.ends_with(&["reported-as-fraud", "disputed"]),
        "{states:?}"
    );
    let dispute = world
        .store
        .dispute_of_transaction(sale)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (dispute.reason.as_str(), dispute.status.as_str()),
        ("not_recognised", "opened")
    );

    // The pack: byte for byte as sealed, every file in the manifest.
    let id = report["id"].as_str().unwrap();
    let pack = world
        .get("cardholder1", &format!("/api/v1/fraud-reports/{id}/pack"))
        .await;
    assert_eq!(pack.status, StatusCode::OK);
    assert_eq!(
        pack.headers["x-pack-sha256"].to_str().unwrap(),
        report["pack_sha256"].as_str().unwrap()
    );
    aftersale::evidence::check(&pack.text).unwrap();
    let parsed = pack.json();
    let names: Vec<&str> = parsed["manifest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "report.json",
            "transaction.json",
            "timeline.json",
            "merchant.json",
            "terminal.json",
            "journal.json",
            "receipt.json",
            "card_freeze.json",
            "audit.json",
            "receipt_keys.json",
            "evidence.pdf"
        ]
    );
    // The journal excerpt is the transaction's own: nothing of the batch's other messages.
    let journal: serde_json::Value =
        serde_json::from_str(parsed["files"]["journal.json"].as_str().unwrap()).unwrap();
    let transaction: serde_json::Value =
        serde_json::from_str(parsed["files"]["transaction.json"].as_str().unwrap()).unwrap();
    let entries = journal.as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(
        entries
            .iter()
            .all(|entry| entry["stan"] == transaction["stan"]
                || entry["original_stan"] == transaction["stan"]),
        "{journal}"
    );
    // The planted sale's answer carried no signed receipt (a real approval's does:
    // crates/easypos/tests/canaries.rs).
    assert_eq!(parsed["files"]["receipt.json"], "null");
    // The audit trail holds the report itself.
    let audit: serde_json::Value =
        serde_json::from_str(parsed["files"]["audit.json"].as_str().unwrap()).unwrap();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|entry| entry["action"] == "fraud.report"
                && entry["target"] == format!("transaction:{sale}")),
        "{audit}"
    );
    // The PDF: the pack's own evidence.pdf, its SHA-256 the manifest's.
    let pdf = world
        .get("cardholder1", report["pdf_url"].as_str().unwrap())
        .await;
    assert_eq!(pdf.status, StatusCode::OK, "{}", pdf.text);
    assert_eq!(pdf.content_type, "application/pdf");
    assert!(pdf.text.starts_with("%PDF-1.4"));
    let pdf_sha256 = pdf.headers["x-pdf-sha256"].to_str().unwrap();
    assert_eq!(parsed["manifest"][10]["sha256"], pdf_sha256);
    assert_eq!(
        pdf_sha256,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            aftersale::evidence::file_bytes(&pack.text, "evidence.pdf").unwrap()
        ))
    );
    assert!(
        pdf.text.contains("Lujiazui Coffee"),
        "the PDF states the merchant"
    );
    // The manifest: every file, then the PDF and the pack under their download names.
    let manifest = world
        .get("cardholder1", report["manifest_url"].as_str().unwrap())
        .await;
    assert_eq!(manifest.status, StatusCode::OK, "{}", manifest.text);
    let lines: Vec<&str> = manifest.text.lines().collect();
    assert_eq!(lines.len(), 13, "{}", manifest.text);
    assert_eq!(lines[11], format!("{pdf_sha256}  evidence-{id}.pdf"));
    assert_eq!(
        lines[12],
        format!(
            "{}  evidence-{id}.json",
            report["pack_sha256"].as_str().unwrap()
        )
    );

    // A case is open in the risk case queue, for the merchant's staff and the operators.
    let cases = world
        .store
        .cases(store::cases::CaseQuery {
            merchants: Some(vec![demo::SHANGHAI_MERCHANT.into()]),
            status: Some("open".into()),
            limit: 100,
        })
        .await
        .unwrap();
    let case = cases
        .iter()
        .find(|case| case.rules.starts_with("fraud-report(review,0)"))
        .expect("the report opened a case");
    assert_eq!(
        (case.card_id.as_str(), case.severity.as_str()),
        ("card-CH001-D", "review")
    );
    assert!(case.rules.contains(id), "{}", case.rules);
    // The merchant and the acquirer's operations are told by webhook: which transaction and
    // case, the card masked, not the cardholder's words.
    for subscription in [world.shanghai_webhook.as_str(), "wh_operations"] {
        let deliveries = world.store.deliveries_of(subscription, 50).await.unwrap();
        let told = deliveries
            .iter()
            .find(|delivery| delivery.event_type == "fraud_report.opened")
            .unwrap_or_else(|| panic!("{subscription} was not told"));
        let event: serde_json::Value = serde_json::from_str(&told.payload).unwrap();
        assert_eq!(event["id"], format!("evt_fraud_{id}"));
        assert_eq!(event["data"]["report_id"], id);
        assert_eq!(event["data"]["transaction_id"], sale.to_string());
        assert_eq!(event["data"]["case_id"], case.id);
        assert_eq!(event["data"]["card"], masked("card-CH001-D"));
        assert!(!told.payload.contains("drawer"), "{}", told.payload);
    }
    // Another merchant's webhooks hear nothing (none is theirs): only these two were queued.
    assert_eq!(
        world
            .store
            .deliveries_of(&world.shanghai_webhook, 50)
            .await
            .unwrap()
            .iter()
            .filter(|delivery| delivery.event_type == "fraud_report.opened")
            .count(),
        1,
        "reporting again told nobody twice"
    );
    let transaction: serde_json::Value =
        serde_json::from_str(parsed["files"]["transaction.json"].as_str().unwrap()).unwrap();
    assert_eq!(transaction["rrn"], rrn("t1"));
    let merchant: serde_json::Value =
        serde_json::from_str(parsed["files"]["merchant.json"].as_str().unwrap()).unwrap();
    assert_eq!(merchant["name"], "Lujiazui Coffee");
    // No card number in clear anywhere in the pack.
    let digits = demo::cards()
        .into_iter()
        .find(|card| card.card.id == "card-CH001-D")
        .unwrap()
        .pan;
    assert!(!pack.text.contains(&digits));

    // The reporter and the card's issuer see it; another cardholder and the merchant do not.
    for (user, status) in [
        ("cardholder1", StatusCode::OK),
        ("bank", StatusCode::OK),
        ("operator", StatusCode::OK),
        ("shanghai.admin", StatusCode::NOT_FOUND),
        ("beijing.admin", StatusCode::NOT_FOUND),
    ] {
        for path in [
            format!("/api/v1/fraud-reports/{id}"),
            format!("/api/v1/fraud-reports/{id}/pdf"),
            format!("/api/v1/fraud-reports/{id}/manifest"),
        ] {
            let seen = world.get(user, &path).await;
            assert_eq!(seen.status, status, "{user} {path}: {}", seen.text);
        }
    }
}

/// Makes every insert into `table` fail (a store error in the follow-up that writes it), or
/// lifts that again.
async fn fail_inserts(store: &store::Store, table: &str, fail: bool) {
    use store::onboarding::Step;
    let trigger = format!("fail_{table}");
    let steps = match (store.backend_name(), fail) {
        ("sqlite", true) => vec![Step::new(
            format!(
                "CREATE TRIGGER {trigger} BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            ),
            vec![],
        )],
        ("sqlite", false) => vec![Step::new(format!("DROP TRIGGER {trigger}"), vec![])],
        (_, true) => vec![
            Step::new(
                format!(
                    "CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $body$ BEGIN RAISE EXCEPTION 'injected failure'; END $body$"
                ),
                vec![],
            ),
            Step::new(
                format!(
                    "CREATE TRIGGER {trigger} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {trigger}()"
                ),
                vec![],
            ),
        ],
        (_, false) => vec![
            Step::new(format!("DROP TRIGGER {trigger} ON {table}"), vec![]),
            Step::new(format!("DROP FUNCTION {trigger}()"), vec![]),
        ],
    };
    assert!(store.onboarding_execute(steps).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fraud_reports_failed_follow_ups_are_retried_until_done_exactly_once() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = common::world_on(backend).await;
        let sale = world.transactions["t1"];
        // The case queue refuses every write: the case cannot open, so the webhooks (which
        // name the case) wait too; the dispute does not depend on them.
        fail_inserts(&world.store, "cases", true).await;
        let made = world
            .call(
                "cardholder1",
                "POST",
                &format!("/api/v1/transactions/{sale}/fraud-report"),
                Some("fr-retry"),
                r#"{"description":"not me"}"#,
            )
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{name}: {}", made.text);
        let report = made.json();
        let id = report["id"].as_str().unwrap().to_owned();
        let states = |view: &serde_json::Value| -> Vec<(String, String, i64)> {
            view["follow_ups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["step"].as_str().unwrap().to_owned(),
                        f["state"].as_str().unwrap().to_owned(),
                        f["attempts"].as_i64().unwrap(),
                    )
                })
                .collect()
        };
        let owned = |list: &[(&str, &str, i64)]| -> Vec<(String, String, i64)> {
            list.iter()
                .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), *c))
                .collect()
        };
        assert_eq!(
            states(&report),
            owned(&[
                ("case", "pending", 1),
                ("notify", "pending", 1),
                ("dispute", "done", 1)
            ]),
            "{name}: {report}"
        );
        // The report stands, the card is frozen, the dispute is open.
        assert!(world.store.fraud_report(&id).await.unwrap().is_some());
        assert_eq!(
            world.freezes.frozen("x", "y", "card-CH001-D"),
            Some(risk::FreezeScope::Card)
        );
        assert!(
            world
                .store
                .dispute_of_transaction(sale)
                .await
                .unwrap()
                .is_some()
        );
        // Each failure says why, and when it is tried next; a store error's cause stays in the
        // log, out of the cardholder's view.
        let case = &report["follow_ups"][0];
        assert_eq!(
            case["last_error"], "an internal error (see the server log)",
            "{name}"
        );
        assert!(case["next_attempt_at"].is_string());
        assert_eq!(
            report["follow_ups"][1]["last_error"], "waits for the report's case to open",
            "{name}"
        );
        let fraud_cases = async || {
            world
                .store
                .cases(store::cases::CaseQuery {
                    merchants: Some(vec![demo::SHANGHAI_MERCHANT.into()]),
                    status: None,
                    limit: 100,
                })
                .await
                .unwrap()
                .into_iter()
                .filter(|case| case.rules.contains(&id))
                .collect::<Vec<_>>()
        };
        assert!(fraud_cases().await.is_empty());
        let told = async || {
            world
                .store
                .deliveries_of(&world.shanghai_webhook, 50)
                .await
                .unwrap()
                .into_iter()
                .filter(|delivery| delivery.event_type == "fraud_report.opened")
                .count()
        };
        assert_eq!(told().await, 0);

        // The background job: nothing is due before the retry time; while the store still
        // fails, the retry fails again and waits longer.
        let kept = world.store.fraud_follow_ups(&id).await.unwrap();
        let first_retry = kept[0].next_attempt_at;
        assert_eq!(
            first_retry,
            kept[0].next_attempt_at.max(kept[1].next_attempt_at),
            "both wait for the same retry"
        );
        let pass = |at: i64| api::fraud::follow_up_pass(&world.state, None, at);
        assert_eq!(
            pass(first_retry - 1).await.unwrap(),
            api::fraud::FollowUpPass::default()
        );
        assert_eq!(
            pass(first_retry).await.unwrap(),
            api::fraud::FollowUpPass { done: 0, failed: 2 }
        );
        // The store is fixed: the next pass does both, in order, and a pass after that has
        // nothing left.
        fail_inserts(&world.store, "cases", false).await;
        let second_retry = first_retry + api::fraud::follow_up_retry_seconds(2);
        assert_eq!(
            pass(second_retry - 1).await.unwrap(),
            api::fraud::FollowUpPass::default(),
            "the second retry waits twice as long"
        );
        assert_eq!(
            pass(second_retry).await.unwrap(),
            api::fraud::FollowUpPass { done: 2, failed: 0 }
        );
        assert_eq!(
            pass(second_retry + 86_400).await.unwrap(),
            api::fraud::FollowUpPass::default()
        );
        let view = world
            .get("cardholder1", &format!("/api/v1/fraud-reports/{id}"))
            .await
            .json();
        assert_eq!(
            states(&view),
            owned(&[
                ("case", "done", 3),
                ("notify", "done", 3),
                ("dispute", "done", 1)
            ]),
            "{name}: {view}"
        );
        // Done exactly once: one case, one event per subscription naming it.
        let cases = fraud_cases().await;
        assert_eq!(cases.len(), 1, "{name}");
        assert_eq!(
            view["follow_ups"][0]["outcome"],
            format!("case {}", cases[0].id)
        );
        assert!(view["follow_ups"][0]["next_attempt_at"].is_null());
        assert_eq!(told().await, 1, "{name}");
        let delivery = world
            .store
            .deliveries_of(&world.shanghai_webhook, 50)
            .await
            .unwrap()
            .into_iter()
            .find(|delivery| delivery.event_type == "fraud_report.opened")
            .unwrap();
        let event: serde_json::Value = serde_json::from_str(&delivery.payload).unwrap();
        assert_eq!(event["data"]["case_id"], cases[0].id, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fraud_report_case_follow_up_done_again_finds_its_case() {
    // A runner that opened the case but died before marking it done: the next one finds the
    // case by its key instead of opening another, even once the case is resolved.
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = common::world_on(backend).await;
        let sale = world.transactions["t1"];
        fail_inserts(&world.store, "webhook_deliveries", true).await;
        let made = world
            .call(
                "cardholder1",
                "POST",
                &format!("/api/v1/transactions/{sale}/fraud-report"),
                Some("fr-again"),
                r#"{"description":"not me"}"#,
            )
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{name}: {}", made.text);
        let report = made.json();
        assert_eq!(report["follow_ups"][0]["state"], "done", "{name}: {report}");
        assert_eq!(
            report["follow_ups"][1]["state"], "pending",
            "{name}: {report}"
        );
        let case_id: i64 = report["follow_ups"][0]["outcome"]
            .as_str()
            .unwrap()
            .strip_prefix("case ")
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            world
                .store
                .resolve_case(case_id, "no_action", "operator", 1_764_200_000)
                .await
                .unwrap()
        );
        // As if the runner had died after opening the case, before marking it done.
        let id = report["id"].as_str().unwrap();
        assert!(
            world
                .store
                .onboarding_execute(vec![store::onboarding::Step::new(
                    "UPDATE fraud_report_follow_ups SET state = 'pending', done_at = NULL, outcome = '', next_attempt_at = 0 WHERE report_id = $1 AND step = 'case'",
                    vec![store::onboarding::Cell::text(id)],
                )
                .expect_one()])
                .await
                .unwrap()
        );
        fail_inserts(&world.store, "webhook_deliveries", false).await;
        let at = world.state.now_seconds() + api::fraud::follow_up_retry_seconds(1);
        assert_eq!(
            api::fraud::follow_up_pass(&world.state, None, at)
                .await
                .unwrap(),
            api::fraud::FollowUpPass { done: 2, failed: 0 },
            "{name}"
        );
        let view = world
            .get("cardholder1", &format!("/api/v1/fraud-reports/{id}"))
            .await
            .json();
        assert_eq!(
            view["follow_ups"][0]["outcome"],
            format!("case {case_id}"),
            "{name}: the same case, resolved as it was"
        );
        let cases = world
            .store
            .cases(store::cases::CaseQuery {
                merchants: Some(vec![demo::SHANGHAI_MERCHANT.into()]),
                status: None,
                limit: 100,
            })
            .await
            .unwrap();
        assert_eq!(
            cases.iter().filter(|case| case.rules.contains(id)).count(),
            1,
            "{name}"
        );
        assert_eq!(view["follow_ups"][1]["state"], "done", "{name}: {view}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_head_is_anchored_in_the_hsm_and_a_key_slipped_into_the_store_is_found() {
    let world = world().await;
    let empty = world
        .call(
            "operator",
            "POST",
            "/api/v1/audit/anchors",
            Some("anchor-0"),
            "",
        )
        .await;
    assert_eq!(empty.status.as_u16(), 409, "{}", empty.text);
    for (i, target) in ["10000001", "10000002", "10000001"].iter().enumerate() {
        let path = format!("/api/v1/freezes/terminal/{target}");
        let answer = world
            .call(
                "operator",
                "PUT",
                &path,
                Some(&format!("freeze-{i}")),
                r#"{"reason":"lost"}"#,
            )
            .await;
        assert_eq!(answer.status.as_u16(), 200, "{}", answer.text);
    }
    let anchored = world
        .call(
            "operator",
            "POST",
            "/api/v1/audit/anchors",
            Some("anchor-1"),
            "",
        )
        .await;
    assert_eq!(anchored.status, StatusCode::CREATED, "{}", anchored.text);
    let anchor = anchored.json();
    assert_eq!(anchor["seq"], 3);
    assert_eq!(anchor["signature"].as_str().unwrap().len(), 128);
    let again = world
        .call(
            "operator",
            "POST",
            "/api/v1/audit/anchors",
            Some("anchor-2"),
            "",
        )
        .await;
    assert_eq!(
        again.json()["signature"],
        anchor["signature"],
        "the head is anchored once"
    );
    let listed = world.get("operator", "/api/v1/audit/anchors").await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let verified = world.get("operator", "/api/v1/audit/verify").await.json();
    assert_eq!(verified["first_break"], serde_json::Value::Null);
    assert_eq!(
        (
            verified["anchors"].clone(),
            verified["anchored_seq"].clone()
        ),
        (1.into(), 3.into())
    );

    // Periodic anchoring waits for enough new entries.
    let hsm: std::sync::Arc<dyn hsm::Hsm> =
        std::sync::Arc::new(hsm::SoftHsm::new(&[0x42; 32]).unwrap());
    let anchorer = api::audit_anchors::AuditAnchorer::new(world.store.clone(), hsm);
    assert_eq!(
        anchorer.anchor_if_due(1_764_000_500, 2).await.unwrap(),
        None
    );
    for i in 0..2 {
        world
            .store
            .append_audit(store::audit::NewAuditEntry::new(
                "ops",
                "login.ok",
                "console",
                "",
                1_764_000_400 + i,
            ))
            .await
            .unwrap();
    }
    let due = anchorer
        .anchor_if_due(1_764_000_500, 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(due.seq, 5);
    assert_eq!(due.key_id, anchor["key_id"], "one anchor key");
    assert!(anchorer.foreign_keys().await.unwrap().is_empty());

    // A key whose token this HSM did not make (an attacker's own key pair, stored to sign
    // forged anchors) is named; under another master key even the genuine one is foreign.
    let public = [5u8; 32];
    world
        .store
        .add_audit_anchor_key(store::audit_anchors::AuditAnchorKey {
            key_id: aftersale::signer::key_id(&public),
            token: "not a TR-31 block".into(),
            public_key: "05".repeat(32),
            created_at: 1_764_000_600,
        })
        .await
        .unwrap();
    assert_eq!(
        anchorer.foreign_keys().await.unwrap(),
        vec![aftersale::signer::key_id(&public)]
    );
    let other = hsm::SoftHsm::new(&[0x43; 32]).unwrap();
    let foreign = api::audit_anchors::foreign_keys(&world.store, &other)
        .await
        .unwrap();
    assert_eq!(foreign.len(), 2);
}

/// The rules of the flow test: one card-velocity rule declining over `max_count`.
fn velocity_rules(max_count: u32) -> String {
    format!(
        "[[rule]]\nname = \"card-velocity\"\nkind = \"velocity\"\nscope = \"card\"\nwindow_secs = 600\nmax_count = {max_count}\naction = \"decline\"\nresponse_code = \"65\"\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn risk_rules_are_edited_in_versions_refused_when_invalid_and_rolled_back() {
    use risk::{Authorization, Entry, Kind};
    let world = world().await;
    let counter = std::cell::Cell::new(0);
    let key = || {
        counter.set(counter.get() + 1);
        format!("rules-test-{}", counter.get())
    };
    // The host's engine, as easypos up runs it, on version 1.
    let engine = risk::Engine::new(risk::Config::from_toml(&velocity_rules(10)).unwrap());
    assert_eq!(
        api::risk_rules::sync_rules(&world.store, &engine)
            .await
            .unwrap(),
        Some(1)
    );
    let cny = money::Currency::parse("CNY").unwrap();
    let sale = Authorization {
        kind: Kind::Sale,
        card: "card-CH001-D",
        terminal: "10000001",
        merchant: demo::SHANGHAI_MERCHANT,
        amount_minor: 1_000,
        currency: cny,
        card_currency: cny,
        mcc: 5411,
        entry: Entry::Chip,
        chip_card: true,
    };
    let now_ms = 1_800_000_000_000;
    for i in 0..3 {
        assert!(engine.evaluate(&sale, now_ms + i).decline_code().is_none());
    }
    let save = |body: String| {
        let key = key();
        let world = &world;
        async move {
            world
                .call(
                    "operator",
                    "POST",
                    "/api/v1/risk/rules/versions",
                    Some(&key),
                    &body,
                )
                .await
        }
    };
    let body = |based_on: i64, toml: &str, note: &str| {
        serde_json::json!({"based_on": based_on, "toml": toml, "note": note}).to_string()
    };

    // An invalid file is refused, naming the rule and setting, and nothing changes.
    let invalid = save(body(
        1,
        &velocity_rules(10).replace("window_secs = 600\n", ""),
        "typo",
    ))
    .await;
    assert_eq!(invalid.status.as_u16(), 422, "{}", invalid.text);
    assert!(
        invalid.json()["detail"]
            .as_str()
            .unwrap()
            .contains("rule[0].window_secs"),
        "{}",
        invalid.text
    );
    let unknown_code = save(body(1, &velocity_rules(10).replace("\"65\"", "\"Q9\""), "")).await;
    assert_eq!(unknown_code.status.as_u16(), 422, "{}", unknown_code.text);
    assert!(
        unknown_code
            .text
            .contains("rule \\\"card-velocity\\\".response_code"),
        "{}",
        unknown_code.text
    );
    assert_eq!(
        world.get("operator", "/api/v1/risk/rules").await.json()["version"],
        1
    );

    // A lower threshold: version 2, in the audit log with its diff; the host's next poll puts
    // it in force and the next sale is declined under it.
    let saved = save(body(1, &velocity_rules(3), "tighter after card testing")).await;
    assert_eq!(saved.status, StatusCode::CREATED, "{}", saved.text);
    let saved = saved.json();
    assert_eq!(
        (saved["version"].clone(), saved["saved_by"].clone()),
        (2.into(), "operator".into())
    );
    assert_eq!(saved["diff"], "- max_count = 10\n+ max_count = 3");
    assert_eq!(
        api::risk_rules::sync_rules(&world.store, &engine)
            .await
            .unwrap(),
        Some(2)
    );
    assert_eq!(
        api::risk_rules::sync_rules(&world.store, &engine)
            .await
            .unwrap(),
        None,
        "once"
    );
    let fourth = engine.evaluate(&sale, now_ms + 3);
    assert_eq!(
        fourth.decline_code().unwrap().as_str(),
        "65",
        "{}",
        fourth.summary()
    );
    let audit = world
        .get("operator", "/api/v1/audit?action=risk_rules.")
        .await
        .json();
    assert_eq!(audit["data"][0]["target"], "risk_rules:2");
    assert!(
        audit["data"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("+ max_count = 3")
    );

    // An editor still on version 1 does not undo version 2.
    let stale = save(body(1, &velocity_rules(50), "")).await;
    assert_eq!(stale.status.as_u16(), 409, "{}", stale.text);

    // Rolled back to version 1: a new version 3 with version 1's text.
    let rolled = world
        .call(
            "operator",
            "POST",
            "/api/v1/risk/rules/versions/1/rollback",
            Some(&key()),
            r#"{"note":"declined good customers"}"#,
        )
        .await;
    assert_eq!(rolled.status, StatusCode::CREATED, "{}", rolled.text);
    let rolled = rolled.json();
    assert_eq!(rolled["version"], 3);
    assert_eq!(rolled["toml"], velocity_rules(10));
    assert_eq!(
        rolled["note"],
        "rollback to version 1: declined good customers"
    );
    assert_eq!(
        api::risk_rules::sync_rules(&world.store, &engine)
            .await
            .unwrap(),
        Some(3)
    );
    assert!(
        engine.evaluate(&sale, now_ms + 4).decline_code().is_none(),
        "10 allowed again"
    );
    let missing = world
        .call(
            "operator",
            "POST",
            "/api/v1/risk/rules/versions/99/rollback",
            Some(&key()),
            "",
        )
        .await;
    assert_eq!(missing.status.as_u16(), 404);
    let versions = world
        .get("operator", "/api/v1/risk/rules/versions")
        .await
        .json();
    let numbers: Vec<i64> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2, 1]);
    let actions = world
        .get("operator", "/api/v1/audit?action=risk_rules.")
        .await
        .json();
    assert_eq!(actions["data"][1]["action"], "risk_rules.rollback");
}

#[tokio::test(flavor = "multi_thread")]
async fn insider_alerts_reach_the_merchants_case_queue_once_per_operator_and_rule() {
    use store::journal::JournalEntry;
    let world = world().await;
    let start = world.store.journal_last_id().await.unwrap();
    assert!(start > 0, "the planted rows");
    let mut feed = api::insider::InsiderFeed::new(risk::insider::InsiderRules::default(), start);
    assert_eq!(feed.pass(&world.store).await.unwrap(), 0, "nothing new");
    // 2025-11-25 12:00 China time.
    let noon_us = 1_764_043_200_000_000;
    let row = |minute: i64, kind: &str, operator: &str, card: &str| JournalEntry {
        received_at: noon_us + minute * 60_000_000,
        terminal_id: "10000001".into(),
        merchant_id: demo::SHANGHAI_MERCHANT.into(),
        mti: "0200".into(),
        kind: kind.into(),
        card: Some(card.into()),
        response: Some("00".into()),
        operator: (!operator.is_empty()).then(|| operator.to_owned()),
        ..JournalEntry::default()
    };
    // Operator 01 sells to card A and refunds it (quiet), then refunds two cards that never
    // paid here (two alerts, one case: the same operator and rule, 2 hits); operator 02 only
    // sells.
    world
        .store
        .journal(vec![
            row(0, "Sale", "01", "622202******0001"),
            row(1, "Refund", "01", "622202******0001"),
            row(2, "Refund", "01", "622202******0002"),
            row(3, "Refund", "01", "622202******0003"),
            row(4, "Sale", "02", "622202******0004"),
            row(5, "EchoTest", "02", ""),
        ])
        .await
        .unwrap();
    assert_eq!(feed.pass(&world.store).await.unwrap(), 2);
    // Six more refunds by 01 in the hour: the spike alerts from the sixth undo on, one case
    // whose hits count the repeats.
    let more: Vec<JournalEntry> = (10..14)
        .map(|minute| row(minute, "Refund", "01", "622202******0001"))
        .collect();
    world.store.journal(more).await.unwrap();
    assert_eq!(
        feed.pass(&world.store).await.unwrap(),
        2,
        "the 6th and 7th undo"
    );
    let cases = world
        .get("shanghai.admin", "/api/v1/cases?status=open")
        .await
        .json();
    let insider: Vec<&serde_json::Value> = cases["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|case| case["rules"].as_str().unwrap().starts_with("insider-"))
        .collect();
    assert_eq!(insider.len(), 2, "{cases}");
    let unpaid = insider
        .iter()
        .find(|case| {
            case["rules"]
                .as_str()
                .unwrap()
                .starts_with("insider-refund-unpaid-card")
        })
        .unwrap();
    assert_eq!(unpaid["hits"], 2);
    let spike = insider
        .iter()
        .find(|case| {
            case["rules"]
                .as_str()
                .unwrap()
                .starts_with("insider-undo-spike")
        })
        .unwrap();
    assert_eq!(spike["hits"], 2);
    assert_eq!(spike["severity"], "alert");
    assert!(
        spike["rules"]
            .as_str()
            .unwrap()
            .contains("7 voids and refunds by operator 01"),
        "{spike}"
    );
    // Beijing's admin sees none of Shanghai's alerts.
    let beijing = world
        .get("beijing.admin", "/api/v1/cases?status=open")
        .await
        .json();
    assert!(!beijing.to_string().contains("insider-"));
}

#[tokio::test(flavor = "multi_thread")]
async fn insider_thresholds_follow_the_newest_rules_version() {
    use store::journal::JournalEntry;
    for backend in store::testing::backends().await {
        let world = common::world_on(backend).await;
        let start = world.store.journal_last_id().await.unwrap();
        let mut feed =
            api::insider::InsiderFeed::new(risk::insider::InsiderRules::default(), start);
        assert_eq!(feed.pass(&world.store).await.unwrap(), 0);
        assert_eq!(
            feed.rules().spike_max,
            5,
            "version 1 has no [insider]: the defaults"
        );
        // An operator saves version 2 with a spike of two undos in ten minutes.
        let toml = "[[rule]]\nname = \"card-velocity\"\nkind = \"velocity\"\nscope = \"card\"\nwindow_secs = 600\nmax_count = 10\naction = \"decline\"\nresponse_code = \"65\"\n\n[insider]\nspike_max = 2\nspike_window_secs = 600\n";
        let saved = world
            .call(
                "operator",
                "POST",
                "/api/v1/risk/rules/versions",
                Some("insider-v2"),
                &serde_json::json!({"based_on": 1, "toml": toml, "note": "tighter insider spike"})
                    .to_string(),
            )
            .await;
        assert_eq!(saved.status, StatusCode::CREATED, "{}", saved.text);
        let refused = world
        .call(
            "operator",
            "POST",
            "/api/v1/risk/rules/versions",
            Some("insider-bad"),
            &serde_json::json!({"based_on": 2, "toml": "[insider]\nspike_max = 0\n", "note": "x"}).to_string(),
        )
        .await;
        assert_eq!(refused.status.as_u16(), 422);
        assert!(
            refused.text.contains("insider.spike_max"),
            "{}",
            refused.text
        );
        // 2025-11-25 12:00 China time: three refunds by operator 09 (after its sale).
        let noon_us = 1_764_043_200_000_000;
        let row = |minute: i64, kind: &str| JournalEntry {
            received_at: noon_us + minute * 60_000_000,
            terminal_id: "10000001".into(),
            merchant_id: demo::SHANGHAI_MERCHANT.into(),
            mti: "0200".into(),
            kind: kind.into(),
            card: Some("622202******0009".into()),
            response: Some("00".into()),
            operator: Some("09".into()),
            ..JournalEntry::default()
        };
        world
            .store
            .journal(vec![
                row(0, "Sale"),
                row(1, "Refund"),
                row(2, "Refund"),
                row(3, "Refund"),
            ])
            .await
            .unwrap();
        assert_eq!(
            feed.pass(&world.store).await.unwrap(),
            1,
            "the third undo, under version 2"
        );
        assert_eq!(feed.rules().spike_max, 2);
        let cases = world
            .get("shanghai.admin", "/api/v1/cases?status=open")
            .await
            .json();
        assert!(
            cases
                .to_string()
                .contains("3 voids and refunds by operator 09"),
            "{cases}"
        );
    }
}

/// A `multipart/form-data` body: `("file:NAME", bytes)` is a file part named NAME, any other
/// name a text field.
fn multipart(fields: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "easypos-api-test-boundary";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match name.strip_prefix("file:") {
            Some(filename) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_merchant_answers_a_dispute_with_files_through_the_api_and_only_its_parties_download_them()
 {
    use axum::body::Body;
    use axum::http::Request;
    let world = world().await;
    let now = world.state.now_seconds();
    let charged_back = |id: &str, sale: i64, merchant: &str, due: i64| store::disputes::Dispute {
        id: id.into(),
        transaction_id: sale,
        merchant_id: merchant.into(),
        card_id: "card-CH001-D".into(),
        amount_minor: 1_250,
        currency: 156,
        reason: "not_received".into(),
        description: "never came".into(),
        status: "charged_back".into(),
        opened_by: "cardholder1".into(),
        opened_at: now - 100,
        answer_due_at: Some(due),
        ..Default::default()
    };
    let id = world
        .store
        .put_dispute(charged_back(
            "dp_00000000000000f1",
            world.transactions["t1"],
            demo::SHANGHAI_MERCHANT,
            now + 86_400,
        ))
        .await
        .unwrap()
        .id;
    let path = format!("/api/v1/disputes/{id}/answer");
    let put = |user: &str, fields: Vec<(&str, Vec<u8>)>| {
        let fields: Vec<(&str, &[u8])> = fields.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let (content_type, body) = multipart(&fields);
        Request::put(&path)
            .header("authorization", format!("Bearer {}", world.keys[user]))
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let pdf = |size: usize| {
        let mut bytes = b"%PDF-1.4\n".to_vec();
        bytes.resize(size, b' ');
        bytes
    };
    let png = b"\x89PNG\r\n\x1a\na delivery note".to_vec();
    let nothing_attached = async || {
        assert!(world.store.dispute_documents(&id).await.unwrap().is_empty());
        assert_eq!(
            world.store.dispute(&id).await.unwrap().unwrap().status,
            "charged_back"
        );
        // No file left behind in the documents directory either.
        let dir = world.documents.path().join("disputes").join(&id);
        assert!(
            std::fs::read_dir(&dir).map_or(true, |mut entries| entries.next().is_none()),
            "{dir:?}"
        );
    };

    // Someone else's dispute: another merchant does not find it; the cardholder does not answer.
    let foreign = world
        .send(put(
            "beijing.admin",
            vec![("evidence", b"ours".to_vec()), ("file:a.pdf", pdf(100))],
        ))
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.text);
    let cardholder = world
        .send(put(
            "cardholder1",
            vec![("evidence", b"me".to_vec()), ("file:a.pdf", pdf(100))],
        ))
        .await;
    assert_eq!(
        cardholder.status,
        StatusCode::FORBIDDEN,
        "{}",
        cardholder.text
    );
    nothing_attached().await;
    // The wrong type, judged by the content: refused, naming the file.
    let wrong = world
        .send(put(
            "shanghai.admin",
            vec![
                ("evidence", b"delivered".to_vec()),
                ("file:receipt.pdf", b"<html>not a pdf</html>".to_vec()),
            ],
        ))
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text);
    assert!(
        wrong.json()["detail"]
            .as_str()
            .unwrap()
            .contains("\"receipt.pdf\": not a PDF, PNG or JPEG file"),
        "{}",
        wrong.text
    );
    nothing_attached().await;
    // A file over 5 MiB: refused, naming the file and the limit.
    let big = world
        .send(put(
            "shanghai.admin",
            vec![
                ("evidence", b"see the note".to_vec()),
                ("file:note.pdf", pdf(5 * 1024 * 1024 + 1)),
            ],
        ))
        .await;
    assert_eq!(big.status, StatusCode::BAD_REQUEST, "{}", big.text);
    assert!(
        big.json()["detail"]
            .as_str()
            .unwrap()
            .contains("\"note.pdf\": 5242881 bytes, larger than the 5 MiB"),
        "{}",
        big.text
    );
    nothing_attached().await;
    // More than all the files together may weigh: 413, nothing read.
    let mut huge = vec![("evidence", b"notes".to_vec())];
    huge.extend((0..6).map(|_| ("file:n.pdf", pdf(5 * 1024 * 1024 - 100))));
    let too_large = world.send(put("shanghai.admin", huge)).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        too_large.json()["type"],
        "/api/problems#evidence-too-large",
        "{}",
        too_large.text
    );
    nothing_attached().await;
    // Not a form at all.
    let json = world
        .call("shanghai.admin", "PUT", &path, None, r#"{"evidence":"x"}"#)
        .await;
    assert_eq!(json.status, StatusCode::BAD_REQUEST, "{}", json.text);
    nothing_attached().await;

    // The answer: two files, their names made safe, the same name twice numbered.
    let answered = world
        .send(put(
            "shanghai.manager",
            vec![
                ("evidence", b"delivered at 12:05, signed for".to_vec()),
                ("file:../../etc/\u{7b7e}\u{8d2d}\u{5355}.pdf", pdf(300)),
                ("file:photo.exe", png.clone()),
                ("file:photo.exe", png.clone()),
            ],
        ))
        .await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text);
    let view = answered.json();
    assert_eq!(view["status"], "answered");
    let names: Vec<&str> = view["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|document| document["name"].as_str().unwrap())
        .collect();
    // Listed by name.
    assert_eq!(
        names,
        [
            "photo.exe (2).png",
            "photo.exe.png",
            "\u{7b7e}\u{8d2d}\u{5355}.pdf"
        ]
    );
    let photo = &view["documents"][1];
    assert_eq!(photo["content_type"], "image/png");
    assert_eq!(photo["uploaded_by"], "shanghai.manager");
    assert_eq!(
        photo["url"],
        format!("/api/v1/disputes/{id}/documents/photo.exe.png")
    );
    assert!(
        view["evidence"]
            .as_str()
            .unwrap()
            .contains("photo.exe.png (image/png"),
        "{view}"
    );
    // Answered once: a repeat is refused and the first answer stands.
    let again = world
        .send(put(
            "shanghai.admin",
            vec![("evidence", b"again".to_vec()), ("file:x.pdf", pdf(50))],
        ))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert_eq!(world.store.dispute_documents(&id).await.unwrap().len(), 3);

    // The parties see the files listed and download them byte for byte.
    let url = photo["url"].as_str().unwrap();
    for user in ["cardholder1", "bank", "shanghai.admin"] {
        let seen = world
            .get(user, &format!("/api/v1/disputes/{id}"))
            .await
            .json();
        assert_eq!(seen["documents"].as_array().unwrap().len(), 3, "{user}");
        let download = world.get(user, url).await;
        assert_eq!(download.status, StatusCode::OK, "{user}");
        assert_eq!(download.content_type, "image/png");
        // Byte for byte (the answer's text is read lossily: its SHA-256 is the file's).
        assert_eq!(download.text, String::from_utf8_lossy(&png), "{user}");
        assert_eq!(
            download.headers["x-document-sha256"].to_str().unwrap(),
            photo["sha256"].as_str().unwrap()
        );
        assert_eq!(
            photo["sha256"].as_str().unwrap(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&png))
        );
    }
    let chinese = world
        .get("cardholder1", view["documents"][2]["url"].as_str().unwrap())
        .await;
    assert_eq!(chinese.status, StatusCode::OK, "{}", chinese.text);
    assert_eq!(chinese.content_type, "application/pdf");
    assert!(
        chinese.headers["content-disposition"]
            .to_str()
            .unwrap()
            .ends_with("filename*=UTF-8''%E7%AD%BE%E8%B4%AD%E5%8D%95.pdf")
    );
    // Nobody else: another merchant, another cardholder, the acquirer's operators (who follow
    // the dispute without its files).
    for user in ["beijing.admin", "cardholder2", "operator"] {
        let download = world.get(user, url).await;
        assert_eq!(
            download.status,
            StatusCode::NOT_FOUND,
            "{user}: {}",
            download.text
        );
    }
    let operator = world
        .get("operator", &format!("/api/v1/disputes/{id}"))
        .await;
    assert_eq!(operator.status, StatusCode::OK, "{}", operator.text);
    assert_eq!(operator.json()["documents"], serde_json::json!([]));
    // A name the dispute does not list.
    let missing = world
        .get(
            "shanghai.admin",
            &format!("/api/v1/disputes/{id}/documents/other.pdf"),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // After the deadline: refused, nothing attached.
    let late = world
        .store
        .put_dispute(charged_back(
            "dp_00000000000000f2",
            world.transactions["t2"],
            demo::SHANGHAI_MERCHANT,
            now - 1,
        ))
        .await
        .unwrap()
        .id;
    let (content_type, body) = multipart(&[
        ("evidence", b"too late".as_slice()),
        ("file:late.pdf", pdf(100).as_slice()),
    ]);
    let refused = world
        .send(
            Request::put(format!("/api/v1/disputes/{late}/answer"))
                .header(
                    "authorization",
                    format!("Bearer {}", world.keys["shanghai.admin"]),
                )
                .header("content-type", content_type)
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    assert_eq!(refused.json()["type"], "/api/problems#answer-too-late");
    assert!(
        world
            .store
            .dispute_documents(&late)
            .await
            .unwrap()
            .is_empty()
    );
    let dir = world.documents.path().join("disputes").join(&late);
    assert!(std::fs::read_dir(&dir).map_or(true, |mut entries| entries.next().is_none()));
}
