//! PostgreSQL side of [`crate::fraud_reports`].

use super::PostgresStore;
use crate::StoreError;
use crate::fraud_reports::{
    FOLLOW_UP_COLUMNS, FRAUD_REPORT_COLUMNS, FollowUpResult, FraudFollowUp, FraudKey, FraudReport,
};
use tokio_postgres::Row;

impl PostgresStore {
    pub(crate) async fn put_fraud_report(
        &self,
        report: &FraudReport,
        follow_ups: &[String],
    ) -> Result<(), StoreError> {
        let mut client = self.other.lock().await?;
        let transaction = client.transaction().await?;
        let inserted = transaction
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
        if inserted == 1 {
            for (position, step) in follow_ups.iter().enumerate() {
                transaction
                    .execute(
                        "INSERT INTO fraud_report_follow_ups (report_id, step, position, state, next_attempt_at) VALUES ($1, $2, $3, 'pending', $4)",
                        &[&report.id, step, &(position as i64), &report.reported_at],
                    )
                    .await?;
            }
        }
        transaction.commit().await?;
        Ok(())
    }

    pub(crate) async fn fraud_report_where(
        &self,
        column: &'static str,
        key: &FraudKey,
    ) -> Result<Option<FraudReport>, StoreError> {
        let client = self.other.lock().await?;
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

    pub(crate) async fn fraud_follow_ups(
        &self,
        report_id: &str,
    ) -> Result<Vec<FraudFollowUp>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query(
                &format!("SELECT {FOLLOW_UP_COLUMNS} FROM fraud_report_follow_ups WHERE report_id = $1 ORDER BY position"),
                &[&report_id],
            )
            .await?
            .iter()
            .map(follow_up_from_row)
            .collect()
    }

    pub(crate) async fn first_case_like(&self, key: &str) -> Result<Option<i64>, StoreError> {
        let client = self.other.lock().await?;
        let rows = client
            .query(
                "SELECT id FROM cases WHERE dedup_key = $1 ORDER BY id LIMIT 1",
                &[&key],
            )
            .await?;
        rows.first().map(|row| Ok(row.try_get(0)?)).transpose()
    }

    pub(crate) async fn claim_fraud_follow_ups(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
        report_id: Option<&str>,
    ) -> Result<Vec<FraudFollowUp>, StoreError> {
        let client = self.other.lock().await?;
        // SKIP LOCKED: two nodes claiming at once (an API request's own report and the job)
        // take different rows instead of waiting for each other.
        client
            .query(
                &format!("UPDATE fraud_report_follow_ups SET attempts = attempts + 1, next_attempt_at = $2 WHERE (report_id, step) IN (SELECT report_id, step FROM fraud_report_follow_ups WHERE state = 'pending' AND next_attempt_at <= $1 AND ($4::TEXT IS NULL OR report_id = $4) ORDER BY next_attempt_at, report_id, position LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING {FOLLOW_UP_COLUMNS}"),
                &[&now, &lease_until, &limit, &report_id],
            )
            .await?
            .iter()
            .map(follow_up_from_row)
            .collect()
    }

    pub(crate) async fn finish_fraud_follow_up(
        &self,
        report_id: &str,
        step: &str,
        attempts: i64,
        result: &FollowUpResult,
    ) -> Result<bool, StoreError> {
        let client = self.other.lock().await?;
        let changed = match result {
            FollowUpResult::Done { outcome, at } => {
                client
                    .execute(
                        "UPDATE fraud_report_follow_ups SET state = 'done', outcome = $4, done_at = $5, last_error = '' WHERE report_id = $1 AND step = $2 AND attempts = $3 AND state = 'pending'",
                        &[&report_id, &step, &attempts, outcome, at],
                    )
                    .await?
            }
            FollowUpResult::Failed { error, retry_at } => {
                client
                    .execute(
                        "UPDATE fraud_report_follow_ups SET last_error = $4, next_attempt_at = $5 WHERE report_id = $1 AND step = $2 AND attempts = $3 AND state = 'pending'",
                        &[&report_id, &step, &attempts, error, retry_at],
                    )
                    .await?
            }
        };
        Ok(changed == 1)
    }
}

fn follow_up_from_row(row: &Row) -> Result<FraudFollowUp, StoreError> {
    Ok(FraudFollowUp {
        report_id: row.try_get(0)?,
        step: row.try_get(1)?,
        position: row.try_get(2)?,
        state: row.try_get(3)?,
        attempts: row.try_get(4)?,
        next_attempt_at: row.try_get(5)?,
        last_error: row.try_get(6)?,
        outcome: row.try_get(7)?,
        done_at: row.try_get(8)?,
    })
}
