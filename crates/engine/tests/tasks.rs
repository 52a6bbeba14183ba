//! Scheduled tasks through the engine's public API: one run per occurrence with several engines
//! on one PostgreSQL database, catch-up after downtime on a simulated clock, the dry run, and
//! changes to a definition.
//!
//! PostgreSQL is not optional, as in the store's conformance suite: the base URL comes from
//! `RAPPEL_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`), the test
//! creates its own database there and drops it afterwards, and an unreachable server fails it
//! with a message saying so.

use jiff::Timestamp;
use jiff::civil::{Date, date};
use rappel_domain::contact::Contact;
use rappel_domain::event::{Event, EventBody};
use rappel_domain::facts::{Patient, Practitioner, Source};
use rappel_domain::notification::{Channel, Kind};
use rappel_domain::task::{Every, TaskDef, TaskType};
use rappel_engine::{Engine, EngineConfig, EngineError, SimClock};
use rappel_store::{NotificationFilter, NotificationRow, Store};
use rappel_test_support::engine::{engine_with, memory_store, with_postgres};
use serde_json::{Map, Value, json};

// ---- fixtures --------------------------------------------------------------------------------

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// An engine whose leases and task runs are `worker`'s.
fn engine_on(store: Store, clock: &SimClock, worker: &str) -> Engine {
    engine_with(
        store,
        clock,
        EngineConfig {
            worker_id: worker.to_string(),
            ..EngineConfig::default()
        },
    )
}

async fn practice(engine: &Engine) -> String {
    let key = engine
        .create_practice("Cabinet", "doctolib", "Europe/Paris", Map::new())
        .await
        .unwrap();
    engine
        .put_practitioner(
            &key.id,
            &Practitioner {
                id: "dr1".into(),
                name: "Dr Martin".into(),
                email: None,
                mobile: None,
            },
        )
        .await
        .unwrap();
    key.id
}

async fn patient(engine: &Engine, practice: &str, id: &str, email: Option<&str>, birth: Date) {
    engine
        .put_patient(
            practice,
            &Patient {
                id: id.into(),
                first_name: format!("Patient {id}"),
                last_name: "Test".into(),
                email: email.and_then(Contact::from_input),
                mobile: Contact::from_input("0612345678"),
                birth_date: Some(birth),
                ..Patient::default()
            },
        )
        .await
        .unwrap();
}

fn birthdays(id: &str, channel: Channel) -> TaskDef {
    TaskDef {
        id: id.into(),
        label: "Joyeux anniversaire".into(),
        task_type: TaskType::Birthdays,
        first_date: date(2026, 3, 1),
        every: Some(Every::Day),
        cron: None,
        days: Vec::new(),
        time: Some("08:00".parse().unwrap()),
        range: None,
        practitioners: None,
        channel,
        template: None,
        exclude_patients_with_later_appointment: false,
        exclude_patients_seen_since: false,
        recall_months: None,
        active: true,
    }
}

fn event(at_text: &str, body: EventBody) -> Event {
    Event {
        at: Some(at(at_text)),
        body,
    }
}

fn booked(at_text: &str, id: &str, patient: &str, start: &str) -> Event {
    event(
        at_text,
        EventBody::AppointmentBooked {
            id: id.into(),
            patient: patient.into(),
            practitioner: "dr1".into(),
            motive: None,
            start: at(start),
            duration_minutes: None,
            location: None,
            source: Source::Staff,
        },
    )
}

