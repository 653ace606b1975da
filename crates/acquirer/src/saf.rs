//! Answers the host could not give in time, and store-and-forward of its own reversals.
//!
//! A message that moves money has [`ANSWER_WITHIN`] to be decided. When the time is up the
//! decision is abandoned where it stands — a store job already handed to the writer still
//! commits — and the terminal gets 96 at once. A terminal that got 96 takes the message as
//! failed and does not reverse it, so the host must: before the 96 leaves, it queues a
//! reversal of the message (`store::saf`), and a worker forwards every queued reversal through
//! the same path as a terminal's 0400 until it is acknowledged (00), with back-off, across
//! restarts. Whatever the abandoned decision posted is then undone, and a sale or
//! pre-authorization that had not posted yet is marked so that it never can.
//!
//! A queued reversal waits [`REVERSAL_GRACE`] before its first attempt, so that the abandoned
//! decision's last store job has finished by then.

use crate::handler::TerminalHandler;
use crate::keys::MessageKeys;
use crate::message::{MessageType, Request};
use crate::sale::Answer;
use iso8583::{Message, Mti, ResponseCode};
use std::sync::atomic::Ordering;
use std::time::Duration;
use store::StoreError;
use store::saf::{PendingReversal, ReversalAttempt};

/// How long the host has to decide a message before it answers 96. Shorter than the listener's
/// handler deadline (`host::Limits::handler_timeout`, 20 s by default), which stays the
/// backstop, and well inside the 30–60 s a POS terminal waits.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(15);

/// How long a queued reversal waits before its first attempt.
pub const REVERSAL_GRACE: Duration = Duration::from_secs(2);

/// The longest wait between two attempts at a reversal that was not acknowledged.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Queued reversals forwarded per pass.
const REVERSALS_PER_PASS: i64 = 100;

/// 39 of a reversal the host sends of its own accord: "no answer in time" (as terminals send
/// after a timeout).
const REVERSAL_REASON: &str = "98";

/// What a terminal's answer is recorded as when the host forwards a reversal itself.
pub const STORE_AND_FORWARD_PEER: &str = "store-and-forward";

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// Whether a message of this kind may have posted something a reversal must undo.
pub(crate) fn posts(kind: MessageType) -> bool {
    use MessageType::*;
    matches!(
        kind,
        Sale | PreAuthorization
            | PreAuthorizationCompletion
            | PreAuthorizationVoid
            | SaleVoid
            | Refund
            | CompletionVoid
    )
}

impl TerminalHandler {
    /// The answer to a message the host could not decide in time: 96, after queueing a
    /// reversal of whatever it may have posted.
    pub(crate) async fn too_late(&self, message: &Message<'_>) -> Option<Answer> {
        self.counters.late_answers.fetch_add(1, Ordering::Relaxed);
        let Ok(request) = Request::parse(self.profile, message) else {
            return Answer::plain(message, ResponseCode::SystemMalfunction);
        };
        tracing::warn!(terminal = %request.terminal_id, stan = request.stan, kind = %request.kind, "no decision in time: answered 96");
        if posts(request.kind) {
            self.queue_reversal_of(message, &request).await;
        }
        Answer::plain(message, ResponseCode::SystemMalfunction)
    }

    /// Queues a reversal of `message`, whose outcome the terminal will not learn as approved.
    pub(crate) async fn queue_reversal_of(&self, message: &Message<'_>, request: &Request) {
        let text = |field| {
            message
                .get(field)
                .map(|value| value.to_text())
                .unwrap_or_default()
        };
        let subfield = |id| {
            self.profile
                .subfield_text(message, 61, id)
                .and_then(|text| text.parse::<i64>().ok())
        };
        let now = now_micros();
        let reversal = PendingReversal {
            created_at: now,
            terminal_id: request.terminal_id.trim().to_owned(),
            merchant_id: request.merchant_id.trim().to_owned(),
            batch: i64::from(request.batch),
            stan: i64::from(request.stan),
            processing_code: text(3),
            condition_code: text(25),
            transaction_type: self
                .profile
                .subfield_text(message, 60, 1)
                .unwrap_or_default(),
            original_batch: subfield(1),
            original_stan: subfield(2),
            amount_minor: request
                .amount_minor
                .and_then(|minor| i64::try_from(minor).ok())
                .unwrap_or(0),
            currency: text(49).parse().unwrap_or(0),
            next_attempt_at: now.saturating_add(micros(self.reversal_grace)),
            ..PendingReversal::default()
        };
        if let Err(error) = self.store.queue_reversal(reversal).await {
            tracing::error!(%error, terminal = %request.terminal_id, stan = request.stan, "cannot queue the reversal of a message answered 96");
        }
    }

