//! `easypos terminal pay --method qr`: the merchant-presented QR payment at the terminal. The
//! terminal asks the host's wallet API (docs/wallet.md) for an order and its dynamic EMVCo
//! code, shows the code, and queries the order every 3 s until it is paid or closed. The
//! order's id is the terminal's, so a retried request finds the same order.
//!
//! Every request is signed with the terminal's MAC key ([`Signer`], docs/wallet.md "Terminal
//! authentication"): the sign-on's MAC key (master/session) or a fresh AES DUKPT request key.

use anyhow::Context;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};
use terminal::config::TerminalConfig;
use wallet::http::{ErrorView, OrderView};

/// How often the terminal asks whether the order is paid (issue 8: every 3 s).
pub const POLL_INTERVAL: Duration = Duration::from_secs(3);
/// How long the terminal keeps asking after the order's time ran out, before it gives up
/// with exit code 3 (outcome unknown): the host closes orders within a second of their end.
const GIVE_UP_AFTER_EXPIRY: Duration = Duration::from_secs(30);
/// Bounds of one HTTP exchange with the host.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

/// The options of a QR payment.
#[derive(Debug, Clone, clap::Args)]
pub struct QrArgs {
    /// The host's HTTP address, as `easypos up` prints it (QR payments only).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub wallet_url: String,
    /// The order id (1 to 25 letters, digits or '-'); by default the terminal id and the time
    /// in milliseconds. Give the same id to retry the same order (QR payments only).
    #[arg(long, value_name = "ID")]
    pub order_id: Option<String>,
    /// How long the consumer has to pay, 10 to 900 seconds (QR payments only).
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub order_timeout: i64,
    /// The consumer's payment code (21 digits, spaces allowed) scanned or typed at the
    /// counter: the terminal charges it instead of showing a code. `-` reads it from standard
    /// input (a scanner in keyboard mode, or a pipe).
    #[arg(long, value_name = "DIGITS")]
    pub code: Option<String>,
    /// With --code: how long to ask for a charge whose answer was lost before cancelling it,
    /// 3 to 300 seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub charge_wait: u64,
}

/// How many times a cancel is sent before the terminal gives up on it.
const CANCEL_TRIES: u32 = 3;

/// What the command ends with: the exit code and the JSON object to print.
pub struct Outcome {
    pub code: u8,
    pub json: serde_json::Value,
    pub text: String,
}

/// An HTTP answer: status and body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

enum Failure {
    /// Nothing usable came back (connection, timeout, garbage): exit 3.
    NoAnswer(anyhow::Error),
    /// The host refused the request: exit 2 (bad request) or 1.
    Refused(ErrorView),
}

fn host_port(url: &str) -> anyhow::Result<&str> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url:?} must start with http:// (--wallet-url, --url)"))?;
    Ok(rest.trim_end_matches('/'))
}

/// One HTTP/1.1 exchange with `Connection: close`, bounded in time and size.
pub(crate) fn exchange(
    url: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> anyhow::Result<Answer> {
    exchange_with(url, method, path, body, &[])
}

/// [`exchange`] with extra header lines.
fn exchange_with(
    url: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, String)],
) -> anyhow::Result<Answer> {
    let address = host_port(url)?;
    let socket = address
        .parse::<std::net::SocketAddr>()
        .or_else(|_| {
            std::net::ToSocketAddrs::to_socket_addrs(address)
                .ok()
                .and_then(|mut all| all.next())
                .ok_or(())
        })
        .map_err(|_| anyhow::anyhow!("cannot resolve {address}"))?;
    let mut stream = TcpStream::connect_timeout(&socket, HTTP_TIMEOUT)
        .with_context(|| format!("cannot reach the host at {url}"))?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    let body = body.unwrap_or("");
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut response)
        .context("reading the host's answer")?;
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .context("the host's answer has no header end")?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .context("the host's answer has no status")?;
    Ok(Answer {
        status,
        body: response[split + 4..].to_vec(),
    })
}

/// The terminal's signature on its wallet requests: its own MAC key, as for its ISO 8583
/// messages (docs/wallet.md "Terminal authentication").
pub(crate) struct Signer {
    keys: SignerKeys,
    terminal_id: String,
}

