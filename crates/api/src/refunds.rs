//! Refunds through the API (issue 9, R9; `aftersale::refunds`, docs/aftersale.md): the
//! merchant's staff refund a card sale in full or in parts; above the approval threshold a
//! manager or administrator other than the one who asked approves; a cardholder asks for a
//! refund, which the merchant accepts or declines with a reason. Every change is in the audit
//! log. A refund is seen by whoever may see its sale (others get 404).

use crate::ApiState;
use crate::access::{Principal, Resource, Scope};
use crate::problem::Problem;
use crate::routes::require;
use crate::views::{AmountView, Page};
use aftersale::refunds::{Actor, ActorRole, RefundError, Refunds};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use store::accounts::{Role, TransactionRecord};
use store::refunds::Refund;

type ApiResult<T> = Result<T, Problem>;

/// A refund part or a cardholder's request, as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RefundView {
    pub id: String,
    pub transaction_id: String,
    pub merchant_id: String,
    /// `request` (a cardholder's) or `refund` (a part the merchant made).
    pub kind: &'static str,
    /// The part's number among the sale's refunds; `null` for a request.
    pub part: Option<i64>,
    /// The cardholder's request this part answers.
    pub request_id: Option<String>,
    pub amount: Option<AmountView>,
    pub status: String,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    /// `00` when posted; the acquirer's code and reason when it refused (`58: frozen
    /// refunds`); the merchant's reason when declined.
    pub response: Option<String>,
}

impl From<&Refund> for RefundView {
    fn from(refund: &Refund) -> Self {
        let text = |value: &str| (!value.is_empty()).then(|| value.to_owned());
        let currency = u16::try_from(refund.currency)
            .ok()
            .and_then(|numeric| money::Currency::from_numeric(numeric).ok());
        RefundView {
            id: refund.id.clone(),
            transaction_id: refund.transaction_id.to_string(),
            merchant_id: refund.merchant_id.clone(),
            kind: if refund.seq == 0 { "request" } else { "refund" },
            part: (refund.seq > 0).then_some(refund.seq),
            request_id: text(&refund.request_id),
            amount: currency.map(|currency| AmountView::new(refund.amount_minor, currency)),
            status: refund.status.clone(),
            reason: refund.reason.clone(),
            requested_by: refund.requested_by.clone(),
            requested_at: crate::time::rfc3339_seconds(refund.requested_at),
            decided_by: text(&refund.decided_by),
            decided_at: refund.decided_at.map(crate::time::rfc3339_seconds),
            response: text(&refund.response),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRefund {
    pub amount_minor: i64,
    pub reason: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acceptance {
    /// Less than the cardholder asked for; the whole request when absent.
    pub amount_minor: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decline {
    pub reason: String,
}

#[derive(Debug, Deserialize)]
pub struct RefundListQuery {
    pub status: Option<String>,
}

impl From<RefundError> for Problem {
    fn from(error: RefundError) -> Self {
        let detail = error.to_string();
        match error {
            RefundError::NotRefundable(_) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not-refundable",
                "Not refundable",
                detail,
            ),
            RefundError::OverCaptured { .. } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "refund-exceeds-captured",
                "More than is left to refund",
                detail,
            ),
            RefundError::Invalid(_) => Problem::bad_request(detail),
            RefundError::Forbidden(_) => Problem::forbidden(detail),
            RefundError::Conflict(_) => Problem::new(
                StatusCode::CONFLICT,
                "refund-state",
                "Not in a state that allows this",
                detail,
            ),
            RefundError::Store(error) => Problem::internal(&error),
            RefundError::Unavailable(error) => {
                tracing::error!(%error, "refund not posted");
                unavailable(
                    "the acquirer could not post the refund now; retry later (an approved refund is posted again by approving it again)",
                )
            }
        }
    }
}

fn unavailable(detail: &str) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "refunds-unavailable",
        "Refunds unavailable",
        detail,
    )
}

fn refunds(state: &ApiState) -> ApiResult<&Arc<Refunds>> {
    state.refunds.as_ref().ok_or_else(|| {
        unavailable("this server posts no refunds: it runs without the acquirer host")
    })
}

/// How the caller acts on refunds: merchant staff and the cardholder; others only look.
fn actor(principal: &Principal) -> ApiResult<Actor> {
    let role = match principal.user.role {
        Role::Cashier => ActorRole::Cashier,
        Role::MerchantManager | Role::MerchantAdmin => ActorRole::Supervisor,
        Role::Cardholder => ActorRole::Cardholder,
        _ => {
            return Err(Problem::forbidden(
                "refunds are made by the merchant's staff and asked for by the cardholder",
            ));
        }
    };
    Ok(Actor {
        username: principal.user.username.clone(),
        role,
    })
}

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes, shape: &str) -> ApiResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|error| Problem::bad_request(format!("the body must be {shape}: {error}")))
}

