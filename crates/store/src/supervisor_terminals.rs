//! Where each supervisor's terminal password has allowed a void or refund (issue 10, insider
//! alerts, docs/risk.md#insider-alerts): the host's unusual-terminal watch
//! ([`risk::insider::SupervisorWatch`] in the `risk` crate) writes each terminal new to a
//! supervisor here and reads them all at start, so that a restart does not forget which
//! terminals are usual. Per supervisor only the newest [`MAX_TERMINALS_PER_SUPERVISOR`] are
//! kept, as in the watch.

use crate::onboarding::{Cell, Kind, Step};
use crate::{Store, StoreError};

/// Terminals kept per supervisor (the watch's `MAX_TERMINALS_PER_SUPERVISOR`).
pub const MAX_TERMINALS_PER_SUPERVISOR: i64 = 16;
/// Most rows read at start: the watch's supervisors times their terminals.
pub const MAX_SUPERVISOR_TERMINALS_READ: i64 = 100_000 * MAX_TERMINALS_PER_SUPERVISOR;

/// One usual terminal of a supervisor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupervisorTerminal {
    pub merchant_id: String,
    pub operator_no: String,
    pub terminal_id: String,
    pub last_used_at: i64,
}

impl Store {
    /// Records that `operator_no`'s password allowed something at `terminal_id` at `at`, and
    /// forgets that supervisor's terminals beyond the newest
    /// [`MAX_TERMINALS_PER_SUPERVISOR`], together.
    pub async fn remember_supervisor_terminal(
        &self,
        used: &SupervisorTerminal,
    ) -> Result<(), StoreError> {
        let key = || vec![Cell::text(&used.merchant_id), Cell::text(&used.operator_no)];
        let mut trim = key();
        trim.push(Cell::int(MAX_TERMINALS_PER_SUPERVISOR));
        let mut insert = key();
        insert.push(Cell::text(&used.terminal_id));
        insert.push(Cell::int(used.last_used_at));
        self.onboarding_execute(vec![
            Step::new(
                "INSERT INTO supervisor_terminals (merchant_id, operator_no, terminal_id, last_used_at) VALUES ($1, $2, $3, $4) ON CONFLICT (merchant_id, operator_no, terminal_id) DO UPDATE SET last_used_at = excluded.last_used_at",
                insert,
            ),
            Step::new(
                "DELETE FROM supervisor_terminals WHERE merchant_id = $1 AND operator_no = $2 AND terminal_id NOT IN (SELECT terminal_id FROM supervisor_terminals WHERE merchant_id = $1 AND operator_no = $2 ORDER BY last_used_at DESC, terminal_id LIMIT $3)",
                trim,
            ),
        ])
        .await
        .map(|_| ())
    }

    /// Every supervisor's usual terminals, oldest use first (the order the watch learns them).
    pub async fn supervisor_terminals(&self) -> Result<Vec<SupervisorTerminal>, StoreError> {
        let rows = self
            .onboarding_query(
                "SELECT merchant_id, operator_no, terminal_id, last_used_at FROM supervisor_terminals ORDER BY last_used_at, merchant_id, operator_no, terminal_id LIMIT $1",
                vec![Cell::int(MAX_SUPERVISOR_TERMINALS_READ)],
                &[Kind::Text, Kind::Text, Kind::Text, Kind::Int],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                Some(SupervisorTerminal {
                    merchant_id: row.first()?.as_text()?.to_owned(),
                    operator_no: row.get(1)?.as_text()?.to_owned(),
                    terminal_id: row.get(2)?.as_text()?.to_owned(),
                    last_used_at: row.get(3)?.as_int()?,
                })
            })
            .collect())
    }
}
