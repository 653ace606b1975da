//! The interactive terminal (`easypos terminal tui`): a countertop POS on screen, driven by
//! number keys, in English or Chinese (the terminal's `language`).
//!
//! The cashier signs on (operator number and password), picks from the menu, and the sale runs
//! exactly as R2–R6 describe it: the cashier keys the amount; (1) the method — debit or credit
//! card; (2) the card is presented — the consumer's card from the card simulator's files, then
//! insert, swipe or tap; (3) the PIN pad shows one `*` per digit and makes the PIN block the
//! moment Enter is pressed (a tap under the contactless limit skips it); (4) the consumer sees
//! amount, currency and merchant and confirms or cancels; (5) the terminal sends, with a
//! countdown, and shows the result in plain words, then the receipt.
//!
//! With a wallet client ([`App::with_qr`], `easypos terminal tui --wallet-url`), a sale offers a
//! third method, the Panda Pay QR code: the terminal asks the host for an order, draws its
//! dynamic EMVCo code in Unicode half blocks, and asks every 3 s until the consumer has paid
//! it on the phone or the order closed.
//!
//! [`App`] holds the screen state and draws it; [`App::key`] moves it. The engine ([`Pos`])
//! runs network work on a worker thread so the countdown keeps moving. [`run`] is the event
//! loop on a real terminal (crossterm); tests draw [`App`] on ratatui's `TestBackend`.

use crate::cardfile::CardFile;
use crate::config::{Language, SupervisorCheck, TerminalConfig};
use crate::pos::{
    Method, Payment, Pos, PosError, Presentation, SettlementResult, Supervisor, TransactionResult,
};
use crate::receipt::{Copy, transaction_name};
use crate::transactions::TransactionType;
use paycrypto::{Pin, PinBlock};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};
use zeroize::{Zeroize, Zeroizing};

/// The POS screen: 32 columns inside a border, like a countertop terminal's display.
pub const SCREEN_WIDTH: u16 = 34;
pub const SCREEN_HEIGHT: u16 = 18;
/// The most card files the "present a card" screen lists (number keys 1–9).
const MAX_CARDS: usize = 9;
/// The longest PIN the pad takes (ISO 9564).
const MAX_PIN_DIGITS: usize = 12;
/// The longest amount the cashier can key: 12 digits of minor units (field 4).
const MAX_AMOUNT_DIGITS: usize = 12;

/// A key, as the screen understands it (crossterm's events are mapped to these, so tests and
/// tmux drive the same thing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Digit(u8),
    Enter,
    Backspace,
    Escape,
    Up,
    Down,
}

/// The wallet's merchant-presented QR payments, as the screen needs them: the binary gives the
/// wallet's JSON client; the screen only draws and waits.
pub trait QrPayments: Send + Sync {
    /// Creates an order for `amount_minor` (the terminal's currency) and returns it.
    fn create(&self, amount_minor: u64) -> Result<QrOrder, String>;
    /// The order's status: `created`, `paid`, `closed`, `reversed` or `refunded`.
    fn status(&self, order_id: &str) -> Result<String, String>;
    /// How long the order stays payable; the screen stops asking 30 s after.
    fn timeout(&self) -> Duration;
}

/// An order to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrOrder {
    pub order_id: String,
    /// The dynamic EMVCo payload the code carries.
    pub payload: String,
}

/// How often the screen asks whether the order is paid (issue 8: every 3 s).
pub const QR_POLL_INTERVAL: Duration = Duration::from_secs(3);
/// How long after the order's timeout the screen stops asking (the host closes unpaid orders
/// within a second of their end).
const QR_GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// What the QR worker reports.
#[derive(Debug)]
enum QrEvent {
    Created(QrOrder),
    Status(String),
    Failed(String),
}

/// Which screen is up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Screen {
    /// The merchant-presented QR code, waiting for the consumer's payment.
    Qr,
    SignOn {
        operator: String,
        password_digits: usize,
        on_password: bool,
    },
    Menu,
    Amount,
    Method,
    Card,
    Present,
    PinPad,
    Confirm,
    Sending,
    Result,
    Receipt {
        scroll: u16,
    },
    Notice,
    /// The supervisor's number, for a void or a refund when the host checks supervisors
    /// (`supervisor_check = "host"`).
    SupervisorNumber,
    /// The supervisor's password, for a void or a refund (R16).
    Supervisor {
        digits: usize,
    },
    /// The original's trace number, for a void or a refund.
    Trace,
}

/// What the cashier and the consumer have chosen so far.
#[derive(Debug, Default)]
struct Draft {
    kind: Option<TransactionType>,
    amount_minor: u64,
    method: Option<Method>,
    card: Option<usize>,
    presentation: Option<Presentation>,
    fallback: bool,
    pin_block: Option<PinBlock>,
    pin_digits: usize,
    original_stan: Option<u32>,
    /// The supervisor's number and password, for the host to check (`supervisor_check =
    /// "host"`).
    supervisor_no: Option<String>,
    supervisor: Option<Supervisor>,
}

/// Work done off the screen thread.
enum Work {
    SignOn(Result<u32, PosError>),
    Transaction(Box<Result<TransactionResult, PosError>>, Box<CardFile>),
    Settlement(Result<SettlementResult, PosError>),
    SignOff(Result<(), PosError>),
}

/// The screen's state.
pub struct App {
    config: TerminalConfig,
    /// `None` while a worker holds it.
    pos: Option<Pos>,
    pub screen: Screen,
    /// Digits typed on the current screen (amount, operator); PIN digits never go here.
    input: String,
    /// The PIN being typed, cleared once the PIN block is made.
    /// Wiped from memory when dropped or replaced, as is the password.
    pin: Zeroizing<String>,
    password: Zeroizing<String>,
    draft: Draft,
    cards: Vec<CardFile>,
    worker: Option<(Receiver<(Pos, Work)>, Instant)>,
    result: Option<TransactionResult>,
    notice: Vec<String>,
    error: Option<String>,
    pub quit: bool,
    /// The wallet client, when the terminal offers QR payments.
    qr: Option<Arc<dyn QrPayments>>,
    /// The QR worker's reports; dropping it stops the worker.
    qr_events: Option<Receiver<QrEvent>>,
    /// The order on screen.
    qr_order: Option<QrOrder>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("screen", &self.screen)
            .finish_non_exhaustive()
    }
}

