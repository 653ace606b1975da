//! The wallet page (`/wallet`, issue 8): the consumer's Panda Pay wallet, laid out for a phone,
//! for the signed-in cardholder who owns it. A merchant's code is "scanned" without a camera:
//! its text pasted, a picture of it uploaded (read on the server, `wallet::image`), or its deep
//! link opened (`/wallet/scan?payload=…`, which survives the login). The page shows merchant
//! and amount, and the payment happens only when the wallet password confirms it. The other
//! way round, the page shows a one-time payment code (Code 128 barcode, QR and digits,
//! refreshed every 60 s) for the cashier to scan. Balance, top-up from the linked card and the
//! history are on the same page.

use super::{Visit, encode, error_page, internal, render};
use crate::Console;
use crate::session;
use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use store::accounts::{Role, Tenant};
use store::wallets::{OrderStatus, WalletRecord};
use wallet::{Order, WalletError, Wallets};

/// Orders in the page's history.
const HISTORY_LINES: u32 = 20;
/// The multipart body of an uploaded picture: the picture's limit and room for the form.
pub const MAX_UPLOAD_BYTES: usize = wallet::image::MAX_IMAGE_BYTES + 64 * 1024;

#[derive(Clone, Debug)]
pub struct HistoryRow {
    pub time: String,
    pub merchant: String,
    pub amount: String,
    pub status: &'static str,
    pub status_label: String,
    pub order_id: String,
}

#[derive(Template)]
#[template(path = "wallet.html")]
struct WalletPage {
    chrome: super::Chrome,
    wallet_id: String,
    digits: String,
    spaced: String,
    barcode: String,
    qr: String,
    expires: String,
    balance: String,
    message: String,
    notice: String,
    top_up_id: String,
    rows: Vec<HistoryRow>,
}

#[derive(Template)]
#[template(path = "wallet_confirm.html")]
struct ConfirmPage {
    chrome: super::Chrome,
    wallet_id: String,
    balance: String,
    merchant: String,
    city: String,
    amount: String,
    order_id: String,
    terminal_id: String,
    payload: String,
    message: String,
}

#[derive(Template)]
#[template(path = "wallet_paid.html")]
struct PaidPage {
    chrome: super::Chrome,
    merchant: String,
    amount: String,
    order_id: String,
    time: String,
    balance: String,
}

/// The signed-in owner of a wallet, their wallet, and the wallet service. A visitor who is not
/// signed in is sent to the login and comes back to `next` (a deep link keeps its code).
struct WalletVisit {
    visit: Visit,
    wallet: WalletRecord,
    wallets: Wallets,
}

async fn wallet_visit(
    console: &Console,
    headers: &HeaderMap,
    csrf: Option<&str>,
    next: &str,
) -> Result<WalletVisit, Response> {
    let visit = match csrf {
        Some(csrf) => {
            if super::checked_session(console, headers, csrf).is_none() {
                return Err(super::csrf_refused(super::lang_of(headers)));
            }
            console.visit(headers, None, "/wallet").await
        }
        None => console.visit(headers, None, "/wallet").await,
    };
    let visit = match visit {
        Ok(visit) => visit,
        Err(response) => return Err(back_after_login(response, next)),
    };
    let (Role::Cardholder, Tenant::Cardholder(holder)) = (visit.user.role, &visit.user.tenant)
    else {
        return Err(error_page(visit.chrome, StatusCode::FORBIDDEN));
    };
    let Some(wallets) = console.wallets.clone() else {
        return Err(error_page(visit.chrome, StatusCode::NOT_FOUND));
    };
    let wallet = match wallets.wallets_of(holder).await {
        Ok(found) => found.into_iter().next(),
        Err(error) => return Err(internal(&visit, &error)),
    };
    let Some(wallet) = wallet else {
        return Err(error_page(visit.chrome, StatusCode::NOT_FOUND));
    };
    Ok(WalletVisit {
        visit,
        wallet,
        wallets,
    })
}

/// A redirect to the login page gets `next`, so the visitor comes back here after it.
fn back_after_login(response: Response, next: &str) -> Response {
    let to_login = response
        .headers()
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .filter(|location| location.starts_with("/console/login"))
        .map(str::to_owned);
    match to_login {
        Some(location) => {
            let joiner = if location.contains('?') { '&' } else { '?' };
            Redirect::to(&format!("{location}{joiner}next={}", encode(next))).into_response()
        }
        None => response,
    }
}

