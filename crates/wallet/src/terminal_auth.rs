//! Terminals sign their requests to the wallet's terminal routes (create, query, charge,
//! cancel; docs/wallet.md "Terminal authentication") with their own ISO 8583 MAC keys: the
//! sign-on's MAC key for master/session terminals, the request key of a fresh KSN for DUKPT
//! terminals. The MAC is checked by the acquirer's own verifier
//! ([`acquirer::TerminalHandler::verify_terminal_mac`]), so a terminal's HTTP requests and its
//! ISO 8583 messages are held to one key, one algorithm and one sign-on.
//!
//! The MAC covers a canonical text ([`canonical`]): the method, the path, the terminal, the
//! time, a nonce, the KSN and the SHA-256 of the body. A request more than
//! [`MAX_CLOCK_SKEW_SECONDS`] from the host's clock is refused, and so is a nonce the terminal
//! used before within that window, so a captured request cannot be sent again.
//!
//! ```
//! let text = wallet::terminal_auth::canonical(&wallet::terminal_auth::Signed {
//!     method: "GET",
//!     path: "/wallet/v1/orders/10000001-1",
//!     terminal_id: "10000001",
//!     timestamp: 1_764_100_000,
//!     nonce: "n-1",
//!     ksn: None,
//!     body: b"",
//! });
//! assert!(text.starts_with("EASYPOS-WALLET-MAC-1\nGET\n/wallet/v1/orders/10000001-1\n"));
//! ```

use axum::http::HeaderMap;
use iso8583::ResponseCode;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const HEADER_TERMINAL: &str = "x-easypos-terminal";
pub const HEADER_TIMESTAMP: &str = "x-easypos-timestamp";
pub const HEADER_NONCE: &str = "x-easypos-nonce";
pub const HEADER_KSN: &str = "x-easypos-ksn";
pub const HEADER_MAC: &str = "x-easypos-mac";

/// The first line of the signed text: the scheme's version, so a later scheme never accepts
/// this one's MACs.
const SCHEME: &str = "EASYPOS-WALLET-MAC-1";
/// How far a request's time may be from the host's: 5 minutes, room for terminals' clocks,
/// short enough that the nonces of the window fit in memory.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;
/// A nonce is 8 to 64 letters, digits, `-` or `_`: enough for 128 random bits in hex, short
/// enough to keep.
pub const MIN_NONCE_CHARS: usize = 8;
pub const MAX_NONCE_CHARS: usize = 64;
/// Nonces kept per terminal: a terminal polls every 3 s, so a window holds about 200 of its
/// requests; 4096 bounds the memory of one terminal that signs far more.
pub const MAX_NONCES_PER_TERMINAL: usize = 4096;
/// Bytes of the MAC in `X-Easypos-Mac`: 8, as in ISO 8583 field 64.
pub const MAC_BYTES: usize = 8;

/// What a terminal signs.
#[derive(Clone, Copy, Debug)]
pub struct Signed<'a> {
    /// Upper case (`GET`, `POST`).
    pub method: &'a str,
    /// The request's path, without the query (`/wallet/v1/orders`).
    pub path: &'a str,
    pub terminal_id: &'a str,
    /// Unix seconds.
    pub timestamp: i64,
    pub nonce: &'a str,
    /// Hex, as sent in `X-Easypos-Ksn` (DUKPT terminals).
    pub ksn: Option<&'a str>,
    pub body: &'a [u8],
}

/// The text a terminal MACs: one line each for the scheme, method, path, terminal, time,
/// nonce and KSN (empty for master/session), then the SHA-256 of the body in lower-case hex.
pub fn canonical(signed: &Signed<'_>) -> String {
    format!(
        "{SCHEME}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
        signed.method,
        signed.path,
        signed.terminal_id,
        signed.timestamp,
        signed.nonce,
        signed.ksn.unwrap_or(""),
        hex::encode(Sha256::digest(signed.body))
    )
}

/// A terminal request refused before anything was looked at. The messages say what is wrong
/// and never carry a key or a MAC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A header is missing or malformed.
    #[error(
        "the request is not signed by a terminal: {0} (docs/wallet.md, terminal authentication)"
    )]
    Unsigned(String),
    #[error(
        "the request's time is more than {MAX_CLOCK_SKEW_SECONDS} s from the host's: check the terminal's clock"
    )]
    StaleTimestamp,
    #[error("the nonce was used before: every request needs a new one")]
    ReplayedNonce,
    #[error("terminal {0} is unknown, inactive or not signed on: sign on first")]
    NotSignedOn(String),
    #[error("the KSN is missing, malformed or names another device")]
    BadKsn,
    #[error("the MAC does not verify under the terminal's key")]
    BadMac,
    #[error("the request's terminal_id is not the signing terminal")]
    TerminalMismatch,
    #[error("terminal {0} sent too many requests in the last {MAX_CLOCK_SKEW_SECONDS} s")]
    TooManyRequests(String),
    /// The keys could not be read: a 500 that says no more.
    #[error("the terminal's keys could not be read")]
    Internal,
}

