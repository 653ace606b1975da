//! Sub-fields and the human-readable dump, with card data masked.

use crate::card::{mask_digits, mask_track};
use crate::codec::hex_encode_into;
use crate::error::{Error, FieldError};
use crate::message::{Message, Value};
use crate::spec::{FieldSpec, Kind, Layout, Profile, Sensitivity};
use std::fmt::Write;

/// One sub-field as shown in a dump: `60.1`, or a TLV tag such as `9F26`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subfield {
    pub id: String,
    pub name: String,
    /// The value, masked when it is card data.
    pub value: String,
}

fn hex(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    hex_encode_into(bytes, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A value in the clear: text for character fields, uppercase hex for binary ones.
pub fn clear_text(spec: &FieldSpec, value: &Value<'_>) -> String {
    match spec.kind {
        Kind::B => hex(&value.to_bytes()),
        _ => value.to_text(),
    }
}

/// A value as it may be shown to people and logs.
pub fn masked_text(spec: &FieldSpec, value: &Value<'_>) -> String {
    let bytes = value.to_bytes();
    match spec.sensitive {
        Sensitivity::None => clear_text(spec, value),
        Sensitivity::Pan => mask_digits(&bytes),
        Sensitivity::Track => mask_track(&bytes),
        Sensitivity::Secret => format!("**** ({} bytes, masked)", bytes.len()),
        Sensitivity::Icc => format!("({} bytes of BER-TLV)", bytes.len()),
    }
}

impl Profile {
    /// Splits a field by its layout; values are masked where they are card data.
    pub fn subfields(&self, number: u8, value: &Value<'_>) -> Result<Vec<Subfield>, Error> {
        let Some(spec) = self.field(number) else {
            return Ok(Vec::new());
        };
        let bytes = value.to_bytes();
        let fail = |reason: FieldError| Error::Field {
            field: number,
            name: spec.name.clone(),
            reason,
        };
        match spec.layout {
            Layout::None => Ok(Vec::new()),
            Layout::Positional => Ok(positional(spec, &bytes)
                .map(|(sub, text)| Subfield {
                    id: format!("{number}.{}", sub.id),
                    name: sub.name.clone(),
                    value: String::from_utf8_lossy(text).into_owned(),
                })
                .collect()),
            Layout::Track2 => Ok(track2_parts(&bytes, spec.sensitive != Sensitivity::None)),
            Layout::Tlv => {
                let objects = emv::tlv::parse(&bytes).map_err(|error| fail(error.into()))?;
                Ok(objects
                    .iter()
                    .map(|object| Subfield {
                        id: object.tag.to_string(),
                        name: emv::dict::lookup(object.tag)
                            .map_or("(not in dictionary)", |info| info.name)
                            .into(),
                        value: emv::display_value(object.tag, object.value),
                    })
                    .collect())
            }
        }
    }

    /// One positional sub-field in the clear (e.g. 60.1, the UnionPay transaction type code).
    pub fn subfield_text(&self, message: &Message<'_>, number: u8, id: u8) -> Option<String> {
        let spec = self.field(number)?;
        let bytes = message.get(number)?.to_bytes();
        positional(spec, &bytes)
            .find(|(sub, _)| sub.id == id)
            .map(|(_, text)| String::from_utf8_lossy(text).into_owned())
    }

    /// A human-readable dump: one line per element, number, name and (masked) value, with
    /// sub-fields indented below their field.
    pub fn dump(&self, message: &Message<'_>) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "MTI     {}", message.mti.describe());
        if let Some(tpdu) = message.tpdu {
            let _ = writeln!(out, "TPDU    {}", hex(&tpdu.to_bytes()));
        }
        if !message.header.is_empty() {
            let _ = writeln!(out, "header  {}", hex(&message.header));
        }
        let bitmap = message.bitmap();
        let mut bitmap_text = hex(&bitmap.primary_bytes());
        if bitmap.needs_secondary() {
            bitmap_text.push(' ');
            bitmap_text.push_str(&hex(&bitmap.secondary_bytes()));
        }
        let _ = writeln!(out, "bitmap  {bitmap_text}");
        for (number, value) in message.iter() {
            self.dump_field(number, value, &mut out);
        }
        out
    }

    fn dump_field(&self, number: u8, value: &Value<'_>, out: &mut String) {
        let Some(spec) = self.field(number) else {
            let _ = writeln!(out, "{number:03}     (not in profile {})", self.name);
            return;
        };
        let _ = writeln!(
            out,
            "{number:03}     {:<34} {}",
            spec.name,
            masked_text(spec, value)
        );
        match self.subfields(number, value) {
            Ok(subfields) => {
                for sub in subfields {
                    let _ = writeln!(out, "  {:<6}  {:<32} {}", sub.id, sub.name, sub.value);
                }
            }
            Err(error) => {
                let _ = writeln!(out, "  (sub-fields unreadable: {error})");
            }
        }
    }
}

fn positional<'s, 'b>(
    spec: &'s FieldSpec,
    bytes: &'b [u8],
) -> impl Iterator<Item = (&'s crate::spec::SubfieldSpec, &'b [u8])> {
    let mut offset = 0;
    spec.subfields.iter().map_while(move |sub| {
        if offset >= bytes.len() {
            return None;
        }
        let end = if sub.len == 0 {
            bytes.len()
        } else {
            (offset + sub.len).min(bytes.len())
        };
        let text = &bytes[offset..end];
        offset = end;
        Some((sub, text))
    })
}

fn track2_parts(bytes: &[u8], masked: bool) -> Vec<Subfield> {
    let separator = bytes.iter().position(|&b| b == b'=').unwrap_or(bytes.len());
    let rest = bytes.get(separator + 1..).unwrap_or(&[]);
    let pan = &bytes[..separator];
    let expiry = rest.get(..4.min(rest.len())).unwrap_or(&[]);
    let service = rest.get(4..7.min(rest.len()).max(4)).unwrap_or(&[]);
    let discretionary = rest.get(7..).unwrap_or(&[]);
    let show = |text: &[u8], hide: bool| {
        if hide {
            "*".repeat(text.len())
        } else {
            String::from_utf8_lossy(text).into_owned()
        }
    };
    let part = |id: &str, name: &str, value: String| Subfield {
        id: id.into(),
        name: name.into(),
        value,
    };
    vec![
        part(
            "35.1",
            "PAN",
            if masked {
                mask_digits(pan)
            } else {
                show(pan, false)
            },
        ),
        part("35.2", "Expiry date (YYMM)", show(expiry, masked)),
        part("35.3", "Service code", show(service, false)),
        part("35.4", "Discretionary data", show(discretionary, masked)),
    ]
}
