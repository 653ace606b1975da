//! The checks of every field of an application, each a pure function from what was typed to
//! the parsed value or a [`FieldError`]. The console runs them as a field is typed and again on
//! submit; the API runs them on every request; the messages are in `i18n/*.ftl` under
//! `onb-err-<code>` in English and Simplified Chinese.

use money::{Amount, Currency};

/// What is wrong with one field: the field's name and a stable code naming the fault, which
/// is also the suffix of its translated message (`onb-err-<code>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub code: &'static str,
}

impl FieldError {
    fn new(field: &'static str, code: &'static str) -> Self {
        FieldError { field, code }
    }

    /// The Fluent message id of this fault.
    pub fn message_id(&self) -> String {
        format!("onb-err-{}", self.code)
    }

    /// The message in English, for the API and logs (the console translates `message_id`).
    pub fn english(&self) -> &'static str {
        english(self.code)
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.english())
    }
}

/// Every fault code with its English message; the Fluent files carry the same codes (a test
/// checks both directions).
pub const CODES: [(&str, &str); 27] = [
    ("required", "this field is required"),
    ("too-long", "this is longer than allowed"),
    ("too-short", "this is too short"),
    (
        "credit-code-length",
        "a unified social credit code has 18 characters",
    ),
    (
        "credit-code-chars",
        "a unified social credit code uses digits and the capital letters A–Y except I, O, S, V and Z",
    ),
    (
        "credit-code-check",
        "the last character does not match the check character of GB 32100: the code is mistyped",
    ),
    ("id-length", "a resident ID number has 18 characters"),
    (
        "id-chars",
        "a resident ID number has 17 digits and then a digit or X",
    ),
    (
        "id-birth-date",
        "digits 7 to 14 of a resident ID number are a date of birth, and this one is not a real date",
    ),
    (
        "id-check",
        "the last character does not match the ISO 7064 MOD 11-2 check: the number is mistyped",
    ),
    (
        "mobile",
        "a mainland China mobile number has 11 digits starting with 13 to 19 (an optional +86 before it)",
    ),
    ("card-digits", "a bank card number has 16 to 19 digits"),
    (
        "card-check",
        "the card number fails the Luhn check: a digit is mistyped",
    ),
    ("mcc-unknown", "choose a business type from the list"),
    ("mcc-prohibited", "we cannot accept this type of business"),
    (
        "volume-format",
        "give the expected monthly card takings in yuan, as digits, for example 50000",
    ),
    (
        "volume-range",
        "the expected monthly takings must be between 1 and 100 000 000 yuan",
    ),
    ("terminal-count", "you can ask for 1 to 20 terminals"),
    ("terminal-kind", "choose a terminal kind from the list"),
    (
        "consent",
        "you must agree to the terms and to the checks of your application",
    ),
    ("document-type", "documents must be JPEG, PNG or PDF files"),
    ("document-size", "a document may be at most 5 MB"),
    (
        "document-kind",
        "the document must be a business licence, the front or back of the ID card, or a shop photo",
    ),
    ("document-empty", "the file is empty"),
    (
        "text-chars",
        "this contains characters that cannot be used here",
    ),
    ("bank", "give the name of the bank of the settlement card"),
    ("city", "give the city of the business"),
];

fn english(code: &str) -> &'static str {
    CODES
        .iter()
        .find(|(known, _)| *known == code)
        .map_or("this value is not accepted", |(_, message)| message)
}

/// Longest free text field (names, addresses), in characters: a bound on what is stored and
/// shown, well above any real business name.
pub const MAX_TEXT_CHARS: usize = 200;

/// A required free text: trimmed, 2 to [`MAX_TEXT_CHARS`] characters, no control characters.
pub fn text(field: &'static str, value: &str) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(field, "required"));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(field, "text-chars"));
    }
    let chars = value.chars().count();
    if chars < 2 {
        return Err(FieldError::new(field, "too-short"));
    }
    if chars > MAX_TEXT_CHARS {
        return Err(FieldError::new(field, "too-long"));
    }
    Ok(value.to_owned())
}

