//! `rappel bench plan`: how many appointment events per second the planner alone handles; and
//! the subcommands of `rappel bench` (`isolation` is in `bench_isolation`).

use std::collections::BTreeMap;
use std::time::Instant;

use clap::Subcommand;
use jiff::{SignedDuration, Timestamp};
use rappel_domain::contact::Contact;
use rappel_domain::facts::{Appointment, AppointmentStatus, Motive, Patient, Practitioner, Source};
use rappel_domain::plan::{PatientFacts, PlanContext, plan};
use rappel_domain::policy::preset;
use rappel_domain::settings::Settings;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Planning alone, on one core: appointment events per second for each preset.
    Plan {
        /// Appointment events to plan per preset.
        #[arg(long, default_value_t = 200_000)]
        events: usize,
        #[arg(long)]
        json: bool,
    },
    /// One practice floods the server with batches of bookings while another reads: the
    /// other's read latency alone and during the flood (p50, p99).
    Isolation(crate::bench_isolation::IsolationArgs),
}

pub async fn run(command: BenchCommand) -> anyhow::Result<std::process::ExitCode> {
    match command {
        BenchCommand::Isolation(args) => crate::bench_isolation::run(args).await,
        BenchCommand::Plan { events, json } => {
            let mut results = serde_json::Map::new();
            for name in ["doctolib", "rosa", "maddie"] {
                let per_s = bench_plan(name, events)?;
                if !json {
                    println!(
                        "plan {name:<9} {events} appointment events: {per_s:>12.0} events/s (one core)"
                    );
                }
                results.insert(
                    format!("{name}_events_per_s"),
                    serde_json::json!(per_s.round()),
                );
            }
            if json {
                println!("{}", serde_json::Value::Object(results));
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

/// Each event is a booking of one patient (who has up to two other appointments that day or
/// week): the planner plans that patient, as the engine does after every event.
fn bench_plan(name: &str, events: usize) -> anyhow::Result<f64> {
    let policy = preset(name).ok_or_else(|| anyhow::anyhow!("unknown preset"))?;
    let settings = Settings::resolve(
        &policy,
        &serde_json::Map::from_iter([("reminder_7d".to_string(), serde_json::json!(true))])
            .into_iter()
            .filter(|(k, _)| policy.options.contains_key(k))
            .collect(),
    )?;
    let tz = jiff::tz::TimeZone::get("Europe/Paris")?;
    let ctx = PlanContext {
        policy: &policy,
        settings: &settings,
        tz: &tz,
    };
    let practitioners = BTreeMap::from([(
        "dr1".to_string(),
        Practitioner {
            id: "dr1".into(),
            name: "Dr Martin".into(),
            email: Contact::from_input("dr@example.org"),
            mobile: Contact::from_input("+33611111111"),
        },
    )]);
    let motives = BTreeMap::from([(
        "m1".to_string(),
        Motive {
            id: "m1".into(),
            name: "Consultation".into(),
            notifications: true,
            instructions: None,
        },
    )]);
    let patient = Patient {
        id: "p1".into(),
        first_name: "Jeanne".into(),
        last_name: "Dupont".into(),
        email: Contact::from_input("jeanne@example.org"),
        mobile: Contact::from_input("0612345678"),
        ..Patient::default()
    };
    let base: Timestamp = "2026-03-01T08:00:00+01:00".parse()?;
    let mut total = 0usize;
    let started = Instant::now();
    for i in 0..events {
        let booked_at = base + SignedDuration::from_mins((i % 5000) as i64);
        let appointments: Vec<Appointment> = (0..(1 + i % 3))
            .map(|k| Appointment {
                id: format!("a{i}-{k}"),
                patient: "p1".into(),
                practitioner: "dr1".into(),
                motive: Some("m1".into()),
                start: booked_at
                    + SignedDuration::from_hours(24 * (1 + (i % 12) as i64) + 2 * k as i64),
                duration_minutes: 30,
                location: None,
                source: if i % 2 == 0 {
                    Source::Online
                } else {
                    Source::Staff
                },
                booked_at,
                status: AppointmentStatus::Booked,
                moves: Vec::new(),
                version: 1,
            })
            .collect();
        let facts = PatientFacts {
            patient: &patient,
            appointments: &appointments,
            documents: &[],
            practitioners: &practitioners,
            motives: &motives,
            sent_groups: &[],
        };
        total += plan(ctx, facts, booked_at).len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    std::hint::black_box(total);
    Ok(events as f64 / elapsed)
}
