//! Card sales from many terminals over loopback TCP, against the real acquirer host.
//!
//! [`sales_throughput`] builds its own world on a fresh temporary SQLite database (see
//! `world.rs`), starts the host in-process — a `host::Listener` serving
//! `acquirer::TerminalHandler` on 127.0.0.1, as `easypos up` wires it — and connects one TCP
//! connection per virtual terminal. Each terminal signs on (0800, 60.3 = 003) and takes its
//! working keys from field 62, then sells: chip card with online PIN (field 52 under its PIN
//! key), an ARQC in field 55 with the card's next ATC, and the MAC in field 64. Its cards are
//! its own, so each card's ATC goes up in order.
//!
//! Every answer is checked: the response code expected (00, or 55 for the wrong-PIN sales of
//! the decline mix), the echoed fields, the MAC of every approval, RRN and auth code, and the
//! card checks the ARPC. A terminal stops at its first wrong answer, and the run then returns
//! [`BenchError::WrongAnswers`] naming it.
//!
//! The host allows a terminal 50 messages a second (`acquirer::TERMINAL_RATE_PER_SECOND`), so
//! a terminal never sends faster: in the closed loop (the default) it sends its next sale when
//! the answer to the last has come and 1/50 s has passed since the last was sent; in the open
//! loop ([`SalesLoad::rate`]) the terminals share a fixed arrival rate, each on its own
//! schedule, and latency is counted from the scheduled time, so a slow host is not hidden by
//! sales that were sent late.

use crate::world::{self, Fleet, World};
use crate::{BenchError, percentile};
use host::{Client, Limits, Listener};
use iso8583::{LengthPrefix, ResponseCode, Stan};
use money::Currency;
use paycrypto::Pin;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use terminal::{ChipCard, ChipTransaction, Sale, Terminal, TransactionDate, WorkingKeys};
use tokio::time::Instant;

/// How long a terminal waits for an answer: longer than the host's handler deadline (20 s),
/// after which the host answers 96 itself, so a slow host shows as a wrong answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections the listener accepts beyond one per terminal (the listener's default of 512 is
/// for real terminals; a bench with more virtual terminals raises it).
const SPARE_CONNECTIONS: usize = 16;
/// Most terminals a run may have: their ids are 8 digits from 50000000, and each holds two
/// sockets (both ends are in this process) under the open-file limit.
pub const MAX_TERMINALS: usize = 20_000;
/// Longest run: a terminal's trace numbers (STAN, 6 digits) must not come round within a batch
/// (50 sales a second for an hour is 180,000), or a sale would repeat an earlier one's key.
pub const MAX_SECONDS: u64 = 3_600;
/// Every n-th approval of a terminal keeps its signed receipt, whose signature is checked
/// after the run (checking each would make the generator, not the host, the bottleneck).
const RECEIPT_SAMPLE_EVERY: u64 = 50;
const MAX_RECEIPT_SAMPLES_PER_TERMINAL: usize = 20;
/// Latency samples kept per terminal (the first ones; 50 a second fills it in half an hour).
const MAX_SAMPLES_PER_TERMINAL: usize = 100_000;
/// The operator in the sign-on (field 63).
const OPERATOR: &str = "001";
/// Terminal country code (9F1A): China.
const COUNTRY: u16 = 156;
/// Sale amounts run from 1.00 to 99.99 CNY.
const MIN_AMOUNT_MINOR: u64 = 100;
const AMOUNT_SPREAD_MINOR: u64 = 9_900;

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SalesLoad {
    /// Virtual terminals, one connection each, each signed on with its own keys.
    pub terminals: usize,
    pub seconds: u64,
    /// Cards per terminal; a card belongs to one terminal, which uses them in turn.
    pub cards_per_terminal: usize,
    /// Sales per second of all terminals together, sent on a fixed schedule (open loop);
    /// `None` for a closed loop.
    pub rate: Option<u64>,
    /// Every n-th sale of a terminal is made with a wrong PIN and must be declined 55 (never
    /// twice in a row on one card, so no card reaches its PIN try limit); 0 for none.
    pub wrong_pin_every: u64,
    /// Where the temporary database is made (the system's temporary directory by default).
    pub directory: Option<PathBuf>,
    /// Whether the host in this process runs the risk engine with the load's rules
    /// ([`crate::LOAD_RULES`]), as `easypos up` runs its rules. A `--target` host runs its own.
    pub risk: bool,
}

