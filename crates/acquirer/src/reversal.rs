//! Reversal (冲正, 0400, repeated as 0401): the terminal undoes a message whose answer it did
//! not get. A reversal carries the reversed message's trace number (field 11), batch (60.2)
//! and transaction type (60.1); a reversal of a follow-up also carries the follow-up's field
//! 61, naming the follow-up's own original. Whatever the reversed message posted is undone
//! exactly once, with ids from the same keys, so a repeated reversal changes nothing:
//!
//! | 60.1 | reversed message | undone by |
//! |---|---|---|
//! | 22 | sale | two transfers opposite the sale's (`reversal/*`) |
//! | 10 | pre-authorization | the hold voided (`reversal/issuer`) |
//! | 23, 25 | void, refund | two transfers opposite the undo's (`undo-reversal/*`) |
//! | 20 | pre-authorization completion | two transfers opposite the completion's, and its hold placed again |
//! | 21 | completion void | two transfers opposite the completion void's |
//! | 11 | pre-authorization void | nothing: a released hold is not held again |
//! | 01 | balance inquiry | nothing: it moved nothing |
//!
//! A reversal of something that was never posted is answered 00 with nothing to undo. A
//! reversal that overtakes its original (the original is late, or lost and repeated later)
//! leaves a mark: a 1-unit hold between the acquirer's two reversal-mark accounts, voided at
//! once, under an id of the original (the sale's acquirer transfer, the pre-authorization's
//! hold, a follow-up's first transfer in its slot, below). The original, arriving later, finds
//! its id taken and is refused as a whole, with 94, as a repeat of a reversed sale is
//! (`sale.rs`): it can never post after its reversal. If the original posts between the
//! reversal's look-up and its mark, the mark is refused instead and the reversal undoes the
//! original after all.
//!
//! Follow-ups (voids, refunds, completions, completion voids) take *slots* under their
//! original's key (`follow_up.rs`): the first slot's ids are `undo/*`, `completion/*`,
//! `completion-void/*`, the next ones `undo#1/*`, `undo#2/*`…, and a reversal undoes a
//! follow-up in its own slot (`undo-reversal#1/*`…). A follow-up is named in its slot by its
//! trace number (the transfers' user data, a mark's too), and:
//! - it takes the first free slot, unless another follow-up of the same original stands (posted
//!   and not reversed) in an earlier one: 12. A sale is undone by at most one void or refund at
//!   any time (two racing for the same free slot: one takes it, the other gets 12);
//! - a repeat of it finds its own slot: 00 again while it stands, 94 once it was reversed or
//!   marked — it never posts in another slot;
//! - its reversal undoes it in its slot; finding it in none, it marks the first free slot for
//!   it. Slots fill in order and never empty, so the follow-up, arriving later, meets its mark
//!   before any free slot;
//! - once it is reversed (or marked), the original is free again: the cashier's next void, a
//!   new trace number, takes the next free slot and posts, once.
//!
//! Slots rather than ids from the follow-up's own key: the ledger's unique ids stay the one
//! guard that a sale is undone once at a time, with no second record to keep in step; the
//! first slot keeps the ids follow-ups always had. An original takes at most
//! [`FOLLOW_UP_SLOTS`] follow-ups of one kind, reversed ones included.
//!
//! A reversal of a sale or pre-authorization gives the card's spend of that day back.
//!
//! A reversal of a sale that a void or refund stands against is answered 00 and posts nothing
//! (its money went back already); `undo.rs` refuses a void or refund of a reversed sale (25).
//! The ledger guards both when they race on two connections: the sale's reversal marks the first
//! free slot of the sale's voids and refunds in the same commit as its own transfers (the mark's
//! user data is `follow_up::REVERSAL_CLAIM`), and that mark stands like a posted void. Of a
//! void and a reversal that both saw the slot free, one takes it; the other's commit fails as a
//! whole and it looks again: the void then gets 25, the reversal finds the void standing and
//! posts nothing. The console's refunds (`console_refund.rs`) take the same slots. A completion's
//! reversal posts nothing while a completion void stands, and a completion void of a reversed
//! completion gets 25, but there it is a look-up only: a completion's reversal places the
//! pre-authorization's hold again, so it may be completed (and that completion voided) once
//! more, and a mark would stand against that void too.

