//! The easypos ledger: double-entry books on TigerBeetle's model.
//!
//! * An [`Account`] belongs to one institution's books and one currency and keeps four
//!   running totals: `debits_pending`, `debits_posted`, `credits_pending`, `credits_posted`,
//!   with an optional [`BalanceConstraint`] ("debits must not exceed credits" for a deposit
//!   account, the reverse for a credit line).
//! * A [`Transfer`] moves an amount from a debit account to a credit account of the same books
//!   and currency. It is immutable; its [`TransferId`] is its idempotency key: the same id with
//!   the same content returns the original transfer, the same id with other content is an
//!   error.
//! * A *hold* is a pending transfer; it is later posted (fully or partially), voided, or it
//!   expires after its timeout. Transfers marked `linked` succeed or fail with the next one.
//!
//! This crate is pure: [`execute`] runs a batch of requests against any [`LedgerState`] and
//! returns per-request results plus the [`Changes`] to persist. The `store` crate feeds it
//! state from SQLite or PostgreSQL and commits the changes; [`MemoryLedger`] is the reference
//! in-memory state used by tests and benchmarks.
//!
//! ```
//! use ledger::*;
//! use money::{Amount, Currency};
//!
//! let bank = InstitutionId(1);
//! let mut books = MemoryLedger::default();
//! let cash = AccountSpec::new(AccountId(1), bank, Currency::CNY, 100);
//! let deposit = AccountSpec::new(AccountId(2), bank, Currency::CNY, 200)
//!     .constraint(BalanceConstraint::DebitsMustNotExceedCredits);
//! books.create_accounts(&[cash, deposit], 1).unwrap();
//!
//! let fund = TransferRequest::posted(TransferId(10), AccountId(1), AccountId(2), Amount::new(5_000, Currency::CNY));
//! let hold = TransferRequest::pending(TransferId(11), AccountId(2), AccountId(1), Amount::new(1_200, Currency::CNY), 60);
//! let results = books.execute(&[fund, hold], 1_000);
//! assert!(results.iter().all(Result::is_ok));
//! let account = books.account(AccountId(2)).unwrap();
//! assert_eq!(account.available(), 5_000 - 1_200);
//! ```
#![deny(clippy::float_arithmetic)]

mod engine;
mod memory;
pub mod testing;
mod types;

pub use engine::{
    Changes, LedgerState, MAX_SESSION_SIZE, Session, UnbalancedBooks, check_books, execute, expire,
    open_accounts,
};
pub use memory::MemoryLedger;
pub use types::*;
