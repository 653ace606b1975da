//! Frames carry card data: plant a canary card number in every kind of frame the listener
//! handles, badly or well, and check that none of it reaches the logs at any level.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use host::{Limits, Rate};
use iso8583::LengthPrefix;

/// A test card number (Luhn-valid, from no real range we know of), in ASCII and as packed BCD.
const CANARY: &str = "4761739001010119";
const CANARY_BCD: [u8; 8] = [0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x01, 0x19];

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn with_canary(command: &[u8]) -> Vec<u8> {
    [command, b"|", CANARY.as_bytes(), b"|", &CANARY_BCD].concat()
}

#[tokio::test(flavor = "current_thread")]
async fn no_frame_content_reaches_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Every task of this current-thread runtime runs on this thread, under this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    let limits = Limits {
        max_frame_len: 200,
        handler_timeout: Duration::from_millis(50),
        connection_rate: Rate::new(1, 2).unwrap(),
        ..fast_limits()
    };
    let server = Server::start(LengthPrefix::Binary2, limits, Scripted::new(Some(b"96:"))).await;
    let binary = LengthPrefix::Binary2;

    // Answered normally, then past its deadline (deadline reply), then rate-limited.
    let mut stream = server.connect().await;
    send(&mut stream, &frame(binary, &with_canary(b"echo"))).await;
    read_reply(&mut stream, binary).await;
    send(&mut stream, &frame(binary, &with_canary(b"sleep:1000:x"))).await;
    read_reply(&mut stream, binary).await;
    send(&mut stream, &frame(binary, &with_canary(b"third"))).await;
    expect_closed(&mut stream).await;
    // Oversized: the prefix, then the canary where a body would be.
    let mut stream = server.connect().await;
    send(
        &mut stream,
        &[[0x01, 0x00].as_slice(), &with_canary(b"")].concat(),
    )
    .await;
    expect_closed(&mut stream).await;
    // A frame cut off by the read deadline.
    let mut stream = server.connect().await;
    send(
        &mut stream,
        &[[0x00, 0x40].as_slice(), &with_canary(b"")].concat(),
    )
    .await;
    expect_closed(&mut stream).await;
    // Closed by the handler.
    let mut stream = server.connect().await;
    send(&mut stream, &frame(binary, b"close")).await;
    expect_closed(&mut stream).await;
    server.shutdown().await;

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    // The scenarios did log (so the search below means something)...
    for expected in [
        "handler missed its deadline",
        "Oversized",
        "ReadDeadline",
        "RateLimited",
    ] {
        assert!(
            logs.contains(expected),
            "no {expected:?} in the logs:\n{logs}"
        );
    }
    // ...and none of it shows the card number: in clear, as hex of the BCD, or as byte lists.
    let bcd_hex = CANARY_BCD
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<String>();
    // (Only long needles: a 4- or 6-digit piece could turn up in a timestamp by chance.)
    let needles = [
        CANARY,
        &bcd_hex,
        &bcd_hex.to_uppercase(),
        "52, 55, 54, 49, 55, 51", // Debug of the ASCII digits as bytes
        "71, 97, 115, 144",       // Debug of the BCD bytes
    ];
    for needle in needles {
        assert!(
            !logs.contains(needle),
            "{needle:?} leaked into the logs:\n{logs}"
        );
    }
}