use crate::completion::{
    COMPLETION, COMPLETION_REVERSAL, COMPLETION_VOID, COMPLETION_VOID_REVERSAL,
};
use crate::effects::BusinessKey;
use crate::effects::{FOLLOW_UP_SLOTS, in_slot};
use crate::follow_up::{REVERSAL_CLAIM, Slot};
use crate::handler::{TerminalHandler, TerminalRecord};
use crate::keys::MessageKeys;
use crate::message::{Request, response_to};
use crate::sale::Answer;
use crate::undo::{UNDO, UNDO_REVERSAL};
use iso8583::{Message, ResponseCode};
use ledger::{Outcome, PendingStatus, TransferError, TransferId, TransferKind, TransferRequest};
use money::Amount;

/// The transfer code of a reversal.
const REVERSAL_CODE: u16 = 4;

impl TerminalHandler {
    pub(crate) async fn reversal(
        &self,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
        keys: &MessageKeys,
    ) -> Option<Answer> {
        let key = request.key();
        let reversed = self.profile.subfield_text(message, 60, 1);
        let outcome = match reversed.as_deref() {
            Some("22") => {
                self.reverse_sale(message, request, terminal, &key, FOLLOW_UP_SLOTS)
                    .await
            }
            Some("10") => {
                self.reverse_preauthorization(message, request, terminal, &key)
                    .await
            }
            Some("23" | "25") => {
                let original = self.original_key(message, request);
                match original {
                    Ok(original) => {
                        self.reverse_follow_up(
                            message,
                            request,
                            terminal,
                            &original,
                            (UNDO, UNDO_REVERSAL),
                        )
                        .await
                    }
                    Err(code) => Err(code),
                }
            }
            Some("20") => match self.original_key(message, request) {
                Ok(preauthorization) => {
                    self.reverse_follow_up(
                        message,
                        request,
                        terminal,
                        &preauthorization,
                        (COMPLETION, COMPLETION_REVERSAL),
                    )
                    .await
                }
                Err(code) => Err(code),
            },
            Some("21") => match self.original_key(message, request) {
                Ok(completion) => match self.completed_preauthorization(&completion).await {
                    Ok(preauthorization) => {
                        self.reverse_follow_up(
                            message,
                            request,
                            terminal,
                            &preauthorization,
                            (COMPLETION_VOID, COMPLETION_VOID_REVERSAL),
                        )
                        .await
                    }
                    // The completion is unknown: so is any void of it.
                    Err(ResponseCode::UnableToLocateRecord) => Ok(ResponseCode::Approved),
                    Err(code) => Err(code),
                },
                Err(code) => Err(code),
            },
            Some("11") => {
                tracing::warn!(terminal = %request.terminal_id, stan = request.stan, "reversal of a pre-authorization void: the released hold is not held again");
                Ok(ResponseCode::Approved)
            }
            Some("01") => Ok(ResponseCode::Approved),
            _ => Err(ResponseCode::InvalidTransaction),
        };
        let code = match outcome {
            Ok(code) | Err(code) => code,
        };
        if !code.is_approved() {
            tracing::warn!(terminal = %request.terminal_id, stan = request.stan, response = code.code(), "reversal refused");
        }
        Some(Answer {
            message: response_to(message, code)?,
            mac: Some(keys.clone()),
            risk: None,
            card_id: None,
            card_verification: None,
        })
    }

