//! ANSI X9.24-3-2017 AES DUKPT (32-bit counter, at most 16 one bits, AES-128/192/256 initial keys).

use super::{Register, check_counter, next_counter};
use crate::block::Aes;
use crate::error::{Error, Result, expect_len};
use crate::secret::{AesKey, SecretBytes};
use crate::util::{array8, hex_upper};
use std::fmt;

/// Bytes in an AES DUKPT KSN: Initial Key ID (BDK ID 4 + derivation ID 4) + 32-bit counter.
pub const KSN_BYTES: usize = 12;
/// Bytes of the Initial Key ID.
pub const INITIAL_KEY_ID_BYTES: usize = 8;
/// Bits of the transaction counter.
pub const COUNTER_BITS: u32 = 32;
/// A device never uses a counter with more one bits than this.
pub const MAX_ONE_BITS: u32 = 16;
/// The last counter a device uses.
pub const LAST_COUNTER: u32 = 0xFFFF_0000;
/// Version byte of the derivation data.
const DERIVATION_VERSION: u8 = 0x01;

/// A 96-bit AES DUKPT KSN. Not secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ksn([u8; KSN_BYTES]);

impl Ksn {
    pub fn new(bytes: &[u8]) -> Result<Self> {
        expect_len("KSN", "12", bytes.len(), bytes.len() == KSN_BYTES)?;
        let mut ksn = [0u8; KSN_BYTES];
        ksn.copy_from_slice(bytes);
        Ok(Self(ksn))
    }
    pub fn from_parts(initial_key_id: &[u8; INITIAL_KEY_ID_BYTES], counter: u32) -> Self {
        let mut ksn = [0u8; KSN_BYTES];
        ksn[..8].copy_from_slice(initial_key_id);
        ksn[8..].copy_from_slice(&counter.to_be_bytes());
        Self(ksn)
    }
    pub fn bytes(&self) -> &[u8; KSN_BYTES] {
        &self.0
    }
    pub fn initial_key_id(&self) -> [u8; INITIAL_KEY_ID_BYTES] {
        array8(&self.0[..8])
    }
    pub fn counter(&self) -> u32 {
        u32::from_be_bytes([self.0[8], self.0[9], self.0[10], self.0[11]])
    }
    pub fn with_counter(&self, counter: u32) -> Self {
        Self::from_parts(&self.initial_key_id(), counter)
    }
    /// The KSN a device sends next, or `CounterExhausted` after 0xFFFF0000.
    pub fn next(&self) -> Result<Self> {
        let next = next_counter(u64::from(self.counter()), COUNTER_BITS, MAX_ONE_BITS)?;
        // `next_counter` checked it fits in 32 bits.
        Ok(self.with_counter(next as u32))
    }
    pub fn to_hex(&self) -> String {
        hex_upper(&self.0)
    }
}

impl fmt::Debug for Ksn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ksn({})", self.to_hex())
    }
}

/// Key types of X9.24-3 (algorithm indicator and length of the derived key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    Tdes2,
    Tdes3,
    Aes128,
    Aes192,
    Aes256,
}

impl KeyType {
    fn algorithm(self) -> u16 {
        match self {
            Self::Tdes2 => 0x0000,
            Self::Tdes3 => 0x0001,
            Self::Aes128 => 0x0002,
            Self::Aes192 => 0x0003,
            Self::Aes256 => 0x0004,
        }
    }
    pub fn bits(self) -> u16 {
        match self {
            Self::Tdes2 | Self::Aes128 => 128,
            Self::Tdes3 | Self::Aes192 => 192,
            Self::Aes256 => 256,
        }
    }
    pub fn bytes(self) -> usize {
        usize::from(self.bits() / 8)
    }
    /// The AES key type of an AES key of this length.
    fn of_aes_key(key: &AesKey) -> Self {
        match key.len() {
            16 => Self::Aes128,
            24 => Self::Aes192,
            _ => Self::Aes256,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Tdes2 => "TDES2",
            Self::Tdes3 => "TDES3",
            Self::Aes128 => "AES128",
            Self::Aes192 => "AES192",
            Self::Aes256 => "AES256",
        }
    }
}

/// Key usage indicators of X9.24-3 derivation data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUsage {
    KeyEncryption,
    PinEncryption,
    MacGeneration,
    MacVerification,
    MacBoth,
    DataEncrypt,
    DataDecrypt,
    DataBoth,
    KeyDerivation,
    InitialKey,
}

