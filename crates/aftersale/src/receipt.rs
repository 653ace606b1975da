//! The receipt statement and its QR payload (pure: no I/O, no clock).
//!
//! A payload is one line of printable ASCII, fields separated by `|`:
//!
//! ```text
//! EPR1|000000012345|10000001|898310058120001|621234******0003|1234|CNY|1764000000|654321|0a1b2c3d|<signature>
//! ```
//!
//! `EPR1` (easypos receipt, version 1), RRN (12 letters or digits), terminal id (8), merchant id
//! (15), the masked card number (first 6, stars, last 4; 13 to 19 characters), the amount in
//! minor units (no leading zero), the ISO 4217 alphabetic currency, the acquirer's time of the
//! approval in Unix seconds, the auth code (6), the signing key's id (8 lowercase hex digits),
//! and the Ed25519 signature (RFC 8032) in unpadded base64url (86 characters) of every byte
//! before the last `|`. Every field has one spelling, so a payload that parses is re-encoded
//! byte for byte, and any change either fails to parse or fails the signature.
//!
//! A busy host signs its approvals in batches (version 2): one signature over the root of a
//! Merkle tree of up to [`MAX_BATCH`] statements, and each receipt carries the path from its
//! statement to that root:
//!
//! ```text
//! EPR2|000000012345|10000001|898310058120001|621234******0003|1234|CNY|1764000000|654321|0a1b2c3d|<proof>|<signature>
//! ```
//!
//! The leaf is SHA-256 of a zero byte and the text up to the key id (`EPR2|…|0a1b2c3d`); a node
//! is SHA-256 of a one byte and its two children. The proof, in unpadded base64url, is one
//! byte with the number of steps (0 to [`MAX_PROOF_STEPS`]), one byte whose bit `i` says that
//! step `i`'s sibling is on the left, and the siblings (32 bytes each) from the leaf up. The
//! signature is Ed25519 of [`ROOT_DOMAIN`] followed by the 32-byte root. A batch of one is
//! signed as version 1.

use base64::Engine;
use sha2::{Digest, Sha256};

/// The payload's first field: easypos receipt, version 1.
pub const PAYLOAD_PREFIX: &str = "EPR1";
/// The first field of a receipt signed in a batch (version 2).
pub const BATCH_PAYLOAD_PREFIX: &str = "EPR2";
/// Most steps from a statement to its batch's root.
pub const MAX_PROOF_STEPS: usize = 4;
/// Most statements under one signature: 2^[`MAX_PROOF_STEPS`].
pub const MAX_BATCH: usize = 1 << MAX_PROOF_STEPS;
/// What precedes a batch's root in the signed message, so that no root's signature can pass
/// for a version 1 receipt's (whose text starts `EPR1|`) or a document's.
pub const ROOT_DOMAIN: &[u8] = b"EPR2 root\n";
/// Longest payload accepted: every field at its longest (19-digit card, 18-digit amount,
/// 11-digit time) and the longest proof. A QR code of this size is version 15 at error
/// correction M; a version 1 payload fits version 10.
pub const MAX_PAYLOAD_CHARS: usize =
    4 + 12 + 8 + 15 + 19 + 18 + 3 + 11 + 6 + 8 + MAX_PROOF_CHARS + 86 + 11;

const SIGNATURE_CHARS: usize = 86;
/// base64url of 2 + 32 × [`MAX_PROOF_STEPS`] bytes, unpadded.
const MAX_PROOF_CHARS: usize = ((2 + 32 * MAX_PROOF_STEPS) * 4).div_ceil(3);

/// A statement's path to its batch's root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// Bit `i`: the sibling of step `i` is on the left.
    pub left: u8,
    /// From the leaf up.
    pub siblings: Vec<[u8; 32]>,
}

fn leaf_hash(text: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update([0]);
    hash.update(text.as_bytes());
    hash.finalize().into()
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update([1]);
    hash.update(left);
    hash.update(right);
    hash.finalize().into()
}

impl Proof {
    /// The root this proof leads to from the leaf of `text`.
    pub fn root(&self, text: &str) -> [u8; 32] {
        let mut node = leaf_hash(text);
        for (step, sibling) in self.siblings.iter().enumerate() {
            node = if self.left >> step & 1 == 1 {
                node_hash(sibling, &node)
            } else {
                node_hash(&node, sibling)
            };
        }
        node
    }

    fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(2 + 32 * self.siblings.len());
        bytes.push(self.siblings.len() as u8);
        bytes.push(self.left);
        for sibling in &self.siblings {
            bytes.extend_from_slice(sibling);
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn decode(text: &str) -> Result<Proof, Malformed> {
        let malformed = Malformed(
            "the proof must be base64url: a step count up to 4, the sides, and 32 bytes a step",
        );
        if text.len() > MAX_PROOF_CHARS {
            return Err(malformed);
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| malformed)?;
        let [steps, left, siblings @ ..] = bytes.as_slice() else {
            return Err(malformed);
        };
        let steps = usize::from(*steps);
        if steps > MAX_PROOF_STEPS || siblings.len() != 32 * steps || left >> steps != 0 {
            return Err(malformed);
        }
        Ok(Proof {
            left: *left,
            siblings: siblings
                .chunks_exact(32)
                .map(|chunk| {
                    let mut sibling = [0; 32];
                    sibling.copy_from_slice(chunk);
                    sibling
                })
                .collect(),
        })
    }
}

/// The Merkle tree over a batch's statement texts (at most [`MAX_BATCH`]): its root, and each
/// text's proof. A node without a sibling at its level is carried up unchanged.
pub fn batch_tree(texts: &[String]) -> ([u8; 32], Vec<Proof>) {
    let mut proofs: Vec<Proof> = texts
        .iter()
        .map(|_| Proof {
            left: 0,
            siblings: Vec::new(),
        })
        .collect();
    // Which node of the current level each leaf is under.
    let mut positions: Vec<usize> = (0..texts.len()).collect();
    let mut level: Vec<[u8; 32]> = texts.iter().map(|text| leaf_hash(text)).collect();
    while level.len() > 1 {
        for (proof, position) in proofs.iter_mut().zip(positions.iter_mut()) {
            let sibling = *position ^ 1;
            if let Some(hash) = level.get(sibling) {
                if sibling < *position {
                    proof.left |= 1 << proof.siblings.len();
                }
                proof.siblings.push(*hash);
            }
            *position /= 2;
        }
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => node_hash(left, right),
                [alone] => *alone,
                _ => unreachable!("chunks of two"),
            })
            .collect();
    }
    (level.first().copied().unwrap_or([0; 32]), proofs)
}

/// The message a batch's signature covers.
pub fn root_message(root: &[u8; 32]) -> Vec<u8> {
    [ROOT_DOMAIN, root.as_slice()].concat()
}

/// What the acquirer signs about an approved sale. The card is masked before it gets here.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Statement {
    /// Retrieval reference number (field 37).
    pub rrn: String,
    /// Field 41.
    pub terminal_id: String,
    /// Field 42.
    pub merchant_id: String,
    /// First 6 and last 4 digits, stars between.
    pub card: String,
    pub amount_minor: i64,
    /// ISO 4217 alphabetic code.
    pub currency: String,
    /// When the acquirer approved it, Unix seconds.
    pub time: i64,
    /// Field 38.
    pub auth_code: String,
    /// The signing key's id.
    pub key_id: String,
}

/// Why a payload is not a well-formed statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub &'static str);

fn alphanumeric(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|byte| byte.is_ascii_alphanumeric())
}

fn canonical_number(text: &str, max_digits: usize) -> Option<i64> {
    let digits_only = !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    let no_leading_zero = text == "0" || !text.starts_with('0');
    if digits_only && no_leading_zero && text.len() <= max_digits {
        text.parse().ok()
    } else {
        None
    }
}

fn masked_card(text: &str) -> bool {
    let bytes = text.as_bytes();
    (13..=19).contains(&bytes.len())
        && bytes[..6].iter().all(u8::is_ascii_digit)
        && bytes[bytes.len() - 4..].iter().all(u8::is_ascii_digit)
        && bytes[6..bytes.len() - 4].iter().all(|byte| *byte == b'*')
}

