//! The engine fixture: an engine on a fresh store (in-memory SQLite unless a test names a
//! database) and a simulated clock, every channel to a `Recorder` unless the test gives its own
//! transport, with one practice created; and throw-away PostgreSQL databases. What the practice
//! holds (practitioners, patients) is each test's own data and stays in its file.

use std::future::Future;
use std::sync::Arc;

use jiff::Timestamp;
use rappel_channels::{Recorder, Transport};
use rappel_engine::{Engine, EngineConfig, SimClock, Transports};
use rappel_store::Store;
use serde_json::{Map, Value};

/// A Monday.
pub const START: &str = "2026-03-02T08:00:00+01:00";

/// How to build a [`Fixture`]; the default is a doctolib practice "Cabinet" in Europe/Paris at
/// [`START`], every transport the fixture's recorder.
pub struct Setup {
    pub start: Timestamp,
    pub config: EngineConfig,
    /// The database (a fresh in-memory SQLite one when `None`).
    pub database_url: Option<String>,
    /// The email, SMS and push transport (the recorder when `None`).
    pub transport: Option<Arc<dyn Transport>>,
    /// The emails' transport (`transport` when `None`).
    pub email: Option<Arc<dyn Transport>>,
    /// The push messages' transport (`transport` when `None`).
    pub push: Option<Arc<dyn Transport>>,
    /// The letters' transport (the recorder when `None`, whatever `transport` is).
    pub postal: Option<Arc<dyn Transport>>,
    pub practice_name: String,
    pub preset: String,
    pub timezone: String,
    pub settings: Map<String, Value>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            start: START.parse().unwrap(),
            config: EngineConfig::default(),
            database_url: None,
            transport: None,
            email: None,
            push: None,
            postal: None,
            practice_name: "Cabinet".into(),
            preset: "doctolib".into(),
            timezone: "Europe/Paris".into(),
            settings: Map::new(),
        }
    }
}

pub struct Fixture {
    pub engine: Engine,
    pub clock: SimClock,
    pub recorder: Recorder,
    /// The practice's id.
    pub practice: String,
    /// Its API key.
    pub key: String,
}

/// An engine and its practice as `setup` says.
pub async fn fixture(setup: Setup) -> Fixture {
    let store = Store::connect(setup.database_url.as_deref().unwrap_or("sqlite::memory:"))
        .await
        .expect("the store");
    store.migrate().await.expect("migrations");
    let clock = SimClock::new(setup.start);
    let recorder = Recorder::default();
    let recorded: Arc<dyn Transport> = Arc::new(recorder.clone());
    // Every channel the setup does not name goes to its transport, else to the recorder.
    let default = setup.transport.unwrap_or_else(|| recorded.clone());
    let engine = Engine::new(
        store,
        Arc::new(clock.clone()),
        Transports {
            email: setup.email.unwrap_or_else(|| default.clone()),
            push: setup.push.unwrap_or_else(|| default.clone()),
            postal: setup.postal.unwrap_or(recorded),
            ..Transports::all(default)
        },
        setup.config,
    );
    let created = engine
        .create_practice(
            &setup.practice_name,
            &setup.preset,
            &setup.timezone,
            setup.settings,
        )
        .await
        .expect("practice");
    Fixture {
        engine,
        clock,
        recorder,
        practice: created.id,
        key: created.api_key,
    }
}

/// A fresh in-memory SQLite store, migrated.
pub async fn memory_store() -> Store {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// An engine on `store` (one of several sharing a database, say) with every channel to a
/// recorder nobody reads.
pub fn engine_on(store: Store, clock: &SimClock) -> Engine {
    engine_with(store, clock, EngineConfig::default())
}

/// [`engine_on`] with a configuration of the test's.
pub fn engine_with(store: Store, clock: &SimClock, config: EngineConfig) -> Engine {
    Engine::new(
        store,
        Arc::new(clock.clone()),
        Transports::all(Arc::new(Recorder::default())),
        config,
    )
}

/// The PostgreSQL server the tests make their databases on: `RAPPEL_TEST_POSTGRES_URL`, by
/// default `postgres://postgres@127.0.0.1:5432/postgres`.
pub fn postgres_admin_url() -> String {
    std::env::var("RAPPEL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// Runs `test` with the URL of a fresh PostgreSQL database named after `prefix`, in its own task
/// so that a failing assertion still lets the database be dropped; then re-raises the failure.
/// PostgreSQL is not optional: an unreachable server fails the test, saying so.
pub async fn with_postgres<F, Fut>(prefix: &str, test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin_url = postgres_admin_url();
    let (url, name) = rappel_store::admin::create_postgres_database(&admin_url, prefix)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is unreachable at {admin_url} ({e}); start it or set \
                 RAPPEL_TEST_POSTGRES_URL."
            )
        });
    let outcome = tokio::spawn(test(url)).await;
    let _ = rappel_store::admin::drop_postgres_database(&admin_url, &name).await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}
