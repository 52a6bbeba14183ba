//! On SQLite a new notification row goes in the table by its due minute (issue 18,
//! `placement.rs`): the rows that come due together sit together, whatever order they were
//! planned in. Checked against SQLite's own `rowid`s, with a row of an earlier version (a small
//! rowid) beside them, rows of one minute planned by two transactions, and a replanned row that
//! keeps its place.

use jiff::Timestamp;
use rappel_domain::notification::{Channel, Kind};
use rappel_store::{NotificationRow, PracticeRow};
use serde_json::Map;
use sqlx::Row;

#[allow(unused_macros, unused_imports)]
mod common;
use common::*;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn pending(practice: &str, key: &str, due: &str) -> NotificationRow {
    let mut row = NotificationRow::pending(
        practice,
        key.into(),
        "p1",
        "reminder_sms",
        Kind::Reminder,
        Channel::Sms,
        at("2026-03-01T09:00:00Z"),
    );
    row.appointments = vec!["rdv-1".into()];
    row.due_at = at(due);
    row
}

fn practice(id: &str) -> PracticeRow {
    PracticeRow {
        id: id.into(),
        name: format!("Cabinet {id}"),
        preset: "lifen".into(),
        policy: None,
        timezone: "Europe/Paris".into(),
        settings: Map::new(),
        created_at: at("2026-01-01T00:00:00Z"),
    }
}

/// Every row's (rowid, practice, key) as SQLite holds them, in the table's order.
async fn table_order(url: &str) -> Vec<(i64, String, String)> {
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    let rows = sqlx::query("SELECT rowid, practice_id, key FROM notifications ORDER BY rowid")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    rows.iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn sqlite_places_new_rows_by_due_minute() {
    let (store, cleanup) = open(Flavor::SqliteFile).await;
    store.migrate().await.unwrap();
    let url = match &cleanup {
        Cleanup::Files(path) => format!("sqlite://{}", path.display()),
        _ => unreachable!("a file"),
    };
    let mut tx = store.begin().await.unwrap();
    tx.insert_practice(&practice("a")).await.unwrap();
    tx.insert_practice(&practice("b")).await.unwrap();
    tx.commit().await.unwrap();

    // A row written by an earlier version, which let SQLite pick the rowid (the next integer).
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO notifications (practice_id, key, patient_id, rule, kind, channel, \
           recipient, appointments, auto_resend, due_at, status, attempts, created_at, \
           updated_at) \
         VALUES ('a', 'legacy', 'p1', 'reminder_sms', 'reminder', 'sms', \
           '{\"patient\":\"p1\"}', '[\"rdv-1\"]', 0, 1900000000000, 'pending', 0, 0, 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);

    // Two bookings planned one after the other, each a confirmation due now and a reminder due
    // two days later, in a batch; then a third booking's rows one by one, in another transaction.
    let mut tx = store.begin().await.unwrap();
    tx.insert_notifications(&[
        pending("a", "1-confirmation", "2026-03-01T09:00:10Z"),
        pending("a", "1-reminder", "2026-03-03T09:00:00Z"),
        pending("b", "2-confirmation", "2026-03-01T09:00:20Z"),
        pending("b", "2-reminder", "2026-03-03T09:00:30Z"),
    ])
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.insert_notification(&pending("a", "3-confirmation", "2026-03-01T09:00:40Z"))
        .await
        .unwrap();
    tx.insert_notification(&pending("a", "3-reminder", "2026-03-03T09:00:50Z"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let order = table_order(&url).await;
    let keys: Vec<&str> = order.iter().map(|(_, _, key)| key.as_str()).collect();
    // The legacy row keeps its small rowid; then the confirmations of 09:00 together, in the
    // order they were planned (both practices), then the reminders of two days later.
    assert_eq!(
        keys,
        [
            "legacy",
            "1-confirmation",
            "2-confirmation",
            "3-confirmation",
            "1-reminder",
            "2-reminder",
            "3-reminder"
        ]
    );
    let minute = at("2026-03-01T09:00:00Z").as_millisecond() / 60_000;
    assert_eq!(order[0].0, 1, "{order:?}");
    assert_eq!(order[1].0, minute << 32, "{order:?}");
    assert_eq!(order[3].0, (minute << 32) + 2, "{order:?}");

    // Replanned to another day, a row keeps its place (only new rows are placed) and is read
    // back as written.
    let mut moved = pending("a", "1-confirmation", "2026-04-01T12:00:00Z");
    moved.updated_at = at("2026-03-02T00:00:00Z");
    let mut tx = store.begin().await.unwrap();
    tx.update_notification(&moved).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(table_order(&url).await, order);
    let mut tx = store.begin_read().await.unwrap();
    let row = tx
        .notification("a", "1-confirmation")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.due_at, moved.due_at);
    tx.commit().await.unwrap();

    store.close().await;
    clean(cleanup).await;
}
