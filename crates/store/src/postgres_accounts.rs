//! PostgreSQL side of [`crate::accounts`], on the store's connection for non-ledger work.
//! Every statement is one atomic step (a conditional update or an `INSERT … ON CONFLICT`),
//! so several hosts sharing the database count logins and claim idempotency keys exactly.

use super::PostgresStore;
use crate::StoreError;
use crate::accounts::{
    API_KEY_COLUMNS, ApiKey, IDEMPOTENCY_SWEEP_ROWS, IDEMPOTENCY_TTL_SECONDS, IdempotencyState,
    LOCKOUT_SECONDS, MAX_LOGIN_FAILURES, NewUser, Param, Referral, Tenant, TotpValue,
    TransactionFilter, TransactionRecord, USER_COLUMNS, User, UserRow, idempotency_state,
    transactions_sql,
};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

fn user_from_row(row: &Row) -> Result<User, StoreError> {
    UserRow {
        id: row.try_get(0)?,
        username: row.try_get(1)?,
        display_name: row.try_get(2)?,
        password_hash: row.try_get(3)?,
        role: row.try_get(4)?,
        tenant_kind: row.try_get(5)?,
        tenant_id: row.try_get(6)?,
        failed_logins: row.try_get(7)?,
        locked_until: row.try_get(8)?,
        created_at: row.try_get(9)?,
        totp_nonce: row.try_get(10)?,
        totp_enabled: row.try_get(11)?,
        totp_last_step: row.try_get(12)?,
    }
    .into_user()
}

fn api_key_from_row(row: &Row) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: row.try_get(0)?,
        user_id: row.try_get(1)?,
        name: row.try_get(2)?,
        created_at: row.try_get(3)?,
        revoked_at: row.try_get(4)?,
    })
}

fn transaction_from_row(row: &Row) -> Result<TransactionRecord, StoreError> {
    Ok(TransactionRecord {
        id: row.try_get(0)?,
        received_at: row.try_get(1)?,
        terminal_id: row.try_get(2)?,
        merchant_id: row.try_get(3)?,
        mti: row.try_get(4)?,
        kind: row.try_get(5)?,
        batch: row.try_get(6)?,
        stan: row.try_get(7)?,
        amount_minor: row.try_get(8)?,
        currency: row.try_get(9)?,
        card: row.try_get(10)?,
        original_batch: row.try_get(11)?,
        original_stan: row.try_get(12)?,
        response: row.try_get(13)?,
        rrn: row.try_get(14)?,
        auth_code: row.try_get(15)?,
        duration_us: row.try_get(16)?,
        risk: row.try_get(17)?,
        entry_mode: row.try_get(18)?,
    })
}

impl PostgresStore {
    pub(crate) async fn put_users(&self, users: Vec<NewUser>) -> Result<usize, StoreError> {
        let mut client = self.other.lock().await?;
        let transaction = client.transaction().await?;
        let mut created = 0;
        for user in &users {
            created += transaction
                .execute(
                    &format!("INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, NULL, $8, NULL, 0, NULL) ON CONFLICT DO NOTHING"),
                    &[
                        &user.id,
                        &user.username,
                        &user.display_name,
                        &user.password_hash,
                        &user.role.as_str(),
                        &user.tenant.kind().as_str(),
                        &user.tenant.id(),
                        &user.created_at,
                    ],
                )
                .await?;
        }
        transaction.commit().await?;
        usize::try_from(created).map_err(|_| StoreError::Corrupt("user count".into()))
    }

