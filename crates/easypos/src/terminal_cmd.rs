//! `easypos terminal …`: the POS terminal application, scripted (one command per
//! transaction, for integrators and tests) or interactive (`tui`). The interface is
//! documented in docs/terminal.md and is stable: scripts depend on its flags, JSON fields and
//! exit codes.
//!
//! Exit codes: 0 approved (or done); 1 declined by the host, or settlement totals disagree;
//! 2 refused before sending (arguments, configuration, card file, the terminal's own rules);
//! 3 no usable answer (host unreachable, timeout, an answer that failed the checks) — any
//! reversal it needed was sent or is pending.

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use terminal::cardfile::CardFile;
use terminal::config::{KeyScheme, Language, MasterKey, TerminalConfig};
use terminal::dukpt::{AesDukptDevice, TdesDukptDevice};
use terminal::pos::{Method, Payment, Pos, PosError, Presentation, TerminalKey, TransactionResult};
use terminal::receipt::Copy;
use terminal::transactions::TransactionType;

pub(crate) const EXIT_APPROVED: u8 = 0;
pub(crate) const EXIT_DECLINED: u8 = 1;
pub(crate) const EXIT_REFUSED: u8 = 2;
pub(crate) const EXIT_NO_ANSWER: u8 = 3;

#[derive(Debug, Args)]
pub struct TerminalArgs {
    #[command(subcommand)]
    command: TerminalCommand,
}

