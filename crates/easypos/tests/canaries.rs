#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Card-data canaries (issue 14): drive the card flows end to end with every log at `debug`,
//! then scan every file the platform, the terminal and a backup left behind — the SQLite
//! database and its WAL, the logs, the terminal's state and what it printed, receipts (ESC/POS
//! and PDF), the backup, what the cardholder gets over the API (the transaction's certificate
//! as JSON and PDF, the month's statement as CSV, a fraud report and its evidence pack, with
//! each file of the pack on its own), the end of day's statements, clearing files and
//! reconciliation report (`easypos settle`, run for the day the flows are in), and for
//! PostgreSQL a plain dump — for
//! the demo cards' numbers, track 2 data, clear PIN blocks and the published test keys, in
//! ASCII, packed BCD, hex and base64. Zero hits is the only pass.
//!
//! Left out of the scan, by design: the card simulator's card files (`cards/`, a card holds
//! its own number and keys), the terminal's configuration (a PIN pad holds its own initial
//! key) and the HSM master key file.

mod common;

use base64::Engine;
use common::{Run, http_raw, run, setup, start_with, temp_dir};
use std::path::{Path, PathBuf};

/// One secret and the byte strings it may leak as.
struct Canary {
    what: String,
    forms: Vec<Vec<u8>>,
}

fn bcd(digits: &str) -> Vec<u8> {
    let padded = if digits.len() % 2 == 1 {
        format!("{digits}F")
    } else {
        digits.to_owned()
    };
    hex::decode(padded).unwrap()
}

fn forms_of_text(text: &str) -> Vec<Vec<u8>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        text.as_bytes().to_vec(),
        hex::encode(text).into_bytes(),
        hex::encode_upper(text).into_bytes(),
        b64.encode(text).into_bytes(),
    ]
}

fn forms_of_bytes(bytes: &[u8]) -> Vec<Vec<u8>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        bytes.to_vec(),
        hex::encode(bytes).into_bytes(),
        hex::encode_upper(bytes).into_bytes(),
        b64.encode(bytes).into_bytes(),
    ]
}

/// ISO 9564 format 0: the PIN field XOR the PAN field (12 digits left of the check digit).
fn clear_pin_block(pin: &str, pan: &str) -> Vec<u8> {
    let pin_field = hex::decode(format!("{:02}{pin:F<14}", pin.len())).unwrap();
    let digits = &pan[pan.len() - 13..pan.len() - 1];
    let pan_field = hex::decode(format!("0000{digits}")).unwrap();
    pin_field
        .iter()
        .zip(&pan_field)
        .map(|(a, b)| a ^ b)
        .collect()
}

fn canaries() -> Vec<Canary> {
    let mut all = Vec::new();
    for card in demo::cards() {
        let mut forms = forms_of_text(&card.pan);
        forms.push(bcd(&card.pan));
        all.push(Canary {
            what: format!("the number of {}", card.card.id),
            forms,
        });
        all.push(Canary {
            what: format!("the clear PIN block of {}", card.card.id),
            forms: forms_of_bytes(&clear_pin_block(card.pin, &card.pan)),
        });
        // Track 2 as the terminal reads it: PAN, separator, expiry (the PAN alone is above).
        for separator in ["=", "D"] {
            all.push(Canary {
                what: format!("track 2 of {}", card.card.id),
                forms: forms_of_text(&format!("{}{separator}", card.pan)),
            });
        }
    }
    let mut names: Vec<String> = ["10000001", "10000002", "20000001"]
        .iter()
        .map(|terminal| demo::terminal_master_key_name(terminal))
        .collect();
    names.push(demo::demo_bdk_name());
    names.push(demo::demo_tdes_bdk_name());
    for issuer in [demo::DEBIT_BANK, demo::CREDIT_ISSUER] {
        names.push(format!("issuer/{}/imk-ac", issuer.0));
        names.push(format!("issuer/{}/cvk", issuer.0));
    }
    for name in names {
        let key = demo::demo_test_key(&name).unwrap_or_else(|| panic!("{name} is published"));
        all.push(Canary {
            what: format!("key {name}"),
            forms: forms_of_bytes(&key),
        });
    }
    all
}

/// Every file under `dir`, except the ones a scan leaves out by design.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().unwrap().is_dir() {
                if name != "cards" {
                    pending.push(path);
                }
            } else if !(name.ends_with(".toml") || name == "hsm-lmk.key") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// `(file, what)` for every canary found in any file under `dir`.
