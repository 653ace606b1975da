//! Refunds the console and the API make (issue 9, R9; `aftersale::refunds`), posted by the
//! terminal refund's own path (`undo.rs`): the same freezes and risk rules
//! ([`TerminalHandler::undo_checks`]), the same transfers turned round from the sale's
//! ([`crate::follow_up::Posted::opposite`], code 25), the same commit
//! ([`TerminalHandler::commit_follow_up`]), and a journal entry like a terminal refund's.
//!
//! A refund made this way may come in parts. Part 1 takes the ids a terminal's void or refund
//! of the sale would take (`undo/*`), so the sale is undone by the console or by the terminal,
//! never both: a terminal void after it gets 12, and if the terminal refunded first the
//! console's parts start at 2 (`aftersale` counts the terminal's amount as refunded). Part `n`
//! above 1 takes `undo/n/*`. The transfers carry [`CONSOLE_REFUND_MARK`] + the part number
//! where a terminal's carry its trace number, which tells the two apart.

use crate::effects::BusinessKey;
use crate::handler::TerminalHandler;
use crate::sale::RiskNote;
use crate::undo::{UNDO, Undo, UndoChecked};
use aftersale::refunds::{
    BoxFuture, ChargebackStep, PostError, Posting, RefundPart, RefundPoster, SaleKey, TerminalUndo,
};
use iso8583::ResponseCode;
use store::journal::JournalEntry;

/// Added to a console refund's part number in its transfers' user data: above any trace
/// number (six digits), so a console part is never taken for a terminal's message.
pub const CONSOLE_REFUND_MARK: u32 = 1_000_000;

/// The journal's peer for a refund made from the console or the API.
pub const CONSOLE_PEER: &str = "console";

/// The purpose part `seq` takes in the sale's transfer ids.
fn purpose(seq: u32) -> String {
    if seq == 1 {
        UNDO.to_owned()
    } else {
        format!("{UNDO}/{seq}")
    }
}

fn key_of(sale: &SaleKey) -> BusinessKey {
    BusinessKey {
        terminal_id: sale.terminal_id.clone(),
        batch: sale.batch,
        stan: sale.stan,
    }
}

fn refused(code: ResponseCode, reason: &str) -> Posting {
    Posting::Refused {
        response: code.code().to_owned(),
        reason: reason.to_owned(),
    }
}

fn unavailable(code: ResponseCode) -> PostError {
    PostError(format!(
        "the books could not be read (response {})",
        code.code()
    ))
}

impl RefundPoster for TerminalHandler {
    fn undone<'a>(&'a self, sale: &'a SaleKey) -> BoxFuture<'a, Result<TerminalUndo, PostError>> {
        Box::pin(self.terminal_undo(sale))
    }

    fn post<'a>(&'a self, part: &'a RefundPart) -> BoxFuture<'a, Result<Posting, PostError>> {
        Box::pin(self.console_refund(part))
    }

    fn chargeback<'a>(
        &'a self,
        sale: &'a SaleKey,
        amount: money::Amount,
        step: ChargebackStep,
    ) -> BoxFuture<'a, Result<Posting, PostError>> {
        Box::pin(self.post_chargeback(sale, amount, step))
    }
}

/// The transfer codes of a chargeback's provisional credit and of its reversal.
pub const CHARGEBACK_CODE: u16 = 40;
pub const CHARGEBACK_REVERSAL_CODE: u16 = 41;
/// The purposes of their transfer ids, under the sale's key.
const CHARGEBACK: &str = "chargeback";
const CHARGEBACK_REVERSAL: &str = "chargeback-reversal";

impl TerminalHandler {
    /// A chargeback (`aftersale::disputes`): two linked transfers opposite the sale's (the
    /// card credited, the merchant's settlement debited), or, to reverse it, two opposite the
    /// chargeback's. Ids from the sale's key, so each step posts once.
    async fn post_chargeback(
        &self,
        sale: &SaleKey,
        amount: money::Amount,
        step: ChargebackStep,
    ) -> Result<Posting, PostError> {
        let key = key_of(sale);
        let (from, purpose, code) = match step {
            ChargebackStep::Credit => ("sale", CHARGEBACK, CHARGEBACK_CODE),
            ChargebackStep::Reverse => (CHARGEBACK, CHARGEBACK_REVERSAL, CHARGEBACK_REVERSAL_CODE),
        };
        let Some(original) = self.posted(&key, from, None).await.map_err(unavailable)? else {
            return Ok(refused(
                ResponseCode::UnableToLocateRecord,
                "what it undoes is not in the books",
            ));
        };
        if amount.currency() != original.issuer.amount.currency()
            || amount.minor() <= 0
            || amount.minor() > original.issuer.amount.minor()
        {
            return Ok(refused(
                ResponseCode::InvalidAmount,
                "the amount is not within the sale's",
            ));
        }
        let transfers = original.opposite(&key, purpose, amount, code, 0);
        match self.commit_follow_up(transfers).await {
            Ok(()) => Ok(Posting::Refunded),
            Err(ResponseCode::SystemMalfunction) => {
                Err(unavailable(ResponseCode::SystemMalfunction))
            }
            Err(code) => Ok(refused(code, "the ledger refused the chargeback")),
        }
    }

