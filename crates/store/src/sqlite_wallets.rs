//! SQLite side of [`crate::wallets`]: writes through the writer's group commit
//! (`SqliteStore::write`), reads on the pooled read connections.

use crate::StoreError;
use crate::sqlite::SqliteStore;
use crate::wallets::{
    CodeUse, ORDER_COLUMNS, OrderRecord, OrderRow, OrderTransition, PasswordFailure,
    PaymentCodeRecord, WALLET_COLUMNS, WalletRecord, WalletRow,
};
use rusqlite::{OptionalExtension, params};

fn wallet_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<WalletRow> {
    Ok(WalletRow {
        id: row.get(0)?,
        cardholder_id: row.get(1)?,
        currency: row.get(2)?,
        linked_card_id: row.get(3)?,
        password_hash: row.get(4)?,
        password_failures: row.get(5)?,
        locked_until: row.get(6)?,
        created_at: row.get(7)?,
    })
}

fn order_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<OrderRow> {
    Ok(OrderRow {
        id: row.get(0)?,
        merchant_id: row.get(1)?,
        terminal_id: row.get(2)?,
        amount_minor: row.get(3)?,
        currency: row.get(4)?,
        status: row.get(5)?,
        wallet_id: row.get(6)?,
        created_at: row.get(7)?,
        expires_at: row.get(8)?,
        updated_at: row.get(9)?,
    })
}

impl SqliteStore {
    pub(crate) async fn put_wallet(&self, wallet: WalletRecord) -> Result<bool, StoreError> {
        self.write(move |connection| {
            let inserted = connection
                .prepare_cached(&format!(
                    "INSERT INTO wallets ({WALLET_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING"
                ))?
                .execute(params![
                    wallet.id,
                    wallet.cardholder_id,
                    wallet.currency.alpha(),
                    wallet.linked_card_id,
                    wallet.password_hash,
                    i64::from(wallet.password_failures),
                    wallet.locked_until,
                    wallet.created_at
                ])?;
            Ok(inserted == 1)
        })
        .await
    }

    pub(crate) async fn wallet(&self, id: String) -> Result<Option<WalletRecord>, StoreError> {
        let row = self
            .read_point(move |connection| {
                Ok(connection
                    .prepare_cached(&format!(
                        "SELECT {WALLET_COLUMNS} FROM wallets WHERE id = ?1"
                    ))?
                    .query_row(params![id], wallet_row)
                    .optional()?)
            })
            .await?;
        row.map(WalletRow::parse).transpose()
    }

    pub(crate) async fn wallets_of(
        &self,
        cardholder_id: String,
    ) -> Result<Vec<WalletRecord>, StoreError> {
        let rows = self
            .read(move |connection| {
                Ok(connection
                    .prepare_cached(&format!(
                        "SELECT {WALLET_COLUMNS} FROM wallets WHERE cardholder_id = ?1 ORDER BY created_at, id"
                    ))?
                    .query_map(params![cardholder_id], wallet_row)?
                    .collect::<Result<Vec<_>, _>>()?)
            })
            .await?;
        rows.into_iter().map(WalletRow::parse).collect()
    }

