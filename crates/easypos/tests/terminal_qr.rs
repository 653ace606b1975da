#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `easypos terminal pay --method qr` against a running `easypos up`: the terminal asks the
//! host for an order and shows its EMVCo code; the test stands in for the consumer's wallet
//! (it reads the order's code from the host, as scanning the screen would, and pays it over
//! the wallet API, docs/wallet.md); the terminal's queries find the payment, or the order
//! closes unpaid after its timeout.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{Run, STARTUP_TIMEOUT, easypos, http_as, setup};

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("qr", name)
}

/// `easypos up` on free loopback ports in `dir`, with its web address as a socket address.
struct Up {
    /// Killed when dropped.
    _running: common::Running,
    terminals: SocketAddr,
    web: SocketAddr,
}

fn up(dir: &Path) -> Up {
    let running = common::start(dir);
    let web = running
        .web
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("the web address");
    Up {
        terminals: running.terminals,
        web,
        _running: running,
    }
}

/// HTTP Basic of the demo cardholders who own W-CH001 and W-CH002 (the wallet's consumer
/// routes answer only a wallet's owner).
const CARDHOLDER1: &str = "Y2FyZGhvbGRlcjE6ZWFzeXBvcy1kZW1vLTIwMjY=";
const CARDHOLDER2: &str = "Y2FyZGhvbGRlcjI6ZWFzeXBvcy1kZW1vLTIwMjY=";

/// One HTTP/1.1 exchange with the host's wallet API as cardholder1: status and JSON body.
fn http(web: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    http_as(web, CARDHOLDER1, method, path, body)
}

