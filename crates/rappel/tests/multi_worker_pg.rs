//! Several `rappel worker` processes on one PostgreSQL database, handing 10,000 due emails to a
//! real SMTP server on loopback: every message is handed off, once — except, when a worker is
//! killed with SIGKILL mid-run, the few it had handed off but not yet recorded, which another
//! worker sends again after the lease (ARCHITECTURE.md, "Delivery guarantee"). The test counts
//! those duplicates and checks they stay within the batches one worker has in flight.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::SignedDuration;
use rappel_domain::event::{Event, EventBody};
use rappel_domain::facts::{Practitioner, Source};
use rappel_domain::notification::Kind;
use rappel_engine::{Engine, EngineConfig, SystemClock, Transports};
use rappel_store::{NotificationFilter, Status, Store};

use rappel_test_support::smtp::smtp_sink;

const MESSAGES: usize = 10_000;
const WORKERS: usize = 3;
const BATCH: usize = 100;
/// Claimed batches a worker processes at once (`RAPPEL_WORKER_IN_FLIGHT`, its default).
const IN_FLIGHT: usize = 2;

fn worker(url: &str, smtp_port: u16, dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rappel"))
        .arg("worker")
        .env("RAPPEL_DATABASE_URL", url)
        .env("RAPPEL_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}"))
        .env("RAPPEL_LEASE_SECONDS", "3")
        .env("RAPPEL_WORKER_BATCH", BATCH.to_string())
        .env("RAPPEL_WORKER_IN_FLIGHT", IN_FLIGHT.to_string())
        .env("RAPPEL_LOG", "warn")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the rappel binary starts")
}

async fn sent_confirmations(store: &Store, practice: &str) -> usize {
    let mut count = 0;
    let mut cursor = None;
    loop {
        let mut tx = store.begin().await.unwrap();
        let page = tx
            .list_notifications(
                practice,
                &NotificationFilter {
                    status: Some(Status::Sent),
                    kind: Some(Kind::Confirmation),
                    cursor: cursor.clone(),
                    limit: 5000,
                    ..NotificationFilter::default()
                },
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let Some(last) = page.last() else {
            return count;
        };
        count += page.len();
        cursor = Some((last.due_at, last.key.clone()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_hand_off_every_message_and_a_killed_one_loses_nothing() {
    let base = std::env::var("RAPPEL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (url, name) = rappel_store::admin::create_postgres_database(&base, "rappel_test_workers")
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL at {base} is needed (RAPPEL_TEST_POSTGRES_URL): {e}")
        });
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    // This process only books; it never dispatches (its transport would panic).
    let engine = Engine::new(
        store.clone(),
        Arc::new(SystemClock),
        Transports::all(Arc::new(rappel_channels::Recorder::default())),
        EngineConfig::default(),
    );
    let practice = engine
        .create_practice("Cabinet", "rosa", "Europe/Paris", Default::default())
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
    let ids: Vec<usize> = (0..MESSAGES).collect();
    for chunk in ids.chunks(500) {
        let patients: Vec<Event> = chunk
            .iter()
            .map(|i| Event {
                at: None,
                body: EventBody::PatientUpdated {
                    id: format!("p{i}"),
                    fields: serde_json::from_value(serde_json::json!({
                        "first_name": "Jeanne", "last_name": format!("N{i}"),
                        "email": format!("p{i}@example.org")
                    }))
                    .unwrap(),
                },
            })
            .collect();
        engine.ingest(&practice, &patients).await.unwrap();
        let now = engine.now();
        let bookings: Vec<Event> = chunk
            .iter()
            .map(|i| Event {
                at: Some(now),
                body: EventBody::AppointmentBooked {
                    id: format!("a{i}"),
                    patient: format!("p{i}"),
                    practitioner: "dr1".into(),
                    motive: None,
                    start: now + SignedDuration::from_hours(48),
                    duration_minutes: None,
                    location: None,
                    source: Source::Staff,
                },
            })
            .collect();
        engine.ingest(&practice, &bookings).await.unwrap();
    }

    let (smtp_port, received) = smtp_sink().await;
    let dir = std::env::temp_dir().join(format!("rappel-workers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut workers: Vec<Child> = (0..WORKERS)
        .map(|_| worker(&url, smtp_port, &dir))
        .collect();

    // Kill one worker with SIGKILL once a fifth of the messages are out.
    let started = Instant::now();
    while received.lock().unwrap().len() < MESSAGES / 5 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the workers do not send"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    workers[0].kill().unwrap();
    workers[0].wait().unwrap();

    while sent_confirmations(&store, &practice).await < MESSAGES {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "only {} of {MESSAGES} recorded as sent",
            sent_confirmations(&store, &practice).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for w in workers.iter_mut().skip(1) {
        let _ = w.kill();
        let _ = w.wait();
    }
    let received = received.lock().unwrap().clone();
    let handed_off: usize = received.values().sum();
    let duplicates = handed_off - received.len();
    eprintln!(
        "{MESSAGES} messages, {WORKERS} workers, one killed: {} distinct received, {duplicates} duplicates, {:.1} s",
        received.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        received.len(),
        MESSAGES,
        "every message reached the SMTP server"
    );
    assert!(
        duplicates <= BATCH * IN_FLIGHT,
        "{duplicates} duplicates: more than the {IN_FLIGHT} batches of {BATCH} one worker has in flight"
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    rappel_store::admin::drop_postgres_database(&base, &name)
        .await
        .unwrap();
}
