//! `rappel bench --channel smtp://HOST:PORT` hands its emails to a real SMTP server: a minimal
//! one on loopback here, which must receive every confirmation of the burst and of the paced
//! phase, each once.

use std::process::Command;

use rappel_test_support::smtp::smtp_sink;

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
