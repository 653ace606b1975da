//! The audit log (issue 10): an append-only, hash-chained record of every back-office action —
//! console and API logins, freezes, API keys, staff, rule versions, cases.
//!
//! Each entry's hash is SHA-256 over a fixed encoding of its sequence number, time, actor,
//! action, target and detail **and the previous entry's hash** ([`entry_hash`]), so changing,
//! inserting or deleting any row breaks the chain from there on; [`Store::verify_audit`] walks
//! it and names the first break. Rows are never updated or deleted (triggers refuse it), and
//! appends are serialised (the SQLite writer thread; an advisory lock on PostgreSQL, so
//! several hosts sharing a database keep one chain).
//!
//! ```no_run
//! # async fn demo(store: &store::Store) -> Result<(), store::StoreError> {
//! use store::audit::NewAuditEntry;
//! store.append_audit(NewAuditEntry::new("ops", "freeze.put", "terminal:T0000001", "lost terminal", 1_764_000_000)).await?;
//! let report = store.verify_audit().await?;
//! assert!(report.first_break.is_none());
//! # Ok(()) }
//! ```

use crate::audit_anchors::AnchorCheck;
use crate::{Store, StoreError};
use sha2::{Digest, Sha256};

/// The previous hash of the first entry: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Most entries one read returns.
pub const MAX_AUDIT_PAGE: i64 = 1_000;
/// Longest text of a field (actor, action, target, detail), in characters; longer text is cut
/// (with `…`) before hashing, so a caller can never make an append fail by its length.
pub const MAX_AUDIT_FIELD_CHARS: usize = 2_000;
/// Domain separation of the hash, and its version.
const HASH_DOMAIN: &[u8] = b"easypos-audit-v1";

/// An action to record. `actor` is a user name (or `system`), `action` a dotted verb
/// (`freeze.put`, `login.ok`), `target` what it acted on (`terminal:T0000001`), `detail` free
/// text (a reason, a rule version). None may hold card data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEntry {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    /// Whose records the action touched, as `kind:id` (`merchant:M001`, `institution:1`), so a
    /// merchant's admin sees their merchant's entries; empty for the platform's own.
    pub tenant: String,
    /// Seconds since the epoch.
    pub at: i64,
}

impl NewAuditEntry {
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
        detail: impl Into<String>,
        at: i64,
    ) -> Self {
        NewAuditEntry {
            actor: bounded(actor.into()),
            action: bounded(action.into()),
            target: bounded(target.into()),
            detail: bounded(detail.into()),
            tenant: String::new(),
            at,
        }
    }

    /// The tenant whose records the action touched (`merchant:M001`).
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = bounded(tenant.into());
        self
    }
}

fn bounded(text: String) -> String {
    if text.chars().count() <= MAX_AUDIT_FIELD_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_AUDIT_FIELD_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// One entry of the chain, as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// 1, 2, 3 … without gaps.
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub tenant: String,
    /// The hash of entry `seq - 1` ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// [`entry_hash`] of this entry, hex.
    pub hash: String,
}

impl AuditEntry {
    /// The entry that follows `previous` (`None`: the first).
    pub fn next(previous: Option<(i64, &str)>, entry: NewAuditEntry) -> AuditEntry {
        let (seq, prev_hash) = match previous {
            Some((seq, hash)) => (seq + 1, hash.to_owned()),
            None => (1, GENESIS_HASH.to_owned()),
        };
        let hash = entry_hash(
            &prev_hash,
            seq,
            entry.at,
            &entry.actor,
            &entry.action,
            &entry.target,
            &entry.detail,
            &entry.tenant,
        );
        AuditEntry {
            seq,
            at: entry.at,
            actor: entry.actor,
            action: entry.action,
            target: entry.target,
            detail: entry.detail,
            tenant: entry.tenant,
            prev_hash,
            hash,
        }
    }

    /// Whether the stored hash is the hash of the stored contents.
    pub fn hash_matches(&self) -> bool {
        entry_hash(
            &self.prev_hash,
            self.seq,
            self.at,
            &self.actor,
            &self.action,
            &self.target,
            &self.detail,
            &self.tenant,
        ) == self.hash
    }
}

