//! Batch settlement (批结算, 0500/0510) and batch upload (批上送, 0320/0330).
//!
//! At the end of a batch the terminal sends its totals in field 48; the host counts its own
//! from the journal — what it answered the terminal — and says in the answer whether they
//! agree. easypos's convention for field 48 (the layout UnionPay-style terminals use), 62
//! digits:
//!
//! | digits | meaning |
//! |---|---|
//! | 12 | domestic cards: debit total amount, in minor units |
//! | 3 | domestic cards: debit count |
//! | 12 | domestic cards: credit total amount |
//! | 3 | domestic cards: credit count |
//! | 1 | domestic cards: reconciliation code (request: 0; answer: 1 agree, 2 disagree, 3 resolved) |
//! | 31 | the same for foreign cards |
//!
//! then, optionally, 17 digits per transaction type: 60.1 of the type (2), count (3), amount
//! (12). A terminal that sends them is reconciled per type as well.
//!
//! Debits are approved sales and pre-authorization completions; credits are approved voids,
//! refunds and completion voids. A message that was reversed (an approved reversal with its
//! trace number) is not counted, nor is a duplicate counted twice. Pre-authorizations and
//! their voids move no money to the merchant and are not counted. easypos issues domestic
//! cards only: the host's foreign totals are zero.
//!
//! The answer is 0510 with 39 = 00 and field 48 = the terminal's totals with the two
//! reconciliation codes filled in:
//! - **1, agree**: the host closes the batch (the terminal's next sign-on gets the next batch
//!   number) and records the close.
//! - **2, disagree**: the terminal uploads each transaction it counted (0320, 60.3 = 201, one
//!   per message, kept in `batch_advices`), then settles again. The host forgets any earlier
//!   upload of the batch when it answers 2, so each round starts empty.
//! - **3, resolved**: the totals still disagree, but the uploaded advices add up to the
//!   terminal's totals, so the host knows the terminal's side transaction by transaction. It
//!   compares them with its journal, records each difference (`terminal_only`, `host_only`,
//!   `differs`) with the close, and closes the batch. The host's journal is what moved money;
//!   the differences are reported (`easypos settle` writes them in `batches-<date>.csv`).

use crate::handler::TerminalHandler;
use crate::message::{MessageType, Request, response_to};
use crate::sale::Answer;
use iso8583::{Message, ResponseCode};
use std::collections::{BTreeMap, BTreeSet};
use store::batches::{BatchAdvice, BatchClose, BatchDifference, BatchSide};
use store::directory::SessionChange;
use store::journal::JournalEntry;

/// One side's totals: debits and credits, counts and amounts in minor units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub debit_minor: u64,
    pub debit_count: u64,
    pub credit_minor: u64,
    pub credit_count: u64,
}

impl Totals {
    fn add(&mut self, debit: bool, amount_minor: u64) {
        if debit {
            self.debit_minor += amount_minor;
            self.debit_count += 1;
        } else {
            self.credit_minor += amount_minor;
            self.credit_count += 1;
        }
    }

    fn side(&self) -> BatchSide {
        let signed = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        BatchSide {
            debit_count: signed(self.debit_count),
            debit_minor: signed(self.debit_minor),
            credit_count: signed(self.credit_count),
            credit_minor: signed(self.credit_minor),
        }
    }
}

/// The message types a settlement counts: their 60.1 code, and whether each is a debit.
const COUNTED: [(MessageType, &str, bool); 5] = [
    (MessageType::Sale, "22", true),
    (MessageType::PreAuthorizationCompletion, "20", true),
    (MessageType::SaleVoid, "23", false),
    (MessageType::Refund, "25", false),
    (MessageType::CompletionVoid, "21", false),
];

/// Whether a message of this kind counts as a debit (`Some(true)`), a credit (`Some(false)`)
/// or not at all.
fn direction(kind: &str) -> Option<bool> {
    COUNTED
        .iter()
        .find(|(candidate, _, _)| candidate.to_string() == kind)
        .map(|(_, _, debit)| *debit)
}

/// The 60.1 code of a counted kind.
fn type_code(kind: &str) -> Option<&'static str> {
    COUNTED
        .iter()
        .find(|(candidate, _, _)| candidate.to_string() == kind)
        .map(|(_, code, _)| *code)
}

