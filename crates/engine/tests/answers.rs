//! The patient's answers (issue 16) through the engine's public API, on an in-memory store:
//! confirmation, cancellation before and after the cutoff, the webhook events they queue, the
//! next appointment, and the links that reminders carry.

use jiff::Timestamp;
use rappel_channels::Recorder;
use rappel_domain::contact::Contact;
use rappel_domain::event::{Event, EventBody};
use rappel_domain::facts::{AppointmentStatus, CancelledBy, Patient, Practitioner, Source};
use rappel_domain::notification::Channel;
use rappel_engine::{
    AnswerChannel, AnswerOutcome, Engine, EngineConfig, LinkAction, LinkPage, NetPolicy,
    PatientAnswer, SimClock,
};
use rappel_test_support::engine::{Fixture, Setup, fixture};
use serde_json::{Map, Value, json};

async fn engine(start: &str, settings: Map<String, Value>) -> (Engine, SimClock, Recorder, String) {
    let Fixture {
        engine,
        clock,
        recorder,
        practice,
        ..
    } = fixture(Setup {
        start: start.parse().unwrap(),
        config: EngineConfig {
            public_url: "https://rappel.example".into(),
            net: NetPolicy::loopback_for_tests(),
            ..EngineConfig::default()
        },
        practice_name: "Cabinet des Lilas".into(),
        settings,
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
                mobile: Contact::from_input("0611111111"),
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
    // An endpoint, so that the answers' events are queued (nothing is posted in these tests).
    engine
        .put_webhook(&practice, "http://127.0.0.1:9/hook", None)
        .await
        .unwrap();
    (engine, clock, recorder, practice)
}

fn booked(id: &str, at: &str, start: &str) -> Event {
    Event {
        at: Some(at.parse().unwrap()),
        body: EventBody::AppointmentBooked {
            id: id.into(),
            patient: "p1".into(),
            practitioner: "dr1".into(),
            motive: None,
            start: start.parse().unwrap(),
            duration_minutes: None,
            location: Some("12 rue des Lilas".into()),
            source: Source::Staff,
        },
    }
}

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

async fn events_of(engine: &Engine, practice: &str, event_type: &str) -> Vec<Value> {
    engine
        .webhook_deliveries(practice, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.event_type == event_type)
        .map(|d| d.payload)
        .collect()
}

#[tokio::test]
async fn a_confirmation_is_recorded_once_and_told_to_the_practice_software_once() {
    let (engine, _clock, _recorder, practice) =
        engine("2026-03-01T10:00:00+01:00", Map::new()).await;
    engine
        .ingest(
            &practice,
            &[booked(
                "a1",
                "2026-03-01T10:00:00+01:00",
                "2026-03-05T10:00:00+01:00",
            )],
        )
        .await
        .unwrap();
    let at = ts("2026-03-02T09:00:00+01:00");
    let outcome = engine
        .confirm_appointment(&practice, "a1", AnswerChannel::Sms, at)
        .await
        .unwrap();
    assert_eq!(outcome, AnswerOutcome::Done);
    let again = engine
        .confirm_appointment(&practice, "a1", AnswerChannel::Link, at)
        .await
        .unwrap();
    assert_eq!(again, AnswerOutcome::AlreadyDone);
    let answer = engine
        .appointment_answer(&practice, "a1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.answer, PatientAnswer::Confirmed);
    assert_eq!(answer.channel, AnswerChannel::Sms);
    assert!(answer.current);
    let events = events_of(&engine, &practice, "appointment.confirmed_by_patient").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["appointment"], "a1");
    assert_eq!(events[0]["data"]["patient"], "p1");
    assert_eq!(events[0]["data"]["channel"], "sms");
    assert_eq!(events[0]["data"]["at"], json!(at));
    // The appointment itself is untouched: a confirmation changes no plan.
    let appointment = engine.appointment(&practice, "a1").await.unwrap();
    assert_eq!(appointment.status, AppointmentStatus::Booked);
}

#[tokio::test]
async fn a_move_makes_the_confirmation_stale() {
    let (engine, _clock, _recorder, practice) =
        engine("2026-03-01T10:00:00+01:00", Map::new()).await;
    engine
        .ingest(
            &practice,
            &[booked(
                "a1",
                "2026-03-01T10:00:00+01:00",
                "2026-03-05T10:00:00+01:00",
            )],
        )
        .await
        .unwrap();
    engine
        .confirm_appointment(
            &practice,
            "a1",
            AnswerChannel::Link,
            ts("2026-03-01T11:00:00+01:00"),
        )
        .await
        .unwrap();
    engine
        .ingest(
            &practice,
            &[Event {
                at: Some(ts("2026-03-01T12:00:00+01:00")),
                body: EventBody::AppointmentMoved {
                    id: "a1".into(),
                    start: Some(ts("2026-03-06T10:00:00+01:00")),
                    location: None,
                },
            }],
        )
        .await
        .unwrap();
    let answer = engine
        .appointment_answer(&practice, "a1")
        .await
        .unwrap()
        .unwrap();
    assert!(!answer.current);
    // Confirming the new time is news again.
    let outcome = engine
        .confirm_appointment(
            &practice,
            "a1",
            AnswerChannel::Link,
            ts("2026-03-01T13:00:00+01:00"),
        )
        .await
        .unwrap();
    assert_eq!(outcome, AnswerOutcome::Done);
    assert_eq!(
        events_of(&engine, &practice, "appointment.confirmed_by_patient")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn a_cancellation_before_the_cutoff_goes_through_ingestion_and_supersedes_the_reminders() {
    let (engine, _clock, _recorder, practice) =
        engine("2026-03-01T10:00:00+01:00", Map::new()).await;
    engine
        .ingest(
            &practice,
            &[booked(
                "a1",
                "2026-03-01T10:00:00+01:00",
                "2026-03-05T10:00:00+01:00",
            )],
        )
        .await
        .unwrap();
    let before = engine.appointment_timeline(&practice, "a1").await.unwrap();
    assert!(
        before
            .iter()
            .any(|e| e.kind == "reminder" && e.status == "planned"),
        "{before:?}"
    );
    // D-1 at 08:00: 26 hours before, past a 4-hour cutoff by far.
    let at = ts("2026-03-04T08:00:00+01:00");
    let outcome = engine
        .cancel_appointment_for_patient(&practice, "a1", AnswerChannel::Sms, at)
        .await
        .unwrap();
    assert_eq!(outcome, AnswerOutcome::Done);
    let appointment = engine.appointment(&practice, "a1").await.unwrap();
    assert!(
        matches!(
            appointment.status,
            AppointmentStatus::Cancelled { by: CancelledBy::Patient, at: when, .. } if when == at
        ),
        "{:?}",
        appointment.status
    );
    let after = engine.appointment_timeline(&practice, "a1").await.unwrap();
    let reminders: Vec<_> = after.iter().filter(|e| e.kind == "reminder").collect();
    assert!(!reminders.is_empty());
    assert!(
        reminders
            .iter()
            .all(|e| e.status == "suppressed" && e.reason.as_deref() == Some("superseded")),
        "{reminders:?}"
    );
    // Doctolib alerts the practitioner of a patient's cancellation on D-1 and D.
    assert!(
        after
            .iter()
            .any(|e| e.kind == "practitioner_cancellation" && e.status == "planned"),
        "{after:?}"
    );
    let events = events_of(&engine, &practice, "appointment.cancel_requested").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["by"], "patient");
    assert_eq!(events[0]["data"]["channel"], "sms");
    assert_eq!(events[0]["data"]["appointment"], "a1");
    // A second cancellation changes nothing and queues nothing.
    let again = engine
        .cancel_appointment_for_patient(&practice, "a1", AnswerChannel::Link, at)
        .await
        .unwrap();
    assert_eq!(again, AnswerOutcome::AlreadyDone);
    assert_eq!(
        events_of(&engine, &practice, "appointment.cancel_requested")
            .await
            .len(),
        1
    );
    let answer = engine
        .appointment_answer(&practice, "a1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.answer, PatientAnswer::Cancelled);
    // Confirming a cancelled appointment says what happened.
    assert_eq!(
        engine
            .confirm_appointment(&practice, "a1", AnswerChannel::Sms, at)
            .await
            .unwrap(),
        AnswerOutcome::NoLongerBooked { by_patient: true }
    );
}

#[tokio::test]
async fn a_cancellation_after_the_cutoff_is_refused_and_changes_nothing() {
    let mut settings = Map::new();
    settings.insert("patient_cancel_cutoff_hours".into(), json!(24));
    settings.insert("practice_phone".into(), json!("01 23 45 67 89"));
    let (engine, _clock, _recorder, practice) = engine("2026-03-01T10:00:00+01:00", settings).await;
    engine
        .ingest(
            &practice,
            &[booked(
                "a1",
                "2026-03-01T10:00:00+01:00",
                "2026-03-05T10:00:00+01:00",
            )],
        )
        .await
        .unwrap();
    let before = engine.appointment_timeline(&practice, "a1").await.unwrap();
    let outcome = engine
        .cancel_appointment_for_patient(
            &practice,
            "a1",
            AnswerChannel::Link,
            ts("2026-03-04T10:30:00+01:00"),
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        AnswerOutcome::TooLate {
            cutoff_hours: 24,
            phone: Some("01 23 45 67 89".into())
        }
    );
    assert_eq!(
        engine.appointment(&practice, "a1").await.unwrap().status,
        AppointmentStatus::Booked
    );
    let after = engine.appointment_timeline(&practice, "a1").await.unwrap();
    assert_eq!(
        before
            .iter()
            .map(|e| (&e.key, e.status))
            .collect::<Vec<_>>(),
        after.iter().map(|e| (&e.key, e.status)).collect::<Vec<_>>()
    );
    assert!(
        events_of(&engine, &practice, "appointment.cancel_requested")
            .await
            .is_empty()
    );
    assert!(
        engine
            .appointment_answer(&practice, "a1")
            .await
            .unwrap()
            .is_none()
    );
    // Just before the cutoff it goes.
    assert_eq!(
        engine
            .cancel_appointment_for_patient(
                &practice,
                "a1",
                AnswerChannel::Link,
                ts("2026-03-04T09:59:00+01:00"),
            )
            .await
            .unwrap(),
        AnswerOutcome::Done
    );
}

#[tokio::test]
async fn answers_about_past_unknown_or_practice_cancelled_appointments_say_so() {
    let (engine, _clock, _recorder, practice) =
        engine("2026-03-01T10:00:00+01:00", Map::new()).await;
    engine
        .ingest(
            &practice,
            &[
                booked(
                    "a1",
                    "2026-03-01T10:00:00+01:00",
                    "2026-03-05T10:00:00+01:00",
                ),
                booked(
                    "a2",
                    "2026-03-01T10:00:00+01:00",
                    "2026-03-06T10:00:00+01:00",
                ),
                Event {
                    at: Some(ts("2026-03-01T10:05:00+01:00")),
                    body: EventBody::AppointmentCancelled {
                        id: "a2".into(),
                        by: CancelledBy::Practice,
                        excused: None,
                    },
                },
            ],
        )
        .await
        .unwrap();
    let late = ts("2026-03-05T10:00:00+01:00");
    assert_eq!(
        engine
            .confirm_appointment(&practice, "a1", AnswerChannel::Sms, late)
            .await
            .unwrap(),
        AnswerOutcome::Past
    );
    assert_eq!(
        engine
            .cancel_appointment_for_patient(
                &practice,
                "a2",
                AnswerChannel::Sms,
                ts("2026-03-02T10:00:00+01:00")
            )
            .await
            .unwrap(),
        AnswerOutcome::NoLongerBooked { by_patient: false }
    );
    assert_eq!(
        engine
            .cancel_appointment_for_patient(&practice, "nope", AnswerChannel::Sms, late)
            .await
            .unwrap(),
        AnswerOutcome::Unknown
    );
}

#[tokio::test]
async fn the_next_appointment_is_the_first_booked_one_still_to_come() {
    let (engine, _clock, _recorder, practice) =
        engine("2026-03-01T10:00:00+01:00", Map::new()).await;
    engine
        .ingest(
            &practice,
            &[
                booked(
                    "a1",
                    "2026-03-01T10:00:00+01:00",
                    "2026-03-02T09:00:00+01:00",
                ),
                booked(
                    "a2",
                    "2026-03-01T10:00:00+01:00",
                    "2026-03-05T10:00:00+01:00",
                ),
                booked(
                    "a3",
                    "2026-03-01T10:00:00+01:00",
                    "2026-03-03T10:00:00+01:00",
                ),
                Event {
                    at: Some(ts("2026-03-01T10:05:00+01:00")),
                    body: EventBody::AppointmentCancelled {
                        id: "a3".into(),
                        by: CancelledBy::Practice,
                        excused: None,
                    },
                },
            ],
        )
        .await
        .unwrap();
    let next = |at: &str| {
        let engine = engine.clone();
        let practice = practice.clone();
        let at = ts(at);
        async move {
            engine
                .next_appointment(&practice, "p1", at)
                .await
                .unwrap()
                .map(|a| a.id)
        }
    };
    assert_eq!(
        next("2026-03-01T12:00:00+01:00").await.as_deref(),
        Some("a1")
    );
    assert_eq!(
        next("2026-03-02T09:00:00+01:00").await.as_deref(),
        Some("a2")
    );
    assert_eq!(next("2026-03-06T00:00:00+01:00").await, None);
    assert_eq!(
        engine
            .next_appointment(&practice, "unknown", ts("2026-03-01T12:00:00+01:00"))
            .await
            .unwrap(),
        None
    );
}

/// The token of the `/r/` link in a text.
fn token_in(text: &str) -> Option<String> {
    let start = text.find("https://rappel.example/r/")? + "https://rappel.example/r/".len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    Some(token)
}

#[tokio::test]
async fn reminders_carry_a_short_link_that_confirms_and_cancels() {
    let (engine, clock, recorder, practice) = engine("2026-03-01T10:00:00+01:00", Map::new()).await;
    engine
        .ingest(
            &practice,
            &[booked(
                "a1",
                "2026-03-01T10:00:00+01:00",
                "2026-03-05T10:00:00+01:00",
            )],
        )
        .await
        .unwrap();
    engine.dispatch_all_due().await.unwrap();
    // The confirmation email carries both buttons.
    let email = recorder
        .sent()
        .into_iter()
        .find(|r| r.message.channel == Channel::Email)
        .expect("a confirmation email");
    let html = email.message.html.clone().unwrap();
    assert!(html.contains("Confirmer ma présence"), "{html}");
    assert!(html.contains("?choix=annuler"), "{html}");
    assert!(
        email
            .message
            .text
            .contains("Annuler le rendez-vous : https://rappel.example/r/")
    );
    // D-1 13:00: the SMS reminder carries one short link.
    clock.set(ts("2026-03-04T13:00:00+01:00"));
    recorder.set_now(ts("2026-03-04T13:00:00+01:00"));
    engine.dispatch_all_due().await.unwrap();
    let sms = recorder
        .sent()
        .into_iter()
        .find(|r| r.message.channel == Channel::Sms)
        .expect("an SMS reminder");
    let token = token_in(&sms.message.text).expect("a link in the SMS");
    assert_eq!(token.len(), 16, "{token}");
    assert_eq!(
        sms.message.text.matches("https://").count(),
        1,
        "{}",
        sms.message.text
    );
    // The audit copy masks it, so the practice's staff cannot answer for the patient.
    let stored = engine.message(&practice, &sms.message.id).await.unwrap();
    let rendered = serde_json::to_string(&stored.row.rendered).unwrap();
    assert!(rendered.contains("lien-personnel"), "{rendered}");
    assert!(!rendered.contains(&token), "{rendered}");
    // The page shows the appointment and lets the patient cancel.
    let LinkPage::Open(view) = engine.appointment_link_page(&token).await.unwrap() else {
        panic!("the link is open");
    };
    assert_eq!(view.practitioner.as_deref(), Some("Dr Martin"));
    assert_eq!(view.location.as_deref(), Some("12 rue des Lilas"));
    assert!(view.can_cancel);
    let page = engine
        .answer_by_link(&token, LinkAction::Confirm)
        .await
        .unwrap();
    assert!(
        matches!(
            &page,
            LinkPage::Answered {
                answer: PatientAnswer::Confirmed,
                already: false,
                ..
            }
        ),
        "{page:?}"
    );
    let page = engine
        .answer_by_link(&token, LinkAction::Cancel)
        .await
        .unwrap();
    assert!(
        matches!(
            &page,
            LinkPage::Answered {
                answer: PatientAnswer::Cancelled,
                already: false,
                ..
            }
        ),
        "{page:?}"
    );
    assert!(matches!(
        engine.appointment_link_page(&token).await.unwrap(),
        LinkPage::NoLongerBooked {
            by_patient: true,
            ..
        }
    ));
    // Unknown tokens and expired ones are the same nothing.
    assert_eq!(
        engine
            .appointment_link_page("AAAAAAAAAAAAAAAA")
            .await
            .unwrap(),
        LinkPage::Unknown
    );
    clock.set(ts("2026-03-05T10:00:00+01:00"));
    assert_eq!(
        engine.appointment_link_page(&token).await.unwrap(),
        LinkPage::Unknown
    );
}

/// Links sent before their tokens began with two characters for their moment (16 random
/// characters, stored as the token's SHA-256 alone) stay good until their appointment starts.
#[tokio::test]
async fn a_link_made_before_tokens_named_their_moment_still_opens() {
    let (engine, clock, _recorder, practice) =
        engine("2026-03-01T10:00:00+01:00", Map::new()).await;
    engine
        .ingest(
            &practice,
            &[booked(
                "a1",
                "2026-03-01T10:00:00+01:00",
                "2026-03-05T10:00:00+01:00",
            )],
        )
        .await
        .unwrap();
    let token = "Zx9-_aB3cD4eF5gH";
    let mut tx = engine.store().begin().await.unwrap();
    tx.insert_appointment_link(&rappel_store::AppointmentLink {
        practice_id: practice.clone(),
        token_hash: rappel_engine::secret::token_hash(token),
        appointment_id: "a1".into(),
        patient_id: "p1".into(),
        start: ts("2026-03-05T10:00:00+01:00"),
        expires_at: ts("2026-03-05T10:00:00+01:00"),
        created_at: ts("2026-03-01T10:00:00+01:00"),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let LinkPage::Open(view) = engine.appointment_link_page(token).await.unwrap() else {
        panic!("the earlier link is open");
    };
    assert!(view.can_cancel);
    let page = engine
        .answer_by_link(token, LinkAction::Confirm)
        .await
        .unwrap();
    assert!(
        matches!(
            &page,
            LinkPage::Answered {
                answer: PatientAnswer::Confirmed,
                already: false,
                ..
            }
        ),
        "{page:?}"
    );
    // A token that differs by one character is nothing; past the start, neither is this one.
    assert_eq!(
        engine
            .appointment_link_page("Zx9-_aB3cD4eF5gI")
            .await
            .unwrap(),
        LinkPage::Unknown
    );
    clock.set(ts("2026-03-05T10:00:00+01:00"));
    assert_eq!(
        engine.appointment_link_page(token).await.unwrap(),
        LinkPage::Unknown
    );
}

#[tokio::test]
async fn a_practice_that_switches_links_off_sends_none() {
    let mut settings = Map::new();
    settings.insert("appointment_links".into(), json!(false));
    let (engine, clock, recorder, practice) = engine("2026-03-01T10:00:00+01:00", settings).await;
    engine
        .ingest(
            &practice,
            &[booked(
                "a1",
                "2026-03-01T10:00:00+01:00",
                "2026-03-05T10:00:00+01:00",
            )],
        )
        .await
        .unwrap();
    clock.set(ts("2026-03-04T15:00:00+01:00"));
    engine.dispatch_all_due().await.unwrap();
    let sent = recorder.sent();
    assert!(sent.len() >= 2, "{}", sent.len());
    for r in sent {
        assert!(!r.message.text.contains("/r/"), "{}", r.message.text);
        assert!(
            !r.message.html.unwrap_or_default().contains("/r/"),
            "a button in the email"
        );
    }
}
