//! The messages a terminal sends, and the checks of what comes back.

use crate::TerminalError;
use crate::keys::{SignedOn, WorkingKeys};
use iso8583::{Message, Mti, Profile, ResponseCode, Stan, Tpdu, Value};
use money::Currency;
use paycrypto::{Pan, PinBlock, TdesKey};

/// The profile terminals speak to the easypos acquirer.
const PROFILE: &str = "cup-bcd";
/// The TPDU a terminal puts in front of its messages: to the host's NII 003, from 001. The
/// host turns it round in its answers.
const TPDU: Tpdu = Tpdu {
    id: Tpdu::ID,
    destination: 3,
    source: 1,
};
/// The 6-byte `cup-bcd` header: application type 60, software version 31, terminal state and
/// processing requirement 0, software version 31 again, reserved.
const HEADER: [u8; 6] = [0x60, 0x31, 0x00, 0x31, 0x00, 0x00];
/// Characters of a terminal id (field 41) and of a merchant id (field 42).
const TERMINAL_ID_CHARS: usize = 8;
const MERCHANT_ID_CHARS: usize = 15;
/// 60.3 of a sign-on for double-length TDES PIN and MAC keys.
const SIGN_ON_DOUBLE_LENGTH: &str = "003";
/// 60.1 of a sale.
const SALE_TYPE: &str = "22";
/// Field 22 of a chip read with PIN: 05 (integrated circuit), 1 (the terminal takes PINs).
const ENTRY_CHIP_WITH_PIN: &str = "051";
/// Field 25 of a purchase: normal presentment.
const CONDITION_NORMAL: &str = "00";
/// Fields a reversal copies from the message it reverses (docs/protocol.md, "Reversal").
const REVERSAL_COPIES: [u8; 12] = [2, 3, 4, 11, 22, 23, 25, 41, 42, 49, 60, 61];
/// Fields every answer echoes from its request, which the terminal checks.
const ECHO_CHECKED: [u8; 5] = [3, 4, 11, 41, 42];

/// A chip sale with PIN (0200, processing code 00, 60.1 = 22).
#[derive(Debug)]
pub struct Sale<'a> {
    pub stan: Stan,
    /// The terminal's batch (60.2), from its sign-on.
    pub batch: u32,
    pub amount_minor: u64,
    pub currency: Currency,
    pub pan: &'a Pan,
    /// Field 55 from the card ([`crate::ChipCard::generate_arqc`]).
    pub field55: Option<&'a [u8]>,
    /// Field 52 ([`WorkingKeys::pin_block`]); `None` when no PIN was entered.
    pub pin_block: Option<&'a PinBlock>,
}

/// Why a terminal reverses (field 39 of its 0400 / 0401, UnionPay-style codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReversalReason {
    /// 98: no answer came within the terminal's timeout.
    NoAnswer,
    /// A0: the answer came, but its MAC did not verify.
    BadAnswerMac,
    /// 06: the terminal failed to finish the transaction (card removed, printer, power).
    TerminalFailure,
}

impl ReversalReason {
    pub fn code(self) -> &'static str {
        match self {
            ReversalReason::NoAnswer => "98",
            ReversalReason::BadAnswerMac => "A0",
            ReversalReason::TerminalFailure => "06",
        }
    }
}

/// An answer that passed the terminal's checks.
#[derive(Debug)]
pub struct Answer {
    pub response: ResponseCode,
    /// Field 37, when present.
    pub rrn: Option<String>,
    /// Field 38, when present.
    pub auth_code: Option<String>,
    /// Field 55 (the issuer's data for the card), when present.
    pub issuer_data: Option<Vec<u8>>,
    /// Whether field 64 was present (and verified).
    pub maced: bool,
    /// Field 62 of a MACed sale approval: the acquirer's signed receipt statement, kept when it
    /// names this answer's RRN, auth code, terminal and amount (docs/aftersale.md).
    pub receipt_payload: Option<String>,
    pub message: Message<'static>,
}

/// One terminal on the line: its ids, and the TPDU and header it frames messages with.
#[derive(Clone, Debug)]
pub struct Terminal {
    profile: &'static Profile,
    terminal_id: String,
    merchant_id: String,
}

fn mti(digits: &[u8; 4]) -> Result<Mti, TerminalError> {
    Mti::from_digits(digits).map_err(|_| TerminalError::Invalid("MTI"))
}

fn answer_error(what: String) -> TerminalError {
    TerminalError::Answer(what)
}

