//! What the issuer keeps about a card, what a terminal presents, and what the issuer decides.

use hsm::{KeyToken, PinSource};
use iso8583::ResponseCode;
use money::{Amount, Currency};
use paycrypto::emv::CryptogramVersion;
use paycrypto::{Pan, PinBlock};

/// Consecutive wrong PINs after which the card's PIN is locked (response 75) until the issuer
/// resets it. Three is what banks in China and most of the world use.
pub const MAX_PIN_TRIES: u8 = 3;

/// The card's standing at its issuer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CardStatus {
    Active,
    /// Frozen by the cardholder (R14: one click, effective on the next authorization).
    Frozen,
    /// Blocked by the issuer (fraud case, collections).
    Blocked,
    Lost,
    Stolen,
}

/// A month as cards carry it (YYMM in track 2 and field 14), years 2000–2099.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    pub year: u16,
    pub month: u8,
}

impl YearMonth {
    /// Parses `YYMM`.
    pub fn parse_yymm(text: &str) -> Option<YearMonth> {
        if text.len() != 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let year = 2000 + text[..2].parse::<u16>().ok()?;
        let month = text[2..].parse::<u8>().ok()?;
        (1..=12)
            .contains(&month)
            .then_some(YearMonth { year, month })
    }

    pub fn yymm(self) -> String {
        format!("{:02}{:02}", self.year % 100, self.month)
    }
}

/// The business date of the decision (the acquirer's time zone), for expiry and daily limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BusinessDate {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl BusinessDate {
    pub fn year_month(self) -> YearMonth {
        YearMonth {
            year: self.year,
            month: self.month,
        }
    }
}

/// How the issuer checks the cardholder's PIN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinReference {
    /// Visa PIN verification value with its key index.
    VisaPvv { pvki: u8, pvv: String },
    /// IBM 3624 offset over the PAN's validation data.
    Ibm3624 {
        offset: String,
        validation_data: String,
    },
}

/// The issuer's keys for a card product, as tokens under the HSM's master key.
#[derive(Clone, Debug)]
pub struct CardKeys {
    /// Card verification key (C0), for CVV / iCVV.
    pub cvk: KeyToken,
    /// PIN verification key (V1 for IBM 3624, V2 for Visa PVV).
    pub pvk: KeyToken,
    /// Issuer master key for application cryptograms (E0).
    pub imk_ac: KeyToken,
}

/// What the issuer keeps about one card for authorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardProfile {
    pub status: CardStatus,
    pub expiry: YearMonth,
    /// The three-digit service code encoded on the stripe ("201": chip card, international).
    pub service_code: String,
    pub currency: Currency,
    pub pin: Option<PinReference>,
    /// Consecutive wrong PINs so far.
    pub pin_failures: u8,
    /// The highest application transaction counter seen with a valid cryptogram.
    pub last_atc: Option<u16>,
    pub cryptogram_version: CryptogramVersion,
    /// Most the card may spend in one business day; `None` means no daily limit.
    pub daily_limit: Option<Amount>,
    /// Spent on `spent_on` (a new day starts from zero).
    pub spent: Amount,
    pub spent_on: Option<BusinessDate>,
}

/// What the terminal asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransactionKind {
    Purchase,
    PreAuthorization,
    BalanceInquiry,
}

/// The chip's authorization request cryptogram and the data it covers.
#[derive(Clone, Copy, Debug)]
pub struct ChipData<'a> {
    /// PAN sequence number (5F34).
    pub psn: u8,
    /// Application transaction counter (9F36).
    pub atc: u16,
    /// Unpredictable number (9F37).
    pub unpredictable_number: [u8; 4],
    /// The CDOL1 data the card MACed, in order.
    pub data: &'a [u8],
    /// The ARQC (9F26).
    pub arqc: [u8; 8],
}

