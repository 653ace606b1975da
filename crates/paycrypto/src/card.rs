//! Card verification values: Visa CVV / CVV2 / iCVV (also Mastercard CVC), Visa PVV,
//! IBM 3624 natural PIN and offset, and the Luhn check digit.

use crate::block::{Tdes, des_encrypt};
use crate::error::{Error, Result, expect_len};
use crate::mac::PreparedTdesKey;
use crate::secret::{Pan, Pin, TdesKey};
use crate::util::{all_decimal, array8, digit_values, pack_nibbles, unpack_nibbles, xor8};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Digits of a CVV / CVV2 / iCVV.
pub const CVV_DIGITS: usize = 3;
/// Digits of a Visa PVV.
pub const PVV_DIGITS: usize = 4;
/// CVV input is PAN || expiry || service code right-padded with '0' to this many digits.
const CVV_INPUT_DIGITS: usize = 32;
/// PAN digits in the PVV transformed security parameter.
const PVV_PAN_DIGITS: usize = 11;
/// Service code used for CVV2.
pub const CVV2_SERVICE_CODE: &str = "000";
/// Service code used for iCVV (the CVV in chip track-2 equivalent data).
pub const ICVV_SERVICE_CODE: &str = "999";
/// Nibbles of IBM 3624 validation data after padding.
const VALIDATION_NIBBLES: usize = 16;

fn check_digits(
    what: &'static str,
    text: &str,
    expected: &'static str,
    ok_len: bool,
) -> Result<()> {
    if !ok_len {
        return Err(Error::Digits {
            what,
            expected,
            actual: text.len(),
        });
    }
    if !all_decimal(text) {
        return Err(Error::NotDecimal(what));
    }
    Ok(())
}

/// Visa decimalisation: the decimal nibbles left to right, then the nibbles A–F minus 10.
pub fn decimalise(bytes: &[u8]) -> Vec<u8> {
    let nibbles = unpack_nibbles(bytes);
    let decimal = nibbles.iter().copied().filter(|n| *n <= 9);
    let letters = nibbles.iter().copied().filter(|n| *n > 9).map(|n| n - 10);
    decimal.chain(letters).collect()
}

fn digits_text(values: &[u8]) -> String {
    values.iter().map(|d| char::from(b'0' + d)).collect()
}

/// CVV / CVC with a CVK pair (KA || KB, 16 bytes), expiry `YYMM` as printed in track 2 and the
/// 3-digit service code. Use [`CVV2_SERVICE_CODE`] for CVV2 and [`ICVV_SERVICE_CODE`] for iCVV.
pub fn cvv(cvk: &TdesKey, pan: &Pan, expiry: &str, service_code: &str) -> Result<String> {
    expect_len("CVK", "16", cvk.len(), cvk.len() == 16)?;
    check_digits("expiry", expiry, "4", expiry.len() == 4)?;
    check_digits("service code", service_code, "3", service_code.len() == 3)?;
    let mut digits = Zeroizing::new(digit_values(&format!(
        "{}{expiry}{service_code}",
        pan.digits()
    )));
    digits.resize(CVV_INPUT_DIGITS, 0);
    let packed = Zeroizing::new(pack_nibbles(&digits));
    let (block1, block2) = (array8(&packed[..8]), array8(&packed[8..]));
    let ka = &cvk.expose()[..8];
    let step = xor8(&des_encrypt(ka, &block1), &block2);
    let result = Tdes::new(cvk).encrypt(&step);
    Ok(digits_text(&decimalise(&result)[..CVV_DIGITS]))
}

/// Visa PVV: TSP = 11 rightmost PAN digits excluding the check digit || PVKI || 4 leftmost PIN
/// digits, enciphered under the PVK pair and decimalised to 4 digits.
pub fn pvv(pvk: &TdesKey, pan: &Pan, pvki: u8, pin: &Pin) -> Result<String> {
    pvv_under(|tsp| Tdes::new(pvk).encrypt(tsp), pan, pvki, pin)
}

/// [`pvv`] under a PVK pair whose DES schedules were built once (the HSM keeps it prepared).
pub fn pvv_prepared(pvk: &PreparedTdesKey, pan: &Pan, pvki: u8, pin: &Pin) -> Result<String> {
    pvv_under(|tsp| pvk.encrypt_block(tsp), pan, pvki, pin)
}

/// The PVV with `encrypt` as the TDEA encipherment under the PVK pair.
fn pvv_under(
    encrypt: impl FnOnce(&[u8; 8]) -> [u8; 8],
    pan: &Pan,
    pvki: u8,
    pin: &Pin,
) -> Result<String> {
    if pvki > 9 {
        return Err(Error::Invalid("PVKI must be a single digit 0 to 9"));
    }
    let pan_digits = digit_values(pan.digits());
    let body = &pan_digits[..pan_digits.len() - 1];
    if body.len() < PVV_PAN_DIGITS {
        return Err(Error::Digits {
            what: "PAN",
            expected: "at least 12 for PVV",
            actual: pan_digits.len(),
        });
    }
    let mut tsp = Zeroizing::new(body[body.len() - PVV_PAN_DIGITS..].to_vec());
    tsp.push(pvki);
    tsp.extend_from_slice(&pin.digit_values()[..4]);
    let result = encrypt(&array8(&pack_nibbles(&tsp)));
    Ok(digits_text(&decimalise(&result)[..PVV_DIGITS]))
}

