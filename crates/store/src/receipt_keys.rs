//! Receipt signing keys (issue 9): the acquirer's Ed25519 keys that sign receipt statements,
//! as TR-31 tokens under the HSM's master key with their public keys. The newest key without
//! `retired_at` signs; every key, retired or not, still verifies what it signed.

use crate::{Store, StoreError};

/// One receipt signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceiptKey {
    /// 8 hex digits: the first 4 bytes of SHA-256 of the public key.
    pub key_id: String,
    /// The private key as a TR-31 block under the HSM's master key (S0, never exportable).
    pub token: String,
    /// The Ed25519 public key, 64 hex digits.
    pub public_key: String,
    /// Seconds since the epoch.
    pub created_at: i64,
    /// When it stopped signing (seconds since the epoch); `None` for the key that signs now.
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for ReceiptKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiptKey")
            .field("key_id", &self.key_id)
            .field("public_key", &self.public_key)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

pub(crate) const RECEIPT_KEY_COLUMNS: &str = "key_id, token, public_key, created_at, retired_at";

impl Store {
    /// Every receipt key, oldest first.
    pub async fn receipt_keys(&self) -> Result<Vec<ReceiptKey>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .read(|connection| {
                        let mut statement = connection.prepare_cached(&format!(
                        "SELECT {RECEIPT_KEY_COLUMNS} FROM receipt_keys ORDER BY created_at, key_id"
                    ))?;
                        let rows = statement.query_map([], |row| {
                            Ok(ReceiptKey {
                                key_id: row.get(0)?,
                                token: row.get(1)?,
                                public_key: row.get(2)?,
                                created_at: row.get(3)?,
                                retired_at: row.get(4)?,
                            })
                        })?;
                        Ok(rows.collect::<Result<Vec<_>, _>>()?)
                    })
                    .await
            }
            Store::Postgres(store) => store.receipt_keys().await,
        }
    }

    /// Makes `key` the signing key: every other key still signing is retired at its
    /// `created_at`, in the same transaction. A key id already stored changes nothing (a
    /// retried rotation), and `false` says so.
    pub async fn rotate_receipt_key(&self, key: ReceiptKey) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        let added = connection
                            .prepare_cached(&format!(
                                "INSERT INTO receipt_keys ({RECEIPT_KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, NULL) ON CONFLICT (key_id) DO NOTHING"
                            ))?
                            .execute(rusqlite::params![
                                key.key_id,
                                key.token,
                                key.public_key,
                                key.created_at
                            ])?;
                        if added == 1 {
                            connection
                                .prepare_cached(
                                    "UPDATE receipt_keys SET retired_at = ?1 WHERE retired_at IS NULL AND key_id <> ?2",
                                )?
                                .execute(rusqlite::params![key.created_at, key.key_id])?;
                        }
                        Ok(added == 1)
                    })
                    .await
            }
            Store::Postgres(store) => store.rotate_receipt_key(&key).await,
        }
    }
}
