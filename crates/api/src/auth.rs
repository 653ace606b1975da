//! Who is calling: `Authorization: Bearer <API key>` for integrators, or HTTP Basic with a
//! user name and password (to create the first key, and for quick looks with curl; the
//! password is checked with argon2id and counts towards the lockout like a console login).
//! Roles that need a second factor (operators, merchant administrators) cannot use Basic:
//! they create keys in the console, after their TOTP code.

use crate::ApiState;
use crate::access::Principal;
use crate::problem::Problem;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use store::accounts::LoginOutcome;

/// Authenticates every request under `/api/v1` and hands the [`Principal`] to the handlers
/// (as a request extension).
pub async fn authenticate(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Response {
    let found = match principal(&state, request.headers()).await {
        Ok(principal) => reset_pending(&state, principal).await,
        Err(problem) => Err(problem),
    };
    match found {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(problem) => problem.into_response(),
    }
}

/// Refuses a caller who must choose a new password first (an emergency reset,
/// docs/risk.md#emergency-actions, or a temporary password at the first login,
/// docs/risk.md#staff-accounts): their keys and password serve nothing until they have, in
/// the console.
pub async fn reset_pending(state: &ApiState, principal: Principal) -> Result<Principal, Problem> {
    let Some(reason) = state
        .store
        .password_reset_reason(&principal.user.id)
        .await?
    else {
        return Ok(principal);
    };
    let why = if reason == store::password_resets::FIRST_LOGIN_REASON {
        "your password is the temporary one your administrator gave you"
    } else {
        "your merchant required every user to choose a new password"
    };
    Err(Problem::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "password-reset-required",
        "New password required",
        format!(
            "{why}: sign in to the console and choose one; until then your API keys and password are refused"
        ),
    ))
}

/// The caller a request's `Authorization` header proves (also used by the wallet's consumer
/// routes, which take the same credentials).
pub async fn principal(state: &ApiState, headers: &HeaderMap) -> Result<Principal, Problem> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| {
            Problem::unauthorized(
                "send `Authorization: Bearer <API key>`, or HTTP Basic with your user name and password (create a key with POST /api/v1/api-keys)",
            )
        })?;
    if let Some(key) = value.strip_prefix("Bearer ") {
        let user = state.store.api_key_user(key.trim()).await?;
        return user.map(|user| Principal { user }).ok_or_else(|| {
            Problem::unauthorized("the API key is unknown, revoked or mistyped; create a new one with POST /api/v1/api-keys")
        });
    }
    if let Some(encoded) = value.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                Problem::unauthorized("the Basic credentials are not base64 of `user:password`")
            })?;
        let (username, password) = decoded.split_once(':').ok_or_else(|| {
            Problem::unauthorized("the Basic credentials are not base64 of `user:password`")
        })?;
        return match state
            .store
            .authenticate(username, password, state.now_seconds())
            .await?
        {
            // A password alone does not sign in a role that needs a second factor; its
            // integrations use API keys, created in the console after the second factor.
            LoginOutcome::Accepted(user) if user.role.requires_mfa() => Err(Problem::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "mfa-required",
                "Second factor required",
                format!(
                    "a {} signs in with a second factor, which HTTP Basic cannot carry: create an API key on the console's API keys page and send it as `Authorization: Bearer <key>`",
                    user.role.as_str()
                ),
            )),
            LoginOutcome::Accepted(user) => Ok(Principal { user }),
            LoginOutcome::Refused => Err(Problem::unauthorized("wrong user name or password")),
            LoginOutcome::Locked { until } => Err(Problem::locked(until)),
        };
    }
    Err(Problem::unauthorized(
        "the Authorization header must be `Bearer <API key>` or `Basic <base64 of user:password>`",
    ))
}
