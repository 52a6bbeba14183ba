//! Engine behaviour through its public API on a real (in-memory SQLite) store.

use std::sync::Arc;

use jiff::Timestamp;
use rappel_channels::Recorder;
use rappel_domain::contact::Contact;
use rappel_domain::event::{Event, EventBody};
use rappel_domain::facts::{Patient, Practitioner, Source};
use rappel_domain::notification::{Channel, Reason};
use rappel_engine::{Engine, EngineConfig, SimClock, Transports};
use rappel_store::{NotificationFilter, Status, Store};
use rappel_test_support::engine::{Fixture, Setup, fixture};

async fn engine(start: &str) -> (Engine, SimClock, Recorder, String) {
    engine_on(start, None).await
}

/// [`engine`] on that database (a fresh in-memory one when `None`).
async fn engine_on(
    start: &str,
    database_url: Option<String>,
) -> (Engine, SimClock, Recorder, String) {
    engine_configured(start, database_url, EngineConfig::default()).await
}

/// [`engine_on`] with a configuration of the test's.
async fn engine_configured(
    start: &str,
    database_url: Option<String>,
    config: EngineConfig,
) -> (Engine, SimClock, Recorder, String) {
    let Fixture {
        engine,
        clock,
        recorder,
        practice,
        ..
    } = fixture(Setup {
        start: start.parse().unwrap(),
        database_url,
        config,
        ..Setup::default()
    })
    .await;
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
                email: Contact::from_input("j@example.org"),
                mobile: Contact::from_input("0612345678"),
                ..Patient::default()
            },
        )
        .await
        .unwrap();
    (engine, clock, recorder, practice)
}

fn booked(at: &str, start: &str) -> Event {
    Event {
        at: Some(at.parse().unwrap()),
        body: EventBody::AppointmentBooked {
            id: "a1".into(),
            patient: "p1".into(),
            practitioner: "dr1".into(),
            motive: None,
            start: start.parse().unwrap(),
            duration_minutes: None,
            location: None,
            source: Source::Staff,
        },
    }
}

#[tokio::test]
async fn replaying_the_same_events_creates_nothing_new() {
    let (engine, _clock, _recorder, practice) = engine("2026-03-01T10:00:00+01:00").await;
    let events = [booked(
        "2026-03-01T10:00:00+01:00",
        "2026-03-05T10:00:00+01:00",
    )];
    let first = engine.ingest(&practice, &events).await.unwrap();
    assert_eq!((first.applied, first.unchanged), (1, 0));
    let before = engine.appointment_timeline(&practice, "a1").await.unwrap();
    let again = engine.ingest(&practice, &events).await.unwrap();
    assert_eq!((again.applied, again.unchanged), (0, 1));
    let after = engine.appointment_timeline(&practice, "a1").await.unwrap();
    assert_eq!(before.len(), after.len());
    assert!(
        before
            .iter()
            .zip(&after)
            .all(|(a, b)| a.key == b.key && a.status == b.status)
    );
}

#[tokio::test]
async fn a_batch_with_one_bad_event_is_refused_whole() {
    let (engine, _clock, _recorder, practice) = engine("2026-03-01T10:00:00+01:00").await;
    let bad = Event {
        at: None,
        body: EventBody::AppointmentNoShow {
            id: "unknown".into(),
        },
    };
    let error = engine
        .ingest(
            &practice,
            &[
                booked("2026-03-01T10:00:00+01:00", "2026-03-05T10:00:00+01:00"),
                bad,
            ],
        )
        .await
        .unwrap_err();
    assert!(error.to_string().starts_with("events[1]."), "{error}");
    let err = engine
        .appointment_timeline(&practice, "a1")
        .await
        .unwrap_err();
    assert!(matches!(err, rappel_engine::EngineError::NotFound { .. }));
}

#[tokio::test]
async fn a_reminder_rendered_after_a_move_shows_the_new_time() {
    let (engine, clock, recorder, practice) = engine("2026-03-01T10:00:00+01:00").await;
    engine
        .ingest(
            &practice,
            &[booked(
                "2026-03-01T10:00:00+01:00",
                "2026-03-05T10:00:00+01:00",
            )],
        )
        .await
        .unwrap();
    let moved = Event {
        at: Some("2026-03-02T09:00:00+01:00".parse().unwrap()),
        body: EventBody::AppointmentMoved {
            id: "a1".into(),
            start: Some("2026-03-05T16:30:00+01:00".parse().unwrap()),
            location: None,
        },
    };
    clock.set("2026-03-02T09:00:00+01:00".parse().unwrap());
    engine.ingest(&practice, &[moved]).await.unwrap();
    let at: Timestamp = "2026-03-04T14:00:00+01:00".parse().unwrap();
    clock.set(at);
    recorder.set_now(at);
    engine.dispatch_all_due().await.unwrap();
    let reminder = recorder
        .sent()
        .into_iter()
        .find(|r| r.message.id.contains("reminder_email_d1"))
        .expect("the D-1 email reminder went out");
    assert!(
        reminder.message.text.contains("16h30"),
        "{}",
        reminder.message.text
    );
}

