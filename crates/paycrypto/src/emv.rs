//! EMV issuer cryptography: ICC master keys (options A and B), session keys, ARQC, ARPC.

use crate::error::{Error, Result, expect_len};
use crate::mac::{Padding, PreparedTdesKey, macs_equal};
use crate::secret::{Pan, SecretBytes, TdesKey};
use crate::util::{array8, digit_values, odd_parity, pack_nibbles, unpack_nibbles, xor8};
use sha1::{Digest, Sha1};

/// Digits of the option-A input Y.
const OPTION_A_DIGITS: usize = 16;
/// PANs longer than this use option B (pyemv's rule: the PAN alone, not PAN || PSN).
const OPTION_A_MAX_PAN_DIGITS: usize = 16;
/// Largest PAN sequence number (two decimal digits).
pub const PSN_MAX: u8 = 99;

fn check_16(key: &TdesKey, what: &'static str) -> Result<()> {
    expect_len(what, "16", key.len(), key.len() == 16)
}

/// The digits of PAN || PSN (PSN as two digits).
fn pan_psn_digits(pan: &Pan, psn: u8) -> Result<Vec<u8>> {
    if psn > PSN_MAX {
        return Err(Error::Invalid("PSN must be 00 to 99"));
    }
    let mut digits = digit_values(pan.digits());
    digits.extend_from_slice(&[psn / 10, psn % 10]);
    Ok(digits)
}

/// `parity(TDEA(IMK)[Y] || TDEA(IMK)[Y XOR FF..FF])` for a 16-digit Y.
fn master_key_from_y(imk: &PreparedTdesKey, y_digits: &[u8]) -> Result<TdesKey> {
    let y = array8(&pack_nibbles(y_digits));
    let left = imk.encrypt_block(&y);
    let right = imk.encrypt_block(&xor8(&y, &[0xFF; 8]));
    let mut key = SecretBytes::from_vec([left, right].concat())
        .expose()
        .to_vec();
    odd_parity(&mut key);
    let key = SecretBytes::from_vec(key);
    TdesKey::new(key.expose())
}

fn prepare(key: &TdesKey, what: &'static str) -> Result<PreparedTdesKey> {
    check_16(key, what)?;
    PreparedTdesKey::new(key)
}

/// ICC master key, EMV Book 2 A1.4.1 option A: Y = the rightmost 16 digits of PAN || PSN.
pub fn icc_master_key_option_a(imk: &TdesKey, pan: &Pan, psn: u8) -> Result<TdesKey> {
    option_a(&prepare(imk, "issuer master key")?, pan, psn)
}

fn option_a(imk: &PreparedTdesKey, pan: &Pan, psn: u8) -> Result<TdesKey> {
    let mut digits = pan_psn_digits(pan, psn)?;
    if digits.len() < OPTION_A_DIGITS {
        let mut padded = vec![0; OPTION_A_DIGITS - digits.len()];
        padded.extend_from_slice(&digits);
        digits = padded;
    }
    master_key_from_y(imk, &digits[digits.len() - OPTION_A_DIGITS..])
}

/// ICC master key, option B (EMV Book 2 A1.4.2): SHA-1 of PAN || PSN (left-padded with 0 to an
/// even digit count), decimalised to 16 digits, then option A's encipherment.
pub fn icc_master_key_option_b(imk: &TdesKey, pan: &Pan, psn: u8) -> Result<TdesKey> {
    option_b(&prepare(imk, "issuer master key")?, pan, psn)
}

fn option_b(imk: &PreparedTdesKey, pan: &Pan, psn: u8) -> Result<TdesKey> {
    let mut digits = pan_psn_digits(pan, psn)?;
    if digits.len() % 2 == 1 {
        digits.insert(0, 0);
    }
    let hash = Sha1::digest(pack_nibbles(&digits));
    let nibbles = unpack_nibbles(&hash);
    let decimal = nibbles.iter().copied().filter(|n| *n <= 9);
    let letters = nibbles.iter().copied().filter(|n| *n > 9).map(|n| n - 10);
    let y: Vec<u8> = decimal.chain(letters).take(OPTION_A_DIGITS).collect();
    master_key_from_y(imk, &y)
}

