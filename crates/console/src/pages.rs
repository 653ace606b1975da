//! The console's pages: each handler finds the session, checks the role
//! ([`api::access::allows`]) and reads within the tenant's scope ([`api::access::Scope`]),
//! then renders a template.

pub mod wallet;
// The case queue's pages, a child module so they share the page helpers.
#[path = "cases_page.rs"]
pub(crate) mod cases_page;
// The emergency page, likewise.
#[path = "card_alerts_page.rs"]
pub(crate) mod card_alerts_page;

#[path = "disputes_page.rs"]
pub(crate) mod disputes_page;

#[path = "emergency_page.rs"]
pub(crate) mod emergency_page;
// The incident pages, likewise.
#[path = "incidents_page.rs"]
pub(crate) mod incidents_page;
// The page to choose a new password after an emergency reset, likewise.
#[path = "password_page.rs"]
pub(crate) mod password_page;
// The refunds page, likewise.
#[path = "refunds_page.rs"]
pub(crate) mod refunds_page;
// The risk rules page, likewise.
#[path = "risk_rules_page.rs"]
pub(crate) mod risk_rules_page;
// End of day's reports, likewise.
#[path = "settlement_page.rs"]
pub(crate) mod settlement_page;
// The operating procedures and the training record, likewise.
#[path = "procedures_page.rs"]
pub(crate) mod procedures_page;
// The audit trail's search and export, likewise.
#[path = "audit_page.rs"]
pub(crate) mod audit_page;

use crate::Console;
use crate::i18n::{Lang, Tr};
use crate::session::{self, Found, LANG_COOKIE, SESSION_COOKIE, Session};
use api::access::{Resource, Scope, allows};
use api::routes::TransactionQuery;
use api::views::TransactionView;
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::collections::HashMap;
use store::accounts::{LoginOutcome, Role, TransactionFilter, TransactionStatus, User};

/// Transactions per console page.
const PAGE_SIZE: i64 = 25;
/// Recent transactions on the dashboard.
const RECENT: i64 = 10;
/// Journal lines on the operator's journal page.
const JOURNAL_LINES: i64 = 100;
/// Transactions a dashboard sums (a week of a small merchant); larger sites need the
/// settlement totals of a later issue.
const DASHBOARD_ROWS: i64 = store::accounts::MAX_TRANSACTIONS_PER_READ;
const DAY_MICROS: i64 = 86_400 * 1_000_000;

#[derive(Clone, Debug)]
pub struct NavItem {
    pub href: &'static str,
    pub label: String,
    pub current: bool,
}

/// What every page's frame shows: language, navigation, who is signed in, the CSRF token.
#[derive(Clone, Debug)]
pub struct Chrome {
    pub t: Tr,
    pub lang_code: &'static str,
    pub other_lang_code: &'static str,
    pub nav: Vec<NavItem>,
    pub signed_in: bool,
    pub user_label: String,
    pub role_label: String,
    pub csrf: String,
}

/// The pages of a role's portal, in menu order.
fn portal(role: Role) -> &'static [(&'static str, &'static str)] {
    match role {
        Role::MerchantAdmin => &[
            ("/console/dashboard", "nav-dashboard"),
            ("/console/transactions", "nav-transactions"),
            ("/console/qr-payments", "nav-qr-payments"),
            ("/console/terminals", "nav-terminals"),
            ("/console/staff", "nav-staff"),
            ("/console/cases", "nav-cases"),
            ("/console/emergency", "nav-emergency"),
            ("/console/incidents", "nav-incidents"),
            ("/console/api-keys", "nav-api-keys"),
            ("/console/fleet", "nav-fleet"),
            ("/console/refunds", "nav-refunds"),
            ("/console/settlement", "nav-settlement"),
            ("/console/disputes", "nav-disputes"),
            ("/console/procedures", "nav-procedures"),
            ("/console/audit", "nav-audit"),
        ],
        Role::MerchantManager => &[
            ("/console/dashboard", "nav-dashboard"),
            ("/console/transactions", "nav-transactions"),
            ("/console/qr-payments", "nav-qr-payments"),
            ("/console/terminals", "nav-terminals"),
            ("/console/staff", "nav-staff"),
            ("/console/cases", "nav-cases"),
            ("/console/emergency", "nav-emergency"),
            ("/console/incidents", "nav-incidents"),
            ("/console/refunds", "nav-refunds"),
            ("/console/settlement", "nav-settlement"),
            ("/console/disputes", "nav-disputes"),
            ("/console/procedures", "nav-procedures"),
            ("/console/audit", "nav-audit"),
        ],
        Role::Cashier => &[
            ("/console/dashboard", "nav-dashboard"),
            ("/console/transactions", "nav-transactions"),
            ("/console/qr-payments", "nav-qr-payments"),
            ("/console/terminals", "nav-terminals"),
            ("/console/refunds", "nav-refunds"),
            ("/console/procedures", "nav-procedures"),
        ],
        Role::Cardholder => &[
            ("/console/cards", "nav-cards"),
            ("/console/transactions", "nav-transactions"),
            ("/wallet", "nav-wallet"),
        ],
        Role::IssuerOperator => &[
            ("/console/cards", "nav-cards"),
            ("/console/transactions", "nav-transactions"),
            ("/console/api-keys", "nav-api-keys"),
            ("/console/disputes", "nav-disputes"),
        ],
        Role::WalletOperator => &[
            ("/console/cards", "nav-cards"),
            ("/console/transactions", "nav-transactions"),
            ("/console/api-keys", "nav-api-keys"),
        ],
        Role::PlatformOperator => &[
            ("/console/merchants", "nav-merchants"),
            ("/console/terminals", "nav-terminals"),
            ("/console/transactions", "nav-transactions"),
            ("/console/journal", "nav-journal"),
            ("/console/cases", "nav-cases"),
            ("/console/emergency", "nav-emergency"),
            ("/console/incidents", "nav-incidents"),
            ("/console/health", "nav-health"),
            ("/console/api-keys", "nav-api-keys"),
            ("/console/applications", "nav-applications"),
            ("/console/fleet", "nav-fleet"),
            ("/console/risk-rules", "nav-risk-rules"),
            ("/console/settlement", "nav-settlement"),
            ("/console/audit", "nav-audit"),
        ],
        Role::ChannelPartner => &[
            ("/console/merchants", "nav-merchants"),
            ("/console/terminals", "nav-terminals"),
            ("/console/transactions", "nav-transactions"),
            ("/console/api-keys", "nav-api-keys"),
            ("/console/applications", "nav-applications"),
            ("/console/incidents", "nav-incidents"),
        ],
    }
}

pub(crate) fn lang_of(headers: &HeaderMap) -> Lang {
    let cookies = headers
        .get(header::COOKIE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    session::cookie(cookies, LANG_COOKIE)
        .and_then(Lang::parse)
        .unwrap_or_else(|| {
            Lang::from_accept_language(
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or(""),
            )
        })
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    session::cookie(cookies, SESSION_COOKIE).map(str::to_owned)
}

pub(crate) fn chrome(lang: Lang, user: Option<&User>, csrf: &str, current: &str) -> Chrome {
    let t = Tr { lang };
    let nav = user
        .map(|user| {
            portal(user.role)
                .iter()
                .map(|(href, id)| NavItem {
                    href,
                    label: t.get(id),
                    current: *href == current,
                })
                .collect()
        })
        .unwrap_or_default();
    Chrome {
        t,
        lang_code: lang.code(),
        other_lang_code: lang.other().code(),
        nav,
        signed_in: user.is_some(),
        user_label: user
            .map(|user| user.display_name.clone())
            .unwrap_or_default(),
        role_label: user
            .map(|user| t.get(&format!("role-{}", user.role.as_str())))
            .unwrap_or_default(),
        csrf: csrf.to_owned(),
    }
}

pub(crate) fn render(template: &impl Template, status: StatusCode) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "console page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    title: String,
    message: String,
}