/// Options every terminal command takes.
#[derive(Debug, Args)]
struct Common {
    /// The terminal's configuration file.
    #[arg(long, value_name = "FILE", default_value = "terminal.toml")]
    config: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// The supervisor's approval of a void or a refund (R16).
#[derive(Debug, Args)]
struct SupervisorArgs {
    /// The supervisor's password (`supervisor_password` in terminal.toml; `-`: one line of
    /// standard input). Voids and refunds are refused without it.
    #[arg(long, value_name = "PASSWORD")]
    supervisor: Option<String>,
    /// The supervisor's operator number: the password is then theirs, enrolled by the
    /// merchant, sent to the host (field 63) and checked there against the merchant's staff
    /// records instead of terminal.toml (docs/protocol.md, "Supervisor password").
    #[arg(long, value_name = "NUMBER")]
    supervisor_no: Option<String>,
}

/// How the card is presented.
#[derive(Debug, Args)]
struct CardArgs {
    /// The card file (`easypos cards issue`); required for every method but `qr`.
    #[arg(long, value_name = "FILE")]
    card: Option<PathBuf>,
    /// The PIN the cardholder enters (`-`: one line of standard input); it becomes a PIN block
    /// at once. Without it the cardholder signs (or, tapped under the contactless limit,
    /// nothing is needed).
    #[arg(long, value_name = "DIGITS")]
    pin: Option<String>,
}

#[derive(Debug, Args)]
struct ReadArgs {
    /// Debit (bank) card or credit card (must match the card), or `qr`: the consumer scans
    /// the terminal's code with the Panda Pay wallet (`pay` only; docs/wallet.md).
    #[arg(long, value_enum)]
    method: MethodArg,
    /// Insert the chip, swipe the stripe, or tap.
    #[arg(long, value_enum, default_value = "chip")]
    entry: EntryArg,
    /// The chip could not be read: swipe a chip card anyway (entry mode 80).
    #[arg(long)]
    fallback: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MethodArg {
    Debit,
    Credit,
    Qr,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum EntryArg {
    Chip,
    Swipe,
    Tap,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LanguageArg {
    En,
    Zh,
}

/// `--key-scheme` of `terminal init`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum KeySchemeArg {
    /// AES DUKPT (X9.24-3): a key per transaction, format 4 PIN blocks, AES-CMAC.
    DukptAes,
    /// TDES DUKPT (X9.24-1): a key per transaction, format 0 PIN blocks, X9.19 MACs.
    DukptTdes,
    /// A terminal master key and working keys from each sign-on.
    MasterSession,
}

impl KeySchemeArg {
    fn scheme(self) -> KeyScheme {
        match self {
            Self::DukptAes => KeyScheme::DukptAes,
            Self::DukptTdes => KeyScheme::DukptTdes,
            Self::MasterSession => KeyScheme::MasterSession,
        }
    }
}

/// What `terminal init --demo` says of the demo terminals, when asked for another.
const DEMO_TERMINALS: &str = "10000003 on AES DUKPT; 10000004 on TDES DUKPT; 10000001, 10000002 \
                              and 20000001 on master/session";

#[derive(Debug, Subcommand)]
enum TerminalCommand {
    /// Activate a new terminal with its one-time code: receive its parameters and master key,
    /// write terminal.toml, and sign on (docs/onboarding.md).
    Activate(crate::terminal_activate::ActivateArgs),
    /// Write a terminal.toml for a demo terminal (10000003 on AES DUKPT; 10000004 on TDES
    /// DUKPT; 10000001, 10000002 and 20000001 on master/session).
    Init {
        /// The demo terminal's id.
        #[arg(long, value_name = "TERMINAL_ID")]
        demo: String,
        /// The key scheme; by default the demo terminal's own (the host knows each terminal's).
        #[arg(long, value_enum)]
        key_scheme: Option<KeySchemeArg>,
        /// The host's ISO 8583 address, as `easypos up` prints it.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8583")]
        host: String,
        /// Where to write the configuration.
        #[arg(long, value_name = "FILE", default_value = "terminal.toml")]
        config: PathBuf,
        /// Screen and receipt language.
        #[arg(long, value_enum, default_value = "en")]
        language: LanguageArg,
        /// Answer timeout in milliseconds.
        #[arg(long, value_name = "MS")]
        timeout_ms: Option<u64>,
    },
    /// Sign on (签到): new working keys and the batch number. Sends any pending reversal.
    SignOn {
        #[command(flatten)]
        common: Common,
        /// Operator number (field 63).
        #[arg(long, value_name = "NUMBER")]
        operator: Option<String>,
    },
    /// Sign off (签退): the host forgets this sign-on's working keys. Sends any pending
    /// reversal first.
    SignOff {
        #[command(flatten)]
        common: Common,
    },
    /// Sale (消费).
    Pay {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        read: ReadArgs,
        #[command(flatten)]
        card: CardArgs,
        /// Amount in major units, e.g. 12.34.
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        receipt: ReceiptArgs,
        #[command(flatten)]
        qr: crate::terminal_qr::QrArgs,
    },
    /// Pre-authorization (预授权): a hold on the card's money.
    Preauth {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        read: ReadArgs,
        #[command(flatten)]
        card: CardArgs,
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        receipt: ReceiptArgs,
    },
    /// Pre-authorization completion (预授权完成), up to the hold.
    Complete {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        card: CardArgs,
        /// The pre-authorization's trace number.
        #[arg(long, value_name = "STAN")]
        trace: u32,
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        receipt: ReceiptArgs,
    },
    /// Void (消费撤销) of a sale in the open batch, for its whole amount.
    Void {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        card: CardArgs,
        #[command(flatten)]
        supervisor: SupervisorArgs,
        /// The sale's trace number.
        #[arg(long, value_name = "STAN")]
        trace: u32,
        #[command(flatten)]
        receipt: ReceiptArgs,
    },
    /// Refund (退货) of a sale, up to its amount.
    Refund {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        card: CardArgs,
        #[command(flatten)]
        supervisor: SupervisorArgs,
        /// The sale's trace number.
        #[arg(long, value_name = "STAN")]
        trace: u32,
        /// The sale's batch, when it is a closed one [default: the open batch].
        #[arg(long, value_name = "BATCH")]
        batch: Option<u32>,
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        receipt: ReceiptArgs,
    },
    /// Balance inquiry (查询).
    Balance {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        read: ReadArgs,
        #[command(flatten)]
        card: CardArgs,
    },
    /// Batch settlement (批结算): totals against the host's; closes the batch when they agree.
    Settle {
        #[command(flatten)]
        common: Common,
    },
    /// Print the last approved receipt again, marked REPRINT.
    Reprint {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        receipt: ReceiptArgs,
    },
    /// The open batch's transactions.
    Batch {
        #[command(flatten)]
        common: Common,
    },
    /// The interactive terminal: a countertop POS on screen (number keys, Enter, Backspace,
    /// Esc). Cards are presented from the configuration's cards_dir.
    Tui {
        #[arg(long, value_name = "FILE", default_value = "terminal.toml")]
        config: PathBuf,
        /// The host's HTTP address for QR payments (the sale's third method).
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
        wallet_url: String,
    },
}

#[derive(Debug, Args)]
struct ReceiptArgs {
    /// Also write both copies as ESC/POS printer bytes to FILE (or a printer device path).
    #[arg(long, value_name = "FILE")]
    escpos_out: Option<PathBuf>,
    /// Also write both copies as a PDF to FILE (one 80 mm page each, Chinese included, with
    /// the transaction's reference as a QR code).
    #[arg(long, value_name = "FILE")]
    receipt_pdf: Option<PathBuf>,
    /// Do not print the receipt text (with --json it is never printed).
    #[arg(long)]
    no_receipt: bool,
}

pub fn run(args: TerminalArgs) -> ExitCode {
    let json = match &args.command {
        TerminalCommand::SignOn { common, .. }
        | TerminalCommand::SignOff { common }
        | TerminalCommand::Pay { common, .. }
        | TerminalCommand::Preauth { common, .. }
        | TerminalCommand::Complete { common, .. }
        | TerminalCommand::Void { common, .. }
        | TerminalCommand::Refund { common, .. }
        | TerminalCommand::Balance { common, .. }
        | TerminalCommand::Settle { common }
        | TerminalCommand::Reprint { common, .. }
        | TerminalCommand::Batch { common } => common.json,
        TerminalCommand::Init { .. } | TerminalCommand::Tui { .. } => false,
        TerminalCommand::Activate(args) => args.json,
    };
    match execute(args) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            let code = failure.code;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "approved": false,
                        "error": format!("{:#}", failure.error),
                        "exit_code": code,
                    })
                );
            }
            eprintln!("error: {:#}", failure.error);
            ExitCode::from(code)
        }
    }
}

