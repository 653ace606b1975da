//! Disputes and chargebacks (R9, R18): the cardholder disputes a sale on their card; the
//! issuer's operator reviews it and rejects it or charges it back to the acquirer; the
//! merchant answers with evidence before a deadline; the issuer decides.
//!
//! ```text
//!   opened ──review: reject──────▶ rejected
//!          └─review: charge back─▶ charged_back ──merchant answers (before answer_due_at)──▶ answered
//!                                        │                                                    │
//!                                        └──────── issuer decides (after the deadline, ───────┤
//!                                                  or once answered)                          ▼
//!                                                    won_by_cardholder (the credit is final)
//!                                                    won_by_merchant   (the chargeback reversed)
//! ```
//!
//! Money moves twice at most, through the acquirer host ([`RefundPoster::chargeback`]): the
//! chargeback credits the card and debits the merchant's settlement (two linked transfers
//! opposite the sale's, in the issuer's and the acquirer's books); a decision for the merchant
//! reverses both. Each has ids from the sale, so a retry moves nothing more. The times are the
//! caller's clock (injected), so the deadline is tested without waiting.

use crate::refunds::{ChargebackStep, Posting, RefundError, RefundPoster, refundable};
use money::Amount;
use std::sync::Arc;
use store::accounts::TransactionRecord;
use store::disputes::Dispute;
use store::{Store, StoreError};

/// How long the merchant has to answer a chargeback unless configured otherwise: 30 days, the
/// order of the card schemes' own response windows.
pub const DEFAULT_ANSWER_WITHIN_SECONDS: i64 = 30 * 86_400;

/// Longest description, note or evidence text.
pub const MAX_TEXT_CHARS: usize = 4_000;

/// Why a cardholder disputes a sale.
pub const REASONS: [&str; 5] = [
    "not_recognised",
    "duplicate",
    "wrong_amount",
    "not_received",
    "cancelled",
];

/// Who acts on a dispute, as the caller's role allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    /// The sale's cardholder: opens it.
    Cardholder,
    /// The card's issuer's operator: reviews and decides.
    Issuer,
    /// The merchant's manager or administrator: answers.
    Merchant,
}

#[derive(Debug, thiserror::Error)]
pub enum DisputeError {
    #[error("{0}")]
    NotDisputable(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    /// Not in a state that allows this step.
    #[error("{0}")]
    Conflict(String),
    /// The merchant's answer came after the deadline.
    #[error(
        "the answer was due by {due_at} (Unix seconds); it is {now}: answers after the deadline are refused"
    )]
    Late { due_at: i64, now: i64 },
    /// The acquirer refused to move the money (a ledger limit, the card's balance).
    #[error("the acquirer refused the chargeback: {0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Unavailable(#[from] crate::refunds::PostError),
}

/// The issuer's review.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Review {
    ChargeBack,
    Reject,
}

/// The issuer's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    ForCardholder,
    ForMerchant,
}

/// The disputes of one acquirer host: its store, the money path and the answer deadline.
#[derive(Clone, Debug)]
pub struct Disputes {
    store: Arc<Store>,
    poster: Arc<dyn RefundPoster>,
    answer_within_seconds: i64,
}

/// The status of a dispute whose chargeback is being posted (claimed by one reviewer).
pub const CHARGING_BACK: &str = "charging_back";
/// The status of a dispute whose chargeback is being reversed (decided for the merchant).
pub const REVERSING: &str = "reversing";

fn text_of(field: &str, text: &str) -> Result<String, DisputeError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
        return Err(DisputeError::Invalid(format!(
            "{field}: 1 to {MAX_TEXT_CHARS} characters"
        )));
    }
    Ok(text.to_owned())
}

fn require(party: Party, wanted: Party, what: &str) -> Result<(), DisputeError> {
    if party == wanted {
        Ok(())
    } else {
        Err(DisputeError::Forbidden(what.to_owned()))
    }
}

impl From<RefundError> for DisputeError {
    fn from(error: RefundError) -> Self {
        match error {
            RefundError::Store(error) => DisputeError::Store(error),
            RefundError::Unavailable(error) => DisputeError::Unavailable(error),
            other => DisputeError::NotDisputable(other.to_string()),
        }
    }
}

impl Disputes {
    pub fn new(store: Arc<Store>, poster: Arc<dyn RefundPoster>) -> Self {
        Disputes {
            store,
            poster,
            answer_within_seconds: DEFAULT_ANSWER_WITHIN_SECONDS,
        }
    }

    /// The merchant answers within `seconds` of the chargeback.
    pub fn with_answer_within(mut self, seconds: i64) -> Self {
        self.answer_within_seconds = seconds.max(1);
        self
    }

