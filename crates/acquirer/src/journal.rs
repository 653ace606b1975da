//! Every message in and its answer out, in the store's journal (`store::journal`), and the
//! answers to duplicates taken from it.
//!
//! The host records a message after deciding it (and committing any money it moves) and before
//! the answer leaves, so every answer a terminal received is in the journal. What is recorded
//! is what the console, disputes and batch totals need, with the card number masked and no
//! other card data: never track 2, the PIN block, the CVV, chip data or keys. The packed answer
//! is kept for financial messages only (its fields are the request's echoed fields, which
//! exclude card data, and the host's own).
//!
//! A duplicate is a financial message with the same terminal, batch, trace number, message
//! type, transmission time (field 7, when sent), amount and MAC (a keyed digest of the whole
//! content) as one already answered: it gets
//! the original answer again, under a fresh MAC, and nothing is decided twice — no second
//! posting, and no second PIN try counted for a wrong PIN.

use crate::effects::BusinessKey;
use crate::handler::TerminalHandler;
use crate::keys::MessageKeys;
use crate::message::{MessageType, Request};
use crate::sale::Answer;
use iso8583::{Message, Profile, ResponseCode};
use store::journal::JournalEntry;

/// What the journal knows of a financial message before it is decided.
pub(crate) enum Earlier {
    /// A duplicate: the answer it had.
    Answered(Box<Answer>),
    /// Not a duplicate, but another message of its kind was answered under its trace number.
    Seen,
    /// Nothing of its kind under its trace number.
    New,
}

/// What the journal keeps of a message and its answer; `kind` is the request's type
/// ([`classify`], `None` when it has none).
pub(crate) fn entry(
    profile: &Profile,
    request: Option<&Message<'_>>,
    kind: Option<MessageType>,
    answer: Option<&Message<'_>>,
    packed_answer: Option<&[u8]>,
) -> JournalEntry {
    let text = |message: Option<&Message<'_>>, field| {
        message
            .and_then(|message| message.get(field))
            .map(|value| value.to_text())
    };
    let number = |text: Option<String>| text.and_then(|text| text.trim().parse::<i64>().ok());
    let subfield =
        |field, id| number(request.and_then(|message| profile.subfield_text(message, field, id)));
    let card = request.and_then(|message| match (message.pan(), message.track2()) {
        (Ok(pan), _) => Some(pan.masked()),
        (Err(_), Ok(track)) => track.pan().ok().map(|pan| pan.masked()),
        _ => None,
    });
    JournalEntry {
        terminal_id: text(request, 41).unwrap_or_default().trim().to_owned(),
        merchant_id: text(request, 42).unwrap_or_default().trim().to_owned(),
        mti: request
            .map(|message| message.mti.as_str().to_owned())
            .unwrap_or_default(),
        kind: match (request, kind) {
            (None, _) => "Unreadable".to_owned(),
            (Some(_), None) => "Unknown".to_owned(),
            (Some(_), Some(kind)) => kind.to_string(),
        },
        batch: subfield(60, 2),
        stan: number(text(request, 11)),
        transmission: text(request, 7),
        amount_minor: number(text(request, 4)),
        currency: number(text(request, 49)),
        card,
        original_batch: subfield(61, 1),
        original_stan: subfield(61, 2),
        response: text(answer, 39),
        rrn: text(answer, 37),
        auth_code: text(answer, 38),
        answer: kind
            .filter(|kind| kind.is_maced())
            .and(packed_answer)
            .map(<[u8]>::to_vec),
        request_mac: request.and_then(message_identity),
        entry_mode: text(request, 22),
        ..JournalEntry::default()
    }
}

/// What tells a message from another under the same trace number and field 7: its MAC (field
/// 64) in hex, or on the switch link, where there is no MAC, the terminal's MAC the acquirer
/// passed on (`switch::MESSAGE_IDENTITY`).
pub(crate) fn message_identity(message: &Message<'_>) -> Option<String> {
    match message.get(64) {
        Some(mac) => Some(paycrypto::to_hex(&mac.to_bytes())),
        None => message
            .get(crate::switch::MESSAGE_IDENTITY)
            .map(|value| value.to_text()),
    }
}