/// Starts `easypos terminal pay --method qr` in the background.
fn start_qr_payment(dir: &Path, web: SocketAddr, order_id: &str, extra: &[&str]) -> Child {
    let url = format!("http://{web}");
    let mut args = vec![
        "terminal",
        "pay",
        "--config",
        "terminal.toml",
        "--json",
        "--method",
        "qr",
        "--amount",
        "12.34",
        "--wallet-url",
        &url,
        "--order-id",
        order_id,
    ];
    args.extend_from_slice(extra);
    easypos(dir)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> Run {
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    Run {
        code: output.status.code().expect("exited, not killed"),
        json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// HTTP Basic of the cashier of terminal 10000001's merchant (Lujiazui Coffee): the
/// merchant's QR orders are theirs to read, while the order routes answer only the terminal
/// that signs its requests.
const CASHIER: &str = "c2hhbmdoYWkuY2FzaGllcjplYXN5cG9zLWRlbW8tMjAyNg==";

/// The order as the merchant's record shows it, if it is there.
fn order_of(web: SocketAddr, order_id: &str) -> Option<Value> {
    let (status, orders) = http_as(
        web,
        CASHIER,
        "GET",
        "/wallet/v1/merchants/898310058120001/orders",
        None,
    );
    assert_eq!(status, 200, "{orders}");
    orders
        .as_array()
        .unwrap()
        .iter()
        .find(|order| order["order_id"] == order_id)
        .cloned()
}

/// The order as the host has it, once the terminal has created it.
fn wait_for_order(web: SocketAddr, order_id: &str) -> Value {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if let Some(order) = order_of(web, order_id) {
            return order;
        }
        assert!(
            Instant::now() < deadline,
            "the terminal never created {order_id}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pay(web: SocketAddr, payload: &str, wallet: &str, password: &str) -> (u16, Value) {
    let owner = if wallet == "W-CH002" {
        CARDHOLDER2
    } else {
        CARDHOLDER1
    };
    http_as(
        web,
        owner,
        "POST",
        "/wallet/v1/payments",
        Some(serde_json::json!({"payload": payload, "wallet_id": wallet, "password": password})),
    )
}

#[test]
fn a_consumer_pays_the_terminals_code_and_the_terminal_finds_the_payment() {
    let dir = temp_dir("paid");
    let up = up(&dir);
    setup(&dir, "10000001", "terminal.toml", up.terminals, 20_000);

    // The consumer tops up the wallet from the linked debit card, confirmed by the password.
    let (status, balance) = http(
        up.web,
        "POST",
        "/wallet/v1/wallets/W-CH001/top-ups",
        Some(serde_json::json!({"top_up_id": "t1", "amount": "100.00", "password": "135790"})),
    );
    assert_eq!(status, 200, "{balance}");
    assert_eq!(balance["balance"], "100.00");

    let terminal = start_qr_payment(&dir, up.web, "10000001-qr1", &[]);
    let order = wait_for_order(up.web, "10000001-qr1");
    assert_eq!(order["status"], "created");
    assert_eq!(order["amount"], "12.34");
    assert_eq!(order["merchant_name"], "Lujiazui Coffee");
    let payload = order["payload"].as_str().unwrap().to_owned();

    // Bad input first: each refused, nothing charged.
    let tampered = payload.replace("540512.34", "540502.34");
    assert_ne!(tampered, payload);
    let (status, refusal) = pay(up.web, &tampered, "W-CH001", "135790");
    assert_eq!((status, refusal["error"].as_str()), (400, Some("bad_crc")));
    let (status, refusal) = pay(up.web, &payload, "W-CH001", "000000");
    assert_eq!(
        (status, refusal["error"].as_str()),
        (401, Some("wrong_password")),
        "{refusal}"
    );
    let (status, refusal) = pay(up.web, &payload, "W-CH002", "135790");
    assert_eq!(
        (status, refusal["error"].as_str()),
        (402, Some("insufficient_balance")),
        "{refusal}"
    );

    // Then the payment, after the terminal has started querying.
    std::thread::sleep(Duration::from_secs(1));
    let (status, paid) = pay(up.web, &payload, "W-CH001", "135790");
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["status"], "paid");

    let run = finish(terminal);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json["approved"], true);
    assert_eq!(run.json["status"], "paid");
    assert_eq!(run.json["amount_minor"], 1234);
    assert_eq!(run.json["wallet_id"], "W-CH001");
    assert!(
        run.json["receipt_text"]
            .as_str()
            .unwrap()
            .contains("10000001-qr1")
    );
    // The code was shown while the terminal waited: the payload and a QR drawn in blocks.
    assert!(run.stderr.contains(&payload), "{}", run.stderr);
    assert!(run.stderr.contains('█') || run.stderr.contains('▀'));

    // The same order again is the same (paid) order: no second charge.
    let (status, again) = pay(up.web, &payload, "W-CH001", "135790");
    assert_eq!((status, again["status"].as_str()), (200, Some("paid")));
    let (status, balance) = http(
        up.web,
        "POST",
        "/wallet/v1/wallets/W-CH001/top-ups",
        Some(serde_json::json!({"top_up_id": "t1", "amount": "100.00", "password": "135790"})),
    );
    assert_eq!((status, balance["balance"].as_str()), (200, Some("87.66")));
}

#[test]
fn an_unpaid_order_closes_after_its_timeout_and_a_late_payment_is_refused() {
    let dir = temp_dir("closed");
    let up = up(&dir);
    setup(&dir, "10000001", "terminal.toml", up.terminals, 20_000);
    let (status, _) = http(
        up.web,
        "POST",
        "/wallet/v1/wallets/W-CH001/top-ups",
        Some(serde_json::json!({"top_up_id": "t1", "amount": "50.00", "password": "135790"})),
    );
    assert_eq!(status, 200);

    let terminal = start_qr_payment(&dir, up.web, "10000001-qr2", &["--order-timeout", "10"]);
    let order = wait_for_order(up.web, "10000001-qr2");
    let run = finish(terminal);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json["approved"], false);
    assert_eq!(run.json["status"], "closed");

    let (status, refusal) = pay(
        up.web,
        order["payload"].as_str().unwrap(),
        "W-CH001",
        "135790",
    );
    assert_eq!(
        (status, refusal["error"].as_str()),
        (409, Some("order_closed")),
        "{refusal}"
    );

    // Refusals before anything is sent: exit 2.
    let bad_amount = finish(start_qr_payment(
        &dir,
        up.web,
        "10000001-qr3",
        &["--order-timeout", "5"],
    ));
    assert_eq!(bad_amount.code, 2, "{}", bad_amount.stdout);
    // The host unreachable: exit 3.
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let unreachable = finish(start_qr_payment(&dir, closed_port, "10000001-qr4", &[]));
    assert_eq!(unreachable.code, 3, "{}", unreachable.stdout);
    assert_eq!(unreachable.json["approved"], false);
}

/// A fresh one-time payment code of W-CH001, as the wallet page shows it.
fn payment_code(web: SocketAddr) -> String {
    let (status, code) = http(
        web,
        "POST",
        "/wallet/v1/wallets/W-CH001/payment-codes",
        Some(serde_json::json!({})),
    );
    assert_eq!(status, 200, "{code}");
    code["code"].as_str().unwrap().to_owned()
}

fn balance(web: SocketAddr) -> String {
    let (status, wallet) = http(web, "GET", "/wallet/v1/wallets/W-CH001", None);
    assert_eq!(status, 200, "{wallet}");
    wallet["balance"].as_str().unwrap().to_owned()
}

fn charge_args<'a>(url: &'a str, order_id: &'a str, code: &'a str) -> Vec<&'a str> {
    vec![
        "terminal",
        "pay",
        "--config",
        "terminal.toml",
        "--json",
        "--method",
        "qr",
        "--amount",
        "12.34",
        "--wallet-url",
        url,
        "--order-id",
        order_id,
        "--code",
        code,
    ]
}