struct Words {
    title: &'static str,
    operator: &'static str,
    password: &'static str,
    sign_on_keys: &'static str,
    menu: [&'static str; 10],
    choose: &'static str,
    enter_amount: &'static str,
    step1: &'static str,
    debit: &'static str,
    credit: &'static str,
    step2_card: &'static str,
    no_cards: &'static str,
    step2_present: &'static str,
    insert: &'static str,
    swipe: &'static str,
    tap: &'static str,
    fallback: &'static str,
    step3: &'static str,
    pin_hint: &'static str,
    step4: &'static str,
    amount: &'static str,
    merchant: &'static str,
    confirm_keys: &'static str,
    step5: &'static str,
    waiting: &'static str,
    seconds_left: &'static str,
    approved: &'static str,
    declined: &'static str,
    not_completed: &'static str,
    reversed: &'static str,
    reversal_pending: &'static str,
    receipt_keys: &'static str,
    back_keys: &'static str,
    balance: &'static str,
    wrong_password: &'static str,
    supervisor_no: &'static str,
    bad_supervisor_password: &'static str,
    supervisor: &'static str,
    trace: &'static str,
    no_original: &'static str,
    qr: &'static str,
    qr_scan: &'static str,
    qr_creating: &'static str,
    qr_waiting: &'static str,
    qr_paid: &'static str,
    qr_not_paid: &'static str,
}

const ENGLISH: Words = Words {
    title: "easypos POS",
    operator: "Operator no:",
    password: "Password:",
    sign_on_keys: "Enter: next  Esc: exit",
    menu: [
        "1 Sale",
        "2 Void",
        "3 Refund",
        "4 Balance inquiry",
        "5 Settlement",
        "6 Reprint last",
        "7 Batch list",
        "8 Pre-authorization",
        "9 Completion",
        "0 Sign off",
    ],
    choose: "Press a number",
    enter_amount: "Amount (cashier):",
    step1: "1/5 Payment method",
    debit: "1 Debit card",
    credit: "2 Credit card",
    step2_card: "2/5 Which card?",
    no_cards: "No card files in the cards directory",
    step2_present: "2/5 Insert, swipe or tap",
    insert: "1 Insert (chip)",
    swipe: "2 Swipe",
    tap: "3 Tap (contactless)",
    fallback: "4 Swipe: chip unreadable",
    step3: "3/5 Enter PIN",
    pin_hint: "Enter: OK  (no PIN: sign)",
    step4: "4/5 Please confirm",
    amount: "Amount:",
    merchant: "Merchant:",
    confirm_keys: "1/Enter: confirm  0/Esc: cancel",
    step5: "5/5 Processing",
    waiting: "Waiting for the bank",
    seconds_left: "s left",
    approved: "APPROVED",
    declined: "DECLINED",
    not_completed: "NOT COMPLETED",
    reversed: "The transaction was reversed.",
    reversal_pending: "Reversal pending: sent next time.",
    receipt_keys: "Enter: receipt",
    back_keys: "Enter: back to menu",
    balance: "Balance:",
    wrong_password: "Wrong operator or password",
    supervisor_no: "Supervisor no.:",
    bad_supervisor_password: "A password is 4 to 12 digits",
    supervisor: "Supervisor password:",
    trace: "Original trace no:",
    no_original: "No such approved transaction in this batch",
    qr: "3 QR code (Panda Pay)",
    qr_scan: "Scan to pay with Panda Pay",
    qr_creating: "Asking the host for a code",
    qr_waiting: "Waiting for the payment  Esc: leave",
    qr_paid: "Paid with Panda Pay",
    qr_not_paid: "Not paid, nothing was charged",
};

const CHINESE: Words = Words {
    title: "易POS",
    operator: "操作员号:",
    password: "密码:",
    sign_on_keys: "确认: 下一步  取消: 退出",
    menu: [
        "1 消费",
        "2 消费撤销",
        "3 退货",
        "4 余额查询",
        "5 结算",
        "6 重打印",
        "7 交易明细",
        "8 预授权",
        "9 预授权完成",
        "0 签退",
    ],
    choose: "请按数字键选择",
    enter_amount: "请输入金额:",
    step1: "1/5 选择支付方式",
    debit: "1 借记卡",
    credit: "2 信用卡",
    step2_card: "2/5 请选择卡片",
    no_cards: "卡片目录中没有卡",
    step2_present: "2/5 请插卡、刷卡或挥卡",
    insert: "1 插卡",
    swipe: "2 刷卡",
    tap: "3 挥卡",
    fallback: "4 芯片无法读取,刷卡",
    step3: "3/5 请输入密码",
    pin_hint: "确认键结束 (无密码: 签名)",
    step4: "4/5 请确认",
    amount: "金额:",
    merchant: "商户:",
    confirm_keys: "1/确认: 确认  0/取消: 取消",
    step5: "5/5 交易处理中",
    waiting: "正在连接银行",
    seconds_left: "秒",
    approved: "交易成功",
    declined: "交易失败",
    not_completed: "交易未完成",
    reversed: "交易已冲正。",
    reversal_pending: "冲正待发送,下次联机时发送。",
    receipt_keys: "确认: 查看凭证",
    back_keys: "确认: 返回菜单",
    balance: "余额:",
    wrong_password: "操作员号或密码错误",
    supervisor_no: "主管编号:",
    bad_supervisor_password: "密码为 4 至 12 位数字",
    supervisor: "主管密码:",
    trace: "原凭证号:",
    no_original: "本批次无此笔成功交易",
    qr: "3 扫码支付（熊猫支付）",
    qr_scan: "请用熊猫支付扫码付款",
    qr_creating: "正在获取收款码",
    qr_waiting: "等待顾客付款  取消: 离开",
    qr_paid: "熊猫支付 付款成功",
    qr_not_paid: "未支付,未扣款",
};

fn words(language: Language) -> &'static Words {
    match language {
        Language::English => &ENGLISH,
        Language::Chinese => &CHINESE,
    }
}

/// `amount_minor` in major units with the currency code.
fn money_text(amount_minor: u64, currency: &str) -> String {
    match money::Currency::parse(currency) {
        Ok(parsed) => format!(
            "{currency} {}",
            money::Amount::new(amount_minor as i64, parsed).format_major()
        ),
        Err(_) => format!("{currency} {amount_minor}"),
    }
}

