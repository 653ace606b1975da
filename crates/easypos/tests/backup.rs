#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `easypos backup` and `easypos restore` as an operator runs them: a backup taken while the
//! platform is selling, restored into a fresh directory (or an empty PostgreSQL database) and
//! verified — rows per table, books, audit chain, keys — and then run; and every refusal that
//! keeps a restore from damaging or half-writing anything.

mod common;

use common::{Run, run, sell, start, start_with, temp_dir};

fn ok(result: &Run) {
    assert_eq!(result.code, 0, "{}{}", result.stdout, result.stderr);
}

fn refused(result: &Run, says: &str) {
    assert_ne!(result.code, 0, "{}", result.stdout);
    assert!(result.stderr.contains(says), "{}", result.stderr);
}

#[test]
fn a_backup_taken_while_selling_restores_into_a_fresh_directory_and_runs() {
    let old = temp_dir("backup", "sqlite-old");
    let mut running = start(&old);
    sell(&old, running.terminals);
    // An applicant's uploaded document lives beside the database.
    let document = old.join("easypos-data/documents/APP-1/licence.pdf");
    std::fs::create_dir_all(document.parent().unwrap()).unwrap();
    std::fs::write(&document, b"%PDF-1.4 licence").unwrap();
    // Online: the platform keeps running while the backup is taken.
    let backup = run(&old, &["backup", "--out", "backup-1", "--json"]);
    ok(&backup);
    let manifest = &backup.json;
    assert_eq!(manifest["format"], "easypos-backup/1");
    assert_eq!(manifest["backend"], "sqlite");
    assert_eq!(manifest["file"], "easypos.db");
    assert!(manifest["summary"]["tables"]["journal"].as_i64().unwrap() >= 1);
    assert!(
        manifest["summary"]["tables"]["ledger_transfers"]
            .as_i64()
            .unwrap()
            >= 1
    );
    assert!(old.join("backup-1/manifest.json").is_file());
    assert_eq!(manifest["files"][0]["path"], "documents/APP-1/licence.pdf");
    // A second backup into the same directory is refused: backups never overwrite.
    refused(&run(&old, &["backup", "--out", "backup-1"]), "not empty");
    running.stop();

    // A fresh machine: only the backup and the master key (kept apart by its custodians).
    let new = temp_dir("backup", "sqlite-new");
    let backup_dir = old.join("backup-1");
    let from = backup_dir.to_str().unwrap();
    refused(
        &run(&new, &["restore", "--from", from]),
        "put the master key with check value",
    );
    std::fs::create_dir_all(new.join("easypos-data")).unwrap();
    std::fs::write(new.join("easypos-data/hsm-lmk.key"), "00".repeat(32)).unwrap();
    let wrong_key = run(&new, &["restore", "--from", from]);
    refused(&wrong_key, "this backup's keys are wrapped under the key");
    assert!(
        !new.join("easypos-data/easypos.db").exists(),
        "a refused restore writes nothing"
    );
    std::fs::copy(
        old.join("easypos-data/hsm-lmk.key"),
        new.join("easypos-data/hsm-lmk.key"),
    )
    .unwrap();
    let restored = run(&new, &["restore", "--from", from, "--json"]);
    ok(&restored);
    let report = &restored.json;
    assert_eq!(report["backend"], "sqlite");
    assert_eq!(report["books_balance"], true);
    assert_eq!(report["audit_chain_intact"], true);
    assert!(report["keys_unwrapped"].as_u64().unwrap() > 0);
    let rows: i64 = manifest["summary"]["tables"]
        .as_object()
        .unwrap()
        .values()
        .map(|rows| rows.as_i64().unwrap())
        .sum();
    assert_eq!(report["rows"], rows);
    assert_eq!(report["files_restored"], 1);
    assert_eq!(
        std::fs::read(new.join("easypos-data/documents/APP-1/licence.pdf")).unwrap(),
        b"%PDF-1.4 licence"
    );
    // Restoring over what is now there is refused, and leaves it alone.
    refused(
        &run(&new, &["restore", "--from", from]),
        "restore only writes into an empty data directory",
    );

    // The restored platform starts and sells with the restored keys, to the same cards
    // (their files, with their ATCs, come along).
    std::fs::create_dir_all(new.join("cards")).unwrap();
    for card in std::fs::read_dir(old.join("cards")).unwrap() {
        let card = card.unwrap();
        std::fs::copy(card.path(), new.join("cards").join(card.file_name())).unwrap();
    }
    let mut again = start_with(
        &new,
        &["up", "--http", "127.0.0.1:0", "--iso8583", "127.0.0.1:0"],
    );
    sell(&new, again.terminals);
    again.stop();
    let audit = run(&new, &["audit", "verify", "--json"]);
    ok(&audit);
}

