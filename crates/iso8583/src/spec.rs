//! Spec files: a profile is a table of field definitions, loaded from TOML or JSON.
//!
//! The built-in profiles are spec files too (see `profiles/`), loaded through the same code.

use crate::bcd::Pad;
use crate::error::SpecError;
use serde::Deserialize;

/// Field numbers run 2–128 (bit 1 is the secondary bitmap itself).
pub const MAX_FIELD: u8 = 128;

/// Character class of a field (STANDARDS.md §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Digits only.
    N,
    /// Letters, digits and space.
    An,
    /// Printable ASCII.
    Ans,
    /// Raw bytes.
    B,
    /// Track-2 code set: digits and the `=` separator.
    Z,
    /// `C` or `D` then digits (`x+n`, fees and net settlement).
    Xn,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::N => "n",
            Kind::An => "an",
            Kind::Ans => "ans",
            Kind::B => "b",
            Kind::Z => "z",
            Kind::Xn => "x+n",
        }
    }

    /// Whether a character of a text value is allowed at `position`.
    pub fn allows(self, position: usize, byte: u8) -> bool {
        match self {
            Kind::N => byte.is_ascii_digit(),
            Kind::An => byte.is_ascii_alphanumeric() || byte == b' ',
            Kind::Ans => (0x20..=0x7E).contains(&byte),
            Kind::B => true,
            Kind::Z => byte.is_ascii_digit() || byte == b'=',
            Kind::Xn if position == 0 => byte == b'C' || byte == b'D',
            Kind::Xn => byte.is_ascii_digit(),
        }
    }
}

/// How the length is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LengthType {
    Fixed,
    Llvar,
    Lllvar,
    Llllvar,
}

impl LengthType {
    /// Number of decimal digits in the prefix (0 for fixed).
    pub fn digits(self) -> usize {
        match self {
            LengthType::Fixed => 0,
            LengthType::Llvar => 2,
            LengthType::Lllvar => 3,
            LengthType::Llllvar => 4,
        }
    }

    /// The largest length the prefix can express.
    pub fn capacity(self) -> usize {
        match self {
            LengthType::Fixed => usize::MAX,
            LengthType::Llvar => 99,
            LengthType::Lllvar => 999,
            LengthType::Llllvar => 9999,
        }
    }
}

/// How the data bytes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// One ASCII character per character (n, an, ans, z, x+n).
    Ascii,
    /// Packed BCD, two digits per byte (n, z).
    Bcd,
    /// Raw bytes (b).
    Binary,
    /// Bytes as uppercase hex text, two characters per byte (b).
    Hex,
}

/// How a variable length prefix is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrefixEncoding {
    /// Decimal digits as ASCII (`LL` = 2 bytes, `LLL` = 3, `LLLL` = 4).
    Ascii,
    /// Right-aligned BCD (`LL` = 1 byte, `LLL`/`LLLL` = 2).
    Bcd,
    /// Big-endian binary (`LL` = 1 byte, `LLL`/`LLLL` = 2).
    Binary,
}

impl PrefixEncoding {
    pub fn width(self, length: LengthType) -> usize {
        match (self, length) {
            (_, LengthType::Fixed) => 0,
            (PrefixEncoding::Ascii, other) => other.digits(),
            (_, LengthType::Llvar) => 1,
            (_, _) => 2,
        }
    }
}

/// What to hide in dumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    #[default]
    None,
    /// A card number: first 6 / last 4 at most.
    Pan,
    /// Track data: PAN masked as above, everything after the separator hidden.
    Track,
    /// Fully hidden (PIN block, track 1, keys).
    Secret,
    /// EMV TLV: objects the dictionary marks as card data are hidden.
    Icc,
}

/// How a field splits into sub-fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    #[default]
    None,
    /// Fixed-width pieces in order; a shorter value simply ends early.
    Positional,
    /// `PAN = YYMM service-code discretionary`.
    Track2,
    /// BER-TLV (field 55).
    Tlv,
}

