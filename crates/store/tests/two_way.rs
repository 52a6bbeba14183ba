//! Two-way SMS in the store (issue 16): the last SMS sent to each number, the SMS opt-out
//! register read with the patient's file, and the received messages. Runs on a SQLite file, an
//! in-memory SQLite database and a fresh PostgreSQL database.

use jiff::Timestamp;
use rappel_domain::contact::Contact;
use rappel_domain::facts::Patient;
use rappel_store::{PracticeRow, ReceivedMessageRow, SmsOptOut, Store, received_message_id};
use serde_json::Map;

mod common;
use common::*;

conformance!(
    the_last_sms_to_a_number_is_the_newest_whatever_the_practice,
    an_opt_out_keeps_its_first_date_is_read_with_the_patient_and_lifted_once,
    received_messages_are_stored_once_listed_newest_first_and_handled_once,
    erasure_forgets_what_the_patient_wrote_their_number_and_their_opt_out,
);

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

async fn with_practices(store: &Store, ids: &[&str]) {
    let mut tx = store.begin().await.unwrap();
    for id in ids {
        tx.insert_practice(&PracticeRow {
            id: id.to_string(),
            name: format!("Cabinet {id}"),
            preset: "doctolib".into(),
            policy: None,
            timezone: "Europe/Paris".into(),
            settings: Map::new(),
            created_at: at("2025-01-01T08:00:00Z"),
        })
        .await
        .unwrap();
        tx.upsert_patient(
            id,
            &Patient {
                id: "p1".into(),
                first_name: "Jeanne".into(),
                mobile: Contact::from_input("+33612345678"),
                ..Patient::default()
            },
            at("2025-01-01T08:00:00Z"),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

fn opt_out(practice: &str, when: &str) -> SmsOptOut {
    SmsOptOut {
        practice_id: practice.into(),
        patient_id: "p1".into(),
        number: "+33612345678".into(),
        opted_out_at: at(when),
        source: "sms".into(),
    }
}

fn received(
    practice: &str,
    provider_id: &str,
    when: &str,
    keyword: Option<&str>,
) -> ReceivedMessageRow {
    ReceivedMessageRow {
        practice_id: practice.into(),
        id: received_message_id("twilio", provider_id),
        patient_id: "p1".into(),
        appointment_id: Some("a1".into()),
        provider: "twilio".into(),
        keyword: keyword.map(String::from),
        body: format!("texte {provider_id}"),
        received_at: at(when),
        handled_at: keyword.map(|_| at(when)),
    }
}

async fn the_last_sms_to_a_number_is_the_newest_whatever_the_practice(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.last_sms_to("+33612345678").await.unwrap(), None);
    tx.record_sms_sent("+33612345678", "a", "p1", "k1", at("2025-03-10T09:00:00Z"))
        .await
        .unwrap();
    tx.record_sms_sent("+33612345678", "b", "p1", "k2", at("2025-03-11T09:00:00Z"))
        .await
        .unwrap();
    // An older send recorded late does not take the number back.
    tx.record_sms_sent("+33612345678", "a", "p1", "k0", at("2025-03-09T09:00:00Z"))
        .await
        .unwrap();
    tx.record_sms_sent("+33700000001", "a", "p2", "k3", at("2025-03-12T09:00:00Z"))
        .await
        .unwrap();
    let last = tx.last_sms_to("+33612345678").await.unwrap().unwrap();
    assert_eq!(
        (last.practice_id.as_str(), last.notification_key.as_str()),
        ("b", "k2")
    );
    assert_eq!(last.sent_at, at("2025-03-11T09:00:00Z"));
    assert_eq!(
        tx.last_sms_to("+33700000001")
            .await
            .unwrap()
            .unwrap()
            .patient_id,
        "p2"
    );
    tx.commit().await.unwrap();
}

async fn an_opt_out_keeps_its_first_date_is_read_with_the_patient_and_lifted_once(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.patient("a", "p1").await.unwrap().unwrap().sms_opt_out,
        None
    );
    assert!(
        tx.insert_sms_opt_out(&opt_out("a", "2025-03-10T09:00:00Z"))
            .await
            .unwrap()
    );
    assert!(
        !tx.insert_sms_opt_out(&opt_out("a", "2025-03-12T09:00:00Z"))
            .await
            .unwrap()
    );
    let found = tx.sms_opt_out("a", "p1").await.unwrap().unwrap();
    assert_eq!(found, opt_out("a", "2025-03-10T09:00:00Z"));
    // Every read of the patient carries it: single, batch and whole-practice.
    let when = Some(at("2025-03-10T09:00:00Z"));
    assert_eq!(
        tx.patient("a", "p1").await.unwrap().unwrap().sms_opt_out,
        when
    );
    let batch = tx.patients_by_id("a", &["p1".to_string()]).await.unwrap();
    assert_eq!(batch[0].0.sms_opt_out, when);
    assert_eq!(tx.all_patients("a").await.unwrap()[0].sms_opt_out, when);
    // Practice b's patient p1 is another person.
    assert_eq!(tx.sms_opt_out("b", "p1").await.unwrap(), None);
    assert_eq!(
        tx.patient("b", "p1").await.unwrap().unwrap().sms_opt_out,
        None
    );
    assert!(tx.delete_sms_opt_out("a", "p1").await.unwrap());
    assert!(!tx.delete_sms_opt_out("a", "p1").await.unwrap());
    assert_eq!(
        tx.patient("a", "p1").await.unwrap().unwrap().sms_opt_out,
        None
    );
    tx.commit().await.unwrap();
}

async fn received_messages_are_stored_once_listed_newest_first_and_handled_once(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    let first = received("a", "SM1", "2025-03-10T09:00:00Z", None);
    let stop = received("a", "SM2", "2025-03-10T10:00:00Z", Some("stop"));
    let last = received("a", "SM3", "2025-03-10T11:00:00Z", None);
    for m in [&first, &stop, &last] {
        assert!(tx.insert_received_message(m).await.unwrap());
    }
    assert!(
        !tx.insert_received_message(&first).await.unwrap(),
        "a repeat"
    );
    assert!(
        tx.insert_received_message(&received("b", "SM1", "2025-03-10T09:00:00Z", None))
            .await
            .unwrap()
    );
    let open = tx.received_messages("a", false, 100).await.unwrap();
    assert_eq!(open, vec![last.clone(), first.clone()]);
    let all = tx.received_messages("a", true, 100).await.unwrap();
    assert_eq!(all, vec![last.clone(), stop.clone(), first.clone()]);
    assert_eq!(
        tx.received_messages("a", true, 1).await.unwrap(),
        vec![last.clone()]
    );
    assert!(
        tx.resolve_received_message("a", &first.id, at("2025-03-11T08:00:00Z"))
            .await
            .unwrap()
    );
    assert!(
        !tx.resolve_received_message("a", &first.id, at("2025-03-12T08:00:00Z"))
            .await
            .unwrap()
    );
    let handled = tx.received_message("a", &first.id).await.unwrap().unwrap();
    assert_eq!(handled.handled_at, Some(at("2025-03-11T08:00:00Z")));
    // Practice b's message of the same provider id is its own, still open.
    assert_eq!(
        tx.received_messages("b", false, 100).await.unwrap().len(),
        1
    );
    assert!(tx.received_message("b", &stop.id).await.unwrap().is_none());
    tx.commit().await.unwrap();
}

async fn erasure_forgets_what_the_patient_wrote_their_number_and_their_opt_out(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    for practice in ["a", "b"] {
        tx.insert_received_message(&received(practice, "SM1", "2025-03-10T09:00:00Z", None))
            .await
            .unwrap();
        tx.insert_sms_opt_out(&opt_out(practice, "2025-03-10T09:00:00Z"))
            .await
            .unwrap();
    }
    tx.record_sms_sent("+33612345678", "a", "p1", "k1", at("2025-03-10T09:00:00Z"))
        .await
        .unwrap();
    assert!(
        tx.erase_patient("a", "p1", at("2025-03-11T00:00:00Z"))
            .await
            .unwrap()
    );
    assert!(
        tx.received_messages("a", true, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(tx.sms_opt_out("a", "p1").await.unwrap(), None);
    assert_eq!(tx.last_sms_to("+33612345678").await.unwrap(), None);
    // Practice b's patient p1 is untouched.
    assert_eq!(tx.received_messages("b", true, 100).await.unwrap().len(), 1);
    assert!(tx.sms_opt_out("b", "p1").await.unwrap().is_some());
    tx.commit().await.unwrap();
}