#[test]
fn a_damaged_or_foreign_backup_is_refused_before_anything_is_written() {
    let old = temp_dir("backup", "damaged-old");
    let mut running = start(&old);
    running.stop();
    let document = old.join("easypos-data/documents/APP-2/id-front.png");
    std::fs::create_dir_all(document.parent().unwrap()).unwrap();
    std::fs::write(&document, b"\x89PNG id").unwrap();
    ok(&run(&old, &["backup", "--out", "good"]));
    let new = temp_dir("backup", "damaged-new");
    std::fs::create_dir_all(new.join("easypos-data")).unwrap();
    std::fs::copy(
        old.join("easypos-data/hsm-lmk.key"),
        new.join("easypos-data/hsm-lmk.key"),
    )
    .unwrap();

    // One byte of the database changed.
    let damaged = old.join("damaged");
    std::fs::create_dir_all(&damaged).unwrap();
    for file in ["manifest.json", "easypos.db"] {
        std::fs::copy(old.join("good").join(file), damaged.join(file)).unwrap();
    }
    let mut bytes = std::fs::read(damaged.join("easypos.db")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(damaged.join("easypos.db"), bytes).unwrap();
    refused(
        &run(&new, &["restore", "--from", damaged.to_str().unwrap()]),
        "does not match its manifest",
    );

    // A document changed inside the backup.
    let tampered = old.join("tampered");
    std::fs::create_dir_all(tampered.join("documents/APP-2")).unwrap();
    for file in ["manifest.json", "easypos.db"] {
        std::fs::copy(old.join("good").join(file), tampered.join(file)).unwrap();
    }
    std::fs::write(
        tampered.join("documents/APP-2/id-front.png"),
        b"\x89PNG forged",
    )
    .unwrap();
    refused(
        &run(&new, &["restore", "--from", tampered.to_str().unwrap()]),
        "id-front.png does not match its manifest",
    );
    assert!(
        !new.join("easypos-data/.documents.restoring").exists(),
        "the staged documents are removed"
    );

    // A backup from a newer easypos.
    let future = old.join("future");
    std::fs::create_dir_all(&future).unwrap();
    std::fs::copy(old.join("good/easypos.db"), future.join("easypos.db")).unwrap();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(old.join("good/manifest.json")).unwrap()).unwrap();
    manifest["summary"]["schema_version"] = 999.into();
    std::fs::write(
        future.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    refused(
        &run(&new, &["restore", "--from", future.to_str().unwrap()]),
        "newer than this easypos understands",
    );

    // No manifest: an unfinished backup.
    refused(
        &run(&new, &["restore", "--from", old.to_str().unwrap()]),
        "did not finish",
    );
    assert!(
        !new.join("easypos-data/easypos.db").exists(),
        "nothing was restored"
    );
}

#[test]
fn postgres_backups_restore_into_an_empty_database_only() {
    let Some(url) = store::testing::postgres_url() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (source, target) = runtime.block_on(async {
        (
            store::testing::postgres(&url).await,
            store::testing::postgres(&url).await,
        )
    });
    let url_of = |backend: &store::testing::TestBackend| match &backend.backend {
        store::Backend::Postgres { url } => url.clone(),
        store::Backend::Sqlite { .. } => unreachable!(),
    };
    let (source_url, target_url) = (url_of(&source), url_of(&target));

    let old = temp_dir("backup", "pg-old");
    let mut running = start_with(
        &old,
        &[
            "--database-url",
            &source_url,
            "up",
            "--http",
            "127.0.0.1:0",
            "--iso8583",
            "127.0.0.1:0",
        ],
    );
    sell(&old, running.terminals);
    let backup = run(
        &old,
        &[
            "--database-url",
            &source_url,
            "backup",
            "--out",
            "pg",
            "--json",
        ],
    );
    ok(&backup);
    running.stop();
    assert_eq!(backup.json["backend"], "postgres");
    assert_eq!(backup.json["file"], "easypos.pgdump");
    assert!(
        backup.json["summary"]["tables"]["journal"]
            .as_i64()
            .unwrap()
            >= 1
    );

    // The source has tables: restoring into it is refused and changes nothing.
    let from = old.join("pg");
    let from = from.to_str().unwrap();
    refused(
        &run(
            &old,
            &["--database-url", &source_url, "restore", "--from", from],
        ),
        "restore only writes into an empty database",
    );
    // A SQLite configuration cannot take a PostgreSQL backup.
    refused(
        &run(&old, &["restore", "--from", from]),
        "restore into the same kind of database",
    );
    let restored = run(
        &old,
        &[
            "--database-url",
            &target_url,
            "restore",
            "--from",
            from,
            "--json",
        ],
    );
    ok(&restored);
    assert_eq!(restored.json["backend"], "postgres");
    assert_eq!(restored.json["books_balance"], true);
    assert_eq!(restored.json["audit_chain_intact"], true);
    assert!(restored.json["keys_unwrapped"].as_u64().unwrap() > 0);
    drop((source, target));
}
