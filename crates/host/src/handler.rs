//! What the listener calls for each frame.

use std::future::Future;
use std::net::SocketAddr;

/// What to do after a message.
///
/// Three outcomes because ISO 8583 hosts need all three: most requests get a reply; some get
/// none by design (an advice the host only records, or bytes that do not parse and so have no
/// MTI to answer — the terminal's own timeout then reverses); and a peer that sends garbage on
/// purpose is cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Write this body, framed with the listener's length prefix. A body over the frame limit
    /// closes the connection instead (it could not be framed).
    Send(Vec<u8>),
    /// Write nothing and go on reading.
    NoReply,
    /// Close the connection after the replies before this one are written.
    Close,
}

/// The payment logic behind the listener, one call per complete frame.
///
/// The frame is the body after the length prefix: TPDU, header and message for `cup-bcd`. A
/// handler never sees a partial or oversize frame. It gets `&[u8]` because the acquirer unpacks
/// by borrowing (`iso8583::Message` values point into the frame) and nothing needs to own it;
/// the listener keeps the bytes so that `deadline_reply` can read them after the handler's
/// future is gone.
///
/// Messages on one connection may be handled concurrently (up to `Limits::max_in_flight`), but
/// replies are written in the order the requests arrived.
///
/// **Cancellation.** When `Limits::handler_timeout` passes, or the connection is closed, or
/// shutdown's grace ends, the handler's future is dropped at whatever `.await` it is in. Work
/// that must finish whatever happens belongs in a task or queue of its own (the store's writer
/// already commits a submitted job even if its caller goes away), and an approval that was
/// never delivered is the acquirer's to reverse (SAF).
///
/// ```
/// use std::net::SocketAddr;
/// use host::{Handler, Reply};
///
/// struct Echo;
///
/// impl Handler for Echo {
///     async fn handle(&self, frame: &[u8], _peer: SocketAddr) -> Reply {
///         Reply::Send(frame.to_vec())
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Answers one request. Implement it as `async fn`.
    fn handle(&self, frame: &[u8], peer: SocketAddr) -> impl Future<Output = Reply> + Send;

    /// The body to send when `handle` missed its deadline, e.g. the request's MTI + 10 with
    /// response code 96 ("system malfunction"), so the terminal learns the outcome now instead
    /// of timing out. `None` closes the connection. Keep it cheap and synchronous: it runs when
    /// time is already up. The default is `None`.
    fn deadline_reply(&self, frame: &[u8]) -> Option<Vec<u8>> {
        let _ = frame;
        None
    }
}
