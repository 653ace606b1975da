//! The public application form (issue 11): anyone may apply for terminals, in English or
//! Simplified Chinese. Each field is checked as it is typed (htmx posts the field to
//! `/console/apply/check`, which answers the message to show beside it) and again on the
//! server when the form is saved or submitted ([`onboarding::validate`], one set of rules
//! for the console and the API). A draft is kept under a tracking number and a resume token,
//! which the browser holds in a cookie limited to `/console/apply` and the applicant may note
//! down to come back from elsewhere.

use crate::Console;
use crate::i18n::{Lang, Tr};
use crate::pages::{
    Chrome, checked_session, chrome, csrf_refused, error_page, lang_of, render, with_cookie,
};
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use onboarding::application::{Application, Form as ApplicationForm, Status};
use onboarding::http::{FormRequest, ProvisionedView};
use onboarding::service::{Onboarding, OnboardingError};
use onboarding::validate::FieldError;
use serde::Deserialize;

/// The cookie that remembers the applicant's application: `<tracking number>.<resume token>`.
pub const APPLICATION_COOKIE: &str = "ep_application";

fn application_cookie(id: &str, token: &str) -> String {
    format!(
        "{APPLICATION_COOKIE}={id}.{token}; Path=/console/apply; Max-Age=2592000; Secure; HttpOnly; SameSite=Strict"
    )
}

fn remembered(headers: &HeaderMap) -> Option<(String, String)> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let value = crate::session::cookie(cookies, APPLICATION_COOKIE)?;
    let (id, token) = value.split_once('.')?;
    Some((id.to_owned(), token.to_owned()))
}

/// One choice of a select.
#[derive(Clone, Debug)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// One field of the form as shown.
#[derive(Clone, Debug)]
pub struct FieldRow {
    pub name: &'static str,
    pub label: String,
    pub hint: String,
    pub value: String,
    /// `text`, `select` or `checkbox`.
    pub kind: &'static str,
    pub input_mode: &'static str,
    pub choices: Vec<Choice>,
    pub error: String,
}

#[derive(Template)]
#[template(path = "apply.html")]
struct ApplyPage {
    chrome: Chrome,
    fields: Vec<FieldRow>,
    tracking: String,
    token: String,
    note: String,
    message: String,
    /// Documents uploaded so far: (kind label, size and type).
    documents: Vec<(String, String)>,
    /// The kinds of document, for the upload form (shown once a draft exists).
    kinds: Vec<Choice>,
    document_error: String,
}

/// The uploaded documents of `id` and the kinds to choose from, in the page's language.
async fn documents_of(
    onboarding: &Onboarding,
    t: &Tr,
    id: &str,
) -> (Vec<(String, String)>, Vec<Choice>) {
    let documents = if id.is_empty() {
        Vec::new()
    } else {
        onboarding::documents::list(&onboarding.store, id)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|document| {
                (
                    t.get(&format!("apply-doc-{}", document.kind.replace('_', "-"))),
                    format!(
                        "{}, {} KB",
                        document.content_type,
                        (document.bytes + 1023) / 1024
                    ),
                )
            })
            .collect()
    };
    let kinds = onboarding::http::DOCUMENT_KINDS
        .iter()
        .map(|kind| Choice {
            value: (*kind).to_owned(),
            label: t.get(&format!("apply-doc-{}", kind.replace('_', "-"))),
            selected: false,
        })
        .collect();
    (documents, kinds)
}

#[derive(Template)]
#[template(path = "apply_status.html")]
struct StatusPage {
    chrome: Chrome,
    tracking: String,
    status: String,
    status_note: String,
    note: String,
    merchant_id: String,
    terminal_ids: Vec<String>,
    provisioned: Option<ProvisionedView>,
    editable: bool,
}

#[derive(Template)]
#[template(path = "apply_resume.html")]
struct ResumePage {
    chrome: Chrome,
    message: String,
}

#[derive(Template)]
#[template(path = "apply_field.html")]
struct FieldMessage {
    name: String,
    error: String,
}

