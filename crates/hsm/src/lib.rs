//! The HSM boundary: the only place clear keys live.
//!
//! **The software HSM ([`SoftHsm`]) is for development and testing; it is not a PCI PIN-approved
//! device** and must not protect live cardholder PINs or production keys.
//!
//! ```
//! use hsm::{Hsm, KeySpec, MacAlgorithm, SoftHsm};
//! use paycrypto::mac::Padding;
//!
//! let hsm = SoftHsm::new(&[0x42; 32])?; // the local master key (LMK), AES-256
//! let mac_key = hsm.generate_key(&KeySpec::mac_retail())?;
//! let mac = hsm.generate_mac(&mac_key, MacAlgorithm::Iso9797Alg3(Padding::Method1), b"0200...")?;
//! assert!(hsm.verify_mac(&mac_key, MacAlgorithm::Iso9797Alg3(Padding::Method1), b"0200...", &mac)?);
//! println!("LMK check value {}", hsm.master_key_check_value());
//! # Ok::<(), hsm::HsmError>(())
//! ```
//!
//! Keys leave the HSM only as [`KeyToken`]s: TR-31 version D key blocks under the local master
//! key (LMK), so every stored key is bound to its usage, algorithm and mode of use, and every
//! operation checks them. The [`Hsm`] trait is what the host, issuer and terminal code use, so a
//! hardware or cloud payment HSM can replace the software one.
//!
//! PIN translation obeys the ISO 9564-1 restrictions as this crate reads them (see
//! [`translation_allowed`]): a PIN block bound to a PAN (formats 0, 3, 4) is never translated
//! into format 1, which carries no PAN; the PAN never changes during translation.

mod error;
mod soft;

pub use error::HsmError;
pub use soft::{MAX_CACHED_KEYS, SoftHsm};

use paycrypto::card::DecimalisationTable;
use paycrypto::dukpt::{aes as aes_dukpt, tdes};
use paycrypto::emv::CryptogramVersion;
use paycrypto::mac::Padding;
use paycrypto::pinblock::PinBlockFormat;
use paycrypto::tr31::{Algorithm, Exportability, KeyUsage, ModeOfUse};
use paycrypto::{Pan, Pin, PinBlock};
use std::fmt;

/// Result alias for HSM operations.
pub type Result<T> = std::result::Result<T, HsmError>;

/// A key as the HSM hands it out: a TR-31 key block under the LMK. It holds no clear key
/// material, but `Debug` still shows only its header (usage, algorithm, mode).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyToken(String);

impl KeyToken {
    /// Wraps a stored token (from a database or configuration).
    pub fn new(block: impl Into<String>) -> Self {
        Self(block.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The 16-character TR-31 header (readable without the LMK).
    pub fn header_text(&self) -> &str {
        self.0.get(..16).unwrap_or("")
    }
}

impl fmt::Debug for KeyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyToken({}…)", self.header_text())
    }
}

/// What kind of key to generate or import in the clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    pub usage: KeyUsage,
    pub algorithm: Algorithm,
    pub mode_of_use: ModeOfUse,
    /// Key length in bytes (TDES 16 or 24, AES 16, 24 or 32).
    pub length: usize,
    pub exportability: Exportability,
}

