//! The case queue through the API (docs/risk.md): what the risk rules flagged, listed for the
//! acquirer's operators (their merchants') and a merchant's admin and manager (their own);
//! assigned, commented and resolved, each action in the audit log. An outcome that blocks
//! freezes the card (operators only), the terminal or the merchant through the same freezes
//! the host honours on its next authorization.

use crate::ApiState;
use crate::access::{self, Principal, Resource, Scope};
use crate::problem::Problem;
use crate::routes::require;
use crate::views::Page;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::accounts::Role;
use store::cases::{Case, CaseComment, CaseQuery, MAX_CASES_LISTED};

/// Longest comment or resolution reason.
pub const MAX_CASE_TEXT_CHARS: usize = 2_000;

type ApiResult<T> = Result<T, Problem>;

/// How a case ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    NoAction,
    BlockCard,
    BlockTerminal,
    BlockMerchant,
}

impl Outcome {
    pub fn parse(text: &str) -> Option<Outcome> {
        match text {
            "no_action" => Some(Outcome::NoAction),
            "block_card" => Some(Outcome::BlockCard),
            "block_terminal" => Some(Outcome::BlockTerminal),
            "block_merchant" => Some(Outcome::BlockMerchant),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NoAction => "no_action",
            Outcome::BlockCard => "block_card",
            Outcome::BlockTerminal => "block_terminal",
            Outcome::BlockMerchant => "block_merchant",
        }
    }