/// The message of a fault in the page's language.
fn message(t: &Tr, error: &FieldError) -> String {
    t.get(&error.message_id())
}

fn rows(t: &Tr, lang: Lang, form: &ApplicationForm, errors: &[FieldError]) -> Vec<FieldRow> {
    let error_of = |name: &str| {
        errors
            .iter()
            .find(|error| error.field == name)
            .map(|error| message(t, error))
            .unwrap_or_default()
    };
    form.fields()
        .into_iter()
        .map(|(name, value)| {
            let (kind, input_mode, choices) = match name {
                "mcc" => (
                    "select",
                    "",
                    onboarding::mcc::offered()
                        .map(|category| Choice {
                            value: category.mcc.to_owned(),
                            label: match lang {
                                Lang::En => category.name_en.to_owned(),
                                Lang::ZhCn => category.name_zh.to_owned(),
                            },
                            selected: category.mcc == value,
                        })
                        .collect(),
                ),
                "terminal_kind" => (
                    "select",
                    "",
                    onboarding::validate::TERMINAL_KINDS
                        .iter()
                        .map(|kind| Choice {
                            value: (*kind).to_owned(),
                            label: t.get(&format!("apply-kind-{kind}")),
                            selected: *kind == value,
                        })
                        .collect(),
                ),
                "consent" => ("checkbox", "", Vec::new()),
                "mobile" => ("text", "tel", Vec::new()),
                "settlement_card" | "terminal_count" | "monthly_volume" => {
                    ("text", "numeric", Vec::new())
                }
                _ => ("text", "", Vec::new()),
            };
            FieldRow {
                name,
                label: t.get(&format!("apply-{}", name.replace('_', "-"))),
                hint: t.get(&format!("apply-hint-{}", name.replace('_', "-"))),
                value: value.to_owned(),
                kind,
                input_mode,
                choices,
                error: error_of(name),
            }
        })
        .collect()
}

/// The onboarding service; the pages are "not found" in a console without it.
fn service(console: &Console) -> Option<&Onboarding> {
    console.onboarding.as_ref()
}

fn no_service(lang: Lang) -> Response {
    error_page(chrome(lang, None, "", ""), StatusCode::NOT_FOUND)
}

fn failed(lang: Lang, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "console: application page failed");
    error_page(
        chrome(lang, None, "", ""),
        StatusCode::INTERNAL_SERVER_ERROR,
    )
}

/// The applicant's application, if the browser remembers one whose token still matches.
async fn current(onboarding: &Onboarding, headers: &HeaderMap) -> Option<(Application, String)> {
    let (id, token) = remembered(headers)?;
    onboarding
        .for_applicant(&id, &token)
        .await
        .ok()
        .map(|application| (application, token))
}

/// A fresh anonymous session (for the CSRF token) and the chrome of the page.
fn start(console: &Console, headers: &HeaderMap, lang: Lang) -> (Chrome, String) {
    let old = headers
        .get(header::COOKIE)
        .and_then(|value| value.to_str().ok())
        .and_then(|cookies| crate::session::cookie(cookies, crate::session::SESSION_COOKIE))
        .map(str::to_owned);
    let session = console
        .sessions
        .start(None, old.as_deref(), console.api.now_seconds());
    (
        chrome(lang, None, &session.csrf, "/console/apply"),
        session.id,
    )
}

