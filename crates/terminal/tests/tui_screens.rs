#![cfg(feature = "tui")]
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every screen of the sale flow, drawn on ratatui's `TestBackend` and compared with its
//! snapshot in `tests/snapshots/` (`UPDATE_SNAPSHOTS=1` rewrites them; review the diff). The
//! screens are reached by the keys a cashier presses wherever no host is needed; the steps
//! that need the host (the PIN block, the answer) are set directly.

use money::Currency;
use paycrypto::{Pan, TdesKey};
use ratatui::Terminal as Screen;
use ratatui::backend::TestBackend;
use std::path::{Path, PathBuf};
use std::time::Instant;
use terminal::cardfile::{CardData, CardFile, CardProduct, Personalisation};
use terminal::config::{Language, TerminalConfig};
use terminal::pos::{Method, Pos, ReversalStatus, TransactionResult};
use terminal::receipt::{Cvm, Entry, Receipt};
use terminal::transactions::TransactionType;
use terminal::tui::{App, Key, SCREEN_HEIGHT, SCREEN_WIDTH};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("terminal-tui-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("cards")).unwrap();
    dir
}

fn issue(dir: &Path, name: &str, pan: &str, product: CardProduct) {
    let pan = Pan::new(pan).unwrap();
    let key = TdesKey::new(&[0x33; 16]).unwrap();
    let data = CardData::issue(&Personalisation {
        card_id: name,
        cardholder: "Test Holder",
        product,
        currency: Currency::CNY,
        issuer: 20,
        pan: &pan,
        expiry: "3012",
        service_code: "201",
        psn: 1,
        aid: "A000000333010101",
        label: "TEST DEBIT",
        issuer_master_key: &key,
        cvk: &key,
    })
    .unwrap();
    CardFile::create(&dir.join("cards").join(format!("{name}.json")), data).unwrap();
}

/// A terminal with two cards on file and no host (nothing here sends).
fn app(name: &str, language: Language) -> (App, PathBuf) {
    app_with(name, language, |_| {})
}

/// [`app`], its configuration changed by `edit` first.
fn app_with(
    name: &str,
    language: Language,
    edit: impl FnOnce(&mut TerminalConfig),
) -> (App, PathBuf) {
    let dir = temp_dir(name);
    issue(&dir, "a-debit", "6212345000000001", CardProduct::Debit);
    issue(&dir, "b-credit", "6256785000000002", CardProduct::Credit);
    let mut config = TerminalConfig::new(
        "10000001",
        "898310058120001",
        "Lujiazui Coffee",
        "Shanghai",
        "127.0.0.1:9",
    );
    config.merchant_name_zh = Some("陆家嘴咖啡".into());
    config.language = language;
    config.state_dir = dir.join("state");
    config.cards_dir = dir.join("cards");
    edit(&mut config);
    let pos = Pos::open(config, TdesKey::new(&[0x11; 16]).unwrap()).unwrap();
    (App::new(pos), dir)
}

fn width(symbol: &str) -> usize {
    terminal::receipt::width(symbol).max(1)
}

