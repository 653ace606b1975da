//! EMVCo Merchant-Presented Mode payloads (EMV QRCPS MPM v1.1; STANDARDS.md §7).

use crate::crc::crc16_ccitt_false;
use crate::error::QrError;

/// EMV QR MPM payloads are at most 512 characters; anything longer is not a valid payload and
/// is refused before parsing.
pub const MAX_PAYLOAD_CHARS: usize = 512;
/// A value's length field is two digits.
pub const MAX_VALUE_CHARS: usize = 99;
/// Globally unique identifiers (AID or reverse domain name) are at most 32 characters.
pub const MAX_GUI_CHARS: usize = 32;

/// One `ID LEN VALUE` object; `children` holds the sub-objects of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataObject {
    pub id: u8,
    pub value: String,
    pub children: Vec<DataObject>,
}

impl DataObject {
    pub fn primitive(id: u8, value: impl Into<String>) -> Self {
        Self {
            id,
            value: value.into(),
            children: Vec::new(),
        }
    }

    pub fn template(id: u8, children: Vec<DataObject>) -> Self {
        Self {
            id,
            value: String::new(),
            children,
        }
    }

    /// The value of a direct child.
    pub fn child(&self, id: u8) -> Option<&str> {
        find(&self.children, id)
    }
}

fn find(objects: &[DataObject], id: u8) -> Option<&str> {
    objects
        .iter()
        .find(|object| object.id == id)
        .map(|object| object.value.as_str())
}

/// Root IDs whose values are templates of further objects.
pub fn is_template(id: u8) -> bool {
    matches!(id, 26..=51 | 62 | 64 | 80..=99)
}

/// Point of initiation (ID 01).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiation {
    /// "11": the same code for every payment; the consumer types the amount.
    Static,
    /// "12": one code per payment, normally with the amount.
    Dynamic,
}

/// A merchant account (IDs 02–51): a network's primitive value, or a template whose sub-ID 00
/// is the globally unique identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantAccount {
    pub id: u8,
    /// Value for primitive IDs 02–25; empty for templates.
    pub value: String,
    /// Sub-objects for templates 26–51 (sub-ID 00 = GUI).
    pub fields: Vec<DataObject>,
}

impl MerchantAccount {
    pub fn gui(&self) -> Option<&str> {
        find(&self.fields, 0)
    }
}

/// Additional data field template (ID 62) sub-IDs (STANDARDS.md §7).
pub mod additional {
    pub const BILL_NUMBER: u8 = 1;
    pub const MOBILE_NUMBER: u8 = 2;
    pub const STORE_LABEL: u8 = 3;
    pub const LOYALTY_NUMBER: u8 = 4;
    pub const REFERENCE_LABEL: u8 = 5;
    pub const CUSTOMER_LABEL: u8 = 6;
    pub const TERMINAL_LABEL: u8 = 7;
    pub const PURPOSE: u8 = 8;
    pub const CONSUMER_DATA_REQUEST: u8 = 9;
    pub const MERCHANT_TAX_ID: u8 = 10;
    pub const MERCHANT_CHANNEL: u8 = 11;
    /// "***" asks the consumer's app to prompt for the value.
    pub const ASK_CONSUMER: &str = "***";
}

/// Merchant information — language template (ID 64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageTemplate {
    pub language: String,
    pub name: String,
    pub city: Option<String>,
}

/// A parsed and checked merchant-presented payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MerchantQr {
    pub initiation: Option<Initiation>,
    pub accounts: Vec<MerchantAccount>,
    pub mcc: String,
    pub currency: String,
    pub amount: Option<String>,
    pub tip_indicator: Option<String>,
    pub convenience_fee_fixed: Option<String>,
    pub convenience_fee_percentage: Option<String>,
    pub country: String,
    pub name: String,
    pub city: String,
    pub postal_code: Option<String>,
    /// ID 62 sub-objects (bill number, reference label, terminal label, ...).
    pub additional: Vec<DataObject>,
    pub language: Option<LanguageTemplate>,
    /// IDs 65–99 (RFU and unreserved templates), kept so they survive a round trip.
    pub other: Vec<DataObject>,
}

