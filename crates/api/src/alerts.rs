//! Cardholder alerts (issue 9, R14): every card transaction (approved or declined sales,
//! refunds, voids, reversals, pre-authorizations) and every wallet QR payment, refund or
//! reversal is told to its holder at once, on the channels they chose, through a durable
//! outbox; and the holder freezes or unfreezes their own card.
//!
//! **Off the authorization path.** The acquirer host already writes a journal row for every
//! answer, with the card's directory id (`journal.card_id`). [`pass`] reads the journal after
//! a cursor (`meta` key `alerts.journal_cursor`), and the wallet's orders changed since
//! another (`alerts.orders_cursor`), and queues one row per alert and channel in
//! `alert_deliveries`; then it sends the due ones. So a sale writes nothing more and waits for
//! nothing: an alert is at most one pass (a second) behind. The cursor moves only after the
//! alerts are queued, and queueing is idempotent (`UNIQUE (target, event_id, channel)`), so a
//! crash between the two queues nothing twice and loses nothing; an unsent alert is retried
//! with backoff for 24 hours, across restarts, from the table.
//!
//! Rows younger than [`SETTLE_SECONDS`] wait for the next pass: on PostgreSQL two hosts'
//! journal rows may commit out of id order, and a cursor past a row not yet visible would skip
//! it.
//!
//! **Channels** ([`Channel`]): a `webhook` (JSON POSTed to the holder's `http://` URL, signed
//! like merchant webhooks with a secret the HSM derives for the card), `email` (through the
//! configured SMTP relay, [`SmtpConfig`], by the minimal client [`send_email`]), `sms` (through
//! an [`SmsSender`]; the platform ships [`LoggingSms`], which writes the text to the log).
//! Every alert carries the card masked, never its number.

use crate::access::{Principal, Scope};
use crate::problem::Problem;
use crate::webhooks::{HttpUrl, SIGNATURE_HEADER, backoff, post, signature};
use crate::{ApiState, time};
use aftersale::alerts::{Alert, Channel, Preferences};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use store::accounts::Role;
use store::alerts::{
    AlertDelivery, AlertPreferences, JOURNAL_CURSOR_KEY, NewAlert, ORDERS_CURSOR_KEY,
};
use store::directory::Card;
use store::wallets::WalletRecord;
use store::webhooks::Attempt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

pub const EVENT_CARD_TRANSACTION: &str = "card.transaction";
/// How often `easypos up` looks for new transactions and due alerts.
pub const PASS_INTERVAL: Duration = Duration::from_secs(1);
/// Journal rows younger than this wait for the next pass (see the module's documentation).
pub const SETTLE_SECONDS: i64 = 2;
/// How long an alert is retried.
pub const RETRY_WINDOW_SECONDS: i64 = 24 * 60 * 60;
/// A claimed alert is not claimed again before this; longer than an attempt.
pub const LEASE_SECONDS: i64 = 60;
/// Journal rows and orders turned into alerts per pass, and alerts sent per pass.
pub const EVENTS_PER_PASS: i64 = 500;
pub const ALERTS_PER_PASS: i64 = 100;
/// One SMTP conversation's deadline.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest SMTP reply line read, and most lines of one reply (RFC 5321 §4.5.3.1.5: 512).
const MAX_SMTP_LINE_BYTES: usize = 512;
const MAX_SMTP_REPLY_LINES: usize = 64;
/// Longest e-mail address (RFC 5321 path limit) and phone number accepted.
pub const MAX_EMAIL_BYTES: usize = 254;
pub const MAX_PHONE_DIGITS: usize = 15;
/// The newest alerts shown with a card's preferences.
pub const RECENT_ALERTS: i64 = 20;
/// The reason of a freeze the cardholder set; only such a freeze is theirs to lift.
pub const CARDHOLDER_FREEZE_REASON: &str = "frozen by the cardholder";

/// Sends text messages. A real gateway implements it; the platform ships [`LoggingSms`].
pub trait SmsSender: Send + Sync + fmt::Debug {
    /// Sends `text` to `phone` (digits, with an optional leading `+`); `Err` says why not.
    fn send(&self, phone: &str, text: &str) -> Result<(), String>;
}

/// Writes each text message to the log instead of sending it: the phone number masked to its
/// last four digits, the text as sent (it names the card masked).
#[derive(Clone, Copy, Debug, Default)]
pub struct LoggingSms;

impl SmsSender for LoggingSms {
    fn send(&self, phone: &str, text: &str) -> Result<(), String> {
        tracing::info!(to = %mask_phone(phone), %text, "SMS alert (logging adapter)");
        Ok(())
    }
}

