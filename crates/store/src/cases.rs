//! The case queue (issue 10): what the risk rules flagged, for analysts to assign, comment on
//! and resolve. The host opens cases off its hot path (a background writer fed by a bounded
//! channel); a rule that keeps firing for the same merchant, terminal and card counts `hits`
//! on the open case instead of opening another. Resolving is a conditional update: a case is
//! resolved once.

use crate::{Store, StoreError};

/// Most cases one list returns.
pub const MAX_CASES_LISTED: i64 = 500;
/// Most comments a case keeps.
pub const MAX_COMMENTS_PER_CASE: i64 = 200;

/// What the host reports when rules fire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCase {
    pub at: i64,
    pub merchant_id: String,
    pub terminal_id: String,
    /// The directory's card id (never a number), or empty.
    pub card_id: String,
    /// The fired rules, `name(action,score): reason; …`.
    pub rules: String,
    /// `alert`, `review` or `decline`.
    pub severity: String,
    /// The names of the fired rules, which with merchant, terminal and card make the
    /// de-duplication key.
    pub rule_names: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Case {
    pub id: i64,
    pub opened_at: i64,
    pub last_at: i64,
    pub hits: i64,
    pub merchant_id: String,
    pub terminal_id: String,
    pub card_id: String,
    pub rules: String,
    pub severity: String,
    /// `open` or `resolved`.
    pub status: String,
    pub assignee: String,
    /// Empty while open; then `no_action`, `block_card`, `block_terminal` or `block_merchant`.
    pub outcome: String,
    pub resolved_by: String,
    pub resolved_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CaseComment {
    pub seq: i64,
    pub at: i64,
    pub author: String,
    pub text: String,
}

/// Which cases a list returns, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaseQuery {
    /// Only these merchants' cases; `None`: all.
    pub merchants: Option<Vec<String>>,
    /// `open` or `resolved`; `None`: both.
    pub status: Option<String>,
    pub limit: i64,
}

pub(crate) const CASE_COLUMNS: &str = "id, opened_at, last_at, hits, merchant_id, terminal_id, card_id, rules, severity, status, assignee, outcome, resolved_by, resolved_at";

impl NewCase {
    pub(crate) fn dedup_key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.merchant_id,
            self.terminal_id,
            self.card_id,
            self.rule_names.join(",")
        )
    }
}

fn case_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Case> {
    Ok(Case {
        id: row.get(0)?,
        opened_at: row.get(1)?,
        last_at: row.get(2)?,
        hits: row.get(3)?,
        merchant_id: row.get(4)?,
        terminal_id: row.get(5)?,
        card_id: row.get(6)?,
        rules: row.get(7)?,
        severity: row.get(8)?,
        status: row.get(9)?,
        assignee: row.get(10)?,
        outcome: row.get(11)?,
        resolved_by: row.get(12)?,
        resolved_at: row.get(13)?,
    })
}

