//! Adjustments: how operations resolves a break of a closed cycle (`easypos settle --adjust`).
//!
//! A break is left out of its cycle's figures, so its money is neither paid nor cleared. An
//! adjustment is the operator's decision on it, with a reason: a signed amount owed to the
//! merchant (positive: the acquirer pays the merchant more; negative: the merchant owes it),
//! posted as one transfer to the merchant's "due from the merchant" account
//! (`chart::due_from_merchant`), the account that carries debts between cycles. The next cycle
//! of the merchant settles it with its payout, as it settles a carried debt.
//!
//! The other side of the transfer is where the break's money sits: the merchant's settlement
//! account when the break's transfer moved it (a transfer made by no message, or one whose
//! amount or trace number disagreed with its message: the money the cycle left there), else
//! the acquirer's settlement adjustments account, a suspense account per currency
//! (`chart::settlement_adjustments`). By default the amount is what the break's transfer did
//! to the merchant's settlement account; a break without such a transfer needs `amount`.
//!
//! The transfer's id comes from (date, break): adjusting a break twice posts once. It commits
//! with its record (store meta `clearing/adjustment/<date>/<break>`) in one transaction; the
//! record is how the reconciliation report shows the break as resolved. Each adjustment posted
//! is written to the audit log.

use crate::collect::{Break, BreakKind};
use crate::cycle::format_date;
use crate::{ClearingError, Settings, chart};
use issuer::BusinessDate;
use ledger::{AccountId, AccountSpec, Outcome, TransferError, TransferId, TransferRequest};
use money::{Amount, Currency};
use serde::{Deserialize, Serialize};
use store::Store;

/// The transfer code of an adjustment.
pub const CODE_ADJUSTMENT: u16 = 1206;

/// Longest reason an operator gives.
pub const MAX_REASON_CHARS: usize = 500;

/// An adjustment asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdjustRequest {
    pub date: BusinessDate,
    /// The break, as the reconciliation report names it: its transfer id (32 hex digits), or
    /// `journal:<id>`.
    pub reference: String,
    /// Minor units owed to the merchant (negative: owed by it); `None`: what the break's
    /// transfer did to the merchant's settlement account.
    pub amount_minor: Option<i64>,
    pub reason: String,
    pub operator: String,
    pub now_unix_seconds: i64,
}

/// A posted adjustment, as kept in the store's meta table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjustment {
    pub date: String,
    pub reference: String,
    pub break_kind: String,
    pub merchant_id: String,
    /// ISO 4217 alphabetic.
    pub currency: String,
    /// Owed to the merchant (negative: owed by it).
    pub amount_minor: i64,
    /// The adjustment's transfer, 32 hex digits.
    pub transfer: String,
    /// `settlement` (the merchant's settlement account) or `suspense` (settlement
    /// adjustments).
    pub against: String,
    pub reason: String,
    pub operator: String,
    pub at_unix: i64,
}

fn meta_key(date: &str, reference: &str) -> String {
    format!("clearing/adjustment/{date}/{reference}")
}

fn refused(text: String) -> ClearingError {
    ClearingError::Adjustment(text)
}

/// The adjustment of `found`, if one was posted.
pub async fn resolution(
    store: &Store,
    date: &str,
    found: &Break,
) -> Result<Option<Adjustment>, ClearingError> {
    let reference = found.reference();
    if reference.is_empty() {
        return Ok(None);
    }
    let Some(text) = store.meta(&meta_key(date, &reference)).await? else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|error| {
        ClearingError::Store(store::StoreError::Corrupt(format!(
            "the adjustment of break {reference} of {date}: {error}"
        )))
    })
}

