//! Block-cipher plumbing over the RustCrypto `des` and `aes` crates: ECB of single blocks and
//! CBC with a zero IV, the only modes payment key management needs.

use crate::des_tables::Schedule;
use crate::error::{Error, Result};
use crate::secret::{AesKey, TdesKey};
use cipher::{BlockDecrypt, BlockEncrypt, KeyInit, generic_array::GenericArray};

/// DES block size in bytes.
pub const DES_BLOCK: usize = 8;
/// AES block size in bytes.
pub const AES_BLOCK: usize = 16;

/// A keyed DES / TDEA cipher chosen by key length (8 = DES, 16 = 2-key, 24 = 3-key TDEA),
/// on the table-driven DES of `des_tables`.
pub(crate) struct Tdes {
    first: Schedule,
    /// `None` for single DES.
    rest: Option<(Schedule, Schedule)>,
}

impl Tdes {
    pub(crate) fn new(key: &TdesKey) -> Self {
        Self::from_bytes(key.expose())
    }

    /// Key length is guaranteed by `TdesKey`; callers with raw bytes check it first.
    pub(crate) fn from_bytes(key: &[u8]) -> Self {
        let first = Schedule::new(&key[..8]);
        let rest = match key.len() {
            8 => None,
            16 => Some((Schedule::new(&key[8..16]), first.clone())),
            _ => Some((Schedule::new(&key[8..16]), Schedule::new(&key[16..24]))),
        };
        Self { first, rest }
    }

    /// EDE: encrypt under K1, decrypt under K2, encrypt under K3.
    pub(crate) fn encrypt(&self, block: &[u8; 8]) -> [u8; 8] {
        let once = self.first.encrypt(block);
        match &self.rest {
            None => once,
            Some((second, third)) => third.encrypt(&second.decrypt(&once)),
        }
    }

    /// Single DES under the first key (the CBC part of ISO 9797-1 algorithm 3).
    pub(crate) fn encrypt_first(&self, block: &[u8; 8]) -> [u8; 8] {
        self.first.encrypt(block)
    }

    /// The CBC-MAC of `data` under the first key alone (zero IV, a short last block taken as
    /// zero-padded): the chain of ISO 9797-1 algorithm 3.
    pub(crate) fn cbc_mac_first(&self, data: &[u8]) -> [u8; 8] {
        self.first.cbc_mac(data)
    }

    /// Single DES decryption under the second key (the output transformation of algorithm 3);
    /// the caller guarantees a multi-key cipher.
    pub(crate) fn decrypt_second(&self, block: &[u8; 8]) -> [u8; 8] {
        match &self.rest {
            Some((second, _)) => second.decrypt(block),
            None => self.first.decrypt(block),
        }
    }

    pub(crate) fn decrypt(&self, block: &[u8; 8]) -> [u8; 8] {
        match &self.rest {
            None => self.first.decrypt(block),
            Some((second, third)) => self.first.decrypt(&second.encrypt(&third.decrypt(block))),
        }
    }
}

/// Single DES under an 8-byte key (used inside CVV and DUKPT's NRKGP).
pub(crate) fn des_encrypt(key: &[u8], block: &[u8; 8]) -> [u8; 8] {
    Schedule::new(key).encrypt(block)
}

/// A keyed AES cipher chosen by key length.
pub(crate) enum Aes {
    A128(aes::Aes128),
    A192(aes::Aes192),
    A256(aes::Aes256),
}

impl Aes {
    pub(crate) fn new(key: &AesKey) -> Self {
        Self::from_bytes(key.expose())
    }

    pub(crate) fn from_bytes(key: &[u8]) -> Self {
        match key.len() {
            16 => Self::A128(aes::Aes128::new(GenericArray::from_slice(key))),
            24 => Self::A192(aes::Aes192::new(GenericArray::from_slice(key))),
            _ => Self::A256(aes::Aes256::new(GenericArray::from_slice(&key[..32]))),
        }
    }

    pub(crate) fn encrypt(&self, block: &[u8; 16]) -> [u8; 16] {
        let mut b = GenericArray::clone_from_slice(block);
        match self {
            Self::A128(c) => c.encrypt_block(&mut b),
            Self::A192(c) => c.encrypt_block(&mut b),
            Self::A256(c) => c.encrypt_block(&mut b),
        }
        b.into()
    }

