//! Names, formats and sources of the common EMV data objects (EMV Book 3 Annex A, as quoted by
//! public tag lists; see STANDARDS.md §6.2).

use crate::tlv::{Tag, TlvError};

/// How a value is written (EMV Book 3 §4.3 notation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Binary.
    B,
    /// Numeric, packed BCD, right-justified, leading zeros.
    N,
    /// Compressed numeric: BCD left-justified, padded with `F`.
    Cn,
    /// Alphanumeric.
    An,
    /// Alphanumeric with specials.
    Ans,
    /// A template: the value is more TLVs.
    Template,
}

/// Who produces the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Icc,
    Terminal,
    Issuer,
}

/// One dictionary entry; `min_len`/`max_len` are in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagInfo {
    pub tag: Tag,
    pub name: &'static str,
    pub format: Format,
    pub source: Source,
    pub min_len: usize,
    pub max_len: usize,
    /// Cardholder data (PAN, track equivalents, name): masked in dumps and logs.
    pub sensitive: bool,
}

const fn info(
    tag: u32,
    name: &'static str,
    format: Format,
    source: Source,
    min_len: usize,
    max_len: usize,
    sensitive: bool,
) -> TagInfo {
    TagInfo {
        tag: Tag(tag),
        name,
        format,
        source,
        min_len,
        max_len,
        sensitive,
    }
}

use Format::{An, Ans, B, Cn, N, Template};
use Source::{Icc, Issuer, Terminal};

/// The dictionary, sorted by tag so lookups can binary-search.
pub const TAGS: &[TagInfo] = &[
    info(
        0x4F,
        "Application Identifier (AID) - card",
        B,
        Icc,
        5,
        16,
        false,
    ),
    info(0x50, "Application Label", Ans, Icc, 1, 16, false),
    info(0x56, "Track 1 Data", Ans, Icc, 0, 76, true),
    info(0x57, "Track 2 Equivalent Data", B, Icc, 0, 19, true),
    info(0x5A, "Application PAN", Cn, Icc, 0, 10, true),
    info(
        0x6F,
        "File Control Information Template",
        Template,
        Icc,
        0,
        252,
        false,
    ),
    info(
        0x70,
        "READ RECORD Response Template",
        Template,
        Icc,
        0,
        252,
        false,
    ),
    info(
        0x71,
        "Issuer Script Template 1",
        Template,
        Issuer,
        0,
        128,
        false,
    ),
    info(
        0x72,
        "Issuer Script Template 2",
        Template,
        Issuer,
        0,
        128,
        false,
    ),
    info(
        0x77,
        "Response Message Template Format 2",
        Template,
        Icc,
        0,
        252,
        false,
    ),
    info(
        0x80,
        "Response Message Template Format 1",
        B,
        Icc,
        0,
        252,
        false,
    ),
    info(0x82, "Application Interchange Profile", B, Icc, 2, 2, false),
    info(0x84, "Dedicated File Name", B, Icc, 5, 16, false),
    info(0x86, "Issuer Script Command", B, Issuer, 0, 261, false),
    info(0x8A, "Authorisation Response Code", An, Issuer, 2, 2, false),
    info(0x8C, "CDOL1", B, Icc, 0, 252, false),
    info(0x8D, "CDOL2", B, Icc, 0, 252, false),
    info(0x8E, "CVM List", B, Icc, 10, 252, false),
    info(0x91, "Issuer Authentication Data", B, Issuer, 8, 16, false),
    info(
        0x95,
        "Terminal Verification Results",
        B,
        Terminal,
        5,
        5,
        false,
    ),
    info(0x9A, "Transaction Date", N, Terminal, 3, 3, false),
    info(
        0x9B,
        "Transaction Status Information",
        B,
        Terminal,
        2,
        2,
        false,
    ),
    info(0x9C, "Transaction Type", N, Terminal, 1, 1, false),
    info(0x5F20, "Cardholder Name", Ans, Icc, 2, 26, true),
    info(0x5F24, "Application Expiration Date", N, Icc, 3, 3, false),
    info(0x5F25, "Application Effective Date", N, Icc, 3, 3, false),
    info(0x5F28, "Issuer Country Code", N, Icc, 2, 2, false),
    info(
        0x5F2A,
        "Transaction Currency Code",
        N,
        Terminal,
        2,
        2,
        false,
    ),
    info(0x5F2D, "Language Preference", An, Icc, 2, 8, false),
    info(0x5F30, "Service Code", N, Icc, 2, 2, false),
    info(0x5F34, "PAN Sequence Number", N, Icc, 1, 1, false),
    info(0x9F01, "Acquirer Identifier", N, Terminal, 6, 6, false),
    info(
        0x9F02,
        "Amount, Authorised (Numeric)",
        N,
        Terminal,
        6,
        6,
        false,
    ),
    info(0x9F03, "Amount, Other (Numeric)", N, Terminal, 6, 6, false),
    info(
        0x9F06,
        "Application Identifier (AID) - terminal",
        B,
        Terminal,
        5,
        16,
        false,
    ),
    info(0x9F07, "Application Usage Control", B, Icc, 2, 2, false),
    info(
        0x9F08,
        "Application Version Number - card",
        B,
        Icc,
        2,
        2,
        false,
    ),
    info(
        0x9F09,
        "Application Version Number - terminal",
        B,
        Terminal,
        2,
        2,
        false,
    ),
    info(0x9F0D, "Issuer Action Code - Default", B, Icc, 5, 5, false),
    info(0x9F0E, "Issuer Action Code - Denial", B, Icc, 5, 5, false),
    info(0x9F0F, "Issuer Action Code - Online", B, Icc, 5, 5, false),
    info(0x9F10, "Issuer Application Data", B, Icc, 0, 32, false),
    info(0x9F11, "Issuer Code Table Index", N, Icc, 1, 1, false),
    info(0x9F12, "Application Preferred Name", Ans, Icc, 1, 16, false),
    info(0x9F1A, "Terminal Country Code", N, Terminal, 2, 2, false),
    info(
        0x9F1E,
        "Interface Device Serial Number",
        An,
        Terminal,
        8,
        8,
        false,
    ),
    info(0x9F1F, "Track 1 Discretionary Data", Ans, Icc, 0, 54, true),
    info(0x9F20, "Track 2 Discretionary Data", Cn, Icc, 0, 16, true),
    info(0x9F21, "Transaction Time", N, Terminal, 3, 3, false),
    info(0x9F26, "Application Cryptogram", B, Icc, 8, 8, false),
    info(0x9F27, "Cryptogram Information Data", B, Icc, 1, 1, false),
    info(0x9F33, "Terminal Capabilities", B, Terminal, 3, 3, false),
    info(
        0x9F34,
        "Cardholder Verification Method Results",
        B,
        Terminal,
        3,
        3,
        false,
    ),
    info(0x9F35, "Terminal Type", N, Terminal, 1, 1, false),
    info(
        0x9F36,
        "Application Transaction Counter",
        B,
        Icc,
        2,
        2,
        false,
    ),
    info(0x9F37, "Unpredictable Number", B, Terminal, 4, 4, false),
    info(0x9F38, "PDOL", B, Icc, 0, 252, false),
    info(
        0x9F41,
        "Transaction Sequence Counter",
        N,
        Terminal,
        2,
        4,
        false,
    ),
    info(
        0x9F53,
        "Transaction Category Code",
        An,
        Terminal,
        1,
        1,
        false,
    ),
    info(
        0x9F63,
        "Card Product Identification Information",
        B,
        Icc,
        16,
        16,
        false,
    ),
    info(
        0x9F66,
        "Terminal Transaction Qualifiers",
        B,
        Terminal,
        4,
        4,
        false,
    ),
    info(0x9F6B, "Track 2 Data (contactless)", B, Icc, 0, 19, true),
    info(
        0x9F6E,
        "Form Factor Indicator / Third Party Data",
        B,
        Icc,
        4,
        32,
        false,
    ),
    info(
        0xBF0C,
        "FCI Issuer Discretionary Data",
        Template,
        Icc,
        0,
        222,
        false,
    ),
];