/// Reads objects at one level; `templates` says which IDs hold sub-objects.
fn parse_level(
    text: &str,
    templates: fn(u8) -> bool,
    offset: usize,
) -> Result<Vec<DataObject>, QrError> {
    let mut objects = Vec::new();
    let mut chars = text.char_indices().peekable();
    let mut position = offset;
    while chars.peek().is_some() {
        let id = two_digits(&mut chars).ok_or(QrError::BadId { position })?;
        let len = two_digits(&mut chars)
            .filter(|&len| len > 0)
            .ok_or(QrError::BadLength { id })?;
        let start = chars.peek().map_or(text.len(), |&(index, _)| index);
        let mut taken = 0;
        while taken < usize::from(len) && chars.next().is_some() {
            taken += 1;
        }
        if taken < usize::from(len) {
            return Err(QrError::ValuePastEnd {
                id,
                len: usize::from(len),
                available: taken,
            });
        }
        let end = chars.peek().map_or(text.len(), |&(index, _)| index);
        let value = &text[start..end];
        if objects.iter().any(|object: &DataObject| object.id == id) {
            return Err(QrError::Duplicate { id });
        }
        let children = if templates(id) {
            parse_level(value, |_| false, position + 4)?
        } else {
            Vec::new()
        };
        objects.push(DataObject {
            id,
            value: value.to_owned(),
            children,
        });
        position += 4 + usize::from(len);
    }
    Ok(objects)
}

fn two_digits(chars: &mut impl Iterator<Item = (usize, char)>) -> Option<u8> {
    let mut value = 0u8;
    for _ in 0..2 {
        let digit = chars.next()?.1.to_digit(10)?;
        value = value * 10 + digit as u8;
    }
    Some(value)
}

/// Checks that the payload ends with `6304` + the right CRC over everything before it.
pub fn verify_crc(payload: &str) -> Result<(), QrError> {
    let body = payload
        .len()
        .checked_sub(4)
        .and_then(|split| payload.get(..split))
        .ok_or(QrError::CrcPlacement)?;
    if !body.ends_with("6304") {
        return Err(QrError::CrcPlacement);
    }
    let found = &payload[body.len()..];
    let computed = format!("{:04X}", crc16_ccitt_false(body.as_bytes()));
    if !found.eq_ignore_ascii_case(&computed) {
        return Err(QrError::BadCrc {
            found: found.to_owned(),
            computed,
        });
    }
    Ok(())
}

impl MerchantQr {
    /// Parses and checks a payload: lengths in characters, ID 00 first, ID 63 last with a
    /// matching CRC, mandatory objects present, each value in its format.
    pub fn parse(payload: &str) -> Result<Self, QrError> {
        let len = payload.chars().count();
        if len > MAX_PAYLOAD_CHARS {
            return Err(QrError::TooLong {
                len,
                max: MAX_PAYLOAD_CHARS,
            });
        }
        let objects = parse_level(payload, is_template, 0)?;
        if objects.first().map(|o| (o.id, o.value.as_str())) != Some((0, "01")) {
            return Err(QrError::FormatIndicator);
        }
        if objects.last().map(|o| (o.id, o.value.chars().count())) != Some((63, 4)) {
            return Err(QrError::CrcPlacement);
        }
        verify_crc(payload)?;
        let mut qr = MerchantQr::default();
        for object in &objects {
            qr.take(object)?;
        }
        qr.check()?;
        Ok(qr)
    }

    fn take(&mut self, object: &DataObject) -> Result<(), QrError> {
        let value = || Some(object.value.clone());
        match object.id {
            0 | 63 => {}
            1 => {
                self.initiation = Some(match object.value.as_str() {
                    "11" => Initiation::Static,
                    "12" => Initiation::Dynamic,
                    _ => {
                        return Err(invalid(
                            1,
                            "point of initiation is 11 (static) or 12 (dynamic)",
                        ));
                    }
                })
            }
            2..=51 => self.accounts.push(MerchantAccount {
                id: object.id,
                value: if object.id <= 25 {
                    object.value.clone()
                } else {
                    String::new()
                },
                fields: object.children.clone(),
            }),
            52 => self.mcc = object.value.clone(),
            53 => self.currency = object.value.clone(),
            54 => self.amount = value(),
            55 => self.tip_indicator = value(),
            56 => self.convenience_fee_fixed = value(),
            57 => self.convenience_fee_percentage = value(),
            58 => self.country = object.value.clone(),
            59 => self.name = object.value.clone(),
            60 => self.city = object.value.clone(),
            61 => self.postal_code = value(),
            62 => self.additional = object.children.clone(),
            64 => self.language = Some(language(object)?),
            _ => self.other.push(object.clone()),
        }
        Ok(())
    }

