//! What the API returns: JSON views of the store's records, kept apart from them (the store's
//! types follow the database, these follow the API's promise in `docs/api.md`). Cards appear
//! only masked: the first six and last four digits at most.

use crate::time::{rfc3339_micros, rfc3339_seconds};
use money::{Amount, Currency};
use serde::Serialize;
use store::accounts::{ApiKey, TransactionRecord, TransactionStatus, User};
use store::directory::{Card, Merchant, Terminal};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AmountView {
    /// Minor units (fen for CNY, cents for USD).
    pub minor: i64,
    /// ISO 4217 alphabetic code.
    pub currency: String,
    /// Major units as text, e.g. `12.34`.
    pub major: String,
}

impl AmountView {
    pub fn new(minor: i64, currency: Currency) -> Self {
        AmountView {
            minor,
            currency: currency.alpha().to_owned(),
            major: Amount::new(minor, currency).format_major(),
        }
    }

    fn of(minor: Option<i64>, numeric: Option<i64>) -> Option<Self> {
        let currency = Currency::from_numeric(u16::try_from(numeric?).ok()?).ok()?;
        Some(AmountView::new(minor?, currency))
    }
}

/// A page of a list: `next_cursor` is given to the next call as `cursor`, and is `null` on the
/// last page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TransactionView {
    pub id: String,
    pub received_at: String,
    pub kind: String,
    pub mti: String,
    pub merchant_id: String,
    pub terminal_id: String,
    pub amount: Option<AmountView>,
    /// Masked card number: first six and last four digits at most.
    pub card: Option<String>,
    pub status: &'static str,
    /// ISO 8583 field 39 of the answer.
    pub response_code: Option<String>,
    pub rrn: Option<String>,
    pub auth_code: Option<String>,
    pub batch: Option<i64>,
    pub stan: Option<i64>,
    pub original_batch: Option<i64>,
    pub original_stan: Option<i64>,
    pub duration_us: i64,
    /// The risk rules that fired, `name(action,score): reason; …`, or the freeze that stopped
    /// it (`frozen terminal`); `null` when none did.
    pub risk_rules: Option<String>,
}

impl From<&TransactionRecord> for TransactionView {
    fn from(record: &TransactionRecord) -> Self {
        TransactionView {
            id: record.id.to_string(),
            received_at: rfc3339_micros(record.received_at),
            kind: record.kind.clone(),
            mti: record.mti.clone(),
            merchant_id: record.merchant_id.clone(),
            terminal_id: record.terminal_id.clone(),
            amount: AmountView::of(record.amount_minor, record.currency),
            card: record.card.clone(),
            status: TransactionStatus::of(record.response.as_deref()).as_str(),
            response_code: record.response.clone(),
            rrn: record.rrn.clone(),
            auth_code: record.auth_code.clone(),
            batch: record.batch,
            stan: record.stan,
            original_batch: record.original_batch,
            original_stan: record.original_stan,
            duration_us: record.duration_us,
            risk_rules: record.risk.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MerchantView {
    pub id: String,
    pub name: String,
    pub name_zh: String,
    pub city: String,
    pub mcc: String,
}

impl From<&Merchant> for MerchantView {
    fn from(merchant: &Merchant) -> Self {
        MerchantView {
            id: merchant.id.clone(),
            name: merchant.name.clone(),
            name_zh: merchant.name_zh.clone(),
            city: merchant.city.clone(),
            mcc: merchant.mcc.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TerminalView {
    pub id: String,
    pub merchant_id: String,
    pub status: String,
}

impl From<&Terminal> for TerminalView {
    fn from(terminal: &Terminal) -> Self {
        TerminalView {
            id: terminal.id.clone(),
            merchant_id: terminal.merchant_id.clone(),
            status: terminal.status.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CardView {
    pub id: String,
    pub masked_pan: String,
    pub product: &'static str,
    pub issuer_id: u32,
    /// YYMM.
    pub expiry: String,
    /// Posted balance (debit) or unused credit limit (credit).
    pub balance: Option<AmountView>,
    /// What may be spent now: the balance less holds.
    pub available: Option<AmountView>,
}

impl CardView {
    pub fn new(card: &Card, account: Option<&ledger::Account>) -> Self {
        CardView {
            id: card.id.clone(),
            masked_pan: card.masked_pan(),
            product: card.product.as_str(),
            issuer_id: card.issuer.0,
            expiry: card.expiry.clone(),
            balance: account.map(|account| AmountView::new(account.balance(), card.currency)),
            available: account.map(|account| AmountView::new(account.available(), card.currency)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TenantView {
    pub kind: &'static str,
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MeView {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: &'static str,
    pub tenant: TenantView,
}

impl From<&User> for MeView {
    fn from(user: &User) -> Self {
        MeView {
            id: user.id.clone(),
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            role: user.role.as_str(),
            tenant: TenantView {
                kind: user.tenant.kind().as_str(),
                id: user.tenant.id(),
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(key: &ApiKey) -> Self {
        ApiKeyView {
            id: key.id.clone(),
            name: key.name.clone(),
            created_at: rfc3339_seconds(key.created_at),
            revoked_at: key.revoked_at.map(rfc3339_seconds),
        }
    }
}

/// A key just created: the only answer that ever carries `secret`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKeyView,
    pub secret: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    /// The user name of who subscribed (events are what that user may see).
    pub owner: String,
    pub created_at: String,
}

impl WebhookView {
    pub fn new(subscription: &store::webhooks::Subscription, owner: &str) -> Self {
        WebhookView {
            id: subscription.id.clone(),
            url: subscription.url.clone(),
            owner: owner.to_owned(),
            created_at: rfc3339_seconds(subscription.created_at),
        }
    }
}

/// A subscription just created: the only answer that ever carries its signing secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: WebhookView,
    pub secret: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub state: &'static str,
    pub attempts: i64,
    pub created_at: String,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<String>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
    /// The event as sent.
    pub payload: serde_json::Value,
}

impl From<&store::webhooks::Delivery> for DeliveryView {
    fn from(delivery: &store::webhooks::Delivery) -> Self {
        use store::webhooks::DeliveryState;
        DeliveryView {
            id: delivery.id.to_string(),
            event_id: delivery.event_id.clone(),
            event_type: delivery.event_type.clone(),
            state: delivery.state.as_str(),
            attempts: delivery.attempts,
            created_at: rfc3339_seconds(delivery.created_at),
            next_attempt_at: (delivery.state == DeliveryState::Pending)
                .then(|| rfc3339_seconds(delivery.next_attempt_at)),
            last_status: delivery.last_status,
            last_error: delivery.last_error.clone(),
            delivered_at: delivery.delivered_at.map(rfc3339_seconds),
            payload: serde_json::from_str(&delivery.payload).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// An emergency freeze (issue 10): the terminal, merchant or card is declined on its next
/// authorization until thawed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FreezeView {
    /// `terminal`, `merchant` or `card`.
    pub scope: String,
    /// The terminal id, merchant id or card id.
    pub target: String,
    pub reason: String,
    /// The user name of who froze it.
    pub frozen_by: String,
    pub frozen_at: String,
}

impl FreezeView {
    pub fn new(freeze: &store::freezes::Freeze) -> Self {
        FreezeView {
            scope: freeze.scope.clone(),
            target: freeze.target.clone(),
            reason: freeze.reason.clone(),
            frozen_by: freeze.frozen_by.clone(),
            frozen_at: rfc3339_seconds(freeze.frozen_at),
        }
    }
}