/// SHA-256 of `easypos-audit-v1`, the previous hash (its 64 hex characters), the sequence
/// number and time as 8-byte big-endian integers, then actor, action, target, detail and
/// tenant, each as a 4-byte big-endian length and its UTF-8 bytes; lower-case hex.
#[allow(clippy::too_many_arguments)] // the hashed fields, named, in their hashed order
pub fn entry_hash(
    prev_hash: &str,
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
    tenant: &str,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(HASH_DOMAIN);
    hasher.update(prev_hash.as_bytes());
    hasher.update(seq.to_be_bytes());
    hasher.update(at.to_be_bytes());
    for field in [actor, action, target, detail, tenant] {
        // Fields are bounded (MAX_AUDIT_FIELD_CHARS), so the length always fits.
        let length = u32::try_from(field.len()).unwrap_or(u32::MAX);
        hasher.update(length.to_be_bytes());
        hasher.update(field.as_bytes());
    }
    crate::accounts::hex(&hasher.finalize())
}

/// Which entries a read returns, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only entries after this sequence number (0: from the start).
    pub after_seq: i64,
    /// At most this many (capped at [`MAX_AUDIT_PAGE`]).
    pub limit: i64,
    pub actor: Option<String>,
    /// Actions starting with this text (`freeze.` finds `freeze.put` and `freeze.delete`).
    pub action_prefix: Option<String>,
    pub target: Option<String>,
    /// Only entries of these tenants (`merchant:M001`); `None`: every tenant's.
    pub tenants: Option<Vec<String>>,
    /// Only entries at or after this time (Unix seconds).
    pub from: Option<i64>,
    /// Only entries before this time (Unix seconds).
    pub before: Option<i64>,
}

impl AuditQuery {
    pub fn page(after_seq: i64, limit: i64) -> Self {
        AuditQuery {
            after_seq,
            limit,
            ..AuditQuery::default()
        }
    }

    pub(crate) fn bounded_limit(&self) -> i64 {
        self.limit.clamp(1, MAX_AUDIT_PAGE)
    }

    /// `prefix%` for a LIKE, with the pattern's own characters escaped (by `\`).
    pub(crate) fn action_pattern(&self) -> Option<String> {
        self.action_prefix.as_ref().map(|prefix| {
            let escaped: String = prefix
                .chars()
                .flat_map(|c| match c {
                    '%' | '_' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            format!("{escaped}%")
        })
    }
}

/// Where the chain is broken.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChainBreak {
    /// The sequence number of the first entry that does not follow from the ones before.
    pub seq: i64,
    /// What is wrong, in words.
    pub problem: String,
}

/// What [`Store::verify_audit`] found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditVerification {
    /// Entries checked (up to the break, if any).
    pub entries: i64,
    /// The last good entry's sequence number and hash: the head a verifier can write down
    /// and compare later (a deleted tail shows as a head that went back).
    pub head_seq: i64,
    pub head_hash: String,
    /// Signed anchors whose signature verified and whose entry the intact chain reached
    /// ([`crate::audit_anchors`]).
    pub anchors: i64,
    /// The highest entry among them: the chain is vouched for up to here.
    pub anchored_seq: i64,
    /// The first problem by sequence number: a break of the chain, a forged anchor, or
    /// entries missing up to an anchor (a cut tail).
    pub first_break: Option<ChainBreak>,
}

/// Walks entries in sequence order and stops at the first break.
#[derive(Debug)]
pub struct ChainWalker {
    expected_seq: i64,
    previous_hash: String,
    checked: i64,
}

impl Default for ChainWalker {
    fn default() -> Self {
        ChainWalker {
            expected_seq: 1,
            previous_hash: GENESIS_HASH.to_owned(),
            checked: 0,
        }
    }
}

impl ChainWalker {
    /// Checks the next entry; `Err` names the break.
    pub fn check(&mut self, entry: &AuditEntry) -> Result<(), ChainBreak> {
        if entry.seq != self.expected_seq {
            let problem = if entry.seq > self.expected_seq {
                format!(
                    "entries {} to {} are missing: deleted, or the log was renumbered",
                    self.expected_seq,
                    entry.seq - 1
                )
            } else {
                format!("entry {} appears out of order", entry.seq)
            };
            return Err(ChainBreak {
                seq: self.expected_seq,
                problem,
            });
        }
        if entry.prev_hash != self.previous_hash {
            return Err(ChainBreak {
                seq: entry.seq,
                problem: format!(
                    "entry {} does not carry the hash of entry {}: an entry was inserted, deleted or replaced before it",
                    entry.seq,
                    entry.seq - 1
                ),
            });
        }
        if !entry.hash_matches() {
            return Err(ChainBreak {
                seq: entry.seq,
                problem: format!(
                    "entry {} was changed: its contents no longer give its hash",
                    entry.seq
                ),
            });
        }
        self.expected_seq += 1;
        self.previous_hash = entry.hash.clone();
        self.checked += 1;
        Ok(())
    }

