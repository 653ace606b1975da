//! SQLite side of [`crate::accounts`]: writes through the writer's group commit
//! (`SqliteStore::write`), reads on the pooled read connections.

use crate::StoreError;
use crate::accounts::{
    API_KEY_COLUMNS, ApiKey, IDEMPOTENCY_SWEEP_ROWS, IDEMPOTENCY_TTL_SECONDS, IdempotencyState,
    LOCKOUT_SECONDS, MAX_LOGIN_FAILURES, NewUser, Param, Referral, Tenant, TotpValue,
    TransactionFilter, TransactionRecord, USER_COLUMNS, User, UserRow, idempotency_state,
    transactions_sql,
};
use crate::sqlite::SqliteStore;
use rusqlite::{Connection, OptionalExtension, params};

fn user_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: row.get(0)?,
        username: row.get(1)?,
        display_name: row.get(2)?,
        password_hash: row.get(3)?,
        role: row.get(4)?,
        tenant_kind: row.get(5)?,
        tenant_id: row.get(6)?,
        failed_logins: row.get(7)?,
        locked_until: row.get(8)?,
        created_at: row.get(9)?,
        totp_nonce: row.get(10)?,
        totp_enabled: row.get(11)?,
        totp_last_step: row.get(12)?,
    })
}

fn find_user(
    connection: &Connection,
    column: &str,
    value: &str,
) -> Result<Option<User>, StoreError> {
    connection
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {column} = ?1"
        ))?
        .query_row(params![value], user_row)
        .optional()?
        .map(UserRow::into_user)
        .transpose()
}

fn api_key_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: row.get(0)?,
        user_id: row.get(1)?,
        name: row.get(2)?,
        created_at: row.get(3)?,
        revoked_at: row.get(4)?,
    })
}

fn transaction_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TransactionRecord> {
    Ok(TransactionRecord {
        id: row.get(0)?,
        received_at: row.get(1)?,
        terminal_id: row.get(2)?,
        merchant_id: row.get(3)?,
        mti: row.get(4)?,
        kind: row.get(5)?,
        batch: row.get(6)?,
        stan: row.get(7)?,
        amount_minor: row.get(8)?,
        currency: row.get(9)?,
        card: row.get(10)?,
        original_batch: row.get(11)?,
        original_stan: row.get(12)?,
        response: row.get(13)?,
        rrn: row.get(14)?,
        auth_code: row.get(15)?,
        duration_us: row.get(16)?,
        risk: row.get(17)?,
        entry_mode: row.get(18)?,
    })
}

impl SqliteStore {
    pub(crate) async fn put_users(&self, users: Vec<NewUser>) -> Result<usize, StoreError> {
        self.write(move |connection| {
            let mut insert = connection.prepare_cached(&format!(
                "INSERT INTO users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, NULL, ?8, NULL, 0, NULL) ON CONFLICT DO NOTHING"
            ))?;
            let mut created = 0;
            for user in &users {
                created += insert.execute(params![
                    user.id,
                    user.username,
                    user.display_name,
                    user.password_hash,
                    user.role.as_str(),
                    user.tenant.kind().as_str(),
                    user.tenant.id(),
                    user.created_at
                ])?;
            }
            Ok(created)
        })
        .await
    }

    pub(crate) async fn user_where(
        &self,
        column: &'static str,
        value: String,
    ) -> Result<Option<User>, StoreError> {
        self.read_point(move |connection| find_user(connection, column, &value))
            .await
    }

