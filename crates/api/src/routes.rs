//! The handlers of `/api/v1`: plain async functions over typed extractors. Each checks the
//! role first ([`access::allows`], 403) and then keeps to the caller's tenant
//! ([`access::Scope`], 404 for another tenant's record).

use crate::ApiState;
use crate::access::{self, Principal, Resource, Scope};
use crate::problem::Problem;
use crate::time::parse_rfc3339_micros;
use crate::views::{
    ApiKeyView, CardView, CreatedApiKey, CreatedWebhook, DeliveryView, FreezeView, MeView,
    MerchantView, Page, TerminalView, TransactionView, WebhookView,
};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use store::accounts::{CardPattern, TransactionFilter, TransactionStatus};

/// Transactions per page when the caller does not say.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Most transactions per page.
pub const MAX_PAGE_SIZE: i64 = 200;
/// Longest API key name.
pub const MAX_KEY_NAME_CHARS: usize = 64;

type ApiResult<T> = Result<T, Problem>;

pub(crate) fn require(principal: &Principal, resource: Resource) -> ApiResult<()> {
    if access::allows(principal.user.role, resource) {
        Ok(())
    } else {
        Err(Problem::forbidden(format!(
            "a {} cannot use this route; sign in as a user whose role covers it",
            principal.user.role.as_str()
        )))
    }
}

async fn scope(state: &ApiState, principal: &Principal) -> ApiResult<Scope> {
    Ok(Scope::of(&state.store, &principal.user).await?)
}

pub async fn me(axum::Extension(principal): axum::Extension<Principal>) -> Json<MeView> {
    Json(MeView::from(&principal.user))
}

/// The query of `GET /api/v1/transactions`; every field narrows the list.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub min_amount_minor: Option<String>,
    pub max_amount_minor: Option<String>,
    pub merchant_id: Option<String>,
    pub terminal_id: Option<String>,
    pub card: Option<String>,
    pub status: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
    /// Set by [`TransactionQuery::resolve_card_token`] when `card` named no card: the query
    /// matches nothing.
    #[serde(skip)]
    pub no_such_card: bool,
}

fn integer(name: &str, value: Option<&str>) -> ApiResult<Option<i64>> {
    value
        .map(|text| {
            text.parse::<i64>().map_err(|_| {
                Problem::bad_request(format!("`{name}` must be a whole number, got {text:?}"))
            })
        })
        .transpose()
}

fn instant(name: &str, value: Option<&str>) -> ApiResult<Option<i64>> {
    value
        .map(|text| {
            parse_rfc3339_micros(text).ok_or_else(|| {
                Problem::bad_request(format!(
                    "`{name}` must be an RFC 3339 time such as 2026-11-25T08:00:00Z or a date such as 2026-11-25, got {text:?}"
                ))
            })
        })
        .transpose()
}

impl TransactionQuery {
    /// The caller's filter inside `base` (the tenant's scope): it can only narrow it.
    pub fn filter(&self, base: TransactionFilter) -> ApiResult<TransactionFilter> {
        let limit = integer("limit", self.limit.as_deref())?.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(Problem::bad_request(format!(
                "`limit` must be between 1 and {MAX_PAGE_SIZE}, got {limit}"
            )));
        }
        let card = self
            .card
            .as_deref()
            .filter(|_| !self.no_such_card)
            .map(|text| {
                CardPattern::parse(text).ok_or_else(|| {
                    Problem::bad_request(format!(
                        "`card` must be a masked card number such as 622202******1234 (first six and last four digits) or a card id, got {text:?}"
                    ))
                })
            })
            .transpose()?;
        let status = self
            .status
            .as_deref()
            .map(|text| {
                TransactionStatus::parse(text).ok_or_else(|| {
                    Problem::bad_request(format!(
                        "`status` must be approved, declined or unanswered, got {text:?}"
                    ))
                })
            })
            .transpose()?;
        let before_id = self
            .cursor
            .as_deref()
            .map(|text| {
                text.parse::<i64>().map_err(|_| {
                    Problem::bad_request(format!(
                        "`cursor` must be a `next_cursor` from an earlier page, got {text:?}"
                    ))
                })
            })
            .transpose()?;
        let merchants = match (&self.merchant_id, base.merchants) {
            (Some(merchant), Some(scope)) => {
                Some(scope.into_iter().filter(|id| id == merchant).collect())
            }
            (Some(merchant), None) => Some(vec![merchant.clone()]),
            (None, scope) => scope,
        };
        Ok(TransactionFilter {
            merchants,
            cards: if self.no_such_card {
                Some(Vec::new())
            } else {
                base.cards
            },
            terminal_id: self.terminal_id.clone(),
            card,
            status,
            from: instant("from", self.from.as_deref())?,
            to: instant("to", self.to.as_deref())?,
            min_amount_minor: integer("min_amount_minor", self.min_amount_minor.as_deref())?,
            max_amount_minor: integer("max_amount_minor", self.max_amount_minor.as_deref())?,
            before_id,
            after_id: None,
            id: None,
            limit,
        })
    }
}

