//! The onboarding API in-process (`oneshot`) on every backend: drafts and resume, field
//! errors, automatic approval with activation codes, the review queue with maker–checker,
//! more information and rejection, documents, partners kept apart, terminal statuses told to
//! the host, and activation codes good once and for a day.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use onboarding::service::{HostDirectory, Onboarding, Settings};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use store::accounts::{NewUser, Role, Tenant};
use store::directory::{Merchant, Terminal};
use store::{ManualClock, Store};
use tower::ServiceExt;

const START_NANOS: u64 = 1_764_000_000 * 1_000_000_000;

/// What the host heard: terminal statuses and keys; parameter versions.
#[derive(Debug, Default)]
struct RecordingHost(Mutex<Vec<(String, String)>>, Mutex<Vec<(String, u32)>>);

impl HostDirectory for RecordingHost {
    fn terminal_changed(&self, terminal: &Terminal, _merchant: &Merchant) {
        self.0
            .lock()
            .unwrap()
            .push((terminal.id.clone(), terminal.status.clone()));
    }

    fn key_changed(&self, name: &str) {
        self.0
            .lock()
            .unwrap()
            .push((name.to_owned(), "key".to_owned()));
    }

    fn parameters_changed(
        &self,
        terminal_id: &str,
        parameters: &acquirer::parameters::TerminalParameters,
    ) {
        self.1
            .lock()
            .unwrap()
            .push((terminal_id.to_owned(), parameters.version));
    }
}

struct World {
    router: axum::Router,
    service: Onboarding,
    store: Arc<Store>,
    clock: Arc<ManualClock>,
    host: Arc<RecordingHost>,
    keys: std::collections::HashMap<&'static str, String>,
    _backend: store::testing::TestBackend,
    _documents: store::testing::tempdir::TempDir,
}

async fn world(backend: store::testing::TestBackend) -> World {
    world_limited(backend, onboarding::limits::ApplicationLimits::default()).await
}

async fn world_limited(
    backend: store::testing::TestBackend,
    limits: onboarding::limits::ApplicationLimits,
) -> World {
    let store = Arc::new(Store::open(&backend.backend).await.unwrap());
    let hsm: Arc<dyn hsm::Hsm> = Arc::new(hsm::SoftHsm::new(&[0x42; 32]).unwrap());
    demo::seed(&store, hsm.as_ref()).await.unwrap();
    let clock = Arc::new(ManualClock::new(START_NANOS));
    let host = Arc::new(RecordingHost::default());
    let documents = store::testing::tempdir::TempDir::new();
    let onboarding = Onboarding {
        store: store.clone(),
        hsm,
        clock: clock.clone(),
        settings: Settings {
            acquirer: demo::ACQUIRER,
            host_address: "127.0.0.1:9999".into(),
            documents_dir: documents.path().to_owned(),
            activation_code_seconds: onboarding::service::ACTIVATION_CODE_SECONDS,
            cvm_limit: "300.00".into(),
        },
        host: host.clone(),
        limits: Arc::new(limits),
    };
    let users = [
        (
            "maker",
            Role::PlatformOperator,
            Tenant::Institution(demo::ACQUIRER),
        ),
        (
            "checker",
            Role::PlatformOperator,
            Tenant::Institution(demo::ACQUIRER),
        ),
        (
            "partner1",
            Role::ChannelPartner,
            Tenant::Partner("P101".into()),
        ),
        (
            "partner2",
            Role::ChannelPartner,
            Tenant::Partner("P102".into()),
        ),
    ];
    let mut keys = std::collections::HashMap::new();
    for (name, role, tenant) in users {
        store
            .put_users(vec![
                NewUser::new(name, name, name, role, tenant, "a long test passphrase", 0).unwrap(),
            ])
            .await
            .unwrap();
        let (issued, digest) = store::accounts::new_api_key(name, "test", 0);
        store.put_api_key(issued.key, digest).await.unwrap();
        keys.insert(name, issued.secret);
    }
    let api_state = api::ApiState::new(store.clone());
    let service = onboarding.clone();
    let router =
        onboarding::http::router(onboarding, api_state.clone()).merge(api::router(api_state));
    World {
        router,
        service,
        store,
        clock,
        host,
        keys,
        _backend: backend,
        _documents: documents,
    }
}

struct Reply {
    status: StatusCode,
    json: Value,
    text: String,
}

