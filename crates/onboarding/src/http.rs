//! The onboarding API under `/onboarding/v1` (docs/onboarding.md): JSON for applicants (who
//! prove themselves with the resume token of their application, header `X-Resume-Token`),
//! for terminals being activated (with their code), and, behind the REST API's
//! authentication, for operators and channel partners. Errors are RFC 9457 problems; an
//! invalid form is a 422 whose `errors` name every field at fault with its message.

use crate::application::{Application, Form, Status};
use crate::service::{Decision, Onboarding, OnboardingError, Provisioned};
use crate::terminals::{ActivationPackage, TerminalStatus};
use api::access::Principal;
use api::problem::{PROBLEM_CONTENT_TYPE, Problem};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json};
use store::accounts::{Role, Tenant};

/// The header that carries an applicant's resume token.
pub const RESUME_TOKEN: &str = "x-resume-token";
/// Largest document accepted, in bytes (5 MiB: a phone photo of a licence is 2–4 MB).
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024 * 1024;
/// Kinds of document an application takes.
pub const DOCUMENT_KINDS: [&str; 4] = ["licence", "id_front", "id_back", "shop_photo"];

/// An error answer.
#[derive(Debug)]
pub struct ApiError(Box<Response>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        ApiError(Box::new(problem.into_response()))
    }
}

/// One field at fault, for the 422 answer.
#[derive(Debug, serde::Serialize)]
pub struct FieldProblem {
    pub field: &'static str,
    pub code: &'static str,
    pub message: &'static str,
}

impl From<store::StoreError> for ApiError {
    fn from(error: store::StoreError) -> Self {
        Problem::from(error).into()
    }
}

impl From<OnboardingError> for ApiError {
    fn from(error: OnboardingError) -> Self {
        use OnboardingError::*;
        let problem = |status, slug, title| Problem::new(status, slug, title, error.to_string());
        match &error {
            Invalid(errors) => {
                let body = serde_json::json!({
                    "type": "/api/problems#invalid-fields",
                    "title": "Some fields are not valid",
                    "status": 422,
                    "detail": "correct the fields listed in `errors` and send the form again",
                    "errors": errors.iter().map(|e| FieldProblem { field: e.field, code: e.code, message: e.english() }).collect::<Vec<_>>(),
                });
                let mut response = (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
                );
                ApiError(Box::new(response))
            }
            UnknownApplication | UnknownTerminal => Problem::not_found(error.to_string()).into(),
            NotEditable(_) | WrongStatus(_) | Conflict | TerminalStatus(_) => {
                problem(StatusCode::CONFLICT, "conflict", "Not in a state for this").into()
            }
            Forbidden(_) | SamePerson => Problem::forbidden(error.to_string()).into(),
            ReasonRequired | BadRequest(_) => Problem::bad_request(error.to_string()).into(),
            UnknownCode => problem(
                StatusCode::NOT_FOUND,
                "activation-code-unknown",
                "Unknown activation code",
            )
            .into(),
            CodeUsed => problem(
                StatusCode::GONE,
                "activation-code-used",
                "Activation code used",
            )
            .into(),
            CodeExpired => problem(
                StatusCode::GONE,
                "activation-code-expired",
                "Activation code expired",
            )
            .into(),
            BadInvitation => problem(
                StatusCode::GONE,
                "invitation-invalid",
                "Invitation not valid",
            )
            .into(),
            TooMany {
                retry_after_seconds,
                ..
            } => {
                let mut answer: ApiError = problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-applications",
                    "Too many applications",
                )
                .into();
                if let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string()) {
                    answer.0.headers_mut().insert(header::RETRY_AFTER, value);
                }
                answer
            }
            Hsm(cause) => Problem::internal(cause).into(),
            Store(cause) => Problem::internal(cause).into(),
        }
    }
}

type Answer<T> = Result<T, ApiError>;

