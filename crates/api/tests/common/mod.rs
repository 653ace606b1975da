//! A demo world with transactions at both merchants and an API key for every demo user.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    dead_code,
    missing_debug_implementations
)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use store::Store;
use store::journal::JournalEntry;
use store::testing::TestBackend;
use tower::ServiceExt;

pub struct World {
    pub store: Arc<Store>,
    /// The state behind `router` (for the background jobs' passes).
    pub state: api::ApiState,
    pub router: Router,
    /// API key by demo user name.
    pub keys: BTreeMap<&'static str, String>,
    /// Journal id by planted transaction name (`t1` …).
    pub transactions: BTreeMap<&'static str, i64>,
    /// A webhook of the Shanghai merchant (its admin's) and one of its deliveries.
    pub shanghai_webhook: String,
    pub shanghai_delivery: i64,
    /// A case the risk rules opened for the Shanghai merchant's terminal 10000001 and t1's card.
    pub shanghai_case: i64,
    /// The freezes the API changes (the host's, in `easypos up`).
    pub freezes: Arc<risk::Freezes>,
    /// The acquirer's receipt keys (the host's, in `easypos up`).
    pub receipts: Arc<aftersale::ReceiptKeys>,
    /// Planted on t1: a refund of 1 000 pending approval (asked by shanghai.cashier), and two
    /// refund requests of cardholder1 (200 and 100).
    pub pending_refund: String,
    pub refund_request: String,
    pub other_refund_request: String,
    /// What the refund poster was asked to post.
    pub poster: Arc<FakePoster>,
    /// Planted on t4 (Beijing, cardholder1's card): a dispute just opened.
    pub dispute: String,
    /// An incident the Shanghai admin opened about t1 and the case, with a PDF attached to its
    /// first message; incident attachments are kept under `documents`.
    pub shanghai_incident: i64,
    pub documents: store::testing::tempdir::TempDir,
    _backend: TestBackend,
}

pub fn masked(card_id: &str) -> String {
    demo::cards()
        .into_iter()
        .find(|card| card.card.id == card_id)
        .unwrap()
        .card
        .masked_pan()
}

/// The planted transactions: (name, merchant, terminal, card id, response, amount).
pub const PLANTED: [(&str, &str, &str, &str, &str, i64); 4] = [
    (
        "t1",
        demo::SHANGHAI_MERCHANT,
        "10000001",
        "card-CH001-D",
        "00",
        1_250,
    ),
    (
        "t2",
        demo::SHANGHAI_MERCHANT,
        "10000002",
        "card-CH003-C",
        "51",
        99_900,
    ),
    (
        "t3",
        demo::BEIJING_MERCHANT,
        "20000001",
        "card-CH002-C",
        "00",
        4_800,
    ),
    (
        "t4",
        demo::BEIJING_MERCHANT,
        "20000001",
        "card-CH001-D",
        "00",
        3_000,
    ),
];

pub fn rrn(name: &str) -> String {
    format!("RRN00000000{}", &name[1..])
}

