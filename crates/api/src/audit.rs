//! The audit trail of back-office actions through the API and the console (docs/audit.md):
//! [`ApiState::audit`] appends one entry to the store's hash-chained log after an action took
//! effect; `GET /api/v1/audit` searches it (operators their institution's and their
//! acquirer's merchants' entries, a merchant's admin and manager their merchant's) and `GET /api/v1/audit/verify` walks the chain.

use crate::ApiState;
use crate::access::{Principal, Resource, Scope};
use crate::problem::Problem;
use crate::views::Page;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use store::accounts::{Role, Tenant, User};
use store::audit::{AuditEntry, AuditQuery, AuditVerification, NewAuditEntry};

/// Entries per page when the caller does not say.
pub const DEFAULT_AUDIT_PAGE: i64 = 100;

/// `kind:id` of a tenant, as audit entries carry it (`merchant:M001`, `institution:1`).
pub fn tenant_label(tenant: &Tenant) -> String {
    format!("{}:{}", tenant.kind().as_str(), tenant.id())
}

/// `merchant:<id>`: the tenant of an action on a merchant's records, whoever did it.
pub fn merchant_label(merchant_id: &str) -> String {
    format!("merchant:{merchant_id}")
}

impl ApiState {
    /// Appends `action` by `actor` on `target` to the audit log, for the `tenant` whose records
    /// it touched ([`tenant_label`], [`merchant_label`]). Call it once the action took effect;
    /// a failure is logged and answered as a 500, so that an action is never reported done
    /// without its entry.
    pub async fn audit(
        &self,
        actor: &User,
        action: &str,
        target: &str,
        detail: &str,
        tenant: String,
    ) -> Result<AuditEntry, Problem> {
        self.audit_as(&actor.username, action, target, detail, tenant)
            .await
    }

    /// [`ApiState::audit`] by a name rather than a signed-in user: the name typed at a failed
    /// login, or `system`.
    pub async fn audit_as(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
        tenant: String,
    ) -> Result<AuditEntry, Problem> {
        let entry =
            NewAuditEntry::new(actor, action, target, detail, self.now_seconds()).tenant(tenant);
        self.store.append_audit(entry).await.map_err(|error| {
            tracing::error!(%error, action, target, "the audit log refused an entry");
            Problem::internal(&error)
        })
    }
}

/// The query of `GET /api/v1/audit`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// The `next_cursor` of the previous page (a sequence number).
    pub cursor: Option<String>,
    pub limit: Option<String>,
    pub actor: Option<String>,
    /// Actions that start with this (`freeze.`).
    pub action: Option<String>,
    pub target: Option<String>,
}

fn number(name: &str, text: &Option<String>, default: i64) -> Result<i64, Problem> {
    match text {
        None => Ok(default),
        Some(text) => text.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            Problem::bad_request(format!("`{name}` must be a whole number, not {text:?}"))
        }),
    }
}

/// The audit entries the caller may see, oldest first, a page at a time.
pub async fn list_audit(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    query: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<Page<AuditEntry>>, Problem> {
    crate::routes::require(&principal, Resource::Audit)?;
    let Query(params) = query.map_err(|rejection| {
        Problem::bad_request(format!(
            "{rejection}; the filters are cursor, limit, actor, action and target"
        ))
    })?;
    let limit =
        number("limit", &params.limit, DEFAULT_AUDIT_PAGE)?.clamp(1, store::audit::MAX_AUDIT_PAGE);
    let tenants = visible_tenants(&state, &principal).await?;
    let data = state
        .store
        .audit_entries(AuditQuery {
            after_seq: number("cursor", &params.cursor, 0)?,
            limit,
            actor: params.actor,
            action_prefix: params.action,
            target: params.target,
            tenants: Some(tenants),
            ..AuditQuery::default()
        })
        .await?;
    let next_cursor = (i64::try_from(data.len()).unwrap_or(i64::MAX) == limit)
        .then(|| data.last().map(|entry| entry.seq.to_string()))
        .flatten();
    Ok(Json(Page { data, next_cursor }))
}

/// The tenants whose audit entries `principal` may see: operators their institution's and
/// their acquirer's merchants'; everyone else their own tenant's.
pub async fn visible_tenants(
    state: &ApiState,
    principal: &Principal,
) -> Result<Vec<String>, Problem> {
    let mut tenants = vec![tenant_label(&principal.user.tenant)];
    if principal.user.role == Role::PlatformOperator {
        let records = Scope::of(&state.store, &principal.user).await?;
        tenants.extend(records.merchants.iter().map(|m| merchant_label(&m.id)));
    }
    Ok(tenants)
}

/// What an export is of: the search's filters (the tenants are the caller's).
#[derive(Clone, Debug, Default)]
pub struct ExportQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub from: Option<i64>,
    pub before: Option<i64>,
}

