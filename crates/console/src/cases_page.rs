//! The case queue's pages (issue 10): the list of what the risk rules flagged, and a case with
//! forms to comment, assign and resolve it. The work itself is the API's
//! ([`api::cases::assign`], [`api::cases::comment`], [`api::cases::resolve`]), so the rules
//! (who may see, assign, block) and the audit entries are the same on both.

use super::{Visit, error_page, internal, render};
use crate::Console;
use api::access::{Principal, Resource};
use api::cases::{CaseDetail, CaseView, Resolution};
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use store::accounts::Role;
use store::cases::{CaseQuery, MAX_CASES_LISTED};

/// A case as a row or a page shows it.
#[derive(Clone, Debug)]
pub struct CaseRow {
    pub id: i64,
    pub opened: String,
    pub severity: String,
    pub merchant: String,
    pub terminal: String,
    pub card: String,
    pub rules: String,
    pub hits: i64,
    pub status: String,
    pub open: bool,
    pub assignee: String,
    pub outcome: String,
}

impl CaseRow {
    fn new(case: &CaseView) -> CaseRow {
        CaseRow {
            id: case.id,
            opened: api::time::rfc3339_seconds(case.opened_at),
            severity: case.severity.clone(),
            merchant: case.merchant_id.clone(),
            terminal: case.terminal_id.clone(),
            card: case.card.clone(),
            rules: case.rules.clone(),
            hits: case.hits,
            status: case.status.clone(),
            open: case.status == "open",
            assignee: case.assignee.clone(),
            outcome: case.outcome.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "cases.html")]
struct CasesPage {
    chrome: super::Chrome,
    cases: Vec<CaseRow>,
}

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    chrome: super::Chrome,
    case: CaseRow,
    /// (time, author, text)
    comments: Vec<(String, String, String)>,
    can_block_card: bool,
    message: String,
}

pub async fn cases(State(console): State<Console>, headers: HeaderMap) -> Response {
    let (visit, scope) = match console
        .scoped_visit(&headers, Resource::Cases, "/console/cases")
        .await
    {
        Ok(found) => found,
        Err(response) => return response,
    };
    let listed = console
        .api
        .store
        .cases(CaseQuery {
            merchants: Some(scope.merchants.iter().map(|m| m.id.clone()).collect()),
            status: None,
            limit: MAX_CASES_LISTED,
        })
        .await;
    let directory = console.api.store.load_directory().await;
    let (listed, directory) = match (listed, directory) {
        (Ok(listed), Ok(directory)) => (listed, directory),
        (Err(error), _) | (_, Err(error)) => return internal(&visit, &error),
    };
    let cases = listed
        .iter()
        .map(|case| CaseRow::new(&CaseView::new(case, &directory)))
        .collect();
    render(
        &CasesPage {
            chrome: visit.chrome,
            cases,
        },
        StatusCode::OK,
    )
}

fn case_page(visit: Visit, detail: CaseDetail, message: String, status: StatusCode) -> Response {
    let can_block_card = visit.user.role == Role::PlatformOperator;
    let page = CasePage {
        case: CaseRow::new(&detail.case),
        comments: detail
            .comments
            .iter()
            .map(|comment| {
                (
                    api::time::rfc3339_seconds(comment.at),
                    comment.author.clone(),
                    comment.text.clone(),
                )
            })
            .collect(),
        can_block_card,
        message,
        chrome: visit.chrome,
    };
    render(&page, status)
}

pub async fn case(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let visit = match console
        .visit(&headers, Some(Resource::Cases), "/console/cases")
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    match api::cases::visible_case(&console.api, &principal, &id).await {
        Ok(found) => case_page(visit, found.detail, String::new(), StatusCode::OK),
        Err(problem) => error_page(visit.chrome, problem.status_code()),
    }
}

/// A case form's fields (each form sends its own).
#[derive(Debug, Deserialize)]
pub struct CaseForm {
    csrf: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    reason: String,
}

/// What a form asks of the case.
#[derive(Clone, Copy, Debug)]
enum CaseAction {
    Comment,
    Assign,
    Resolve,
}

async fn act(
    console: Console,
    headers: HeaderMap,
    id: String,
    form: CaseForm,
    action: CaseAction,
) -> Response {
    let visit = match console
        .form_visit(&headers, &form.csrf, Resource::Cases, "/console/cases")
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    let done = match action {
        CaseAction::Comment => api::cases::comment(&console.api, &principal, &id, &form.text).await,
        CaseAction::Assign => {
            api::cases::assign(&console.api, &principal, &id, &form.assignee).await
        }
        CaseAction::Resolve => {
            let resolution = Resolution {
                outcome: form.outcome,
                reason: form.reason,
            };
            api::cases::resolve(&console.api, &principal, &id, &resolution).await
        }
    };
    match done {
        Ok(_) => Redirect::to(&format!("/console/cases/{id}")).into_response(),
        // The case as it stands, with what went wrong.
        Err(problem) => {
            let status = problem.status_code();
            match api::cases::visible_case(&console.api, &principal, &id).await {
                Ok(found) => case_page(visit, found.detail, problem.detail, status),
                Err(_) => error_page(visit.chrome, status),
            }
        }
    }
}

pub async fn comment(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CaseForm>,
) -> Response {
    act(console, headers, id, form, CaseAction::Comment).await
}

pub async fn assign(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CaseForm>,
) -> Response {
    act(console, headers, id, form, CaseAction::Assign).await
}

pub async fn resolve(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CaseForm>,
) -> Response {
    act(console, headers, id, form, CaseAction::Resolve).await
}
