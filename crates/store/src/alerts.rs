//! Cardholder alerts (issue 9, R14): each card's or wallet's alert preferences, and the outbox
//! of alerts to send. `api::alerts` decides what to send (from the journal and the wallet's
//! orders, after a cursor) and sends it; the store keeps what is owed and how it went, so
//! nothing is lost across a restart. Like the merchant webhooks' deliveries
//! (`store::webhooks`), each alert is claimed before it is sent (its next attempt moved past
//! a lease), so two hosts sharing PostgreSQL never send one attempt twice, and a transaction
//! reaches a channel once (`UNIQUE (target, event_id, channel)`).

use crate::webhooks::{Attempt, DeliveryState};
use crate::{Store, StoreError};

/// What a card's or wallet's holder wants to be told, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertPreferences {
    /// A directory card id or a wallet id.
    pub target: String,
    /// `card` or `wallet`.
    pub target_kind: String,
    pub cardholder_id: String,
    /// Channel names (`webhook`, `email`, `sms`); empty: no alerts.
    pub channels: Vec<String>,
    /// Transactions below this many minor units are not alerted (declines always are, when
    /// `declines_only`, whatever their amount).
    pub min_amount_minor: i64,
    pub declines_only: bool,
    pub webhook_url: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub secret_nonce: String,
    pub updated_at: i64,
}

const PREFERENCE_COLUMNS: &str = "target, target_kind, cardholder_id, channels, min_amount_minor, declines_only, webhook_url, email, phone, secret_nonce, updated_at";

