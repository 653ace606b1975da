#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Several easypos processes on one PostgreSQL: each `Store` here has its own connections and
//! writer, exactly as separate processes would. Decisions must stay exact across them.

mod common;

use ledger::*;
use money::{Amount, Currency};
use std::sync::Arc;
use store::Store;
use store::leader::Job;

const BANK: InstitutionId = InstitutionId(1);
const FUNDING: AccountId = AccountId(1);
const ALICE: AccountId = AccountId(2);

#[tokio::test(flavor = "multi_thread")]
async fn two_hosts_never_spend_more_than_the_balance_and_never_post_twice() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let backend = common::postgres(&url).await;
    let first = Arc::new(Store::open(&backend.backend).await.unwrap());
    let second = Arc::new(Store::open(&backend.backend).await.unwrap());
    let specs = vec![
        AccountSpec::new(FUNDING, BANK, Currency::CNY, 1),
        AccountSpec::new(ALICE, BANK, Currency::CNY, 2)
            .constraint(BalanceConstraint::DebitsMustNotExceedCredits),
    ];
    first.create_accounts(specs).await.unwrap();
    first
        .submit(vec![TransferRequest::posted(
            TransferId(1),
            FUNDING,
            ALICE,
            Amount::new(10_000, Currency::CNY),
        )])
        .await
        .unwrap();

    // 2 hosts × 8 terminals × 20 holds of 100 = 32 000 asked for against 10 000 available;
    // and every request is sent to both hosts at once (a duplicate landing on another host).
    let mut tasks = Vec::new();
    for terminal in 0..8_u128 {
        for store in [first.clone(), second.clone()] {
            tasks.push(tokio::spawn(async move {
                let mut created = Vec::new();
                for sequence in 0..20_u128 {
                    let id = TransferId(1_000 + terminal * 100 + sequence);
                    let hold = TransferRequest::pending(
                        id,
                        ALICE,
                        FUNDING,
                        Amount::new(100, Currency::CNY),
                        0,
                    );
                    if let Ok(Outcome::Created(_)) =
                        store.submit(vec![hold]).await.unwrap().remove(0)
                    {
                        created.push(id);
                    }
                }
                created
            }));
        }
    }
    let mut created = Vec::new();
    for task in tasks {
        created.extend(task.await.unwrap());
    }
    let unique: std::collections::HashSet<_> = created.iter().collect();
    assert_eq!(
        unique.len(),
        created.len(),
        "a transfer was created by both hosts"
    );
    assert_eq!(
        created.len(),
        100,
        "exactly the balance was held, no more, no less"
    );
    let alice = first.account(ALICE).await.unwrap().unwrap();
    assert_eq!(
        (alice.debits_pending, alice.credits_posted),
        (10_000, 10_000)
    );
    first.check_books().await.unwrap();

    // Both hosts try to post and void the same holds: each hold is resolved once.
    let holds: Vec<TransferId> = created.iter().take(20).copied().collect();
    let (a, b) = {
        let holds_a = holds.clone();
        let first = first.clone();
        let second = second.clone();
        let posting = tokio::spawn(async move {
            let requests = holds_a
                .iter()
                .enumerate()
                .map(|(index, hold)| {
                    TransferRequest::post(TransferId(50_000 + index as u128), *hold, None)
                })
                .collect();
            first.submit(requests).await.unwrap()
        });
        let voiding = tokio::spawn(async move {
            let requests = holds
                .iter()
                .enumerate()
                .map(|(index, hold)| {
                    TransferRequest::void(TransferId(60_000 + index as u128), *hold)
                })
                .collect();
            second.submit(requests).await.unwrap()
        });
        (posting.await.unwrap(), voiding.await.unwrap())
    };
    for (post, void) in a.iter().zip(&b) {
        assert!(
            post.is_ok() != void.is_ok(),
            "each hold is either posted or voided: {post:?} / {void:?}"
        );
    }
    let alice = first.account(ALICE).await.unwrap().unwrap();
    let posted = a.iter().filter(|result| result.is_ok()).count() as i64 * 100;
    assert_eq!(
        (alice.debits_pending, alice.debits_posted),
        (10_000 - 2_000, posted)
    );
    first.check_books().await.unwrap();
    Arc::try_unwrap(first).unwrap().close().await.unwrap();
    Arc::try_unwrap(second).unwrap().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hosts_never_pass_a_cards_daily_limit_together() {
    use store::cards::*;
    let Some(url) = common::postgres_url() else {
        return;
    };
    let backend = common::postgres(&url).await;
    let first = Arc::new(Store::open(&backend.backend).await.unwrap());
    let second = Arc::new(Store::open(&backend.backend).await.unwrap());
    first
        .create_accounts(vec![
            AccountSpec::new(FUNDING, BANK, Currency::CNY, 1),
            AccountSpec::new(ALICE, BANK, Currency::CNY, 2)
                .constraint(BalanceConstraint::DebitsMustNotExceedCredits),
        ])
        .await
        .unwrap();
    first
        .submit(vec![TransferRequest::posted(
            TransferId(1),
            FUNDING,
            ALICE,
            Amount::new(100_000, Currency::CNY),
        )])
        .await
        .unwrap();
    first
        .put_directory(store::testing::one_card_directory(BANK, ALICE))
        .await
        .unwrap();
    first
        .put_issuer_cards(vec![IssuerCard {
            card_id: "card-1".into(),
            status: "active".into(),
            service_code: "201".into(),
            pin_method: None,
            pin_key_index: None,
            pin_reference: None,
            cryptogram_version: 18,
            daily_limit_minor: Some(1_000),
            pin_failures: 0,
            last_atc: None,
            spent_minor: 0,
            spent_on: None,
        }])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for index in 0..40_u128 {
        let store = if index % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            let authorization = Authorization {
                transfers: vec![TransferRequest::posted(
                    TransferId(1_000 + index),
                    ALICE,
                    FUNDING,
                    Amount::new(100, Currency::CNY),
                )],
                card: CardEffect {
                    card_id: "card-1".into(),
                    pin: PinEffect::Unchanged,
                    atc: None,
                    spend: Some(Spend {
                        date: "2026-11-25".into(),
                        amount_minor: 100,
                    }),
                },
            };
            store.authorize(authorization).await.unwrap()
        }));
    }
    let mut approved = 0;
    for task in tasks {
        let result = task.await.unwrap();
        if result.card == CardOutcome::Applied && result.transfers.iter().all(Result::is_ok) {
            approved += 1;
        }
    }
    let card = first.issuer_card("card-1").await.unwrap().unwrap();
    assert_eq!(approved, 10, "exactly the daily limit across both hosts");
    assert_eq!(card.spent_minor, approved * 100);
    let alice = first.account(ALICE).await.unwrap().unwrap();
    assert_eq!(alice.debits_posted, approved * 100);
    Arc::try_unwrap(first).unwrap().close().await.unwrap();
    Arc::try_unwrap(second).unwrap().close().await.unwrap();
}

