//! Evidence packs (R10, R17, R18): what a cardholder hands the police or a lawyer about a
//! transaction they report as fraud — each part a JSON file, each file's SHA-256 in a
//! manifest, and the SHA-256 of the whole pack kept with the report, so that any later change
//! shows (pure: the caller gathers the parts).
//!
//! The pack is one JSON document:
//!
//! ```json
//! {"format": "easypos-evidence-pack/1",
//!  "manifest": [{"name": "transaction.json", "sha256": "…", "bytes": 412}, …],
//!  "files": {"transaction.json": "{…}", …}}
//! ```
//!
//! `files` holds each file's exact text, so its hash can be checked with any SHA-256 tool.
//! A PDF rendering comes with the shared PDF writer.

use sha2::Digest;

/// The pack's format name.
pub const FORMAT: &str = "easypos-evidence-pack/1";

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A sealed pack: its text and that text's SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub text: String,
    pub sha256: String,
}

/// Seals `files` (name and JSON value, in order) into a pack.
pub fn seal(files: &[(&str, serde_json::Value)]) -> Sealed {
    let mut manifest = Vec::new();
    let mut contents = serde_json::Map::new();
    for (name, value) in files {
        let text = serde_json::to_string_pretty(value).unwrap_or_default();
        manifest.push(serde_json::json!({
            "name": name,
            "sha256": sha256_hex(text.as_bytes()),
            "bytes": text.len(),
        }));
        contents.insert((*name).to_owned(), serde_json::Value::String(text));
    }
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

/// Checks a pack against its manifest: every file listed, present, of the length and SHA-256
/// the manifest gives, and no file unlisted. The error names the first file at fault.
pub fn check(pack: &str) -> Result<(), String> {
    let pack: serde_json::Value =
        serde_json::from_str(pack).map_err(|error| format!("not JSON: {error}"))?;
    if pack["format"] != FORMAT {
        return Err(format!("not an {FORMAT}"));
    }
    let manifest = pack["manifest"]
        .as_array()
        .ok_or("the manifest is missing")?;
    let files = pack["files"].as_object().ok_or("the files are missing")?;
    if manifest.len() != files.len() {
        return Err("the manifest and the files differ in number".into());
    }
    for entry in manifest {
        let name = entry["name"]
            .as_str()
            .ok_or("a manifest entry has no name")?;
        let text = files
            .get(name)
            .and_then(|text| text.as_str())
            .ok_or_else(|| format!("{name}: listed but missing"))?;
        if entry["bytes"].as_u64() != Some(text.len() as u64)
            || entry["sha256"].as_str() != Some(sha256_hex(text.as_bytes()).as_str())
        {
            return Err(format!("{name}: its SHA-256 does not match the manifest"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_sealed_pack_checks_and_any_edit_is_found() {
        let sealed = seal(&[
            (
                "transaction.json",
                serde_json::json!({"rrn": "000000012345", "amount": "12.34"}),
            ),
            (
                "timeline.json",
                serde_json::json!([{"state": "authorized"}]),
            ),
        ]);
        assert_eq!(sealed.sha256, sha256_hex(sealed.text.as_bytes()));
        check(&sealed.text).unwrap();
        let pack: serde_json::Value = serde_json::from_str(&sealed.text).unwrap();
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
}
