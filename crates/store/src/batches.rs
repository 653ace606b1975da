//! Terminal batch close (批结算) and batch upload (批上送), issue 12: the advices a terminal
//! uploads after its totals disagreed with the host's, and each closed batch with the
//! differences the host found (docs/protocol.md, "Batch settlement and batch upload").
//!
//! A batch closes in one transaction: the terminal's session moves to the next batch number,
//! and the close with its differences is recorded, or nothing is. Card numbers are masked.

use crate::{Store, StoreError};

/// One uploaded transaction (0320): what the terminal says it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchAdvice {
    pub terminal_id: String,
    pub batch: i64,
    /// The uploaded transaction's own trace number.
    pub stan: i64,
    /// `Sale`, `SaleVoid`, `Refund`, `PreAuthorizationCompletion` or `CompletionVoid`.
    pub kind: String,
    pub amount_minor: i64,
    /// ISO 4217 numeric.
    pub currency: i64,
    /// Masked (first six and last four digits).
    pub card: Option<String>,
    pub rrn: Option<String>,
    pub auth_code: Option<String>,
    /// Microseconds since the epoch.
    pub received_at: i64,
}

/// One side's totals of a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchSide {
    pub debit_count: i64,
    pub debit_minor: i64,
    pub credit_count: i64,
    pub credit_minor: i64,
}

/// A transaction on which the terminal and the host differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchDifference {
    pub stan: i64,
    /// `terminal_only`, `host_only` or `differs` (another type or amount).
    pub difference: String,
    pub terminal_kind: Option<String>,
    pub terminal_amount_minor: Option<i64>,
    pub host_kind: Option<String>,
    pub host_amount_minor: Option<i64>,
    /// Masked.
    pub card: Option<String>,
}

/// A closed batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchClose {
    /// The store's id; ignored by [`Store::close_batch`].
    pub id: i64,
    pub terminal_id: String,
    pub merchant_id: String,
    pub batch: i64,
    /// Microseconds since the epoch.
    pub closed_at: i64,
    /// `agreed` (the totals agreed) or `resolved` (they did not; the upload found the
    /// differences).
    pub status: String,
    /// ISO 4217 numeric (field 49 of the settlement).
    pub currency: i64,
    pub terminal: BatchSide,
    pub host: BatchSide,
    pub differences: Vec<BatchDifference>,
}

pub(crate) const ADVICE_COLUMNS: &str =
    "terminal_id, batch, stan, kind, amount_minor, currency, card, rrn, auth_code, received_at";
pub(crate) const CLOSE_COLUMNS: &str = "id, terminal_id, merchant_id, batch, closed_at, status, currency, terminal_debit_count, terminal_debit_minor, terminal_credit_count, terminal_credit_minor, host_debit_count, host_debit_minor, host_credit_count, host_credit_minor";
pub(crate) const DIFFERENCE_COLUMNS: &str = "close_id, stan, difference, terminal_kind, terminal_amount_minor, host_kind, host_amount_minor, card";
/// The statement that moves a terminal to its next batch when `batch` is still its current
/// one ({p1} terminal id, {p2} batch), as `SessionChange::CloseBatch` does.
pub(crate) fn next_batch_sql(p1: &str, p2: &str) -> String {
    crate::directory::SessionChange::CloseBatch { batch: 0 }.sql(p1, p2)
}

/// The most closes one report read returns: a day of a large acquirer's terminals, bounded.
pub const MAX_CLOSES_PER_READ: i64 = 100_000;