/// `GET /console/apply`: the form, empty or with the remembered draft.
pub async fn form(State(console): State<Console>, headers: HeaderMap) -> Response {
    let lang = lang_of(&headers);
    let Some(onboarding) = service(&console) else {
        return no_service(lang);
    };
    let remembered = current(onboarding, &headers).await;
    if let Some((application, _)) = &remembered
        && !application.status.editable()
    {
        return Redirect::to("/console/apply/status").into_response();
    }
    let (chrome, session) = start(&console, &headers, lang);
    let t = chrome.t;
    let (form, tracking, note) = match &remembered {
        Some((application, _)) => (
            application.form.clone(),
            application.id.clone(),
            application.note.clone().unwrap_or_default(),
        ),
        None => (ApplicationForm::default(), String::new(), String::new()),
    };
    let (documents, kinds) = documents_of(onboarding, &t, &tracking).await;
    let page = ApplyPage {
        fields: rows(&t, lang, &form, &[]),
        chrome,
        tracking,
        token: String::new(),
        note,
        message: String::new(),
        documents,
        kinds,
        document_error: String::new(),
    };
    with_cookie(
        render(&page, StatusCode::OK),
        &crate::session::session_cookie(&session),
    )
}

/// The form as posted: the fields, the CSRF token and which button.
#[derive(Debug, Deserialize)]
pub struct Posted {
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(flatten)]
    fields: std::collections::HashMap<String, String>,
}

impl Posted {
    fn form(&self) -> ApplicationForm {
        let get = |name: &str| self.fields.get(name).cloned().unwrap_or_default();
        ApplicationForm {
            business_name: get("business_name"),
            credit_code: get("credit_code"),
            legal_name: get("legal_name"),
            id_number: get("id_number"),
            mobile: get("mobile"),
            address: get("address"),
            city: get("city"),
            mcc: get("mcc"),
            settlement_card: get("settlement_card"),
            bank: get("bank"),
            monthly_volume: get("monthly_volume"),
            terminal_count: get("terminal_count"),
            terminal_kind: get("terminal_kind"),
            consent: get("consent"),
        }
    }
}

/// `POST /console/apply`: save the draft, or submit it.
pub async fn post(
    State(console): State<Console>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(posted): Form<Posted>,
) -> Response {
    let lang = lang_of(&headers);
    let Some(session) = checked_session(&console, &headers, &posted.csrf) else {
        return csrf_refused(lang);
    };
    let Some(onboarding) = service(&console) else {
        return no_service(lang);
    };
    let chrome = chrome(lang, None, &session.csrf, "/console/apply");
    let t = chrome.t;
    let form = posted.form();
    let submit = posted.action == "submit";
    let remembered = current(onboarding, &headers).await;
    let (application, token) = match remembered {
        Some((application, token)) => (Some(application), token),
        None => (None, String::new()),
    };
    let had_application = application.is_some();
    if !had_application
        && let Err(OnboardingError::TooMany { .. }) =
            onboarding.admit_new_application(onboarding::http::client_address(&extensions))
    {
        let page = ApplyPage {
            fields: rows(&t, lang, &form, &[]),
            chrome,
            tracking: String::new(),
            token: String::new(),
            note: String::new(),
            message: t.get("apply-too-many-address"),
            documents: Vec::new(),
            kinds: Vec::new(),
            document_error: String::new(),
        };
        return render(&page, StatusCode::TOO_MANY_REQUESTS);
    }
    let request = FormRequest {
        form: form.clone(),
        submit: false,
    };
    // First keep what was typed (a new draft, or the draft changed), then submit it.
    let saved = match onboarding::http::save_or_submit(onboarding, application, request, None).await
    {
        Ok((_, view)) => view,
        Err(OnboardingError::NotEditable(_)) => {
            return Redirect::to("/console/apply/status").into_response();
        }
        Err(error) => return failed(lang, &error),
    };
    let token = saved.resume_token.clone().unwrap_or(token);
    let cookie = application_cookie(&saved.id, &token);
    let kept = match onboarding.for_applicant(&saved.id, &token).await {
        Ok(application) => application,
        Err(error) => return failed(lang, &error),
    };
    let stored_form = kept.form.clone();
    let shown_token = if had_application {
        String::new()
    } else {
        token.clone()
    };
    let (documents, kinds) = documents_of(onboarding, &t, &saved.id).await;
    if !submit {
        let page = ApplyPage {
            fields: rows(&t, lang, &stored_form, &[]),
            chrome,
            tracking: saved.id.clone(),
            token: shown_token,
            note: kept.note.clone().unwrap_or_default(),
            message: t.get("apply-saved"),
            documents,
            kinds,
            document_error: String::new(),
        };
        return with_cookie(render(&page, StatusCode::OK), &cookie);
    }
    match onboarding.submit(kept, &stored_form).await {
        Ok((application, provisioned)) => {
            let provisioned = match provisioned {
                Some(provisioned) => {
                    match onboarding::http::provisioned_view(onboarding, provisioned).await {
                        Ok(view) => Some(view),
                        Err(error) => return failed(lang, &error),
                    }
                }
                None => None,
            };
            with_cookie(
                render(
                    &status_page(chrome, &application, provisioned),
                    StatusCode::OK,
                ),
                &cookie,
            )
        }
        Err(OnboardingError::Invalid(errors)) => {
            let page = ApplyPage {
                fields: rows(&t, lang, &stored_form, &errors),
                chrome,
                tracking: saved.id.clone(),
                token: shown_token,
                note: String::new(),
                message: t.get("apply-invalid"),
                documents,
                kinds,
                document_error: String::new(),
            };
            with_cookie(render(&page, StatusCode::UNPROCESSABLE_ENTITY), &cookie)
        }
        Err(OnboardingError::TooMany { .. }) => {
            let page = ApplyPage {
                fields: rows(&t, lang, &stored_form, &[]),
                chrome,
                tracking: saved.id.clone(),
                token: shown_token,
                note: String::new(),
                message: t.get("apply-too-many-mobile"),
                documents,
                kinds,
                document_error: String::new(),
            };
            with_cookie(render(&page, StatusCode::TOO_MANY_REQUESTS), &cookie)
        }
        Err(error) => failed(lang, &error),
    }
}

