//! Signed anchors of the audit log (issue 10): the chain head (`seq`, `hash`) signed with a
//! platform Ed25519 key that lives in the HSM, stored beside the log.
//!
//! The chain alone shows a changed, inserted or deleted entry, but not a tail cut off the end:
//! the shorter chain is still intact. An anchor says "the log reached entry N with hash H",
//! signed, so [`Store::verify_audit`] reports entries missing after the last intact entry up to
//! every anchor, and a forged anchor (bad signature, or a key that is not the platform's) too.
//! Signing needs the HSM and happens outside the store (`api::audit_anchors`); verifying needs
//! only the public keys stored here.
//!
//! ```
//! use store::audit_anchors::anchor_signed_text;
//! let text = anchor_signed_text(42, &"ab".repeat(32), 1_764_000_000, "0a1b2c3d");
//! assert!(text.starts_with(b"easypos-audit-anchor-v1\n42\n"));
//! ```

use crate::audit::{AuditEntry, ChainBreak};
use crate::{Store, StoreError};
use std::collections::BTreeMap;

/// Domain separation of the signed text, and its version.
const ANCHOR_DOMAIN: &str = "easypos-audit-anchor-v1";

/// The bytes an anchor's signature covers: `easypos-audit-anchor-v1`, then the sequence
/// number, the entry's hash, the signing time and the key id, each on its own line (`\n`).
pub fn anchor_signed_text(seq: i64, hash: &str, at: i64, key_id: &str) -> Vec<u8> {
    format!("{ANCHOR_DOMAIN}\n{seq}\n{hash}\n{at}\n{key_id}").into_bytes()
}

/// One signed anchor.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditAnchor {
    /// The entry whose hash is signed: the chain's head when the anchor was made.
    pub seq: i64,
    /// That entry's hash, hex.
    pub hash: String,
    /// When it was signed (Unix seconds).
    pub at: i64,
    /// The signing key's id (8 hex digits: the first 4 bytes of SHA-256 of its public key).
    pub key_id: String,
    /// Ed25519 signature of [`anchor_signed_text`], 128 hex digits.
    pub signature: String,
}

impl AuditAnchor {
    pub fn signed_text(&self) -> Vec<u8> {
        anchor_signed_text(self.seq, &self.hash, self.at, &self.key_id)
    }
}

/// A key that signs anchors.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditAnchorKey {
    pub key_id: String,
    /// The private key as a TR-31 block under the HSM's master key (S0, never exportable).
    pub token: String,
    /// The Ed25519 public key, 64 hex digits.
    pub public_key: String,
    pub created_at: i64,
}

impl std::fmt::Debug for AuditAnchorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditAnchorKey")
            .field("key_id", &self.key_id)
            .field("public_key", &self.public_key)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

pub(crate) const ANCHOR_COLUMNS: &str = "seq, hash, at, key_id, signature";
pub(crate) const ANCHOR_KEY_COLUMNS: &str = "key_id, token, public_key, created_at";

/// Checks the anchors against the chain while [`Store::verify_audit`] walks it.
#[derive(Debug, Default)]
pub struct AnchorCheck {
    /// Anchors whose signature verified, by the entry they sign.
    pending: BTreeMap<i64, AuditAnchor>,
    /// Problems found so far (a forged anchor, a rewritten entry).
    problems: Vec<ChainBreak>,
    /// Anchors the walked chain reached with their hash.
    pub reached: i64,
    /// The highest entry an anchor vouches for, among those reached.
    pub anchored_seq: i64,
}

impl AnchorCheck {
    /// Verifies every anchor's signature with `keys` (the stored public keys); the ones that
    /// verify are then matched against the chain by [`AnchorCheck::entry`].
    pub fn new(anchors: Vec<AuditAnchor>, keys: &[AuditAnchorKey]) -> AnchorCheck {
        let verifying: BTreeMap<&str, Option<ed25519_dalek::VerifyingKey>> = keys
            .iter()
            .map(|key| (key.key_id.as_str(), verifying_key(&key.public_key)))
            .collect();
        let mut check = AnchorCheck::default();
        for anchor in anchors {
            let problem = match verifying.get(anchor.key_id.as_str()) {
                None => Some(format!(
                    "the anchor of entry {} is signed with key {}, which is not one of the platform's anchor keys: the anchor is forged",
                    anchor.seq, anchor.key_id
                )),
                Some(None) => Some(format!(
                    "anchor key {} is damaged (its public key is not an Ed25519 key)",
                    anchor.key_id
                )),
                Some(Some(key)) if !signature_holds(key, &anchor) => Some(format!(
                    "the anchor of entry {} does not carry a valid signature: the anchor was forged or altered",
                    anchor.seq
                )),
                Some(Some(_)) => None,
            };
            match problem {
                Some(problem) => check.problems.push(ChainBreak {
                    seq: anchor.seq,
                    problem,
                }),
                None => {
                    check.pending.insert(anchor.seq, anchor);
                }
            }
        }
        check
    }

