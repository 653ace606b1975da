//! The POS terminal's side of the easypos terminal protocol (`cup-bcd`; docs/protocol.md,
//! "Terminal messages"): what the terminal application (issue 6), the load generator (`bench`)
//! and the tests send, built one way.
//!
//! - [`Terminal`] frames messages as one terminal: TPDU, header, fields 41 and 42. It builds
//!   the sign-on (0800, 60.3 = 003), sales (0200) and reversals (0400 / 0401), and checks the
//!   answers: MTI, echoed fields, and the MAC of every answer that carries one.
//! - [`WorkingKeys`] are the PIN and MAC keys of a sign-on, taken from field 62 of the 0810
//!   under the terminal master key ([`WorkingKeys::from_sign_on`]). They make the ISO 9564
//!   format 0 PIN block of field 52 and the X9.19 MAC of field 64, over the bytes the
//!   acquirer's convention covers (`acquirer::mac`).
//! - [`ChipCard`] plays the card: its ICC master key is derived from the issuer master key, its
//!   ATC goes up by one per cryptogram, and it answers a [`ChipTransaction`] with field 55 and
//!   an ARQC (EMV CVN 18), then checks the issuer's ARPC (tag 91) in the answer.
//!
//! - [`transactions`] builds every card message of the menu (sale, void, refund,
//!   pre-authorization, completion, balance inquiry; chip, contactless, stripe, fallback) and
//!   the batch settlement.
//!
//! These protocol pieces do no I/O and read no clock: the caller sends the frames, and passes
//! the date and the unpredictable number. Card numbers, PINs and keys stay in `paycrypto`'s
//! masking types, and errors never carry them.
//!
//! The terminal application (docs/terminal.md) is built on them, with files and a socket:
//! - [`cardfile`]: the card simulator's cards as JSON files, ATC persisted atomically;
//! - [`config`]: `terminal.toml`; [`state`]: the state directory (trace number, batch, sign-on
//!   with its working keys still under the master key, the batch, a pending reversal, the last
//!   receipt); [`files`]: atomic, private writes;
//! - [`link`]: the blocking TCP line to the host; [`pos`]: the engine that runs each
//!   operation (store-and-forward of reversals first, then sign-on, then the message);
//! - [`receipt`]: merchant and cardholder copies as text (English, Chinese), ESC/POS and PDF;
//! - `tui` (feature `tui`): the countertop screen on ratatui.
//!
//! ```
//! use money::Currency;
//! use paycrypto::{Pan, Pin, TdesKey};
//! use terminal::{ChipCard, ChipTransaction, Sale, Terminal, TransactionDate, WorkingKeys};
//!
//! # fn main() -> Result<(), terminal::TerminalError> {
//! let terminal = Terminal::new("10000001", "898310058120001")?;
//! let sign_on = terminal.pack(&terminal.sign_on(iso8583::Stan::new(1).unwrap(), "001")?)?;
//! // … sent to the host; field 62 of its 0810 gives the working keys:
//! # let keys = WorkingKeys::new(TdesKey::new(&[0x11; 16])?, TdesKey::new(&[0x22; 16])?)?;
//! let imk = TdesKey::new(&[0x33; 16])?;
//! let mut card = ChipCard::new(&imk, Pan::new("6212345000000001")?, 1)?;
//! let read = card.generate_arqc(&ChipTransaction {
//!     amount_minor: 1_200,
//!     currency: Currency::CNY,
//!     country: 156,
//!     date: TransactionDate { year: 2026, month: 11, day: 25 },
//!     unpredictable_number: [0x38, 0x04, 0x82, 0x3E],
//! })?;
//! let pin_block = keys.pin_block(&Pin::new("123456")?, card.pan())?;
//! let mut sale = terminal.sale(&Sale {
//!     stan: iso8583::Stan::new(2).unwrap(),
//!     batch: 1,
//!     amount_minor: 1_200,
//!     currency: Currency::CNY,
//!     pan: card.pan(),
//!     field55: Some(&read.field55),
//!     pin_block: Some(&pin_block),
//! })?;
//! let frame = terminal.pack_with_mac(&mut sale, &keys)?;
//! assert_eq!(card.atc(), 1);
//! # let _ = (sign_on, frame);
//! # Ok(()) }
//! ```

mod card;
pub mod cardfile;
pub mod config;
pub mod dukpt;
pub mod files;
mod keys;
pub mod link;
mod messages;
pub mod pos;
pub mod receipt;
pub mod state;
pub mod transactions;
#[cfg(feature = "tui")]
pub mod tui;

pub use card::{ArpcCheck, ChipCard, ChipRead, ChipTransaction, TransactionDate};
pub use keys::{SignedOn, WorkingKeys};
pub use messages::{Answer, ReversalReason, Sale, Terminal};

/// Why a message could not be built, or why an answer is not what the terminal expects. No
/// variant carries a card number, PIN or key.
#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("ISO 8583: {0}")]
    Codec(#[from] iso8583::Error),
    #[error("cryptography: {0}")]
    Crypto(#[from] paycrypto::Error),
    #[error("EMV TLV: {0}")]
    Tlv(#[from] emv::tlv::TlvError),
    #[error("{0}")]
    Invalid(&'static str),
    #[error("the answer {0}")]
    Answer(String),
    #[error("the card's ATC has reached its last value; the card must be replaced")]
    AtcExhausted,
}
