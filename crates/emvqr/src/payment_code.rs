//! Consumer-presented payment codes: the numeric one-time code a wallet app shows as a barcode
//! or QR for the merchant to scan. The format is easypos's own (no public standard fixes one):
//!
//! ```text
//! 88 WWWWWWWW SSSS TTTTTT C        21 digits
//! │  │        │    │      └ Luhn check digit over the first 20 digits
//! │  │        │    └ token: 6 digits from the wallet (e.g. an HOTP over the wallet key and the
//! │  │        │      time step); opaque here, verified by the wallet, never by this crate
//! │  │        └ time step (unix seconds / 30) modulo 10 000
//! │  └ wallet id, 8 digits
//! └ prefix: an easypos payment code
//! ```
//!
//! The step field wraps every 10 000 × 30 s ≈ 3.5 days; the reader rebuilds the full step as
//! the latest one not after "now" and rejects codes older than the policy's age (2 minutes by
//! default). Time is always passed in: this crate never reads a clock. Because the step field
//! wraps, the same digits come back after 3.5 days and read as a fresh step; replay protection
//! is the wallet's job: its token is computed over the *full* step, and it records used codes.

use crate::error::CodeError;

pub const PREFIX: &str = "88";
pub const CODE_DIGITS: usize = 21;
pub const MAX_WALLET_ID: u64 = 99_999_999;
pub const MAX_TOKEN: u64 = 999_999;
const STEP_MODULUS: u64 = 10_000;

/// How long a code lives, and how much clock skew between phone and host is tolerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub step_seconds: u64,
    /// A code is accepted for this many whole steps after its own (4 × 30 s = 2 minutes).
    pub max_age_steps: u64,
    /// A phone clock may run this many steps ahead of the host.
    pub max_skew_steps: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            step_seconds: 30,
            max_age_steps: 4,
            max_skew_steps: 1,
        }
    }
}

/// A decoded, unexpired payment code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentCode {
    pub wallet_id: u64,
    /// The full time step (unix seconds / step_seconds) the code was made in.
    pub time_step: u64,
    pub token: u64,
}