/// Where a login may send the visitor back to: a path of this site's console or wallet page,
/// never another site (`//host`) or anything else.
pub fn safe_next(next: &str) -> Option<&str> {
    let path = next.split(['?', '#']).next().unwrap_or_default();
    let ours = path == "/wallet"
        || path.starts_with("/wallet/")
        || path == "/console"
        || path.starts_with("/console/");
    (ours && !next.starts_with("//") && !next.contains('\\') && !path.starts_with("/wallet/v1"))
        .then_some(next)
}

fn amount_text(amount: money::Amount) -> String {
    format!("{} {}", amount.currency().alpha(), amount.format_major())
}

async fn balance_text(visit: &WalletVisit) -> Result<String, Response> {
    visit
        .wallets
        .balance(&visit.wallet.id)
        .await
        .map(amount_text)
        .map_err(|error| internal(&visit.visit, &error))
}

/// The consumer's words for a refusal, in the page's language; the wallet's own text for
/// anything not translated.
fn refusal(t: crate::i18n::Tr, error: &WalletError) -> String {
    match error {
        WalletError::WrongPassword { tries_left } => {
            format!("{} {tries_left}", t.get("wallet-error-wrong_password"))
        }
        WalletError::Ledger(_) | WalletError::Setup(_) | WalletError::Store(_) => {
            t.get("error-internal")
        }
        other => {
            let id = format!("wallet-error-{}", other.code());
            let text = t.get(&id);
            if text == id { other.to_string() } else { text }
        }
    }
}

