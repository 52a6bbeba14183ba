//! The HTTP test app: the real router served on a loopback port by the server's own connection
//! loop, a fresh in-memory database and a simulated clock per app (the engine fixture), and the
//! requests of [`crate::http`] made as the practice's API key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rappel_channels::{Recorder, Transport};
use rappel_engine::{Engine, EngineConfig, SimClock};
use rappel_server::ServerConfig;
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use crate::engine::START;
use crate::engine::{self, Fixture, fixture};
use crate::http::{Reply, http};

pub struct TestApp {
    pub addr: SocketAddr,
    pub engine: Engine,
    pub clock: SimClock,
    pub recorder: Recorder,
    /// The API key of the practice every helper speaks for.
    pub key: String,
    /// The id of that practice.
    pub practice: String,
    /// A folder of the app's own, removed by `stop`.
    pub documents_dir: Option<PathBuf>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// How to build a `TestApp`; the default is a doctolib practice "Cabinet A" with every
/// transport a `Recorder`.
pub struct Setup {
    pub config: ServerConfig,
    pub engine: EngineConfig,
    /// The letters' transport (the recorder when `None`).
    pub postal: Option<Arc<dyn Transport>>,
    /// The emails' transport (`transport` when `None`).
    pub email: Option<Arc<dyn Transport>>,
    pub practice_name: &'static str,
    pub preset: &'static str,
    pub settings: Map<String, Value>,
    /// Removed by `stop`.
    pub documents_dir: Option<PathBuf>,
    /// The database (a fresh in-memory SQLite one when `None`).
    pub database_url: Option<String>,
    /// The email, SMS and push transport (the recorder when `None`).
    pub transport: Option<Arc<dyn Transport>>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            config: ServerConfig::default(),
            engine: EngineConfig::default(),
            postal: None,
            email: None,
            practice_name: "Cabinet A",
            preset: "doctolib",
            settings: Map::new(),
            documents_dir: None,
            database_url: None,
            transport: None,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(ServerConfig::default()).await
}

pub async fn spawn_app_with(config: ServerConfig) -> TestApp {
    spawn_app_from(Setup {
        config,
        ..Setup::default()
    })
    .await
}

/// An app as `setup` says, at [`START`] in Europe/Paris.
pub async fn spawn_app_from(setup: Setup) -> TestApp {
    let made = fixture(engine::Setup {
        start: START.parse().unwrap(),
        config: setup.engine,
        database_url: setup.database_url,
        transport: setup.transport,
        email: setup.email,
        push: None,
        postal: setup.postal,
        practice_name: setup.practice_name.into(),
        preset: setup.preset.into(),
        timezone: "Europe/Paris".into(),
        settings: setup.settings,
    })
    .await;
    serve(made, setup.config, setup.documents_dir).await
}

/// Serves `fixture`'s engine with `config` on a free loopback port; `documents_dir` is removed
/// by `stop`.
pub async fn serve(
    fixture: Fixture,
    config: ServerConfig,
    documents_dir: Option<PathBuf>,
) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(rappel_server::serve_with(
        fixture.engine.clone(),
        config,
        listener,
        async move {
            let _ = stop.await;
        },
    ));
    TestApp {
        addr,
        engine: fixture.engine,
        clock: fixture.clock,
        recorder: fixture.recorder,
        key: fixture.key,
        practice: fixture.practice,
        documents_dir,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

impl TestApp {
    /// One request as `key` (none when `None`); a body is sent as JSON unless `headers` give
    /// another content type.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        let mut all: Vec<(String, String)> = Vec::new();
        if let Some(key) = key {
            all.push(("Authorization".into(), format!("Bearer {key}")));
        }
        if body.is_some()
            && !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            all.push(("Content-Type".into(), "application/json".into()));
        }
        all.extend(headers.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        http(self.addr, method, path, &all, body.unwrap_or_default()).await
    }

    /// One request with exactly these headers and no key: a provider's or a browser's.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        http(self.addr, method, path, &headers, body).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, Some(&self.key), &[], None).await
    }

    pub async fn get_as(&self, key: &str, path: &str) -> Reply {
        self.send("GET", path, Some(key), &[], None).await
    }

    pub async fn json(&self, method: &str, path: &str, body: &Value) -> Reply {
        self.json_as(&self.key, method, path, body).await
    }

    pub async fn json_as(&self, key: &str, method: &str, path: &str, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).unwrap();
        self.send(method, path, Some(key), &[], Some(&bytes)).await
    }

    pub async fn post_events(&self, events: &Value) -> Reply {
        self.json("POST", "/v1/events", events).await
    }

    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let ended = tokio::time::timeout(Duration::from_secs(5), server).await;
            ended
                .expect("the server stops after shutdown")
                .unwrap()
                .unwrap();
        }
        if let Some(dir) = &self.documents_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
