//! An export of audit entries with its proof (docs/audit.md#exports), checkable offline
//! (`easypos audit verify --export FILE`): the entries as stored, each with its chain hashes
//! (`prev_hash`, `hash`); the chain head at the time of the export (the platform verified the
//! whole chain intact up to it first); the signed anchors from the first exported entry on; the
//! platform's anchor public keys; and an Ed25519 signature by the platform's anchor key over
//! all of it ([`export_signed_text`]).
//!
//! [`verify_export`] recomputes every entry's hash from its contents (a changed entry is
//! caught), checks the chain links between consecutive exported entries, every anchor's
//! signature and, for an anchor of an exported entry, its hash, and the export's own signature
//! (an entry added, removed or re-hashed, or an anchor dropped, is caught). A verifier that
//! knows the platform's anchor key pins it (`--key`), so that a forger cannot sign with a key
//! of their own.

use crate::audit::AuditEntry;
use crate::audit_anchors::{AuditAnchor, verifying_key};
use std::collections::BTreeMap;

/// The format's name and version, first in the file and in the signed text.
pub const EXPORT_FORMAT: &str = "easypos-audit-export-v1";
/// Most entries one export holds: a month of a busy merchant's back office, and still a file
/// a browser downloads at once. Narrow the filters for more.
pub const MAX_EXPORT_ENTRIES: usize = 10_000;

/// The filters an export was made with, recorded in it (and signed).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub from: Option<i64>,
    pub before: Option<i64>,
    /// The tenants whose entries the exporter may see.
    pub tenants: Vec<String>,
}

/// The chain's head when the export was made.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportHead {
    pub seq: i64,
    pub hash: String,
}

/// An anchor public key, as the verifier needs it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportKey {
    pub key_id: String,
    pub public_key: String,
}

/// The platform's signature over [`export_signed_text`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportSignature {
    pub key_id: String,
    pub signature: String,
}

/// The export file (JSON).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditExport {
    pub format: String,
    pub exported_at: i64,
    pub exported_by: String,
    pub filter: ExportFilter,
    pub head: ExportHead,
    pub entries: Vec<AuditEntry>,
    pub anchors: Vec<AuditAnchor>,
    pub keys: Vec<ExportKey>,
    pub signature: ExportSignature,
}

/// The text the platform signs: the format, when, by whom, the filters, the head, then one
/// line per entry (`entry <seq> <hash>`) and per anchor (`anchor <seq> <hash> <at> <key id>
/// <signature>`). Filters are JSON, so that no value can imitate a line break.
pub fn export_signed_text(export: &AuditExport) -> Vec<u8> {
    let filter = serde_json::to_string(&export.filter).unwrap_or_default();
    let mut text = format!(
        "{EXPORT_FORMAT}\n{}\n{}\n{filter}\n{}\n{}\n",
        export.exported_at,
        serde_json::to_string(&export.exported_by).unwrap_or_default(),
        export.head.seq,
        export.head.hash
    );
    for entry in &export.entries {
        text.push_str(&format!("entry {} {}\n", entry.seq, entry.hash));
    }
    for anchor in &export.anchors {
        text.push_str(&format!(
            "anchor {} {} {} {} {}\n",
            anchor.seq, anchor.hash, anchor.at, anchor.key_id, anchor.signature
        ));
    }
    text.into_bytes()
}

/// What [`verify_export`] found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ExportCheck {
    pub entries: usize,
    /// Anchors whose signature holds.
    pub anchors: usize,
    /// The key that signed the export, and its public key: compare it with the platform's.
    pub key_id: String,
    pub public_key: String,
    /// The first problem found, in words; `None`: the export is intact.
    pub problem: Option<String>,
}

