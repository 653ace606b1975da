//! Strict BER-TLV as EMV Book 3 Annex B uses it.

use std::fmt;

/// The longest tag we accept: EMV tags are 1–3 bytes; 4 leaves room for proprietary tags
/// without letting a run of continuation bits walk through the whole buffer.
pub const MAX_TAG_LEN: usize = 4;
/// Lengths are at most `82 NNNN` (3 bytes), so a value is at most 65 535 bytes.
pub const MAX_VALUE_LEN: usize = 0xFFFF;
/// Constructed templates nest at most this deep (EMV nests 70/77 → 71/72 → 86, i.e. 3);
/// the limit keeps recursion bounded on hostile input.
pub const MAX_DEPTH: usize = 8;

/// Why a TLV buffer was rejected; `offset` is the byte position in the buffer being parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    #[error("offset {offset}: buffer ends inside a tag")]
    TruncatedTag { offset: usize },
    #[error("offset {offset}: tag longer than {MAX_TAG_LEN} bytes")]
    TagTooLong { offset: usize },
    #[error("offset {offset}: tag {tag}: buffer ends inside the length")]
    TruncatedLength { offset: usize, tag: Tag },
    #[error("offset {offset}: tag {tag}: indefinite length (0x80) is not allowed in EMV")]
    IndefiniteLength { offset: usize, tag: Tag },
    #[error("offset {offset}: tag {tag}: length form 0x{form:02X} is longer than 3 bytes")]
    LengthTooLong { offset: usize, tag: Tag, form: u8 },
    #[error("offset {offset}: tag {tag}: length {len} is not minimally encoded")]
    NonMinimalLength { offset: usize, tag: Tag, len: usize },
    #[error(
        "offset {offset}: tag {tag}: length {len} runs past the end of the buffer ({available} bytes left)"
    )]
    ValuePastEnd {
        offset: usize,
        tag: Tag,
        len: usize,
        available: usize,
    },
    #[error("tag {tag}: templates nested deeper than {MAX_DEPTH}")]
    TooDeep { tag: Tag },
    #[error("tag {tag}: value of {len} bytes is longer than the {max} allowed")]
    ValueTooLong { tag: Tag, len: usize, max: usize },
    #[error("tag {tag}: value of {len} bytes is shorter than the {min} required")]
    ValueTooShort { tag: Tag, len: usize, min: usize },
    #[error("tag {tag}: appears twice")]
    Duplicate { tag: Tag },
    #[error("tag {tag}: not a valid tag encoding")]
    InvalidTag { tag: Tag },
    #[error("DOL offset {offset}: data ends before tag {tag} ({len} bytes expected)")]
    DolDataTruncated { offset: usize, tag: Tag, len: usize },
    #[error("DOL: {extra} bytes of data left after the last entry")]
    DolTrailingData { extra: usize },
}

/// A BER tag, stored as its big-endian bytes in a `u32` (`0x9F26`, `0x5A`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(pub u32);

impl Tag {
    /// The tag's encoded bytes (1–4).
    pub fn bytes(self) -> ([u8; 4], usize) {
        let all = self.0.to_be_bytes();
        let len = 4 - (self.0.leading_zeros() as usize / 8).min(3);
        let mut out = [0u8; 4];
        out[..len].copy_from_slice(&all[4 - len..]);
        (out, len)
    }

    fn first_byte(self) -> u8 {
        let (bytes, _) = self.bytes();
        bytes[0]
    }

    /// Bit 6 of the first byte: the value is itself a list of TLVs.
    pub fn is_constructed(self) -> bool {
        self.first_byte() & 0x20 != 0
    }

    /// Checks that the number is a well-formed tag encoding (continuation bits consistent).
    pub fn validate(self) -> Result<(), TlvError> {
        let (bytes, len) = self.bytes();
        match read_tag(&bytes[..len], 0) {
            Ok((tag, used)) if used == len && tag == self => Ok(()),
            _ => Err(TlvError::InvalidTag { tag: self }),
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (bytes, len) = self.bytes();
        for byte in &bytes[..len] {
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({self})")
    }
}

/// One data object borrowed from the input: its tag and value bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: Tag,
    pub value: &'a [u8],
}

impl fmt::Debug for Tlv<'_> {
    /// Values may be card data, so Debug shows the tag and the length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tlv({} len {})", self.tag, self.value.len())
    }
}

/// A parsed object with its children when it is constructed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node<'a> {
    pub tlv: Tlv<'a>,
    pub children: Vec<Node<'a>>,
}

pub(crate) fn read_tag(input: &[u8], offset: usize) -> Result<(Tag, usize), TlvError> {
    let first = *input.get(offset).ok_or(TlvError::TruncatedTag { offset })?;
    let mut tag = u32::from(first);
    let mut used = 1;
    if first & 0x1F == 0x1F {
        loop {
            let byte = *input
                .get(offset + used)
                .ok_or(TlvError::TruncatedTag { offset })?;
            used += 1;
            if used > MAX_TAG_LEN {
                return Err(TlvError::TagTooLong { offset });
            }
            tag = (tag << 8) | u32::from(byte);
            if byte & 0x80 == 0 {
                break;
            }
        }
    }
    Ok((Tag(tag), used))
}

