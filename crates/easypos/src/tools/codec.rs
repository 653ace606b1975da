//! Codec calculators (issue 4): ISO 8583, EMV TLV and EMVCo QR.
//!
//! `decode` tools mask card data (PAN, track, PIN block, card objects in DE55) unless
//! `--unmasked` is given; their `--json` output is what the matching `encode` tool reads.

use super::{Report, hex_arg};
use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use iso8583::{LengthPrefix, Message, Mti, Profile, Tpdu, dump};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::collections::BTreeMap;

#[derive(Debug, Subcommand)]
pub enum CodecTool {
    /// ISO 8583 messages: decode to fields (masked) or encode from JSON.
    #[command(subcommand)]
    Iso8583(IsoAction),
    /// EMV BER-TLV (e.g. field 55): decode to a tree or encode from JSON.
    #[command(subcommand)]
    Tlv(TlvAction),
    /// EMVCo merchant-presented QR payloads: decode, encode, verify the CRC.
    #[command(subcommand)]
    Qr(QrAction),
}

#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// A built-in profile: iso87-ascii or cup-bcd.
    #[arg(long, conflicts_with = "spec")]
    profile: Option<String>,
    /// A spec file (TOML, or JSON when the name ends in .json) with the field table.
    #[arg(long)]
    spec: Option<std::path::PathBuf>,
    /// The message starts (decode) or should start (encode) with a length prefix.
    #[arg(long, value_enum)]
    frame: Option<Frame>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Frame {
    /// 2-byte big-endian binary length.
    Binary2,
    /// 4 ASCII digits.
    Ascii4,
}

