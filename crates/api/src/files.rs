//! Files people upload (an application's documents, an incident's attachments, a dispute's
//! evidence), as a `multipart/form-data` body or as the body itself: the type is
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

/// One part of a `multipart/form-data` body: its field name and content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part<'a> {
    pub name: &'a str,
    /// The file's name the browser sent for a file part (`filename="…"`), if any.
    pub filename: Option<&'a str>,
    pub content: &'a [u8],
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<&str> {
    let (kind, parameters) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parameters.split(';').find_map(|parameter| {
        let (key, value) = parameter.trim().split_once('=')?;
        key.eq_ignore_ascii_case("boundary")
            .then(|| value.trim_matches('"'))
            .filter(|value| !value.is_empty() && value.len() <= 70)
    })
}

/// Most parts a form may send (the document form has three).
const MAX_PARTS: usize = 8;

/// The parts of a `multipart/form-data` body (RFC 7578), for the console's forms and the API's uploads; the
/// small subset browsers send: each part has a `Content-Disposition: form-data; name="…"`
/// header. `None` for a body that is not well formed.
pub fn parse_multipart<'a>(body: &'a [u8], boundary: &str) -> Option<Vec<Part<'a>>> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let find = |haystack: &[u8], needle: &[u8], from: usize| {
        haystack
            .get(from..)?
            .windows(needle.len())
            .position(|window| window == needle)
            .map(|at| at + from)
    };
    let mut at = find(body, delimiter, 0)? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        if body.get(at..at + 2)? == b"--" {
            return Some(parts);
        }
        if body.get(at..at + 2)? != b"\r\n" || parts.len() == MAX_PARTS {
            return None;
        }
        let headers_start = at + 2;
        let headers_end = find(body, b"\r\n\r\n", headers_start)?;
        let headers = std::str::from_utf8(&body[headers_start..headers_end]).ok()?;
        let disposition = headers.split("\r\n").find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case("content-disposition")
                .then_some(value)
        })?;
        let item = |prefix: &str| {
            disposition.split(';').find_map(|item| {
                item.trim()
                    .strip_prefix(prefix)
                    .map(|value| value.trim_matches('"'))
            })
        };
        let name = item("name=")?;
        let filename = item("filename=");
        let content_start = headers_end + 4;
        let mut closing = b"\r\n".to_vec();
        closing.extend_from_slice(delimiter);
        let content_end = find(body, &closing, content_start)?;
        parts.push(Part {
            name,
            filename,
            content: &body[content_start..content_end],
        });
        at = content_end + closing.len();
    }
}

/// The text of form field `name` (empty when absent or not UTF-8).
pub fn text_field(parts: &[Part<'_>], name: &str) -> String {
    parts
        .iter()
        .find(|part| part.name == name)
        .and_then(|part| std::str::from_utf8(part.content).ok())
        .unwrap_or("")
        .to_owned()
}

/// The parts of a `multipart/form-data` body whose content type is `content_type`; `None`
/// when it is not one, or not well formed.
pub fn form_parts<'a>(content_type: &str, body: &'a [u8]) -> Option<Vec<Part<'a>>> {
    boundary(content_type).and_then(|boundary| parse_multipart(body, boundary))
}

/// `value` as one URL path segment: unreserved characters (RFC 3986) as they are, every
/// other byte of its UTF-8 as `%XX`.
pub fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// `Content-Disposition` for a download named `name` (RFC 6266): an ASCII `filename` (other
/// characters, `"` and `\\` as `_`) and the name itself as UTF-8 in `filename*` (RFC 8187),
/// which browsers prefer.
pub fn attachment_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        percent_encode(name)
    )
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

    #[test]
    fn multipart_bodies_as_browsers_send_them() {
        let content_type = "multipart/form-data; boundary=----WebKitFormBoundaryX1";
        let delimiter = boundary(content_type).unwrap();
        let body = b"------WebKitFormBoundaryX1\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n------WebKitFormBoundaryX1\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\r\n--\r\n------WebKitFormBoundaryX1--\r\n";
        let parts = parse_multipart(body, delimiter).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].name, parts[0].content), ("csrf", &b"abc"[..]));
        assert_eq!(
            (parts[1].name, parts[1].content),
            ("file", &b"\x89PNG\r\n\x1a\n\r\n--"[..])
        );
        assert_eq!(
            (parts[0].filename, parts[1].filename),
            (None, Some("a.png"))
        );
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
        assert_eq!(
            parse_multipart(b"------WebKitFormBoundaryX1\r\nno end", delimiter),
            None
        );
        assert_eq!(parse_multipart(b"garbage", delimiter), None);
    }

    #[test]
    fn downloads_keep_their_names() {
        assert_eq!(percent_encode("签 a/b.pdf"), "%E7%AD%BE%20a%2Fb.pdf");
        assert_eq!(
            attachment_disposition("签购单 \"1\".pdf"),
            "attachment; filename=\"___ _1_.pdf\"; filename*=UTF-8''%E7%AD%BE%E8%B4%AD%E5%8D%95%20%221%22.pdf"
        );
    }
}
