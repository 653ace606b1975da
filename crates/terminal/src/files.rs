//! Files the terminal keeps: written whole to a temporary file beside the target, synced, and
//! renamed over it, so a crash or power cut leaves the old file or the new one, never half of
//! one. Every file is created with mode 0600: card files hold keys, state files hold working
//! keys (encrypted) and the batch.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The largest file the terminal reads (a card file or a state file with a full batch): a
/// bound so a wrong path cannot make it read a disk image into memory.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Why a file could not be read or written; names the file, never its contents.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Content { path: PathBuf, reason: String },
}

impl FileError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        FileError::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn content(path: &Path, reason: impl Into<String>) -> Self {
        FileError::Content {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Replaces `path` with `bytes` atomically (temporary file, fsync, rename, fsync of the
/// directory), mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| FileError::content(path, "is not a file name"))?;
    let temporary = directory.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = open_private(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        // The rename is durable once the directory is synced.
        std::fs::File::open(&directory)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result.map_err(|error| FileError::io(path, error))
}

/// Writes printer output: straight to a device or pipe (`/dev/usb/lp0`, a FIFO), which cannot
/// be replaced by a rename; atomically ([`write_atomic`]) to a regular file.
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let is_special = std::fs::metadata(path).is_ok_and(|metadata| !metadata.is_file());
    if !is_special {
        return write_atomic(path, bytes);
    }
    let mut device = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|error| FileError::io(path, error))?;
    device
        .write_all(bytes)
        .and_then(|()| device.flush())
        .map_err(|error| FileError::io(path, error))
}

/// Creates (truncating) a file only its owner may read and write.
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Reads a whole file of at most [`MAX_FILE_BYTES`].
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, FileError> {
    let length = std::fs::metadata(path)
        .map_err(|error| FileError::io(path, error))?
        .len();
    if length > MAX_FILE_BYTES {
        return Err(FileError::content(
            path,
            format!("is larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    std::fs::read(path).map_err(|error| FileError::io(path, error))
}

/// Creates a directory (and its parents) only its owner may enter.
pub fn create_private_dir(path: &Path) -> Result<(), FileError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(path)
        .map_err(|error| FileError::io(path, error))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_file_is_replaced_whole_and_private() {
        let dir = std::env::temp_dir().join(format!("terminal-files-{}", std::process::id()));
        create_private_dir(&dir).unwrap();
        let path = dir.join("state.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(read_bounded(&path).unwrap(), b"second");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file is left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn printer_output_goes_straight_to_a_device() {
        // /dev/null stands for a printer device: it cannot be replaced by a rename.
        write_output(Path::new("/dev/null"), b"\x1b@receipt").unwrap();
        assert!(std::fs::metadata("/dev/null").is_ok_and(|metadata| !metadata.is_file()));
    }
}