/// `+86*******0000`: the last four digits only.
pub fn mask_phone(phone: &str) -> String {
    let keep = phone.len().saturating_sub(4);
    phone
        .char_indices()
        .map(|(index, c)| if index >= keep || c == '+' { c } else { '*' })
        .collect()
}

/// The SMTP relay alerts are mailed through (plain SMTP, no authentication: a relay on the
/// private network that accepts the platform's mail).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// The envelope and `From:` address.
    pub from: String,
}

/// How alerts leave the platform.
#[derive(Clone, Debug)]
pub struct AlertSenders {
    /// `None`: e-mail alerts fail (and are retried) until a relay is configured.
    pub smtp: Option<SmtpConfig>,
    pub sms: Arc<dyn SmsSender>,
}

impl Default for AlertSenders {
    fn default() -> Self {
        AlertSenders {
            smtp: None,
            sms: Arc::new(LoggingSms),
        }
    }
}

/// `Ok` for an address of one `@` with text either side, no spaces, angle brackets or
/// control characters (so it cannot break an SMTP command line), at most 254 bytes.
pub fn parse_email(text: &str) -> Result<String, String> {
    let text = text.trim();
    let ok = text.len() <= MAX_EMAIL_BYTES
        && text.matches('@').count() == 1
        && !text.starts_with('@')
        && !text.ends_with('@')
        && text
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && !b"<>()[],;:\\\"".contains(&byte));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not an e-mail address (name@domain, at most {MAX_EMAIL_BYTES} characters)"
        ))
    }
}

/// `Ok` for a phone number of 5 to 15 digits, with an optional leading `+`.
pub fn parse_phone(text: &str) -> Result<String, String> {
    let text = text.trim();
    let digits = text.strip_prefix('+').unwrap_or(text);
    if (5..=MAX_PHONE_DIGITS).contains(&digits.len())
        && digits.bytes().all(|byte| byte.is_ascii_digit())
    {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a phone number (5 to {MAX_PHONE_DIGITS} digits, optional leading +)"
        ))
    }
}

/// Reads one SMTP reply (possibly multi-line) and returns its code.
async fn smtp_reply<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Result<u16, String> {
    for _ in 0..MAX_SMTP_REPLY_LINES {
        let mut line = Vec::new();
        let mut limited = (&mut *reader).take(MAX_SMTP_LINE_BYTES as u64);
        limited
            .read_until(b'\n', &mut line)
            .await
            .map_err(|error| format!("read: {error}"))?;
        if line.len() < 4 {
            return Err("the relay closed the connection or sent a short line".into());
        }
        let code = std::str::from_utf8(&line[..3])
            .ok()
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| "the relay's reply has no code".to_owned())?;
        if line[3] != b'-' {
            return Ok(code);
        }
    }
    Err("the relay's reply is too long".into())
}

/// The reply of a relay that wants STARTTLS or a login first (RFC 3207, RFC 4954).
const SMTP_AUTHENTICATION_REQUIRED: u16 = 530;

/// Why easypos cannot satisfy a relay that wants TLS: no TLS library is in the build, and one
/// is not added for this alone.
pub const NO_TLS: &str = "the relay requires STARTTLS or a login, and easypos speaks plain SMTP only; relay through a local mail server (Postfix, Exim …) that accepts plain SMTP from easypos and does TLS onwards (docs/aftersale.md)";