    /// An intact entry of the chain: the anchor of its `seq`, if any, must carry its hash.
    pub fn entry(&mut self, entry: &AuditEntry) {
        let Some(anchor) = self.pending.remove(&entry.seq) else {
            return;
        };
        if anchor.hash == entry.hash {
            self.reached += 1;
            self.anchored_seq = self.anchored_seq.max(entry.seq);
        } else {
            self.problems.push(ChainBreak {
                seq: entry.seq,
                problem: format!(
                    "entry {} does not have the hash its anchor signed at {}: the log was rewritten up to here",
                    entry.seq, anchor.at
                ),
            });
        }
    }

    /// After the walk: an anchor beyond the intact head means entries were cut (when the
    /// chain itself was intact) or lost with a break. Returns the first problem by `seq`.
    pub fn finish(mut self, head_seq: i64, chain_intact: bool) -> Option<ChainBreak> {
        if chain_intact && let Some((&seq, anchor)) = self.pending.last_key_value() {
            self.problems.push(ChainBreak {
                seq: head_seq + 1,
                problem: format!(
                    "entries {} to {seq} are missing: an anchor signed at {} vouches for entry {seq}; the log was cut after entry {head_seq}",
                    head_seq + 1,
                    anchor.at
                ),
            });
        }
        self.problems.into_iter().min_by_key(|found| found.seq)
    }
}

pub(crate) fn verifying_key(public_key: &str) -> Option<ed25519_dalek::VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(public_key).ok()?.try_into().ok()?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok()
}

fn signature_holds(key: &ed25519_dalek::VerifyingKey, anchor: &AuditAnchor) -> bool {
    let Some(bytes) = hex::decode(&anchor.signature)
        .ok()
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
    else {
        return false;
    };
    let signature = ed25519_dalek::Signature::from_bytes(&bytes);
    key.verify_strict(&anchor.signed_text(), &signature).is_ok()
}

