//! Cryptography calculators (issue 3): PIN blocks, DUKPT, CVV, PVV, MACs, EMV, TR-31.

use super::Report;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum CryptoTool {
    /// Check or complete a number with the Luhn (mod 10) check digit.
    Luhn {
        /// Digits to check (with their check digit).
        number: String,
    },
}

pub fn run(tool: CryptoTool) -> anyhow::Result<Report> {
    match tool {
        CryptoTool::Luhn { number } => {
            if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
                anyhow::bail!("NUMBER: must be decimal digits only");
            }
            let valid = luhn_valid(&number);
            Ok(Report::new().field("valid", valid))
        }
    }
}

fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(index, byte)| {
            let digit = u32::from(byte - b'0');
            if index % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum % 10 == 0
}
