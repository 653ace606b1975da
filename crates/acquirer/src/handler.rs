//! The acquirer host's [`host::Handler`]: unpack, recognise, check the terminal, answer.
//!
//! What it answers today:
//! - echo tests: 00;
//! - sign-on (60.3 = 003): 00 with new double-length TDES working PIN and MAC keys in field
//!   62, each encrypted under the terminal's master key with a 4-byte check value (PIK 16 ‖
//!   check 4 ‖ MAK 16 ‖ check 4), generated inside the HSM and recorded for the terminal with
//!   the operator of field 63 and its batch in 60.2; single-length keys (001) are refused with
//!   12 (single DES is obsolete), keys with a data key (004) with 40;
//! - a terminal sending faster than `TERMINAL_RATE_PER_SECOND` (burst `TERMINAL_RATE_BURST`):
//!   65, before anything else is looked at;
//! - every message from an unknown or inactive terminal: 58; with another merchant's id: 03;
//! - a MACed (financial) message from a terminal that has not signed on: 58; whose field 64
//!   does not verify under the terminal's MAC key (see [`crate::mac`]): A0;
//! - messages that do not fit their type: 30 naming the field; unknown ones: 12;
//! - sales (0200, 60.1 = 22): authorized end to end (see `sale.rs`);
//! - balance inquiries: the same card checks, field 54 with the available balance;
//! - pre-authorizations (a hold, see `sale.rs`), their completions and voids (see
//!   `completion.rs`);
//! - voids of sales in the open batch and refunds (see `undo.rs`), once per sale;
//! - reversals (0400/0401) of every message that posts (see `reversal.rs`), exactly once;
//! - completion voids (see `completion.rs`);
//! - the sign-on answer asks for a parameter download (header) when the terminal's parameter
//!   version (field 62 of its sign-on) is not the host's; the download (0800, 60.3 = 360),
//!   MACed, gets the parameter set in field 62, MACed (see `parameters.rs`);
//! - sign-off (0820, 60.3 = 002): the working keys are forgotten; batch settlement (0500) and
//!   batch upload (0320) (see `settlement.rs`);
//! - a duplicate of a financial message already answered: the original answer, from the
//!   journal (see `journal.rs`);
//! - other messages it recognises: 40 ("function not supported").
//!
//! Every message and its answer is recorded in the journal before the answer leaves.
//!
//! Frames that do not unpack cannot be answered, and their connection is closed.

use crate::journal::Earlier;
use crate::keys::MessageKeys;
use crate::mac::{mac_parts, pack_with_mac};
use crate::message::{MessageType, Reject, Request, response_to};
use crate::parameters::TerminalParameters;
use crate::sale::Answer;
use crate::undo::Undo;
use host::{Handler, Reply};
use hsm::{Hsm, KeySpec, KeyToken};
use iso8583::{Message, Profile, ResponseCode};
use issuer::TransactionKind;
use ledger::{AccountId, InstitutionId, TransferRequest};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use store::Store;
use store::directory::SignOn;
use store::directory::TerminalSession;

/// Messages a terminal may send per second, with a burst. A countertop POS sends a few per
/// minute; a bench or a stuck retry loop sends far more, and is answered 65 beyond this.
pub const TERMINAL_RATE_PER_SECOND: u32 = 50;
pub const TERMINAL_RATE_BURST: u32 = 100;
/// Terminals tracked by the rate limiter at once (idle ones are forgotten first).
const MAX_RATE_LIMITED_TERMINALS: usize = 100_000;

/// Bytes of each check value in the sign-on response (UnionPay terminals commonly take 4).
const CHECK_VALUE_BYTES: usize = 4;
/// 60.3 of a sign-on asking for double-length TDES PIN and MAC keys.
const SIGN_ON_DOUBLE_LENGTH: &str = "003";

/// Which side of the switch link a handler serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The acquirer host: terminals in `cup-bcd`, every check, both institutions' books when the
    /// card's issuer is in-process, only the acquirer's when it is remote.
    Acquirer,
    /// An issuer host: authorization requests and advices from acquirers over the switch link
    /// (`iso87-ascii`), the issuer's books only (see `issuing.rs`).
    Issuer,
}

/// How long a terminal id the store did not know is refused without asking it again.
pub const UNKNOWN_TERMINAL_TTL: std::time::Duration = std::time::Duration::from_secs(2);
/// Most unknown terminal ids remembered (past this the memory starts again).
const MAX_UNKNOWN_TERMINALS: usize = 10_000;

/// What the host knows of a terminal for its checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerminalRecord {
    pub merchant_id: String,
    pub active: bool,
    /// The merchant's acquirer and the acquirer's account that owes the merchant its takings.
    pub acquirer: InstitutionId,
    pub merchant_payable: AccountId,
    /// The merchant's category code (ISO 18245) for the risk rules, 0 when it has none that
    /// reads as a number (no MCC rule lists 0000). Kept with the terminal so that a merchant
    /// onboarded after start, or through another host, is screened by its category.
    pub mcc: u16,
}

impl TerminalRecord {
    /// The record of `terminal`, of `merchant`.
    pub fn new(
        terminal: &store::directory::Terminal,
        merchant: &store::directory::Merchant,
    ) -> TerminalRecord {
        TerminalRecord {
            merchant_id: merchant.id.clone(),
            active: terminal.status == "active",
            acquirer: merchant.acquirer,
            merchant_payable: merchant.settlement_account,
            mcc: merchant.mcc.parse().unwrap_or(0),
        }
    }

