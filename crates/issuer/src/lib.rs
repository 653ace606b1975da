//! The card issuer's authorization decision (R1, R4, R11): given what the issuer keeps about a
//! card ([`CardProfile`]) and what the terminal presented ([`AuthorizationRequest`]), decide —
//! checking status, expiry, service code, CVV or chip cryptogram (with a replay check on the
//! ATC), PIN with a try counter, and per-card daily limits — and say what to remember
//! ([`CardUpdate`]). Keys never leave the [`hsm::Hsm`]; PINs and PIN blocks are only ever
//! handed to it.
//!
//! The decision is pure apart from the HSM: no clock (the business date is passed in), no
//! database. Funds are decided by the ledger afterwards — a hold or a posting that the ledger
//! refuses becomes response 51 through [`response_for_ledger_error`] — and the ARPC for the
//! card is produced last with [`arpc`], once the final response code is known.
//!
//! ```no_run
//! # fn demo(hsm: &dyn hsm::Hsm, profile: &issuer::CardProfile, keys: &issuer::CardKeys, request: &issuer::AuthorizationRequest<'_>) {
//! let decision = issuer::decide(hsm, profile, keys, request);
//! if decision.response.is_approved() {
//!     // move the funds in the ledger; a refusal there becomes 51
//! }
//! # }
//! ```
#![deny(clippy::float_arithmetic)]

mod decide;
mod types;

pub use decide::{arpc, decide, is_chip_card, response_for_ledger_error};
pub use types::*;
