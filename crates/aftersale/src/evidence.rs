//! Evidence packs (R10, R17, R18): what a cardholder hands the police or a lawyer about a
//! transaction they report as fraud — each part a JSON file, the same facts as a PDF, each
//! file's SHA-256 in a manifest, and the SHA-256 of the whole pack kept with the report, so
//! that any later change shows (pure: the caller gathers the parts).
//!
//! The pack is one JSON document:
//!
//! ```json
//! {"format": "easypos-evidence-pack/2",
//!  "manifest": [{"name": "transaction.json", "sha256": "…", "bytes": 412}, …,
//!               {"name": "evidence.pdf", "sha256": "…", "bytes": 30211, "encoding": "base64"}],
//!  "files": {"transaction.json": "{…}", …, "evidence.pdf": "JVBERi0xLjQK…"}}
//! ```
//!
//! `files` holds each JSON file's exact text, and the PDF in base64 (its manifest entry says
//! so; its SHA-256 and length are of the PDF's bytes), so each hash can be checked with any
//! SHA-256 tool. [`sha256sums`] writes the manifest in `sha256sum -c` form, with the pack
//! itself. Version 1 packs (before the PDF) still check.
//!
//! ```
//! use aftersale::evidence;
//! let sealed = evidence::seal(&[("report.json", serde_json::json!({"description": "not me"}))]);
//! evidence::check(&sealed.text).unwrap();
//! let pdf = evidence::file_bytes(&sealed.text, evidence::PDF_NAME).unwrap();
//! assert!(pdf.starts_with(b"%PDF-"));
//! ```

use base64::Engine;
use sha2::Digest;

/// The pack's format name.
pub const FORMAT: &str = "easypos-evidence-pack/2";
/// The format of packs sealed before the PDF, still checked.
pub const FORMAT_V1: &str = "easypos-evidence-pack/1";
/// The PDF's name in the pack.
pub const PDF_NAME: &str = "evidence.pdf";
/// How a binary file is written in `files`.
const BASE64: &str = "base64";

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A sealed pack: its text and that text's SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub text: String,
    pub sha256: String,
}

/// Seals `files` (name and JSON value, in order) and their PDF rendering ([`PDF_NAME`], last)
/// into a pack.
pub fn seal(files: &[(&str, serde_json::Value)]) -> Sealed {
    let mut manifest = Vec::new();
    let mut contents = serde_json::Map::new();
    let mut shown = Vec::new();
    for (name, value) in files {
        let text = serde_json::to_string_pretty(value).unwrap_or_default();
        let sha256 = sha256_hex(text.as_bytes());
        manifest.push(serde_json::json!({
            "name": name,
            "sha256": sha256,
            "bytes": text.len(),
        }));
        shown.push((*name, value, sha256, text.len()));
        contents.insert((*name).to_owned(), serde_json::Value::String(text));
    }
    let pdf = pdf(&shown);
    manifest.push(serde_json::json!({
        "name": PDF_NAME,
        "sha256": sha256_hex(&pdf),
        "bytes": pdf.len(),
        "encoding": BASE64,
    }));
    contents.insert(
        PDF_NAME.to_owned(),
        serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(&pdf)),
    );
    let pack = serde_json::json!({
        "format": FORMAT,
        "manifest": manifest,
        "files": contents,
    });
    let text = serde_json::to_string_pretty(&pack).unwrap_or_default();
    Sealed {
        sha256: sha256_hex(text.as_bytes()),
        text,
    }
}

/// The PDF rendering: a title, the files with their SHA-256, then each file's contents (a
/// list one entry per line, anything else as the file's text).
fn pdf(files: &[(&str, &serde_json::Value, String, usize)]) -> Vec<u8> {
    let mut lines = vec![
        // One font per string (crates/pdf): the English title and the Chinese apart.
        "EVIDENCE PACK - FRAUD REPORT".to_owned(),
        "证据包 (欺诈举报)".to_owned(),
        format!("format {FORMAT}"),
        String::new(),
        "The files of this pack and their SHA-256 (the JSON pack holds each file's exact text;"
            .to_owned(),
        "check them with any SHA-256 tool):".to_owned(),
    ];
    for (name, _, sha256, bytes) in files {
        lines.push(format!("  {sha256}  {name} ({bytes} bytes)"));
    }
    for (name, value, _, _) in files {
        lines.push(String::new());
        lines.push(format!("== {name}"));
        match value {
            serde_json::Value::Array(entries) if entries.is_empty() => {
                lines.push("(none)".to_owned());
            }
            serde_json::Value::Array(entries) => {
                for (n, entry) in entries.iter().enumerate() {
                    lines.push(format!("{}. {}", n + 1, entry));
                }
            }
            value => lines.extend(
                serde_json::to_string_pretty(value)
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_owned),
            ),
        }
    }
    crate::paper::a4_text("Evidence pack", &lines)
}

