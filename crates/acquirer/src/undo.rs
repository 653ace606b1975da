//! Undoing a sale on the merchant's initiative: a void (消费撤销, 0200 with processing code 20
//! and 60.1 = 23) cancels it in the open batch, for its whole amount; a refund (退货, 0220 with
//! 60.1 = 25) gives back up to its amount, to the same card, later.
//!
//! The original is named by field 61 (its batch and trace number) and checked against field 37
//! (its RRN), the card presented and the amount. Its two transfers are undone by two linked
//! transfers in the opposite direction, for the amount given. Void and refund share the same
//! slots of transfer ids under the original's key (`undo/*`, then `undo#1/*`…: `follow_up.rs`,
//! and `reversal.rs` for why slots) and differ in their code: at any time a sale is undone by at
//! most one void or refund, never both, even when the two race on two hosts. The message's own
//! trace number travels in the transfers and names it in its slot, so a repeat of the same void
//! or refund gets 00 again while it stands and 94 once it was reversed (it never posts again),
//! and any other undo of the same sale gets 12 while one stands. A void or refund reversed frees
//! the sale: a next one, under a new trace number, takes the next slot. A refund may be partial;
//! one stands at a time.

use crate::effects::{BusinessKey, approval_codes};
use crate::handler::{TerminalHandler, TerminalRecord};
use crate::keys::MessageKeys;
use crate::message::Request;
use crate::sale::{Answer, RiskNote};
use iso8583::{Message, ResponseCode};

/// How a sale is undone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Undo {
    Void,
    Refund,
}

/// The purpose of a void's or refund's transfers (they share ids: a sale is undone once).
pub(crate) const UNDO: &str = "undo";
/// The purpose of a reversal's transfers that undo a void or refund.
pub(crate) const UNDO_REVERSAL: &str = "undo-reversal";

impl Undo {
    /// The transfer code that tells a void from a refund in the books.
    pub(crate) fn code(self) -> u16 {
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
        terminal: &TerminalRecord,
        keys: &MessageKeys,
    ) -> Option<Answer> {
        let mut note = RiskNote::default();
        // The supervisor's password first: nothing is looked up for an undo nobody allowed.
        let code = match self
            .check_supervisor(message, request.terminal_id.trim(), terminal, keys)
            .await
        {
            Ok(supervisor) => {
                let code = self
                    .undo_code(undo, message, request, terminal, &mut note)
                    .await;
                if let (Some(supervisor), Ok(_)) = (&supervisor, &code) {
                    self.watch_supervisor(
                        &terminal.merchant_id,
                        request.terminal_id.trim(),
                        supervisor,
                    );
                }
                code
            }
            Err(code) => {
                note.rules = Some("supervisor password refused".into());
                Err(code)
            }
        };
        let mut answer = Answer::follow_up(message, code, keys);
        if let Some(answer) = answer.as_mut() {
            answer.risk = note.rules;
            answer.card_id = note.card_id;
        }
        answer
    }

    async fn undo_code(
        &self,
        undo: Undo,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
        note: &mut RiskNote,
    ) -> Result<ResponseCode, ResponseCode> {
        let original = self.original_key(message, request)?;
        let Some(sale) = self.posted(&original, "sale", None).await? else {
            return Err(ResponseCode::UnableToLocateRecord);
        };
        // A sale its terminal reversed does not stand: there is nothing left to give back (its
        // reversal gave the card its money back already).
        if self.sale_reversed(&original).await? {
            tracing::warn!(terminal = %request.terminal_id, stan = request.stan, "void or refund of a reversed sale refused");
            return Err(ResponseCode::UnableToLocateRecord);
        }
        let issuer = &sale.issuer;
        let card = self.require_same_card(message, issuer).await?;
        note.card_id = Some(card.id.clone());
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
        self.undo_allowed(undo, message, request, terminal, &card, amount_minor, note)?;
        let amount = money::Amount::new(amount_minor, issuer.amount.currency());
        let posted = async {
            let slot = self
                .follow_up_slot(
                    message,
                    &original,
                    UNDO,
                    UNDO_REVERSAL,
                    request.stan,
                    terminal.acquirer,
                )
                .await?;
            let transfers = sale.opposite(&original, &slot, amount, undo.code(), request.stan);
            match undo {
                // A void cancels the purchase: its day's spend is given back. A refund is money
                // returned later, not a purchase undone.
                Undo::Void => {
                    self.commit_follow_up_giving_back(transfers, &sale.issuer, amount_minor)
                        .await
                }
                Undo::Refund => self.commit_follow_up(transfers).await,
            }
        };
        match posted.await {
            Ok(()) => Ok(ResponseCode::Approved),
            // The sale's reversal took the slot (it raced this undo, `reversal.rs`): the sale
            // does not stand any more.
            Err(ResponseCode::InvalidTransaction) if self.sale_reversed(&original).await? => {
                tracing::warn!(terminal = %request.terminal_id, stan = request.stan, "void or refund of a sale reversed meanwhile refused");
                Err(ResponseCode::UnableToLocateRecord)
            }
            Err(code) => Err(code),
        }
    }

