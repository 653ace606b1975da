//! PostgreSQL side of [`crate::wallets`], on the store's connection for non-ledger work. Every
//! statement is one atomic step, so hosts sharing the database count failures and change
//! order statuses exactly.

use super::PostgresStore;
use crate::StoreError;
use crate::wallets::{
    CodeUse, ORDER_COLUMNS, OrderRecord, OrderRow, OrderTransition, PasswordFailure,
    PaymentCodeRecord, WALLET_COLUMNS, WalletRecord, WalletRow,
};
use tokio_postgres::Row;

fn wallet_from_row(row: &Row) -> Result<WalletRecord, StoreError> {
    WalletRow {
        id: row.try_get(0)?,
        cardholder_id: row.try_get(1)?,
        currency: row.try_get(2)?,
        linked_card_id: row.try_get(3)?,
        password_hash: row.try_get(4)?,
        password_failures: row.try_get(5)?,
        locked_until: row.try_get(6)?,
        created_at: row.try_get(7)?,
    }
    .parse()
}

fn order_from_row(row: &Row) -> Result<OrderRecord, StoreError> {
    OrderRow {
        id: row.try_get(0)?,
        merchant_id: row.try_get(1)?,
        terminal_id: row.try_get(2)?,
        amount_minor: row.try_get(3)?,
        currency: row.try_get(4)?,
        status: row.try_get(5)?,
        wallet_id: row.try_get(6)?,
        created_at: row.try_get(7)?,
        expires_at: row.try_get(8)?,
        updated_at: row.try_get(9)?,
    }
    .parse()
}

impl PostgresStore {
    pub(crate) async fn put_wallet(&self, wallet: WalletRecord) -> Result<bool, StoreError> {
        let client = self.other.lock().await?;
        let inserted = client
            .execute(
                &format!("INSERT INTO wallets ({WALLET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING"),
                &[
                    &wallet.id,
                    &wallet.cardholder_id,
                    &wallet.currency.alpha(),
                    &wallet.linked_card_id,
                    &wallet.password_hash,
                    &i64::from(wallet.password_failures),
                    &wallet.locked_until,
                    &wallet.created_at,
                ],
            )
            .await?;
        Ok(inserted == 1)
    }