async fn task_messages(engine: &Engine, practice: &str) -> Vec<NotificationRow> {
    let mut tx = engine.store().begin().await.unwrap();
    let rows = tx
        .list_notifications(
            practice,
            &NotificationFilter {
                kind: Some(Kind::Task),
                limit: 10_000,
                ..NotificationFilter::default()
            },
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    rows
}

fn keys(rows: &[NotificationRow]) -> Vec<&str> {
    let mut keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    keys.sort();
    keys
}

// ---- exactly once across nodes -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_engines_on_one_postgresql_database_run_each_occurrence_once() {
    with_postgres("rappel_test_tasks", |url| async move {
        let clock = SimClock::new(at("2026-03-01T07:00:00+01:00"));
        let store_a = Store::connect(&url).await.unwrap();
        store_a.migrate().await.unwrap();
        let store_b = Store::connect(&url).await.unwrap();
        let a = engine_on(store_a.clone(), &clock, "node-a");
        let b = engine_on(store_b.clone(), &clock, "node-b");
        let pid = practice(&a).await;
        // Two birthdays on each of 2 to 6 March.
        for day in 2..=6i8 {
            for n in 0..2i16 {
                let id = format!("p{day}{n}");
                let email = format!("{id}@example.org");
                patient(&a, &pid, &id, Some(&email), date(1980 + n, 3, day)).await;
            }
        }
        // Two tasks, so that the nodes also race across tasks of one practice.
        a.put_task(&pid, &birthdays("bday-mail", Channel::Email))
            .await
            .unwrap();
        b.put_task(&pid, &birthdays("bday-sms", Channel::Sms))
            .await
            .unwrap();

        for day in 2..=6i8 {
            clock.set(at(&format!("2026-03-0{day}T08:00:01+01:00")));
            // Four racers, two per node, all at once.
            let racers: Vec<_> = [&a, &b, &a, &b]
                .into_iter()
                .map(|engine| {
                    let engine = engine.clone();
                    tokio::spawn(async move { engine.run_due_tasks().await.unwrap() })
                })
                .collect();
            let mut ran = 0;
            for racer in racers {
                ran += racer.await.unwrap();
            }
            assert_eq!(ran, 2, "each task's occurrence of 2026-03-0{day} ran once");
            // Later passes find nothing left to do.
            assert_eq!(a.run_due_tasks().await.unwrap(), 0);
            assert_eq!(b.run_due_tasks().await.unwrap(), 0);
        }

        for task in ["bday-mail", "bday-sms"] {
            let runs = a.task_runs(&pid, task, 100).await.unwrap();
            let occurrences: Vec<&str> = runs.iter().map(|r| r.occurrence.as_str()).collect();
            assert_eq!(
                occurrences,
                [
                    "2026-03-06",
                    "2026-03-05",
                    "2026-03-04",
                    "2026-03-03",
                    "2026-03-02"
                ]
            );
            assert!(
                runs.iter()
                    .all(|r| r.matched == 2 && r.queued == 2 && !r.late)
            );
        }
        let messages = task_messages(&a, &pid).await;
        assert_eq!(
            messages.len(),
            5 * 2 * 2,
            "one message per patient, task and day"
        );
        assert!(keys(&messages).contains(&"t:bday-mail/2026-03-04/p40/email"));
        assert!(keys(&messages).contains(&"t:bday-sms/2026-03-04/p41/sms"));
        store_a.close().await;
        store_b.close().await;
    })
    .await;
}

// ---- downtime ------------------------------------------------------------------------------------

#[tokio::test]
async fn after_three_days_down_only_the_latest_occurrence_runs_once_and_its_run_says_late() {
    let store = memory_store().await;
    let clock = SimClock::new(at("2026-03-02T07:00:00+01:00"));
    let engine = engine_on(store.clone(), &clock, "node-1");
    let pid = practice(&engine).await;
    for day in 2..=5i8 {
        let id = format!("p{day}");
        patient(
            &engine,
            &pid,
            &id,
            Some("x@example.org"),
            date(1980, 3, day),
        )
        .await;
    }
    engine
        .put_task(&pid, &birthdays("bday", Channel::Email))
        .await
        .unwrap();

    clock.set(at("2026-03-02T08:00:00+01:00"));
    assert_eq!(engine.run_due_tasks().await.unwrap(), 1);
    drop(engine);

    // The engine is down from 2 March 08:00 to 5 March 10:00, then restarts on the same store.
    clock.set(at("2026-03-05T10:00:00+01:00"));
    let restarted = engine_on(store, &clock, "node-1-restarted");
    assert_eq!(
        restarted.next_task_due().await.unwrap(),
        Some(at("2026-03-05T08:00:00+01:00")),
        "the missed occurrence is due at once"
    );
    assert_eq!(restarted.run_due_tasks().await.unwrap(), 1);
    assert_eq!(
        restarted.run_due_tasks().await.unwrap(),
        0,
        "once, not once per missed day"
    );
    assert_eq!(
        restarted.next_task_due().await.unwrap(),
        Some(at("2026-03-06T08:00:00+01:00"))
    );

    let runs = restarted.task_runs(&pid, "bday", 10).await.unwrap();
    let summary: Vec<(&str, bool, i64)> = runs
        .iter()
        .map(|r| (r.occurrence.as_str(), r.late, r.late_ms))
        .collect();
    assert_eq!(
        summary,
        [
            ("2026-03-05", true, 2 * 3_600_000),
            ("2026-03-02", false, 0)
        ]
    );
    assert_eq!(runs[0].scheduled_for, "2026-03-05T08:00:00+01:00");
    assert_eq!(runs[0].started_at, "2026-03-05T10:00:00+01:00");
    // The birthdays of 3 and 4 March were missed with their occurrences.
    let messages = task_messages(&restarted, &pid).await;
    assert_eq!(
        keys(&messages),
        ["t:bday/2026-03-02/p2/email", "t:bday/2026-03-05/p5/email"]
    );
}

