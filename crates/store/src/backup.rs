//! Online, consistent backups of either backend, and their restore into an empty target
//! (docs/operations.md).
//!
//! - **SQLite**: `VACUUM INTO` on a read-only connection copies one consistent snapshot of the
//!   database while the platform keeps running (WAL readers do not block the writer). The copy
//!   is a complete SQLite file; its summary is read from the copy itself.
//! - **PostgreSQL**: a repeatable-read transaction exports its snapshot; the summary is read in
//!   that transaction and `pg_dump --snapshot` dumps exactly the same state (custom format),
//!   so the summary and the dump agree even while hosts keep writing.
//!
//! A [`Summary`] (schema version, rows per table, the audit chain's head) travels with the
//! backup; after a restore the same summary is read from the target and compared, so a restore
//! that lost a row says so. A restore only ever writes into an empty target: it never merges
//! into, or overwrites, a database that has data.

use crate::{Backend, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a backup holds, read from the same snapshot the backup was taken of.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The schema version (highest applied migration).
    pub schema_version: u32,
    /// Rows per table, by table name.
    pub tables: BTreeMap<String, i64>,
    /// The audit chain's last entry: sequence number and hash.
    pub audit_head: Option<(i64, String)>,
}

impl Summary {
    /// Tables whose row count in `restored` differs from this summary's (a table this summary
    /// has that `restored` lacks counts as 0 rows there), as `(table, expected, found)`.
    /// Tables only `restored` has (added by migrations after the backup) are not compared.
    pub fn differences(&self, restored: &Summary) -> Vec<(String, i64, i64)> {
        self.tables
            .iter()
            .filter_map(|(table, &expected)| {
                let found = restored.tables.get(table).copied().unwrap_or(0);
                (found != expected).then(|| (table.clone(), expected, found))
            })
            .collect()
    }
}

/// The newest schema version this build can open on `backend`.
pub fn supported_schema_version(backend: &Backend) -> u32 {
    match backend {
        Backend::Sqlite { .. } => crate::migrate::latest(crate::migrate::sqlite_migrations()),
        Backend::Postgres { .. } => crate::migrate::latest(crate::migrate::postgres_migrations()),
    }
}

/// Where the database of `backend` is written inside a backup directory.
pub fn file_name(backend: &Backend) -> &'static str {
    match backend {
        Backend::Sqlite { .. } => "easypos.db",
        Backend::Postgres { .. } => "easypos.pgdump",
    }
}

/// Takes a consistent backup of `backend` into `destination` (which must not exist) and
/// returns the summary of exactly what it holds.
pub async fn backup(backend: &Backend, destination: &Path) -> Result<Summary, StoreError> {
    if destination.exists() {
        return Err(StoreError::Config(format!(
            "{} already exists; a backup never overwrites a file",
            destination.display()
        )));
    }
    match backend {
        Backend::Sqlite { path } => {
            let (path, destination) = (path.clone(), destination.to_path_buf());
            tokio::task::spawn_blocking(move || sqlite_backup(&path, &destination))
                .await
                .map_err(|error| StoreError::Write(error.to_string()))?
        }
        Backend::Postgres { url } => postgres_backup(url, destination).await,
    }
}

/// Restores the backup file `source` (as [`backup`] wrote it for the same kind of backend)
/// into `backend`, which must be empty: no SQLite file at its path, or a PostgreSQL database
/// without tables. The caller then opens the store (which migrates an older backup to the
/// current schema) and compares [`summary`] with the backup's.
pub async fn restore(backend: &Backend, source: &Path) -> Result<(), StoreError> {
    if !source.is_file() {
        return Err(StoreError::Config(format!(
            "{} is not a backup file",
            source.display()
        )));
    }
    match backend {
        Backend::Sqlite { path } => {
            let (path, source) = (path.clone(), source.to_path_buf());
            tokio::task::spawn_blocking(move || sqlite_restore(&source, &path))
                .await
                .map_err(|error| StoreError::Write(error.to_string()))?
        }
        Backend::Postgres { url } => postgres_restore(url, source).await,
    }
}