/// The counted kind of a 60.1 code.
pub fn kind_of_type_code(code: &str) -> Option<MessageType> {
    COUNTED
        .iter()
        .find(|(_, candidate, _)| *candidate == code)
        .map(|(kind, _, _)| *kind)
}

/// One transaction a side counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counted {
    /// `Sale`, `Refund` … (`MessageType` names).
    pub kind: String,
    pub amount_minor: u64,
    /// Masked.
    pub card: Option<String>,
}

/// The transactions the host counts in a batch, by trace number, from its journal entries.
pub fn counted(entries: &[JournalEntry]) -> BTreeMap<i64, Counted> {
    let approved = |entry: &&JournalEntry| entry.response.as_deref() == Some("00");
    let reversal = MessageType::Reversal.to_string();
    let reversed: BTreeSet<i64> = entries
        .iter()
        .filter(approved)
        .filter(|entry| entry.kind == reversal)
        .filter_map(|entry| entry.stan)
        .collect();
    // One transaction per trace number: a duplicate answered twice is one transaction.
    entries
        .iter()
        .filter(approved)
        .filter_map(|entry| {
            let stan = entry.stan?;
            direction(&entry.kind)?;
            let amount_minor = u64::try_from(entry.amount_minor?).ok()?;
            (!reversed.contains(&stan)).then(|| {
                (
                    stan,
                    Counted {
                        kind: entry.kind.clone(),
                        amount_minor,
                        card: entry.card.clone(),
                    },
                )
            })
        })
        .collect()
}

/// Debit and credit totals of counted transactions.
pub fn totals_of<'a>(transactions: impl IntoIterator<Item = &'a Counted>) -> Totals {
    transactions
        .into_iter()
        .fold(Totals::default(), |mut totals, transaction| {
            if let Some(debit) = direction(&transaction.kind) {
                totals.add(debit, transaction.amount_minor);
            }
            totals
        })
}

/// Count and amount per 60.1 code of counted transactions; types with none are left out.
pub fn by_type<'a>(
    transactions: impl IntoIterator<Item = &'a Counted>,
) -> BTreeMap<String, (u64, u64)> {
    let mut types: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for transaction in transactions {
        if let Some(code) = type_code(&transaction.kind) {
            let entry = types.entry(code.to_owned()).or_default();
            entry.0 += 1;
            entry.1 += transaction.amount_minor;
        }
    }
    types
}

/// The host's totals of one batch, from its journal entries.
pub fn batch_totals(entries: &[JournalEntry]) -> Totals {
    totals_of(counted(entries).values())
}

/// Field 48 of a settlement: domestic and foreign totals with their reconciliation codes,
/// and the totals per transaction type when the terminal sends them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettlementTotals {
    pub domestic: Totals,
    pub foreign: Totals,
    /// Count and amount per 60.1 code (zero types may be left out); `None` when not sent.
    pub by_type: Option<BTreeMap<String, (u64, u64)>>,
}

/// Digits of one per-type block of field 48: 60.1 code, count, amount.
const TYPE_BLOCK_DIGITS: usize = 2 + 3 + 12;
/// Digits of the debit/credit part of field 48.
const TOTALS_DIGITS: usize = 62;

impl SettlementTotals {
    /// Reads field 48: 62 digits, then any per-type blocks (the reconciliation codes are
    /// ignored).
    pub fn parse(field48: &str) -> Option<SettlementTotals> {
        let digits = field48.trim();
        if digits.len() < TOTALS_DIGITS
            || !(digits.len() - TOTALS_DIGITS).is_multiple_of(TYPE_BLOCK_DIGITS)
            || !digits.bytes().all(|byte| byte.is_ascii_digit())
        {
            return None;
        }
        let number = |from: usize, len: usize| digits.get(from..from + len)?.parse::<u64>().ok();
        let side = |at: usize| {
            Some(Totals {
                debit_minor: number(at, 12)?,
                debit_count: number(at + 12, 3)?,
                credit_minor: number(at + 15, 12)?,
                credit_count: number(at + 27, 3)?,
            })
        };
        let by_type = if digits.len() == TOTALS_DIGITS {
            None
        } else {
            let mut types = BTreeMap::new();
            for at in (TOTALS_DIGITS..digits.len()).step_by(TYPE_BLOCK_DIGITS) {
                let code = digits.get(at..at + 2)?.to_owned();
                kind_of_type_code(&code)?;
                let (count, amount) = (number(at + 2, 3)?, number(at + 5, 12)?);
                if types.insert(code, (count, amount)).is_some() {
                    return None;
                }
            }
            types.retain(|_, (count, amount)| *count != 0 || *amount != 0);
            Some(types)
        };
        Some(SettlementTotals {
            domestic: side(0)?,
            foreign: side(31)?,
            by_type,
        })
    }

