#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The API under attack (issue 14): security headers on every kind of answer, and SQL injection
//! and wildcard attempts on every search field: every query
//! parameter the OpenAPI document lists, on every route that has one, with payloads that would
//! widen or break a query built from text. Each must be refused (4xx) or taken literally — an
//! answer that lists nothing, since no stored value is the payload — never a server error, and
//! the data must be as it was afterwards. On SQLite and PostgreSQL.
//!
//! The routes and their parameters come from `api::openapi::document()`, so a search field added
//! later is attacked too.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::{World, world, world_on};
use serde_json::Value;

/// Payloads that a query built by pasting text would run as SQL, or as a LIKE pattern.
const PAYLOADS: [&str; 10] = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "1 OR 1=1",
    "\" OR \"\"=\"",
    "'; DROP TABLE journal; --",
    "' UNION SELECT NULL, NULL, NULL --",
    "%",
    "_",
    "%' OR '%'='",
    "\\",
];

/// The users who search: the operator sees every tenant, a merchant admin only its own.
const USERS: [&str; 2] = ["operator", "shanghai.admin"];

/// Every (path template, query parameter) of a GET route in the OpenAPI document.
fn search_fields() -> Vec<(String, String)> {
    let document = api::openapi::document();
    let mut fields = Vec::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        let Some(get) = operations.get("get") else {
            continue;
        };
        for parameter in get["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] == "query" {
                fields.push((path.clone(), parameter["name"].as_str().unwrap().to_owned()));
            }
        }
    }
    fields
}

/// The template with its path parameters filled in from the demo world.
fn concrete(world: &World, template: &str) -> String {
    template
        .replace("{id}", &world.transactions["t1"].to_string())
        // The planted transactions' month (their receive time is 2025-11-24).
        .replace("{month}", "2025-11")
}

/// Percent-encodes a query value (every byte outside unreserved characters).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// Whether a JSON answer lists anything: a non-empty array anywhere in it.
fn lists_something(value: &Value) -> bool {
    match value {
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => fields.values().any(lists_something),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_search_field_takes_injection_attempts_literally_or_refuses_them() {
    let fields = search_fields();
    // The document lists the transaction search's fields; a parse that found nothing would
    // make this test pass vacuously.
    assert!(
        fields
            .iter()
            .any(|(path, name)| path == "/api/v1/transactions" && name == "card"),
        "{fields:?}"
    );
    assert!(fields.len() >= 15, "{fields:?}");
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let journal_before = world.store.journal_recent(1_000).await.unwrap().len();
        let transactions_before = world.get("operator", "/api/v1/transactions").await;
        assert_eq!(transactions_before.status, 200);
        // The check below sees rows where there are some: a real value of a field lists them.
        let control = world
            .get("operator", "/api/v1/transactions?terminal_id=10000001")
            .await;
        assert!(lists_something(&control.json()), "{name}: {}", control.text);
        assert!(
            control.text.contains("RRN000000001"),
            "{name}: {}",
            control.text
        );

        let mut failures = Vec::new();
        for (template, field) in &fields {
            let path = concrete(&world, template);
            for payload in PAYLOADS {
                for user in USERS {
                    let uri = format!("{path}?{field}={}", encode(payload));
                    let answer = world.get(user, &uri).await;
                    let status = answer.status.as_u16();
                    let what = format!("{name}: {user} GET {path}?{field}={payload:?}");
                    if answer.status.is_server_error() {
                        failures.push(format!("{what}: {status} {}", answer.text));
                        continue;
                    }
                    if answer.status.is_client_error() {
                        // Refused: with a problem that says why, and without echoing rows.
                        if !answer.content_type.starts_with("application/problem+json") {
                            failures.push(format!(
                                "{what}: {status} without a problem document ({})",
                                answer.content_type
                            ));
                        }
                        continue;
                    }
                    // Taken literally: no stored value is the payload, so nothing matches. (A
                    // certificate's `format` or a statement is not a search: they are enums
                    // or a document, and refused above or checked for rows here.)
                    if answer.content_type.starts_with("application/json")
                        && lists_something(&answer.json())
                    {
                        failures.push(format!("{what}: {status} lists rows: {}", answer.text));
                    }
                    for planted in ["RRN000000001", "RRN000000003", "RRN000000004"] {
                        if answer.text.contains(planted) {
                            failures.push(format!("{what}: {status} shows {planted}"));
                        }
                    }
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );

        // Nothing was run: the journal and the search answer are as they were.
        assert_eq!(
            world.store.journal_recent(1_000).await.unwrap().len(),
            journal_before,
            "{name}"
        );
        let transactions_after = world.get("operator", "/api/v1/transactions").await;
        assert_eq!(transactions_after.text, transactions_before.text, "{name}");
        let audit = world.store.verify_audit().await.unwrap();
        assert!(audit.first_break.is_none(), "{name}: {audit:?}");
    }
}

#[tokio::test]
async fn every_kind_of_answer_carries_the_security_headers() {
    let world = world().await;
    let t1 = world.transactions["t1"];
    let anonymous = |method: &str, path: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap()
    };
    let answers = [
        (
            "a list",
            world.get("operator", "/api/v1/transactions").await,
        ),
        (
            "a PDF",
            world
                .get(
                    "shanghai.admin",
                    &format!("/api/v1/transactions/{t1}/certificate?format=pdf"),
                )
                .await,
        ),
        (
            "the OpenAPI document",
            world.send(anonymous("GET", "/api/openapi.json")).await,
        ),
        (
            "no key",
            world.send(anonymous("GET", "/api/v1/transactions")).await,
        ),
        (
            "a role without the route",
            world.get("bank", "/api/v1/terminals").await,
        ),
        (
            "another tenant's",
            world
                .get("beijing.admin", &format!("/api/v1/transactions/{t1}"))
                .await,
        ),
        (
            "no such route",
            world.get("operator", "/api/v1/nothing").await,
        ),
        (
            "a wrong method",
            world
                .call("operator", "DELETE", "/api/v1/transactions", None, "")
                .await,
        ),
        (
            "the public receipt check",
            world
                .send(anonymous("POST", "/api/v1/receipts/verify"))
                .await,
        ),
    ];
    let statuses: Vec<u16> = answers
        .iter()
        .map(|(_, answer)| answer.status.as_u16())
        .collect();
    assert_eq!(statuses[..3], [200, 200, 200], "{statuses:?}");
    assert!(
        statuses[3..].iter().all(|status| *status >= 400),
        "{statuses:?}"
    );
    for (what, answer) in &answers {
        for (header, value) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            (
                "content-security-policy",
                "default-src 'none'; frame-ancestors 'none'",
            ),
            ("referrer-policy", "no-referrer"),
            ("cache-control", "no-store"),
        ] {
            assert_eq!(
                answer.headers.get(header).and_then(|v| v.to_str().ok()),
                Some(value),
                "{what}: {header}"
            );
        }
    }
}
