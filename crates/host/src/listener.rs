//! The TCP listener: accept within the connection limit, cut the byte stream into frames, hand
//! each to the [`Handler`], write the replies in request order, and stop cleanly.
//!
//! Per connection, one task runs two halves joined together: the reader (the loop that decides
//! when to close) and the writer. Each frame's handler runs in a task of its own, so several
//! can be in flight; the reader passes their handles to the writer through a queue, in arrival
//! order, and the writer awaits them one by one, which keeps replies in request order.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use iso8583::LengthPrefix;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::buffer::{BadFrame, FrameBuffer};
use crate::error::Error;
use crate::handler::{Handler, Reply};
use crate::limits::Limits;
use crate::rate::TokenBucket;
use crate::stats::{Counter, OpenConnection, Stats};

/// Pause after a failed `accept`. The usual cause is running out of file descriptors; trying
/// again at once would spin a core while nothing can have changed.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// A bound TCP listener, ready to [`serve`](Listener::serve).
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    prefix: LengthPrefix,
    limits: Limits,
    stats: Stats,
}

impl Listener {
    /// Checks `limits` and binds `addr` (port 0 picks a free port; read it back with
    /// [`local_addr`](Listener::local_addr)).
    pub async fn bind(
        addr: SocketAddr,
        prefix: LengthPrefix,
        limits: Limits,
    ) -> Result<Self, Error> {
        limits.validate()?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(Self {
            listener,
            prefix,
            limits,
            stats: Stats::default(),
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.listener.local_addr()?)
    }

    /// The counters, shared with the running listener: keep this handle before `serve`.
    pub fn stats(&self) -> Stats {
        self.stats.clone()
    }

    /// Serves until `shutdown` holds `true` (or its sender is dropped, since nothing could stop
    /// the listener after that). Then it stops accepting, stops reading new frames, lets the
    /// messages in flight finish and their replies go out for up to `Limits::shutdown_grace`,
    /// and cuts whatever is left.
    pub async fn serve<H: Handler>(self, handler: Arc<H>, mut shutdown: watch::Receiver<bool>) {
        let Listener {
            listener,
            prefix,
            limits,
            stats,
        } = self;
        let shared = Arc::new(Shared {
            handler,
            prefix,
            limits,
            stats,
        });
        let slots = Arc::new(Semaphore::new(shared.limits.max_connections));
        let mut connections = JoinSet::new();
        info!(address = ?listener.local_addr().ok(), ?prefix, "ISO 8583 listener started");
        loop {
            tokio::select! {
                biased;
                () = shutting_down(&mut shutdown) => break,
                Some(ended) = connections.join_next(), if !connections.is_empty() => {
                    if let Err(error) = ended {
                        warn!(%error, "a connection task failed");
                    }
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                            shared.stats.count(Counter::ConnectionsRefused);
                            debug!(%peer, "connection refused: max_connections open");
                            drop(stream);
                            continue;
                        };
                        shared.stats.count(Counter::ConnectionsAccepted);
                        let open = shared.stats.open_connection();
                        let shared = Arc::clone(&shared);
                        let shutdown = shutdown.clone();
                        let held = (slot, open);
                        connections.spawn(async move {
                            serve_connection(&shared, stream, peer, shutdown, held).await;
                        });
                    }
                    Err(error) => {
                        warn!(%error, "accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    }
                },
            }
        }
        drop(listener);
        info!(
            open = connections.len(),
            "listener stopped accepting; draining"
        );
        let drain = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(shared.limits.shutdown_grace, drain)
            .await
            .is_err()
        {
            warn!(
                cut = connections.len(),
                grace_ms = shared.limits.shutdown_grace.as_millis(),
                "shutdown grace over; closing the remaining connections"
            );
            connections.shutdown().await;
        }
        info!("ISO 8583 listener stopped");
    }
}

/// What every connection task of one listener shares.
struct Shared<H> {
    handler: Arc<H>,
    prefix: LengthPrefix,
    limits: Limits,
    stats: Stats,
}

/// Returns once shutdown is asked (or can no longer be asked). Cancel safe.
async fn shutting_down(shutdown: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: treated as shutdown, see `Listener::serve`.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    PeerClosed,
    PeerClosedMidFrame,
    Shutdown,
    Idle,
    ReadDeadline,
    Oversized {
        len: usize,
    },
    Malformed,
    RateLimited,
    ReadFailed(io::ErrorKind),
    /// The writer ended first; its own reason is the one reported.
    WriterStopped,
    HandlerClosed,
    HandlerFailed,
    ReplyTooLarge {
        len: usize,
    },
    WriteTimeout,
    WriteFailed(io::ErrorKind),
}

impl Ended {
    fn counter(self) -> Option<Counter> {
        match self {
            Ended::Idle => Some(Counter::IdleCloses),
            Ended::ReadDeadline => Some(Counter::ReadDeadlineCloses),
            Ended::Oversized { .. } => Some(Counter::FramesOversized),
            Ended::Malformed => Some(Counter::FramesMalformed),
            Ended::RateLimited => Some(Counter::RateLimited),
            Ended::HandlerClosed => Some(Counter::HandlerCloses),
            Ended::WriteTimeout => Some(Counter::WriteTimeoutCloses),
            _ => None,
        }
    }

