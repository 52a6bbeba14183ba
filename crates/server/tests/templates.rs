//! Black-box tests of templates, the test send and outbound webhooks: the real router on a
//! loopback port, a fresh in-memory database and a simulated clock per test, the queue driven
//! by the test (`dispatch_all_due`, `deliver_webhooks`) as the worker loop does, and a real
//! webhook receiver on loopback.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use jiff::Timestamp;
use rappel_channels::sms::webhook::SigningKey;
use serde_json::{Value, json};
use tokio::net::TcpListener;

mod common;
use common::*;

// ---- the app (common/mod.rs), and its helpers for these tests ---------------------------------

impl TestApp {
    async fn send_json(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
        self.send(method, path, Some(&self.key), &[], bytes.as_deref())
            .await
    }

    /// A practitioner, a motive with instructions and a patient with email and mobile.
    async fn directory(&self) {
        for (path, body) in [
            ("/v1/practitioners/dr1", json!({"name": "Dr Martin"})),
            (
                "/v1/motives/m1",
                json!({"name": "Détartrage", "instructions": "Venir 10 minutes en avance."}),
            ),
            (
                "/v1/patients/p1",
                json!({
                    "first_name": "Jeanne",
                    "last_name": "Dupont",
                    "email": "jeanne@example.org",
                    "mobile": "06 12 34 56 78"
                }),
            ),
        ] {
            let r = self.json("PUT", path, &body).await;
            assert!(r.status == 200 || r.status == 201, "{path}: {}", r.text());
        }
    }