/// One positional sub-field; `len = 0` means "the rest of the field".
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubfieldSpec {
    pub id: u8,
    pub name: String,
    #[serde(default)]
    pub len: usize,
}

/// A field definition as written in a spec file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldDef {
    number: u32,
    name: String,
    #[serde(rename = "type")]
    kind: Kind,
    length: LengthType,
    max: usize,
    encoding: Option<Encoding>,
    prefix: Option<PrefixEncoding>,
    pad: Option<Pad>,
    #[serde(default)]
    sensitive: Sensitivity,
    #[serde(default)]
    layout: Layout,
    #[serde(default)]
    subfields: Vec<SubfieldSpec>,
}

/// The MTI on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MtiEncoding {
    /// 4 ASCII digits.
    Ascii,
    /// 2 BCD bytes.
    Bcd,
}

/// The bitmaps on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BitmapEncoding {
    /// 8 raw bytes each.
    Binary,
    /// 16 uppercase hex characters each.
    Hex,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileDef {
    name: String,
    #[serde(default)]
    description: String,
    mti: MtiEncoding,
    bitmap: BitmapEncoding,
    #[serde(default = "default_true")]
    secondary_bitmap: bool,
    #[serde(default)]
    tpdu: bool,
    #[serde(default)]
    header_len: usize,
    numeric: Encoding,
    prefix: PrefixEncoding,
    #[serde(default)]
    bcd_filler: u8,
    field: Vec<FieldDef>,
}

fn default_true() -> bool {
    true
}

/// A checked field definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    pub number: u8,
    pub name: String,
    pub kind: Kind,
    pub length: LengthType,
    /// Maximum (or fixed) length: digits for n/z, characters for an/ans/x+n, bytes for b.
    pub max: usize,
    pub encoding: Encoding,
    pub prefix: PrefixEncoding,
    pub pad: Pad,
    /// Pad nibble written for odd-length BCD values (0 or 0xF).
    pub filler: u8,
    pub sensitive: Sensitivity,
    pub layout: Layout,
    pub subfields: Vec<SubfieldSpec>,
}

/// A loaded, checked profile: everything needed to pack and unpack one counterpart's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub mti: MtiEncoding,
    pub bitmap: BitmapEncoding,
    pub secondary_bitmap: bool,
    pub tpdu: bool,
    pub header_len: usize,
    fields: Vec<Option<FieldSpec>>,
}

/// Longest opaque header we accept between TPDU and MTI.
pub const MAX_HEADER_LEN: usize = 64;

impl Profile {
    /// Loads a spec written in TOML.
    pub fn from_toml(text: &str) -> Result<Self, SpecError> {
        let def: ProfileDef = toml::from_str(text).map_err(|error| SpecError::Syntax {
            format: "TOML",
            message: error.to_string(),
        })?;
        Self::from_def(def)
    }

    /// Loads a spec written in JSON (same shape as the TOML).
    pub fn from_json(text: &str) -> Result<Self, SpecError> {
        let def: ProfileDef = serde_json::from_str(text).map_err(|error| SpecError::Syntax {
            format: "JSON",
            message: error.to_string(),
        })?;
        Self::from_def(def)
    }

    /// The field definition for `number`, if the profile has one.
    pub fn field(&self, number: u8) -> Option<&FieldSpec> {
        self.fields
            .get(usize::from(number))
            .and_then(Option::as_ref)
    }

    /// All defined fields, ascending.
    pub fn fields(&self) -> impl Iterator<Item = &FieldSpec> {
        self.fields.iter().flatten()
    }