/// An alert to send on one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAlert {
    pub target: String,
    /// The transaction's business key: a retransmission makes the same one.
    pub event_id: String,
    pub channel: String,
    /// The JSON event (masked card, never the number).
    pub payload: String,
    pub created_at: i64,
    pub retry_until: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertDelivery {
    pub id: i64,
    pub target: String,
    pub event_id: String,
    pub channel: String,
    pub payload: String,
    pub created_at: i64,
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub retry_until: i64,
    /// The HTTP status or the SMTP reply code of the last attempt, if an answer came.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

const DELIVERY_COLUMNS: &str = "id, target, event_id, channel, payload, created_at, state, attempts, next_attempt_at, retry_until, last_status, last_error, delivered_at";

/// The meta key of the last journal id turned into alerts.
pub const JOURNAL_CURSOR_KEY: &str = "alerts.journal_cursor";
/// The meta key of the last wallet-order change time (Unix seconds) turned into alerts.
pub const ORDERS_CURSOR_KEY: &str = "alerts.orders_cursor";

/// The columns of a preferences row, as both backends read them.
struct PreferenceRow {
    target: String,
    target_kind: String,
    cardholder_id: String,
    channels: String,
    min_amount_minor: i64,
    declines_only: i64,
    webhook_url: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    secret_nonce: String,
    updated_at: i64,
}

impl PreferenceRow {
    fn parse(self) -> AlertPreferences {
        AlertPreferences {
            target: self.target,
            target_kind: self.target_kind,
            cardholder_id: self.cardholder_id,
            channels: self
                .channels
                .split(',')
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect(),
            min_amount_minor: self.min_amount_minor,
            declines_only: self.declines_only != 0,
            webhook_url: self.webhook_url,
            email: self.email,
            phone: self.phone,
            secret_nonce: self.secret_nonce,
            updated_at: self.updated_at,
        }
    }
}

fn sqlite_preference(row: &rusqlite::Row<'_>) -> rusqlite::Result<PreferenceRow> {
    Ok(PreferenceRow {
        target: row.get(0)?,
        target_kind: row.get(1)?,
        cardholder_id: row.get(2)?,
        channels: row.get(3)?,
        min_amount_minor: row.get(4)?,
        declines_only: row.get(5)?,
        webhook_url: row.get(6)?,
        email: row.get(7)?,
        phone: row.get(8)?,
        secret_nonce: row.get(9)?,
        updated_at: row.get(10)?,
    })
}

fn postgres_preference(row: &tokio_postgres::Row) -> Result<PreferenceRow, StoreError> {
    Ok(PreferenceRow {
        target: row.try_get(0)?,
        target_kind: row.try_get(1)?,
        cardholder_id: row.try_get(2)?,
        channels: row.try_get(3)?,
        min_amount_minor: row.try_get(4)?,
        declines_only: row.try_get(5)?,
        webhook_url: row.try_get(6)?,
        email: row.try_get(7)?,
        phone: row.try_get(8)?,
        secret_nonce: row.try_get(9)?,
        updated_at: row.try_get(10)?,
    })
}

/// A delivery row before its state is parsed.
type DeliveryRow = (AlertDelivery, String);

fn sqlite_delivery(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok((
        AlertDelivery {
            id: row.get(0)?,
            target: row.get(1)?,
            event_id: row.get(2)?,
            channel: row.get(3)?,
            payload: row.get(4)?,
            created_at: row.get(5)?,
            state: DeliveryState::Pending,
            attempts: row.get(7)?,
            next_attempt_at: row.get(8)?,
            retry_until: row.get(9)?,
            last_status: row.get(10)?,
            last_error: row.get(11)?,
            delivered_at: row.get(12)?,
        },
        row.get(6)?,
    ))
}

fn postgres_delivery(row: &tokio_postgres::Row) -> Result<DeliveryRow, StoreError> {
    Ok((
        AlertDelivery {
            id: row.try_get(0)?,
            target: row.try_get(1)?,
            event_id: row.try_get(2)?,
            channel: row.try_get(3)?,
            payload: row.try_get(4)?,
            created_at: row.try_get(5)?,
            state: DeliveryState::Pending,
            attempts: row.try_get(7)?,
            next_attempt_at: row.try_get(8)?,
            retry_until: row.try_get(9)?,
            last_status: row.try_get(10)?,
            last_error: row.try_get(11)?,
            delivered_at: row.try_get(12)?,
        },
        row.try_get(6)?,
    ))
}

fn with_state(rows: Vec<DeliveryRow>) -> Result<Vec<AlertDelivery>, StoreError> {
    rows.into_iter()
        .map(|(delivery, state)| {
            Ok(AlertDelivery {
                state: DeliveryState::parse(&state)?,
                ..delivery
            })
        })
        .collect()
}

impl Store {
    /// Saves a card's or wallet's preferences, replacing what was there.
    pub async fn put_alert_preferences(
        &self,
        preferences: AlertPreferences,
    ) -> Result<(), StoreError> {
        let channels = preferences.channels.join(",");
        let declines_only = i64::from(preferences.declines_only);
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        connection
                            .prepare_cached(&format!(
                                "INSERT INTO alert_preferences ({PREFERENCE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (target) DO UPDATE SET channels = excluded.channels, min_amount_minor = excluded.min_amount_minor, declines_only = excluded.declines_only, webhook_url = excluded.webhook_url, email = excluded.email, phone = excluded.phone, updated_at = excluded.updated_at"
                            ))?
                            .execute(rusqlite::params![
                                preferences.target,
                                preferences.target_kind,
                                preferences.cardholder_id,
                                channels,
                                preferences.min_amount_minor,
                                declines_only,
                                preferences.webhook_url,
                                preferences.email,
                                preferences.phone,
                                preferences.secret_nonce,
                                preferences.updated_at
                            ])?;
                        Ok(())
                    })
                    .await
            }
            Store::Postgres(store) => {
                let client = store.other.lock().await?;
                client
                    .execute(
                        &format!(
                            "INSERT INTO alert_preferences ({PREFERENCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (target) DO UPDATE SET channels = excluded.channels, min_amount_minor = excluded.min_amount_minor, declines_only = excluded.declines_only, webhook_url = excluded.webhook_url, email = excluded.email, phone = excluded.phone, updated_at = excluded.updated_at"
                        ),
                        &[
                            &preferences.target,
                            &preferences.target_kind,
                            &preferences.cardholder_id,
                            &channels,
                            &preferences.min_amount_minor,
                            &declines_only,
                            &preferences.webhook_url,
                            &preferences.email,
                            &preferences.phone,
                            &preferences.secret_nonce,
                            &preferences.updated_at,
                        ],
                    )
                    .await?;
                Ok(())
            }
        }
    }

    /// The preferences of a card or wallet; `None` when its holder never set any.
    pub async fn alert_preferences(
        &self,
        target: &str,
    ) -> Result<Option<AlertPreferences>, StoreError> {
        let found = match self {
            Store::Sqlite(store) => {
                let target = target.to_owned();
                store
                    .read(move |connection| {
                        let mut statement = connection.prepare_cached(&format!(
                            "SELECT {PREFERENCE_COLUMNS} FROM alert_preferences WHERE target = ?1"
                        ))?;
                        let mut rows = statement.query_map([target], sqlite_preference)?;
                        Ok(rows.next().transpose()?)
                    })
                    .await?
            }
            Store::Postgres(store) => {
                let client = store.other.lock().await?;
                client
                    .query_opt(
                        &format!(
                            "SELECT {PREFERENCE_COLUMNS} FROM alert_preferences WHERE target = $1"
                        ),
                        &[&target],
                    )
                    .await?
                    .as_ref()
                    .map(postgres_preference)
                    .transpose()?
            }
        };
        Ok(found.map(PreferenceRow::parse))
    }

    /// Queues alerts; one already queued for its target, event and channel is left as it is.
    /// Returns how many were queued.
    pub async fn enqueue_alerts(&self, alerts: Vec<NewAlert>) -> Result<usize, StoreError> {
        if alerts.is_empty() {
            return Ok(0);
        }
        const INSERT: &str = "INSERT INTO alert_deliveries (target, event_id, channel, payload, created_at, state, next_attempt_at, retry_until) VALUES";
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        let mut insert = connection.prepare_cached(&format!(
                        "{INSERT} (?1, ?2, ?3, ?4, ?5, 'pending', ?5, ?6) ON CONFLICT DO NOTHING"
                    ))?;
                        let mut queued = 0;
                        for alert in &alerts {
                            queued += insert.execute(rusqlite::params![
                                alert.target,
                                alert.event_id,
                                alert.channel,
                                alert.payload,
                                alert.created_at,
                                alert.retry_until
                            ])?;
                        }
                        Ok(queued)
                    })
                    .await
            }
            Store::Postgres(store) => {
                let mut client = store.other.lock().await?;
                let transaction = client.transaction().await?;
                let mut queued = 0;
                for alert in &alerts {
                    queued += transaction
                        .execute(
                            &format!(
                                "{INSERT} ($1, $2, $3, $4, $5, 'pending', $5, $6) ON CONFLICT DO NOTHING"
                            ),
                            &[
                                &alert.target,
                                &alert.event_id,
                                &alert.channel,
                                &alert.payload,
                                &alert.created_at,
                                &alert.retry_until,
                            ],
                        )
                        .await?;
                }
                transaction.commit().await?;
                usize::try_from(queued).map_err(|_| StoreError::Corrupt("alert count".into()))
            }
        }
    }

    /// Claims up to `limit` pending alerts due at `now`: their next attempt moves to
    /// `lease_until`, so no other worker sends them meanwhile.
    pub async fn claim_due_alerts(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<AlertDelivery>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                // In the writer: the read and the lease are one step.
                store
                    .write(move |connection| {
                        let rows = connection
                            .prepare_cached(&format!(
                                "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE state = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2"
                            ))?
                            .query_map(rusqlite::params![now, limit], sqlite_delivery)?
                            .collect::<Result<Vec<_>, _>>()?;
                        let mut lease = connection.prepare_cached(
                            "UPDATE alert_deliveries SET next_attempt_at = ?2 WHERE id = ?1",
                        )?;
                        for (delivery, _) in &rows {
                            lease.execute(rusqlite::params![delivery.id, lease_until])?;
                        }
                        with_state(rows)
                    })
                    .await
            }
            Store::Postgres(store) => {
                let client = store.other.lock().await?;
                // One statement: rows another host is claiming are skipped, not waited for.
                let rows = client
                    .query(
                        &format!("UPDATE alert_deliveries SET next_attempt_at = $2 WHERE id IN (SELECT id FROM alert_deliveries WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING {DELIVERY_COLUMNS}"),
                        &[&now, &lease_until, &limit],
                    )
                    .await?
                    .iter()
                    .map(postgres_delivery)
                    .collect::<Result<Vec<_>, _>>()?;
                with_state(rows)
            }
        }
    }

    /// Records an attempt: delivered, or failed and retried at its time unless that is past
    /// the alert's retry window (then it is failed for good).
    pub async fn record_alert_attempt(&self, id: i64, attempt: Attempt) -> Result<(), StoreError> {
        const DELIVERED: &str = "UPDATE alert_deliveries SET state = 'delivered', attempts = attempts + 1, last_status = ?2, last_error = NULL, delivered_at = ?3 WHERE id = ?1";
        const FAILED: &str = "UPDATE alert_deliveries SET attempts = attempts + 1, last_status = ?2, last_error = ?3, next_attempt_at = ?4, state = CASE WHEN ?4 > retry_until THEN 'failed' ELSE 'pending' END WHERE id = ?1";
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        match attempt {
                            Attempt::Delivered { status, at } => connection
                                .prepare_cached(DELIVERED)?
                                .execute(rusqlite::params![id, status, at])?,
                            Attempt::Failed {
                                status,
                                error,
                                next_at,
                            } => connection
                                .prepare_cached(FAILED)?
                                .execute(rusqlite::params![id, status, error, next_at])?,
                        };
                        Ok(())
                    })
                    .await
            }
            Store::Postgres(store) => {
                let client = store.other.lock().await?;
                let dollars = |sql: &str| sql.replace('?', "$");
                match attempt {
                    Attempt::Delivered { status, at } => {
                        client
                            .execute(&dollars(DELIVERED), &[&id, &status, &at])
                            .await?
                    }
                    Attempt::Failed {
                        status,
                        error,
                        next_at,
                    } => {
                        client
                            .execute(&dollars(FAILED), &[&id, &status, &error, &next_at])
                            .await?
                    }
                };
                Ok(())
            }
        }
    }

    /// A card's or wallet's alerts, newest first.
    pub async fn alerts_of(
        &self,
        target: &str,
        limit: i64,
    ) -> Result<Vec<AlertDelivery>, StoreError> {
        let rows = match self {
            Store::Sqlite(store) => {
                let target = target.to_owned();
                store
                    .read(move |connection| {
                        Ok(connection
                            .prepare_cached(&format!(
                                "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE target = ?1 ORDER BY id DESC LIMIT ?2"
                            ))?
                            .query_map(rusqlite::params![target, limit], sqlite_delivery)?
                            .collect::<Result<Vec<_>, _>>()?)
                    })
                    .await?
            }
            Store::Postgres(store) => {
                let client = store.other.lock().await?;
                client
                    .query(
                        &format!("SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE target = $1 ORDER BY id DESC LIMIT $2"),
                        &[&target, &limit],
                    )
                    .await?
                    .iter()
                    .map(postgres_delivery)
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        with_state(rows)
    }
}
