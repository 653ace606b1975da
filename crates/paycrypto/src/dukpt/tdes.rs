//! ANSI X9.24-1 TDES DUKPT (the 2009 algorithm, 21-bit counter, 2-key TDEA keys).

use super::{Register, check_counter, next_counter};
use crate::block::{Tdes, des_encrypt};
use crate::error::{Error, Result, expect_len};
use crate::secret::{SecretBytes, TdesKey};
use crate::util::{array8, hex_upper, xor_in_place, xor8};
use std::fmt;

/// Bytes in a TDES DUKPT key serial number.
pub const KSN_BYTES: usize = 10;
/// Bits of the transaction counter (rightmost bits of the KSN).
pub const COUNTER_BITS: u32 = 21;
/// A device never uses a counter with more one bits than this.
pub const MAX_ONE_BITS: u32 = 10;
/// The last counter a device uses (ten one bits at the top).
pub const LAST_COUNTER: u32 = 0x1F_F800;
const COUNTER_MASK: u64 = (1 << COUNTER_BITS) - 1;
/// X9.24-1 key mask applied for the right half of the IPEK and inside NRKGP.
const KEY_MASK: [u8; 16] = [
    0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0, 0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0,
];
/// DUKPT keys are double-length TDEA.
const KEY_BYTES: usize = 16;

/// An 80-bit KSN: 59-bit initial KSN + 21-bit transaction counter. Not secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ksn([u8; KSN_BYTES]);

impl Ksn {
    pub fn new(bytes: &[u8]) -> Result<Self> {
        expect_len("KSN", "10", bytes.len(), bytes.len() == KSN_BYTES)?;
        let mut ksn = [0u8; KSN_BYTES];
        ksn.copy_from_slice(bytes);
        Ok(Self(ksn))
    }
    pub fn bytes(&self) -> &[u8; KSN_BYTES] {
        &self.0
    }
    pub fn counter(&self) -> u32 {
        // Masked to 21 bits, so it fits.
        (self.tail() & COUNTER_MASK) as u32
    }
    /// The same initial KSN with another counter.
    pub fn with_counter(&self, counter: u32) -> Result<Self> {
        if u64::from(counter) > COUNTER_MASK {
            return Err(Error::InvalidCounter("does not fit in 21 bits"));
        }
        let tail = (self.tail() & !COUNTER_MASK) | u64::from(counter);
        let mut ksn = self.0;
        ksn[2..].copy_from_slice(&tail.to_be_bytes());
        Ok(Self(ksn))
    }
    /// The KSN a device sends next, or `CounterExhausted` after 0x1FF800.
    pub fn next(&self) -> Result<Self> {
        let next = next_counter(u64::from(self.counter()), COUNTER_BITS, MAX_ONE_BITS)?;
        // `next_counter` checked it fits in 21 bits.
        self.with_counter(next as u32)
    }
    pub fn to_hex(&self) -> String {
        hex_upper(&self.0)
    }
    /// The rightmost 64 bits.
    fn tail(&self) -> u64 {
        u64::from_be_bytes(array8(&self.0[2..]))
    }
}

impl fmt::Debug for Ksn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ksn({})", self.to_hex())
    }
}

/// Key variants of X9.24-1 (table A-1): which bytes of the transaction key are XORed with FF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    Pin,
    MacRequest,
    MacResponse,
    DataRequest,
    DataResponse,
}

impl Variant {
    pub const ALL: [Variant; 5] = [
        Self::Pin,
        Self::MacRequest,
        Self::MacResponse,
        Self::DataRequest,
        Self::DataResponse,
    ];

    /// Index of the byte in each half that gets XOR FF.
    fn byte(self) -> usize {
        match self {
            Self::Pin => 7,
            Self::MacRequest => 6,
            Self::DataRequest => 5,
            Self::MacResponse => 4,
            Self::DataResponse => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Pin => "pin",
            Self::MacRequest => "mac-request",
            Self::MacResponse => "mac-response",
            Self::DataRequest => "data-request",
            Self::DataResponse => "data-response",
        }
    }
}

fn check_key(key: &TdesKey, what: &'static str) -> Result<()> {
    expect_len(what, "16", key.len(), key.len() == KEY_BYTES)
}

/// IPEK (initial key) from the BDK and any KSN of the device (the counter is ignored).
pub fn derive_ipek(bdk: &TdesKey, ksn: &Ksn) -> Result<TdesKey> {
    check_key(bdk, "BDK")?;
    let mut ksn8 = array8(&ksn.0[..8]);
    ksn8[7] &= 0xE0;
    let left = Tdes::new(bdk).encrypt(&ksn8);
    let mut masked = SecretBytes::new(bdk.expose()).expose().to_vec();
    xor_in_place(&mut masked, &KEY_MASK);
    let masked = SecretBytes::from_vec(masked);
    let right = Tdes::from_bytes(masked.expose()).encrypt(&ksn8);
    TdesKey::new(&[left, right].concat())
}

/// The non-reversible key generation process of X9.24-1.
fn nrkgp(key: &[u8], r8: &[u8; 8]) -> SecretBytes {
    let half = |k: &[u8]| -> [u8; 8] {
        let right = array8(&k[8..]);
        xor8(&des_encrypt(&k[..8], &xor8(r8, &right)), &right)
    };
    let mut masked = key.to_vec();
    xor_in_place(&mut masked, &KEY_MASK);
    let masked = SecretBytes::from_vec(masked);
    let right = half(key);
    let left = half(masked.expose());
    SecretBytes::from_vec([left, right].concat())
}

