//! Incident pages (issue 10, R15): the list (with the form a merchant's admin or manager opens
//! one with), and an incident with its links, its thread, a form for a message with an
//! optional attachment (`multipart/form-data`), and the status moves the visitor may make.
//! The work is the API's ([`api::incidents`]): the same rights, checks, partner notification
//! and audit entries.

use super::{Visit, error_page, internal, render};
use crate::Console;
use api::access::{Principal, Resource};
use api::incidents::{IncidentDetail, IncidentSummary, Opening, StatusChange, Upload};
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use store::accounts::{Role, Tenant};

/// An incident as a row shows it.
#[derive(Clone, Debug)]
pub struct IncidentRow {
    pub id: i64,
    pub opened: String,
    pub opened_by: String,
    pub severity: String,
    pub title: String,
    pub merchant: String,
    pub status: String,
    pub due: String,
    pub breached: bool,
}

impl IncidentRow {
    fn new(summary: &IncidentSummary) -> IncidentRow {
        let incident = &summary.incident;
        IncidentRow {
            id: incident.id,
            opened: api::time::rfc3339_seconds(incident.opened_at),
            opened_by: incident.opened_by.clone(),
            severity: incident.severity.clone(),
            title: incident.title.clone(),
            merchant: incident.merchant_id.clone(),
            status: incident.status.clone(),
            due: api::time::rfc3339_seconds(incident.response_due_at),
            breached: summary.response_breached,
        }
    }
}

#[derive(Template)]
#[template(path = "incidents.html")]
struct IncidentsPage {
    chrome: super::Chrome,
    incidents: Vec<IncidentRow>,
    can_open: bool,
    message: String,
}

/// A message of the thread: (seq, time, author, text, attachment name, type and bytes).
type ThreadLine = (i64, String, String, String, Option<(String, String, i64)>);

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage {
    chrome: super::Chrome,
    incident: IncidentRow,
    acknowledged: String,
    partners: String,
    transactions: Vec<String>,
    cases: Vec<i64>,
    thread: Vec<ThreadLine>,
    open: bool,
    /// (status, label id) of the moves the visitor may make now.
    moves: Vec<(&'static str, &'static str)>,
    message: String,
}

fn may_open(visit: &Visit) -> bool {
    matches!(visit.user.tenant, Tenant::Merchant(_))
        && matches!(visit.user.role, Role::MerchantAdmin | Role::MerchantManager)
}

async fn list_page(
    console: &Console,
    visit: Visit,
    message: String,
    status: StatusCode,
) -> Response {
    let principal = Principal {
        user: visit.user.clone(),
    };
    let listed = match api::incidents::incidents_of(&console.api, &principal, None).await {
        Ok(listed) => listed,
        Err(problem) => return error_page(visit.chrome, problem.status_code()),
    };
    render(
        &IncidentsPage {
            can_open: may_open(&visit),
            chrome: visit.chrome,
            incidents: listed.iter().map(IncidentRow::new).collect(),
            message,
        },
        status,
    )
}