/// How the card was read.
#[derive(Clone, Copy, Debug)]
pub enum Presentation<'a> {
    /// Inserted (contact chip, entry mode 05).
    Chip(ChipData<'a>),
    /// Tapped (contactless chip, entry mode 07).
    Contactless(ChipData<'a>),
    /// Swiped: track 2 expiry, service code and CVV. `fallback` is set when the terminal tried
    /// the chip first and failed (entry mode 80).
    Magstripe {
        expiry: YearMonth,
        service_code: &'a str,
        cvv: &'a str,
        fallback: bool,
    },
}

/// An encrypted PIN as the issuer receives it (after the switch translated it to the issuer's
/// zone key, or straight from a DUKPT terminal).
#[derive(Clone, Copy, Debug)]
pub struct PinData<'a> {
    pub block: &'a PinBlock,
    pub source: PinSource<'a>,
}

#[derive(Clone, Copy, Debug)]
pub struct AuthorizationRequest<'a> {
    pub kind: TransactionKind,
    /// Zero for a balance inquiry.
    pub amount: Amount,
    pub pan: &'a Pan,
    pub presentation: Presentation<'a>,
    pub pin: Option<PinData<'a>>,
    pub today: BusinessDate,
}

/// Why the issuer answered as it did; the response code is what the terminal sees, the reason
/// is what the console, the journal and the risk engine see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    Approved,
    CardFrozen,
    CardBlocked,
    CardLost,
    CardStolen,
    CardExpired,
    /// The expiry read from the card differs from the issuer's record (counterfeit stripe).
    ExpiryMismatch,
    /// The service code read from the stripe differs from the issuer's record.
    ServiceCodeMismatch,
    /// A chip card swiped without a failed chip attempt first.
    ChipCardSwiped,
    InvalidAmount,
    /// The amount is in another currency than the card's (no conversion yet).
    CurrencyNotSupported,
    CvvMismatch,
    ArqcInvalid,
    /// The ATC is not above the highest one seen: a replayed or cloned cryptogram.
    AtcReplayed,
    PinTriesExhausted,
    PinIncorrect,
    /// A PIN was entered but the issuer has none on file for the card.
    NoPinOnFile,
    DailyLimitExceeded,
    /// The HSM refused or failed; the issuer cannot decide safely.
    HsmFailure,
}

/// What to remember about the card after the decision. `pin_failures` and `last_atc` apply
/// whatever the outcome; `spend` applies only if the funds then move in the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CardUpdate {
    pub pin_failures: u8,
    pub last_atc: Option<u16>,
    /// The day's new spent total and its date, when the transaction is approved.
    pub spend: Option<(Amount, BusinessDate)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub response: ResponseCode,
    pub reason: Reason,
    pub update: CardUpdate,
    /// For a chip card whose ARQC verified: the issuer authentication data (tag 91) of an
    /// approval, made in the same HSM command as the check (as an HSM's ARQC-verify-and-ARPC
    /// command does), so that an answer of 00 needs no second one. Any other answer gets its
    /// own from [`crate::arpc`].
    pub approval_arpc: Option<IssuerAuthentication>,
}

/// Tag 91 (issuer authentication data): the ARPC and the ARC or CSU it was made with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IssuerAuthentication {
    bytes: [u8; 16],
    len: u8,
}

impl IssuerAuthentication {
    /// The ARPC followed by its ARC or CSU; `None` if longer than 16 bytes.
    pub fn new(arpc: &[u8], suffix: &[u8]) -> Option<Self> {
        let len = arpc.len() + suffix.len();
        let mut bytes = [0; 16];
        bytes.get_mut(..arpc.len())?.copy_from_slice(arpc);
        bytes.get_mut(arpc.len()..len)?.copy_from_slice(suffix);
        Some(Self {
            bytes,
            len: u8::try_from(len).ok()?,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Not secret, but shown as its length only, like other cryptographic values in logs.
impl std::fmt::Debug for IssuerAuthentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IssuerAuthentication({} bytes)", self.len)
    }
}