/// The refund `id` and its sale, if the caller may see the sale.
async fn visible_refund(
    state: &ApiState,
    principal: &Principal,
    id: &str,
) -> ApiResult<(Refund, TransactionRecord)> {
    let not_found = || Problem::not_found(format!("no refund {id:?} that you may see"));
    let refund = state.store.refund(id).await?.ok_or_else(not_found)?;
    let sale =
        crate::routes::visible_transaction(state, principal, &refund.transaction_id.to_string())
            .await
            .map_err(|problem| match problem.status {
                404 => not_found(),
                _ => problem,
            })?;
    Ok((refund, sale))
}

async fn audited(
    state: &ApiState,
    principal: &Principal,
    action: &str,
    refund: &Refund,
) -> ApiResult<()> {
    let detail = format!(
        "transaction {} amount_minor {} status {}",
        refund.transaction_id, refund.amount_minor, refund.status
    );
    state
        .audit(
            &principal.user,
            action,
            &format!("refund:{}", refund.id),
            &detail,
            crate::audit::merchant_label(&refund.merchant_id),
        )
        .await?;
    Ok(())
}

/// `POST /api/v1/transactions/{id}/refunds`: the merchant's staff refund (201, `refunded`,
/// `pending_approval` or `failed`); the cardholder asks (201, `requested`).
pub async fn create_refund(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<RefundView>)> {
    let new: NewRefund = body(&bytes, "{\"amount_minor\": 1250, \"reason\": \"why\"}")?;
    let refund = refund_sale(&state, &principal, &id, new.amount_minor, &new.reason).await?;
    Ok((StatusCode::CREATED, Json(RefundView::from(&refund))))
}

/// A refund of sale `id` by `principal` (the API's caller or the console's user), audited.
pub async fn refund_sale(
    state: &ApiState,
    principal: &Principal,
    id: &str,
    amount_minor: i64,
    reason: &str,
) -> ApiResult<Refund> {
    let actor = actor(principal)?;
    let sale = crate::routes::visible_transaction(state, principal, id).await?;
    let refund = refunds(state)?
        .ask(&sale, &actor, amount_minor, reason, state.now_seconds())
        .await?;
    let action = if refund.seq == 0 {
        "refund.request"
    } else {
        "refund.create"
    };
    audited(state, principal, action, &refund).await?;
    Ok(refund)
}

