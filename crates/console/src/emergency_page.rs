//! The emergency page (issue 10, R16/R18): one form to freeze a terminal, the whole merchant or
//! all its refunds at once, with a reason, and the freezes in force with a button to lift
//! each. The work is the API's ([`api::routes::put_freeze`], [`api::routes::lift_freeze`]):
//! the same rights, the same effect on the host's next authorization, the same audit entries.

use super::{Visit, internal, render};
use crate::Console;
use api::access::{Principal, Resource};
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "emergency.html")]
struct EmergencyPage {
    chrome: super::Chrome,
    /// (`scope:target`, label) of what the user may freeze.
    choices: Vec<(String, String)>,
    /// (`scope:target`, reason, by, when) of the freezes in force.
    freezes: Vec<(String, String, String, String)>,
    /// Terminal ids whose keys the user may force to change.
    terminals: Vec<String>,
    /// Merchant ids whose staff the user may make choose new passwords (admins, operators).
    merchants: Vec<String>,
    message: String,
}

async fn page(console: &Console, visit: Visit, message: String, status: StatusCode) -> Response {
    let scope = match console.scope(&visit).await {
        Ok(scope) => scope,
        Err(response) => return response,
    };
    let t = visit.chrome.t;
    let terminals = scope.terminals.iter().map(|t| t.id.clone()).collect();
    let merchants = if visit.user.role == store::accounts::Role::MerchantManager {
        Vec::new()
    } else {
        scope.merchants.iter().map(|m| m.id.clone()).collect()
    };
    let mut choices = Vec::new();
    for merchant in &scope.merchants {
        for terminal in scope
            .terminals
            .iter()
            .filter(|terminal| terminal.merchant_id == merchant.id)
        {
            choices.push((
                format!("terminal:{}", terminal.id),
                format!("{} {}", t.get("emergency-terminal"), terminal.id),
            ));
        }
        choices.push((
            format!("refunds:{}", merchant.id),
            format!("{} {}", t.get("emergency-refunds"), merchant.id),
        ));
        choices.push((
            format!("merchant:{}", merchant.id),
            format!("{} {}", t.get("emergency-merchant"), merchant.id),
        ));
    }
    let freezes = match console.api.store.freezes().await {
        Ok(freezes) => freezes,
        Err(error) => return internal(&visit, &error),
    };
    let freezes = freezes
        .iter()
        .filter(|freeze| match freeze.scope.as_str() {
            "terminal" => scope.terminal(&freeze.target).is_some(),
            "merchant" | "refunds" => scope.merchant(&freeze.target).is_some(),
            _ => false,
        })
        .map(|freeze| {
            (
                format!("{}:{}", freeze.scope, freeze.target),
                freeze.reason.clone(),
                freeze.frozen_by.clone(),
                api::time::rfc3339_seconds(freeze.frozen_at),
            )
        })
        .collect();
    render(
        &EmergencyPage {
            chrome: visit.chrome,
            choices,
            freezes,
            terminals,
            merchants,
            message,
        },
        status,
    )
}

pub async fn emergency(State(console): State<Console>, headers: HeaderMap) -> Response {
    match console
        .visit(&headers, Some(Resource::Freezes), "/console/emergency")
        .await
    {
        Ok(visit) => page(&console, visit, String::new(), StatusCode::OK).await,
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
pub struct FreezeForm {
    csrf: String,
    /// `scope:target`.
    target: String,
    #[serde(default)]
    reason: String,
}

async fn act(console: Console, headers: HeaderMap, form: FreezeForm, freeze: bool) -> Response {
    let visit = match console
        .form_visit(
            &headers,
            &form.csrf,
            Resource::Freezes,
            "/console/emergency",
        )
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    let Some((scope, target)) = form.target.split_once(':') else {
        let message = format!("{:?}: choose what to freeze", form.target);
        return page(&console, visit, message, StatusCode::BAD_REQUEST).await;
    };
    let done = if freeze {
        api::routes::put_freeze(&console.api, &principal, scope, target, &form.reason)
            .await
            .map(|_| ())
    } else {
        api::routes::lift_freeze(&console.api, &principal, scope, target).await
    };
    match done {
        Ok(()) => Redirect::to("/console/emergency").into_response(),
        Err(problem) => {
            let status = problem.status_code();
            page(&console, visit, problem.detail, status).await
        }
    }
}

pub async fn freeze(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<FreezeForm>,
) -> Response {
    act(console, headers, form, true).await
}

pub async fn thaw(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<FreezeForm>,
) -> Response {
    act(console, headers, form, false).await
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: String,
    /// A terminal id (key change) or a merchant id (password reset).
    target: String,
    #[serde(default)]
    reason: String,
}

/// What an action form asks.
#[derive(Clone, Copy, Debug)]
enum Action {
    KeyChange,
    PasswordReset,
}

async fn emergency_action(
    console: Console,
    headers: HeaderMap,
    form: ActionForm,
    action: Action,
) -> Response {
    let visit = match console
        .form_visit(
            &headers,
            &form.csrf,
            Resource::Freezes,
            "/console/emergency",
        )
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    let t = visit.chrome.t;
    let done = match action {
        Action::KeyChange => {
            api::emergency::force_key_change(&console.api, &principal, &form.target, &form.reason)
                .await
                .map(|_| format!("{} {}", t.get("emergency-key-change-done"), form.target))
        }
        Action::PasswordReset => api::emergency::force_password_reset(
            &console.api,
            &principal,
            &form.target,
            &form.reason,
        )
        .await
        .map(|reset| {
            format!(
                "{} {}",
                t.get("emergency-password-reset-done"),
                reset.users.join(", ")
            )
        }),
    };
    match done {
        Ok(message) => page(&console, visit, message, StatusCode::OK).await,
        Err(problem) => {
            let status = problem.status_code();
            page(&console, visit, problem.detail, status).await
        }
    }
}

pub async fn key_change(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    emergency_action(console, headers, form, Action::KeyChange).await
}

pub async fn password_reset(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    emergency_action(console, headers, form, Action::PasswordReset).await
}
