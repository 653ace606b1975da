//! Refunds through the API (docs/aftersale.md): parts up to the captured amount, approval above
//! the threshold by another supervisor, the cardholder's request, someone else's sale refused,
//! refused parts, and the timeline; on SQLite and, when configured, PostgreSQL. The refund path
//! is a stand-in here (`common::FakePoster`); crates/acquirer's `console_refunds` test posts
//! through the real one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::*;

fn refund(amount_minor: i64) -> String {
    format!(r#"{{"amount_minor":{amount_minor},"reason":"customer returned it"}}"#)
}

#[tokio::test(flavor = "multi_thread")]
async fn refunds_through_the_api() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let t1 = world.transactions["t1"];
        let path = format!("/api/v1/transactions/{t1}/refunds");
        let post = async |user: &str, path: &str, key: &str, body: &str| {
            world.call(user, "POST", path, Some(key), body).await
        };

        // Another merchant's, another cardholder's or an issuer's view of the sale: refused,
        // nothing reserved.
        let beijing = post("beijing.admin", &path, "b1", &refund(10)).await;
        assert_eq!(beijing.status, StatusCode::NOT_FOUND, "{name}");
        let t3 = world.transactions["t3"];
        let other = post(
            "cardholder1",
            &format!("/api/v1/transactions/{t3}/refunds"),
            "c1",
            &refund(10),
        )
        .await;
        assert_eq!(
            other.status,
            StatusCode::NOT_FOUND,
            "{name}: {}",
            other.text
        );
        let bank = post("bank", &path, "k1", &refund(10)).await;
        assert_eq!(bank.status, StatusCode::FORBIDDEN);
        // A declined sale captured nothing.
        let t2 = world.transactions["t2"];
        let declined = post(
            "shanghai.cashier",
            &format!("/api/v1/transactions/{t2}/refunds"),
            "d1",
            &refund(10),
        )
        .await;
        assert_eq!(declined.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            declined.text.contains("not-refundable"),
            "{}",
            declined.text
        );

        // The planted refund of 1 000 waits for approval: 250 of t1's 1 250 is left.
        let over = post("shanghai.cashier", &path, "o1", &refund(251)).await;
        assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert!(
            over.text.contains("refund-exceeds-captured"),
            "{}",
            over.text
        );
        assert!(over.text.contains("250"), "{}", over.text);
        let part = post("shanghai.cashier", &path, "p1", &refund(200)).await;
        assert_eq!(part.status, StatusCode::CREATED, "{name}: {}", part.text);
        let part = part.json();
        assert_eq!(part["status"], "refunded");
        assert_eq!(part["part"], 2);
        assert_eq!(part["amount"]["major"], "2.00");
        // A retry with the same key answers the same refund, and posts nothing more.
        let retry = post("shanghai.cashier", &path, "p1", &refund(200)).await;
        assert_eq!(retry.json()["id"], part["id"]);
        assert_eq!(world.poster.posted.lock().unwrap().len(), 1);

        // Maker–checker: the cashier cannot approve, nor the manager who asked; another can.
        let pending = format!("/api/v1/refunds/{}/approve", world.pending_refund);
        let cashier = post("shanghai.cashier", &pending, "a1", "").await;
        assert_eq!(cashier.status, StatusCode::FORBIDDEN);
        let manager = post("shanghai.manager", &pending, "a2", "").await;
        assert_eq!(manager.status, StatusCode::OK, "{}", manager.text);
        assert_eq!(manager.json()["decided_by"], "shanghai.manager");
        assert_eq!(manager.json()["status"], "refunded");
        let own = post("shanghai.manager", &path, "m1", &refund(50)).await;
        assert_eq!(
            own.json()["status"],
            "refunded",
            "50 is below the threshold"
        );

        // 1 250 - 1 000 - 200 - 50 = 0 left: one more cent is refused.
        let cent = post("shanghai.admin", &path, "x1", &refund(1)).await;
        assert_eq!(cent.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            cent.text.contains("refund-exceeds-captured"),
            "{}",
            cent.text
        );

        // t4 (3 000, Beijing, cardholder1's card): above the threshold the one who asks cannot
        // approve; a refused posting (frozen) frees the amount again.
        let t4 = world.transactions["t4"];
        let t4_path = format!("/api/v1/transactions/{t4}/refunds");
        let big = post("beijing.admin", &t4_path, "g1", &refund(2_000)).await;
        assert_eq!(big.json()["status"], "pending_approval", "{}", big.text);
        let big_id = big.json()["id"].as_str().unwrap().to_owned();
        let self_approved = post(
            "beijing.admin",
            &format!("/api/v1/refunds/{big_id}/approve"),
            "g2",
            "",
        )
        .await;
        assert_eq!(self_approved.status, StatusCode::FORBIDDEN);
        assert!(
            self_approved.text.contains("another manager"),
            "{}",
            self_approved.text
        );
        world
            .poster
            .frozen
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let frozen = post("beijing.admin", &t4_path, "f1", &refund(1_000)).await;
        assert_eq!(frozen.json()["status"], "failed", "{}", frozen.text);
        assert_eq!(frozen.json()["response"], "58: frozen refunds");
        world
            .poster
            .frozen
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let rest = post("beijing.admin", &t4_path, "f2", &refund(1_000)).await;
        assert_eq!(rest.json()["status"], "refunded", "{}", rest.text);
        let declined = post(
            "beijing.admin",
            &format!("/api/v1/refunds/{big_id}/decline"),
            "g3",
            r#"{"reason":"the goods never came back"}"#,
        )
        .await;
        assert_eq!(declined.json()["status"], "declined", "{}", declined.text);

        // The cardholder asks on t4; Beijing accepts less than asked.
        let asked = post("cardholder1", &t4_path, "r1", &refund(800)).await;
        assert_eq!(asked.status, StatusCode::CREATED, "{}", asked.text);
        assert_eq!(asked.json()["kind"], "request");
        assert_eq!(asked.json()["status"], "requested");
        let request_id = asked.json()["id"].as_str().unwrap().to_owned();
        let accepted = post(
            "beijing.admin",
            &format!("/api/v1/refunds/{request_id}/accept"),
            "r2",
            r#"{"amount_minor":500}"#,
        )
        .await;
        assert_eq!(accepted.status, StatusCode::CREATED, "{}", accepted.text);
        assert_eq!(accepted.json()["request_id"], request_id.as_str());
        assert_eq!(accepted.json()["status"], "refunded");
        let listed = world.get("cardholder1", &t4_path).await.json();
        let mut statuses: Vec<&str> = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|refund| refund["status"].as_str().unwrap())
            .collect();
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            ["accepted", "declined", "failed", "refunded", "refunded"],
            "{name}"
        );
        let queue = world
            .get("beijing.admin", "/api/v1/refunds?status=refunded")
            .await
            .json();
        assert_eq!(queue["data"].as_array().unwrap().len(), 2);
        let timeline = world
            .get(
                "cardholder1",
                &format!("/api/v1/transactions/{t4}/timeline"),
            )
            .await
            .json();
        let mut states: Vec<&str> = timeline["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["state"].as_str().unwrap())
            .collect();
        assert_eq!(states.remove(0), "authorized");
        states.sort_unstable();
        // The world's planted dispute of t4 is there too.
        assert_eq!(
            states,
            ["disputed", "refund-requested", "refunded", "refunded"],
            "{name}"
        );
        // Every change is in the audit log.
        let audit = world
            .get("beijing.admin", "/api/v1/audit?action=refund.")
            .await
            .json();
        assert!(
            audit["data"].as_array().unwrap().len() >= 5,
            "{name}: {audit}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dispute_through_the_api_from_the_cardholder_to_the_issuers_decision() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_on(backend).await;
        let t1 = world.transactions["t1"];
        let open = format!("/api/v1/transactions/{t1}/dispute");
        let body = r#"{"reason":"wrong_amount","description":"I was charged 12.50 for 2.50"}"#;
        let post = async |user: &str, path: &str, key: &str, body: &str| {
            world.call(user, "POST", path, Some(key), body).await
        };

        // Someone else's transaction is not found; only the cardholder opens one.
        let t3 = world.transactions["t3"];
        let foreign = post(
            "cardholder1",
            &format!("/api/v1/transactions/{t3}/dispute"),
            "d0",
            body,
        )
        .await;
        assert_eq!(
            foreign.status,
            StatusCode::NOT_FOUND,
            "{name}: {}",
            foreign.text
        );
        let merchant = post("shanghai.admin", &open, "d1", body).await;
        assert_eq!(merchant.status, StatusCode::FORBIDDEN);
        let unknown = post(
            "cardholder1",
            &open,
            "d2",
            r#"{"reason":"bored","description":"x"}"#,
        )
        .await;
        assert_eq!(unknown.status, StatusCode::BAD_REQUEST);

        let opened = post("cardholder1", &open, "d3", body).await;
        assert_eq!(
            opened.status,
            StatusCode::CREATED,
            "{name}: {}",
            opened.text
        );
        let opened = opened.json();
        // t1 captured 1 250, of which 1 000 is reserved by the planted refund.
        assert_eq!(opened["amount"]["minor"], 250);
        let id = opened["id"].as_str().unwrap().to_owned();
        let again = post("cardholder1", &open, "d4", body).await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.json()["id"], id.as_str());

        let path = |step: &str| format!("/api/v1/disputes/{id}/{step}");
        // The merchant cannot answer before the chargeback, nor review.
        let early = post(
            "shanghai.admin",
            &path("answer"),
            "d5",
            r#"{"evidence":"receipt"}"#,
        )
        .await;
        assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.text);
        let merchant_review = post(
            "shanghai.admin",
            &path("review"),
            "d6",
            r#"{"decision":"chargeback"}"#,
        )
        .await;
        assert_eq!(merchant_review.status, StatusCode::FORBIDDEN);
        let reviewed = post(
            "bank",
            &path("review"),
            "d7",
            r#"{"decision":"chargeback"}"#,
        )
        .await;
        assert_eq!(reviewed.status, StatusCode::OK, "{}", reviewed.text);
        assert_eq!(reviewed.json()["status"], "charged_back");
        assert!(reviewed.json()["answer_due_at"].is_string());
        assert_eq!(
            *world.poster.chargebacks.lock().unwrap(),
            [(aftersale::refunds::ChargebackStep::Credit, 250)]
        );
        // A malformed answer names the body it wants.
        let malformed = post(
            "shanghai.manager",
            &path("answer"),
            "d8a",
            r#"{"evidence":"x","certificate":"yes"}"#,
        )
        .await;
        assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
        assert!(
            malformed.json()["detail"]
                .as_str()
                .unwrap()
                .contains("\"certificate\": true"),
            "{}",
            malformed.text
        );
        // The merchant answers through the API with text and the transaction certificate,
        // no files: the certificate is kept with the dispute and named in the evidence.
        let answered = post(
            "shanghai.manager",
            &path("answer"),
            "d8",
            r#"{"evidence":"the receipt shows 12.50, signed","certificate":true}"#,
        )
        .await;
        assert_eq!(answered.json()["status"], "answered", "{}", answered.text);
        let documents = world.store.dispute_documents(&id).await.unwrap();
        assert_eq!(documents.len(), 1, "{documents:?}");
        assert_eq!(documents[0].content_type, "application/json");
        let evidence = answered.json()["evidence"].as_str().unwrap().to_owned();
        assert!(
            evidence.starts_with("the receipt shows 12.50, signed"),
            "{evidence}"
        );
        assert!(
            evidence.contains(&format!("{} (application/json", documents[0].name))
                && evidence.contains(&documents[0].sha256),
            "{evidence}"
        );
        let certificate: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&documents[0].file).unwrap()).unwrap();
        assert_eq!(certificate["format"], "easypos-certificate/1");
        let decided = post(
            "bank",
            &path("decide"),
            "d9",
            r#"{"in_favour_of":"cardholder","note":"the menu price was 2.50"}"#,
        )
        .await;
        assert_eq!(
            decided.json()["status"],
            "won_by_cardholder",
            "{}",
            decided.text
        );
        assert_eq!(
            world.poster.chargebacks.lock().unwrap().len(),
            1,
            "final: nothing more moves"
        );

        // Every party sees it; the timeline has each step.
        for user in ["cardholder1", "bank", "shanghai.cashier", "operator"] {
            let seen = world.get(user, &format!("/api/v1/disputes/{id}")).await;
            assert_eq!(seen.status, StatusCode::OK, "{user}");
        }
        let hidden = world
            .get("beijing.admin", &format!("/api/v1/disputes/{id}"))
            .await;
        assert_eq!(hidden.status, StatusCode::NOT_FOUND);
        let timeline = world
            .get(
                "cardholder1",
                &format!("/api/v1/transactions/{t1}/timeline"),
            )
            .await
            .json();
        let states: Vec<&str> = timeline["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["state"].as_str().unwrap())
            .collect();
        for state in [
            "disputed",
            "charged-back",
            "dispute-answered",
            "chargeback-final",
        ] {
            assert!(states.contains(&state), "{name}: {state} in {states:?}");
        }
        // A charged-back sale is not refunded on top.
        let refund = post(
            "shanghai.admin",
            &format!("/api/v1/transactions/{t1}/refunds"),
            "d10",
            r#"{"amount_minor":100,"reason":"goodwill"}"#,
        )
        .await;
        assert_eq!(
            refund.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refund.text
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_certificate_is_signed_checkable_and_logged() {
    let world = world().await;
    let t1 = world.transactions["t1"];
    let path = format!("/api/v1/transactions/{t1}/certificate");
    let json = world.get("shanghai.cashier", &path).await;
    assert_eq!(json.status, StatusCode::OK, "{}", json.text);
    assert_eq!(json.content_type, "application/json");
    aftersale::certificate::verify(&world.receipts, &json.text).unwrap();
    let document = json.json();
    assert_eq!(
        json.headers["x-certificate-sha256"].to_str().unwrap(),
        document["sha256"].as_str().unwrap()
    );
    let text = document["certificate"].as_str().unwrap();
    assert!(text.contains(&rrn("t1")) && text.contains("\"issued_to\": \"shanghai.cashier\""));
    // Who keyed it, how the card was read, and what the issuer's decision proved.
    assert!(text.contains("\"operator\": \"003\""), "{text}");
    assert!(text.contains("\"entry_mode\": \"051\""), "{text}");
    assert!(
        text.contains("\"card_verification\": \"chip: cryptogram verified; PIN verified\""),
        "{text}"
    );
    // One changed character is caught.
    let altered = json.text.replacen("12.50", "12.60", 1);
    assert!(aftersale::certificate::verify(&world.receipts, &altered).is_err());

    let pdf = world
        .get("cardholder1", &format!("{path}?format=pdf"))
        .await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert_eq!(pdf.content_type, "application/pdf");
    assert!(pdf.text.starts_with("%PDF-1.4") && pdf.text.contains("TRANSACTION CERTIFICATE"));
    let foreign = world.get("beijing.admin", &path).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    let bad = world
        .get("cardholder1", &format!("{path}?format=doc"))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // Each issue is logged.
    let logged = world
        .store
        .audit_entries(store::audit::AuditQuery {
            action_prefix: Some("certificate.".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        logged
            .iter()
            .map(|entry| entry.actor.as_str())
            .collect::<Vec<_>>(),
        ["shanghai.cashier", "cardholder1"]
    );
}

/// A money path that holds every chargeback step until it is let go, then posts it or
/// refuses it: two operators' steps interleave exactly where the race was.
#[derive(Debug, Default)]
struct GatedPoster {
    entered: tokio::sync::Notify,
    go: tokio::sync::Notify,
    refuse: std::sync::atomic::AtomicBool,
    posted: std::sync::Mutex<Vec<aftersale::refunds::ChargebackStep>>,
}

impl aftersale::refunds::RefundPoster for GatedPoster {
    fn undone<'a>(
        &'a self,
        _sale: &'a aftersale::refunds::SaleKey,
    ) -> aftersale::refunds::BoxFuture<
        'a,
        Result<aftersale::refunds::TerminalUndo, aftersale::refunds::PostError>,
    > {
        Box::pin(async { Ok(aftersale::refunds::TerminalUndo::Nothing) })
    }

    fn post<'a>(
        &'a self,
        _part: &'a aftersale::refunds::RefundPart,
    ) -> aftersale::refunds::BoxFuture<
        'a,
        Result<aftersale::refunds::Posting, aftersale::refunds::PostError>,
    > {
        Box::pin(async { Ok(aftersale::refunds::Posting::Refunded) })
    }

    fn chargeback<'a>(
        &'a self,
        _sale: &'a aftersale::refunds::SaleKey,
        _amount: money::Amount,
        step: aftersale::refunds::ChargebackStep,
    ) -> aftersale::refunds::BoxFuture<
        'a,
        Result<aftersale::refunds::Posting, aftersale::refunds::PostError>,
    > {
        Box::pin(async move {
            self.entered.notify_one();
            self.go.notified().await;
            if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(aftersale::refunds::Posting::Refused {
                    response: "58".into(),
                    reason: "frozen".into(),
                });
            }
            self.posted.lock().unwrap().push(step);
            Ok(aftersale::refunds::Posting::Refunded)
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reject_while_the_chargeback_is_posted_changes_nothing_and_the_chargeback_stands() {
    use aftersale::disputes::{Decision, DisputeError, Disputes, Party, Review};
    use aftersale::refunds::ChargebackStep;
    for backend in store::testing::backends().await {
        let world = world_on(backend).await;
        let poster = std::sync::Arc::new(GatedPoster::default());
        let disputes = Disputes::new(world.store.clone(), poster.clone());
        let sale = world
            .store
            .transactions(&store::accounts::TransactionFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .find(|record| record.id == world.transactions["t4"])
            .unwrap();
        let opened = world.store.dispute(&world.dispute).await.unwrap().unwrap();
        let now = 1_800_000_000;

        // A refused chargeback gives the dispute back: still `opened`, nothing moved.
        poster
            .refuse
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let refused = {
            let (disputes, sale, opened) = (disputes.clone(), sale.clone(), opened.clone());
            tokio::spawn(async move {
                disputes
                    .review(
                        &sale,
                        opened,
                        Party::Issuer,
                        "bank",
                        Review::ChargeBack,
                        "",
                        now,
                    )
                    .await
            })
        };
        poster.entered.notified().await;
        poster.go.notify_one();
        assert!(matches!(
            refused.await.unwrap(),
            Err(DisputeError::Refused(_))
        ));
        let stored = world.store.dispute(&world.dispute).await.unwrap().unwrap();
        assert_eq!(stored.status, "opened");
        assert!(poster.posted.lock().unwrap().is_empty());
        poster
            .refuse
            .store(false, std::sync::atomic::Ordering::SeqCst);

        // Operator A charges back; while its money is being posted, operator B, who read the
        // dispute as `opened`, rejects it: refused, and nothing changes.
        let charging = {
            let (disputes, sale, opened) = (disputes.clone(), sale.clone(), opened.clone());
            tokio::spawn(async move {
                disputes
                    .review(
                        &sale,
                        opened,
                        Party::Issuer,
                        "bank",
                        Review::ChargeBack,
                        "",
                        now,
                    )
                    .await
            })
        };
        poster.entered.notified().await;
        let mid = world.store.dispute(&world.dispute).await.unwrap().unwrap();
        assert_eq!(mid.status, aftersale::disputes::CHARGING_BACK);
        let reject = disputes
            .review(
                &sale,
                opened.clone(),
                Party::Issuer,
                "bank.other",
                Review::Reject,
                "looks genuine",
                now,
            )
            .await;
        assert!(
            matches!(reject, Err(DisputeError::Conflict(_))),
            "{reject:?}"
        );
        // A second chargeback of the stale copy is refused too (it would post twice).
        let second = disputes
            .review(
                &sale,
                opened.clone(),
                Party::Issuer,
                "bank.other",
                Review::ChargeBack,
                "",
                now,
            )
            .await;
        assert!(
            matches!(second, Err(DisputeError::Conflict(_))),
            "{second:?}"
        );
        poster.go.notify_one();
        let charged = charging.await.unwrap().unwrap();
        assert_eq!(charged.status, "charged_back");
        let stored = world.store.dispute(&world.dispute).await.unwrap().unwrap();
        assert_eq!(stored.status, "charged_back");
        assert_eq!(stored.reviewed_by, "bank");
        assert_eq!(*poster.posted.lock().unwrap(), [ChargebackStep::Credit]);

        // The decision, likewise: for the merchant (reversing) against a concurrent decision
        // for the cardholder, after the deadline.
        let late = now + 31 * 24 * 60 * 60;
        let reversing = {
            let (disputes, sale, charged) = (disputes.clone(), sale.clone(), charged.clone());
            tokio::spawn(async move {
                disputes
                    .decide(
                        &sale,
                        charged,
                        Party::Issuer,
                        "bank",
                        Decision::ForMerchant,
                        "receipt signed",
                        late,
                    )
                    .await
            })
        };
        poster.entered.notified().await;
        let other = disputes
            .decide(
                &sale,
                charged.clone(),
                Party::Issuer,
                "bank.other",
                Decision::ForCardholder,
                "no answer",
                late,
            )
            .await;
        assert!(matches!(other, Err(DisputeError::Conflict(_))), "{other:?}");
        poster.go.notify_one();
        assert_eq!(reversing.await.unwrap().unwrap().status, "won_by_merchant");
        assert_eq!(
            *poster.posted.lock().unwrap(),
            [ChargebackStep::Credit, ChargebackStep::Reverse]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dispute_answer_keeps_its_certificate_and_files_and_each_party_lists_its_disputes() {
    for backend in store::testing::backends().await {
        let world = world_on(backend).await;
        let documents = store::testing::tempdir::TempDir::new();
        let state = api::ApiState::new(world.store.clone())
            .with_disputes(aftersale::disputes::Disputes::new(
                world.store.clone(),
                world.poster.clone(),
            ))
            .with_receipts(Some(world.receipts.clone()))
            .with_documents_dir(documents.path().to_owned());
        let principal = async |name: &str| api::access::Principal {
            user: world.store.user_by_username(name).await.unwrap().unwrap(),
        };
        let (bank, beijing, shanghai) = (
            principal("bank").await,
            principal("beijing.admin").await,
            principal("shanghai.admin").await,
        );
        // Each party lists the disputes of its own tenant only.
        let ids = async |who: &api::access::Principal| -> Vec<String> {
            api::disputes::visible_disputes(&state, who)
                .await
                .unwrap()
                .into_iter()
                .map(|dispute| dispute.id)
                .collect()
        };
        assert_eq!(ids(&bank).await, std::slice::from_ref(&world.dispute));
        assert_eq!(ids(&beijing).await, std::slice::from_ref(&world.dispute));
        assert!(ids(&shanghai).await.is_empty());

        api::disputes::review_step(&state, &bank, &world.dispute, "chargeback", "")
            .await
            .unwrap();
        // Not a PDF, PNG or JPEG: refused, nothing attached, nothing answered.
        let refused = api::disputes::answer_with_documents(
            &state,
            &beijing,
            &world.dispute,
            "delivered",
            true,
            vec![api::disputes::Upload {
                name: "notes.txt".into(),
                bytes: b"plain text".to_vec(),
            }],
        )
        .await;
        assert_eq!(refused.unwrap_err().status, 400);
        assert!(
            world
                .store
                .dispute_documents(&world.dispute)
                .await
                .unwrap()
                .is_empty()
        );
        let (answered, attached) = api::disputes::answer_with_documents(
            &state,
            &beijing,
            &world.dispute,
            "delivered and signed for",
            true,
            vec![api::disputes::Upload {
                name: "delivery note.pdf".into(),
                bytes: b"%PDF-1.4 a delivery note".to_vec(),
            }],
        )
        .await
        .unwrap();
        assert_eq!(answered.status, "answered");
        let stored = world.store.dispute_documents(&world.dispute).await.unwrap();
        let mut attached = attached;
        attached.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(stored, attached, "kept as attached, listed by name");
        let names: Vec<&str> = stored.iter().map(|d| d.name.as_str()).collect();
        let certificate = format!("certificate-{}.json", world.transactions["t4"]);
        assert_eq!(names, [certificate.as_str(), "delivery note.pdf"]);
        for document in &stored {
            assert!(answered.evidence.contains(&document.sha256));
            assert!(std::path::Path::new(&document.file).starts_with(documents.path()));
        }
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&stored[0].file).unwrap()).unwrap();
        assert_eq!(json["format"], "easypos-certificate/1");
        // The certificate states the chip and PIN results and the operator the journal kept.
        let text = json["certificate"].as_str().unwrap();
        assert!(
            text.contains("chip: cryptogram verified; PIN verified"),
            "{text}"
        );
        assert!(text.contains("\"operator\": \"003\""), "{text}");
        // And the transaction list (the statements' source) reads the entry mode back.
        let records = world
            .store
            .transactions(&store::accounts::TransactionFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            records
                .iter()
                .filter(|record| record.kind == "Sale")
                .all(|record| record.entry_mode.as_deref() == Some("051"))
        );
        // Answering again is refused: the dispute is answered.
        let again = api::disputes::answer_with_documents(
            &state,
            &beijing,
            &world.dispute,
            "x",
            false,
            vec![],
        )
        .await;
        assert_eq!(again.unwrap_err().status, 409);
    }
}
