//! The `easypos` binary: parses the command line, loads the configuration and wires the
//! library crates together. It holds no domain logic of its own.

mod audit_cmd;
mod backup_cmd;
mod cards_cmd;
mod config;
mod host;
mod hsm_cmd;
mod onboarding_wiring;
mod settings;
mod settle_cmd;
mod terminal_activate;
mod terminal_cmd;
mod terminal_qr;
mod tools;
mod up;
mod wallets;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::{Config, LogFormat, Overrides};
use std::sync::Arc;

/// Every allocation of the binary goes through mimalloc (see the workspace manifest for why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "easypos",
    version,
    about = "Open-source card-present payment platform: terminal, acquirer host, issuers, wallet"
)]
struct Cli {
    #[command(flatten)]
    overrides: Overrides,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start everything with its defaults (embedded SQLite in ./easypos-data, demo world seeded on
    /// first start) and print where to go.
    Up {
        /// Address for the web server, overriding http.listen (use 127.0.0.1:0 for any free port).
        #[arg(long, value_name = "ADDR")]
        http: Option<std::net::SocketAddr>,
        /// Address for terminals (ISO 8583), overriding iso8583.listen (127.0.0.1:0 for any free port).
        #[arg(long, value_name = "ADDR")]
        iso8583: Option<std::net::SocketAddr>,
        /// Send every card's messages to the issuer host at ADDR (`easypos host --role issuer`),
        /// overriding switch.remote_issuer.
        #[arg(long, value_name = "ADDR")]
        remote_issuer: Option<std::net::SocketAddr>,
    },
    /// Run one institution as a host of its own: `--role issuer` answers acquirers over the
    /// switch link (iso87-ascii) for the cards in this installation's database.
    Host {
        #[arg(long, value_enum)]
        role: HostRole,
        /// Address to listen on [default: 127.0.0.1:9583] (127.0.0.1:0 for any free port).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// End of day for a business date: clearing with issuers, fees, merchant settlement and
    /// payouts, statements, clearing files and a reconciliation report (docs/settlement.md).
    Settle(settle_cmd::SettleArgs),
    /// Benchmarks and load generators.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Calculators for payments engineers (PIN blocks, DUKPT, MACs, ISO 8583, TLV, QR, ...).
    Tools(tools::ToolsArgs),
    /// The POS terminal: sale, void, refund, pre-authorization, balance, settlement, scripted
    /// or interactive (docs/terminal.md).
    Terminal(terminal_cmd::TerminalArgs),
    /// The card simulator's cards for the demo world: list, issue card files, show one.
    Cards(cards_cmd::CardsArgs),
    /// The hash-chained audit log of back-office actions: verify the chain, list entries
    /// (docs/audit.md).
    Audit(audit_cmd::AuditArgs),
    /// Key ceremonies for the software HSM's master key: make components for custodians,
    /// combine them into the key file (docs/key-ceremonies.md).
    Hsm(hsm_cmd::HsmArgs),
    /// The configuration: every setting with its variable and default (`reference`, the
    /// Markdown of docs/configuration.md), or the values in effect here (`show`).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// An online, consistent backup of the database into a new directory, with a manifest
    /// (docs/operations.md).
    Backup(backup_cmd::BackupArgs),
    /// Restores a backup into an empty data directory or database and verifies it: rows per
    /// table, books, audit chain, keys (docs/operations.md).
    Restore(backup_cmd::RestoreArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the configuration reference (Markdown).
    Reference,
    /// Check the configuration and print the values in effect (passwords left out).
    Show,
}

/// The institution a `host` runs as.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum HostRole {
    /// The card issuers: authorizations, advices and reversals from acquirers.
    Issuer,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Single-transfer requests through group commit from many concurrent callers.
    Ledger {
        /// Concurrent callers, each with one request in flight.
        #[arg(long, default_value_t = 1_000)]
        callers: usize,
        /// How long to run.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Customer accounts the transfers are spread over.
        #[arg(long, default_value_t = 10_000)]
        accounts: u64,
        /// Print one JSON object instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// Chip-and-PIN card sales from many ISO 8583 terminals over loopback TCP, against the
    /// acquirer host started in this process on a fresh temporary SQLite database, or against
    /// another process's host (`--target`, with the fleet of `easypos bench provision`).
    Sales {
        /// Virtual terminals, one connection each (the host takes 50 messages/s from each)
        /// [default: 1000; with --target, every terminal of the fleet].
        #[arg(long)]
        terminals: Option<usize>,
        /// How long to sell, after every terminal has signed on.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Cards per terminal, used in turn (each card's ATC goes up with every sale).
        #[arg(long, default_value_t = 4)]
        cards_per_terminal: usize,
        /// Sales per second of all terminals together on a fixed schedule (open loop), with
        /// latency counted from each sale's scheduled time; without it, each terminal sends its
        /// next sale when the last is answered (closed loop).
        #[arg(long, value_name = "SALES_PER_SECOND")]
        rate: Option<u64>,
        /// Make every N-th sale of a terminal with a wrong PIN, which must be declined 55.
        #[arg(long, value_name = "N", default_value_t = 0)]
        wrong_pin_every: u64,
        /// Directory in which the temporary database is made (default: the system's).
        #[arg(long, value_name = "DIR", conflicts_with = "target")]
        dir: Option<std::path::PathBuf>,
        /// Sell to the acquirer host listening here (`easypos up`'s terminal port, `cup-bcd`
        /// profile) instead of one started in this process; needs --fleet.
        #[arg(long, value_name = "HOST:PORT", requires = "fleet")]
        target: Option<std::net::SocketAddr>,
        /// The fleet file written by `easypos bench provision` for the target's database. It is
        /// updated after the run: the terminals' trace numbers and the cards' ATCs go on.
        #[arg(long, value_name = "FILE", requires = "target")]
        fleet: Option<std::path::PathBuf>,
        /// Write one JSON line per sale sent (terminal, batch, trace number, card, amount,
        /// outcome: approved, declined or unanswered, RRN, auth code) to FILE (with --target).
        #[arg(long, value_name = "FILE", requires = "target")]
        sale_log: Option<std::path::PathBuf>,
        /// Print one JSON object instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// Puts bench terminals and cards with keys made here into a new, empty database (the
    /// configured one), for `easypos bench sales --target` against `easypos up` on it. Writes
    /// the fleet file with the terminals' and the issuer's keys in clear: bench secrets.
    Provision {
        /// Terminals to make (ids from 50000000).
        #[arg(long, default_value_t = 100)]
        terminals: usize,
        /// Cards per terminal (each card's ATC goes up with every sale).
        #[arg(long, default_value_t = 4)]
        cards_per_terminal: usize,
        /// Where to write the fleet file (readable by its owner only).
        #[arg(long, value_name = "FILE")]
        fleet: std::path::PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The terminal and its cards run standalone (no platform configuration) and say what
    // happened in their exit codes (docs/terminal.md).
    if let Command::Terminal(args) = cli.command {
        return terminal_cmd::run(args);
    }
    if let Command::Cards(args) = cli.command {
        return cards_cmd::run(args);
    }
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Tools(args) = cli.command {
        // Pure calculators: no configuration, no runtime, no logs.
        return tools::run(args);
    }
    if let Command::Hsm(args) = cli.command {
        // A ceremony needs no configuration and no database.
        return hsm_cmd::run(args, &cli.overrides);
    }
    if let Command::Config {
        command: ConfigCommand::Reference,
    } = cli.command
    {
        print!("{}", settings::markdown());
        return Ok(());
    }
    let mut config = Config::load(&cli.overrides)?;
    if let Command::Config {
        command: ConfigCommand::Show,
    } = cli.command
    {
        for (key, value) in config.describe() {
            println!("{key} = {value}");
        }
        return Ok(());
    }
    init_logging(&config);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Ok(threads) = std::env::var("EASYPOS_WORKER_THREADS") {
        runtime.worker_threads(
            threads
                .parse()
                .context("EASYPOS_WORKER_THREADS must be a number of threads")?,
        );
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Up {
                http,
                iso8583,
                remote_issuer,
            } => {
                if let Some(address) = http {
                    config.http_listen = address;
                }
                if let Some(address) = iso8583 {
                    config.iso8583_listen = address;
                }
                if remote_issuer.is_some() {
                    config.remote_issuer = remote_issuer;
                }
                up::run(config).await
            }
            Command::Host {
                role: HostRole::Issuer,
                listen,
            } => {
                let listen = match listen {
                    Some(address) => address,
                    None => host::DEFAULT_ISSUER_LISTEN.parse()?,
                };
                host::run_issuer(config, listen).await
            }
            Command::Migrate => migrate(&config).await,
            Command::Settle(args) => settle_cmd::run(&config, args).await,
            Command::Audit(args) => {
                if audit_cmd::run(&config, args).await? {
                    Ok(())
                } else {
                    // The report is printed; the exit code says "broken" to scripts.
                    std::process::exit(1)
                }
            }
            Command::Backup(args) => backup_cmd::backup(&config, args).await,
            Command::Restore(args) => backup_cmd::restore(&config, args).await,
            Command::Bench(BenchCommand::Ledger {
                callers,
                seconds,
                accounts,
                json,
            }) => {
                bench_ledger(
                    &config,
                    bench::LedgerLoad {
                        callers,
                        seconds,
                        accounts,
                    },
                    json,
                )
                .await
            }
            Command::Bench(BenchCommand::Sales {
                terminals,
                seconds,
                cards_per_terminal,
                rate,
                wrong_pin_every,
                dir,
                target,
                fleet,
                sale_log,
                json,
            }) => {
                let load = bench::SalesLoad {
                    terminals: terminals.unwrap_or(1_000),
                    seconds,
                    cards_per_terminal,
                    rate,
                    wrong_pin_every,
                    directory: dir,
                };
                match (target, fleet) {
                    (Some(target), Some(fleet)) => {
                        bench_sales_against(target, &fleet, sale_log, terminals, load, json).await
                    }
                    _ => bench_sales(bench::sales_throughput(load).await, json),
                }
            }
            Command::Bench(BenchCommand::Provision {
                terminals,
                cards_per_terminal,
                fleet,
            }) => bench_provision(&config, terminals, cards_per_terminal, &fleet).await,
            Command::Tools(_)
            | Command::Terminal(_)
            | Command::Cards(_)
            | Command::Config { .. }
            | Command::Hsm(_) => Ok(()),
        }
    })
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&config.log_level);
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Opens the configured store, with the configuration's names in any error.
pub async fn open_store(config: &Config) -> anyhow::Result<store::Store> {
    let where_ = match &config.backend {
        store::Backend::Sqlite { path } => format!("SQLite database {}", path.display()),
        store::Backend::Postgres { .. } => "PostgreSQL database (database.url)".to_owned(),
    };
    store::Store::open(&config.backend)
        .await
        .with_context(|| format!("cannot open the {where_}"))
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let version = store.schema_version().await?;
    println!(
        "database is at schema version {version} ({})",
        store.backend_name()
    );
    store.close().await?;
    Ok(())
}

async fn bench_ledger(config: &Config, load: bench::LedgerLoad, json: bool) -> anyhow::Result<()> {
    let store = Arc::new(open_store(config).await?);
    let report = bench::ledger_throughput(store.clone(), load).await?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{}: {} transfers in {:.2} s = {:.0} transfers/s ({} commits, {} errors); latency p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs",
            report.backend,
            report.transfers,
            report.elapsed_micros as f64 / 1e6,
            report.per_second(),
            report.commits,
            report.errors,
            report.p50_micros,
            report.p99_micros,
            report.p999_micros,
            report.max_micros
        );
    }
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await?;
    }
    if report.errors > 0 {
        anyhow::bail!(
            "{} requests were refused; the benchmark checks every response",
            report.errors
        );
    }
    Ok(())
}

