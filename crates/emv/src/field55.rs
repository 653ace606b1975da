//! ISO 8583 field 55 (ICC system-related data): a flat list of primitive EMV objects.

use crate::dict;
use crate::tlv::{self, Tag, Tlv, TlvError};

/// DE55 is an LLLVAR: it can never exceed 999 bytes.
pub const MAX_FIELD55_LEN: usize = 999;

/// The objects a terminal normally sends with an online request (ARQC and the CDOL1 data),
/// in the order most acquirer specifications list them.
pub const REQUEST_TAGS: &[Tag] = &[
    Tag(0x9F26),
    Tag(0x9F27),
    Tag(0x9F10),
    Tag(0x9F37),
    Tag(0x9F36),
    Tag(0x95),
    Tag(0x9A),
    Tag(0x9C),
    Tag(0x9F02),
    Tag(0x5F2A),
    Tag(0x82),
    Tag(0x9F1A),
    Tag(0x9F03),
    Tag(0x9F33),
    Tag(0x9F34),
    Tag(0x9F35),
    Tag(0x9F1E),
    Tag(0x84),
    Tag(0x9F09),
    Tag(0x9F41),
];

/// Parses field 55 strictly: well-formed TLV, no trailing bytes, no duplicates, lengths within
/// the dictionary's bounds.
pub fn parse(field: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    if field.len() > MAX_FIELD55_LEN {
        return Err(TlvError::ValueTooLong {
            tag: Tag(0x55),
            len: field.len(),
            max: MAX_FIELD55_LEN,
        });
    }
    let objects = tlv::parse(field)?;
    for (index, object) in objects.iter().enumerate() {
        if objects[..index]
            .iter()
            .any(|earlier| earlier.tag == object.tag)
        {
            return Err(TlvError::Duplicate { tag: object.tag });
        }
        dict::check_length(object.tag, object.value)?;
    }
    Ok(objects)
}

/// Builds field 55 from (tag, value) pairs, checking each against the dictionary.
pub fn build(objects: &[(Tag, &[u8])]) -> Result<Vec<u8>, TlvError> {
    for (tag, value) in objects {
        dict::check_length(*tag, value)?;
    }
    let out = tlv::encode(objects)?;
    if out.len() > MAX_FIELD55_LEN {
        return Err(TlvError::ValueTooLong {
            tag: Tag(0x55),
            len: out.len(),
            max: MAX_FIELD55_LEN,
        });
    }
    Ok(out)
}