impl AuthError {
    /// The stable error code of the JSON answer.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Unsigned(_) => "unsigned",
            AuthError::StaleTimestamp => "stale_timestamp",
            AuthError::ReplayedNonce => "replayed_nonce",
            AuthError::NotSignedOn(_) => "terminal_not_signed_on",
            AuthError::BadKsn => "bad_ksn",
            AuthError::BadMac => "bad_mac",
            AuthError::TerminalMismatch => "terminal_mismatch",
            AuthError::TooManyRequests(_) => "too_many_requests",
            AuthError::Internal => "internal",
        }
    }
}

/// Checks terminals' signatures and remembers their nonces.
pub struct TerminalAuth {
    handler: Arc<acquirer::TerminalHandler>,
    /// Per terminal: nonce → the request's time. Only nonces of requests whose MAC verified
    /// are kept, so nobody but a terminal fills its own list.
    nonces: Mutex<HashMap<String, HashMap<String, i64>>>,
}

impl std::fmt::Debug for TerminalAuth {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TerminalAuth")
            .finish_non_exhaustive()
    }
}

impl TerminalAuth {
    pub fn new(handler: Arc<acquirer::TerminalHandler>) -> Self {
        TerminalAuth {
            handler,
            nonces: Mutex::new(HashMap::new()),
        }
    }

    /// The terminal that signed this request, once its time, nonce and MAC are checked; `now`
    /// is the host's time in Unix seconds.
    pub async fn verify(
        &self,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<String, AuthError> {
        let terminal_id = header(headers, HEADER_TERMINAL)?;
        if terminal_id.is_empty()
            || terminal_id.len() > 15
            || !terminal_id.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(AuthError::Unsigned(format!(
                "{HEADER_TERMINAL} is not a terminal id"
            )));
        }
        let timestamp = header(headers, HEADER_TIMESTAMP)?
            .parse::<i64>()
            .map_err(|_| AuthError::Unsigned(format!("{HEADER_TIMESTAMP} is not Unix seconds")))?;
        if timestamp.abs_diff(now) > MAX_CLOCK_SKEW_SECONDS.unsigned_abs() {
            return Err(AuthError::StaleTimestamp);
        }
        let nonce = header(headers, HEADER_NONCE)?;
        if !(MIN_NONCE_CHARS..=MAX_NONCE_CHARS).contains(&nonce.len())
            || !nonce
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(AuthError::Unsigned(format!(
                "{HEADER_NONCE} is not {MIN_NONCE_CHARS} to {MAX_NONCE_CHARS} letters, digits, '-' or '_'"
            )));
        }
        let ksn = match headers.get(HEADER_KSN) {
            None => None,
            Some(_) => Some(header(headers, HEADER_KSN)?),
        };
        let ksn_bytes = match ksn {
            None => None,
            Some(text) => Some(hex::decode(text).map_err(|_| AuthError::BadKsn)?),
        };
        let mac = hex::decode(header(headers, HEADER_MAC)?)
            .ok()
            .filter(|mac| mac.len() == MAC_BYTES)
            .ok_or_else(|| {
                AuthError::Unsigned(format!("{HEADER_MAC} is not {MAC_BYTES} bytes in hex"))
            })?;
        if self.seen(terminal_id, nonce) {
            return Err(AuthError::ReplayedNonce);
        }
        let text = canonical(&Signed {
            method,
            path,
            terminal_id,
            timestamp,
            nonce,
            ksn,
            body,
        });
        self.handler
            .verify_terminal_mac(terminal_id, ksn_bytes.as_deref(), text.as_bytes(), &mac)
            .await
            .map_err(|code| match code {
                ResponseCode::MacFailure => AuthError::BadMac,
                ResponseCode::FormatError | ResponseCode::SecurityViolation => AuthError::BadKsn,
                ResponseCode::NotPermittedToTerminal => {
                    AuthError::NotSignedOn(terminal_id.to_owned())
                }
                _ => AuthError::Internal,
            })?;
        self.remember(terminal_id, nonce, timestamp, now)?;
        Ok(terminal_id.to_owned())
    }

    fn seen(&self, terminal_id: &str, nonce: &str) -> bool {
        self.nonces
            .lock()
            .map(|nonces| {
                nonces
                    .get(terminal_id)
                    .is_some_and(|kept| kept.contains_key(nonce))
            })
            .unwrap_or(true)
    }

    /// Keeps the nonce for the window, forgetting the terminal's nonces whose time has left
    /// it; refused when it was kept meanwhile (two requests with one nonce at once).
    fn remember(
        &self,
        terminal_id: &str,
        nonce: &str,
        timestamp: i64,
        now: i64,
    ) -> Result<(), AuthError> {
        let mut nonces = self.nonces.lock().map_err(|_| AuthError::Internal)?;
        let kept = nonces.entry(terminal_id.to_owned()).or_default();
        kept.retain(|_, time| time.abs_diff(now) <= MAX_CLOCK_SKEW_SECONDS.unsigned_abs());
        if kept.contains_key(nonce) {
            return Err(AuthError::ReplayedNonce);
        }
        if kept.len() >= MAX_NONCES_PER_TERMINAL {
            return Err(AuthError::TooManyRequests(terminal_id.to_owned()));
        }
        kept.insert(nonce.to_owned(), timestamp);
        Ok(())
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, AuthError> {
    headers
        .get(name)
        .ok_or_else(|| AuthError::Unsigned(format!("no {name} header")))?
        .to_str()
        .map(str::trim)
        .map_err(|_| AuthError::Unsigned(format!("{name} is not text")))
}
