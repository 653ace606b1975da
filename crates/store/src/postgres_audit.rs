//! PostgreSQL side of [`crate::audit`].

use super::PostgresStore;
use crate::StoreError;
use crate::audit::{AUDIT_COLUMNS, AuditEntry, AuditQuery, NewAuditEntry};
use crate::audit_anchors::{ANCHOR_COLUMNS, ANCHOR_KEY_COLUMNS, AuditAnchor, AuditAnchorKey};
use crate::risk_rules::{RULE_VERSION_COLUMNS, RuleVersion};
use tokio_postgres::Row;

/// Key of the transaction-scoped advisory lock that serialises appends across processes
/// ("auditlog" in ASCII), so hosts sharing a database extend one chain.
const AUDIT_APPEND_LOCK: i64 = 0x6175_6469_746c_6f67;

fn entry(row: &Row) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        seq: row.try_get(0)?,
        at: row.try_get(1)?,
        actor: row.try_get(2)?,
        action: row.try_get(3)?,
        target: row.try_get(4)?,
        detail: row.try_get(5)?,
        tenant: row.try_get(6)?,
        prev_hash: row.try_get(7)?,
        hash: row.try_get(8)?,
    })
}

impl PostgresStore {
    pub(crate) async fn append_audit(&self, new: NewAuditEntry) -> Result<AuditEntry, StoreError> {
        let mut client = self.other.lock().await?;
        let transaction = client.transaction().await?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_APPEND_LOCK])
            .await?;
        let last = transaction
            .query_opt(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                &[],
            )
            .await?
            .map(|row| -> Result<(i64, String), StoreError> {
                Ok((row.try_get(0)?, row.try_get(1)?))
            })
            .transpose()?;
        let appended =
            AuditEntry::next(last.as_ref().map(|(seq, hash)| (*seq, hash.as_str())), new);
        transaction
            .execute(
                &format!(
                    "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ),
                &[
                    &appended.seq,
                    &appended.at,
                    &appended.actor,
                    &appended.action,
                    &appended.target,
                    &appended.detail,
                    &appended.tenant,
                    &appended.prev_hash,
                    &appended.hash,
                ],
            )
            .await?;
        transaction.commit().await?;
        Ok(appended)
    }

    pub(crate) async fn audit_entries(
        &self,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        // A listing for people: it may read the replica (docs/scaling.md).
        let client = self.lagging_reader().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 AND ($2::text IS NULL OR actor = $2) AND ($3::text IS NULL OR action LIKE $3 ESCAPE '\\') AND ($4::text IS NULL OR target = $4) AND ($5::text[] IS NULL OR tenant = ANY($5)) AND ($7::bigint IS NULL OR at >= $7) AND ($8::bigint IS NULL OR at < $8) ORDER BY seq LIMIT $6"
                ),
                &[
                    &query.after_seq,
                    &query.actor,
                    &query.action_pattern(),
                    &query.target,
                    &query.tenants,
                    &query.bounded_limit(),
                    &query.from,
                    &query.before,
                ],
            )
            .await?;
        rows.iter().map(entry).collect()
    }
}

fn anchor(row: &Row) -> Result<AuditAnchor, StoreError> {
    Ok(AuditAnchor {
        seq: row.try_get(0)?,
        hash: row.try_get(1)?,
        at: row.try_get(2)?,
        key_id: row.try_get(3)?,
        signature: row.try_get(4)?,
    })
}

