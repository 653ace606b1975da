//! `easypos hsm`: the key ceremony that creates the software HSM's master key (LMK) under split
//! knowledge and dual control (docs/key-ceremonies.md).
//!
//! - `components --count N --dir DIR` makes N random 32-byte components, each in its own file
//!   (mode 0600) for its own custodian, and prints each component's check value and the check
//!   value of the key they combine to. No component says anything about the key alone.
//! - `combine --component FILE … --out FILE` XORs the components (each custodian brings theirs
//!   and compares its check value), writes the master key (mode 0600, never over an existing
//!   file) and prints its check value, to be compared with the one recorded at creation.
//!
//! - `rotate --new-key FILE` starts a rotation: the key file then holds the new key first and
//!   the old one after it, so that tokens under either open and new ones are wrapped under the
//!   new key. `rewrap` (automatic at the start of a SQLite installation) moves every stored
//!   token to the new key in one transaction; `retire` checks that none is left under the old
//!   key and drops it from the file. Terminals and receipts keep working throughout.
//!
//! Check values are AES-CMAC KCVs (the first 3 bytes of the CMAC of a zero block), as for every
//! AES key in easypos; the HSM prints the same value for the master key it loads.

use crate::config::Config;
use anyhow::{Context, bail};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const KEY_BYTES: usize = 32;

#[derive(Debug, clap::Args)]
pub struct HsmArgs {
    #[command(subcommand)]
    command: HsmCommand,
}