fn signature_holds(public_key: &str, text: &[u8], signature: &str) -> bool {
    let Some(key) = verifying_key(public_key) else {
        return false;
    };
    let Some(bytes) = hex::decode(signature)
        .ok()
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
    else {
        return false;
    };
    key.verify_strict(text, &ed25519_dalek::Signature::from_bytes(&bytes))
        .is_ok()
}

/// Checks `export` offline. `pinned_key`: the platform's anchor public key (hex) as the
/// verifier knows it; the export must be signed with it.
pub fn verify_export(export: &AuditExport, pinned_key: Option<&str>) -> ExportCheck {
    let keys: BTreeMap<&str, &str> = export
        .keys
        .iter()
        .map(|key| (key.key_id.as_str(), key.public_key.as_str()))
        .collect();
    let public_key = keys
        .get(export.signature.key_id.as_str())
        .copied()
        .unwrap_or_default();
    let mut check = ExportCheck {
        entries: export.entries.len(),
        anchors: 0,
        key_id: export.signature.key_id.clone(),
        public_key: public_key.to_owned(),
        problem: None,
    };
    check.problem = first_problem(export, &keys, public_key, pinned_key, &mut check.anchors);
    check
}

fn first_problem(
    export: &AuditExport,
    keys: &BTreeMap<&str, &str>,
    public_key: &str,
    pinned_key: Option<&str>,
    anchors_held: &mut usize,
) -> Option<String> {
    if export.format != EXPORT_FORMAT {
        return Some(format!(
            "not an easypos audit export (format {:?}, expected {EXPORT_FORMAT})",
            export.format
        ));
    }
    let mut previous: Option<&AuditEntry> = None;
    for entry in &export.entries {
        if !entry.hash_matches() {
            return Some(format!(
                "entry {} was changed: its contents no longer give its hash",
                entry.seq
            ));
        }
        if let Some(before) = previous {
            if entry.seq <= before.seq {
                return Some(format!("entry {} appears out of order", entry.seq));
            }
            if entry.seq == before.seq + 1 && entry.prev_hash != before.hash {
                return Some(format!(
                    "entry {} does not carry the hash of entry {}",
                    entry.seq, before.seq
                ));
            }
        }
        if entry.seq > export.head.seq {
            return Some(format!(
                "entry {} is after the head the export names ({})",
                entry.seq, export.head.seq
            ));
        }
        previous = Some(entry);
    }
    for anchor in &export.anchors {
        let Some(key) = keys.get(anchor.key_id.as_str()) else {
            return Some(format!(
                "the anchor of entry {} is signed with key {}, which the export does not list",
                anchor.seq, anchor.key_id
            ));
        };
        if !signature_holds(key, &anchor.signed_text(), &anchor.signature) {
            return Some(format!(
                "the anchor of entry {} does not carry a valid signature: it was forged or altered",
                anchor.seq
            ));
        }
        if let Some(entry) = export.entries.iter().find(|e| e.seq == anchor.seq)
            && entry.hash != anchor.hash
        {
            return Some(format!(
                "entry {} does not have the hash its anchor signed at {}",
                entry.seq, anchor.at
            ));
        }
        *anchors_held += 1;
    }
    if public_key.is_empty() {
        return Some(format!(
            "the export is signed with key {}, which it does not list",
            export.signature.key_id
        ));
    }
    if let Some(pinned) = pinned_key
        && !pinned.eq_ignore_ascii_case(public_key)
    {
        return Some(format!(
            "the export is signed with key {} ({public_key}), not the platform's key you gave ({pinned}): it is forged",
            export.signature.key_id
        ));
    }
    if !signature_holds(
        public_key,
        &export_signed_text(export),
        &export.signature.signature,
    ) {
        return Some(
            "the export's signature does not hold: entries were added, removed or re-hashed, or its anchors, filters or head were changed"
                .to_owned(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::NewAuditEntry;
    use ed25519_dalek::Signer;

    const SEED: [u8; 32] = [7; 32];

    /// Three chained entries, an anchor of the second, signed with a key from `SEED`.
    fn export() -> AuditExport {
        let key = ed25519_dalek::SigningKey::from_bytes(&SEED);
        let public_key = hex::encode(key.verifying_key().to_bytes());
        let mut entries: Vec<AuditEntry> = Vec::new();
        for (i, action) in ["freeze.put", "freeze.delete", "logout"]
            .into_iter()
            .enumerate()
        {
            let previous = entries.last().map(|e| (e.seq, e.hash.as_str()));
            let entry = AuditEntry::next(
                previous,
                NewAuditEntry::new("ann", action, "terminal:1", "lost", 100 + i as i64)
                    .tenant("merchant:M1"),
            );
            entries.push(entry);
        }
        let mut anchor = AuditAnchor {
            seq: 2,
            hash: entries[1].hash.clone(),
            at: 150,
            key_id: "k1".into(),
            signature: String::new(),
        };
        anchor.signature = hex::encode(key.sign(&anchor.signed_text()).to_bytes());
        let mut document = AuditExport {
            format: EXPORT_FORMAT.into(),
            exported_at: 200,
            exported_by: "ann".into(),
            filter: ExportFilter::default(),
            head: ExportHead {
                seq: 3,
                hash: entries[2].hash.clone(),
            },
            entries,
            anchors: vec![anchor],
            keys: vec![ExportKey {
                key_id: "k1".into(),
                public_key,
            }],
            signature: ExportSignature {
                key_id: "k1".into(),
                signature: String::new(),
            },
        };
        document.signature.signature =
            hex::encode(key.sign(&export_signed_text(&document)).to_bytes());
        document
    }

    fn problem(document: &AuditExport) -> String {
        verify_export(document, None).problem.unwrap_or_default()
    }

    #[test]
    fn an_intact_export_holds_and_every_kind_of_tampering_is_named() {
        let intact = export();
        let check = verify_export(&intact, Some(&intact.keys[0].public_key));
        assert_eq!(check.problem, None);
        assert_eq!((check.entries, check.anchors), (3, 1));

        let mut changed = export();
        changed.entries[1].detail = "found again".into();
        assert_eq!(
            problem(&changed),
            "entry 2 was changed: its contents no longer give its hash"
        );

        // Re-hashing a changed entry breaks the link to the next one.
        let mut rehashed = export();
        rehashed.entries[0].detail = "never lost".into();
        rehashed.entries[0].hash = crate::audit::entry_hash(
            &rehashed.entries[0].prev_hash,
            1,
            100,
            "ann",
            "freeze.put",
            "terminal:1",
            "never lost",
            "merchant:M1",
        );
        assert_eq!(
            problem(&rehashed),
            "entry 2 does not carry the hash of entry 1"
        );

        // Removing an entry (here the last, which no link shows) breaks the signature.
        let mut removed = export();
        removed.entries.pop();
        assert!(
            problem(&removed).starts_with("the export's signature does not hold"),
            "{}",
            problem(&removed)
        );
        let mut dropped_anchor = export();
        dropped_anchor.anchors.clear();
        assert!(problem(&dropped_anchor).starts_with("the export's signature does not hold"));

        let mut forged_anchor = export();
        forged_anchor.anchors[0].at = 151;
        assert!(
            problem(&forged_anchor).contains("does not carry a valid signature"),
            "{}",
            problem(&forged_anchor)
        );

        // A forger who re-signs with a key of their own is caught by the pinned key.
        let intact = export();
        let other = hex::encode(
            ed25519_dalek::SigningKey::from_bytes(&[9; 32])
                .verifying_key()
                .to_bytes(),
        );
        assert!(
            verify_export(&intact, Some(&other))
                .problem
                .unwrap()
                .ends_with("it is forged")
        );
        let mut wrong_format = export();
        wrong_format.format = "something-else".into();
        assert!(problem(&wrong_format).starts_with("not an easypos audit export"));
    }
}
