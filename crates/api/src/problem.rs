//! Errors as RFC 9457 problem details (`application/problem+json`): one shape for every
//! failure of the API, with a `detail` a developer can act on. A 5xx never carries internals:
//! the store's error is logged, and the answer says only that it failed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// A problem: `kind` names it (the `type` member is `/api/problems#<kind>`, documented in
/// `docs/api.md`), `detail` says what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        slug: &str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Problem {
            kind: format!("/api/problems#{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Not signed in",
            detail,
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not allowed for this role",
            detail,
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "Invalid request",
            detail,
        )
    }

    pub fn locked(until: i64) -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "account-locked",
            "Account locked",
            format!(
                "too many failed logins: this account accepts no login before {} (UTC); ask an administrator, or wait",
                crate::time::rfc3339_seconds(until)
            ),
        )
    }

    /// A failure of ours: logged with its cause, answered without it.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "API request failed");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the request could not be completed; retry later (with the same Idempotency-Key for a POST)",
        )
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<store::StoreError> for Problem {
    fn from(error: store::StoreError) -> Self {
        match error {
            // The database is away (restarting, failing over): the store reconnects by itself.
            store::StoreError::Unavailable(_) => {
                tracing::warn!(%error, "API request failed: the database is unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Database unavailable",
                    format!(
                        "the database cannot be reached at the moment; retry in {RETRY_AFTER_SECONDS} seconds (with the same Idempotency-Key for a POST)"
                    ),
                )
            }
            error => Problem::internal(&error),
        }
    }
}

/// What a 503 asks the client to wait (its `Retry-After`): about as long as the store's
/// reconnects back off at most.
const RETRY_AFTER_SECONDS: u32 = 5;

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"easypos\", Basic realm=\"easypos\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_database_is_a_503_to_retry_and_names_no_database() {
        let error = store::StoreError::Unavailable(
            "the pool connection to PostgreSQL (postgres://easypos@db.internal/easypos) is lost"
                .into(),
        );
        let problem = Problem::from(error);
        assert_eq!(
            (problem.status, problem.kind.as_str()),
            (503, "/api/problems#unavailable")
        );
        assert!(
            !problem.detail.contains("db.internal"),
            "{}",
            problem.detail
        );
        let response = problem.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        let other = Problem::from(store::StoreError::Write("disk full".into()));
        assert_eq!(other.status, 500);
    }
}