fn scan(dir: &Path, extra: &[(String, Vec<u8>)]) -> (usize, Vec<(String, String)>) {
    let canaries = canaries();
    let mut hits = Vec::new();
    let mut contents: Vec<(String, Vec<u8>)> = files(dir)
        .into_iter()
        .map(|path| {
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    contents.extend(extra.iter().cloned());
    for (name, bytes) in &contents {
        for canary in &canaries {
            if canary
                .forms
                .iter()
                .any(|form| bytes.windows(form.len()).any(|window| window == &form[..]))
            {
                hits.push((name.clone(), canary.what.clone()));
            }
        }
    }
    hits.dedup();
    (contents.len(), hits)
}

/// Runs a scripted terminal command, which must succeed; keeps what it printed for the scan.
fn terminal(dir: &Path, outputs: &mut Vec<(String, Vec<u8>)>, command: &str, args: &[&str]) -> Run {
    let mut all = vec!["terminal", command, "--config", "terminal.toml", "--json"];
    all.extend_from_slice(args);
    let result = run(dir, &all);
    assert_eq!(
        result.code, 0,
        "{command}: {}{}",
        result.stdout, result.stderr
    );
    outputs.push((
        format!("terminal {command} (stdout)"),
        result.stdout.clone().into_bytes(),
    ));
    outputs.push((
        format!("terminal {command} (stderr)"),
        result.stderr.clone().into_bytes(),
    ));
    result
}

/// Sales by chip + PIN and by fallback swipe (track 2), a balance inquiry, a void and a refund
/// by the supervisor, receipts also as ESC/POS and PDF, the batch settled, a backup taken,
/// all with the platform logging at `debug`; returns what the terminal printed.
fn drive_card_flows(dir: &Path, backend_args: &[&str]) -> Vec<(String, Vec<u8>)> {
    std::fs::write(dir.join("debug.toml"), "[log]\nlevel = \"debug\"\n").unwrap();
    let mut outputs = Vec::new();
    let mut args = backend_args.to_vec();
    args.extend(["up", "--http", "127.0.0.1:0", "--iso8583", "127.0.0.1:0"]);
    let mut running = start_with(dir, &args);
    setup(dir, "10000001", "terminal.toml", running.terminals, 10_000);
    let card = "cards/card-CH001-D.json";
    let chip = terminal(
        dir,
        &mut outputs,
        "pay",
        &[
            "--method",
            "debit",
            "--entry",
            "chip",
            "--card",
            card,
            "--pin",
            demo::DEMO_PIN,
            "--amount",
            "12.34",
            "--escpos-out",
            "sale.escpos",
            "--receipt-pdf",
            "sale.pdf",
        ],
    );
    let swipe = terminal(
        dir,
        &mut outputs,
        "pay",
        &[
            "--method",
            "debit",
            "--entry",
            "swipe",
            "--fallback",
            "--card",
            "cards/card-CH002-D.json",
            "--amount",
            "20.00",
        ],
    );
    terminal(
        dir,
        &mut outputs,
        "balance",
        &["--method", "debit", "--card", card, "--pin", demo::DEMO_PIN],
    );
    let stan = |result: &Run| result.json["receipt"]["stan"].as_u64().unwrap().to_string();
    terminal(
        dir,
        &mut outputs,
        "void",
        &[
            "--card",
            card,
            "--trace",
            &stan(&chip),
            "--supervisor",
            "999999",
            "--escpos-out",
            "void.escpos",
            "--receipt-pdf",
            "void.pdf",
        ],
    );
    terminal(
        dir,
        &mut outputs,
        "refund",
        &[
            "--supervisor",
            "999999",
            "--card",
            "cards/card-CH002-D.json",
            "--trace",
            &stan(&swipe),
            "--amount",
            "5.00",
        ],
    );
    terminal(dir, &mut outputs, "settle", &[]);
    let web = running
        .web
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    fetch_aftersale_documents(dir, web, &stan(&chip), &mut outputs);
    let mut backup = backend_args.to_vec();
    backup.extend(["backup", "--out", "backup"]);
    let backed_up = run(dir, &backup);
    assert_eq!(backed_up.code, 0, "{}", backed_up.stderr);
    running.stop();
    settle_the_day(dir, backend_args, &mut outputs);
    outputs
}

/// HTTP Basic of the demo cardholder who owns card-CH001-D (`cardholder1`).
const CARDHOLDER1: &str = "Y2FyZGhvbGRlcjE6ZWFzeXBvcy1kZW1vLTIwMjY=";

/// What the cardholder of card-CH001-D gets over the API about its chip sale (trace number
/// `stan`), written under `dir/aftersale`: the transaction certificate (JSON and PDF), the
/// month's statement (CSV), and a fraud report (which freezes the card, so it comes last)
/// with its evidence pack, whose files are also scanned one by one.
fn fetch_aftersale_documents(
    dir: &Path,
    web: std::net::SocketAddr,
    stan: &str,
    outputs: &mut Vec<(String, Vec<u8>)>,
) {
    let out = dir.join("aftersale");
    std::fs::create_dir_all(&out).unwrap();
    let basic = [("Authorization", format!("Basic {CARDHOLDER1}"))];
    let get = |path: &str| {
        let (status, body) = http_raw(web, &basic, "GET", path, b"");
        assert_eq!(
            status,
            200,
            "GET {path}: {}",
            String::from_utf8_lossy(&body)
        );
        body
    };
    let json = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).unwrap();

    let page = json(&get("/api/v1/transactions"));
    let sale = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|transaction| {
            transaction["stan"]
                .as_i64()
                .map(|stan| stan.to_string())
                .as_deref()
                == Some(stan)
        })
        .unwrap_or_else(|| panic!("the chip sale (trace number {stan}) in {page}"))
        .clone();
    let id = sale["id"].as_str().unwrap();
    let month = &sale["received_at"].as_str().unwrap()[..7];
    let certificate = get(&format!("/api/v1/transactions/{id}/certificate"));
    // Its receipt copy: the statement the approval carried to the terminal, checked genuine.
    let text: serde_json::Value =
        serde_json::from_str(json(&certificate)["certificate"].as_str().unwrap()).unwrap();
    assert_eq!(text["receipt"]["genuine"], true, "{text}");
    assert_eq!(text["receipt"]["statement"]["rrn"], sale["rrn"], "{text}");
    std::fs::write(out.join("certificate.json"), certificate).unwrap();
    let pdf = get(&format!("/api/v1/transactions/{id}/certificate?format=pdf"));
    assert!(pdf.starts_with(b"%PDF"));
    std::fs::write(out.join("certificate.pdf"), pdf).unwrap();
    let statement = get(&format!("/api/v1/statements/{month}"));
    assert!(
        String::from_utf8_lossy(&statement).lines().count() > 1,
        "the statement of {month} lists the sale"
    );
    std::fs::write(out.join("statement.csv"), statement).unwrap();

    let mut headers = basic.to_vec();
    headers.push(("Idempotency-Key", "canaries-fraud-report".to_owned()));
    let (status, report) = http_raw(
        web,
        &headers,
        "POST",
        &format!("/api/v1/transactions/{id}/fraud-report"),
        br#"{"description": "not me: the card never left my wallet"}"#,
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&report));
    std::fs::write(out.join("fraud-report.json"), &report).unwrap();
    let report = json(&report);
    let pack = get(report["pack_url"].as_str().unwrap());
    let files = json(&pack)["files"].as_object().unwrap().clone();
    let receipt: serde_json::Value =
        serde_json::from_str(files["receipt.json"].as_str().unwrap()).unwrap();
    assert_eq!(receipt["genuine"], true, "{receipt}");
    assert!(files.len() >= 5, "the pack's files: {:?}", files.keys());
    for (name, text) in files {
        outputs.push((
            format!("evidence pack: {name}"),
            text.as_str().unwrap().as_bytes().to_vec(),
        ));
    }
    std::fs::write(out.join("evidence-pack.json"), pack).unwrap();
}

