//! Fraud reports (issue 9, R10, R17, R18): a cardholder reports one of their transactions as
//! fraud. In one step the card is frozen (its next authorization is declined 62, as an
//! emergency freeze), and an evidence pack is sealed (`aftersale::evidence`): the transaction,
//! its timeline, the merchant's and terminal's identity, the journal excerpt of its terminal
//! batch, the card's freeze, the audit trail of the transaction and the card, the acquirer's
//! receipt keys, the report itself, and all of it as a PDF. The report is stored with its
//! follow-ups (in one transaction): a case opened in the risk case queue, the merchant (its
//! users' and referring partners' webhooks) and the acquirer's operations (the platform
//! operators' webhooks) told, and the transaction disputed. The request does them at once;
//! [`run_follow_ups`] retries any that failed until each is done, by its business key, so
//! none is done twice.

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
    /// What the report set in motion (its case, webhooks, dispute) and how far each is; empty
    /// for a report made before they were kept.
    pub follow_ups: Vec<FollowUpView>,
}

/// One follow-up of a report, as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FollowUpView {
    /// `case`, `notify` or `dispute`.
    pub step: String,
    /// `pending` or `done`.
    pub state: String,
    pub attempts: i64,
    /// Why the last try failed (while pending); empty otherwise.
    pub last_error: String,
    /// When it is tried next, while pending.
    pub next_attempt_at: Option<String>,
    /// What it made, once done: `case 12`, `dispute dp_…`, the webhook deliveries queued.
    pub outcome: String,
    pub done_at: Option<String>,
}

impl From<&store::fraud_reports::FraudFollowUp> for FollowUpView {
    fn from(follow_up: &store::fraud_reports::FraudFollowUp) -> Self {
        let pending = follow_up.state == "pending";
        FollowUpView {
            step: follow_up.step.clone(),
            state: follow_up.state.clone(),
            attempts: follow_up.attempts,
            last_error: follow_up.last_error.clone(),
            next_attempt_at: pending
                .then(|| crate::time::rfc3339_seconds(follow_up.next_attempt_at)),
            outcome: follow_up.outcome.clone(),
            done_at: follow_up.done_at.map(crate::time::rfc3339_seconds),
        }
    }
}