    /// `rounds`: how many more times it may look again after a void or refund took the slot it
    /// claimed (each time one more slot is taken, so it ends; the bound guards against a
    /// conflict of another kind).
    async fn reverse_sale(
        &self,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
        key: &BusinessKey,
        rounds: u32,
    ) -> Result<ResponseCode, ResponseCode> {
        // The mark takes the id of the first transfer these books would post for the sale:
        // the acquirer's side where both sides post together (the sale's linked chain then
        // fails as one), the issuer's on an issuer host, which posts nothing else — a mark
        // under the acquirer's id there would not stop the sale.
        let issuer_books_only = self.role == crate::handler::Role::Issuer;
        let marked = if issuer_books_only {
            "sale/issuer"
        } else {
            "sale/acquirer"
        };
        let mut sale = self.posted(key, "sale", None).await?;
        if issuer_books_only && let Some(posted) = &sale {
            // An issuer host's own mark is no sale.
            let currency = crate::follow_up::currency(message)?;
            let (mark_account, _) = crate::chart::reversal_marks(terminal.acquirer, currency);
            if posted.issuer.debit == mark_account {
                sale = None;
            }
        }
        let Some(sale) = sale else {
            // Never posted (or already marked by an earlier reversal): mark it so it never
            // can be.
            return match self
                .mark_reversed(
                    message,
                    key.transfer_id(marked),
                    key.transfer_id("reversal/mark"),
                    terminal,
                    0,
                )
                .await?
            {
                Marked::Now | Marked::Before => Ok(ResponseCode::Approved),
                Marked::OriginalPostedMeanwhile => {
                    Box::pin(self.reverse_sale(message, request, terminal, key, rounds)).await
                }
            };
        };
        if !matches!(sale.issuer.request.kind, TransferKind::Posted { .. })
            || request.amount_minor != Some(sale.issuer.amount.minor().unsigned_abs())
        {
            tracing::warn!(terminal = %request.terminal_id, stan = request.stan, "reversal does not match its original");
            return Err(ResponseCode::InvalidAmount);
        }
        // Reversed before: a repeat of the reversal (0401) or a reversal sent again. Nothing
        // more to undo.
        if self.sale_reversed(key).await? {
            return Ok(ResponseCode::Approved);
        }
        // A sale a void or refund stands against has given its money back already: undoing it
        // again would pay the card twice. The reversal is answered (the sale does not stand),
        // and posts nothing. Otherwise it claims the first free slot of the sale's voids and
        // refunds in its own commit, so that a void or refund racing it cannot post as well.
        let currency = crate::follow_up::currency(message)?;
        let claim = match self
            .claim_voids(key, (UNDO, UNDO_REVERSAL), request.stan, terminal, currency)
            .await?
        {
            Claim::Voided => {
                tracing::warn!(terminal = %request.terminal_id, stan = request.stan, "reversal of a sale a void or refund stands against: nothing more to undo");
                return Ok(ResponseCode::Approved);
            }
            Claim::Free(claim) => claim,
        };
        let undo = chained(
            sale.opposite(
                key,
                "reversal",
                sale.issuer.amount,
                REVERSAL_CODE,
                request.stan,
            ),
            claim,
        );
        match self
            .commit_follow_up_giving_back(undo, &sale.issuer, sale.issuer.amount.minor())
            .await
        {
            Ok(()) => Ok(ResponseCode::Approved),
            // A void or refund took the slot meanwhile: look again (it stands now, or it was
            // reversed and the next slot is free). Each round finds one more slot taken.
            Err(ResponseCode::InvalidTransaction) if rounds > 0 => {
                Box::pin(self.reverse_sale(message, request, terminal, key, rounds - 1)).await
            }
            Err(code) => Err(code),
        }
    }

    /// A pre-authorization's hold is voided; a completed one cannot have been the message the
    /// terminal lost (it completed it), and is left alone.
    async fn reverse_preauthorization(
        &self,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
        key: &BusinessKey,
    ) -> Result<ResponseCode, ResponseCode> {
        let hold_id = key.transfer_id("preauth/issuer");
        let hold = self
            .store
            .transfer(hold_id)
            .await
            .map_err(|_| ResponseCode::SystemMalfunction)?;
        let currency = crate::follow_up::currency(message)?;
        let (mark_account, _) = crate::chart::reversal_marks(terminal.acquirer, currency);
        let Some(hold) = hold.filter(|hold| hold.is_hold() && hold.debit != mark_account) else {
            let mark = key.transfer_id("reversal/preauth-mark");
            return match self
                .mark_reversed(message, hold_id, mark, terminal, 0)
                .await?
            {
                Marked::Now | Marked::Before => Ok(ResponseCode::Approved),
                Marked::OriginalPostedMeanwhile => {
                    Box::pin(self.reverse_preauthorization(message, request, terminal, key)).await
                }
            };
        };
        if request.amount_minor != Some(hold.amount.minor().unsigned_abs()) {
            return Err(ResponseCode::InvalidAmount);
        }
        match hold.status {
            Some(PendingStatus::Pending) => {
                let void = TransferRequest::void(key.transfer_id("reversal/issuer"), hold_id)
                    .code(REVERSAL_CODE)
                    .user_data(u128::from(request.stan));
                self.commit_follow_up_giving_back(vec![void], &hold, hold.amount.minor())
                    .await?;
                Ok(ResponseCode::Approved)
            }
            // Voided by this reversal before, lapsed, or completed: nothing is held any more.
            _ => {
                let earlier = self
                    .store
                    .transfer(key.transfer_id("reversal/issuer"))
                    .await
                    .map_err(|_| ResponseCode::SystemMalfunction)?;
                if earlier.is_none() {
                    tracing::info!(terminal = %request.terminal_id, stan = request.stan, "reversal of a pre-authorization no longer held");
                }
                Ok(ResponseCode::Approved)
            }
        }
    }

