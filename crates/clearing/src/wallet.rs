//! QR payments in end of day (issue 8): the wallet's orders settle like card sales, with the
//! wallet institution as the counterparty that owes the acquirer. An order moves merchant
//! money through the acquirer's transfers the wallet made with ids from the order id
//! (`wallet::chart::transfer_id`): `pay/acquirer` (a purchase), `refund/acquirer` (a refund)
//! and `reversal/acquirer` (a cancel). Each transfer belongs to the cycle its timestamp falls in.
//!
//! The orders looked at are those created or changed in the cycle (and a margin): a payment
//! comes within an order's timeout (at most 15 minutes) of its creation, and a refund or
//! reversal is an order's last change. Wallet payments are priced on fee lines of their own
//! (`product = "wallet"` in the fee schedule): a cycle with QR payments and no wallet rate is
//! refused, as one with an unpriced card product is.

use crate::ClearingError;
use crate::collect::{Break, BreakKind, Effect, Item};
use crate::cycle::Window;
use ledger::{InstitutionId, TransferId};
use std::collections::HashSet;
use store::Store;
use store::directory::{Directory, InstitutionKind};
use store::wallets::OrderRecord;

/// Orders one cycle may hold; a larger day is refused rather than read without bound.
pub const MAX_ORDERS_PER_CYCLE: u32 = 1_000_000;
/// Seconds before the cycle in which an order paid in it may have been created: the longest
/// order timeout (`wallet::MAX_ORDER_TIMEOUT_SECONDS`).
const CREATED_BEFORE_SECONDS: i64 = wallet::MAX_ORDER_TIMEOUT_SECONDS;

/// The cycle's QR items and breaks; every wallet transfer found goes into `journaled`, so the
/// ledger sweep does not report it as made by no message.
pub(crate) async fn items(
    store: &Store,
    directory: &Directory,
    window: Window,
    journaled: &mut HashSet<TransferId>,
) -> Result<(Vec<Item>, Vec<Break>), ClearingError> {
    let wallets: Vec<InstitutionId> = directory
        .institutions
        .iter()
        .filter(|institution| institution.kind == InstitutionKind::Wallet)
        .map(|institution| institution.id)
        .collect();
    let (mut items, mut breaks) = (Vec::new(), Vec::new());
    if wallets.is_empty() {
        return Ok((items, breaks));
    }
    let from = window.start_us / 1_000_000 - CREATED_BEFORE_SECONDS;
    let to = window.end_us / 1_000_000 + 1;
    let orders = store
        .orders_between(from, to, MAX_ORDERS_PER_CYCLE + 1)
        .await?;
    if orders.len() > MAX_ORDERS_PER_CYCLE as usize {
        return Err(ClearingError::TooLarge(format!(
            "the cycle holds more than {MAX_ORDERS_PER_CYCLE} wallet orders"
        )));
    }
    for order in &orders {
        for (purpose, effect, kind) in [
            ("pay", Effect::Purchase, "QrPayment"),
            ("refund", Effect::Refund, "QrRefund"),
            ("reversal", Effect::Cancel, "QrReversal"),
        ] {
            let id = wallet::chart::transfer_id(&format!("{purpose}/acquirer"), &order.id);
            let Some(transfer) = store.transfer(id).await? else {
                continue;
            };
            journaled.insert(id);
            let at_us = i64::try_from(transfer.timestamp / 1_000).unwrap_or(i64::MAX);
            if !window.contains(at_us) {
                continue;
            }
            match item(store, directory, &wallets, order, &transfer, effect, kind).await? {
                Ok(item) => items.push(item),
                Err(found) => breaks.push(found),
            }
        }
    }
    Ok((items, breaks))
}

async fn item(
    store: &Store,
    directory: &Directory,
    wallets: &[InstitutionId],
    order: &OrderRecord,
    transfer: &ledger::Transfer,
    effect: Effect,
    kind: &str,
) -> Result<Result<Item, Break>, ClearingError> {
    let breaking = |kind_of: BreakKind, detail: String| Break {
        kind: kind_of,
        merchant_id: Some(order.merchant_id.clone()),
        resolution: None,
        journal_id: None,
        transfer: Some(transfer.id()),
        terminal_id: order.terminal_id.clone(),
        batch: None,
        stan: None,
        message_kind: kind.to_owned(),
        amount: Some(transfer.amount),
        detail,
    };
    let merchant = directory
        .merchants
        .iter()
        .find(|merchant| merchant.id == order.merchant_id)
        .ok_or_else(|| ClearingError::UnknownMerchant {
            merchant_id: order.merchant_id.clone(),
        })?;
    if transfer.amount != order.amount {
        return Ok(Err(breaking(
            BreakKind::AmountDiffers,
            format!(
                "wallet order {} is not the amount its transfer moved",
                order.id
            ),
        )));
    }
    if transfer.debit != merchant.settlement_account
        && transfer.credit != merchant.settlement_account
    {
        return Ok(Err(breaking(
            BreakKind::WrongAccount,
            format!(
                "the transfer of wallet order {} does not move merchant {}'s settlement account",
                order.id, order.merchant_id
            ),
        )));
    }
    // The wallet institution whose settlement account the order's own side credited.
    let wallet_side = store
        .transfer(wallet::chart::transfer_id("pay/wallet", &order.id))
        .await?;
    let issuer = wallets.iter().copied().find(|institution| {
        wallet_side.as_ref().is_some_and(|side| {
            side.credit == acquirer::chart::issuer_settlement(*institution, order.amount.currency())
        })
    });
    let Some(issuer) = issuer else {
        return Ok(Err(breaking(
            BreakKind::NotInLedger,
            format!(
                "wallet order {} has no payment in a wallet's books",
                order.id
            ),
        )));
    };
    Ok(Ok(Item {
        journal_id: 0,
        received_at_us: i64::try_from(transfer.timestamp / 1_000).unwrap_or(i64::MAX),
        kind: kind.to_owned(),
        reverses: (effect == Effect::Cancel).then(|| "QrPayment".to_owned()),
        effect,
        terminal_id: order.terminal_id.clone(),
        merchant_id: order.merchant_id.clone(),
        batch: 0,
        stan: 0,
        rrn: Some(order.id.clone()),
        card: format!("wallet {}", order.wallet_id.clone().unwrap_or_default()),
        issuer,
        product: crate::schedule::Product::Wallet,
        mcc: merchant.mcc.clone(),
        amount: transfer.amount,
        transfer: transfer.id(),
    }))
}