impl PostgresStore {
    pub(crate) async fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query_opt(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                &[],
            )
            .await?
            .map(|row| -> Result<(i64, String), StoreError> {
                Ok((row.try_get(0)?, row.try_get(1)?))
            })
            .transpose()
    }

    pub(crate) async fn audit_anchors(&self) -> Result<Vec<AuditAnchor>, StoreError> {
        let client = self.other.lock().await?;
        let rows = client
            .query(
                &format!("SELECT {ANCHOR_COLUMNS} FROM audit_anchors ORDER BY seq"),
                &[],
            )
            .await?;
        rows.iter().map(anchor).collect()
    }

    pub(crate) async fn last_audit_anchor(&self) -> Result<Option<AuditAnchor>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query_opt(
                &format!("SELECT {ANCHOR_COLUMNS} FROM audit_anchors ORDER BY seq DESC LIMIT 1"),
                &[],
            )
            .await?
            .as_ref()
            .map(anchor)
            .transpose()
    }

    pub(crate) async fn append_audit_anchor(
        &self,
        anchor: &AuditAnchor,
    ) -> Result<bool, StoreError> {
        let client = self.other.lock().await?;
        let added = client
            .execute(
                &format!(
                    "INSERT INTO audit_anchors ({ANCHOR_COLUMNS}) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO NOTHING"
                ),
                &[
                    &anchor.seq,
                    &anchor.hash,
                    &anchor.at,
                    &anchor.key_id,
                    &anchor.signature,
                ],
            )
            .await?;
        Ok(added == 1)
    }

    pub(crate) async fn audit_anchor_keys(&self) -> Result<Vec<AuditAnchorKey>, StoreError> {
        let client = self.other.lock().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {ANCHOR_KEY_COLUMNS} FROM audit_anchor_keys ORDER BY created_at, key_id"
                ),
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditAnchorKey {
                    key_id: row.try_get(0)?,
                    token: row.try_get(1)?,
                    public_key: row.try_get(2)?,
                    created_at: row.try_get(3)?,
                })
            })
            .collect()
    }

    pub(crate) async fn add_audit_anchor_key(
        &self,
        key: &AuditAnchorKey,
    ) -> Result<bool, StoreError> {
        let client = self.other.lock().await?;
        let added = client
            .execute(
                &format!(
                    "INSERT INTO audit_anchor_keys ({ANCHOR_KEY_COLUMNS}) VALUES ($1, $2, $3, $4) ON CONFLICT (key_id) DO NOTHING"
                ),
                &[&key.key_id, &key.token, &key.public_key, &key.created_at],
            )
            .await?;
        Ok(added == 1)
    }
}

fn rule_version(row: &Row) -> Result<RuleVersion, StoreError> {
    Ok(RuleVersion {
        version: row.try_get(0)?,
        toml: row.try_get(1)?,
        saved_by: row.try_get(2)?,
        saved_at: row.try_get(3)?,
        note: row.try_get(4)?,
    })
}

// The risk rules' versions (crate::risk_rules) live here too: like the audit log, an
// append-only history that back-office edits extend.
impl PostgresStore {
    pub(crate) async fn risk_rule_versions(
        &self,
        limit: i64,
    ) -> Result<Vec<RuleVersion>, StoreError> {
        let client = self.other.lock().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {RULE_VERSION_COLUMNS} FROM risk_rule_versions ORDER BY version DESC LIMIT $1"
                ),
                &[&limit],
            )
            .await?;
        rows.iter().map(rule_version).collect()
    }

    pub(crate) async fn risk_rule_version(
        &self,
        version: i64,
    ) -> Result<Option<RuleVersion>, StoreError> {
        let client = self.other.lock().await?;
        client
            .query_opt(
                &format!(
                    "SELECT {RULE_VERSION_COLUMNS} FROM risk_rule_versions WHERE version = $1"
                ),
                &[&version],
            )
            .await?
            .as_ref()
            .map(rule_version)
            .transpose()
    }

    /// Inserts only while `based_on` is the newest; the primary key settles two hosts saving
    /// at once (the loser's insert conflicts and reports `false`).
    pub(crate) async fn save_risk_rules(
        &self,
        based_on: i64,
        saved: &RuleVersion,
    ) -> Result<bool, StoreError> {
        let client = self.other.lock().await?;
        let added = client
            .execute(
                &format!(
                    "INSERT INTO risk_rule_versions ({RULE_VERSION_COLUMNS}) SELECT $1, $2, $3, $4, $5 WHERE (SELECT COALESCE(MAX(version), 0) FROM risk_rule_versions) = $6 ON CONFLICT (version) DO NOTHING"
                ),
                &[
                    &saved.version,
                    &saved.toml,
                    &saved.saved_by,
                    &saved.saved_at,
                    &saved.note,
                    &based_on,
                ],
            )
            .await?;
        Ok(added == 1)
    }
}
