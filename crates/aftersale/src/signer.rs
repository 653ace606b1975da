//! The acquirer's receipt signing keys: generated and used inside the HSM, kept in the store,
//! their public keys in memory for verification.

use crate::receipt::{self, Malformed, Parsed, Statement};
use hsm::{Hsm, KeySpec, KeyToken};
use sha2::Digest;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use store::Store;
use store::receipt_keys::ReceiptKey;

/// Why keys could not be made, stored or used.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error("HSM: {0}")]
    Hsm(#[from] hsm::HsmError),
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    #[error("the statement cannot be signed: {0}")]
    Statement(#[from] Malformed),
    #[error("a stored receipt key is damaged: {0}")]
    Damaged(&'static str),
    #[error("the batch of receipts could not be signed: {0}")]
    Batch(String),
}

/// Why a payload is not a genuine receipt. The text says what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("not a receipt payload: {0}")]
    Malformed(Malformed),
    #[error(
        "signed with key {0}, which is not one of the acquirer's receipt keys: the receipt is forged"
    )]
    UnknownKey(String),
    #[error(
        "the signature does not match the receipt's contents: the receipt was altered or forged"
    )]
    BadSignature,
}

/// A genuine receipt: what the acquirer signed, and with which key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub statement: Statement,
    /// When the signing key was retired (Unix seconds), if it has been: the receipt is still
    /// genuine, signed before the rotation.
    pub key_retired_at: Option<i64>,
}

/// A key's public half as published (`GET /api/v1/receipts/keys`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PublicKey {
    pub key_id: String,
    /// Ed25519 public key, 64 hex digits.
    pub public_key: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

#[derive(Default)]
struct Keys {
    /// The key that signs now: its id and token.
    signing: Option<(String, KeyToken)>,
    public: BTreeMap<String, (ed25519_dalek::VerifyingKey, PublicKey)>,
}

/// The receipt keys of this acquirer, shared by the host (which signs) and the API and console
/// (which verify and rotate).
pub struct ReceiptKeys {
    store: Arc<Store>,
    hsm: Arc<dyn Hsm>,
    keys: RwLock<Keys>,
}

impl std::fmt::Debug for ReceiptKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiptKeys").finish_non_exhaustive()
    }
}

/// The key id of a public key: the first 4 bytes of its SHA-256, in hex.
pub fn key_id(public_key: &[u8; 32]) -> String {
    hex::encode(&sha2::Sha256::digest(public_key)[..4])
}

impl ReceiptKeys {
    /// Loads the stored keys; on a first start (none stored) makes the first one at `now`.
    pub async fn load(
        store: Arc<Store>,
        hsm: Arc<dyn Hsm>,
        now: i64,
    ) -> Result<ReceiptKeys, ReceiptError> {
        let keys = ReceiptKeys {
            store,
            hsm,
            keys: RwLock::default(),
        };
        keys.reload().await?;
        let has_signing_key = keys.read().signing.is_some();
        if !has_signing_key {
            keys.rotate(now).await?;
        }
        Ok(keys)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads the keys again from the store (another process may have rotated them).
    pub async fn reload(&self) -> Result<(), ReceiptError> {
        let mut keys = Keys::default();
        for stored in self.store.receipt_keys().await? {
            let bytes: [u8; 32] = hex::decode(&stored.public_key)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or(ReceiptError::Damaged("public key is not 32 bytes of hex"))?;
            let verifying = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|_| ReceiptError::Damaged("public key is not an Ed25519 point"))?;
            if key_id(&bytes) != stored.key_id {
                return Err(ReceiptError::Damaged(
                    "key id does not match the public key",
                ));
            }
            if stored.retired_at.is_none() {
                keys.signing = Some((stored.key_id.clone(), KeyToken::new(stored.token)));
            }
            keys.public.insert(
                stored.key_id.clone(),
                (
                    verifying,
                    PublicKey {
                        key_id: stored.key_id,
                        public_key: stored.public_key,
                        created_at: stored.created_at,
                        retired_at: stored.retired_at,
                    },
                ),
            );
        }
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
        Ok(())
    }

    /// Makes a new signing key inside the HSM and retires the current one (which keeps
    /// verifying what it signed). Returns the new key's public half.
    pub async fn rotate(&self, now: i64) -> Result<PublicKey, ReceiptError> {
        let token = self.hsm.generate_key(&KeySpec::receipt_signing())?;
        let public = self.hsm.ed25519_public_key(&token)?;
        let id = key_id(&public);
        self.store
            .rotate_receipt_key(ReceiptKey {
                key_id: id.clone(),
                token: token.as_str().to_owned(),
                public_key: hex::encode(public),
                created_at: now,
                retired_at: None,
            })
            .await?;
        self.reload().await?;
        tracing::info!(key_id = %id, "receipt signing key rotated");
        self.public_keys()
            .into_iter()
            .find(|key| key.key_id == id)
            .ok_or(ReceiptError::Damaged("the new key was not stored"))
    }

