//! The second factor of operators and merchant administrators: TOTP (RFC 6238 over RFC 4226
//! HOTP: HMAC-SHA-1, 6 digits, 30-second steps), which every authenticator app speaks.
//!
//! The secret is never stored. Each user's is derived inside the HSM, as an AES-CMAC under the
//! platform's TOTP key (`platform/totp`, a TR-31 token like every key) of the user id and an
//! enrolment nonce that the database keeps; a new enrolment is a new nonce. The secret leaves
//! the HSM only to be shown once, at enrolment (as a QR code and as text), and to check codes.
//!
//! ```
//! // RFC 6238 appendix B: SHA-1 secret "12345678901234567890" at T = 59 s gives 94287082.
//! assert_eq!(console::mfa::totp(b"12345678901234567890", 59), 287_082);
//! ```

use hmac::{Hmac, Mac};
use hsm::{Hsm, KeyToken, MacAlgorithm};
use sha1::Sha1;
use std::sync::Arc;
use store::Store;

/// Seconds per TOTP time step (RFC 6238's default, and what authenticator apps assume).
pub const STEP_SECONDS: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Steps on either side of now whose codes are accepted, for a phone clock that is off.
pub const WINDOW_STEPS: i64 = 1;
/// The name of the platform's TOTP key among the stored keys.
pub const TOTP_KEY_NAME: &str = "platform/totp";
/// Shown as the account's issuer in authenticator apps.
pub const ISSUER: &str = "easypos";

#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    #[error("HSM: {0}")]
    Hsm(#[from] hsm::HsmError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("the QR code could not be drawn")]
    Qr,
}

/// RFC 4226 HOTP value of `counter` under `secret` (dynamic truncation, `DIGITS` digits).
pub fn hotp(secret: &[u8], counter: u64) -> u32 {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return 0;
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    binary % 10_u32.pow(DIGITS)
}

/// The time step of unix second `seconds`.
pub fn step_of(seconds: i64) -> i64 {
    seconds.div_euclid(STEP_SECONDS)
}

/// RFC 6238 TOTP code at unix second `seconds`.
pub fn totp(secret: &[u8], seconds: i64) -> u32 {
    hotp(secret, u64::try_from(step_of(seconds)).unwrap_or(0))
}

/// RFC 4648 base32 without padding, as authenticator apps take secrets.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The `otpauth://` URI an authenticator app reads from the QR code.
pub fn otpauth_uri(username: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{ISSUER}:{username}?secret={}&issuer={ISSUER}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        base32(secret)
    )
}

/// `text` as an inline SVG QR code (no XML declaration, fills as attributes: the CSP allows
/// no inline styles).
pub fn qr_svg(text: &str) -> Result<String, MfaError> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|_| MfaError::Qr)?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(svg
        .find("<svg")
        .map_or(svg.clone(), |start| svg[start..].to_owned()))
}

/// The platform's TOTP key and the HSM that holds it.
#[derive(Clone)]
pub struct Mfa {
    hsm: Arc<dyn Hsm>,
    key: KeyToken,
}

impl std::fmt::Debug for Mfa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mfa").finish_non_exhaustive()
    }
}

impl Mfa {
    /// The stored TOTP key, generated inside the HSM and stored (as a token) on first use.
    pub async fn ensure(store: &Store, hsm: Arc<dyn Hsm>) -> Result<Mfa, MfaError> {
        let key = api::webhooks::ensure_cmac_key(store, hsm.as_ref(), TOTP_KEY_NAME)
            .await
            .map_err(|error| match error {
                api::webhooks::WebhookError::Hsm(error) => MfaError::Hsm(error),
                api::webhooks::WebhookError::Store(error) => MfaError::Store(error),
            })?;
        Ok(Mfa { hsm, key })
    }

    /// A user's TOTP secret for enrolment `nonce` (16 bytes, derived in the HSM).
    pub fn secret(&self, user_id: &str, nonce: &str) -> Result<Vec<u8>, MfaError> {
        let mut data = b"easypos totp v1\0".to_vec();
        data.extend_from_slice(user_id.as_bytes());
        data.push(0);
        data.extend_from_slice(nonce.as_bytes());
        Ok(self
            .hsm
            .generate_mac(&self.key, MacAlgorithm::AesCmac, &data)?)
    }

    /// The time step within [`WINDOW_STEPS`] of `now` whose code is `code`, if any.
    pub fn matching_step(
        &self,
        user_id: &str,
        nonce: &str,
        code: &str,
        now: i64,
    ) -> Result<Option<i64>, MfaError> {
        let code = code.trim();
        if code.len() != DIGITS as usize || !code.bytes().all(|byte| byte.is_ascii_digit()) {
            return Ok(None);
        }
        let Ok(code) = code.parse::<u32>() else {
            return Ok(None);
        };
        let secret = self.secret(user_id, nonce)?;
        let now_step = step_of(now);
        Ok(
            (now_step - WINDOW_STEPS..=now_step + WINDOW_STEPS).find(|step| {
                u64::try_from(*step).is_ok_and(|counter| {
                    use subtle::ConstantTimeEq;
                    bool::from(hotp(&secret, counter).ct_eq(&code))
                })
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_and_4226_vectors() {
        // RFC 4226 appendix D: HOTP values of counters 0 … 9 for "12345678901234567890".
        let secret = b"12345678901234567890";
        let expected = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (counter, value) in expected.iter().enumerate() {
            assert_eq!(hotp(secret, counter as u64), *value, "counter {counter}");
        }
        // RFC 6238 appendix B (SHA-1), last six digits of the eight-digit values.
        for (seconds, value) in [
            (59, 287_082),
            (1_111_111_109, 81_804),
            (1_234_567_890, 5_924),
            (2_000_000_000, 279_037),
        ] {
            assert_eq!(totp(secret, seconds), value, "T = {seconds}");
        }
    }

    #[test]
    fn base32_matches_rfc_4648() {
        for (input, output) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()), output);
        }
    }

    #[test]
    fn the_qr_code_is_inline_svg() {
        let svg = qr_svg(&otpauth_uri("operator", b"0123456789abcdef")).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(!svg.contains("style="));
    }
}
