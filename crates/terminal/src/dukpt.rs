//! The terminal's side of DUKPT. **AES DUKPT** (ANSI X9.24-3): a PIN pad holding an initial key
//! (IK) and its initial KSN derives one set of keys per transaction counter — the PIN key for an
//! ISO 9564 format 4 block, the MAC-generation key for its request and the MAC-verification key
//! for the host's answer. **TDES DUKPT** (ANSI X9.24-1:2009): a PIN pad holding an initial PIN
//! encryption key (IPEK) and its initial KSN derives each counter's transaction key, whose
//! variants are the PIN key (format 0 blocks), the MAC request key and the MAC response key
//! (docs/protocol.md "Key schemes"). The host derives the same keys in its HSM from the base
//! derivation key (BDK) and the KSN the terminal sends in field 62.
//!
//! Each counter is used once: the caller takes `next_counter`, saves it, and only then derives
//! and uses that transaction's keys.

use crate::TerminalError;
use paycrypto::dukpt::aes::{self as aes_dukpt, KeyType, KeyUsage, Ksn};
use paycrypto::dukpt::tdes;
use paycrypto::mac::{Padding, PreparedTdesKey};
use paycrypto::pinblock::{self, PinBlockFormat, PinKey};
use paycrypto::{AesKey, Pan, Pin, PinBlock, TdesKey};

/// Bytes of a MAC in field 64: the leftmost 8 of the AES-CMAC.
pub const MAC_BYTES: usize = 8;

/// A PIN pad's AES DUKPT key: its initial key and the KSN it was loaded with (counter 0).
pub struct AesDukptDevice {
    initial_key: AesKey,
    initial_ksn: Ksn,
}

impl std::fmt::Debug for AesDukptDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The KSN is not secret; the initial key is.
        write!(f, "AesDukptDevice({:?}, key masked)", self.initial_ksn)
    }
}

impl AesDukptDevice {
    /// The device loaded with `initial_key` (AES-128, 192 or 256) for `initial_ksn`, whose
    /// counter must be 0.
    pub fn new(initial_key: AesKey, initial_ksn: &[u8]) -> Result<Self, TerminalError> {
        let initial_ksn = Ksn::new(initial_ksn)?;
        if initial_ksn.counter() != 0 {
            return Err(TerminalError::Invalid(
                "an AES DUKPT initial KSN has a counter of 0",
            ));
        }
        Ok(Self {
            initial_key,
            initial_ksn,
        })
    }

    /// The initial KSN (12 bytes), as the host's `initial_ksn` records it.
    pub fn initial_ksn(&self) -> &Ksn {
        &self.initial_ksn
    }

    /// The counter after `last` (0: none used yet), skipping counters with more than 16 one
    /// bits; an error once the device has used its last counter and must be reloaded.
    pub fn next_counter(&self, last: u32) -> Result<u32, TerminalError> {
        Ok(self.initial_ksn.with_counter(last).next()?.counter())
    }

    /// The keys of transaction `counter` (one [`AesDukptDevice::next_counter`] gave).
    pub fn transaction(&self, counter: u32) -> Result<TransactionKeys, TerminalError> {
        if counter == 0 {
            return Err(TerminalError::Invalid(
                "AES DUKPT counter 0 is the initial KSN, never a transaction's",
            ));
        }
        let ksn = self.initial_ksn.with_counter(counter);
        let derivation = aes_dukpt::derivation_key(&self.initial_key, &ksn)?;
        let key = |usage| aes_dukpt::aes_working_key(&derivation, &ksn, usage, KeyType::Aes128);
        Ok(TransactionKeys {
            ksn,
            pin: key(KeyUsage::PinEncryption)?,
            mac_request: key(KeyUsage::MacGeneration)?,
            mac_answer: key(KeyUsage::MacVerification)?,
        })
    }
}

/// One transaction's AES-128 working keys and its KSN.
pub struct TransactionKeys {
    ksn: Ksn,
    pin: AesKey,
    mac_request: AesKey,
    mac_answer: AesKey,
}

impl std::fmt::Debug for TransactionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TransactionKeys({:?}, keys masked)", self.ksn)
    }
}

impl TransactionKeys {
    pub fn ksn(&self) -> &Ksn {
        &self.ksn
    }

