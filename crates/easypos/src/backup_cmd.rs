//! `easypos backup` and `easypos restore` (docs/operations.md): an online, consistent copy of
//! the configured database with a manifest, and its restore into an empty target, verified
//! before it is called done.
//!
//! A backup is a directory: the database file (`easypos.db`, or `easypos.pgdump` in
//! `pg_dump`'s custom format) and `manifest.json`, written last, with the file's SHA-256, the
//! rows per table and the audit chain's head read from the same snapshot, and the check value
//! of the HSM master key the database's keys are wrapped under. The master key itself is never
//! in a backup: it is kept apart, by its custodians (docs/operations.md).

use crate::config::Config;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use store::backup::Summary;
use store::{Backend, Store};

/// The manifest's format; a restore refuses any other.
pub const FORMAT: &str = "easypos-backup/1";
const MANIFEST: &str = "manifest.json";

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The directory to write the backup into (created; must not exist or be empty).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Print the manifest as JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup directory `easypos backup` wrote.
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// Print the verification report as JSON.
    #[arg(long)]
    json: bool,
}

/// `manifest.json`: what the backup holds and how to check it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: String,
    pub easypos_version: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// `sqlite` or `postgres`: a backup restores into the same kind of backend.
    pub backend: String,
    /// The database file in the backup directory.
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
    /// The check value of the HSM master key the database's keys are wrapped under.
    pub master_key_check_value: String,
    pub summary: Summary,
    /// Files the database refers to that live beside it in the data directory (the
    /// applications' uploaded documents), copied under the same relative paths.
    #[serde(default)]
    pub files: Vec<FileEntry>,
}

/// One file of the data directory in a backup.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the data directory, `/`-separated (`documents/APP-…/licence.pdf`).
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Directories of the data directory whose files the database refers to. Uploaded documents
/// are written (and synced) before the row naming them commits, so copying them after the
/// database snapshot finds every file the snapshot names.
const DATA_DIRECTORIES: &[&str] = &["documents"];

/// What a restore checked, for people and scripts.
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub backend: String,
    pub backup_schema_version: u32,
    pub schema_version: u32,
    pub tables_compared: usize,
    pub rows: i64,
    pub books_balance: bool,
    pub audit_entries: i64,
    pub audit_chain_intact: bool,
    pub keys_unwrapped: usize,
    pub files_restored: usize,
}

pub async fn backup(config: &Config, args: BackupArgs) -> anyhow::Result<()> {
    let hsm = master_key(config)?;
    prepare_empty_dir(&args.out)?;
    let file = store::backup::file_name(&config.backend);
    let path = args.out.join(file);
    let summary = store::backup::backup(&config.backend, &path)
        .await
        .with_context(|| format!("backing up {}", describe(&config.backend)))?;
    std::fs::File::open(&path)?.sync_all()?;
    let (bytes, sha256) = digest(&path)?;
    let files = copy_data_files(&config.data_dir, &args.out)?;
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        easypos_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: api::time::rfc3339_seconds(unix_now()),
        backend: backend_kind(&config.backend).to_owned(),
        file: file.to_owned(),
        bytes,
        sha256,
        master_key_check_value: hsm::Hsm::master_key_check_value(&hsm),
        summary,
        files,
    };
    terminal::files::write_atomic(
        &args.out.join(MANIFEST),
        &serde_json::to_vec_pretty(&manifest)?,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
    } else {
        let rows: i64 = manifest.summary.tables.values().sum();
        println!(
            "Backed up {} (schema v{}, {} tables, {rows} rows, {} bytes) and {} documents to {}",
            manifest.backend,
            manifest.summary.schema_version,
            manifest.summary.tables.len(),
            manifest.bytes,
            manifest.files.len(),
            args.out.display()
        );
        println!(
            "The database's keys are wrapped under the master key with check value {}: keep that key (hsm.lmk_file) apart from this backup; a restore needs it.",
            manifest.master_key_check_value
        );
    }
    Ok(())
}

