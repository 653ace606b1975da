#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The conventional baseline end to end on PostgreSQL: a few clients for about a second, every
//! answer checked and the books audited after the run (the bench fails on any mismatch).
//! Nothing here asserts a speed: performance is measured by running `easypos bench baseline`.
//! It needs `EASYPOS_TEST_DATABASE_URL`; with `CI=true` and none, it fails instead of skipping.

use bench::{BaselineLoad, BenchError, baseline_throughput};
use store::Backend;

async fn database() -> Option<(store::testing::TestBackend, String)> {
    let url = store::testing::postgres_url()?;
    let backend = store::testing::postgres(&url).await;
    let Backend::Postgres { url } = &backend.backend else {
        unreachable!("a PostgreSQL test backend");
    };
    let url = url.clone();
    Some((backend, url))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_and_blocked_cards_are_answered_and_booked_one_transaction_each() {
    let Some((_database, url)) = database().await else {
        return;
    };
    let load = BaselineLoad {
        blocked_every: 3,
        ..BaselineLoad::new(4, 1)
    };
    let report = baseline_throughput(&url, load.clone()).await.unwrap();
    assert_eq!(report.load, load);
    assert_eq!(report.backend, "postgres");
    assert_eq!(report.errors, 0);
    assert!(report.approvals > 0, "{report:?}");
    assert!(
        report.declines > 0,
        "blocked cards were declined: {report:?}"
    );
    assert_eq!(report.authorizations, report.approvals + report.declines);
    assert!(report.p50_micros <= report.p99_micros && report.p99_micros <= report.max_micros);
    assert!(!report.synchronous_commit.is_empty() && !report.fsync.is_empty());
    // CPU time from /proc: the clients', and the server's processes' (PostgreSQL runs on this
    // machine in the tests and in CI).
    assert!(report.client_cpu_micros.is_some(), "{report:?}");
    assert!(report.server_cpu_micros.is_some(), "{report:?}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["load"]["clients"], 4);

    // The schema is gone after the run: a second run on the same database starts afresh.
    let again = baseline_throughput(&url, BaselineLoad::new(1, 1))
        .await
        .unwrap();
    assert_eq!(again.declines, 0);
    assert!(again.approvals > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_cannot_be_reached_fails_with_the_reason_and_no_password() {
    let error = baseline_throughput(
        "postgres://bench:secret-word@127.0.0.1:1/none",
        BaselineLoad::new(1, 1),
    )
    .await
    .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, BenchError::Database(_)), "{text}");
    assert!(text.contains("cannot connect to PostgreSQL"), "{text}");
    assert!(!text.contains("secret-word"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_name_that_is_not_a_plain_identifier_is_refused_before_connecting() {
    let load = BaselineLoad {
        schema: "x; DROP SCHEMA public".into(),
        ..BaselineLoad::new(1, 1)
    };
    // The URL is never used: the load is refused first.
    let error = baseline_throughput("postgres://nobody@127.0.0.1:1/none", load)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("schema"), "{error}");
}