impl Store {
    /// Records an uploaded transaction; a repeat of the same trace number replaces it.
    pub async fn put_batch_advice(&self, advice: BatchAdvice) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        connection
                            .prepare_cached(&format!(
                                "INSERT OR REPLACE INTO batch_advices ({ADVICE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                            ))?
                            .execute(rusqlite::params![
                                advice.terminal_id,
                                advice.batch,
                                advice.stan,
                                advice.kind,
                                advice.amount_minor,
                                advice.currency,
                                advice.card,
                                advice.rrn,
                                advice.auth_code,
                                advice.received_at
                            ])?;
                        Ok(())
                    })
                    .await
            }
            Store::Postgres(store) => store.put_batch_advice(&advice).await,
        }
    }

    /// The advices of a terminal's batch, by trace number.
    pub async fn batch_advices(
        &self,
        terminal_id: &str,
        batch: i64,
    ) -> Result<Vec<BatchAdvice>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                let terminal_id = terminal_id.to_owned();
                store
                    .read(move |connection| {
                        let mut statement = connection.prepare_cached(&format!(
                            "SELECT {ADVICE_COLUMNS} FROM batch_advices WHERE terminal_id = ?1 AND batch = ?2 ORDER BY stan"
                        ))?;
                        let rows = statement.query_map(
                            rusqlite::params![terminal_id, batch],
                            |row| {
                                Ok(BatchAdvice {
                                    terminal_id: row.get(0)?,
                                    batch: row.get(1)?,
                                    stan: row.get(2)?,
                                    kind: row.get(3)?,
                                    amount_minor: row.get(4)?,
                                    currency: row.get(5)?,
                                    card: row.get(6)?,
                                    rrn: row.get(7)?,
                                    auth_code: row.get(8)?,
                                    received_at: row.get(9)?,
                                })
                            },
                        )?;
                        Ok(rows.collect::<Result<Vec<_>, _>>()?)
                    })
                    .await
            }
            Store::Postgres(store) => store.batch_advices(terminal_id, batch).await,
        }
    }

    /// Forgets a batch's advices: a new upload round starts empty.
    pub async fn clear_batch_advices(
        &self,
        terminal_id: &str,
        batch: i64,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => {
                let terminal_id = terminal_id.to_owned();
                store
                    .write(move |connection| {
                        connection
                            .prepare_cached(
                                "DELETE FROM batch_advices WHERE terminal_id = ?1 AND batch = ?2",
                            )?
                            .execute(rusqlite::params![terminal_id, batch])?;
                        Ok(())
                    })
                    .await
            }
            Store::Postgres(store) => store.clear_batch_advices(terminal_id, batch).await,
        }
    }

    /// Closes `close.batch` of `close.terminal_id` and records the close with its differences,
    /// in one transaction. `false` (and nothing written) when that batch is no longer the
    /// terminal's current one: it was closed already.
    pub async fn close_batch(&self, close: BatchClose) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(store) => {
                let terminal_id = close.terminal_id.clone();
                let (closed, session) = store
                    .write(move |connection| {
                        let changed = connection
                            .prepare_cached(&next_batch_sql("?1", "?2"))?
                            .execute(rusqlite::params![close.terminal_id, close.batch])?;
                        if changed == 1 {
                            insert_close_sqlite(connection, &close)?;
                        }
                        let session =
                            crate::sqlite::find_terminal_session(connection, &close.terminal_id)?;
                        Ok((changed == 1, session))
                    })
                    .await?;
                store.remember_session(&terminal_id, &session);
                Ok(closed)
            }
            Store::Postgres(store) => store.close_batch(&close).await,
        }
    }

    /// The batches closed from `from_us` (inclusive) to `to_us` (exclusive), oldest first, with
    /// their differences; at most [`MAX_CLOSES_PER_READ`].
    pub async fn batch_closes(
        &self,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<BatchClose>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .read(move |connection| {
                        let mut statement = connection.prepare_cached(&format!(
                            "SELECT {CLOSE_COLUMNS} FROM batch_closes WHERE closed_at >= ?1 AND closed_at < ?2 ORDER BY closed_at, id LIMIT ?3"
                        ))?;
                        let mut closes = statement
                            .query_map(
                                rusqlite::params![from_us, to_us, MAX_CLOSES_PER_READ],
                                |row| {
                                    let number = |index| row.get::<_, i64>(index);
                                    Ok(BatchClose {
                                        id: row.get(0)?,
                                        terminal_id: row.get(1)?,
                                        merchant_id: row.get(2)?,
                                        batch: row.get(3)?,
                                        closed_at: row.get(4)?,
                                        status: row.get(5)?,
                                        currency: row.get(6)?,
                                        terminal: BatchSide {
                                            debit_count: number(7)?,
                                            debit_minor: number(8)?,
                                            credit_count: number(9)?,
                                            credit_minor: number(10)?,
                                        },
                                        host: BatchSide {
                                            debit_count: number(11)?,
                                            debit_minor: number(12)?,
                                            credit_count: number(13)?,
                                            credit_minor: number(14)?,
                                        },
                                        differences: Vec::new(),
                                    })
                                },
                            )?
                            .collect::<Result<Vec<_>, _>>()?;
                        let mut statement = connection.prepare_cached(&format!(
                            "SELECT {DIFFERENCE_COLUMNS} FROM batch_differences WHERE close_id = ?1 ORDER BY stan"
                        ))?;
                        for close in &mut closes {
                            close.differences = statement
                                .query_map([close.id], |row| {
                                    Ok(BatchDifference {
                                        stan: row.get(1)?,
                                        difference: row.get(2)?,
                                        terminal_kind: row.get(3)?,
                                        terminal_amount_minor: row.get(4)?,
                                        host_kind: row.get(5)?,
                                        host_amount_minor: row.get(6)?,
                                        card: row.get(7)?,
                                    })
                                })?
                                .collect::<Result<Vec<_>, _>>()?;
                        }
                        Ok(closes)
                    })
                    .await
            }
            Store::Postgres(store) => store.batch_closes(from_us, to_us).await,
        }
    }
}

fn insert_close_sqlite(
    connection: &rusqlite::Connection,
    close: &BatchClose,
) -> Result<(), StoreError> {
    let columns = CLOSE_COLUMNS.trim_start_matches("id, ");
    connection
        .prepare_cached(&format!(
            "INSERT INTO batch_closes ({columns}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        ))?
        .execute(rusqlite::params![
            close.terminal_id,
            close.merchant_id,
            close.batch,
            close.closed_at,
            close.status,
            close.currency,
            close.terminal.debit_count,
            close.terminal.debit_minor,
            close.terminal.credit_count,
            close.terminal.credit_minor,
            close.host.debit_count,
            close.host.debit_minor,
            close.host.credit_count,
            close.host.credit_minor
        ])?;
    let id = connection.last_insert_rowid();
    let mut statement = connection.prepare_cached(&format!(
        "INSERT INTO batch_differences ({DIFFERENCE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))?;
    for difference in &close.differences {
        statement.execute(rusqlite::params![
            id,
            difference.stan,
            difference.difference,
            difference.terminal_kind,
            difference.terminal_amount_minor,
            difference.host_kind,
            difference.host_amount_minor,
            difference.card
        ])?;
    }
    Ok(())
}
