#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `easypos terminal …` in scripted mode against a running `easypos up`, as an integrator's
//! script drives it: card files from `easypos cards issue`, a terminal from `easypos terminal
//! init`, and one process per transaction whose exit code and JSON say what happened.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
use common::{Run, STARTUP_TIMEOUT, easypos, run, setup};

fn temp_dir(name: &str) -> std::path::PathBuf {
    common::temp_dir("terminal", name)
}

/// `easypos up` on free loopback ports in `dir`.
fn up(dir: &Path) -> common::Running {
    common::start(dir)
}

fn card(id: &str) -> String {
    format!("cards/{id}.json")
}

/// Runs a terminal command with `--config CONFIG --json`.
fn terminal(dir: &Path, config: &str, command: &str, args: &[&str]) -> Run {
    let mut all = vec!["terminal", command, "--config", config, "--json"];
    all.extend_from_slice(args);
    run(dir, &all)
}

fn balance(dir: &Path, config: &str, card_id: &str) -> String {
    let card = card(card_id);
    let result = terminal(
        dir,
        config,
        "balance",
        &[
            "--method",
            "debit",
            "--card",
            &card,
            "--pin",
            demo::DEMO_PIN,
        ],
    );
    assert_eq!(result.code, 0, "{} {}", result.stdout, result.stderr);
    result.json["receipt"]["balance"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn pay(dir: &Path, config: &str, card_id: &str, pin: &str, amount: &str) -> Run {
    let card = card(card_id);
    terminal(
        dir,
        config,
        "pay",
        &[
            "--method", "debit", "--entry", "chip", "--card", &card, "--pin", pin, "--amount",
            amount,
        ],
    )
}

fn demo_pan(card_id: &str) -> String {
    demo::cards()
        .into_iter()
        .find(|card| card.card.id == card_id)
        .unwrap()
        .pan
}

/// Every file under `dir` except the card files.
fn state_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name == "cards") {
                continue;
            }
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("easypos.db")
        {
            out.extend(std::fs::read(&path).unwrap());
        }
    }
    out
}

