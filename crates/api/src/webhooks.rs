//! Webhooks: a tenant's integrator subscribes a URL, and every transaction the subscription's
//! owner may see is POSTed to it as a signed JSON event, retried with backoff for 24 hours,
//! with a delivery log and manual redelivery.
//!
//! - An event is `{"id", "type": "transaction.created", "created_at", "data": <Transaction>}`.
//! - `Easypos-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the
//!   receiver recomputes it and refuses a stale `t`, as Stripe's receivers do.
//! - The signing secret is shown once, at subscription, and never stored: the HSM derives it
//!   from the platform's webhook key, the subscription id and a nonce the store keeps.
//! - [`pass`] turns new journal rows into deliveries and sends the due ones; [`run`] calls it
//!   on an interval. Deliveries are claimed before they are sent, so hosts sharing a database
//!   never send one attempt twice.
//! - Only `http://` URLs for now (no TLS client in the platform yet): point them at a
//!   receiver on a private network or a TLS-terminating proxy.

use crate::access::Scope;
use crate::views::TransactionView;
use crate::{ApiState, time};
use hmac::{Hmac, Mac};
use hsm::{Hsm, KeySpec, KeyToken, MacAlgorithm};
use serde_json::json;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use store::accounts::{TransactionFilter, TransactionRecord};
use store::directory::StoredKey;
use store::webhooks::{Attempt, Delivery, JOURNAL_CURSOR_KEY, NewDelivery, Subscription};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const EVENT_TRANSACTION_CREATED: &str = "transaction.created";
/// How often `easypos up` looks for new events and due deliveries.
pub const PASS_INTERVAL: Duration = Duration::from_secs(1);
/// How long a delivery is retried (issue 7).
pub const RETRY_WINDOW_SECONDS: i64 = 24 * 60 * 60;
/// Waits between attempts; the last repeats until the window ends.
pub const BACKOFF_SECONDS: [i64; 8] = [10, 30, 60, 300, 900, 1_800, 3_600, 7_200];
/// One attempt's deadline: connect, send and read the status line.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// A claimed delivery is not claimed again before this; longer than an attempt.
pub const LEASE_SECONDS: i64 = 60;
/// Journal rows turned into events per pass, and deliveries sent per pass: a pass stays short.
pub const EVENTS_PER_PASS: i64 = 500;
pub const DELIVERIES_PER_PASS: i64 = 100;
/// Longest URL accepted.
pub const MAX_URL_BYTES: usize = 2_048;
/// Longest status line read from a receiver.
const MAX_STATUS_LINE_BYTES: usize = 1_024;
/// The stored name of the platform's webhook key.
pub const WEBHOOK_KEY_NAME: &str = "platform/webhooks";
pub const SIGNATURE_HEADER: &str = "Easypos-Signature";

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("HSM: {0}")]
    Hsm(#[from] hsm::HsmError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// The platform's webhook key and the HSM that holds it.
#[derive(Clone)]
pub struct WebhookKeys {
    hsm: Arc<dyn Hsm>,
    key: KeyToken,
}

impl std::fmt::Debug for WebhookKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookKeys").finish_non_exhaustive()
    }
}

/// The stored key `name`, generated inside the HSM (an AES-CMAC key) on first use.
pub async fn ensure_cmac_key(
    store: &Store,
    hsm: &dyn Hsm,
    name: &str,
) -> Result<KeyToken, WebhookError> {
    ensure_key(store, hsm, name, &KeySpec::mac_cmac()).await
}

/// The stored key `name`, generated inside the HSM as `spec` says on first use.
pub async fn ensure_key(
    store: &Store,
    hsm: &dyn Hsm,
    name: &str,
    spec: &KeySpec,
) -> Result<KeyToken, WebhookError> {
    let stored = |keys: Vec<StoredKey>| {
        keys.into_iter()
            .find(|key| key.name == name)
            .map(|key| KeyToken::new(key.token))
    };
    if let Some(token) = stored(store.keys().await?) {
        return Ok(token);
    }
    let token = hsm.generate_key(spec)?;
    let check_value: String = hsm
        .key_check_value(&token)?
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect();
    store
        .put_keys(vec![StoredKey {
            name: name.to_owned(),
            token: token.as_str().to_owned(),
            check_value,
        }])
        .await?;
    // Another process may have stored its key first: whichever is stored is the key.
    Ok(stored(store.keys().await?).unwrap_or(token))
}

impl WebhookKeys {
    pub async fn ensure(store: &Store, hsm: Arc<dyn Hsm>) -> Result<WebhookKeys, WebhookError> {
        let key = ensure_cmac_key(store, hsm.as_ref(), WEBHOOK_KEY_NAME).await?;
        Ok(WebhookKeys { hsm, key })
    }

