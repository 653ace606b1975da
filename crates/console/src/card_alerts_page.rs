//! A cardholder's card page (issue 9, R14): one button to freeze or unfreeze the card (its
//! next authorization is declined 62, or passes again), the card's alert channels and
//! thresholds, and its newest alerts. The work is the API's ([`api::alerts`]): the same
//! checks, the same effect on the host, the same audit entries.

use super::{Visit, internal, render};
use crate::Console;
use api::access::{Principal, Resource};
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "card_alerts.html")]
struct CardAlertsPage {
    chrome: super::Chrome,
    alerts: api::alerts::CardAlertsView,
    webhook: bool,
    email: bool,
    sms: bool,
    message: String,
}

fn has(alerts: &api::alerts::CardAlertsView, channel: &str) -> bool {
    alerts.settings.channels.iter().any(|name| name == channel)
}

async fn page(
    console: &Console,
    visit: Visit,
    id: &str,
    message: String,
    status: StatusCode,
) -> Response {
    let principal = Principal {
        user: visit.user.clone(),
    };
    let card = match api::alerts::own_card(&console.api, &principal, id).await {
        Ok(card) => card,
        Err(problem) => {
            let status = problem.status_code();
            return super::error_page(visit.chrome, status);
        }
    };
    let mut alerts = match api::alerts::card_alerts(&console.api, &card).await {
        Ok(alerts) => alerts,
        Err(problem) => return internal(&visit, &problem.detail),
    };
    // A fresh secret shown after saving is carried in the message, not re-derived here.
    alerts.webhook_secret = None;
    render(
        &CardAlertsPage {
            chrome: visit.chrome,
            webhook: has(&alerts, "webhook"),
            email: has(&alerts, "email"),
            sms: has(&alerts, "sms"),
            alerts,
            message,
        },
        status,
    )
}

fn current(id: &str) -> String {
    format!("/console/cards/{id}")
}

pub async fn card(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match console
        .visit(&headers, Some(Resource::Cards), "/console/cards")
        .await
    {
        Ok(visit) => page(&console, visit, &id, String::new(), StatusCode::OK).await,
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
pub struct SettingsForm {
    csrf: String,
    #[serde(default)]
    webhook: Option<String>,
    #[serde(default)]
    email_channel: Option<String>,
    #[serde(default)]
    sms: Option<String>,
    #[serde(default)]
    min_amount_minor: String,
    #[serde(default)]
    declines_only: Option<String>,
    #[serde(default)]
    webhook_url: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
}

pub async fn save(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<SettingsForm>,
) -> Response {
    let visit = match console
        .form_visit(&headers, &form.csrf, Resource::Cards, "/console/cards")
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    let card = match api::alerts::own_card(&console.api, &principal, &id).await {
        Ok(card) => card,
        Err(problem) => {
            let status = problem.status_code();
            return super::error_page(visit.chrome, status);
        }
    };
    let min_amount_minor = match form.min_amount_minor.trim() {
        "" => 0,
        text => match text.parse::<i64>() {
            Ok(value) => value,
            Err(_) => {
                let message = format!("{text:?}: give the threshold in minor units (fen)");
                return page(&console, visit, &id, message, StatusCode::BAD_REQUEST).await;
            }
        },
    };
    let channels = [
        ("webhook", form.webhook.is_some()),
        ("email", form.email_channel.is_some()),
        ("sms", form.sms.is_some()),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(name, _)| (*name).to_owned())
    .collect();
    let optional = |text: String| Some(text).filter(|text| !text.trim().is_empty());
    let settings = api::alerts::AlertSettings {
        channels,
        min_amount_minor,
        declines_only: form.declines_only.is_some(),
        webhook_url: optional(form.webhook_url),
        email: optional(form.email),
        phone: optional(form.phone),
    };
    match api::alerts::save_settings(&console.api, &principal, &card, settings).await {
        Ok(saved) => {
            let message = match saved.webhook_secret {
                Some(secret) => format!("{} {secret}", visit.chrome.t.get("alerts-secret")),
                None => visit.chrome.t.get("alerts-saved"),
            };
            page(&console, visit, &id, message, StatusCode::OK).await
        }
        Err(problem) => {
            let status = problem.status_code();
            page(&console, visit, &id, problem.detail, status).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct FreezeForm {
    csrf: String,
    /// `freeze` or `unfreeze`.
    action: String,
}

pub async fn freeze(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<FreezeForm>,
) -> Response {
    let visit = match console
        .form_visit(&headers, &form.csrf, Resource::Cards, "/console/cards")
        .await
    {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let principal = Principal {
        user: visit.user.clone(),
    };
    let card = match api::alerts::own_card(&console.api, &principal, &id).await {
        Ok(card) => card,
        Err(problem) => {
            let status = problem.status_code();
            return super::error_page(visit.chrome, status);
        }
    };
    let frozen = form.action == "freeze";
    match api::alerts::set_frozen(&console.api, &principal, &card, frozen).await {
        Ok(()) => Redirect::to(&current(&id)).into_response(),
        Err(problem) => {
            let status = problem.status_code();
            page(&console, visit, &id, problem.detail, status).await
        }
    }
}