impl App {
    /// The screen of the terminal `pos`, at operator sign-on, with the card files of its
    /// `cards_dir`.
    pub fn new(pos: Pos) -> App {
        let config = pos.config().clone();
        App {
            cards: load_cards(&config.cards_dir),
            config,
            pos: Some(pos),
            screen: Screen::SignOn {
                operator: String::new(),
                password_digits: 0,
                on_password: false,
            },
            input: String::new(),
            pin: Zeroizing::new(String::new()),
            password: Zeroizing::new(String::new()),
            draft: Draft::default(),
            worker: None,
            result: None,
            notice: Vec::new(),
            error: None,
            quit: false,
            qr: None,
            qr_events: None,
            qr_order: None,
        }
    }

    /// Offers the QR method in sales, with `qr` as the wallet client.
    pub fn with_qr(mut self, qr: Arc<dyn QrPayments>) -> App {
        self.qr = Some(qr);
        self
    }

    fn words(&self) -> &'static Words {
        words(self.config.language)
    }

    /// Handles one key.
    pub fn key(&mut self, key: Key) {
        if self.worker.is_some() {
            // Nothing interrupts a message in flight.
            return;
        }
        self.error = None;
        match self.screen.clone() {
            Screen::SignOn {
                operator,
                on_password,
                ..
            } => self.sign_on_key(key, operator, on_password),
            Screen::Menu => self.menu_key(key),
            Screen::Amount => self.amount_key(key),
            Screen::Qr => {
                if matches!(key, Key::Escape) {
                    // The order stays with the host: unpaid, it closes by itself.
                    self.qr_events = None;
                    self.qr_order = None;
                    self.back_to_menu();
                }
            }
            Screen::Method => match key {
                Key::Digit(1) => self.choose_method(Method::Debit),
                Key::Digit(2) => self.choose_method(Method::Credit),
                Key::Digit(3) if self.offers_qr() => self.start_qr(),
                Key::Escape | Key::Digit(0) => self.back_to_menu(),
                _ => {}
            },
            Screen::Card => match key {
                Key::Digit(digit) if digit >= 1 && usize::from(digit) <= self.cards.len() => {
                    let index = usize::from(digit) - 1;
                    self.draft.card = Some(index);
                    if self.draft.kind.is_some_and(TransactionType::has_original) {
                        // A follow-up presents the card by its number: no chip, no PIN.
                        self.draft.method =
                            self.cards.get(index).map(|card| match card.data.product {
                                crate::cardfile::CardProduct::Debit => Method::Debit,
                                crate::cardfile::CardProduct::Credit => Method::Credit,
                            });
                        self.draft.presentation = Some(Presentation::Insert);
                        self.screen = Screen::Confirm;
                    } else {
                        self.screen = Screen::Present;
                    }
                }
                Key::Escape | Key::Digit(0) => self.back_to_menu(),
                _ => {}
            },
            Screen::Present => self.present_key(key),
            Screen::PinPad => self.pin_key(key),
            Screen::Confirm => match key {
                Key::Digit(1) | Key::Enter => self.send(),
                Key::Digit(0) | Key::Escape => self.back_to_menu(),
                _ => {}
            },
            Screen::Sending => {}
            Screen::Result => match key {
                Key::Enter if self.result.as_ref().is_some_and(|result| result.approved) => {
                    self.screen = Screen::Receipt { scroll: 0 };
                }
                Key::Enter | Key::Escape => self.back_to_menu(),
                _ => {}
            },
            Screen::Receipt { scroll } => match key {
                Key::Down | Key::Digit(8) => {
                    self.screen = Screen::Receipt {
                        scroll: scroll.saturating_add(1),
                    }
                }
                Key::Up | Key::Digit(2) => {
                    self.screen = Screen::Receipt {
                        scroll: scroll.saturating_sub(1),
                    }
                }
                Key::Enter | Key::Escape => self.back_to_menu(),
                _ => {}
            },
            Screen::Notice => {
                if matches!(key, Key::Enter | Key::Escape) {
                    self.back_to_menu();
                }
            }
            Screen::SupervisorNumber => self.supervisor_number_key(key),
            Screen::Supervisor { .. } => self.supervisor_key(key),
            Screen::Trace => self.trace_key(key),
        }
    }

    fn supervisor_number_key(&mut self, key: Key) {
        match key {
            Key::Digit(digit) if self.input.len() < 3 => self.input.push(char::from(b'0' + digit)),
            Key::Backspace => {
                self.input.pop();
            }
            Key::Escape => self.back_to_menu(),
            Key::Enter if !self.input.is_empty() => {
                self.draft.supervisor_no = Some(std::mem::take(&mut self.input));
                self.password.zeroize();
                self.screen = Screen::Supervisor { digits: 0 };
            }
            _ => {}
        }
    }

    fn supervisor_key(&mut self, key: Key) {
        match key {
            Key::Digit(digit) if self.password.len() < MAX_PIN_DIGITS => {
                self.password.push(char::from(b'0' + digit))
            }
            Key::Backspace => {
                self.password.pop();
            }
            Key::Escape => {
                self.password.zeroize();
                return self.back_to_menu();
            }
            Key::Enter if self.config.supervisor_check == SupervisorCheck::Host => {
                // The host checks it with the void or refund: kept as a PIN for field 63.
                let password = Pin::new(&self.password);
                self.password.zeroize();
                match (password, self.draft.supervisor_no.clone()) {
                    (Ok(password), Some(operator_no)) => {
                        self.draft.supervisor = Some(Supervisor {
                            operator_no,
                            password,
                        });
                        self.input.clear();
                        self.screen = Screen::Trace;
                    }
                    _ => {
                        self.error = Some(self.words().bad_supervisor_password.to_owned());
                        self.screen = Screen::Supervisor { digits: 0 };
                    }
                }
                return;
            }
            Key::Enter => {
                let correct = self.config.is_supervisor_password(&self.password);
                self.password.zeroize();
                if correct {
                    self.input.clear();
                    self.screen = Screen::Trace;
                } else {
                    self.error = Some(self.words().wrong_password.to_owned());
                    self.screen = Screen::Supervisor { digits: 0 };
                }
                return;
            }
            _ => {}
        }
        self.screen = Screen::Supervisor {
            digits: self.password.len(),
        };
    }

    fn trace_key(&mut self, key: Key) {
        match key {
            Key::Digit(digit) if self.input.len() < 6 => self.input.push(char::from(b'0' + digit)),
            Key::Backspace => {
                self.input.pop();
            }
            Key::Escape => self.back_to_menu(),
            Key::Enter => {
                let stan = self.input.parse::<u32>().ok();
                let wanted = if self.draft.kind == Some(TransactionType::Completion) {
                    TransactionType::PreAuthorization
                } else {
                    TransactionType::Sale
                };
                let original =
                    stan.and_then(|stan| {
                        self.pos.as_ref()?.state().find(stan).filter(|entry| {
                            entry.kind == wanted && entry.approved() && !entry.voided
                        })
                    });
                let Some(original) = original else {
                    self.error = Some(self.words().no_original.to_owned());
                    return;
                };
                let amount_minor = original.amount_minor;
                self.draft.original_stan = stan;
                self.input.clear();
                if self.draft.kind == Some(TransactionType::Void) {
                    self.draft.amount_minor = amount_minor;
                    self.cards = load_cards(&self.config.cards_dir);
                    self.screen = Screen::Card;
                } else {
                    self.screen = Screen::Amount;
                }
            }
            _ => {}
        }
    }

    fn sign_on_key(&mut self, key: Key, mut operator: String, on_password: bool) {
        match (key, on_password) {
            (Key::Escape, _) => self.quit = true,
            (Key::Digit(digit), false) if operator.len() < 3 => {
                operator.push(char::from(b'0' + digit))
            }
            (Key::Digit(digit), true) if self.password.len() < MAX_PIN_DIGITS => {
                self.password.push(char::from(b'0' + digit))
            }
            (Key::Backspace, false) => {
                operator.pop();
            }
            (Key::Backspace, true) => {
                self.password.pop();
            }
            (Key::Enter, false) if !operator.is_empty() => {
                self.screen = Screen::SignOn {
                    operator,
                    password_digits: 0,
                    on_password: true,
                };
                return;
            }
            (Key::Enter, true) => {
                let correct = *self.password == self.config.operator_password;
                self.password.zeroize();
                if !correct {
                    self.error = Some(self.words().wrong_password.to_owned());
                    self.screen = Screen::SignOn {
                        operator: String::new(),
                        password_digits: 0,
                        on_password: false,
                    };
                    return;
                }
                let operator = format!("{operator:0>2}");
                self.start(move |pos| {
                    // The operator's sign-on, then any reversal left pending.
                    let result = pos
                        .sign_on(&operator)
                        .and_then(|batch| pos.ready().map(|_| batch));
                    Work::SignOn(result)
                });
                return;
            }
            _ => {}
        }
        self.screen = Screen::SignOn {
            operator,
            password_digits: self.password.len(),
            on_password,
        };
    }

    fn menu_key(&mut self, key: Key) {
        self.draft = Draft::default();
        self.input.clear();
        match key {
            Key::Digit(1) => {
                self.draft.kind = Some(TransactionType::Sale);
                self.screen = Screen::Amount;
            }
            Key::Digit(digit @ (2 | 3)) => {
                self.draft.kind = Some(if digit == 2 {
                    TransactionType::Void
                } else {
                    TransactionType::Refund
                });
                self.password.zeroize();
                self.screen = if self.config.supervisor_check == SupervisorCheck::Host {
                    Screen::SupervisorNumber
                } else {
                    Screen::Supervisor { digits: 0 }
                };
            }
            Key::Digit(4) => {
                self.draft.kind = Some(TransactionType::BalanceInquiry);
                self.screen = Screen::Method;
            }
            Key::Digit(8) => {
                self.draft.kind = Some(TransactionType::PreAuthorization);
                self.screen = Screen::Amount;
            }
            Key::Digit(9) => {
                self.draft.kind = Some(TransactionType::Completion);
                self.input.clear();
                self.screen = Screen::Trace;
            }
            Key::Digit(5) => self.start(|pos| Work::Settlement(pos.settle())),
            Key::Digit(7) => {
                self.notice = self
                    .pos
                    .as_ref()
                    .map(|pos| batch_lines(pos, self.config.language))
                    .unwrap_or_default();
                self.screen = Screen::Notice;
            }
            Key::Digit(6) => {
                let receipt = self
                    .pos
                    .as_ref()
                    .and_then(|pos| pos.last_receipt().cloned());
                self.notice = match receipt {
                    Some(receipt) => receipt.lines(Copy::Cardholder, true, self.config.language),
                    None => vec!["-".to_owned()],
                };
                self.screen = Screen::Notice;
            }
            Key::Digit(0) => self.start(|pos| Work::SignOff(pos.sign_off())),
            _ => {}
        }
    }

    fn amount_key(&mut self, key: Key) {
        match key {
            // No leading zero: the amount is minor units typed from the left.
            Key::Digit(digit)
                if self.input.len() < MAX_AMOUNT_DIGITS
                    && !(self.input.is_empty() && digit == 0) =>
            {
                self.input.push(char::from(b'0' + digit));
            }
            Key::Backspace => {
                self.input.pop();
            }
            Key::Enter => {
                if let Ok(minor) = self.input.parse::<u64>()
                    && minor > 0
                {
                    self.draft.amount_minor = minor;
                    if self.draft.kind.is_some_and(|kind| {
                        kind == TransactionType::Refund || kind == TransactionType::Completion
                    }) {
                        self.cards = load_cards(&self.config.cards_dir);
                        self.screen = Screen::Card;
                    } else {
                        self.screen = Screen::Method;
                    }
                }
            }
            Key::Escape => self.back_to_menu(),
            _ => {}
        }
    }

    fn choose_method(&mut self, method: Method) {
        self.draft.method = Some(method);
        self.cards = load_cards(&self.config.cards_dir);
        self.screen = Screen::Card;
    }

    fn present_key(&mut self, key: Key) {
        let presentation = match key {
            Key::Digit(1) => (Presentation::Insert, false),
            Key::Digit(2) => (Presentation::Swipe, false),
            Key::Digit(3) => (Presentation::Tap, false),
            Key::Digit(4) if self.config.allow_fallback => (Presentation::Swipe, true),
            Key::Escape | Key::Digit(0) => return self.back_to_menu(),
            _ => return,
        };
        self.draft.presentation = Some(presentation.0);
        self.draft.fallback = presentation.1;
        let Some(card) = self.draft.card.and_then(|index| self.cards.get(index)) else {
            return self.back_to_menu();
        };
        // The terminal's own rules, before any PIN is asked for.
        if presentation == (Presentation::Swipe, false) && card.data.has_chip_by_service_code() {
            self.error = Some(match self.config.language {
                Language::English => "Chip card: please insert it".to_owned(),
                Language::Chinese => "芯片卡,请插卡".to_owned(),
            });
            return;
        }
        let under_cvm_limit = self
            .config
            .cvm_limit_minor()
            .is_ok_and(|limit| self.draft.amount_minor <= limit);
        if presentation.0 == Presentation::Tap && under_cvm_limit {
            self.screen = Screen::Confirm;
        } else {
            self.pin.zeroize();
            self.screen = Screen::PinPad;
        }
    }

    fn pin_key(&mut self, key: Key) {
        match key {
            Key::Digit(digit) if self.pin.len() < MAX_PIN_DIGITS => {
                self.pin.push(char::from(b'0' + digit))
            }
            Key::Backspace => {
                self.pin.pop();
            }
            Key::Escape => {
                self.pin.zeroize();
                self.back_to_menu();
                return;
            }
            Key::Enter => {
                if self.pin.is_empty() {
                    self.draft.pin_block = None;
                    self.screen = Screen::Confirm;
                    return;
                }
                // The PIN block is made now; the clear PIN is dropped at once.
                let pin = Pin::new(&self.pin);
                self.pin.zeroize();
                let block = match (
                    pin,
                    self.draft.card.and_then(|index| self.cards.get(index)),
                    self.pos.as_mut(),
                ) {
                    (Ok(pin), Some(card), Some(pos)) => {
                        pos.pin_block(&pin, card).map_err(|error| error.to_string())
                    }
                    (Err(_), _, _) => Err("4 to 12 digits".to_owned()),
                    _ => Err("no card".to_owned()),
                };
                match block {
                    Ok(block) => {
                        self.draft.pin_digits = 0;
                        self.draft.pin_block = Some(block);
                        self.screen = Screen::Confirm;
                    }
                    Err(reason) => self.error = Some(reason),
                }
                return;
            }
            _ => {}
        }
        self.draft.pin_digits = self.pin.len();
    }

    fn back_to_menu(&mut self) {
        self.pin.zeroize();
        self.input.clear();
        self.draft = Draft::default();
        self.screen = Screen::Menu;
    }

    /// Whether the method screen offers the QR code: a sale, with a wallet client.
    fn offers_qr(&self) -> bool {
        self.qr.is_some() && self.draft.kind == Some(TransactionType::Sale)
    }

    /// Creates the order and asks for it every 3 s on a thread of its own (the engine is not
    /// needed: the wallet's interface is HTTP), reporting to the screen.
    fn start_qr(&mut self) {
        let Some(qr) = self.qr.clone() else {
            return;
        };
        let amount_minor = self.draft.amount_minor;
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let order = match qr.create(amount_minor) {
                Ok(order) => order,
                Err(error) => {
                    let _ = sender.send(QrEvent::Failed(error));
                    return;
                }
            };
            let order_id = order.order_id.clone();
            if sender.send(QrEvent::Created(order)).is_err() {
                return;
            }
            let give_up = Instant::now() + qr.timeout() + QR_GIVE_UP_AFTER;
            loop {
                std::thread::sleep(QR_POLL_INTERVAL);
                match qr.status(&order_id) {
                    Ok(status) => {
                        let done = status != "created";
                        if sender.send(QrEvent::Status(status)).is_err() || done {
                            return;
                        }
                    }
                    Err(_) if Instant::now() < give_up => {}
                    Err(error) => {
                        let _ = sender.send(QrEvent::Failed(error));
                        return;
                    }
                }
                if Instant::now() >= give_up {
                    let _ = sender.send(QrEvent::Failed(format!(
                        "no answer for order {order_id}; query it later"
                    )));
                    return;
                }
            }
        });
        self.qr_order = None;
        self.qr_events = Some(receiver);
        self.screen = Screen::Qr;
    }

    /// Takes the QR worker's reports.
    fn poll_qr(&mut self) {
        let Some(events) = &self.qr_events else {
            return;
        };
        let mut finished = None;
        loop {
            match events.try_recv() {
                Ok(QrEvent::Created(order)) => self.qr_order = Some(order),
                Ok(QrEvent::Status(status)) if status == "created" => {}
                Ok(QrEvent::Status(status)) => finished = Some(Ok(status)),
                Ok(QrEvent::Failed(error)) => finished = Some(Err(error)),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    finished.get_or_insert(Err("the QR payment stopped".to_owned()));
                    break;
                }
            }
            if finished.is_some() {
                break;
            }
        }
        let Some(finished) = finished else {
            return;
        };
        let w = self.words();
        let order_id = self
            .qr_order
            .as_ref()
            .map(|order| order.order_id.clone())
            .unwrap_or_default();
        let amount = money_text(self.draft.amount_minor, &self.config.currency);
        self.notice = match finished {
            Ok(status) if status == "paid" => {
                vec![
                    w.approved.to_owned(),
                    w.qr_paid.to_owned(),
                    amount,
                    order_id,
                ]
            }
            Ok(status) => vec![
                w.not_completed.to_owned(),
                format!("{} ({status})", w.qr_not_paid),
                amount,
                order_id,
            ],
            Err(error) => vec![w.not_completed.to_owned(), error],
        };
        self.qr_events = None;
        self.qr_order = None;
        self.screen = Screen::Notice;
    }

    /// Runs `work` on the engine off the screen thread.
    fn start(&mut self, work: impl FnOnce(&mut Pos) -> Work + Send + 'static) {
        let Some(mut pos) = self.pos.take() else {
            return;
        };
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let done = work(&mut pos);
            let _ = sender.send((pos, done));
        });
        self.worker = Some((receiver, Instant::now()));
        self.screen = Screen::Sending;
    }

    /// Step 5: the transaction goes out.
    fn send(&mut self) {
        let (Some(kind), Some(method), Some(presentation), Some(index)) = (
            self.draft.kind,
            self.draft.method,
            self.draft.presentation,
            self.draft.card,
        ) else {
            return self.back_to_menu();
        };
        if index >= self.cards.len() {
            return self.back_to_menu();
        }
        let mut card = Box::new(self.cards.remove(index));
        let fallback = self.draft.fallback;
        let pin_block = self.draft.pin_block.take();
        let amount_minor = self.draft.amount_minor;
        let original_stan = self.draft.original_stan;
        let supervisor = self.draft.supervisor.take();
        self.start(move |pos| {
            let result = pos.transact(Payment {
                kind,
                method,
                presentation,
                fallback,
                card: &mut card,
                pin_block,
                amount_minor,
                original_stan,
                original_batch: None,
                supervisor,
            });
            Work::Transaction(Box::new(result), card)
        });
    }

    /// Takes the worker's result when it is there.
    pub fn poll(&mut self) {
        self.poll_qr();
        let Some((receiver, _)) = &self.worker else {
            return;
        };
        let (pos, work) = match receiver.try_recv() {
            Ok(done) => done,
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => {
                self.worker = None;
                self.quit = true;
                return;
            }
        };
        self.worker = None;
        self.pos = Some(pos);
        match work {
            Work::SignOn(Ok(_)) => self.back_to_menu(),
            Work::SignOn(Err(error)) => {
                self.error = Some(error.to_string());
                self.screen = Screen::SignOn {
                    operator: String::new(),
                    password_digits: 0,
                    on_password: false,
                };
            }
            Work::Transaction(result, card) => {
                self.cards = load_cards(&self.config.cards_dir);
                drop(card);
                match *result {
                    Ok(result) => {
                        self.result = Some(result);
                        self.screen = Screen::Result;
                    }
                    Err(error) => {
                        self.notice = vec![error.to_string()];
                        self.screen = Screen::Notice;
                    }
                }
            }
            Work::SignOff(Ok(())) => {
                self.screen = Screen::SignOn {
                    operator: String::new(),
                    password_digits: 0,
                    on_password: false,
                };
            }
            Work::SignOff(Err(error)) => {
                self.notice = vec![error.to_string()];
                self.screen = Screen::Notice;
            }
            Work::Settlement(result) => {
                self.notice = match result {
                    Ok(settled) => settlement_lines(&settled, self.config.language),
                    Err(error) => vec![error.to_string()],
                };
                self.screen = Screen::Notice;
            }
        }
    }

    /// Whether the worker is done (tests wait on this).
    pub fn busy(&self) -> bool {
        self.worker.is_some() || self.qr_events.is_some()
    }

    /// Puts a result on screen as if it had just come back (tests).
    pub fn show_result(&mut self, result: TransactionResult) {
        self.result = Some(result);
        self.screen = Screen::Result;
    }

    /// Sets the draft as if the cashier and consumer had chosen (tests).
    pub fn choose(
        &mut self,
        kind: TransactionType,
        amount_minor: u64,
        method: Method,
        card: usize,
        pin_digits: usize,
    ) {
        self.draft.kind = Some(kind);
        self.draft.amount_minor = amount_minor;
        self.draft.method = Some(method);
        self.draft.card = Some(card);
        self.draft.presentation = Some(Presentation::Insert);
        self.draft.pin_digits = pin_digits;
        self.pin = Zeroizing::new("0".repeat(pin_digits));
    }

    /// Draws the screen at time `now` (the countdown reads it).
    pub fn draw(&self, frame: &mut Frame<'_>, now: Instant) {
        let area = frame.area();
        // A QR code needs more than the countertop display: the whole screen.
        let (width, height) = if self.screen == Screen::Qr {
            (area.width, area.height)
        } else {
            (SCREEN_WIDTH, SCREEN_HEIGHT)
        };
        let area = Rect {
            x: area.x + area.width.saturating_sub(width) / 2,
            y: area.y,
            width: area.width.min(width),
            height: area.height.min(height),
        };
        let w = self.words();
        let title = format!(" {} {} ", w.title, self.config.terminal_id);
        let block = Block::default().borders(Borders::ALL).title(title);
        let mut lines: Vec<Line<'_>> = self.lines(now);
        if let Some(error) = &self.error {
            lines.push(Line::from(""));
            lines.push(Line::styled(
                error.clone(),
                Style::default().add_modifier(Modifier::BOLD),
            ));
        }
        let scroll = match self.screen {
            Screen::Receipt { scroll } => scroll,
            _ => 0,
        };
        let paragraph = Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0));
        frame.render_widget(paragraph, area);
    }

    fn lines(&self, now: Instant) -> Vec<Line<'_>> {
        let w = self.words();
        let bold = |text: String| Line::styled(text, Style::default().add_modifier(Modifier::BOLD));
        let currency = self.config.currency.clone();
        match &self.screen {
            Screen::SignOn {
                operator,
                password_digits,
                on_password,
            } => vec![
                bold(self.config.merchant_display_name().to_owned()),
                Line::from(""),
                Line::from(format!(
                    "{} {operator}{}",
                    w.operator,
                    if *on_password { "" } else { "_" }
                )),
                Line::from(format!(
                    "{} {}{}",
                    w.password,
                    "*".repeat(*password_digits),
                    if *on_password { "_" } else { "" }
                )),
                Line::from(""),
                Line::from(w.sign_on_keys),
            ],
            Screen::Menu => {
                let mut lines = vec![
                    bold(self.config.merchant_display_name().to_owned()),
                    Line::from(""),
                ];
                lines.extend(w.menu.iter().map(|item| Line::from(*item)));
                lines.push(Line::from(""));
                lines.push(Line::from(w.choose));
                lines
            }
            Screen::Amount => vec![
                bold(
                    transaction_name(
                        self.draft.kind.unwrap_or(TransactionType::Sale),
                        self.config.language,
                    )
                    .to_owned(),
                ),
                Line::from(""),
                Line::from(w.enter_amount),
                bold(money_text(self.input.parse().unwrap_or(0), &currency)),
            ],
            Screen::Method => {
                let mut lines = vec![
                    bold(w.step1.to_owned()),
                    Line::from(""),
                    Line::from(w.debit),
                    Line::from(w.credit),
                ];
                if self.offers_qr() {
                    lines.push(Line::from(w.qr));
                }
                lines
            }
            Screen::Qr => {
                let mut lines = vec![bold(format!(
                    "{}: {}",
                    w.qr_scan,
                    money_text(self.draft.amount_minor, &currency)
                ))];
                match &self.qr_order {
                    Some(order) => {
                        lines.push(Line::from(order.order_id.clone()));
                        lines.extend(qr_text(&order.payload).into_iter().map(Line::from));
                        lines.push(Line::from(w.qr_waiting));
                    }
                    None => lines.push(Line::from(w.qr_creating)),
                }
                lines
            }
            Screen::Card => {
                let mut lines = vec![bold(w.step2_card.to_owned()), Line::from("")];
                if self.cards.is_empty() {
                    lines.push(Line::from(w.no_cards));
                }
                for (index, card) in self.cards.iter().enumerate() {
                    lines.push(Line::from(format!(
                        "{} {} {}",
                        index + 1,
                        card.data.masked_pan(),
                        card.data.product.name()
                    )));
                }
                lines
            }
            Screen::Present => {
                let mut lines = vec![bold(w.step2_present.to_owned()), Line::from("")];
                if let Some(card) = self.draft.card.and_then(|index| self.cards.get(index)) {
                    lines.push(Line::from(card.data.masked_pan()));
                    lines.push(Line::from(""));
                }
                lines.extend([Line::from(w.insert), Line::from(w.swipe), Line::from(w.tap)]);
                if self.config.allow_fallback {
                    lines.push(Line::from(w.fallback));
                }
                lines
            }
            Screen::PinPad => vec![
                bold(w.step3.to_owned()),
                Line::from(""),
                Line::from(money_text(self.draft.amount_minor, &currency)),
                Line::from(""),
                bold(format!("[{:<12}]", "*".repeat(self.draft.pin_digits))),
                Line::from(""),
                Line::from(w.pin_hint),
            ],
            Screen::Confirm => {
                let kind = self.draft.kind.unwrap_or(TransactionType::Sale);
                let mut lines = vec![
                    bold(w.step4.to_owned()),
                    Line::from(""),
                    Line::from(transaction_name(kind, self.config.language)),
                ];
                if let Some(stan) = self.draft.original_stan {
                    lines.push(Line::from(format!("{} {stan:06}", w.trace)));
                }
                if kind.has_amount() {
                    lines.push(Line::from(w.amount));
                    lines.push(bold(format!(
                        "  {}",
                        money_text(self.draft.amount_minor, &currency)
                    )));
                }
                lines.push(Line::from(w.merchant));
                lines.push(Line::from(format!(
                    "  {}",
                    self.config.merchant_display_name()
                )));
                lines.push(Line::from(""));
                lines.push(Line::from(w.confirm_keys));
                lines
            }
            Screen::Sending => {
                let started = self.worker.as_ref().map_or(now, |(_, started)| *started);
                let left = self
                    .config
                    .timeout()
                    .saturating_sub(now.saturating_duration_since(started));
                vec![
                    bold(w.step5.to_owned()),
                    Line::from(""),
                    Line::from(w.waiting),
                    Line::from(""),
                    bold(format!("{} {}", left.as_secs(), w.seconds_left)),
                ]
            }
            Screen::Result => self.result_lines(),
            Screen::Receipt { .. } => match &self.result {
                Some(result) => result
                    .receipt
                    .lines(Copy::Cardholder, false, self.config.language)
                    .into_iter()
                    .map(Line::from)
                    .collect(),
                None => Vec::new(),
            },
            Screen::SupervisorNumber => vec![
                bold(
                    transaction_name(
                        self.draft.kind.unwrap_or(TransactionType::Void),
                        self.config.language,
                    )
                    .to_owned(),
                ),
                Line::from(""),
                Line::from(format!("{} {}_", w.supervisor_no, self.input)),
            ],
            Screen::Supervisor { digits } => vec![
                bold(
                    transaction_name(
                        self.draft.kind.unwrap_or(TransactionType::Void),
                        self.config.language,
                    )
                    .to_owned(),
                ),
                Line::from(""),
                Line::from(format!("{} {}_", w.supervisor, "*".repeat(*digits))),
            ],
            Screen::Trace => vec![
                bold(
                    transaction_name(
                        self.draft.kind.unwrap_or(TransactionType::Void),
                        self.config.language,
                    )
                    .to_owned(),
                ),
                Line::from(""),
                Line::from(format!("{} {}_", w.trace, self.input)),
            ],
            Screen::Notice => {
                let mut lines: Vec<Line<'_>> =
                    self.notice.iter().cloned().map(Line::from).collect();
                lines.push(Line::from(""));
                lines.push(Line::from(w.back_keys));
                lines
            }
        }
    }

    fn result_lines(&self) -> Vec<Line<'_>> {
        let w = self.words();
        let bold = |text: String| Line::styled(text, Style::default().add_modifier(Modifier::BOLD));
        let Some(result) = &self.result else {
            return Vec::new();
        };
        let headline = if result.approved {
            w.approved
        } else if result.response_code.is_some() && result.reversal.is_none() {
            w.declined
        } else {
            w.not_completed
        };
        let mut lines = vec![bold(headline.to_owned()), Line::from("")];
        lines.push(Line::from(match self.config.language {
            Language::Chinese => chinese_words(result),
            Language::English => result.message.clone(),
        }));
        if let Some(code) = &result.response_code {
            lines.push(Line::from(format!("({code})")));
        }
        if let Some(balance) = &result.receipt.balance {
            lines.push(bold(format!(
                "{} {} {balance}",
                w.balance, result.receipt.currency
            )));
        } else if result.approved {
            lines.push(bold(money_text(
                result.receipt.amount_minor,
                &result.receipt.currency,
            )));
        }
        match result.reversal {
            Some(crate::pos::ReversalStatus::Acknowledged) => lines.push(Line::from(w.reversed)),
            Some(crate::pos::ReversalStatus::Pending) => lines.push(Line::from(w.reversal_pending)),
            None => {}
        }
        lines.push(Line::from(""));
        lines.push(Line::from(
            if result.approved && result.receipt.balance.is_none() {
                w.receipt_keys
            } else {
                w.back_keys
            },
        ));
        lines
    }
}