impl Store {
    /// The last entry's sequence number and hash (`None`: the log is empty).
    pub async fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .read(|connection| {
                        Ok(connection
                            .prepare_cached(
                                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                            )?
                            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                            .next()
                            .transpose()?)
                    })
                    .await
            }
            Store::Postgres(store) => store.audit_head().await,
        }
    }

    /// Every anchor, by the entry it signs.
    pub async fn audit_anchors(&self) -> Result<Vec<AuditAnchor>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .read(|connection| {
                        let mut statement = connection.prepare_cached(&format!(
                            "SELECT {ANCHOR_COLUMNS} FROM audit_anchors ORDER BY seq"
                        ))?;
                        let rows = statement.query_map([], |row| {
                            Ok(AuditAnchor {
                                seq: row.get(0)?,
                                hash: row.get(1)?,
                                at: row.get(2)?,
                                key_id: row.get(3)?,
                                signature: row.get(4)?,
                            })
                        })?;
                        Ok(rows.collect::<Result<Vec<_>, _>>()?)
                    })
                    .await
            }
            Store::Postgres(store) => store.audit_anchors().await,
        }
    }

    /// The anchor of the highest entry (`None`: none yet): one row, for the periodic check.
    pub async fn last_audit_anchor(&self) -> Result<Option<AuditAnchor>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .read(|connection| {
                        let mut statement = connection.prepare_cached(&format!(
                            "SELECT {ANCHOR_COLUMNS} FROM audit_anchors ORDER BY seq DESC LIMIT 1"
                        ))?;
                        Ok(statement
                            .query_map([], |row| {
                                Ok(AuditAnchor {
                                    seq: row.get(0)?,
                                    hash: row.get(1)?,
                                    at: row.get(2)?,
                                    key_id: row.get(3)?,
                                    signature: row.get(4)?,
                                })
                            })?
                            .next()
                            .transpose()?)
                    })
                    .await
            }
            Store::Postgres(store) => store.last_audit_anchor().await,
        }
    }

    /// Stores an anchor; `false` when that entry is anchored already (the first stays).
    pub async fn append_audit_anchor(&self, anchor: AuditAnchor) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        let added = connection
                            .prepare_cached(&format!(
                                "INSERT INTO audit_anchors ({ANCHOR_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (seq) DO NOTHING"
                            ))?
                            .execute(rusqlite::params![
                                anchor.seq,
                                anchor.hash,
                                anchor.at,
                                anchor.key_id,
                                anchor.signature
                            ])?;
                        Ok(added == 1)
                    })
                    .await
            }
            Store::Postgres(store) => store.append_audit_anchor(&anchor).await,
        }
    }

    /// Every anchor key, oldest first (the newest signs).
    pub async fn audit_anchor_keys(&self) -> Result<Vec<AuditAnchorKey>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .read(|connection| {
                        let mut statement = connection.prepare_cached(&format!(
                            "SELECT {ANCHOR_KEY_COLUMNS} FROM audit_anchor_keys ORDER BY created_at, key_id"
                        ))?;
                        let rows = statement.query_map([], |row| {
                            Ok(AuditAnchorKey {
                                key_id: row.get(0)?,
                                token: row.get(1)?,
                                public_key: row.get(2)?,
                                created_at: row.get(3)?,
                            })
                        })?;
                        Ok(rows.collect::<Result<Vec<_>, _>>()?)
                    })
                    .await
            }
            Store::Postgres(store) => store.audit_anchor_keys().await,
        }
    }

    /// Stores a new anchor key; `false` when its id is stored already.
    pub async fn add_audit_anchor_key(&self, key: AuditAnchorKey) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        let added = connection
                            .prepare_cached(&format!(
                                "INSERT INTO audit_anchor_keys ({ANCHOR_KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key_id) DO NOTHING"
                            ))?
                            .execute(rusqlite::params![
                                key.key_id,
                                key.token,
                                key.public_key,
                                key.created_at
                            ])?;
                        Ok(added == 1)
                    })
                    .await
            }
            Store::Postgres(store) => store.add_audit_anchor_key(&key).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{ChainWalker, NewAuditEntry};
    use ed25519_dalek::Signer as _;

    fn chain(actor: &str, n: i64) -> Vec<AuditEntry> {
        let mut entries: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let previous = entries.last().map(|e| (e.seq, e.hash.as_str()));
            entries.push(AuditEntry::next(
                previous,
                NewAuditEntry::new(actor, "case.resolve", format!("case:{i}"), "", 100 + i),
            ));
        }
        entries
    }

    fn verify(
        entries: &[AuditEntry],
        anchors: Vec<AuditAnchor>,
        key: &AuditAnchorKey,
    ) -> crate::audit::AuditVerification {
        let mut check = AnchorCheck::new(anchors, std::slice::from_ref(key));
        let mut walker = ChainWalker::default();
        for entry in entries {
            if let Err(found) = walker.check(entry) {
                return walker.finish_anchored(Some(found), check);
            }
            check.entry(entry);
        }
        walker.finish_anchored(None, check)
    }

    #[test]
    fn a_chain_rewritten_consistently_under_an_anchor_is_caught_at_the_anchor() {
        let signer = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        let key = AuditAnchorKey {
            key_id: "01020304".into(),
            token: String::new(),
            public_key: hex::encode(signer.verifying_key().to_bytes()),
            created_at: 0,
        };
        let genuine = chain("ops", 6);
        let mut anchor = AuditAnchor {
            seq: 4,
            hash: genuine[3].hash.clone(),
            at: 200,
            key_id: key.key_id.clone(),
            signature: String::new(),
        };
        anchor.signature = hex::encode(signer.sign(&anchor.signed_text()).to_bytes());
        let report = verify(&genuine, vec![anchor.clone()], &key);
        assert_eq!(
            (report.first_break, report.anchors, report.anchored_seq),
            (None, 1, 4)
        );

        // Every hash recomputed after a change: the chain holds, the anchor does not.
        let rewritten = chain("mallory", 6);
        let found = verify(&rewritten, vec![anchor.clone()], &key)
            .first_break
            .unwrap();
        assert_eq!(found.seq, 4);
        assert!(
            found.problem.contains("hash its anchor signed"),
            "{}",
            found.problem
        );

        // The signed text covers every field.
        let mut moved = anchor;
        moved.at += 1;
        let found = verify(&genuine, vec![moved], &key).first_break.unwrap();
        assert!(
            found.problem.contains("valid signature"),
            "{}",
            found.problem
        );
    }
}
