//! Incidents (docs/risk.md#incidents, R15): a merchant's admin or manager opens a ticket with
//! the acquirer's operations, linking the transactions and cases it is about. The channel
//! partners that referred the merchant are told at once (an `incident.opened` webhook event,
//! and the incident in their own list); the thread keeps messages and attachments (JPEG, PNG
//! or PDF, sniffed, at most [`MAX_ATTACHMENT_BYTES`], kept under the data directory); the
//! status goes open → acknowledged → resolved → closed, and the response-time target of the
//! incident's severity ([`ResponseTargets`]) is tracked, a breach shown. Every action is in
//! the audit log.
//!
//! Who does what:
//!
//! | | merchant admin, manager | platform operator | channel partner |
//! |---|---|---|---|
//! | see | their merchant's | their merchants' | their referred merchants' |
//! | open | yes | — | — |
//! | message, attach | yes | yes | yes |
//! | acknowledge, resolve | — | yes | — |
//! | close, reopen (a resolved one) | yes | yes | — |

use crate::ApiState;
use crate::access::{Principal, Resource, Scope};
use crate::problem::Problem;
use crate::routes::require;
use crate::views::Page;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::accounts::{Role, Tenant};
use store::incidents::{
    Attachment, Incident, IncidentMessage, IncidentRecord, MAX_LINKS_PER_INCIDENT, NewIncident,
    NewMessage,
};

/// Largest attachment: a photo or a scanned form.
pub const MAX_ATTACHMENT_BYTES: usize = 5 * 1024 * 1024;
/// Longest title.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest message (the description is the first).
pub const MAX_MESSAGE_CHARS: usize = 4_000;
/// Longest attachment name.
pub const MAX_ATTACHMENT_NAME_CHARS: usize = 100;
/// The webhook event the referring partners get when an incident is opened.
pub const EVENT_INCIDENT_OPENED: &str = "incident.opened";

type ApiResult<T> = Result<T, Problem>;

/// How bad an incident is; each has its response-time target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|severity| severity.as_str() == text)
    }
}

/// Minutes within which operations must answer (acknowledge or resolve) an incident, per
/// severity (setting `incidents.response_minutes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseTargets {
    /// Indexed like [`Severity::ALL`].
    minutes: [i64; 4],
}

impl Default for ResponseTargets {
    /// Critical 30 minutes, high 2 hours, medium 8 hours, low 24 hours.
    fn default() -> Self {
        ResponseTargets {
            minutes: [1_440, 480, 120, 30],
        }
    }
}

/// Longest response-time target: 30 days.
pub const MAX_RESPONSE_MINUTES: i64 = 30 * 24 * 60;

impl ResponseTargets {
    /// Reads `critical=30,high=120,medium=480,low=1440`; a severity left out keeps its
    /// default.
    pub fn parse(text: &str) -> Result<ResponseTargets, String> {
        let mut targets = ResponseTargets::default();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (name, minutes) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?}: write severity=minutes, e.g. critical=30"))?;
            let severity = Severity::parse(name.trim()).ok_or_else(|| {
                format!("{name:?} is no severity; use low, medium, high or critical")
            })?;
            let minutes = minutes
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|minutes| (1..=MAX_RESPONSE_MINUTES).contains(minutes))
                .ok_or_else(|| format!("{item:?}: give 1 to {MAX_RESPONSE_MINUTES} minutes"))?;
            targets.minutes[severity as usize] = minutes;
        }
        Ok(targets)
    }

    pub fn minutes(&self, severity: Severity) -> i64 {
        self.minutes[severity as usize]
    }
}

/// Whether the incident missed its response target (as of `now`): answered after it, or not
/// answered before it passed (closed unanswered after it, or still open past it).
pub fn response_breached(incident: &Incident, now: i64) -> bool {
    let answered_or_now = incident
        .acknowledged_at
        .or(incident.closed_at)
        .unwrap_or(now);
    answered_or_now > incident.response_due_at
}

/// An incident in a list.
#[derive(Clone, Debug, Serialize)]
pub struct IncidentSummary {
    #[serde(flatten)]
    pub incident: Incident,
    pub response_breached: bool,
}

