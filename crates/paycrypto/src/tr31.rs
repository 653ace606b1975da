//! ANSI X9 TR-31 key blocks, versions B (TDES key-block protection key, key derivation binding)
//! and D (AES), following TR-31:2018. Optional header blocks are carried but not interpreted.
//!
//! Layout: 16-character header + optional blocks, then the encrypted key data (2-byte key length
//! in bits || key || random pad) in hex, then the MAC in hex. The key-block encryption and MAC keys
//! are CMAC-derived from the protection key; the MAC covers the header (ASCII) and the clear key
//! data and is the CBC IV of the encryption.

use crate::block::{
    Aes, Tdes, aes_cbc_decrypt, aes_cbc_encrypt, tdes_cbc_decrypt, tdes_cbc_encrypt,
};
use crate::error::{Error, Result};
use crate::mac::{aes_cmac, macs_equal, tdes_cmac};
use crate::secret::{AesKey, SecretBytes, TdesKey};
use crate::util::{array8, array16, hex_upper};
use std::fmt;

/// Characters of the fixed header.
const HEADER_CHARS: usize = 16;
/// Longest key block we accept (4-digit length field).
pub const MAX_BLOCK_CHARS: usize = 9999;
/// Longest key we wrap (AES-256 is 32 bytes; 64 leaves room for HMAC keys).
pub const MAX_KEY_BYTES: usize = 64;

/// Key block version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `B`: TDES protection key, key derivation binding method.
    B,
    /// `D`: AES protection key, key derivation binding method.
    D,
}

impl Version {
    fn id(self) -> char {
        match self {
            Self::B => 'B',
            Self::D => 'D',
        }
    }
    fn block(self) -> usize {
        match self {
            Self::B => 8,
            Self::D => 16,
        }
    }
    fn mac_bytes(self) -> usize {
        self.block()
    }
}

/// A two-character TR-31 key usage.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyUsage(pub [u8; 2]);

impl KeyUsage {
    pub const BDK: Self = Self(*b"B0");
    pub const DUKPT_INITIAL_KEY: Self = Self(*b"B1");
    pub const CVK: Self = Self(*b"C0");
    pub const DATA_ENCRYPTION: Self = Self(*b"D0");
    pub const EMV_MASTER_KEY_AC: Self = Self(*b"E0");
    pub const KEY_ENCRYPTION: Self = Self(*b"K0");
    pub const KEY_BLOCK_PROTECTION: Self = Self(*b"K1");
    pub const MAC_ISO16609: Self = Self(*b"M0");
    pub const MAC_ALG1: Self = Self(*b"M1");
    pub const MAC_ALG3: Self = Self(*b"M3");
    pub const MAC_CMAC: Self = Self(*b"M6");
    pub const MAC_HMAC: Self = Self(*b"M7");
    pub const PIN_ENCRYPTION: Self = Self(*b"P0");
    pub const PIN_VERIFICATION_IBM3624: Self = Self(*b"V1");
    pub const PIN_VERIFICATION_VISA_PVV: Self = Self(*b"V2");
    /// `S0`: asymmetric key pair for digital signatures (the acquirer's receipt signing key).
    pub const ASYMMETRIC_SIGNATURE: Self = Self(*b"S0");

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Debug for KeyUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyUsage({})", self.as_str())
    }
}

/// Algorithm of the wrapped key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Aes,
    Tdes,
    Des,
    Hmac,
    /// `E`: elliptic curve; easypos wraps Ed25519 private keys (their 32-byte seed).
    EllipticCurve,
}

impl Algorithm {
    fn id(self) -> char {
        match self {
            Self::Aes => 'A',
            Self::Tdes => 'T',
            Self::Des => 'D',
            Self::Hmac => 'H',
            Self::EllipticCurve => 'E',
        }
    }
    fn from_id(id: char) -> Result<Self> {
        match id {
            'A' => Ok(Self::Aes),
            'T' => Ok(Self::Tdes),
            'D' => Ok(Self::Des),
            'H' => Ok(Self::Hmac),
            'E' => Ok(Self::EllipticCurve),
            _ => Err(Error::KeyBlock("unknown algorithm")),
        }
    }
    fn key_length_ok(self, len: usize) -> bool {
        match self {
            Self::Aes => matches!(len, 16 | 24 | 32),
            Self::Tdes => matches!(len, 16 | 24),
            Self::Des => len == 8,
            Self::Hmac => (1..=MAX_KEY_BYTES).contains(&len),
            // An Ed25519 seed; other curves are not wrapped yet.
            Self::EllipticCurve => len == 32,
        }
    }
}

