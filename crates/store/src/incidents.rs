//! Incidents (issue 10, R15): a merchant's ticket with the acquirer's operations, with the
//! transactions and cases it is about, a thread of messages (with attachments) and a status
//! (open, acknowledged, resolved, closed). The `api` crate gives them rules and rights; here
//! they are rows.
//!
//! Every statement is written once with PostgreSQL's `$n` parameters and run through
//! [`Store::onboarding_execute`] and [`Store::onboarding_query`] (SQLite reads `$n` as `?n`),
//! so the two backends cannot drift apart.

use crate::onboarding::{Cell, Kind, Step};
use crate::{Store, StoreError};

/// Most incidents one list returns.
pub const MAX_INCIDENTS_LISTED: usize = 500;
/// Most incidents a list reads before filtering them by merchant.
const MAX_INCIDENTS_SCANNED: i64 = 20_000;
/// Most messages an incident's thread keeps (the first, opening one included).
pub const MAX_MESSAGES_PER_INCIDENT: i64 = 500;
/// Most transactions and cases one incident links.
pub const MAX_LINKS_PER_INCIDENT: usize = 50;

/// A file attached to a message: kept under the data directory, described here.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Attachment {
    /// The name the sender gave (shown, never used as a path).
    pub name: String,
    /// Sniffed from the first bytes, never taken from the sender.
    pub content_type: String,
    pub bytes: i64,
    pub sha256: String,
    /// Where the file is, under the data directory.
    #[serde(skip)]
    pub file: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    pub at: i64,
    pub author: String,
    pub text: String,
    pub attachment: Option<Attachment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewIncident {
    pub merchant_id: String,
    pub title: String,
    pub severity: String,
    pub opened_by: String,
    pub opened_at: i64,
    pub response_due_at: i64,
    /// The channel partners told (those that referred the merchant).
    pub partners: Vec<String>,
    /// Journal ids of the transactions it is about.
    pub transactions: Vec<String>,
    /// Ids of the cases it is about.
    pub cases: Vec<i64>,
    /// The first message of the thread: what happened.
    pub description: NewMessage,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Incident {
    pub id: i64,
    pub merchant_id: String,
    pub title: String,
    pub severity: String,
    /// `open`, `acknowledged`, `resolved` or `closed`.
    pub status: String,
    pub opened_by: String,
    pub opened_at: i64,
    pub response_due_at: i64,
    pub acknowledged_by: Option<String>,
    /// When operations first answered (acknowledged, or resolved straight away).
    pub acknowledged_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub updated_at: i64,
    pub partners: Vec<String>,
    pub messages: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IncidentMessage {
    pub seq: i64,
    pub at: i64,
    pub author: String,
    pub text: String,
    pub attachment: Option<Attachment>,
}

/// An incident with what it links and its thread, oldest message first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentRecord {
    pub incident: Incident,
    pub transactions: Vec<String>,
    pub cases: Vec<i64>,
    pub thread: Vec<IncidentMessage>,
}

const INCIDENT_COLUMNS: &str = "id, merchant_id, title, severity, status, opened_by, opened_at, response_due_at, acknowledged_by, acknowledged_at, resolved_at, closed_at, updated_at, partners, messages";
const INCIDENT_KINDS: [Kind; 15] = [
    Kind::Int,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Int,
    Kind::Int,
    Kind::Text,
    Kind::Int,
    Kind::Int,
    Kind::Int,
    Kind::Int,
    Kind::Text,
    Kind::Int,
];

fn text(cell: &Cell) -> String {
    cell.as_text().unwrap_or_default().to_owned()
}

fn incident_from_row(row: &[Cell]) -> Incident {
    Incident {
        id: row[0].as_int().unwrap_or_default(),
        merchant_id: text(&row[1]),
        title: text(&row[2]),
        severity: text(&row[3]),
        status: text(&row[4]),
        opened_by: text(&row[5]),
        opened_at: row[6].as_int().unwrap_or_default(),
        response_due_at: row[7].as_int().unwrap_or_default(),
        acknowledged_by: row[8].as_text().map(str::to_owned),
        acknowledged_at: row[9].as_int(),
        resolved_at: row[10].as_int(),
        closed_at: row[11].as_int(),
        updated_at: row[12].as_int().unwrap_or_default(),
        partners: row[13]
            .as_text()
            .unwrap_or_default()
            .split(',')
            .filter(|partner| !partner.is_empty())
            .map(str::to_owned)
            .collect(),
        messages: row[14].as_int().unwrap_or_default(),
    }
}

fn optional_text(value: Option<&str>) -> Cell {
    Cell::Text(value.map(str::to_owned))
}

/// The statement that appends `message` as the next of incident `id`'s thread, after
/// [`count_message`] numbered it.
fn insert_message(id: i64, message: &NewMessage) -> Step {
    let attachment = message.attachment.as_ref();
    Step::new(
        "INSERT INTO incident_messages (incident_id, seq, at, author, text, attachment_name, attachment_type, attachment_bytes, attachment_sha256, attachment_file) SELECT id, messages, CAST($2 AS BIGINT), CAST($3 AS TEXT), CAST($4 AS TEXT), CAST($5 AS TEXT), CAST($6 AS TEXT), CAST($7 AS BIGINT), CAST($8 AS TEXT), CAST($9 AS TEXT) FROM incidents WHERE id = $1",
        vec![
            Cell::int(id),
            Cell::int(message.at),
            Cell::text(&message.author),
            Cell::text(&message.text),
            optional_text(attachment.map(|a| a.name.as_str())),
            optional_text(attachment.map(|a| a.content_type.as_str())),
            Cell::Int(attachment.map(|a| a.bytes)),
            optional_text(attachment.map(|a| a.sha256.as_str())),
            optional_text(attachment.map(|a| a.file.as_str())),
        ],
    )
    .expect_one()
}

/// Counts one more message on an incident that is not closed and has room: the row's lock
/// (PostgreSQL) or the single writer (SQLite) numbers concurrent messages one at a time.
fn count_message(id: i64, at: i64) -> Step {
    Step::new(
        "UPDATE incidents SET messages = messages + 1, updated_at = $2 WHERE id = $1 AND status <> 'closed' AND messages < $3",
        vec![Cell::int(id), Cell::int(at), Cell::int(MAX_MESSAGES_PER_INCIDENT)],
    )
    .expect_one()
}

impl Store {
    /// Opens an incident with its links and first message; returns its id.
    pub async fn open_incident(&self, new: NewIncident) -> Result<i64, StoreError> {
        let rows = self
            .onboarding_write_returning(
                "INSERT INTO sequences (name, value) VALUES ('incident', 1) ON CONFLICT (name) DO UPDATE SET value = sequences.value + 1 RETURNING value",
                Vec::new(),
                &[Kind::Int],
            )
            .await?;
        let id = rows
            .first()
            .and_then(|row| row[0].as_int())
            .ok_or_else(|| StoreError::Write("the incident sequence gave no value".into()))?;
        let mut steps = vec![Step::new(
            format!(
                "INSERT INTO incidents ({INCIDENT_COLUMNS}) VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, NULL, NULL, NULL, NULL, $6, $8, 0)"
            ),
            vec![
                Cell::int(id),
                Cell::text(&new.merchant_id),
                Cell::text(&new.title),
                Cell::text(&new.severity),
                Cell::text(&new.opened_by),
                Cell::int(new.opened_at),
                Cell::int(new.response_due_at),
                Cell::text(new.partners.join(",")),
            ],
        )];
        let links = new
            .transactions
            .iter()
            .map(|target| ("transaction", target.clone()))
            .chain(new.cases.iter().map(|case| ("case", case.to_string())));
        for (kind, target) in links {
            steps.push(Step::new(
                "INSERT INTO incident_links (incident_id, kind, target) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                vec![Cell::int(id), Cell::text(kind), Cell::text(target)],
            ));
        }
        steps.push(count_message(id, new.opened_at));
        steps.push(insert_message(id, &new.description));
        if !self.onboarding_execute(steps).await? {
            return Err(StoreError::Write(format!(
                "incident {id} could not be written whole"
            )));
        }
        Ok(id)
    }

    /// Incidents, newest first: of `merchants` only (`None`: all), with `status` only.
    pub async fn incidents(
        &self,
        merchants: Option<&[String]>,
        status: Option<&str>,
    ) -> Result<Vec<Incident>, StoreError> {
        let rows = self
            .onboarding_query(
                &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE (CAST($1 AS TEXT) IS NULL OR status = $1) ORDER BY id DESC LIMIT $2"),
                vec![optional_text(status), Cell::int(MAX_INCIDENTS_SCANNED)],
                &INCIDENT_KINDS,
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| incident_from_row(row))
            .filter(|incident| merchants.is_none_or(|list| list.contains(&incident.merchant_id)))
            .take(MAX_INCIDENTS_LISTED)
            .collect())
    }

    /// An incident with its links and thread; `None` when there is no such incident.
    pub async fn incident(&self, id: i64) -> Result<Option<IncidentRecord>, StoreError> {
        let found = self
            .onboarding_query(
                &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"),
                vec![Cell::int(id)],
                &INCIDENT_KINDS,
            )
            .await?;
        let Some(incident) = found.first().map(|row| incident_from_row(row)) else {
            return Ok(None);
        };
        let links = self
            .onboarding_query(
                "SELECT kind, target FROM incident_links WHERE incident_id = $1 ORDER BY kind, target",
                vec![Cell::int(id)],
                &[Kind::Text, Kind::Text],
            )
            .await?;
        let mut transactions = Vec::new();
        let mut cases = Vec::new();
        for link in &links {
            match link[0].as_text() {
                Some("transaction") => transactions.push(text(&link[1])),
                Some("case") => cases.extend(text(&link[1]).parse::<i64>().ok()),
                _ => {}
            }
        }
        cases.sort_unstable();
        let thread = self
            .onboarding_query(
                "SELECT seq, at, author, text, attachment_name, attachment_type, attachment_bytes, attachment_sha256, attachment_file FROM incident_messages WHERE incident_id = $1 ORDER BY seq",
                vec![Cell::int(id)],
                &[
                    Kind::Int,
                    Kind::Int,
                    Kind::Text,
                    Kind::Text,
                    Kind::Text,
                    Kind::Text,
                    Kind::Int,
                    Kind::Text,
                    Kind::Text,
                ],
            )
            .await?
            .iter()
            .map(|row| IncidentMessage {
                seq: row[0].as_int().unwrap_or_default(),
                at: row[1].as_int().unwrap_or_default(),
                author: text(&row[2]),
                text: text(&row[3]),
                attachment: row[4].as_text().map(|name| Attachment {
                    name: name.to_owned(),
                    content_type: text(&row[5]),
                    bytes: row[6].as_int().unwrap_or_default(),
                    sha256: text(&row[7]),
                    file: text(&row[8]),
                }),
            })
            .collect();
        Ok(Some(IncidentRecord {
            incident,
            transactions,
            cases,
            thread,
        }))
    }

    /// Appends a message to incident `id`'s thread; `false` when the incident is closed,
    /// its thread full, or there is no such incident.
    pub async fn add_incident_message(
        &self,
        id: i64,
        message: NewMessage,
    ) -> Result<bool, StoreError> {
        self.onboarding_execute(vec![
            count_message(id, message.at),
            insert_message(id, &message),
        ])
        .await
    }

    /// Moves incident `id` to `to` if its status is one of `from`; `false` otherwise. The
    /// first move to `acknowledged` or `resolved` records who answered and when.
    pub async fn move_incident(
        &self,
        id: i64,
        from: &[&'static str],
        to: &'static str,
        by: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        // The statuses are the caller's constants, never input: they may be spelt into the
        // statement.
        let from = from
            .iter()
            .map(|status| format!("'{status}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let answered = matches!(to, "acknowledged" | "resolved");
        let stamp = match to {
            "resolved" => ", resolved_at = $3",
            "closed" => ", closed_at = $3",
            _ => "",
        };
        let sql = format!(
            "UPDATE incidents SET status = $2, updated_at = $3{stamp}{answer} WHERE id = $1 AND status IN ({from})",
            answer = if answered {
                ", acknowledged_by = COALESCE(acknowledged_by, $4), acknowledged_at = COALESCE(acknowledged_at, $3)"
            } else {
                ""
            }
        );
        let mut params = vec![Cell::int(id), Cell::text(to), Cell::int(at)];
        if answered {
            params.push(Cell::text(by));
        }
        self.onboarding_execute(vec![Step::new(sql, params).expect_one()])
            .await
    }
}