/// An incident with its links and thread.
#[derive(Clone, Debug, Serialize)]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub incident: Incident,
    pub response_breached: bool,
    /// Journal ids of the linked transactions.
    pub transactions: Vec<String>,
    pub cases: Vec<i64>,
    pub thread: Vec<IncidentMessage>,
}

impl IncidentDetail {
    fn new(record: IncidentRecord, now: i64) -> IncidentDetail {
        IncidentDetail {
            response_breached: response_breached(&record.incident, now),
            incident: record.incident,
            transactions: record.transactions,
            cases: record.cases,
            thread: record.thread,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentParams {
    pub status: Option<String>,
}

const STATUSES: [&str; 4] = ["open", "acknowledged", "resolved", "closed"];

fn text(name: &str, given: &str, most: usize) -> ApiResult<String> {
    let given = given.trim();
    if given.is_empty() || given.chars().count() > most {
        return Err(Problem::bad_request(format!(
            "`{name}` must have 1 to {most} characters"
        )));
    }
    Ok(given.to_owned())
}

fn conflict(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "incident-state",
        "Incident in another state",
        detail,
    )
}

/// The incident `id` if the caller's tenant covers its merchant, else 404.
pub async fn visible_incident(
    state: &ApiState,
    principal: &Principal,
    id: &str,
) -> ApiResult<IncidentRecord> {
    require(principal, Resource::Incidents)?;
    let not_found = || Problem::not_found(format!("no incident {id:?} of yours"));
    let number = id.parse::<i64>().map_err(|_| not_found())?;
    let record = state.store.incident(number).await?.ok_or_else(not_found)?;
    let scope = Scope::of(&state.store, &principal.user).await?;
    if scope.merchant(&record.incident.merchant_id).is_none() {
        return Err(not_found());
    }
    Ok(record)
}

/// The incidents the caller may see, newest first (500 at most), `status` only when given.
pub async fn incidents_of(
    state: &ApiState,
    principal: &Principal,
    status: Option<&str>,
) -> ApiResult<Vec<IncidentSummary>> {
    require(principal, Resource::Incidents)?;
    if let Some(status) = status
        && !STATUSES.contains(&status)
    {
        return Err(Problem::bad_request(format!(
            "status must be open, acknowledged, resolved or closed, not {status:?}"
        )));
    }
    let scope = Scope::of(&state.store, &principal.user).await?;
    let merchants: Vec<String> = scope.merchants.iter().map(|m| m.id.clone()).collect();
    let now = state.now_seconds();
    Ok(state
        .store
        .incidents(Some(&merchants), status)
        .await?
        .into_iter()
        .map(|incident| IncidentSummary {
            response_breached: response_breached(&incident, now),
            incident,
        })
        .collect())
}

pub async fn list_incidents(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    query: Result<Query<IncidentParams>, QueryRejection>,
) -> ApiResult<Json<Page<IncidentSummary>>> {
    let Query(params) = query.map_err(|rejection| {
        Problem::bad_request(format!(
            "{rejection}; the filter is status (open, acknowledged, resolved or closed)"
        ))
    })?;
    Ok(Json(Page {
        data: incidents_of(&state, &principal, params.status.as_deref()).await?,
        next_cursor: None,
    }))
}

pub async fn get_incident(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<IncidentDetail>> {
    let record = visible_incident(&state, &principal, &id).await?;
    Ok(Json(IncidentDetail::new(record, state.now_seconds())))
}

/// What a merchant opens.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Opening {
    pub title: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// What happened: the thread's first message.
    pub description: String,
    /// Journal ids of the merchant's transactions it is about.
    #[serde(default)]
    pub transactions: Vec<String>,
    /// Ids of the merchant's cases it is about.
    #[serde(default)]
    pub cases: Vec<i64>,
}

pub async fn create_incident(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<IncidentDetail>)> {
    let opening: Opening = crate::cases::body(
        &bytes,
        r#"{"title": "terminal 1 asks for a PIN twice", "severity": "high", "description": "…", "transactions": ["12"], "cases": [3]}"#,
    )?;
    Ok((
        StatusCode::CREATED,
        Json(open(&state, &principal, &opening).await?),
    ))
}

/// Opens an incident for the caller's merchant (the console's form and the API's route):
/// checks every link is the merchant's, stores it, tells the referring partners and audits.
pub async fn open(
    state: &ApiState,
    principal: &Principal,
    opening: &Opening,
) -> ApiResult<IncidentDetail> {
    require(principal, Resource::Incidents)?;
    let merchant_id = match (&principal.user.tenant, principal.user.role) {
        (Tenant::Merchant(merchant), Role::MerchantAdmin | Role::MerchantManager) => {
            merchant.clone()
        }
        _ => {
            return Err(Problem::forbidden(
                "incidents are opened by a merchant's admin or manager",
            ));
        }
    };
    let title = text("title", &opening.title, MAX_TITLE_CHARS)?;
    let description = text("description", &opening.description, MAX_MESSAGE_CHARS)?;
    let severity = Severity::parse(opening.severity.trim()).ok_or_else(|| {
        Problem::bad_request(format!(
            "`severity` must be low, medium, high or critical, not {:?}",
            opening.severity
        ))
    })?;
    let mut transactions: Vec<String> = opening
        .transactions
        .iter()
        .map(|id| id.trim().to_owned())
        .collect();
    transactions.sort();
    transactions.dedup();
    let mut cases = opening.cases.clone();
    cases.sort_unstable();
    cases.dedup();
    if transactions.len() + cases.len() > MAX_LINKS_PER_INCIDENT {
        return Err(Problem::bad_request(format!(
            "an incident links at most {MAX_LINKS_PER_INCIDENT} transactions and cases"
        )));
    }
    for id in &transactions {
        let found = crate::routes::visible_transaction(state, principal, id)
            .await
            .ok()
            .filter(|record| record.merchant_id == merchant_id);
        if found.is_none() {
            return Err(Problem::bad_request(format!(
                "`transactions`: {id:?} is no transaction of your merchant"
            )));
        }
    }
    for id in &cases {
        let theirs = state
            .store
            .case(*id)
            .await?
            .is_some_and(|(case, _)| case.merchant_id == merchant_id);
        if !theirs {
            return Err(Problem::bad_request(format!(
                "`cases`: {id} is no case of your merchant"
            )));
        }
    }
    let now = state.now_seconds();
    let partners = crate::webhooks::referring_partners(&state.store, &merchant_id).await?;
    let id = state
        .store
        .open_incident(NewIncident {
            merchant_id: merchant_id.clone(),
            title: title.clone(),
            severity: severity.as_str().to_owned(),
            opened_by: principal.user.username.clone(),
            opened_at: now,
            response_due_at: now + 60 * state.incident_targets.minutes(severity),
            partners: partners.clone(),
            transactions: transactions.clone(),
            cases: cases.clone(),
            description: NewMessage {
                at: now,
                author: principal.user.username.clone(),
                text: description,
                attachment: None,
            },
        })
        .await?;
    let tenant = crate::audit::merchant_label(&merchant_id);
    let links = transactions
        .iter()
        .map(|id| format!("transaction:{id}"))
        .chain(cases.iter().map(|id| format!("case:{id}")))
        .collect::<Vec<_>>()
        .join(" ");
    state
        .audit(
            &principal.user,
            "incident.open",
            &format!("incident:{id}"),
            &format!(
                "{}: {title}; links: {}; partners told: {}",
                severity.as_str(),
                if links.is_empty() { "none" } else { &links },
                if partners.is_empty() {
                    "none".to_owned()
                } else {
                    partners.join(",")
                }
            ),
            tenant,
        )
        .await?;
    let record = state
        .store
        .incident(id)
        .await?
        .ok_or_else(|| Problem::internal(&"the incident just opened is gone"))?;
    crate::webhooks::queue_merchant_event(
        &state.store,
        &merchant_id,
        &format!("evt_incident_{id}_opened"),
        EVENT_INCIDENT_OPENED,
        serde_json::json!({
            "incident_id": id,
            "merchant_id": merchant_id,
            "title": record.incident.title,
            "severity": record.incident.severity,
            "opened_by": record.incident.opened_by,
            "opened_at": crate::time::rfc3339_seconds(now),
            "response_due_at": crate::time::rfc3339_seconds(record.incident.response_due_at),
        }),
        now,
    )
    .await?;
    tracing::info!(incident = id, merchant = %merchant_id, severity = severity.as_str(), "incident opened");
    Ok(IncidentDetail::new(record, now))
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessageBody {
    pub text: String,
}

pub async fn post_message(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<IncidentDetail>)> {
    let body: NewMessageBody = crate::cases::body(&bytes, r#"{"text": "still happening"}"#)?;
    let detail = message(&state, &principal, &id, &body.text, None).await?;
    Ok((StatusCode::CREATED, Json(detail)))
}

/// An attachment as sent: the name the sender gives and the bytes.
#[derive(Clone, Debug)]
pub struct Upload<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
}

/// Checks an attachment's name, size and type; its content type and extension.
pub fn check_attachment(upload: &Upload<'_>) -> ApiResult<(&'static str, &'static str)> {
    let name = upload.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_ATTACHMENT_NAME_CHARS
        || name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(Problem::bad_request(format!(
            "the attachment's name must have 1 to {MAX_ATTACHMENT_NAME_CHARS} characters, without / or \\"
        )));
    }
    if upload.bytes.is_empty() {
        return Err(Problem::bad_request("the attachment is empty"));
    }
    if upload.bytes.len() > MAX_ATTACHMENT_BYTES {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "attachment-too-large",
            "Attachment too large",
            format!(
                "an attachment has at most {MAX_ATTACHMENT_BYTES} bytes; this one has {}",
                upload.bytes.len()
            ),
        ));
    }
    crate::files::sniff(upload.bytes).ok_or_else(|| {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "attachment-type",
            "Attachment type not accepted",
            "attachments must be JPEG, PNG or PDF files",
        )
    })
}

