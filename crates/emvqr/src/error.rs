/// Why a QR payload or payment code was rejected; positions are in characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    #[error("payload of {len} characters is longer than {max}")]
    TooLong { len: usize, max: usize },
    #[error("character {position}: payload ends inside the ID or length of an object")]
    Truncated { position: usize },
    #[error("character {position}: ID is not two digits")]
    BadId { position: usize },
    #[error("ID {id:02}: length is not two digits 01-99")]
    BadLength { id: u8 },
    #[error("ID {id:02}: length {len} runs past the end ({available} characters left)")]
    ValuePastEnd {
        id: u8,
        len: usize,
        available: usize,
    },
    #[error("ID {id:02}: appears twice")]
    Duplicate { id: u8 },
    #[error("ID {id:02} ({name}) is mandatory and missing")]
    Missing { id: u8, name: &'static str },
    #[error("ID {id:02}: {reason}")]
    Invalid { id: u8, reason: String },
    #[error("the first object must be ID 00 (payload format indicator) with value 01")]
    FormatIndicator,
    #[error("ID 63 (CRC) must be the last object, with length 04")]
    CrcPlacement,
    #[error("CRC mismatch: payload says {found}, computed {computed}")]
    BadCrc { found: String, computed: String },
    #[error("templates nested deeper than allowed")]
    TooDeep,
}

/// Why a consumer-presented payment code was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("a payment code has {expected} digits, got {len}")]
    Length { len: usize, expected: usize },
    #[error("a payment code has digits only")]
    NotDigits,
    #[error("prefix {found} is not an easypos payment code ({expected})")]
    Prefix {
        found: String,
        expected: &'static str,
    },
    #[error("check digit is wrong (mistyped or misread code)")]
    CheckDigit,
    #[error("code expired {age_steps} time steps ago (valid for {max_age_steps})")]
    Expired { age_steps: u64, max_age_steps: u64 },
    #[error("code is from {ahead_steps} time steps in the future")]
    FromTheFuture { ahead_steps: u64 },
    #[error("{field} {value} is out of range (max {max})")]
    OutOfRange {
        field: &'static str,
        value: u64,
        max: u64,
    },
}
