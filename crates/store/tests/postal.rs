//! Conformance of what letters cost (`notifications.cost_cents`) and of the practices' logos
//! (`practice_logos`), on SQLite (file and memory) and PostgreSQL, with the harness of
//! `common/mod.rs`.

use jiff::Timestamp;
use rappel_domain::notification::{Channel, Kind, Recipient};
use rappel_store::{LogoRow, NotificationCost, NotificationRow, PracticeRow, Status, Store};
use serde_json::Map;

mod common;
use common::*;

conformance!(
    a_cost_is_recorded_beside_a_sent_row_and_survives_later_updates,
    postal_costs_are_the_practices_costed_letters_within_the_period,
    a_logo_is_stored_replaced_read_back_and_deleted_per_practice,
);

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

async fn seed(store: &Store, practices: &[&str]) {
    let mut tx = store.begin().await.unwrap();
    for id in practices {
        tx.insert_practice(&PracticeRow {
            id: id.to_string(),
            name: format!("Cabinet {id}"),
            preset: "lifen".into(),
            policy: None,
            timezone: "Europe/Paris".into(),
            settings: Map::new(),
            created_at: at("2026-01-01T08:00:00Z"),
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

/// A letter (or, with `channel`, another message) about document `doc`, handed off at `sent`.
fn sent(practice: &str, key: &str, doc: &str, channel: Channel, sent: &str) -> NotificationRow {
    NotificationRow {
        practice_id: practice.into(),
        key: key.into(),
        patient_id: "p1".into(),
        rule: "postal_on_failure".into(),
        kind: Kind::Document,
        channel,
        recipient: Recipient::Patient("p1".into()),
        appointments: Vec::new(),
        document: Some(doc.into()),
        task: None,
        auto_resend: true,
        due_at: at(sent),
        window_end: None,
        status: Status::Sent,
        reason: None,
        decided_at: Some(at(sent)),
        attempts: 1,
        lease_owner: None,
        lease_until: None,
        last_error: None,
        rendered: None,
        provider_id: Some("print:x".into()),
        created_at: at(sent),
        updated_at: at(sent),
    }
}

fn cost(key: &str, doc: &str, sent: &str, cents: i64) -> NotificationCost {
    NotificationCost {
        key: key.into(),
        document: Some(doc.into()),
        sent_at: at(sent),
        cost_cents: cents,
    }
}

async fn a_cost_is_recorded_beside_a_sent_row_and_survives_later_updates(store: Store) {
    seed(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    let letter = sent(
        "a",
        "d:d1/postal_on_failure/postal",
        "d1",
        Channel::Postal,
        "2026-03-02T09:00:00Z",
    );
    let email = sent(
        "a",
        "d:d1/document_email/email",
        "d1",
        Channel::Email,
        "2026-03-01T09:00:00Z",
    );
    tx.insert_notification(&letter).await.unwrap();
    tx.insert_notification(&email).await.unwrap();
    assert!(
        tx.set_notification_cost("a", &letter.key, 187)
            .await
            .unwrap()
    );
    assert!(
        !tx.set_notification_cost("b", &letter.key, 187)
            .await
            .unwrap(),
        "scoped by practice: practice b has no such row"
    );
    assert!(!tx.set_notification_cost("a", "nope", 1).await.unwrap());
    tx.commit().await.unwrap();

    // The provider's delivery report rewrites the row: the cost stays.
    let mut tx = store.begin().await.unwrap();
    let mut delivered = letter.clone();
    delivered.status = Status::Delivered;
    delivered.updated_at = at("2026-03-04T09:00:00Z");
    tx.update_notification(&delivered).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.document_costs("a", "d1").await.unwrap(),
        [cost(&letter.key, "d1", "2026-03-02T09:00:00Z", 187)],
        "only the costed message of the document"
    );
    assert_eq!(tx.document_costs("b", "d1").await.unwrap(), []);
    assert_eq!(
        tx.notification("a", &letter.key).await.unwrap().unwrap(),
        delivered,
        "the row itself reads back unchanged"
    );
    tx.commit().await.unwrap();
}

async fn postal_costs_are_the_practices_costed_letters_within_the_period(store: Store) {
    seed(&store, &["a", "b"]).await;
    let rows = [
        ("a", "k-feb", "d1", "2026-02-28T22:59:59Z", Some(100)),
        ("a", "k-mar-1", "d2", "2026-02-28T23:00:00Z", Some(187)),
        ("a", "k-mar-2", "d3", "2026-03-31T21:59:59Z", Some(152)),
        ("a", "k-apr", "d4", "2026-03-31T22:00:00Z", Some(999)),
        ("a", "k-uncosted", "d5", "2026-03-10T10:00:00Z", None),
        (
            "b",
            "k-other-practice",
            "d1",
            "2026-03-10T10:00:00Z",
            Some(500),
        ),
    ];
    let mut tx = store.begin().await.unwrap();
    for (practice, key, doc, when, cents) in rows {
        tx.insert_notification(&sent(practice, key, doc, Channel::Postal, when))
            .await
            .unwrap();
        if let Some(cents) = cents {
            tx.set_notification_cost(practice, key, cents)
                .await
                .unwrap();
        }
    }
    // An email with a cost (no provider does that today) is not postal spend.
    tx.insert_notification(&sent(
        "a",
        "k-email",
        "d9",
        Channel::Email,
        "2026-03-10T10:00:00Z",
    ))
    .await
    .unwrap();
    tx.set_notification_cost("a", "k-email", 7).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    // March 2026 in Europe/Paris: [2026-02-28T23:00Z, 2026-03-31T22:00Z).
    let march = tx
        .postal_costs("a", at("2026-02-28T23:00:00Z"), at("2026-03-31T22:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        march,
        [
            cost("k-mar-1", "d2", "2026-02-28T23:00:00Z", 187),
            cost("k-mar-2", "d3", "2026-03-31T21:59:59Z", 152),
        ]
    );
    tx.commit().await.unwrap();
}

fn logo(practice: &str, png: &[u8], width: u32, height: u32, when: &str) -> LogoRow {
    LogoRow {
        practice_id: practice.into(),
        png: png.to_vec(),
        width,
        height,
        updated_at: at(when),
    }
}

async fn a_logo_is_stored_replaced_read_back_and_deleted_per_practice(store: Store) {
    seed(&store, &["a", "b"]).await;
    // Every byte value, so that nothing in the round trip treats the image as text.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.logo("a").await.unwrap(), None);
    tx.put_logo(&logo("a", &bytes, 150, 40, "2026-03-01T10:00:00Z"))
        .await
        .unwrap();
    tx.put_logo(&logo("b", b"\x89PNG-b", 75, 75, "2026-03-01T10:00:00Z"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.logo("a").await.unwrap(),
        Some(logo("a", &bytes, 150, 40, "2026-03-01T10:00:00Z"))
    );
    tx.put_logo(&logo("a", b"\x89PNG-new", 100, 75, "2026-03-02T10:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        tx.logo("a").await.unwrap(),
        Some(logo("a", b"\x89PNG-new", 100, 75, "2026-03-02T10:00:00Z")),
        "a new logo replaces the old one"
    );
    assert!(tx.delete_logo("a").await.unwrap());
    assert!(
        !tx.delete_logo("a").await.unwrap(),
        "nothing left to delete"
    );
    assert_eq!(tx.logo("a").await.unwrap(), None);
    assert_eq!(
        tx.logo("b").await.unwrap(),
        Some(logo("b", b"\x89PNG-b", 75, 75, "2026-03-01T10:00:00Z")),
        "the other practice's logo is untouched"
    );
    tx.commit().await.unwrap();
}
