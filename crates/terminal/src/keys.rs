//! The working keys of a sign-on (master/session scheme): the host sends a new PIN key and a
//! new MAC key in field 62 of the 0810, each encrypted under the terminal master key with a
//! 4-byte check value (PIK 16 ‖ check 4 ‖ MAK 16 ‖ check 4, docs/protocol.md "Sign-on").

use crate::TerminalError;
use iso8583::Message;
use paycrypto::mac::{Padding, PreparedTdesKey};
use paycrypto::pinblock::{self, PinBlockFormat, PinKey};
use paycrypto::session::{EncryptedWorkingKey, decrypt_working_key};
use paycrypto::{Pan, Pin, PinBlock, TdesKey};

/// Bytes of an encrypted double-length key in field 62.
const KEY_BYTES: usize = 16;
/// Bytes of each check value in field 62.
const CHECK_VALUE_BYTES: usize = 4;
/// Bytes of field 62 in a sign-on answer: two keys with their check values.
const FIELD62_BYTES: usize = 2 * (KEY_BYTES + CHECK_VALUE_BYTES);

/// The PIN and MAC working keys of the terminal's current sign-on.
pub struct WorkingKeys {
    pin: TdesKey,
    /// Prepared once: every message is MACed under it, every answer checked.
    mac: PreparedTdesKey,
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

impl WorkingKeys {
    /// Keys the terminal holds in clear (tests; a terminal takes them from its sign-on).
    pub fn new(pin: TdesKey, mac: TdesKey) -> Result<Self, TerminalError> {
        Ok(Self {
            pin,
            mac: PreparedTdesKey::new(&mac)?,
        })
    }

    /// The working keys and the batch from the host's answer to a sign-on: 39 must be 00 and
    /// field 62 must decrypt under the terminal master key `tmk` to keys whose check values
    /// agree.
    pub fn from_sign_on(tmk: &TdesKey, answer: &Message<'_>) -> Result<SignedOn, TerminalError> {
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
        let field62 = answer
            .get(62)
            .ok_or_else(|| TerminalError::Answer("to a sign-on has no field 62".into()))?
            .to_bytes();
        let keys = Self::from_field62(tmk, &field62)?;
        let batch = answer
            .get(60)
            .map(|value| value.to_text())
            .and_then(|text| text.get(2..8).and_then(|batch| batch.parse::<u32>().ok()))
            .ok_or_else(|| TerminalError::Answer("to a sign-on has no batch in 60.2".into()))?;
        Ok(SignedOn { keys, batch })
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

    /// Field 52: the PIN in an ISO 9564 format 0 block, bound to `pan`, under the PIN key.
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

    /// The X9.19 MAC (ISO 9797-1 algorithm 3, padding method 1) of `covered` under the MAC key.
    pub fn mac(&self, covered: &[u8]) -> [u8; 8] {
        self.mac.retail_mac(covered, Padding::Method1)
    }
}
