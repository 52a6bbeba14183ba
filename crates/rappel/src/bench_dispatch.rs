//! `rappel bench --store sqlite|postgres --channel null --notifications N --workers W`: the whole
//! path, measured. Appointments go in through the real ingestion path (facts → plan → reconcile),
//! their confirmations come due, and W concurrent dispatch loops push them through the real
//! claim → decide → render → channel → record path.
//!
//! Three phases: ingest (events/s), a burst where all N confirmations are due at once
//! (dispatch/s), and a paced phase that books at half the measured capacity while the workers
//! run, whose hand-off lateness (hand-off time − due time) is what `lateness_*` reports.
//!
//! `--compare` prints the figures in the shape of graphile-worker's published method (N jobs
//! enqueued in batches, then drained with some concurrency): one `compare` line with the same
//! keys that `bench/graphile.js` and `bench/pgboss.js` print, so that a run of each on one
//! PostgreSQL reads side by side (bench/README.md). A Rappel "job" is a confirmation: its
//! enqueue is the ingestion of a booking (event log, appointment, plan, notification rows),
//! its run the whole dispatch path.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use jiff::SignedDuration;
use rappel_channels::email::{Sender, SmtpConfig, SmtpTransport, SmtpUrl};
use rappel_channels::{OutboundMessage, Receipt, SendFuture, Transport};
use rappel_domain::event::{Event, EventBody};
use rappel_domain::facts::{Practitioner, Source};
use rappel_domain::notification::{Channel, Kind};
use rappel_engine::{Database, Engine, EngineConfig, SystemClock, Transports};
use serde_json::json;

#[derive(clap::Args, Debug, Clone)]
pub struct DispatchArgs {
    /// `sqlite` (a fresh file in the temp folder) or `postgres` (a fresh database).
    #[arg(long, default_value = "sqlite")]
    pub store: String,
    /// `null` (accepts every message at once) or `smtp://HOST:PORT` (the emails go to that SMTP
    /// server through the real transport; every other channel stays `null`).
    #[arg(long, default_value = "null")]
    pub channel: String,
    /// Appointments to book, hence confirmations to dispatch in the burst.
    #[arg(long, default_value_t = 10_000)]
    pub notifications: usize,
    /// Concurrent dispatch loops.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Messages one claim takes at most (`RAPPEL_WORKER_BATCH` of a worker, 100 by default).
    /// 500 by default here: graphile-worker's local queue in its published method, which
    /// `bench/graphile.js` reproduces, so that both fetch as many jobs at a time.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub batch: i64,
    /// Claimed batches each worker processes at once (`RAPPEL_WORKER_IN_FLIGHT` of a worker, 2
    /// by default); 1 is the loop of before 2026-12-08, one batch after the other.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub in_flight: u8,
    /// PostgreSQL server for `--store postgres` (a database is created there and dropped).
    #[arg(
        long,
        env = "RAPPEL_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub postgres_url: String,
    /// The locale of the database `--store postgres` creates (`fr_FR.utf8`, as a server set
    /// up in French gives its databases), instead of the server's default; the server's system
    /// must have it (`locale -a`).
    #[arg(long)]
    pub postgres_locale: Option<String>,
    /// Patient ids in no particular order (`p` then eight hex digits, each booking's patient
    /// scattered over the id space) instead of `p0`, `p1`, … in booking order. Practice software
    /// books appointments for patients created long before, in any order, so every index led by
    /// the patient (the notifications', the links') takes its entries at random places, as here.
    #[arg(long)]
    pub scattered_ids: bool,
    /// The `null` channel answers each hand-off after this many milliseconds instead of at once,
    /// as a provider's API does over the network (the hand-offs of a batch wait side by side).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub handoff_ms: u64,
    /// One JSON object on stdout instead of the report.
    #[arg(long)]
    pub json: bool,
    /// After the report, one `compare key=value …` line in the shape the graphile-worker and
    /// pg-boss scripts of `bench/` print (N, enqueue batch, concurrency, elapsed, jobs/s).
    #[arg(long, conflicts_with = "json")]
    pub compare: bool,
}

