//! Uploaded documents (business licence, ID card sides, a shop photo): the type is sniffed
//! from the first bytes, never taken from the name or the header the browser sends; the size
//! is bounded; the file is written under the data directory (never the web root) with a
//! temporary name and renamed, so a half-written file is never recorded.

use crate::application::Application;
use crate::http::{DOCUMENT_KINDS, DocumentView, MAX_DOCUMENT_BYTES};
use crate::service::{Onboarding, OnboardingError};
use crate::validate::FieldError;
use sha2::{Digest, Sha256};
use store::onboarding::{Cell, Kind, Step};
use store::{Store, StoreError};

pub use api::files::sniff;

/// Checks kind, size and type of a document; the content type and extension.
pub fn check(kind: &str, bytes: &[u8]) -> Result<(&'static str, &'static str), FieldError> {
    let fault = |code| FieldError {
        field: "document",
        code,
    };
    if !DOCUMENT_KINDS.contains(&kind) {
        return Err(fault("document-kind"));
    }
    if bytes.is_empty() {
        return Err(fault("document-empty"));
    }
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(fault("document-size"));
    }
    sniff(bytes).ok_or(fault("document-type"))
}

/// Keeps a document of an application its applicant may still change.
pub async fn store_document(
    onboarding: &Onboarding,
    application: &Application,
    kind: &str,
    bytes: &[u8],
) -> Result<DocumentView, OnboardingError> {
    if !application.status.editable() {
        return Err(OnboardingError::NotEditable(application.status));
    }
    let (content_type, extension) =
        check(kind, bytes).map_err(|error| OnboardingError::Invalid(vec![error]))?;
    let dir = onboarding.settings.documents_dir.join(&application.id);
    let file = api::files::write_atomic(&dir, &format!("{kind}.{extension}"), bytes)
        .await
        .map_err(|error| StoreError::Write(format!("document file: {error}")))?;
    let sha256 = hex::encode(Sha256::digest(bytes));
    let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    onboarding
        .store
        .onboarding_execute(vec![Step::new(
            "INSERT INTO application_documents (application_id, kind, content_type, bytes, sha256, file, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (application_id, kind) DO UPDATE SET content_type = excluded.content_type, bytes = excluded.bytes, sha256 = excluded.sha256, file = excluded.file, uploaded_at = excluded.uploaded_at",
            vec![
                Cell::text(&application.id),
                Cell::text(kind),
                Cell::text(content_type),
                Cell::int(size),
                Cell::text(&sha256),
                Cell::text(file.to_string_lossy()),
                Cell::int(onboarding.now()),
            ],
        )])
        .await?;
    Ok(DocumentView {
        kind: kind.to_owned(),
        content_type: content_type.to_owned(),
        bytes: size,
        sha256,
    })
}

/// The documents of an application.
pub async fn list(store: &Store, application_id: &str) -> Result<Vec<DocumentView>, StoreError> {
    let rows = store
        .onboarding_query(
            "SELECT kind, content_type, bytes, sha256 FROM application_documents WHERE application_id = $1 ORDER BY kind",
            vec![Cell::text(application_id)],
            &[Kind::Text, Kind::Text, Kind::Int, Kind::Text],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            Some(DocumentView {
                kind: row[0].as_text()?.to_owned(),
                content_type: row[1].as_text()?.to_owned(),
                bytes: row[2].as_int()?,
                sha256: row[3].as_text()?.to_owned(),
            })
        })
        .collect())
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

/// The parts of a `multipart/form-data` body (RFC 7578), for the console's document form; the
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_sniffed_and_bounded() {
        assert_eq!(
            check("licence", b"\xFF\xD8\xFF\xE0rest"),
            Ok(("image/jpeg", "jpg"))
        );
        assert_eq!(
            check("id_front", b"%PDF-1.7"),
            Ok(("application/pdf", "pdf"))
        );
        let code = |kind, bytes: &[u8]| check(kind, bytes).map_err(|error| error.code);
        assert_eq!(code("licence", b"GIF89a"), Err("document-type"));
        assert_eq!(code("licence", b""), Err("document-empty"));
        assert_eq!(code("passport", b"%PDF-"), Err("document-kind"));
        assert_eq!(
            code("licence", &vec![0xFF; MAX_DOCUMENT_BYTES + 1]),
            Err("document-size")
        );
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
}