    /// Whether `message` is one the host already took as failed and queued a reversal of (it
    /// answered it 91 or 96): the terminal repeating it (same trace number, read again) must
    /// not have it decided again, or an approval of the repeat would be undone by the queued
    /// reversal while the terminal holds it. The repeat is refused 94, as a repeat of a
    /// reversed sale is. Asked only when the journal holds an earlier message of this kind
    /// under the trace number ([`crate::journal::Earlier::Seen`]): the host journals its 91 or
    /// 96 before the terminal can repeat.
    pub(crate) async fn reversed_by_the_host(
        &self,
        kind: MessageType,
        message: &Message<'_>,
        request: &Request,
    ) -> bool {
        if !posts(kind) {
            return false;
        }
        let terminal = request.terminal_id.trim();
        let (batch, stan) = (i64::from(request.batch), i64::from(request.stan));
        let transaction_type = self
            .profile
            .subfield_text(message, 60, 1)
            .unwrap_or_default();
        match self
            .store
            .reversal_queued(terminal, batch, stan, &transaction_type)
            .await
        {
            Ok(queued) => queued,
            Err(error) => {
                // Deciding again could approve what a queued reversal then undoes: refuse.
                tracing::warn!(%error, "cannot read the store-and-forward queue");
                true
            }
        }
    }

    /// Forwards every queued reversal that is due, once; returns how many were acknowledged.
    pub async fn forward_reversals(&self) -> Result<usize, StoreError> {
        let due = self
            .store
            .due_reversals(now_micros(), REVERSALS_PER_PASS)
            .await?;
        let mut acknowledged = 0;
        for pending in due {
            let response = self.forward(&pending).await;
            let now = now_micros();
            let done = response == ResponseCode::Approved;
            let backoff = REVERSAL_GRACE
                .saturating_mul(2u32.saturating_pow(u32::try_from(pending.attempts).unwrap_or(16)))
                .min(MAX_BACKOFF);
            if done {
                acknowledged += 1;
                self.counters
                    .reversals_forwarded
                    .fetch_add(1, Ordering::Relaxed);
            } else {
                tracing::error!(terminal = %pending.terminal_id, stan = pending.stan, response = response.code(), attempts = pending.attempts + 1, "a queued reversal was not acknowledged; it will be tried again");
            }
            self.store
                .record_reversal_attempt(ReversalAttempt {
                    id: pending.id,
                    response: response.code().to_owned(),
                    done_at: done.then_some(now),
                    next_attempt_at: now.saturating_add(micros(backoff)),
                })
                .await?;
        }
        Ok(acknowledged)
    }

    /// Forwards queued reversals every `interval` until `stop` turns true.
    pub async fn run_store_and_forward(
        self: std::sync::Arc<Self>,
        interval: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            // One node forwards at a time (docs/scaling.md); the others' queued reversals are
            // in the same table, so the leader forwards them too.
            if self.store.leads(store::leader::Job::StoreAndForward).await
                && let Err(error) = self.forward_reversals().await
            {
                tracing::error!(%error, "store-and-forward pass failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    /// One attempt: the queued reversal as the 0400 a terminal would send, through the
    /// terminal's reversal path, journaled.
    async fn forward(&self, pending: &PendingReversal) -> ResponseCode {
        let Some(message) = reversal_message(pending) else {
            return ResponseCode::FormatError;
        };
        let request = match Request::parse(self.profile, &message) {
            Ok(request) => request,
            Err(reject) => return reject.response,
        };
        let Some(terminal) = self.terminal(&request.terminal_id) else {
            return ResponseCode::NotPermittedToTerminal;
        };

        let started = std::time::Instant::now();
        let received_at = now_micros();
        let answer = self
            .financial(
                MessageType::Reversal,
                &message,
                &request,
                &terminal,
                &MessageKeys::Unkeyed,
            )
            .await;
        let response = answer
            .as_ref()
            .and_then(|answer| answer.message.response_code().ok())
            .and_then(|code| ResponseCode::parse(&code))
            .unwrap_or(ResponseCode::SystemMalfunction);
        let mut entry = crate::journal::entry(
            self.profile,
            Some(&message),
            Some(request.kind),
            answer.as_ref().map(|answer| &answer.message),
            None,
        );
        entry.received_at = received_at;
        entry.duration_us = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
        entry.peer = STORE_AND_FORWARD_PEER.to_owned();
        if let Err(error) = self.store.journal(vec![entry]).await {
            self.counters
                .journal_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(%error, "the journal could not record a forwarded reversal");
        }
        response
    }
}

/// The 0400 a terminal would have sent to reverse the queued message.
fn reversal_message(pending: &PendingReversal) -> Option<Message<'static>> {
    let mut message = Message::new(Mti::parse("0400").ok()?);
    message.set_text(3, pending.processing_code.clone());
    message.set_text(4, format!("{:012}", pending.amount_minor));
    message.set_text(11, format!("{:06}", pending.stan));
    message.set_text(22, "000");
    message.set_text(25, pending.condition_code.clone());
    message.set_text(39, REVERSAL_REASON);
    message.set_text(41, pending.terminal_id.clone());
    message.set_text(42, pending.merchant_id.clone());
    message.set_text(49, format!("{:03}", pending.currency));
    message.set_text(
        60,
        format!("{}{:06}", pending.transaction_type, pending.batch),
    );
    if let (Some(batch), Some(stan)) = (pending.original_batch, pending.original_stan) {
        message.set_text(61, format!("{batch:06}{stan:06}"));
    }
    // Field 64 must be present; the host does not MAC what it sends itself.
    message.set_bytes(64, vec![0; 8]);
    Some(message)
}
