//! The wallet's JSON-over-HTTP interface (docs/wallet.md), a stable interface: terminals create,
//! query, charge and cancel orders, each request signed with the terminal's own MAC key
//! ([`crate::terminal_auth`]; a terminal sees only its own orders); a wallet's owner (the wallet page, an app, or a test standing in for
//! them) pays a scanned payload, tops up and reads the wallet. The owner's routes take the
//! API's credentials (HTTP Basic or an API key of the cardholder who owns the wallet,
//! [`api::auth::principal`]); another caller's wallet is answered as unknown.
//! Handlers are plain async functions over typed extractors; each refusal is one JSON shape,
//! `{"error": code, "message": text}`, and a 5xx never says more than "internal error".

use crate::terminal_auth::{AuthError, TerminalAuth};
use crate::{NewOrder, Order, WalletError, Wallets};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRef, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use money::{Amount, Currency};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Request bodies are a few hundred bytes; 16 KiB leaves room and bounds the parser.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Orders in a wallet's answer to its owner.
pub const HISTORY_LINES: u32 = 20;

/// The wallet service, the API's state (for the owners' credentials) and the terminals'
/// signature check (for the terminal routes).
#[derive(Clone, Debug)]
pub struct WalletApi {
    pub wallets: Wallets,
    pub api: api::ApiState,
    pub terminals: Arc<TerminalAuth>,
}

impl FromRef<WalletApi> for Wallets {
    fn from_ref(state: &WalletApi) -> Wallets {
        state.wallets.clone()
    }
}

/// The routes under `/wallet/v1`. The terminal routes (create, query, charge, cancel) take
/// only requests signed with a terminal's MAC key, checked by `terminals`, the host's ISO 8583
/// handler ([`crate::terminal_auth`]).
pub fn router(
    wallets: Wallets,
    api: api::ApiState,
    terminals: Arc<acquirer::TerminalHandler>,
) -> axum::Router {
    let terminals = Arc::new(TerminalAuth::new(terminals));
    axum::Router::new()
        .route("/wallet/v1/orders", post(create_order))
        .route("/wallet/v1/orders/{order_id}", get(query_order))
        .route("/wallet/v1/orders/{order_id}/cancel", post(cancel_order))
        .route("/wallet/v1/orders/{order_id}/refund", post(refund_order))
        .route("/wallet/v1/charges", post(charge))
        .route(
            "/wallet/v1/merchants/{merchant_id}/orders",
            get(merchant_orders),
        )
        .route("/wallet/v1/payments", post(pay))
        .route("/wallet/v1/wallets/{wallet_id}", get(wallet_view))
        .route("/wallet/v1/wallets/{wallet_id}/top-ups", post(top_up))
        .route(
            "/wallet/v1/wallets/{wallet_id}/payment-codes",
            post(issue_code),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(api::security_headers))
        .with_state(WalletApi {
            wallets,
            api,
            terminals,
        })
}

/// The wallet `wallet_id` if the caller proves they are its owner (a cardholder signed in as
/// the wallet's cardholder); any other wallet is `unknown_wallet`, so a caller cannot tell
/// another's wallets from ones that do not exist.
pub async fn owned_wallet(
    wallets: &Wallets,
    user: &store::accounts::User,
    wallet_id: &str,
) -> Result<store::wallets::WalletRecord, WalletError> {
    let wallet = wallets.wallet(wallet_id).await?;
    match &user.tenant {
        store::accounts::Tenant::Cardholder(holder)
            if user.role == store::accounts::Role::Cardholder
                && *holder == wallet.cardholder_id =>
        {
            Ok(wallet)
        }
        _ => Err(WalletError::UnknownWallet),
    }
}

async fn owner(
    state: &WalletApi,
    headers: &HeaderMap,
    wallet_id: &str,
) -> Result<store::wallets::WalletRecord, ApiError> {
    let principal = api::auth::principal(&state.api, headers)
        .await
        .map_err(ApiError::Auth)?;
    Ok(owned_wallet(&state.wallets, &principal.user, wallet_id).await?)
}

