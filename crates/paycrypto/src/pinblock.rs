//! ISO 9564-1 PIN blocks, formats 0, 1, 3 (TDEA, 8 bytes) and 4 (AES, 16 bytes).
//!
//! Fill digits are an input (`fill`), not drawn here, so that this crate stays pure and the
//! tools can reproduce a block; the HSM and the PIN pad pass fresh random bytes through
//! [`fill_from_random`].

use crate::block::{Aes, Tdes};
use crate::error::{Error, Result, expect_len};
use crate::mac::PreparedTdesKey;
use crate::secret::{AesKey, PIN_MAX_DIGITS, PIN_MIN_DIGITS, Pan, Pin, PinBlock, TdesKey};
use crate::util::{array8, array16, digit_values, pack_nibbles, unpack_nibbles, xor_in_place};
use zeroize::Zeroizing;

/// Nibbles in a TDEA PIN block (and in each 8-byte half of the format-4 PIN field).
const NIBBLES: usize = 16;
/// Format 0/3 PAN field: the 12 rightmost PAN digits excluding the check digit.
const PAN_FIELD_DIGITS: usize = 12;
/// Fill nibble of format 0 (and 2).
const FILL_F: u8 = 0xF;
/// Fill nibble of the format-4 PIN field.
const FILL_A: u8 = 0xA;
/// Bytes of fill supplied for formats 1, 3 and 4.
pub const FILL_BYTES: usize = 8;

/// The ISO 9564-1 PIN block formats this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinBlockFormat {
    /// Format 0 (ANSI X9.8, VISA-1, ECI-1): PIN XOR PAN, fill F.
    Iso0,
    /// Format 1 (ECI-4): no PAN, transaction-unique fill.
    Iso1,
    /// Format 3: as format 0 with random fill A–F.
    Iso3,
    /// Format 4: AES, 16 bytes, PIN field and PAN field enciphered twice.
    Iso4,
}

impl PinBlockFormat {
    /// The control nibble (first nibble of the clear PIN field).
    pub fn control(self) -> u8 {
        match self {
            Self::Iso0 => 0,
            Self::Iso1 => 1,
            Self::Iso3 => 3,
            Self::Iso4 => 4,
        }
    }

    pub fn from_number(number: u8) -> Result<Self> {
        match number {
            0 => Ok(Self::Iso0),
            1 => Ok(Self::Iso1),
            3 => Ok(Self::Iso3),
            4 => Ok(Self::Iso4),
            _ => Err(Error::Invalid("PIN block format must be 0, 1, 3 or 4")),
        }
    }

    /// Whether the format binds the PIN to the PAN.
    pub fn uses_pan(self) -> bool {
        !matches!(self, Self::Iso1)
    }

    /// Whether the format is enciphered with AES (16-byte block) rather than TDEA (8 bytes).
    pub fn is_aes(self) -> bool {
        matches!(self, Self::Iso4)
    }
}

