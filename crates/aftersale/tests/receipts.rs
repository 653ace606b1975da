#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Receipt signing and verification against a real store and the software HSM.

use aftersale::receipt::{self, Statement};
use aftersale::{ReceiptKeys, Rejection};
use hsm::{Hsm, SoftHsm};
use std::sync::Arc;

const NOW: i64 = 1_764_000_000;

fn statement() -> Statement {
    Statement {
        rrn: "000000012345".into(),
        terminal_id: "10000001".into(),
        merchant_id: "898310058120001".into(),
        card: "621234******0003".into(),
        amount_minor: 1234,
        currency: "CNY".into(),
        time: NOW,
        auth_code: "654321".into(),
        key_id: String::new(),
    }
}

struct Test {
    _backend: store::testing::TestBackend,
    store: Arc<store::Store>,
}

async fn keys() -> (Test, Arc<dyn Hsm>, ReceiptKeys) {
    let backend = store::testing::sqlite();
    let store = Arc::new(store::Store::open(&backend.backend).await.unwrap());
    let hsm: Arc<dyn Hsm> = Arc::new(SoftHsm::new(&[0x42; 32]).unwrap());
    let keys = ReceiptKeys::load(store.clone(), hsm.clone(), NOW)
        .await
        .unwrap();
    (
        Test {
            _backend: backend,
            store,
        },
        hsm,
        keys,
    )
}

#[tokio::test]
async fn a_signed_receipt_verifies_and_every_one_byte_change_is_rejected() {
    let (_test, _hsm, keys) = keys().await;
    let payload = keys.sign(statement()).unwrap();
    let verified = keys.verify(&payload).await.unwrap();
    let mut expected = statement();
    expected.key_id = keys.public_keys()[0].key_id.clone();
    assert_eq!(verified.statement, expected);
    assert_eq!(verified.key_retired_at, None);

    // Every single-byte change is refused: malformed, or a signature that does not match.
    let bytes = payload.as_bytes();
    for index in 0..bytes.len() {
        let mut altered = bytes.to_vec();
        altered[index] = if bytes[index] == b'1' { b'2' } else { b'1' };
        let altered = String::from_utf8(altered).unwrap();
        let rejection = keys.verify(&altered).await.unwrap_err();
        assert!(
            matches!(
                rejection,
                Rejection::Malformed(_) | Rejection::BadSignature | Rejection::UnknownKey(_)
            ),
            "byte {index}: {rejection}"
        );
    }
    // A larger amount, re-spelled canonically, keeps the form but not the signature.
    let richer = payload.replacen("|1234|", "|9234|", 1);
    assert_eq!(
        keys.verify(&richer).await.unwrap_err(),
        Rejection::BadSignature
    );
}

#[tokio::test]
async fn a_receipt_signed_by_another_key_is_forged() {
    let (_test, _hsm, keys) = keys().await;
    // Someone else's key, with our key id written in: the signature does not match.
    let (_other_test, _other_hsm, other) = self::keys().await;
    let mut ours = statement();
    ours.key_id = keys.public_keys()[0].key_id.clone();
    let forged = other.sign(statement()).unwrap();
    let parsed = receipt::parse(&forged).unwrap();
    let relabelled = ours.payload(&parsed.signature);
    assert_eq!(
        keys.verify(&relabelled).await.unwrap_err(),
        Rejection::BadSignature
    );
    // With its own key id, the key is not ours.
    assert!(matches!(
        keys.verify(&forged).await.unwrap_err(),
        Rejection::UnknownKey(_)
    ));
}

#[tokio::test]
async fn a_rotated_out_key_still_verifies_its_receipts_and_survives_a_restart() {
    let (test, hsm, keys) = keys().await;
    let old = keys.sign(statement()).unwrap();
    let old_key = keys.public_keys()[0].clone();
    let new_key = keys.rotate(NOW + 60).await.unwrap();
    assert_ne!(new_key.key_id, old_key.key_id);
    let new = keys.sign(statement()).unwrap();
    assert!(new.contains(&format!("|{}|", new_key.key_id)));

    let verified = keys.verify(&old).await.unwrap();
    assert_eq!(verified.key_retired_at, Some(NOW + 60));
    assert_eq!(keys.verify(&new).await.unwrap().key_retired_at, None);

    // Another process (or a restart) loads the same keys, and signs with the new one.
    let again = ReceiptKeys::load(test.store.clone(), hsm, NOW + 120)
        .await
        .unwrap();
    assert_eq!(again.public_keys().len(), 2);
    assert!(again.verify(&old).await.is_ok());
    assert!(again.sign(statement()).unwrap().contains(&new_key.key_id));
    // A key rotated elsewhere is found when a receipt names it.
    let newer = again.rotate(NOW + 180).await.unwrap();
    let from_elsewhere = again.sign(statement()).unwrap();
    assert!(from_elsewhere.contains(&newer.key_id));
    assert!(keys.verify(&from_elsewhere).await.is_ok());
}

