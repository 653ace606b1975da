//! Errors: every malformed input names the element (MTI, bitmap, field number) and the reason.

/// Why one field could not be packed or unpacked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("message ends inside the field: {needed} bytes needed, {available} left")]
    Truncated { needed: usize, available: usize },
    #[error("length prefix is not a valid {encoding} number")]
    BadLengthPrefix { encoding: &'static str },
    #[error("length {len} is beyond the maximum {max}")]
    TooLong { len: usize, max: usize },
    #[error("length {len} differs from the fixed length {expected}")]
    WrongLength { len: usize, expected: usize },
    #[error("character {position} (0x{byte:02X}) is not allowed in a field of type {kind}")]
    BadCharacter {
        position: usize,
        byte: u8,
        kind: &'static str,
    },
    #[error("nibble {position} (0x{nibble:X}) is not a BCD digit")]
    BadBcd { position: usize, nibble: u8 },
    #[error("not valid hexadecimal text")]
    BadHex,
    #[error("field is not defined in profile {profile}")]
    NotInProfile { profile: String },
    #[error("field is missing")]
    Missing,
    #[error("sub-field layout: {0}")]
    Subfield(String),
    #[error("ICC data: {0}")]
    Tlv(#[from] emv::TlvError),
}

/// Why a message could not be packed or unpacked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("field {field} ({name}): {reason}")]
    Field {
        field: u8,
        name: String,
        reason: FieldError,
    },
    #[error("MTI: {0}")]
    Mti(String),
    #[error("bitmap: {0}")]
    Bitmap(String),
    #[error("TPDU: {0}")]
    Tpdu(String),
    #[error("header: message ends inside the {expected}-byte header ({available} bytes left)")]
    Header { expected: usize, available: usize },
    #[error("{count} trailing bytes after the last field")]
    TrailingBytes { count: usize },
    #[error("frame: {0}")]
    Frame(String),
    #[error("message of {len} bytes is larger than the frame limit {max}")]
    TooLarge { len: usize, max: usize },
}

/// Why a spec file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("spec is not valid {format}: {message}")]
    Syntax {
        format: &'static str,
        message: String,
    },
    #[error("field {field}: {reason}")]
    Field { field: u32, reason: String },
    #[error("{0}")]
    Profile(String),
}