    pub(crate) async fn wallet_password_failed(
        &self,
        id: String,
        limit: u32,
        lock_until: i64,
    ) -> Result<Option<PasswordFailure>, StoreError> {
        self.write(move |connection| {
            // The right-hand sides read the row as it was: `password_failures + 1` is the count
            // after this failure in both places.
            let row = connection
                .prepare_cached(
                    "UPDATE wallets SET password_failures = password_failures + 1, locked_until = CASE WHEN password_failures + 1 >= ?2 THEN ?3 ELSE NULL END WHERE id = ?1 RETURNING password_failures, locked_until",
                )?
                .query_row(params![id, i64::from(limit), lock_until], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, Option<i64>>(1)?))
                })
                .optional()?;
            Ok(row.map(|(failures, locked_until)| PasswordFailure {
                failures: u32::try_from(failures).unwrap_or(u32::MAX),
                locked_until,
            }))
        })
        .await
    }

    pub(crate) async fn wallet_password_passed(&self, id: String) -> Result<(), StoreError> {
        self.write(move |connection| {
            connection
                .prepare_cached(
                    "UPDATE wallets SET password_failures = 0, locked_until = NULL WHERE id = ?1 AND (password_failures <> 0 OR locked_until IS NOT NULL)",
                )?
                .execute(params![id])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn create_order(&self, order: OrderRecord) -> Result<OrderRecord, StoreError> {
        let row = self
            .write(move |connection| {
                connection
                    .prepare_cached(&format!(
                        "INSERT INTO wallet_orders ({ORDER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING"
                    ))?
                    .execute(params![
                        order.id,
                        order.merchant_id,
                        order.terminal_id,
                        order.amount.minor(),
                        order.amount.currency().alpha(),
                        order.status.as_str(),
                        order.wallet_id,
                        order.created_at,
                        order.expires_at,
                        order.updated_at
                    ])?;
                Ok(connection
                    .prepare_cached(&format!(
                        "SELECT {ORDER_COLUMNS} FROM wallet_orders WHERE id = ?1"
                    ))?
                    .query_row(params![order.id], order_row)?)
            })
            .await?;
        row.parse()
    }

    pub(crate) async fn order(&self, id: String) -> Result<Option<OrderRecord>, StoreError> {
        let row = self
            .read_point(move |connection| {
                Ok(connection
                    .prepare_cached(&format!(
                        "SELECT {ORDER_COLUMNS} FROM wallet_orders WHERE id = ?1"
                    ))?
                    .query_row(params![id], order_row)
                    .optional()?)
            })
            .await?;
        row.map(OrderRow::parse).transpose()
    }

    pub(crate) async fn transition_order(
        &self,
        transition: OrderTransition,
    ) -> Result<bool, StoreError> {
        self.write(move |connection| {
            let changed = connection
                .prepare_cached(
                    "UPDATE wallet_orders SET status = ?3, wallet_id = COALESCE(?4, wallet_id), updated_at = ?5 WHERE id = ?1 AND status = ?2",
                )?
                .execute(params![
                    transition.order_id,
                    transition.from.as_str(),
                    transition.to.as_str(),
                    transition.wallet_id,
                    transition.at
                ])?;
            Ok(changed == 1)
        })
        .await
    }

    /// The orders `tail` selects (WHERE, ORDER BY and LIMIT after the column list), with
    /// `values` bound to its parameters in order.
    async fn select_orders(
        &self,
        tail: &'static str,
        values: Vec<rusqlite::types::Value>,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        let rows = self
            .read(move |connection| {
                Ok(connection
                    .prepare_cached(&format!("SELECT {ORDER_COLUMNS} FROM wallet_orders {tail}"))?
                    .query_map(rusqlite::params_from_iter(values), order_row)?
                    .collect::<Result<Vec<_>, _>>()?)
            })
            .await?;
        rows.into_iter().map(OrderRow::parse).collect()
    }

    pub(crate) async fn orders_of_wallet(
        &self,
        wallet_id: String,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        self.select_orders(
            "WHERE wallet_id = ?1 ORDER BY updated_at DESC, id DESC LIMIT ?2",
            vec![wallet_id.into(), i64::from(limit).into()],
        )
        .await
    }

    pub(crate) async fn orders_between(
        &self,
        from: i64,
        to: i64,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        self.select_orders(
            "WHERE (created_at BETWEEN ?1 AND ?2) OR (updated_at BETWEEN ?1 AND ?2) ORDER BY created_at, id LIMIT ?3",
            vec![from.into(), to.into(), i64::from(limit).into()],
        )
        .await
    }

    pub(crate) async fn orders_of_merchant(
        &self,
        merchant_id: String,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        self.select_orders(
            "WHERE merchant_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2",
            vec![merchant_id.into(), i64::from(limit).into()],
        )
        .await
    }

    pub(crate) async fn put_payment_code(&self, code: PaymentCodeRecord) -> Result<(), StoreError> {
        self.write(move |connection| {
            connection
                .prepare_cached(
                    "INSERT INTO wallet_payment_codes (code_digest, wallet_id, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    code.code_digest,
                    code.wallet_id,
                    code.issued_at,
                    code.expires_at
                ])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn use_payment_code(
        &self,
        code_digest: String,
        charge_id: String,
        now: i64,
    ) -> Result<CodeUse, StoreError> {
        self.write(move |connection| {
            let won = connection
                .prepare_cached(
                    "UPDATE wallet_payment_codes SET used_by = ?2 WHERE code_digest = ?1 AND used_by IS NULL AND expires_at > ?3 RETURNING wallet_id",
                )?
                .query_row(params![code_digest, charge_id, now], |row| {
                    row.get::<_, String>(0)
                })
                .optional()?;
            if let Some(wallet_id) = won {
                return Ok(CodeUse::Charges { wallet_id });
            }
            let found = connection
                .prepare_cached(
                    "SELECT wallet_id, used_by, expires_at FROM wallet_payment_codes WHERE code_digest = ?1",
                )?
                .query_row(params![code_digest], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                })
                .optional()?;
            Ok(crate::wallets::code_use(found, &charge_id, now))
        })
        .await
    }

    pub(crate) async fn delete_payment_codes_before(&self, before: i64) -> Result<u64, StoreError> {
        self.write(move |connection| {
            let deleted = connection
                .prepare_cached("DELETE FROM wallet_payment_codes WHERE expires_at < ?1")?
                .execute(params![before])?;
            Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
        })
        .await
    }

    pub(crate) async fn orders_due_to_close(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        self.select_orders(
            "WHERE status = 'created' AND expires_at <= ?1 ORDER BY expires_at, id LIMIT ?2",
            vec![now.into(), i64::from(limit).into()],
        )
        .await
    }
}
