//! The scenario files, played through the HTTP API instead of `simulate`: the directory is
//! `PUT`, the settings `PATCH`ed and every event `POST`ed to `/v1/events` at its instant on a
//! controllable clock. The deliveries, suppressions and inbox entries must be exactly those of
//! `rappel simulate` — the server runs the same engine — and satisfy the files' `[expect]`.
//! Tasks are created through `POST /v1/tasks`. Each file is its own test, named by its folder
//! and file (`cargo test -p rappel-server --test scenarios_http -- maddie_`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use libtest_mimic::{Arguments, Trial};

use rappel_channels::Recorder;
use rappel_engine::scenario::{
    AnswerOutcomeName, LinkActionName, PatientEvent, Scenario, ScenarioEvent, check,
    last_link_token,
};
use rappel_engine::simulate::{collect, drive, simulate};
use rappel_engine::{Clock, Engine, EngineConfig, SimClock, Transports};
use rappel_store::Store;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// (test name, path) of every scenario file: `project/NAME` and `shared/NAME`.
fn scenario_files() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for (label, dir) in [
        ("project", root.join("scenarios")),
        ("shared", root.join("../shared/scenarios")),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                files.push((format!("{label}/{stem}"), path));
            }
        }
    }
    files.sort();
    files
}

/// One request on a fresh connection; returns (status, body).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> (u16, String) {
    let body = serde_json::to_vec(body).unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw))
        .await
        .expect("the server answers")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A patient's form post on a fresh connection, as a browser on the page sends it; returns the
/// status.
async fn form_post(addr: SocketAddr, path: &str, body: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw))
        .await
        .expect("the server answers")
        .unwrap();
    String::from_utf8_lossy(&raw)[9..12].parse().unwrap()
}