impl KeySpec {
    pub fn new(
        usage: KeyUsage,
        algorithm: Algorithm,
        mode_of_use: ModeOfUse,
        length: usize,
    ) -> Self {
        Self {
            usage,
            algorithm,
            mode_of_use,
            length,
            exportability: Exportability::Exportable,
        }
    }
    /// A TDES PIN zone key (encrypt and decrypt).
    pub fn pin_zone_tdes() -> Self {
        Self::new(
            KeyUsage::PIN_ENCRYPTION,
            Algorithm::Tdes,
            ModeOfUse::Both,
            16,
        )
    }
    /// An AES-128 PIN zone key for format 4.
    pub fn pin_zone_aes() -> Self {
        Self::new(
            KeyUsage::PIN_ENCRYPTION,
            Algorithm::Aes,
            ModeOfUse::Both,
            16,
        )
    }
    /// A TDES DUKPT BDK.
    pub fn bdk_tdes() -> Self {
        Self::new(KeyUsage::BDK, Algorithm::Tdes, ModeOfUse::Derive, 16)
    }
    /// An AES DUKPT BDK of 16 or 32 bytes.
    pub fn bdk_aes(length: usize) -> Self {
        Self::new(KeyUsage::BDK, Algorithm::Aes, ModeOfUse::Derive, length)
    }
    /// An ISO 9797-1 algorithm 3 (retail) MAC key.
    pub fn mac_retail() -> Self {
        Self::new(KeyUsage::MAC_ALG3, Algorithm::Tdes, ModeOfUse::Compute, 16)
    }
    /// An AES-CMAC key.
    pub fn mac_cmac() -> Self {
        Self::new(KeyUsage::MAC_CMAC, Algorithm::Aes, ModeOfUse::Compute, 16)
    }
    /// A Visa PVV verification key pair.
    pub fn pvk_visa() -> Self {
        Self::new(
            KeyUsage::PIN_VERIFICATION_VISA_PVV,
            Algorithm::Tdes,
            ModeOfUse::Compute,
            16,
        )
    }
    /// An IBM 3624 PIN verification key.
    pub fn pvk_ibm3624() -> Self {
        Self::new(
            KeyUsage::PIN_VERIFICATION_IBM3624,
            Algorithm::Tdes,
            ModeOfUse::Compute,
            16,
        )
    }
    /// A CVK pair for CVV / CVV2 / iCVV.
    pub fn cvk() -> Self {
        Self::new(KeyUsage::CVK, Algorithm::Tdes, ModeOfUse::Compute, 16)
    }
    /// An HMAC-SHA-256 key for keyed card-number fingerprints (M7, 32 bytes).
    pub fn pan_fingerprint() -> Self {
        Self::new(KeyUsage::MAC_HMAC, Algorithm::Hmac, ModeOfUse::Generate, 32)
    }
    /// An EMV issuer master key for application cryptograms (derives ICC master keys).
    pub fn issuer_master_key() -> Self {
        Self::new(
            KeyUsage::EMV_MASTER_KEY_AC,
            Algorithm::Tdes,
            ModeOfUse::Derive,
            16,
        )
    }
    /// An Ed25519 signing key (S0, elliptic curve, signature only): the acquirer's receipt
    /// signing key. Never exportable: only its public key leaves the HSM.
    pub fn receipt_signing() -> Self {
        let mut spec = Self::new(
            KeyUsage::ASYMMETRIC_SIGNATURE,
            Algorithm::EllipticCurve,
            ModeOfUse::Sign,
            32,
        );
        spec.exportability = Exportability::NonExportable;
        spec
    }
    /// A TR-31 key-block protection key (import / export) of the given algorithm.
    /// A terminal master key (UnionPay-style master/session scheme): encrypts the working keys
    /// delivered to its terminal at sign-on.
    pub fn terminal_master_key() -> Self {
        Self::new(
            KeyUsage::KEY_ENCRYPTION,
            Algorithm::Tdes,
            ModeOfUse::Encrypt,
            16,
        )
    }
    pub fn kbpk(algorithm: Algorithm, length: usize) -> Self {
        Self::new(
            KeyUsage::KEY_BLOCK_PROTECTION,
            algorithm,
            ModeOfUse::Both,
            length,
        )
    }
}

/// Where an incoming PIN block is encrypted.
#[derive(Debug, Clone, Copy)]
pub enum PinSource<'a> {
    /// Under a PIN zone key (P0) in the given format (TDES for 0/1/3, AES for 4).
    Zone {
        key: &'a KeyToken,
        format: PinBlockFormat,
    },
    /// Under a TDES DUKPT PIN key (X9.24-1), derived from the BDK (B0, TDES) and the KSN.
    TdesDukpt {
        bdk: &'a KeyToken,
        ksn: tdes::Ksn,
        format: PinBlockFormat,
    },
    /// Under an AES DUKPT PIN key (X9.24-3), format 4, with the working key type.
    AesDukpt {
        bdk: &'a KeyToken,
        ksn: aes_dukpt::Ksn,
        key_type: aes_dukpt::KeyType,
    },
}

impl PinSource<'_> {
    pub fn format(&self) -> PinBlockFormat {
        match self {
            Self::Zone { format, .. } | Self::TdesDukpt { format, .. } => *format,
            Self::AesDukpt { .. } => PinBlockFormat::Iso4,
        }
    }
}

/// Where a translated PIN block goes: a zone key and format.
#[derive(Debug, Clone, Copy)]
pub struct PinDestination<'a> {
    pub key: &'a KeyToken,
    pub format: PinBlockFormat,
}

/// How a PIN is verified.
#[derive(Debug, Clone, Copy)]
pub enum PinVerification<'a> {
    /// Visa PVV under a V2 key.
    VisaPvv {
        pvk: &'a KeyToken,
        pvki: u8,
        pvv: &'a str,
    },
    /// IBM 3624 offset under a V1 key.
    Ibm3624 {
        pvk: &'a KeyToken,
        validation_data: &'a str,
        pad: char,
        table: DecimalisationTable,
        offset: &'a str,
    },
}

/// MAC algorithms the HSM computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacAlgorithm {
    /// ISO 9797-1 algorithm 1 (M1 key).
    Iso9797Alg1(Padding),
    /// ISO 9797-1 algorithm 3, X9.19 retail MAC (M3 key).
    Iso9797Alg3(Padding),
    /// AES-CMAC (M6 key).
    AesCmac,
}