/// Mails `body` with `subject` to `to` through `config`'s relay (RFC 5321: EHLO, MAIL, RCPT,
/// DATA, QUIT). Returns the relay's code for the accepted message; `Err` says at which step
/// and why it was refused.
pub async fn send_email(
    config: &SmtpConfig,
    to: &str,
    subject: &str,
    body: &str,
) -> Result<u16, String> {
    let conversation = async {
        let stream = tokio::net::TcpStream::connect((config.host.as_str(), config.port))
            .await
            .map_err(|error| format!("connect: {error}"))?;
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let expect = |step: &str, code: u16, wanted: &[u16]| {
            if wanted.contains(&code) {
                Ok(code)
            } else if code == SMTP_AUTHENTICATION_REQUIRED {
                Err(format!("{step}: the relay answered {code}: {NO_TLS}"))
            } else {
                Err(format!("{step}: the relay answered {code}"))
            }
        };
        expect("greeting", smtp_reply(&mut reader).await?, &[220])?;
        let commands = [
            ("EHLO".to_owned(), "EHLO easypos\r\n".to_owned(), vec![250]),
            (
                "MAIL".to_owned(),
                format!("MAIL FROM:<{}>\r\n", config.from),
                vec![250],
            ),
            (
                "RCPT".to_owned(),
                format!("RCPT TO:<{to}>\r\n"),
                vec![250, 251],
            ),
            ("DATA".to_owned(), "DATA\r\n".to_owned(), vec![354]),
        ];
        for (step, command, wanted) in commands {
            write
                .write_all(command.as_bytes())
                .await
                .map_err(|error| format!("{step}: {error}"))?;
            expect(&step, smtp_reply(&mut reader).await?, &wanted)?;
        }
        // Headers, a blank line, the body with its lines dot-stuffed (RFC 5321 §4.5.2), and
        // the end of data.
        let mut data = format!(
            "From: <{}>\r\nTo: <{to}>\r\nSubject: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
            config.from,
            subject.replace(['\r', '\n'], " ")
        );
        for line in body.lines() {
            if line.starts_with('.') {
                data.push('.');
            }
            data.push_str(line);
            data.push_str("\r\n");
        }
        data.push_str(".\r\n");
        write
            .write_all(data.as_bytes())
            .await
            .map_err(|error| format!("data: {error}"))?;
        let accepted = expect("message", smtp_reply(&mut reader).await?, &[250])?;
        // The message is accepted; a failed goodbye does not unsend it.
        let _ = write.write_all(b"QUIT\r\n").await;
        Ok(accepted)
    };
    tokio::time::timeout(SMTP_TIMEOUT, conversation)
        .await
        .map_err(|_| format!("no answer within {} s", SMTP_TIMEOUT.as_secs()))?
}

/// The HSM-derived webhook secret of a card's alerts (the merchant webhooks' key, another
/// label), as the cardholder keeps it.
fn webhook_secret(
    state: &ApiState,
    preferences: &AlertPreferences,
) -> Result<Option<Vec<u8>>, Problem> {
    let Some(keys) = &state.webhooks else {
        return Ok(None);
    };
    let label = format!("alerts\0{}", preferences.target);
    keys.derive(&label, &preferences.secret_nonce)
        .map(Some)
        .map_err(|error| {
            tracing::error!(%error, "alert webhook secret");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "the HSM could not derive the webhook secret; try again",
            )
        })
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub queued: usize,
    pub delivered: usize,
    pub failed: usize,
}

fn preferences_of(stored: &AlertPreferences) -> Preferences {
    Preferences {
        channels: stored
            .channels
            .iter()
            .filter_map(|name| Channel::parse(name))
            .collect(),
        min_amount_minor: stored.min_amount_minor,
        declines_only: stored.declines_only,
    }
}

/// Queues, for each alert its target's preferences want, one row per channel.
async fn queue(state: &ApiState, alerts: Vec<Alert>, now: i64) -> Result<usize, Problem> {
    if alerts.is_empty() {
        return Ok(0);
    }
    let mut preferences: HashMap<String, Option<AlertPreferences>> = HashMap::new();
    let mut merchants: Option<HashMap<String, String>> = None;
    let mut rows = Vec::new();
    for alert in alerts {
        if !preferences.contains_key(&alert.target) {
            let found = state.store.alert_preferences(&alert.target).await?;
            preferences.insert(alert.target.clone(), found);
        }
        let Some(Some(stored)) = preferences.get(&alert.target) else {
            continue;
        };
        let wanted = preferences_of(stored);
        if !aftersale::alerts::wanted(&wanted, &alert) {
            continue;
        }
        if merchants.is_none() {
            let directory = state.store.load_directory().await?;
            merchants = Some(
                directory
                    .merchants
                    .into_iter()
                    .map(|merchant| (merchant.id, merchant.name))
                    .collect(),
            );
        }
        let merchant_name = merchants
            .as_ref()
            .and_then(|names| names.get(&alert.merchant_id))
            .cloned()
            .unwrap_or_default();
        let payload = json!({
            "id": alert.event_id,
            "type": EVENT_CARD_TRANSACTION,
            "created_at": time::rfc3339_seconds(now),
            "target": alert.target,
            "data": alert,
            "merchant_name": merchant_name,
            "text": aftersale::alerts::text(&alert, &merchant_name),
        })
        .to_string();
        for channel in wanted.channels {
            rows.push(NewAlert {
                target: alert.target.clone(),
                event_id: alert.event_id.clone(),
                channel: channel.as_str().to_owned(),
                payload: payload.clone(),
                created_at: now,
                retry_until: now + RETRY_WINDOW_SECONDS,
            });
        }
    }
    Ok(state.store.enqueue_alerts(rows).await?)
}

