//! Completion of a pre-authorization (预授权完成, 0200 with processing code 00, condition 06,
//! 60.1 = 20): the merchant captures up to the held amount. The pre-authorization is named by
//! field 61 (batch and trace number) and checked against field 38 (its auth code) and the card
//! presented; its hold is posted for the completion's amount (the rest is released) and the
//! merchant is credited, linked, with ids from the pre-authorization's key: at most one
//! completion per pre-authorization, a repeat of it answered 00 again, another one 12.

use crate::effects::{
    BusinessKey, FOLLOW_UP_SLOTS, SaleAccounts, approval_codes, completion_transfers, in_slot,
};
use crate::follow_up::{Slot, currency};
use crate::handler::{TerminalHandler, TerminalRecord};
use crate::keys::MessageKeys;
use crate::message::{MessageType, Request};
use crate::sale::Answer;
use iso8583::{Message, ResponseCode};
use money::Amount;

impl TerminalHandler {
    pub(crate) async fn completion(
        &self,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
        keys: &MessageKeys,
    ) -> Option<Answer> {
        match self.complete(message, request, terminal, keys).await {
            Ok(answer) => Some(answer),
            Err(code) => Answer::plain(message, code),
        }
    }

    async fn complete(
        &self,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
        keys: &MessageKeys,
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
        let slot = self
            .follow_up_slot(
                message,
                &original,
                COMPLETION,
                COMPLETION_REVERSAL,
                request.stan,
                terminal.acquirer,
            )
            .await?;
        let hold = self.current_hold(&original).await?;
        let transfers = completion_transfers(
            &original,
            &slot,
            hold,
            &accounts,
            Amount::new(amount_minor, currency),
            request.stan,
        );
        self.commit_follow_up(transfers.clone()).await?;
        Ok(self.approval(message, transfers[0].id, None, keys))
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
        keys: &MessageKeys,
    ) -> Option<Answer> {
        Answer::follow_up(message, self.release_hold(message, request).await, keys)
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
        let current = self.current_hold(&original).await?;
        let void =
            ledger::TransferRequest::void(original.transfer_id("preauth-void/issuer"), current)
                .user_data(u128::from(request.stan));
        self.commit_follow_up_giving_back(vec![void], &hold, hold.amount.minor())
            .await?;
        Ok(ResponseCode::Approved)
    }
}

/// The purposes of a completion's and a completion void's transfers, under the
/// pre-authorization's key.
pub(crate) const COMPLETION: &str = "completion";
pub(crate) const COMPLETION_VOID: &str = "completion-void";
/// The purposes of their reversals' transfers.
pub(crate) const COMPLETION_REVERSAL: &str = "completion-reversal";
pub(crate) const COMPLETION_VOID_REVERSAL: &str = "completion-void-reversal";

/// The purpose, under the pre-authorization's key, of the hold a completion's reversal places
/// again, in the completion's slot (`completion-reversal/hold`, `completion-reversal#1/hold`…).
const HOLD_AGAIN: &str = "hold";

/// The id of the hold the reversal of the completion in slot `generation` places again.
fn hold_again_id(original: &BusinessKey, generation: u32) -> ledger::TransferId {
    original.transfer_id(&format!(
        "{}/{HOLD_AGAIN}",
        in_slot(COMPLETION_REVERSAL, generation)
    ))
}

impl TerminalHandler {
    /// The hold a completion of the pre-authorization `original` posts, or its void releases,
    /// now: the pre-authorization's own, or — after a completion that posted it was reversed —
    /// the one that reversal placed again (the latest: slots fill in order).
    pub(crate) async fn current_hold(
        &self,
        original: &BusinessKey,
    ) -> Result<ledger::TransferId, ResponseCode> {
        let lookup = |id| async move {
            self.store
                .transfer(id)
                .await
                .map_err(|_| ResponseCode::SystemMalfunction)
        };
        let mut hold = original.transfer_id("preauth/issuer");
        for generation in 0..FOLLOW_UP_SLOTS {
            let slot = in_slot(COMPLETION, generation);
            if lookup(original.transfer_id(&format!("{slot}/issuer")))
                .await?
                .is_none()
            {
                break;
            }
            let again = hold_again_id(original, generation);
            if lookup(again).await?.is_some() {
                hold = again;
            }
        }
        Ok(hold)
    }

