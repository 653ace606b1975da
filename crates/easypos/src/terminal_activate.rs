//! `easypos terminal activate --code …`: a new terminal's first start (docs/onboarding.md).
//! It sends its one-time activation code to the platform, receives its parameters (merchant,
//! host, CVM limit, languages, payment methods) and its terminal master key as a TR-31 key
//! block under the transport key derived from the code, unwraps and checks the key, writes
//! the key file (mode 0600) and `terminal.toml`, and signs on. The key never appears on screen
//! or in the JSON output: only its check value does.

use crate::terminal_cmd::{EXIT_APPROVED, EXIT_NO_ANSWER, EXIT_REFUSED};
use anyhow::Context;
use onboarding::terminals::{ActivationPackage, transport_key};
use std::path::{Path, PathBuf};
use terminal::config::{MasterKey, TerminalConfig};

/// The key file's name, beside the configuration.
pub const MASTER_KEY_FILE: &str = "master.key";

#[derive(Debug, clap::Args)]
pub struct ActivateArgs {
    /// The one-time activation code (dashes and case do not matter).
    #[arg(long, value_name = "CODE")]
    code: String,
    /// The platform's web address, as `easypos up` prints it.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Where to write the configuration (the key file goes beside it).
    #[arg(long, value_name = "FILE", default_value = "terminal.toml")]
    config: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Activates, then signs on; the exit code as `easypos terminal` defines them.
pub fn run(args: &ActivateArgs) -> anyhow::Result<u8> {
    if args.config.exists() {
        anyhow::bail!(
            "{} exists already: this terminal is configured (move it away to activate again)",
            args.config.display()
        );
    }
    let body = serde_json::json!({ "code": args.code }).to_string();
    let answer =
        crate::terminal_qr::exchange(&args.url, "POST", "/onboarding/v1/activate", Some(&body))
            .with_context(|| format!("activating at {}", args.url))?;
    if answer.status != 200 {
        let detail = serde_json::from_slice::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|problem| problem["detail"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("HTTP {}", answer.status));
        if args.json {
            println!(
                "{}",
                serde_json::json!({ "activated": false, "error": detail })
            );
        }
        eprintln!("error: the platform refused the activation: {detail}");
        return Ok(EXIT_REFUSED);
    }
    let package: ActivationPackage =
        serde_json::from_slice(&answer.body).context("the platform's activation answer")?;
    let key = unwrap_key(&args.code, &package)?;
    let config = write_configuration(&args.config, &package, &key)?;
    let signed_on =
        terminal::pos::Pos::open_with(config, key.terminal_key()?).and_then(|mut pos| {
            let operator = pos.operator().to_owned();
            pos.sign_on(&operator)
        });
    let summary = serde_json::json!({
        "activated": true,
        "terminal_id": package.terminal_id,
        "merchant_id": package.merchant_id,
        "merchant_name": package.merchant_name,
        "host": package.host,
        "master_key_check_value": package.master_key_check_value,
        "signed_on": signed_on.is_ok(),
        "batch": signed_on.as_ref().ok(),
    });
    if args.json {
        println!("{summary}");
    } else {
        println!(
            "activated terminal {} of {} ({}); master key check value {}; configuration in {}",
            package.terminal_id,
            package.merchant_name,
            package.merchant_id,
            package.master_key_check_value,
            args.config.display()
        );
    }
    match signed_on {
        Ok(batch) => {
            if !args.json {
                println!("signed on, batch {batch:06}: ready to sell");
            }
            Ok(EXIT_APPROVED)
        }
        Err(error) => {
            eprintln!(
                "error: activated, but the sign-on failed (run `easypos terminal sign-on`): {error:#}"
            );
            Ok(EXIT_NO_ANSWER)
        }
    }
}

/// The key an activation brings: a terminal master key, or an AES DUKPT initial key and
/// the initial KSN it belongs to.
enum ActivatedKey {
    Master(paycrypto::TdesKey),
    AesDukpt(paycrypto::AesKey, Vec<u8>),
}

impl ActivatedKey {
    fn terminal_key(&self) -> anyhow::Result<terminal::pos::TerminalKey> {
        Ok(match self {
            ActivatedKey::Master(key) => terminal::pos::TerminalKey::Master(key.clone()),
            ActivatedKey::AesDukpt(key, ksn) => terminal::pos::TerminalKey::AesDukpt(
                terminal::dukpt::AesDukptDevice::new(key.clone(), ksn)?,
            ),
        })
    }

