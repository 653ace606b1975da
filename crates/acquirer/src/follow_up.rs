//! What messages that refer to an earlier one (voids, refunds, completions, pre-authorization
//! voids) share: naming the original by field 61, checking that the card presented is the
//! original's, and committing the follow-up transfers with one reading of the outcome.

use crate::effects::{BusinessKey, FOLLOW_UP_SLOTS, in_slot};
use crate::handler::TerminalHandler;
use crate::message::Request;
use iso8583::{Message, ResponseCode};
use ledger::{Outcome, Transfer, TransferError, TransferRequest};
use money::Amount;
use money::Currency;
use store::TransferResults;
use store::cards::{Authorization, CardEffect, CardOutcome, PinEffect, Spend};
use store::directory::Card;

/// The transaction currency of field 49.
pub(crate) fn currency(message: &Message<'_>) -> Result<Currency, ResponseCode> {
    message
        .get(49)
        .and_then(|value| value.to_text().parse::<u16>().ok())
        .and_then(|numeric| Currency::from_numeric(numeric).ok())
        .ok_or(ResponseCode::FormatError)
}

/// Why a chain of transfers was refused: the failing transfer's reason, not the "linked event
/// failed" of the others in its chain.
pub(crate) fn refusal(results: &TransferResults) -> Option<TransferError> {
    results
        .iter()
        .filter_map(|result| result.as_ref().err())
        .copied()
        .find(|error| *error != TransferError::LinkedEventFailed)
}

impl TerminalHandler {
    /// The business key of the original named by field 61 (61.1 batch, 61.2 trace number) on
    /// the same terminal.
    pub(crate) fn original_key(
        &self,
        message: &Message<'_>,
        request: &Request,
    ) -> Result<BusinessKey, ResponseCode> {
        let number = |id| {
            self.profile
                .subfield_text(message, 61, id)
                .and_then(|text| text.parse::<u32>().ok())
                .ok_or(ResponseCode::FormatError)
        };
        Ok(BusinessKey {
            terminal_id: request.terminal_id.clone(),
            batch: number(1)?,
            stan: number(2)?,
        })
    }

    /// The card presented (field 2 or track 2), which must be the one `original` moved money
    /// on; another card gets 25, as if the original did not exist.
    pub(crate) async fn require_same_card(
        &self,
        message: &Message<'_>,
        original: &Transfer,
    ) -> Result<Card, ResponseCode> {
        let (_, card) = self
            .find_card(message, &self.fingerprint_key().await?)
            .await?;
        if card.account == original.debit || card.account == original.credit {
            Ok(card)
        } else {
            Err(ResponseCode::UnableToLocateRecord)
        }
    }

    /// Commits a follow-up's transfers. Their ids come from the original's key, so a repeat of
    /// the same follow-up finds them (00 again) and any other follow-up of the same original
    /// finds other content under them (12).
    pub(crate) async fn commit_follow_up(
        &self,
        transfers: Vec<TransferRequest>,
    ) -> Result<(), ResponseCode> {
        let results = self
            .store
            .submit(self.own(transfers))
            .await
            .map_err(|_| ResponseCode::SystemMalfunction)?;
        follow_up_outcome(&results)
    }

    /// Commits a follow-up that undoes a purchase (`purchase`, the issuer's transfer of a sale
    /// or pre-authorization) on the day it was made: with its transfers, the card's spend of
    /// that day is given back by `amount_minor`, so a voided or reversed purchase no longer
    /// counts against the daily limit. Only where the issuer's books are kept.
    pub(crate) async fn commit_follow_up_giving_back(
        &self,
        transfers: Vec<TransferRequest>,
        purchase: &Transfer,
        amount_minor: i64,
    ) -> Result<(), ResponseCode> {
        let card = match self.store.card_by_account(purchase.debit).await {
            Ok(Some(card)) => Some(card),
            Ok(None) => self
                .store
                .card_by_account(purchase.credit)
                .await
                .map_err(|_| ResponseCode::SystemMalfunction)?,
            Err(_) => return Err(ResponseCode::SystemMalfunction),
        };
        let Some(card) = card else {
            return self.commit_follow_up(transfers).await;
        };
        let seconds = i64::try_from(purchase.timestamp / ledger::NANOS_PER_SECOND).unwrap_or(0);
        let authorization = Authorization {
            transfers: self.own(transfers.clone()),
            card: CardEffect {
                card_id: card.id,
                pin: PinEffect::Unchanged,
                atc: None,
                spend: Some(Spend {
                    date: crate::cards::format_date(crate::effects::business_date(seconds)),
                    amount_minor: -amount_minor,
                }),
            },
        };
        let result = self
            .store
            .authorize(authorization)
            .await
            .map_err(|_| ResponseCode::SystemMalfunction)?;
        match result.card {
            CardOutcome::UnknownCard => self.commit_follow_up(transfers).await,
            _ => follow_up_outcome(&result.transfers),
        }
    }
}