enum SignerKeys {
    /// `pay --method qr`: the terminal itself, which signs on first if it has not; AES DUKPT
    /// terminals take a new KSN counter for each request, as for each message.
    Pos(Box<terminal::pos::Pos>),
    /// The screen (`terminal tui`), which holds the terminal's state directory itself: the
    /// MAC key of its current sign-on, read from its saved state for each request
    /// (master/session terminals only: a DUKPT counter is the screen's to take).
    Screen {
        tmk: paycrypto::TdesKey,
        state_file: std::path::PathBuf,
    },
}

impl Signer {
    /// The terminal of `config_path`, signed on.
    pub(crate) fn open(config_path: &Path) -> anyhow::Result<Signer> {
        let (config, key) = crate::terminal_cmd::load(config_path)?;
        let terminal_id = config.terminal_id.trim().to_owned();
        let pos = terminal::pos::Pos::open_with(config, key)?;
        let mut signer = Signer {
            keys: SignerKeys::Pos(Box::new(pos)),
            terminal_id,
        };
        signer.sign_on_unless_signed_on()?;
        Ok(signer)
    }

    /// The screen's signer for the terminal of `config_path` (see [`SignerKeys::Screen`]).
    fn screen(config_path: &Path) -> anyhow::Result<Signer> {
        let (config, key) = crate::terminal_cmd::load(config_path)?;
        let terminal::pos::TerminalKey::Master(tmk) = key else {
            anyhow::bail!(
                "QR payments on the screen need a master/session terminal; a DUKPT terminal pays by QR with `easypos terminal pay --method qr`"
            );
        };
        Ok(Signer {
            keys: SignerKeys::Screen {
                tmk,
                state_file: config.state_dir.join("state.json"),
            },
            terminal_id: config.terminal_id.trim().to_owned(),
        })
    }

    fn sign_on_unless_signed_on(&mut self) -> anyhow::Result<()> {
        if let SignerKeys::Pos(pos) = &self.keys
            && !pos.is_signed_on()
        {
            self.sign_on()?;
        }
        Ok(())
    }

    fn sign_on(&mut self) -> anyhow::Result<()> {
        match &mut self.keys {
            SignerKeys::Pos(pos) => {
                let operator = pos.operator().to_owned();
                pos.sign_on(&operator).context(
                    "the terminal signs its QR requests with the keys of a sign-on, and the sign-on failed",
                )?;
                Ok(())
            }
            SignerKeys::Screen { .. } => {
                anyhow::bail!("the host does not know this terminal's keys: sign on again")
            }
        }
    }

