//! Data-driven ISO 8583: profiles are tables loaded from TOML/JSON spec files, not code per
//! field.
//!
//! ```
//! use iso8583::{Message, Mti, Profile, Stan, Tpdu};
//!
//! let profile = Profile::builtin("cup-bcd").unwrap();
//! let mut sale = Message::new(Mti::parse("0200").unwrap());
//! sale.tpdu = Some(Tpdu { id: 0x60, destination: 0x0003, source: 0x0000 });
//! sale.header = b"\x60\x31\x00\x31\x10\x00".as_slice().into();
//! sale.set_text(2, "6222021234567890123");
//! sale.set_text(3, "000000");
//! sale.set_amount(1_000);
//! sale.set_stan(Stan::new(42).unwrap());
//! sale.set_text(41, "TERM0001");
//! let wire = profile.pack(&sale).unwrap();
//!
//! // Unpacking borrows from `wire`; getters parse into types, and card numbers print masked.
//! let back = profile.unpack(&wire).unwrap();
//! assert_eq!(back.amount().unwrap(), 1_000);
//! assert_eq!(back.stan().unwrap().value(), 42);
//! assert_eq!(back.pan().unwrap().to_string(), "622202*********0123");
//! assert!(profile.dump(&back).contains("622202*********0123"));
//! ```
//!
//! Built-in profiles (`iso87-ascii`, `cup-bcd`) are spec files under `profiles/`, embedded
//! with `include_str!` and loaded by the same loader as an integrator's file. Every malformed
//! input is an [`Error`] naming the element and the reason; limits are named constants
//! ([`frame::MAX_FRAME_LEN`], [`spec::MAX_HEADER_LEN`]).

pub mod bcd;
pub mod bitmap;
pub mod card;
mod codec;
pub mod dump;
pub mod error;
pub mod frame;
pub mod message;
pub mod mti;
pub mod response;
pub mod spec;

pub use bitmap::Bitmap;
pub use card::{Pan, Stan, Track2};
pub use error::{Error, FieldError, SpecError};
pub use frame::{LengthPrefix, Tpdu};
pub use message::{Message, Value};
pub use mti::Mti;
pub use response::ResponseCode;
pub use spec::Profile;

use std::sync::OnceLock;

/// The spec file of `iso87-ascii`: ISO 8583:1987, ASCII numerics, binary bitmap.
pub const ISO87_ASCII_SPEC: &str = include_str!("profiles/iso87-ascii.toml");
/// The spec file of `cup-bcd`: UnionPay-style POS, packed BCD numerics, TPDU and header.
pub const CUP_BCD_SPEC: &str = include_str!("profiles/cup-bcd.toml");

/// Names of the built-in profiles.
pub const BUILTIN_PROFILES: &[&str] = &["iso87-ascii", "cup-bcd"];

/// A built-in profile, loaded once from its embedded spec file.
pub fn builtin(name: &str) -> Result<&'static Profile, SpecError> {
    static ISO87: OnceLock<Result<Profile, SpecError>> = OnceLock::new();
    static CUP: OnceLock<Result<Profile, SpecError>> = OnceLock::new();
    let loaded = match name {
        "iso87-ascii" => ISO87.get_or_init(|| Profile::from_toml(ISO87_ASCII_SPEC)),
        "cup-bcd" => CUP.get_or_init(|| Profile::from_toml(CUP_BCD_SPEC)),
        other => {
            return Err(SpecError::Profile(format!(
                "no built-in profile {other:?} (known: {})",
                BUILTIN_PROFILES.join(", ")
            )));
        }
    };
    loaded.as_ref().map_err(Clone::clone)
}

impl Profile {
    /// See [`builtin`].
    pub fn builtin(name: &str) -> Result<&'static Profile, SpecError> {
        builtin(name)
    }
}
