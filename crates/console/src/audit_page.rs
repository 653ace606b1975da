//! The audit trail page (issue 10, R16/R17): a search over the hash-chained audit log by actor,
//! action, target and time range, within what the user may see (operators their institution's
//! and merchants' entries, a merchant's admin and manager their merchant's), and an export of
//! the same search with its proof, as JSON (docs/audit.md#exports), checked offline by
//! `easypos audit verify --export FILE`. The work is the API's ([`api::audit`]).

use super::{Visit, internal, render};
use crate::Console;
use api::access::{Principal, Resource};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use store::audit::AuditQuery;

/// The page's path.
pub const PATH: &str = "/console/audit";
/// Entries one page of results shows, oldest first; "Next" reads on from the last.
const PAGE_ENTRIES: i64 = 100;

/// The search form's fields, as typed (times are RFC 3339 or dates, UTC).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    after: String,
}

fn text(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

fn seconds(name: &str, value: &str) -> Result<Option<i64>, String> {
    let Some(value) = text(value) else {
        return Ok(None);
    };
    api::time::parse_rfc3339_micros(&value)
        .map(|micros| Some(micros.div_euclid(1_000_000)))
        .ok_or_else(|| format!("{name}: {value:?} is not a date (2026-11-25) or an RFC 3339 time"))
}

impl SearchForm {
    fn query(&self) -> Result<api::audit::ExportQuery, String> {
        Ok(api::audit::ExportQuery {
            actor: text(&self.actor),
            action: text(&self.action),
            target: text(&self.target),
            from: seconds("from", &self.from)?,
            before: seconds("to", &self.to)?,
        })
    }

    /// The same search as a query string (for the export link and the next page).
    fn query_string(&self) -> String {
        let pairs = [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
            ("from", &self.from),
            ("to", &self.to),
        ];
        pairs
            .iter()
            .filter(|(_, value)| !value.trim().is_empty())
            .map(|(name, value)| format!("{name}={}", encode(value.trim())))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[derive(Clone, Debug)]
pub struct EntryRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub hash: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: super::Chrome,
    form: SearchForm,
    rows: Vec<EntryRow>,
    /// The query string of this search (for the export link), and of its next page.
    search: String,
    next: String,
    message: String,
}

pub async fn audit(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(form): Query<SearchForm>,
) -> Response {
    let visit = match console.visit(&headers, Some(Resource::Audit), PATH).await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let query = match form.query() {
        Ok(query) => query,
        Err(message) => return page(visit, form, Vec::new(), message, StatusCode::BAD_REQUEST),
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    let tenants = match api::audit::visible_tenants(&console.api, &principal).await {
        Ok(tenants) => tenants,
        Err(problem) => return internal(&visit, &problem.detail),
    };
    let entries = console
        .api
        .store
        .audit_entries(AuditQuery {
            after_seq: form.after.trim().parse().unwrap_or(0),
            limit: PAGE_ENTRIES,
            actor: query.actor,
            action_prefix: query.action,
            target: query.target,
            tenants: Some(tenants),
            from: query.from,
            before: query.before,
        })
        .await;
    match entries {
        Ok(entries) => page(visit, form, entries, String::new(), StatusCode::OK),
        Err(error) => internal(&visit, &error),
    }
}

fn page(
    visit: Visit,
    form: SearchForm,
    entries: Vec<store::audit::AuditEntry>,
    message: String,
    status: StatusCode,
) -> Response {
    let search = form.query_string();
    let next = match entries.last() {
        Some(last) if i64::try_from(entries.len()).unwrap_or(i64::MAX) == PAGE_ENTRIES => {
            let mut next = search.clone();
            if !next.is_empty() {
                next.push('&');
            }
            next.push_str(&format!("after={}", last.seq));
            next
        }
        _ => String::new(),
    };
    let rows = entries
        .into_iter()
        .map(|entry| EntryRow {
            seq: entry.seq,
            at: api::time::rfc3339_seconds(entry.at),
            actor: entry.actor,
            action: entry.action,
            target: entry.target,
            detail: entry.detail,
            hash: entry.hash.get(..16).unwrap_or_default().to_owned(),
        })
        .collect();
    render(
        &AuditPage {
            chrome: visit.chrome,
            form,
            rows,
            search,
            next,
            message,
        },
        status,
    )
}

/// The search's entries with their proof, as a JSON download.
pub async fn export(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(form): Query<SearchForm>,
) -> Response {
    let visit = match console.visit(&headers, Some(Resource::Audit), PATH).await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let query = match form.query() {
        Ok(query) => query,
        Err(message) => return page(visit, form, Vec::new(), message, StatusCode::BAD_REQUEST),
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    let document = match api::audit::export(&console.api, &principal, query).await {
        Ok(document) => document,
        Err(problem) => {
            let status = problem.status_code();
            return page(visit, form, Vec::new(), problem.detail, status);
        }
    };
    let body = match serde_json::to_vec_pretty(&document) {
        Ok(body) => body,
        Err(error) => return internal(&visit, &error),
    };
    let tenant = api::audit::tenant_label(&visit.user.tenant);
    if let Err(problem) = console
        .api
        .audit(
            &visit.user,
            "audit.export",
            "audit_log",
            &format!(
                "{} entries, head {}; {}",
                document.entries.len(),
                document.head.seq,
                form.query_string()
            ),
            tenant,
        )
        .await
    {
        return problem.into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"audit-export-{}.json\"",
                    document.exported_at
                ),
            ),
        ],
        body,
    )
        .into_response()
}