/// The routes; `authenticated` is wrapped in the REST API's authentication.
pub fn router(onboarding: Onboarding, api_state: api::ApiState) -> Router {
    let public = Router::new()
        .route("/onboarding/v1/categories", get(categories))
        .route("/onboarding/v1/check", post(check_field))
        .route("/onboarding/v1/applications", post(create))
        .route("/onboarding/v1/applications/{id}", get(show).put(change))
        .route(
            "/onboarding/v1/applications/{id}/documents/{kind}",
            put(upload).layer(DefaultBodyLimit::max(MAX_DOCUMENT_BYTES + 1)),
        )
        .route("/onboarding/v1/activate", post(activate))
        .route("/onboarding/v1/invitations/accept", post(accept_invitation));
    let authenticated = Router::new()
        .route("/onboarding/v1/review/applications", get(queue))
        .route("/onboarding/v1/review/applications/{id}", get(review_show))
        .route(
            "/onboarding/v1/review/applications/{id}/decision",
            post(decide),
        )
        .route("/onboarding/v1/partner/applications", post(partner_create))
        .route("/onboarding/v1/terminals", get(list_terminals))
        .route("/onboarding/v1/terminals/{id}", get(show_terminal))
        .route(
            "/onboarding/v1/terminals/{id}/status",
            post(terminal_status),
        )
        .route(
            "/onboarding/v1/terminals/{id}/activation-code",
            post(activation_code),
        )
        .route("/onboarding/v1/terminals/{id}/rekey", post(rekey))
        .route(
            "/onboarding/v1/terminals/{id}/parameters",
            get(show_parameters).put(change_parameters),
        )
        .layer(axum::middleware::from_fn_with_state(
            api_state,
            api::auth::authenticate,
        ));
    public
        .merge(authenticated)
        .layer(axum::middleware::from_fn(api::security_headers))
        .with_state(onboarding)
}

#[derive(Debug, serde::Serialize)]
struct CategoryView {
    mcc: &'static str,
    name_en: &'static str,
    name_zh: &'static str,
}

async fn categories() -> Json<Vec<CategoryView>> {
    Json(
        crate::mcc::offered()
            .map(|c| CategoryView {
                mcc: c.mcc,
                name_en: c.name_en,
                name_zh: c.name_zh,
            })
            .collect(),
    )
}

#[derive(Debug, serde::Deserialize)]
struct CheckRequest {
    field: String,
    value: String,
}

async fn check_field(Json(request): Json<CheckRequest>) -> Answer<Json<serde_json::Value>> {
    match crate::validate::field(&request.field, &request.value) {
        None => Err(Problem::bad_request(format!(
            "{:?} is not a field of the form",
            request.field
        ))
        .into()),
        Some(Ok(())) => Ok(Json(
            serde_json::json!({ "field": request.field, "valid": true }),
        )),
        Some(Err(error)) => Ok(Json(serde_json::json!({
            "field": request.field, "valid": false, "code": error.code, "message": error.english(),
        }))),
    }
}

/// What the applicant (or partner) sends: the form, and whether to submit it now.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormRequest {
    pub form: Form,
    #[serde(default)]
    pub submit: bool,
}

/// An application as its applicant sees it.
#[derive(Debug, serde::Serialize)]
pub struct ApplicantView {
    pub id: String,
    pub status: Status,
    pub form: Form,
    pub note: Option<String>,
    pub merchant_id: Option<String>,
    pub terminal_ids: Vec<String>,
    pub documents: Vec<DocumentView>,
    pub updated_at: i64,
    /// Only on the answer that created the application: the secret to come back with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_token: Option<String>,
    /// Only on the answer that approved it: what was created, the activation codes and the
    /// administrator's invitation, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioned: Option<ProvisionedView>,
}

#[derive(Debug, serde::Serialize)]
pub struct ProvisionedView {
    pub merchant_id: String,
    pub terminal_ids: Vec<String>,
    pub admin_username: String,
    pub invitation: Option<String>,
    pub activation_codes: Vec<CodeView>,
}

#[derive(Debug, serde::Serialize)]
pub struct CodeView {
    pub terminal_id: String,
    pub code: String,
    pub expires_at: i64,
}

