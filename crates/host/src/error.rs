//! Errors of the transport. Nothing here carries frame contents: they may hold card data.

use std::io;
use std::net::SocketAddr;

/// Why a transport operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A limit in [`crate::Limits`] (or a [`crate::Rate`]) cannot work as given.
    #[error("limit {name}: {reason}")]
    Limit {
        name: &'static str,
        reason: &'static str,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("I/O on the connection: {0}")]
    Io(#[from] io::Error),
    /// No answer (or no connection) within the caller's time limit.
    #[error("{during} took longer than {after_ms} ms")]
    Timeout {
        during: &'static str,
        after_ms: u128,
    },
    /// The length prefix is not valid or announces more than the frame limit.
    #[error("frame: {0}")]
    Frame(#[from] iso8583::Error),
    /// A length prefix from the peer is not a length (an ASCII prefix with a non-digit).
    #[error("the length prefix is not a number")]
    BadLengthPrefix,
    /// A message to send, or a reply announced by the peer, is longer than the configured frame limit.
    #[error("message of {len} bytes is longer than the frame limit {max}")]
    TooLarge { len: usize, max: usize },
    /// The peer closed the connection (possibly in the middle of a frame).
    #[error("the peer closed the connection")]
    Closed,
    /// An earlier exchange failed part-way, so a late reply could still arrive and be taken for
    /// the answer to the next request: the client refuses further use. Connect again.
    #[error("the connection is unusable after an earlier failure; connect again")]
    Broken,
}
