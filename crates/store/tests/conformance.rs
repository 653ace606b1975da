#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One conformance suite, run against every backend: what the ledger promises must hold the
//! same on SQLite and on PostgreSQL.

mod common;

use common::{TestBackend, backends};
use ledger::testing::{Step, verify_totals, workload, workload_accounts};
use ledger::*;
use money::{Amount, Currency};
use std::sync::Arc;
use store::directory::*;
use store::{ManualClock, Store, StoreError};

const SECOND: u64 = NANOS_PER_SECOND;
const START: u64 = 1_764_000_000 * SECOND;
const BANK: InstitutionId = InstitutionId(1);
const FUNDING: AccountId = AccountId(1);
const ALICE: AccountId = AccountId(2);
const BOB: AccountId = AccountId(3);

fn cny(minor: i64) -> Amount {
    Amount::new(minor, Currency::CNY)
}

async fn open(backend: &TestBackend, clock: &Arc<ManualClock>) -> Store {
    Store::open_with_clock(&backend.backend, clock.clone())
        .await
        .unwrap_or_else(|error| panic!("{}: open failed: {error}", backend.name))
}

/// Funding and two deposit accounts, Alice holding 10 000.
async fn funded(store: &Store) {
    let deposit = BalanceConstraint::DebitsMustNotExceedCredits;
    let specs = vec![
        AccountSpec::new(FUNDING, BANK, Currency::CNY, 1),
        AccountSpec::new(ALICE, BANK, Currency::CNY, 2).constraint(deposit),
        AccountSpec::new(BOB, BANK, Currency::CNY, 2).constraint(deposit),
    ];
    assert!(
        store
            .create_accounts(specs)
            .await
            .unwrap()
            .iter()
            .all(Result::is_ok)
    );
    let results = store
        .submit(vec![TransferRequest::posted(
            TransferId(1),
            FUNDING,
            ALICE,
            cny(10_000),
        )])
        .await
        .unwrap();
    assert!(results[0].is_ok());
}