/// Turns journal rows after the cursor into alerts. The first pass starts at the journal's
/// end: alerts are for transactions from now on.
async fn queue_journal(state: &ApiState, now: i64) -> Result<usize, Problem> {
    let store = &state.store;
    let Some(cursor) = store
        .meta(JOURNAL_CURSOR_KEY)
        .await?
        .and_then(|text| text.parse::<i64>().ok())
    else {
        let last = store.journal_last_id().await?;
        store
            .set_meta(JOURNAL_CURSOR_KEY, &last.to_string())
            .await?;
        return Ok(0);
    };
    let settled_before_us = (now - SETTLE_SECONDS).saturating_mul(1_000_000);
    let rows = store.journal_after(cursor, EVENTS_PER_PASS).await?;
    let settled: Vec<_> = rows
        .iter()
        .take_while(|(_, entry)| entry.received_at <= settled_before_us)
        .collect();
    let Some(last) = settled.last().map(|(id, _)| *id) else {
        return Ok(0);
    };
    let alerts = settled
        .iter()
        .filter_map(|(id, entry)| aftersale::alerts::from_journal(*id, entry))
        .collect();
    let queued = queue(state, alerts, now).await?;
    store
        .set_meta(JOURNAL_CURSOR_KEY, &last.to_string())
        .await?;
    Ok(queued)
}

/// Turns wallet orders changed since the cursor (Unix seconds) into alerts. The window is
/// inclusive at both ends, so an order changed in the cursor's second is read again; the
/// outbox's unique key queues it once.
async fn queue_orders(state: &ApiState, now: i64) -> Result<usize, Problem> {
    let store = &state.store;
    let Some(cursor) = store
        .meta(ORDERS_CURSOR_KEY)
        .await?
        .and_then(|text| text.parse::<i64>().ok())
    else {
        store.set_meta(ORDERS_CURSOR_KEY, &now.to_string()).await?;
        return Ok(0);
    };
    let until = now - SETTLE_SECONDS;
    if until < cursor {
        return Ok(0);
    }
    let limit = u32::try_from(EVENTS_PER_PASS).unwrap_or(u32::MAX);
    let orders = store.orders_between(cursor, until, limit).await?;
    // A full page may end inside a second: the next pass starts at that second again.
    let next = if orders.len() == limit as usize {
        orders.last().map_or(until, |order| order.updated_at)
    } else {
        until
    };
    let alerts = orders
        .iter()
        .filter_map(aftersale::alerts::from_order)
        .collect();
    let queued = queue(state, alerts, now).await?;
    store.set_meta(ORDERS_CURSOR_KEY, &next.to_string()).await?;
    Ok(queued)
}

/// Sends one claimed alert; `Err` says why it was not sent.
async fn send_one(
    state: &ApiState,
    preferences: Option<&AlertPreferences>,
    delivery: &AlertDelivery,
    now: i64,
) -> Result<i64, String> {
    let preferences = preferences.ok_or("the card's alert preferences are gone")?;
    let text = serde_json::from_str::<serde_json::Value>(&delivery.payload)
        .ok()
        .and_then(|value| value["text"].as_str().map(str::to_owned))
        .unwrap_or_default();
    match Channel::parse(&delivery.channel) {
        Some(Channel::Webhook) => {
            let url = preferences
                .webhook_url
                .as_deref()
                .ok_or("no webhook URL in the card's preferences")?;
            let url = HttpUrl::parse(url)?;
            let secret = webhook_secret(state, preferences)
                .map_err(|problem| problem.detail)?
                .ok_or("webhooks are off on this platform")?;
            let body = delivery.payload.as_bytes();
            let headers = [
                (SIGNATURE_HEADER, signature(&secret, now, body)),
                ("Easypos-Event-Id", delivery.event_id.clone()),
                ("Easypos-Event-Type", EVENT_CARD_TRANSACTION.to_owned()),
            ];
            let status = post(&url, &headers, body).await?;
            if (200..300).contains(&status) {
                Ok(i64::from(status))
            } else {
                Err(format!("HTTP {status}"))
            }
        }
        Some(Channel::Email) => {
            let to = preferences
                .email
                .as_deref()
                .ok_or("no e-mail address in the card's preferences")?;
            let config = state
                .alert_senders
                .smtp
                .as_ref()
                .ok_or("no SMTP relay is configured (alerts.smtp_host)")?;
            let subject = text.split(". Not you?").next().unwrap_or(&text);
            send_email(config, to, subject, &text).await.map(i64::from)
        }
        Some(Channel::Sms) => {
            let phone = preferences
                .phone
                .as_deref()
                .ok_or("no phone number in the card's preferences")?;
            state.alert_senders.sms.send(phone, &text).map(|()| 0)
        }
        None => Err(format!("no channel {:?}", delivery.channel)),
    }
}