    /// Every terminal of `directory`, with its merchant's acquirer and payable account (a
    /// terminal whose merchant is missing is left out).
    pub fn from_directory(
        directory: &store::directory::Directory,
    ) -> HashMap<String, TerminalRecord> {
        let merchants: HashMap<&str, &store::directory::Merchant> = directory
            .merchants
            .iter()
            .map(|merchant| (merchant.id.as_str(), merchant))
            .collect();
        directory
            .terminals
            .iter()
            .filter_map(|terminal| {
                let merchant = merchants.get(terminal.merchant_id.as_str())?;
                Some((terminal.id.clone(), TerminalRecord::new(terminal, merchant)))
            })
            .collect()
    }
}

/// Counters of what the handler answered, for `/metrics`.
#[derive(Debug, Default)]
pub struct HandlerCounters {
    pub answered: AtomicU64,
    pub rejected: AtomicU64,
    pub unparsable: AtomicU64,
    pub sign_ons: AtomicU64,
    pub mac_failures: AtomicU64,
    /// DUKPT messages whose KSN counter was not above the last accepted (answered 63).
    pub ksn_replays: AtomicU64,
    pub rate_limited: AtomicU64,
    /// Duplicates answered from the journal.
    pub duplicates: AtomicU64,
    /// Messages the journal could not record (answered all the same).
    pub journal_failures: AtomicU64,
    /// Messages not decided in time, answered 96 (see `saf.rs`).
    pub late_answers: AtomicU64,
    /// Reversals the host queued itself and forwarded until acknowledged.
    pub reversals_forwarded: AtomicU64,
    /// Risk cases dropped because the case writer's queue was full (see `cases.rs`).
    pub cases_dropped: AtomicU64,
}

pub struct TerminalHandler {
    pub(crate) profile: &'static Profile,
    /// Terminals by id, changed while the host runs when onboarding activates a terminal or
    /// an operator stops one ([`TerminalHandler::set_terminal`]).
    terminals: std::sync::RwLock<HashMap<String, Arc<TerminalRecord>>>,
    /// Terminal ids the store did not know either, and since when ([`Self::load_terminal`]).
    unknown_terminals: std::sync::Mutex<HashMap<String, std::time::Instant>>,
    /// Parameter sets by terminal id, set by onboarding ([`TerminalHandler::set_parameters`]);
    /// a terminal without one is configured by hand and never asked to download.
    parameters: std::sync::RwLock<HashMap<String, Arc<TerminalParameters>>>,
    pub(crate) store: Arc<Store>,
    pub(crate) hsm: Arc<dyn Hsm>,
    /// Key tokens by name: loaded on first use and again when a name is missing (a key added
    /// since), so the authorization path reads no key table.
    keys: std::sync::RwLock<std::collections::BTreeMap<String, KeyToken>>,
    /// Messages per terminal id (field 41).
    rate: std::sync::Mutex<Option<host::RateLimiter<String>>>,
    pub counters: HandlerCounters,
    /// How long a message may take to decide before it is answered 96.
    answer_within: std::time::Duration,
    /// How long a queued reversal waits before its first attempt.
    pub(crate) reversal_grace: std::time::Duration,
    pub(crate) role: Role,
    /// Issuers reached over the switch link, by institution (see `switch.rs`).
    pub(crate) switch: crate::switch::Switch,
    /// The acquirer's risk rules, when configured (see `sale.rs`, step 3½).
    pub(crate) risk: Option<RiskGate>,
    /// Emergency freezes, shared with the API that sets them (see `sale.rs`, step 1½).
    pub(crate) freezes: Arc<risk::Freezes>,
    /// Signs with the acquirer's receipt keys, in batches: an approved sale's answer carries
    /// the signed receipt statement in field 62 (see `sale.rs`, step 6).
    pub(crate) receipts: Option<Arc<aftersale::ReceiptBatcher>>,
    /// Where cases from the risk rules go (see `cases.rs`); `None`: no cases.
    pub(crate) cases: Option<tokio::sync::mpsc::Sender<store::cases::NewCase>>,
    /// The operator signed on at each terminal, as last read with its session (MAC check,
    /// sign-on), so the journal records who keyed each message without another read. Bounded
    /// by the directory's terminals: unknown terminals are refused before.
    operators: std::sync::Mutex<HashMap<String, String>>,
    /// Where each supervisor's terminal password is used (the insider alert on an unusual
    /// terminal; see `supervisor.rs`).
    pub(crate) supervisors: std::sync::Mutex<risk::insider::SupervisorWatch>,
}

/// The risk engine (the merchant's category code is in its terminal's record).
#[derive(Debug)]
pub(crate) struct RiskGate {
    pub engine: Arc<risk::Engine>,
}

impl std::fmt::Debug for TerminalHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalHandler")
            .field(
                "terminals",
                &self.terminals.read().map(|terminals| terminals.len()).ok(),
            )
            .field("counters", &self.counters)
            .finish()
    }
}

impl TerminalHandler {
    pub fn new(
        profile: &'static Profile,
        terminals: HashMap<String, TerminalRecord>,
        store: Arc<Store>,
        hsm: Arc<dyn Hsm>,
    ) -> Self {
        TerminalHandler {
            profile,
            terminals: std::sync::RwLock::new(
                terminals
                    .into_iter()
                    .map(|(id, record)| (id, Arc::new(record)))
                    .collect(),
            ),
            parameters: std::sync::RwLock::default(),
            unknown_terminals: std::sync::Mutex::default(),
            store,
            hsm,
            keys: std::sync::RwLock::default(),
            rate: std::sync::Mutex::new(
                host::Rate::new(TERMINAL_RATE_PER_SECOND, TERMINAL_RATE_BURST)
                    .and_then(|rate| host::RateLimiter::new(rate, MAX_RATE_LIMITED_TERMINALS))
                    .ok(),
            ),
            counters: HandlerCounters::default(),
            answer_within: crate::saf::ANSWER_WITHIN,
            reversal_grace: crate::saf::REVERSAL_GRACE,
            role: Role::Acquirer,
            switch: crate::switch::Switch::default(),
            risk: None,
            freezes: Arc::new(risk::Freezes::new()),
            receipts: None,
            cases: None,
            operators: std::sync::Mutex::default(),
            supervisors: std::sync::Mutex::default(),
        }
    }

