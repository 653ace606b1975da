//! `GET /api/v1/transactions/{id}/timeline`: what happened to a transaction, in order
//! (`aftersale::timeline`), for whoever may see the transaction — its cardholder, its issuer's
//! operators, its merchant, the acquirer's operators.

use crate::ApiState;
use crate::access::Principal;
use crate::problem::Problem;
use crate::views::{AmountView, Page};
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TimelineEventView {
    pub state: &'static str,
    /// RFC 3339, UTC.
    pub at: String,
    pub amount: Option<AmountView>,
    pub message: String,
}

/// The transaction's timeline, oldest first.
pub async fn timeline(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Page<TimelineEventView>>, Problem> {
    let record = crate::routes::visible_transaction(&state, &principal, &id).await?;
    Ok(Json(Page {
        data: events(&state, &record).await?,
        next_cursor: None,
    }))
}

/// The timeline of a transaction the caller may see, as the API and console show it.
pub async fn events(
    state: &ApiState,
    record: &store::accounts::TransactionRecord,
) -> Result<Vec<TimelineEventView>, Problem> {
    let batch = match record.batch {
        Some(batch) => {
            state
                .store
                .journal_of(&record.terminal_id, batch, None)
                .await?
        }
        None => Vec::new(),
    };
    let currency = record
        .currency
        .and_then(|numeric| u16::try_from(numeric).ok())
        .and_then(|numeric| money::Currency::from_numeric(numeric).ok());
    let mut events = aftersale::timeline::timeline(record, &batch);
    // A fraud report is a step of the transaction's life too (`api::fraud`).
    if let Some(report) = state.store.fraud_report_of_transaction(record.id).await? {
        events.push(aftersale::timeline::Event {
            state: "reported-as-fraud",
            at: report.reported_at.saturating_mul(1_000_000),
            amount_minor: None,
            message: format!("fraud report {}", report.id),
        });
        events.sort_by_key(|event| event.at);
    }
    // Refunds and requests made from the console and the API (`api::refunds`).
    for refund in state.store.refunds_of_transaction(record.id).await? {
        let (state, at) = match refund.status.as_str() {
            "refunded" => ("refunded", refund.decided_at),
            "requested" | "accepted" => ("refund-requested", Some(refund.requested_at)),
            "declined" if refund.seq == 0 => ("refund-declined", refund.decided_at),
            _ => continue,
        };
        events.push(aftersale::timeline::Event {
            state,
            at: at.unwrap_or(refund.requested_at).saturating_mul(1_000_000),
            amount_minor: Some(refund.amount_minor),
            message: format!("refund {}", refund.id),
        });
    }
    // The dispute's steps (`api::disputes`), each when it was taken.
    if let Some(dispute) = state.store.dispute_of_transaction(record.id).await? {
        let mut step = |state: &'static str, at: Option<i64>, amount: bool, message: &str| {
            if let Some(at) = at {
                events.push(aftersale::timeline::Event {
                    state,
                    at: at.saturating_mul(1_000_000),
                    amount_minor: amount.then_some(dispute.amount_minor),
                    message: format!("dispute {} {message}", dispute.id),
                });
            }
        };
        step("disputed", Some(dispute.opened_at), true, &dispute.reason);
        let reviewed = match dispute.status.as_str() {
            "rejected" => "dispute-rejected",
            _ => "charged-back",
        };
        step(
            reviewed,
            dispute.reviewed_at,
            reviewed == "charged-back",
            "reviewed",
        );
        step("dispute-answered", dispute.answered_at, false, "answered");
        let decided = match dispute.status.as_str() {
            "won_by_merchant" => "chargeback-reversed",
            _ => "chargeback-final",
        };
        step(decided, dispute.decided_at, true, &dispute.status);
    }
    events.sort_by_key(|event| event.at);
    Ok(events
        .into_iter()
        .map(|event| TimelineEventView {
            state: event.state,
            at: crate::time::rfc3339_micros(event.at),
            amount: event
                .amount_minor
                .zip(currency)
                .map(|(minor, currency)| AmountView::new(minor, currency)),
            message: event.message,
        })
        .collect())
}