fn status_page(
    chrome: Chrome,
    application: &Application,
    provisioned: Option<ProvisionedView>,
) -> StatusPage {
    let t = chrome.t;
    StatusPage {
        tracking: application.id.clone(),
        status: t.get(&format!(
            "apply-status-{}",
            application.status.as_str().replace('_', "-")
        )),
        status_note: t.get(&format!(
            "apply-status-note-{}",
            application.status.as_str().replace('_', "-")
        )),
        note: application.note.clone().unwrap_or_default(),
        merchant_id: application.merchant_id.clone().unwrap_or_default(),
        terminal_ids: application.terminal_ids.clone(),
        provisioned,
        editable: application.status.editable() && application.status != Status::Draft,
        chrome,
    }
}

/// `GET /console/apply/status`: where the remembered application is.
pub async fn status(State(console): State<Console>, headers: HeaderMap) -> Response {
    let lang = lang_of(&headers);
    let Some(onboarding) = service(&console) else {
        return no_service(lang);
    };
    let Some((application, _)) = current(onboarding, &headers).await else {
        return Redirect::to("/console/apply/resume").into_response();
    };
    let (chrome, session) = start(&console, &headers, lang);
    with_cookie(
        render(&status_page(chrome, &application, None), StatusCode::OK),
        &crate::session::session_cookie(&session),
    )
}

#[derive(Debug, Deserialize)]
pub struct CheckForm {
    #[serde(flatten)]
    fields: std::collections::HashMap<String, String>,
}

/// `POST /console/apply/check` (htmx): the message for the field named by `HX-Trigger-Name`,
/// empty when the value is good.
pub async fn check(headers: HeaderMap, Form(form): Form<CheckForm>) -> Response {
    let lang = lang_of(&headers);
    let t = Tr { lang };
    let Some(name) = headers
        .get("hx-trigger-name")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
    else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let value = form.fields.get(&name).cloned().unwrap_or_default();
    // A masked card or ID number stands for the number already given.
    let masked = match name.as_str() {
        "settlement_card" => onboarding::application::is_masked_card(&value),
        "id_number" => !value.is_empty() && onboarding::application::is_masked_id(&value),
        _ => false,
    };
    let result = if masked {
        Some(Ok(()))
    } else {
        onboarding::validate::field(&name, &value)
    };
    let error = match result {
        None => return StatusCode::BAD_REQUEST.into_response(),
        Some(Ok(())) => String::new(),
        Some(Err(error)) => message(&t, &error),
    };
    render(&FieldMessage { name, error }, StatusCode::OK)
}

