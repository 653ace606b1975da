//! ISO 9797-1 MAC algorithms 1 and 3 (with padding methods 1 and 2), AES-CMAC, TDES-CMAC and
//! HMAC-SHA-256.

use crate::block::{DES_BLOCK, Tdes};
use crate::error::{Error, Result, expect_len};
use crate::secret::{AesKey, TdesKey};
use crate::util::{array8, xor_in_place};
use cmac::{Cmac, Mac};
use sha2::digest::generic_array::GenericArray;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// CMAC under a RustCrypto block cipher type; a macro rather than a generic function so that
/// the cipher's block-doubling bound need not be spelled out (it would need the `dbl` crate).
macro_rules! cmac_with {
    ($cipher:ty, $key:expr, $data:expr) => {
        // The key length was checked by the wrapper type, so `new_from_slice` cannot fail; an
        // empty MAC (which never verifies) is the fallback rather than a panic.
        match <Cmac<$cipher> as cipher::KeyInit>::new_from_slice($key) {
            Ok(mut mac) => {
                Mac::update(&mut mac, $data);
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => vec![0; 16],
        }
    };
}

/// ISO 9797-1 padding methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Method 1: zeros up to the block boundary (none when already aligned; an empty message
    /// becomes one zero block).
    Method1,
    /// Method 2: one `80` byte, then zeros up to the block boundary.
    Method2,
}

impl Padding {
    pub fn from_number(number: u8) -> Result<Self> {
        match number {
            1 => Ok(Self::Method1),
            2 => Ok(Self::Method2),
            _ => Err(Error::Invalid("padding must be 1 or 2")),
        }
    }
}

/// Pads `data` to whole `block`-byte blocks.
pub fn pad(data: &[u8], padding: Padding, block: usize) -> Vec<u8> {
    let mut out = data.to_vec();
    if padding == Padding::Method2 {
        out.push(0x80);
    }
    let blocks = out.len().div_ceil(block).max(1);
    out.resize(blocks * block, 0);
    out
}

fn cbc_mac(encrypt: impl Fn(&[u8; 8]) -> [u8; 8], padded: &[u8]) -> [u8; 8] {
    let mut chain = [0u8; 8];
    for chunk in padded.chunks(DES_BLOCK) {
        xor_in_place(&mut chain, chunk);
        chain = encrypt(&chain);
    }
    chain
}

/// ISO 9797-1 MAC algorithm 1: CBC-MAC under the whole (T)DES key (8, 16 or 24 bytes).
pub fn iso9797_alg1(key: &TdesKey, data: &[u8], padding: Padding) -> [u8; 8] {
    let cipher = Tdes::new(key);
    cbc_mac(
        |block| cipher.encrypt(block),
        &pad(data, padding, DES_BLOCK),
    )
}

/// ISO 9797-1 MAC algorithm 3 (ANSI X9.19 retail MAC): single-DES CBC under K1, then the last
/// block is decrypted under K2 and encrypted under K1. Needs a 16-byte key.
pub fn iso9797_alg3(key: &TdesKey, data: &[u8], padding: Padding) -> Result<[u8; 8]> {
    Ok(PreparedTdesKey::new(key)?.retail_mac(data, padding))
}

/// A double-length TDES key with its DES key schedules built once, for several operations under
/// the same key (an EMV session key verifies the ARQC and makes the ARPC). Schedules are the
/// costly part of DES, so the hot paths prepare each key once.
pub struct PreparedTdesKey {
    key: TdesKey,
    cipher: Tdes,
}

impl std::fmt::Debug for PreparedTdesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreparedTdesKey(masked)")
    }
}

impl PreparedTdesKey {
    /// Prepares a 16-byte key.
    pub fn new(key: &TdesKey) -> Result<Self> {
        expect_len("MAC key", "16", key.len(), key.len() == 16)?;
        Ok(Self {
            key: key.clone(),
            cipher: Tdes::new(key),
        })
    }

    /// The key itself.
    pub fn key(&self) -> &TdesKey {
        &self.key
    }

    /// ISO 9797-1 algorithm 3 under this key.
    pub fn retail_mac(&self, data: &[u8], padding: Padding) -> [u8; 8] {
        let chain = self.cipher.cbc_mac_first(&pad(data, padding, DES_BLOCK));
        self.cipher
            .encrypt_first(&self.cipher.decrypt_second(&chain))
    }

    /// TDEA encryption of one block under this key.
    pub fn encrypt_block(&self, block: &[u8; 8]) -> [u8; 8] {
        self.cipher.encrypt(block)
    }

    /// TDEA decryption of one block under this key.
    pub fn decrypt_block(&self, block: &[u8; 8]) -> [u8; 8] {
        self.cipher.decrypt(block)
    }
}