fn parse(pack: &str) -> Result<serde_json::Value, String> {
    let pack: serde_json::Value =
        serde_json::from_str(pack).map_err(|error| format!("not JSON: {error}"))?;
    if pack["format"] != FORMAT && pack["format"] != FORMAT_V1 {
        return Err(format!("not an {FORMAT}"));
    }
    Ok(pack)
}

fn manifest(pack: &serde_json::Value) -> Result<&Vec<serde_json::Value>, String> {
    pack["manifest"]
        .as_array()
        .ok_or_else(|| "the manifest is missing".to_owned())
}

/// The bytes of the file `name` as the manifest entry `entry` says it is written.
fn entry_bytes(pack: &serde_json::Value, entry: &serde_json::Value) -> Result<Vec<u8>, String> {
    let name = entry["name"]
        .as_str()
        .ok_or("a manifest entry has no name")?;
    let text = pack["files"]
        .get(name)
        .and_then(|text| text.as_str())
        .ok_or_else(|| format!("{name}: listed but missing"))?;
    match entry.get("encoding").and_then(|encoding| encoding.as_str()) {
        None => Ok(text.as_bytes().to_vec()),
        Some(BASE64) => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| format!("{name}: not base64")),
        Some(other) => Err(format!("{name}: unknown encoding {other:?}")),
    }
}

/// Checks a pack against its manifest: every file listed, present, of the length and SHA-256
/// the manifest gives, and no file unlisted. The error names the first file at fault.
pub fn check(pack: &str) -> Result<(), String> {
    let pack = parse(pack)?;
    let manifest = manifest(&pack)?;
    let files = pack["files"].as_object().ok_or("the files are missing")?;
    if manifest.len() != files.len() {
        return Err("the manifest and the files differ in number".into());
    }
    for entry in manifest {
        let bytes = entry_bytes(&pack, entry)?;
        let name = entry["name"].as_str().unwrap_or_default();
        if entry["bytes"].as_u64() != Some(bytes.len() as u64)
            || entry["sha256"].as_str() != Some(sha256_hex(&bytes).as_str())
        {
            return Err(format!("{name}: its SHA-256 does not match the manifest"));
        }
    }
    Ok(())
}

/// The file `name` of a checked pack, as bytes (the PDF decoded from base64).
pub fn file_bytes(pack: &str, name: &str) -> Result<Vec<u8>, String> {
    check(pack)?;
    let pack = parse(pack)?;
    let entry = manifest(&pack)?
        .iter()
        .find(|entry| entry["name"] == name)
        .ok_or_else(|| format!("the pack has no {name}"))?;
    entry_bytes(&pack, entry)
}