pub async fn incidents(State(console): State<Console>, headers: HeaderMap) -> Response {
    match console
        .visit(&headers, Some(Resource::Incidents), "/console/incidents")
        .await
    {
        Ok(visit) => list_page(&console, visit, String::new(), StatusCode::OK).await,
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
pub struct OpenForm {
    csrf: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    description: String,
    /// Journal ids, separated by commas or spaces.
    #[serde(default)]
    transactions: String,
    /// Case numbers, likewise.
    #[serde(default)]
    cases: String,
}

fn ids(text: &str) -> impl Iterator<Item = &str> {
    text.split([',', ' ', '\n', '\r', '\t'])
        .filter(|id| !id.is_empty())
}

pub async fn open(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<OpenForm>,
) -> Response {
    let visit = match console
        .form_visit(
            &headers,
            &form.csrf,
            Resource::Incidents,
            "/console/incidents",
        )
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let mut cases = Vec::new();
    for id in ids(&form.cases) {
        match id.parse::<i64>() {
            Ok(number) => cases.push(number),
            Err(_) => {
                let message = format!("{id:?} is no case number");
                return list_page(&console, visit, message, StatusCode::BAD_REQUEST).await;
            }
        }
    }
    let opening = Opening {
        title: form.title,
        severity: form.severity,
        description: form.description,
        transactions: ids(&form.transactions).map(str::to_owned).collect(),
        cases,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    match api::incidents::open(&console.api, &principal, &opening).await {
        Ok(detail) => {
            Redirect::to(&format!("/console/incidents/{}", detail.incident.id)).into_response()
        }
        Err(problem) => {
            let status = problem.status_code();
            list_page(&console, visit, problem.detail, status).await
        }
    }
}

fn incident_page(
    visit: Visit,
    detail: IncidentDetail,
    message: String,
    status: StatusCode,
) -> Response {
    let incident = &detail.incident;
    let operator = visit.user.role == Role::PlatformOperator;
    let merchant = matches!(visit.user.role, Role::MerchantAdmin | Role::MerchantManager);
    let mut moves = Vec::new();
    match incident.status.as_str() {
        "open" if operator => moves.extend([
            ("acknowledged", "incident-acknowledge"),
            ("resolved", "incident-resolve"),
        ]),
        "acknowledged" if operator => moves.push(("resolved", "incident-resolve")),
        "resolved" if operator || merchant => moves.push(("open", "incident-reopen")),
        _ => {}
    }
    if incident.status != "closed" && (operator || merchant) {
        moves.push(("closed", "incident-close"));
    }
    let page = IncidentPage {
        incident: IncidentRow::new(&IncidentSummary {
            incident: incident.clone(),
            response_breached: detail.response_breached,
        }),
        acknowledged: match (&incident.acknowledged_by, incident.acknowledged_at) {
            (Some(by), Some(at)) => format!("{by} {}", api::time::rfc3339_seconds(at)),
            _ => String::new(),
        },
        partners: incident.partners.join(", "),
        transactions: detail.transactions.clone(),
        cases: detail.cases.clone(),
        thread: detail
            .thread
            .iter()
            .map(|line| {
                (
                    line.seq,
                    api::time::rfc3339_seconds(line.at),
                    line.author.clone(),
                    line.text.clone(),
                    line.attachment
                        .as_ref()
                        .map(|a| (a.name.clone(), a.content_type.clone(), a.bytes)),
                )
            })
            .collect(),
        open: incident.status != "closed",
        moves,
        message,
        chrome: visit.chrome,
    };
    render(&page, status)
}

async fn show(
    console: &Console,
    visit: Visit,
    id: &str,
    message: String,
    status: StatusCode,
) -> Response {
    let principal = Principal {
        user: visit.user.clone(),
    };
    match api::incidents::visible_incident(&console.api, &principal, id).await {
        Ok(record) => {
            let detail = IncidentDetail {
                response_breached: api::incidents::response_breached(
                    &record.incident,
                    console.api.now_seconds(),
                ),
                incident: record.incident,
                transactions: record.transactions,
                cases: record.cases,
                thread: record.thread,
            };
            incident_page(visit, detail, message, status)
        }
        Err(problem) => error_page(visit.chrome, problem.status_code()),
    }
}

pub async fn incident(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match console
        .visit(&headers, Some(Resource::Incidents), "/console/incidents")
        .await
    {
        Ok(visit) => show(&console, visit, &id, String::new(), StatusCode::OK).await,
        Err(response) => response,
    }
}

/// A message with an optional file: `multipart/form-data` with `csrf`, `text` and `file` (the
/// attachment keeps the name the browser sends for the file).
pub async fn message(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let Some(parts) = api::files::form_parts(content_type, &body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let text_of = |name: &str| api::files::text_field(&parts, name);
    let csrf = text_of("csrf");
    let visit = match console
        .form_visit(&headers, &csrf, Resource::Incidents, "/console/incidents")
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    let file_part = parts.iter().find(|part| part.name == "file");
    let file = file_part.map_or(&[][..], |part| part.content);
    let name = file_part
        .and_then(|part| part.filename)
        .filter(|name| !name.trim().is_empty())
        .unwrap_or("attachment")
        .to_owned();
    let upload = (!file.is_empty()).then_some(Upload {
        name: &name,
        bytes: file,
    });
    let done =
        api::incidents::message(&console.api, &principal, &id, &text_of("text"), upload).await;
    match done {
        Ok(_) => Redirect::to(&format!("/console/incidents/{id}")).into_response(),
        Err(problem) => {
            let status = problem.status_code();
            show(&console, visit, &id, problem.detail, status).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct StatusForm {
    csrf: String,
    status: String,
    #[serde(default)]
    note: String,
}

pub async fn status(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<StatusForm>,
) -> Response {
    let visit = match console
        .form_visit(
            &headers,
            &form.csrf,
            Resource::Incidents,
            "/console/incidents",
        )
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    let change = StatusChange {
        status: form.status,
        note: form.note,
    };
    match api::incidents::move_to(&console.api, &principal, &id, &change).await {
        Ok(_) => Redirect::to(&format!("/console/incidents/{id}")).into_response(),
        Err(problem) => {
            let status = problem.status_code();
            show(&console, visit, &id, problem.detail, status).await
        }
    }
}

pub async fn attachment(
    State(console): State<Console>,
    headers: HeaderMap,
    Path((id, seq)): Path<(String, String)>,
) -> Response {
    let visit = match console
        .visit(&headers, Some(Resource::Incidents), "/console/incidents")
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    match api::incidents::attachment_bytes(&console.api, &principal, &id, &seq).await {
        Ok((attachment, bytes)) => api::incidents::attachment_response(&attachment, bytes),
        Err(problem) if problem.status == 500 => internal(&visit, &problem.detail),
        Err(problem) => error_page(visit.chrome, problem.status_code()),
    }
}