#[derive(Debug, serde::Serialize)]
pub struct DocumentView {
    pub kind: String,
    pub content_type: String,
    pub bytes: i64,
    pub sha256: String,
}

/// An application as an operator (or its partner) sees it: with the checks' score.
#[derive(Debug, serde::Serialize)]
pub struct ReviewView {
    #[serde(flatten)]
    pub applicant: ApplicantView,
    pub partner_id: Option<String>,
    pub risk: Option<crate::checks::Assessment>,
    pub reviewed_by: Option<String>,
    pub approved_by: Option<String>,
    pub created_at: i64,
}

async fn view(
    onboarding: &Onboarding,
    application: Application,
) -> Result<ApplicantView, OnboardingError> {
    let documents = crate::documents::list(&onboarding.store, &application.id).await?;
    Ok(ApplicantView {
        id: application.id,
        status: application.status,
        form: application.form,
        note: application.note,
        merchant_id: application.merchant_id,
        terminal_ids: application.terminal_ids,
        documents,
        updated_at: application.updated_at,
        resume_token: None,
        provisioned: None,
    })
}

async fn review_view(
    onboarding: &Onboarding,
    application: Application,
) -> Result<ReviewView, OnboardingError> {
    let partner_id = application.partner_id.clone();
    let risk = application.risk.clone();
    let (reviewed_by, approved_by, created_at) = (
        application.reviewed_by.clone(),
        application.approved_by.clone(),
        application.created_at,
    );
    Ok(ReviewView {
        applicant: view(onboarding, application).await?,
        partner_id,
        risk,
        reviewed_by,
        approved_by,
        created_at,
    })
}

/// The activation codes of a fresh approval, issued for the one who approved (the applicant
/// on an automatic approval, the operator otherwise).
pub async fn provisioned_view(
    onboarding: &Onboarding,
    provisioned: Provisioned,
) -> Result<ProvisionedView, OnboardingError> {
    let mut activation_codes = Vec::new();
    for terminal_id in &provisioned.terminal_ids {
        let (code, expires_at) = onboarding.issue_code_for_approval(terminal_id).await?;
        activation_codes.push(CodeView {
            terminal_id: terminal_id.clone(),
            code,
            expires_at,
        });
    }
    Ok(ProvisionedView {
        merchant_id: provisioned.merchant_id,
        terminal_ids: provisioned.terminal_ids,
        admin_username: provisioned.admin_username,
        invitation: provisioned.invitation,
        activation_codes,
    })
}

/// Saves or submits; the answer for the applicant.
pub async fn save_or_submit(
    onboarding: &Onboarding,
    application: Option<Application>,
    request: FormRequest,
    partner: Option<&str>,
) -> Result<(StatusCode, ApplicantView), OnboardingError> {
    let (application, token, created) = match application {
        Some(application) => (application, None, false),
        None => {
            let saved = onboarding.new_draft(&request.form, partner).await?;
            (saved.application, saved.resume_token, true)
        }
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    if !request.submit {
        let application = if created {
            application
        } else {
            onboarding
                .save(application, &request.form)
                .await?
                .application
        };
        let mut answer = view(onboarding, application).await?;
        answer.resume_token = token;
        return Ok((status, answer));
    }
    match onboarding.submit(application.clone(), &request.form).await {
        Ok((application, provisioned)) => {
            let provisioned = match provisioned {
                Some(provisioned) => Some(provisioned_view(onboarding, provisioned).await?),
                None => None,
            };
            let mut answer = view(onboarding, application).await?;
            answer.resume_token = token;
            answer.provisioned = provisioned;
            Ok((status, answer))
        }
        // A new application whose form is not valid stays as a draft, so the applicant keeps
        // what they typed; the answer lists the faults and carries the token to come back.
        Err(OnboardingError::Invalid(errors)) if created => {
            let _ = token;
            Err(OnboardingError::Invalid(errors))
        }
        Err(error) => Err(error),
    }
}

fn token(headers: &HeaderMap) -> Answer<String> {
    headers
        .get(RESUME_TOKEN)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            Problem::unauthorized(
                "send the application's resume token in the X-Resume-Token header",
            )
            .into()
        })
}

