//! End of day in the console (issue 12): the business dates settled, each date's reports with
//! downloads (statements as CSV and PDF, clearing files, the terminal batches) and its
//! reconciliation report as a table. The reports are the ones `easypos settle` kept in the
//! store ((`clearing::report::keep`)); the acquirer's operators see every one, a merchant's
//! admin and manager only their merchant's statements, and a report outside the visitor's
//! scope answers 404 as one that does not exist.

use super::{Visit, error_page, internal, render};
use crate::Console;
use api::access::Resource;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use store::accounts::Role;
use store::settlement_reports::ReportQuery;

const PATH: &str = "/console/settlement";

#[derive(Template)]
#[template(path = "settlement.html")]
struct SettlementPage {
    chrome: super::Chrome,
    dates: Vec<String>,
}

/// A report as the cycle page lists it: (name, kind, merchant, currency).
type ReportRow = (String, String, String, String);

#[derive(Template)]
#[template(path = "settlement_cycle.html")]
struct CyclePage {
    chrome: super::Chrome,
    date: String,
    reports: Vec<ReportRow>,
    /// The reconciliation report's header and rows (operators only; empty otherwise).
    breaks_header: Vec<String>,
    breaks: Vec<Vec<String>>,
    operator: bool,
}

/// Whose reports the visitor may see: every report for the acquirer's operators, else the
/// statements of the merchants in its scope.
async fn query_of(console: &Console, visit: &Visit) -> Result<ReportQuery, Response> {
    if visit.user.role == Role::PlatformOperator {
        return Ok(ReportQuery { merchants: None });
    }
    let scope = console.scope(visit).await?;
    Ok(ReportQuery {
        merchants: Some(scope.merchants.iter().map(|m| m.id.clone()).collect()),
    })
}

pub async fn cycles(State(console): State<Console>, headers: HeaderMap) -> Response {
    let visit = match console
        .visit(&headers, Some(Resource::Settlement), PATH)
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let query = match query_of(&console, &visit).await {
        Ok(query) => query,
        Err(response) => return response,
    };
    match console.api.store.settlement_dates(&query).await {
        Ok(dates) => render(
            &SettlementPage {
                chrome: visit.chrome,
                dates,
            },
            StatusCode::OK,
        ),
        Err(error) => internal(&visit, &error),
    }
}

/// A date as the URL carries it: `YYYY-MM-DD`, nothing else (the store is asked for it as a
/// key; a date with no reports is not found).
fn date_of(text: &str) -> Option<String> {
    let shaped = text.len() == 10
        && text.char_indices().all(|(index, c)| match index {
            4 | 7 => c == '-',
            _ => c.is_ascii_digit(),
        });
    shaped.then(|| text.to_owned())
}

pub async fn cycle(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(date): Path<String>,
) -> Response {
    let visit = match console
        .visit(&headers, Some(Resource::Settlement), PATH)
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let Some(date) = date_of(&date) else {
        return error_page(visit.chrome, StatusCode::NOT_FOUND);
    };
    let query = match query_of(&console, &visit).await {
        Ok(query) => query,
        Err(response) => return response,
    };
    let listed = match console.api.store.settlement_reports_of(&date, &query).await {
        Ok(listed) => listed,
        Err(error) => return internal(&visit, &error),
    };
    if listed.is_empty() {
        return error_page(visit.chrome, StatusCode::NOT_FOUND);
    }
    let operator = query.merchants.is_none();
    let (mut breaks_header, mut breaks) = (Vec::new(), Vec::new());
    if operator {
        let name = format!("reconciliation-{date}.csv");
        match console
            .api
            .store
            .settlement_report(&date, &name, &query)
            .await
        {
            Ok(Some(report)) => {
                let mut rows = csv_rows(&String::from_utf8_lossy(&report.content));
                if !rows.is_empty() {
                    breaks_header = rows.remove(0);
                    breaks = rows;
                }
            }
            Ok(None) => {}
            Err(error) => return internal(&visit, &error),
        }
    }
    let reports = listed
        .into_iter()
        .map(|report| {
            (
                report.name,
                report.kind,
                report.merchant_id.unwrap_or_default(),
                report.currency,
            )
        })
        .collect();
    render(
        &CyclePage {
            chrome: visit.chrome,
            date,
            reports,
            breaks_header,
            breaks,
            operator,
        },
        StatusCode::OK,
    )
}

pub async fn download(
    State(console): State<Console>,
    headers: HeaderMap,
    Path((date, name)): Path<(String, String)>,
) -> Response {
    let visit = match console
        .visit(&headers, Some(Resource::Settlement), PATH)
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let Some(date) = date_of(&date) else {
        return error_page(visit.chrome, StatusCode::NOT_FOUND);
    };
    let query = match query_of(&console, &visit).await {
        Ok(query) => query,
        Err(response) => return response,
    };
    let report = match console
        .api
        .store
        .settlement_report(&date, &name, &query)
        .await
    {
        Ok(Some(report)) => report,
        Ok(None) => return error_page(visit.chrome, StatusCode::NOT_FOUND),
        Err(error) => return internal(&visit, &error),
    };
    let content_type = if report.name.ends_with(".pdf") {
        "application/pdf"
    } else {
        "text/csv; charset=utf-8"
    };
    let mut response = report.content.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Names are made by `clearing::report` from ids and dates; anything else is not sent.
    if report
        .name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && let Ok(value) =
            HeaderValue::from_str(&format!("attachment; filename=\"{}\"", report.name))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// The rows of an RFC 4180 CSV text (quoted fields may hold commas, quotes and line breaks).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field) = (Vec::new(), String::new());
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_rows_read_quoted_fields() {
        assert_eq!(
            super::csv_rows("a,b\n\"x, y\",\"say \"\"hi\"\"\"\n"),
            vec![
                vec!["a".to_owned(), "b".to_owned()],
                vec!["x, y".to_owned(), "say \"hi\"".to_owned()]
            ]
        );
    }
}