impl World {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        auth: Option<&str>,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .header("idempotency-key", format!("k-{}", rand_suffix()));
        if let Some(user) = auth {
            request = request.header("authorization", format!("Bearer {}", self.keys[user]));
        }
        if let Some(token) = token {
            request = request.header("x-resume-token", token);
        }
        let body = body.map_or_else(Body::empty, |body| Body::from(body.to_string()));
        self.send(request.body(body).unwrap()).await
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Reply {
            status,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

const CARD: &str = "6217000000000000018";

fn card() -> String {
    demo::with_luhn(&CARD[..18])
}

/// A complete form of a small café: low risk.
fn cafe(credit_code: &str, id_number: &str) -> Value {
    json!({
        "business_name": "Jing'an Tea House",
        "credit_code": credit_code,
        "legal_name": "Chen Jing",
        "id_number": id_number,
        "mobile": "13812345678",
        "address": "100 Yuyuan Road",
        "city": "Shanghai",
        "mcc": "5814",
        "settlement_card": card(),
        "bank": "Huangpu Commercial Bank",
        "monthly_volume": "80000",
        "terminal_count": "1",
        "terminal_kind": "countertop",
        "consent": "on",
    })
}

#[tokio::test]
async fn an_applicant_saves_resumes_submits_and_is_approved_at_once() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world(backend).await;
        // A draft with half the fields.
        let draft = world
            .call("POST", "/onboarding/v1/applications", None, None, Some(json!({"form": {"business_name": "Jing'an Tea House", "settlement_card": card()}})))
            .await;
        assert_eq!(draft.status, StatusCode::CREATED, "{name}: {}", draft.text);
        let id = draft.json["id"].as_str().unwrap().to_owned();
        let token = draft.json["resume_token"].as_str().unwrap().to_owned();
        assert_eq!(draft.json["status"], "draft");
        // The card number is kept masked only: in the answer and in the database.
        let masked = draft.json["form"]["settlement_card"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(masked, format!("621700*********{}", &card()[15..]));
        let stored = world
            .store
            .onboarding_query(
                "SELECT form FROM applications WHERE id = $1",
                vec![store::onboarding::Cell::text(&id)],
                &[store::onboarding::Kind::Text],
            )
            .await
            .unwrap();
        assert!(
            !stored[0][0].as_text().unwrap().contains(&card()),
            "{name}: clear card stored"
        );
        // Resume needs the token.
        let wrong = world
            .call(
                "GET",
                &format!("/onboarding/v1/applications/{id}"),
                None,
                Some("WRONG"),
                None,
            )
            .await;
        assert_eq!(wrong.status, StatusCode::NOT_FOUND);
        let none = world
            .call(
                "GET",
                &format!("/onboarding/v1/applications/{id}"),
                None,
                None,
                None,
            )
            .await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED);
        let resumed = world
            .call(
                "GET",
                &format!("/onboarding/v1/applications/{id}"),
                None,
                Some(&token),
                None,
            )
            .await;
        assert_eq!(resumed.json["form"]["business_name"], "Jing'an Tea House");
        // Submitting bad fields names each one.
        let mut bad = cafe("91350100M000100Y44", "110105194912310021");
        bad["mobile"] = json!("12345");
        bad["settlement_card"] = json!(masked);
        let refused = world
            .call(
                "PUT",
                &format!("/onboarding/v1/applications/{id}"),
                None,
                Some(&token),
                Some(json!({"form": bad, "submit": true})),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {}",
            refused.text
        );
        let codes: Vec<&str> = refused.json["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, ["credit-code-check", "id-check", "mobile"]);
        // A good form, keeping the masked card: approved at once.
        let mut good = cafe("91350100M000100Y43", "11010519491231002X");
        good["settlement_card"] = json!(masked);
        let approved = world
            .call(
                "PUT",
                &format!("/onboarding/v1/applications/{id}"),
                None,
                Some(&token),
                Some(json!({"form": good, "submit": true})),
            )
            .await;
        assert_eq!(approved.status, StatusCode::OK, "{name}: {}", approved.text);
        assert_eq!(approved.json["status"], "approved");
        let provisioned = &approved.json["provisioned"];
        let mid = provisioned["merchant_id"].as_str().unwrap();
        assert_eq!(mid.len(), 15);
        assert!(mid.starts_with("89831005814"), "{mid}");
        let tid = provisioned["terminal_ids"][0].as_str().unwrap();
        assert_eq!(tid.len(), 8);
        assert_eq!(provisioned["activation_codes"][0]["terminal_id"], tid);
        assert!(provisioned["invitation"].as_str().unwrap().len() >= 32);
        // The directory, the merchant's account and its administrator exist.
        let directory = world.store.load_directory().await.unwrap();
        let merchant = directory.merchants.iter().find(|m| m.id == mid).unwrap();
        assert_eq!(
            (merchant.city.as_str(), merchant.mcc.as_str()),
            ("Shanghai", "5814")
        );
        assert_eq!(
            directory
                .terminals
                .iter()
                .find(|t| t.id == tid)
                .unwrap()
                .status,
            "inactive"
        );
        assert!(
            world
                .store
                .account(merchant.settlement_account)
                .await
                .unwrap()
                .is_some()
        );
        let admin = world
            .store
            .user_by_username(&format!("m{mid}.admin"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(admin.tenant, Tenant::Merchant(mid.to_owned()));
        // The invitation sets the administrator's password, once.
        let invitation = provisioned["invitation"].as_str().unwrap();
        let accepted = world
            .call(
                "POST",
                "/onboarding/v1/invitations/accept",
                None,
                None,
                Some(json!({"token": invitation, "password": "my own long passphrase"})),
            )
            .await;
        assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
        let again = world
            .call(
                "POST",
                "/onboarding/v1/invitations/accept",
                None,
                None,
                Some(json!({"token": invitation, "password": "another long passphrase"})),
            )
            .await;
        assert_eq!(again.status, StatusCode::GONE);
        // The status page shows the outcome; the application cannot be changed any more.
        let status = world
            .call(
                "GET",
                &format!("/onboarding/v1/applications/{id}"),
                None,
                Some(&token),
                None,
            )
            .await;
        assert_eq!(
            (
                status.json["status"].as_str(),
                status.json["merchant_id"].as_str()
            ),
            (Some("approved"), Some(mid))
        );
        let late = world
            .call(
                "PUT",
                &format!("/onboarding/v1/applications/{id}"),
                None,
                Some(&token),
                Some(json!({"form": good})),
            )
            .await;
        assert_eq!(late.status, StatusCode::CONFLICT);
    }
}

#[tokio::test]
async fn maker_checker_cannot_be_bypassed_by_one_person() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world(backend).await;
        let first = world
            .call("POST", "/onboarding/v1/applications", None, None, Some(json!({"form": cafe("91350100M000100Y43", "11010519491231002X"), "submit": true})))
            .await;
        assert_eq!(first.json["status"], "approved", "{name}: {}", first.text);
        // Same credit code again, a jeweller expecting a lot: it waits for people.
        let mut risky = cafe("91350100M000100Y43", "440524188001010014");
        risky["mcc"] = json!("5944");
        risky["monthly_volume"] = json!("5,000,000");
        risky["terminal_count"] = json!("2");
        let waiting = world
            .call(
                "POST",
                "/onboarding/v1/applications",
                None,
                None,
                Some(json!({"form": risky, "submit": true})),
            )
            .await;
        assert_eq!(
            waiting.json["status"], "submitted",
            "{name}: {}",
            waiting.text
        );
        let id = waiting.json["id"].as_str().unwrap().to_owned();
        let queue = world
            .call(
                "GET",
                "/onboarding/v1/review/applications?status=submitted",
                Some("maker"),
                None,
                None,
            )
            .await;
        assert_eq!(queue.status, StatusCode::OK, "{name}: {}", queue.text);
        let entry = queue
            .json
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id.as_str())
            .unwrap()
            .clone();
        let reasons: Vec<&str> = entry["risk"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["code"].as_str().unwrap())
            .collect();
        assert!(
            reasons.contains(&"duplicate-credit-code")
                && reasons.contains(&"mcc-risk")
                && reasons.contains(&"volume-far-above-category"),
            "{reasons:?}"
        );
        let decide = |user: &'static str, decision: &'static str| {
            let world = &world;
            let id = id.clone();
            async move {
                world
                    .call(
                        "POST",
                        &format!("/onboarding/v1/review/applications/{id}/decision"),
                        Some(user),
                        None,
                        Some(json!({"decision": decision})),
                    )
                    .await
            }
        };
        // Approving before anyone reviewed it: refused.
        assert_eq!(
            decide("maker", "approve").await.status,
            StatusCode::FORBIDDEN
        );
        // The partner is no operator.
        assert_eq!(
            decide("partner1", "recommend").await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(decide("maker", "recommend").await.status, StatusCode::OK);
        // The maker cannot be the checker.
        let same = decide("maker", "approve").await;
        assert_eq!(same.status, StatusCode::FORBIDDEN, "{}", same.text);
        assert!(
            same.json["detail"]
                .as_str()
                .unwrap()
                .contains("maker–checker")
        );
        // Nothing was created by the refused attempts.
        let status = world
            .call(
                "GET",
                &format!("/onboarding/v1/review/applications/{id}"),
                Some("checker"),
                None,
                None,
            )
            .await;
        assert_eq!(
            (
                status.json["status"].as_str(),
                status.json["merchant_id"].as_str()
            ),
            (Some("submitted"), None)
        );
        let approved = decide("checker", "approve").await;
        assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
        assert_eq!(approved.json["status"], "approved");
        assert_eq!(approved.json["reviewed_by"], "maker");
        assert_eq!(approved.json["approved_by"], "checker");
        assert_eq!(
            approved.json["provisioned"]["terminal_ids"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            approved.json["provisioned"]["activation_codes"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        // Twice approved is no second merchant.
        assert_eq!(
            decide("checker", "approve").await.status,
            StatusCode::CONFLICT
        );
    }
}

#[tokio::test]
async fn more_information_amendment_and_rejection() {
    let world = world(store::testing::sqlite()).await;
    let mut form = cafe("914403001922038216", "11010519491231002X");
    form["mcc"] = json!("5311");
    let submitted = world
        .call(
            "POST",
            "/onboarding/v1/applications",
            None,
            None,
            Some(json!({"form": form, "submit": true})),
        )
        .await;
    assert_eq!(submitted.json["status"], "submitted", "{}", submitted.text);
    let id = submitted.json["id"].as_str().unwrap().to_owned();
    let token = submitted.json["resume_token"].as_str().unwrap().to_owned();
    let path = format!("/onboarding/v1/review/applications/{id}/decision");
    let empty = world
        .call(
            "POST",
            &path,
            Some("maker"),
            None,
            Some(json!({"decision": "more_info"})),
        )
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    let asked = world
        .call(
            "POST",
            &path,
            Some("maker"),
            None,
            Some(json!({"decision": "more_info", "reason": "Upload the business licence"})),
        )
        .await;
    assert_eq!(asked.json["status"], "more_info");
    // The applicant sees the request and amends.
    let seen = world
        .call(
            "GET",
            &format!("/onboarding/v1/applications/{id}"),
            None,
            Some(&token),
            None,
        )
        .await;
    assert_eq!(seen.json["note"], "Upload the business licence");
    let png = b"\x89PNG\r\n\x1a\nrest of a picture".to_vec();
    let request = |kind: &str, bytes: Vec<u8>| {
        Request::builder()
            .method("PUT")
            .uri(format!("/onboarding/v1/applications/{id}/documents/{kind}"))
            .header("x-resume-token", &token)
            .body(Body::from(bytes))
            .unwrap()
    };
    let uploaded = world.send(request("licence", png.clone())).await;
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.text);
    assert_eq!(uploaded.json["content_type"], "image/png");
    let wrong_type = world
        .send(request("licence", b"MZ\x90\x00 an executable".to_vec()))
        .await;
    assert_eq!(wrong_type.json["errors"][0]["code"], "document-type");
    let wrong_kind = world.send(request("selfie", png.clone())).await;
    assert_eq!(wrong_kind.json["errors"][0]["code"], "document-kind");
    let too_big = world
        .send(request(
            "id_front",
            vec![0xFF; onboarding::http::MAX_DOCUMENT_BYTES + 10],
        ))
        .await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Stored outside any web root: under the documents directory, by application.
    let file = world._documents.path().join(&id).join("licence.png");
    assert_eq!(std::fs::read(file).unwrap(), png);
    let mut amended = form.clone();
    amended["settlement_card"] = seen.json["form"]["settlement_card"].clone();
    let resubmitted = world
        .call(
            "PUT",
            &format!("/onboarding/v1/applications/{id}"),
            None,
            Some(&token),
            Some(json!({"form": amended, "submit": true})),
        )
        .await;
    assert_eq!(
        resubmitted.json["status"], "submitted",
        "{}",
        resubmitted.text
    );
    assert_eq!(resubmitted.json["documents"][0]["kind"], "licence");
    let rejected = world
        .call(
            "POST",
            &path,
            Some("checker"),
            None,
            Some(
                json!({"decision": "reject", "reason": "Department stores apply through a branch"}),
            ),
        )
        .await;
    assert_eq!(rejected.json["status"], "rejected");
    let seen = world
        .call(
            "GET",
            &format!("/onboarding/v1/applications/{id}"),
            None,
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (seen.json["status"].as_str(), seen.json["note"].as_str()),
        (
            Some("rejected"),
            Some("Department stores apply through a branch")
        )
    );
}

#[tokio::test]
async fn partners_see_only_their_own_applications_and_merchants() {
    for backend in store::testing::backends().await {
        let world = world(backend).await;
        let submitted = world
            .call("POST", "/onboarding/v1/partner/applications", Some("partner1"), None, Some(json!({"form": cafe("91350100M000100Y43", "11010519491231002X"), "submit": true})))
            .await;
        assert_eq!(submitted.status, StatusCode::CREATED, "{}", submitted.text);
        assert_eq!(submitted.json["status"], "approved");
        let id = submitted.json["id"].as_str().unwrap();
        let mid = submitted.json["merchant_id"].as_str().unwrap();
        let mine = world
            .call(
                "GET",
                "/onboarding/v1/review/applications",
                Some("partner1"),
                None,
                None,
            )
            .await;
        assert_eq!(mine.json.as_array().unwrap().len(), 1);
        assert_eq!(mine.json[0]["partner_id"], "P101");
        assert!(
            mine.json[0]["risk"]["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["code"] == "partner-submitted")
        );
        let theirs = world
            .call(
                "GET",
                "/onboarding/v1/review/applications",
                Some("partner2"),
                None,
                None,
            )
            .await;
        assert_eq!(theirs.json, json!([]));
        let peek = world
            .call(
                "GET",
                &format!("/onboarding/v1/review/applications/{id}"),
                Some("partner2"),
                None,
                None,
            )
            .await;
        assert_eq!(peek.status, StatusCode::NOT_FOUND);
        // And the REST API's merchants follow the referral.
        let merchants = world
            .call("GET", "/api/v1/merchants", Some("partner1"), None, None)
            .await;
        assert!(merchants.text.contains(mid), "{}", merchants.text);
        let merchants = world
            .call("GET", "/api/v1/merchants", Some("partner2"), None, None)
            .await;
        assert!(!merchants.text.contains(mid), "{}", merchants.text);
        let terminals = world
            .call(
                "GET",
                "/onboarding/v1/terminals",
                Some("partner1"),
                None,
                None,
            )
            .await;
        assert_eq!(
            terminals.json,
            json!([]),
            "partners do not manage terminals"
        );
        // The partner hears of an incident on a terminal it sold (its webhook); the other
        // partner does not.
        for (id, owner) in [("sub-1", "partner1"), ("sub-2", "partner2")] {
            world
                .store
                .put_subscription(store::webhooks::Subscription {
                    id: id.into(),
                    owner_user_id: owner.into(),
                    url: "http://127.0.0.1:9/hook".into(),
                    secret_nonce: "nonce".into(),
                    created_at: 0,
                    disabled_at: None,
                })
                .await
                .unwrap();
        }
        let tid = submitted.json["terminal_ids"][0].as_str().unwrap();
        let stolen = world
            .call(
                "POST",
                &format!("/onboarding/v1/terminals/{tid}/status"),
                Some("maker"),
                None,
                Some(json!({"status": "stolen"})),
            )
            .await;
        assert_eq!(stolen.json["status"], "stolen", "{}", stolen.text);
        let told = world.store.deliveries_of("sub-1", 10).await.unwrap();
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].event_type, "terminal.incident");
        let event: Value = serde_json::from_str(&told[0].payload).unwrap();
        assert_eq!(
            (
                event["data"]["terminal_id"].as_str(),
                event["data"]["status"].as_str()
            ),
            (Some(tid), Some("stolen"))
        );
        assert!(
            world
                .store
                .deliveries_of("sub-2", 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn activation_codes_work_once_within_a_day_and_lost_terminals_stop() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world(backend).await;
        let approved = world
            .call("POST", "/onboarding/v1/applications", None, None, Some(json!({"form": cafe("91350100M000100Y43", "11010519491231002X"), "submit": true})))
            .await;
        let code = approved.json["provisioned"]["activation_codes"][0]["code"]
            .as_str()
            .unwrap()
            .to_owned();
        let tid = approved.json["provisioned"]["terminal_ids"][0]
            .as_str()
            .unwrap()
            .to_owned();
        let unknown = world
            .call(
                "POST",
                "/onboarding/v1/activate",
                None,
                None,
                Some(json!({"code": "AAAAA-AAAAA-AAAAA-AAAAA"})),
            )
            .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        // Typed in lower case without dashes, it still works.
        let typed = code.replace('-', "").to_lowercase();
        let package = world
            .call(
                "POST",
                "/onboarding/v1/activate",
                None,
                None,
                Some(json!({"code": typed})),
            )
            .await;
        assert_eq!(package.status, StatusCode::OK, "{name}: {}", package.text);
        assert_eq!(package.json["terminal_id"], tid.as_str());
        assert_eq!(package.json["merchant_name"], "Jing'an Tea House");
        assert_eq!(package.json["host"], "127.0.0.1:9999");
        // The master key arrives only wrapped: it unwraps under the code's transport key and
        // matches the check value the HSM computed.
        let block = package.json["master_key_block"].as_str().unwrap();
        let (_, key) =
            paycrypto::tr31::unwrap(&onboarding::terminals::transport_key(&code), block).unwrap();
        let tmk = paycrypto::TdesKey::new(key.expose()).unwrap();
        assert_eq!(
            paycrypto::to_hex(&paycrypto::kcv::tdes(&tmk)),
            package.json["master_key_check_value"].as_str().unwrap()
        );
        assert!(
            !package.text.contains(&paycrypto::to_hex(key.expose())),
            "no clear key in the answer"
        );
        let again = world
            .call(
                "POST",
                "/onboarding/v1/activate",
                None,
                None,
                Some(json!({"code": code})),
            )
            .await;
        assert_eq!(again.status, StatusCode::GONE);
        assert!(
            again.json["detail"]
                .as_str()
                .unwrap()
                .contains("used already")
        );
        assert_eq!(
            world.host.0.lock().unwrap().last().cloned(),
            Some((tid.clone(), "active".to_owned()))
        );
        // A forced key change: a new master key, the terminal provisioned again until it is
        // activated with the new code, which brings the new key.
        let rekeyed = world
            .call(
                "POST",
                &format!("/onboarding/v1/terminals/{tid}/rekey"),
                Some("maker"),
                None,
                None,
            )
            .await;
        assert_eq!(rekeyed.status, StatusCode::OK, "{name}: {}", rekeyed.text);
        assert!(!rekeyed.text.contains("master_key"));
        {
            let heard = world.host.0.lock().unwrap();
            let tail: Vec<_> = heard.iter().rev().take(2).cloned().collect();
            assert_eq!(
                tail,
                [
                    (tid.clone(), "inactive".to_owned()),
                    (format!("terminal/{tid}/tmk"), "key".to_owned())
                ]
            );
        }
        let new_code = rekeyed.json["code"].as_str().unwrap().to_owned();
        let renewed = world
            .call(
                "POST",
                "/onboarding/v1/activate",
                None,
                None,
                Some(json!({"code": new_code})),
            )
            .await;
        assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.text);
        assert_ne!(
            renewed.json["master_key_check_value"],
            package.json["master_key_check_value"]
        );
        let (_, new_key) = paycrypto::tr31::unwrap(
            &onboarding::terminals::transport_key(&new_code),
            renewed.json["master_key_block"].as_str().unwrap(),
        )
        .unwrap();
        assert_ne!(new_key.expose(), key.expose());
        // The operator sees it active, then reports it lost: the host hears at once.
        let details = world
            .call(
                "GET",
                &format!("/onboarding/v1/terminals/{tid}"),
                Some("maker"),
                None,
                None,
            )
            .await;
        assert_eq!(details.json["status"], "active", "{}", details.text);
        assert_eq!(details.json["serial"], format!("EP{tid}"));
        let lost = world
            .call(
                "POST",
                &format!("/onboarding/v1/terminals/{tid}/status"),
                Some("maker"),
                None,
                Some(json!({"status": "lost"})),
            )
            .await;
        assert_eq!(lost.json["status"], "lost", "{}", lost.text);
        assert_eq!(
            world.host.0.lock().unwrap().last().cloned(),
            Some((tid.clone(), "inactive".to_owned()))
        );
        // Lost cannot go straight back to active; it is provisioned again with a new code,
        // which expires after a day.
        let back = world
            .call(
                "POST",
                &format!("/onboarding/v1/terminals/{tid}/status"),
                Some("maker"),
                None,
                Some(json!({"status": "active"})),
            )
            .await;
        assert_eq!(back.status, StatusCode::CONFLICT);
        world
            .call(
                "POST",
                &format!("/onboarding/v1/terminals/{tid}/status"),
                Some("maker"),
                None,
                Some(json!({"status": "provisioned"})),
            )
            .await;
        let fresh = world
            .call(
                "POST",
                &format!("/onboarding/v1/terminals/{tid}/activation-code"),
                Some("maker"),
                None,
                None,
            )
            .await;
        assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text);
        assert!(!fresh.text.contains("master_key"));
        world
            .clock
            .advance(24 * 3600 * 1_000_000_000 + 1_000_000_000);
        let expired = world
            .call(
                "POST",
                "/onboarding/v1/activate",
                None,
                None,
                Some(json!({"code": fresh.json["code"]})),
            )
            .await;
        assert_eq!(expired.status, StatusCode::GONE);
        assert!(expired.json["detail"].as_str().unwrap().contains("expired"));
        // A cashier-less partner or another merchant cannot touch the terminal.
        let other = world
            .call(
                "POST",
                &format!("/onboarding/v1/terminals/{tid}/activation-code"),
                Some("partner1"),
                None,
                None,
            )
            .await;
        assert_eq!(other.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn operators_change_a_terminals_parameters_and_activation_and_host_get_the_new_version() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world(backend).await;
        let approved = world
            .call("POST", "/onboarding/v1/applications", None, None, Some(json!({"form": cafe("91350100M000100Y43", "11010519491231002X"), "submit": true})))
            .await;
        let code = approved.json["provisioned"]["activation_codes"][0]["code"]
            .as_str()
            .unwrap()
            .to_owned();
        let tid = approved.json["provisioned"]["terminal_ids"][0]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/onboarding/v1/terminals/{tid}/parameters");
        let first = world.call("GET", &path, Some("maker"), None, None).await;
        assert_eq!(first.status, StatusCode::OK, "{name}: {}", first.text);
        assert_eq!(first.json["version"], 1);
        assert_eq!(first.json["merchant_name"], "Jing'an Tea House");
        assert_eq!(first.json["host"], "127.0.0.1:9999");
        assert_eq!(
            first.json["payment_methods"],
            json!(["chip", "contactless", "swipe", "qr"])
        );

        let bad = world
            .call(
                "PUT",
                &path,
                Some("maker"),
                None,
                Some(json!({"host": "no port"})),
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
        assert!(
            bad.json["detail"]
                .as_str()
                .unwrap()
                .contains("host must be")
        );
        let other = world
            .call(
                "PUT",
                &path,
                Some("partner1"),
                None,
                Some(json!({"merchant_name": "Mine"})),
            )
            .await;
        assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.text);

        let renamed = world
            .call(
                "PUT",
                &path,
                Some("maker"),
                None,
                Some(json!({"merchant_name": "静安茶馆"})),
            )
            .await;
        assert_eq!(renamed.status, StatusCode::OK, "{name}: {}", renamed.text);
        assert_eq!(renamed.json["version"], 2);
        let limited = world
            .call(
                "PUT",
                &path,
                Some("checker"),
                None,
                Some(json!({"contactless_cvm_limit": "800.00", "payment_methods": ["chip", "qr"]})),
            )
            .await;
        assert_eq!(limited.status, StatusCode::OK, "{name}: {}", limited.text);
        assert_eq!(limited.json["version"], 3);
        assert_eq!(
            limited.json["merchant_name"], "静安茶馆",
            "an earlier change stays"
        );
        assert_eq!(
            world.host.1.lock().unwrap().last().cloned(),
            Some((tid.clone(), 3)),
            "the host hears the new version at once"
        );

        // Activated now, the terminal starts with the current set and its version.
        let package = world
            .call(
                "POST",
                "/onboarding/v1/activate",
                None,
                None,
                Some(json!({"code": code})),
            )
            .await;
        assert_eq!(package.status, StatusCode::OK, "{name}: {}", package.text);
        assert_eq!(package.json["merchant_name"], "静安茶馆");
        assert_eq!(package.json["contactless_cvm_limit"], "800.00");
        assert_eq!(package.json["payment_methods"], json!(["chip", "qr"]));
        assert_eq!(package.json["parameters_version"], 3);
    }
}

/// A public application from client address `address`, as `easypos up` sees it.
async fn apply_from(world: &World, address: &str, body: Value) -> Reply {
    let mut request = Request::builder()
        .method("POST")
        .uri("/onboarding/v1/applications")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let address: std::net::SocketAddr = format!("{address}:40000").parse().unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(address));
    world.send(request).await
}

#[tokio::test]
async fn public_applications_are_limited_per_address_and_per_mobile_number() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world_limited(backend, onboarding::limits::ApplicationLimits::new(2, 2)).await;
        let draft = json!({"form": {"business_name": "Tea"}, "submit": false});
        for _ in 0..2 {
            let created = apply_from(&world, "10.0.0.1", draft.clone()).await;
            assert_eq!(
                created.status,
                StatusCode::CREATED,
                "{name}: {}",
                created.text
            );
        }
        let refused = apply_from(&world, "10.0.0.1", draft.clone()).await;
        assert_eq!(
            refused.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{name}: {}",
            refused.text
        );
        assert!(
            refused.json["detail"]
                .as_str()
                .unwrap()
                .contains("too many applications were started from this network address; try again in 60 minutes"),
            "{}",
            refused.text
        );
        let other = apply_from(&world, "10.0.0.2", draft.clone()).await;
        assert_eq!(
            other.status,
            StatusCode::CREATED,
            "another address has its own limit"
        );

        // Submissions with one mobile number, from any address.
        let submit =
            json!({"form": cafe("91350100M000100Y43", "11010519491231002X"), "submit": true});
        for address in ["10.0.1.1", "10.0.1.2"] {
            let submitted = apply_from(&world, address, submit.clone()).await;
            assert_eq!(
                submitted.status,
                StatusCode::CREATED,
                "{name}: {}",
                submitted.text
            );
        }
        let refused = apply_from(&world, "10.0.1.3", submit.clone()).await;
        assert_eq!(
            refused.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{name}: {}",
            refused.text
        );
        assert!(
            refused.json["detail"]
                .as_str()
                .unwrap()
                .contains("this mobile number today"),
            "{}",
            refused.text
        );
        // In-process callers (no client address) are not limited by address.
        let inside = world
            .call(
                "POST",
                "/onboarding/v1/applications",
                None,
                None,
                Some(draft.clone()),
            )
            .await;
        assert_eq!(inside.status, StatusCode::CREATED, "{}", inside.text);
    }
}

