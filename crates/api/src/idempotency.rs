//! `Idempotency-Key` on every POST: the first request with a key runs and its answer is kept
//! for 24 hours; the same key with the same method, path and body gets that answer again
//! (with `Idempotent-Replayed: true`); the same key with anything else is refused with 422;
//! a retry while the first is still running gets 409. Keys are per user. An answer of 5xx
//! is not kept, so a retry runs the request again.

use crate::ApiState;
use crate::access::Principal;
use crate::problem::{PROBLEM_CONTENT_TYPE, Problem};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use store::accounts::{IdempotencyState, MAX_IDEMPOTENCY_KEY_BYTES, request_digest};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
/// Largest request body a POST may carry: the API's bodies are a few fields.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest answer kept for replay; the API's answers to POSTs are single records.
pub const MAX_KEPT_ANSWER_BYTES: usize = 256 * 1024;

pub async fn idempotent(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    match run(&state, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn run(state: &ApiState, request: Request, next: Next) -> Result<Response, Response> {
    let principal = request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Problem::unauthorized("sign in first").into_response())?;
    let key = request
        .headers()
        .get(IDEMPOTENCY_KEY)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .filter(|key| {
            !key.is_empty()
                && key.len() <= MAX_IDEMPOTENCY_KEY_BYTES
                && key.bytes().all(|byte| byte.is_ascii_graphic())
        })
        .ok_or_else(|| {
            Problem::bad_request(format!(
                "every POST needs an `Idempotency-Key` header of 1 to {MAX_IDEMPOTENCY_KEY_BYTES} printable ASCII characters (a fresh UUID per operation); retry with the same key to get the same answer"
            ))
            .into_response()
        })?;
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Request body too large",
            format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
        )
        .into_response()
    })?;
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), ToString::to_string);
    let digest = request_digest(parts.method.as_str(), &target, &bytes);
    let scope = principal.user.id.clone();
    let state_now = state
        .store
        .begin_idempotent(&scope, &key, digest, state.now_seconds())
        .await
        .map_err(|error| Problem::from(error).into_response())?;
    match state_now {
        IdempotencyState::New => {}
        IdempotencyState::Replay { status, body } => return Ok(replay(status, body)),
        IdempotencyState::Mismatch => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "this Idempotency-Key was used in the last 24 hours for a different request (method, path or body); use a new key for a new operation",
            )
            .into_response());
        }
        IdempotencyState::InProgress => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "idempotency-key-in-use",
                "Request in progress",
                "a request with this Idempotency-Key is still being processed; retry in a moment to get its answer",
            )
            .into_response());
        }
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, MAX_KEPT_ANSWER_BYTES).await {
        Ok(bytes) => bytes,
        Err(error) => {
            let _ = state.store.abandon_idempotent(&scope, &key).await;
            return Err(Problem::internal(&error).into_response());
        }
    };
    let kept = if parts.status.is_server_error() {
        state.store.abandon_idempotent(&scope, &key).await
    } else {
        state
            .store
            .finish_idempotent(&scope, &key, parts.status.as_u16(), bytes.to_vec())
            .await
    };
    if let Err(error) = kept {
        // The operation is done; only its replay record is missing, and a retry will be told
        // the key is in use until the record expires.
        tracing::error!(%error, "could not keep an idempotent answer");
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

fn replay(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let content_type = if status.is_success() {
        "application/json"
    } else {
        PROBLEM_CONTENT_TYPE
    };
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}
