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
