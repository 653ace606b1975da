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

// The multipart parser is the API's (`api::files`): the console's forms and the API's
// uploads read bodies the same way.
pub use api::files::{Part, boundary, parse_multipart, sniff};

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
}