#[tokio::test]
async fn finished_messages_leave_after_the_practices_retention_and_are_never_planned_again() {
    let (engine, clock, recorder, practice) = engine("2026-03-01T10:00:00+01:00").await;
    engine
        .ingest(
            &practice,
            &[booked(
                "2026-03-01T10:00:00+01:00",
                "2026-03-05T10:00:00+01:00",
            )],
        )
        .await
        .unwrap();
    // The confirmation goes at once; what is still planned when the appointment is over
    // ends as not sent (window passed): every message is finished.
    engine.dispatch_all_due().await.unwrap();
    let sent = recorder.sent().len();
    assert!(sent > 0);
    clock.set("2026-03-06T10:00:00+01:00".parse().unwrap());
    engine.dispatch_all_due().await.unwrap();
    let before = engine.appointment_timeline(&practice, "a1").await.unwrap();
    assert!(!before.is_empty());

    // Thirteen months by default, in calendar months of Europe/Paris, from each message's
    // decision: the confirmation (decided on 1 March 2026) goes after 1 April 2027, the
    // reminders ended on 6 March go after 6 April.
    clock.set("2027-03-31T10:00:00+02:00".parse().unwrap());
    assert_eq!(engine.enforce_retention().await.unwrap().notifications, 0);
    clock.set("2027-04-02T10:00:00+02:00".parse().unwrap());
    assert_eq!(engine.enforce_retention().await.unwrap().notifications, 1);
    assert_eq!(
        engine
            .appointment_timeline(&practice, "a1")
            .await
            .unwrap()
            .len(),
        before.len() - 1
    );
    clock.set("2027-04-07T10:00:00+02:00".parse().unwrap());
    let purged = engine.enforce_retention().await.unwrap();
    assert_eq!(purged.notifications as usize, before.len() - 1);
    assert!(
        engine
            .appointment_timeline(&practice, "a1")
            .await
            .unwrap()
            .is_empty()
    );

    // A change to the patient re-plans their open work; the old appointment's messages do
    // not come back, and nothing is sent.
    engine
        .put_patient(
            &practice,
            &Patient {
                id: "p1".into(),
                first_name: "Jeanne".into(),
                email: Contact::from_input("jeanne@example.org"),
                mobile: Contact::from_input("0612345678"),
                ..Patient::default()
            },
        )
        .await
        .unwrap();
    engine.dispatch_all_due().await.unwrap();
    assert!(
        engine
            .appointment_timeline(&practice, "a1")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(recorder.sent().len(), sent);

    // A practice keeping two years keeps a newer appointment's messages a year later; a
    // retention outside 4..=120 months is refused with its key.
    let mut two_years = serde_json::Map::new();
    two_years.insert("history_retention_months".into(), 24.into());
    engine.update_settings(&practice, &two_years).await.unwrap();
    let mut too_short = serde_json::Map::new();
    too_short.insert("history_retention_months".into(), 2.into());
    let error = engine
        .update_settings(&practice, &too_short)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("history_retention_months"),
        "{error}"
    );
}