/// ICC master key with the option the PAN needs: B for PANs over 16 digits, else A.
pub fn icc_master_key(imk: &TdesKey, pan: &Pan, psn: u8) -> Result<TdesKey> {
    icc_master_key_prepared(&prepare(imk, "issuer master key")?, pan, psn)
}

/// [`icc_master_key`] under an issuer master key prepared once (the HSM keeps it prepared).
pub fn icc_master_key_prepared(imk: &PreparedTdesKey, pan: &Pan, psn: u8) -> Result<TdesKey> {
    if pan.len() > OPTION_A_MAX_PAN_DIGITS {
        option_b(imk, pan, psn)
    } else {
        option_a(imk, pan, psn)
    }
}

/// How the application cryptogram session key is derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionKeyDerivation {
    /// No session key: the ICC master key itself (Visa CVN 10).
    None,
    /// EMV common session key derivation (EMV Book 2 A1.3): R = ATC || 00..00.
    Common,
    /// Mastercard SKD (M/Chip CVN 16/17, Interac 133): R = ATC || 0000 || UN.
    Mastercard { unpredictable_number: [u8; 4] },
}

/// The session key for `atc` (2 bytes) from the ICC master key.
pub fn session_key(
    icc_master_key: &TdesKey,
    atc: [u8; 2],
    derivation: SessionKeyDerivation,
) -> Result<TdesKey> {
    session_key_prepared(&prepare(icc_master_key, "ICC master key")?, atc, derivation)
}

/// [`session_key`] under a prepared ICC master key.
pub fn session_key_prepared(
    icc_master_key: &PreparedTdesKey,
    atc: [u8; 2],
    derivation: SessionKeyDerivation,
) -> Result<TdesKey> {
    let mut r = [0u8; 8];
    r[..2].copy_from_slice(&atc);
    match derivation {
        SessionKeyDerivation::None => return Ok(icc_master_key.key().clone()),
        SessionKeyDerivation::Common => {}
        SessionKeyDerivation::Mastercard {
            unpredictable_number,
        } => r[4..].copy_from_slice(&unpredictable_number),
    }
    let (mut left_in, mut right_in) = (r, r);
    left_in[2] = 0xF0;
    right_in[2] = 0x0F;
    let mut key = [
        icc_master_key.encrypt_block(&left_in),
        icc_master_key.encrypt_block(&right_in),
    ]
    .concat();
    odd_parity(&mut key);
    let key = SecretBytes::from_vec(key);
    TdesKey::new(key.expose())
}

/// ARQC (or TC / AAC): ISO 9797-1 algorithm 3 under the session key over the CDOL1 data.
/// Padding method 2 except Visa CVN 10, which uses method 1.
pub fn generate_arqc(session_key: &TdesKey, data: &[u8], padding: Padding) -> Result<[u8; 8]> {
    Ok(prepare(session_key, "session key")?.retail_mac(data, padding))
}

/// Checks an ARQC in constant time.
pub fn verify_arqc(
    session_key: &TdesKey,
    data: &[u8],
    padding: Padding,
    arqc: &[u8; 8],
) -> Result<bool> {
    Ok(verify_arqc_prepared(
        &prepare(session_key, "session key")?,
        data,
        padding,
        arqc,
    ))
}

/// [`verify_arqc`] under a prepared session key.
pub fn verify_arqc_prepared(
    session_key: &PreparedTdesKey,
    data: &[u8],
    padding: Padding,
    arqc: &[u8; 8],
) -> bool {
    macs_equal(arqc, &session_key.retail_mac(data, padding))
}

/// ARPC method 1 (EMV Book 2 A1.2.1): `TDEA(K)[ARQC XOR (ARC || 000000000000)]`.
pub fn arpc_method1(key: &TdesKey, arqc: &[u8; 8], arc: &[u8; 2]) -> Result<[u8; 8]> {
    Ok(arpc_method1_prepared(&prepare(key, "ARPC key")?, arqc, arc))
}