/// Asks `store` whether it leads `job` until it does, at most 100 times 50 ms apart: a
/// terminated backend releases its locks only once PostgreSQL has ended it.
async fn comes_to_lead(store: &Store, job: Job) -> bool {
    for _ in 0..100 {
        if store.leads(job).await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn each_background_job_runs_on_one_node_and_moves_when_its_leader_dies() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let backend = common::postgres(&url).await;
    let store::Backend::Postgres { url: database_url } = backend.backend.clone() else {
        unreachable!("a PostgreSQL test backend");
    };
    let first = Store::open(&backend.backend).await.unwrap();
    let second = Store::open(&backend.backend).await.unwrap();

    // The first to ask leads; the other never does while the leader lives, pass after pass.
    assert!(first.leads(Job::Webhooks).await);
    assert!(second.leads(Job::HoldExpiry).await);
    for _ in 0..3 {
        assert!(first.leads(Job::Webhooks).await);
        assert!(!second.leads(Job::Webhooks).await);
        assert!(second.leads(Job::HoldExpiry).await);
        assert!(!first.leads(Job::HoldExpiry).await);
    }

    // The leader's lock connection is killed (what a dead host looks like to PostgreSQL):
    // the webhooks move to the second node, and the first, reconnected, no longer runs them.
    let (admin, connection) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let holders = admin
        .query(
            // `pg_locks` shows every database of the server: only this test's.
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND classid::int = $1 AND objid::int = $2 AND granted",
            &[&store::leader::LOCK_CLASS, &Job::Webhooks.lock_key()],
        )
        .await
        .unwrap();
    assert_eq!(holders.len(), 1, "one node holds the webhooks' lock");
    let pid: i32 = holders[0].get(0);
    let killed: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    assert!(comes_to_lead(&second, Job::Webhooks).await);
    assert!(!first.leads(Job::Webhooks).await);
    assert!(second.leads(Job::Webhooks).await);

    // A node that stops (its store closed, as at shutdown or a crash) lets the others take
    // over everything it ran.
    second.close().await.unwrap();
    assert!(comes_to_lead(&first, Job::Webhooks).await);
    assert!(first.leads(Job::HoldExpiry).await);
    first.close().await.unwrap();
}

#[tokio::test]
async fn on_sqlite_the_one_process_runs_every_job() {
    let backend = common::sqlite();
    let store = Store::open(&backend.backend).await.unwrap();
    for job in Job::ALL {
        assert!(store.leads(job).await, "{}", job.name());
    }
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_starting_at_once_on_an_empty_database_apply_each_migration_once() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let backend = common::postgres(&url).await;
    let starts: Vec<_> = (0..5)
        .map(|_| {
            let backend = backend.backend.clone();
            tokio::spawn(async move { Store::open(&backend).await })
        })
        .collect();
    let mut stores = Vec::new();
    for start in starts {
        stores.push(start.await.unwrap().expect("every node starts"));
    }
    let latest = store::latest_version(store::postgres_migrations());
    for store in &stores {
        assert_eq!(store.schema_version().await.unwrap(), latest);
    }
    use store::onboarding::{Cell, Kind};
    let applied = stores[0]
        .onboarding_query(
            "SELECT count(*), count(DISTINCT version) FROM schema_migrations",
            vec![],
            &[Kind::Int, Kind::Int],
        )
        .await
        .unwrap();
    let count = i64::try_from(store::postgres_migrations().len()).unwrap();
    assert_eq!(applied, vec![vec![Cell::int(count), Cell::int(count)]]);
    for store in stores {
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_keeps_its_configured_pool_and_cancels_statements_past_the_timeout() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let backend = common::postgres(&url).await;
    let store::Backend::Postgres { url: database_url } = backend.backend.clone() else {
        unreachable!("a PostgreSQL test backend");
    };
    let tuning = store::PostgresTuning {
        pool_size: 3,
        statement_timeout_ms: 300,
        replica_url: None,
    };
    let store = Store::open_postgres(&database_url, &tuning, Arc::new(store::SystemClock))
        .await
        .unwrap();
    use store::onboarding::{Cell, Kind};
    let pooled = store
        .onboarding_query(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
            vec![Cell::text("easypos pool")],
            &[Kind::Int],
        )
        .await
        .unwrap();
    assert_eq!(pooled, vec![vec![Cell::int(3)]]);
    let error = store
        .onboarding_query("SELECT pg_sleep(5)::text", vec![], &[Kind::Text])
        .await
        .unwrap_err();
    let store::StoreError::Postgres(error) = error else {
        panic!("a database error, not {error}");
    };
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED),
        "cancelled by the statement timeout: {error:?}"
    );
    // The connection stays usable after the cancel.
    let answered = store
        .onboarding_query("SELECT 'still here'", vec![], &[Kind::Text])
        .await
        .unwrap();
    assert_eq!(answered, vec![vec![Cell::text("still here")]]);
    store.close().await.unwrap();
}

