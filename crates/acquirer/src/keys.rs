//! The keys that protect one terminal message, by the terminal's key scheme:
//!
//! - **master/session** (`master-session`): the PIN and MAC working keys of the terminal's
//!   sign-on, delivered in field 62 under its master key; PIN blocks ISO 9564 format 0; MACs
//!   ISO 9797-1 algorithm 3 (X9.19), padding method 1;
//! - **TDES DUKPT** (`dukpt-tdes`, ANSI X9.24-1): each message's keys derived from the BDK and
//!   the 10-byte KSN the message carries; PIN blocks format 0 under the PIN variant; request MACs
//!   X9.19 under the MAC request variant, response MACs under the MAC response variant;
//! - **AES DUKPT** (`dukpt-aes`, ANSI X9.24-3): each message's AES-128 working keys derived
//!   from the BDK and the 12-byte KSN; PIN blocks format 4; request MACs AES-CMAC under the
//!   MAC-generation key (usage 2000), response MACs under the MAC-verification key (2001) —
//!   named from the terminal's side, which generates requests and verifies answers. Field 64
//!   carries the leftmost 8 bytes of the CMAC.
//!
//! easypos's convention for `cup-bcd`: a DUKPT terminal sends the KSN of each MACed message in
//! field 62 (10 or 12 bytes). The KSN must name the terminal's own device (its initial KSN,
//! counter cleared); the MAC scope is the same as for master/session (see `mac.rs`). A format
//! 4 PIN block is 16 bytes and field 52 holds 8, so an AES DUKPT terminal sends its PIN block
//! in field 62 right after the KSN (12 + 16 bytes) and leaves field 52 out.

use hsm::{DukptMacKey, Hsm, KeyToken, MacAlgorithm, MacDirection, PinSource};
use iso8583::ResponseCode;
use paycrypto::dukpt::{aes as aes_dukpt, tdes};
use paycrypto::mac::Padding;
use paycrypto::pinblock::PinBlockFormat;

/// The key schemes a terminal can have (`terminal_sessions.key_scheme`).
pub const MASTER_SESSION: &str = "master-session";
pub const DUKPT_TDES: &str = "dukpt-tdes";
pub const DUKPT_AES: &str = "dukpt-aes";

/// The working key type of AES DUKPT terminals.
const AES_WORKING_KEY: aes_dukpt::KeyType = aes_dukpt::KeyType::Aes128;

/// The keys of one message, once its MAC verified.
#[derive(Clone, Debug)]
pub(crate) enum MessageKeys {
    /// Master/session: the working keys of the current sign-on.
    Session {
        pin_key: Option<KeyToken>,
        mac_key: KeyToken,
    },
    TdesDukpt {
        bdk: KeyToken,
        ksn: tdes::Ksn,
    },
    AesDukpt {
        bdk: KeyToken,
        ksn: aes_dukpt::Ksn,
        /// The format 4 PIN block that followed the KSN in field 62, if a PIN was entered.
        pin_block: Option<Vec<u8>>,
    },
    /// A message the host made itself (store-and-forward): nothing to MAC with.
    Unkeyed,
    /// An acquirer's message over the switch link: the PIN block (field 52) is already under
    /// the issuer's zone key, and the link carries no MAC.
    Link,
}