impl SalesLoad {
    /// A closed loop of `terminals` terminals with 4 cards each, for `seconds`, all approved.
    pub fn new(terminals: usize, seconds: u64) -> Self {
        Self {
            terminals,
            seconds,
            cards_per_terminal: 4,
            rate: None,
            wrong_pin_every: 0,
            directory: None,
            risk: true,
        }
    }

    /// The time between two sales of one terminal, or why the load cannot run.
    fn period(&self) -> Result<Duration, BenchError> {
        let invalid = |why: String| Err(BenchError::Setup(why));
        if !(1..=MAX_TERMINALS).contains(&self.terminals) {
            return invalid(format!("terminals must be 1 to {MAX_TERMINALS}"));
        }
        if !(1..=MAX_SECONDS).contains(&self.seconds) {
            return invalid(format!("seconds must be 1 to {MAX_SECONDS}"));
        }
        let most_per_terminal = u64::from(acquirer::TERMINAL_RATE_PER_SECOND);
        let sales_per_card =
            self.seconds * most_per_terminal / self.cards_per_terminal.max(1) as u64;
        if self.cards_per_terminal == 0 || sales_per_card >= u64::from(u16::MAX) {
            return invalid(format!(
                "a card's ATC has 65,535 values: give each terminal more than {} cards for {} s",
                self.seconds * most_per_terminal / u64::from(u16::MAX),
                self.seconds
            ));
        }
        match self.rate {
            None => Ok(Duration::from_secs(1) / acquirer::TERMINAL_RATE_PER_SECOND),
            Some(0) => invalid("rate must be above zero".into()),
            Some(rate) if rate > most_per_terminal * self.terminals as u64 => invalid(format!(
                "{rate} sales/s needs at least {} terminals: the host takes {most_per_terminal} messages/s from each",
                rate.div_ceil(most_per_terminal)
            )),
            Some(rate) => Ok(Duration::from_nanos(
                1_000_000_000 * self.terminals as u64 / rate,
            )),
        }
    }
}

/// What a run measured. Latencies are from sending a sale (open loop: from its scheduled time)
/// to having its answer checked.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SalesReport {
    pub backend: &'static str,
    pub load: SalesLoad,
    /// Sales answered as expected: approvals plus expected declines.
    pub sales: u64,
    pub approvals: u64,
    pub declines: u64,
    /// Terminals stopped by a wrong answer or a broken connection.
    pub errors: u64,
    pub elapsed_micros: u64,
    pub sales_per_second: f64,
    pub p50_micros: u64,
    pub p90_micros: u64,
    pub p99_micros: u64,
    pub p999_micros: u64,
    pub max_micros: u64,
    /// Group commits of the store during the run (sales per commit shows the grouping); not
    /// known for a host in another process.
    pub commits: Option<u64>,
    /// Ed25519 signatures the approvals' receipts took (approvals per signature shows the
    /// batching, `aftersale::ReceiptBatcher`); not known for a host in another process.
    pub receipt_signatures: Option<u64>,
    /// Building the world and starting the host.
    pub setup_micros: u64,
    /// Signing every terminal on.
    pub sign_on_micros: u64,
    /// CPU time this process used while selling (`/proc/self/stat`, 10 ms resolution): the
    /// generator and the host in process, the generator alone with `--target`. `None` where
    /// the system does not say.
    pub cpu_micros: Option<u64>,
}

/// What became of one sale, as its terminal saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SaleOutcome {
    Approved,
    Declined,
    /// No answer came (the connection broke or timed out), or one the terminal could not take:
    /// the terminal does not know whether the host approved it.
    Unanswered,
}

/// One sale in the sale log: which terminal, batch and trace number, which of the terminal's
/// cards (its place in the fleet file), the amount, and what the terminal heard. No card data.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SaleRecord {
    pub terminal: String,
    pub batch: u32,
    pub stan: u32,
    pub card: usize,
    pub amount_minor: u64,
    pub outcome: SaleOutcome,
    pub response: Option<String>,
    pub rrn: Option<String>,
    pub auth_code: Option<String>,
}

/// The sale log: one JSON line per sale a terminal sent, written as the answers come, so that
/// a check after the run (a crash harness, say) knows every approval the terminals received
/// and every sale whose outcome they do not know.
#[derive(Debug)]
pub struct SaleLog {
    out: std::sync::Mutex<std::io::BufWriter<std::fs::File>>,
    failed: std::sync::atomic::AtomicBool,
}