    /// The cardholder disputes `sale`, paid with their card `card_id`, for what is left of it
    /// after refunds. A sale disputed already answers its dispute (`false`: not new).
    #[allow(clippy::too_many_arguments)] // the dispute's facts, each from a different place
    pub async fn open(
        &self,
        sale: &TransactionRecord,
        party: Party,
        username: &str,
        card_id: &str,
        reason: &str,
        description: &str,
        now: i64,
    ) -> Result<(Dispute, bool), DisputeError> {
        require(
            party,
            Party::Cardholder,
            "the cardholder disputes a transaction on their card",
        )?;
        if !REASONS.contains(&reason) {
            return Err(DisputeError::Invalid(format!(
                "reason: one of {}",
                REASONS.join(", ")
            )));
        }
        let description = text_of("description", description)?;
        if let Some(existing) = self.store.dispute_of_transaction(sale.id).await? {
            return Ok((existing, false));
        }
        let (key, captured, currency) = refundable(sale)?;
        let refunded: i64 = self
            .store
            .refunds_of_transaction(sale.id)
            .await?
            .iter()
            .filter(|refund| {
                refund.seq > 0 && store::refunds::RESERVING.contains(&refund.status.as_str())
            })
            .map(|refund| refund.amount_minor)
            .sum();
        let at_terminal = match self.poster.undone(&key).await? {
            crate::refunds::TerminalUndo::Nothing => 0,
            crate::refunds::TerminalUndo::Refunded { amount_minor } => amount_minor,
            crate::refunds::TerminalUndo::Voided | crate::refunds::TerminalUndo::NotPosted => {
                captured
            }
        };
        let amount_minor = captured - refunded - at_terminal;
        if amount_minor <= 0 {
            return Err(DisputeError::NotDisputable(format!(
                "transaction {} was refunded, voided or reversed in full: nothing is left to dispute",
                sale.id
            )));
        }
        let dispute = Dispute {
            id: format!("dp_{:016x}", rand::random::<u64>()),
            transaction_id: sale.id,
            merchant_id: sale.merchant_id.clone(),
            card_id: card_id.to_owned(),
            amount_minor,
            currency: i64::from(currency.numeric()),
            reason: reason.to_owned(),
            description,
            status: "opened".into(),
            opened_by: username.to_owned(),
            opened_at: now,
            ..Dispute::default()
        };
        let stored = self.store.put_dispute(dispute.clone()).await?;
        let new = stored.id == dispute.id;
        if new {
            tracing::info!(dispute = %stored.id, transaction = sale.id, reason, "dispute opened");
        }
        Ok((stored, new))
    }

    /// The issuer's operator reviews: rejects it, or charges it back (the money moves now, and
    /// the merchant's deadline starts).
    #[allow(clippy::too_many_arguments)] // the step's facts, each from a different place
    pub async fn review(
        &self,
        sale: &TransactionRecord,
        mut dispute: Dispute,
        party: Party,
        username: &str,
        review: Review,
        note: &str,
        now: i64,
    ) -> Result<Dispute, DisputeError> {
        require(party, Party::Issuer, "the card's issuer reviews a dispute")?;
        match review {
            Review::Reject => self.expect(&dispute, &["opened"])?,
            // A chargeback whose posting was cut short (a crash, the host unavailable) is
            // taken up again from `charging_back`: its transfers' ids make it move money once.
            Review::ChargeBack => self.expect(&dispute, &["opened", CHARGING_BACK])?,
        }
        let from = dispute.status.clone();
        dispute.reviewed_by = username.to_owned();
        dispute.review_note = note.trim().to_owned();
        match review {
            Review::Reject => {
                text_of("note", note)?;
                dispute.status = "rejected".into();
                dispute.reviewed_at = Some(now);
                self.write(&dispute, &from).await?;
            }
            Review::ChargeBack => {
                // The dispute is claimed before the money moves: a concurrent reject (or a
                // second chargeback) by another operator finds it taken and changes nothing,
                // so money never moves under a dispute that reads `rejected`.
                let claimed = Dispute {
                    status: CHARGING_BACK.into(),
                    ..dispute.clone()
                };
                self.write(&claimed, &from).await?;
                if let Err(error) = self
                    .move_money(sale, &dispute, ChargebackStep::Credit)
                    .await
                {
                    self.release(&claimed, &from).await;
                    return Err(error);
                }
                dispute.status = "charged_back".into();
                dispute.reviewed_at = Some(now);
                dispute.answer_due_at = Some(now.saturating_add(self.answer_within_seconds));
                self.write(&dispute, CHARGING_BACK).await?;
            }
        }
        tracing::info!(dispute = %dispute.id, status = %dispute.status, by = username, "dispute reviewed");
        Ok(dispute)
    }

