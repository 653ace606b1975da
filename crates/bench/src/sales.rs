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

use crate::BenchError;
use crate::world::{self, World};
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
    /// Group commits of the store during the run (sales per commit shows the grouping).
    pub commits: u64,
    /// Ed25519 signatures the approvals' receipts took (approvals per signature shows the
    /// batching, `aftersale::ReceiptBatcher`).
    pub receipt_signatures: u64,
    /// Building the world and starting the host.
    pub setup_micros: u64,
    /// Signing every terminal on.
    pub sign_on_micros: u64,
}

/// The host running in this process.
struct RunningHost {
    address: std::net::SocketAddr,
    handler: Arc<acquirer::TerminalHandler>,
    stop: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

async fn start_host(world: &World, terminals: usize) -> Result<RunningHost, BenchError> {
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
    let handler = Arc::new(
        acquirer::TerminalHandler::new(profile, records, world.store.clone(), world.hsm.clone())
            .with_receipts(Arc::new(receipts)),
    );
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
    let first = Stan::new(1).ok_or_else(|| failed(&"trace number 1"))?;
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
            chip: ChipCard::new(&issuer_master_key, card.pan, 1).map_err(|e| failed(&e))?,
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

async fn sell(mut signed: SignedOnTerminal, plan: Plan) -> Tally {
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
    // The sign-on used trace number 1; `MAX_SECONDS` keeps the sales' below 999,999.
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
        let Some(stan) = u32::try_from(sequence + 1).ok().and_then(Stan::new) else {
            tally.error = Some("the trace numbers came round within the run".into());
            break;
        };
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
        match one_sale(&mut signed, &right_pin, &plan, stan, sequence).await {
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
) -> Result<Outcome, String> {
    let text = |error: &dyn std::fmt::Display| error.to_string();
    let count = signed.cards.len() as u64;
    let card = &mut signed.cards[(sequence % count) as usize];
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
    let reply = signed
        .client
        .exchange(&frame, ANSWER_TIMEOUT)
        .await
        .map_err(|e| text(&e))?;
    let answer = signed
        .terminal
        .answer(&message, &reply, Some(&signed.keys))
        .map_err(|e| text(&e))?;
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

fn percentile(sorted: &[u64], per_mille: usize) -> u64 {
    sorted
        .get(sorted.len().saturating_sub(1) * per_mille / 1_000)
        .copied()
        .unwrap_or(0)
}

/// The terminals' work: sign every terminal on, then sell until the load's time is up.
async fn drive(
    world: &mut World,
    host: &RunningHost,
    load: &SalesLoad,
    period: Duration,
) -> Result<(Vec<Tally>, Duration, Duration), BenchError> {
    let signing_on = Instant::now();
    let issuer_master_key = Arc::new(world.issuer_master_key.clone());
    let mut sign_ons = Vec::with_capacity(load.terminals);
    for (index, bench) in std::mem::take(&mut world.terminals).into_iter().enumerate() {
        sign_ons.push(tokio::spawn(sign_on(
            index as u64,
            bench,
            issuer_master_key.clone(),
            host.address,
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
        )));
    }
    let mut tallies = Vec::with_capacity(sellers.len());
    for seller in sellers {
        tallies.push(seller.await.unwrap_or_else(|error| Tally {
            error: Some(format!("a terminal task failed: {error}")),
            ..Tally::default()
        }));
    }
    Ok((tallies, sign_on_time, started.elapsed()))
}

/// Runs `load` and reports. Fails with [`BenchError::WrongAnswers`] (carrying the report) when
/// any answer was not the one expected.
pub async fn sales_throughput(load: SalesLoad) -> Result<SalesReport, BenchError> {
    let period = load.period()?;
    let setting_up = Instant::now();
    let mut world = world::build(
        load.terminals,
        load.cards_per_terminal,
        load.directory.as_deref(),
    )
    .await?;
    let host = start_host(&world, load.terminals).await?;
    let setup_time = setting_up.elapsed();
    let commits_before = world.store.stats().commits;
    let signatures = |host: &RunningHost| {
        host.handler
            .receipt_stats()
            .map_or(0, |stats| stats.signatures)
    };
    let signatures_before = signatures(&host);
    let driven = drive(&mut world, &host, &load, period).await;
    let commits = world.store.stats().commits - commits_before;
    let receipt_signatures = signatures(&host) - signatures_before;
    let forged_receipt = match (&driven, host.handler.receipts()) {
        (Ok((tallies, _, _)), Some(keys)) => first_forged(&keys, tallies).await,
        _ => None,
    };

    // The host stops (in-flight messages drain), then the store commits its last writes.
    let _ = host.stop.send(true);
    let _ = host.server.await;
    let World { store, dir, .. } = world;
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await?;
    }
    drop(dir);

    let (tallies, sign_on_time, elapsed) = driven?;
    let mut latencies = Vec::new();
    let (mut approvals, mut declines) = (0, 0);
    // A forged receipt counts as one wrong answer.
    let mut errors = u64::from(forged_receipt.is_some());
    let mut first_error = forged_receipt;
    for tally in tallies {
        approvals += tally.approvals;
        declines += tally.declines;
        latencies.extend(tally.latencies);
        if let Some(error) = tally.error {
            errors += 1;
            first_error.get_or_insert(error);
        }
    }
    latencies.sort_unstable();
    let sales = approvals + declines;
    let elapsed_micros = elapsed.as_micros() as u64;
    let report = SalesReport {
        backend: "sqlite",
        load,
        sales,
        approvals,
        declines,
        errors,
        elapsed_micros,
        sales_per_second: sales as f64 * 1e6 / elapsed_micros.max(1) as f64,
        p50_micros: percentile(&latencies, 500),
        p90_micros: percentile(&latencies, 900),
        p99_micros: percentile(&latencies, 990),
        p999_micros: percentile(&latencies, 999),
        max_micros: latencies.last().copied().unwrap_or(0),
        commits,
        receipt_signatures,
        setup_micros: setup_time.as_micros() as u64,
        sign_on_micros: sign_on_time.as_micros() as u64,
    };
    match first_error {
        None => Ok(report),
        Some(first) => Err(BenchError::WrongAnswers {
            errors,
            first,
            report: Box::new(report),
        }),
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
