//! Refunds from the console and the API (issue 9, R9): a merchant's refund of a card sale, in
//! full or in parts, and a cardholder's request for one. The rules (who may, approval above a
//! threshold, posting through the acquirer) are `aftersale::refunds`; this keeps the rows and
//! the one invariant that needs the database: the parts reserved against a sale never add up
//! to more than it captured, even when two requests race (checked and inserted in one
//! transaction; on PostgreSQL under an advisory lock on the sale).

use crate::{Store, StoreError};

/// Statuses whose amount is reserved against the sale.
pub const RESERVING: [&str; 3] = ["pending_approval", "approved", "refunded"];

/// One refund part, or a cardholder's request for one (`seq` 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refund {
    /// `rf_` and 16 hex digits.
    pub id: String,
    /// The journal id of the sale refunded.
    pub transaction_id: i64,
    /// The sale's merchant.
    pub merchant_id: String,
    /// The part's number among the sale's refunds (it names the part's ledger transfers), 0
    /// for a cardholder's request.
    pub seq: i64,
    /// The cardholder's request this part answers, or empty.
    pub request_id: String,
    pub amount_minor: i64,
    /// ISO 4217 numeric.
    pub currency: i64,
    /// `requested`, `accepted`, `pending_approval`, `approved`, `refunded`, `declined` or
    /// `failed`.
    pub status: String,
    /// Why the refund was asked for.
    pub reason: String,
    pub requested_by: String,
    /// Seconds since the epoch.
    pub requested_at: i64,
    /// Who approved, declined or accepted it; empty while nobody has.
    pub decided_by: String,
    pub decided_at: Option<i64>,
    /// The answer: the acquirer's response code (`00`, or why it refused), or the reason a
    /// request or approval was declined; empty while open.
    pub response: String,
}

/// What [`Store::insert_refund`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundInsert {
    /// Stored, with its part number.
    Inserted(Box<Refund>),
    /// Refused: the parts already reserved (and `elsewhere_minor`) leave only this much.
    OverCaptured { remaining_minor: i64 },
}

/// A change of a refund's status ([`Store::transition_refund`]); fields left `None` keep
/// their value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundTransition {
    pub from: &'static str,
    pub to: &'static str,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub response: Option<String>,
}

pub(crate) const REFUND_COLUMNS: &str = "id, transaction_id, merchant_id, seq, request_id, amount_minor, currency, status, reason, requested_by, requested_at, decided_by, decided_at, response";

/// Longest list one query returns.
pub const MAX_REFUNDS_LISTED: i64 = 500;

fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Refund> {
    Ok(Refund {
        id: row.get(0)?,
        transaction_id: row.get(1)?,
        merchant_id: row.get(2)?,
        seq: row.get(3)?,
        request_id: row.get(4)?,
        amount_minor: row.get(5)?,
        currency: row.get(6)?,
        status: row.get(7)?,
        reason: row.get(8)?,
        requested_by: row.get(9)?,
        requested_at: row.get(10)?,
        decided_by: row.get(11)?,
        decided_at: row.get(12)?,
        response: row.get(13)?,
    })
}

/// The part number and the check of [`Store::insert_refund`], given what is reserved and the
/// highest part number so far: `Err(remaining)` when `refund` does not fit.
pub(crate) fn next_part(
    refund: &Refund,
    reserved_minor: i64,
    last_seq: i64,
    captured_minor: i64,
    elsewhere_minor: i64,
    first_seq: i64,
) -> Result<i64, i64> {
    let remaining = captured_minor
        .saturating_sub(reserved_minor)
        .saturating_sub(elsewhere_minor)
        .max(0);
    if refund.amount_minor > remaining {
        return Err(remaining);
    }
    Ok(last_seq.max(first_seq - 1) + 1)
}