    /// What the outcome freezes, and which of the case's ids.
    pub fn freeze(self, case: &Case) -> Option<(risk::FreezeScope, String)> {
        match self {
            Outcome::NoAction => None,
            Outcome::BlockCard => Some((risk::FreezeScope::Card, case.card_id.clone())),
            Outcome::BlockTerminal => Some((risk::FreezeScope::Terminal, case.terminal_id.clone())),
            Outcome::BlockMerchant => Some((risk::FreezeScope::Merchant, case.merchant_id.clone())),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseParams {
    pub status: Option<String>,
}

/// A case as the API shows it: the card masked (first six, last four), never its id.
#[derive(Clone, Debug, Serialize)]
pub struct CaseView {
    pub id: i64,
    pub opened_at: i64,
    pub last_at: i64,
    pub hits: i64,
    pub merchant_id: String,
    pub terminal_id: String,
    /// The card, masked; empty when the case names none.
    pub card: String,
    pub rules: String,
    pub severity: String,
    pub status: String,
    pub assignee: String,
    pub outcome: String,
    pub resolved_by: String,
    pub resolved_at: Option<i64>,
}

impl CaseView {
    pub fn new(case: &Case, directory: &store::directory::Directory) -> CaseView {
        let card = directory
            .cards
            .iter()
            .find(|card| card.id == case.card_id)
            .map(|card| card.masked_pan())
            .unwrap_or_default();
        CaseView {
            id: case.id,
            opened_at: case.opened_at,
            last_at: case.last_at,
            hits: case.hits,
            merchant_id: case.merchant_id.clone(),
            terminal_id: case.terminal_id.clone(),
            card,
            rules: case.rules.clone(),
            severity: case.severity.clone(),
            status: case.status.clone(),
            assignee: case.assignee.clone(),
            outcome: case.outcome.clone(),
            resolved_by: case.resolved_by.clone(),
            resolved_at: case.resolved_at,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CaseDetail {
    #[serde(flatten)]
    pub case: CaseView,
    pub comments: Vec<CaseComment>,
}

/// A case found for the caller: as stored, and as shown.
#[derive(Clone, Debug)]
pub struct FoundCase {
    pub case: Case,
    pub detail: CaseDetail,
}

/// The case `id` if the caller's tenant covers its merchant, else 404.
pub async fn visible_case(
    state: &ApiState,
    principal: &Principal,
    id: &str,
) -> ApiResult<FoundCase> {
    require(principal, Resource::Cases)?;
    let not_found = || Problem::not_found(format!("no case {id:?} of yours"));
    let number = id.parse::<i64>().map_err(|_| not_found())?;
    let scope = Scope::of(&state.store, &principal.user).await?;
    let (case, comments) = state.store.case(number).await?.ok_or_else(not_found)?;
    if scope.merchant(&case.merchant_id).is_none() {
        return Err(not_found());
    }
    let directory = state.store.load_directory().await?;
    Ok(FoundCase {
        detail: CaseDetail {
            case: CaseView::new(&case, &directory),
            comments,
        },
        case,
    })
}

pub async fn list_cases(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    query: Result<Query<CaseParams>, QueryRejection>,
) -> ApiResult<Json<Page<CaseView>>> {
    require(&principal, Resource::Cases)?;
    let Query(params) = query.map_err(|rejection| {
        Problem::bad_request(format!(
            "{rejection}; the filter is status (open or resolved)"
        ))
    })?;
    if let Some(status) = &params.status
        && status != "open"
        && status != "resolved"
    {
        return Err(Problem::bad_request(format!(
            "status must be open or resolved, not {status:?}"
        )));
    }
    let scope = Scope::of(&state.store, &principal.user).await?;
    let data = state
        .store
        .cases(CaseQuery {
            merchants: Some(scope.merchants.iter().map(|m| m.id.clone()).collect()),
            status: params.status,
            limit: MAX_CASES_LISTED,
        })
        .await?;
    let directory = state.store.load_directory().await?;
    Ok(Json(Page {
        data: data
            .iter()
            .map(|case| CaseView::new(case, &directory))
            .collect(),
        next_cursor: None,
    }))
}

pub async fn get_case(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<CaseDetail>> {
    Ok(Json(visible_case(&state, &principal, &id).await?.detail))
}

pub(crate) fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes, example: &str) -> ApiResult<T> {
    serde_json::from_slice(bytes).map_err(|error| {
        Problem::bad_request(format!("the body must be JSON like {example}: {error}"))
    })
}

fn text(name: &str, text: &str) -> ApiResult<String> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_CASE_TEXT_CHARS {
        return Err(Problem::bad_request(format!(
            "`{name}` must have 1 to {MAX_CASE_TEXT_CHARS} characters"
        )));
    }
    Ok(text.to_owned())
}

fn conflict(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "case-resolved",
        "Case resolved",
        detail,
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    pub assignee: String,
}

/// Assigns an open case to a user who may work cases of its merchant.
pub async fn assign_case(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<CaseDetail>> {
    let request: Assignment = body(&bytes, r#"{"assignee": "shanghai.manager"}"#)?;
    Ok(Json(
        assign(&state, &principal, &id, &request.assignee).await?,
    ))
}

/// Assigns case `id` (as the caller may see it) to `assignee`; the console's form and the
/// API's route.
pub async fn assign(
    state: &ApiState,
    principal: &Principal,
    id: &str,
    assignee: &str,
) -> ApiResult<CaseDetail> {
    let FoundCase { case, .. } = visible_case(state, principal, id).await?;
    let request = Assignment {
        assignee: assignee.to_owned(),
    };
    let assignee = state
        .store
        .user_by_username(request.assignee.trim())
        .await?
        .filter(|user| {
            access::allows(user.role, Resource::Cases)
                && match &user.tenant {
                    store::accounts::Tenant::Merchant(merchant) => {
                        *merchant == case.merchant_id
                    }
                    tenant => *tenant == principal.user.tenant,
                }
        })
        .ok_or_else(|| {
            Problem::bad_request(format!(
                "`assignee`: {:?} is not a user who may work this case (an operator of yours, or the merchant's admin or manager)",
                request.assignee
            ))
        })?;
    if !state.store.assign_case(case.id, &assignee.username).await? {
        return Err(conflict("the case is resolved; it cannot be assigned"));
    }
    let tenant = crate::audit::merchant_label(&case.merchant_id);
    state
        .audit(
            &principal.user,
            "case.assign",
            &format!("case:{}", case.id),
            &assignee.username,
            tenant,
        )
        .await?;
    Ok(visible_case(state, principal, id).await?.detail)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    pub text: String,
}

pub async fn comment_case(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<CaseDetail>)> {
    let request: NewComment = body(&bytes, r#"{"text": "called the merchant"}"#)?;
    let detail = comment(&state, &principal, &id, &request.text).await?;
    Ok((StatusCode::CREATED, Json(detail)))
}

/// Adds a comment by the caller to case `id`.
pub async fn comment(
    state: &ApiState,
    principal: &Principal,
    id: &str,
    given: &str,
) -> ApiResult<CaseDetail> {
    let FoundCase { case, .. } = visible_case(state, principal, id).await?;
    let comment = text("text", given)?;
    if !state
        .store
        .comment_case(
            case.id,
            &principal.user.username,
            &comment,
            state.now_seconds(),
        )
        .await?
    {
        return Err(conflict(format!(
            "the case has {} comments, the most it keeps",
            store::cases::MAX_COMMENTS_PER_CASE
        )));
    }
    let tenant = crate::audit::merchant_label(&case.merchant_id);
    state
        .audit(
            &principal.user,
            "case.comment",
            &format!("case:{}", case.id),
            &comment,
            tenant,
        )
        .await?;
    Ok(visible_case(state, principal, id).await?.detail)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    pub outcome: String,
    pub reason: String,
}

/// Resolves an open case; an outcome that blocks freezes the card, terminal or merchant at
/// once (the next authorization is declined), with the case named in the freeze's reason.
pub async fn resolve_case(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<CaseDetail>> {
    let request: Resolution = body(
        &bytes,
        r#"{"outcome": "block_card", "reason": "confirmed fraud"}"#,
    )?;
    Ok(Json(resolve(&state, &principal, &id, &request).await?))
}

/// Resolves case `id` as `request` says, freezing what the outcome blocks.
pub async fn resolve(
    state: &ApiState,
    principal: &Principal,
    id: &str,
    request: &Resolution,
) -> ApiResult<CaseDetail> {
    let FoundCase { case, .. } = visible_case(state, principal, id).await?;
    let outcome = Outcome::parse(&request.outcome).ok_or_else(|| {
        Problem::bad_request(format!(
            "`outcome` must be no_action, block_card, block_terminal or block_merchant, not {:?}",
            request.outcome
        ))
    })?;
    let reason = text("reason", &request.reason)?;
    let freeze = outcome.freeze(&case);
    if let Some((scope, target)) = &freeze {
        if *scope == risk::FreezeScope::Card && principal.user.role != Role::PlatformOperator {
            return Err(Problem::forbidden(
                "only the acquirer's operators block cards; block the terminal, or ask them",
            ));
        }
        if target.is_empty() {
            return Err(Problem::bad_request(format!(
                "the case names no {}; choose another outcome",
                scope.as_str()
            )));
        }
    }
    let case_id = case.id;
    let now = state.now_seconds();
    if !state
        .store
        .resolve_case(case_id, outcome.as_str(), &principal.user.username, now)
        .await?
    {
        return Err(conflict("the case is resolved already"));
    }
    let tenant = crate::audit::merchant_label(&case.merchant_id);
    state
        .audit(
            &principal.user,
            "case.resolve",
            &format!("case:{case_id}"),
            &format!("{}: {reason}", outcome.as_str()),
            tenant.clone(),
        )
        .await?;
    if let Some((scope, target)) = freeze {
        let freeze = store::freezes::Freeze {
            scope: scope.as_str().to_owned(),
            target: target.clone(),
            reason: format!("case {case_id}: {reason}"),
            frozen_by: principal.user.username.clone(),
            frozen_at: now,
        };
        state.store.put_freeze(freeze.clone()).await?;
        state.freezes.set(scope, &target, true);
        tracing::warn!(scope = scope.as_str(), %target, case = case_id, by = %principal.user.username, "frozen by a case");
        state
            .audit(
                &principal.user,
                "freeze.put",
                &format!("{}:{target}", scope.as_str()),
                &freeze.reason,
                tenant,
            )
            .await?;
    }
    Ok(visible_case(state, principal, id).await?.detail)
}
