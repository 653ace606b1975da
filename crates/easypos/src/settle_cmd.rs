//! `easypos settle`: end of day for one business date (`clearing::run`), its reports written
//! to a directory, and a summary as text or JSON. Progress goes to standard error, so that
//! `--json` output stays one object on standard output.

use crate::config::Config;
use anyhow::Context;
use clearing::{Outcome, Progress, Request, Settings, Status};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct SettleArgs {
    /// The business date to settle, YYYY-MM-DD, in the acquirer's time zone. Its cycle must be
    /// closed: the cut-off (23:00 Asia/Shanghai by default) must have passed.
    #[arg(long, value_name = "YYYY-MM-DD")]
    date: String,
    /// Where to write the statements, clearing files and reconciliation report
    /// [default: <data_dir>/settlement/<date>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Check a cycle already closed against the journal and ledger and write its reports
    /// again; posts nothing.
    #[arg(long)]
    rerun: bool,
    /// The cycle and fee schedule (docs/settlement.md) [default: <data_dir>/clearing.toml if
    /// it exists, else the demo world's].
    #[arg(long, value_name = "FILE")]
    clearing: Option<PathBuf>,
    /// Resolve a break of the closed cycle by an adjustment posting (docs/settlement.md,
    /// "Adjustments"): the break's transfer_id from the reconciliation report, or
    /// journal:<journal_id>. Needs --reason and --operator.
    #[arg(long, value_name = "BREAK", requires_all = ["reason", "operator"])]
    adjust: Option<String>,
    /// With --adjust: minor units owed to the merchant, negative when the merchant owes them
    /// [default: what the break's transfer did to the merchant's settlement account].
    #[arg(
        long,
        value_name = "MINOR",
        requires = "adjust",
        allow_hyphen_values = true
    )]
    amount: Option<i64>,
    /// With --adjust: why (kept with the adjustment and in the audit log).
    #[arg(long, value_name = "TEXT", requires = "adjust")]
    reason: Option<String>,
    /// With --adjust: who decided.
    #[arg(long, value_name = "NAME", requires = "adjust")]
    operator: Option<String>,
}

