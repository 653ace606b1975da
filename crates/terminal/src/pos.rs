//! The terminal application's engine: one terminal with its state directory, talking to its
//! host. The TUI and the scripted mode (`easypos terminal …`) both drive it.
//!
//! Every operation starts the same way ([`Pos::ready`]): a reversal left pending by an
//! earlier run is sent first (store-and-forward), and the terminal signs on if it has no
//! working keys. A card message then goes:
//!
//! 1. the trace number is taken and saved;
//! 2. the card is read — the chip computes its ARQC and the card file records the new ATC
//!    before anything leaves;
//! 3. for a message that may move money, its reversal is saved as pending *before* the
//!    message is sent, so a crash or power cut mid-exchange is reversed on the next start;
//! 4. the message goes out and the answer is awaited within the configured timeout;
//! 5. an answer that passes the checks (echoes, MAC, and the chip's ARPC on an approval)
//!    clears the pending reversal; no answer, or an answer that fails them, sends the
//!    reversal at once — and if that cannot be delivered either, it stays pending.

use crate::cardfile::{CardFile, CardProduct};
use crate::config::TerminalConfig;
use crate::dukpt::{AesDukptDevice, TdesDukptDevice};
use crate::files::FileError;
use crate::keys::WorkingKeys;
use crate::link::{Link, LinkError};
use crate::messages::{ReversalReason, Terminal};
use crate::receipt::{Cvm, Entry, Receipt};
use crate::state::{BatchEntry, PendingReversal, Session, StateDir, TerminalState};
use crate::transactions::{
    CardRead, CardRequest, Original, Reconciliation, TransactionType, settlement_reconciliation,
};
use crate::{ChipTransaction, TerminalError, TransactionDate};
use iso8583::{Message, Mti, ResponseCode, Stan};
use paycrypto::{Pan, Pin, PinBlock, TdesKey};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the terminal waits for the answer to a reversal sent right after a timeout: the
/// cardholder is still at the counter, so not the full timeout again.
pub const IMMEDIATE_REVERSAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an operation did not complete. Messages never carry card numbers, PINs or keys.
#[derive(Debug, thiserror::Error)]
pub enum PosError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Terminal(#[from] TerminalError),
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The terminal refused before sending anything (wrong card for the method, chip card
    /// swiped without fallback, PIN missing above the contactless limit, unknown original…).
    #[error("{0}")]
    Refused(String),
    /// A reversal from an earlier run is still pending and could not be delivered; nothing new
    /// is sent until it is.
    #[error("a reversal of trace {stan:06} is pending and could not be sent: {reason}")]
    ReversalPending { stan: u32, reason: String },
    #[error("sign-on refused: {0}")]
    SignOn(String),
}

/// The cashier's choice of payment method (step 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Debit,
    Credit,
}

/// How the card is presented (step 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presentation {
    Insert,
    Swipe,
    Tap,
}

/// A supervisor's approval of a void or refund for the host to check against the merchant's
/// staff records (docs/protocol.md, "Supervisor password"): the operator number and the
/// password keyed in, sent as a PIN block under the terminal's PIN key.
#[derive(Debug)]
pub struct Supervisor {
    pub operator_no: String,
    pub password: Pin,
}

/// One card transaction to make.
#[derive(Debug)]
pub struct Payment<'a> {
    pub kind: TransactionType,
    pub method: Method,
    pub presentation: Presentation,
    /// The chip could not be read: swipe a chip card (needs `allow_fallback`).
    pub fallback: bool,
    pub card: &'a mut CardFile,
    /// The PIN block made at the PIN pad ([`Pos::pin_block`]); `None` when no PIN was entered.
    pub pin_block: Option<PinBlock>,
    /// Ignored for a balance inquiry.
    pub amount_minor: u64,
    /// The trace number of the original (void, refund, completion).
    pub original_stan: Option<u32>,
    /// The original's batch when it is not the open one: a refund of a sale of a closed
    /// batch, found in the terminal's archive of that batch. `None`: the open batch.
    pub original_batch: Option<u32>,
    /// For a void or refund: the supervisor whose password the host checks (field 63).
    pub supervisor: Option<Supervisor>,
}

/// What became of a reversal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReversalStatus {
    /// The host acknowledged it (00).
    Acknowledged,
    /// Not delivered yet; it is sent before the next transaction.
    Pending,
}

/// The result of a card transaction the terminal sent.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TransactionResult {
    pub approved: bool,
    /// Field 39, or `None` when no usable answer came.
    pub response_code: Option<String>,
    /// The result in plain words.
    pub message: String,
    pub receipt: Receipt,
    /// Set when the terminal reversed the message (no answer, or an answer it rejected).
    pub reversal: Option<ReversalStatus>,
}

/// The result of a batch settlement.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SettlementResult {
    /// The totals agreed with the host's (at the first settlement).
    pub agreed: bool,
    /// The host closed the batch: the totals agreed, or the upload resolved the difference.
    pub closed: bool,
    /// What the host's last answer said.
    pub reconciliation: Reconciliation,
    /// Transactions uploaded (0320) after the totals disagreed.
    pub uploaded: usize,
    pub batch: u32,
    pub debit_count: u64,
    pub debit_minor: u64,
    pub credit_count: u64,
    pub credit_minor: u64,
    pub currency: String,
}

/// What [`Pos::ready`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Readiness {
    /// A reversal from an earlier run was delivered.
    pub reversal_sent: bool,
    /// The terminal signed on.
    pub signed_on: bool,
}

/// A clock the terminal reads: Unix seconds. Tests pass a fixed one.
pub type Clock = fn() -> u64;

fn system_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// A calendar date and time of day from Unix seconds shifted by `offset_minutes`.
pub fn local_time(unix: u64, offset_minutes: i32) -> (TransactionDate, (u8, u8, u8)) {
    let shifted = unix as i64 + i64::from(offset_minutes) * 60;
    let days = shifted.div_euclid(86_400);
    let seconds = shifted.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
    (
        TransactionDate { year, month, day },
        (
            (seconds / 3_600) as u8,
            (seconds % 3_600 / 60) as u8,
            (seconds % 60) as u8,
        ),
    )
}