    /// Every key's public half, oldest first.
    pub fn public_keys(&self) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = self
            .read()
            .public
            .values()
            .map(|(_, public)| public.clone())
            .collect();
        keys.sort_by(|a, b| (a.created_at, &a.key_id).cmp(&(b.created_at, &b.key_id)));
        keys
    }

    /// Signs `statement` with the current key (its `key_id` is set here) and returns the QR
    /// payload.
    pub fn sign(&self, mut statement: Statement) -> Result<String, ReceiptError> {
        let (id, token) = self
            .read()
            .signing
            .clone()
            .ok_or(ReceiptError::Damaged("no signing key"))?;
        statement.key_id = id;
        statement.check()?;
        let signature = self
            .hsm
            .ed25519_sign(&token, statement.signed_text().as_bytes())?;
        Ok(statement.payload(&signature))
    }

    /// Signs up to [`receipt::MAX_BATCH`] statements with one signature (the current key's id
    /// is set in each): a batch of one as version 1 ([`ReceiptKeys::sign`]), more as version 2,
    /// each payload with its proof to the signed root. A statement that cannot be signed gets
    /// its own error and is left out of the tree; the others are signed.
    pub fn sign_batch(&self, statements: Vec<Statement>) -> Vec<Result<String, ReceiptError>> {
        if statements.len() <= 1 || statements.len() > receipt::MAX_BATCH {
            return statements
                .into_iter()
                .map(|statement| self.sign(statement))
                .collect();
        }
        let Some((id, token)) = self.read().signing.clone() else {
            return statements
                .iter()
                .map(|_| Err(ReceiptError::Damaged("no signing key")))
                .collect();
        };
        let mut results: Vec<Result<String, ReceiptError>> = Vec::with_capacity(statements.len());
        let mut signable = Vec::with_capacity(statements.len());
        for (index, mut statement) in statements.into_iter().enumerate() {
            statement.key_id.clone_from(&id);
            match statement.check() {
                Ok(()) => {
                    signable.push((index, statement));
                    results.push(Ok(String::new()));
                }
                Err(error) => results.push(Err(error.into())),
            }
        }
        let texts: Vec<String> = signable
            .iter()
            .map(|(_, statement)| statement.batch_text())
            .collect();
        let (root, proofs) = receipt::batch_tree(&texts);
        match self.hsm.ed25519_sign(&token, &receipt::root_message(&root)) {
            Ok(signature) => {
                for ((index, statement), proof) in signable.iter().zip(&proofs) {
                    results[*index] = Ok(statement.batch_payload(proof, &signature));
                }
            }
            Err(error) => {
                let error = error.to_string();
                for (index, _) in &signable {
                    results[*index] = Err(ReceiptError::Batch(error.clone()));
                }
            }
        }
        results
    }

    /// Signs a document that is not a receipt (a transaction certificate) with the current key:
    /// the key id and the Ed25519 signature of `domain`, a line feed and `text`, so that no
    /// document's signature can pass for a receipt's (a receipt's text starts `EPR1|`, a
    /// batch's root message `EPR2 root`).
    pub fn sign_document(
        &self,
        domain: &str,
        text: &str,
    ) -> Result<(String, [u8; 64]), ReceiptError> {
        let (id, token) = self
            .read()
            .signing
            .clone()
            .ok_or(ReceiptError::Damaged("no signing key"))?;
        let signed = format!("{domain}\n{text}");
        let signature = self.hsm.ed25519_sign(&token, signed.as_bytes())?;
        Ok((id, signature))
    }

    /// Whether `signature` is this acquirer's (key `key_id`, retired or not) over `domain`, a
    /// line feed and `text` ([`ReceiptKeys::sign_document`]).
    pub fn verify_document(
        &self,
        domain: &str,
        text: &str,
        key_id: &str,
        signature: &[u8; 64],
    ) -> bool {
        let keys = self.read();
        let Some((verifying, _)) = keys.public.get(key_id) else {
            return false;
        };
        let signed = format!("{domain}\n{text}");
        verifying
            .verify_strict(
                signed.as_bytes(),
                &ed25519_dalek::Signature::from_bytes(signature),
            )
            .is_ok()
    }

    /// Whether `payload` is a receipt this acquirer signed, with any of its keys. A key id
    /// not known here is looked for once more in the store (another process may have rotated).
    pub async fn verify(&self, payload: &str) -> Result<Verified, Rejection> {
        let parsed = receipt::parse(payload).map_err(Rejection::Malformed)?;
        let known = self.read().public.contains_key(&parsed.statement.key_id);
        if !known && let Err(error) = self.reload().await {
            tracing::warn!(%error, "receipt keys could not be reloaded");
        }
        self.check(&parsed)
    }

    fn check(&self, parsed: &Parsed) -> Result<Verified, Rejection> {
        let keys = self.read();
        let (verifying, public) = keys
            .public
            .get(&parsed.statement.key_id)
            .ok_or_else(|| Rejection::UnknownKey(parsed.statement.key_id.clone()))?;
        let signature = ed25519_dalek::Signature::from_bytes(&parsed.signature);
        verifying
            .verify_strict(&parsed.signed_message(), &signature)
            .map_err(|_| Rejection::BadSignature)?;
        Ok(Verified {
            statement: parsed.statement.clone(),
            key_retired_at: public.retired_at,
        })
    }
}