    async fn book(&self, id: &str, start: &str) {
        let r = self
            .json(
                "POST",
                "/v1/events",
                &json!({
                    "type": "appointment.booked",
                    "id": id,
                    "patient": "p1",
                    "practitioner": "dr1",
                    "motive": "m1",
                    "start": start,
                    "source": "staff"
                }),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
}

/// The app with the operator's allowance for plain http on loopback, where the webhook
/// receiver of these tests listens (`RAPPEL_ALLOW_HTTP_WEBHOOKS`, `RAPPEL_ALLOW_LOOPBACK_TARGETS`).
async fn spawn_app_reaching_loopback() -> TestApp {
    spawn_app_from(Setup {
        engine: rappel_engine::EngineConfig {
            net: rappel_engine::NetPolicy::loopback_for_tests(),
            ..Default::default()
        },
        ..Setup::default()
    })
    .await
}

// ---- templates -------------------------------------------------------------------------------

#[tokio::test]
async fn an_invalid_template_is_refused_with_its_part_and_line() {
    let app = spawn_app().await;
    let r = app
        .json(
            "PUT",
            "/v1/templates/reminder/email?locale=fr",
            &json!({"text": "Bonjour {{ patient.first_name }},\n{{ rendezvous.heure }}\n"}),
        )
        .await;
    let problem = r.problem(422);
    assert_eq!(problem["field"], "text");
    assert!(
        problem["detail"].as_str().unwrap().contains("line 2"),
        "{problem}"
    );
    let r = app
        .json(
            "PUT",
            "/v1/templates/reminder/sms",
            &json!({"text": "{% for a in appointments %}{{ a.date_text }}"}),
        )
        .await;
    assert_eq!(r.problem(422)["field"], "text");
    // A part the channel does not have, and an unknown kind.
    let r = app
        .json(
            "PUT",
            "/v1/templates/reminder/sms",
            &json!({"html": "<p>x</p>"}),
        )
        .await;
    assert_eq!(r.problem(422)["field"], "html");
    app.send_json("GET", "/v1/templates/birthday/email", None)
        .await
        .problem(404);
    // Nothing was stored.
    let view = app
        .send_json("GET", "/v1/templates/reminder/email", None)
        .await
        .json();
    assert_eq!(view["origin"], "default");
    assert!(
        view["parts"]["text"]
            .as_str()
            .unwrap()
            .contains("Nous vous rappelons {{ 'vos rendez-vous' if appointments | length > 1")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_practice_template_is_used_by_the_next_message_and_deleting_it_restores_the_default() {
    let app = spawn_app().await;
    app.directory().await;
    let r = app
        .json(
            "PUT",
            "/v1/templates/confirmation/email",
            &json!({
                "subject": "RDV confirmé le {{ appointments[0].date_text }}",
                "text": "Bonjour {{ patient.first_name }}, à {{ appointments[0].time_text }} avec {{ appointments[0].practitioner }}.\n",
                "html": "<p>{{ patient.first_name }} &mdash; {{ appointments[0].time_text }}</p>"
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["origin"], "practice");
    let list = app
        .send_json("GET", "/v1/templates?locale=fr", None)
        .await
        .json();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 11 * 4);
    assert_eq!(
        items.iter().filter(|v| v["origin"] == "practice").count(),
        1
    );

    app.book("a1", "2026-03-12T09:30:00+01:00").await;
    app.engine.dispatch_all_due().await.unwrap();
    let sent = app.recorder.sent();
    let confirmation = sent
        .iter()
        .find(|r| r.message.id.contains("confirmation") && r.message.channel.as_str() == "email")
        .unwrap_or_else(|| {
            panic!(
                "no confirmation email in {:?}",
                sent.iter().map(|r| &r.message.id).collect::<Vec<_>>()
            )
        });
    assert_eq!(
        confirmation.message.subject.as_deref(),
        Some("RDV confirmé le jeudi 12 mars 2026")
    );
    assert_eq!(
        confirmation.message.text,
        "Bonjour Jeanne, à 09h30 avec Dr Martin.\n"
    );
    assert_eq!(
        confirmation.message.html.as_deref(),
        Some("<p>Jeanne &mdash; 09h30</p>")
    );

    let r = app
        .send_json("DELETE", "/v1/templates/confirmation/email", None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    app.book("a2", "2026-03-13T10:00:00+01:00").await;
    app.engine.dispatch_all_due().await.unwrap();
    let sent = app.recorder.sent();
    let second = sent
        .iter()
        .find(|r| r.message.id.contains("a2") && r.message.channel.as_str() == "email")
        .expect("a second confirmation");
    assert!(
        second
            .message
            .text
            .starts_with("Bonjour Jeanne Dupont,\n\nVotre rendez-vous est confirmé : vendredi 13 mars 2026 à 10h00 avec Dr Martin (Détartrage)."),
        "{}",
        second.message.text
    );
    assert!(
        second
            .message
            .text
            .contains("Consignes : Venir 10 minutes en avance.")
    );
    app.stop().await;
}

#[tokio::test]
async fn the_preview_renders_sources_or_names_the_line_at_fault_and_counts_sms_segments() {
    let app = spawn_app().await;
    let r = app
        .json(
            "POST",
            "/v1/templates/preview",
            &json!({"kind": "reminder", "channel": "sms", "text": "{{ practice.name }} : RDV {{ appointments[0].date_text }} à {{ appointments[0].time_text }}"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["ok"], true);
    let part = &body["parts"][0];
    assert_eq!(part["part"], "text");
    assert!(
        part["output"]
            .as_str()
            .unwrap()
            .starts_with("Cabinet A : RDV mardi 3 mars 2026 à 09h30"),
        "{part}"
    );
    assert_eq!(part["sms_segments"], 1);
    let r = app
        .json(
            "POST",
            "/v1/templates/preview",
            &json!({"kind": "reminder", "channel": "email", "locale": "en", "subject": "ok", "text": "line one\n{% if %}"}),
        )
        .await;
    let body = r.json();
    assert_eq!(body["ok"], false);
    let text = body["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["part"] == "text")
        .unwrap();
    assert_eq!(text["error"]["line"], 2, "{text}");
    let html = body["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["part"] == "html")
        .unwrap();
    assert!(
        html["output"]
            .as_str()
            .unwrap()
            .contains("Hello Jeanne Exemple,")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_test_send_hands_the_sample_message_to_the_channel_at_once() {
    let app = spawn_app().await;
    app.directory().await;
    let r = app
        .json(
            "POST",
            "/v1/test-send",
            &json!({"kind": "reminder", "channel": "sms", "to": "06 98 76 54 32"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let body = r.json();
    assert_eq!(body["accepted"], true);
    assert_eq!(body["to"], "+33698765432");
    let sent = app.recorder.sent();
    assert_eq!(sent.len(), 1);
    let message = &sent[0].message;
    assert!(message.id.starts_with("test-"));
    assert_eq!(message.to, "+33698765432");
    assert_eq!(
        message.text,
        "Cabinet A : Nous vous rappelons votre rendez-vous : mardi 3 mars 2026 à 09h30 avec Dr Martin, 12 rue de la Paix, 75002 Paris. \
         Confirmer ou annuler : http://127.0.0.1:8080/r/AbCdEfGhIjKlMnOp"
    );
    assert_eq!(body["rendered"]["text"], message.text.as_str());

    let r = app
        .json(
            "POST",
            "/v1/test-send",
            &json!({"kind": "no_show", "channel": "email", "to": "moi@example.org"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let sent = app.recorder.sent();
    assert_eq!(sent.len(), 2);
    assert!(
        sent[1]
            .message
            .html
            .as_deref()
            .unwrap()
            .contains("Jeanne Exemple")
    );

    // `to` is checked for its channel; nothing is sent.
    for (channel, to) in [
        ("sms", "01 44 55 66 77"),
        ("email", "not an address"),
        ("push", "http://x"),
    ] {
        let r = app
            .json(
                "POST",
                "/v1/test-send",
                &json!({"kind": "reminder", "channel": channel, "to": to}),
            )
            .await;
        assert_eq!(r.problem(422)["field"], "to", "{channel} {to}");
    }
    assert_eq!(app.recorder.sent().len(), 2);
    app.stop().await;
}

// ---- outbound webhooks ----------------------------------------------------------------------------

/// (webhook-id, webhook-timestamp, webhook-signature, body) of one request.
type Seen = (String, String, String, String);

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// The answers to give, in order; 204 once they are spent.
    answers: Arc<Mutex<std::collections::VecDeque<StatusCode>>>,
}

impl Receiver {
    fn answering(answers: &[StatusCode]) -> Receiver {
        Receiver {
            answers: Arc::new(Mutex::new(answers.iter().copied().collect())),
            ..Receiver::default()
        }
    }
}

async fn spawn_receiver(receiver: Receiver) -> SocketAddr {
    async fn handle(
        axum::extract::State(receiver): axum::extract::State<Receiver>,
        headers: HeaderMap,
        body: String,
    ) -> StatusCode {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let mut seen = receiver.seen.lock().unwrap();
        seen.push((
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
            body,
        ));
        receiver
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(StatusCode::NO_CONTENT)
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(handle))
        .with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn status_changes_are_posted_signed_and_retried_after_a_server_error() {
    let app = spawn_app_reaching_loopback().await;
    app.directory().await;
    // The first request fails, as a receiver that is being redeployed would.
    let receiver = Receiver::answering(&[StatusCode::INTERNAL_SERVER_ERROR]);
    let receiver_addr = spawn_receiver(receiver.clone()).await;
    let r = app
        .json(
            "PUT",
            "/v1/webhook",
            &json!({"url": format!("http://{receiver_addr}/hook")}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let shown = app.send_json("GET", "/v1/webhook", None).await.json();
    assert!(
        shown.get("secret").is_none(),
        "the secret is shown once: {shown}"
    );
    app.json("PUT", "/v1/webhook", &json!({"url": "ftp://x"}))
        .await
        .problem(422);

    app.book("a1", "2026-03-12T09:30:00+01:00").await;
    app.engine.dispatch_all_due().await.unwrap();
    assert!(!app.recorder.sent().is_empty());
    // The first attempt meets a 500 and is kept for later.
    assert!(app.engine.deliver_webhooks().await.unwrap() >= 1);
    let deliveries = app
        .send_json("GET", "/v1/webhook/deliveries", None)
        .await
        .json();
    let first = deliveries["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["last_error"].is_string())
        .unwrap_or_else(|| panic!("no failed attempt in {deliveries}"))
        .clone();
    assert_eq!(first["status"], "pending");
    assert_eq!(first["attempts"], 1);
    // Not before its backoff…
    let before = receiver.seen.lock().unwrap().len();
    app.engine.deliver_webhooks().await.unwrap();
    assert_eq!(receiver.seen.lock().unwrap().len(), before);
    // …then again, delivered.
    app.clock
        .set(app.engine.now() + jiff::SignedDuration::from_mins(2));
    app.engine.deliver_webhooks().await.unwrap();
    let deliveries = app
        .send_json("GET", "/v1/webhook/deliveries", None)
        .await
        .json();
    for d in deliveries["items"].as_array().unwrap() {
        assert_eq!(d["status"], "delivered", "{d}");
    }
    let retried = deliveries["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == first["id"])
        .unwrap();
    assert_eq!(retried["attempts"], 2);

    let key = SigningKey::parse(&secret).unwrap();
    let seen = receiver.seen.lock().unwrap().clone();
    assert!(seen.len() >= 2);
    assert_eq!(
        seen[0].0,
        seen.iter().rev().find(|s| s.0 == seen[0].0).unwrap().0
    );
    assert_eq!(
        seen.iter().filter(|s| s.0 == seen[0].0).count(),
        2,
        "the retry keeps its id"
    );
    for (id, timestamp, signature, body) in &seen {
        rappel_test_support::signed::dump(&secret, id, timestamp, signature, body);
        let ts: i64 = timestamp.parse().unwrap();
        assert!((Timestamp::now().as_second() - ts).abs() < 300);
        assert_eq!(&key.sign(id, ts, body.as_bytes()), signature);
        let event: Value = serde_json::from_str(body).unwrap();
        assert_eq!(event["type"], "notification.sent");
        assert_eq!(event["data"]["status"], "sent");
        assert!(event["data"]["appointments"][0] == "a1", "{event}");
        // No rendered text and no contact details leave in an event.
        assert!(!body.contains("jeanne@example.org") && !body.contains("Bonjour"));
    }
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_template_and_webhook_routes() {
    let app = spawn_app().await;
    let doc = http(app.addr, "GET", "/v1/openapi.json", &[], b"")
        .await
        .json();
    for (method, path) in [
        ("get", "/v1/templates"),
        ("get", "/v1/templates/{kind}/{channel}"),
        ("put", "/v1/templates/{kind}/{channel}"),
        ("delete", "/v1/templates/{kind}/{channel}"),
        ("post", "/v1/templates/preview"),
        ("post", "/v1/test-send"),
        ("get", "/v1/webhook"),
        ("put", "/v1/webhook"),
        ("delete", "/v1/webhook"),
        ("get", "/v1/webhook/deliveries"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    app.stop().await;
}

/// The statuses of the practice's webhook events, after one confirmation email was sent.
async fn one_event(app: &TestApp, receiver: &Receiver) -> SocketAddr {
    app.directory().await;
    let addr = spawn_receiver(receiver.clone()).await;
    let r = app
        .json(
            "PUT",
            "/v1/webhook",
            &json!({"url": format!("http://{addr}/hook"), "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json().get("secret").is_none(),
        "a given secret is not echoed"
    );
    app.book("a1", "2026-03-12T09:30:00+01:00").await;
    app.engine.dispatch_all_due().await.unwrap();
    addr
}

async fn statuses(app: &TestApp) -> Vec<(String, i64)> {
    let deliveries = app
        .send_json("GET", "/v1/webhook/deliveries", None)
        .await
        .json();
    deliveries["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["status"].as_str().unwrap().to_string(),
                d["attempts"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_event_the_receiver_refuses_fails_at_once() {
    let app = spawn_app_reaching_loopback().await;
    let receiver = Receiver::answering(&[StatusCode::BAD_REQUEST; 10]);
    one_event(&app, &receiver).await;
    app.engine.deliver_webhooks().await.unwrap();
    let all = statuses(&app).await;
    assert!(!all.is_empty());
    assert!(all.iter().all(|(s, n)| s == "failed" && *n == 1), "{all:?}");
    app.stop().await;
}

#[tokio::test]
async fn an_event_still_failing_after_24_hours_is_given_up() {
    let app = spawn_app_reaching_loopback().await;
    let receiver = Receiver::answering(&[StatusCode::SERVICE_UNAVAILABLE; 100]);
    one_event(&app, &receiver).await;
    let mut rounds = 0;
    loop {
        app.engine.deliver_webhooks().await.unwrap();
        let all = statuses(&app).await;
        if all.iter().all(|(s, _)| s == "failed") {
            // The clock jumps 6 hours between runs: one attempt each, until the next one would
            // fall more than 24 hours after the event.
            assert!(all.iter().all(|(_, n)| *n == 5), "{all:?}");
            break;
        }
        assert!(all.iter().all(|(s, _)| s == "pending"), "{all:?}");
        rounds += 1;
        assert!(rounds < 40, "never given up: {all:?}");
        app.clock
            .set(app.engine.now() + jiff::SignedDuration::from_hours(6));
    }
    assert!(
        app.engine.now()
            >= START.parse::<Timestamp>().unwrap() + jiff::SignedDuration::from_hours(24)
    );
    app.stop().await;
}
