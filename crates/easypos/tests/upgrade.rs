#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Upgrades from every earlier schema version to the current one, with data, on both backends
//! (docs/operations.md).
//!
//! The data is real: `easypos up` seeds the demo world at the current schema, sells once, and
//! a few back-office actions go into the audit log. For each earlier version V, a database is
//! built with migrations 1..=V only and loaded with that data — every column the table has at
//! V, every row the schema at V accepts (a row it would refuse, such as an AES DUKPT terminal
//! before version 8 knew the scheme, could not have existed then). What was loaded is kept
//! aside; then the store opens the database, which applies the remaining migrations, checks
//! the books and (here) the audit chain; and every table must still hold exactly the rows it
//! held at V, column for column. A migration that loses, changes or duplicates data fails
//! here, for every version it could meet.

mod common;

use common::{run, sell, temp_dir};
use std::path::{Path, PathBuf};
use store::migrate::{self, MIGRATIONS_TABLE, Migration};
use store::{Backend, Store};

const SEED_ACTIONS: [(&str, &str); 3] = [
    ("login.password", "console"),
    ("freeze.put", "terminal:10000002"),
    ("freeze.delete", "terminal:10000002"),
];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The demo world, one sale and audited actions, by `easypos up` in `dir` on the given
/// backend arguments (`--database-url …` for PostgreSQL, none for SQLite).
fn seed(dir: &Path, backend_args: &[&str], backend: &Backend) {
    let mut args = backend_args.to_vec();
    args.extend(["up", "--http", "127.0.0.1:0", "--iso8583", "127.0.0.1:0"]);
    let mut running = common::start_with(dir, &args);
    sell(dir, running.terminals);
    running.stop();
    runtime().block_on(async {
        let store = Store::open(backend).await.unwrap();
        for (i, (action, target)) in SEED_ACTIONS.into_iter().enumerate() {
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

/// Opens (so migrates) the store and checks the books and the audit chain.
fn upgrade(backend: &Backend, version: u32) {
    runtime().block_on(async {
        let store = Store::open(backend)
            .await
            .unwrap_or_else(|error| panic!("upgrading from version {version}: {error}"));
        store.check_books().await.unwrap();
        let audit = store.verify_audit().await.unwrap();
        assert!(
            audit.first_break.is_none(),
            "from version {version}: {audit:?}"
        );
        assert_eq!(
            store.schema_version().await.unwrap(),
            migrate::latest(migrate::sqlite_migrations())
        );
        store.close().await.unwrap();
    });
}

fn quoted(columns: &[String]) -> String {
    columns
        .iter()
        .map(|column| format!("\"{column}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn sqlite_columns(connection: &rusqlite::Connection, schema: &str, table: &str) -> Vec<String> {
    let mut statement = connection
        .prepare(&format!("PRAGMA {schema}.table_info(\"{table}\")"))
        .unwrap();
    statement
        .query_map([], |row| row.get::<_, String>(1))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn sqlite_tables(connection: &rusqlite::Connection, schema: &str) -> Vec<String> {
    let mut statement = connection
        .prepare(&format!(
            "SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY name"
        ))
        .unwrap();
    statement
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A SQLite database at `version` holding the seeded rows its schema accepts, and a copy of
/// exactly what it holds (`before`).
fn sqlite_at(version: u32, seeded: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let path = dir.join(format!("v{version}.db"));
    let before = dir.join(format!("v{version}-before.db"));
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection.execute_batch(MIGRATIONS_TABLE).unwrap();
    for migration in &migrate::sqlite_migrations()[..version as usize] {
        connection.execute_batch(migration.sql).unwrap();
        connection
            .execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, 0)",
                rusqlite::params![migration.version, migration.name],
            )
            .unwrap();
    }
    // Foreign keys are not checked while loading (the rows come from a consistent database).
    connection
        .execute_batch("PRAGMA foreign_keys = OFF")
        .unwrap();
    connection
        .execute("ATTACH DATABASE ?1 AS seeded", [seeded.to_str().unwrap()])
        .unwrap();
    let seeded_tables = sqlite_tables(&connection, "seeded");
    for table in sqlite_tables(&connection, "main") {
        if !seeded_tables.contains(&table) {
            continue;
        }
        let columns = quoted(&sqlite_columns(&connection, "main", &table));
        connection
            .execute(
                &format!(
                    "INSERT OR IGNORE INTO main.\"{table}\" ({columns}) SELECT {columns} FROM seeded.\"{table}\""
                ),
                [],
            )
            .unwrap_or_else(|error| panic!("loading {table} at version {version}: {error}"));
    }
    connection.execute("DETACH DATABASE seeded", []).unwrap();
    connection
        .execute("VACUUM INTO ?1", [before.to_str().unwrap()])
        .unwrap();
    (path, before)
}

/// Every table of `before` holds the same rows (on its columns) in the upgraded database;
/// returns the number of rows compared.
fn sqlite_compare(version: u32, path: &Path, before: &Path) -> i64 {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .execute("ATTACH DATABASE ?1 AS before", [before.to_str().unwrap()])
        .unwrap();
    let mut compared = 0;
    for table in sqlite_tables(&connection, "before") {
        // A migration may rename a column (its data is then the migration's to keep, and its
        // own test's): the columns both schemas have are compared, the rows always.
        let now = sqlite_columns(&connection, "main", &table);
        let shared: Vec<String> = sqlite_columns(&connection, "before", &table)
            .into_iter()
            .filter(|column| now.contains(column))
            .collect();
        let columns = quoted(&shared);
        let count = |sql: String| -> i64 {
            connection
                .query_row(&sql, [], |row| row.get(0))
                .unwrap_or_else(|error| panic!("{table} after upgrading from {version}: {error}"))
        };
        let had = count(format!("SELECT count(*) FROM before.\"{table}\""));
        let has = count(format!("SELECT count(*) FROM main.\"{table}\""));
        let lost = count(format!(
            "SELECT count(*) FROM (SELECT {columns} FROM before.\"{table}\" EXCEPT SELECT {columns} FROM main.\"{table}\")"
        ));
        assert_eq!(
            (has, lost),
            (had, 0),
            "table {table} after upgrading from version {version}: {has} rows (had {had}), {lost} changed or lost"
        );
        compared += had;
    }
    compared
}

#[test]
fn sqlite_databases_upgrade_from_every_earlier_version_with_their_data() {
    let dir = temp_dir("upgrade", "sqlite");
    let seeded = dir.join("easypos-data/easypos.db");
    seed(
        &dir,
        &[],
        &Backend::Sqlite {
            path: seeded.clone(),
        },
    );
    let latest = migrate::latest(migrate::sqlite_migrations());
    for version in 1..latest {
        let (path, before) = sqlite_at(version, &seeded, &dir);
        upgrade(&Backend::Sqlite { path: path.clone() }, version);
        let compared = sqlite_compare(version, &path, &before);
        assert!(
            compared > 0,
            "version {version} carried data through the upgrade"
        );
        if version == latest - 1 {
            // The last version before this build carries nearly everything.
            let connection = rusqlite::Connection::open(&path).unwrap();
            let count = |table: &str| -> i64 {
                connection
                    .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                        row.get(0)
                    })
                    .unwrap()
            };
            assert!(
                compared > 50 && count("ledger_transfers") > 0 && count("journal") > 0,
                "{compared} rows"
            );
        }
    }
}

#[test]
fn a_database_newer_than_the_binary_is_refused_with_a_message() {
    let dir = temp_dir("upgrade", "downgrade");
    let path = dir.join("easypos-data/easypos.db");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection.execute_batch(MIGRATIONS_TABLE).unwrap();
    connection
        .execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'from the future', 0)",
            [],
        )
        .unwrap();
    drop(connection);
    let refused = run(&dir, &["migrate"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused
            .stderr
            .contains("the database has schema version 999, newer than this easypos understands"),
        "{}",
        refused.stderr
    );
    let up = common::easypos(&dir)
        .args(["up", "--http", "127.0.0.1:0", "--iso8583", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!up.status.success());
    assert!(
        String::from_utf8_lossy(&up.stderr).contains("run a newer easypos or restore a backup")
    );
    // Nothing was written into it.
    let connection = rusqlite::Connection::open(&path).unwrap();
    let tables: i64 = connection
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1);
}

async fn pg_connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

async fn pg_tables(client: &tokio_postgres::Client, schema: &str) -> Vec<String> {
    client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 AND tablename <> 'schema_migrations' ORDER BY 1",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn pg_columns(client: &tokio_postgres::Client, schema: &str, table: &str) -> Vec<String> {
    client
        .query(
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            &[&schema, &table],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// In a copy of the seeded database: the seeded schema moved aside, migrations 1..=V applied
/// in a fresh `public`, the rows the schema at V accepts loaded, and what was loaded copied
/// into schema `before`.
async fn postgres_at(version: u32, url: &str) {
    let client = pg_connect(url).await;
    client
        .batch_execute(
            "ALTER SCHEMA public RENAME TO seeded; CREATE SCHEMA public; SET search_path = public",
        )
        .await
        .unwrap();
    client.batch_execute(MIGRATIONS_TABLE).await.unwrap();
    let migrations: &[Migration] = &migrate::postgres_migrations()[..version as usize];
    for migration in migrations {
        client.batch_execute(migration.sql).await.unwrap();
        client
            .execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, 0)",
                &[&(migration.version as i32), &migration.name],
            )
            .await
            .unwrap();
    }
    // Foreign keys are not checked while loading (the rows come from a consistent database);
    // each row the older schema refuses is skipped on its own.
    client
        .batch_execute("SET session_replication_role = replica; CREATE SCHEMA before")
        .await
        .unwrap();
    let seeded_tables = pg_tables(&client, "seeded").await;
    for table in pg_tables(&client, "public").await {
        if !seeded_tables.contains(&table) {
            continue;
        }
        let columns = quoted(&pg_columns(&client, "public", &table).await);
        client
            .batch_execute(&format!(
                "DO $load$ DECLARE r record; BEGIN
                   FOR r IN SELECT ctid AS c FROM seeded.\"{table}\" LOOP
                     BEGIN
                       INSERT INTO public.\"{table}\" ({columns}) OVERRIDING SYSTEM VALUE SELECT {columns} FROM seeded.\"{table}\" WHERE ctid = r.c;
                     EXCEPTION WHEN check_violation OR not_null_violation OR unique_violation THEN NULL;
                     END;
                   END LOOP;
                 END $load$;
                 CREATE TABLE before.\"{table}\" AS SELECT * FROM public.\"{table}\";"
            ))
            .await
            .unwrap_or_else(|error| panic!("loading {table} at version {version}: {error:?}"));
    }
    client
        .batch_execute("DROP SCHEMA seeded CASCADE; SET session_replication_role = origin")
        .await
        .unwrap();
}

async fn postgres_compare(version: u32, url: &str) -> i64 {
    let client = pg_connect(url).await;
    let mut compared = 0;
    for table in pg_tables(&client, "before").await {
        let now = pg_columns(&client, "public", &table).await;
        let shared: Vec<String> = pg_columns(&client, "before", &table)
            .await
            .into_iter()
            .filter(|column| now.contains(column))
            .collect();
        let columns = quoted(&shared);
        let count = |sql: String| {
            let client = &client;
            async move {
                client
                    .query_one(&sql, &[])
                    .await
                    .unwrap_or_else(|error| panic!("after upgrading from {version}: {error}"))
                    .get::<_, i64>(0)
            }
        };
        let had = count(format!("SELECT count(*) FROM before.\"{table}\"")).await;
        let has = count(format!("SELECT count(*) FROM public.\"{table}\"")).await;
        let lost = count(format!(
            "SELECT count(*) FROM (SELECT {columns} FROM before.\"{table}\" EXCEPT SELECT {columns} FROM public.\"{table}\") changed"
        ))
        .await;
        assert_eq!(
            (has, lost),
            (had, 0),
            "table {table} after upgrading from version {version}: {has} rows (had {had}), {lost} changed or lost"
        );
        compared += had;
    }
    compared
}

#[test]
fn postgres_databases_upgrade_from_every_earlier_version_with_their_data() {
    let Some(admin) = store::testing::postgres_url() else {
        return;
    };
    let runtime = runtime();
    let seeded = runtime.block_on(store::testing::postgres(&admin));
    let Backend::Postgres { url: seeded_url } = seeded.backend.clone() else {
        unreachable!()
    };
    let dir = temp_dir("upgrade", "postgres");
    seed(&dir, &["--database-url", &seeded_url], &seeded.backend);
    let seeded_name = seeded_url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let latest = migrate::latest(migrate::postgres_migrations());
    let admin_client = runtime.block_on(pg_connect(&admin));
    for version in 1..latest {
        let name = format!("{seeded_name}_v{version}");
        let url = store::testing::with_database(&admin, &name);
        runtime.block_on(async {
            admin_client
                .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {seeded_name}"))
                .await
                .unwrap();
            postgres_at(version, &url).await;
        });
        upgrade(&Backend::Postgres { url: url.clone() }, version);
        let compared = runtime.block_on(postgres_compare(version, &url));
        assert!(
            compared > 0,
            "version {version} carried data through the upgrade"
        );
        runtime.block_on(async {
            admin_client
                .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .await
                .unwrap();
        });
    }
    drop(seeded);
}