/// Which side of an exchange a DUKPT MAC belongs to: the terminal's request or the host's
/// response. Each has its own key (X9.24-1 variants; X9.24-3 key usages, named from the
/// terminal's side: it generates request MACs and verifies response MACs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacDirection {
    Request,
    Response,
}

/// The per-transaction MAC key of a DUKPT terminal, derived inside the HSM from the BDK and the
/// KSN the terminal sent.
#[derive(Debug, Clone, Copy)]
pub enum DukptMacKey<'a> {
    /// X9.24-1: the MAC request or response variant of the transaction key; ISO 9797-1
    /// algorithm 3 (X9.19), padding method 1.
    Tdes { bdk: &'a KeyToken, ksn: tdes::Ksn },
    /// X9.24-3: a working key for MAC generation (request) or verification (response) of
    /// `key_type`; AES-CMAC.
    Aes {
        bdk: &'a KeyToken,
        ksn: aes_dukpt::Ksn,
        key_type: aes_dukpt::KeyType,
    },
}

/// An ARQC to verify: the card's data and the issuer master key it was derived from.
#[derive(Debug, Clone, Copy)]
pub struct ArqcRequest<'a> {
    /// Issuer master key for application cryptograms (E0, mode X).
    pub issuer_master_key: &'a KeyToken,
    pub pan: &'a Pan,
    /// PAN sequence number (5F34), 0 when absent.
    pub psn: u8,
    /// Application transaction counter (9F36).
    pub atc: [u8; 2],
    /// Unpredictable number (9F37), used by Mastercard SKD.
    pub unpredictable_number: [u8; 4],
    pub cryptogram_version: CryptogramVersion,
    /// The CDOL1 data the card MACed, in order.
    pub data: &'a [u8],
    pub arqc: [u8; 8],
}

/// What to put in the ARPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArpcInput {
    /// Method 1: the authorisation response code (2 bytes).
    Method1 { arc: [u8; 2] },
    /// Method 2: card status update (4 bytes) and proprietary authentication data (0–8 bytes).
    Method2 { csu: [u8; 4], proprietary: Vec<u8> },
}

/// The outcome of ARQC verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArqcOutcome {
    pub arqc_valid: bool,
    /// The ARPC (8 bytes for method 1, 4 for method 2) when one was requested.
    pub arpc: Option<Vec<u8>>,
}

/// Random bytes from the operating-system-seeded CSPRNG, for callers that need PIN block fill or
/// TR-31 padding outside the HSM (the `easypos tools` calculators) and have no RNG of their own.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut out = [0u8; N];
    rand::rng().fill_bytes(&mut out);
    out
}

/// Whether ISO 9564-1 allows translating a PIN block from one format to another here: a
/// PAN-bound format (0, 3, 4) must not become format 1, which would detach the PIN from the PAN.
pub fn translation_allowed(from: PinBlockFormat, to: PinBlockFormat) -> bool {
    !from.uses_pan() || to.uses_pan()
}

/// The operations of a payment HSM. Implementations hold clear keys only inside themselves.
pub trait Hsm: Send + Sync {
    /// The check value of the local master key, to tell which LMK a deployment runs under.
    fn master_key_check_value(&self) -> String;

    /// Generates a random key and returns it under the LMK.
    fn generate_key(&self, spec: &KeySpec) -> Result<KeyToken>;

    /// Imports a clear key (key ceremony, development and tests only).
    fn import_clear_key(&self, spec: &KeySpec, key: &[u8]) -> Result<KeyToken>;

    /// Imports a TR-31 block wrapped under a key-encryption key (K0 or K1) held in the HSM.
    fn import_key(&self, kek: &KeyToken, block: &str) -> Result<KeyToken>;

    /// Exports a key as a TR-31 block under a key-encryption key; the key must be exportable.
    fn export_key(&self, kek: &KeyToken, key: &KeyToken) -> Result<String>;

    /// Derives the AES DUKPT initial key (X9.24-3) of `initial_key_id` from the base derivation
    /// key `bdk` and exports it as a TR-31 version D block (usage B1, mode X) under the AES
    /// key-block protection key `kbpk`, with its check value (AES-CMAC, 3 bytes): what a key
    /// injection facility loads into a PIN pad. The clear initial key never leaves the HSM.
    fn export_aes_dukpt_initial_key(
        &self,
        kbpk: &KeyToken,
        bdk: &KeyToken,
        initial_key_id: &[u8; 8],
    ) -> Result<(String, [u8; 3])>;

    /// The key check value (TDES: E(K)[0]; AES: CMAC of zeros), 3 bytes.
    fn key_check_value(&self, key: &KeyToken) -> Result<[u8; 3]>;

