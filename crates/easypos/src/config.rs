//! Configuration: defaults, then `easypos.toml` (or `--config FILE`), then `EASYPOS_*`
//! environment variables, then command-line flags. Everything is validated at start, and every
//! error names the setting (and its environment variable) and says what would be right.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use store::Backend;

/// The file read from the working directory when `--config` is not given (optional).
pub const DEFAULT_CONFIG_FILE: &str = "easypos.toml";
pub const DEFAULT_DATA_DIR: &str = "easypos-data";
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8080";
/// Where terminals connect (ISO 8583, `cup-bcd`, 2-byte length + TPDU).
pub const DEFAULT_ISO8583_LISTEN: &str = "127.0.0.1:8583";
/// How often held authorizations past their timeout are released.
pub const DEFAULT_EXPIRY_INTERVAL_MS: u64 = 1_000;

/// The configuration file as written; every field optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    data_dir: Option<PathBuf>,
    #[serde(default)]
    database: FileDatabase,
    #[serde(default)]
    http: FileHttp,
    #[serde(default)]
    log: FileLog,
    #[serde(default)]
    ledger: FileLedger,
    #[serde(default)]
    hsm: FileHsm,
    #[serde(default)]
    iso8583: FileIso8583,
    #[serde(default)]
    switch: FileSwitch,
    #[serde(default)]
    risk: FileRisk,
    #[serde(default)]
    refunds: FileRefunds,
    #[serde(default)]
    alerts: FileAlerts,
    #[serde(default)]
    incidents: FileIncidents,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAlerts {
    smtp_relay: Option<String>,
    smtp_from: Option<String>,
    smtp_tls: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIncidents {
    response_minutes: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRefunds {
    approval_above_minor: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRisk {
    rules: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSwitch {
    remote_issuer: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIso8583 {
    listen: Option<String>,
    max_connections: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHsm {
    lmk_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDatabase {
    backend: Option<String>,
    url: Option<String>,
    pool_size: Option<usize>,
    statement_timeout_ms: Option<u64>,
    replica_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHttp {
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLog {
    level: Option<String>,
    format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLedger {
    expiry_interval_ms: Option<u64>,
}

/// The most terminal connections one host may be told to hold.
const MAX_ISO8583_CONNECTIONS: usize = 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The validated configuration the rest of the binary uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub backend: Backend,
    /// PostgreSQL's pool size, statement timeout and replica (unused on SQLite).
    pub postgres: store::PostgresTuning,
    pub http_listen: SocketAddr,
    pub log_level: String,
    pub log_format: LogFormat,
    pub expiry_interval_ms: u64,
    /// The software HSM's local master key (hex), created on first start.
    pub lmk_file: PathBuf,
    pub iso8583_listen: SocketAddr,
    /// Terminal connections open at once; more are closed and counted.
    pub iso8583_max_connections: usize,
    /// An issuer host (`easypos host --role issuer`) that every card issuer's messages go to,
    /// instead of the in-process issuers.
    pub remote_issuer: Option<SocketAddr>,
    /// The risk rules file (`docs/risk.md`), and whether it was named (`risk.rules`) rather
    /// than the default `<data_dir>/risk.toml`, which may be absent (the demo rules then apply).
    pub risk_rules: PathBuf,
    pub risk_rules_named: bool,
    /// Refunds from the console and the API above this many minor units wait for a second
    /// supervisor's approval (`refunds.approval_above_minor`, docs/aftersale.md).
    pub refund_approval_above_minor: i64,
    /// The SMTP relay cardholder alerts are mailed through (`alerts.smtp_relay`,
    /// `alerts.smtp_from`); `None`: e-mail alerts wait until one is configured.
    pub alert_smtp: Option<api::alerts::SmtpConfig>,
    /// Minutes within which operations must answer an incident, per severity
    /// (`incidents.response_minutes`, docs/risk.md#incidents).
    pub incident_targets: api::incidents::ResponseTargets,
}

/// The `From:` of alert e-mails when `alerts.smtp_from` is not set.
pub const DEFAULT_ALERTS_SMTP_FROM: &str = "alerts@easypos.invalid";

/// Overrides from the command line (highest precedence).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Overrides {
    /// Configuration file [default: ./easypos.toml if it exists].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the embedded database and other files live [default: ./easypos-data].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL; selects the PostgreSQL backend instead of the embedded SQLite.
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
}

/// Reads `name` from the environment; an empty value counts as unset.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

impl Config {
    pub fn load(overrides: &Overrides) -> anyhow::Result<Config> {
        let file = match &overrides.config {
            Some(path) => read_file(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                read_file(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => FileConfig::default(),
        };
        Self::resolve(file, &env, overrides)
    }

    fn resolve(
        file: FileConfig,
        env: &dyn Fn(&str) -> Option<String>,
        overrides: &Overrides,
    ) -> anyhow::Result<Config> {
        let data_dir = overrides
            .data_dir
            .clone()
            .or_else(|| env("EASYPOS_DATA_DIR").map(PathBuf::from))
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        if data_dir.as_os_str().is_empty() {
            bail!(
                "data_dir (EASYPOS_DATA_DIR) is empty; give a directory such as {DEFAULT_DATA_DIR}"
            );
        }

        let url = overrides
            .database_url
            .clone()
            .or_else(|| env("EASYPOS_DATABASE_URL"))
            .or(file.database.url.clone());
        let backend_name = env("EASYPOS_DATABASE_BACKEND")
            .or(file.database.backend.clone())
            .unwrap_or_else(|| {
                if url.is_some() {
                    "postgres".into()
                } else {
                    "sqlite".into()
                }
            });
        let backend = match (backend_name.as_str(), url) {
            ("sqlite", _) => Backend::Sqlite {
                path: data_dir.join("easypos.db"),
            },
            ("postgres", Some(url)) if is_postgres_url(&url) => Backend::Postgres { url },
            ("postgres", Some(_)) => bail!(
                "database.url (EASYPOS_DATABASE_URL) must be a PostgreSQL URL such as postgres://user@127.0.0.1:5432/easypos"
            ),
            ("postgres", None) => bail!(
                "database.backend is \"postgres\" but database.url (EASYPOS_DATABASE_URL) is not set; give a URL such as postgres://user@127.0.0.1:5432/easypos"
            ),
            (other, _) => bail!(
                "database.backend (EASYPOS_DATABASE_BACKEND) is {other:?}; use \"sqlite\" (default) or \"postgres\""
            ),
        };

        let postgres = postgres_tuning(&file.database, env, &backend)?;

        let listen = env("EASYPOS_HTTP_LISTEN")
            .or(file.http.listen)
            .unwrap_or_else(|| DEFAULT_HTTP_LISTEN.into());
        let http_listen = listen
            .parse::<SocketAddr>()
            .map_err(|_| anyhow::anyhow!("http.listen (EASYPOS_HTTP_LISTEN) is {listen:?}; give an address and port such as {DEFAULT_HTTP_LISTEN}"))?;

        let log_level = env("EASYPOS_LOG_LEVEL")
            .or(file.log.level)
            .unwrap_or_else(|| "info".into());
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            bail!(
                "log.level (EASYPOS_LOG_LEVEL) is {log_level:?}; use error, warn, info, debug, trace or a filter such as \"info,store=debug\""
            );
        }
        let log_format = match env("EASYPOS_LOG_FORMAT").or(file.log.format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                bail!("log.format (EASYPOS_LOG_FORMAT) is {other:?}; use \"text\" or \"json\"")
            }
        };

        let expiry_interval_ms = match env("EASYPOS_LEDGER_EXPIRY_INTERVAL_MS") {
            Some(text) => text.parse().map_err(|_| anyhow::anyhow!("ledger.expiry_interval_ms (EASYPOS_LEDGER_EXPIRY_INTERVAL_MS) is {text:?}; give milliseconds, e.g. 1000"))?,
            None => file.ledger.expiry_interval_ms.unwrap_or(DEFAULT_EXPIRY_INTERVAL_MS),
        };
        if !(10..=3_600_000).contains(&expiry_interval_ms) {
            bail!(
                "ledger.expiry_interval_ms is {expiry_interval_ms}; give between 10 and 3600000 milliseconds"
            );
        }

        let lmk_file = env("EASYPOS_HSM_LMK_FILE")
            .map(PathBuf::from)
            .or(file.hsm.lmk_file)
            .unwrap_or_else(|| data_dir.join("hsm-lmk.key"));

        let listen = env("EASYPOS_ISO8583_LISTEN")
            .or(file.iso8583.listen)
            .unwrap_or_else(|| DEFAULT_ISO8583_LISTEN.into());
        let iso8583_listen = listen.parse::<SocketAddr>().map_err(|_| {
            anyhow::anyhow!(
                "iso8583.listen (EASYPOS_ISO8583_LISTEN) is {listen:?}; give an address and port such as {DEFAULT_ISO8583_LISTEN}"
            )
        })?;

        let iso8583_max_connections = match env("EASYPOS_ISO8583_MAX_CONNECTIONS") {
            Some(text) => text.parse().map_err(|_| anyhow::anyhow!("iso8583.max_connections (EASYPOS_ISO8583_MAX_CONNECTIONS) is {text:?}; give a number of connections, e.g. 2000"))?,
            None => file
                .iso8583
                .max_connections
                .unwrap_or(host::Limits::default().max_connections),
        };
        if !(1..=MAX_ISO8583_CONNECTIONS).contains(&iso8583_max_connections) {
            bail!(
                "iso8583.max_connections is {iso8583_max_connections}; give between 1 and {MAX_ISO8583_CONNECTIONS} (each connection is an open file: raise ulimit -n to match)"
            );
        }

        let remote_issuer = match env("EASYPOS_REMOTE_ISSUER").or(file.switch.remote_issuer) {
            None => None,
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
                anyhow::anyhow!(
                    "switch.remote_issuer (EASYPOS_REMOTE_ISSUER) is {text:?}; give the issuer host's address and port such as 127.0.0.1:9583"
                )
            })?),
        };

        let named_rules = env("EASYPOS_RISK_RULES")
            .map(PathBuf::from)
            .or(file.risk.rules);
        let risk_rules_named = named_rules.is_some();
        let risk_rules = named_rules.unwrap_or_else(|| data_dir.join("risk.toml"));

        let refund_approval_above_minor = match env("EASYPOS_REFUNDS_APPROVAL_ABOVE_MINOR") {
            Some(text) => text.parse().map_err(|_| anyhow::anyhow!("refunds.approval_above_minor (EASYPOS_REFUNDS_APPROVAL_ABOVE_MINOR) is {text:?}; give minor units, e.g. 50000 for 500.00"))?,
            None => file
                .refunds
                .approval_above_minor
                .unwrap_or(aftersale::refunds::DEFAULT_APPROVAL_ABOVE_MINOR),
        };
        if refund_approval_above_minor < 0 {
            bail!(
                "refunds.approval_above_minor is {refund_approval_above_minor}; give 0 (every refund approved by a second supervisor) or more"
            );
        }

        let smtp_from = env("EASYPOS_ALERTS_SMTP_FROM")
            .or(file.alerts.smtp_from)
            .unwrap_or_else(|| DEFAULT_ALERTS_SMTP_FROM.to_owned());
        let smtp_from = api::alerts::parse_email(&smtp_from).map_err(|error| {
            anyhow::anyhow!("alerts.smtp_from (EASYPOS_ALERTS_SMTP_FROM): {error}")
        })?;
        // No TLS library is in the build, and none is added for alerts alone: a setting that
        // asks for TLS is refused here rather than sending in the clear.
        match env("EASYPOS_ALERTS_SMTP_TLS").or(file.alerts.smtp_tls) {
            None => {}
            Some(text) if text.trim() == "none" => {}
            Some(text) => bail!(
                "alerts.smtp_tls (EASYPOS_ALERTS_SMTP_TLS) is {text:?}: STARTTLS and implicit TLS are not supported (easypos speaks plain SMTP to a relay on the private network); give \"none\", and let a local mail server (Postfix, Exim …) do TLS onwards"
            ),
        }
        let alert_smtp = match env("EASYPOS_ALERTS_SMTP_RELAY").or(file.alerts.smtp_relay) {
            None => None,
            Some(text) if text.contains("://") || text.trim().ends_with(":465") => bail!(
                "alerts.smtp_relay (EASYPOS_ALERTS_SMTP_RELAY) is {text:?}: give host:port of a plain SMTP relay such as 127.0.0.1:25; TLS (smtps://, port 465, STARTTLS) is not supported, so let a local mail server do TLS onwards"
            ),
            Some(text) => {
                let relay = text
                    .rsplit_once(':')
                    .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
                    .filter(|(host, _)| !host.is_empty());
                let Some((host, port)) = relay else {
                    bail!(
                        "alerts.smtp_relay (EASYPOS_ALERTS_SMTP_RELAY) is {text:?}; give the relay's host and port such as 127.0.0.1:25"
                    );
                };
                Some(api::alerts::SmtpConfig {
                    host: host.to_owned(),
                    port,
                    from: smtp_from,
                })
            }
        };
        let incident_targets =
            match env("EASYPOS_INCIDENTS_RESPONSE_MINUTES").or(file.incidents.response_minutes) {
                Some(text) => api::incidents::ResponseTargets::parse(&text).map_err(|error| {
                    anyhow::anyhow!(
                        "incidents.response_minutes (EASYPOS_INCIDENTS_RESPONSE_MINUTES): {error}"
                    )
                })?,
                None => api::incidents::ResponseTargets::default(),
            };

        Ok(Config {
            alert_smtp,
            incident_targets,
            refund_approval_above_minor,
            risk_rules,
            risk_rules_named,
            data_dir,
            backend,
            postgres,
            http_listen,
            log_level,
            log_format,
            expiry_interval_ms,
            lmk_file,
            iso8583_listen,
            iso8583_max_connections,
            remote_issuer,
        })
    }
}

/// Whether `url` looks like a PostgreSQL connection string.
fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://") || url.contains("host=")
}

/// `database.pool_size`, `database.statement_timeout_ms` and `database.replica_url`.
fn postgres_tuning(
    file: &FileDatabase,
    env: &dyn Fn(&str) -> Option<String>,
    backend: &Backend,
) -> anyhow::Result<store::PostgresTuning> {
    let pool_size = match env("EASYPOS_DATABASE_POOL_SIZE") {
        Some(text) => text.parse().map_err(|_| anyhow::anyhow!("database.pool_size (EASYPOS_DATABASE_POOL_SIZE) is {text:?}; give a number of connections, e.g. 8"))?,
        None => file.pool_size.unwrap_or(store::DEFAULT_POOL_SIZE),
    };
    if !(1..=store::MAX_POOL_SIZE).contains(&pool_size) {
        bail!(
            "database.pool_size is {pool_size}; give between 1 and {} connections",
            store::MAX_POOL_SIZE
        );
    }
    let statement_timeout_ms = match env("EASYPOS_DATABASE_STATEMENT_TIMEOUT_MS") {
        Some(text) => text.parse().map_err(|_| anyhow::anyhow!("database.statement_timeout_ms (EASYPOS_DATABASE_STATEMENT_TIMEOUT_MS) is {text:?}; give milliseconds, e.g. 5000, or 0 for no limit"))?,
        None => file.statement_timeout_ms.unwrap_or(0),
    };
    if statement_timeout_ms != 0 && !(100..=3_600_000).contains(&statement_timeout_ms) {
        bail!(
            "database.statement_timeout_ms is {statement_timeout_ms}; give 0 (no limit) or between 100 and 3600000 milliseconds"
        );
    }
    let replica_url = env("EASYPOS_DATABASE_REPLICA_URL").or_else(|| file.replica_url.clone());
    if let Some(url) = &replica_url {
        if !matches!(backend, Backend::Postgres { .. }) {
            bail!(
                "database.replica_url (EASYPOS_DATABASE_REPLICA_URL) is set but the database is SQLite; a replica needs database.url (PostgreSQL)"
            );
        }
        if !is_postgres_url(url) {
            bail!(
                "database.replica_url (EASYPOS_DATABASE_REPLICA_URL) must be a PostgreSQL URL such as postgres://user@replica:5432/easypos"
            );
        }
    }
    Ok(store::PostgresTuning {
        pool_size,
        statement_timeout_ms,
        replica_url,
    })
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    parse_file(&text).map_err(|error| {
        anyhow::anyhow!("{}: {error}", path.display())
            .context(format!("invalid configuration file {}", path.display()))
    })
}

/// The text of a configuration file, parsed; unknown keys are refused.
pub(crate) fn parse_file(text: &str) -> anyhow::Result<FileConfig> {
    toml::from_str(text).map_err(|error| anyhow::anyhow!("{}", error.message()))
}

impl Config {
    /// The configuration in effect as `key = value` lines in the reference's order, the
    /// database URL without its password.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let database = match &self.backend {
            Backend::Sqlite { path } => ("sqlite".to_owned(), path.display().to_string()),
            Backend::Postgres { url } => ("postgres".to_owned(), store::redact_url(url)),
        };
        vec![
            ("data_dir", self.data_dir.display().to_string()),
            ("database.backend", database.0),
            ("database.url", database.1),
            ("http.listen", self.http_listen.to_string()),
            ("iso8583.listen", self.iso8583_listen.to_string()),
            (
                "iso8583.max_connections",
                self.iso8583_max_connections.to_string(),
            ),
            ("log.level", self.log_level.clone()),
            (
                "log.format",
                match self.log_format {
                    LogFormat::Text => "text".to_owned(),
                    LogFormat::Json => "json".to_owned(),
                },
            ),
            (
                "ledger.expiry_interval_ms",
                self.expiry_interval_ms.to_string(),
            ),
            ("hsm.lmk_file", self.lmk_file.display().to_string()),
            (
                "switch.remote_issuer",
                self.remote_issuer
                    .map_or_else(|| "(in process)".to_owned(), |address| address.to_string()),
            ),
            ("risk.rules", self.risk_rules.display().to_string()),
            (
                "refunds.approval_above_minor",
                self.refund_approval_above_minor.to_string(),
            ),
            (
                "alerts.smtp_relay",
                self.alert_smtp.as_ref().map_or_else(
                    || "(off)".to_owned(),
                    |smtp| format!("{}:{}", smtp.host, smtp.port),
                ),
            ),
            (
                "alerts.smtp_from",
                self.alert_smtp.as_ref().map_or_else(
                    || DEFAULT_ALERTS_SMTP_FROM.to_owned(),
                    |smtp| smtp.from.clone(),
                ),
            ),
            // The only value start-up accepts.
            ("alerts.smtp_tls", "none".to_owned()),
            ("database.pool_size", self.postgres.pool_size.to_string()),
            (
                "database.statement_timeout_ms",
                self.postgres.statement_timeout_ms.to_string(),
            ),
            (
                "database.replica_url",
                self.postgres
                    .replica_url
                    .as_deref()
                    .map_or_else(|| "none".to_owned(), store::redact_url),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(toml_text: &str, vars: &[(&str, &str)]) -> anyhow::Result<Config> {
        let file: FileConfig = toml::from_str(toml_text)?;
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::resolve(file, &|name| vars.get(name).cloned(), &Overrides::default())
    }

    #[test]
    fn the_reference_states_the_real_defaults() {
        let config = resolve("", &[]).unwrap();
        for (key, value) in config.describe() {
            let setting = crate::settings::SETTINGS
                .iter()
                .find(|setting| setting.key == key)
                .unwrap_or_else(|| panic!("{key} is missing from the reference"));
            if !setting.default.contains('`') && !setting.default.contains(' ') {
                assert_eq!(setting.default, value, "the default of {key}");
            }
        }
    }

    #[test]
    fn the_packaged_production_example_is_valid() {
        let text = include_str!("../../../packaging/easypos.toml");
        let config =
            Config::resolve(parse_file(text).unwrap(), &|_| None, &Overrides::default()).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/easypos"));
        assert_eq!(config.lmk_file, PathBuf::from("/etc/easypos/hsm-lmk.key"));
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn defaults_need_nothing() {
        let config = resolve("", &[]).unwrap();
        assert_eq!(
            config.backend,
            Backend::Sqlite {
                path: PathBuf::from("easypos-data/easypos.db")
            }
        );
        assert_eq!(config.http_listen.to_string(), DEFAULT_HTTP_LISTEN);
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(
            config.refund_approval_above_minor,
            aftersale::refunds::DEFAULT_APPROVAL_ABOVE_MINOR
        );
        let config = resolve("[refunds]\napproval_above_minor = 0", &[]).unwrap();
        assert_eq!(config.refund_approval_above_minor, 0);
    }

    #[test]
    fn environment_overrides_the_file() {
        let config = resolve(
            "data_dir = \"/srv/a\"\n[http]\nlisten = \"0.0.0.0:9000\"",
            &[("EASYPOS_DATA_DIR", "/srv/b")],
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/srv/b"));
        assert_eq!(config.http_listen.port(), 9000);
        let config = resolve("", &[("EASYPOS_DATABASE_URL", "postgres://app@db/easypos")]).unwrap();
        assert_eq!(
            config.backend,
            Backend::Postgres {
                url: "postgres://app@db/easypos".into()
            }
        );
    }

    #[test]
    fn smtp_over_tls_is_refused_with_the_reason() {
        for (file, vars) in [
            ("[alerts]\nsmtp_tls = \"starttls\"", &[][..]),
            ("", &[("EASYPOS_ALERTS_SMTP_TLS", "tls")][..]),
        ] {
            let error = resolve(file, vars).unwrap_err().to_string();
            assert!(
                error.starts_with("alerts.smtp_tls (EASYPOS_ALERTS_SMTP_TLS)")
                    && error.contains("STARTTLS and implicit TLS are not supported"),
                "{error}"
            );
        }
        for relay in ["smtps://mail.bank.example:465", "mail.bank.example:465"] {
            let error = resolve("", &[("EASYPOS_ALERTS_SMTP_RELAY", relay)])
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("TLS (smtps://, port 465, STARTTLS) is not supported"),
                "{error}"
            );
        }
        // Plain SMTP, said or not, is taken.
        let config = resolve(
            "[alerts]\nsmtp_tls = \"none\"\nsmtp_relay = \"127.0.0.1:25\"",
            &[],
        )
        .unwrap();
        assert_eq!(config.alert_smtp.map(|smtp| smtp.port), Some(25));
    }

    #[test]
    fn errors_name_the_setting() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: [Case; 11] = [
            (
                "[refunds]\napproval_above_minor = -1",
                &[],
                "refunds.approval_above_minor",
            ),
            (
                "",
                &[("EASYPOS_REFUNDS_APPROVAL_ABOVE_MINOR", "500.00")],
                "refunds.approval_above_minor (EASYPOS_REFUNDS_APPROVAL_ABOVE_MINOR)",
            ),
            (
                "[iso8583]\nmax_connections = 0",
                &[],
                "iso8583.max_connections",
            ),
            (
                "[switch]\nremote_issuer = \"issuer.example\"",
                &[],
                "switch.remote_issuer (EASYPOS_REMOTE_ISSUER)",
            ),
            (
                "[iso8583]\nlisten = \"8583\"",
                &[],
                "iso8583.listen (EASYPOS_ISO8583_LISTEN)",
            ),
            (
                "[http]\nlisten = \"localhost\"",
                &[],
                "http.listen (EASYPOS_HTTP_LISTEN)",
            ),
            (
                "",
                &[("EASYPOS_DATABASE_BACKEND", "oracle")],
                "database.backend (EASYPOS_DATABASE_BACKEND)",
            ),
            (
                "[database]\nbackend = \"postgres\"",
                &[],
                "database.url (EASYPOS_DATABASE_URL) is not set",
            ),
            (
                "",
                &[("EASYPOS_DATABASE_URL", "mysql://x")],
                "must be a PostgreSQL URL",
            ),
            (
                "",
                &[("EASYPOS_LOG_FORMAT", "xml")],
                "log.format (EASYPOS_LOG_FORMAT)",
            ),
            (
                "[ledger]\nexpiry_interval_ms = 0",
                &[],
                "ledger.expiry_interval_ms",
            ),
        ];
        for (file, vars, expected) in cases {
            let error = resolve(file, vars).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{error:?} should mention {expected:?}"
            );
        }
    }

    #[test]
    fn risk_rules_come_from_the_named_file_else_the_data_dir_else_the_demo() {
        let dir = std::env::temp_dir().join(format!("easypos-risk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data_dir = dir.to_string_lossy().into_owned();

        // Nothing named, no <data_dir>/risk.toml: the demo rules.
        let config = resolve(&format!("data_dir = {data_dir:?}"), &[]).unwrap();
        assert_eq!(config.risk_rules, dir.join("risk.toml"));
        let (rules, source) = crate::up::risk_rules(&config).unwrap();
        assert_eq!((rules.rules.len(), source.as_str()), (12, "the demo rules"));

        // <data_dir>/risk.toml when present.
        let one = "[[rule]]\nname = \"x\"\nkind = \"cross_border\"\naction = \"alert\"\n";
        std::fs::write(dir.join("risk.toml"), one).unwrap();
        let (rules, _) = crate::up::risk_rules(&config).unwrap();
        assert_eq!(rules.rules.len(), 1);

        // A named file that is missing, malformed, or declines with a code easypos does not
        // know, is refused with the setting named.
        let missing = resolve("[risk]\nrules = \"/nonexistent/risk.toml\"", &[]).unwrap();
        let error = format!("{:#}", crate::up::risk_rules(&missing).unwrap_err());
        assert!(error.contains("risk.rules / EASYPOS_RISK_RULES"), "{error}");
        let bad = dir.join("bad.toml");
        for (text, expected) in [
            (
                "[[rule]]\nname = \"v\"\nkind = \"velocity\"\nscope = \"card\"\nmax_count = 3\naction = \"alert\"",
                "rule[0].window_secs",
            ),
            (
                "[[rule]]\nname = \"v\"\nkind = \"fallback\"\naction = \"decline\"\nresponse_code = \"Q9\"",
                "rule \"v\".response_code",
            ),
        ] {
            std::fs::write(&bad, text).unwrap();
            let config = resolve("", &[("EASYPOS_RISK_RULES", bad.to_str().unwrap())]).unwrap();
            let error = format!("{:#}", crate::up::risk_rules(&config).unwrap_err());
            assert!(error.contains(expected), "{error}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = toml::from_str::<FileConfig>("[htpp]\nlisten = \"127.0.0.1:1\"").unwrap_err();
        assert!(
            error.to_string().contains("unknown field `htpp`"),
            "{error}"
        );
    }

    #[test]
    fn postgres_pool_timeout_and_replica_are_read_and_checked() {
        let config = resolve(
            "[database]\nurl = \"postgres://app@db/easypos\"\npool_size = 8\nstatement_timeout_ms = 5000\nreplica_url = \"postgres://app:secret@replica/easypos\"",
            &[("EASYPOS_DATABASE_POOL_SIZE", "12")],
        )
        .unwrap();
        assert_eq!(
            config.postgres,
            store::PostgresTuning {
                pool_size: 12,
                statement_timeout_ms: 5_000,
                replica_url: Some("postgres://app:secret@replica/easypos".into()),
            }
        );
        let shown: HashMap<_, _> = config.describe().into_iter().collect();
        assert_eq!(
            shown["database.replica_url"],
            "postgres://app@replica/easypos"
        );
        for (toml_text, vars, problem) in [
            (
                "",
                vec![("EASYPOS_DATABASE_POOL_SIZE", "0")],
                "database.pool_size is 0",
            ),
            (
                "[database]\npool_size = 65",
                vec![],
                "database.pool_size is 65",
            ),
            (
                "",
                vec![("EASYPOS_DATABASE_POOL_SIZE", "many")],
                "EASYPOS_DATABASE_POOL_SIZE) is \"many\"",
            ),
            (
                "[database]\nstatement_timeout_ms = 5",
                vec![],
                "give 0 (no limit) or between 100",
            ),
            (
                "",
                vec![(
                    "EASYPOS_DATABASE_REPLICA_URL",
                    "postgres://app@replica/easypos",
                )],
                "the database is SQLite",
            ),
            (
                "[database]\nurl = \"postgres://app@db/easypos\"\nreplica_url = \"replica:5432\"",
                vec![],
                "must be a PostgreSQL URL",
            ),
        ] {
            let error = resolve(toml_text, &vars).unwrap_err().to_string();
            assert!(error.contains(problem), "{error}");
        }
    }
}
