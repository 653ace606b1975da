#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `easypos audit` as an operator runs it: `verify` reports an intact chain with exit 0, and
//! after someone edits a row behind easypos's back (dropping the append-only triggers first)
//! reports the changed entry with exit 1, in text and JSON; `list` filters entries.

mod common;

use common::{run, temp_dir};
use std::path::Path;

/// The demo world and five audited actions in `dir/easypos-data`, as `easypos up` and its
/// console would leave them.
fn seed_with_actions(dir: &Path) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = store::Store::open(&store::Backend::Sqlite {
            path: dir.join("easypos-data").join("easypos.db"),
        })
        .await
        .unwrap();
        for (i, (action, target)) in [
            ("login.password", "console"),
            ("freeze.put", "terminal:10000001"),
            ("freeze.delete", "terminal:10000001"),
            ("api_key.create", "api_key:ek_1"),
            ("logout", "console"),
        ]
        .into_iter()
        .enumerate()
        {
            store
                .append_audit(store::audit::NewAuditEntry::new(
                    "shanghai.admin",
                    action,
                    target,
                    "",
                    1_764_000_000 + i as i64,
                ))
                .await
                .unwrap();
        }
        store.close().await.unwrap();
    });
}

#[test]
fn verify_reports_an_intact_chain_and_then_the_changed_entry() {
    let dir = temp_dir("audit", "verify");
    seed_with_actions(&dir);

    let intact = run(&dir, &["audit", "verify", "--json"]);
    assert_eq!(intact.code, 0, "{}{}", intact.stdout, intact.stderr);
    assert_eq!(intact.json["entries"], 5);
    assert_eq!(intact.json["first_break"], serde_json::Value::Null);
    let text = run(&dir, &["audit", "verify"]);
    assert!(
        text.stdout.starts_with("audit log intact: 5 entries"),
        "{}",
        text.stdout
    );

    let listed = run(&dir, &["audit", "list", "--action", "freeze.", "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let actions: Vec<_> = listed
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(actions, ["freeze.put", "freeze.delete"]);
    let bad = run(&dir, &["audit", "list", "--limit", "0"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("--limit must be"), "{}", bad.stderr);

    // Someone with the database file hides that the terminal was thawed.
    let database = rusqlite::Connection::open(dir.join("easypos-data").join("easypos.db")).unwrap();
    assert!(
        database
            .execute(
                "UPDATE audit_log SET action = 'login.password' WHERE seq = 3",
                []
            )
            .is_err(),
        "the triggers refuse edits"
    );
    database
        .execute_batch(
            "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET target = 'console', action = 'login.password' WHERE seq = 3",
        )
        .unwrap();
    drop(database);

    let broken = run(&dir, &["audit", "verify", "--json"]);
    assert_eq!(broken.code, 1, "{}{}", broken.stdout, broken.stderr);
    assert_eq!(broken.json["first_break"]["seq"], 3);
    assert_eq!(broken.json["entries"], 2);
    let text = run(&dir, &["audit", "verify"]);
    assert_eq!(text.code, 1);
    assert!(text.stdout.contains("BROKEN at entry 3"), "{}", text.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_anchor_catches_entries_cut_off_the_end() {
    let dir = temp_dir("audit", "anchor");
    seed_with_actions(&dir);

    let anchored = run(&dir, &["audit", "anchor", "--json"]);
    assert_eq!(anchored.code, 0, "{}{}", anchored.stdout, anchored.stderr);
    assert_eq!(anchored.json["seq"], 5);
    assert_eq!(anchored.json["signature"].as_str().unwrap().len(), 128);
    let intact = run(&dir, &["audit", "verify"]);
    assert_eq!(intact.code, 0, "{}{}", intact.stdout, intact.stderr);
    assert!(
        intact
            .stdout
            .contains("1 signed anchors hold, up to entry 5"),
        "{}",
        intact.stdout
    );

    // Someone with the database file removes the last two entries: the chain left is intact,
    // but the anchor vouched for entry 5.
    let database = rusqlite::Connection::open(dir.join("easypos-data").join("easypos.db")).unwrap();
    database
        .execute_batch("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq > 3")
        .unwrap();
    drop(database);
    let cut = run(&dir, &["audit", "verify", "--json"]);
    assert_eq!(cut.code, 1, "{}{}", cut.stdout, cut.stderr);
    assert_eq!(cut.json["first_break"]["seq"], 4);
    assert_eq!(cut.json["entries"], 3);
    let text = run(&dir, &["audit", "verify"]);
    assert!(
        text.stdout.contains("entries 4 to 5 are missing"),
        "{}",
        text.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn verify_export_checks_an_export_offline_and_catches_a_changed_or_missing_entry() {
    let dir = temp_dir("audit", "export");
    seed_with_actions(&dir);
    // An export as the console's Audit log page makes it: Shanghai's admin, the freezes only.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let document = runtime.block_on(async {
        let store = std::sync::Arc::new(
            store::Store::open(&store::Backend::Sqlite {
                path: dir.join("easypos-data").join("easypos.db"),
            })
            .await
            .unwrap(),
        );
        let hsm: std::sync::Arc<dyn hsm::Hsm> =
            std::sync::Arc::new(hsm::SoftHsm::new(&[0x42; 32]).unwrap());
        let state = api::ApiState::new(store.clone()).with_anchors(std::sync::Arc::new(
            api::audit_anchors::AuditAnchorer::new(store.clone(), hsm),
        ));
        // Shanghai's admin froze and thawed a terminal of theirs (the seeded entries belong to
        // no merchant, so the admin's export leaves them out).
        for (action, at) in [
            ("freeze.put", 1_764_000_100),
            ("freeze.delete", 1_764_000_200),
        ] {
            store
                .append_audit(
                    store::audit::NewAuditEntry::new("m1.admin", action, "terminal:T1", "lost", at)
                        .tenant("merchant:M1"),
                )
                .await
                .unwrap();
        }
        store
            .put_users(vec![
                store::accounts::NewUser::new(
                    "u-m1-admin",
                    "m1.admin",
                    "M1 admin",
                    store::accounts::Role::MerchantAdmin,
                    store::accounts::Tenant::Merchant("M1".into()),
                    "a long test passphrase",
                    0,
                )
                .unwrap(),
            ])
            .await
            .unwrap();
        let admin = store.user_by_username("m1.admin").await.unwrap().unwrap();
        let document = api::audit::export(
            &state,
            &api::access::Principal { user: admin },
            api::audit::ExportQuery {
                action: Some("freeze.".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        drop(state);
        std::sync::Arc::try_unwrap(store)
            .unwrap()
            .close()
            .await
            .unwrap();
        document
    });
    let file = dir.join("export.json");
    let write = |document: &serde_json::Value| {
        std::fs::write(&file, serde_json::to_vec_pretty(document).unwrap()).unwrap();
    };
    let original = serde_json::to_value(&document).unwrap();
    assert_eq!(original["entries"].as_array().unwrap().len(), 2);
    write(&original);
    let file_arg = file.to_str().unwrap();
    let intact = run(&dir, &["audit", "verify", "--export", file_arg]);
    assert_eq!(intact.code, 0, "{}{}", intact.stdout, intact.stderr);
    assert!(
        intact.stdout.starts_with("export intact: 2 entries"),
        "{}",
        intact.stdout
    );
    let key = document.keys[0].public_key.clone();
    let pinned = run(
        &dir,
        &["audit", "verify", "--export", file_arg, "--key", &key],
    );
    assert_eq!(pinned.code, 0, "{}", pinned.stdout);

    // Someone edits the reason of the freeze in the file.
    let mut changed = original.clone();
    changed["entries"][0]["detail"] = "routine".into();
    write(&changed);
    let broken = run(&dir, &["audit", "verify", "--export", file_arg, "--json"]);
    assert_eq!(broken.code, 1, "{}{}", broken.stdout, broken.stderr);
    assert_eq!(
        broken.json["problem"],
        "entry 6 was changed: its contents no longer give its hash"
    );
    // Or drops the thaw from it.
    let mut cut = original.clone();
    cut["entries"].as_array_mut().unwrap().pop();
    write(&cut);
    let text = run(&dir, &["audit", "verify", "--export", file_arg]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout
            .starts_with("export BROKEN: the export's signature does not hold"),
        "{}",
        text.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}
