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

/// Calls `attempt` until it succeeds, at most 50 times 100 ms apart; the errors met on the way.
async fn comes_back<T, F: std::future::Future<Output = Result<T, store::StoreError>>>(
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> (T, Vec<String>) {
    let mut errors = Vec::new();
    for _ in 0..50 {
        match attempt().await {
            Ok(value) => return (value, errors),
            Err(error) => errors.push(error.to_string()),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what} never came back: {errors:?}");
}

/// A journal row of terminal `T0000001`, batch 1.
fn journal_entry(stan: i64) -> store::journal::JournalEntry {
    store::journal::JournalEntry {
        received_at: 1_764_000_000_000_000 + stan,
        peer: "127.0.0.1:40000".into(),
        terminal_id: "T0000001".into(),
        merchant_id: "898310048990001".into(),
        mti: "0200".into(),
        kind: "Sale".into(),
        batch: Some(1),
        stan: Some(stan),
        response: Some("00".into()),
        ..store::journal::JournalEntry::default()
    }
}

fn one_unit(id: u128) -> TransferRequest {
    TransferRequest::posted(
        TransferId(id),
        FUNDING,
        ALICE,
        Amount::new(1, Currency::CNY),
    )
}

/// Ends every backend of the test database but the caller's own, as a restart or a failover
/// does; returns how many it ended.
async fn end_every_connection(admin: &tokio_postgres::Client) -> usize {
    admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .len()
}

/// After the checks: every transfer is there once and the books balance (ALICE got one unit
/// per transfer in the table).
async fn assert_each_transfer_once(store: &Store) {
    let accounts = store.all_accounts().await.unwrap();
    ledger::check_books(&accounts).unwrap();
    let transfers = store.all_transfers().await.unwrap();
    let alice = store.accounts(vec![ALICE]).await.unwrap().remove(0);
    assert_eq!(
        alice.credits_posted,
        i64::try_from(transfers.len()).unwrap(),
        "one unit per transfer in the table, each committed once"
    );
}

/// A node's PostgreSQL connections are all ended at once, while terminals are paying (what a
/// restart, a failover or an administrator's `pg_terminate_backend` looks like to it). The
/// node carries on by itself: reads (the primary's pool and the replica's), ledger writes and
/// journal writes work again on new connections with the same session settings, nothing
/// acknowledged before is lost, a payment that got an error is in the books once or not at
/// all, and the node takes its background job's lock again.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_carries_on_by_itself_after_the_database_ends_its_connections() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let backend = common::postgres(&url).await;
    let store::Backend::Postgres { url: database_url } = backend.backend.clone() else {
        unreachable!("a PostgreSQL test backend");
    };
    // The replica is the primary itself here: its pool is a second pool to lose.
    let tuning = store::PostgresTuning {
        pool_size: 2,
        statement_timeout_ms: 5_000,
        replica_url: Some(database_url.clone()),
    };
    let store = Arc::new(
        Store::open_postgres(&database_url, &tuning, Arc::new(store::SystemClock))
            .await
            .unwrap(),
    );
    store
        .create_accounts(vec![
            AccountSpec::new(FUNDING, BANK, Currency::CNY, 1),
            AccountSpec::new(ALICE, BANK, Currency::CNY, 2),
        ])
        .await
        .unwrap();
    store.submit(vec![one_unit(1)]).await.unwrap();
    store.journal(vec![journal_entry(1)]).await.unwrap();
    assert_eq!(store.journal_recent(10).await.unwrap().len(), 1);
    assert!(store.leads(Job::Webhooks).await);

    // A terminal pays one unit after another; its connections are ended in the middle, and
    // it goes on for 20 payments more.
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let ended = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let payments = tokio::spawn({
        let (store, ended, acknowledged) = (store.clone(), ended.clone(), acknowledged.clone());
        async move {
            let mut answers = Vec::new();
            let mut after_the_end = 0;
            for id in 100..1_100_u128 {
                let answer = store.submit(vec![one_unit(id)]).await;
                if answer.is_ok() {
                    acknowledged.fetch_add(1, Ordering::SeqCst);
                }
                answers.push((id, answer.is_ok()));
                if ended.load(Ordering::SeqCst) {
                    after_the_end += 1;
                    if after_the_end == 20 {
                        break;
                    }
                }
            }
            answers
        }
    });
    for _ in 0..200 {
        if acknowledged.load(Ordering::SeqCst) >= 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (admin, connection) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    // The pool's two, the replica pool's two, the writer, the journal and the leader lock.
    assert!(end_every_connection(&admin).await >= 7);
    ended.store(true, Ordering::SeqCst);
    let answers = payments.await.unwrap();

    // Each kind of connection comes back within a bounded number of tries.
    comes_back("a read", || store.all_accounts()).await;
    comes_back("a replica read", || store.journal_recent(10)).await;
    comes_back("a ledger write", || store.submit(vec![one_unit(2)])).await;
    comes_back("a journal write", || store.journal(vec![journal_entry(2)])).await;
    assert!(
        comes_to_lead(&store, Job::Webhooks).await,
        "the node takes its job's lock again on a new connection"
    );

    // With the session settings of their kind.
    use store::onboarding::{Cell, Kind};
    let timeout = store
        .onboarding_query(
            "SELECT current_setting('statement_timeout')",
            vec![],
            &[Kind::Text],
        )
        .await
        .unwrap();
    assert_eq!(timeout, vec![vec![Cell::text("5s")]]);
    let names = admin
        .query(
            "SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = current_database() ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let names: Vec<String> = names.iter().map(|row| row.get(0)).collect();
    for name in [
        "easypos journal",
        "easypos leader",
        "easypos pool",
        "easypos writer",
    ] {
        assert!(
            names.iter().any(|found| found == name),
            "{name} in {names:?}"
        );
    }

    // Nothing acknowledged was lost; what got an error is in the books once or not at all:
    // asked again (as a reversal or a retry would), it is either made now or found.
    assert!(store.transfer(TransferId(1)).await.unwrap().is_some());
    let journal = store.journal_of("T0000001", 1, None).await.unwrap();
    let stans: Vec<Option<i64>> = journal.iter().map(|entry| entry.stan).collect();
    assert_eq!(stans, vec![Some(1), Some(2)]);
    for (id, acknowledged) in &answers {
        let found = store.transfer(TransferId(*id)).await.unwrap();
        if *acknowledged {
            assert!(found.is_some(), "acknowledged payment {id} kept");
        }
    }
    assert_each_transfer_once(&store).await;
    for (id, _) in answers.iter().filter(|(_, acknowledged)| !acknowledged) {
        let outcome = store.submit(vec![one_unit(*id)]).await.unwrap().remove(0);
        assert!(outcome.is_ok(), "{id}: {outcome:?}");
    }
    assert_each_transfer_once(&store).await;
    Arc::into_inner(store).unwrap().close().await.unwrap();
}

/// The database goes away and stays away for a while (it refuses connections). Every call
/// answers at once with a clear error that names the database without its password, the node
/// stops believing it leads, and when the database is back everything works again by itself.
#[tokio::test(flavor = "multi_thread")]
async fn while_the_database_is_away_calls_fail_clearly_and_work_again_when_it_is_back() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let backend = common::postgres(&url).await;
    let store::Backend::Postgres { url: database_url } = backend.backend.clone() else {
        unreachable!("a PostgreSQL test backend");
    };
    let database = database_url.rsplit('/').next().unwrap().to_owned();
    // Trust authentication ignores the password; the store must never show it.
    let with_password = database_url.replacen("postgres@", "postgres:hunter2@", 1);
    assert_ne!(
        with_password, database_url,
        "the test URL names the user postgres"
    );
    let store = Store::open_postgres(
        &with_password,
        &store::PostgresTuning::default(),
        Arc::new(store::SystemClock),
    )
    .await
    .unwrap();
    store
        .create_accounts(vec![
            AccountSpec::new(FUNDING, BANK, Currency::CNY, 1),
            AccountSpec::new(ALICE, BANK, Currency::CNY, 2),
        ])
        .await
        .unwrap();
    store.submit(vec![one_unit(1)]).await.unwrap();
    assert!(store.leads(Job::HoldExpiry).await);

    // The server's own database, not the test's: the test's refuses connections from now on.
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let allow =
        |allowed: bool| format!("ALTER DATABASE {database} WITH ALLOW_CONNECTIONS {allowed}");
    admin.batch_execute(&allow(false)).await.unwrap();
    let ended = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&database],
        )
        .await
        .unwrap()
        .len();
    // The pool's four, the writer, the journal and the leader lock.
    assert!(ended >= 7, "{ended}");

    // Away: each call fails, none panics, none hangs, and the errors say what is wrong.
    let mut errors = Vec::new();
    for id in 2..6 {
        let error = comes_to_fail(|| store.submit(vec![one_unit(id)])).await;
        errors.push(error);
        errors.push(comes_to_fail(|| store.journal(vec![journal_entry(id as i64)])).await);
        errors.push(comes_to_fail(|| store.all_accounts()).await);
    }
    for error in &errors {
        assert!(!error.contains("hunter2"), "{error}");
    }
    let last = errors.last().unwrap();
    assert!(last.contains("unreachable"), "{last}");
    assert!(
        !store.leads(Job::HoldExpiry).await,
        "no proof of the lock: not the leader"
    );

    // Back: everything works again without a restart.
    admin.batch_execute(&allow(true)).await.unwrap();
    comes_back("a read", || store.all_accounts()).await;
    comes_back("a ledger write", || store.submit(vec![one_unit(7)])).await;
    comes_back("a journal write", || store.journal(vec![journal_entry(7)])).await;
    assert!(comes_to_lead(&store, Job::HoldExpiry).await);
    assert!(store.transfer(TransferId(1)).await.unwrap().is_some());
    for id in 2..6 {
        assert!(
            store.transfer(TransferId(id)).await.unwrap().is_none(),
            "{id}"
        );
    }
    assert_each_transfer_once(&store).await;
    store.close().await.unwrap();
}

/// The error of one call while the database is away (it must fail, not succeed).
async fn comes_to_fail<
    T: std::fmt::Debug,
    F: std::future::Future<Output = Result<T, store::StoreError>>,
>(
    attempt: impl FnOnce() -> F,
) -> String {
    attempt()
        .await
        .expect_err("the database is away")
        .to_string()
}