    /// Whether the sale under `original` was reversed (its reversal's transfers are posted).
    pub(crate) async fn sale_reversed(&self, original: &BusinessKey) -> Result<bool, ResponseCode> {
        self.store
            .transfer(original.transfer_id("reversal/issuer"))
            .await
            .map(|reversal| reversal.is_some())
            .map_err(|_| ResponseCode::SystemMalfunction)
    }

    /// The freezes and the risk rules for a void or refund, as for a sale (`sale.rs`, steps 1½
    /// and 3½): a frozen terminal or merchant answers 58, a frozen card 62, a merchant whose
    /// refunds are frozen 58 for a refund; a declining rule its own code. Nothing is posted
    /// then. In memory only: no store read on this path.
    #[allow(clippy::too_many_arguments)] // the message's parts, already parsed by the caller
    fn undo_allowed(
        &self,
        undo: Undo,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
        card: &store::directory::Card,
        amount_minor: i64,
        note: &mut RiskNote,
    ) -> Result<(), ResponseCode> {
        let entry = message
            .get(22)
            .map(|value| value.to_text())
            .unwrap_or_default();
        let currency = crate::follow_up::currency(message)?;
        let checked = UndoChecked {
            undo,
            terminal_id: request.terminal_id.trim(),
            terminal,
            card,
            amount_minor,
            currency,
            entry: entry.get(..2),
        };
        self.undo_checks(&checked, note)
    }

    /// [`TerminalHandler::undo_allowed`]'s checks, for a refund the console makes too
    /// (`console_refund.rs`).
    pub(crate) fn undo_checks(
        &self,
        checked: &UndoChecked<'_>,
        note: &mut RiskNote,
    ) -> Result<(), ResponseCode> {
        let UndoChecked {
            undo,
            terminal_id,
            terminal,
            card,
            amount_minor,
            currency,
            entry,
        } = *checked;
        if let Some(code) = self.frozen(terminal_id, terminal, &card.id, note) {
            return Err(code);
        }
        if undo == Undo::Refund && self.freezes.refunds_frozen(&terminal.merchant_id) {
            note.rules = Some("frozen refunds".to_owned());
            return Err(ResponseCode::NotPermittedToTerminal);
        }
        let Some(gate) = &self.risk else {
            return Ok(());
        };
        let input = risk::Authorization {
            kind: match undo {
                Undo::Void => risk::Kind::Void,
                Undo::Refund => risk::Kind::Refund,
            },
            card: &card.id,
            terminal: terminal_id,
            merchant: &terminal.merchant_id,
            amount_minor,
            currency,
            card_currency: card.currency,
            mcc: terminal.mcc,
            entry: crate::sale::risk_entry(entry),
            chip_card: false,
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let assessment = gate.engine.evaluate(&input, now_ms);
        self.report_case(
            &assessment,
            &terminal.merchant_id,
            terminal_id,
            &card.id,
            now_ms,
        );
        if !assessment.fired.is_empty() {
            note.rules = Some(assessment.summary());
        }
        match assessment.decline_code() {
            Some(code) => {
                Err(ResponseCode::parse(code.as_str()).unwrap_or(ResponseCode::DoNotHonor))
            }
            None => Ok(()),
        }
    }
}

/// What a void or refund is checked on before it is given back.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UndoChecked<'a> {
    pub undo: Undo,
    pub terminal_id: &'a str,
    pub terminal: &'a TerminalRecord,
    pub card: &'a store::directory::Card,
    pub amount_minor: i64,
    pub currency: money::Currency,
    /// Field 22's first two digits; `None` for a refund made without the card (the console).
    pub entry: Option<&'a str>,
}
