//! An SMTP outage delays emails and loses none: with the server unreachable (connection
//! refused), then answering 4xx, a due confirmation stays pending with the error and a later
//! attempt; once the server accepts again, the next attempt hands it off. The peer is a real SMTP
//! server on loopback and the transport is the production one (lettre).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rappel_channels::email::{Sender, SmtpConfig, SmtpTransport, SmtpUrl};
use rappel_domain::contact::Contact;
use rappel_domain::event::{Event, EventBody};
use rappel_domain::facts::{Patient, Practitioner, Source};
use rappel_domain::notification::{Channel, Kind};
use rappel_engine::{Engine, EngineConfig, SimClock, Transports};
use rappel_store::{NotificationRow, Status, Store};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Message-IDs accepted, with how many times each arrived.
type Received = Arc<Mutex<HashMap<String, usize>>>;

/// A minimal SMTP server on `port`. While `busy` is set it answers MAIL with a temporary
/// failure (451), as a server short of resources does; otherwise it accepts every message.
async fn smtp_server(port: u16, busy: Arc<AtomicBool>) -> Received {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let received: Received = Arc::default();
    let sink = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sink = sink.clone();
            let busy = busy.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 test ESMTP\r\n").await;
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
                        "EHLO" => b"250-test\r\n250 8BITMIME\r\n",
                        "MAIL" if busy.load(Ordering::SeqCst) => {
                            b"451 4.3.0 temporarily unable to accept mail\r\n"
                        }
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
    received
}

/// The patient's confirmation email as stored.
async fn confirmation(engine: &Engine, practice: &str) -> NotificationRow {
    let mut tx = engine.store().begin().await.unwrap();
    let rows = tx.patient_notifications(practice, "p1").await.unwrap();
    tx.commit().await.unwrap();
    rows.into_iter()
        .find(|r| r.kind == Kind::Confirmation && r.channel == Channel::Email)
        .expect("a confirmation email is planned")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_wait_while_the_smtp_server_is_down_and_go_once_it_is_back() {
    // A port nobody listens on yet: connections are refused.
    let port = {
        let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        reserved.local_addr().unwrap().port()
    };
    let smtp = SmtpTransport::new(SmtpConfig {
        url: SmtpUrl::parse(&format!("smtp://127.0.0.1:{port}")).unwrap(),
        sender: Sender::parse("Cabinet <no-reply@example.org>").unwrap(),
        timeout: Duration::from_secs(5),
        dkim: None,
        bounce: None,
    });
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let start: Timestamp = "2026-03-02T10:00:00+01:00".parse().unwrap();
    let clock = SimClock::new(start);
    let engine = Engine::new(
        store,
        Arc::new(clock.clone()),
        Transports {
            email: Arc::new(smtp),
            ..Transports::all(Arc::new(rappel_channels::Recorder::default()))
        },
        EngineConfig::default(),
    );
    let practice = engine
        .create_practice("Cabinet", "doctolib", "Europe/Paris", Default::default())
        .await
        .unwrap()
        .id;
    engine
        .put_practitioner(
            &practice,
            &Practitioner {
                id: "dr1".into(),
                name: "Dr Martin".into(),
                email: None,
                mobile: None,
            },
        )
        .await
        .unwrap();
    engine
        .put_patient(
            &practice,
            &Patient {
                id: "p1".into(),
                first_name: "Jeanne".into(),
                email: Contact::from_input("jeanne@example.org"),
                ..Patient::default()
            },
        )
        .await
        .unwrap();
    let booking = Event {
        at: Some(start),
        body: EventBody::AppointmentBooked {
            id: "a1".into(),
            patient: "p1".into(),
            practitioner: "dr1".into(),
            motive: None,
            start: start + SignedDuration::from_hours(96),
            duration_minutes: None,
            location: None,
            source: Source::Staff,
        },
    };
    engine.ingest(&practice, &[booking]).await.unwrap();

    // Down: the attempt fails, the confirmation waits with the error and a later due time.
    assert_eq!(engine.dispatch_all_due().await.unwrap(), 1);
    let row = confirmation(&engine, &practice).await;
    assert_eq!(row.status, Status::Pending, "{row:?}");
    assert_eq!(row.attempts, 1);
    assert!(row.last_error.is_some(), "{row:?}");
    assert!(row.due_at > start, "retried later: {row:?}");
    let first_retry = row.due_at;

    // Up but answering 4xx: still pending, the next attempt later again.
    let busy = Arc::new(AtomicBool::new(true));
    let received = smtp_server(port, busy.clone()).await;
    clock.set(first_retry);
    assert_eq!(engine.dispatch_all_due().await.unwrap(), 1);
    let row = confirmation(&engine, &practice).await;
    assert_eq!(row.status, Status::Pending, "{row:?}");
    assert_eq!(row.attempts, 2);
    assert!(
        row.last_error.as_deref().is_some_and(|e| e.contains("451")),
        "{row:?}"
    );
    assert!(row.due_at > first_retry, "{row:?}");
    assert!(received.lock().unwrap().is_empty());

    // Nothing goes before its next attempt.
    clock.set(row.due_at - SignedDuration::from_secs(1));
    assert_eq!(engine.dispatch_all_due().await.unwrap(), 0);

    // Back: the next attempt hands it off, once.
    busy.store(false, Ordering::SeqCst);
    clock.set(row.due_at);
    assert_eq!(engine.dispatch_all_due().await.unwrap(), 1);
    let row = confirmation(&engine, &practice).await;
    assert_eq!(row.status, Status::Sent, "{row:?}");
    assert_eq!(row.attempts, 3);
    assert_eq!(row.last_error, None);
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 1, "{received:?}");
    assert!(received.values().all(|&n| n == 1));
}
