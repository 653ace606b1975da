//! A terminal's parameters after activation: the acquirer's operators change them (merchant
//! name and city on the receipt, host address, contactless CVM limit, languages, payment
//! methods), each change moves the terminal's parameter version on, and the host asks the
//! terminal to download the new set at its next sign-on (`acquirer::parameters`).
//!
//! A terminal nobody changed has version 1: the platform's defaults (its merchant's name and
//! city, the settings' host and CVM limit, both languages, every payment method), which is
//! what its activation brought. A change is kept as the fields it overrides, in
//! `terminal_parameters`, with its version; one conditional write, so two operators never both
//! win.

use crate::service::{Onboarding, OnboardingError};
use acquirer::parameters::TerminalParameters;
use api::access::Principal;
use store::accounts::{Role, Tenant};
use store::directory::Merchant;
use store::onboarding::{Cell, Kind, Step};

/// The languages a terminal speaks.
pub const LANGUAGES: [&str; 2] = ["zh", "en"];
/// The payment methods an acquirer may allow on a terminal.
pub const PAYMENT_METHODS: [&str; 4] = ["chip", "contactless", "swipe", "qr"];
/// Characters of the merchant name and city: what a 32-column receipt prints on a line or two.
pub const MAX_NAME_CHARS: usize = 40;
/// Characters of a host address (`name:port`).
const MAX_HOST_CHARS: usize = 100;
/// The version of a terminal's parameters before any change.
pub const FIRST_VERSION: u32 = 1;

/// The fields an operator changes; the ones left out keep their value.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contactless_cvm_limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub languages: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_methods: Option<Vec<String>>,
}

impl ParameterChange {
    /// Checks every field given; the error says which and why.
    pub fn check(&self) -> Result<(), OnboardingError> {
        let bad = |message: String| Err(OnboardingError::BadRequest(message));
        for (field, value) in [
            ("merchant_name", &self.merchant_name),
            ("merchant_city", &self.merchant_city),
        ] {
            if let Some(value) = value {
                let chars = value.trim().chars().count();
                if chars == 0 || chars > MAX_NAME_CHARS || value.chars().any(char::is_control) {
                    return bad(format!(
                        "{field} must have 1 to {MAX_NAME_CHARS} characters and no control characters"
                    ));
                }
            }
        }
        if let Some(host) = &self.host
            && !is_host_address(host)
        {
            return bad("host must be `name:port` (port 1 to 65535), like 10.0.0.5:8583".into());
        }
        if let Some(limit) = &self.contactless_cvm_limit
            && !is_amount(limit)
        {
            return bad(
                "contactless_cvm_limit must be an amount in yuan with two decimals, like 300.00"
                    .into(),
            );
        }
        if let Some(languages) = &self.languages {
            check_list("languages", languages, &LANGUAGES)?;
        }
        if let Some(methods) = &self.payment_methods {
            check_list("payment_methods", methods, &PAYMENT_METHODS)?;
        }
        Ok(())
    }

    /// `self` with the fields of `later` given over it.
    fn then(mut self, later: &ParameterChange) -> ParameterChange {
        let later = later.clone();
        self.merchant_name = later.merchant_name.or(self.merchant_name);
        self.merchant_city = later.merchant_city.or(self.merchant_city);
        self.host = later.host.or(self.host);
        self.contactless_cvm_limit = later.contactless_cvm_limit.or(self.contactless_cvm_limit);
        self.languages = later.languages.or(self.languages);
        self.payment_methods = later.payment_methods.or(self.payment_methods);
        self
    }
}

fn check_list(field: &str, values: &[String], allowed: &[&str]) -> Result<(), OnboardingError> {
    let unique = values
        .iter()
        .enumerate()
        .all(|(index, value)| !values[..index].contains(value));
    if values.is_empty() || !unique || values.iter().any(|v| !allowed.contains(&v.as_str())) {
        return Err(OnboardingError::BadRequest(format!(
            "{field} must list one or more of {}, each once",
            allowed.join(", ")
        )));
    }
    Ok(())
}

/// `name:port`, the name without spaces, the port 1 to 65535.
fn is_host_address(text: &str) -> bool {
    let Some((name, port)) = text.rsplit_once(':') else {
        return false;
    };
    text.chars().count() <= MAX_HOST_CHARS
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
        && port.parse::<u16>().is_ok_and(|port| port > 0)
}

