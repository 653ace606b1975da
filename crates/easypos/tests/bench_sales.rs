#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `easypos bench sales` through the real binary: a short run prints one JSON report with
//! approvals, and a load the host cannot take is refused with the reason.

use std::process::Command;

fn easypos(name: &str, args: &[&str]) -> std::process::Output {
    let dir =
        std::env::temp_dir().join(format!("easypos-bench-sales-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_easypos"))
        .args(args)
        // No easypos.toml from the developer's directory, and quiet logs.
        .current_dir(&dir)
        .env("EASYPOS_LOG_LEVEL", "warn")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    output
}

#[test]
fn a_short_run_prints_one_json_report_with_approvals() {
    let output = easypos(
        "json",
        &[
            "bench",
            "sales",
            "--terminals",
            "4",
            "--seconds",
            "1",
            "--json",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["backend"], "sqlite");
    assert_eq!(report["load"]["terminals"], 4);
    assert!(report["approvals"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["errors"], 0);
    assert_eq!(report["sales"], report["approvals"]);
    for field in [
        "sales_per_second",
        "p50_micros",
        "p90_micros",
        "p99_micros",
        "max_micros",
    ] {
        assert!(report[field].is_number(), "{field} in {report}");
    }
}

#[test]
fn a_load_beyond_the_hosts_rate_per_terminal_is_refused() {
    let output = easypos(
        "refused",
        &[
            "bench",
            "sales",
            "--terminals",
            "2",
            "--seconds",
            "1",
            "--rate",
            "1000",
        ],
    );
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("at least 20 terminals"), "{stderr}");
}

mod common;

/// `bench provision` into the data directory, `easypos up` on it, and two runs of `bench sales
/// --target` from another process: the second goes on from the counters the first left in
/// the fleet file (otherwise its sales would be repeats and its cryptograms replays).
#[test]
fn a_provisioned_database_sells_through_easypos_up_from_another_process() {
    let dir = common::temp_dir("bench", "target");
    let provision = common::run(
        &dir,
        &[
            "bench",
            "provision",
            "--terminals",
            "3",
            "--cards-per-terminal",
            "2",
            "--fleet",
            "fleet.json",
        ],
    );
    assert_eq!(provision.code, 0, "{}", provision.stderr);
    assert!(
        provision.stdout.contains("Provisioned 3 terminals"),
        "{}",
        provision.stdout
    );
    assert!(
        provision
            .stdout
            .contains("the load's risk rules, written to"),
        "{}",
        provision.stdout
    );
    let fleet = std::fs::read_to_string(dir.join("fleet.json")).unwrap();
    assert!(fleet.contains("easypos-bench-fleet/1"));

    let mut up = common::start(&dir);
    let target = up.terminals.to_string();
    for run in 0..2 {
        let sales = common::run(
            &dir,
            &[
                "bench",
                "sales",
                "--target",
                &target,
                "--fleet",
                "fleet.json",
                "--seconds",
                "1",
                "--wrong-pin-every",
                "3",
                "--sale-log",
                "sales.jsonl",
                "--json",
            ],
        );
        assert_eq!(sales.code, 0, "run {run}: {}{}", sales.stdout, sales.stderr);
        let report = &sales.json;
        assert_eq!(report["backend"], "external", "{report}");
        assert_eq!(report["errors"], 0, "{report}");
        assert_eq!(report["load"]["terminals"], 3, "{report}");
        assert!(report["approvals"].as_u64().unwrap() > 0, "{report}");
        assert!(report["declines"].as_u64().unwrap() > 0, "{report}");
        assert!(report["commits"].is_null(), "{report}");
        let log = std::fs::read_to_string(dir.join("sales.jsonl")).unwrap();
        assert_eq!(
            log.lines().count() as u64,
            report["sales"].as_u64().unwrap(),
            "one line per sale"
        );
    }

    up.stop();

    // The database now holds a world: a second provision would replace its issuer key.
    let again = common::run(
        &dir,
        &[
            "bench",
            "provision",
            "--terminals",
            "1",
            "--fleet",
            "other.json",
        ],
    );
    assert_ne!(again.code, 0);
    assert!(
        again.stderr.contains("new, empty database"),
        "{}",
        again.stderr
    );
    assert!(!dir.join("other.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
