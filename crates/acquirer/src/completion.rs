//! Completion of a pre-authorization (预授权完成, 0200 with processing code 00, condition 06,
//! 60.1 = 20): the merchant captures up to the held amount. The pre-authorization is named by
//! field 61 (batch and trace number) and checked against field 38 (its auth code) and the card
//! presented; its hold is posted for the completion's amount (the rest is released) and the
//! merchant is credited, linked, with ids from the pre-authorization's key: at most one
//! completion per pre-authorization, a repeat of it answered 00 again, another one 12.

use crate::effects::{SaleAccounts, approval_codes, completion_transfers};
use crate::follow_up::currency;
use crate::handler::{TerminalHandler, TerminalRecord};
use crate::message::Request;
use crate::sale::Answer;
use iso8583::{Message, ResponseCode};
use money::Amount;
use store::directory::TerminalSession;

impl TerminalHandler {
    pub(crate) async fn completion(
        &self,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
        session: &TerminalSession,
    ) -> Option<Answer> {
        match self.complete(message, request, terminal, session).await {
            Ok(answer) => Some(answer),
            Err(code) => Answer::plain(message, code),
        }
    }

    async fn complete(
        &self,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
        session: &TerminalSession,
    ) -> Result<Answer, ResponseCode> {
        let original = self.original_key(message, request)?;
        let Ok(Some(hold)) = self
            .store
            .transfer(original.transfer_id("preauth/issuer"))
            .await
        else {
            return Err(ResponseCode::UnableToLocateRecord);
        };
        let (_, auth_code) = approval_codes(hold.id());
        if message.get(38).map(|value| value.to_text()) != Some(auth_code) {
            return Err(ResponseCode::UnableToLocateRecord);
        }
        let card = self.require_same_card(message, &hold).await?;
        let currency = currency(message)?;
        let amount_minor = request
            .amount_minor
            .and_then(|minor| i64::try_from(minor).ok())
            .ok_or(ResponseCode::InvalidAmount)?;
        let accounts = SaleAccounts {
            card: card.account,
            product: card.product,
            issuer_settlement: crate::chart::issuer_settlement(card.issuer, currency),
            acquirer_due_from_issuers: crate::chart::acquirer_due_from_issuers(
                terminal.acquirer,
                currency,
            ),
            merchant_payable: terminal.merchant_payable,
        };
        let transfers = completion_transfers(
            &original,
            &accounts,
            Amount::new(amount_minor, currency),
            request.stan,
        );
        self.commit_follow_up(transfers.clone()).await?;
        Ok(self.approval(message, transfers[0].id, None, session))
    }
}

impl TerminalHandler {
    /// Void of a pre-authorization (0100 with processing code 20, condition 06, 60.1 = 11): the
    /// hold named by field 61 and checked against field 37 (its RRN) and the card is released
    /// whole. Once completed, voided or lapsed it cannot be voided (12); a repeat of the same
    /// void gets 00 again.
    pub(crate) async fn preauthorization_void(
        &self,
        message: &Message<'_>,
        request: &Request,
        session: &TerminalSession,
    ) -> Option<Answer> {
        let code = match self.release_hold(message, request).await {
            Ok(code) | Err(code) => code,
        };
        let mac_key = code
            .is_approved()
            .then(|| session.mac_key.clone())
            .flatten();
        Some(Answer {
            message: crate::message::response_to(message, code)?,
            mac_key,
        })
    }

    async fn release_hold(
        &self,
        message: &Message<'_>,
        request: &Request,
    ) -> Result<ResponseCode, ResponseCode> {
        let original = self.original_key(message, request)?;
        let Ok(Some(hold)) = self
            .store
            .transfer(original.transfer_id("preauth/issuer"))
            .await
        else {
            return Err(ResponseCode::UnableToLocateRecord);
        };
        let (rrn, _) = approval_codes(hold.id());
        if message.get(37).map(|value| value.to_text()) != Some(rrn) {
            return Err(ResponseCode::UnableToLocateRecord);
        }
        self.require_same_card(message, &hold).await?;
        if request.amount_minor != Some(hold.amount.minor().unsigned_abs()) {
            return Err(ResponseCode::InvalidAmount);
        }
        let void =
            ledger::TransferRequest::void(original.transfer_id("preauth-void/issuer"), hold.id())
                .user_data(u128::from(request.stan));
        self.commit_follow_up(vec![void]).await?;
        Ok(ResponseCode::Approved)
    }
}
