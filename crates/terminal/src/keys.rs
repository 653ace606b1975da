//! The keys a message is made under. Master/session: the working keys of a sign-on — the host
//! sends a new PIN key and a new MAC key in field 62 of the 0810, each encrypted under the
//! terminal master key with a 4-byte check value (PIK 16 ‖ check 4 ‖ MAK 16 ‖ check 4,
//! docs/protocol.md "Sign-on"). AES or TDES DUKPT: one transaction's keys ([`crate::dukpt`]),
//! derived by the terminal for the KSN the message carries in field 62.

use crate::TerminalError;
use crate::dukpt::{TdesTransactionKeys, TransactionKeys};
use iso8583::Message;
use paycrypto::mac::{Padding, PreparedTdesKey};
use paycrypto::pinblock::{self, PinBlockFormat};
use paycrypto::session::{EncryptedWorkingKey, decrypt_working_key};
use paycrypto::{Pan, Pin, PinBlock, TdesKey};

/// Bytes of an encrypted double-length key in field 62.
const KEY_BYTES: usize = 16;
/// Bytes of each check value in field 62.
const CHECK_VALUE_BYTES: usize = 4;
/// Bytes of field 62 in a sign-on answer: two keys with their check values.
const FIELD62_BYTES: usize = 2 * (KEY_BYTES + CHECK_VALUE_BYTES);

/// The PIN and MAC keys of a message: the working keys of the terminal's current sign-on
/// (master/session), or one AES or TDES DUKPT transaction's keys.
pub struct WorkingKeys(Scheme);

enum Scheme {
    MasterSession {
        /// Prepared once, like the MAC key: every sale's PIN block is enciphered under it.
        pin: Box<PreparedTdesKey>,
        /// Prepared once: every message is MACed under it, every answer checked. Boxed: the
        /// prepared key schedules are large.
        mac: Box<PreparedTdesKey>,
    },
    AesDukpt(TransactionKeys),
    TdesDukpt(TdesTransactionKeys),
}

impl std::fmt::Debug for WorkingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkingKeys(masked)")
    }
}

/// What a sign-on gave the terminal: its working keys and the batch it is in.
#[derive(Debug)]
pub struct SignedOn {
    pub keys: WorkingKeys,
    /// 60.2 of the answer.
    pub batch: u32,
}

/// The batch (60.2) of the host's 0810 to a sign-on, which must be 00; under AES DUKPT the
/// answer carries no keys.
pub fn sign_on_batch(answer: &Message<'_>) -> Result<u32, TerminalError> {
    if answer.mti.as_str() != "0810" {
        return Err(TerminalError::Answer(format!(
            "to a sign-on is {}, not 0810",
            answer.mti.as_str()
        )));
    }
    let response = answer.response_code()?;
    if response != "00" {
        return Err(TerminalError::Answer(format!(
            "to a sign-on is {response}, not 00"
        )));
    }
    answer
        .get(60)
        .map(|value| value.to_text())
        .and_then(|text| text.get(2..8).and_then(|batch| batch.parse::<u32>().ok()))
        .ok_or_else(|| TerminalError::Answer("to a sign-on has no batch in 60.2".into()))
}

impl WorkingKeys {
    /// Keys the terminal holds in clear (tests; a terminal takes them from its sign-on).
    pub fn new(pin: TdesKey, mac: TdesKey) -> Result<Self, TerminalError> {
        Ok(Self(Scheme::MasterSession {
            pin: Box::new(PreparedTdesKey::new(&pin)?),
            mac: Box::new(PreparedTdesKey::new(&mac)?),
        }))
    }

    /// The keys of one AES DUKPT transaction: a message made under them carries its KSN (and
    /// the format 4 PIN block) in field 62.
    pub fn aes_dukpt(keys: TransactionKeys) -> Self {
        Self(Scheme::AesDukpt(keys))
    }

    /// The keys of one TDES DUKPT transaction: a message made under them carries its KSN in
    /// field 62 (the format 0 PIN block stays in field 52).
    pub fn tdes_dukpt(keys: TdesTransactionKeys) -> Self {
        Self(Scheme::TdesDukpt(keys))
    }

    /// The KSN a message under these keys carries, in hex (DUKPT); `None` for master/session.
    pub fn ksn_hex(&self) -> Option<String> {
        match &self.0 {
            Scheme::AesDukpt(keys) => Some(keys.ksn().to_hex()),
            Scheme::TdesDukpt(keys) => Some(keys.ksn().to_hex()),
            Scheme::MasterSession { .. } => None,
        }
    }

    /// Whether these are DUKPT transaction keys (AES or TDES).
    pub fn is_dukpt(&self) -> bool {
        !matches!(self.0, Scheme::MasterSession { .. })
    }

    /// Puts `message` in the shape its scheme wants before it is MACed: under AES DUKPT, field
    /// 62 is the KSN followed by the PIN block that field 52 held, and field 52 goes; under
    /// TDES DUKPT, field 62 is the KSN.
    pub fn prepare(&self, message: &mut Message<'_>) -> Result<(), TerminalError> {
        match &self.0 {
            Scheme::AesDukpt(keys) => {
                let block = match message.remove(52) {
                    Some(value) => Some(PinBlock::new(&value.to_bytes())?),
                    None => None,
                };
                message.set_bytes(62, keys.field62(block.as_ref()));
            }
            Scheme::TdesDukpt(keys) => message.set_bytes(62, keys.field62()),
            Scheme::MasterSession { .. } => {}
        }
        Ok(())
    }