/// Mode of use of the wrapped key (TR-31 table 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModeOfUse {
    /// `B`: encrypt/wrap and decrypt/unwrap.
    Both,
    /// `C`: generate and verify (MAC, cryptogram).
    Compute,
    /// `D`: decrypt / unwrap only.
    Decrypt,
    /// `E`: encrypt / wrap only.
    Encrypt,
    /// `G`: generate only.
    Generate,
    /// `N`: no special restrictions.
    None,
    /// `V`: verify only.
    Verify,
    /// `X`: derive other keys.
    Derive,
    /// `S`: signature only (an asymmetric private key).
    Sign,
}

impl ModeOfUse {
    pub fn id(self) -> char {
        match self {
            Self::Both => 'B',
            Self::Compute => 'C',
            Self::Decrypt => 'D',
            Self::Encrypt => 'E',
            Self::Generate => 'G',
            Self::None => 'N',
            Self::Verify => 'V',
            Self::Derive => 'X',
            Self::Sign => 'S',
        }
    }
    pub fn from_id(id: char) -> Result<Self> {
        match id {
            'B' => Ok(Self::Both),
            'C' => Ok(Self::Compute),
            'D' => Ok(Self::Decrypt),
            'E' => Ok(Self::Encrypt),
            'G' => Ok(Self::Generate),
            'N' => Ok(Self::None),
            'V' => Ok(Self::Verify),
            'X' => Ok(Self::Derive),
            'S' => Ok(Self::Sign),
            _ => Err(Error::KeyBlock("unknown mode of use")),
        }
    }
}

/// Exportability of the wrapped key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exportability {
    /// `E`: exportable under a trusted key-block protection key.
    Exportable,
    /// `N`: never exportable.
    NonExportable,
    /// `S`: sensitive, exportable only in a non-trusted form.
    Sensitive,
}

impl Exportability {
    fn id(self) -> char {
        match self {
            Self::Exportable => 'E',
            Self::NonExportable => 'N',
            Self::Sensitive => 'S',
        }
    }
    fn from_id(id: char) -> Result<Self> {
        match id {
            'E' => Ok(Self::Exportable),
            'N' => Ok(Self::NonExportable),
            'S' => Ok(Self::Sensitive),
            _ => Err(Error::KeyBlock("unknown exportability")),
        }
    }
}

/// A TR-31 header: what the key is and what it may do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    pub version: Version,
    pub usage: KeyUsage,
    pub algorithm: Algorithm,
    pub mode_of_use: ModeOfUse,
    /// Two characters, `00` when unused.
    pub key_version: [u8; 2],
    pub exportability: Exportability,
    /// Optional blocks as they appear after the fixed header (already padded by the creator).
    optional_blocks: String,
    optional_block_count: u8,
}

impl Header {
    pub fn new(
        version: Version,
        usage: KeyUsage,
        algorithm: Algorithm,
        mode_of_use: ModeOfUse,
    ) -> Self {
        Self {
            version,
            usage,
            algorithm,
            mode_of_use,
            key_version: *b"00",
            exportability: Exportability::Exportable,
            optional_blocks: String::new(),
            optional_block_count: 0,
        }
    }

    pub fn with_exportability(mut self, exportability: Exportability) -> Self {
        self.exportability = exportability;
        self
    }

    fn header_chars(&self) -> usize {
        HEADER_CHARS + self.optional_blocks.len()
    }

    fn render(&self, total_chars: usize) -> String {
        format!(
            "{}{:04}{}{}{}{}{}{:02}00{}",
            self.version.id(),
            total_chars,
            self.usage.as_str(),
            self.algorithm.id(),
            self.mode_of_use.id(),
            std::str::from_utf8(&self.key_version).unwrap_or("00"),
            self.exportability.id(),
            self.optional_block_count,
            self.optional_blocks
        )
    }

    /// Fails with `UsageNotAllowed` unless the usage is one of `usages` and the mode one of `modes`.
    pub fn require(
        &self,
        usages: &[KeyUsage],
        modes: &[ModeOfUse],
        operation: &'static str,
    ) -> Result<()> {
        if usages.contains(&self.usage) && modes.contains(&self.mode_of_use) {
            Ok(())
        } else {
            Err(Error::UsageNotAllowed {
                usage: self.usage.as_str().to_owned(),
                mode: self.mode_of_use.id(),
                operation,
            })
        }
    }
}