/// Runs the end of day for the date the flows are in, its reports written to
/// `dir/settlement`. A date's cycle must have closed before it settles, so the cycle is put
/// to close (UTC) at the next whole minute, which the run waits for: every flow is then in it.
fn settle_the_day(dir: &Path, backend_args: &[&str], outputs: &mut Vec<(String, Vec<u8>)>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let close = (now / 60 + 1) * 60;
    std::thread::sleep(std::time::Duration::from_secs(close + 1 - now));
    let seconds = close % 86_400;
    let cut_off = format!(
        "cut_off = \"{:02}:{:02}\"",
        seconds / 3_600,
        seconds / 60 % 60
    );
    let default = clearing::schedule::DEFAULT;
    let text = default
        .replacen("time_zone = \"Asia/Shanghai\"", "time_zone = \"UTC\"", 1)
        .replacen("cut_off = \"23:00\"", &cut_off, 1);
    assert!(
        text.contains("time_zone = \"UTC\"") && text.contains(&cut_off),
        "the default cycle's lines: {text}"
    );
    std::fs::write(dir.join("clearing.toml"), &text).unwrap();
    let rule = clearing::Settings::parse(&text).unwrap().cycle;
    let date = clearing::cycle::format_date(rule.date_of(i64::try_from(close).unwrap() - 1));
    let mut args = backend_args.to_vec();
    args.extend([
        "settle",
        "--date",
        &date,
        "--clearing",
        "clearing.toml",
        "--out",
        "settlement",
        "--json",
    ]);
    let settled = run(dir, &args);
    assert_eq!(settled.code, 0, "{}{}", settled.stdout, settled.stderr);
    outputs.push(("settle (stdout)".to_owned(), settled.stdout.into_bytes()));
    outputs.push(("settle (stderr)".to_owned(), settled.stderr.into_bytes()));
    let reports = std::fs::read_dir(dir.join("settlement")).unwrap().count();
    assert!(reports >= 3, "the day's reports: {reports} files");
}