/// What a follow-up's committed transfers come to: 00 when all were made (or found made by
/// the same follow-up), 12 when another follow-up holds their ids, else the ledger's refusal.
fn follow_up_outcome(results: &TransferResults) -> Result<(), ResponseCode> {
    {
        match refusal(results) {
            None if results.iter().all(|result| {
                matches!(result, Ok(Outcome::Created(_) | Outcome::AlreadyExists(_)))
            }) =>
            {
                Ok(())
            }
            Some(TransferError::ExistsWithDifferentContent) => {
                Err(ResponseCode::InvalidTransaction)
            }
            Some(error) => Err(issuer::response_for_ledger_error(error)),
            None => Err(ResponseCode::SystemMalfunction),
        }
    }
}

/// The two transfers (issuer's books, acquirer's books) a message posted under an original's
/// key: `purpose/issuer` and `purpose/acquirer`.
#[derive(Clone, Debug)]
pub(crate) struct Posted {
    pub issuer: Transfer,
    /// `None` at an issuer host, which keeps only the issuer's books.
    pub acquirer: Option<Transfer>,
}

impl Posted {
    /// Two linked transfers in the opposite direction, for `amount`, with ids from `original`
    /// and `purpose`; `stan` (the undoing message's trace number) travels in them.
    pub(crate) fn opposite(
        &self,
        original: &BusinessKey,
        purpose: &str,
        amount: Amount,
        code: u16,
        stan: u32,
    ) -> Vec<TransferRequest> {
        let opposite = |side: &str, transfer: &Transfer| {
            TransferRequest::posted(
                original.transfer_id(&format!("{purpose}/{side}")),
                transfer.credit,
                transfer.debit,
                amount,
            )
            .code(code)
            .user_data(u128::from(stan))
        };
        let mut transfers = vec![opposite("issuer", &self.issuer)];
        if let Some(acquirer) = &self.acquirer {
            transfers[0].linked = true;
            transfers.push(opposite("acquirer", acquirer));
        }
        transfers
    }
}

impl TerminalHandler {
    /// The pair posted under `original` for `purpose`, when both exist and, if `stan` is given,
    /// were posted by the message with that trace number.
    pub(crate) async fn posted(
        &self,
        original: &BusinessKey,
        purpose: &str,
        stan: Option<u32>,
    ) -> Result<Option<Posted>, ResponseCode> {
        let lookup = |side: &str| {
            self.store
                .transfer(original.transfer_id(&format!("{purpose}/{side}")))
        };
        let issuer_books_only = self.role == crate::handler::Role::Issuer;
        let (issuer, acquirer) = match (lookup("issuer").await, lookup("acquirer").await) {
            (Ok(Some(issuer)), Ok(Some(acquirer))) => (issuer, Some(acquirer)),
            (Ok(Some(issuer)), Ok(None)) if issuer_books_only => (issuer, None),
            (Ok(_), Ok(_)) => return Ok(None),
            _ => return Err(ResponseCode::SystemMalfunction),
        };
        let by_this_message = stan.is_none_or(|stan| {
            issuer.request.user_data == u128::from(stan)
                && acquirer
                    .as_ref()
                    .is_none_or(|acquirer| acquirer.request.user_data == u128::from(stan))
        });
        Ok(by_this_message.then_some(Posted { issuer, acquirer }))
    }
}

/// What a follow-up's slots under its original hold, as one follow-up (a trace number) sees
/// them (see `reversal.rs`): slots fill in order and are never emptied.
#[derive(Debug)]
pub(crate) struct Slots {
    /// The first slot nothing holds.
    pub free: u32,
    /// The slot this follow-up took: what it posted there (and whether that was reversed), or
    /// the mark a reversal of it left.
    pub mine: Option<(u32, Slot)>,
    /// The first transfer (in these books) of each slot another follow-up posted and that was
    /// not reversed, and of a reversal's claim ([`REVERSAL_CLAIM`]): while any
    /// stands, the original is taken.
    pub standing: Vec<Transfer>,
}

