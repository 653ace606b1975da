//! Store-and-forward of the host's own reversals (see the `pending_reversals` migration).
//!
//! The host queues a reversal before it answers a terminal 96 for a message it could not decide
//! in time; a worker forwards each queued reversal until it is acknowledged, retrying with
//! back-off, and the queue survives restarts because it is a table.

/// A message the host must reverse, with what a reversal (0400) of it carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PendingReversal {
    /// Assigned by the store; 0 before the row is queued.
    pub id: i64,
    /// Microseconds since the epoch.
    pub created_at: i64,
    pub terminal_id: String,
    pub merchant_id: String,
    pub batch: i64,
    pub stan: i64,
    /// Field 3 of the message to reverse.
    pub processing_code: String,
    /// Field 25.
    pub condition_code: String,
    /// 60.1.
    pub transaction_type: String,
    /// Field 61 of a follow-up.
    pub original_batch: Option<i64>,
    pub original_stan: Option<i64>,
    pub amount_minor: i64,
    /// ISO 4217 numeric.
    pub currency: i64,
    pub attempts: i64,
    /// Microseconds since the epoch.
    pub next_attempt_at: i64,
    /// Field 39 of the last attempt's answer.
    pub last_response: Option<String>,
    pub done_at: Option<i64>,
}

pub(crate) const PENDING_REVERSAL_COLUMNS: &str = "id, created_at, terminal_id, merchant_id, batch, stan, processing_code, condition_code, transaction_type, original_batch, original_stan, amount_minor, currency, attempts, next_attempt_at, last_response, done_at";

/// What one attempt at forwarding a reversal came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReversalAttempt {
    pub id: i64,
    /// Field 39 of the answer.
    pub response: String,
    /// Microseconds since the epoch: when it was acknowledged, or `None` to try again at
    /// `next_attempt_at`.
    pub done_at: Option<i64>,
    pub next_attempt_at: i64,
}
