//! The emergency actions beyond freezes (docs/risk.md#emergency-actions), each with a reason,
//! in the audit log, and effective at once:
//!
//! - **Force a new terminal key at the next sign-on** (`POST /api/v1/terminals/{id}/key-change`):
//!   the terminal's working keys are dropped now, as at a sign-off, so its next financial
//!   message is declined 58 until it signs on, and the sign-on brings new PIN and MAC keys
//!   generated in the HSM. Master/session terminals only: a DUKPT terminal derives a new key
//!   for every message already (its base key is replaced by terminal management's forced key
//!   change, which re-activates it).
//! - **Force a password reset for all staff** (`POST /api/v1/merchants/{id}/password-reset`):
//!   every console user of the merchant but the caller must choose a new password before the
//!   console serves them another page; their API keys and HTTP Basic are refused meanwhile.

use crate::ApiState;
use crate::access::{Principal, Resource};
use crate::problem::Problem;
use crate::routes::{MAX_FREEZE_REASON_CHARS, require};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::accounts::{Role, Tenant};

type ApiResult<T> = Result<T, Problem>;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    pub reason: String,
}

fn reason(given: &str) -> ApiResult<String> {
    let given = given.trim();
    if given.is_empty() || given.chars().count() > MAX_FREEZE_REASON_CHARS {
        return Err(Problem::bad_request(format!(
            "`reason`: say why, in 1 to {MAX_FREEZE_REASON_CHARS} characters"
        )));
    }
    Ok(given.to_owned())
}

#[derive(Clone, Debug, Serialize)]
pub struct KeyChange {
    pub terminal_id: String,
    /// Whether the terminal was signed on (had working keys) when they were dropped.
    pub was_signed_on: bool,
}

pub async fn key_change(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<KeyChange>> {
    let body: Reason = crate::cases::body(&bytes, r#"{"reason": "terminal left unattended"}"#)?;
    Ok(Json(
        force_key_change(&state, &principal, &id, &body.reason).await?,
    ))
}

/// Drops terminal `id`'s working keys, so that its next sign-on brings new ones.
pub async fn force_key_change(
    state: &ApiState,
    principal: &Principal,
    id: &str,
    given: &str,
) -> ApiResult<KeyChange> {
    let tenant =
        crate::routes::freezable(state, principal, risk::FreezeScope::Terminal, id).await?;
    let reason = reason(given)?;
    let session = state.store.terminal_session(id).await?;
    if let Some(session) = &session
        && session.key_scheme != "master-session"
    {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "key-scheme",
            "Not a master/session terminal",
            format!(
                "terminal {id} uses {}: it derives a new key for every message; replace its base key with terminal management's forced key change (POST /onboarding/v1/terminals/{id}/rekey)",
                session.key_scheme
            ),
        ));
    }
    let was_signed_on = session.as_ref().is_some_and(|s| s.mac_key.is_some());
    state
        .store
        .change_session(id, store::directory::SessionChange::SignOff)
        .await?;
    tracing::warn!(terminal = id, by = %principal.user.username, "working keys dropped: new keys at the next sign-on");
    state
        .audit(
            &principal.user,
            "terminal.key_change",
            &format!("terminal:{id}"),
            &reason,
            tenant,
        )
        .await?;
    Ok(KeyChange {
        terminal_id: id.to_owned(),
        was_signed_on,
    })
}

#[derive(Clone, Debug, Serialize)]
pub struct PasswordReset {
    pub merchant_id: String,
    /// The users who must choose a new password (user names), the caller excepted.
    pub users: Vec<String>,
}

pub async fn password_reset(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<PasswordReset>> {
    let body: Reason = crate::cases::body(
        &bytes,
        r#"{"reason": "a password list was found at the till"}"#,
    )?;
    Ok(Json(
        force_password_reset(&state, &principal, &id, &body.reason).await?,
    ))
}

/// Requires every console user of merchant `id` but the caller to choose a new password.
pub async fn force_password_reset(
    state: &ApiState,
    principal: &Principal,
    id: &str,
    given: &str,
) -> ApiResult<PasswordReset> {
    require(principal, Resource::Freezes)?;
    let tenant =
        crate::routes::freezable(state, principal, risk::FreezeScope::Merchant, id).await?;
    if principal.user.role == Role::MerchantManager {
        return Err(Problem::forbidden(
            "the merchant's administrator, or the acquirer's operators, reset the staff's passwords",
        ));
    }
    let reason = reason(given)?;
    let staff: Vec<_> = state
        .store
        .users_of(&Tenant::Merchant(id.to_owned()))
        .await?
        .into_iter()
        .filter(|user| user.id != principal.user.id)
        .collect();
    let ids: Vec<String> = staff.iter().map(|user| user.id.clone()).collect();
    state
        .store
        .require_password_resets(&ids, &principal.user.username, &reason, state.now_seconds())
        .await?;
    let users: Vec<String> = staff.iter().map(|user| user.username.clone()).collect();
    tracing::warn!(merchant = id, users = users.len(), by = %principal.user.username, "password reset required of all staff");
    state
        .audit(
            &principal.user,
            "staff.password_reset",
            &format!("merchant:{id}"),
            &format!("{reason}; users: {}", users.join(",")),
            tenant,
        )
        .await?;
    Ok(PasswordReset {
        merchant_id: id.to_owned(),
        users,
    })
}
