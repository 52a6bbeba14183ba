//! The store's conformance suite: every test function of its modules runs, unchanged, against a SQLite
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

#[path = "../common/mod.rs"]
mod common;
use common::*;

mod backend;
mod directory;
mod events;
mod history;
mod isolation;
mod notifications;
mod queue;
mod tasks;
use directory::*;
use events::*;
use history::*;
use isolation::*;
use notifications::*;
use queue::*;
use tasks::*;

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
    keys_page_in_the_order_of_their_bytes,
    appointment_and_document_notifications_match_exact_ids,
    notification_counts_group_by_status_and_channel,
    concurrent_claimers_never_get_the_same_notification,
    claim_takes_expired_leases_but_not_future_or_finished_rows,
    next_due_is_the_earliest_pending_due_time_or_lease_end,
    a_burst_in_one_practice_does_not_delay_another_practice_by_more_than_one_batch,
    the_due_summary_follows_claims_retries_and_expired_leases,
    a_full_claim_leaves_the_summary_due_and_a_short_one_recomputes_it,
    a_claimed_row_reads_as_sending_in_lists_and_counts_and_pending_again_without_its_lease,
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
