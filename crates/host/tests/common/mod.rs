//! Shared test scaffolding: a listener on 127.0.0.1:0, handlers with known behaviour, and raw
//! byte-level helpers that frame by hand (not through the code under test).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use host::{Handler, HostStats, Limits, Listener, Reply, Stats};
use iso8583::LengthPrefix;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Upper bound on any wait in a test: far above every limit the tests set, so it only fires
/// when something is broken.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// Limits in tens of milliseconds so the suite stays fast.
pub fn fast_limits() -> Limits {
    Limits {
        idle_timeout: Duration::from_secs(2),
        frame_read_timeout: Duration::from_millis(60),
        handler_timeout: Duration::from_millis(300),
        write_timeout: Duration::from_millis(500),
        shutdown_grace: Duration::from_secs(2),
        ..Limits::default()
    }
}

pub struct Server {
    pub addr: SocketAddr,
    pub stats: Stats,
    pub stop: watch::Sender<bool>,
    pub task: JoinHandle<()>,
}

impl Server {
    pub async fn start<H: Handler>(prefix: LengthPrefix, limits: Limits, handler: Arc<H>) -> Self {
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), prefix, limits)
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = listener.stats();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(listener.serve(handler, stopped));
        Self {
            addr,
            stats,
            stop,
            task,
        }
    }

    pub fn stats(&self) -> HostStats {
        self.stats.snapshot()
    }

    pub async fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    }

    pub async fn shutdown(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("serve ends after shutdown")
            .unwrap();
    }
}

/// Frames by hand, independently of `LengthPrefix::frame`.
pub fn frame(prefix: LengthPrefix, body: &[u8]) -> Vec<u8> {
    let mut out = match prefix {
        LengthPrefix::Binary2 => u16::try_from(body.len()).unwrap().to_be_bytes().to_vec(),
        LengthPrefix::Ascii4 => format!("{:04}", body.len()).into_bytes(),
    };
    out.extend_from_slice(body);
    out
}

/// Reads one framed reply, by hand.
pub async fn read_reply(stream: &mut TcpStream, prefix: LengthPrefix) -> Vec<u8> {
    tokio::time::timeout(PATIENCE, async {
        let mut head = vec![0; prefix.width()];
        stream.read_exact(&mut head).await.unwrap();
        let len = match prefix {
            LengthPrefix::Binary2 => usize::from(u16::from_be_bytes([head[0], head[1]])),
            LengthPrefix::Ascii4 => std::str::from_utf8(&head).unwrap().parse().unwrap(),
        };
        let mut body = vec![0; len];
        stream.read_exact(&mut body).await.unwrap();
        body
    })
    .await
    .expect("a reply within the test's patience")
}

/// Waits until the server closes the connection (end of stream or reset), failing on any byte.
pub async fn expect_closed(stream: &mut TcpStream) {
    let mut byte = [0; 1];
    match tokio::time::timeout(PATIENCE, stream.read(&mut byte)).await {
        Ok(Ok(0)) => {}
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(Ok(_)) => panic!("expected the connection closed, got a byte"),
        Ok(Err(error)) => panic!("expected the connection closed, got {error}"),
        Err(_) => panic!("the connection was not closed within {PATIENCE:?}"),
    }
}

/// Asserts nothing arrives for `quiet` and the connection stays open.
pub async fn expect_quiet(stream: &mut TcpStream, quiet: Duration) {
    let mut byte = [0; 1];
    if let Ok(read) = tokio::time::timeout(quiet, stream.read(&mut byte)).await {
        panic!("expected silence, got {read:?}");
    }
}

pub async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
}

/// Echoes every frame and counts calls.
#[derive(Default)]
pub struct Echo {
    pub calls: AtomicUsize,
}

impl Handler for Echo {
    async fn handle(&self, frame: &[u8], _peer: SocketAddr) -> Reply {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Reply::Send(frame.to_vec())
    }
}

/// Interprets each frame as a command, so one handler covers the behaviours tests need:
/// `sleep:N:rest` sleeps N ms then echoes; `close` closes; `silent` answers nothing;
/// `huge` answers more than the frame limit; `panic` panics; anything else is echoed.
pub struct Scripted {
    /// What `deadline_reply` returns, prefixed to the request.
    pub deadline_prefix: Option<&'static [u8]>,
    pub started: AtomicUsize,
    pub finished: AtomicUsize,
}

impl Scripted {
    pub fn new(deadline_prefix: Option<&'static [u8]>) -> Arc<Self> {
        Arc::new(Self {
            deadline_prefix,
            started: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
        })
    }
}

pub fn sleep_frame(ms: u64, tag: &str) -> Vec<u8> {
    format!("sleep:{ms}:{tag}").into_bytes()
}

impl Handler for Scripted {
    async fn handle(&self, frame: &[u8], _peer: SocketAddr) -> Reply {
        self.started.fetch_add(1, Ordering::SeqCst);
        let text = String::from_utf8_lossy(frame).into_owned();
        let reply = if let Some(rest) = text.strip_prefix("sleep:") {
            let (ms, _tag) = rest.split_once(':').unwrap();
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
            Reply::Send(frame.to_vec())
        } else if text == "close" {
            Reply::Close
        } else if text == "silent" {
            Reply::NoReply
        } else if text == "panic" {
            panic!("a handler bug");
        } else if text == "huge" {
            Reply::Send(vec![0; iso8583::frame::MAX_FRAME_LEN + 1])
        } else {
            Reply::Send(frame.to_vec())
        };
        self.finished.fetch_add(1, Ordering::SeqCst);
        reply
    }

    fn deadline_reply(&self, frame: &[u8]) -> Option<Vec<u8>> {
        self.deadline_prefix.map(|prefix| [prefix, frame].concat())
    }
}