    /// Whether the code is for one payment (ID 01 = 12).
    pub fn is_dynamic(&self) -> bool {
        self.initiation == Some(Initiation::Dynamic)
    }

    /// A sub-object of the additional data template (ID 62), e.g. [`additional::BILL_NUMBER`].
    pub fn additional(&self, id: u8) -> Option<&str> {
        find(&self.additional, id)
    }

    /// Checks mandatory objects and value formats (used by both parse and encode).
    pub fn check(&self) -> Result<(), QrError> {
        if self.accounts.is_empty() {
            return Err(QrError::Missing {
                id: 26,
                name: "merchant account information (02-51)",
            });
        }
        for account in &self.accounts {
            check_account(account)?;
        }
        require_digits(52, "merchant category code", &self.mcc, 4)?;
        require_digits(53, "transaction currency", &self.currency, 3)?;
        if let Some(amount) = &self.amount {
            check_amount(54, amount)?;
        }
        self.check_tip()?;
        if self.country.is_empty() {
            return Err(QrError::Missing {
                id: 58,
                name: "country code",
            });
        }
        if self.country.len() != 2 || !self.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid(
                58,
                "country code is two uppercase letters (ISO 3166-1 alpha-2)",
            ));
        }
        require_text(59, "merchant name", &self.name, 25)?;
        require_text(60, "merchant city", &self.city, 15)?;
        if let Some(postal) = &self.postal_code {
            max_chars(61, postal, 10)?;
        }
        for object in &self.additional {
            if !(1..=99).contains(&object.id) {
                return Err(invalid(62, "additional data sub-IDs run 01-99"));
            }
            if (1..=11).contains(&object.id) {
                max_chars(62, &object.value, 25)?;
            }
        }
        Ok(())
    }

    fn check_tip(&self) -> Result<(), QrError> {
        match self.tip_indicator.as_deref() {
            None | Some("01") => Ok(()),
            Some("02") => {
                let fee = self
                    .convenience_fee_fixed
                    .as_deref()
                    .ok_or(QrError::Missing {
                        id: 56,
                        name: "fixed convenience fee",
                    })?;
                check_amount(56, fee)
            }
            Some("03") => {
                let fee = self
                    .convenience_fee_percentage
                    .as_deref()
                    .ok_or(QrError::Missing {
                        id: 57,
                        name: "percentage convenience fee",
                    })?;
                check_amount(57, fee)
            }
            Some(_) => Err(invalid(55, "tip indicator is 01, 02 or 03")),
        }
    }

    /// Builds the payload: objects in ascending ID order (accounts and IDs 65–99 in their given
    /// order), lengths in characters, then ID 63
    /// with the CRC over everything before it (including "6304").
    pub fn encode(&self) -> Result<String, QrError> {
        self.check()?;
        let mut out = String::with_capacity(256);
        put(&mut out, 0, "01")?;
        if let Some(initiation) = self.initiation {
            put(
                &mut out,
                1,
                if initiation == Initiation::Static {
                    "11"
                } else {
                    "12"
                },
            )?;
        }
        // Accounts keep their order (the specification does not require ascending IDs), so
        // a parsed payload re-encodes to the same content.
        for account in &self.accounts {
            if account.id <= 25 {
                put(&mut out, account.id, &account.value)?;
            } else {
                put(&mut out, account.id, &encode_objects(&account.fields)?)?;
            }
        }
        put(&mut out, 52, &self.mcc)?;
        put(&mut out, 53, &self.currency)?;
        let optional = [
            (54, &self.amount),
            (55, &self.tip_indicator),
            (56, &self.convenience_fee_fixed),
            (57, &self.convenience_fee_percentage),
        ];
        for (id, value) in optional {
            if let Some(value) = value {
                put(&mut out, id, value)?;
            }
        }
        put(&mut out, 58, &self.country)?;
        put(&mut out, 59, &self.name)?;
        put(&mut out, 60, &self.city)?;
        if let Some(postal) = &self.postal_code {
            put(&mut out, 61, postal)?;
        }
        if !self.additional.is_empty() {
            put(&mut out, 62, &encode_objects(&self.additional)?)?;
        }
        if let Some(language) = &self.language {
            put(&mut out, 64, &encode_language(language)?)?;
        }
        for object in &self.other {
            let value = if object.children.is_empty() {
                object.value.clone()
            } else {
                encode_objects(&object.children)?
            };
            put(&mut out, object.id, &value)?;
        }
        out.push_str("6304");
        let crc = crc16_ccitt_false(out.as_bytes());
        out.push_str(&format!("{crc:04X}"));
        let len = out.chars().count();
        if len > MAX_PAYLOAD_CHARS {
            return Err(QrError::TooLong {
                len,
                max: MAX_PAYLOAD_CHARS,
            });
        }
        Ok(out)
    }
}