/// The ledger writer reads rows only by key: on a new database, whose tables are small when
/// its statements are first planned, a generic plan would scan all of `ledger_transfers` for
/// every group as the table grows. Its session has sequential scans off, so the counters of
/// the table show index scans only.
#[tokio::test(flavor = "multi_thread")]
async fn the_writer_finds_transfers_by_index_on_a_new_database() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let backend = common::postgres(&url).await;
    let store = Store::open(&backend.backend).await.unwrap();
    store
        .create_accounts(vec![
            AccountSpec::new(FUNDING, BANK, Currency::CNY, 1),
            AccountSpec::new(ALICE, BANK, Currency::CNY, 2),
        ])
        .await
        .unwrap();
    let transfer = |id: u128| {
        TransferRequest::posted(
            TransferId(id),
            FUNDING,
            ALICE,
            Amount::new(1, Currency::CNY),
        )
    };
    // A new installation's first rows, analysed (as autovacuum does): the table is a few pages.
    for first in (0..800).step_by(100) {
        store
            .submit((first + 1..=first + 100).map(transfer).collect())
            .await
            .unwrap();
    }
    use store::onboarding::{Kind, Step};
    assert!(
        store
            .onboarding_execute(vec![Step::new("ANALYZE ledger_transfers", vec![])])
            .await
            .unwrap()
    );
    let scans = || async {
        let rows = store
            .onboarding_query(
                "SELECT coalesce(seq_scan, 0), coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'ledger_transfers'",
                vec![],
                &[Kind::Int, Kind::Int],
            )
            .await
            .unwrap();
        (rows[0][0].as_int().unwrap(), rows[0][1].as_int().unwrap())
    };
    // The writer's backend reports its counters when idle, at most once a second: wait until
    // they stop moving (bounded), then note them.
    let mut before = scans().await;
    for _ in 0..30 {
        tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
        let now = scans().await;
        if now == before && now != (0, 0) {
            break;
        }
        before = now;
    }
    // Groups of 50 sales' worth of transfers, as under load.
    for first in (800..1_300).step_by(50) {
        store
            .submit((first + 1..=first + 50).map(transfer).collect())
            .await
            .unwrap();
    }
    let mut after = scans().await;
    for _ in 0..40 {
        if after.1 > before.1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        after = scans().await;
    }
    assert!(
        after.1 > before.1,
        "the writer's index scans are counted: {before:?} → {after:?}"
    );
    assert_eq!(
        after.0, before.0,
        "no sequential scan of ledger_transfers: {before:?} → {after:?}"
    );
    store.close().await.unwrap();
}
