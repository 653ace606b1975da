//! Chargebacks in end of day (issue 9's disputes, R18): a dispute charged back moves money
//! through the acquirer host (`acquirer::console_refund`): two linked transfers opposite the
//! sale's, with ids from the sale's key, `chargeback/issuer` (the card credited) and
//! `chargeback/acquirer` (the merchant's settlement debited, the pool of what issuers owe
//! credited). A decision for the merchant reverses both with `chargeback-reversal/*`.
//!
//! The acquirer's side is what the cycle counts: a chargeback takes from the merchant's
//! settlement and from what the card's issuer owes the acquirer, like a refund, and its fee is
//! not given back. Each transfer belongs to the cycle its timestamp falls in. The disputes
//! looked at are those charged back or decided in the cycle, with a day's margin on each side
//! for the clocks of the nodes that made the steps (their times are the caller's); a
//! chargeback transfer whose dispute is outside it is reported by the ledger sweep as made by
//! no message, never counted silently.

use crate::ClearingError;
use crate::collect::{Break, BreakKind, Effect, Item, Lookup, describe, key, merchant_side};
use crate::cycle::Window;
use ledger::{InstitutionId, Transfer, TransferId};
use money::{Amount, Currency};
use std::collections::HashSet;
use store::Store;
use store::accounts::TransactionFilter;
use store::disputes::Dispute;

/// Disputes one cycle may hold; a larger day is refused rather than read without bound.
pub const MAX_DISPUTES_PER_CYCLE: u32 = 1_000_000;

/// Seconds on each side of the cycle in which a dispute's step may be dated.
const MARGIN_SECONDS: i64 = 86_400;

/// The acquirer transfers of a chargeback and of its reversal, under the sale's key.
const STEPS: [(&str, Effect, &str); 2] = [
    ("chargeback/acquirer", Effect::Chargeback, "Chargeback"),
    (
        "chargeback-reversal/acquirer",
        Effect::ChargebackReversed,
        "ChargebackReversal",
    ),
];

/// The cycle's chargeback items and breaks; every chargeback transfer found goes into
/// `journaled`, so the ledger sweep does not report it as made by no message.
pub(crate) async fn items(
    store: &Store,
    acquirer: InstitutionId,
    lookup: &Lookup<'_>,
    window: Window,
    journaled: &mut HashSet<TransferId>,
) -> Result<(Vec<Item>, Vec<Break>), ClearingError> {
    let from = window.start_us.div_euclid(1_000_000) - MARGIN_SECONDS;
    let to = window.end_us.div_euclid(1_000_000) + 1 + MARGIN_SECONDS;
    let disputes = store
        .disputes_moved_between(from, to, MAX_DISPUTES_PER_CYCLE + 1)
        .await?;
    if disputes.len() > MAX_DISPUTES_PER_CYCLE as usize {
        return Err(ClearingError::TooLarge(format!(
            "the cycle holds more than {MAX_DISPUTES_PER_CYCLE} disputes"
        )));
    }
    let (mut items, mut breaks) = (Vec::new(), Vec::new());
    for dispute in &disputes {
        let Some(sale) = store
            .transactions(&TransactionFilter {
                id: Some(dispute.transaction_id),
                limit: 1,
                ..TransactionFilter::default()
            })
            .await?
            .into_iter()
            .next()
        else {
            // The sale's journal row is gone: its chargeback's transfers are left to the sweep,
            // which lists them as made by no message.
            continue;
        };
        let Some(sale_key) = key(&sale.terminal_id, sale.batch, sale.stan) else {
            continue;
        };
        for (purpose, effect, kind) in STEPS {
            let id = sale_key.transfer_id(purpose);
            let Some(transfer) = store.transfer(id).await? else {
                continue;
            };
            journaled.insert(id);
            let at_us = i64::try_from(transfer.timestamp / 1_000).unwrap_or(i64::MAX);
            if !window.contains(at_us) {
                continue;
            }
            let breaking = |kind_of: BreakKind, detail: String| Break {
                kind: kind_of,
                merchant_id: Some(sale.merchant_id.clone()),
                resolution: None,
                journal_id: Some(sale.id),
                transfer: Some(id),
                terminal_id: sale.terminal_id.clone(),
                batch: sale.batch,
                stan: sale.stan,
                message_kind: kind.to_owned(),
                amount: Some(transfer.amount),
                detail,
            };
            let merchant = lookup
                .merchants
                .get(sale.merchant_id.as_str())
                .ok_or_else(|| ClearingError::UnknownMerchant {
                    merchant_id: sale.merchant_id.clone(),
                })?;
            if let Err((kind_of, detail)) = checked(acquirer, dispute, merchant, &transfer) {
                breaks.push(breaking(kind_of, detail));
                continue;
            }
            let card = sale.card.clone().unwrap_or_default();
            let (issuer, product) = lookup.card(&card)?;
            items.push(Item {
                journal_id: sale.id,
                received_at_us: at_us,
                kind: kind.to_owned(),
                reverses: (effect == Effect::ChargebackReversed).then(|| "Chargeback".to_owned()),
                effect,
                terminal_id: sale.terminal_id.clone(),
                merchant_id: sale.merchant_id.clone(),
                batch: sale.batch.unwrap_or_default(),
                stan: sale.stan.unwrap_or_default(),
                rrn: sale.rrn.clone(),
                card,
                issuer,
                product: product.into(),
                mcc: merchant.mcc.clone(),
                amount: transfer.amount,
                transfer: id,
            });
        }
    }
    Ok((items, breaks))
}

/// Whether the transfer is the dispute's amount on its merchant's settlement account; the
/// break's kind and sentence when not.
fn checked(
    acquirer: InstitutionId,
    dispute: &Dispute,
    merchant: &store::directory::Merchant,
    transfer: &Transfer,
) -> Result<(), (BreakKind, String)> {
    let disputed = u16::try_from(dispute.currency)
        .ok()
        .and_then(|numeric| Currency::from_numeric(numeric).ok())
        .map(|currency| Amount::new(dispute.amount_minor, currency));
    if disputed != Some(transfer.amount) {
        return Err((
            BreakKind::AmountDiffers,
            format!(
                "dispute {} charged back {}, the ledger moved {}",
                dispute.id,
                disputed.map_or("no amount".to_owned(), describe),
                describe(transfer.amount)
            ),
        ));
    }
    let pooled = acquirer::chart::acquirer_due_from_issuers(acquirer, transfer.amount.currency());
    if merchant_side(transfer, pooled) != Some(merchant.settlement_account) {
        return Err((
            BreakKind::WrongAccount,
            format!(
                "the chargeback of dispute {} does not move merchant {}'s settlement account",
                dispute.id, merchant.id
            ),
        ));
    }
    Ok(())
}
