#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `easypos terminal pay --method qr` against a running `easypos up`: the terminal asks the
//! host for an order and shows its EMVCo code; the test stands in for the consumer's wallet
//! (it reads the order's code from the host, as scanning the screen would, and pays it over
//! the wallet API, docs/wallet.md); the terminal's queries find the payment, or the order
//! closes unpaid after its timeout.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Bounds every wait, so a broken start fails the test instead of hanging it.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

struct Up {
    child: Child,
    terminals: SocketAddr,
    web: SocketAddr,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("easypos-qr-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn easypos(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_easypos"));
    command.current_dir(dir).env_remove("EASYPOS_DATABASE_URL");
    command
}

/// `easypos up` on free loopback ports in `dir`, until its banner names the terminals'
/// address.
fn up(dir: &Path) -> Up {
    let mut child = easypos(dir)
        .args(["up", "--http", "127.0.0.1:0", "--iso8583", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("easypos.log"))
                .unwrap(),
        )
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let mut terminals = None;
    let mut web = None;
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("easypos up printed its banner in time");
        if let Some(rest) = line.trim().strip_prefix("ISO 8583") {
            terminals = rest.split_whitespace().next().and_then(|a| a.parse().ok());
        }
        if let Some(rest) = line.trim().strip_prefix("web       http://") {
            web = rest.trim_end_matches('/').parse().ok();
        }
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    Up {
        child,
        terminals: terminals.expect("the terminals' address"),
        web: web.expect("the web address"),
    }
}

/// What one command did: its exit code, its stdout parsed as JSON (Null if it is not), and
/// both streams as text.
struct Run {
    code: i32,
    json: Value,
    stdout: String,
    stderr: String,
}

fn run(dir: &Path, args: &[&str]) -> Run {
    run_with_input(dir, args, "")
}

/// Runs `easypos ARGS` with `input` on its standard input.
fn run_with_input(dir: &Path, args: &[&str], input: &str) -> Run {
    let mut child = easypos(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    Run {
        code: output.status.code().expect("exited, not killed"),
        json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Card files for every demo card in `dir/cards`, and a configuration for demo terminal
/// `terminal_id` at `config` pointing at `host`.
fn setup(dir: &Path, terminal_id: &str, config: &str, host: SocketAddr, timeout_ms: u64) {
    if !dir.join("cards").exists() {
        let issued = run(dir, &["cards", "issue", "--all", "--dir", "cards"]);
        assert_eq!(issued.code, 0, "{}", issued.stderr);
    }
    let init = run(
        dir,
        &[
            "terminal",
            "init",
            "--demo",
            terminal_id,
            "--host",
            &host.to_string(),
            "--config",
            config,
            "--timeout-ms",
            &timeout_ms.to_string(),
        ],
    );
    assert_eq!(init.code, 0, "{}", init.stderr);
}

/// One HTTP/1.1 exchange with the host's wallet API: status and JSON body.
fn http(web: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut stream = TcpStream::connect(web).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = body.map(|body| body.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
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

/// The order as the host has it, once the terminal has created it.
fn wait_for_order(web: SocketAddr, order_id: &str) -> Value {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        let (status, order) = http(web, "GET", &format!("/wallet/v1/orders/{order_id}"), None);
        if status == 200 {
            return order;
        }
        assert_eq!(status, 404, "{order}");
        assert!(
            Instant::now() < deadline,
            "the terminal never created {order_id}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pay(web: SocketAddr, payload: &str, wallet: &str, password: &str) -> (u16, Value) {
    http(
        web,
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
