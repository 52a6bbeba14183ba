//! Conformance of the documents' tables (`document_files`, `document_links`): every test below
//! runs on a SQLite file, an in-memory SQLite database and a fresh PostgreSQL database, with the
//! harness of `common/mod.rs`, shared with `conformance/`.

use jiff::Timestamp;
use rappel_domain::facts::{Document, EmailDelivery, Patient};
use rappel_store::{DocumentFile, DocumentLink, PracticeRow, Store};
use serde_json::Map;

mod common;
use common::*;

conformance!(
    document_files_are_recorded_once_and_read_back,
    a_document_file_row_is_deleted_only_while_it_names_that_file,
    document_links_are_found_by_token_hash_and_keep_their_counters,
    erasing_a_patients_document_files_removes_their_files_and_links_only,
    wrong_answers_count_atomically_and_the_last_one_locks_the_link,
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
        for patient in ["p1", "p2"] {
            tx.upsert_patient(
                id,
                &Patient {
                    id: patient.into(),
                    ..Patient::default()
                },
                at("2026-01-01T08:00:00Z"),
            )
            .await
            .unwrap();
        }
        for (doc, patient) in [("d1", "p1"), ("d2", "p1"), ("d3", "p2")] {
            tx.upsert_document(
                id,
                &Document {
                    id: doc.into(),
                    patient: patient.into(),
                    title: "Compte rendu".into(),
                    sent_at: at("2026-03-02T09:00:00Z"),
                    email: EmailDelivery::Pending,
                    consulted_at: None,
                },
            )
            .await
            .unwrap();
        }
    }
    tx.commit().await.unwrap();
}

fn file(practice: &str, document: &str) -> DocumentFile {
    DocumentFile {
        practice_id: practice.into(),
        document_id: document.into(),
        path: format!("{practice}-{document}.bin"),
        nonce: "AAAAAAAAAAAAAAAA".into(),
        size: 1234,
        sha256: "ab".repeat(32),
        created_at: at("2026-03-02T09:00:00Z"),
    }
}

fn link(practice: &str, hash: &str, document: &str) -> DocumentLink {
    DocumentLink {
        practice_id: practice.into(),
        token_hash: hash.into(),
        document_id: document.into(),
        expires_at: at("2026-04-01T09:00:00Z"),
        failed_attempts: 0,
        locked_until: None,
        consulted_at: None,
    }
}

async fn document_files_are_recorded_once_and_read_back(store: Store) {
    seed(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    assert!(tx.insert_document_file(&file("a", "d1")).await.unwrap());
    let mut other = file("a", "d1");
    other.path = "another.bin".into();
    assert!(
        !tx.insert_document_file(&other).await.unwrap(),
        "a document keeps its first file"
    );
    assert_eq!(
        tx.document_file("a", "d1").await.unwrap(),
        Some(file("a", "d1"))
    );
    assert_eq!(
        tx.document_file("b", "d1").await.unwrap(),
        None,
        "scoped by practice"
    );
    tx.commit().await.unwrap();
}

async fn document_links_are_found_by_token_hash_and_keep_their_counters(store: Store) {
    seed(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_document_link(&link("a", "h1", "d1"))
        .await
        .unwrap();
    tx.insert_document_link(&link("a", "h2", "d1"))
        .await
        .unwrap();
    tx.insert_document_link(&link("b", "h3", "d1"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // In a transaction of its own: on PostgreSQL a failed statement aborts its transaction.
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.insert_document_link(&link("b", "h1", "d1"))
            .await
            .is_err(),
        "a token hash is unique"
    );
    drop(tx);

    let mut tx = store.begin().await.unwrap();
    let mut found = tx.document_link_by_hash("h1").await.unwrap().unwrap();
    assert_eq!(found, link("a", "h1", "d1"));
    assert_eq!(tx.document_link_by_hash("nope").await.unwrap(), None);
    found.failed_attempts = 5;
    found.locked_until = Some(at("2026-03-02T10:00:00Z"));
    found.consulted_at = Some(at("2026-03-02T09:30:00Z"));
    assert!(tx.update_document_link(&found).await.unwrap());
    assert_eq!(tx.document_link_by_hash("h1").await.unwrap(), Some(found));
    let hashes: Vec<String> = tx
        .document_links("a", "d1")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.token_hash)
        .collect();
    assert_eq!(hashes, ["h1", "h2"]);
    tx.commit().await.unwrap();
}

async fn erasing_a_patients_document_files_removes_their_files_and_links_only(store: Store) {
    seed(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    for (p, d) in [("a", "d1"), ("a", "d2"), ("a", "d3"), ("b", "d1")] {
        tx.insert_document_file(&file(p, d)).await.unwrap();
    }
    tx.insert_document_link(&link("a", "h1", "d1"))
        .await
        .unwrap();
    tx.insert_document_link(&link("a", "h3", "d3"))
        .await
        .unwrap();
    tx.insert_document_link(&link("b", "h4", "d1"))
        .await
        .unwrap();
    let removed = tx.delete_patient_document_files("a", "p1").await.unwrap();
    assert_eq!(removed, vec![file("a", "d1"), file("a", "d2")]);
    assert_eq!(tx.document_file("a", "d1").await.unwrap(), None);
    assert!(
        tx.document_file("a", "d3").await.unwrap().is_some(),
        "another patient's file stays"
    );
    assert!(
        tx.document_file("b", "d1").await.unwrap().is_some(),
        "another practice's file stays"
    );
    assert_eq!(tx.document_link_by_hash("h1").await.unwrap(), None);
    assert!(tx.document_link_by_hash("h3").await.unwrap().is_some());
    assert!(tx.document_link_by_hash("h4").await.unwrap().is_some());
    tx.commit().await.unwrap();
}

async fn wrong_answers_count_atomically_and_the_last_one_locks_the_link(store: Store) {
    seed(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_document_link(&link("a", "h1", "d1"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let until = at("2026-03-02T11:00:00Z");
    // Three answers at once: all three count.
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            tx.record_document_link_failure("a", "h1", 5, until)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut tx = store.begin().await.unwrap();
    let now = tx.document_link_by_hash("h1").await.unwrap().unwrap();
    assert_eq!((now.failed_attempts, now.locked_until), (3, None));
    let fourth = tx
        .record_document_link_failure("a", "h1", 5, until)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((fourth.failed_attempts, fourth.locked_until), (4, None));
    let fifth = tx
        .record_document_link_failure("a", "h1", 5, until)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (fifth.failed_attempts, fifth.locked_until),
        (0, Some(until))
    );
    // Another practice cannot count against this link.
    assert_eq!(
        tx.record_document_link_failure("b", "h1", 5, until)
            .await
            .unwrap(),
        None
    );
    tx.commit().await.unwrap();
}

async fn a_document_file_row_is_deleted_only_while_it_names_that_file(store: Store) {
    seed(&store, &["a", "b"]).await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_document_file(&file("a", "d1")).await.unwrap();
    tx.insert_document_file(&file("b", "d1")).await.unwrap();
    assert!(
        !tx.delete_document_file("a", "d1", "another.bin")
            .await
            .unwrap(),
        "another upload's file name deletes nothing"
    );
    assert!(
        tx.delete_document_file("a", "d1", "a-d1.bin")
            .await
            .unwrap()
    );
    assert_eq!(tx.document_file("a", "d1").await.unwrap(), None);
    assert_eq!(
        tx.document_file("b", "d1").await.unwrap(),
        Some(file("b", "d1")),
        "scoped by practice"
    );
    tx.commit().await.unwrap();
}
