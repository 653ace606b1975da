//! Refunds from the console and the API (R9): the merchant refunds a card sale, in full or in
//! parts, never above what it captured less what was refunded already, always to the card that
//! paid (the sale's own transfers, turned round); a refund above the approval threshold waits
//! for a manager or administrator other than the one who asked (maker–checker). A cardholder
//! asks for a refund; the merchant accepts it (a refund part) or declines it with a reason.
//!
//! The money moves through the acquirer's refund path, the one a terminal's refund (0220,
//! 60.1 = 25) takes, with its freezes and risk rules, behind [`RefundPoster`] (implemented by
//! `acquirer::TerminalHandler`; this crate cannot depend on the acquirer, which depends on it).
//! Each part has its own id and part number; the part number names its ledger transfers, so a
//! part posted twice (a retry) moves money once.
//!
//! ```text
//!   cardholder:  requested ──accept──▶ accepted   (and a part, below)
//!                          └─decline─▶ declined
//!   merchant:    pending_approval ──approve (another supervisor)──▶ approved
//!                (above threshold) └─decline──────────────────────▶ declined
//!                approved ──the acquirer posts──▶ refunded
//!                         └─the acquirer refuses─▶ failed   (frozen, a risk rule, the ledger)
//! ```
//!
//! Access (which tenant may see which sale) is the caller's: the API and console hand in a sale
//! the caller may see, and the caller's [`Actor`].

use money::{Amount, Currency};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use store::accounts::TransactionRecord;
use store::refunds::{Refund, RefundInsert, RefundTransition};
use store::{Store, StoreError};

/// Refunds above this many minor units wait for a supervisor's approval unless configured
/// otherwise (500.00 in a two-decimal currency: above a typical counter refund).
pub const DEFAULT_APPROVAL_ABOVE_MINOR: i64 = 50_000;

/// Longest reason a refund, request or decline may carry.
pub const MAX_REASON_CHARS: usize = 500;

/// A boxed future, for [`RefundPoster`]'s object-safe methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The sale a refund names, as the acquirer keys its transfers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaleKey {
    pub terminal_id: String,
    pub merchant_id: String,
    /// 60.2 of the sale.
    pub batch: u32,
    /// Field 11 of the sale.
    pub stan: u32,
}

/// What the terminal did to a sale before the console refunds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TerminalUndo {
    /// Nothing: the sale stands in full.
    Nothing,
    /// Voided: nothing is left to refund.
    Voided,
    /// Refunded at the terminal, for this much.
    Refunded { amount_minor: i64 },
    /// The sale's transfers are not in the books (reversed, or never posted by this host).
    NotPosted,
}

/// One refund part for the acquirer to post.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundPart {
    pub sale: SaleKey,
    pub refund_id: String,
    /// The part's number among the sale's refunds (1, 2, …): it names the transfers.
    pub seq: u32,
    pub amount: Amount,
    /// The sale's card, masked, for the journal.
    pub card: Option<String>,
    /// The sale's RRN and auth code, for the journal.
    pub rrn: Option<String>,
    pub auth_code: Option<String>,
}

/// The acquirer's answer to a refund part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Posting {
    /// Posted (or found posted by this part before).
    Refunded,
    /// Refused, with the ISO 8583 response code a terminal would have got and why.
    Refused { response: String, reason: String },
}

/// The acquirer could not decide (its store failed): nothing was posted, try again.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the acquirer could not post the refund now: {0}")]
pub struct PostError(pub String);

/// The acquirer's refund path, as the console and API use it.
pub trait RefundPoster: Send + Sync + std::fmt::Debug {
    /// What the terminal did to `sale` already.
    fn undone<'a>(&'a self, sale: &'a SaleKey) -> BoxFuture<'a, Result<TerminalUndo, PostError>>;
    /// Posts `part` (checking freezes and risk rules first) and journals it.
    fn post<'a>(&'a self, part: &'a RefundPart) -> BoxFuture<'a, Result<Posting, PostError>>;

    /// Posts a step of a chargeback of `sale` for `amount` (`aftersale::disputes`): the
    /// provisional credit (the card credited, the merchant's settlement debited) or its
    /// reversal. Posting the same step again moves nothing more.
    fn chargeback<'a>(
        &'a self,
        sale: &'a SaleKey,
        amount: Amount,
        step: ChargebackStep,
    ) -> BoxFuture<'a, Result<Posting, PostError>> {
        let _ = (sale, amount, step);
        Box::pin(async {
            Err(PostError(
                "this refund path posts no chargebacks".to_owned(),
            ))
        })
    }
}

/// A chargeback's two movements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChargebackStep {
    /// The card credited and the merchant's settlement debited, provisionally.
    Credit,
    /// The merchant won: the credit taken back from the card, the money back to the merchant.
    Reverse,
}