/// The key a terminal holds and how it gets its message keys.
pub enum TerminalKey {
    /// Master/session: the terminal master key, under which each sign-on delivers working keys.
    Master(TdesKey),
    /// AES DUKPT: the PIN pad's initial key, from which each message's keys are derived.
    AesDukpt(AesDukptDevice),
    /// TDES DUKPT: the PIN pad's initial PIN encryption key (IPEK), likewise.
    TdesDukpt(TdesDukptDevice),
}

impl std::fmt::Debug for TerminalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Master(_) => f.write_str("TerminalKey::Master(masked)"),
            Self::AesDukpt(device) => write!(f, "TerminalKey::AesDukpt({device:?})"),
            Self::TdesDukpt(device) => write!(f, "TerminalKey::TdesDukpt({device:?})"),
        }
    }
}

/// A MAC made by [`Pos::request_mac`], and the KSN it was made under (DUKPT).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestMac {
    /// Hex, upper case; `None` for master/session.
    pub ksn: Option<String>,
    pub mac: [u8; 8],
}

/// One terminal, its state loaded.
pub struct Pos {
    config: TerminalConfig,
    key: TerminalKey,
    /// Under AES DUKPT: the counter the PIN block of the coming transaction was made under;
    /// that transaction's message must carry the same KSN.
    pin_counter: Option<u32>,
    terminal: Terminal,
    dir: StateDir,
    state: TerminalState,
    keys: Option<WorkingKeys>,
    link: Option<Link>,
    clock: Clock,
    /// The operator signed on at this run (field 63 and receipts).
    operator: String,
    /// The host's code when it answered a reversal with something other than 00.
    last_reversal_answer: Option<ResponseCode>,
}

impl std::fmt::Debug for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pos")
            .field("terminal_id", &self.config.terminal_id)
            .field("stan", &self.state.stan)
            .field("batch", &self.state.batch)
            .finish_non_exhaustive()
    }
}

impl Pos {
    /// Opens the terminal of `config` with its master key `tmk`: loads (or creates) its
    /// state directory. Nothing is sent yet.
    pub fn open(config: TerminalConfig, tmk: TdesKey) -> Result<Pos, PosError> {
        Pos::open_with(config, TerminalKey::Master(tmk))
    }

    /// Opens the terminal of `config` holding `key` (master/session or AES DUKPT).
    pub fn open_with(mut config: TerminalConfig, key: TerminalKey) -> Result<Pos, PosError> {
        config.check().map_err(PosError::Refused)?;
        let terminal = Terminal::new(&config.terminal_id, &config.merchant_id)?;
        let dir = StateDir::open(&config.state_dir)?;
        let state = dir.load(&config.terminal_id)?;
        // Parameters the host sent since the configuration was written win over it.
        if let Some(parameters) = &state.parameters
            && let Some(newer) = config
                .with_parameters(parameters)
                .map_err(PosError::Refused)?
        {
            config = newer;
        }
        let keys = match (&state.session, &key) {
            (Some(session), TerminalKey::Master(tmk)) => Some(session_keys(tmk, session)?),
            _ => None,
        };
        let operator = state.session.as_ref().map_or_else(
            || config.operator.clone(),
            |session| session.operator.clone(),
        );
        Ok(Pos {
            config,
            key,
            pin_counter: None,
            terminal,
            dir,
            state,
            keys,
            link: None,
            clock: system_clock,
            operator,
            last_reversal_answer: None,
        })
    }

