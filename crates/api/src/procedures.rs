//! A merchant's operating procedures and the training record (issue 10, R16,
//! docs/risk.md#operating-procedures-and-the-training-record): the merchant's admin writes the
//! procedures (every save a new version, never an edit), every member of the merchant's staff
//! acknowledges the current version, and the admin and manager see who has and who has not.
//!
//! - `GET /api/v1/procedures`: the current version, the caller's acknowledgement and, for the
//!   admin and manager, the training record (every staff member's newest acknowledgement).
//! - `POST /api/v1/procedures/versions` `{"based_on", "text", "note"}`: the admin saves a new
//!   version (**201**; **409** `procedures-stale` when `based_on` is not the newest).
//! - `POST /api/v1/procedures/acknowledgements` `{"version"}`: a member of staff acknowledges
//!   the current version (**201**; **200** when acknowledged already; **409**
//!   `procedures-stale` for a version that is no longer current).
//!
//! Each save and each acknowledgement appends to the audit log (`procedures.save`,
//! `procedures.acknowledge`, target `procedures:<version>`).

use crate::ApiState;
use crate::access::{Principal, Resource};
use crate::problem::Problem;
use crate::routes::require;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::accounts::{Role, Tenant};
use store::procedures::ProcedureVersion;

type ApiResult<T> = Result<T, Problem>;

/// Longest procedures text: a few pages, read on one screen before acknowledging.
pub const MAX_PROCEDURES_CHARS: usize = 20_000;
/// Longest note of a save.
pub const MAX_PROCEDURES_NOTE_CHARS: usize = 500;
/// Most of a save's line diff the audit entry keeps.
const MAX_AUDIT_DIFF_CHARS: usize = 1_500;

/// The merchant whose staff the caller is; other tenants have no procedures.
fn merchant_of(principal: &Principal) -> ApiResult<String> {
    require(principal, Resource::Procedures)?;
    match &principal.user.tenant {
        Tenant::Merchant(id) => Ok(id.clone()),
        _ => Err(Problem::forbidden(
            "operating procedures belong to a merchant's staff",
        )),
    }
}

fn stale(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "procedures-stale",
        "Not the current procedures",
        detail,
    )
}

/// A version as answered.
#[derive(Clone, Debug, Serialize)]
pub struct VersionView {
    pub version: i64,
    pub text: String,
    pub saved_by: String,
    pub saved_at: String,
    pub note: String,
}

impl From<&ProcedureVersion> for VersionView {
    fn from(version: &ProcedureVersion) -> Self {
        VersionView {
            version: version.version,
            text: version.text.clone(),
            saved_by: version.saved_by.clone(),
            saved_at: crate::time::rfc3339_seconds(version.saved_at),
            note: version.note.clone(),
        }
    }
}

/// One member of staff in the training record.
#[derive(Clone, Debug, Serialize)]
pub struct StaffRecord {
    pub username: String,
    pub display_name: String,
    pub role: String,
    /// The newest version they acknowledged (`null`: none).
    pub acknowledged_version: Option<i64>,
    pub acknowledged_at: Option<String>,
    /// Whether they acknowledged the current version.
    pub current: bool,
}

/// `GET /api/v1/procedures`.
#[derive(Clone, Debug, Serialize)]
pub struct ProceduresView {
    pub merchant_id: String,
    /// The version in force; `null` when the merchant wrote none.
    pub current: Option<VersionView>,
    /// Whether the caller acknowledged the current version (`true` when there is none).
    pub acknowledged: bool,
    /// The training record: every member of staff (admins and managers only; empty for
    /// cashiers).
    pub staff: Vec<StaffRecord>,
    /// The newest 50 versions, newest first (admins and managers only).
    pub versions: Vec<VersionView>,
}

