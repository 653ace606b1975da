//! The easypos REST API: JSON under `/api/v1` for merchants, cardholders, operators, partners
//! and integrators, documented by the OpenAPI document at `/api/openapi.json` and in
//! `docs/api.md`.
//!
//! * Callers authenticate with an API key (`Authorization: Bearer ek_…`) or HTTP Basic.
//! * Every route checks role and tenant ([`access`]).
//! * Every POST carries an `Idempotency-Key` ([`idempotency`]).
//! * Every error is an RFC 9457 problem ([`problem`]).
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<store::Store>) -> std::io::Result<()> {
//! let state = api::ApiState::new(store);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, api::router(state)).await
//! # }
//! ```

// The OpenAPI document is one `serde_json::json!` literal, deeper than the default limit.
#![recursion_limit = "256"]

pub mod access;
pub mod alerts;
pub mod audit;
pub mod audit_anchors;
pub mod auth;
pub mod cases;
pub mod certificates;
pub mod disputes;
pub mod emergency;
pub mod files;
pub mod fraud;
pub mod idempotency;
pub mod incidents;
pub mod insider;
pub mod openapi;
pub mod problem;
pub mod procedures;
pub mod receipts;
pub mod refunds;
pub mod risk_rules;
pub mod routes;
pub mod statements;
pub mod supervisors;
pub mod time;
pub mod timeline;
pub mod views;
pub mod webhooks;

use axum::Router;
use axum::routing::{delete, get};
use std::sync::Arc;
use store::{Clock, Store, SystemClock};

/// What every handler shares: the store, the clock (injected, so tests can move time) and
/// the webhook key (`None`: webhooks are off, their routes answer 503).
#[derive(Clone, Debug)]
pub struct ApiState {
    pub store: Arc<Store>,
    pub clock: Arc<dyn Clock>,
    pub webhooks: Option<webhooks::WebhookKeys>,
    /// The host's in-memory freezes, changed together with the store's.
    pub freezes: Arc<risk::Freezes>,
    /// The acquirer's receipt keys (`None`: receipt routes answer 503).
    pub receipts: Option<Arc<aftersale::ReceiptKeys>>,
    /// Refunds through the acquirer host's refund path (`None`: refund changes answer 503).
    pub refunds: Option<Arc<aftersale::refunds::Refunds>>,
    /// Disputes and chargebacks through the same host (`None`: dispute changes answer 503).
    pub disputes: Option<Arc<aftersale::disputes::Disputes>>,
    /// Signs audit anchors in the HSM (`None`: `POST /api/v1/audit/anchors` answers 503).
    pub anchors: Option<Arc<audit_anchors::AuditAnchorer>>,
    /// How cardholder alerts leave: the SMTP relay and the SMS adapter.
    pub alert_senders: alerts::AlertSenders,
    /// Where uploaded files are kept, under the data directory: a dispute's answer files and
    /// incident attachments (`None`: answers carry text only, attachments answer 503).
    pub documents_dir: Option<std::path::PathBuf>,
    /// Response-time targets of incidents per severity.
    pub incident_targets: incidents::ResponseTargets,
    /// The HSM, for enrolling supervisors' terminal passwords (`None`: that route answers 503).
    pub hsm: Option<supervisors::EnrolmentHsm>,
}

impl ApiState {
    pub fn new(store: Arc<Store>) -> Self {
        ApiState {
            store,
            clock: Arc::new(SystemClock),
            webhooks: None,
            freezes: Arc::new(risk::Freezes::new()),
            receipts: None,
            refunds: None,
            disputes: None,
            anchors: None,
            alert_senders: alerts::AlertSenders::default(),
            documents_dir: None,
            incident_targets: incidents::ResponseTargets::default(),
            hsm: None,
        }
    }

    /// Enrols supervisors' terminal passwords with `hsm`.
    pub fn with_hsm(mut self, hsm: Arc<dyn hsm::Hsm>) -> Self {
        self.hsm = Some(supervisors::EnrolmentHsm(hsm));
        self
    }

    /// Keeps incident attachments under `dir` (the data directory's `documents`).
    pub fn with_documents(mut self, dir: std::path::PathBuf) -> Self {
        self.documents_dir = Some(dir);
        self
    }

    /// Tracks incidents against `targets`.
    pub fn with_incident_targets(mut self, targets: incidents::ResponseTargets) -> Self {
        self.incident_targets = targets;
        self
    }

    /// Disputes whose chargebacks `disputes` posts (made over this state's store).
    pub fn with_disputes(mut self, disputes: aftersale::disputes::Disputes) -> Self {
        self.disputes = Some(Arc::new(disputes));
        self
    }

    /// Refunds posted by `refunds` (made over this state's store).
    pub fn with_refunds(mut self, refunds: aftersale::refunds::Refunds) -> Self {
        self.refunds = Some(Arc::new(refunds));
        self
    }

    /// Verifies receipts with, and rotates, the host's receipt keys.
    pub fn with_receipts(mut self, keys: Option<Arc<aftersale::ReceiptKeys>>) -> Self {
        self.receipts = keys;
        self
    }

    /// Anchors the audit log with the platform's key in the HSM.
    pub fn with_anchors(mut self, anchorer: Arc<audit_anchors::AuditAnchorer>) -> Self {
        self.anchors = Some(anchorer);
        self
    }

    /// Shares the host's freezes, so that a freeze set here stops the next authorization.
    pub fn with_freezes(mut self, freezes: Arc<risk::Freezes>) -> Self {
        self.freezes = freezes;
        self
    }

    /// Keeps a dispute's answer files under `dir` (the data directory's `documents`).
    pub fn with_documents_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.documents_dir = Some(dir);
        self
    }

    /// Sends cardholder alerts through `senders`.
    pub fn with_alert_senders(mut self, senders: alerts::AlertSenders) -> Self {
        self.alert_senders = senders;
        self
    }

    /// Turns webhooks on, signing with secrets derived from `keys`.
    pub fn with_webhooks(mut self, keys: webhooks::WebhookKeys) -> Self {
        self.webhooks = Some(keys);
        self
    }

    /// Unix seconds now.
    pub fn now_seconds(&self) -> i64 {
        i64::try_from(self.clock.now() / 1_000_000_000).unwrap_or(i64::MAX)
    }
}

