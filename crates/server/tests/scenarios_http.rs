//! The scenario files, played through the HTTP API instead of `simulate`: the directory is
//! `PUT`, the settings `PATCH`ed and every event `POST`ed to `/v1/events` at its instant on a
//! controllable clock. The deliveries, suppressions and inbox entries must be exactly those of
//! `rappel simulate` — the server runs the same engine — and satisfy the files' `[expect]`.
//! Tasks are created through `POST /v1/tasks`. Each file is its own test, named by its folder
//! and file (`cargo test -p rappel-server --test scenarios_http -- maddie_`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use libtest_mimic::{Arguments, Trial};

use rappel_engine::Clock;
use rappel_engine::scenario::{
    AnswerOutcomeName, LinkActionName, PatientEvent, Scenario, ScenarioEvent, check,
    last_link_token,
};
use rappel_engine::simulate::{collect, drive, simulate};
use rappel_test_support::app::serve;
use rappel_test_support::engine;
use rappel_test_support::http as client;
use rappel_test_support::scenarios::scenario_files;
use serde_json::{Map, Value, json};

/// One request as the practice's key; returns (status, body).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> (u16, String) {
    let headers = [
        ("Authorization".to_string(), format!("Bearer {key}")),
        ("Content-Type".to_string(), "application/json".to_string()),
    ];
    let reply = client::http(
        addr,
        method,
        path,
        &headers,
        &serde_json::to_vec(body).unwrap(),
    )
    .await;
    (reply.status, reply.text())
}

/// A patient's form post, as a browser on the page sends it; returns the status.
async fn form_post(addr: SocketAddr, path: &str, body: &str) -> u16 {
    let headers = [
        ("Origin".to_string(), format!("http://{addr}")),
        (
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
    ];
    client::http(addr, "POST", path, &headers, body.as_bytes())
        .await
        .status
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
    let headers: Vec<(String, String)> = [("Content-Type", "application/json")]
        .iter()
        .chain(headers)
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let reply = client::http(addr, "POST", path, &headers, body).await;
    (reply.status, reply.text())
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

        let fixture = engine::fixture(engine::Setup {
            start: scenario.start,
            practice_name: "Cabinet".into(),
            preset: scenario.preset.clone(),
            timezone: scenario.timezone.clone(),
            ..engine::Setup::default()
        })
        .await;
        fixture.recorder.set_now(scenario.start);
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
        let app = serve(fixture, config, None).await;
        let (engine, clock, recorder, addr) = (
            app.engine.clone(),
            app.clock.clone(),
            app.recorder.clone(),
            app.addr,
        );
        let (key, practice_id) = (app.key.clone(), app.practice.clone());
        let api = |method: &'static str, path: String, body: Value| {
            let key = key.clone();
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
                .set_operator_settings(&practice_id, &operator)
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
                            http(addr, "POST", "/v1/events", &key, &json!(event)).await;
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
        let mut actual = collect(&engine, &practice_id, &tz).await.unwrap();
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
        app.stop().await;
    }
}
