//! The server against slow and numerous clients, over real TCP: a request head that never ends
//! is cut off, a body that trickles in is answered 408, and connections past the cap wait for
//! a free one (issue 13, row 10).

mod common;

use std::time::{Duration, Instant};

use common::{parse_reply, spawn_app_with};
use rappel_server::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection; returns what it sent and when it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection in time");
    (raw, start.elapsed())
}

#[tokio::test]
async fn a_client_that_sends_half_a_header_is_cut_off_after_the_header_timeout() {
    let app = spawn_app_with(ServerConfig {
        header_read_timeout: Duration::from_millis(400),
        ..ServerConfig::default()
    })
    .await;
    let mut half = TcpStream::connect(app.addr).await.unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHost: rappel\r\nX-Slow: ")
        .await
        .unwrap();
    // A connection that sends nothing at all is cut off the same way.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let (_, half_after) = read_until_closed(&mut half, Duration::from_secs(5)).await;
    let (silent_raw, silent_after) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(half_after >= Duration::from_millis(300), "{half_after:?}");
    assert!(silent_after <= Duration::from_secs(3), "{silent_after:?}");
    assert!(silent_raw.is_empty());
    // A whole request in time is answered as usual.
    let reply = app.send("GET", "/health", None, &[], None).await;
    assert_eq!(reply.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn a_body_that_trickles_in_is_answered_408_after_the_request_timeout() {
    let app = spawn_app_with(ServerConfig {
        request_timeout: Duration::from_millis(500),
        ..ServerConfig::default()
    })
    .await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: rappel\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{{\"type\":",
        app.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (raw, after) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(after >= Duration::from_millis(400), "{after:?}");
    let reply = parse_reply(&raw);
    let problem = reply.problem(408);
    assert_eq!(problem["type"], "/v1/docs#problem-request-timeout");
    assert_eq!(reply.header("connection"), Some("close"));
    app.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_ends() {
    let app = spawn_app_with(ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    })
    .await;
    let first = TcpStream::connect(app.addr).await.unwrap();
    let second = TcpStream::connect(app.addr).await.unwrap();
    // No wait for the server to take both: it takes its permit before `accept`, and the
    // listener's backlog hands connections over in the order they were made, so the third is
    // the one left waiting whenever the server gets to them.
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: rappel\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "the third connection is not served yet");
    drop(first);
    let (raw, _) = read_until_closed(&mut third, Duration::from_secs(5)).await;
    assert_eq!(parse_reply(&raw).status, 200);
    drop(second);
    app.stop().await;
}
