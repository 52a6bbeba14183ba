//! A `rappel worker` whose PostgreSQL stops answering: it says so once, waits longer after each
//! failed round (1 s, 2 s, 4 s… at most a minute, with jitter) instead of retrying in a hot
//! loop, and sends what is due as soon as the database is back.
//!
//! The outage is made by a TCP proxy between the worker and PostgreSQL that this test cuts
//! (every open connection closed, every new one refused) and restores, so the shared server
//! keeps running for the other tests.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::SignedDuration;
use rappel_domain::event::{Event, EventBody};
use rappel_domain::facts::{Practitioner, Source};
use rappel_engine::{Engine, EngineConfig, SystemClock, Transports};
use rappel_store::Store;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use rappel_test_support::smtp::smtp_sink;

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

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// `postgres://user@host:port/db` with `host:port` replaced by the proxy's.
fn through(url: &str, port: u16) -> (String, String) {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = url[after_scheme..]
        .find('/')
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_backs_off_while_the_database_is_down_and_sends_when_it_is_back() {
    let base = std::env::var("RAPPEL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (url, name) = rappel_store::admin::create_postgres_database(&base, "rappel_test_outage")
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL at {base} is needed (RAPPEL_TEST_POSTGRES_URL): {e}")
        });
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    // This process books; the worker under test sends.
    let engine = Engine::new(
        store.clone(),
        std::sync::Arc::new(SystemClock),
        Transports::all(std::sync::Arc::new(rappel_channels::Recorder::default())),
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
    engine.ingest(&practice, &[patient]).await.unwrap();

    let (proxied, target) = through(&url, 0);
    let proxy = Proxy::start(target).await;
    let (proxied, _) = through(&proxied, proxy.port);
    let (smtp_port, received) = smtp_sink().await;
    let dir = std::env::temp_dir().join(format!("rappel-outage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("worker.log");
    let mut worker = Command::new(env!("CARGO_BIN_EXE_rappel"))
        .arg("worker")
        .env("RAPPEL_DATABASE_URL", &proxied)
        .env("RAPPEL_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}"))
        .env("RAPPEL_LOG", "info")
        .env("NO_COLOR", "1")
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the rappel binary starts");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The database goes away; meanwhile a booking makes a confirmation due now.
    proxy.cut();
    let before = proxy.attempts.load(Ordering::SeqCst);
    let now = engine.now();
    let booking = Event {
        at: Some(now),
        body: EventBody::AppointmentBooked {
            id: "a1".into(),
            patient: "p1".into(),
            practitioner: "dr1".into(),
            motive: None,
            start: now + SignedDuration::from_hours(48),
            duration_minutes: None,
            location: None,
            source: Source::Staff,
        },
    };
    engine.ingest(&practice, &[booking]).await.unwrap();
    let outage = Duration::from_secs(20);
    tokio::time::sleep(outage).await;
    let during = proxy.attempts.load(Ordering::SeqCst) - before;
    assert!(
        received.lock().unwrap().is_empty(),
        "nothing can be sent without the database"
    );

    // Back: the confirmation goes within the longest wait so far.
    proxy.restore();
    let back = Instant::now();
    while received.lock().unwrap().is_empty() {
        assert!(
            back.elapsed() < Duration::from_secs(75),
            "nothing sent {} s after the database came back",
            back.elapsed().as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resumed = back.elapsed();
    // The round logs its recovery after it has sent (it then reads the next due instants):
    // give it that moment before stopping the process, or a loaded machine loses the line.
    let sent = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("works again")
        && sent.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = worker.kill();
    let _ = worker.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let outage_lines = text.matches("waiting longer after each failure").count();
    eprintln!(
        "{} s outage: {during} connection attempts, {outage_lines} outage message(s); sent {:.1} s after the database came back",
        outage.as_secs(),
        resumed.as_secs_f64()
    );
    // Backing off from 1 s doubles to 16 s within 20 s: a handful of rounds, each trying a few
    // connections. A hot loop makes hundreds.
    assert!(
        during <= 60,
        "{during} connection attempts in {} s: the worker does not back off",
        outage.as_secs()
    );
    assert_eq!(outage_lines, 1, "the outage is logged once:\n{text}");
    assert!(
        text.contains("works again"),
        "the recovery is logged:\n{text}"
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    rappel_store::admin::drop_postgres_database(&base, &name)
        .await
        .unwrap();
}
