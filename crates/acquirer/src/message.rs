//! Message types by MTI, processing code (field 3), condition code (field 25) and fields 60.1
//! (transaction type) and 60.3 (network management information code), as STANDARDS.md §2
//! tabulates them; mandatory fields per type; the answer's skeleton.

use iso8583::{Message, Mti, Profile, ResponseCode};
use std::fmt;

/// Every terminal message the host understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 0800, 60.3 = 001/003/004: the operator signs on; the host answers with working keys.
    SignOn,
    /// 0800, 60.3 = 360: the terminal fetches its parameter set after a sign-on answer asked
    /// for it (see `parameters.rs`); MACed, and answered MACed.
    ParameterDownload,
    /// 0820, 60.3 = 002.
    SignOff,
    /// 0820, 60.3 = 301: communication check.
    EchoTest,
    /// 0200, processing code 31, 60.1 = 01.
    BalanceInquiry,
    /// 0200, processing code 00, condition 00, 60.1 = 22 (消费).
    Sale,
    /// 0200, processing code 20, condition 00, 60.1 = 23 (消费撤销).
    SaleVoid,
    /// 0220, processing code 20, 60.1 = 25 (退货).
    Refund,
    /// 0100, processing code 03, condition 06, 60.1 = 10 (预授权).
    PreAuthorization,
    /// 0100, processing code 20, condition 06, 60.1 = 11.
    PreAuthorizationVoid,
    /// 0200, processing code 00, condition 06, 60.1 = 20 (预授权完成).
    PreAuthorizationCompletion,
    /// 0200, processing code 20, condition 06, 60.1 = 21.
    CompletionVoid,
    /// 0400 (0401 repeat): the terminal reverses a message whose answer it did not get; 60.1 is
    /// the original's transaction type.
    Reversal,
    /// 0500: batch settlement with the terminal's totals (批结算).
    BatchSettlement,
    /// 0320: batch upload of the terminal's transactions after a totals mismatch.
    BatchUpload,
}

