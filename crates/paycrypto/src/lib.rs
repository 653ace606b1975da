//! Payment cryptography as pure functions: no I/O, no clock, no randomness of its own.
//!
//! ```
//! use paycrypto::{Pan, Pin, TdesKey, dukpt::tdes, pinblock::{self, PinBlockFormat, PinKey}};
//!
//! // ANSI X9.24-1 Annex A: BDK and KSN of the published example, first transaction.
//! let bdk = TdesKey::new(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
//!                          0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10])?;
//! let ksn = tdes::Ksn::new(&[0xFF, 0xFF, 0x98, 0x76, 0x54, 0x32, 0x10, 0xE0, 0x00, 0x01])?;
//! let pin_key = tdes::working_key(&tdes::host_transaction_key(&bdk, &ksn)?, tdes::Variant::Pin)?;
//! let pan = Pan::new("4012345678909")?;
//! let block = pinblock::encrypt_pin_block(
//!     PinBlockFormat::Iso0, PinKey::Tdes(&pin_key), &Pin::new("1234")?, Some(&pan), &[0; 8])?;
//! assert_eq!(block.to_hex(), "1B9C1845EB993A7A");
//! # Ok::<(), paycrypto::Error>(())
//! ```
//!
//! Modules:
//! - [`pinblock`]: ISO 9564-1 PIN blocks, formats 0, 1, 3, 4.
//! - [`dukpt`]: ANSI X9.24-1 TDES DUKPT and X9.24-3-2017 AES DUKPT, host and device sides.
//! - [`session`]: master/session keys (UnionPay-style working keys under a terminal master key).
//! - [`card`]: CVV / CVV2 / iCVV, Visa PVV, IBM 3624 natural PIN and offset, Luhn.
//! - [`mac`]: ISO 9797-1 MAC algorithms 1 and 3, padding methods 1 and 2, AES-CMAC, TDES-CMAC.
//! - [`emv`]: ICC master keys (options A and B), session keys, ARQC, ARPC methods 1 and 2.
//! - [`tr31`]: ANSI TR-31 key blocks, versions B and D.
//! - [`kcv`]: key check values (TDES, AES-CMAC, legacy AES-ECB).
//!
//! Secrets are wrapper types ([`TdesKey`], [`AesKey`], [`Pin`], [`Pan`], [`PinBlock`],
//! [`SecretBytes`]) whose `Debug` masks the value and which zeroize on drop. Errors ([`Error`])
//! name the input that was wrong and never carry its value.
//!
//! Where the standards leave a choice, the choice made here is documented on the item and in
//! `docs/tools.md`: TDES DUKPT data keys take the one-way step; AES KCV is CMAC-based
//! (legacy ECB available); EMV option B applies when the PAN alone exceeds 16 digits; PIN block
//! formats 0/3 zero-pad PANs shorter than 13 digits; TR-31 version D pads with 1–16 random bytes.
//! The UnionPay POS MAC ("ECB" variant) is not implemented: its description is not public.

pub mod block;
pub mod card;
mod des_tables;
pub mod dukpt;
pub mod emv;
mod error;
pub mod kcv;
pub mod mac;
pub mod pinblock;
mod secret;
pub mod session;
pub mod tr31;
mod util;

pub use error::{Error, Result};
pub use secret::{
    AesKey, PAN_MAX_DIGITS, PAN_MIN_DIGITS, PIN_MAX_DIGITS, PIN_MIN_DIGITS, Pan, Pin, PinBlock,
    SecretBytes, TdesKey,
};

/// Upper-case hex of bytes (for check values, KSNs and tools output).
pub fn to_hex(bytes: &[u8]) -> String {
    util::hex_upper(bytes)
}
