#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `easypos tools iso8583|tlv|qr` through the real binary: outputs, round trips and errors.

use serde_json::Value;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_easypos"))
        .arg("tools")
        .args(args)
        .output()
        .unwrap()
}

fn ok_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let output = run(&all);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let output = run(args);
    assert!(!output.status.success(), "{args:?} should fail");
    assert!(output.stdout.is_empty());
    String::from_utf8(output.stderr).unwrap()
}

const SALE: &str = r#"{"mti":"0200","tpdu":"6000030000","header":"603100311000","fields":{
  "2":"6222021234567890123","3":"000000","4":"000000001000","11":"000042","22":"051","25":"00",
  "35":"6222021234567890123=28122011234567890","41":"TERM0001","42":"898310048990001","49":"156",
  "52":"1B9C1845EB993A7A","55":"9F2608A1B2C3D4E5F607089F360200015A0862220212345678909C0100",
  "60":"22000001000500"}}"#;

const EMVCO_SAMPLE: &str = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A";

#[test]
fn iso8583_encode_decode_encode_round_trips() {
    let encoded = ok_json(&["iso8583", "encode", "--profile", "cup-bcd", SALE]);
    let hex = encoded["hex"].as_str().unwrap();
    assert!(hex.starts_with("60000300006031003110000200"), "{hex}");
    assert_eq!(encoded["bitmap"], "7020048020C09210");
    let decoded = ok_json(&[
        "iso8583",
        "decode",
        "--profile",
        "cup-bcd",
        "--unmasked",
        hex,
    ]);
    assert_eq!(decoded["fields"]["002"], "6222021234567890123");
    assert_eq!(
        decoded["fields"]["055"],
        "9F2608A1B2C3D4E5F607089F360200015A0862220212345678909C0100"
    );
    let again = ok_json(&[
        "iso8583",
        "encode",
        "--profile",
        "cup-bcd",
        &decoded.to_string(),
    ]);
    assert_eq!(again["hex"], hex);
}

#[test]
fn iso8583_decode_masks_card_data_by_default() {
    let hex = ok_json(&["iso8583", "encode", "--profile", "cup-bcd", SALE])["hex"]
        .as_str()
        .unwrap()
        .to_owned();
    let output = run(&["iso8583", "decode", "--profile", "cup-bcd", &hex]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("622202*********0123"));
    assert!(text.contains("5A      Application PAN                  **** (8 bytes, masked)"));
    for secret in [
        "6222021234567890123",
        "1B9C1845EB993A7A",
        "2812201",
        "6222021234567890",
    ] {
        assert!(!text.contains(secret), "decode output leaks {secret}");
    }
    let json = ok_json(&["iso8583", "decode", "--profile", "cup-bcd", &hex]);
    assert_eq!(json["masked"], true);
    assert_eq!(json["fields"]["052"], "**** (8 bytes, masked)");
    let refused = fails(&[
        "iso8583",
        "encode",
        "--profile",
        "cup-bcd",
        &json.to_string(),
    ]);
    assert!(refused.contains("masked"), "{refused}");
}