/// The characters of a unified social credit code, in the order of their values (GB 32100-2015
/// table 2: the digits, then the capital letters without I, O, S, V and Z).
const CREDIT_CODE_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// The weights of positions 1 to 17 (3^(i-1) mod 31, GB 32100-2015 §5.2).
const CREDIT_CODE_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// A unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters, the last a
/// check character: C18 = 31 − (Σ value(Ci) × Wi mod 31), where 31 stands for 0.
/// Lower-case letters and surrounding spaces are accepted and normalised.
pub fn credit_code(value: &str) -> Result<String, FieldError> {
    const FIELD: &str = "credit_code";
    let value = value.trim().to_ascii_uppercase();
    if value.is_empty() {
        return Err(FieldError::new(FIELD, "required"));
    }
    if value.chars().count() != 18 {
        return Err(FieldError::new(FIELD, "credit-code-length"));
    }
    let values: Vec<u32> = value
        .bytes()
        .map(|byte| CREDIT_CODE_CHARS.iter().position(|known| *known == byte))
        .map(|position| position.and_then(|p| u32::try_from(p).ok()))
        .collect::<Option<_>>()
        .ok_or(FieldError::new(FIELD, "credit-code-chars"))?;
    let sum: u32 = values
        .iter()
        .zip(CREDIT_CODE_WEIGHTS)
        .map(|(value, weight)| value * weight)
        .sum();
    let check = (31 - sum % 31) % 31;
    if values[17] != check {
        return Err(FieldError::new(FIELD, "credit-code-check"));
    }
    Ok(value)
}

/// The weights of digits 1 to 17 of a resident ID number (2^(18-i) mod 11, GB 11643-1999).
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// The check character for each remainder of Σ digit × weight mod 11 (ISO 7064 MOD 11-2).
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// A resident identity card number (居民身份证号码, GB 11643-1999): 17 digits (address code,
/// date of birth YYYYMMDD, sequence) and an ISO 7064 MOD 11-2 check character (digit or X).
pub fn resident_id(value: &str) -> Result<String, FieldError> {
    const FIELD: &str = "id_number";
    let value = value.trim().to_ascii_uppercase();
    if value.is_empty() {
        return Err(FieldError::new(FIELD, "required"));
    }
    if value.chars().count() != 18 {
        return Err(FieldError::new(FIELD, "id-length"));
    }
    let bytes = value.as_bytes();
    if !bytes[..17].iter().all(u8::is_ascii_digit)
        || !(bytes[17].is_ascii_digit() || bytes[17] == b'X')
    {
        return Err(FieldError::new(FIELD, "id-chars"));
    }
    if !real_date(&value[6..14]) {
        return Err(FieldError::new(FIELD, "id-birth-date"));
    }
    let sum: u32 = bytes[..17]
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    if ID_CHECK[(sum % 11) as usize] != bytes[17] {
        return Err(FieldError::new(FIELD, "id-check"));
    }
    Ok(value)
}

/// Whether eight digits YYYYMMDD are a date between 1800 and 2099 that exists (GB 11643 itself
/// gives an example born in 1880).
fn real_date(digits: &str) -> bool {
    let number = |range: std::ops::Range<usize>| digits.get(range)?.parse::<u32>().ok();
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(4..6), number(6..8)) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1800..=2099).contains(&year) && (1..=days).contains(&day)
}

/// A mainland China mobile number: 11 digits, `1` then `3`–`9`; `+86`, `0086`, spaces and
/// dashes are accepted and removed.
pub fn mobile(value: &str) -> Result<String, FieldError> {
    const FIELD: &str = "mobile";
    let compact: String = value
        .trim()
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .collect();
    if compact.is_empty() {
        return Err(FieldError::new(FIELD, "required"));
    }
    let national = compact
        .strip_prefix("+86")
        .or_else(|| compact.strip_prefix("0086"))
        .unwrap_or(&compact);
    let bytes = national.as_bytes();
    let valid = bytes.len() == 11
        && bytes.iter().all(u8::is_ascii_digit)
        && bytes[0] == b'1'
        && (b'3'..=b'9').contains(&bytes[1]);
    if !valid {
        return Err(FieldError::new(FIELD, "mobile"));
    }
    Ok(national.to_owned())
}

/// A settlement bank card number: 16 to 19 digits (spaces removed) passing the Luhn check.
/// The caller keeps only its masked form and fingerprint.
pub fn settlement_card(value: &str) -> Result<String, FieldError> {
    const FIELD: &str = "settlement_card";
    let digits: String = value.chars().filter(|c| *c != ' ' && *c != '-').collect();
    if digits.is_empty() {
        return Err(FieldError::new(FIELD, "required"));
    }
    if !(16..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldError::new(FIELD, "card-digits"));
    }
    match paycrypto::card::luhn_valid(&digits) {
        Ok(true) => Ok(digits),
        _ => Err(FieldError::new(FIELD, "card-check")),
    }
}