/// The key that enciphers a PIN block: TDEA for formats 0/1/3, AES for format 4.
#[derive(Debug, Clone, Copy)]
pub enum PinKey<'a> {
    Tdes(&'a TdesKey),
    /// A double-length TDEA key whose DES schedules were built once (an HSM's cached zone key):
    /// the same blocks as [`PinKey::Tdes`] of its key, without building the schedules per block.
    PreparedTdes(&'a PreparedTdesKey),
    Aes(&'a AesKey),
}

/// Turns random bytes into a valid fill for `format`: format 3 maps each nibble into A–F
/// (`A + n mod 6`; the small bias is irrelevant for fill), the others use the bytes as they are.
pub fn fill_from_random(format: PinBlockFormat, random: &[u8; FILL_BYTES]) -> [u8; FILL_BYTES] {
    match format {
        PinBlockFormat::Iso3 => {
            let nibbles: Vec<u8> = unpack_nibbles(random)
                .iter()
                .map(|n| FILL_A + n % 6)
                .collect();
            array8(&pack_nibbles(&nibbles))
        }
        _ => *random,
    }
}

/// Builds the clear 16-nibble PIN field `C N P..P fill..` for formats 0, 1, 3 and the first half
/// of format 4. Fill nibbles are taken from `fill` at the same nibble positions.
fn pin_field(
    format: PinBlockFormat,
    pin: &Pin,
    fill: &[u8; FILL_BYTES],
) -> Result<Zeroizing<Vec<u8>>> {
    let fill_nibbles = unpack_nibbles(fill);
    let mut nibbles = Zeroizing::new(Vec::with_capacity(NIBBLES));
    nibbles.push(format.control());
    nibbles.push(pin_len_nibble(pin.len())?);
    nibbles.extend_from_slice(pin.digit_values());
    let start = nibbles.len();
    for &supplied in &fill_nibbles[start..NIBBLES] {
        let nibble = match format {
            PinBlockFormat::Iso0 => FILL_F,
            PinBlockFormat::Iso4 => FILL_A,
            PinBlockFormat::Iso1 => supplied,
            PinBlockFormat::Iso3 if supplied >= FILL_A => supplied,
            PinBlockFormat::Iso3 => {
                return Err(Error::Invalid(
                    "--fill: format 3 fill digits must be A to F",
                ));
            }
        };
        nibbles.push(nibble);
    }
    Ok(Zeroizing::new(pack_nibbles(&nibbles)))
}

fn pin_len_nibble(len: usize) -> Result<u8> {
    if (PIN_MIN_DIGITS..=PIN_MAX_DIGITS).contains(&len) {
        // Bounded by PIN_MAX_DIGITS = 12, so the cast cannot truncate.
        Ok(len as u8)
    } else {
        Err(Error::Digits {
            what: "PIN",
            expected: "4 to 12",
            actual: len,
        })
    }
}

/// The format 0/3 PAN field: `0000` + the 12 rightmost digits excluding the check digit,
/// left-padded with zeros for short PANs (ISO 9564-1; psec rejects PANs under 13 digits instead).
fn tdes_pan_field(pan: &Pan) -> [u8; 8] {
    let digits = digit_values(pan.digits());
    let body = &digits[..digits.len() - 1];
    let take = body.len().min(PAN_FIELD_DIGITS);
    let mut nibbles = vec![0u8; NIBBLES - take];
    nibbles.extend_from_slice(&body[body.len() - take..]);
    array8(&pack_nibbles(&nibbles))
}

/// The format 4 PAN field: `M` + PAN left-padded to 12 digits + zero fill to 32 nibbles.
fn aes_pan_field(pan: &Pan) -> [u8; 16] {
    let digits = digit_values(pan.digits());
    let extra = digits.len().saturating_sub(PAN_FIELD_DIGITS);
    // `extra` is at most 19 - 12 = 7, so it fits a nibble.
    let mut nibbles = vec![extra as u8];
    nibbles.extend(std::iter::repeat_n(
        0,
        PAN_FIELD_DIGITS.saturating_sub(digits.len()),
    ));
    nibbles.extend_from_slice(&digits);
    nibbles.resize(2 * NIBBLES, 0);
    array16(&pack_nibbles(&nibbles))
}

fn require_pan(format: PinBlockFormat, pan: Option<&Pan>) -> Result<Option<&Pan>> {
    match (format.uses_pan(), pan) {
        (true, None) => Err(Error::Invalid(
            "PAN: required for PIN block formats 0, 3 and 4",
        )),
        (_, pan) => Ok(pan),
    }
}

/// The clear 8-byte PIN block of format 0, 1 or 3 (PIN field XOR PAN field).
pub fn clear_tdes_block(
    format: PinBlockFormat,
    pin: &Pin,
    pan: Option<&Pan>,
    fill: &[u8; FILL_BYTES],
) -> Result<Zeroizing<[u8; 8]>> {
    if format.is_aes() {
        return Err(Error::Invalid("format 4 has no clear 8-byte block"));
    }
    let pan = require_pan(format, pan)?;
    let mut block = Zeroizing::new(array8(&pin_field(format, pin, fill)?));
    if let (true, Some(pan)) = (format.uses_pan(), pan) {
        xor_in_place(&mut block[..], &tdes_pan_field(pan));
    }
    Ok(block)
}

/// Formats and enciphers a PIN block. `fill` supplies the fill for formats 1 and 3 and the
/// random half of format 4 (see [`fill_from_random`]); format 0 ignores it.
pub fn encrypt_pin_block(
    format: PinBlockFormat,
    key: PinKey<'_>,
    pin: &Pin,
    pan: Option<&Pan>,
    fill: &[u8; FILL_BYTES],
) -> Result<PinBlock> {
    match (format, key) {
        (PinBlockFormat::Iso4, PinKey::Aes(key)) => {
            let pan = require_pan(format, pan)?.ok_or(Error::Invalid("PAN: required"))?;
            encrypt_format4(key, pin, pan, fill)
        }
        (PinBlockFormat::Iso4, _) => Err(Error::Invalid("format 4 needs an AES key")),
        (_, PinKey::Aes(_)) => Err(Error::Invalid("formats 0, 1 and 3 need a TDES key")),
        (_, PinKey::Tdes(key)) => {
            let clear = clear_tdes_block(format, pin, pan, fill)?;
            PinBlock::new(&Tdes::new(key).encrypt(&clear))
        }
        (_, PinKey::PreparedTdes(key)) => {
            let clear = clear_tdes_block(format, pin, pan, fill)?;
            PinBlock::new(&key.encrypt_block(&clear))
        }
    }
}

fn encrypt_format4(
    key: &AesKey,
    pin: &Pin,
    pan: &Pan,
    fill: &[u8; FILL_BYTES],
) -> Result<PinBlock> {
    let mut field = Zeroizing::new([0u8; 16]);
    field[..8].copy_from_slice(&pin_field(PinBlockFormat::Iso4, pin, fill)?);
    field[8..].copy_from_slice(fill);
    let cipher = Aes::new(key);
    let mut intermediate = Zeroizing::new(cipher.encrypt(&field));
    xor_in_place(&mut intermediate[..], &aes_pan_field(pan));
    PinBlock::new(&cipher.encrypt(&intermediate))
}

/// Deciphers and checks a PIN block, returning the PIN. Rejects a wrong control nibble, a PIN
/// length outside 4..=12, non-decimal PIN digits and fill that the format does not allow; a
/// wrong PAN shows up as one of those (the block cannot tell a wrong PAN from a wrong key).
pub fn decrypt_pin_block(
    format: PinBlockFormat,
    key: PinKey<'_>,
    block: &PinBlock,
    pan: Option<&Pan>,
) -> Result<Pin> {
    let pan = require_pan(format, pan)?;
    match (format, key) {
        (PinBlockFormat::Iso4, PinKey::Aes(key)) => {
            expect_len(
                "PIN block",
                "16",
                block.as_bytes().len(),
                block.as_bytes().len() == 16,
            )?;
            let pan = pan.ok_or(Error::Invalid("PAN: required"))?;
            let cipher = Aes::new(key);
            let mut intermediate = Zeroizing::new(cipher.decrypt(&array16(block.as_bytes())));
            xor_in_place(&mut intermediate[..], &aes_pan_field(pan));
            let field = Zeroizing::new(cipher.decrypt(&intermediate));
            parse_pin_field(format, &field[..8])
        }
        (PinBlockFormat::Iso4, _) => Err(Error::Invalid("format 4 needs an AES key")),
        (_, PinKey::Aes(_)) => Err(Error::Invalid("formats 0, 1 and 3 need a TDES key")),
        (_, PinKey::Tdes(key)) => {
            decrypt_tdes_block(format, |bytes| Tdes::new(key).decrypt(bytes), block, pan)
        }
        (_, PinKey::PreparedTdes(key)) => {
            decrypt_tdes_block(format, |bytes| key.decrypt_block(bytes), block, pan)
        }
    }
}

/// Deciphers a format 0, 1 or 3 block with `decrypt` (TDEA under the PIN key) and checks it.
fn decrypt_tdes_block(
    format: PinBlockFormat,
    decrypt: impl FnOnce(&[u8; 8]) -> [u8; 8],
    block: &PinBlock,
    pan: Option<&Pan>,
) -> Result<Pin> {
    expect_len(
        "PIN block",
        "8",
        block.as_bytes().len(),
        block.as_bytes().len() == 8,
    )?;
    let mut clear = Zeroizing::new(decrypt(&array8(block.as_bytes())));
    if let (true, Some(pan)) = (format.uses_pan(), pan) {
        xor_in_place(&mut clear[..], &tdes_pan_field(pan));
    }
    parse_pin_field(format, &clear[..])
}

/// Checks a clear 8-byte PIN field (after removing the PAN) and extracts the PIN. A field of
/// another length is refused (the fuzz target `pin_block` found that a short one panicked).
pub fn parse_pin_field(format: PinBlockFormat, field: &[u8]) -> Result<Pin> {
    expect_len("PIN field", "8", field.len(), field.len() == NIBBLES / 2)?;
    let nibbles = Zeroizing::new(unpack_nibbles(field));
    if nibbles[0] != format.control() {
        return Err(Error::PinBlock("control nibble does not match the format"));
    }
    let len = usize::from(nibbles[1]);
    if !(PIN_MIN_DIGITS..=PIN_MAX_DIGITS).contains(&len) {
        return Err(Error::PinBlock("PIN length out of range 4 to 12"));
    }
    let digits = &nibbles[2..2 + len];
    if digits.iter().any(|d| *d > 9) {
        return Err(Error::PinBlock("PIN digit is not decimal"));
    }
    let fill = &nibbles[2 + len..NIBBLES];
    let fill_ok = match format {
        PinBlockFormat::Iso0 => fill.iter().all(|n| *n == FILL_F),
        PinBlockFormat::Iso1 => true,
        PinBlockFormat::Iso3 => fill.iter().all(|n| *n >= FILL_A),
        PinBlockFormat::Iso4 => fill.iter().all(|n| *n == FILL_A),
    };
    if !fill_ok {
        return Err(Error::PinBlock("fill digits not allowed by the format"));
    }
    Ok(Pin::from_digit_values(digits.to_vec()))
}