impl KeyUsage {
    /// The working-key usages, in the order the tools print them.
    pub const WORKING: [KeyUsage; 8] = [
        Self::PinEncryption,
        Self::MacGeneration,
        Self::MacVerification,
        Self::MacBoth,
        Self::DataEncrypt,
        Self::DataDecrypt,
        Self::DataBoth,
        Self::KeyEncryption,
    ];

    fn code(self) -> u16 {
        match self {
            Self::KeyEncryption => 0x0002,
            Self::PinEncryption => 0x1000,
            Self::MacGeneration => 0x2000,
            Self::MacVerification => 0x2001,
            Self::MacBoth => 0x2002,
            Self::DataEncrypt => 0x3000,
            Self::DataDecrypt => 0x3001,
            Self::DataBoth => 0x3002,
            Self::KeyDerivation => 0x8000,
            Self::InitialKey => 0x8001,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::KeyEncryption => "key-encryption",
            Self::PinEncryption => "pin-encryption",
            Self::MacGeneration => "mac-generation",
            Self::MacVerification => "mac-verification",
            Self::MacBoth => "mac-both",
            Self::DataEncrypt => "data-encrypt",
            Self::DataDecrypt => "data-decrypt",
            Self::DataBoth => "data-both",
            Self::KeyDerivation => "key-derivation",
            Self::InitialKey => "initial-key",
        }
    }
}

/// The 16-byte derivation data of X9.24-3 section 6.3.3 (block counter set by `derive`).
fn derivation_data(usage: KeyUsage, key_type: KeyType, ksn: &Ksn, counter: u32) -> [u8; 16] {
    let mut data = [0u8; 16];
    data[0] = DERIVATION_VERSION;
    data[2..4].copy_from_slice(&usage.code().to_be_bytes());
    data[4..6].copy_from_slice(&key_type.algorithm().to_be_bytes());
    data[6..8].copy_from_slice(&key_type.bits().to_be_bytes());
    if usage == KeyUsage::InitialKey {
        data[8..].copy_from_slice(&ksn.0[..8]);
    } else {
        data[8..12].copy_from_slice(&ksn.0[4..8]);
        data[12..].copy_from_slice(&counter.to_be_bytes());
    }
    data
}

/// Encrypts the derivation data once per 128-bit block of output (block counter 1, 2) and
/// truncates to the key length.
fn derive(key: &[u8], key_type: KeyType, mut data: [u8; 16]) -> SecretBytes {
    let cipher = Aes::from_bytes(key);
    let blocks = key_type.bytes().div_ceil(16);
    let mut out = Vec::with_capacity(blocks * 16);
    for block in 1..=blocks {
        // At most 2 blocks (256 bits).
        data[1] = block as u8;
        out.extend_from_slice(&cipher.encrypt(&data));
    }
    out.truncate(key_type.bytes());
    SecretBytes::from_vec(out)
}

/// The initial key (IK) loaded into a device, from the BDK and the Initial Key ID.
pub fn initial_key(bdk: &AesKey, initial_key_id: &[u8; INITIAL_KEY_ID_BYTES]) -> Result<AesKey> {
    let key_type = KeyType::of_aes_key(bdk);
    let ksn = Ksn::from_parts(initial_key_id, 0);
    AesKey::new(
        derive(
            bdk.expose(),
            key_type,
            derivation_data(KeyUsage::InitialKey, key_type, &ksn, 0),
        )
        .expose(),
    )
}

fn derive_child(key: &SecretBytes, key_type: KeyType, ksn: &Ksn, counter: u64) -> SecretBytes {
    // Counters never exceed 32 bits here (the register checks), so the cast is exact.
    derive(
        key.expose(),
        key_type,
        derivation_data(KeyUsage::KeyDerivation, key_type, ksn, counter as u32),
    )
}

/// The intermediate derivation key for the KSN's counter, from the initial key (host side).
pub fn derivation_key(initial_key: &AesKey, ksn: &Ksn) -> Result<AesKey> {
    let counter = ksn.counter();
    check_counter(u64::from(counter), MAX_ONE_BITS)?;
    let key_type = KeyType::of_aes_key(initial_key);
    let mut key = SecretBytes::new(initial_key.expose());
    let mut working = 0u32;
    for bit in (0..COUNTER_BITS).rev() {
        let mask = 1u32 << bit;
        if counter & mask != 0 {
            working |= mask;
            key = derive_child(&key, key_type, ksn, u64::from(working));
        }
    }
    AesKey::new(key.expose())
}

