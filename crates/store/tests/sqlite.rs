#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What only the SQLite backend has: its durability settings, its single-process lock, and
//! refusing a file that is not a database.

mod common;

use store::{Backend, Store, StoreError};

#[tokio::test]
async fn durability_settings_are_what_we_promise() {
    let backend = common::sqlite();
    let store = Store::open(&backend.backend).await.unwrap();
    let Backend::Sqlite { path } = &backend.backend else {
        unreachable!()
    };
    let connection = rusqlite::Connection::open(path).unwrap();
    let mode: String = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_second_process_on_the_same_file_is_refused() {
    let backend = common::sqlite();
    let first = Store::open(&backend.backend).await.unwrap();
    let error = Store::open(&backend.backend).await.unwrap_err();
    assert!(matches!(error, StoreError::Config(_)), "{error}");
    assert!(
        error
            .to_string()
            .contains("in use by another easypos process"),
        "{error}"
    );
    first.close().await.unwrap();
    // Once the first is closed, the file may be opened again.
    Store::open(&backend.backend)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_with_a_reason() {
    let dir = common::tempdir::TempDir::new();
    let path = dir.path().join("easypos.db");
    std::fs::write(&path, vec![0x5A_u8; 8_192]).unwrap();
    let error = Store::open(&Backend::Sqlite { path: path.clone() })
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error}");
    assert!(
        error.to_string().contains("not a valid SQLite database"),
        "{error}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        vec![0x5A_u8; 8_192],
        "the damaged file is left as it was"
    );
}
