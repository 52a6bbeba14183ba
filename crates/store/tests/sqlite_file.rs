//! What only an SQLite file does: reads on connections of their own that refuse every write, and
//! the WAL copied back into the database by a checkpoint of the store's own, off the writers'
//! path, without waiting for SQLite's automatic checkpoint (40 MB of WAL).

use jiff::Timestamp;
use rappel_store::{PracticeRow, TemplateRow};
use serde_json::Map;

// The harness, without its `conformance!` macro: these tests are about a SQLite file only.
#[allow(unused_macros, unused_imports)]
mod common;
use common::*;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn practice() -> PracticeRow {
    PracticeRow {
        id: "a".into(),
        name: "Cabinet a".into(),
        preset: "doctolib".into(),
        policy: None,
        timezone: "Europe/Paris".into(),
        settings: Map::new(),
        created_at: at("2025-01-01T08:00:00Z"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_checkpoints_the_wal_of_a_file_after_a_few_write_transactions() {
    let (store, cleanup) = open(Flavor::SqliteFile).await;
    let Cleanup::Files(path) = &cleanup else {
        unreachable!("a SQLite file")
    };
    let path = path.clone();
    store.migrate().await.unwrap();
    let before = std::fs::metadata(&path).unwrap().len();

    // Sixteen write transactions of about 40 kB each: far under the 40 MB at which SQLite would
    // checkpoint by itself, so only the store's own checkpoint can copy them into the file.
    let mut tx = store.begin().await.unwrap();
    tx.insert_practice(&practice()).await.unwrap();
    tx.commit().await.unwrap();
    for i in 0..16 {
        let mut tx = store.begin().await.unwrap();
        for part in ["text", "subject", "html", "sms"] {
            tx.put_template(&TemplateRow {
                practice_id: "a".into(),
                kind: format!("kind{i}"),
                channel: "email".into(),
                locale: "fr".into(),
                part: part.into(),
                source: "x".repeat(10_000),
                updated_at: at("2026-03-01T10:00:00Z"),
            })
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }

    // The checkpoint runs in a task of its own: give it a few seconds.
    let mut after = before;
    for _ in 0..100 {
        after = std::fs::metadata(&path).unwrap().len();
        if after > before + 300_000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        after > before + 300_000,
        "the database file should hold the checkpointed templates: {before} → {after} bytes"
    );

    // Every commit is still there, read through a read connection.
    let mut tx = store.begin_read().await.unwrap();
    assert_eq!(tx.templates("a").await.unwrap().len(), 64);
    tx.commit().await.unwrap();
    store.close().await;
    clean(cleanup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_transaction_of_a_file_refuses_to_write_and_a_write_one_after_it_writes() {
    let (store, cleanup) = open(Flavor::SqliteFile).await;
    store.migrate().await.unwrap();
    let practice = practice();
    // More read transactions than the pool's read connections, one after the other: each
    // refuses the write, whichever connection it got.
    for _ in 0..12 {
        let mut tx = store.begin_read().await.unwrap();
        let refused = tx.insert_practice(&practice).await.unwrap_err();
        assert!(
            refused.to_string().contains("readonly"),
            "a write through a read transaction: {refused}"
        );
    }
    let mut tx = store.begin().await.unwrap();
    tx.insert_practice(&practice).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin_read().await.unwrap();
    assert_eq!(tx.practice("a").await.unwrap().unwrap().name, "Cabinet a");
    tx.commit().await.unwrap();
    store.close().await;
    clean(cleanup).await;
}