/// A category from the picker ([`crate::mcc::CATEGORIES`]); prohibited ones are refused.
pub fn mcc(value: &str) -> Result<&'static crate::mcc::Category, FieldError> {
    const FIELD: &str = "mcc";
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(FIELD, "required"));
    }
    let category = crate::mcc::find(value).ok_or(FieldError::new(FIELD, "mcc-unknown"))?;
    if category.risk == crate::mcc::Risk::Prohibited {
        return Err(FieldError::new(FIELD, "mcc-prohibited"));
    }
    Ok(category)
}

/// Largest expected monthly volume accepted, in yuan: above it an application is a bank's
/// business, not a self-service one.
pub const MAX_MONTHLY_VOLUME_YUAN: i64 = 100_000_000;

/// The expected monthly card takings in yuan (whole yuan or with fen), 1 to
/// [`MAX_MONTHLY_VOLUME_YUAN`]. Thousands separators (`,` and spaces) are removed.
pub fn monthly_volume(value: &str) -> Result<Amount, FieldError> {
    const FIELD: &str = "monthly_volume";
    let compact: String = value
        .trim()
        .chars()
        .filter(|c| *c != ',' && *c != ' ')
        .collect();
    if compact.is_empty() {
        return Err(FieldError::new(FIELD, "required"));
    }
    if compact.starts_with('-') {
        return Err(FieldError::new(FIELD, "volume-format"));
    }
    let amount = Amount::parse(&compact, Currency::CNY)
        .map_err(|_| FieldError::new(FIELD, "volume-format"))?;
    let max = MAX_MONTHLY_VOLUME_YUAN * 100;
    if amount.minor() < 100 || amount.minor() > max {
        return Err(FieldError::new(FIELD, "volume-range"));
    }
    Ok(amount)
}

/// Most terminals one application may ask for; more is a project for the sales team.
pub const MAX_TERMINALS: u32 = 20;

/// How many terminals: 1 to [`MAX_TERMINALS`].
pub fn terminal_count(value: &str) -> Result<u32, FieldError> {
    const FIELD: &str = "terminal_count";
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(FIELD, "required"));
    }
    match value.parse::<u32>() {
        Ok(count) if (1..=MAX_TERMINALS).contains(&count) => Ok(count),
        _ => Err(FieldError::new(FIELD, "terminal-count")),
    }
}

/// The kinds of terminal offered: a countertop terminal on the shop's line, a portable one
/// on mobile data, a smart (Android) terminal.
pub const TERMINAL_KINDS: [&str; 3] = ["countertop", "portable", "smart"];

pub fn terminal_kind(value: &str) -> Result<&'static str, FieldError> {
    const FIELD: &str = "terminal_kind";
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(FIELD, "required"));
    }
    TERMINAL_KINDS
        .into_iter()
        .find(|kind| *kind == value)
        .ok_or(FieldError::new(FIELD, "terminal-kind"))
}

/// Consent is a ticked box: `on`, `true`, `yes` or `1`.
pub fn consent(value: &str) -> Result<bool, FieldError> {
    match value.trim() {
        "on" | "true" | "yes" | "1" => Ok(true),
        _ => Err(FieldError::new("consent", "consent")),
    }
}

/// A field the form knows, by name, checked alone (the console asks this as a field is
/// typed). `None` when the field has no check of its own.
pub fn field(name: &str, value: &str) -> Option<Result<(), FieldError>> {
    let result = match name {
        "business_name" => text("business_name", value).map(drop),
        "legal_name" => text("legal_name", value).map(drop),
        "address" => text("address", value).map(drop),
        "city" => text("city", value).map(drop).map_err(|error| {
            FieldError::new(
                "city",
                if error.code == "required" {
                    "city"
                } else {
                    error.code
                },
            )
        }),
        "bank" => text("bank", value).map(drop).map_err(|error| {
            FieldError::new(
                "bank",
                if error.code == "required" {
                    "bank"
                } else {
                    error.code
                },
            )
        }),
        "credit_code" => credit_code(value).map(drop),
        "id_number" => resident_id(value).map(drop),
        "mobile" => mobile(value).map(drop),
        "settlement_card" => settlement_card(value).map(drop),
        "mcc" => mcc(value).map(drop),
        "monthly_volume" => monthly_volume(value).map(drop),
        "terminal_count" => terminal_count(value).map(drop),
        "terminal_kind" => terminal_kind(value).map(drop),
        "consent" => consent(value).map(drop),
        _ => return None,
    };
    Some(result)
}
