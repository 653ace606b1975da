//! The journal read in order of arrival, for what watches it after the fact (the insider
//! alerts, docs/risk.md#insider-alerts): rows after a given id, a bounded page at a time.

use crate::journal::{JOURNAL_COLUMN_COUNT, JOURNAL_COLUMNS, JournalEntry};
use crate::{Store, StoreError};

/// Most rows one read returns.
pub const MAX_FEED_PAGE: i64 = 10_000;

impl Store {
    /// Rows with an id above `after_id`, oldest first, at most `limit` (capped at
    /// [`MAX_FEED_PAGE`]), each with its id.
    pub async fn journal_after(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<(i64, JournalEntry)>, StoreError> {
        let limit = limit.clamp(1, MAX_FEED_PAGE);
        match self {
            Store::Sqlite(store) => {
                store
                    .read(move |connection| {
                        let mut statement = connection.prepare_cached(&format!(
                            "SELECT {JOURNAL_COLUMNS}, id FROM journal WHERE id > ?1 ORDER BY id LIMIT ?2"
                        ))?;
                        let rows = statement.query_map([after_id, limit], |row| {
                            Ok((
                                row.get(JOURNAL_COLUMN_COUNT)?,
                                crate::sqlite::journal_entry_from_row(row)?,
                            ))
                        })?;
                        Ok(rows.collect::<Result<Vec<_>, _>>()?)
                    })
                    .await
            }
            Store::Postgres(store) => {
                let client = store.other.lock().await?;
                let rows = client
                    .query(
                        &format!(
                            "SELECT {JOURNAL_COLUMNS}, id FROM journal WHERE id > $1 ORDER BY id LIMIT $2"
                        ),
                        &[&after_id, &limit],
                    )
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok((
                            row.try_get(JOURNAL_COLUMN_COUNT)?,
                            crate::postgres::journal_entry_from_row(row)?,
                        ))
                    })
                    .collect()
            }
        }
    }

    /// The id of the newest row (0 when the journal is empty): where a watcher that starts
    /// now begins.
    pub async fn journal_last_id(&self) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .read(|connection| {
                        Ok(connection
                            .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM journal")?
                            .query_row([], |row| row.get(0))?)
                    })
                    .await
            }
            Store::Postgres(store) => {
                let client = store.other.lock().await?;
                Ok(client
                    .query_one("SELECT COALESCE(MAX(id), 0) FROM journal", &[])
                    .await?
                    .try_get(0)?)
            }
        }
    }
}