    /// The PIN in an ISO 9564 format 4 block (16 bytes) bound to `pan`, under the PIN key;
    /// `fill` is the block's random fill (8 random bytes).
    pub fn pin_block(
        &self,
        pin: &Pin,
        pan: &Pan,
        fill: &[u8; pinblock::FILL_BYTES],
    ) -> Result<PinBlock, TerminalError> {
        Ok(pinblock::encrypt_pin_block(
            PinBlockFormat::Iso4,
            PinKey::Aes(&self.pin),
            pin,
            Some(pan),
            fill,
        )?)
    }

    /// Field 62 of this transaction's request: the KSN, then the format 4 PIN block when a
    /// PIN was entered (easypos's convention: field 52 holds only 8 bytes).
    pub fn field62(&self, pin_block: Option<&PinBlock>) -> Vec<u8> {
        let mut field62 = self.ksn.bytes().to_vec();
        if let Some(block) = pin_block {
            field62.extend_from_slice(block.as_bytes());
        }
        field62
    }

    /// The request's MAC (field 64): AES-CMAC under the MAC-generation key, leftmost 8 bytes.
    pub fn request_mac(&self, covered: &[u8]) -> [u8; MAC_BYTES] {
        leftmost(&paycrypto::mac::aes_cmac(&self.mac_request, covered))
    }

    /// Whether the answer's `mac` is the AES-CMAC of `covered` under the MAC-verification key
    /// (leftmost 8 bytes), compared in constant time.
    pub fn answer_mac_matches(&self, covered: &[u8], mac: &[u8]) -> bool {
        let expected = leftmost(&paycrypto::mac::aes_cmac(&self.mac_answer, covered));
        paycrypto::mac::macs_equal(&expected, mac)
    }
}

/// A PIN pad's TDES DUKPT key: its initial PIN encryption key (IPEK) and the KSN it was loaded
/// with (counter 0).
pub struct TdesDukptDevice {
    ipek: TdesKey,
    initial_ksn: tdes::Ksn,
}

impl std::fmt::Debug for TdesDukptDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TdesDukptDevice({:?}, key masked)", self.initial_ksn)
    }
}

impl TdesDukptDevice {
    /// The device loaded with `ipek` (double-length) for `initial_ksn` (10 bytes), whose
    /// counter must be 0.
    pub fn new(ipek: TdesKey, initial_ksn: &[u8]) -> Result<Self, TerminalError> {
        let initial_ksn = tdes::Ksn::new(initial_ksn)?;
        if initial_ksn.counter() != 0 {
            return Err(TerminalError::Invalid(
                "a TDES DUKPT initial KSN has a counter of 0",
            ));
        }
        if ipek.len() != 16 {
            return Err(TerminalError::Invalid(
                "a TDES DUKPT initial key is double-length (16 bytes)",
            ));
        }
        Ok(Self { ipek, initial_ksn })
    }

    /// The initial KSN (10 bytes), as the host's `initial_ksn` records it.
    pub fn initial_ksn(&self) -> &tdes::Ksn {
        &self.initial_ksn
    }

    /// The counter after `last` (0: none used yet), skipping counters with more than 10 one
    /// bits (X9.24-1); an error after the last counter (0x1FF800): the device must be reloaded.
    pub fn next_counter(&self, last: u32) -> Result<u32, TerminalError> {
        Ok(self.initial_ksn.with_counter(last)?.next()?.counter())
    }

    /// The keys of transaction `counter` (one [`TdesDukptDevice::next_counter`] gave).
    pub fn transaction(&self, counter: u32) -> Result<TdesTransactionKeys, TerminalError> {
        if counter == 0 {
            return Err(TerminalError::Invalid(
                "TDES DUKPT counter 0 is the initial KSN, never a transaction's",
            ));
        }
        let ksn = self.initial_ksn.with_counter(counter)?;
        let transaction = tdes::transaction_key(&self.ipek, &ksn)?;
        let prepared = |variant| -> Result<Box<PreparedTdesKey>, TerminalError> {
            Ok(Box::new(PreparedTdesKey::new(&tdes::working_key(
                &transaction,
                variant,
            )?)?))
        };
        Ok(TdesTransactionKeys {
            ksn,
            pin: tdes::working_key(&transaction, tdes::Variant::Pin)?,
            mac_request: prepared(tdes::Variant::MacRequest)?,
            mac_answer: prepared(tdes::Variant::MacResponse)?,
        })
    }
}

