//! Every card message of the terminal's menu, built one way: sale, void, refund,
//! pre-authorization, completion and balance inquiry (docs/protocol.md, "Terminal messages"),
//! with the card read by chip, contactless chip, stripe or fallback stripe; and the batch
//! settlement (0500) with the terminal's totals.

use crate::TerminalError;
use crate::messages::Terminal;
use crate::state::BatchEntry;
use iso8583::{Message, Mti, Stan};
use money::Currency;
use paycrypto::{Pan, PinBlock};
use std::collections::BTreeMap;

/// The largest amount field 4 can carry (12 digits of minor units).
pub const MAX_AMOUNT_MINOR: u64 = 999_999_999_999;
/// The largest batch number (60.2 has 6 digits).
pub const MAX_BATCH: u32 = 999_999;

/// What the cashier chose in the menu.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransactionType {
    /// 消费: money from the card to the merchant.
    Sale,
    /// 消费撤销: a sale of the open batch cancelled whole.
    Void,
    /// 退货: money back to the card, up to the sale's amount.
    Refund,
    /// 预授权: a hold on the card's money.
    PreAuthorization,
    /// 预授权完成: the hold taken, up to its amount.
    Completion,
    /// 查询: the card's available balance; nothing moves.
    BalanceInquiry,
}

impl TransactionType {
    /// MTI, processing code (field 3), condition code (field 25) and 60.1 (STANDARDS.md §2).
    fn codes(self) -> (&'static [u8; 4], &'static str, &'static str, &'static str) {
        match self {
            TransactionType::Sale => (b"0200", "000000", "00", "22"),
            TransactionType::Void => (b"0200", "200000", "00", "23"),
            TransactionType::Refund => (b"0220", "200000", "00", "25"),
            TransactionType::PreAuthorization => (b"0100", "030000", "06", "10"),
            TransactionType::Completion => (b"0200", "000000", "06", "20"),
            TransactionType::BalanceInquiry => (b"0200", "310000", "00", "01"),
        }
    }

    /// Whether the message names an earlier one in field 61.
    pub fn has_original(self) -> bool {
        matches!(
            self,
            TransactionType::Void | TransactionType::Refund | TransactionType::Completion
        )
    }

    /// Whether the message carries an amount (a balance inquiry does not).
    pub fn has_amount(self) -> bool {
        self != TransactionType::BalanceInquiry
    }

    /// Whether the card presents a cryptogram (an ARQC) in this message. Follow-ups name an
    /// earlier message and present the card by its number only.
    pub fn reads_chip(self) -> bool {
        matches!(
            self,
            TransactionType::Sale
                | TransactionType::PreAuthorization
                | TransactionType::BalanceInquiry
        )
    }

    /// How the host's settlement counts it: `Some(true)` a debit, `Some(false)` a credit.
    pub fn settlement_direction(self) -> Option<bool> {
        match self {
            TransactionType::Sale | TransactionType::Completion => Some(true),
            TransactionType::Void | TransactionType::Refund => Some(false),
            TransactionType::PreAuthorization | TransactionType::BalanceInquiry => None,
        }
    }

    /// 60.1: the transaction type code.
    pub fn type_code(self) -> &'static str {
        self.codes().3
    }

    /// The host's name of the message type (`acquirer::MessageType`), which its journal,
    /// batch advices and differences use.
    pub fn host_kind(self) -> &'static str {
        match self {
            TransactionType::Sale => "Sale",
            TransactionType::Void => "SaleVoid",
            TransactionType::Refund => "Refund",
            TransactionType::PreAuthorization => "PreAuthorization",
            TransactionType::Completion => "PreAuthorizationCompletion",
            TransactionType::BalanceInquiry => "BalanceInquiry",
        }
    }

    /// The name a script and the JSON output use.
    pub fn name(self) -> &'static str {
        match self {
            TransactionType::Sale => "sale",
            TransactionType::Void => "void",
            TransactionType::Refund => "refund",
            TransactionType::PreAuthorization => "pre-authorization",
            TransactionType::Completion => "completion",
            TransactionType::BalanceInquiry => "balance-inquiry",
        }
    }
}

/// How the card was read, which decides field 22 and the card fields sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardRead<'a> {
    /// Inserted (05) or tapped (07): field 2 and field 55 with the ARQC.
    Chip {
        field55: &'a [u8],
        contactless: bool,
    },
    /// Swiped: track 2 in field 35; 80 after a failed chip read (fallback), else 90.
    Stripe { track2: &'a str, fallback: bool },
    /// The card's number only (01), as follow-ups present the card.
    Number,
}

