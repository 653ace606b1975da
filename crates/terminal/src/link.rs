//! The terminal's line to its host: one TCP connection, frames with a 2-byte big-endian
//! length (docs/transport.md), one request and one answer at a time, every wait bounded.
//! Blocking: a terminal does one thing at a time, and a screen can run it on a thread.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How long a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest frame the terminal accepts (the codec's own limit).
pub const MAX_FRAME: usize = iso8583::frame::MAX_FRAME_LEN;

/// Why an exchange failed. `Timeout` and `Lost` mean the request may have reached the host:
/// the terminal must reverse it.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot reach the host at {address}: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("the host did not answer within {0} ms")]
    Timeout(u128),
    #[error("the connection to the host broke: {0}")]
    Lost(String),
    #[error("the host sent a frame of {0} bytes, above the limit")]
    Oversize(usize),
}

impl LinkError {
    /// Whether the request may have been delivered (so its outcome is unknown).
    pub fn may_have_arrived(&self) -> bool {
        matches!(self, LinkError::Timeout(_) | LinkError::Lost(_))
    }
}

/// A connection to the host.
#[derive(Debug)]
pub struct Link {
    stream: TcpStream,
}

impl Link {
    /// Connects to `address` (host:port).
    pub fn connect(address: &str) -> Result<Link, LinkError> {
        let unreachable = |reason: String| LinkError::Unreachable {
            address: address.to_owned(),
            reason,
        };
        let addresses: Vec<SocketAddr> = address
            .to_socket_addrs()
            .map_err(|error| unreachable(error.to_string()))?
            .collect();
        let mut last = String::from("no address");
        for candidate in addresses {
            match TcpStream::connect_timeout(&candidate, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(Link { stream });
                }
                Err(error) => last = error.to_string(),
            }
        }
        Err(unreachable(last))
    }

    /// Sends `frame` and waits at most `timeout` for the whole answer.
    pub fn exchange(&mut self, frame: &[u8], timeout: Duration) -> Result<Vec<u8>, LinkError> {
        let length = u16::try_from(frame.len()).map_err(|_| LinkError::Oversize(frame.len()))?;
        let deadline = Instant::now() + timeout;
        let lost = |error: std::io::Error| LinkError::Lost(error.to_string());
        self.stream.set_write_timeout(Some(timeout)).map_err(lost)?;
        let mut out = Vec::with_capacity(frame.len() + 2);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(frame);
        self.stream.write_all(&out).map_err(lost)?;
        let mut prefix = [0u8; 2];
        self.read_exact_by(&mut prefix, deadline, timeout)?;
        let length = usize::from(u16::from_be_bytes(prefix));
        if length > MAX_FRAME {
            return Err(LinkError::Oversize(length));
        }
        let mut answer = vec![0u8; length];
        self.read_exact_by(&mut answer, deadline, timeout)?;
        Ok(answer)
    }

    fn read_exact_by(
        &mut self,
        buffer: &mut [u8],
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), LinkError> {
        let mut filled = 0;
        while filled < buffer.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(LinkError::Timeout(timeout.as_millis()));
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|error| LinkError::Lost(error.to_string()))?;
            match self.stream.read(&mut buffer[filled..]) {
                Ok(0) => return Err(LinkError::Lost("the host closed the connection".into())),
                Ok(read) => filled += read,
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(LinkError::Timeout(timeout.as_millis()));
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(LinkError::Lost(error.to_string())),
            }
        }
        Ok(())
    }
}