/// An error with the exit code it means.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure {
            code: EXIT_REFUSED,
            error,
        }
    }
}

impl From<PosError> for Failure {
    fn from(error: PosError) -> Self {
        let code = match &error {
            PosError::Link(_) | PosError::ReversalPending { .. } => EXIT_NO_ANSWER,
            PosError::Terminal(terminal::TerminalError::Answer(_)) => EXIT_NO_ANSWER,
            PosError::SignOn(_) => EXIT_DECLINED,
            _ => EXIT_REFUSED,
        };
        Failure {
            code,
            error: error.into(),
        }
    }
}

fn execute(args: TerminalArgs) -> Result<u8, Failure> {
    match args.command {
        TerminalCommand::Activate(args) => Ok(crate::terminal_activate::run(&args)?),
        TerminalCommand::Init {
            demo: terminal_id,
            key_scheme,
            host,
            config,
            language,
            timeout_ms,
        } => {
            init(
                &terminal_id,
                key_scheme,
                &host,
                &config,
                language,
                timeout_ms,
            )?;
            Ok(EXIT_APPROVED)
        }
        TerminalCommand::SignOn { common, operator } => {
            let mut pos = open(&common.config)?;
            let readiness = pos.ready()?;
            let operator = operator.unwrap_or_else(|| pos.operator().to_owned());
            let batch = if readiness.signed_on && operator == pos.operator() {
                pos.state().batch
            } else {
                pos.sign_on(&operator)?
            };
            if common.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "approved": true,
                        "batch": batch,
                        "operator": operator,
                        "reversal_sent": readiness.reversal_sent,
                        "parameters_version": pos.config().parameters_version,
                        "merchant_name": pos.config().merchant_name,
                        "exit_code": EXIT_APPROVED,
                    })
                );
            } else {
                println!(
                    "signed on: terminal {}, operator {operator}, batch {batch:06}, parameters version {}",
                    pos.config().terminal_id,
                    pos.config().parameters_version
                );
                if readiness.reversal_sent {
                    println!("a pending reversal was sent and acknowledged");
                }
            }
            Ok(EXIT_APPROVED)
        }
        TerminalCommand::SignOff { common } => {
            let mut pos = open(&common.config)?;
            pos.sign_off()?;
            if common.json {
                println!(
                    "{}",
                    serde_json::json!({"approved": true, "exit_code": EXIT_APPROVED})
                );
            } else {
                println!("signed off: terminal {}", pos.config().terminal_id);
            }
            Ok(EXIT_APPROVED)
        }
        TerminalCommand::Pay {
            common,
            read,
            amount,
            qr,
            ..
        } if matches!(read.method, MethodArg::Qr) => qr_payment(&common, &amount, &qr),
        TerminalCommand::Pay {
            common,
            read,
            card,
            amount,
            receipt,
            qr: _,
        } => card_transaction(
            &common,
            TransactionType::Sale,
            Some(&read),
            &card,
            Some(&amount),
            None,
            &receipt,
        ),
        TerminalCommand::Preauth {
            common,
            read,
            card,
            amount,
            receipt,
        } => card_transaction(
            &common,
            TransactionType::PreAuthorization,
            Some(&read),
            &card,
            Some(&amount),
            None,
            &receipt,
        ),
        TerminalCommand::Complete {
            common,
            card,
            trace,
            amount,
            receipt,
        } => card_transaction(
            &common,
            TransactionType::Completion,
            None,
            &card,
            Some(&amount),
            Some((trace, None)),
            &receipt,
        ),
        TerminalCommand::Void {
            common,
            card,
            supervisor,
            trace,
            receipt,
        } => supervised(&common, &supervisor).and_then(|approval| {
            card_transaction_with(
                &common,
                TransactionType::Void,
                None,
                &card,
                None,
                Some((trace, None)),
                &receipt,
                approval,
            )
        }),
        TerminalCommand::Refund {
            common,
            card,
            supervisor,
            trace,
            batch,
            amount,
            receipt,
        } => supervised(&common, &supervisor).and_then(|approval| {
            card_transaction_with(
                &common,
                TransactionType::Refund,
                None,
                &card,
                Some(&amount),
                Some((trace, batch)),
                &receipt,
                approval,
            )
        }),
        TerminalCommand::Balance { common, read, card } => card_transaction(
            &common,
            TransactionType::BalanceInquiry,
            Some(&read),
            &card,
            None,
            None,
            &ReceiptArgs {
                escpos_out: None,
                receipt_pdf: None,
                no_receipt: false,
            },
        ),
        TerminalCommand::Settle { common } => settle(&common),
        TerminalCommand::Reprint { common, receipt } => reprint(&common, &receipt),
        TerminalCommand::Batch { common } => batch(&common),
        TerminalCommand::Tui { config, wallet_url } => {
            let config_path = config;
            let (config, key) = load(&config_path)?;
            let currency = config
                .currency()
                .map_err(|reason| anyhow::anyhow!(reason))?;
            let qr = crate::terminal_qr::ScreenQr {
                wallet_url,
                config_path: config_path.clone(),
                terminal_id: config.terminal_id.trim().to_owned(),
                currency,
                order_timeout_seconds: wallet::DEFAULT_ORDER_TIMEOUT_SECONDS,
            };
            terminal::tui::run(config, key, Some(std::sync::Arc::new(qr)))?;
            Ok(EXIT_APPROVED)
        }
    }
}

