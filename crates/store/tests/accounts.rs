#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Accounts, API keys, idempotency records, referrals and the transaction read (issue 7), on
//! every backend.

mod common;

use common::backends;
use ledger::InstitutionId;
use store::Store;
use store::accounts::*;
use store::directory::{Directory, Institution, InstitutionKind, Merchant};
use store::journal::JournalEntry;

const NOW: i64 = 1_764_000_000;
const PASSWORD: &str = "a long enough password";

fn user(id: &str, role: Role, tenant: Tenant) -> NewUser {
    NewUser::new(id, id, &format!("User {id}"), role, tenant, PASSWORD, NOW).unwrap()
}

async fn merchants(store: &Store) {
    let merchant = |id: &str| Merchant {
        id: id.into(),
        acquirer: InstitutionId(10),
        name: id.into(),
        name_zh: id.into(),
        city: "Shanghai".into(),
        mcc: "5814".into(),
        settlement_account: ledger::AccountId(u128::from(id.as_bytes()[14])),
    };
    store
        .put_directory(Directory {
            institutions: vec![Institution {
                id: InstitutionId(10),
                kind: InstitutionKind::Acquirer,
                name: "Acquirer".into(),
                name_zh: "收单".into(),
            }],
            merchants: vec![merchant("898310058120001"), merchant("898110054110001")],
            ..Directory::default()
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn users_log_in_and_lock_after_ten_failures() {
    for backend in backends().await {
        let store = Store::open(&backend.backend).await.unwrap();
        let alice = user(
            "alice",
            Role::MerchantAdmin,
            Tenant::Merchant("898310058120001".into()),
        );
        assert_eq!(store.put_users(vec![alice.clone()]).await.unwrap(), 1);
        // Seeding twice creates nothing and keeps the first hash.
        assert_eq!(store.put_users(vec![alice]).await.unwrap(), 0);

        let found = store.user_by_username("alice").await.unwrap().unwrap();
        assert_eq!(found.role, Role::MerchantAdmin);
        assert!(found.password_hash.starts_with("$argon2id$"));
        assert!(
            !format!("{found:?}").contains("argon2"),
            "Debug leaves the hash out"
        );

        match store.authenticate("alice", PASSWORD, NOW).await.unwrap() {
            LoginOutcome::Accepted(user) => assert_eq!(user.id, "alice"),
            other => panic!("{}: {other:?}", backend.name),
        }
        assert_eq!(
            store.authenticate("nobody", PASSWORD, NOW).await.unwrap(),
            LoginOutcome::Refused
        );
        for attempt in 1..MAX_LOGIN_FAILURES {
            assert_eq!(
                store
                    .authenticate("alice", "wrong password!", NOW)
                    .await
                    .unwrap(),
                LoginOutcome::Refused,
                "{}: attempt {attempt}",
                backend.name
            );
        }
        let until = NOW + LOCKOUT_SECONDS;
        assert_eq!(
            store
                .authenticate("alice", "wrong password!", NOW)
                .await
                .unwrap(),
            LoginOutcome::Locked { until },
            "{}: the tenth failure locks",
            backend.name
        );
        assert_eq!(
            store
                .authenticate("alice", PASSWORD, NOW + 60)
                .await
                .unwrap(),
            LoginOutcome::Locked { until },
            "the right password does not open a locked account"
        );
        assert!(matches!(
            store.authenticate("alice", PASSWORD, until).await.unwrap(),
            LoginOutcome::Accepted(_)
        ));
        let after = store.user("alice").await.unwrap().unwrap();
        assert_eq!((after.failed_logins, after.locked_until), (0, None));

        let bob = user(
            "bob",
            Role::Cashier,
            Tenant::Merchant("898310058120001".into()),
        );
        let carol = user(
            "carol",
            Role::Cardholder,
            Tenant::Cardholder("CH001".into()),
        );
        store.put_users(vec![bob, carol]).await.unwrap();
        let staff = store
            .users_of(&Tenant::Merchant("898310058120001".into()))
            .await
            .unwrap();
        assert_eq!(
            staff
                .iter()
                .map(|user| user.id.as_str())
                .collect::<Vec<_>>(),
            ["alice", "bob"]
        );
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_are_stored_hashed_and_can_be_revoked() {
    for backend in backends().await {
        let store = Store::open(&backend.backend).await.unwrap();
        store
            .put_users(vec![user(
                "dev",
                Role::PlatformOperator,
                Tenant::Institution(InstitutionId(10)),
            )])
            .await
            .unwrap();
        let (issued, digest) = new_api_key("dev", "reporting", NOW);
        store.put_api_key(issued.key.clone(), digest).await.unwrap();
        let found = store.api_key_user(&issued.secret).await.unwrap().unwrap();
        assert_eq!(found.id, "dev");
        // Same id, another secret: refused.
        let forged = format!("{}_{}", issued.key.id, "0".repeat(64));
        assert_eq!(store.api_key_user(&forged).await.unwrap(), None);
        assert_eq!(
            store.api_keys_of("dev").await.unwrap(),
            vec![issued.key.clone()]
        );
        assert!(
            !store
                .revoke_api_key("someone-else", &issued.key.id, NOW)
                .await
                .unwrap()
        );
        assert!(
            store
                .revoke_api_key("dev", &issued.key.id, NOW)
                .await
                .unwrap()
        );
        assert_eq!(store.api_key_user(&issued.secret).await.unwrap(), None);
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_keys_replay_refuse_and_expire() {
    for backend in backends().await {
        let store = Store::open(&backend.backend).await.unwrap();
        let body = request_digest("POST", "/api/v1/api-keys", b"{}");
        let other = request_digest("POST", "/api/v1/api-keys", b"{\"name\":1}");
        assert_eq!(
            store.begin_idempotent("u1", "k1", body, NOW).await.unwrap(),
            IdempotencyState::New
        );
        assert_eq!(
            store.begin_idempotent("u1", "k1", body, NOW).await.unwrap(),
            IdempotencyState::InProgress
        );
        // Another caller's key of the same name is its own.
        assert_eq!(
            store
                .begin_idempotent("u2", "k1", other, NOW)
                .await
                .unwrap(),
            IdempotencyState::New
        );
        store
            .finish_idempotent("u1", "k1", 201, b"answer".to_vec())
            .await
            .unwrap();
        assert_eq!(
            store
                .begin_idempotent("u1", "k1", body, NOW + 1)
                .await
                .unwrap(),
            IdempotencyState::Replay {
                status: 201,
                body: b"answer".to_vec()
            }
        );
        assert_eq!(
            store
                .begin_idempotent("u1", "k1", other, NOW + 1)
                .await
                .unwrap(),
            IdempotencyState::Mismatch
        );
        assert_eq!(
            store
                .begin_idempotent("u1", "k1", other, NOW + IDEMPOTENCY_TTL_SECONDS)
                .await
                .unwrap(),
            IdempotencyState::New,
            "a day later the key is free again"
        );
        store.abandon_idempotent("u1", "k1").await.unwrap();
        assert_eq!(
            store
                .begin_idempotent("u1", "k1", body, NOW + IDEMPOTENCY_TTL_SECONDS)
                .await
                .unwrap(),
            IdempotencyState::New,
            "an abandoned claim can be retried"
        );
        store.close().await.unwrap();
    }
}

fn entry(
    id: i64,
    merchant: &str,
    terminal: &str,
    kind: &str,
    amount: i64,
    card: &str,
    response: Option<&str>,
) -> JournalEntry {
    JournalEntry {
        received_at: id * 1_000_000,
        terminal_id: terminal.into(),
        merchant_id: merchant.into(),
        mti: "0200".into(),
        kind: kind.into(),
        batch: Some(1),
        stan: Some(id),
        amount_minor: Some(amount),
        currency: Some(156),
        card: Some(card.into()),
        response: response.map(Into::into),
        ..JournalEntry::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn transactions_filter_by_scope_and_page_by_cursor() {
    const SH: &str = "898310058120001";
    const BJ: &str = "898110054110001";
    for backend in backends().await {
        let store = Store::open(&backend.backend).await.unwrap();
        merchants(&store).await;
        store
            .put_referrals(vec![Referral {
                partner_id: "P1".into(),
                merchant_id: BJ.into(),
            }])
            .await
            .unwrap();
        assert_eq!(store.referred_merchants("P1").await.unwrap(), [BJ]);
        store
            .journal(vec![
                entry(1, SH, "10000001", "SignOn", 0, "", Some("00")),
                entry(
                    2,
                    SH,
                    "10000001",
                    "Sale",
                    1_000,
                    "622202******1111",
                    Some("00"),
                ),
                entry(
                    3,
                    SH,
                    "10000002",
                    "Sale",
                    2_500,
                    "622202******2222",
                    Some("55"),
                ),
                entry(
                    4,
                    BJ,
                    "20000001",
                    "Sale",
                    9_900,
                    "622202******1111",
                    Some("00"),
                ),
                entry(5, SH, "10000001", "Refund", 500, "622202******1111", None),
            ])
            .await
            .unwrap();
        let read = |filter: TransactionFilter| {
            let store = &store;
            async move {
                store
                    .transactions(&TransactionFilter {
                        limit: 50,
                        ..filter
                    })
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|record| record.stan.unwrap())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            read(TransactionFilter::default()).await,
            [5, 4, 3, 2],
            "{}",
            backend.name
        );
        let sh = Some(vec![SH.to_owned()]);
        assert_eq!(
            read(TransactionFilter {
                merchants: sh.clone(),
                ..Default::default()
            })
            .await,
            [5, 3, 2]
        );
        assert_eq!(
            read(TransactionFilter {
                merchants: Some(vec![]),
                ..Default::default()
            })
            .await,
            Vec::<i64>::new()
        );
        let card = CardPattern::parse("622202******1111");
        assert_eq!(
            read(TransactionFilter {
                cards: card.clone().map(|c| vec![c]),
                ..Default::default()
            })
            .await,
            [5, 4, 2]
        );
        assert_eq!(
            read(TransactionFilter {
                card,
                merchants: sh.clone(),
                ..Default::default()
            })
            .await,
            [5, 2]
        );
        assert_eq!(
            read(TransactionFilter {
                status: Some(TransactionStatus::Declined),
                ..Default::default()
            })
            .await,
            [3]
        );
        assert_eq!(
            read(TransactionFilter {
                status: Some(TransactionStatus::Unanswered),
                ..Default::default()
            })
            .await,
            [5]
        );
        assert_eq!(
            read(TransactionFilter {
                min_amount_minor: Some(1_000),
                max_amount_minor: Some(2_500),
                ..Default::default()
            })
            .await,
            [3, 2]
        );
        assert_eq!(
            read(TransactionFilter {
                from: Some(3_000_000),
                to: Some(5_000_000),
                ..Default::default()
            })
            .await,
            [4, 3]
        );
        assert_eq!(
            read(TransactionFilter {
                terminal_id: Some("10000002".into()),
                ..Default::default()
            })
            .await,
            [3]
        );
        // Pages: two at a time, each after the last id of the page before.
        let first = store
            .transactions(&TransactionFilter {
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            first.iter().map(|r| r.stan).collect::<Vec<_>>(),
            [Some(5), Some(4)]
        );
        let next = store
            .transactions(&TransactionFilter {
                limit: 2,
                before_id: Some(first[1].id),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            next.iter().map(|r| r.stan).collect::<Vec<_>>(),
            [Some(3), Some(2)]
        );
        let one = store
            .transactions(&TransactionFilter {
                id: Some(next[0].id),
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(one, vec![next[0].clone()]);
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn totp_enrolments_confirm_once_and_codes_are_good_once() {
    for backend in backends().await {
        let store = Store::open(&backend.backend).await.unwrap();
        let op = user(
            "ops",
            Role::PlatformOperator,
            Tenant::Institution(InstitutionId(10)),
        );
        store.put_users(vec![op]).await.unwrap();
        assert!(Role::PlatformOperator.requires_mfa() && !Role::Cashier.requires_mfa());
        assert!(
            !store.accept_totp_step("ops", 100).await.unwrap(),
            "no enrolment yet"
        );
        assert!(store.start_totp("ops", "nonce-1").await.unwrap());
        assert!(
            store.start_totp("ops", "nonce-2").await.unwrap(),
            "a pending enrolment may restart"
        );
        let pending = store.user("ops").await.unwrap().unwrap();
        assert_eq!(
            (pending.totp_nonce.as_deref(), pending.totp_enabled),
            (Some("nonce-2"), false)
        );
        assert!(store.accept_totp_step("ops", 100).await.unwrap());
        assert!(
            !store.accept_totp_step("ops", 100).await.unwrap(),
            "{}: a code is good once",
            backend.name
        );
        assert!(
            !store.accept_totp_step("ops", 99).await.unwrap(),
            "nor an older one"
        );
        assert!(store.accept_totp_step("ops", 101).await.unwrap());
        let enabled = store.user("ops").await.unwrap().unwrap();
        assert!(enabled.totp_enabled);
        assert_eq!(enabled.totp_last_step, Some(101));
        assert!(
            !store.start_totp("ops", "nonce-3").await.unwrap(),
            "a confirmed enrolment is kept"
        );
        let failed = store
            .count_login_failure("ops", NOW)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(failed.failed_logins, 1);
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_idempotency_records_are_swept_by_later_claims() {
    for backend in backends().await {
        let store = Store::open(&backend.backend).await.unwrap();
        let digest = request_digest("POST", "/x", b"");
        for index in 0..40 {
            let key = format!("old-{index}");
            store
                .begin_idempotent("u1", &key, digest, NOW)
                .await
                .unwrap();
            store
                .finish_idempotent("u1", &key, 201, Vec::new())
                .await
                .unwrap();
        }
        let later = NOW + IDEMPOTENCY_TTL_SECONDS;
        // Each claim sweeps IDEMPOTENCY_SWEEP_ROWS expired records of anyone's.
        store
            .begin_idempotent("u2", "new-1", digest, later)
            .await
            .unwrap();
        store
            .begin_idempotent("u2", "new-2", digest, later)
            .await
            .unwrap();
        let mut left = 0;
        for index in 0..40 {
            // Still present and not expired at NOW: a replay.
            if let IdempotencyState::Replay { .. } = store
                .begin_idempotent("u1", &format!("old-{index}"), digest, NOW)
                .await
                .unwrap()
            {
                left += 1;
            }
        }
        assert_eq!(left, 40 - 2 * IDEMPOTENCY_SWEEP_ROWS, "{}", backend.name);
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_deliveries_are_queued_once_claimed_once_and_retried_in_their_window() {
    use store::webhooks::*;
    for backend in backends().await {
        let store = Store::open(&backend.backend).await.unwrap();
        let owner = user(
            "integrator",
            Role::ChannelPartner,
            Tenant::Partner("P1".into()),
        );
        store.put_users(vec![owner]).await.unwrap();
        let subscription = Subscription {
            id: "wh_1".into(),
            owner_user_id: "integrator".into(),
            url: "http://127.0.0.1:9/hook".into(),
            secret_nonce: "n".into(),
            created_at: NOW,
            disabled_at: None,
        };
        store.put_subscription(subscription.clone()).await.unwrap();
        assert_eq!(
            store.active_subscriptions().await.unwrap(),
            vec![subscription.clone()]
        );
        let event = |id: &str| NewDelivery {
            subscription_id: "wh_1".into(),
            event_id: id.into(),
            event_type: "transaction.created".into(),
            payload: format!("{{\"id\":\"{id}\"}}"),
            created_at: NOW,
            retry_until: NOW + 100,
        };
        assert_eq!(
            store
                .enqueue_deliveries(vec![event("e1"), event("e2")])
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            store.enqueue_deliveries(vec![event("e1")]).await.unwrap(),
            0,
            "once per event"
        );

        let claimed = store.claim_due_deliveries(NOW, NOW + 30, 10).await.unwrap();
        assert_eq!(claimed.len(), 2, "{}", backend.name);
        assert!(
            store
                .claim_due_deliveries(NOW, NOW + 30, 10)
                .await
                .unwrap()
                .is_empty(),
            "leased"
        );
        let (first, second) = (claimed[0].id, claimed[1].id);
        store
            .record_delivery_attempt(
                first,
                Attempt::Delivered {
                    status: 204,
                    at: NOW,
                },
            )
            .await
            .unwrap();
        store
            .record_delivery_attempt(
                second,
                Attempt::Failed {
                    status: Some(500),
                    error: "HTTP 500".into(),
                    next_at: NOW + 10,
                },
            )
            .await
            .unwrap();
        assert!(
            store
                .claim_due_deliveries(NOW + 9, NOW + 40, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let retry = store
            .claim_due_deliveries(NOW + 10, NOW + 40, 10)
            .await
            .unwrap();
        assert_eq!(retry.iter().map(|d| d.id).collect::<Vec<_>>(), [second]);
        store
            .record_delivery_attempt(
                second,
                Attempt::Failed {
                    status: None,
                    error: "refused".into(),
                    next_at: NOW + 200,
                },
            )
            .await
            .unwrap();
        let log = store.deliveries_of("wh_1", 10).await.unwrap();
        assert_eq!(
            log[0].state,
            DeliveryState::Failed,
            "past its window: failed"
        );
        assert_eq!(log[0].attempts, 2);
        assert_eq!(log[1].state, DeliveryState::Delivered);
        assert!(
            store
                .redeliver("wh_1", second, NOW + 300, 100)
                .await
                .unwrap()
        );
        assert!(
            !store
                .redeliver("wh_other", second, NOW + 300, 100)
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .claim_due_deliveries(NOW + 300, NOW + 330, 10)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(store.disable_subscription("wh_1", NOW).await.unwrap());
        assert!(store.active_subscriptions().await.unwrap().is_empty());
        store.close().await.unwrap();
    }
}
