//! Packed BCD: two decimal digits per byte. Track-2 data also uses nibble `D` for the `=`
//! separator.

use crate::error::FieldError;

/// Which side of an odd-length value gets the pad nibble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pad {
    /// Pad nibble first: the value is right-aligned (most fixed numerics).
    Left,
    /// Pad nibble last: the value is left-aligned (PAN, track 2 in UnionPay).
    Right,
}

/// Bytes needed for `digits` nibbles.
pub fn packed_len(digits: usize) -> usize {
    digits.div_ceil(2)
}

fn nibble_of(char: u8, allow_separator: bool) -> Option<u8> {
    match char {
        b'0'..=b'9' => Some(char - b'0'),
        b'=' if allow_separator => Some(0xD),
        _ => None,
    }
}

/// Packs ASCII digits (and `=` when `allow_separator`) into BCD, appending to `out`.
pub fn pack(
    text: &[u8],
    pad: Pad,
    filler: u8,
    allow_separator: bool,
    out: &mut Vec<u8>,
) -> Result<(), FieldError> {
    let odd = text.len() % 2 == 1;
    let mut high: Option<u8> = if odd && pad == Pad::Left {
        Some(filler)
    } else {
        None
    };
    for (position, &char) in text.iter().enumerate() {
        let nibble = nibble_of(char, allow_separator).ok_or(FieldError::BadCharacter {
            position,
            byte: char,
            kind: if allow_separator { "z" } else { "n" },
        })?;
        match high.take() {
            Some(first) => out.push((first << 4) | nibble),
            None => high = Some(nibble),
        }
    }
    if let Some(first) = high {
        out.push((first << 4) | filler);
    }
    Ok(())
}

/// Iterates over the `digits` nibbles of a packed value, skipping the pad nibble.
pub fn nibbles(packed: &[u8], digits: usize, pad: Pad) -> impl Iterator<Item = u8> + '_ {
    let skip = usize::from(digits % 2 == 1 && pad == Pad::Left);
    packed
        .iter()
        .flat_map(|byte| [byte >> 4, byte & 0x0F])
        .skip(skip)
        .take(digits)
}

/// Checks a packed value: every nibble a digit (or `D` when `allow_separator`), the pad
/// nibble `0` or `F`.
pub fn validate(
    packed: &[u8],
    digits: usize,
    pad: Pad,
    allow_separator: bool,
) -> Result<(), FieldError> {
    // A plain loop over bytes: this runs for every BCD field of every message.
    let skip = usize::from(digits % 2 == 1 && pad == Pad::Left);
    for (index, byte) in packed.iter().enumerate() {
        for (half, nibble) in [(0, byte >> 4), (1, byte & 0x0F)] {
            let position = (index * 2 + half).wrapping_sub(skip);
            if position >= digits {
                continue;
            }
            if nibble > 9 && !(allow_separator && nibble == 0xD) {
                return Err(FieldError::BadBcd { position, nibble });
            }
        }
    }
    if digits % 2 == 1 {
        let pad_nibble = match (pad, packed.first(), packed.last()) {
            (Pad::Left, Some(first), _) => first >> 4,
            (Pad::Right, _, Some(last)) => last & 0x0F,
            _ => 0,
        };
        if pad_nibble != 0 && pad_nibble != 0xF {
            let position = if pad == Pad::Left { 0 } else { digits };
            return Err(FieldError::BadBcd {
                position,
                nibble: pad_nibble,
            });
        }
    }
    Ok(())
}

/// The ASCII character for a decoded nibble (`D` is the track-2 separator).
pub fn char_of(nibble: u8) -> char {
    match nibble {
        0..=9 => char::from(b'0' + nibble),
        _ => '=',
    }
}

/// Decodes a length prefix of `bytes` BCD bytes.
pub fn decode_number(packed: &[u8]) -> Option<usize> {
    let mut value = 0usize;
    for nibble in packed.iter().flat_map(|byte| [byte >> 4, byte & 0x0F]) {
        if nibble > 9 {
            return None;
        }
        value = value * 10 + usize::from(nibble);
    }
    Some(value)
}

/// Encodes `value` as `bytes` BCD bytes, right-aligned.
pub fn encode_number(value: usize, bytes: usize, out: &mut Vec<u8>) {
    let mut digits = [0u8; 8];
    let mut rest = value;
    for slot in digits.iter_mut().rev() {
        *slot = (rest % 10) as u8;
        rest /= 10;
    }
    let used = &digits[8 - bytes * 2..];
    out.extend(used.chunks(2).map(|pair| (pair[0] << 4) | pair[1]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_odd_lengths_on_either_side() {
        let mut out = Vec::new();
        pack(b"123", Pad::Left, 0, false, &mut out).unwrap();
        assert_eq!(out, [0x01, 0x23]);
        out.clear();
        pack(b"123", Pad::Right, 0xF, false, &mut out).unwrap();
        assert_eq!(out, [0x12, 0x3F]);
        out.clear();
        pack(b"12=4", Pad::Right, 0, true, &mut out).unwrap();
        assert_eq!(out, [0x12, 0xD4]);
    }

    #[test]
    fn rejects_non_digits_and_bad_pad_nibbles() {
        let mut out = Vec::new();
        assert!(matches!(
            pack(b"12A", Pad::Left, 0, false, &mut out),
            Err(FieldError::BadCharacter { position: 2, .. })
        ));
        assert_eq!(
            validate(&[0x1A], 2, Pad::Left, false),
            Err(FieldError::BadBcd {
                position: 1,
                nibble: 0xA
            })
        );
        assert_eq!(
            validate(&[0x51, 0x23], 3, Pad::Left, false),
            Err(FieldError::BadBcd {
                position: 0,
                nibble: 5
            })
        );
        validate(&[0xF1, 0x23], 3, Pad::Left, false).unwrap();
        validate(&[0x12, 0xD4], 4, Pad::Right, true).unwrap();
    }

    #[test]
    fn numbers_round_trip() {
        let mut out = Vec::new();
        encode_number(317, 2, &mut out);
        assert_eq!(out, [0x03, 0x17]);
        assert_eq!(decode_number(&out), Some(317));
        assert_eq!(decode_number(&[0x1A]), None);
    }
}