/// The summary of the live database of `backend`, read in one snapshot.
pub async fn summary(backend: &Backend) -> Result<Summary, StoreError> {
    match backend {
        Backend::Sqlite { path } => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                let connection = open_read_only(&path)?;
                connection.execute_batch("BEGIN")?;
                let summary = sqlite_summary(&connection);
                connection.execute_batch("COMMIT")?;
                summary
            })
            .await
            .map_err(|error| StoreError::Write(error.to_string()))?
        }
        Backend::Postgres { url } => {
            let mut client = crate::postgres::connect(url).await?;
            let transaction = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let summary = postgres_summary(&transaction).await?;
            transaction.commit().await?;
            Ok(summary)
        }
    }
}

fn open_read_only(path: &Path) -> Result<rusqlite::Connection, StoreError> {
    if !path.is_file() {
        return Err(StoreError::Config(format!(
            "there is no database at {}",
            path.display()
        )));
    }
    let connection =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(connection)
}

fn sqlite_backup(path: &Path, destination: &Path) -> Result<Summary, StoreError> {
    let connection = open_read_only(path)?;
    let target = destination.to_str().ok_or_else(|| {
        StoreError::Config(format!("{} is not valid UTF-8", destination.display()))
    })?;
    // One read transaction: the copy is the database as of one commit.
    connection.execute("VACUUM INTO ?1", [target])?;
    let copy = open_read_only(destination)?;
    let integrity: String = copy.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    if integrity != "ok" {
        return Err(StoreError::Corrupt(format!(
            "the copy of {} failed its integrity check: {integrity}",
            path.display()
        )));
    }
    sqlite_summary(&copy)
}

fn sqlite_summary(connection: &rusqlite::Connection) -> Result<Summary, StoreError> {
    let mut statement = connection.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let names = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut tables = BTreeMap::new();
    for name in names {
        let rows: i64 =
            connection.query_row(&format!("SELECT count(*) FROM \"{name}\""), [], |row| {
                row.get(0)
            })?;
        tables.insert(name, rows);
    }
    let schema_version = if tables.contains_key("schema_migrations") {
        connection.query_row(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            [],
            |row| row.get::<_, u32>(0),
        )?
    } else {
        0
    };
    let audit_head = if tables.contains_key("audit_log") {
        use rusqlite::OptionalExtension;
        connection
            .query_row(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?
    } else {
        None
    };
    Ok(Summary {
        schema_version,
        tables,
        audit_head,
    })
}

fn sqlite_restore(source: &Path, target: &Path) -> Result<(), StoreError> {
    for existing in [
        target.to_path_buf(),
        with_suffix(target, "-wal"),
        with_suffix(target, "-shm"),
    ] {
        if existing.exists() {
            return Err(StoreError::Config(format!(
                "{} already exists; restore only writes into an empty data directory (move the old files aside, or restore with another --data-dir)",
                existing.display()
            )));
        }
    }
    // Check the backup before it goes anywhere near the data directory.
    let integrity: String = open_read_only(source)?
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(|error| {
            StoreError::Corrupt(format!(
                "{} is not a SQLite backup: {error}",
                source.display()
            ))
        })?;
    if integrity != "ok" {
        return Err(StoreError::Corrupt(format!(
            "{} failed its integrity check: {integrity}",
            source.display()
        )));
    }
    if let Some(parent) = target
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|error| {
            StoreError::Config(format!("cannot create {}: {error}", parent.display()))
        })?;
    }
    // Copy beside the target, make it durable, then rename: the target either does not exist
    // or is the whole backup.
    let partial = with_suffix(target, ".restoring");
    let copied = (|| -> std::io::Result<()> {
        std::fs::copy(source, &partial)?;
        std::fs::File::open(&partial)?.sync_all()?;
        std::fs::rename(&partial, target)?;
        if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::File::open(parent)?.sync_all()?;
        }
        Ok(())
    })();
    copied.map_err(|error| {
        let _ = std::fs::remove_file(&partial);
        StoreError::Write(format!("cannot restore into {}: {error}", target.display()))
    })
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

