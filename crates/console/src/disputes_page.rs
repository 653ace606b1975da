//! Disputes in the console (issue 9, R9, R18): the list of the disputes a user may see, and
//! a dispute's page with its steps, its answer's files, and the form of the step the user's
//! role takes next — the issuer's operator reviews (charge back or reject) and decides, the
//! merchant's manager or administrator answers with text, the transaction certificate and
//! evidence files (PDF, PNG, JPEG) before the deadline. The work is the API's
//! ([`api::disputes`]): the same rules, the same money movements, the same audit entries.

use super::{Visit, internal, render};
use crate::Console;
use api::access::{Principal, Resource};
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use store::accounts::Role;
use store::disputes::{Dispute, DisputeDocument};

/// One dispute as a row or a page shows it.
pub struct DisputeRow {
    pub id: String,
    pub transaction_id: i64,
    pub merchant_id: String,
    pub amount: String,
    pub reason: String,
    pub status: String,
    pub opened_at: String,
    pub answer_due_at: String,
}

fn row(dispute: &Dispute) -> DisputeRow {
    let amount = u16::try_from(dispute.currency)
        .ok()
        .and_then(|numeric| money::Currency::from_numeric(numeric).ok())
        .map_or_else(
            || dispute.amount_minor.to_string(),
            |currency| money::Amount::new(dispute.amount_minor, currency).to_string(),
        );
    DisputeRow {
        id: dispute.id.clone(),
        transaction_id: dispute.transaction_id,
        merchant_id: dispute.merchant_id.clone(),
        amount,
        reason: dispute.reason.clone(),
        status: dispute.status.clone(),
        opened_at: api::time::rfc3339_seconds(dispute.opened_at),
        answer_due_at: dispute
            .answer_due_at
            .map(api::time::rfc3339_seconds)
            .unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "disputes.html")]
struct ListPage {
    chrome: super::Chrome,
    rows: Vec<DisputeRow>,
}

pub async fn list(State(console): State<Console>, headers: HeaderMap) -> Response {
    let visit = match console
        .visit(&headers, Some(Resource::Transactions), "/console/disputes")
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    match api::disputes::visible_disputes(&console.api, &principal).await {
        Ok(disputes) => render(
            &ListPage {
                chrome: visit.chrome,
                rows: disputes.iter().map(row).collect(),
            },
            StatusCode::OK,
        ),
        Err(problem) => internal(&visit, &problem.detail),
    }
}

/// A file of the answer as the page lists it: its name (the upload's own, made safe), where
/// to download it, its size and SHA-256.
struct DocumentRow {
    name: String,
    href: String,
    bytes: i64,
    sha256: String,
}

impl DocumentRow {
    fn new(dispute_id: &str, document: DisputeDocument) -> Self {
        DocumentRow {
            href: format!(
                "/console/disputes/{}/documents/{}",
                super::encode(dispute_id),
                super::encode(&document.name)
            ),
            name: document.name,
            bytes: document.bytes,
            sha256: document.sha256,
        }
    }
}

#[derive(Template)]
#[template(path = "dispute.html")]
struct DetailPage {
    chrome: super::Chrome,
    dispute: Dispute,
    row: DisputeRow,
    documents: Vec<DocumentRow>,
    /// The forms this user may use now.
    can_review: bool,
    can_answer: bool,
    can_decide: bool,
    message: String,
}

async fn page(
    console: &Console,
    visit: Visit,
    id: &str,
    message: String,
    status: StatusCode,
) -> Response {
    let principal = Principal {
        user: visit.user.clone(),
    };
    let dispute = match api::disputes::visible_dispute(&console.api, &principal, id).await {
        Ok((dispute, _)) => dispute,
        Err(problem) => {
            let status = problem.status_code();
            return super::error_page(visit.chrome, status);
        }
    };
    let documents = match console.api.store.dispute_documents(&dispute.id).await {
        // The files are the parties' (`api::disputes::sees_documents`).
        Ok(_) if !api::disputes::sees_documents(&principal) => Vec::new(),
        Ok(documents) => documents
            .into_iter()
            .map(|document| DocumentRow::new(&dispute.id, document))
            .collect(),
        Err(error) => return internal(&visit, &error),
    };
    let role = visit.user.role;
    let issuer = role == Role::IssuerOperator;
    let merchant = matches!(role, Role::MerchantAdmin | Role::MerchantManager);
    let status_is = |names: &[&str]| names.contains(&dispute.status.as_str());
    render(
        &DetailPage {
            chrome: visit.chrome,
            row: row(&dispute),
            can_review: issuer && status_is(&["opened"]),
            can_answer: merchant && status_is(&["charged_back"]),
            can_decide: issuer && status_is(&["charged_back", "answered"]),
            dispute,
            documents,
            message,
        },
        status,
    )
}

