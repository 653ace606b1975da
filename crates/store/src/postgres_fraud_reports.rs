//! PostgreSQL side of [`crate::fraud_reports`].

use super::PostgresStore;
use crate::StoreError;
use crate::fraud_reports::{FRAUD_REPORT_COLUMNS, FraudKey, FraudReport};

impl PostgresStore {
    pub(crate) async fn put_fraud_report(&self, report: &FraudReport) -> Result<(), StoreError> {
        let client = self.other.lock().await;
        client
            .execute(
                &format!("INSERT INTO fraud_reports ({FRAUD_REPORT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (transaction_id) DO NOTHING"),
                &[
                    &report.id,
                    &report.transaction_id,
                    &report.card_id,
                    &report.reported_by,
                    &report.reported_at,
                    &report.description,
                    &report.pack,
                    &report.pack_sha256,
                ],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn fraud_report_where(
        &self,
        column: &'static str,
        key: &FraudKey,
    ) -> Result<Option<FraudReport>, StoreError> {
        let client = self.other.lock().await;
        let sql = format!("SELECT {FRAUD_REPORT_COLUMNS} FROM fraud_reports WHERE {column} = $1");
        let rows = match key {
            FraudKey::Text(text) => client.query(&sql, &[text]).await?,
            FraudKey::Int(number) => client.query(&sql, &[number]).await?,
        };
        rows.first()
            .map(|row| {
                Ok(FraudReport {
                    id: row.try_get(0)?,
                    transaction_id: row.try_get(1)?,
                    card_id: row.try_get(2)?,
                    reported_by: row.try_get(3)?,
                    reported_at: row.try_get(4)?,
                    description: row.try_get(5)?,
                    pack: row.try_get(6)?,
                    pack_sha256: row.try_get(7)?,
                })
            })
            .transpose()
    }
}