/// A working key of `key_type` for `usage`, from the intermediate derivation key. X9.24-3
/// forbids deriving a key stronger than its parent, so AES-256 needs an AES-256 initial key.
pub fn working_key(
    derivation_key: &AesKey,
    ksn: &Ksn,
    usage: KeyUsage,
    key_type: KeyType,
) -> Result<SecretBytes> {
    if key_type.bytes() > derivation_key.len() {
        return Err(Error::Derivation(
            "working key would be stronger than the DUKPT initial key",
        ));
    }
    if matches!(usage, KeyUsage::KeyDerivation | KeyUsage::InitialKey) {
        return Err(Error::Derivation(
            "key-derivation usages are not working keys",
        ));
    }
    Ok(derive(
        derivation_key.expose(),
        key_type,
        derivation_data(usage, key_type, ksn, ksn.counter()),
    ))
}

/// An AES working key (`key_type` must be an AES type).
pub fn aes_working_key(
    derivation_key: &AesKey,
    ksn: &Ksn,
    usage: KeyUsage,
    key_type: KeyType,
) -> Result<AesKey> {
    if matches!(key_type, KeyType::Tdes2 | KeyType::Tdes3) {
        return Err(Error::Derivation("aes_working_key needs an AES key type"));
    }
    AesKey::new(working_key(derivation_key, ksn, usage, key_type)?.expose())
}

/// A working key straight from the BDK (host side).
pub fn host_working_key(
    bdk: &AesKey,
    ksn: &Ksn,
    usage: KeyUsage,
    key_type: KeyType,
) -> Result<SecretBytes> {
    let initial = initial_key(bdk, &ksn.initial_key_id())?;
    working_key(&derivation_key(&initial, ksn)?, ksn, usage, key_type)
}

/// The device side: holds 32 intermediate derivation keys, never the BDK or initial key.
pub struct Device {
    initial_ksn: Ksn,
    key_type: KeyType,
    register: Register,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "aes::Device(ksn base {}, next counter {:#x}, keys masked)",
            self.initial_ksn.to_hex(),
            self.register.counter()
        )
    }
}

impl Device {
    /// Loads the initial key and its Initial Key ID; the initial key is not kept.
    pub fn load_initial_key(
        initial_key: &AesKey,
        initial_key_id: &[u8; INITIAL_KEY_ID_BYTES],
    ) -> Self {
        let initial_ksn = Ksn::from_parts(initial_key_id, 0);
        let key_type = KeyType::of_aes_key(initial_key);
        let initial = SecretBytes::new(initial_key.expose());
        let register = Register::load(&initial, COUNTER_BITS, MAX_ONE_BITS, |key, counter| {
            derive_child(key, key_type, &initial_ksn, counter)
        });
        Self {
            initial_ksn,
            key_type,
            register,
        }
    }

    /// The KSN and intermediate derivation key for the next transaction (erased from the device).
    pub fn next_transaction(&mut self) -> Result<(Ksn, AesKey)> {
        let (ksn, key_type) = (self.initial_ksn, self.key_type);
        let (counter, key) = self
            .register
            .take(|key, counter| derive_child(key, key_type, &ksn, counter))?;
        // The register never yields a counter beyond 32 bits.
        Ok((ksn.with_counter(counter as u32), AesKey::new(key.expose())?))
    }

    /// The counter the next transaction will use.
    pub fn next_counter(&self) -> u64 {
        self.register.counter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_at_last_counter_is_exhausted_after_one_more_transaction() {
        let bdk = AesKey::new(&hex::decode("FEDCBA9876543210F1F1F1F1F1F1F1F1").unwrap()).unwrap();
        let ksn = Ksn::from_parts(
            &[0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56],
            LAST_COUNTER,
        );
        let ik = initial_key(&bdk, &ksn.initial_key_id()).unwrap();
        let expected = derivation_key(&ik, &ksn).unwrap();
        let mut device = Device {
            initial_ksn: ksn.with_counter(0),
            key_type: KeyType::Aes128,
            register: Register::positioned(
                u64::from(LAST_COUNTER),
                SecretBytes::new(expected.expose()),
                COUNTER_BITS,
                MAX_ONE_BITS,
            ),
        };
        let (used, key) = device.next_transaction().unwrap();
        assert_eq!((used, key), (ksn, expected));
        assert_eq!(
            device.next_transaction().unwrap_err(),
            Error::CounterExhausted
        );
        assert_eq!(ksn.next().unwrap_err(), Error::CounterExhausted);
    }
}
