//! Byte-level tests of the listener over loopback, with raw `TcpStream`s that frame by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use host::{Limits, Listener, Rate};
use iso8583::LengthPrefix;

const PREFIXES: [LengthPrefix; 2] = [LengthPrefix::Binary2, LengthPrefix::Ascii4];

#[tokio::test]
async fn echo_round_trip_with_both_prefixes() {
    // A cup-bcd style body: TPDU 60 0010 0000, then opaque bytes.
    let body = b"\x60\x00\x10\x00\x00\x60\x31\x00\x31\x00\x00\x08\x00";
    for prefix in PREFIXES {
        let server = Server::start(prefix, fast_limits(), Arc::new(Echo::default())).await;
        let mut stream = server.connect().await;
        send(&mut stream, &frame(prefix, body)).await;
        assert_eq!(read_reply(&mut stream, prefix).await, body, "{prefix:?}");
        let stats = server.stats();
        assert_eq!((stats.frames_in, stats.frames_out), (1, 1));
        assert_eq!(stats.connections_accepted, 1);
        assert_eq!(stats.connections_open, 1);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn the_exact_wire_bytes_of_both_prefixes() {
    // 98 bytes announce themselves as 00 62 in binary (the UnionPay example) and "0098" in ASCII.
    let body = [0xAB; 98];
    for (prefix, head) in [
        (LengthPrefix::Binary2, &b"\x00\x62"[..]),
        (LengthPrefix::Ascii4, &b"0098"[..]),
    ] {
        let server = Server::start(prefix, fast_limits(), Arc::new(Echo::default())).await;
        let mut stream = server.connect().await;
        send(&mut stream, &[head, &body].concat()).await;
        let mut wire = vec![0; head.len() + body.len()];
        tokio::time::timeout(
            PATIENCE,
            tokio::io::AsyncReadExt::read_exact(&mut stream, &mut wire),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(&wire[..head.len()], head);
        assert_eq!(&wire[head.len()..], body);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn pipelined_frames_in_one_write_are_answered_in_order() {
    let server = Server::start(LengthPrefix::Binary2, fast_limits(), Scripted::new(None)).await;
    let mut stream = server.connect().await;
    // The first request takes longest, so handlers finish in reverse order; replies must not.
    let requests: Vec<Vec<u8>> = (0..5u64)
        .map(|index| sleep_frame(50 - index * 10, &index.to_string()))
        .collect();
    let write: Vec<u8> = requests
        .iter()
        .flat_map(|request| frame(LengthPrefix::Binary2, request))
        .collect();
    send(&mut stream, &write).await;
    for request in &requests {
        assert_eq!(
            &read_reply(&mut stream, LengthPrefix::Binary2).await,
            request
        );
    }
    assert_eq!(server.stats().frames_out, 5);
    server.shutdown().await;
}

#[tokio::test]
async fn a_frame_split_across_many_writes_arrives_whole() {
    let echo = Arc::new(Echo::default());
    let server = Server::start(LengthPrefix::Ascii4, fast_limits(), echo.clone()).await;
    let mut stream = server.connect().await;
    let body: Vec<u8> = (0..200u8).collect();
    let framed = frame(LengthPrefix::Ascii4, &body);
    // One byte per write (the prefix too), yielding between writes so they go out separately.
    for byte in &framed {
        send(&mut stream, std::slice::from_ref(byte)).await;
        tokio::task::yield_now().await;
    }
    assert_eq!(read_reply(&mut stream, LengthPrefix::Ascii4).await, body);
    assert_eq!(
        echo.calls.load(Ordering::SeqCst),
        1,
        "the handler saw one frame"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_oversized_length_prefix_closes_that_connection_only() {
    let limits = Limits {
        max_frame_len: 64,
        ..fast_limits()
    };
    let echo = Arc::new(Echo::default());
    let server = Server::start(LengthPrefix::Binary2, limits, echo.clone()).await;
    let mut good = server.connect().await;
    let mut hostile = server.connect().await;
    // 65 announced, one more than the limit; the body is never sent and never awaited.
    send(&mut hostile, &[0x00, 0x41]).await;
    expect_closed(&mut hostile).await;
    assert_eq!(server.stats().frames_oversized, 1);
    assert_eq!(echo.calls.load(Ordering::SeqCst), 0);
    // The limit itself is fine, and the other connection is served.
    let body = [7; 64];
    send(&mut good, &frame(LengthPrefix::Binary2, &body)).await;
    assert_eq!(read_reply(&mut good, LengthPrefix::Binary2).await, body);
    // 65 535 (the largest a 2-byte prefix says) is refused the same way.
    let mut hostile = server.connect().await;
    send(&mut hostile, &[0xFF, 0xFF]).await;
    expect_closed(&mut hostile).await;
    assert_eq!(server.stats().frames_oversized, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn ascii_prefixes_over_the_limit_or_not_digits_close() {
    let echo = Arc::new(Echo::default());
    let server = Server::start(LengthPrefix::Ascii4, fast_limits(), echo.clone()).await;
    let mut over = server.connect().await;
    send(&mut over, b"8193").await;
    expect_closed(&mut over).await;
    let mut garbage = server.connect().await;
    send(&mut garbage, b"00x4abcd").await;
    expect_closed(&mut garbage).await;
    let stats = server.stats();
    assert_eq!((stats.frames_oversized, stats.frames_malformed), (1, 1));
    assert_eq!(echo.calls.load(Ordering::SeqCst), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn slow_loris_is_closed_after_the_frame_read_deadline() {
    let limits = fast_limits();
    let deadline = limits.frame_read_timeout;
    let server = Server::start(LengthPrefix::Binary2, limits, Arc::new(Echo::default())).await;
    let mut stream = server.connect().await;
    let started = Instant::now();
    send(&mut stream, &[0x00]).await;
    expect_closed(&mut stream).await;
    assert!(
        started.elapsed() >= deadline,
        "closed after {:?}",
        started.elapsed()
    );
    let stats = server.stats();
    assert_eq!((stats.read_deadline_closes, stats.idle_closes), (1, 0));
    server.shutdown().await;
}

#[tokio::test]
async fn trickling_a_frame_does_not_reset_the_read_deadline() {
    let limits = fast_limits();
    let deadline = limits.frame_read_timeout;
    let server = Server::start(LengthPrefix::Binary2, limits, Arc::new(Echo::default())).await;
    let mut stream = server.connect().await;
    let started = Instant::now();
    send(&mut stream, &[0x00, 0x10]).await;
    // One byte every 20 ms (well inside the 60 ms deadline each time, but not in total).
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if tokio::io::AsyncWriteExt::write_all(&mut stream, b"x")
            .await
            .is_err()
        {
            break;
        }
    }
    expect_closed(&mut stream).await;
    assert!(started.elapsed() < deadline * 5);
    assert_eq!(server.stats().read_deadline_closes, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn back_pressure_does_not_count_against_the_read_deadline() {
    let limits = Limits {
        max_in_flight: 1,
        frame_read_timeout: Duration::from_millis(200),
        handler_timeout: Duration::from_secs(2),
        ..fast_limits()
    };
    let server = Server::start(LengthPrefix::Binary2, limits, Scripted::new(None)).await;
    let mut stream = server.connect().await;
    // A takes 300 ms and holds the only slot; B waits behind it; C starts with one byte.
    let slow = sleep_frame(300, "a");
    let mut write = frame(LengthPrefix::Binary2, &slow);
    write.extend(frame(LengthPrefix::Binary2, b"b"));
    write.push(0x00);
    send(&mut stream, &write).await;
    // The rest of C comes 350 ms later: long after C's first byte, but within 200 ms of the
    // moment the listener could read again (when A finished and B was handed over).
    tokio::time::sleep(Duration::from_millis(350)).await;
    send(&mut stream, &[0x01, b'c']).await;
    assert_eq!(read_reply(&mut stream, LengthPrefix::Binary2).await, slow);
    assert_eq!(read_reply(&mut stream, LengthPrefix::Binary2).await, b"b");
    assert_eq!(read_reply(&mut stream, LengthPrefix::Binary2).await, b"c");
    assert_eq!(server.stats().read_deadline_closes, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(80),
        ..fast_limits()
    };
    let server = Server::start(LengthPrefix::Binary2, limits, Arc::new(Echo::default())).await;
    let mut stream = server.connect().await;
    // Activity resets the clock: a round trip at 50 ms keeps it open past 80 ms.
    tokio::time::sleep(Duration::from_millis(50)).await;
    send(&mut stream, &frame(LengthPrefix::Binary2, b"ping")).await;
    assert_eq!(
        read_reply(&mut stream, LengthPrefix::Binary2).await,
        b"ping"
    );
    let quiet_since = Instant::now();
    expect_closed(&mut stream).await;
    assert!(quiet_since.elapsed() >= Duration::from_millis(60));
    let stats = server.stats();
    assert_eq!((stats.idle_closes, stats.read_deadline_closes), (1, 0));
    server.shutdown().await;
}

#[tokio::test]
async fn a_connection_waiting_for_its_reply_is_not_idle() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(100),
        handler_timeout: Duration::from_secs(1),
        ..fast_limits()
    };
    let server = Server::start(LengthPrefix::Binary2, limits, Scripted::new(None)).await;
    let mut stream = server.connect().await;
    // The handler takes 250 ms, far past the idle timeout: the peer is waiting, not idle.
    let request = sleep_frame(250, "slow");
    send(&mut stream, &frame(LengthPrefix::Binary2, &request)).await;
    assert_eq!(
        read_reply(&mut stream, LengthPrefix::Binary2).await,
        request
    );
    // Nor is it idle just after the reply, 250 ms after its last byte was received.
    tokio::time::sleep(Duration::from_millis(40)).await;
    send(&mut stream, &frame(LengthPrefix::Binary2, b"next")).await;
    assert_eq!(
        read_reply(&mut stream, LengthPrefix::Binary2).await,
        b"next"
    );
    assert_eq!(server.stats().idle_closes, 0);
    // Once nothing is owed and nothing moves, the idle timeout applies as usual.
    expect_closed(&mut stream).await;
    assert_eq!(server.stats().idle_closes, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_at_once_and_counted() {
    let limits = Limits {
        max_connections: 2,
        ..fast_limits()
    };
    let server = Server::start(LengthPrefix::Binary2, limits, Arc::new(Echo::default())).await;
    let mut first = server.connect().await;
    let mut second = server.connect().await;
    // Round trips prove both are accepted before the third arrives.
    for stream in [&mut first, &mut second] {
        send(stream, &frame(LengthPrefix::Binary2, b"hi")).await;
        assert_eq!(read_reply(stream, LengthPrefix::Binary2).await, b"hi");
    }
    let mut third = server.connect().await;
    expect_closed(&mut third).await;
    let stats = server.stats();
    assert_eq!(
        (
            stats.connections_accepted,
            stats.connections_refused,
            stats.connections_open
        ),
        (2, 1, 2)
    );
    // The two served connections still work.
    send(&mut first, &frame(LengthPrefix::Binary2, b"again")).await;
    assert_eq!(
        read_reply(&mut first, LengthPrefix::Binary2).await,
        b"again"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_handler_past_its_deadline_sends_the_deadline_reply() {
    let limits = Limits {
        handler_timeout: Duration::from_millis(50),
        ..fast_limits()
    };
    let handler = Scripted::new(Some(b"96:"));
    let server = Server::start(LengthPrefix::Binary2, limits, handler.clone()).await;
    let mut stream = server.connect().await;
    let started = Instant::now();
    send(
        &mut stream,
        &frame(LengthPrefix::Binary2, &sleep_frame(2000, "late")),
    )
    .await;
    assert_eq!(
        read_reply(&mut stream, LengthPrefix::Binary2).await,
        b"96:sleep:2000:late"
    );
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(50) && waited < Duration::from_millis(1500));
    // The late handler was dropped, not left running, and the connection goes on.
    assert_eq!(handler.finished.load(Ordering::SeqCst), 0);
    send(&mut stream, &frame(LengthPrefix::Binary2, b"next")).await;
    assert_eq!(
        read_reply(&mut stream, LengthPrefix::Binary2).await,
        b"next"
    );
    let stats = server.stats();
    assert_eq!((stats.handler_deadlines, stats.handler_closes), (1, 0));
    server.shutdown().await;
}

#[tokio::test]
async fn a_handler_past_its_deadline_without_a_deadline_reply_closes() {
    let limits = Limits {
        handler_timeout: Duration::from_millis(50),
        ..fast_limits()
    };
    let server = Server::start(LengthPrefix::Binary2, limits, Scripted::new(None)).await;
    let mut stream = server.connect().await;
    send(
        &mut stream,
        &frame(LengthPrefix::Binary2, &sleep_frame(2000, "late")),
    )
    .await;
    expect_closed(&mut stream).await;
    let stats = server.stats();
    assert_eq!((stats.handler_deadlines, stats.handler_closes), (1, 1));
    assert_eq!(stats.frames_out, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn replies_before_a_close_are_written_and_no_reply_writes_nothing() {
    let server = Server::start(LengthPrefix::Binary2, fast_limits(), Scripted::new(None)).await;
    let mut stream = server.connect().await;
    let write: Vec<u8> = [&b"silent"[..], b"one", b"close", b"never"]
        .iter()
        .flat_map(|body| frame(LengthPrefix::Binary2, body))
        .collect();
    send(&mut stream, &write).await;
    assert_eq!(read_reply(&mut stream, LengthPrefix::Binary2).await, b"one");
    expect_closed(&mut stream).await;
    assert_eq!(server.stats().frames_out, 1);
    assert_eq!(server.stats().handler_closes, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_reply_over_the_frame_limit_closes_instead_of_being_cut() {
    let server = Server::start(LengthPrefix::Binary2, fast_limits(), Scripted::new(None)).await;
    let mut stream = server.connect().await;
    send(&mut stream, &frame(LengthPrefix::Binary2, b"huge")).await;
    expect_closed(&mut stream).await;
    assert_eq!(server.stats().frames_out, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_panicking_handler_closes_its_connection_only() {
    let server = Server::start(LengthPrefix::Binary2, fast_limits(), Scripted::new(None)).await;
    let mut other = server.connect().await;
    let mut stream = server.connect().await;
    send(&mut stream, &frame(LengthPrefix::Binary2, b"panic")).await;
    expect_closed(&mut stream).await;
    send(&mut other, &frame(LengthPrefix::Binary2, b"fine")).await;
    assert_eq!(read_reply(&mut other, LengthPrefix::Binary2).await, b"fine");
    assert_eq!(server.stats().connections_open, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_connection_over_its_message_rate_is_closed() {
    let limits = Limits {
        connection_rate: Rate::new(1, 3).unwrap(),
        ..fast_limits()
    };
    let echo = Arc::new(Echo::default());
    let server = Server::start(LengthPrefix::Binary2, limits, echo.clone()).await;
    let mut stream = server.connect().await;
    let write: Vec<u8> = (0..4u8)
        .flat_map(|index| frame(LengthPrefix::Binary2, &[index]))
        .collect();
    send(&mut stream, &write).await;
    for index in 0..3u8 {
        assert_eq!(
            read_reply(&mut stream, LengthPrefix::Binary2).await,
            [index]
        );
    }
    expect_closed(&mut stream).await;
    assert_eq!(server.stats().rate_limited, 1);
    assert_eq!(
        echo.calls.load(Ordering::SeqCst),
        3,
        "the fourth never reached the handler"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn in_flight_is_bounded_per_connection() {
    let limits = Limits {
        max_in_flight: 2,
        handler_timeout: Duration::from_secs(2),
        ..fast_limits()
    };
    let handler = Scripted::new(None);
    let server = Server::start(LengthPrefix::Binary2, limits, handler.clone()).await;
    let mut stream = server.connect().await;
    let write: Vec<u8> = (0..4)
        .flat_map(|index| frame(LengthPrefix::Binary2, &sleep_frame(200, &index.to_string())))
        .collect();
    send(&mut stream, &write).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        handler.started.load(Ordering::SeqCst),
        2,
        "only two handlers run at once"
    );
    for index in 0..4 {
        let reply = read_reply(&mut stream, LengthPrefix::Binary2).await;
        assert_eq!(reply, sleep_frame(200, &index.to_string()));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_messages_and_stops_accepting() {
    let limits = Limits {
        handler_timeout: Duration::from_secs(2),
        ..fast_limits()
    };
    let handler = Scripted::new(None);
    let server = Server::start(LengthPrefix::Binary2, limits, handler.clone()).await;
    let mut stream = server.connect().await;
    let request = sleep_frame(300, "drain");
    send(&mut stream, &frame(LengthPrefix::Binary2, &request)).await;
    // Wait (bounded) until the handler runs, then ask to stop.
    for _ in 0..200 {
        if handler.started.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(handler.started.load(Ordering::SeqCst), 1);
    server.stop.send(true).unwrap();
    // New connections are refused while the message is still in flight.
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(server.addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(refused, "the listener still accepts after shutdown");
    assert_eq!(
        handler.finished.load(Ordering::SeqCst),
        0,
        "still in flight"
    );
    // The in-flight message gets its reply, then the connection closes and serve ends.
    assert_eq!(
        read_reply(&mut stream, LengthPrefix::Binary2).await,
        request
    );
    expect_closed(&mut stream).await;
    tokio::time::timeout(PATIENCE, server.task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(server.stats.snapshot().connections_open, 0);
}

#[tokio::test]
async fn shutdown_cuts_what_outlives_the_grace_period() {
    let limits = Limits {
        handler_timeout: Duration::from_secs(10),
        shutdown_grace: Duration::from_millis(100),
        ..fast_limits()
    };
    let handler = Scripted::new(None);
    let server = Server::start(LengthPrefix::Binary2, limits, handler.clone()).await;
    let mut stream = server.connect().await;
    send(
        &mut stream,
        &frame(LengthPrefix::Binary2, &sleep_frame(5000, "stuck")),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    let started = Instant::now();
    server.stop.send(true).unwrap();
    tokio::time::timeout(PATIENCE, server.task)
        .await
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(2),
        "{took:?}"
    );
    expect_closed(&mut stream).await;
    assert_eq!(handler.finished.load(Ordering::SeqCst), 0);
    assert_eq!(server.stats.snapshot().connections_open, 0);
}

#[tokio::test]
async fn limits_that_cannot_work_are_refused_at_bind() {
    let limits = Limits {
        max_in_flight: 0,
        ..Limits::default()
    };
    let bound = Listener::bind(
        "127.0.0.1:0".parse().unwrap(),
        LengthPrefix::Binary2,
        limits,
    )
    .await;
    assert!(matches!(
        bound,
        Err(host::Error::Limit {
            name: "max_in_flight",
            ..
        })
    ));
}