/// The result in plain Chinese words, by response code (the engine's words are English).
fn chinese_words(result: &TransactionResult) -> String {
    let Some(code) = result.response_code.as_deref() else {
        return "银行无应答,交易已冲正".to_owned();
    };
    if result.approved {
        return "交易成功".to_owned();
    }
    let words = match code {
        "00" => "卡片拒绝了发卡行的认证,交易已冲正",
        "55" => "密码错误,请持卡人重新输入",
        "75" => "密码错误次数超限",
        "51" => "余额不足",
        "54" => "卡片已过期",
        "41" | "43" | "62" => "此卡不能使用,请联系发卡行",
        "61" => "超出当日限额",
        "05" => "发卡行拒绝交易",
        "13" => "金额不正确",
        "25" => "找不到原交易",
        "58" => "终端无权进行此交易,请重新签到",
        "91" => "发卡行无法连接,请稍后再试",
        "96" => "系统故障,请重试",
        "A0" => "安全校验失败,请重新签到",
        _ => "交易失败",
    };
    words.to_owned()
}

/// The open batch, one line per message: trace, type, amount, result.
fn batch_lines(pos: &Pos, language: Language) -> Vec<String> {
    let state = pos.state();
    let mut lines = vec![match language {
        Language::English => format!("BATCH {:06}", state.batch),
        Language::Chinese => format!("批次 {:06}", state.batch),
    }];
    for entry in &state.transactions {
        lines.push(format!(
            "{:06} {} {} {}",
            entry.stan,
            transaction_name(entry.kind, language),
            money_text(entry.amount_minor, &entry.currency),
            if entry.reversed {
                "R"
            } else {
                entry.response_code.as_str()
            }
        ));
    }
    lines
}