async fn totals(store: &Store, id: AccountId) -> [i64; 4] {
    let a = store.account(id).await.unwrap().unwrap();
    [
        a.debits_pending,
        a.debits_posted,
        a.credits_pending,
        a.credits_posted,
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_apply_and_data_survives_a_restart() {
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        let latest = match backend.name {
            "sqlite" => store::latest_version(store::sqlite_migrations()),
            _ => store::latest_version(store::postgres_migrations()),
        };
        assert_eq!(
            store.schema_version().await.unwrap(),
            latest,
            "{}",
            backend.name
        );
        funded(&store).await;
        store.close().await.unwrap();
        let store = open(&backend, &clock).await;
        assert_eq!(
            totals(&store, ALICE).await,
            [0, 0, 0, 10_000],
            "{}",
            backend.name
        );
        assert_eq!(store.schema_version().await.unwrap(), latest);
        store.close().await.unwrap();
    }
}

/// A closed SQLite store is its database file alone: the last commits are checkpointed out of
/// the write-ahead log (the readers' read-only connections cannot do it when they close), so a
/// copy of the file alone holds everything.
#[tokio::test(flavor = "multi_thread")]
async fn a_closed_sqlite_store_is_its_file_alone() {
    let backend = store::testing::sqlite();
    let store::Backend::Sqlite { path } = &backend.backend else {
        unreachable!("an SQLite backend");
    };
    let clock = Arc::new(ManualClock::new(START));
    let store = open(&backend, &clock).await;
    funded(&store).await;
    // A read leaves an idle read-only connection open until the store is dropped.
    assert_eq!(totals(&store, ALICE).await, [0, 0, 0, 10_000]);
    store.close().await.unwrap();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal_length = std::fs::metadata(&wal).map_or(0, |metadata| metadata.len());
    assert_eq!(wal_length, 0, "the WAL holds nothing after close");
    let copy = store::testing::sqlite();
    let store::Backend::Sqlite { path: copy_path } = &copy.backend else {
        unreachable!("an SQLite backend");
    };
    std::fs::copy(path, copy_path).unwrap();
    let copied = open(&copy, &clock).await;
    assert_eq!(totals(&copied, ALICE).await, [0, 0, 0, 10_000]);
    copied.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_commits_with_its_transfers_or_not_at_all() {
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        funded(&store).await;
        let chain = |second: i64| {
            vec![
                TransferRequest::posted(TransferId(50), ALICE, BOB, cny(100)).linked(),
                TransferRequest::posted(TransferId(51), ALICE, BOB, cny(second)),
            ]
        };
        // The chain is refused (the second transfer overdraws Alice): no record either.
        let refused = store
            .submit_recording(chain(1_000_000), "cycle/1", "closed")
            .await
            .unwrap();
        assert!(refused.iter().all(Result::is_err), "{}", backend.name);
        assert_eq!(
            store.meta("cycle/1").await.unwrap(),
            None,
            "{}",
            backend.name
        );
        // Made: the transfers and the record, together.
        let made = store
            .submit_recording(chain(200), "cycle/1", "closed")
            .await
            .unwrap();
        assert!(made.iter().all(Result::is_ok));
        assert_eq!(
            store.meta("cycle/1").await.unwrap().as_deref(),
            Some("closed")
        );
        assert_eq!(
            totals(&store, BOB).await,
            [0, 0, 0, 300],
            "{}",
            backend.name
        );
        // Found made again (a re-run): the record is written again, nothing moves twice.
        let again = store
            .submit_recording(chain(200), "cycle/1", "closed again")
            .await
            .unwrap();
        assert!(again.iter().all(Result::is_ok));
        assert_eq!(
            store.meta("cycle/1").await.unwrap().as_deref(),
            Some("closed again")
        );
        assert_eq!(
            totals(&store, BOB).await,
            [0, 0, 0, 300],
            "{}",
            backend.name
        );
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_requests_write_nothing_and_retries_return_the_original() {
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        funded(&store).await;
        let refused = vec![
            (
                TransferRequest::posted(TransferId(10), ALICE, BOB, cny(10_001)),
                TransferError::ExceedsCredits,
            ),
            (
                TransferRequest::posted(TransferId(10), ALICE, AccountId(99), cny(1)),
                TransferError::CreditAccountNotFound,
            ),
            (
                TransferRequest::posted(TransferId(10), ALICE, BOB, Amount::new(1, Currency::USD)),
                TransferError::CurrencyMismatch,
            ),
            (
                TransferRequest::posted(TransferId(1), FUNDING, ALICE, cny(9)),
                TransferError::ExistsWithDifferentContent,
            ),
            (
                TransferRequest::post(TransferId(10), TransferId(1), None),
                TransferError::PendingTransferNotPending,
            ),
        ];
        for (request, expected) in refused {
            assert_eq!(
                store.submit(vec![request]).await.unwrap(),
                vec![Err(expected)],
                "{}",
                backend.name
            );
        }
        assert_eq!(
            store.all_transfers().await.unwrap().len(),
            1,
            "{}: refused requests recorded nothing",
            backend.name
        );
        assert_eq!(totals(&store, ALICE).await, [0, 0, 0, 10_000]);

        let pay = TransferRequest::posted(TransferId(11), ALICE, BOB, cny(250)).user_data(77);
        let first = store.submit(vec![pay]).await.unwrap().remove(0).unwrap();
        clock.advance(5 * SECOND);
        let again = store.submit(vec![pay]).await.unwrap().remove(0).unwrap();
        assert_eq!(
            again,
            Outcome::AlreadyExists(*first.transfer()),
            "{}",
            backend.name
        );
        assert_eq!(
            store.transfer(TransferId(11)).await.unwrap(),
            Some(*first.transfer()),
            "{}: read back exactly",
            backend.name
        );
        assert_eq!(totals(&store, BOB).await, [0, 0, 0, 250]);
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn holds_post_void_and_expire() {
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        funded(&store).await;
        let holds = vec![
            TransferRequest::pending(TransferId(20), ALICE, FUNDING, cny(1_000), 30),
            TransferRequest::pending(TransferId(21), ALICE, FUNDING, cny(2_000), 0),
            TransferRequest::pending(TransferId(22), ALICE, FUNDING, cny(3_000), 0),
        ];
        assert!(store.submit(holds).await.unwrap().iter().all(Result::is_ok));
        assert_eq!(totals(&store, ALICE).await, [6_000, 0, 0, 10_000]);
        let resolve = vec![
            TransferRequest::post(TransferId(23), TransferId(21), Some(cny(1_500))),
            TransferRequest::void(TransferId(24), TransferId(22)),
        ];
        assert!(
            store
                .submit(resolve)
                .await
                .unwrap()
                .iter()
                .all(Result::is_ok)
        );
        assert_eq!(
            totals(&store, ALICE).await,
            [1_000, 1_500, 0, 10_000],
            "{}",
            backend.name
        );
        assert_eq!(store.expire_due().await.unwrap(), 0);
        clock.advance(31 * SECOND);
        assert_eq!(store.expire_due().await.unwrap(), 1, "{}", backend.name);
        assert_eq!(
            store
                .transfer(TransferId(20))
                .await
                .unwrap()
                .unwrap()
                .status,
            Some(PendingStatus::Expired)
        );
        assert_eq!(totals(&store, ALICE).await, [0, 1_500, 0, 10_000]);
        let late = store
            .submit(vec![TransferRequest::post(
                TransferId(25),
                TransferId(20),
                None,
            )])
            .await
            .unwrap();
        assert_eq!(late, vec![Err(TransferError::PendingTransferExpired)]);
        store.check_books().await.unwrap();
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_linked_chain_writes_nothing() {
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        funded(&store).await;
        store
            .submit(vec![TransferRequest::pending(
                TransferId(30),
                ALICE,
                FUNDING,
                cny(500),
                0,
            )])
            .await
            .unwrap();
        let chain = vec![
            TransferRequest::post(TransferId(31), TransferId(30), None).linked(),
            TransferRequest::posted(TransferId(32), ALICE, BOB, cny(100)).linked(),
            TransferRequest::posted(TransferId(33), BOB, FUNDING, cny(1_000)),
        ];
        let results = store.submit(chain).await.unwrap();
        assert_eq!(
            results,
            vec![
                Err(TransferError::LinkedEventFailed),
                Err(TransferError::LinkedEventFailed),
                Err(TransferError::ExceedsCredits)
            ]
        );
        assert_eq!(
            store
                .transfer(TransferId(30))
                .await
                .unwrap()
                .unwrap()
                .status,
            Some(PendingStatus::Pending),
            "{}",
            backend.name
        );
        assert_eq!(store.transfer(TransferId(31)).await.unwrap(), None);
        assert_eq!(totals(&store, ALICE).await, [500, 0, 0, 10_000]);
        assert_eq!(totals(&store, BOB).await, [0, 0, 0, 0]);
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_callers_share_commits_and_lose_nothing() {
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = Arc::new(open(&backend, &clock).await);
        funded(&store).await;
        let before = store.stats();
        let callers = 64_u128;
        let per_caller = 20_u128;
        let mut tasks = Vec::new();
        for caller in 0..callers {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for index in 0..per_caller {
                    let id = TransferId(1_000 + caller * per_caller + index);
                    let results = store
                        .submit(vec![TransferRequest::posted(id, ALICE, BOB, cny(1))])
                        .await
                        .unwrap();
                    assert!(results[0].is_ok());
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let stats = store.stats();
        let requests = stats.requests - before.requests;
        assert_eq!(requests, (callers * per_caller) as u64);
        assert!(
            stats.commits - before.commits < requests,
            "{}: group commit merged callers ({} commits for {requests})",
            backend.name,
            stats.commits - before.commits
        );
        assert_eq!(
            totals(&store, BOB).await,
            [0, 0, 0, (callers * per_caller) as i64]
        );
        store.check_books().await.unwrap();
        Arc::try_unwrap(store).unwrap().close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_are_idempotent_by_id() {
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        let spec = AccountSpec::new(AccountId(40), BANK, Currency::HKD, 2);
        let first = store
            .create_accounts(vec![spec])
            .await
            .unwrap()
            .remove(0)
            .unwrap();
        clock.advance(SECOND);
        assert_eq!(
            store.create_accounts(vec![spec]).await.unwrap(),
            vec![Ok(first)],
            "{}",
            backend.name
        );
        let conflicting = AccountSpec {
            currency: Currency::USD,
            ..spec
        };
        assert_eq!(
            store.create_accounts(vec![conflicting]).await.unwrap(),
            vec![Err(AccountError::ExistsWithDifferentContent)]
        );
        assert_eq!(
            store
                .account(AccountId(40))
                .await
                .unwrap()
                .unwrap()
                .currency,
            Currency::HKD
        );
        store.close().await.unwrap();
    }
}

/// Runs a seeded workload one batch per call, mirroring it on the in-memory reference with the
/// same timestamps (the store stamps a batch `max(clock, last + 1)` and reserves one
/// nanosecond per request).
async fn run_workload(
    store: &Store,
    clock: &ManualClock,
    seed: u64,
    steps: usize,
) -> (Vec<Account>, MemoryLedger) {
    let specs = workload_accounts(5);
    store.create_accounts(specs.clone()).await.unwrap();
    let mut reference = MemoryLedger::default();
    let mut last = 0_u64;
    let mut stamp = |count: usize| {
        let now = clock.now().max(last + 1);
        last = now + count as u64;
        now
    };
    reference.create_accounts(&specs, stamp(0)).unwrap();
    for step in workload(seed, 5, steps) {
        match step {
            Step::Batch(requests) => {
                let stored = store.submit(requests.clone()).await.unwrap();
                let expected = reference.execute(&requests, stamp(requests.len()));
                assert_eq!(
                    stored, expected,
                    "seed {seed}: store and reference disagree on {requests:?}"
                );
            }
            Step::Advance(seconds) => {
                clock.advance(u64::from(seconds) * SECOND);
                let expired = store.expire_due().await.unwrap();
                assert_eq!(
                    expired,
                    reference.expire_due(stamp(0)),
                    "seed {seed}: expiries differ"
                );
            }
        }
    }
    (store.all_accounts().await.unwrap(), reference)
}

use store::Clock as _;

#[tokio::test(flavor = "multi_thread")]
async fn random_workloads_match_the_reference_and_balance() {
    let mut finals: Vec<(&'static str, u64, Vec<Account>)> = Vec::new();
    for seed in [1_u64, 2, 3, 0x00E4_5F05] {
        for backend in backends().await {
            let clock = Arc::new(ManualClock::new(START));
            let store = open(&backend, &clock).await;
            let (accounts, reference) = run_workload(&store, &clock, seed, 150).await;
            let transfers = store.all_transfers().await.unwrap();
            verify_totals(&accounts, &transfers)
                .unwrap_or_else(|error| panic!("{} seed {seed}: {error}", backend.name));
            ledger::check_books(&accounts).unwrap();
            let mut expected: Vec<Account> = reference.accounts().copied().collect();
            expected.sort_by_key(|account| account.id);
            assert_eq!(
                accounts, expected,
                "{} seed {seed}: final accounts",
                backend.name
            );
            finals.push((backend.name, seed, accounts));
            store.close().await.unwrap();
        }
    }
    // The same sequence ends in identical balances on every backend.
    for (name, seed, accounts) in &finals {
        let sqlite = finals
            .iter()
            .find(|(other, other_seed, _)| *other == "sqlite" && other_seed == seed)
            .unwrap();
        assert_eq!(
            accounts, &sqlite.2,
            "{name} and sqlite differ for seed {seed}"
        );
    }
}

/// Every authorization reads its card by the number's fingerprint, so a card found is kept in
/// memory: it is found again while the database's `cards` table cannot be read. A fingerprint
/// not found is not remembered: on PostgreSQL, a card another host adds a moment later is found.
#[tokio::test(flavor = "multi_thread")]
async fn cards_found_by_fingerprint_are_remembered_and_unknown_ones_are_not() {
    use store::onboarding::Step;
    for backend in backends().await {
        let name = backend.name;
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        let mut directory = store::testing::one_card_directory(BANK, ALICE);
        directory.cards[0].pan_fingerprint = Some([7; 32]);
        store.put_directory(directory.clone()).await.unwrap();
        assert_eq!(store.card_by_fingerprint([9; 32]).await.unwrap(), None);
        let mut second = directory.cards[0].clone();
        second.id = "card-2".into();
        second.account = BOB;
        second.pan_fingerprint = Some([9; 32]);
        let later = Directory {
            cards: vec![second],
            ..directory.clone()
        };
        if name == "postgres" {
            // Another host sharing the database issues the card.
            let other = Store::open(&backend.backend).await.unwrap();
            other.put_directory(later).await.unwrap();
            other.close().await.unwrap();
        } else {
            store.put_directory(later).await.unwrap();
        }
        let found = |fingerprint: [u8; 32]| {
            let store = &store;
            async move {
                store
                    .card_by_fingerprint(fingerprint)
                    .await
                    .map(|card| card.map(|card| card.id))
            }
        };
        assert_eq!(
            found([9; 32]).await.unwrap().as_deref(),
            Some("card-2"),
            "{name}"
        );
        assert_eq!(
            found([7; 32]).await.unwrap().as_deref(),
            Some("card-1"),
            "{name}"
        );
        let rename = |from: &str, to: &str| {
            vec![Step::new(
                format!("ALTER TABLE {from} RENAME TO {to}"),
                vec![],
            )]
        };
        assert!(
            store
                .onboarding_execute(rename("cards", "cards_away"))
                .await
                .unwrap()
        );
        assert_eq!(
            found([7; 32]).await.unwrap().as_deref(),
            Some("card-1"),
            "{name}: a card found before is found without the table"
        );
        assert!(
            found([8; 32]).await.is_err(),
            "{name}: an unknown fingerprint is read from the database"
        );
        assert!(
            store
                .onboarding_execute(rename("cards_away", "cards"))
                .await
                .unwrap()
        );
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_directory_round_trips_and_seeding_twice_changes_nothing() {
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        let directory = Directory {
            institutions: vec![Institution {
                id: BANK,
                kind: InstitutionKind::DebitBank,
                name: "Demo Bank".into(),
                name_zh: "演示银行".into(),
            }],
            merchants: vec![Merchant {
                id: "898310058120001".into(),
                acquirer: BANK,
                name: "Lujiazui Coffee".into(),
                name_zh: "陆家嘴咖啡".into(),
                city: "Shanghai".into(),
                mcc: "5814".into(),
                settlement_account: AccountId(9),
            }],
            terminals: vec![Terminal {
                id: "10000001".into(),
                merchant_id: "898310058120001".into(),
                status: "active".into(),
            }],
            staff: vec![Staff {
                merchant_id: "898310058120001".into(),
                operator_no: "01".into(),
                name: "Wang Fang".into(),
                role: StaffRole::Cashier,
            }],
            ..store::testing::one_card_directory(BANK, ALICE)
        };
        store.put_directory(directory.clone()).await.unwrap();
        // A card seeded before fingerprints existed gets one later; a set one never changes.
        let mut fingerprinted = directory.clone();
        fingerprinted.cards[0].pan_fingerprint = Some([7; 32]);
        store.put_directory(fingerprinted.clone()).await.unwrap();
        let mut changed = fingerprinted.clone();
        changed.cards[0].pan_fingerprint = Some([8; 32]);
        store.put_directory(changed).await.unwrap();
        let directory = fingerprinted;
        assert_eq!(
            store
                .card_by_fingerprint([7; 32])
                .await
                .unwrap()
                .map(|card| card.id),
            Some("card-1".to_owned()),
            "{}",
            backend.name
        );
        assert_eq!(store.card_by_fingerprint([8; 32]).await.unwrap(), None);
        assert_eq!(
            store.load_directory().await.unwrap(),
            directory.clone().sorted(),
            "{}",
            backend.name
        );
        assert_eq!(store.meta("seeded").await.unwrap(), None);
        store.set_meta("seeded", "demo-v1").await.unwrap();
        store.set_meta("seeded", "demo-v2").await.unwrap();
        assert_eq!(
            store.meta("seeded").await.unwrap().as_deref(),
            Some("demo-v2")
        );
        // A record that breaks a constraint is refused and the rest of the batch with it.
        let mut bad = directory.clone();
        bad.terminals.push(Terminal {
            id: "TOO-LONG-ID".into(),
            merchant_id: "898310058120001".into(),
            status: "active".into(),
        });
        bad.cardholders.push(Cardholder {
            id: "CH2".into(),
            name: "Han Meimei".into(),
            name_zh: "韩梅梅".into(),
        });
        assert!(store.put_directory(bad).await.is_err(), "{}", backend.name);
        assert_eq!(
            store.load_directory().await.unwrap().cardholders.len(),
            1,
            "{}: nothing of the refused batch was written",
            backend.name
        );
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_stored_by_name_and_never_replaced() {
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        let key = |name: &str, token: &str| StoredKey {
            name: name.into(),
            token: token.into(),
            check_value: "ABC123".into(),
        };
        store
            .put_keys(vec![
                key("issuer/20/cvk", "D0112C0TB00E0000AAAA"),
                key("issuer/20/pvk", "D0112V2TB00E0000BBBB"),
            ])
            .await
            .unwrap();
        store
            .put_keys(vec![key("issuer/20/cvk", "D0112C0TB00E0000CCCC")])
            .await
            .unwrap();
        let keys = store.keys().await.unwrap();
        assert_eq!(
            keys.iter()
                .map(|key| (key.name.as_str(), key.token.as_str()))
                .collect::<Vec<_>>(),
            vec![
                ("issuer/20/cvk", "D0112C0TB00E0000AAAA"),
                ("issuer/20/pvk", "D0112V2TB00E0000BBBB")
            ],
            "{}",
            backend.name
        );
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receipt_key_rotation_retires_the_signing_key_and_keeps_it() {
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        let key = |id: &str, at: i64| store::receipt_keys::ReceiptKey {
            key_id: id.into(),
            token: format!("D0112S0ES00N0000{id}"),
            public_key: id.repeat(8),
            created_at: at,
            retired_at: None,
        };
        assert!(store.receipt_keys().await.unwrap().is_empty());
        assert!(
            store
                .rotate_receipt_key(key("0a0b0c0d", 100))
                .await
                .unwrap()
        );
        assert!(
            store
                .rotate_receipt_key(key("1a1b1c1d", 200))
                .await
                .unwrap()
        );
        // A retried rotation changes nothing, and does not retire the key it added.
        assert!(
            !store
                .rotate_receipt_key(key("1a1b1c1d", 300))
                .await
                .unwrap()
        );
        store.close().await.unwrap();
        let store = open(&backend, &clock).await;
        let keys = store.receipt_keys().await.unwrap();
        assert_eq!(
            keys.iter()
                .map(|key| (key.key_id.as_str(), key.created_at, key.retired_at))
                .collect::<Vec<_>>(),
            vec![("0a0b0c0d", 100, Some(200)), ("1a1b1c1d", 200, None)],
            "{}",
            backend.name
        );
        assert_eq!(keys[0].token, "D0112S0ES00N00000a0b0c0d");
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fraud_report_is_kept_once_per_transaction_byte_for_byte() {
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        let report = |id: &str, pack: &str| store::fraud_reports::FraudReport {
            id: id.into(),
            transaction_id: 42,
            card_id: "card-CH001-D".into(),
            reported_by: "cardholder1".into(),
            reported_at: 1_764_000_000,
            description: "not me".into(),
            pack: pack.into(),
            pack_sha256: "ab".repeat(32),
        };
        let pack = "{\n  \"format\": \"easypos-evidence-pack/1\" \u{4e2d}\n}";
        let first = store
            .put_fraud_report(report("fr_1", pack), &["case", "notify"])
            .await
            .unwrap();
        assert_eq!(first, report("fr_1", pack), "{}", backend.name);
        // A second report of the same transaction keeps the first, and adds no follow-up.
        let second = store
            .put_fraud_report(report("fr_2", "{}"), &["dispute"])
            .await
            .unwrap();
        assert_eq!(second.id, "fr_1", "{}", backend.name);
        let steps = |follow_ups: &[store::fraud_reports::FraudFollowUp]| {
            follow_ups
                .iter()
                .map(|f| (f.step.clone(), f.state.clone(), f.attempts))
                .collect::<Vec<_>>()
        };
        let pending = store.fraud_follow_ups("fr_1").await.unwrap();
        assert_eq!(
            steps(&pending),
            [
                ("case".to_owned(), "pending".to_owned(), 0),
                ("notify".to_owned(), "pending".to_owned(), 0)
            ],
            "{}",
            backend.name
        );
        assert!(store.fraud_follow_ups("fr_2").await.unwrap().is_empty());
        store.close().await.unwrap();
        let store = open(&backend, &clock).await;
        assert_eq!(
            store.fraud_report("fr_1").await.unwrap(),
            Some(report("fr_1", pack)),
            "{}",
            backend.name
        );
        assert_eq!(store.fraud_report("fr_2").await.unwrap(), None);
        assert_eq!(
            store
                .fraud_report_of_transaction(42)
                .await
                .unwrap()
                .map(|r| r.id),
            Some("fr_1".to_owned())
        );
        fraud_follow_ups_are_claimed_leased_and_finished_once(&store, backend.name).await;
        store.close().await.unwrap();
    }
}

/// The follow-ups of `fr_1` (due at 1_764_000_000): a claim leases them, a failure sets the
/// next try, a claim whose lease ran out and was taken over cannot finish, done is final.
async fn fraud_follow_ups_are_claimed_leased_and_finished_once(store: &Store, backend: &str) {
    use store::fraud_reports::FollowUpResult;
    let now = 1_764_000_000;
    assert!(
        store
            .claim_fraud_follow_ups(now - 1, now + 60, 10, None)
            .await
            .unwrap()
            .is_empty(),
        "not due yet: {backend}"
    );
    assert!(
        store
            .claim_fraud_follow_ups(now, now + 60, 10, Some("fr_other"))
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store
        .claim_fraud_follow_ups(now, now + 60, 10, Some("fr_1"))
        .await
        .unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|f| (f.step.as_str(), f.attempts))
            .collect::<Vec<_>>(),
        [("case", 1), ("notify", 1)],
        "{backend}"
    );
    // Leased: nobody else takes them before the lease ends.
    assert!(
        store
            .claim_fraud_follow_ups(now + 59, now + 120, 10, None)
            .await
            .unwrap()
            .is_empty()
    );
    let failed = FollowUpResult::Failed {
        error: "injected".into(),
        retry_at: now + 10,
    };
    assert!(
        store
            .finish_fraud_follow_up(&claimed[0], failed)
            .await
            .unwrap()
    );
    // The case's lease ended early (retry at +10); the notify's runner is slow: its lease runs
    // out and another claim takes it over, so the slow one's answer is not kept.
    let again = store
        .claim_fraud_follow_ups(now + 60, now + 120, 10, None)
        .await
        .unwrap();
    assert_eq!(
        again
            .iter()
            .map(|f| (f.step.as_str(), f.attempts))
            .collect::<Vec<_>>(),
        [("case", 2), ("notify", 2)],
        "{backend}"
    );
    assert_eq!(again[0].last_error, "injected");
    let done = |outcome: &str| FollowUpResult::Done {
        outcome: outcome.into(),
        at: now + 61,
    };
    assert!(
        !store
            .finish_fraud_follow_up(&claimed[1], done("stale"))
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_fraud_follow_up(&again[0], done("case 7"))
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_fraud_follow_up(&again[1], done("2 deliveries"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_fraud_follow_up(&again[1], done("twice"))
            .await
            .unwrap()
    );
    let finished = store.fraud_follow_ups("fr_1").await.unwrap();
    assert_eq!(
        finished
            .iter()
            .map(|f| (
                f.state.as_str(),
                f.outcome.as_str(),
                f.last_error.as_str(),
                f.done_at
            ))
            .collect::<Vec<_>>(),
        [
            ("done", "case 7", "", Some(now + 61)),
            ("done", "2 deliveries", "", Some(now + 61))
        ],
        "{backend}"
    );
    assert!(
        store
            .claim_fraud_follow_ups(now + 1_000, now + 1_060, 10, None)
            .await
            .unwrap()
            .is_empty(),
        "done is final"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_from_a_newer_easypos_is_refused() {
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        store.close().await.unwrap();
        match &backend.backend {
            store::Backend::Sqlite { path } => {
                let connection = rusqlite::Connection::open(path).unwrap();
                connection.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)", []).unwrap();
            }
            store::Backend::Postgres { url } => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(connection);
                client.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)", &[]).await.unwrap();
            }
        }
        let error = Store::open_with_clock(&backend.backend, clock.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::SchemaTooNew { found: 999, .. }),
            "{}: {error}",
            backend.name
        );
        assert!(
            error.to_string().contains("newer than this easypos"),
            "{error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn books_edited_behind_our_back_are_refused_at_start() {
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        funded(&store).await;
        store.close().await.unwrap();
        let tamper = "UPDATE ledger_accounts SET credits_posted = credits_posted + 1";
        match &backend.backend {
            store::Backend::Sqlite { path } => {
                rusqlite::Connection::open(path)
                    .unwrap()
                    .execute(tamper, [])
                    .unwrap();
            }
            store::Backend::Postgres { url } => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(connection);
                client.execute(tamper, &[]).await.unwrap();
            }
        }
        let error = Store::open_with_clock(&backend.backend, clock.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::Corrupt(_)),
            "{}: {error}",
            backend.name
        );
        assert!(error.to_string().contains("do not balance"), "{error}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 12, ..Default::default() })]

    /// Any seeded sequence of transfers, holds, posts, voids and expiries: every backend agrees
    /// with the reference step by step, every balance equals the sum of its transfers, and the
    /// books balance.
    #[test]
    fn any_workload_gives_identical_books_on_every_backend(seed in proptest::prelude::any::<u64>(), steps in 1_usize..80) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async {
            let mut finals = Vec::new();
            for backend in backends().await {
                let clock = Arc::new(ManualClock::new(START));
                let store = open(&backend, &clock).await;
                let (accounts, _) = run_workload(&store, &clock, seed, steps).await;
                let transfers = store.all_transfers().await.unwrap();
                verify_totals(&accounts, &transfers).unwrap();
                ledger::check_books(&accounts).unwrap();
                finals.push(accounts);
                store.close().await.unwrap();
            }
            assert!(finals.windows(2).all(|pair| pair[0] == pair[1]), "seed {seed}: backends disagree");
        });
    }
}

mod authorizations {
    use super::*;
    use store::cards::*;

    /// A debit card with 10 000 on its account, a daily limit of `limit` and 2 PIN failures.
    async fn card_world(store: &Store, limit: i64) {
        funded(store).await;
        let directory = store::testing::one_card_directory(BANK, ALICE);
        store.put_directory(directory).await.unwrap();
        let card = IssuerCard {
            card_id: "card-1".into(),
            status: "active".into(),
            service_code: "201".into(),
            pin_method: Some("visa-pvv".into()),
            pin_key_index: Some(1),
            pin_reference: Some("4723".into()),
            cryptogram_version: 18,
            daily_limit_minor: Some(limit),
            pin_failures: 2,
            last_atc: Some(4),
            spent_minor: 0,
            spent_on: None,
        };
        store.put_issuer_cards(vec![card.clone()]).await.unwrap();
        store
            .put_issuer_cards(vec![IssuerCard {
                pin_failures: 0,
                ..card
            }])
            .await
            .unwrap();
    }

    fn sale(id: u128, amount: i64, atc: Option<i64>, pin: PinEffect, date: &str) -> Authorization {
        Authorization {
            transfers: vec![TransferRequest::posted(
                TransferId(id),
                ALICE,
                BOB,
                cny(amount),
            )],
            card: CardEffect {
                card_id: "card-1".into(),
                pin,
                atc,
                spend: Some(Spend {
                    date: date.into(),
                    amount_minor: amount,
                }),
            },
        }
    }

    async fn state(store: &Store) -> (i64, Option<i64>, i64, Option<String>) {
        let card = store.issuer_card("card-1").await.unwrap().unwrap();
        (
            card.pin_failures,
            card.last_atc,
            card.spent_minor,
            card.spent_on,
        )
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn card_effects_commit_with_their_transfers_and_guard_atc_and_limit() {
        for backend in backends().await {
            let clock = Arc::new(ManualClock::new(START));
            let store = open(&backend, &clock).await;
            card_world(&store, 15_000).await;
            assert_eq!(
                state(&store).await,
                (2, Some(4), 0, None),
                "{}: a card that has a profile keeps it",
                backend.name
            );

            let approved = store
                .authorize(sale(100, 300, Some(5), PinEffect::Reset, "2026-11-25"))
                .await
                .unwrap();
            assert_eq!(approved.card, CardOutcome::Applied);
            assert!(matches!(approved.transfers[..], [Ok(Outcome::Created(_))]));
            assert_eq!(
                state(&store).await,
                (0, Some(5), 300, Some("2026-11-25".into())),
                "{}",
                backend.name
            );

            // The same authorization again (two hosts racing on one message): its transfer is
            // found, and the day's spend is not counted twice.
            let again = store
                .authorize(sale(100, 300, None, PinEffect::Unchanged, "2026-11-25"))
                .await
                .unwrap();
            assert!(matches!(
                again.transfers[..],
                [Ok(Outcome::AlreadyExists(_))]
            ));
            assert_eq!(
                state(&store).await,
                (0, Some(5), 300, Some("2026-11-25".into())),
                "{}: spent once",
                backend.name
            );

            let replay = store
                .authorize(sale(101, 10, Some(5), PinEffect::Reset, "2026-11-25"))
                .await
                .unwrap();
            assert_eq!(
                (replay.card, replay.transfers.len()),
                (CardOutcome::AtcReplayed, 0)
            );
            assert!(store.transfer(TransferId(101)).await.unwrap().is_none());

            let over = store
                .authorize(sale(
                    102,
                    14_800,
                    Some(6),
                    PinEffect::Unchanged,
                    "2026-11-25",
                ))
                .await
                .unwrap();
            assert_eq!(
                (over.card, over.transfers.len()),
                (CardOutcome::LimitExceeded, 0)
            );
            assert_eq!(
                state(&store).await,
                (0, Some(6), 300, Some("2026-11-25".into())),
                "{}: the ATC still moves",
                backend.name
            );

            let wrong_pin = store
                .authorize(Authorization {
                    transfers: vec![],
                    card: CardEffect {
                        card_id: "card-1".into(),
                        pin: PinEffect::Failed,
                        atc: Some(7),
                        spend: None,
                    },
                })
                .await
                .unwrap();
            assert_eq!(wrong_pin.card, CardOutcome::Applied);
            assert_eq!(state(&store).await.0, 1);

            // Funds are short on a new day: the transfer is refused, the day's spend stays 0.
            let short = store
                .authorize(sale(103, 12_000, Some(8), PinEffect::Reset, "2026-11-26"))
                .await
                .unwrap();
            assert_eq!(short.transfers, vec![Err(TransferError::ExceedsCredits)]);
            assert_eq!(
                state(&store).await,
                (0, Some(8), 300, Some("2026-11-25".into())),
                "{}: refused funds spend nothing",
                backend.name
            );
            let short = store
                .authorize(sale(104, 900, Some(9), PinEffect::Reset, "2026-11-26"))
                .await
                .unwrap();
            assert!(
                short.transfers[0].is_ok(),
                "{}: a new day starts from zero",
                backend.name
            );
            assert_eq!(
                state(&store).await,
                (0, Some(9), 900, Some("2026-11-26".into()))
            );

            // A reversal gives back its day's spend (never below zero); one of another day
            // changes nothing.
            let give_back = |id: u128, amount: i64, date: &str| Authorization {
                transfers: vec![TransferRequest::posted(
                    TransferId(id),
                    BOB,
                    ALICE,
                    cny(amount),
                )],
                card: CardEffect {
                    card_id: "card-1".into(),
                    pin: PinEffect::Unchanged,
                    atc: None,
                    spend: Some(Spend {
                        date: date.into(),
                        amount_minor: -amount,
                    }),
                },
            };
            store
                .authorize(give_back(110, 100, "2026-11-25"))
                .await
                .unwrap();
            assert_eq!(
                state(&store).await.2,
                900,
                "{}: another day's give-back changes nothing",
                backend.name
            );
            store
                .authorize(give_back(111, 400, "2026-11-26"))
                .await
                .unwrap();
            assert_eq!(state(&store).await.2, 500);
            store
                .authorize(give_back(112, 700, "2026-11-26"))
                .await
                .unwrap();
            assert_eq!(
                state(&store).await,
                (0, Some(9), 0, Some("2026-11-26".into())),
                "{}: never below zero",
                backend.name
            );
            assert_eq!(
                store
                    .card_by_account(ALICE)
                    .await
                    .unwrap()
                    .map(|card| card.id),
                Some("card-1".to_owned())
            );
            assert_eq!(store.card_by_account(BOB).await.unwrap(), None);

            let unknown = store
                .authorize(Authorization {
                    card: CardEffect {
                        card_id: "card-9".into(),
                        ..sale(105, 1, None, PinEffect::Unchanged, "2026-11-26").card
                    },
                    ..sale(105, 1, None, PinEffect::Unchanged, "2026-11-26")
                })
                .await
                .unwrap();
            assert_eq!(
                (unknown.card, unknown.transfers.len()),
                (CardOutcome::UnknownCard, 0)
            );
            // Bob got 1 200 from the sales and paid it all back in the give-backs.
            assert_eq!(totals(&store, BOB).await, [0, 1_200, 0, 1_200]);
            store.check_books().await.unwrap();
            store.close().await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_authorizations_never_pass_the_daily_limit() {
        for backend in backends().await {
            let clock = Arc::new(ManualClock::new(START));
            let store = Arc::new(open(&backend, &clock).await);
            card_world(&store, 1_000).await;
            let mut tasks = Vec::new();
            for index in 0..40_u128 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    store
                        .authorize(sale(
                            1_000 + index,
                            100,
                            None,
                            PinEffect::Unchanged,
                            "2026-11-25",
                        ))
                        .await
                        .unwrap()
                }));
            }
            let mut approved = 0;
            for task in tasks {
                let result = task.await.unwrap();
                if result.card == CardOutcome::Applied && result.transfers.iter().all(Result::is_ok)
                {
                    approved += 1;
                }
            }
            assert_eq!(
                approved, 10,
                "{}: exactly the limit, in a group or not",
                backend.name
            );
            assert_eq!(state(&store).await.2, 1_000);
            assert_eq!(totals(&store, BOB).await[3], 1_000);
            Arc::try_unwrap(store).unwrap().close().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn terminal_sessions_are_provisioned_once_and_signed_on() {
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        store
            .put_directory(Directory {
                institutions: vec![Institution {
                    id: BANK,
                    kind: InstitutionKind::Acquirer,
                    name: "Acquirer".into(),
                    name_zh: "收单".into(),
                }],
                merchants: vec![Merchant {
                    id: "898310058120001".into(),
                    acquirer: BANK,
                    name: "Lujiazui Coffee".into(),
                    name_zh: "陆家嘴咖啡".into(),
                    city: "Shanghai".into(),
                    mcc: "5814".into(),
                    settlement_account: AccountId(9),
                }],
                terminals: ["10000001", "10000002"]
                    .map(|id| Terminal {
                        id: id.into(),
                        merchant_id: "898310058120001".into(),
                        status: "active".into(),
                    })
                    .to_vec(),
                ..Directory::default()
            })
            .await
            .unwrap();
        let session = TerminalSession {
            terminal_id: "10000001".into(),
            key_scheme: "master-session".into(),
            tmk_key: "terminal/10000001/tmk".into(),
            pin_key: None,
            mac_key: None,
            batch: 1,
            operator: None,
            signed_on_at: None,
            initial_ksn: None,
            ksn_counter: 0,
        };
        store
            .put_terminal_sessions(vec![session.clone()])
            .await
            .unwrap();
        store
            .put_terminal_sessions(vec![TerminalSession {
                tmk_key: "other".into(),
                ..session.clone()
            }])
            .await
            .unwrap();
        assert_eq!(
            store.terminal_session("10000001").await.unwrap(),
            Some(session.clone()),
            "{}",
            backend.name
        );
        let signed = store
            .sign_on(SignOn {
                terminal_id: "10000001".into(),
                pin_key: Some("P-token".into()),
                mac_key: Some("M-token".into()),
                operator: "01".into(),
                at: 1_764_000_000,
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                signed.pin_key.as_deref(),
                signed.mac_key.as_deref(),
                signed.operator.as_deref(),
                signed.signed_on_at
            ),
            (
                Some("P-token"),
                Some("M-token"),
                Some("01"),
                Some(1_764_000_000)
            )
        );
        assert_eq!(
            store.terminal_session("10000001").await.unwrap(),
            Some(signed.clone())
        );
        // Sign-off and batch close are read back at once (SQLite serves sessions from memory).
        store
            .change_session("10000001", SessionChange::SignOff)
            .await
            .unwrap();
        let signed_off = store.terminal_session("10000001").await.unwrap().unwrap();
        assert_eq!(
            (signed_off.mac_key, signed_off.pin_key, signed_off.operator),
            (None, None, None),
            "{}",
            backend.name
        );
        store
            .change_session("10000001", SessionChange::CloseBatch { batch: 1 })
            .await
            .unwrap();
        store
            .change_session("10000001", SessionChange::CloseBatch { batch: 1 })
            .await
            .unwrap();
        assert_eq!(
            store
                .terminal_session("10000001")
                .await
                .unwrap()
                .unwrap()
                .batch,
            2,
            "{}: a batch closes once",
            backend.name
        );
        store.sign_on(signed_on_again()).await.unwrap();
        assert_eq!(
            store
                .terminal_session("10000001")
                .await
                .unwrap()
                .unwrap()
                .mac_key
                .as_deref(),
            Some("M2")
        );
        fn signed_on_again() -> SignOn {
            SignOn {
                terminal_id: "10000001".into(),
                pin_key: Some("P2".into()),
                mac_key: Some("M2".into()),
                operator: "02".into(),
                at: 1_764_000_100,
            }
        }
        let unknown = SignOn {
            terminal_id: "10000009".into(),
            pin_key: Some("P".into()),
            mac_key: Some("M".into()),
            operator: "01".into(),
            at: 1,
        };
        assert_eq!(store.sign_on(unknown).await.unwrap(), None);

        // A DUKPT terminal names its device by its initial KSN; one without is refused.
        let dukpt = TerminalSession {
            terminal_id: "10000002".into(),
            key_scheme: "dukpt-aes".into(),
            tmk_key: "acquirer/bdk/aes".into(),
            initial_ksn: Some("123456789012345600000000".into()),
            ..session.clone()
        };
        assert!(
            store
                .put_terminal_sessions(vec![TerminalSession {
                    initial_ksn: None,
                    ..dukpt.clone()
                }])
                .await
                .is_err(),
            "{}",
            backend.name
        );
        store
            .put_terminal_sessions(vec![dukpt.clone()])
            .await
            .unwrap();
        assert_eq!(
            store.terminal_session("10000002").await.unwrap(),
            Some(dukpt.clone())
        );

        // Its KSN counters only go up: the first is accepted, a repeat or a lower one is not,
        // a higher one is; the high-water mark is what a read (cached or not) sees.
        assert!(store.accept_ksn_counter("10000002", 5).await.unwrap());
        assert!(
            !store.accept_ksn_counter("10000002", 5).await.unwrap(),
            "{}",
            backend.name
        );
        assert!(
            !store.accept_ksn_counter("10000002", 4).await.unwrap(),
            "{}",
            backend.name
        );
        assert!(store.accept_ksn_counter("10000002", 9).await.unwrap());
        assert_eq!(
            store
                .terminal_session("10000002")
                .await
                .unwrap()
                .unwrap()
                .ksn_counter,
            9,
            "{}",
            backend.name
        );
        assert!(
            !store.accept_ksn_counter("10000009", 1).await.unwrap(),
            "no session"
        );
        // A sign-on keeps the mark: a device's counters never go back.
        store
            .sign_on(SignOn {
                terminal_id: "10000002".into(),
                pin_key: None,
                mac_key: None,
                operator: "01".into(),
                at: 2,
            })
            .await
            .unwrap();
        assert!(!store.accept_ksn_counter("10000002", 9).await.unwrap());
        batch_close(&backend, &store).await;
        store.close().await.unwrap();
        // Durable: a restarted host (a cold cache) still refuses counter 9.
        let store = open(&backend, &clock).await;
        assert!(
            !store.accept_ksn_counter("10000002", 9).await.unwrap(),
            "{}",
            backend.name
        );
        assert!(store.accept_ksn_counter("10000002", 10).await.unwrap());
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_journal_writes_are_each_kept_once_and_a_bad_one_fails_alone() {
    use store::journal::JournalEntry;
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = Arc::new(open(&backend, &clock).await);
        let entry = |terminal: &str, stan: i64| JournalEntry {
            received_at: 1_764_000_000_000_000 + stan,
            peer: "127.0.0.1:40000".into(),
            terminal_id: terminal.into(),
            merchant_id: "898310048990001".into(),
            mti: "0200".into(),
            kind: "Sale".into(),
            batch: Some(1),
            stan: Some(stan),
            response: Some("00".into()),
            ..JournalEntry::default()
        };
        // 200 handlers journal at once (1 to 3 rows each), so the writer takes many of them
        // per commit; one of them names a terminal PostgreSQL cannot store (a NUL byte).
        let mut tasks = Vec::new();
        for caller in 0..200_i64 {
            let store = store.clone();
            let terminal = if caller == 77 {
                "1000\u{0}077".to_owned()
            } else {
                format!("T{caller:07}")
            };
            let rows: Vec<JournalEntry> = (1..=1 + caller % 3)
                .map(|stan| entry(&terminal, stan))
                .collect();
            tasks.push(tokio::spawn(
                async move { store.journal(rows).await.is_ok() },
            ));
        }
        let mut stored = Vec::new();
        for task in tasks {
            stored.push(task.await.unwrap());
        }
        for caller in 0..200_i64 {
            if caller == 77 {
                assert_eq!(
                    stored[77],
                    backend.name == "sqlite",
                    "{}: only PostgreSQL refuses the NUL byte",
                    backend.name
                );
                continue;
            }
            assert!(stored[caller as usize], "{}: caller {caller}", backend.name);
            let rows = store
                .journal_of(&format!("T{caller:07}"), 1, None)
                .await
                .unwrap();
            let stans: Vec<Option<i64>> = rows.iter().map(|row| row.stan).collect();
            let expected: Vec<Option<i64>> = (1..=1 + caller % 3).map(Some).collect();
            assert_eq!(
                stans, expected,
                "{}: caller {caller}, each row once",
                backend.name
            );
        }
        Arc::into_inner(store).unwrap().close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_journal_keeps_entries_in_order_and_finds_them_by_batch_and_trace_number() {
    use store::journal::JournalEntry;
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        let entry = |stan: i64, batch: i64, terminal: &str| JournalEntry {
            received_at: 1_764_000_000_000_000 + stan,
            duration_us: 120,
            peer: "127.0.0.1:40000".into(),
            terminal_id: terminal.into(),
            merchant_id: "898310048990001".into(),
            mti: "0200".into(),
            kind: "Sale".into(),
            batch: Some(batch),
            stan: Some(stan),
            amount_minor: Some(100 * stan),
            currency: Some(156),
            card: Some("622848*********0019".into()),
            response: Some("00".into()),
            rrn: Some(format!("{stan:012}")),
            auth_code: Some("123456".into()),
            answer: Some(vec![0x02, 0x10, stan as u8]),
            request_mac: Some("0011223344556677".into()),
            ..JournalEntry::default()
        };
        store
            .journal(vec![entry(1, 1, "10000001"), entry(2, 1, "10000001")])
            .await
            .unwrap();
        // Many rows at once (PostgreSQL splits them into statements).
        let many: Vec<_> = (3..2_503).map(|stan| entry(stan, 2, "10000001")).collect();
        store.journal(many).await.unwrap();
        store.journal(vec![entry(1, 1, "10000002")]).await.unwrap();
        store.journal(Vec::new()).await.unwrap();

        let batch = store.journal_of("10000001", 1, None).await.unwrap();
        assert_eq!(
            batch,
            vec![entry(1, 1, "10000001"), entry(2, 1, "10000001")],
            "{}: every column comes back as written",
            backend.name
        );
        assert_eq!(
            store.journal_of("10000001", 2, None).await.unwrap().len(),
            2_500
        );
        assert_eq!(
            store.journal_of("10000001", 1, Some(2)).await.unwrap(),
            vec![entry(2, 1, "10000001")]
        );
        assert!(
            store
                .journal_of("10000001", 1, Some(3))
                .await
                .unwrap()
                .is_empty()
        );
        // Above the batch's highest trace number a message cannot be in the journal: SQLite
        // says so from memory; PostgreSQL (shared by hosts) always says "look".
        let exclusive = backend.name == "sqlite";
        assert!(store.journal_may_have("10000001", 2, 2_502).await.unwrap());
        assert_eq!(
            store.journal_may_have("10000001", 2, 2_503).await.unwrap(),
            !exclusive
        );
        assert_eq!(
            store.journal_may_have("10000001", 9, 1).await.unwrap(),
            !exclusive,
            "{}: an empty batch",
            backend.name
        );
        // A journal write raises the watermark.
        store
            .journal(vec![entry(2_503, 2, "10000001")])
            .await
            .unwrap();
        assert!(store.journal_may_have("10000001", 2, 2_503).await.unwrap());
        assert_eq!(
            store.journal_may_have("10000001", 2, 2_504).await.unwrap(),
            !exclusive
        );
        let recent = store.journal_recent(2).await.unwrap();
        assert_eq!(
            recent,
            vec![entry(1, 1, "10000002"), entry(2_503, 2, "10000001")],
            "{}: the latest, oldest first",
            backend.name
        );
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_reversals_come_due_until_acknowledged_and_survive_a_restart() {
    use store::saf::{PendingReversal, ReversalAttempt};
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        let reversal = |stan: i64, due: i64| PendingReversal {
            created_at: 1_000,
            terminal_id: "10000001".into(),
            merchant_id: "898310058120001".into(),
            batch: 1,
            stan,
            processing_code: "000000".into(),
            condition_code: "00".into(),
            transaction_type: "22".into(),
            amount_minor: 1_200,
            currency: 156,
            next_attempt_at: due,
            ..PendingReversal::default()
        };
        store.queue_reversal(reversal(7, 2_000)).await.unwrap();
        store.queue_reversal(reversal(8, 3_000)).await.unwrap();
        // The same message queued again (a second timeout) is one reversal.
        store.queue_reversal(reversal(7, 2_500)).await.unwrap();
        assert!(store.due_reversals(1_999, 10).await.unwrap().is_empty());
        let due = store.due_reversals(2_000, 10).await.unwrap();
        assert_eq!(due.len(), 1, "{}", backend.name);
        assert_eq!(
            PendingReversal {
                id: 0,
                ..due[0].clone()
            },
            reversal(7, 2_000),
            "{}: every column comes back",
            backend.name
        );
        // A failed attempt comes due again later; an acknowledged one never again.
        store
            .record_reversal_attempt(ReversalAttempt {
                id: due[0].id,
                response: "96".into(),
                done_at: None,
                next_attempt_at: 4_000,
            })
            .await
            .unwrap();
        let due: Vec<i64> = store
            .due_reversals(3_500, 10)
            .await
            .unwrap()
            .iter()
            .map(|reversal| reversal.stan)
            .collect();
        assert_eq!(due, vec![8]);
        store.close().await.unwrap();

        let store = open(&backend, &clock).await;
        let due = store.due_reversals(5_000, 10).await.unwrap();
        assert_eq!(
            due.iter().map(|reversal| reversal.stan).collect::<Vec<_>>(),
            vec![8, 7],
            "{}: the queue survives a restart, next attempt first",
            backend.name
        );
        assert_eq!(
            (due[1].attempts, due[1].last_response.as_deref()),
            (1, Some("96"))
        );
        for reversal in &due {
            store
                .record_reversal_attempt(ReversalAttempt {
                    id: reversal.id,
                    response: "00".into(),
                    done_at: Some(5_000),
                    next_attempt_at: 5_000,
                })
                .await
                .unwrap();
        }
        assert!(store.due_reversals(i64::MAX, 10).await.unwrap().is_empty());
        let all = store.all_reversals().await.unwrap();
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|reversal| reversal.done_at == Some(5_000)));
        store.close().await.unwrap();
    }
}

/// Batch upload and batch close (issue 12) for terminal 10000002, in batch 1.
async fn batch_close(backend: &TestBackend, store: &Store) {
    use store::batches::{BatchAdvice, BatchClose, BatchDifference, BatchSide};
    let advice = |stan: i64, amount_minor: i64| BatchAdvice {
        terminal_id: "10000002".into(),
        batch: 1,
        stan,
        kind: "Sale".into(),
        amount_minor,
        currency: 156,
        card: Some("621234******0001".into()),
        rrn: Some("000000000001".into()),
        auth_code: None,
        received_at: 1_764_000_000_000_000,
    };
    store.put_batch_advice(advice(2, 100)).await.unwrap();
    store.put_batch_advice(advice(1, 500)).await.unwrap();
    // A repeated advice replaces the earlier one.
    store.put_batch_advice(advice(2, 300)).await.unwrap();
    let advices = store.batch_advices("10000002", 1).await.unwrap();
    assert_eq!(
        advices,
        vec![advice(1, 500), advice(2, 300)],
        "{}",
        backend.name
    );
    assert!(store.batch_advices("10000002", 2).await.unwrap().is_empty());
    store.clear_batch_advices("10000002", 1).await.unwrap();
    assert!(store.batch_advices("10000002", 1).await.unwrap().is_empty());

    let close = BatchClose {
        id: 0,
        terminal_id: "10000002".into(),
        merchant_id: "898310058120001".into(),
        batch: 1,
        closed_at: 1_764_000_000_000_000,
        status: "resolved".into(),
        currency: 156,
        terminal: BatchSide {
            debit_count: 2,
            debit_minor: 800,
            ..BatchSide::default()
        },
        host: BatchSide {
            debit_count: 1,
            debit_minor: 500,
            credit_count: 1,
            credit_minor: 200,
        },
        differences: vec![
            BatchDifference {
                stan: 2,
                difference: "terminal_only".into(),
                terminal_kind: Some("Sale".into()),
                terminal_amount_minor: Some(300),
                host_kind: None,
                host_amount_minor: None,
                card: Some("621234******0001".into()),
            },
            BatchDifference {
                stan: 3,
                difference: "host_only".into(),
                terminal_kind: None,
                terminal_amount_minor: None,
                host_kind: Some("Refund".into()),
                host_amount_minor: Some(200),
                card: None,
            },
        ],
    };
    assert!(
        store.close_batch(close.clone()).await.unwrap(),
        "{}",
        backend.name
    );
    assert_eq!(
        store
            .terminal_session("10000002")
            .await
            .unwrap()
            .unwrap()
            .batch,
        2,
        "{}: the terminal goes on with the next batch",
        backend.name
    );
    // Closing it again changes and records nothing.
    assert!(!store.close_batch(close.clone()).await.unwrap());
    let closes = store
        .batch_closes(1_764_000_000_000_000, 1_764_000_000_000_001)
        .await
        .unwrap();
    assert_eq!(closes.len(), 1, "{}", backend.name);
    assert_eq!(
        BatchClose {
            id: 0,
            ..closes[0].clone()
        },
        close,
        "{}",
        backend.name
    );
    assert!(
        store
            .batch_closes(0, 1_764_000_000_000_000)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Runs `sql` on the database behind the store's back (the store closed), as someone with
/// access to the files or the server would.
async fn behind_our_back(backend: &TestBackend, sql: &str) -> Result<(), String> {
    match &backend.backend {
        store::Backend::Sqlite { path } => rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(sql)
            .map_err(|error| error.to_string()),
        store::Backend::Postgres { url } => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client
                .batch_execute(sql)
                .await
                .map_err(|error| format!("{error:?}"))
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_chains_its_entries_and_verify_finds_tampering() {
    use store::audit::{AuditQuery, GENESIS_HASH, NewAuditEntry};
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = Arc::new(open(&backend, &clock).await);
        let empty = store.verify_audit().await.unwrap();
        assert_eq!((empty.entries, empty.first_break.clone()), (0, None));
        assert_eq!(empty.head_hash, GENESIS_HASH);
        // Concurrent appends still make one chain without gaps.
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let (action, target) = if i % 2 == 0 {
                    ("freeze.put", format!("terminal:T{i}"))
                } else {
                    ("login.ok", "console".to_owned())
                };
                store
                    .append_audit(
                        NewAuditEntry::new(
                            format!("user{}", i % 3),
                            action,
                            target,
                            "reason",
                            1_764_000_000 + i,
                        )
                        .tenant(format!("merchant:M{}", i % 2)),
                    )
                    .await
                    .unwrap()
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let report = store.verify_audit().await.unwrap();
        assert_eq!(report.first_break, None, "{}", backend.name);
        assert_eq!((report.entries, report.head_seq), (20, 20));
        let all = store.audit_entries(AuditQuery::page(0, 100)).await.unwrap();
        assert_eq!(all.len(), 20);
        assert_eq!(all[0].prev_hash, GENESIS_HASH);
        assert_eq!(report.head_hash, all[19].hash);
        let freezes = store
            .audit_entries(AuditQuery {
                action_prefix: Some("freeze.".into()),
                limit: 100,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(freezes.len(), 10);
        let by_user = store
            .audit_entries(AuditQuery {
                actor: Some("user0".into()),
                target: Some("console".into()),
                limit: 100,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert!(
            by_user
                .iter()
                .all(|e| e.actor == "user0" && e.target == "console")
        );
        assert_eq!(by_user.len(), 3, "logins 3, 9, 15");
        let of_merchant = store
            .audit_entries(AuditQuery {
                tenants: Some(vec!["merchant:M0".into(), "merchant:M9".into()]),
                limit: 100,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(of_merchant.len(), 10);
        let of_nobody = store
            .audit_entries(AuditQuery {
                tenants: Some(Vec::new()),
                limit: 100,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert!(of_nobody.is_empty());
        let page = store.audit_entries(AuditQuery::page(15, 3)).await.unwrap();
        assert_eq!(
            page.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![16, 17, 18]
        );
        Arc::try_unwrap(store).unwrap().close().await.unwrap();

        // The database refuses edits while its triggers stand.
        let refused = behind_our_back(&backend, "UPDATE audit_log SET detail = 'x' WHERE seq = 4")
            .await
            .unwrap_err();
        assert!(
            refused.contains("append-only"),
            "{}: {refused}",
            backend.name
        );
        assert!(
            behind_our_back(&backend, "DELETE FROM audit_log WHERE seq = 4")
                .await
                .is_err()
        );

        // Someone who drops the triggers and edits a row is still caught, at that row.
        let drop_triggers = match backend.name {
            "sqlite" => "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;",
            _ => "DROP TRIGGER audit_log_append_only ON audit_log;",
        };
        behind_our_back(&backend, drop_triggers).await.unwrap();
        behind_our_back(
            &backend,
            "UPDATE audit_log SET actor = 'nobody' WHERE seq = 7",
        )
        .await
        .unwrap();
        let store = open(&backend, &clock).await;
        let report = store.verify_audit().await.unwrap();
        let found = report.first_break.clone().unwrap();
        assert_eq!((found.seq, report.entries), (7, 6), "{}", backend.name);
        assert!(found.problem.contains("changed"), "{}", found.problem);
        store.close().await.unwrap();

        // A deleted row (the changed one put back first) shows as the gap where it was.
        behind_our_back(
            &backend,
            &format!(
                "UPDATE audit_log SET actor = '{}' WHERE seq = 7; DELETE FROM audit_log WHERE seq = 12",
                all[6].actor
            ),
        )
        .await
        .unwrap();
        let store = open(&backend, &clock).await;
        let report = store.verify_audit().await.unwrap();
        let found = report.first_break.unwrap();
        assert_eq!((found.seq, report.entries), (12, 11), "{}", backend.name);
        assert!(found.problem.contains("missing"), "{}", found.problem);
        store.close().await.unwrap();

        // An entry inserted with the right sequence number but without the chain's hash.
        behind_our_back(
            &backend,
            "DELETE FROM audit_log WHERE seq > 11; INSERT INTO audit_log (seq, at, actor, action, target, detail, tenant, prev_hash, hash) VALUES (12, 0, 'mallory', 'freeze.delete', 'terminal:T0', '', '', 'x', 'y')",
        )
        .await
        .unwrap();
        let store = open(&backend, &clock).await;
        let found = store.verify_audit().await.unwrap().first_break.unwrap();
        assert_eq!(found.seq, 12, "{}", backend.name);
        assert!(found.problem.contains("inserted"), "{}", found.problem);
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cases_open_once_per_key_and_are_assigned_commented_and_resolved_once() {
    use store::cases::{CaseQuery, NewCase};
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        let flagged = |at: i64, card: &str| NewCase {
            at,
            merchant_id: "M1".into(),
            terminal_id: "T1".into(),
            card_id: card.into(),
            rules: format!("card-velocity(review,10): seen at {at}"),
            severity: "review".into(),
            rule_names: vec!["card-velocity".into()],
        };
        let first = store.open_case(flagged(100, "card-1")).await.unwrap();
        let again = store.open_case(flagged(200, "card-1")).await.unwrap();
        assert_eq!(first, again, "{}: one open case per key", backend.name);
        let other = store.open_case(flagged(300, "card-2")).await.unwrap();
        assert_ne!(first, other);
        let (case, comments) = store.case(first).await.unwrap().unwrap();
        assert_eq!((case.hits, case.opened_at, case.last_at), (2, 100, 200));
        assert_eq!(case.rules, "card-velocity(review,10): seen at 200");
        assert_eq!((case.status.as_str(), comments.len()), ("open", 0));

        assert!(store.assign_case(first, "analyst").await.unwrap());
        assert!(
            store
                .comment_case(first, "analyst", "called the merchant", 250)
                .await
                .unwrap()
        );
        assert!(
            store
                .comment_case(first, "ops", "card blocked", 260)
                .await
                .unwrap()
        );
        assert!(!store.comment_case(999, "ops", "x", 260).await.unwrap());
        assert!(
            store
                .resolve_case(first, "block_card", "ops", 270)
                .await
                .unwrap()
        );
        assert!(
            !store
                .resolve_case(first, "no_action", "ops", 280)
                .await
                .unwrap(),
            "once"
        );
        assert!(!store.assign_case(first, "late").await.unwrap());
        let (case, comments) = store.case(first).await.unwrap().unwrap();
        assert_eq!(
            (
                case.status.as_str(),
                case.outcome.as_str(),
                case.resolved_at
            ),
            ("resolved", "block_card", Some(270))
        );
        assert_eq!(case.assignee, "analyst");
        let texts: Vec<_> = comments.iter().map(|c| (c.seq, c.text.as_str())).collect();
        assert_eq!(texts, vec![(1, "called the merchant"), (2, "card blocked")]);

        // Resolved, the key opens a new case.
        let reopened = store.open_case(flagged(400, "card-1")).await.unwrap();
        assert_ne!(reopened, first);
        let open = store
            .cases(CaseQuery {
                status: Some("open".into()),
                limit: 10,
                ..CaseQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(
            open.iter().map(|c| c.id).collect::<Vec<_>>(),
            vec![reopened, other]
        );
        let none = store
            .cases(CaseQuery {
                merchants: Some(vec!["M2".into()]),
                limit: 10,
                ..CaseQuery::default()
            })
            .await
            .unwrap();
        assert!(none.is_empty());
        assert_eq!(store.case(12345).await.unwrap(), None);
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_anchors_catch_a_cut_tail_and_forged_anchors() {
    use ed25519_dalek::Signer as _;
    use store::audit::NewAuditEntry;
    use store::audit_anchors::{AuditAnchor, AuditAnchorKey};
    // The platform's key, as the HSM would hold it; the store only ever sees its public half
    // (and a token it cannot open).
    let platform = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let key = AuditAnchorKey {
        key_id: "0a0b0c0d".into(),
        token: "S0 under the LMK".into(),
        public_key: hex::encode(platform.verifying_key().to_bytes()),
        created_at: 1_764_000_000,
    };
    let sign = |signer: &ed25519_dalek::SigningKey, seq: i64, hash: &str, key_id: &str| {
        let mut anchor = AuditAnchor {
            seq,
            hash: hash.to_owned(),
            at: 1_764_000_100 + seq,
            key_id: key_id.to_owned(),
            signature: String::new(),
        };
        anchor.signature = hex::encode(signer.sign(&anchor.signed_text()).to_bytes());
        anchor
    };
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        assert_eq!(store.audit_head().await.unwrap(), None);
        let mut hashes = Vec::new();
        for i in 0..10 {
            let entry = store
                .append_audit(NewAuditEntry::new(
                    "ops",
                    "freeze.put",
                    format!("terminal:T{i}"),
                    "r",
                    1_764_000_000 + i,
                ))
                .await
                .unwrap();
            hashes.push(entry.hash);
        }
        assert_eq!(
            store.audit_head().await.unwrap(),
            Some((10, hashes[9].clone()))
        );
        assert!(store.add_audit_anchor_key(key.clone()).await.unwrap());
        assert!(
            !store.add_audit_anchor_key(key.clone()).await.unwrap(),
            "stored once"
        );
        assert_eq!(store.audit_anchor_keys().await.unwrap(), vec![key.clone()]);
        assert!(
            store
                .append_audit_anchor(sign(&platform, 5, &hashes[4], &key.key_id))
                .await
                .unwrap()
        );
        assert!(
            store
                .append_audit_anchor(sign(&platform, 8, &hashes[7], &key.key_id))
                .await
                .unwrap()
        );
        assert!(
            !store
                .append_audit_anchor(sign(&platform, 8, &hashes[7], &key.key_id))
                .await
                .unwrap(),
            "one anchor per entry"
        );
        assert_eq!(store.audit_anchors().await.unwrap().len(), 2);
        assert_eq!(store.last_audit_anchor().await.unwrap().unwrap().seq, 8);
        let report = store.verify_audit().await.unwrap();
        assert_eq!(report.first_break, None, "{}", backend.name);
        assert_eq!(
            (report.anchors, report.anchored_seq, report.entries),
            (2, 8, 10)
        );
        store.close().await.unwrap();

        // Cutting the tail after the last anchor is caught, even though the chain left is intact.
        let drop_triggers = match backend.name {
            "sqlite" => "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;",
            _ => "DROP TRIGGER audit_log_append_only ON audit_log;",
        };
        behind_our_back(&backend, drop_triggers).await.unwrap();
        assert!(
            behind_our_back(&backend, "DELETE FROM audit_anchors WHERE seq = 8")
                .await
                .unwrap_err()
                .contains("append-only"),
            "anchors refuse deletes"
        );
        behind_our_back(&backend, "DELETE FROM audit_log WHERE seq > 6")
            .await
            .unwrap();
        let store = open(&backend, &clock).await;
        let report = store.verify_audit().await.unwrap();
        let found = report.first_break.clone().unwrap();
        assert_eq!(
            (found.seq, report.entries, report.anchors),
            (7, 6, 1),
            "{}",
            backend.name
        );
        assert!(
            found.problem.contains("entries 7 to 8 are missing"),
            "{}",
            found.problem
        );
        assert!(
            found.problem.contains("cut after entry 6"),
            "{}",
            found.problem
        );
        // Without the anchor, the shorter chain alone would pass: the anchor is what tells.
        let mut walker = store::audit::ChainWalker::default();
        for entry in store
            .audit_entries(store::audit::AuditQuery::page(0, 100))
            .await
            .unwrap()
        {
            walker.check(&entry).unwrap();
        }
        assert_eq!(walker.finish(None).first_break, None);

        // A forged anchor: signed by another key under the platform's key id, or under a key id
        // the platform never had.
        let mallory = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        store
            .append_audit_anchor(sign(&mallory, 3, &hashes[2], &key.key_id))
            .await
            .unwrap();
        let found = store.verify_audit().await.unwrap().first_break.unwrap();
        assert_eq!(found.seq, 3, "{}", backend.name);
        assert!(
            found.problem.contains("does not carry a valid signature"),
            "{}",
            found.problem
        );
        store
            .append_audit_anchor(sign(&mallory, 2, &hashes[1], "ffffffff"))
            .await
            .unwrap();
        let found = store.verify_audit().await.unwrap().first_break.unwrap();
        assert_eq!(found.seq, 2);
        assert!(
            found
                .problem
                .contains("not one of the platform's anchor keys"),
            "{}",
            found.problem
        );
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn risk_rule_versions_are_saved_in_order_and_a_stale_save_is_refused() {
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        assert_eq!(store.current_risk_rules().await.unwrap(), None);
        let save = |based_on: i64, text: &str, note: &str| {
            store.save_risk_rules(
                based_on,
                text.into(),
                "ops".into(),
                1_764_000_000 + based_on,
                note.into(),
            )
        };
        let first = save(0, "# v1", "first").await.unwrap().unwrap();
        assert_eq!(first.version, 1);
        assert_eq!(save(1, "# v2", "second").await.unwrap().unwrap().version, 2);
        // An editor who started from version 1 does not overwrite version 2.
        assert_eq!(
            save(1, "# stale", "late").await.unwrap(),
            None,
            "{}",
            backend.name
        );
        let current = store.current_risk_rules().await.unwrap().unwrap();
        assert_eq!((current.version, current.toml.as_str()), (2, "# v2"));
        assert_eq!(store.risk_rule_version(1).await.unwrap(), Some(first));
        assert_eq!(store.risk_rule_version(9).await.unwrap(), None);
        let listed: Vec<i64> = store
            .risk_rule_versions(10)
            .await
            .unwrap()
            .iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(listed, [2, 1]);
        store.close().await.unwrap();
        assert!(
            behind_our_back(
                &backend,
                "UPDATE risk_rule_versions SET toml = 'x' WHERE version = 1"
            )
            .await
            .unwrap_err()
            .contains("append-only")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_journal_keeps_the_operator_and_is_read_in_order_after_an_id() {
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        assert_eq!(store.journal_last_id().await.unwrap(), 0);
        let row = |stan: i64, operator: Option<&str>| store::journal::JournalEntry {
            received_at: 1_764_000_000_000_000 + stan,
            terminal_id: "T1".into(),
            merchant_id: "M1".into(),
            kind: "Refund".into(),
            stan: Some(stan),
            operator: operator.map(str::to_owned),
            ..Default::default()
        };
        store
            .journal(vec![row(1, Some("001")), row(2, None), row(3, Some("002"))])
            .await
            .unwrap();
        let last = store.journal_last_id().await.unwrap();
        let all = store.journal_after(0, 10).await.unwrap();
        assert_eq!(all.len(), 3, "{}", backend.name);
        assert_eq!(all[2].0, last);
        let operators: Vec<_> = all.iter().map(|(_, e)| e.operator.clone()).collect();
        assert_eq!(
            operators,
            [Some("001".to_owned()), None, Some("002".to_owned())]
        );
        let after_first = store.journal_after(all[0].0, 1).await.unwrap();
        assert_eq!((after_first.len(), after_first[0].1.stan), (1, Some(2)));
        assert!(store.journal_after(last, 10).await.unwrap().is_empty());
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn transfers_touching_accounts_are_read_by_time_range() {
    for backend in backends().await {
        let name = backend.name;
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        // Transfer 1 (funding Alice) at START.
        funded(&store).await;
        clock.advance(10 * SECOND);
        let results = store
            .submit(vec![
                TransferRequest::posted(TransferId(2), ALICE, BOB, cny(100)),
                TransferRequest::posted(TransferId(3), FUNDING, BOB, cny(50)),
            ])
            .await
            .unwrap();
        assert!(results.iter().all(Result::is_ok));
        clock.advance(10 * SECOND);
        let results = store
            .submit(vec![TransferRequest::posted(
                TransferId(4),
                ALICE,
                BOB,
                cny(7),
            )])
            .await
            .unwrap();
        assert!(results[0].is_ok());
        let ids = |transfers: Vec<ledger::Transfer>| {
            transfers
                .iter()
                .map(|transfer| transfer.id().0)
                .collect::<Vec<_>>()
        };
        let window = |from: u64, to: u64, accounts: Vec<AccountId>, limit| {
            let store = &store;
            async move {
                ids(store
                    .transfers_touching(accounts, from, to, limit)
                    .await
                    .unwrap())
            }
        };
        // Alice's transfers (debit or credit), everything.
        assert_eq!(
            window(0, u64::MAX, vec![ALICE], 10).await,
            vec![1, 2, 4],
            "{name}"
        );
        // The middle ten seconds: transfers 2 and 3 touch Bob; only 2 touches Alice.
        let (from, to) = (START + 5 * SECOND, START + 15 * SECOND);
        assert_eq!(window(from, to, vec![BOB], 10).await, vec![2, 3], "{name}");
        assert_eq!(window(from, to, vec![ALICE], 10).await, vec![2], "{name}");
        assert_eq!(window(from, to, vec![FUNDING, ALICE], 10).await, vec![2, 3]);
        // The end is exclusive, and the limit holds.
        let second = store.transfer(TransferId(2)).await.unwrap().unwrap();
        assert_eq!(
            window(from, second.timestamp, vec![BOB], 10).await,
            Vec::<u128>::new()
        );
        assert_eq!(window(0, u64::MAX, vec![BOB], 2).await.len(), 2);
        assert!(window(0, u64::MAX, Vec::new(), 10).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn procedures_are_versioned_and_each_acknowledgement_is_recorded_once() {
    use store::accounts::{NewUser, Role, Tenant};
    use store::procedures::ProcedureVersion;
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        let merchant = Tenant::Merchant("M1".into());
        let users: Vec<NewUser> = ["ann", "bob"]
            .iter()
            .map(|name| {
                NewUser::new(
                    name,
                    name,
                    name,
                    Role::Cashier,
                    merchant.clone(),
                    "a long test passphrase",
                    0,
                )
                .unwrap()
            })
            .collect();
        store.put_users(users).await.unwrap();
        assert_eq!(store.current_procedures("M1").await.unwrap(), None);
        assert!(
            !store.procedures_unacknowledged("M1", "ann").await.unwrap(),
            "nothing to acknowledge before the merchant writes procedures"
        );
        let version = |n: i64, text: &str| ProcedureVersion {
            merchant_id: "M1".into(),
            version: n,
            text: text.into(),
            saved_by: "admin".into(),
            saved_at: 1_764_000_000 + n,
            note: format!("v{n}"),
        };
        assert!(
            store
                .save_procedures(&version(1, "count the till"))
                .await
                .unwrap()
        );
        assert!(
            !store
                .save_procedures(&version(1, "overwritten?"))
                .await
                .unwrap(),
            "{}: a version is never overwritten",
            backend.name
        );
        assert!(store.procedures_unacknowledged("M1", "ann").await.unwrap());
        assert!(
            store
                .acknowledge_procedures("M1", 1, "ann", 100)
                .await
                .unwrap()
        );
        assert!(
            !store
                .acknowledge_procedures("M1", 1, "ann", 200)
                .await
                .unwrap(),
            "the first acknowledgement stands"
        );
        assert!(!store.procedures_unacknowledged("M1", "ann").await.unwrap());
        assert!(store.procedures_unacknowledged("M1", "bob").await.unwrap());
        // A new version asks everyone again; the record keeps what each acknowledged.
        assert!(
            store
                .save_procedures(&version(2, "count it twice"))
                .await
                .unwrap()
        );
        assert!(store.procedures_unacknowledged("M1", "ann").await.unwrap());
        assert!(
            store
                .acknowledge_procedures("M1", 2, "bob", 300)
                .await
                .unwrap()
        );
        let record = store.procedure_acknowledgements("M1").await.unwrap();
        let record: Vec<_> = record
            .iter()
            .map(|a| (a.user_id.as_str(), a.version, a.acknowledged_at))
            .collect();
        assert_eq!(
            record,
            [("ann", 1, 100), ("bob", 2, 300)],
            "{}",
            backend.name
        );
        assert!(
            store
                .procedure_acknowledgements("M2")
                .await
                .unwrap()
                .is_empty()
        );
        let current = store.current_procedures("M1").await.unwrap().unwrap();
        assert_eq!(
            (current.version, current.text.as_str()),
            (2, "count it twice")
        );
        let listed: Vec<i64> = store
            .procedure_versions("M1", 10)
            .await
            .unwrap()
            .iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(listed, [2, 1]);
        store.close().await.unwrap();
        for sql in [
            "UPDATE procedure_versions SET text = 'x' WHERE version = 1",
            "DELETE FROM procedure_acknowledgements WHERE user_id = 'ann'",
        ] {
            assert!(
                behind_our_back(&backend, sql)
                    .await
                    .unwrap_err()
                    .contains("append-only"),
                "{}: {sql}",
                backend.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_created_with_a_temporary_password_must_change_it_first() {
    use store::accounts::{NewUser, Role, Tenant};
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        let user = |id: &str, name: &str| {
            NewUser::new(
                id,
                name,
                name,
                Role::Cashier,
                Tenant::Merchant("M1".into()),
                "a temporary passphrase",
                0,
            )
            .unwrap()
        };
        assert!(
            store
                .create_user_with_temporary_password(&user("u1", "ann"), "admin", 10)
                .await
                .unwrap()
        );
        assert_eq!(
            store.password_reset_reason("u1").await.unwrap().as_deref(),
            Some(store::password_resets::FIRST_LOGIN_REASON),
            "{}",
            backend.name
        );
        // A taken name writes nothing: no user, no reset.
        assert!(
            !store
                .create_user_with_temporary_password(&user("u2", "ann"), "admin", 11)
                .await
                .unwrap()
        );
        assert_eq!(store.user("u2").await.unwrap(), None);
        assert!(!store.password_reset_required("u2").await.unwrap());
        let hash = store::accounts::hash_password("ann's own passphrase").unwrap();
        assert!(store.change_password("u1", &hash).await.unwrap());
        assert_eq!(store.password_reset_reason("u1").await.unwrap(), None);
        let found = store.user("u1").await.unwrap().unwrap();
        assert_eq!(found.username, "ann");
        assert!(!found.totp_enabled);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_supervisors_usual_terminals_are_kept_newest_first_and_bounded() {
    use store::supervisor_terminals::{MAX_TERMINALS_PER_SUPERVISOR, SupervisorTerminal};
    for backend in backends().await {
        let clock = Arc::new(ManualClock::new(START));
        let store = open(&backend, &clock).await;
        let used = |operator: &str, terminal: String, at: i64| SupervisorTerminal {
            merchant_id: "M1".into(),
            operator_no: operator.into(),
            terminal_id: terminal,
            last_used_at: at,
        };
        // Supervisor 099 at 20 terminals, one after the other; 098 at one.
        for i in 0..20 {
            store
                .remember_supervisor_terminal(&used("099", format!("T{i:02}"), 100 + i))
                .await
                .unwrap();
        }
        store
            .remember_supervisor_terminal(&used("098", "T00".into(), 50))
            .await
            .unwrap();
        // Used again: its time moves, it is not kept twice.
        store
            .remember_supervisor_terminal(&used("099", "T10".into(), 500))
            .await
            .unwrap();
        let kept = store.supervisor_terminals().await.unwrap();
        let of_099: Vec<&str> = kept
            .iter()
            .filter(|t| t.operator_no == "099")
            .map(|t| t.terminal_id.as_str())
            .collect();
        assert_eq!(
            of_099.len() as i64,
            MAX_TERMINALS_PER_SUPERVISOR,
            "{}",
            backend.name
        );
        assert_eq!(
            of_099.first(),
            Some(&"T04"),
            "the oldest four were forgotten"
        );
        assert_eq!(of_099.last(), Some(&"T10"), "oldest use first");
        assert_eq!(kept[0].operator_no, "098");
        assert_eq!(kept.len(), 17);
    }
}