#[test]
fn iso8583_spec_file_and_frames() {
    // pyiso8583 README sample under a hex-bitmap variant of iso87-ascii loaded from a spec file.
    let path = std::env::temp_dir().join(format!("easypos-spec-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        iso8583::ISO87_ASCII_SPEC.replace("bitmap = \"binary\"", "bitmap = \"hex\""),
    )
    .unwrap();
    let spec = path.to_str().unwrap();
    let hex = hex::encode(b"02004000000000000000101234567890");
    let decoded = ok_json(&["iso8583", "decode", "--spec", spec, "--unmasked", &hex]);
    assert_eq!(decoded["fields"]["002"], "1234567890");
    let framed = ok_json(&[
        "iso8583",
        "encode",
        "--spec",
        spec,
        "--frame",
        "ascii4",
        r#"{"mti":"0210","fields":{"39":"05"}}"#,
    ]);
    assert_eq!(
        framed["hex"],
        hex::encode_upper(b"00220210000000000200000005")
    );
    let back = ok_json(&[
        "iso8583",
        "decode",
        "--spec",
        spec,
        "--frame",
        "ascii4",
        framed["hex"].as_str().unwrap(),
    ]);
    assert_eq!(back["fields"]["039"], "05");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn iso8583_errors_name_the_argument_or_field() {
    assert!(
        fails(&["iso8583", "decode", "--profile", "visa", "0200"])
            .contains("--profile: no built-in profile \"visa\"")
    );
    assert!(
        fails(&["iso8583", "decode", "--profile", "iso87-ascii", "02G0"])
            .contains("--hex: not hexadecimal")
    );
    let truncated = fails(&[
        "iso8583",
        "decode",
        "--profile",
        "iso87-ascii",
        &hex::encode(b"0200\x20\0\0\0\0\0\0\x00123"),
    ]);
    assert!(
        truncated.contains("field 3 (Processing code): message ends inside the field"),
        "{truncated}"
    );
    let not_numeric = fails(&[
        "iso8583",
        "encode",
        "--profile",
        "iso87-ascii",
        r#"{"mti":"0200","fields":{"4":"10.00"}}"#,
    ]);
    assert!(
        not_numeric.contains("field 4 (Amount, transaction): character 2 (0x2E)"),
        "{not_numeric}"
    );
    assert!(
        fails(&[
            "iso8583",
            "encode",
            "--profile",
            "cup-bcd",
            r#"{"mti":"0200","fields":{"5":"1"}}"#
        ])
        .contains("field 5 is not in profile cup-bcd")
    );
    assert!(fails(&["iso8583", "decode", "0200"]).contains("--profile NAME"));
    let framed = fails(&[
        "iso8583",
        "decode",
        "--profile",
        "iso87-ascii",
        "--frame",
        "binary2",
        "FFFF",
    ]);
    assert!(framed.contains("--frame"), "{framed}");
}

#[test]
fn tlv_decode_and_encode() {
    let decoded = ok_json(&["tlv", "decode", "77099F2701809F360200015A021234"]);
    let objects = &decoded["objects"];
    assert_eq!(objects[0]["tag"], "77");
    assert_eq!(
        objects[0]["children"][1]["name"],
        "Application Transaction Counter"
    );
    assert_eq!(objects[1]["value"], "**** (2 bytes, masked)");
    let json =
        r#"[{"tag":"70","children":[{"tag":"9F36","value":"0001"}]},{"tag":"9C","value":"00"}]"#;
    assert_eq!(
        ok_json(&["tlv", "encode", json])["hex"],
        "70059F360200019C0100"
    );
    let unmasked = ok_json(&[
        "tlv",
        "decode",
        "--unmasked",
        "77099F2701809F360200015A021234",
    ]);
    assert_eq!(
        ok_json(&["tlv", "encode", &unmasked["objects"].to_string()])["hex"],
        "77099F2701809F360200015A021234"
    );
}

#[test]
fn tlv_errors() {
    assert!(fails(&["tlv", "decode", "9F2680"]).contains("indefinite length"));
    assert!(fails(&["tlv", "decode", "9C01009F"]).contains("offset 3"));
    assert!(fails(&["tlv", "encode", r#"[{"tag":"9C"}]"#]).contains("objects[0]: give either"));
}

#[test]
fn qr_decode_encode_verify() {
    let decoded = ok_json(&["qr", "decode", EMVCO_SAMPLE]);
    assert_eq!(decoded["crc"], "A13A");
    assert_eq!(decoded["kind"], "dynamic");
    assert_eq!(decoded["qr"]["name"], "BEST TRANSPORT");
    assert_eq!(decoded["qr"]["language"]["name"], "最佳运输");
    assert_eq!(decoded["qr"]["additional"]["07"], "A6008667");
    let built = ok_json(&["qr", "encode", &decoded["qr"].to_string()]);
    let payload = built["payload"].as_str().unwrap();
    assert_eq!(ok_json(&["qr", "verify", payload])["valid"], true);
    assert_eq!(ok_json(&["qr", "decode", payload])["qr"], decoded["qr"]);
}

#[test]
fn qr_errors() {
    let bad_crc = fails(&["qr", "verify", &EMVCO_SAMPLE.replace("A13A", "A13B")]);
    assert!(
        bad_crc.contains("CRC mismatch: payload says A13B, computed A13A"),
        "{bad_crc}"
    );
    assert!(fails(&["qr", "decode", "0002010102"]).contains("payload:"));
    let json =
        r#"{"accounts":[],"mcc":"5812","currency":"156","country":"CN","name":"X","city":"Y"}"#;
    assert!(fails(&["qr", "encode", json]).contains("merchant account information"));
}
