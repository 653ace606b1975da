//! Fraud reports (issue 9, R10, R17, R18): a cardholder reports one of their transactions as
//! fraud. In one step the card is frozen (its next authorization is declined 62, as an
//! emergency freeze), and an evidence pack is sealed (`aftersale::evidence`): the transaction,
//! its timeline, the merchant's and terminal's identity, the journal excerpt of its terminal
//! batch, the card's freeze, the audit trail of the transaction and the card, the acquirer's
//! receipt keys, the report itself, and all of it as a PDF. Then a case is opened in the risk
//! case queue, the merchant (its users' and referring partners' webhooks) and the acquirer's
//! operations (the platform operators' webhooks) are told, and the transaction is disputed.

use crate::ApiState;
use crate::access::{Principal, Scope};
use crate::problem::Problem;
use crate::views::{MerchantView, TerminalView, TransactionView};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use store::accounts::Role;
use store::fraud_reports::FraudReport;

/// Longest description a report may carry.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// The webhook event telling the merchant and the acquirer's operations of a report.
pub const EVENT_FRAUD_REPORTED: &str = "fraud_report.opened";
/// The rule name of the case a report opens (the case queue's `rules` column).
pub const CASE_RULE: &str = "fraud-report";
/// Most audit entries of the transaction and of the card a pack carries (the newest).
const MAX_AUDIT_ENTRIES: i64 = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFraudReport {
    pub description: String,
}

/// A report as the API shows it (the pack itself is `GET /api/v1/fraud-reports/{id}/pack`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FraudReportView {
    pub id: String,
    pub transaction_id: String,
    pub card_id: String,
    pub card_frozen: bool,
    pub reported_by: String,
    pub reported_at: String,
    pub description: String,
    /// SHA-256 of the evidence pack as sealed.
    pub pack_sha256: String,
    pub pack_url: String,
    /// The pack's PDF (also inside the pack, `evidence.pdf`).
    pub pdf_url: String,
    /// Every file's SHA-256, the PDF's and the pack's, as `sha256sum -c` reads them.
    pub manifest_url: String,
}

impl FraudReportView {
    pub fn new(report: &FraudReport) -> Self {
        FraudReportView {
            id: report.id.clone(),
            transaction_id: report.transaction_id.to_string(),
            card_id: report.card_id.clone(),
            card_frozen: true,
            reported_by: report.reported_by.clone(),
            reported_at: crate::time::rfc3339_seconds(report.reported_at),
            description: report.description.clone(),
            pack_sha256: report.pack_sha256.clone(),
            pack_url: format!("/api/v1/fraud-reports/{}/pack", report.id),
            pdf_url: format!("/api/v1/fraud-reports/{}/pdf", report.id),
            manifest_url: format!("/api/v1/fraud-reports/{}/manifest", report.id),
        }
    }
}

/// `POST /api/v1/transactions/{id}/fraud-report`: 201 with the new report, or 200 with the one
/// made before for this transaction.
pub async fn report(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<FraudReportView>), Problem> {
    let new: NewFraudReport = serde_json::from_slice(&body).map_err(|error| {
        Problem::bad_request(format!(
            "the body must be {{\"description\": \"what happened\"}}: {error}"
        ))
    })?;
    let (status, report) = report_fraud(&state, &principal, &id, &new.description).await?;
    Ok((status, Json(FraudReportView::new(&report))))
}