fn init(
    terminal_id: &str,
    key_scheme: Option<KeySchemeArg>,
    host: &str,
    path: &Path,
    language: LanguageArg,
    timeout_ms: Option<u64>,
) -> anyhow::Result<()> {
    let directory = demo::directory();
    let record = directory
        .terminals
        .iter()
        .find(|terminal| terminal.id == terminal_id)
        .with_context(|| format!("{terminal_id} is not a demo terminal ({DEMO_TERMINALS})"))?;
    let merchant = directory
        .merchants
        .iter()
        .find(|merchant| merchant.id == record.merchant_id)
        .context("the demo terminal's merchant")?;
    if path.exists() {
        anyhow::bail!("{} exists already", path.display());
    }
    let mut config = TerminalConfig::new(
        terminal_id,
        &merchant.id,
        &merchant.name,
        &merchant.city,
        host,
    );
    config.merchant_name_zh = Some(merchant.name_zh.clone());
    // The host works each terminal under one scheme: the demo terminal's. Asked for another,
    // the answer names a demo terminal that has it.
    let own = match demo::key_scheme(terminal_id) {
        "dukpt-aes" => KeyScheme::DukptAes,
        "dukpt-tdes" => KeyScheme::DukptTdes,
        _ => KeyScheme::MasterSession,
    };
    if let Some(asked) = key_scheme.map(KeySchemeArg::scheme)
        && asked != own
    {
        let instead = match asked {
            KeyScheme::DukptAes => demo::DUKPT_TERMINAL,
            KeyScheme::DukptTdes => demo::TDES_DUKPT_TERMINAL,
            KeyScheme::MasterSession => "10000001",
        };
        let words = |scheme| match scheme {
            KeyScheme::DukptAes => "AES DUKPT",
            KeyScheme::DukptTdes => "TDES DUKPT",
            KeyScheme::MasterSession => "master/session",
        };
        anyhow::bail!(
            "demo terminal {terminal_id} is on {} at the host; for {} use --demo {instead}",
            words(own),
            words(asked)
        );
    }
    config.key_scheme = own;
    config.initial_ksn = demo::dukpt_initial_ksn(terminal_id);
    config.language = match language {
        LanguageArg::En => Language::English,
        LanguageArg::Zh => Language::Chinese,
    };
    if let Some(timeout_ms) = timeout_ms {
        config.timeout_ms = timeout_ms;
    }
    config.check().map_err(|reason| anyhow::anyhow!(reason))?;
    let text = config.to_toml().map_err(|reason| anyhow::anyhow!(reason))?;
    terminal::files::write_atomic(path, text.as_bytes())?;
    println!(
        "wrote {} for terminal {terminal_id} of {} ({}), key scheme {}; its state goes to {}",
        path.display(),
        merchant.name,
        merchant.id,
        config.key_scheme.name(),
        config.state_dir.display()
    );
    Ok(())
}