impl SaleLog {
    /// Creates (or empties) the log at `path`.
    pub fn create(path: &std::path::Path) -> Result<Self, BenchError> {
        let file = std::fs::File::create(path).map_err(|error| {
            BenchError::Setup(format!(
                "cannot create the sale log {}: {error}",
                path.display()
            ))
        })?;
        Ok(Self {
            out: std::sync::Mutex::new(std::io::BufWriter::new(file)),
            failed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn write(&self, record: &SaleRecord) {
        use std::io::Write;
        let Ok(mut out) = self.out.lock() else {
            self.failed
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return;
        };
        let written = serde_json::to_writer(&mut *out, record)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"));
        if written.is_err() {
            self.failed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Writes what is buffered to disk; fails if any line could not be written.
    pub fn finish(&self) -> Result<(), BenchError> {
        use std::io::Write;
        let flushed = match self.out.lock() {
            Ok(mut out) => out.flush().and_then(|()| out.get_ref().sync_all()).is_ok(),
            Err(_) => false,
        };
        if !flushed || self.failed.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(BenchError::Setup(
                "the sale log could not be written in full".into(),
            ));
        }
        Ok(())
    }

    /// Reads a sale log back.
    pub fn read(path: &std::path::Path) -> Result<Vec<SaleRecord>, BenchError> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            BenchError::Setup(format!(
                "cannot read the sale log {}: {error}",
                path.display()
            ))
        })?;
        text.lines()
            .enumerate()
            .map(|(number, line)| {
                serde_json::from_str(line).map_err(|error| {
                    BenchError::Setup(format!("{} line {}: {error}", path.display(), number + 1))
                })
            })
            .collect()
    }
}

/// The host running in this process.
struct RunningHost {
    address: std::net::SocketAddr,
    handler: Arc<acquirer::TerminalHandler>,
    stop: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

/// `handler` with the risk engine on the load's rules, as `easypos up` wires it (no rule of
/// the load fires, so no case or freeze comes of it).
fn with_load_risk(
    handler: acquirer::TerminalHandler,
) -> Result<acquirer::TerminalHandler, BenchError> {
    let rules = risk::Config::from_toml(crate::LOAD_RULES)
        .map_err(|error| BenchError::Setup(format!("crates/bench/load-risk.toml: {error}")))?;
    Ok(handler.with_risk(Arc::new(risk::Engine::new(rules))))
}

async fn start_host(world: &World, load: &SalesLoad) -> Result<RunningHost, BenchError> {
    let terminals = load.terminals;
    let profile = iso8583::Profile::builtin("cup-bcd")
        .map_err(|error| BenchError::Setup(format!("the cup-bcd profile: {error}")))?;
    let records = world::terminal_records(&world.store).await?;
    // Each approval signs its receipt statement, as the host of `easypos up` does.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        });
    let receipts = aftersale::ReceiptKeys::load(world.store.clone(), world.hsm.clone(), now)
        .await
        .map_err(|error| BenchError::Setup(format!("the receipt signing key: {error}")))?;
    let handler =
        acquirer::TerminalHandler::new(profile, records, world.store.clone(), world.hsm.clone())
            .with_receipts(Arc::new(receipts));
    let handler = Arc::new(if load.risk {
        with_load_risk(handler)?
    } else {
        handler
    });
    let limits = Limits {
        max_connections: terminals + SPARE_CONNECTIONS,
        ..Limits::default()
    };
    let listener = Listener::bind(([127, 0, 0, 1], 0).into(), LengthPrefix::Binary2, limits)
        .await
        .map_err(|error| BenchError::Setup(format!("the host's listener: {error}")))?;
    let address = listener
        .local_addr()
        .map_err(|error| BenchError::Setup(format!("the host's address: {error}")))?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(listener.serve(handler.clone(), stopped));
    Ok(RunningHost {
        address,
        handler,
        stop,
        server,
    })
}

/// A card in its terminal's hand.
struct HeldCard {
    chip: ChipCard,
    wrong_pin: Pin,
    /// Whether its last sale was made with the wrong PIN.
    wrong_last: bool,
}

/// A terminal after its sign-on, ready to sell.
struct SignedOnTerminal {
    index: u64,
    terminal: Terminal,
    client: Client,
    keys: WorkingKeys,
    batch: u32,
    /// The trace number of the sign-on; sales follow it.
    first_stan: u32,
    cards: Vec<HeldCard>,
}

async fn sign_on(
    index: u64,
    bench: world::BenchTerminal,
    issuer_master_key: Arc<paycrypto::TdesKey>,
    address: std::net::SocketAddr,
) -> Result<SignedOnTerminal, String> {
    let failed = |error: &dyn std::fmt::Display| format!("terminal {}: sign-on: {error}", bench.id);
    let terminal = Terminal::new(&bench.id, demo::SHANGHAI_MERCHANT).map_err(|e| failed(&e))?;
    let mut client = Client::connect(address, LengthPrefix::Binary2, ANSWER_TIMEOUT)
        .await
        .map_err(|e| failed(&e))?;
    // A terminal's trace numbers go on from where its last run left them (the fleet file).
    let first = Stan::new(bench.last_stan + 1)
        .ok_or_else(|| failed(&"no trace numbers left in this batch: provision a new database"))?;
    let request = terminal.sign_on(first, OPERATOR).map_err(|e| failed(&e))?;
    let frame = terminal.pack(&request).map_err(|e| failed(&e))?;
    let reply = client
        .exchange(&frame, ANSWER_TIMEOUT)
        .await
        .map_err(|e| failed(&e))?;
    let signed = terminal
        .signed_on(&request, &reply, &bench.master_key)
        .map_err(|e| failed(&e))?;
    let mut cards = Vec::with_capacity(bench.cards.len());
    for card in bench.cards {
        cards.push(HeldCard {
            chip: ChipCard::new(&issuer_master_key, card.pan, 1)
                .map_err(|e| failed(&e))?
                .with_atc(card.atc),
            wrong_pin: card.wrong_pin,
            wrong_last: false,
        });
    }
    Ok(SignedOnTerminal {
        index,
        terminal,
        client,
        keys: signed.keys,
        batch: signed.batch,
        first_stan: first.value(),
        cards,
    })
}

/// When and how a terminal sells.
#[derive(Clone, Copy, Debug)]
struct Plan {
    first: Instant,
    period: Duration,
    deadline: Instant,
    open_loop: bool,
    wrong_pin_every: u64,
    date: TransactionDate,
}

/// What one terminal did.
#[derive(Debug, Default)]
struct Tally {
    approvals: u64,
    declines: u64,
    latencies: Vec<u64>,
    /// Some approvals' signed receipts, whose signatures are checked after the run.
    receipts: Vec<String>,
    error: Option<String>,
    /// Sales sent (answered or not).
    sent: u32,
    /// The terminal's last trace number and its cards' last ATCs, for the next run.
    last_stan: u32,
    atcs: Vec<u16>,
}

/// A fresh-looking unpredictable number (9F37) per terminal and sale (SplitMix64), so the
/// generator spends no time on real randomness.
fn unpredictable_number(terminal: u64, sequence: u64) -> [u8; 4] {
    let mut z = (terminal << 32 ^ sequence).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let bytes = (z ^ (z >> 31)).to_be_bytes();
    [bytes[0], bytes[1], bytes[2], bytes[3]]
}

/// Whether a sale was approved (with its signed receipt) or declined as expected.
enum Outcome {
    Approved(String),
    Declined,
}

async fn sell(mut signed: SignedOnTerminal, plan: Plan, log: Option<Arc<SaleLog>>) -> Tally {
    let mut tally = sell_until_done(&mut signed, plan, log.as_deref()).await;
    tally.last_stan = signed.first_stan + tally.sent;
    tally.atcs = signed.cards.iter().map(|card| card.chip.atc()).collect();
    tally
}

async fn sell_until_done(
    signed: &mut SignedOnTerminal,
    plan: Plan,
    log: Option<&SaleLog>,
) -> Tally {
    let mut tally = Tally::default();
    let right_pin = match Pin::new(demo::DEMO_PIN) {
        Ok(pin) => pin,
        Err(error) => {
            tally.error = Some(format!("the demo PIN: {error}"));
            return tally;
        }
    };
    // The schedule is kept here rather than in a `tokio::time::Interval`, so that a terminal
    // stops as soon as its next sale would fall after the deadline instead of waiting for it.
    let mut next = plan.first;
    // The sales follow the sign-on's trace number.
    let mut sequence = 0_u64;
    loop {
        // Open loop: every sale scheduled before the deadline is sent, late or not, so a slow
        // host shows in the latencies. Closed loop: no new sale once the time is up.
        if next >= plan.deadline || (!plan.open_loop && Instant::now() >= plan.deadline) {
            break;
        }
        tokio::time::sleep_until(next).await;
        let scheduled = next;
        sequence += 1;
        let Some(stan) = u32::try_from(sequence)
            .ok()
            .and_then(|sequence| Stan::new(signed.first_stan + sequence))
        else {
            tally.error = Some(
                "no trace numbers left in this batch (999,999): provision a new database".into(),
            );
            break;
        };
        tally.sent += 1;
        let sent = Instant::now();
        // Open loop: the next sale is due one period after this one was due (late sales are
        // sent back to back until the terminal is on schedule again). Closed loop: one period
        // after this one was sent, or at once if its answer takes longer — never faster than
        // the host's rate per terminal.
        next = if plan.open_loop {
            scheduled + plan.period
        } else {
            sent + plan.period
        };
        match one_sale(signed, &right_pin, &plan, stan, sequence, log).await {
            Ok(outcome) => {
                let since = if plan.open_loop { scheduled } else { sent };
                if tally.latencies.len() < MAX_SAMPLES_PER_TERMINAL {
                    tally.latencies.push(since.elapsed().as_micros() as u64);
                }
                match outcome {
                    Outcome::Approved(receipt) => {
                        if tally.approvals.is_multiple_of(RECEIPT_SAMPLE_EVERY)
                            && tally.receipts.len() < MAX_RECEIPT_SAMPLES_PER_TERMINAL
                        {
                            tally.receipts.push(receipt);
                        }
                        tally.approvals += 1;
                    }
                    Outcome::Declined => tally.declines += 1,
                }
            }
            Err(error) => {
                tally.error = Some(format!(
                    "terminal {}, trace {:06}: {error}",
                    signed.terminal.terminal_id(),
                    stan.value()
                ));
                break;
            }
        }
    }
    tally
}

async fn one_sale(
    signed: &mut SignedOnTerminal,
    right_pin: &Pin,
    plan: &Plan,
    stan: Stan,
    sequence: u64,
    log: Option<&SaleLog>,
) -> Result<Outcome, String> {
    let text = |error: &dyn std::fmt::Display| error.to_string();
    let count = signed.cards.len() as u64;
    let card_index = (sequence % count) as usize;
    let card = &mut signed.cards[card_index];
    let wrong = plan.wrong_pin_every > 0
        && sequence.is_multiple_of(plan.wrong_pin_every)
        && !card.wrong_last;
    let amount_minor =
        MIN_AMOUNT_MINOR + (sequence.wrapping_mul(7_919) + signed.index) % AMOUNT_SPREAD_MINOR;
    let read = card
        .chip
        .generate_arqc(&ChipTransaction {
            amount_minor,
            currency: Currency::CNY,
            country: COUNTRY,
            date: plan.date,
            unpredictable_number: unpredictable_number(signed.index, sequence),
        })
        .map_err(|e| text(&e))?;
    let pin = if wrong { &card.wrong_pin } else { right_pin };
    let block = signed
        .keys
        .pin_block(pin, card.chip.pan())
        .map_err(|e| text(&e))?;
    let mut message = signed
        .terminal
        .sale(&Sale {
            stan,
            batch: signed.batch,
            amount_minor,
            currency: Currency::CNY,
            pan: card.chip.pan(),
            field55: Some(&read.field55),
            pin_block: Some(&block),
        })
        .map_err(|e| text(&e))?;
    let frame = signed
        .terminal
        .pack_with_mac(&mut message, &signed.keys)
        .map_err(|e| text(&e))?;
    let record = |outcome: SaleOutcome, answer: Option<&terminal::Answer>| {
        if let Some(log) = log {
            log.write(&SaleRecord {
                terminal: signed.terminal.terminal_id().to_owned(),
                batch: signed.batch,
                stan: stan.value(),
                card: card_index,
                amount_minor,
                outcome,
                response: answer.map(|answer| answer.response.code().to_owned()),
                rrn: answer.and_then(|answer| answer.rrn.clone()),
                auth_code: answer.and_then(|answer| answer.auth_code.clone()),
            });
        }
    };
    // No answer, or one the terminal cannot take (a wrong MAC, fields not echoed): the
    // terminal does not know the sale's outcome, which a reversal would settle.
    let answer = match signed.client.exchange(&frame, ANSWER_TIMEOUT).await {
        Ok(reply) => signed.terminal.answer(&message, &reply, Some(&signed.keys)),
        Err(error) => {
            record(SaleOutcome::Unanswered, None);
            return Err(text(&error));
        }
    };
    let answer = answer.map_err(|error| {
        record(SaleOutcome::Unanswered, None);
        text(&error)
    })?;
    record(
        if answer.response == ResponseCode::Approved {
            SaleOutcome::Approved
        } else {
            SaleOutcome::Declined
        },
        Some(&answer),
    );
    let card = &mut signed.cards[card_index];
    card.wrong_last = wrong;

    let expected = if wrong {
        ResponseCode::IncorrectPin
    } else {
        ResponseCode::Approved
    };
    if answer.response != expected {
        return Err(format!(
            "answered {} ({}), expected {}{}",
            answer.response.code(),
            answer.response.meaning(),
            expected.code(),
            if wrong { " for a wrong PIN" } else { "" }
        ));
    }
    let arpc = match &answer.issuer_data {
        Some(data) => card.chip.check_arpc(&read, data).map_err(|e| text(&e))?,
        None => None,
    };
    if !wrong {
        let digits = |value: &Option<String>, length: usize| {
            value.as_deref().is_some_and(|text| {
                text.len() == length && text.bytes().all(|b| b.is_ascii_digit())
            })
        };
        if !digits(&answer.rrn, 12) || !digits(&answer.auth_code, 6) {
            return Err("approved without a 12-digit RRN and a 6-digit auth code".into());
        }
    }
    match arpc {
        Some(check) if check.genuine && check.approved != wrong => {}
        Some(check) if !check.genuine => {
            return Err(format!(
                "{} with an ARPC the card does not accept",
                answer.response.code()
            ));
        }
        Some(_) => {
            return Err(format!(
                "{} with a card status update that says otherwise",
                answer.response.code()
            ));
        }
        None if wrong => {}
        None => return Err("approved without an ARPC (tag 91 in field 55)".into()),
    }
    if wrong {
        return Ok(Outcome::Declined);
    }
    // The terminal kept field 62 only if it is a statement about this very sale.
    answer
        .receipt_payload
        .map(Outcome::Approved)
        .ok_or_else(|| "approved without a signed receipt statement about this sale".into())
}

/// The first sampled receipt whose signature does not verify, with the reason.
async fn first_forged(keys: &aftersale::ReceiptKeys, tallies: &[Tally]) -> Option<String> {
    for receipt in tallies.iter().flat_map(|tally| &tally.receipts) {
        if let Err(rejection) = keys.verify(receipt).await {
            return Some(format!("receipt {receipt}: {rejection}"));
        }
    }
    None
}

/// The terminals' work: sign every terminal on, then sell until the load's time is up.
async fn drive(
    fleet: Fleet,
    address: std::net::SocketAddr,
    load: &SalesLoad,
    period: Duration,
    log: Option<Arc<SaleLog>>,
) -> Result<(Vec<Tally>, Duration, Duration, Option<u64>), BenchError> {
    let signing_on = Instant::now();
    let issuer_master_key = Arc::new(fleet.issuer_master_key);
    let mut sign_ons = Vec::with_capacity(load.terminals);
    for (index, bench) in fleet.terminals.into_iter().take(load.terminals).enumerate() {
        sign_ons.push(tokio::spawn(sign_on(
            index as u64,
            bench,
            issuer_master_key.clone(),
            address,
        )));
    }
    let mut signed = Vec::with_capacity(load.terminals);
    let mut first_failure = None;
    for task in sign_ons {
        match task.await {
            Ok(Ok(terminal)) => signed.push(terminal),
            Ok(Err(error)) => {
                first_failure.get_or_insert(error);
            }
            Err(error) => {
                first_failure.get_or_insert(error.to_string());
            }
        }
    }
    if let Some(error) = first_failure {
        return Err(BenchError::Setup(error));
    }
    let sign_on_time = signing_on.elapsed();

    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0);
    let today = acquirer::effects::business_date(now_unix);
    let started = Instant::now();
    let cpu_before = crate::cpu_micros("self");
    let plan = Plan {
        first: started,
        period,
        deadline: started + Duration::from_secs(load.seconds),
        open_loop: load.rate.is_some(),
        wrong_pin_every: load.wrong_pin_every,
        date: TransactionDate {
            year: today.year,
            month: today.month,
            day: today.day,
        },
    };
    let terminals = signed.len() as u32;
    let mut sellers = Vec::with_capacity(signed.len());
    for terminal in signed {
        // Spread the terminals' schedules over one period, so they do not send in step.
        let offset = period * (terminal.index as u32) / terminals.max(1);
        sellers.push(tokio::spawn(sell(
            terminal,
            Plan {
                first: started + offset,
                ..plan
            },
            log.clone(),
        )));
    }
    let mut tallies = Vec::with_capacity(sellers.len());
    for seller in sellers {
        tallies.push(seller.await.unwrap_or_else(|error| Tally {
            error: Some(format!("a terminal task failed: {error}")),
            ..Tally::default()
        }));
    }
    let elapsed = started.elapsed();
    let cpu_micros = crate::cpu_micros("self")
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    Ok((tallies, sign_on_time, elapsed, cpu_micros))
}

/// Runs `load` against a host started in this process on a new temporary SQLite database,
/// and reports. Fails with [`BenchError::WrongAnswers`] (carrying the report) when any answer
/// was not the one expected.
pub async fn sales_throughput(load: SalesLoad) -> Result<SalesReport, BenchError> {
    let period = load.period()?;
    let setting_up = Instant::now();
    let world = world::build(
        load.terminals,
        load.cards_per_terminal,
        load.directory.as_deref(),
    )
    .await?;
    let host = start_host(&world, &load).await?;
    let setup_time = setting_up.elapsed();
    let commits_before = world.store.stats().commits;
    let signatures = |host: &RunningHost| {
        host.handler
            .receipt_stats()
            .map_or(0, |stats| stats.signatures)
    };
    let signatures_before = signatures(&host);
    let World {
        store, fleet, dir, ..
    } = world;
    let driven = drive(fleet, host.address, &load, period, None).await;
    let commits = store.stats().commits - commits_before;
    let receipt_signatures = signatures(&host) - signatures_before;
    let forged_receipt = match (&driven, host.handler.receipts()) {
        (Ok((tallies, ..)), Some(keys)) => first_forged(&keys, tallies).await,
        _ => None,
    };

    // The host stops (in-flight messages drain), then the store commits its last writes.
    let _ = host.stop.send(true);
    let _ = host.server.await;
    drop(host.handler);
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await?;
    }
    drop(dir);

