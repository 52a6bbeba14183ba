//! The test app and the minimal HTTP/1.1 client shared by the HTTP tests of this folder: the real
//! router served on a loopback port, a fresh in-memory database and a simulated clock per app,
//! and HTTP spoken for real so that status lines, headers and bodies are what a client sees.
//!
//! Each test file is its own binary and uses a different subset of these helpers (and adds its
//! own `impl TestApp` block with the requests it makes), hence the `dead_code` allowance.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rappel_channels::{Recorder, Transport};
use rappel_engine::{Engine, EngineConfig, SimClock, Transports};
use rappel_server::ServerConfig;
use rappel_store::Store;
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

// ---- the app ----------------------------------------------------------------------------------

/// A Monday.
pub const START: &str = "2026-03-02T08:00:00+01:00";

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
    /// The emails' transport (the recorder when `None`).
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

pub async fn spawn_app_from(setup: Setup) -> TestApp {
    let store = Store::connect(setup.database_url.as_deref().unwrap_or("sqlite::memory:"))
        .await
        .expect("the store");
    store.migrate().await.expect("migrations");
    let clock = SimClock::new(START.parse().unwrap());
    let recorder = Recorder::default();
    // Every channel the setup does not name goes to its transport, else to the recorder.
    let default: Arc<dyn rappel_channels::Transport> = setup
        .transport
        .clone()
        .unwrap_or_else(|| Arc::new(recorder.clone()));
    let engine = Engine::new(
        store,
        Arc::new(clock.clone()),
        Transports {
            postal: setup.postal.unwrap_or_else(|| Arc::new(recorder.clone())),
            email: setup.email.unwrap_or_else(|| default.clone()),
            ..Transports::all(default)
        },
        setup.engine,
    );
    let created = engine
        .create_practice(
            setup.practice_name,
            setup.preset,
            "Europe/Paris",
            setup.settings,
        )
        .await
        .expect("practice");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(rappel_server::serve_with(
        engine.clone(),
        setup.config,
        listener,
        async move {
            let _ = stop.await;
        },
    ));
    TestApp {
        addr,
        engine,
        clock,
        recorder,
        key: created.api_key,
        practice: created.id,
        documents_dir: setup.documents_dir,
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

// ---- a minimal HTTP/1.1 client -----------------------------------------------------------------

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Asserts an RFC 9457 problem with this status, and returns its body.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let body = self.json();
        assert_eq!(body["status"], status);
        for member in ["type", "title", "detail"] {
            assert!(body[member].is_string(), "problem without {member}: {body}");
        }
        body
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Reply {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    // Written concurrently with the read: a server may answer (413) before reading everything.
    let write = tokio::spawn(async move {
        let _ = writer.write_all(&bytes).await;
        writer
    });
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                // A reset after the answer (the server closed with our body unread) ends it.
                Err(_) => break,
            }
        }
    })
    .await;
    read.expect("the server answers within 20 s");
    drop(write.await);
    parse_reply(&raw)
}

pub fn parse_reply(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else if let Some((_, len)) = headers.iter().find(|(n, _)| n == "content-length") {
        rest[..len.parse::<usize>().unwrap().min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Reply {
        status,
        headers,
        body,
    }
}

pub fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = std::str::from_utf8(&data[..eol]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        let start = eol + 2;
        body.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    body
}