/// The entries `principal` may see that match `query`, with their proof (docs/audit.md#exports):
/// the platform verifies the whole chain first (a broken chain is not exported: **409**
/// `audit-log-broken`), then signs the export with its anchor key in the HSM (**503**
/// `anchors-off` without one). At most [`store::audit_export::MAX_EXPORT_ENTRIES`] entries
/// (**422** `export-too-large` beyond: narrow the filters).
pub async fn export(
    state: &ApiState,
    principal: &Principal,
    query: ExportQuery,
) -> Result<store::audit_export::AuditExport, Problem> {
    use store::audit_export::{
        AuditExport, EXPORT_FORMAT, ExportFilter, ExportHead, ExportKey, ExportSignature,
        MAX_EXPORT_ENTRIES,
    };
    crate::routes::require(principal, Resource::Audit)?;
    let Some(anchorer) = &state.anchors else {
        return Err(Problem::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "anchors-off",
            "No anchor key",
            "this server has no HSM to sign an export with; exports need the platform's anchor key",
        ));
    };
    let tenants = visible_tenants(state, principal).await?;
    let verification = state.store.verify_audit().await?;
    if let Some(broken) = verification.first_break {
        tracing::error!(seq = broken.seq, problem = %broken.problem, "audit export refused: the chain is broken");
        return Err(Problem::new(
            axum::http::StatusCode::CONFLICT,
            "audit-log-broken",
            "The audit log is broken",
            "the audit log does not verify, so no export can vouch for it; the acquirer's operators see where with `easypos audit verify`",
        ));
    }
    let mut entries = Vec::new();
    let mut after_seq = 0;
    loop {
        let page = state
            .store
            .audit_entries(AuditQuery {
                after_seq,
                limit: store::audit::MAX_AUDIT_PAGE,
                actor: query.actor.clone(),
                action_prefix: query.action.clone(),
                target: query.target.clone(),
                tenants: Some(tenants.clone()),
                from: query.from,
                before: query.before,
            })
            .await?;
        // Only what the verified chain covered: an entry appended meanwhile waits for the
        // next export.
        let full = i64::try_from(page.len()).unwrap_or(i64::MAX) == store::audit::MAX_AUDIT_PAGE;
        after_seq = page.last().map_or(after_seq, |entry| entry.seq);
        entries.extend(
            page.into_iter()
                .filter(|entry| entry.seq <= verification.head_seq),
        );
        if entries.len() > MAX_EXPORT_ENTRIES {
            return Err(Problem::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "export-too-large",
                "Too many entries",
                format!(
                    "an export holds at most {MAX_EXPORT_ENTRIES} entries; narrow the time range or the filters"
                ),
            ));
        }
        if !full || after_seq >= verification.head_seq {
            break;
        }
    }
    let first = entries.first().map_or(verification.head_seq, |e| e.seq);
    let anchors = state
        .store
        .audit_anchors()
        .await?
        .into_iter()
        .filter(|anchor| anchor.seq >= first && anchor.seq <= verification.head_seq)
        .collect();
    let keys = state
        .store
        .audit_anchor_keys()
        .await?
        .into_iter()
        .map(|key| ExportKey {
            key_id: key.key_id,
            public_key: key.public_key,
        })
        .collect();
    let mut document = AuditExport {
        format: EXPORT_FORMAT.to_owned(),
        exported_at: state.now_seconds(),
        exported_by: principal.user.username.clone(),
        filter: ExportFilter {
            actor: query.actor,
            action: query.action,
            target: query.target,
            from: query.from,
            before: query.before,
            tenants,
        },
        head: ExportHead {
            seq: verification.head_seq,
            hash: verification.head_hash,
        },
        entries,
        anchors,
        keys,
        signature: ExportSignature {
            key_id: String::new(),
            signature: String::new(),
        },
    };
    let (key_id, public_key, signature) = anchorer
        .sign_export(&document, document.exported_at)
        .await
        .map_err(|error| Problem::internal(&error))?;
    if !document.keys.iter().any(|key| key.key_id == key_id) {
        // The anchor key was made by this very export (the first use of the HSM's key).
        document.keys.push(ExportKey {
            key_id: key_id.clone(),
            public_key,
        });
    }
    document.signature = ExportSignature { key_id, signature };
    Ok(document)
}

/// Walks the whole chain (operators only) and reports the first break.
pub async fn verify_audit(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Result<Json<AuditVerification>, Problem> {
    crate::routes::require(&principal, Resource::Audit)?;
    if principal.user.role != Role::PlatformOperator {
        return Err(Problem::forbidden(
            "only the acquirer's operators verify the whole audit chain; ask them",
        ));
    }
    Ok(Json(state.store.verify_audit().await?))
}
