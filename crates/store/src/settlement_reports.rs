//! End of day's reports kept for the console (issue 12, `clearing::report`): every file
//! `easypos settle` writes, by business date and file name. A statement names its merchant, so
//! a merchant's staff are shown only their own ([`ReportQuery::merchants`]).

use crate::{Store, StoreError};

/// One report file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettlementReport {
    /// The business date, `YYYY-MM-DD`.
    pub date: String,
    /// The file name, as written to disk (`statement-<merchant>-<currency>-<date>.pdf` …).
    pub name: String,
    /// `statement`, `clearing`, `reconciliation` or `batches`.
    pub kind: String,
    /// The merchant a statement is for.
    pub merchant_id: Option<String>,
    /// ISO 4217 alphabetic; empty for the reconciliation and batch reports.
    pub currency: String,
    /// Unix seconds.
    pub written_at: i64,
    /// The file's bytes (empty in listings).
    pub content: Vec<u8>,
}

/// Whose reports a listing shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportQuery {
    /// `None`: every report (the acquirer's operators). `Some(ids)`: only these merchants'
    /// statements.
    pub merchants: Option<Vec<String>>,
}

/// The most business dates one listing shows.
pub const MAX_DATES_LISTED: i64 = 400;

const COLUMNS: &str = "date, name, kind, merchant_id, currency, written_at";

fn listed_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<SettlementReport> {
    Ok(SettlementReport {
        date: row.get(0)?,
        name: row.get(1)?,
        kind: row.get(2)?,
        merchant_id: row.get(3)?,
        currency: row.get(4)?,
        written_at: row.get(5)?,
        content: Vec::new(),
    })
}

fn listed_postgres(row: &tokio_postgres::Row) -> Result<SettlementReport, StoreError> {
    Ok(SettlementReport {
        date: row.try_get(0)?,
        name: row.try_get(1)?,
        kind: row.try_get(2)?,
        merchant_id: row.try_get(3)?,
        currency: row.try_get(4)?,
        written_at: row.try_get(5)?,
        content: Vec::new(),
    })
}