    /// The headers that sign `method path` with `body`: terminal, time, a new nonce, the KSN
    /// (DUKPT) and the MAC.
    fn headers(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> anyhow::Result<Vec<(&'static str, String)>> {
        use wallet::terminal_auth as auth;
        let terminal_id = self.terminal_id.clone();
        let timestamp = i64::try_from(unix_millis() / 1000).unwrap_or(i64::MAX);
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let text = |ksn: Option<&str>| {
            auth::canonical(&auth::Signed {
                method,
                path: path.split('?').next().unwrap_or(path),
                terminal_id: &terminal_id,
                timestamp,
                nonce: &nonce,
                ksn,
                body,
            })
            .into_bytes()
        };
        let (ksn, mac) = match &mut self.keys {
            SignerKeys::Pos(pos) => {
                let mac = pos.request_mac(text)?;
                (mac.ksn, mac.mac)
            }
            SignerKeys::Screen { tmk, state_file } => {
                let state: terminal::state::TerminalState = serde_json::from_slice(
                    &std::fs::read(&*state_file)
                        .with_context(|| format!("cannot read {}", state_file.display()))?,
                )
                .with_context(|| format!("{} is damaged", state_file.display()))?;
                let session = state
                    .session
                    .context("the terminal is not signed on: sign on first")?;
                let field62 = hex::decode(&session.field62_under_tmk)
                    .context("the saved sign-on is damaged: sign on again")?;
                let keys = terminal::WorkingKeys::from_field62(tmk, &field62)?;
                (None, keys.mac(&text(None)))
            }
        };
        let mut headers = vec![
            (auth::HEADER_TERMINAL, terminal_id),
            (auth::HEADER_TIMESTAMP, timestamp.to_string()),
            (auth::HEADER_NONCE, nonce),
        ];
        if let Some(ksn) = ksn {
            headers.push((auth::HEADER_KSN, ksn));
        }
        headers.push((auth::HEADER_MAC, hex::encode_upper(mac)));
        Ok(headers)
    }
}

/// Error codes after which the terminal signs on again and sends once more: the host no
/// longer holds the keys the terminal signed with.
const SIGN_ON_AGAIN: [&str; 2] = ["terminal_not_signed_on", "bad_mac"];

fn call(
    signer: &mut Signer,
    url: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<OrderView, Failure> {
    let body = body.map(serde_json::Value::to_string);
    let mut signed_on_again = false;
    let answer = loop {
        let headers = signer
            .headers(method, path, body.as_deref().unwrap_or("").as_bytes())
            .map_err(Failure::NoAnswer)?;
        let answer = exchange_with(url, method, path, body.as_deref(), &headers)
            .map_err(Failure::NoAnswer)?;
        let refused_signature = answer.status == 401
            && serde_json::from_slice::<ErrorView>(&answer.body)
                .is_ok_and(|error| SIGN_ON_AGAIN.contains(&error.error.as_str()));
        if !refused_signature || signed_on_again {
            break answer;
        }
        signed_on_again = true;
        signer.sign_on().map_err(Failure::NoAnswer)?;
    };
    if answer.status == 200 {
        return serde_json::from_slice(&answer.body)
            .map_err(|error| Failure::NoAnswer(anyhow::anyhow!("a malformed order: {error}")));
    }
    match serde_json::from_slice::<ErrorView>(&answer.body) {
        Ok(error) if answer.status < 500 => Err(Failure::Refused(error)),
        _ => Err(Failure::NoAnswer(anyhow::anyhow!(
            "the host answered HTTP {}",
            answer.status
        ))),
    }
}

fn unix_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis())
}

/// Runs a QR payment; `show` receives the code to display while the terminal waits.
pub fn pay(
    config_path: &Path,
    amount: &str,
    args: &QrArgs,
    mut show: impl FnMut(&str),
) -> anyhow::Result<Outcome> {
    let config = TerminalConfig::load(config_path)
        .with_context(|| format!("cannot load {}", config_path.display()))?;
    let currency = config
        .currency()
        .map_err(|reason| anyhow::anyhow!(reason))?;
    let amount = money::Amount::parse(amount, currency)
        .ok()
        .filter(|amount| amount.minor() > 0)
        .with_context(|| {
            format!(
                "--amount {amount:?} is not an amount above zero in {}",
                currency.alpha()
            )
        })?;
    let terminal_id = config.terminal_id.trim().to_owned();
    let order_id = args
        .order_id
        .clone()
        .unwrap_or_else(|| format!("{terminal_id}-{}", unix_millis()));
    let request = serde_json::json!({
        "order_id": order_id,
        "terminal_id": terminal_id,
        "amount": amount.format_major(),
        "currency": currency.alpha(),
        "timeout_seconds": args.order_timeout,
    });
    // Cancels that got no answer before go first, so no charge the terminal gave up on
    // stays one-sided.
    let pending = config.state_dir.join(PENDING_CANCELS);
    let mut signer = Signer::open(config_path)?;
    send_pending_cancels(&mut signer, &args.wallet_url, &pending);
    if let Some(code) = &args.code {
        return charge(
            &mut signer,
            args,
            &pending,
            &terminal_id,
            &order_id,
            amount,
            code,
        );
    }
    let started = Instant::now();
    let created = match call(
        &mut signer,
        &args.wallet_url,
        "POST",
        "/wallet/v1/orders",
        Some(&request),
    ) {
        Ok(order) => order,
        Err(Failure::NoAnswer(error)) => return Ok(no_answer(&order_id, error)),
        Err(Failure::Refused(refusal)) => {
            anyhow::bail!("the host refused the order: {}", refusal.message)
        }
    };
    let qr_text = wallet::qr::render_text(&created.payload).unwrap_or_default();
    show(&format!(
        "Scan to pay {} {} with Panda Pay (order {})\n{qr_text}\n{}\nOr open on the phone: {}\n",
        created.amount,
        created.currency,
        created.order_id,
        created.payload,
        wallet::qr::deep_link(&args.wallet_url, &created.payload)
    ));
    let timeout = Duration::from_secs(u64::try_from(args.order_timeout).unwrap_or(0));
    let give_up = started + timeout + GIVE_UP_AFTER_EXPIRY;
    let path = format!("/wallet/v1/orders/{}", created.order_id);
    let mut last_error = None;
    loop {
        std::thread::sleep(POLL_INTERVAL);
        match call(&mut signer, &args.wallet_url, "GET", &path, None) {
            Ok(order) if order.status == "paid" => return Ok(finished(order, true)),
            Ok(order) if order.status != "created" => return Ok(finished(order, false)),
            Ok(_) => {}
            Err(Failure::NoAnswer(error)) => last_error = Some(error),
            Err(Failure::Refused(refusal)) => {
                last_error = Some(anyhow::anyhow!(refusal.message));
            }
        }
        if Instant::now() >= give_up {
            let error = last_error.unwrap_or_else(|| anyhow::anyhow!("the order never closed"));
            return Ok(no_answer(&created.order_id, error));
        }
    }
}