#[tokio::test]
async fn an_occurrence_already_past_when_the_task_is_created_does_not_run() {
    let store = memory_store().await;
    let clock = SimClock::new(at("2026-03-02T09:00:00+01:00"));
    let engine = engine_on(store, &clock, "node-1");
    let pid = practice(&engine).await;
    patient(&engine, &pid, "p2", Some("x@example.org"), date(1980, 3, 2)).await;
    engine
        .put_task(&pid, &birthdays("bday", Channel::Email))
        .await
        .unwrap();
    assert_eq!(engine.run_due_tasks().await.unwrap(), 0);
    assert_eq!(
        engine.next_task_due().await.unwrap(),
        Some(at("2026-03-03T08:00:00+01:00"))
    );
}

// ---- changes and several runs a day ----------------------------------------------------------------

#[tokio::test]
async fn a_run_time_moved_later_the_same_day_does_not_run_that_day_twice() {
    let store = memory_store().await;
    let clock = SimClock::new(at("2026-03-02T08:00:00+01:00"));
    let engine = engine_on(store, &clock, "node-1");
    let pid = practice(&engine).await;
    patient(&engine, &pid, "p2", Some("x@example.org"), date(1980, 3, 2)).await;
    engine
        .put_task(
            &pid,
            &TaskDef {
                first_date: date(2026, 3, 2),
                ..birthdays("bday", Channel::Email)
            },
        )
        .await
        .unwrap();
    assert_eq!(engine.run_due_tasks().await.unwrap(), 1);
    clock.set(at("2026-03-02T08:30:00+01:00"));
    let view = engine
        .patch_task(&pid, "bday", json!({"time": "09:00"}).as_object().unwrap())
        .await
        .unwrap();
    assert_eq!(view.definition.time, Some("09:00".parse().unwrap()));
    assert_eq!(
        view.next_run_at.as_deref(),
        Some("2026-03-03T09:00:00+01:00"),
        "today's period already ran"
    );
    clock.set(at("2026-03-02T09:00:00+01:00"));
    assert_eq!(engine.run_due_tasks().await.unwrap(), 0);
    assert_eq!(
        engine.next_task_due().await.unwrap(),
        Some(at("2026-03-03T09:00:00+01:00"))
    );
}

#[tokio::test]
async fn a_cron_task_firing_twice_a_day_runs_each_time_once_keyed_by_date_and_time() {
    let store = memory_store().await;
    let clock = SimClock::new(at("2026-03-02T07:00:00+01:00"));
    let engine = engine_on(store, &clock, "node-1");
    let pid = practice(&engine).await;
    patient(&engine, &pid, "p2", Some("x@example.org"), date(1980, 3, 2)).await;
    engine
        .put_task(
            &pid,
            &TaskDef {
                every: None,
                time: None,
                cron: Some("0 9,17 * * mon-fri".into()),
                ..birthdays("bday", Channel::Email)
            },
        )
        .await
        .unwrap();
    assert_eq!(
        engine.next_task_due().await.unwrap(),
        Some(at("2026-03-02T09:00:00+01:00"))
    );
    for time in ["09:00", "17:00"] {
        clock.set(at(&format!("2026-03-02T{time}:00+01:00")));
        assert_eq!(engine.run_due_tasks().await.unwrap(), 1, "{time}");
        assert_eq!(engine.run_due_tasks().await.unwrap(), 0, "{time}");
    }
    assert_eq!(
        keys(&task_messages(&engine, &pid).await),
        [
            "t:bday/2026-03-02T09:00/p2/email",
            "t:bday/2026-03-02T17:00/p2/email"
        ]
    );
}

