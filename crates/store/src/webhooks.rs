//! Webhooks (issue 7): a tenant's subscriptions to its events and the delivery log. The
//! store keeps what to send and how it went; `api::webhooks` decides what to send, signs and
//! sends it. Each delivery is claimed before it is sent (its next attempt moved past a lease),
//! so two hosts sharing PostgreSQL never send one attempt twice, and an event reaches a
//! subscription once (`UNIQUE (subscription_id, event_id)`).

use crate::{Store, StoreError};

/// A subscription. Its signing secret is derived in the HSM from `id` and `secret_nonce`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    /// The user who created it: events are those this user may see.
    pub owner_user_id: String,
    pub url: String,
    pub secret_nonce: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
}

pub(crate) const SUBSCRIPTION_COLUMNS: &str =
    "id, owner_user_id, url, secret_nonce, created_at, disabled_at";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Retried until its window ended without a 2xx.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<DeliveryState, StoreError> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
        .ok_or_else(|| crate::directory::unknown("delivery state", text))
    }
}

/// An event to deliver to a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery {
    pub subscription_id: String,
    pub event_id: String,
    pub event_type: String,
    /// The JSON body, as it will be signed and sent.
    pub payload: String,
    /// Unix seconds; the first attempt is due then.
    pub created_at: i64,
    /// Unix seconds after which a failed attempt is not retried.
    pub retry_until: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub subscription_id: String,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    pub created_at: i64,
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub retry_until: i64,
    /// HTTP status of the last attempt, if an answer came.
    pub last_status: Option<i64>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

pub(crate) const DELIVERY_COLUMNS: &str = "id, subscription_id, event_id, event_type, payload, created_at, state, attempts, next_attempt_at, retry_until, last_status, last_error, delivered_at";

/// How an attempt went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    Delivered {
        status: i64,
        at: i64,
    },
    /// Not delivered; try again at `next_at` (or give up when that is past `retry_until`).
    Failed {
        status: Option<i64>,
        error: String,
        next_at: i64,
    },
}

/// The meta key of the last journal id turned into events.
pub const JOURNAL_CURSOR_KEY: &str = "webhooks.journal_cursor";

impl Store {
    pub async fn put_subscription(&self, subscription: Subscription) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.put_subscription(subscription).await,
            Store::Postgres(store) => store.put_subscription(subscription).await,
        }
    }

    /// Every subscription not disabled, oldest first.
    pub async fn active_subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        match self {
            Store::Sqlite(store) => store.active_subscriptions().await,
            Store::Postgres(store) => store.active_subscriptions().await,
        }
    }

    pub async fn subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        match self {
            Store::Sqlite(store) => store.subscription(id.to_owned()).await,
            Store::Postgres(store) => store.subscription(id).await,
        }
    }

    /// Stops a subscription: its pending deliveries are not sent.
    pub async fn disable_subscription(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(store) => store.disable_subscription(id.to_owned(), now).await,
            Store::Postgres(store) => store.disable_subscription(id, now).await,
        }
    }

    /// Queues deliveries; an event already queued for a subscription is left as it is.
    /// Returns how many were queued.
    pub async fn enqueue_deliveries(
        &self,
        deliveries: Vec<NewDelivery>,
    ) -> Result<usize, StoreError> {
        if deliveries.is_empty() {
            return Ok(0);
        }
        match self {
            Store::Sqlite(store) => store.enqueue_deliveries(deliveries).await,
            Store::Postgres(store) => store.enqueue_deliveries(deliveries).await,
        }
    }

    /// Claims up to `limit` pending deliveries due at `now` (of active subscriptions): their
    /// next attempt moves to `lease_until`, so no other worker sends them meanwhile.
    pub async fn claim_due_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        match self {
            Store::Sqlite(store) => store.claim_due_deliveries(now, lease_until, limit).await,
            Store::Postgres(store) => store.claim_due_deliveries(now, lease_until, limit).await,
        }
    }

    /// Records an attempt: delivered, or failed and retried at its time unless that is past
    /// the delivery's retry window (then it is failed for good).
    pub async fn record_delivery_attempt(
        &self,
        id: i64,
        attempt: Attempt,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.record_delivery_attempt(id, attempt).await,
            Store::Postgres(store) => store.record_delivery_attempt(id, attempt).await,
        }
    }

    /// A subscription's deliveries, newest first.
    pub async fn deliveries_of(
        &self,
        subscription_id: &str,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        match self {
            Store::Sqlite(store) => store.deliveries_of(subscription_id.to_owned(), limit).await,
            Store::Postgres(store) => store.deliveries_of(subscription_id, limit).await,
        }
    }

    /// Sends a delivery again (whatever its state), from `now`, retrying for `window` seconds.
    /// `false` when the subscription has no such delivery.
    pub async fn redeliver(
        &self,
        subscription_id: &str,
        delivery_id: i64,
        now: i64,
        window: i64,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .redeliver(subscription_id.to_owned(), delivery_id, now, window)
                    .await
            }
            Store::Postgres(store) => {
                store
                    .redeliver(subscription_id, delivery_id, now, window)
                    .await
            }
        }
    }
}