/// Bookings per `ingest` call, hence per transaction: the bench's enqueue batch.
const BOOKING_BATCH: usize = 1000;

/// The id of the bench's patient `i`: `p{i}`, or with `scattered` the image of `i` by a
/// multiplicative hash (a bijection of 32-bit numbers, Knuth's constant), so that consecutive
/// bookings name patients far apart in every index's order.
fn patient_id(i: usize, scattered: bool) -> String {
    if scattered {
        format!("p{:08x}", (i as u32).wrapping_mul(2_654_435_761))
    } else {
        format!("p{i}")
    }
}

/// Counts the messages handed off. Emails go to `email` when the bench has one (`--channel
/// smtp://…`); everything else is the `null` channel, which accepts at once and so measures
/// Rappel, not a provider.
#[derive(Default)]
struct NullTransport {
    email: Option<Arc<dyn Transport>>,
    /// How long the `null` channel takes to answer each hand-off (`--handoff-ms`).
    answer_in: Duration,
    sent: AtomicUsize,
}

impl Transport for NullTransport {
    fn send<'a>(&'a self, message: &'a OutboundMessage) -> SendFuture<'a> {
        Box::pin(async move {
            let receipt = match &self.email {
                Some(email) if message.channel == Channel::Email => email.send(message).await?,
                _ => {
                    if !self.answer_in.is_zero() {
                        tokio::time::sleep(self.answer_in).await;
                    }
                    Receipt::default()
                }
            };
            self.sent.fetch_add(1, Ordering::Relaxed);
            Ok(receipt)
        })
    }
}

/// The transport `--channel` names for emails: none for `null`, else the SMTP one.
fn email_transport(channel: &str) -> anyhow::Result<Option<Arc<dyn Transport>>> {
    if channel == "null" {
        return Ok(None);
    }
    if !channel.starts_with("smtp://") && !channel.starts_with("smtps://") {
        anyhow::bail!("--channel: `{channel}` is not `null` or smtp://HOST:PORT");
    }
    let url = SmtpUrl::parse(channel).map_err(|e| anyhow::anyhow!("--channel: {e}"))?;
    let sender = Sender::parse("Rappel bench <bench@example.org>")
        .map_err(|e| anyhow::anyhow!("bench sender: {e}"))?;
    Ok(Some(Arc::new(SmtpTransport::new(SmtpConfig {
        url,
        sender,
        timeout: Duration::from_secs(30),
        dkim: None,
        bounce: None,
    }))))
}