impl Store {
    /// Opens a case, or counts one more hit on the open case with the same key; returns its id.
    pub async fn open_case(&self, case: NewCase) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        let key = case.dedup_key();
                        let updated = connection
                            .prepare_cached("UPDATE cases SET hits = hits + 1, last_at = ?2, rules = ?3 WHERE dedup_key = ?1 AND status = 'open' RETURNING id")?
                            .query_map(rusqlite::params![key, case.at, case.rules], |row| row.get::<_, i64>(0))?
                            .next()
                            .transpose()?;
                        if let Some(id) = updated {
                            return Ok(id);
                        }
                        connection
                            .prepare_cached("INSERT INTO cases (opened_at, last_at, hits, merchant_id, terminal_id, card_id, rules, severity, status, assignee, outcome, resolved_by, resolved_at, dedup_key) VALUES (?1, ?1, 1, ?2, ?3, ?4, ?5, ?6, 'open', '', '', '', NULL, ?7)")?
                            .execute(rusqlite::params![case.at, case.merchant_id, case.terminal_id, case.card_id, case.rules, case.severity, key])?;
                        Ok(connection.last_insert_rowid())
                    })
                    .await
            }
            Store::Postgres(store) => store.open_case(&case).await,
        }
    }

    pub async fn cases(&self, query: CaseQuery) -> Result<Vec<Case>, StoreError> {
        let limit = query.limit.clamp(1, MAX_CASES_LISTED);
        match self {
            Store::Sqlite(store) => {
                store
                    .read(move |connection| {
                        let merchants = query.merchants.clone();
                        let mut statement = connection.prepare_cached(&format!(
                            "SELECT {CASE_COLUMNS} FROM cases WHERE (?1 IS NULL OR status = ?1) ORDER BY id DESC"
                        ))?;
                        let mut rows = statement.query(rusqlite::params![query.status])?;
                        let mut cases = Vec::new();
                        while let Some(row) = rows.next()? {
                            let case = case_from_row(row)?;
                            if merchants.as_ref().is_none_or(|list| list.contains(&case.merchant_id)) {
                                cases.push(case);
                                if cases.len() as i64 >= limit {
                                    break;
                                }
                            }
                        }
                        Ok(cases)
                    })
                    .await
            }
            Store::Postgres(store) => store.cases(&query, limit).await,
        }
    }

    /// A case and its comments, oldest first.
    pub async fn case(&self, id: i64) -> Result<Option<(Case, Vec<CaseComment>)>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .read(move |connection| {
                        let case = connection
                            .prepare_cached(&format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = ?1"))?
                            .query_map([id], case_from_row)?
                            .next()
                            .transpose()?;
                        let Some(case) = case else { return Ok(None) };
                        let comments = connection
                            .prepare_cached("SELECT seq, at, author, text FROM case_comments WHERE case_id = ?1 ORDER BY seq")?
                            .query_map([id], |row| {
                                Ok(CaseComment { seq: row.get(0)?, at: row.get(1)?, author: row.get(2)?, text: row.get(3)? })
                            })?
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok(Some((case, comments)))
                    })
                    .await
            }
            Store::Postgres(store) => store.case(id).await,
        }
    }

    /// Assigns an open case; `false` when there is no such open case.
    pub async fn assign_case(&self, id: i64, assignee: &str) -> Result<bool, StoreError> {
        let assignee = assignee.to_owned();
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        Ok(connection
                            .prepare_cached(
                                "UPDATE cases SET assignee = ?2 WHERE id = ?1 AND status = 'open'",
                            )?
                            .execute(rusqlite::params![id, assignee])?
                            == 1)
                    })
                    .await
            }
            Store::Postgres(store) => store.assign_case(id, &assignee).await,
        }
    }

    /// Adds a comment; `false` when there is no such case or it has
    /// [`MAX_COMMENTS_PER_CASE`] already.
    pub async fn comment_case(
        &self,
        id: i64,
        author: &str,
        text: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let (author, text) = (author.to_owned(), text.to_owned());
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        Ok(connection
                            .prepare_cached("INSERT INTO case_comments (case_id, seq, at, author, text) SELECT id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM case_comments WHERE case_id = ?1), ?2, ?3, ?4 FROM cases WHERE id = ?1 AND (SELECT COUNT(*) FROM case_comments WHERE case_id = ?1) < ?5")?
                            .execute(rusqlite::params![id, at, author, text, MAX_COMMENTS_PER_CASE])?
                            == 1)
                    })
                    .await
            }
            Store::Postgres(store) => store.comment_case(id, &author, &text, at).await,
        }
    }

    /// Resolves an open case with `outcome`; `false` when it is not open (resolved already,
    /// or no such case).
    pub async fn resolve_case(
        &self,
        id: i64,
        outcome: &str,
        by: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let (outcome, by) = (outcome.to_owned(), by.to_owned());
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        Ok(connection
                            .prepare_cached("UPDATE cases SET status = 'resolved', outcome = ?2, resolved_by = ?3, resolved_at = ?4 WHERE id = ?1 AND status = 'open'")?
                            .execute(rusqlite::params![id, outcome, by, at])?
                            == 1)
                    })
                    .await
            }
            Store::Postgres(store) => store.resolve_case(id, &outcome, &by, at).await,
        }
    }
}