    /// A subscription's signing secret (16 bytes, derived in the HSM).
    pub fn secret(&self, subscription: &Subscription) -> Result<Vec<u8>, WebhookError> {
        self.derive(&subscription.id, &subscription.secret_nonce)
    }

    /// The secret of `label` and `nonce`: a subscription's (its id), or a card's alerts
    /// (`alerts\0<card id>`, which no subscription id contains).
    pub fn derive(&self, label: &str, nonce: &str) -> Result<Vec<u8>, WebhookError> {
        let mut data = b"easypos webhook v1\0".to_vec();
        data.extend_from_slice(label.as_bytes());
        data.push(0);
        data.extend_from_slice(nonce.as_bytes());
        Ok(self
            .hsm
            .generate_mac(&self.key, MacAlgorithm::AesCmac, &data)?)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The secret as the subscriber keeps it.
pub fn secret_text(secret: &[u8]) -> String {
    format!("whsec_{}", hex(secret))
}

/// `t=<seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = secret_text(secret);
    let mut mac = match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex(&mac.finalize().into_bytes()))
}

/// An `http://host[:port]/path` URL, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl HttpUrl {
    /// `Err` says what is wrong, for the API's problem.
    pub fn parse(url: &str) -> Result<HttpUrl, String> {
        if url.len() > MAX_URL_BYTES {
            return Err(format!("the URL is longer than {MAX_URL_BYTES} bytes"));
        }
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            "the URL must start with http:// (the platform has no TLS client yet: use a TLS-terminating proxy for https)".to_owned()
        })?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        if authority.contains('@') || path.bytes().any(|byte| byte <= b' ' || byte == 0x7f) {
            return Err("the URL may carry no credentials, spaces or control characters".into());
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .map_err(|_| format!("{port:?} is not a port"))?,
            ),
            None => (authority, 80),
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b".-".contains(&byte));
        if !host_ok {
            return Err(format!("{host:?} is not a host name or IPv4 address"));
        }
        Ok(HttpUrl {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }
}

/// POSTs `body` and returns the answer's status code; `Err` says why there is none.
pub(crate) async fn post(
    url: &HttpUrl,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<u16, String> {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|error| format!("connect: {error}"))?;
        let mut request = format!(
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: easypos-webhooks/1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            url.path,
            url.host,
            url.port,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|error| format!("send: {error}"))?;
        stream
            .write_all(body)
            .await
            .map_err(|error| format!("send: {error}"))?;
        let mut line = Vec::new();
        let mut byte = [0_u8; 1];
        while line.len() < MAX_STATUS_LINE_BYTES && !line.ends_with(b"\r\n") {
            let read = stream
                .read(&mut byte)
                .await
                .map_err(|error| format!("read: {error}"))?;
            if read == 0 {
                break;
            }
            line.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&line);
        text.split_whitespace()
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .filter(|_| text.starts_with("HTTP/1."))
            .ok_or_else(|| "the answer is not HTTP/1.x".to_owned())
    };
    tokio::time::timeout(ATTEMPT_TIMEOUT, attempt)
        .await
        .map_err(|_| format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()))?
}

/// The wait after attempt number `attempts` (1 for the first) failed.
pub fn backoff(attempts: i64) -> i64 {
    let index = usize::try_from(attempts.saturating_sub(1)).unwrap_or(0);
    BACKOFF_SECONDS[index.min(BACKOFF_SECONDS.len() - 1)]
}

/// Whether a transaction is inside a subscription owner's scope (the filter the API would
/// apply to them).
fn covers(filter: &TransactionFilter, record: &TransactionRecord) -> bool {
    let by_merchant = filter
        .merchants
        .as_ref()
        .is_none_or(|merchants| merchants.contains(&record.merchant_id));
    let by_card = filter.cards.as_ref().is_none_or(|cards| {
        record.card.as_ref().is_some_and(|card| {
            cards
                .iter()
                .any(|pattern| card.starts_with(&pattern.first6) && card.ends_with(&pattern.last4))
        })
    });
    by_merchant && by_card
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub queued: usize,
    pub delivered: usize,
    pub failed: usize,
}