fn read_length(input: &[u8], offset: usize, tag: Tag) -> Result<(usize, usize), TlvError> {
    let truncated = TlvError::TruncatedLength { offset, tag };
    let first = *input.get(offset).ok_or(truncated.clone())?;
    match first {
        0x00..=0x7F => Ok((usize::from(first), 1)),
        0x80 => Err(TlvError::IndefiniteLength { offset, tag }),
        0x81 => {
            let len = usize::from(*input.get(offset + 1).ok_or(truncated)?);
            if len < 0x80 {
                return Err(TlvError::NonMinimalLength { offset, tag, len });
            }
            Ok((len, 2))
        }
        0x82 => {
            let high = *input.get(offset + 1).ok_or(truncated.clone())?;
            let low = *input.get(offset + 2).ok_or(truncated)?;
            let len = usize::from(u16::from_be_bytes([high, low]));
            if len < 0x100 {
                return Err(TlvError::NonMinimalLength { offset, tag, len });
            }
            Ok((len, 3))
        }
        form => Err(TlvError::LengthTooLong { offset, tag, form }),
    }
}

/// Reads one TLV at `offset`; returns it and the offset just past it.
pub fn read_one(input: &[u8], offset: usize) -> Result<(Tlv<'_>, usize), TlvError> {
    let (tag, tag_len) = read_tag(input, offset)?;
    let (len, len_len) = read_length(input, offset + tag_len, tag)?;
    let start = offset + tag_len + len_len;
    let available = input.len() - start;
    if len > available {
        return Err(TlvError::ValuePastEnd {
            offset,
            tag,
            len,
            available,
        });
    }
    Ok((
        Tlv {
            tag,
            value: &input[start..start + len],
        },
        start + len,
    ))
}

/// Iterates over the top-level objects of a buffer; stops at the first error.
#[derive(Debug, Clone)]
pub struct TlvIter<'a> {
    input: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.input.len() {
            return None;
        }
        match read_one(self.input, self.offset) {
            Ok((tlv, next)) => {
                self.offset = next;
                Some(Ok(tlv))
            }
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }
}

/// Iterates without allocating; a buffer that does not end on an object boundary yields an error.
pub fn iter(input: &[u8]) -> TlvIter<'_> {
    TlvIter {
        input,
        offset: 0,
        failed: false,
    }
}

/// Parses a flat list of objects; every byte must belong to an object (no trailing bytes).
pub fn parse(input: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    iter(input).collect()
}

/// Parses a list of objects and, recursively, the contents of constructed ones.
pub fn parse_tree(input: &[u8]) -> Result<Vec<Node<'_>>, TlvError> {
    parse_level(input, 0)
}

fn parse_level(input: &[u8], depth: usize) -> Result<Vec<Node<'_>>, TlvError> {
    let mut nodes = Vec::new();
    for tlv in iter(input) {
        let tlv = tlv?;
        let children = if tlv.tag.is_constructed() {
            if depth + 1 >= MAX_DEPTH {
                return Err(TlvError::TooDeep { tag: tlv.tag });
            }
            parse_level(tlv.value, depth + 1)?
        } else {
            Vec::new()
        };
        nodes.push(Node { tlv, children });
    }
    Ok(nodes)
}

/// Finds the first object with `tag` among top-level objects (no descent).
pub fn find(input: &[u8], tag: Tag) -> Result<Option<&[u8]>, TlvError> {
    for tlv in iter(input) {
        let tlv = tlv?;
        if tlv.tag == tag {
            return Ok(Some(tlv.value));
        }
    }
    Ok(None)
}

/// Appends the minimal length encoding of `len`.
pub fn write_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.push(0x82);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    }
}

/// Appends one object; the value must fit the 3-byte length form.
pub fn write(tag: Tag, value: &[u8], out: &mut Vec<u8>) -> Result<(), TlvError> {
    tag.validate()?;
    if value.len() > MAX_VALUE_LEN {
        return Err(TlvError::ValueTooLong {
            tag,
            len: value.len(),
            max: MAX_VALUE_LEN,
        });
    }
    let (bytes, len) = tag.bytes();
    out.extend_from_slice(&bytes[..len]);
    write_length(value.len(), out);
    out.extend_from_slice(value);
    Ok(())
}

/// Encodes a list of primitive objects, in order.
pub fn encode(objects: &[(Tag, &[u8])]) -> Result<Vec<u8>, TlvError> {
    let mut out = Vec::new();
    for (tag, value) in objects {
        write(*tag, value, &mut out)?;
    }
    Ok(out)
}
