//! The rules' configuration: TOML in, checked [`Rule`]s out. Every refusal names the setting
//! to fix (`rule[2] "card-velocity": window_secs ...`), as the rest of easypos's configuration
//! does.

use crate::{Action, ResponseCode2};
use money::Currency;
use serde::Deserialize;

/// Rules in one configuration. Each is evaluated for every authorization, so their number is
/// the engine's cost per authorization.
pub const MAX_RULES: usize = 64;
/// The longest window a rule may look back: two weeks keeps per-key memory small and covers
/// "recent history".
pub const MAX_WINDOW_SECS: u64 = 14 * 24 * 3600;
/// Events kept per card, terminal or merchant window (see `state.rs`); a count limit above it
/// could never be reached, so configuration refuses one.
pub const MAX_EVENTS_PER_KEY: usize = 256;

/// Why a configuration was refused, naming the setting.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("risk rules: {0}")]
    Toml(String),
    #[error("risk rules: `{setting}`: {reason}")]
    Setting { setting: String, reason: String },
}

/// A checked configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The acquirer's country's currency: a sale in another one is cross-border.
    pub home_currency: Currency,
    /// Minutes east of UTC of the merchants' local time, for business hours.
    pub utc_offset_minutes: i32,
    /// When the fired rules' scores add up to this, the authorization is declined with
    /// `decline_code` even if no single rule declines.
    pub decline_score: Option<u32>,
    pub decline_code: ResponseCode2,
    pub rules: Vec<Rule>,
    /// The insider alerts' thresholds (`[insider]`; its business hours in the engine's local
    /// time).
    pub insider: crate::insider::InsiderRules,
}

/// One rule: what it looks at, and what happens when it fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub check: Check,
    pub action: Action,
    pub score: u32,
}

/// Which card, terminal or merchant a velocity rule counts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Card,
    Terminal,
    Merchant,
}

/// What a rule looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// More than `max_count` authorizations, or more than `max_amount_minor` in total, within
    /// the window (this one included).
    Velocity {
        scope: Scope,
        window_secs: u64,
        max_count: Option<u32>,
        max_amount_minor: Option<i64>,
    },
    /// An amount above `factor_percent` % of the card's average approved amount, once the card
    /// has `min_history` approvals in the window, and at least `min_amount_minor`.
    AmountAnomaly {
        window_secs: u64,
        min_history: u32,
        factor_percent: u32,
        min_amount_minor: i64,
    },
    /// At one terminal, `distinct_cards` or more cards within the window that made small
    /// authorizations (at most `small_amount_minor`) or were declined.
    CardTesting {
        window_secs: u64,
        distinct_cards: u32,
        small_amount_minor: i64,
    },
    /// A card first seen less than `window_secs` ago, for `min_amount_minor` or more.
    NewCard {
        window_secs: u64,
        min_amount_minor: i64,
    },
    /// Outside `open`..`close` (minutes of the local day; a span past midnight when open >
    /// close).
    BusinessHours { open: u16, close: u16 },
    /// The merchant's category is one of these.
    Mcc { mccs: Vec<u16> },
    /// The sale's currency is not the home currency, or not the card's.
    CrossBorder,
    /// A chip card read by its magnetic stripe, or a terminal saying fallback.
    Fallback,
    /// `max_failures` or more wrong PINs on the card within the window.
    PinFailures { window_secs: u64, max_failures: u32 },
    /// A refund to a card that made no approved sale at the merchant, of at least its amount,
    /// within the window.
    RefundWithoutSale { window_secs: u64 },
}

