//! A message: MTI, optional TPDU and header, and up to 127 data fields.
//!
//! Unpacked values borrow the input buffer: ASCII and binary fields are slices of it, BCD
//! fields keep their packed bytes and are decoded only when read.

use crate::bcd::{self, Pad};
use crate::bitmap::Bitmap;
use crate::card::{Pan, Stan, Track2};
use crate::error::{Error, FieldError};
use crate::frame::Tpdu;
use crate::mti::Mti;
use std::borrow::Cow;
use std::fmt;

/// Packed BCD digits borrowed from the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PackedDigits<'a> {
    pub packed: &'a [u8],
    pub digits: usize,
    pub pad: Pad,
}

impl fmt::Debug for PackedDigits<'_> {
    /// May be a PAN: show the digit count only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackedDigits({} digits)", self.digits)
    }
}

/// One field's value.
#[derive(Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// ASCII text for n/an/ans/z/x+n fields, raw bytes for b fields.
    Bytes(Cow<'a, [u8]>),
    /// A numeric or track field as it came off the wire in BCD.
    Packed(PackedDigits<'a>),
}

impl<'a> Value<'a> {
    /// A text value (n, an, ans, z, x+n).
    pub fn text(text: impl Into<Cow<'a, str>>) -> Self {
        match text.into() {
            Cow::Borrowed(text) => Value::Bytes(Cow::Borrowed(text.as_bytes())),
            Cow::Owned(text) => Value::Bytes(Cow::Owned(text.into_bytes())),
        }
    }

    /// A binary value (b).
    pub fn bytes(bytes: impl Into<Cow<'a, [u8]>>) -> Self {
        Value::Bytes(bytes.into())
    }

    /// Length in characters (digits for BCD values, bytes otherwise).
    pub fn len(&self) -> usize {
        match self {
            Value::Bytes(bytes) => bytes.len(),
            Value::Packed(packed) => packed.digits,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The logical bytes: text characters or binary bytes; BCD is decoded (and copied).
    pub fn to_bytes(&self) -> Cow<'a, [u8]> {
        match self {
            Value::Bytes(bytes) => bytes.clone(),
            Value::Packed(packed) => Cow::Owned(
                bcd::nibbles(packed.packed, packed.digits, packed.pad)
                    .map(|n| bcd::char_of(n) as u8)
                    .collect(),
            ),
        }
    }

    /// The value as text, replacing bytes that are not UTF-8 (binary fields: use hex instead).
    pub fn to_text(&self) -> String {
        String::from_utf8_lossy(&self.to_bytes()).into_owned()
    }

    /// Parses a numeric value without allocating; `None` if it is not all digits or too long.
    pub fn to_u64(&self) -> Option<u64> {
        if self.len() > 19 || self.is_empty() {
            return None;
        }
        let mut total: u64 = 0;
        let mut add = |digit: u8| -> Option<()> {
            total = total.checked_mul(10)?.checked_add(u64::from(digit))?;
            Some(())
        };
        match self {
            Value::Bytes(bytes) => {
                for byte in bytes.iter() {
                    if !byte.is_ascii_digit() {
                        return None;
                    }
                    add(byte - b'0')?;
                }
            }
            Value::Packed(packed) => {
                for nibble in bcd::nibbles(packed.packed, packed.digits, packed.pad) {
                    if nibble > 9 {
                        return None;
                    }
                    add(nibble)?;
                }
            }
        }
        Some(total)
    }

    /// Turns borrowed data into owned data so the message can outlive its buffer.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Bytes(bytes) => Value::Bytes(Cow::Owned(bytes.into_owned())),
            packed @ Value::Packed(_) => Value::Bytes(Cow::Owned(packed.to_bytes().into_owned())),
        }
    }
}

impl fmt::Debug for Value<'_> {
    /// Values may be card data: Debug shows only the length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value(len {})", self.len())
    }
}

/// Capacity reserved up front: a POS request carries 15–25 fields.
const TYPICAL_FIELDS: usize = 24;

/// An ISO 8583 message. `Debug` lists field numbers only, never values.
#[derive(Clone)]
pub struct Message<'a> {
    pub mti: Mti,
    pub tpdu: Option<Tpdu>,
    /// Opaque bytes between TPDU and MTI (profile `header_len`).
    pub header: Cow<'a, [u8]>,
    present: Bitmap,
    /// Present fields sorted by number. A sorted vector rather than a 129-slot array keeps
    /// the message small (it is moved around a lot) and costs one allocation.
    fields: Vec<(u8, Value<'a>)>,
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("mti", &self.mti)
            .field("tpdu", &self.tpdu)
            .field("fields", &self.present.fields().collect::<Vec<_>>())
            .finish()
    }
}

fn missing(field: u8, name: &str) -> Error {
    Error::Field {
        field,
        name: name.into(),
        reason: FieldError::Missing,
    }
}

fn invalid(field: u8, name: &str, why: String) -> Error {
    Error::Field {
        field,
        name: name.into(),
        reason: FieldError::Subfield(why),
    }
}