/// The configuration and the key it names: the terminal master key (master/session) or the
/// PIN pad's DUKPT initial key (AES IK or TDES IPEK).
pub(crate) fn load(path: &Path) -> anyhow::Result<(TerminalConfig, TerminalKey)> {
    let config = TerminalConfig::load(path)?;
    let initial_ksn = || {
        config
            .initial_ksn
            .as_deref()
            .and_then(|text| hex::decode(text).ok())
            .context("initial_ksn")
    };
    if config.key_scheme == KeyScheme::DukptTdes {
        let ipek = match &config.master_key {
            MasterKey::Demo => {
                demo::demo_tdes_dukpt_ipek(&config.terminal_id).with_context(|| {
                    format!(
                        "master_key = \"demo\", but {} is not the demo TDES DUKPT terminal ({})",
                        config.terminal_id,
                        demo::TDES_DUKPT_TERMINAL
                    )
                })?
            }
            MasterKey::File(file) => paycrypto::TdesKey::new(&key_file(file)?)
                .context("the TDES DUKPT initial key (IPEK, 32 hex digits)")?,
        };
        let device = TdesDukptDevice::new(ipek, &initial_ksn()?)?;
        return Ok((config, TerminalKey::TdesDukpt(device)));
    }
    if config.key_scheme == KeyScheme::DukptAes {
        let initial_key = match &config.master_key {
            MasterKey::Demo => {
                demo::demo_dukpt_initial_key(&config.terminal_id).with_context(|| {
                    format!(
                        "master_key = \"demo\", but {} is not the demo AES DUKPT terminal ({})",
                        config.terminal_id,
                        demo::DUKPT_TERMINAL
                    )
                })?
            }
            MasterKey::File(file) => paycrypto::AesKey::new(&key_file(file)?)
                .context("the AES DUKPT initial key (32, 48 or 64 hex digits)")?,
        };
        let device = AesDukptDevice::new(initial_key, &initial_ksn()?)?;
        return Ok((config, TerminalKey::AesDukpt(device)));
    }
    let bytes = match &config.master_key {
        MasterKey::Demo => demo::demo_test_key(&demo::terminal_master_key_name(
            &config.terminal_id,
        ))
        .with_context(|| {
            format!(
                "master_key = \"demo\", but {} is not a demo terminal",
                config.terminal_id
            )
        })?,
        MasterKey::File(file) => key_file(file)?,
    };
    let tmk = paycrypto::TdesKey::new(&bytes).context("the terminal master key")?;
    Ok((config, TerminalKey::Master(tmk)))
}

