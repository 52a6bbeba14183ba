//! GDPR erasure reaches every copy of a patient's personal data the store keeps: the patient
//! row, what was sent to them, the boxes' texts and the event log. Runs on a SQLite file, an
//! in-memory SQLite database and a fresh PostgreSQL database.

use jiff::Timestamp;
use rappel_domain::contact::Contact;
use rappel_domain::facts::Patient;
use rappel_domain::notification::{Channel, Kind, Recipient};
use rappel_store::{InboxRow, NotificationRow, PracticeRow, Status, Store};
use serde_json::{Map, Value, json};

mod common;
use common::*;

conformance!(erasure_removes_personal_data_from_sent_messages_boxes_and_the_event_log,);

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn sent(patient: &str, key: &str) -> NotificationRow {
    NotificationRow {
        practice_id: "a".into(),
        key: key.into(),
        patient_id: patient.into(),
        rule: "confirmation_email".into(),
        kind: Kind::Confirmation,
        channel: Channel::Email,
        recipient: Recipient::Patient(patient.into()),
        appointments: vec![format!("rdv-{patient}")],
        document: None,
        task: None,
        auto_resend: false,
        due_at: at("2026-03-01T10:00:00Z"),
        window_end: None,
        status: Status::Sent,
        reason: None,
        decided_at: Some(at("2026-03-01T10:00:01Z")),
        attempts: 1,
        lease_owner: None,
        lease_until: None,
        last_error: None,
        rendered: Some(json!({"subject": "RDV", "text": format!("Bonjour {patient}")})),
        provider_id: None,
        created_at: at("2026-03-01T09:00:00Z"),
        updated_at: at("2026-03-01T10:00:01Z"),
    }
}

async fn erasure_removes_personal_data_from_sent_messages_boxes_and_the_event_log(store: Store) {
    let now = at("2026-03-05T10:00:00Z");
    let mut tx = store.begin().await.unwrap();
    tx.insert_practice(&PracticeRow {
        id: "a".into(),
        name: "Cabinet A".into(),
        preset: "lifen".into(),
        policy: None,
        timezone: "Europe/Paris".into(),
        settings: Map::new(),
        created_at: at("2026-01-01T00:00:00Z"),
    })
    .await
    .unwrap();
    for (id, first) in [("p1", "Rose"), ("p10", "Yves")] {
        let patient = Patient {
            id: id.into(),
            first_name: first.into(),
            last_name: "Durand".into(),
            email: Contact::from_input(&format!("{first}@example.org")),
            ..Patient::default()
        };
        tx.upsert_patient("a", &patient, now).await.unwrap();
        let body = json!({"at": "2026-03-01T09:00:00Z", "type": "patient.updated", "id": id,
                          "first_name": first, "email": format!("{first}@example.org")});
        tx.insert_event("a", now, now, "patient.updated", &body)
            .await
            .unwrap();
        let doc = json!({"type": "document.sent", "id": format!("d-{id}"), "patient": id,
                         "title": "Compte rendu de psychiatrie"});
        tx.insert_event("a", now, now, "document.sent", &doc)
            .await
            .unwrap();
        tx.insert_notification(&sent(id, &format!("k-{id}")))
            .await
            .unwrap();
        tx.insert_inbox(&InboxRow {
            practice_id: "a".into(),
            id: format!("i-{id}"),
            inbox: "to_verify".into(),
            document: Some(format!("d-{id}")),
            patient_id: Some(id.into()),
            title: "Document non remis".into(),
            text: format!("Le document concernant {first} Durand n'a pas abouti."),
            created_at: now,
            resolved_at: None,
        })
        .await
        .unwrap();
    }
    // An appointment event names the patient only by id: it stays as it is.
    let booked = json!({"type": "appointment.booked", "id": "rdv-p1", "patient": "p1"});
    tx.insert_event("a", now, now, "appointment.booked", &booked)
        .await
        .unwrap();
    assert!(tx.erase_patient("a", "p1", now).await.unwrap());
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let erased = tx.notification("a", "k-p1").await.unwrap().unwrap();
    assert_eq!(erased.rendered, None);
    assert_eq!(erased.status, Status::Sent, "the audit keeps that it went");
    let other = tx.notification("a", "k-p10").await.unwrap().unwrap();
    assert!(
        other.rendered.is_some(),
        "p10 (whose id contains p1) keeps theirs"
    );

    let inbox = tx.inbox("a", None, true).await.unwrap();
    let text = |id: &str| inbox.iter().find(|e| e.id == id).unwrap().text.clone();
    assert!(!text("i-p1").contains("Rose"), "{}", text("i-p1"));
    assert!(text("i-p10").contains("Yves"));

    let events = tx.events("a", 0, 100).await.unwrap();
    let bodies: Vec<&Value> = events.iter().map(|e| &e.body).collect();
    assert_eq!(
        bodies[0],
        &json!({"at": "2026-03-01T09:00:00Z", "type": "patient.updated", "id": "p1", "erased": true})
    );
    assert_eq!(
        bodies[1],
        &json!({"type": "document.sent", "id": "d-p1", "patient": "p1", "erased": true})
    );
    assert_eq!(bodies[2]["first_name"], "Yves");
    assert_eq!(bodies[3]["title"], "Compte rendu de psychiatrie");
    assert_eq!(bodies[4], &booked);
    tx.commit().await.unwrap();
}
