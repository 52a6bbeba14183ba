//! `rappel bench --channel smtp://HOST:PORT` hands its emails to a real SMTP server: a minimal
//! one on loopback here, which must receive every confirmation of the burst and of the paced
//! phase, each once.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Message-IDs received, with how many times each arrived.
type Received = Arc<Mutex<HashMap<String, usize>>>;

/// A minimal SMTP server (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) that accepts
/// everything and records each message's Message-ID (as `multi_worker_pg.rs`'s).
async fn smtp_sink() -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received: Received = Arc::default();
    let sink = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                let mut in_data = false;
                let mut message_id: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            if let Some(id) = message_id.take() {
                                *sink.lock().unwrap().entry(id).or_default() += 1;
                            }
                            let _ = write.write_all(b"250 queued\r\n").await;
                        } else if message_id.is_none()
                            && line.to_ascii_lowercase().starts_with("message-id:")
                        {
                            message_id = Some(line[11..].trim().to_string());
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
                        "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 ok\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"502 not implemented\r\n",
                    };
                    if write.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_with_an_smtp_channel_delivers_every_confirmation_once_to_the_server() {
    let (port, received) = smtp_sink().await;
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_rappel"))
            .args(["bench", "--store", "sqlite", "--notifications", "40"])
            .args(["--workers", "2", "--json", "--channel"])
            .arg(format!("smtp://127.0.0.1:{port}"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(report["dispatch_per_s"].as_f64().unwrap() > 0.0, "{report}");
    assert!(
        report["ingest_events_per_s"].as_f64().unwrap() > 0.0,
        "{report}"
    );

    // 40 confirmations in the burst, then 40 more booked at a pace while the workers run.
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 80, "distinct Message-IDs");
    assert!(received.values().all(|&n| n == 1), "{received:?}");
}

#[tokio::test]
async fn bench_refuses_a_channel_it_does_not_know() {
    let output = tokio::task::spawn_blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_rappel"))
            .args([
                "bench",
                "--notifications",
                "1",
                "--channel",
                "carrier-pigeon",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("carrier-pigeon"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
