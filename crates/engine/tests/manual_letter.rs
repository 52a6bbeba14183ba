//! A letter asked for by hand cancels the automatic one the planner holds for the same document
//! (an unread document's letter, days ahead): the document is posted once, and the planned letter
//! says why it will not go.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use rappel_channels::Recorder;
use rappel_domain::facts::Patient;
use rappel_domain::notification::{Channel, Reason};
use rappel_engine::{DocumentsConfig, Engine, EngineConfig, SimClock, Transports};
use rappel_store::{NotificationFilter, Status, Store};
use serde_json::json;

const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

fn pdf() -> Vec<u8> {
    rappel_channels::postal::letter_pdf(
        &rappel_channels::Letter {
            title: "Compte rendu".into(),
            address_block: vec!["x".into()],
            ..Default::default()
        },
        jiff::civil::date(2026, 1, 1),
    )
    .unwrap()
}

#[tokio::test]
async fn a_manual_letter_cancels_the_planned_letter_of_an_unread_document() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let start: Timestamp = "2026-03-10T09:00:00Z".parse().unwrap();
    let clock = SimClock::new(start);
    let recorder = Recorder::default();
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    let documents = std::env::temp_dir().join(format!(
        "rappel-manual-letter-{}-{}",
        std::process::id(),
        hex::encode(bytes)
    ));
    let engine = Engine::new(
        store,
        Arc::new(clock.clone()),
        Transports::all(Arc::new(recorder.clone())),
        EngineConfig {
            documents: DocumentsConfig::in_dir(&documents).with_key(KEY),
            ..EngineConfig::default()
        },
    );
    let key = engine
        .create_practice(
            "Cabinet des Lilas",
            "lifen",
            "Europe/Paris",
            Default::default(),
        )
        .await
        .unwrap();
    let practice = key.id.as_str();
    let settings = json!({"postal_unread_days": 7});
    engine
        .update_settings(practice, settings.as_object().unwrap())
        .await
        .unwrap();
    let patient: Patient = serde_json::from_value(json!({
        "id": "p1",
        "first_name": "Jeanne",
        "last_name": "Dupont",
        "email": "jeanne@example.org",
        "birth_date": "1980-03-03",
        "address": {"lines": ["12 rue des Lilas"], "postal_code": "75011", "city": "Paris"}
    }))
    .unwrap();
    engine.put_patient(practice, &patient).await.unwrap();
    engine
        .upload_document(practice, "d1", "p1", "Compte rendu", &pdf())
        .await
        .unwrap();
    engine.dispatch_all_due().await.unwrap();

    async fn letters(engine: &Engine, practice: &str) -> Vec<rappel_store::NotificationRow> {
        let (messages, _) = engine
            .messages(
                practice,
                &NotificationFilter {
                    limit: 100,
                    ..NotificationFilter::default()
                },
            )
            .await
            .unwrap();
        messages
            .into_iter()
            .map(|m| m.row)
            .filter(|r| r.channel == Channel::Postal)
            .collect()
    }
    // The email went; the letter waits for the document to stay unread 7 days.
    let planned = letters(&engine, practice).await;
    assert_eq!(planned.len(), 1, "{planned:?}");
    assert_eq!(planned[0].status, Status::Pending);
    assert!(planned[0].due_at > start + SignedDuration::from_hours(24 * 6));

    // The secretary posts it by hand the next day.
    clock.set(start + SignedDuration::from_hours(24));
    let resend = engine.resend_postal(practice, "d1").await.unwrap();
    assert!(resend.created);
    let after = letters(&engine, practice).await;
    assert_eq!(after.len(), 2, "{after:?}");
    let automatic = after.iter().find(|r| r.key == planned[0].key).unwrap();
    assert_eq!(automatic.status, Status::Suppressed);
    assert_eq!(automatic.reason, Some(Reason::ManualLetterSent));
    assert!(Reason::ManualLetterSent.french().contains("à la main"));

    // A week later one letter has been posted, and the planned one stays cancelled when the
    // document's facts are planned again (a later event about it).
    engine.dispatch_all_due().await.unwrap();
    clock.set(start + SignedDuration::from_hours(24 * 9));
    engine.put_patient(practice, &patient).await.unwrap();
    engine.dispatch_all_due().await.unwrap();
    let posted = recorder
        .sent()
        .iter()
        .filter(|r| r.message.channel == Channel::Postal)
        .count();
    assert_eq!(posted, 1, "the document is posted once");
    let last = letters(&engine, practice).await;
    let automatic = last.iter().find(|r| r.key == planned[0].key).unwrap();
    assert_eq!(
        (automatic.status, automatic.reason),
        (Status::Suppressed, Some(Reason::ManualLetterSent))
    );
    let _ = std::fs::remove_dir_all(&documents);
}