#[test]
fn the_cashier_scans_the_consumers_payment_code_and_the_wallet_is_charged_once() {
    let dir = temp_dir("code");
    let up = up(&dir);
    setup(&dir, "10000001", "terminal.toml", up.terminals, 20_000);
    let (status, _) = http(
        up.web,
        "POST",
        "/wallet/v1/wallets/W-CH001/top-ups",
        Some(serde_json::json!({"top_up_id": "t1", "amount": "100.00", "password": "135790"})),
    );
    assert_eq!(status, 200);
    let url = format!("http://{}", up.web);

    // The scanner types the code into the terminal (piped on standard input).
    let code = payment_code(up.web);
    let paid = common::run_with_input(
        &dir,
        &charge_args(&url, "10000001-c1", "-"),
        &format!("{code}\n"),
    );
    assert_eq!(paid.code, 0, "{}\n{}", paid.stdout, paid.stderr);
    assert_eq!(paid.json["status"], "paid");
    assert_eq!(paid.json["wallet_id"], "W-CH001");
    assert!(
        paid.json["receipt_text"]
            .as_str()
            .unwrap()
            .contains("10000001-c1")
    );
    assert_eq!(balance(up.web), "87.66");

    // The same code again, typed with spaces: already used, declined, nothing charged.
    let spaced: String = code
        .as_bytes()
        .chunks(4)
        .map(|group| String::from_utf8_lossy(group).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let again = common::run(&dir, &charge_args(&url, "10000001-c2", &spaced));
    assert_eq!(again.code, 1, "{}\n{}", again.stdout, again.stderr);
    assert_eq!(again.json["error"], "code_used");
    // A code with a wrong digit: refused as not a code.
    let mut typo = payment_code(up.web).into_bytes();
    typo[15] = if typo[15] == b'9' { b'0' } else { typo[15] + 1 };
    let typo = String::from_utf8(typo).unwrap();
    let bad = common::run(&dir, &charge_args(&url, "10000001-c3", &typo));
    assert_eq!(
        (bad.code, bad.json["error"].as_str()),
        (1, Some("bad_code")),
        "{}",
        bad.stdout
    );
    assert_eq!(balance(up.web), "87.66");
}

/// A proxy in front of the host that loses the answers to charges and order queries (the
/// request reaches the host; the terminal hears nothing), and passes everything else; with
/// `lose_cancels`, cancels never reach the host either.
fn lossy_proxy(host: SocketAddr, lose_cancels: bool) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // Read the head and the body its Content-Length announces.
                loop {
                    let read = client.read(&mut buffer).unwrap_or(0);
                    if read == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..read]);
                    let text = String::from_utf8_lossy(&request).into_owned();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|line| line.strip_prefix("Content-Length: "))
                            .and_then(|value| value.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let cancel = request.starts_with(b"POST /wallet/v1/orders/")
                    && String::from_utf8_lossy(&request)
                        .lines()
                        .next()
                        .is_some_and(|line| line.contains("/cancel "));
                if lose_cancels && cancel {
                    return;
                }
                let mut upstream = TcpStream::connect(host).unwrap();
                upstream.write_all(&request).unwrap();
                let mut response = Vec::new();
                upstream.read_to_end(&mut response).unwrap();
                let lost = request.starts_with(b"POST /wallet/v1/charges")
                    || request.starts_with(b"GET /wallet/v1/orders/");
                if !lost {
                    let _ = client.write_all(&response);
                }
            });
        }
    });
    address
}

