//! `GET /api/v1/statements/{month}`: a month's transactions as CSV (`aftersale::statement`),
//! within the caller's tenant — a cardholder's cards (or one of them with `card`), a
//! merchant's terminals, an issuer's cards, an acquirer's merchants.

use crate::ApiState;
use crate::access::Principal;
use crate::problem::Problem;
use crate::routes::TransactionQuery;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use store::accounts::{MAX_TRANSACTIONS_PER_READ, TransactionFilter};

/// Most lines in one statement: a month of a busy merchant. A larger one is refused with
/// the advice to narrow it, rather than cut short without saying so.
pub const MAX_STATEMENT_LINES: usize = 50_000;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementQuery {
    /// A masked card number or a card id; every card of the caller's when absent.
    pub card: Option<String>,
    /// A merchant id, for callers that see several.
    pub merchant_id: Option<String>,
}

/// The statement of `month` (`YYYY-MM`, Asia/Shanghai) as `text/csv`, oldest first.
pub async fn statement(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(month): Path<String>,
    params: Result<Query<StatementQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(params) = params.map_err(|rejection| Problem::bad_request(rejection.body_text()))?;
    statement_for(&state, &principal, &month, params).await
}

/// The statement answer for `principal` (the API's caller, or the console's signed-in user).
pub async fn statement_for(
    state: &ApiState,
    principal: &Principal,
    month: &str,
    params: StatementQuery,
) -> Result<Response, Problem> {
    let (from, to) = aftersale::statement::month_bounds(month).ok_or_else(|| {
        Problem::bad_request(format!(
            "the month must be written YYYY-MM, such as 2026-11, got {month:?}"
        ))
    })?;
    let query = TransactionQuery {
        card: params.card,
        merchant_id: params.merchant_id,
        ..TransactionQuery::default()
    }
    .resolve_card_token(state)
    .await?;
    let records = crate::routes::records_visible_to(state, principal, query).await?;
    let records = records_between(state, records, from, to).await?;
    let directory = state.store.load_directory().await?;
    let body = aftersale::statement::csv(&records, &directory.merchants);
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"statement-{month}.csv\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Every record of `filter` received in `[from, to)`, oldest first, read page by page.
async fn records_between(
    state: &ApiState,
    filter: TransactionFilter,
    from: i64,
    to: i64,
) -> Result<Vec<store::accounts::TransactionRecord>, Problem> {
    let mut filter = TransactionFilter {
        from: Some(from),
        to: Some(to),
        limit: MAX_TRANSACTIONS_PER_READ,
        ..filter
    };
    let mut out = Vec::new();
    loop {
        let page = state.store.transactions(&filter).await?;
        let Some(last) = page.last().map(|record| record.id) else {
            break;
        };
        let full = i64::try_from(page.len()).unwrap_or(i64::MAX) >= filter.limit;
        out.extend(page);
        if out.len() > MAX_STATEMENT_LINES {
            return Err(Problem::bad_request(format!(
                "this statement has more than {MAX_STATEMENT_LINES} lines; ask for one card or one merchant (`card`, `merchant_id`)"
            )));
        }
        if !full {
            break;
        }
        filter.before_id = Some(last);
    }
    // The store reads newest first; a statement reads oldest first.
    out.reverse();
    Ok(out)
}