    /// Undoes what a follow-up (trace number of the reversal) posted under `original` for
    /// `purpose`, in whichever slot it took (`follow_up.rs`); when it posted nothing, marks
    /// the first free slot for it, so that it never posts there — nor anywhere else, as it
    /// finds its mark before any free slot.
    async fn reverse_follow_up(
        &self,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
        original: &BusinessKey,
        (purpose, reversal_purpose): (&str, &str),
    ) -> Result<ResponseCode, ResponseCode> {
        let currency = crate::follow_up::currency(message)?;
        let (marks, _) = crate::chart::reversal_marks(terminal.acquirer, currency);
        let slots = self
            .slots(
                original,
                purpose,
                reversal_purpose,
                request.stan,
                "issuer",
                marks,
            )
            .await?;
        match slots.mine {
            Some((_, Slot::Marked)) => Ok(ResponseCode::Approved),
            Some((generation, Slot::Posted { posted, reversed })) => {
                if request.amount_minor != Some(posted.issuer.amount.minor().unsigned_abs()) {
                    return Err(ResponseCode::InvalidAmount);
                }
                if reversed {
                    return Ok(ResponseCode::Approved);
                }
                let mut undo = posted.opposite(
                    original,
                    &in_slot(reversal_purpose, generation),
                    posted.issuer.amount,
                    REVERSAL_CODE,
                    request.stan,
                );
                // A completion a completion void stands against gave its money back already
                // (`reverse_sale` likewise). Unlike a sale's, a completion's reversal claims no
                // void slot: the pre-authorization may be completed again after it, and that
                // completion voided. Otherwise the pre-authorization stands again, as if the
                // completion had never been: the hold it posted is placed again.
                if purpose == COMPLETION {
                    if let Claim::Voided = self
                        .claim_voids(
                            original,
                            (COMPLETION_VOID, COMPLETION_VOID_REVERSAL),
                            request.stan,
                            terminal,
                            currency,
                        )
                        .await?
                    {
                        tracing::warn!(terminal = %request.terminal_id, stan = request.stan, "reversal of a completion a completion void stands against: nothing more to undo");
                        return Ok(ResponseCode::Approved);
                    }
                    if let Some(again) = self
                        .hold_again(original, generation, &posted.issuer)
                        .await?
                    {
                        undo = chained(undo, vec![again]);
                    }
                }
                self.commit_follow_up(undo).await?;
                Ok(ResponseCode::Approved)
            }
            // No slot is left for the follow-up to post in either.
            None if slots.free >= FOLLOW_UP_SLOTS => Ok(ResponseCode::Approved),
            None => {
                let slot = in_slot(purpose, slots.free);
                let mark = in_slot(reversal_purpose, slots.free);
                match self
                    .mark_reversed(
                        message,
                        original.transfer_id(&format!("{slot}/issuer")),
                        original.transfer_id(&format!("{mark}/mark")),
                        terminal,
                        request.stan,
                    )
                    .await?
                {
                    Marked::Now | Marked::Before => Ok(ResponseCode::Approved),
                    // The follow-up (or another) took the slot meanwhile: look again.
                    Marked::OriginalPostedMeanwhile => {
                        Box::pin(self.reverse_follow_up(
                            message,
                            request,
                            terminal,
                            original,
                            (purpose, reversal_purpose),
                        ))
                        .await
                    }
                }
            }
        }
    }
}

