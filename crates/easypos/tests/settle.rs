#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `easypos settle` as an operator runs it, on a seeded demo world: a closed date settles and
//! writes its reports, a second run is refused with the fix, `--rerun` checks it without
//! posting, and a date still open, a malformed date and a bad fee schedule are refused with
//! messages that say what to do, and an operator adjusts a break of a closed day from the
//! command line (a suspense adjustment: the ledger moved nothing). The figures of a day of
//! traffic are checked in
//! `crates/clearing/tests/end_of_day.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("easypos-settle-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The demo world in `dir/data`, as `easypos up` seeds it.
fn seed(dir: &Path) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = store::Store::open(&store::Backend::Sqlite {
            path: dir.join("data").join("easypos.db"),
        })
        .await
        .unwrap();
        let hsm = hsm::SoftHsm::new(&[0x42; 32]).unwrap();
        demo::seed(&store, &hsm).await.unwrap();
        store.close().await.unwrap();
    });
}

fn settle(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_easypos"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("settle")
        .args(args)
        .env_remove("EASYPOS_DATABASE_URL")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A date whose cycle has closed: the one that held this moment yesterday.
fn yesterday() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    clearing::cycle::format_date(clearing::cycle::CycleRule::default().date_of(now - 86_400))
}

#[test]
fn a_closed_date_settles_once_and_reruns_without_posting() {
    let dir = temp_dir("once");
    seed(&dir);
    let date = yesterday();
    let out = dir.join("reports");
    let out_arg = out.display().to_string();

    let first = settle(&dir, &["--date", &date, "--json", "--out", &out_arg]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(summary["date"], date.as_str());
    assert_eq!(summary["run"]["status"], "posted");
    assert_eq!(summary["breaks"], 0);
    assert!(out.join(format!("reconciliation-{date}.csv")).exists());
    // No terminal closed a batch that day: the batch report holds only its header.
    assert_eq!(summary["terminal_batches"], 0);
    let batches = std::fs::read_to_string(out.join(format!("batches-{date}.csv"))).unwrap();
    assert_eq!(batches, format!("{}\n", clearing::report::BATCH_COLUMNS));
    assert!(
        text(&first.stderr).contains("posting 0 transfers"),
        "progress on stderr: {}",
        text(&first.stderr)
    );

    let again = settle(&dir, &["--date", &date]);
    assert!(!again.status.success());
    let message = text(&again.stderr);
    assert!(
        message.contains("was closed at") && message.contains("--rerun"),
        "{message}"
    );

    let rerun = settle(&dir, &["--date", &date, "--rerun", "--out", &out_arg]);
    assert!(rerun.status.success(), "{}", text(&rerun.stderr));
    assert!(
        text(&rerun.stdout).contains("the books agree with the closed cycle, nothing posted"),
        "{}",
        text(&rerun.stdout)
    );

    // An adjustment names a break of the cycle, a reason and an operator.
    let unnamed = settle(&dir, &["--date", &date, "--adjust", "journal:1"]);
    assert!(!unnamed.status.success());
    assert!(
        text(&unnamed.stderr).contains("--reason"),
        "{}",
        text(&unnamed.stderr)
    );
    let no_break = settle(
        &dir,
        &[
            "--date",
            &date,
            "--adjust",
            "journal:1",
            "--amount",
            "-500",
            "--reason",
            "slip found",
            "--operator",
            "ops.lee",
        ],
    );
    assert!(!no_break.status.success());
    assert!(
        text(&no_break.stderr).contains("has no break journal:1"),
        "{}",
        text(&no_break.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_requests_are_refused_with_the_fix() {
    let dir = temp_dir("refusals");
    seed(&dir);
    let open = settle(&dir, &["--date", "2099-01-01"]);
    assert!(!open.status.success());
    assert!(
        text(&open.stderr).contains("the cycle of 2099-01-01 is still open"),
        "{}",
        text(&open.stderr)
    );

    let malformed = settle(&dir, &["--date", "2026-02-30"]);
    assert!(!malformed.status.success());
    assert!(text(&malformed.stderr).contains("give it as YYYY-MM-DD"));

    let schedule = dir.join("clearing.toml");
    std::fs::write(
        &schedule,
        "[fees]\n[[fees.mdr]]\nproduct = \"prepaid\"\nmcc = \"*\"\nbps = 50\n",
    )
    .unwrap();
    let date = yesterday();
    let schedule_arg = schedule.display().to_string();
    let bad = settle(&dir, &["--date", &date, "--clearing", &schedule_arg]);
    assert!(!bad.status.success());
    let message = text(&bad.stderr);
    assert!(
        message.contains("clearing.toml") && message.contains("fees.mdr[0].product"),
        "{message}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An approved sale journaled a day ago (in yesterday's cycle) that the ledger never saw: a
/// break; the id of the transfer it should have made, in hex.
fn forge_unposted_sale(dir: &Path) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let a_day_ago_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64
            - 86_400 * 1_000_000;
        let store = store::Store::open(&store::Backend::Sqlite {
            path: dir.join("data").join("easypos.db"),
        })
        .await
        .unwrap();
        let card = demo::cards().into_iter().next().unwrap().card.masked_pan();
        store
            .journal(vec![store::journal::JournalEntry {
                received_at: a_day_ago_us,
                terminal_id: "10000001".into(),
                merchant_id: "898310058120001".into(),
                mti: "0200".into(),
                kind: "Sale".into(),
                batch: Some(1),
                stan: Some(77),
                amount_minor: Some(700),
                currency: Some(156),
                card: Some(card),
                response: Some("00".into()),
                ..Default::default()
            }])
            .await
            .unwrap();
        store.close().await.unwrap();
        let id = acquirer::effects::BusinessKey {
            terminal_id: "10000001".into(),
            batch: 1,
            stan: 77,
        }
        .transfer_id("sale/acquirer");
        format!("{:032x}", id.0)
    })
}

#[test]
fn an_operator_adjusts_a_break_and_the_rerun_shows_it_resolved() {
    let dir = temp_dir("adjust");
    seed(&dir);
    let unposted = forge_unposted_sale(&dir);
    let date = yesterday();
    let out = dir.join("reports");
    let out_arg = out.display().to_string();
    let settled = settle(&dir, &["--date", &date, "--json", "--out", &out_arg]);
    assert!(settled.status.success(), "{}", text(&settled.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&settled.stdout).unwrap();
    assert_eq!(summary["breaks"], 1, "{summary}");
    assert_eq!(summary["breaks_resolved"], 0);

    // The ledger moved nothing for it: the amount owed to the merchant must be given.
    let without_amount = settle(
        &dir,
        &[
            "--date",
            &date,
            "--adjust",
            &unposted,
            "--reason",
            "slip found, paid",
            "--operator",
            "ops.lee",
        ],
    );
    assert!(!without_amount.status.success());
    assert!(
        text(&without_amount.stderr).contains("--amount"),
        "{}",
        text(&without_amount.stderr)
    );
    let adjust = [
        "--date",
        &date,
        "--adjust",
        &unposted,
        "--amount",
        "700",
        "--reason",
        "slip found, paid",
        "--operator",
        "ops.lee",
        "--json",
    ];
    let adjusted = settle(&dir, &adjust);
    assert!(adjusted.status.success(), "{}", text(&adjusted.stderr));
    let record: serde_json::Value = serde_json::from_slice(&adjusted.stdout).unwrap();
    assert_eq!(
        (
            &record["amount_minor"],
            &record["against"],
            &record["posted_now"]
        ),
        (
            &serde_json::json!(700),
            &serde_json::json!("suspense"),
            &serde_json::json!(true)
        ),
        "{record}"
    );
    let again = settle(&dir, &adjust);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let record: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(record["posted_now"], false, "adjusted once");

    let rerun = settle(
        &dir,
        &["--date", &date, "--rerun", "--json", "--out", &out_arg],
    );
    assert!(rerun.status.success(), "{}", text(&rerun.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&rerun.stdout).unwrap();
    assert_eq!(summary["breaks_resolved"], 1, "{summary}");
    let report = std::fs::read_to_string(out.join(format!("reconciliation-{date}.csv"))).unwrap();
    assert!(
        report.contains(",resolved,") && report.contains("\"slip found, paid (ops.lee)\""),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