impl TransactionQuery {
    /// `card` may name a card by its id (token) instead of its masked number: the id becomes
    /// the masked number. Text with digits and `*` only is a masked number and left as it is.
    /// An id that names no card matches nothing (it is not an error, so that the answer does
    /// not tell which ids exist).
    pub async fn resolve_card_token(mut self, state: &ApiState) -> ApiResult<Self> {
        let Some(text) = self.card.clone() else {
            return Ok(self);
        };
        if text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || byte == b'*')
        {
            return Ok(self);
        }
        let directory = state.store.load_directory().await?;
        match directory.cards.iter().find(|card| card.id == text) {
            Some(card) => self.card = Some(card.masked_pan()),
            None => self.no_such_card = true,
        }
        Ok(self)
    }
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    query
        .map(|Query(value)| value)
        .map_err(|rejection| Problem::bad_request(rejection.body_text()))
}

pub async fn list_transactions(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    params: Result<Query<TransactionQuery>, QueryRejection>,
) -> ApiResult<Json<Page<TransactionView>>> {
    require(&principal, Resource::Transactions)?;
    let params = query(params)?.resolve_card_token(&state).await?;
    let scope = scope(&state, &principal).await?;
    let filter = params.filter(scope.transaction_filter(principal.user.role))?;
    Ok(Json(transactions_page(&state, filter).await?))
}

/// The filter of `query` inside the caller's tenant (403 for a role without transactions).
pub async fn records_visible_to(
    state: &ApiState,
    principal: &Principal,
    query: TransactionQuery,
) -> ApiResult<TransactionFilter> {
    require(principal, Resource::Transactions)?;
    let scope = scope(state, principal).await?;
    query.filter(scope.transaction_filter(principal.user.role))
}

/// One page of `filter`, with the cursor of the next page if there is one.
pub async fn transactions_page(
    state: &ApiState,
    filter: TransactionFilter,
) -> ApiResult<Page<TransactionView>> {
    let limit = filter.limit;
    let mut records = state
        .store
        .transactions(&TransactionFilter {
            limit: limit + 1,
            ..filter
        })
        .await?;
    let more = i64::try_from(records.len()).unwrap_or(i64::MAX) > limit;
    records.truncate(usize::try_from(limit).unwrap_or(0));
    let next_cursor = more
        .then(|| records.last().map(|record| record.id.to_string()))
        .flatten();
    Ok(Page {
        data: records.iter().map(TransactionView::from).collect(),
        next_cursor,
    })
}