#[test]
fn a_terminals_day_in_scripted_mode_approvals_declines_void_refund_and_settlement() {
    let dir = temp_dir("day");
    let host = up(&dir);
    setup(&dir, "10000001", "terminal.toml", host.terminals, 20_000);
    let mut outputs = String::new();

    // Sign-on: working keys kept encrypted under the master key, batch 1.
    let signed = terminal(&dir, "terminal.toml", "sign-on", &[]);
    assert_eq!(
        (signed.code, signed.json["batch"].as_u64()),
        (0, Some(1)),
        "{}",
        signed.stderr
    );
    let state_file = dir.join("terminal-10000001/state.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&state_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let opening = balance(&dir, "terminal.toml", "card-CH001-D");
    assert_eq!(opening, "5000.00");

    // Approval: chip and PIN; the receipt fields are in the JSON.
    let sale = pay(
        &dir,
        "terminal.toml",
        "card-CH001-D",
        demo::DEMO_PIN,
        "12.34",
    );
    outputs.push_str(&sale.stdout);
    assert_eq!(sale.code, 0, "{} {}", sale.stdout, sale.stderr);
    let receipt = &sale.json["receipt"];
    assert_eq!(sale.json["response_code"], "00");
    assert_eq!(receipt["card"], "621234******0000");
    assert_eq!(receipt["amount"], "12.34");
    assert_eq!(receipt["entry"], "chip");
    assert_eq!(receipt["cvm"], "pin-verified");
    assert_eq!(receipt["terminal_id"], "10000001");
    assert_eq!(receipt["merchant_id"], "898310058120001");
    assert_eq!(receipt["aid"], "A000000333010101");
    assert_eq!(receipt["rrn"].as_str().unwrap().len(), 12);
    assert_eq!(receipt["auth_code"].as_str().unwrap().len(), 6);
    let sale_trace = receipt["stan"].as_u64().unwrap().to_string();
    assert!(
        sale.json["receipt_text"]
            .as_str()
            .unwrap()
            .contains("CARDHOLDER COPY")
    );
    assert_eq!(balance(&dir, "terminal.toml", "card-CH001-D"), "4987.66");
    // The receipt carries the acquirer's signed statement (field 62) for its QR code; the
    // host's public API says it is genuine, and an altered copy is not (docs/aftersale.md).
    let payload = receipt["verification"].as_str().unwrap();
    assert!(
        payload.starts_with(&format!(
            "EPR1|{}|10000001|898310058120001|621234******0000|1234|CNY|",
            receipt["rrn"].as_str().unwrap()
        )),
        "{payload}"
    );
    assert!(
        sale.json["receipt_text"]
            .as_str()
            .unwrap()
            .contains("VERIFY AT /verify")
    );
    let web: std::net::SocketAddr = host
        .web
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let verify = |payload: &str| {
        common::http(
            web,
            "POST",
            "/api/v1/receipts/verify",
            Some(serde_json::json!({ "payload": payload })),
        )
    };
    let (status, verified) = verify(payload);
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["rrn"], receipt["rrn"]);
    assert_eq!(verified["auth_code"], receipt["auth_code"]);
    assert_eq!(verified["amount"]["major"], "12.34");
    let (status, refused) = verify(&payload.replacen("|1234|", "|1235|", 1));
    assert_eq!(status, 422, "{refused}");
    // The card's ATC went up with every cryptogram and is on disk.
    let card_file: Value =
        serde_json::from_slice(&std::fs::read(dir.join(card("card-CH001-D"))).unwrap()).unwrap();
    assert_eq!(card_file["chip"]["atc"], 3, "two inquiries and a sale");

    // Declines: a wrong PIN (55) and not enough money (51), exit code 1.
    let wrong = pay(&dir, "terminal.toml", "card-CH002-D", "654321", "1.00");
    assert_eq!(
        (wrong.code, wrong.json["response_code"].as_str()),
        (1, Some("55")),
        "{}",
        wrong.stderr
    );
    assert_eq!(wrong.json["approved"], false);
    let poor = pay(
        &dir,
        "terminal.toml",
        "card-CH003-D",
        demo::DEMO_PIN,
        "900.00",
    );
    assert_eq!(
        (poor.code, poor.json["response_code"].as_str()),
        (1, Some("51")),
        "{}",
        poor.stderr
    );
    outputs.push_str(&wrong.stdout);
    outputs.push_str(&poor.stdout);

    // Refused by the terminal itself, before anything is sent: exit code 2.
    let swiped = terminal(
        &dir,
        "terminal.toml",
        "pay",
        &[
            "--method",
            "debit",
            "--entry",
            "swipe",
            "--card",
            &card("card-CH001-D"),
            "--amount",
            "1.00",
        ],
    );
    assert_eq!(swiped.code, 2, "a chip card swiped without fallback");
    let credit_as_debit = pay(
        &dir,
        "terminal.toml",
        "card-CH001-C",
        demo::DEMO_PIN,
        "1.00",
    );
    assert_eq!(
        credit_as_debit.code, 2,
        "a credit card under the debit method"
    );

    // A void needs the supervisor (R16): without the password, or with a wrong one, nothing
    // is sent.
    for args in [vec![], vec!["--supervisor", "123456"]] {
        let mut all = vec![
            "--card",
            "cards/card-CH001-D.json",
            "--trace",
            sale_trace.as_str(),
        ];
        all.extend(args);
        let refused = terminal(&dir, "terminal.toml", "void", &all);
        assert_eq!(refused.code, 2, "{} {}", refused.stdout, refused.stderr);
        assert!(refused.stderr.contains("supervisor"), "{}", refused.stderr);
    }
    let refused = terminal(
        &dir,
        "terminal.toml",
        "refund",
        &[
            "--card",
            "cards/card-CH001-D.json",
            "--trace",
            &sale_trace,
            "--amount",
            "1.00",
        ],
    );
    assert_eq!(refused.code, 2, "a refund needs the supervisor too");
    assert_eq!(balance(&dir, "terminal.toml", "card-CH001-D"), "4987.66");

    // Void of the sale, the supervisor's password given: the money is back.
    let void = terminal(
        &dir,
        "terminal.toml",
        "void",
        &[
            "--card",
            &card("card-CH001-D"),
            "--trace",
            &sale_trace,
            "--supervisor",
            "999999",
        ],
    );
    assert_eq!(
        (void.code, void.json["response_code"].as_str()),
        (0, Some("00")),
        "{} {}",
        void.stdout,
        void.stderr
    );
    assert_eq!(void.json["receipt"]["transaction"], "void");
    assert_eq!(balance(&dir, "terminal.toml", "card-CH001-D"), "5000.00");
    let again = terminal(
        &dir,
        "terminal.toml",
        "void",
        &[
            "--card",
            &card("card-CH001-D"),
            "--trace",
            &sale_trace,
            "--supervisor",
            "999999",
        ],
    );
    assert_eq!(again.code, 2, "a sale is voided once");

    // A fallback swipe (signature) and a partial refund of it.
    let swipe = terminal(
        &dir,
        "terminal.toml",
        "pay",
        &[
            "--method",
            "debit",
            "--entry",
            "swipe",
            "--fallback",
            "--card",
            &card("card-CH001-D"),
            "--amount",
            "20.00",
        ],
    );
    assert_eq!(swipe.code, 0, "{} {}", swipe.stdout, swipe.stderr);
    assert_eq!(swipe.json["receipt"]["entry"], "fallback-swipe");
    assert_eq!(swipe.json["receipt"]["cvm"], "signature");
    let swipe_trace = swipe.json["receipt"]["stan"].as_u64().unwrap().to_string();
    let refund = terminal(
        &dir,
        "terminal.toml",
        "refund",
        &[
            "--supervisor",
            "999999",
            "--card",
            &card("card-CH001-D"),
            "--trace",
            &swipe_trace,
            "--amount",
            "5.00",
        ],
    );
    assert_eq!(
        (refund.code, refund.json["response_code"].as_str()),
        (0, Some("00")),
        "{}",
        refund.stderr
    );
    assert_eq!(balance(&dir, "terminal.toml", "card-CH001-D"), "4985.00");
    let too_much = terminal(
        &dir,
        "terminal.toml",
        "refund",
        &[
            "--supervisor",
            "999999",
            "--card",
            &card("card-CH001-D"),
            "--trace",
            &swipe_trace,
            "--amount",
            "50.00",
        ],
    );
    assert_eq!(too_much.code, 2, "a refund above the sale is refused");

    // Tap under the contactless limit: no PIN.
    let tap = terminal(
        &dir,
        "terminal.toml",
        "pay",
        &[
            "--method",
            "credit",
            "--entry",
            "tap",
            "--card",
            &card("card-CH001-C"),
            "--amount",
            "8.00",
        ],
    );
    assert_eq!(
        (tap.code, tap.json["receipt"]["cvm"].as_str()),
        (0, Some("no-cvm")),
        "{} {}",
        tap.stdout,
        tap.stderr
    );
    let tap_trace = tap.json["receipt"]["stan"].as_u64().unwrap().to_string();

    // Pre-authorization and its completion for less.
    let held = terminal(
        &dir,
        "terminal.toml",
        "preauth",
        &[
            "--method",
            "debit",
            "--card",
            &card("card-CH001-D"),
            "--pin",
            demo::DEMO_PIN,
            "--amount",
            "100.00",
        ],
    );
    assert_eq!(held.code, 0, "{} {}", held.stdout, held.stderr);
    let held_trace = held.json["receipt"]["stan"].as_u64().unwrap().to_string();
    assert_eq!(balance(&dir, "terminal.toml", "card-CH001-D"), "4885.00");
    let completed = terminal(
        &dir,
        "terminal.toml",
        "complete",
        &[
            "--card",
            &card("card-CH001-D"),
            "--trace",
            &held_trace,
            "--amount",
            "60.00",
        ],
    );
    assert_eq!(
        completed.code, 0,
        "{} {}",
        completed.stdout, completed.stderr
    );
    assert_eq!(balance(&dir, "terminal.toml", "card-CH001-D"), "4925.00");

    // Settlement: the terminal's totals agree with the host's journal. Debits: the chip
    // sale, the swipe, the tap and the completion; credits: the void and the refund.
    let settled = terminal(&dir, "terminal.toml", "settle", &[]);
    assert_eq!(settled.code, 0, "{} {}", settled.stdout, settled.stderr);
    assert_eq!(settled.json["agreed"], true);
    assert_eq!(
        (
            settled.json["debit_count"].as_u64(),
            settled.json["debit_minor"].as_u64()
        ),
        (Some(4), Some(1_234 + 2_000 + 800 + 6_000))
    );
    assert_eq!(
        (
            settled.json["credit_count"].as_u64(),
            settled.json["credit_minor"].as_u64()
        ),
        (Some(2), Some(1_234 + 500))
    );
    let batch = terminal(&dir, "terminal.toml", "batch", &[]);
    assert_eq!(batch.json["batch"], 2, "the next sign-on opened batch 2");
    assert_eq!(batch.json["transactions"].as_array().unwrap().len(), 0);
    assert!(dir.join("terminal-10000001/batch-000001.json").exists());
    // Sign-off: the host forgets the keys; the next command signs on by itself.
    let off = terminal(&dir, "terminal.toml", "sign-off", &[]);
    assert_eq!(off.code, 0, "{}", off.stderr);
    let state: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(state["session"], Value::Null);
    // Settling an empty batch agrees too.
    assert_eq!(
        terminal(&dir, "terminal.toml", "settle", &[]).json["agreed"],
        true
    );

    // A reprint says REPRINT; the ESC/POS file carries both copies.
    let reprint = run(
        &dir,
        &[
            "terminal",
            "reprint",
            "--config",
            "terminal.toml",
            "--escpos-out",
            "receipt.bin",
            "--receipt-pdf",
            "receipt.pdf",
        ],
    );
    assert_eq!(reprint.code, 0, "{}", reprint.stderr);
    assert!(
        reprint.stdout.contains("*** REPRINT ***"),
        "{}",
        reprint.stdout
    );
    assert!(
        reprint.stdout.contains("PRE-AUTH COMPLETION"),
        "{}",
        reprint.stdout
    );
    let escpos = std::fs::read(dir.join("receipt.bin")).unwrap();
    assert!(escpos.starts_with(&[0x1B, 0x40]));
    // The PDF: both copies, REPRINT on each, and a cross-reference table where startxref says.
    let pdf = std::fs::read(dir.join("receipt.pdf")).unwrap();
    let pdf_text = String::from_utf8_lossy(&pdf);
    assert!(pdf.starts_with(b"%PDF-1.4"));
    assert_eq!(pdf_text.matches("/Type /Page ").count(), 2);
    assert_eq!(pdf_text.matches("*** REPRINT ***").count(), 2);
    let xref: usize = pdf_text
        .rsplit("startxref\n")
        .next()
        .and_then(|tail| tail.lines().next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(pdf[xref..].starts_with(b"xref\n"));
    outputs.push_str(&reprint.stdout);

    // A refund of a sale of a closed batch (batch 1), found in the terminal's archive of it;
    // it counts in the open batch.
    let unknown_batch = terminal(
        &dir,
        "terminal.toml",
        "refund",
        &[
            "--supervisor",
            "999999",
            "--card",
            &card("card-CH001-C"),
            "--trace",
            &tap_trace,
            "--batch",
            "7",
            "--amount",
            "3.00",
        ],
    );
    assert_eq!(unknown_batch.code, 2, "{}", unknown_batch.stderr);
    let late_refund = terminal(
        &dir,
        "terminal.toml",
        "refund",
        &[
            "--supervisor",
            "999999",
            "--card",
            &card("card-CH001-C"),
            "--trace",
            &tap_trace,
            "--batch",
            "1",
            "--amount",
            "3.00",
        ],
    );
    assert_eq!(
        (late_refund.code, late_refund.json["response_code"].as_str()),
        (0, Some("00")),
        "{} {}",
        late_refund.stdout,
        late_refund.stderr
    );
    assert_eq!(
        late_refund.json["receipt"]["original_stan"].as_u64(),
        tap_trace.parse().ok()
    );
    let settled = terminal(&dir, "terminal.toml", "settle", &[]);
    assert_eq!(
        (
            settled.json["agreed"].as_bool(),
            settled.json["credit_count"].as_u64(),
            settled.json["credit_minor"].as_u64()
        ),
        (Some(true), Some(1), Some(300)),
        "{}",
        settled.stdout
    );

    // No card number in clear anywhere but the card files: not in the terminal's state, its
    // closed batch, the receipt file, the outputs or the host's logs.
    let mut stored = state_bytes(&dir);
    stored.extend(outputs.as_bytes());
    for id in [
        "card-CH001-D",
        "card-CH002-D",
        "card-CH003-D",
        "card-CH001-C",
    ] {
        let pan = demo_pan(id);
        assert!(
            !stored
                .windows(pan.len())
                .any(|window| window == pan.as_bytes()),
            "{id}'s number is in clear outside its card file"
        );
    }
    drop(host);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A host that takes the first frame through to `host` and swallows its answer, then
/// swallows everything: the host is "stopped" mid-transaction, after the sale arrived. The
/// receiver hears when the first frame has been answered by the real host.
fn swallowing_proxy(host: SocketAddr) -> (SocketAddr, std::sync::mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (arrived, arrivals) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut forwarded = false;
        for client in listener.incoming() {
            let Ok(mut client) = client else { break };
            let forward = !forwarded;
            forwarded = true;
            let arrived = arrived.clone();
            std::thread::spawn(move || {
                let mut held = Vec::new();
                loop {
                    let mut length = [0u8; 2];
                    if client.read_exact(&mut length).is_err() {
                        break;
                    }
                    let mut frame = vec![0u8; usize::from(u16::from_be_bytes(length))];
                    if client.read_exact(&mut frame).is_err() {
                        break;
                    }
                    if forward && held.is_empty() {
                        let mut upstream = TcpStream::connect(host).unwrap();
                        upstream.write_all(&length).unwrap();
                        upstream.write_all(&frame).unwrap();
                        let mut answer_length = [0u8; 2];
                        upstream.read_exact(&mut answer_length).unwrap();
                        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(answer_length))];
                        upstream.read_exact(&mut answer).unwrap();
                        // The answer is never passed on.
                        held.push(upstream);
                        let _ = arrived.send(());
                    }
                }
            });
        }
    });
    (address, arrivals)
}