/// Turns journal rows after the cursor into deliveries for the subscriptions whose owners may
/// see them. The first pass starts at the journal's end: a new subscription gets new events.
async fn queue_events(state: &ApiState, now: i64) -> Result<usize, WebhookError> {
    let store = &state.store;
    let cursor = match store
        .meta(JOURNAL_CURSOR_KEY)
        .await?
        .and_then(|text| text.parse::<i64>().ok())
    {
        Some(cursor) => cursor,
        None => {
            let last = store
                .transactions(&TransactionFilter {
                    limit: 1,
                    ..TransactionFilter::default()
                })
                .await?
                .first()
                .map_or(0, |record| record.id);
            store
                .set_meta(JOURNAL_CURSOR_KEY, &last.to_string())
                .await?;
            return Ok(0);
        }
    };
    let records = store
        .transactions(&TransactionFilter {
            after_id: Some(cursor),
            limit: EVENTS_PER_PASS,
            ..TransactionFilter::default()
        })
        .await?;
    let Some(last) = records.last().map(|record| record.id) else {
        return Ok(0);
    };
    let mut deliveries = Vec::new();
    for subscription in store.active_subscriptions().await? {
        let Some(owner) = store.user(&subscription.owner_user_id).await? else {
            continue;
        };
        let filter = Scope::of(store, &owner)
            .await?
            .transaction_filter(owner.role);
        for record in records.iter().filter(|record| covers(&filter, record)) {
            let event_id = format!("evt_txn_{}", record.id);
            let payload = json!({
                "id": event_id,
                "type": EVENT_TRANSACTION_CREATED,
                "created_at": time::rfc3339_seconds(now),
                "data": TransactionView::from(record),
            });
            deliveries.push(NewDelivery {
                subscription_id: subscription.id.clone(),
                event_id,
                event_type: EVENT_TRANSACTION_CREATED.to_owned(),
                payload: payload.to_string(),
                created_at: now,
                retry_until: now + RETRY_WINDOW_SECONDS,
            });
        }
    }
    let queued = store.enqueue_deliveries(deliveries).await?;
    store
        .set_meta(JOURNAL_CURSOR_KEY, &last.to_string())
        .await?;
    Ok(queued)
}

/// Sends one claimed delivery and records how it went.
async fn send(
    state: &ApiState,
    keys: &WebhookKeys,
    subscription: &Subscription,
    delivery: &Delivery,
    now: i64,
) -> Result<bool, WebhookError> {
    let secret = keys.secret(subscription)?;
    let body = delivery.payload.as_bytes();
    let headers = [
        (SIGNATURE_HEADER, signature(&secret, now, body)),
        ("Easypos-Event-Id", delivery.event_id.clone()),
        ("Easypos-Event-Type", delivery.event_type.clone()),
    ];
    let outcome = match HttpUrl::parse(&subscription.url) {
        Ok(url) => post(&url, &headers, body).await,
        Err(error) => Err(error),
    };
    let attempts = delivery.attempts + 1;
    let (attempt, delivered) = match outcome {
        Ok(status) if (200..300).contains(&status) => (
            Attempt::Delivered {
                status: i64::from(status),
                at: now,
            },
            true,
        ),
        Ok(status) => (
            Attempt::Failed {
                status: Some(i64::from(status)),
                error: format!("HTTP {status}"),
                next_at: now + backoff(attempts),
            },
            false,
        ),
        Err(error) => (
            Attempt::Failed {
                status: None,
                error,
                next_at: now + backoff(attempts),
            },
            false,
        ),
    };
    state
        .store
        .record_delivery_attempt(delivery.id, attempt)
        .await?;
    Ok(delivered)
}

/// One pass at `now` (unix seconds): queue new events, then send what is due.
pub async fn pass(state: &ApiState, now: i64) -> Result<PassReport, WebhookError> {
    let Some(keys) = &state.webhooks else {
        return Ok(PassReport::default());
    };
    let mut report = PassReport {
        queued: queue_events(state, now).await?,
        ..PassReport::default()
    };
    let due = state
        .store
        .claim_due_deliveries(now, now + LEASE_SECONDS, DELIVERIES_PER_PASS)
        .await?;
    let mut subscriptions: HashMap<String, Option<Subscription>> = HashMap::new();
    for delivery in &due {
        if !subscriptions.contains_key(&delivery.subscription_id) {
            let found = state.store.subscription(&delivery.subscription_id).await?;
            subscriptions.insert(delivery.subscription_id.clone(), found);
        }
        let Some(Some(subscription)) = subscriptions.get(&delivery.subscription_id) else {
            continue;
        };
        if send(state, keys, subscription, delivery, now).await? {
            report.delivered += 1;
        } else {
            report.failed += 1;
        }
    }
    Ok(report)
}