    /// Closes that point at a misbehaving peer are worth a warning; the rest is routine.
    fn is_peer_fault(self) -> bool {
        matches!(
            self,
            Ended::Oversized { .. }
                | Ended::Malformed
                | Ended::RateLimited
                | Ended::ReadDeadline
                | Ended::WriteTimeout
        )
    }
}

/// A message handed to its handler: the handler's task (aborted if dropped, so a closed
/// connection leaves no work behind) and the in-flight slot it holds until its reply is out.
struct Pending {
    task: AbortOnDrop,
    _slot: OwnedSemaphorePermit,
}

struct AbortOnDrop(JoinHandle<Reply>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn serve_connection<H: Handler>(
    shared: &Arc<Shared<H>>,
    stream: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
    held: (OwnedSemaphorePermit, OpenConnection),
) {
    let opened = Instant::now();
    // Requests and replies are small and latency-bound: send each reply at once.
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%peer, %error, "cannot set TCP_NODELAY");
    }
    let (mut reader, mut writer) = stream.into_split();
    let in_flight = Arc::new(Semaphore::new(shared.limits.max_in_flight));
    let (queue, mut replies) = mpsc::channel(shared.limits.max_in_flight);
    let last_reply = LastReply::new(opened);
    debug!(%peer, "connection opened");

    // Each half counts its reason before it lets go of its end of the queue, and the socket is
    // closed only when both are done, so a peer that sees the close also sees the count.
    let read_half = async {
        let ended = read_requests(
            shared,
            &mut reader,
            peer,
            &queue,
            &in_flight,
            &last_reply,
            &mut shutdown,
        )
        .await;
        count_end(shared, ended);
        drop(queue);
        ended
    };
    let write_half = async {
        let ended = write_replies(shared, &mut writer, &mut replies, &last_reply, peer).await;
        if let Some(ended) = ended {
            count_end(shared, ended);
        }
        drop(replies);
        ended
    };
    let (read_ended, write_ended) = tokio::join!(read_half, write_half);
    // Give back the connection slot and the open count before the socket closes (when the
    // halves drop at the end of this function), so a peer that sees the close sees them too.
    drop(held);
    let ended = write_ended.unwrap_or(read_ended);
    let open_ms = opened.elapsed().as_millis();
    if ended.is_peer_fault() {
        warn!(%peer, reason = ?ended, open_ms, "connection closed");
    } else {
        debug!(%peer, reason = ?ended, open_ms, "connection closed");
    }
}

fn count_end<H>(shared: &Shared<H>, ended: Ended) {
    if let Some(counter) = ended.counter() {
        shared.stats.count(counter);
    }
}

/// The loop that reads frames and decides when the connection ends.
async fn read_requests<H: Handler>(
    shared: &Arc<Shared<H>>,
    reader: &mut OwnedReadHalf,
    peer: SocketAddr,
    queue: &mpsc::Sender<Pending>,
    in_flight: &Arc<Semaphore>,
    last_reply: &LastReply,
    shutdown: &mut watch::Receiver<bool>,
) -> Ended {
    let limits = &shared.limits;
    let mut buffer = FrameBuffer::new(shared.prefix, limits.max_frame_len);
    let mut rate = TokenBucket::new(limits.connection_rate);
    let mut last_read = Instant::now();
    let mut idle_deadline = last_read + limits.idle_timeout;
    // When the first byte of the frame now in the buffer arrived; `None` between frames.
    let mut frame_started: Option<Instant> = None;
    loop {
        // When the last frame taken out of the buffer was handed over; waiting for an in-flight
        // slot is our delay, not the peer's, so the next frame's read deadline starts there.
        let mut dispatched_at = None;
        loop {
            let frame = match buffer.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(BadFrame::TooLarge { len }) => return Ended::Oversized { len },
                Err(BadFrame::Malformed) => return Ended::Malformed,
            };
            if rate.check(Instant::now().into_std()).is_err() {
                return Ended::RateLimited;
            }
            let slot = tokio::select! {
                biased;
                () = shutting_down(shutdown) => return Ended::Shutdown,
                () = queue.closed() => return Ended::WriterStopped,
                slot = Arc::clone(in_flight).acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => return Ended::WriterStopped,
                },
            };
            shared.stats.count(Counter::FramesIn);
            let task = spawn_handler(shared, frame, peer);
            if queue.send(Pending { task, _slot: slot }).await.is_err() {
                return Ended::WriterStopped;
            }
            dispatched_at = Some(Instant::now());
        }
        frame_started = match (buffer.is_empty(), frame_started, dispatched_at) {
            (true, _, _) => None,
            (false, _, Some(dispatched)) => Some(dispatched),
            (false, Some(started), None) => Some(started),
            (false, None, None) => Some(last_read),
        };
        let deadline = match frame_started {
            Some(started) => started + limits.frame_read_timeout,
            None => idle_deadline,
        };
        let read = tokio::select! {
            biased;
            () = shutting_down(shutdown) => return Ended::Shutdown,
            () = queue.closed() => return Ended::WriterStopped,
            read = tokio::time::timeout_at(deadline, buffer.read_from(reader)) => read,
        };
        match read {
            Err(_elapsed) if frame_started.is_some() => return Ended::ReadDeadline,
            Err(_elapsed) => {
                let pending = in_flight.available_permits() < limits.max_in_flight;
                let quiet_since = last_read.max(last_reply.at());
                match idle_until(Instant::now(), quiet_since, pending, limits.idle_timeout) {
                    Some(later) => idle_deadline = later,
                    None => return Ended::Idle,
                }
            }
            Ok(Ok(0)) if buffer.is_empty() => return Ended::PeerClosed,
            Ok(Ok(0)) => return Ended::PeerClosedMidFrame,
            Ok(Ok(_)) => {
                last_read = Instant::now();
                idle_deadline = last_read + limits.idle_timeout;
            }
            Ok(Err(error)) => return Ended::ReadFailed(error.kind()),
        }
    }
}