    pub(crate) async fn wallet(&self, id: &str) -> Result<Option<WalletRecord>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query_opt(
                &format!("SELECT {WALLET_COLUMNS} FROM wallets WHERE id = $1"),
                &[&id],
            )
            .await?
            .as_ref()
            .map(wallet_from_row)
            .transpose()
    }

    pub(crate) async fn wallets_of(
        &self,
        cardholder_id: &str,
    ) -> Result<Vec<WalletRecord>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query(
                &format!("SELECT {WALLET_COLUMNS} FROM wallets WHERE cardholder_id = $1 ORDER BY created_at, id"),
                &[&cardholder_id],
            )
            .await?
            .iter()
            .map(wallet_from_row)
            .collect()
    }

    pub(crate) async fn wallet_password_failed(
        &self,
        id: &str,
        limit: u32,
        lock_until: i64,
    ) -> Result<Option<PasswordFailure>, StoreError> {
        let client = self.other.lock().await?;
        let row = client
            .query_opt(
                "UPDATE wallets SET password_failures = password_failures + 1, locked_until = CASE WHEN password_failures + 1 >= $2::BIGINT THEN $3::BIGINT ELSE NULL END WHERE id = $1 RETURNING password_failures, locked_until",
                &[&id, &i64::from(limit), &lock_until],
            )
            .await?;
        row.map(|row| {
            let failures: i64 = row.try_get(0)?;
            Ok(PasswordFailure {
                failures: u32::try_from(failures).unwrap_or(u32::MAX),
                locked_until: row.try_get(1)?,
            })
        })
        .transpose()
    }

    pub(crate) async fn wallet_password_passed(&self, id: &str) -> Result<(), StoreError> {
        let client = self.other.lock().await?;
        client
            .execute(
                "UPDATE wallets SET password_failures = 0, locked_until = NULL WHERE id = $1 AND (password_failures <> 0 OR locked_until IS NOT NULL)",
                &[&id],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn create_order(&self, order: OrderRecord) -> Result<OrderRecord, StoreError> {
        let client = self.other.lock().await?;
        client
            .execute(
                &format!("INSERT INTO wallet_orders ({ORDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING"),
                &[
                    &order.id,
                    &order.merchant_id,
                    &order.terminal_id,
                    &order.amount.minor(),
                    &order.amount.currency().alpha(),
                    &order.status.as_str(),
                    &order.wallet_id,
                    &order.created_at,
                    &order.expires_at,
                    &order.updated_at,
                ],
            )
            .await?;
        let row = client
            .query_one(
                &format!("SELECT {ORDER_COLUMNS} FROM wallet_orders WHERE id = $1"),
                &[&order.id],
            )
            .await?;
        order_from_row(&row)
    }

    pub(crate) async fn order(&self, id: &str) -> Result<Option<OrderRecord>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query_opt(
                &format!("SELECT {ORDER_COLUMNS} FROM wallet_orders WHERE id = $1"),
                &[&id],
            )
            .await?
            .as_ref()
            .map(order_from_row)
            .transpose()
    }

    pub(crate) async fn transition_order(
        &self,
        transition: OrderTransition,
    ) -> Result<bool, StoreError> {
        let client = self.other.lock().await?;
        let changed = client
            .execute(
                "UPDATE wallet_orders SET status = $3, wallet_id = COALESCE($4, wallet_id), updated_at = $5 WHERE id = $1 AND status = $2",
                &[
                    &transition.order_id,
                    &transition.from.as_str(),
                    &transition.to.as_str(),
                    &transition.wallet_id,
                    &transition.at,
                ],
            )
            .await?;
        Ok(changed == 1)
    }

    pub(crate) async fn orders_of_wallet(
        &self,
        wallet_id: &str,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query(
                &format!("SELECT {ORDER_COLUMNS} FROM wallet_orders WHERE wallet_id = $1 ORDER BY updated_at DESC, id DESC LIMIT $2"),
                &[&wallet_id, &i64::from(limit)],
            )
            .await?
            .iter()
            .map(order_from_row)
            .collect()
    }

    pub(crate) async fn orders_between(
        &self,
        from: i64,
        to: i64,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query(
                &format!("SELECT {ORDER_COLUMNS} FROM wallet_orders WHERE (created_at BETWEEN $1 AND $2) OR (updated_at BETWEEN $1 AND $2) ORDER BY created_at, id LIMIT $3"),
                &[&from, &to, &i64::from(limit)],
            )
            .await?
            .iter()
            .map(order_from_row)
            .collect()
    }

    pub(crate) async fn orders_of_merchant(
        &self,
        merchant_id: &str,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query(
                &format!("SELECT {ORDER_COLUMNS} FROM wallet_orders WHERE merchant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"),
                &[&merchant_id, &i64::from(limit)],
            )
            .await?
            .iter()
            .map(order_from_row)
            .collect()
    }

    pub(crate) async fn put_payment_code(&self, code: PaymentCodeRecord) -> Result<(), StoreError> {
        let client = self.other.lock().await?;
        client
            .execute(
                "INSERT INTO wallet_payment_codes (code_digest, wallet_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
                &[&code.code_digest, &code.wallet_id, &code.issued_at, &code.expires_at],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn use_payment_code(
        &self,
        code_digest: &str,
        charge_id: &str,
        now: i64,
    ) -> Result<CodeUse, StoreError> {
        let client = self.other.lock().await?;
        // One statement: hosts sharing the database never both use a code.
        if let Some(row) = client
            .query_opt(
                "UPDATE wallet_payment_codes SET used_by = $2 WHERE code_digest = $1 AND used_by IS NULL AND expires_at > $3 RETURNING wallet_id",
                &[&code_digest, &charge_id, &now],
            )
            .await?
        {
            return Ok(CodeUse::Charges {
                wallet_id: row.try_get(0)?,
            });
        }
        let found = client
            .query_opt(
                "SELECT wallet_id, used_by, expires_at FROM wallet_payment_codes WHERE code_digest = $1",
                &[&code_digest],
            )
            .await?
            .map(|row| -> Result<_, StoreError> {
                Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
            })
            .transpose()?;
        Ok(crate::wallets::code_use(found, charge_id, now))
    }

    pub(crate) async fn delete_payment_codes_before(&self, before: i64) -> Result<u64, StoreError> {
        let client = self.other.lock().await?;
        Ok(client
            .execute(
                "DELETE FROM wallet_payment_codes WHERE expires_at < $1",
                &[&before],
            )
            .await?)
    }

    pub(crate) async fn orders_due_to_close(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query(
                &format!("SELECT {ORDER_COLUMNS} FROM wallet_orders WHERE status = 'created' AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2"),
                &[&now, &i64::from(limit)],
            )
            .await?
            .iter()
            .map(order_from_row)
            .collect()
    }
}
