//! The store's conformance suite: every test function below runs, unchanged, against a SQLite
//! file, a private in-memory SQLite database and a fresh PostgreSQL database, so the two backends
//! cannot drift apart (STYLE.md, "One conformance suite run against both stores").
//!
//! PostgreSQL is not optional: the base URL comes from `RAPPEL_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), each test creates its own database there and
//! drops it afterwards, and an unreachable server fails the tests with a message saying so.

use std::collections::{HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use rappel_domain::contact::Contact;
use rappel_domain::facts::{
    Appointment, AppointmentStatus, CancelledBy, Document, EmailDelivery, Motive, Move, Patient,
    Practitioner, Source,
};
use rappel_domain::notification::{Channel, Kind, Reason, Recipient};
use rappel_store::{
    InboxRow, NewEvent, NotificationFilter, NotificationRow, PracticeRow, Status, Store,
    StoreError, TaskRow, TaskRunRow,
};
use serde_json::{Map, json};
use sqlx::Connection;

mod common;
use common::*;

conformance!(
    migrating_twice_is_a_no_op_and_keeps_the_data,
    practices_and_api_keys_round_trip,
    upserting_twice_keeps_one_row_with_the_latest_data,
    contacts_come_back_parsed_and_one_that_does_not_parse_as_typed,
    patient_search_is_case_insensitive_and_escapes_wildcards,
    erasing_a_patient_blanks_their_data_and_removes_their_documents,
    appointment_queries_select_by_start_and_by_change,
    documents_round_trip_and_list_by_patient,
    event_sequence_numbers_count_per_practice,
    event_sequence_numbers_stay_unique_under_concurrent_writers,
    idempotency_answers_round_trip,
    notifications_insert_update_and_read_back_every_column,
    a_notification_is_found_by_its_provider_id_in_any_practice,
    notification_list_filters_and_pages_by_due_time_then_key,
    appointment_and_document_notifications_match_exact_ids,
    notification_counts_group_by_status_and_channel,
    concurrent_claimers_never_get_the_same_notification,
    claim_takes_expired_leases_but_not_future_or_finished_rows,
    next_due_is_the_earliest_pending_due_time_or_lease_end,
    a_burst_in_one_practice_does_not_delay_another_practice_by_more_than_one_batch,
    the_due_summary_follows_claims_retries_and_expired_leases,
    no_message_is_lost_to_the_summary_while_writers_and_claimers_race,
    sms_quota_of_two_admits_exactly_two_concurrent_messages,
    inbox_insert_deduplicates_and_resolve_happens_once,
    task_definitions_and_runs_round_trip,
    a_task_occurrence_is_claimed_once_even_concurrently,
    task_notification_counts_cover_one_run_by_status_and_reason,
    a_dropped_transaction_rolls_back,
    practice_b_never_sees_practice_a_rows,
    batch_reads_and_writes_answer_as_their_single_row_counterparts,
    a_read_transaction_refuses_writes_and_is_not_counted_as_one,
    delivery_reports_are_kept_once_each_oldest_first_and_erased_with_the_patient,
    history_older_than_the_horizon_goes_in_batches_and_open_work_stays,
    appointment_links_and_answers_round_trip_and_are_erased_with_the_patient,
);

#[tokio::test]
async fn an_unknown_url_scheme_is_refused() {
    let err = Store::connect("mysql://localhost/rappel")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn practice(id: &str) -> PracticeRow {
    let mut settings = Map::new();
    settings.insert("sms_quota".into(), json!(100));
    PracticeRow {
        id: id.to_string(),
        name: format!("Cabinet {id}"),
        preset: "doctolib".into(),
        policy: None,
        timezone: "Europe/Paris".into(),
        settings,
        created_at: at("2025-01-01T08:00:00Z"),
    }
}

async fn with_practices(store: &Store, ids: &[&str]) {
    let mut tx = store.begin().await.unwrap();
    for id in ids {
        tx.insert_practice(&practice(id)).await.unwrap();
    }
    tx.commit().await.unwrap();
}

fn patient(id: &str, first: &str, last: &str) -> Patient {
    Patient {
        id: id.to_string(),
        first_name: first.to_string(),
        last_name: last.to_string(),
        email: Contact::from_input(&format!("{}@example.org", first.to_lowercase())),
        mobile: Contact::from_input("+33612345678"),
        sms_notifications: Some(true),
        ..Patient::default()
    }
}

fn appointment(id: &str, patient: &str, start: &str) -> Appointment {
    Appointment {
        id: id.to_string(),
        patient: patient.to_string(),
        practitioner: "dr-martin".into(),
        motive: Some("consultation".into()),
        start: at(start),
        duration_minutes: 20,
        location: None,
        source: Source::Online,
        booked_at: at("2025-02-01T10:00:00Z"),
        status: AppointmentStatus::Booked,
        moves: Vec::new(),
        version: 1,
    }
}

fn document(id: &str, patient: &str, sent_at: &str) -> Document {
    Document {
        id: id.to_string(),
        patient: patient.to_string(),
        title: "Compte rendu".into(),
        sent_at: at(sent_at),
        email: EmailDelivery::Pending,
        consulted_at: None,
    }
}

fn notification(practice_id: &str, key: &str, due: &str) -> NotificationRow {
    NotificationRow {
        practice_id: practice_id.to_string(),
        key: key.to_string(),
        patient_id: "p1".into(),
        rule: "reminder_sms_d1".into(),
        kind: Kind::Reminder,
        channel: Channel::Sms,
        recipient: Recipient::Patient("p1".into()),
        appointments: vec!["a1".into()],
        document: None,
        task: None,
        auto_resend: false,
        due_at: at(due),
        window_end: None,
        status: Status::Pending,
        reason: None,
        decided_at: None,
        attempts: 0,
        lease_owner: None,
        lease_until: None,
        last_error: None,
        rendered: None,
        provider_id: None,
        created_at: at("2025-02-01T10:00:00Z"),
        updated_at: at("2025-02-01T10:00:00Z"),
    }
}

async fn insert_notifications(store: &Store, rows: &[NotificationRow]) {
    let mut tx = store.begin().await.unwrap();
    for row in rows {
        tx.insert_notification(row).await.unwrap();
    }
    tx.commit().await.unwrap();
}

fn keys(rows: &[NotificationRow]) -> Vec<&str> {
    rows.iter().map(|n| n.key.as_str()).collect()
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<&str> {
    items.iter().map(id).collect()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

async fn migrating_twice_is_a_no_op_and_keeps_the_data(store: Store) {
    with_practices(&store, &["a"]).await;
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.practice("a").await.unwrap(), Some(practice("a")));
    tx.commit().await.unwrap();
}

async fn practices_and_api_keys_round_trip(store: Store) {
    let mut custom = practice("b");
    custom.preset = "custom".into();
    custom.policy = Some("[[rules]]\nid = \"x\"\n".into());
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.practice("a").await.unwrap(), None);
    tx.insert_practice(&practice("a")).await.unwrap();
    tx.insert_practice(&custom).await.unwrap();
    tx.commit().await.unwrap();

    // A failed statement aborts the whole transaction on PostgreSQL: try it in one of its own.
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.insert_practice(&practice("a")).await.is_err(),
        "a practice id is unique"
    );
    drop(tx);

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.practice("b").await.unwrap(), Some(custom.clone()));
    assert_eq!(tx.practices().await.unwrap(), vec![practice("a"), custom]);

    let mut settings = Map::new();
    settings.insert("reminder_sms".into(), json!(true));
    settings.insert(
        "quiet_hours".into(),
        json!({"from": "20:00", "to": "08:00"}),
    );
    tx.update_practice_settings("a", &settings).await.unwrap();
    assert_eq!(tx.practice("a").await.unwrap().unwrap().settings, settings);

    tx.insert_api_key("a", "k1", "hash-of-secret", at("2025-01-02T00:00:00Z"))
        .await
        .unwrap();
    assert!(
        tx.api_key_matches("a", "k1", "hash-of-secret")
            .await
            .unwrap()
    );
    assert!(
        !tx.api_key_matches("a", "k1", "hash-of-other")
            .await
            .unwrap()
    );
    assert!(
        !tx.api_key_matches("a", "k2", "hash-of-secret")
            .await
            .unwrap()
    );
    assert!(
        !tx.api_key_matches("b", "k1", "hash-of-secret")
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
}

async fn upserting_twice_keeps_one_row_with_the_latest_data(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut tx = store.begin().await.unwrap();
    let mut doctor = Practitioner {
        id: "dr-martin".into(),
        name: "Dr Martin".into(),
        email: None,
        mobile: None,
    };
    tx.upsert_practitioner("a", &doctor).await.unwrap();
    doctor.email = Contact::from_input("martin@example.org");
    tx.upsert_practitioner("a", &doctor).await.unwrap();
    assert_eq!(tx.practitioners("a").await.unwrap(), vec![doctor.clone()]);
    assert_eq!(
        tx.practitioner("a", "dr-martin").await.unwrap(),
        Some(doctor)
    );
    assert_eq!(tx.practitioner("a", "dr-nobody").await.unwrap(), None);

    let mut motive = Motive {
        id: "consultation".into(),
        name: "Consultation".into(),
        notifications: true,
        instructions: None,
    };
    tx.upsert_motive("a", &motive).await.unwrap();
    motive.notifications = false;
    motive.instructions = Some("Venir à jeun".into());
    tx.upsert_motive("a", &motive).await.unwrap();
    assert_eq!(tx.motives("a").await.unwrap(), vec![motive.clone()]);
    assert_eq!(tx.motive("a", "consultation").await.unwrap(), Some(motive));

    let mut jean = patient("p1", "Jean", "Dupont");
    tx.upsert_patient("a", &jean, at("2025-02-01T00:00:00Z"))
        .await
        .unwrap();
    jean.last_name = "Durand".into();
    jean.birth_date = Some("1980-05-17".parse().unwrap());
    tx.upsert_patient("a", &jean, at("2025-02-02T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(tx.all_patients("a").await.unwrap(), vec![jean.clone()]);
    assert_eq!(tx.patient("a", "p1").await.unwrap(), Some(jean));

    let mut visit = appointment("a1", "p1", "2025-03-10T09:00:00Z");
    tx.upsert_appointment("a", &visit, at("2025-02-01T00:00:00Z"))
        .await
        .unwrap();
    visit.start = at("2025-03-11T09:00:00Z");
    visit.version = 2;
    tx.upsert_appointment("a", &visit, at("2025-02-02T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        tx.patient_history("a", "p1").await.unwrap(),
        vec![visit.clone()]
    );
    assert_eq!(tx.appointment("a", "a1").await.unwrap(), Some(visit));

    let mut letter = document("d1", "p1", "2025-02-01T00:00:00Z");
    tx.upsert_document("a", &letter).await.unwrap();
    letter.email = EmailDelivery::Delivered {
        at: at("2025-02-01T00:01:00Z"),
    };
    tx.upsert_document("a", &letter).await.unwrap();
    assert_eq!(tx.patient_documents("a", "p1").await.unwrap(), vec![letter]);
    tx.commit().await.unwrap();
}

/// The store keeps contacts as text (`data`'s JSON) and reads them back through the parsers:
/// a valid one in its type, one that does not parse kept as typed (SPEC.md decision 7).
async fn contacts_come_back_parsed_and_one_that_does_not_parse_as_typed(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut tx = store.begin().await.unwrap();
    let now = at("2025-02-01T00:00:00Z");
    let jean = patient("p1", "Jean", "Dupont");
    let mut typo = patient("p2", "Zoé", "Bernard");
    typo.email = Contact::from_input("zoe.example.org");
    typo.mobile = Contact::from_input("+33142334455");
    for p in [&jean, &typo] {
        tx.upsert_patient("a", p, now).await.unwrap();
    }
    let read = tx.patient("a", "p1").await.unwrap().unwrap();
    let email = read.email.as_ref().and_then(Contact::valid);
    assert_eq!(email.map(|e| e.as_str()), Some("jean@example.org"));
    assert_eq!(read, jean);
    let read = tx.patient("a", "p2").await.unwrap().unwrap();
    match &read.email {
        Some(Contact::Invalid(raw)) => assert_eq!(raw.as_str(), "zoe.example.org"),
        other => panic!("kept as typed: {other:?}"),
    }
    let landline = read.mobile.as_ref().and_then(Contact::valid);
    assert_eq!(landline.map(|n| n.e164()), Some("+33142334455"));
    assert_eq!(read.mobile.as_ref().and_then(Contact::mobile), None);
    assert_eq!(read, typo);
    tx.commit().await.unwrap();
}

async fn patient_search_is_case_insensitive_and_escapes_wildcards(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut tx = store.begin().await.unwrap();
    let now = at("2025-02-01T00:00:00Z");
    tx.upsert_patient("a", &patient("p1", "Jean", "Dupont"), now)
        .await
        .unwrap();
    tx.upsert_patient("a", &patient("p2", "Éloïse", "Martin"), now)
        .await
        .unwrap();
    let mut odd = patient("p3", "Zoé", "Bernard");
    odd.email = Contact::from_input("zoe_100%@example.org");
    odd.mobile = None;
    tx.upsert_patient("a", &odd, now).await.unwrap();

    let found = tx.search_patients("a", "DUPONT", 10).await.unwrap();
    assert_eq!(ids(&found, |p| &p.id), ["p1"]);
    let found = tx.search_patients("a", "éLOÏSE", 10).await.unwrap();
    assert_eq!(ids(&found, |p| &p.id), ["p2"], "non-ASCII letters fold too");
    let found = tx.search_patients("a", "dupont jean", 10).await.unwrap();
    assert_eq!(
        ids(&found, |p| &p.id),
        ["p1"],
        "last name first also matches"
    );
    let found = tx.search_patients("a", "612345", 10).await.unwrap();
    assert_eq!(ids(&found, |p| &p.id), ["p1", "p2"], "by mobile");
    let found = tx.search_patients("a", "jean@EXAMPLE", 10).await.unwrap();
    assert_eq!(ids(&found, |p| &p.id), ["p1"], "by email");
    let found = tx.search_patients("a", "_100%", 10).await.unwrap();
    assert_eq!(ids(&found, |p| &p.id), ["p3"]);
    assert!(
        tx.search_patients("a", "j%n", 10).await.unwrap().is_empty(),
        "% is literal"
    );
    assert!(
        tx.search_patients("a", "j_an", 10)
            .await
            .unwrap()
            .is_empty(),
        "_ is literal"
    );
    assert_eq!(
        tx.search_patients("a", "example.org", 2)
            .await
            .unwrap()
            .len(),
        2,
        "limit"
    );
    tx.commit().await.unwrap();
}

async fn erasing_a_patient_blanks_their_data_and_removes_their_documents(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut tx = store.begin().await.unwrap();
    let now = at("2025-02-01T00:00:00Z");
    tx.upsert_patient("a", &patient("p1", "Jean", "Dupont"), now)
        .await
        .unwrap();
    tx.upsert_patient("a", &patient("p2", "Marie", "Curie"), now)
        .await
        .unwrap();
    tx.upsert_document("a", &document("d1", "p1", "2025-02-01T00:00:00Z"))
        .await
        .unwrap();
    tx.upsert_document("a", &document("d2", "p2", "2025-02-01T00:00:00Z"))
        .await
        .unwrap();

    assert!(!tx.is_erased("a", "p1").await.unwrap());
    assert!(tx.erase_patient("a", "p1", now).await.unwrap());
    assert!(!tx.erase_patient("a", "nobody", now).await.unwrap());
    assert!(tx.is_erased("a", "p1").await.unwrap());
    assert!(!tx.is_erased("a", "nobody").await.unwrap());
    assert_eq!(tx.patient("a", "p1").await.unwrap(), None);
    assert_eq!(ids(&tx.all_patients("a").await.unwrap(), |p| &p.id), ["p2"]);
    assert!(
        tx.search_patients("a", "dupont", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        tx.search_patients("a", "jean", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(tx.document("a", "d1").await.unwrap(), None);
    assert!(tx.patient_documents("a", "p1").await.unwrap().is_empty());
    assert!(
        tx.document("a", "d2").await.unwrap().is_some(),
        "other patients keep theirs"
    );

    // A late update about an erased patient must not bring their data back.
    tx.upsert_patient("a", &patient("p1", "Jean", "Dupont"), now)
        .await
        .unwrap();
    assert_eq!(tx.patient("a", "p1").await.unwrap(), None);
    assert!(tx.is_erased("a", "p1").await.unwrap());
    assert!(
        tx.search_patients("a", "dupont", 10)
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();
}

async fn appointment_queries_select_by_start_and_by_change(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut tx = store.begin().await.unwrap();
    let now = at("2025-03-01T00:00:00Z");
    let past = appointment("past", "p1", "2025-02-10T09:00:00Z");
    let mut late_cancel = appointment("late-cancel", "p1", "2025-02-20T09:00:00Z");
    late_cancel.status = AppointmentStatus::Cancelled {
        at: at("2025-03-02T09:00:00Z"),
        by: CancelledBy::Patient,
        excused: false,
    };
    let mut moved_back = appointment("moved-back", "p1", "2025-02-25T09:00:00Z");
    moved_back.moves.push(Move {
        at: at("2025-03-03T09:00:00Z"),
        from_start: at("2025-03-20T09:00:00Z"),
        to_start: at("2025-02-25T09:00:00Z"),
        from_location: None,
        to_location: None,
    });
    let old_cancel = {
        let mut a = appointment("old-cancel", "p1", "2025-02-21T09:00:00Z");
        a.status = AppointmentStatus::Cancelled {
            at: at("2025-02-15T09:00:00Z"),
            by: CancelledBy::Practice,
            excused: true,
        };
        a
    };
    let later = appointment("later", "p1", "2025-03-15T09:00:00Z");
    let sooner = appointment("sooner", "p1", "2025-03-05T09:00:00Z");
    let at_since = appointment("at-since", "p1", "2025-03-01T00:00:00Z");
    let other = appointment("other", "p2", "2025-03-06T09:00:00Z");
    for a in [
        &past,
        &late_cancel,
        &moved_back,
        &old_cancel,
        &later,
        &sooner,
        &at_since,
        &other,
    ] {
        tx.upsert_appointment("a", a, now).await.unwrap();
    }

    let upcoming = tx.patient_appointments("a", "p1", now).await.unwrap();
    assert_eq!(
        ids(&upcoming, |a| &a.id),
        ["late-cancel", "moved-back", "at-since", "sooner", "later"]
    );
    assert_eq!(upcoming[0], late_cancel);

    let history = tx.patient_history("a", "p1").await.unwrap();
    assert_eq!(
        ids(&history, |a| &a.id),
        [
            "past",
            "late-cancel",
            "old-cancel",
            "moved-back",
            "at-since",
            "sooner",
            "later"
        ]
    );

    let week = tx
        .appointments_between("a", at("2025-03-01T00:00:00Z"), at("2025-03-15T09:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        ids(&week, |a| &a.id),
        ["at-since", "sooner", "other"],
        "[from, to)"
    );

    tx.upsert_document("a", &document("d1", "p3", "2025-02-27T00:00:00Z"))
        .await
        .unwrap();
    tx.upsert_document("a", &document("d0", "p4", "2025-01-01T00:00:00Z"))
        .await
        .unwrap();
    let open = tx
        .patients_with_open_work("a", now, at("2025-02-15T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(open, ["p1", "p2", "p3"]);
    tx.commit().await.unwrap();
}

async fn documents_round_trip_and_list_by_patient(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut tx = store.begin().await.unwrap();
    let mut second = document("d2", "p1", "2025-02-03T00:00:00Z");
    second.consulted_at = Some(at("2025-02-04T00:00:00Z"));
    second.email = EmailDelivery::Failed {
        at: at("2025-02-03T00:05:00Z"),
    };
    let first = document("d1", "p1", "2025-02-01T00:00:00Z");
    let other = document("d3", "p2", "2025-02-02T00:00:00Z");
    for d in [&second, &first, &other] {
        tx.upsert_document("a", d).await.unwrap();
    }
    assert_eq!(tx.document("a", "d2").await.unwrap(), Some(second.clone()));
    assert_eq!(tx.document("a", "nope").await.unwrap(), None);
    assert_eq!(
        tx.patient_documents("a", "p1").await.unwrap(),
        vec![first, second]
    );
    assert_eq!(tx.patient_documents("a", "p2").await.unwrap(), vec![other]);
    tx.commit().await.unwrap();
}

async fn event_sequence_numbers_count_per_practice(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let received = at("2025-02-01T00:00:01Z");
    let mut tx = store.begin().await.unwrap();
    for n in 1..=3 {
        let body = json!({"type": "appointment.booked", "n": n});
        let seq = tx
            .insert_event(
                "a",
                at("2025-02-01T00:00:00Z"),
                received,
                "appointment.booked",
                &body,
            )
            .await
            .unwrap();
        assert_eq!(seq, n);
    }
    let seq = tx
        .insert_event("b", received, received, "patient.updated", &json!({}))
        .await
        .unwrap();
    assert_eq!(seq, 1, "each practice counts from 1");
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.insert_event("a", received, received, "x", &json!(null))
            .await
            .unwrap(),
        4
    );
    let events = tx.events("a", 1, 2).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(
        events[0].body,
        json!({"type": "appointment.booked", "n": 2})
    );
    assert_eq!(events[0].event_type, "appointment.booked");
    assert_eq!(events[0].at, at("2025-02-01T00:00:00Z"));
    assert_eq!(events[0].received_at, received);
    assert_eq!(events[0].practice_id, "a");
    assert_eq!(tx.events("a", 0, 100).await.unwrap().len(), 4);
    assert_eq!(tx.events("b", 0, 100).await.unwrap().len(), 1);
    tx.commit().await.unwrap();
}

async fn event_sequence_numbers_stay_unique_under_concurrent_writers(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut writers = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..10 {
                let mut tx = store.begin().await.unwrap();
                let now = at("2025-02-01T00:00:00Z");
                let seq = tx
                    .insert_event("a", now, now, "x", &json!([w, i]))
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                seqs.push(seq);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for writer in writers {
        all.extend(writer.await.unwrap());
    }
    all.sort();
    assert_eq!(all, (1..=40).collect::<Vec<i64>>());
}

async fn idempotency_answers_round_trip(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.idempotency("a", "k").await.unwrap(), None);
    let answer = json!({"id": "a1", "status": "booked"});
    tx.save_idempotency("a", "k", "h1", 201, &answer, at("2025-02-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        tx.idempotency("a", "k").await.unwrap(),
        Some(("h1".into(), 201, answer))
    );
    assert_eq!(tx.idempotency("b", "k").await.unwrap(), None);
    let again = json!({"error": "conflict"});
    tx.save_idempotency("a", "k", "h2", 409, &again, at("2025-02-01T00:00:01Z"))
        .await
        .unwrap();
    assert_eq!(
        tx.idempotency("a", "k").await.unwrap(),
        Some(("h2".into(), 409, again))
    );
    tx.commit().await.unwrap();
}

async fn notifications_insert_update_and_read_back_every_column(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut full = notification("a", "p1/reminder/sms/patient:p1", "2025-03-09T09:00:00Z");
    full.kind = Kind::PractitionerMove;
    full.channel = Channel::Email;
    full.recipient = Recipient::Practitioner("dr-martin".into());
    full.appointments = vec!["a1".into(), "a2".into()];
    full.document = Some("d1".into());
    full.task = Some("birthday".into());
    full.auto_resend = true;
    full.window_end = Some(at("2025-03-10T09:00:00Z"));
    full.status = Status::Suppressed;
    full.reason = Some(Reason::QuotaExhausted);
    full.decided_at = Some(at("2025-03-09T09:00:01.234Z"));
    full.attempts = 3;
    full.lease_owner = Some("worker-1".into());
    full.lease_until = Some(at("2025-03-09T09:05:00Z"));
    full.last_error = Some("timeout".into());
    full.rendered = Some(json!({"subject": "Rappel", "text": "Bonjour"}));
    full.provider_id = Some("msg-42".into());
    let bare = notification(
        "a",
        "p1/confirmation/sms/patient:p1",
        "2025-03-01T09:00:00Z",
    );

    let mut tx = store.begin().await.unwrap();
    tx.insert_notification(&full).await.unwrap();
    tx.insert_notification(&bare).await.unwrap();
    assert_eq!(
        tx.notification("a", &full.key).await.unwrap(),
        Some(full.clone())
    );
    assert_eq!(
        tx.notification("a", &bare.key).await.unwrap(),
        Some(bare.clone())
    );
    assert_eq!(tx.notification("a", "nope").await.unwrap(), None);
    tx.commit().await.unwrap();

    // A duplicate key is an error (the caller decides between insert and update).
    let mut tx = store.begin().await.unwrap();
    assert!(tx.insert_notification(&bare).await.is_err());
    drop(tx);

    let mut updated = bare.clone();
    updated.status = Status::Sent;
    updated.attempts = 1;
    updated.provider_id = Some("msg-43".into());
    updated.rendered = Some(json!({"text": "Rappel : RDV demain"}));
    updated.due_at = at("2025-03-01T10:00:00Z");
    updated.updated_at = at("2025-03-01T10:00:02Z");
    updated.created_at = at("2030-01-01T00:00:00Z"); // never written by an update
    let mut tx = store.begin().await.unwrap();
    tx.update_notification(&updated).await.unwrap();
    let read = tx.notification("a", &bare.key).await.unwrap().unwrap();
    assert_eq!(
        read,
        NotificationRow {
            created_at: bare.created_at,
            ..updated
        }
    );

    let mut cleared = full.clone();
    cleared.reason = None;
    cleared.rendered = None;
    cleared.window_end = None;
    cleared.lease_owner = None;
    tx.update_notification(&cleared).await.unwrap();
    assert_eq!(
        tx.notification("a", &full.key).await.unwrap(),
        Some(cleared.clone())
    );

    let scope = tx.patient_notifications("a", "p1").await.unwrap();
    assert_eq!(
        keys(&scope),
        [bare.key.as_str(), full.key.as_str()],
        "by key"
    );
    assert!(
        tx.patient_notifications("a", "p2")
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();
}

async fn a_notification_is_found_by_its_provider_id_in_any_practice(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut in_a = notification("a", "p1/reminder/sms/patient:p1", "2025-03-09T09:00:00Z");
    in_a.status = Status::Sent;
    in_a.provider_id = Some("SM-a".into());
    let mut in_b = notification("b", "p1/reminder/sms/patient:p1", "2025-03-09T09:00:00Z");
    in_b.status = Status::Sent;
    in_b.provider_id = Some("SM-b".into());
    let never_sent = notification(
        "b",
        "p1/confirmation/sms/patient:p1",
        "2025-03-01T09:00:00Z",
    );
    insert_notifications(&store, &[in_a.clone(), in_b.clone(), never_sent]).await;

    let mut tx = store.begin().await.unwrap();
    // A delivery report names no practice: the provider id alone finds the row.
    assert_eq!(
        tx.notification_by_provider_id("SM-a").await.unwrap(),
        Some(in_a.clone())
    );
    assert_eq!(
        tx.notification_by_provider_id("SM-b").await.unwrap(),
        Some(in_b)
    );
    assert_eq!(tx.notification_by_provider_id("SM-c").await.unwrap(), None);
    // Exact match only: no prefix, no case folding.
    assert_eq!(tx.notification_by_provider_id("SM-").await.unwrap(), None);
    assert_eq!(tx.notification_by_provider_id("sm-a").await.unwrap(), None);

    // A new attempt's id replaces the old one.
    let mut retried = in_a;
    retried.provider_id = Some("SM-a2".into());
    tx.update_notification(&retried).await.unwrap();
    assert_eq!(tx.notification_by_provider_id("SM-a").await.unwrap(), None);
    assert_eq!(
        tx.notification_by_provider_id("SM-a2").await.unwrap(),
        Some(retried)
    );
    tx.commit().await.unwrap();
}

async fn notification_list_filters_and_pages_by_due_time_then_key(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut rows = Vec::new();
    for (key, due, status, channel, kind) in [
        (
            "k5",
            "2025-03-03T09:00:00Z",
            Status::Sent,
            Channel::Sms,
            Kind::Reminder,
        ),
        (
            "k1",
            "2025-03-01T09:00:00Z",
            Status::Pending,
            Channel::Sms,
            Kind::Reminder,
        ),
        (
            "k3",
            "2025-03-02T09:00:00Z",
            Status::Sent,
            Channel::Email,
            Kind::Confirmation,
        ),
        (
            "k2",
            "2025-03-02T09:00:00Z",
            Status::Sent,
            Channel::Sms,
            Kind::Confirmation,
        ),
        (
            "k4",
            "2025-03-02T09:00:00Z",
            Status::Failed,
            Channel::Sms,
            Kind::Reminder,
        ),
    ] {
        let mut n = notification("a", key, due);
        n.status = status;
        n.channel = channel;
        n.kind = kind;
        rows.push(n);
    }
    insert_notifications(&store, &rows).await;

    let mut tx = store.begin().await.unwrap();
    let all = NotificationFilter {
        limit: 100,
        ..NotificationFilter::default()
    };
    assert_eq!(
        keys(&tx.list_notifications("a", &all).await.unwrap()),
        ["k1", "k2", "k3", "k4", "k5"]
    );

    let sent = NotificationFilter {
        status: Some(Status::Sent),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        keys(&tx.list_notifications("a", &sent).await.unwrap()),
        ["k2", "k3", "k5"]
    );
    let sms_sent = NotificationFilter {
        channel: Some(Channel::Sms),
        ..sent.clone()
    };
    assert_eq!(
        keys(&tx.list_notifications("a", &sms_sent).await.unwrap()),
        ["k2", "k5"]
    );
    let reminders = NotificationFilter {
        kind: Some(Kind::Reminder),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        keys(&tx.list_notifications("a", &reminders).await.unwrap()),
        ["k1", "k4", "k5"]
    );
    let since = NotificationFilter {
        since: Some(at("2025-03-02T09:00:00Z")),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        keys(&tx.list_notifications("a", &since).await.unwrap()),
        ["k2", "k3", "k4", "k5"]
    );

    // Pages of two, each starting after the previous page's last (due_at, key); the newest
    // first pages backwards the same way.
    assert_eq!(
        pages_of_two(&mut tx, false).await,
        [vec!["k1", "k2"], vec!["k3", "k4"], vec!["k5"]]
    );
    assert_eq!(
        pages_of_two(&mut tx, true).await,
        [vec!["k5", "k4"], vec!["k3", "k2"], vec!["k1"]]
    );
    let zero = NotificationFilter {
        limit: 0,
        ..Default::default()
    };
    assert!(tx.list_notifications("a", &zero).await.unwrap().is_empty());
    tx.commit().await.unwrap();
}

async fn appointment_and_document_notifications_match_exact_ids(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut grouped = notification("a", "n-grouped", "2025-03-02T09:00:00Z");
    grouped.appointments = vec!["a1".into(), "a10".into()];
    let mut prefix = notification("a", "n-prefix", "2025-03-01T09:00:00Z");
    prefix.appointments = vec!["a10".into()];
    let mut single = notification("a", "n-single", "2025-03-01T08:00:00Z");
    single.appointments = vec!["a1".into()];
    let mut wild = notification("a", "n-wild", "2025-03-01T08:00:00Z");
    wild.appointments = vec!["a_1%\"x".into()];
    let mut letter = notification("a", "n-doc", "2025-03-01T08:00:00Z");
    letter.appointments = Vec::new();
    letter.kind = Kind::Document;
    letter.document = Some("d1".into());
    let mut other_letter = letter.clone();
    other_letter.key = "n-doc-10".into();
    other_letter.document = Some("d10".into());
    insert_notifications(
        &store,
        &[grouped, prefix, single, wild, letter, other_letter],
    )
    .await;

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        keys(&tx.appointment_notifications("a", "a1").await.unwrap()),
        ["n-single", "n-grouped"]
    );
    assert_eq!(
        keys(&tx.appointment_notifications("a", "a10").await.unwrap()),
        ["n-prefix", "n-grouped"]
    );
    assert_eq!(
        keys(&tx.appointment_notifications("a", "a_1%\"x").await.unwrap()),
        ["n-wild"]
    );
    assert!(
        tx.appointment_notifications("a", "a")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        tx.appointment_notifications("a", "a_1")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        keys(&tx.document_notifications("a", "d1").await.unwrap()),
        ["n-doc"]
    );
    assert!(
        tx.document_notifications("a", "d2")
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();
}

async fn notification_counts_group_by_status_and_channel(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut rows = Vec::new();
    for (practice, key, status, channel) in [
        ("a", "1", Status::Pending, Channel::Sms),
        ("a", "2", Status::Pending, Channel::Sms),
        ("a", "3", Status::Sent, Channel::Email),
        ("b", "1", Status::Pending, Channel::Sms),
        ("b", "2", Status::Suppressed, Channel::Push),
    ] {
        let mut n = notification(practice, key, "2025-03-01T09:00:00Z");
        n.status = status;
        n.channel = channel;
        rows.push(n);
    }
    insert_notifications(&store, &rows).await;
    let mut tx = store.begin().await.unwrap();
    let row = |s: &str, c: &str, n: i64| (s.to_string(), c.to_string(), n);
    assert_eq!(
        tx.notification_counts(Some("a")).await.unwrap(),
        [row("pending", "sms", 2), row("sent", "email", 1)]
    );
    assert_eq!(
        tx.notification_counts(None).await.unwrap(),
        [
            row("pending", "sms", 3),
            row("sent", "email", 1),
            row("suppressed", "push", 1)
        ]
    );
    assert!(
        tx.notification_counts(Some("nobody"))
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();
}

async fn concurrent_claimers_never_get_the_same_notification(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let now = at("2025-03-01T12:00:00Z");
    let rows: Vec<NotificationRow> = (0..500)
        .map(|i| {
            let practice = if i % 2 == 0 { "a" } else { "b" };
            let due = now - SignedDuration::from_secs(i % 97);
            let mut n = notification(practice, &format!("n{i:03}"), "2025-01-01T00:00:00Z");
            n.due_at = due;
            n
        })
        .collect();
    insert_notifications(&store, &rows).await;

    let lease_until = now + SignedDuration::from_mins(5);
    let mut claimers = Vec::new();
    for worker in 0..4 {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            let owner = format!("worker-{worker}");
            let mut claimed = Vec::new();
            loop {
                let batch = store.claim_due(now, &owner, lease_until, 7).await.unwrap();
                if batch.is_empty() {
                    break;
                }
                assert!(
                    batch.windows(2).all(|w| w[0].due_at <= w[1].due_at),
                    "most overdue first"
                );
                for n in &batch {
                    assert_eq!(n.status, Status::Sending);
                    assert_eq!(n.lease_owner.as_deref(), Some(owner.as_str()));
                    assert_eq!(n.lease_until, Some(lease_until));
                    assert_eq!(n.attempts, 1);
                    assert_eq!(n.updated_at, now);
                }
                claimed.extend(batch.into_iter().map(|n| (n.practice_id, n.key)));
                tokio::task::yield_now().await;
            }
            claimed
        }));
    }
    let mut per_row: HashMap<(String, String), usize> = HashMap::new();
    for claimer in claimers {
        for id in claimer.await.unwrap() {
            *per_row.entry(id).or_default() += 1;
        }
    }
    assert_eq!(per_row.len(), 500, "every due row is claimed");
    assert!(per_row.values().all(|&n| n == 1), "no row is claimed twice");
    assert!(
        store
            .claim_due(now, "late", lease_until, 100)
            .await
            .unwrap()
            .is_empty()
    );

    let mut tx = store.begin().await.unwrap();
    let sending = NotificationFilter {
        status: Some(Status::Sending),
        limit: 1000,
        ..Default::default()
    };
    let stored_a = tx.list_notifications("a", &sending).await.unwrap();
    let stored_b = tx.list_notifications("b", &sending).await.unwrap();
    assert_eq!(
        stored_a.len() + stored_b.len(),
        500,
        "the claims were committed"
    );
    tx.commit().await.unwrap();
}

async fn claim_takes_expired_leases_but_not_future_or_finished_rows(store: Store) {
    with_practices(&store, &["a"]).await;
    let now = at("2025-03-01T12:00:00Z");
    let mut expired = notification("a", "expired", "2025-03-01T11:00:00Z");
    expired.status = Status::Sending;
    expired.attempts = 1;
    expired.lease_owner = Some("dead-worker".into());
    expired.lease_until = Some(at("2025-03-01T11:59:59Z"));
    let mut leased = notification("a", "leased", "2025-03-01T11:30:00Z");
    leased.status = Status::Sending;
    leased.attempts = 1;
    leased.lease_owner = Some("live-worker".into());
    leased.lease_until = Some(at("2025-03-01T12:00:00Z"));
    let due = notification("a", "due", "2025-03-01T12:00:00Z");
    let future = notification("a", "future", "2025-03-01T12:00:00.001Z");
    let mut sent = notification("a", "sent", "2025-03-01T10:00:00Z");
    sent.status = Status::Sent;
    let mut suppressed = notification("a", "suppressed", "2025-03-01T10:00:00Z");
    suppressed.status = Status::Suppressed;
    suppressed.reason = Some(Reason::NoMobile);
    insert_notifications(&store, &[expired, leased, due, future, sent, suppressed]).await;

    let lease_until = now + SignedDuration::from_mins(5);
    let claimed = store.claim_due(now, "w2", lease_until, 10).await.unwrap();
    assert_eq!(keys(&claimed), ["expired", "due"]);
    assert_eq!(claimed[0].attempts, 2, "a re-claim counts another attempt");
    assert_eq!(claimed[0].lease_owner.as_deref(), Some("w2"));
    assert_eq!(claimed[1].attempts, 1);

    // The limit is honoured, most overdue first.
    let later = at("2025-03-01T12:10:00Z");
    let one = store
        .claim_due(later, "w3", later + SignedDuration::from_mins(5), 1)
        .await
        .unwrap();
    assert_eq!(
        keys(&one),
        ["expired"],
        "its lease (12:05) has expired at 12:10 and it is older"
    );
    let rest = store
        .claim_due(later, "w3", later + SignedDuration::from_mins(5), 10)
        .await
        .unwrap();
    assert_eq!(keys(&rest), ["leased", "due", "future"]);
    assert!(
        store
            .claim_due(later, "w3", later, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn next_due_is_the_earliest_pending_due_time_or_lease_end(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    assert_eq!(store.next_due().await.unwrap(), None);
    let mut sent = notification("a", "sent", "2025-03-01T08:00:00Z");
    sent.status = Status::Sent;
    insert_notifications(&store, &[sent]).await;
    assert_eq!(
        store.next_due().await.unwrap(),
        None,
        "finished rows are not work"
    );

    insert_notifications(&store, &[notification("b", "p", "2025-03-01T12:00:00Z")]).await;
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(at("2025-03-01T12:00:00Z"))
    );

    let mut sending = notification("a", "s", "2025-03-01T07:00:00Z");
    sending.status = Status::Sending;
    sending.lease_until = Some(at("2025-03-01T11:00:00Z"));
    insert_notifications(&store, &[sending]).await;
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(at("2025-03-01T11:00:00Z"))
    );

    insert_notifications(
        &store,
        &[notification("a", "early", "2025-03-01T10:00:00Z")],
    )
    .await;
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(at("2025-03-01T10:00:00Z"))
    );
}

/// Issue 18: practice A has 10,000 messages due before practice B's one; B's goes in the first
/// batch, and the practices share it rather than A taking it all or B waiting for A's burst.
async fn a_burst_in_one_practice_does_not_delay_another_practice_by_more_than_one_batch(
    store: Store,
) {
    with_practices(&store, &["a", "b"]).await;
    let now = at("2025-03-01T12:00:00Z");
    let burst: Vec<NotificationRow> = (0..10_000)
        .map(|i| {
            let mut n = notification("a", &format!("burst{i:05}"), "2025-03-01T08:00:00Z");
            n.due_at = at("2025-03-01T08:00:00Z") + SignedDuration::from_millis(i);
            n
        })
        .collect();
    let mut tx = store.begin().await.unwrap();
    tx.insert_notifications(&burst).await.unwrap();
    tx.commit().await.unwrap();
    insert_notifications(
        &store,
        &[notification("b", "lonely", "2025-03-01T11:59:00Z")],
    )
    .await;

    let lease_until = now + SignedDuration::from_mins(5);
    let first = store.claim_due(now, "w", lease_until, 100).await.unwrap();
    assert_eq!(first.len(), 100, "the batch is full");
    let from_b: Vec<&str> = first
        .iter()
        .filter(|n| n.practice_id == "b")
        .map(|n| n.key.as_str())
        .collect();
    assert_eq!(from_b, ["lonely"], "B's message is in the first batch");
    assert!(
        first
            .iter()
            .filter(|n| n.practice_id == "a")
            .map(|n| n.key.as_str())
            .eq((0..99)
                .map(|i| format!("burst{i:05}"))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str)),
        "A's share is its most overdue rows"
    );
    assert!(
        first.windows(2).all(|w| w[0].due_at <= w[1].due_at),
        "most overdue first"
    );

    // A later message of B, due while A's burst is still being worked through, waits one batch
    // at most too: B is served before A, which was served last.
    let next = now + SignedDuration::from_secs(1);
    insert_notifications(
        &store,
        &[notification("b", "second", "2025-03-01T12:00:01Z")],
    )
    .await;
    let second = store.claim_due(next, "w", lease_until, 100).await.unwrap();
    assert_eq!(second.len(), 100);
    assert_eq!(
        second.iter().filter(|n| n.practice_id == "b").count(),
        1,
        "B's second message is in the next batch"
    );
    // With one practice left, a batch is all A's.
    let third = store.claim_due(next, "w", lease_until, 100).await.unwrap();
    assert_eq!(third.len(), 100);
    assert!(third.iter().all(|n| n.practice_id == "a"));
}

/// The summary is never later than the truth: after claims (which recompute it), a retry set
/// back to pending, an expired lease and a row added earlier than everything else.
async fn the_due_summary_follows_claims_retries_and_expired_leases(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let now = at("2025-03-01T12:00:00Z");
    let lease_until = now + SignedDuration::from_mins(1);
    insert_notifications(
        &store,
        &[
            notification("a", "due", "2025-03-01T11:00:00Z"),
            notification("a", "later", "2025-03-01T13:00:00Z"),
        ],
    )
    .await;
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(at("2025-03-01T11:00:00Z"))
    );

    let mut claimed = store.claim_due(now, "w", lease_until, 10).await.unwrap();
    assert_eq!(keys(&claimed), ["due"]);
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(lease_until),
        "the claimed row's lease end comes before the later row"
    );

    // The hand-off failed for now: the row is pending again, due in 30 s.
    let mut row = claimed.remove(0);
    row.status = Status::Pending;
    row.lease_owner = None;
    row.lease_until = None;
    row.due_at = now + SignedDuration::from_secs(30);
    let mut tx = store.begin().await.unwrap();
    tx.update_notification(&row).await.unwrap();
    tx.commit().await.unwrap();
    let retry = now + SignedDuration::from_secs(30);
    assert!(store.next_due().await.unwrap().unwrap() <= retry);
    assert!(
        store
            .claim_due(now, "w", lease_until, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(retry),
        "an empty claim recomputes the summary"
    );

    // Claimed again, then the worker dies: the expired lease is due work.
    let claimed = store
        .claim_due(retry, "w", retry + SignedDuration::from_mins(1), 10)
        .await
        .unwrap();
    assert_eq!(keys(&claimed), ["due"]);
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(retry + SignedDuration::from_mins(1))
    );
    let after = retry + SignedDuration::from_mins(2);
    let again = store
        .claim_due(after, "w2", after + SignedDuration::from_mins(1), 10)
        .await
        .unwrap();
    assert_eq!(keys(&again), ["due"]);
    assert_eq!(again[0].attempts, 3);

    // Sent: only the later row is left.
    let mut sent = again[0].clone();
    sent.status = Status::Sent;
    sent.decided_at = Some(after);
    let mut tx = store.begin().await.unwrap();
    tx.update_notification_outcomes(&[sent]).await.unwrap();
    tx.commit().await.unwrap();
    // Until its lease would have ended, the summary may still name it (earlier is allowed);
    // the claim at that instant finds nothing and corrects it.
    let lease_end = after + SignedDuration::from_mins(1);
    assert!(store.next_due().await.unwrap().unwrap() <= lease_end);
    assert!(
        store
            .claim_due(lease_end, "w", lease_end, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(at("2025-03-01T13:00:00Z"))
    );

    // A row of another practice due earlier lowers the summary at once.
    insert_notifications(
        &store,
        &[notification("b", "early", "2025-03-01T12:30:00Z")],
    )
    .await;
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(at("2025-03-01T12:30:00Z"))
    );
}

/// Writers queue due messages one transaction at a time while three claimers race them; the
/// summary must never hide a due message (it would stay unclaimed): in the end every message was
/// claimed exactly once.
async fn no_message_is_lost_to_the_summary_while_writers_and_claimers_race(store: Store) {
    let practices = ["a", "b", "c", "d"];
    with_practices(&store, &practices).await;
    let now = at("2025-03-01T12:00:00Z");
    let lease_until = now + SignedDuration::from_hours(1);
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(practices.len()));
    let mut writers = Vec::new();
    for (w, practice) in practices.iter().enumerate() {
        let store = store.clone();
        let writing = writing.clone();
        let practice = practice.to_string();
        writers.push(tokio::spawn(async move {
            for i in 0..40i64 {
                let mut n =
                    notification(&practice, &format!("w{w}-{i:02}"), "2025-03-01T11:00:00Z");
                n.due_at = now - SignedDuration::from_secs((i * 7 + w as i64) % 60);
                let mut tx = store.begin().await.unwrap();
                tx.insert_notification(&n).await.unwrap();
                tx.commit().await.unwrap();
                tokio::task::yield_now().await;
            }
            writing.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }));
    }
    let mut claimers = Vec::new();
    for c in 0..3 {
        let store = store.clone();
        let writing = writing.clone();
        claimers.push(tokio::spawn(async move {
            let mut claimed = Vec::new();
            loop {
                let done = writing.load(std::sync::atomic::Ordering::SeqCst) == 0;
                let batch = store
                    .claim_due(now, &format!("c{c}"), lease_until, 5)
                    .await
                    .unwrap();
                if batch.is_empty() && done {
                    return claimed;
                }
                claimed.extend(batch.into_iter().map(|n| (n.practice_id, n.key)));
                tokio::task::yield_now().await;
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for claimer in claimers {
        for id in claimer.await.unwrap() {
            *seen.entry(id).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 160, "every message was claimed");
    assert!(seen.values().all(|&n| n == 1), "none twice");
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(lease_until),
        "only the leases are left"
    );
}

async fn sms_quota_of_two_admits_exactly_two_concurrent_messages(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut senders = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        senders.push(tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            let counted = tx
                .try_consume_sms("a", "2025-03", Some(6), 3)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            counted
        }));
    }
    let mut admitted = 0;
    for sender in senders {
        admitted += usize::from(sender.await.unwrap());
    }
    assert_eq!(admitted, 2);

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.sms_usage("a", "2025-03").await.unwrap(), (2, 6));
    assert_eq!(tx.sms_usage("a", "2025-04").await.unwrap(), (0, 0));
    assert_eq!(tx.sms_usage("b", "2025-03").await.unwrap(), (0, 0));
    assert!(
        tx.try_consume_sms("a", "2025-04", Some(2), 1)
            .await
            .unwrap(),
        "a new month"
    );
    assert!(
        !tx.try_consume_sms("a", "2025-03", Some(6), 1)
            .await
            .unwrap(),
        "the limit counts billed SMS (segments), not messages"
    );
    assert!(
        !tx.try_consume_sms("a", "2025-04", Some(2), 2)
            .await
            .unwrap(),
        "a message that would pass the limit is refused whole"
    );
    assert!(
        !tx.try_consume_sms("a", "2025-03", Some(0), 1)
            .await
            .unwrap()
    );
    for _ in 0..3 {
        assert!(
            tx.try_consume_sms("b", "2025-03", None, 2).await.unwrap(),
            "no limit"
        );
    }
    assert_eq!(tx.sms_usage("b", "2025-03").await.unwrap(), (3, 6));
    assert_eq!(
        tx.sms_usage("a", "2025-03").await.unwrap(),
        (2, 6),
        "refusals count nothing"
    );
    tx.commit().await.unwrap();
}

async fn inbox_insert_deduplicates_and_resolve_happens_once(store: Store) {
    with_practices(&store, &["a"]).await;
    let entry = |id: &str, inbox: &str, created: &str| InboxRow {
        practice_id: "a".into(),
        id: id.to_string(),
        inbox: inbox.to_string(),
        document: Some("d1".into()),
        patient_id: Some("p1".into()),
        title: "Document non consulté".into(),
        text: "Le patient n'a pas ouvert le document.".into(),
        created_at: at(created),
        resolved_at: None,
    };
    let first = entry("i1", "to_verify", "2025-03-01T09:00:00Z");
    let second = entry("i2", "to_verify", "2025-03-02T09:00:00Z");
    let mut centre = entry("i3", "centre", "2025-03-03T09:00:00Z");
    centre.document = None;
    centre.patient_id = None;

    let mut tx = store.begin().await.unwrap();
    assert!(tx.insert_inbox(&first).await.unwrap());
    assert!(
        !tx.insert_inbox(&InboxRow {
            title: "autre".into(),
            ..first.clone()
        })
        .await
        .unwrap()
    );
    assert!(tx.insert_inbox(&second).await.unwrap());
    assert!(tx.insert_inbox(&centre).await.unwrap());

    let ids_of = |rows: Vec<InboxRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids_of(tx.inbox("a", None, false).await.unwrap()),
        ["i3", "i2", "i1"],
        "newest first"
    );
    assert_eq!(
        tx.inbox("a", Some("to_verify"), false).await.unwrap(),
        vec![second.clone(), first.clone()]
    );

    let resolved_at = at("2025-03-04T09:00:00Z");
    assert!(tx.resolve_inbox("a", "i1", resolved_at).await.unwrap());
    assert!(
        !tx.resolve_inbox("a", "i1", at("2025-03-05T09:00:00Z"))
            .await
            .unwrap()
    );
    assert!(!tx.resolve_inbox("a", "nope", resolved_at).await.unwrap());
    assert_eq!(
        ids_of(tx.inbox("a", Some("to_verify"), false).await.unwrap()),
        ["i2"]
    );
    let with_resolved = tx.inbox("a", Some("to_verify"), true).await.unwrap();
    assert_eq!(
        with_resolved[1],
        InboxRow {
            resolved_at: Some(resolved_at),
            ..first
        }
    );
    assert_eq!(
        ids_of(tx.inbox("a", Some("centre"), true).await.unwrap()),
        ["i3"]
    );
    tx.commit().await.unwrap();
}

async fn task_definitions_and_runs_round_trip(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut task = TaskRow {
        practice_id: "a".into(),
        id: "birthday".into(),
        definition: json!({"id": "birthday", "every": "day", "at": "09:00"}),
        active: true,
        created_at: at("2025-01-01T00:00:00Z"),
    };
    let other = TaskRow {
        id: "recall".into(),
        active: false,
        ..task.clone()
    };
    let mut tx = store.begin().await.unwrap();
    tx.upsert_task(&task).await.unwrap();
    tx.upsert_task(&other).await.unwrap();
    task.active = false;
    task.definition = json!({"id": "birthday", "every": "day", "at": "10:00"});
    tx.upsert_task(&task).await.unwrap();
    assert_eq!(tx.task("a", "birthday").await.unwrap(), Some(task.clone()));
    assert_eq!(
        tx.tasks("a").await.unwrap(),
        vec![task.clone(), other.clone()]
    );

    assert_eq!(tx.last_task_run("a", "birthday").await.unwrap(), None);
    let run = |occurrence: &str, scheduled: &str| TaskRunRow {
        practice_id: "a".into(),
        task_id: "birthday".into(),
        occurrence: occurrence.to_string(),
        scheduled_for: at(scheduled),
        started_at: at(scheduled) + SignedDuration::from_secs(2),
        summary: json!({}),
    };
    assert!(
        tx.claim_task_run(&run("2025-03-01", "2025-03-01T08:00:00Z"))
            .await
            .unwrap()
    );
    assert!(
        tx.claim_task_run(&run("2025-03-03", "2025-03-03T08:00:00Z"))
            .await
            .unwrap()
    );
    assert!(
        tx.claim_task_run(&run("2025-03-02", "2025-03-02T08:00:00Z"))
            .await
            .unwrap()
    );
    assert!(
        !tx.claim_task_run(&run("2025-03-02", "2025-03-02T08:00:00Z"))
            .await
            .unwrap()
    );
    let summary = json!({"planned": 3, "patients": ["p1", "p2"]});
    tx.finish_task_run("a", "birthday", "2025-03-03", &summary)
        .await
        .unwrap();

    let last = tx.last_task_run("a", "birthday").await.unwrap().unwrap();
    assert_eq!(
        last,
        TaskRunRow {
            summary,
            ..run("2025-03-03", "2025-03-03T08:00:00Z")
        }
    );
    let runs = tx.task_runs("a", "birthday", 2).await.unwrap();
    assert_eq!(
        ids(&runs, |r| &r.occurrence),
        ["2025-03-03", "2025-03-02"],
        "latest first"
    );
    assert!(tx.task_runs("a", "recall", 10).await.unwrap().is_empty());

    assert!(tx.delete_task("a", "birthday").await.unwrap());
    assert!(!tx.delete_task("a", "birthday").await.unwrap());
    assert_eq!(tx.task("a", "birthday").await.unwrap(), None);
    assert_eq!(tx.tasks("a").await.unwrap(), vec![other]);
    tx.commit().await.unwrap();
}

async fn a_task_occurrence_is_claimed_once_even_concurrently(store: Store) {
    with_practices(&store, &["a"]).await;
    let run = TaskRunRow {
        practice_id: "a".into(),
        task_id: "birthday".into(),
        occurrence: "2025-03-01".into(),
        scheduled_for: at("2025-03-01T08:00:00Z"),
        started_at: at("2025-03-01T08:00:01Z"),
        summary: json!(null),
    };
    let mut nodes = Vec::new();
    for _ in 0..6 {
        let store = store.clone();
        let run = run.clone();
        nodes.push(tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            let won = tx.claim_task_run(&run).await.unwrap();
            tx.commit().await.unwrap();
            won
        }));
    }
    let mut winners = 0;
    for node in nodes {
        winners += usize::from(node.await.unwrap());
    }
    assert_eq!(winners, 1);
}

async fn task_notification_counts_cover_one_run_by_status_and_reason(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let row = |practice: &str, task: &str, key: &str, status: Status, reason: Option<Reason>| {
        let mut n = notification(practice, key, "2025-03-01T08:00:00Z");
        n.kind = Kind::Task;
        n.task = Some(task.to_string());
        n.status = status;
        n.reason = reason;
        n
    };
    insert_notifications(
        &store,
        &[
            row("a", "t1", "t:t1/2025-03-01/p1/email", Status::Sent, None),
            row(
                "a",
                "t1",
                "t:t1/2025-03-01/p2/email",
                Status::Suppressed,
                Some(Reason::NoEmail),
            ),
            row(
                "a",
                "t1",
                "t:t1/2025-03-01/p3/email",
                Status::Suppressed,
                Some(Reason::NoEmail),
            ),
            row(
                "a",
                "t1",
                "t:t1/2025-03-01/p4/email",
                Status::Suppressed,
                Some(Reason::PatientEmailDisabled),
            ),
            row("a", "t1", "t:t1/2025-03-01/p5/email", Status::Pending, None),
            // Another occurrence of the same task, one that only shares a prefix, another
            // task whose id differs only in case, and another practice: none of them counts.
            row("a", "t1", "t:t1/2025-03-02/p1/email", Status::Sent, None),
            row(
                "a",
                "t1",
                "t:t1/2025-03-01T08:00/p1/email",
                Status::Sent,
                None,
            ),
            row("a", "T1", "t:T1/2025-03-01/p9/email", Status::Sent, None),
            row("b", "t1", "t:t1/2025-03-01/p1/email", Status::Sent, None),
            // Wildcards in the prefix are literal.
            row(
                "a",
                "t_%",
                "t:t_%/2025-03-01/p1/email",
                Status::Failed,
                None,
            ),
            row(
                "a",
                "t_%",
                "t:tx%/2025-03-01/p2/email",
                Status::Failed,
                None,
            ),
        ],
    )
    .await;
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.task_notification_counts("a", "t1", "t:t1/2025-03-01/")
            .await
            .unwrap(),
        vec![
            (Status::Pending, None, 1),
            (Status::Sent, None, 1),
            (Status::Suppressed, Some(Reason::NoEmail), 2),
            (Status::Suppressed, Some(Reason::PatientEmailDisabled), 1),
        ]
    );
    assert_eq!(
        tx.task_notification_counts("a", "t_%", "t:t_%/2025-03-01/")
            .await
            .unwrap(),
        vec![(Status::Failed, None, 1)]
    );
    assert!(
        tx.task_notification_counts("a", "t1", "t:t1/2025-03-05/")
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();
}

async fn a_dropped_transaction_rolls_back(store: Store) {
    with_practices(&store, &["a"]).await;
    let mut tx = store.begin().await.unwrap();
    tx.upsert_patient(
        "a",
        &patient("p1", "Jean", "Dupont"),
        at("2025-02-01T00:00:00Z"),
    )
    .await
    .unwrap();
    tx.insert_notification(&notification("a", "n1", "2025-03-01T00:00:00Z"))
        .await
        .unwrap();
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.patient("a", "p1").await.unwrap(), None);
    assert_eq!(tx.notification("a", "n1").await.unwrap(), None);
    tx.commit().await.unwrap();
}

async fn practice_b_never_sees_practice_a_rows(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let now = at("2025-03-01T00:00:00Z");
    let mut tx = store.begin().await.unwrap();
    let doctor = Practitioner {
        id: "dr".into(),
        name: "Dr A".into(),
        email: None,
        mobile: None,
    };
    tx.upsert_practitioner("a", &doctor).await.unwrap();
    let motive = Motive {
        id: "m".into(),
        name: "M".into(),
        notifications: true,
        instructions: None,
    };
    tx.upsert_motive("a", &motive).await.unwrap();
    tx.upsert_patient("a", &patient("p1", "Jean", "Dupont"), now)
        .await
        .unwrap();
    tx.upsert_appointment("a", &appointment("a1", "p1", "2025-03-05T09:00:00Z"), now)
        .await
        .unwrap();
    tx.upsert_document("a", &document("d1", "p1", "2025-03-01T00:00:00Z"))
        .await
        .unwrap();
    tx.insert_event("a", now, now, "x", &json!({}))
        .await
        .unwrap();
    tx.save_idempotency("a", "k", "h", 200, &json!({}), now)
        .await
        .unwrap();
    let mut n = notification("a", "n1", "2025-03-04T09:00:00Z");
    n.document = Some("d1".into());
    tx.insert_notification(&n).await.unwrap();
    tx.try_consume_sms("a", "2025-03", None, 1).await.unwrap();
    tx.insert_api_key("a", "key", "hash", now).await.unwrap();
    let entry = InboxRow {
        practice_id: "a".into(),
        id: "i1".into(),
        inbox: "to_verify".into(),
        document: None,
        patient_id: Some("p1".into()),
        title: "t".into(),
        text: "x".into(),
        created_at: now,
        resolved_at: None,
    };
    tx.insert_inbox(&entry).await.unwrap();
    let task = TaskRow {
        practice_id: "a".into(),
        id: "t1".into(),
        definition: json!({}),
        active: true,
        created_at: now,
    };
    tx.upsert_task(&task).await.unwrap();
    let run = TaskRunRow {
        practice_id: "a".into(),
        task_id: "t1".into(),
        occurrence: "2025-03-01".into(),
        scheduled_for: now,
        started_at: now,
        summary: json!({}),
    };
    tx.claim_task_run(&run).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let b = "b";
    assert_eq!(tx.practitioner(b, "dr").await.unwrap(), None);
    assert!(tx.practitioners(b).await.unwrap().is_empty());
    assert_eq!(tx.motive(b, "m").await.unwrap(), None);
    assert!(tx.motives(b).await.unwrap().is_empty());
    assert_eq!(tx.patient(b, "p1").await.unwrap(), None);
    assert!(
        tx.search_patients(b, "dupont", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!tx.erase_patient(b, "p1", now).await.unwrap());
    assert!(!tx.is_erased(b, "p1").await.unwrap());
    assert!(tx.all_patients(b).await.unwrap().is_empty());
    assert_eq!(tx.appointment(b, "a1").await.unwrap(), None);
    assert!(
        tx.patient_appointments(b, "p1", now)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(tx.patient_history(b, "p1").await.unwrap().is_empty());
    let far = at("2030-01-01T00:00:00Z");
    assert!(
        tx.appointments_between(b, now, far)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        tx.patients_with_open_work(b, now, now)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(tx.document(b, "d1").await.unwrap(), None);
    assert!(tx.patient_documents(b, "p1").await.unwrap().is_empty());
    assert!(tx.events(b, 0, 100).await.unwrap().is_empty());
    assert_eq!(tx.idempotency(b, "k").await.unwrap(), None);
    assert!(tx.patient_notifications(b, "p1").await.unwrap().is_empty());
    assert_eq!(tx.notification(b, "n1").await.unwrap(), None);
    let all = NotificationFilter {
        limit: 100,
        ..Default::default()
    };
    assert!(tx.list_notifications(b, &all).await.unwrap().is_empty());
    assert!(
        tx.appointment_notifications(b, "a1")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(tx.document_notifications(b, "d1").await.unwrap().is_empty());
    assert!(tx.notification_counts(Some(b)).await.unwrap().is_empty());
    assert_eq!(tx.sms_usage(b, "2025-03").await.unwrap(), (0, 0));
    assert!(!tx.api_key_matches(b, "key", "hash").await.unwrap());
    assert!(tx.inbox(b, None, true).await.unwrap().is_empty());
    assert!(!tx.resolve_inbox(b, "i1", now).await.unwrap());
    assert_eq!(tx.task(b, "t1").await.unwrap(), None);
    assert!(tx.tasks(b).await.unwrap().is_empty());
    assert!(!tx.delete_task(b, "t1").await.unwrap());
    assert!(tx.task_runs(b, "t1", 10).await.unwrap().is_empty());
    assert_eq!(tx.last_task_run(b, "t1").await.unwrap(), None);

    // Writes under B's id leave A's rows alone.
    let mut foreign = n.clone();
    foreign.practice_id = b.into();
    foreign.status = Status::Failed;
    tx.update_notification(&foreign).await.unwrap();
    tx.finish_task_run(b, "t1", "2025-03-01", &json!({"x": 1}))
        .await
        .unwrap();
    tx.update_practice_settings(b, &Map::new()).await.unwrap();
    assert_eq!(tx.notification("a", "n1").await.unwrap(), Some(n));
    assert_eq!(tx.last_task_run("a", "t1").await.unwrap(), Some(run));
    assert_eq!(tx.practice("a").await.unwrap(), Some(practice("a")));
    assert!(tx.search_patients("a", "dupont", 10).await.unwrap().len() == 1);
    assert!(tx.inbox("a", None, false).await.unwrap().len() == 1);

    // And B's own rows with the same ids are separate.
    tx.upsert_patient(b, &patient("p1", "Autre", "Personne"), now)
        .await
        .unwrap();
    assert_eq!(
        tx.patient("a", "p1").await.unwrap().unwrap().last_name,
        "Dupont"
    );
    assert_eq!(
        tx.patient(b, "p1").await.unwrap().unwrap().last_name,
        "Personne"
    );
    tx.commit().await.unwrap();

    let unique: HashSet<_> = claim_everything(&store).await;
    assert!(unique.iter().all(|(p, _)| p == "a"), "only A had a due row");
}

/// Claims everything due by 2030 (claims are not per practice: a worker serves them all).
async fn claim_everything(store: &Store) -> HashSet<(String, String)> {
    let far = at("2030-01-01T00:00:00Z");
    store
        .claim_due(far, "w", far, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.practice_id, n.key))
        .collect()
}

#[test]
fn the_database_name_is_replaced_in_postgres_urls() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://h:5432", "x"),
        "postgres://h:5432/x"
    );
}

// ---------------------------------------------------------------------------------------------
// Backend-specific behaviour
// ---------------------------------------------------------------------------------------------

/// Several processes may start at once on a fresh database; every one of them must come up.
async fn concurrent_migrations_all_succeed(flavor: Flavor) {
    let (first, cleanup) = open(flavor).await;
    let url = match &cleanup {
        Cleanup::Files(path) => format!("sqlite://{}", path.display()),
        Cleanup::PostgresDatabase { admin_url, name } => with_database(admin_url, name),
        Cleanup::Nothing => unreachable!("an in-memory database is private to its store"),
    };
    let mut stores = vec![first];
    for _ in 0..3 {
        stores.push(Store::connect(&url).await.unwrap());
    }
    let runs: Vec<_> = stores
        .iter()
        .map(|store| {
            let store = store.clone();
            tokio::spawn(async move { store.migrate().await })
        })
        .collect();
    let mut failures = Vec::new();
    for run in runs {
        if let Err(e) = run.await.unwrap() {
            failures.push(e.to_string());
        }
    }
    with_practices(&stores[0], &["a"]).await;
    for store in &stores {
        store.close().await;
    }
    clean(cleanup).await;
    assert!(failures.is_empty(), "{failures:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_all_succeed_on_a_sqlite_file() {
    concurrent_migrations_all_succeed(Flavor::SqliteFile).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_all_succeed_on_postgres() {
    concurrent_migrations_all_succeed(Flavor::Postgres).await
}

#[tokio::test]
async fn a_sqlite_file_is_in_wal_mode_with_foreign_keys_enforced() {
    let (store, cleanup) = open(Flavor::SqliteFile).await;
    store.migrate().await.unwrap();
    let Cleanup::Files(path) = &cleanup else {
        unreachable!()
    };
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mode: (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(&mut other)
        .await
        .unwrap();
    other.close().await.ok();
    assert_eq!(mode.0, "wal");
    // No practice "ghost": the REFERENCES clause refuses the row.
    let mut tx = store.begin().await.unwrap();
    let refused = tx
        .insert_notification(&notification("ghost", "n", "2025-03-01T00:00:00Z"))
        .await;
    drop(tx);
    store.close().await;
    clean(cleanup).await;
    assert!(refused.is_err(), "foreign keys are enforced");
}

#[tokio::test]
async fn each_in_memory_store_is_private() {
    let one = Store::connect("sqlite::memory:").await.unwrap();
    let two = Store::connect("sqlite::memory:").await.unwrap();
    one.migrate().await.unwrap();
    two.migrate().await.unwrap();
    with_practices(&one, &["a"]).await;
    let mut tx = two.begin().await.unwrap();
    assert!(tx.practices().await.unwrap().is_empty());
    tx.commit().await.unwrap();
    let mut tx = one.begin().await.unwrap();
    assert_eq!(tx.practices().await.unwrap().len(), 1);
    tx.commit().await.unwrap();
}

/// Ingestion and dispatch read and write whole batches; each batch function must answer exactly
/// what a loop over its single-row counterpart answers, across chunk boundaries and practices.
async fn batch_reads_and_writes_answer_as_their_single_row_counterparts(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let now = at("2025-02-01T00:00:00Z");
    let since = at("2025-03-01T00:00:00Z");
    let mut tx = store.begin().await.unwrap();
    for (id, first) in [("p1", "Jean"), ("p2", "Marie"), ("p3", "Paul")] {
        tx.upsert_patient("a", &patient(id, first, "Dupont"), now)
            .await
            .unwrap();
    }
    tx.upsert_patient("b", &patient("p9", "Autre", "Cabinet"), now)
        .await
        .unwrap();
    tx.erase_patient("a", "p3", now).await.unwrap();
    let dr = Practitioner {
        id: "dr-martin".into(),
        name: "Dr Martin".into(),
        email: None,
        mobile: None,
    };
    tx.upsert_practitioner("a", &dr).await.unwrap();
    let consultation = Motive {
        id: "consultation".into(),
        name: "Consultation".into(),
        notifications: true,
        instructions: None,
    };
    tx.upsert_motive("a", &consultation).await.unwrap();

    // Patients: 1,200 ids (three chunks), three that exist, one of them erased.
    let mut asked: Vec<String> = (0..1200).map(|i| format!("x{i}")).collect();
    asked.extend(["p1", "p3", "p9", "p1"].map(String::from));
    let mut found = tx.patients_by_id("a", &asked).await.unwrap();
    found.sort_by(|x, y| x.0.id.cmp(&y.0.id));
    assert_eq!(
        found,
        [
            (tx.patient("a", "p1").await.unwrap().unwrap(), false),
            (
                Patient {
                    id: "p3".into(),
                    ..Patient::default()
                },
                true
            ),
        ]
    );
    assert_eq!(
        tx.practitioners_by_id("a", &["dr-martin".into(), "nobody".into()])
            .await
            .unwrap(),
        [dr]
    );
    assert!(
        tx.practitioners_by_id("b", &["dr-martin".into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        tx.motives_by_id("a", &["consultation".into()])
            .await
            .unwrap(),
        [consultation]
    );
    assert!(tx.motives_by_id("a", &[]).await.unwrap().is_empty());

    // Appointments written together read back as written one by one; an upsert replaces.
    let mut a1 = appointment("a1", "p1", "2025-03-10T09:00:00Z");
    let a2 = appointment("a2", "p1", "2025-03-05T09:00:00Z");
    let a3 = appointment("a3", "p2", "2025-03-07T09:00:00Z");
    // Before `since`, but cancelled after it: still part of the patient's open work.
    let mut old = appointment("a4", "p2", "2025-02-20T09:00:00Z");
    old.status = AppointmentStatus::Cancelled {
        at: at("2025-03-02T00:00:00Z"),
        by: CancelledBy::Patient,
        excused: false,
    };
    let gone = appointment("a5", "p2", "2025-02-10T09:00:00Z");
    tx.upsert_appointment("a", &a1, now).await.unwrap();
    a1.start = at("2025-03-11T09:00:00Z");
    tx.upsert_appointments(
        "a",
        &[
            a1.clone(),
            a2.clone(),
            a3.clone(),
            old.clone(),
            gone.clone(),
        ],
        now,
    )
    .await
    .unwrap();
    tx.upsert_appointment("b", &appointment("a9", "p9", "2025-03-10T09:00:00Z"), now)
        .await
        .unwrap();
    for a in [&a1, &a2, &a3, &old, &gone] {
        assert_eq!(tx.appointment("a", &a.id).await.unwrap().as_ref(), Some(a));
    }
    let mut by_id = tx
        .appointments_by_id("a", &["a1".into(), "a3".into(), "a9".into()])
        .await
        .unwrap();
    by_id.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(by_id, [a1.clone(), a3.clone()]);
    let patients: Vec<String> = ["p1", "p2", "p9"].map(String::from).to_vec();
    let mut one_by_one = Vec::new();
    for p in &patients {
        one_by_one.extend(tx.patient_appointments("a", p, since).await.unwrap());
    }
    assert_eq!(
        tx.appointments_of_patients("a", &patients, since)
            .await
            .unwrap(),
        one_by_one
    );
    assert_eq!(ids(&one_by_one, |a| &a.id), ["a2", "a1", "a4", "a3"]);

    // Documents.
    tx.upsert_document("a", &document("d2", "p2", "2025-02-03T00:00:00Z"))
        .await
        .unwrap();
    tx.upsert_document("a", &document("d1", "p1", "2025-02-02T00:00:00Z"))
        .await
        .unwrap();
    tx.upsert_document("a", &document("d0", "p1", "2025-02-01T00:00:00Z"))
        .await
        .unwrap();
    let mut one_by_one = Vec::new();
    for p in &patients {
        one_by_one.extend(tx.patient_documents("a", p).await.unwrap());
    }
    assert_eq!(
        tx.documents_of_patients("a", &patients).await.unwrap(),
        one_by_one
    );
    assert_eq!(ids(&one_by_one, |d| &d.id), ["d0", "d1", "d2"]);

    // Events: numbers continue those handed out one by one.
    let body = json!({"n": 1});
    assert_eq!(tx.insert_event("a", now, now, "x", &body).await.unwrap(), 1);
    let later = at("2025-02-01T00:00:05Z");
    let new = NewEvent {
        at: now,
        received_at: later,
        event_type: "y",
        body: &body,
    };
    let many: Vec<NewEvent<'_>> = (0..450).map(|_| new.clone()).collect();
    let seqs = tx.insert_events("a", &many).await.unwrap();
    assert_eq!(seqs, (2..=451).collect::<Vec<i64>>());
    assert!(tx.insert_events("a", &[]).await.unwrap().is_empty());
    assert_eq!(
        tx.insert_event("a", now, now, "x", &body).await.unwrap(),
        452
    );
    let events = tx.events("a", 450, 1).await.unwrap();
    assert_eq!(events[0].seq, 451);
    assert_eq!(events[0].event_type, "y");
    assert_eq!(events[0].received_at, later);
    assert_eq!(events[0].body, body);
    assert_eq!(tx.insert_events("b", &many[..2]).await.unwrap(), [1, 2]);

    // Notifications: 450 rows (two statements), every column, both patients.
    let rows: Vec<NotificationRow> = (0..450)
        .map(|i| {
            let mut n = notification("a", &format!("k{i:03}"), "2025-03-09T09:00:00Z");
            if i % 2 == 1 {
                n.patient_id = "p2".into();
                n.window_end = Some(at("2025-03-10T09:00:00Z"));
                n.document = Some("d2".into());
                n.rendered = Some(json!({"text": format!("n°{i}")}));
                n.attempts = i;
                n.reason = Some(Reason::QuotaExhausted);
                n.status = Status::Suppressed;
            }
            n
        })
        .collect();
    tx.insert_notifications(&rows).await.unwrap();
    tx.insert_notification(&notification("b", "k001", "2025-03-09T09:00:00Z"))
        .await
        .unwrap();
    let mut one_by_one = Vec::new();
    for p in &patients {
        one_by_one.extend(tx.patient_notifications("a", p).await.unwrap());
    }
    assert_eq!(one_by_one.len(), 450);
    assert_eq!(
        tx.notifications_of_patients("a", &patients).await.unwrap(),
        one_by_one
    );
    for n in [&rows[0], &rows[1], &rows[449]] {
        assert_eq!(
            tx.notification("a", &n.key).await.unwrap().as_ref(),
            Some(n)
        );
    }
    tx.commit().await.unwrap();

    // A duplicate key is an error, as for one row (and spoils the transaction on PostgreSQL).
    let mut tx = store.begin().await.unwrap();
    assert!(tx.insert_notifications(&rows[..1]).await.is_err());
    drop(tx);

    let mut tx = store.begin().await.unwrap();
    let mut updated: Vec<NotificationRow> = rows
        .iter()
        .map(|n| {
            let mut u = n.clone();
            u.status = Status::Sent;
            u.reason = None;
            u.window_end = None;
            u.document = None;
            u.rendered = Some(json!({"text": "envoyé"}));
            u.provider_id = Some(format!("prov-{}", n.key));
            u.lease_owner = Some("w1".into());
            u.lease_until = Some(at("2025-03-09T09:01:00Z"));
            u.decided_at = Some(at("2025-03-09T09:00:00.5Z"));
            u.attempts = n.attempts + 1;
            u.updated_at = at("2025-03-09T09:00:01Z");
            u.created_at = at("2030-01-01T00:00:00Z"); // never written by an update
            u
        })
        .collect();
    // A row that does not exist is left alone, as `update_notification` leaves it.
    updated.push(notification("a", "nowhere", "2025-03-09T09:00:00Z"));
    tx.update_notifications(&updated).await.unwrap();
    tx.update_notifications(&[]).await.unwrap();
    assert_eq!(tx.notification("a", "nowhere").await.unwrap(), None);
    for (n, u) in rows.iter().zip(&updated) {
        assert_eq!(
            tx.notification("a", &n.key).await.unwrap().unwrap(),
            NotificationRow {
                created_at: n.created_at,
                ..u.clone()
            }
        );
    }
    assert_eq!(
        tx.notification("b", "k001").await.unwrap().unwrap().status,
        Status::Pending,
        "the other practice's row with the same key is untouched"
    );

    // A dispatch outcome writes its own columns only; the planner's stay as stored.
    let stored = tx.notification("a", "k001").await.unwrap().unwrap();
    let mut outcome = stored.clone();
    outcome.status = Status::Failed;
    outcome.reason = Some(Reason::WindowPassed);
    outcome.decided_at = None;
    outcome.attempts = 9;
    outcome.lease_owner = None;
    outcome.lease_until = None;
    outcome.last_error = Some("refusé".into());
    outcome.rendered = None;
    outcome.provider_id = None;
    outcome.updated_at = at("2025-03-09T10:00:00Z");
    let mut planner = outcome.clone();
    planner.patient_id = "p9".into();
    planner.rule = "other".into();
    planner.recipient = Recipient::Patient("p9".into());
    planner.appointments = vec!["a9".into()];
    planner.document = Some("d9".into());
    planner.due_at = at("2030-01-01T00:00:00Z");
    planner.window_end = Some(at("2030-01-02T00:00:00Z"));
    planner.created_at = at("2030-01-01T00:00:00Z");
    tx.update_notification_outcomes(&[planner]).await.unwrap();
    assert_eq!(
        tx.notification("a", "k001").await.unwrap().unwrap(),
        outcome
    );
    tx.commit().await.unwrap();
}

/// A read path that writes by mistake fails on every backend, not only on PostgreSQL or under
/// contention on SQLite; the connection it used writes again in the next write transaction; and
/// only write transactions count as writes.
async fn a_read_transaction_refuses_writes_and_is_not_counted_as_one(store: Store) {
    with_practices(&store, &["a"]).await;
    let writes = store.write_transactions();

    let mut tx = store.begin_read().await.unwrap();
    assert_eq!(tx.practice("a").await.unwrap(), Some(practice("a")));
    assert!(
        tx.insert_practice(&practice("b")).await.is_err(),
        "a read transaction refuses a write"
    );
    drop(tx);
    // The same again with a commit, so that the connection returns to the pool both ways.
    let mut tx = store.begin_read().await.unwrap();
    assert!(tx.practice("b").await.unwrap().is_none());
    tx.commit().await.unwrap();
    assert_eq!(store.write_transactions(), writes, "reads are not writes");

    let mut tx = store.begin().await.unwrap();
    tx.insert_practice(&practice("b")).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.write_transactions(), writes + 1);
    let mut tx = store.begin_read().await.unwrap();
    assert_eq!(tx.practice("b").await.unwrap(), Some(practice("b")));
    tx.commit().await.unwrap();
}

/// Practice a's notifications in pages of two, each page starting after the previous page's
/// last (due_at, key), in either order.
async fn pages_of_two(tx: &mut rappel_store::Tx, newest_first: bool) -> Vec<Vec<String>> {
    let mut filter = NotificationFilter {
        limit: 2,
        newest_first,
        ..Default::default()
    };
    let mut pages = Vec::new();
    loop {
        let page = tx.list_notifications("a", &filter).await.unwrap();
        let Some(last) = page.last() else {
            return pages;
        };
        filter.cursor = Some((last.due_at, last.key.clone()));
        pages.push(page.iter().map(|r| r.key.clone()).collect());
    }
}

async fn delivery_reports_are_kept_once_each_oldest_first_and_erased_with_the_patient(
    store: Store,
) {
    with_practices(&store, &["a", "b"]).await;
    let report = |practice: &str, at_text: &str, outcome: &str, detail: &str| {
        rappel_store::DeliveryReportRow {
            practice_id: practice.into(),
            notification_key: "k1".into(),
            patient_id: "p1".into(),
            at: at(at_text),
            source: "dsn".into(),
            outcome: outcome.into(),
            detail: Some(detail.into()),
        }
    };
    let mut tx = store.begin().await.unwrap();
    let later = report("a", "2025-03-10T09:30:00Z", "failed", "5.1.1 user unknown");
    let earlier = report("a", "2025-03-10T09:10:00Z", "delayed", "4.4.1 try again");
    assert!(tx.insert_delivery_report(&later).await.unwrap());
    assert!(tx.insert_delivery_report(&earlier).await.unwrap());
    // The same report received again is stored once, whenever it comes.
    let mut again = later.clone();
    again.at = at("2025-03-10T10:00:00Z");
    assert!(!tx.insert_delivery_report(&again).await.unwrap());
    assert!(
        tx.insert_delivery_report(&report("b", "2025-03-10T09:00:00Z", "failed", "x"))
            .await
            .unwrap()
    );
    let listed = tx.delivery_reports("a", "k1").await.unwrap();
    assert_eq!(listed, vec![earlier, later]);
    assert_eq!(tx.delivery_reports("b", "k1").await.unwrap().len(), 1);
    assert!(tx.delivery_reports("a", "k2").await.unwrap().is_empty());
    // A provider's words may quote the patient's address: erasure forgets them, in that
    // practice only.
    tx.upsert_patient(
        "a",
        &patient("p1", "Jeanne", "Dupont"),
        at("2025-03-01T00:00:00Z"),
    )
    .await
    .unwrap();
    assert!(
        tx.erase_patient("a", "p1", at("2025-03-11T00:00:00Z"))
            .await
            .unwrap()
    );
    assert!(tx.delivery_reports("a", "k1").await.unwrap().is_empty());
    assert_eq!(tx.delivery_reports("b", "k1").await.unwrap().len(), 1);
    tx.commit().await.unwrap();
}

async fn history_older_than_the_horizon_goes_in_batches_and_open_work_stays(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let horizon = at("2025-01-01T00:00:00Z");
    let finished = |practice: &str, key: &str, due: &str, status: Status| {
        let mut row = notification(practice, key, due);
        row.status = status;
        row.decided_at = Some(at(due) + SignedDuration::from_mins(5));
        row.rendered = Some("Bonjour Jeanne, rappel de votre rendez-vous".into());
        row
    };
    let mut rows = vec![
        finished("a", "old-sent", "2024-06-01T08:00:00Z", Status::Sent),
        finished(
            "a",
            "old-delivered",
            "2024-06-02T08:00:00Z",
            Status::Delivered,
        ),
        finished("a", "old-failed", "2024-06-03T08:00:00Z", Status::Failed),
        finished(
            "a",
            "old-suppressed",
            "2024-06-04T08:00:00Z",
            Status::Suppressed,
        ),
        // Decided after the horizon although due before it: kept.
        {
            let mut row = finished("a", "decided-late", "2024-12-31T23:00:00Z", Status::Sent);
            row.decided_at = Some(at("2025-01-01T00:30:00Z"));
            row
        },
        finished("a", "recent", "2025-02-01T08:00:00Z", Status::Sent),
        // Another practice's old rows: not this call's.
        finished("b", "old-sent", "2024-06-01T08:00:00Z", Status::Sent),
    ];
    // Open work whatever its age stays: a planned and a claimed message.
    rows.push(notification("a", "old-pending", "2024-05-01T08:00:00Z"));
    let mut sending = notification("a", "old-sending", "2024-05-02T08:00:00Z");
    sending.status = Status::Sending;
    rows.push(sending);
    insert_notifications(&store, &rows).await;

    let mut tx = store.begin().await.unwrap();
    for (practice, key) in [("a", "old-sent"), ("a", "recent"), ("b", "old-sent")] {
        let report = rappel_store::DeliveryReportRow {
            practice_id: practice.into(),
            notification_key: key.into(),
            patient_id: "p1".into(),
            at: at("2024-06-01T09:00:00Z"),
            source: "twilio".into(),
            outcome: "delivered".into(),
            detail: None,
        };
        assert!(tx.insert_delivery_report(&report).await.unwrap());
    }
    for (id, resolved) in [
        ("handled-old", Some("2024-04-01T09:00:00Z")),
        ("handled-recent", Some("2025-01-15T09:00:00Z")),
        ("open-old", None),
    ] {
        let item = InboxRow {
            practice_id: "a".into(),
            id: id.into(),
            inbox: "to_verify".into(),
            document: None,
            patient_id: Some("p1".into()),
            title: "Email refusé".into(),
            text: "L'adresse n'existe pas.".into(),
            created_at: at("2024-03-01T09:00:00Z"),
            resolved_at: None,
        };
        assert!(tx.insert_inbox(&item).await.unwrap());
        if let Some(when) = resolved {
            assert!(tx.resolve_inbox("a", id, at(when)).await.unwrap());
        }
    }
    let delivery = |id: &str, created: &str, status: rappel_store::DeliveryStatus| {
        rappel_store::WebhookDelivery {
            practice_id: "a".into(),
            id: id.into(),
            event_type: "notification.sent".into(),
            payload: json!({"id": id}),
            attempts: 1,
            next_attempt_at: at(created),
            status,
            last_error: None,
            created_at: at(created),
        }
    };
    use rappel_store::DeliveryStatus::{Delivered, Failed, Pending};
    for d in [
        delivery("w-old-delivered", "2024-06-01T08:00:00Z", Delivered),
        delivery("w-old-failed", "2024-06-01T08:00:00Z", Failed),
        delivery("w-old-pending", "2024-06-01T08:00:00Z", Pending),
        delivery("w-recent", "2025-02-01T08:00:00Z", Delivered),
    ] {
        assert!(tx.insert_webhook_delivery(&d).await.unwrap());
    }
    // Received SMS: handled long ago goes, handled recently and never handled stay.
    for (id, handled) in [
        ("r-handled-old", Some("2024-04-01T09:00:00Z")),
        ("r-handled-recent", Some("2025-01-20T09:00:00Z")),
        ("r-open-old", None),
    ] {
        let message = rappel_store::ReceivedMessageRow {
            practice_id: "a".into(),
            id: id.into(),
            patient_id: "p1".into(),
            appointment_id: None,
            provider: "twilio".into(),
            keyword: None,
            body: "Je serai en retard".into(),
            received_at: at("2024-03-01T09:00:00Z"),
            handled_at: handled.map(at),
        };
        assert!(tx.insert_received_message(&message).await.unwrap());
    }
    // Appointment links: expired before the horizon goes.
    for (hash, expires) in [
        ("h-old", "2024-06-01T08:00:00Z"),
        ("h-recent", "2025-03-01T08:00:00Z"),
    ] {
        tx.insert_appointment_link(&rappel_store::AppointmentLink {
            practice_id: "a".into(),
            token_hash: hash.into(),
            appointment_id: "a1".into(),
            patient_id: "p1".into(),
            start: at(expires),
            expires_at: at(expires),
            created_at: at("2024-05-01T08:00:00Z"),
        })
        .await
        .unwrap();
    }
    // The last SMS to a number: a send before the horizon no longer routes a reply.
    tx.record_sms_sent(
        "+33611111111",
        "a",
        "p1",
        "old-sent",
        at("2024-06-01T08:00:00Z"),
    )
    .await
    .unwrap();
    tx.record_sms_sent(
        "+33622222222",
        "a",
        "p2",
        "recent",
        at("2025-02-01T08:00:00Z"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // Batches of two: the four old finished messages take two full batches and an empty one.
    let mut batches = Vec::new();
    loop {
        let mut tx = store.begin().await.unwrap();
        let purged = tx.purge_history("a", horizon, 2).await.unwrap();
        tx.commit().await.unwrap();
        batches.push(purged);
        if !purged.filled(2) {
            break;
        }
    }
    let total = batches
        .iter()
        .fold(rappel_store::Purged::default(), |mut sum, b| {
            sum += *b;
            sum
        });
    assert_eq!(batches.len(), 3, "{batches:?}");
    assert_eq!(
        total,
        rappel_store::Purged {
            notifications: 4,
            delivery_reports: 1,
            inbox_entries: 1,
            webhook_deliveries: 2,
            received_messages: 1,
            appointment_links: 1,
            sms_last_sent: 1,
        }
    );

    let mut tx = store.begin_read().await.unwrap();
    for key in ["old-sent", "old-delivered", "old-failed", "old-suppressed"] {
        assert!(tx.notification("a", key).await.unwrap().is_none(), "{key}");
    }
    for key in ["decided-late", "recent", "old-pending", "old-sending"] {
        assert!(tx.notification("a", key).await.unwrap().is_some(), "{key}");
    }
    assert!(tx.notification("b", "old-sent").await.unwrap().is_some());
    assert!(
        tx.delivery_reports("a", "old-sent")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(tx.delivery_reports("a", "recent").await.unwrap().len(), 1);
    assert_eq!(tx.delivery_reports("b", "old-sent").await.unwrap().len(), 1);
    let mut inbox: Vec<String> = tx
        .inbox("a", None, true)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    inbox.sort();
    assert_eq!(inbox, ["handled-recent", "open-old"]);
    let mut webhooks: Vec<String> = tx
        .webhook_deliveries("a", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    webhooks.sort();
    assert_eq!(webhooks, ["w-old-pending", "w-recent"]);
    let mut received: Vec<String> = tx
        .received_messages("a", true, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    received.sort();
    assert_eq!(received, ["r-handled-recent", "r-open-old"]);
    assert!(
        tx.appointment_link_by_hash("h-old")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        tx.appointment_link_by_hash("h-recent")
            .await
            .unwrap()
            .is_some()
    );
    assert!(tx.last_sms_to("+33611111111").await.unwrap().is_none());
    assert!(tx.last_sms_to("+33622222222").await.unwrap().is_some());
    tx.commit().await.unwrap();
    // The purged link's route went with it: its hash is free again.
    let mut tx = store.begin().await.unwrap();
    tx.insert_appointment_link(&rappel_store::AppointmentLink {
        practice_id: "b".into(),
        token_hash: "h-old".into(),
        appointment_id: "a9".into(),
        patient_id: "p9".into(),
        start: at("2025-06-01T08:00:00Z"),
        expires_at: at("2025-06-01T08:00:00Z"),
        created_at: at("2025-05-01T08:00:00Z"),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn appointment_links_and_answers_round_trip_and_are_erased_with_the_patient(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let link = |practice: &str, hash: &str| rappel_store::AppointmentLink {
        practice_id: practice.into(),
        token_hash: hash.into(),
        appointment_id: "a1".into(),
        patient_id: "p1".into(),
        start: at("2025-03-12T09:00:00Z"),
        expires_at: at("2025-03-12T09:00:00Z"),
        created_at: at("2025-03-10T12:00:00Z"),
    };
    let answer = |practice: &str, answer: &str, at_text: &str| rappel_store::AppointmentAnswerRow {
        practice_id: practice.into(),
        appointment_id: "a1".into(),
        patient_id: "p1".into(),
        answer: answer.into(),
        channel: "link".into(),
        start: at("2025-03-12T09:00:00Z"),
        at: at(at_text),
    };
    let mut tx = store.begin().await.unwrap();
    tx.insert_appointment_link(&link("a", "h-a")).await.unwrap();
    tx.insert_appointment_link(&link("b", "h-b")).await.unwrap();
    tx.commit().await.unwrap();
    // A token hash is unique across practices: the link names no practice.
    let mut tx = store.begin().await.unwrap();
    assert!(tx.insert_appointment_link(&link("b", "h-a")).await.is_err());
    drop(tx);

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.appointment_link_by_hash("h-a").await.unwrap(),
        Some(link("a", "h-a"))
    );
    assert_eq!(tx.appointment_link_by_hash("h-x").await.unwrap(), None);
    // The latest answer replaces the one before.
    tx.put_appointment_answer(&answer("a", "confirmed", "2025-03-10T13:00:00Z"))
        .await
        .unwrap();
    tx.put_appointment_answer(&answer("a", "cancelled", "2025-03-10T14:00:00Z"))
        .await
        .unwrap();
    tx.put_appointment_answer(&answer("b", "confirmed", "2025-03-10T13:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        tx.appointment_answer("a", "a1").await.unwrap(),
        Some(answer("a", "cancelled", "2025-03-10T14:00:00Z"))
    );
    assert_eq!(
        tx.appointment_answers_between("a", at("2025-03-12T00:00:00Z"), at("2025-03-13T00:00:00Z"))
            .await
            .unwrap(),
        vec![answer("a", "cancelled", "2025-03-10T14:00:00Z")]
    );
    assert!(
        tx.appointment_answers_between("a", at("2025-03-13T00:00:00Z"), at("2025-03-14T00:00:00Z"))
            .await
            .unwrap()
            .is_empty()
    );
    // Erasure forgets the patient's links and answers, in that practice only.
    tx.upsert_patient(
        "a",
        &patient("p1", "Jeanne", "Dupont"),
        at("2025-03-01T00:00:00Z"),
    )
    .await
    .unwrap();
    assert!(
        tx.erase_patient("a", "p1", at("2025-03-11T00:00:00Z"))
            .await
            .unwrap()
    );
    assert_eq!(tx.appointment_link_by_hash("h-a").await.unwrap(), None);
    assert_eq!(tx.appointment_answer("a", "a1").await.unwrap(), None);
    assert!(tx.appointment_link_by_hash("h-b").await.unwrap().is_some());
    assert!(tx.appointment_answer("b", "a1").await.unwrap().is_some());
    tx.commit().await.unwrap();
}