    /// Remembers who is signed on at `terminal_id` (`None`: nobody).
    fn note_operator(&self, terminal_id: &str, operator: Option<&str>) {
        let mut operators = self
            .operators
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match operator
            .map(str::trim)
            .filter(|operator| !operator.is_empty())
        {
            Some(operator) if operators.get(terminal_id).map(String::as_str) != Some(operator) => {
                operators.insert(terminal_id.to_owned(), operator.to_owned());
            }
            Some(_) => {}
            None => {
                operators.remove(terminal_id);
            }
        }
    }

    pub(crate) fn operator_at(&self, terminal_id: &str) -> Option<String> {
        self.operators
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(terminal_id)
            .cloned()
    }

    /// Opens a case (through `cases`, written by [`crate::cases::write_cases`]) whenever the
    /// risk rules alert, put up for review or decline.
    pub fn with_cases(mut self, cases: tokio::sync::mpsc::Sender<store::cases::NewCase>) -> Self {
        self.cases = Some(cases);
        self
    }

    /// Hands the case of `assessment`, if any, to the case writer without waiting.
    pub(crate) fn report_case(
        &self,
        assessment: &risk::Assessment,
        merchant_id: &str,
        terminal_id: &str,
        card_id: &str,
        now_ms: i64,
    ) {
        let Some(cases) = &self.cases else { return };
        let Some(case) =
            crate::cases::case_of(assessment, merchant_id, terminal_id, card_id, now_ms)
        else {
            return;
        };
        if cases.try_send(case).is_err() {
            self.count_dropped_case();
        }
    }