/// The `WHERE` clause of a query, with `first` the number of its first placeholder.
fn scope(query: &ReportQuery, placeholder: impl Fn(usize) -> String, first: usize) -> String {
    match &query.merchants {
        None => "1 = 1".to_owned(),
        Some(ids) if ids.is_empty() => "1 = 0".to_owned(),
        Some(ids) => format!(
            "kind = 'statement' AND merchant_id IN ({})",
            (0..ids.len())
                .map(|index| placeholder(first + index))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl Store {
    /// Keeps `reports`, replacing any of the same date and name.
    pub async fn put_settlement_reports(
        &self,
        reports: Vec<SettlementReport>,
    ) -> Result<(), StoreError> {
        const UPSERT: &str = "INSERT INTO settlement_reports (date, name, kind, merchant_id, currency, written_at, content) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (date, name) DO UPDATE SET kind = excluded.kind, merchant_id = excluded.merchant_id, currency = excluded.currency, written_at = excluded.written_at, content = excluded.content";
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        let mut statement = connection.prepare_cached(&UPSERT.replace('$', "?"))?;
                        for r in &reports {
                            statement.execute(rusqlite::params![
                                r.date,
                                r.name,
                                r.kind,
                                r.merchant_id,
                                r.currency,
                                r.written_at,
                                r.content
                            ])?;
                        }
                        Ok(())
                    })
                    .await
            }
            Store::Postgres(store) => {
                let mut client = store.other.lock().await?;
                let transaction = client.transaction().await?;
                let statement = transaction.prepare(UPSERT).await?;
                for r in &reports {
                    transaction
                        .execute(
                            &statement,
                            &[
                                &r.date,
                                &r.name,
                                &r.kind,
                                &r.merchant_id,
                                &r.currency,
                                &r.written_at,
                                &r.content,
                            ],
                        )
                        .await?;
                }
                transaction.commit().await?;
                Ok(())
            }
        }
    }

    /// The business dates with reports `query` may see, newest first.
    pub async fn settlement_dates(&self, query: &ReportQuery) -> Result<Vec<String>, StoreError> {
        let ids = query.merchants.clone().unwrap_or_default();
        match self {
            Store::Sqlite(store) => {
                let sql = format!(
                    "SELECT DISTINCT date FROM settlement_reports WHERE {} ORDER BY date DESC LIMIT {MAX_DATES_LISTED}",
                    scope(query, |n| format!("?{n}"), 1)
                );
                store
                    .read(move |connection| {
                        let mut statement = connection.prepare(&sql)?;
                        let rows = statement
                            .query_map(rusqlite::params_from_iter(ids.iter()), |row| {
                                row.get::<_, String>(0)
                            })?;
                        Ok(rows.collect::<Result<Vec<_>, _>>()?)
                    })
                    .await
            }
            Store::Postgres(store) => {
                let sql = format!(
                    "SELECT DISTINCT date FROM settlement_reports WHERE {} ORDER BY date DESC LIMIT {MAX_DATES_LISTED}",
                    scope(query, |n| format!("${n}"), 1)
                );
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = ids
                    .iter()
                    .map(|id| id as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                let client = store.other.lock().await?;
                client
                    .query(&sql, &params)
                    .await?
                    .iter()
                    .map(|row| Ok(row.try_get(0)?))
                    .collect()
            }
        }
    }

    /// The reports of `date` that `query` may see, by name, without their content.
    pub async fn settlement_reports_of(
        &self,
        date: &str,
        query: &ReportQuery,
    ) -> Result<Vec<SettlementReport>, StoreError> {
        let ids = query.merchants.clone().unwrap_or_default();
        let date = date.to_owned();
        match self {
            Store::Sqlite(store) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM settlement_reports WHERE date = ?1 AND {} ORDER BY name",
                    scope(query, |n| format!("?{n}"), 2)
                );
                store
                    .read(move |connection| {
                        let mut statement = connection.prepare(&sql)?;
                        let mut params: Vec<&dyn rusqlite::ToSql> = vec![&date];
                        params.extend(ids.iter().map(|id| id as &dyn rusqlite::ToSql));
                        let rows = statement.query_map(params.as_slice(), listed_sqlite)?;
                        Ok(rows.collect::<Result<Vec<_>, _>>()?)
                    })
                    .await
            }
            Store::Postgres(store) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM settlement_reports WHERE date = $1 AND {} ORDER BY name",
                    scope(query, |n| format!("${n}"), 2)
                );
                let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&date];
                params.extend(
                    ids.iter()
                        .map(|id| id as &(dyn tokio_postgres::types::ToSql + Sync)),
                );
                let client = store.other.lock().await?;
                client
                    .query(&sql, &params)
                    .await?
                    .iter()
                    .map(listed_postgres)
                    .collect()
            }
        }
    }

    /// One report with its content, if `query` may see it (`None` otherwise, as for a report
    /// that does not exist).
    pub async fn settlement_report(
        &self,
        date: &str,
        name: &str,
        query: &ReportQuery,
    ) -> Result<Option<SettlementReport>, StoreError> {
        let Some(mut found) = self
            .settlement_reports_of(date, query)
            .await?
            .into_iter()
            .find(|report| report.name == name)
        else {
            return Ok(None);
        };
        let (date, name) = (date.to_owned(), name.to_owned());
        found.content = match self {
            Store::Sqlite(store) => {
                store
                    .read(move |connection| {
                        Ok(connection
                        .prepare_cached(
                            "SELECT content FROM settlement_reports WHERE date = ?1 AND name = ?2",
                        )?
                        .query_row(rusqlite::params![date, name], |row| row.get(0))?)
                    })
                    .await?
            }
            Store::Postgres(store) => {
                let client = store.other.lock().await?;
                client
                    .query_one(
                        "SELECT content FROM settlement_reports WHERE date = $1 AND name = $2",
                        &[&date, &name],
                    )
                    .await?
                    .try_get(0)?
            }
        };
        Ok(Some(found))
    }
}