/// What the caller may see of the merchant's procedures.
pub async fn procedures_view(state: &ApiState, principal: &Principal) -> ApiResult<ProceduresView> {
    let merchant_id = merchant_of(principal)?;
    let current = state.store.current_procedures(&merchant_id).await?;
    let acknowledged = !state
        .store
        .procedures_unacknowledged(&merchant_id, &principal.user.id)
        .await?;
    let supervises = matches!(
        principal.user.role,
        Role::MerchantAdmin | Role::MerchantManager
    );
    let (staff, versions) = if supervises {
        let record = training_record(state, &merchant_id, current.as_ref()).await?;
        let versions = state
            .store
            .procedure_versions(
                &merchant_id,
                store::procedures::MAX_PROCEDURE_VERSIONS_LISTED,
            )
            .await?;
        (record, versions.iter().map(VersionView::from).collect())
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(ProceduresView {
        merchant_id,
        current: current.as_ref().map(VersionView::from),
        acknowledged,
        staff,
        versions,
    })
}

/// Every console user of the merchant with their newest acknowledgement.
async fn training_record(
    state: &ApiState,
    merchant_id: &str,
    current: Option<&ProcedureVersion>,
) -> ApiResult<Vec<StaffRecord>> {
    let users = state
        .store
        .users_of(&Tenant::Merchant(merchant_id.to_owned()))
        .await?;
    let acknowledgements = state.store.procedure_acknowledgements(merchant_id).await?;
    Ok(users
        .iter()
        .map(|user| {
            let newest = acknowledgements
                .iter()
                .find(|acknowledgement| acknowledgement.user_id == user.id);
            StaffRecord {
                username: user.username.clone(),
                display_name: user.display_name.clone(),
                role: user.role.as_str().to_owned(),
                acknowledged_version: newest.map(|found| found.version),
                acknowledged_at: newest
                    .map(|found| crate::time::rfc3339_seconds(found.acknowledged_at)),
                current: match (current, newest) {
                    (Some(current), Some(newest)) => newest.version == current.version,
                    (None, _) => true,
                    (Some(_), None) => false,
                },
            }
        })
        .collect())
}

pub async fn get_procedures(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> ApiResult<Json<ProceduresView>> {
    Ok(Json(procedures_view(&state, &principal).await?))
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVersion {
    /// The version the text was edited from (0 for the first).
    pub based_on: i64,
    pub text: String,
    #[serde(default)]
    pub note: String,
}

/// Saves `body` as the merchant's next version of the procedures (the admin only).
pub async fn save_procedures(
    state: &ApiState,
    principal: &Principal,
    body: NewVersion,
) -> ApiResult<VersionView> {
    let merchant_id = merchant_of(principal)?;
    if principal.user.role != Role::MerchantAdmin {
        return Err(Problem::forbidden(
            "the merchant's administrator writes the operating procedures",
        ));
    }
    let text = body.text.trim().replace("\r\n", "\n");
    if text.is_empty() || text.chars().count() > MAX_PROCEDURES_CHARS {
        return Err(Problem::bad_request(format!(
            "`text` must have 1 to {MAX_PROCEDURES_CHARS} characters"
        )));
    }
    let note = body.note.trim().to_owned();
    if note.chars().count() > MAX_PROCEDURES_NOTE_CHARS {
        return Err(Problem::bad_request(format!(
            "`note` has at most {MAX_PROCEDURES_NOTE_CHARS} characters"
        )));
    }
    let current = state.store.current_procedures(&merchant_id).await?;
    let newest = current.as_ref().map_or(0, |current| current.version);
    if body.based_on != newest {
        return Err(stale(format!(
            "the procedures are at version {newest}, not {}: someone saved meanwhile; reload, edit again and save based on version {newest}",
            body.based_on
        )));
    }
    let version = ProcedureVersion {
        merchant_id: merchant_id.clone(),
        version: newest + 1,
        text,
        saved_by: principal.user.username.clone(),
        saved_at: state.now_seconds(),
        note,
    };
    if !state.store.save_procedures(&version).await? {
        return Err(stale(format!(
            "version {} was saved meanwhile by someone else; reload and edit again",
            version.version
        )));
    }
    let old = current.as_ref().map_or("", |current| current.text.as_str());
    let mut detail = format!(
        "{}\n{}",
        version.note,
        crate::risk_rules::line_diff(old, &version.text)
    );
    if detail.chars().count() > MAX_AUDIT_DIFF_CHARS {
        detail = detail.chars().take(MAX_AUDIT_DIFF_CHARS).collect();
    }
    state
        .audit(
            &principal.user,
            "procedures.save",
            &format!("procedures:{}", version.version),
            &detail,
            crate::audit::merchant_label(&merchant_id),
        )
        .await?;
    Ok(VersionView::from(&version))
}

pub async fn create_version(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<VersionView>)> {
    let body: NewVersion = crate::cases::body(
        &bytes,
        r#"{"based_on": 0, "text": "1. Count the till at opening …", "note": "first version"}"#,
    )?;
    Ok((
        StatusCode::CREATED,
        Json(save_procedures(&state, &principal, body).await?),
    ))
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeBody {
    /// The version the caller read.
    pub version: i64,
}

/// An acknowledgement, as answered.
#[derive(Clone, Debug, Serialize)]
pub struct AcknowledgementView {
    pub username: String,
    pub version: i64,
    /// `false` when the caller had acknowledged this version before (nothing new recorded).
    pub recorded: bool,
}

/// Records that the caller read and acknowledges `version`, which must be the current one.
pub async fn acknowledge(
    state: &ApiState,
    principal: &Principal,
    version: i64,
) -> ApiResult<AcknowledgementView> {
    let merchant_id = merchant_of(principal)?;
    let Some(current) = state.store.current_procedures(&merchant_id).await? else {
        return Err(Problem::not_found(
            "your merchant has written no operating procedures yet",
        ));
    };
    if version != current.version {
        return Err(stale(format!(
            "the current procedures are version {}, not {version}: read them and acknowledge version {}",
            current.version, current.version
        )));
    }
    let recorded = state
        .store
        .acknowledge_procedures(
            &merchant_id,
            version,
            &principal.user.id,
            state.now_seconds(),
        )
        .await?;
    if recorded {
        state
            .audit(
                &principal.user,
                "procedures.acknowledge",
                &format!("procedures:{version}"),
                "",
                crate::audit::merchant_label(&merchant_id),
            )
            .await?;
    }
    Ok(AcknowledgementView {
        username: principal.user.username.clone(),
        version,
        recorded,
    })
}

pub async fn create_acknowledgement(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<AcknowledgementView>)> {
    let body: AcknowledgeBody = crate::cases::body(&bytes, r#"{"version": 3}"#)?;
    let view = acknowledge(&state, &principal, body.version).await?;
    let status = if view.recorded {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}