    pub(crate) fn count_dropped_case(&self) {
        self.counters.cases_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Signs every approved sale's receipt statement with `keys` and sends it to the terminal
    /// in field 62 of the answer, for the receipt's QR code (docs/aftersale.md).
    /// Approvals answered together share one signature (`aftersale::ReceiptBatcher`).
    pub fn with_receipts(mut self, keys: Arc<aftersale::ReceiptKeys>) -> Self {
        self.receipts = Some(Arc::new(aftersale::ReceiptBatcher::new(keys)));
        self
    }

    /// Declines every authorization of a terminal, merchant or card frozen in `freezes`
    /// (58 for a terminal or merchant, 62 for a card), from the next message on.
    pub fn with_freezes(mut self, freezes: Arc<risk::Freezes>) -> Self {
        self.freezes = freezes;
        self
    }

    /// The receipt keys this handler signs with, to share with the API and console that verify
    /// and rotate them.
    pub fn receipts(&self) -> Option<Arc<aftersale::ReceiptKeys>> {
        self.receipts.as_ref().map(|batcher| batcher.keys().clone())
    }

    /// Receipt statements signed so far and the signatures they took (`None`: no signing).
    pub fn receipt_stats(&self) -> Option<aftersale::BatchStats> {
        self.receipts.as_ref().map(|batcher| batcher.stats())
    }

    /// The freezes this handler honours, to share with whatever sets them (the API).
    pub fn freezes(&self) -> Arc<risk::Freezes> {
        self.freezes.clone()
    }

    /// The risk engine, to share with what puts new rules versions in force (the host's
    /// store poll).
    pub fn risk_engine(&self) -> Option<Arc<risk::Engine>> {
        self.risk.as_ref().map(|gate| gate.engine.clone())
    }

    /// Evaluates `engine`'s rules for every sale, pre-authorization and balance inquiry before
    /// the issuer decides, and for every void and refund before it is given back.
    pub fn with_risk(mut self, engine: Arc<risk::Engine>) -> Self {
        self.risk = Some(RiskGate { engine });
        self
    }

    /// An issuer host: it answers acquirers' `iso87-ascii` messages for the cards in `store`,
    /// posting the issuer's side of each (see `issuing.rs`).
    pub fn issuer(store: Arc<Store>, hsm: Arc<dyn Hsm>) -> Self {
        let profile = Profile::builtin("iso87-ascii")
            .unwrap_or_else(|_| unreachable!("iso87-ascii is a built-in profile"));
        let mut handler = Self::new(profile, HashMap::new(), store, hsm);
        handler.role = Role::Issuer;
        handler
    }

    /// Sends the messages of cards whose issuer is `institution` to a remote issuer host.
    /// `bins` are the first six digits of the institution's card numbers.
    pub fn with_remote_issuer(
        mut self,
        institution: InstitutionId,
        issuer: crate::switch::RemoteIssuer,
        bins: impl IntoIterator<Item = String>,
    ) -> Self {
        self.switch.add(institution, issuer, bins);
        self
    }

    /// Keeps the transfers of the books this handler keeps: both institutions' for an
    /// in-process issuer; for an issuer host, the issuer's of a two-sided posting (the first of
    /// the pair: the second, the merchant's side, is a posted transfer in the acquirer's books),
    /// with whatever follows the pair in these books (a reversal's mark, a hold placed again).
    pub(crate) fn own(&self, mut transfers: Vec<TransferRequest>) -> Vec<TransferRequest> {
        if self.role == Role::Issuer {
            if transfers
                .get(1)
                .is_some_and(|second| matches!(second.kind, ledger::TransferKind::Posted { .. }))
            {
                transfers.remove(1);
            }
            // The last transfer closes its chain.
            if let Some(last) = transfers.last_mut() {
                last.linked = false;
            }
        }
        transfers
    }

    /// Answers 96 (and reverses) when a message takes longer than `limit` to decide.
    pub fn with_answer_within(mut self, limit: std::time::Duration) -> Self {
        self.answer_within = limit;
        self
    }

    /// Lifts the per-terminal message rate (65 above it): for tests and load tools that play
    /// one terminal far faster than a real one sends.
    pub fn without_terminal_rate(self) -> Self {
        if let Ok(mut rate) = self.rate.lock() {
            *rate = None;
        }
        self
    }

    /// Lets a reversal queued by the host wait `grace` before its first attempt.
    pub fn with_reversal_grace(mut self, grace: std::time::Duration) -> Self {
        self.reversal_grace = grace;
        self
    }

    /// The record of an active terminal.
    pub(crate) fn terminal(&self, terminal_id: &str) -> Option<Arc<TerminalRecord>> {
        self.terminals
            .read()
            .ok()
            .and_then(|terminals| terminals.get(terminal_id.trim()).cloned())
    }

    /// Forgets the cached token of key `name` (a terminal's master key replaced by a forced
    /// key change): the next use reads the new one from the store.
    pub fn forget_key(&self, name: &str) {
        if let Ok(mut keys) = self.keys.write() {
            keys.remove(name);
        }
    }

    /// Adds or replaces a terminal while the host runs (an activation, a terminal reported
    /// lost): its next message is checked against `record`.
    pub fn set_terminal(&self, terminal_id: &str, record: TerminalRecord) {
        if let Ok(mut terminals) = self.terminals.write() {
            terminals.insert(terminal_id.trim().to_owned(), Arc::new(record));
        }
    }

    /// Sets a terminal's parameter set while the host runs (an operator changed it): the
    /// terminal's next sign-on is asked to download it when its version is another.
    pub fn set_parameters(&self, terminal_id: &str, parameters: TerminalParameters) {
        if let Ok(mut sets) = self.parameters.write() {
            sets.insert(terminal_id.trim().to_owned(), Arc::new(parameters));
        }
    }

    fn parameters_of(&self, terminal_id: &str) -> Option<Arc<TerminalParameters>> {
        self.parameters
            .read()
            .ok()
            .and_then(|sets| sets.get(terminal_id.trim()).cloned())
    }

    /// Whether the terminal is within its message rate (a poisoned or missing limiter lets the
    /// message through: the limiter protects capacity, it must not stop payments by itself).
    fn within_rate(&self, terminal_id: &str) -> bool {
        match self.rate.lock() {
            Ok(mut guard) => match guard.as_mut() {
                Some(limiter) => limiter
                    .check(terminal_id.trim().to_owned(), std::time::Instant::now())
                    .is_ok(),
                None => true,
            },
            Err(_) => true,
        }
    }

    /// The token of the key named `name`.
    pub(crate) async fn key(&self, name: &str) -> Result<KeyToken, ResponseCode> {
        if let Some(token) = self
            .keys
            .read()
            .ok()
            .and_then(|keys| keys.get(name).cloned())
        {
            return Ok(token);
        }
        let loaded = self
            .store
            .keys()
            .await
            .map_err(|_| ResponseCode::SystemMalfunction)?;
        let mut keys = self
            .keys
            .write()
            .map_err(|_| ResponseCode::SystemMalfunction)?;
        *keys = loaded
            .into_iter()
            .map(|key| (key.name, KeyToken::new(key.token)))
            .collect();
        keys.get(name).cloned().ok_or_else(|| {
            tracing::error!(key = name, "key missing");
            ResponseCode::SystemMalfunction
        })
    }

    /// The record of a terminal this host does not know yet, read from the store: one made or
    /// activated through another host sharing the database signs on here at once, before
    /// this host follows the change (`onboarding::follow`). An id the store does not know
    /// either is remembered for [`UNKNOWN_TERMINAL_TTL`], so a stream of messages from
    /// unknown terminals costs one read per id, not one per message. A store that cannot be
    /// read is a system malfunction (96, the terminal may try again), not an unknown terminal.
    async fn load_terminal(
        &self,
        terminal_id: &str,
    ) -> Result<Option<Arc<TerminalRecord>>, ResponseCode> {
        let terminal_id = terminal_id.trim();
        let now = std::time::Instant::now();
        if let Ok(unknown) = self.unknown_terminals.lock()
            && unknown
                .get(terminal_id)
                .is_some_and(|since| now.duration_since(*since) < UNKNOWN_TERMINAL_TTL)
        {
            return Ok(None);
        }
        match self.store.terminal_with_merchant(terminal_id).await {
            Ok(Some((terminal, merchant))) => {
                let record = TerminalRecord::new(&terminal, &merchant);
                tracing::info!(terminal = %terminal_id, active = record.active, "terminal read from the store");
                self.set_terminal(terminal_id, record);
                Ok(self.terminal(terminal_id))
            }
            Ok(None) => {
                if let Ok(mut unknown) = self.unknown_terminals.lock() {
                    if unknown.len() >= MAX_UNKNOWN_TERMINALS {
                        unknown.clear();
                    }
                    unknown.insert(terminal_id.to_owned(), now);
                }
                Ok(None)
            }
            Err(error) => {
                tracing::error!(%error, "cannot read a terminal from the store");
                Err(ResponseCode::SystemMalfunction)
            }
        }
    }

    async fn check_terminal(&self, request: &Request) -> Result<Arc<TerminalRecord>, ResponseCode> {
        let known = match self.terminal(&request.terminal_id) {
            Some(terminal) => Some(terminal),
            None => self.load_terminal(&request.terminal_id).await?,
        };
        match known {
            None => Err(ResponseCode::NotPermittedToTerminal),
            Some(terminal) if !terminal.active => Err(ResponseCode::NotPermittedToTerminal),
            Some(terminal) if terminal.merchant_id != request.merchant_id.trim() => {
                Err(ResponseCode::InvalidMerchant)
            }
            Some(terminal) => Ok(terminal),
        }
    }

    /// The answer to a request classified as `kind`, before packing.
    async fn respond(
        &self,
        frame: &[u8],
        message: &Message<'_>,
        kind: Result<MessageType, Reject>,
    ) -> Option<Answer> {
        if self.role == Role::Issuer {
            return self.respond_as_issuer(message, kind).await;
        }
        let parsed =
            kind.and_then(|kind| Request::parse_classified(kind, self.profile, message, true));
        let request = match parsed {
            Ok(request) => request,
            Err(reject) => {
                tracing::info!(field = ?reject.field, response = reject.response.code(), "request rejected: {}", reject.reason);
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                return Answer::plain(message, reject.response);
            }
        };
        if !self.within_rate(&request.terminal_id) {
            self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            return Answer::plain(message, ResponseCode::ExceedsFrequencyLimit);
        }
        let terminal = match self.check_terminal(&request).await {
            Ok(terminal) => terminal,
            Err(refusal) => return Answer::plain(message, refusal),
        };
        match request.kind {
            MessageType::EchoTest => Answer::plain(message, ResponseCode::Approved),
            MessageType::SignOn => self.sign_on(message, &request).await.map(|message| Answer {
                message,
                mac: None,
                risk: None,
                card_id: None,
                card_verification: None,
            }),
            MessageType::ParameterDownload => match self.check_mac(frame, &request).await {
                Ok(keys) => match self.accept_ksn(&keys, request.terminal_id.trim()).await {
                    Ok(()) => self.parameter_download(message, &request, keys),
                    Err(refusal) => Answer::plain(message, refusal),
                },
                Err(refusal) => Answer::plain(message, refusal),
            },
            MessageType::SignOff => self.sign_off(message, &request).await,
            MessageType::BatchSettlement => self.batch_settlement(message, &request).await,
            MessageType::BatchUpload => self.batch_upload(message, &request).await,
            // A duplicate (the same message again, MAC and all) gets its original answer
            // before the KSN check: its counter is not new, and it changes nothing.
            kind if kind.is_maced() => match self.check_mac(frame, &request).await {
                Ok(keys) => match self.earlier_answer(message, &request, &keys).await {
                    Earlier::Answered(answer) => {
                        self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                        Some(*answer)
                    }
                    Earlier::Seen if self.reversed_by_the_host(kind, message, &request).await => {
                        Answer::plain(message, ResponseCode::DuplicateTransmission)
                    }
                    Earlier::Seen | Earlier::New => {
                        match self.accept_ksn(&keys, request.terminal_id.trim()).await {
                            Ok(()) => {
                                self.financial(kind, message, &request, &terminal, &keys)
                                    .await
                            }
                            Err(refusal) => Answer::plain(message, refusal),
                        }
                    }
                },
                Err(refusal) => Answer::plain(message, refusal),
            },
            _ => Answer::plain(message, ResponseCode::FunctionNotSupported),
        }
    }

    /// An acquirer's message over the switch link: no terminal, rate or MAC checks (the link
    /// is between institutions), the PIN block already under this issuer's zone key.
    async fn respond_as_issuer(
        &self,
        message: &Message<'_>,
        kind: Result<MessageType, Reject>,
    ) -> Option<Answer> {
        let parsed =
            kind.and_then(|kind| Request::parse_classified(kind, self.profile, message, false));
        let request = match parsed {
            Ok(request) => request,
            Err(reject) => {
                tracing::info!(field = ?reject.field, response = reject.response.code(), "link request rejected: {}", reject.reason);
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                return Answer::plain(message, reject.response);
            }
        };
        let acquirer = message
            .get(32)
            .and_then(|value| value.to_text().trim().parse::<u32>().ok())
            .map(InstitutionId);
        let Some(acquirer) = acquirer else {
            return Answer::plain(message, ResponseCode::FormatError);
        };
        // The acquirer's side of the books is the acquirer's own: nothing is posted to it here.
        let terminal = TerminalRecord {
            merchant_id: request.merchant_id.trim().to_owned(),
            active: true,
            acquirer,
            merchant_payable: AccountId(0),
            // The link carries no merchant category (field 18 is not sent by the switch).
            mcc: 0,
        };
        match request.kind {
            MessageType::EchoTest => Answer::plain(message, ResponseCode::Approved),
            kind if kind.is_maced() => {
                let keys = MessageKeys::Link;
                match self.earlier_answer(message, &request, &keys).await {
                    Earlier::Answered(answer) => {
                        self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                        Some(*answer)
                    }
                    Earlier::Seen if self.reversed_by_the_host(kind, message, &request).await => {
                        Answer::plain(message, ResponseCode::DuplicateTransmission)
                    }
                    Earlier::Seen | Earlier::New => {
                        self.financial(kind, message, &request, &terminal, &keys)
                            .await
                    }
                }
            }
            _ => Answer::plain(message, ResponseCode::InvalidTransaction),
        }
    }

    /// A financial message whose MAC verified and that is not a duplicate.
    pub(crate) async fn financial(
        &self,
        kind: MessageType,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
        keys: &MessageKeys,
    ) -> Option<Answer> {
        if let Some(issuer) = self.remote_issuer(message, request).await {
            return self
                .forward_to_issuer(&issuer, kind, message, request, terminal, keys)
                .await;
        }
        // After the remote issuers, in-process issuers may have the original too: on to the
        // local reversal unless a remote one refused.
        if let Some(answer) = self
            .reverse_everywhere(message, request, terminal, keys)
            .await
            && !Answer::approved(answer.as_ref())
        {
            return answer;
        }
        let answer = self
            .local_financial(kind, message, request, terminal, keys)
            .await;
        // A message that moves money answered 96 failed in the store, whose commit may have
        // been durable all the same (the disk or the connection failed after the data reached
        // it). The terminal takes 96 as a failure and does not reverse it, so the host does,
        // as for an answer not given in time (see `saf.rs`): whatever posted is undone, and
        // what did not is marked so that it never posts. Found by the deterministic
        // simulation (tests/simulation.rs, seed 4: a void durable but answered 96 left the
        // sale voided while the terminal held it approved). An issuer host leaves it to the
        // acquirer, which reverses what its issuer answered 96 (see `switch.rs`).
        let failed = answer.as_ref().is_some_and(|answer| {
            answer.message.response_code().ok().as_deref()
                == Some(ResponseCode::SystemMalfunction.code())
        });
        if failed && self.role == Role::Acquirer && crate::saf::posts(kind) {
            self.queue_reversal_of(message, request).await;
        }
        answer
    }

    /// A financial message decided by the in-process issuer (or the acquirer alone).
    async fn local_financial(
        &self,
        kind: MessageType,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
        keys: &MessageKeys,
    ) -> Option<Answer> {
        match kind {
            MessageType::Sale | MessageType::BalanceInquiry | MessageType::PreAuthorization => {
                let card_kind = match kind {
                    MessageType::BalanceInquiry => TransactionKind::BalanceInquiry,
                    MessageType::PreAuthorization => TransactionKind::PreAuthorization,
                    _ => TransactionKind::Purchase,
                };
                self.card_message(card_kind, message, request, terminal, keys)
                    .await
            }
            MessageType::PreAuthorizationCompletion => {
                self.completion(message, request, terminal, keys).await
            }
            MessageType::PreAuthorizationVoid => {
                self.preauthorization_void(message, request, keys).await
            }
            MessageType::SaleVoid => {
                self.undo(Undo::Void, message, request, terminal, keys)
                    .await
            }
            MessageType::CompletionVoid => {
                self.completion_void(message, request, terminal, keys).await
            }
            MessageType::Refund => {
                self.undo(Undo::Refund, message, request, terminal, keys)
                    .await
            }
            MessageType::Reversal => self.reversal(message, request, terminal, keys).await,
            _ => Answer::plain(message, ResponseCode::FunctionNotSupported),
        }
    }

    /// Field 64 against the terminal's keys (see `keys.rs`): a terminal that has not signed on
    /// gets 58, a DUKPT message without a usable KSN 30 (63 when the KSN names another device),
    /// a MAC that does not verify A0. The caller then checks a DUKPT message's KSN counter
    /// ([`TerminalHandler::accept_ksn`]) unless the message is a duplicate.
    async fn check_mac(
        &self,
        frame: &[u8],
        request: &Request,
    ) -> Result<MessageKeys, ResponseCode> {
        let field62 = || {
            self.profile
                .unpack(frame)
                .ok()
                .and_then(|message| message.get(62).map(|value| value.to_bytes().to_vec()))
        };
        let keys = self
            .terminal_message_keys(request.terminal_id.trim(), field62)
            .await?;
        let (covered, mac) = mac_parts(self.profile, frame).ok_or(ResponseCode::FormatError)?;
        self.verify_with(&keys, request.terminal_id.trim(), covered, mac)?;
        Ok(keys)
    }

    /// A DUKPT message's KSN counter must be above the highest the host has accepted from the
    /// device, which it then becomes (durably, before the message is acted on): a replayed
    /// message, or one older than a message already accepted, is refused with 63 and does
    /// nothing. Checked after the MAC, so only the device itself can raise the mark.
    async fn accept_ksn(&self, keys: &MessageKeys, terminal_id: &str) -> Result<(), ResponseCode> {
        let Some(counter) = keys.ksn_counter() else {
            return Ok(());
        };
        match self.store.accept_ksn_counter(terminal_id, counter).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.counters.ksn_replays.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(terminal = %terminal_id, counter, "DUKPT KSN counter not above the last accepted: replay refused");
                Err(ResponseCode::SecurityViolation)
            }
            Err(error) => {
                tracing::error!(%error, "cannot record the DUKPT KSN counter");
                Err(ResponseCode::SystemMalfunction)
            }
        }
    }

    /// Verifies a MAC a terminal made over `covered` outside ISO 8583 (the wallet's terminal
    /// API, docs/wallet.md), with the very keys and checks of its ISO 8583 messages: the
    /// terminal must be active and signed on; master/session MACs are X9.19 under the
    /// sign-on's MAC key, DUKPT MACs are under the request key of `ksn` (which must name the
    /// terminal's own device). The refusals are the ISO 8583 ones: 58 (unknown, inactive or not
    /// signed on), 30 (no usable KSN), 63 (another device's KSN, or a KSN counter not above
    /// the last accepted: a replay), A0 (the MAC does not verify), 96 (the keys could not be
    /// read).
    pub async fn verify_terminal_mac(
        &self,
        terminal_id: &str,
        ksn: Option<&[u8]>,
        covered: &[u8],
        mac: &[u8],
    ) -> Result<(), ResponseCode> {
        match self.terminal(terminal_id) {
            Some(terminal) if terminal.active => {}
            _ => return Err(ResponseCode::NotPermittedToTerminal),
        }
        let keys = self
            .terminal_message_keys(terminal_id, || ksn.map(<[u8]>::to_vec))
            .await?;
        self.verify_with(&keys, terminal_id, covered, mac)?;
        self.accept_ksn(&keys, terminal_id).await
    }

    /// The keys a terminal's message is under, by its key scheme; `field62` gives a DUKPT
    /// message's KSN (read only for DUKPT terminals).
    async fn terminal_message_keys(
        &self,
        terminal_id: &str,
        field62: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Result<MessageKeys, ResponseCode> {
        let session = match self.store.terminal_session(terminal_id).await {
            Ok(Some(session)) => session,
            Ok(None) => return Err(ResponseCode::NotPermittedToTerminal),
            Err(error) => {
                tracing::error!(%error, "cannot read the terminal session");
                return Err(ResponseCode::SystemMalfunction);
            }
        };
        self.note_operator(&session.terminal_id, session.operator.as_deref());
        let keys = match session.key_scheme.as_str() {
            crate::keys::MASTER_SESSION => match session.mac_key {
                Some(mac_key) => MessageKeys::Session {
                    pin_key: session.pin_key.map(KeyToken::new),
                    mac_key: KeyToken::new(mac_key),
                },
                None => {
                    tracing::info!(terminal = %terminal_id, "financial message from a terminal that has not signed on");
                    return Err(ResponseCode::NotPermittedToTerminal);
                }
            },
            scheme @ (crate::keys::DUKPT_TDES | crate::keys::DUKPT_AES) => {
                if session.signed_on_at.is_none() {
                    tracing::info!(terminal = %terminal_id, "financial message from a terminal that has not signed on");
                    return Err(ResponseCode::NotPermittedToTerminal);
                }
                let field62 = field62();
                let ksn = crate::keys::Ksn::parse(
                    scheme,
                    field62.as_deref(),
                    session.initial_ksn.as_deref(),
                )
                .inspect_err(|code| {
                    tracing::warn!(terminal = %terminal_id, response = code.code(), "DUKPT message with an unusable KSN");
                })?;
                ksn.keys(self.key(&session.tmk_key).await?)
            }
            other => {
                tracing::error!(terminal = %terminal_id, scheme = other, "unknown key scheme");
                return Err(ResponseCode::NotPermittedToTerminal);
            }
        };
        Ok(keys)
    }

    /// `mac` over `covered` under `keys`: A0 (counted) when it does not verify.
    fn verify_with(
        &self,
        keys: &MessageKeys,
        terminal_id: &str,
        covered: &[u8],
        mac: &[u8],
    ) -> Result<(), ResponseCode> {
        match keys.verify_request(self.hsm.as_ref(), covered, mac) {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.counters.mac_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(terminal = %terminal_id, "MAC verification failed");
                Err(ResponseCode::MacFailure)
            }
            Err(error) => {
                tracing::error!(%error, "MAC verification could not run");
                Err(ResponseCode::SystemMalfunction)
            }
        }
    }

    async fn sign_on(&self, message: &Message<'_>, request: &Request) -> Option<Message<'static>> {
        let network_code = self
            .profile
            .subfield_text(message, 60, 3)
            .unwrap_or_default();
        let operator = message
            .get(63)
            .map(|value| value.to_text().chars().take(3).collect::<String>())
            .unwrap_or_default();
        let session = match self
            .store
            .terminal_session(request.terminal_id.trim())
            .await
        {
            Ok(Some(session)) => session,
            Ok(None) => return response_to(message, ResponseCode::NotPermittedToTerminal),
            Err(error) => {
                tracing::error!(terminal = %request.terminal_id, %error, "sign-on failed");
                return response_to(message, ResponseCode::SystemMalfunction);
            }
        };
        let outcome = if session.key_scheme == crate::keys::MASTER_SESSION {
            match network_code.as_str() {
                SIGN_ON_DOUBLE_LENGTH => {}
                "001" => return response_to(message, ResponseCode::InvalidTransaction),
                _ => return response_to(message, ResponseCode::FunctionNotSupported),
            }
            self.issue_working_keys(&session, operator.trim()).await
        } else {
            // A DUKPT terminal's keys come from its KSNs: the sign-on opens its day only.
            self.record_sign_on(&session, None, operator.trim())
                .await
                .map(|signed| signed.map(|batch| (batch, Vec::new())))
        };
        match outcome {
            Ok(Some((batch, keys))) => {
                self.counters.sign_ons.fetch_add(1, Ordering::Relaxed);
                let mut answer = response_to(message, ResponseCode::Approved)?;
                answer.set_text(60, format!("00{batch:06}{network_code}"));
                if !keys.is_empty() {
                    answer.set_bytes(62, keys);
                }
                let held = crate::parameters::version_of(message);
                if self
                    .parameters_of(&request.terminal_id)
                    .is_some_and(|current| current.version != held)
                {
                    crate::parameters::request_download(&mut answer);
                }
                Some(answer)
            }
            Ok(None) => response_to(message, ResponseCode::NotPermittedToTerminal),
            Err(error) => {
                tracing::error!(terminal = %request.terminal_id, %error, "sign-on failed");
                response_to(message, ResponseCode::SystemMalfunction)
            }
        }
    }

    /// The terminal's parameter set in field 62, the answer MACed under the request's keys;
    /// 40 for a terminal whose parameters are not managed by the host.
    fn parameter_download(
        &self,
        message: &Message<'_>,
        request: &Request,
        keys: MessageKeys,
    ) -> Option<Answer> {
        let Some(parameters) = self.parameters_of(&request.terminal_id) else {
            return Answer::plain(message, ResponseCode::FunctionNotSupported);
        };
        let field62 = match parameters.encode() {
            Ok(field62) => field62,
            Err(error) => {
                tracing::error!(terminal = %request.terminal_id, %error, "cannot send the parameters");
                return Answer::plain(message, ResponseCode::SystemMalfunction);
            }
        };
        let mut answer = response_to(message, ResponseCode::Approved)?;
        answer.set_bytes(62, field62);
        tracing::info!(terminal = %request.terminal_id, version = parameters.version, "parameters downloaded");
        Some(Answer {
            message: answer,
            mac: Some(keys),
            risk: None,
            card_id: None,
            card_verification: None,
        })
    }

    /// New working keys for a master/session terminal, recorded before they are sent: the
    /// terminal's batch and field 62, or `None` when its master key is missing.
    async fn issue_working_keys(
        &self,
        session: &TerminalSession,
        operator: &str,
    ) -> Result<Option<(i64, Vec<u8>)>, Box<dyn std::error::Error + Send + Sync>> {
        let Ok(tmk) = self.key(&session.tmk_key).await else {
            return Ok(None);
        };
        let (pin_key, pin_delivered) =
            self.hsm
                .generate_working_key(&tmk, &KeySpec::pin_zone_tdes(), CHECK_VALUE_BYTES)?;
        let (mac_key, mac_delivered) =
            self.hsm
                .generate_working_key(&tmk, &KeySpec::mac_retail(), CHECK_VALUE_BYTES)?;
        let keys = Some((pin_key.as_str().to_owned(), mac_key.as_str().to_owned()));
        let Some(batch) = self.record_sign_on(session, keys, operator).await? else {
            return Ok(None);
        };
        let field62 = [
            pin_delivered.encrypted,
            pin_delivered.check_value,
            mac_delivered.encrypted,
            mac_delivered.check_value,
        ]
        .concat();
        Ok(Some((batch, field62)))
    }

    /// Records a sign-on with its working keys (PIN, MAC tokens), if any; the batch.
    async fn record_sign_on(
        &self,
        session: &TerminalSession,
        keys: Option<(String, String)>,
        operator: &str,
    ) -> Result<Option<i64>, Box<dyn std::error::Error + Send + Sync>> {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs() as i64)
            .unwrap_or(0);
        let (pin_key, mac_key) = keys.unzip();
        self.note_operator(&session.terminal_id, Some(operator));
        let sign_on = SignOn {
            terminal_id: session.terminal_id.clone(),
            pin_key,
            mac_key,
            operator: operator.to_owned(),
            at,
        };
        Ok(self
            .store
            .sign_on(sign_on)
            .await?
            .map(|session| session.batch))
    }

    /// Packs an answer, with its MAC when its keys make one (field 64 is set in `answer`).
    fn pack(&self, answer: &mut Answer) -> Option<Vec<u8>> {
        let Answer { message, mac, .. } = answer;
        let Some(keys) = mac.as_ref().filter(|keys| keys.macs_answers()) else {
            return self
                .profile
                .pack(message)
                .inspect_err(|error| tracing::error!(%error, "cannot pack an answer"))
                .ok();
        };
        let mut failed = false;
        let packed = pack_with_mac(self.profile, message, |covered| {
            match keys.answer_mac(self.hsm.as_ref(), covered) {
                Ok(Some(mac)) => mac,
                _ => {
                    failed = true;
                    Vec::new()
                }
            }
        });
        if failed {
            None
        } else {
            packed
                .inspect_err(|error| tracing::error!(%error, "cannot pack an answer"))
                .ok()
        }
    }
}