#[derive(Debug, Subcommand)]
pub enum IsoAction {
    /// Unpack a message given as hex (or a raw file) and show its fields.
    Decode {
        #[command(flatten)]
        profile: ProfileArgs,
        /// The message in hex (omit when using --file).
        #[arg(required_unless_present = "file")]
        hex: Option<String>,
        /// Read the raw message bytes from this file instead.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// Show card data in the clear (for round trips through `encode`).
        #[arg(long)]
        unmasked: bool,
    },
    /// Pack a message from JSON: {"mti": "0200", "tpdu": "6000030000", "header": "...",
    /// "fields": {"2": "...", "55": "<hex>"}} (binary fields in hex).
    Encode {
        #[command(flatten)]
        profile: ProfileArgs,
        /// The JSON message (omit when using --file).
        #[arg(required_unless_present = "file")]
        message: Option<String>,
        /// Read the JSON from this file instead.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TlvAction {
    /// Parse BER-TLV hex strictly and show each object with its dictionary name.
    Decode {
        /// The TLV bytes in hex.
        hex: String,
        /// Show card data objects (5A, 57, ...) in the clear.
        #[arg(long)]
        unmasked: bool,
    },
    /// Build BER-TLV from JSON: [{"tag": "9F26", "value": "<hex>"}, {"tag": "70", "children": [...]}].
    Encode {
        /// The JSON list of objects.
        objects: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum QrAction {
    /// Parse and check a merchant-presented payload.
    Decode {
        /// The payload text.
        payload: String,
    },
    /// Build a payload (with CRC) from JSON, the shape `qr decode --json` prints under "qr".
    Encode {
        /// The JSON description of the merchant QR.
        qr: String,
    },
    /// Check a payload's structure and CRC only.
    Verify {
        /// The payload text.
        payload: String,
    },
}

pub fn run(tool: CodecTool) -> anyhow::Result<Report> {
    match tool {
        CodecTool::Iso8583(IsoAction::Decode {
            profile,
            hex,
            file,
            unmasked,
        }) => iso_decode(&profile, hex.as_deref(), file.as_deref(), unmasked),
        CodecTool::Iso8583(IsoAction::Encode {
            profile,
            message,
            file,
        }) => iso_encode(&profile, message.as_deref(), file.as_deref()),
        CodecTool::Tlv(TlvAction::Decode { hex, unmasked }) => tlv_decode(&hex, unmasked),
        CodecTool::Tlv(TlvAction::Encode { objects }) => tlv_encode(&objects),
        CodecTool::Qr(QrAction::Decode { payload }) => qr_decode(&payload),
        CodecTool::Qr(QrAction::Encode { qr }) => qr_encode(&qr),
        CodecTool::Qr(QrAction::Verify { payload }) => qr_verify(&payload),
    }
}

// ---------------------------------------------------------------- ISO 8583

enum LoadedProfile {
    Builtin(&'static Profile),
    Owned(Box<Profile>),
}

impl LoadedProfile {
    fn get(&self) -> &Profile {
        match self {
            LoadedProfile::Builtin(profile) => profile,
            LoadedProfile::Owned(profile) => profile,
        }
    }
}

fn load_profile(args: &ProfileArgs) -> anyhow::Result<LoadedProfile> {
    match (&args.profile, &args.spec) {
        (Some(name), None) => Ok(LoadedProfile::Builtin(
            Profile::builtin(name).map_err(|error| anyhow!("--profile: {error}"))?,
        )),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--spec: cannot read {}", path.display()))?;
            let is_json = path
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
            let loaded = if is_json {
                Profile::from_json(&text)
            } else {
                Profile::from_toml(&text)
            };
            Ok(LoadedProfile::Owned(Box::new(loaded.map_err(|error| {
                anyhow!("--spec {}: {error}", path.display())
            })?)))
        }
        _ => bail!("give exactly one of --profile NAME (iso87-ascii, cup-bcd) or --spec FILE"),
    }
}

fn length_prefix(frame: Option<Frame>) -> Option<LengthPrefix> {
    frame.map(|frame| match frame {
        Frame::Binary2 => LengthPrefix::Binary2,
        Frame::Ascii4 => LengthPrefix::Ascii4,
    })
}

fn read_input(
    hex: Option<&str>,
    file: Option<&std::path::Path>,
    name: &str,
) -> anyhow::Result<Vec<u8>> {
    match (hex, file) {
        (_, Some(path)) => {
            std::fs::read(path).with_context(|| format!("--file: cannot read {}", path.display()))
        }
        (Some(text), None) => hex_arg(name, &text.split_whitespace().collect::<String>()),
        (None, None) => bail!("give the {name} in hex or --file PATH"),
    }
}

fn unframe(bytes: &[u8], frame: Option<Frame>) -> anyhow::Result<&[u8]> {
    let Some(prefix) = length_prefix(frame) else {
        return Ok(bytes);
    };
    let (payload, used) = prefix
        .split(bytes)
        .map_err(|error| anyhow!("--frame: {error}"))?
        .ok_or_else(|| anyhow!("--frame: the input is shorter than its length prefix announces"))?;
    if used != bytes.len() {
        bail!(
            "--frame: {} bytes follow the framed message",
            bytes.len() - used
        );
    }
    Ok(payload)
}

fn iso_decode(
    args: &ProfileArgs,
    hex: Option<&str>,
    file: Option<&std::path::Path>,
    unmasked: bool,
) -> anyhow::Result<Report> {
    let loaded = load_profile(args)?;
    let profile = loaded.get();
    let input = read_input(hex, file, "hex")?;
    let bytes = unframe(&input, args.frame)?;
    let message = profile
        .unpack(bytes)
        .map_err(|error| anyhow!("message: {error}"))?;
    let mut fields = Map::new();
    for (number, value) in message.iter() {
        let Some(spec) = profile.field(number) else {
            continue;
        };
        let text = if unmasked {
            dump::clear_text(spec, value)
        } else {
            dump::masked_text(spec, value)
        };
        fields.insert(format!("{number:03}"), Value::String(text));
    }
    let mut report = Report::new()
        .field("profile", profile.name.as_str())
        .field("mti", message.mti.as_str())
        .field("mti_meaning", message.mti.describe());
    if let Some(tpdu) = message.tpdu {
        report = report.field("tpdu", hex::encode_upper(tpdu.to_bytes()));
    }
    if profile.header_len > 0 {
        report = report.field("header", hex::encode_upper(&message.header));
    }
    Ok(report
        .field("bitmap", bitmap_hex(&message))
        .field("fields", Value::Object(fields))
        .field("masked", !unmasked)
        .field("dump", format!("\n{}", profile.dump(&message))))
}

fn bitmap_hex(message: &Message<'_>) -> String {
    let bitmap = message.bitmap();
    let mut text = hex::encode_upper(bitmap.primary_bytes());
    if bitmap.needs_secondary() {
        text.push_str(&hex::encode_upper(bitmap.secondary_bytes()));
    }
    text
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageJson {
    mti: String,
    #[serde(default)]
    tpdu: Option<String>,
    #[serde(default)]
    header: Option<String>,
    fields: BTreeMap<String, String>,
    #[serde(default)]
    masked: Option<bool>,
    // Accepted and ignored so `decode --json --unmasked` output can be fed back unchanged.
    #[serde(default, rename = "profile")]
    _profile: Option<IgnoredAny>,
    #[serde(default, rename = "mti_meaning")]
    _mti_meaning: Option<IgnoredAny>,
    #[serde(default, rename = "bitmap")]
    _bitmap: Option<IgnoredAny>,
    #[serde(default, rename = "dump")]
    _dump: Option<IgnoredAny>,
}

fn read_text(
    inline: Option<&str>,
    file: Option<&std::path::Path>,
    name: &str,
) -> anyhow::Result<String> {
    match (inline, file) {
        (_, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("--file: cannot read {}", path.display())),
        (Some(text), None) => Ok(text.to_owned()),
        (None, None) => bail!("give the {name} or --file PATH"),
    }
}

fn iso_encode(
    args: &ProfileArgs,
    inline: Option<&str>,
    file: Option<&std::path::Path>,
) -> anyhow::Result<Report> {
    let loaded = load_profile(args)?;
    let profile = loaded.get();
    let text = read_text(inline, file, "JSON message")?;
    let input: MessageJson =
        serde_json::from_str(&text).map_err(|error| anyhow!("message JSON: {error}"))?;
    if input.masked == Some(true) {
        bail!(
            "message JSON: these fields were masked by `decode`; decode with --unmasked to re-encode"
        );
    }
    let mti = Mti::parse(&input.mti).map_err(|error| anyhow!("mti: {error}"))?;
    let mut message = Message::new(mti);
    if let Some(tpdu) = &input.tpdu {
        message.tpdu =
            Some(Tpdu::parse(&hex_arg("tpdu", tpdu)?).map_err(|error| anyhow!("tpdu: {error}"))?);
    }
    if let Some(header) = &input.header {
        message.header = Cow::Owned(hex_arg("header", header)?);
    }
    for (key, value) in &input.fields {
        let number: u8 = key
            .parse()
            .ok()
            .filter(|n| (2..=128).contains(n))
            .ok_or_else(|| anyhow!("fields: {key:?} is not a field number 2-128"))?;
        let spec = profile
            .field(number)
            .ok_or_else(|| anyhow!("fields: field {number} is not in profile {}", profile.name))?;
        if spec.kind == iso8583::spec::Kind::B {
            message.set_bytes(number, hex_arg(&format!("fields.{number}"), value)?);
        } else {
            message.set_text(number, value.clone());
        }
    }
    let packed = profile
        .pack(&message)
        .map_err(|error| anyhow!("message: {error}"))?;
    let wire = match length_prefix(args.frame) {
        Some(prefix) => prefix
            .frame(&packed)
            .map_err(|error| anyhow!("--frame: {error}"))?,
        None => packed,
    };
    Ok(Report::new()
        .field("profile", profile.name.as_str())
        .field("mti", message.mti.as_str())
        .field("bitmap", bitmap_hex(&message))
        .field("length", wire.len())
        .field("hex", hex::encode_upper(&wire)))
}

// ---------------------------------------------------------------- TLV

fn tlv_json(nodes: &[emv::Node<'_>], unmasked: bool) -> Value {
    Value::Array(
        nodes
            .iter()
            .map(|node| {
                let tag = node.tlv.tag;
                let name = emv::dict::lookup(tag).map_or("(not in dictionary)", |info| info.name);
                let mut object =
                    json!({ "tag": tag.to_string(), "name": name, "length": node.tlv.value.len() });
                if node.children.is_empty() {
                    let value = if unmasked {
                        hex::encode_upper(node.tlv.value)
                    } else {
                        emv::display_value(tag, node.tlv.value)
                    };
                    object["value"] = Value::String(value);
                } else {
                    object["children"] = tlv_json(&node.children, unmasked);
                }
                object
            })
            .collect(),
    )
}

fn tlv_lines(nodes: &[emv::Node<'_>], depth: usize, unmasked: bool, out: &mut String) {
    for node in nodes {
        let tag = node.tlv.tag;
        let name = emv::dict::lookup(tag).map_or("(not in dictionary)", |info| info.name);
        let indent = "  ".repeat(depth);
        if node.children.is_empty() {
            let value = if unmasked {
                hex::encode_upper(node.tlv.value)
            } else {
                emv::display_value(tag, node.tlv.value)
            };
            out.push_str(&format!(
                "{indent}{:<6} {name:<40} {value}\n",
                tag.to_string()
            ));
        } else {
            out.push_str(&format!("{indent}{:<6} {name}\n", tag.to_string()));
            tlv_lines(&node.children, depth + 1, unmasked, out);
        }
    }
}

fn tlv_decode(hex_text: &str, unmasked: bool) -> anyhow::Result<Report> {
    let bytes = hex_arg("hex", hex_text)?;
    let tree = emv::tlv::parse_tree(&bytes).map_err(|error| anyhow!("TLV: {error}"))?;
    let mut text = String::from("\n");
    tlv_lines(&tree, 0, unmasked, &mut text);
    Ok(Report::new()
        .field("length", bytes.len())
        .field("objects", tlv_json(&tree, unmasked))
        .field("masked", !unmasked)
        .field("tree", text))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlvJson {
    tag: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    children: Option<Vec<TlvJson>>,
    // Printed by `tlv decode --json`; ignored on input.
    #[serde(default, rename = "name")]
    _name: Option<IgnoredAny>,
    #[serde(default, rename = "length")]
    _length: Option<IgnoredAny>,
}

fn encode_tlv_list(objects: &[TlvJson], path: &str, out: &mut Vec<u8>) -> anyhow::Result<()> {
    for (index, object) in objects.iter().enumerate() {
        let here = format!("{path}[{index}]");
        let tag_bytes = hex_arg(&format!("{here}.tag"), &object.tag)?;
        if tag_bytes.is_empty() || tag_bytes.len() > emv::tlv::MAX_TAG_LEN {
            bail!("{here}.tag: a tag is 1-{} bytes", emv::tlv::MAX_TAG_LEN);
        }
        let tag = emv::Tag(
            tag_bytes
                .iter()
                .fold(0u32, |acc, &byte| (acc << 8) | u32::from(byte)),
        );
        let value = match (&object.value, &object.children) {
            (Some(value), None) => hex_arg(&format!("{here}.value"), value)?,
            (None, Some(children)) => {
                let mut inner = Vec::new();
                encode_tlv_list(children, &format!("{here}.children"), &mut inner)?;
                inner
            }
            _ => bail!("{here}: give either \"value\" (hex) or \"children\""),
        };
        emv::tlv::write(tag, &value, out).map_err(|error| anyhow!("{here}: {error}"))?;
    }
    Ok(())
}

fn tlv_encode(text: &str) -> anyhow::Result<Report> {
    let objects: Vec<TlvJson> =
        serde_json::from_str(text).map_err(|error| anyhow!("objects JSON: {error}"))?;
    let mut out = Vec::new();
    encode_tlv_list(&objects, "objects", &mut out)?;
    Ok(Report::new()
        .field("length", out.len())
        .field("hex", hex::encode_upper(out)))
}

// ---------------------------------------------------------------- QR

fn objects_json(objects: &[emvqr::DataObject]) -> Value {
    Value::Object(
        objects
            .iter()
            .map(|object| {
                (
                    format!("{:02}", object.id),
                    Value::String(object.value.clone()),
                )
            })
            .collect(),
    )
}

fn qr_json(qr: &emvqr::MerchantQr) -> Value {
    let accounts: Vec<Value> = qr
        .accounts
        .iter()
        .map(|account| {
            if account.id <= 25 {
                json!({ "id": account.id, "value": account.value })
            } else {
                json!({ "id": account.id, "fields": objects_json(&account.fields) })
            }
        })
        .collect();
    let mut out = json!({
        "initiation": match qr.initiation {
            Some(emvqr::Initiation::Static) => "static",
            Some(emvqr::Initiation::Dynamic) => "dynamic",
            None => "unspecified",
        },
        "accounts": accounts,
        "mcc": qr.mcc,
        "currency": qr.currency,
        "country": qr.country,
        "name": qr.name,
        "city": qr.city,
    });
    let optional = [
        ("amount", &qr.amount),
        ("tip_indicator", &qr.tip_indicator),
        ("convenience_fee_fixed", &qr.convenience_fee_fixed),
        ("convenience_fee_percentage", &qr.convenience_fee_percentage),
        ("postal_code", &qr.postal_code),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            out[key] = Value::String(value.clone());
        }
    }
    if !qr.additional.is_empty() {
        out["additional"] = objects_json(&qr.additional);
    }
    if let Some(language) = &qr.language {
        out["language"] =
            json!({ "language": language.language, "name": language.name, "city": language.city });
    }
    if !qr.other.is_empty() {
        let other: Vec<Value> = qr
            .other
            .iter()
            .map(|object| json!({ "id": object.id, "value": object.value, "fields": objects_json(&object.children) }))
            .collect();
        out["other"] = Value::Array(other);
    }
    out
}

fn qr_decode(payload: &str) -> anyhow::Result<Report> {
    let qr = emvqr::MerchantQr::parse(payload).map_err(|error| anyhow!("payload: {error}"))?;
    let crc = &payload[payload.len() - 4..];
    Ok(Report::new()
        .field("valid", true)
        .field("crc", crc.to_ascii_uppercase())
        .field("kind", if qr.is_dynamic() { "dynamic" } else { "static" })
        .field("characters", payload.chars().count())
        .field("qr", qr_json(&qr)))
}

fn qr_verify(payload: &str) -> anyhow::Result<Report> {
    emvqr::MerchantQr::parse(payload).map_err(|error| anyhow!("payload: {error}"))?;
    Ok(Report::new()
        .field("valid", true)
        .field("crc", payload[payload.len() - 4..].to_ascii_uppercase()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountJson {
    id: u8,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LanguageJson {
    language: String,
    name: String,
    #[serde(default)]
    city: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OtherJson {
    id: u8,
    #[serde(default)]
    value: String,
    #[serde(default)]
    fields: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QrJson {
    #[serde(default)]
    initiation: Option<String>,
    accounts: Vec<AccountJson>,
    mcc: String,
    currency: String,
    country: String,
    name: String,
    city: String,
    #[serde(default)]
    amount: Option<String>,
    #[serde(default)]
    tip_indicator: Option<String>,
    #[serde(default)]
    convenience_fee_fixed: Option<String>,
    #[serde(default)]
    convenience_fee_percentage: Option<String>,
    #[serde(default)]
    postal_code: Option<String>,
    #[serde(default)]
    additional: BTreeMap<String, String>,
    #[serde(default)]
    language: Option<LanguageJson>,
    #[serde(default)]
    other: Vec<OtherJson>,
}

fn objects_from(
    map: &BTreeMap<String, String>,
    path: &str,
) -> anyhow::Result<Vec<emvqr::DataObject>> {
    map.iter()
        .map(|(key, value)| {
            let id: u8 = key
                .parse()
                .ok()
                .filter(|id| *id <= 99)
                .ok_or_else(|| anyhow!("{path}: {key:?} is not an ID 00-99"))?;
            Ok(emvqr::DataObject::primitive(id, value.clone()))
        })
        .collect()
}

fn qr_from_json(input: QrJson) -> anyhow::Result<emvqr::MerchantQr> {
    let initiation = match input.initiation.as_deref() {
        None | Some("unspecified") => None,
        Some("static") => Some(emvqr::Initiation::Static),
        Some("dynamic") => Some(emvqr::Initiation::Dynamic),
        Some(other) => bail!("initiation: {other:?} is not static, dynamic or unspecified"),
    };
    let mut accounts = Vec::new();
    for account in &input.accounts {
        accounts.push(emvqr::MerchantAccount {
            id: account.id,
            value: account.value.clone().unwrap_or_default(),
            fields: objects_from(&account.fields, &format!("accounts.{}", account.id))?,
        });
    }
    let mut other = Vec::new();
    for object in &input.other {
        other.push(emvqr::DataObject {
            id: object.id,
            value: object.value.clone(),
            children: objects_from(&object.fields, &format!("other.{}", object.id))?,
        });
    }
    Ok(emvqr::MerchantQr {
        initiation,
        accounts,
        mcc: input.mcc,
        currency: input.currency,
        amount: input.amount,
        tip_indicator: input.tip_indicator,
        convenience_fee_fixed: input.convenience_fee_fixed,
        convenience_fee_percentage: input.convenience_fee_percentage,
        country: input.country,
        name: input.name,
        city: input.city,
        postal_code: input.postal_code,
        additional: objects_from(&input.additional, "additional")?,
        language: input.language.map(|language| emvqr::mpm::LanguageTemplate {
            language: language.language,
            name: language.name,
            city: language.city,
        }),
        other,
    })
}

fn qr_encode(text: &str) -> anyhow::Result<Report> {
    let input: QrJson = serde_json::from_str(text).map_err(|error| anyhow!("QR JSON: {error}"))?;
    let qr = qr_from_json(input)?;
    let payload = qr.encode().map_err(|error| anyhow!("QR: {error}"))?;
    Ok(Report::new()
        .field("crc", payload[payload.len() - 4..].to_owned())
        .field("characters", payload.chars().count())
        .field("payload", payload))
}
