//! Signed anchors of the audit log (docs/audit.md#anchors): the platform's Ed25519 anchor key is
//! made and used inside the HSM (an S0 key like the receipt keys, in its own table, so that a
//! receipt key never vouches for the log), and signs the chain head every
//! [`ANCHOR_EVERY_ENTRIES`] entries (the host's 2-second store poll) or on demand
//! (`POST /api/v1/audit/anchors`, `easypos audit anchor`). The store verifies them
//! ([`store::audit_anchors`]).
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<store::Store>, hsm: std::sync::Arc<dyn hsm::Hsm>) -> Result<(), api::audit_anchors::AnchorError> {
//! let anchorer = api::audit_anchors::AuditAnchorer::new(store.clone(), hsm);
//! anchorer.anchor(1_764_000_000).await?;
//! assert!(store.verify_audit().await?.first_break.is_none());
//! # Ok(()) }
//! ```

use crate::ApiState;
use crate::access::{Principal, Resource};
use crate::problem::Problem;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hsm::{Hsm, KeySpec, KeyToken};
use std::sync::Arc;
use store::Store;
use store::accounts::Role;
use store::audit_anchors::{AuditAnchor, AuditAnchorKey};

/// The host anchors the head once this many entries were appended since the last anchor: a
/// tail cut after it is caught, and at most this many entries (plus those since) can vanish
/// without `audit verify` noticing when no one wrote the head down.
pub const ANCHOR_EVERY_ENTRIES: i64 = 100;

/// Why an anchor could not be made or a key checked.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error("HSM: {0}")]
    Hsm(#[from] hsm::HsmError),
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
}

/// Makes anchors with the platform's anchor key.
pub struct AuditAnchorer {
    store: Arc<Store>,
    hsm: Arc<dyn Hsm>,
    /// Serialises anchoring in this process (the periodic pass and a request at once), so
    /// that a first start makes one key, not two.
    signing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for AuditAnchorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditAnchorer").finish_non_exhaustive()
    }
}

impl AuditAnchorer {
    pub fn new(store: Arc<Store>, hsm: Arc<dyn Hsm>) -> Self {
        AuditAnchorer {
            store,
            hsm,
            signing: tokio::sync::Mutex::new(()),
        }
    }

    /// Signs the current head, unless it is anchored already (then that anchor is returned).
    /// `None`: the log is empty, there is nothing to anchor.
    pub async fn anchor(&self, now: i64) -> Result<Option<AuditAnchor>, AnchorError> {
        let _one_at_a_time = self.signing.lock().await;
        let Some((seq, hash)) = self.store.audit_head().await? else {
            return Ok(None);
        };
        // Anchors only ever sign the head, so an anchor of this head is the last one.
        if let Some(existing) = self
            .store
            .last_audit_anchor()
            .await?
            .filter(|anchor| anchor.seq == seq)
        {
            return Ok(Some(existing));
        }
        let (key_id, token) = self.signing_key(now).await?;
        let mut anchor = AuditAnchor {
            seq,
            hash,
            at: now,
            key_id,
            signature: String::new(),
        };
        anchor.signature = hex::encode(self.hsm.ed25519_sign(&token, &anchor.signed_text())?);
        if !self.store.append_audit_anchor(anchor.clone()).await? {
            // Another host anchored the same head meanwhile: theirs stands.
            let stored = self.store.last_audit_anchor().await?;
            return Ok(stored.filter(|found| found.seq == seq));
        }
        tracing::info!(seq, key_id = %anchor.key_id, "audit log anchored");
        Ok(Some(anchor))
    }

    /// Signs an export of audit entries ([`store::audit_export::export_signed_text`]) with the
    /// platform's anchor key: (key id, public key hex, signature hex). The signed text starts
    /// with its own domain (`easypos-audit-export-v1`), so an export signature can never pass
    /// for an anchor's.
    pub async fn sign_export(
        &self,
        export: &store::audit_export::AuditExport,
        now: i64,
    ) -> Result<(String, String, String), AnchorError> {
        let (key_id, token) = {
            let _one_at_a_time = self.signing.lock().await;
            self.signing_key(now).await?
        };
        let public = hex::encode(self.hsm.ed25519_public_key(&token)?);
        let text = store::audit_export::export_signed_text(export);
        let signature = hex::encode(self.hsm.ed25519_sign(&token, &text)?);
        Ok((key_id, public, signature))
    }