    pub(crate) fn decrypt(&self, block: &[u8; 16]) -> [u8; 16] {
        let mut b = GenericArray::clone_from_slice(block);
        match self {
            Self::A128(c) => c.decrypt_block(&mut b),
            Self::A192(c) => c.decrypt_block(&mut b),
            Self::A256(c) => c.decrypt_block(&mut b),
        }
        b.into()
    }
}

fn check_blocks(len: usize, block: usize) -> Result<()> {
    if len.is_multiple_of(block) {
        Ok(())
    } else {
        Err(Error::Invalid(
            "data length is not a multiple of the cipher block size",
        ))
    }
}

/// TDEA-CBC encryption with the given IV; `data` must be whole blocks.
pub(crate) fn tdes_cbc_encrypt(cipher: &Tdes, iv: &[u8; 8], data: &[u8]) -> Result<Vec<u8>> {
    check_blocks(data.len(), DES_BLOCK)?;
    let mut chain = *iv;
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks(DES_BLOCK) {
        let mut block = crate::util::array8(chunk);
        crate::util::xor_in_place(&mut block, &chain);
        chain = cipher.encrypt(&block);
        out.extend_from_slice(&chain);
    }
    Ok(out)
}

pub(crate) fn tdes_cbc_decrypt(cipher: &Tdes, iv: &[u8; 8], data: &[u8]) -> Result<Vec<u8>> {
    check_blocks(data.len(), DES_BLOCK)?;
    let mut chain = *iv;
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks(DES_BLOCK) {
        let block = crate::util::array8(chunk);
        let mut plain = cipher.decrypt(&block);
        crate::util::xor_in_place(&mut plain, &chain);
        out.extend_from_slice(&plain);
        chain = block;
    }
    Ok(out)
}

pub(crate) fn aes_cbc_encrypt(cipher: &Aes, iv: &[u8; 16], data: &[u8]) -> Result<Vec<u8>> {
    check_blocks(data.len(), AES_BLOCK)?;
    let mut chain = *iv;
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks(AES_BLOCK) {
        let mut block = crate::util::array16(chunk);
        crate::util::xor_in_place(&mut block, &chain);
        chain = cipher.encrypt(&block);
        out.extend_from_slice(&chain);
    }
    Ok(out)
}

pub(crate) fn aes_cbc_decrypt(cipher: &Aes, iv: &[u8; 16], data: &[u8]) -> Result<Vec<u8>> {
    check_blocks(data.len(), AES_BLOCK)?;
    let mut chain = *iv;
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks(AES_BLOCK) {
        let block = crate::util::array16(chunk);
        let mut plain = cipher.decrypt(&block);
        crate::util::xor_in_place(&mut plain, &chain);
        out.extend_from_slice(&plain);
        chain = block;
    }
    Ok(out)
}

/// Zero-pads `data` to a whole number of `block`-byte blocks (none added when already aligned,
/// but an empty input becomes one block).
pub(crate) fn zero_pad(data: &[u8], block: usize) -> Vec<u8> {
    let mut out = data.to_vec();
    let blocks = data.len().div_ceil(block).max(1);
    out.resize(blocks * block, 0);
    out
}

/// Public TDEA-CBC helpers with IV zero and zero padding, as DUKPT data encryption uses.
pub fn tdes_cbc_encrypt_zero_iv(key: &TdesKey, data: &[u8]) -> Vec<u8> {
    let padded = zero_pad(data, DES_BLOCK);
    tdes_cbc_encrypt(&Tdes::new(key), &[0; 8], &padded).unwrap_or_default()
}

/// TDEA-CBC decryption with IV zero; `data` must be whole 8-byte blocks.
pub fn tdes_cbc_decrypt_zero_iv(key: &TdesKey, data: &[u8]) -> Result<Vec<u8>> {
    tdes_cbc_decrypt(&Tdes::new(key), &[0; 8], data)
}

/// AES-CBC encryption with IV zero and zero padding, as AES DUKPT data encryption uses.
pub fn aes_cbc_encrypt_zero_iv(key: &AesKey, data: &[u8]) -> Vec<u8> {
    let padded = zero_pad(data, AES_BLOCK);
    aes_cbc_encrypt(&Aes::new(key), &[0; 16], &padded).unwrap_or_default()
}

/// AES-CBC decryption with IV zero; `data` must be whole 16-byte blocks.
pub fn aes_cbc_decrypt_zero_iv(key: &AesKey, data: &[u8]) -> Result<Vec<u8>> {
    aes_cbc_decrypt(&Aes::new(key), &[0; 16], data)
}