/// The user data of the mark a sale's reversal leaves in the first free slot of the sale's
/// voids and refunds, in the same commit as its own transfers (`reversal.rs`): above any trace
/// number and any console refund part, so no follow-up takes it for its own. It stands like a
/// posted void, so a void or refund racing the reversal finds the sale taken, or takes the slot
/// first and makes the reversal's commit fail as a whole.
pub(crate) const REVERSAL_CLAIM: u128 = u64::MAX as u128;

/// What one follow-up left in its slot.
#[derive(Debug)]
pub(crate) enum Slot {
    Posted { posted: Box<Posted>, reversed: bool },
    Marked,
}

impl TerminalHandler {
    /// The slots of `purpose` under `original` as the follow-up with trace number `stan` sees
    /// them (`stan` 0: as no follow-up). A slot is held by its first transfer in these books
    /// (the issuer's, `side` "acquirer" for the acquirer's own side of a remote issuer's
    /// follow-up); a reversal's mark there names its follow-up in its user data, as a posting
    /// does; a posting is reversed when `reversal_purpose` of the same slot exists. For the acquirer's side,
    /// `Posted::issuer` of this follow-up's slot holds the acquirer's transfer alone.
    pub(crate) async fn slots(
        &self,
        original: &BusinessKey,
        purpose: &str,
        reversal_purpose: &str,
        stan: u32,
        side: &str,
        marks: ledger::AccountId,
    ) -> Result<Slots, ResponseCode> {
        let lookup = |id| async move {
            self.store
                .transfer(id)
                .await
                .map_err(|_| ResponseCode::SystemMalfunction)
        };
        let mut mine = None;
        let mut standing = Vec::new();
        for generation in 0..FOLLOW_UP_SLOTS {
            let slot = in_slot(purpose, generation);
            let Some(first) = lookup(original.transfer_id(&format!("{slot}/{side}"))).await? else {
                return Ok(Slots {
                    free: generation,
                    mine,
                    standing,
                });
            };
            let by_this = first.request.user_data == u128::from(stan);
            if first.debit == marks {
                if first.request.user_data == REVERSAL_CLAIM {
                    standing.push(first);
                } else if by_this {
                    mine = Some((generation, Slot::Marked));
                }
                continue;
            }
            let reversed = lookup(
                original.transfer_id(&format!("{}/{side}", in_slot(reversal_purpose, generation))),
            )
            .await?
            .is_some();
            if by_this {
                let posted = if side == "issuer" {
                    self.posted(original, &slot, None).await?
                } else {
                    None
                };
                let posted = posted.unwrap_or(Posted {
                    issuer: first,
                    acquirer: None,
                });
                mine = Some((
                    generation,
                    Slot::Posted {
                        posted: Box::new(posted),
                        reversed,
                    },
                ));
            } else if !reversed {
                standing.push(first);
            }
        }
        Ok(Slots {
            free: FOLLOW_UP_SLOTS,
            mine,
            standing,
        })
    }

    /// The slot purpose a follow-up (trace number `stan`) posts under: its own slot again when
    /// it repeats one that stands (the ledger then finds its transfers made, 00, or another
    /// content, 12), else the first free slot. Refused with 94 when its reversal reached the
    /// host first (a mark) or undid it — as a sale is, see `sale.rs` — and with 12 while
    /// another follow-up of the same original stands.
    pub(crate) async fn follow_up_slot(
        &self,
        message: &Message<'_>,
        original: &BusinessKey,
        purpose: &str,
        reversal_purpose: &str,
        stan: u32,
        acquirer: ledger::InstitutionId,
    ) -> Result<String, ResponseCode> {
        let marks = crate::chart::reversal_marks(acquirer, currency(message)?).0;
        let slots = self
            .slots(original, purpose, reversal_purpose, stan, "issuer", marks)
            .await?;
        match slots.mine {
            Some((_, Slot::Marked | Slot::Posted { reversed: true, .. })) => {
                Err(ResponseCode::DuplicateTransmission)
            }
            Some((generation, Slot::Posted { .. })) => Ok(in_slot(purpose, generation)),
            None if !slots.standing.is_empty() || slots.free >= FOLLOW_UP_SLOTS => {
                Err(ResponseCode::InvalidTransaction)
            }
            None => Ok(in_slot(purpose, slots.free)),
        }
    }
}
