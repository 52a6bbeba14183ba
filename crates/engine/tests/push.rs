//! Web Push subscriptions in the engine: recorded and removed through its API, and forgotten
//! when the push service says one is gone.

use std::sync::{Arc, Mutex};

use rappel_channels::{ChannelError, OutboundMessage, Receipt, Recorder, SendFuture, Transport};
use rappel_domain::event::{Event, EventBody};
use rappel_domain::facts::{Patient, Practitioner, PushSubscription, Source};
use rappel_engine::{Engine, EngineConfig, EngineError, PutOutcome, SimClock, Transports};
use rappel_store::Store;

const GONE: &str = "https://push.example/gone";
const LIVE: &str = "https://push.example/live";

/// A push service that has forgotten [`GONE`] and accepts everything else.
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
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let clock = SimClock::new("2026-03-01T10:00:00+01:00".parse().unwrap());
    let engine = Engine::new(
        store,
        Arc::new(clock.clone()),
        Transports {
            push: Arc::new(push),
            ..Transports::all(Arc::new(Recorder::default()))
        },
        EngineConfig::default(),
    );
    let key = engine
        .create_practice("Cabinet", "doctolib", "Europe/Paris", Default::default())
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
    engine
        .put_patient(
            &key.id,
            &Patient {
                id: "p1".into(),
                first_name: "Jeanne".into(),
                ..Patient::default()
            },
        )
        .await
        .unwrap();
    (engine, clock, key.id)
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

#[tokio::test]
async fn a_subscription_the_push_service_reports_gone_fails_the_message_and_is_forgotten() {
    let push = FakePush::default();
    let (engine, clock, practice) = engine(push.clone()).await;
    engine
        .put_push_subscription(&practice, "p1", &subscription(GONE))
        .await
        .unwrap();
    engine
        .put_push_subscription(&practice, "p1", &subscription(LIVE))
        .await
        .unwrap();
    engine.ingest(&practice, &[booked()]).await.unwrap();

    // The D-1 push reminder, at 13:00 the day before.
    clock.set("2026-03-04T13:00:00+01:00".parse().unwrap());
    engine.dispatch_all_due().await.unwrap();

    let sent = push.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "one push reminder");
    let target = sent[0].push.as_deref().expect("the subscription's keys");
    assert_eq!(target.endpoint, GONE, "sent to the first subscription");
    assert_eq!(sent[0].to, GONE);
    assert_eq!(sent[0].sender_name, "Cabinet");

    let timeline = engine.appointment_timeline(&practice, "a1").await.unwrap();
    let reminder = timeline
        .iter()
        .find(|e| e.channel == "push")
        .expect("a push reminder in the timeline");
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
    assert_eq!(
        patient.push_subscriptions,
        vec![subscription(LIVE)],
        "the gone subscription is forgotten, the other kept"
    );
}