pub async fn world_on(backend: TestBackend) -> World {
    let store = Arc::new(Store::open(&backend.backend).await.unwrap());
    demo::seed(&store, &hsm::SoftHsm::new(&[0x42; 32]).unwrap())
        .await
        .unwrap();
    let mut entries = vec![JournalEntry {
        received_at: 1_764_000_000_000_000,
        terminal_id: "10000001".into(),
        merchant_id: demo::SHANGHAI_MERCHANT.into(),
        mti: "0800".into(),
        kind: "SignOn".into(),
        response: Some("00".into()),
        ..JournalEntry::default()
    }];
    for (index, (name, merchant, terminal, card, response, amount)) in PLANTED.iter().enumerate() {
        entries.push(JournalEntry {
            received_at: 1_764_000_000_000_000 + (index as i64 + 1) * 60_000_000,
            terminal_id: (*terminal).into(),
            merchant_id: (*merchant).into(),
            mti: "0200".into(),
            kind: "Sale".into(),
            batch: Some(1),
            stan: Some(index as i64 + 1),
            amount_minor: Some(*amount),
            currency: Some(156),
            card: Some(masked(card)),
            response: Some((*response).into()),
            rrn: Some(rrn(name)),
            auth_code: (*response == "00").then(|| "123456".into()),
            card_id: Some((*card).into()),
            operator: Some("003".into()),
            entry_mode: Some("051".into()),
            card_verification: Some(if *response == "00" {
                "chip: cryptogram verified; PIN verified".into()
            } else {
                "chip: not all checks made (declined: InsufficientFunds)".into()
            }),
            ..JournalEntry::default()
        });
    }
    store.journal(entries).await.unwrap();
    let all = store
        .transactions(&store::accounts::TransactionFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let transactions: BTreeMap<&'static str, i64> = PLANTED
        .iter()
        .map(|(name, ..)| {
            let id = all
                .iter()
                .find(|record| record.rrn.as_deref() == Some(&rrn(name)))
                .unwrap()
                .id;
            (*name, id)
        })
        .collect();
    let mut keys = BTreeMap::new();
    for (username, ..) in demo::demo_users() {
        let user = store.user_by_username(username).await.unwrap().unwrap();
        let (issued, digest) = store::accounts::new_api_key(&user.id, "tests", 1_764_000_000);
        store.put_api_key(issued.key, digest).await.unwrap();
        keys.insert(username, issued.secret);
    }
    let hsm: Arc<dyn hsm::Hsm> = Arc::new(hsm::SoftHsm::new(&[0x42; 32]).unwrap());
    let webhook_keys = api::webhooks::WebhookKeys::ensure(&store, hsm.clone())
        .await
        .unwrap();
    let receipts = Arc::new(
        aftersale::ReceiptKeys::load(store.clone(), hsm.clone(), 1_764_000_000)
            .await
            .unwrap(),
    );
    // The rules the host started with, stored as version 1 (as easypos up does).
    store
        .save_risk_rules(
            0,
            "[[rule]]\nname = \"card-velocity\"\nkind = \"velocity\"\nscope = \"card\"\nwindow_secs = 600\nmax_count = 10\naction = \"decline\"\nresponse_code = \"65\"\n".into(),
            "system".into(),
            1_764_000_000,
            "the rules easypos started with (the demo rules)".into(),
        )
        .await
        .unwrap();
    let freezes = Arc::new(risk::Freezes::new());
    let state = api::ApiState::new(store.clone())
        .with_webhooks(webhook_keys)
        .with_freezes(freezes.clone())
        .with_receipts(Some(receipts.clone()))
        .with_hsm(hsm.clone())
        .with_anchors(Arc::new(api::audit_anchors::AuditAnchorer::new(
            store.clone(),
            hsm,
        )));
    let shanghai_webhook = "wh_shanghai00".to_owned();
    store
        .put_subscription(store::webhooks::Subscription {
            id: shanghai_webhook.clone(),
            owner_user_id: "demo-shanghai.admin".into(),
            url: "http://127.0.0.1:9/hook".into(),
            secret_nonce: "nonce".into(),
            created_at: 1_764_000_000,
            disabled_at: None,
        })
        .await
        .unwrap();
    store
        .enqueue_deliveries(vec![store::webhooks::NewDelivery {
            subscription_id: shanghai_webhook.clone(),
            event_id: "evt_txn_t1".into(),
            event_type: "transaction.created".into(),
            payload: format!("{{\"rrn\":\"{}\"}}", rrn("t1")),
            created_at: 1_764_000_000,
            retry_until: 1_764_000_000,
        }])
        .await
        .unwrap();
    let shanghai_delivery = store.deliveries_of(&shanghai_webhook, 1).await.unwrap()[0].id;
    let shanghai_case = store
        .open_case(store::cases::NewCase {
            at: 1_764_000_000,
            merchant_id: demo::SHANGHAI_MERCHANT.into(),
            terminal_id: "10000001".into(),
            card_id: "card-CH001-D".into(),
            rules: "terminal-velocity(review,20): 31 authorizations on the terminal in 600 s (at most 30)".into(),
            severity: "review".into(),
            rule_names: vec!["terminal-velocity".into()],
        })
        .await
        .unwrap();
    let poster = Arc::new(FakePoster::default());
    let state = state.with_refunds(
        aftersale::refunds::Refunds::new(store.clone(), poster.clone())
            .with_approval_above(REFUND_APPROVAL_ABOVE_MINOR),
    );
    let t1 = transactions["t1"];
    let plant = async |id: &str, seq: i64, status: &str, by: &str, amount_minor: i64| {
        let refund = store::refunds::Refund {
            id: id.into(),
            transaction_id: t1,
            merchant_id: demo::SHANGHAI_MERCHANT.into(),
            seq,
            request_id: String::new(),
            amount_minor,
            currency: 156,
            status: status.into(),
            reason: "planted".into(),
            requested_by: by.into(),
            requested_at: 1_764_100_000,
            decided_by: String::new(),
            decided_at: None,
            response: String::new(),
        };
        store.insert_refund(refund, 1_250, 0, 1).await.unwrap();
        id.to_owned()
    };
    let pending_refund = plant(
        "rf_00000000000000a1",
        1,
        "pending_approval",
        "shanghai.cashier",
        1_000,
    )
    .await;
    let refund_request = plant("rf_00000000000000b1", 0, "requested", "cardholder1", 200).await;
    let other_refund_request =
        plant("rf_00000000000000b2", 0, "requested", "cardholder1", 100).await;
    let state = state.with_disputes(aftersale::disputes::Disputes::new(
        store.clone(),
        poster.clone(),
    ));
    let dispute = store
        .put_dispute(store::disputes::Dispute {
            id: "dp_00000000000000d1".into(),
            transaction_id: transactions["t4"],
            merchant_id: demo::BEIJING_MERCHANT.into(),
            card_id: "card-CH001-D".into(),
            amount_minor: 3_000,
            currency: 156,
            reason: "not_received".into(),
            description: "planted".into(),
            status: "opened".into(),
            opened_by: "cardholder1".into(),
            opened_at: 1_764_100_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let documents = store::testing::tempdir::TempDir::new();
    let state = state.with_documents(documents.path().to_path_buf());
    let planted_pdf = b"%PDF-1.4 planted";
    let file =
        api::files::write_atomic(&documents.path().join("planted"), "report.pdf", planted_pdf)
            .await
            .unwrap();
    let shanghai_incident = store
        .open_incident(store::incidents::NewIncident {
            merchant_id: demo::SHANGHAI_MERCHANT.into(),
            title: "planted".into(),
            severity: "high".into(),
            opened_by: "shanghai.admin".into(),
            opened_at: 1_764_000_000,
            response_due_at: 1_764_007_200,
            partners: Vec::new(),
            transactions: vec![transactions["t1"].to_string()],
            cases: vec![shanghai_case],
            description: store::incidents::NewMessage {
                at: 1_764_000_000,
                author: "shanghai.admin".into(),
                text: "planted".into(),
                attachment: Some(store::incidents::Attachment {
                    name: "report.pdf".into(),
                    content_type: "application/pdf".into(),
                    bytes: planted_pdf.len() as i64,
                    sha256: "planted".into(),
                    file: file.to_string_lossy().into_owned(),
                }),
            },
        })
        .await
        .unwrap();
    let router = api::router(state.clone());
    World {
        state,
        shanghai_incident,
        documents,
        dispute,
        pending_refund,
        refund_request,
        other_refund_request,
        poster,
        shanghai_case,
        shanghai_webhook,
        shanghai_delivery,
        store,
        router,
        freezes,
        receipts,
        keys,
        transactions,
        _backend: backend,
    }
}

/// Refunds above this wait for approval in the test world.
pub const REFUND_APPROVAL_ABOVE_MINOR: i64 = 1_000;

/// A refund path that posts every part (the acquirer's own is tested in crates/acquirer), and
/// refuses them 58 while `frozen`.
#[derive(Debug, Default)]
pub struct FakePoster {
    pub posted: std::sync::Mutex<Vec<aftersale::refunds::RefundPart>>,
    pub frozen: std::sync::atomic::AtomicBool,
    /// The chargeback steps asked for, with their amounts.
    pub chargebacks: std::sync::Mutex<Vec<(aftersale::refunds::ChargebackStep, i64)>>,
}

impl aftersale::refunds::RefundPoster for FakePoster {
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
        part: &'a aftersale::refunds::RefundPart,
    ) -> aftersale::refunds::BoxFuture<
        'a,
        Result<aftersale::refunds::Posting, aftersale::refunds::PostError>,
    > {
        Box::pin(async move {
            if self.frozen.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(aftersale::refunds::Posting::Refused {
                    response: "58".into(),
                    reason: "frozen refunds".into(),
                });
            }
            self.posted.lock().unwrap().push(part.clone());
            Ok(aftersale::refunds::Posting::Refunded)
        })
    }

    fn chargeback<'a>(
        &'a self,
        _sale: &'a aftersale::refunds::SaleKey,
        amount: money::Amount,
        step: aftersale::refunds::ChargebackStep,
    ) -> aftersale::refunds::BoxFuture<
        'a,
        Result<aftersale::refunds::Posting, aftersale::refunds::PostError>,
    > {
        Box::pin(async move {
            self.chargebacks
                .lock()
                .unwrap()
                .push((step, amount.minor()));
            Ok(aftersale::refunds::Posting::Refunded)
        })
    }
}