impl MessageType {
    /// Fields every message of this type must carry (beyond the MTI and bitmap).
    pub fn mandatory_fields(self) -> &'static [u8] {
        use MessageType::*;
        match self {
            SignOn | SignOff | EchoTest => &[11, 41, 42, 60],
            ParameterDownload => &[11, 41, 42, 60, 64],
            BalanceInquiry => &[3, 11, 22, 25, 41, 42, 49, 60, 64],
            Sale | PreAuthorization => &[3, 4, 11, 22, 25, 41, 42, 49, 60, 64],
            PreAuthorizationCompletion => &[3, 4, 11, 22, 25, 38, 41, 42, 49, 60, 61, 64],
            SaleVoid | PreAuthorizationVoid | CompletionVoid => {
                &[3, 4, 11, 22, 25, 37, 41, 42, 49, 60, 61, 64]
            }
            Refund => &[3, 4, 11, 22, 25, 37, 41, 42, 49, 60, 61, 64],
            Reversal => &[3, 4, 11, 22, 25, 39, 41, 42, 49, 60, 64],
            BatchSettlement => &[11, 41, 42, 48, 49, 60, 63],
            BatchUpload => &[11, 41, 42, 48, 60],
        }
    }

    /// Whether the message must identify a card (field 2 or track 2).
    pub fn needs_card(self) -> bool {
        use MessageType::*;
        matches!(
            self,
            BalanceInquiry
                | Sale
                | PreAuthorization
                | Refund
                | SaleVoid
                | PreAuthorizationVoid
                | PreAuthorizationCompletion
                | CompletionVoid
        )
    }

    /// Whether the terminal MACs the message (field 64); network management and batch
    /// messages are not MACed in these conventions.
    pub fn is_maced(self) -> bool {
        self.mandatory_fields().contains(&64)
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why a message cannot be processed, with the response code that says so when the message
/// can be answered at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{response}: {reason}")]
pub struct Reject {
    pub response: ResponseCode,
    /// The field at fault, when there is one.
    pub field: Option<u8>,
    pub reason: String,
}

impl Reject {
    fn format(field: u8, reason: impl Into<String>) -> Self {
        Reject {
            response: ResponseCode::FormatError,
            field: Some(field),
            reason: reason.into(),
        }
    }

    fn invalid(reason: impl Into<String>) -> Self {
        Reject {
            response: ResponseCode::InvalidTransaction,
            field: None,
            reason: reason.into(),
        }
    }
}

fn text(message: &Message<'_>, field: u8) -> Option<String> {
    message.get(field).map(|value| value.to_text())
}

/// The message type, from MTI, field 3, field 25, 60.1 and 60.3.
pub fn classify(profile: &Profile, message: &Message<'_>) -> Result<MessageType, Reject> {
    use MessageType::*;
    let processing = text(message, 3).map(|code| code.chars().take(2).collect::<String>());
    let condition = text(message, 25);
    let transaction_type = profile.subfield_text(message, 60, 1);
    let network_code = profile.subfield_text(message, 60, 3);
    let mti = message.mti.as_str();
    let kind = match (
        mti,
        processing.as_deref(),
        condition.as_deref(),
        transaction_type.as_deref(),
    ) {
        ("0800", _, _, _) => match network_code.as_deref() {
            Some("001" | "003" | "004") => SignOn,
            Some(crate::parameters::PARAMETER_DOWNLOAD) => ParameterDownload,
            _ => {
                return Err(Reject::format(
                    60,
                    "0800 needs 60.3 = 001, 003 or 004 (sign-on) or 360 (parameter download)",
                ));
            }
        },
        ("0820", _, _, _) => match network_code.as_deref() {
            Some("002") => SignOff,
            Some("301") => EchoTest,
            _ => {
                return Err(Reject::format(
                    60,
                    "0820 needs 60.3 = 002 (sign-off) or 301 (echo test)",
                ));
            }
        },
        ("0500", _, _, _) => BatchSettlement,
        ("0320", _, _, _) => BatchUpload,
        ("0400" | "0401", _, _, _) => Reversal,
        ("0200", Some("31"), _, Some("01")) => BalanceInquiry,
        ("0200", Some("00"), Some("00"), Some("22")) => Sale,
        ("0200", Some("20"), Some("00"), Some("23")) => SaleVoid,
        ("0200", Some("00"), Some("06"), Some("20")) => PreAuthorizationCompletion,
        ("0200", Some("20"), Some("06"), Some("21")) => CompletionVoid,
        ("0220", Some("20"), _, Some("25")) => Refund,
        ("0100", Some("03"), Some("06"), Some("10")) => PreAuthorization,
        ("0100", Some("20"), Some("06"), Some("11")) => PreAuthorizationVoid,
        (mti, processing, condition, transaction_type) => {
            return Err(Reject::invalid(format!(
                "MTI {mti} with processing code {} / condition {} / 60.1 {} is not a message this host knows",
                processing.unwrap_or("-"),
                condition.unwrap_or("-"),
                transaction_type.unwrap_or("-")
            )));
        }
    };
    Ok(kind)
}

/// What the host needs from any terminal message before deciding anything, parsed at the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub kind: MessageType,
    pub mti: Mti,
    /// System trace audit number (field 11), 1–999999.
    pub stan: u32,
    /// Terminal id (field 41).
    pub terminal_id: String,
    /// Merchant id (field 42).
    pub merchant_id: String,
    /// Batch number (60.2).
    pub batch: u32,
    /// Amount in minor units (field 4), when the message carries one.
    pub amount_minor: Option<u64>,
}

impl Request {
    /// The message's business key: its terminal, batch and trace number.
    pub fn key(&self) -> crate::effects::BusinessKey {
        crate::effects::BusinessKey {
            terminal_id: self.terminal_id.clone(),
            batch: self.batch,
            stan: self.stan,
        }
    }

    /// Classifies the message and checks that it carries every field its type needs, in a
    /// usable form. A rejection names the field and carries the response code to answer with.
    pub fn parse(profile: &Profile, message: &Message<'_>) -> Result<Request, Reject> {
        Self::parse_classified(classify(profile, message)?, profile, message, true)
    }

    /// [`Request::parse`] for a message between institutions (the switch link), which carries
    /// no field 64.
    pub fn parse_unmaced(profile: &Profile, message: &Message<'_>) -> Result<Request, Reject> {
        Self::parse_classified(classify(profile, message)?, profile, message, false)
    }