impl CardRead<'_> {
    /// Field 22: the PAN entry mode, then 1 (this terminal takes PINs).
    fn entry_mode(&self) -> &'static str {
        match self {
            CardRead::Chip {
                contactless: false, ..
            } => "051",
            CardRead::Chip {
                contactless: true, ..
            } => "071",
            CardRead::Stripe {
                fallback: false, ..
            } => "901",
            CardRead::Stripe { fallback: true, .. } => "801",
            CardRead::Number => "011",
        }
    }
}

/// The earlier message a void, refund or completion names (field 61, and 37 or 38).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Original {
    pub batch: u32,
    pub stan: Stan,
    /// Field 37 of the original's answer (voids and refunds).
    pub rrn: Option<String>,
    /// Field 38 of the original's answer (completions).
    pub auth_code: Option<String>,
}

/// One card message, not yet MACed.
#[derive(Debug)]
pub struct CardRequest<'a> {
    pub kind: TransactionType,
    pub stan: Stan,
    pub batch: u32,
    /// Ignored for a balance inquiry.
    pub amount_minor: u64,
    pub currency: Currency,
    pub pan: &'a Pan,
    pub read: CardRead<'a>,
    pub pin_block: Option<&'a PinBlock>,
    pub original: Option<&'a Original>,
    /// Field 63 of a void or refund: the supervisor's number and password block
    /// (docs/protocol.md, "Supervisor password"); `None`: not sent.
    pub supervisor: Option<&'a str>,
}