/// The screen as text, one line per row; cells hidden by a wide character are left out.
fn render(app: &App, now: Instant) -> String {
    let mut screen = Screen::new(TestBackend::new(SCREEN_WIDTH, SCREEN_HEIGHT)).unwrap();
    screen.draw(|frame| app.draw(frame, now)).unwrap();
    let buffer = screen.backend().buffer();
    let mut out = String::new();
    for row in buffer.content.chunks(usize::from(buffer.area.width)) {
        let mut skip = 0;
        let mut line = String::new();
        for cell in row {
            if skip == 0 {
                line.push_str(cell.symbol());
                skip = width(cell.symbol()) - 1;
            } else {
                skip -= 1;
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn check(name: &str, app: &App, now: Instant) {
    let actual = render(app, now);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; run with UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert_eq!(actual, expected, "screen {name} differs from its snapshot");
}

fn keys(app: &mut App, keys: &[Key]) {
    for key in keys {
        app.key(*key);
    }
}

fn receipt(approved: bool, code: &str) -> Receipt {
    Receipt {
        merchant_name: "Lujiazui Coffee".into(),
        merchant_city: "Shanghai".into(),
        merchant_id: "898310058120001".into(),
        terminal_id: "10000001".into(),
        operator: "01".into(),
        card: "621234******0001".into(),
        card_product: "debit".into(),
        entry: Entry::Chip,
        transaction: TransactionType::Sale,
        batch: 1,
        stan: 7,
        date: "2026-11-25".into(),
        time: "20:31:05".into(),
        rrn: approved.then(|| "000000123456".into()),
        auth_code: approved.then(|| "654321".into()),
        amount_minor: 1_234,
        currency: "CNY".into(),
        amount: "12.34".into(),
        response_code: code.into(),
        approved,
        cvm: Cvm::PinVerified,
        application_label: Some("TEST DEBIT".into()),
        aid: Some("A000000333010101".into()),
        original_stan: None,
        balance: None,
        verification: None,
    }
}

#[test]
fn every_screen_of_the_sale_flow_matches_its_snapshot() {
    use Key::*;
    let (mut app, dir) = app("sale", Language::English);
    let now = Instant::now();
    check("01_sign_on", &app, now);
    keys(&mut app, &[Digit(0), Digit(1), Enter, Digit(0), Digit(0)]);
    check("02_sign_on_password", &app, now);
    // Signing on needs the host; the menu is where it lands.
    app.screen = terminal::tui::Screen::Menu;
    check("03_menu", &app, now);
    keys(
        &mut app,
        &[Digit(1), Digit(1), Digit(2), Digit(3), Digit(4)],
    );
    check("04_amount", &app, now);
    keys(&mut app, &[Enter]);
    check("05_step1_method", &app, now);
    keys(&mut app, &[Digit(1)]);
    check("06_step2_card", &app, now);
    keys(&mut app, &[Digit(1)]);
    check("07_step2_present", &app, now);
    keys(&mut app, &[Digit(1), Digit(1), Digit(2), Digit(3)]);
    check("08_step3_pin_pad", &app, now);
    // Enter would make the PIN block under the sign-on's key.
    app.screen = terminal::tui::Screen::Confirm;
    check("09_step4_confirm", &app, now);
    app.screen = terminal::tui::Screen::Sending;
    check("10_step5_sending", &app, now);
    app.show_result(TransactionResult {
        approved: true,
        response_code: Some("00".into()),
        message: "Approved".into(),
        receipt: receipt(true, "00"),
        reversal: None,
    });
    check("11_result_approved", &app, now);
    keys(&mut app, &[Enter]);
    check("12_receipt", &app, now);
    keys(
        &mut app,
        &[Down, Down, Down, Down, Down, Down, Down, Down, Down, Down],
    );
    check("13_receipt_scrolled", &app, now);
    keys(&mut app, &[Enter]);
    assert_eq!(app.screen, terminal::tui::Screen::Menu);
    app.show_result(TransactionResult {
        approved: false,
        response_code: Some("55".into()),
        message: "Wrong PIN: ask the cardholder to try again".into(),
        receipt: receipt(false, "55"),
        reversal: None,
    });
    check("14_result_declined", &app, now);
    app.show_result(TransactionResult {
        approved: false,
        response_code: None,
        message: "the host did not answer within 20000 ms; the transaction was reversed".into(),
        receipt: receipt(false, ""),
        reversal: Some(ReversalStatus::Pending),
    });
    check("15_result_no_answer", &app, now);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_chip_card_swiped_is_asked_to_insert_and_a_small_tap_skips_the_pin() {
    use Key::*;
    let (mut app, dir) = app("rules", Language::English);
    app.screen = terminal::tui::Screen::Menu;
    keys(
        &mut app,
        &[
            Digit(1),
            Digit(5),
            Digit(0),
            Digit(0),
            Enter,
            Digit(1),
            Digit(1),
            Digit(2),
        ],
    );
    check("16_swipe_chip_card", &app, Instant::now());
    assert_eq!(app.screen, terminal::tui::Screen::Present);
    keys(&mut app, &[Digit(3)]);
    assert_eq!(
        app.screen,
        terminal::tui::Screen::Confirm,
        "5.00 tapped: no PIN"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_screens_speak_chinese_when_the_terminal_does() {
    use Key::*;
    let (mut app, dir) = app("zh", Language::Chinese);
    check("20_zh_sign_on", &app, Instant::now());
    app.screen = terminal::tui::Screen::Menu;
    check("21_zh_menu", &app, Instant::now());
    app.choose(TransactionType::Sale, 1_234, Method::Debit, 0, 0);
    app.screen = terminal::tui::Screen::Confirm;
    check("22_zh_confirm", &app, Instant::now());
    keys(&mut app, &[Digit(0)]);
    assert_eq!(
        app.screen,
        terminal::tui::Screen::Menu,
        "the consumer cancels"
    );
    app.show_result(TransactionResult {
        approved: false,
        response_code: Some("51".into()),
        message: "Declined: not enough money on the card".into(),
        receipt: receipt(false, "51"),
        reversal: None,
    });
    check("23_zh_result_declined", &app, Instant::now());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_void_needs_the_supervisor_and_names_a_sale_of_the_batch() {
    use Key::*;
    use terminal::state::{BatchEntry, StateDir, TerminalState};
    let (app_before, dir) = app("void", Language::English);
    drop(app_before);
    // The batch holds an approved sale with trace 7 on the first card.
    let mut state = TerminalState::new("10000001");
    state.stan = 7;
    state.transactions.push(BatchEntry {
        kind: TransactionType::Sale,
        stan: 7,
        batch: 1,
        amount_minor: 1_234,
        currency: "CNY".into(),
        card: "621234******0001".into(),
        entry: Entry::Chip,
        cvm: Cvm::PinVerified,
        response_code: "00".into(),
        rrn: Some("000000123456".into()),
        auth_code: Some("654321".into()),
        original_stan: None,
        at: 0,
        reversed: false,
        voided: false,
    });
    let mut hold = state.transactions[0].clone();
    hold.kind = TransactionType::PreAuthorization;
    hold.stan = 8;
    hold.amount_minor = 10_000;
    state.transactions.push(hold);
    state.stan = 8;
    StateDir::open(&dir.join("state"))
        .unwrap()
        .save(&state)
        .unwrap();
    let mut config = TerminalConfig::new(
        "10000001",
        "898310058120001",
        "Lujiazui Coffee",
        "Shanghai",
        "127.0.0.1:9",
    );
    config.state_dir = dir.join("state");
    config.cards_dir = dir.join("cards");
    let mut app = App::new(Pos::open(config, TdesKey::new(&[0x11; 16]).unwrap()).unwrap());
    app.screen = terminal::tui::Screen::Menu;
    check("30_menu_full", &app, Instant::now());
    keys(&mut app, &[Digit(7)]);
    check("31_batch_list", &app, Instant::now());
    keys(&mut app, &[Enter, Digit(2), Digit(1), Digit(2), Enter]);
    check("32_void_wrong_supervisor", &app, Instant::now());
    keys(
        &mut app,
        &[Digit(9), Digit(9), Digit(9), Digit(9), Digit(9), Digit(9)],
    );
    check("33_void_supervisor", &app, Instant::now());
    keys(&mut app, &[Enter, Digit(8), Enter]);
    check("34_void_unknown_trace", &app, Instant::now());
    keys(&mut app, &[Backspace, Digit(7), Enter]);
    assert_eq!(app.screen, terminal::tui::Screen::Card);
    keys(&mut app, &[Digit(1)]);
    check("35_void_confirm", &app, Instant::now());
    // A completion names the pre-authorization (no supervisor), for up to its amount.
    keys(&mut app, &[Escape, Digit(9), Digit(7), Enter]);
    check("36_completion_not_a_hold", &app, Instant::now());
    keys(&mut app, &[Backspace, Digit(8), Enter]);
    assert_eq!(app.screen, terminal::tui::Screen::Amount);
    keys(
        &mut app,
        &[Digit(8), Digit(0), Digit(0), Digit(0), Enter, Digit(1)],
    );
    check("37_completion_confirm", &app, Instant::now());
    let _ = std::fs::remove_dir_all(dir);
}

/// A wallet that makes one order and answers "created" once, then `last`.
struct FakeWallet {
    asked: std::sync::Mutex<u32>,
    last: &'static str,
}

impl terminal::tui::QrPayments for FakeWallet {
    fn create(&self, amount_minor: u64) -> Result<terminal::tui::QrOrder, String> {
        assert_eq!(amount_minor, 1_234);
        Ok(terminal::tui::QrOrder {
            order_id: "10000001-qr7".into(),
            payload: "00020101021226420019cn.easypos.pandapay0115898310058120001520458145303156540512.345802CN5915Lujiazui Coffee6008Shanghai6304ABCD".into(),
        })
    }

    fn status(&self, order_id: &str) -> Result<String, String> {
        assert_eq!(order_id, "10000001-qr7");
        let mut asked = self.asked.lock().unwrap();
        *asked += 1;
        Ok(if *asked == 1 { "created" } else { self.last }.to_owned())
    }

    fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(120)
    }
}

/// The screen on a terminal-sized backend (the QR code takes the whole screen).
fn render_large(app: &App) -> String {
    let mut screen = Screen::new(TestBackend::new(80, 40)).unwrap();
    screen
        .draw(|frame| app.draw(frame, Instant::now()))
        .unwrap();
    screen
        .backend()
        .buffer()
        .content
        .iter()
        .map(|cell| cell.symbol())
        .collect()
}

fn wait_while_busy(app: &mut App) {
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    while app.busy() && Instant::now() < deadline {
        app.poll();
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!app.busy(), "the QR payment never finished");
}

#[test]
fn a_sale_by_qr_code_shows_the_code_and_waits_for_the_payment() {
    use Key::*;
    for (last, expected) in [("paid", "Paid with Panda Pay"), ("closed", "(closed)")] {
        let (app, dir) = app(&format!("qr-{last}"), Language::English);
        let mut app = app.with_qr(std::sync::Arc::new(FakeWallet {
            asked: std::sync::Mutex::new(0),
            last,
        }));
        app.screen = terminal::tui::Screen::Menu;
        keys(
            &mut app,
            &[Digit(1), Digit(1), Digit(2), Digit(3), Digit(4), Enter],
        );
        assert!(render_large(&app).contains("3 QR code (Panda Pay)"));
        keys(&mut app, &[Digit(3)]);
        assert_eq!(app.screen, terminal::tui::Screen::Qr);
        // The code appears once the order is made: half blocks, the order id, the amount.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        let mut shown = render_large(&app);
        while !shown.contains("10000001-qr7") && Instant::now() < deadline {
            app.poll();
            std::thread::sleep(std::time::Duration::from_millis(20));
            shown = render_large(&app);
        }
        assert!(shown.contains("10000001-qr7"), "{shown}");
        assert!(shown.contains("CNY 12.34"));
        assert!(shown.contains('▀') || shown.contains('▄'), "{shown}");
        wait_while_busy(&mut app);
        assert_eq!(app.screen, terminal::tui::Screen::Notice);
        let result = render_large(&app);
        assert!(result.contains(expected), "{result}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn the_qr_method_is_offered_only_for_sales_with_a_wallet() {
    use Key::*;
    let (mut app, dir) = app("qr-none", Language::English);
    app.screen = terminal::tui::Screen::Menu;
    keys(&mut app, &[Digit(1), Digit(5), Enter]);
    assert!(!render_large(&app).contains("QR code"));
    keys(&mut app, &[Digit(3)]);
    assert_eq!(
        app.screen,
        terminal::tui::Screen::Method,
        "no wallet: 3 does nothing"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn with_supervisors_checked_by_the_host_a_void_asks_the_supervisors_number_and_password() {
    use Key::*;
    use terminal::config::SupervisorCheck;
    let (mut app, dir) = app_with("void-host", Language::English, |config| {
        config.supervisor_check = SupervisorCheck::Host;
    });
    app.screen = terminal::tui::Screen::Menu;
    keys(&mut app, &[Digit(2)]);
    assert_eq!(app.screen, terminal::tui::Screen::SupervisorNumber);
    // Enter without a number does nothing; the number takes at most 3 digits.
    keys(&mut app, &[Enter, Digit(0), Digit(0), Digit(2), Digit(9)]);
    assert_eq!(app.screen, terminal::tui::Screen::SupervisorNumber);
    check("40_void_supervisor_number", &app, Instant::now());
    // The password is not checked here (terminal.toml's would pass): the host checks it, so
    // it must be one that can travel as a PIN block, 4 to 12 digits.
    keys(&mut app, &[Enter, Digit(1), Digit(2), Digit(3), Enter]);
    assert_eq!(app.screen, terminal::tui::Screen::Supervisor { digits: 0 });
    check(
        "41_void_supervisor_password_too_short",
        &app,
        Instant::now(),
    );
    keys(
        &mut app,
        &[
            Digit(2),
            Digit(4),
            Digit(6),
            Digit(8),
            Digit(1),
            Digit(0),
            Enter,
        ],
    );
    assert_eq!(app.screen, terminal::tui::Screen::Trace);
    // Escape on the number goes back to the menu.
    keys(&mut app, &[Escape, Digit(3), Escape]);
    assert_eq!(app.screen, terminal::tui::Screen::Menu);
    let _ = std::fs::remove_dir_all(dir);
}
