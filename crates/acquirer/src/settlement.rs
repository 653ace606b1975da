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
//! | 1 | domestic cards: reconciliation code (request: 0; answer: 1 agree, 2 disagree) |
//! | 31 | the same for foreign cards |
//!
//! Debits are approved sales and pre-authorization completions; credits are approved voids,
//! refunds and completion voids. A message that was reversed (an approved reversal with its
//! trace number) is not counted, nor is a duplicate counted twice. Pre-authorizations and
//! their voids move no money to the merchant and are not counted. easypos issues domestic
//! cards only: the host's foreign totals are zero.
//!
//! The answer is 0510 with 39 = 00 either way and field 48 = the terminal's totals with the
//! two reconciliation codes filled in. When they agree the host closes the batch: the
//! terminal's next sign-on gets the next batch number. When they disagree the terminal
//! uploads its transactions (0320, answered 00 and journaled) and settles again; resolving the
//! difference is end-of-day reconciliation's work.

use crate::handler::TerminalHandler;
use crate::message::{MessageType, Request, response_to};
use crate::sale::Answer;
use iso8583::{Message, ResponseCode};
use std::collections::{BTreeMap, BTreeSet};
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

/// Whether a message of this kind counts as a debit (`Some(true)`), a credit (`Some(false)`)
/// or not at all.
fn direction(kind: &str) -> Option<bool> {
    use MessageType::*;
    [
        (Sale, true),
        (PreAuthorizationCompletion, true),
        (SaleVoid, false),
        (Refund, false),
        (CompletionVoid, false),
    ]
    .into_iter()
    .find(|(candidate, _)| candidate.to_string() == kind)
    .map(|(_, debit)| debit)
}

/// The host's totals of one batch, from its journal entries.
pub fn batch_totals(entries: &[JournalEntry]) -> Totals {
    let approved = |entry: &&JournalEntry| entry.response.as_deref() == Some("00");
    let reversal = MessageType::Reversal.to_string();
    let reversed: BTreeSet<i64> = entries
        .iter()
        .filter(approved)
        .filter(|entry| entry.kind == reversal)
        .filter_map(|entry| entry.stan)
        .collect();
    // One amount per (trace number, kind): a duplicate answered twice is one transaction.
    let counted: BTreeMap<(i64, &str), (bool, u64)> = entries
        .iter()
        .filter(approved)
        .filter_map(|entry| {
            let stan = entry.stan?;
            let debit = direction(&entry.kind)?;
            let amount = u64::try_from(entry.amount_minor?).ok()?;
            (!reversed.contains(&stan)).then_some(((stan, entry.kind.as_str()), (debit, amount)))
        })
        .collect();
    counted
        .values()
        .fold(Totals::default(), |mut totals, &(debit, amount)| {
            if debit {
                totals.debit_minor += amount;
                totals.debit_count += 1;
            } else {
                totals.credit_minor += amount;
                totals.credit_count += 1;
            }
            totals
        })
}

/// Field 48 of a settlement: domestic and foreign totals with their reconciliation codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettlementTotals {
    pub domestic: Totals,
    pub foreign: Totals,
}

impl SettlementTotals {
    /// Reads the 62 digits of field 48 (the reconciliation codes are ignored).
    pub fn parse(field48: &str) -> Option<SettlementTotals> {
        let digits = field48.trim();
        if digits.len() != 62 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
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
        Some(SettlementTotals {
            domestic: side(0)?,
            foreign: side(31)?,
        })
    }

    /// The 62 digits, with the given reconciliation codes (0 in a request).
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
        format!(
            "{}{}",
            side(&self.domestic, domestic_code),
            side(&self.foreign, foreign_code)
        )
    }
}

/// Reconciliation codes of the answer.
const AGREE: u8 = 1;
const DISAGREE: u8 = 2;

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
        let entries = match self
            .store
            .journal_of(request.terminal_id.trim(), i64::from(request.batch), None)
            .await
        {
            Ok(entries) => entries,
            Err(error) => {
                tracing::error!(%error, "cannot read the batch's journal");
                return Answer::plain(message, ResponseCode::SystemMalfunction);
            }
        };
        let host = batch_totals(&entries);
        let domestic = terminal_totals.domestic == host;
        let foreign = terminal_totals.foreign == Totals::default();
        let code = |agree| if agree { AGREE } else { DISAGREE };
        if domestic && foreign {
            let change = SessionChange::CloseBatch {
                batch: i64::from(request.batch),
            };
            if let Err(error) = self
                .store
                .change_session(request.terminal_id.trim(), change)
                .await
            {
                tracing::error!(%error, "cannot close the batch");
                return Answer::plain(message, ResponseCode::SystemMalfunction);
            }
            tracing::info!(terminal = %request.terminal_id, batch = request.batch, "batch settled and closed");
        } else {
            tracing::warn!(terminal = %request.terminal_id, batch = request.batch, ?host, terminal_totals = ?terminal_totals.domestic, "batch totals disagree");
        }
        let mut answer = response_to(message, ResponseCode::Approved)?;
        answer.set_text(48, terminal_totals.format(code(domestic), code(foreign)));
        Some(Answer {
            message: answer,
            mac: None,
            risk: None,
            card_id: None,
        })
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
        };
        let text = totals.format(0, 0);
        assert_eq!(
            text,
            "00000000900000200000000130000200000000000000000000000000000000"
        );
        assert_eq!(SettlementTotals::parse(&text), Some(totals));
        assert!(totals.format(1, 1).ends_with('1'));
        assert_eq!(SettlementTotals::parse("123"), None);
        assert_eq!(SettlementTotals::parse(&text.replace('9', "x")), None);
    }
}