impl Statement {
    /// Checks every field's form, naming the first that is wrong.
    pub fn check(&self) -> Result<(), Malformed> {
        if !alphanumeric(&self.rrn, 12) {
            return Err(Malformed("the RRN must be 12 letters or digits"));
        }
        if !alphanumeric(&self.terminal_id, 8) {
            return Err(Malformed("the terminal id must be 8 letters or digits"));
        }
        if !alphanumeric(&self.merchant_id, 15) {
            return Err(Malformed("the merchant id must be 15 letters or digits"));
        }
        if !masked_card(&self.card) {
            return Err(Malformed(
                "the card must be masked: first 6 digits, stars, last 4 digits",
            ));
        }
        if self.amount_minor <= 0 {
            return Err(Malformed("the amount must be positive"));
        }
        if money::Currency::from_alpha(&self.currency).is_err() {
            return Err(Malformed(
                "the currency is not an ISO 4217 code easypos knows",
            ));
        }
        if !(0..100_000_000_000).contains(&self.time) {
            return Err(Malformed("the time must be Unix seconds"));
        }
        if !alphanumeric(&self.auth_code, 6) {
            return Err(Malformed("the auth code must be 6 letters or digits"));
        }
        if self.key_id.len() != 8
            || !self
                .key_id
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
        {
            return Err(Malformed("the key id must be 8 lowercase hex digits"));
        }
        Ok(())
    }

    /// The bytes the acquirer signs: the payload up to its last `|`.
    pub fn signed_text(&self) -> String {
        self.text(PAYLOAD_PREFIX)
    }

    /// A batched statement's leaf text: its payload up to the key id.
    pub fn batch_text(&self) -> String {
        self.text(BATCH_PAYLOAD_PREFIX)
    }

    fn text(&self, prefix: &str) -> String {
        format!(
            "{prefix}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
            self.rrn,
            self.terminal_id,
            self.merchant_id,
            self.card,
            self.amount_minor,
            self.currency,
            self.time,
            self.auth_code,
            self.key_id
        )
    }