impl Store {
    /// Stores a cardholder's request (`seq` 0 in `refund`: stored as it is), or a refund part:
    /// its part number is the next after the sale's parts and at least `first_seq`, and it
    /// is stored only if the parts reserved (see [`RESERVING`]), `elsewhere_minor` (refunded
    /// at the terminal) and it add up to at most `captured_minor`.
    pub async fn insert_refund(
        &self,
        refund: Refund,
        captured_minor: i64,
        elsewhere_minor: i64,
        first_seq: i64,
    ) -> Result<RefundInsert, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        let mut refund = refund;
                        if refund.seq > 0 {
                            let (reserved, last): (i64, i64) = connection
                                .prepare_cached("SELECT COALESCE(SUM(CASE WHEN status IN ('pending_approval', 'approved', 'refunded') THEN amount_minor ELSE 0 END), 0), COALESCE(MAX(seq), 0) FROM refunds WHERE transaction_id = ?1")?
                                .query_row(rusqlite::params![refund.transaction_id], |row| {
                                    Ok((row.get(0)?, row.get(1)?))
                                })?;
                            match next_part(&refund, reserved, last, captured_minor, elsewhere_minor, first_seq) {
                                Ok(seq) => refund.seq = seq,
                                Err(remaining_minor) => {
                                    return Ok(RefundInsert::OverCaptured { remaining_minor });
                                }
                            }
                        }
                        connection
                            .prepare_cached(&format!(
                                "INSERT INTO refunds ({REFUND_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
                            ))?
                            .execute(rusqlite::params![
                                refund.id,
                                refund.transaction_id,
                                refund.merchant_id,
                                refund.seq,
                                refund.request_id,
                                refund.amount_minor,
                                refund.currency,
                                refund.status,
                                refund.reason,
                                refund.requested_by,
                                refund.requested_at,
                                refund.decided_by,
                                refund.decided_at,
                                refund.response
                            ])?;
                        Ok(RefundInsert::Inserted(Box::new(refund)))
                    })
                    .await
            }
            Store::Postgres(store) => {
                store
                    .insert_refund(refund, captured_minor, elsewhere_minor, first_seq)
                    .await
            }
        }
    }

    /// Changes a refund's status from `change.from` to `change.to`; `false` (nothing changed)
    /// when it is not in `change.from` (someone else decided first).
    pub async fn transition_refund(
        &self,
        id: &str,
        change: RefundTransition,
    ) -> Result<bool, StoreError> {
        let id = id.to_owned();
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        let changed = connection
                            .prepare_cached("UPDATE refunds SET status = ?3, decided_by = COALESCE(?4, decided_by), decided_at = COALESCE(?5, decided_at), response = COALESCE(?6, response) WHERE id = ?1 AND status = ?2")?
                            .execute(rusqlite::params![
                                id,
                                change.from,
                                change.to,
                                change.decided_by,
                                change.decided_at,
                                change.response
                            ])?;
                        Ok(changed == 1)
                    })
                    .await
            }
            Store::Postgres(store) => store.transition_refund(&id, &change).await,
        }
    }

    /// The refund with this id.
    pub async fn refund(&self, id: &str) -> Result<Option<Refund>, StoreError> {
        let found = self.refunds_where(RefundQuery::Id(id.to_owned())).await?;
        Ok(found.into_iter().next())
    }

    /// The refunds and requests of a sale (a journal id), oldest first.
    pub async fn refunds_of_transaction(
        &self,
        transaction_id: i64,
    ) -> Result<Vec<Refund>, StoreError> {
        self.refunds_where(RefundQuery::Transaction(transaction_id))
            .await
    }

    /// The refunds and requests of these merchants in `status` (any status when `None`),
    /// newest first, at most [`MAX_REFUNDS_LISTED`].
    pub async fn refunds_of_merchants(
        &self,
        merchants: Vec<String>,
        status: Option<String>,
    ) -> Result<Vec<Refund>, StoreError> {
        self.refunds_where(RefundQuery::Merchants(merchants, status))
            .await
    }

    async fn refunds_where(&self, query: RefundQuery) -> Result<Vec<Refund>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .read(move |connection| {
                        let mut found = Vec::new();
                        match &query {
                            RefundQuery::Id(id) => {
                                let mut statement = connection.prepare_cached(&format!(
                                    "SELECT {REFUND_COLUMNS} FROM refunds WHERE id = ?1"
                                ))?;
                                for row in statement.query_map(rusqlite::params![id], from_sqlite)? {
                                    found.push(row?);
                                }
                            }
                            RefundQuery::Transaction(transaction_id) => {
                                let mut statement = connection.prepare_cached(&format!(
                                    "SELECT {REFUND_COLUMNS} FROM refunds WHERE transaction_id = ?1 ORDER BY requested_at, seq, id"
                                ))?;
                                for row in statement
                                    .query_map(rusqlite::params![transaction_id], from_sqlite)?
                                {
                                    found.push(row?);
                                }
                            }
                            RefundQuery::Merchants(merchants, status) => {
                                let mut statement = connection.prepare_cached(&format!(
                                    "SELECT {REFUND_COLUMNS} FROM refunds WHERE merchant_id = ?1 AND (?2 IS NULL OR status = ?2) ORDER BY requested_at DESC, id DESC LIMIT ?3"
                                ))?;
                                for merchant in merchants {
                                    for row in statement.query_map(
                                        rusqlite::params![merchant, status, MAX_REFUNDS_LISTED],
                                        from_sqlite,
                                    )? {
                                        found.push(row?);
                                    }
                                }
                                found.sort_by(|a: &Refund, b: &Refund| {
                                    (b.requested_at, &b.id).cmp(&(a.requested_at, &a.id))
                                });
                                found.truncate(MAX_REFUNDS_LISTED as usize);
                            }
                        }
                        Ok(found)
                    })
                    .await
            }
            Store::Postgres(store) => store.refunds_where(&query).await,
        }
    }
}

/// A look-up of [`Store::refunds_where`].
#[derive(Clone, Debug)]
pub(crate) enum RefundQuery {
    Id(String),
    Transaction(i64),
    Merchants(Vec<String>, Option<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(amount_minor: i64) -> Refund {
        Refund {
            id: "rf_1".into(),
            transaction_id: 1,
            merchant_id: "m".into(),
            seq: 1,
            request_id: String::new(),
            amount_minor,
            currency: 156,
            status: "approved".into(),
            reason: String::new(),
            requested_by: "u".into(),
            requested_at: 0,
            decided_by: String::new(),
            decided_at: None,
            response: String::new(),
        }
    }

    #[test]
    fn a_part_fits_within_what_is_left_and_takes_the_next_number() {
        // (amount, reserved, last seq, captured, elsewhere, first seq) → result
        let cases = [
            (100, 0, 0, 100, 0, 1, Ok(1)),
            (101, 0, 0, 100, 0, 1, Err(100)),
            (40, 60, 1, 100, 0, 1, Ok(2)),
            (41, 60, 1, 100, 0, 1, Err(40)),
            (30, 0, 0, 100, 70, 2, Ok(2)),
            (31, 0, 0, 100, 70, 2, Err(30)),
            (1, 100, 3, 100, 0, 1, Err(0)),
        ];
        for (amount, reserved, last, captured, elsewhere, first, expect) in cases {
            assert_eq!(
                next_part(&part(amount), reserved, last, captured, elsewhere, first),
                expect,
                "{amount} of {captured} with {reserved} reserved"
            );
        }
    }
}