    /// The merchant answers a chargeback with its evidence, before the deadline.
    pub async fn answer(
        &self,
        mut dispute: Dispute,
        party: Party,
        username: &str,
        evidence: &str,
        now: i64,
    ) -> Result<Dispute, DisputeError> {
        require(
            party,
            Party::Merchant,
            "the merchant's manager or administrator answers a dispute",
        )?;
        self.expect(&dispute, &["charged_back"])?;
        let evidence = text_of("evidence", evidence)?;
        let due_at = dispute.answer_due_at.unwrap_or(i64::MIN);
        if now > due_at {
            return Err(DisputeError::Late { due_at, now });
        }
        dispute.status = "answered".into();
        dispute.answered_by = username.to_owned();
        dispute.answered_at = Some(now);
        dispute.evidence = evidence;
        self.write(&dispute, "charged_back").await?;
        tracing::info!(dispute = %dispute.id, by = username, "dispute answered");
        Ok(dispute)
    }

    /// The issuer decides, once the merchant answered or its deadline passed: for the
    /// cardholder the credit is final; for the merchant the chargeback is reversed.
    #[allow(clippy::too_many_arguments)] // the step's facts, each from a different place
    pub async fn decide(
        &self,
        sale: &TransactionRecord,
        mut dispute: Dispute,
        party: Party,
        username: &str,
        decision: Decision,
        note: &str,
        now: i64,
    ) -> Result<Dispute, DisputeError> {
        require(party, Party::Issuer, "the card's issuer decides a dispute")?;
        let from = dispute.status.clone();
        match decision {
            Decision::ForCardholder => self.expect(&dispute, &["charged_back", "answered"])?,
            // A reversal cut short is taken up again from `reversing` (moves money once).
            Decision::ForMerchant => {
                self.expect(&dispute, &["charged_back", "answered", REVERSING])?
            }
        }
        if from == "charged_back" && dispute.answer_due_at.is_some_and(|due| now <= due) {
            return Err(DisputeError::Conflict(format!(
                "dispute {} waits for the merchant's answer until {} (Unix seconds)",
                dispute.id,
                dispute.answer_due_at.unwrap_or_default()
            )));
        }
        let note = text_of("note", note)?;
        dispute.decided_by = username.to_owned();
        dispute.decision_note = note;
        let from = if decision == Decision::ForMerchant {
            // Claimed first, as a chargeback is: the other decision, taken at once by another
            // operator, finds the dispute taken.
            let claimed = Dispute {
                status: REVERSING.into(),
                ..dispute.clone()
            };
            self.write(&claimed, &from).await?;
            if let Err(error) = self
                .move_money(sale, &dispute, ChargebackStep::Reverse)
                .await
            {
                self.release(&claimed, &from).await;
                return Err(error);
            }
            REVERSING.to_owned()
        } else {
            from
        };
        dispute.status = match decision {
            Decision::ForCardholder => "won_by_cardholder",
            Decision::ForMerchant => "won_by_merchant",
        }
        .into();
        dispute.decided_at = Some(now);
        self.write(&dispute, &from).await?;
        tracing::info!(dispute = %dispute.id, status = %dispute.status, by = username, "dispute decided");
        Ok(dispute)
    }

    /// Gives a claimed dispute back to the status it was claimed from, after its money did
    /// not move (refused, or the host unavailable). If that fails too the dispute stays
    /// claimed, and the same step taken again resumes it.
    async fn release(&self, claimed: &Dispute, back_to: &str) {
        let mut released = claimed.clone();
        released.status = back_to.to_owned();
        if let Err(error) = self.store.update_dispute(&released, &claimed.status).await {
            tracing::warn!(dispute = %claimed.id, %error, "a claimed dispute stays claimed");
        }
    }

    fn expect(&self, dispute: &Dispute, statuses: &[&str]) -> Result<(), DisputeError> {
        if statuses.contains(&dispute.status.as_str()) {
            Ok(())
        } else {
            Err(DisputeError::Conflict(format!(
                "dispute {} is {}: this step needs {}",
                dispute.id,
                dispute.status,
                statuses.join(" or ")
            )))
        }
    }

    async fn move_money(
        &self,
        sale: &TransactionRecord,
        dispute: &Dispute,
        step: ChargebackStep,
    ) -> Result<(), DisputeError> {
        let (key, _, currency) = refundable(sale)?;
        let amount = Amount::new(dispute.amount_minor, currency);
        match self.poster.chargeback(&key, amount, step).await? {
            Posting::Refunded => Ok(()),
            Posting::Refused { response, reason } => {
                Err(DisputeError::Refused(format!("{response}: {reason}")))
            }
        }
    }

    async fn write(&self, dispute: &Dispute, from: &str) -> Result<(), DisputeError> {
        if self.store.update_dispute(dispute, from).await? {
            Ok(())
        } else {
            Err(DisputeError::Conflict(format!(
                "dispute {} changed meanwhile; look at it again",
                dispute.id
            )))
        }
    }
}
