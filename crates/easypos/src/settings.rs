//! The configuration reference: every setting of `easypos.toml`, its environment variable, its
//! default and what it does, in one table that `easypos config reference` prints and
//! docs/configuration.md is generated from. Tests tie the table to the loader (config.rs): a
//! variable the loader reads but the table lacks, a key the file parser refuses, or a
//! docs/configuration.md that differs from the table fail the build.

/// One setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The key in `easypos.toml` (`section.key`), or "" for an environment variable only.
    pub key: &'static str,
    pub env: &'static str,
    /// The default, as the reader sees it.
    pub default: &'static str,
    /// A valid value, as it would be written in `easypos.toml` (TOML syntax).
    pub example: &'static str,
    pub description: &'static str,
}

pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "data_dir",
        env: "EASYPOS_DATA_DIR",
        default: "easypos-data",
        example: "\"/var/lib/easypos\"",
        description: "Where the SQLite database, the HSM master key (unless `hsm.lmk_file` says otherwise), uploaded documents and the optional `risk.toml` live. Also `--data-dir`.",
    },
    Setting {
        key: "database.backend",
        env: "EASYPOS_DATABASE_BACKEND",
        default: "`sqlite`, or `postgres` when `database.url` is set",
        example: "\"postgres\"",
        description: "`sqlite` (embedded, one process) or `postgres` (several hosts on one database).",
    },
    Setting {
        key: "database.url",
        env: "EASYPOS_DATABASE_URL",
        default: "none (SQLite)",
        example: "\"postgres://easypos@127.0.0.1:5432/easypos\"",
        description: "The PostgreSQL connection URL (`postgres://user[:password]@host:port/database`). Also `--database-url`.",
    },
    Setting {
        key: "http.listen",
        env: "EASYPOS_HTTP_LISTEN",
        default: "127.0.0.1:8080",
        example: "\"127.0.0.1:8080\"",
        description: "Address and port of the web server: console, REST API, wallet page, `/verify`, `/metrics`, `/health`. `up --http` overrides it.",
    },
    Setting {
        key: "iso8583.listen",
        env: "EASYPOS_ISO8583_LISTEN",
        default: "127.0.0.1:8583",
        example: "\"0.0.0.0:8583\"",
        description: "Address and port terminals connect to (ISO 8583, `cup-bcd`: 2-byte length, TPDU). `up --iso8583` overrides it.",
    },
    Setting {
        key: "iso8583.max_connections",
        env: "EASYPOS_ISO8583_MAX_CONNECTIONS",
        default: "512",
        example: "20000",
        description: "Terminal connections open at once (1 to 1,000,000); more are closed and counted. Each is an open file: raise `ulimit -n` (systemd `LimitNOFILE`) to match.",
    },
    Setting {
        key: "log.level",
        env: "EASYPOS_LOG_LEVEL",
        default: "info",
        example: "\"info,store=debug\"",
        description: "`error`, `warn`, `info`, `debug`, `trace`, or a filter per crate. Logs never carry card numbers, PINs or keys at any level.",
    },
    Setting {
        key: "log.format",
        env: "EASYPOS_LOG_FORMAT",
        default: "text",
        example: "\"json\"",
        description: "`text` for people, `json` (one object per line) for log collectors.",
    },
    Setting {
        key: "ledger.expiry_interval_ms",
        env: "EASYPOS_LEDGER_EXPIRY_INTERVAL_MS",
        default: "1000",
        example: "1000",
        description: "How often held authorizations past their timeout are released (10 to 3,600,000 ms).",
    },
    Setting {
        key: "hsm.lmk_file",
        env: "EASYPOS_HSM_LMK_FILE",
        default: "`<data_dir>/hsm-lmk.key`",
        example: "\"/etc/easypos/hsm-lmk.key\"",
        description: "The software HSM's local master key (64 hex digits), created on the first start if missing. Every stored key is wrapped under it: keep it apart from backups (docs/operations.md).",
    },
    Setting {
        key: "switch.remote_issuer",
        env: "EASYPOS_REMOTE_ISSUER",
        default: "unset (issuers in process)",
        example: "\"127.0.0.1:9583\"",
        description: "Send every card issuer's messages to an issuer host (`easypos host --role issuer`) at this address instead of the in-process issuers. `up --remote-issuer` overrides it.",
    },
    Setting {
        key: "risk.rules",
        env: "EASYPOS_RISK_RULES",
        default: "`<data_dir>/risk.toml` if present, else the demo rules",
        example: "\"/etc/easypos/risk.toml\"",
        description: "The risk rules file (docs/risk.md). A named file that is missing or invalid stops the start with the rule and field named.",
    },
    Setting {
        key: "refunds.approval_above_minor",
        env: "EASYPOS_REFUNDS_APPROVAL_ABOVE_MINOR",
        default: "50000",
        example: "50000",
        description: "Console and API refunds above this many minor units (50000 = 500.00) wait for a second supervisor's approval; 0 sends every refund for approval (docs/aftersale.md).",
    },
    Setting {
        key: "alerts.smtp_relay",
        env: "EASYPOS_ALERTS_SMTP_RELAY",
        default: "unset (e-mail alerts wait)",
        example: "\"127.0.0.1:25\"",
        description: "The SMTP relay (`host:port`, plain SMTP, no login: a relay on the private network) cardholder alerts are mailed through. Unset, e-mail alerts stay queued and are retried for 24 hours (docs/aftersale.md).",
    },
    Setting {
        key: "alerts.smtp_from",
        env: "EASYPOS_ALERTS_SMTP_FROM",
        default: "alerts@easypos.invalid",
        example: "\"alerts@bank.example\"",
        description: "The sender address of alert e-mails.",
    },
    Setting {
        key: "incidents.response_minutes",
        env: "EASYPOS_INCIDENTS_RESPONSE_MINUTES",
        default: "critical=30,high=120,medium=480,low=1440",
        example: "\"critical=15,high=60\"",
        description: "Minutes within which the acquirer's operations must acknowledge an incident, per severity (1 to 43200; a severity left out keeps its default); a later answer shows the incident's response target as breached (docs/risk.md#incidents).",
    },
    Setting {
        key: "",
        env: "EASYPOS_WORKER_THREADS",
        default: "the number of CPUs",
        example: "2",
        description: "Threads of the async runtime.",
    },
    Setting {
        key: "",
        env: "EASYPOS_BENCH_DATABASE_URL",
        default: "none",
        example: "\"postgres://postgres@127.0.0.1:5432/bench\"",
        description: "`easypos bench baseline` only: the PostgreSQL database its conventional design runs in, instead of `--database-url` (BENCHMARKS.md). Its schema is dropped and made anew.",
    },
    Setting {
        key: "alerts.smtp_tls",
        env: "EASYPOS_ALERTS_SMTP_TLS",
        default: "none",
        example: "\"none\"",
        description: "TLS to the SMTP relay: only `none` (plain SMTP). STARTTLS and implicit TLS are not supported and refused at start (as are `smtps://` relays and port 465): let a local mail server do TLS onwards (docs/aftersale.md).",
    },
    Setting {
        key: "database.pool_size",
        env: "EASYPOS_DATABASE_POOL_SIZE",
        default: "4",
        example: "8",
        description: "PostgreSQL: connections each node keeps for reads and non-ledger writes (1 to 64), besides its ledger writer's, its journal writer's and its background-job lock's. Every node opens this many (and as many again to a replica): keep nodes × (pool_size + 3) under the server's `max_connections` (docs/scaling.md).",
    },
    Setting {
        key: "database.statement_timeout_ms",
        env: "EASYPOS_DATABASE_STATEMENT_TIMEOUT_MS",
        default: "0",
        example: "5000",
        description: "PostgreSQL: the longest any statement of this node may run before the server cancels it (its request then fails and is retried or answered as an error); 0 leaves the server's own setting, normally no limit. Migrations at start are never cut off.",
    },
    Setting {
        key: "database.replica_url",
        env: "EASYPOS_DATABASE_REPLICA_URL",
        default: "none",
        example: "\"postgres://easypos@replica.internal:5432/easypos\"",
        description: "PostgreSQL: a streaming replica of `database.url` that the console's and the API's listings (journal, cases, audit log) read, so that people browsing do not load the primary. They may lag the primary by the replication delay. Authorizations, every write and every read a decision depends on always use the primary (docs/scaling.md).",
    },
];

