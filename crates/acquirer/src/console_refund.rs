//! Refunds the console and the API make (issue 9, R9; `aftersale::refunds`), posted by the
//! terminal refund's own path (`undo.rs`): the same freezes and risk rules
//! ([`TerminalHandler::undo_checks`]), the same transfers turned round from the sale's
//! ([`crate::follow_up::Posted::opposite`], code 25), the same commit
//! ([`TerminalHandler::commit_follow_up`]), and a journal entry like a terminal refund's.
//!
//! A refund made this way may come in parts. Each part takes a slot of the sale's voids and
//! refunds (`undo/*`, `undo#1/*`…, `follow_up.rs`), the first free one, as a terminal's void or
//! refund does; its transfers carry [`CONSOLE_REFUND_MARK`] + the part number where a
//! terminal's carry its trace number, which names it in its slot (a part posted again finds its
//! own) and tells the two apart. So the sale is undone by the console or by the terminal, never
//! both: a terminal void or refund while a part stands gets 12; a part while a terminal void
//! stands is refused, and while a terminal refund stands it is posted beside it (`aftersale`
//! counts the terminal's amount as refunded, and the console's parts start at 2). A terminal
//! void or refund that was reversed stands no more. A part racing a terminal's message or
//! another part for one slot looks again when it loses. Parts 2 on that were posted before
//! parts took slots are under `undo/{n}/*`, and found there.

use crate::effects::{BusinessKey, FOLLOW_UP_SLOTS, in_slot};
use crate::follow_up::{REVERSAL_CLAIM, Slot};
use crate::handler::TerminalHandler;
use crate::sale::RiskNote;
use crate::undo::{UNDO, UNDO_REVERSAL, Undo, UndoChecked};
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
        let Some(posted) = self.posted(&key, "sale", None).await.map_err(unavailable)? else {
            return Ok(TerminalUndo::NotPosted);
        };
        if self.sale_reversed(&key).await.map_err(unavailable)? {
            return Ok(TerminalUndo::NotPosted);
        }
        let marks = self.marks_of(&sale.terminal_id, posted.issuer.amount.currency());
        let slots = self
            .slots(&key, UNDO, UNDO_REVERSAL, 0, "issuer", marks)
            .await
            .map_err(unavailable)?;
        // At most one terminal void or refund stands at a time; console parts stand beside a
        // terminal refund, and `aftersale` counts its own.
        for standing in &slots.standing {
            let user_data = standing.request.user_data;
            if user_data == REVERSAL_CLAIM {
                return Ok(TerminalUndo::NotPosted);
            }
            if user_data > u128::from(CONSOLE_REFUND_MARK) {
                continue;
            }
            return Ok(if standing.request.code == Undo::Void.code() {
                TerminalUndo::Voided
            } else {
                TerminalUndo::Refunded {
                    amount_minor: standing.amount.minor(),
                }
            });
        }
        Ok(TerminalUndo::Nothing)
    }

    /// The reversal-mark account of the books a slot of `terminal_id`'s sales is read in (a
    /// mark holds a slot with a transfer from it). A terminal this host does not know has no
    /// slots here: any account that is none of the chart's will do.
    fn marks_of(&self, terminal_id: &str, currency: money::Currency) -> ledger::AccountId {
        self.terminal(terminal_id)
            .map(|terminal| crate::chart::reversal_marks(terminal.acquirer, currency).0)
            .unwrap_or(ledger::AccountId(0))
    }

    /// The slot a console refund part (`user_data`: [`CONSOLE_REFUND_MARK`] + its number) posts
    /// in, and whether it is its own: its own again when it was posted before, else the first
    /// free one — unless a terminal void, or the sale's reversal, stands there (a terminal
    /// refund may stand: `aftersale` counted its amount).
    async fn console_slot(
        &self,
        key: &BusinessKey,
        user_data: u32,
        marks: ledger::AccountId,
    ) -> Result<Result<(String, bool), Posting>, PostError> {
        let slots = self
            .slots(key, UNDO, UNDO_REVERSAL, user_data, "issuer", marks)
            .await
            .map_err(unavailable)?;
        match slots.mine {
            Some((generation, Slot::Posted { .. })) => {
                return Ok(Ok((in_slot(UNDO, generation), true)));
            }
            Some((_, Slot::Marked)) => {
                return Ok(Err(refused(
                    ResponseCode::DuplicateTransmission,
                    "the refund part's slot is marked reversed",
                )));
            }
            None => {}
        }
        for standing in &slots.standing {
            let user_data = standing.request.user_data;
            if user_data == REVERSAL_CLAIM {
                return Ok(Err(refused(
                    ResponseCode::UnableToLocateRecord,
                    "the sale was reversed",
                )));
            }
            if user_data <= u128::from(CONSOLE_REFUND_MARK)
                && standing.request.code == Undo::Void.code()
            {
                return Ok(Err(refused(
                    ResponseCode::InvalidTransaction,
                    "the sale was voided at the terminal",
                )));
            }
        }
        if slots.free >= FOLLOW_UP_SLOTS {
            return Ok(Err(refused(
                ResponseCode::InvalidTransaction,
                "the sale has taken all the voids and refunds it may",
            )));
        }
        Ok(Ok((in_slot(UNDO, slots.free), false)))
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
            // The number its transfers carry, by which clearing finds its slot: above any
            // terminal's trace number (and no batch: the console has none).
            stan: Some(i64::from(CONSOLE_REFUND_MARK.saturating_add(part.seq))),
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
        let user_data = CONSOLE_REFUND_MARK.saturating_add(part.seq);
        // A part posted before refunds took slots (parts 2 on had `undo/{seq}/*`) is there.
        if part.seq > 1
            && self
                .posted(&key, &format!("{UNDO}/{}", part.seq), Some(user_data))
                .await
                .map_err(unavailable)?
                .is_some()
        {
            return Ok(Posting::Refunded);
        }
        let marks = crate::chart::reversal_marks(terminal.acquirer, amount.currency()).0;
        // Two parts (or a part and a terminal's void or refund) that saw the same slot free race
        // for it: the loser looks again, and takes the next one or finds what stands.
        for _ in 0..FOLLOW_UP_SLOTS {
            let (slot, own) = match self.console_slot(&key, user_data, marks).await? {
                Ok(slot) => slot,
                Err(refusal) => return Ok(refusal),
            };
            let transfers = sale.opposite(&key, &slot, amount, Undo::Refund.code(), user_data);
            match self.commit_follow_up(transfers).await {
                Ok(()) => return Ok(Posting::Refunded),
                Err(ResponseCode::SystemMalfunction) => {
                    return Err(unavailable(ResponseCode::SystemMalfunction));
                }
                Err(ResponseCode::InvalidTransaction) if !own => continue,
                Err(code) => return Ok(refused(code, "the ledger refused the refund")),
            }
        }
        Ok(refused(
            ResponseCode::InvalidTransaction,
            "the sale was voided or refunded at the terminal",
        ))
    }
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