#[test]
fn a_charge_whose_answer_is_lost_is_cancelled_and_given_back() {
    let dir = temp_dir("cancel");
    let up = up(&dir);
    setup(&dir, "10000001", "terminal.toml", up.terminals, 20_000);
    let (status, _) = http(
        up.web,
        "POST",
        "/wallet/v1/wallets/W-CH001/top-ups",
        Some(serde_json::json!({"top_up_id": "t1", "amount": "50.00", "password": "135790"})),
    );
    assert_eq!(status, 200);
    let proxy = format!("http://{}", lossy_proxy(up.web, false));
    let code = payment_code(up.web);
    let mut args = charge_args(&proxy, "10000001-lost", &code);
    args.extend_from_slice(&["--charge-wait", "4"]);
    let run = common::run(&dir, &args);
    // The host charged the wallet, the terminal never heard; it asked, then cancelled, and the
    // cancel reversed the charge.
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json["status"], "reversed", "{}", run.stdout);
    let order = order_of(up.web, "10000001-lost").unwrap();
    assert_eq!(order["status"], "reversed");
    assert_eq!(balance(up.web), "50.00");
    // The used code stays used: no second charge from it.
    let url = format!("http://{}", up.web);
    let again = common::run(&dir, &charge_args(&url, "10000001-again", &code));
    assert_eq!(
        (again.code, again.json["error"].as_str()),
        (1, Some("code_used"))
    );
    assert_eq!(balance(up.web), "50.00");
}

#[test]
fn a_cancel_that_got_no_answer_is_kept_and_sent_before_the_next_qr_payment() {
    let dir = temp_dir("kept");
    let up = up(&dir);
    setup(&dir, "10000001", "terminal.toml", up.terminals, 20_000);
    let (status, _) = http(
        up.web,
        "POST",
        "/wallet/v1/wallets/W-CH001/top-ups",
        Some(serde_json::json!({"top_up_id": "t1", "amount": "50.00", "password": "135790"})),
    );
    assert_eq!(status, 200);
    // Charged, but the terminal hears nothing, and its cancels never arrive: outcome unknown.
    let proxy = format!("http://{}", lossy_proxy(up.web, true));
    let code = payment_code(up.web);
    let mut args = charge_args(&proxy, "10000001-kept", &code);
    args.extend_from_slice(&["--charge-wait", "3"]);
    let run = common::run(&dir, &args);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("kept"), "{}", run.stdout);
    assert_eq!(balance(up.web), "37.66");
    // The next QR payment, with the host reachable, sends the kept cancel first: the first
    // charge is given back, then the new one is charged.
    let url = format!("http://{}", up.web);
    let next = payment_code(up.web);
    let paid = common::run(&dir, &charge_args(&url, "10000001-next", &next));
    assert_eq!(paid.code, 0, "{}\n{}", paid.stdout, paid.stderr);
    let kept = order_of(up.web, "10000001-kept").unwrap();
    assert_eq!(kept["status"], "reversed");
    assert_eq!(balance(up.web), "37.66");
}

#[test]
fn an_aes_dukpt_terminal_signs_its_charge_and_an_unsigned_cancel_moves_nothing() {
    let dir = temp_dir("dukpt");
    let up = up(&dir);
    setup(&dir, "10000003", "terminal.toml", up.terminals, 20_000);
    let (status, _) = http(
        up.web,
        "POST",
        "/wallet/v1/wallets/W-CH001/top-ups",
        Some(serde_json::json!({"top_up_id": "t1", "amount": "50.00", "password": "135790"})),
    );
    assert_eq!(status, 200);
    // The terminal signs on over ISO 8583, then signs the charge with a fresh KSN's key.
    let url = format!("http://{}", up.web);
    let code = payment_code(up.web);
    let paid = common::run(&dir, &charge_args(&url, "10000003-d1", &code));
    assert_eq!(paid.code, 0, "{}\n{}", paid.stdout, paid.stderr);
    assert_eq!(
        (
            paid.json["status"].as_str(),
            paid.json["terminal_id"].as_str()
        ),
        (Some("paid"), Some("10000003"))
    );
    assert_eq!(balance(up.web), "37.66");
    // Someone who knows the order id cancels it without the terminal's key: refused, and the
    // money stays paid; nor can they read it.
    let (status, refusal) = common::http(
        up.web,
        "POST",
        "/wallet/v1/orders/10000003-d1/cancel",
        Some(serde_json::json!({"terminal_id": "10000003", "amount": "12.34"})),
    );
    assert_eq!(
        (status, refusal["error"].as_str()),
        (401, Some("unsigned")),
        "{refusal}"
    );
    let (status, _) = common::http(up.web, "GET", "/wallet/v1/orders/10000003-d1", None);
    assert_eq!(status, 401);
    assert_eq!(balance(up.web), "37.66");
}