/// `GET /api/v1/transactions/{id}/refunds`: the sale's refunds and requests, oldest first.
pub async fn list_transaction_refunds(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<Page<RefundView>>> {
    let sale = crate::routes::visible_transaction(&state, &principal, &id).await?;
    let found = state.store.refunds_of_transaction(sale.id).await?;
    Ok(Json(Page {
        data: found.iter().map(RefundView::from).collect(),
        next_cursor: None,
    }))
}

/// `GET /api/v1/refunds?status=`: the caller's merchants' refunds and requests, newest first
/// (the merchant's staff, e.g. `?status=pending_approval` for a manager's queue, and the
/// acquirer's operators).
pub async fn list_refunds(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    query: Result<Query<RefundListQuery>, QueryRejection>,
) -> ApiResult<Json<Page<RefundView>>> {
    require(&principal, Resource::Merchants)?;
    let Query(query) = query.map_err(|error| Problem::bad_request(error.body_text()))?;
    const STATUSES: [&str; 7] = [
        "requested",
        "accepted",
        "pending_approval",
        "approved",
        "refunded",
        "declined",
        "failed",
    ];
    if let Some(status) = &query.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(Problem::bad_request(format!(
            "status: one of {}",
            STATUSES.join(", ")
        )));
    }
    let scope = Scope::of(&state.store, &principal.user).await?;
    let merchants = scope
        .merchants
        .iter()
        .map(|merchant| merchant.id.clone())
        .collect();
    let found = state
        .store
        .refunds_of_merchants(merchants, query.status)
        .await?;
    Ok(Json(Page {
        data: found.iter().map(RefundView::from).collect(),
        next_cursor: None,
    }))
}

/// `GET /api/v1/refunds/{id}`.
pub async fn get_refund(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<RefundView>> {
    let (refund, _) = visible_refund(&state, &principal, &id).await?;
    Ok(Json(RefundView::from(&refund)))
}

/// What is done to a refund or request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundAction {
    Approve,
    Accept { amount_minor: Option<i64> },
    Decline { reason: String },
}

/// Does `action` to refund `id` for `principal` (the API's caller or the console's user),
/// audited: the refund as it is now (for an acceptance, the part it made).
pub async fn act_on_refund(
    state: &ApiState,
    principal: &Principal,
    id: &str,
    action: RefundAction,
) -> ApiResult<Refund> {
    let actor = actor(principal)?;
    let (refund, sale) = visible_refund(state, principal, id).await?;
    let refunds = refunds(state)?;
    let now = state.now_seconds();
    let (audit, refund) = match action {
        RefundAction::Approve => (
            "refund.approve",
            refunds.approve(&sale, refund, &actor, now).await?,
        ),
        RefundAction::Accept { amount_minor } => (
            "refund.accept",
            refunds
                .accept(&sale, refund, &actor, amount_minor, now)
                .await?,
        ),
        RefundAction::Decline { reason } => (
            "refund.decline",
            refunds.decline(refund, &actor, &reason, now).await?,
        ),
    };
    audited(state, principal, audit, &refund).await?;
    Ok(refund)
}

/// `POST /api/v1/refunds/{id}/approve`: a manager or administrator other than the one who
/// asked; the refund is posted at once.
pub async fn approve_refund(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<RefundView>> {
    let refund = act_on_refund(&state, &principal, &id, RefundAction::Approve).await?;
    Ok(Json(RefundView::from(&refund)))
}

/// `POST /api/v1/refunds/{id}/accept`: the merchant accepts a cardholder's request (201 with
/// the refund part it made).
pub async fn accept_refund(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<RefundView>)> {
    let acceptance: Acceptance = if bytes.is_empty() {
        Acceptance::default()
    } else {
        body(&bytes, "{} or {\"amount_minor\": 1000}")?
    };
    let action = RefundAction::Accept {
        amount_minor: acceptance.amount_minor,
    };
    let part = act_on_refund(&state, &principal, &id, action).await?;
    Ok((StatusCode::CREATED, Json(RefundView::from(&part))))
}

/// `POST /api/v1/refunds/{id}/decline`: the merchant declines a cardholder's request, or a
/// manager or administrator a refund pending approval, with the reason.
pub async fn decline_refund(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<RefundView>> {
    let decline: Decline = body(&bytes, "{\"reason\": \"why\"}")?;
    let action = RefundAction::Decline {
        reason: decline.reason,
    };
    let refund = act_on_refund(&state, &principal, &id, action).await?;
    Ok(Json(RefundView::from(&refund)))
}
