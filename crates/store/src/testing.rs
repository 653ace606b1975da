//! Test support for anything that stores (the conformance suite here, and the crates above): a fresh SQLite file per test, and — when
//! `EASYPOS_TEST_DATABASE_URL` names a PostgreSQL server — a fresh database per test on it.
//! With `CI=true` and no URL the suite fails instead of silently skipping PostgreSQL.
// Test support: a setup failure should stop the test at once, so it panics with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::Backend;
use std::sync::atomic::{AtomicU32, Ordering};

pub const DATABASE_URL_VARIABLE: &str = "EASYPOS_TEST_DATABASE_URL";

/// A backend that cleans up after itself: the temporary directory or the database is removed
/// when the test ends.
#[allow(missing_debug_implementations)]
pub struct TestBackend {
    pub name: &'static str,
    pub backend: Backend,
    _dir: Option<tempdir::TempDir>,
    drop_database: Option<(String, String)>,
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        if let Some((admin_url, database)) = self.drop_database.take() {
            // Dropping needs a runtime of its own: the test's may be gone already.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    if let Ok((client, connection)) =
                        tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await
                    {
                        tokio::spawn(connection);
                        let _ = client
                            .execute(
                                &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
                                &[],
                            )
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

pub fn postgres_url() -> Option<String> {
    match std::env::var(DATABASE_URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{DATABASE_URL_VARIABLE} is not set but CI=true: the PostgreSQL half of the conformance suite must run in CI"
            );
            eprintln!("note: {DATABASE_URL_VARIABLE} is not set; running the SQLite half only");
            None
        }
    }
}

pub fn sqlite() -> TestBackend {
    let dir = tempdir::TempDir::new();
    let backend = Backend::Sqlite {
        path: dir.path().join("easypos.db"),
    };
    TestBackend {
        name: "sqlite",
        backend,
        _dir: Some(dir),
        drop_database: None,
    }
}

/// Replaces the database name of a `postgres://…/name?…` URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |index| index + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |index| scheme_end + index);
    format!("{}/{database}{query}", &base[..host_end])
}

pub async fn postgres(url: &str) -> TestBackend {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let database = format!(
        "easypos_test_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    tokio::spawn(connection);
    client
        .execute(&format!("CREATE DATABASE {database}"), &[])
        .await
        .expect("create a test database");
    TestBackend {
        name: "postgres",
        backend: Backend::Postgres {
            url: with_database(url, &database),
        },
        _dir: None,
        drop_database: Some((url.to_owned(), database)),
    }
}

/// Every backend available to this run.
pub async fn backends() -> Vec<TestBackend> {
    let mut all = vec![sqlite()];
    if let Some(url) = postgres_url() {
        all.push(postgres(&url).await);
    }
    all
}

/// A minimal temporary directory (no dependency needed for this much).
pub mod tempdir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug)]
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> Self {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "easypos-test-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Default for TempDir {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The smallest directory with a card: one debit bank `issuer`, one cardholder (`CH1`) and
/// one CNY debit card (`card-1`) on `account`, without a fingerprint.
pub fn one_card_directory(
    issuer: ledger::InstitutionId,
    account: ledger::AccountId,
) -> crate::directory::Directory {
    use crate::directory::*;
    Directory {
        institutions: vec![Institution {
            id: issuer,
            kind: InstitutionKind::DebitBank,
            name: "Demo Bank".into(),
            name_zh: "演示银行".into(),
        }],
        cardholders: vec![Cardholder {
            id: "CH1".into(),
            name: "Li Lei".into(),
            name_zh: "李雷".into(),
        }],
        cards: vec![Card {
            id: "card-1".into(),
            cardholder_id: "CH1".into(),
            issuer,
            product: CardProduct::Debit,
            pan_first6: "621234".into(),
            pan_last4: "0018".into(),
            expiry: "3012".into(),
            currency: money::Currency::CNY,
            account,
            pan_fingerprint: None,
        }],
        ..Directory::default()
    }
}