/// One pass at `now` (Unix seconds): queue new transactions' alerts, then send what is due.
pub async fn pass(state: &ApiState, now: i64) -> Result<PassReport, Problem> {
    let mut report = PassReport {
        queued: queue_journal(state, now).await? + queue_orders(state, now).await?,
        ..PassReport::default()
    };
    let due = state
        .store
        .claim_due_alerts(now, now + LEASE_SECONDS, ALERTS_PER_PASS)
        .await?;
    let mut preferences: HashMap<String, Option<AlertPreferences>> = HashMap::new();
    for delivery in &due {
        if !preferences.contains_key(&delivery.target) {
            let found = state.store.alert_preferences(&delivery.target).await?;
            preferences.insert(delivery.target.clone(), found);
        }
        let stored = preferences.get(&delivery.target).and_then(Option::as_ref);
        let attempt = match send_one(state, stored, delivery, now).await {
            Ok(status) => {
                report.delivered += 1;
                Attempt::Delivered { status, at: now }
            }
            Err(error) => {
                report.failed += 1;
                tracing::warn!(alert = delivery.id, channel = %delivery.channel, %error, "alert not sent");
                Attempt::Failed {
                    status: None,
                    error,
                    next_at: now + backoff(delivery.attempts + 1),
                }
            }
        };
        state
            .store
            .record_alert_attempt(delivery.id, attempt)
            .await?;
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
        // One node sends at a time (docs/scaling.md); the cursors are in `meta`, so the next
        // leader goes on where the last one stopped.
        if state
            .store
            .leads(store::leader::Job::CardholderAlerts)
            .await
            && let Err(problem) = pass(&state, state.now_seconds()).await
        {
            tracing::warn!(error = %problem.detail, "alert pass failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
    }
}

/// The caller's own card `id`: 403 for a role other than the cardholder's, 404 for a card
/// that is not theirs.
pub async fn own_card(state: &ApiState, principal: &Principal, id: &str) -> Result<Card, Problem> {
    if principal.user.role != Role::Cardholder {
        return Err(Problem::forbidden(
            "only the card's holder sets its alerts and freezes it here; operators use /api/v1/freezes",
        ));
    }
    let scope = Scope::of(&state.store, &principal.user).await?;
    scope
        .card(id)
        .cloned()
        .ok_or_else(|| Problem::not_found(format!("no card {id:?} of yours")))
}

/// A card's alert settings, as the API shows and takes them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub min_amount_minor: i64,
    #[serde(default)]
    pub declines_only: bool,
    #[serde(default)]
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

/// One queued alert, as its cardholder sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlertView {
    pub id: i64,
    pub event_id: String,
    pub channel: String,
    pub state: String,
    pub attempts: i64,
    pub created_at: String,
    pub delivered_at: Option<String>,
    pub last_error: Option<String>,
    pub text: String,
}

impl From<&AlertDelivery> for AlertView {
    fn from(delivery: &AlertDelivery) -> Self {
        AlertView {
            id: delivery.id,
            event_id: delivery.event_id.clone(),
            channel: delivery.channel.clone(),
            state: delivery.state.as_str().to_owned(),
            attempts: delivery.attempts,
            created_at: time::rfc3339_seconds(delivery.created_at),
            delivered_at: delivery.delivered_at.map(time::rfc3339_seconds),
            last_error: delivery.last_error.clone(),
            text: serde_json::from_str::<serde_json::Value>(&delivery.payload)
                .ok()
                .and_then(|value| value["text"].as_str().map(str::to_owned))
                .unwrap_or_default(),
        }
    }
}

/// A card's alert settings, freeze and newest alerts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CardAlertsView {
    pub card_id: String,
    pub masked_pan: String,
    #[serde(flatten)]
    pub settings: AlertSettings,
    /// Whether the card is frozen (by its holder, a fraud report or an operator).
    pub frozen: bool,
    /// Why, when it is.
    pub frozen_reason: Option<String>,
    /// The webhook's signing secret (`whsec_…`), after a change that sets a webhook URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    pub recent: Vec<AlertView>,
}

