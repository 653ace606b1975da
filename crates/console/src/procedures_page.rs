//! The operating procedures page (issue 10, R16): every member of a merchant's staff reads the
//! procedures in force and acknowledges them (the training record); the merchant's admin
//! writes new versions; the admin and manager see who has and who has not acknowledged the
//! current version. Staff who have not are sent here when they sign in ([`landing`]). The work
//! is the API's ([`api::procedures`]): the same rights, the same audit entries.

use super::{Visit, internal, portal, render};
use crate::Console;
use api::access::{Principal, Resource};
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use store::accounts::{Role, Tenant, User};

/// The page's path.
pub const PATH: &str = "/console/procedures";

/// One line of the training record as shown.
#[derive(Clone, Debug)]
pub struct RecordRow {
    pub username: String,
    pub name: String,
    pub role: String,
    /// The newest version acknowledged and when, or empty.
    pub acknowledged: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "procedures.html")]
struct ProceduresPage {
    chrome: super::Chrome,
    /// The version in force (0: none written yet).
    version: i64,
    text: String,
    saved: String,
    acknowledged: bool,
    can_edit: bool,
    /// What the editor holds: the version in force, or a refused draft (so no edit is lost).
    draft: String,
    record: Vec<RecordRow>,
    /// Staff who have not acknowledged the current version.
    missing: usize,
    /// (version, by, when, note), newest first.
    versions: Vec<(i64, String, String, String)>,
    message: String,
}

/// Where a user goes after signing in: the page to choose a new password when they must (a
/// temporary password at the first login, or an emergency reset), else the procedures when
/// they have not acknowledged the current version, else their portal's first page.
pub(crate) async fn landing(console: &Console, user: &User) -> &'static str {
    let first = portal(user.role)[0].0;
    match console.api.store.password_reset_required(&user.id).await {
        Ok(true) => return super::password_page::PASSWORD_PAGE,
        Ok(false) => {}
        // Every page checks again, and sends them there.
        Err(error) => tracing::error!(%error, "console: password reset look-up failed"),
    }
    let Tenant::Merchant(merchant) = &user.tenant else {
        return first;
    };
    if !api::access::allows(user.role, Resource::Procedures) {
        return first;
    }
    match console
        .api
        .store
        .procedures_unacknowledged(merchant, &user.id)
        .await
    {
        Ok(true) => PATH,
        Ok(false) => first,
        Err(error) => {
            // The sign-in goes on; the page itself will show the procedures when read.
            tracing::error!(%error, "console: procedures look-up failed");
            first
        }
    }
}

async fn page(
    console: &Console,
    visit: Visit,
    draft: Option<String>,
    message: String,
    status: StatusCode,
) -> Response {
    let principal = Principal {
        user: visit.user.clone(),
    };
    let view = match api::procedures::procedures_view(&console.api, &principal).await {
        Ok(view) => view,
        Err(problem) => return internal(&visit, &problem.detail),
    };
    let t = visit.chrome.t;
    let record: Vec<RecordRow> = view
        .staff
        .iter()
        .map(|staff| RecordRow {
            username: staff.username.clone(),
            name: staff.display_name.clone(),
            role: t.get(&format!("role-{}", staff.role)),
            acknowledged: match (&staff.acknowledged_version, &staff.acknowledged_at) {
                (Some(version), Some(at)) => format!("{version} ({at})"),
                _ => String::new(),
            },
            current: staff.current,
        })
        .collect();
    let current = view.current.as_ref();
    render(
        &ProceduresPage {
            version: current.map_or(0, |current| current.version),
            text: current.map(|c| c.text.clone()).unwrap_or_default(),
            saved: current
                .map(|c| format!("{} {}", c.saved_by, c.saved_at))
                .unwrap_or_default(),
            acknowledged: view.acknowledged,
            can_edit: visit.user.role == Role::MerchantAdmin,
            draft: draft.unwrap_or_else(|| current.map(|c| c.text.clone()).unwrap_or_default()),
            missing: record.iter().filter(|row| !row.current).count(),
            record,
            versions: view
                .versions
                .iter()
                .map(|v| {
                    (
                        v.version,
                        v.saved_by.clone(),
                        v.saved_at.clone(),
                        v.note.clone(),
                    )
                })
                .collect(),
            message,
            chrome: visit.chrome,
        },
        status,
    )
}

pub async fn procedures(State(console): State<Console>, headers: HeaderMap) -> Response {
    match console
        .visit(&headers, Some(Resource::Procedures), PATH)
        .await
    {
        Ok(visit) => page(&console, visit, None, String::new(), StatusCode::OK).await,
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
pub struct SaveForm {
    csrf: String,
    based_on: i64,
    text: String,
    #[serde(default)]
    note: String,
}

pub async fn save(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<SaveForm>,
) -> Response {
    let visit = match console
        .form_visit(&headers, &form.csrf, Resource::Procedures, PATH)
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    let body = api::procedures::NewVersion {
        based_on: form.based_on,
        text: form.text.clone(),
        note: form.note,
    };
    match api::procedures::save_procedures(&console.api, &principal, body).await {
        Ok(_) => Redirect::to(PATH).into_response(),
        Err(problem) => {
            let status = problem.status_code();
            page(&console, visit, Some(form.text), problem.detail, status).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AcknowledgeForm {
    csrf: String,
    version: i64,
}

pub async fn acknowledge(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<AcknowledgeForm>,
) -> Response {
    let visit = match console
        .form_visit(&headers, &form.csrf, Resource::Procedures, PATH)
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    match api::procedures::acknowledge(&console.api, &principal, form.version).await {
        Ok(_) => {
            let message = visit.chrome.t.get("procedures-acknowledged-now");
            page(&console, visit, None, message, StatusCode::OK).await
        }
        Err(problem) => {
            let status = problem.status_code();
            page(&console, visit, None, problem.detail, status).await
        }
    }
}
