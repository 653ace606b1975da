//! `easypos audit`: the hash-chained audit log of back-office actions (docs/audit.md).
//! `verify` walks the chain and exits 1 at the first break, naming it; `list` prints entries.
//! Both read the configured store; on SQLite, stop `easypos up` first (one process owns the
//! database file), or ask a running platform with `GET /api/v1/audit/verify`.
//! `verify --export FILE` checks an export with its proof (the console's Audit log page)
//! offline, without any store (docs/audit.md#exports).

use crate::config::Config;
use store::audit::{AuditQuery, MAX_AUDIT_PAGE};

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Walk the whole chain and report the first changed, inserted or deleted entry (exit 1
    /// if there is one).
    Verify {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Check this export (JSON, from the console's Audit log page) instead of the store:
        /// offline, no database needed.
        #[arg(long, value_name = "FILE")]
        export: Option<std::path::PathBuf>,
        /// With --export: the platform's anchor public key (hex) as you know it; the export
        /// must be signed with it.
        #[arg(long, value_name = "HEX", requires = "export")]
        key: Option<String>,
    },
    /// Sign the chain's head now with the platform's anchor key in the HSM (the host also
    /// does it every 100 entries), so that a tail cut after it is caught by `verify`.
    Anchor {
        /// Print the anchor as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print entries, oldest first.
    List {
        /// Only entries after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Only this user's actions.
        #[arg(long)]
        actor: Option<String>,
        /// Only actions starting with this, e.g. `freeze.`.
        #[arg(long)]
        action: Option<String>,
        /// Only actions on this target, e.g. `terminal:10000001`.
        #[arg(long)]
        target: Option<String>,
        /// Print a JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the command; `Ok(false)` when `verify` found a break.
pub async fn run(config: &Config, args: AuditArgs) -> anyhow::Result<bool> {
    if let AuditCommand::Verify {
        json,
        export: Some(file),
        key,
    } = &args.command
    {
        return verify_export(file, key.as_deref(), *json);
    }
    // Shared, because an anchor's signer holds it too.
    let store = std::sync::Arc::new(crate::open_store(config).await?);
    let result = match args.command {
        AuditCommand::Verify { json, .. } => verify(config, &store, json).await,
        AuditCommand::Anchor { json } => anchor(config, store.clone(), json).await,
        AuditCommand::List {
            after,
            limit,
            actor,
            action,
            target,
            json,
        } => {
            if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
                anyhow::bail!("--limit must be 1 to {MAX_AUDIT_PAGE}; page on with --after");
            }
            let entries = store
                .audit_entries(AuditQuery {
                    after_seq: after,
                    limit,
                    actor,
                    action_prefix: action,
                    target,
                    tenants: None,
                    ..AuditQuery::default()
                })
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                for entry in &entries {
                    println!(
                        "{:>6}  {}  {:<16} {:<18} {:<28} {}{}",
                        entry.seq,
                        api::time::rfc3339_seconds(entry.at),
                        entry.actor,
                        entry.action,
                        entry.target,
                        entry.detail,
                        if entry.tenant.is_empty() {
                            String::new()
                        } else {
                            format!("  [{}]", entry.tenant)
                        }
                    );
                }
            }
            Ok(true)
        }
    };
    match std::sync::Arc::try_unwrap(store) {
        Ok(store) => store.close().await?,
        Err(_) => anyhow::bail!("the store is still in use"),
    }
    result
}

/// Signs the head now.
async fn anchor(
    config: &Config,
    store: std::sync::Arc<store::Store>,
    json: bool,
) -> anyhow::Result<bool> {
    let hsm: std::sync::Arc<dyn hsm::Hsm> = std::sync::Arc::new(crate::up::open_hsm(config)?);
    let anchorer = api::audit_anchors::AuditAnchorer::new(store, hsm);
    let Some(anchor) = anchorer.anchor(now_seconds()).await? else {
        anyhow::bail!("the audit log is empty: nothing to anchor yet");
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&anchor)?);
    } else {
        println!(
            "anchored entry {} ({}) with key {} at {}",
            anchor.seq,
            anchor.hash,
            anchor.key_id,
            api::time::rfc3339_seconds(anchor.at)
        );
    }
    Ok(true)
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Anchor keys stored without a token this platform's HSM made: anchors they sign are forged.
/// Without the master key file (a copy of the database checked elsewhere) the keys are taken
/// as stored, and the text says so.
async fn foreign_anchor_keys(
    config: &Config,
    store: &store::Store,
) -> anyhow::Result<Option<Vec<String>>> {
    if !config.lmk_file.exists() {
        return Ok(None);
    }
    let hsm = crate::up::open_hsm(config)?;
    Ok(Some(api::audit_anchors::foreign_keys(store, &hsm).await?))
}

async fn verify(config: &Config, store: &store::Store, json: bool) -> anyhow::Result<bool> {
    let mut report = store.verify_audit().await?;
    let foreign = foreign_anchor_keys(config, store).await?;
    if let Some(key_id) = foreign.as_ref().and_then(|keys| keys.first()) {
        // A key that the HSM did not make signs nothing genuine: before every other problem.
        report.first_break = Some(store::audit::ChainBreak {
            seq: 0,
            problem: format!(
                "anchor key {key_id} was not made by this platform's HSM: anchors it signed are forged"
            ),
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        match &report.first_break {
            None => println!(
                "audit log intact: {} entries, head {} {}; {} signed anchors hold, up to entry {}{}",
                report.entries,
                report.head_seq,
                report.head_hash,
                report.anchors,
                report.anchored_seq,
                if foreign.is_none() {
                    " (anchor keys not checked against the HSM: no master key file)"
                } else {
                    ""
                }
            ),
            Some(found) => println!(
                "audit log BROKEN at entry {}: {}\n{} entries before it are intact (head {} {}); restore the database from a backup and compare, or keep this copy as evidence",
                found.seq, found.problem, report.entries, report.head_seq, report.head_hash
            ),
        }
    }
    Ok(report.first_break.is_none())
}

/// Checks an export file offline; `Ok(false)` when it does not hold.
fn verify_export(file: &std::path::Path, key: Option<&str>, json: bool) -> anyhow::Result<bool> {
    use anyhow::Context;
    let text = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let export: store::audit_export::AuditExport = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not an easypos audit export", file.display()))?;
    let check = store::audit_export::verify_export(&export, key);
    if json {
        println!("{}", serde_json::to_string_pretty(&check)?);
    } else {
        match &check.problem {
            None => println!(
                "export intact: {} entries up to head {}, {} signed anchors hold; signed by key {} ({}){}",
                check.entries,
                export.head.seq,
                check.anchors,
                check.key_id,
                check.public_key,
                if key.is_none() {
                    ": compare it with the platform's anchor key, or give it with --key"
                } else {
                    ", the key you gave"
                }
            ),
            Some(problem) => println!("export BROKEN: {problem}"),
        }
    }
    Ok(check.problem.is_none())
}