/// The reference as Markdown (docs/configuration.md).
pub fn markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from crates/easypos/src/settings.rs by `easypos config reference`; do not edit. -->\n\n\
         easypos needs no configuration: the defaults run the platform on this machine with an\n\
         embedded database. Settings come, each overriding the one before, from the defaults,\n\
         `easypos.toml` in the working directory (or `--config FILE`), `EASYPOS_*` environment\n\
         variables (an empty value counts as unset), and command-line flags. Every value is\n\
         checked at start; an error names the setting and its variable and says what would be\n\
         right. Unknown keys in the file are refused. `easypos config show` prints the\n\
         configuration in effect.\n\n\
         | Key in `easypos.toml` | Environment variable | Default | Example | What it does |\n\
         |---|---|---|---|---|\n",
    );
    for setting in SETTINGS {
        let key = if setting.key.is_empty() {
            "—".to_owned()
        } else {
            format!("`{}`", setting.key)
        };
        out.push_str(&format!(
            "| {key} | `{}` | {} | `{}` | {} |\n",
            setting.env,
            setting.default,
            setting.example,
            setting.description.replace('|', "\\|")
        ));
    }
    out.push_str(
        "\nA production example is in `packaging/easypos.toml`; the terminal's own settings\n\
         (`terminal.toml`) are in docs/terminal.md.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `EASYPOS_…` variable named in the loader's source.
    fn variables_in(source: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find("\"EASYPOS_") {
            let tail = &rest[start + 1..];
            let end = tail
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            if tail[end..].starts_with('"') {
                found.push(tail[..end].to_owned());
            }
            rest = &tail[end..];
        }
        found.sort();
        found.dedup();
        found
    }

    #[test]
    fn every_variable_the_loader_reads_is_in_the_reference() {
        let sources = [include_str!("config.rs"), include_str!("main.rs")];
        for source in sources {
            for variable in variables_in(source) {
                assert!(
                    SETTINGS.iter().any(|setting| setting.env == variable),
                    "{variable} is read but missing from settings::SETTINGS"
                );
            }
        }
        for setting in SETTINGS {
            assert!(
                sources
                    .iter()
                    .any(|source| source.contains(&format!("\"{}\"", setting.env))),
                "{} is in the reference but nothing reads it",
                setting.env
            );
        }
    }

    #[test]
    fn every_key_with_its_example_is_accepted_by_the_file_parser() {
        for setting in SETTINGS.iter().filter(|setting| !setting.key.is_empty()) {
            let text = match setting.key.split_once('.') {
                Some((section, key)) => format!("[{section}]\n{key} = {}\n", setting.example),
                None => format!("{} = {}\n", setting.key, setting.example),
            };
            crate::config::parse_file(&text)
                .unwrap_or_else(|error| panic!("{}: {error:#}", setting.key));
        }
    }

    #[test]
    fn the_documented_reference_is_generated_from_this_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let generated = markdown();
        if std::env::var("UPDATE_SNAPSHOTS").is_ok() {
            std::fs::write(path, &generated).unwrap();
        }
        let documented = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            documented == generated,
            "docs/configuration.md is out of date: run `UPDATE_SNAPSHOTS=1 cargo test -p easypos the_documented_reference` (or `easypos config reference > docs/configuration.md`)"
        );
    }
}