#[test]
fn no_answer_reverses_and_a_pending_reversal_goes_first_on_the_next_start() {
    let dir = temp_dir("timeout");
    let host = up(&dir);
    setup(&dir, "10000001", "terminal.toml", host.terminals, 1_000);
    // A second terminal of the same merchant looks at the card's balance on the real host.
    setup(&dir, "10000002", "watch.toml", host.terminals, 20_000);
    assert_eq!(terminal(&dir, "terminal.toml", "sign-on", &[]).code, 0);
    let opening = balance(&dir, "watch.toml", "card-CH002-D");
    assert_eq!(opening, "12000.00");

    // The host is unreachable: nothing left the terminal, nothing to reverse.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_address = closed.local_addr().unwrap();
    drop(closed);
    let config = std::fs::read_to_string(dir.join("terminal.toml")).unwrap();
    let real_host = format!("host = \"{}\"", host.terminals);
    std::fs::write(
        dir.join("terminal.toml"),
        config.replace(&real_host, &format!("host = \"{closed_address}\"")),
    )
    .unwrap();
    let unreachable = pay(
        &dir,
        "terminal.toml",
        "card-CH002-D",
        demo::DEMO_PIN,
        "12.34",
    );
    assert_eq!(
        unreachable.code, 3,
        "{} {}",
        unreachable.stdout, unreachable.stderr
    );
    let batch = terminal(&dir, "terminal.toml", "batch", &[]);
    assert_eq!(batch.json["pending_reversal"], Value::Null);

    // The sale reaches the host, which posts it, but no answer comes back within the
    // terminal's timeout: the terminal reverses; the reversal cannot be delivered either, so
    // it is kept.
    let (proxy, _) = swallowing_proxy(host.terminals);
    std::fs::write(
        dir.join("terminal.toml"),
        config.replace(&real_host, &format!("host = \"{proxy}\"")),
    )
    .unwrap();
    let started = Instant::now();
    let lost = pay(
        &dir,
        "terminal.toml",
        "card-CH002-D",
        demo::DEMO_PIN,
        "12.34",
    );
    assert_eq!(lost.code, 3, "{} {}", lost.stdout, lost.stderr);
    assert_eq!(lost.json["reversal"], "pending");
    assert_eq!(lost.json["approved"], false);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "bounded by the timeout"
    );
    let trace = lost.json["receipt"]["stan"].as_u64().unwrap();
    let batch = terminal(&dir, "terminal.toml", "batch", &[]);
    assert_eq!(batch.json["pending_reversal"].as_u64(), Some(trace));
    assert_eq!(
        balance(&dir, "watch.toml", "card-CH002-D"),
        "11987.66",
        "the sale posted at the host"
    );
    // While the reversal is pending, nothing new goes out.
    let blocked = pay(
        &dir,
        "terminal.toml",
        "card-CH002-D",
        demo::DEMO_PIN,
        "1.00",
    );
    assert_eq!(blocked.code, 3);
    assert!(blocked.stderr.contains("pending"), "{}", blocked.stderr);

    // The host is back: the next command sends the reversal before its own message.
    std::fs::write(dir.join("terminal.toml"), &config).unwrap();
    let next = pay(
        &dir,
        "terminal.toml",
        "card-CH002-D",
        demo::DEMO_PIN,
        "1.00",
    );
    assert_eq!(next.code, 0, "{} {}", next.stdout, next.stderr);
    let batch = terminal(&dir, "terminal.toml", "batch", &[]);
    assert_eq!(batch.json["pending_reversal"], Value::Null);
    let entries = batch.json["transactions"].as_array().unwrap();
    let reversed = entries
        .iter()
        .find(|entry| entry["stan"].as_u64() == Some(trace))
        .unwrap();
    assert_eq!(reversed["reversed"], true);
    assert_eq!(
        balance(&dir, "watch.toml", "card-CH002-D"),
        "11999.00",
        "the lost sale was undone; the next one stands"
    );
    // The host and the terminal agree that the reversed sale does not count.
    let settled = terminal(&dir, "terminal.toml", "settle", &[]);
    assert_eq!(
        (
            settled.json["agreed"].as_bool(),
            settled.json["debit_count"].as_u64()
        ),
        (Some(true), Some(1)),
        "{} {}",
        settled.stdout,
        settled.stderr
    );
    drop(host);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_terminal_killed_while_waiting_reverses_on_its_next_start() {
    let dir = temp_dir("killed");
    let host = up(&dir);
    setup(&dir, "10000001", "terminal.toml", host.terminals, 60_000);
    setup(&dir, "10000002", "watch.toml", host.terminals, 20_000);
    assert_eq!(terminal(&dir, "terminal.toml", "sign-on", &[]).code, 0);
    assert_eq!(balance(&dir, "watch.toml", "card-CH005-D"), "3000.00");
    let config = std::fs::read_to_string(dir.join("terminal.toml")).unwrap();
    let real_host = format!("host = \"{}\"", host.terminals);
    let (proxy, arrivals) = swallowing_proxy(host.terminals);
    std::fs::write(
        dir.join("terminal.toml"),
        config.replace(&real_host, &format!("host = \"{proxy}\"")),
    )
    .unwrap();
    // The sale reaches the host; the terminal is waiting for the answer when the power goes.
    let mut child = easypos(&dir)
        .args([
            "terminal",
            "pay",
            "--json",
            "--method",
            "debit",
            "--card",
            &card("card-CH005-D"),
            "--pin",
            demo::DEMO_PIN,
            "--amount",
            "30.00",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    arrivals
        .recv_timeout(STARTUP_TIMEOUT)
        .expect("the sale reached the host");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(balance(&dir, "watch.toml", "card-CH005-D"), "2970.00");
    let batch = terminal(&dir, "terminal.toml", "batch", &[]);
    assert!(
        batch.json["pending_reversal"].is_u64(),
        "the reversal was on disk before the sale left: {}",
        batch.stdout
    );

    // Power back, host reachable: the first thing the terminal does is reverse the sale.
    std::fs::write(dir.join("terminal.toml"), &config).unwrap();
    let signed = terminal(&dir, "terminal.toml", "sign-on", &[]);
    assert_eq!(signed.code, 0, "{}", signed.stderr);
    assert_eq!(signed.json["reversal_sent"], true);
    assert_eq!(balance(&dir, "watch.toml", "card-CH005-D"), "3000.00");
    let settled = terminal(&dir, "terminal.toml", "settle", &[]);
    assert_eq!(
        (
            settled.json["agreed"].as_bool(),
            settled.json["debit_count"].as_u64()
        ),
        (Some(true), Some(0)),
        "{}",
        settled.stdout
    );
    drop(host);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A line that passes every frame both ways but changes the last byte (the MAC) of the first
/// answer to a sale (MTI 0210 after the 5-byte TPDU and the 6-byte header).
fn mac_corrupting_proxy(host: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let corrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        for client in listener.incoming() {
            let Ok(mut client) = client else { break };
            let corrupted = corrupted.clone();
            std::thread::spawn(move || {
                let mut upstream = TcpStream::connect(host).unwrap();
                loop {
                    let mut length = [0u8; 2];
                    if client.read_exact(&mut length).is_err() {
                        break;
                    }
                    let mut frame = vec![0u8; usize::from(u16::from_be_bytes(length))];
                    client.read_exact(&mut frame).unwrap();
                    upstream.write_all(&length).unwrap();
                    upstream.write_all(&frame).unwrap();
                    let mut answer_length = [0u8; 2];
                    upstream.read_exact(&mut answer_length).unwrap();
                    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(answer_length))];
                    upstream.read_exact(&mut answer).unwrap();
                    if answer.get(11..13) == Some(&[0x02, 0x10])
                        && !corrupted.swap(true, std::sync::atomic::Ordering::SeqCst)
                    {
                        let last = answer.len() - 1;
                        answer[last] ^= 0x01;
                    }
                    client.write_all(&answer_length).unwrap();
                    client.write_all(&answer).unwrap();
                }
            });
        }
    });
    address
}