/// Looks a tag up in [`TAGS`].
pub fn lookup(tag: Tag) -> Option<&'static TagInfo> {
    TAGS.binary_search_by_key(&tag, |entry| entry.tag)
        .ok()
        .map(|index| &TAGS[index])
}

/// Whether a tag carries cardholder data that must be masked.
pub fn is_sensitive(tag: Tag) -> bool {
    lookup(tag).is_some_and(|entry| entry.sensitive)
}

/// Rejects a value whose length is outside the dictionary's bounds for its tag.
/// Tags the dictionary does not know are accepted as they are.
pub fn check_length(tag: Tag, value: &[u8]) -> Result<(), TlvError> {
    let Some(entry) = lookup(tag) else {
        return Ok(());
    };
    let len = value.len();
    if len > entry.max_len {
        return Err(TlvError::ValueTooLong {
            tag,
            len,
            max: entry.max_len,
        });
    }
    if len < entry.min_len {
        return Err(TlvError::ValueTooShort {
            tag,
            len,
            min: entry.min_len,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_tags_are_well_formed() {
        for pair in TAGS.windows(2) {
            assert!(
                pair[0].tag < pair[1].tag,
                "{} before {}",
                pair[0].tag,
                pair[1].tag
            );
        }
        for entry in TAGS {
            entry.tag.validate().unwrap();
            assert!(entry.min_len <= entry.max_len, "{}", entry.tag);
        }
    }

    #[test]
    fn lookup_finds_names_and_marks_card_data() {
        assert_eq!(lookup(Tag(0x9F26)).unwrap().name, "Application Cryptogram");
        assert!(is_sensitive(Tag(0x5A)));
        assert!(is_sensitive(Tag(0x57)));
        assert!(!is_sensitive(Tag(0x9F02)));
        assert!(lookup(Tag(0xDF01)).is_none());
    }

    #[test]
    fn oversize_and_undersize_values_are_rejected() {
        assert_eq!(
            check_length(Tag(0x9F26), &[0; 9]),
            Err(TlvError::ValueTooLong {
                tag: Tag(0x9F26),
                len: 9,
                max: 8
            })
        );
        assert_eq!(
            check_length(Tag(0x9F37), &[0; 3]),
            Err(TlvError::ValueTooShort {
                tag: Tag(0x9F37),
                len: 3,
                min: 4
            })
        );
        check_length(Tag(0x9F26), &[0; 8]).unwrap();
        check_length(Tag(0xDF01), &[0; 300]).unwrap();
    }
}