    pub(crate) async fn users_of(&self, tenant: Tenant) -> Result<Vec<User>, StoreError> {
        self.read(move |connection| {
            let rows = connection
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE tenant_kind = ?1 AND tenant_id = ?2 ORDER BY username"
                ))?
                .query_map(params![tenant.kind().as_str(), tenant.id()], user_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(UserRow::into_user).collect()
        })
        .await
    }

    /// Counts a login in the writer, so that concurrent failures all count; the user after.
    pub(crate) async fn record_login(
        &self,
        user_id: String,
        success: bool,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        self.write(move |connection| {
            if success {
                connection
                    .prepare_cached(
                        "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?1",
                    )?
                    .execute(params![user_id])?;
            } else {
                connection
                    .prepare_cached(
                        "UPDATE users SET failed_logins = CASE WHEN failed_logins + 1 >= ?2 THEN 0 ELSE failed_logins + 1 END, locked_until = CASE WHEN failed_logins + 1 >= ?2 THEN ?3 ELSE locked_until END WHERE id = ?1",
                    )?
                    .execute(params![user_id, MAX_LOGIN_FAILURES, now + LOCKOUT_SECONDS])?;
            }
            find_user(connection, "id", &user_id)
        })
        .await
    }

    pub(crate) async fn totp_update(
        &self,
        sql: String,
        user_id: String,
        value: TotpValue,
    ) -> Result<bool, StoreError> {
        self.write(move |connection| {
            let mut statement = connection.prepare_cached(&sql)?;
            let changed = match value {
                TotpValue::Int(value) => statement.execute(params![user_id, value])?,
                TotpValue::Text(value) => statement.execute(params![user_id, value])?,
            };
            Ok(changed == 1)
        })
        .await
    }

    pub(crate) async fn put_api_key(
        &self,
        key: ApiKey,
        digest: [u8; 32],
    ) -> Result<(), StoreError> {
        self.write(move |connection| {
            connection
                .prepare_cached(
                    "INSERT INTO api_keys (id, user_id, name, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![key.id, key.user_id, key.name, digest.as_slice(), key.created_at])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn api_key(
        &self,
        id: String,
    ) -> Result<Option<(ApiKey, Vec<u8>)>, StoreError> {
        self.read_point(move |connection| {
            Ok(connection
                .prepare_cached(&format!(
                    "SELECT {API_KEY_COLUMNS}, secret_hash FROM api_keys WHERE id = ?1"
                ))?
                .query_row(params![id], |row| Ok((api_key_row(row)?, row.get(5)?)))
                .optional()?)
        })
        .await
    }

    pub(crate) async fn api_keys_of(&self, user_id: String) -> Result<Vec<ApiKey>, StoreError> {
        self.read(move |connection| {
            Ok(connection
                .prepare_cached(&format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE user_id = ?1 ORDER BY created_at DESC, id"
                ))?
                .query_map(params![user_id], api_key_row)?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub(crate) async fn revoke_api_key(
        &self,
        user_id: String,
        key_id: String,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.write(move |connection| {
            let changed = connection
                .prepare_cached(
                    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?3) WHERE id = ?1 AND user_id = ?2",
                )?
                .execute(params![key_id, user_id, now])?;
            Ok(changed == 1)
        })
        .await
    }

    pub(crate) async fn begin_idempotent(
        &self,
        scope: String,
        key: String,
        digest: [u8; 32],
        now: i64,
    ) -> Result<IdempotencyState, StoreError> {
        // In the writer: the claim and the look-up are one step, so of two concurrent
        // requests with one key exactly one is `New`.
        self.write(move |connection| {
            connection
                .prepare_cached(
                    "DELETE FROM idempotency_keys WHERE scope = ?1 AND key = ?2 AND created_at <= ?3",
                )?
                .execute(params![scope, key, now - IDEMPOTENCY_TTL_SECONDS])?;
            // A few expired records of anyone's go too (oldest first), so the table stays
            // about one day of POSTs.
            connection
                .prepare_cached(
                    "DELETE FROM idempotency_keys WHERE (scope, key) IN (SELECT scope, key FROM idempotency_keys WHERE created_at <= ?1 ORDER BY created_at LIMIT ?2)",
                )?
                .execute(params![now - IDEMPOTENCY_TTL_SECONDS, IDEMPOTENCY_SWEEP_ROWS])?;
            let inserted = connection
                .prepare_cached(
                    "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                )?
                .execute(params![scope, key, digest.as_slice(), now])?;
            if inserted == 1 {
                return Ok(IdempotencyState::New);
            }
            let (hash, status, body): (Vec<u8>, Option<i64>, Option<Vec<u8>>) = connection
                .prepare_cached(
                    "SELECT request_hash, status, body FROM idempotency_keys WHERE scope = ?1 AND key = ?2",
                )?
                .query_row(params![scope, key], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })?;
            Ok(idempotency_state(&digest, &hash, status, body))
        })
        .await
    }

    pub(crate) async fn finish_idempotent(
        &self,
        scope: String,
        key: String,
        status: u16,
        body: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.write(move |connection| {
            connection
                .prepare_cached(
                    "UPDATE idempotency_keys SET status = ?3, body = ?4 WHERE scope = ?1 AND key = ?2",
                )?
                .execute(params![scope, key, i64::from(status), body])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn abandon_idempotent(
        &self,
        scope: String,
        key: String,
    ) -> Result<(), StoreError> {
        self.write(move |connection| {
            connection
                .prepare_cached(
                    "DELETE FROM idempotency_keys WHERE scope = ?1 AND key = ?2 AND status IS NULL",
                )?
                .execute(params![scope, key])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn put_referrals(&self, referrals: Vec<Referral>) -> Result<(), StoreError> {
        self.write(move |connection| {
            let mut insert = connection.prepare_cached(
                "INSERT INTO partner_referrals (partner_id, merchant_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )?;
            for referral in &referrals {
                insert.execute(params![referral.partner_id, referral.merchant_id])?;
            }
            Ok(())
        })
        .await
    }

    pub(crate) async fn referred_merchants(
        &self,
        partner_id: String,
    ) -> Result<Vec<String>, StoreError> {
        self.read(move |connection| {
            Ok(connection
                .prepare_cached(
                    "SELECT merchant_id FROM partner_referrals WHERE partner_id = ?1 ORDER BY merchant_id",
                )?
                .query_map(params![partner_id], |row| row.get(0))?
                .collect::<Result<Vec<String>, _>>()?)
        })
        .await
    }

    pub(crate) async fn transactions(
        &self,
        filter: &TransactionFilter,
    ) -> Result<Vec<TransactionRecord>, StoreError> {
        let (sql, parameters) = transactions_sql(filter, |n| format!("?{n}"));
        self.read(move |connection| {
            let values: Vec<rusqlite::types::Value> = parameters
                .into_iter()
                .map(|parameter| match parameter {
                    Param::Int(value) => rusqlite::types::Value::Integer(value),
                    Param::Text(value) => rusqlite::types::Value::Text(value),
                })
                .collect();
            Ok(connection
                .prepare(&sql)?
                .query_map(rusqlite::params_from_iter(values), transaction_row)?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}

use crate::webhooks::{
    Attempt, DELIVERY_COLUMNS, Delivery, DeliveryState, NewDelivery, SUBSCRIPTION_COLUMNS,
    Subscription,
};

fn subscription_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Subscription> {
    Ok(Subscription {
        id: row.get(0)?,
        owner_user_id: row.get(1)?,
        url: row.get(2)?,
        secret_nonce: row.get(3)?,
        created_at: row.get(4)?,
        disabled_at: row.get(5)?,
    })
}

/// A delivery row; the state is checked after (rusqlite's closure cannot return ours).
fn delivery_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Delivery, String)> {
    let state: String = row.get(6)?;
    Ok((
        Delivery {
            id: row.get(0)?,
            subscription_id: row.get(1)?,
            event_id: row.get(2)?,
            event_type: row.get(3)?,
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
        state,
    ))
}

fn with_state(rows: Vec<(Delivery, String)>) -> Result<Vec<Delivery>, StoreError> {
    rows.into_iter()
        .map(|(delivery, state)| {
            Ok(Delivery {
                state: DeliveryState::parse(&state)?,
                ..delivery
            })
        })
        .collect()
}

impl SqliteStore {
    pub(crate) async fn put_subscription(
        &self,
        subscription: Subscription,
    ) -> Result<(), StoreError> {
        self.write(move |connection| {
            connection
                .prepare_cached(&format!(
                    "INSERT INTO webhook_subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                ))?
                .execute(params![
                    subscription.id,
                    subscription.owner_user_id,
                    subscription.url,
                    subscription.secret_nonce,
                    subscription.created_at,
                    subscription.disabled_at
                ])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn active_subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        self.read(|connection| {
            Ok(connection
                .prepare_cached(&format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE disabled_at IS NULL ORDER BY created_at, id"
                ))?
                .query_map([], subscription_row)?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    pub(crate) async fn subscription(
        &self,
        id: String,
    ) -> Result<Option<Subscription>, StoreError> {
        self.read_point(move |connection| {
            Ok(connection
                .prepare_cached(&format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = ?1"
                ))?
                .query_row(params![id], subscription_row)
                .optional()?)
        })
        .await
    }

    pub(crate) async fn disable_subscription(
        &self,
        id: String,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.write(move |connection| {
            let changed = connection
                .prepare_cached(
                    "UPDATE webhook_subscriptions SET disabled_at = ?2 WHERE id = ?1 AND disabled_at IS NULL",
                )?
                .execute(params![id, now])?;
            Ok(changed == 1)
        })
        .await
    }

    pub(crate) async fn enqueue_deliveries(
        &self,
        deliveries: Vec<NewDelivery>,
    ) -> Result<usize, StoreError> {
        self.write(move |connection| {
            let mut insert = connection.prepare_cached(
                "INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, payload, created_at, state, next_attempt_at, retry_until) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?5, ?6) ON CONFLICT DO NOTHING",
            )?;
            let mut queued = 0;
            for delivery in &deliveries {
                queued += insert.execute(params![
                    delivery.subscription_id,
                    delivery.event_id,
                    delivery.event_type,
                    delivery.payload,
                    delivery.created_at,
                    delivery.retry_until
                ])?;
            }
            Ok(queued)
        })
        .await
    }

    pub(crate) async fn claim_due_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        // In the writer: the read and the lease are one step.
        self.write(move |connection| {
            let rows = connection
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ?1 AND subscription_id IN (SELECT id FROM webhook_subscriptions WHERE disabled_at IS NULL) ORDER BY next_attempt_at, id LIMIT ?2"
                ))?
                .query_map(params![now, limit], delivery_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let mut lease = connection
                .prepare_cached("UPDATE webhook_deliveries SET next_attempt_at = ?2 WHERE id = ?1")?;
            for (delivery, _) in &rows {
                lease.execute(params![delivery.id, lease_until])?;
            }
            with_state(rows)
        })
        .await
    }

    pub(crate) async fn record_delivery_attempt(
        &self,
        id: i64,
        attempt: Attempt,
    ) -> Result<(), StoreError> {
        self.write(move |connection| {
            match attempt {
                Attempt::Delivered { status, at } => connection
                    .prepare_cached(
                        "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, last_status = ?2, last_error = NULL, delivered_at = ?3 WHERE id = ?1",
                    )?
                    .execute(params![id, status, at])?,
                Attempt::Failed { status, error, next_at } => connection
                    .prepare_cached(
                        "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = ?2, last_error = ?3, next_attempt_at = ?4, state = CASE WHEN ?4 > retry_until THEN 'failed' ELSE 'pending' END WHERE id = ?1",
                    )?
                    .execute(params![id, status, error, next_at])?,
            };
            Ok(())
        })
        .await
    }

    pub(crate) async fn deliveries_of(
        &self,
        subscription_id: String,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.read(move |connection| {
            let rows = connection
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE subscription_id = ?1 ORDER BY id DESC LIMIT ?2"
                ))?
                .query_map(params![subscription_id, limit], delivery_row)?
                .collect::<Result<Vec<_>, _>>()?;
            with_state(rows)
        })
        .await
    }

    pub(crate) async fn redeliver(
        &self,
        subscription_id: String,
        delivery_id: i64,
        now: i64,
        window: i64,
    ) -> Result<bool, StoreError> {
        self.write(move |connection| {
            let changed = connection
                .prepare_cached(
                    "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = ?3, retry_until = ?4 WHERE id = ?2 AND subscription_id = ?1",
                )?
                .execute(params![subscription_id, delivery_id, now, now + window])?;
            Ok(changed == 1)
        })
        .await
    }
}