/// `GET /console/apply/resume`: come back with the tracking number and resume token.
pub async fn resume_form(State(console): State<Console>, headers: HeaderMap) -> Response {
    let lang = lang_of(&headers);
    let (chrome, session) = start(&console, &headers, lang);
    with_cookie(
        render(
            &ResumePage {
                chrome,
                message: String::new(),
            },
            StatusCode::OK,
        ),
        &crate::session::session_cookie(&session),
    )
}

#[derive(Debug, Deserialize)]
pub struct ResumeForm {
    csrf: String,
    tracking: String,
    token: String,
}

/// `POST /console/apply/resume`: remembers the application if the token matches.
pub async fn resume(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<ResumeForm>,
) -> Response {
    let lang = lang_of(&headers);
    let Some(session) = checked_session(&console, &headers, &form.csrf) else {
        return csrf_refused(lang);
    };
    let Some(onboarding) = service(&console) else {
        return no_service(lang);
    };
    let tracking = form.tracking.trim().to_ascii_uppercase();
    let token = form.token.trim().to_owned();
    match onboarding.for_applicant(&tracking, &token).await {
        Ok(application) => {
            let to = if application.status.editable() {
                "/console/apply"
            } else {
                "/console/apply/status"
            };
            with_cookie(
                Redirect::to(to).into_response(),
                &application_cookie(&tracking, &token),
            )
        }
        Err(_) => {
            let chrome = chrome(lang, None, &session.csrf, "/console/apply");
            let message = chrome.t.get("apply-resume-failed");
            render(&ResumePage { chrome, message }, StatusCode::NOT_FOUND)
        }
    }
}

/// `POST /console/apply/documents` (`multipart/form-data`: `csrf`, `kind`, `file`): a document
/// of the remembered application, checked by [`onboarding::documents::check`].
pub async fn upload(
    State(console): State<Console>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let lang = lang_of(&headers);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let parts = onboarding::documents::boundary(content_type)
        .and_then(|boundary| onboarding::documents::parse_multipart(&body, boundary));
    let Some(parts) = parts else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let part = |name: &str| {
        parts
            .iter()
            .find(|part| part.name == name)
            .map(|part| part.content)
    };
    let csrf = part("csrf")
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .unwrap_or("");
    let Some(session) = checked_session(&console, &headers, csrf) else {
        return csrf_refused(lang);
    };
    let Some(onboarding) = service(&console) else {
        return no_service(lang);
    };
    let Some((application, _)) = current(onboarding, &headers).await else {
        return Redirect::to("/console/apply").into_response();
    };
    let kind = part("kind")
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .unwrap_or("");
    let file = part("file").unwrap_or(&[]);
    let chrome = chrome(lang, None, &session.csrf, "/console/apply");
    let t = chrome.t;
    let (message, document_error, status) =
        match onboarding::documents::store_document(onboarding, &application, kind, file).await {
            Ok(_) => (t.get("apply-document-saved"), String::new(), StatusCode::OK),
            Err(OnboardingError::Invalid(errors)) => (
                String::new(),
                errors
                    .first()
                    .map(|error| message(&t, error))
                    .unwrap_or_default(),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            Err(OnboardingError::NotEditable(_)) => {
                return Redirect::to("/console/apply/status").into_response();
            }
            Err(error) => return failed(lang, &error),
        };
    let (documents, kinds) = documents_of(onboarding, &t, &application.id).await;
    let page = ApplyPage {
        fields: rows(&t, lang, &application.form, &[]),
        chrome,
        tracking: application.id.clone(),
        token: String::new(),
        note: application.note.clone().unwrap_or_default(),
        message,
        documents,
        kinds,
        document_error,
    };
    render(&page, status)
}
