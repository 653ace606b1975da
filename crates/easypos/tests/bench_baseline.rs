#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `easypos bench baseline` through the real binary on PostgreSQL (`EASYPOS_TEST_DATABASE_URL`;
//! with `CI=true` and none, it fails instead of skipping): a short run prints one JSON report
//! with approvals and the server's durability settings, and a run without a database says
//! which flag is missing. Nothing here asserts a speed.

use std::process::Command;

fn easypos(args: &[&str]) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!("easypos-bench-baseline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_easypos"))
        .args(args)
        // No easypos.toml from the developer's directory, quiet logs, no database from the
        // environment.
        .current_dir(&dir)
        .env("EASYPOS_LOG_LEVEL", "warn")
        .env_remove("EASYPOS_BENCH_DATABASE_URL")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_prints_one_json_report_with_approvals_and_declines() {
    let Some(url) = store::testing::postgres_url() else {
        return;
    };
    let database = store::testing::postgres(&url).await;
    let store::Backend::Postgres { url } = &database.backend else {
        unreachable!("a PostgreSQL test backend");
    };
    let output = easypos(&[
        "bench",
        "baseline",
        "--database-url",
        url,
        "--clients",
        "3",
        "--seconds",
        "1",
        "--blocked-every",
        "5",
        "--json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["backend"], "postgres");
    assert_eq!(report["load"]["clients"], 3);
    assert_eq!(report["errors"], 0);
    assert!(report["approvals"].as_u64().unwrap() > 0, "{report}");
    assert!(report["declines"].as_u64().unwrap() > 0, "{report}");
    for field in [
        "authorizations_per_second",
        "p50_micros",
        "p99_micros",
        "max_micros",
    ] {
        assert!(report[field].is_number(), "{field} in {report}");
    }
    assert!(report["synchronous_commit"].is_string(), "{report}");
}

#[test]
fn without_a_database_the_missing_flag_is_named() {
    let output = easypos(&["bench", "baseline", "--seconds", "1"]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--database-url"), "{stderr}");
}