    /// Field 48, with the given reconciliation codes (0 in a request).
    pub fn format(&self, domestic_code: u8, foreign_code: u8) -> String {
        let side = |totals: &Totals, code: u8| {
            format!(
                "{:012}{:03}{:012}{:03}{code}",
                totals.debit_minor % 1_000_000_000_000,
                totals.debit_count % 1_000,
                totals.credit_minor % 1_000_000_000_000,
                totals.credit_count % 1_000
            )
        };
        let mut text = format!(
            "{}{}",
            side(&self.domestic, domestic_code),
            side(&self.foreign, foreign_code)
        );
        for (code, (count, amount)) in self.by_type.iter().flatten() {
            text.push_str(&format!(
                "{code:0>2.2}{:03}{:012}",
                count % 1_000,
                amount % 1_000_000_000_000
            ));
        }
        text
    }

    /// Whether the host's transactions give these totals (domestic, foreign zero, and per
    /// type when sent).
    fn agree_with<'a>(&self, host: impl IntoIterator<Item = &'a Counted> + Clone) -> bool {
        self.domestic == totals_of(host.clone())
            && self.foreign == Totals::default()
            && self
                .by_type
                .as_ref()
                .is_none_or(|types| *types == by_type(host))
    }
}

/// Reconciliation codes of the answer.
pub const AGREE: u8 = 1;
pub const DISAGREE: u8 = 2;
pub const RESOLVED: u8 = 3;

/// The differences between the host's counted transactions and the terminal's advices, by
/// trace number.
pub fn differences(
    host: &BTreeMap<i64, Counted>,
    terminal: &BTreeMap<i64, Counted>,
) -> Vec<BatchDifference> {
    let stans: BTreeSet<i64> = host.keys().chain(terminal.keys()).copied().collect();
    stans
        .into_iter()
        .filter_map(|stan| {
            let (ours, theirs) = (host.get(&stan), terminal.get(&stan));
            let difference = match (ours, theirs) {
                (Some(ours), Some(theirs))
                    if ours.kind == theirs.kind && ours.amount_minor == theirs.amount_minor =>
                {
                    return None;
                }
                (Some(_), Some(_)) => "differs",
                (Some(_), None) => "host_only",
                (None, Some(_)) => "terminal_only",
                (None, None) => return None,
            };
            let amount = |side: Option<&Counted>| {
                side.and_then(|side| i64::try_from(side.amount_minor).ok())
            };
            Some(BatchDifference {
                stan,
                difference: difference.into(),
                terminal_kind: theirs.map(|side| side.kind.clone()),
                terminal_amount_minor: amount(theirs),
                host_kind: ours.map(|side| side.kind.clone()),
                host_amount_minor: amount(ours),
                card: ours.or(theirs).and_then(|side| side.card.clone()),
            })
        })
        .collect()
}

/// The uploaded advices as counted transactions, by trace number.
fn advised(advices: &[BatchAdvice]) -> BTreeMap<i64, Counted> {
    advices
        .iter()
        .filter_map(|advice| {
            Some((
                advice.stan,
                Counted {
                    kind: advice.kind.clone(),
                    amount_minor: u64::try_from(advice.amount_minor).ok()?,
                    card: advice.card.clone(),
                },
            ))
        })
        .collect()
}

/// 60.3 of a batch upload of one transaction.
const UPLOAD_TRANSACTION: &str = "201";