pub async fn world() -> World {
    world_on(store::testing::sqlite()).await
}

pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text).unwrap_or_else(|error| panic!("{error}: {}", self.text))
    }
}

pub async fn answer(response: Response<Body>) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = headers
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        content_type,
        headers,
        // Lossy: a PDF carries binary bytes (its header comment); JSON and CSV are UTF-8.
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

impl World {
    pub async fn send(&self, request: Request<Body>) -> Answer {
        answer(self.router.clone().oneshot(request).await.unwrap()).await
    }

    /// A request whose body is `bytes` as they are (an upload).
    pub async fn call_bytes(&self, user: &str, method: &str, path: &str, bytes: Vec<u8>) -> Answer {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.keys[user]))
            .header("content-type", "application/octet-stream")
            .body(Body::from(bytes))
            .unwrap();
        self.send(request).await
    }

    pub async fn get(&self, user: &str, path: &str) -> Answer {
        let request = Request::get(path)
            .header("authorization", format!("Bearer {}", self.keys[user]))
            .body(Body::empty())
            .unwrap();
        self.send(request).await
    }

    pub async fn call(
        &self,
        user: &str,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: &str,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.keys[user]))
            .header("content-type", "application/json");
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        self.send(request.body(Body::from(body.to_owned())).unwrap())
            .await
    }
}