    fn bytes(&self) -> &[u8] {
        match self {
            ActivatedKey::Master(key) => key.expose(),
            ActivatedKey::AesDukpt(key, _) => key.expose(),
        }
    }
}

/// The key from its key block, of the usage the key scheme names, checked against the check
/// value sent with it.
fn unwrap_key(code: &str, package: &ActivationPackage) -> anyhow::Result<ActivatedKey> {
    let (header, key) = paycrypto::tr31::unwrap(&transport_key(code), &package.master_key_block)
        .map_err(|_| {
            anyhow::anyhow!("the key block does not open under this code's transport key")
        })?;
    let (key, check_value) = match package.key_scheme.as_str() {
        "dukpt-aes" => {
            if header.usage != paycrypto::tr31::KeyUsage::DUKPT_INITIAL_KEY {
                anyhow::bail!("the key block does not hold a DUKPT initial key");
            }
            let key = paycrypto::AesKey::new(key.expose()).context("the AES DUKPT initial key")?;
            let ksn = package
                .initial_ksn
                .as_deref()
                .and_then(|text| hex::decode(text).ok())
                .context("the activation brought no initial KSN")?;
            let check_value = paycrypto::to_hex(&paycrypto::kcv::aes_cmac_kcv(&key));
            (ActivatedKey::AesDukpt(key, ksn), check_value)
        }
        _ => {
            if header.usage != paycrypto::tr31::KeyUsage::KEY_ENCRYPTION {
                anyhow::bail!("the key block does not hold a key-encryption key");
            }
            let key = paycrypto::TdesKey::new(key.expose()).context("the terminal master key")?;
            let check_value = paycrypto::to_hex(&paycrypto::kcv::tdes(&key));
            (ActivatedKey::Master(key), check_value)
        }
    };
    if !check_value.eq_ignore_ascii_case(&package.master_key_check_value) {
        anyhow::bail!(
            "the master key's check value {check_value} is not the {} the platform sent",
            package.master_key_check_value
        );
    }
    Ok(key)
}

/// Writes the key file (0600) and the configuration; the configuration as loaded back.
fn write_configuration(
    path: &Path,
    package: &ActivationPackage,
    key: &ActivatedKey,
) -> anyhow::Result<TerminalConfig> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let key_hex = zeroize::Zeroizing::new(paycrypto::to_hex(key.bytes()));
    terminal::files::write_atomic(&directory.join(MASTER_KEY_FILE), key_hex.as_bytes())?;
    let mut config = TerminalConfig::new(
        &package.terminal_id,
        &package.merchant_id,
        &package.merchant_name,
        &package.merchant_city,
        &package.host,
    );
    config.master_key = MasterKey::File(PathBuf::from(MASTER_KEY_FILE));
    if package.key_scheme == "dukpt-aes" {
        config.key_scheme = terminal::config::KeyScheme::DukptAes;
        config.initial_ksn = package.initial_ksn.clone();
    }
    config.currency = package.currency.clone();
    config.contactless_cvm_limit = package.contactless_cvm_limit.clone();
    config.payment_methods = package.payment_methods.clone();
    config.parameters_version = package.parameters_version;
    if package.languages.first().map(String::as_str) == Some("zh") {
        config.language = terminal::config::Language::Chinese;
    }
    config.check().map_err(|reason| anyhow::anyhow!(reason))?;
    let text = config.to_toml().map_err(|reason| anyhow::anyhow!(reason))?;
    terminal::files::write_atomic(path, text.as_bytes())?;
    Ok(TerminalConfig::load(path)?)
}