/// The key in a `master_key` file, in hex.
fn key_file(file: &Path) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the master key file {}", file.display()))?;
    hex::decode(text.trim())
        .map_err(|_| anyhow::anyhow!("the master key file {} is not hex", file.display()))
}

fn open(path: &Path) -> Result<Pos, Failure> {
    let (config, key) = load(path)?;
    Ok(Pos::open_with(config, key)?)
}

fn amount_minor(text: &str, config: &TerminalConfig) -> anyhow::Result<u64> {
    let currency = config
        .currency()
        .map_err(|reason| anyhow::anyhow!(reason))?;
    let amount = money::Amount::parse(text, currency).map_err(|_| {
        anyhow::anyhow!("--amount {text:?} is not an amount in {}", currency.alpha())
    })?;
    u64::try_from(amount.minor())
        .ok()
        .filter(|minor| *minor > 0)
        .with_context(|| format!("--amount {text:?} must be above zero"))
}

/// The PIN of `--pin`: the digits, or `-` for one line of standard input (which keeps the
/// PIN out of the process list and the shell history).
fn read_pin(argument: &str) -> anyhow::Result<paycrypto::Pin> {
    let bad = || anyhow::anyhow!("--pin must be 4 to 12 digits");
    if argument != "-" {
        return paycrypto::Pin::new(argument).map_err(|_| bad());
    }
    terminal::pos::read_pin_line(&mut std::io::stdin().lock())
        .context("reading the PIN from standard input")?
        .ok_or_else(bad)
}

/// `pay --method qr`: the merchant-presented QR payment (docs/wallet.md). The code is shown
/// on standard output, or on standard error with `--json` (which keeps standard output one
/// JSON object).
fn qr_payment(
    common: &Common,
    amount: &str,
    args: &crate::terminal_qr::QrArgs,
) -> Result<u8, Failure> {
    let json = common.json;
    let outcome = crate::terminal_qr::pay(&common.config, amount, args, |screen| {
        if json {
            eprint!("{screen}");
        } else {
            print!("{screen}");
        }
        let _ = std::io::Write::flush(&mut std::io::stdout());
    })?;
    if json {
        println!("{}", outcome.json);
    } else {
        print!("{}", outcome.text);
        if !outcome.text.ends_with('\n') {
            println!();
        }
    }
    Ok(outcome.code)
}

/// Refuses a void or refund without the supervisor's password, before anything is sent. With
/// `--supervisor-no`, the password is the host's to check (the approval to send); otherwise
/// terminal.toml's is checked here.
fn supervised(
    common: &Common,
    supervisor: &SupervisorArgs,
) -> Result<Option<terminal::pos::Supervisor>, Failure> {
    let config = TerminalConfig::load(&common.config).map_err(anyhow::Error::from)?;
    let password = match supervisor.supervisor.as_deref() {
        None => {
            return Err(anyhow::anyhow!(
                "a void or a refund needs the supervisor's approval: add --supervisor PASSWORD (or --supervisor - to read it from standard input)"
            )
            .into());
        }
        Some("-") => {
            let mut line = zeroize::Zeroizing::new(String::new());
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the supervisor's password from standard input")?;
            zeroize::Zeroizing::new(line.trim().to_owned())
        }
        Some(password) => zeroize::Zeroizing::new(password.to_owned()),
    };
    if let Some(operator_no) = &supervisor.supervisor_no {
        let password = paycrypto::Pin::new(&password).map_err(|_| {
            anyhow::anyhow!("the supervisor's password is 4 to 12 digits; nothing was sent")
        })?;
        return Ok(Some(terminal::pos::Supervisor {
            operator_no: operator_no.clone(),
            password,
        }));
    }
    if !config.is_supervisor_password(&password) {
        return Err(anyhow::anyhow!("the supervisor's password is wrong; nothing was sent").into());
    }
    Ok(None)
}

fn card_transaction(
    common: &Common,
    kind: TransactionType,
    read: Option<&ReadArgs>,
    card_args: &CardArgs,
    amount: Option<&str>,
    original: Option<(u32, Option<u32>)>,
    receipt_args: &ReceiptArgs,
) -> Result<u8, Failure> {
    card_transaction_with(
        common,
        kind,
        read,
        card_args,
        amount,
        original,
        receipt_args,
        None,
    )
}