/// The client's address, when the server was started with connection info (`easypos up`).
pub fn client_address(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip())
}

async fn create(
    State(onboarding): State<Onboarding>,
    extensions: axum::http::Extensions,
    Json(request): Json<FormRequest>,
) -> Answer<Response> {
    onboarding.admit_new_application(client_address(&extensions))?;
    let (status, answer) = save_or_submit(&onboarding, None, request, None).await?;
    Ok((status, Json(answer)).into_response())
}

async fn show(
    State(onboarding): State<Onboarding>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer<Json<ApplicantView>> {
    let application = onboarding.for_applicant(&id, &token(&headers)?).await?;
    Ok(Json(view(&onboarding, application).await?))
}

async fn change(
    State(onboarding): State<Onboarding>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(request): Json<FormRequest>,
) -> Answer<Response> {
    let application = onboarding.for_applicant(&id, &token(&headers)?).await?;
    let (status, answer) = save_or_submit(&onboarding, Some(application), request, None).await?;
    Ok((status, Json(answer)).into_response())
}

async fn upload(
    State(onboarding): State<Onboarding>,
    Path((id, kind)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Answer<Json<DocumentView>> {
    let application = onboarding.for_applicant(&id, &token(&headers)?).await?;
    Ok(Json(
        crate::documents::store_document(&onboarding, &application, &kind, &body).await?,
    ))
}

#[derive(Debug, serde::Deserialize)]
struct ActivateRequest {
    code: String,
}

async fn activate(
    State(onboarding): State<Onboarding>,
    Json(request): Json<ActivateRequest>,
) -> Answer<Json<ActivationPackage>> {
    Ok(Json(onboarding.activate(&request.code).await?))
}

#[derive(Debug, serde::Deserialize)]
struct AcceptRequest {
    token: String,
    password: String,
}

async fn accept_invitation(
    State(onboarding): State<Onboarding>,
    Json(request): Json<AcceptRequest>,
) -> Answer<Json<serde_json::Value>> {
    let username = onboarding
        .accept_invitation(&request.token, &request.password)
        .await?;
    Ok(Json(serde_json::json!({ "username": username })))
}

#[derive(Debug, serde::Deserialize)]
struct QueueQuery {
    status: Option<String>,
}

/// Operators see every application; partners their own; nobody else any.
fn partner_scope(principal: &Principal) -> Answer<Option<String>> {
    match (&principal.user.tenant, principal.user.role) {
        (Tenant::Institution(_), Role::PlatformOperator) => Ok(None),
        (Tenant::Partner(partner), Role::ChannelPartner) => Ok(Some(partner.clone())),
        _ => Err(Problem::forbidden("applications are seen by the acquirer's operators and the channel partner that submitted them").into()),
    }
}

async fn queue(
    State(onboarding): State<Onboarding>,
    Extension(principal): Extension<Principal>,
    Query(query): Query<QueueQuery>,
) -> Answer<Json<Vec<ReviewView>>> {
    let partner = partner_scope(&principal)?;
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(Status::parse(text).ok_or_else(|| {
            ApiError::from(Problem::bad_request(
                "status is one of draft, submitted, more_info, approving, approved, rejected",
            ))
        })?),
    };
    let mut views = Vec::new();
    for application in
        crate::application::list(&onboarding.store, status, partner.as_deref()).await?
    {
        views.push(review_view(&onboarding, application).await?);
    }
    Ok(Json(views))
}

async fn review_show(
    State(onboarding): State<Onboarding>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Answer<Json<ReviewView>> {
    partner_scope(&principal)?;
    let application = onboarding.for_principal(&principal, &id).await?;
    Ok(Json(review_view(&onboarding, application).await?))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionRequest {
    /// `recommend`, `approve`, `reject` or `more_info`.
    decision: String,
    #[serde(default)]
    reason: String,
}

async fn decide(
    State(onboarding): State<Onboarding>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Json(request): Json<DecisionRequest>,
) -> Answer<Json<ReviewView>> {
    let decision = match request.decision.as_str() {
        "recommend" => Decision::Recommend,
        "approve" => Decision::Approve,
        "reject" => Decision::Reject {
            reason: request.reason,
        },
        "more_info" => Decision::MoreInfo {
            note: request.reason,
        },
        _ => {
            return Err(Problem::bad_request(
                "decision is one of recommend, approve, reject, more_info",
            )
            .into());
        }
    };
    let (application, provisioned) = onboarding.decide(&principal, &id, decision).await?;
    let provisioned = match provisioned {
        Some(provisioned) => Some(provisioned_view(&onboarding, provisioned).await?),
        None => None,
    };
    let mut answer = review_view(&onboarding, application).await?;
    answer.applicant.provisioned = provisioned;
    Ok(Json(answer))
}

async fn partner_create(
    State(onboarding): State<Onboarding>,
    Extension(principal): Extension<Principal>,
    Json(request): Json<FormRequest>,
) -> Answer<Response> {
    let Tenant::Partner(partner) = &principal.user.tenant else {
        return Err(Problem::forbidden("only channel partners submit applications here; merchants use POST /onboarding/v1/applications").into());
    };
    let (status, answer) = save_or_submit(&onboarding, None, request, Some(partner)).await?;
    Ok((status, Json(answer)).into_response())
}

#[derive(Debug, serde::Deserialize)]
struct TerminalQuery {
    merchant_id: Option<String>,
}

async fn list_terminals(
    State(onboarding): State<Onboarding>,
    Extension(principal): Extension<Principal>,
    Query(query): Query<TerminalQuery>,
) -> Answer<Json<Vec<crate::terminals::TerminalDetails>>> {
    Ok(Json(
        onboarding
            .terminals(&principal, query.merchant_id.as_deref())
            .await?,
    ))
}

async fn show_terminal(
    State(onboarding): State<Onboarding>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Answer<Json<crate::terminals::TerminalDetails>> {
    Ok(Json(onboarding.terminal(&principal, &id).await?))
}

#[derive(Debug, serde::Deserialize)]
struct StatusRequest {
    status: String,
}

async fn terminal_status(
    State(onboarding): State<Onboarding>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Json(request): Json<StatusRequest>,
) -> Answer<Json<crate::terminals::TerminalDetails>> {
    let to = TerminalStatus::parse(&request.status).ok_or_else(|| {
        ApiError::from(Problem::bad_request(
            "status is one of provisioned, active, suspended, lost, stolen, retired",
        ))
    })?;
    Ok(Json(onboarding.set_status(&principal, &id, to).await?))
}

async fn activation_code(
    State(onboarding): State<Onboarding>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Answer<Json<CodeView>> {
    let (code, expires_at) = onboarding.issue_code(&principal, &id).await?;
    Ok(Json(CodeView {
        terminal_id: id,
        code,
        expires_at,
    }))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RekeyRequest {
    key_scheme: String,
}

async fn rekey(
    State(onboarding): State<Onboarding>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Answer<Json<CodeView>> {
    let scheme = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let request: RekeyRequest = serde_json::from_slice(&body).map_err(|error| {
            ApiError::from(Problem::bad_request(format!(
                "the body is `{{\"key_scheme\": \"dukpt-aes\"}}` or empty: {error}"
            )))
        })?;
        Some(request.key_scheme)
    };
    let (code, expires_at) = onboarding
        .force_key_change_to(&principal, &id, scheme.as_deref())
        .await?;
    Ok(Json(CodeView {
        terminal_id: id,
        code,
        expires_at,
    }))
}

async fn show_parameters(
    State(onboarding): State<Onboarding>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Answer<Json<acquirer::parameters::TerminalParameters>> {
    Ok(Json(onboarding.parameters(&principal, &id).await?))
}

async fn change_parameters(
    State(onboarding): State<Onboarding>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Json(change): Json<crate::parameters::ParameterChange>,
) -> Answer<Json<acquirer::parameters::TerminalParameters>> {
    Ok(Json(
        onboarding
            .change_parameters(&principal, &id, &change)
            .await?,
    ))
}
