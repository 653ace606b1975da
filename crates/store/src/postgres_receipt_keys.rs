//! PostgreSQL side of [`crate::receipt_keys`].

use super::PostgresStore;
use crate::StoreError;
use crate::receipt_keys::{RECEIPT_KEY_COLUMNS, ReceiptKey};

impl PostgresStore {
    pub(crate) async fn receipt_keys(&self) -> Result<Vec<ReceiptKey>, StoreError> {
        let client = self.other.lock().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {RECEIPT_KEY_COLUMNS} FROM receipt_keys ORDER BY created_at, key_id"
                ),
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ReceiptKey {
                    key_id: row.try_get(0)?,
                    token: row.try_get(1)?,
                    public_key: row.try_get(2)?,
                    created_at: row.try_get(3)?,
                    retired_at: row.try_get(4)?,
                })
            })
            .collect()
    }

    pub(crate) async fn rotate_receipt_key(&self, key: &ReceiptKey) -> Result<bool, StoreError> {
        let mut client = self.other.lock().await?;
        let transaction = client.transaction().await?;
        let added = transaction
            .execute(
                &format!("INSERT INTO receipt_keys ({RECEIPT_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, NULL) ON CONFLICT (key_id) DO NOTHING"),
                &[&key.key_id, &key.token, &key.public_key, &key.created_at],
            )
            .await?;
        if added == 1 {
            transaction
                .execute(
                    "UPDATE receipt_keys SET retired_at = $1 WHERE retired_at IS NULL AND key_id <> $2",
                    &[&key.created_at, &key.key_id],
                )
                .await?;
        }
        transaction.commit().await?;
        Ok(added == 1)
    }
}