/// [`card_transaction`] with a supervisor's approval for the host to check.
#[allow(clippy::too_many_arguments)] // The command's parts, each from its own clap group.
fn card_transaction_with(
    common: &Common,
    kind: TransactionType,
    read: Option<&ReadArgs>,
    card_args: &CardArgs,
    amount: Option<&str>,
    original: Option<(u32, Option<u32>)>,
    receipt_args: &ReceiptArgs,
    supervisor: Option<terminal::pos::Supervisor>,
) -> Result<u8, Failure> {
    let trace = original.map(|(stan, _)| stan);
    let mut pos = open(&common.config)?;
    if read.is_some_and(|read| matches!(read.method, MethodArg::Qr)) {
        return Err(anyhow::anyhow!("--method qr is for `pay` only").into());
    }
    let card_path = card_args
        .card
        .as_deref()
        .context("--card is required (a card file from `easypos cards issue`)")?;
    let mut card = CardFile::open(card_path).map_err(anyhow::Error::from)?;
    let amount_minor = match amount {
        Some(text) => amount_minor(text, pos.config())?,
        // A void is for the sale's whole amount, which the batch knows.
        None => match trace.and_then(|stan| pos.state().find(stan)) {
            Some(entry) => entry.amount_minor,
            None => 0,
        },
    };
    // A reversal left pending goes first, and may need a new sign-on: the PIN block is made
    // under the keys the message will travel with.
    pos.ready()?;
    let pin_block = match card_args.pin.as_deref() {
        Some(digits) => {
            let pin = read_pin(digits)?;
            Some(pos.pin_block(&pin, &card)?)
        }
        None => None,
    };
    let method = match read.map(|read| read.method) {
        Some(MethodArg::Debit) => terminal::pos::Method::Debit,
        Some(MethodArg::Credit) => Method::Credit,
        // Refused above: a QR payment has no card.
        Some(MethodArg::Qr) => return Err(anyhow::anyhow!("--method qr is for `pay` only").into()),
        // Follow-ups: the card says what it is.
        None => match card.data.product {
            terminal::cardfile::CardProduct::Debit => Method::Debit,
            terminal::cardfile::CardProduct::Credit => Method::Credit,
        },
    };
    let presentation = match read.map(|read| read.entry) {
        Some(EntryArg::Swipe) => Presentation::Swipe,
        Some(EntryArg::Tap) => Presentation::Tap,
        Some(EntryArg::Chip) | None => Presentation::Insert,
    };
    let result = pos.transact(Payment {
        kind,
        method,
        presentation,
        fallback: read.is_some_and(|read| read.fallback),
        card: &mut card,
        pin_block,
        amount_minor,
        original_stan: trace,
        original_batch: original.and_then(|(_, batch)| batch),
        supervisor,
    })?;
    let code = if result.approved {
        EXIT_APPROVED
    } else if result.response_code.is_none() || result.reversal.is_some() {
        EXIT_NO_ANSWER
    } else {
        EXIT_DECLINED
    };
    if let Some(path) = &receipt_args.escpos_out
        && result.approved
    {
        terminal::files::write_output(path, &result.receipt.escpos(false))
            .map_err(anyhow::Error::from)?;
    }
    if let Some(path) = &receipt_args.receipt_pdf
        && result.approved
    {
        let pdf = result.receipt.pdf(false, pos.config().language);
        terminal::files::write_output(path, &pdf).map_err(anyhow::Error::from)?;
    }
    print_result(&pos, &result, common.json, receipt_args.no_receipt, code)?;
    Ok(code)
}