/// `bench sales --target`: the fleet's terminals against another process's host; the fleet
/// file is written back with the counters the run left, whatever its outcome.
async fn bench_sales_against(
    target: std::net::SocketAddr,
    fleet_file: &std::path::Path,
    sale_log: Option<std::path::PathBuf>,
    terminals: Option<usize>,
    load: bench::SalesLoad,
    json: bool,
) -> anyhow::Result<()> {
    let fleet = bench::Fleet::load(fleet_file)?;
    let load = bench::SalesLoad {
        terminals: terminals.unwrap_or(fleet.terminals.len()),
        ..load
    };
    let log = match sale_log {
        Some(path) => Some(std::sync::Arc::new(bench::SaleLog::create(&path)?)),
        None => None,
    };
    let (fleet, outcome) = bench::sales_against(target, fleet, load, log).await;
    fleet.save(fleet_file).with_context(|| {
        format!(
            "the run's counters could not be kept in {}; provision a new database before the next run",
            fleet_file.display()
        )
    })?;
    bench_sales(outcome, json)
}

async fn bench_provision(
    config: &Config,
    terminals: usize,
    cards_per_terminal: usize,
    fleet_file: &std::path::Path,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let hsm = up::open_hsm(config)?;
    let fleet = bench::provision(&store, &hsm, terminals, cards_per_terminal).await?;
    fleet.save(fleet_file)?;
    store.close().await?;
    // The demo rules' velocity limits would decline a load's cards: a bench data directory
    // gets the load's rules, unless the configuration names its own.
    let rules = if config.risk_rules_named || config.risk_rules.exists() {
        format!(
            "the risk rules in {} (as configured)",
            config.risk_rules.display()
        )
    } else {
        std::fs::write(&config.risk_rules, bench::LOAD_RULES)
            .with_context(|| format!("cannot write {}", config.risk_rules.display()))?;
        format!(
            "the load's risk rules, written to {}",
            config.risk_rules.display()
        )
    };
    println!(
        "Provisioned {terminals} terminals (50000000 on) with {cards_per_terminal} cards each, and the demo world.\n\
         Fleet file (bench secrets: clear keys): {}\n\
         Risk rules: {rules}\n\
         Next: start the host on this configuration (`easypos up`), then\n  \
         easypos bench sales --target 127.0.0.1:{} --fleet {} --seconds 10",
        fleet_file.display(),
        config.iso8583_listen.port(),
        fleet_file.display()
    );
    Ok(())
}

