//! Transaction certificates (R8): the proof document a merchant produces for a transaction, as
//! JSON signed by the acquirer and as a PDF of the same facts (pure: the caller gathers them).
//!
//! The JSON is one document holding the certificate's text byte for byte, its SHA-256 and the
//! acquirer's Ed25519 signature (a receipt key, `ReceiptKeys::sign_document`, over
//! `easypos-certificate/1`, a line feed and the text), so that any SHA-256 and Ed25519 tool
//! checks it with the keys of `GET /api/v1/receipts/keys`:
//!
//! ```json
//! {"format": "easypos-certificate/1", "certificate": "{…}", "sha256": "…",
//!  "key_id": "0a1b2c3d", "algorithm": "Ed25519", "signature": "<base64url>"}
//! ```

use crate::{ReceiptError, ReceiptKeys};
use base64::Engine;
use sha2::Digest;

/// The format name, and the domain its signatures are made in.
pub const FORMAT: &str = "easypos-certificate/1";

/// What a certificate states: each part JSON, gathered by the caller.
#[derive(Clone, Debug, PartialEq)]
pub struct Facts {
    pub transaction: serde_json::Value,
    pub merchant: serde_json::Value,
    pub terminal: serde_json::Value,
    /// What happened to it (`crate::timeline`, as the API shows it).
    pub timeline: serde_json::Value,
    /// The journal's entries of the transaction and of the messages naming it.
    pub journal: serde_json::Value,
    /// Who asked for it and when (RFC 3339).
    pub issued_to: String,
    pub issued_at: String,
    /// The transaction's own journal row's operator (cashier) number, entry mode (field 22)
    /// and card verification (what the issuer's decision proved); `None` where the journal
    /// has none (a message before migration 33, a terminal not signed on with an operator).
    pub operator: Option<String>,
    pub entry_mode: Option<String>,
    pub card_verification: Option<String>,
    /// The receipt copy: the signed statement the approval's answer carried to the terminal,
    /// checked (`null` when there was none, as for a decline).
    pub receipt: serde_json::Value,
}

/// A signed certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// The signed JSON document.
    pub json: String,
    /// SHA-256 of the certificate's text, hex.
    pub sha256: String,
    pub key_id: String,
    /// The signature, unpadded base64url.
    pub signature: String,
    /// The certificate's text, for the PDF.
    pub text: String,
}

/// What the certificate says where the journal recorded nothing, rather than guess.
pub const NOT_RECORDED: &str = "not recorded";

/// Signs the certificate of `facts` with the acquirer's current receipt key.
pub fn issue(keys: &ReceiptKeys, facts: &Facts) -> Result<Certificate, ReceiptError> {
    let body = serde_json::json!({
        "format": FORMAT,
        "issued_to": facts.issued_to,
        "issued_at": facts.issued_at,
        "transaction": facts.transaction,
        "merchant": facts.merchant,
        "terminal": facts.terminal,
        "operator": facts.operator.as_deref().unwrap_or(NOT_RECORDED),
        "entry_mode": facts.entry_mode.as_deref().unwrap_or(NOT_RECORDED),
        "card_verification": facts.card_verification.as_deref().unwrap_or(NOT_RECORDED),
        "receipt": facts.receipt,
        "timeline": facts.timeline,
        "journal": facts.journal,
    });
    let text = serde_json::to_string_pretty(&body).unwrap_or_default();
    let sha256 = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    let (key_id, signature) = keys.sign_document(FORMAT, &text)?;
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature);
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "format": FORMAT,
        "certificate": text,
        "sha256": sha256,
        "key_id": key_id,
        "algorithm": "Ed25519",
        "signature": signature,
    }))
    .unwrap_or_default();
    Ok(Certificate {
        json,
        sha256,
        key_id,
        signature,
        text,
    })
}

/// Checks a certificate's JSON: its format, its text's SHA-256, and the acquirer's signature
/// over it with `keys`. The error says what is wrong.
pub fn verify(keys: &ReceiptKeys, json: &str) -> Result<(), String> {
    let document: serde_json::Value =
        serde_json::from_str(json).map_err(|error| format!("not JSON: {error}"))?;
    let field = |name: &str| {
        document[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{name} is missing"))
    };
    if field("format")? != FORMAT {
        return Err(format!("the format is not {FORMAT}"));
    }
    let text = field("certificate")?;
    if hex::encode(sha2::Sha256::digest(text.as_bytes())) != field("sha256")? {
        return Err("the certificate's text does not match its SHA-256: it was altered".into());
    }
    let signature: [u8; 64] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(field("signature")?)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("the signature is not 64 bytes of base64url")?;
    if keys.verify_document(FORMAT, &text, &field("key_id")?, &signature) {
        Ok(())
    } else {
        Err("the signature does not match: the certificate was altered or forged".into())
    }
}

/// The certificate as a PDF: a title, then its text line by line (wrapped), then the
/// checksum and the signature, on as many A4 pages as it takes.
pub fn pdf(certificate: &Certificate) -> Vec<u8> {
    let mut lines = vec![
        // One font per string (crates/pdf): the English title and the Chinese apart.
        "TRANSACTION CERTIFICATE".to_owned(),
        "交易凭证".to_owned(),
        format!("format {FORMAT}"),
        String::new(),
    ];
    lines.extend(certificate.text.lines().map(str::to_owned));
    lines.push(String::new());
    lines.push(format!("SHA-256 {}", certificate.sha256));
    lines.push(format!(
        "signed by the acquirer, Ed25519 key {}",
        certificate.key_id
    ));
    lines.push(certificate.signature.clone());
    crate::paper::a4_text("Transaction certificate", &lines)
}