fn print_result(
    pos: &Pos,
    result: &TransactionResult,
    json: bool,
    no_receipt: bool,
    code: u8,
) -> anyhow::Result<()> {
    let language = pos.config().language;
    if json {
        let mut value = serde_json::to_value(result)?;
        value["exit_code"] = code.into();
        value["receipt_text"] = if result.approved {
            result
                .receipt
                .text(Copy::Cardholder, false, language)
                .into()
        } else {
            serde_json::Value::Null
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    if result.approved && !no_receipt {
        println!("{}", result.receipt.both_copies(false, language));
    }
    match (&result.response_code, result.reversal) {
        (_, Some(status)) => println!(
            "NOT COMPLETED: {} (reversal {})",
            result.message,
            match status {
                terminal::pos::ReversalStatus::Acknowledged => "acknowledged by the host",
                terminal::pos::ReversalStatus::Pending =>
                    "pending: it is sent before the next transaction",
            }
        ),
        (Some(code), None) if result.approved => println!(
            "{code} APPROVED: {} trace {:06}{}",
            result.message,
            result.receipt.stan,
            result
                .receipt
                .balance
                .as_ref()
                .map(|balance| format!(", balance {} {balance}", result.receipt.currency))
                .unwrap_or_default()
        ),
        (Some(code), None) => println!("{code} DECLINED: {}", result.message),
        (None, None) => println!("NOT COMPLETED: {}", result.message),
    }
    Ok(())
}

fn settle(common: &Common) -> Result<u8, Failure> {
    let mut pos = open(&common.config)?;
    let result = pos.settle()?;
    let code = if result.agreed {
        EXIT_APPROVED
    } else {
        EXIT_DECLINED
    };
    if common.json {
        let mut value = serde_json::to_value(&result).map_err(anyhow::Error::from)?;
        value["exit_code"] = code.into();
        println!("{value}");
    } else {
        let amount = |minor: u64| {
            money::Amount::new(
                minor as i64,
                pos.config().currency().unwrap_or(money::Currency::CNY),
            )
            .format_major()
        };
        println!(
            "batch {:06}: {} debits {} {}, {} credits {} {}: {}",
            result.batch,
            result.debit_count,
            result.currency,
            amount(result.debit_minor),
            result.credit_count,
            result.currency,
            amount(result.credit_minor),
            match (result.agreed, result.closed) {
                (true, _) => "totals agree, batch closed".to_owned(),
                (false, true) => format!(
                    "TOTALS DISAGREED: {} transactions uploaded, the host found the difference and closed the batch",
                    result.uploaded
                ),
                (false, false) => "TOTALS DISAGREE with the host; the batch stays open".to_owned(),
            }
        );
    }
    Ok(code)
}

fn reprint(common: &Common, receipt_args: &ReceiptArgs) -> Result<u8, Failure> {
    let (config, key) = load(&common.config)?;
    let pos = Pos::open_with(config, key)?;
    let receipt = pos
        .last_receipt()
        .context("no receipt to reprint in this batch")?;
    if let Some(path) = &receipt_args.escpos_out {
        terminal::files::write_output(path, &receipt.escpos(true)).map_err(anyhow::Error::from)?;
    }
    let language = pos.config().language;
    if let Some(path) = &receipt_args.receipt_pdf {
        terminal::files::write_output(path, &receipt.pdf(true, language))
            .map_err(anyhow::Error::from)?;
    }
    if common.json {
        println!(
            "{}",
            serde_json::json!({
                "receipt": receipt,
                "reprint": true,
                "receipt_text": receipt.text(Copy::Cardholder, true, language),
                "exit_code": EXIT_APPROVED,
            })
        );
    } else {
        println!("{}", receipt.both_copies(true, language));
    }
    Ok(EXIT_APPROVED)
}

fn batch(common: &Common) -> Result<u8, Failure> {
    let (config, key) = load(&common.config)?;
    let pos = Pos::open_with(config, key)?;
    let state = pos.state();
    if common.json {
        println!(
            "{}",
            serde_json::json!({
                "batch": state.batch,
                "transactions": state.transactions,
                "pending_reversal": state.pending_reversal.as_ref().map(|pending| pending.original_stan),
                "exit_code": EXIT_APPROVED,
            })
        );
        return Ok(EXIT_APPROVED);
    }
    println!("batch {:06}", state.batch);
    for entry in &state.transactions {
        println!(
            "{:06} {:<18} {:>12} {} {} {}{}",
            entry.stan,
            entry.kind.name(),
            entry.amount_minor,
            entry.currency,
            entry.card,
            entry.response_code,
            if entry.reversed { " reversed" } else { "" }
        );
    }
    if let Some(pending) = &state.pending_reversal {
        println!("reversal of {:06} pending", pending.original_stan);
    }
    Ok(EXIT_APPROVED)
}
