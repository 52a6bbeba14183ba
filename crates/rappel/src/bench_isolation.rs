//! `rappel bench isolation`: does one practice's flood slow the others down? The real server on a
//! loopback port and a fresh store; practice A posts `--batches` batches of `--events`
//! appointment bookings at once over HTTP, while `--readers` clients of practice B read its
//! settings, a patient, an appointment's timeline and its sent box in a loop. It prints B's
//! latency alone first, then during the flood (p50, p99, max), and how long the flood took.
//!
//! On SQLite one writer at a time holds the database: B's reads must run beside A's writes
//! instead of queueing behind them, which is what this measures (issue 13, row 8).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};
use rappel_channels::Recorder;
use rappel_domain::event::{Event, EventBody};
use rappel_domain::facts::Practitioner;
use rappel_engine::{Database, Engine, EngineConfig, SystemClock, Transports};
use rappel_server::ServerConfig;
use serde_json::{Value, json};

use crate::bench_dispatch::Cleanup;

#[derive(clap::Args, Debug, Clone)]
pub struct IsolationArgs {
    /// `sqlite` (a fresh file in the temp folder) or `postgres` (a fresh database).
    #[arg(long, default_value = "sqlite")]
    pub store: String,
    /// Batches practice A posts at once.
    #[arg(long, default_value_t = 10)]
    pub batches: usize,
    /// Events in each of A's batches (the server's limit is 1,000).
    #[arg(long, default_value_t = 1000)]
    pub events: usize,
    /// Clients of practice B reading in a loop, each one request at a time.
    #[arg(long, default_value_t = 2)]
    pub readers: usize,
    /// How long B reads alone before the flood, for its baseline latency.
    #[arg(long, default_value_t = 2)]
    pub baseline_seconds: u64,
    /// PostgreSQL server for `--store postgres` (a database is created there and dropped).
    #[arg(
        long,
        env = "RAPPEL_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub postgres_url: String,
    /// One JSON object on stdout instead of the report.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: IsolationArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::ensure!(args.batches > 0, "--batches must be at least 1");
    anyhow::ensure!(
        (1..=1000).contains(&args.events),
        "--events must be from 1 to 1000"
    );
    anyhow::ensure!(args.readers > 0, "--readers must be at least 1");
    let (url, cleanup) =
        Cleanup::fresh(&args.store, &args.postgres_url, None, "rappel_isolation").await?;
    let result = bench(&args, &url).await;
    cleanup.run().await;
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn bench(args: &IsolationArgs, url: &str) -> anyhow::Result<Value> {
    let database = Database::connect(url).await?;
    database.migrate().await?;
    // No worker runs: the flood is ingestion (planning and writing), nothing is sent.
    let engine = Engine::with_database(
        database,
        Arc::new(SystemClock),
        Transports::all(Arc::new(Recorder::default())),
        EngineConfig::default(),
    );
    let flood = engine
        .create_practice(
            "Cabinet A (flood)",
            "doctolib",
            "Europe/Paris",
            Default::default(),
        )
        .await?;
    let quiet = engine
        .create_practice(
            "Cabinet B (reads)",
            "doctolib",
            "Europe/Paris",
            Default::default(),
        )
        .await?;
    let total = args.batches * args.events;
    // Not timed: the directories, A's patients (one per booking, so each plan is one
    // patient's) and B's one appointment.
    for practice in [&flood.id, &quiet.id] {
        engine
            .put_practitioner(
                practice,
                &Practitioner {
                    id: "dr1".into(),
                    name: "Dr Bench".into(),
                    email: None,
                    mobile: None,
                },
            )
            .await?;
    }
    for chunk in (0..total).collect::<Vec<_>>().chunks(1000) {
        let events: Vec<Event> = chunk.iter().map(|i| patient(*i)).collect();
        engine.ingest(&flood.id, &events).await?;
    }
    engine.ingest(&quiet.id, &[patient(0)]).await?;
    let start = (Timestamp::now() + SignedDuration::from_hours(240)).to_string();
    let booked = json!([{"type": "appointment.booked", "id": "a0", "patient": "p0",
        "practitioner": "dr1", "start": start, "source": "staff"}]);

    // The server as `rappel serve` runs it, but with no rate limit: the bench measures the
    // store, not the limiter.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        rate_per_second: 1e9,
        burst: u32::MAX,
        ..ServerConfig::default()
    };
    let server = tokio::spawn(rappel_server::serve_with(
        engine.clone(),
        config,
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let answer = post(&client, &base, &quiet.api_key, booked.to_string()).await?;
    anyhow::ensure!(answer.0 == 202, "B's booking: {} {}", answer.0, answer.1);

    // B alone.
    let reading = Arc::new(AtomicBool::new(true));
    let readers = spawn_readers(args.readers, &client, &base, &quiet.api_key, &reading);
    tokio::time::sleep(Duration::from_secs(args.baseline_seconds)).await;
    reading.store(false, Ordering::Relaxed);
    let mut baseline = collect(readers).await?;

    // B during A's flood.
    let bodies: Vec<String> = (0..args.batches)
        .map(|b| {
            let events: Vec<Value> = (b * args.events..(b + 1) * args.events)
                .map(|i| {
                    json!({"type": "appointment.booked", "id": format!("a{i}"),
                        "patient": format!("p{i}"), "practitioner": "dr1",
                        "start": start, "source": "staff"})
                })
                .collect();
            Value::Array(events).to_string()
        })
        .collect();
    let reading = Arc::new(AtomicBool::new(true));
    let readers = spawn_readers(args.readers, &client, &base, &quiet.api_key, &reading);
    let flood_started = Instant::now();
    let batches: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let client = client.clone();
            let base = base.clone();
            let key = flood.api_key.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let (status, text) = post(&client, &base, &key, body).await?;
                anyhow::ensure!(status == 202, "a flood batch: {status} {text}");
                anyhow::Ok(started.elapsed())
            })
        })
        .collect();
    let mut batch_times = Vec::new();
    for batch in batches {
        batch_times.push(batch.await??);
    }
    let flood_s = flood_started.elapsed().as_secs_f64();
    reading.store(false, Ordering::Relaxed);
    let mut during = collect(readers).await?;

    let _ = stop.send(());
    server.await??;
    batch_times.sort();
    baseline.sort();
    during.sort();
    Ok(json!({
        "store": args.store,
        "batches": args.batches,
        "events_per_batch": args.events,
        "flood_seconds": round3(flood_s),
        "flood_events_per_s": (total as f64 / flood_s).round(),
        "slowest_batch_ms": ms(batch_times.last().copied().unwrap_or_default()),
        "readers": args.readers,
        "baseline_reads": baseline.len(),
        "baseline_p50_ms": ms(pct(&baseline, 0.50)),
        "baseline_p99_ms": ms(pct(&baseline, 0.99)),
        "flood_reads": during.len(),
        "flood_p50_ms": ms(pct(&during, 0.50)),
        "flood_p99_ms": ms(pct(&during, 0.99)),
        "flood_max_ms": ms(during.last().copied().unwrap_or_default()),
    }))
}