/// The consumer's code from `--code`, or from standard input for `-`; spaces dropped.
fn read_code(code: &str) -> anyhow::Result<String> {
    let text = if code == "-" {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the payment code from standard input")?;
        line
    } else {
        code.to_owned()
    };
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    anyhow::ensure!(
        !digits.is_empty(),
        "no payment code: scan or type the 21 digits on the consumer's phone"
    );
    Ok(digits)
}

/// The consumer-presented payment: charge the code; if the answer is lost, ask for the order
/// every 3 s for `--charge-wait` seconds, then cancel it, so that no charge the terminal did
/// not see survives (the cancel reverses it).
fn charge(
    signer: &mut Signer,
    args: &QrArgs,
    pending: &Path,
    terminal_id: &str,
    order_id: &str,
    amount: money::Amount,
    code: &str,
) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        (3..=300).contains(&args.charge_wait),
        "--charge-wait {} is not between 3 and 300 seconds",
        args.charge_wait
    );
    let code = read_code(code)?;
    let request = serde_json::json!({
        "charge_id": order_id,
        "terminal_id": terminal_id,
        "amount": amount.format_major(),
        "currency": amount.currency().alpha(),
        "code": code,
    });
    let started = Instant::now();
    match call(
        signer,
        &args.wallet_url,
        "POST",
        "/wallet/v1/charges",
        Some(&request),
    ) {
        Ok(order) => return Ok(finished(order, true)),
        Err(Failure::Refused(refusal)) => return Ok(refused(order_id, &refusal)),
        Err(Failure::NoAnswer(error)) => {
            tracing::warn!(order = %order_id, error = %format!("{error:#}"), "the charge got no answer; asking for the order");
        }
    }
    let path = format!("/wallet/v1/orders/{order_id}");
    let deadline = started + Duration::from_secs(args.charge_wait);
    while Instant::now() < deadline {
        std::thread::sleep(POLL_INTERVAL.min(deadline.saturating_duration_since(Instant::now())));
        match call(signer, &args.wallet_url, "GET", &path, None) {
            Ok(order) if order.status == "paid" => return Ok(finished(order, true)),
            Ok(order) if order.status != "created" => return Ok(finished(order, false)),
            // Still open, not there yet (the charge may be on its way), or no answer.
            Ok(_) | Err(_) => {}
        }
    }
    let cancel = serde_json::json!({
        "terminal_id": terminal_id,
        "amount": amount.format_major(),
        "currency": amount.currency().alpha(),
    });
    let cancel_path = format!("/wallet/v1/orders/{order_id}/cancel");
    let mut last_error = anyhow::anyhow!("no answer");
    for _ in 0..CANCEL_TRIES {
        match call(
            signer,
            &args.wallet_url,
            "POST",
            &cancel_path,
            Some(&cancel),
        ) {
            Ok(order) => {
                let mut outcome = finished(order, false);
                outcome.text = format!(
                    "Charge {order_id}: no answer in {} s, cancelled ({}); nothing was charged.\n",
                    args.charge_wait,
                    outcome.json["status"].as_str().unwrap_or("closed")
                );
                return Ok(outcome);
            }
            Err(Failure::Refused(refusal)) => last_error = anyhow::anyhow!(refusal.message),
            Err(Failure::NoAnswer(error)) => last_error = error,
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    let kept = keep_pending_cancel(
        pending,
        PendingCancel {
            order_id: order_id.to_owned(),
            cancel,
        },
    );
    let message = match kept {
        Ok(()) => format!(
            "charge {order_id}: no answer, and the cancel got none either ({last_error:#}); the cancel is kept and sent before the next QR payment of this terminal"
        ),
        Err(error) => format!(
            "charge {order_id}: no answer, and the cancel got none either ({last_error:#}); keeping it failed ({error:#}): cancel it as soon as the host answers: POST /wallet/v1/orders/{order_id}/cancel (docs/wallet.md)"
        ),
    };
    Ok(Outcome {
        code: crate::terminal_cmd::EXIT_NO_ANSWER,
        json: serde_json::json!({
            "approved": false,
            "status": null,
            "order_id": order_id,
            "error": message,
            "exit_code": crate::terminal_cmd::EXIT_NO_ANSWER,
        }),
        text: message,
    })
}

/// Cancels that got no answer, kept in the terminal's state directory until the host takes
/// them (the QR counterpart of the card reversal kept for store-and-forward).
const PENDING_CANCELS: &str = "qr-pending-cancels.json";

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct PendingCancel {
    order_id: String,
    /// The cancel's body, as sent.
    cancel: serde_json::Value,
}

fn load_pending(path: &Path) -> Vec<PendingCancel> {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Writes the list whole (a temporary file renamed over the old one), or removes it when
/// empty.
fn store_pending(path: &Path, pending: &[PendingCancel]) -> anyhow::Result<()> {
    if pending.is_empty() {
        match std::fs::remove_file(path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error.into()),
            _ => return Ok(()),
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, serde_json::to_vec_pretty(pending)?)?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

fn keep_pending_cancel(path: &Path, cancel: PendingCancel) -> anyhow::Result<()> {
    let mut pending = load_pending(path);
    pending.retain(|kept| kept.order_id != cancel.order_id);
    pending.push(cancel);
    store_pending(path, &pending)
}

/// Sends every kept cancel once; those the host took (or refused for good) are dropped.
fn send_pending_cancels(signer: &mut Signer, url: &str, path: &Path) {
    let pending = load_pending(path);
    if pending.is_empty() {
        return;
    }
    let mut left = Vec::new();
    for cancel in pending {
        let cancel_path = format!("/wallet/v1/orders/{}/cancel", cancel.order_id);
        match call(signer, url, "POST", &cancel_path, Some(&cancel.cancel)) {
            Ok(order) => {
                tracing::info!(order = %order.order_id, status = %order.status, "a kept cancel was taken");
            }
            Err(Failure::Refused(refusal)) => {
                tracing::warn!(order = %cancel.order_id, error = %refusal.error, "a kept cancel was refused");
            }
            Err(Failure::NoAnswer(_)) => left.push(cancel),
        }
    }
    if let Err(error) = store_pending(path, &left) {
        tracing::warn!(error = %format!("{error:#}"), "cannot keep the pending cancels");
    }
}

/// The host refused a charge (a used or expired code, another wallet's code, not enough
/// money): declined, nothing charged.
fn refused(order_id: &str, refusal: &ErrorView) -> Outcome {
    let text = format!(
        "Charge {order_id} refused ({}): {}. Nothing was charged.\n",
        refusal.error, refusal.message
    );
    Outcome {
        code: crate::terminal_cmd::EXIT_DECLINED,
        json: serde_json::json!({
            "approved": false,
            "status": "refused",
            "order_id": order_id,
            "error": refusal.error,
            "message": refusal.message,
            "exit_code": crate::terminal_cmd::EXIT_DECLINED,
        }),
        text,
    }
}

fn no_answer(order_id: &str, error: anyhow::Error) -> Outcome {
    let message = format!(
        "no usable answer for order {order_id}: {error:#}; query it later (GET /wallet/v1/orders/{order_id}) — an unpaid order closes by itself"
    );
    Outcome {
        code: crate::terminal_cmd::EXIT_NO_ANSWER,
        json: serde_json::json!({
            "approved": false,
            "status": null,
            "order_id": order_id,
            "error": message,
            "exit_code": crate::terminal_cmd::EXIT_NO_ANSWER,
        }),
        text: message,
    }
}

fn finished(order: OrderView, approved: bool) -> Outcome {
    let code = if approved {
        crate::terminal_cmd::EXIT_APPROVED
    } else {
        crate::terminal_cmd::EXIT_DECLINED
    };
    let text = if approved {
        receipt(&order)
    } else {
        format!(
            "Order {} {}: not paid, nothing was charged.\n",
            order.order_id, order.status
        )
    };
    Outcome {
        code,
        json: serde_json::json!({
            "approved": approved,
            "status": order.status,
            "order_id": order.order_id,
            "terminal_id": order.terminal_id,
            "merchant_id": order.merchant_id,
            "merchant_name": order.merchant_name,
            "amount": order.amount,
            "amount_minor": order.amount_minor,
            "currency": order.currency,
            "wallet_id": order.wallet_id,
            "payload": order.payload,
            "exit_code": code,
            "receipt_text": if approved { Some(text.clone()) } else { None },
        }),
        text,
    }
}

/// The QR payment's voucher, 32 columns like the card receipts.
fn receipt(order: &OrderView) -> String {
    format!(
        "      QR PAYMENT VOUCHER\n{}\nMID {}\nTID {}\nORDER {}\nPAID BY  Panda Pay wallet\nAMOUNT   {} {}\n",
        order.merchant_name,
        order.merchant_id,
        order.terminal_id,
        order.order_id,
        order.currency,
        order.amount
    )
}

/// The screen's wallet client (`easypos terminal tui`): the same orders and queries as
/// `pay --method qr`, for `terminal::tui` to draw and wait on.
pub struct ScreenQr {
    pub wallet_url: String,
    /// The terminal's configuration, whose keys sign the requests (the sign-on the screen
    /// saved last, read for each request).
    pub config_path: std::path::PathBuf,
    pub terminal_id: String,
    pub currency: money::Currency,
    pub order_timeout_seconds: i64,
}

impl terminal::tui::QrPayments for ScreenQr {
    fn create(&self, amount_minor: u64) -> Result<terminal::tui::QrOrder, String> {
        let amount = money::Amount::new(
            i64::try_from(amount_minor).map_err(|_| "the amount is too large".to_owned())?,
            self.currency,
        );
        let order_id = format!("{}-{}", self.terminal_id, unix_millis());
        let request = serde_json::json!({
            "order_id": order_id,
            "terminal_id": self.terminal_id,
            "amount": amount.format_major(),
            "currency": self.currency.alpha(),
            "timeout_seconds": self.order_timeout_seconds,
        });
        let mut signer = Signer::screen(&self.config_path).map_err(|error| format!("{error:#}"))?;
        match call(
            &mut signer,
            &self.wallet_url,
            "POST",
            "/wallet/v1/orders",
            Some(&request),
        ) {
            Ok(order) => Ok(terminal::tui::QrOrder {
                order_id: order.order_id,
                payload: order.payload,
            }),
            Err(Failure::Refused(refusal)) => Err(refusal.message),
            Err(Failure::NoAnswer(error)) => Err(format!("{error:#}")),
        }
    }

    fn status(&self, order_id: &str) -> Result<String, String> {
        let mut signer = Signer::screen(&self.config_path).map_err(|error| format!("{error:#}"))?;
        match call(
            &mut signer,
            &self.wallet_url,
            "GET",
            &format!("/wallet/v1/orders/{order_id}"),
            None,
        ) {
            Ok(order) => Ok(order.status),
            Err(Failure::Refused(refusal)) => Err(refusal.message),
            Err(Failure::NoAnswer(error)) => Err(format!("{error:#}")),
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.order_timeout_seconds).unwrap_or(0))
    }
}
