//! The refunds page (issue 9, R9): the merchant's staff refund a sale in full or in part, see
//! their merchant's refunds and the cardholders' requests, and act on them — a manager or
//! administrator approves a refund above the threshold that someone else asked for, staff
//! accept or decline a cardholder's request with a reason. The work is the API's
//! ([`api::refunds::refund_sale`], [`api::refunds::act_on_refund`]): the same rules, the same
//! posting through the acquirer, the same audit entries.

use super::{Visit, internal, render};
use crate::Console;
use api::access::{Principal, Resource};
use api::refunds::{RefundAction, RefundView};
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "refunds.html")]
struct RefundsPage {
    chrome: super::Chrome,
    refunds: Vec<RefundView>,
    /// Whether the user makes refunds and answers requests (merchant staff), or only looks.
    acts: bool,
    /// Whether the user approves and declines refunds pending approval (a merchant manager or
    /// administrator).
    approves: bool,
    /// The threshold above which a refund waits for approval, in major units per currency.
    approval_above: String,
    message: String,
}

async fn page(console: &Console, visit: Visit, message: String, status: StatusCode) -> Response {
    let scope = match console.scope(&visit).await {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let merchants = scope
        .merchants
        .iter()
        .map(|merchant| merchant.id.clone())
        .collect();
    let refunds = match console
        .api
        .store
        .refunds_of_merchants(merchants, None)
        .await
    {
        Ok(refunds) => refunds,
        Err(error) => return internal(&visit, &error),
    };
    let acts = matches!(
        visit.user.role,
        store::accounts::Role::Cashier
            | store::accounts::Role::MerchantManager
            | store::accounts::Role::MerchantAdmin
    );
    let approves = matches!(
        visit.user.role,
        store::accounts::Role::MerchantManager | store::accounts::Role::MerchantAdmin
    );
    let approval_above = console
        .api
        .refunds
        .as_ref()
        .map(|refunds| refunds.approval_above_minor().to_string())
        .unwrap_or_default();
    render(
        &RefundsPage {
            chrome: visit.chrome,
            refunds: refunds.iter().map(RefundView::from).collect(),
            acts,
            approves,
            approval_above,
            message,
        },
        status,
    )
}

pub async fn refunds(State(console): State<Console>, headers: HeaderMap) -> Response {
    match console
        .visit(&headers, Some(Resource::Merchants), "/console/refunds")
        .await
    {
        Ok(visit) => page(&console, visit, String::new(), StatusCode::OK).await,
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
pub struct RefundForm {
    csrf: String,
    /// A new refund: the sale's transaction id and the amount in minor units.
    #[serde(default)]
    transaction: String,
    #[serde(default)]
    amount_minor: String,
    /// `approve`, `accept` or `decline` on an existing refund.
    #[serde(default)]
    action: String,
    #[serde(default)]
    reason: String,
}

async fn form_visit(console: &Console, headers: &HeaderMap, csrf: &str) -> Result<Visit, Response> {
    console
        .form_visit(headers, csrf, Resource::Merchants, "/console/refunds")
        .await
}

async fn outcome(
    console: Console,
    visit: Visit,
    done: Result<store::refunds::Refund, api::problem::Problem>,
) -> Response {
    match done {
        Ok(_) => Redirect::to("/console/refunds").into_response(),
        Err(problem) => {
            let status = problem.status_code();
            page(&console, visit, problem.detail, status).await
        }
    }
}

/// `POST /console/refunds`: a new refund of a sale.
pub async fn create(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<RefundForm>,
) -> Response {
    let visit = match form_visit(&console, &headers, &form.csrf).await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let Ok(amount_minor) = form.amount_minor.trim().parse::<i64>() else {
        let message = format!(
            "{:?}: give the amount in minor units (fen), e.g. 1250 for 12.50",
            form.amount_minor
        );
        return page(&console, visit, message, StatusCode::BAD_REQUEST).await;
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    let done = api::refunds::refund_sale(
        &console.api,
        &principal,
        form.transaction.trim(),
        amount_minor,
        &form.reason,
    )
    .await;
    outcome(console, visit, done).await
}

/// `POST /console/refunds/{id}`: approve, accept or decline a refund or request.
pub async fn act(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RefundForm>,
) -> Response {
    let visit = match form_visit(&console, &headers, &form.csrf).await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let action = match form.action.as_str() {
        "approve" => RefundAction::Approve,
        "accept" => RefundAction::Accept { amount_minor: None },
        "decline" => RefundAction::Decline {
            reason: form.reason,
        },
        other => {
            let message = format!("{other:?}: approve, accept or decline");
            return page(&console, visit, message, StatusCode::BAD_REQUEST).await;
        }
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    let done = api::refunds::act_on_refund(&console.api, &principal, &id, action).await;
    outcome(console, visit, done).await
}
