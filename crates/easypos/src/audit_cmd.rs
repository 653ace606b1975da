//! `easypos audit`: the hash-chained audit log of back-office actions (docs/audit.md).
//! `verify` walks the chain and exits 1 at the first break, naming it; `list` prints entries.
//! Both read the configured store; on SQLite, stop `easypos up` first (one process owns the
//! database file), or ask a running platform with `GET /api/v1/audit/verify`.

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
    let store = crate::open_store(config).await?;
    let result = match args.command {
        AuditCommand::Verify { json } => verify(&store, json).await,
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
    store.close().await?;
    result
}

async fn verify(store: &store::Store, json: bool) -> anyhow::Result<bool> {
    let report = store.verify_audit().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        match &report.first_break {
            None => println!(
                "audit log intact: {} entries, head {} {}",
                report.entries, report.head_seq, report.head_hash
            ),
            Some(found) => println!(
                "audit log BROKEN at entry {}: {}\n{} entries before it are intact (head {} {}); restore the database from a backup and compare, or keep this copy as evidence",
                found.seq, found.problem, report.entries, report.head_seq, report.head_hash
            ),
        }
    }
    Ok(report.first_break.is_none())
}
