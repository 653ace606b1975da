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