/// An order as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrderView {
    pub order_id: String,
    /// `created`, `paid`, `refunded`, `closed` or `reversed`.
    pub status: String,
    pub terminal_id: String,
    pub merchant_id: String,
    pub merchant_name: String,
    /// Major units, as on the code (`"12.34"`).
    pub amount: String,
    pub amount_minor: i64,
    pub currency: String,
    pub wallet_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// The dynamic EMVCo payload to show as a QR code.
    pub payload: String,
}

impl From<Order> for OrderView {
    fn from(order: Order) -> Self {
        OrderView {
            order_id: order.record.id.clone(),
            status: order.record.status.as_str().to_owned(),
            terminal_id: order.record.terminal_id.clone(),
            merchant_id: order.record.merchant_id.clone(),
            merchant_name: order.merchant_name.clone(),
            amount: order.record.amount.format_major(),
            amount_minor: order.record.amount.minor(),
            currency: order.record.amount.currency().alpha().to_owned(),
            wallet_id: order.record.wallet_id.clone(),
            created_at: order.record.created_at,
            expires_at: order.record.expires_at,
            payload: order.payload,
        }
    }
}

/// A refusal or failure, as the API answers it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorView {
    pub error: String,
    pub message: String,
}

/// A terminal's request for an order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreateOrder {
    pub order_id: String,
    pub terminal_id: String,
    /// Major units (`"12.34"`).
    pub amount: String,
    /// ISO 4217 alpha code; CNY when absent.
    pub currency: Option<String>,
    pub timeout_seconds: Option<i64>,
}

/// A payment of a scanned code. `Debug` leaves the password out.
#[derive(Clone, Deserialize)]
pub struct Pay {
    pub payload: String,
    pub wallet_id: String,
    pub password: String,
}

impl std::fmt::Debug for Pay {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Pay")
            .field("payload", &self.payload)
            .field("wallet_id", &self.wallet_id)
            .finish_non_exhaustive()
    }
}

/// A top-up from the wallet's linked debit card, confirmed with the wallet password.
#[derive(Clone, Deserialize)]
pub struct TopUp {
    /// Chosen by the caller (1 to 25 letters, digits or '-'): a retry is the same top-up.
    pub top_up_id: String,
    /// Major units, in the wallet's currency.
    pub amount: String,
    pub password: String,
}

impl std::fmt::Debug for TopUp {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TopUp")
            .field("top_up_id", &self.top_up_id)
            .field("amount", &self.amount)
            .finish_non_exhaustive()
    }
}

/// A wallet's balance after a top-up.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BalanceView {
    pub wallet_id: String,
    /// Major units.
    pub balance: String,
    pub balance_minor: i64,
    pub currency: String,
}

enum ApiError {
    Wallet(WalletError),
    /// No credentials, or wrong ones: the API's problem, in the wallet's shape.
    Auth(api::problem::Problem),
    /// A terminal request that is not signed, or not rightly.
    Terminal(AuthError),
    /// A body that is not the JSON the route takes.
    BadJson(String),
}

