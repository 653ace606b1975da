//! The wallet institution inside `easypos up`: the demo wallets (one per demo cardholder,
//! linked to the cardholder's CNY debit card, empty until topped up) and the pass that closes
//! unpaid orders whose time ran out.

use anyhow::Context;
use std::time::Duration;
use tokio::sync::watch;
use wallet::{NewWallet, Wallets};

/// The demo wallets' payment password (a published test password, like the demo PIN).
pub const DEMO_WALLET_PASSWORD: &str = "135790";
/// How often unpaid orders are closed: a terminal polls every 3 s, so a second is plenty.
pub const CLOSE_INTERVAL: Duration = Duration::from_secs(1);

/// The demo wallet of a cardholder: `W-` and the cardholder id.
pub fn demo_wallet_id(cardholder_id: &str) -> String {
    format!("W-{cardholder_id}")
}

/// Opens the demo wallets (idempotent: an existing wallet keeps its password and balance).
pub async fn seed_demo(wallets: &Wallets) -> anyhow::Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for demo_card in demo::cards() {
        let card = &demo_card.card;
        let usable = card.product == store::directory::CardProduct::Debit
            && card.currency == money::Currency::CNY
            && demo_card.status == "active";
        if !usable || !seen.insert(card.cardholder_id.clone()) {
            continue;
        }
        wallets
            .open_wallet(NewWallet {
                id: demo_wallet_id(&card.cardholder_id),
                cardholder_id: card.cardholder_id.clone(),
                currency: money::Currency::CNY,
                linked_card_id: Some(card.id.clone()),
                password: DEMO_WALLET_PASSWORD.to_owned(),
            })
            .await
            .with_context(|| format!("opening the demo wallet of {}", card.cardholder_id))?;
    }
    Ok(())
}

/// Closes due orders every `interval` until `stopped` says so, on the one node of those sharing
/// `store` that leads the job (docs/scaling.md).
pub async fn close_loop(
    wallets: Wallets,
    store: std::sync::Arc<store::Store>,
    interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopped.wait_for(|stopping| *stopping) => return,
        }
        if !store.leads(store::leader::Job::WalletOrders).await {
            continue;
        }
        match wallets.close_due().await {
            Ok(0) => {}
            Ok(closed) => tracing::info!(closed, "closed unpaid wallet orders"),
            Err(error) => tracing::warn!(%error, "closing unpaid wallet orders failed"),
        }
        if let Err(error) = wallets.forget_old_codes().await {
            tracing::warn!(%error, "forgetting old payment codes failed");
        }
    }
}