fn patient(i: usize) -> Event {
    Event {
        at: None,
        body: EventBody::PatientUpdated {
            id: format!("p{i}"),
            fields: serde_json::from_value(json!({
                "first_name": "Jeanne", "last_name": format!("Patient {i}"),
                "email": format!("p{i}@example.org"), "mobile": "+33612345678"
            }))
            .expect("an object"),
        },
    }
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    body: String,
) -> anyhow::Result<(u16, String)> {
    let response = client
        .post(format!("{base}/v1/events"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .context("POST /v1/events")?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}

/// B's reads: what a practice's software or staff look at most.
const READS: [&str; 4] = [
    "/v1/settings",
    "/v1/patients/p0",
    "/v1/appointments/a0/timeline",
    "/v1/notifications?limit=20",
];

type Readers = Vec<tokio::task::JoinHandle<anyhow::Result<Vec<Duration>>>>;

/// Each reader sends one request at a time until `reading` turns false, and returns each
/// request's time; any answer but 200 stops the bench.
fn spawn_readers(
    n: usize,
    client: &reqwest::Client,
    base: &str,
    key: &str,
    reading: &Arc<AtomicBool>,
) -> Readers {
    (0..n)
        .map(|r| {
            let client = client.clone();
            let base = base.to_string();
            let key = key.to_string();
            let reading = reading.clone();
            tokio::spawn(async move {
                let mut times = Vec::new();
                let mut i = r;
                while reading.load(Ordering::Relaxed) {
                    let path = READS[i % READS.len()];
                    i += 1;
                    let started = Instant::now();
                    let response = client
                        .get(format!("{base}{path}"))
                        .bearer_auth(&key)
                        .send()
                        .await
                        .with_context(|| format!("GET {path}"))?;
                    let status = response.status().as_u16();
                    let _ = response.bytes().await;
                    times.push(started.elapsed());
                    anyhow::ensure!(status == 200, "GET {path}: {status}");
                }
                anyhow::Ok(times)
            })
        })
        .collect()
}

async fn collect(readers: Readers) -> anyhow::Result<Vec<Duration>> {
    let mut all = Vec::new();
    for reader in readers {
        all.extend(reader.await??);
    }
    Ok(all)
}

/// The `p` quantile of sorted times (nearest rank).
fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    round3(d.as_secs_f64() * 1000.0)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn print_report(r: &Value) {
    println!(
        "{}: practice A posts {} batches of {} bookings at once: {:.2} s ({} events/s), slowest batch {:.0} ms",
        r["store"].as_str().unwrap_or_default(),
        r["batches"],
        r["events_per_batch"],
        r["flood_seconds"].as_f64().unwrap_or_default(),
        r["flood_events_per_s"].as_f64().unwrap_or_default(),
        r["slowest_batch_ms"].as_f64().unwrap_or_default(),
    );
    let f = |key: &str| r[key].as_f64().unwrap_or_default();
    println!(
        "practice B ({} readers), alone:       {:>6} reads, p50 {:>7.1} ms, p99 {:>7.1} ms",
        r["readers"],
        r["baseline_reads"],
        f("baseline_p50_ms"),
        f("baseline_p99_ms"),
    );
    println!(
        "practice B, during A's flood:         {:>6} reads, p50 {:>7.1} ms, p99 {:>7.1} ms, max {:.1} ms",
        r["flood_reads"],
        f("flood_p50_ms"),
        f("flood_p99_ms"),
        f("flood_max_ms"),
    );
}