/// NRKGP for the KSN with `counter` in its counter field.
fn derive_child(key: &SecretBytes, base: u64, counter: u64) -> SecretBytes {
    nrkgp(key.expose(), &(base | counter).to_be_bytes())
}

/// The transaction key for the KSN's counter, from the IPEK (host side).
pub fn transaction_key(ipek: &TdesKey, ksn: &Ksn) -> Result<TdesKey> {
    check_key(ipek, "IPEK")?;
    let counter = u64::from(ksn.counter());
    check_counter(counter, MAX_ONE_BITS)?;
    let base = ksn.tail() & !COUNTER_MASK;
    let mut key = SecretBytes::new(ipek.expose());
    let mut register = 0u64;
    for bit in (0..COUNTER_BITS).rev() {
        let shift = 1u64 << bit;
        if counter & shift != 0 {
            register |= shift;
            key = derive_child(&key, base, register);
        }
    }
    TdesKey::new(key.expose())
}

/// The transaction key straight from the BDK (host side).
pub fn host_transaction_key(bdk: &TdesKey, ksn: &Ksn) -> Result<TdesKey> {
    transaction_key(&derive_ipek(bdk, ksn)?, ksn)
}

/// A working key: the transaction key XOR the variant mask. Data keys also take the
/// X9.24-1:2009 A.4.1 one-way step `TDEA(v)[v_L] || TDEA(v)[v_R]` (our documented convention,
/// which reproduces the published A.4.2 data-encryption values).
pub fn working_key(transaction_key: &TdesKey, variant: Variant) -> Result<TdesKey> {
    check_key(transaction_key, "transaction key")?;
    let mut key = transaction_key.expose().to_vec();
    key[variant.byte()] ^= 0xFF;
    key[variant.byte() + 8] ^= 0xFF;
    let key = SecretBytes::from_vec(key);
    if matches!(variant, Variant::DataRequest | Variant::DataResponse) {
        let cipher = Tdes::from_bytes(key.expose());
        let left = cipher.encrypt(&array8(&key.expose()[..8]));
        let right = cipher.encrypt(&array8(&key.expose()[8..]));
        return TdesKey::new(&[left, right].concat());
    }
    TdesKey::new(key.expose())
}

/// The device side: a PIN pad holding only its 21 future keys, never the BDK or IPEK.
pub struct Device {
    initial_ksn: Ksn,
    register: Register,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tdes::Device(ksn base {}, next counter {:#x}, keys masked)",
            self.initial_ksn.to_hex(),
            self.register.counter()
        )
    }
}

impl Device {
    /// Loads the IPEK and the initial KSN; the IPEK is not kept.
    pub fn load_initial_key(ipek: &TdesKey, ksn: &Ksn) -> Result<Self> {
        check_key(ipek, "IPEK")?;
        let initial_ksn = ksn.with_counter(0)?;
        let base = initial_ksn.tail();
        let initial = SecretBytes::new(ipek.expose());
        let register = Register::load(&initial, COUNTER_BITS, MAX_ONE_BITS, |key, counter| {
            derive_child(key, base, counter)
        });
        Ok(Self {
            initial_ksn,
            register,
        })
    }

    /// The KSN and transaction key for the next transaction; the key is erased from the device.
    pub fn next_transaction(&mut self) -> Result<(Ksn, TdesKey)> {
        let base = self.initial_ksn.tail();
        let (counter, key) = self
            .register
            .take(|key, counter| derive_child(key, base, counter))?;
        // The register never yields a counter beyond 21 bits.
        Ok((
            self.initial_ksn.with_counter(counter as u32)?,
            TdesKey::new(key.expose())?,
        ))
    }

    /// The counter the next transaction will use.
    pub fn next_counter(&self) -> u64 {
        self.register.counter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hex: &str) -> TdesKey {
        TdesKey::new(&hex::decode(hex).unwrap()).unwrap()
    }

    #[test]
    fn device_at_last_counter_is_exhausted_after_one_more_transaction() {
        // The last counter has ten one bits, so no children, and the next step overflows 21 bits.
        let bdk = key("0123456789ABCDEFFEDCBA9876543210");
        let ksn = Ksn::new(&hex::decode("FFFF9876543210E00000").unwrap())
            .unwrap()
            .with_counter(LAST_COUNTER)
            .unwrap();
        let expected = host_transaction_key(&bdk, &ksn).unwrap();
        let base = ksn.with_counter(0).unwrap();
        let mut device = Device {
            initial_ksn: base,
            register: Register::positioned(
                u64::from(LAST_COUNTER),
                SecretBytes::new(expected.expose()),
                COUNTER_BITS,
                MAX_ONE_BITS,
            ),
        };
        let (used, txn) = device.next_transaction().unwrap();
        assert_eq!(used, ksn);
        assert_eq!(txn, expected);
        assert_eq!(
            device.next_transaction().unwrap_err(),
            Error::CounterExhausted
        );
        assert_eq!(ksn.next().unwrap_err(), Error::CounterExhausted);
    }
}