    /// The QR payload: the signed text, `|`, the signature in unpadded base64url.
    pub fn payload(&self, signature: &[u8; 64]) -> String {
        format!(
            "{}|{}",
            self.signed_text(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// The QR payload of a statement signed in a batch: its leaf text, `|`, its proof, `|`, the
    /// signature of the batch's root.
    pub fn batch_payload(&self, proof: &Proof, signature: &[u8; 64]) -> String {
        format!(
            "{}|{}|{}",
            self.batch_text(),
            proof.encode(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// The amount with its currency, e.g. `CNY 12.34`.
    pub fn amount_text(&self) -> String {
        money::Currency::from_alpha(&self.currency)
            .map(|currency| {
                format!(
                    "{} {}",
                    self.currency,
                    money::Amount::new(self.amount_minor, currency).format_major()
                )
            })
            .unwrap_or_else(|_| format!("{} {}", self.currency, self.amount_minor))
    }
}

/// A payload taken apart: the statement, its text (version 1: the exact bytes signed;
/// version 2: the leaf), the proof of a batched one, and the signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub statement: Statement,
    pub signed_text: String,
    pub proof: Option<Proof>,
    pub signature: [u8; 64],
}

impl Parsed {
    /// The message the signature must cover: the text itself (version 1), or the root the
    /// proof leads to (version 2).
    pub fn signed_message(&self) -> Vec<u8> {
        match &self.proof {
            None => self.signed_text.as_bytes().to_vec(),
            Some(proof) => root_message(&proof.root(&self.signed_text)),
        }
    }
}

/// Takes a payload apart (surrounding whitespace ignored), refusing anything that is not
/// exactly how [`Statement::payload`] writes it.
pub fn parse(payload: &str) -> Result<Parsed, Malformed> {
    let payload = payload.trim();
    if payload.len() > MAX_PAYLOAD_CHARS {
        return Err(Malformed("the payload is too long to be a receipt"));
    }
    let fields: Vec<&str> = payload.split('|').collect();
    let (fields, proof, signature) = match fields.as_slice() {
        [fields @ .., signature] if fields.first() == Some(&PAYLOAD_PREFIX) => {
            (fields, None, *signature)
        }
        [fields @ .., proof, signature] if fields.first() == Some(&BATCH_PAYLOAD_PREFIX) => {
            (fields, Some(Proof::decode(proof)?), *signature)
        }
        _ => {
            return Err(Malformed(
                "not an easypos receipt (it must start with EPR1| or EPR2|)",
            ));
        }
    };
    let [
        _prefix,
        rrn,
        terminal_id,
        merchant_id,
        card,
        amount,
        currency,
        time,
        auth_code,
        key_id,
    ] = fields
    else {
        return Err(Malformed(
            "a receipt payload has 11 fields separated by | (12 for EPR2), starting with EPR1 or EPR2",
        ));
    };
    let statement = Statement {
        rrn: (*rrn).to_owned(),
        terminal_id: (*terminal_id).to_owned(),
        merchant_id: (*merchant_id).to_owned(),
        card: (*card).to_owned(),
        amount_minor: canonical_number(amount, 18).ok_or(Malformed(
            "the amount must be minor units without leading zeros",
        ))?,
        currency: (*currency).to_owned(),
        time: canonical_number(time, 11).ok_or(Malformed(
            "the time must be Unix seconds without leading zeros",
        ))?,
        auth_code: (*auth_code).to_owned(),
        key_id: (*key_id).to_owned(),
    };
    statement.check()?;
    let malformed_signature = Malformed("the signature must be 86 base64url characters");
    if signature.len() != SIGNATURE_CHARS {
        return Err(malformed_signature);
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| malformed_signature)?;
    let signature: [u8; 64] = bytes.try_into().map_err(|_| malformed_signature)?;
    // One spelling per payload: what parsed must write back the same.
    let (signed_text, written) = match &proof {
        None => (statement.signed_text(), statement.payload(&signature)),
        Some(proof) => (
            statement.batch_text(),
            statement.batch_payload(proof, &signature),
        ),
    };
    if written != payload {
        return Err(Malformed("the payload is not in its canonical form"));
    }
    Ok(Parsed {
        statement,
        signed_text,
        proof,
        signature,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub(crate) fn sample() -> Statement {
        Statement {
            rrn: "000000012345".into(),
            terminal_id: "10000001".into(),
            merchant_id: "898310058120001".into(),
            card: "621234******0003".into(),
            amount_minor: 1234,
            currency: "CNY".into(),
            time: 1_764_000_000,
            auth_code: "654321".into(),
            key_id: "0a1b2c3d".into(),
        }
    }

    #[test]
    fn a_payload_round_trips_and_is_documented_as_written() {
        let payload = sample().payload(&[7; 64]);
        assert_eq!(
            payload,
            "EPR1|000000012345|10000001|898310058120001|621234******0003|1234|CNY|1764000000|654321|0a1b2c3d|BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBw"
        );
        assert!(payload.len() <= MAX_PAYLOAD_CHARS);
        let parsed = parse(&format!("  {payload}\n")).unwrap();
        assert_eq!(parsed.statement, sample());
        assert_eq!(parsed.signature, [7; 64]);
        assert_eq!(parsed.signed_text, payload[..payload.rfind('|').unwrap()]);
    }

    #[test]
    fn malformed_payloads_are_refused_with_the_field_at_fault() {
        let good = sample().payload(&[7; 64]);
        let cases = [
            (good.replacen("EPR1", "EPR3", 1), "must start with EPR1"),
            (good.replacen("EPR1", "EPR2", 1), "proof"),
            (good.replacen("|1234|", "|01234|", 1), "leading zeros"),
            (good.replacen("|1234|", "|0|", 1), "positive"),
            (
                good.replacen("621234******0003", "6212345678900003", 1),
                "masked",
            ),
            (good.replacen("|CNY|", "|XXX|", 1), "ISO 4217"),
            (good.replacen("0a1b2c3d", "0A1B2C3D", 1), "key id"),
            (good.replacen("|10000001|", "|1000001|", 1), "terminal id"),
            (format!("{good}|extra"), "11 fields"),
            (format!("EPR1|{good}"), "11 fields"),
            (good[..good.len() - 1].to_owned(), "86 base64url"),
            (format!("{}!", &good[..good.len() - 1]), "86 base64url"),
            // The last character carries 4 unused bits: another spelling of the same bytes.
            (format!("{}x", &good[..good.len() - 1]), "86 base64url"),
            ("x".repeat(MAX_PAYLOAD_CHARS + 1), "too long"),
        ];
        for (payload, why) in cases {
            let error = parse(&payload).unwrap_err();
            assert!(error.0.contains(why), "{payload}: {error} (wanted {why})");
        }
    }

    fn batch(size: usize) -> Vec<Statement> {
        (0..size)
            .map(|index| Statement {
                rrn: format!("{:012}", 12_345 + index),
                ..sample()
            })
            .collect()
    }

    #[test]
    fn every_statement_of_a_batch_leads_to_the_one_root() {
        for size in 1..=MAX_BATCH {
            let statements = batch(size);
            let texts: Vec<String> = statements.iter().map(Statement::batch_text).collect();
            let (root, proofs) = batch_tree(&texts);
            assert_eq!(proofs.len(), size);
            for (index, (text, proof)) in texts.iter().zip(&proofs).enumerate() {
                assert_eq!(proof.root(text), root, "leaf {index} of {size}");
                assert!(proof.siblings.len() <= MAX_PROOF_STEPS);
                // Another leaf's text does not reach the root by this path.
                let other = &texts[(index + 1) % size];
                if size > 1 {
                    assert_ne!(proof.root(other), root, "leaf {index} of {size}");
                }
            }
        }
        // A batch of two: each leaf's only sibling is the other leaf, on its own side.
        let texts: Vec<String> = batch(2).iter().map(Statement::batch_text).collect();
        let (_, proofs) = batch_tree(&texts);
        assert_eq!(proofs[0].left, 0);
        assert_eq!(proofs[1].left, 1);
        assert_eq!(proofs[0].siblings, vec![leaf_hash(&texts[1])]);
    }

    #[test]
    fn a_batched_payload_round_trips_and_its_message_is_the_root() {
        let statements = batch(5);
        let texts: Vec<String> = statements.iter().map(Statement::batch_text).collect();
        let (root, proofs) = batch_tree(&texts);
        let payload = statements[3].batch_payload(&proofs[3], &[9; 64]);
        assert!(payload.starts_with("EPR2|000000012348|"));
        assert!(payload.len() <= MAX_PAYLOAD_CHARS);
        let parsed = parse(&payload).unwrap();
        assert_eq!(parsed.statement, statements[3]);
        assert_eq!(parsed.proof.as_ref(), Some(&proofs[3]));
        assert_eq!(parsed.signed_message(), root_message(&root));
        assert!(root_message(&root).starts_with(b"EPR2 root\n"));
        // The longest payload: every field at its longest and a full proof.
        let longest = Statement {
            card: "621234*********0003".into(),
            amount_minor: 999_999_999_999_999_999,
            time: 99_999_999_999,
            ..sample()
        };
        let full = Proof {
            left: 0b1010,
            siblings: vec![[0xff; 32]; MAX_PROOF_STEPS],
        };
        let payload = longest.batch_payload(&full, &[0xff; 64]);
        assert_eq!(payload.len(), MAX_PAYLOAD_CHARS);
        assert_eq!(parse(&payload).unwrap().proof, Some(full));
    }

    #[test]
    fn malformed_proofs_are_refused() {
        let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let good = sample().batch_payload(
            &Proof {
                left: 1,
                siblings: vec![[3; 32]],
            },
            &[7; 64],
        );
        let with_proof = |proof: String| {
            let mut fields: Vec<&str> = good.split('|').collect();
            fields[10] = &proof;
            fields.join("|")
        };
        let mut five_steps = vec![5, 0];
        five_steps.extend([0; 160]);
        let mut long_tail = vec![1, 1];
        long_tail.extend([0; 33]);
        let cases = [
            with_proof(encode(&five_steps)),
            with_proof(encode(&[1, 0b10, 0, 0])),
            with_proof(encode(&long_tail)),
            with_proof(encode(&[0])),
            with_proof("!!!".into()),
            // A side bit beyond the proof's steps: another spelling of the same path.
            with_proof(encode(&[[1, 0b11].as_slice(), &[3; 32]].concat())),
            good.replacen("|EPR2", "|EPR1", 1)
                .replacen("EPR2|", "EPR1|", 1),
        ];
        for payload in cases {
            assert!(parse(&payload).is_err(), "{payload}");
        }
        assert!(parse(&good).is_ok());
    }
}
