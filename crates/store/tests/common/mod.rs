//! The backend harness shared by the store's conformance tests: a fresh SQLite file, a private
//! in-memory SQLite database or a fresh PostgreSQL database per test, dropped afterwards, and the
//! `conformance!` macro running each test function on all three.
//!
//! PostgreSQL is not optional: the base URL comes from `RAPPEL_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), each test creates its own database there and
//! drops it afterwards, and an unreachable server fails the tests with a message saying so.
//!
//! Each test file is its own binary and uses a different subset of this module, hence the
//! `dead_code` allowance.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rappel_store::{Backend, Store};
use sqlx::Connection;

#[derive(Clone, Copy, Debug)]
pub enum Flavor {
    SqliteFile,
    SqliteMemory,
    Postgres,
}

pub enum Cleanup {
    Nothing,
    Files(PathBuf),
    PostgresDatabase { admin_url: String, name: String },
}

pub fn unique_suffix() -> String {
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

pub fn postgres_admin_url() -> String {
    std::env::var("RAPPEL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// The admin URL with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
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

pub async fn open(flavor: Flavor) -> (Store, Cleanup) {
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
            // In French when the server's system has that locale, as a server set up in France
            // creates its databases: the store must not depend on the database's collation
            // (migration 0021). Otherwise the server's default.
            let french = format!("CREATE DATABASE {name} TEMPLATE template0 LOCALE '{FRENCH}'");
            if sqlx::query(&french).execute(&mut admin).await.is_err() {
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("create the test database");
            }
            admin.close().await.ok();
            let store = Store::connect(&with_database(&admin_url, &name))
                .await
                .expect("connect to the test database");
            (store, Cleanup::PostgresDatabase { admin_url, name })
        }
    }
}

/// The locale of the PostgreSQL test databases when the server's system has it (`locale -a`).
pub const FRENCH: &str = "fr_FR.utf8";

pub async fn clean(cleanup: Cleanup) {
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
pub async fn run<F, Fut>(flavor: Flavor, test: F)
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

pub(crate) use conformance;