    /// [`Request::parse`] (or, without `maced`, [`Request::parse_unmaced`]) of a message
    /// already classified as `kind`: the handler classifies each message once, for its
    /// request and its journal entry.
    pub(crate) fn parse_classified(
        kind: MessageType,
        profile: &Profile,
        message: &Message<'_>,
        maced: bool,
    ) -> Result<Request, Reject> {
        if let Some(missing) = kind
            .mandatory_fields()
            .iter()
            .filter(|field| maced || **field != 64)
            .find(|field| !message.has(**field))
        {
            return Err(Reject::format(
                *missing,
                format!("a {kind} must carry field {missing}"),
            ));
        }
        if kind.needs_card() && !message.has(2) && !message.has(35) {
            return Err(Reject::format(
                2,
                format!("a {kind} must carry the card number (field 2) or track 2 (field 35)"),
            ));
        }
        let stan = message
            .stan()
            .map_err(|error| Reject::format(11, error.to_string()))?
            .value();
        let terminal_id = message
            .terminal_id()
            .map_err(|error| Reject::format(41, error.to_string()))?;
        let merchant_id = message
            .merchant_id()
            .map_err(|error| Reject::format(42, error.to_string()))?;
        if terminal_id.trim().len() != 8 {
            return Err(Reject::format(41, "the terminal id has 8 characters"));
        }
        if merchant_id.trim().len() != 15 {
            return Err(Reject::format(42, "the merchant id has 15 characters"));
        }
        if let Some(transmission) = message.get(7).map(|value| value.to_text())
            && !transmission_time_is_sane(&transmission)
        {
            return Err(Reject::format(
                7,
                "the transmission date and time (field 7) is MMDDhhmmss: a real month, day, hour, minute and second",
            ));
        }
        let batch = profile
            .subfield_text(message, 60, 2)
            .and_then(|text| text.parse::<u32>().ok())
            .ok_or_else(|| Reject::format(60, "60.2 must be a 6-digit batch number"))?;
        let amount_minor = match message.has(4) {
            true => Some(
                message
                    .amount()
                    .map_err(|error| Reject::format(4, error.to_string()))?,
            ),
            false => None,
        };
        if matches!(amount_minor, Some(0)) && kind != MessageType::Reversal {
            return Err(Reject {
                response: ResponseCode::InvalidAmount,
                field: Some(4),
                reason: "the amount must be above zero".into(),
            });
        }
        Ok(Request {
            kind,
            mti: message.mti,
            stan,
            terminal_id,
            merchant_id,
            batch,
            amount_minor,
        })
    }
}

/// Whether field 7 (MMDDhhmmss) names a real moment of some year.
fn transmission_time_is_sane(text: &str) -> bool {
    if text.len() != 10 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return false;
    }
    let part = |at: usize| text[at..at + 2].parse::<u32>().unwrap_or(99);
    let (month, day, hour, minute, second) = (part(0), part(2), part(4), part(6), part(8));
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 => 29,
        _ => 0,
    };
    (1..=days_in_month).contains(&day) && hour < 24 && minute < 60 && second < 60
}

/// Fields a terminal expects to find again in the answer (the host adds its own: 12/13 host
/// time, 15 settlement date, 32, 37, 38, 39, 55, 62, 64).
const ECHOED_FIELDS: [u8; 11] = [3, 4, 11, 22, 25, 41, 42, 49, 60, 61, 63];

/// The answer's skeleton: response MTI, TPDU turned round, the request's header, the echoed
/// fields and field 39. `None` when the message is not a request or advice (a response cannot
/// be answered).
pub fn response_to(request: &Message<'_>, response: ResponseCode) -> Option<Message<'static>> {
    let mut answer = Message::new(request.mti.response()?);
    answer.tpdu = request.tpdu.map(|tpdu| tpdu.reply());
    answer.header = request.header.clone().into_owned().into();
    for field in ECHOED_FIELDS {
        if let Some(value) = request.get(field) {
            answer.set(field, value.clone().into_owned());
        }
    }
    answer.set_text(39, response.code());
    Some(answer)
}