    fn from_def(def: ProfileDef) -> Result<Self, SpecError> {
        if def.header_len > MAX_HEADER_LEN {
            return Err(SpecError::Profile(format!(
                "header_len {} is over {MAX_HEADER_LEN}",
                def.header_len
            )));
        }
        if def.bcd_filler != 0 && def.bcd_filler != 0xF {
            return Err(SpecError::Profile("bcd_filler must be 0 or 15 (F)".into()));
        }
        let mut fields: Vec<Option<FieldSpec>> = vec![None; usize::from(MAX_FIELD) + 1];
        for field in def.field {
            let number = field.number;
            let spec = check_field(field, def.numeric, def.prefix, def.bcd_filler)?;
            let slot = &mut fields[usize::from(spec.number)];
            if slot.is_some() {
                return Err(SpecError::Field {
                    field: number,
                    reason: "defined twice".into(),
                });
            }
            if spec.number > 64 && !def.secondary_bitmap {
                return Err(SpecError::Field {
                    field: number,
                    reason: "above 64 without a secondary bitmap".into(),
                });
            }
            *slot = Some(spec);
        }
        Ok(Self {
            name: def.name,
            description: def.description,
            mti: def.mti,
            bitmap: def.bitmap,
            secondary_bitmap: def.secondary_bitmap,
            tpdu: def.tpdu,
            header_len: def.header_len,
            fields,
        })
    }
}

fn check_field(
    def: FieldDef,
    numeric: Encoding,
    prefix: PrefixEncoding,
    filler: u8,
) -> Result<FieldSpec, SpecError> {
    let field = def.number;
    let fail = |reason: String| SpecError::Field { field, reason };
    let number = u8::try_from(field)
        .ok()
        .filter(|n| (2..=MAX_FIELD).contains(n))
        .ok_or_else(|| fail("field numbers run from 2 to 128".into()))?;
    let encoding = def.encoding.unwrap_or(match def.kind {
        Kind::N | Kind::Z => numeric,
        Kind::B => Encoding::Binary,
        Kind::An | Kind::Ans | Kind::Xn => Encoding::Ascii,
    });
    let allowed = match def.kind {
        Kind::N | Kind::Z => matches!(encoding, Encoding::Ascii | Encoding::Bcd),
        Kind::B => matches!(encoding, Encoding::Binary | Encoding::Hex),
        Kind::An | Kind::Ans | Kind::Xn => encoding == Encoding::Ascii,
    };
    if !allowed {
        return Err(fail(format!(
            "encoding {encoding:?} does not fit type {}",
            def.kind.name()
        )));
    }
    if def.max == 0 || def.max > def.length.capacity() {
        return Err(fail(format!(
            "max {} does not fit a {:?} length",
            def.max, def.length
        )));
    }
    check_layout(&def).map_err(fail)?;
    Ok(FieldSpec {
        number,
        name: def.name,
        kind: def.kind,
        length: def.length,
        max: def.max,
        encoding,
        prefix: def.prefix.unwrap_or(prefix),
        // Fixed numerics are right-justified (pad left); track data is left-aligned.
        pad: def.pad.unwrap_or(if def.kind == Kind::Z {
            Pad::Right
        } else {
            Pad::Left
        }),
        filler,
        sensitive: def.sensitive,
        layout: def.layout,
        subfields: def.subfields,
    })
}

fn check_layout(def: &FieldDef) -> Result<(), String> {
    match def.layout {
        Layout::Positional => {
            if def.subfields.is_empty() {
                return Err("positional layout without sub-fields".into());
            }
            let total: usize = def.subfields.iter().map(|sub| sub.len).sum();
            if total > def.max {
                return Err(format!(
                    "sub-fields add up to {total}, over the maximum {}",
                    def.max
                ));
            }
            let open_ended = def.subfields.iter().position(|sub| sub.len == 0);
            if open_ended.is_some_and(|index| index + 1 != def.subfields.len()) {
                return Err("only the last sub-field may be open-ended (len 0)".into());
            }
            Ok(())
        }
        Layout::Track2 if def.kind != Kind::Z => Err("track2 layout needs type z".into()),
        Layout::Tlv if def.kind != Kind::B => Err("tlv layout needs type b".into()),
        _ => Ok(()),
    }
}