    let (tallies, sign_on_time, elapsed, cpu_micros) = driven?;
    let report = SalesReport {
        backend: "sqlite",
        commits: Some(commits),
        receipt_signatures: Some(receipt_signatures),
        setup_micros: setup_time.as_micros() as u64,
        ..SalesReport::of(load, &tallies, sign_on_time, elapsed, cpu_micros)
    };
    report.or_first_error(&tallies, forged_receipt)
}

/// Runs `load` against the host at `target` with the terminals and cards of `fleet` (made by
/// [`crate::provision`] in that host's database), and reports. Every answer is checked as
/// in [`sales_throughput`], except the receipts' signatures (the generator does not have the
/// host's public keys). Each sale goes to `log` when given.
///
/// Returns the fleet as the run left it: its terminals' trace numbers and its cards' ATCs
/// went up, and the next run must go on from there (save it back to its file), or the host
/// would take its sales for repeats and its cryptograms for replays.
pub async fn sales_against(
    target: std::net::SocketAddr,
    mut fleet: Fleet,
    load: SalesLoad,
    log: Option<Arc<SaleLog>>,
) -> (Fleet, Result<SalesReport, BenchError>) {
    let load = SalesLoad {
        cards_per_terminal: fleet
            .terminals
            .iter()
            .map(|terminal| terminal.cards.len())
            .min()
            .unwrap_or(0),
        ..load
    };
    let period = match load.period() {
        Ok(period) => period,
        Err(error) => return (fleet, Err(error)),
    };
    if load.terminals > fleet.terminals.len() {
        let error = BenchError::Setup(format!(
            "the fleet has {} terminals, fewer than the {} asked for",
            fleet.terminals.len(),
            load.terminals
        ));
        return (fleet, Err(error));
    }
    let sales_per_card = load.seconds * u64::from(acquirer::TERMINAL_RATE_PER_SECOND)
        / load.cards_per_terminal as u64;
    let highest_atc = fleet
        .terminals
        .iter()
        .flat_map(|terminal| &terminal.cards)
        .map(|card| u64::from(card.atc))
        .max()
        .unwrap_or(0);
    if highest_atc + sales_per_card >= u64::from(u16::MAX) {
        let error = BenchError::Setup(format!(
            "a card of this fleet is at ATC {highest_atc} of 65,535 and a run of {} s may take {sales_per_card} more: provision a new database",
            load.seconds
        ));
        return (fleet, Err(error));
    }
    let run = Fleet {
        issuer_master_key: fleet.issuer_master_key.clone(),
        terminals: fleet.terminals[..load.terminals].to_vec(),
    };
    let driven = drive(run, target, &load, period, log.clone()).await;
    // The fleet goes on from where the terminals left their counters. Tallies come in the
    // fleet's order; a terminal whose task failed keeps its counters.
    let driven_terminals = fleet.terminals.iter_mut().take(load.terminals);
    match &driven {
        Ok((tallies, ..)) => {
            for (terminal, tally) in driven_terminals.zip(tallies) {
                if tally.last_stan > 0 {
                    terminal.last_stan = tally.last_stan;
                    for (card, atc) in terminal.cards.iter_mut().zip(&tally.atcs) {
                        card.atc = *atc;
                    }
                }
            }
        }
        // A sign-on failed: the others may have used their next trace number.
        Err(_) => driven_terminals.for_each(|terminal| terminal.last_stan += 1),
    }
    let logged = match &log {
        Some(log) => log.finish(),
        None => Ok(()),
    };
    let result = driven.and_then(|(tallies, sign_on_time, elapsed, cpu_micros)| {
        logged?;
        let report = SalesReport {
            backend: "external",
            ..SalesReport::of(load, &tallies, sign_on_time, elapsed, cpu_micros)
        };
        report.or_first_error(&tallies, None)
    });
    (fleet, result)
}