    /// The working keys and the batch from the host's answer to a sign-on: 39 must be 00 and
    /// field 62 must decrypt under the terminal master key `tmk` to keys whose check values
    /// agree.
    pub fn from_sign_on(tmk: &TdesKey, answer: &Message<'_>) -> Result<SignedOn, TerminalError> {
        let batch = sign_on_batch(answer)?;
        let field62 = answer
            .get(62)
            .ok_or_else(|| TerminalError::Answer("to a sign-on has no field 62".into()))?
            .to_bytes();
        Ok(SignedOn {
            keys: Self::from_field62(tmk, &field62)?,
            batch,
        })
    }

    /// The keys of field 62 of a sign-on answer (PIK 16 ‖ check 4 ‖ MAK 16 ‖ check 4), under
    /// the terminal master key `tmk`; each key's check value must agree. A terminal keeps
    /// field 62 as it came, so its working keys are stored encrypted.
    pub fn from_field62(tmk: &TdesKey, field62: &[u8]) -> Result<Self, TerminalError> {
        if field62.len() != FIELD62_BYTES {
            return Err(TerminalError::Answer(format!(
                "to a sign-on has {} bytes in field 62, not {FIELD62_BYTES}",
                field62.len()
            )));
        }
        let key = |from: usize| {
            decrypt_working_key(
                tmk,
                &EncryptedWorkingKey {
                    encrypted: field62[from..from + KEY_BYTES].to_vec(),
                    check_value: field62[from + KEY_BYTES..from + KEY_BYTES + CHECK_VALUE_BYTES]
                        .to_vec(),
                },
            )
        };
        Self::new(key(0)?, key(KEY_BYTES + CHECK_VALUE_BYTES)?)
    }

    /// The PIN bound to `pan`: master/session, an ISO 9564 format 0 block under the PIN key
    /// (field 52); AES DUKPT, a format 4 block with random fill under the transaction's PIN key
    /// (field 62, after the KSN); TDES DUKPT, format 0 under the PIN variant (field 52).
    pub fn pin_block(&self, pin: &Pin, pan: &Pan) -> Result<PinBlock, TerminalError> {
        match &self.0 {
            // What `pinblock::encrypt_pin_block` does for format 0, under the prepared key.
            Scheme::MasterSession { pin: key, .. } => {
                let clear = pinblock::clear_tdes_block(
                    PinBlockFormat::Iso0,
                    pin,
                    Some(pan),
                    // Format 0 has no random fill.
                    &[0; pinblock::FILL_BYTES],
                )?;
                Ok(PinBlock::new(&key.encrypt_block(&clear))?)
            }
            Scheme::AesDukpt(keys) => keys.pin_block(pin, pan, &rand::random()),
            Scheme::TdesDukpt(keys) => keys.pin_block(pin, pan),
        }
    }

    /// The request's MAC: X9.19 (ISO 9797-1 algorithm 3, padding method 1) under the MAC
    /// working key or, under TDES DUKPT, the MAC request variant; AES-CMAC (leftmost 8 bytes)
    /// under the AES DUKPT MAC-generation key.
    pub fn mac(&self, covered: &[u8]) -> [u8; 8] {
        match &self.0 {
            Scheme::MasterSession { mac, .. } => mac.retail_mac(covered, Padding::Method1),
            Scheme::AesDukpt(keys) => keys.request_mac(covered),
            Scheme::TdesDukpt(keys) => keys.request_mac(covered),
        }
    }

    /// Whether an answer's `mac` verifies over `covered` (constant time): under the MAC working
    /// key, or under the DUKPT answer key (AES MAC-verification key, TDES MAC response
    /// variant) of the request's KSN.
    pub fn answer_mac_matches(&self, covered: &[u8], mac: &[u8]) -> bool {
        match &self.0 {
            Scheme::MasterSession { .. } => paycrypto::mac::macs_equal(mac, &self.mac(covered)),
            Scheme::AesDukpt(keys) => keys.answer_mac_matches(covered, mac),
            Scheme::TdesDukpt(keys) => keys.answer_mac_matches(covered, mac),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use paycrypto::pinblock::PinKey;

    #[test]
    fn pin_blocks_under_the_prepared_key_are_those_of_paycrypto() {
        // The prepared PIN key must give the bytes `encrypt_pin_block` gives, for PINs of
        // every length and PANs of several lengths (the PAN field takes the 12 digits before
        // the check digit).
        for (key_byte, pin, pan) in [
            (0x11, "1234", "6212345000000001"),
            (0x5A, "123456", "4000000000000002"),
            (0xC3, "987654321098", "6212345678901234567"),
            (0x01, "0000", "5000000000006"),
        ] {
            let pin_key = TdesKey::new(&[key_byte; 16].map(|b| b ^ 0x80)).unwrap();
            let keys =
                WorkingKeys::new(pin_key.clone(), TdesKey::new(&[0x22; 16]).unwrap()).unwrap();
            let (pin, pan) = (Pin::new(pin).unwrap(), Pan::new(pan).unwrap());
            let expected = pinblock::encrypt_pin_block(
                PinBlockFormat::Iso0,
                PinKey::Tdes(&pin_key),
                &pin,
                Some(&pan),
                &[0; pinblock::FILL_BYTES],
            )
            .unwrap();
            assert_eq!(
                keys.pin_block(&pin, &pan).unwrap().as_bytes(),
                expected.as_bytes()
            );
        }
    }
}