fn bench_sales(
    outcome: Result<bench::SalesReport, bench::BenchError>,
    json: bool,
) -> anyhow::Result<()> {
    let (report, failure) = match outcome {
        Ok(report) => (report, None),
        Err(bench::BenchError::WrongAnswers {
            errors,
            first,
            report,
        }) => (*report, Some((errors, first))),
        Err(error) => return Err(error.into()),
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let mode = match report.load.rate {
            Some(rate) => format!("open loop at {rate}/s"),
            None => "closed loop".to_owned(),
        };
        println!(
            "{}: {} terminals, {mode}: {} sales ({} approved, {} declined) in {:.2} s = {:.0} sales/s{}; latency p50 {} µs, p90 {} µs, p99 {} µs, p99.9 {} µs, max {} µs",
            report.backend,
            report.load.terminals,
            report.sales,
            report.approvals,
            report.declines,
            report.elapsed_micros as f64 / 1e6,
            report.sales_per_second,
            match (report.commits, report.receipt_signatures) {
                (Some(commits), Some(signatures)) =>
                    format!(" ({commits} commits, {signatures} receipt signatures)"),
                _ => String::new(),
            },
            report.p50_micros,
            report.p90_micros,
            report.p99_micros,
            report.p999_micros,
            report.max_micros
        );
    }
    if let Some((errors, first)) = failure {
        anyhow::bail!(
            "{errors} terminal(s) stopped at a wrong answer; the benchmark checks every answer. The first: {first}"
        );
    }
    Ok(())
}