impl TerminalHandler {
    /// What the journal holds of one terminal message (terminal, batch, trace number), oldest
    /// first: the message, its duplicates, and a reversal of it.
    pub(crate) async fn journal_of_message(
        &self,
        key: &BusinessKey,
    ) -> Result<Vec<JournalEntry>, store::StoreError> {
        self.store
            .journal_of(
                key.terminal_id.trim(),
                i64::from(key.batch),
                Some(i64::from(key.stan)),
            )
            .await
    }

    /// The answer already given to this very message, when it is a duplicate of one answered;
    /// else whether another message of its kind was answered under its trace number (a repeat).
    pub(crate) async fn earlier_answer(
        &self,
        message: &Message<'_>,
        request: &Request,
        keys: &MessageKeys,
    ) -> Earlier {
        let Some(earlier) = self.earlier_entries(request).await else {
            return Earlier::New;
        };
        let seen = earlier
            .iter()
            .any(|entry| entry.kind == request.kind.to_string());
        match self.duplicate_answer(earlier, message, request, keys) {
            Some(answer) => Earlier::Answered(Box::new(answer)),
            None if seen => Earlier::Seen,
            None => Earlier::New,
        }
    }

    /// What the journal holds under the message's trace number; `None` when it cannot hold
    /// anything (or cannot be read).
    async fn earlier_entries(&self, request: &Request) -> Option<Vec<JournalEntry>> {
        // A message above everything journaled for its batch cannot be a duplicate: most are
        // new, and this spares them the journal look-up (on SQLite; see the store).
        match self
            .store
            .journal_may_have(
                request.terminal_id.trim(),
                i64::from(request.batch),
                i64::from(request.stan),
            )
            .await
        {
            Ok(false) => return None,
            Ok(true) => {}
            Err(error) => tracing::warn!(%error, "cannot read the journal watermark"),
        }
        match self.journal_of_message(&request.key()).await {
            Ok(entries) => Some(entries),
            Err(error) => {
                // Without the journal the message is decided again, which is safe: every
                // effect is idempotent by its business key.
                tracing::warn!(%error, "cannot read the journal for duplicates");
                None
            }
        }
    }

    /// The answer to `message` among `earlier`, when it is a duplicate of one of them.
    fn duplicate_answer(
        &self,
        earlier: Vec<JournalEntry>,
        message: &Message<'_>,
        request: &Request,
        keys: &MessageKeys,
    ) -> Option<Answer> {
        let transmission = message.get(7).map(|value| value.to_text());
        let mac = message_identity(message);
        let amount = request
            .amount_minor
            .and_then(|minor| i64::try_from(minor).ok());
        // A reversal answered 96 failed in the store: its repeat (0401, the same bytes) is
        // decided again, or the terminal, which retries a reversal until it gets 00, would get
        // the 96 back for ever and the money would stay moved. Deciding a reversal again is
        // safe: it undoes once. Found by the deterministic simulation (tests/simulation.rs,
        // seed 38).
        let replayable = |entry: &JournalEntry| {
            request.kind != MessageType::Reversal
                || entry.response.as_deref() != Some(ResponseCode::SystemMalfunction.code())
        };
        let packed = earlier.into_iter().rev().find_map(|entry| {
            (entry.kind == request.kind.to_string()
                && entry.transmission == transmission
                && entry.amount_minor == amount
                && entry.request_mac == mac
                && replayable(&entry))
            .then_some(entry.answer)
            .flatten()
        })?;
        let answer = self.profile.unpack(&packed).ok()?.into_owned();
        tracing::info!(terminal = %request.terminal_id, stan = request.stan, kind = %request.kind, "duplicate answered with the original answer");
        let mac = if answer.has(64) {
            Some(keys.clone())
        } else {
            None
        };
        let mut answer = answer;
        answer.mti = message.mti.response()?;
        Some(Answer {
            message: answer,
            mac,
            risk: None,
            card_id: None,
            card_verification: None,
        })
    }
}
