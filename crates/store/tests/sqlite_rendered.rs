//! On SQLite the audit copy of a sent message (`notifications.rendered`) is stored packed (LZ4
//! against a fixed dictionary, issue 18): checked here against SQLite itself (the column's type
//! and length as SQLite reports them), with copies written by earlier versions (JSON text, LZ4
//! without the dictionary) still read, and a damaged packed copy reported as corruption of that
//! column rather than a panic or a huge allocation. The reads that SQLite answers with one JSON
//! text of many rows (a claim, the notifications of many patients: `codec::json_rows`) carry
//! the packed copy as hex digits and read it back the same.

use jiff::Timestamp;
use rappel_domain::notification::{Channel, Kind};
use rappel_store::{NotificationRow, PracticeRow, Status, StoreError};
use serde_json::{Map, json};
use sqlx::Row;

#[allow(unused_macros, unused_imports)]
mod common;
use common::*;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn sent(key: &str) -> NotificationRow {
    let mut row = NotificationRow::pending(
        "a",
        key.into(),
        "p1",
        "confirmation_email",
        Kind::Confirmation,
        Channel::Email,
        at("2026-03-01T09:00:00Z"),
    );
    row.appointments = vec!["rdv-1".into()];
    row.due_at = at("2026-03-01T10:00:00Z");
    row.status = Status::Sent;
    row.decided_at = Some(at("2026-03-01T10:00:01Z"));
    row.attempts = 1;
    row.updated_at = at("2026-03-01T10:00:01Z");
    row
}

#[tokio::test]
async fn sqlite_keeps_the_audit_copy_packed_and_reads_every_form_back() {
    let (store, cleanup) = open(Flavor::SqliteFile).await;
    store.migrate().await.unwrap();
    let paragraph = "Votre rendez-vous est confirmé avec le Dr Martin. ".repeat(40);
    let copy = json!({"subject": "RDV", "html": format!("<p>{paragraph}</p>"), "text": paragraph});
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
    for key in [
        "inserted", "recorded", "copied", "legacy", "earlier", "damaged",
    ] {
        tx.insert_notification(&sent(key)).await.unwrap();
    }
    let mut inserted = sent("inserted");
    inserted.rendered = Some(copy.clone());
    tx.update_notification(&inserted).await.unwrap();
    let mut recorded = sent("recorded");
    recorded.rendered = Some(copy.clone());
    let encoded = store.encode_outcome(&recorded).unwrap();
    // A dispatch hands the copy over as the JSON text it serialized.
    let copied = sent("copied");
    let text = serde_json::to_string(&copy).unwrap();
    let copied = store.encode_outcome_with_copy(&copied, &text).unwrap();
    tx.write_outcomes(vec![encoded, copied]).await.unwrap();
    tx.commit().await.unwrap();

    // What SQLite itself holds: a BLOB much shorter than the JSON text.
    let url = match &cleanup {
        Cleanup::Files(path) => format!("sqlite://{}", path.display()),
        _ => unreachable!("a file"),
    };
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let json_len = serde_json::to_string(&copy).unwrap().len() as i64;
    for key in ["inserted", "recorded", "copied"] {
        let row = sqlx::query(
            "SELECT typeof(rendered) AS t, length(rendered) AS n FROM notifications \
             WHERE practice_id = 'a' AND key = ?",
        )
        .bind(key)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(row.get::<String, _>("t"), "blob", "{key}");
        let packed = row.get::<i64, _>("n");
        assert!(
            packed * 4 < json_len,
            "{key}: {packed} bytes for {json_len}"
        );
    }
    // A copy written by an earlier version, as JSON text, and a damaged packed one.
    sqlx::query(
        "UPDATE notifications SET rendered = '{\"text\":\"ancien\"}' \
         WHERE practice_id = 'a' AND key = 'legacy'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    // A copy packed by the versions of sessions 14 and 15: LZ4 without the dictionary.
    let mut earlier = vec![1u8];
    earlier.extend(lz4_flex::block::compress_prepend_size(
        br#"{"text":"avant le dictionnaire"}"#,
    ));
    sqlx::query(
        "UPDATE notifications SET rendered = ? WHERE practice_id = 'a' AND key = 'earlier'",
    )
    .bind(earlier)
    .execute(&mut conn)
    .await
    .unwrap();
    // Packing 1, then a length of 4 GB: must be refused before anything is allocated.
    sqlx::query(
        "UPDATE notifications SET rendered = X'01FFFFFFFF00' \
         WHERE practice_id = 'a' AND key = 'damaged'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);

    let mut tx = store.begin_read().await.unwrap();
    for key in ["inserted", "recorded", "copied"] {
        let row = tx.notification("a", key).await.unwrap().unwrap();
        assert_eq!(row.rendered.as_ref(), Some(&copy), "{key}");
    }
    let legacy = tx.notification("a", "legacy").await.unwrap().unwrap();
    assert_eq!(legacy.rendered, Some(json!({"text": "ancien"})));
    let earlier = tx.notification("a", "earlier").await.unwrap().unwrap();
    let avant = json!({"text": "avant le dictionnaire"});
    assert_eq!(earlier.rendered.as_ref(), Some(&avant));
    // The same rows read many at a time, which SQLite returns as one JSON text (the packed copy
    // as its hex digits): the damaged copy fails that read as corruption too.
    let many = tx.notifications_of_patients("a", &["p1".to_string()]).await;
    match many {
        Err(StoreError::Corrupt { table, reason }) => {
            assert_eq!(table, "notifications");
            assert!(reason.contains("rendered"), "{reason}");
        }
        other => panic!("a damaged copy must be reported as corrupt: {other:?}"),
    }
    match tx.notification("a", "damaged").await {
        Err(StoreError::Corrupt { table, reason }) => {
            assert_eq!(table, "notifications");
            assert!(reason.contains("rendered"), "{reason}");
        }
        other => panic!("a damaged copy must be reported as corrupt: {other:?}"),
    }
    tx.commit().await.unwrap();
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("DELETE FROM notifications WHERE practice_id = 'a' AND key = 'damaged'")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let mut tx = store.begin_read().await.unwrap();
    let many = tx
        .notifications_of_patients("a", &["p1".to_string()])
        .await
        .unwrap();
    let copies: Vec<(&str, Option<&serde_json::Value>)> = many
        .iter()
        .map(|n| (n.key.as_str(), n.rendered.as_ref()))
        .collect();
    let ancien = json!({"text": "ancien"});
    assert_eq!(
        copies,
        [
            ("copied", Some(&copy)),
            ("earlier", Some(&avant)),
            ("inserted", Some(&copy)),
            ("legacy", Some(&ancien)),
            ("recorded", Some(&copy))
        ]
    );
    tx.commit().await.unwrap();

    // A claim returns its rows as one JSON text too: a row to send again keeps its copy.
    let mut retry = sent("retry");
    retry.status = Status::Pending;
    retry.decided_at = None;
    retry.rendered = Some(copy.clone());
    let mut tx = store.begin().await.unwrap();
    tx.insert_notification(&retry).await.unwrap();
    tx.commit().await.unwrap();
    let now = at("2026-03-01T11:00:00Z");
    let claimed = store
        .claim_due(now, "w", at("2026-03-01T11:05:00Z"), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].key, "retry");
    assert_eq!(claimed[0].status, Status::Sending);
    assert_eq!(claimed[0].attempts, 2);
    assert_eq!(claimed[0].lease_owner.as_deref(), Some("w"));
    assert_eq!(claimed[0].rendered.as_ref(), Some(&copy));
    store.close().await;
    clean(cleanup).await;
}
