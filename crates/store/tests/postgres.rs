#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Several easypos processes on one PostgreSQL: each `Store` here has its own connections and
//! writer, exactly as separate processes would. Decisions must stay exact across them.

mod common;

use ledger::*;
use money::{Amount, Currency};
use std::sync::Arc;
use store::Store;

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