impl FraudReportView {
    /// The report and its follow-ups as they stand in the store.
    pub async fn read(state: &ApiState, report: &FraudReport) -> Result<Self, Problem> {
        let follow_ups = state.store.fraud_follow_ups(&report.id).await?;
        let mut view = FraudReportView::new(report);
        view.follow_ups = follow_ups.iter().map(FollowUpView::from).collect();
        Ok(view)
    }

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
            follow_ups: Vec::new(),
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
    Ok((status, Json(FraudReportView::read(&state, &report).await?)))
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
    // The report and what it sets in motion are stored together: once it stands, the
    // follow-ups are done, here at once and by the background job until each is done.
    let follow_ups: &[&str] = if state.disputes.is_some() {
        &FOLLOW_UPS
    } else {
        &FOLLOW_UPS[..2]
    };
    let stored = state
        .store
        .put_fraud_report(
            FraudReport {
                id: report_id.clone(),
                transaction_id: record.id,
                card_id: card.id.clone(),
                reported_by: principal.user.username.clone(),
                reported_at: now,
                description: description.to_owned(),
                pack: sealed.text,
                pack_sha256: sealed.sha256,
            },
            follow_ups,
        )
        .await?;
    if stored.id != report_id {
        // Another request reported it at the same moment; its follow-ups are under way.
        return Ok((StatusCode::OK, stored));
    }
    // The report stands whatever the follow-ups do now: a failed one is retried by
    // [`run_follow_ups`].
    if let Err(problem) = follow_up_pass(state, Some(&stored.id), now).await {
        tracing::warn!(report = %stored.id, detail = %problem.detail, "fraud report: its follow-ups wait for the background job");
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

/// Follow-up: the report's case in the risk case queue (`review`), for the acquirer's
/// operators and the merchant's admin and manager to work. Its business key is the case's
/// de-duplication key (the rule and the transaction): one case per reported transaction.
pub const FOLLOW_UP_CASE: &str = "case";
/// Follow-up: the `fraud_report.opened` webhooks, keyed by the event id `evt_fraud_<report>`
/// (a subscription gets an event once). It names the case, so it waits for [`FOLLOW_UP_CASE`].
pub const FOLLOW_UP_NOTIFY: &str = "notify";
/// Follow-up: the transaction's dispute (`api::disputes`, one per transaction), for the
/// issuer to charge back. Only where disputes are served.
pub const FOLLOW_UP_DISPUTE: &str = "dispute";
/// What a stored report sets in motion, in the order it is done.
pub const FOLLOW_UPS: [&str; 3] = [FOLLOW_UP_CASE, FOLLOW_UP_NOTIFY, FOLLOW_UP_DISPUTE];
/// How long a claimed follow-up is left to its runner before another may take it.
pub const FOLLOW_UP_LEASE_SECONDS: i64 = 60;
/// The first retry's delay; each next one doubles, up to [`MAX_FOLLOW_UP_RETRY_SECONDS`].
pub const FIRST_FOLLOW_UP_RETRY_SECONDS: i64 = 5;
/// The longest wait between two tries: a follow-up is retried at least hourly until done.
pub const MAX_FOLLOW_UP_RETRY_SECONDS: i64 = 3_600;
/// Most follow-ups one background pass does.
const FOLLOW_UPS_PER_PASS: i64 = 50;
/// How often the background job looks for due follow-ups.
pub const FOLLOW_UP_PASS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// The delay before the next try of a follow-up that failed its `attempts`-th try.
pub fn follow_up_retry_seconds(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    FIRST_FOLLOW_UP_RETRY_SECONDS
        .saturating_mul(1_i64 << doublings)
        .min(MAX_FOLLOW_UP_RETRY_SECONDS)
}

/// What one pass of follow-ups did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FollowUpPass {
    pub done: usize,
    pub failed: usize,
}

/// Does the follow-ups due at `now` (only report `report_id`'s, when given), each claimed
/// first so that no other runner does it at the same time, and records how each ended.
pub async fn follow_up_pass(
    state: &ApiState,
    report_id: Option<&str>,
    now: i64,
) -> Result<FollowUpPass, Problem> {
    let claimed = state
        .store
        .claim_fraud_follow_ups(
            now,
            now + FOLLOW_UP_LEASE_SECONDS,
            FOLLOW_UPS_PER_PASS,
            report_id,
        )
        .await?;
    let mut pass = FollowUpPass::default();
    for follow_up in &claimed {
        let result = match follow_up_once(state, follow_up, now).await {
            Ok(outcome) => {
                tracing::info!(report = %follow_up.report_id, step = %follow_up.step, %outcome, "fraud report follow-up done");
                pass.done += 1;
                store::fraud_reports::FollowUpResult::Done { outcome, at: now }
            }
            Err(problem) => {
                let retry_at = now + follow_up_retry_seconds(follow_up.attempts);
                tracing::warn!(report = %follow_up.report_id, step = %follow_up.step, attempts = follow_up.attempts, retry_at, detail = %problem.detail, "fraud report follow-up failed; retried later");
                pass.failed += 1;
                // A 5xx's detail says only that it failed (its cause is in the log above and
                // in the problem's own log line): the report's readers include the cardholder.
                let error = if problem.status >= 500 {
                    "an internal error (see the server log)".to_owned()
                } else {
                    problem.detail
                };
                store::fraud_reports::FollowUpResult::Failed { error, retry_at }
            }
        };
        state
            .store
            .finish_fraud_follow_up(follow_up, result)
            .await?;
    }
    Ok(pass)
}

/// Runs [`follow_up_pass`] every `interval` on the node that leads the job, until `stop`
/// turns true. A failed pass is logged and the next one tries again.
pub async fn run_follow_ups(
    state: ApiState,
    interval: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if state.store.leads(store::leader::Job::FraudFollowUps).await
            && let Err(problem) = follow_up_pass(&state, None, state.now_seconds()).await
        {
            tracing::warn!(detail = %problem.detail, "fraud report follow-up pass failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
    }
}

/// Does one follow-up by its business key (so doing it again finds what the first time
/// made); returns what it made, for the report's readers.
async fn follow_up_once(
    state: &ApiState,
    follow_up: &store::fraud_reports::FraudFollowUp,
    now: i64,
) -> Result<String, Problem> {
    let report = state
        .store
        .fraud_report(&follow_up.report_id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no fraud report {}", follow_up.report_id)))?;
    // The steps act as the reporter did: the cardholder, on their own transaction.
    let reporter = state
        .store
        .user_by_username(&report.reported_by)
        .await?
        .ok_or_else(|| {
            Problem::not_found(format!(
                "the reporter {:?} is no user now",
                report.reported_by
            ))
        })?;
    let principal = Principal { user: reporter };
    let transaction_id = report.transaction_id.to_string();
    let record = crate::routes::visible_transaction(state, &principal, &transaction_id).await?;
    match follow_up.step.as_str() {
        FOLLOW_UP_CASE => {
            let case = open_case(state, &report, &record, now).await?;
            Ok(format!("case {case}"))
        }
        FOLLOW_UP_NOTIFY => {
            let case = state
                .store
                .fraud_follow_ups(&report.id)
                .await?
                .into_iter()
                .find(|other| other.step == FOLLOW_UP_CASE && other.state == "done")
                .and_then(|done| done.outcome.strip_prefix("case ")?.parse::<i64>().ok())
                .ok_or_else(|| {
                    Problem::new(
                        StatusCode::CONFLICT,
                        "follow-up-waiting",
                        "Waiting for another follow-up",
                        "waits for the report's case to open",
                    )
                })?;
            let card = Scope::of(&state.store, &principal.user)
                .await?
                .card(&report.card_id)
                .cloned()
                .ok_or_else(|| Problem::not_found(format!("no card {}", report.card_id)))?;
            let (merchant, operations) = notify(state, &report, &record, &card, case, now).await?;
            Ok(format!(
                "{merchant} merchant and {operations} operations webhook deliveries queued"
            ))
        }
        FOLLOW_UP_DISPUTE => {
            let (dispute, _) = crate::disputes::open_dispute(
                state,
                &principal,
                &transaction_id,
                "not_recognised",
                &report.description,
            )
            .await?;
            Ok(format!("dispute {}", dispute.id))
        }
        other => Err(Problem::bad_request(format!(
            "unknown follow-up {other:?} (known: {FOLLOW_UPS:?})"
        ))),
    }
}

/// Opens the report's case, or finds the one opened before for it; returns its id.
async fn open_case(
    state: &ApiState,
    report: &FraudReport,
    record: &store::accounts::TransactionRecord,
    now: i64,
) -> Result<i64, Problem> {
    let case = store::cases::NewCase {
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
    };
    if let Some(opened) = state.store.first_case_like(&case).await? {
        return Ok(opened);
    }
    Ok(state.store.open_case(case).await?)
}

/// Tells the merchant (its users' webhooks and its referring partners') and the acquirer's
/// operations (the platform operators' webhooks) of the report: which transaction, which
/// case, never the card's number nor the cardholder's words. Returns how many deliveries
/// were queued for each (a subscription told before is not told again).
async fn notify(
    state: &ApiState,
    report: &FraudReport,
    record: &store::accounts::TransactionRecord,
    card: &store::directory::Card,
    case: i64,
    now: i64,
) -> Result<(usize, usize), Problem> {
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
    Ok((merchant, operations))
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
    Ok(Json(FraudReportView::read(&state, &report).await?))
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
