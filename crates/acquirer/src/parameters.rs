//! Terminal parameters and how they reach an active terminal (docs/protocol.md, "Parameter
//! download").
//!
//! After the practice of UnionPay POS terminals, the host keeps a version of each terminal's
//! parameter set. The terminal names the version it holds in field 62 of its sign-on; when the
//! host's is another, the 0810 asks for a download in the processing-requirement half-byte of
//! the message header (CUP's 处理要求, 1 = download terminal parameters). The terminal then
//! sends a parameter download (0800, 60.3 = 360), MACed like a financial message, and the
//! host answers with the whole set in field 62, MACed under the same keys: whatever the
//! header says, a terminal takes only parameters whose answer MAC verifies.
//!
//! Field 62 holds entries `tag (2 digits) ‖ length (3 digits) ‖ value (UTF-8)`:
//!
//! ```
//! use acquirer::parameters::TerminalParameters;
//! let parameters = TerminalParameters {
//!     version: 3,
//!     merchant_name: "Jing'an Tea House".into(),
//!     merchant_city: "Shanghai".into(),
//!     host: "127.0.0.1:8583".into(),
//!     currency: "CNY".into(),
//!     contactless_cvm_limit: "300.00".into(),
//!     languages: vec!["zh".into(), "en".into()],
//!     payment_methods: vec!["chip".into(), "contactless".into()],
//! };
//! let field62 = parameters.encode().unwrap();
//! assert!(field62.starts_with(b"01008000000031101"));
//! assert_eq!(TerminalParameters::decode(&field62).unwrap(), parameters);
//! ```

use iso8583::Message;

/// 60.3 of a parameter download request (our choice, after CUP's 36x management codes).
pub const PARAMETER_DOWNLOAD: &str = "360";
/// The header byte whose low half-byte is the processing requirement (CUP header: application
/// type, software version, then terminal status ‖ processing requirement).
pub const PROCESSING_REQUIREMENT_BYTE: usize = 2;
/// Processing requirement 1: download the terminal parameters.
pub const DOWNLOAD_PARAMETERS: u8 = 0x1;
/// The most field 62 of `cup-bcd` holds.
pub const MAX_FIELD62_BYTES: usize = 512;
/// Digits of the version entry.
const VERSION_DIGITS: usize = 8;

const TAG_VERSION: &str = "01";
const TAG_MERCHANT_NAME: &str = "11";
const TAG_MERCHANT_CITY: &str = "12";
const TAG_HOST: &str = "13";
const TAG_CURRENCY: &str = "14";
const TAG_CVM_LIMIT: &str = "15";
const TAG_LANGUAGES: &str = "16";
const TAG_PAYMENT_METHODS: &str = "17";

/// What is wrong with a parameter field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParameterError {
    #[error("the parameters take {0} bytes, more than field 62's 512")]
    TooLong(usize),
    #[error("field 62 is not tag-length-value parameters at byte {0}")]
    Malformed(usize),
    #[error("the parameters lack entry {0}")]
    Missing(&'static str),
}

/// A terminal's parameter set, as the host sends it (and as the terminal keeps it, in JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TerminalParameters {
    /// Moves on at every change; the terminal names the one it holds at sign-on.
    pub version: u32,
    pub merchant_name: String,
    pub merchant_city: String,
    /// The acquirer host's ISO 8583 address.
    pub host: String,
    /// ISO 4217 alphabetic code.
    pub currency: String,
    /// Major units, e.g. "300.00".
    pub contactless_cvm_limit: String,
    /// `zh`, `en`, the first the terminal's own.
    pub languages: Vec<String>,
    /// Of `chip`, `contactless`, `swipe`, `qr`.
    pub payment_methods: Vec<String>,
}

impl TerminalParameters {
    /// Field 62 of the download answer.
    pub fn encode(&self) -> Result<Vec<u8>, ParameterError> {
        let mut field = Vec::new();
        let version = format!("{:0width$}", self.version, width = VERSION_DIGITS);
        let entries = [
            (TAG_VERSION, version.as_str()),
            (TAG_MERCHANT_NAME, self.merchant_name.as_str()),
            (TAG_MERCHANT_CITY, self.merchant_city.as_str()),
            (TAG_HOST, self.host.as_str()),
            (TAG_CURRENCY, self.currency.as_str()),
            (TAG_CVM_LIMIT, self.contactless_cvm_limit.as_str()),
            (TAG_LANGUAGES, &self.languages.join(",")),
            (TAG_PAYMENT_METHODS, &self.payment_methods.join(",")),
        ];
        for (tag, value) in entries {
            put(&mut field, tag, value);
        }
        if field.len() > MAX_FIELD62_BYTES {
            return Err(ParameterError::TooLong(field.len()));
        }
        Ok(field)
    }

    /// The set from field 62; unknown tags are skipped (a newer host may send more).
    pub fn decode(field: &[u8]) -> Result<TerminalParameters, ParameterError> {
        let mut parameters = TerminalParameters::default();
        let mut seen_version = false;
        let mut seen_name = false;
        let mut seen_host = false;
        for (tag, value) in entries(field)? {
            let list = || {
                value
                    .split(',')
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned)
                    .collect()
            };
            match tag {
                TAG_VERSION => {
                    parameters.version =
                        parse_version(value).ok_or(ParameterError::Malformed(0))?;
                    seen_version = true;
                }
                TAG_MERCHANT_NAME => {
                    parameters.merchant_name = value.to_owned();
                    seen_name = true;
                }
                TAG_MERCHANT_CITY => parameters.merchant_city = value.to_owned(),
                TAG_HOST => {
                    parameters.host = value.to_owned();
                    seen_host = true;
                }
                TAG_CURRENCY => parameters.currency = value.to_owned(),
                TAG_CVM_LIMIT => parameters.contactless_cvm_limit = value.to_owned(),
                TAG_LANGUAGES => parameters.languages = list(),
                TAG_PAYMENT_METHODS => parameters.payment_methods = list(),
                _ => {}
            }
        }
        match (seen_version, seen_name, seen_host) {
            (false, _, _) => Err(ParameterError::Missing("01 (version)")),
            (_, false, _) => Err(ParameterError::Missing("11 (merchant name)")),
            (_, _, false) => Err(ParameterError::Missing("13 (host)")),
            _ => Ok(parameters),
        }
    }
}

