#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The sales bench end to end: a few terminals against the real host for about a second, every
//! answer checked (the bench fails on any answer it did not expect). Nothing here asserts a
//! speed: performance is measured by running `easypos bench sales`, never in tests.

use bench::{SalesLoad, sales_throughput};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_with_wrong_pins_runs_end_to_end_with_every_answer_checked() {
    let load = SalesLoad {
        cards_per_terminal: 2,
        wrong_pin_every: 4,
        ..SalesLoad::new(4, 1)
    };
    let report = sales_throughput(load.clone()).await.unwrap();
    assert_eq!(report.load, load);
    assert_eq!(report.errors, 0);
    assert!(report.approvals > 0, "{report:?}");
    assert!(
        report.declines > 0,
        "the wrong PINs were declined 55: {report:?}"
    );
    assert_eq!(report.sales, report.approvals + report.declines);
    assert!(
        report.sales <= 4 * 51,
        "no terminal sends faster than the host allows: {report:?}"
    );
    assert!(report.p50_micros <= report.p99_micros && report.p99_micros <= report.max_micros);
    assert!(report.commits > Some(0), "approvals were committed");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["load"]["terminals"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_sends_at_the_rate_asked() {
    let load = SalesLoad {
        rate: Some(20),
        ..SalesLoad::new(2, 1)
    };
    let report = sales_throughput(load).await.unwrap();
    assert_eq!((report.errors, report.declines), (0, 0));
    // 20 a second for one second, started on a schedule: one more or less at the edges.
    assert!((19..=21).contains(&report.approvals), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_beyond_the_hosts_rate_per_terminal_is_refused_before_it_runs() {
    let load = SalesLoad {
        rate: Some(1_000),
        ..SalesLoad::new(2, 1)
    };
    let error = sales_throughput(load).await.unwrap_err();
    assert!(
        error.to_string().contains("at least 20 terminals"),
        "{error}"
    );
}