/// The stored row of application `id`: its ID fingerprint column and its form.
async fn stored_row(world: &World, id: &str) -> (Option<String>, String) {
    use store::onboarding::{Cell, Kind};
    let rows = world
        .store
        .onboarding_query(
            "SELECT id_fingerprint, form FROM applications WHERE id = $1",
            vec![Cell::text(id)],
            &[Kind::Text, Kind::Text],
        )
        .await
        .unwrap();
    let row = rows.first().unwrap();
    (
        row[0].as_text().map(str::to_owned),
        row[1].as_text().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn resident_id_numbers_are_kept_only_masked_and_fingerprinted() {
    let id_number = "11010519491231002X";
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world(backend).await;
        let draft = world
            .call(
                "POST",
                "/onboarding/v1/applications",
                None,
                None,
                Some(json!({"form": cafe("91350100M000100Y43", id_number), "submit": false})),
            )
            .await;
        assert_eq!(draft.status, StatusCode::CREATED, "{name}: {}", draft.text);
        let tracking = draft.json["id"].as_str().unwrap().to_owned();
        let token = draft.json["resume_token"].as_str().unwrap().to_owned();
        let (fingerprint, form) = stored_row(&world, &tracking).await;
        assert_eq!(fingerprint.as_deref().map(str::len), Some(64), "{name}");
        assert!(
            !form.contains("19491231") && !form.contains(id_number),
            "{form}"
        );
        let shown = world
            .call(
                "GET",
                &format!("/onboarding/v1/applications/{tracking}"),
                None,
                Some(&token),
                None,
            )
            .await;
        assert_eq!(
            shown.json["form"]["id_number"], "110105********002X",
            "{}",
            shown.text
        );

        // Submitting the form as shown (masked) keeps the number given before.
        let submitted = world
            .call(
                "PUT",
                &format!("/onboarding/v1/applications/{tracking}"),
                None,
                Some(&token),
                Some(json!({"form": shown.json["form"].clone(), "submit": true})),
            )
            .await;
        assert_eq!(
            submitted.status,
            StatusCode::OK,
            "{name}: {}",
            submitted.text
        );
        assert_eq!(
            stored_row(&world, &tracking).await.0,
            fingerprint,
            "the same fingerprint"
        );

        // Another business with the same legal representative is found by the fingerprint.
        let second = world
            .call(
                "POST",
                "/onboarding/v1/applications",
                None,
                None,
                Some(json!({"form": cafe("914403001922038216", id_number), "submit": true})),
            )
            .await;
        assert_eq!(
            second.status,
            StatusCode::CREATED,
            "{name}: {}",
            second.text
        );
        let reviewed = world
            .call(
                "GET",
                &format!(
                    "/onboarding/v1/review/applications/{}",
                    second.json["id"].as_str().unwrap()
                ),
                Some("maker"),
                None,
                None,
            )
            .await;
        assert!(
            reviewed.text.contains("duplicate-id-number"),
            "{name}: {}",
            reviewed.text
        );
        assert!(
            !reviewed.text.contains(id_number),
            "operators see it masked"
        );

        // A row written before migration 26 (the number in clear) is protected at start.
        use store::onboarding::{Cell, Step};
        world
            .store
            .onboarding_execute(vec![Step::new(
                "UPDATE applications SET id_fingerprint = $2, form = $3 WHERE id = $1",
                vec![
                    Cell::text(&tracking),
                    Cell::text(id_number),
                    Cell::text(form.replace("110105********002X", id_number)),
                ],
            )])
            .await
            .unwrap();
        assert_eq!(
            world.service.protect_id_numbers().await.unwrap(),
            1,
            "{name}"
        );
        let (protected, form) = stored_row(&world, &tracking).await;
        assert_eq!(protected, fingerprint);
        assert!(!form.contains(id_number), "{form}");
        assert_eq!(world.service.protect_id_numbers().await.unwrap(), 0, "once");
    }
}

#[tokio::test]
async fn a_forced_key_change_to_aes_dukpt_brings_an_initial_key_under_the_transport_key() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world(backend).await;
        let approved = world
            .call("POST", "/onboarding/v1/applications", None, None, Some(json!({"form": cafe("91350100M000100Y43", "11010519491231002X"), "submit": true})))
            .await;
        let tid = approved.json["provisioned"]["terminal_ids"][0]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/onboarding/v1/terminals/{tid}/rekey");
        let bad = world
            .call(
                "POST",
                &path,
                Some("maker"),
                None,
                Some(json!({"key_scheme": "dukpt-tdes"})),
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{name}: {}", bad.text);
        let rekeyed = world
            .call(
                "POST",
                &path,
                Some("maker"),
                None,
                Some(json!({"key_scheme": "dukpt-aes"})),
            )
            .await;
        assert_eq!(rekeyed.status, StatusCode::OK, "{name}: {}", rekeyed.text);
        let code = rekeyed.json["code"].as_str().unwrap().to_owned();
        let package = world
            .call(
                "POST",
                "/onboarding/v1/activate",
                None,
                None,
                Some(json!({"code": code})),
            )
            .await;
        assert_eq!(package.status, StatusCode::OK, "{name}: {}", package.text);
        assert_eq!(package.json["key_scheme"], "dukpt-aes");
        let ksn = package.json["initial_ksn"].as_str().unwrap();
        assert!(
            ksn.starts_with(onboarding::terminals::ACQUIRER_BDK_ID) && ksn.ends_with("00000000"),
            "{ksn}"
        );
        let (header, key) = paycrypto::tr31::unwrap(
            &onboarding::terminals::transport_key(&code),
            package.json["master_key_block"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(header.usage, paycrypto::tr31::KeyUsage::DUKPT_INITIAL_KEY);
        let initial = paycrypto::AesKey::new(key.expose()).unwrap();
        assert_eq!(
            paycrypto::to_hex(&paycrypto::kcv::aes_cmac_kcv(&initial)),
            package.json["master_key_check_value"].as_str().unwrap()
        );
        assert!(
            !package.text.contains(&paycrypto::to_hex(key.expose())),
            "no clear key"
        );
        let session = world.store.terminal_session(&tid).await.unwrap().unwrap();
        assert_eq!(session.key_scheme, "dukpt-aes");
        assert_eq!(session.initial_ksn.as_deref(), Some(ksn));
        assert_eq!(
            session.tmk_key,
            onboarding::terminals::acquirer_bdk_name(demo::ACQUIRER)
        );
        // Back to master/session: a new master key, the session's scheme follows.
        let back = world
            .call(
                "POST",
                &path,
                Some("maker"),
                None,
                Some(json!({"key_scheme": "master-session"})),
            )
            .await;
        assert_eq!(back.status, StatusCode::OK, "{name}: {}", back.text);
        let session = world.store.terminal_session(&tid).await.unwrap().unwrap();
        assert_eq!(session.key_scheme, "master-session");
        assert_eq!(session.initial_ksn, None);
    }
}

#[tokio::test]
async fn answers_carry_the_apis_security_headers() {
    let world = world(store::testing::sqlite()).await;
    for (uri, status) in [
        ("/onboarding/v1/categories", StatusCode::OK),
        (
            "/onboarding/v1/review/applications",
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let response = world
            .router
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{uri}");
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["x-frame-options"], "DENY");
    }
}

/// Two hosts on one database: what onboarding changes through the first (an activation, a
/// lost terminal, a forced key change) reaches the second when it follows the recorded
/// changes, each change once; a host that starts later does not replay old changes.
#[tokio::test]
async fn another_host_follows_activations_status_and_key_changes() {
    for backend in store::testing::backends().await {
        let name = backend.name;
        let world = world(backend).await;
        let second_host = Arc::new(RecordingHost::default());
        let second = Onboarding {
            host: second_host.clone(),
            ..world.service.clone()
        };
        let mut cursor = onboarding::follow::ChangeCursor::default();
        assert_eq!(second.follow_changes(&mut cursor).await.unwrap(), 0);

        let approved = world
            .call("POST", "/onboarding/v1/applications", None, None, Some(json!({"form": cafe("91350100M000100Y43", "11010519491231002X"), "submit": true})))
            .await;
        let code = approved.json["provisioned"]["activation_codes"][0]["code"]
            .as_str()
            .unwrap()
            .to_owned();
        let tid = approved.json["provisioned"]["terminal_ids"][0]
            .as_str()
            .unwrap()
            .to_owned();
        let activated = world
            .call(
                "POST",
                "/onboarding/v1/activate",
                None,
                None,
                Some(json!({"code": code})),
            )
            .await;
        assert_eq!(
            activated.status,
            StatusCode::OK,
            "{name}: {}",
            activated.text
        );
        assert!(
            second_host.0.lock().unwrap().is_empty(),
            "not before following"
        );

        assert_eq!(
            second.follow_changes(&mut cursor).await.unwrap(),
            1,
            "{name}"
        );
        assert_eq!(
            second_host.0.lock().unwrap().clone(),
            [
                (tid.clone(), "active".to_owned()),
                (format!("terminal/{tid}/tmk"), "key".to_owned())
            ],
            "{name}: the record read again and the cached master key forgotten"
        );
        assert_eq!(
            second_host
                .1
                .lock()
                .unwrap()
                .last()
                .map(|(id, _)| id.clone()),
            Some(tid.clone()),
            "{name}: the parameter set too"
        );
        assert_eq!(second.follow_changes(&mut cursor).await.unwrap(), 0, "once");

        let lost = world
            .call(
                "POST",
                &format!("/onboarding/v1/terminals/{tid}/status"),
                Some("maker"),
                None,
                Some(json!({"status": "lost"})),
            )
            .await;
        assert_eq!(lost.json["status"], "lost", "{}", lost.text);
        world.clock.advance(1_000_000_000);
        assert_eq!(
            second.follow_changes(&mut cursor).await.unwrap(),
            1,
            "{name}"
        );
        assert!(
            second_host
                .0
                .lock()
                .unwrap()
                .contains(&(tid.clone(), "inactive".to_owned())),
            "{name}: the lost terminal is inactive on the second host"
        );

        // A host starting a minute later has read every terminal afresh: old changes are not
        // replayed, new ones are.
        world.clock.advance(60 * 1_000_000_000);
        let mut late = onboarding::follow::ChangeCursor::default();
        assert_eq!(second.follow_changes(&mut late).await.unwrap(), 0, "{name}");
        world
            .call(
                "POST",
                &format!("/onboarding/v1/terminals/{tid}/status"),
                Some("maker"),
                None,
                Some(json!({"status": "provisioned"})),
            )
            .await;
        assert_eq!(second.follow_changes(&mut late).await.unwrap(), 1, "{name}");
    }
}