/// The card's settings and state, for the API and the console.
pub async fn card_alerts(state: &ApiState, card: &Card) -> Result<CardAlertsView, Problem> {
    let settings = stored_settings(state, &card.id).await?;
    let freeze = state
        .store
        .freezes()
        .await?
        .into_iter()
        .find(|freeze| freeze.scope == "card" && freeze.target == card.id);
    let recent = state
        .store
        .alerts_of(&card.id, RECENT_ALERTS)
        .await?
        .iter()
        .map(AlertView::from)
        .collect();
    Ok(CardAlertsView {
        card_id: card.id.clone(),
        masked_pan: card.masked_pan(),
        settings,
        frozen: freeze.is_some(),
        frozen_reason: freeze.map(|freeze| freeze.reason),
        webhook_secret: None,
        recent,
    })
}

/// The settings kept for a card or wallet (none: no channel, the default).
pub async fn stored_settings(state: &ApiState, target: &str) -> Result<AlertSettings, Problem> {
    let stored = state.store.alert_preferences(target).await?;
    Ok(stored
        .as_ref()
        .map_or_else(AlertSettings::default, |stored| AlertSettings {
            channels: stored.channels.clone(),
            min_amount_minor: stored.min_amount_minor,
            declines_only: stored.declines_only,
            webhook_url: stored.webhook_url.clone(),
            email: stored.email.clone(),
            phone: stored.phone.clone(),
        }))
}

/// Whose alerts settings are for: a card or a wallet, and its holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertTarget {
    /// The card's or the wallet's id (the outbox's `target`).
    pub id: String,
    /// `card` or `wallet`.
    pub kind: &'static str,
    pub cardholder_id: String,
}

impl AlertTarget {
    pub fn card(card: &Card) -> Self {
        AlertTarget {
            id: card.id.clone(),
            kind: "card",
            cardholder_id: card.cardholder_id.clone(),
        }
    }

    pub fn wallet(wallet: &WalletRecord) -> Self {
        AlertTarget {
            id: wallet.id.clone(),
            kind: "wallet",
            cardholder_id: wallet.cardholder_id.clone(),
        }
    }
}

/// Checks and saves `settings` for the caller's card; the view carries the webhook secret
/// when a webhook URL is set.
pub async fn save_settings(
    state: &ApiState,
    principal: &Principal,
    card: &Card,
    settings: AlertSettings,
) -> Result<CardAlertsView, Problem> {
    let stored = store_settings(state, principal, &AlertTarget::card(card), settings).await?;
    let mut view = card_alerts(state, card).await?;
    view.webhook_secret = shown_secret(state, &stored)?;
    Ok(view)
}

/// The webhook secret to show after a change that sets a webhook URL.
fn shown_secret(state: &ApiState, stored: &AlertPreferences) -> Result<Option<String>, Problem> {
    if stored.webhook_url.is_none() {
        return Ok(None);
    }
    Ok(webhook_secret(state, stored)?.map(|secret| crate::webhooks::secret_text(&secret)))
}

/// Checks `settings` and saves them for `target` (audited as `alerts.update`); the same
/// rules for a card and a wallet.
pub async fn store_settings(
    state: &ApiState,
    principal: &Principal,
    target: &AlertTarget,
    settings: AlertSettings,
) -> Result<AlertPreferences, Problem> {
    let mut channels = Vec::new();
    for name in &settings.channels {
        let channel = Channel::parse(name).ok_or_else(|| {
            Problem::bad_request(format!(
                "channels: no channel {name:?}; use webhook, email or sms"
            ))
        })?;
        if !channels.contains(&channel) {
            channels.push(channel);
        }
    }
    channels.sort();
    if settings.min_amount_minor < 0 {
        return Err(Problem::bad_request(
            "min_amount_minor: a number of minor units, 0 or more",
        ));
    }
    let blank = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
    };
    let webhook_url = blank(&settings.webhook_url);
    if let Some(url) = &webhook_url {
        HttpUrl::parse(url)
            .map_err(|error| Problem::bad_request(format!("webhook_url: {error}")))?;
    }
    let email = blank(&settings.email)
        .map(|text| parse_email(&text))
        .transpose()
        .map_err(|error| Problem::bad_request(format!("email: {error}")))?;
    let phone = blank(&settings.phone)
        .map(|text| parse_phone(&text))
        .transpose()
        .map_err(|error| Problem::bad_request(format!("phone: {error}")))?;
    for (channel, address, field) in [
        (Channel::Webhook, webhook_url.is_some(), "webhook_url"),
        (Channel::Email, email.is_some(), "email"),
        (Channel::Sms, phone.is_some(), "phone"),
    ] {
        if channels.contains(&channel) && !address {
            return Err(Problem::bad_request(format!(
                "channel {} needs {field}",
                channel.as_str()
            )));
        }
    }
    let existing = state.store.alert_preferences(&target.id).await?;
    let stored = AlertPreferences {
        target: target.id.clone(),
        target_kind: target.kind.into(),
        cardholder_id: target.cardholder_id.clone(),
        channels: channels.iter().map(|c| c.as_str().to_owned()).collect(),
        min_amount_minor: settings.min_amount_minor,
        declines_only: settings.declines_only,
        webhook_url,
        email,
        phone,
        secret_nonce: existing.map_or_else(new_nonce, |existing| existing.secret_nonce),
        updated_at: state.now_seconds(),
    };
    state.store.put_alert_preferences(stored.clone()).await?;
    state
        .audit(
            &principal.user,
            "alerts.update",
            &format!("{}:{}", target.kind, target.id),
            &stored.channels.join(","),
            crate::audit::tenant_label(&principal.user.tenant),
        )
        .await?;
    Ok(stored)
}

