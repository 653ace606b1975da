#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real TUI binary under tmux against a running `easypos up`: a cashier signs on, sells
//! 12.34 on a demo debit card by chip and PIN through the five steps, reads the receipt on
//! screen, and the supervisor voids the sale. Keys go in with `send-keys`; the screen comes back with `capture-pane`.
//! With `EASYPOS_UPDATE_SCREENSHOTS=1` the screens are written to `docs/guides/screens/tui-*.txt`
//! for the cashier guide.
//!
//! Needs tmux. Without it the test is skipped, except under CI (`CI=true`), where it fails:
//! CI must install tmux.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

/// Bounds every wait for the screen.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(30);

struct Tmux {
    socket: String,
}

impl Tmux {
    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket, "-f", "/dev/null"]);
        command
    }

    fn keys(&self, keys: &[&str]) {
        for key in keys {
            let status = self
                .command()
                .args(["send-keys", "-t", "pos", key])
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    fn screen(&self) -> String {
        let output = self
            .command()
            .args(["capture-pane", "-p", "-t", "pos"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits (bounded) until the screen shows `text`, and returns the screen.
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {text:?}; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Only this test's own tmux server (its own socket).
        let _ = self
            .command()
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
}

/// With `EASYPOS_UPDATE_SCREENSHOTS=1`, writes `screen` to `docs/guides/screens/{name}.txt`
/// for the cashier guide (lines trimmed on the right, the blank columns on the left and the
/// blank lines at the end dropped); without
/// it, nothing is written, so the test never rewrites tracked files by itself.
fn guide_screen(name: &str, screen: &str) {
    if std::env::var("EASYPOS_UPDATE_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
    let end = lines
        .iter()
        .rposition(|line| !line.is_empty())
        .map_or(0, |last| last + 1);
    // The screen is centred in the pane: the blank columns on the left go.
    let indent = lines[..end]
        .iter()
        .filter(|line| !line.is_empty())
        .map(|line| line.len() - line.trim_start_matches(' ').len())
        .min()
        .unwrap_or(0);
    let lines: Vec<&str> = lines[..end]
        .iter()
        .map(|line| line.get(indent..).unwrap_or(""))
        .collect();
    let mut text = lines.join("\n");
    text.push('\n');
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/guides/screens")
        .join(format!("{name}.txt"));
    std::fs::write(&path, text).unwrap();
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|output| output.status.success())
}

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("tui", name)
}

fn easypos(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_easypos"))
        .args(args)
        .current_dir(dir)
        .env_remove("EASYPOS_DATABASE_URL")
        .output()
        .unwrap()
}

#[test]
fn a_cashier_sells_by_chip_and_pin_on_the_tui_reads_the_receipt_and_a_supervisor_voids_it() {
    sale_and_void_on_the_tui("10000001");
}

/// The same on the AES DUKPT terminal: its PIN block (ISO 9564 format 4) and MACs come from
/// a fresh KSN for every message.
#[test]
fn the_same_sale_and_void_on_an_aes_dukpt_terminal() {
    sale_and_void_on_the_tui(demo::DUKPT_TERMINAL);
}

/// A chip-and-PIN sale at `terminal_id` on the real TUI under tmux, its receipt read off the
/// screen, then voided by the supervisor; the batch and the card's balance checked after.
fn sale_and_void_on_the_tui(terminal_id: &str) {
    // The cashier guide's screens come from the master/session terminal's run.
    let shoot = |name: &str, screen: &str| {
        if terminal_id == "10000001" {
            guide_screen(name, screen);
        }
    };
    if !tmux_available() {
        assert!(
            std::env::var("CI").is_err(),
            "tmux is missing: CI must install it (apt-get install -y tmux)"
        );
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let dir = temp_dir(&format!("sale-{terminal_id}"));
    let up = common::start(&dir);
    let host = up.terminals.to_string();
    std::fs::create_dir_all(dir.join("cards")).unwrap();
    assert!(
        easypos(
            &dir,
            &[
                "cards",
                "issue",
                "card-CH001-D",
                "--out",
                "cards/li-lei.json"
            ]
        )
        .status
        .success()
    );
    assert!(
        easypos(
            &dir,
            &["terminal", "init", "--demo", terminal_id, "--host", &host]
        )
        .status
        .success()
    );

    let config = std::fs::read_to_string(dir.join("terminal.toml")).unwrap();
    let scheme = if terminal_id == demo::DUKPT_TERMINAL {
        "key_scheme = \"dukpt-aes\""
    } else {
        "key_scheme = \"master-session\""
    };
    assert!(config.contains(scheme), "{config}");

    let tmux = Tmux {
        socket: format!("easypos-test-{}-{terminal_id}", std::process::id()),
    };
    let status = tmux
        .command()
        .args([
            "new-session",
            "-d",
            "-s",
            "pos",
            "-x",
            "80",
            "-y",
            "30",
            "-c",
            dir.to_str().unwrap(),
            &format!("{} terminal tui", env!("CARGO_BIN_EXE_easypos")),
        ])
        .status()
        .unwrap();
    assert!(status.success());

    // The cashier signs on: operator 01, the terminal's password.
    tmux.wait_for("Operator no:");
    tmux.keys(&["0", "1", "Enter", "0", "0", "0", "0"]);
    shoot("tui-sign-on", &tmux.wait_for("****"));
    tmux.keys(&["Enter"]);
    shoot("tui-menu", &tmux.wait_for("1 Sale"));
    // The amount, then the five steps.
    tmux.keys(&["1", "1", "2", "3", "4"]);
    shoot("tui-amount", &tmux.wait_for("CNY 12.34"));
    tmux.keys(&["Enter"]);
    shoot("tui-method", &tmux.wait_for("1/5 Payment method"));
    tmux.keys(&["1"]);
    tmux.wait_for("621234******0000");
    tmux.keys(&["1"]);
    shoot("tui-card", &tmux.wait_for("2/5 Insert, swipe or tap"));
    tmux.keys(&["1"]);
    tmux.wait_for("3/5 Enter PIN");
    tmux.keys(&["1", "2", "3", "4", "5", "6"]);
    let pin_pad = tmux.wait_for("[******");
    assert!(!pin_pad.contains("123456"), "the PIN pad shows stars only");
    shoot("tui-pin", &pin_pad);
    tmux.keys(&["Enter"]);
    shoot("tui-confirm", &tmux.wait_for("4/5 Please confirm"));
    tmux.keys(&["1"]);
    let result = tmux.wait_for("APPROVED");
    assert!(result.contains("CNY 12.34"), "{result}");
    shoot("tui-approved", &result);
    tmux.keys(&["Enter"]);
    let receipt = tmux.wait_for("CARDHOLDER COPY");
    shoot("tui-receipt", &receipt);
    let trace = receipt
        .lines()
        .find_map(|line| line.split("TRACE NO").nth(1))
        .map(|rest| rest.trim_matches(|c: char| !c.is_ascii_digit()).to_owned())
        .expect("the trace number on the receipt");
    assert_eq!(trace, "000002", "the operator's sign-on took trace 1");
    assert!(receipt.contains("621234******0000"), "{receipt}");
    assert!(receipt.contains("SALE"), "{receipt}");
    tmux.keys(&["8", "8", "8", "8", "8", "8", "8", "8"]);
    let bottom = tmux.wait_for("PIN VERIFIED");
    assert!(
        bottom.contains("AMOUNT                 CNY 12.34"),
        "{bottom}"
    );
    let full_pan = demo::cards()
        .into_iter()
        .find(|card| card.card.id == "card-CH001-D")
        .unwrap()
        .pan;
    assert!(!bottom.contains(&full_pan) && !receipt.contains(&full_pan));

    // The supervisor voids it.
    tmux.keys(&["Enter"]);
    tmux.wait_for("1 Sale");
    tmux.keys(&["2"]);
    tmux.wait_for("Supervisor password:");
    tmux.keys(&["9", "9", "9", "9", "9", "9", "Enter"]);
    tmux.wait_for("Original trace no:");
    tmux.keys(&["2", "Enter"]);
    tmux.wait_for("2/5 Which card?");
    tmux.keys(&["1"]);
    tmux.wait_for("Original trace no: 000002");
    tmux.keys(&["1"]);
    tmux.wait_for("APPROVED");
    tmux.keys(&["Enter"]);
    let void = tmux.wait_for("CARDHOLDER COPY");
    assert!(void.contains("VOID"), "{void}");
    shoot("tui-void", &void);

    // Back to the menu, sign off, leave.
    tmux.keys(&["Enter"]);
    tmux.wait_for("1 Sale");
    tmux.keys(&["0"]);
    tmux.wait_for("Operator no:");
    tmux.keys(&["Escape"]);
    let deadline = Instant::now() + SCREEN_TIMEOUT;
    while tmux
        .command()
        .args(["has-session", "-t", "pos"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
    {
        assert!(Instant::now() < deadline, "the TUI did not exit on Escape");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The sale is in the terminal's batch on disk, and the host took the money.
    let batch = easypos(&dir, &["terminal", "batch", "--json"]);
    let batch: serde_json::Value = serde_json::from_slice(&batch.stdout).unwrap();
    let entries = batch["transactions"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = entries
        .iter()
        .map(|entry| {
            (
                entry["kind"].as_str().unwrap(),
                entry["response_code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds, [("sale", "00"), ("void", "00")]);
    let balance = easypos(
        &dir,
        &[
            "terminal",
            "balance",
            "--json",
            "--method",
            "debit",
            "--card",
            "cards/li-lei.json",
            "--pin",
            "123456",
        ],
    );
    let balance: serde_json::Value = serde_json::from_slice(&balance.stdout).unwrap();
    assert_eq!(
        balance["receipt"]["balance"], "5000.00",
        "sold and voided: the money is back"
    );

    drop(up);
    drop(tmux);
    let _ = std::fs::remove_dir_all(&dir);
}