pub async fn detail(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match console
        .visit(&headers, Some(Resource::Transactions), "/console/disputes")
        .await
    {
        Ok(visit) => page(&console, visit, &id, String::new(), StatusCode::OK).await,
        Err(response) => response,
    }
}

/// After a step: back to the dispute's page, or the page again with why it was refused.
async fn after_step(
    console: &Console,
    visit: Visit,
    id: &str,
    done: Result<(), api::problem::Problem>,
) -> Response {
    match done {
        Ok(()) => Redirect::to(&format!("/console/disputes/{id}")).into_response(),
        Err(problem) => {
            let status = problem.status_code();
            page(console, visit, id, problem.detail, status).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ReviewForm {
    csrf: String,
    decision: String,
    #[serde(default)]
    note: String,
}

pub async fn review(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ReviewForm>,
) -> Response {
    let visit = match console
        .form_visit(
            &headers,
            &form.csrf,
            Resource::Transactions,
            "/console/disputes",
        )
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    let done =
        api::disputes::review_step(&console.api, &principal, &id, &form.decision, &form.note)
            .await
            .map(|_| ());
    after_step(&console, visit, &id, done).await
}

#[derive(Debug, Deserialize)]
pub struct DecideForm {
    csrf: String,
    in_favour_of: String,
    #[serde(default)]
    note: String,
}

pub async fn decide(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<DecideForm>,
) -> Response {
    let visit = match console
        .form_visit(
            &headers,
            &form.csrf,
            Resource::Transactions,
            "/console/disputes",
        )
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    let done = api::disputes::decide_step(
        &console.api,
        &principal,
        &id,
        &form.in_favour_of,
        &form.note,
    )
    .await
    .map(|_| ());
    after_step(&console, visit, &id, done).await
}

/// `POST /console/disputes/{id}/answer` (`multipart/form-data`: `csrf`, `evidence`,
/// `certificate` when ticked, `file` up to five times).
pub async fn answer(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        // Larger than all the files an answer may carry together: say so on the dispute's
        // page (nothing was read, so nothing changes).
        Err(rejection) => {
            let visit = match console
                .visit(&headers, Some(Resource::Transactions), "/console/disputes")
                .await
            {
                Ok(visit) => visit,
                Err(response) => return response,
            };
            let message = format!(
                "The files are too large together ({rejection}): at most {} files of {} MiB each; nothing was attached and the dispute is not answered.",
                api::disputes::MAX_EVIDENCE_FILES,
                api::disputes::MAX_EVIDENCE_FILE_BYTES / (1024 * 1024)
            );
            return page(&console, visit, &id, message, StatusCode::PAYLOAD_TOO_LARGE).await;
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    // The API's reading of the form (`PUT /api/v1/disputes/{id}/answer` takes the same).
    let Ok(form) = api::disputes::answer_form(content_type, &body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let visit = match console
        .form_visit(
            &headers,
            &form.csrf,
            Resource::Transactions,
            "/console/disputes",
        )
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    let done = api::disputes::answer_with_documents(
        &console.api,
        &principal,
        &id,
        &form.evidence,
        form.certificate,
        form.uploads,
    )
    .await
    .map(|_| ());
    after_step(&console, visit, &id, done).await
}

/// A file of a dispute's answer, for the dispute's parties (`api::disputes::document_bytes`).
pub async fn document(
    State(console): State<Console>,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
) -> Response {
    let visit = match console
        .visit(&headers, Some(Resource::Transactions), "/console/disputes")
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    match api::disputes::document_bytes(&console.api, &principal, &id, &name).await {
        Ok((document, bytes)) => api::disputes::document_response(&document, bytes),
        Err(problem) if problem.status == 500 => internal(&visit, &problem.detail),
        Err(problem) => super::error_page(visit.chrome, problem.status_code()),
    }
}
