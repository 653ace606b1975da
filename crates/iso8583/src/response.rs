//! ISO 8583:1987 field 39 response codes, as acquirers publish them (STANDARDS.md §1.6), plus
//! the UnionPay-style `A0` (MAC verification failure). One enum so that issuer, switch and
//! acquirer agree on every code and its meaning.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResponseCode {
    Approved,
    ReferToIssuer,
    InvalidMerchant,
    PickUp,
    DoNotHonor,
    Error,
    InvalidTransaction,
    InvalidAmount,
    InvalidCardNumber,
    NoSuchIssuer,
    UnableToLocateRecord,
    FormatError,
    LostCard,
    StolenCard,
    InsufficientFunds,
    ExpiredCard,
    IncorrectPin,
    NoCardRecord,
    NotPermittedToCardholder,
    NotPermittedToTerminal,
    /// 59: the acquirer's or issuer's risk rules suspect fraud.
    SuspectedFraud,
    ExceedsAmountLimit,
    RestrictedCard,
    SecurityViolation,
    ExceedsFrequencyLimit,
    ResponseTooLate,
    FunctionNotSupported,
    PinTriesExceeded,
    IssuerInoperative,
    UnableToRoute,
    DuplicateTransmission,
    SystemMalfunction,
    MacFailure,
}

const TABLE: [(ResponseCode, &str, &str); 33] = [
    (ResponseCode::Approved, "00", "approved"),
    (ResponseCode::ReferToIssuer, "01", "refer to card issuer"),
    (ResponseCode::InvalidMerchant, "03", "invalid merchant"),
    (ResponseCode::PickUp, "04", "pick up card"),
    (ResponseCode::DoNotHonor, "05", "do not honor"),
    (ResponseCode::Error, "06", "error"),
    (
        ResponseCode::InvalidTransaction,
        "12",
        "invalid transaction",
    ),
    (ResponseCode::InvalidAmount, "13", "invalid amount"),
    (ResponseCode::InvalidCardNumber, "14", "invalid card number"),
    (ResponseCode::NoSuchIssuer, "15", "no such issuer"),
    (
        ResponseCode::UnableToLocateRecord,
        "25",
        "unable to locate record",
    ),
    (ResponseCode::FormatError, "30", "format error"),
    (ResponseCode::LostCard, "41", "lost card, pick up"),
    (ResponseCode::StolenCard, "43", "stolen card, pick up"),
    (ResponseCode::InsufficientFunds, "51", "insufficient funds"),
    (ResponseCode::ExpiredCard, "54", "expired card"),
    (ResponseCode::IncorrectPin, "55", "incorrect PIN"),
    (ResponseCode::NoCardRecord, "56", "no card record"),
    (
        ResponseCode::NotPermittedToCardholder,
        "57",
        "transaction not permitted to cardholder",
    ),
    (
        ResponseCode::NotPermittedToTerminal,
        "58",
        "transaction not permitted to terminal",
    ),
    (ResponseCode::SuspectedFraud, "59", "suspected fraud"),
    (
        ResponseCode::ExceedsAmountLimit,
        "61",
        "exceeds amount limit",
    ),
    (ResponseCode::RestrictedCard, "62", "restricted card"),
    (ResponseCode::SecurityViolation, "63", "security violation"),
    (
        ResponseCode::ExceedsFrequencyLimit,
        "65",
        "exceeds frequency limit",
    ),
    (
        ResponseCode::ResponseTooLate,
        "68",
        "response received too late",
    ),
    (
        ResponseCode::FunctionNotSupported,
        "40",
        "function not supported",
    ),
    (ResponseCode::PinTriesExceeded, "75", "PIN tries exceeded"),
    (
        ResponseCode::IssuerInoperative,
        "91",
        "issuer or switch inoperative",
    ),
    (ResponseCode::UnableToRoute, "92", "unable to route"),
    (
        ResponseCode::DuplicateTransmission,
        "94",
        "duplicate transmission",
    ),
    (ResponseCode::SystemMalfunction, "96", "system malfunction"),
    (ResponseCode::MacFailure, "A0", "MAC verification failed"),
];

impl ResponseCode {
    /// The two characters carried in field 39.
    pub fn code(self) -> &'static str {
        TABLE
            .iter()
            .find(|(code, _, _)| *code == self)
            .map_or("96", |(_, text, _)| text)
    }

    /// What the code means, for receipts, logs and the console.
    pub fn meaning(self) -> &'static str {
        TABLE
            .iter()
            .find(|(code, _, _)| *code == self)
            .map_or("system malfunction", |(_, _, meaning)| meaning)
    }

    pub fn parse(text: &str) -> Option<ResponseCode> {
        TABLE
            .iter()
            .find(|(_, code, _)| *code == text)
            .map(|(code, _, _)| *code)
    }

    pub fn is_approved(self) -> bool {
        self == ResponseCode::Approved
    }

    /// The authorisation response code as the card sees it (EMV tag 8A): the ASCII bytes.
    pub fn arc(self) -> [u8; 2] {
        let bytes = self.code().as_bytes();
        [bytes[0], bytes[1]]
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.meaning())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        for (code, text, _) in TABLE {
            assert_eq!(code.code(), text);
            assert_eq!(ResponseCode::parse(text), Some(code));
            assert_eq!(text.len(), 2);
        }
        let mut texts: Vec<&str> = TABLE.iter().map(|(_, text, _)| *text).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), TABLE.len());
        assert_eq!(ResponseCode::parse("ZZ"), None);
        assert_eq!(ResponseCode::PinTriesExceeded.arc(), *b"75");
        assert_eq!(
            ResponseCode::InsufficientFunds.to_string(),
            "51 (insufficient funds)"
        );
    }
}
