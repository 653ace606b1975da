//! The receipt statement and its QR payload (pure: no I/O, no clock).
//!
//! A payload is one line of printable ASCII, fields separated by `|`:
//!
//! ```text
//! EPR1|000000012345|10000001|898310058120001|621234******0003|1234|CNY|1764000000|654321|0a1b2c3d|<signature>
//! ```
//!
//! `EPR1` (easypos receipt, version 1), RRN (12 letters or digits), terminal id (8), merchant id
//! (15), the masked card number (first 6, stars, last 4; 13 to 19 characters), the amount in
//! minor units (no leading zero), the ISO 4217 alphabetic currency, the acquirer's time of the
//! approval in Unix seconds, the auth code (6), the signing key's id (8 lowercase hex digits),
//! and the Ed25519 signature (RFC 8032) in unpadded base64url (86 characters) of every byte
//! before the last `|`. Every field has one spelling, so a payload that parses is re-encoded
//! byte for byte, and any change either fails to parse or fails the signature.

use base64::Engine;

/// The payload's first field: easypos receipt, version 1.
pub const PAYLOAD_PREFIX: &str = "EPR1";
/// Longest payload accepted: every field at its longest (19-digit card, 18-digit amount,
/// 11-digit time). A QR code of this size is version 10 at error correction M.
pub const MAX_PAYLOAD_CHARS: usize = 4 + 12 + 8 + 15 + 19 + 18 + 3 + 11 + 6 + 8 + 86 + 10;

const SIGNATURE_CHARS: usize = 86;

/// What the acquirer signs about an approved sale. The card is masked before it gets here.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Statement {
    /// Retrieval reference number (field 37).
    pub rrn: String,
    /// Field 41.
    pub terminal_id: String,
    /// Field 42.
    pub merchant_id: String,
    /// First 6 and last 4 digits, stars between.
    pub card: String,
    pub amount_minor: i64,
    /// ISO 4217 alphabetic code.
    pub currency: String,
    /// When the acquirer approved it, Unix seconds.
    pub time: i64,
    /// Field 38.
    pub auth_code: String,
    /// The signing key's id.
    pub key_id: String,
}

/// Why a payload is not a well-formed statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub &'static str);

fn alphanumeric(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|byte| byte.is_ascii_alphanumeric())
}

fn canonical_number(text: &str, max_digits: usize) -> Option<i64> {
    let digits_only = !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    let no_leading_zero = text == "0" || !text.starts_with('0');
    if digits_only && no_leading_zero && text.len() <= max_digits {
        text.parse().ok()
    } else {
        None
    }
}

fn masked_card(text: &str) -> bool {
    let bytes = text.as_bytes();
    (13..=19).contains(&bytes.len())
        && bytes[..6].iter().all(u8::is_ascii_digit)
        && bytes[bytes.len() - 4..].iter().all(u8::is_ascii_digit)
        && bytes[6..bytes.len() - 4].iter().all(|byte| *byte == b'*')
}

impl Statement {
    /// Checks every field's form, naming the first that is wrong.
    pub fn check(&self) -> Result<(), Malformed> {
        if !alphanumeric(&self.rrn, 12) {
            return Err(Malformed("the RRN must be 12 letters or digits"));
        }
        if !alphanumeric(&self.terminal_id, 8) {
            return Err(Malformed("the terminal id must be 8 letters or digits"));
        }
        if !alphanumeric(&self.merchant_id, 15) {
            return Err(Malformed("the merchant id must be 15 letters or digits"));
        }
        if !masked_card(&self.card) {
            return Err(Malformed(
                "the card must be masked: first 6 digits, stars, last 4 digits",
            ));
        }
        if self.amount_minor <= 0 {
            return Err(Malformed("the amount must be positive"));
        }
        if money::Currency::from_alpha(&self.currency).is_err() {
            return Err(Malformed(
                "the currency is not an ISO 4217 code easypos knows",
            ));
        }
        if !(0..100_000_000_000).contains(&self.time) {
            return Err(Malformed("the time must be Unix seconds"));
        }
        if !alphanumeric(&self.auth_code, 6) {
            return Err(Malformed("the auth code must be 6 letters or digits"));
        }
        if self.key_id.len() != 8
            || !self
                .key_id
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
        {
            return Err(Malformed("the key id must be 8 lowercase hex digits"));
        }
        Ok(())
    }

    /// The bytes the acquirer signs: the payload up to its last `|`.
    pub fn signed_text(&self) -> String {
        format!(
            "{PAYLOAD_PREFIX}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
            self.rrn,
            self.terminal_id,
            self.merchant_id,
            self.card,
            self.amount_minor,
            self.currency,
            self.time,
            self.auth_code,
            self.key_id
        )
    }