/// Field 62 of a sign-on: the version of the parameters the terminal holds.
pub fn version_field(version: u32) -> Vec<u8> {
    let mut field = Vec::new();
    put(
        &mut field,
        TAG_VERSION,
        &format!("{version:0width$}", width = VERSION_DIGITS),
    );
    field
}

/// The parameter version a sign-on names in field 62; 0 when it names none (a terminal
/// configured by hand, or one from before parameter downloads).
pub fn version_of(sign_on: &Message<'_>) -> u32 {
    let Some(value) = sign_on.get(62) else {
        return 0;
    };
    let bytes = value.to_bytes();
    entries(&bytes)
        .ok()
        .and_then(|entries| {
            entries
                .into_iter()
                .find(|(tag, _)| *tag == TAG_VERSION)
                .and_then(|(_, value)| parse_version(value))
        })
        .unwrap_or(0)
}

/// Asks, in a sign-on answer's header, for a parameter download.
pub fn request_download(answer: &mut Message<'_>) {
    if let Some(byte) = answer.header.to_mut().get_mut(PROCESSING_REQUIREMENT_BYTE) {
        *byte = (*byte & 0xF0) | DOWNLOAD_PARAMETERS;
    }
}

/// Whether a sign-on answer asks for a parameter download.
pub fn download_requested(answer: &Message<'_>) -> bool {
    answer
        .header
        .get(PROCESSING_REQUIREMENT_BYTE)
        .is_some_and(|byte| byte & 0x0F == DOWNLOAD_PARAMETERS)
}

fn parse_version(value: &str) -> Option<u32> {
    (value.len() == VERSION_DIGITS && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse().ok())
        .flatten()
}

fn put(field: &mut Vec<u8>, tag: &str, value: &str) {
    field.extend_from_slice(tag.as_bytes());
    field.extend_from_slice(format!("{:03}", value.len()).as_bytes());
    field.extend_from_slice(value.as_bytes());
}

/// The (tag, value) entries of `field`.
fn entries(field: &[u8]) -> Result<Vec<(&str, &str)>, ParameterError> {
    let mut entries = Vec::new();
    let mut at = 0;
    while at < field.len() {
        let head = field
            .get(at..at + 5)
            .and_then(|head| std::str::from_utf8(head).ok())
            .filter(|head| head.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(ParameterError::Malformed(at))?;
        let length: usize = head[2..]
            .parse()
            .map_err(|_| ParameterError::Malformed(at))?;
        let value = field
            .get(at + 5..at + 5 + length)
            .and_then(|value| std::str::from_utf8(value).ok())
            .ok_or(ParameterError::Malformed(at))?;
        entries.push((&head[..2], value));
        at += 5 + length;
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parameters() -> TerminalParameters {
        TerminalParameters {
            version: 7,
            merchant_name: "静安茶馆 Tea".into(),
            merchant_city: "上海".into(),
            host: "10.0.0.1:8583".into(),
            currency: "CNY".into(),
            contactless_cvm_limit: "500.00".into(),
            languages: vec!["en".into()],
            payment_methods: vec!["chip".into(), "qr".into()],
        }
    }

    #[test]
    fn a_parameter_set_round_trips_with_chinese_text() {
        let field = parameters().encode().unwrap();
        assert_eq!(TerminalParameters::decode(&field).unwrap(), parameters());
    }

    #[test]
    fn unknown_tags_are_skipped_and_missing_ones_refused() {
        let mut field = parameters().encode().unwrap();
        field.extend_from_slice(b"99003abc");
        assert_eq!(TerminalParameters::decode(&field).unwrap(), parameters());
        assert_eq!(
            TerminalParameters::decode(b"11003abc13001x"),
            Err(ParameterError::Missing("01 (version)"))
        );
        assert_eq!(
            TerminalParameters::decode(b"0100800000001"),
            Err(ParameterError::Missing("11 (merchant name)"))
        );
    }

    #[test]
    fn malformed_and_oversized_fields_are_refused() {
        for bad in [&b"01"[..], b"0100900000001", b"x1003abc", b"01008abcdefgh"] {
            assert!(TerminalParameters::decode(bad).is_err(), "{bad:?}");
        }
        let mut long = parameters();
        long.merchant_name = "x".repeat(600);
        assert!(matches!(long.encode(), Err(ParameterError::TooLong(_))));
    }

    #[test]
    fn the_sign_on_names_its_version_and_the_answer_asks_for_a_download() {
        let mut sign_on = Message::new(iso8583::Mti::from_digits(b"0800").unwrap());
        assert_eq!(version_of(&sign_on), 0);
        sign_on.set_bytes(62, version_field(12));
        assert_eq!(version_of(&sign_on), 12);
        let mut answer = Message::new(iso8583::Mti::from_digits(b"0810").unwrap());
        answer.header = vec![0x60, 0x31, 0x00, 0x31, 0x00, 0x00].into();
        assert!(!download_requested(&answer));
        request_download(&mut answer);
        assert_eq!(answer.header[2], 0x01);
        assert!(download_requested(&answer));
    }
}