impl Terminal {
    /// Terminal `terminal_id` (8 characters) of merchant `merchant_id` (15 characters).
    pub fn new(terminal_id: &str, merchant_id: &str) -> Result<Self, TerminalError> {
        if terminal_id.chars().count() != TERMINAL_ID_CHARS {
            return Err(TerminalError::Invalid("a terminal id has 8 characters"));
        }
        if merchant_id.chars().count() != MERCHANT_ID_CHARS {
            return Err(TerminalError::Invalid("a merchant id has 15 characters"));
        }
        Ok(Self {
            profile: Profile::builtin(PROFILE)
                .map_err(|_| TerminalError::Invalid("the built-in cup-bcd profile"))?,
            terminal_id: terminal_id.to_owned(),
            merchant_id: merchant_id.to_owned(),
        })
    }

    pub fn terminal_id(&self) -> &str {
        &self.terminal_id
    }

    pub fn profile(&self) -> &'static Profile {
        self.profile
    }

    /// A message from this terminal: TPDU, header, fields 41 and 42.
    pub(crate) fn message(&self, mti: Mti) -> Message<'static> {
        let mut message = Message::new(mti);
        message.tpdu = Some(TPDU);
        message.header = HEADER.to_vec().into();
        message.set_text(41, self.terminal_id.clone());
        message.set_text(42, self.merchant_id.clone());
        message
    }

    /// Sign-on (0800, 60.3 = 003: double-length TDES working keys) by operator `operator`
    /// (field 63, three characters).
    pub fn sign_on(&self, stan: Stan, operator: &str) -> Result<Message<'static>, TerminalError> {
        let mut message = self.message(mti(b"0800")?);
        message.set_text(11, format!("{:06}", stan.value()));
        message.set_text(60, format!("00000000{SIGN_ON_DOUBLE_LENGTH}"));
        message.set_text(63, format!("{operator:<3.3}"));
        Ok(message)
    }

    /// Parameter download (0800, 60.3 = 360) in batch `batch`, after a sign-on answer asked for
    /// it; not yet MACed (see [`Terminal::pack_with_mac`]): the host answers only a MACed one.
    pub fn parameter_download(
        &self,
        stan: Stan,
        batch: u32,
    ) -> Result<Message<'static>, TerminalError> {
        let mut message = self.message(mti(b"0800")?);
        message.set_text(11, format!("{:06}", stan.value()));
        message.set_text(
            60,
            format!("00{batch:06}{}", acquirer::parameters::PARAMETER_DOWNLOAD),
        );
        Ok(message)
    }

    /// The working keys and batch from the host's answer (`frame`) to `sign_on`, under the
    /// terminal master key.
    pub fn signed_on(
        &self,
        sign_on: &Message<'_>,
        frame: &[u8],
        tmk: &TdesKey,
    ) -> Result<SignedOn, TerminalError> {
        let answer = self.answer(sign_on, frame, None)?;
        WorkingKeys::from_sign_on(tmk, &answer.message)
    }

    /// A chip sale with PIN, not yet MACed (see [`Terminal::pack_with_mac`]).
    pub fn sale(&self, sale: &Sale<'_>) -> Result<Message<'static>, TerminalError> {
        if sale.amount_minor == 0 || sale.amount_minor > 999_999_999_999 {
            return Err(TerminalError::Invalid(
                "a sale's amount is 1 to 999999999999 minor units",
            ));
        }
        if sale.batch > 999_999 {
            return Err(TerminalError::Invalid("a batch number has 6 digits"));
        }
        let mut message = self.message(mti(b"0200")?);
        message.set_text(2, sale.pan.digits().to_owned());
        message.set_text(3, "000000");
        message.set_amount(sale.amount_minor);
        message.set_text(11, format!("{:06}", sale.stan.value()));
        message.set_text(22, ENTRY_CHIP_WITH_PIN);
        message.set_text(25, CONDITION_NORMAL);
        message.set_text(49, format!("{:03}", sale.currency.numeric()));
        message.set_text(60, format!("{SALE_TYPE}{:06}", sale.batch));
        if let Some(block) = sale.pin_block {
            message.set_bytes(52, block.as_bytes().to_vec());
        }
        if let Some(field55) = sale.field55 {
            message.set_bytes(55, field55.to_vec());
        }
        Ok(message)
    }

    /// The reversal (0400, or 0401 for a repeat) of `original`, a message this terminal sent
    /// whose outcome it does not know, with `reason` in field 39. Not yet MACed.
    pub fn reversal(
        &self,
        original: &Message<'_>,
        repeat: bool,
        reason: ReversalReason,
    ) -> Result<Message<'static>, TerminalError> {
        let mut message = self.message(mti(if repeat { b"0401" } else { b"0400" })?);
        for field in REVERSAL_COPIES {
            if let Some(value) = original.get(field) {
                message.set(field, value.clone().into_owned());
            }
        }
        message.set_text(39, reason.code());
        Ok(message)
    }

    /// Packs a message that carries no MAC (sign-on, echo, settlement).
    pub fn pack(&self, message: &Message<'_>) -> Result<Vec<u8>, TerminalError> {
        Ok(self.profile.pack(message)?)
    }

    /// Packs a financial message with field 64, the MAC under the working MAC key over what the
    /// acquirer's convention covers (`acquirer::mac`). The message keeps its field 64.
    pub fn pack_with_mac(
        &self,
        message: &mut Message<'_>,
        keys: &WorkingKeys,
    ) -> Result<Vec<u8>, TerminalError> {
        keys.prepare(message)?;
        Ok(acquirer::mac::pack_with_mac(
            self.profile,
            message,
            |covered| keys.mac(covered).to_vec(),
        )?)
    }

    /// Checks the host's answer (`frame`) to `request`: TPDU turned round, the response MTI,
    /// the echoed fields equal to the request's, a known response code, and — when the answer
    /// carries field 64, which an approval of a MACed request must — a MAC that verifies under
    /// `keys`.
    pub fn answer(
        &self,
        request: &Message<'_>,
        frame: &[u8],
        keys: Option<&WorkingKeys>,
    ) -> Result<Answer, TerminalError> {
        let message = self.profile.unpack(frame)?.into_owned();
        if message.tpdu != request.tpdu.map(Tpdu::reply) {
            return Err(answer_error("does not turn the TPDU round".into()));
        }
        let expected = request
            .mti
            .response()
            .ok_or(TerminalError::Invalid("the request is a response"))?;
        if message.mti != expected {
            return Err(answer_error(format!(
                "to {} is {}, not {}",
                request.mti.as_str(),
                message.mti.as_str(),
                expected.as_str()
            )));
        }
        for field in ECHO_CHECKED {
            if !echoed(request.get(field), message.get(field)) {
                return Err(answer_error(format!(
                    "to {} does not echo field {field}",
                    request.mti.as_str()
                )));
            }
        }
        let code = message.response_code()?;
        let response = ResponseCode::parse(&code).ok_or_else(|| {
            answer_error(format!(
                "carries response code {code:?}, which is not known"
            ))
        })?;
        let maced = message.has(64);
        if maced {
            let keys = keys.ok_or_else(|| {
                answer_error("carries a MAC but the terminal has no working keys".into())
            })?;
            let (covered, mac) = acquirer::mac::mac_parts(self.profile, frame)
                .ok_or_else(|| answer_error("is too short to carry its MAC".into()))?;
            if !keys.answer_mac_matches(covered, mac) {
                return Err(answer_error(format!(
                    "{} to {} has a MAC that does not verify",
                    response.code(),
                    request.mti.as_str()
                )));
            }
        } else if response.is_approved()
            && acquirer::classify(self.profile, request).is_ok_and(|kind| kind.is_maced())
        {
            return Err(answer_error(format!(
                "00 to a MACed {} carries no MAC",
                request.mti.as_str()
            )));
        }
        let text = |field| message.get(field).map(|value| value.to_text());
        let receipt_payload = maced.then(|| receipt_payload(request, &message)).flatten();
        Ok(Answer {
            response,
            rrn: text(37),
            auth_code: text(38),
            issuer_data: message.get(55).map(|value| value.to_bytes().into_owned()),
            maced,
            receipt_payload,
            message,
        })
    }
}

