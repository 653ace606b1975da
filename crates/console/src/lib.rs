//! The easypos web console: server-rendered pages (askama) with htmx for the parts that
//! change in place, in English and Simplified Chinese (Fluent), for merchants (dashboard,
//! transactions, terminals, staff), cardholders (cards and balances, transactions, and the
//! wallet page `/wallet` with its QR payments), operators (merchants, terminals, transactions,
//! the message journal) and channel partners.
//!
//! Everything the browser loads comes from this binary: the pages, one stylesheet and the
//! vendored `htmx.min.js`; the Content-Security-Policy allows nothing else. Role and tenant
//! rules are the API's ([`api::access`]), so the console never shows what the API would not.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<store::Store>, hsm: std::sync::Arc<dyn hsm::Hsm>) -> Result<(), Box<dyn std::error::Error>> {
//! let mfa = console::mfa::Mfa::ensure(&store, hsm).await?;
//! let state = console::Console::new(api::ApiState::new(store), mfa);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, console::router(state)).await?;
//! # Ok(()) }
//! ```

mod apply;
pub mod barcode;
mod fleet;
pub mod guides;
pub mod i18n;
pub mod mfa;
mod pages;
mod review;
pub mod session;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

/// Live figures of the process around the console (the terminal host's connections and
/// frames, for example) as (name, value) lines for the operators' health page.
pub type HealthProbe = Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

/// What every page shares: the API's state (store, clock), the sessions, and the probe of the
/// process's health.
#[derive(Clone)]
pub struct Console {
    pub api: api::ApiState,
    pub sessions: Arc<session::Sessions>,
    pub health: Option<HealthProbe>,
    /// The second factor of the roles that need one ([`store::accounts::Role::requires_mfa`]).
    pub mfa: mfa::Mfa,
    /// Applications and terminals (issue 11); the application pages answer 404 without it.
    pub onboarding: Option<onboarding::service::Onboarding>,
    /// The wallet institution behind the wallet page (`/wallet`); without it the page is 404.
    pub wallets: Option<wallet::Wallets>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("api", &self.api)
            .field("health", &self.health.is_some())
            .finish_non_exhaustive()
    }
}

impl Console {
    pub fn new(api: api::ApiState, mfa: mfa::Mfa) -> Self {
        Console {
            api,
            sessions: Arc::new(session::Sessions::default()),
            health: None,
            mfa,
            onboarding: None,
            wallets: None,
        }
    }

    /// Serves the application form and the review pages of `onboarding`.
    pub fn with_onboarding(mut self, onboarding: onboarding::service::Onboarding) -> Self {
        self.onboarding = Some(onboarding);
        self
    }

    /// Serves the wallet page (`/wallet`) for `wallets`' owners.
    pub fn with_wallets(mut self, wallets: wallet::Wallets) -> Self {
        self.wallets = Some(wallets);
        self
    }

    /// Shows `probe`'s lines on the health page.
    pub fn with_health(mut self, probe: HealthProbe) -> Self {
        self.health = Some(probe);
        self
    }
}

/// Scripts and styles from this origin only, no inline code or style, no framing, forms post
/// only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub const HTMX_JS: &[u8] = include_bytes!("../static/htmx.min.js");
pub const CONSOLE_CSS: &[u8] = include_bytes!("../static/console.css");