#[derive(Debug, clap::Subcommand)]
enum HsmCommand {
    /// Make the components of a new master key, one file per custodian.
    Components {
        /// How many custodians (2 to 9); all of them are needed to rebuild the key.
        #[arg(long, default_value_t = 3)]
        count: usize,
        /// A new directory for the component files (hand each file to its custodian, then
        /// delete it from this machine).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Start rotating the master key: the configured key file (hsm.lmk_file) gets the new key
    /// first and keeps the current one as retired.
    Rotate {
        /// The new master key (from `combine`).
        #[arg(long, value_name = "FILE")]
        new_key: PathBuf,
    },
    /// Move every stored key to the current master key (PostgreSQL: once every node runs with
    /// the rotated key file; SQLite: done by `easypos up` at start).
    Rewrap,
    /// End a rotation: check that no stored key is left under the retired master key, then
    /// drop it from the key file.
    Retire,
    /// Combine components into the master key file (hsm.lmk_file).
    Combine {
        /// A component file; give each custodian's, in any order.
        #[arg(long = "component", value_name = "FILE", required = true)]
        components: Vec<PathBuf>,
        /// Where to write the master key; must not exist.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

pub fn run(args: HsmArgs, overrides: &crate::config::Overrides) -> anyhow::Result<()> {
    match args.command {
        HsmCommand::Components { count, dir } => components(count, &dir),
        HsmCommand::Combine { components, out } => combine(&components, &out),
        HsmCommand::Rotate { new_key } => rotate(&Config::load(overrides)?, &new_key),
        HsmCommand::Rewrap => {
            let config = Config::load(overrides)?;
            runtime()?.block_on(async {
                let store = crate::open_store(&config).await?;
                let hsm = crate::up::open_hsm(&config)?;
                let moved = rewrap_stored_keys(&store, &hsm).await;
                store.close().await?;
                println!(
                    "{} stored keys moved to the master key with check value {}; next: easypos hsm retire",
                    moved?,
                    hsm::Hsm::master_key_check_value(&hsm)
                );
                Ok(())
            })
        }
        HsmCommand::Retire => {
            let config = Config::load(overrides)?;
            runtime()?.block_on(retire(&config))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The key lines of a key file: 64 hex digits each, the current key first; blank lines and
/// `#` comments skipped (the same reading as `hsm::SoftHsm::from_file`).
fn key_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

/// Reads one master key (64 hex digits) from a file.
fn read_key(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the key file {}", path.display()))?,
    );
    let mut lines = key_lines(&text);
    let (Some(line), None) = (lines.next(), lines.next()) else {
        bail!(
            "{} must hold exactly one master key (64 hex digits)",
            path.display()
        );
    };
    let key = Zeroizing::new(
        hex::decode(line)
            .ok()
            .filter(|key| key.len() == KEY_BYTES)
            .ok_or_else(|| {
                anyhow::anyhow!("{} is not a master key (64 hex digits)", path.display())
            })?,
    );
    Ok(key)
}

/// Writes the key file: the current key, then each retired one, with their check values as
/// comments; written beside and renamed, mode 0600.
fn write_key_file(path: &Path, current: &[u8], retired: &[&[u8]]) -> anyhow::Result<()> {
    let mut text = Zeroizing::new(format!(
        "# easypos HSM master key, check value {}\n{}\n",
        check_value(current)?,
        hex::encode(current)
    ));
    for key in retired {
        text.push_str(&format!(
            "# retired (being rotated out), check value {}\n{}\n",
            check_value(key)?,
            hex::encode(key)
        ));
    }
    // Whole or not at all, mode 0600, synced with its directory.
    terminal::files::write_atomic(path, text.as_bytes())?;
    Ok(())
}

fn rotate(config: &Config, new_key: &Path) -> anyhow::Result<()> {
    let path = &config.lmk_file;
    if !path.exists() {
        bail!(
            "there is no master key at {} (hsm.lmk_file) to rotate",
            path.display()
        );
    }
    let current = read_key(path).map_err(|_| {
        anyhow::anyhow!(
            "{} holds more than the current master key: a rotation is already under way; finish it with `easypos hsm retire`",
            path.display()
        )
    })?;
    let new = read_key(new_key)?;
    if new[..] == current[..] {
        bail!(
            "the new key is the current master key (check value {})",
            check_value(&current)?
        );
    }
    write_key_file(path, &new, &[&current])?;
    println!(
        "{} now holds the new master key (check value {}) and the retired one (check value {}).",
        path.display(),
        check_value(&new)?,
        check_value(&current)?
    );
    println!(
        "Next: restart easypos (SQLite: it moves every stored key to the new master key at start; PostgreSQL: give every node this file, restart them one at a time, then run `easypos hsm rewrap` once), then `easypos hsm retire`."
    );
    Ok(())
}

/// Moves every stored token under a retired master key to the current one, in one
/// transaction (read again and retried if a token changed meanwhile); the number moved.
pub(crate) async fn rewrap_stored_keys(
    store: &store::Store,
    hsm: &hsm::SoftHsm,
) -> anyhow::Result<usize> {
    for _ in 0..5 {
        let mut changes = Vec::new();
        for token in store.key_tokens().await? {
            let rewrapped = hsm
                .rewrap(&hsm::KeyToken::new(token.token.clone()))
                .with_context(|| format!("{token:?} opens under no known master key"))?;
            if let Some(new) = rewrapped {
                changes.push((token, new.as_str().to_owned()));
            }
        }
        let moved = changes.len();
        if store.replace_key_tokens(changes).await? {
            return Ok(moved);
        }
    }
    bail!("stored keys kept changing while they were rewrapped; run `easypos hsm rewrap` again")
}

async fn retire(config: &Config) -> anyhow::Result<()> {
    let path = &config.lmk_file;
    let loaded = crate::up::open_hsm(config)?;
    let retired = loaded.retired_check_values();
    if retired.is_empty() {
        bail!(
            "{} holds only the current master key: there is nothing to retire",
            path.display()
        );
    }
    let text = Zeroizing::new(std::fs::read_to_string(path)?);
    let current = Zeroizing::new(hex::decode(key_lines(&text).next().unwrap_or_default())?);
    let alone = hsm::SoftHsm::new(&current)?;
    let tokens = store::key_tokens::stored_tokens(&config.backend).await?;
    let left = tokens
        .iter()
        .filter(|token| {
            !matches!(
                alone.rewrap(&hsm::KeyToken::new(token.token.clone())),
                Ok(None)
            )
        })
        .count();
    if left > 0 {
        bail!(
            "{left} of {} stored keys are not under the current master key yet; restart easypos (SQLite) or run `easypos hsm rewrap` (PostgreSQL), then retire",
            tokens.len()
        );
    }
    write_key_file(path, &current, &[])?;
    println!(
        "All {} stored keys are under the master key with check value {}; the retired key ({}) is dropped from {}. Destroy its components as the ceremony log says.",
        tokens.len(),
        check_value(&current)?,
        retired.join(", "),
        path.display()
    );
    Ok(())
}

/// The AES-CMAC check value of a 32-byte key, as the HSM reports its master key's.
fn check_value(key: &[u8]) -> anyhow::Result<String> {
    let hsm = hsm::SoftHsm::new(key).context("a master key component")?;
    Ok(hsm::Hsm::master_key_check_value(&hsm))
}

fn components(count: usize, dir: &Path) -> anyhow::Result<()> {
    if !(2..=9).contains(&count) {
        bail!("--count must be 2 to 9 custodians");
    }
    if dir.exists() {
        bail!(
            "{} exists; the components go into a new directory",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    for number in 1..=count {
        let component = Zeroizing::new(hsm::random_bytes::<KEY_BYTES>());
        for (byte, part) in key.iter_mut().zip(component.iter()) {
            *byte ^= part;
        }
        let path = dir.join(format!("component-{number}.key"));
        write_secret(&path, &component[..])?;
        println!(
            "component {number}: {}  check value {}",
            path.display(),
            check_value(&component[..])?
        );
    }
    println!(
        "master key check value {} (record it; `combine` must print the same)",
        check_value(&key[..])?
    );
    Ok(())
}

fn combine(components: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    if components.len() < 2 {
        bail!("give at least two --component files: one person alone must not hold the key");
    }
    if out.exists() {
        bail!(
            "{} exists; a master key file is never overwritten (move it aside first)",
            out.display()
        );
    }
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    let mut seen = Vec::new();
    for path in components {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the component {}", path.display()))?,
        );
        let component = Zeroizing::new(hex::decode(text.trim()).map_err(|_| {
            anyhow::anyhow!("{} is not a key component (64 hex digits)", path.display())
        })?);
        if component.len() != KEY_BYTES {
            bail!(
                "{} is not a key component (64 hex digits, got {})",
                path.display(),
                component.len() * 2
            );
        }
        let check = check_value(&component)?;
        if seen.contains(&check) {
            bail!(
                "{} is the same component as another one given (check value {check})",
                path.display()
            );
        }
        println!("component {}: check value {check}", path.display());
        seen.push(check);
        for (byte, part) in key.iter_mut().zip(component.iter()) {
            *byte ^= part;
        }
    }
    if let Some(parent) = out.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    write_secret(out, &key[..])?;
    println!(
        "master key written to {} with check value {}",
        out.display(),
        check_value(&key[..])?
    );
    Ok(())
}

/// Writes `key` as hex to a new file readable by its owner only.
fn write_secret(path: &Path, key: &[u8]) -> anyhow::Result<()> {
    write_secret_text(path, &Zeroizing::new(format!("{}\n", hex::encode(key))))
}

fn write_secret_text(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
