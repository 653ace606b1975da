//! Verifiable receipts (issue 9, docs/aftersale.md): anyone may check a receipt's QR payload
//! and read the acquirer's public keys; the acquirer's operators rotate the signing key.

use crate::ApiState;
use crate::access::Principal;
use crate::problem::Problem;
use crate::views::AmountView;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// A genuine receipt, as `POST /api/v1/receipts/verify` answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifiedReceiptView {
    pub genuine: bool,
    pub rrn: String,
    pub terminal_id: String,
    pub merchant_id: String,
    /// First 6 / last 4.
    pub card: String,
    pub amount: AmountView,
    /// When the acquirer approved it, RFC 3339 UTC.
    pub time: String,
    pub auth_code: String,
    pub key_id: String,
    /// When the signing key was rotated out, if it was: the receipt is still genuine.
    pub key_retired_at: Option<String>,
}

impl VerifiedReceiptView {
    pub fn new(verified: &aftersale::Verified) -> Self {
        let statement = &verified.statement;
        let currency =
            money::Currency::from_alpha(&statement.currency).unwrap_or(money::Currency::CNY);
        VerifiedReceiptView {
            genuine: true,
            rrn: statement.rrn.clone(),
            terminal_id: statement.terminal_id.clone(),
            merchant_id: statement.merchant_id.clone(),
            card: statement.card.clone(),
            amount: AmountView::new(statement.amount_minor, currency),
            time: crate::time::rfc3339_seconds(statement.time),
            auth_code: statement.auth_code.clone(),
            key_id: statement.key_id.clone(),
            key_retired_at: verified.key_retired_at.map(crate::time::rfc3339_seconds),
        }
    }
}

/// The receipt copy of an approval, for its transaction certificate and evidence pack: the
/// signed statement its answer carried to the terminal (field 62, from the answer the journal
/// keeps) with what checking it says, or `null` when its answer carried none (a decline, a
/// message of another kind, a host without receipt keys). The statement names the card masked.
pub async fn receipt_copy(
    state: &ApiState,
    entry: &store::journal::JournalEntry,
) -> serde_json::Value {
    let payload = entry.answer.as_deref().and_then(|answer| {
        let profile = iso8583::Profile::builtin(RECEIPT_PROFILE).ok()?;
        let message = profile.unpack(answer).ok()?;
        Some(message.get(62)?.to_text())
    });
    let Some(payload) = payload else {
        return serde_json::Value::Null;
    };
    let checked = match &state.receipts {
        Some(keys) => keys
            .verify(&payload)
            .await
            .map_err(|rejection| rejection.to_string()),
        None => Err("this server holds no receipt keys to check it with".to_owned()),
    };
    match checked {
        Ok(verified) => serde_json::json!({
            "payload": payload,
            "genuine": true,
            "statement": VerifiedReceiptView::new(&verified),
        }),
        Err(why) => serde_json::json!({"payload": payload, "genuine": false, "why": why}),
    }
}

/// The profile of the terminals' answers the journal keeps (the acquirer's listener).
const RECEIPT_PROFILE: &str = "cup-bcd";

/// A public key, as `GET /api/v1/receipts/keys` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceiptKeyView {
    pub key_id: String,
    pub algorithm: &'static str,
    /// 32 bytes, hex.
    pub public_key: String,
    pub created_at: String,
    pub retired_at: Option<String>,
}

impl ReceiptKeyView {
    fn new(key: &aftersale::signer::PublicKey) -> Self {
        ReceiptKeyView {
            key_id: key.key_id.clone(),
            algorithm: "Ed25519",
            public_key: key.public_key.clone(),
            created_at: crate::time::rfc3339_seconds(key.created_at),
            retired_at: key.retired_at.map(crate::time::rfc3339_seconds),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    payload: String,
}

fn keys(state: &ApiState) -> Result<&aftersale::ReceiptKeys, Problem> {
    state.receipts.as_deref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "receipts-off",
            "Receipt verification is off",
            "this server holds no receipt keys (it runs without the acquirer host); ask the acquirer's own /verify page",
        )
    })
}

/// The problem for a payload that is not a genuine receipt: 422, saying why.
pub fn rejected(rejection: &aftersale::Rejection) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "receipt-not-genuine",
        "Receipt not genuine",
        format!("this receipt is NOT genuine: {rejection}"),
    )
}

/// Checks a receipt's QR payload (public: no login).
pub async fn verify(
    State(state): State<ApiState>,
    body: Bytes,
) -> Result<Json<VerifiedReceiptView>, Problem> {
    let request: VerifyRequest = serde_json::from_slice(&body).map_err(|error| {
        Problem::bad_request(format!(
            "the body must be {{\"payload\": \"EPR1|…\"}}, the text of the receipt's QR code: {error}"
        ))
    })?;
    let verified = keys(&state)?
        .verify(&request.payload)
        .await
        .map_err(|rejection| rejected(&rejection))?;
    Ok(Json(VerifiedReceiptView::new(&verified)))
}

/// The acquirer's receipt keys, oldest first (public: receipts can be checked offline).
pub async fn list_keys(
    State(state): State<ApiState>,
) -> Result<Json<crate::views::Page<ReceiptKeyView>>, Problem> {
    let data = keys(&state)?
        .public_keys()
        .iter()
        .map(ReceiptKeyView::new)
        .collect();
    Ok(Json(crate::views::Page {
        data,
        next_cursor: None,
    }))
}

/// A new signing key; the old one keeps verifying what it signed (platform operators).
pub async fn rotate(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<(StatusCode, Json<ReceiptKeyView>), Problem> {
    if principal.user.role != store::accounts::Role::PlatformOperator {
        return Err(Problem::forbidden(
            "only the acquirer's operators rotate the receipt signing key",
        ));
    }
    let key = keys(&state)?
        .rotate(state.now_seconds())
        .await
        .map_err(|error| Problem::internal(&error))?;
    tracing::warn!(key_id = %key.key_id, by = %principal.user.username, "receipt signing key rotated");
    Ok((StatusCode::CREATED, Json(ReceiptKeyView::new(&key))))
}