pub async fn run(args: DispatchArgs) -> anyhow::Result<std::process::ExitCode> {
    // `RAPPEL_LOG=sqlx::query=debug` logs every statement with its duration: how the slow
    // ones of issue 18 were found (bench/README.md).
    crate::init_tracing();
    let email = email_transport(&args.channel)?;
    anyhow::ensure!(args.notifications > 0, "--notifications must be at least 1");
    anyhow::ensure!(args.workers > 0, "--workers must be at least 1");
    let (url, cleanup) = Cleanup::fresh(
        &args.store,
        &args.postgres_url,
        args.postgres_locale.as_deref(),
        "rappel_bench",
    )
    .await?;
    let result = bench(&args, &url, email).await;
    cleanup.run().await;
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&args, &report);
        if args.compare {
            println!("{}", compare_line(&report));
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The bench's throw-away store, removed by `run`.
pub(crate) enum Cleanup {
    File(std::path::PathBuf),
    Database(String, String),
}

impl Cleanup {
    /// A fresh store for `--store`: a new SQLite file in the temp folder, or a new database on
    /// the PostgreSQL server of `postgres_url` named after `prefix` (in `locale` if given).
    /// Returns its URL.
    pub(crate) async fn fresh(
        store: &str,
        postgres_url: &str,
        locale: Option<&str>,
        prefix: &str,
    ) -> anyhow::Result<(String, Cleanup)> {
        Ok(match store {
            "sqlite" => {
                let path = std::env::temp_dir().join(format!("{prefix}-{}.db", std::process::id()));
                (format!("sqlite://{}", path.display()), Cleanup::File(path))
            }
            "postgres" => {
                let (url, name) =
                    rappel_engine::bench::create_postgres_database_in(postgres_url, prefix, locale)
                        .await
                        .with_context(|| format!("cannot create a database on {postgres_url}"))?;
                (url, Cleanup::Database(postgres_url.to_string(), name))
            }
            other => anyhow::bail!("--store: `{other}` is not sqlite or postgres"),
        })
    }

    pub(crate) async fn run(self) {
        match self {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Database(base, name) => {
                let _ = rappel_engine::bench::drop_postgres_database(&base, &name).await;
            }
        }
    }
}

fn progress(label: &str, done: usize, total: usize) {
    let width = 30;
    let filled = done * width / total.max(1);
    eprint!(
        "\r{label:<10} [{}{}] {done}/{total}",
        "#".repeat(filled),
        " ".repeat(width - filled)
    );
    if done >= total {
        eprintln!();
    }
    let _ = std::io::stderr().flush();
}

async fn bench(
    args: &DispatchArgs,
    url: &str,
    email: Option<Arc<dyn Transport>>,
) -> anyhow::Result<serde_json::Value> {
    let database = Database::connect(url).await?;
    database.migrate().await?;
    let null = Arc::new(NullTransport {
        email,
        answer_in: Duration::from_millis(args.handoff_ms),
        sent: AtomicUsize::new(0),
    });
    let engine = Engine::with_database(
        database,
        Arc::new(SystemClock),
        Transports::all(null.clone()),
        EngineConfig {
            worker_id: "bench".into(),
            // Claiming more rows per round trip amortizes the three transactions of a batch:
            // with 3 workers on PostgreSQL, 100 → 200 → 400 → 800 gave about 11,600 → 12,300
            // → 14,400 → 15,400 messages/s (issue 18, session 12).
            batch: args.batch,
            in_flight: args.in_flight.into(),
            ..EngineConfig::default()
        },
    );
    let practice = engine
        .create_practice(
            "Cabinet (bench)",
            "doctolib",
            "Europe/Paris",
            Default::default(),
        )
        .await?
        .id;
    engine
        .put_practitioner(
            &practice,
            &Practitioner {
                id: "dr1".into(),
                name: "Dr Bench".into(),
                email: None,
                mobile: None,
            },
        )
        .await?;
    let n = args.notifications;
    // Patients first (not timed): one per appointment, so each plan is one patient's.
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let events: Vec<Event> = chunk
            .iter()
            .map(|i| Event {
                at: None,
                body: EventBody::PatientUpdated {
                    id: patient_id(*i, args.scattered_ids),
                    fields: serde_json::from_value(json!({
                        "first_name": "Jeanne", "last_name": format!("Patient {i}"),
                        "email": format!("p{i}@example.org"), "mobile": "+33612345678"
                    }))
                    .expect("an object"),
                },
            })
            .collect();
        engine.ingest(&practice, &events).await?;
        progress("patients", chunk[chunk.len() - 1] + 1, n);
    }

    // Phase 1: ingest. The rows it inserts are counted table by table on the throw-away
    // database (exact counts before and after, not timed).
    let rows_before = rappel_engine::bench::table_rows(url).await?;
    let started = Instant::now();
    let cpu_before = process_cpu_s();
    book(&engine, &practice, "a", 0..n, args.scattered_ids, true).await?;
    let ingest_s = started.elapsed().as_secs_f64();
    let ingest_cpu_s = process_cpu_s() - cpu_before;
    let rows_after = rappel_engine::bench::table_rows(url).await?;
    let ingest_rows: i64 = rows_after
        .iter()
        .map(|(table, after)| after - rows_before.get(table).copied().unwrap_or(0))
        .sum();
    let rows_by_table: serde_json::Map<String, serde_json::Value> = rows_after
        .iter()
        .filter_map(|(table, after)| {
            let added = after - rows_before.get(table).copied().unwrap_or(0);
            (added != 0).then(|| (table.clone(), json!(added)))
        })
        .collect();

    // Phase 2: burst dispatch of the N confirmations due now.
    let started = Instant::now();
    let cpu_before = process_cpu_s();
    let before = null.sent.load(Ordering::Relaxed);
    let counter = null.clone();
    run_workers(
        &engine,
        args.workers,
        move || counter.sent.load(Ordering::Relaxed) - before >= n,
        Some(n),
    )
    .await?;
    let dispatch_s = started.elapsed().as_secs_f64();
    let dispatch_cpu_s = process_cpu_s() - cpu_before;
    let dispatch_per_s = n as f64 / dispatch_s;

    // Phase 3: paced bookings at half capacity while the workers run.
    let paced = (n / 4).max(200).min(n);
    let rate = (dispatch_per_s.min(n as f64 / ingest_s) / 2.0).max(50.0);
    let phase_start = engine.now();
    let before = null.sent.load(Ordering::Relaxed);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers = {
        let engine = engine.clone();
        let null = null.clone();
        let done = done.clone();
        let w = args.workers;
        tokio::spawn(async move {
            run_workers(
                &engine,
                w,
                move || {
                    done.load(Ordering::Relaxed)
                        && null.sent.load(Ordering::Relaxed) - before >= paced
                },
                None,
            )
            .await
        })
    };
    let pace_started = Instant::now();
    let batch = ((rate / 100.0).ceil() as usize).max(1);
    let mut next = 0;
    while next < paced {
        let end = (next + batch).min(paced);
        book(
            &engine,
            &practice,
            "b",
            next..end,
            args.scattered_ids,
            false,
        )
        .await
        .context("paced booking")?;
        next = end;
        let target = Duration::from_secs_f64(next as f64 / rate);
        if let Some(wait) = target.checked_sub(pace_started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    done.store(true, Ordering::Relaxed);
    engine.signal();
    workers.await??;
    let lateness = engine
        .bench_handoff_lateness_ms(&practice, Kind::Confirmation, phase_start)
        .await?;
    let pct = |p: f64| -> f64 {
        if lateness.is_empty() {
            return 0.0;
        }
        let i = ((lateness.len() as f64 - 1.0) * p).round() as usize;
        lateness[i] as f64
    };
    Ok(json!({
        "store": args.store,
        "workers": args.workers,
        "in_flight": args.in_flight,
        "handoff_ms": args.handoff_ms,
        "scattered_ids": args.scattered_ids,
        "batch": args.batch,
        "notifications": n,
        "enqueue_batch": BOOKING_BATCH,
        "ingest_s": (ingest_s * 1000.0).round() / 1000.0,
        "ingest_events_per_s": (n as f64 / ingest_s).round(),
        "ingest_rows": ingest_rows,
        "ingest_rows_per_s": (ingest_rows as f64 / ingest_s).round(),
        "ingest_rows_by_table": rows_by_table,
        "dispatch_s": (dispatch_s * 1000.0).round() / 1000.0,
        "dispatch_per_s": dispatch_per_s.round(),
        "ingest_cpu_us_per_event": (ingest_cpu_s * 1e6 / n as f64).round(),
        "dispatch_cpu_us_per_message": (dispatch_cpu_s * 1e6 / n as f64).round(),
        "paced_rate_per_s": rate.round(),
        "lateness_p50_ms": pct(0.50),
        "lateness_p99_ms": pct(0.99),
        "lateness_max_ms": lateness.last().copied().unwrap_or(0),
        "peak_rss_mb": peak_rss_mb(),
    }))
}

/// Books appointments `a{i}` for patients `p{i}` ([`patient_id`]), [`BOOKING_BATCH`] events per
/// transaction (one `POST /v1/events` of that many events takes the same path).
async fn book(
    engine: &Engine,
    practice: &str,
    prefix: &str,
    range: std::ops::Range<usize>,
    scattered: bool,
    show: bool,
) -> anyhow::Result<()> {
    let total = range.end;
    let ids: Vec<usize> = range.collect();
    for chunk in ids.chunks(BOOKING_BATCH) {
        let now = engine.now();
        let events: Vec<Event> = chunk
            .iter()
            .map(|i| Event {
                at: Some(now),
                body: EventBody::AppointmentBooked {
                    id: format!("{prefix}{i}"),
                    patient: patient_id(*i, scattered),
                    practitioner: "dr1".into(),
                    motive: None,
                    start: now + SignedDuration::from_hours(240 + (*i % 100) as i64),
                    duration_minutes: None,
                    location: None,
                    source: Source::Staff,
                },
            })
            .collect();
        engine.ingest(practice, &events).await?;
        if show {
            progress("ingest", chunk[chunk.len() - 1] + 1, total);
        }
    }
    Ok(())
}

/// W dispatch loops until `finished()`; with `total`, reports the phase done.
async fn run_workers(
    engine: &Engine,
    workers: usize,
    finished: impl Fn() -> bool + Send + Sync + Clone + 'static,
    total: Option<usize>,
) -> anyhow::Result<()> {
    let mut handles = Vec::new();
    for _ in 0..workers {
        let engine = engine.clone();
        let finished = finished.clone();
        handles.push(tokio::spawn(async move {
            while !finished() {
                // The worker's own dispatch (`rappel worker`), batches overlapped.
                if engine.dispatch_due_overlapped().await.context("dispatch")? == 0 {
                    engine.wait_for_work(Duration::from_millis(5)).await;
                }
            }
            anyhow::Ok(())
        }));
    }
    for h in handles {
        h.await??;
    }
    if let Some(total) = total {
        progress("dispatch", total, total);
    }
    Ok(())
}

/// The CPU time this process has used so far (user and system, every thread, Linux
/// `/proc/self/stat`), in seconds; 0 where it cannot be read. Divided by the messages of a phase,
/// it says where a run's CPU goes: on SQLite it includes the database's own work (SQLite runs in
/// this process), on PostgreSQL not the server's. It drifts with this machine as messages per
/// second do (PostgreSQL dispatch 41–67 µs a message from run to run, issue 18, session 17).
fn process_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| cpu_s_of_stat(&stat))
        .unwrap_or(0.0)
}

