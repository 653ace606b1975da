//! [`Amount`]: signed minor units of one currency, with checked arithmetic, major-unit parsing
//! and formatting, and basis-point fees.

use crate::{Currency, MoneyError};
use std::fmt;

/// Longest accepted major-unit text; `i64::MAX` has 19 digits, so anything longer overflows
/// anyway and we refuse it before doing any work.
const MAX_AMOUNT_TEXT_LEN: usize = 24;

/// An amount of money: `minor` units (fen, cents, yen) of `currency`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Amount {
    minor: i64,
    currency: Currency,
}

/// A rate in hundredths of a percent: 38 bp = 0.38 %. Merchant discount rates and interchange
/// are quoted this way.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct BasisPoints(u32);

impl BasisPoints {
    pub const ONE_HUNDRED_PERCENT: BasisPoints = BasisPoints(10_000);

    pub const fn new(value: u32) -> Self {
        BasisPoints(value)
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

/// How a fraction of a minor unit is resolved. Named so that every fee in the platform says
/// which rule it follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Half a unit or more rounds away from zero (commercial rounding, the usual fee rule).
    HalfUp,
    /// Half a unit rounds to the even neighbour (banker's rounding); other fractions to nearest.
    HalfEven,
    /// Any fraction is dropped (towards zero).
    Down,
    /// Any fraction rounds away from zero.
    Up,
}

impl Rounding {
    /// Divides `numerator` by a positive `denominator`, resolving the remainder by this rule.
    fn divide(self, numerator: i128, denominator: i128) -> i128 {
        debug_assert!(denominator > 0);
        let quotient = numerator / denominator;
        let remainder = numerator % denominator;
        if remainder == 0 {
            return quotient;
        }
        let away = if numerator < 0 {
            quotient - 1
        } else {
            quotient + 1
        };
        let twice = remainder.abs() * 2;
        match self {
            Rounding::Down => quotient,
            Rounding::Up => away,
            Rounding::HalfUp => {
                if twice >= denominator {
                    away
                } else {
                    quotient
                }
            }
            Rounding::HalfEven => {
                if twice > denominator || (twice == denominator && quotient % 2 != 0) {
                    away
                } else {
                    quotient
                }
            }
        }
    }
}

impl Amount {
    pub const fn new(minor: i64, currency: Currency) -> Self {
        Amount { minor, currency }
    }

    pub const fn zero(currency: Currency) -> Self {
        Amount { minor: 0, currency }
    }

    pub const fn minor(self) -> i64 {
        self.minor
    }

    pub const fn currency(self) -> Currency {
        self.currency
    }

    pub const fn is_zero(self) -> bool {
        self.minor == 0
    }

    pub const fn is_negative(self) -> bool {
        self.minor < 0
    }