    /// The same terminal reading `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Pos {
        self.clock = clock;
        self
    }

    pub fn config(&self) -> &TerminalConfig {
        &self.config
    }

    pub fn state(&self) -> &TerminalState {
        &self.state
    }

    pub fn operator(&self) -> &str {
        &self.operator
    }

    pub fn is_signed_on(&self) -> bool {
        // Master/session: the session's working keys are loaded with it.
        self.state.session.is_some()
    }

    /// Under DUKPT (AES or TDES), takes the next KSN counter — saved in the state before any
    /// use, so a counter is never used twice, even after a crash — and makes its keys the
    /// message keys. `reuse` is a counter a PIN block was already made under (the same
    /// transaction). Master/session: nothing to do, the sign-on's keys serve every message.
    fn message_keys(&mut self, reuse: Option<u32>) -> Result<Option<u32>, PosError> {
        let next = |last| match &self.key {
            TerminalKey::Master(_) => Ok(None),
            TerminalKey::AesDukpt(device) => device.next_counter(last).map(Some),
            TerminalKey::TdesDukpt(device) => device.next_counter(last).map(Some),
        };
        let counter = match reuse {
            Some(counter) => counter,
            None => match next(self.state.ksn_counter)? {
                Some(counter) => {
                    self.state.ksn_counter = counter;
                    self.save()?;
                    counter
                }
                None => return Ok(None),
            },
        };
        self.keys = Some(match &self.key {
            TerminalKey::Master(_) => return Ok(None),
            TerminalKey::AesDukpt(device) => WorkingKeys::aes_dukpt(device.transaction(counter)?),
            TerminalKey::TdesDukpt(device) => WorkingKeys::tdes_dukpt(device.transaction(counter)?),
        });
        Ok(Some(counter))
    }

    /// A MAC under the keys of a new message, for a request the terminal sends outside
    /// ISO 8583 (the wallet's terminal API, docs/wallet.md): master/session, X9.19 under the
    /// sign-on's MAC key; DUKPT, under the next counter's request key. `covered` makes the
    /// bytes to MAC from the KSN (hex; `None` for master/session), which the signed text
    /// includes. The terminal must be signed on.
    pub fn request_mac(
        &mut self,
        covered: impl FnOnce(Option<&str>) -> Vec<u8>,
    ) -> Result<RequestMac, PosError> {
        if !self.is_signed_on() {
            return Err(PosError::Refused(
                "the terminal is not signed on: sign on first".into(),
            ));
        }
        self.message_keys(None)?;
        let keys = self.keys.as_ref().ok_or_else(|| {
            PosError::Refused("the saved sign-on has no keys: sign on again".into())
        })?;
        let ksn = keys.ksn_hex();
        let mac = keys.mac(&covered(ksn.as_deref()));
        Ok(RequestMac { ksn, mac })
    }

    fn save(&self) -> Result<(), PosError> {
        Ok(self.dir.save(&self.state)?)
    }

    fn next_stan(&mut self) -> Result<Stan, PosError> {
        let value = self.state.next_stan();
        // Saved before use: a trace number is never sent twice for two messages.
        self.save()?;
        Stan::new(value).ok_or_else(|| PosError::Refused("trace number".into()))
    }

    /// Sends one frame on the open connection (opening it if needed), within `timeout`. A
    /// failed exchange drops the connection: the next one starts fresh.
    fn exchange(&mut self, frame: &[u8], timeout: Duration) -> Result<Vec<u8>, LinkError> {
        let link = match self.link.as_mut() {
            Some(link) => link,
            None => self.link.insert(Link::connect(&self.config.host)?),
        };
        let result = link.exchange(frame, timeout);
        if result.is_err() {
            self.link = None;
        }
        result
    }

    /// Sends a pending reversal (if any) and signs on (if not signed on): what must happen
    /// before any new transaction.
    pub fn ready(&mut self) -> Result<Readiness, PosError> {
        let mut readiness = Readiness::default();
        // One fresh connection per operation: a host closes idle connections, and a sale
        // written into a closed one would have to be reversed.
        self.link = None;
        if !self.is_signed_on() {
            let operator = self.operator.clone();
            self.sign_on(&operator)?;
            readiness.signed_on = true;
        }
        // A host that answers 58 (no session) or A0 (MAC) no longer holds this sign-on's
        // keys: sign on again and send once more.
        let mut attempts = 0;
        while self.state.pending_reversal.is_some() {
            attempts += 1;
            self.last_reversal_answer = None;
            match self.send_pending_reversal(self.config.timeout())? {
                ReversalStatus::Acknowledged => readiness.reversal_sent = true,
                ReversalStatus::Pending => {
                    let answer = self.last_reversal_answer;
                    if attempts == 1
                        && matches!(
                            answer,
                            Some(ResponseCode::NotPermittedToTerminal | ResponseCode::MacFailure)
                        )
                    {
                        let operator = self.operator.clone();
                        self.sign_on(&operator)?;
                        readiness.signed_on = true;
                        continue;
                    }
                    let stan = self
                        .state
                        .pending_reversal
                        .as_ref()
                        .map_or(0, |pending| pending.original_stan);
                    return Err(PosError::ReversalPending {
                        stan,
                        reason: match answer {
                            Some(code) => format!("the host answered {code}"),
                            None => "the host did not answer".into(),
                        },
                    });
                }
            }
        }
        Ok(readiness)
    }

    /// Sign-on (签到) by `operator`: new working keys and the batch number from the host.
    pub fn sign_on(&mut self, operator: &str) -> Result<u32, PosError> {
        let stan = self.next_stan()?;
        let mut request = self.terminal.sign_on(stan, operator)?;
        request.set_bytes(
            62,
            acquirer::parameters::version_field(self.config.parameters_version),
        );
        let frame = self.terminal.pack(&request)?;
        let reply = self.exchange(&frame, self.config.timeout())?;
        let answer = self.terminal.answer(&request, &reply, None)?;
        if !answer.response.is_approved() {
            return Err(PosError::SignOn(format!(
                "the host answered {}",
                answer.response
            )));
        }
        let batch = match &self.key {
            TerminalKey::Master(tmk) => {
                let signed = crate::WorkingKeys::from_sign_on(tmk, &answer.message)?;
                self.keys = Some(signed.keys);
                signed.batch
            }
            // No keys in the answer: each message's keys come from its KSN.
            TerminalKey::AesDukpt(_) | TerminalKey::TdesDukpt(_) => {
                crate::keys::sign_on_batch(&answer.message)?
            }
        };
        let field62 = answer
            .message
            .get(62)
            .map(|value| value.to_bytes().into_owned())
            .unwrap_or_default();
        self.state.batch = batch;
        self.state.session = Some(Session {
            field62_under_tmk: hex::encode_upper(field62),
            operator: operator.to_owned(),
            signed_on_at: (self.clock)(),
        });
        self.operator = operator.to_owned();
        self.save()?;
        if acquirer::parameters::download_requested(&answer.message) {
            self.download_parameters().map_err(|error| {
                PosError::SignOn(format!(
                    "signed on, but the parameter download the host asked for failed: {error}"
                ))
            })?;
        }
        Ok(batch)
    }

    /// Parameter download (0800, 60.3 = 360), MACed, after a sign-on answer asked for it: the
    /// set in the answer's field 62, taken only when the answer's MAC verifies, is kept in the
    /// state and used from now on (docs/protocol.md, "Parameter download").
    fn download_parameters(&mut self) -> Result<(), PosError> {
        self.message_keys(None)?;
        let stan = self.next_stan()?;
        let mut request = self.terminal.parameter_download(stan, self.state.batch)?;
        let keys = self
            .keys
            .as_ref()
            .ok_or_else(|| PosError::SignOn("no working keys".into()))?;
        let frame = self.terminal.pack_with_mac(&mut request, keys)?;
        let reply = self.exchange(&frame, self.config.timeout())?;
        let keys = self
            .keys
            .as_ref()
            .ok_or_else(|| PosError::SignOn("no working keys".into()))?;
        let answer = self.terminal.answer(&request, &reply, Some(keys))?;
        if !answer.response.is_approved() || !answer.maced {
            return Err(PosError::Refused(format!(
                "the host answered the parameter download {}",
                answer.response
            )));
        }
        let field62 = answer
            .message
            .get(62)
            .map(|value| value.to_bytes().into_owned())
            .unwrap_or_default();
        let parameters = acquirer::parameters::TerminalParameters::decode(&field62)
            .map_err(|error| PosError::Refused(format!("the host's parameters: {error}")))?;
        if let Some(newer) = self
            .config
            .with_parameters(&parameters)
            .map_err(PosError::Refused)?
        {
            self.config = newer;
        }
        self.state.parameters = Some(parameters);
        self.save()
    }

    /// Sign-off (签退): sends any pending reversal first, then tells the host to forget this
    /// sign-on's working keys, and forgets them here too. The next operation signs on again.
    pub fn sign_off(&mut self) -> Result<(), PosError> {
        if self.is_signed_on() {
            self.ready()?;
            let stan = self.next_stan()?;
            let request = self.terminal.sign_off(stan, self.state.batch)?;
            let frame = self.terminal.pack(&request)?;
            let reply = self.exchange(&frame, self.config.timeout())?;
            let answer = self.terminal.answer(&request, &reply, None)?;
            if !answer.response.is_approved() {
                return Err(PosError::SignOn(format!(
                    "the host answered the sign-off {}",
                    answer.response
                )));
            }
        }
        self.keys = None;
        self.state.session = None;
        self.save()
    }

    /// The PIN block of `pin` for the card `pan`, made at entry under the current PIN working
    /// key (signs on first if needed). The clear PIN goes no further.
    pub fn pin_block(&mut self, pin: &Pin, card: &CardFile) -> Result<PinBlock, PosError> {
        if !self.is_signed_on() {
            self.ready()?;
        }
        // AES DUKPT: the PIN block is made under the next counter's PIN key, and the
        // transaction that carries it uses the same KSN.
        if let Some(counter) = self.message_keys(None)? {
            self.pin_counter = Some(counter);
        }
        let keys = self
            .keys
            .as_ref()
            .ok_or_else(|| PosError::SignOn("no working keys".into()))?;
        Ok(keys.pin_block(pin, &card.data.pan()?)?)
    }

    /// Field 63 of a void or refund: `supervisor`'s number and password as a PIN block under
    /// the terminal's PIN key, built with the supervisor's staff account in place of a card
    /// number (docs/protocol.md, "Supervisor password").
    fn supervisor_field(&mut self, supervisor: &Supervisor) -> Result<String, PosError> {
        if !self.is_signed_on() {
            self.ready()?;
        }
        if self.pin_counter.is_none()
            && let Some(counter) = self.message_keys(None)?
        {
            self.pin_counter = Some(counter);
        }
        let refused = || {
            PosError::Refused(format!(
                "{:?} is no supervisor operator number (1 to 3 digits)",
                supervisor.operator_no
            ))
        };
        let account =
            acquirer::supervisor::staff_account(&self.config.merchant_id, &supervisor.operator_no)
                .ok_or_else(refused)?;
        let account = Pan::new(&account).map_err(|_| refused())?;
        let keys = self
            .keys
            .as_ref()
            .ok_or_else(|| PosError::SignOn("no working keys".into()))?;
        let block = keys.pin_block(&supervisor.password, &account)?;
        acquirer::supervisor::field63(&supervisor.operator_no, &block).ok_or_else(refused)
    }

    /// The pending reversal, sent (0400 the first time, 0401 after) and awaited within
    /// `timeout`. Delivered and answered 00: cleared. Otherwise it stays pending.
    fn send_pending_reversal(&mut self, timeout: Duration) -> Result<ReversalStatus, PosError> {
        let Some(pending) = self.state.pending_reversal.clone() else {
            return Ok(ReversalStatus::Acknowledged);
        };
        self.message_keys(None)?;
        let keys = self
            .keys
            .as_ref()
            .ok_or_else(|| PosError::SignOn("no working keys".into()))?;
        let repeat = pending.attempts > 0;
        let mut message = self.terminal.message(
            Mti::from_digits(if repeat { b"0401" } else { b"0400" })
                .map_err(|_| PosError::Refused("MTI".into()))?,
        );
        for (field, value) in &pending.fields {
            message.set_text(*field, value.clone());
        }
        let frame = self.terminal.pack_with_mac(&mut message, keys)?;
        if let Some(pending) = self.state.pending_reversal.as_mut() {
            pending.attempts += 1;
        }
        self.save()?;
        let reply = match self.exchange(&frame, timeout) {
            Ok(reply) => reply,
            Err(_) => return Ok(ReversalStatus::Pending),
        };
        let keys = self
            .keys
            .as_ref()
            .ok_or_else(|| PosError::SignOn("no working keys".into()))?;
        match self.terminal.answer(&message, &reply, Some(keys)) {
            Ok(answer) if answer.response.is_approved() => {
                self.state.pending_reversal = None;
                if let Some(entry) = self
                    .state
                    .transactions
                    .iter_mut()
                    .rev()
                    .find(|entry| entry.stan == pending.original_stan)
                {
                    entry.reversed = true;
                }
                self.save()?;
                Ok(ReversalStatus::Acknowledged)
            }
            Ok(answer) => {
                self.last_reversal_answer = Some(answer.response);
                Ok(ReversalStatus::Pending)
            }
            Err(_) => Ok(ReversalStatus::Pending),
        }
    }

    fn immediate_reversal_timeout(&self) -> Duration {
        self.config.timeout().min(IMMEDIATE_REVERSAL_TIMEOUT)
    }

    /// Saves the reversal of `request` as pending: its fields without card data.
    fn set_pending_reversal(
        &mut self,
        request: &Message<'_>,
        reason: ReversalReason,
    ) -> Result<(), PosError> {
        let mut reversal = self.terminal.reversal(request, false, reason)?;
        // The host finds the original by terminal, batch and trace number; the card number
        // stays out of the state file.
        reversal.remove(2);
        let fields = reversal
            .iter()
            .filter(|(field, _)| *field != 64)
            .map(|(field, value)| (field, value.to_text()))
            .collect();
        self.state.pending_reversal = Some(PendingReversal {
            fields,
            attempts: 0,
            original_stan: request.stan().map(|stan| stan.value()).unwrap_or(0),
        });
        self.save()
    }

    /// Replaces the pending reversal's reason (field 39).
    fn set_reversal_reason(&mut self, reason: ReversalReason) -> Result<(), PosError> {
        if let Some(pending) = self.state.pending_reversal.as_mut() {
            pending.fields.insert(39, reason.code().to_owned());
        }
        self.save()
    }

    /// A card transaction (steps 2 to 6 of the payment): reads the card, sends the message,
    /// reverses when needed, records it in the batch and returns the receipt.
    pub fn transact(&mut self, payment: Payment<'_>) -> Result<TransactionResult, PosError> {
        self.ready()?;
        self.check_method(&payment)?;
        let currency = self.config.currency().map_err(PosError::Refused)?;
        let original = self.original(&payment)?;
        let (read_kind, entry) = self.read_kind(&payment)?;
        let cvm = self.cvm(&payment, entry)?;
        if self.state.transactions.len() >= crate::state::MAX_BATCH_TRANSACTIONS
            && payment.kind != TransactionType::BalanceInquiry
        {
            return Err(PosError::Refused(
                "the batch is full: settle it first".into(),
            ));
        }
        let stan = self.next_stan()?;
        let now = (self.clock)();
        let (date, clock_time) = local_time(now, self.config.utc_offset_minutes);
        let amount_minor = if payment.kind.has_amount() {
            payment.amount_minor
        } else {
            0
        };

        // Step 2: the card. The chip's ATC is saved before its cryptogram leaves.
        let mut chip_card = None;
        let mut chip_read = None;
        if read_kind == ReadKind::Chip {
            let mut card = payment
                .card
                .data
                .chip_card()?
                .ok_or_else(|| PosError::Refused("this card has no chip".into()))?;
            let read = card.generate_arqc(&ChipTransaction {
                amount_minor,
                currency,
                country: self.config.country,
                date,
                unpredictable_number: rand::random(),
            })?;
            payment.card.record_atc(read.atc)?;
            chip_card = Some(card);
            chip_read = Some(read);
        }
        let pan = payment.card.data.pan()?;
        let read = match (&chip_read, read_kind) {
            (Some(read), _) => CardRead::Chip {
                field55: &read.field55,
                contactless: entry == Entry::Contactless,
            },
            (None, ReadKind::Stripe) => CardRead::Stripe {
                track2: &payment.card.data.track2,
                fallback: entry == Entry::FallbackSwipe,
            },
            (None, _) => CardRead::Number,
        };
        let supervisor = match &payment.supervisor {
            Some(supervisor)
                if matches!(
                    payment.kind,
                    TransactionType::Void | TransactionType::Refund
                ) =>
            {
                Some(self.supervisor_field(supervisor)?)
            }
            _ => None,
        };
        let mut request = self.terminal.card_request(&CardRequest {
            kind: payment.kind,
            stan,
            batch: self.state.batch,
            amount_minor,
            currency,
            pan: &pan,
            read,
            pin_block: payment.pin_block.as_ref(),
            original: original.as_ref(),
            supervisor: supervisor.as_deref(),
        })?;
        // A PIN block (the cardholder's, or the supervisor's) was made under the counter the
        // message must use (AES DUKPT).
        let pin_counter = self.pin_counter.take();
        let has_block = payment.pin_block.is_some() || supervisor.is_some();
        self.message_keys(pin_counter.filter(|_| has_block))?;
        let keys = self
            .keys
            .as_ref()
            .ok_or_else(|| PosError::SignOn("no working keys".into()))?;
        let frame = self.terminal.pack_with_mac(&mut request, keys)?;

        // Step 5: send, with the reversal saved first for anything that may move money.
        let reversible = payment.kind != TransactionType::BalanceInquiry;
        if reversible {
            self.set_pending_reversal(&request, ReversalReason::NoAnswer)?;
        }
        let receipt = self.draft_receipt(&Draft {
            payment: &payment,
            pan: &pan,
            entry,
            cvm,
            stan: stan.value(),
            date,
            clock_time,
            amount_minor,
            currency,
            original_stan: original.as_ref().map(|original| original.stan.value()),
        });
        let reply = match self.exchange(&frame, self.config.timeout()) {
            Ok(reply) => reply,
            Err(error) if !error.may_have_arrived() => {
                // Never left the terminal: nothing to reverse.
                self.state.pending_reversal = None;
                self.save()?;
                return Err(error.into());
            }
            Err(error) if !reversible => return Err(error.into()),
            Err(error) => return self.reverse_now(receipt, ReversalReason::NoAnswer, &error),
        };

        // Step 6: the answer, checked.
        let keys = self
            .keys
            .as_ref()
            .ok_or_else(|| PosError::SignOn("no working keys".into()))?;
        let answer = match self.terminal.answer(&request, &reply, Some(keys)) {
            Ok(answer) => answer,
            Err(error) if !reversible => return Err(error.into()),
            Err(error) => return self.reverse_now(receipt, ReversalReason::BadAnswerMac, &error),
        };
        let mut receipt = receipt;
        let mut approved = answer.response.is_approved();
        let mut message = response_words(answer.response);
        if approved
            && let (Some(card), Some(read), Some(issuer_data)) =
                (&chip_card, &chip_read, &answer.issuer_data)
        {
            let genuine = card
                .check_arpc(read, issuer_data)?
                .is_some_and(|check| check.genuine);
            if !genuine {
                // The card does not trust the issuer's answer: undo the approval.
                approved = false;
                message = "the card refused the issuer's authentication (ARPC)".into();
            }
        }
        receipt.response_code = answer.response.code().to_owned();
        receipt.approved = approved;
        receipt.rrn = answer.rrn.clone();
        receipt.auth_code = answer.auth_code.clone();
        receipt.verification = approved.then(|| answer.receipt_payload.clone()).flatten();
        if payment.kind == TransactionType::BalanceInquiry {
            receipt.balance = answer
                .message
                .get(54)
                .and_then(|value| balance_of(&value.to_text()));
        }
        let mut reversal = None;
        if answer.response.is_approved() && !approved && reversible {
            self.set_reversal_reason(ReversalReason::TerminalFailure)?;
            reversal = Some(self.send_pending_reversal(self.immediate_reversal_timeout())?);
        } else if reversible {
            self.state.pending_reversal = None;
        }
        self.record(&receipt, payment.kind, approved, reversal.is_some())?;
        // The host lets one follow-up undo or take an original: a sale is voided or refunded
        // once, a pre-authorization completed once.
        if approved
            && payment.kind.has_original()
            && let Some(original) = &original
            && let Some(entry) = self.state.transactions.iter_mut().rev().find(|entry| {
                entry.stan == original.stan.value()
                    && entry.batch == original.batch
                    && entry.kind != payment.kind
            })
        {
            entry.voided = true;
        }
        // A balance inquiry shows the balance on screen; the receipt to reprint stays the last
        // one that moved money.
        if approved && payment.kind != TransactionType::BalanceInquiry {
            self.state.last_receipt = Some(receipt.clone());
        }
        self.save()?;
        Ok(TransactionResult {
            approved,
            response_code: Some(answer.response.code().to_owned()),
            message,
            receipt,
            reversal,
        })
    }

    /// The receipt of a message about to be sent; the answer fills in the rest.
    fn draft_receipt(&self, draft: &Draft<'_, '_>) -> Receipt {
        let card = &draft.payment.card.data;
        let chip = card
            .chip
            .as_ref()
            .filter(|_| matches!(draft.entry, Entry::Chip | Entry::Contactless));
        let (date, (hours, minutes, seconds)) = (draft.date, draft.clock_time);
        Receipt {
            merchant_name: self.config.merchant_display_name().to_owned(),
            merchant_city: self.config.merchant_city.clone(),
            merchant_id: self.config.merchant_id.clone(),
            terminal_id: self.config.terminal_id.clone(),
            operator: self.operator.clone(),
            card: draft.pan.masked(),
            card_product: card.product.name().to_owned(),
            entry: draft.entry,
            transaction: draft.payment.kind,
            batch: self.state.batch,
            stan: draft.stan,
            date: format!("{:04}-{:02}-{:02}", date.year, date.month, date.day),
            time: format!("{hours:02}:{minutes:02}:{seconds:02}"),
            rrn: None,
            auth_code: None,
            amount_minor: draft.amount_minor,
            currency: draft.currency.alpha().to_owned(),
            amount: money::Amount::new(draft.amount_minor as i64, draft.currency).format_major(),
            response_code: String::new(),
            approved: false,
            cvm: draft.cvm,
            application_label: chip.map(|chip| chip.label.clone()),
            aid: chip.map(|chip| chip.aid.clone()),
            original_stan: draft.original_stan,
            balance: None,
            verification: None,
        }
    }

    /// The message's outcome is unknown (`error`: no answer, or one the terminal cannot
    /// trust): its pending reversal goes out now with `reason`, and stays pending if it cannot.
    fn reverse_now(
        &mut self,
        receipt: Receipt,
        reason: ReversalReason,
        error: &dyn std::fmt::Display,
    ) -> Result<TransactionResult, PosError> {
        self.set_reversal_reason(reason)?;
        let status = self.send_pending_reversal(self.immediate_reversal_timeout())?;
        self.record(&receipt, receipt.transaction, false, true)?;
        Ok(TransactionResult {
            approved: false,
            response_code: None,
            message: format!("{error}; the transaction was reversed"),
            receipt,
            reversal: Some(status),
        })
    }

    /// Adds a message the host answered (or that was reversed) to the open batch.
    fn record(
        &mut self,
        receipt: &Receipt,
        kind: TransactionType,
        approved: bool,
        reversed: bool,
    ) -> Result<(), PosError> {
        if kind == TransactionType::BalanceInquiry {
            return Ok(());
        }
        self.state.transactions.push(BatchEntry {
            kind,
            stan: receipt.stan,
            batch: receipt.batch,
            amount_minor: receipt.amount_minor,
            currency: receipt.currency.clone(),
            card: receipt.card.clone(),
            entry: receipt.entry,
            cvm: receipt.cvm,
            response_code: if approved {
                "00".into()
            } else if receipt.response_code.is_empty() || receipt.response_code == "00" {
                // No answer, or an approval the terminal did not accept.
                "--".into()
            } else {
                receipt.response_code.clone()
            },
            rrn: receipt.rrn.clone(),
            auth_code: receipt.auth_code.clone(),
            original_stan: receipt.original_stan,
            at: (self.clock)(),
            reversed,
            voided: false,
        });
        self.save()
    }

    /// The card's product must match the method the cashier chose.
    fn check_method(&self, payment: &Payment<'_>) -> Result<(), PosError> {
        let expected = match payment.method {
            Method::Debit => CardProduct::Debit,
            Method::Credit => CardProduct::Credit,
        };
        if payment.card.data.product != expected {
            return Err(PosError::Refused(format!(
                "this is a {} card; choose {} as the method",
                payment.card.data.product.name(),
                payment.card.data.product.name()
            )));
        }
        Ok(())
    }

    /// The original a follow-up names, from the open batch.
    fn original(&self, payment: &Payment<'_>) -> Result<Option<Original>, PosError> {
        if !payment.kind.has_original() {
            return Ok(None);
        }
        let stan = payment.original_stan.ok_or_else(|| {
            PosError::Refused(
                "a void, refund or completion needs the original's trace number".into(),
            )
        })?;
        let wanted = match payment.kind {
            TransactionType::Completion => TransactionType::PreAuthorization,
            _ => TransactionType::Sale,
        };
        let batch = payment.original_batch.unwrap_or(self.state.batch);
        let archived;
        let entries = if batch == self.state.batch {
            &self.state.transactions
        } else if payment.kind == TransactionType::Refund {
            archived = self.dir.archived_batch(batch)?;
            &archived
        } else {
            return Err(PosError::Refused(
                "only a refund names a sale of a closed batch; voids and completions are for the open batch"
                    .into(),
            ));
        };
        let entry = entries
            .iter()
            .rev()
            .find(|entry| entry.stan == stan && entry.kind == wanted && entry.approved())
            .ok_or_else(|| {
                PosError::Refused(format!(
                    "no approved {} with trace {stan:06} in batch {batch:06}",
                    wanted.name()
                ))
            })?;
        if entry.voided {
            return Err(PosError::Refused(format!(
                "trace {stan:06} was voided or completed already"
            )));
        }
        if payment.card.data.masked_pan() != entry.card {
            return Err(PosError::Refused(format!(
                "trace {stan:06} was paid with another card"
            )));
        }
        if payment.kind == TransactionType::Void && payment.amount_minor != entry.amount_minor {
            return Err(PosError::Refused(
                "a void is for the sale's whole amount".into(),
            ));
        }
        if payment.amount_minor > entry.amount_minor {
            return Err(PosError::Refused(format!(
                "the amount is above the original's {}",
                entry.amount_minor
            )));
        }
        Ok(Some(Original {
            batch: entry.batch,
            stan: Stan::new(stan).ok_or_else(|| PosError::Refused("trace number".into()))?,
            rrn: entry.rrn.clone(),
            auth_code: entry.auth_code.clone(),
        }))
    }

    /// How the card is read, from the presentation, the card and the terminal's rules,
    /// among the payment methods the acquirer allows on this terminal.
    fn read_kind(&self, payment: &Payment<'_>) -> Result<(ReadKind, Entry), PosError> {
        let (read, entry) = self.card_read(payment)?;
        let method = match entry {
            Entry::Chip => "chip",
            Entry::Contactless => "contactless",
            Entry::Swipe | Entry::FallbackSwipe => "swipe",
            Entry::Manual => return Ok((read, entry)),
        };
        if !self.config.allows(method) {
            return Err(PosError::Refused(format!(
                "the acquirer does not allow {method} payments on this terminal"
            )));
        }
        Ok((read, entry))
    }

    fn card_read(&self, payment: &Payment<'_>) -> Result<(ReadKind, Entry), PosError> {
        if !payment.kind.reads_chip() {
            return Ok((ReadKind::Number, Entry::Manual));
        }
        let card = &payment.card.data;
        match payment.presentation {
            Presentation::Insert => {
                if card.chip.is_none() {
                    return Err(PosError::Refused("this card has no chip: swipe it".into()));
                }
                Ok((ReadKind::Chip, Entry::Chip))
            }
            Presentation::Tap => {
                if !card.chip.as_ref().is_some_and(|chip| chip.contactless) {
                    return Err(PosError::Refused(
                        "this card cannot be tapped: insert it".into(),
                    ));
                }
                Ok((ReadKind::Chip, Entry::Contactless))
            }
            Presentation::Swipe => {
                if card.has_chip_by_service_code() {
                    if !payment.fallback {
                        return Err(PosError::Refused(
                            "this card has a chip: insert it (swipe only if the chip cannot be read)"
                                .into(),
                        ));
                    }
                    if !self.config.allow_fallback {
                        return Err(PosError::Refused(
                            "this terminal does not allow fallback to the stripe".into(),
                        ));
                    }
                    return Ok((ReadKind::Stripe, Entry::FallbackSwipe));
                }
                Ok((ReadKind::Stripe, Entry::Swipe))
            }
        }
    }

    /// The cardholder verification: PIN when entered; contactless under the limit needs
    /// none, above it a PIN; otherwise the cardholder signs.
    fn cvm(&self, payment: &Payment<'_>, entry: Entry) -> Result<Cvm, PosError> {
        if payment.pin_block.is_some() {
            return Ok(Cvm::PinVerified);
        }
        if entry == Entry::Contactless {
            let limit = self.config.cvm_limit_minor().map_err(PosError::Refused)?;
            if payment.amount_minor > limit {
                return Err(PosError::Refused(format!(
                    "a PIN is needed above the contactless limit of {}",
                    self.config.contactless_cvm_limit
                )));
            }
            return Ok(Cvm::NoCvm);
        }
        Ok(Cvm::Signature)
    }

    /// Batch settlement (批结算): the terminal's totals against the host's, debits and
    /// credits and per transaction type. When they disagree the terminal uploads each
    /// transaction it counted (批上送, 0320) and settles again, so the host can find and
    /// report each difference. When the host closes the batch (agreed or resolved), the
    /// batch is archived beside the state, emptied, and the terminal signs on again for the
    /// next batch number.
    pub fn settle(&mut self) -> Result<SettlementResult, PosError> {
        self.ready()?;
        let currency = self.config.currency().map_err(PosError::Refused)?;
        let totals = self.state.totals();
        let batch = self.state.batch;
        let mut reconciliation = self.send_settlement(currency)?;
        let agreed = reconciliation == Reconciliation::Agreed;
        let mut uploaded = 0;
        if reconciliation == Reconciliation::Disagreed {
            let entries: Vec<BatchEntry> = self.state.counted().cloned().collect();
            for entry in &entries {
                let stan = self.next_stan()?;
                let request = self.terminal.batch_upload(stan, currency, entry)?;
                let frame = self.terminal.pack(&request)?;
                let reply = self.exchange(&frame, self.config.timeout())?;
                let answer = self.terminal.answer(&request, &reply, None)?;
                if !answer.response.is_approved() {
                    return Err(PosError::Refused(format!(
                        "the host answered the upload of trace {:06} with {}",
                        entry.stan, answer.response
                    )));
                }
                uploaded += 1;
            }
            reconciliation = self.send_settlement(currency)?;
        }
        let closed = reconciliation != Reconciliation::Disagreed;
        if closed {
            self.dir.archive_batch(batch, &self.state.transactions)?;
            self.state.transactions.clear();
            self.state.session = None;
            self.keys = None;
            self.save()?;
            let operator = self.operator.clone();
            self.sign_on(&operator)?;
        }
        Ok(SettlementResult {
            agreed,
            closed,
            reconciliation,
            uploaded,
            batch,
            debit_count: totals.debit_count,
            debit_minor: totals.debit_minor,
            credit_count: totals.credit_count,
            credit_minor: totals.credit_minor,
            currency: currency.alpha().to_owned(),
        })
    }

    /// One 0500 with the open batch's totals; what the host's answer says.
    fn send_settlement(&mut self, currency: money::Currency) -> Result<Reconciliation, PosError> {
        let stan = self.next_stan()?;
        let request = self.terminal.settlement(
            stan,
            self.state.batch,
            currency,
            &self.state.totals(),
            self.state.totals_by_type(),
            &format!("{:0>3}", self.operator),
        )?;
        let frame = self.terminal.pack(&request)?;
        let reply = self.exchange(&frame, self.config.timeout())?;
        let answer = self.terminal.answer(&request, &reply, None)?;
        if !answer.response.is_approved() {
            return Err(PosError::Refused(format!(
                "the host answered the settlement {}",
                answer.response
            )));
        }
        settlement_reconciliation(&answer.message).ok_or_else(|| {
            PosError::Terminal(TerminalError::Answer(
                "to a settlement carries no reconciliation code in field 48".into(),
            ))
        })
    }

    /// The last approved receipt, for a reprint.
    pub fn last_receipt(&self) -> Option<&Receipt> {
        self.state.last_receipt.as_ref()
    }
}