    /// Re-encrypts a PIN block from `source` to `destination` without revealing the PIN.
    fn translate_pin(
        &self,
        block: &PinBlock,
        source: &PinSource<'_>,
        destination: &PinDestination<'_>,
        pan: &Pan,
    ) -> Result<PinBlock>;

    /// Checks a PIN block against a PVV or IBM 3624 offset, comparing in constant time.
    fn verify_pin(
        &self,
        block: &PinBlock,
        source: &PinSource<'_>,
        pan: &Pan,
        method: &PinVerification<'_>,
    ) -> Result<bool>;

    /// Verifies an ARQC (deriving the ICC master key and session key inside) and, when asked,
    /// produces the ARPC with the method the cryptogram version prescribes.
    fn verify_arqc(
        &self,
        request: &ArqcRequest<'_>,
        arpc: Option<&ArpcInput>,
    ) -> Result<ArqcOutcome>;

    /// Computes a MAC with an M1 / M3 / M6 key.
    fn generate_mac(&self, key: &KeyToken, algorithm: MacAlgorithm, data: &[u8])
    -> Result<Vec<u8>>;

    /// Verifies a MAC (constant time). A MAC shorter than the full block is compared on its
    /// length (4 bytes is common for ISO 8583 field 64 halves); fewer than 4 bytes is refused.
    fn verify_mac(
        &self,
        key: &KeyToken,
        algorithm: MacAlgorithm,
        data: &[u8],
        mac: &[u8],
    ) -> Result<bool>;

    /// Verifies a CVV / CVV2 / iCVV with a C0 key.
    fn verify_cvv(
        &self,
        cvk: &KeyToken,
        pan: &Pan,
        expiry: &str,
        service_code: &str,
        cvv: &str,
    ) -> Result<bool>;

    /// Generates a working key (PIN or MAC key of the master/session scheme) and returns it both
    /// under the LMK, for the host, and encrypted under the terminal master key with its check
    /// value, for the sign-on response.
    fn generate_working_key(
        &self,
        tmk: &KeyToken,
        spec: &KeySpec,
        check_value_len: usize,
    ) -> Result<(KeyToken, paycrypto::session::EncryptedWorkingKey)>;

    /// A keyed fingerprint of a card number: HMAC-SHA-256 of its digits under an M7 key. Cards
    /// are found by fingerprint, so the number itself need not be stored to be looked up, and
    /// a stolen table of fingerprints reveals nothing without the key.
    fn pan_fingerprint(&self, key: &KeyToken, pan: &Pan) -> Result<[u8; 32]>;

    /// The Visa PVV of a PIN, for card issuance (the PIN-mailer ceremony, demo cards). The PIN
    /// enters the HSM in clear here, as it does when an HSM prints a PIN mailer; production
    /// issuance would take it as a PIN block instead.
    fn generate_pvv(&self, pvk: &KeyToken, pan: &Pan, pvki: u8, pin: &Pin) -> Result<String>;

    /// The IBM 3624 offset of a chosen PIN under a V1 key (a supervisor's terminal password,
    /// enrolled once; docs/risk.md#supervisor-passwords). The PIN enters in clear, as in
    /// [`Hsm::generate_pvv`]; it is later checked with [`Hsm::verify_pin`], as a PIN block.
    fn generate_pin_offset(
        &self,
        pvk: &KeyToken,
        validation_data: &str,
        pad: char,
        table: &DecimalisationTable,
        pin: &Pin,
    ) -> Result<String>;

    /// A MAC under a DUKPT terminal's transaction MAC key (full block: 8 bytes for TDES, 16 for
    /// AES-CMAC; ISO 8583 field 64 takes the leftmost 8).
    fn generate_dukpt_mac(
        &self,
        key: &DukptMacKey<'_>,
        direction: MacDirection,
        data: &[u8],
    ) -> Result<Vec<u8>>;

    /// Verifies a MAC under a DUKPT terminal's transaction MAC key, on the MAC's length (at
    /// least 4 bytes), in constant time.
    fn verify_dukpt_mac(
        &self,
        key: &DukptMacKey<'_>,
        direction: MacDirection,
        data: &[u8],
        mac: &[u8],
    ) -> Result<bool>;

    /// The Ed25519 public key of an S0 signing key (RFC 8032, 32 bytes).
    fn ed25519_public_key(&self, key: &KeyToken) -> Result<[u8; 32]>;

    /// An Ed25519 signature (RFC 8032, 64 bytes) of `data` under an S0 signing key.
    fn ed25519_sign(&self, key: &KeyToken, data: &[u8]) -> Result<[u8; 64]>;

    /// Derives the ICC master key for a card from an issuer master key (option A, or B for PANs
    /// over 16 digits), returned under the LMK (E0, mode C, for card personalisation).
    fn derive_icc_master_key(
        &self,
        issuer_master_key: &KeyToken,
        pan: &Pan,
        psn: u8,
    ) -> Result<KeyToken>;
}
