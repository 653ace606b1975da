//! `GET /api/v1/transactions/{id}/certificate` (issue 9, R8; `aftersale::certificate`): the
//! transaction certificate, signed by the acquirer, as JSON or PDF (`?format=pdf`), for
//! whoever may see the transaction — the merchant produces it, the cardholder and the issuer
//! ask for it. Every issue is in the audit log.

use crate::ApiState;
use crate::access::Principal;
use crate::problem::Problem;
use crate::views::{MerchantView, TerminalView, TransactionView};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct CertificateQuery {
    /// `json` (the default) or `pdf`.
    pub format: Option<String>,
}

/// The certificate of transaction `id` for `principal`, logged.
pub async fn certificate_of(
    state: &ApiState,
    principal: &Principal,
    id: &str,
    format: &str,
) -> Result<aftersale::certificate::Certificate, Problem> {
    let record = crate::routes::visible_transaction(state, principal, id).await?;
    let keys = state.receipts.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "receipts-off",
            "Receipt keys unavailable",
            "this server holds no acquirer keys to sign a certificate with",
        )
    })?;
    let directory = state.store.load_directory().await?;
    let merchant = directory
        .merchants
        .iter()
        .find(|merchant| merchant.id == record.merchant_id)
        .map(MerchantView::from);
    let terminal = directory
        .terminals
        .iter()
        .find(|terminal| terminal.id == record.terminal_id)
        .map(TerminalView::from);
    let timeline = crate::timeline::events(state, &record).await?;
    let entries = transaction_entries(state, &record).await?;
    let own = own_entry(&entries, &record);
    let journal: Vec<serde_json::Value> = entries
        .iter()
        .map(|entry| {
            serde_json::json!({
                "received_at": crate::time::rfc3339_micros(entry.received_at),
                "mti": entry.mti, "kind": entry.kind, "batch": entry.batch,
                "stan": entry.stan, "amount_minor": entry.amount_minor,
                "currency": entry.currency, "card": entry.card,
                "response": entry.response, "rrn": entry.rrn, "auth_code": entry.auth_code,
                "operator": entry.operator, "entry_mode": entry.entry_mode,
                "card_verification": entry.card_verification,
            })
        })
        .collect();
    let value = |value: Result<serde_json::Value, serde_json::Error>| value.unwrap_or_default();
    let facts = aftersale::certificate::Facts {
        transaction: value(serde_json::to_value(TransactionView::from(&record))),
        merchant: value(serde_json::to_value(merchant)),
        terminal: value(serde_json::to_value(terminal)),
        timeline: value(serde_json::to_value(&timeline)),
        journal: serde_json::Value::Array(journal),
        issued_to: principal.user.username.clone(),
        issued_at: crate::time::rfc3339_seconds(state.now_seconds()),
        operator: own.and_then(|entry| entry.operator.clone()),
        entry_mode: own.and_then(|entry| entry.entry_mode.clone()),
        card_verification: own.and_then(|entry| entry.card_verification.clone()),
        receipt: match own {
            Some(entry) => crate::receipts::receipt_copy(state, entry).await,
            None => serde_json::Value::Null,
        },
    };
    let certificate =
        aftersale::certificate::issue(keys, &facts).map_err(|error| Problem::internal(&error))?;
    state
        .audit(
            &principal.user,
            "certificate.issue",
            &format!("transaction:{}", record.id),
            &format!("format {format} sha256 {}", certificate.sha256),
            crate::audit::merchant_label(&record.merchant_id),
        )
        .await?;
    Ok(certificate)
}

/// The journal's entries of a transaction: its own messages (its trace number in its batch)
/// and those naming it as their original (voids, reversals, advices). Nothing of the batch's
/// other transactions.
pub(crate) async fn transaction_entries(
    state: &ApiState,
    record: &store::accounts::TransactionRecord,
) -> Result<Vec<store::journal::JournalEntry>, Problem> {
    Ok(match record.batch {
        Some(batch) => state
            .store
            .journal_of(&record.terminal_id, batch, None)
            .await?
            .into_iter()
            .filter(|entry| {
                entry.stan == record.stan
                    || (entry.original_batch == record.batch && entry.original_stan == record.stan)
            })
            .collect(),
        None => Vec::new(),
    })
}

/// The transaction's own row among `entries`: the first with its trace number and message
/// type (a retransmission repeats it).
pub(crate) fn own_entry<'a>(
    entries: &'a [store::journal::JournalEntry],
    record: &store::accounts::TransactionRecord,
) -> Option<&'a store::journal::JournalEntry> {
    entries
        .iter()
        .find(|entry| entry.stan == record.stan && entry.mti == record.mti)
}

/// `GET /api/v1/transactions/{id}/certificate[?format=pdf]`.
pub async fn certificate(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    query: Result<Query<CertificateQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query.map_err(|error| Problem::bad_request(error.body_text()))?;
    let format = query.format.unwrap_or_else(|| "json".to_owned());
    if format != "json" && format != "pdf" {
        return Err(Problem::bad_request(format!(
            "format: json or pdf, got {format:?}"
        )));
    }
    let certificate = certificate_of(&state, &principal, &id, &format).await?;
    let sha = HeaderValue::from_str(&certificate.sha256).ok();
    let mut response = if format == "pdf" {
        let mut response = aftersale::certificate::pdf(&certificate).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/pdf"),
        );
        response
    } else {
        let mut response = certificate.json.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    };
    if let Some(sha) = sha {
        response.headers_mut().insert("x-certificate-sha256", sha);
    }
    Ok(response)
}