/// What a receipt is drafted from, before the answer.
struct Draft<'a, 'b> {
    payment: &'a Payment<'b>,
    pan: &'a paycrypto::Pan,
    entry: Entry,
    cvm: Cvm,
    stan: u32,
    date: TransactionDate,
    clock_time: (u8, u8, u8),
    amount_minor: u64,
    currency: money::Currency,
    original_stan: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadKind {
    Chip,
    Stripe,
    Number,
}

fn session_keys(tmk: &TdesKey, session: &Session) -> Result<WorkingKeys, PosError> {
    let field62 = hex::decode(&session.field62_under_tmk)
        .map_err(|_| PosError::Refused("the saved sign-on is damaged: sign on again".into()))?;
    Ok(WorkingKeys::from_field62(tmk, &field62)?)
}

/// The available balance of field 54 (account type 2, amount type 2, currency 3, C/D, 12
/// digits), in major units.
fn balance_of(field54: &str) -> Option<String> {
    let currency = money::Currency::from_numeric(field54.get(4..7)?.parse().ok()?).ok()?;
    let sign = match field54.get(7..8)? {
        "C" => 1,
        "D" => -1,
        _ => return None,
    };
    let minor: i64 = field54.get(8..20)?.parse().ok()?;
    Some(money::Amount::new(sign * minor, currency).format_major())
}

/// A PIN from one line of `reader` (a script's standard input), read into memory that is
/// wiped afterwards; `None` when the line is not 4 to 12 digits.
pub fn read_pin_line(reader: &mut impl std::io::BufRead) -> std::io::Result<Option<Pin>> {
    let mut line = zeroize::Zeroizing::new(String::new());
    reader.read_line(&mut line)?;
    Ok(Pin::new(line.trim()).ok())
}

/// The result in plain words, for the cashier and the cardholder.
pub fn response_words(code: ResponseCode) -> String {
    let words = match code {
        ResponseCode::Approved => "Approved",
        ResponseCode::IncorrectPin => "Wrong PIN: ask the cardholder to try again",
        ResponseCode::PinTriesExceeded => "PIN tries exceeded: the card is locked for PINs",
        ResponseCode::InsufficientFunds => "Declined: not enough money on the card",
        ResponseCode::ExpiredCard => "Declined: the card has expired",
        ResponseCode::RestrictedCard | ResponseCode::LostCard | ResponseCode::StolenCard => {
            "Declined: the card cannot be used; the cardholder should call the bank"
        }
        ResponseCode::ExceedsAmountLimit => "Declined: over the card's daily limit",
        ResponseCode::DoNotHonor => "Declined by the card's bank",
        ResponseCode::InvalidAmount => "Declined: the amount is not allowed",
        ResponseCode::UnableToLocateRecord => "Declined: the original transaction was not found",
        ResponseCode::NotPermittedToTerminal => {
            "This terminal is not allowed to do that: sign on again"
        }
        ResponseCode::IssuerInoperative => "The card's bank cannot be reached: try again later",
        ResponseCode::SystemMalfunction => "The system failed: try again",
        ResponseCode::MacFailure => "Security check failed: sign on again",
        other => return format!("Declined: {}", other.meaning()),
    };
    words.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_turns_unix_seconds_into_a_calendar_date() {
        // 2026-11-25 20:31:05 UTC is 1 795 638 665; China is UTC+8.
        let (date, time) = local_time(1_795_638_665, 0);
        assert_eq!((date.year, date.month, date.day), (2026, 11, 25));
        assert_eq!(time, (20, 31, 5));
        let (date, time) = local_time(1_795_638_665, 480);
        assert_eq!((date.year, date.month, date.day), (2026, 11, 26));
        assert_eq!(time, (4, 31, 5));
        let (date, _) = local_time(951_782_400, 0); // 2000-02-29
        assert_eq!((date.year, date.month, date.day), (2000, 2, 29));
    }

    #[test]
    fn field_54_gives_the_balance() {
        assert_eq!(
            balance_of("1002156C000000500000").as_deref(),
            Some("5000.00")
        );
        assert_eq!(
            balance_of("3002156D000000001234").as_deref(),
            Some("-12.34")
        );
        assert_eq!(balance_of("10021"), None);
    }
}