impl SalesReport {
    /// The figures of a run from its terminals' tallies; the host's own figures are left empty.
    fn of(
        load: SalesLoad,
        tallies: &[Tally],
        sign_on_time: Duration,
        elapsed: Duration,
        cpu_micros: Option<u64>,
    ) -> Self {
        let mut latencies = Vec::new();
        let (mut approvals, mut declines) = (0, 0);
        for tally in tallies {
            approvals += tally.approvals;
            declines += tally.declines;
            latencies.extend_from_slice(&tally.latencies);
        }
        latencies.sort_unstable();
        let sales = approvals + declines;
        let elapsed_micros = elapsed.as_micros() as u64;
        Self {
            backend: "",
            load,
            sales,
            approvals,
            declines,
            errors: 0,
            elapsed_micros,
            sales_per_second: sales as f64 * 1e6 / elapsed_micros.max(1) as f64,
            p50_micros: percentile(&latencies, 500),
            p90_micros: percentile(&latencies, 900),
            p99_micros: percentile(&latencies, 990),
            p999_micros: percentile(&latencies, 999),
            max_micros: latencies.last().copied().unwrap_or(0),
            commits: None,
            receipt_signatures: None,
            setup_micros: 0,
            sign_on_micros: sign_on_time.as_micros() as u64,
            cpu_micros,
        }
    }

