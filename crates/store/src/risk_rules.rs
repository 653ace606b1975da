//! Versions of the risk rules (issue 10): every save is a new row with the whole TOML, who and
//! when; the highest version is in force (hosts read it every 2 seconds). Rows are never
//! edited; a rollback saves an earlier text again as a new version.

use crate::{Store, StoreError};

/// Most versions one list returns, newest first.
pub const MAX_RULE_VERSIONS_PAGE: i64 = 200;

/// One saved version of the rules.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RuleVersion {
    /// 1, 2, 3 …
    pub version: i64,
    /// The whole rules file.
    pub toml: String,
    pub saved_by: String,
    /// Unix seconds.
    pub saved_at: i64,
    /// Why, in the editor's words (`rollback to version 3` for a rollback).
    pub note: String,
}

pub(crate) const RULE_VERSION_COLUMNS: &str = "version, toml, saved_by, saved_at, note";

fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<RuleVersion> {
    Ok(RuleVersion {
        version: row.get(0)?,
        toml: row.get(1)?,
        saved_by: row.get(2)?,
        saved_at: row.get(3)?,
        note: row.get(4)?,
    })
}

impl Store {
    /// The version in force: the highest (`None` before the first save).
    pub async fn current_risk_rules(&self) -> Result<Option<RuleVersion>, StoreError> {
        Ok(self.risk_rule_versions(1).await?.pop())
    }

    /// The newest `limit` versions (at most [`MAX_RULE_VERSIONS_PAGE`]), newest first.
    pub async fn risk_rule_versions(&self, limit: i64) -> Result<Vec<RuleVersion>, StoreError> {
        let limit = limit.clamp(1, MAX_RULE_VERSIONS_PAGE);
        match self {
            Store::Sqlite(store) => {
                store
                    .read(move |connection| {
                        let mut statement = connection.prepare_cached(&format!(
                            "SELECT {RULE_VERSION_COLUMNS} FROM risk_rule_versions ORDER BY version DESC LIMIT ?1"
                        ))?;
                        let rows = statement.query_map([limit], from_sqlite)?;
                        Ok(rows.collect::<Result<Vec<_>, _>>()?)
                    })
                    .await
            }
            Store::Postgres(store) => store.risk_rule_versions(limit).await,
        }
    }

    /// One version.
    pub async fn risk_rule_version(&self, version: i64) -> Result<Option<RuleVersion>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .read(move |connection| {
                        let mut statement = connection.prepare_cached(&format!(
                        "SELECT {RULE_VERSION_COLUMNS} FROM risk_rule_versions WHERE version = ?1"
                    ))?;
                        Ok(statement
                            .query_map([version], from_sqlite)?
                            .next()
                            .transpose()?)
                    })
                    .await
            }
            Store::Postgres(store) => store.risk_rule_version(version).await,
        }
    }

    /// Saves `toml` as the version after `based_on` (0: the first), which must still be the
    /// newest: `None` when another save came first (reload and edit again), so that no edit
    /// silently undoes another. The caller has checked the text.
    pub async fn save_risk_rules(
        &self,
        based_on: i64,
        toml: String,
        saved_by: String,
        saved_at: i64,
        note: String,
    ) -> Result<Option<RuleVersion>, StoreError> {
        let saved = RuleVersion {
            version: based_on + 1,
            toml,
            saved_by,
            saved_at,
            note,
        };
        let added = match self {
            Store::Sqlite(store) => {
                let row = saved.clone();
                store
                    .write(move |connection| {
                        // The writer thread is the only writer: the newest cannot change
                        // between this check and the insert.
                        let newest: i64 = connection
                            .prepare_cached(
                                "SELECT COALESCE(MAX(version), 0) FROM risk_rule_versions",
                            )?
                            .query_row([], |r| r.get(0))?;
                        if newest != based_on {
                            return Ok(false);
                        }
                        connection
                            .prepare_cached(&format!(
                                "INSERT INTO risk_rule_versions ({RULE_VERSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"
                            ))?
                            .execute(rusqlite::params![
                                row.version,
                                row.toml,
                                row.saved_by,
                                row.saved_at,
                                row.note
                            ])?;
                        Ok(true)
                    })
                    .await?
            }
            Store::Postgres(store) => store.save_risk_rules(based_on, &saved).await?,
        };
        Ok(added.then_some(saved))
    }
}
