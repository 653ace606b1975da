//! Terminal management in the console (issue 11): the terminals onboarding created, with
//! model, serial number, location and status, for the acquirer's operators (all) and a
//! merchant's admin and manager (theirs). A terminal can be suspended, resumed, reported lost
//! or stolen (the host declines it from its next message), retired, provisioned again when
//! found, given a new one-time activation code, or have its key changed (a new master key,
//! delivered by a new activation). No key is ever shown.

use crate::Console;
use crate::pages::{Chrome, checked_session, csrf_refused, error_page, lang_of, render};
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use onboarding::service::OnboardingError;
use onboarding::terminals::{TerminalDetails, TerminalStatus};
use serde::Deserialize;

#[derive(Clone, Debug)]
pub struct FleetRow {
    pub details: TerminalDetails,
    pub status: String,
    /// The statuses an operator may move it to, with their labels.
    pub moves: Vec<(String, String)>,
    pub can_issue_code: bool,
    /// Whether a key change may be forced (provisioned, active or suspended).
    pub can_rekey: bool,
}

#[derive(Template)]
#[template(path = "fleet.html")]
struct FleetPage {
    chrome: Chrome,
    rows: Vec<FleetRow>,
    message: String,
    code: String,
}

fn label(chrome: &Chrome, status: TerminalStatus) -> String {
    chrome.t.get(&format!("fleet-status-{}", status.as_str()))
}

async fn page(console: &Console, headers: &HeaderMap, message: String, code: String) -> Response {
    let visit = match console.visit(headers, None, "/console/fleet").await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let Some(onboarding) = console.onboarding.as_ref() else {
        return error_page(visit.chrome, StatusCode::NOT_FOUND);
    };
    let principal = api::access::Principal {
        user: visit.user.clone(),
    };
    let terminals = match onboarding.terminals(&principal, None).await {
        Ok(terminals) => terminals,
        Err(error) => {
            tracing::error!(%error, "console: terminal list failed");
            return error_page(visit.chrome, StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let rows = terminals
        .into_iter()
        .map(|details| FleetRow {
            status: label(&visit.chrome, details.status),
            moves: TerminalStatus::ALL
                .into_iter()
                .filter(|to| details.status.may_become(*to))
                .map(|to| (to.as_str().to_owned(), label(&visit.chrome, to)))
                .collect(),
            can_issue_code: details.status == TerminalStatus::Provisioned,
            can_rekey: matches!(
                details.status,
                TerminalStatus::Provisioned | TerminalStatus::Active | TerminalStatus::Suspended
            ),
            details,
        })
        .collect();
    render(
        &FleetPage {
            chrome: visit.chrome,
            rows,
            message,
            code,
        },
        StatusCode::OK,
    )
}

/// `GET /console/fleet`.
pub async fn show(State(console): State<Console>, headers: HeaderMap) -> Response {
    page(&console, &headers, String::new(), String::new()).await
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: String,
    /// A status to move to, or `code` for a new activation code.
    action: String,
}

/// `POST /console/fleet/{id}`.
pub async fn act(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let lang = lang_of(&headers);
    if checked_session(&console, &headers, &form.csrf).is_none() {
        return csrf_refused(lang);
    }
    let visit = match console.visit(&headers, None, "/console/fleet").await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let Some(onboarding) = console.onboarding.as_ref() else {
        return error_page(visit.chrome, StatusCode::NOT_FOUND);
    };
    let principal = api::access::Principal {
        user: visit.user.clone(),
    };
    let t = visit.chrome.t;
    let outcome = if form.action == "code" {
        onboarding
            .issue_code(&principal, &id)
            .await
            .map(|(code, _)| Some(code))
    } else if form.action == "rekey" {
        onboarding
            .force_key_change(&principal, &id)
            .await
            .map(|(code, _)| Some(code))
    } else {
        match TerminalStatus::parse(&form.action) {
            Some(to) => onboarding
                .set_status(&principal, &id, to)
                .await
                .map(|_| None),
            None => return error_page(visit.chrome, StatusCode::BAD_REQUEST),
        }
    };
    let (message, code) = match outcome {
        Ok(Some(code)) => (t.get("fleet-code-issued"), code),
        Ok(None) => (t.get("fleet-changed"), String::new()),
        Err(OnboardingError::UnknownTerminal) => {
            return error_page(visit.chrome, StatusCode::NOT_FOUND);
        }
        Err(OnboardingError::TerminalStatus(_) | OnboardingError::Conflict) => {
            (t.get("fleet-refused"), String::new())
        }
        Err(error) => {
            tracing::error!(%error, "console: terminal action failed");
            return error_page(visit.chrome, StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    page(&console, &headers, message, code).await
}