/// Runs [`pass`] every `interval` until `stop` turns true. A failed pass is logged and the
/// next one tries again.
pub async fn run(
    state: ApiState,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        // One node delivers at a time (docs/scaling.md).
        if state.store.leads(store::leader::Job::Webhooks).await
            && let Err(error) = pass(&state, state.now_seconds()).await
        {
            tracing::warn!(%error, "webhook pass failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
    }
}

/// The channel partners that referred `merchant_id` (who sold it its terminals).
pub async fn referring_partners(
    store: &Store,
    merchant_id: &str,
) -> Result<Vec<String>, store::StoreError> {
    use store::onboarding::{Cell, Kind};
    Ok(store
        .onboarding_query(
            "SELECT partner_id FROM partner_referrals WHERE merchant_id = $1 ORDER BY partner_id",
            vec![Cell::text(merchant_id)],
            &[Kind::Text],
        )
        .await?
        .iter()
        .filter_map(|row| row[0].as_text().map(str::to_owned))
        .collect())
}

/// Queues an event about `merchant_id` (`{"id": event_id, "type": event_type, "created_at",
/// "data": data}`) for the active subscriptions of the channel partners that referred the
/// merchant and of the merchant's own users; the webhook worker signs and delivers it with
/// retries. Returns how many deliveries were queued.
pub async fn queue_merchant_event(
    store: &Store,
    merchant_id: &str,
    event_id: &str,
    event_type: &str,
    data: serde_json::Value,
    now: i64,
) -> Result<usize, store::StoreError> {
    use store::accounts::Tenant;
    let partners = referring_partners(store, merchant_id).await?;
    let payload = json!({
        "id": event_id,
        "type": event_type,
        "created_at": time::rfc3339_seconds(now),
        "data": data,
    });
    let mut deliveries = Vec::new();
    for subscription in store.active_subscriptions().await? {
        let Some(owner) = store.user(&subscription.owner_user_id).await? else {
            continue;
        };
        let concerned = match &owner.tenant {
            Tenant::Partner(partner) => partners.contains(partner),
            Tenant::Merchant(merchant) => merchant == merchant_id,
            _ => false,
        };
        if concerned {
            deliveries.push(NewDelivery {
                subscription_id: subscription.id.clone(),
                event_id: event_id.to_owned(),
                event_type: event_type.to_owned(),
                payload: payload.to_string(),
                created_at: now,
                retry_until: now + RETRY_WINDOW_SECONDS,
            });
        }
    }
    store.enqueue_deliveries(deliveries).await
}

/// Queues an event for the acquirer's operations: the active subscriptions of platform
/// operators. Returns how many deliveries were queued.
pub async fn queue_operations_event(
    store: &Store,
    event_id: &str,
    event_type: &str,
    data: serde_json::Value,
    now: i64,
) -> Result<usize, store::StoreError> {
    let payload = json!({
        "id": event_id,
        "type": event_type,
        "created_at": time::rfc3339_seconds(now),
        "data": data,
    });
    let mut deliveries = Vec::new();
    for subscription in store.active_subscriptions().await? {
        let Some(owner) = store.user(&subscription.owner_user_id).await? else {
            continue;
        };
        if owner.role == store::accounts::Role::PlatformOperator {
            deliveries.push(NewDelivery {
                subscription_id: subscription.id.clone(),
                event_id: event_id.to_owned(),
                event_type: event_type.to_owned(),
                payload: payload.to_string(),
                created_at: now,
                retry_until: now + RETRY_WINDOW_SECONDS,
            });
        }
    }
    store.enqueue_deliveries(deliveries).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_with_a_host() {
        assert_eq!(
            HttpUrl::parse("http://127.0.0.1:9000/hooks?x=1"),
            Ok(HttpUrl {
                host: "127.0.0.1".into(),
                port: 9000,
                path: "/hooks?x=1".into()
            })
        );
        assert_eq!(
            HttpUrl::parse("http://example.test").map(|url| (url.port, url.path)),
            Ok((80, "/".into()))
        );
        for bad in [
            "https://example.test/",
            "http://user:pw@example.test/",
            "http:///x",
            "http://a b/",
            "ftp://x",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signatures_are_hmac_sha256_of_time_and_body() {
        // HMAC-SHA256 over "1700000000.{}" with key "whsec_000102…0f"; recomputed with
        // `printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_000102030405060708090a0b0c0d0e0f`.
        let secret: Vec<u8> = (0..16).collect();
        let signed = signature(&secret, 1_700_000_000, b"{}");
        assert_eq!(
            signed,
            "t=1700000000,v1=21342976e99ee6cf767cb0c41dc74de9c2ab49157c3625765b712a638346a50d"
        );
        assert_ne!(signed, signature(&secret, 1_700_000_001, b"{}"));
    }

    #[test]
    fn backoff_grows_then_stays() {
        assert_eq!(backoff(1), 10);
        assert_eq!(backoff(2), 30);
        assert_eq!(backoff(100), 7_200);
    }
}
