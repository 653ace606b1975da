//! The switch: a card's messages go to its issuer, found by BIN (the first six digits of the
//! card number). An issuer is in-process by default — the acquirer host then posts both
//! institutions' books in one transaction — or a remote issuer host reached over TCP with the
//! `iso87-ascii` profile (`easypos host --role issuer`), which posts the issuer's books while
//! the acquirer posts its own.
//!
//! **The link message** (easypos's convention, `iso87-ascii`, 2-byte binary length prefix, no
//! TPDU): the terminal's MTI, fields 2 (the card number, from track 2 when the terminal swiped),
//! 3, 4, 11 (the terminal's trace number), 14, 22, 23, 25, 35, 37, 38, 39 (a reversal's
//! reason), 41, 42, 49, 55, 61 and 63 as the terminal sent them; 7, the transmission time; 48,
//! the message's identity (the terminal's MAC in hex: what the issuer host tells a repeat from a
//! retransmission by); 32, the acquirer's institution id; 52, the
//! PIN block translated by the acquirer's HSM to the issuer's zone key (format 0); 60, the
//! transaction type and batch (60.1, 60.2, as in `cup-bcd`). No field 64: the link runs between
//! institutions on a private network (a zone MAC key is future work). The issuer answers with
//! 39 and, as the case may be, 37, 38, 54 and 55, which the acquirer copies into the terminal's
//! answer.
//!
//! **Who posts what.** The issuer host posts the issuer's side of each message (the card's
//! account against the issuer's settlement account, holds, card state); the acquirer posts its
//! side (what issuers owe it against the merchant) only after the issuer approved. A failure
//! between the two — the link times out, or the acquirer cannot post — is answered 91 or 96 and
//! the message is reversed by store-and-forward (see `saf.rs`), at both institutions.

use crate::completion::{
    COMPLETION, COMPLETION_REVERSAL, COMPLETION_VOID, COMPLETION_VOID_REVERSAL,
};
use crate::effects::in_slot;
use crate::follow_up::Slot;
use crate::handler::{TerminalHandler, TerminalRecord};
use crate::keys::MessageKeys;
use crate::message::{MessageType, Request, response_to};
use crate::sale::Answer;
use crate::undo::{UNDO, UNDO_REVERSAL};
use host::Client;
use hsm::PinDestination;
use iso8583::LengthPrefix;
use iso8583::{Message, Profile, ResponseCode};
use ledger::{InstitutionId, Transfer, TransferRequest};
use money::Amount;
use paycrypto::pinblock::PinBlockFormat;
use paycrypto::{Pan, PinBlock};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// How long the acquirer waits for a remote issuer's answer: inside the 15 s the terminal's
/// answer has (`saf::ANSWER_WITHIN`), leaving time to answer 91 and queue the reversal.
pub const LINK_TIMEOUT: Duration = Duration::from_secs(10);

/// Idle connections kept open to one remote issuer.
const MAX_IDLE_CONNECTIONS: usize = 64;

/// Fields the acquirer passes on to the issuer as the terminal sent them.
const PASSED_ON: [u8; 16] = [3, 4, 11, 14, 22, 23, 25, 35, 37, 38, 39, 41, 42, 49, 61, 63];

/// The link field that tells the issuer host which terminal message this is: the terminal's
/// MAC (field 64) in hex. The issuer keys its duplicate detection on it as the acquirer does
/// on field 64: a retransmission carries the same MAC, and a repeat under the same trace
/// number (read again, so another cryptogram or PIN block) another one, even within the same
/// second (field 7 is to the second). Field 48 is ISO 8583:1987's "additional data, private".
pub(crate) const MESSAGE_IDENTITY: u8 = 48;

/// A remote issuer host: its address and a pool of connections to it.
#[derive(Debug)]
pub struct RemoteIssuer {
    address: SocketAddr,
    idle: std::sync::Mutex<Vec<Client>>,
}