impl Terminal {
    /// A card message of any type on the menu, not yet MACed (see [`Terminal::pack_with_mac`]).
    pub fn card_request(
        &self,
        request: &CardRequest<'_>,
    ) -> Result<Message<'static>, TerminalError> {
        let (mti, processing, condition, type_code) = request.kind.codes();
        if request.kind.has_amount()
            && (request.amount_minor == 0 || request.amount_minor > MAX_AMOUNT_MINOR)
        {
            return Err(TerminalError::Invalid(
                "an amount is 1 to 999999999999 minor units",
            ));
        }
        if request.batch > MAX_BATCH {
            return Err(TerminalError::Invalid("a batch number has 6 digits"));
        }
        let mut message =
            self.message(Mti::from_digits(mti).map_err(|_| TerminalError::Invalid("MTI"))?);
        message.set_text(3, processing);
        if request.kind.has_amount() {
            message.set_amount(request.amount_minor);
        }
        message.set_text(11, format!("{:06}", request.stan.value()));
        message.set_text(22, request.read.entry_mode());
        message.set_text(25, condition);
        message.set_text(49, format!("{:03}", request.currency.numeric()));
        message.set_text(60, format!("{type_code}{:06}", request.batch));
        match request.read {
            CardRead::Chip { field55, .. } => {
                message.set_text(2, request.pan.digits().to_owned());
                message.set_bytes(55, field55.to_vec());
            }
            CardRead::Stripe { track2, .. } => message.set_text(35, track2.to_owned()),
            CardRead::Number => message.set_text(2, request.pan.digits().to_owned()),
        }
        if let Some(block) = request.pin_block {
            message.set_bytes(52, block.as_bytes().to_vec());
        }
        match (request.kind.has_original(), request.original) {
            (false, _) => {}
            (true, None) => {
                return Err(TerminalError::Invalid(
                    "a void, refund or completion names its original",
                ));
            }
            (true, Some(original)) => {
                message.set_text(
                    61,
                    format!("{:06}{:06}", original.batch, original.stan.value()),
                );
                if request.kind == TransactionType::Completion {
                    let code = original.auth_code.as_deref().ok_or(TerminalError::Invalid(
                        "a completion carries the pre-authorization's auth code",
                    ))?;
                    message.set_text(38, code.to_owned());
                } else {
                    let rrn = original.rrn.as_deref().ok_or(TerminalError::Invalid(
                        "a void or refund carries the sale's RRN",
                    ))?;
                    message.set_text(37, rrn.to_owned());
                }
            }
        }
        if let Some(field) = request.supervisor
            && matches!(
                request.kind,
                TransactionType::Void | TransactionType::Refund
            )
        {
            message.set_text(63, field.to_owned());
        }
        Ok(message)
    }

    /// Sign-off (签退, 0820, 60.3 = 002) in `batch`: the host forgets the working keys.
    pub fn sign_off(&self, stan: Stan, batch: u32) -> Result<Message<'static>, TerminalError> {
        if batch > MAX_BATCH {
            return Err(TerminalError::Invalid("a batch number has 6 digits"));
        }
        let mut message =
            self.message(Mti::from_digits(b"0820").map_err(|_| TerminalError::Invalid("MTI"))?);
        message.set_text(11, format!("{:06}", stan.value()));
        message.set_text(60, format!("00{batch:06}002"));
        Ok(message)
    }

    /// Batch settlement (0500, 60.3 = 201) of `batch` with the terminal's totals in field 48
    /// (`acquirer::settlement`'s layout: debits and credits, then count and amount per
    /// transaction type; easypos cards are all domestic), by `operator`.
    pub fn settlement(
        &self,
        stan: Stan,
        batch: u32,
        currency: Currency,
        totals: &acquirer::settlement::Totals,
        by_type: BTreeMap<String, (u64, u64)>,
        operator: &str,
    ) -> Result<Message<'static>, TerminalError> {
        if batch > MAX_BATCH {
            return Err(TerminalError::Invalid("a batch number has 6 digits"));
        }
        let field48 = acquirer::settlement::SettlementTotals {
            domestic: *totals,
            foreign: acquirer::settlement::Totals::default(),
            by_type: Some(by_type),
        }
        .format(0, 0);
        let mut message =
            self.message(Mti::from_digits(b"0500").map_err(|_| TerminalError::Invalid("MTI"))?);
        message.set_text(11, format!("{:06}", stan.value()));
        message.set_text(48, field48);
        message.set_text(49, format!("{:03}", currency.numeric()));
        message.set_text(60, format!("00{batch:06}201"));
        message.set_text(63, format!("{operator:<3.3}"));
        Ok(message)
    }

    /// Batch upload (批上送, 0320, 60.3 = 201) of one transaction of the batch, under its own
    /// trace number `stan`: 60.1 its type, 61 its batch and trace number, field 4 its amount,
    /// 37 and 38 its RRN and auth code, and field 48 its card as the terminal keeps it (the
    /// number's length, first six and last four digits; never the whole number).
    pub fn batch_upload(
        &self,
        stan: Stan,
        currency: Currency,
        entry: &BatchEntry,
    ) -> Result<Message<'static>, TerminalError> {
        if entry.batch > MAX_BATCH {
            return Err(TerminalError::Invalid("a batch number has 6 digits"));
        }
        let card: Vec<char> = entry.card.chars().collect();
        let digits = |part: &[char]| part.iter().all(char::is_ascii_digit);
        if !(12..=19).contains(&card.len())
            || !digits(&card[..6])
            || !digits(&card[card.len() - 4..])
        {
            return Err(TerminalError::Invalid(
                "a batch entry's card is its first six and last four digits",
            ));
        }
        let head: String = card[..6].iter().collect();
        let tail: String = card[card.len() - 4..].iter().collect();
        let mut message =
            self.message(Mti::from_digits(b"0320").map_err(|_| TerminalError::Invalid("MTI"))?);
        message.set_amount(entry.amount_minor);
        message.set_text(11, format!("{:06}", stan.value()));
        if let Some(rrn) = &entry.rrn {
            message.set_text(37, rrn.clone());
        }
        if let Some(code) = &entry.auth_code {
            message.set_text(38, code.clone());
        }
        message.set_text(48, format!("{:02}{head}{tail}", card.len()));
        message.set_text(49, format!("{:03}", currency.numeric()));
        message.set_text(
            60,
            format!("{}{:06}201", entry.kind.type_code(), entry.batch),
        );
        message.set_text(61, format!("{:06}{:06}", entry.batch, entry.stan));
        Ok(message)
    }
}

/// What the host's answer to a settlement says (field 48, the domestic reconciliation code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reconciliation {
    /// 1: the totals agree; the host closed the batch.
    Agreed,
    /// 2: they disagree; the terminal uploads its transactions and settles again.
    Disagreed,
    /// 3: they disagree, and the upload let the host find each difference; it closed the
    /// batch and reports them.
    Resolved,
}

/// The reconciliation code of the host's answer to a settlement.
pub fn settlement_reconciliation(answer: &Message<'_>) -> Option<Reconciliation> {
    let field48 = answer.get(48)?.to_text();
    match field48.get(30..31)? {
        "1" => Some(Reconciliation::Agreed),
        "2" => Some(Reconciliation::Disagreed),
        "3" => Some(Reconciliation::Resolved),
        _ => None,
    }
}