fn statements(count: usize) -> Vec<Statement> {
    (0..count)
        .map(|index| Statement {
            rrn: format!("{:012}", 20_000 + index),
            ..statement()
        })
        .collect()
}

#[tokio::test]
async fn a_batch_shares_one_signature_and_each_receipt_verifies_alone() {
    let (_test, _hsm, keys) = keys().await;
    let payloads: Vec<String> = keys
        .sign_batch(statements(receipt::MAX_BATCH))
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let signature = |payload: &str| payload.rsplit('|').next().unwrap().to_owned();
    for (index, payload) in payloads.iter().enumerate() {
        assert!(payload.starts_with("EPR2|"), "{payload}");
        assert_eq!(signature(payload), signature(&payloads[0]));
        let verified = keys.verify(payload).await.unwrap();
        assert_eq!(verified.statement.rrn, format!("{:012}", 20_000 + index));
    }
    // Every single-byte change of a batched receipt is refused.
    let bytes = payloads[5].as_bytes();
    for index in 0..bytes.len() {
        let mut altered = bytes.to_vec();
        altered[index] = if bytes[index] == b'1' { b'2' } else { b'1' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(keys.verify(&altered).await.is_err(), "byte {index}");
    }
    // One receipt's proof does not carry another's statement to the root.
    let fields = |payload: &str| {
        payload
            .split('|')
            .map(str::to_owned)
            .collect::<Vec<String>>()
    };
    let mut swapped = fields(&payloads[5]);
    swapped[10] = fields(&payloads[6])[10].clone();
    assert_eq!(
        keys.verify(&swapped.join("|")).await.unwrap_err(),
        Rejection::BadSignature
    );
    // A batch of one is signed as a version 1 receipt; a malformed statement fails alone.
    let single = keys.sign_batch(statements(1)).pop().unwrap().unwrap();
    assert!(single.starts_with("EPR1|"));
    let mut mixed = statements(3);
    mixed[1].amount_minor = 0;
    let results = keys.sign_batch(mixed);
    assert!(results[1].is_err());
    assert!(keys.verify(results[0].as_ref().unwrap()).await.is_ok());
    assert!(keys.verify(results[2].as_ref().unwrap()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_released_together_are_signed_in_batches() {
    let (_test, _hsm, keys) = keys().await;
    let batcher = Arc::new(aftersale::ReceiptBatcher::new(Arc::new(keys)));
    // Released at once, as a group commit releases its approvals.
    let start = Arc::new(tokio::sync::Barrier::new(64));
    let tasks: Vec<_> = statements(64)
        .into_iter()
        .map(|statement| {
            let (batcher, start) = (batcher.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                batcher.sign(statement).await
            })
        })
        .collect();
    let mut signatures = std::collections::BTreeSet::new();
    for task in tasks {
        let payload = task.await.unwrap().unwrap();
        assert!(batcher.keys().verify(&payload).await.is_ok(), "{payload}");
        signatures.insert(payload.rsplit('|').next().unwrap().to_owned());
    }
    // At most 16 receipts a signature, and fewer signatures than receipts.
    assert!(signatures.len() >= 64 / receipt::MAX_BATCH);
    assert!(signatures.len() < 64, "{} signatures", signatures.len());
    let stats = batcher.stats();
    assert_eq!(stats.statements, 64);
    assert_eq!(stats.signatures, signatures.len() as u64);
    // Alone, a receipt is signed at once, in the short form.
    let alone = batcher.sign(statements(1).pop().unwrap()).await.unwrap();
    assert!(alone.starts_with("EPR1|"));
}

// One thread: the signing task cannot run between the drop and the count, so only a task that
// holds the keys weakly passes.
#[tokio::test]
async fn a_dropped_batcher_lets_go_of_the_keys_at_once() {
    // At shutdown `easypos up` drops the host, then closes the store, which the keys hold: the
    // signing task must not keep them alive until it next runs.
    let (_test, _hsm, keys) = keys().await;
    let keys = Arc::new(keys);
    let batcher = aftersale::ReceiptBatcher::new(keys.clone());
    assert!(batcher.sign(statement()).await.is_ok());
    drop(batcher);
    assert_eq!(Arc::strong_count(&keys), 1);
}
