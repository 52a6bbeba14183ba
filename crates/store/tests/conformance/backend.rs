//! Backend-specific behaviour: migrations racing, SQLite's pragmas, private in-memory stores, PostgreSQL URLs.

use super::*;

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
pub(super) async fn concurrent_migrations_all_succeed(flavor: Flavor) {
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

/// Every text column of the PostgreSQL schema compares its bytes (collation "C"), as SQLite's
/// do, whatever the database's own collation (migration 0021): a column added later without
/// `COLLATE "C"` fails here.
#[tokio::test]
async fn every_text_column_of_postgres_compares_its_bytes() {
    let (store, cleanup) = open(Flavor::Postgres).await;
    store.migrate().await.unwrap();
    let Cleanup::PostgresDatabase { admin_url, name } = &cleanup else {
        unreachable!()
    };
    let mut conn = sqlx::PgConnection::connect(&with_database(admin_url, name))
        .await
        .unwrap();
    let other: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text, c.collation_name::text \
         FROM information_schema.columns c JOIN information_schema.tables t \
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
           AND c.data_type = 'text' AND c.table_name NOT LIKE '\\_sqlx%' \
           AND c.collation_name IS DISTINCT FROM 'C' \
         ORDER BY 1, 2",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let (texts,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM information_schema.columns \
         WHERE table_schema = current_schema() AND data_type = 'text'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.ok();
    store.close().await;
    clean(cleanup).await;
    assert!(
        texts > 100,
        "the schema's text columns were found ({texts})"
    );
    assert!(
        other.is_empty(),
        "text columns not in collation \"C\": {other:?}"
    );
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
