//! The review of applications in the console (issue 11): the acquirer's operators see the
//! queue with each application's score and reasons and decide — one operator recommends
//! approval (maker), another approves (checker), or asks for more information, or rejects
//! with a reason; channel partners follow the applications they submitted. The rules are the
//! onboarding service's, the same as through the API.

use crate::Console;
use crate::pages::{Chrome, Visit, checked_session, csrf_refused, error_page, lang_of, render};
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use onboarding::application::{Application, Status};
use onboarding::http::ProvisionedView;
use onboarding::service::{Decision, Onboarding, OnboardingError};
use serde::Deserialize;
use store::accounts::{Role, Tenant};

#[derive(Clone, Debug)]
pub struct Row {
    pub id: String,
    pub business: String,
    pub status: String,
    pub score: String,
    pub partner: String,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "applications.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
}

#[derive(Clone, Debug)]
pub struct Line {
    pub label: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "application.html")]
struct DetailPage {
    chrome: Chrome,
    id: String,
    status: String,
    lines: Vec<Line>,
    score: String,
    reasons: Vec<Line>,
    documents: Vec<Line>,
    trail: Vec<Line>,
    can_decide: bool,
    message: String,
    error: String,
    provisioned: Option<ProvisionedView>,
}

/// Operators see every application; partners their own; other roles none (403).
fn scope(visit: &Visit) -> Option<Option<String>> {
    match (&visit.user.tenant, visit.user.role) {
        (Tenant::Institution(_), Role::PlatformOperator) => Some(None),
        (Tenant::Partner(partner), Role::ChannelPartner) => Some(Some(partner.clone())),
        _ => None,
    }
}

/// The signed-in visit of an operator or partner, the service, and the partner scope; or
/// the answer to give instead.
async fn enter(
    console: &Console,
    headers: &HeaderMap,
    current: &str,
) -> Result<(Visit, Onboarding, Option<String>), Box<Response>> {
    let visit = console
        .visit(headers, None, current)
        .await
        .map_err(Box::new)?;
    let Some(onboarding) = console.onboarding.clone() else {
        return Err(Box::new(error_page(visit.chrome, StatusCode::NOT_FOUND)));
    };
    let Some(partner) = scope(&visit) else {
        return Err(Box::new(error_page(visit.chrome, StatusCode::FORBIDDEN)));
    };
    Ok((visit, onboarding, partner))
}

fn failed(visit: &Visit, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "console: review page failed");
    error_page(visit.chrome.clone(), StatusCode::INTERNAL_SERVER_ERROR)
}

fn status_label(chrome: &Chrome, status: Status) -> String {
    chrome.t.get(&format!(
        "apply-status-{}",
        status.as_str().replace('_', "-")
    ))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
}

/// `GET /console/applications`: the queue (`?status=submitted` by default for operators).
pub async fn list(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let (visit, onboarding, partner) =
        match enter(&console, &headers, "/console/applications").await {
            Ok(entered) => entered,
            Err(response) => return *response,
        };
    let status = query.status.as_deref().and_then(Status::parse);
    let applications =
        match onboarding::application::list(&onboarding.store, status, partner.as_deref()).await {
            Ok(applications) => applications,
            Err(error) => return failed(&visit, &error),
        };
    let rows = applications
        .iter()
        .map(|application| Row {
            id: application.id.clone(),
            business: application.form.business_name.clone(),
            status: status_label(&visit.chrome, application.status),
            score: application
                .risk
                .as_ref()
                .map(|risk| risk.score.to_string())
                .unwrap_or_default(),
            partner: application.partner_id.clone().unwrap_or_default(),
            updated: api::time::rfc3339_seconds(application.updated_at),
        })
        .collect();
    render(
        &ListPage {
            chrome: visit.chrome,
            rows,
        },
        StatusCode::OK,
    )
}