/// The console's routes, all under `/console` (and `/` leads there), with the public
/// receipt check `/verify`, the guides `/docs` and the wallet page `/wallet`.
pub fn router(state: Console) -> Router {
    Router::new()
        .route("/console", get(pages::home))
        .route("/console/login", get(pages::login_form).post(pages::login))
        .route("/console/logout", post(pages::logout))
        .route("/console/mfa", get(pages::mfa_form).post(pages::mfa))
        .route("/console/lang/{code}", get(pages::switch_language))
        .route("/console/dashboard", get(pages::dashboard))
        .route("/console/transactions", get(pages::transactions))
        .route("/console/transactions/{id}", get(pages::transaction))
        .route("/console/statement", get(pages::statement))
        .route(
            "/console/transactions/{id}/fraud-report",
            post(pages::report_fraud),
        )
        .route("/console/fraud-reports/{id}", get(pages::fraud_report))
        .route(
            "/console/fraud-reports/{id}/pack.json",
            get(pages::fraud_pack),
        )
        .route(
            "/console/fraud-reports/{id}/evidence.pdf",
            get(pages::fraud_pdf),
        )
        .route(
            "/console/fraud-reports/{id}/SHA256SUMS",
            get(pages::fraud_manifest),
        )
        .route("/console/terminals", get(pages::terminals))
        .route("/console/staff", get(pages::staff).post(pages::add_staff))
        .route(
            "/console/api-keys",
            get(pages::api_keys).post(pages::create_api_key),
        )
        .route("/console/api-keys/{id}/revoke", post(pages::revoke_api_key))
        .route("/favicon.ico", get(no_icon))
        .route("/console/cards", get(pages::cards))
        .route("/console/disputes", get(pages::disputes_page::list))
        .route("/console/disputes/{id}", get(pages::disputes_page::detail))
        .route(
            "/console/disputes/{id}/answer",
            post(pages::disputes_page::answer).layer(axum::extract::DefaultBodyLimit::max(
                api::disputes::MAX_EVIDENCE_FILES * api::disputes::MAX_EVIDENCE_FILE_BYTES
                    + 64 * 1024,
            )),
        )
        .route(
            "/console/disputes/{id}/review",
            post(pages::disputes_page::review),
        )
        .route(
            "/console/disputes/{id}/decide",
            post(pages::disputes_page::decide),
        )
        .route(
            "/console/disputes/{id}/documents/{name}",
            get(pages::disputes_page::document),
        )
        .route("/console/cards/{id}", get(pages::card_alerts_page::card))
        .route(
            "/console/cards/{id}/alerts",
            post(pages::card_alerts_page::save),
        )
        .route(
            "/console/cards/{id}/freeze",
            post(pages::card_alerts_page::freeze),
        )
        .route("/console/merchants", get(pages::merchants))
        .route("/console/journal", get(pages::journal))
        .route("/console/emergency", get(pages::emergency_page::emergency))
        .route(
            "/console/emergency/freeze",
            post(pages::emergency_page::freeze),
        )
        .route("/console/emergency/thaw", post(pages::emergency_page::thaw))
        .route(
            "/console/emergency/key-change",
            post(pages::emergency_page::key_change),
        )
        .route(
            "/console/emergency/password-reset",
            post(pages::emergency_page::password_reset),
        )
        .route(
            "/console/risk-rules",
            get(pages::risk_rules_page::risk_rules),
        )
        .route(
            "/console/risk-rules/save",
            post(pages::risk_rules_page::save),
        )
        .route(
            "/console/risk-rules/rollback",
            post(pages::risk_rules_page::rollback),
        )
        .route(
            "/console/incidents",
            get(pages::incidents_page::incidents).post(pages::incidents_page::open),
        )
        .route(
            "/console/incidents/{id}",
            get(pages::incidents_page::incident),
        )
        .route(
            "/console/incidents/{id}/messages",
            post(pages::incidents_page::message).layer(axum::extract::DefaultBodyLimit::max(
                api::incidents::MAX_ATTACHMENT_BYTES + 64 * 1024,
            )),
        )
        .route(
            "/console/incidents/{id}/status",
            post(pages::incidents_page::status),
        )
        .route(
            "/console/incidents/{id}/attachments/{seq}",
            get(pages::incidents_page::attachment),
        )
        .route(
            "/console/password",
            get(pages::password_page::form).post(pages::password_page::change),
        )
        .route("/console/cases", get(pages::cases_page::cases))
        .route("/console/cases/{id}", get(pages::cases_page::case))
        .route(
            "/console/cases/{id}/comments",
            post(pages::cases_page::comment),
        )
        .route(
            "/console/cases/{id}/assign",
            post(pages::cases_page::assign),
        )
        .route(
            "/console/cases/{id}/resolve",
            post(pages::cases_page::resolve),
        )
        .route("/console/settlement", get(pages::settlement_page::cycles))
        .route(
            "/console/settlement/{date}",
            get(pages::settlement_page::cycle),
        )
        .route(
            "/console/settlement/{date}/{name}",
            get(pages::settlement_page::download),
        )
        .route("/console/health", get(pages::health))
        .route("/docs", get(guides::index))
        .route("/docs/", get(guides::index))
        .route("/docs/screens/{file}", get(guides::screen))
        .route("/docs/{guide}", get(guides::show))
        .route("/verify", get(pages::verify))
        .route("/console/verify", get(pages::verify))
        .route("/console/apply", get(apply::form).post(apply::post))
        .route("/console/apply/check", post(apply::check))
        .route(
            "/console/apply/documents",
            post(apply::upload).layer(axum::extract::DefaultBodyLimit::max(
                onboarding::http::MAX_DOCUMENT_BYTES + 64 * 1024,
            )),
        )
        .route("/console/applications", get(review::list))
        .route("/console/fleet", get(fleet::show))
        .route("/console/fleet/{id}", post(fleet::act))
        .route("/console/applications/{id}", get(review::show))
        .route("/console/applications/{id}/decision", post(review::decide))
        .route("/console/apply/status", get(apply::status))
        .route(
            "/console/apply/resume",
            get(apply::resume_form).post(apply::resume),
        )
        .route("/wallet", get(pages::wallet::home))
        .route(
            "/wallet/scan",
            get(pages::wallet::scan)
                .post(pages::wallet::scan_image)
                .layer(axum::extract::DefaultBodyLimit::max(
                    pages::wallet::MAX_UPLOAD_BYTES,
                )),
        )
        .route("/wallet/pay", post(pages::wallet::pay))
        .route("/wallet/code", get(pages::wallet::code))
        .route(
            "/console/qr-payments",
            get(pages::wallet::merchant_payments),
        )
        .route("/wallet/top-up", post(pages::wallet::top_up))
        .route(
            "/wallet/alerts",
            get(pages::wallet::alerts).post(pages::wallet::save_alerts),
        )
        .route(
            "/console/refunds",
            get(pages::refunds_page::refunds).post(pages::refunds_page::create),
        )
        .route("/console/refunds/{id}", post(pages::refunds_page::act))
        .route(
            "/console/procedures",
            get(pages::procedures_page::procedures),
        )
        .route(
            "/console/procedures/save",
            post(pages::procedures_page::save),
        )
        .route(
            "/console/procedures/acknowledge",
            post(pages::procedures_page::acknowledge),
        )
        .route("/console/audit", get(pages::audit_page::audit))
        .route("/console/audit/export", get(pages::audit_page::export))
        .route("/console/static/htmx.min.js", get(htmx))
        .route("/console/static/console.css", get(css))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// No icon: an empty answer, so browsers stop asking and logs stay clean.
async fn no_icon() -> axum::http::StatusCode {
    axum::http::StatusCode::NO_CONTENT
}

async fn htmx() -> Response {
    static_file("text/javascript; charset=utf-8", HTMX_JS)
}

async fn css() -> Response {
    static_file("text/css; charset=utf-8", CONSOLE_CSS)
}

fn static_file(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Security headers on every console answer; pages are never cached (they carry tenant data
/// and CSRF tokens).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
