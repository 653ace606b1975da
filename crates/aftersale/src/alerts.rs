//! Cardholder alerts (R14): which transactions become alerts, whether a card's preferences
//! want one, and the words of a text or an e-mail. Pure: `api::alerts` reads the journal and
//! the wallet's orders after its cursor, asks [`from_journal`] / [`from_order`], queues what
//! [`wanted`] says in the store's outbox, and sends it.
//!
//! Alerts are made after the fact from the journal (which the acquirer host writes for every
//! answer anyway) rather than inside the authorization: the hot path writes nothing more, and
//! an alert is never the reason a sale is slow or fails.
//!
//! ```
//! use aftersale::alerts::{Channel, Preferences, wanted, from_journal};
//! use store::journal::JournalEntry;
//! let entry = JournalEntry {
//!     kind: "Sale".into(), mti: "0200".into(), terminal_id: "10000001".into(),
//!     merchant_id: "898310058120001".into(), batch: Some(1), stan: Some(7),
//!     amount_minor: Some(1_250), currency: Some(156), card: Some("621234******0003".into()),
//!     card_id: Some("card-1".into()), response: Some("51".into()),
//!     received_at: 1_764_000_000_000_000, ..JournalEntry::default()
//! };
//! let alert = from_journal(42, &entry).unwrap();
//! assert!(!alert.approved);
//! let preferences = Preferences { channels: vec![Channel::Sms], min_amount_minor: 5_000, declines_only: false };
//! // Below the threshold, but a decline is always worth knowing about.
//! assert!(wanted(&preferences, &alert));
//! ```

use serde::Serialize;
use store::journal::JournalEntry;
use store::wallets::{OrderRecord, OrderStatus};

/// Where an alert goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Channel {
    /// POSTed as signed JSON to the cardholder's URL (signed as merchant webhooks are).
    Webhook,
    /// Sent by e-mail through the platform's SMTP relay.
    Email,
    /// Sent as a text message through the SMS adapter.
    Sms,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Webhook, Channel::Email, Channel::Sms];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Webhook => "webhook",
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }

    pub fn parse(text: &str) -> Option<Channel> {
        Channel::ALL
            .into_iter()
            .find(|channel| channel.as_str() == text)
    }
}

/// What a card's holder wants to be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preferences {
    pub channels: Vec<Channel>,
    /// Approved transactions below this many minor units are not alerted.
    pub min_amount_minor: i64,
    /// Only declined transactions are alerted.
    pub declines_only: bool,
}

/// One transaction, as its holder is told of it: the card masked, never its number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// The transaction's business key: a terminal's retransmission has the same one, so it is
    /// alerted once.
    pub event_id: String,
    /// The card id or the wallet id.
    #[serde(skip)]
    pub target: String,
    /// `sale`, `refund`, `void`, `reversal`, `pre_authorization`, `completion`,
    /// `qr_payment`, `qr_refund`, `qr_reversal`.
    pub kind: &'static str,
    pub approved: bool,
    /// Field 39 of the answer (`00` approved), or the wallet order's status.
    pub response: String,
    pub amount_minor: i64,
    /// ISO 4217 alphabetic.
    pub currency: String,
    /// The masked card number, or the wallet id for a QR payment.
    pub card: String,
    pub merchant_id: String,
    pub terminal_id: String,
    /// Unix seconds.
    pub time: i64,
}

/// The alert of a journal row (`id` is its journal id), or `None` for a message that is not
/// a card transaction of a known card (sign-on, batch, balance inquiry, an unknown card).
pub fn from_journal(id: i64, entry: &JournalEntry) -> Option<Alert> {
    let kind = match entry.kind.as_str() {
        "Sale" => "sale",
        "Refund" => "refund",
        "SaleVoid" | "PreAuthorizationVoid" | "CompletionVoid" => "void",
        "Reversal" => "reversal",
        "PreAuthorization" => "pre_authorization",
        "PreAuthorizationCompletion" => "completion",
        _ => return None,
    };
    let target = entry.card_id.clone()?;
    let response = entry.response.clone()?;
    let currency = entry
        .currency
        .and_then(|numeric| u16::try_from(numeric).ok())
        .and_then(|numeric| money::Currency::from_numeric(numeric).ok())
        .map_or_else(String::new, |currency| currency.alpha().to_owned());
    // A terminal's message is named by its batch and trace number (a retransmission repeats
    // them); a console refund has no batch of its own, so its journal id names it.
    let event_id = match (entry.batch, entry.stan) {
        (Some(batch), Some(stan)) => {
            format!("txn:{}:{batch}:{stan}:{}", entry.terminal_id, entry.mti)
        }
        _ => format!("journal:{id}"),
    };
    Some(Alert {
        event_id,
        target,
        kind,
        approved: response == "00",
        response,
        amount_minor: entry.amount_minor.unwrap_or(0),
        currency,
        card: entry.card.clone().unwrap_or_default(),
        merchant_id: entry.merchant_id.clone(),
        terminal_id: entry.terminal_id.clone(),
        time: entry.received_at.div_euclid(1_000_000),
    })
}

/// The alert of a wallet order's change, or `None` for one no wallet paid (created, closed).
pub fn from_order(order: &OrderRecord) -> Option<Alert> {
    let kind = match order.status {
        OrderStatus::Paid => "qr_payment",
        OrderStatus::Refunded => "qr_refund",
        OrderStatus::Reversed => "qr_reversal",
        _ => return None,
    };
    let wallet = order.wallet_id.clone()?;
    Some(Alert {
        event_id: format!("order:{}:{}", order.id, order.status.as_str()),
        target: wallet.clone(),
        kind,
        approved: true,
        response: order.status.as_str().to_owned(),
        amount_minor: order.amount.minor(),
        currency: order.amount.currency().alpha().to_owned(),
        card: wallet,
        merchant_id: order.merchant_id.clone(),
        terminal_id: order.terminal_id.clone(),
        time: order.updated_at,
    })
}

