//! A database made by an earlier Rappel migrates to the current schema without losing work.
//! The database is built with the migrations up to [`BEFORE`] only and filled, through plain
//! SQL of that schema, with what a running practice holds: a message waiting, one whose worker
//! died while sending it (lease expired), one planned for later and one already sent with its
//! provider's id, and the queue's summary as that version kept it. Then the current store opens
//! it, runs the remaining migrations, and must still send the first two, keep the third
//! planned, and find the fourth by its provider id (a delivery report arriving after the
//! upgrade) with the audit copy that version kept as JSON text. Runs on a SQLite file and a
//! fresh PostgreSQL database.

use std::path::Path;

use jiff::Timestamp;
use rappel_store::{NotificationFilter, Status, Store};
use sqlx::migrate::Migrator;

// The harness, without its `conformance!` macro: these tests open unmigrated databases.
#[allow(unused_macros, unused_imports)]
mod common;
use common::*;

/// The last migration of the schema the old database was made with (lookup routes, before
/// the provider ids' routes and any later change of the queue).
const BEFORE: i64 = 13;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_of_an_earlier_version_keeps_its_queue() {
    let (store, cleanup) = open(Flavor::SqliteFile).await;
    let Cleanup::Files(path) = &cleanup else {
        unreachable!("a SQLite file")
    };
    let url = format!("sqlite://{}", path.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    migrator("sqlite").await.run(&pool).await.unwrap();
    for statement in old_rows() {
        sqlx::query(&statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
    upgraded_store_keeps_the_work(store, cleanup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_of_an_earlier_version_keeps_its_queue() {
    let (store, cleanup) = open(Flavor::Postgres).await;
    let Cleanup::PostgresDatabase { admin_url, name } = &cleanup else {
        unreachable!("a PostgreSQL database")
    };
    let pool = sqlx::PgPool::connect(&with_database(admin_url, name))
        .await
        .unwrap();
    migrator("postgres").await.run(&pool).await.unwrap();
    for statement in old_rows() {
        sqlx::query(&statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
    upgraded_store_keeps_the_work(store, cleanup).await;
}

/// A database a newer version of Rappel migrated: `Store::newer_schema` names its newest
/// migration (the worker's loop then claims nothing), and this version's migrator refuses it
/// (`rappel serve` and `rappel worker` do not start on it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_a_newer_version_migrated_is_named_and_refused() {
    const NEWER: i64 = 99_991_231_000_000;
    for flavor in [Flavor::SqliteFile, Flavor::Postgres] {
        let (store, cleanup) = open(flavor).await;
        store.migrate().await.unwrap();
        assert_eq!(store.newer_schema().await.unwrap(), None, "{flavor:?}");
        let insert = "INSERT INTO _sqlx_migrations \
                      (version, description, success, checksum, execution_time) \
                      VALUES ($1, 'a newer version', TRUE, $2, 0)";
        match &cleanup {
            Cleanup::Files(path) => {
                let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .unwrap();
                let query = sqlx::query(insert).bind(NEWER).bind(vec![0u8]);
                query.execute(&pool).await.unwrap();
                pool.close().await;
            }
            Cleanup::PostgresDatabase { admin_url, name } => {
                let pool = sqlx::PgPool::connect(&with_database(admin_url, name))
                    .await
                    .unwrap();
                let query = sqlx::query(insert).bind(NEWER).bind(vec![0u8]);
                query.execute(&pool).await.unwrap();
                pool.close().await;
            }
            Cleanup::Nothing => unreachable!("a file or a database"),
        }
        assert_eq!(
            store.newer_schema().await.unwrap(),
            Some(NEWER),
            "{flavor:?}"
        );
        let refused = store.migrate().await;
        assert!(refused.is_err(), "{flavor:?}: migrated over a newer schema");
        store.close().await;
        clean(cleanup).await;
    }
}

/// The backend's migrations up to [`BEFORE`], read from the crate's migration files (the same
/// files, so the same checksums, as the store's embedded migrator: it then applies the rest).
async fn migrator(backend: &str) -> Migrator {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut migrator = Migrator::new(dir).await.unwrap();
    let old: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version <= BEFORE)
        .cloned()
        .collect();
    assert_eq!(old.len(), BEFORE as usize, "migrations 1 to {BEFORE}");
    migrator.migrations = old.into();
    migrator
}

fn ms(text: &str) -> i64 {
    text.parse::<Timestamp>().unwrap().as_millisecond()
}

/// Rows as the version at [`BEFORE`] wrote them, in that schema's columns.
fn old_rows() -> Vec<String> {
    let created = ms("2025-02-20T08:00:00Z");
    let row = |key: &str, due: &str, status: &str, lease: Option<&str>, provider: Option<&str>| {
        let (owner, until) = match lease {
            Some(until) => ("'worker-gone'".to_string(), ms(until).to_string()),
            None => ("NULL".to_string(), "NULL".to_string()),
        };
        let attempts = i32::from(status != "pending");
        let provider = provider.map_or("NULL".to_string(), |id| format!("'{id}'"));
        let (decided, rendered) = if status == "sent" {
            (ms(due).to_string(), r#"'{"text":"Rappel : RDV demain"}'"#)
        } else {
            ("NULL".into(), "NULL")
        };
        format!(
            "INSERT INTO notifications (practice_id, key, patient_id, rule, kind, channel, \
               recipient, appointments, document, task, auto_resend, due_at, window_end, status, \
               reason, decided_at, attempts, lease_owner, lease_until, last_error, rendered, \
               provider_id, created_at, updated_at) \
             VALUES ('a', '{key}', 'p1', 'reminder_sms_d1', 'reminder', 'sms', 'patient:p1', \
               '[\"a1\"]', NULL, NULL, 0, {due_ms}, NULL, '{status}', NULL, {decided}, \
               {attempts}, {owner}, {until}, NULL, {rendered}, {provider}, {created}, {created})",
            due_ms = ms(due),
        )
    };
    vec![
        format!(
            "INSERT INTO practices (id, name, preset, policy, timezone, settings, created_at) \
             VALUES ('a', 'Cabinet a', 'doctolib', NULL, 'Europe/Paris', '{{}}', {created})"
        ),
        row("waiting", "2025-03-01T09:00:00Z", "pending", None, None),
        row(
            "worker-died",
            "2025-03-01T08:00:00Z",
            "sending",
            Some("2025-03-01T08:01:00Z"),
            None,
        ),
        row("later", "2025-03-20T09:00:00Z", "pending", None, None),
        row(
            "sent",
            "2025-02-28T09:00:00Z",
            "sent",
            None,
            Some("SM-before"),
        ),
        // The summary as that version kept it: the earliest claimable instant (the lease end).
        format!(
            "INSERT INTO practice_due (practice_id, next_due_at, turn_at) \
             VALUES ('a', {}, 0)",
            ms("2025-03-01T08:01:00Z")
        ),
    ]
}

async fn upgraded_store_keeps_the_work(store: Store, cleanup: Cleanup) {
    let outcome = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .migrate()
                .await
                .expect("the remaining migrations apply");

            // Planned messages stay readable (SPEC rule 1), with their state.
            let mut tx = store.begin_read().await.unwrap();
            let listed = tx
                .list_notifications(
                    "a",
                    &NotificationFilter {
                        limit: 10,
                        ..NotificationFilter::default()
                    },
                )
                .await
                .unwrap();
            let later = tx.notification("a", "later").await.unwrap().unwrap();
            let sent = tx.notification_by_provider_id("SM-before").await.unwrap();
            tx.commit().await.unwrap();
            let mut keys: Vec<&str> = listed.iter().map(|n| n.key.as_str()).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["later", "sent", "waiting", "worker-died"]);
            assert_eq!(later.status, Status::Pending);
            assert_eq!(later.due_at, "2025-03-20T09:00:00Z".parse().unwrap());
            // A delivery report after the upgrade finds the message sent before it, and its
            // audit copy (JSON text then; PostgreSQL's column is BYTEA since migration 0019).
            let sent = sent.expect("found by its provider id");
            assert_eq!(sent.key, "sent");
            assert_eq!(
                sent.rendered,
                Some(serde_json::json!({"text": "Rappel : RDV demain"}))
            );

            // The worker sends what was waiting and what a dead worker left, not the rest.
            let now: Timestamp = "2025-03-02T08:00:00Z".parse().unwrap();
            let lease = "2025-03-02T08:01:00Z".parse().unwrap();
            let claimed = store.claim_due(now, "worker-new", lease, 10).await.unwrap();
            let mut keys: Vec<&str> = claimed.iter().map(|n| n.key.as_str()).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["waiting", "worker-died"]);
            let died = claimed.iter().find(|n| n.key == "worker-died").unwrap();
            assert_eq!(died.attempts, 2, "the dead worker's attempt still counts");
            assert!(
                store
                    .claim_due(now, "worker-other", lease, 10)
                    .await
                    .unwrap()
                    .is_empty(),
                "claimed once"
            );
            assert_eq!(
                store.next_due().await.unwrap(),
                Some(lease),
                "next: the new lease's end, before the planned message"
            );
        }
    })
    .await;
    store.close().await;
    clean(cleanup).await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}