/// [`arpc_method1`] under a prepared key.
pub fn arpc_method1_prepared(key: &PreparedTdesKey, arqc: &[u8; 8], arc: &[u8; 2]) -> [u8; 8] {
    let mut pad = [0u8; 8];
    pad[..2].copy_from_slice(arc);
    key.encrypt_block(&xor8(arqc, &pad))
}

/// ARPC method 2 (EMV Book 2 A1.2.2): the leftmost 4 bytes of an algorithm-3 MAC (padding 2)
/// over ARQC || CSU || proprietary authentication data (0 to 8 bytes).
pub fn arpc_method2(
    key: &TdesKey,
    arqc: &[u8; 8],
    csu: &[u8; 4],
    proprietary: &[u8],
) -> Result<[u8; 4]> {
    arpc_method2_prepared(&prepare(key, "ARPC key")?, arqc, csu, proprietary)
}

/// [`arpc_method2`] under a prepared key.
pub fn arpc_method2_prepared(
    key: &PreparedTdesKey,
    arqc: &[u8; 8],
    csu: &[u8; 4],
    proprietary: &[u8],
) -> Result<[u8; 4]> {
    if proprietary.len() > 8 {
        return Err(Error::Length {
            what: "proprietary authentication data",
            expected: "0 to 8",
            actual: proprietary.len(),
        });
    }
    let data = [arqc.as_slice(), csu, proprietary].concat();
    let mac = key.retail_mac(&data, Padding::Method2);
    Ok([mac[0], mac[1], mac[2], mac[3]])
}

/// The ARPC method of a cryptogram version, and which key it runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpcMethod {
    /// Method 1 under the ICC master key.
    Method1UnderMasterKey,
    /// Method 1 under the session key.
    Method1UnderSessionKey,
    /// Method 2 under the session key.
    Method2,
}

/// A cryptogram version number (CVN) profile, after pyemv's table (STANDARDS.md 6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptogramVersion {
    Visa10,
    Visa18,
    Visa22,
    Mastercard16,
    Mastercard17,
    Mastercard20,
    Mastercard21,
    Interac133,
}

impl CryptogramVersion {
    pub fn from_number(cvn: u8) -> Result<Self> {
        match cvn {
            10 => Ok(Self::Visa10),
            18 => Ok(Self::Visa18),
            22 => Ok(Self::Visa22),
            16 => Ok(Self::Mastercard16),
            17 => Ok(Self::Mastercard17),
            20 => Ok(Self::Mastercard20),
            21 => Ok(Self::Mastercard21),
            133 => Ok(Self::Interac133),
            _ => Err(Error::Invalid(
                "CVN must be 10, 18, 22 (Visa), 16, 17, 20, 21 (Mastercard) or 133 (Interac)",
            )),
        }
    }

    /// The session key derivation; Mastercard SKD needs the unpredictable number (9F37).
    pub fn session_derivation(self, unpredictable_number: [u8; 4]) -> SessionKeyDerivation {
        match self {
            Self::Visa10 => SessionKeyDerivation::None,
            Self::Visa18 | Self::Visa22 | Self::Mastercard20 | Self::Mastercard21 => {
                SessionKeyDerivation::Common
            }
            Self::Mastercard16 | Self::Mastercard17 | Self::Interac133 => {
                SessionKeyDerivation::Mastercard {
                    unpredictable_number,
                }
            }
        }
    }

    pub fn padding(self) -> Padding {
        if self == Self::Visa10 {
            Padding::Method1
        } else {
            Padding::Method2
        }
    }

    pub fn arpc_method(self) -> ArpcMethod {
        match self {
            Self::Visa10 | Self::Mastercard16 | Self::Mastercard17 => {
                ArpcMethod::Method1UnderMasterKey
            }
            Self::Visa18 | Self::Visa22 => ArpcMethod::Method2,
            Self::Mastercard20 | Self::Mastercard21 | Self::Interac133 => {
                ArpcMethod::Method1UnderSessionKey
            }
        }
    }
}
