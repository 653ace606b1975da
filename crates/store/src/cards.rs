//! Authorizations that change a card's issuer state and the ledger together, exactly.
//!
//! A card's state (PIN failures, highest ATC, spend of the day) is checked and changed inside
//! the writer's transaction, in the same ledger session as the authorization's transfers, the
//! way the ledger checks balances: two authorizations on one card — in one group, or on two
//! hosts sharing PostgreSQL — can never both pass a daily limit or reuse an ATC. Both backends
//! run [`authorize`]; they differ only in how they load and lock the card rows.

use crate::{StoreError, TransferResults};
use ledger::{LedgerState, Session, Timestamp, TransferRequest};
use std::collections::{BTreeSet, HashMap};

/// What the issuer keeps about a card for authorization, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerCard {
    pub card_id: String,
    /// `active`, `frozen`, `blocked`, `lost` or `stolen`.
    pub status: String,
    pub service_code: String,
    /// `visa-pvv` or `ibm3624`; `None` for a card without a PIN.
    pub pin_method: Option<String>,
    /// PVKI for a PVV.
    pub pin_key_index: Option<i64>,
    /// The PVV or the IBM 3624 offset (not secret on its own, never the PIN).
    pub pin_reference: Option<String>,
    /// EMV cryptogram version number.
    pub cryptogram_version: i64,
    pub daily_limit_minor: Option<i64>,
    pub pin_failures: i64,
    pub last_atc: Option<i64>,
    pub spent_minor: i64,
    /// The business date (`YYYY-MM-DD`) `spent_minor` belongs to.
    pub spent_on: Option<String>,
}

pub(crate) const ISSUER_CARD_COLUMNS: &str = "card_id, status, service_code, pin_method, pin_key_index, pin_reference, cryptogram_version, daily_limit_minor, pin_failures, last_atc, spent_minor, spent_on";

/// What the issuer's decision does to the PIN try counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinEffect {
    Unchanged,
    /// The right PIN: the count starts again.
    Reset,
    /// A wrong PIN: one more failure.
    Failed,
}

/// Spending counted against the card's daily limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spend {
    /// Business date, `YYYY-MM-DD`.
    pub date: String,
    /// Negative to give spending back (a void or reversal of a purchase that day): only while
    /// `date` is still the card's spending day, and never below zero.
    pub amount_minor: i64,
}

/// How an authorization changes the card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardEffect {
    pub card_id: String,
    pub pin: PinEffect,
    /// The ATC of a verified cryptogram: it must be above the highest seen, and becomes it.
    pub atc: Option<i64>,
    /// Applied, within the daily limit, only if every transfer is newly created.
    pub spend: Option<Spend>,
}

/// An authorization to commit: its ledger transfers and its effect on the card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub transfers: Vec<TransferRequest>,
    pub card: CardEffect,
}

/// What became of the card's checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardOutcome {
    /// Checks passed; the effect was applied (the spend only if the transfers succeeded).
    Applied,
    /// Another authorization already used this ATC or a later one: nothing was applied.
    AtcReplayed,
    /// The spend would pass the daily limit: no transfers ran; PIN and ATC effects applied.
    LimitExceeded,
    /// No issuer record for the card: nothing was applied.
    UnknownCard,
}

/// The outcome of an authorization. `transfers` is empty when the card checks stopped it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationResult {
    pub card: CardOutcome,
    pub transfers: TransferResults,
}

/// Cards touched by a group: loaded once, changed in memory, written once at the end.
#[derive(Debug, Default)]
pub(crate) struct CardSet {
    cards: HashMap<String, Option<IssuerCard>>,
    dirty: BTreeSet<String>,
}

impl CardSet {
    /// A set preloaded with locked rows (PostgreSQL); cards not in it do not exist.
    pub(crate) fn preloaded(ids: impl IntoIterator<Item = String>, cards: Vec<IssuerCard>) -> Self {
        let mut set = CardSet::default();
        for id in ids {
            set.cards.insert(id, None);
        }
        for card in cards {
            set.cards.insert(card.card_id.clone(), Some(card));
        }
        set
    }

    fn get(
        &mut self,
        card_id: &str,
        load: &mut dyn FnMut(&str) -> Result<Option<IssuerCard>, StoreError>,
    ) -> Result<Option<&mut IssuerCard>, StoreError> {
        if !self.cards.contains_key(card_id) {
            let loaded = load(card_id)?;
            self.cards.insert(card_id.to_owned(), loaded);
        }
        Ok(self.cards.get_mut(card_id).and_then(Option::as_mut))
    }

    /// The changed cards, to write back.
    pub(crate) fn dirty(&self) -> impl Iterator<Item = &IssuerCard> {
        self.dirty
            .iter()
            .filter_map(|id| self.cards.get(id).and_then(Option::as_ref))
    }
}

/// Checks and applies one authorization inside a group: card guards first (ATC, daily limit),
/// then the transfers in the group's ledger session, then the card's new state.
pub(crate) fn authorize<S: LedgerState>(
    session: &mut Session<'_, S>,
    cards: &mut CardSet,
    load: &mut dyn FnMut(&str) -> Result<Option<IssuerCard>, StoreError>,
    authorization: &Authorization,
    now: Timestamp,
) -> Result<AuthorizationResult, StoreError> {
    let effect = &authorization.card;
    let stopped = |card| {
        Ok(AuthorizationResult {
            card,
            transfers: Vec::new(),
        })
    };
    let Some(card) = cards.get(&effect.card_id, load)? else {
        return stopped(CardOutcome::UnknownCard);
    };
    if let (Some(atc), Some(last)) = (effect.atc, card.last_atc)
        && atc <= last
    {
        return stopped(CardOutcome::AtcReplayed);
    }
    match effect.pin {
        PinEffect::Unchanged => {}
        PinEffect::Reset => card.pin_failures = 0,
        PinEffect::Failed => card.pin_failures += 1,
    }
    if let Some(atc) = effect.atc {
        card.last_atc = Some(atc);
    }
    let spent_today = |card: &IssuerCard, date: &str| {
        if card.spent_on.as_deref() == Some(date) {
            card.spent_minor
        } else {
            0
        }
    };
    let over_limit = effect.spend.as_ref().is_some_and(|spend| {
        let total = spent_today(card, &spend.date).saturating_add(spend.amount_minor);
        card.daily_limit_minor.is_some_and(|limit| total > limit)
    });
    let outcome = if over_limit {
        AuthorizationResult {
            card: CardOutcome::LimitExceeded,
            transfers: Vec::new(),
        }
    } else {
        let transfers = session.execute(&authorization.transfers, now);
        if let Some(spend) = effect
            .spend
            .as_ref()
            // Only a first posting spends: a retry that finds its transfers already made
            // (two hosts racing on one message) must not count the money twice.
            .filter(|_| {
                transfers
                    .iter()
                    .all(|result| matches!(result, Ok(ledger::Outcome::Created(_))))
            })
        {
            if spend.amount_minor >= 0 {
                card.spent_minor =
                    spent_today(card, &spend.date).saturating_add(spend.amount_minor);
                card.spent_on = Some(spend.date.clone());
            } else if card.spent_on.as_deref() == Some(spend.date.as_str()) {
                card.spent_minor = card.spent_minor.saturating_add(spend.amount_minor).max(0);
            }
        }
        AuthorizationResult {
            card: CardOutcome::Applied,
            transfers,
        }
    };
    cards.dirty.insert(effect.card_id.clone());
    Ok(outcome)
}