/// The Standard Webhooks secret of the SMS gateway the replay's server trusts.
const GATEWAY_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A JSON POST with the given headers and no API key: a provider's call.
async fn signed_post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw))
        .await
        .expect("the server answers")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text[9..12].parse().unwrap();
    (status, text)
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let files = scenario_files();
    assert!(!files.is_empty(), "no scenario files found");
    let trials = files
        .into_iter()
        .map(|(name, path)| {
            Trial::test(name, move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()?;
                runtime.block_on(replay(&path));
                Ok(())
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

/// Plays one file through the API and compares with `simulate`; panics with what differs.
async fn replay(file: &Path) {
    let name = file.display().to_string();
    let source = std::fs::read_to_string(file).unwrap();
    let scenario = Scenario::parse(&name, &source).unwrap();
    // A scenario that must be refused has nothing to replay (the engine suite checks its error).
    if scenario.expect.as_ref().is_some_and(|e| e.error.is_some()) {
        return;
    }
    {
        let expected = simulate(&name, &scenario).await.unwrap();

        let store = Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let clock = SimClock::new(scenario.start);
        let recorder = Recorder::default();
        recorder.set_now(scenario.start);
        let engine = Engine::new(
            store,
            Arc::new(clock.clone()),
            Transports::all(Arc::new(recorder.clone())),
            EngineConfig::default(),
        );
        let key = engine
            .create_practice(
                "Cabinet",
                &scenario.preset,
                &scenario.timezone,
                Default::default(),
            )
            .await
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // The gateway's key, for the patients' replies (`patient.replied`), which arrive as
        // signed inbound SMS.
        let gateway = rappel_channels::sms::webhook::SigningKey::parse(GATEWAY_SECRET).unwrap();
        let config = rappel_server::ServerConfig {
            webhooks: rappel_server::WebhookSecrets {
                sms_webhook_key: Some(gateway.clone()),
                ..rappel_server::ServerConfig::default().webhooks
            },
            ..rappel_server::ServerConfig::default()
        };
        let server = tokio::spawn(rappel_server::serve_with(
            engine.clone(),
            config,
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        let api = |method: &'static str, path: String, body: Value| {
            let key = key.api_key.clone();
            async move {
                let (status, text) = http(addr, method, &path, &key, &body).await;
                assert!(
                    (200..300).contains(&status),
                    "{method} {path} → {status}: {text}"
                );
            }
        };
        // The plan and the SMS quota belong to the operator (`rappel practice set`): they go
        // through the engine, the practice's own options through its key.
        let (operator, practice): (Map<String, Value>, Map<String, Value>) = scenario
            .settings
            .clone()
            .into_iter()
            .partition(|(k, _)| rappel_domain::settings::is_operator_setting(k));
        if !operator.is_empty() {
            engine
                .set_operator_settings(&key.id, &operator)
                .await
                .unwrap();
        }
        if !practice.is_empty() {
            api("PATCH", "/v1/settings".into(), Value::Object(practice)).await;
        }
        for p in &scenario.practitioners {
            api(
                "PUT",
                format!("/v1/practitioners/{}", p.id),
                serde_json::to_value(p).unwrap(),
            )
            .await;
        }
        for m in &scenario.motives {
            api(
                "PUT",
                format!("/v1/motives/{}", m.id),
                serde_json::to_value(m).unwrap(),
            )
            .await;
        }
        for p in &scenario.patients {
            api(
                "PUT",
                format!("/v1/patients/{}", p.id),
                serde_json::to_value(p).unwrap(),
            )
            .await;
        }
        for t in &scenario.tasks {
            api("POST", "/v1/tasks".into(), serde_json::to_value(t).unwrap()).await;
        }
        let mut answered: Vec<Option<u16>> = Vec::new();
        drive(
            &engine,
            &clock,
            &recorder,
            &scenario.events,
            scenario.end,
            async |index, event| {
                match event {
                    ScenarioEvent::Practice(event) => {
                        if let rappel_domain::event::EventBody::PatientReplied { patient, text } =
                            &event.body
                        {
                            let from = scenario
                                .patients
                                .iter()
                                .find(|p| &p.id == patient)
                                .and_then(|p| p.mobile.as_ref())
                                .and_then(rappel_domain::contact::Contact::mobile)
                                .expect("a replying patient has a mobile")
                                .to_string();
                            let body =
                                json!({"id": format!("sim-{index}"), "from": from, "text": text})
                                    .to_string();
                            let id = format!("msg_{index}");
                            let at = clock.now().as_second();
                            let signature = gateway.sign(&id, at, body.as_bytes());
                            let (status, text) = signed_post(
                                addr,
                                "/v1/webhooks/sms/webhook/inbound",
                                &[
                                    ("webhook-id", id.as_str()),
                                    ("webhook-timestamp", &at.to_string()),
                                    ("webhook-signature", &signature),
                                ],
                                body.as_bytes(),
                            )
                            .await;
                            assert_eq!(status, 204, "{name}: {text}");
                            return Ok::<(), rappel_engine::EngineError>(());
                        }
                        let (status, text) =
                            http(addr, "POST", "/v1/events", &key.api_key, &json!(event)).await;
                        assert_eq!(status, 202, "{name}: {text}");
                    }
                    // The patient opens the link of the last message that carried one, and
                    // posts the page's form.
                    ScenarioEvent::Patient(PatientEvent::Link {
                        appointment,
                        action,
                        ..
                    }) => {
                        let status = match last_link_token(&recorder, appointment) {
                            None => None,
                            Some(token) => {
                                let action = match action {
                                    LinkActionName::Confirm => "confirm",
                                    LinkActionName::Cancel => "cancel",
                                };
                                Some(
                                    form_post(
                                        addr,
                                        &format!("/r/{token}"),
                                        &format!("token={token}&action={action}"),
                                    )
                                    .await,
                                )
                            }
                        };
                        answered.push(status);
                    }
                }
                Ok::<(), rappel_engine::EngineError>(())
            },
        )
        .await
        .unwrap();
        let tz = jiff::tz::TimeZone::get(&scenario.timezone).unwrap();
        let mut actual = collect(&engine, &key.id, &tz).await.unwrap();
        // The patients' answers: the page's status says what the engine's outcome was.
        assert_eq!(
            answered.len(),
            expected.answers.len(),
            "{name}: answers differ"
        );
        for (status, want) in answered.iter().zip(&expected.answers) {
            let fits = match want.outcome {
                AnswerOutcomeName::NoLink => status.is_none(),
                AnswerOutcomeName::TooLate => *status == Some(409),
                AnswerOutcomeName::Unknown => *status == Some(404),
                _ => *status == Some(200),
            };
            assert!(fits, "{name}: {want:?} answered {status:?}");
        }
        actual.answers = expected.answers.clone();
        assert_eq!(
            actual.deliveries, expected.deliveries,
            "{name}: deliveries differ"
        );
        assert_eq!(
            actual.suppressed, expected.suppressed,
            "{name}: suppressions differ"
        );
        assert_eq!(actual.inbox, expected.inbox, "{name}: inbox differs");
        if let Some(expect) = &scenario.expect {
            let failures = check(expect, &actual);
            assert!(failures.is_empty(), "{name}: {failures:?}");
        }
        let _ = stop.send(());
        let _ = server.await;
    }
}
