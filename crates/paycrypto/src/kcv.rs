//! Key check values: 3 bytes that identify a key without revealing it.

use crate::block::{Aes, Tdes};
use crate::mac::aes_cmac;
use crate::secret::{AesKey, TdesKey};

/// Bytes in a key check value.
pub const KCV_BYTES: usize = 3;

fn first3(bytes: &[u8]) -> [u8; KCV_BYTES] {
    [bytes[0], bytes[1], bytes[2]]
}

/// TDEA KCV: the leftmost 3 bytes of E(K)[0^64].
pub fn tdes(key: &TdesKey) -> [u8; KCV_BYTES] {
    first3(&Tdes::new(key).encrypt(&[0; 8]))
}

/// AES KCV as X9 / TR-31 define it: the leftmost 3 bytes of AES-CMAC(K, 0^128).
pub fn aes_cmac_kcv(key: &AesKey) -> [u8; KCV_BYTES] {
    first3(&aes_cmac(key, &[0; 16]))
}

/// Legacy AES KCV: the leftmost 3 bytes of AES-ECB(K)[0^128]. Some counterparts still use it.
pub fn aes_ecb_kcv(key: &AesKey) -> [u8; KCV_BYTES] {
    first3(&Aes::new(key).encrypt(&[0; 16]))
}