/// Bytes of random padding `wrap` needs for a key of `key_len` bytes. Like psec, the key length
/// is masked: the pad first brings the key up to the longest key of its algorithm (TDES 24,
/// AES 32 bytes), so the block length does not reveal whether a key is 2- or 3-key, 128- or
/// 256-bit; then it fills the last cipher block (version D always adds 1 to 16 bytes, as psec).
pub fn pad_len(version: Version, algorithm: Algorithm, key_len: usize) -> usize {
    let masked = match algorithm {
        Algorithm::Tdes => key_len.max(24),
        Algorithm::Aes => key_len.max(32),
        Algorithm::Des | Algorithm::Hmac | Algorithm::EllipticCurve => key_len,
    };
    let extra = masked - key_len;
    let used = 2 + masked;
    match version {
        Version::B => extra + (8 - used % 8) % 8,
        Version::D => extra + 16 - used % 16,
    }
}

/// The key-block encryption key (KBEK) and MAC key (KBAK), CMAC-derived from the KBPK.
struct Derived {
    encryption: SecretBytes,
    authentication: SecretBytes,
}

fn derive_keys(version: Version, kbpk: &[u8]) -> Result<Derived> {
    let (algorithm, blocks): (u16, usize) = match (version, kbpk.len()) {
        (Version::B, 16) => (0x0000, 2),
        (Version::B, 24) => (0x0001, 3),
        (Version::D, 16) => (0x0002, 1),
        (Version::D, 24) => (0x0003, 2),
        (Version::D, 32) => (0x0004, 2),
        (Version::B, actual) => {
            return Err(Error::Length {
                what: "KBPK",
                expected: "16 or 24 for version B",
                actual,
            });
        }
        (Version::D, actual) => {
            return Err(Error::Length {
                what: "KBPK",
                expected: "16, 24 or 32 for version D",
                actual,
            });
        }
    };
    // Key length in bits: at most 256, fits u16.
    let bits = (kbpk.len() * 8) as u16;
    let derive = |usage: u8| -> Result<SecretBytes> {
        let mut out = Vec::with_capacity(blocks * version.block());
        for counter in 1..=blocks {
            let [a_hi, a_lo] = algorithm.to_be_bytes();
            let [b_hi, b_lo] = bits.to_be_bytes();
            // `counter` is at most 3.
            let input = [counter as u8, 0, usage, 0, a_hi, a_lo, b_hi, b_lo];
            match version {
                Version::B => out.extend_from_slice(&tdes_cmac(&TdesKey::new(kbpk)?, &input)?),
                Version::D => out.extend_from_slice(&aes_cmac(&AesKey::new(kbpk)?, &input)),
            }
        }
        out.truncate(kbpk.len());
        Ok(SecretBytes::from_vec(out))
    };
    Ok(Derived {
        encryption: derive(0x00)?,
        authentication: derive(0x01)?,
    })
}

fn compute_mac(
    version: Version,
    kbak: &SecretBytes,
    header: &str,
    clear: &[u8],
) -> Result<Vec<u8>> {
    let data = [header.as_bytes(), clear].concat();
    match version {
        Version::B => Ok(tdes_cmac(&TdesKey::new(kbak.expose())?, &data)?.to_vec()),
        Version::D => Ok(aes_cmac(&AesKey::new(kbak.expose())?, &data).to_vec()),
    }
}

fn encrypt(version: Version, kbek: &SecretBytes, iv: &[u8], clear: &[u8]) -> Result<Vec<u8>> {
    match version {
        Version::B => tdes_cbc_encrypt(&Tdes::from_bytes(kbek.expose()), &array8(iv), clear),
        Version::D => aes_cbc_encrypt(&Aes::from_bytes(kbek.expose()), &array16(iv), clear),
    }
}

fn decrypt(version: Version, kbek: &SecretBytes, iv: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    match version {
        Version::B => tdes_cbc_decrypt(&Tdes::from_bytes(kbek.expose()), &array8(iv), data),
        Version::D => aes_cbc_decrypt(&Aes::from_bytes(kbek.expose()), &array16(iv), data),
    }
}

/// Wraps `key` under the key-block protection key. `random` supplies the pad (at least
/// [`pad_len`] bytes, 48 always suffice; extra bytes are ignored), so that this crate stays pure.
pub fn wrap(kbpk: &[u8], header: &Header, key: &[u8], random: &[u8]) -> Result<String> {
    let version = header.version;
    if !header.algorithm.key_length_ok(key.len()) {
        return Err(Error::Length {
            what: "wrapped key",
            expected: "a length its algorithm allows",
            actual: key.len(),
        });
    }
    let pad = pad_len(version, header.algorithm, key.len());
    if random.len() < pad {
        return Err(Error::Invalid("TR-31 wrap: not enough random pad bytes"));
    }
    let keys = derive_keys(version, kbpk)?;
    // Bounded by MAX_KEY_BYTES, so the bit length fits u16.
    let bits = (key.len() * 8) as u16;
    let clear = SecretBytes::from_vec([&bits.to_be_bytes()[..], key, &random[..pad]].concat());
    let total = header.header_chars() + 2 * clear.len() + 2 * version.mac_bytes();
    if total > MAX_BLOCK_CHARS {
        return Err(Error::KeyBlock("key block longer than 9999 characters"));
    }
    let rendered = header.render(total);
    let mac = compute_mac(version, &keys.authentication, &rendered, clear.expose())?;
    let encrypted = encrypt(version, &keys.encryption, &mac, clear.expose())?;
    Ok(format!(
        "{rendered}{}{}",
        hex_upper(&encrypted),
        hex_upper(&mac)
    ))
}