#[tokio::test]
async fn a_patch_merges_fields_and_the_result_is_checked_again() {
    let store = memory_store().await;
    let clock = SimClock::new(at("2026-03-02T07:00:00+01:00"));
    let engine = engine_on(store, &clock, "node-1");
    let pid = practice(&engine).await;
    engine
        .create_task(&pid, &birthdays("bday", Channel::Email))
        .await
        .unwrap();
    let again = engine
        .create_task(&pid, &birthdays("bday", Channel::Email))
        .await
        .unwrap_err();
    assert!(
        matches!(&again, EngineError::Invalid { field, .. } if field == "id"),
        "{again}"
    );

    let patch = |value: Value| value.as_object().unwrap().clone();
    let refused = |error: EngineError| match error {
        EngineError::Invalid { field, .. } => field,
        other => panic!("expected a refusal, got {other}"),
    };
    let e = engine
        .patch_task(&pid, "bday", &patch(json!({"every": "week"})))
        .await
        .unwrap_err();
    assert_eq!(refused(e), "days");
    let e = engine
        .patch_task(&pid, "bday", &patch(json!({"type": null})))
        .await
        .unwrap_err();
    assert_eq!(refused(e), "type");
    let e = engine
        .patch_task(&pid, "bday", &patch(json!({"cron": "0 9 * * *"})))
        .await
        .unwrap_err();
    assert_eq!(refused(e), "cron", "both every and cron");
    let e = engine
        .patch_task(&pid, "bday", &patch(json!({"id": "other"})))
        .await
        .unwrap_err();
    assert_eq!(refused(e), "id");

    let weekly = engine
        .patch_task(
            &pid,
            "bday",
            &patch(json!({"every": "week", "days": ["mon", "thu"], "label": "Bon anniversaire"})),
        )
        .await
        .unwrap();
    assert_eq!(weekly.definition.every, Some(Every::Week));
    assert_eq!(weekly.definition.label, "Bon anniversaire");
    assert_eq!(
        weekly.definition.channel,
        Channel::Email,
        "untouched fields stay"
    );
    let cron = engine
        .patch_task(
            &pid,
            "bday",
            &patch(json!({"every": null, "days": null, "time": null, "cron": "30 8 * * mon-fri"})),
        )
        .await
        .unwrap();
    assert_eq!(cron.definition.cron.as_deref(), Some("30 8 * * mon-fri"));
    assert_eq!(cron.definition.every, None);
    assert_eq!(
        cron.next_run_at.as_deref(),
        Some("2026-03-02T08:30:00+01:00")
    );
    assert_eq!(
        engine.get_task(&pid, "bday").await.unwrap().definition,
        cron.definition
    );

    let e = engine
        .patch_task(&pid, "nope", &patch(json!({"label": "x"})))
        .await
        .unwrap_err();
    assert!(matches!(e, EngineError::NotFound { .. }));
    engine.delete_task(&pid, "bday").await.unwrap();
    assert!(matches!(
        engine.delete_task(&pid, "bday").await.unwrap_err(),
        EngineError::NotFound { .. }
    ));
    assert!(engine.list_tasks(&pid).await.unwrap().is_empty());
}

// ---- dry run and run counts ------------------------------------------------------------------------