/// Issue 18: a burst of confirmations in one practice does not hold back another practice's
/// message: with a batch of 10 and 200 messages due in the first practice, the second
/// practice's confirmation goes in the first batch.
#[tokio::test]
async fn a_burst_in_one_practice_does_not_hold_back_another_practices_message() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let clock = SimClock::new("2026-03-01T10:00:00+01:00".parse().unwrap());
    let recorder = Recorder::default();
    let engine = Engine::new(
        store,
        Arc::new(clock.clone()),
        Transports::all(Arc::new(recorder.clone())),
        EngineConfig {
            batch: 10,
            ..EngineConfig::default()
        },
    );
    let mut practices = Vec::new();
    for (name, email) in [
        ("Cabinet chargé", "j@example.org"),
        ("Cabinet calme", "p@example.org"),
    ] {
        let id = engine
            .create_practice(name, "doctolib", "Europe/Paris", Default::default())
            .await
            .unwrap()
            .id;
        engine
            .put_practitioner(
                &id,
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
                &id,
                &Patient {
                    id: "p1".into(),
                    first_name: "Jeanne".into(),
                    email: Contact::from_input(email),
                    ..Patient::default()
                },
            )
            .await
            .unwrap();
        practices.push(id);
    }
    let (busy, quiet) = (practices[0].clone(), practices[1].clone());
    let burst: Vec<Event> = (0..100)
        .map(|i| {
            let mut event = booked("2026-03-01T09:00:00+01:00", "2026-03-20T08:00:00+01:00");
            if let EventBody::AppointmentBooked { id, start, .. } = &mut event.body {
                *id = format!("a{i}");
                *start += jiff::SignedDuration::from_mins(15 * i);
            }
            event
        })
        .collect();
    engine.ingest(&busy, &burst).await.unwrap();

    engine
        .ingest(
            &quiet,
            &[booked(
                "2026-03-01T09:59:00+01:00",
                "2026-03-21T10:00:00+01:00",
            )],
        )
        .await
        .unwrap();

    recorder.set_now("2026-03-01T10:00:00+01:00".parse().unwrap());
    let claimed = engine.dispatch_batch().await.unwrap();
    assert_eq!(claimed, 10, "a full batch");
    let sent = recorder.sent();
    assert!(
        sent.iter().any(|r| r.message.practice_id == quiet),
        "the quiet practice's confirmation is in the first batch: {:?}",
        sent.iter()
            .map(|r| (&r.message.practice_id, &r.message.id))
            .collect::<Vec<_>>()
    );
    assert!(
        sent.iter()
            .filter(|r| r.message.practice_id == busy)
            .count()
            >= 5,
        "the busy practice has its share"
    );
}

/// The dispatcher hands a transport only the address the gate allows, parsed: a patient whose
/// email does not parse and whose number is a landline (kept as the practice typed them), and a
/// practitioner in the same state, get no email and no SMS, each row with its reason, and no
/// message ever leaves with an empty address.
#[tokio::test]
async fn contacts_that_do_not_parse_are_never_handed_to_a_transport_even_as_an_empty_address() {
    let (engine, clock, recorder, practice) = engine("2026-03-01T10:00:00+01:00").await;
    engine
        .put_practitioner(
            &practice,
            &Practitioner {
                id: "dr1".into(),
                name: "Dr Martin".into(),
                email: Contact::from_input("martin@cabinet"),
                mobile: Contact::from_input("01 23 45 67 89"),
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
                email: Contact::from_input("jeanne.example.org"),
                mobile: Contact::from_input("01 42 33 44 55"),
                email_notifications: Some(true),
                sms_notifications: Some(true),
                ..Patient::default()
            },
        )
        .await
        .unwrap();
    let mut online = booked("2026-03-01T10:00:00+01:00", "2026-03-05T10:00:00+01:00");
    if let EventBody::AppointmentBooked { source, .. } = &mut online.body {
        *source = Source::Online;
    }
    engine.ingest(&practice, &[online]).await.unwrap();
    // Every hour until the appointment, so that each message is decided at its due time.
    let mut at: Timestamp = "2026-03-01T10:00:00+01:00".parse().unwrap();
    while at < "2026-03-05T10:00:00+01:00".parse().unwrap() {
        clock.set(at);
        recorder.set_now(at);
        engine.dispatch_all_due().await.unwrap();
        at += jiff::SignedDuration::from_hours(1);
    }

    for sent in recorder.sent() {
        assert!(!sent.message.to.trim().is_empty(), "{}", sent.message.id);
        assert!(
            !matches!(sent.message.channel, Channel::Email | Channel::Sms),
            "{} went to an address that does not parse",
            sent.message.id
        );
    }
    let mut tx = engine.store().begin_read().await.unwrap();
    let rows = tx
        .list_notifications(
            &practice,
            &NotificationFilter {
                limit: 1_000,
                ..NotificationFilter::default()
            },
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let reasons = |channel: Channel| -> Vec<Option<Reason>> {
        rows.iter()
            .filter(|r| r.channel == channel)
            .map(|r| r.reason)
            .collect()
    };
    let (emails, sms) = (reasons(Channel::Email), reasons(Channel::Sms));
    assert!(!emails.is_empty() && !sms.is_empty(), "{rows:?}");
    assert!(
        emails.iter().all(|r| *r == Some(Reason::InvalidEmail)),
        "{emails:?}"
    );
    assert!(
        sms.iter().all(|r| *r == Some(Reason::InvalidMobile)),
        "{sms:?}"
    );
}

/// A worker left running while a newer version of Rappel migrates its database (a rolling
/// upgrade) claims nothing, and resumes once the database's migrations are its own again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_claims_nothing_while_a_newer_version_has_migrated_its_database() {
    let path = std::env::temp_dir().join(format!(
        "rappel_newer_schema_{}_{}.db",
        std::process::id(),
        Timestamp::now().as_nanosecond()
    ));
    let url = format!("sqlite://{}", path.display());
    let (engine, _, recorder, practice) = engine_on("2026-03-01T10:00:00+01:00", Some(url)).await;
    assert_eq!(engine.store().newer_schema().await.unwrap(), None);

    // The newer version's migration, as its migrator records it.
    const NEWER: i64 = 99_991_231_000_000;
    engine.store().record_newer_migration(NEWER).await.unwrap();
    assert_eq!(engine.store().newer_schema().await.unwrap(), Some(NEWER));

    // A confirmation comes due; the worker runs for a while and hands nothing over.
    engine
        .ingest(
            &practice,
            &[booked(
                "2026-03-01T10:00:00+01:00",
                "2026-03-20T10:00:00+01:00",
            )],
        )
        .await
        .unwrap();
    recorder.set_now("2026-03-01T10:00:00+01:00".parse().unwrap());
    let run = |engine: Engine| async move {
        engine
            .run_worker(tokio::time::sleep(std::time::Duration::from_millis(600)))
            .await
    };
    run(engine.clone()).await;
    assert!(recorder.sent().is_empty(), "{:?}", recorder.sent());

    // The newer migration gone (the upgrade rolled back): the worker sends it.
    engine.store().forget_migration(NEWER).await.unwrap();
    run(engine.clone()).await;
    let sent = recorder.sent();
    assert!(
        !sent.is_empty() && sent.iter().all(|r| r.message.practice_id == practice),
        "the confirmation goes once the migrations are the worker's again: {sent:?}"
    );
    engine.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

/// The worker's dispatch with several batches in flight (`EngineConfig::in_flight`) hands each
/// due message over once, counts what it claimed, and returns only when every batch it started
/// is recorded: nothing is left leased or due behind it. On SQLite and on PostgreSQL, with the
/// runtime's two threads running batches side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_in_flight_side_by_side_send_each_due_message_once() {
    overlapped_dispatch(None).await;
    rappel_test_support::engine::with_postgres("rappel_overlapped", |url| async move {
        overlapped_dispatch(Some(url)).await;
    })
    .await;
}

