//! Fraud reports (issue 9): a cardholder's report of a transaction as fraud, with the evidence
//! pack sealed when it was made (`aftersale::evidence`). One per transaction. What the report
//! sets in motion (its case, dispute and webhooks) is kept with it as [`FraudFollowUp`]s, done
//! and retried by a background job until each is done.

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
    /// Stores `report` unless its transaction was reported already, and with it, in the same
    /// transaction, one pending [`FraudFollowUp`] per name of `follow_ups` (in that order), due
    /// at once; either way, returns the report the store keeps for that transaction.
    pub async fn put_fraud_report(
        &self,
        report: FraudReport,
        follow_ups: &[&str],
    ) -> Result<FraudReport, StoreError> {
        let transaction_id = report.transaction_id;
        let follow_ups: Vec<String> = follow_ups.iter().map(|step| (*step).to_owned()).collect();
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        let inserted = connection
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
                        if inserted == 1 {
                            let mut statement = connection.prepare_cached(
                                "INSERT INTO fraud_report_follow_ups (report_id, step, position, state, next_attempt_at) VALUES (?1, ?2, ?3, 'pending', ?4)",
                            )?;
                            for (position, step) in follow_ups.iter().enumerate() {
                                statement.execute(rusqlite::params![
                                    report.id,
                                    step,
                                    position as i64,
                                    report.reported_at
                                ])?;
                            }
                        }
                        Ok(())
                    })
                    .await?;
            }
            Store::Postgres(store) => store.put_fraud_report(&report, &follow_ups).await?,
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

/// Most follow-ups one claim returns.
pub const MAX_FOLLOW_UPS_CLAIMED: i64 = 100;

/// One thing a fraud report sets in motion, and how far it is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FraudFollowUp {
    pub report_id: String,
    /// What to do (`api::fraud` names them: `case`, `dispute`, `notify`).
    pub step: String,
    /// Its place among the report's follow-ups, which are done in this order.
    pub position: i64,
    /// `pending` or `done`.
    pub state: String,
    /// How many times it was claimed to be done.
    pub attempts: i64,
    /// Seconds since the epoch: when it is next tried (while pending).
    pub next_attempt_at: i64,
    /// Why the last try failed; empty when it did not.
    pub last_error: String,
    /// What it made (the case's or the dispute's id, the deliveries queued), once done.
    pub outcome: String,
    pub done_at: Option<i64>,
}

pub(crate) const FOLLOW_UP_COLUMNS: &str =
    "report_id, step, position, state, attempts, next_attempt_at, last_error, outcome, done_at";

fn follow_up_from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<FraudFollowUp> {
    Ok(FraudFollowUp {
        report_id: row.get(0)?,
        step: row.get(1)?,
        position: row.get(2)?,
        state: row.get(3)?,
        attempts: row.get(4)?,
        next_attempt_at: row.get(5)?,
        last_error: row.get(6)?,
        outcome: row.get(7)?,
        done_at: row.get(8)?,
    })
}

/// How a claimed follow-up ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FollowUpResult {
    /// Done, with what it made.
    Done { outcome: String, at: i64 },
    /// Failed: tried again at `retry_at`.
    Failed { error: String, retry_at: i64 },
}

impl Store {
    /// The follow-ups of report `report_id`, in their order.
    pub async fn fraud_follow_ups(
        &self,
        report_id: &str,
    ) -> Result<Vec<FraudFollowUp>, StoreError> {
        let report_id = report_id.to_owned();
        match self {
            Store::Sqlite(store) => {
                store
                    .read(move |connection| {
                        let mut statement = connection.prepare_cached(&format!(
                            "SELECT {FOLLOW_UP_COLUMNS} FROM fraud_report_follow_ups WHERE report_id = ?1 ORDER BY position"
                        ))?;
                        let rows = statement
                            .query_map(rusqlite::params![report_id], follow_up_from_sqlite)?
                            .collect::<rusqlite::Result<Vec<_>>>()?;
                        Ok(rows)
                    })
                    .await
            }
            Store::Postgres(store) => store.fraud_follow_ups(&report_id).await,
        }
    }

