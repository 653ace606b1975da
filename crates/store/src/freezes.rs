//! Emergency freezes (issue 10): terminals, merchants and cards that the host declines on their
//! next authorization. Written by the REST API, read whole by the host at start and kept in
//! memory (`risk::Freezes`).

use crate::{Store, StoreError};

/// One frozen terminal, merchant or card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Freeze {
    /// `terminal`, `merchant` or `card`.
    pub scope: String,
    /// The terminal id, merchant id or directory card id.
    pub target: String,
    pub reason: String,
    /// The user who froze it.
    pub frozen_by: String,
    /// Seconds since the epoch.
    pub frozen_at: i64,
}

pub(crate) const FREEZE_COLUMNS: &str = "scope, target, reason, frozen_by, frozen_at";

impl Store {
    /// Every freeze, by scope and target.
    pub async fn freezes(&self) -> Result<Vec<Freeze>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .read(|connection| {
                        let mut statement = connection.prepare_cached(&format!(
                            "SELECT {FREEZE_COLUMNS} FROM freezes ORDER BY scope, target"
                        ))?;
                        let rows = statement.query_map([], |row| {
                            Ok(Freeze {
                                scope: row.get(0)?,
                                target: row.get(1)?,
                                reason: row.get(2)?,
                                frozen_by: row.get(3)?,
                                frozen_at: row.get(4)?,
                            })
                        })?;
                        Ok(rows.collect::<Result<Vec<_>, _>>()?)
                    })
                    .await
            }
            Store::Postgres(store) => store.freezes().await,
        }
    }

    /// Freezes (or re-freezes, with a new reason) a terminal, merchant or card.
    pub async fn put_freeze(&self, freeze: Freeze) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        connection
                            .prepare_cached(&format!(
                                "INSERT INTO freezes ({FREEZE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (scope, target) DO UPDATE SET reason = excluded.reason, frozen_by = excluded.frozen_by, frozen_at = excluded.frozen_at"
                            ))?
                            .execute(rusqlite::params![
                                freeze.scope,
                                freeze.target,
                                freeze.reason,
                                freeze.frozen_by,
                                freeze.frozen_at
                            ])?;
                        Ok(())
                    })
                    .await
            }
            Store::Postgres(store) => store.put_freeze(&freeze).await,
        }
    }

    /// Lifts a freeze; `false` when there was none.
    pub async fn delete_freeze(&self, scope: &str, target: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(store) => {
                let (scope, target) = (scope.to_owned(), target.to_owned());
                store
                    .write(move |connection| {
                        let changed = connection
                            .prepare_cached("DELETE FROM freezes WHERE scope = ?1 AND target = ?2")?
                            .execute(rusqlite::params![scope, target])?;
                        Ok(changed == 1)
                    })
                    .await
            }
            Store::Postgres(store) => store.delete_freeze(scope, target).await,
        }
    }
}
