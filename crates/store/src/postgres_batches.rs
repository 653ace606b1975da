//! PostgreSQL side of [`crate::batches`].

use super::PostgresStore;
use crate::StoreError;
use crate::batches::{
    ADVICE_COLUMNS, BatchAdvice, BatchClose, BatchDifference, BatchSide, CLOSE_COLUMNS,
    DIFFERENCE_COLUMNS, MAX_CLOSES_PER_READ, next_batch_sql,
};

impl PostgresStore {
    pub(crate) async fn put_batch_advice(&self, advice: &BatchAdvice) -> Result<(), StoreError> {
        let client = self.other.lock().await?;
        client
            .execute(
                &format!("INSERT INTO batch_advices ({ADVICE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (terminal_id, batch, stan) DO UPDATE SET kind = excluded.kind, amount_minor = excluded.amount_minor, currency = excluded.currency, card = excluded.card, rrn = excluded.rrn, auth_code = excluded.auth_code, received_at = excluded.received_at"),
                &[
                    &advice.terminal_id,
                    &advice.batch,
                    &advice.stan,
                    &advice.kind,
                    &advice.amount_minor,
                    &advice.currency,
                    &advice.card,
                    &advice.rrn,
                    &advice.auth_code,
                    &advice.received_at,
                ],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn batch_advices(
        &self,
        terminal_id: &str,
        batch: i64,
    ) -> Result<Vec<BatchAdvice>, StoreError> {
        let client = self.other.lock().await?;
        let rows = client
            .query(
                &format!("SELECT {ADVICE_COLUMNS} FROM batch_advices WHERE terminal_id = $1 AND batch = $2 ORDER BY stan"),
                &[&terminal_id, &batch],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(BatchAdvice {
                    terminal_id: row.try_get(0)?,
                    batch: row.try_get(1)?,
                    stan: row.try_get(2)?,
                    kind: row.try_get(3)?,
                    amount_minor: row.try_get(4)?,
                    currency: row.try_get(5)?,
                    card: row.try_get(6)?,
                    rrn: row.try_get(7)?,
                    auth_code: row.try_get(8)?,
                    received_at: row.try_get(9)?,
                })
            })
            .collect()
    }

    pub(crate) async fn clear_batch_advices(
        &self,
        terminal_id: &str,
        batch: i64,
    ) -> Result<(), StoreError> {
        let client = self.other.lock().await?;
        client
            .execute(
                "DELETE FROM batch_advices WHERE terminal_id = $1 AND batch = $2",
                &[&terminal_id, &batch],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn close_batch(&self, close: &BatchClose) -> Result<bool, StoreError> {
        let mut client = self.other.lock().await?;
        let transaction = client.transaction().await?;
        let changed = transaction
            .execute(
                &next_batch_sql("$1", "$2::BIGINT"),
                &[&close.terminal_id, &close.batch],
            )
            .await?;
        if changed != 1 {
            transaction.rollback().await?;
            return Ok(false);
        }
        let columns = CLOSE_COLUMNS.trim_start_matches("id, ");
        let row = transaction
            .query_one(
                &format!("INSERT INTO batch_closes ({columns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id"),
                &[
                    &close.terminal_id,
                    &close.merchant_id,
                    &close.batch,
                    &close.closed_at,
                    &close.status,
                    &close.currency,
                    &close.terminal.debit_count,
                    &close.terminal.debit_minor,
                    &close.terminal.credit_count,
                    &close.terminal.credit_minor,
                    &close.host.debit_count,
                    &close.host.debit_minor,
                    &close.host.credit_count,
                    &close.host.credit_minor,
                ],
            )
            .await?;
        let id: i64 = row.try_get(0)?;
        for difference in &close.differences {
            transaction
                .execute(
                    &format!("INSERT INTO batch_differences ({DIFFERENCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
                    &[
                        &id,
                        &difference.stan,
                        &difference.difference,
                        &difference.terminal_kind,
                        &difference.terminal_amount_minor,
                        &difference.host_kind,
                        &difference.host_amount_minor,
                        &difference.card,
                    ],
                )
                .await?;
        }
        transaction.commit().await?;
        Ok(true)
    }

    pub(crate) async fn batch_closes(
        &self,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<BatchClose>, StoreError> {
        let client = self.other.lock().await?;
        let rows = client
            .query(
                &format!("SELECT {CLOSE_COLUMNS} FROM batch_closes WHERE closed_at >= $1 AND closed_at < $2 ORDER BY closed_at, id LIMIT $3"),
                &[&from_us, &to_us, &MAX_CLOSES_PER_READ],
            )
            .await?;
        let mut closes = rows
            .iter()
            .map(|row| {
                Ok(BatchClose {
                    id: row.try_get(0)?,
                    terminal_id: row.try_get(1)?,
                    merchant_id: row.try_get(2)?,
                    batch: row.try_get(3)?,
                    closed_at: row.try_get(4)?,
                    status: row.try_get(5)?,
                    currency: row.try_get(6)?,
                    terminal: BatchSide {
                        debit_count: row.try_get(7)?,
                        debit_minor: row.try_get(8)?,
                        credit_count: row.try_get(9)?,
                        credit_minor: row.try_get(10)?,
                    },
                    host: BatchSide {
                        debit_count: row.try_get(11)?,
                        debit_minor: row.try_get(12)?,
                        credit_count: row.try_get(13)?,
                        credit_minor: row.try_get(14)?,
                    },
                    differences: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        for close in &mut closes {
            let rows = client
                .query(
                    &format!("SELECT {DIFFERENCE_COLUMNS} FROM batch_differences WHERE close_id = $1 ORDER BY stan"),
                    &[&close.id],
                )
                .await?;
            close.differences = rows
                .iter()
                .map(|row| {
                    Ok(BatchDifference {
                        stan: row.try_get(1)?,
                        difference: row.try_get(2)?,
                        terminal_kind: row.try_get(3)?,
                        terminal_amount_minor: row.try_get(4)?,
                        host_kind: row.try_get(5)?,
                        host_amount_minor: row.try_get(6)?,
                        card: row.try_get(7)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
        }
        Ok(closes)
    }
}