/// The manifest in the form `sha256sum -c` reads: one line per file of the pack, then the PDF
/// and the pack under their downloads' names (`pdf_name`, `pack_name`).
pub fn sha256sums(pack: &str, pack_name: &str, pdf_name: &str) -> Result<String, String> {
    let parsed = parse(pack)?;
    let mut out = String::new();
    let mut pdf = None;
    for entry in manifest(&parsed)? {
        let (Some(sha256), Some(name)) = (entry["sha256"].as_str(), entry["name"].as_str()) else {
            return Err("a manifest entry has no name or SHA-256".into());
        };
        out.push_str(&format!("{sha256}  {name}\n"));
        if name == PDF_NAME {
            pdf = Some(sha256.to_owned());
        }
    }
    if let Some(sha256) = pdf {
        out.push_str(&format!("{sha256}  {pdf_name}\n"));
    }
    out.push_str(&format!("{}  {pack_name}\n", sha256_hex(pack.as_bytes())));
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sealed() -> Sealed {
        seal(&[
            (
                "transaction.json",
                serde_json::json!({"rrn": "000000012345", "amount": "12.34", "merchant": "陆家嘴咖啡"}),
            ),
            (
                "timeline.json",
                serde_json::json!([{"state": "authorized"}, {"state": "reported-as-fraud"}]),
            ),
        ])
    }

    #[test]
    fn a_sealed_pack_checks_and_any_edit_is_found() {
        let sealed = sealed();
        assert_eq!(sealed.sha256, sha256_hex(sealed.text.as_bytes()));
        check(&sealed.text).unwrap();
        let pack: serde_json::Value = serde_json::from_str(&sealed.text).unwrap();
        assert_eq!(pack["format"], FORMAT);
        assert_eq!(pack["manifest"][0]["name"], "transaction.json");
        assert_eq!(
            pack["manifest"][0]["sha256"],
            sha256_hex(
                pack["files"]["transaction.json"]
                    .as_str()
                    .unwrap()
                    .as_bytes()
            )
        );

        let edited = sealed.text.replace("12.34", "1.34");
        assert!(check(&edited).unwrap_err().starts_with("transaction.json"));
        let mut dropped: serde_json::Value = serde_json::from_str(&sealed.text).unwrap();
        dropped["files"]
            .as_object_mut()
            .unwrap()
            .remove("timeline.json");
        assert!(check(&dropped.to_string()).is_err());
    }

    #[test]
    fn the_pdf_is_in_the_pack_its_hash_in_the_manifest_and_an_altered_pdf_is_found() {
        let sealed = sealed();
        let pack: serde_json::Value = serde_json::from_str(&sealed.text).unwrap();
        let last = &pack["manifest"][2];
        assert_eq!(
            (last["name"].as_str(), last["encoding"].as_str()),
            (Some(PDF_NAME), Some("base64"))
        );
        let pdf = file_bytes(&sealed.text, PDF_NAME).unwrap();
        assert!(pdf.starts_with(b"%PDF-1.4"));
        assert_eq!(last["sha256"], sha256_hex(&pdf));
        assert_eq!(last["bytes"], pdf.len());
        // The PDF shows each file's hash and the contents (a list one entry per line).
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains(pack["manifest"][0]["sha256"].as_str().unwrap()));
        assert!(text.contains("reported-as-fraud"));
        assert!(
            text.contains(pdf::CJK_FONT_NAME),
            "the merchant's Chinese name embeds the font"
        );

        // A PDF replaced by another (valid base64, other bytes) no longer checks.
        let mut swapped = pack.clone();
        swapped["files"][PDF_NAME] = serde_json::Value::String(
            base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 forged"),
        );
        assert_eq!(
            check(&swapped.to_string()).unwrap_err(),
            "evidence.pdf: its SHA-256 does not match the manifest"
        );
        let mut garbled = pack;
        garbled["files"][PDF_NAME] = serde_json::Value::String("not base64!".into());
        assert_eq!(
            check(&garbled.to_string()).unwrap_err(),
            "evidence.pdf: not base64"
        );
    }

    #[test]
    fn the_sha256sums_manifest_lists_every_file_the_pdf_and_the_pack() {
        let sealed = sealed();
        let sums = sha256sums(&sealed.text, "evidence-fr_1.json", "evidence-fr_1.pdf").unwrap();
        let lines: Vec<&str> = sums.lines().collect();
        let names: Vec<&str> = lines.iter().map(|line| &line[66..]).collect();
        assert_eq!(
            names,
            [
                "transaction.json",
                "timeline.json",
                "evidence.pdf",
                "evidence-fr_1.pdf",
                "evidence-fr_1.json"
            ]
        );
        assert_eq!(lines[4], format!("{}  evidence-fr_1.json", sealed.sha256));
        assert_eq!(lines[2][..64], lines[3][..64]);
        let pdf = file_bytes(&sealed.text, PDF_NAME).unwrap();
        assert_eq!(&lines[3][..64], sha256_hex(&pdf));
    }

    #[test]
    fn a_version_1_pack_still_checks() {
        let text = "{\"a\": 1}";
        let pack = serde_json::json!({
            "format": FORMAT_V1,
            "manifest": [{"name": "a.json", "sha256": sha256_hex(text.as_bytes()), "bytes": text.len()}],
            "files": {"a.json": text},
        });
        check(&pack.to_string()).unwrap();
        assert_eq!(
            file_bytes(&pack.to_string(), PDF_NAME).unwrap_err(),
            "the pack has no evidence.pdf"
        );
    }
}
