//! Fraud reports (issue 9): a cardholder's report of a transaction as fraud, with the evidence
//! pack sealed when it was made (`aftersale::evidence`). One per transaction.

use crate::{Store, StoreError};

/// One fraud report and its sealed evidence pack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FraudReport {
    /// `fr_` and 16 hex digits.
    pub id: String,
    /// The journal id of the transaction reported.
    pub transaction_id: i64,
    /// The directory id of the card it was made with (frozen by the report).
    pub card_id: String,
    /// The user who reported it.
    pub reported_by: String,
    /// Seconds since the epoch.
    pub reported_at: i64,
    /// What the cardholder said.
    pub description: String,
    /// The evidence pack, JSON, byte for byte as sealed.
    pub pack: String,
    /// SHA-256 of `pack`, hex.
    pub pack_sha256: String,
}

pub(crate) const FRAUD_REPORT_COLUMNS: &str =
    "id, transaction_id, card_id, reported_by, reported_at, description, pack, pack_sha256";

fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<FraudReport> {
    Ok(FraudReport {
        id: row.get(0)?,
        transaction_id: row.get(1)?,
        card_id: row.get(2)?,
        reported_by: row.get(3)?,
        reported_at: row.get(4)?,
        description: row.get(5)?,
        pack: row.get(6)?,
        pack_sha256: row.get(7)?,
    })
}

impl Store {
    /// Stores `report` unless its transaction was reported already; either way, returns the
    /// report the store keeps for that transaction.
    pub async fn put_fraud_report(&self, report: FraudReport) -> Result<FraudReport, StoreError> {
        let transaction_id = report.transaction_id;
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        connection
                            .prepare_cached(&format!(
                                "INSERT INTO fraud_reports ({FRAUD_REPORT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (transaction_id) DO NOTHING"
                            ))?
                            .execute(rusqlite::params![
                                report.id,
                                report.transaction_id,
                                report.card_id,
                                report.reported_by,
                                report.reported_at,
                                report.description,
                                report.pack,
                                report.pack_sha256
                            ])?;
                        Ok(())
                    })
                    .await?;
            }
            Store::Postgres(store) => store.put_fraud_report(&report).await?,
        }
        self.fraud_report_of_transaction(transaction_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a stored fraud report is missing".into()))
    }

    /// The report with this id.
    pub async fn fraud_report(&self, id: &str) -> Result<Option<FraudReport>, StoreError> {
        self.fraud_report_where("id", FraudKey::Text(id.to_owned()))
            .await
    }

    /// The report of this transaction (a journal id).
    pub async fn fraud_report_of_transaction(
        &self,
        transaction_id: i64,
    ) -> Result<Option<FraudReport>, StoreError> {
        self.fraud_report_where("transaction_id", FraudKey::Int(transaction_id))
            .await
    }

    async fn fraud_report_where(
        &self,
        column: &'static str,
        key: FraudKey,
    ) -> Result<Option<FraudReport>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .read(move |connection| {
                        let mut statement = connection.prepare_cached(&format!(
                            "SELECT {FRAUD_REPORT_COLUMNS} FROM fraud_reports WHERE {column} = ?1"
                        ))?;
                        let mut rows = match &key {
                            FraudKey::Text(text) => statement.query(rusqlite::params![text])?,
                            FraudKey::Int(number) => statement.query(rusqlite::params![number])?,
                        };
                        Ok(match rows.next()? {
                            Some(row) => Some(from_sqlite(row)?),
                            None => None,
                        })
                    })
                    .await
            }
            Store::Postgres(store) => store.fraud_report_where(column, &key).await,
        }
    }
}

/// A look-up key of [`Store::fraud_report_where`].
#[derive(Clone, Debug)]
pub(crate) enum FraudKey {
    Text(String),
    Int(i64),
}