/// The caller's own wallet `id` (its holder only; anyone else's is not found).
pub async fn own_wallet(
    state: &ApiState,
    principal: &Principal,
    id: &str,
) -> Result<WalletRecord, Problem> {
    let not_found = || Problem::not_found(format!("no wallet {id:?} of yours"));
    let (Role::Cardholder, store::accounts::Tenant::Cardholder(holder)) =
        (principal.user.role, &principal.user.tenant)
    else {
        return Err(Problem::forbidden(
            "only the wallet's holder sets its alerts",
        ));
    };
    state
        .store
        .wallet(id)
        .await?
        .filter(|wallet| &wallet.cardholder_id == holder)
        .ok_or_else(not_found)
}

/// A wallet's alert settings and newest alerts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WalletAlertsView {
    pub wallet_id: String,
    #[serde(flatten)]
    pub settings: AlertSettings,
    /// The webhook's signing secret (`whsec_…`), after a change that sets a webhook URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    pub recent: Vec<AlertView>,
}

/// The wallet's settings and newest alerts, for the API and the wallet's alerts page.
pub async fn wallet_alerts(
    state: &ApiState,
    wallet: &WalletRecord,
) -> Result<WalletAlertsView, Problem> {
    Ok(WalletAlertsView {
        wallet_id: wallet.id.clone(),
        settings: stored_settings(state, &wallet.id).await?,
        webhook_secret: None,
        recent: state
            .store
            .alerts_of(&wallet.id, RECENT_ALERTS)
            .await?
            .iter()
            .map(AlertView::from)
            .collect(),
    })
}

/// Checks and saves `settings` for the caller's wallet.
pub async fn save_wallet_settings(
    state: &ApiState,
    principal: &Principal,
    wallet: &WalletRecord,
    settings: AlertSettings,
) -> Result<WalletAlertsView, Problem> {
    let stored = store_settings(state, principal, &AlertTarget::wallet(wallet), settings).await?;
    let mut view = wallet_alerts(state, wallet).await?;
    view.webhook_secret = shown_secret(state, &stored)?;
    Ok(view)
}

fn new_nonce() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// Freezes (`true`) or unfreezes the caller's card: its next authorization is declined 62,
/// or passes again. A card frozen by a fraud report or an operator stays frozen: the
/// cardholder lifts only their own freeze (409 otherwise).
pub async fn set_frozen(
    state: &ApiState,
    principal: &Principal,
    card: &Card,
    frozen: bool,
) -> Result<(), Problem> {
    let existing = state
        .store
        .freezes()
        .await?
        .into_iter()
        .find(|freeze| freeze.scope == "card" && freeze.target == card.id);
    let tenant = crate::audit::tenant_label(&principal.user.tenant);
    let target = format!("card:{}", card.id);
    match (frozen, existing) {
        // Already frozen, whoever did it: nothing to change (the reason stays).
        (true, Some(_)) | (false, None) => Ok(()),
        (true, None) => {
            let freeze = store::freezes::Freeze {
                scope: "card".into(),
                target: card.id.clone(),
                reason: CARDHOLDER_FREEZE_REASON.into(),
                frozen_by: principal.user.username.clone(),
                frozen_at: state.now_seconds(),
            };
            state.store.put_freeze(freeze).await?;
            state.freezes.set(risk::FreezeScope::Card, &card.id, true);
            tracing::warn!(card = %card.id, by = %principal.user.username, "card frozen by its holder");
            state
                .audit(
                    &principal.user,
                    "freeze.put",
                    &target,
                    CARDHOLDER_FREEZE_REASON,
                    tenant,
                )
                .await?;
            Ok(())
        }
        (false, Some(freeze)) => {
            if freeze.reason != CARDHOLDER_FREEZE_REASON {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "freeze-not-yours",
                    "Frozen by someone else",
                    format!(
                        "the card was frozen for this reason: {}; only your issuer or the acquirer lifts it",
                        freeze.reason
                    ),
                ));
            }
            state.store.delete_freeze("card", &card.id).await?;
            state.freezes.set(risk::FreezeScope::Card, &card.id, false);
            tracing::warn!(card = %card.id, by = %principal.user.username, "card unfrozen by its holder");
            state
                .audit(&principal.user, "freeze.delete", &target, "", tenant)
                .await?;
            Ok(())
        }
    }
}

