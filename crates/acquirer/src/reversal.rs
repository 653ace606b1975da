//! Reversal (冲正, 0400, repeated as 0401): the terminal undoes a message whose answer it did
//! not get. The original is found by its business key — a reversal carries the original's
//! trace number (field 11) and batch (60.2) — and, if it was posted, exactly its effect is
//! undone with two linked transfers in the opposite direction, whose ids come from the same
//! key: a repeated reversal finds them and changes nothing. A reversal of something that was
//! never posted is answered 00 with nothing to undo.
//!
//! A reversal that overtakes its original (the original is late, or lost and repeated later)
//! leaves a mark: a 1-unit hold between the acquirer's two reversal-mark accounts, voided at
//! once, whose id is the original's acquirer transfer id. The original, arriving later, finds
//! its id taken, and its linked transfers are refused as one: it can never post after its
//! reversal. If the original posts between the reversal's look-up and its mark, the mark is
//! refused instead and the reversal undoes the original after all.
//!
//! Not yet done: the card's spend of the day is not given back by a reversal.

use crate::effects::BusinessKey;
use crate::handler::{TerminalHandler, TerminalRecord};
use crate::message::{Request, response_to};
use crate::sale::Answer;
use iso8583::{Message, ResponseCode};
use ledger::{Outcome, TransferError, TransferKind, TransferRequest};
use money::Amount;
use store::directory::TerminalSession;

/// 60.1 of the sale, the only original that can have been posted so far.
const SALE_TYPE: &str = "22";

impl TerminalHandler {
    pub(crate) async fn reversal(
        &self,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
        session: &TerminalSession,
    ) -> Option<Answer> {
        let answer = |code| {
            Some(Answer {
                message: response_to(message, code)?,
                mac_key: session.mac_key.clone(),
            })
        };
        if self.profile.subfield_text(message, 60, 1).as_deref() != Some(SALE_TYPE) {
            // Nothing but sales is posted yet: there is nothing to undo.
            return answer(ResponseCode::Approved);
        }
        let key = BusinessKey {
            terminal_id: request.terminal_id.clone(),
            batch: request.batch,
            stan: request.stan,
        };
        let issuer_id = key.transfer_id("sale/issuer");
        let acquirer_id = key.transfer_id("sale/acquirer");
        let (issuer, acquirer) = match (
            self.store.transfer(issuer_id).await,
            self.store.transfer(acquirer_id).await,
        ) {
            (Ok(Some(issuer)), Ok(Some(acquirer))) => (issuer, acquirer),
            (Ok(None), Ok(None) | Ok(Some(_))) => {
                // Never posted (or already marked by an earlier reversal): mark it so it never
                // can be.
                return match self.mark_reversed(message, &key, terminal).await {
                    Ok(Marked::Now | Marked::Before) => answer(ResponseCode::Approved),
                    Ok(Marked::OriginalPostedMeanwhile) => {
                        Box::pin(self.reversal(message, request, terminal, session)).await
                    }
                    Err(code) => answer(code),
                };
            }
            _ => return answer(ResponseCode::SystemMalfunction),
        };
        if !matches!(issuer.request.kind, TransferKind::Posted { .. })
            || request.amount_minor != Some(issuer.amount.minor().unsigned_abs())
        {
            tracing::warn!(terminal = %request.terminal_id, stan = request.stan, "reversal does not match its original");
            return answer(ResponseCode::InvalidAmount);
        }
        let undo = vec![
            TransferRequest::posted(
                key.transfer_id("reversal/issuer"),
                issuer.credit,
                issuer.debit,
                issuer.amount,
            )
            .linked(),
            TransferRequest::posted(
                key.transfer_id("reversal/acquirer"),
                acquirer.credit,
                acquirer.debit,
                acquirer.amount,
            ),
        ];
        match self.commit_follow_up(undo).await {
            Ok(()) => answer(ResponseCode::Approved),
            Err(code) => {
                tracing::error!(response = code.code(), "reversal transfers refused");
                answer(code)
            }
        }
    }
}

/// What leaving a reversal mark found.
enum Marked {
    Now,
    Before,
    OriginalPostedMeanwhile,
}

impl TerminalHandler {
    async fn mark_reversed(
        &self,
        message: &Message<'_>,
        key: &BusinessKey,
        terminal: &TerminalRecord,
    ) -> Result<Marked, ResponseCode> {
        let currency = crate::follow_up::currency(message)?;
        let (debit, credit) = crate::chart::reversal_marks(terminal.acquirer, currency);
        let original = key.transfer_id("sale/acquirer");
        let mark = vec![
            TransferRequest::pending(original, debit, credit, Amount::new(1, currency), 0).linked(),
            TransferRequest::void(key.transfer_id("reversal/mark"), original),
        ];
        let results = self
            .store
            .submit(mark)
            .await
            .map_err(|_| ResponseCode::SystemMalfunction)?;
        match results.as_slice() {
            [Ok(Outcome::Created(_)), Ok(_)] => Ok(Marked::Now),
            [Ok(Outcome::AlreadyExists(_)), Ok(_)] => Ok(Marked::Before),
            [Err(TransferError::ExistsWithDifferentContent), _] => {
                Ok(Marked::OriginalPostedMeanwhile)
            }
            other => {
                tracing::error!(?other, "reversal mark refused");
                Err(ResponseCode::SystemMalfunction)
            }
        }
    }
}
