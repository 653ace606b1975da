//! Supervisors' terminal passwords (docs/risk.md#supervisor-passwords): a merchant's admin
//! enrols the password a supervisor (or manager) keys in at the terminal to allow a void or
//! refund. Only its IBM 3624 offset is kept, computed in the HSM under the platform's staff
//! PIN verification key; the host checks the password a void or refund carries against it,
//! inside the HSM.

use crate::ApiState;
use crate::access::{Principal, Resource};
use crate::problem::Problem;
use crate::routes::require;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hsm::KeySpec;
use serde::{Deserialize, Serialize};
use store::accounts::{Role, Tenant};
use store::directory::StaffRole;

pub use store::staff_passwords::STAFF_PVK;
/// A terminal password's digits: 6 to 12, as terminals' PIN pads take them.
pub const MIN_PASSWORD_DIGITS: usize = 6;
pub const MAX_PASSWORD_DIGITS: usize = 12;

type ApiResult<T> = Result<T, Problem>;

/// The HSM the API enrols terminal passwords with.
#[derive(Clone)]
pub struct EnrolmentHsm(pub std::sync::Arc<dyn hsm::Hsm>);

impl std::fmt::Debug for EnrolmentHsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnrolmentHsm")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    pub password: String,
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword { password: *** }")
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Enrolled {
    pub merchant_id: String,
    pub operator_no: String,
    pub set_at: i64,
}

pub async fn set_terminal_password(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(operator_no): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<Enrolled>> {
    let body: NewPassword = crate::cases::body(&bytes, r#"{"password": "123456"}"#)?;
    Ok(Json(
        enrol(&state, &principal, &operator_no, &body.password).await?,
    ))
}

/// Enrols (or replaces) the terminal password of supervisor `operator_no` of the caller's
/// merchant.
pub async fn enrol(
    state: &ApiState,
    principal: &Principal,
    operator_no: &str,
    password: &str,
) -> ApiResult<Enrolled> {
    require(principal, Resource::Staff)?;
    let merchant_id = match (&principal.user.tenant, principal.user.role) {
        (Tenant::Merchant(merchant), Role::MerchantAdmin) => merchant.clone(),
        _ => {
            return Err(Problem::forbidden(
                "the merchant's administrator enrols supervisors' terminal passwords",
            ));
        }
    };
    let not_found = || Problem::not_found(format!("no supervisor {operator_no:?} of yours"));
    let operator = store::staff_passwords::operator_number(operator_no).ok_or_else(not_found)?;
    let directory = state.store.load_directory().await?;
    directory
        .staff
        .iter()
        .find(|staff| {
            staff.merchant_id == merchant_id
                && store::staff_passwords::operator_number(&staff.operator_no).as_deref()
                    == Some(operator.as_str())
                && matches!(staff.role, StaffRole::Supervisor | StaffRole::Manager)
        })
        .ok_or_else(not_found)?;
    if !(MIN_PASSWORD_DIGITS..=MAX_PASSWORD_DIGITS).contains(&password.len())
        || !password.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(Problem::bad_request(format!(
            "`password`: {MIN_PASSWORD_DIGITS} to {MAX_PASSWORD_DIGITS} digits"
        )));
    }
    let hsm = state.hsm.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "hsm-off",
            "No HSM",
            "this server has no HSM to enrol terminal passwords with",
        )
    })?;
    let validation = store::staff_passwords::validation_data(&merchant_id, &operator)
        .ok_or_else(|| Problem::internal(&"the merchant id has too few digits"))?;
    let hsm = hsm.0.as_ref();
    let pvk = crate::webhooks::ensure_key(&state.store, hsm, STAFF_PVK, &KeySpec::pvk_ibm3624())
        .await
        .map_err(|error| Problem::internal(&error))?;
    let pin = paycrypto::Pin::new(password)
        .map_err(|_| Problem::bad_request("`password`: digits only"))?;
    let offset = hsm
        .generate_pin_offset(
            &pvk,
            &validation,
            'F',
            &paycrypto::card::DecimalisationTable::DEFAULT,
            &pin,
        )
        .map_err(|error| Problem::internal(&error))?;
    let now = state.now_seconds();
    state
        .store
        .put_staff_password(
            &merchant_id,
            &operator,
            &offset,
            &principal.user.username,
            now,
        )
        .await?;
    state
        .audit(
            &principal.user,
            "staff.terminal_password",
            &format!("staff:{merchant_id}:{operator}"),
            "enrolled",
            crate::audit::merchant_label(&merchant_id),
        )
        .await?;
    Ok(Enrolled {
        merchant_id,
        operator_no: operator,
        set_at: now,
    })
}
