//! Reversal (冲正, 0400, repeated as 0401): the terminal undoes a message whose answer it did
//! not get. The original is found by its business key — a reversal carries the original's
//! trace number (field 11) and batch (60.2) — and, if it was posted, exactly its effect is
//! undone with two linked transfers in the opposite direction, whose ids come from the same
//! key: a repeated reversal finds them and changes nothing. A reversal of something that was
//! never posted is answered 00 with nothing to undo.
//!
//! Not yet closed: a reversal that overtakes its original (the original arrives later) does not
//! stop the original; and the card's spend of the day is not given back.

use crate::effects::BusinessKey;
use crate::handler::TerminalHandler;
use crate::message::{Request, response_to};
use crate::sale::Answer;
use iso8583::{Message, ResponseCode};
use ledger::{Outcome, TransferKind, TransferRequest};
use store::directory::TerminalSession;

/// 60.1 of the sale, the only original that can have been posted so far.
const SALE_TYPE: &str = "22";

impl TerminalHandler {
    pub(crate) async fn reversal(
        &self,
        message: &Message<'_>,
        request: &Request,
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
            (Ok(None), Ok(None)) => {
                tracing::info!(terminal = %request.terminal_id, stan = request.stan, "reversal of a sale that was never posted");
                return answer(ResponseCode::Approved);
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
        match self.store.submit(undo).await {
            Ok(results)
                if results.iter().all(|result| {
                    matches!(result, Ok(Outcome::Created(_) | Outcome::AlreadyExists(_)))
                }) =>
            {
                answer(ResponseCode::Approved)
            }
            Ok(results) => {
                tracing::error!(?results, "reversal transfers refused");
                answer(ResponseCode::SystemMalfunction)
            }
            Err(error) => {
                tracing::error!(%error, "reversal could not be committed");
                answer(ResponseCode::SystemMalfunction)
            }
        }
    }
}
