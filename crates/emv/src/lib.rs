//! Strict EMV BER-TLV, the common tag dictionary, Data Object Lists and field-55 helpers.
//!
//! ```
//! use emv::{tlv, Tag};
//!
//! let field55 = hex::decode("9F2608A1B2C3D4E5F607089F360200019505000000000082025C00").unwrap();
//! let objects = emv::field55::parse(&field55).unwrap();
//! assert_eq!(objects[0].tag, Tag(0x9F26));
//! assert_eq!(emv::dict::lookup(objects[1].tag).unwrap().name, "Application Transaction Counter");
//! assert_eq!(tlv::find(&field55, Tag(0x82)).unwrap(), Some(&[0x5C, 0x00][..]));
//! // Indefinite lengths, trailing bytes and lengths past the buffer are errors, never guesses.
//! assert!(tlv::parse(&[0x9F, 0x26, 0x80]).is_err());
//! ```
//!
//! The parser borrows: a [`Tlv`] points into the input. Limits are named constants
//! ([`tlv::MAX_TAG_LEN`], [`tlv::MAX_VALUE_LEN`], [`tlv::MAX_DEPTH`]).

pub mod dict;
pub mod dol;
pub mod field55;
pub mod tlv;

pub use tlv::{Node, Tag, Tlv, TlvError};

/// Writes `value` as hex, or as `****` plus its length when the tag holds cardholder data.
pub fn display_value(tag: Tag, value: &[u8]) -> String {
    if dict::is_sensitive(tag) {
        return format!("**** ({} bytes, masked)", value.len());
    }
    let mut out = String::with_capacity(value.len() * 2);
    for byte in value {
        out.push_str(&format!("{byte:02X}"));
    }
    out
}