fn refusal_status(error: &WalletError) -> StatusCode {
    match error {
        WalletError::WrongPassword { .. } => StatusCode::UNAUTHORIZED,
        WalletError::PasswordLocked { .. } => StatusCode::LOCKED,
        WalletError::InsufficientBalance | WalletError::CardDeclined => {
            StatusCode::PAYMENT_REQUIRED
        }
        WalletError::UnknownOrder | WalletError::UnknownWallet => StatusCode::NOT_FOUND,
        WalletError::OrderClosed | WalletError::OrderAlreadyPaid => StatusCode::CONFLICT,
        WalletError::Ledger(_) | WalletError::Setup(_) | WalletError::Store(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

async fn wallet_page(
    visit: WalletVisit,
    message: String,
    notice: String,
    status: StatusCode,
) -> Response {
    let balance = match balance_text(&visit).await {
        Ok(balance) => balance,
        Err(response) => return response,
    };
    let orders = match visit.wallets.history(&visit.wallet.id, HISTORY_LINES).await {
        Ok(orders) => orders,
        Err(error) => return internal(&visit.visit, &error),
    };
    let t = visit.visit.chrome.t;
    let rows = orders
        .iter()
        .map(|order| HistoryRow {
            time: api::time::rfc3339_seconds(order.updated_at)
                .get(..16)
                .unwrap_or_default()
                .replace('T', " "),
            merchant: format!("{}, {}", order.merchant_name, order.merchant_city),
            amount: amount_text(order.amount),
            status: order.status.as_str(),
            status_label: t.get(&format!("wallet-status-{}", order.status.as_str())),
            order_id: order.id.clone(),
        })
        .collect();
    let code = payment_code(&visit).await;
    let page = WalletPage {
        chrome: visit.visit.chrome,
        wallet_id: visit.wallet.id,
        digits: code.digits,
        spaced: code.spaced,
        barcode: code.barcode,
        qr: code.qr,
        expires: code.expires,
        balance,
        message,
        notice,
        // A top-up's id is chosen when the form is shown: sending the same form twice (a
        // reload, a double tap) is one top-up.
        top_up_id: format!("w{}", session::random_token().get(..20).unwrap_or_default()),
        rows,
    };
    render(&page, status)
}

/// A one-time payment code, drawn for the counter's scanner; empty if none could be made (the
/// page still works for scanning and top-ups).
#[derive(Default)]
struct ShownCode {
    digits: String,
    spaced: String,
    barcode: String,
    qr: String,
    expires: String,
}

async fn payment_code(visit: &WalletVisit) -> ShownCode {
    let issued = match visit.wallets.issue_code(&visit.wallet.id).await {
        Ok(issued) => issued,
        Err(error) => {
            tracing::error!(%error, "wallet page: no payment code");
            return ShownCode::default();
        }
    };
    let (Some(barcode), Ok(qr)) = (
        crate::barcode::code128_svg(&issued.code),
        crate::mfa::qr_svg(&issued.code),
    ) else {
        return ShownCode::default();
    };
    // Groups of four, as wallets print them, for a cashier who types the code.
    let spaced = issued
        .code
        .as_bytes()
        .chunks(4)
        .map(|group| String::from_utf8_lossy(group).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    ShownCode {
        spaced,
        barcode,
        qr,
        expires: api::time::rfc3339_seconds(issued.expires_at)
            .get(11..19)
            .unwrap_or_default()
            .to_owned(),
        digits: issued.code,
    }
}

#[derive(Template)]
#[template(path = "wallet_code.html")]
struct CodeFragment {
    chrome: super::Chrome,
    digits: String,
    spaced: String,
    barcode: String,
    qr: String,
    expires: String,
}

/// `GET /wallet/code`: a fresh payment code, the fragment the page swaps in every 60 s.
pub async fn code(State(console): State<Console>, headers: HeaderMap) -> Response {
    let visit = match wallet_visit(&console, &headers, None, "/wallet").await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let code = payment_code(&visit).await;
    render(
        &CodeFragment {
            chrome: visit.visit.chrome,
            digits: code.digits,
            spaced: code.spaced,
            barcode: code.barcode,
            qr: code.qr,
            expires: code.expires,
        },
        StatusCode::OK,
    )
}

/// `GET /wallet`: balance, the ways to scan, top-up and history.
pub async fn home(State(console): State<Console>, headers: HeaderMap) -> Response {
    match wallet_visit(&console, &headers, None, "/wallet").await {
        Ok(visit) => wallet_page(visit, String::new(), String::new(), StatusCode::OK).await,
        Err(response) => response,
    }
}

/// The merchant and amount of a scanned code, with the password form; or the wallet page
/// with the reason the code cannot be paid.
async fn confirm_page(
    visit: WalletVisit,
    payload: &str,
    message: String,
    status: StatusCode,
) -> Response {
    let t = visit.visit.chrome.t;
    let order = match visit.wallets.scan(payload).await {
        Ok(order) => order,
        Err(error) => {
            let status = refusal_status(&error);
            return wallet_page(visit, refusal(t, &error), String::new(), status).await;
        }
    };
    let balance = match balance_text(&visit).await {
        Ok(balance) => balance,
        Err(response) => return response,
    };
    let page = ConfirmPage {
        chrome: visit.visit.chrome,
        wallet_id: visit.wallet.id,
        balance,
        merchant: order.merchant_name.clone(),
        city: order.merchant_city.clone(),
        amount: amount_text(order.amount),
        order_id: order.id.clone(),
        terminal_id: order.terminal_id.clone(),
        payload: payload.trim().to_owned(),
        message,
    };
    render(&page, status)
}

#[derive(Debug, Default, Deserialize)]
pub struct ScanQuery {
    #[serde(default)]
    payload: String,
}

/// `GET /wallet/scan?payload=…`: a pasted code, or a deep link opened on the phone.
pub async fn scan(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<ScanQuery>,
) -> Response {
    let next = format!("/wallet/scan?payload={}", encode(&query.payload));
    let visit = match wallet_visit(&console, &headers, None, &next).await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    if query.payload.trim().is_empty() {
        return Redirect::to("/wallet").into_response();
    }
    confirm_page(visit, &query.payload, String::new(), StatusCode::OK).await
}

/// `POST /wallet/scan`: a picture of the code (multipart: `csrf`, then `image`), read on the
/// server, then the same confirmation as a pasted code.
pub async fn scan_image(
    State(console): State<Console>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    let mut csrf = String::new();
    let mut image = Vec::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                let Ok(bytes) = field.bytes().await else {
                    return (StatusCode::BAD_REQUEST, "the upload was cut short").into_response();
                };
                match name.as_str() {
                    "csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
                    "image" => image = bytes.to_vec(),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(error) => return (error.status(), error.body_text()).into_response(),
        }
    }
    let visit = match wallet_visit(&console, &headers, Some(&csrf), "/wallet").await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let t = visit.visit.chrome.t;
    // Decoding is CPU work on untrusted bytes: off the async threads.
    let decoded = tokio::task::spawn_blocking(move || wallet::image::decode_qr(&image)).await;
    match decoded {
        Ok(Ok(payload)) => confirm_page(visit, &payload, String::new(), StatusCode::OK).await,
        Ok(Err(error)) => {
            let status = refusal_status(&error);
            wallet_page(visit, refusal(t, &error), String::new(), status).await
        }
        Err(error) => internal(&visit.visit, &error),
    }
}

#[derive(Deserialize)]
pub struct PayForm {
    csrf: String,
    payload: String,
    password: String,
}

impl std::fmt::Debug for PayForm {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PayForm")
            .field("payload", &self.payload)
            .finish_non_exhaustive()
    }
}

/// `POST /wallet/pay`: the consumer confirms with the wallet password; the payment's receipt,
/// or the confirmation again with the reason (a wrong password says how many tries are left).
pub async fn pay(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<PayForm>,
) -> Response {
    let visit = match wallet_visit(&console, &headers, Some(&form.csrf), "/wallet").await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let t = visit.visit.chrome.t;
    match visit
        .wallets
        .pay(&form.payload, &visit.wallet.id, &form.password)
        .await
    {
        Ok(order) => paid_page(visit, &order).await,
        Err(error @ (WalletError::WrongPassword { .. } | WalletError::BadPasswordFormat)) => {
            let status = refusal_status(&error);
            confirm_page(visit, &form.payload, refusal(t, &error), status).await
        }
        Err(error) => {
            let status = refusal_status(&error);
            wallet_page(visit, refusal(t, &error), String::new(), status).await
        }
    }
}

async fn paid_page(visit: WalletVisit, order: &Order) -> Response {
    let balance = match balance_text(&visit).await {
        Ok(balance) => balance,
        Err(response) => return response,
    };
    debug_assert_eq!(order.status, OrderStatus::Paid);
    let page = PaidPage {
        chrome: visit.visit.chrome,
        merchant: format!("{}, {}", order.merchant_name, order.merchant_city),
        amount: amount_text(order.amount),
        order_id: order.id.clone(),
        time: api::time::rfc3339_seconds(order.updated_at).replace('T', " "),
        balance,
    };
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct TopUpForm {
    csrf: String,
    top_up_id: String,
    amount: String,
    password: String,
}

impl std::fmt::Debug for TopUpForm {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TopUpForm")
            .field("top_up_id", &self.top_up_id)
            .field("amount", &self.amount)
            .finish_non_exhaustive()
    }
}

/// `POST /wallet/top-up`: money from the linked debit card, confirmed with the password.
pub async fn top_up(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<TopUpForm>,
) -> Response {
    let visit = match wallet_visit(&console, &headers, Some(&form.csrf), "/wallet").await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let t = visit.visit.chrome.t;
    let Ok(amount) = money::Amount::parse(form.amount.trim(), visit.wallet.currency) else {
        let message = refusal(t, &WalletError::BadAmount);
        return wallet_page(visit, message, String::new(), StatusCode::BAD_REQUEST).await;
    };
    match visit
        .wallets
        .top_up_with_password(&visit.wallet.id, &form.top_up_id, amount, &form.password)
        .await
    {
        Ok(_) => {
            let notice = format!("{} {}", t.get("wallet-topped-up"), amount_text(amount));
            wallet_page(visit, String::new(), notice, StatusCode::OK).await
        }
        Err(error) => {
            let status = refusal_status(&error);
            wallet_page(visit, refusal(t, &error), String::new(), status).await
        }
    }
}

#[derive(Template)]
#[template(path = "wallet_alerts.html")]
struct WalletAlertsPage {
    chrome: super::Chrome,
    wallet_id: String,
    /// The shared settings form's and alerts table's fields (`alert_settings.html`).
    form: super::card_alerts_page::SettingsShown,
    message: String,
}

/// The wallet's own alerts page: the settings form and the newest alerts.
async fn alerts_page(
    console: &Console,
    visit: WalletVisit,
    message: String,
    status: StatusCode,
    typed: Option<(api::alerts::AlertSettings, String)>,
) -> Response {
    let alerts = match api::alerts::wallet_alerts(&console.api, &visit.wallet).await {
        Ok(alerts) => alerts,
        Err(problem) => return internal(&visit.visit, &problem.detail),
    };
    render(
        &WalletAlertsPage {
            form: super::card_alerts_page::SettingsShown::new(
                "/wallet/alerts".to_owned(),
                alerts.settings,
                alerts.recent,
                visit.wallet.currency,
            )
            .typed(typed),
            wallet_id: visit.wallet.id.clone(),
            chrome: visit.visit.chrome,
            message,
        },
        status,
    )
}

/// `GET /wallet/alerts`: the wallet's alert channels and threshold, and its newest alerts.
pub async fn alerts(State(console): State<Console>, headers: HeaderMap) -> Response {
    match wallet_visit(&console, &headers, None, "/wallet/alerts").await {
        Ok(visit) => alerts_page(&console, visit, String::new(), StatusCode::OK, None).await,
        Err(response) => response,
    }
}

/// `POST /wallet/alerts`: saves the wallet's alert settings (the API's checks and audit).
pub async fn save_alerts(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<super::card_alerts_page::SettingsForm>,
) -> Response {
    let visit = match wallet_visit(&console, &headers, Some(&form.csrf), "/wallet/alerts").await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let t = visit.visit.chrome.t;
    let typed = Some(form.typed());
    let settings = match form.settings(visit.wallet.currency, t) {
        Ok(settings) => settings,
        Err(message) => {
            return alerts_page(&console, visit, message, StatusCode::BAD_REQUEST, typed).await;
        }
    };
    let principal = api::access::Principal {
        user: visit.visit.user.clone(),
    };
    match api::alerts::save_wallet_settings(&console.api, &principal, &visit.wallet, settings).await
    {
        Ok(saved) => {
            let message = super::card_alerts_page::saved_message(t, saved.webhook_secret);
            alerts_page(&console, visit, message, StatusCode::OK, None).await
        }
        Err(problem) => {
            let status = problem.status_code();
            alerts_page(&console, visit, problem.detail, status, typed).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merchant_sees_only_the_ends_of_a_wallet_id() {
        assert_eq!(masked_wallet(Some("W-CH001")), "W-***01");
        assert_eq!(masked_wallet(Some("W1")), "***");
        assert_eq!(masked_wallet(None), "");
    }

    #[test]
    fn a_login_returns_only_to_our_pages() {
        assert_eq!(
            safe_next("/wallet/scan?payload=0002"),
            Some("/wallet/scan?payload=0002")
        );
        assert_eq!(safe_next("/wallet"), Some("/wallet"));
        assert_eq!(safe_next("/console/cards"), Some("/console/cards"));
        for refused in [
            "//evil.example/wallet",
            "https://evil.example/",
            "/walletx",
            "/wallet/v1/payments",
            "/\\evil",
            "",
        ] {
            assert_eq!(safe_next(refused), None, "{refused}");
        }
    }
}

/// QR orders a merchant page lists, per merchant in the caller's scope.
const MERCHANT_ORDERS: u32 = 50;

#[derive(Clone, Debug)]
pub struct QrRow {
    pub time: String,
    pub merchant: String,
    pub terminal: String,
    pub order_id: String,
    pub wallet: String,
    pub amount: String,
    pub status: &'static str,
    pub status_label: String,
}

#[derive(Template)]
#[template(path = "qr_payments.html")]
struct QrPaymentsPage {
    chrome: super::Chrome,
    rows: Vec<QrRow>,
}

/// A payer's wallet as a merchant sees it: the first and last two characters.
fn masked_wallet(wallet_id: Option<&str>) -> String {
    match wallet_id {
        Some(id) if id.chars().count() > 4 => {
            let chars: Vec<char> = id.chars().collect();
            let head: String = chars[..2].iter().collect();
            let tail: String = chars[chars.len() - 2..].iter().collect();
            format!("{head}***{tail}")
        }
        Some(_) => "***".to_owned(),
        None => String::new(),
    }
}

/// `GET /console/qr-payments`: the QR payments (both ways) of the merchants in the caller's
/// scope, newest first, beside the card transactions (R7, R8).
pub async fn merchant_payments(State(console): State<Console>, headers: HeaderMap) -> Response {
    let (visit, scope) = match console
        .scoped_visit(
            &headers,
            api::access::Resource::Merchants,
            "/console/qr-payments",
        )
        .await
    {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(wallets) = console.wallets.clone() else {
        return error_page(visit.chrome, StatusCode::NOT_FOUND);
    };
    let t = visit.chrome.t;
    let mut orders = Vec::new();
    for merchant in &scope.merchants {
        match wallets.merchant_orders(&merchant.id, MERCHANT_ORDERS).await {
            Ok(found) => orders.extend(found),
            Err(error) => return internal(&visit, &error),
        }
    }
    orders.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    orders.truncate(MERCHANT_ORDERS as usize);
    let rows = orders
        .iter()
        .map(|order| QrRow {
            time: api::time::rfc3339_seconds(order.created_at)
                .get(..19)
                .unwrap_or_default()
                .replace('T', " "),
            merchant: order.merchant_name.clone(),
            terminal: order.terminal_id.clone(),
            order_id: order.id.clone(),
            wallet: masked_wallet(order.wallet_id.as_deref()),
            amount: amount_text(order.amount),
            status: order.status.as_str(),
            status_label: t.get(&format!("wallet-status-{}", order.status.as_str())),
        })
        .collect();
    render(
        &QrPaymentsPage {
            chrome: visit.chrome,
            rows,
        },
        StatusCode::OK,
    )
}