/// `GET /api/v1/cards/{id}/alerts`.
pub async fn get_alerts(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<CardAlertsView>, Problem> {
    let card = own_card(&state, &principal, &id).await?;
    Ok(Json(card_alerts(&state, &card).await?))
}

/// `PUT /api/v1/cards/{id}/alerts`: replaces the card's settings.
pub async fn put_alerts(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<CardAlertsView>, Problem> {
    let card = own_card(&state, &principal, &id).await?;
    let settings = parse_settings(&body)?;
    Ok(Json(
        save_settings(&state, &principal, &card, settings).await?,
    ))
}

fn parse_settings(body: &[u8]) -> Result<AlertSettings, Problem> {
    serde_json::from_slice(body).map_err(|error| {
        Problem::bad_request(format!(
            "the body must be {{\"channels\": [\"webhook\"|\"email\"|\"sms\"], \"min_amount_minor\", \"declines_only\", \"webhook_url\", \"email\", \"phone\"}}: {error}"
        ))
    })
}

/// `GET /api/v1/wallets/{id}/alerts`.
pub async fn get_wallet_alerts(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<WalletAlertsView>, Problem> {
    let wallet = own_wallet(&state, &principal, &id).await?;
    Ok(Json(wallet_alerts(&state, &wallet).await?))
}

/// `PUT /api/v1/wallets/{id}/alerts`: replaces the wallet's settings.
pub async fn put_wallet_alerts(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<WalletAlertsView>, Problem> {
    let wallet = own_wallet(&state, &principal, &id).await?;
    let settings = parse_settings(&body)?;
    Ok(Json(
        save_wallet_settings(&state, &principal, &wallet, settings).await?,
    ))
}

/// `PUT /api/v1/cards/{id}/freeze`: the holder freezes their card (204).
pub async fn freeze_card(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let card = own_card(&state, &principal, &id).await?;
    set_frozen(&state, &principal, &card, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/cards/{id}/freeze`: the holder lifts their own freeze (204).
pub async fn unfreeze_card(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let card = own_card(&state, &principal, &id).await?;
    set_frozen(&state, &principal, &card, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_relay_that_wants_starttls_is_refused_with_the_way_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let relay = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"220 relay ESMTP\r\n").await.unwrap();
            let ehlo = lines.next_line().await.unwrap().unwrap();
            write
                .write_all(b"250-relay\r\n250 STARTTLS\r\n")
                .await
                .unwrap();
            let mail = lines.next_line().await.unwrap().unwrap();
            write
                .write_all(b"530 5.7.0 Must issue a STARTTLS command first\r\n")
                .await
                .unwrap();
            (ehlo, mail)
        });
        let config = SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            from: "alerts@bank.example".into(),
        };
        let refused = send_email(&config, "li.lei@example.test", "alert", "text")
            .await
            .unwrap_err();
        assert_eq!(refused, format!("MAIL: the relay answered 530: {NO_TLS}"));
        let (ehlo, mail) = relay.await.unwrap();
        assert_eq!(ehlo, "EHLO easypos");
        assert_eq!(mail, "MAIL FROM:<alerts@bank.example>");
    }

    #[test]
    fn phones_are_masked_to_their_last_four_digits() {
        assert_eq!(mask_phone("+8613800001234"), "+*********1234");
        assert_eq!(mask_phone("123"), "123");
    }

    #[test]
    fn addresses_that_could_break_a_command_are_refused() {
        assert_eq!(parse_email(" a@b.test ").as_deref(), Ok("a@b.test"));
        for bad in [
            "a",
            "@b",
            "a@",
            "a@@b",
            "a b@c",
            "a@b\r\nRCPT TO:<x@y>",
            "<a@b>",
        ] {
            assert!(parse_email(bad).is_err(), "{bad:?}");
        }
        assert!(parse_phone("+8613800001234").is_ok());
        for bad in ["12", "+86 138", "1234567890123456", "abc"] {
            assert!(parse_phone(bad).is_err(), "{bad:?}");
        }
    }
}