impl<'a> Message<'a> {
    pub fn new(mti: Mti) -> Self {
        Self {
            mti,
            tpdu: None,
            header: Cow::Borrowed(&[]),
            present: Bitmap::default(),
            fields: Vec::with_capacity(TYPICAL_FIELDS),
        }
    }

    fn position(&self, field: u8) -> Result<usize, usize> {
        self.fields
            .binary_search_by_key(&field, |(number, _)| *number)
    }

    /// Sets (or replaces) a field. Values are checked against the profile when packed.
    pub fn set(&mut self, field: u8, value: Value<'a>) {
        if !(2..=128).contains(&field) {
            return;
        }
        self.present.set(field);
        // Unpacking sets fields in ascending order: append without searching.
        if self.fields.last().is_none_or(|(last, _)| *last < field) {
            self.fields.push((field, value));
            return;
        }
        match self.position(field) {
            Ok(index) => self.fields[index].1 = value,
            Err(index) => self.fields.insert(index, (field, value)),
        }
    }

    pub fn set_text(&mut self, field: u8, text: impl Into<Cow<'a, str>>) {
        self.set(field, Value::text(text));
    }

    pub fn set_bytes(&mut self, field: u8, bytes: impl Into<Cow<'a, [u8]>>) {
        self.set(field, Value::bytes(bytes));
    }

    pub fn remove(&mut self, field: u8) -> Option<Value<'a>> {
        self.present.clear(field);
        let index = self.position(field).ok()?;
        Some(self.fields.remove(index).1)
    }

    pub fn get(&self, field: u8) -> Option<&Value<'a>> {
        let index = self.position(field).ok()?;
        Some(&self.fields[index].1)
    }

    pub fn has(&self, field: u8) -> bool {
        self.present.is_set(field)
    }

    /// The fields present, ascending, with their values.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &Value<'a>)> {
        self.fields.iter().map(|(number, value)| (*number, value))
    }

    pub fn bitmap(&self) -> Bitmap {
        let mut bitmap = self.present;
        if bitmap.needs_secondary() {
            bitmap.set(1);
        }
        bitmap
    }

    /// A copy that owns all its data.
    pub fn into_owned(self) -> Message<'static> {
        let mut owned = Message::new(self.mti);
        owned.tpdu = self.tpdu;
        owned.header = Cow::Owned(self.header.into_owned());
        owned.fields = self
            .fields
            .into_iter()
            .map(|(number, value)| (number, value.into_owned()))
            .collect();
        owned.present = self.present;
        owned
    }

    fn number(&self, field: u8, name: &str) -> Result<u64, Error> {
        let value = self.get(field).ok_or_else(|| missing(field, name))?;
        value
            .to_u64()
            .ok_or_else(|| invalid(field, name, "not a number".into()))
    }

    fn text_of(&self, field: u8, name: &str) -> Result<String, Error> {
        Ok(self
            .get(field)
            .ok_or_else(|| missing(field, name))?
            .to_text())
    }

    /// Field 2.
    pub fn pan(&self) -> Result<Pan, Error> {
        Pan::parse(&self.text_of(2, "PAN")?).map_err(|why| invalid(2, "PAN", why))
    }

    pub fn set_pan(&mut self, pan: &Pan) {
        self.set_text(2, pan.expose().to_owned());
    }

    /// Field 3.
    pub fn processing_code(&self) -> Result<String, Error> {
        self.text_of(3, "processing code")
    }

    /// Field 4 in minor units.
    pub fn amount(&self) -> Result<u64, Error> {
        self.number(4, "amount")
    }

    pub fn set_amount(&mut self, amount_minor: u64) {
        self.set_text(4, format!("{amount_minor:012}"));
    }

    /// Field 11.
    pub fn stan(&self) -> Result<Stan, Error> {
        let value = self.number(11, "STAN")?;
        u32::try_from(value)
            .ok()
            .and_then(Stan::new)
            .ok_or_else(|| invalid(11, "STAN", "over 999999".into()))
    }

    pub fn set_stan(&mut self, stan: Stan) {
        self.set_text(11, stan.to_string());
    }

    /// Field 35.
    pub fn track2(&self) -> Result<Track2, Error> {
        Track2::parse(&self.text_of(35, "track 2")?).map_err(|why| invalid(35, "track 2", why))
    }

    /// Field 37.
    pub fn rrn(&self) -> Result<String, Error> {
        self.text_of(37, "RRN")
    }

    /// Field 38.
    pub fn auth_code(&self) -> Result<String, Error> {
        self.text_of(38, "authorization id response")
    }

    /// Field 39.
    pub fn response_code(&self) -> Result<String, Error> {
        self.text_of(39, "response code")
    }

    /// Field 41.
    pub fn terminal_id(&self) -> Result<String, Error> {
        self.text_of(41, "terminal id")
    }

    /// Field 42.
    pub fn merchant_id(&self) -> Result<String, Error> {
        self.text_of(42, "card acceptor id")
    }

    /// Field 55, as raw BER-TLV.
    pub fn icc_data(&self) -> Result<Cow<'a, [u8]>, Error> {
        Ok(self
            .get(55)
            .ok_or_else(|| missing(55, "ICC data"))?
            .to_bytes())
    }
}
