#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `easypos up` as a newcomer runs it: it starts, seeds, serves `/healthz` and `/metrics`,
//! prints where to go, stops cleanly on Ctrl-C (SIGINT), and a restart keeps the data without
//! seeding again.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

mod common;
use common::{Running, start, start_with};

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("up", name)
}

fn stop(mut running: Running) -> Vec<String> {
    running.stop()
}

/// A plain HTTP/1.1 GET over loopback; returns (status, content type, body).
fn get(web: &str, path: &str) -> (u16, String, String) {
    let address = web.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

#[test]
fn up_serves_health_and_metrics_stops_cleanly_and_restarts_without_reseeding() {
    let dir = temp_dir("journey");
    let first = start(&dir);
    assert!(
        first.banner.iter().any(|line| line.contains("seeded now")),
        "{:?}",
        first.banner
    );
    assert!(first.banner.iter().any(|line| line.contains("2 merchants, 5 terminals") && line.contains("5 cardholders")), "{:?}", first.banner);
    assert!(
        first
            .banner
            .iter()
            .any(|line| line.contains(&format!("PIN is {}", demo::DEMO_PIN))),
        "the banner tells a newcomer the demo cards' PIN: {:?}",
        first.banner
    );

    // The banner points a newcomer to the guides, and they are served.
    let guides = first
        .banner
        .iter()
        .find(|line| line.trim_start().starts_with("guides"))
        .unwrap_or_else(|| panic!("no guides line in {:?}", first.banner));
    assert!(guides.contains(&format!("{}docs", first.web)), "{guides}");
    let (status, _, body) = get(&first.web, "/docs");
    assert_eq!(status, 200);
    assert!(body.contains("/docs/cashier"), "{body}");

    let (status, content_type, body) = get(&first.web, "/healthz");
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["store"], "sqlite");

    let (status, content_type, body) = get(&first.web, "/metrics");
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert!(
        body.contains("# TYPE easypos_store_commits_total counter"),
        "{body}"
    );
    let commits: u64 = body
        .lines()
        .find_map(|line| line.strip_prefix("easypos_store_commits_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(commits > 0, "seeding committed through the writer");
    let created: u64 = body
        .lines()
        .find_map(|line| line.strip_prefix("easypos_ledger_transfers_created_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        created,
        demo::cards().len() as u64,
        "one opening transfer per demo card"
    );

    // A terminal reaches the host: an echo test over ISO 8583 (cup-bcd) comes back approved.
    let mut echo = iso8583::Message::new(iso8583::Mti::parse("0820").unwrap());
    echo.tpdu = Some(iso8583::Tpdu {
        id: 0x60,
        destination: 3,
        source: 1,
    });
    echo.header = vec![0; 6].into();
    for (field, value) in [
        (11, "000001"),
        (41, "10000001"),
        (42, "898310058120001"),
        (60, "00000001301"),
    ] {
        echo.set_text(field, value);
    }
    let profile = iso8583::Profile::builtin("cup-bcd").unwrap();
    let reply = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut client = host::Client::connect(
                first.terminals,
                iso8583::LengthPrefix::Binary2,
                Duration::from_secs(10),
            )
            .await
            .unwrap();
            client
                .exchange(&profile.pack(&echo).unwrap(), Duration::from_secs(10))
                .await
                .unwrap()
        });
    let reply = profile.unpack(&reply).unwrap();
    assert_eq!(
        (reply.mti.as_str(), reply.response_code().unwrap().as_str()),
        ("0830", "00")
    );
    let (_, _, body) = get(&first.web, "/metrics");
    assert!(body.contains("easypos_acquirer_answered_total 1"), "{body}");
    // A terminal simulator holding the demo's published test keys signs on and sells.
    let sale = chip_sale_at(first.terminals, "10000002", 2_500);
    assert_eq!(sale.response, iso8583::ResponseCode::Approved);
    assert!(
        body.contains("# TYPE easypos_host_frames_in counter"),
        "{body}"
    );

    let (status, _, _) = get(&first.web, "/no-such-page");
    assert_eq!(status, 404);

    let hsm_line = first
        .banner
        .iter()
        .find(|line| line.trim_start().starts_with("hsm"))
        .expect("an hsm line")
        .clone();
    assert!(
        hsm_line.contains("development and testing only"),
        "{hsm_line}"
    );
    let lmk = dir.join("easypos-data/hsm-lmk.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&lmk).unwrap().permissions().mode() & 0o777,
        0o600,
        "the master key file is the owner's alone"
    );

    let after = stop(first);
    assert!(
        after.iter().any(|line| line.contains("stopped cleanly")),
        "{after:?}"
    );
    assert!(dir.join("easypos-data/easypos.db").exists());
    // No demo card number appears in the database files or the logs, in text or as BCD.
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir.join("easypos-data")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("easypos.db")
        {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(stored.len() > 4_096);
    let log = std::fs::read(dir.join("easypos.log")).unwrap();
    assert!(
        String::from_utf8_lossy(&log).contains("seeded the demo world"),
        "the log is captured"
    );
    stored.extend(log);
    for card in demo::cards() {
        let bcd: Vec<u8> = card
            .pan
            .as_bytes()
            .chunks(2)
            .map(|pair| ((pair[0] - b'0') << 4) | (pair[1] - b'0'))
            .collect();
        for needle in [card.pan.as_bytes(), bcd.as_slice()] {
            assert!(
                !stored.windows(needle.len()).any(|window| window == needle),
                "card {} found in the database files",
                card.card.masked_pan()
            );
        }
    }

    let second = start(&dir);
    assert!(
        second
            .banner
            .iter()
            .any(|line| line.contains("kept from an earlier start")),
        "{:?}",
        second.banner
    );
    let (_, _, body) = get(&second.web, "/metrics");
    let created: u64 = body
        .lines()
        .find_map(|line| line.strip_prefix("easypos_ledger_transfers_created_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(created, 0, "a restart does not seed again");
    stop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_configuration_is_refused_with_the_setting_named() {
    let dir = temp_dir("badconfig");
    std::fs::write(
        dir.join("easypos.toml"),
        "[http]\nlisten = \"not-an-address\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_easypos"))
        .arg("up")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("http.listen (EASYPOS_HTTP_LISTEN)"),
        "{stderr}"
    );

    std::fs::write(
        dir.join("easypos.toml"),
        "[htpp]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_easypos"))
        .arg("migrate")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown field `htpp`"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_database_is_refused_at_start_with_the_reason() {
    let dir = temp_dir("corrupt");
    std::fs::create_dir_all(dir.join("easypos-data")).unwrap();
    std::fs::write(dir.join("easypos-data/easypos.db"), vec![0xAB_u8; 4_096]).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_easypos"))
        .args(["up", "--http", "127.0.0.1:0"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a valid SQLite database"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn migrate_reports_the_schema_version() {
    let dir = temp_dir("migrate");
    let output = Command::new(env!("CARGO_BIN_EXE_easypos"))
        .arg("migrate")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected = format!(
        "database is at schema version {} (sqlite)",
        store::latest_version(store::sqlite_migrations())
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains(&expected));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["up", "--help"],
        &["migrate", "--help"],
        &["bench", "--help"],
        &["bench", "ledger", "--help"],
        &["bench", "sales", "--help"],
        &["host", "--help"],
        &["tools", "--help"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_easypos"))
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage:"),
            "{args:?}"
        );
    }
}

#[test]
fn bench_ledger_runs_and_checks_every_response() {
    let dir = temp_dir("bench");
    let output = Command::new(env!("CARGO_BIN_EXE_easypos"))
        .args([
            "bench",
            "ledger",
            "--callers",
            "20",
            "--seconds",
            "1",
            "--accounts",
            "50",
            "--json",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["errors"], 0);
    assert!(report["transfers"].as_u64().unwrap() > 0);
    assert!(report["commits"].as_u64().unwrap() <= report["transfers"].as_u64().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends one `iso87-ascii` message (2-byte length) and returns the answer.
fn exchange_iso87(
    address: std::net::SocketAddr,
    message: &iso8583::Message<'_>,
) -> iso8583::Message<'static> {
    let profile = iso8583::Profile::builtin("iso87-ascii").unwrap();
    let body = profile.pack(message).unwrap();
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(&[(body.len() >> 8) as u8, body.len() as u8])
        .unwrap();
    stream.write_all(&body).unwrap();
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).unwrap();
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut answer).unwrap();
    profile.unpack(&answer).unwrap().into_owned()
}

#[test]
fn an_issuer_host_runs_as_its_own_process_and_up_routes_cards_to_it() {
    // The issuer host seeds its own copy of the demo world; the acquirer runs on a copy of
    // that directory (database and HSM master key), which is how the two share zone keys.
    let issuer_dir = temp_dir("issuer-host");
    let issuer = start_with(
        &issuer_dir,
        &["host", "--role", "issuer", "--listen", "127.0.0.1:0"],
    );
    assert!(
        issuer
            .banner
            .iter()
            .any(|line| line.contains("issuer host is up")),
        "{:?}",
        issuer.banner
    );
    stop(issuer);
    let acquirer_dir = temp_dir("issuer-host-acquirer");
    let data = issuer_dir.join("easypos-data");
    std::fs::create_dir_all(acquirer_dir.join("easypos-data")).unwrap();
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(
            &path,
            acquirer_dir
                .join("easypos-data")
                .join(path.file_name().unwrap()),
        )
        .unwrap();
    }

    let issuer = start_with(
        &issuer_dir,
        &["host", "--role", "issuer", "--listen", "127.0.0.1:0"],
    );
    let issuer_address = issuer.terminals.to_string();
    let acquirer = start_with(
        &acquirer_dir,
        &[
            "up",
            "--http",
            "127.0.0.1:0",
            "--iso8583",
            "127.0.0.1:0",
            "--remote-issuer",
            &issuer_address,
        ],
    );
    assert!(
        acquirer
            .banner
            .iter()
            .any(|line| line.contains(&format!("remote: the issuer host at {issuer_address}"))),
        "{:?}",
        acquirer.banner
    );

    // The issuer host answers the link: an echo test.
    let mut echo = iso8583::Message::new(iso8583::Mti::parse("0820").unwrap());
    for (field, value) in [
        (11, "000001"),
        (32, "10"),
        (41, "10000001"),
        (42, "898310058120001"),
        (60, "00000000301"),
    ] {
        echo.set_text(field, value);
    }
    let answer = exchange_iso87(issuer.terminals, &echo);
    assert_eq!(
        (
            answer.mti.as_str(),
            answer.response_code().unwrap().as_str()
        ),
        ("0830", "00")
    );
    // A terminal sells, with the demo's published test keys: the acquirer process forwards the
    // card to the issuer process, which decides and posts; the answer is MACed and carries the
    // issuer's ARPC.
    let answer = chip_sale_at(acquirer.terminals, "10000001", 1_234);
    assert_eq!(answer.response, iso8583::ResponseCode::Approved);
    assert!(answer.rrn.is_some() && answer.auth_code.is_some());
    stop(acquirer);
    stop(issuer);
    let _ = std::fs::remove_dir_all(&issuer_dir);
    let _ = std::fs::remove_dir_all(&acquirer_dir);
}

/// One framed exchange with a terminal listener (2-byte length prefix).
fn exchange_frame(stream: &mut TcpStream, body: &[u8]) -> Vec<u8> {
    stream
        .write_all(&[(body.len() >> 8) as u8, body.len() as u8])
        .unwrap();
    stream.write_all(body).unwrap();
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).unwrap();
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut answer).unwrap();
    answer
}

