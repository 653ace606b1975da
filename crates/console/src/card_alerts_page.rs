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
    /// The settings form's and the alerts table's fields (`alert_settings.html`).
    form: SettingsShown,
    message: String,
}

/// What the shared settings form (`alert_settings.html`) shows.
pub(crate) struct SettingsShown {
    pub action: String,
    pub settings: api::alerts::AlertSettings,
    pub recent: Vec<api::alerts::AlertView>,
    pub webhook: bool,
    pub email: bool,
    pub sms: bool,
    pub currency: &'static str,
    /// The threshold in major units (`50.00`).
    pub min_amount: String,
}

impl SettingsShown {
    /// Shows `typed` (the settings and the threshold's text) instead of the stored settings.
    pub fn typed(mut self, typed: Option<(api::alerts::AlertSettings, String)>) -> Self {
        if let Some((settings, min_amount)) = typed {
            let has = |channel: &str| settings.channels.iter().any(|name| name == channel);
            self.webhook = has("webhook");
            self.email = has("email");
            self.sms = has("sms");
            self.settings = settings;
            self.min_amount = min_amount;
        }
        self
    }

    pub fn new(
        action: String,
        settings: api::alerts::AlertSettings,
        recent: Vec<api::alerts::AlertView>,
        currency: money::Currency,
    ) -> Self {
        let has = |channel: &str| settings.channels.iter().any(|name| name == channel);
        SettingsShown {
            action,
            webhook: has("webhook"),
            email: has("email"),
            sms: has("sms"),
            currency: currency.alpha(),
            min_amount: money::Amount::new(settings.min_amount_minor, currency).format_major(),
            settings,
            recent,
        }
    }
}

/// The card's page; `typed` (the settings and the threshold as typed) shows a refused form
/// as the user filled it, not as stored.
async fn page(
    console: &Console,
    visit: Visit,
    id: &str,
    message: String,
    status: StatusCode,
    typed: Option<(api::alerts::AlertSettings, String)>,
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
    let form = SettingsShown::new(
        format!("/console/cards/{}/alerts", alerts.card_id),
        alerts.settings.clone(),
        alerts.recent.clone(),
        card.currency,
    )
    .typed(typed);
    render(
        &CardAlertsPage {
            chrome: visit.chrome,
            alerts,
            form,
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
        Ok(visit) => page(&console, visit, &id, String::new(), StatusCode::OK, None).await,
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
pub struct SettingsForm {
    pub(crate) csrf: String,
    #[serde(default)]
    webhook: Option<String>,
    #[serde(default)]
    email_channel: Option<String>,
    #[serde(default)]
    sms: Option<String>,
    /// The threshold in major units (`50.00`); empty: 0.
    #[serde(default)]
    min_amount: String,
    #[serde(default)]
    declines_only: Option<String>,
    #[serde(default)]
    webhook_url: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
}

impl SettingsForm {
    /// The settings as typed (the threshold as 0) and the threshold's text: what a refused
    /// form shows again.
    pub(crate) fn typed(&self) -> (api::alerts::AlertSettings, String) {
        let channels = [
            ("webhook", self.webhook.is_some()),
            ("email", self.email_channel.is_some()),
            ("sms", self.sms.is_some()),
        ]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| (*name).to_owned())
        .collect();
        let optional = |text: &str| Some(text.to_owned()).filter(|text| !text.trim().is_empty());
        let settings = api::alerts::AlertSettings {
            channels,
            min_amount_minor: 0,
            declines_only: self.declines_only.is_some(),
            webhook_url: optional(&self.webhook_url),
            email: optional(&self.email),
            phone: optional(&self.phone),
        };
        (settings, self.min_amount.clone())
    }

    /// The settings the form asks for, the threshold read in `currency`'s major units; `Err`
    /// is what to tell the user.
    pub(crate) fn settings(
        &self,
        currency: money::Currency,
        t: crate::i18n::Tr,
    ) -> Result<api::alerts::AlertSettings, String> {
        let min_amount_minor = match self.min_amount.trim() {
            "" => 0,
            text => money::Amount::parse(text, currency)
                .map(money::Amount::minor)
                .map_err(|_| format!("{text:?}: {}", t.get("alerts-bad-amount")))?,
        };
        let (settings, _) = self.typed();
        Ok(api::alerts::AlertSettings {
            min_amount_minor,
            ..settings
        })
    }
}

/// What the page says after a save: the webhook's new secret, or that it is saved.
pub(crate) fn saved_message(t: crate::i18n::Tr, webhook_secret: Option<String>) -> String {
    match webhook_secret {
        Some(secret) => format!("{} {secret}", t.get("alerts-secret")),
        None => t.get("alerts-saved"),
    }
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
    let typed = Some(form.typed());
    let settings = match form.settings(card.currency, visit.chrome.t) {
        Ok(settings) => settings,
        Err(message) => {
            return page(
                &console,
                visit,
                &id,
                message,
                StatusCode::BAD_REQUEST,
                typed,
            )
            .await;
        }
    };
    match api::alerts::save_settings(&console.api, &principal, &card, settings).await {
        Ok(saved) => {
            let message = saved_message(visit.chrome.t, saved.webhook_secret);
            page(&console, visit, &id, message, StatusCode::OK, None).await
        }
        Err(problem) => {
            let status = problem.status_code();
            page(&console, visit, &id, problem.detail, status, typed).await
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
            page(&console, visit, &id, problem.detail, status, None).await
        }
    }
}
