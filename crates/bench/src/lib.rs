//! Load generators for easypos. Every response is checked: a refusal or a wrong answer is an
//! error, not a silent success.
//!
//! - [`ledger_throughput`] drives a [`store::Store`] with many concurrent callers, each
//!   submitting single-transfer requests in a closed loop, and reports throughput and latency
//!   percentiles.
//! - [`sales_throughput`] starts the acquirer host in-process on a fresh SQLite database and
//!   drives it over loopback TCP with many virtual terminals selling with chip and PIN (see
//!   `sales.rs`).
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<store::Store>) -> Result<(), bench::BenchError> {
//! let report = bench::ledger_throughput(store, bench::LedgerLoad { callers: 1_000, seconds: 5, accounts: 10_000 }).await?;
//! println!("{:.0} transfers/s, p99 {} µs", report.per_second(), report.p99_micros);
//! let sales = bench::sales_throughput(bench::SalesLoad::new(1_000, 10)).await?;
//! println!("{:.0} sales/s, p99 {} µs", sales.sales_per_second, sales.p99_micros);
//! # Ok(()) }
//! ```

mod sales;
mod world;

pub use sales::{
    MAX_SECONDS, MAX_TERMINALS, SaleLog, SaleOutcome, SaleRecord, SalesLoad, SalesReport,
    sales_against, sales_throughput,
};
pub use world::{BenchCard, BenchTerminal, Fleet, provision};

/// Risk rules that fit a load: the demo rules with the limits a load generator's cards reach
/// raised beyond any run (`load-risk.toml`). `easypos bench provision` puts them in a bench
/// data directory.
pub const LOAD_RULES: &str = include_str!("../load-risk.toml");

use ledger::{
    AccountId, AccountSpec, BalanceConstraint, InstitutionId, TransferId, TransferRequest,
};
use money::{Amount, Currency};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::Store;

/// Books of the benchmark, kept apart from any real institution's.
const BENCH_INSTITUTION: InstitutionId = InstitutionId(9_000);
/// Most latency samples kept per caller; beyond it samples are thinned (every n-th kept).
const MAX_SAMPLES_PER_CALLER: usize = 20_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LedgerLoad {
    /// Concurrent callers, each with one request in flight.
    pub callers: usize,
    pub seconds: u64,
    /// Customer accounts the transfers are spread over.
    pub accounts: u64,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LedgerReport {
    pub backend: &'static str,
    pub load: LedgerLoad,
    pub transfers: u64,
    pub errors: u64,
    pub elapsed_micros: u64,
    pub commits: u64,
    pub p50_micros: u64,
    pub p99_micros: u64,
    pub p999_micros: u64,
    pub max_micros: u64,
}

impl LedgerReport {
    pub fn per_second(&self) -> f64 {
        self.transfers as f64 * 1e6 / self.elapsed_micros.max(1) as f64
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    #[error("setup refused: {0}")]
    Setup(String),
    #[error("a caller task failed: {0}")]
    Task(String),
    #[error(
        "{errors} terminal(s) stopped at a wrong answer or a broken connection; the first: {first}"
    )]
    WrongAnswers {
        errors: u64,
        first: String,
        /// What the run measured until then.
        report: Box<SalesReport>,
    },
}

/// Opens the benchmark's accounts (idempotent, so runs can repeat on one database). The source
/// has no balance constraint, so it needs no funding.
async fn prepare(store: &Store, accounts: u64) -> Result<AccountId, BenchError> {
    let source = AccountId::from_key("bench-source", b"");
    let mut specs = vec![AccountSpec::new(
        source,
        BENCH_INSTITUTION,
        Currency::CNY,
        1,
    )];
    specs.extend((0..accounts).map(|index| {
        AccountSpec::new(
            AccountId::from_key("bench-customer", &index.to_be_bytes()),
            BENCH_INSTITUTION,
            Currency::CNY,
            2,
        )
        .constraint(BalanceConstraint::DebitsMustNotExceedCredits)
    }));
    for chunk in specs.chunks(ledger::MAX_BATCH_SIZE) {
        if let Some(Err(error)) = store
            .create_accounts(chunk.to_vec())
            .await?
            .into_iter()
            .find(Result::is_err)
        {
            return Err(BenchError::Setup(error.to_string()));
        }
    }
    Ok(source)
}

/// Runs the closed-loop load and reports. Each run uses fresh transfer ids (derived from the
/// start time), so repeated runs on one database measure inserts, not duplicate detection.
pub async fn ledger_throughput(
    store: Arc<Store>,
    load: LedgerLoad,
) -> Result<LedgerReport, BenchError> {
    let run = u128::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(0),
    );
    let source = prepare(&store, load.accounts.max(1)).await?;
    let commits_before = store.stats().commits;
    let deadline = Instant::now() + Duration::from_secs(load.seconds);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(load.callers);
    for caller in 0..load.callers as u128 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            caller_loop(store, source, load.accounts.max(1), run, caller, deadline).await
        }));
    }
    let mut latencies = Vec::new();
    let mut transfers = 0;
    let mut errors = 0;
    for task in tasks {
        let (done, failed, samples) = task
            .await
            .map_err(|error| BenchError::Task(error.to_string()))??;
        transfers += done;
        errors += failed;
        latencies.extend(samples);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let percentile = |per_mille: usize| {
        latencies
            .get((latencies.len().saturating_sub(1)) * per_mille / 1_000)
            .copied()
            .unwrap_or(0)
    };
    Ok(LedgerReport {
        backend: store.backend_name(),
        load,
        transfers,
        errors,
        elapsed_micros: elapsed.as_micros() as u64,
        commits: store.stats().commits - commits_before,
        p50_micros: percentile(500),
        p99_micros: percentile(990),
        p999_micros: percentile(999),
        max_micros: latencies.last().copied().unwrap_or(0),
    })
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

async fn caller_loop(
    store: Arc<Store>,
    source: AccountId,
    accounts: u64,
    run: u128,
    caller: u128,
    deadline: Instant,
) -> Result<(u64, u64, Vec<u64>), BenchError> {
    let mut done = 0_u64;
    let mut failed = 0_u64;
    let mut samples = Vec::new();
    let mut sequence: u128 = 0;
    while Instant::now() < deadline {
        sequence += 1;
        // Time-ordered and unique: milliseconds, then run, caller and sequence. Built without
        // hashing so that the load generator leaves the CPU to the system under test.
        let id = TransferId(
            (u128::from(unix_millis()) << 80)
                | ((run & 0xFFFF) << 64)
                | (caller << 32)
                | (sequence & 0xFFFF_FFFF),
        );
        let customer = AccountId::from_key(
            "bench-customer",
            &((caller as u64 + sequence as u64) % accounts).to_be_bytes(),
        );
        let request = TransferRequest::posted(id, source, customer, Amount::new(1, Currency::CNY));
        let sent = Instant::now();
        let result = store.submit(vec![request]).await?;
        let micros = sent.elapsed().as_micros() as u64;
        match result.first() {
            Some(Ok(_)) => done += 1,
            _ => failed += 1,
        }
        if samples.len() < MAX_SAMPLES_PER_CALLER {
            samples.push(micros);
        }
    }
    Ok((done, failed, samples))
}