#[tokio::test]
async fn the_preview_says_who_would_get_what_and_who_not_and_writes_nothing() {
    let store = memory_store().await;
    let clock = SimClock::new(at("2026-03-01T10:00:00+01:00"));
    let engine = engine_on(store, &clock, "node-1");
    let pid = practice(&engine).await;
    patient(
        &engine,
        &pid,
        "p1",
        Some("p1@example.org"),
        date(1980, 1, 1),
    )
    .await;
    patient(&engine, &pid, "p2", None, date(1980, 1, 1)).await;
    patient(
        &engine,
        &pid,
        "p3",
        Some("p3@example.org"),
        date(1980, 1, 1),
    )
    .await;
    let mut events = Vec::new();
    for (n, p) in ["p1", "p2", "p3"].into_iter().enumerate() {
        events.push(booked(
            "2026-03-01T10:00:00+01:00",
            &format!("a{}", n + 1),
            p,
            &format!("2026-03-02T{:02}:00:00+01:00", 9 + n),
        ));
    }
    // p3 has already booked again.
    events.push(booked(
        "2026-03-01T10:00:00+01:00",
        "a9",
        "p3",
        "2026-03-20T09:00:00+01:00",
    ));
    engine.ingest(&pid, &events).await.unwrap();
    clock.set(at("2026-03-02T12:00:00+01:00"));
    let no_shows: Vec<Event> = ["a1", "a2", "a3"]
        .into_iter()
        .map(|id| {
            event(
                "2026-03-02T12:00:00+01:00",
                EventBody::AppointmentNoShow { id: id.into() },
            )
        })
        .collect();
    engine.ingest(&pid, &no_shows).await.unwrap();
    let task = TaskDef {
        task_type: TaskType::MissedAppointments,
        label: "Vous avez manqué votre rendez-vous".into(),
        range: Some([-1, -1]),
        exclude_patients_with_later_appointment: true,
        first_date: date(2026, 3, 3),
        ..birthdays("missed", Channel::Email)
    };
    engine.create_task(&pid, &task).await.unwrap();

    clock.set(at("2026-03-03T07:30:00+01:00"));
    let before = task_messages(&engine, &pid).await.len();
    let preview = engine.preview_task(&pid, "missed").await.unwrap();
    assert_eq!(preview.date, "2026-03-03");
    assert_eq!(preview.matched, 3);
    let recipients: Vec<(&str, &[String])> = preview
        .recipients
        .iter()
        .map(|r| (r.patient.as_str(), r.appointments.as_slice()))
        .collect();
    assert_eq!(recipients, [("p1", &["a1".to_string()][..])]);
    // As of the next run (08:00 today), not of the moment the practice asks (07:30).
    assert_eq!(preview.at, "2026-03-03T08:00:00+01:00");
    assert_eq!(preview.recipients[0].send_at, "2026-03-03T08:00:00+01:00");
    assert!(
        preview.recipients[0]
            .message
            .text
            .contains("Vous avez manqué votre rendez-vous"),
        "{:?}",
        preview.recipients[0].message
    );
    let skipped: Vec<(&str, &str)> = preview
        .skipped
        .iter()
        .map(|s| (s.patient.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(skipped, [("p2", "no_email"), ("p3", "later_appointment")]);
    assert!(preview.skipped.iter().all(|s| !s.explanation.is_empty()));
    // Nothing was written: no message, no run.
    assert_eq!(task_messages(&engine, &pid).await.len(), before);
    assert!(
        engine
            .task_runs(&pid, "missed", 10)
            .await
            .unwrap()
            .is_empty()
    );

    // The real run at 08:00, then dispatch: the run's counts add up to what it matched.
    clock.set(at("2026-03-03T08:00:00+01:00"));
    assert_eq!(engine.run_due_tasks().await.unwrap(), 1);
    let queued = engine.task_runs(&pid, "missed", 10).await.unwrap();
    assert_eq!(
        (queued[0].matched, queued[0].queued, queued[0].pending),
        (3, 2, 2)
    );
    engine.dispatch_all_due().await.unwrap();
    let runs = engine.task_runs(&pid, "missed", 10).await.unwrap();
    let run = &runs[0];
    assert_eq!(run.occurrence, "2026-03-03");
    assert_eq!(
        (run.matched, run.queued, run.sent, run.pending, run.failed),
        (3, 2, 1, 0, 0)
    );
    assert_eq!(
        run.skipped,
        [
            ("later_appointment".to_string(), 1),
            ("no_email".to_string(), 1)
        ]
        .into_iter()
        .collect()
    );
    // The patient's timeline explains the message not sent.
    let timeline = engine.patient_timeline(&pid, "p2").await.unwrap();
    let entry = timeline
        .iter()
        .find(|e| e.task.as_deref() == Some("missed"))
        .expect("the task's message is in p2's timeline");
    assert_eq!(
        (entry.status, entry.reason.as_deref()),
        ("suppressed", Some("no_email"))
    );
}