impl Check {
    /// How far back this check looks, in seconds.
    pub fn window_secs(&self) -> u64 {
        match self {
            Check::Velocity { window_secs, .. }
            | Check::AmountAnomaly { window_secs, .. }
            | Check::CardTesting { window_secs, .. }
            | Check::NewCard { window_secs, .. }
            | Check::PinFailures { window_secs, .. }
            | Check::RefundWithoutSale { window_secs } => *window_secs,
            _ => 0,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    engine: RawEngine,
    #[serde(default)]
    rule: Vec<RawRule>,
    #[serde(default)]
    insider: RawInsider,
}

/// `[insider]`: the insider alerts' thresholds (docs/risk.md#insider-alerts); each left out
/// keeps its default.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawInsider {
    paid_window_secs: Option<i64>,
    spike_window_secs: Option<i64>,
    spike_max: Option<usize>,
    quick_void_secs: Option<i64>,
    quick_void_max: Option<usize>,
    open: Option<String>,
    close: Option<String>,
}

/// The longest an insider window may look back: the refund rule's memory of paid cards.
pub const MAX_INSIDER_WINDOW_SECS: i64 = 90 * 24 * 3600;

fn insider_rules(
    raw: RawInsider,
    utc_offset_minutes: i32,
) -> Result<crate::insider::InsiderRules, ConfigError> {
    use crate::insider::{InsiderRules, MAX_EVENTS_PER_OPERATOR};
    let defaults = InsiderRules::default();
    let window = |name: &str, value: Option<i64>, default: i64| match value {
        None => Ok(default),
        Some(secs) if (1..=MAX_INSIDER_WINDOW_SECS).contains(&secs) => Ok(secs),
        Some(_) => Err(setting(
            &format!("insider.{name}"),
            &format!("1 to {MAX_INSIDER_WINDOW_SECS} seconds"),
        )),
    };
    let count = |name: &str, value: Option<usize>, default: usize| match value {
        None => Ok(default),
        // A count the operator's memory cannot reach would never fire.
        Some(count) if (1..MAX_EVENTS_PER_OPERATOR).contains(&count) => Ok(count),
        Some(_) => Err(setting(
            &format!("insider.{name}"),
            &format!("1 to {}", MAX_EVENTS_PER_OPERATOR - 1),
        )),
    };
    let minute = |name: &str, value: Option<&str>, default: u16| match value {
        None => Ok(default),
        Some(text) => clock(Some(text)).ok_or_else(|| setting(&format!("insider.{name}"), "HH:MM")),
    };
    Ok(InsiderRules {
        paid_window_secs: window(
            "paid_window_secs",
            raw.paid_window_secs,
            defaults.paid_window_secs,
        )?,
        spike_window_secs: window(
            "spike_window_secs",
            raw.spike_window_secs,
            defaults.spike_window_secs,
        )?,
        spike_max: count("spike_max", raw.spike_max, defaults.spike_max)?,
        quick_void_secs: window(
            "quick_void_secs",
            raw.quick_void_secs,
            defaults.quick_void_secs,
        )?,
        quick_void_max: count(
            "quick_void_max",
            raw.quick_void_max,
            defaults.quick_void_max,
        )?,
        open_minute: minute("open", raw.open.as_deref(), defaults.open_minute)?,
        close_minute: minute("close", raw.close.as_deref(), defaults.close_minute)?,
        utc_offset_minutes,
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    home_currency: Option<String>,
    utc_offset_minutes: Option<i32>,
    decline_score: Option<u32>,
    decline_code: Option<String>,
}

/// Every setting any rule kind takes; which ones a kind needs is checked in [`check`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    kind: String,
    action: String,
    response_code: Option<String>,
    #[serde(default)]
    score: u32,
    scope: Option<Scope>,
    window_secs: Option<u64>,
    max_count: Option<u32>,
    max_amount_minor: Option<i64>,
    min_history: Option<u32>,
    factor_percent: Option<u32>,
    min_amount_minor: Option<i64>,
    distinct_cards: Option<u32>,
    small_amount_minor: Option<i64>,
    open: Option<String>,
    close: Option<String>,
    mccs: Option<Vec<String>>,
    max_failures: Option<u32>,
    /// `false` keeps a rule in the file (and its version history) without evaluating it.
    enabled: Option<bool>,
}

impl Config {
    /// Parses and checks a rules file.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|error| ConfigError::Toml(error.to_string()))?;
        let home_currency = match raw.engine.home_currency.as_deref() {
            None => Currency::parse("CNY"),
            Some(code) => Currency::parse(code),
        }
        .map_err(|_| setting("engine.home_currency", "not an ISO 4217 currency"))?;
        let utc_offset_minutes = raw.engine.utc_offset_minutes.unwrap_or(480);
        if !(-14 * 60..=14 * 60).contains(&utc_offset_minutes) {
            return Err(setting(
                "engine.utc_offset_minutes",
                "must be within -840..=840",
            ));
        }
        let decline_code = ResponseCode2::parse(raw.engine.decline_code.as_deref().unwrap_or("59"))
            .ok_or_else(|| setting("engine.decline_code", "must be two letters or digits"))?;
        if decline_code.is_approved() {
            return Err(setting("engine.decline_code", "00 does not decline"));
        }
        if raw.rule.len() > MAX_RULES {
            return Err(setting("rule", &format!("at most {MAX_RULES} rules")));
        }
        let mut rules: Vec<Rule> = Vec::with_capacity(raw.rule.len());
        // Disabled rules are checked too (so that enabling one later cannot fail), and keep
        // their names, but are not evaluated.
        let mut names: Vec<String> = Vec::with_capacity(raw.rule.len());
        for (index, raw) in raw.rule.into_iter().enumerate() {
            let enabled = raw.enabled.unwrap_or(true);
            let rule = check(index, raw)?;
            if names.contains(&rule.name) {
                return Err(setting(
                    &format!("rule[{index}].name"),
                    &format!("\"{}\" is used by another rule", rule.name),
                ));
            }
            names.push(rule.name.clone());
            if enabled {
                rules.push(rule);
            }
        }
        Ok(Config {
            home_currency,
            utc_offset_minutes,
            decline_score: raw.engine.decline_score,
            decline_code,
            rules,
            insider: insider_rules(raw.insider, utc_offset_minutes)?,
        })
    }

    /// How far back any rule looks: what the engine must remember.
    pub fn retention_secs(&self) -> u64 {
        self.rules
            .iter()
            .map(|rule| rule.check.window_secs())
            .max()
            .unwrap_or(0)
    }
}

fn setting(name: &str, reason: &str) -> ConfigError {
    ConfigError::Setting {
        setting: name.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Turns one `[[rule]]` into a [`Rule`], refusing missing, misplaced and out-of-range settings.
fn check(index: usize, raw: RawRule) -> Result<Rule, ConfigError> {
    let at = |field: &str| format!("rule[{index}].{field}");
    let name = raw.name.trim().to_owned();
    if name.is_empty() || name.len() > 64 {
        return Err(setting(&at("name"), "1 to 64 characters"));
    }
    let response_code = raw
        .response_code
        .as_deref()
        .map(|code| {
            ResponseCode2::parse(code)
                .filter(|code| !code.is_approved())
                .ok_or_else(|| setting(&at("response_code"), "two letters or digits, not 00"))
        })
        .transpose()?;
    let action = match (raw.action.as_str(), response_code) {
        ("decline", Some(code)) => Action::Decline(code),
        ("decline", None) => {
            return Err(setting(
                &at("response_code"),
                "a declining rule needs its response code",
            ));
        }
        (_, Some(_)) => {
            return Err(setting(
                &at("response_code"),
                "only a declining rule has a response code",
            ));
        }
        ("review", None) => Action::Review,
        ("alert", None) => Action::Alert,
        ("approve", None) => Action::Approve,
        _ => {
            return Err(setting(
                &at("action"),
                "one of approve, review, alert, decline",
            ));
        }
    };

    // Settings each kind takes; any other one given is a mistake worth refusing.
    let given = [
        ("scope", raw.scope.is_some()),
        ("window_secs", raw.window_secs.is_some()),
        ("max_count", raw.max_count.is_some()),
        ("max_amount_minor", raw.max_amount_minor.is_some()),
        ("min_history", raw.min_history.is_some()),
        ("factor_percent", raw.factor_percent.is_some()),
        ("min_amount_minor", raw.min_amount_minor.is_some()),
        ("distinct_cards", raw.distinct_cards.is_some()),
        ("small_amount_minor", raw.small_amount_minor.is_some()),
        ("open", raw.open.is_some()),
        ("close", raw.close.is_some()),
        ("mccs", raw.mccs.is_some()),
        ("max_failures", raw.max_failures.is_some()),
    ];
    let takes: &[&str] = match raw.kind.as_str() {
        "velocity" => &["scope", "window_secs", "max_count", "max_amount_minor"],
        "amount_anomaly" => &[
            "window_secs",
            "min_history",
            "factor_percent",
            "min_amount_minor",
        ],
        "card_testing" => &["window_secs", "distinct_cards", "small_amount_minor"],
        "new_card" => &["window_secs", "min_amount_minor"],
        "business_hours" => &["open", "close"],
        "mcc" => &["mccs"],
        "cross_border" | "fallback" => &[],
        "pin_failures" => &["window_secs", "max_failures"],
        "refund_without_sale" => &["window_secs"],
        _ => {
            return Err(setting(
                &at("kind"),
                "one of velocity, amount_anomaly, card_testing, new_card, business_hours, mcc, \
                 cross_border, fallback, pin_failures, refund_without_sale",
            ));
        }
    };
    if let Some((field, _)) = given
        .iter()
        .find(|(field, present)| *present && !takes.contains(field))
    {
        return Err(setting(
            &at(field),
            &format!("a {} rule does not take it", raw.kind),
        ));
    }
    let required = |field: &str| setting(&at(field), "required for this kind of rule");
    let window = || -> Result<u64, ConfigError> {
        match raw.window_secs {
            None => Err(required("window_secs")),
            Some(secs) if secs == 0 || secs > MAX_WINDOW_SECS => Err(setting(
                &at("window_secs"),
                &format!("1 to {MAX_WINDOW_SECS}"),
            )),
            Some(secs) => Ok(secs),
        }
    };
    let count = |field: &str, value: Option<u32>| -> Result<u32, ConfigError> {
        match value {
            None => Err(required(field)),
            Some(value) if value == 0 || value as usize > MAX_EVENTS_PER_KEY => {
                Err(setting(&at(field), &format!("1 to {MAX_EVENTS_PER_KEY}")))
            }
            Some(value) => Ok(value),
        }
    };
    let minor = |field: &str, value: Option<i64>| -> Result<i64, ConfigError> {
        match value {
            None => Err(required(field)),
            Some(value) if value < 0 => Err(setting(&at(field), "an amount is not negative")),
            Some(value) => Ok(value),
        }
    };
    let check = match raw.kind.as_str() {
        "velocity" => {
            let max_count = raw
                .max_count
                .map(|value| count("max_count", Some(value)))
                .transpose()?;
            let max_amount_minor = raw
                .max_amount_minor
                .map(|value| minor("max_amount_minor", Some(value)))
                .transpose()?;
            if max_count.is_none() && max_amount_minor.is_none() {
                return Err(setting(
                    &at("max_count"),
                    "a velocity rule needs max_count or max_amount_minor",
                ));
            }
            Check::Velocity {
                scope: raw.scope.ok_or_else(|| required("scope"))?,
                window_secs: window()?,
                max_count,
                max_amount_minor,
            }
        }
        "amount_anomaly" => Check::AmountAnomaly {
            window_secs: window()?,
            min_history: count("min_history", raw.min_history)?,
            factor_percent: match raw.factor_percent {
                None => return Err(required("factor_percent")),
                Some(percent) if percent <= 100 || percent > 100_000 => {
                    return Err(setting(&at("factor_percent"), "101 to 100000"));
                }
                Some(percent) => percent,
            },
            min_amount_minor: raw
                .min_amount_minor
                .map(|value| minor("min_amount_minor", Some(value)))
                .transpose()?
                .unwrap_or(0),
        },
        "card_testing" => Check::CardTesting {
            window_secs: window()?,
            distinct_cards: count("distinct_cards", raw.distinct_cards)?,
            small_amount_minor: minor("small_amount_minor", raw.small_amount_minor)?,
        },
        "new_card" => Check::NewCard {
            window_secs: window()?,
            min_amount_minor: minor("min_amount_minor", raw.min_amount_minor)?,
        },
        "business_hours" => {
            let open = clock(raw.open.as_deref()).ok_or_else(|| setting(&at("open"), "HH:MM"))?;
            let close =
                clock(raw.close.as_deref()).ok_or_else(|| setting(&at("close"), "HH:MM"))?;
            if open == close {
                return Err(setting(&at("close"), "must differ from open"));
            }
            Check::BusinessHours { open, close }
        }
        "mcc" => {
            let mccs = raw
                .mccs
                .unwrap_or_default()
                .iter()
                .map(|mcc| match mcc.parse::<u16>() {
                    Ok(value) if mcc.len() == 4 => Some(value),
                    _ => None,
                })
                .collect::<Option<Vec<u16>>>()
                .filter(|mccs| !mccs.is_empty())
                .ok_or_else(|| setting(&at("mccs"), "a list of 4-digit codes"))?;
            Check::Mcc { mccs }
        }
        "cross_border" => Check::CrossBorder,
        "fallback" => Check::Fallback,
        "pin_failures" => Check::PinFailures {
            window_secs: window()?,
            max_failures: count("max_failures", raw.max_failures)?,
        },
        _ => Check::RefundWithoutSale {
            window_secs: window()?,
        },
    };
    Ok(Rule {
        name,
        check,
        action,
        score: raw.score,
    })
}

/// Minutes since midnight of "HH:MM"; "24:00" is the end of the day.
fn clock(text: Option<&str>) -> Option<u16> {
    let (hours, minutes) = text?.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: u16 = hours.parse().ok()?;
    let minutes: u16 = minutes.parse().ok()?;
    match (hours, minutes) {
        (24, 0) => Some(1440),
        (0..=23, 0..=59) => Some(hours * 60 + minutes),
        _ => None,
    }
}
