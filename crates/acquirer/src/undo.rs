//! Undoing a sale on the merchant's initiative: a void (消费撤销, 0200 with processing code 20
//! and 60.1 = 23) cancels it in the open batch, for its whole amount; a refund (退货, 0220 with
//! 60.1 = 25) gives back up to its amount, to the same card, later.
//!
//! The original is named by field 61 (its batch and trace number) and checked against field 37
//! (its RRN), the card presented and the amount. Its two transfers are undone by two linked
//! transfers in the opposite direction, for the amount given. Void and refund share the same
//! transfer ids, derived from the original's key, and differ in their code: a sale is voided or
//! refunded once, never both, even when the two race on two hosts. The message's own trace
//! number travels in the transfers, so a repeat of the same void or refund gets 00 again, and
//! any other undo of the same sale gets 12.

use crate::effects::approval_codes;
use crate::handler::TerminalHandler;
use crate::keys::MessageKeys;
use crate::message::Request;
use crate::sale::Answer;
use iso8583::{Message, ResponseCode};

/// How a sale is undone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Undo {
    Void,
    Refund,
}

/// The purpose of a void's or refund's transfers (they share ids: a sale is undone once).
pub(crate) const UNDO: &str = "undo";

impl Undo {
    /// The transfer code that tells a void from a refund in the books.
    fn code(self) -> u16 {
        match self {
            Undo::Void => 23,
            Undo::Refund => 25,
        }
    }
}

impl TerminalHandler {
    pub(crate) async fn undo(
        &self,
        undo: Undo,
        message: &Message<'_>,
        request: &Request,
        keys: &MessageKeys,
    ) -> Option<Answer> {
        Answer::follow_up(message, self.undo_code(undo, message, request).await, keys)
    }

    async fn undo_code(
        &self,
        undo: Undo,
        message: &Message<'_>,
        request: &Request,
    ) -> Result<ResponseCode, ResponseCode> {
        let original = self.original_key(message, request)?;
        let Some(sale) = self.posted(&original, "sale", None).await? else {
            return Err(ResponseCode::UnableToLocateRecord);
        };
        let issuer = &sale.issuer;
        self.require_same_card(message, issuer).await?;
        let (rrn, _) = approval_codes(issuer.id());
        if message.get(37).map(|value| value.to_text()) != Some(rrn) {
            return Err(ResponseCode::UnableToLocateRecord);
        }
        let amount_minor = request
            .amount_minor
            .and_then(|minor| i64::try_from(minor).ok())
            .ok_or(ResponseCode::InvalidAmount)?;
        let within = match undo {
            Undo::Void => amount_minor == issuer.amount.minor(),
            Undo::Refund => amount_minor > 0 && amount_minor <= issuer.amount.minor(),
        };
        if !within {
            return Err(ResponseCode::InvalidAmount);
        }
        let amount = money::Amount::new(amount_minor, issuer.amount.currency());
        let transfers = sale.opposite(&original, UNDO, amount, undo.code(), request.stan);
        match undo {
            // A void cancels the purchase: its day's spend is given back. A refund is money
            // returned later, not a purchase undone.
            Undo::Void => {
                self.commit_follow_up_giving_back(transfers, &sale.issuer, amount_minor)
                    .await?
            }
            Undo::Refund => self.commit_follow_up(transfers).await?,
        }
        Ok(ResponseCode::Approved)
    }
}
