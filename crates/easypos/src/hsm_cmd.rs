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
//! Check values are AES-CMAC KCVs (the first 3 bytes of the CMAC of a zero block), as for every
//! AES key in easypos; the HSM prints the same value for the master key it loads.

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

pub fn run(args: HsmArgs) -> anyhow::Result<()> {
    match args.command {
        HsmCommand::Components { count, dir } => components(count, &dir),
        HsmCommand::Combine { components, out } => combine(&components, &out),
    }
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
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let text = Zeroizing::new(format!("{}\n", hex::encode(key)));
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