pub(crate) fn error_page(chrome: Chrome, status: StatusCode) -> Response {
    let (title, message) = match status {
        StatusCode::FORBIDDEN => ("error-forbidden-title", "error-forbidden"),
        StatusCode::NOT_FOUND => ("error-not-found-title", "error-not-found"),
        _ => ("error-internal", "error-internal"),
    };
    let page = ErrorPage {
        title: chrome.t.get(title),
        message: chrome.t.get(message),
        chrome,
    };
    render(&page, status)
}

/// A signed-in request: the session, the user, the frame of the page.
pub(crate) struct Visit {
    pub(crate) user: User,
    pub(crate) chrome: Chrome,
}

impl Console {
    fn now_seconds(&self) -> i64 {
        self.api.now_seconds()
    }

    /// [`Console::visit`] for a form post: its CSRF token must match the session's first
    /// (otherwise 403).
    async fn form_visit(
        &self,
        headers: &HeaderMap,
        csrf: &str,
        resource: Resource,
        current: &str,
    ) -> Result<Visit, Response> {
        if checked_session(self, headers, csrf).is_none() {
            return Err(csrf_refused(lang_of(headers)));
        }
        self.visit(headers, Some(resource), current).await
    }

    /// [`Console::visit`] for the new-password form, with its CSRF token checked.
    pub(crate) async fn password_form_visit(
        &self,
        headers: &HeaderMap,
        csrf: &str,
    ) -> Result<Visit, Response> {
        if checked_session(self, headers, csrf).is_none() {
            return Err(csrf_refused(lang_of(headers)));
        }
        self.visit(headers, None, password_page::PASSWORD_PAGE)
            .await
    }

    /// The signed-in user of this request, allowed to use `resource`; otherwise the answer to
    /// give instead (the login page, or 403).
    pub(crate) async fn visit(
        &self,
        headers: &HeaderMap,
        resource: Option<Resource>,
        current: &str,
    ) -> Result<Visit, Response> {
        let lang = lang_of(headers);
        let found = session_id(headers)
            .map(|id| self.sessions.touch(&id, self.now_seconds()))
            .unwrap_or(Found::Missing);
        let session = match found {
            Found::Live(session) => session,
            Found::Expired => return Err(Redirect::to("/console/login?expired=1").into_response()),
            Found::Missing => return Err(Redirect::to("/console/login").into_response()),
        };
        let user = match &session.user_id {
            Some(id) => self.api.store.user(id).await.map_err(|error| {
                tracing::error!(%error, "console: user look-up failed");
                error_page(
                    chrome(lang, None, "", current),
                    StatusCode::INTERNAL_SERVER_ERROR,
                )
            })?,
            None => None,
        };
        let Some(user) = user else {
            return Err(Redirect::to("/console/login").into_response());
        };
        // An emergency reset: nothing but the page to choose a new password until then.
        if current != password_page::PASSWORD_PAGE {
            match self.api.store.password_reset_required(&user.id).await {
                Ok(false) => {}
                Ok(true) => {
                    return Err(Redirect::to(password_page::PASSWORD_PAGE).into_response());
                }
                Err(error) => {
                    tracing::error!(%error, "console: password reset look-up failed");
                    return Err(error_page(
                        chrome(lang, None, "", current),
                        StatusCode::INTERNAL_SERVER_ERROR,
                    ));
                }
            }
        }
        let chrome = chrome(lang, Some(&user), &session.csrf, current);
        if let Some(resource) = resource
            && !allows(user.role, resource)
        {
            return Err(error_page(chrome, StatusCode::FORBIDDEN));
        }
        Ok(Visit { user, chrome })
    }

    async fn scope(&self, visit: &Visit) -> Result<Scope, Response> {
        Scope::of(&self.api.store, &visit.user)
            .await
            .map_err(|error| internal(visit, &error))
    }

    /// [`Console::visit`] and the visitor's [`Scope`]: what most list pages start with.
    pub(crate) async fn scoped_visit(
        &self,
        headers: &HeaderMap,
        resource: Resource,
        current: &str,
    ) -> Result<(Visit, Scope), Response> {
        let visit = self.visit(headers, Some(resource), current).await?;
        let scope = self.scope(&visit).await?;
        Ok((visit, scope))
    }
}

fn internal(visit: &Visit, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "console page failed");
    error_page(visit.chrome.clone(), StatusCode::INTERNAL_SERVER_ERROR)
}