    fn same_currency(self, other: Amount) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency.alpha(),
                right: other.currency.alpha(),
            })
        }
    }

    pub fn checked_add(self, other: Amount) -> Result<Amount, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Amount::new(minor, self.currency))
    }

    pub fn checked_sub(self, other: Amount) -> Result<Amount, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Amount::new(minor, self.currency))
    }

    pub fn checked_neg(self) -> Result<Amount, MoneyError> {
        let minor = self.minor.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Amount::new(minor, self.currency))
    }

    pub fn checked_mul(self, factor: i64) -> Result<Amount, MoneyError> {
        let minor = self.minor.checked_mul(factor).ok_or(MoneyError::Overflow)?;
        Ok(Amount::new(minor, self.currency))
    }

    /// Sums amounts of one currency; an empty iterator is zero of `currency`.
    pub fn checked_sum(
        currency: Currency,
        amounts: impl IntoIterator<Item = Amount>,
    ) -> Result<Amount, MoneyError> {
        amounts
            .into_iter()
            .try_fold(Amount::zero(currency), Amount::checked_add)
    }

    /// `self × rate / 10 000`, rounded by `rounding`. The fee has the sign of the amount.
    pub fn fee(self, rate: BasisPoints, rounding: Rounding) -> Result<Amount, MoneyError> {
        let numerator = i128::from(self.minor) * i128::from(rate.get());
        let fee = rounding.divide(
            numerator,
            i128::from(BasisPoints::ONE_HUNDRED_PERCENT.get()),
        );
        let minor = i64::try_from(fee).map_err(|_| MoneyError::Overflow)?;
        Ok(Amount::new(minor, self.currency))
    }

    /// Parses major units: "12.34" → 1234 fen for CNY, "500" → 500 for JPY. Accepts an optional
    /// leading '-', refuses more decimals than the currency has, exponents, signs in the
    /// middle, separators and anything else a float parser would forgive.
    pub fn parse(text: &str, currency: Currency) -> Result<Amount, MoneyError> {
        let fail = |reason| MoneyError::Parse {
            input: text.chars().take(MAX_AMOUNT_TEXT_LEN).collect(),
            reason,
        };
        if text.len() > MAX_AMOUNT_TEXT_LEN {
            return Err(fail("too long"));
        }
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (unsigned, None),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail("expected digits before the decimal point"));
        }
        let exponent = usize::from(currency.exponent());
        let fraction = match fraction {
            None => "",
            Some("") => return Err(fail("expected digits after the decimal point")),
            Some(digits) if !digits.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(fail("expected digits after the decimal point"));
            }
            Some(_) if exponent == 0 => return Err(fail("this currency has no minor unit")),
            Some(digits) if digits.len() > exponent => {
                return Err(fail("more decimal places than the currency has"));
            }
            Some(digits) => digits,
        };
        let mut minor: i64 = 0;
        let padding = std::iter::repeat_n(b'0', exponent - fraction.len());
        for digit in whole.bytes().chain(fraction.bytes()).chain(padding) {
            minor = minor
                .checked_mul(10)
                .and_then(|value| value.checked_add(i64::from(digit - b'0')))
                .ok_or_else(|| fail("too large"))?;
        }
        if negative {
            minor = -minor;
        }
        Ok(Amount::new(minor, currency))
    }

    /// Major units without the currency code: 1234 fen → "12.34", -5 → "-0.05", 500 yen → "500".
    pub fn format_major(self) -> String {
        let exponent = u32::from(self.currency.exponent());
        let magnitude = self.minor.unsigned_abs();
        let sign = if self.minor < 0 { "-" } else { "" };
        if exponent == 0 {
            return format!("{sign}{magnitude}");
        }
        let scale = 10_u64.pow(exponent);
        let width = exponent as usize;
        format!("{sign}{}.{:0width$}", magnitude / scale, magnitude % scale)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.format_major(), self.currency)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CNY: Currency = Currency::CNY;

    #[test]
    fn parse_and_format_known_values() {
        let cases = [
            ("12.34", CNY, 1234, "12.34"),
            ("12.3", CNY, 1230, "12.30"),
            ("12", CNY, 1200, "12.00"),
            ("0.05", CNY, 5, "0.05"),
            ("-0.05", CNY, -5, "-0.05"),
            ("500", Currency::JPY, 500, "500"),
            ("1.234", Currency::KWD, 1234, "1.234"),
            (
                "92233720368547758.07",
                CNY,
                i64::MAX,
                "92233720368547758.07",
            ),
        ];
        for (text, currency, minor, formatted) in cases {
            let amount = Amount::parse(text, currency).unwrap();
            assert_eq!(amount.minor(), minor, "{text}");
            assert_eq!(amount.format_major(), formatted, "{text}");
        }
        assert_eq!(
            Amount::new(i64::MIN, CNY).format_major(),
            "-92233720368547758.08"
        );
    }

    #[test]
    fn parse_rejects_what_a_float_parser_would_forgive() {
        for bad in [
            "",
            "-",
            ".5",
            "1.",
            "1.234",
            "1e3",
            "+1",
            "1,000.00",
            " 1",
            "1 ",
            "0x10",
            "1.2.3",
            "NaN",
            "--1",
            "92233720368547758.08",
        ] {
            let error = Amount::parse(bad, CNY).unwrap_err();
            assert!(
                matches!(error, MoneyError::Parse { .. }),
                "{bad:?} gave {error:?}"
            );
        }
        assert!(Amount::parse("1.5", Currency::JPY).is_err());
        assert!(Amount::parse(&"9".repeat(40), CNY).is_err());
    }

    #[test]
    fn arithmetic_is_checked() {
        let max = Amount::new(i64::MAX, CNY);
        assert_eq!(
            max.checked_add(Amount::new(1, CNY)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Amount::new(i64::MIN, CNY).checked_sub(Amount::new(1, CNY)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Amount::new(i64::MIN, CNY).checked_neg(),
            Err(MoneyError::Overflow)
        );
        assert_eq!(max.checked_mul(2), Err(MoneyError::Overflow));
        assert_eq!(
            Amount::new(1, CNY).checked_add(Amount::new(1, Currency::USD)),
            Err(MoneyError::CurrencyMismatch {
                left: "CNY",
                right: "USD"
            })
        );
        assert_eq!(
            Amount::new(250, CNY)
                .checked_sub(Amount::new(300, CNY))
                .unwrap()
                .minor(),
            -50
        );
        let sum = Amount::checked_sum(CNY, [Amount::new(1, CNY), Amount::new(2, CNY)]).unwrap();
        assert_eq!(sum.minor(), 3);
    }

    #[test]
    fn fee_rounding_rules() {
        // amount, bps, half-up, half-even, down, up
        let cases = [
            (10_000, 38, 38, 38, 38, 38),
            (1_250, 40, 5, 5, 5, 5),
            (1_250, 20, 3, 2, 2, 3), // exactly 2.5 fen
            (1_750, 20, 4, 4, 3, 4), // exactly 3.5 fen
            (1_234, 38, 5, 5, 4, 5), // 4.6892
            (1_001, 1, 0, 0, 0, 1),  // 0.1001
            (-1_250, 20, -3, -2, -2, -3),
            (0, 60, 0, 0, 0, 0),
        ];
        for (minor, bps, half_up, half_even, down, up) in cases {
            let amount = Amount::new(minor, CNY);
            let fee = |rounding| amount.fee(BasisPoints::new(bps), rounding).unwrap().minor();
            assert_eq!(fee(Rounding::HalfUp), half_up, "{minor} × {bps} half-up");
            assert_eq!(
                fee(Rounding::HalfEven),
                half_even,
                "{minor} × {bps} half-even"
            );
            assert_eq!(fee(Rounding::Down), down, "{minor} × {bps} down");
            assert_eq!(fee(Rounding::Up), up, "{minor} × {bps} up");
        }
    }

    #[test]
    fn fee_overflow_is_an_error() {
        let huge = Amount::new(i64::MAX, CNY);
        assert_eq!(
            huge.fee(BasisPoints::new(20_000), Rounding::Down),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            huge.fee(BasisPoints::ONE_HUNDRED_PERCENT, Rounding::Down)
                .unwrap(),
            huge
        );
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(minor in any::<i64>(), index in 0..Currency::ALL.len()) {
            let currency = Currency::ALL[index];
            let amount = Amount::new(minor, currency);
            prop_assert_eq!(Amount::parse(&amount.format_major(), currency).unwrap(), amount);
        }

        #[test]
        fn fee_is_between_down_and_up(minor in -1_000_000_000_000_i64..1_000_000_000_000, bps in 0_u32..20_000) {
            let amount = Amount::new(minor, CNY);
            let rate = BasisPoints::new(bps);
            let down = amount.fee(rate, Rounding::Down).unwrap().minor();
            let up = amount.fee(rate, Rounding::Up).unwrap().minor();
            for rounding in [Rounding::HalfUp, Rounding::HalfEven] {
                let fee = amount.fee(rate, rounding).unwrap().minor();
                prop_assert!(fee.abs() >= down.abs() && fee.abs() <= up.abs());
            }
            prop_assert!((up - down).abs() <= 1);
        }
    }
}