impl From<WalletError> for ApiError {
    fn from(error: WalletError) -> Self {
        ApiError::Wallet(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = match self {
            ApiError::Wallet(error) => error,
            ApiError::Terminal(error) => {
                let status = match &error {
                    AuthError::Internal => {
                        tracing::error!(%error, "a terminal's signature could not be checked");
                        let body = ErrorView {
                            error: "internal".to_owned(),
                            message: "internal error".to_owned(),
                        };
                        return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
                    }
                    AuthError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
                    _ => StatusCode::UNAUTHORIZED,
                };
                tracing::info!(error = error.code(), "a terminal request was refused");
                let body = ErrorView {
                    error: error.code().to_owned(),
                    message: error.to_string(),
                };
                return (status, Json(body)).into_response();
            }
            ApiError::BadJson(message) => {
                let body = ErrorView {
                    error: "bad_request".to_owned(),
                    message,
                };
                return (StatusCode::BAD_REQUEST, Json(body)).into_response();
            }
            ApiError::Auth(problem) => {
                let status =
                    StatusCode::from_u16(problem.status).unwrap_or(StatusCode::UNAUTHORIZED);
                let body = ErrorView {
                    error: "unauthorized".to_owned(),
                    message: problem.detail,
                };
                return (status, Json(body)).into_response();
            }
        };
        let status = match &error {
            WalletError::BadPayload(_)
            | WalletError::ForeignInstitution
            | WalletError::PayloadMismatch
            | WalletError::BadOrderId
            | WalletError::BadAmount
            | WalletError::BadTimeout
            | WalletError::BadPasswordFormat
            | WalletError::BadLinkedCard
            | WalletError::NoLinkedCard
            | WalletError::BadImage(_)
            | WalletError::NoCodeInImage
            | WalletError::BadCode(_) => StatusCode::BAD_REQUEST,
            WalletError::WrongPassword { .. } => StatusCode::UNAUTHORIZED,
            WalletError::PasswordLocked { .. } => StatusCode::LOCKED,
            WalletError::InsufficientBalance | WalletError::CardDeclined => {
                StatusCode::PAYMENT_REQUIRED
            }
            WalletError::UnknownOrder
            | WalletError::UnknownWallet
            | WalletError::UnknownTerminal
            | WalletError::UnknownMerchant
            | WalletError::UnknownCode => StatusCode::NOT_FOUND,
            WalletError::OrderConflict
            | WalletError::WalletConflict
            | WalletError::OrderClosed
            | WalletError::OrderAlreadyPaid
            | WalletError::NotRefundable
            | WalletError::CodeExpired
            | WalletError::CodeUsed => StatusCode::CONFLICT,
            WalletError::Ledger(_) | WalletError::Setup(_) | WalletError::Store(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(%error, "wallet request failed");
            "internal error".to_owned()
        } else {
            error.to_string()
        };
        let body = ErrorView {
            error: error.code().to_owned(),
            message,
        };
        (status, Json(body)).into_response()
    }
}

fn bad(error: WalletError) -> ApiError {
    ApiError::Wallet(error)
}

/// The terminal that signed the request (see [`crate::terminal_auth`]).
async fn signed_by(
    state: &WalletApi,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, ApiError> {
    state
        .terminals
        .verify(
            method.as_str(),
            uri.path(),
            headers,
            body,
            state.wallets.now(),
        )
        .await
        .map_err(ApiError::Terminal)
}

/// A signed terminal request's body, whose `terminal_id` must be the signer.
fn terminal_body<T: serde::de::DeserializeOwned>(
    body: &[u8],
    signer: &str,
    terminal_id: impl FnOnce(&T) -> &str,
) -> Result<T, ApiError> {
    let request: T = serde_json::from_slice(body).map_err(|error| {
        ApiError::BadJson(format!(
            "the body is not the JSON this route takes: {error}"
        ))
    })?;
    if terminal_id(&request) != signer {
        return Err(ApiError::Terminal(AuthError::TerminalMismatch));
    }
    Ok(request)
}

async fn create_order(
    State(state): State<WalletApi>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<OrderView>, ApiError> {
    let signer = signed_by(&state, &method, &uri, &headers, &body).await?;
    let request: CreateOrder = terminal_body(&body, &signer, |r: &CreateOrder| &r.terminal_id)?;
    let wallets = &state.wallets;
    let amount = amount_of(&request.amount, request.currency.as_deref())?;
    let order = wallets
        .create_order(NewOrder {
            order_id: request.order_id,
            terminal_id: request.terminal_id,
            amount,
            timeout_seconds: request.timeout_seconds,
        })
        .await?;
    Ok(Json(order.into()))
}

/// A terminal's charge of a consumer's payment code. `Debug` leaves the code out.
#[derive(Clone, Serialize, Deserialize)]
pub struct Charge {
    /// Chosen by the terminal (1 to 25 letters, digits or '-'): a retry is the same charge.
    pub charge_id: String,
    pub terminal_id: String,
    /// Major units (`"12.34"`).
    pub amount: String,
    /// ISO 4217 alpha code; CNY when absent.
    pub currency: Option<String>,
    /// The 21 digits scanned from the consumer's phone.
    pub code: String,
}

impl std::fmt::Debug for Charge {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Charge")
            .field("charge_id", &self.charge_id)
            .field("terminal_id", &self.terminal_id)
            .field("amount", &self.amount)
            .finish_non_exhaustive()
    }
}

/// A terminal's cancel of an order whose outcome it does not know.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cancel {
    pub terminal_id: String,
    /// The order's amount, major units.
    pub amount: String,
    pub currency: Option<String>,
}

/// A one-time payment code for the wallet's owner to show.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PaymentCodeView {
    pub code: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl std::fmt::Debug for PaymentCodeView {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PaymentCodeView")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

fn amount_of(amount: &str, currency: Option<&str>) -> Result<Amount, ApiError> {
    let currency = match currency {
        None => Currency::CNY,
        Some(code) => Currency::from_alpha(code).map_err(|_| bad(WalletError::BadAmount))?,
    };
    Amount::parse(amount, currency).map_err(|_| bad(WalletError::BadAmount))
}

async fn charge(
    State(state): State<WalletApi>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<OrderView>, ApiError> {
    let signer = signed_by(&state, &method, &uri, &headers, &body).await?;
    let request: Charge = terminal_body(&body, &signer, |r: &Charge| &r.terminal_id)?;
    let amount = amount_of(&request.amount, request.currency.as_deref())?;
    state
        .wallets
        .check_order_terminal(&request.charge_id, &signer)
        .await?;
    let order = state
        .wallets
        .charge(crate::payment_code::NewCharge {
            charge_id: request.charge_id,
            terminal_id: request.terminal_id,
            amount,
            code: request.code,
        })
        .await?;
    Ok(Json(order.into()))
}

async fn cancel_order(
    State(state): State<WalletApi>,
    Path(order_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<OrderView>, ApiError> {
    let signer = signed_by(&state, &method, &uri, &headers, &body).await?;
    let request: Cancel = terminal_body(&body, &signer, |r: &Cancel| &r.terminal_id)?;
    let amount = amount_of(&request.amount, request.currency.as_deref())?;
    state
        .wallets
        .check_order_terminal(&order_id, &signer)
        .await?;
    let order = state
        .wallets
        .cancel(&order_id, &request.terminal_id, amount)
        .await?;
    Ok(Json(order.into()))
}

/// A refund in full back to the paying wallet, by the merchant's administrator or manager (the
/// roles that approve refunds at the counter), with the API's credentials; another merchant's
/// order is `unknown_order`.
async fn refund_order(
    State(state): State<WalletApi>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    let principal = api::auth::principal(&state.api, &headers)
        .await
        .map_err(ApiError::Auth)?;
    let order = state.wallets.query(&order_id).await?;
    let user = &principal.user;
    let allowed = matches!(
        user.role,
        store::accounts::Role::MerchantAdmin | store::accounts::Role::MerchantManager
    ) && user.tenant == store::accounts::Tenant::Merchant(order.merchant_id.clone());
    if !allowed {
        return Err(WalletError::UnknownOrder.into());
    }
    Ok(Json(state.wallets.refund(&order_id).await?.into()))
}

/// Orders a merchant's record lists at most.
pub const MERCHANT_ORDER_LINES: u32 = 100;

/// A merchant's QR orders (both ways), newest first, for the merchant's own staff with the
/// API's credentials; another merchant is answered as unknown.
async fn merchant_orders(
    State(state): State<WalletApi>,
    headers: HeaderMap,
    Path(merchant_id): Path<String>,
) -> Result<Json<Vec<OrderView>>, ApiError> {
    let principal = api::auth::principal(&state.api, &headers)
        .await
        .map_err(ApiError::Auth)?;
    let user = &principal.user;
    let staff = matches!(
        user.role,
        store::accounts::Role::MerchantAdmin
            | store::accounts::Role::MerchantManager
            | store::accounts::Role::Cashier
    ) && user.tenant == store::accounts::Tenant::Merchant(merchant_id.clone());
    if !staff {
        return Err(WalletError::UnknownMerchant.into());
    }
    let orders = state
        .wallets
        .merchant_orders(&merchant_id, MERCHANT_ORDER_LINES)
        .await?;
    Ok(Json(orders.into_iter().map(OrderView::from).collect()))
}

async fn issue_code(
    State(state): State<WalletApi>,
    headers: HeaderMap,
    Path(wallet_id): Path<String>,
) -> Result<Json<PaymentCodeView>, ApiError> {
    let wallet = owner(&state, &headers, &wallet_id).await?;
    let issued = state.wallets.issue_code(&wallet.id).await?;
    Ok(Json(PaymentCodeView {
        code: issued.code,
        issued_at: issued.issued_at,
        expires_at: issued.expires_at,
    }))
}

async fn query_order(
    State(state): State<WalletApi>,
    Path(order_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<OrderView>, ApiError> {
    let signer = signed_by(&state, &method, &uri, &headers, &body).await?;
    let order = state.wallets.query(&order_id).await?;
    if order.record.terminal_id != signer {
        return Err(WalletError::UnknownOrder.into());
    }
    Ok(Json(order.into()))
}

async fn pay(
    State(state): State<WalletApi>,
    headers: HeaderMap,
    Json(request): Json<Pay>,
) -> Result<Json<OrderView>, ApiError> {
    owner(&state, &headers, &request.wallet_id).await?;
    let order = state
        .wallets
        .pay(&request.payload, &request.wallet_id, &request.password)
        .await?;
    Ok(Json(order.into()))
}

/// A wallet as its owner sees it: the balance and the latest orders it paid.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WalletView {
    pub wallet_id: String,
    pub balance: String,
    pub balance_minor: i64,
    pub currency: String,
    /// Newest first, at most [`HISTORY_LINES`].
    pub orders: Vec<OrderView>,
}

async fn wallet_view(
    State(state): State<WalletApi>,
    headers: HeaderMap,
    Path(wallet_id): Path<String>,
) -> Result<Json<WalletView>, ApiError> {
    let wallet = owner(&state, &headers, &wallet_id).await?;
    let balance = state.wallets.balance(&wallet.id).await?;
    let orders = state.wallets.history(&wallet.id, HISTORY_LINES).await?;
    Ok(Json(WalletView {
        wallet_id: wallet.id,
        balance: balance.format_major(),
        balance_minor: balance.minor(),
        currency: balance.currency().alpha().to_owned(),
        orders: orders.into_iter().map(OrderView::from).collect(),
    }))
}

async fn top_up(
    State(state): State<WalletApi>,
    headers: HeaderMap,
    Path(wallet_id): Path<String>,
    Json(request): Json<TopUp>,
) -> Result<Json<BalanceView>, ApiError> {
    let wallet = owner(&state, &headers, &wallet_id).await?;
    let wallets = &state.wallets;
    let amount =
        Amount::parse(&request.amount, wallet.currency).map_err(|_| bad(WalletError::BadAmount))?;
    let balance = wallets
        .top_up_with_password(&wallet_id, &request.top_up_id, amount, &request.password)
        .await?;
    Ok(Json(BalanceView {
        wallet_id,
        balance: balance.format_major(),
        balance_minor: balance.minor(),
        currency: balance.currency().alpha().to_owned(),
    }))
}