fn luhn_check_digit(digits: &[u8]) -> u8 {
    // Doubling starts from the digit next to the (future) check digit.
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(index, &digit)| {
            let value = u32::from(digit - b'0');
            if index % 2 == 0 {
                let doubled = value * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                value
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

impl PaymentCode {
    /// Makes the code text for `wallet_id` and `token` at `now_unix_seconds`.
    pub fn generate(
        wallet_id: u64,
        token: u64,
        now_unix_seconds: u64,
        policy: Policy,
    ) -> Result<String, CodeError> {
        if wallet_id > MAX_WALLET_ID {
            return Err(CodeError::OutOfRange {
                field: "wallet id",
                value: wallet_id,
                max: MAX_WALLET_ID,
            });
        }
        if token > MAX_TOKEN {
            return Err(CodeError::OutOfRange {
                field: "token",
                value: token,
                max: MAX_TOKEN,
            });
        }
        let step = now_unix_seconds / policy.step_seconds.max(1);
        let body = format!("{PREFIX}{wallet_id:08}{:04}{token:06}", step % STEP_MODULUS);
        let check = luhn_check_digit(body.as_bytes());
        Ok(format!("{body}{check}"))
    }

    /// Reads a scanned code and checks its format, check digit and age at `now_unix_seconds`.
    pub fn parse(code: &str, now_unix_seconds: u64, policy: Policy) -> Result<Self, CodeError> {
        let bytes = code.as_bytes();
        if bytes.len() != CODE_DIGITS {
            return Err(CodeError::Length {
                len: code.chars().count(),
                expected: CODE_DIGITS,
            });
        }
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err(CodeError::NotDigits);
        }
        if !code.starts_with(PREFIX) {
            return Err(CodeError::Prefix {
                found: code[..2].to_owned(),
                expected: PREFIX,
            });
        }
        if luhn_check_digit(&bytes[..CODE_DIGITS - 1]) != bytes[CODE_DIGITS - 1] - b'0' {
            return Err(CodeError::CheckDigit);
        }
        let number = |range: std::ops::Range<usize>| code[range].parse::<u64>().unwrap_or(0);
        let wallet_id = number(2..10);
        let step_low = number(10..14);
        let token = number(14..20);
        let time_step = full_step(
            step_low,
            now_unix_seconds / policy.step_seconds.max(1),
            policy,
        )?;
        Ok(Self {
            wallet_id,
            time_step,
            token,
        })
    }
}

/// Rebuilds the full step from its low 4 digits, allowing `max_skew_steps` into the future.
fn full_step(step_low: u64, now_step: u64, policy: Policy) -> Result<u64, CodeError> {
    let horizon = now_step + policy.max_skew_steps;
    let candidate = horizon - (horizon % STEP_MODULUS) + step_low;
    let step = if candidate > horizon {
        candidate.saturating_sub(STEP_MODULUS)
    } else {
        candidate
    };
    if step > now_step {
        // Within the allowed skew: accept as "now".
        return Ok(step);
    }
    let age_steps = now_step - step;
    if age_steps > policy.max_age_steps {
        return Err(CodeError::Expired {
            age_steps,
            max_age_steps: policy.max_age_steps,
        });
    }
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_764_000_000; // 2025-11-24T16:00:00Z

    #[test]
    fn generated_codes_parse_back() {
        let code = PaymentCode::generate(12_345_678, 654_321, NOW, Policy::default()).unwrap();
        assert_eq!(code.len(), CODE_DIGITS);
        assert_eq!(&code[..10], "8812345678");
        let parsed = PaymentCode::parse(&code, NOW + 45, Policy::default()).unwrap();
        assert_eq!(
            parsed,
            PaymentCode {
                wallet_id: 12_345_678,
                time_step: NOW / 30,
                token: 654_321
            }
        );
    }

    #[test]
    fn luhn_matches_a_known_number() {
        // The textbook Luhn example: 7992739871 has check digit 3.
        assert_eq!(luhn_check_digit(b"7992739871"), 3);
    }

    #[test]
    fn codes_expire_and_future_codes_are_limited() {
        let policy = Policy::default();
        let code = PaymentCode::generate(1, 2, NOW, policy).unwrap();
        assert!(PaymentCode::parse(&code, NOW + 4 * 30, policy).is_ok());
        assert!(matches!(
            PaymentCode::parse(&code, NOW + 6 * 30, policy),
            Err(CodeError::Expired { .. })
        ));
        assert!(
            PaymentCode::parse(&code, NOW - 30, policy).is_ok(),
            "one step of phone clock skew"
        );
        assert!(matches!(
            PaymentCode::parse(&code, NOW - 90, policy),
            Err(CodeError::Expired { .. })
        ));
        // After the step field wraps (≈3.5 days) the same digits read as a new step: the format
        // cannot tell them apart, so the wallet's token (bound to the full step) must fail.
        let wrapped = PaymentCode::parse(&code, NOW + 10_000 * 30, policy).unwrap();
        assert_eq!(wrapped.time_step, NOW / 30 + 10_000);
    }

    #[test]
    fn rejects_typos_and_foreign_codes() {
        let code = PaymentCode::generate(1, 2, NOW, Policy::default()).unwrap();
        let mut typo = code.clone().into_bytes();
        typo[5] = if typo[5] == b'9' { b'0' } else { typo[5] + 1 };
        let typo = String::from_utf8(typo).unwrap();
        assert_eq!(
            PaymentCode::parse(&typo, NOW, Policy::default()),
            Err(CodeError::CheckDigit)
        );
        assert!(matches!(
            PaymentCode::parse("28", NOW, Policy::default()),
            Err(CodeError::Length { .. })
        ));
        assert!(matches!(
            PaymentCode::parse(&code.replacen("88", "28", 1), NOW, Policy::default()),
            Err(CodeError::Prefix { .. })
        ));
        assert_eq!(
            PaymentCode::parse("88000000010000000002x", NOW, Policy::default()),
            Err(CodeError::NotDigits)
        );
        assert!(PaymentCode::generate(100_000_000, 0, NOW, Policy::default()).is_err());
    }
}