/// The masked card of an advice's field 48: the card number's length (2 digits), its first
/// six and its last four digits.
fn advice_card(field48: &str) -> Option<String> {
    let digits = field48.trim();
    if digits.len() != 12 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let length: usize = digits[..2].parse().ok()?;
    if !(12..=19).contains(&length) {
        return None;
    }
    Some(format!(
        "{}{}{}",
        &digits[2..8],
        "*".repeat(length - 10),
        &digits[8..12]
    ))
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl TerminalHandler {
    pub(crate) async fn batch_settlement(
        &self,
        message: &Message<'_>,
        request: &Request,
    ) -> Option<Answer> {
        let field48 = message
            .get(48)
            .map(|value| value.to_text())
            .unwrap_or_default();
        let Some(terminal_totals) = SettlementTotals::parse(&field48) else {
            tracing::info!(terminal = %request.terminal_id, "settlement with unreadable field 48");
            return Answer::plain(message, ResponseCode::FormatError);
        };
        let terminal_id = request.terminal_id.trim();
        let batch = i64::from(request.batch);
        let entries = match self.store.journal_of(terminal_id, batch, None).await {
            Ok(entries) => entries,
            Err(error) => {
                tracing::error!(%error, "cannot read the batch's journal");
                return Answer::plain(message, ResponseCode::SystemMalfunction);
            }
        };
        let host = counted(&entries);
        let mut close = BatchClose {
            id: 0,
            terminal_id: terminal_id.to_owned(),
            merchant_id: request.merchant_id.trim().to_owned(),
            batch,
            closed_at: now_us(),
            status: "agreed".into(),
            currency: message
                .get(49)
                .and_then(|value| value.to_text().trim().parse().ok())
                .unwrap_or(0),
            terminal: terminal_totals.domestic.side(),
            host: totals_of(host.values()).side(),
            differences: Vec::new(),
        };
        let code = if terminal_totals.agree_with(host.values()) {
            AGREE
        } else {
            let advices = match self.store.batch_advices(terminal_id, batch).await {
                Ok(advices) => advised(&advices),
                Err(error) => {
                    tracing::error!(%error, "cannot read the batch's advices");
                    return Answer::plain(message, ResponseCode::SystemMalfunction);
                }
            };
            if terminal_totals.agree_with(advices.values()) {
                close.status = "resolved".into();
                close.differences = differences(&host, &advices);
                RESOLVED
            } else {
                if let Err(error) = self.store.clear_batch_advices(terminal_id, batch).await {
                    tracing::error!(%error, "cannot clear the batch's advices");
                    return Answer::plain(message, ResponseCode::SystemMalfunction);
                }
                DISAGREE
            }
        };
        if code != DISAGREE {
            let differences = close.differences.len();
            match self.store.close_batch(close).await {
                Ok(true) => {
                    tracing::info!(terminal = %request.terminal_id, batch = request.batch, differences, "batch settled and closed")
                }
                // A repeat of the settlement that closed it.
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(%error, "cannot close the batch");
                    return Answer::plain(message, ResponseCode::SystemMalfunction);
                }
            }
        } else {
            tracing::warn!(terminal = %request.terminal_id, batch = request.batch, host = ?close.host, terminal_totals = ?terminal_totals.domestic, "batch totals disagree: the terminal uploads its transactions");
        }
        let foreign = if terminal_totals.foreign == Totals::default() {
            AGREE
        } else {
            DISAGREE
        };
        let mut answer = response_to(message, ResponseCode::Approved)?;
        answer.set_text(48, terminal_totals.format(code, foreign));
        Some(Answer {
            message: answer,
            mac: None,
            risk: None,
            card_id: None,
            card_verification: None,
        })
    }

    /// Batch upload (0320, 60.3 = 201): one transaction of the terminal's batch, recorded as
    /// an advice for the next settlement to compare with the journal.
    pub(crate) async fn batch_upload(
        &self,
        message: &Message<'_>,
        request: &Request,
    ) -> Option<Answer> {
        let subfield = |field, id| self.profile.subfield_text(message, field, id);
        if subfield(60, 3).as_deref() != Some(UPLOAD_TRANSACTION) {
            tracing::info!(terminal = %request.terminal_id, "batch upload without 60.3 = 201");
            return Answer::plain(message, ResponseCode::FormatError);
        }
        let kind = subfield(60, 1).and_then(|code| kind_of_type_code(&code));
        let stan = subfield(61, 2).and_then(|text| text.parse::<i64>().ok());
        let original_batch = subfield(61, 1).and_then(|text| text.parse::<u32>().ok());
        let currency = message
            .get(49)
            .and_then(|value| value.to_text().trim().parse::<i64>().ok());
        let card = message
            .get(48)
            .and_then(|value| advice_card(&value.to_text()));
        let (Some(kind), Some(stan), Some(amount_minor), Some(currency), Some(card)) =
            (kind, stan, request.amount_minor, currency, card)
        else {
            tracing::info!(terminal = %request.terminal_id, "batch upload missing 60.1, 61, 4, 49 or 48");
            return Answer::plain(message, ResponseCode::FormatError);
        };
        if original_batch != Some(request.batch) {
            return Answer::plain(message, ResponseCode::InvalidTransaction);
        }
        let text = |field| message.get(field).map(|value| value.to_text());
        let advice = BatchAdvice {
            terminal_id: request.terminal_id.trim().to_owned(),
            batch: i64::from(request.batch),
            stan,
            kind: kind.to_string(),
            amount_minor: i64::try_from(amount_minor).unwrap_or(i64::MAX),
            currency,
            card: Some(card),
            rrn: text(37),
            auth_code: text(38),
            received_at: now_us(),
        };
        match self.store.put_batch_advice(advice).await {
            Ok(()) => Answer::plain(message, ResponseCode::Approved),
            Err(error) => {
                tracing::error!(%error, "cannot record a batch upload");
                Answer::plain(message, ResponseCode::SystemMalfunction)
            }
        }
    }

    /// Sign-off (0820, 60.3 = 002): the working keys are forgotten.
    pub(crate) async fn sign_off(
        &self,
        message: &Message<'_>,
        request: &Request,
    ) -> Option<Answer> {
        match self
            .store
            .change_session(request.terminal_id.trim(), SessionChange::SignOff)
            .await
        {
            Ok(Some(_)) => Answer::plain(message, ResponseCode::Approved),
            Ok(None) => Answer::plain(message, ResponseCode::NotPermittedToTerminal),
            Err(error) => {
                tracing::error!(%error, "sign-off failed");
                Answer::plain(message, ResponseCode::SystemMalfunction)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: MessageType, stan: i64, amount: i64, response: &str) -> JournalEntry {
        JournalEntry {
            kind: kind.to_string(),
            stan: Some(stan),
            amount_minor: Some(amount),
            response: Some(response.into()),
            ..JournalEntry::default()
        }
    }

    #[test]
    fn totals_count_approved_money_once_and_leave_out_what_was_reversed() {
        use MessageType::*;
        let entries = [
            entry(Sale, 1, 1_000, "00"),
            entry(Sale, 1, 1_000, "00"), // a duplicate, answered again
            entry(Sale, 2, 500, "51"),   // declined
            entry(Sale, 3, 700, "00"),
            entry(Reversal, 3, 700, "00"), // its answer was lost: reversed
            entry(SaleVoid, 4, 1_000, "00"),
            entry(Refund, 5, 300, "00"),
            entry(PreAuthorization, 6, 9_000, "00"), // a hold is not money moved
            entry(PreAuthorizationCompletion, 7, 8_000, "00"),
            entry(BalanceInquiry, 8, 0, "00"),
        ];
        assert_eq!(
            batch_totals(&entries),
            Totals {
                debit_minor: 9_000,
                debit_count: 2,
                credit_minor: 1_300,
                credit_count: 2,
            }
        );
        assert_eq!(batch_totals(&[]), Totals::default());
    }

    #[test]
    fn field_48_reads_and_writes_62_digits() {
        let totals = SettlementTotals {
            domestic: Totals {
                debit_minor: 9_000,
                debit_count: 2,
                credit_minor: 1_300,
                credit_count: 2,
            },
            foreign: Totals::default(),
            by_type: None,
        };
        let text = totals.format(0, 0);
        assert_eq!(
            text,
            "00000000900000200000000130000200000000000000000000000000000000"
        );
        assert_eq!(SettlementTotals::parse(&text), Some(totals.clone()));
        assert!(totals.format(1, 1).ends_with('1'));
        assert_eq!(SettlementTotals::parse("123"), None);
        assert_eq!(SettlementTotals::parse(&text.replace('9', "x")), None);
    }

    #[test]
    fn field_48_carries_totals_per_type_after_the_62_digits() {
        let mut types = BTreeMap::new();
        types.insert("22".to_owned(), (2, 9_000));
        types.insert("25".to_owned(), (1, 300));
        let totals = SettlementTotals {
            domestic: Totals {
                debit_minor: 9_000,
                debit_count: 2,
                credit_minor: 300,
                credit_count: 1,
            },
            foreign: Totals::default(),
            by_type: Some(types),
        };
        let text = totals.format(0, 0);
        assert_eq!(text.len(), 62 + 2 * 17);
        assert!(
            text.ends_with("2200200000000900025001000000000300"),
            "{text}"
        );
        assert_eq!(SettlementTotals::parse(&text), Some(totals.clone()));
        // A zero block is the same as none; an unknown type or a repeated one is refused.
        assert_eq!(
            SettlementTotals::parse(&format!("{text}20000000000000000")),
            Some(totals)
        );
        assert_eq!(
            SettlementTotals::parse(&format!("{text}99001000000000001")),
            None
        );
        assert_eq!(
            SettlementTotals::parse(&format!("{text}22001000000000001")),
            None
        );
        assert_eq!(SettlementTotals::parse(&format!("{text}2200")), None);
    }

    fn sale(kind: &str, amount_minor: u64) -> Counted {
        Counted {
            kind: kind.into(),
            amount_minor,
            card: Some("621234******0001".into()),
        }
    }

    #[test]
    fn per_type_totals_must_agree_as_well_as_debits_and_credits() {
        let host: BTreeMap<i64, Counted> =
            [(1, sale("Sale", 1_000)), (2, sale("Refund", 300))].into();
        // A completion instead of a sale: the same debit total, another type.
        let other: BTreeMap<i64, Counted> = [
            (1, sale("PreAuthorizationCompletion", 1_000)),
            (2, sale("Refund", 300)),
        ]
        .into();
        let claimed = |transactions: &BTreeMap<i64, Counted>, typed: bool| SettlementTotals {
            domestic: totals_of(transactions.values()),
            foreign: Totals::default(),
            by_type: typed.then(|| by_type(transactions.values())),
        };
        assert!(claimed(&host, true).agree_with(host.values()));
        assert!(claimed(&other, false).agree_with(host.values()));
        assert!(!claimed(&other, true).agree_with(host.values()));
    }

    #[test]
    fn differences_name_each_side_s_transactions() {
        let host: BTreeMap<i64, Counted> = [
            (1, sale("Sale", 1_000)),
            (2, sale("Sale", 500)),
            (4, sale("Refund", 300)),
        ]
        .into();
        let terminal: BTreeMap<i64, Counted> = [
            (1, sale("Sale", 1_000)),
            (2, sale("Sale", 600)),
            (3, sale("Sale", 700)),
        ]
        .into();
        let found = differences(&host, &terminal);
        let summary: Vec<_> = found
            .iter()
            .map(|difference| {
                (
                    difference.stan,
                    difference.difference.as_str(),
                    difference.terminal_amount_minor,
                    difference.host_amount_minor,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (2, "differs", Some(600), Some(500)),
                (3, "terminal_only", Some(700), None),
                (4, "host_only", None, Some(300)),
            ]
        );
        assert!(differences(&host, &host).is_empty());
    }

    #[test]
    fn an_advice_names_its_card_by_length_first_six_and_last_four() {
        assert_eq!(
            advice_card("166212340001").as_deref(),
            Some("621234******0001")
        );
        assert_eq!(
            advice_card("196212340001").as_deref(),
            Some("621234*********0001")
        );
        assert_eq!(advice_card("096212340001"), None);
        assert_eq!(
            advice_card("6212345000000001"),
            None,
            "never a whole number"
        );
    }
}
