//! Incidents through the API (docs/risk.md#incidents): a merchant opens one linking its own
//! transactions and cases (not another's), the referring channel partner is told by webhook and
//! sees it, operations acknowledge and resolve it, the thread takes messages and attachments
//! within limits, the response-time target is tracked, and every action is audited; on SQLite
//! and, when configured, PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn incidents_through_the_api() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        // The partner that referred Beijing listens for events.
        world
            .store
            .put_subscription(store::webhooks::Subscription {
                id: "wh_partner0001".into(),
                owner_user_id: "demo-partner".into(),
                url: "http://127.0.0.1:9/hook".into(),
                secret_nonce: "nonce".into(),
                created_at: 1_764_000_000,
                disabled_at: None,
            })
            .await
            .unwrap();
        let post = async |user: &str, path: &str, key: &str, body: &str| {
            world.call(user, "POST", path, Some(key), body).await
        };
        let t1 = world.transactions["t1"];
        let t3 = world.transactions["t3"];

        // Links must be the merchant's own; the severity one of four; words within limits.
        for (step, (body, says)) in [
            (
                format!(
                    r#"{{"title":"x","severity":"high","description":"d","transactions":["{t1}"]}}"#
                ),
                "no transaction of your merchant",
            ),
            (
                format!(
                    r#"{{"title":"x","severity":"high","description":"d","cases":[{}]}}"#,
                    world.shanghai_case
                ),
                "no case of your merchant",
            ),
            (
                r#"{"title":"x","severity":"urgent","description":"d"}"#.to_owned(),
                "`severity` must be",
            ),
            (
                r#"{"title":" ","severity":"low","description":"d"}"#.to_owned(),
                "`title` must have",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let key = format!("bad-{step}");
            let refused = post("beijing.admin", "/api/v1/incidents", &key, &body).await;
            assert_eq!(
                refused.status,
                StatusCode::BAD_REQUEST,
                "{name}: {}",
                refused.text
            );
            assert!(refused.text.contains(says), "{name}: {}", refused.text);
        }

        let opened = post(
            "beijing.admin",
            "/api/v1/incidents",
            "open",
            &format!(r#"{{"title":"Terminal 20000001 prints blank receipts","severity":"critical","description":"since 9:00","transactions":["{t3}"]}}"#),
        )
        .await;
        assert_eq!(
            opened.status,
            StatusCode::CREATED,
            "{name}: {}",
            opened.text
        );
        let incident = opened.json();
        let id = incident["id"].as_i64().unwrap();
        let path = format!("/api/v1/incidents/{id}");
        assert_eq!(incident["status"], "open");
        assert_eq!(
            incident["partners"],
            serde_json::json!([demo::DEMO_PARTNER])
        );
        assert_eq!(
            incident["transactions"],
            serde_json::json!([t3.to_string()])
        );
        assert_eq!(
            incident["response_due_at"].as_i64().unwrap() - incident["opened_at"].as_i64().unwrap(),
            30 * 60,
            "critical: 30 minutes by default"
        );
        assert_eq!(incident["response_breached"], false);
        assert_eq!(incident["thread"][0]["text"], "since 9:00");

        // The partner is told, and sees it; Shanghai does not.
        let told = world
            .store
            .deliveries_of("wh_partner0001", 10)
            .await
            .unwrap();
        assert_eq!(told.len(), 1, "{name}");
        assert_eq!(told[0].event_type, "incident.opened");
        assert!(
            told[0].payload.contains("prints blank receipts"),
            "{}",
            told[0].payload
        );
        let listed = world.get("partner", "/api/v1/incidents").await.json();
        assert!(
            listed["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["id"] == id),
            "{name}: {listed}"
        );
        assert_eq!(world.get("partner", &path).await.status, StatusCode::OK);
        assert_eq!(
            world.get("shanghai.admin", &path).await.status,
            StatusCode::NOT_FOUND
        );

        // Only operations acknowledge; a second acknowledgement is a conflict.
        let status = format!("{path}/status");
        let merchant = post(
            "beijing.admin",
            &status,
            "ack-m",
            r#"{"status":"acknowledged"}"#,
        )
        .await;
        assert_eq!(merchant.status, StatusCode::FORBIDDEN, "{name}");
        let acknowledged = post(
            "operator",
            &status,
            "ack",
            r#"{"status":"acknowledged","note":"on it"}"#,
        )
        .await;
        assert_eq!(
            acknowledged.status,
            StatusCode::OK,
            "{name}: {}",
            acknowledged.text
        );
        let acknowledged = acknowledged.json();
        assert_eq!(acknowledged["status"], "acknowledged");
        assert_eq!(acknowledged["acknowledged_by"], "operator");
        assert_eq!(acknowledged["response_breached"], false);
        assert_eq!(acknowledged["thread"][1]["text"], "[acknowledged] on it");
        let again = post("operator", &status, "ack2", r#"{"status":"acknowledged"}"#).await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{name}");

        // Attachments: sniffed type, bounded size, kept byte for byte.
        let put = async |user: &str, file: &str, bytes: Vec<u8>| {
            world
                .call_bytes(user, "PUT", &format!("{path}/attachments/{file}"), bytes)
                .await
        };
        assert_eq!(
            put("beijing.admin", "a.gif", b"GIF89a".to_vec())
                .await
                .status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            put("beijing.admin", "empty.pdf", Vec::new()).await.status,
            StatusCode::BAD_REQUEST
        );
        let big = put(
            "beijing.admin",
            "big.pdf",
            vec![b'%'; api::incidents::MAX_ATTACHMENT_BYTES + 1],
        )
        .await;
        assert_eq!(
            big.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{name}: {}",
            big.text
        );
        let photo = b"\x89PNG\r\n\x1a\nphoto of the printer".to_vec();
        let attached = put("partner", "printer.png", photo.clone()).await;
        assert_eq!(
            attached.status,
            StatusCode::CREATED,
            "{name}: {}",
            attached.text
        );
        let thread = attached.json()["thread"].clone();
        let last = thread.as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["author"], "partner");
        assert_eq!(last["attachment"]["content_type"], "image/png");
        assert!(
            last.get("file").is_none() && last["attachment"].get("file").is_none(),
            "no server path shown"
        );
        let seq = last["seq"].as_i64().unwrap();
        let fetched = world
            .get(
                "beijing.admin",
                &format!("{path}/messages/{seq}/attachment"),
            )
            .await;
        assert_eq!(fetched.status, StatusCode::OK);
        assert_eq!(fetched.content_type, "image/png");
        assert_eq!(
            fetched.text.as_bytes(),
            String::from_utf8_lossy(&photo).as_bytes()
        );
        assert_eq!(
            world
                .get("beijing.admin", &format!("{path}/messages/1/attachment"))
                .await
                .status,
            StatusCode::NOT_FOUND,
            "the description has none"
        );

        // Resolved by operations, closed by the merchant; a closed incident takes no more.
        let resolved = post(
            "operator",
            &status,
            "res",
            r#"{"status":"resolved","note":"printer replaced"}"#,
        )
        .await;
        assert_eq!(resolved.json()["status"], "resolved", "{name}");
        let closed = post("beijing.admin", &status, "close", r#"{"status":"closed"}"#).await;
        assert_eq!(closed.json()["status"], "closed", "{name}");
        let late = post(
            "beijing.admin",
            &format!("{path}/messages"),
            "late",
            r#"{"text":"more"}"#,
        )
        .await;
        assert_eq!(late.status, StatusCode::CONFLICT, "{name}");
        let listed = world
            .get("beijing.admin", "/api/v1/incidents?status=closed")
            .await
            .json();
        assert_eq!(
            listed["data"].as_array().unwrap().len(),
            1,
            "{name}: {listed}"
        );
        let bad = world
            .get("beijing.admin", "/api/v1/incidents?status=gone")
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);

        // The planted Shanghai incident is past its target and unanswered: breached.
        let planted = world
            .get(
                "operator",
                &format!("/api/v1/incidents/{}", world.shanghai_incident),
            )
            .await
            .json();
        assert_eq!(planted["response_breached"], true, "{name}: {planted}");
        assert_eq!(planted["cases"], serde_json::json!([world.shanghai_case]));

        // Every step is in the audit log.
        let audit = world
            .get("operator", "/api/v1/audit?action=incident.")
            .await
            .json();
        let actions: Vec<String> = audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|entry| entry["target"] == format!("incident:{id}"))
            .map(|entry| entry["action"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            actions,
            [
                "incident.open",
                "incident.status",
                "incident.attach",
                "incident.status",
                "incident.status"
            ],
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn emergency_key_changes_and_password_resets_act_at_once() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let post = async |user: &str, path: &str, key: &str, body: &str| {
            world.call(user, "POST", path, Some(key), body).await
        };
        // A signed-on terminal: working keys in its session.
        let signed_on = store::directory::SignOn {
            terminal_id: "10000001".into(),
            pin_key: Some("PIK-TOKEN".into()),
            mac_key: Some("MAK-TOKEN".into()),
            operator: "01".into(),
            at: 1_764_000_000,
        };
        assert!(
            world.store.sign_on(signed_on).await.unwrap().is_some(),
            "{name}: the demo terminal has a session"
        );
        let path = "/api/v1/terminals/10000001/key-change";
        let no_reason = post("shanghai.manager", path, "k0", r#"{"reason":" "}"#).await;
        assert_eq!(no_reason.status, StatusCode::BAD_REQUEST, "{name}");
        let changed = post(
            "shanghai.manager",
            path,
            "k1",
            r#"{"reason":"terminal left open overnight"}"#,
        )
        .await;
        assert_eq!(changed.status, StatusCode::OK, "{name}: {}", changed.text);
        assert_eq!(changed.json()["was_signed_on"], true);
        let session = world
            .store
            .terminal_session("10000001")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (session.pin_key, session.mac_key),
            (None, None),
            "{name}: keys dropped now"
        );

        // Every Shanghai user but the admin who asked must choose a new password: their keys
        // are refused at once; Beijing's are not.
        let merchant = format!(
            "/api/v1/merchants/{}/password-reset",
            demo::SHANGHAI_MERCHANT
        );
        let manager = post("shanghai.manager", &merchant, "r0", r#"{"reason":"x"}"#).await;
        assert_eq!(
            manager.status,
            StatusCode::FORBIDDEN,
            "{name}: the admin's call"
        );
        let reset = post(
            "shanghai.admin",
            &merchant,
            "r1",
            r#"{"reason":"passwords written on the till"}"#,
        )
        .await;
        assert_eq!(reset.status, StatusCode::OK, "{name}: {}", reset.text);
        let users = reset.json()["users"].clone();
        assert!(
            users
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u == "shanghai.cashier"),
            "{users}"
        );
        assert!(
            !users
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u == "shanghai.admin"),
            "{users}"
        );
        let refused = world.get("shanghai.cashier", "/api/v1/me").await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{name}");
        assert!(
            refused.text.contains("password-reset-required"),
            "{}",
            refused.text
        );
        assert_eq!(
            world.get("shanghai.admin", "/api/v1/me").await.status,
            StatusCode::OK
        );
        assert_eq!(
            world.get("beijing.admin", "/api/v1/me").await.status,
            StatusCode::OK
        );
        // A new password clears it.
        let cashier = world
            .store
            .user_by_username("shanghai.cashier")
            .await
            .unwrap()
            .unwrap();
        let hash = store::accounts::hash_password("a brand new passphrase").unwrap();
        assert!(
            world
                .store
                .change_password(&cashier.id, &hash)
                .await
                .unwrap()
        );
        assert_eq!(
            world.get("shanghai.cashier", "/api/v1/me").await.status,
            StatusCode::OK,
            "{name}"
        );

        let audit = world.get("operator", "/api/v1/audit?action=").await.json();
        let actions: Vec<&str> = audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.contains(&"terminal.key_change") && actions.contains(&"staff.password_reset"),
            "{name}: {actions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merchant_admin_enrols_a_supervisors_terminal_password_as_an_offset_only() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let put = async |user: &str, operator: &str, body: &str| {
            world
                .call(
                    user,
                    "PUT",
                    &format!("/api/v1/staff/{operator}/terminal-password"),
                    None,
                    body,
                )
                .await
        };
        // Only supervisors and managers of the admin's own merchant; digits only.
        assert_eq!(
            put("shanghai.admin", "01", r#"{"password":"135790"}"#)
                .await
                .status,
            StatusCode::NOT_FOUND,
            "{name}: a cashier"
        );
        assert_eq!(
            put("shanghai.admin", "42", r#"{"password":"135790"}"#)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            put("shanghai.admin", "99", r#"{"password":"12ab56"}"#)
                .await
                .status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            put("shanghai.admin", "99", r#"{"password":"12345"}"#)
                .await
                .status,
            StatusCode::BAD_REQUEST
        );
        let enrolled = put("shanghai.admin", "99", r#"{"password":"135790"}"#).await;
        assert_eq!(enrolled.status, StatusCode::OK, "{name}: {}", enrolled.text);
        assert_eq!(enrolled.json()["operator_no"], "099");
        let stored = world
            .store
            .staff_passwords(demo::SHANGHAI_MERCHANT)
            .await
            .unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].0, "099");
        assert_eq!(stored[0].1.len(), 6, "an offset of the password's length");
        assert_ne!(stored[0].1, "135790", "never the password");
        assert!(
            world
                .store
                .keys()
                .await
                .unwrap()
                .iter()
                .any(|key| key.name == api::supervisors::STAFF_PVK),
            "the staff key generated in the HSM"
        );
        let audit = world
            .get(
                "shanghai.admin",
                "/api/v1/audit?action=staff.terminal_password",
            )
            .await;
        assert!(
            audit.text.contains("staff:898310058120001:099"),
            "{}",
            audit.text
        );
        assert!(!audit.text.contains("135790"), "no password in the log");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn procedures_are_written_by_the_admin_and_acknowledged_by_every_member_of_staff() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let post = async |user: &str, path: &str, key: &str, body: &str| {
            world.call(user, "POST", path, Some(key), body).await
        };
        let save = "/api/v1/procedures/versions";
        let acknowledge = "/api/v1/procedures/acknowledgements";
        // Nothing written yet: nothing to acknowledge.
        let empty = world.get("shanghai.cashier", "/api/v1/procedures").await;
        assert_eq!(empty.status, StatusCode::OK, "{name}: {}", empty.text);
        assert_eq!(empty.json()["current"], serde_json::Value::Null);
        assert_eq!(empty.json()["acknowledged"], true);
        assert_eq!(
            post("shanghai.cashier", acknowledge, "a0", r#"{"version":1}"#)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        // Only the admin writes; an empty text and a stale base are refused.
        let text = r#"{"based_on":0,"text":"1. A refund needs a supervisor.\n2. Count the till at close.","note":"first"}"#;
        assert_eq!(
            post("shanghai.manager", save, "s0", text).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            post(
                "shanghai.admin",
                save,
                "s1",
                r#"{"based_on":0,"text":"  "}"#
            )
            .await
            .status,
            StatusCode::BAD_REQUEST
        );
        let first = post("shanghai.admin", save, "s2", text).await;
        assert_eq!(first.status, StatusCode::CREATED, "{name}: {}", first.text);
        assert_eq!(first.json()["version"], 1);
        let stale = post("shanghai.admin", save, "s3", text).await;
        assert_eq!(stale.status, StatusCode::CONFLICT, "{name}");
        assert!(stale.text.contains("procedures-stale"), "{}", stale.text);

        // The cashier has to acknowledge version 1; an old or future version is refused.
        let cashier = world
            .get("shanghai.cashier", "/api/v1/procedures")
            .await
            .json();
        assert_eq!(cashier["acknowledged"], false);
        assert_eq!(cashier["current"]["version"], 1);
        assert!(
            cashier["staff"].as_array().unwrap().is_empty(),
            "a cashier sees no training record"
        );
        assert_eq!(
            post("shanghai.cashier", acknowledge, "a1", r#"{"version":2}"#)
                .await
                .status,
            StatusCode::CONFLICT
        );
        let done = post("shanghai.cashier", acknowledge, "a2", r#"{"version":1}"#).await;
        assert_eq!(done.status, StatusCode::CREATED, "{name}: {}", done.text);
        let again = post("shanghai.cashier", acknowledge, "a3", r#"{"version":1}"#).await;
        assert_eq!(again.status, StatusCode::OK, "acknowledged before");
        assert_eq!(again.json()["recorded"], false);

        // The manager sees who has and who has not; Beijing sees none of it.
        let record = world
            .get("shanghai.manager", "/api/v1/procedures")
            .await
            .json();
        let status: std::collections::BTreeMap<String, (serde_json::Value, bool)> = record["staff"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["username"].as_str().unwrap().to_owned(),
                    (
                        s["acknowledged_version"].clone(),
                        s["current"].as_bool().unwrap(),
                    ),
                )
            })
            .collect();
        assert_eq!(status["shanghai.cashier"], (serde_json::json!(1), true));
        assert_eq!(status["shanghai.manager"], (serde_json::Value::Null, false));
        assert!(!status.contains_key("beijing.admin"));
        let beijing = world
            .get("beijing.admin", "/api/v1/procedures")
            .await
            .json();
        assert_eq!(beijing["current"], serde_json::Value::Null);
        assert_eq!(
            world.get("operator", "/api/v1/procedures").await.status,
            StatusCode::FORBIDDEN
        );

        // A new version asks the cashier again.
        let second = post(
            "shanghai.admin",
            save,
            "s4",
            r#"{"based_on":1,"text":"1. A refund needs a supervisor.\n2. Count the till twice at close.","note":"count twice"}"#,
        )
        .await;
        assert_eq!(
            second.status,
            StatusCode::CREATED,
            "{name}: {}",
            second.text
        );
        let cashier = world
            .get("shanghai.cashier", "/api/v1/procedures")
            .await
            .json();
        assert_eq!(cashier["acknowledged"], false);

        // Each save and acknowledgement is in the audit log, with the diff for a save.
        let audit = world
            .get("shanghai.admin", "/api/v1/audit?action=procedures.")
            .await
            .json();
        let entries: Vec<(String, String, String)> = audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["actor"].as_str().unwrap().to_owned(),
                    e["action"].as_str().unwrap().to_owned(),
                    e["target"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected = [
            ("shanghai.admin", "procedures.save", "procedures:1"),
            ("shanghai.cashier", "procedures.acknowledge", "procedures:1"),
            ("shanghai.admin", "procedures.save", "procedures:2"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
        assert_eq!(entries, expected, "{name}");
        let detail = audit["data"][2]["detail"].as_str().unwrap();
        assert!(
            detail.contains("count twice") && detail.contains("+ 2. Count the till twice"),
            "{detail}"
        );
    }
}