/// Whether an answer's field holds the characters of the request's (both absent counts). Text
/// fields are compared where they lie: every answer is checked, and copying each field into a
/// `String` first cost more than the comparison.
fn echoed(sent: Option<&Value<'_>>, answered: Option<&Value<'_>>) -> bool {
    match (sent, answered) {
        (None, None) => true,
        (Some(Value::Bytes(sent)), Some(Value::Bytes(answered))) => sent == answered,
        // BCD off the wire: compare the digits.
        (Some(sent), Some(answered)) => sent.to_bytes() == answered.to_bytes(),
        _ => false,
    }
}

/// The signed receipt statement in an answer's field 62, if it is one about this very sale:
/// its RRN and auth code are the answer's, its terminal and amount the request's. The
/// signature is the verifier's to check; the terminal holds no key for it.
fn receipt_payload(request: &Message<'_>, answer: &Message<'_>) -> Option<String> {
    let bytes = answer.get(62)?.to_bytes();
    let payload = std::str::from_utf8(&bytes).ok()?;
    let statement = aftersale::receipt::parse(payload).ok()?.statement;
    let text = |message: &Message<'_>, field| {
        message
            .get(field)
            .map(|value| value.to_text().trim().to_owned())
    };
    let amount = text(request, 4).and_then(|digits| digits.parse::<i64>().ok());
    let about_this_sale = Some(statement.rrn.as_str()) == text(answer, 37).as_deref()
        && Some(statement.auth_code.as_str()) == text(answer, 38).as_deref()
        && Some(statement.terminal_id.as_str()) == text(request, 41).as_deref()
        && Some(statement.amount_minor) == amount;
    about_this_sale.then(|| payload.to_owned())
}
