//! Money for easypos: an [`Amount`] is an `i64` count of minor units (fen, cents) of one
//! [`Currency`] (ISO 4217). Arithmetic is checked and returns [`MoneyError`] instead of
//! wrapping or panicking; fees are integer basis points with a named [`Rounding`] rule; parsing
//! and formatting of major units ("12.34") never touches floating point.
//!
//! ```
//! use money::{Amount, BasisPoints, Currency, Rounding};
//!
//! let cny = Currency::from_alpha("CNY").unwrap();
//! let price = Amount::parse("12.34", cny).unwrap();
//! assert_eq!(price.minor(), 1234);
//! let total = price.checked_add(Amount::new(66, cny)).unwrap();
//! assert_eq!(total.to_string(), "13.00 CNY");
//! // A 0.38 % merchant discount rate, rounded half-up to the fen.
//! let fee = total.fee(BasisPoints::new(38), Rounding::HalfUp).unwrap();
//! assert_eq!(fee.minor(), 5);
//! ```
#![deny(clippy::float_arithmetic)]

mod amount;
mod currency;

pub use amount::{Amount, BasisPoints, Rounding};
pub use currency::Currency;

/// Everything that can go wrong with money; each variant names the operands' situation so the
/// caller can turn it into a response code or an HTTP problem without guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount overflow: the result does not fit in 64-bit minor units")]
    Overflow,
    #[error("currency mismatch: {left} and {right} cannot be combined")]
    CurrencyMismatch {
        left: &'static str,
        right: &'static str,
    },
    #[error("unknown currency {0:?}: use an ISO 4217 code such as CNY, USD, EUR, HKD or JPY")]
    UnknownCurrency(String),
    #[error("invalid amount {input:?}: {reason}")]
    Parse { input: String, reason: &'static str },
    #[error("negative amount where only zero or more is allowed")]
    Negative,
}