    /// The report, or [`BenchError::WrongAnswers`] carrying it when a terminal stopped at a
    /// wrong answer (or `forged_receipt` names a receipt whose signature failed).
    fn or_first_error(
        mut self,
        tallies: &[Tally],
        forged_receipt: Option<String>,
    ) -> Result<Self, BenchError> {
        // A forged receipt counts as one wrong answer.
        let mut errors = u64::from(forged_receipt.is_some());
        let mut first_error = forged_receipt;
        for error in tallies.iter().filter_map(|tally| tally.error.as_ref()) {
            errors += 1;
            first_error.get_or_insert_with(|| error.clone());
        }
        self.errors = errors;
        match first_error {
            None => Ok(self),
            Some(first) => Err(BenchError::WrongAnswers {
                errors,
                first,
                report: Box::new(self),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_the_host_cannot_take_are_refused_before_anything_runs() {
        let fine = SalesLoad::new(10, 5);
        assert_eq!(fine.period().unwrap(), Duration::from_millis(20));
        let open = SalesLoad {
            rate: Some(250),
            ..fine.clone()
        };
        assert_eq!(open.period().unwrap(), Duration::from_millis(40));
        let too_fast = SalesLoad {
            rate: Some(501),
            ..fine.clone()
        };
        assert!(
            too_fast
                .period()
                .unwrap_err()
                .to_string()
                .contains("at least 11 terminals")
        );
        let one_card_too_long = SalesLoad {
            seconds: 1_400,
            cards_per_terminal: 1,
            ..fine.clone()
        };
        assert!(
            one_card_too_long
                .period()
                .unwrap_err()
                .to_string()
                .contains("ATC")
        );
        for bad in [
            SalesLoad::new(0, 5),
            SalesLoad::new(MAX_TERMINALS + 1, 5),
            SalesLoad::new(10, 0),
            SalesLoad::new(10, MAX_SECONDS + 1),
        ] {
            assert!(bad.period().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unpredictable_numbers_differ_between_sales_and_terminals() {
        let numbers: std::collections::HashSet<[u8; 4]> = (0..100)
            .flat_map(|terminal| (0..100).map(move |sale| unpredictable_number(terminal, sale)))
            .collect();
        assert!(numbers.len() > 9_990, "{}", numbers.len());
    }

    #[test]
    fn percentiles_pick_from_the_sorted_samples() {
        let samples: Vec<u64> = (1..=1_000).collect();
        assert_eq!(
            [500, 900, 990, 999].map(|per_mille| percentile(&samples, per_mille)),
            [500, 900, 990, 999]
        );
        assert_eq!(percentile(&[], 500), 0);
    }
}
