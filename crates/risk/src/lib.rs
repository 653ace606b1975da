//! The acquirer's risk engine (风控): rules over what the host has seen lately, evaluated for
//! every authorization before the issuer decides.
//!
//! The engine is pure: it keeps its windows in memory, does no I/O, and the caller passes the
//! clock. Rules come from TOML ([`Config::from_toml`], documented in `docs/risk.md`); each has an
//! action (approve, review, alert, or decline with a response code) and a score. The
//! [`Assessment`] says what to do and which rules fired, and why, for the journal.
//!
//! ```
//! use risk::{Authorization, Engine, Entry, Kind, Outcome, Verdict};
//! use money::Currency;
//!
//! let rules = r#"
//!     [[rule]]
//!     name = "card-velocity"
//!     kind = "velocity"
//!     scope = "card"
//!     window_secs = 600
//!     max_count = 2
//!     action = "decline"
//!     response_code = "65"
//!     score = 50
//! "#;
//! let engine = Engine::new(risk::Config::from_toml(rules).unwrap());
//! let cny = Currency::parse("CNY").unwrap();
//! let sale = Authorization {
//!     kind: Kind::Sale, card: "card-1", terminal: "10000001", merchant: "898310058120001",
//!     amount_minor: 1234, currency: cny, card_currency: cny, mcc: 5411,
//!     entry: Entry::Chip, chip_card: true,
//! };
//! let now_ms = 1_800_000_000_000;
//! assert_eq!(engine.evaluate(&sale, now_ms).verdict, Verdict::Approve);
//! assert_eq!(engine.evaluate(&sale, now_ms + 1).verdict, Verdict::Approve);
//! let third = engine.evaluate(&sale, now_ms + 2);
//! assert_eq!(third.decline_code().map(|code| code.as_str().to_owned()), Some("65".to_owned()));
//! assert_eq!(third.fired[0].rule, "card-velocity");
//! ```

mod config;
mod engine;
mod freezes;
pub mod insider;
mod state;

pub use config::{
    Check, Config, ConfigError, MAX_EVENTS_PER_KEY, MAX_RULES, MAX_WINDOW_SECS, Rule, Scope,
};
pub use engine::{Assessment, Engine, Fired, Verdict};
pub use freezes::{FreezeScope, Freezes};
pub use state::{MAX_CARDS, MAX_MERCHANTS, MAX_TERMINALS};

use money::Currency;

/// The rules file of the demo world, `easypos up`'s default (see `docs/risk.md`).
pub const DEMO_RULES: &str = include_str!("../demo-risk.toml");

/// A two-character ISO 8583 response code (field 39), kept as bytes so that this crate needs
/// no codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResponseCode2([u8; 2]);

impl ResponseCode2 {
    pub fn parse(text: &str) -> Option<ResponseCode2> {
        match text.as_bytes() {
            [a, b] if a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric() => {
                Some(ResponseCode2([*a, *b]))
            }
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("96")
    }

    pub fn is_approved(&self) -> bool {
        &self.0 == b"00"
    }
}

/// What a rule does when it fires, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing but the record that it fired (a rule on trial).
    Approve,
    /// Approved, and the merchant and operations are alerted.
    Alert,
    /// Approved, and the transaction is put up for an analyst's review.
    Review,
    /// Refused with this response code before the issuer sees it.
    Decline(ResponseCode2),
}

impl Action {
    fn strength(self) -> u8 {
        match self {
            Action::Approve => 0,
            Action::Alert => 1,
            Action::Review => 2,
            Action::Decline(_) => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Alert => "alert",
            Action::Review => "review",
            Action::Decline(_) => "decline",
        }
    }
}

/// What kind of authorization is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sale,
    PreAuthorization,
    Refund,
    /// A sale cancelled in the open batch (消费撤销).
    Void,
    BalanceInquiry,
}

impl Kind {
    /// Sales, pre-authorizations and balance inquiries: what the purchase rules look at and
    /// the windows remember. Refunds and voids give money back.
    pub fn is_purchase(self) -> bool {
        matches!(
            self,
            Kind::Sale | Kind::PreAuthorization | Kind::BalanceInquiry
        )
    }
}

/// How the card was read (ISO 8583 field 22).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Chip,
    Contactless,
    Magstripe,
    /// The terminal says it fell back to the stripe after the chip failed (entry mode 80).
    Fallback,
    Manual,
}

/// One authorization as the rules see it. Cards are named by the directory's card id, never by
/// their number.
#[derive(Clone, Copy, Debug)]
pub struct Authorization<'a> {
    pub kind: Kind,
    pub card: &'a str,
    pub terminal: &'a str,
    pub merchant: &'a str,
    pub amount_minor: i64,
    pub currency: Currency,
    pub card_currency: Currency,
    /// The merchant's category code (ISO 18245).
    pub mcc: u16,
    pub entry: Entry,
    /// Whether the card has a chip (service code 2xx or 6xx, or a chip read).
    pub chip_card: bool,
}

/// What happened to an authorization after the rules: the engine learns the card's history,
/// declines and PIN failures from it.
#[derive(Clone, Copy, Debug)]
pub struct Outcome<'a> {
    pub kind: Kind,
    pub card: &'a str,
    pub terminal: &'a str,
    pub merchant: &'a str,
    pub amount_minor: i64,
    pub approved: bool,
    pub wrong_pin: bool,
}
