//! Choosing a new password when an emergency reset requires it (docs/risk.md#emergency-actions):
//! [`Console::visit`] sends such a user here from every page; the new password must differ
//! from the old one and follow the password rules; the reset is then cleared and the change is
//! in the audit log.

use super::{Visit, internal, render};
use crate::Console;
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

/// Where a user who must choose a new password is sent.
pub const PASSWORD_PAGE: &str = "/console/password";

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    chrome: super::Chrome,
    /// Why a new password is needed: a first login, or the merchant's emergency reset.
    note: String,
    message: String,
}

async fn page(console: &Console, visit: Visit, message: String, status: StatusCode) -> Response {
    let reason = match console
        .api
        .store
        .password_reset_reason(&visit.user.id)
        .await
    {
        Ok(reason) => reason,
        Err(error) => return internal(&visit, &error),
    };
    let note = if reason.as_deref() == Some(store::password_resets::FIRST_LOGIN_REASON) {
        "password-note-first"
    } else {
        "password-note"
    };
    render(
        &PasswordPage {
            note: visit.chrome.t.get(note),
            chrome: visit.chrome,
            message,
        },
        status,
    )
}

pub async fn form(State(console): State<Console>, headers: HeaderMap) -> Response {
    match console.visit(&headers, None, PASSWORD_PAGE).await {
        Ok(visit) => page(&console, visit, String::new(), StatusCode::OK).await,
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    csrf: String,
    password: String,
    again: String,
}

pub async fn change(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    let visit = match console.password_form_visit(&headers, &form.csrf).await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let t = visit.chrome.t;
    if form.password != form.again {
        return page(
            &console,
            visit,
            t.get("password-mismatch"),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let (old, new) = (visit.user.password_hash.clone(), form.password.clone());
    let hashed = tokio::task::spawn_blocking(move || {
        if store::accounts::verify_password(&old, &new) {
            return Ok(None);
        }
        store::accounts::hash_password(&new).map(Some)
    })
    .await;
    let hash = match hashed {
        Ok(Ok(Some(hash))) => hash,
        Ok(Ok(None)) => {
            return page(
                &console,
                visit,
                t.get("password-same"),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
        Ok(Err(error)) => {
            return page(&console, visit, error.to_string(), StatusCode::BAD_REQUEST).await;
        }
        Err(error) => return internal(&visit, &error),
    };
    match console
        .api
        .store
        .change_password(&visit.user.id, &hash)
        .await
    {
        Ok(true) => {}
        Ok(false) => return internal(&visit, &"the user is gone"),
        Err(error) => return internal(&visit, &error),
    }
    let tenant = api::audit::tenant_label(&visit.user.tenant);
    if let Err(problem) = console
        .api
        .audit(
            &visit.user,
            "user.password_change",
            &format!("user:{}", visit.user.username),
            "",
            tenant,
        )
        .await
    {
        return problem.into_response();
    }
    Redirect::to(super::procedures_page::landing(&console, &visit.user).await).into_response()
}
