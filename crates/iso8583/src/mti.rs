//! The message type indicator: version, class, function, origin (STANDARDS.md §1.1).

use std::fmt;

/// Four ASCII digits, e.g. `0200`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mti([u8; 4]);

impl Mti {
    /// Parses four decimal digits.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::from_digits(text.as_bytes())
    }

    /// From four ASCII digit bytes.
    pub fn from_digits(digits: &[u8]) -> Result<Self, String> {
        let array: [u8; 4] = digits
            .try_into()
            .map_err(|_| format!("expected 4 digits, got {}", digits.len()))?;
        if let Some(position) = array.iter().position(|byte| !byte.is_ascii_digit()) {
            return Err(format!("character {position} is not a digit"));
        }
        Ok(Self(array))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("????")
    }

    pub fn digits(&self) -> [u8; 4] {
        self.0
    }

    fn digit(&self, index: usize) -> u8 {
        self.0[index] - b'0'
    }

    pub fn version(&self) -> &'static str {
        match self.digit(0) {
            0 => "ISO 8583:1987",
            1 => "ISO 8583:1993",
            2 => "ISO 8583:2003",
            8 => "national use",
            9 => "private use",
            _ => "reserved",
        }
    }

    pub fn class(&self) -> &'static str {
        match self.digit(1) {
            1 => "authorization",
            2 => "financial",
            3 => "file action",
            4 => "reversal/chargeback",
            5 => "reconciliation",
            6 => "administrative",
            7 => "fee collection",
            8 => "network management",
            _ => "reserved",
        }
    }

    pub fn function(&self) -> &'static str {
        match self.digit(2) {
            0 => "request",
            1 => "request response",
            2 => "advice",
            3 => "advice response",
            4 => "notification",
            _ => "reserved",
        }
    }

    pub fn origin(&self) -> &'static str {
        match self.digit(3) {
            0 => "acquirer",
            1 => "acquirer repeat",
            2 => "issuer",
            3 => "issuer repeat",
            4 => "other",
            5 => "other repeat",
            _ => "reserved",
        }
    }

    /// Requests and advices (function digit even) are answered; responses are not.
    pub fn is_request(&self) -> bool {
        matches!(self.digit(2), 0 | 2)
    }

    /// The response MTI: function digit + 1 (0200 → 0210, 0420 → 0430); `None` for a response.
    pub fn response(&self) -> Option<Self> {
        if !self.is_request() {
            return None;
        }
        let mut digits = self.0;
        digits[2] += 1;
        Some(Self(digits))
    }

    /// One line: `0200 ISO 8583:1987 financial request from acquirer`.
    pub fn describe(&self) -> String {
        format!(
            "{} {} {} {} from {}",
            self.as_str(),
            self.version(),
            self.class(),
            self.function(),
            self.origin()
        )
    }
}

impl fmt::Display for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mti({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_four_positions() {
        let mti = Mti::parse("0200").unwrap();
        assert_eq!(mti.version(), "ISO 8583:1987");
        assert_eq!(mti.class(), "financial");
        assert_eq!(mti.function(), "request");
        assert_eq!(mti.origin(), "acquirer");
        assert_eq!(Mti::parse("0421").unwrap().origin(), "acquirer repeat");
        assert_eq!(Mti::parse("0800").unwrap().class(), "network management");
    }

    #[test]
    fn responses_add_ten() {
        assert_eq!(
            Mti::parse("0200").unwrap().response().unwrap().as_str(),
            "0210"
        );
        assert_eq!(
            Mti::parse("0420").unwrap().response().unwrap().as_str(),
            "0430"
        );
        assert_eq!(Mti::parse("0210").unwrap().response(), None);
    }

    #[test]
    fn rejects_non_digits_and_wrong_lengths() {
        assert!(Mti::parse("02A0").is_err());
        assert!(Mti::parse("020").is_err());
    }
}