pub(crate) fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `/` and `/console`: the portal's first page, or the login.
pub async fn home(State(console): State<Console>, headers: HeaderMap) -> Response {
    match console.visit(&headers, None, "").await {
        Ok(visit) => Redirect::to(portal(visit.user.role)[0].0).into_response(),
        Err(response) => response,
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    message: String,
    username: String,
    /// Where to go after the login (a deep link into the wallet page), if anywhere.
    next: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    expired: Option<String>,
    next: Option<String>,
}

/// The login form, with a fresh anonymous session for its CSRF token.
pub async fn login_form(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let lang = lang_of(&headers);
    let old = session_id(&headers);
    let session = console
        .sessions
        .start(None, old.as_deref(), console.now_seconds());
    let t = Tr { lang };
    let page = LoginPage {
        chrome: chrome(lang, None, &session.csrf, "/console/login"),
        message: if query.expired.is_some() {
            t.get("login-expired")
        } else {
            String::new()
        },
        username: String::new(),
        next: query
            .next
            .as_deref()
            .and_then(wallet::safe_next)
            .unwrap_or_default()
            .to_owned(),
    };
    with_cookie(
        render(&page, StatusCode::OK),
        &session::session_cookie(&session.id),
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    #[serde(default)]
    next: String,
}

/// The anonymous or signed-in session of a form post whose CSRF token matches; `None` for a
/// forged, stale or token-less post.
pub(crate) fn checked_session(
    console: &Console,
    headers: &HeaderMap,
    token: &str,
) -> Option<Session> {
    let id = session_id(headers)?;
    match console.sessions.touch(&id, console.now_seconds()) {
        Found::Live(session) if session.csrf_matches(token) => Some(session),
        _ => None,
    }
}

pub(crate) fn csrf_refused(lang: Lang) -> Response {
    let t = Tr { lang };
    let page = ErrorPage {
        chrome: chrome(lang, None, "", ""),
        title: t.get("error-forbidden-title"),
        message: t.get("error-csrf"),
    };
    render(&page, StatusCode::FORBIDDEN)
}

/// Checks the password (argon2id, lockout in the store); on success a new session id replaces
/// the anonymous one.
pub async fn login(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = lang_of(&headers);
    let Some(session) = checked_session(&console, &headers, &form.csrf) else {
        return csrf_refused(lang);
    };
    let t = Tr { lang };
    let outcome = console
        .api
        .store
        .authenticate(form.username.trim(), &form.password, console.now_seconds())
        .await;
    if let Err(response) = audit_login(&console, form.username.trim(), &outcome).await {
        return response;
    }
    let message = match outcome {
        Ok(LoginOutcome::Accepted(user)) if user.role.requires_mfa() => {
            let pending = console.sessions.start_pending(
                user.id.clone(),
                Some(&session.id),
                console.now_seconds(),
            );
            return with_cookie(
                Redirect::to("/console/mfa").into_response(),
                &session::session_cookie(&pending.id),
            );
        }
        Ok(LoginOutcome::Accepted(user)) => {
            let signed_in = console.sessions.start(
                Some(user.id.clone()),
                Some(&session.id),
                console.now_seconds(),
            );
            tracing::info!(user = %user.username, role = user.role.as_str(), "console sign-in");
            let landing = procedures_page::landing(&console, &user).await;
            let to = wallet::safe_next(&form.next).unwrap_or(landing);
            return with_cookie(
                Redirect::to(to).into_response(),
                &session::session_cookie(&signed_in.id),
            );
        }
        Ok(LoginOutcome::Refused) => t.get("login-failed"),
        Ok(LoginOutcome::Locked { .. }) => t.get("login-locked"),
        Err(error) => {
            tracing::error!(%error, "console: login failed");
            t.get("error-internal")
        }
    };
    let page = LoginPage {
        chrome: chrome(lang, None, &session.csrf, "/console/login"),
        message,
        next: wallet::safe_next(&form.next).unwrap_or_default().to_owned(),
        username: form.username,
    };
    render(&page, StatusCode::UNAUTHORIZED)
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// Records a console login in the audit log: `login.password` (the password was right; a
/// second factor may follow), `login.refused` or `login.locked`, under the name typed (cut to
/// the longest user name) and the user's tenant when the name is a user's.
async fn audit_login(
    console: &Console,
    username: &str,
    outcome: &Result<LoginOutcome, store::StoreError>,
) -> Result<(), Response> {
    let (action, user) = match outcome {
        Ok(LoginOutcome::Accepted(user)) => ("login.password", Some(user.clone())),
        Ok(LoginOutcome::Refused) => ("login.refused", None),
        Ok(LoginOutcome::Locked { .. }) => ("login.locked", None),
        Err(_) => return Ok(()),
    };
    let name: String = username.chars().take(MAX_AUDITED_USERNAME_CHARS).collect();
    let user = match user {
        Some(user) => Some(user),
        None => console
            .api
            .store
            .user_by_username(&name)
            .await
            .ok()
            .flatten(),
    };
    let tenant = user
        .map(|user| api::audit::tenant_label(&user.tenant))
        .unwrap_or_default();
    console
        .api
        .audit_as(&name, action, "console", "", tenant)
        .await
        .map(|_| ())
        .map_err(|_| {
            error_page(
                chrome(Lang::En, None, "", ""),
                StatusCode::INTERNAL_SERVER_ERROR,
            )
        })
}

/// Longest typed user name an audit entry of a failed login keeps.
const MAX_AUDITED_USERNAME_CHARS: usize = 64;

pub async fn logout(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(session) = checked_session(&console, &headers, &form.csrf) else {
        return csrf_refused(lang_of(&headers));
    };
    console.sessions.end(&session.id);
    if let Some(user_id) = &session.user_id
        && let Ok(Some(user)) = console.api.store.user(user_id).await
    {
        let tenant = api::audit::tenant_label(&user.tenant);
        if let Err(problem) = console
            .api
            .audit(&user, "logout", "console", "", tenant)
            .await
        {
            return problem.into_response();
        }
    }
    with_cookie(
        Redirect::to("/console/login").into_response(),
        &format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict"),
    )
}

/// Remembers the language chosen (a cookie), then goes back to the console page the link was
/// on (only a `/console` or `/docs` path of the `Referer`, never another site).
pub async fn switch_language(headers: HeaderMap, Path(code): Path<String>) -> Response {
    let lang = Lang::parse(&code).unwrap_or(Lang::En);
    let back = headers
        .get(header::REFERER)
        .and_then(|value| value.to_str().ok())
        .and_then(|referer| referer.split_once("://"))
        .and_then(|(_, rest)| rest.find('/').map(|slash| rest[slash..].to_owned()))
        .filter(|path| {
            (path.starts_with("/console") || path.starts_with("/docs"))
                && !path.starts_with("/console/lang")
                && !path.starts_with("//")
        })
        .unwrap_or_else(|| "/console".to_owned());
    with_cookie(
        Redirect::to(&back).into_response(),
        &session::lang_cookie(lang.code()),
    )
}

pub async fn not_found(headers: HeaderMap) -> Response {
    let lang = lang_of(&headers);
    error_page(chrome(lang, None, "", ""), StatusCode::NOT_FOUND)
}

/// A transaction as a table row.
#[derive(Clone, Debug)]
pub struct TxRow {
    pub id: String,
    pub time: String,
    pub kind: String,
    pub merchant: String,
    pub terminal: String,
    pub card: String,
    pub amount: String,
    pub status: &'static str,
    pub status_label: String,
    pub response: String,
    pub mti: String,
}

/// Merchants' names by id, in the page's language, with their city: a cardholder sees where
/// they paid (R7), not only a merchant id.
type MerchantNames = HashMap<String, String>;

async fn merchant_names(console: &Console, lang: Lang) -> MerchantNames {
    match console.api.store.load_directory().await {
        Ok(directory) => directory
            .merchants
            .into_iter()
            .map(|merchant| {
                let name = match lang {
                    Lang::En => merchant.name,
                    Lang::ZhCn => merchant.name_zh,
                };
                (merchant.id, format!("{name}, {}", merchant.city))
            })
            .collect(),
        Err(error) => {
            // The ids still show; the page is worth more than the names.
            tracing::warn!(%error, "console: merchant names unavailable");
            MerchantNames::new()
        }
    }
}

fn tx_row(t: Tr, names: &MerchantNames, view: &TransactionView) -> TxRow {
    TxRow {
        id: view.id.clone(),
        time: view
            .received_at
            .get(..19)
            .unwrap_or(&view.received_at)
            .replace('T', " "),
        kind: view.kind.clone(),
        merchant: names
            .get(&view.merchant_id)
            .cloned()
            .unwrap_or_else(|| view.merchant_id.clone()),
        terminal: view.terminal_id.clone(),
        card: view.card.clone().unwrap_or_default(),
        amount: view
            .amount
            .as_ref()
            .map(|amount| format!("{} {}", amount.currency, amount.major))
            .unwrap_or_default(),
        status: view.status,
        status_label: t.get(&format!("status-{}", view.status)),
        response: view.response_code.clone().unwrap_or_default(),
        mti: view.mti.clone(),
    }
}

#[derive(Clone, Debug, Default)]
pub struct SearchForm {
    pub from: String,
    pub to: String,
    pub terminal_id: String,
    pub card: String,
    pub min_amount_minor: String,
    pub max_amount_minor: String,
    pub status: String,
}

#[derive(Clone, Debug)]
pub struct StatusOption {
    pub value: &'static str,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "transactions.html")]
struct TransactionsPage {
    chrome: Chrome,
    form: SearchForm,
    statuses: Vec<StatusOption>,
    message: String,
    rows: Vec<TxRow>,
    next: String,
}

#[derive(Template)]
#[template(path = "transactions_rows.html")]
struct TransactionRows {
    chrome: Chrome,
    rows: Vec<TxRow>,
    next: String,
}

/// The search form's fields: blank ones are no filter.
fn search(params: &HashMap<String, String>) -> (SearchForm, TransactionQuery) {
    let value = |name: &str| {
        params
            .get(name)
            .map(|text| text.trim().to_owned())
            .unwrap_or_default()
    };
    let form = SearchForm {
        from: value("from"),
        to: value("to"),
        terminal_id: value("terminal_id"),
        card: value("card"),
        min_amount_minor: value("min_amount_minor"),
        max_amount_minor: value("max_amount_minor"),
        status: value("status"),
    };
    let some = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    let query = TransactionQuery {
        from: some(&form.from),
        to: some(&form.to),
        min_amount_minor: some(&form.min_amount_minor),
        max_amount_minor: some(&form.max_amount_minor),
        merchant_id: some(&value("merchant_id")),
        terminal_id: some(&form.terminal_id),
        card: some(&form.card),
        status: some(&form.status),
        limit: Some(PAGE_SIZE.to_string()),
        cursor: some(&value("cursor")),
        no_such_card: false,
    };
    (form, query)
}

fn next_link(form: &SearchForm, cursor: &str) -> String {
    let mut pairs = vec![];
    for (name, value) in [
        ("from", &form.from),
        ("to", &form.to),
        ("terminal_id", &form.terminal_id),
        ("card", &form.card),
        ("min_amount_minor", &form.min_amount_minor),
        ("max_amount_minor", &form.max_amount_minor),
        ("status", &form.status),
    ] {
        if !value.is_empty() {
            pairs.push(format!("{name}={}", encode(value)));
        }
    }
    pairs.push(format!("cursor={}", encode(cursor)));
    format!("/console/transactions?{}", pairs.join("&"))
}

/// Percent-encodes a query value (letters, digits and `-._~` stay).
fn encode(value: &str) -> String {
    api::files::percent_encode(value)
}

pub async fn transactions(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (visit, scope) = match console
        .scoped_visit(&headers, Resource::Transactions, "/console/transactions")
        .await
    {
        Ok(found) => found,
        Err(response) => return response,
    };
    let t = visit.chrome.t;
    let (form, query) = search(&params);
    let query = match query.resolve_card_token(&console.api).await {
        Ok(query) => query,
        Err(problem) => return internal(&visit, &problem.detail),
    };
    let (rows, next, message) = match query.filter(scope.transaction_filter(visit.user.role)) {
        Ok(filter) => match api::routes::transactions_page(&console.api, filter).await {
            Ok(page) => (
                {
                    let names = merchant_names(&console, t.lang).await;
                    page.data
                        .iter()
                        .map(|view| tx_row(t, &names, view))
                        .collect()
                },
                page.next_cursor
                    .map(|cursor| next_link(&form, &cursor))
                    .unwrap_or_default(),
                String::new(),
            ),
            Err(problem) => (Vec::new(), String::new(), problem.detail),
        },
        Err(problem) => (Vec::new(), String::new(), problem.detail),
    };
    if headers.contains_key("hx-request") && message.is_empty() {
        return render(
            &TransactionRows {
                chrome: visit.chrome,
                rows,
                next,
            },
            StatusCode::OK,
        );
    }
    let statuses = std::iter::once(("", t.get("tx-any")))
        .chain(
            [
                TransactionStatus::Approved,
                TransactionStatus::Declined,
                TransactionStatus::Unanswered,
            ]
            .into_iter()
            .map(|status| {
                (
                    status.as_str(),
                    t.get(&format!("status-{}", status.as_str())),
                )
            }),
        )
        .map(|(value, label)| StatusOption {
            value,
            label,
            selected: form.status == value,
        })
        .collect();
    let status = if message.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    render(
        &TransactionsPage {
            chrome: visit.chrome,
            form,
            statuses,
            message,
            rows,
            next,
        },
        status,
    )
}

#[derive(Template)]
#[template(path = "transaction.html")]
struct TransactionPage {
    chrome: Chrome,
    tx: TxRow,
    merchant_id: String,
    rrn: String,
    auth_code: String,
    batch_trace: String,
    original: String,
    duration: String,
    /// What happened to it (state, Asia/Shanghai time, amount), oldest first.
    timeline: Vec<(String, String, String)>,
    /// The cardholder may report it as fraud (an approved transaction not yet reported).
    can_report: bool,
    /// The fraud report made of it, if any.
    fraud_report: Option<String>,
    /// Each fired rule with its reason, or the freeze, one per line.
    risk_rules: Vec<String>,
}

fn pair(first: Option<i64>, second: Option<i64>) -> String {
    match (first, second) {
        (None, None) => String::new(),
        (first, second) => format!(
            "{:06} / {:06}",
            first.unwrap_or_default(),
            second.unwrap_or_default()
        ),
    }
}

pub async fn transaction(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let visit = match console
        .visit(
            &headers,
            Some(Resource::Transactions),
            "/console/transactions",
        )
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let Ok(row_id) = id.parse::<i64>() else {
        return error_page(visit.chrome, StatusCode::NOT_FOUND);
    };
    let scope = match console.scope(&visit).await {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let filter = TransactionFilter {
        id: Some(row_id),
        limit: 1,
        ..scope.transaction_filter(visit.user.role)
    };
    let record = match console.api.store.transactions(&filter).await {
        Ok(mut records) => records.pop(),
        Err(error) => return internal(&visit, &error),
    };
    let Some(record) = record else {
        return error_page(visit.chrome, StatusCode::NOT_FOUND);
    };
    let view = TransactionView::from(&record);
    let names = merchant_names(&console, visit.chrome.t.lang).await;
    let timeline = match api::timeline::events(&console.api, &record).await {
        Ok(events) => events,
        Err(problem) => return internal(&visit, &problem.detail),
    };
    let t = visit.chrome.t;
    let fraud_report = match console
        .api
        .store
        .fraud_report_of_transaction(record.id)
        .await
    {
        Ok(report) => report.map(|report| report.id),
        Err(error) => return internal(&visit, &error),
    };
    let page = TransactionPage {
        can_report: visit.user.role == Role::Cardholder
            && record.response.as_deref() == Some("00")
            && fraud_report.is_none(),
        fraud_report,
        timeline: timeline
            .iter()
            .map(|event| {
                (
                    t.get(&format!("timeline-{}", event.state)),
                    api::time::parse_rfc3339_micros(&event.at)
                        .map(|micros| shanghai_time(micros.div_euclid(1_000_000)))
                        .unwrap_or_default(),
                    event
                        .amount
                        .as_ref()
                        .map(|amount| format!("{} {}", amount.currency, amount.major))
                        .unwrap_or_default(),
                )
            })
            .collect(),
        tx: tx_row(visit.chrome.t, &names, &view),
        merchant_id: record.merchant_id.clone(),
        rrn: record.rrn.clone().unwrap_or_default(),
        auth_code: record.auth_code.clone().unwrap_or_default(),
        batch_trace: pair(record.batch, record.stan),
        original: pair(record.original_batch, record.original_stan),
        duration: format!("{} ms", record.duration_us / 1_000),
        risk_rules: record
            .risk
            .as_deref()
            .map(|rules| rules.split("; ").map(str::to_owned).collect())
            .unwrap_or_default(),
        chrome: visit.chrome,
    };
    render(&page, StatusCode::OK)
}

#[derive(Clone, Debug)]
pub struct Bar {
    pub x: i64,
    pub y: i64,
    pub height: i64,
    pub label_x: i64,
    pub value_y: i64,
    pub day: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    today: Vec<String>,
    today_count: usize,
    week: Vec<String>,
    week_count: usize,
    bars: Vec<Bar>,
    rows: Vec<TxRow>,
    next: String,
}

/// `CNY 12.34` for minor units and an ISO 4217 numeric code; empty when either is missing.
fn amount_text(minor: Option<i64>, numeric: Option<i64>) -> String {
    minor
        .zip(numeric)
        .and_then(|(minor, numeric)| {
            let currency = money::Currency::from_numeric(u16::try_from(numeric).ok()?).ok()?;
            Some(format!(
                "{} {}",
                currency.alpha(),
                money::Amount::new(minor, currency).format_major()
            ))
        })
        .unwrap_or_default()
}

/// Sums of approved sales per currency, as `CNY 12.34` lines.
fn totals(records: &[&store::accounts::TransactionRecord]) -> Vec<String> {
    let mut sums: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
    for record in records {
        if let (Some(amount), Some(currency)) = (record.amount_minor, record.currency) {
            let sum = sums.entry(currency).or_default();
            *sum = sum.saturating_add(amount);
        }
    }
    sums.into_iter()
        .map(|(currency, minor)| amount_text(Some(minor), Some(currency)))
        .collect()
}

/// Bars for the last seven days (oldest first): approved sales in CNY, the demo world's and
/// the dashboard's currency (a site in other currencies gets a chart per currency later).
fn bars(records: &[&store::accounts::TransactionRecord], today_start: i64) -> Vec<Bar> {
    let cny = i64::from(money::Currency::CNY.numeric());
    let days: Vec<i64> = (0..7)
        .map(|back| {
            let start = today_start - (6 - back) * DAY_MICROS;
            records
                .iter()
                .filter(|record| record.currency == Some(cny))
                .filter(|record| (start..start + DAY_MICROS).contains(&record.received_at))
                .filter_map(|record| record.amount_minor)
                .sum()
        })
        .collect();
    let top = days.iter().copied().max().unwrap_or(0).max(1);
    days.iter()
        .enumerate()
        .map(|(index, minor)| {
            let index = i64::try_from(index).unwrap_or(0);
            let height = minor.saturating_mul(170) / top;
            let day_start = today_start - (6 - index) * DAY_MICROS;
            let date = api::time::rfc3339_seconds(day_start / 1_000_000);
            Bar {
                x: 10 + index * 98,
                y: 195 - height,
                height,
                label_x: 50 + index * 98,
                value_y: (190 - height).max(12),
                day: date.get(5..10).unwrap_or_default().to_owned(),
                value: format!("{}.{:02}", minor / 100, minor % 100),
            }
        })
        .collect()
}

pub async fn dashboard(State(console): State<Console>, headers: HeaderMap) -> Response {
    let (visit, scope) = match console
        .scoped_visit(&headers, Resource::Merchants, "/console/dashboard")
        .await
    {
        Ok(found) => found,
        Err(response) => return response,
    };
    let now_micros = console.now_seconds().saturating_mul(1_000_000);
    let today_start = now_micros - now_micros.rem_euclid(DAY_MICROS);
    let week_start = today_start - 6 * DAY_MICROS;
    let base = scope.transaction_filter(visit.user.role);
    let week = console
        .api
        .store
        .transactions(&TransactionFilter {
            from: Some(week_start),
            status: Some(TransactionStatus::Approved),
            limit: DASHBOARD_ROWS,
            ..base.clone()
        })
        .await;
    let recent = console
        .api
        .store
        .transactions(&TransactionFilter {
            limit: RECENT,
            ..base
        })
        .await;
    let (week, recent) = match (week, recent) {
        (Ok(week), Ok(recent)) => (week, recent),
        (Err(error), _) | (_, Err(error)) => return internal(&visit, &error),
    };
    let sales: Vec<_> = week.iter().filter(|record| record.kind == "Sale").collect();
    let today: Vec<_> = sales
        .iter()
        .copied()
        .filter(|record| record.received_at >= today_start)
        .collect();
    let t = visit.chrome.t;
    let names = merchant_names(&console, t.lang).await;
    let page = DashboardPage {
        today: totals(&today),
        today_count: today.len(),
        week: totals(&sales),
        week_count: sales.len(),
        bars: bars(&sales, today_start),
        rows: recent
            .iter()
            .map(|record| tx_row(t, &names, &TransactionView::from(record)))
            .collect(),
        next: String::new(),
        chrome: visit.chrome,
    };
    render(&page, StatusCode::OK)
}

#[derive(Template)]
#[template(path = "terminals.html")]
struct TerminalsPage {
    chrome: Chrome,
    rows: Vec<store::directory::Terminal>,
}

pub async fn terminals(State(console): State<Console>, headers: HeaderMap) -> Response {
    let visit = match console
        .visit(&headers, Some(Resource::Terminals), "/console/terminals")
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    match console.scope(&visit).await {
        Ok(scope) => render(
            &TerminalsPage {
                chrome: visit.chrome,
                rows: scope.terminals,
            },
            StatusCode::OK,
        ),
        Err(response) => response,
    }
}

#[derive(Template)]
#[template(path = "staff.html")]
struct StaffPage {
    chrome: Chrome,
    users: Vec<(String, String, String)>,
    operators: Vec<(String, String, String)>,
    can_add: bool,
    roles: Vec<(&'static str, String)>,
    message: String,
}

/// The roles a merchant administrator may give new staff.
const STAFF_ROLES: [Role; 2] = [Role::MerchantManager, Role::Cashier];

pub async fn staff(State(console): State<Console>, headers: HeaderMap) -> Response {
    let visit = match console
        .visit(&headers, Some(Resource::Staff), "/console/staff")
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    staff_page(&console, visit, String::new(), StatusCode::OK).await
}

async fn staff_page(
    console: &Console,
    visit: Visit,
    message: String,
    status: StatusCode,
) -> Response {
    let t = visit.chrome.t;
    let users = match console.api.store.users_of(&visit.user.tenant).await {
        Ok(users) => users,
        Err(error) => return internal(&visit, &error),
    };
    let directory = match console.api.store.load_directory().await {
        Ok(directory) => directory,
        Err(error) => return internal(&visit, &error),
    };
    let merchant = visit.user.tenant.id();
    let page = StaffPage {
        users: users
            .iter()
            .map(|user| {
                (
                    user.username.clone(),
                    user.display_name.clone(),
                    t.get(&format!("role-{}", user.role.as_str())),
                )
            })
            .collect(),
        operators: directory
            .staff
            .iter()
            .filter(|staff| staff.merchant_id == merchant)
            .map(|staff| {
                (
                    staff.operator_no.clone(),
                    staff.name.clone(),
                    staff.role.as_str().to_owned(),
                )
            })
            .collect(),
        can_add: visit.user.role == Role::MerchantAdmin,
        roles: STAFF_ROLES
            .iter()
            .map(|role| (role.as_str(), t.get(&format!("role-{}", role.as_str()))))
            .collect(),
        message,
        chrome: visit.chrome,
    };
    render(&page, status)
}

#[derive(Clone, Debug)]
pub struct CardRow {
    /// The card's page (freeze, alerts), for its holder only.
    pub link: Option<String>,
    pub masked: String,
    pub product: String,
    pub expiry: String,
    pub balance: String,
    pub available: String,
}

#[derive(Template)]
#[template(path = "cards.html")]
struct CardsPage {
    chrome: Chrome,
    cards: Vec<CardRow>,
}

pub async fn cards(State(console): State<Console>, headers: HeaderMap) -> Response {
    let (visit, scope) = match console
        .scoped_visit(&headers, Resource::Cards, "/console/cards")
        .await
    {
        Ok(found) => found,
        Err(response) => return response,
    };
    let views = match api::routes::card_views(&console.api, &scope.cards).await {
        Ok(views) => views,
        Err(problem) => return internal(&visit, &problem.detail),
    };
    let t = visit.chrome.t;
    let show = |amount: &Option<api::views::AmountView>| {
        amount
            .as_ref()
            .map(|amount| format!("{} {}", amount.currency, amount.major))
            .unwrap_or_default()
    };
    let cards = views
        .iter()
        .map(|card| CardRow {
            link: (visit.user.role == store::accounts::Role::Cardholder)
                .then(|| format!("/console/cards/{}", card.id)),
            masked: card.masked_pan.clone(),
            product: t.get(&format!("product-{}", card.product)),
            expiry: card.expiry.clone(),
            balance: show(&card.balance),
            available: show(&card.available),
        })
        .collect();
    render(
        &CardsPage {
            chrome: visit.chrome,
            cards,
        },
        StatusCode::OK,
    )
}

#[derive(Clone, Debug)]
pub struct MerchantRow {
    pub id: String,
    pub name: String,
    pub city: String,
    pub mcc: String,
    pub terminals: usize,
}

#[derive(Template)]
#[template(path = "merchants.html")]
struct MerchantsPage {
    chrome: Chrome,
    rows: Vec<MerchantRow>,
}

pub async fn merchants(State(console): State<Console>, headers: HeaderMap) -> Response {
    let (visit, scope) = match console
        .scoped_visit(&headers, Resource::Merchants, "/console/merchants")
        .await
    {
        Ok(found) => found,
        Err(response) => return response,
    };
    let lang = visit.chrome.t.lang;
    let rows = scope
        .merchants
        .iter()
        .map(|merchant| MerchantRow {
            id: merchant.id.clone(),
            name: match lang {
                Lang::En => merchant.name.clone(),
                Lang::ZhCn => merchant.name_zh.clone(),
            },
            city: merchant.city.clone(),
            mcc: merchant.mcc.clone(),
            terminals: scope
                .terminals
                .iter()
                .filter(|terminal| terminal.merchant_id == merchant.id)
                .count(),
        })
        .collect();
    render(
        &MerchantsPage {
            chrome: visit.chrome,
            rows,
        },
        StatusCode::OK,
    )
}

#[derive(Clone, Debug)]
pub struct JournalRow {
    pub time: String,
    pub mti: String,
    pub kind: String,
    pub terminal: String,
    pub batch_trace: String,
    pub card: String,
    pub amount: String,
    pub response: String,
    pub duration: String,
}

#[derive(Template)]
#[template(path = "journal.html")]
struct JournalPage {
    chrome: Chrome,
    rows: Vec<JournalRow>,
}

/// The latest terminal messages, newest first. Only masked and non-secret columns are shown
/// (never the packed answer or the request's MAC).
pub async fn journal(State(console): State<Console>, headers: HeaderMap) -> Response {
    let visit = match console
        .visit(&headers, Some(Resource::Journal), "/console/journal")
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let entries = match console.api.store.journal_recent(JOURNAL_LINES).await {
        Ok(entries) => entries,
        Err(error) => return internal(&visit, &error),
    };
    let rows = entries
        .iter()
        .rev()
        .map(|entry| JournalRow {
            time: api::time::rfc3339_micros(entry.received_at)
                .get(..19)
                .unwrap_or_default()
                .replace('T', " "),
            mti: entry.mti.clone(),
            kind: entry.kind.clone(),
            terminal: entry.terminal_id.clone(),
            batch_trace: pair(entry.batch, entry.stan),
            card: entry.card.clone().unwrap_or_default(),
            amount: amount_text(entry.amount_minor, entry.currency),
            response: entry.response.clone().unwrap_or_default(),
            duration: format!("{} ms", entry.duration_us / 1_000),
        })
        .collect();
    render(
        &JournalPage {
            chrome: visit.chrome,
            rows,
        },
        StatusCode::OK,
    )
}

#[derive(Debug, Deserialize)]
pub struct StaffForm {
    csrf: String,
    username: String,
    display_name: String,
    role: String,
    password: String,
}

/// A merchant administrator creates a console user for their own merchant (a manager or a
/// cashier) with a temporary password, hashed with argon2id off the async threads: the new
/// user must choose their own at their first login (docs/risk.md#staff-accounts), before the
/// console or the API serve them anything else.
pub async fn add_staff(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<StaffForm>,
) -> Response {
    let visit = match console
        .form_visit(&headers, &form.csrf, Resource::Staff, "/console/staff")
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    if visit.user.role != Role::MerchantAdmin {
        return error_page(visit.chrome, StatusCode::FORBIDDEN);
    }
    let Some(role) = Role::parse(&form.role).filter(|role| STAFF_ROLES.contains(role)) else {
        let message = format!("role: {}", form.role);
        return staff_page(&console, visit, message, StatusCode::BAD_REQUEST).await;
    };
    let id = format!(
        "u-{}",
        session::random_token().get(..16).unwrap_or_default()
    );
    let tenant = visit.user.tenant.clone();
    let now = console.now_seconds();
    let created = tokio::task::spawn_blocking(move || {
        store::accounts::NewUser::new(
            &id,
            form.username.trim(),
            form.display_name.trim(),
            role,
            tenant,
            &form.password,
            now,
        )
    })
    .await;
    let user = match created {
        Ok(Ok(user)) => user,
        Ok(Err(error)) => {
            return staff_page(&console, visit, error.to_string(), StatusCode::BAD_REQUEST).await;
        }
        Err(error) => return internal(&visit, &error),
    };
    let t = visit.chrome.t;
    let (username, role_name) = (user.username.clone(), role.as_str());
    match console
        .api
        .store
        .create_user_with_temporary_password(&user, &visit.user.username, now)
        .await
    {
        Ok(true) => {
            let tenant = api::audit::tenant_label(&visit.user.tenant);
            if let Err(problem) = console
                .api
                .audit(
                    &visit.user,
                    "staff.create",
                    &format!("user:{username}"),
                    role_name,
                    tenant,
                )
                .await
            {
                return problem.into_response();
            }
            staff_page(&console, visit, t.get("staff-created"), StatusCode::CREATED).await
        }
        Ok(false) => staff_page(&console, visit, t.get("staff-taken"), StatusCode::CONFLICT).await,
        Err(error) => internal(&visit, &error),
    }
}

#[derive(Clone, Debug)]
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub revoked_at: String,
}

#[derive(Template)]
#[template(path = "api_keys.html")]
struct ApiKeysPage {
    chrome: Chrome,
    keys: Vec<KeyRow>,
    secret: String,
    message: String,
}

async fn api_keys_page(
    console: &Console,
    visit: Visit,
    secret: String,
    message: String,
    status: StatusCode,
) -> Response {
    let keys = match console.api.store.api_keys_of(&visit.user.id).await {
        Ok(keys) => keys,
        Err(error) => return internal(&visit, &error),
    };
    let keys = keys
        .iter()
        .map(|key| KeyRow {
            id: key.id.clone(),
            name: key.name.clone(),
            created_at: api::time::rfc3339_seconds(key.created_at),
            revoked_at: key
                .revoked_at
                .map(api::time::rfc3339_seconds)
                .unwrap_or_default(),
        })
        .collect();
    let page = ApiKeysPage {
        chrome: visit.chrome,
        keys,
        secret,
        message,
    };
    render(&page, status)
}

pub async fn api_keys(State(console): State<Console>, headers: HeaderMap) -> Response {
    match console
        .visit(&headers, Some(Resource::ApiKeys), "/console/api-keys")
        .await
    {
        Ok(visit) => {
            api_keys_page(
                &console,
                visit,
                String::new(),
                String::new(),
                StatusCode::OK,
            )
            .await
        }
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
pub struct KeyForm {
    csrf: String,
    name: String,
}

/// Creates a key for the signed-in user and shows its secret this once.
pub async fn create_api_key(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<KeyForm>,
) -> Response {
    let visit = match console
        .form_visit(&headers, &form.csrf, Resource::ApiKeys, "/console/api-keys")
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > api::routes::MAX_KEY_NAME_CHARS {
        let message = format!("1–{} characters", api::routes::MAX_KEY_NAME_CHARS);
        return api_keys_page(
            &console,
            visit,
            String::new(),
            message,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let (issued, digest) =
        store::accounts::new_api_key(&visit.user.id, name, console.now_seconds());
    if let Err(error) = console
        .api
        .store
        .put_api_key(issued.key.clone(), digest)
        .await
    {
        return internal(&visit, &error);
    }
    let tenant = api::audit::tenant_label(&visit.user.tenant);
    if let Err(problem) = console
        .api
        .audit(
            &visit.user,
            "api_key.create",
            &format!("api_key:{}", issued.key.id),
            name,
            tenant,
        )
        .await
    {
        return problem.into_response();
    }
    api_keys_page(
        &console,
        visit,
        issued.secret,
        String::new(),
        StatusCode::CREATED,
    )
    .await
}

pub async fn revoke_api_key(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let visit = match console
        .form_visit(&headers, &form.csrf, Resource::ApiKeys, "/console/api-keys")
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    match console
        .api
        .store
        .revoke_api_key(&visit.user.id, &id, console.now_seconds())
        .await
    {
        Ok(true) => {
            let tenant = api::audit::tenant_label(&visit.user.tenant);
            match console
                .api
                .audit(
                    &visit.user,
                    "api_key.revoke",
                    &format!("api_key:{id}"),
                    "",
                    tenant,
                )
                .await
            {
                Ok(_) => Redirect::to("/console/api-keys").into_response(),
                Err(problem) => problem.into_response(),
            }
        }
        Ok(false) => error_page(visit.chrome, StatusCode::NOT_FOUND),
        Err(error) => internal(&visit, &error),
    }
}

#[derive(Template)]
#[template(path = "health.html")]
struct HealthPage {
    chrome: Chrome,
    store_rows: Vec<(String, String)>,
    host_rows: Vec<(String, String)>,
}

/// The store's backend, schema, a read's latency now and the writer's counters; the host's
/// counters from the probe the binary gives (platform operators only).
pub async fn health(State(console): State<Console>, headers: HeaderMap) -> Response {
    let visit = match console
        .visit(&headers, Some(Resource::Journal), "/console/health")
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let t = visit.chrome.t;
    let started = std::time::Instant::now();
    let version = match console.api.store.schema_version().await {
        Ok(version) => version,
        Err(error) => return internal(&visit, &error),
    };
    let latency_us = started.elapsed().as_micros();
    let stats = console.api.store.stats();
    let store_rows = vec![
        (
            t.get("health-backend"),
            console.api.store.backend_name().to_owned(),
        ),
        (t.get("health-schema"), version.to_string()),
        (t.get("health-latency"), format!("{latency_us} µs")),
        (t.get("health-commits"), stats.commits.to_string()),
        (t.get("health-requests"), stats.requests.to_string()),
        (
            t.get("health-transfers"),
            stats.transfers_created.to_string(),
        ),
    ];
    let host_rows = console
        .health
        .as_ref()
        .map(|probe| probe())
        .unwrap_or_default();
    let page = HealthPage {
        chrome: visit.chrome,
        store_rows,
        host_rows,
    };
    render(&page, StatusCode::OK)
}

#[derive(Template)]
#[template(path = "mfa.html")]
struct MfaPage {
    chrome: Chrome,
    enrol: bool,
    qr: String,
    secret: String,
    message: String,
}

/// The session waiting for a second factor and its user; otherwise the way back to the login.
async fn pending(console: &Console, headers: &HeaderMap) -> Result<(Session, User), Response> {
    let to_login = || Redirect::to("/console/login").into_response();
    let id = session_id(headers).ok_or_else(to_login)?;
    let session = match console.sessions.touch(&id, console.now_seconds()) {
        Found::Live(session) => session,
        Found::Expired => return Err(Redirect::to("/console/login?expired=1").into_response()),
        Found::Missing => return Err(to_login()),
    };
    let user_id = session.pending_mfa.clone().ok_or_else(to_login)?;
    match console.api.store.user(&user_id).await {
        Ok(Some(user)) => Ok((session, user)),
        Ok(None) => Err(to_login()),
        Err(error) => {
            tracing::error!(%error, "console: user look-up failed");
            Err(error_page(
                chrome(lang_of(headers), None, "", ""),
                StatusCode::INTERNAL_SERVER_ERROR,
            ))
        }
    }
}

/// The code form, or the enrolment (QR code and key, shown while the enrolment is pending)
/// for a user who has no confirmed authenticator yet.
async fn mfa_page(
    console: &Console,
    lang: Lang,
    session: &Session,
    user: &User,
    message: String,
    status: StatusCode,
) -> Response {
    let page_chrome = chrome(lang, None, &session.csrf, "/console/mfa");
    let mut page = MfaPage {
        chrome: page_chrome.clone(),
        enrol: !user.totp_enabled,
        qr: String::new(),
        secret: String::new(),
        message,
    };
    if !user.totp_enabled {
        let nonce = match &user.totp_nonce {
            Some(nonce) => nonce.clone(),
            None => {
                let nonce = session::random_token();
                match console.api.store.start_totp(&user.id, &nonce).await {
                    Ok(_) => nonce,
                    Err(error) => {
                        tracing::error!(%error, "console: TOTP enrolment failed");
                        return error_page(page_chrome, StatusCode::INTERNAL_SERVER_ERROR);
                    }
                }
            }
        };
        let shown = console.mfa.secret(&user.id, &nonce).and_then(|secret| {
            let qr = crate::mfa::qr_svg(&crate::mfa::otpauth_uri(&user.username, &secret))?;
            Ok((qr, crate::mfa::base32(&secret)))
        });
        match shown {
            Ok((qr, secret)) => {
                page.qr = qr;
                page.secret = secret;
            }
            Err(error) => {
                tracing::error!(%error, "console: TOTP secret failed");
                return error_page(page_chrome, StatusCode::INTERNAL_SERVER_ERROR);
            }
        }
    }
    render(&page, status)
}

pub async fn mfa_form(State(console): State<Console>, headers: HeaderMap) -> Response {
    match pending(&console, &headers).await {
        Ok((session, user)) => {
            mfa_page(
                &console,
                lang_of(&headers),
                &session,
                &user,
                String::new(),
                StatusCode::OK,
            )
            .await
        }
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

/// Checks the code; a right one (of a step not used before) confirms a pending enrolment and
/// replaces the session with a signed-in one; a wrong one counts towards the lockout.
pub async fn mfa(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let lang = lang_of(&headers);
    let (session, user) = match pending(&console, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if !session.csrf_matches(&form.csrf) {
        return csrf_refused(lang);
    }
    let t = Tr { lang };
    let now = console.now_seconds();
    if user.locked_until.is_some_and(|until| until > now) {
        console.sessions.end(&session.id);
        return render(
            &LoginPage {
                chrome: chrome(lang, None, "", "/console/login"),
                message: t.get("login-locked"),
                username: user.username.clone(),
                next: String::new(),
            },
            StatusCode::UNAUTHORIZED,
        );
    }
    let step = match &user.totp_nonce {
        Some(nonce) => console.mfa.matching_step(&user.id, nonce, &form.code, now),
        None => Ok(None),
    };
    let accepted = match step {
        Ok(Some(step)) => console.api.store.accept_totp_step(&user.id, step).await,
        Ok(None) => Ok(false),
        Err(error) => {
            tracing::error!(%error, "console: TOTP check failed");
            return error_page(
                chrome(lang, None, "", ""),
                StatusCode::INTERNAL_SERVER_ERROR,
            );
        }
    };
    match accepted {
        Ok(true) => {
            let tenant = api::audit::tenant_label(&user.tenant);
            if let Err(problem) = console
                .api
                .audit(&user, "login.totp", "console", "", tenant)
                .await
            {
                return problem.into_response();
            }
            let signed_in = console
                .sessions
                .start(Some(user.id.clone()), Some(&session.id), now);
            tracing::info!(user = %user.username, role = user.role.as_str(), "console sign-in with TOTP");
            let landing = procedures_page::landing(&console, &user).await;
            with_cookie(
                Redirect::to(landing).into_response(),
                &session::session_cookie(&signed_in.id),
            )
        }
        Ok(false) => {
            let user = match console.api.store.count_login_failure(&user.id, now).await {
                Ok(Some(user)) => user,
                Ok(None) => user,
                Err(error) => {
                    tracing::error!(%error, "console: counting a failure failed");
                    user
                }
            };
            let message = if user.locked_until.is_some_and(|until| until > now) {
                t.get("login-locked")
            } else {
                t.get("mfa-failed")
            };
            mfa_page(
                &console,
                lang,
                &session,
                &user,
                message,
                StatusCode::UNAUTHORIZED,
            )
            .await
        }
        Err(error) => {
            tracing::error!(%error, "console: TOTP step failed");
            error_page(
                chrome(lang, None, "", ""),
                StatusCode::INTERNAL_SERVER_ERROR,
            )
        }
    }
}

/// What `/verify` found: genuine with the statement's fields, or not with the reason.
#[derive(Debug)]
struct Verdict {
    genuine: bool,
    reason: String,
    rows: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage {
    chrome: Chrome,
    receipt: String,
    verdict: Option<Verdict>,
    /// For a signed-in user, the record of a genuine receipt's transaction, when it is theirs.
    record: Option<String>,
}

/// How far from a receipt's signed time its journal record may be: the statement's time is
/// the commit of the sale's transfer, the journal's the message's arrival.
const RECORD_WINDOW_SECONDS: i64 = 600;

/// The console link of the transaction a genuine receipt names, if `visit`'s user may see it.
async fn receipt_record(
    console: &Console,
    visit: &Visit,
    statement: &aftersale::receipt::Statement,
) -> Option<String> {
    let scope = console.scope(visit).await.ok()?;
    let filter = TransactionFilter {
        terminal_id: Some(statement.terminal_id.clone()),
        from: Some((statement.time - RECORD_WINDOW_SECONDS) * 1_000_000),
        to: Some((statement.time + RECORD_WINDOW_SECONDS) * 1_000_000),
        limit: store::accounts::MAX_TRANSACTIONS_PER_READ,
        ..scope.transaction_filter(visit.user.role)
    };
    let records = console.api.store.transactions(&filter).await.ok()?;
    records
        .iter()
        .find(|record| record.rrn.as_deref() == Some(statement.rrn.as_str()))
        .map(|record| format!("/console/transactions/{}", record.id))
}

/// Seconds east of UTC of the console's local time, Asia/Shanghai (no daylight saving).
const SHANGHAI_OFFSET_SECONDS: i64 = 8 * 3_600;

/// `2026-11-26 07:10:00` in Asia/Shanghai for Unix seconds.
fn shanghai_time(seconds: i64) -> String {
    api::time::rfc3339_seconds(seconds + SHANGHAI_OFFSET_SECONDS)
        .trim_end_matches('Z')
        .replacen('T', " ", 1)
}

/// `/verify` and `/console/verify` (public): checks a receipt's QR payload (`?receipt=`)
/// against the acquirer's signature. A signed-in user sees their portal's menu around it.
pub async fn verify(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let lang = lang_of(&headers);
    let t = Tr { lang };
    let visit = console.visit(&headers, None, "/verify").await.ok();
    let chrome = match &visit {
        Some(visit) => visit.chrome.clone(),
        None => chrome(lang, None, "", "/verify"),
    };
    let mut record = None;
    let receipt = params
        .get("receipt")
        .map(|text| text.trim().to_owned())
        .unwrap_or_default();
    let verdict = match (&console.api.receipts, receipt.is_empty()) {
        (_, true) => None,
        (None, false) => Some(Verdict {
            genuine: false,
            reason: t.get("verify-off"),
            rows: Vec::new(),
        }),
        (Some(keys), false) => Some(match keys.verify(&receipt).await {
            Ok(verified) => {
                let statement = &verified.statement;
                if let Some(visit) = &visit {
                    record = receipt_record(&console, visit, statement).await;
                }
                let key = match verified.key_retired_at {
                    None => statement.key_id.clone(),
                    Some(at) => format!(
                        "{} ({} {})",
                        statement.key_id,
                        t.get("verify-key-retired"),
                        shanghai_time(at)
                    ),
                };
                Verdict {
                    genuine: true,
                    reason: String::new(),
                    rows: vec![
                        (t.get("verify-amount"), statement.amount_text()),
                        (t.get("verify-time"), shanghai_time(statement.time)),
                        (t.get("verify-merchant"), statement.merchant_id.clone()),
                        (t.get("verify-terminal"), statement.terminal_id.clone()),
                        (t.get("verify-card"), statement.card.clone()),
                        (t.get("verify-rrn"), statement.rrn.clone()),
                        (t.get("verify-auth-code"), statement.auth_code.clone()),
                        (t.get("verify-key"), key),
                    ],
                }
            }
            Err(rejection) => Verdict {
                genuine: false,
                reason: rejection.to_string(),
                rows: Vec::new(),
            },
        }),
    };
    let status = match &verdict {
        Some(verdict) if !verdict.genuine => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    render(
        &VerifyPage {
            chrome,
            receipt,
            verdict,
            record,
        },
        status,
    )
}

/// `/console/statement?month=YYYY-MM`: the signed-in user's monthly statement as CSV (the
/// API's, `GET /api/v1/statements/{month}`), with the same `card` and `merchant_id` narrowing.
pub async fn statement(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let month = params.get("month").cloned().unwrap_or_default();
    let visit = match console
        .visit(
            &headers,
            Some(Resource::Transactions),
            "/console/transactions",
        )
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = api::access::Principal {
        user: visit.user.clone(),
    };
    let query = api::statements::StatementQuery {
        card: params.get("card").filter(|text| !text.is_empty()).cloned(),
        merchant_id: params
            .get("merchant_id")
            .filter(|text| !text.is_empty())
            .cloned(),
    };
    match api::statements::statement_for(&console.api, &principal, &month, query).await {
        Ok(response) => response,
        Err(problem) if problem.status == 400 => error_page(visit.chrome, StatusCode::NOT_FOUND),
        Err(problem) => internal(&visit, &problem.detail),
    }
}

#[derive(Debug, Deserialize)]
pub struct FraudForm {
    csrf: String,
    description: String,
}

/// `POST /console/transactions/{id}/fraud-report`: the cardholder reports the transaction as
/// fraud (the API's `report_fraud`: the card frozen, the evidence pack sealed), then sees the
/// report.
pub async fn report_fraud(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<FraudForm>,
) -> Response {
    let visit = match console
        .form_visit(
            &headers,
            &form.csrf,
            Resource::Transactions,
            "/console/transactions",
        )
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = api::access::Principal {
        user: visit.user.clone(),
    };
    match api::fraud::report_fraud(&console.api, &principal, &id, &form.description).await {
        Ok((_, report)) => {
            Redirect::to(&format!("/console/fraud-reports/{}", report.id)).into_response()
        }
        Err(problem) if problem.status == 403 => error_page(visit.chrome, StatusCode::FORBIDDEN),
        Err(problem) if problem.status == 404 => error_page(visit.chrome, StatusCode::NOT_FOUND),
        Err(problem) if problem.status == 400 => {
            let mut response = error_page(visit.chrome, StatusCode::BAD_REQUEST);
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response
        }
        Err(problem) => internal(&visit, &problem.detail),
    }
}

#[derive(Template)]
#[template(path = "fraud_report.html")]
struct FraudReportPage {
    chrome: Chrome,
    id: String,
    transaction_id: String,
    card_id: String,
    reported_at: String,
    description: String,
    pack_sha256: String,
    /// Each file of the pack and its SHA-256.
    manifest: Vec<(String, String)>,
    /// What the report set in motion and how far each is (`api::fraud::FOLLOW_UPS`).
    follow_ups: Vec<api::fraud::FollowUpView>,
}

async fn visible_report(
    console: &Console,
    headers: &HeaderMap,
    id: &str,
) -> Result<(Visit, store::fraud_reports::FraudReport), Response> {
    let visit = console
        .visit(
            headers,
            Some(Resource::Transactions),
            "/console/transactions",
        )
        .await?;
    let principal = api::access::Principal {
        user: visit.user.clone(),
    };
    match api::fraud::visible_report(&console.api, &principal, id).await {
        Ok(report) => Ok((visit, report)),
        Err(problem) if problem.status == 404 => {
            Err(error_page(visit.chrome, StatusCode::NOT_FOUND))
        }
        Err(problem) => Err(internal(&visit, &problem.detail)),
    }
}

/// `/console/fraud-reports/{id}`: the report, its seal and its manifest, and the download.
pub async fn fraud_report(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (visit, report) = match visible_report(&console, &headers, &id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let manifest = serde_json::from_str::<serde_json::Value>(&report.pack)
        .ok()
        .and_then(|pack| pack["manifest"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|entry| {
            (
                entry["name"].as_str().unwrap_or_default().to_owned(),
                entry["sha256"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let follow_ups = match console.api.store.fraud_follow_ups(&report.id).await {
        Ok(follow_ups) => follow_ups
            .iter()
            .map(api::fraud::FollowUpView::from)
            .collect(),
        Err(error) => return internal(&visit, &error.to_string()),
    };
    let page = FraudReportPage {
        follow_ups,
        id: report.id.clone(),
        transaction_id: report.transaction_id.to_string(),
        card_id: report.card_id.clone(),
        reported_at: shanghai_time(report.reported_at),
        description: report.description.clone(),
        pack_sha256: report.pack_sha256.clone(),
        manifest,
        chrome: visit.chrome,
    };
    render(&page, StatusCode::OK)
}

/// `/console/fraud-reports/{id}/pack.json`: the evidence pack, byte for byte as sealed.
pub async fn fraud_pack(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match visible_report(&console, &headers, &id).await {
        Ok((_, report)) => api::fraud::pack_response(&report),
        Err(response) => response,
    }
}

/// `/console/fraud-reports/{id}/evidence.pdf`: the pack's PDF, byte for byte as sealed in it.
pub async fn fraud_pdf(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match visible_report(&console, &headers, &id).await {
        Ok((visit, report)) => api::fraud::pdf_response(&report).unwrap_or_else(|problem| {
            if problem.status == 404 {
                error_page(visit.chrome, StatusCode::NOT_FOUND)
            } else {
                internal(&visit, &problem.detail)
            }
        }),
        Err(response) => response,
    }
}

/// `/console/fraud-reports/{id}/SHA256SUMS`: every file's SHA-256, the PDF's and the pack's.
pub async fn fraud_manifest(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match visible_report(&console, &headers, &id).await {
        Ok((visit, report)) => api::fraud::manifest_response(&report)
            .unwrap_or_else(|problem| internal(&visit, &problem.detail)),
        Err(response) => response,
    }
}