/// Every route of the API (method, path as the OpenAPI document writes it). The router is
/// built from the same calls, and a test checks both against each other and the document.
pub const ROUTES: [(&str, &str); 77] = [
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/transactions"),
    ("GET", "/api/v1/transactions/{id}"),
    ("GET", "/api/v1/transactions/{id}/timeline"),
    ("GET", "/api/v1/statements/{month}"),
    ("POST", "/api/v1/transactions/{id}/fraud-report"),
    ("GET", "/api/v1/fraud-reports/{id}"),
    ("GET", "/api/v1/fraud-reports/{id}/pack"),
    ("GET", "/api/v1/merchants"),
    ("GET", "/api/v1/merchants/{id}"),
    ("GET", "/api/v1/terminals"),
    ("GET", "/api/v1/terminals/{id}"),
    ("GET", "/api/v1/cards"),
    ("GET", "/api/v1/cards/{id}"),
    ("GET", "/api/v1/cards/{id}/alerts"),
    ("PUT", "/api/v1/cards/{id}/alerts"),
    ("PUT", "/api/v1/cards/{id}/freeze"),
    ("DELETE", "/api/v1/cards/{id}/freeze"),
    ("GET", "/api/v1/api-keys"),
    ("POST", "/api/v1/api-keys"),
    ("DELETE", "/api/v1/api-keys/{id}"),
    ("GET", "/api/v1/webhooks"),
    ("POST", "/api/v1/webhooks"),
    ("DELETE", "/api/v1/webhooks/{id}"),
    ("GET", "/api/v1/webhooks/{id}/deliveries"),
    (
        "POST",
        "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
    ),
    ("GET", "/api/v1/freezes"),
    ("PUT", "/api/v1/freezes/{scope}/{target}"),
    ("DELETE", "/api/v1/freezes/{scope}/{target}"),
    ("POST", "/api/v1/receipts/verify"),
    ("GET", "/api/v1/receipts/keys"),
    ("POST", "/api/v1/receipts/keys/rotate"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/audit/verify"),
    ("GET", "/api/v1/cases"),
    ("GET", "/api/v1/cases/{id}"),
    ("POST", "/api/v1/cases/{id}/assign"),
    ("POST", "/api/v1/cases/{id}/comments"),
    ("POST", "/api/v1/cases/{id}/resolve"),
    ("GET", "/api/v1/transactions/{id}/refunds"),
    ("POST", "/api/v1/transactions/{id}/refunds"),
    ("GET", "/api/v1/refunds"),
    ("GET", "/api/v1/refunds/{id}"),
    ("POST", "/api/v1/refunds/{id}/approve"),
    ("POST", "/api/v1/refunds/{id}/accept"),
    ("POST", "/api/v1/refunds/{id}/decline"),
    ("POST", "/api/v1/transactions/{id}/dispute"),
    ("GET", "/api/v1/disputes/{id}"),
    ("POST", "/api/v1/disputes/{id}/review"),
    ("POST", "/api/v1/disputes/{id}/answer"),
    ("PUT", "/api/v1/disputes/{id}/answer"),
    ("GET", "/api/v1/disputes/{id}/documents/{name}"),
    ("POST", "/api/v1/disputes/{id}/decide"),
    ("GET", "/api/v1/transactions/{id}/certificate"),
    ("GET", "/api/v1/audit/anchors"),
    ("POST", "/api/v1/audit/anchors"),
    ("GET", "/api/v1/risk/rules"),
    ("GET", "/api/v1/risk/rules/versions"),
    ("POST", "/api/v1/risk/rules/versions"),
    ("POST", "/api/v1/risk/rules/versions/{version}/rollback"),
    ("GET", "/api/v1/incidents"),
    ("POST", "/api/v1/incidents"),
    ("GET", "/api/v1/incidents/{id}"),
    ("POST", "/api/v1/incidents/{id}/messages"),
    ("POST", "/api/v1/incidents/{id}/status"),
    ("PUT", "/api/v1/incidents/{id}/attachments/{name}"),
    ("GET", "/api/v1/incidents/{id}/messages/{seq}/attachment"),
    ("POST", "/api/v1/terminals/{id}/key-change"),
    ("POST", "/api/v1/merchants/{id}/password-reset"),
    ("PUT", "/api/v1/staff/{operator_no}/terminal-password"),
    ("GET", "/api/v1/fraud-reports/{id}/pdf"),
    ("GET", "/api/v1/fraud-reports/{id}/manifest"),
    ("GET", "/api/v1/wallets/{id}/alerts"),
    ("PUT", "/api/v1/wallets/{id}/alerts"),
    ("GET", "/api/v1/procedures"),
    ("POST", "/api/v1/procedures/versions"),
    ("POST", "/api/v1/procedures/acknowledgements"),
];

/// The API's router: `/api/v1/…` behind authentication and idempotency, and the OpenAPI
/// document at `/api/openapi.json` (public).
pub fn router(state: ApiState) -> Router {
    let v1 = Router::new()
        .route("/api/v1/me", get(routes::me))
        .route("/api/v1/transactions", get(routes::list_transactions))
        .route("/api/v1/transactions/{id}", get(routes::get_transaction))
        .route(
            "/api/v1/transactions/{id}/timeline",
            get(timeline::timeline),
        )
        .route("/api/v1/statements/{month}", get(statements::statement))
        .route(
            "/api/v1/transactions/{id}/fraud-report",
            axum::routing::post(fraud::report),
        )
        .route("/api/v1/fraud-reports/{id}", get(fraud::get_report))
        .route("/api/v1/fraud-reports/{id}/pack", get(fraud::get_pack))
        .route("/api/v1/merchants", get(routes::list_merchants))
        .route("/api/v1/merchants/{id}", get(routes::get_merchant))
        .route("/api/v1/terminals", get(routes::list_terminals))
        .route("/api/v1/terminals/{id}", get(routes::get_terminal))
        .route("/api/v1/cards", get(routes::list_cards))
        .route("/api/v1/cards/{id}", get(routes::get_card))
        .route(
            "/api/v1/cards/{id}/alerts",
            get(alerts::get_alerts).put(alerts::put_alerts),
        )
        .route(
            "/api/v1/cards/{id}/freeze",
            axum::routing::put(alerts::freeze_card).delete(alerts::unfreeze_card),
        )
        .route(
            "/api/v1/api-keys",
            get(routes::list_api_keys).post(routes::create_api_key),
        )
        .route("/api/v1/api-keys/{id}", delete(routes::revoke_api_key))
        .route(
            "/api/v1/webhooks",
            get(routes::list_webhooks).post(routes::create_webhook),
        )
        .route("/api/v1/webhooks/{id}", delete(routes::disable_webhook))
        .route(
            "/api/v1/webhooks/{id}/deliveries",
            get(routes::list_deliveries),
        )
        .route(
            "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
            axum::routing::post(routes::redeliver),
        )
        .route("/api/v1/freezes", get(routes::list_freezes))
        .route(
            "/api/v1/freezes/{scope}/{target}",
            axum::routing::put(routes::freeze).delete(routes::thaw),
        )
        .route(
            "/api/v1/receipts/keys/rotate",
            axum::routing::post(receipts::rotate),
        )
        .route("/api/v1/audit", get(audit::list_audit))
        .route("/api/v1/audit/verify", get(audit::verify_audit))
        .route("/api/v1/cases", get(cases::list_cases))
        .route("/api/v1/cases/{id}", get(cases::get_case))
        .route(
            "/api/v1/cases/{id}/assign",
            axum::routing::post(cases::assign_case),
        )
        .route(
            "/api/v1/cases/{id}/comments",
            axum::routing::post(cases::comment_case),
        )
        .route(
            "/api/v1/cases/{id}/resolve",
            axum::routing::post(cases::resolve_case),
        )
        .route(
            "/api/v1/transactions/{id}/refunds",
            get(refunds::list_transaction_refunds).post(refunds::create_refund),
        )
        .route("/api/v1/refunds", get(refunds::list_refunds))
        .route("/api/v1/refunds/{id}", get(refunds::get_refund))
        .route(
            "/api/v1/refunds/{id}/approve",
            axum::routing::post(refunds::approve_refund),
        )
        .route(
            "/api/v1/refunds/{id}/accept",
            axum::routing::post(refunds::accept_refund),
        )
        .route(
            "/api/v1/refunds/{id}/decline",
            axum::routing::post(refunds::decline_refund),
        )
        .route(
            "/api/v1/transactions/{id}/dispute",
            axum::routing::post(disputes::create_dispute),
        )
        .route("/api/v1/disputes/{id}", get(disputes::get_dispute))
        .route(
            "/api/v1/disputes/{id}/review",
            axum::routing::post(disputes::review_dispute),
        )
        .route(
            "/api/v1/disputes/{id}/answer",
            // The JSON answer is a POST (its body bounded by the idempotency layer); the one
            // with files a PUT, bounded by what its files may weigh together.
            axum::routing::post(disputes::answer_dispute)
                .put(disputes::put_answer)
                .layer(axum::extract::DefaultBodyLimit::max(
                    disputes::MAX_ANSWER_BODY_BYTES,
                )),
        )
        .route(
            "/api/v1/disputes/{id}/documents/{name}",
            get(disputes::get_document),
        )
        .route(
            "/api/v1/disputes/{id}/decide",
            axum::routing::post(disputes::decide_dispute),
        )
        .route(
            "/api/v1/transactions/{id}/certificate",
            get(certificates::certificate),
        )
        .route(
            "/api/v1/audit/anchors",
            get(audit_anchors::list_anchors).post(audit_anchors::anchor_now),
        )
        .route("/api/v1/risk/rules", get(risk_rules::current))
        .route(
            "/api/v1/risk/rules/versions",
            get(risk_rules::list_versions).post(risk_rules::create_version),
        )
        .route(
            "/api/v1/risk/rules/versions/{version}/rollback",
            axum::routing::post(risk_rules::rollback_version),
        )
        .route(
            "/api/v1/incidents",
            get(incidents::list_incidents).post(incidents::create_incident),
        )
        .route("/api/v1/incidents/{id}", get(incidents::get_incident))
        .route(
            "/api/v1/incidents/{id}/messages",
            axum::routing::post(incidents::post_message),
        )
        .route(
            "/api/v1/incidents/{id}/status",
            axum::routing::post(incidents::change_status),
        )
        .route(
            "/api/v1/incidents/{id}/attachments/{name}",
            axum::routing::put(incidents::put_attachment).layer(
                axum::extract::DefaultBodyLimit::max(incidents::MAX_ATTACHMENT_BYTES + 1),
            ),
        )
        .route(
            "/api/v1/incidents/{id}/messages/{seq}/attachment",
            get(incidents::get_attachment),
        )
        .route(
            "/api/v1/terminals/{id}/key-change",
            axum::routing::post(emergency::key_change),
        )
        .route(
            "/api/v1/merchants/{id}/password-reset",
            axum::routing::post(emergency::password_reset),
        )
        .route(
            "/api/v1/staff/{operator_no}/terminal-password",
            axum::routing::put(supervisors::set_terminal_password),
        )
        .route("/api/v1/fraud-reports/{id}/pdf", get(fraud::get_pdf))
        .route(
            "/api/v1/fraud-reports/{id}/manifest",
            get(fraud::get_manifest),
        )
        .route(
            "/api/v1/wallets/{id}/alerts",
            get(alerts::get_wallet_alerts).put(alerts::put_wallet_alerts),
        )
        .route("/api/v1/procedures", get(procedures::get_procedures))
        .route(
            "/api/v1/procedures/versions",
            axum::routing::post(procedures::create_version),
        )
        .route(
            "/api/v1/procedures/acknowledgements",
            axum::routing::post(procedures::create_acknowledgement),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotent,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .with_state(state.clone());
    // Receipts are checked by anyone holding one: no login.
    let public = Router::new()
        .route(
            "/api/v1/receipts/verify",
            axum::routing::post(receipts::verify),
        )
        .route("/api/v1/receipts/keys", get(receipts::list_keys))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    Router::new()
        .route("/api/openapi.json", get(openapi::serve))
        .route("/api/v1", axum::routing::any(no_route))
        .route("/api/v1/{*rest}", axum::routing::any(no_route))
        .merge(public)
        .merge(v1)
        .layer(axum::middleware::from_fn(security_headers))
}

/// Headers on every answer of the API, errors included (OWASP's REST security advice): the
/// declared type is not to be sniffed, nothing is to be framed or loaded from an answer, no
/// referrer leaves, and no cache keeps an answer (they hold card, merchant and cardholder data)
/// unless its handler says otherwise. The wallet's and onboarding's JSON APIs wear them too.
pub async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn no_route(uri: axum::http::Uri) -> problem::Problem {
    problem::Problem::new(
        axum::http::StatusCode::NOT_FOUND,
        "no-route",
        "No such route",
        format!(
            "{} is not a route of this API; the routes are listed in /api/openapi.json",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> problem::Problem {
    problem::Problem::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!(
            "{method} is not allowed on {}; /api/openapi.json lists the methods of each route",
            uri.path()
        ),
    )
}