/// Up to 6 digits of yuan and exactly 2 of fen: `300.00`.
fn is_amount(text: &str) -> bool {
    let Some((yuan, fen)) = text.split_once('.') else {
        return false;
    };
    (1..=6).contains(&yuan.len())
        && fen.len() == 2
        && yuan.bytes().chain(fen.bytes()).all(|b| b.is_ascii_digit())
}

impl Onboarding {
    /// The defaults of a terminal of `merchant`, overridden by `change`, at `version`.
    fn parameter_set(
        &self,
        merchant: &Merchant,
        change: &ParameterChange,
        version: u32,
    ) -> TerminalParameters {
        let owned = |values: &[&str]| values.iter().map(|v| (*v).to_owned()).collect();
        TerminalParameters {
            version,
            merchant_name: change
                .merchant_name
                .clone()
                .unwrap_or_else(|| merchant.name.clone()),
            merchant_city: change
                .merchant_city
                .clone()
                .unwrap_or_else(|| merchant.city.clone()),
            host: change
                .host
                .clone()
                .unwrap_or_else(|| self.settings.host_address.clone()),
            currency: "CNY".into(),
            contactless_cvm_limit: change
                .contactless_cvm_limit
                .clone()
                .unwrap_or_else(|| self.settings.cvm_limit.clone()),
            languages: change
                .languages
                .clone()
                .unwrap_or_else(|| owned(&LANGUAGES)),
            payment_methods: change
                .payment_methods
                .clone()
                .unwrap_or_else(|| owned(&PAYMENT_METHODS)),
        }
    }

    /// The stored change of terminal `id` and its version (none: version 1, no change).
    async fn stored_change(&self, id: &str) -> Result<(ParameterChange, u32), OnboardingError> {
        let rows = self
            .store
            .onboarding_query(
                "SELECT version, parameters FROM terminal_parameters WHERE terminal_id = $1",
                vec![Cell::text(id)],
                &[Kind::Int, Kind::Text],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok((ParameterChange::default(), FIRST_VERSION));
        };
        let version = row[0]
            .as_int()
            .and_then(|version| u32::try_from(version).ok())
            .ok_or(OnboardingError::Conflict)?;
        let change = row[1]
            .as_text()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default();
        Ok((change, version))
    }

    /// The parameter set terminal `id` should hold now.
    pub(crate) async fn current_parameters(
        &self,
        id: &str,
        merchant: &Merchant,
    ) -> Result<TerminalParameters, OnboardingError> {
        let (change, version) = self.stored_change(id).await?;
        Ok(self.parameter_set(merchant, &change, version))
    }

    async fn merchant_of(&self, merchant_id: &str) -> Result<Merchant, OnboardingError> {
        self.store
            .load_directory()
            .await?
            .merchants
            .into_iter()
            .find(|merchant| merchant.id == merchant_id)
            .ok_or(OnboardingError::UnknownTerminal)
    }