/// AES-CMAC (NIST SP 800-38B), full 16 bytes.
pub fn aes_cmac(key: &AesKey, data: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    let bytes = key.expose();
    match bytes.len() {
        16 => out.copy_from_slice(&cmac_with!(aes::Aes128, bytes, data)),
        24 => out.copy_from_slice(&cmac_with!(aes::Aes192, bytes, data)),
        _ => out.copy_from_slice(&cmac_with!(aes::Aes256, bytes, data)),
    }
    out
}

/// TDES-CMAC (NIST SP 800-38B with a 64-bit block), as TR-31 version B uses. 16 or 24 bytes.
pub fn tdes_cmac(key: &TdesKey, data: &[u8]) -> Result<[u8; 8]> {
    let bytes = key.expose();
    match bytes.len() {
        16 => Ok(array8(&cmac_with!(des::TdesEde2, bytes, data))),
        24 => Ok(array8(&cmac_with!(des::TdesEde3, bytes, data))),
        actual => Err(Error::Length {
            what: "CMAC key",
            expected: "16 or 24",
            actual,
        }),
    }
}

/// SHA-256's block size in bytes.
const SHA256_BLOCK: usize = 64;
/// Bytes of the message length that ends SHA-256's padding.
const SHA256_LENGTH_BYTES: usize = 8;
/// SHA-256's initial hash value (FIPS 180-4, 5.3.3).
const SHA256_INITIAL: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// An HMAC-SHA-256 key (RFC 2104) with its two padded blocks compressed once: a MAC of a short
/// message then costs two compressions instead of four (the HSM fingerprints every card number
/// presented under one key). The compressed states stand for the key, so they are zeroized on
/// drop and never shown.
pub struct PreparedHmacSha256 {
    /// SHA-256 state after the block `key XOR ipad`.
    inner: [u32; 8],
    /// SHA-256 state after the block `key XOR opad`.
    outer: [u32; 8],
}

impl std::fmt::Debug for PreparedHmacSha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreparedHmacSha256(masked)")
    }
}

impl Drop for PreparedHmacSha256 {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

impl PreparedHmacSha256 {
    /// Prepares a key of any length (a key longer than a block is hashed first, as RFC 2104
    /// says).
    pub fn new(key: &[u8]) -> Self {
        use sha2::Digest;
        let mut block = Zeroizing::new([0u8; SHA256_BLOCK]);
        if key.len() > SHA256_BLOCK {
            block[..32].copy_from_slice(&sha2::Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let padded = |pad: u8| {
            let mut padded = Zeroizing::new(*block);
            padded.iter_mut().for_each(|byte| *byte ^= pad);
            let mut state = SHA256_INITIAL;
            compress(&mut state, &padded[..]);
            state
        };
        Self {
            inner: padded(0x36),
            outer: padded(0x5c),
        }
    }

    /// The 32-byte HMAC of `message`.
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        let inner = Zeroizing::new(sha256_after_block(self.inner, message));
        sha256_after_block(self.outer, &inner[..])
    }
}

/// SHA-256 compressions of whole 64-byte blocks into `state`.
fn compress(state: &mut [u32; 8], blocks: &[u8]) {
    for block in blocks.chunks_exact(SHA256_BLOCK) {
        sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
    }
}

/// The SHA-256 digest of one block already compressed into `state` followed by `message`.
fn sha256_after_block(state: [u32; 8], message: &[u8]) -> [u8; 32] {
    let mut state = Zeroizing::new(state);
    let whole = message.len() - message.len() % SHA256_BLOCK;
    compress(&mut state, &message[..whole]);
    // The rest, the 0x80 byte, zeros and the length in bits: one block, or two when the rest
    // leaves no room for the length.
    let rest = &message[whole..];
    let mut last = Zeroizing::new([0u8; 2 * SHA256_BLOCK]);
    last[..rest.len()].copy_from_slice(rest);
    last[rest.len()] = 0x80;
    let end = if rest.len() < SHA256_BLOCK - SHA256_LENGTH_BYTES {
        SHA256_BLOCK
    } else {
        2 * SHA256_BLOCK
    };
    let bits = ((SHA256_BLOCK + message.len()) as u64) * 8;
    last[end - SHA256_LENGTH_BYTES..end].copy_from_slice(&bits.to_be_bytes());
    compress(&mut state, &last[..end]);
    let mut digest = [0u8; 32];
    for (bytes, word) in digest.chunks_exact_mut(4).zip(state.iter()) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    digest
}

/// Compares two MACs in constant time (for equal lengths).
pub fn macs_equal(expected: &[u8], computed: &[u8]) -> bool {
    expected.len() == computed.len() && bool::from(expected.ct_eq(computed))
}