pub async fn restore(config: &Config, args: RestoreArgs) -> anyhow::Result<()> {
    let manifest = read_manifest(&args.from)?;
    let kind = backend_kind(&config.backend);
    if manifest.backend != kind {
        bail!(
            "this backup is of a {} database but the configuration names {kind} ({}); restore into the same kind of database",
            manifest.backend,
            describe(&config.backend)
        );
    }
    let file = args.from.join(&manifest.file);
    let (bytes, sha256) = digest(&file).with_context(|| format!("reading {}", file.display()))?;
    if bytes != manifest.bytes || sha256 != manifest.sha256 {
        bail!(
            "{} does not match its manifest (SHA-256 {sha256}, {bytes} bytes; the manifest says {} and {}): the backup is damaged",
            file.display(),
            manifest.sha256,
            manifest.bytes
        );
    }
    let supported = store::backup::supported_schema_version(&config.backend);
    if manifest.summary.schema_version > supported {
        bail!(
            "the backup has schema version {}, newer than this easypos understands (up to {supported}); restore it with a newer easypos",
            manifest.summary.schema_version,
        );
    }
    if !config.lmk_file.exists() {
        bail!(
            "there is no HSM master key at {} (hsm.lmk_file); put the master key with check value {} there first (the database's keys are wrapped under it)",
            config.lmk_file.display(),
            manifest.master_key_check_value
        );
    }
    let hsm = master_key(config)?;
    let check_value = hsm::Hsm::master_key_check_value(&hsm);
    if check_value != manifest.master_key_check_value {
        bail!(
            "the HSM master key at {} has check value {check_value}, but this backup's keys are wrapped under the key with check value {}; put that key there first",
            config.lmk_file.display(),
            manifest.master_key_check_value
        );
    }
    let staged = stage_data_files(&manifest, &args.from, &config.data_dir)?;
    if let Err(error) = store::backup::restore(&config.backend, &file).await {
        for (_, staging) in &staged {
            let _ = std::fs::remove_dir_all(staging);
        }
        return Err(error).with_context(|| format!("restoring into {}", describe(&config.backend)));
    }
    for (target, staging) in &staged {
        std::fs::rename(staging, target)
            .with_context(|| format!("cannot move {} into place", staging.display()))?;
    }
    let report = verify(config, &manifest, &hsm).await.with_context(|| {
        format!(
            "the restored database in {} did not verify; do not run easypos on it (delete it, and restore again from a good backup)",
            describe(&config.backend)
        )
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "Restored {} from {} (backup schema v{}, now v{}).",
            report.backend,
            args.from.display(),
            report.backup_schema_version,
            report.schema_version
        );
        println!(
            "Verified: {} tables with {} rows as in the backup; the books balance; the audit chain is intact ({} entries); {} keys unwrap under the master key; {} documents restored.",
            report.tables_compared,
            report.rows,
            report.audit_entries,
            report.keys_unwrapped,
            report.files_restored
        );
    }
    Ok(())
}