    /// The QR payload: the signed text, `|`, the signature in unpadded base64url.
    pub fn payload(&self, signature: &[u8; 64]) -> String {
        format!(
            "{}|{}",
            self.signed_text(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// The amount with its currency, e.g. `CNY 12.34`.
    pub fn amount_text(&self) -> String {
        money::Currency::from_alpha(&self.currency)
            .map(|currency| {
                format!(
                    "{} {}",
                    self.currency,
                    money::Amount::new(self.amount_minor, currency).format_major()
                )
            })
            .unwrap_or_else(|_| format!("{} {}", self.currency, self.amount_minor))
    }
}

/// A payload taken apart: the statement, the exact bytes signed, and the signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub statement: Statement,
    pub signed_text: String,
    pub signature: [u8; 64],
}

/// Takes a payload apart (surrounding whitespace ignored), refusing anything that is not
/// exactly how [`Statement::payload`] writes it.
pub fn parse(payload: &str) -> Result<Parsed, Malformed> {
    let payload = payload.trim();
    if payload.len() > MAX_PAYLOAD_CHARS {
        return Err(Malformed("the payload is too long to be a receipt"));
    }
    let fields: Vec<&str> = payload.split('|').collect();
    let [
        prefix,
        rrn,
        terminal_id,
        merchant_id,
        card,
        amount,
        currency,
        time,
        auth_code,
        key_id,
        signature,
    ] = fields.as_slice()
    else {
        return Err(Malformed(
            "a receipt payload has 11 fields separated by |, starting with EPR1",
        ));
    };
    if *prefix != PAYLOAD_PREFIX {
        return Err(Malformed(
            "not an easypos receipt (it must start with EPR1|)",
        ));
    }
    let statement = Statement {
        rrn: (*rrn).to_owned(),
        terminal_id: (*terminal_id).to_owned(),
        merchant_id: (*merchant_id).to_owned(),
        card: (*card).to_owned(),
        amount_minor: canonical_number(amount, 18).ok_or(Malformed(
            "the amount must be minor units without leading zeros",
        ))?,
        currency: (*currency).to_owned(),
        time: canonical_number(time, 11).ok_or(Malformed(
            "the time must be Unix seconds without leading zeros",
        ))?,
        auth_code: (*auth_code).to_owned(),
        key_id: (*key_id).to_owned(),
    };
    statement.check()?;
    let malformed_signature = Malformed("the signature must be 86 base64url characters");
    if signature.len() != SIGNATURE_CHARS {
        return Err(malformed_signature);
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| malformed_signature)?;
    let signature: [u8; 64] = bytes.try_into().map_err(|_| malformed_signature)?;
    let signed_text = statement.signed_text();
    // One spelling per payload: what parsed must write back the same.
    if statement.payload(&signature) != payload {
        return Err(Malformed("the payload is not in its canonical form"));
    }
    Ok(Parsed {
        statement,
        signed_text,
        signature,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub(crate) fn sample() -> Statement {
        Statement {
            rrn: "000000012345".into(),
            terminal_id: "10000001".into(),
            merchant_id: "898310058120001".into(),
            card: "621234******0003".into(),
            amount_minor: 1234,
            currency: "CNY".into(),
            time: 1_764_000_000,
            auth_code: "654321".into(),
            key_id: "0a1b2c3d".into(),
        }
    }

    #[test]
    fn a_payload_round_trips_and_is_documented_as_written() {
        let payload = sample().payload(&[7; 64]);
        assert_eq!(
            payload,
            "EPR1|000000012345|10000001|898310058120001|621234******0003|1234|CNY|1764000000|654321|0a1b2c3d|BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBw"
        );
        assert!(payload.len() <= MAX_PAYLOAD_CHARS);
        let parsed = parse(&format!("  {payload}\n")).unwrap();
        assert_eq!(parsed.statement, sample());
        assert_eq!(parsed.signature, [7; 64]);
        assert_eq!(parsed.signed_text, payload[..payload.rfind('|').unwrap()]);
    }

    #[test]
    fn malformed_payloads_are_refused_with_the_field_at_fault() {
        let good = sample().payload(&[7; 64]);
        let cases = [
            (good.replacen("EPR1", "EPR2", 1), "must start with EPR1"),
            (good.replacen("|1234|", "|01234|", 1), "leading zeros"),
            (good.replacen("|1234|", "|0|", 1), "positive"),
            (
                good.replacen("621234******0003", "6212345678900003", 1),
                "masked",
            ),
            (good.replacen("|CNY|", "|XXX|", 1), "ISO 4217"),
            (good.replacen("0a1b2c3d", "0A1B2C3D", 1), "key id"),
            (good.replacen("|10000001|", "|1000001|", 1), "terminal id"),
            (format!("{good}|extra"), "11 fields"),
            (good[..good.len() - 1].to_owned(), "86 base64url"),
            (format!("{}!", &good[..good.len() - 1]), "86 base64url"),
            // The last character carries 4 unused bits: another spelling of the same bytes.
            (format!("{}x", &good[..good.len() - 1]), "86 base64url"),
            ("x".repeat(MAX_PAYLOAD_CHARS + 1), "too long"),
        ];
        for (payload, why) in cases {
            let error = parse(&payload).unwrap_err();
            assert!(error.0.contains(why), "{payload}: {error} (wanted {why})");
        }
    }
}