async fn overlapped_dispatch(database_url: Option<String>) {
    let (engine, _, recorder, practice) = engine_configured(
        "2026-03-01T10:00:00+01:00",
        database_url,
        EngineConfig {
            batch: 5,
            in_flight: 3,
            ..EngineConfig::default()
        },
    )
    .await;
    let patients: Vec<Patient> = (0..60)
        .map(|i| Patient {
            id: format!("p{i}"),
            first_name: "Jeanne".into(),
            email: Contact::from_input(&format!("p{i}@example.org")),
            mobile: Contact::from_input("0612345678"),
            ..Patient::default()
        })
        .collect();
    for patient in &patients {
        engine.put_patient(&practice, patient).await.unwrap();
    }
    let bookings: Vec<Event> = (0..60)
        .map(|i| {
            let mut event = booked("2026-03-01T09:00:00+01:00", "2026-03-20T08:00:00+01:00");
            if let EventBody::AppointmentBooked {
                id, patient, start, ..
            } = &mut event.body
            {
                *id = format!("a{i}");
                *patient = format!("p{i}");
                *start += jiff::SignedDuration::from_mins(15 * i);
            }
            event
        })
        .collect();
    engine.ingest(&practice, &bookings).await.unwrap();
    recorder.set_now("2026-03-01T10:00:00+01:00".parse().unwrap());

    let claimed = engine.dispatch_due_overlapped().await.unwrap();
    let sent = recorder.sent();
    assert!(
        claimed > 2 * 5 * 3,
        "more than one round of batches: {claimed}"
    );
    assert_eq!(sent.len(), claimed, "one hand-off per claimed message");
    let mut ids: Vec<&str> = sent.iter().map(|r| r.message.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), sent.len(), "no message handed over twice");

    let mut tx = engine.store().begin_read().await.unwrap();
    let rows = tx
        .list_notifications(
            &practice,
            &NotificationFilter {
                until: Some("2026-03-01T10:00:01+01:00".parse().unwrap()),
                limit: 1_000,
                ..NotificationFilter::default()
            },
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(rows.len(), claimed, "{rows:?}");
    assert!(
        rows.iter().all(|r| r.status == Status::Sent),
        "every due row recorded as sent when the dispatch returns: {:?}",
        rows.iter().map(|r| (&r.key, r.status)).collect::<Vec<_>>()
    );
    assert_eq!(engine.dispatch_due_overlapped().await.unwrap(), 0);
    engine.close().await;
}