    pub(crate) async fn user_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<User>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE {column} = $1"),
                &[&value],
            )
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    pub(crate) async fn users_of(&self, tenant: &Tenant) -> Result<Vec<User>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_kind = $1 AND tenant_id = $2 ORDER BY username"),
                &[&tenant.kind().as_str(), &tenant.id()],
            )
            .await?
            .iter()
            .map(user_from_row)
            .collect()
    }

    pub(crate) async fn record_login(
        &self,
        user_id: &str,
        success: bool,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        let client = self.other.lock().await?;
        let row = if success {
            client
                .query_opt(
                    &format!("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1 RETURNING {USER_COLUMNS}"),
                    &[&user_id],
                )
                .await?
        } else {
            client
                .query_opt(
                    &format!("UPDATE users SET failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END, locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END WHERE id = $1 RETURNING {USER_COLUMNS}"),
                    &[&user_id, &MAX_LOGIN_FAILURES, &(now + LOCKOUT_SECONDS)],
                )
                .await?
        };
        row.as_ref().map(user_from_row).transpose()
    }

    pub(crate) async fn totp_update(
        &self,
        sql: &str,
        user_id: &str,
        value: TotpValue,
    ) -> Result<bool, StoreError> {
        let client = self.other.lock().await?;
        let changed = match value {
            TotpValue::Int(value) => client.execute(sql, &[&user_id, &value]).await?,
            TotpValue::Text(value) => client.execute(sql, &[&user_id, &value]).await?,
        };
        Ok(changed == 1)
    }

    pub(crate) async fn put_api_key(
        &self,
        key: ApiKey,
        digest: [u8; 32],
    ) -> Result<(), StoreError> {
        let client = self.other.lock().await?;
        client
            .execute(
                "INSERT INTO api_keys (id, user_id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
                &[&key.id, &key.user_id, &key.name, &digest.as_slice(), &key.created_at],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn api_key(&self, id: &str) -> Result<Option<(ApiKey, Vec<u8>)>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query_opt(
                &format!("SELECT {API_KEY_COLUMNS}, secret_hash FROM api_keys WHERE id = $1"),
                &[&id],
            )
            .await?
            .map(|row| Ok((api_key_from_row(&row)?, row.try_get(5)?)))
            .transpose()
    }

    pub(crate) async fn api_keys_of(&self, user_id: &str) -> Result<Vec<ApiKey>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query(
                &format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, id"),
                &[&user_id],
            )
            .await?
            .iter()
            .map(api_key_from_row)
            .collect()
    }

    pub(crate) async fn revoke_api_key(
        &self,
        user_id: &str,
        key_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let client = self.other.lock().await?;
        let changed = client
            .execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $3) WHERE id = $1 AND user_id = $2",
                &[&key_id, &user_id, &now],
            )
            .await?;
        Ok(changed == 1)
    }

    pub(crate) async fn begin_idempotent(
        &self,
        scope: &str,
        key: &str,
        digest: [u8; 32],
        now: i64,
    ) -> Result<IdempotencyState, StoreError> {
        let client = self.other.lock().await?;
        client
            .execute(
                "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at <= $3",
                &[&scope, &key, &(now - IDEMPOTENCY_TTL_SECONDS)],
            )
            .await?;
        // A few expired records of anyone's go too (oldest first), so the table stays about
        // one day of POSTs.
        client
            .execute(
                "DELETE FROM idempotency_keys WHERE (scope, key) IN (SELECT scope, key FROM idempotency_keys WHERE created_at <= $1 ORDER BY created_at LIMIT $2)",
                &[&(now - IDEMPOTENCY_TTL_SECONDS), &IDEMPOTENCY_SWEEP_ROWS],
            )
            .await?;
        // The unique key decides between hosts: the loser of a race inserts nothing.
        let inserted = client
            .execute(
                "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&scope, &key, &digest.as_slice(), &now],
            )
            .await?;
        if inserted == 1 {
            return Ok(IdempotencyState::New);
        }
        let row = client
            .query_one(
                "SELECT request_hash, status, body FROM idempotency_keys WHERE scope = $1 AND key = $2",
                &[&scope, &key],
            )
            .await?;
        let hash: Vec<u8> = row.try_get(0)?;
        Ok(idempotency_state(
            &digest,
            &hash,
            row.try_get(1)?,
            row.try_get(2)?,
        ))
    }

    pub(crate) async fn finish_idempotent(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: Vec<u8>,
    ) -> Result<(), StoreError> {
        let client = self.other.lock().await?;
        client
            .execute(
                "UPDATE idempotency_keys SET status = $3, body = $4 WHERE scope = $1 AND key = $2",
                &[&scope, &key, &i64::from(status), &body],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn abandon_idempotent(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        let client = self.other.lock().await?;
        client
            .execute(
                "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status IS NULL",
                &[&scope, &key],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn put_referrals(&self, referrals: Vec<Referral>) -> Result<(), StoreError> {
        let client = self.other.lock().await?;
        for referral in &referrals {
            client
                .execute(
                    "INSERT INTO partner_referrals (partner_id, merchant_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&referral.partner_id, &referral.merchant_id],
                )
                .await?;
        }
        Ok(())
    }

    pub(crate) async fn referred_merchants(
        &self,
        partner_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query(
                "SELECT merchant_id FROM partner_referrals WHERE partner_id = $1 ORDER BY merchant_id",
                &[&partner_id],
            )
            .await?
            .iter()
            .map(|row| Ok(row.try_get(0)?))
            .collect()
    }

    pub(crate) async fn transactions(
        &self,
        filter: &TransactionFilter,
    ) -> Result<Vec<TransactionRecord>, StoreError> {
        let (sql, parameters) = transactions_sql(filter, |n| format!("${n}"));
        let values: Vec<Box<dyn ToSql + Sync + Send>> = parameters
            .into_iter()
            .map(|parameter| -> Box<dyn ToSql + Sync + Send> {
                match parameter {
                    Param::Int(value) => Box::new(value),
                    Param::Text(value) => Box::new(value),
                }
            })
            .collect();
        let references: Vec<&(dyn ToSql + Sync)> = values
            .iter()
            .map(|value| value.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let client = self.other.lock().await?;
        client
            .query(&sql, &references)
            .await?
            .iter()
            .map(transaction_from_row)
            .collect()
    }
}

use crate::webhooks::{
    Attempt, DELIVERY_COLUMNS, Delivery, DeliveryState, NewDelivery, SUBSCRIPTION_COLUMNS,
    Subscription,
};

fn subscription_from_row(row: &Row) -> Result<Subscription, StoreError> {
    Ok(Subscription {
        id: row.try_get(0)?,
        owner_user_id: row.try_get(1)?,
        url: row.try_get(2)?,
        secret_nonce: row.try_get(3)?,
        created_at: row.try_get(4)?,
        disabled_at: row.try_get(5)?,
    })
}

fn delivery_from_row(row: &Row) -> Result<Delivery, StoreError> {
    let state: String = row.try_get(6)?;
    Ok(Delivery {
        id: row.try_get(0)?,
        subscription_id: row.try_get(1)?,
        event_id: row.try_get(2)?,
        event_type: row.try_get(3)?,
        payload: row.try_get(4)?,
        created_at: row.try_get(5)?,
        state: DeliveryState::parse(&state)?,
        attempts: row.try_get(7)?,
        next_attempt_at: row.try_get(8)?,
        retry_until: row.try_get(9)?,
        last_status: row.try_get(10)?,
        last_error: row.try_get(11)?,
        delivered_at: row.try_get(12)?,
    })
}

impl PostgresStore {
    pub(crate) async fn put_subscription(
        &self,
        subscription: Subscription,
    ) -> Result<(), StoreError> {
        let client = self.other.lock().await?;
        client
            .execute(
                &format!("INSERT INTO webhook_subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"),
                &[
                    &subscription.id,
                    &subscription.owner_user_id,
                    &subscription.url,
                    &subscription.secret_nonce,
                    &subscription.created_at,
                    &subscription.disabled_at,
                ],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn active_subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query(
                &format!("SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE disabled_at IS NULL ORDER BY created_at, id"),
                &[],
            )
            .await?
            .iter()
            .map(subscription_from_row)
            .collect()
    }

    pub(crate) async fn subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query_opt(
                &format!("SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = $1"),
                &[&id],
            )
            .await?
            .as_ref()
            .map(subscription_from_row)
            .transpose()
    }

    pub(crate) async fn disable_subscription(
        &self,
        id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let client = self.other.lock().await?;
        let changed = client
            .execute(
                "UPDATE webhook_subscriptions SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL",
                &[&id, &now],
            )
            .await?;
        Ok(changed == 1)
    }

    pub(crate) async fn enqueue_deliveries(
        &self,
        deliveries: Vec<NewDelivery>,
    ) -> Result<usize, StoreError> {
        let mut client = self.other.lock().await?;
        let transaction = client.transaction().await?;
        let mut queued = 0;
        for delivery in &deliveries {
            queued += transaction
                .execute(
                    "INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, payload, created_at, state, next_attempt_at, retry_until) VALUES ($1, $2, $3, $4, $5, 'pending', $5, $6) ON CONFLICT DO NOTHING",
                    &[
                        &delivery.subscription_id,
                        &delivery.event_id,
                        &delivery.event_type,
                        &delivery.payload,
                        &delivery.created_at,
                        &delivery.retry_until,
                    ],
                )
                .await?;
        }
        transaction.commit().await?;
        usize::try_from(queued).map_err(|_| StoreError::Corrupt("delivery count".into()))
    }

    pub(crate) async fn claim_due_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let client = self.other.lock().await?;
        // One statement: rows another host is claiming are skipped, not waited for.
        client
            .query(
                &format!("UPDATE webhook_deliveries SET next_attempt_at = $2 WHERE id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1 AND subscription_id IN (SELECT id FROM webhook_subscriptions WHERE disabled_at IS NULL) ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING {DELIVERY_COLUMNS}"),
                &[&now, &lease_until, &limit],
            )
            .await?
            .iter()
            .map(delivery_from_row)
            .collect()
    }

    pub(crate) async fn record_delivery_attempt(
        &self,
        id: i64,
        attempt: Attempt,
    ) -> Result<(), StoreError> {
        let client = self.other.lock().await?;
        match attempt {
            Attempt::Delivered { status, at } => client
                .execute(
                    "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, last_status = $2, last_error = NULL, delivered_at = $3 WHERE id = $1",
                    &[&id, &status, &at],
                )
                .await?,
            Attempt::Failed { status, error, next_at } => client
                .execute(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $2, last_error = $3, next_attempt_at = $4, state = CASE WHEN $4 > retry_until THEN 'failed' ELSE 'pending' END WHERE id = $1",
                    &[&id, &status, &error, &next_at],
                )
                .await?,
        };
        Ok(())
    }

    pub(crate) async fn deliveries_of(
        &self,
        subscription_id: &str,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query(
                &format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE subscription_id = $1 ORDER BY id DESC LIMIT $2"),
                &[&subscription_id, &limit],
            )
            .await?
            .iter()
            .map(delivery_from_row)
            .collect()
    }

    pub(crate) async fn redeliver(
        &self,
        subscription_id: &str,
        delivery_id: i64,
        now: i64,
        window: i64,
    ) -> Result<bool, StoreError> {
        let client = self.other.lock().await?;
        let changed = client
            .execute(
                "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $3, retry_until = $4 WHERE id = $2 AND subscription_id = $1",
                &[&subscription_id, &delivery_id, &now, &(now + window)],
            )
            .await?;
        Ok(changed == 1)
    }
}
