//! PostgreSQL side of [`crate::refunds`].

use super::PostgresStore;
use crate::StoreError;
use crate::refunds::{
    MAX_REFUNDS_LISTED, REFUND_COLUMNS, Refund, RefundInsert, RefundQuery, RefundTransition,
    next_part,
};
use tokio_postgres::Row;

/// Namespace of the advisory locks that serialise the refunds of one sale (the lock's second
/// key is the sale's journal id, truncated to 32 bits: two sales sharing a lock only wait).
const REFUND_LOCK_CLASS: i32 = 0x7266_6e64; // "rfnd"

fn refund_from_row(row: &Row) -> Result<Refund, StoreError> {
    Ok(Refund {
        id: row.try_get(0)?,
        transaction_id: row.try_get(1)?,
        merchant_id: row.try_get(2)?,
        seq: row.try_get(3)?,
        request_id: row.try_get(4)?,
        amount_minor: row.try_get(5)?,
        currency: row.try_get(6)?,
        status: row.try_get(7)?,
        reason: row.try_get(8)?,
        requested_by: row.try_get(9)?,
        requested_at: row.try_get(10)?,
        decided_by: row.try_get(11)?,
        decided_at: row.try_get(12)?,
        response: row.try_get(13)?,
    })
}

impl PostgresStore {
    pub(crate) async fn insert_refund(
        &self,
        mut refund: Refund,
        captured_minor: i64,
        elsewhere_minor: i64,
        first_seq: i64,
    ) -> Result<RefundInsert, StoreError> {
        let mut client = self.other.lock().await?;
        let transaction = client.transaction().await?;
        if refund.seq > 0 {
            // Truncation on purpose: the lock key is 32 bits (see REFUND_LOCK_CLASS).
            #[allow(clippy::cast_possible_truncation)]
            let lock = refund.transaction_id as i32;
            transaction
                .execute(
                    "SELECT pg_advisory_xact_lock($1, $2)",
                    &[&REFUND_LOCK_CLASS, &lock],
                )
                .await?;
            let row = transaction
                .query_one(
                    "SELECT COALESCE(SUM(CASE WHEN status IN ('pending_approval', 'approved', 'refunded') THEN amount_minor ELSE 0 END), 0)::BIGINT, COALESCE(MAX(seq), 0)::BIGINT FROM refunds WHERE transaction_id = $1",
                    &[&refund.transaction_id],
                )
                .await?;
            let (reserved, last): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
            match next_part(
                &refund,
                reserved,
                last,
                captured_minor,
                elsewhere_minor,
                first_seq,
            ) {
                Ok(seq) => refund.seq = seq,
                Err(remaining_minor) => {
                    return Ok(RefundInsert::OverCaptured { remaining_minor });
                }
            }
        }
        transaction
            .execute(
                &format!("INSERT INTO refunds ({REFUND_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"),
                &[
                    &refund.id,
                    &refund.transaction_id,
                    &refund.merchant_id,
                    &refund.seq,
                    &refund.request_id,
                    &refund.amount_minor,
                    &refund.currency,
                    &refund.status,
                    &refund.reason,
                    &refund.requested_by,
                    &refund.requested_at,
                    &refund.decided_by,
                    &refund.decided_at,
                    &refund.response,
                ],
            )
            .await?;
        transaction.commit().await?;
        Ok(RefundInsert::Inserted(Box::new(refund)))
    }

    pub(crate) async fn transition_refund(
        &self,
        id: &str,
        change: &RefundTransition,
    ) -> Result<bool, StoreError> {
        let client = self.other.lock().await?;
        let changed = client
            .execute(
                "UPDATE refunds SET status = $3, decided_by = COALESCE($4, decided_by), decided_at = COALESCE($5, decided_at), response = COALESCE($6, response) WHERE id = $1 AND status = $2",
                &[
                    &id,
                    &change.from,
                    &change.to,
                    &change.decided_by,
                    &change.decided_at,
                    &change.response,
                ],
            )
            .await?;
        Ok(changed == 1)
    }

    pub(crate) async fn refunds_where(
        &self,
        query: &RefundQuery,
    ) -> Result<Vec<Refund>, StoreError> {
        let client = self.other.lock().await?;
        let rows = match query {
            RefundQuery::Id(id) => {
                client
                    .query(
                        &format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1"),
                        &[id],
                    )
                    .await?
            }
            RefundQuery::Transaction(transaction_id) => {
                client
                    .query(
                        &format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE transaction_id = $1 ORDER BY requested_at, seq, id"),
                        &[transaction_id],
                    )
                    .await?
            }
            RefundQuery::Merchants(merchants, status) => {
                client
                    .query(
                        &format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE merchant_id = ANY($1) AND ($2::text IS NULL OR status = $2) ORDER BY requested_at DESC, id DESC LIMIT $3"),
                        &[merchants, status, &MAX_REFUNDS_LISTED],
                    )
                    .await?
            }
        };
        rows.iter().map(refund_from_row).collect()
    }
}