impl TerminalHandler {
    /// Marks a sale that was never posted here as reversed, so that it never can be; undoes it
    /// if it was posted meanwhile (the acquirer's side, when its issuer is remote).
    pub(crate) async fn mark_sale_reversed(
        &self,
        message: &Message<'_>,
        key: &BusinessKey,
        terminal: &TerminalRecord,
    ) -> Result<(), ResponseCode> {
        let sale = key.transfer_id("sale/acquirer");
        match self
            .mark_reversed(message, sale, key.transfer_id("reversal/mark"), terminal, 0)
            .await?
        {
            Marked::Now | Marked::Before => Ok(()),
            Marked::OriginalPostedMeanwhile => {
                let posted = self
                    .store
                    .transfer(sale)
                    .await
                    .map_err(|_| ResponseCode::SystemMalfunction)?
                    .ok_or(ResponseCode::SystemMalfunction)?;
                let stan = key.stan;
                let undo = TransferRequest::posted(
                    key.transfer_id("sale-reversal/acquirer"),
                    posted.credit,
                    posted.debit,
                    posted.amount,
                )
                .code(REVERSAL_CODE)
                .user_data(u128::from(stan));
                self.commit_follow_up(vec![undo]).await
            }
        }
    }
}

/// What a reversal of a sale or completion finds in the slots of its original's voids.
enum Claim {
    /// A void (or refund) stands: the money went back already, the reversal posts nothing.
    Voided,
    /// None stands: the mark claiming the first free slot, for a sale's reversal to commit
    /// with its own transfers (empty when every slot is taken: no void can post either).
    Free(Vec<TransferRequest>),
}

impl TerminalHandler {
    /// The voids of `original` (`voids`: their purpose and their reversals') as the reversal
    /// with trace number `stan` finds them (see the module's documentation).
    async fn claim_voids(
        &self,
        original: &BusinessKey,
        (voids, voids_reversal): (&str, &str),
        stan: u32,
        terminal: &TerminalRecord,
        currency: money::Currency,
    ) -> Result<Claim, ResponseCode> {
        let marks = crate::chart::reversal_marks(terminal.acquirer, currency);
        let slots = self
            .slots(original, voids, voids_reversal, stan, "issuer", marks.0)
            .await?;
        if !slots.standing.is_empty()
            || matches!(
                slots.mine,
                Some((
                    _,
                    Slot::Posted {
                        reversed: false,
                        ..
                    }
                ))
            )
        {
            return Ok(Claim::Voided);
        }
        if slots.free >= FOLLOW_UP_SLOTS {
            return Ok(Claim::Free(Vec::new()));
        }
        Ok(Claim::Free(mark_requests(
            original.transfer_id(&format!("{}/issuer", in_slot(voids, slots.free))),
            original.transfer_id(&format!("{}/mark", in_slot(voids_reversal, slots.free))),
            marks,
            currency,
            REVERSAL_CLAIM,
        )))
    }
}

/// A reversal's transfers and more (its claim, a hold placed again), linked to commit as one.
fn chained(mut undo: Vec<TransferRequest>, more: Vec<TransferRequest>) -> Vec<TransferRequest> {
    if !more.is_empty()
        && let Some(last) = undo.last_mut()
    {
        last.linked = true;
    }
    undo.extend(more);
    undo
}

/// A mark under `original`: a 1-unit hold between the reversal-mark accounts `(debit,
/// credit)`, voided at once by `mark`; `user_data` names what it stands for.
fn mark_requests(
    original: TransferId,
    mark: TransferId,
    (debit, credit): (ledger::AccountId, ledger::AccountId),
    currency: money::Currency,
    user_data: u128,
) -> Vec<TransferRequest> {
    vec![
        TransferRequest::pending(original, debit, credit, Amount::new(1, currency), 0)
            .user_data(user_data)
            .linked(),
        TransferRequest::void(mark, original),
    ]
}

/// What leaving a reversal mark found.
enum Marked {
    Now,
    Before,
    OriginalPostedMeanwhile,
}

impl TerminalHandler {
    /// Leaves a mark under `original` (see the module's documentation); a follow-up's mark
    /// names the follow-up by its trace number in its user data, as its posting would (a sale's
    /// or pre-authorization's id names it alone: 0).
    async fn mark_reversed(
        &self,
        message: &Message<'_>,
        original: TransferId,
        mark: TransferId,
        terminal: &TerminalRecord,
        follow_up_stan: u32,
    ) -> Result<Marked, ResponseCode> {
        let currency = crate::follow_up::currency(message)?;
        let mark = mark_requests(
            original,
            mark,
            crate::chart::reversal_marks(terminal.acquirer, currency),
            currency,
            u128::from(follow_up_stan),
        );
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