/// Compares a computed and an expected PVV, offset or CVV in constant time.
pub fn digits_equal(expected: &str, computed: &str) -> bool {
    expected.len() == computed.len() && bool::from(expected.as_bytes().ct_eq(computed.as_bytes()))
}

/// An IBM 3624 decimalisation table: 16 decimal digits, one per nibble value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecimalisationTable([u8; 16]);

impl DecimalisationTable {
    /// The common table `0123456789012345`.
    pub const DEFAULT: Self = Self([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5]);

    pub fn new(digits: &str) -> Result<Self> {
        check_digits("decimalisation table", digits, "16", digits.len() == 16)?;
        let mut table = [0u8; 16];
        table.copy_from_slice(&digit_values(digits));
        Ok(Self(table))
    }
}

/// The IBM 3624 natural PIN of `length` digits. `validation_data` is 1–16 hex digits (usually a
/// slice of the PAN), right-padded to 16 with `pad` (a hex digit, usually F) and enciphered under
/// the PVK (single DES for an 8-byte key, TDEA otherwise, as psec does).
pub fn ibm3624_natural_pin(
    pvk: &TdesKey,
    validation_data: &str,
    pad: char,
    table: &DecimalisationTable,
    length: usize,
) -> Result<Vec<u8>> {
    if !(crate::secret::PIN_MIN_DIGITS..=crate::secret::PIN_MAX_DIGITS).contains(&length) {
        return Err(Error::Digits {
            what: "PIN",
            expected: "4 to 12",
            actual: length,
        });
    }
    let nibbles = validation_nibbles(validation_data, pad)?;
    let result = match pvk.len() {
        8 => des_encrypt(pvk.expose(), &array8(&pack_nibbles(&nibbles))),
        _ => Tdes::new(pvk).encrypt(&array8(&pack_nibbles(&nibbles))),
    };
    Ok(unpack_nibbles(&result)[..length]
        .iter()
        .map(|n| table.0[usize::from(*n)])
        .collect())
}

fn validation_nibbles(validation_data: &str, pad: char) -> Result<Vec<u8>> {
    let len = validation_data.len();
    if len == 0 || len > VALIDATION_NIBBLES {
        return Err(Error::Digits {
            what: "validation data",
            expected: "1 to 16 hex",
            actual: len,
        });
    }
    let pad = pad
        .to_digit(16)
        .ok_or(Error::Invalid("pad: must be one hex digit"))?;
    let mut nibbles: Vec<u8> = validation_data
        .chars()
        .map(|c| c.to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()
        .ok_or(Error::Invalid("validation data: must be hexadecimal"))?;
    // `pad` is a hex digit, so it fits in a nibble.
    nibbles.resize(VALIDATION_NIBBLES, pad as u8);
    Ok(nibbles)
}

/// The IBM 3624 offset for a customer-selected PIN: `(PIN - natural) mod 10` digit by digit.
pub fn ibm3624_offset(
    pvk: &TdesKey,
    validation_data: &str,
    pad: char,
    table: &DecimalisationTable,
    pin: &Pin,
) -> Result<String> {
    let natural = Zeroizing::new(ibm3624_natural_pin(
        pvk,
        validation_data,
        pad,
        table,
        pin.len(),
    )?);
    let offset: Vec<u8> = pin
        .digit_values()
        .iter()
        .zip(natural.iter())
        .map(|(p, n)| (10 + p - n) % 10)
        .collect();
    Ok(digits_text(&offset))
}

/// Checks a PIN against an IBM 3624 offset (in constant time over the digits).
pub fn ibm3624_verify(
    pvk: &TdesKey,
    validation_data: &str,
    pad: char,
    table: &DecimalisationTable,
    pin: &Pin,
    offset: &str,
) -> Result<bool> {
    check_digits(
        "offset",
        offset,
        "the PIN length",
        offset.len() == pin.len(),
    )?;
    let computed = ibm3624_offset(pvk, validation_data, pad, table, pin)?;
    Ok(digits_equal(offset, &computed))
}

/// The Luhn (mod 10) check digit for `body` (the number without its check digit).
pub fn luhn_check_digit(body: &str) -> Result<u8> {
    if body.is_empty() || !all_decimal(body) {
        return Err(Error::NotDecimal("number"));
    }
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(index, byte)| {
            let digit = u32::from(byte - b'0');
            // Counting from the right of the body, even positions sit next to the check digit
            // and get doubled.
            if index % 2 == 0 {
                (digit * 2) / 10 + (digit * 2) % 10
            } else {
                digit
            }
        })
        .sum();
    // `(10 - sum % 10) % 10` is a single digit.
    Ok(((10 - sum % 10) % 10) as u8)
}

/// Whether `number` (ending in its check digit) passes the Luhn check.
pub fn luhn_valid(number: &str) -> Result<bool> {
    if number.len() < 2 {
        return Err(Error::Digits {
            what: "number",
            expected: "at least 2",
            actual: number.len(),
        });
    }
    let (body, check) = number.split_at(number.len() - 1);
    let expected = luhn_check_digit(body)?;
    if !all_decimal(check) {
        return Err(Error::NotDecimal("number"));
    }
    Ok(check.as_bytes()[0] - b'0' == expected)
}
