//! PostgreSQL side of [`crate::cases`].

use super::PostgresStore;
use crate::StoreError;
use crate::cases::{CASE_COLUMNS, Case, CaseComment, CaseQuery, MAX_COMMENTS_PER_CASE, NewCase};
use tokio_postgres::Row;

fn case_from_row(row: &Row) -> Result<Case, StoreError> {
    Ok(Case {
        id: row.try_get(0)?,
        opened_at: row.try_get(1)?,
        last_at: row.try_get(2)?,
        hits: row.try_get(3)?,
        merchant_id: row.try_get(4)?,
        terminal_id: row.try_get(5)?,
        card_id: row.try_get(6)?,
        rules: row.try_get(7)?,
        severity: row.try_get(8)?,
        status: row.try_get(9)?,
        assignee: row.try_get(10)?,
        outcome: row.try_get(11)?,
        resolved_by: row.try_get(12)?,
        resolved_at: row.try_get(13)?,
    })
}

impl PostgresStore {
    pub(crate) async fn open_case(&self, case: &NewCase) -> Result<i64, StoreError> {
        let key = case.dedup_key();
        let client = self.other.lock().await?;
        // Insert unless an open case has the key (the partial unique index), else count a hit:
        // one statement, so two hosts racing end with one case.
        let row = client
            .query_one(
                "INSERT INTO cases (opened_at, last_at, hits, merchant_id, terminal_id, card_id, rules, severity, status, assignee, outcome, resolved_by, resolved_at, dedup_key) VALUES ($1, $1, 1, $2, $3, $4, $5, $6, 'open', '', '', '', NULL, $7) ON CONFLICT (dedup_key) WHERE status = 'open' DO UPDATE SET hits = cases.hits + 1, last_at = excluded.last_at, rules = excluded.rules RETURNING id",
                &[&case.at, &case.merchant_id, &case.terminal_id, &case.card_id, &case.rules, &case.severity, &key],
            )
            .await?;
        Ok(row.try_get(0)?)
    }

    pub(crate) async fn cases(
        &self,
        query: &CaseQuery,
        limit: i64,
    ) -> Result<Vec<Case>, StoreError> {
        // A listing for people: it may read the replica (docs/scaling.md).
        let client = self.lagging_reader().await?;
        let rows = client
            .query(
                &format!("SELECT {CASE_COLUMNS} FROM cases WHERE ($1::text IS NULL OR status = $1) AND ($2::text[] IS NULL OR merchant_id = ANY($2)) ORDER BY id DESC LIMIT $3"),
                &[&query.status, &query.merchants, &limit],
            )
            .await?;
        rows.iter().map(case_from_row).collect()
    }

    pub(crate) async fn case(
        &self,
        id: i64,
    ) -> Result<Option<(Case, Vec<CaseComment>)>, StoreError> {
        let client = self.other.lock().await?;
        let Some(row) = client
            .query_opt(
                &format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = $1"),
                &[&id],
            )
            .await?
        else {
            return Ok(None);
        };
        let case = case_from_row(&row)?;
        let comments = client
            .query(
                "SELECT seq, at, author, text FROM case_comments WHERE case_id = $1 ORDER BY seq",
                &[&id],
            )
            .await?
            .iter()
            .map(|row| {
                Ok(CaseComment {
                    seq: row.try_get(0)?,
                    at: row.try_get(1)?,
                    author: row.try_get(2)?,
                    text: row.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some((case, comments)))
    }

    pub(crate) async fn assign_case(&self, id: i64, assignee: &str) -> Result<bool, StoreError> {
        let client = self.other.lock().await?;
        Ok(client
            .execute(
                "UPDATE cases SET assignee = $2 WHERE id = $1 AND status = 'open'",
                &[&id, &assignee],
            )
            .await?
            == 1)
    }

    pub(crate) async fn comment_case(
        &self,
        id: i64,
        author: &str,
        text: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let mut client = self.other.lock().await?;
        let transaction = client.transaction().await?;
        // The case row locked: comments of one case get their numbers one at a time.
        let exists = transaction
            .query_opt("SELECT id FROM cases WHERE id = $1 FOR UPDATE", &[&id])
            .await?
            .is_some();
        if !exists {
            return Ok(false);
        }
        let inserted = transaction
            .execute(
                "INSERT INTO case_comments (case_id, seq, at, author, text) SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4 FROM case_comments WHERE case_id = $1 HAVING COUNT(*) < $5",
                &[&id, &at, &author, &text, &MAX_COMMENTS_PER_CASE],
            )
            .await?;
        transaction.commit().await?;
        Ok(inserted == 1)
    }

    pub(crate) async fn resolve_case(
        &self,
        id: i64,
        outcome: &str,
        by: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let client = self.other.lock().await?;
        Ok(client
            .execute(
                "UPDATE cases SET status = 'resolved', outcome = $2, resolved_by = $3, resolved_at = $4 WHERE id = $1 AND status = 'open'",
                &[&id, &outcome, &by, &at],
            )
            .await?
            == 1)
    }
}