/// Who acts on a refund, as the caller's role allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorRole {
    /// A cashier: refunds up to the threshold, asks for approval above it.
    Cashier,
    /// A merchant's manager or administrator: also approves others' refunds.
    Supervisor,
    /// The sale's cardholder: asks for a refund.
    Cardholder,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub username: String,
    pub role: ActorRole,
}

#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    /// The sale cannot be refunded (declined, not a sale, voided …).
    #[error("{0}")]
    NotRefundable(String),
    #[error(
        "{asked_minor} minor units is more than is left to refund: {remaining_minor} (captured less what was refunded or is waiting for approval)"
    )]
    OverCaptured {
        asked_minor: i64,
        remaining_minor: i64,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    /// The refund is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Unavailable(#[from] PostError),
}

/// The refunds of one acquirer host: its store, its refund path and the approval threshold.
#[derive(Clone, Debug)]
pub struct Refunds {
    store: Arc<Store>,
    poster: Arc<dyn RefundPoster>,
    approval_above_minor: i64,
}

fn reason_of(reason: &str) -> Result<String, RefundError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(RefundError::Invalid(format!(
            "reason: say why, in 1 to {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(reason.to_owned())
}

/// The sale's key, captured amount and currency, or why it cannot be refunded.
pub(crate) fn refundable(
    sale: &TransactionRecord,
) -> Result<(SaleKey, i64, Currency), RefundError> {
    if sale.kind != "Sale" || sale.mti != "0200" {
        return Err(RefundError::NotRefundable(format!(
            "transaction {} is a {}, not a sale: only sales are refunded",
            sale.id, sale.kind
        )));
    }
    if sale.response.as_deref() != Some("00") {
        return Err(RefundError::NotRefundable(format!(
            "transaction {} was declined: it captured nothing to refund",
            sale.id
        )));
    }
    let number = |value: Option<i64>| value.and_then(|value| u32::try_from(value).ok());
    let (Some(batch), Some(stan), Some(captured), Some(currency)) = (
        number(sale.batch),
        number(sale.stan),
        sale.amount_minor,
        sale.currency
            .and_then(|numeric| u16::try_from(numeric).ok())
            .and_then(|numeric| Currency::from_numeric(numeric).ok()),
    ) else {
        return Err(RefundError::NotRefundable(format!(
            "transaction {} lacks its batch, trace number, amount or currency",
            sale.id
        )));
    };
    let key = SaleKey {
        terminal_id: sale.terminal_id.clone(),
        merchant_id: sale.merchant_id.clone(),
        batch,
        stan,
    };
    Ok((key, captured, currency))
}

fn positive(amount_minor: i64) -> Result<i64, RefundError> {
    if amount_minor <= 0 {
        return Err(RefundError::Invalid(
            "amount_minor: a refund is a positive number of minor units".into(),
        ));
    }
    Ok(amount_minor)
}

fn new_id() -> String {
    format!("rf_{:016x}", rand::random::<u64>())
}

impl Refunds {
    pub fn new(store: Arc<Store>, poster: Arc<dyn RefundPoster>) -> Self {
        Refunds {
            store,
            poster,
            approval_above_minor: DEFAULT_APPROVAL_ABOVE_MINOR,
        }
    }

    /// Refunds above `minor` wait for a supervisor's approval.
    pub fn with_approval_above(mut self, minor: i64) -> Self {
        self.approval_above_minor = minor.max(0);
        self
    }

    pub fn approval_above_minor(&self) -> i64 {
        self.approval_above_minor
    }

    /// A refund of `sale` asked for by `actor`: the cardholder's is a request for the
    /// merchant; the merchant's staff's is a part, posted at once up to the threshold.
    pub async fn ask(
        &self,
        sale: &TransactionRecord,
        actor: &Actor,
        amount_minor: i64,
        reason: &str,
        now: i64,
    ) -> Result<Refund, RefundError> {
        let reason = reason_of(reason)?;
        let amount_minor = positive(amount_minor)?;
        if actor.role != ActorRole::Cardholder {
            return self
                .part(sale, actor, amount_minor, reason, String::new(), now)
                .await;
        }
        let (_, captured, currency) = refundable(sale)?;
        if amount_minor > captured {
            return Err(RefundError::OverCaptured {
                asked_minor: amount_minor,
                remaining_minor: captured,
            });
        }
        let request = Refund {
            id: new_id(),
            transaction_id: sale.id,
            merchant_id: sale.merchant_id.clone(),
            seq: 0,
            request_id: String::new(),
            amount_minor,
            currency: i64::from(currency.numeric()),
            status: "requested".into(),
            reason,
            requested_by: actor.username.clone(),
            requested_at: now,
            decided_by: String::new(),
            decided_at: None,
            response: String::new(),
        };
        match self.store.insert_refund(request, captured, 0, 0).await? {
            RefundInsert::Inserted(request) => {
                tracing::info!(refund = %request.id, transaction = sale.id, "refund requested by the cardholder");
                Ok(*request)
            }
            RefundInsert::OverCaptured { remaining_minor } => Err(RefundError::OverCaptured {
                asked_minor: amount_minor,
                remaining_minor,
            }),
        }
    }

    /// A refund part by the merchant's staff: reserved against the sale, then posted unless
    /// it is above the threshold.
    async fn part(
        &self,
        sale: &TransactionRecord,
        actor: &Actor,
        amount_minor: i64,
        reason: String,
        request_id: String,
        now: i64,
    ) -> Result<Refund, RefundError> {
        let (key, captured, currency) = refundable(sale)?;
        // A sale charged back is credited to the card already (`crate::disputes`).
        if let Some(dispute) = self.store.dispute_of_transaction(sale.id).await?
            && matches!(
                dispute.status.as_str(),
                "charging_back" | "charged_back" | "answered" | "reversing" | "won_by_cardholder"
            )
        {
            return Err(RefundError::NotRefundable(format!(
                "transaction {} was charged back (dispute {}): the card has the money already",
                sale.id, dispute.id
            )));
        }
        let (elsewhere_minor, first_seq) = match self.poster.undone(&key).await? {
            TerminalUndo::Nothing => (0, 1),
            TerminalUndo::Refunded { amount_minor } => (amount_minor, 2),
            TerminalUndo::Voided => {
                return Err(RefundError::NotRefundable(format!(
                    "transaction {} was voided at the terminal: nothing is left to refund",
                    sale.id
                )));
            }
            TerminalUndo::NotPosted => {
                return Err(RefundError::NotRefundable(format!(
                    "transaction {} is not in the books (it was reversed): nothing to refund",
                    sale.id
                )));
            }
        };
        let needs_approval = amount_minor > self.approval_above_minor;
        let part = Refund {
            id: new_id(),
            transaction_id: sale.id,
            merchant_id: sale.merchant_id.clone(),
            seq: 1,
            request_id,
            amount_minor,
            currency: i64::from(currency.numeric()),
            status: if needs_approval {
                "pending_approval"
            } else {
                "approved"
            }
            .into(),
            reason,
            requested_by: actor.username.clone(),
            requested_at: now,
            decided_by: String::new(),
            decided_at: None,
            response: String::new(),
        };
        let part = match self
            .store
            .insert_refund(part, captured, elsewhere_minor, first_seq)
            .await?
        {
            RefundInsert::Inserted(part) => *part,
            RefundInsert::OverCaptured { remaining_minor } => {
                return Err(RefundError::OverCaptured {
                    asked_minor: amount_minor,
                    remaining_minor,
                });
            }
        };
        tracing::info!(refund = %part.id, transaction = sale.id, seq = part.seq, amount_minor, by = %actor.username, needs_approval, "refund asked");
        if needs_approval {
            return Ok(part);
        }
        self.post(sale, part, now).await
    }

    /// A supervisor other than the one who asked approves `refund`, which is then posted. An
    /// approved refund whose posting did not finish (the acquirer was unavailable) is posted
    /// again, by the same ids.
    pub async fn approve(
        &self,
        sale: &TransactionRecord,
        refund: Refund,
        actor: &Actor,
        now: i64,
    ) -> Result<Refund, RefundError> {
        if actor.role != ActorRole::Supervisor {
            return Err(RefundError::Forbidden(
                "only the merchant's manager or administrator approves refunds".into(),
            ));
        }
        match refund.status.as_str() {
            "pending_approval" => {}
            "approved" => return self.post(sale, refund, now).await,
            other => {
                return Err(RefundError::Conflict(format!(
                    "refund {} is {other}: only a refund pending approval is approved",
                    refund.id
                )));
            }
        }
        if refund.requested_by == actor.username {
            return Err(RefundError::Forbidden(format!(
                "{} asked for refund {}: another manager or administrator approves it",
                actor.username, refund.id
            )));
        }
        self.move_refund(&refund.id, "pending_approval", "approved", actor, now, None)
            .await?;
        tracing::info!(refund = %refund.id, by = %actor.username, "refund approved");
        let approved = self.reread(&refund.id).await?;
        self.post(sale, approved, now).await
    }

    /// Declines a cardholder's request (any of the merchant's staff) or a refund pending
    /// approval (a supervisor), with the reason the other side sees.
    pub async fn decline(
        &self,
        refund: Refund,
        actor: &Actor,
        reason: &str,
        now: i64,
    ) -> Result<Refund, RefundError> {
        let reason = reason_of(reason)?;
        let from = match (refund.status.as_str(), actor.role) {
            ("requested", ActorRole::Cashier | ActorRole::Supervisor) => "requested",
            ("pending_approval", ActorRole::Supervisor) => "pending_approval",
            ("requested" | "pending_approval", _) => {
                return Err(RefundError::Forbidden(
                    "the merchant declines a cardholder's request, and its manager or administrator a refund pending approval".into(),
                ));
            }
            (other, _) => {
                return Err(RefundError::Conflict(format!(
                    "refund {} is {other}: only a request or a refund pending approval is declined",
                    refund.id
                )));
            }
        };
        self.move_refund(&refund.id, from, "declined", actor, now, Some(reason))
            .await?;
        tracing::info!(refund = %refund.id, by = %actor.username, "refund declined");
        self.reread(&refund.id).await
    }

    /// The merchant accepts a cardholder's request: a refund part for the amount asked (or
    /// `amount_minor`, less), under the same rules as one the merchant started.
    pub async fn accept(
        &self,
        sale: &TransactionRecord,
        request: Refund,
        actor: &Actor,
        amount_minor: Option<i64>,
        now: i64,
    ) -> Result<Refund, RefundError> {
        if actor.role == ActorRole::Cardholder {
            return Err(RefundError::Forbidden(
                "the merchant accepts a refund request".into(),
            ));
        }
        if request.status != "requested" {
            return Err(RefundError::Conflict(format!(
                "refund request {} is {}: only an open request is accepted",
                request.id, request.status
            )));
        }
        let amount_minor = positive(amount_minor.unwrap_or(request.amount_minor))?;
        if amount_minor > request.amount_minor {
            return Err(RefundError::Invalid(format!(
                "amount_minor: the cardholder asked for {}; accept that or less",
                request.amount_minor
            )));
        }
        // The request first, so that two staff accepting at once make one part.
        self.move_refund(&request.id, "requested", "accepted", actor, now, None)
            .await?;
        let part = self
            .part(
                sale,
                actor,
                amount_minor,
                request.reason.clone(),
                request.id.clone(),
                now,
            )
            .await;
        // Refused before anything was reserved: the request is open again. (A part that could
        // not be posted stays approved, reserved, and is posted by approving it again.)
        if matches!(
            part,
            Err(RefundError::NotRefundable(_)
                | RefundError::OverCaptured { .. }
                | RefundError::Invalid(_)
                | RefundError::Forbidden(_))
        ) {
            let reopen = RefundTransition {
                from: "accepted",
                to: "requested",
                decided_by: Some(String::new()),
                decided_at: None,
                response: None,
            };
            self.store.transition_refund(&request.id, reopen).await?;
        }
        part
    }

    /// Posts an approved part through the acquirer and records its answer.
    async fn post(
        &self,
        sale: &TransactionRecord,
        refund: Refund,
        now: i64,
    ) -> Result<Refund, RefundError> {
        let (key, _, currency) = refundable(sale)?;
        let seq = u32::try_from(refund.seq)
            .ok()
            .filter(|seq| *seq > 0)
            .ok_or_else(|| RefundError::Conflict(format!("{} is not a refund part", refund.id)))?;
        let part = RefundPart {
            sale: key,
            refund_id: refund.id.clone(),
            seq,
            amount: Amount::new(refund.amount_minor, currency),
            card: sale.card.clone(),
            rrn: sale.rrn.clone(),
            auth_code: sale.auth_code.clone(),
        };
        let (to, response) = match self.poster.post(&part).await? {
            Posting::Refunded => ("refunded", "00".to_owned()),
            Posting::Refused { response, reason } => ("failed", format!("{response}: {reason}")),
        };
        let change = RefundTransition {
            from: "approved",
            to,
            decided_by: None,
            decided_at: Some(now),
            response: Some(response),
        };
        self.store.transition_refund(&refund.id, change).await?;
        tracing::info!(refund = %refund.id, transaction = sale.id, status = to, "refund posted");
        self.reread(&refund.id).await
    }

    async fn move_refund(
        &self,
        id: &str,
        from: &'static str,
        to: &'static str,
        actor: &Actor,
        now: i64,
        response: Option<String>,
    ) -> Result<(), RefundError> {
        let change = RefundTransition {
            from,
            to,
            decided_by: Some(actor.username.clone()),
            decided_at: Some(now),
            response,
        };
        if self.store.transition_refund(id, change).await? {
            Ok(())
        } else {
            Err(RefundError::Conflict(format!(
                "refund {id} changed meanwhile; look at it again"
            )))
        }
    }

    async fn reread(&self, id: &str) -> Result<Refund, RefundError> {
        self.store
            .refund(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("refund {id} vanished")).into())
    }
}
