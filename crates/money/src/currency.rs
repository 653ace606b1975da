//! ISO 4217 currencies: numeric code (what ISO 8583 fields 49–51 and EMV tag 5F2A carry),
//! alphabetic code and the minor-unit exponent.

use crate::MoneyError;
use std::fmt;

/// An ISO 4217 currency. Only currencies in [`Currency::ALL`] exist, so a `Currency` value is
/// always one the platform knows how to format and settle.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    numeric: u16,
    alpha: &'static str,
    exponent: u8,
}

impl Currency {
    pub const CNY: Currency = Currency {
        numeric: 156,
        alpha: "CNY",
        exponent: 2,
    };
    pub const USD: Currency = Currency {
        numeric: 840,
        alpha: "USD",
        exponent: 2,
    };
    pub const EUR: Currency = Currency {
        numeric: 978,
        alpha: "EUR",
        exponent: 2,
    };
    pub const HKD: Currency = Currency {
        numeric: 344,
        alpha: "HKD",
        exponent: 2,
    };
    pub const JPY: Currency = Currency {
        numeric: 392,
        alpha: "JPY",
        exponent: 0,
    };
    pub const GBP: Currency = Currency {
        numeric: 826,
        alpha: "GBP",
        exponent: 2,
    };
    pub const SGD: Currency = Currency {
        numeric: 702,
        alpha: "SGD",
        exponent: 2,
    };
    pub const MOP: Currency = Currency {
        numeric: 446,
        alpha: "MOP",
        exponent: 2,
    };
    pub const KRW: Currency = Currency {
        numeric: 410,
        alpha: "KRW",
        exponent: 0,
    };
    pub const KWD: Currency = Currency {
        numeric: 414,
        alpha: "KWD",
        exponent: 3,
    };

    /// Every currency the platform knows, from the ISO 4217 list (exponents as published there).
    pub const ALL: [Currency; 10] = [
        Self::CNY,
        Self::USD,
        Self::EUR,
        Self::HKD,
        Self::JPY,
        Self::GBP,
        Self::SGD,
        Self::MOP,
        Self::KRW,
        Self::KWD,
    ];

    pub fn from_numeric(numeric: u16) -> Result<Currency, MoneyError> {
        Self::ALL
            .into_iter()
            .find(|currency| currency.numeric == numeric)
            .ok_or_else(|| MoneyError::UnknownCurrency(format!("{numeric:03}")))
    }

    /// Accepts the alphabetic code in any case ("cny", "CNY").
    pub fn from_alpha(alpha: &str) -> Result<Currency, MoneyError> {
        Self::ALL
            .into_iter()
            .find(|currency| currency.alpha.eq_ignore_ascii_case(alpha))
            .ok_or_else(|| MoneyError::UnknownCurrency(alpha.to_owned()))
    }

    /// Accepts either form: "156" or "CNY".
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        match code.parse::<u16>() {
            Ok(numeric) if code.len() == 3 => Self::from_numeric(numeric),
            _ => Self::from_alpha(code),
        }
    }

    pub const fn numeric(self) -> u16 {
        self.numeric
    }

    pub const fn alpha(self) -> &'static str {
        self.alpha
    }

    /// Number of decimal places of the minor unit (2 for CNY, 0 for JPY).
    pub const fn exponent(self) -> u8 {
        self.exponent
    }

    /// Minor units per major unit: 10^exponent.
    pub const fn minor_per_major(self) -> i64 {
        10_i64.pow(self.exponent as u32)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpha)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpha)
    }
}

impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.alpha)
    }
}

impl<'de> serde::Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_4217_codes_and_exponents() {
        // Values from the ISO 4217 list maintained by SIX (the ISO 4217 maintenance agency).
        let cases = [
            ("CNY", 156, 2),
            ("USD", 840, 2),
            ("EUR", 978, 2),
            ("HKD", 344, 2),
            ("JPY", 392, 0),
            ("KWD", 414, 3),
        ];
        for (alpha, numeric, exponent) in cases {
            let by_alpha = Currency::from_alpha(alpha).unwrap();
            assert_eq!(by_alpha.numeric(), numeric);
            assert_eq!(by_alpha.exponent(), exponent);
            assert_eq!(Currency::from_numeric(numeric).unwrap(), by_alpha);
            assert_eq!(Currency::parse(&format!("{numeric:03}")).unwrap(), by_alpha);
        }
    }

    #[test]
    fn unknown_currency_is_an_error() {
        assert!(matches!(
            Currency::from_alpha("XYZ"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert!(matches!(
            Currency::from_numeric(999),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert!(Currency::parse("").is_err());
    }

    #[test]
    fn alpha_codes_are_unique_and_numeric_codes_are_unique() {
        for (index, a) in Currency::ALL.iter().enumerate() {
            for b in &Currency::ALL[index + 1..] {
                assert_ne!(a.alpha(), b.alpha());
                assert_ne!(a.numeric(), b.numeric());
            }
        }
    }
}