impl MessageKeys {
    /// Where the message's PIN block is encrypted; 58 when the terminal has no PIN key.
    pub(crate) fn pin_source(&self) -> Result<PinSource<'_>, ResponseCode> {
        match self {
            MessageKeys::Session {
                pin_key: Some(key), ..
            } => Ok(PinSource::Zone {
                key,
                format: PinBlockFormat::Iso0,
            }),
            MessageKeys::TdesDukpt { bdk, ksn } => Ok(PinSource::TdesDukpt {
                bdk,
                ksn: *ksn,
                format: PinBlockFormat::Iso0,
            }),
            MessageKeys::AesDukpt { bdk, ksn, .. } => Ok(PinSource::AesDukpt {
                bdk,
                ksn: *ksn,
                key_type: AES_WORKING_KEY,
            }),
            MessageKeys::Session { pin_key: None, .. }
            | MessageKeys::Unkeyed
            | MessageKeys::Link => Err(ResponseCode::NotPermittedToTerminal),
        }
    }

    /// Whether answers under these keys carry a MAC (not on the switch link, not for a message
    /// the host made itself).
    pub(crate) fn macs_answers(&self) -> bool {
        !matches!(self, MessageKeys::Unkeyed | MessageKeys::Link)
    }

    /// The message's PIN block: field 52, or for AES DUKPT the one in field 62.
    pub(crate) fn pin_block(&self, message: &iso8583::Message<'_>) -> Option<Vec<u8>> {
        match self {
            MessageKeys::AesDukpt { pin_block, .. } => pin_block.clone(),
            _ => message.get(52).map(|value| value.to_bytes().to_vec()),
        }
    }

    /// Verifies a request's MAC over `covered`.
    pub(crate) fn verify_request(
        &self,
        hsm: &dyn Hsm,
        covered: &[u8],
        mac: &[u8],
    ) -> Result<bool, hsm::HsmError> {
        match self {
            MessageKeys::Session { mac_key, .. } => hsm.verify_mac(
                mac_key,
                MacAlgorithm::Iso9797Alg3(Padding::Method1),
                covered,
                mac,
            ),
            MessageKeys::TdesDukpt { .. } | MessageKeys::AesDukpt { .. } => match self.dukpt() {
                Some(key) => hsm.verify_dukpt_mac(&key, MacDirection::Request, covered, mac),
                None => Ok(false),
            },
            MessageKeys::Unkeyed | MessageKeys::Link => Ok(false),
        }
    }

    /// The MAC of an answer over `covered` (8 bytes for field 64); `None` when unkeyed.
    pub(crate) fn answer_mac(
        &self,
        hsm: &dyn Hsm,
        covered: &[u8],
    ) -> Result<Option<Vec<u8>>, hsm::HsmError> {
        let mut mac = match self {
            MessageKeys::Session { mac_key, .. } => hsm.generate_mac(
                mac_key,
                MacAlgorithm::Iso9797Alg3(Padding::Method1),
                covered,
            )?,
            MessageKeys::TdesDukpt { .. } | MessageKeys::AesDukpt { .. } => match self.dukpt() {
                Some(key) => hsm.generate_dukpt_mac(&key, MacDirection::Response, covered)?,
                None => return Ok(None),
            },
            MessageKeys::Unkeyed | MessageKeys::Link => return Ok(None),
        };
        mac.truncate(8);
        Ok(Some(mac))
    }

    /// The KSN transaction counter of a DUKPT message; `None` under other schemes.
    pub(crate) fn ksn_counter(&self) -> Option<u32> {
        match self {
            MessageKeys::TdesDukpt { ksn, .. } => Some(ksn.counter()),
            MessageKeys::AesDukpt { ksn, .. } => Some(ksn.counter()),
            _ => None,
        }
    }

    fn dukpt(&self) -> Option<DukptMacKey<'_>> {
        match self {
            MessageKeys::TdesDukpt { bdk, ksn } => Some(DukptMacKey::Tdes { bdk, ksn: *ksn }),
            MessageKeys::AesDukpt { bdk, ksn, .. } => Some(DukptMacKey::Aes {
                bdk,
                ksn: *ksn,
                key_type: AES_WORKING_KEY,
            }),
            _ => None,
        }
    }
}

/// A DUKPT terminal's KSN from field 62, checked to name the device `initial_ksn` (hex, the
/// KSN with its counter cleared). 30 for a missing or malformed KSN, 63 for another device's.
pub(crate) enum Ksn {
    Tdes(tdes::Ksn),
    Aes(aes_dukpt::Ksn, Option<Vec<u8>>),
}

/// Bytes of a format 4 PIN block.
const AES_PIN_BLOCK_BYTES: usize = 16;

impl Ksn {
    pub(crate) fn parse(
        scheme: &str,
        field62: Option<&[u8]>,
        initial_ksn: Option<&str>,
    ) -> Result<Ksn, ResponseCode> {
        let bytes = field62.ok_or(ResponseCode::FormatError)?;
        let (ksn, device) = match scheme {
            DUKPT_TDES => {
                let ksn = tdes::Ksn::new(bytes).map_err(|_| ResponseCode::FormatError)?;
                let device = ksn
                    .with_counter(0)
                    .map_err(|_| ResponseCode::FormatError)?
                    .to_hex();
                (Ksn::Tdes(ksn), device)
            }
            DUKPT_AES => {
                let (ksn, pin_block) = match bytes.len() {
                    aes_dukpt::KSN_BYTES => (bytes, None),
                    length if length == aes_dukpt::KSN_BYTES + AES_PIN_BLOCK_BYTES => {
                        let (ksn, block) = bytes.split_at(aes_dukpt::KSN_BYTES);
                        (ksn, Some(block.to_vec()))
                    }
                    _ => return Err(ResponseCode::FormatError),
                };
                let ksn = aes_dukpt::Ksn::new(ksn).map_err(|_| ResponseCode::FormatError)?;
                let device = ksn.with_counter(0).to_hex();
                (Ksn::Aes(ksn, pin_block), device)
            }
            _ => return Err(ResponseCode::NotPermittedToTerminal),
        };
        match initial_ksn {
            Some(expected) if expected.eq_ignore_ascii_case(&device) => Ok(ksn),
            _ => Err(ResponseCode::SecurityViolation),
        }
    }

    pub(crate) fn keys(self, bdk: KeyToken) -> MessageKeys {
        match self {
            Ksn::Tdes(ksn) => MessageKeys::TdesDukpt { bdk, ksn },
            Ksn::Aes(ksn, pin_block) => MessageKeys::AesDukpt {
                bdk,
                ksn,
                pin_block,
            },
        }
    }
}