/// Where the clearing configuration comes from, and its text.
fn settings(config: &Config, args: &SettleArgs) -> anyhow::Result<(Settings, String)> {
    let path = match &args.clearing {
        Some(path) => Some(path.clone()),
        None => Some(config.data_dir.join("clearing.toml")).filter(|path| path.exists()),
    };
    let Some(path) = path else {
        let settings = Settings::parse(clearing::schedule::DEFAULT)?;
        return Ok((
            settings,
            "the demo world's default (no clearing.toml)".to_owned(),
        ));
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the clearing configuration {}", path.display()))?;
    let settings = Settings::parse(&text)
        .with_context(|| format!("in the clearing configuration {}", path.display()))?;
    Ok((settings, path.display().to_string()))
}

/// Width in characters of the progress bar's track.
const BAR_WIDTH: usize = 30;

/// `[#########---------------------]  30 %`: `done` of `total` as a bar of `width` cells.
fn bar(done: usize, total: usize, width: usize) -> String {
    // An empty day is done.
    let (done, total) = if total == 0 {
        (1, 1)
    } else {
        (done.min(total), total)
    };
    let filled = done * width / total;
    format!(
        "[{}{}] {:>3} %",
        "#".repeat(filled),
        "-".repeat(width - filled),
        done * 100 / total
    )
}

/// Progress on standard error. On a terminal (and without `--json`), one line redrawn in place,
/// with a bar while the journal is matched with the ledger; otherwise a plain line per stage
/// (and per 10 % of the matching), for logs.
struct ProgressLine {
    terminal: bool,
    last: String,
}

impl ProgressLine {
    fn text(&self, stage: &Progress) -> String {
        match stage {
            Progress::Journal { rows } => format!("reading the journal: {rows} approved messages"),
            Progress::Matching { done, total } if self.terminal => format!(
                "matching with the ledger {} {done}/{total}",
                bar(*done, *total, BAR_WIDTH)
            ),
            Progress::Matching { done, total } => {
                // Plain lines step by tenths, so a log does not get a line per thousand rows.
                let tenth = if *total == 0 {
                    10
                } else {
                    done.min(total) * 10 / total
                };
                format!("matching with the ledger: {} %", tenth * 10)
            }
            Progress::Ledger => "looking for transfers without a journal entry".to_owned(),
            Progress::Posting { transfers } => format!("posting {transfers} transfers"),
        }
    }

    fn show(&mut self, stage: &Progress) {
        let text = self.text(stage);
        if text == self.last {
            return;
        }
        let mut stderr = std::io::stderr();
        let _ = if self.terminal {
            write!(stderr, "\r\x1b[2K{text}")
        } else {
            writeln!(stderr, "{text}")
        };
        let _ = stderr.flush();
        self.last = text;
    }

    fn finish(&self) {
        if self.terminal && !self.last.is_empty() {
            eprintln!();
        }
    }
}

pub async fn run(config: &Config, args: SettleArgs) -> anyhow::Result<()> {
    let date = clearing::cycle::parse_date(&args.date)?;
    let (settings, source) = settings(config, &args)?;
    let store = crate::open_store(config).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_secs();
    let now = i64::try_from(now).context("the system clock is out of range")?;
    if let Some(reference) = &args.adjust {
        let request = clearing::adjust::AdjustRequest {
            date,
            reference: reference.trim().to_ascii_lowercase(),
            amount_minor: args.amount,
            reason: args.reason.clone().unwrap_or_default(),
            operator: args.operator.clone().unwrap_or_default(),
            now_unix_seconds: now,
        };
        let result = clearing::adjust::adjust(&store, &settings, &request).await;
        store.close().await?;
        let (adjustment, posted) = result?;
        if args.json {
            let mut value = serde_json::to_value(&adjustment)?;
            value["posted_now"] = serde_json::Value::from(posted);
            println!("{value}");
        } else {
            println!(
                "Break {} of {} {}: {} {} minor units owed to merchant {} (against its {} account), transfer {}.",
                adjustment.reference,
                adjustment.date,
                if posted {
                    "adjusted"
                } else {
                    "was adjusted already, nothing posted"
                },
                adjustment.currency,
                adjustment.amount_minor,
                adjustment.merchant_id,
                adjustment.against,
                adjustment.transfer
            );
            println!(
                "  The merchant's next cycle settles it. Rerun the cycle (--rerun) to write its reconciliation report with the break resolved."
            );
        }
        return Ok(());
    }
    let request = Request {
        date,
        now_unix_seconds: now,
        rerun: args.rerun,
    };
    let mut line = ProgressLine {
        terminal: std::io::stderr().is_terminal() && !args.json,
        last: String::new(),
    };
    let result = clearing::run(&store, &settings, &request, &mut |stage| line.show(&stage)).await;
    line.finish();
    // The reports are kept for the console too (a rerun replaces them).
    let kept = match &result {
        Ok(outcome) => clearing::report::keep(&store, &settings.cycle, outcome, now).await,
        Err(_) => Ok(()),
    };
    store.close().await?;
    let outcome = result?;
    kept?;
    let out = args.out.clone().unwrap_or_else(|| {
        config
            .data_dir
            .join("settlement")
            .join(clearing::cycle::format_date(date))
    });
    let written = clearing::report::write_all(&settings.cycle, &outcome, &out)?;
    if args.json {
        let mut summary = clearing::report::summary(&outcome);
        summary["reports"] = written
            .iter()
            .map(|path| serde_json::Value::from(path.display().to_string()))
            .collect();
        println!("{summary}");
    } else {
        print_text(&outcome, &source, &written);
    }
    if let Status::Rerun { differences } = &outcome.status
        && !differences.is_empty()
    {
        anyhow::bail!(
            "the closed cycle of {} differs from its books now ({} differences, listed above); read the reconciliation report",
            args.date,
            differences.len()
        );
    }
    Ok(())
}

fn print_text(outcome: &Outcome, source: &str, written: &[PathBuf]) {
    let settlement = &outcome.settlement;
    let date = clearing::cycle::format_date(settlement.window.date);
    let what = match &outcome.status {
        Status::Posted { transfers } => format!("settled: {transfers} transfers posted"),
        Status::FoundPosted { transfers } => format!(
            "settled: its {transfers} transfers were posted by an earlier run, now recorded"
        ),
        Status::Rerun { differences } if differences.is_empty() => {
            "checked again: the books agree with the closed cycle, nothing posted".to_owned()
        }
        Status::Rerun { .. } => "checked again: the books differ, nothing posted".to_owned(),
    };
    println!("Cycle {date} {what}.");
    println!("  fees         {source}");
    println!(
        "  transactions {} matched, {} breaks",
        settlement.items.len(),
        settlement.breaks.len()
    );
    for merchant in &settlement.merchants {
        println!(
            "  merchant     {} {}: gross {} − refunds {} − chargebacks {} − fees {} = {}, paid out {}",
            merchant.merchant_id,
            merchant.currency.alpha(),
            merchant.gross.format_major(),
            merchant.refunds.format_major(),
            merchant.chargebacks.format_major(),
            merchant.fees.format_major(),
            merchant.net.format_major(),
            merchant.payout.format_major()
        );
        if merchant.carried_in.minor() != 0 || merchant.carried_out.minor() != 0 {
            println!(
                "               owed from earlier cycles {}, carried to later cycles {}",
                merchant.carried_in.format_major(),
                merchant.carried_out.format_major()
            );
        }
    }
    for party in &settlement.counterparties {
        println!(
            "  counterparty {} ({}) {}: gross {} − refunds {} − chargebacks {} − interchange {} = owes {}",
            party.issuer.0,
            party.name,
            party.currency.alpha(),
            party.gross.format_major(),
            party.refunds.format_major(),
            party.chargebacks.format_major(),
            party.interchange.format_major(),
            party.net.format_major()
        );
    }
    if let Status::Rerun { differences } = &outcome.status {
        for difference in differences {
            println!("  difference   {difference}");
        }
    }
    for path in written {
        println!("  report       {}", path.display());
    }
    if !settlement.breaks.is_empty() {
        println!(
            "  {} breaks between journal and ledger were left out of the figures: see the reconciliation report.",
            settlement.breaks.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_matching() {
        assert_eq!(bar(0, 200, 10), "[----------]   0 %");
        assert_eq!(bar(50, 200, 10), "[##--------]  25 %");
        assert_eq!(bar(200, 200, 10), "[##########] 100 %");
        assert_eq!(bar(5, 0, 4), "[####] 100 %", "an empty day is done");
    }

    #[test]
    fn a_terminal_gets_a_bar_and_a_log_gets_tenths() {
        let matching = Progress::Matching {
            done: 1_000,
            total: 4_000,
        };
        let terminal = ProgressLine {
            terminal: true,
            last: String::new(),
        };
        assert_eq!(
            terminal.text(&matching),
            "matching with the ledger [#######-----------------------]  25 % 1000/4000"
        );
        let log = ProgressLine {
            terminal: false,
            last: String::new(),
        };
        assert_eq!(log.text(&matching), "matching with the ledger: 20 %");
        assert_eq!(
            log.text(&Progress::Matching { done: 0, total: 0 }),
            "matching with the ledger: 100 %"
        );
    }
}