    pub fn finish(self, first_break: Option<ChainBreak>) -> AuditVerification {
        AuditVerification {
            entries: self.checked,
            head_seq: self.expected_seq - 1,
            head_hash: self.previous_hash,
            anchors: 0,
            anchored_seq: 0,
            first_break,
        }
    }

    /// [`ChainWalker::finish`], with the anchors' findings: the first problem of either.
    pub fn finish_anchored(
        self,
        chain_break: Option<ChainBreak>,
        anchors: AnchorCheck,
    ) -> AuditVerification {
        let (reached, anchored_seq) = (anchors.reached, anchors.anchored_seq);
        let anchor_problem = anchors.finish(self.expected_seq - 1, chain_break.is_none());
        let first_break = match (chain_break, anchor_problem) {
            (Some(chain), Some(anchor)) if anchor.seq < chain.seq => Some(anchor),
            (Some(chain), _) => Some(chain),
            (None, anchor) => anchor,
        };
        AuditVerification {
            anchors: reached,
            anchored_seq,
            ..self.finish(first_break)
        }
    }
}

pub(crate) const AUDIT_COLUMNS: &str =
    "seq, at, actor, action, target, detail, tenant, prev_hash, hash";

impl Store {
    /// Appends an entry after the current last one and returns it as stored.
    pub async fn append_audit(&self, entry: NewAuditEntry) -> Result<AuditEntry, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .write(move |connection| {
                        // The writer thread is the only writer, so the last entry cannot change
                        // between this read and the insert.
                        let last: Option<(i64, String)> = connection
                            .prepare_cached(
                                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                            )?
                            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                            .next()
                            .transpose()?;
                        let appended = AuditEntry::next(
                            last.as_ref().map(|(seq, hash)| (*seq, hash.as_str())),
                            entry,
                        );
                        connection
                            .prepare_cached(&format!(
                                "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                            ))?
                            .execute(rusqlite::params![
                                appended.seq,
                                appended.at,
                                appended.actor,
                                appended.action,
                                appended.target,
                                appended.detail,
                                appended.tenant,
                                appended.prev_hash,
                                appended.hash
                            ])?;
                        Ok(appended)
                    })
                    .await
            }
            Store::Postgres(store) => store.append_audit(entry).await,
        }
    }

    /// Entries matching `query`, oldest first.
    pub async fn audit_entries(&self, query: AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        match self {
            Store::Sqlite(store) => {
                store
                    .read(move |connection| {
                        // A tenant list becomes ?8, ?9 …: one placeholder per tenant.
                        let tenants = query.tenants.clone().unwrap_or_default();
                        let tenant_clause = match &query.tenants {
                            None => "1".to_owned(),
                            Some(list) if list.is_empty() => "0".to_owned(),
                            Some(list) => format!(
                                "tenant IN ({})",
                                (0..list.len())
                                    .map(|i| format!("?{}", i + 8))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        };
                        let mut statement = connection.prepare_cached(&format!(
                            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ?1 AND (?2 IS NULL OR actor = ?2) AND (?3 IS NULL OR action LIKE ?3 ESCAPE '\\') AND (?4 IS NULL OR target = ?4) AND (?6 IS NULL OR at >= ?6) AND (?7 IS NULL OR at < ?7) AND {tenant_clause} ORDER BY seq LIMIT ?5"
                        ))?;
                        let mut parameters: Vec<Box<dyn rusqlite::ToSql>> = vec![
                            Box::new(query.after_seq),
                            Box::new(query.actor.clone()),
                            Box::new(query.action_pattern()),
                            Box::new(query.target.clone()),
                            Box::new(query.bounded_limit()),
                            Box::new(query.from),
                            Box::new(query.before),
                        ];
                        parameters.extend(
                            tenants
                                .into_iter()
                                .map(|tenant| Box::new(tenant) as Box<dyn rusqlite::ToSql>),
                        );
                        let rows = statement.query_map(
                            rusqlite::params_from_iter(parameters.iter()),
                            |row| {
                                Ok(AuditEntry {
                                    seq: row.get(0)?,
                                    at: row.get(1)?,
                                    actor: row.get(2)?,
                                    action: row.get(3)?,
                                    target: row.get(4)?,
                                    detail: row.get(5)?,
                                    tenant: row.get(6)?,
                                    prev_hash: row.get(7)?,
                                    hash: row.get(8)?,
                                })
                            },
                        )?;
                        Ok(rows.collect::<Result<Vec<_>, _>>()?)
                    })
                    .await
            }
            Store::Postgres(store) => store.audit_entries(&query).await,
        }
    }

    /// Walks the whole chain, a page at a time, checks every signed anchor against it, and
    /// reports the first break.
    pub async fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        let keys = self.audit_anchor_keys().await?;
        let mut anchors = AnchorCheck::new(self.audit_anchors().await?, &keys);
        let mut walker = ChainWalker::default();
        let mut after_seq = 0;
        loop {
            let page = self
                .audit_entries(AuditQuery::page(after_seq, MAX_AUDIT_PAGE))
                .await?;
            let Some(last) = page.last() else {
                return Ok(walker.finish_anchored(None, anchors));
            };
            after_seq = last.seq;
            for entry in &page {
                if let Err(found) = walker.check(entry) {
                    return Ok(walker.finish_anchored(Some(found), anchors));
                }
                anchors.entry(entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut entries: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let previous = entries.last().map(|e| (e.seq, e.hash.as_str()));
            let next = AuditEntry::next(
                previous,
                NewAuditEntry::new(
                    "ops",
                    "freeze.put",
                    format!("terminal:T{i}"),
                    "why",
                    100 + i,
                ),
            );
            entries.push(next);
        }
        entries
    }

    fn walk(entries: &[AuditEntry]) -> AuditVerification {
        let mut walker = ChainWalker::default();
        for entry in entries {
            if let Err(found) = walker.check(entry) {
                return walker.finish(Some(found));
            }
        }
        walker.finish(None)
    }

    #[test]
    fn an_intact_chain_verifies_and_reports_its_head() {
        let entries = chain(5);
        let report = walk(&entries);
        assert_eq!(report.first_break, None);
        assert_eq!((report.entries, report.head_seq), (5, 5));
        assert_eq!(report.head_hash, entries[4].hash);
        assert_eq!(entries[0].prev_hash, GENESIS_HASH);
    }

    #[test]
    fn the_hash_covers_every_field_and_the_previous_hash() {
        let base = chain(1).remove(0);
        let mut variants = Vec::new();
        for change in 0..8 {
            let mut entry = base.clone();
            match change {
                0 => entry.seq = 2,
                1 => entry.at += 1,
                2 => entry.actor.push('x'),
                3 => entry.action.push('x'),
                4 => entry.target.push('x'),
                5 => entry.detail.push('x'),
                6 => entry.tenant.push('x'),
                _ => entry.prev_hash = "1".repeat(64),
            }
            assert!(!entry.hash_matches(), "change {change} went unnoticed");
            variants.push(entry);
        }
        // Length prefixes: moving text between fields changes the hash.
        let a = entry_hash(GENESIS_HASH, 1, 0, "ab", "c", "", "", "");
        let b = entry_hash(GENESIS_HASH, 1, 0, "a", "bc", "", "", "");
        assert_ne!(a, b);
    }

    #[test]
    fn a_changed_an_inserted_and_a_deleted_entry_are_found_where_they_are() {
        let mut changed = chain(5);
        changed[2].detail = "another reason".into();
        let found = walk(&changed).first_break.unwrap();
        assert_eq!(found.seq, 3);
        assert!(found.problem.contains("was changed"), "{}", found.problem);

        let mut deleted = chain(5);
        deleted.remove(1);
        let found = walk(&deleted).first_break.unwrap();
        assert_eq!(found.seq, 2);
        assert!(found.problem.contains("missing"), "{}", found.problem);

        // An entry slipped in with a consistent hash of its own, the rest renumbered.
        let mut inserted = chain(5);
        let forged = AuditEntry::next(
            Some((inserted[1].seq, &inserted[1].hash)),
            NewAuditEntry::new("mallory", "freeze.delete", "terminal:T1", "", 101),
        );
        inserted.insert(2, forged);
        for (index, entry) in inserted.iter_mut().enumerate().skip(3) {
            entry.seq = i64::try_from(index).unwrap() + 1;
        }
        let report = walk(&inserted);
        let found = report.first_break.unwrap();
        assert_eq!(found.seq, 4, "the entry after the forged one breaks");
        assert_eq!(report.head_seq, 3);
    }

    #[test]
    fn long_fields_are_cut_and_query_patterns_escaped() {
        let entry = NewAuditEntry::new("a".repeat(5_000), "x", "y", "z", 0);
        assert_eq!(entry.actor.chars().count(), MAX_AUDIT_FIELD_CHARS);
        let query = AuditQuery {
            action_prefix: Some("a_b%".into()),
            ..AuditQuery::default()
        };
        assert_eq!(query.action_pattern().unwrap(), "a\\_b\\%%");
        assert_eq!(AuditQuery::page(0, 10_000).bounded_limit(), MAX_AUDIT_PAGE);
    }
}
