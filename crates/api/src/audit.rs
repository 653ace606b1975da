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
    // Operators see their institution's entries and their acquirer's merchants'; everyone
    // else their own tenant's.
    let mut tenants = vec![tenant_label(&principal.user.tenant)];
    if principal.user.role == Role::PlatformOperator {
        let records = Scope::of(&state.store, &principal.user).await?;
        tenants.extend(records.merchants.iter().map(|m| merchant_label(&m.id)));
    }
    let data = state
        .store
        .audit_entries(AuditQuery {
            after_seq: number("cursor", &params.cursor, 0)?,
            limit,
            actor: params.actor,
            action_prefix: params.action,
            target: params.target,
            tenants: Some(tenants),
        })
        .await?;
    let next_cursor = (i64::try_from(data.len()).unwrap_or(i64::MAX) == limit)
        .then(|| data.last().map(|entry| entry.seq.to_string()))
        .flatten();
    Ok(Json(Page { data, next_cursor }))
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
