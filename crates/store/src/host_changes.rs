//! Changes to what every host keeps in memory about a terminal (issue 15, docs/scaling.md).
//!
//! A host answers terminals from memory: their directory records (active or not, their
//! merchant), their parameter sets, their master keys' tokens. The process that changes one of
//! them (onboarding: an activation, a status change, a forced key change, new parameters)
//! applies it to its own host at once and writes a row here in the same transaction. The other
//! hosts sharing the database read the rows every couple of seconds and read the terminal
//! afresh; a host also reads a terminal it does not know before refusing it, so a terminal
//! activated through one host may sign on through another at once.
//!
//! Row ids come from a sequence, and PostgreSQL may commit a later id before an earlier one:
//! readers therefore read everything after the last id they saw *and* everything of the last
//! [`OVERLAP_SECONDS`], and skip what they applied already.

use crate::directory::{Merchant, Terminal};
use crate::onboarding::{Cell, Kind, Step};
use crate::{Store, StoreError};

/// How far back a reader looks again, for changes committed out of id order.
pub const OVERLAP_SECONDS: i64 = 30;
/// Rows older than this are deleted by the next writer.
pub const KEEP_SECONDS: i64 = 86_400;

/// One change: terminal `terminal_id` must be read afresh by every host (the one that made
/// the change applied it already; reading it again changes nothing there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostChange {
    pub id: i64,
    pub terminal_id: String,
    /// Seconds since the epoch.
    pub at: i64,
}

/// The statements that record a change, for the change's own group of steps
/// ([`Store::onboarding_execute`]): the row, and the deletion of rows past [`KEEP_SECONDS`].
pub fn steps(terminal_id: &str, at: i64) -> [Step; 2] {
    [
        Step::new(
            "INSERT INTO host_changes (terminal_id, at) VALUES ($1, $2)",
            vec![Cell::text(terminal_id), Cell::int(at)],
        ),
        Step::new(
            "DELETE FROM host_changes WHERE at < $1",
            vec![Cell::int(at - KEEP_SECONDS)],
        ),
    ]
}

impl Store {
    /// Changes with an id above `after_id` or made at `since` (seconds) or later, by id.
    pub async fn host_changes(
        &self,
        after_id: i64,
        since: i64,
    ) -> Result<Vec<HostChange>, StoreError> {
        let rows = self
            .onboarding_query(
                "SELECT id, terminal_id, at FROM host_changes WHERE id > $1 OR at >= $2 ORDER BY id",
                vec![Cell::int(after_id), Cell::int(since)],
                &[Kind::Int, Kind::Text, Kind::Int],
            )
            .await?;
        rows.into_iter()
            .map(|row| match row.as_slice() {
                [id, terminal, at] => Ok(HostChange {
                    id: id.as_int().unwrap_or_default(),
                    terminal_id: terminal.as_text().unwrap_or_default().to_owned(),
                    at: at.as_int().unwrap_or_default(),
                }),
                _ => Err(StoreError::Corrupt("a host change row".into())),
            })
            .collect()
    }

    /// Terminal `id`'s directory record and its merchant's, as they are now; `None` when there
    /// is no such terminal (or its merchant is missing).
    pub async fn terminal_with_merchant(
        &self,
        id: &str,
    ) -> Result<Option<(Terminal, Merchant)>, StoreError> {
        match self {
            Store::Sqlite(store) => store.terminal_with_merchant(id).await,
            Store::Postgres(store) => store.terminal_with_merchant(id).await,
        }
    }
}

/// The join both backends run for [`Store::terminal_with_merchant`] (`$1`: the terminal id).
pub(crate) const TERMINAL_WITH_MERCHANT: &str = "SELECT t.id, t.merchant_id, t.status, m.id, m.acquirer, m.name, m.name_zh, m.city, m.mcc, m.settlement_account \
     FROM terminals t JOIN merchants m ON m.id = t.merchant_id WHERE t.id = $1";