/// Reports transaction `id` as fraud for `principal` (the API's caller or the console's user).
pub async fn report_fraud(
    state: &ApiState,
    principal: &Principal,
    id: &str,
    description: &str,
) -> Result<(StatusCode, FraudReport), Problem> {
    if principal.user.role != Role::Cardholder {
        return Err(Problem::forbidden(
            "only the cardholder reports fraud on their own card; operators freeze cards with PUT /api/v1/freezes/card/{id}",
        ));
    }
    let description = description.trim();
    if description.is_empty() || description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Problem::bad_request(format!(
            "description: say what happened, in 1 to {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    // Someone else's transaction is not found: it does not exist for this caller.
    let record = crate::routes::visible_transaction(state, principal, id).await?;
    if let Some(existing) = state.store.fraud_report_of_transaction(record.id).await? {
        return Ok((StatusCode::OK, existing));
    }
    let scope = Scope::of(&state.store, &principal.user).await?;
    let card = scope
        .cards
        .iter()
        .find(|card| Some(card.masked_pan()) == record.card)
        .ok_or_else(|| Problem::not_found(format!("no card of yours made transaction {id:?}")))?;
    let now = state.now_seconds();

    // The card first: whatever else fails, it is frozen.
    let freeze = store::freezes::Freeze {
        scope: "card".into(),
        target: card.id.clone(),
        reason: format!("fraud reported on transaction {}", record.id),
        frozen_by: principal.user.username.clone(),
        frozen_at: now,
    };
    state.store.put_freeze(freeze.clone()).await?;
    state.freezes.set(risk::FreezeScope::Card, &card.id, true);
    tracing::warn!(card = %card.id, transaction = record.id, by = %principal.user.username, "fraud reported: card frozen");

    let directory = state.store.load_directory().await?;
    let merchant = directory
        .merchants
        .iter()
        .find(|merchant| merchant.id == record.merchant_id);
    let terminal = directory
        .terminals
        .iter()
        .find(|terminal| terminal.id == record.terminal_id);
    let timeline = crate::timeline::events(state, &record).await?;
    // The transaction's journal excerpt: its own messages and those naming it, nothing of the
    // batch's other cardholders.
    let entries = crate::certificates::transaction_entries(state, &record).await?;
    let receipt = match crate::certificates::own_entry(&entries, &record) {
        Some(entry) => crate::receipts::receipt_copy(state, entry).await,
        None => serde_json::Value::Null,
    };
    let journal: Vec<serde_json::Value> = entries
        .iter()
        .map(|entry| {
            serde_json::json!({
                "received_at": crate::time::rfc3339_micros(entry.received_at),
                "terminal_id": entry.terminal_id, "merchant_id": entry.merchant_id,
                "mti": entry.mti, "kind": entry.kind, "batch": entry.batch, "stan": entry.stan,
                "amount_minor": entry.amount_minor, "currency": entry.currency,
                "card": entry.card, "original_batch": entry.original_batch,
                "original_stan": entry.original_stan, "response": entry.response,
                "rrn": entry.rrn, "auth_code": entry.auth_code, "peer": entry.peer,
            })
        })
        .collect();
    let receipt_keys = state
        .receipts
        .as_ref()
        .map(|keys| keys.public_keys())
        .unwrap_or_default();
    let report_id = format!("fr_{:016x}", rand::random::<u64>());
    // The report is in the audit log before the pack is sealed, so the pack's trail holds it.
    state
        .audit(
            &principal.user,
            "fraud.report",
            &format!("transaction:{}", record.id),
            &format!("report {report_id}; card {} frozen", card.id),
            crate::audit::tenant_label(&principal.user.tenant),
        )
        .await?;
    let audit = audit_trail(state, record.id, &card.id).await?;
    let value = |value: Result<serde_json::Value, serde_json::Error>| value.unwrap_or_default();
    let sealed = aftersale::evidence::seal(&[
        (
            "report.json",
            serde_json::json!({
                "id": report_id, "reported_by": principal.user.username,
                "reported_at": crate::time::rfc3339_seconds(now),
                "description": description,
            }),
        ),
        (
            "transaction.json",
            value(serde_json::to_value(TransactionView::from(&record))),
        ),
        ("timeline.json", value(serde_json::to_value(&timeline))),
        (
            "merchant.json",
            value(serde_json::to_value(merchant.map(MerchantView::from))),
        ),
        (
            "terminal.json",
            value(serde_json::to_value(terminal.map(TerminalView::from))),
        ),
        ("journal.json", serde_json::Value::Array(journal)),
        ("receipt.json", receipt),
        (
            "card_freeze.json",
            serde_json::json!({
                "card_id": card.id, "card": card.masked_pan(),
                "frozen_at": crate::time::rfc3339_seconds(now), "reason": freeze.reason,
            }),
        ),
        ("audit.json", value(serde_json::to_value(&audit))),
        (
            "receipt_keys.json",
            value(serde_json::to_value(&receipt_keys)),
        ),
    ]);
    let stored = state
        .store
        .put_fraud_report(FraudReport {
            id: report_id.clone(),
            transaction_id: record.id,
            card_id: card.id.clone(),
            reported_by: principal.user.username.clone(),
            reported_at: now,
            description: description.to_owned(),
            pack: sealed.text,
            pack_sha256: sealed.sha256,
        })
        .await?;
    if stored.id != report_id {
        // Another request reported it at the same moment and did the rest.
        return Ok((StatusCode::OK, stored));
    }
    // The report stands whatever the rest does: each failure is logged, and the report's
    // reader sees the card frozen and the pack sealed.
    let case = open_case(state, &stored, &record, now).await;
    if let Err(problem) = notify(state, &stored, &record, card, case.as_ref().ok(), now).await {
        tracing::warn!(report = %stored.id, detail = %problem.detail, "fraud report: the merchant and operations were not told");
    }
    // A fraud report disputes the transaction too (`api::disputes`), for the issuer to charge
    // back.
    if state.disputes.is_some()
        && let Err(problem) =
            crate::disputes::open_dispute(state, principal, id, "not_recognised", description).await
    {
        tracing::warn!(transaction = record.id, detail = %problem.detail, "fraud report opened no dispute");
    }
    Ok((StatusCode::CREATED, stored))
}

/// The audit log's entries about the transaction and the card, oldest first (at most
/// [`MAX_AUDIT_ENTRIES`] of each, the newest).
async fn audit_trail(
    state: &ApiState,
    transaction_id: i64,
    card_id: &str,
) -> Result<Vec<store::audit::AuditEntry>, Problem> {
    let mut entries = Vec::new();
    for target in [
        format!("transaction:{transaction_id}"),
        format!("card:{card_id}"),
    ] {
        let mut found = Vec::new();
        let mut after_seq = 0;
        loop {
            let page = state
                .store
                .audit_entries(store::audit::AuditQuery {
                    after_seq,
                    limit: store::audit::MAX_AUDIT_PAGE,
                    target: Some(target.clone()),
                    ..store::audit::AuditQuery::default()
                })
                .await?;
            let Some(last) = page.last().map(|entry| entry.seq) else {
                break;
            };
            after_seq = last;
            found.extend(page);
            let keep = usize::try_from(MAX_AUDIT_ENTRIES).unwrap_or(usize::MAX);
            if found.len() > keep {
                found.drain(..found.len() - keep);
            }
        }
        entries.extend(found);
    }
    entries.sort_by_key(|entry| entry.seq);
    Ok(entries)
}

/// Opens the report's case in the risk case queue (`review`), for the acquirer's operators
/// and the merchant's admin and manager to work; returns its id.
async fn open_case(
    state: &ApiState,
    report: &FraudReport,
    record: &store::accounts::TransactionRecord,
    now: i64,
) -> Result<i64, Problem> {
    let opened = state
        .store
        .open_case(store::cases::NewCase {
            at: now,
            merchant_id: record.merchant_id.clone(),
            terminal_id: record.terminal_id.clone(),
            card_id: report.card_id.clone(),
            rules: format!(
                "{CASE_RULE}(review,0): the cardholder reported transaction {} as fraud (report {})",
                record.id, report.id
            ),
            severity: "review".into(),
            // One case per reported transaction.
            rule_names: vec![CASE_RULE.to_owned(), format!("transaction {}", record.id)],
        })
        .await;
    match opened {
        Ok(case) => {
            tracing::info!(report = %report.id, case, "fraud report: case opened");
            Ok(case)
        }
        Err(error) => {
            tracing::warn!(report = %report.id, %error, "fraud report opened no case");
            Err(error.into())
        }
    }
}

/// Tells the merchant (its users' webhooks and its referring partners') and the acquirer's
/// operations (the platform operators' webhooks) of the report: which transaction, which
/// case, never the card's number nor the cardholder's words.
async fn notify(
    state: &ApiState,
    report: &FraudReport,
    record: &store::accounts::TransactionRecord,
    card: &store::directory::Card,
    case: Option<&i64>,
    now: i64,
) -> Result<(), Problem> {
    let data = serde_json::json!({
        "report_id": report.id,
        "transaction_id": record.id.to_string(),
        "merchant_id": record.merchant_id,
        "terminal_id": record.terminal_id,
        "rrn": record.rrn,
        "amount_minor": record.amount_minor,
        "card": card.masked_pan(),
        "reported_at": crate::time::rfc3339_seconds(report.reported_at),
        "card_frozen": true,
        "case_id": case,
    });
    let event_id = format!("evt_fraud_{}", report.id);
    let merchant = crate::webhooks::queue_merchant_event(
        &state.store,
        &record.merchant_id,
        &event_id,
        EVENT_FRAUD_REPORTED,
        data.clone(),
        now,
    )
    .await?;
    let operations = crate::webhooks::queue_operations_event(
        &state.store,
        &event_id,
        EVENT_FRAUD_REPORTED,
        data,
        now,
    )
    .await?;
    tracing::info!(report = %report.id, merchant, operations, "fraud report: webhooks queued");
    Ok(())
}

/// The report `id` if the caller may see it: its reporter, the acquirer's operators, the
/// operators of the card's issuer. 404 otherwise.
pub async fn visible_report(
    state: &ApiState,
    principal: &Principal,
    id: &str,
) -> Result<FraudReport, Problem> {
    let not_found = || Problem::not_found(format!("no fraud report {id:?} that you may see"));
    let report = state.store.fraud_report(id).await?.ok_or_else(not_found)?;
    let allowed = match principal.user.role {
        Role::PlatformOperator => true,
        Role::IssuerOperator => Scope::of(&state.store, &principal.user)
            .await?
            .card(&report.card_id)
            .is_some(),
        _ => report.reported_by == principal.user.username,
    };
    allowed.then_some(report).ok_or_else(not_found)
}

/// `GET /api/v1/fraud-reports/{id}`.
pub async fn get_report(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<FraudReportView>, Problem> {
    let report = visible_report(&state, &principal, &id).await?;
    Ok(Json(FraudReportView::new(&report)))
}

/// The evidence pack as a JSON download, byte for byte as sealed.
pub fn pack_response(report: &FraudReport) -> Response {
    let mut response = report.pack.clone().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", pack_name(report)))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&report.pack_sha256) {
        headers.insert("x-pack-sha256", value);
    }
    response
}

/// `GET /api/v1/fraud-reports/{id}/pack`.
pub async fn get_pack(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let report = visible_report(&state, &principal, &id).await?;
    Ok(pack_response(&report))
}

/// The evidence pack's PDF, byte for byte as sealed in the pack (`evidence.pdf`); 404 for a
/// report sealed before packs carried one.
pub fn pdf_response(report: &FraudReport) -> Result<Response, Problem> {
    let bytes = aftersale::evidence::file_bytes(&report.pack, aftersale::evidence::PDF_NAME)
        .map_err(|reason| {
            Problem::not_found(format!(
                "report {} has no PDF ({reason}): it was sealed before packs carried one; its JSON pack stands",
                report.id
            ))
        })?;
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", pdf_name(report)))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&sha256) {
        headers.insert("x-pdf-sha256", value);
    }
    Ok(response)
}

/// The download names of the pack and its PDF.
fn pack_name(report: &FraudReport) -> String {
    format!("evidence-{}.json", report.id)
}

fn pdf_name(report: &FraudReport) -> String {
    format!("evidence-{}.pdf", report.id)
}

/// The manifest of every file, the PDF and the pack, as `sha256sum -c` reads it (a text
/// download named `SHA256SUMS-<id>`).
pub fn manifest_response(report: &FraudReport) -> Result<Response, Problem> {
    let sums = aftersale::evidence::sha256sums(&report.pack, &pack_name(report), &pdf_name(report))
        .map_err(|reason| {
            Problem::internal(&format!("the stored pack of {}: {reason}", report.id))
        })?;
    let mut response = sums.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"SHA256SUMS-{}\"",
        report.id
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// `GET /api/v1/fraud-reports/{id}/pdf`.
pub async fn get_pdf(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let report = visible_report(&state, &principal, &id).await?;
    pdf_response(&report)
}

/// `GET /api/v1/fraud-reports/{id}/manifest`.
pub async fn get_manifest(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let report = visible_report(&state, &principal, &id).await?;
    manifest_response(&report)
}