/// `utime + stime` of a `/proc/[pid]/stat` line, in seconds. The command name (field 2) is in
/// parentheses and may hold spaces and parentheses, so fields are counted after the last `)`;
/// `utime` and `stime` are fields 14 and 15, in USER_HZ ticks, which Linux fixes at 100 a second
/// for what it shows user space.
fn cpu_s_of_stat(stat: &str) -> Option<f64> {
    const USER_HZ: f64 = 100.0;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// The process's peak resident memory (Linux `VmHWM`), in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map(|kb| (kb / 1024.0 * 10.0).round() / 10.0)
        .unwrap_or(0.0)
}

fn print_report(args: &DispatchArgs, r: &serde_json::Value) {
    println!(
        "rappel bench — store {}, channel {}, {} notifications, {} workers, claims of {}, \
         {} batches in flight a worker, patient ids {}",
        args.store,
        args.channel,
        args.notifications,
        args.workers,
        args.batch,
        args.in_flight,
        if args.scattered_ids {
            "scattered"
        } else {
            "in booking order"
        }
    );
    println!(
        "  ingest      {:>10} appointment events/s, {} rows inserted/s ({} rows: {})",
        r["ingest_events_per_s"],
        r["ingest_rows_per_s"],
        r["ingest_rows"],
        r["ingest_rows_by_table"]
            .as_object()
            .map(|tables| tables
                .iter()
                .map(|(table, rows)| format!("{table} {rows}"))
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default()
    );
    println!(
        "  dispatch    {:>10} notifications/s (all due at once)",
        r["dispatch_per_s"]
    );
    println!(
        "  cpu         {} µs of this process per booking ingested, {} µs per message dispatched",
        r["ingest_cpu_us_per_event"], r["dispatch_cpu_us_per_message"]
    );
    println!(
        "  lateness    p50 {} ms, p99 {} ms, max {} ms (booking at {} /s, half the capacity)",
        r["lateness_p50_ms"], r["lateness_p99_ms"], r["lateness_max_ms"], r["paced_rate_per_s"]
    );
    println!("  peak memory {} MB", r["peak_rss_mb"]);
}

/// The `--compare` line: the keys `bench/graphile.js` and `bench/pgboss.js` print, then Rappel's
/// own (rows its enqueue inserted, lateness at half capacity, batches in flight a worker).
fn compare_line(r: &serde_json::Value) -> String {
    let f = |key: &str| r[key].as_f64().unwrap_or(0.0);
    format!(
        "compare queue=rappel store={} n={} enqueue_batch={} concurrency={} fetch_batch={} \
         enqueue_s={:.3} enqueue_jobs_per_s={:.0} run_s={:.3} jobs_per_s={:.0} total_s={:.3} \
         peak_rss_mb={:.1} ingest_rows_per_s={:.0} lateness_p99_ms={:.0} in_flight={}",
        r["store"].as_str().unwrap_or(""),
        r["notifications"],
        r["enqueue_batch"],
        r["workers"],
        r["batch"],
        f("ingest_s"),
        f("ingest_events_per_s"),
        f("dispatch_s"),
        f("dispatch_per_s"),
        f("ingest_s") + f("dispatch_s"),
        f("peak_rss_mb"),
        f("ingest_rows_per_s"),
        f("lateness_p99_ms"),
        r["in_flight"],
    )
}

#[cfg(test)]
mod tests {
    use super::{compare_line, cpu_s_of_stat, patient_id};

    #[test]
    fn the_cpu_time_is_read_after_the_command_name() {
        // A line of `/proc/[pid]/stat` whose command name holds a space and a parenthesis:
        // utime 250 and stime 37 ticks.
        let stat = "4242 (rap pel) x) S 1 4242 4242 0 -1 4194304 2000 0 0 0 250 37 0 0 20 0 \
                    9 0 123456 104857600 2560 18446744073709551615";
        assert_eq!(cpu_s_of_stat(stat), Some(2.87));
        assert_eq!(cpu_s_of_stat("4242 (rappel) S 1"), None);
    }

    #[test]
    fn scattered_patient_ids_are_distinct_and_out_of_order() {
        let ids: Vec<String> = (0..1000).map(|i| patient_id(i, true)).collect();
        let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        assert!(ids.iter().all(|id| id.len() == 9 && id.starts_with('p')));
        let ascending = ids.windows(2).filter(|w| w[0] < w[1]).count();
        assert!(
            (300..700).contains(&ascending),
            "{ascending} of 999 pairs in order"
        );
        assert_eq!(patient_id(7, false), "p7");
    }

    #[test]
    fn the_compare_line_has_the_keys_of_the_node_scripts() {
        let line = compare_line(&serde_json::json!({
            "store": "postgres", "notifications": 20000, "enqueue_batch": 1000, "workers": 3,
            "batch": 500,
            "ingest_s": 2.5, "ingest_events_per_s": 8000.0, "dispatch_s": 2.0,
            "dispatch_per_s": 10000.0, "peak_rss_mb": 80.5, "ingest_rows_per_s": 40000.0,
            "lateness_p99_ms": 120, "in_flight": 2,
        }));
        assert_eq!(
            line,
            "compare queue=rappel store=postgres n=20000 enqueue_batch=1000 concurrency=3 \
             fetch_batch=500 enqueue_s=2.500 enqueue_jobs_per_s=8000 run_s=2.000 \
             jobs_per_s=10000 total_s=4.500 \
             peak_rss_mb=80.5 ingest_rows_per_s=40000 lateness_p99_ms=120 in_flight=2"
        );
    }
}
