//! The acquirer host's side of terminal messages, following China POS (UnionPay-style)
//! conventions in the `cup-bcd` profile. This slice is pure: it tells what a message is
//! ([`classify`]), checks that it carries what that kind of message must ([`Request::parse`]),
//! and builds the skeleton of the answer ([`response_to`]) — MTI + 10, the TPDU turned round,
//! the header and the fields a terminal expects echoed, and the response code. The decisions
//! (terminal checks, switch, issuer, ledger) are made by the host around it.
//!
//! ```
//! use acquirer::{MessageType, Request};
//! use iso8583::{Message, Mti};
//!
//! let profile = iso8583::Profile::builtin("cup-bcd").unwrap();
//! let mut sale = Message::new(Mti::parse("0200").unwrap());
//! for (field, value) in [(3, "000000"), (4, "1200"), (11, "000042"), (22, "051"), (25, "00"), (41, "10000001"),
//!                        (42, "898310058120001"), (49, "156"), (60, "22000001")] {
//!     sale.set_text(field, value);
//! }
//! sale.set_text(2, "6212340000100008");
//! sale.set_bytes(64, vec![0; 8]);
//! let request = Request::parse(profile, &sale).unwrap();
//! assert_eq!(request.kind, MessageType::Sale);
//! assert_eq!(request.batch, 1);
//! ```

pub mod cards;
pub mod cases;
pub mod chart;
pub mod chip;
mod completion;
pub mod console_refund;
pub mod effects;
mod follow_up;
pub mod freezes;
mod handler;
mod journal;
pub mod keys;
pub mod mac;
mod message;
pub mod parameters;
mod reversal;
mod risk_replay;
mod saf;
mod sale;
pub mod settlement;
pub mod supervisor;
pub mod switch;
mod undo;

pub use handler::{
    HandlerCounters, Role, TERMINAL_RATE_BURST, TERMINAL_RATE_PER_SECOND, TerminalHandler,
    TerminalRecord,
};
pub use message::{MessageType, Reject, Request, classify, response_to};
pub use risk_replay::{REPLAY_PAGE_ROWS, replay_risk};
pub use saf::{ANSWER_WITHIN, REVERSAL_GRACE, STORE_AND_FORWARD_PEER};
