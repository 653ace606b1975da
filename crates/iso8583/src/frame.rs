//! Framing helpers for a byte stream: length prefixes and the TPDU. Pure functions over
//! buffers; the TCP code in `host` calls them.

use crate::error::Error;

/// The largest message we frame or unpack. A 2-byte length could announce 65 535 bytes; no
/// POS message comes near 8 KiB (DE55 ≤ 999, 127 fields of ≤ 999), so a larger announced
/// length is treated as hostile rather than buffered.
pub const MAX_FRAME_LEN: usize = 8192;

/// TPDU length: id (1) + destination (2) + source (2).
pub const TPDU_LEN: usize = 5;

/// How a frame announces its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthPrefix {
    /// Two bytes, big-endian binary (UnionPay POS and most TCP hosts).
    Binary2,
    /// Four ASCII digits.
    Ascii4,
}

impl LengthPrefix {
    pub fn width(self) -> usize {
        match self {
            LengthPrefix::Binary2 => 2,
            LengthPrefix::Ascii4 => 4,
        }
    }

    /// Reads the announced length from the start of `buf`; `None` if fewer bytes than the
    /// prefix are there yet.
    pub fn read(self, buf: &[u8]) -> Result<Option<usize>, Error> {
        let Some(prefix) = buf.get(..self.width()) else {
            return Ok(None);
        };
        let len = match self {
            LengthPrefix::Binary2 => usize::from(u16::from_be_bytes([prefix[0], prefix[1]])),
            LengthPrefix::Ascii4 => ascii_number(prefix)
                .ok_or_else(|| Error::Frame("length prefix is not 4 ASCII digits".into()))?,
        };
        if len > MAX_FRAME_LEN {
            return Err(Error::TooLarge {
                len,
                max: MAX_FRAME_LEN,
            });
        }
        Ok(Some(len))
    }

    /// Prefixes `payload` with its length.
    pub fn frame(self, payload: &[u8]) -> Result<Vec<u8>, Error> {
        if payload.len() > MAX_FRAME_LEN {
            return Err(Error::TooLarge {
                len: payload.len(),
                max: MAX_FRAME_LEN,
            });
        }
        let mut out = Vec::with_capacity(self.width() + payload.len());
        match self {
            LengthPrefix::Binary2 => out.extend_from_slice(&(payload.len() as u16).to_be_bytes()),
            LengthPrefix::Ascii4 => {
                out.extend_from_slice(format!("{:04}", payload.len()).as_bytes())
            }
        }
        out.extend_from_slice(payload);
        Ok(out)
    }

    /// Splits one complete frame off the front of `buf`: `Some((payload, consumed))`, or
    /// `None` when more bytes are needed.
    pub fn split(self, buf: &[u8]) -> Result<Option<(&[u8], usize)>, Error> {
        let Some(len) = self.read(buf)? else {
            return Ok(None);
        };
        let end = self.width() + len;
        Ok(buf.get(self.width()..end).map(|payload| (payload, end)))
    }
}

fn ascii_number(digits: &[u8]) -> Option<usize> {
    digits.iter().try_fold(0usize, |total, &byte| {
        byte.is_ascii_digit()
            .then(|| total * 10 + usize::from(byte - b'0'))
    })
}

/// Transport protocol data unit: `60` + destination NII + source NII (STANDARDS.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tpdu {
    pub id: u8,
    pub destination: u16,
    pub source: u16,
}

impl Tpdu {
    /// The usual TPDU id.
    pub const ID: u8 = 0x60;

    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let bytes: &[u8; TPDU_LEN] = bytes
            .get(..TPDU_LEN)
            .and_then(|head| head.try_into().ok())
            .ok_or_else(|| Error::Tpdu(format!("needs {TPDU_LEN} bytes, got {}", bytes.len())))?;
        if bytes[0] != Self::ID {
            return Err(Error::Tpdu(format!("id 0x{:02X} is not 0x60", bytes[0])));
        }
        Ok(Self {
            id: bytes[0],
            destination: u16::from_be_bytes([bytes[1], bytes[2]]),
            source: u16::from_be_bytes([bytes[3], bytes[4]]),
        })
    }

    pub fn to_bytes(self) -> [u8; TPDU_LEN] {
        let [d1, d2] = self.destination.to_be_bytes();
        let [s1, s2] = self.source.to_be_bytes();
        [self.id, d1, d2, s1, s2]
    }

    /// The TPDU of the reply: destination and source swapped.
    pub fn reply(self) -> Self {
        Self {
            id: self.id,
            destination: self.source,
            source: self.destination,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_length_frames_and_splits() {
        let framed = LengthPrefix::Binary2.frame(&[0xAA; 98]).unwrap();
        // STANDARDS.md §2: the UnionPay tutorial's `0062` announces 98 bytes.
        assert_eq!(&framed[..2], &[0x00, 0x62]);
        let (payload, used) = LengthPrefix::Binary2.split(&framed).unwrap().unwrap();
        assert_eq!((payload.len(), used), (98, 100));
        assert_eq!(LengthPrefix::Binary2.split(&framed[..50]).unwrap(), None);
        assert_eq!(LengthPrefix::Binary2.split(&framed[..1]).unwrap(), None);
    }

    #[test]
    fn ascii_length_frames_and_rejects_non_digits() {
        let framed = LengthPrefix::Ascii4.frame(b"0800").unwrap();
        assert_eq!(framed, b"00040800");
        assert_eq!(
            LengthPrefix::Ascii4.split(&framed).unwrap(),
            Some((&b"0800"[..], 8))
        );
        assert!(LengthPrefix::Ascii4.split(b"00x4abcd").is_err());
    }

    #[test]
    fn hostile_lengths_are_refused_before_buffering() {
        assert_eq!(
            LengthPrefix::Binary2.split(&[0xFF, 0xFF]),
            Err(Error::TooLarge {
                len: 65535,
                max: MAX_FRAME_LEN
            })
        );
        assert!(LengthPrefix::Ascii4.split(b"9999").is_err());
        assert!(
            LengthPrefix::Binary2
                .frame(&vec![0; MAX_FRAME_LEN + 1])
                .is_err()
        );
    }

    #[test]
    fn tpdu_parses_and_swaps() {
        // STANDARDS.md §2: TPDU `6000100000`.
        let tpdu = Tpdu::parse(&[0x60, 0x00, 0x10, 0x00, 0x00]).unwrap();
        assert_eq!((tpdu.destination, tpdu.source), (0x0010, 0x0000));
        assert_eq!(tpdu.reply().to_bytes(), [0x60, 0x00, 0x00, 0x00, 0x10]);
        assert!(Tpdu::parse(&[0x61, 0, 0, 0, 0]).is_err());
        assert!(Tpdu::parse(&[0x60, 0]).is_err());
    }
}