    async fn terminal_undo(&self, sale: &SaleKey) -> Result<TerminalUndo, PostError> {
        let key = key_of(sale);
        let posted = |purpose: &'static str| self.posted(&key, purpose, None);
        if posted("sale").await.map_err(unavailable)?.is_none()
            || posted("reversal").await.map_err(unavailable)?.is_some()
        {
            return Ok(TerminalUndo::NotPosted);
        }
        let Some(undo) = posted(UNDO).await.map_err(unavailable)? else {
            return Ok(TerminalUndo::Nothing);
        };
        let request = &undo.issuer.request;
        Ok(if request.user_data > u128::from(CONSOLE_REFUND_MARK) {
            TerminalUndo::Nothing
        } else if request.code == Undo::Void.code() {
            TerminalUndo::Voided
        } else {
            TerminalUndo::Refunded {
                amount_minor: undo.issuer.amount.minor(),
            }
        })
    }

    async fn console_refund(&self, part: &RefundPart) -> Result<Posting, PostError> {
        let started = std::time::Instant::now();
        let received_at = now_micros();
        let mut note = RiskNote::default();
        let posting = self.post_console_refund(part, &mut note).await?;
        let response = match &posting {
            Posting::Refunded => ResponseCode::Approved.code().to_owned(),
            Posting::Refused { response, .. } => response.clone(),
        };
        let entry = JournalEntry {
            received_at,
            duration_us: i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX),
            peer: CONSOLE_PEER.to_owned(),
            terminal_id: part.sale.terminal_id.clone(),
            merchant_id: part.sale.merchant_id.clone(),
            mti: "0220".to_owned(),
            kind: crate::message::MessageType::Refund.to_string(),
            amount_minor: Some(part.amount.minor()),
            currency: Some(i64::from(part.amount.currency().numeric())),
            card: part.card.clone(),
            original_batch: Some(i64::from(part.sale.batch)),
            original_stan: Some(i64::from(part.sale.stan)),
            response: Some(response),
            rrn: part.rrn.clone(),
            risk: note.rules,
            card_id: note.card_id,
            ..JournalEntry::default()
        };
        // The money has moved (or was refused) either way: a journal that cannot record it is
        // counted and logged, as for a terminal's message.
        if let Err(error) = self.store.journal(vec![entry]).await {
            self.counters
                .journal_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::error!(%error, refund = %part.refund_id, "console refund not journaled");
        }
        Ok(posting)
    }

    async fn post_console_refund(
        &self,
        part: &RefundPart,
        note: &mut RiskNote,
    ) -> Result<Posting, PostError> {
        let Some(terminal) = self.terminal(&part.sale.terminal_id) else {
            return Ok(refused(
                ResponseCode::NotPermittedToTerminal,
                "the sale's terminal is unknown to this host",
            ));
        };
        if terminal.merchant_id != part.sale.merchant_id {
            return Ok(refused(
                ResponseCode::InvalidMerchant,
                "the sale's terminal belongs to another merchant now",
            ));
        }
        let key = key_of(&part.sale);
        let Some(sale) = self.posted(&key, "sale", None).await.map_err(unavailable)? else {
            return Ok(refused(
                ResponseCode::UnableToLocateRecord,
                "the sale is not in the books",
            ));
        };
        let amount = part.amount;
        if amount.currency() != sale.issuer.amount.currency()
            || amount.minor() <= 0
            || amount.minor() > sale.issuer.amount.minor()
        {
            return Ok(refused(
                ResponseCode::InvalidAmount,
                "the amount is not within the sale's",
            ));
        }
        // Always to the card that paid: the card's account is one side of the sale's transfer.
        let card = match self.store.card_by_account(sale.issuer.debit).await {
            Ok(Some(card)) => Some(card),
            Ok(None) => self
                .store
                .card_by_account(sale.issuer.credit)
                .await
                .map_err(|error| PostError(error.to_string()))?,
            Err(error) => return Err(PostError(error.to_string())),
        };
        let Some(card) = card else {
            return Ok(refused(
                ResponseCode::UnableToLocateRecord,
                "the sale's card is not in this host's books",
            ));
        };
        note.card_id = Some(card.id.clone());
        let checked = UndoChecked {
            undo: Undo::Refund,
            terminal_id: &part.sale.terminal_id,
            terminal: &terminal,
            card: &card,
            amount_minor: amount.minor(),
            currency: amount.currency(),
            entry: None,
        };
        if let Err(code) = self.undo_checks(&checked, note) {
            let reason = note
                .rules
                .clone()
                .unwrap_or_else(|| "declined by the risk rules".to_owned());
            return Ok(refused(code, &reason));
        }
        let transfers = sale.opposite(
            &key,
            &purpose(part.seq),
            amount,
            Undo::Refund.code(),
            CONSOLE_REFUND_MARK.saturating_add(part.seq),
        );
        match self.commit_follow_up(transfers).await {
            Ok(()) => Ok(Posting::Refunded),
            Err(ResponseCode::SystemMalfunction) => {
                Err(unavailable(ResponseCode::SystemMalfunction))
            }
            Err(ResponseCode::InvalidTransaction) => Ok(refused(
                ResponseCode::InvalidTransaction,
                "the sale was voided or refunded at the terminal",
            )),
            Err(code) => Ok(refused(code, "the ledger refused the refund")),
        }
    }
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
