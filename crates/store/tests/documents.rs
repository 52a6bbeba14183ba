//! Conformance of the documents' tables (`document_files`, `document_links`): every test below
//! runs on a SQLite file, an in-memory SQLite database and a fresh PostgreSQL database, with the
//! harness of `conformance.rs` (copied: each test file is its own crate).

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use jiff::Timestamp;
use rappel_domain::facts::{Document, EmailDelivery, Patient};
use rappel_store::{Backend, DocumentFile, DocumentLink, PracticeRow, Store};
use serde_json::Map;
use sqlx::Connection;

#[derive(Clone, Copy, Debug)]
enum Flavor {
    SqliteFile,
    SqliteMemory,
    Postgres,
}

enum Cleanup {
    Nothing,
    Files(PathBuf),
    PostgresDatabase { admin_url: String, name: String },
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn postgres_admin_url() -> String {
    std::env::var("RAPPEL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// The admin URL with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map(|i| authority_start + i);
    let server = match path_start {
        Some(i) => &base[..i],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

async fn open(flavor: Flavor) -> (Store, Cleanup) {
    match flavor {
        Flavor::SqliteFile => {
            let path =
                std::env::temp_dir().join(format!("rappel_store_test_{}.db", unique_suffix()));
            let url = format!("sqlite://{}", path.display());
            let store = Store::connect(&url).await.expect("open a SQLite file");
            assert!(path.exists(), "connect must create the SQLite file");
            (store, Cleanup::Files(path))
        }
        Flavor::SqliteMemory => {
            let store = Store::connect("sqlite::memory:")
                .await
                .expect("open in-memory SQLite");
            (store, Cleanup::Nothing)
        }
        Flavor::Postgres => {
            let admin_url = postgres_admin_url();
            let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is unreachable at {admin_url} ({e}); the store conformance suite \
                     runs every test on PostgreSQL too. Start it or set RAPPEL_TEST_POSTGRES_URL."
                )
            });
            let name = format!("rappel_test_{}", unique_suffix());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .expect("create the test database");
            admin.close().await.ok();
            let store = Store::connect(&with_database(&admin_url, &name))
                .await
                .expect("connect to the test database");
            (store, Cleanup::PostgresDatabase { admin_url, name })
        }
    }
}

async fn clean(cleanup: Cleanup) {
    match cleanup {
        Cleanup::Nothing => {}
        Cleanup::Files(path) => {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = path.clone().into_os_string();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
        Cleanup::PostgresDatabase { admin_url, name } => {
            if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await;
                admin.close().await.ok();
            }
        }
    }
}

/// Opens a fresh, migrated store of that flavour, runs the test on it in its own task (so that a
/// failing assertion still lets the database be dropped), cleans up, then re-raises the failure.
async fn run<F, Fut>(flavor: Flavor, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (store, cleanup) = open(flavor).await;
    let expected = match flavor {
        Flavor::Postgres => Backend::Postgres,
        Flavor::SqliteFile | Flavor::SqliteMemory => Backend::Sqlite,
    };
    assert_eq!(store.backend(), expected);
    let outcome = match store.migrate().await {
        Ok(()) => tokio::spawn(test(store.clone())).await,
        Err(e) => {
            store.close().await;
            clean(cleanup).await;
            panic!("migrate failed on {flavor:?}: {e}");
        }
    };
    store.close().await;
    clean(cleanup).await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run(super::Flavor::SqliteFile, super::$name).await
                }
            )*
        }
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run(super::Flavor::SqliteMemory, super::$name).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run(super::Flavor::Postgres, super::$name).await
                }
            )*
        }
    };
}

conformance!(
    document_files_are_recorded_once_and_read_back,
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
