//! EMVCo merchant-presented QR payloads (parse, check, build with CRC-16/CCITT-FALSE) and
//! easypos consumer-presented payment codes.
//!
//! ```
//! use emvqr::{MerchantQr, mpm::additional};
//!
//! // The EMVCo MPM specification's sample payload (CRC A13A; STANDARDS.md §7 [42]).
//! let sample = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678\
//! 520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A";
//! let qr = MerchantQr::parse(sample).unwrap();
//! assert_eq!(qr.name, "BEST TRANSPORT");
//! assert_eq!(qr.language.as_ref().unwrap().name, "最佳运输"); // lengths count characters
//! assert_eq!(qr.amount.as_deref(), Some("23.72"));
//! assert_eq!(qr.additional(additional::TERMINAL_LABEL), Some("A6008667"));
//! // Building gives a payload that parses back to the same content.
//! assert_eq!(MerchantQr::parse(&qr.encode().unwrap()).unwrap(), qr);
//! ```
//!
//! Limits are named constants ([`mpm::MAX_PAYLOAD_CHARS`], [`mpm::MAX_VALUE_CHARS`]).

pub mod crc;
pub mod error;
pub mod mpm;
pub mod payment_code;

pub use crc::crc16_ccitt_false;
pub use error::{CodeError, QrError};
pub use mpm::{DataObject, Initiation, MerchantAccount, MerchantQr, verify_crc};
pub use payment_code::{PaymentCode, Policy};
