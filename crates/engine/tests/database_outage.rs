//! The worker loop (`Engine::run_worker`) while its PostgreSQL stops answering: it logs the
//! outage once, waits longer after each failed round instead of retrying in a hot loop, loses
//! nothing that came due meanwhile, and sends it once the database is back, on the connections
//! its pool opens again.
//!
//! The shared PostgreSQL server cannot be stopped by a test, so the worker reaches it through a
//! loopback TCP proxy that the test cuts (every open connection closed, every new one accepted
//! and closed at once) and restores, counting the connections it is asked for. A server that is
//! really stopped refuses connections instead; sqlx then retries inside each acquisition, up to
//! its acquire timeout, which makes rounds slower, not more frequent.
//!
//! The cut lasts 8 s; `RAPPEL_TEST_OUTAGE_SECONDS=60` makes it the minute of issue 18 (the bounds
//! follow the length).
//!
//! PostgreSQL is not optional, as in the other engine tests: `RAPPEL_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`), a database of its own, dropped
//! afterwards.
//!
//! This file holds one test because it installs the process's tracing subscriber, which
//! collects the worker's events to count them.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::SignedDuration;
use rappel_channels::Recorder;
use rappel_domain::event::{Event, EventBody};
use rappel_domain::facts::{Practitioner, Source};
use rappel_domain::notification::Kind;
use rappel_engine::{Engine, EngineConfig, SystemClock, Transports};
use rappel_store::{NotificationFilter, Status, Store};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

// ---- the worker's log --------------------------------------------------------------------------

/// One event of the engine: its level and message.
#[derive(Clone, Debug)]
struct Logged {
    level: tracing::Level,
    message: String,
}

/// A tracing subscriber that keeps the engine's events (debug and above) in memory.
struct Capture {
    events: Arc<Mutex<Vec<Logged>>>,
    next_span: AtomicU64,
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target().starts_with("rappel_engine") && *metadata.level() <= tracing::Level::DEBUG
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        self.events.lock().unwrap().push(Logged {
            level: *event.metadata().level(),
            message: message.0,
        });
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

// ---- the proxy ---------------------------------------------------------------------------------

/// A loopback proxy to `target` that can be cut and restored; counts the connections it was
/// asked for.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    attempts: Arc<AtomicUsize>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let attempts = Arc::new(AtomicUsize::new(0));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, attempts2, links2) = (up.clone(), attempts.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                attempts2.fetch_add(1, Ordering::SeqCst);
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                links2.lock().unwrap().push(link);
            }
        });
        Proxy {
            port,
            up,
            attempts,
            links,
        }
    }

    /// Closes every open connection (both ends: aborting a link drops its two sockets) and
    /// refuses new ones.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }
}

/// `postgres://user@host:port/db?…` → (the same URL through 127.0.0.1:`port`, `host:port`).
fn through(url: &str, port: u16) -> (String, String) {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = url[after_scheme..]
        .find(['/', '?'])
        .map(|i| after_scheme + i)
        .unwrap_or(url.len());
    let host_start = url[after_scheme..authority_end]
        .rfind('@')
        .map(|i| after_scheme + i + 1)
        .unwrap_or(after_scheme);
    let target = url[host_start..authority_end].to_string();
    let proxied = format!(
        "{}127.0.0.1:{port}{}",
        &url[..host_start],
        &url[authority_end..]
    );
    (proxied, target)
}

// ---- fixtures ----------------------------------------------------------------------------------

fn booking(id: &str, engine: &Engine) -> Event {
    let now = engine.now();
    Event {
        at: Some(now),
        body: EventBody::AppointmentBooked {
            id: id.into(),
            patient: "p1".into(),
            practitioner: "dr1".into(),
            motive: None,
            start: now + SignedDuration::from_hours(48),
            duration_minutes: None,
            location: None,
            source: Source::Staff,
        },
    }
}