#[test]
fn an_answer_whose_mac_fails_is_not_trusted_and_the_sale_is_reversed_at_once() {
    let dir = temp_dir("badmac");
    let host = up(&dir);
    setup(&dir, "10000001", "terminal.toml", host.terminals, 20_000);
    setup(&dir, "10000002", "watch.toml", host.terminals, 20_000);
    assert_eq!(balance(&dir, "watch.toml", "card-CH004-D"), "50000.00");
    let config = std::fs::read_to_string(dir.join("terminal.toml")).unwrap();
    let proxy = mac_corrupting_proxy(host.terminals);
    std::fs::write(
        dir.join("terminal.toml"),
        config.replace(
            &format!("host = \"{}\"", host.terminals),
            &format!("host = \"{proxy}\""),
        ),
    )
    .unwrap();
    let sale = pay(
        &dir,
        "terminal.toml",
        "card-CH004-D",
        demo::DEMO_PIN,
        "99.00",
    );
    assert_eq!(sale.code, 3, "{} {}", sale.stdout, sale.stderr);
    assert_eq!(sale.json["approved"], false);
    assert_eq!(sale.json["reversal"], "acknowledged");
    assert!(
        sale.json["message"].as_str().unwrap().contains("MAC"),
        "{}",
        sale.stdout
    );
    assert_eq!(
        balance(&dir, "watch.toml", "card-CH004-D"),
        "50000.00",
        "the host reversed what it had approved"
    );
    let batch = terminal(&dir, "terminal.toml", "batch", &[]);
    assert_eq!(batch.json["pending_reversal"], Value::Null);
    assert_eq!(batch.json["transactions"][0]["reversed"], true);
    // The next sale through the same line is answered and checked normally.
    let next = pay(
        &dir,
        "terminal.toml",
        "card-CH004-D",
        demo::DEMO_PIN,
        "1.00",
    );
    assert_eq!(next.code, 0, "{} {}", next.stdout, next.stderr);
    drop(host);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cards_are_issued_once_shown_masked_and_the_commands_have_help() {
    let dir = temp_dir("cards");
    let issued = run(
        &dir,
        &[
            "cards",
            "issue",
            "card-CH004-U",
            "--out",
            "usd.json",
            "--json",
        ],
    );
    assert_eq!(issued.code, 0, "{}", issued.stderr);
    assert_eq!(issued.json[0]["card"]["pan"], "625679******0035");
    assert!(!issued.stdout.contains(&demo_pan("card-CH004-U")));
    let card: Value =
        serde_json::from_slice(&std::fs::read(dir.join("usd.json")).unwrap()).unwrap();
    assert_eq!(
        card["pan"],
        demo_pan("card-CH004-U"),
        "the card file is the card"
    );
    assert_eq!(card["currency"], "USD");
    assert!(
        card["track2"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}=3012201", demo_pan("card-CH004-U")))
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(dir.join("usd.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let again = run(
        &dir,
        &["cards", "issue", "card-CH004-U", "--out", "usd.json"],
    );
    assert_eq!(again.code, 2, "a card is issued once");
    assert!(again.stderr.contains("exists already"), "{}", again.stderr);
    let shown = run(&dir, &["cards", "show", "usd.json"]);
    assert_eq!(shown.code, 0);
    assert!(
        shown.stdout.contains("625679******0035"),
        "{}",
        shown.stdout
    );
    assert!(!shown.stdout.contains(&demo_pan("card-CH004-U")));
    let listed = run(&dir, &["cards", "list", "--json"]);
    assert_eq!(listed.json.as_array().unwrap().len(), demo::cards().len());
    assert!(!listed.stdout.contains(&demo_pan("card-CH001-D")));
    let unknown = run(&dir, &["cards", "issue", "card-XX"]);
    assert_eq!(unknown.code, 2);

    for args in [
        &["terminal", "--help"][..],
        &["terminal", "pay", "--help"],
        &["terminal", "void", "--help"],
        &["terminal", "refund", "--help"],
        &["terminal", "preauth", "--help"],
        &["terminal", "complete", "--help"],
        &["terminal", "balance", "--help"],
        &["terminal", "settle", "--help"],
        &["terminal", "sign-on", "--help"],
        &["terminal", "sign-off", "--help"],
        &["terminal", "tui", "--help"],
        &["cards", "--help"],
        &["cards", "issue", "--help"],
    ] {
        let help = run(&dir, args);
        assert_eq!(help.code, 0, "{args:?}");
        assert!(help.stdout.contains("Usage:"), "{args:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Batch close with batch upload (批上送): the terminal's batch is edited behind its back so
/// that it holds a sale the host never approved and lacks one the host did. Its totals
/// disagree; it uploads its transactions and settles again; the host closes the batch and
/// records both differences, which `easypos up`'s database then holds for end of day's
/// `batches-<date>.csv`.
#[test]
fn a_batch_that_disagrees_is_uploaded_and_closed_with_each_difference_recorded() {
    let dir = temp_dir("upload");
    let mut host = up(&dir);
    setup(&dir, "10000001", "terminal.toml", host.terminals, 20_000);
    for amount in ["12.34", "5.00"] {
        let sale = pay(
            &dir,
            "terminal.toml",
            "card-CH001-D",
            demo::DEMO_PIN,
            amount,
        );
        assert_eq!(sale.code, 0, "{} {}", sale.stdout, sale.stderr);
    }
    let state_file = dir.join("terminal-10000001/state.json");
    let mut state: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    let transactions = state["transactions"].as_array_mut().unwrap();
    assert_eq!(transactions.len(), 2);
    // The host's 5.00 sale is lost from the terminal; a 7.00 sale the host never saw appears.
    let lost_stan = transactions[1]["stan"].as_u64().unwrap();
    let mut phantom = transactions[0].clone();
    phantom["stan"] = 900.into();
    phantom["amount_minor"] = 700.into();
    transactions[1] = phantom;
    std::fs::write(&state_file, serde_json::to_vec(&state).unwrap()).unwrap();

    let settled = terminal(&dir, "terminal.toml", "settle", &[]);
    assert_eq!(
        (
            settled.code,
            settled.json["agreed"].as_bool(),
            settled.json["closed"].as_bool(),
            settled.json["reconciliation"].as_str(),
            settled.json["uploaded"].as_u64(),
        ),
        (1, Some(false), Some(true), Some("resolved"), Some(2)),
        "{} {}",
        settled.stdout,
        settled.stderr
    );
    let batch = terminal(&dir, "terminal.toml", "batch", &[]);
    assert_eq!(batch.json["batch"], 2, "the batch is closed");
    assert!(dir.join("terminal-10000001/batch-000001.json").exists());
    // The next batch, untouched, agrees at once.
    let sale = pay(
        &dir,
        "terminal.toml",
        "card-CH001-D",
        demo::DEMO_PIN,
        "1.00",
    );
    assert_eq!(sale.code, 0, "{}", sale.stderr);
    let settled = terminal(&dir, "terminal.toml", "settle", &[]);
    assert_eq!(
        (
            settled.code,
            settled.json["reconciliation"].as_str(),
            settled.json["uploaded"].as_u64()
        ),
        (0, Some("agreed"), Some(0)),
        "{}",
        settled.stdout
    );
    host.stop();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let closes = runtime.block_on(async {
        let store = store::Store::open(&store::Backend::Sqlite {
            path: dir.join("easypos-data").join("easypos.db"),
        })
        .await
        .unwrap();
        let closes = store.batch_closes(0, i64::MAX).await.unwrap();
        store.close().await.unwrap();
        closes
    });
    let summary: Vec<_> = closes
        .iter()
        .map(|close| {
            (
                close.batch,
                close.status.clone(),
                close
                    .differences
                    .iter()
                    .map(|difference| {
                        (
                            difference.stan,
                            difference.difference.clone(),
                            difference.terminal_amount_minor,
                            difference.host_amount_minor,
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                1,
                "resolved".to_owned(),
                vec![
                    (lost_stan as i64, "host_only".to_owned(), None, Some(500)),
                    (900, "terminal_only".to_owned(), Some(700), None),
                ]
            ),
            (2, "agreed".to_owned(), vec![]),
        ]
    );
}

/// A proxy in front of `host` that keeps a copy of every request frame it forwards.
fn recording_proxy(host: SocketAddr) -> (SocketAddr, std::sync::mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (sender, frames) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { break };
            let sender = sender.clone();
            std::thread::spawn(move || {
                let mut upstream = TcpStream::connect(host).unwrap();
                loop {
                    let mut length = [0u8; 2];
                    if client.read_exact(&mut length).is_err() {
                        break;
                    }
                    let mut frame = vec![0u8; usize::from(u16::from_be_bytes(length))];
                    client.read_exact(&mut frame).unwrap();
                    upstream.write_all(&length).unwrap();
                    upstream.write_all(&frame).unwrap();
                    let _ = sender.send(frame);
                    let mut answer_length = [0u8; 2];
                    upstream.read_exact(&mut answer_length).unwrap();
                    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(answer_length))];
                    upstream.read_exact(&mut answer).unwrap();
                    client.write_all(&answer_length).unwrap();
                    client.write_all(&answer).unwrap();
                }
            });
        }
    });
    (address, frames)
}

/// Where the terminal's config points at `host`, point it at `proxy`.
fn reroute(dir: &Path, config: &str, host: SocketAddr, proxy: SocketAddr) {
    let text = std::fs::read_to_string(dir.join(config)).unwrap();
    std::fs::write(
        dir.join(config),
        text.replace(
            &format!("host = \"{host}\""),
            &format!("host = \"{proxy}\""),
        ),
    )
    .unwrap();
}

fn ksn_counter(dir: &Path) -> u64 {
    let state: Value = serde_json::from_slice(
        &std::fs::read(dir.join(format!("terminal-{}/state.json", demo::DUKPT_TERMINAL))).unwrap(),
    )
    .unwrap();
    state["ksn_counter"].as_u64().unwrap()
}

#[test]
fn the_demo_dukpt_terminal_pays_under_aes_dukpt_and_its_ksn_only_goes_up() {
    let dir = temp_dir("dukpt");
    let host = up(&dir);
    setup(
        &dir,
        demo::DUKPT_TERMINAL,
        "dukpt.toml",
        host.terminals,
        20_000,
    );
    let config = std::fs::read_to_string(dir.join("dukpt.toml")).unwrap();
    let initial_ksn = demo::dukpt_initial_ksn(demo::DUKPT_TERMINAL).unwrap();
    assert!(config.contains("key_scheme = \"dukpt-aes\""), "{config}");
    assert!(
        config.contains(&format!("initial_ksn = \"{initial_ksn}\"")),
        "{config}"
    );
    // The host knows only AES DUKPT for this terminal: master/session is refused at init.
    let refused = run(
        &dir,
        &[
            "terminal",
            "init",
            "--demo",
            demo::DUKPT_TERMINAL,
            "--key-scheme",
            "master-session",
            "--config",
            "other.toml",
        ],
    );
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("AES DUKPT"), "{}", refused.stderr);
    let (proxy, frames) = recording_proxy(host.terminals);
    reroute(&dir, "dukpt.toml", host.terminals, proxy);

    let sale = pay(&dir, "dukpt.toml", "card-CH001-D", demo::DEMO_PIN, "12.34");
    assert_eq!(sale.code, 0, "{} {}", sale.stdout, sale.stderr);
    assert_eq!(sale.json["response_code"], "00");
    assert_eq!(sale.json["receipt"]["cvm"], "pin-verified");
    assert_eq!(sale.json["receipt"]["terminal_id"], demo::DUKPT_TERMINAL);
    assert_eq!(
        ksn_counter(&dir),
        1,
        "the PIN block and its sale share KSN 1"
    );

    // The sale carried KSN counter 1 and, after it, a 16-byte format 4 PIN block (field 62,
    // 28 bytes behind its length): the host derived both keys from the BDK and the KSN.
    let ksn = |counter: u32| {
        let mut bytes = hex::decode(&initial_ksn).unwrap();
        bytes[8..].copy_from_slice(&counter.to_be_bytes());
        bytes
    };
    let sent: Vec<Vec<u8>> = frames.try_iter().collect();
    let sale_frame = sent
        .iter()
        .find(|frame| frame.get(11..13) == Some(&[0x02, 0x00]))
        .expect("the 0200 went through the proxy");
    let at = sale_frame
        .windows(12)
        .position(|window| window == ksn(1).as_slice())
        .expect("field 62 carries KSN 1");
    assert_eq!(
        sale_frame.len() - at,
        12 + 16 + 8,
        "KSN, PIN block, then the MAC"
    );

    // A wrong PIN is declined 55 by the issuer: the host translated the format 4 block.
    let wrong = pay(&dir, "dukpt.toml", "card-CH002-D", "654321", "1.00");
    assert_eq!(
        (wrong.code, wrong.json["response_code"].as_str()),
        (1, Some("55")),
        "{}",
        wrong.stderr
    );
    // Each run of the command is a restart: the counter kept on disk goes on from there.
    assert_eq!(ksn_counter(&dir), 2);
    let again = pay(&dir, "dukpt.toml", "card-CH001-D", demo::DEMO_PIN, "1.00");
    assert_eq!(again.code, 0, "{} {}", again.stdout, again.stderr);
    assert_eq!(ksn_counter(&dir), 3);
    let sent: Vec<Vec<u8>> = frames.try_iter().collect();
    assert!(
        sent.iter()
            .any(|frame| frame.windows(12).any(|window| window == ksn(3).as_slice())),
        "the third sale carried KSN 3"
    );

    // An answer whose AES-CMAC fails is not trusted: the sale is reversed under a new KSN.
    reroute(
        &dir,
        "dukpt.toml",
        proxy,
        mac_corrupting_proxy(host.terminals),
    );
    let forged = pay(&dir, "dukpt.toml", "card-CH004-D", demo::DEMO_PIN, "9.00");
    assert_eq!(forged.code, 3, "{} {}", forged.stdout, forged.stderr);
    assert_eq!(forged.json["reversal"], "acknowledged");
    assert_eq!(ksn_counter(&dir), 5, "the sale, then its reversal");
    // No PIN block or key in the terminal's files.
    let state = String::from_utf8_lossy(&state_bytes(&dir)).into_owned();
    assert!(!state.contains(&demo_pan("card-CH001-D")));
    drop(host);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `frame` (as a terminal sent it) sent again straight to the host: the answer's field 39.
fn replayed(host: SocketAddr, frame: &[u8]) -> String {
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let length = u16::try_from(frame.len()).unwrap().to_be_bytes();
    stream.write_all(&length).unwrap();
    stream.write_all(frame).unwrap();
    let mut answer_length = [0u8; 2];
    stream.read_exact(&mut answer_length).unwrap();
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(answer_length))];
    stream.read_exact(&mut answer).unwrap();
    let profile = iso8583::Profile::builtin("cup-bcd").unwrap();
    profile
        .unpack(&answer)
        .unwrap()
        .response_code()
        .unwrap()
        .to_string()
}

#[test]
fn the_demo_tdes_dukpt_terminal_pays_with_format_0_pin_blocks_and_a_replay_moves_nothing() {
    let dir = temp_dir("tdes-dukpt");
    let host = up(&dir);
    let terminal_id = demo::TDES_DUKPT_TERMINAL;
    setup(&dir, terminal_id, "tdes.toml", host.terminals, 20_000);
    let config = std::fs::read_to_string(dir.join("tdes.toml")).unwrap();
    let initial_ksn = demo::dukpt_initial_ksn(terminal_id).unwrap();
    assert_eq!(initial_ksn.len(), 20);
    assert!(config.contains("key_scheme = \"dukpt-tdes\""), "{config}");
    assert!(
        config.contains(&format!("initial_ksn = \"{initial_ksn}\"")),
        "{config}"
    );
    // The host knows only TDES DUKPT for this terminal; AES DUKPT is another demo terminal.
    let refused = run(
        &dir,
        &[
            "terminal",
            "init",
            "--demo",
            terminal_id,
            "--key-scheme",
            "dukpt-aes",
            "--config",
            "other.toml",
        ],
    );
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("TDES DUKPT") && refused.stderr.contains(demo::DUKPT_TERMINAL),
        "{}",
        refused.stderr
    );
    let (proxy, frames) = recording_proxy(host.terminals);
    reroute(&dir, "tdes.toml", host.terminals, proxy);
    let counter = || -> u64 {
        let state: Value = serde_json::from_slice(
            &std::fs::read(dir.join(format!("terminal-{terminal_id}/state.json"))).unwrap(),
        )
        .unwrap();
        state["ksn_counter"].as_u64().unwrap()
    };

    let sale = pay(&dir, "tdes.toml", "card-CH001-D", demo::DEMO_PIN, "12.34");
    assert_eq!(sale.code, 0, "{} {}", sale.stdout, sale.stderr);
    assert_eq!(sale.json["response_code"], "00");
    assert_eq!(sale.json["receipt"]["cvm"], "pin-verified");
    assert_eq!(sale.json["receipt"]["terminal_id"], terminal_id);
    assert_eq!(counter(), 1, "the PIN block and its sale share KSN 1");

    // The sale carried the 10-byte KSN with counter 1 in field 62, and its PIN block in field
    // 52 (format 0, 8 bytes): the host derived the PIN and MAC variants from the BDK.
    let ksn = |counter: u8| {
        let mut bytes = hex::decode(&initial_ksn).unwrap();
        bytes[9] = counter;
        bytes
    };
    let sent: Vec<Vec<u8>> = frames.try_iter().collect();
    let sale_frame = sent
        .iter()
        .find(|frame| frame.get(11..13) == Some(&[0x02, 0x00]))
        .expect("the 0200 went through the proxy")
        .clone();
    let profile = iso8583::Profile::builtin("cup-bcd").unwrap();
    let request = profile.unpack(&sale_frame).unwrap();
    assert_eq!(
        request.get(62).unwrap().to_bytes().as_ref(),
        ksn(1).as_slice()
    );
    assert_eq!(request.get(52).unwrap().to_bytes().len(), 8);
    assert_eq!(request.get(64).unwrap().to_bytes().len(), 8);

    // A wrong PIN is declined 55 by the issuer; each run goes on from the saved counter.
    let wrong = pay(&dir, "tdes.toml", "card-CH002-D", "654321", "1.00");
    assert_eq!(
        (wrong.code, wrong.json["response_code"].as_str()),
        (1, Some("55")),
        "{}",
        wrong.stderr
    );
    assert_eq!(counter(), 2);
    // The next sale on a terminal set to Chinese (its receipt is printed below).
    let text = std::fs::read_to_string(dir.join("tdes.toml")).unwrap();
    assert!(text.contains("language = \"en\""), "{text}");
    std::fs::write(
        dir.join("tdes.toml"),
        text.replace("language = \"en\"", "language = \"zh\""),
    )
    .unwrap();
    let again = pay(&dir, "tdes.toml", "card-CH001-D", demo::DEMO_PIN, "1.00");
    assert_eq!(again.code, 0, "{} {}", again.stdout, again.stderr);
    assert_eq!(counter(), 3);

    // The first sale's frame, replayed by someone on the network: a duplicate, answered with
    // the original answer, and nothing moves. (A new message under an old counter is refused
    // 63: `acquirer/tests/dukpt.rs`.)
    let before = balance(&dir, "tdes.toml", "card-CH001-D");
    assert_eq!(replayed(host.terminals, &sale_frame), "00");
    assert_eq!(balance(&dir, "tdes.toml", "card-CH001-D"), before);

    // The PDF receipt of the Chinese terminal's sale: the merchant name (陆家嘴咖啡) in the
    // embedded font, its text mapped back to Unicode.
    let pdf = dir.join("receipt.pdf");
    let reprint = terminal(
        &dir,
        "tdes.toml",
        "reprint",
        &["--receipt-pdf", pdf.to_str().unwrap()],
    );
    assert_eq!(reprint.code, 0, "{}", reprint.stderr);
    let bytes = std::fs::read(&pdf).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("/FontFile2 9 0 R"));
    assert!(text.contains("> <9646>"), "陆 in the ToUnicode map");
    if let Ok(keep) = std::env::var("EASYPOS_KEEP_RECEIPT_PDF") {
        std::fs::copy(&pdf, keep).unwrap();
    }
    drop(host);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A supervisor's own password, enrolled by the merchant's admin through the API, is sent by
/// the terminal (`--supervisor-no`) and checked by the host: a wrong one gets 55 and nothing
/// moves; the right one voids (docs/protocol.md, "Supervisor password").
#[test]
fn a_supervisors_enrolled_password_is_checked_by_the_host() {
    let dir = temp_dir("supervisor");
    // A first start seeds the demo world; stopped, its store takes the admin's API key (as the
    // console's API keys page would make it, after the second factor).
    up(&dir).stop();
    let key = {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = store::Store::open(&store::Backend::Sqlite {
                path: dir.join("easypos-data/easypos.db"),
            })
            .await
            .unwrap();
            let admin = store
                .user_by_username("shanghai.admin")
                .await
                .unwrap()
                .unwrap();
            let (issued, digest) = store::accounts::new_api_key(&admin.id, "test", 1_764_000_000);
            store.put_api_key(issued.key, digest).await.unwrap();
            issued.secret
        })
    };
    let platform = up(&dir);
    setup(
        &dir,
        "10000001",
        "terminal.toml",
        platform.terminals,
        20_000,
    );
    let sale = pay(
        &dir,
        "terminal.toml",
        "card-CH001-D",
        demo::DEMO_PIN,
        "20.00",
    );
    assert_eq!(sale.code, 0, "{} {}", sale.stdout, sale.stderr);
    let trace = sale.json["receipt"]["stan"].as_u64().unwrap().to_string();
    let web: std::net::SocketAddr = platform
        .web
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let (status, enrolled) = common::http_bearer(
        web,
        &key,
        "PUT",
        "/api/v1/staff/99/terminal-password",
        Some(serde_json::json!({"password": "135790"})),
    );
    assert_eq!(status, 200, "{enrolled}");
    let void = |password: &str| {
        terminal(
            &dir,
            "terminal.toml",
            "void",
            &[
                "--card",
                &card("card-CH001-D"),
                "--trace",
                &trace,
                "--supervisor",
                password,
                "--supervisor-no",
                "99",
            ],
        )
    };
    let wrong = void("135791");
    assert_eq!(
        wrong.json["response_code"].as_str(),
        Some("55"),
        "{} {}",
        wrong.stdout,
        wrong.stderr
    );
    // Without --supervisor-no the terminal's own password no longer suffices at the host.
    let local = terminal(
        &dir,
        "terminal.toml",
        "void",
        &[
            "--card",
            &card("card-CH001-D"),
            "--trace",
            &trace,
            "--supervisor",
            "999999",
        ],
    );
    assert_eq!(
        local.json["response_code"].as_str(),
        Some("55"),
        "{}",
        local.stdout
    );
    let right = void("135790");
    assert_eq!(
        (right.code, right.json["response_code"].as_str()),
        (0, Some("00")),
        "{} {}",
        right.stdout,
        right.stderr
    );

    // The same supervisor's password at the other terminal, keyed under a cashier's sign-on:
    // an insider alert in the merchant's case queue.
    setup(
        &dir,
        "10000002",
        "terminal2.toml",
        platform.terminals,
        20_000,
    );
    let sale = pay(
        &dir,
        "terminal2.toml",
        "card-CH001-D",
        demo::DEMO_PIN,
        "30.00",
    );
    assert_eq!(sale.code, 0, "{} {}", sale.stdout, sale.stderr);
    let trace = sale.json["receipt"]["stan"].as_u64().unwrap().to_string();
    let elsewhere = terminal(
        &dir,
        "terminal2.toml",
        "void",
        &[
            "--card",
            &card("card-CH001-D"),
            "--trace",
            &trace,
            "--supervisor",
            "135790",
            "--supervisor-no",
            "99",
        ],
    );
    assert_eq!(
        elsewhere.json["response_code"].as_str(),
        Some("00"),
        "{}",
        elsewhere.stdout
    );
    // The case is written in the background: a bounded wait.
    let mut found = serde_json::Value::Null;
    for _ in 0..50 {
        let (status, cases) =
            common::http_bearer(web, &key, "GET", "/api/v1/cases?status=open", None);
        assert_eq!(status, 200, "{cases}");
        if cases
            .to_string()
            .contains("insider-supervisor-unusual-terminal")
        {
            found = cases;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = found.to_string();
    assert!(
        text.contains("supervisor 099's password allowed a void or refund at terminal 10000002"),
        "{text}"
    );
}
