//! Card data types whose `Debug` and `Display` never show more than first 6 / last 4 digits.

use std::fmt;
use zeroize::Zeroize;

/// Shortest and longest PAN (ISO/IEC 7812).
pub const MIN_PAN_DIGITS: usize = 8;
pub const MAX_PAN_DIGITS: usize = 19;

/// A primary account number. The digits are zeroized on drop and shown masked.
#[derive(Clone, PartialEq, Eq)]
pub struct Pan(Vec<u8>);

impl Pan {
    /// Accepts 8–19 ASCII digits.
    pub fn parse(digits: &str) -> Result<Self, String> {
        let bytes = digits.as_bytes();
        if !(MIN_PAN_DIGITS..=MAX_PAN_DIGITS).contains(&bytes.len()) {
            return Err(format!(
                "a PAN has {MIN_PAN_DIGITS}-{MAX_PAN_DIGITS} digits, got {}",
                bytes.len()
            ));
        }
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err("a PAN has digits only".into());
        }
        Ok(Self(bytes.to_vec()))
    }

    /// The clear digits, for the few places that must have them (PIN block, HSM, wire).
    pub fn expose(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// First 6 and last 4 digits when the PAN is long enough that at least 6 stay hidden;
    /// otherwise only the last 4 (PCI DSS 3.4 allows at most first 6 / last 4).
    pub fn masked(&self) -> String {
        mask_digits(&self.0)
    }

    /// Whether the Luhn check digit is right.
    pub fn luhn_ok(&self) -> bool {
        let sum: u32 = self
            .0
            .iter()
            .rev()
            .enumerate()
            .map(|(index, digit)| {
                let value = u32::from(digit - b'0');
                if index % 2 == 1 {
                    if value * 2 > 9 {
                        value * 2 - 9
                    } else {
                        value * 2
                    }
                } else {
                    value
                }
            })
            .sum();
        sum.is_multiple_of(10)
    }
}

pub(crate) fn mask_digits(digits: &[u8]) -> String {
    let len = digits.len();
    let (head, tail) = if len >= 16 {
        (6, 4)
    } else if len >= 10 {
        (0, 4)
    } else {
        (0, 0)
    };
    let mut out = String::with_capacity(len);
    for (index, &digit) in digits.iter().enumerate() {
        out.push(if index < head || index >= len - tail {
            char::from(digit)
        } else {
            '*'
        });
    }
    out
}

impl Drop for Pan {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Display for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", self.masked())
    }
}

/// Track-2 data: `PAN = YYMM service-code discretionary`. Shown as the masked PAN only.
#[derive(Clone, PartialEq, Eq)]
pub struct Track2(Vec<u8>);

impl Track2 {
    /// Accepts digits with exactly one `=` separator after an 8–19 digit PAN and at most 37
    /// characters in all (ISO/IEC 7813).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = text.as_bytes();
        if bytes.len() > 37 {
            return Err(format!(
                "track 2 holds at most 37 characters, got {}",
                bytes.len()
            ));
        }
        let separator = bytes
            .iter()
            .position(|&b| b == b'=')
            .ok_or("track 2 needs an '=' separator")?;
        if bytes[separator + 1..].contains(&b'=') {
            return Err("track 2 has one '=' separator".into());
        }
        if !bytes.iter().all(|&b| b.is_ascii_digit() || b == b'=') {
            return Err("track 2 holds digits and '=' only".into());
        }
        Pan::parse(&text[..separator])?;
        Ok(Self(bytes.to_vec()))
    }

    fn separator(&self) -> usize {
        self.0
            .iter()
            .position(|&b| b == b'=')
            .unwrap_or(self.0.len())
    }

    pub fn pan(&self) -> Result<Pan, String> {
        Pan::parse(std::str::from_utf8(&self.0[..self.separator()]).unwrap_or(""))
    }

    /// YYMM, when present.
    pub fn expiry(&self) -> Option<&str> {
        let start = self.separator() + 1;
        self.0
            .get(start..start + 4)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
    }

    pub fn service_code(&self) -> Option<&str> {
        let start = self.separator() + 5;
        self.0
            .get(start..start + 3)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
    }

    pub fn expose(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The masked PAN, then `=` and one `*` per hidden character.
    pub fn masked(&self) -> String {
        mask_track(&self.0)
    }
}

pub(crate) fn mask_track(bytes: &[u8]) -> String {
    let separator = bytes.iter().position(|&b| b == b'=').unwrap_or(bytes.len());
    let mut out = mask_digits(&bytes[..separator]);
    if separator < bytes.len() {
        out.push('=');
        out.extend(std::iter::repeat_n('*', bytes.len() - separator - 1));
    }
    out
}

impl Drop for Track2 {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Display for Track2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for Track2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Track2({})", self.masked())
    }
}

/// System trace audit number (field 11): 0–999 999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stan(u32);

impl Stan {
    pub const MAX: u32 = 999_999;

    pub fn new(value: u32) -> Option<Self> {
        (value <= Self::MAX).then_some(Self(value))
    }

    pub fn value(self) -> u32 {
        self.0
    }

    /// The next STAN, wrapping from 999 999 to 1 (0 is avoided by most acquirers).
    pub fn next(self) -> Self {
        if self.0 >= Self::MAX {
            Self(1)
        } else {
            Self(self.0 + 1)
        }
    }
}

impl fmt::Display for Stan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pan_shows_at_most_first_six_last_four() {
        let pan = Pan::parse("4761739001010119").unwrap();
        assert_eq!(pan.to_string(), "476173******0119");
        assert_eq!(format!("{pan:?}"), "Pan(476173******0119)");
        assert_eq!(
            Pan::parse("476173900101").unwrap().to_string(),
            "********0101"
        );
        assert_eq!(Pan::parse("47617390").unwrap().to_string(), "********");
        assert!(pan.luhn_ok());
        assert!(!Pan::parse("4761739001010118").unwrap().luhn_ok());
    }

    #[test]
    fn pan_rejects_bad_input() {
        assert!(Pan::parse("4761").is_err());
        assert!(Pan::parse("47617390010101190000").is_err());
        assert!(Pan::parse("47617390O1010119").is_err());
    }

    #[test]
    fn track2_splits_and_masks() {
        let track = Track2::parse("4761739001010119=25122011143804400000").unwrap();
        assert_eq!(track.expiry(), Some("2512"));
        assert_eq!(track.service_code(), Some("201"));
        assert_eq!(track.pan().unwrap().expose(), "4761739001010119");
        assert_eq!(track.to_string(), "476173******0119=********************");
        assert!(!format!("{track:?}").contains("2512"));
        assert!(Track2::parse("4761739001010119").is_err());
        assert!(Track2::parse("4761739001010119=25=12").is_err());
    }

    #[test]
    fn stan_wraps_and_pads() {
        assert_eq!(Stan::new(42).unwrap().to_string(), "000042");
        assert_eq!(Stan::new(999_999).unwrap().next().value(), 1);
        assert!(Stan::new(1_000_000).is_none());
    }
}
