//! ISO 8583 over TCP: the transport every part of the acquirer host plugs into, with no
//! payment logic of its own.
//!
//! - [`Listener`] binds an address, accepts terminals within a connection limit, cuts each byte
//!   stream into frames (`iso8583::LengthPrefix`: 2-byte binary by default, 4 ASCII digits as an
//!   option), hands each complete frame to a [`Handler`] and writes the replies, framed the
//!   same way, in request order. Every bound is in [`Limits`], each with its reason.
//! - [`Handler`] is the payment logic: one `async fn` per frame, returning a [`Reply`], and an
//!   optional `deadline_reply` (a 96) for when it runs out of time.
//! - [`RateLimiter`] keeps a token bucket per key (the terminal id) with injected time.
//! - [`HostStats`] is a snapshot of the counters, for `/metrics`.
//! - [`Client`] is the other end: connect, `exchange` a request for its reply.
//!
//! Frame contents carry card data, so nothing here logs them: logs hold lengths, peers and
//! timings only. `docs/transport.md` lists the limits and what happens when each is hit.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use host::{Client, Handler, Limits, Listener, Reply};
//! use iso8583::LengthPrefix;
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     async fn handle(&self, frame: &[u8], _peer: std::net::SocketAddr) -> Reply {
//!         Reply::Send(frame.to_vec())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), host::Error> {
//! // Port 0: the system picks a free port, read back with `local_addr`.
//! let address = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
//! let listener = Listener::bind(address, LengthPrefix::Binary2, Limits::default()).await?;
//! let address = listener.local_addr()?;
//! let stats = listener.stats();
//! let (stop, stopped) = tokio::sync::watch::channel(false);
//! let server = tokio::spawn(listener.serve(Arc::new(Echo), stopped));
//!
//! // A terminal's side: one request (TPDU + body), one reply.
//! let mut client = Client::connect(address, LengthPrefix::Binary2, Duration::from_secs(1)).await?;
//! let reply = client.exchange(b"\x60\x00\x01\x00\x00 0800", Duration::from_secs(1)).await?;
//! assert_eq!(reply, b"\x60\x00\x01\x00\x00 0800");
//! assert_eq!(stats.snapshot().frames_out, 1);
//!
//! // Ctrl-C in `easypos up`: ask to stop, then wait for in-flight messages to drain.
//! let _ = stop.send(true);
//! let _ = server.await;
//! # Ok(())
//! # }
//! ```

mod buffer;
mod client;
mod error;
mod handler;
pub mod limits;
mod listener;
pub mod rate;
mod stats;

pub use client::Client;
pub use error::Error;
pub use handler::{Handler, Reply};
pub use limits::Limits;
pub use listener::Listener;
pub use rate::{Limited, Rate, RateLimiter, TokenBucket};
pub use stats::{HostStats, Metric, Stats};
