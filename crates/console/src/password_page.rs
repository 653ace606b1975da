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
    message: String,
}

fn page(visit: Visit, message: String, status: StatusCode) -> Response {
    render(
        &PasswordPage {
            chrome: visit.chrome,
            message,
        },
        status,
    )
}

pub async fn form(State(console): State<Console>, headers: HeaderMap) -> Response {
    match console.visit(&headers, None, PASSWORD_PAGE).await {
        Ok(visit) => page(visit, String::new(), StatusCode::OK),
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
        return page(visit, t.get("password-mismatch"), StatusCode::BAD_REQUEST);
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
        Ok(Ok(None)) => return page(visit, t.get("password-same"), StatusCode::BAD_REQUEST),
        Ok(Err(error)) => return page(visit, error.to_string(), StatusCode::BAD_REQUEST),
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
