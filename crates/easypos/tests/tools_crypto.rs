//! `easypos tools` crypto calculators through the binary: known answers (sources named in
//! paycrypto's tests/vectors.rs), `--json` output, and errors that name the bad argument.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::process::{Command, Output};

const KEY: &str = "0123456789ABCDEFFEDCBA9876543210";
const CDOL: &str = "000000002000000000000000012400000080000124110309003804823E5C00000103A4A002";

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_easypos"))
        .arg("tools")
        .args(args)
        .output()
        .unwrap()
}

/// Runs with `--json`, expects success and exactly one JSON object on stdout.
fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let output = run(&all);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text.trim().lines().count(), 1, "one JSON line: {text}");
    let value: Value = serde_json::from_str(&text).unwrap();
    assert!(value.is_object());
    value
}

/// Expects failure with a message naming `argument` and not echoing `secret`.
fn fails(args: &[&str], argument: &str, secret: Option<&str>) {
    let output = run(args);
    assert!(!output.status.success(), "{args:?} should fail");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(argument),
        "{args:?}: expected {argument} in: {stderr}"
    );
    if let Some(secret) = secret {
        assert!(
            !stderr.contains(secret),
            "{args:?}: stderr echoes a secret: {stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn pinblock_format0_encode_matches_annex_a_and_text_output_is_readable() {
    // X9.24-1 Annex A counter 1 PIN key, PIN 1234, PAN 4012345678909 -> 1B9C1845EB993A7A.
    let out = json(&[
        "pinblock",
        "encode",
        "--format",
        "0",
        "--pin",
        "1234",
        "--pan",
        "4012345678909",
        "--key",
        "042666B49184CF5C68DE9628D0397B36",
    ]);
    assert_eq!(out["pin_block"], "1B9C1845EB993A7A");
    assert_eq!(out["clear_block"], "041274EDCBA9876F");
    let text = String::from_utf8(
        run(&[
            "pinblock",
            "encode",
            "--format",
            "0",
            "--pin",
            "1234",
            "--pan",
            "4012345678909",
        ])
        .stdout,
    )
    .unwrap();
    assert!(text.contains("clear_block  041274EDCBA9876F"), "{text}");
}

#[test]
fn pinblock_format4_encode_with_fill_is_reproducible_and_decodes() {
    let args = [
        "pinblock",
        "encode",
        "--format",
        "4",
        "--pin",
        "1234",
        "--pan",
        "4111111111111111",
        "--key",
        "AF8CB133A78F8DC2D1359F18527593FB",
        "--fill",
        "2F69ADDE2E9E7ACE",
    ];
    assert_eq!(json(&args)["pin_block"], "A912150391AB65A67E52883D81CE2D15");
    let decoded = json(&[
        "pinblock",
        "decode",
        "--format",
        "4",
        "--pan",
        "4111111111111111",
        "--key",
        "AF8CB133A78F8DC2D1359F18527593FB",
        "--block",
        "A912150391AB65A67E52883D81CE2D15",
    ]);
    assert_eq!(decoded["pin"], "1234");
}

#[test]
fn pinblock_format1_and_3_random_fill_round_trips() {
    for format in ["1", "3"] {
        let encoded = json(&[
            "pinblock",
            "encode",
            "--format",
            format,
            "--pin",
            "987654",
            "--pan",
            "4012345678909",
            "--key",
            KEY,
        ]);
        let block = encoded["pin_block"].as_str().unwrap();
        let decoded = json(&[
            "pinblock",
            "decode",
            "--format",
            format,
            "--pan",
            "4012345678909",
            "--key",
            KEY,
            "--block",
            block,
        ]);
        assert_eq!(decoded["pin"], "987654");
    }
    assert_eq!(
        json(&[
            "pinblock",
            "encode",
            "--format",
            "1",
            "--pin",
            "1234",
            "--fill",
            "FFFFFFFFFFFFFFFF"
        ])["clear_block"],
        "141234FFFFFFFFFF"
    );
}

#[test]
fn pinblock_errors_name_the_argument() {
    fails(
        &[
            "pinblock",
            "encode",
            "--format",
            "0",
            "--pin",
            "123",
            "--pan",
            "4012345678909",
        ],
        "--pin",
        None,
    );
    fails(
        &[
            "pinblock",
            "encode",
            "--format",
            "0",
            "--pin",
            "1234567890123",
            "--pan",
            "4012345678909",
        ],
        "--pin",
        Some("1234567890123"),
    );
    fails(
        &[
            "pinblock", "encode", "--format", "0", "--pin", "1234", "--pan", "4012345",
        ],
        "--pan",
        Some("4012345"),
    );
    fails(
        &[
            "pinblock",
            "encode",
            "--format",
            "2",
            "--pin",
            "1234",
            "--pan",
            "4012345678909",
        ],
        "--format",
        None,
    );
    fails(
        &[
            "pinblock",
            "encode",
            "--format",
            "3",
            "--pin",
            "1234",
            "--pan",
            "4012345678909",
            "--fill",
            "0000000000000000",
        ],
        "--fill",
        None,
    );
    fails(
        &[
            "pinblock",
            "encode",
            "--format",
            "4",
            "--pin",
            "1234",
            "--pan",
            "4111111111111111",
        ],
        "--key",
        None,
    );
    fails(
        &[
            "pinblock",
            "encode",
            "--format",
            "0",
            "--pin",
            "1234",
            "--pan",
            "4012345678909",
            "--key",
            "0123456789ABCDEFFEDCBA98765432",
        ],
        "--key",
        Some("0123456789ABCDEF"),
    );
    fails(
        &[
            "pinblock",
            "encode",
            "--format",
            "0",
            "--pin",
            "1234",
            "--pan",
            "4012345678909",
            "--key",
            "0123456789ABCDEFFEDCBA987654321",
        ],
        "--key",
        Some("0123456789ABCDEF"),
    );
    fails(
        &[
            "pinblock",
            "encode",
            "--format",
            "0",
            "--pin",
            "1234",
            "--pan",
            "4012345678909",
            "--key",
            "XX23456789ABCDEFFEDCBA9876543210",
        ],
        "--key",
        Some("456789ABCDEF"),
    );
    // Wrong PAN: the block is rejected without echoing PIN, PAN or block.
    fails(
        &[
            "pinblock",
            "decode",
            "--format",
            "0",
            "--pan",
            "4012345678917",
            "--key",
            "042666B49184CF5C68DE9628D0397B36",
            "--block",
            "1B9C1845EB993A7A",
        ],
        "--block",
        Some("1B9C1845EB993A7A"),
    );
}

#[test]
fn dukpt_tdes_and_aes_match_published_keys() {
    let tdes = json(&["dukpt", "--bdk", KEY, "--ksn", "FFFF9876543210E00001"]);
    assert_eq!(tdes["ipek"], "6AC292FAA1315B4D858AB3A3D7D5933A");
    assert_eq!(tdes["transaction_key"], "042666B49184CFA368DE9628D0397BC9");
    assert_eq!(tdes["next_ksn"], "FFFF9876543210E00002");
    let aes = json(&[
        "dukpt",
        "--aes",
        "--bdk",
        "FEDCBA9876543210F1F1F1F1F1F1F1F1",
        "--ksn",
        "123456789012345600000001",
    ]);
    assert_eq!(aes["initial_key"], "1273671EA26AC29AFA4D1084127652A1");
    assert_eq!(aes["derivation_key"], "4F21B565BAD9835E112B6465635EAE44");
    assert_eq!(
        aes["pin_encryption_key"],
        "AF8CB133A78F8DC2D1359F18527593FB"
    );
}

#[test]
fn dukpt_errors() {
    fails(
        &["dukpt", "--bdk", KEY, "--ksn", "FFFF9876543210E0001"],
        "--ksn",
        None,
    );
    fails(
        &["dukpt", "--bdk", KEY, "--ksn", "FFFF9876543210E00000"],
        "--ksn",
        None,
    );
    fails(
        &[
            "dukpt",
            "--aes",
            "--bdk",
            "FEDCBA9876543210F1F1F1F1F1F1F1F1",
            "--ksn",
            "123456789012345600000001",
            "--key-type",
            "AES256",
        ],
        "--key-type",
        None,
    );
    fails(
        &[
            "dukpt",
            "--bdk",
            "0123456789ABCDEF",
            "--ksn",
            "FFFF9876543210E00001",
        ],
        "--bdk",
        Some("0123456789ABCDEF"),
    );
    // The last counter reports that the device is exhausted.
    assert_eq!(
        json(&["dukpt", "--bdk", KEY, "--ksn", "FFFF9876543210FFF800"])["next_ksn"],
        "exhausted"
    );
}

#[test]
fn card_verification_values() {
    let cvv = json(&[
        "cvv",
        "--cvk",
        KEY,
        "--pan",
        "4123456789012345",
        "--expiry",
        "8701",
        "--service-code",
        "101",
    ]);
    assert_eq!(cvv["cvv"], "561");
    assert_eq!(
        json(&[
            "pvv",
            "--pvk",
            KEY,
            "--pan",
            "4012345678909",
            "--pin",
            "1234",
            "--pvki",
            "1"
        ])["pvv"],
        "5111"
    );
    let offset = json(&[
        "pin-offset",
        "--pvk",
        KEY,
        "--pin",
        "1234",
        "--validation-data",
        "401234567890",
    ]);
    assert_eq!(offset["offset"], "7484");
    assert_eq!(offset["natural_pin"], "4850");
    fails(
        &[
            "cvv",
            "--cvk",
            KEY,
            "--pan",
            "4123456789012345",
            "--expiry",
            "87011",
            "--service-code",
            "101",
        ],
        "--expiry",
        None,
    );
    fails(
        &[
            "pvv",
            "--pvk",
            KEY,
            "--pan",
            "4012345678909",
            "--pin",
            "1234",
            "--pvki",
            "12",
        ],
        "--pvki",
        None,
    );
    fails(
        &[
            "pin-offset",
            "--pvk",
            KEY,
            "--pin",
            "1234",
            "--validation-data",
            "40123456789Z",
        ],
        "--validation-data",
        None,
    );
}

#[test]
fn luhn_checks_and_completes() {
    let out = json(&["luhn", "79927398713"]);
    assert_eq!(out["valid"], true);
    assert_eq!(json(&["luhn", "79927398710"])["valid"], false);
    assert_eq!(json(&["luhn", "7992739871"])["check_digit_to_append"], 3);
    fails(&["luhn", "7992a"], "NUMBER", None);
}

#[test]
fn kcv_and_macs() {
    assert_eq!(json(&["kcv", "--key", KEY])["kcv"], "08D7B4");
    let aes = json(&["kcv", "--aes", "--key", "2B7E151628AED2A6ABF7158809CF4F3C"]);
    assert_eq!(
        (aes["kcv_cmac"].as_str(), aes["kcv_ecb_legacy"].as_str()),
        (Some("7AD386"), Some("7DF76B"))
    );
    let data = hex::encode("1234567890".repeat(4));
    assert_eq!(
        json(&[
            "mac",
            "--algorithm",
            "3",
            "--padding",
            "1",
            "--key",
            KEY,
            "--data",
            &data
        ])["mac"],
        "51383306AD1B97A2"
    );
    assert_eq!(
        json(&[
            "mac",
            "--algorithm",
            "1",
            "--padding",
            "2",
            "--key",
            KEY,
            "--data",
            "1234567890ABCDEF"
        ])["mac"],
        "925B1737EF681AD3"
    );
    let cmac = json(&[
        "mac",
        "--algorithm",
        "cmac",
        "--key",
        "2B7E151628AED2A6ABF7158809CF4F3C",
        "--data",
        "",
    ]);
    assert_eq!(cmac["mac"], "BB1D6929E95937287FA37D129B756746");
    fails(
        &[
            "mac",
            "--algorithm",
            "3",
            "--padding",
            "3",
            "--key",
            KEY,
            "--data",
            "00",
        ],
        "--padding",
        None,
    );
    fails(
        &[
            "mac",
            "--algorithm",
            "3",
            "--padding",
            "1",
            "--key",
            "0123456789ABCDEF",
            "--data",
            "00",
        ],
        "--key",
        Some("0123456789ABCDEF"),
    );
    fails(
        &[
            "mac",
            "--algorithm",
            "1",
            "--padding",
            "1",
            "--key",
            KEY,
            "--data",
            "0",
        ],
        "--data",
        None,
    );
}

#[test]
fn emv_keys_arqc_and_arpc() {
    let keys = json(&[
        "emv-keys",
        "--imk",
        KEY,
        "--pan",
        "4761739001010119",
        "--psn",
        "01",
        "--atc",
        "0001",
        "--un",
        "11223344",
    ]);
    assert_eq!(keys["icc_master_key"], "80A89B585BBF64C2F12915BF578FABE0");
    assert_eq!(
        keys["session_key_mastercard"],
        "26F1546BDF8CE09DABDF97DFD654F1DC"
    );
    let card = [
        "--imk",
        KEY,
        "--pan",
        "4761739001010119",
        "--psn",
        "01",
        "--atc",
        "0001",
        "--cvn",
        "18",
    ];
    let generate = [&["arqc", "generate"][..], &card, &["--data", CDOL]].concat();
    // Cross-check: pyemv generate_ac under the common session key -> AA69297CE9EACC80.
    assert_eq!(json(&generate)["arqc"], "AA69297CE9EACC80");
    let verify = [
        &["arqc", "verify"][..],
        &card,
        &["--data", CDOL, "--arqc", "AA69297CE9EACC80"],
    ]
    .concat();
    assert_eq!(json(&verify)["valid"], true);
    let wrong = [
        &["arqc", "verify"][..],
        &card,
        &["--data", CDOL, "--arqc", "AA69297CE9EACC81"],
    ]
    .concat();
    assert_eq!(json(&wrong)["valid"], false);
    // Cross-check: pyemv generate_arpc_2 -> AF1576F0.
    let arpc = [
        &["arpc"][..],
        &card,
        &["--arqc", "4E2B5DC1CB37A0E5", "--csu", "00820000"],
    ]
    .concat();
    let out = json(&arpc);
    assert_eq!(
        (out["arpc"].as_str(), out["tag_91"].as_str()),
        (Some("AF1576F0"), Some("AF1576F000820000"))
    );
    let missing_csu = [
        &["arpc"][..],
        &card,
        &["--arqc", "4E2B5DC1CB37A0E5", "--arc", "3030"],
    ]
    .concat();
    fails(&missing_csu, "--csu", None);
    fails(
        &[
            "emv-keys",
            "--imk",
            KEY,
            "--pan",
            "4761739001010119",
            "--psn",
            "1",
            "--atc",
            "0001",
        ],
        "--psn",
        None,
    );
    fails(
        &[
            "emv-keys",
            "--imk",
            KEY,
            "--pan",
            "4761739001010119",
            "--atc",
            "001",
        ],
        "--atc",
        None,
    );
    let bad_cvn = [
        &["arqc", "generate"][..],
        &card[..8],
        &["--cvn", "99", "--data", CDOL],
    ]
    .concat();
    fails(&bad_cvn, "--cvn", None);
}

#[test]
fn tr31_wrap_and_unwrap() {
    let block = "B0096P0TE00N0000471D4FBE35E5865BDE20DBF4C15503161F55D681170BF8DD14D01B6822EF8550CB67C569DE8AC048";
    let out = json(&[
        "tr31",
        "unwrap",
        "--kbpk",
        "ABABABABABABABABABABABABABABABAB",
        "--block",
        block,
    ]);
    assert_eq!(out["key"], "CDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCD");
    assert_eq!(out["usage"], "P0");
    let wrapped = json(&[
        "tr31",
        "wrap",
        "--kbpk",
        "00112233445566778899AABBCCDDEEFF",
        "--key",
        "AF8CB133A78F8DC2D1359F18527593FB",
        "--usage",
        "P0",
        "--algorithm",
        "A",
        "--mode",
        "E",
    ]);
    let wrapped = wrapped["key_block"].as_str().unwrap();
    assert!(wrapped.starts_with("D0144P0AE00E0000"));
    let back = json(&[
        "tr31",
        "unwrap",
        "--kbpk",
        "00112233445566778899AABBCCDDEEFF",
        "--block",
        wrapped,
    ]);
    assert_eq!(back["key"], "AF8CB133A78F8DC2D1359F18527593FB");
    // Bad MAC (wrong KBPK) and malformed arguments.
    fails(
        &[
            "tr31",
            "unwrap",
            "--kbpk",
            "ACACACACACACACACACACACACACACACAC",
            "--block",
            block,
        ],
        "MAC verification failed",
        Some("CDCDCDCD"),
    );
    fails(
        &[
            "tr31",
            "unwrap",
            "--kbpk",
            "ABABABABABABABABABABABABABABABAB",
            "--block",
            &block[..90],
        ],
        "--block",
        None,
    );
    fails(
        &[
            "tr31",
            "wrap",
            "--kbpk",
            "00112233445566778899AABBCCDDEEFF",
            "--key",
            "AF8CB133A78F8DC2D1359F18527593FB",
            "--usage",
            "P",
            "--algorithm",
            "A",
            "--mode",
            "E",
        ],
        "--usage",
        None,
    );
    fails(
        &[
            "tr31",
            "wrap",
            "--kbpk",
            "0011223344556677",
            "--key",
            "AF8CB133A78F8DC2D1359F18527593FB",
            "--usage",
            "P0",
            "--algorithm",
            "A",
            "--mode",
            "E",
        ],
        "--kbpk",
        None,
    );
    fails(
        &[
            "tr31",
            "wrap",
            "--kbpk",
            "00112233445566778899AABBCCDDEEFF",
            "--key",
            "AF8CB133",
            "--usage",
            "P0",
            "--algorithm",
            "A",
            "--mode",
            "E",
        ],
        "--key",
        Some("AF8CB133"),
    );
}