/// When the connection will have been idle for `idle_timeout`, or `None` if it already has. A
/// connection is idle when no byte has moved either way and no reply is owed: a peer waiting
/// for its answer is not idle, nor is one that just got it and is about to send the next.
fn idle_until(
    now: Instant,
    quiet_since: Instant,
    pending: bool,
    idle_timeout: Duration,
) -> Option<Instant> {
    if pending {
        return Some(now + idle_timeout);
    }
    let until = quiet_since + idle_timeout;
    (until > now).then_some(until)
}

/// When the writer last wrote a reply, shared with the reader for the idle clock. Both halves
/// run in one task, but the task must be `Send`, hence an atomic rather than a `Cell`.
struct LastReply {
    opened: Instant,
    nanos_after_open: AtomicU64,
}

impl LastReply {
    fn new(opened: Instant) -> Self {
        Self {
            opened,
            nanos_after_open: AtomicU64::new(0),
        }
    }

    fn mark(&self) {
        let nanos = u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.nanos_after_open.store(nanos, Ordering::Relaxed);
    }

    fn at(&self) -> Instant {
        self.opened + Duration::from_nanos(self.nanos_after_open.load(Ordering::Relaxed))
    }
}

/// Runs the handler for one frame under the handler deadline, in its own task.
fn spawn_handler<H: Handler>(
    shared: &Arc<Shared<H>>,
    frame: Vec<u8>,
    peer: SocketAddr,
) -> AbortOnDrop {
    let shared = Arc::clone(shared);
    AbortOnDrop(tokio::spawn(async move {
        let limit = shared.limits.handler_timeout;
        match tokio::time::timeout(limit, shared.handler.handle(&frame, peer)).await {
            Ok(reply) => reply,
            Err(_elapsed) => {
                shared.stats.count(Counter::HandlerDeadlines);
                let reply = shared.handler.deadline_reply(&frame);
                warn!(
                    %peer,
                    frame_len = frame.len(),
                    deadline_ms = limit.as_millis(),
                    deadline_reply = reply.is_some(),
                    "handler missed its deadline"
                );
                reply.map_or(Reply::Close, Reply::Send)
            }
        }
    }))
}

/// Writes replies in request order until the queue ends (`None`) or the connection must close.
async fn write_replies<H>(
    shared: &Shared<H>,
    writer: &mut OwnedWriteHalf,
    replies: &mut mpsc::Receiver<Pending>,
    last_reply: &LastReply,
    peer: SocketAddr,
) -> Option<Ended> {
    while let Some(mut pending) = replies.recv().await {
        let reply = match (&mut pending.task.0).await {
            Ok(reply) => reply,
            Err(error) => {
                warn!(%peer, %error, "handler task failed");
                return Some(Ended::HandlerFailed);
            }
        };
        let body = match reply {
            Reply::Send(body) => body,
            Reply::NoReply => continue,
            Reply::Close => return Some(Ended::HandlerClosed),
        };
        if body.len() > shared.limits.max_frame_len {
            warn!(%peer, reply_len = body.len(), "reply longer than the frame limit");
            return Some(Ended::ReplyTooLarge { len: body.len() });
        }
        let Ok(framed) = shared.prefix.frame(&body) else {
            return Some(Ended::ReplyTooLarge { len: body.len() });
        };
        match tokio::time::timeout(shared.limits.write_timeout, writer.write_all(&framed)).await {
            Err(_elapsed) => return Some(Ended::WriteTimeout),
            Ok(Err(error)) => return Some(Ended::WriteFailed(error.kind())),
            Ok(Ok(())) => {
                last_reply.mark();
                shared.stats.count(Counter::FramesOut);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_counts_from_the_last_byte_either_way_unless_a_reply_is_owed() {
        let idle = Duration::from_millis(100);
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(idle_until(at(100), t0, false, idle), None);
        assert_eq!(idle_until(at(100), at(30), false, idle), Some(at(130)));
        assert_eq!(idle_until(at(500), t0, true, idle), Some(at(600)));
    }
}