fn parse_header(block: &str) -> Result<(Header, usize)> {
    let bytes = block.as_bytes();
    if bytes.len() < HEADER_CHARS || !block.is_ascii() {
        return Err(Error::KeyBlock(
            "shorter than the 16-character header or not ASCII",
        ));
    }
    let version = match bytes[0] {
        b'B' => Version::B,
        b'D' => Version::D,
        _ => return Err(Error::KeyBlock("unsupported version (only B and D)")),
    };
    let total: usize = block[1..5]
        .parse()
        .map_err(|_| Error::KeyBlock("length field is not 4 digits"))?;
    if total != block.len() {
        return Err(Error::KeyBlock(
            "length field does not match the block length",
        ));
    }
    let char_at = |i: usize| char::from(bytes[i]);
    let count: u8 = block[12..14]
        .parse()
        .map_err(|_| Error::KeyBlock("optional block count is not 2 digits"))?;
    let optional_end = skip_optional_blocks(block, count)?;
    let header = Header {
        version,
        usage: KeyUsage([bytes[5], bytes[6]]),
        algorithm: Algorithm::from_id(char_at(7))?,
        mode_of_use: ModeOfUse::from_id(char_at(8))?,
        key_version: [bytes[9], bytes[10]],
        exportability: Exportability::from_id(char_at(11))?,
        optional_blocks: block[HEADER_CHARS..optional_end].to_owned(),
        optional_block_count: count,
    };
    Ok((header, optional_end))
}

/// Returns the offset just past the optional blocks.
fn skip_optional_blocks(block: &str, count: u8) -> Result<usize> {
    let mut offset = HEADER_CHARS;
    for _ in 0..count {
        let length_field = block
            .get(offset + 2..offset + 4)
            .ok_or(Error::KeyBlock("optional block truncated"))?;
        let length = usize::from_str_radix(length_field, 16)
            .map_err(|_| Error::KeyBlock("optional block length"))?;
        if length < 4 {
            return Err(Error::KeyBlock(
                "extended optional block lengths are not supported",
            ));
        }
        offset += length;
        if offset > block.len() {
            return Err(Error::KeyBlock("optional block truncated"));
        }
    }
    Ok(offset)
}

/// Unwraps a key block: checks the header, decrypts, verifies the MAC (constant time) and
/// returns the header and the clear key.
pub fn unwrap(kbpk: &[u8], block: &str) -> Result<(Header, SecretBytes)> {
    let (header, header_end) = parse_header(block)?;
    let version = header.version;
    let body = &block[header_end..];
    let mac_chars = 2 * version.mac_bytes();
    if body.len() < mac_chars + 2 * version.block()
        || !(body.len() - mac_chars).is_multiple_of(2 * version.block())
    {
        return Err(Error::KeyBlock(
            "encrypted key data is not a whole number of cipher blocks",
        ));
    }
    let (data_hex, mac_hex) = body.split_at(body.len() - mac_chars);
    let encrypted = decode_hex(data_hex)?;
    let mac = decode_hex(mac_hex)?;
    let keys = derive_keys(version, kbpk)?;
    let clear = SecretBytes::from_vec(decrypt(version, &keys.encryption, &mac, &encrypted)?);
    let expected = compute_mac(
        version,
        &keys.authentication,
        &block[..header_end],
        clear.expose(),
    )?;
    if !macs_equal(&expected, &mac) {
        return Err(Error::KeyBlockMac);
    }
    let clear = clear.expose();
    let bits = usize::from(u16::from_be_bytes([clear[0], clear[1]]));
    if bits % 8 != 0 || 2 + bits / 8 > clear.len() || !header.algorithm.key_length_ok(bits / 8) {
        return Err(Error::KeyBlock("key length field is inconsistent"));
    }
    Ok((header, SecretBytes::new(&clear[2..2 + bits / 8])))
}

fn decode_hex(text: &str) -> Result<Vec<u8>> {
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digits =
                std::str::from_utf8(pair).map_err(|_| Error::KeyBlock("not hexadecimal"))?;
            u8::from_str_radix(digits, 16).map_err(|_| Error::KeyBlock("not hexadecimal"))
        })
        .collect()
}
