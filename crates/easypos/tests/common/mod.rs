//! What the binary's process-level tests share: a fresh temporary directory, and a long-running
//! `easypos` command (`up`, `host`) started on free loopback ports and read until its banner
//! ends. Each test crate uses part of it.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// Bounds every wait, so a broken start fails the test instead of hanging it.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// An empty directory `easypos-{prefix}-{name}-{pid}` in the system's temporary directory.
pub fn temp_dir(prefix: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("easypos-{prefix}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `easypos` run in `dir`, on its embedded default store whatever the environment says.
pub fn easypos(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_easypos"));
    command.current_dir(dir).env_remove("EASYPOS_DATABASE_URL");
    command
}

/// A started `easypos` process and what its banner said. Dropped, it is killed; `stop` stops it
/// as Ctrl-C does and checks that it exits cleanly.
pub struct Running {
    pub child: Child,
    /// Standard output after the banner, line by line.
    pub lines: Receiver<String>,
    /// The banner's `web` address (`http://…/`), empty for a process without a web server.
    pub web: String,
    /// The banner's `ISO 8583` address.
    pub terminals: SocketAddr,
    pub banner: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Sends SIGINT, waits for a clean exit, and returns what it printed after the banner.
    pub fn stop(&mut self) -> Vec<String> {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            assert!(
                Instant::now() < deadline,
                "easypos did not stop after Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(exit.success(), "easypos exited with {exit}");
        self.lines.try_iter().collect()
    }
}

/// `easypos up` in `dir` on free loopback ports.
pub fn start(dir: &Path) -> Running {
    start_with(
        dir,
        &["up", "--http", "127.0.0.1:0", "--iso8583", "127.0.0.1:0"],
    )
}

/// `easypos ARGS` in `dir`, read until its banner ends ("Press Ctrl-C"); its log goes to
/// `dir/easypos.log`.
pub fn start_with(dir: &Path, args: &[&str]) -> Running {
    let mut child = easypos(dir)
        .args(args)
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
    let mut banner = Vec::new();
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("easypos printed its banner in time");
        banner.push(line.clone());
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    let web = banner
        .iter()
        .find_map(|line| {
            line.trim()
                .strip_prefix("web")
                .map(|rest| rest.trim().to_owned())
        })
        .unwrap_or_default();
    let terminals = banner
        .iter()
        .find_map(|line| {
            line.trim()
                .strip_prefix("ISO 8583")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|address| address.parse().ok())
        })
        .expect("an ISO 8583 line with the terminals' address");
    Running {
        child,
        lines,
        web,
        terminals,
        banner,
    }
}

/// What one command did: its exit code, its stdout parsed as JSON (Null if it is not), and
/// both streams as text.
pub struct Run {
    pub code: i32,
    pub json: Value,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(dir: &Path, args: &[&str]) -> Run {
    run_with_input(dir, args, "")
}

/// Runs `easypos ARGS` with `input` on its standard input.
pub fn run_with_input(dir: &Path, args: &[&str], input: &str) -> Run {
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
pub fn setup(dir: &Path, terminal_id: &str, config: &str, host: SocketAddr, timeout_ms: u64) {
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

/// One approved chip-and-PIN sale of 12.34 at demo terminal 10000001 (`dir/terminal.toml`,
/// made on first use) against the platform at `host`.
pub fn sell(dir: &Path, host: SocketAddr) {
    let config = dir.join("terminal.toml");
    if config.exists() {
        // A platform started again listens on another port: point the terminal at it.
        let text = std::fs::read_to_string(&config).unwrap();
        let moved: Vec<String> = text
            .lines()
            .map(|line| {
                if line.starts_with("host = ") {
                    format!("host = \"{host}\"")
                } else {
                    line.to_owned()
                }
            })
            .collect();
        std::fs::write(&config, moved.join("\n") + "\n").unwrap();
    } else {
        setup(dir, "10000001", "terminal.toml", host, 10_000);
    }
    let sale = run(
        dir,
        &[
            "terminal",
            "pay",
            "--config",
            "terminal.toml",
            "--json",
            "--method",
            "debit",
            "--entry",
            "chip",
            "--card",
            "cards/card-CH001-D.json",
            "--pin",
            demo::DEMO_PIN,
            "--amount",
            "12.34",
        ],
    );
    assert_eq!(sale.code, 0, "{}{}", sale.stdout, sale.stderr);
}

/// One HTTP/1.1 exchange with the host's web server (wallet API, REST API): status and JSON
/// body.
pub fn http(web: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    http_with(web, None, method, path, body)
}

/// [`http`] with an API key (`Authorization: Bearer <key>`).
pub fn http_bearer(
    web: SocketAddr,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    http_auth(web, Some(format!("Bearer {key}")), method, path, body)
}

/// [`http`] with HTTP Basic credentials (`basic` is the base64 of `user:password`).
pub fn http_as(
    web: SocketAddr,
    basic: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    http_with(web, Some(basic), method, path, body)
}

fn http_with(
    web: SocketAddr,
    basic: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    http_auth(
        web,
        basic.map(|basic| format!("Basic {basic}")),
        method,
        path,
        body,
    )
}

fn http_auth(
    web: SocketAddr,
    authorization: Option<String>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let authorization = authorization.map(|value| ("Authorization", value));
    let (status, body) = http_raw(
        web,
        authorization.as_slice(),
        method,
        path,
        body.map(|body| body.to_string())
            .unwrap_or_default()
            .as_bytes(),
    );
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// One HTTP/1.1 exchange with the host's web server, with extra `headers`: status and the
/// body's bytes (a PDF, a CSV, a JSON document).
pub fn http_raw(
    web: SocketAddr,
    headers: &[(&str, String)],
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut stream = std::net::TcpStream::connect(web).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    std::io::Read::read_to_end(&mut stream, &mut response).unwrap();
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap();
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, response[split + 4..].to_vec())
}

/// [`http`] with `web` as the banner prints it (`http://host:port/`).
pub fn http_json(web: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let address = web
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    http(address, method, path, body.cloned())
}