    /// The first case ever opened under `case`'s de-duplication key, open or resolved: a
    /// report's case follow-up, retried after the case was opened but before it was marked
    /// done, finds its case here instead of opening another.
    pub async fn first_case_like(
        &self,
        case: &crate::cases::NewCase,
    ) -> Result<Option<i64>, StoreError> {
        let key = case.dedup_key();
        match self {
            Store::Sqlite(store) => {
                store
                    .read(move |connection| {
                        let id = connection
                            .prepare_cached(
                                "SELECT id FROM cases WHERE dedup_key = ?1 ORDER BY id LIMIT 1",
                            )?
                            .query_map(rusqlite::params![key], |row| row.get::<_, i64>(0))?
                            .next()
                            .transpose()?;
                        Ok(id)
                    })
                    .await
            }
            Store::Postgres(store) => store.first_case_like(&key).await,
        }
    }

    /// Claims the pending follow-ups due at `now` (only report `report_id`'s, when given), at
    /// most `limit` (clamped to [`MAX_FOLLOW_UPS_CLAIMED`]): each claim raises `attempts` and
    /// moves `next_attempt_at` to `lease_until`, so no other runner takes it before then.
    /// Returned by report, in each report's order.
    pub async fn claim_fraud_follow_ups(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
        report_id: Option<&str>,
    ) -> Result<Vec<FraudFollowUp>, StoreError> {
        let limit = limit.clamp(1, MAX_FOLLOW_UPS_CLAIMED);
        let report_id = report_id.map(str::to_owned);
        let mut claimed = match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        let mut statement = connection.prepare_cached(&format!(
                            "UPDATE fraud_report_follow_ups SET attempts = attempts + 1, next_attempt_at = ?2 WHERE rowid IN (SELECT rowid FROM fraud_report_follow_ups WHERE state = 'pending' AND next_attempt_at <= ?1 AND (?4 IS NULL OR report_id = ?4) ORDER BY next_attempt_at, report_id, position LIMIT ?3) RETURNING {FOLLOW_UP_COLUMNS}"
                        ))?;
                        let rows = statement
                            .query_map(
                                rusqlite::params![now, lease_until, limit, report_id],
                                follow_up_from_sqlite,
                            )?
                            .collect::<rusqlite::Result<Vec<_>>>()?;
                        Ok(rows)
                    })
                    .await?
            }
            Store::Postgres(store) => {
                store
                    .claim_fraud_follow_ups(now, lease_until, limit, report_id.as_deref())
                    .await?
            }
        };
        claimed.sort_by(|a, b| (&a.report_id, a.position).cmp(&(&b.report_id, b.position)));
        Ok(claimed)
    }

    /// Records how the claim `claimed` of a follow-up ended. Only that claim may (its
    /// `attempts` still the row's): false when a later claim took it over, or it was done.
    pub async fn finish_fraud_follow_up(
        &self,
        claimed: &FraudFollowUp,
        result: FollowUpResult,
    ) -> Result<bool, StoreError> {
        let (report_id, step, attempts) = (
            claimed.report_id.clone(),
            claimed.step.clone(),
            claimed.attempts,
        );
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        let changed = match &result {
                            FollowUpResult::Done { outcome, at } => connection
                                .prepare_cached("UPDATE fraud_report_follow_ups SET state = 'done', outcome = ?4, done_at = ?5, last_error = '' WHERE report_id = ?1 AND step = ?2 AND attempts = ?3 AND state = 'pending'")?
                                .execute(rusqlite::params![report_id, step, attempts, outcome, at])?,
                            FollowUpResult::Failed { error, retry_at } => connection
                                .prepare_cached("UPDATE fraud_report_follow_ups SET last_error = ?4, next_attempt_at = ?5 WHERE report_id = ?1 AND step = ?2 AND attempts = ?3 AND state = 'pending'")?
                                .execute(rusqlite::params![report_id, step, attempts, error, retry_at])?,
                        };
                        Ok(changed == 1)
                    })
                    .await
            }
            Store::Postgres(store) => {
                store
                    .finish_fraud_follow_up(&report_id, &step, attempts, &result)
                    .await
            }
        }
    }
}
