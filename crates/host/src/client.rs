//! A client for one ISO 8583 connection: the terminal, the bench and the tests talk to a host
//! through it, with the same framing code the listener uses.

use std::net::SocketAddr;
use std::time::Duration;

use iso8583::LengthPrefix;
use iso8583::frame::MAX_FRAME_LEN;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::buffer::{BadFrame, FrameBuffer};
use crate::error::Error;

/// One connection to a host. Not `Clone`: a connection carries one conversation.
///
/// Any failure part-way through (a timeout, a broken pipe) leaves the conversation in an
/// unknown state — a late reply could still arrive and be read as the answer to the next
/// request — so the client then refuses further use with [`Error::Broken`]. Connect again (a
/// terminal also reverses the unanswered request).
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    peer: SocketAddr,
    prefix: LengthPrefix,
    buffer: FrameBuffer,
    broken: bool,
}

impl Client {
    /// Connects within `timeout`.
    pub async fn connect(
        addr: SocketAddr,
        prefix: LengthPrefix,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| timed_out("connect", timeout))?
            .map_err(|source| Error::Connect { addr, source })?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            peer: addr,
            prefix,
            buffer: FrameBuffer::new(prefix, MAX_FRAME_LEN),
            broken: false,
        })
    }

    /// The host's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Sends one request body (framed here) and waits for one reply body, all within `timeout`.
    pub async fn exchange(&mut self, request: &[u8], timeout: Duration) -> Result<Vec<u8>, Error> {
        let framed = self.framed(request)?;
        self.guarded("exchange", timeout, async |client: &mut Self| {
            client.stream.write_all(&framed).await?;
            client.read_frame().await
        })
        .await
    }

    /// Sends one request without waiting for the reply; with [`receive`](Client::receive) this
    /// pipelines several requests on one connection. Replies come back in request order.
    pub async fn send(&mut self, request: &[u8], timeout: Duration) -> Result<(), Error> {
        let framed = self.framed(request)?;
        self.guarded("send", timeout, async |client: &mut Self| {
            Ok(client.stream.write_all(&framed).await?)
        })
        .await
    }

    /// Waits for the next reply body.
    pub async fn receive(&mut self, timeout: Duration) -> Result<Vec<u8>, Error> {
        self.guarded("receive", timeout, async |client: &mut Self| {
            client.read_frame().await
        })
        .await
    }

    /// Frames `request` before anything is written, so an oversize request leaves the
    /// connection usable.
    fn framed(&self, request: &[u8]) -> Result<Vec<u8>, Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        if request.len() > MAX_FRAME_LEN {
            return Err(Error::TooLarge {
                len: request.len(),
                max: MAX_FRAME_LEN,
            });
        }
        Ok(self.prefix.frame(request)?)
    }

    /// Runs one step under `timeout`; any failure marks the connection broken.
    async fn guarded<T>(
        &mut self,
        during: &'static str,
        timeout: Duration,
        step: impl AsyncFnOnce(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        let outcome = match tokio::time::timeout(timeout, step(self)).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => Err(timed_out(during, timeout)),
        };
        self.broken = outcome.is_err();
        outcome
    }

    async fn read_frame(&mut self) -> Result<Vec<u8>, Error> {
        loop {
            match self.buffer.next_frame() {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(BadFrame::TooLarge { len }) => {
                    return Err(Error::TooLarge {
                        len,
                        max: MAX_FRAME_LEN,
                    });
                }
                Err(BadFrame::Malformed) => return Err(Error::BadLengthPrefix),
            }
            if self.buffer.read_from(&mut self.stream).await? == 0 {
                return Err(Error::Closed);
            }
        }
    }
}

fn timed_out(during: &'static str, timeout: Duration) -> Error {
    Error::Timeout {
        during,
        after_ms: timeout.as_millis(),
    }
}
