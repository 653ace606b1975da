//! Every key the database holds as a TR-31 token under the HSM master key, read and replaced
//! as one set: what a master-key rotation rewraps (docs/key-ceremonies.md). A table that
//! starts to hold tokens must be listed in [`TOKEN_COLUMNS`]; the rotation test fails for a
//! token it cannot find.

use crate::onboarding::{Cell, Kind, Step};
use crate::{Store, StoreError};

/// `(table, row key column, token column)` of every column that holds a token.
pub const TOKEN_COLUMNS: &[(&str, &str, &str)] = &[
    ("hsm_keys", "name", "token"),
    ("terminal_sessions", "terminal_id", "pin_key"),
    ("terminal_sessions", "terminal_id", "mac_key"),
    ("receipt_keys", "key_id", "token"),
    ("audit_anchor_keys", "key_id", "token"),
];

/// One stored token and where it is.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub table: &'static str,
    pub key_column: &'static str,
    pub token_column: &'static str,
    /// The row's key (a key name, terminal id or receipt key id).
    pub row: String,
    pub token: String,
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A token is not a secret, but there is no need to print one.
        write!(f, "{}.{}[{}]", self.table, self.token_column, self.row)
    }
}

fn select(key_column: &str, token_column: &str, table: &str) -> String {
    format!(
        "SELECT {key_column}, {token_column} FROM {table} WHERE {token_column} IS NOT NULL ORDER BY {key_column}"
    )
}

/// Every token in the database of `backend`, read without opening the store: on SQLite
/// through a read-only connection beside a running platform (`easypos hsm retire`).
pub async fn stored_tokens(backend: &crate::Backend) -> Result<Vec<StoredToken>, StoreError> {
    let mut tokens = Vec::new();
    match backend {
        crate::Backend::Sqlite { path } => {
            let path = path.clone();
            let rows = tokio::task::spawn_blocking(move || {
                let connection = rusqlite::Connection::open_with_flags(
                    &path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )?;
                connection.busy_timeout(std::time::Duration::from_secs(10))?;
                let mut all = Vec::new();
                for &(table, key_column, token_column) in TOKEN_COLUMNS {
                    let mut statement =
                        connection.prepare(&select(key_column, token_column, table))?;
                    let rows = statement
                        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get(1)?)))?;
                    for row in rows {
                        let (row, token) = row?;
                        all.push((table, key_column, token_column, row, token));
                    }
                }
                Ok::<_, StoreError>(all)
            })
            .await
            .map_err(|error| StoreError::Write(error.to_string()))??;
            for (table, key_column, token_column, row, token) in rows {
                tokens.push(StoredToken {
                    table,
                    key_column,
                    token_column,
                    row,
                    token,
                });
            }
        }
        crate::Backend::Postgres { url } => {
            let client = crate::postgres::connect(url).await?;
            for &(table, key_column, token_column) in TOKEN_COLUMNS {
                for row in client
                    .query(&select(key_column, token_column, table), &[])
                    .await?
                {
                    tokens.push(StoredToken {
                        table,
                        key_column,
                        token_column,
                        row: row.get(0),
                        token: row.get(1),
                    });
                }
            }
        }
    }
    Ok(tokens)
}

impl Store {
    /// Every token the database holds, table by table.
    pub async fn key_tokens(&self) -> Result<Vec<StoredToken>, StoreError> {
        let mut tokens = Vec::new();
        for &(table, key_column, token_column) in TOKEN_COLUMNS {
            let rows = self
                .onboarding_query(
                    &select(key_column, token_column, table),
                    Vec::new(),
                    &[Kind::Text, Kind::Text],
                )
                .await?;
            for row in rows {
                if let [Cell::Text(Some(row)), Cell::Text(Some(token))] = &row[..] {
                    tokens.push(StoredToken {
                        table,
                        key_column,
                        token_column,
                        row: row.clone(),
                        token: token.clone(),
                    });
                }
            }
        }
        Ok(tokens)
    }

    /// Replaces each token with its new one in one transaction, each only if it is still the
    /// token that was read; `false` (and nothing written) if any changed meanwhile, for
    /// example at a terminal's sign-on: read again and retry.
    pub async fn replace_key_tokens(
        &self,
        changes: Vec<(StoredToken, String)>,
    ) -> Result<bool, StoreError> {
        if changes.is_empty() {
            return Ok(true);
        }
        let steps = changes
            .into_iter()
            .map(|(old, new)| {
                Step::new(
                    format!(
                        "UPDATE {} SET {} = $1 WHERE {} = $2 AND {} = $3",
                        old.table, old.token_column, old.key_column, old.token_column
                    ),
                    vec![Cell::text(new), Cell::text(old.row), Cell::text(old.token)],
                )
                .expect_one()
            })
            .collect();
        self.onboarding_execute(steps).await
    }
}
