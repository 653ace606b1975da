//! Void of a sale (消费撤销, 0200 with processing code 20 and 60.1 = 23): the merchant cancels a
//! sale of the open batch. The original is named by field 61 (its batch and trace number) and
//! checked against field 37 (its RRN), its card and its amount; its two transfers are undone by
//! two linked transfers in the opposite direction whose ids come from the original's key, so a
//! sale is voided at most once. The void message's own trace number travels in the transfers,
//! so a repeat of the same void gets 00 again, and another void of the same sale gets 12.

use crate::effects::{BusinessKey, approval_codes};
use crate::handler::TerminalHandler;
use crate::message::{Request, response_to};
use crate::sale::Answer;
use iso8583::{Message, ResponseCode};
use ledger::{Outcome, TransferError, TransferRequest};
use store::directory::TerminalSession;

impl TerminalHandler {
    pub(crate) async fn void(
        &self,
        message: &Message<'_>,
        request: &Request,
        session: &TerminalSession,
    ) -> Option<Answer> {
        let code = match self.void_code(message, request).await {
            Ok(code) | Err(code) => code,
        };
        let mac_key = code
            .is_approved()
            .then(|| session.mac_key.clone())
            .flatten();
        Some(Answer {
            message: response_to(message, code)?,
            mac_key,
        })
    }

    async fn void_code(
        &self,
        message: &Message<'_>,
        request: &Request,
    ) -> Result<ResponseCode, ResponseCode> {
        let original_batch = self
            .profile
            .subfield_text(message, 61, 1)
            .and_then(|text| text.parse::<u32>().ok())
            .ok_or(ResponseCode::FormatError)?;
        let original_stan = self
            .profile
            .subfield_text(message, 61, 2)
            .and_then(|text| text.parse::<u32>().ok())
            .ok_or(ResponseCode::FormatError)?;
        let original = BusinessKey {
            terminal_id: request.terminal_id.clone(),
            batch: original_batch,
            stan: original_stan,
        };
        let lookup = |purpose| self.store.transfer(original.transfer_id(purpose));
        let (Ok(Some(issuer)), Ok(Some(acquirer))) =
            (lookup("sale/issuer").await, lookup("sale/acquirer").await)
        else {
            return Err(ResponseCode::UnableToLocateRecord);
        };
        // The card presented must be the sale's.
        let (_, card) = self
            .find_card(message, &self.fingerprint_key().await?)
            .await?;
        if card.account != issuer.debit && card.account != issuer.credit {
            return Err(ResponseCode::UnableToLocateRecord);
        }
        let (rrn, _) = approval_codes(issuer.id());
        if message.get(37).map(|value| value.to_text()) != Some(rrn) {
            return Err(ResponseCode::UnableToLocateRecord);
        }
        if request.amount_minor != Some(issuer.amount.minor().unsigned_abs()) {
            return Err(ResponseCode::InvalidAmount);
        }
        let void_stan = u128::from(request.stan);
        let undo = vec![
            TransferRequest::posted(
                original.transfer_id("void/issuer"),
                issuer.credit,
                issuer.debit,
                issuer.amount,
            )
            .user_data(void_stan)
            .linked(),
            TransferRequest::posted(
                original.transfer_id("void/acquirer"),
                acquirer.credit,
                acquirer.debit,
                acquirer.amount,
            )
            .user_data(void_stan),
        ];
        let results = self
            .store
            .submit(undo)
            .await
            .map_err(|_| ResponseCode::SystemMalfunction)?;
        let refused = results
            .iter()
            .filter_map(|result| result.as_ref().err())
            .find(|error| **error != TransferError::LinkedEventFailed);
        match refused {
            None if results.iter().all(|result| {
                matches!(result, Ok(Outcome::Created(_) | Outcome::AlreadyExists(_)))
            }) =>
            {
                Ok(ResponseCode::Approved)
            }
            Some(TransferError::ExistsWithDifferentContent) => {
                Err(ResponseCode::InvalidTransaction)
            }
            _ => Err(ResponseCode::SystemMalfunction),
        }
    }
}