    /// The hold the reversal of `completion` (posted in slot `generation` of `original`) places
    /// again, so the pre-authorization can be completed again, as if the completion had never
    /// been: the hold it posted, for the time it had left when it was posted. None when that hold
    /// had lapsed by then, or is not in these books.
    pub(crate) async fn hold_again(
        &self,
        original: &BusinessKey,
        generation: u32,
        completion: &ledger::Transfer,
    ) -> Result<Option<ledger::TransferRequest>, ResponseCode> {
        let ledger::TransferKind::PostPending { pending_id, .. } = completion.request.kind else {
            return Ok(None);
        };
        let Some(hold) = self
            .store
            .transfer(pending_id)
            .await
            .map_err(|_| ResponseCode::SystemMalfunction)?
        else {
            return Ok(None);
        };
        let timeout_seconds = match hold.expires_at {
            None => 0,
            Some(expires_at) if expires_at <= completion.timestamp => return Ok(None),
            Some(expires_at) => u32::try_from(
                (expires_at - completion.timestamp).div_ceil(ledger::NANOS_PER_SECOND),
            )
            .unwrap_or(u32::MAX),
        };
        Ok(Some(ledger::TransferRequest::pending(
            hold_again_id(original, generation),
            hold.debit,
            hold.credit,
            hold.amount,
            timeout_seconds,
        )))
    }

    /// The pre-authorization a completion (named by its own batch and trace number, as a
    /// completion void's field 61 names it) completed, from the journal.
    pub(crate) async fn completed_preauthorization(
        &self,
        completion: &BusinessKey,
    ) -> Result<BusinessKey, ResponseCode> {
        let entries = self
            .journal_of_message(completion)
            .await
            .map_err(|_| ResponseCode::SystemMalfunction)?;
        let completion_kind = MessageType::PreAuthorizationCompletion.to_string();
        entries
            .iter()
            .rev()
            .find(|entry| entry.kind == completion_kind && entry.response.as_deref() == Some("00"))
            .and_then(|entry| {
                Some(BusinessKey {
                    terminal_id: completion.terminal_id.clone(),
                    batch: u32::try_from(entry.original_batch?).ok()?,
                    stan: u32::try_from(entry.original_stan?).ok()?,
                })
            })
            .ok_or(ResponseCode::UnableToLocateRecord)
    }

    /// Void of a completion (预授权完成撤销, 0200 with processing code 20, condition 06, 60.1 =
    /// 21): field 61 names the completion, checked against field 37 (its RRN), the card and
    /// its whole amount; the completion's two transfers are undone, linked, once.
    pub(crate) async fn completion_void(
        &self,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
        keys: &MessageKeys,
    ) -> Option<Answer> {
        Answer::follow_up(
            message,
            self.void_completion(message, request, terminal).await,
            keys,
        )
    }

    async fn void_completion(
        &self,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
    ) -> Result<ResponseCode, ResponseCode> {
        let completion_key = self.original_key(message, request)?;
        let preauthorization = self.completed_preauthorization(&completion_key).await?;
        let (marks, _) = crate::chart::reversal_marks(terminal.acquirer, currency(message)?);
        let completed = self
            .slots(
                &preauthorization,
                COMPLETION,
                COMPLETION_REVERSAL,
                completion_key.stan,
                "issuer",
                marks,
            )
            .await?;
        // A completion reversed (or never posted) has nothing left to void.
        let Some((
            _,
            Slot::Posted {
                posted: completion,
                reversed: false,
            },
        )) = completed.mine
        else {
            return Err(ResponseCode::UnableToLocateRecord);
        };
        let (rrn, _) = approval_codes(completion.issuer.id());
        if message.get(37).map(|value| value.to_text()) != Some(rrn) {
            return Err(ResponseCode::UnableToLocateRecord);
        }
        self.require_same_card(message, &completion.issuer).await?;
        if request.amount_minor != Some(completion.issuer.amount.minor().unsigned_abs()) {
            return Err(ResponseCode::InvalidAmount);
        }
        let slot = self
            .follow_up_slot(
                message,
                &preauthorization,
                COMPLETION_VOID,
                COMPLETION_VOID_REVERSAL,
                request.stan,
                terminal.acquirer,
            )
            .await?;
        let transfers = completion.opposite(
            &preauthorization,
            &slot,
            completion.issuer.amount,
            COMPLETION_VOID_CODE,
            request.stan,
        );
        self.commit_follow_up(transfers).await?;
        Ok(ResponseCode::Approved)
    }
}

/// The transfer code of a completion void (its 60.1).
const COMPLETION_VOID_CODE: u16 = 21;
