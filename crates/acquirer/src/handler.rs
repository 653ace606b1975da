//! The acquirer host's [`host::Handler`]: unpack, recognise, check the terminal, answer.
//!
//! What it answers today: echo tests (00); every message from an unknown or inactive terminal
//! (58) or with a merchant id that is not the terminal's (03); messages that do not fit their
//! type (30, naming the field) or that the host does not know (12). Payment messages it
//! recognises are answered 40 ("function not supported") until the authorization path of
//! issue 5 is wired in: the terminal learns the truth at once instead of timing out, and
//! nothing is half-done.

use crate::message::{MessageType, Request, response_to};
use host::{Handler, Reply};
use iso8583::{Message, Profile, ResponseCode};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the host knows of a terminal for its checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerminalRecord {
    pub merchant_id: String,
    pub active: bool,
}

/// Counters of what the handler answered, for `/metrics`.
#[derive(Debug, Default)]
pub struct HandlerCounters {
    pub answered: AtomicU64,
    pub rejected: AtomicU64,
    pub unparsable: AtomicU64,
}

#[derive(Debug)]
pub struct TerminalHandler {
    profile: &'static Profile,
    terminals: HashMap<String, TerminalRecord>,
    pub counters: HandlerCounters,
}

impl TerminalHandler {
    pub fn new(profile: &'static Profile, terminals: HashMap<String, TerminalRecord>) -> Self {
        TerminalHandler {
            profile,
            terminals,
            counters: HandlerCounters::default(),
        }
    }

    /// The response code for a request, before any payment logic.
    fn decide(&self, message: &Message<'_>) -> ResponseCode {
        let request = match Request::parse(self.profile, message) {
            Ok(request) => request,
            Err(reject) => {
                tracing::info!(field = ?reject.field, response = reject.response.code(), "request rejected: {}", reject.reason);
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                return reject.response;
            }
        };
        match self.terminals.get(request.terminal_id.trim()) {
            None => return ResponseCode::NotPermittedToTerminal,
            Some(terminal) if !terminal.active => return ResponseCode::NotPermittedToTerminal,
            Some(terminal) if terminal.merchant_id != request.merchant_id.trim() => {
                return ResponseCode::InvalidMerchant;
            }
            Some(_) => {}
        }
        match request.kind {
            MessageType::EchoTest => ResponseCode::Approved,
            _ => ResponseCode::FunctionNotSupported,
        }
    }

    /// The packed answer to `frame` with `response`, or `None` when the frame cannot be
    /// answered (it does not unpack, or it is not a request).
    fn answer(
        &self,
        frame: &[u8],
        response: impl FnOnce(&Message<'_>) -> ResponseCode,
    ) -> Option<Vec<u8>> {
        let message = self.profile.unpack(frame).ok()?;
        let answer = response_to(&message, response(&message))?;
        self.profile.pack(&answer).ok()
    }
}

impl Handler for TerminalHandler {
    async fn handle(&self, frame: &[u8], _peer: SocketAddr) -> Reply {
        match self.answer(frame, |message| self.decide(message)) {
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
        self.answer(frame, |_| ResponseCode::SystemMalfunction)
    }
}
