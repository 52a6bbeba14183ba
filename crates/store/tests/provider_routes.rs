//! A delivery report names its message by the provider's id only: the id is routed to its
//! practice when a row gets it (`lookup_routes`, kind `provider_message`, issue 18), and the
//! row is then read within that practice. Runs on a SQLite file, an in-memory SQLite database
//! and a fresh PostgreSQL database.

use jiff::Timestamp;
use rappel_domain::notification::{Channel, Kind};
use rappel_store::{NotificationRow, PracticeRow, Status, Store};
use serde_json::Map;

mod common;
use common::*;

conformance!(
    a_provider_id_is_routed_by_every_write_that_sets_it,
    a_provider_id_shared_by_two_practices_answers_the_first_routed,
    retention_forgets_the_routes_of_the_messages_it_purges,
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
            created_at: at("2024-01-01T08:00:00Z"),
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

fn message(practice_id: &str, key: &str, provider_id: Option<&str>) -> NotificationRow {
    let mut row = NotificationRow::pending(
        practice_id,
        key.into(),
        "p1",
        "reminder_sms_d1",
        Kind::Reminder,
        Channel::Sms,
        at("2024-03-01T08:00:00Z"),
    );
    if let Some(id) = provider_id {
        row.status = Status::Sent;
        row.attempts = 1;
        row.decided_at = Some(at("2024-03-01T08:00:01Z"));
        row.provider_id = Some(id.into());
    }
    row
}

async fn found(store: &Store, provider_id: &str) -> Option<(String, String)> {
    let mut tx = store.begin_read().await.unwrap();
    let row = tx.notification_by_provider_id(provider_id).await.unwrap();
    tx.commit().await.unwrap();
    row.map(|n| (n.practice_id, n.key))
}

fn at_key(practice: &str, key: &str) -> Option<(String, String)> {
    Some((practice.into(), key.into()))
}

async fn a_provider_id_is_routed_by_every_write_that_sets_it(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    // Inserted with its id (one row, then a batch).
    tx.insert_notification(&message("a", "inserted", Some("SM-1")))
        .await
        .unwrap();
    tx.insert_notifications(&[
        message("b", "batch-1", Some("SM-2")),
        message("b", "batch-2", None),
    ])
    .await
    .unwrap();
    // Given its id by the dispatch's outcome, or by a whole-row update.
    let mut handed_off = message("a", "handed-off", None);
    let mut updated = message("b", "updated", None);
    tx.insert_notifications(&[handed_off.clone()])
        .await
        .unwrap();
    tx.insert_notification(&updated).await.unwrap();
    handed_off.status = Status::Sent;
    handed_off.provider_id = Some("SM-3".into());
    tx.update_notification_outcomes(&[handed_off])
        .await
        .unwrap();
    updated.status = Status::Sent;
    updated.provider_id = Some("SM-4".into());
    tx.update_notification(&updated).await.unwrap();
    tx.commit().await.unwrap();

    assert_eq!(found(&store, "SM-1").await, at_key("a", "inserted"));
    assert_eq!(found(&store, "SM-2").await, at_key("b", "batch-1"));
    assert_eq!(found(&store, "SM-3").await, at_key("a", "handed-off"));
    assert_eq!(found(&store, "SM-4").await, at_key("b", "updated"));
    assert_eq!(found(&store, "SM-5").await, None);

    // A retry's new id replaces the old one on the row: the old id finds nothing any more.
    updated.provider_id = Some("SM-4b".into());
    let mut tx = store.begin().await.unwrap();
    tx.update_notification(&updated).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(found(&store, "SM-4").await, None);
    assert_eq!(found(&store, "SM-4b").await, at_key("b", "updated"));
}

async fn a_provider_id_shared_by_two_practices_answers_the_first_routed(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_notification(&message("b", "first", Some("SM-x")))
        .await
        .unwrap();
    tx.insert_notification(&message("a", "second", Some("SM-x")))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Provider ids are unique per provider account; should two accounts collide, the answer
    // is the first practice that got the id, never a row of the other.
    assert_eq!(found(&store, "SM-x").await, at_key("b", "first"));
}

async fn retention_forgets_the_routes_of_the_messages_it_purges(store: Store) {
    with_practices(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_notification(&message("a", "old", Some("SM-old")))
        .await
        .unwrap();
    let mut recent = message("a", "recent", Some("SM-recent"));
    recent.due_at = at("2025-02-01T08:00:00Z");
    recent.decided_at = Some(at("2025-02-01T08:00:01Z"));
    tx.insert_notification(&recent).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let purged = tx
        .purge_history("a", at("2025-01-01T00:00:00Z"), 100)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(purged.notifications, 1);
    assert_eq!(found(&store, "SM-old").await, None);
    assert_eq!(found(&store, "SM-recent").await, at_key("a", "recent"));

    // The purged id's route is free: another practice's message that gets it is found.
    let mut tx = store.begin().await.unwrap();
    tx.insert_notification(&message("b", "reused", Some("SM-old")))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(found(&store, "SM-old").await, at_key("b", "reused"));
}