/// Copies every file under the data directory's [`DATA_DIRECTORIES`] into `out`, synced.
fn copy_data_files(data_dir: &Path, out: &Path) -> anyhow::Result<Vec<FileEntry>> {
    let mut entries = Vec::new();
    for directory in DATA_DIRECTORIES {
        let mut pending = vec![PathBuf::from(directory)];
        while let Some(relative) = pending.pop() {
            let source = data_dir.join(&relative);
            if !source.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(&source)
                .with_context(|| format!("cannot read {}", source.display()))?
            {
                let entry = entry?;
                let name = relative.join(entry.file_name());
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    pending.push(name);
                } else if kind.is_file() && !entry.file_name().to_string_lossy().starts_with('.') {
                    // Dot files are uploads still being written.
                    let target = out.join(&name);
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::fs::copy(entry.path(), &target)
                        .with_context(|| format!("cannot copy {}", entry.path().display()))?;
                    std::fs::File::open(&target)?.sync_all()?;
                    let (bytes, sha256) = digest(&target)?;
                    let path = name
                        .components()
                        .map(|part| part.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    entries.push(FileEntry {
                        path,
                        bytes,
                        sha256,
                    });
                }
            }
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

/// Checks every file of the backup against its manifest entry and copies them into staging
/// directories beside their targets (renamed into place once the database is restored):
/// `(target, staging)` per data directory. A target that has files already is refused.
fn stage_data_files(
    manifest: &Manifest,
    from: &Path,
    data_dir: &Path,
) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    let mut staged = Vec::new();
    for directory in DATA_DIRECTORIES {
        let target = data_dir.join(directory);
        if target.is_dir() && std::fs::read_dir(&target)?.next().is_some() {
            bail!(
                "{} already has files; restore only writes into an empty data directory",
                target.display()
            );
        }
        let staging = data_dir.join(format!(".{directory}.restoring"));
        let _ = std::fs::remove_dir_all(&staging);
        staged.push((target, staging));
    }
    let copied = copy_staged(manifest, from, data_dir);
    if copied.is_err() {
        for (_, staging) in &staged {
            let _ = std::fs::remove_dir_all(staging);
        }
    }
    copied?;
    // Only the directories that received files are moved into place.
    staged.retain(|(_, staging)| staging.is_dir());
    Ok(staged)
}

fn copy_staged(manifest: &Manifest, from: &Path, data_dir: &Path) -> anyhow::Result<()> {
    for entry in &manifest.files {
        let relative = Path::new(&entry.path);
        let inside = relative
            .components()
            .all(|part| matches!(part, std::path::Component::Normal(_)));
        let Some(directory) = DATA_DIRECTORIES
            .iter()
            .find(|directory| relative.starts_with(directory))
            .filter(|_| inside)
        else {
            bail!(
                "the manifest names {:?}, which a backup cannot hold",
                entry.path
            );
        };
        let source = from.join(relative);
        let (bytes, sha256) =
            digest(&source).with_context(|| format!("reading {}", source.display()))?;
        if bytes != entry.bytes || sha256 != entry.sha256 {
            bail!(
                "{} does not match its manifest: the backup is damaged",
                source.display()
            );
        }
        let staging = data_dir.join(format!(".{directory}.restoring"));
        let target = staging.join(relative.strip_prefix(directory)?);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&source, &target)?;
        std::fs::File::open(&target)?.sync_all()?;
    }
    Ok(())
}

/// The restored database against the manifest: the rows of every table (read before the
/// store migrates it), then, through the store, the books, the audit chain and every key.
async fn verify(
    config: &Config,
    manifest: &Manifest,
    hsm: &hsm::SoftHsm,
) -> anyhow::Result<RestoreReport> {
    let restored = store::backup::summary(&config.backend).await?;
    let differences = manifest.summary.differences(&restored);
    if let Some((table, expected, found)) = differences.first() {
        bail!(
            "table {table} has {found} rows but the backup had {expected} ({} tables differ)",
            differences.len()
        );
    }
    if restored.audit_head != manifest.summary.audit_head {
        bail!(
            "the audit chain ends at {:?}, the backup's at {:?}",
            restored.audit_head,
            manifest.summary.audit_head
        );
    }
    // Opening migrates an older backup and checks that the books balance.
    let store = Store::open(&config.backend).await?;
    store.check_books().await?;
    let audit = store.verify_audit().await?;
    if let Some(found) = &audit.first_break {
        bail!("the audit chain is broken: {found:?}");
    }
    let keys = store.keys().await?;
    for key in &keys {
        hsm::Hsm::key_check_value(hsm, &hsm::KeyToken::new(key.token.clone()))
            .with_context(|| format!("key {} does not unwrap under the master key", key.name))?;
    }
    let schema_version = store.schema_version().await?;
    store.close().await?;
    Ok(RestoreReport {
        backend: manifest.backend.clone(),
        backup_schema_version: manifest.summary.schema_version,
        schema_version,
        tables_compared: manifest.summary.tables.len(),
        rows: manifest.summary.tables.values().sum(),
        books_balance: true,
        audit_entries: audit.entries,
        audit_chain_intact: true,
        keys_unwrapped: keys.len(),
        files_restored: manifest.files.len(),
    })
}

fn master_key(config: &Config) -> anyhow::Result<hsm::SoftHsm> {
    if !config.lmk_file.exists() {
        bail!(
            "there is no HSM master key at {} (hsm.lmk_file); back up an installation that has run (`easypos up`), with the same configuration",
            config.lmk_file.display()
        );
    }
    crate::up::open_hsm(config)
}

fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read {} (a backup directory has one; a backup without it did not finish)",
            path.display()
        )
    })?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not an easypos backup manifest", path.display()))?;
    if manifest.format != FORMAT {
        bail!(
            "{} is in format {:?}; this easypos reads {FORMAT:?}",
            path.display(),
            manifest.format
        );
    }
    if manifest.file.contains('/') || manifest.file.contains("..") {
        bail!(
            "{} names the file {:?}, which is not in the backup directory",
            path.display(),
            manifest.file
        );
    }
    Ok(manifest)
}

fn prepare_empty_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} is not empty; a backup goes into a new directory",
                dir.display()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// Size and lower-case hex SHA-256 of a file.
fn digest(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        bytes += read as u64;
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

fn backend_kind(backend: &Backend) -> &'static str {
    match backend {
        Backend::Sqlite { .. } => "sqlite",
        Backend::Postgres { .. } => "postgres",
    }
}

fn describe(backend: &Backend) -> String {
    match backend {
        Backend::Sqlite { path } => path.display().to_string(),
        Backend::Postgres { .. } => "the PostgreSQL database (database.url)".to_owned(),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}