impl RemoteIssuer {
    pub fn new(address: SocketAddr) -> Self {
        RemoteIssuer {
            address,
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Sends one message and waits for its answer, on a pooled connection (a connection that
    /// failed is dropped, never reused).
    ///
    /// A pooled connection may have been closed by the issuer host meanwhile (it closes a
    /// connection idle for a minute, `host::Limits::idle_timeout`): when one fails other than
    /// by timing out, the message is sent once more on a new connection. That is safe whether or not the issuer saw it
    /// the first time: the issuer answers a duplicate from its journal, and a message decided
    /// again finds its effects made under the same business key.
    pub async fn exchange(&self, request: &[u8]) -> Result<Vec<u8>, host::Error> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let answer = match idle {
            Some(mut client) => match client.exchange(request, LINK_TIMEOUT).await {
                Ok(answer) => Ok((client, answer)),
                // A timeout is the issuer's slowness, not a closed connection: the time is
                // spent, and the terminal gets 91.
                Err(error @ host::Error::Timeout { .. }) => Err(error),
                Err(_) => self.exchange_on_new_connection(request).await,
            },
            None => self.exchange_on_new_connection(request).await,
        };
        let (client, answer) = answer?;
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE_CONNECTIONS
        {
            idle.push(client);
        }
        Ok(answer)
    }

    async fn exchange_on_new_connection(
        &self,
        request: &[u8],
    ) -> Result<(Client, Vec<u8>), host::Error> {
        let mut client = Client::connect(self.address, LengthPrefix::Binary2, LINK_TIMEOUT).await?;
        let answer = client.exchange(request, LINK_TIMEOUT).await?;
        Ok((client, answer))
    }
}

/// The remote issuers and the BINs that lead to them; a BIN not here stays in-process.
#[derive(Debug, Default)]
pub struct Switch {
    remotes: HashMap<InstitutionId, std::sync::Arc<RemoteIssuer>>,
    bins: HashMap<String, InstitutionId>,
}

impl Switch {
    pub(crate) fn add(
        &mut self,
        institution: InstitutionId,
        issuer: RemoteIssuer,
        bins: impl IntoIterator<Item = String>,
    ) {
        self.remotes
            .insert(institution, std::sync::Arc::new(issuer));
        for bin in bins {
            self.bins.insert(bin, institution);
        }
    }

    /// The remote institution a card number belongs to, by its BIN.
    fn issuer_of(&self, digits: &str) -> Option<InstitutionId> {
        self.bins.get(digits.get(..6)?).copied()
    }

    /// The remote issuer of a card number.
    fn route(&self, digits: &str) -> Option<std::sync::Arc<RemoteIssuer>> {
        self.remotes.get(&self.issuer_of(digits)?).cloned()
    }

    fn is_empty(&self) -> bool {
        self.remotes.is_empty()
    }

    fn all(&self) -> Vec<std::sync::Arc<RemoteIssuer>> {
        self.remotes.values().cloned().collect()
    }
}

fn now_mmddhhmmss() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0);
    let date = crate::effects::business_date(now);
    let seconds = (now + 8 * 3_600).rem_euclid(86_400);
    format!(
        "{:02}{:02}{:02}{:02}{:02}",
        date.month,
        date.day,
        seconds / 3_600,
        seconds / 60 % 60,
        seconds % 60
    )
}

impl TerminalHandler {
    /// The remote issuer a terminal message goes to, if its card's issuer is remote: by the
    /// card number, or for a reversal (which carries none) by the card of the message it
    /// reverses, from the journal.
    pub(crate) async fn remote_issuer(
        &self,
        message: &Message<'_>,
        request: &Request,
    ) -> Option<std::sync::Arc<RemoteIssuer>> {
        if self.switch.is_empty() || self.role != crate::handler::Role::Acquirer {
            return None;
        }
        if let Some(digits) = card_number(message) {
            return self.switch.route(&digits);
        }
        let entries = self.journal_of_message(&request.key()).await.ok()?;
        entries
            .iter()
            .rev()
            .filter(|entry| entry.kind != MessageType::Reversal.to_string())
            .find_map(|entry| entry.card.clone())
            .and_then(|masked| self.switch.route(&masked))
    }

