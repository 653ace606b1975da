//! A terminal's settings (`terminal.toml`): who it is, where its host is, where it keeps its
//! state, and its parameters (currency, country, timeout, language, contactless CVM limit,
//! fallback). Paths are relative to the configuration file's directory.

use crate::files::{FileError, read_bounded};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the terminal waits for an answer by default: above the host's own 15 s decision
/// limit (`acquirer::ANSWER_WITHIN`), so the host's 96 arrives before the terminal gives up.
pub const DEFAULT_TIMEOUT_MS: u64 = 20_000;
/// The bounds of `timeout_ms`: below 100 ms no host answers; above two minutes the cardholder
/// has left.
pub const TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 100..=120_000;

/// The terminal's language on screen and on receipts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Language {
    #[default]
    #[serde(rename = "en")]
    English,
    #[serde(rename = "zh")]
    Chinese,
}

/// Who checks the supervisor's password before a void or a refund.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SupervisorCheck {
    /// The terminal, against `supervisor_password` in this file.
    #[default]
    Local,
    /// The acquirer host, against the merchant's staff records: the screen asks for the
    /// supervisor's number and password and sends them in field 63 (docs/protocol.md,
    /// "Supervisor password"). For merchants who enrolled their supervisors' terminal
    /// passwords.
    Host,
}

/// Where the terminal master key comes from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MasterKey {
    /// The demo world's published test key for this terminal id (`demo::demo_test_key`);
    /// resolved by the binary, which knows the demo world.
    Demo,
    /// A file holding the key in hex (32 hex digits), mode 0600, loaded at start.
    File(PathBuf),
}

/// How the terminal's PIN and MAC keys are managed (docs/protocol.md "Key schemes").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyScheme {
    /// `master_key` is the terminal master key; each sign-on delivers working keys under it.
    #[default]
    MasterSession,
    /// AES DUKPT (X9.24-3): `master_key` is the PIN pad's initial key (IK) for `initial_ksn`;
    /// every message's keys are derived from it and the message's KSN.
    DukptAes,
    /// TDES DUKPT (X9.24-1:2009): `master_key` is the PIN pad's initial PIN encryption key
    /// (IPEK) for `initial_ksn`; every message's keys are variants of the transaction key of
    /// its KSN.
    DukptTdes,
}

impl KeyScheme {
    /// The scheme's name, as the host's `terminal_sessions.key_scheme` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::MasterSession => acquirer::keys::MASTER_SESSION,
            Self::DukptAes => acquirer::keys::DUKPT_AES,
            Self::DukptTdes => acquirer::keys::DUKPT_TDES,
        }
    }
}

/// `terminal.toml`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalConfig {
    /// Field 41, 8 characters.
    pub terminal_id: String,
    /// Field 42, 15 characters.
    pub merchant_id: String,
    pub merchant_name: String,
    #[serde(default)]
    pub merchant_name_zh: Option<String>,
    pub merchant_city: String,
    /// The acquirer host's ISO 8583 address (`easypos up` prints it).
    pub host: String,
    pub master_key: MasterKey,
    /// `master-session` (the default of files written before AES DUKPT), `dukpt-aes` or
    /// `dukpt-tdes`.
    #[serde(default)]
    pub key_scheme: KeyScheme,
    /// DUKPT: the initial KSN the initial key was loaded with (AES: 24 hex digits; TDES: 20;
    /// counter 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_ksn: Option<String>,
    /// The directory of the terminal's state (keys, counters, batch, receipts).
    pub state_dir: PathBuf,
    /// ISO 4217 alphabetic code of the terminal's currency.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// ISO 3166 numeric country code (9F1A).
    #[serde(default = "default_country")]
    pub country: u16,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub language: Language,
    /// The operator number used when none is given (field 63 of the sign-on).
    #[serde(default = "default_operator")]
    pub operator: String,
    /// Contactless payments up to this amount need no PIN (major units, e.g. "300.00").
    #[serde(default = "default_cvm_limit")]
    pub contactless_cvm_limit: String,
    /// Whether a chip card that cannot be read may be swiped (entry mode 80).
    #[serde(default = "default_true")]
    pub allow_fallback: bool,
    /// The terminal's local time zone, minutes east of UTC (China: 480), for receipts and
    /// the chip's transaction date.
    #[serde(default = "default_utc_offset_minutes")]
    pub utc_offset_minutes: i32,
    /// The operators' password on this terminal's screen (`easypos terminal tui`). A
    /// terminal-local password, as countertop terminals keep one; change it from the default.
    #[serde(default = "default_operator_password")]
    pub operator_password: String,
    /// The supervisor's password, asked for on the screen before a void or a refund (R16).
    #[serde(default = "default_supervisor_password")]
    pub supervisor_password: String,
    /// `local` (the default: `supervisor_password` above) or `host` (the supervisor's number
    /// and own password, checked by the acquirer against the merchant's staff records).
    #[serde(default, skip_serializing_if = "is_local")]
    pub supervisor_check: SupervisorCheck,
    /// Where the screen finds the card simulator's card files ("present a card").
    #[serde(default = "default_cards_dir")]
    pub cards_dir: PathBuf,
    /// The version of the parameters in this file, as the activation brought them (0: set by
    /// hand). The terminal names it at sign-on; parameters the host sent since are kept in
    /// the state and win over this file's (docs/protocol.md, "Parameter download").
    #[serde(default, skip_serializing_if = "is_zero")]
    pub parameters_version: u32,
    /// The payment methods the acquirer allows on this terminal (`chip`, `contactless`,
    /// `swipe`, `qr`); empty: every one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payment_methods: Vec<String>,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