/// Terminal `terminal_id` of the demo signs on at `address` with its published test master key
/// and sells `amount_minor` on Li Lei's debit card (chip and PIN, the card's published issuer
/// master key); the answer, checked by the terminal (MAC, echoes, ARPC).
fn chip_sale_at(
    address: std::net::SocketAddr,
    terminal_id: &str,
    amount_minor: u64,
) -> terminal::Answer {
    use terminal::{ChipCard, ChipTransaction, Sale, Terminal, TransactionDate};
    let demo_card = demo::cards()
        .into_iter()
        .find(|card| card.card.id == "card-CH001-D")
        .unwrap();
    let key = |name: &str| paycrypto::TdesKey::new(&demo::demo_test_key(name).unwrap()).unwrap();
    let tmk = key(&demo::terminal_master_key_name(terminal_id));
    let issuer_master_key = key(&format!("issuer/{}/imk-ac", demo_card.card.issuer.0));

    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let terminal = Terminal::new(terminal_id, demo::SHANGHAI_MERCHANT).unwrap();
    let sign_on = terminal
        .sign_on(iso8583::Stan::new(1).unwrap(), "001")
        .unwrap();
    let reply = exchange_frame(&mut stream, &terminal.pack(&sign_on).unwrap());
    let signed = terminal.signed_on(&sign_on, &reply, &tmk).unwrap();

    let pan = paycrypto::Pan::new(&demo_card.pan).unwrap();
    let mut card = ChipCard::new(&issuer_master_key, pan, 1).unwrap();
    let read = card
        .generate_arqc(&ChipTransaction {
            amount_minor,
            currency: money::Currency::CNY,
            country: 156,
            date: TransactionDate {
                year: 2026,
                month: 11,
                day: 25,
            },
            unpredictable_number: [0x12, 0x34, 0x56, 0x78],
        })
        .unwrap();
    let block = signed
        .keys
        .pin_block(&paycrypto::Pin::new(demo::DEMO_PIN).unwrap(), card.pan())
        .unwrap();
    let mut sale = terminal
        .sale(&Sale {
            stan: iso8583::Stan::new(2).unwrap(),
            batch: signed.batch,
            amount_minor,
            currency: money::Currency::CNY,
            pan: card.pan(),
            field55: Some(&read.field55),
            pin_block: Some(&block),
        })
        .unwrap();
    let frame = terminal.pack_with_mac(&mut sale, &signed.keys).unwrap();
    let reply = exchange_frame(&mut stream, &frame);
    let answer = terminal.answer(&sale, &reply, Some(&signed.keys)).unwrap();
    let issuer_data = answer
        .issuer_data
        .as_ref()
        .expect("a chip answer carries the ARPC");
    assert!(
        card.check_arpc(&read, issuer_data).unwrap().is_some(),
        "the issuer's ARPC verifies on the card"
    );
    answer
}