/// Adds a message by the caller to incident `id`'s thread, with an attachment when given;
/// the console's forms and the API's routes.
pub async fn message(
    state: &ApiState,
    principal: &Principal,
    id: &str,
    given: &str,
    upload: Option<Upload<'_>>,
) -> ApiResult<IncidentDetail> {
    let record = visible_incident(state, principal, id).await?;
    let incident = &record.incident;
    if incident.status == "closed" {
        return Err(conflict("the incident is closed; open a new one"));
    }
    let attachment = match &upload {
        None => None,
        Some(upload) => {
            let (content_type, extension) = check_attachment(upload)?;
            let dir = state.documents_dir.as_ref().ok_or_else(|| {
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "attachments-off",
                    "Attachments off",
                    "this server keeps no documents; attachments cannot be stored",
                )
            })?;
            let sha256 = hex::encode(Sha256::digest(upload.bytes));
            let dir = dir.join("incidents").join(incident.id.to_string());
            let file = crate::files::write_atomic(&dir, &format!("{sha256}.{extension}"), upload.bytes)
                .await
                .map_err(|error| {
                    tracing::error!(%error, incident = incident.id, "an attachment could not be written");
                    Problem::internal(&error)
                })?;
            Some(Attachment {
                name: upload.name.trim().to_owned(),
                content_type: content_type.to_owned(),
                bytes: i64::try_from(upload.bytes.len()).unwrap_or(i64::MAX),
                sha256,
                file: file.to_string_lossy().into_owned(),
            })
        }
    };
    let text = match &attachment {
        // An attachment may come without words.
        Some(_) if given.trim().is_empty() => String::new(),
        _ => self::text("text", given, MAX_MESSAGE_CHARS)?,
    };
    let described = attachment
        .as_ref()
        .map(|a| format!(" [{} {} bytes sha256 {}]", a.name, a.bytes, a.sha256));
    let added = state
        .store
        .add_incident_message(
            incident.id,
            NewMessage {
                at: state.now_seconds(),
                author: principal.user.username.clone(),
                text: text.clone(),
                attachment,
            },
        )
        .await?;
    if !added {
        return Err(conflict(format!(
            "the incident is closed or its thread has {} messages, the most it keeps",
            store::incidents::MAX_MESSAGES_PER_INCIDENT
        )));
    }
    state
        .audit(
            &principal.user,
            if described.is_some() {
                "incident.attach"
            } else {
                "incident.message"
            },
            &format!("incident:{}", incident.id),
            &format!("{text}{}", described.unwrap_or_default()),
            crate::audit::merchant_label(&incident.merchant_id),
        )
        .await?;
    let record = visible_incident(state, principal, id).await?;
    Ok(IncidentDetail::new(record, state.now_seconds()))
}