/// Posts the adjustment of a break of a closed cycle. `Ok((adjustment, true))` when posted
/// now, `(…, false)` when the break was adjusted already with the same amount (nothing
/// posted). Refused, posting nothing, for a cycle not closed, a break not in it, a reason
/// missing, or an amount other than the one posted before.
pub async fn adjust(
    store: &Store,
    settings: &Settings,
    request: &AdjustRequest,
) -> Result<(Adjustment, bool), ClearingError> {
    let date = format_date(request.date);
    let reason = request.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(refused(format!(
            "give the adjustment a reason of 1 to {MAX_REASON_CHARS} characters: what was found, and who decided"
        )));
    }
    let operator = request.operator.trim();
    if operator.is_empty() {
        return Err(refused(
            "name the operator who adjusts (--operator): the audit log keeps it".to_owned(),
        ));
    }
    if crate::post::record_of(store, request.date).await?.is_none() {
        return Err(refused(format!(
            "the cycle of {date} is not closed: settle it first, then adjust its breaks"
        )));
    }
    let window = settings.cycle.window(request.date);
    let directory = store.load_directory().await?;
    let day = crate::collect::collect(store, &directory, window, &mut |_| {}).await?;
    let Some(found) = day
        .breaks
        .iter()
        .find(|found| found.reference() == request.reference)
    else {
        return Err(refused(format!(
            "the cycle of {date} has no break {}: name one as the reconciliation report does (its transfer_id, or journal:<journal_id>)",
            request.reference
        )));
    };
    let Some(merchant_id) = found.merchant_id.clone() else {
        return Err(refused(format!(
            "break {} moved no merchant's account: it has nobody to pay or charge, and is resolved in the books by hand",
            request.reference
        )));
    };
    let merchant = directory
        .merchants
        .iter()
        .find(|merchant| merchant.id == merchant_id)
        .ok_or_else(|| ClearingError::UnknownMerchant {
            merchant_id: merchant_id.clone(),
        })?;
    // What the break's transfer did to the merchant's settlement account, if it moved it.
    let moved = match (found.kind, found.transfer) {
        (
            BreakKind::NotInJournal | BreakKind::AmountDiffers | BreakKind::OtherMessage,
            Some(id),
        ) => store.transfer(id).await?.and_then(|transfer| {
            if transfer.credit == merchant.settlement_account {
                Some(transfer.amount)
            } else if transfer.debit == merchant.settlement_account {
                Some(Amount::new(
                    -transfer.amount.minor(),
                    transfer.amount.currency(),
                ))
            } else {
                None
            }
        }),
        _ => None,
    };
    let currency = moved
        .map(|amount| amount.currency())
        .or(found.amount.map(|amount| amount.currency()))
        .ok_or_else(|| refused(format!("break {} has no currency", request.reference)))?;
    let amount_minor = match (request.amount_minor, moved) {
        (Some(minor), _) => minor,
        (None, Some(amount)) => amount.minor(),
        (None, None) => {
            return Err(refused(format!(
                "break {} ({}) moved no money on merchant {merchant_id}'s settlement account: give the amount owed to the merchant (--amount, minor units, negative when the merchant owes it)",
                request.reference,
                found.kind.as_str()
            )));
        }
    };
    if amount_minor == 0 {
        return Err(refused(
            "an adjustment of zero moves nothing: give a non-zero amount".to_owned(),
        ));
    }
    let (against, counter) = if moved.is_some() {
        ("settlement", merchant.settlement_account)
    } else {
        (
            "suspense",
            chart::settlement_adjustments(day.acquirer, currency),
        )
    };
    let owed = chart::due_from_merchant(day.acquirer, &merchant_id, currency);
    let id = TransferId::from_key(
        "clearing",
        format!("{date}|adjustment|{}", request.reference).as_bytes(),
    );
    let adjustment = Adjustment {
        date: date.clone(),
        reference: request.reference.clone(),
        break_kind: found.kind.as_str().to_owned(),
        merchant_id: merchant_id.clone(),
        currency: currency.alpha().to_owned(),
        amount_minor,
        transfer: format!("{:032x}", id.0),
        against: against.to_owned(),
        reason: reason.to_owned(),
        operator: operator.to_owned(),
        at_unix: request.now_unix_seconds,
    };
    if let Some(before) = resolution(store, &date, found).await? {
        if before.amount_minor != amount_minor || before.currency != adjustment.currency {
            return Err(refused(format!(
                "break {} was adjusted already by {} for {} {} minor units; an adjustment is not changed: adjust the merchant's next cycle instead",
                request.reference, before.operator, before.currency, before.amount_minor
            )));
        }
        return Ok((before, false));
    }
    open_accounts(
        store,
        day.acquirer,
        &merchant_id,
        currency,
        counter,
        against,
    )
    .await?;
    // Owed to the merchant: the counter account pays "due from the merchant" down.
    let (debit, credit) = if amount_minor > 0 {
        (counter, owed)
    } else {
        (owed, counter)
    };
    let transfer =
        TransferRequest::posted(id, debit, credit, Amount::new(amount_minor.abs(), currency))
            .code(CODE_ADJUSTMENT);
    let text = serde_json::to_string(&adjustment)
        .map_err(|error| refused(format!("the adjustment's record: {error}")))?;
    let results = store
        .submit_recording(vec![transfer], &meta_key(&date, &request.reference), &text)
        .await?;
    match results.first() {
        Some(Ok(Outcome::Created(_))) => {}
        Some(Ok(_)) => return Ok((adjustment, false)),
        Some(Err(TransferError::ExistsWithDifferentContent)) => {
            return Err(refused(format!(
                "break {} was adjusted already with another amount",
                request.reference
            )));
        }
        Some(Err(error)) => {
            return Err(ClearingError::Refused(format!(
                "the adjustment {}: {error}",
                adjustment.transfer
            )));
        }
        None => return Err(ClearingError::Refused("no answer from the ledger".into())),
    }
    store
        .append_audit(
            store::audit::NewAuditEntry::new(
                operator,
                "settlement.adjust",
                format!("cycle {date} break {}", request.reference),
                format!(
                    "{} {} minor units owed to merchant {merchant_id} ({}, against {against}): {reason}",
                    adjustment.currency,
                    amount_minor,
                    adjustment.break_kind
                ),
                request.now_unix_seconds,
            )
            .tenant(format!("merchant:{merchant_id}")),
        )
        .await?;
    Ok((adjustment, true))
}

async fn open_accounts(
    store: &Store,
    acquirer: ledger::InstitutionId,
    merchant_id: &str,
    currency: Currency,
    counter: AccountId,
    against: &str,
) -> Result<(), ClearingError> {
    let mut specs = vec![AccountSpec::new(
        chart::due_from_merchant(acquirer, merchant_id, currency),
        acquirer,
        currency,
        chart::CODE_DUE_FROM_MERCHANT,
    )];
    if against == "suspense" {
        specs.push(AccountSpec::new(
            counter,
            acquirer,
            currency,
            chart::CODE_SETTLEMENT_ADJUSTMENTS,
        ));
    }
    for (spec, opened) in specs
        .iter()
        .zip(store.create_accounts(specs.clone()).await?)
    {
        if let Err(error) = opened {
            return Err(ClearingError::Refused(format!(
                "account {:032x} (code {}): {error}",
                spec.id.0, spec.code
            )));
        }
    }
    Ok(())
}