/// One TDES DUKPT transaction's working keys (the variants of its transaction key) and KSN.
pub struct TdesTransactionKeys {
    ksn: tdes::Ksn,
    pin: TdesKey,
    mac_request: Box<PreparedTdesKey>,
    mac_answer: Box<PreparedTdesKey>,
}

impl std::fmt::Debug for TdesTransactionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TdesTransactionKeys({:?}, keys masked)", self.ksn)
    }
}

impl TdesTransactionKeys {
    pub fn ksn(&self) -> &tdes::Ksn {
        &self.ksn
    }

    /// The PIN in an ISO 9564 format 0 block bound to `pan`, under the PIN variant (field 52).
    pub fn pin_block(&self, pin: &Pin, pan: &Pan) -> Result<PinBlock, TerminalError> {
        Ok(pinblock::encrypt_pin_block(
            PinBlockFormat::Iso0,
            PinKey::Tdes(&self.pin),
            pin,
            Some(pan),
            // Format 0 has no random fill.
            &[0; pinblock::FILL_BYTES],
        )?)
    }

    /// Field 62 of this transaction's request: the 10-byte KSN (the PIN block is in field 52).
    pub fn field62(&self) -> Vec<u8> {
        self.ksn.bytes().to_vec()
    }

    /// The request's MAC: X9.19 (ISO 9797-1 algorithm 3, padding 1) under the MAC request
    /// variant.
    pub fn request_mac(&self, covered: &[u8]) -> [u8; MAC_BYTES] {
        self.mac_request.retail_mac(covered, Padding::Method1)
    }

    /// Whether the answer's `mac` is the X9.19 MAC of `covered` under the MAC response
    /// variant, compared in constant time.
    pub fn answer_mac_matches(&self, covered: &[u8], mac: &[u8]) -> bool {
        let expected = self.mac_answer.retail_mac(covered, Padding::Method1);
        paycrypto::mac::macs_equal(&expected, mac)
    }
}