fn assert_clean(dir: &Path, extra: &[(String, Vec<u8>)]) {
    let (scanned, hits) = scan(dir, extra);
    assert!(scanned >= 10, "only {scanned} files to scan");
    assert!(
        hits.is_empty(),
        "card data in clear: {hits:#?} (in {scanned} files under {})",
        dir.display()
    );
}

#[test]
fn no_card_data_or_key_is_left_in_clear_anywhere_on_sqlite() {
    let dir = temp_dir("canaries", "sqlite");
    let outputs = drive_card_flows(&dir, &["--config", "debug.toml"]);
    assert!(dir.join("sale.pdf").is_file() && dir.join("backup/easypos.db").is_file());
    assert!(dir.join("aftersale/certificate.pdf").is_file());
    assert_clean(&dir, &outputs);
}

#[test]
fn no_card_data_or_key_is_left_in_clear_in_postgresql() {
    let Some(admin) = store::testing::postgres_url() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let database = runtime.block_on(store::testing::postgres(&admin));
    let store::Backend::Postgres { url } = database.backend.clone() else {
        unreachable!()
    };
    let dir = temp_dir("canaries", "postgres");
    let mut outputs = drive_card_flows(&dir, &["--config", "debug.toml", "--database-url", &url]);
    let dump = std::process::Command::new("pg_dump")
        .args(["--format=plain", "--no-owner", &format!("--dbname={url}")])
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    assert!(dump.stdout.len() > 10_000);
    outputs.push(("pg_dump".to_owned(), dump.stdout));
    assert_clean(&dir, &outputs);
    drop(database);
}

#[test]
fn the_scanner_finds_each_form_it_looks_for() {
    let dir = temp_dir("canaries", "self-test");
    let card = &demo::cards()[0];
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = demo::demo_test_key(&demo::demo_bdk_name()).unwrap();
    let planted: [(&str, Vec<u8>); 7] = [
        ("ascii.log", format!("pan={} ok", card.pan).into_bytes()),
        (
            "bcd.bin",
            [b"\x00\x01".to_vec(), bcd(&card.pan), b"\xff".to_vec()].concat(),
        ),
        ("hex.txt", hex::encode(&card.pan).into_bytes()),
        ("base64.json", b64.encode(&card.pan).into_bytes()),
        (
            "pinblock.txt",
            hex::encode_upper(clear_pin_block(card.pin, &card.pan)).into_bytes(),
        ),
        ("key.bin", key.clone()),
        ("clean.txt", b"621234******0000 masked is fine".to_vec()),
    ];
    for (name, bytes) in &planted {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    // Left out by design: the card simulator's files and configuration files.
    std::fs::create_dir_all(dir.join("cards")).unwrap();
    std::fs::write(dir.join("cards/card.json"), &card.pan).unwrap();
    std::fs::write(dir.join("terminal.toml"), hex::encode(&key)).unwrap();
    let (scanned, hits) = scan(
        &dir,
        &[("printed".to_owned(), card.pan.clone().into_bytes())],
    );
    assert_eq!(scanned, planted.len() + 1);
    let files: std::collections::BTreeSet<&str> =
        hits.iter().map(|(file, _)| file.as_str()).collect();
    assert_eq!(
        files.into_iter().collect::<Vec<_>>(),
        [
            "ascii.log",
            "base64.json",
            "bcd.bin",
            "hex.txt",
            "key.bin",
            "pinblock.txt",
            "printed"
        ]
    );
}
