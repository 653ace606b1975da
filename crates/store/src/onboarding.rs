//! Getting a terminal (issue 11): applications, their documents, terminal details, one-time
//! activation codes, invitations and id sequences. The `onboarding` crate gives them
//! behaviour; here they are rows.
//!
//! Every statement is written once, with PostgreSQL's `$n` parameters (SQLite reads them as
//! `?n`), and run through [`Store::onboarding_execute`] and [`Store::onboarding_query`], so the
//! two backends cannot drift apart. A group of statements runs atomically: every statement
//! marked [`Step::expect_one`] must change exactly one row, or nothing of the group is kept.

use crate::{Store, StoreError};

/// A parameter or a column value: text or integer, either possibly NULL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
}

impl Cell {
    pub fn text(value: impl Into<String>) -> Cell {
        Cell::Text(Some(value.into()))
    }

    pub fn int(value: i64) -> Cell {
        Cell::Int(Some(value))
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Cell::Text(value) => value.as_deref(),
            Cell::Int(_) => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Cell::Int(value) => *value,
            Cell::Text(_) => None,
        }
    }
}

/// The kind of a column to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
}

/// One statement of an atomic group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub sql: String,
    pub params: Vec<Cell>,
    /// The group is kept only if this statement changed exactly one row (a conditional update
    /// that found its row in the state its writer read).
    pub expect_one: bool,
}

impl Step {
    pub fn new(sql: impl Into<String>, params: Vec<Cell>) -> Step {
        Step {
            sql: sql.into(),
            params,
            expect_one: false,
        }
    }

    pub fn expect_one(mut self) -> Step {
        self.expect_one = true;
        self
    }
}

/// `$n` parameters as SQLite's `?n`.
pub(crate) fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

fn sqlite_value(cell: &Cell) -> rusqlite::types::Value {
    match cell {
        Cell::Text(Some(text)) => rusqlite::types::Value::Text(text.clone()),
        Cell::Int(Some(value)) => rusqlite::types::Value::Integer(*value),
        Cell::Text(None) | Cell::Int(None) => rusqlite::types::Value::Null,
    }
}

fn sqlite_row(row: &rusqlite::Row<'_>, kinds: &[Kind]) -> rusqlite::Result<Vec<Cell>> {
    kinds
        .iter()
        .enumerate()
        .map(|(index, kind)| {
            Ok(match kind {
                Kind::Text => Cell::Text(row.get(index)?),
                Kind::Int => Cell::Int(row.get(index)?),
            })
        })
        .collect()
}

/// Runs `steps` in a savepoint of their own: all kept, or (an expectation failed) none.
fn sqlite_steps(connection: &rusqlite::Connection, steps: &[Step]) -> Result<bool, StoreError> {
    connection.execute_batch("SAVEPOINT onboarding_steps")?;
    let mut kept = true;
    for step in steps {
        let changed =
            connection
                .prepare_cached(&sqlite_sql(&step.sql))?
                .execute(rusqlite::params_from_iter(
                    step.params.iter().map(sqlite_value),
                ));
        match changed {
            Ok(changed) if step.expect_one && changed != 1 => {
                kept = false;
                break;
            }
            Ok(_) => {}
            Err(error) => {
                connection
                    .execute_batch("ROLLBACK TO onboarding_steps; RELEASE onboarding_steps")?;
                return Err(error.into());
            }
        }
    }
    if kept {
        connection.execute_batch("RELEASE onboarding_steps")?;
    } else {
        connection.execute_batch("ROLLBACK TO onboarding_steps; RELEASE onboarding_steps")?;
    }
    Ok(kept)
}

impl Store {
    /// Runs `steps` atomically; `false` (and nothing written) when a step marked
    /// [`Step::expect_one`] did not change exactly one row.
    pub async fn onboarding_execute(&self, steps: Vec<Step>) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| sqlite_steps(connection, &steps))
                    .await
            }
            Store::Postgres(store) => store.onboarding_execute(steps).await,
        }
    }

    /// Reads the rows of `sql` with columns of `kinds`.
    pub async fn onboarding_query(
        &self,
        sql: &str,
        params: Vec<Cell>,
        kinds: &[Kind],
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                let sql = sqlite_sql(sql);
                let kinds = kinds.to_vec();
                store
                    .read(move |connection| {
                        let mut statement = connection.prepare_cached(&sql)?;
                        let rows = statement.query_map(
                            rusqlite::params_from_iter(params.iter().map(sqlite_value)),
                            |row| sqlite_row(row, &kinds),
                        )?;
                        Ok(rows.collect::<Result<Vec<_>, _>>()?)
                    })
                    .await
            }
            Store::Postgres(store) => store.onboarding_query(sql, params, kinds).await,
        }
    }

    /// One write whose `RETURNING` rows are read back (a redeemed code, a sequence's next
    /// value), atomic by itself.
    pub async fn onboarding_write_returning(
        &self,
        sql: &str,
        params: Vec<Cell>,
        kinds: &[Kind],
    ) -> Result<Vec<Vec<Cell>>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                let sql = sqlite_sql(sql);
                let kinds = kinds.to_vec();
                store
                    .write(move |connection| {
                        let mut statement = connection.prepare_cached(&sql)?;
                        let rows = statement.query_map(
                            rusqlite::params_from_iter(params.iter().map(sqlite_value)),
                            |row| sqlite_row(row, &kinds),
                        )?;
                        Ok(rows.collect::<Result<Vec<_>, _>>()?)
                    })
                    .await
            }
            Store::Postgres(store) => store.onboarding_query(sql, params, kinds).await,
        }
    }
}
