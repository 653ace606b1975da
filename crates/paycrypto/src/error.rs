//! One error type for the crate. Messages name what was wrong, never the value: a key, PIN, PIN
//! block or card number must not reach a log through an error.

/// Everything that can go wrong in `paycrypto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A key (or other fixed-size input) has a length the algorithm does not accept.
    #[error("{what}: wrong length {actual} bytes (expected {expected})")]
    Length {
        what: &'static str,
        expected: &'static str,
        actual: usize,
    },
    /// A field that must be decimal digits contains something else.
    #[error("{0}: must be decimal digits")]
    NotDecimal(&'static str),
    /// A field has a number of digits outside its allowed range.
    #[error("{what}: {actual} digits, expected {expected}")]
    Digits {
        what: &'static str,
        expected: &'static str,
        actual: usize,
    },
    /// A decrypted PIN block is not well formed; the reason says which rule failed.
    #[error("PIN block rejected: {0}")]
    PinBlock(&'static str),
    /// The DUKPT transaction counter cannot advance any further.
    #[error("DUKPT transaction counter exhausted: the device needs a new initial key")]
    CounterExhausted,
    /// A KSN carries a counter that no conforming device produces.
    #[error("KSN transaction counter invalid: {0}")]
    InvalidCounter(&'static str),
    /// A derivation would produce a key stronger than the key it is derived from.
    #[error("{0}")]
    Derivation(&'static str),
    /// A TR-31 key block is malformed.
    #[error("TR-31 key block: {0}")]
    KeyBlock(&'static str),
    /// A TR-31 key block failed its MAC check (wrong key-block protection key, or tampering).
    #[error("TR-31 key block: MAC verification failed")]
    KeyBlockMac,
    /// A key's usage or mode of use does not allow the requested operation.
    #[error("key usage {usage} / mode {mode} does not allow {operation}")]
    UsageNotAllowed {
        usage: String,
        mode: char,
        operation: &'static str,
    },
    /// A check value does not match the key it was delivered with.
    #[error("{0}: key check value mismatch")]
    CheckValue(&'static str),
    /// Some other input is out of range; the text says which.
    #[error("{0}")]
    Invalid(&'static str),
}

/// Result alias for the crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn expect_len(
    what: &'static str,
    expected: &'static str,
    actual: usize,
    ok: bool,
) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::Length {
            what,
            expected,
            actual,
        })
    }
}