    /// A reversal that names no card and whose original this host never saw (it overtook it):
    /// every remote issuer gets it, so that whichever the original reaches later has marked it;
    /// `None` when there are no remote issuers. The worst answer wins.
    pub(crate) async fn reverse_everywhere(
        &self,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
        keys: &MessageKeys,
    ) -> Option<Option<Answer>> {
        if self.switch.is_empty()
            || self.role != crate::handler::Role::Acquirer
            || request.kind != MessageType::Reversal
            || card_number(message).is_some()
        {
            return None;
        }
        let mut last = None;
        for issuer in self.switch.all() {
            let answer = self
                .forward_to_issuer(
                    &issuer,
                    MessageType::Reversal,
                    message,
                    request,
                    terminal,
                    keys,
                )
                .await;
            if !Answer::approved(answer.as_ref()) {
                return Some(answer);
            }
            last = answer;
        }
        Some(last)
    }

    /// A terminal message whose card's issuer is remote: the issuer decides and posts its side,
    /// then the acquirer posts its own and answers the terminal.
    pub(crate) async fn forward_to_issuer(
        &self,
        issuer: &RemoteIssuer,
        kind: MessageType,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
        keys: &MessageKeys,
    ) -> Option<Answer> {
        let posts = crate::saf::posts(kind);
        let link = match self.link_message(message, terminal, keys).await {
            Ok(link) => link,
            Err(code) => return Answer::plain(message, code),
        };
        let link_profile = link_profile();
        let answer = match link_profile.pack(&link) {
            Ok(bytes) => issuer.exchange(&bytes).await,
            Err(_) => return Answer::plain(message, ResponseCode::SystemMalfunction),
        };
        let answer = match answer.map_err(|error| error.to_string()).and_then(|bytes| {
            link_profile
                .unpack(&bytes)
                .map(Message::into_owned)
                .map_err(|error| error.to_string())
        }) {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(issuer = %issuer.address(), terminal = %request.terminal_id, stan = request.stan, %error, "the issuer did not answer");
                if posts {
                    self.queue_reversal_of(message, request).await;
                }
                return Answer::plain(message, ResponseCode::IssuerInoperative);
            }
        };
        let code = answer
            .response_code()
            .ok()
            .and_then(|code| ResponseCode::parse(&code))
            .unwrap_or(ResponseCode::SystemMalfunction);
        let code = if code.is_approved() {
            match self.acquirer_side(kind, message, request, terminal).await {
                Ok(()) => code,
                Err(refusal) => {
                    tracing::error!(terminal = %request.terminal_id, stan = request.stan, response = refusal.code(), "the acquirer could not post what the issuer approved");
                    if posts {
                        self.queue_reversal_of(message, request).await;
                    }
                    refusal
                }
            }
        } else {
            code
        };
        let mut reply = response_to(message, code)?;
        if code.is_approved() {
            for field in [37, 38, 54] {
                if let Some(value) = answer.get(field) {
                    reply.set_text(field, value.to_text());
                }
            }
        }
        if let Some(value) = answer.get(55) {
            reply.set_bytes(55, value.to_bytes().to_vec());
        }
        let mac = (code.is_approved() || kind == MessageType::Reversal).then(|| keys.clone());
        Some(Answer {
            message: reply,
            mac,
            risk: None,
            card_id: None,
            card_verification: None,
        })
    }

    /// The message the issuer gets (see the module's documentation).
    async fn link_message(
        &self,
        message: &Message<'_>,
        terminal: &TerminalRecord,
        keys: &MessageKeys,
    ) -> Result<Message<'static>, ResponseCode> {
        let mut link = Message::new(message.mti);
        for field in PASSED_ON {
            if let Some(value) = message.get(field) {
                link.set_text(field, value.to_text());
            }
        }
        if let Some(digits) = card_number(message) {
            link.set_text(2, digits);
        }
        if let Some(value) = message.get(55) {
            link.set_bytes(55, value.to_bytes().to_vec());
        }
        let transaction_type = self
            .profile
            .subfield_text(message, 60, 1)
            .unwrap_or_default();
        let batch = self
            .profile
            .subfield_text(message, 60, 2)
            .unwrap_or_default();
        link.set_text(60, format!("{transaction_type}{batch}"));
        link.set_text(7, now_mmddhhmmss());
        if let Some(identity) = crate::journal::message_identity(message) {
            link.set_text(MESSAGE_IDENTITY, identity);
        }
        link.set_text(32, terminal.acquirer.0.to_string());
        if let Some(bytes) = keys.pin_block(message) {
            let digits = card_number(message).ok_or(ResponseCode::FormatError)?;
            let pan = Pan::new(&digits).map_err(|_| ResponseCode::InvalidCardNumber)?;
            let issuer = self
                .switch
                .issuer_of(&digits)
                .ok_or(ResponseCode::NoCardRecord)?;
            let zone_key = self.key(&format!("issuer/{}/zpk", issuer.0)).await?;
            let block = PinBlock::new(&bytes).map_err(|_| ResponseCode::FormatError)?;
            let translated = self
                .hsm
                .translate_pin(
                    &block,
                    &keys.pin_source()?,
                    &PinDestination {
                        key: &zone_key,
                        format: PinBlockFormat::Iso0,
                    },
                    &pan,
                )
                .map_err(|_| ResponseCode::IncorrectPin)?;
            link.set_bytes(52, translated.as_bytes().to_vec());
        }
        Ok(link)
    }

    /// What the acquirer posts in its own books once the issuer approved.
    async fn acquirer_side(
        &self,
        kind: MessageType,
        message: &Message<'_>,
        request: &Request,
        terminal: &TerminalRecord,
    ) -> Result<(), ResponseCode> {
        let currency = crate::follow_up::currency(message)?;
        let amount = Amount::new(
            request
                .amount_minor
                .and_then(|minor| i64::try_from(minor).ok())
                .unwrap_or(0),
            currency,
        );
        let due_from = crate::chart::acquirer_due_from_issuers(terminal.acquirer, currency);
        let key = request.key();
        let lookup = |id| async move {
            self.store
                .transfer(id)
                .await
                .map_err(|_| ResponseCode::SystemMalfunction)
        };
        let opposite = |id, transfer: &Transfer, code| {
            TransferRequest::posted(id, transfer.credit, transfer.debit, amount)
                .code(code)
                .user_data(u128::from(request.stan))
        };
        let marks = crate::chart::reversal_marks(terminal.acquirer, currency).0;
        // The slot (`follow_up.rs`) of the acquirer's side of a follow-up the issuer approved:
        // the one it took before (a repeat), else the first free one (the issuer decided).
        let own_slot = |purpose: &'static str, reversal_purpose: &'static str, original| async move {
            let slots = self
                .slots(
                    &original,
                    purpose,
                    reversal_purpose,
                    request.stan,
                    "acquirer",
                    marks,
                )
                .await?;
            Ok::<String, ResponseCode>(match slots.mine {
                Some((generation, Slot::Posted { .. })) => in_slot(purpose, generation),
                _ => in_slot(purpose, slots.free),
            })
        };
        let transfers = match kind {
            MessageType::Sale => vec![TransferRequest::posted(
                key.transfer_id("sale/acquirer"),
                due_from,
                terminal.merchant_payable,
                amount,
            )],
            MessageType::PreAuthorizationCompletion => {
                let original = self.original_key(message, request)?;
                let slot = own_slot(COMPLETION, COMPLETION_REVERSAL, original.clone()).await?;
                vec![
                    TransferRequest::posted(
                        original.transfer_id(&format!("{slot}/acquirer")),
                        due_from,
                        terminal.merchant_payable,
                        amount,
                    )
                    .user_data(u128::from(request.stan)),
                ]
            }
            MessageType::SaleVoid | MessageType::Refund => {
                let original = self.original_key(message, request)?;
                let sale = lookup(original.transfer_id("sale/acquirer"))
                    .await?
                    .ok_or(ResponseCode::UnableToLocateRecord)?;
                let code = if kind == MessageType::SaleVoid {
                    23
                } else {
                    25
                };
                let slot = own_slot(UNDO, UNDO_REVERSAL, original.clone()).await?;
                vec![opposite(
                    original.transfer_id(&format!("{slot}/acquirer")),
                    &sale,
                    code,
                )]
            }
            MessageType::CompletionVoid => {
                let completion = self.original_key(message, request)?;
                let preauthorization = self.completed_preauthorization(&completion).await?;
                let completed = self
                    .slots(
                        &preauthorization,
                        COMPLETION,
                        COMPLETION_REVERSAL,
                        completion.stan,
                        "acquirer",
                        marks,
                    )
                    .await?;
                let Some((_, Slot::Posted { posted, .. })) = completed.mine else {
                    return Err(ResponseCode::UnableToLocateRecord);
                };
                let slot = own_slot(
                    COMPLETION_VOID,
                    COMPLETION_VOID_REVERSAL,
                    preauthorization.clone(),
                )
                .await?;
                vec![opposite(
                    preauthorization.transfer_id(&format!("{slot}/acquirer")),
                    &posted.issuer,
                    21,
                )]
            }
            MessageType::Reversal => {
                let reversed = self
                    .profile
                    .subfield_text(message, 60, 1)
                    .unwrap_or_default();
                let (original, purpose, reversal_purpose) = match reversed.as_str() {
                    "22" => {
                        return match lookup(key.transfer_id("sale/acquirer")).await? {
                            Some(sale) => {
                                self.commit_follow_up(vec![opposite(
                                    key.transfer_id("sale-reversal/acquirer"),
                                    &sale,
                                    4,
                                )])
                                .await
                            }
                            // Not posted here: mark it so that it never can be.
                            None => self.mark_sale_reversed(message, &key, terminal).await,
                        };
                    }
                    "23" | "25" => (self.original_key(message, request)?, UNDO, UNDO_REVERSAL),
                    "20" => (
                        self.original_key(message, request)?,
                        COMPLETION,
                        COMPLETION_REVERSAL,
                    ),
                    "21" => {
                        let completion = self.original_key(message, request)?;
                        match self.completed_preauthorization(&completion).await {
                            Ok(preauthorization) => {
                                (preauthorization, COMPLETION_VOID, COMPLETION_VOID_REVERSAL)
                            }
                            Err(_) => return Ok(()),
                        }
                    }
                    _ => return Ok(()),
                };
                // The issuer marked a follow-up it never posted; the acquirer's side of it
                // posts only once the issuer approved, so there is nothing to mark here.
                let slots = self
                    .slots(
                        &original,
                        purpose,
                        reversal_purpose,
                        request.stan,
                        "acquirer",
                        marks,
                    )
                    .await?;
                match slots.mine {
                    Some((generation, Slot::Posted { posted, .. })) => vec![opposite(
                        original.transfer_id(&format!(
                            "{}/acquirer",
                            in_slot(reversal_purpose, generation)
                        )),
                        &posted.issuer,
                        4,
                    )],
                    _ => return Ok(()),
                }
            }
            _ => return Ok(()),
        };
        self.commit_follow_up(transfers).await
    }
}

/// The card number a terminal message carries (field 2, else track 2).
fn card_number(message: &Message<'_>) -> Option<String> {
    match (message.pan(), message.track2()) {
        (Ok(pan), _) => Some(pan.expose().to_owned()),
        (Err(_), Ok(track)) => track.pan().ok().map(|pan| pan.expose().to_owned()),
        _ => None,
    }
}

fn link_profile() -> &'static Profile {
    Profile::builtin("iso87-ascii").unwrap_or_else(|_| unreachable!("iso87-ascii is built in"))
}