/// `PUT /api/v1/incidents/{id}/attachments/{name}`: the body is the file (its type is sniffed,
/// the `Content-Type` sent is not trusted). A PUT, not a POST: files are larger than the
/// idempotent POST bodies, and the thread keeps every upload as its own message.
pub async fn put_attachment(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((id, name)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<IncidentDetail>)> {
    let detail = message(
        &state,
        &principal,
        &id,
        "",
        Some(Upload {
            name: &name,
            bytes: &bytes,
        }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(detail)))
}

/// An attachment's bytes, for whoever may see the incident.
pub async fn attachment_bytes(
    state: &ApiState,
    principal: &Principal,
    id: &str,
    seq: &str,
) -> ApiResult<(Attachment, Vec<u8>)> {
    let record = visible_incident(state, principal, id).await?;
    let not_found = || Problem::not_found(format!("incident {id} has no attachment {seq:?}"));
    let attachment = record
        .thread
        .iter()
        .find(|message| message.seq.to_string() == seq)
        .and_then(|message| message.attachment.clone())
        .ok_or_else(not_found)?;
    let file = attachment.file.clone();
    let read = tokio::task::spawn_blocking(move || std::fs::read(file))
        .await
        .map_err(std::io::Error::other)
        .and_then(|read| read);
    let bytes = read.map_err(|error| {
        tracing::error!(%error, incident = id, "an attachment's file is missing");
        Problem::internal(&error)
    })?;
    Ok((attachment, bytes))
}

pub async fn get_attachment(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((id, seq)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (attachment, bytes) = attachment_bytes(&state, &principal, &id, &seq).await?;
    Ok(attachment_response(&attachment, bytes))
}

/// The file as a download, with its type and SHA-256.
pub fn attachment_response(attachment: &Attachment, bytes: Vec<u8>) -> Response {
    let disposition = crate::files::attachment_disposition(&attachment.name);
    (
        [
            (header::CONTENT_TYPE, attachment.content_type.clone()),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::HeaderName::from_static("x-attachment-sha256"),
                attachment.sha256.clone(),
            ),
        ],
        bytes,
    )
        .into_response()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// `acknowledged`, `resolved`, `closed`, or `open` (reopen a resolved incident).
    pub status: String,
    /// Added to the thread when given.
    #[serde(default)]
    pub note: String,
}

pub async fn change_status(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<IncidentDetail>> {
    let change: StatusChange = crate::cases::body(
        &bytes,
        r#"{"status": "acknowledged", "note": "looking into it"}"#,
    )?;
    Ok(Json(move_to(&state, &principal, &id, &change).await?))
}

/// The statuses an incident may come from to reach `to`, and whether operators (`true`) or the
/// merchant's staff may move it there; `None` for a status one cannot move to.
fn transition(to: &str) -> Option<(&'static str, &'static [&'static str], &'static [Role])> {
    const OPERATORS: &[Role] = &[Role::PlatformOperator];
    const BOTH: &[Role] = &[
        Role::PlatformOperator,
        Role::MerchantAdmin,
        Role::MerchantManager,
    ];
    match to {
        "acknowledged" => Some(("acknowledged", &["open"], OPERATORS)),
        "resolved" => Some(("resolved", &["open", "acknowledged"], OPERATORS)),
        "closed" => Some(("closed", &["open", "acknowledged", "resolved"], BOTH)),
        "open" => Some(("open", &["resolved"], BOTH)),
        _ => None,
    }
}

/// Moves incident `id` to `change.status` if the caller may and the incident is in a status
/// that leads there; the note (if any) goes into the thread.
pub async fn move_to(
    state: &ApiState,
    principal: &Principal,
    id: &str,
    change: &StatusChange,
) -> ApiResult<IncidentDetail> {
    let record = visible_incident(state, principal, id).await?;
    let incident = &record.incident;
    let (to, from, roles) = transition(change.status.trim()).ok_or_else(|| {
        Problem::bad_request(format!(
            "`status` must be acknowledged, resolved, closed or open, not {:?}",
            change.status
        ))
    })?;
    if !roles.contains(&principal.user.role) {
        return Err(Problem::forbidden(match to {
            "acknowledged" | "resolved" => {
                "the acquirer's operations acknowledge and resolve incidents"
            }
            _ => "the merchant's admin or manager, or operations, close and reopen incidents",
        }));
    }
    let note = change.note.trim();
    if note.chars().count() > MAX_MESSAGE_CHARS {
        return Err(Problem::bad_request(format!(
            "`note` has at most {MAX_MESSAGE_CHARS} characters"
        )));
    }
    let now = state.now_seconds();
    if !state
        .store
        .move_incident(incident.id, from, to, &principal.user.username, now)
        .await?
    {
        return Err(conflict(format!(
            "the incident is {}; it moves to {to} only from {}",
            incident.status,
            from.join(" or ")
        )));
    }
    state
        .audit(
            &principal.user,
            "incident.status",
            &format!("incident:{}", incident.id),
            &format!("{} -> {to}: {note}", incident.status),
            crate::audit::merchant_label(&incident.merchant_id),
        )
        .await?;
    if !note.is_empty() && to != "closed" {
        state
            .store
            .add_incident_message(
                incident.id,
                NewMessage {
                    at: now,
                    author: principal.user.username.clone(),
                    text: format!("[{to}] {note}"),
                    attachment: None,
                },
            )
            .await?;
    }
    let record = visible_incident(state, principal, id).await?;
    Ok(IncidentDetail::new(record, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_targets_are_read_per_severity() {
        let targets = ResponseTargets::parse("critical=15, high=60").unwrap();
        assert_eq!(targets.minutes(Severity::Critical), 15);
        assert_eq!(targets.minutes(Severity::High), 60);
        assert_eq!(
            targets.minutes(Severity::Low),
            1_440,
            "left out: the default"
        );
        assert_eq!(
            ResponseTargets::parse("").unwrap(),
            ResponseTargets::default()
        );
        for wrong in ["urgent=5", "critical", "critical=0", "high=x", "low=43201"] {
            assert!(ResponseTargets::parse(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn a_breach_is_a_late_answer_or_none_past_the_target() {
        let mut incident = Incident {
            id: 1,
            merchant_id: "M".into(),
            title: "t".into(),
            severity: "high".into(),
            status: "open".into(),
            opened_by: "a".into(),
            opened_at: 0,
            response_due_at: 100,
            acknowledged_by: None,
            acknowledged_at: None,
            resolved_at: None,
            closed_at: None,
            updated_at: 0,
            partners: Vec::new(),
            messages: 1,
        };
        assert!(!response_breached(&incident, 100));
        assert!(response_breached(&incident, 101));
        incident.closed_at = Some(99);
        assert!(!response_breached(&incident, 10_000), "withdrawn in time");
        incident.closed_at = Some(101);
        assert!(
            response_breached(&incident, 10_000),
            "closed unanswered after the target"
        );
        incident.closed_at = None;
        incident.acknowledged_at = Some(100);
        assert!(!response_breached(&incident, 10_000));
        incident.acknowledged_at = Some(101);
        assert!(response_breached(&incident, 101));
    }

    #[test]
    fn attachments_are_checked() {
        let check = |name, bytes: &[u8]| {
            check_attachment(&Upload { name, bytes }).map_err(|problem| problem.status)
        };
        assert_eq!(
            check("receipt.pdf", b"%PDF-1.7"),
            Ok(("application/pdf", "pdf"))
        );
        assert_eq!(check("a.gif", b"GIF89a"), Err(415));
        assert_eq!(check("a.pdf", b""), Err(400));
        assert_eq!(check("../x.pdf", b"%PDF-"), Err(400));
        assert_eq!(check("", b"%PDF-"), Err(400));
        let big = vec![0xFF; MAX_ATTACHMENT_BYTES + 1];
        assert_eq!(check("big.jpg", &big), Err(413));
    }
}
