//! Master/session keys (UnionPay-style): a terminal master key (TMK) loaded once, and working
//! PIN / MAC / data keys delivered at sign-on encrypted under it (TDEA-ECB) with check values.
//!
//! The check value is the leftmost bytes of `TDEA(K)[0^64]` (3 to 8 bytes; UnionPay terminals
//! commonly send 4). How the keys are laid out in the sign-on response (DE62) is not public:
//! callers split it and pass each key with its check value here.

use crate::block::Tdes;
use crate::error::{Error, Result, expect_len};
use crate::secret::{SecretBytes, TdesKey};
use crate::util::array8;
use subtle::ConstantTimeEq;

/// Shortest check value we accept.
pub const MIN_CHECK_VALUE_BYTES: usize = 3;
/// Longest check value (one whole DES block).
pub const MAX_CHECK_VALUE_BYTES: usize = 8;

/// A working key as delivered: encrypted under the TMK, with its check value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedWorkingKey {
    pub encrypted: Vec<u8>,
    pub check_value: Vec<u8>,
}

fn check_value(key: &[u8], len: usize) -> Vec<u8> {
    Tdes::from_bytes(key).encrypt(&[0; 8])[..len].to_vec()
}

/// Encrypts a working key under the TMK (ECB, block by block) and computes its check value.
pub fn encrypt_working_key(
    tmk: &TdesKey,
    key: &TdesKey,
    check_value_len: usize,
) -> Result<EncryptedWorkingKey> {
    if !(MIN_CHECK_VALUE_BYTES..=MAX_CHECK_VALUE_BYTES).contains(&check_value_len) {
        return Err(Error::Invalid("check value length must be 3 to 8 bytes"));
    }
    let cipher = Tdes::new(tmk);
    let encrypted = key
        .expose()
        .chunks(8)
        .flat_map(|chunk| cipher.encrypt(&array8(chunk)))
        .collect();
    Ok(EncryptedWorkingKey {
        encrypted,
        check_value: check_value(key.expose(), check_value_len),
    })
}

/// Decrypts a delivered working key and checks its check value (constant time).
pub fn decrypt_working_key(tmk: &TdesKey, delivered: &EncryptedWorkingKey) -> Result<TdesKey> {
    let len = delivered.encrypted.len();
    expect_len(
        "encrypted working key",
        "8, 16 or 24",
        len,
        matches!(len, 8 | 16 | 24),
    )?;
    let check_len = delivered.check_value.len();
    if !(MIN_CHECK_VALUE_BYTES..=MAX_CHECK_VALUE_BYTES).contains(&check_len) {
        return Err(Error::Invalid("check value length must be 3 to 8 bytes"));
    }
    let cipher = Tdes::new(tmk);
    let clear = SecretBytes::from_vec(
        delivered
            .encrypted
            .chunks(8)
            .flat_map(|chunk| cipher.decrypt(&array8(chunk)))
            .collect(),
    );
    let computed = check_value(clear.expose(), check_len);
    if !bool::from(computed.ct_eq(&delivered.check_value)) {
        return Err(Error::CheckValue("working key"));
    }
    TdesKey::new(clear.expose())
}
