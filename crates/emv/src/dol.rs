//! Data Object Lists (PDOL, CDOL1, CDOL2, DDOL): a list of tag + length with no values; the
//! terminal answers with the values concatenated (EMV Book 3 §5.4).

use crate::dict::{self, Format};
use crate::tlv::{Tag, TlvError, read_tag};

/// Longest DOL we accept: DOLs come in a single record (≤ 252 bytes of value).
pub const MAX_DOL_LEN: usize = 252;

/// One DOL entry: the tag requested and the number of bytes the card expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DolEntry {
    pub tag: Tag,
    pub len: usize,
}

/// Parses the DOL's value (the content of tag 9F38, 8C, 8D, ...).
pub fn parse(dol: &[u8]) -> Result<Vec<DolEntry>, TlvError> {
    if dol.len() > MAX_DOL_LEN {
        return Err(TlvError::ValueTooLong {
            tag: Tag(0),
            len: dol.len(),
            max: MAX_DOL_LEN,
        });
    }
    let mut entries = Vec::new();
    let mut offset = 0;
    while offset < dol.len() {
        let (tag, tag_len) = read_tag(dol, offset)?;
        let len_offset = offset + tag_len;
        let len = *dol.get(len_offset).ok_or(TlvError::TruncatedLength {
            offset: len_offset,
            tag,
        })?;
        // DOL lengths are one byte; a long form here is malformed.
        if len >= 0x80 {
            return Err(TlvError::LengthTooLong {
                offset: len_offset,
                tag,
                form: len,
            });
        }
        entries.push(DolEntry {
            tag,
            len: usize::from(len),
        });
        offset = len_offset + 1;
    }
    Ok(entries)
}

/// Builds the DOL-related data: each entry's value, fitted to the requested length with the
/// Book 3 rules (numeric: pad/truncate on the left; compressed numeric: pad with `F` on the
/// right; others: pad with zeros / truncate on the right). Unknown or missing values and
/// constructed tags are zero-filled.
pub fn build<'v>(entries: &[DolEntry], lookup: impl Fn(Tag) -> Option<&'v [u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.iter().map(|entry| entry.len).sum());
    for entry in entries {
        let value = if entry.tag.is_constructed() {
            None
        } else {
            lookup(entry.tag)
        };
        fit(entry, value.unwrap_or(&[]), &mut out);
    }
    out
}

fn fit(entry: &DolEntry, value: &[u8], out: &mut Vec<u8>) {
    let format = dict::lookup(entry.tag).map(|info| info.format);
    let want = entry.len;
    if value.is_empty() {
        out.resize(out.len() + want, 0);
        return;
    }
    match format {
        Some(Format::N) if value.len() >= want => {
            out.extend_from_slice(&value[value.len() - want..])
        }
        Some(Format::N) => {
            out.resize(out.len() + want - value.len(), 0);
            out.extend_from_slice(value);
        }
        _ if value.len() >= want => out.extend_from_slice(&value[..want]),
        Some(Format::Cn) => {
            out.extend_from_slice(value);
            out.resize(out.len() + want - value.len(), 0xFF);
        }
        _ => {
            out.extend_from_slice(value);
            out.resize(out.len() + want - value.len(), 0);
        }
    }
}

/// Splits DOL-related data back into (tag, value) pairs; the data must match the DOL exactly.
pub fn split<'a>(entries: &[DolEntry], data: &'a [u8]) -> Result<Vec<(Tag, &'a [u8])>, TlvError> {
    let mut out = Vec::with_capacity(entries.len());
    let mut offset = 0;
    for entry in entries {
        let value = data
            .get(offset..offset + entry.len)
            .ok_or(TlvError::DolDataTruncated {
                offset,
                tag: entry.tag,
                len: entry.len,
            })?;
        out.push((entry.tag, value));
        offset += entry.len;
    }
    if offset != data.len() {
        return Err(TlvError::DolTrailingData {
            extra: data.len() - offset,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A typical CDOL1 (amounts, country, TVR, currency, date, type, UN): the list most
    // contact cards return, as quoted in public EMV tutorials.
    const CDOL1: &str = "9F02069F03069F1A0295055F2A029A039C019F3704";

    #[test]
    fn parses_a_cdol1() {
        let entries = parse(&hex::decode(CDOL1).unwrap()).unwrap();
        let tags: Vec<(u32, usize)> = entries.iter().map(|e| (e.tag.0, e.len)).collect();
        assert_eq!(
            tags,
            [
                (0x9F02, 6),
                (0x9F03, 6),
                (0x9F1A, 2),
                (0x95, 5),
                (0x5F2A, 2),
                (0x9A, 3),
                (0x9C, 1),
                (0x9F37, 4)
            ]
        );
    }

    #[test]
    fn builds_with_padding_rules_and_splits_back() {
        let entries = parse(&hex::decode(CDOL1).unwrap()).unwrap();
        let amount = hex::decode("000000001000").unwrap();
        let country = hex::decode("0156").unwrap();
        let data = build(&entries, |tag| match tag.0 {
            0x9F02 => Some(&amount[..]),
            0x9F1A | 0x5F2A => Some(&country[..]),
            0x9C => Some(&[0x00][..]),
            _ => None,
        });
        assert_eq!(
            hex::encode_upper(&data),
            concat!(
                "000000001000",
                "000000000000",
                "0156",
                "0000000000",
                "0156",
                "000000",
                "00",
                "00000000"
            )
        );
        let parts = split(&entries, &data).unwrap();
        assert_eq!(parts[0], (Tag(0x9F02), &amount[..]));
        assert_eq!(parts.len(), 8);
    }

    #[test]
    fn numeric_values_are_left_padded_and_truncated_on_the_left() {
        let entries = [
            DolEntry {
                tag: Tag(0x9F02),
                len: 4,
            },
            DolEntry {
                tag: Tag(0x9A),
                len: 5,
            },
        ];
        let data = build(&entries, |tag| match tag.0 {
            0x9F02 => Some(&[0x00, 0x00, 0x12, 0x34, 0x56, 0x78][..]),
            _ => Some(&[0x26, 0x11, 0x25][..]),
        });
        assert_eq!(hex::encode_upper(data), "123456780000261125");
    }

    #[test]
    fn binary_values_are_right_padded_and_cn_with_f() {
        let entries = [
            DolEntry {
                tag: Tag(0x9F37),
                len: 6,
            },
            DolEntry {
                tag: Tag(0x5A),
                len: 4,
            },
        ];
        let data = build(&entries, |tag| match tag.0 {
            0x9F37 => Some(&[1, 2, 3, 4][..]),
            _ => Some(&[0x12, 0x34][..]),
        });
        assert_eq!(hex::encode_upper(data), "0102030400001234FFFF");
    }

    #[test]
    fn rejects_malformed_dols_and_mismatched_data() {
        assert!(matches!(parse(&[0x9F]), Err(TlvError::TruncatedTag { .. })));
        assert!(matches!(
            parse(&[0x9F, 0x02]),
            Err(TlvError::TruncatedLength { .. })
        ));
        assert!(matches!(
            parse(&[0x95, 0x81]),
            Err(TlvError::LengthTooLong { .. })
        ));
        let entries = [DolEntry {
            tag: Tag(0x95),
            len: 5,
        }];
        assert!(matches!(
            split(&entries, &[0; 4]),
            Err(TlvError::DolDataTruncated { .. })
        ));
        assert_eq!(
            split(&entries, &[0; 6]),
            Err(TlvError::DolTrailingData { extra: 1 })
        );
    }
}
