//! The client against the real listener, and against raw sockets for what a listener never
//! sends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use host::{Client, Error, Limits};
use iso8583::LengthPrefix;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn exchange_with_both_prefixes() {
    for prefix in [LengthPrefix::Binary2, LengthPrefix::Ascii4] {
        let server = Server::start(prefix, fast_limits(), Arc::new(Echo::default())).await;
        let mut client = Client::connect(server.addr, prefix, SECOND).await.unwrap();
        for body in [&b"\x60\x00\x10\x00\x00 0200"[..], b"", &[0x55; 8192]] {
            assert_eq!(client.exchange(body, SECOND).await.unwrap(), body);
        }
        assert_eq!(server.stats().frames_out, 3);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn send_and_receive_pipeline_in_order() {
    let server = Server::start(LengthPrefix::Binary2, fast_limits(), Scripted::new(None)).await;
    let mut client = Client::connect(server.addr, LengthPrefix::Binary2, SECOND)
        .await
        .unwrap();
    let requests: Vec<Vec<u8>> = (0..3u64)
        .map(|index| sleep_frame(30 - index * 10, &index.to_string()))
        .collect();
    for request in &requests {
        client.send(request, SECOND).await.unwrap();
    }
    for request in &requests {
        assert_eq!(&client.receive(SECOND).await.unwrap(), request);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_timed_out_exchange_breaks_the_client() {
    let limits = Limits {
        handler_timeout: Duration::from_secs(2),
        ..fast_limits()
    };
    let server = Server::start(LengthPrefix::Binary2, limits, Scripted::new(None)).await;
    let mut client = Client::connect(server.addr, LengthPrefix::Binary2, SECOND)
        .await
        .unwrap();
    let timeout = Duration::from_millis(50);
    let outcome = client.exchange(&sleep_frame(300, "slow"), timeout).await;
    assert!(
        matches!(
            outcome,
            Err(Error::Timeout {
                during: "exchange",
                after_ms: 50
            })
        ),
        "{outcome:?}"
    );
    // The late reply must never be taken for the next request's answer.
    assert!(matches!(
        client.exchange(b"next", SECOND).await,
        Err(Error::Broken)
    ));
    assert!(matches!(client.receive(SECOND).await, Err(Error::Broken)));
    server.shutdown().await;
}

#[tokio::test]
async fn an_oversize_request_is_refused_before_writing_and_the_client_stays_usable() {
    let server = Server::start(
        LengthPrefix::Binary2,
        fast_limits(),
        Arc::new(Echo::default()),
    )
    .await;
    let mut client = Client::connect(server.addr, LengthPrefix::Binary2, SECOND)
        .await
        .unwrap();
    assert!(matches!(
        client.exchange(&[0; 8193], SECOND).await,
        Err(Error::TooLarge {
            len: 8193,
            max: 8192
        })
    ));
    assert_eq!(client.exchange(b"ok", SECOND).await.unwrap(), b"ok");
    assert_eq!(server.stats().frames_in, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn the_client_reports_a_closed_connection() {
    let server = Server::start(LengthPrefix::Binary2, fast_limits(), Scripted::new(None)).await;
    let mut client = Client::connect(server.addr, LengthPrefix::Binary2, SECOND)
        .await
        .unwrap();
    assert!(matches!(
        client.exchange(b"close", SECOND).await,
        Err(Error::Closed)
    ));
    server.shutdown().await;
}

/// A fake host that reads one request and answers with raw bytes, written in `pieces` with a
/// pause between them.
async fn fake_host(pieces: &'static [&'static [u8]]) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = [0; 6];
        stream.read_exact(&mut request).await.unwrap();
        stream.set_nodelay(true).unwrap();
        for piece in pieces {
            stream.write_all(piece).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Hold the connection open so the client cannot mistake a close for the answer.
        tokio::time::sleep(PATIENCE).await;
    });
    addr
}

#[tokio::test]
async fn the_client_refuses_hostile_replies_without_reading_them() {
    let addr = fake_host(&[&[0xFF, 0xFF]]).await;
    let mut client = Client::connect(addr, LengthPrefix::Binary2, SECOND)
        .await
        .unwrap();
    assert!(matches!(
        client.exchange(b"ping", SECOND).await,
        Err(Error::TooLarge { len: 65535, .. })
    ));
    let addr = fake_host(&[b"12ab"]).await;
    let mut client = Client::connect(addr, LengthPrefix::Ascii4, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(matches!(
        client.exchange(b"pi", SECOND).await,
        Err(Error::BadLengthPrefix)
    ));
}

#[tokio::test]
async fn the_client_reads_a_reply_that_arrives_in_pieces() {
    let addr = fake_host(&[b"\x00", b"\x03", b"a", b"bc"]).await;
    let mut client = Client::connect(addr, LengthPrefix::Binary2, SECOND)
        .await
        .unwrap();
    assert_eq!(client.exchange(b"ping", SECOND).await.unwrap(), b"abc");
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_with_the_address() {
    // Bind then drop, so the port is (almost certainly) closed.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let outcome = Client::connect(addr, LengthPrefix::Binary2, SECOND).await;
    match outcome {
        Err(Error::Connect { addr: failed, .. }) => assert_eq!(failed, addr),
        other => panic!("expected a connect error, got {other:?}"),
    }
}