impl Handler for TerminalHandler {
    async fn handle(&self, frame: &[u8], peer: SocketAddr) -> Reply {
        let started = std::time::Instant::now();
        let received_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let message = self.profile.unpack(frame).ok();
        // Classified once, for the request and for its journal entry.
        let kind = message
            .as_ref()
            .map(|message| crate::message::classify(self.profile, message));
        let mut answer = match (&message, &kind) {
            (Some(message), Some(kind)) => {
                let deadline = std::time::Instant::now().checked_add(self.answer_within);
                let respond = self.respond(frame, message, kind.clone());
                match tokio::time::timeout(self.answer_within, respond).await {
                    // A decision reached at the deadline or after it is too late as well: the
                    // timer fires on its driver's next tick (a millisecond), and which of the two
                    // comes first within it must not decide the answer.
                    Ok(answer)
                        if deadline.is_none_or(|deadline| std::time::Instant::now() < deadline) =>
                    {
                        answer
                    }
                    _ => self.too_late(message).await,
                }
            }
            _ => None,
        };
        let packed = answer.as_mut().and_then(|answer| self.pack(answer));
        // Recorded before the answer leaves: every answer a terminal gets is in the journal.
        let mut entry = crate::journal::entry(
            self.profile,
            message.as_ref(),
            kind.and_then(Result::ok),
            answer.as_ref().map(|answer| &answer.message),
            packed.as_deref(),
        );
        entry.received_at = received_at;
        entry.risk = answer.as_mut().and_then(|answer| answer.risk.take());
        entry.card_id = answer.as_mut().and_then(|answer| answer.card_id.take());
        entry.card_verification = answer
            .as_mut()
            .and_then(|answer| answer.card_verification.take());
        entry.operator = self.operator_at(&entry.terminal_id);
        entry.duration_us = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
        entry.peer = peer.to_string();
        if let Err(error) = self.store.journal(vec![entry]).await {
            self.counters
                .journal_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(%error, "the journal could not record a message");
        }
        match packed {
            Some(bytes) => {
                self.counters.answered.fetch_add(1, Ordering::Relaxed);
                Reply::Send(bytes)
            }
            None => {
                // No MTI to answer: the terminal's own timeout reverses whatever it sent.
                self.counters.unparsable.fetch_add(1, Ordering::Relaxed);
                Reply::Close
            }
        }
    }

    fn deadline_reply(&self, frame: &[u8]) -> Option<Vec<u8>> {
        let message = self.profile.unpack(frame).ok()?;
        self.pack(&mut Answer::plain(
            &message,
            ResponseCode::SystemMalfunction,
        )?)
    }
}