/// Whether `preferences` want `alert`: a decline always (its amount does not matter, a
/// stolen card's tries are small), an approved transaction unless only declines are wanted
/// or it is below the threshold.
pub fn wanted(preferences: &Preferences, alert: &Alert) -> bool {
    if preferences.channels.is_empty() {
        return false;
    }
    if !alert.approved {
        return true;
    }
    !preferences.declines_only && alert.amount_minor >= preferences.min_amount_minor
}

/// The amount in major units (`12.50`), for the words of an alert.
fn major(alert: &Alert) -> String {
    match money::Currency::from_alpha(&alert.currency) {
        Ok(currency) => money::Amount::new(alert.amount_minor, currency).format_major(),
        Err(_) => alert.amount_minor.to_string(),
    }
}

/// One line for a text message or an e-mail's subject: what, how much, where, and what to
/// do if it was not the holder.
pub fn text(alert: &Alert, merchant_name: &str) -> String {
    let what = match alert.kind {
        "sale" => "Purchase",
        "refund" => "Refund",
        "void" => "Cancelled purchase",
        "reversal" => "Reversed purchase",
        "pre_authorization" => "Pre-authorization",
        "completion" => "Pre-authorization completed",
        "qr_payment" => "QR payment",
        "qr_refund" => "QR payment refunded",
        _ => "QR payment reversed",
    };
    let outcome = if alert.approved {
        "approved".to_owned()
    } else {
        format!("DECLINED ({})", alert.response)
    };
    let merchant = if merchant_name.is_empty() {
        alert.merchant_id.as_str()
    } else {
        merchant_name
    };
    format!(
        "easypos: {what} {outcome}, {} {} at {merchant}, card {}, {}. Not you? Freeze the card in the console.",
        alert.currency,
        major(alert),
        alert.card,
        crate::statement::local_time(alert.time.saturating_mul(1_000_000)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, response: &str, amount: i64) -> JournalEntry {
        JournalEntry {
            kind: kind.into(),
            mti: "0200".into(),
            terminal_id: "10000001".into(),
            merchant_id: "898310058120001".into(),
            batch: Some(1),
            stan: Some(7),
            amount_minor: Some(amount),
            currency: Some(156),
            card: Some("621234******0003".into()),
            card_id: Some("card-1".into()),
            response: Some(response.into()),
            received_at: 1_764_000_000_000_000,
            ..JournalEntry::default()
        }
    }

    #[test]
    fn card_transactions_become_alerts_and_other_messages_do_not() {
        let sale = from_journal(1, &entry("Sale", "00", 1_250)).unwrap();
        assert_eq!((sale.kind, sale.approved), ("sale", true));
        assert_eq!(sale.event_id, "txn:10000001:1:7:0200");
        assert_eq!(sale.target, "card-1");
        assert_eq!(sale.currency, "CNY");
        assert_eq!(
            from_journal(1, &entry("Refund", "00", 1)).unwrap().kind,
            "refund"
        );
        assert_eq!(
            from_journal(1, &entry("SaleVoid", "00", 1)).unwrap().kind,
            "void"
        );
        assert_eq!(
            from_journal(1, &entry("Reversal", "00", 1)).unwrap().kind,
            "reversal"
        );
        for kind in ["SignOn", "BalanceInquiry", "Settlement"] {
            assert_eq!(from_journal(1, &entry(kind, "00", 1)), None, "{kind}");
        }
        // An unknown card, or no answer: nobody to tell, or nothing to tell yet.
        let mut unknown = entry("Sale", "14", 1);
        unknown.card_id = None;
        assert_eq!(from_journal(1, &unknown), None);
        // A console refund has no batch of its own: its journal id names it.
        let mut console = entry("Refund", "00", 1);
        console.batch = None;
        assert_eq!(from_journal(9, &console).unwrap().event_id, "journal:9");
    }

    #[test]
    fn preferences_filter_by_amount_and_declines() {
        let small = from_journal(1, &entry("Sale", "00", 999)).unwrap();
        let large = from_journal(1, &entry("Sale", "00", 1_000)).unwrap();
        let declined = from_journal(1, &entry("Sale", "51", 1)).unwrap();
        let threshold = Preferences {
            channels: vec![Channel::Email],
            min_amount_minor: 1_000,
            declines_only: false,
        };
        assert!(!wanted(&threshold, &small));
        assert!(wanted(&threshold, &large));
        assert!(wanted(&threshold, &declined));
        let declines = Preferences {
            declines_only: true,
            ..threshold.clone()
        };
        assert!(!wanted(&declines, &large));
        assert!(wanted(&declines, &declined));
        let none = Preferences {
            channels: Vec::new(),
            ..threshold
        };
        assert!(!wanted(&none, &declined));
    }

    #[test]
    fn the_words_carry_the_masked_card_and_the_amount() {
        let declined = from_journal(1, &entry("Sale", "51", 1_250)).unwrap();
        let words = text(&declined, "Lao Zhang Noodles");
        assert!(words.contains("Purchase DECLINED (51)"), "{words}");
        assert!(words.contains("CNY 12.50 at Lao Zhang Noodles"), "{words}");
        assert!(words.contains("621234******0003"), "{words}");
    }
}