fn settlement_lines(settled: &SettlementResult, language: Language) -> Vec<String> {
    let amount = |minor| money_text(minor, &settled.currency);
    let (title, debits, credits, verdict) = match language {
        Language::English => (
            "SETTLEMENT",
            "Debits",
            "Credits",
            match (settled.agreed, settled.closed) {
                (true, _) => "Totals agree: batch closed".to_owned(),
                (false, true) => format!("Disagreed: {} uploaded, batch closed", settled.uploaded),
                (false, false) => "TOTALS DISAGREE: batch still open".to_owned(),
            },
        ),
        Language::Chinese => (
            "结算",
            "借记",
            "贷记",
            match (settled.agreed, settled.closed) {
                (true, _) => "对账平: 批次已结".to_owned(),
                (false, true) => format!("对账不平: 批上送 {} 笔, 批次已结", settled.uploaded),
                (false, false) => "对账不平: 批次未结".to_owned(),
            },
        ),
    };
    vec![
        format!("{title} {:06}", settled.batch),
        format!(
            "{debits} {} {}",
            settled.debit_count,
            amount(settled.debit_minor)
        ),
        format!(
            "{credits} {} {}",
            settled.credit_count,
            amount(settled.credit_minor)
        ),
        verdict,
    ]
}

/// The card files of `dir`, sorted by name, at most [`MAX_CARDS`]; unreadable ones are left
/// out.
fn load_cards(dir: &std::path::Path) -> Vec<CardFile> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|path| CardFile::open(path).ok())
        .take(MAX_CARDS)
        .collect()
}