    /// Anchors the head when at least `every` entries came after the last anchor.
    pub async fn anchor_if_due(
        &self,
        now: i64,
        every: i64,
    ) -> Result<Option<AuditAnchor>, AnchorError> {
        let Some((head, _)) = self.store.audit_head().await? else {
            return Ok(None);
        };
        let last = self
            .store
            .last_audit_anchor()
            .await?
            .map_or(0, |anchor| anchor.seq);
        if head - last < every {
            return Ok(None);
        }
        self.anchor(now).await
    }

    /// The newest anchor key; on a first anchor, one made in the HSM and stored.
    async fn signing_key(&self, now: i64) -> Result<(String, KeyToken), AnchorError> {
        if let Some(key) = self.store.audit_anchor_keys().await?.pop() {
            return Ok((key.key_id, KeyToken::new(key.token)));
        }
        // The same key kind as the receipt keys (Ed25519, signature only, never exportable),
        // kept apart from them.
        let token = self.hsm.generate_key(&KeySpec::receipt_signing())?;
        let public = self.hsm.ed25519_public_key(&token)?;
        let key_id = aftersale::signer::key_id(&public);
        self.store
            .add_audit_anchor_key(AuditAnchorKey {
                key_id: key_id.clone(),
                token: token.as_str().to_owned(),
                public_key: hex::encode(public),
                created_at: now,
            })
            .await?;
        tracing::info!(%key_id, "audit anchor key made");
        Ok((key_id, token))
    }

    /// The anchor keys whose stored public key is not the one their token holds in this HSM:
    /// a key slipped into the store to sign forged anchors (its token cannot be made without
    /// the HSM's master key). Empty when every key is genuine.
    pub async fn foreign_keys(&self) -> Result<Vec<String>, AnchorError> {
        Ok(foreign_keys(&self.store, self.hsm.as_ref()).await?)
    }
}

/// How often the host looks whether an anchor is due: the same 2 seconds at which it reads
/// the store's freezes, one small read each time.
pub const ANCHOR_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Anchors the head whenever [`ANCHOR_EVERY_ENTRIES`] entries came after the last anchor,
/// until `stop` says so; a failure is logged and retried on the next pass.
pub async fn run(
    state: ApiState,
    interval: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Some(anchorer) = state.anchors.clone() else {
        return;
    };
    loop {
        // One node signs at a time (docs/scaling.md).
        if state.store.leads(store::leader::Job::AuditAnchoring).await
            && let Err(error) = anchorer
                .anchor_if_due(state.now_seconds(), ANCHOR_EVERY_ENTRIES)
                .await
        {
            tracing::warn!(%error, "anchoring the audit log failed; will retry");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
    }
}

/// [`AuditAnchorer::foreign_keys`] with a borrowed HSM, for the command line.
pub async fn foreign_keys(store: &Store, hsm: &dyn Hsm) -> Result<Vec<String>, store::StoreError> {
    let mut foreign = Vec::new();
    for key in store.audit_anchor_keys().await? {
        let genuine = hsm
            .ed25519_public_key(&KeyToken::new(key.token.clone()))
            .is_ok_and(|public| {
                hex::encode(public) == key.public_key
                    && aftersale::signer::key_id(&public) == key.key_id
            });
        if !genuine {
            foreign.push(key.key_id);
        }
    }
    Ok(foreign)
}

fn platform_operator(principal: &Principal, what: &str) -> Result<(), Problem> {
    crate::routes::require(principal, Resource::Audit)?;
    if principal.user.role != Role::PlatformOperator {
        return Err(Problem::forbidden(format!(
            "only the acquirer's operators {what}; ask them"
        )));
    }
    Ok(())
}

/// `GET /api/v1/audit/anchors`: every signed anchor, oldest first (operators).
pub async fn list_anchors(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<Json<Vec<AuditAnchor>>, Problem> {
    platform_operator(&principal, "read the audit anchors")?;
    Ok(Json(state.store.audit_anchors().await?))
}

/// `POST /api/v1/audit/anchors`: signs the current head now (operators); 201 with the anchor
/// (the existing one when the head is anchored already), 409 when the log is empty.
pub async fn anchor_now(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<(StatusCode, Json<AuditAnchor>), Problem> {
    platform_operator(&principal, "anchor the audit log")?;
    let anchorer = state.anchors.as_deref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "anchors-off",
            "Audit anchoring is off",
            "this server has no HSM to sign with (it runs without the acquirer host); run `easypos audit anchor` where the HSM is",
        )
    })?;
    let anchor = anchorer
        .anchor(state.now_seconds())
        .await
        .map_err(|error| Problem::internal(&error))?
        .ok_or_else(|| {
            Problem::new(
                StatusCode::CONFLICT,
                "audit-log-empty",
                "Nothing to anchor",
                "the audit log has no entries yet",
            )
        })?;
    Ok((StatusCode::CREATED, Json(anchor)))
}
