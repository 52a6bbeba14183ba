//! Web Push subscriptions in the engine: recorded and removed through its API, and forgotten
//! when the push service says one is gone.

use std::sync::{Arc, Mutex};

use rappel_channels::{ChannelError, OutboundMessage, Receipt, SendFuture, Transport};
use rappel_domain::event::{Event, EventBody};
use rappel_domain::facts::{Patient, Practitioner, PushSubscription, Source};
use rappel_engine::{Engine, EngineError, PutOutcome, SimClock};
use rappel_test_support::engine::{Fixture, Setup, fixture};

const GONE: &str = "https://push.example/gone";
const LIVE: &str = "https://push.example/live";
const DOWN: &str = "https://push.example/down";

/// A push service that has forgotten [`GONE`], cannot be reached for [`DOWN`] and accepts
/// everything else.
#[derive(Clone, Default)]
struct FakePush {
    sent: Arc<Mutex<Vec<OutboundMessage>>>,
}

impl Transport for FakePush {
    fn send<'a>(&'a self, message: &'a OutboundMessage) -> SendFuture<'a> {
        Box::pin(async move {
            self.sent.lock().unwrap().push(message.clone());
            match message.push.as_deref() {
                Some(target) if target.endpoint == GONE => Err(ChannelError::Gone(
                    "the push service answered HTTP 410".into(),
                )),
                Some(target) if target.endpoint == DOWN => Err(ChannelError::Transient {
                    reason: "the push service answered HTTP 503".into(),
                    retry_after: None,
                }),
                Some(_) => Ok(Receipt::default()),
                None => Err(ChannelError::Permanent("no subscription".into())),
            }
        })
    }
}

fn subscription(endpoint: &str) -> PushSubscription {
    PushSubscription {
        endpoint: endpoint.into(),
        p256dh: "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
            .into(),
        auth: "BTBZMqHH6r4Tts7J_aSIgg".into(),
    }
}

async fn engine(push: FakePush) -> (Engine, SimClock, String) {
    let Fixture {
        engine,
        clock,
        practice,
        ..
    } = fixture(Setup {
        start: "2026-03-01T10:00:00+01:00".parse().unwrap(),
        push: Some(Arc::new(push)),
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
                ..Patient::default()
            },
        )
        .await
        .unwrap();
    (engine, clock, practice)
}

fn booked() -> Event {
    Event {
        at: Some("2026-03-01T10:00:00+01:00".parse().unwrap()),
        body: EventBody::AppointmentBooked {
            id: "a1".into(),
            patient: "p1".into(),
            practitioner: "dr1".into(),
            motive: None,
            start: "2026-03-05T10:00:00+01:00".parse().unwrap(),
            duration_minutes: None,
            location: None,
            source: Source::Staff,
        },
    }
}

#[tokio::test]
async fn subscriptions_are_added_replaced_by_endpoint_and_removed() {
    let (engine, _clock, practice) = engine(FakePush::default()).await;
    let put = |s: PushSubscription| {
        let engine = engine.clone();
        let practice = practice.clone();
        async move { engine.put_push_subscription(&practice, "p1", &s).await }
    };
    assert_eq!(put(subscription(LIVE)).await.unwrap(), PutOutcome::Created);
    assert_eq!(
        put(subscription(LIVE)).await.unwrap(),
        PutOutcome::Unchanged
    );
    let renewed = PushSubscription {
        auth: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        ..subscription(LIVE)
    };
    assert_eq!(put(renewed.clone()).await.unwrap(), PutOutcome::Updated);
    let patient = engine.patient(&practice, "p1").await.unwrap();
    assert_eq!(patient.push_subscriptions, vec![renewed]);

    assert!(matches!(
        engine
            .put_push_subscription(&practice, "nobody", &subscription(LIVE))
            .await,
        Err(EngineError::NotFound { .. })
    ));
    assert!(matches!(
        engine.delete_push_subscription(&practice, "p1", GONE).await,
        Err(EngineError::NotFound { .. })
    ));
    engine
        .delete_push_subscription(&practice, "p1", LIVE)
        .await
        .unwrap();
    let patient = engine.patient(&practice, "p1").await.unwrap();
    assert!(patient.push_subscriptions.is_empty());
}

