//! Pack and unpack, driven entirely by a [`Profile`]'s field table.

use crate::bcd::{self, Pad};
use crate::bitmap::Bitmap;
use crate::error::{Error, FieldError};
use crate::frame::{MAX_FRAME_LEN, TPDU_LEN, Tpdu};
use crate::message::{Message, PackedDigits, Value};
use crate::mti::Mti;
use crate::spec::{
    BitmapEncoding, Encoding, FieldSpec, Kind, LengthType, MtiEncoding, PrefixEncoding, Profile,
};
use std::borrow::Cow;

/// A cursor over the input that reports how much was missing when it runs out.
struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, needed: usize) -> Result<&'a [u8], FieldError> {
        let available = self.input.len() - self.pos;
        if needed > available {
            return Err(FieldError::Truncated { needed, available });
        }
        let slice = &self.input[self.pos..self.pos + needed];
        self.pos += needed;
        Ok(slice)
    }
}

fn field_error(spec: &FieldSpec, reason: FieldError) -> Error {
    Error::Field {
        field: spec.number,
        name: spec.name.clone(),
        reason,
    }
}

impl Profile {
    /// Unpacks one message (without the frame's length prefix). Every byte must be consumed.
    pub fn unpack<'a>(&self, input: &'a [u8]) -> Result<Message<'a>, Error> {
        if input.len() > MAX_FRAME_LEN {
            return Err(Error::TooLarge {
                len: input.len(),
                max: MAX_FRAME_LEN,
            });
        }
        let mut reader = Reader { input, pos: 0 };
        let tpdu = if self.tpdu {
            let bytes = reader
                .take(TPDU_LEN)
                .map_err(|error| Error::Tpdu(error.to_string()))?;
            Some(Tpdu::parse(bytes)?)
        } else {
            None
        };
        let available = input.len() - reader.pos;
        let header = reader.take(self.header_len).map_err(|_| Error::Header {
            expected: self.header_len,
            available,
        })?;
        let mti = self.read_mti(&mut reader)?;
        let bitmap = self.read_bitmap(&mut reader)?;
        let mut message = Message::new(mti);
        message.tpdu = tpdu;
        message.header = Cow::Borrowed(header);
        for number in bitmap.fields() {
            let spec = self.field(number).ok_or_else(|| Error::Field {
                field: number,
                name: "undefined".into(),
                reason: FieldError::NotInProfile {
                    profile: self.name.clone(),
                },
            })?;
            let value =
                read_field(spec, &mut reader).map_err(|reason| field_error(spec, reason))?;
            message.set(number, value);
        }
        match input.len() - reader.pos {
            0 => Ok(message),
            count => Err(Error::TrailingBytes { count }),
        }
    }

    fn read_mti(&self, reader: &mut Reader<'_>) -> Result<Mti, Error> {
        match self.mti {
            MtiEncoding::Ascii => {
                let digits = reader
                    .take(4)
                    .map_err(|error| Error::Mti(error.to_string()))?;
                Mti::from_digits(digits).map_err(Error::Mti)
            }
            MtiEncoding::Bcd => {
                let packed = reader
                    .take(2)
                    .map_err(|error| Error::Mti(error.to_string()))?;
                bcd::validate(packed, 4, Pad::Left, false)
                    .map_err(|error| Error::Mti(error.to_string()))?;
                let mut digits = [0u8; 4];
                for (slot, nibble) in digits.iter_mut().zip(bcd::nibbles(packed, 4, Pad::Left)) {
                    *slot = b'0' + nibble;
                }
                Mti::from_digits(&digits).map_err(Error::Mti)
            }
        }
    }

    fn read_bitmap(&self, reader: &mut Reader<'_>) -> Result<Bitmap, Error> {
        let primary = self.read_bitmap_half(reader, "primary")?;
        if primary[0] & 0x80 == 0 {
            return Ok(Bitmap::from_halves(primary, [0; 8]));
        }
        if !self.secondary_bitmap {
            return Err(Error::Bitmap(format!(
                "bit 1 (secondary bitmap) is set but profile {} has none",
                self.name
            )));
        }
        let secondary = self.read_bitmap_half(reader, "secondary")?;
        if secondary == [0; 8] {
            // Found by fuzzing: an all-zero secondary bitmap is a second spelling of "no
            // fields above 64"; refusing it keeps unpack/pack an identity.
            return Err(Error::Bitmap(
                "bit 1 is set but the secondary bitmap is empty".into(),
            ));
        }
        Ok(Bitmap::from_halves(primary, secondary))
    }

    fn read_bitmap_half(&self, reader: &mut Reader<'_>, which: &str) -> Result<[u8; 8], Error> {
        let truncated = |error: FieldError| {
            Error::Bitmap(format!("{which} bitmap missing or cut short: {error}"))
        };
        let mut half = [0u8; 8];
        match self.bitmap {
            BitmapEncoding::Binary => half.copy_from_slice(reader.take(8).map_err(truncated)?),
            BitmapEncoding::Hex => {
                let text = reader.take(16).map_err(truncated)?;
                hex_decode_into(text, &mut half).map_err(|_| {
                    Error::Bitmap(format!("{which} bitmap is not 16 hex characters"))
                })?;
            }
        }
        Ok(half)
    }

    /// Packs a message (without a frame length prefix).
    pub fn pack(&self, message: &Message<'_>) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(512);
        self.pack_into(message, &mut out)?;
        Ok(out)
    }

    /// Packs into `out` (appending), so a caller can reuse one buffer.
    pub fn pack_into(&self, message: &Message<'_>, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        self.write_preamble(message, out)?;
        let bitmap = message.bitmap();
        if bitmap.needs_secondary() && !self.secondary_bitmap {
            let field = bitmap.fields().find(|&field| field > 64).unwrap_or(65);
            return Err(Error::Bitmap(format!(
                "field {field} needs a secondary bitmap; profile {} has none",
                self.name
            )));
        }
        self.write_bitmap_half(bitmap.primary_bytes(), out);
        if bitmap.needs_secondary() {
            self.write_bitmap_half(bitmap.secondary_bytes(), out);
        }
        for (number, value) in message.iter() {
            let spec = self.field(number).ok_or_else(|| Error::Field {
                field: number,
                name: "undefined".into(),
                reason: FieldError::NotInProfile {
                    profile: self.name.clone(),
                },
            })?;
            write_field(spec, value, out).map_err(|reason| field_error(spec, reason))?;
        }
        let len = out.len() - start;
        if len > MAX_FRAME_LEN {
            return Err(Error::TooLarge {
                len,
                max: MAX_FRAME_LEN,
            });
        }
        Ok(())
    }

    fn write_preamble(&self, message: &Message<'_>, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.tpdu {
            let tpdu = message
                .tpdu
                .ok_or_else(|| Error::Tpdu(format!("profile {} needs a TPDU", self.name)))?;
            out.extend_from_slice(&tpdu.to_bytes());
        }
        if message.header.len() != self.header_len {
            return Err(Error::Header {
                expected: self.header_len,
                available: message.header.len(),
            });
        }
        out.extend_from_slice(&message.header);
        let digits = message.mti.digits();
        match self.mti {
            MtiEncoding::Ascii => out.extend_from_slice(&digits),
            MtiEncoding::Bcd => bcd::pack(&digits, Pad::Left, 0, false, out)
                .map_err(|error| Error::Mti(error.to_string()))?,
        }
        Ok(())
    }

    fn write_bitmap_half(&self, half: [u8; 8], out: &mut Vec<u8>) {
        match self.bitmap {
            BitmapEncoding::Binary => out.extend_from_slice(&half),
            BitmapEncoding::Hex => hex_encode_into(&half, out),
        }
    }
}

