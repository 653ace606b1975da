//! Wrapper types for secrets: their `Debug` masks the value and they zeroize on drop.

use crate::error::{Error, Result, expect_len};
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// Shortest PIN ISO 9564-1 allows.
pub const PIN_MIN_DIGITS: usize = 4;
/// Longest PIN ISO 9564-1 allows (control field N = C).
pub const PIN_MAX_DIGITS: usize = 12;
/// Shortest PAN we accept. ISO/IEC 7812 allows 8 digits since 2017; PIN block formats zero-pad.
pub const PAN_MIN_DIGITS: usize = 8;
/// Longest PAN ISO/IEC 7812 allows.
pub const PAN_MAX_DIGITS: usize = 19;
/// Leading PAN digits a masked PAN may show (PCI DSS: first six).
const PAN_MASK_HEAD: usize = 6;
/// Trailing PAN digits a masked PAN shows (PCI DSS: last four).
const PAN_MASK_TAIL: usize = 4;
/// Digits that always stay hidden, so short PANs are never shown whole.
const PAN_MASK_MIN_HIDDEN: usize = 4;

/// Key material: zeroized on drop, `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub fn new(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} bytes, masked)", self.0.len())
    }
}

macro_rules! key_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $expected:literal, $($len:literal)|+) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(SecretBytes);

        impl $name {
            /// Wraps key bytes, checking the length.
            pub fn new(bytes: &[u8]) -> Result<Self> {
                expect_len($what, $expected, bytes.len(), matches!(bytes.len(), $($len)|+))?;
                Ok(Self(SecretBytes::new(bytes)))
            }
            /// The clear key bytes. Only cryptographic code should call this.
            pub fn expose(&self) -> &[u8] {
                self.0.expose()
            }
            pub fn len(&self) -> usize {
                self.0.len()
            }
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({} bytes, masked)"), self.0.len())
            }
        }
    };
}

key_type!(
    /// A DES or Triple-DES key: 8 (single DES, only where a standard uses it), 16 or 24 bytes.
    TdesKey, "TDES key", "8, 16 or 24", 8 | 16 | 24
);
key_type!(
    /// An AES key: 16, 24 or 32 bytes.
    AesKey, "AES key", "16, 24 or 32", 16 | 24 | 32
);

/// A clear PIN: 4 to 12 decimal digits.
#[derive(Clone, PartialEq, Eq)]
pub struct Pin(Zeroizing<Vec<u8>>);

impl Pin {
    pub fn new(digits: &str) -> Result<Self> {
        let len = digits.len();
        if !(PIN_MIN_DIGITS..=PIN_MAX_DIGITS).contains(&len) {
            return Err(Error::Digits {
                what: "PIN",
                expected: "4 to 12",
                actual: len,
            });
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::NotDecimal("PIN"));
        }
        Ok(Self(Zeroizing::new(
            digits.bytes().map(|b| b - b'0').collect(),
        )))
    }
    pub(crate) fn from_digit_values(values: Vec<u8>) -> Self {
        Self(Zeroizing::new(values))
    }
    /// The PIN digits as values 0..=9.
    pub fn digit_values(&self) -> &[u8] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The clear PIN as text. Only the PIN pad and tests should call this.
    pub fn expose(&self) -> Zeroizing<String> {
        Zeroizing::new(self.0.iter().map(|d| char::from(b'0' + d)).collect())
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(masked)")
    }
}

/// A primary account number: 8 to 19 decimal digits. `Debug` shows first 6 and last 4 at most.
#[derive(Clone, PartialEq, Eq)]
pub struct Pan(Zeroizing<String>);

impl Pan {
    pub fn new(digits: &str) -> Result<Self> {
        let len = digits.len();
        if !(PAN_MIN_DIGITS..=PAN_MAX_DIGITS).contains(&len) {
            return Err(Error::Digits {
                what: "PAN",
                expected: "8 to 19",
                actual: len,
            });
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::NotDecimal("PAN"));
        }
        Ok(Self(Zeroizing::new(digits.to_owned())))
    }
    pub fn digits(&self) -> &str {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// First 6 and last 4 digits with the middle masked, the most a receipt or log may show;
    /// shorter PANs show fewer leading digits so that at least 4 stay masked.
    pub fn masked(&self) -> String {
        let digits = self.0.as_str();
        let keep_head = PAN_MASK_HEAD.min(
            digits
                .len()
                .saturating_sub(PAN_MASK_TAIL + PAN_MASK_MIN_HIDDEN),
        );
        let tail = &digits[digits.len() - PAN_MASK_TAIL..];
        format!(
            "{}{}{}",
            &digits[..keep_head],
            "*".repeat(digits.len() - keep_head - PAN_MASK_TAIL),
            tail
        )
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", self.masked())
    }
}

/// An encrypted (or, inside the PIN pad, clear) PIN block: 8 bytes for TDES formats, 16 for format 4.
#[derive(Clone, PartialEq, Eq)]
pub struct PinBlock(Zeroizing<Vec<u8>>);

impl PinBlock {
    pub fn new(bytes: &[u8]) -> Result<Self> {
        expect_len(
            "PIN block",
            "8 or 16",
            bytes.len(),
            matches!(bytes.len(), 8 | 16),
        )?;
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    pub fn to_hex(&self) -> String {
        crate::util::hex_upper(&self.0)
    }
}

impl fmt::Debug for PinBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PinBlock({} bytes, masked)", self.0.len())
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        // Zeroizing already clears the buffer; this keeps the intent explicit for readers.
        self.0.zeroize();
    }
}