async fn postgres_summary(
    transaction: &tokio_postgres::Transaction<'_>,
) -> Result<Summary, StoreError> {
    let names: Vec<String> = transaction
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1",
            &[],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut tables = BTreeMap::new();
    for name in names {
        let row = transaction
            .query_one(&format!("SELECT count(*) FROM \"{name}\""), &[])
            .await?;
        tables.insert(name, row.get::<_, i64>(0));
    }
    let schema_version = if tables.contains_key("schema_migrations") {
        let row = transaction
            .query_one(
                "SELECT coalesce(max(version), 0)::bigint FROM schema_migrations",
                &[],
            )
            .await?;
        u32::try_from(row.get::<_, i64>(0)).unwrap_or(0)
    } else {
        0
    };
    let audit_head = if tables.contains_key("audit_log") {
        transaction
            .query_opt(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                &[],
            )
            .await?
            .map(|row| (row.get(0), row.get(1)))
    } else {
        None
    };
    Ok(Summary {
        schema_version,
        tables,
        audit_head,
    })
}

/// Runs a PostgreSQL client program, with a message that says how to get it when it is missing.
async fn run_pg_tool(program: &'static str, args: Vec<String>) -> Result<(), StoreError> {
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(program)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
    })
    .await
    .map_err(|error| StoreError::Write(error.to_string()))?
    .map_err(|error| {
        StoreError::Config(format!(
            "cannot run {program} ({error}); install PostgreSQL's client programs (Debian: apt-get install postgresql-client) at the server's major version or newer"
        ))
    })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(StoreError::Write(format!(
        "{program} failed ({}): {}",
        output.status,
        stderr.trim()
    )))
}

async fn postgres_backup(url: &str, destination: &Path) -> Result<Summary, StoreError> {
    let mut client = crate::postgres::connect(url).await?;
    let transaction = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let snapshot: String = transaction
        .query_one("SELECT pg_export_snapshot()", &[])
        .await?
        .get(0);
    let summary = postgres_summary(&transaction).await?;
    let target = destination.to_str().ok_or_else(|| {
        StoreError::Config(format!("{} is not valid UTF-8", destination.display()))
    })?;
    // The exporting transaction stays open until pg_dump has read its snapshot.
    let dumped = run_pg_tool(
        "pg_dump",
        vec![
            "--format=custom".into(),
            "--no-owner".into(),
            "--no-privileges".into(),
            format!("--snapshot={snapshot}"),
            format!("--file={target}"),
            format!("--dbname={url}"),
        ],
    )
    .await;
    transaction.commit().await?;
    if dumped.is_err() {
        let _ = std::fs::remove_file(destination);
    }
    dumped.map(|()| summary)
}

async fn postgres_restore(url: &str, source: &Path) -> Result<(), StoreError> {
    let client = crate::postgres::connect(url).await?;
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
            &[],
        )
        .await?
        .get(0);
    if tables > 0 {
        return Err(StoreError::Config(format!(
            "the database at {} already has {tables} tables; restore only writes into an empty database (CREATE DATABASE a new one and point --database-url at it)",
            crate::postgres::redact_url(url)
        )));
    }
    drop(client);
    let source = source
        .to_str()
        .ok_or_else(|| StoreError::Config(format!("{} is not valid UTF-8", source.display())))?;
    // One transaction: a failure leaves the database as empty as it was.
    run_pg_tool(
        "pg_restore",
        vec![
            "--no-owner".into(),
            "--no-privileges".into(),
            "--exit-on-error".into(),
            "--single-transaction".into(),
            format!("--dbname={url}"),
            source.to_owned(),
        ],
    )
    .await
}