async fn detail(
    onboarding: &Onboarding,
    visit: Visit,
    application: Application,
    message: String,
    error: String,
    provisioned: Option<ProvisionedView>,
) -> Response {
    let t = visit.chrome.t;
    let lines = application
        .form
        .fields()
        .into_iter()
        .filter(|(name, _)| *name != "consent")
        .map(|(name, value)| Line {
            label: t.get(&format!("apply-{}", name.replace('_', "-"))),
            value: value.to_owned(),
        })
        .collect();
    let reasons = application
        .risk
        .as_ref()
        .map(|risk| {
            risk.reasons
                .iter()
                .map(|reason| Line {
                    label: format!("+{} {}", reason.points, reason.code),
                    value: reason.detail.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let documents = match onboarding::documents::list(&onboarding.store, &application.id).await {
        Ok(documents) => documents
            .into_iter()
            .map(|document| Line {
                label: document.kind,
                value: format!(
                    "{}, {} bytes, SHA-256 {}",
                    document.content_type, document.bytes, document.sha256
                ),
            })
            .collect(),
        Err(error) => return failed(&visit, &error),
    };
    let mut trail = Vec::new();
    for (id, value) in [
        ("review-partner", application.partner_id.clone()),
        ("review-reviewed-by", application.reviewed_by.clone()),
        ("review-approved-by", application.approved_by.clone()),
        ("review-note", application.note.clone()),
        ("apply-merchant-id", application.merchant_id.clone()),
    ] {
        if let Some(value) = value {
            trail.push(Line {
                label: t.get(id),
                value,
            });
        }
    }
    let can_decide = visit.user.role == Role::PlatformOperator
        && matches!(application.status, Status::Submitted | Status::MoreInfo);
    let page = DetailPage {
        id: application.id.clone(),
        status: status_label(&visit.chrome, application.status),
        lines,
        score: application
            .risk
            .as_ref()
            .map(|risk| risk.score.to_string())
            .unwrap_or_default(),
        reasons,
        documents,
        trail,
        can_decide,
        message,
        error,
        provisioned,
        chrome: visit.chrome,
    };
    render(&page, StatusCode::OK)
}

/// `GET /console/applications/{id}`.
pub async fn show(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (visit, onboarding, _) = match enter(&console, &headers, "/console/applications").await {
        Ok(entered) => entered,
        Err(response) => return *response,
    };
    let principal = api::access::Principal {
        user: visit.user.clone(),
    };
    match onboarding.for_principal(&principal, &id).await {
        Ok(application) => {
            detail(
                &onboarding,
                visit,
                application,
                String::new(),
                String::new(),
                None,
            )
            .await
        }
        Err(OnboardingError::UnknownApplication) => error_page(visit.chrome, StatusCode::NOT_FOUND),
        Err(error) => failed(&visit, &error),
    }
}

#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    csrf: String,
    decision: String,
    #[serde(default)]
    reason: String,
}

/// `POST /console/applications/{id}/decision`.
pub async fn decide(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    if checked_session(&console, &headers, &form.csrf).is_none() {
        return csrf_refused(lang_of(&headers));
    }
    let (visit, onboarding, _) = match enter(&console, &headers, "/console/applications").await {
        Ok(entered) => entered,
        Err(response) => return *response,
    };
    let t = visit.chrome.t;
    let decision = match form.decision.as_str() {
        "recommend" => Decision::Recommend,
        "approve" => Decision::Approve,
        "more_info" => Decision::MoreInfo { note: form.reason },
        "reject" => Decision::Reject {
            reason: form.reason,
        },
        _ => return error_page(visit.chrome, StatusCode::BAD_REQUEST),
    };
    let principal = api::access::Principal {
        user: visit.user.clone(),
    };
    let (message, error, provisioned) = match onboarding.decide(&principal, &id, decision).await {
        Ok((_, provisioned)) => {
            let provisioned = match provisioned {
                Some(provisioned) => {
                    match onboarding::http::provisioned_view(&onboarding, provisioned).await {
                        Ok(view) => Some(view),
                        Err(error) => return failed(&visit, &error),
                    }
                }
                None => None,
            };
            (t.get("review-done"), String::new(), provisioned)
        }
        Err(OnboardingError::SamePerson) => (String::new(), t.get("review-err-same-person"), None),
        Err(OnboardingError::Forbidden(_)) => {
            (String::new(), t.get("review-err-not-reviewed"), None)
        }
        Err(OnboardingError::ReasonRequired) => (String::new(), t.get("review-err-reason"), None),
        Err(OnboardingError::WrongStatus(_) | OnboardingError::Conflict) => {
            (String::new(), t.get("review-err-status"), None)
        }
        Err(OnboardingError::UnknownApplication) => {
            return error_page(visit.chrome, StatusCode::NOT_FOUND);
        }
        Err(error) => return failed(&visit, &error),
    };
    match onboarding.for_principal(&principal, &id).await {
        Ok(application) => {
            detail(&onboarding, visit, application, message, error, provisioned).await
        }
        Err(error) => failed(&visit, &error),
    }
}