/// The keys of the confirmations stored as sent, read straight from the database.
async fn sent_confirmations(store: &Store, practice: &str) -> Vec<String> {
    let mut tx = store.begin_read().await.unwrap();
    let rows = tx
        .list_notifications(
            practice,
            &NotificationFilter {
                status: Some(Status::Sent),
                kind: Some(Kind::Confirmation),
                limit: 100,
                ..NotificationFilter::default()
            },
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    rows.into_iter().map(|row| row.key).collect()
}

/// Waits (10 s at most) until exactly `count` confirmations are stored as sent.
async fn stored_confirmations(store: &Store, practice: &str, count: usize, what: &str) {
    let started = Instant::now();
    loop {
        let keys = sent_confirmations(store, practice).await;
        if keys.len() == count {
            return;
        }
        assert!(
            keys.len() < count && started.elapsed() < Duration::from_secs(10),
            "{what}: {keys:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < limit,
            "{what}: not within {} s",
            limit.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

// ---- the test ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_backs_off_while_postgresql_is_cut_off_and_sends_what_came_due_once_it_is_back()
{
    let log: Arc<Mutex<Vec<Logged>>> = Arc::default();
    tracing::subscriber::set_global_default(Capture {
        events: log.clone(),
        next_span: AtomicU64::new(1),
    })
    .expect("the only subscriber of this test binary");

    let admin_url = std::env::var("RAPPEL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let (url, name) =
        rappel_store::admin::create_postgres_database(&admin_url, "rappel_test_outage")
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is unreachable at {admin_url} ({e}); set RAPPEL_TEST_POSTGRES_URL."
                )
            });
    let outcome = tokio::spawn(outage(url, log)).await;
    let _ = rappel_store::admin::drop_postgres_database(&admin_url, &name).await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

async fn outage(url: String, log: Arc<Mutex<Vec<Logged>>>) {
    // The front desk books straight on the database; the worker under test reaches it only
    // through the proxy.
    let direct = Store::connect(&url).await.unwrap();
    direct.migrate().await.unwrap();
    let desk = Engine::new(
        direct.clone(),
        Arc::new(SystemClock),
        Transports::all(Arc::new(Recorder::default())),
        EngineConfig::default(),
    );
    let practice = desk
        .create_practice("Cabinet", "rosa", "Europe/Paris", Default::default())
        .await
        .unwrap()
        .id;
    desk.put_practitioner(
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
    let patient = Event {
        at: None,
        body: EventBody::PatientUpdated {
            id: "p1".into(),
            fields: serde_json::from_value(serde_json::json!({
                "first_name": "Jeanne", "last_name": "Dupont", "email": "jeanne@example.org"
            }))
            .unwrap(),
        },
    };
    desk.ingest(&practice, &[patient]).await.unwrap();

    let (_, target) = through(&url, 0);
    let proxy = Proxy::start(target).await;
    let (proxied, _) = through(&url, proxy.port);
    let recorder = Recorder::default();
    let worker = Engine::new(
        Store::connect(&proxied).await.unwrap(),
        Arc::new(SystemClock),
        Transports::all(Arc::new(recorder.clone())),
        EngineConfig {
            worker_id: "outage".into(),
            ..EngineConfig::default()
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = {
        let worker = worker.clone();
        tokio::spawn(async move {
            worker
                .run_worker(async {
                    let _ = stopped.await;
                })
                .await;
        })
    };
    // The worker's first round (tasks, dispatch, webhooks, retention) and its LISTEN
    // connection, through the proxy.
    wait_until("the worker connects", Duration::from_secs(10), || {
        proxy.attempts() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent_before = recorder.sent().len();

    // The database goes away. The worker learns it at its next round, which a wake-up starts
    // at once (as work committed just before the cut would); meanwhile the front desk books,
    // which makes a confirmation due now.
    proxy.cut();
    let attempts_before = proxy.attempts();
    worker.signal();
    desk.ingest(&practice, &[booking("a1", &desk)])
        .await
        .unwrap();
    let outage = Duration::from_secs(
        std::env::var("RAPPEL_TEST_OUTAGE_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(8),
    );
    tokio::time::sleep(outage).await;
    let attempts = proxy.attempts() - attempts_before;
    let during: Vec<Logged> = log.lock().unwrap().clone();
    assert_eq!(
        recorder.sent().len(),
        sent_before,
        "nothing can be sent without the database"
    );

    // Back: the confirmation goes at the worker's next round, within the last wait (at most
    // the length of the cut, 20 % more with jitter, a minute at most).
    proxy.restore();
    let resumed = wait_until(
        "the confirmation due during the outage is sent once the database is back",
        outage.mul_f64(1.2).min(Duration::from_secs(60)) + Duration::from_secs(10),
        || recorder.sent().len() > sent_before,
    )
    .await;
    let sent = recorder.sent();
    assert_eq!(sent.len(), sent_before + 1, "sent once: {sent:?}");
    assert!(
        sent[sent_before].message.id.contains("a1"),
        "the booking's confirmation: {}",
        sent[sent_before].message.id
    );
    // The outcome is recorded after the hand-off, in its own transaction.
    stored_confirmations(
        &direct,
        &practice,
        1,
        "its outcome is stored: the pool writes again",
    )
    .await;

    // The pool works as before: work this process commits is sent at once.
    worker
        .ingest(&practice, &[booking("a2", &worker)])
        .await
        .expect("the worker's pool answers again");
    wait_until(
        "a booking made after the outage is confirmed",
        Duration::from_secs(10),
        || recorder.sent().len() > sent_before + 1,
    )
    .await;
    stored_confirmations(&direct, &practice, 2, "the second outcome is stored").await;

    let _ = stop.send(());
    running.await.unwrap();
    let all: Vec<Logged> = log.lock().unwrap().clone();
    let failed_rounds = during
        .iter()
        .filter(|e| e.message.starts_with("the worker's round failed"))
        .count();
    let outage_errors: Vec<&Logged> = all
        .iter()
        .filter(|e| e.level <= tracing::Level::WARN)
        .collect();
    let recoveries = all
        .iter()
        .filter(|e| e.message.contains("works again"))
        .count();
    eprintln!(
        "{} s cut: {attempts} connection attempts, {failed_rounds} failed rounds, \
         {} warnings or errors; sent {:.1} s after the database came back",
        outage.as_secs(),
        outage_errors.len(),
        resumed.as_secs_f64(),
    );

    // Said once, at error level, and its end once at info; the retries are at debug.
    assert_eq!(
        outage_errors.len(),
        1,
        "one error for the whole outage: {all:#?}"
    );
    assert_eq!(outage_errors[0].level, tracing::Level::ERROR);
    assert!(
        outage_errors[0]
            .message
            .contains("waiting longer after each failure"),
        "{:?}",
        outage_errors[0]
    );
    assert_eq!(recoveries, 1, "the recovery is said once: {all:#?}");
    // Backing off from 1 s (0.8 s with jitter), doubling: rounds at most at 0, 0.8, 2.4, 5.6,
    // 12… s, so about log2(cut / 0.8 s) of them (4 in 8 s, 7 in a minute). Each round tries a
    // handful of connections (tasks, dispatch, webhooks, next due instants) and the LISTEN
    // connection retries on its own backoff. A hot loop makes tens of rounds a second and
    // hundreds of connections.
    let most_rounds = (outage.as_secs_f64() / 0.8 + 1.0).log2().ceil() as usize + 1;
    assert!(
        (1..=most_rounds).contains(&failed_rounds),
        "{failed_rounds} failed rounds in a {} s cut (at most {most_rounds}): {all:#?}",
        outage.as_secs()
    );
    assert!(
        attempts <= 10 * most_rounds,
        "{attempts} connection attempts in an {} s cut: the worker does not back off",
        outage.as_secs()
    );
}