/// Maps a crossterm key to the screen's keys.
fn map_key(event: ratatui::crossterm::event::KeyEvent) -> Option<Key> {
    use ratatui::crossterm::event::KeyCode;
    match event.code {
        KeyCode::Char(c) if c.is_ascii_digit() => Some(Key::Digit(c as u8 - b'0')),
        KeyCode::Enter => Some(Key::Enter),
        KeyCode::Backspace => Some(Key::Backspace),
        KeyCode::Esc => Some(Key::Escape),
        KeyCode::Up => Some(Key::Up),
        KeyCode::Down => Some(Key::Down),
        _ => None,
    }
}

/// `payload` as a QR code in Unicode half blocks (two modules per character row), dark modules
/// light on the screen's dark background, with the quiet zone.
pub fn qr_text(payload: &str) -> Vec<String> {
    match qrcode::QrCode::new(payload.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .build()
            .lines()
            .map(str::to_owned)
            .collect(),
        Err(_) => vec![payload.to_owned()],
    }
}

/// The event loop on the real terminal: raw mode, the alternate screen, redrawn every 100 ms
/// (the countdown) and on every key, until the cashier leaves from the sign-on screen.
pub fn run(
    config: TerminalConfig,
    key: crate::pos::TerminalKey,
    qr: Option<Arc<dyn QrPayments>>,
) -> Result<(), PosError> {
    use ratatui::crossterm::event::{self, Event, KeyEventKind};
    let pos = Pos::open_with(config, key)?;
    let mut app = App::new(pos);
    if let Some(qr) = qr {
        app = app.with_qr(qr);
    }
    let mut terminal = ratatui::try_init()
        .map_err(|error| PosError::Refused(format!("cannot open the screen: {error}")))?;
    let outcome = loop {
        let now = Instant::now();
        if let Err(error) = terminal.draw(|frame| app.draw(frame, now)) {
            break Err(error);
        }
        match event::poll(Duration::from_millis(100)) {
            Ok(true) => match event::read() {
                Ok(Event::Key(key)) if key.kind == KeyEventKind::Press => {
                    if let Some(key) = map_key(key) {
                        app.key(key);
                    }
                }
                Ok(_) => {}
                Err(error) => break Err(error),
            },
            Ok(false) => {}
            Err(error) => break Err(error),
        }
        app.poll();
        if app.quit {
            break Ok(());
        }
    };
    ratatui::restore();
    outcome.map_err(|error| PosError::Refused(format!("the screen failed: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transactions::Reconciliation;

    fn settled(agreed: bool, closed: bool, uploaded: usize) -> SettlementResult {
        SettlementResult {
            agreed,
            closed,
            reconciliation: match (agreed, closed) {
                (true, _) => Reconciliation::Agreed,
                (false, true) => Reconciliation::Resolved,
                (false, false) => Reconciliation::Disagreed,
            },
            uploaded,
            batch: 3,
            debit_count: 2,
            debit_minor: 1_700,
            credit_count: 0,
            credit_minor: 0,
            currency: "CNY".into(),
        }
    }

    #[test]
    fn the_settlement_screen_says_whether_the_upload_closed_the_batch() {
        let last = |result: &SettlementResult, language| {
            settlement_lines(result, language)
                .last()
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(
            last(&settled(true, true, 0), Language::English),
            "Totals agree: batch closed"
        );
        assert_eq!(
            last(&settled(false, true, 2), Language::English),
            "Disagreed: 2 uploaded, batch closed"
        );
        assert_eq!(
            last(&settled(false, false, 2), Language::English),
            "TOTALS DISAGREE: batch still open"
        );
        assert_eq!(
            last(&settled(false, true, 2), Language::Chinese),
            "对账不平: 批上送 2 笔, 批次已结"
        );
    }
}