fn leftmost(cmac: &[u8; 16]) -> [u8; MAC_BYTES] {
    let mut mac = [0; MAC_BYTES];
    mac.copy_from_slice(&cmac[..MAC_BYTES]);
    mac
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hsm::{DukptMacKey, Hsm, KeySpec, MacDirection, PinDestination, PinSource, SoftHsm};

    /// X9.24-3 B.1's BDK and initial KSN (the acquirer tests' AES DUKPT terminal).
    const BDK: &str = "FEDCBA9876543210F1F1F1F1F1F1F1F1";
    const INITIAL_KSN: &str = "123456789012345600000000";
    const PAN: &str = "6212345000000001";

    /// The device as a key-injection facility loads it: the IK derived from the BDK for its
    /// initial key id.
    fn device() -> AesDukptDevice {
        let bdk = AesKey::new(&hex::decode(BDK).unwrap()).unwrap();
        let ksn = hex::decode(INITIAL_KSN).unwrap();
        let initial_key =
            aes_dukpt::initial_key(&bdk, &Ksn::new(&ksn).unwrap().initial_key_id()).unwrap();
        AesDukptDevice::new(initial_key, &ksn).unwrap()
    }

    #[test]
    fn the_host_s_hsm_reads_what_the_pin_pad_makes() {
        let hsm = SoftHsm::new(&[0x42; 32]).unwrap();
        let bdk = hsm
            .import_clear_key(&KeySpec::bdk_aes(16), &hex::decode(BDK).unwrap())
            .unwrap();
        let zone_key = [0x3C; 16];
        let zpk = hsm
            .import_clear_key(&KeySpec::pin_zone_aes(), &zone_key)
            .unwrap();
        let device = device();
        let pan = Pan::new(PAN).unwrap();
        let counter = device.next_counter(0).unwrap();
        let keys = device.transaction(counter).unwrap();
        assert_eq!(keys.ksn().counter(), 1);

        // The PIN block, translated by the host from the DUKPT PIN key to its zone key.
        let block = keys
            .pin_block(&Pin::new("123456").unwrap(), &pan, &[0x5A; 8])
            .unwrap();
        assert_eq!(block.as_bytes().len(), 16);
        let translated = hsm
            .translate_pin(
                &block,
                &PinSource::AesDukpt {
                    bdk: &bdk,
                    ksn: *keys.ksn(),
                    key_type: KeyType::Aes128,
                },
                &PinDestination {
                    key: &zpk,
                    format: PinBlockFormat::Iso4,
                },
                &pan,
            )
            .unwrap();
        let pin = pinblock::decrypt_pin_block(
            PinBlockFormat::Iso4,
            PinKey::Aes(&AesKey::new(&zone_key).unwrap()),
            &translated,
            Some(&pan),
        )
        .unwrap();
        assert_eq!(pin.expose().as_str(), "123456");

        // The request MAC verifies at the host; the host's answer MAC verifies here.
        let mac_key = DukptMacKey::Aes {
            bdk: &bdk,
            ksn: *keys.ksn(),
            key_type: KeyType::Aes128,
        };
        let request = b"0200 covered bytes";
        assert!(
            hsm.verify_dukpt_mac(
                &mac_key,
                MacDirection::Request,
                request,
                &keys.request_mac(request)
            )
            .unwrap()
        );
        let answer = b"0210 covered bytes";
        let host_mac = hsm
            .generate_dukpt_mac(&mac_key, MacDirection::Response, answer)
            .unwrap();
        assert!(keys.answer_mac_matches(answer, &host_mac[..MAC_BYTES]));
        assert!(!keys.answer_mac_matches(b"0210 other bytes", &host_mac[..MAC_BYTES]));
        // The request key is not the answer key: a reflected request MAC is refused.
        assert!(!keys.answer_mac_matches(request, &keys.request_mac(request)));

        // Another counter, other keys: the host refuses counter 1's MAC under counter 2's KSN.
        let next = device
            .transaction(device.next_counter(counter).unwrap())
            .unwrap();
        assert_eq!(next.ksn().counter(), 2);
        assert!(
            !hsm.verify_dukpt_mac(
                &DukptMacKey::Aes {
                    bdk: &bdk,
                    ksn: *next.ksn(),
                    key_type: KeyType::Aes128,
                },
                MacDirection::Request,
                request,
                &keys.request_mac(request)
            )
            .unwrap()
        );
    }

    #[test]
    fn field_62_is_the_ksn_then_the_pin_block() {
        let keys = device().transaction(1).unwrap();
        assert_eq!(
            hex::encode_upper(keys.field62(None)),
            "123456789012345600000001"
        );
        let block = keys
            .pin_block(&Pin::new("1234").unwrap(), &Pan::new(PAN).unwrap(), &[0; 8])
            .unwrap();
        let field62 = keys.field62(Some(&block));
        assert_eq!(field62.len(), 28);
        assert_eq!(&field62[12..], block.as_bytes());
    }

    #[test]
    fn counters_skip_those_with_too_many_one_bits_and_end() {
        let device = device();
        // 0x0000FFFF has 16 one bits; the next with at most 16 is 0x00010000.
        assert_eq!(device.next_counter(0xFFFF).unwrap(), 0x0001_0000);
        assert!(device.next_counter(aes_dukpt::LAST_COUNTER).is_err());
        assert!(device.transaction(0).is_err());
        assert!(AesDukptDevice::new(AesKey::new(&[1; 16]).unwrap(), &[0x12; 12]).is_err());
    }

    /// X9.24-1 Annex A's BDK and initial KSN (the acquirer tests' TDES DUKPT terminal).
    const TDES_BDK: &str = "0123456789ABCDEFFEDCBA9876543210";
    const TDES_INITIAL_KSN: &str = "FFFF9876543210E00000";

    fn tdes_device() -> TdesDukptDevice {
        let bdk = TdesKey::new(&hex::decode(TDES_BDK).unwrap()).unwrap();
        let ksn = tdes::Ksn::new(&hex::decode(TDES_INITIAL_KSN).unwrap()).unwrap();
        TdesDukptDevice::new(tdes::derive_ipek(&bdk, &ksn).unwrap(), ksn.bytes()).unwrap()
    }

    #[test]
    fn a_tdes_pin_pad_makes_what_the_host_s_hsm_reads() {
        let hsm = SoftHsm::new(&[0x42; 32]).unwrap();
        let bdk = hsm
            .import_clear_key(&KeySpec::bdk_tdes(), &hex::decode(TDES_BDK).unwrap())
            .unwrap();
        let zone_key = [0x3D; 16];
        let zpk = hsm
            .import_clear_key(&KeySpec::pin_zone_tdes(), &zone_key)
            .unwrap();
        let device = tdes_device();
        let pan = Pan::new(PAN).unwrap();
        let keys = device.transaction(device.next_counter(0).unwrap()).unwrap();
        assert_eq!(hex::encode_upper(keys.field62()), "FFFF9876543210E00001");

        // X9.24-1 Annex A.2, KSN ...E00001: the PIN "1234" under PAN 4012345678909 gives
        // 1B9C1845EB993A7A (the published format 0 block).
        let published = keys
            .pin_block(
                &Pin::new("1234").unwrap(),
                &Pan::new("4012345678909").unwrap(),
            )
            .unwrap();
        assert_eq!(hex::encode_upper(published.as_bytes()), "1B9C1845EB993A7A");

        // The host translates the format 0 block to its zone key and finds the PIN.
        let block = keys.pin_block(&Pin::new("123456").unwrap(), &pan).unwrap();
        let translated = hsm
            .translate_pin(
                &block,
                &PinSource::TdesDukpt {
                    bdk: &bdk,
                    ksn: *keys.ksn(),
                    format: PinBlockFormat::Iso0,
                },
                &PinDestination {
                    key: &zpk,
                    format: PinBlockFormat::Iso0,
                },
                &pan,
            )
            .unwrap();
        let pin = pinblock::decrypt_pin_block(
            PinBlockFormat::Iso0,
            PinKey::Tdes(&TdesKey::new(&zone_key).unwrap()),
            &translated,
            Some(&pan),
        )
        .unwrap();
        assert_eq!(pin.expose().as_str(), "123456");

        // The request MAC verifies at the host, the host's answer MAC here; not the reverse.
        let mac_key = DukptMacKey::Tdes {
            bdk: &bdk,
            ksn: *keys.ksn(),
        };
        let request = b"0200 covered bytes";
        assert!(
            hsm.verify_dukpt_mac(
                &mac_key,
                MacDirection::Request,
                request,
                &keys.request_mac(request)
            )
            .unwrap()
        );
        let answer = b"0210 covered bytes";
        let host_mac = hsm
            .generate_dukpt_mac(&mac_key, MacDirection::Response, answer)
            .unwrap();
        assert!(keys.answer_mac_matches(answer, &host_mac[..MAC_BYTES]));
        assert!(!keys.answer_mac_matches(request, &keys.request_mac(request)));
    }

    #[test]
    fn tdes_counters_skip_those_with_more_than_ten_one_bits_and_end() {
        let device = tdes_device();
        // 0x3FF has ten one bits; 0x400 is next.
        assert_eq!(device.next_counter(0x3FF).unwrap(), 0x400);
        // 0x7FE has ten one bits; 0x7FF (eleven) is skipped, as are the next with too many.
        assert_eq!(device.next_counter(0x7FE).unwrap(), 0x800);
        assert!(device.next_counter(tdes::LAST_COUNTER).is_err());
        assert!(device.transaction(0).is_err());
        let ksn = hex::decode(TDES_INITIAL_KSN).unwrap();
        let key = TdesKey::new(&[1; 16]).unwrap();
        let mut used = ksn.clone();
        used[9] = 1;
        assert!(
            TdesDukptDevice::new(key.clone(), &used).is_err(),
            "counter 1"
        );
        assert!(TdesDukptDevice::new(key, &ksn[..8]).is_err());
        let text = format!("{:?} {:?}", device, device.transaction(1).unwrap());
        assert!(
            text.contains("masked") && text.contains("FFFF9876543210E00001"),
            "{text}"
        );
    }

    #[test]
    fn debug_output_masks_the_keys() {
        let device = device();
        let text = format!("{device:?} {:?}", device.transaction(1).unwrap());
        assert!(text.contains("masked"), "{text}");
        assert!(text.contains("123456789012345600000001"), "{text}");
    }
}