pub async fn get_transaction(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<TransactionView>> {
    let record = visible_transaction(&state, &principal, &id).await?;
    Ok(Json(TransactionView::from(&record)))
}

/// The transaction `id` if the caller may see it: 403 for a role without transactions, 404
/// for one that is not the caller's tenant's (or does not exist).
pub async fn visible_transaction(
    state: &ApiState,
    principal: &Principal,
    id: &str,
) -> ApiResult<store::accounts::TransactionRecord> {
    require(principal, Resource::Transactions)?;
    let not_found = || Problem::not_found(format!("no transaction {id:?} that you may see"));
    let row_id = id.parse::<i64>().map_err(|_| not_found())?;
    let scope = scope(state, principal).await?;
    let filter = TransactionFilter {
        id: Some(row_id),
        limit: 1,
        ..scope.transaction_filter(principal.user.role)
    };
    let records = state.store.transactions(&filter).await?;
    records.into_iter().next().ok_or_else(not_found)
}

pub async fn list_merchants(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> ApiResult<Json<Page<MerchantView>>> {
    require(&principal, Resource::Merchants)?;
    let scope = scope(&state, &principal).await?;
    Ok(Json(Page {
        data: scope.merchants.iter().map(MerchantView::from).collect(),
        next_cursor: None,
    }))
}

pub async fn get_merchant(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<MerchantView>> {
    require(&principal, Resource::Merchants)?;
    let scope = scope(&state, &principal).await?;
    scope
        .merchant(&id)
        .map(|merchant| Json(MerchantView::from(merchant)))
        .ok_or_else(|| Problem::not_found(format!("no merchant {id:?} that you may see")))
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalQuery {
    pub merchant_id: Option<String>,
}

pub async fn list_terminals(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    params: Result<Query<TerminalQuery>, QueryRejection>,
) -> ApiResult<Json<Page<TerminalView>>> {
    require(&principal, Resource::Terminals)?;
    let params = query(params)?;
    let scope = scope(&state, &principal).await?;
    Ok(Json(Page {
        data: scope
            .terminals
            .iter()
            .filter(|terminal| {
                params
                    .merchant_id
                    .as_ref()
                    .is_none_or(|merchant| &terminal.merchant_id == merchant)
            })
            .map(TerminalView::from)
            .collect(),
        next_cursor: None,
    }))
}

pub async fn get_terminal(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<TerminalView>> {
    require(&principal, Resource::Terminals)?;
    let scope = scope(&state, &principal).await?;
    scope
        .terminal(&id)
        .map(|terminal| Json(TerminalView::from(terminal)))
        .ok_or_else(|| Problem::not_found(format!("no terminal {id:?} that you may see")))
}

/// The cards of a scope with their balances, in one read of their accounts.
pub async fn card_views(
    state: &ApiState,
    cards: &[store::directory::Card],
) -> ApiResult<Vec<CardView>> {
    let accounts = state
        .store
        .accounts(cards.iter().map(|card| card.account).collect())
        .await?;
    Ok(cards
        .iter()
        .map(|card| {
            let account = accounts.iter().find(|account| account.id == card.account);
            CardView::new(card, account)
        })
        .collect())
}

pub async fn list_cards(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> ApiResult<Json<Page<CardView>>> {
    require(&principal, Resource::Cards)?;
    let scope = scope(&state, &principal).await?;
    Ok(Json(Page {
        data: card_views(&state, &scope.cards).await?,
        next_cursor: None,
    }))
}

pub async fn get_card(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<CardView>> {
    require(&principal, Resource::Cards)?;
    let scope = scope(&state, &principal).await?;
    let card = scope
        .card(&id)
        .ok_or_else(|| Problem::not_found(format!("no card {id:?} that you may see")))?;
    let mut views = card_views(&state, std::slice::from_ref(card)).await?;
    views
        .pop()
        .map(Json)
        .ok_or_else(|| Problem::not_found(format!("no card {id:?} that you may see")))
}

pub async fn list_api_keys(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> ApiResult<Json<Page<ApiKeyView>>> {
    require(&principal, Resource::ApiKeys)?;
    let keys = state.store.api_keys_of(&principal.user.id).await?;
    Ok(Json(Page {
        data: keys.iter().map(ApiKeyView::from).collect(),
        next_cursor: None,
    }))
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
}

pub async fn create_api_key(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    body: Bytes,
) -> ApiResult<Response> {
    require(&principal, Resource::ApiKeys)?;
    let request: NewApiKey = serde_json::from_slice(&body).map_err(|error| {
        Problem::bad_request(format!(
            "the body must be JSON like {{\"name\": \"reporting\"}}: {error}"
        ))
    })?;
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > MAX_KEY_NAME_CHARS {
        return Err(Problem::bad_request(format!(
            "`name` must have 1 to {MAX_KEY_NAME_CHARS} characters; it tells your keys apart"
        )));
    }
    let (issued, digest) =
        store::accounts::new_api_key(&principal.user.id, name, state.now_seconds());
    state.store.put_api_key(issued.key.clone(), digest).await?;
    let tenant = crate::audit::tenant_label(&principal.user.tenant);
    state
        .audit(
            &principal.user,
            "api_key.create",
            &format!("api_key:{}", issued.key.id),
            name,
            tenant,
        )
        .await?;
    let created = CreatedApiKey {
        key: ApiKeyView::from(&issued.key),
        secret: issued.secret,
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub async fn revoke_api_key(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require(&principal, Resource::ApiKeys)?;
    if state
        .store
        .revoke_api_key(&principal.user.id, &id, state.now_seconds())
        .await?
    {
        let tenant = crate::audit::tenant_label(&principal.user.tenant);
        state
            .audit(
                &principal.user,
                "api_key.revoke",
                &format!("api_key:{id}"),
                "",
                tenant,
            )
            .await?;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found(format!("you have no API key {id:?}")))
    }
}

/// Most deliveries a log answer lists.
pub const MAX_DELIVERIES_LISTED: i64 = 100;

/// A subscription of the caller's tenant (with its owner's user name), or 404.
async fn own_webhook(
    state: &ApiState,
    principal: &Principal,
    id: &str,
) -> ApiResult<(store::webhooks::Subscription, String)> {
    let not_found = || Problem::not_found(format!("no webhook {id:?} of yours"));
    let subscription = state.store.subscription(id).await?.ok_or_else(not_found)?;
    if subscription.disabled_at.is_some() {
        return Err(not_found());
    }
    let owner = state
        .store
        .user(&subscription.owner_user_id)
        .await?
        .filter(|owner| owner.tenant == principal.user.tenant)
        .ok_or_else(not_found)?;
    Ok((subscription, owner.username))
}

pub async fn list_webhooks(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> ApiResult<Json<Page<WebhookView>>> {
    require(&principal, Resource::ApiKeys)?;
    let mut data = Vec::new();
    for subscription in state.store.active_subscriptions().await? {
        if let Some(owner) = state.store.user(&subscription.owner_user_id).await?
            && owner.tenant == principal.user.tenant
        {
            data.push(WebhookView::new(&subscription, &owner.username));
        }
    }
    Ok(Json(Page {
        data,
        next_cursor: None,
    }))
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    pub url: String,
}

pub async fn create_webhook(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    body: Bytes,
) -> ApiResult<Response> {
    require(&principal, Resource::ApiKeys)?;
    let Some(keys) = &state.webhooks else {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks-off",
            "Webhooks are off",
            "this installation runs without webhooks; ask its operator",
        ));
    };
    let request: NewWebhook = serde_json::from_slice(&body).map_err(|error| {
        Problem::bad_request(format!(
            "the body must be JSON like {{\"url\": \"http://receiver.internal/easypos\"}}: {error}"
        ))
    })?;
    crate::webhooks::HttpUrl::parse(&request.url)
        .map_err(|reason| Problem::bad_request(format!("`url`: {reason}")))?;
    let random: [u8; 6] = rand::random();
    let nonce: [u8; 16] = rand::random();
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let subscription = store::webhooks::Subscription {
        id: format!("wh_{}", hex(&random)),
        owner_user_id: principal.user.id.clone(),
        url: request.url,
        secret_nonce: hex(&nonce),
        created_at: state.now_seconds(),
        disabled_at: None,
    };
    let secret = keys
        .secret(&subscription)
        .map_err(|error| Problem::internal(&error))?;
    state.store.put_subscription(subscription.clone()).await?;
    let tenant = crate::audit::tenant_label(&principal.user.tenant);
    state
        .audit(
            &principal.user,
            "webhook.create",
            &format!("webhook:{}", subscription.id),
            &subscription.url,
            tenant,
        )
        .await?;
    let created = CreatedWebhook {
        webhook: WebhookView::new(&subscription, &principal.user.username),
        secret: crate::webhooks::secret_text(&secret),
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub async fn disable_webhook(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require(&principal, Resource::ApiKeys)?;
    own_webhook(&state, &principal, &id).await?;
    state
        .store
        .disable_subscription(&id, state.now_seconds())
        .await?;
    let tenant = crate::audit::tenant_label(&principal.user.tenant);
    state
        .audit(
            &principal.user,
            "webhook.disable",
            &format!("webhook:{id}"),
            "",
            tenant,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_deliveries(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<Page<DeliveryView>>> {
    require(&principal, Resource::ApiKeys)?;
    own_webhook(&state, &principal, &id).await?;
    let deliveries = state
        .store
        .deliveries_of(&id, MAX_DELIVERIES_LISTED)
        .await?;
    Ok(Json(Page {
        data: deliveries.iter().map(DeliveryView::from).collect(),
        next_cursor: None,
    }))
}

pub async fn redeliver(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((id, delivery_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    require(&principal, Resource::ApiKeys)?;
    own_webhook(&state, &principal, &id).await?;
    let not_found =
        || Problem::not_found(format!("webhook {id:?} has no delivery {delivery_id:?}"));
    let number = delivery_id.parse::<i64>().map_err(|_| not_found())?;
    if !state
        .store
        .redeliver(
            &id,
            number,
            state.now_seconds(),
            crate::webhooks::RETRY_WINDOW_SECONDS,
        )
        .await?
    {
        return Err(not_found());
    }
    let tenant = crate::audit::tenant_label(&principal.user.tenant);
    state
        .audit(
            &principal.user,
            "webhook.redeliver",
            &format!("webhook:{id}"),
            &format!("delivery {number}"),
            tenant,
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"id": delivery_id, "state": "pending"})),
    )
        .into_response())
}

/// Longest reason a freeze may carry.
pub const MAX_FREEZE_REASON_CHARS: usize = 500;

/// Whether the caller may freeze `target` of `scope`: 404 when it is not theirs (or does not
/// exist), 403 for a card frozen by a merchant role. `Ok` carries the tenant label for the
/// audit log: the merchant of a terminal or merchant; the operator's institution for a card.
pub(crate) async fn freezable(
    state: &ApiState,
    principal: &Principal,
    scope: risk::FreezeScope,
    target: &str,
) -> ApiResult<String> {
    require(principal, Resource::Freezes)?;
    let not_found = || Problem::not_found(format!("no {} {target:?} of yours", scope.as_str()));
    match scope {
        risk::FreezeScope::Terminal => {
            let records = self::scope(state, principal).await?;
            records
                .terminals
                .iter()
                .find(|terminal| terminal.id == target)
                .map(|terminal| crate::audit::merchant_label(&terminal.merchant_id))
                .ok_or_else(not_found)
        }
        risk::FreezeScope::Merchant | risk::FreezeScope::Refunds => {
            let records = self::scope(state, principal).await?;
            records
                .merchants
                .iter()
                .find(|merchant| merchant.id == target)
                .map(|merchant| crate::audit::merchant_label(&merchant.id))
                .ok_or_else(not_found)
        }
        risk::FreezeScope::Card => {
            if principal.user.role != store::accounts::Role::PlatformOperator {
                return Err(Problem::forbidden(
                    "only the acquirer's operators freeze cards; ask them, or the card's issuer",
                ));
            }
            let directory = state.store.load_directory().await?;
            directory
                .cards
                .iter()
                .find(|card| card.id == target)
                .map(|_| crate::audit::tenant_label(&principal.user.tenant))
                .ok_or_else(not_found)
        }
    }
}

fn freeze_scope(text: &str) -> ApiResult<risk::FreezeScope> {
    risk::FreezeScope::parse(text).ok_or_else(|| {
        Problem::not_found(format!(
            "no freeze scope {text:?}; use terminal, merchant, refunds or card"
        ))
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFreeze {
    reason: String,
}

/// The freezes the caller may see: an operator's acquirer's terminals and merchants and every
/// card; a merchant's own.
pub async fn list_freezes(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> ApiResult<Json<Page<FreezeView>>> {
    require(&principal, Resource::Freezes)?;
    let records = scope(&state, &principal).await?;
    let operator = principal.user.role == store::accounts::Role::PlatformOperator;
    let data = state
        .store
        .freezes()
        .await?
        .iter()
        .filter(|freeze| match freeze.scope.as_str() {
            "terminal" => records.terminals.iter().any(|t| t.id == freeze.target),
            "merchant" | "refunds" => records.merchants.iter().any(|m| m.id == freeze.target),
            _ => operator,
        })
        .map(FreezeView::new)
        .collect();
    Ok(Json(Page {
        data,
        next_cursor: None,
    }))
}

/// Freezes a terminal, merchant or card: its next authorization is declined (58, or 62 for a
/// card). Freezing again replaces the reason.
pub async fn freeze(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((scope_text, target)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<FreezeView>> {
    // The scope and the caller's right to it first: a 404 or 403 before a 400 for the body.
    freezable(&state, &principal, freeze_scope(&scope_text)?, &target).await?;
    let new: NewFreeze = serde_json::from_slice(&body).map_err(|error| {
        Problem::bad_request(format!("the body must be {{\"reason\": \"…\"}}: {error}"))
    })?;
    let freeze = put_freeze(&state, &principal, &scope_text, &target, &new.reason).await?;
    Ok(Json(FreezeView::new(&freeze)))
}

/// Freezes `target` of `scope_text` for `reason`, if the caller may: in the store and the
/// host's memory together, and in the audit log. The API's route and the console's emergency
/// page.
pub async fn put_freeze(
    state: &ApiState,
    principal: &Principal,
    scope_text: &str,
    target: &str,
    reason: &str,
) -> ApiResult<store::freezes::Freeze> {
    let scope = freeze_scope(scope_text)?;
    let tenant = freezable(state, principal, scope, target).await?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_FREEZE_REASON_CHARS {
        return Err(Problem::bad_request(format!(
            "reason: say why, in 1 to {MAX_FREEZE_REASON_CHARS} characters"
        )));
    }
    let freeze = store::freezes::Freeze {
        scope: scope.as_str().to_owned(),
        target: target.to_owned(),
        reason: reason.to_owned(),
        frozen_by: principal.user.username.clone(),
        frozen_at: state.now_seconds(),
    };
    state.store.put_freeze(freeze.clone()).await?;
    state.freezes.set(scope, target, true);
    tracing::warn!(scope = scope.as_str(), %target, by = %principal.user.username, "frozen");
    state
        .audit(
            &principal.user,
            "freeze.put",
            &format!("{}:{target}", scope.as_str()),
            reason,
            tenant,
        )
        .await?;
    Ok(freeze)
}

/// Lifts a freeze (204 whether or not there was one: thawing is idempotent).
pub async fn thaw(
    State(state): State<ApiState>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path((scope_text, target)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    lift_freeze(&state, &principal, &scope_text, &target).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts the freeze of `target` of `scope_text`, if the caller may (and records it when
/// there was one).
pub async fn lift_freeze(
    state: &ApiState,
    principal: &Principal,
    scope_text: &str,
    target: &str,
) -> ApiResult<()> {
    let scope = freeze_scope(scope_text)?;
    let tenant = freezable(state, principal, scope, target).await?;
    let existed = state.store.delete_freeze(scope.as_str(), target).await?;
    state.freezes.set(scope, target, false);
    tracing::warn!(scope = scope.as_str(), %target, by = %principal.user.username, "thawed");
    if existed {
        state
            .audit(
                &principal.user,
                "freeze.delete",
                &format!("{}:{target}", scope.as_str()),
                "",
                tenant,
            )
            .await?;
    }
    Ok(())
}