/// The engine with these subscriptions for `p1` and the D-1 push reminder dispatched (13:00
/// the day before the appointment).
async fn remind(push: &FakePush, endpoints: &[&str]) -> (Engine, SimClock, String) {
    let (engine, clock, practice) = engine(push.clone()).await;
    for endpoint in endpoints {
        engine
            .put_push_subscription(&practice, "p1", &subscription(endpoint))
            .await
            .unwrap();
    }
    engine.ingest(&practice, &[booked()]).await.unwrap();
    clock.set("2026-03-04T13:00:00+01:00".parse().unwrap());
    engine.dispatch_all_due().await.unwrap();
    (engine, clock, practice)
}

/// The push reminder's row in the appointment's timeline.
async fn push_reminder(engine: &Engine, practice: &str) -> rappel_engine::timeline::TimelineEntry {
    let timeline = engine.appointment_timeline(practice, "a1").await.unwrap();
    timeline
        .into_iter()
        .find(|e| e.channel == "push")
        .expect("a push reminder in the timeline")
}

/// The endpoints the push service was asked to deliver to, sorted.
fn endpoints(push: &FakePush) -> Vec<String> {
    let mut sent: Vec<String> = push
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|m| {
            let target = m.push.as_deref().expect("the subscription's keys");
            assert_eq!(m.to, target.endpoint, "addressed to its device");
            assert_eq!(m.sender_name, "Cabinet");
            target.endpoint.clone()
        })
        .collect();
    sent.sort();
    sent
}

#[tokio::test]
async fn a_subscription_the_push_service_reports_gone_fails_the_message_and_is_forgotten() {
    let push = FakePush::default();
    let (engine, _clock, practice) = remind(&push, &[GONE]).await;
    assert_eq!(endpoints(&push), vec![GONE]);
    let reminder = push_reminder(&engine, &practice).await;
    assert_eq!(reminder.status, "failed");
    assert!(
        reminder
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("410")),
        "{:?}",
        reminder.last_error
    );
    let patient = engine.patient(&practice, "p1").await.unwrap();
    assert!(patient.push_subscriptions.is_empty(), "forgotten");
}

#[tokio::test]
async fn every_device_of_the_patient_gets_the_message_and_a_gone_one_is_forgotten() {
    let push = FakePush::default();
    let (engine, _clock, practice) = remind(&push, &[GONE, LIVE]).await;
    assert_eq!(endpoints(&push), vec![GONE, LIVE], "one message per device");
    let reminder = push_reminder(&engine, &practice).await;
    assert_eq!(reminder.status, "sent", "the live device accepted it");
    let patient = engine.patient(&practice, "p1").await.unwrap();
    assert_eq!(
        patient.push_subscriptions,
        vec![subscription(LIVE)],
        "the gone subscription is forgotten, the other kept"
    );
}

#[tokio::test]
async fn a_device_that_cannot_be_reached_does_not_hold_back_the_others() {
    let push = FakePush::default();
    let (engine, clock, practice) = remind(&push, &[DOWN, LIVE]).await;
    assert_eq!(endpoints(&push), vec![DOWN, LIVE]);
    assert_eq!(push_reminder(&engine, &practice).await.status, "sent");
    // Sent: nothing is retried on the unreachable device later.
    clock.set("2026-03-04T18:00:00+01:00".parse().unwrap());
    engine.dispatch_all_due().await.unwrap();
    assert_eq!(push.sent.lock().unwrap().len(), 2);
    let patient = engine.patient(&practice, "p1").await.unwrap();
    assert_eq!(patient.push_subscriptions.len(), 2, "both kept");
}

#[tokio::test]
async fn with_no_device_accepting_a_transient_failure_retries_on_the_devices_left() {
    let push = FakePush::default();
    let (engine, clock, practice) = remind(&push, &[DOWN, GONE]).await;
    assert_eq!(endpoints(&push), vec![DOWN, GONE]);
    let reminder = push_reminder(&engine, &practice).await;
    assert_eq!(reminder.status, "planned", "pending: retried later");
    assert!(
        reminder
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("503")),
        "{:?}",
        reminder.last_error
    );
    let patient = engine.patient(&practice, "p1").await.unwrap();
    assert_eq!(
        patient.push_subscriptions,
        vec![subscription(DOWN)],
        "the gone one is forgotten at once"
    );
    // The retry goes to the device left only.
    push.sent.lock().unwrap().clear();
    clock.set("2026-03-04T14:00:00+01:00".parse().unwrap());
    engine.dispatch_all_due().await.unwrap();
    assert_eq!(endpoints(&push), vec![DOWN]);
}