    /// The parameters of terminal `id`, if `principal` may see the terminal.
    pub async fn parameters(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<TerminalParameters, OnboardingError> {
        let details = self.terminal(principal, id).await?;
        let merchant = self.merchant_of(&details.merchant_id).await?;
        self.current_parameters(id, &merchant).await
    }

    /// Changes terminal `id`'s parameters (the acquirer's operators only: a host address is
    /// where the terminal sends card data). The new set has the next version; the host asks
    /// the terminal to download it at its next sign-on.
    pub async fn change_parameters(
        &self,
        principal: &Principal,
        id: &str,
        change: &ParameterChange,
    ) -> Result<TerminalParameters, OnboardingError> {
        let details = self.terminal(principal, id).await?;
        let operator = matches!(
            (&principal.user.tenant, principal.user.role),
            (Tenant::Institution(institution), Role::PlatformOperator)
                if *institution == self.settings.acquirer
        );
        if !operator {
            return Err(OnboardingError::Forbidden(
                "only the acquirer's operators change a terminal's parameters",
            ));
        }
        if details.status == crate::terminals::TerminalStatus::Retired {
            return Err(OnboardingError::TerminalStatus("retired".into()));
        }
        change.check()?;
        let merchant = self.merchant_of(&details.merchant_id).await?;
        let (stored, version) = self.stored_change(id).await?;
        let merged = stored.then(change);
        let next = version + 1;
        let parameters = self.parameter_set(&merchant, &merged, next);
        parameters
            .encode()
            .map_err(|error| OnboardingError::BadRequest(error.to_string()))?;
        let text = serde_json::to_string(&merged)
            .map_err(|error| OnboardingError::BadRequest(error.to_string()))?;
        let now = self.now();
        let by = principal.user.id.clone();
        let step = if version == FIRST_VERSION {
            Step::new(
                "INSERT INTO terminal_parameters (terminal_id, version, parameters, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5)",
                vec![
                    Cell::text(id),
                    Cell::int(i64::from(next)),
                    Cell::text(&text),
                    Cell::text(&by),
                    Cell::int(now),
                ],
            )
        } else {
            Step::new(
                "UPDATE terminal_parameters SET version = $2, parameters = $3, updated_by = $4, updated_at = $5 WHERE terminal_id = $1 AND version = $6",
                vec![
                    Cell::text(id),
                    Cell::int(i64::from(next)),
                    Cell::text(&text),
                    Cell::text(&by),
                    Cell::int(now),
                    Cell::int(i64::from(version)),
                ],
            )
        };
        if !self
            .store
            .onboarding_execute(
                std::iter::once(step.expect_one())
                    .chain(store::host_changes::steps(id, now))
                    .collect(),
            )
            .await?
        {
            return Err(OnboardingError::Conflict);
        }
        self.host.parameters_changed(id, &parameters);
        tracing::info!(terminal = id, version = next, by = %by, "terminal parameters changed");
        Ok(parameters)
    }

    /// Tells the host every provisioned terminal's parameter set (at start).
    pub async fn publish_parameters(&self) -> Result<usize, OnboardingError> {
        let directory = self.store.load_directory().await?;
        let ids = self
            .store
            .onboarding_query(
                "SELECT terminal_id FROM terminal_details ORDER BY terminal_id",
                Vec::new(),
                &[Kind::Text],
            )
            .await?;
        let mut published = 0;
        for id in ids.iter().filter_map(|row| row[0].as_text()) {
            let merchant = directory
                .terminals
                .iter()
                .find(|terminal| terminal.id == id)
                .and_then(|terminal| {
                    directory
                        .merchants
                        .iter()
                        .find(|merchant| merchant.id == terminal.merchant_id)
                });
            if let Some(merchant) = merchant {
                let parameters = self.current_parameters(id, merchant).await?;
                self.host.parameters_changed(id, &parameters);
                published += 1;
            }
        }
        Ok(published)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(json: serde_json::Value) -> ParameterChange {
        serde_json::from_value(json).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn good_changes_pass_and_each_bad_value_is_refused() {
        let good = change(serde_json::json!({
            "merchant_name": "静安茶馆", "merchant_city": "Shanghai", "host": "pos.example.cn:8583",
            "contactless_cvm_limit": "1000.00", "languages": ["en", "zh"], "payment_methods": ["chip"],
        }));
        assert!(good.check().is_ok());
        for bad in [
            serde_json::json!({"merchant_name": ""}),
            serde_json::json!({"merchant_name": "x".repeat(41)}),
            serde_json::json!({"merchant_city": "a\nb"}),
            serde_json::json!({"host": "10.0.0.1"}),
            serde_json::json!({"host": "10.0.0.1:0"}),
            serde_json::json!({"host": "evil host:8583"}),
            serde_json::json!({"contactless_cvm_limit": "300"}),
            serde_json::json!({"contactless_cvm_limit": "-1.00"}),
            serde_json::json!({"languages": []}),
            serde_json::json!({"languages": ["fr"]}),
            serde_json::json!({"payment_methods": ["chip", "chip"]}),
            serde_json::json!({"payment_methods": ["cash"]}),
        ] {
            assert!(change(bad.clone()).check().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_later_change_keeps_the_fields_it_leaves_out() {
        let first = change(serde_json::json!({"merchant_name": "A", "host": "h:1"}));
        let merged = first.then(&change(serde_json::json!({"merchant_name": "B"})));
        assert_eq!(merged.merchant_name.as_deref(), Some("B"));
        assert_eq!(merged.host.as_deref(), Some("h:1"));
    }
}