fn read_length(spec: &FieldSpec, reader: &mut Reader<'_>) -> Result<usize, FieldError> {
    if spec.length == LengthType::Fixed {
        return Ok(spec.max);
    }
    let prefix = reader.take(spec.prefix.width(spec.length))?;
    let len = match spec.prefix {
        PrefixEncoding::Ascii => prefix.iter().try_fold(0usize, |total, &byte| {
            byte.is_ascii_digit()
                .then(|| total * 10 + usize::from(byte - b'0'))
        }),
        PrefixEncoding::Bcd => bcd::decode_number(prefix),
        PrefixEncoding::Binary => Some(
            prefix
                .iter()
                .fold(0usize, |total, &byte| (total << 8) | usize::from(byte)),
        ),
    }
    .ok_or(FieldError::BadLengthPrefix {
        encoding: prefix_name(spec.prefix),
    })?;
    if len > spec.max {
        return Err(FieldError::TooLong { len, max: spec.max });
    }
    Ok(len)
}

fn prefix_name(prefix: PrefixEncoding) -> &'static str {
    match prefix {
        PrefixEncoding::Ascii => "ASCII",
        PrefixEncoding::Bcd => "BCD",
        PrefixEncoding::Binary => "binary",
    }
}

fn read_field<'a>(spec: &FieldSpec, reader: &mut Reader<'a>) -> Result<Value<'a>, FieldError> {
    let len = read_length(spec, reader)?;
    match spec.encoding {
        Encoding::Ascii => {
            let data = reader.take(len)?;
            check_chars(spec.kind, data)?;
            Ok(Value::Bytes(Cow::Borrowed(data)))
        }
        Encoding::Binary => Ok(Value::Bytes(Cow::Borrowed(reader.take(len)?))),
        Encoding::Bcd => {
            let packed = reader.take(bcd::packed_len(len))?;
            bcd::validate(packed, len, spec.pad, spec.kind == Kind::Z)?;
            Ok(Value::Packed(PackedDigits {
                packed,
                digits: len,
                pad: spec.pad,
            }))
        }
        Encoding::Hex => {
            let text = reader.take(len * 2)?;
            let mut bytes = vec![0u8; len];
            hex_decode_into(text, &mut bytes)?;
            Ok(Value::Bytes(Cow::Owned(bytes)))
        }
    }
}

