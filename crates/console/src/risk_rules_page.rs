//! The risk rules page (issue 10): the acquirer's operators edit the rules in force (the whole
//! TOML, docs/risk.md) and see every version with who, when, why and what changed; Save makes
//! a new version, Roll back saves an earlier one again. The work is the API's
//! ([`api::risk_rules::save`], [`api::risk_rules::rollback`]): the same checks, the same audit
//! entries, and every host puts the new version in force within 2 seconds.

use super::{Visit, internal, render};
use crate::Console;
use api::access::{Principal, Resource};
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

/// The page's path.
const PATH: &str = "/console/risk-rules";
/// The rules are the acquirer's: only its platform operators may see them, and the journal
/// is the resource only they have.
const RESOURCE: Resource = Resource::Journal;

#[derive(Template)]
#[template(path = "risk_rules.html")]
struct RiskRulesPage {
    chrome: super::Chrome,
    /// The version the editor starts from (0 before any is stored).
    based_on: i64,
    /// The text in the editor: the version in force, or what the operator submitted when it
    /// was refused (so no edit is lost).
    toml: String,
    /// (version, by, when, note, rules, diff), newest first.
    versions: Vec<(i64, String, String, String, usize, String)>,
    message: String,
}

async fn page(
    console: &Console,
    visit: Visit,
    draft: Option<String>,
    message: String,
    status: StatusCode,
) -> Response {
    let versions = match console
        .api
        .store
        .risk_rule_versions(api::risk_rules::DEFAULT_VERSIONS_LISTED)
        .await
    {
        Ok(versions) => versions,
        Err(error) => return internal(&visit, &error),
    };
    let based_on = versions.first().map_or(0, |current| current.version);
    let toml = draft.unwrap_or_else(|| {
        versions
            .first()
            .map(|current| current.toml.clone())
            .unwrap_or_default()
    });
    // Each version's diff against the one listed after it (the one before it in time).
    let shown = versions
        .iter()
        .enumerate()
        .map(|(index, version)| {
            let previous = versions.get(index + 1).map_or("", |p| p.toml.as_str());
            (
                version.version,
                version.saved_by.clone(),
                api::time::rfc3339_seconds(version.saved_at),
                version.note.clone(),
                api::risk_rules::check_rules(&version.toml).map_or(0, |rules| rules.rules.len()),
                api::risk_rules::line_diff(previous, &version.toml),
            )
        })
        .collect();
    render(
        &RiskRulesPage {
            chrome: visit.chrome,
            based_on,
            toml,
            versions: shown,
            message,
        },
        status,
    )
}

pub async fn risk_rules(State(console): State<Console>, headers: HeaderMap) -> Response {
    match console.visit(&headers, Some(RESOURCE), PATH).await {
        Ok(visit) => page(&console, visit, None, String::new(), StatusCode::OK).await,
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
pub struct SaveForm {
    csrf: String,
    based_on: i64,
    toml: String,
    #[serde(default)]
    note: String,
}

pub async fn save(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<SaveForm>,
) -> Response {
    let visit = match console
        .form_visit(&headers, &form.csrf, RESOURCE, PATH)
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    // Browsers send CR LF in a textarea; the stored file keeps LF like the file on disk.
    let toml = form.toml.replace("\r\n", "\n");
    match api::risk_rules::save(
        &console.api,
        &principal,
        form.based_on,
        &toml,
        &form.note,
        "risk_rules.save",
    )
    .await
    {
        Ok(_) => Redirect::to(PATH).into_response(),
        Err(problem) => {
            let status = problem.status_code();
            page(&console, visit, Some(toml), problem.detail, status).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RollbackForm {
    csrf: String,
    version: i64,
    #[serde(default)]
    note: String,
}

pub async fn rollback(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<RollbackForm>,
) -> Response {
    let visit = match console
        .form_visit(&headers, &form.csrf, RESOURCE, PATH)
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    match api::risk_rules::rollback(&console.api, &principal, form.version, &form.note).await {
        Ok(_) => Redirect::to(PATH).into_response(),
        Err(problem) => {
            let status = problem.status_code();
            page(&console, visit, None, problem.detail, status).await
        }
    }
}