fn default_currency() -> String {
    "CNY".into()
}
fn default_country() -> u16 {
    156
}
fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}
fn default_operator() -> String {
    "01".into()
}
fn default_cvm_limit() -> String {
    "300.00".into()
}
fn default_true() -> bool {
    true
}
fn default_utc_offset_minutes() -> i32 {
    480
}
fn default_operator_password() -> String {
    "0000".into()
}
fn is_local(check: &SupervisorCheck) -> bool {
    *check == SupervisorCheck::Local
}

fn default_supervisor_password() -> String {
    "999999".into()
}
fn default_cards_dir() -> PathBuf {
    PathBuf::from("cards")
}

impl TerminalConfig {
    /// A configuration for terminal `terminal_id` of merchant `merchant_id`, with defaults.
    pub fn new(
        terminal_id: &str,
        merchant_id: &str,
        merchant_name: &str,
        merchant_city: &str,
        host: &str,
    ) -> TerminalConfig {
        TerminalConfig {
            terminal_id: terminal_id.into(),
            merchant_id: merchant_id.into(),
            merchant_name: merchant_name.into(),
            merchant_name_zh: None,
            merchant_city: merchant_city.into(),
            host: host.into(),
            master_key: MasterKey::Demo,
            key_scheme: KeyScheme::MasterSession,
            initial_ksn: None,
            state_dir: PathBuf::from(format!("terminal-{terminal_id}")),
            currency: default_currency(),
            country: default_country(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            language: Language::English,
            operator: default_operator(),
            contactless_cvm_limit: default_cvm_limit(),
            allow_fallback: true,
            utc_offset_minutes: default_utc_offset_minutes(),
            operator_password: default_operator_password(),
            supervisor_password: default_supervisor_password(),
            supervisor_check: SupervisorCheck::Local,
            cards_dir: default_cards_dir(),
            parameters_version: 0,
            payment_methods: Vec::new(),
        }
    }

    /// This configuration with the parameter set the host sent (`None` when the set is not
    /// newer than this file's, or would make the configuration invalid: the reason).
    pub fn with_parameters(
        &self,
        parameters: &acquirer::parameters::TerminalParameters,
    ) -> Result<Option<TerminalConfig>, String> {
        if parameters.version <= self.parameters_version {
            return Ok(None);
        }
        let mut config = self.clone();
        config.merchant_name = parameters.merchant_name.clone();
        // The host's name is the one to print, in every language.
        config.merchant_name_zh = None;
        config.merchant_city = parameters.merchant_city.clone();
        config.host = parameters.host.clone();
        if !parameters.currency.is_empty() {
            config.currency = parameters.currency.clone();
        }
        if !parameters.contactless_cvm_limit.is_empty() {
            config.contactless_cvm_limit = parameters.contactless_cvm_limit.clone();
        }
        match parameters.languages.first().map(String::as_str) {
            Some("zh") => config.language = Language::Chinese,
            Some("en") => config.language = Language::English,
            _ => {}
        }
        config.payment_methods = parameters.payment_methods.clone();
        config.parameters_version = parameters.version;
        config
            .check()
            .map_err(|reason| format!("the host's parameters are not usable: {reason}"))?;
        Ok(Some(config))
    }

    /// Whether the acquirer allows payment method `method` (`chip`, `contactless`, `swipe`,
    /// `qr`) on this terminal.
    pub fn allows(&self, method: &str) -> bool {
        self.payment_methods.is_empty() || self.payment_methods.iter().any(|m| m == method)
    }

    /// Reads `path`; relative paths inside are made relative to its directory. Every value
    /// is checked, and an error names the setting.
    pub fn load(path: &Path) -> Result<TerminalConfig, FileError> {
        let bytes = read_bounded(path)?;
        let text =
            String::from_utf8(bytes).map_err(|_| FileError::content(path, "is not UTF-8 text"))?;
        let mut config: TerminalConfig = toml::from_str(&text)
            .map_err(|error| FileError::content(path, error.message().to_owned()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.state_dir = base.join(&config.state_dir);
        config.cards_dir = base.join(&config.cards_dir);
        if let MasterKey::File(file) = &config.master_key {
            config.master_key = MasterKey::File(base.join(file));
        }
        config
            .check()
            .map_err(|reason| FileError::content(path, reason))?;
        Ok(config)
    }

    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|error| error.to_string())
    }

    /// Checks every setting; the error names it.
    pub fn check(&self) -> Result<(), String> {
        if self.terminal_id.chars().count() != 8 {
            return Err("terminal_id must have 8 characters".into());
        }
        if self.merchant_id.chars().count() != 15 {
            return Err("merchant_id must have 15 characters".into());
        }
        self.currency()?;
        if !TIMEOUT_MS_RANGE.contains(&self.timeout_ms) {
            return Err(format!(
                "timeout_ms must be {} to {}",
                TIMEOUT_MS_RANGE.start(),
                TIMEOUT_MS_RANGE.end()
            ));
        }
        if self.country > 999 {
            return Err("country must be an ISO 3166 numeric code (3 digits)".into());
        }
        self.cvm_limit_minor()?;
        if !(-720..=840).contains(&self.utc_offset_minutes) {
            return Err("utc_offset_minutes must be -720 to 840".into());
        }
        match (self.key_scheme, &self.initial_ksn) {
            (KeyScheme::DukptAes, None) => {
                return Err("key_scheme dukpt-aes needs initial_ksn (24 hex digits)".into());
            }
            (KeyScheme::DukptTdes, None) => {
                return Err("key_scheme dukpt-tdes needs initial_ksn (20 hex digits)".into());
            }
            (KeyScheme::DukptAes, Some(ksn)) => {
                let valid = hex::decode(ksn).is_ok_and(|bytes| {
                    bytes.len() == paycrypto::dukpt::aes::KSN_BYTES && bytes[8..] == [0; 4]
                });
                if !valid {
                    return Err(
                        "initial_ksn must be 24 hex digits ending in a counter of 00000000".into(),
                    );
                }
            }
            (KeyScheme::DukptTdes, Some(ksn)) => {
                let valid = hex::decode(ksn).is_ok_and(|bytes| {
                    paycrypto::dukpt::tdes::Ksn::new(&bytes).is_ok_and(|ksn| ksn.counter() == 0)
                });
                if !valid {
                    return Err(
                        "initial_ksn must be 20 hex digits whose 21-bit counter is 0".into(),
                    );
                }
            }
            (KeyScheme::MasterSession, Some(_)) => {
                return Err("initial_ksn is for key_scheme dukpt-aes or dukpt-tdes only".into());
            }
            (KeyScheme::MasterSession, None) => {}
        }
        if self.host.trim().is_empty() {
            return Err("host must be an address such as 127.0.0.1:8583".into());
        }
        Ok(())
    }

    pub fn currency(&self) -> Result<money::Currency, String> {
        money::Currency::parse(&self.currency).map_err(|_| {
            format!(
                "currency {:?} is not an ISO 4217 code easypos knows",
                self.currency
            )
        })
    }

    /// The contactless CVM limit in minor units.
    pub fn cvm_limit_minor(&self) -> Result<u64, String> {
        let currency = self.currency()?;
        money::Amount::parse(&self.contactless_cvm_limit, currency)
            .ok()
            .and_then(|amount| u64::try_from(amount.minor()).ok())
            .ok_or_else(|| {
                format!(
                    "contactless_cvm_limit {:?} is not an amount",
                    self.contactless_cvm_limit
                )
            })
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Whether `candidate` is the supervisor's password (compared in constant time). The
    /// screen asks for it before a void or a refund, and so does the scripted mode (R16).
    pub fn is_supervisor_password(&self, candidate: &str) -> bool {
        paycrypto::mac::macs_equal(self.supervisor_password.as_bytes(), candidate.as_bytes())
    }

    /// The merchant's name in the terminal's language.
    pub fn merchant_display_name(&self) -> &str {
        match (self.language, &self.merchant_name_zh) {
            (Language::Chinese, Some(name)) => name,
            _ => &self.merchant_name,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_configuration_round_trips_and_its_paths_follow_the_file() {
        let dir = std::env::temp_dir().join(format!("terminal-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = TerminalConfig::new(
            "10000001",
            "898310058120001",
            "Lujiazui Coffee",
            "Shanghai",
            "127.0.0.1:8583",
        );
        config.master_key = MasterKey::File("tmk.key".into());
        let text = config.to_toml().unwrap();
        assert!(text.contains("[master_key]\nfile = \"tmk.key\""), "{text}");
        let path = dir.join("terminal.toml");
        std::fs::write(&path, &text).unwrap();
        let loaded = TerminalConfig::load(&path).unwrap();
        assert_eq!(loaded.master_key, MasterKey::File(dir.join("tmk.key")));
        assert_eq!(loaded.state_dir, dir.join("terminal-10000001"));
        assert_eq!(loaded.cards_dir, dir.join("cards"));
        assert_eq!(loaded.cvm_limit_minor().unwrap(), 30_000);

        std::fs::write(&path, text.replace("timeout_ms = 20000", "timeout_ms = 5")).unwrap();
        let error = TerminalConfig::load(&path).unwrap_err().to_string();
        assert!(error.contains("timeout_ms"), "{error}");
        std::fs::write(&path, format!("unknown = 1\n{text}")).unwrap();
        let error = TerminalConfig::load(&path).unwrap_err().to_string();
        assert!(error.contains("unknown"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_aes_dukpt_terminal_names_its_initial_ksn_and_old_files_stay_master_session() {
        let mut config = TerminalConfig::new(
            "10000003",
            "898310058120001",
            "Lujiazui Coffee",
            "Shanghai",
            "127.0.0.1:8583",
        );
        let text = config.to_toml().unwrap();
        assert!(text.contains("key_scheme = \"master-session\""), "{text}");
        let without: String = text
            .lines()
            .filter(|line| !line.starts_with("key_scheme"))
            .map(|line| format!("{line}\n"))
            .collect();
        let old: TerminalConfig = toml::from_str(&without).unwrap();
        assert_eq!(old.key_scheme, KeyScheme::MasterSession);

        config.key_scheme = KeyScheme::DukptAes;
        assert!(config.check().unwrap_err().contains("initial_ksn"));
        config.initial_ksn = Some("455000011000000300000001".into());
        assert!(config.check().unwrap_err().contains("counter of 00000000"));
        config.initial_ksn = Some("455000011000000300000000".into());
        config.check().unwrap();
        let text = config.to_toml().unwrap();
        assert!(text.contains("key_scheme = \"dukpt-aes\""), "{text}");
        assert_eq!(toml::from_str::<TerminalConfig>(&text).unwrap(), config);
        config.key_scheme = KeyScheme::MasterSession;
        assert!(
            config
                .check()
                .unwrap_err()
                .contains("dukpt-aes or dukpt-tdes only")
        );

        // TDES DUKPT: a 10-byte KSN whose 21-bit counter is 0.
        config.key_scheme = KeyScheme::DukptTdes;
        assert!(config.check().unwrap_err().contains("20 hex digits"));
        config.initial_ksn = Some("FFFF9876543210E00001".into());
        assert!(config.check().unwrap_err().contains("counter is 0"));
        config.initial_ksn = Some("FFFF9876543210E00000".into());
        config.check().unwrap();
        let text = config.to_toml().unwrap();
        assert!(text.contains("key_scheme = \"dukpt-tdes\""), "{text}");
        assert_eq!(toml::from_str::<TerminalConfig>(&text).unwrap(), config);
    }

    #[test]
    fn the_hosts_parameters_apply_only_when_newer_and_usable() {
        let mut config =
            TerminalConfig::new("50000001", "898310058140101", "Old", "Shanghai", "h:1");
        config.parameters_version = 2;
        let mut parameters = acquirer::parameters::TerminalParameters {
            version: 2,
            merchant_name: "New".into(),
            merchant_city: "Beijing".into(),
            host: "10.0.0.5:8583".into(),
            currency: "CNY".into(),
            contactless_cvm_limit: "500.00".into(),
            languages: vec!["zh".into()],
            payment_methods: vec!["chip".into()],
        };
        assert_eq!(
            config.with_parameters(&parameters).unwrap(),
            None,
            "not newer"
        );
        parameters.version = 3;
        let newer = config.with_parameters(&parameters).unwrap().unwrap();
        assert_eq!(newer.merchant_name, "New");
        assert_eq!(newer.host, "10.0.0.5:8583");
        assert_eq!(newer.language, Language::Chinese);
        assert_eq!(newer.parameters_version, 3);
        assert!(newer.allows("chip") && !newer.allows("swipe"));
        assert!(config.allows("swipe"), "no list: every method");
        parameters.contactless_cvm_limit = "lots".into();
        assert!(config.with_parameters(&parameters).is_err());
    }
}
