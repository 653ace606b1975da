//! PostgreSQL side of [`crate::disputes`].

use super::PostgresStore;
use crate::StoreError;
use crate::disputes::{DISPUTE_COLUMNS, Dispute, DisputeKey, UPDATE_POSTGRES};

impl PostgresStore {
    pub(crate) async fn put_dispute(&self, d: &Dispute) -> Result<(), StoreError> {
        let client = self.other.lock().await?;
        client
            .execute(
                &format!("INSERT INTO disputes ({DISPUTE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) ON CONFLICT (transaction_id) DO NOTHING"),
                &[
                    &d.id, &d.transaction_id, &d.merchant_id, &d.card_id, &d.amount_minor,
                    &d.currency, &d.reason, &d.description, &d.status, &d.opened_by,
                    &d.opened_at, &d.reviewed_by, &d.reviewed_at, &d.review_note,
                    &d.answer_due_at, &d.answered_by, &d.answered_at, &d.evidence,
                    &d.decided_by, &d.decided_at, &d.decision_note,
                ],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn update_dispute(&self, d: &Dispute, from: &str) -> Result<bool, StoreError> {
        let client = self.other.lock().await?;
        let changed = client
            .execute(
                UPDATE_POSTGRES,
                &[
                    &d.id,
                    &from,
                    &d.status,
                    &d.reviewed_by,
                    &d.reviewed_at,
                    &d.review_note,
                    &d.answer_due_at,
                    &d.answered_by,
                    &d.answered_at,
                    &d.evidence,
                    &d.decided_by,
                    &d.decided_at,
                    &d.decision_note,
                ],
            )
            .await?;
        Ok(changed == 1)
    }

    pub(crate) async fn dispute_where(
        &self,
        column: &'static str,
        key: &DisputeKey,
    ) -> Result<Option<Dispute>, StoreError> {
        let client = self.other.lock().await?;
        let sql = format!("SELECT {DISPUTE_COLUMNS} FROM disputes WHERE {column} = $1");
        let rows = match key {
            DisputeKey::Text(text) => client.query(&sql, &[text]).await?,
            DisputeKey::Int(number) => client.query(&sql, &[number]).await?,
        };
        rows.first().map(dispute_from_row).transpose()
    }

    pub(crate) async fn disputes_moved_between(
        &self,
        from: i64,
        to: i64,
        limit: u32,
    ) -> Result<Vec<Dispute>, StoreError> {
        let client = self.other.lock().await?;
        let sql = format!(
            "SELECT {DISPUTE_COLUMNS} FROM disputes WHERE (reviewed_at >= $1 AND reviewed_at < $2) OR (decided_at >= $1 AND decided_at < $2) ORDER BY id LIMIT $3"
        );
        client
            .query(&sql, &[&from, &to, &i64::from(limit)])
            .await?
            .iter()
            .map(dispute_from_row)
            .collect()
    }
}

pub(crate) fn dispute_from_row(row: &tokio_postgres::Row) -> Result<Dispute, StoreError> {
    Ok(Dispute {
        id: row.try_get(0)?,
        transaction_id: row.try_get(1)?,
        merchant_id: row.try_get(2)?,
        card_id: row.try_get(3)?,
        amount_minor: row.try_get(4)?,
        currency: row.try_get(5)?,
        reason: row.try_get(6)?,
        description: row.try_get(7)?,
        status: row.try_get(8)?,
        opened_by: row.try_get(9)?,
        opened_at: row.try_get(10)?,
        reviewed_by: row.try_get(11)?,
        reviewed_at: row.try_get(12)?,
        review_note: row.try_get(13)?,
        answer_due_at: row.try_get(14)?,
        answered_by: row.try_get(15)?,
        answered_at: row.try_get(16)?,
        evidence: row.try_get(17)?,
        decided_by: row.try_get(18)?,
        decided_at: row.try_get(19)?,
        decision_note: row.try_get(20)?,
    })
}