fn invalid(id: u8, reason: &str) -> QrError {
    QrError::Invalid {
        id,
        reason: reason.to_owned(),
    }
}

fn put(out: &mut String, id: u8, value: &str) -> Result<(), QrError> {
    let len = value.chars().count();
    if len == 0 || len > MAX_VALUE_CHARS {
        return Err(invalid(
            id,
            &format!("value of {len} characters does not fit a length of 01-99"),
        ));
    }
    out.push_str(&format!("{id:02}{len:02}"));
    out.push_str(value);
    Ok(())
}

fn encode_objects(objects: &[DataObject]) -> Result<String, QrError> {
    let mut out = String::new();
    for object in objects {
        put(&mut out, object.id, &object.value)?;
    }
    Ok(out)
}

fn encode_language(language: &LanguageTemplate) -> Result<String, QrError> {
    let mut out = String::new();
    put(&mut out, 0, &language.language)?;
    put(&mut out, 1, &language.name)?;
    if let Some(city) = &language.city {
        put(&mut out, 2, city)?;
    }
    Ok(out)
}

fn language(object: &DataObject) -> Result<LanguageTemplate, QrError> {
    let language = object.child(0).ok_or(QrError::Missing {
        id: 64,
        name: "language preference (64.00)",
    })?;
    let name = object.child(1).ok_or(QrError::Missing {
        id: 64,
        name: "alternate merchant name (64.01)",
    })?;
    if language.chars().count() != 2 {
        return Err(invalid(
            64,
            "language preference is two characters (ISO 639-1)",
        ));
    }
    max_chars(64, name, 25)?;
    let city = object.child(2).map(str::to_owned);
    if let Some(city) = &city {
        max_chars(64, city, 15)?;
    }
    Ok(LanguageTemplate {
        language: language.to_owned(),
        name: name.to_owned(),
        city,
    })
}

fn check_account(account: &MerchantAccount) -> Result<(), QrError> {
    if !(2..=51).contains(&account.id) {
        return Err(invalid(account.id, "merchant account IDs run 02-51"));
    }
    if account.id <= 25 {
        return if account.value.is_empty() {
            Err(invalid(account.id, "empty merchant account"))
        } else {
            Ok(())
        };
    }
    let gui = account.gui().ok_or_else(|| {
        invalid(
            account.id,
            "template without a globally unique identifier (sub-ID 00)",
        )
    })?;
    max_chars(account.id, gui, MAX_GUI_CHARS)
}

fn require_digits(id: u8, name: &'static str, value: &str, len: usize) -> Result<(), QrError> {
    if value.is_empty() {
        return Err(QrError::Missing { id, name });
    }
    if value.len() != len || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(id, &format!("{name} is {len} digits")));
    }
    Ok(())
}

fn require_text(id: u8, name: &'static str, value: &str, max: usize) -> Result<(), QrError> {
    if value.is_empty() {
        return Err(QrError::Missing { id, name });
    }
    max_chars(id, value, max)
}

fn max_chars(id: u8, value: &str, max: usize) -> Result<(), QrError> {
    let len = value.chars().count();
    if len > max {
        return Err(invalid(
            id,
            &format!("{len} characters, at most {max} allowed"),
        ));
    }
    Ok(())
}

/// Amounts are up to 13 characters: digits with at most one decimal point ("23.72").
fn check_amount(id: u8, amount: &str) -> Result<(), QrError> {
    let digits_ok = amount.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let points = amount.bytes().filter(|&b| b == b'.').count();
    let has_digit = amount.bytes().any(|b| b.is_ascii_digit());
    if amount.len() > 13 || !digits_ok || points > 1 || !has_digit {
        return Err(invalid(
            id,
            "amount is up to 13 characters of digits with an optional '.'",
        ));
    }
    Ok(())
}