fn check_chars(kind: Kind, data: &[u8]) -> Result<(), FieldError> {
    match data
        .iter()
        .enumerate()
        .find(|&(position, &byte)| !kind.allows(position, byte))
    {
        Some((position, &byte)) => Err(FieldError::BadCharacter {
            position,
            byte,
            kind: kind.name(),
        }),
        None => Ok(()),
    }
}

fn write_length(spec: &FieldSpec, len: usize, out: &mut Vec<u8>) {
    let width = spec.prefix.width(spec.length);
    if width == 0 {
        return;
    }
    match spec.prefix {
        PrefixEncoding::Ascii => {
            let mut divisor = 10usize.pow(width as u32 - 1);
            for _ in 0..width {
                out.push(b'0' + ((len / divisor) % 10) as u8);
                divisor /= 10;
            }
        }
        PrefixEncoding::Bcd => bcd::encode_number(len, width, out),
        PrefixEncoding::Binary if width == 1 => out.push(len as u8),
        PrefixEncoding::Binary => out.extend_from_slice(&(len as u16).to_be_bytes()),
    }
}

fn write_field(spec: &FieldSpec, value: &Value<'_>, out: &mut Vec<u8>) -> Result<(), FieldError> {
    if let Value::Packed(packed) = value
        && spec.encoding == Encoding::Bcd
        && packed.pad == spec.pad
        && packed.packed.len() == bcd::packed_len(packed.digits)
    {
        // Same wire form as this profile: copy the packed bytes (the hot path for a host
        // that echoes fields from a request into its response).
        check_len(spec, packed.digits)?;
        bcd::validate(
            packed.packed,
            packed.digits,
            packed.pad,
            spec.kind == Kind::Z,
        )?;
        write_length(spec, packed.digits, out);
        out.extend_from_slice(packed.packed);
        return Ok(());
    }
    let logical = value.to_bytes();
    // Check before padding so a reported position is the caller's, not the padded one.
    if spec.kind != Kind::B {
        check_chars(spec.kind, &logical)?;
    }
    let data = pad_fixed(spec, &logical)?;
    check_len(spec, data.len())?;
    write_length(spec, data.len(), out);
    match spec.encoding {
        Encoding::Ascii | Encoding::Binary => out.extend_from_slice(&data),
        Encoding::Bcd => bcd::pack(&data, spec.pad, spec.filler, spec.kind == Kind::Z, out)?,
        Encoding::Hex => hex_encode_into(&data, out),
    }
    Ok(())
}

fn check_len(spec: &FieldSpec, len: usize) -> Result<(), FieldError> {
    match spec.length {
        LengthType::Fixed if len != spec.max => Err(FieldError::WrongLength {
            len,
            expected: spec.max,
        }),
        _ if len > spec.max => Err(FieldError::TooLong { len, max: spec.max }),
        _ => Ok(()),
    }
}

/// Fixed `n` fields are right-justified and zero-filled, fixed `an`/`ans` left-justified and
/// space-filled (STANDARDS.md §1.3). Other short fixed values are left for `check_len` to reject.
fn pad_fixed<'v>(spec: &FieldSpec, data: &'v [u8]) -> Result<Cow<'v, [u8]>, FieldError> {
    if spec.length != LengthType::Fixed || data.len() >= spec.max {
        return Ok(Cow::Borrowed(data));
    }
    let fill = spec.max - data.len();
    match spec.kind {
        Kind::N => {
            let mut padded = vec![b'0'; fill];
            padded.extend_from_slice(data);
            Ok(Cow::Owned(padded))
        }
        Kind::An | Kind::Ans => {
            let mut padded = data.to_vec();
            padded.resize(spec.max, b' ');
            Ok(Cow::Owned(padded))
        }
        _ => Ok(Cow::Borrowed(data)),
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";

pub(crate) fn hex_encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    for byte in bytes {
        out.push(HEX_DIGITS[usize::from(byte >> 4)]);
        out.push(HEX_DIGITS[usize::from(byte & 0x0F)]);
    }
}

fn hex_value(char: u8) -> Option<u8> {
    match char {
        b'0'..=b'9' => Some(char - b'0'),
        b'A'..=b'F' => Some(char - b'A' + 10),
        b'a'..=b'f' => Some(char - b'a' + 10),
        _ => None,
    }
}

fn hex_decode_into(text: &[u8], out: &mut [u8]) -> Result<(), FieldError> {
    for (slot, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let high = hex_value(pair[0]).ok_or(FieldError::BadHex)?;
        let low = hex_value(pair[1]).ok_or(FieldError::BadHex)?;
        *slot = (high << 4) | low;
    }
    Ok(())
}
