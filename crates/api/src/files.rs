//! Files people upload (an application's documents, an incident's attachments): the type is
//! sniffed from the first bytes, never taken from the name or the header the sender gives, and
//! a file is written under the data directory (never the web root) with a temporary name, synced
//! and renamed, so a half-written file is never recorded.

use std::path::{Path, PathBuf};

/// The content type and file extension of `bytes`, from their magic numbers: JPEG, PNG, PDF.
pub fn sniff(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(("image/jpeg", "jpg"))
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(("image/png", "png"))
    } else if bytes.starts_with(b"%PDF-") {
        Some(("application/pdf", "pdf"))
    } else {
        None
    }
}

/// Writes `bytes` as `dir/name` (creating `dir`): first to a temporary file beside it, synced,
/// then renamed over the name.
pub async fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let file = dir.join(name);
    let temporary = dir.join(format!(".{name}.upload"));
    let (dir, target, bytes) = (dir.to_path_buf(), file.clone(), bytes.to_vec());
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(&temporary, &bytes)?;
        std::fs::File::open(&temporary)?.sync_all()?;
        std::fs::rename(&temporary, &target)
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Some(("image/jpeg", "jpg")));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some(("image/png", "png")));
        assert_eq!(sniff(b"%PDF-1.7"), Some(("application/pdf", "pdf")));
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b"<html>"), None);
    }
}
