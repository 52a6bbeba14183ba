//! The patient answers back (issue 16), over real HTTP: the appointment page behind a
//! reminder's link (`/r/{token}`: confirm, cancel before and after the cutoff, expired, foreign,
//! guessed, switched off, forged), the appointment's answer in the API and as FHIR R4, and the
//! signed webhook events on a loopback receiver — ending with the "Done when" flow
//! through the file outbox.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use rappel_channels::sms::webhook::SigningKey;
use rappel_domain::notification::Channel;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

#[path = "../common/mod.rs"]
mod common;
use common::*;

mod done_when;
mod fhir;
mod page;

/// The appointment: Thursday 5 March 2026 at 10:00, booked on Monday 2 March at 08:00 (START).
const APPOINTMENT: &str = "2026-03-05T10:00:00+01:00";

fn loopback_setup(settings: Map<String, Value>) -> Setup {
    Setup {
        engine: rappel_engine::EngineConfig {
            net: rappel_engine::NetPolicy::loopback_for_tests(),
            public_url: "https://rdv.example".into(),
            ..Default::default()
        },
        settings,
        ..Setup::default()
    }
}

impl TestApp {
    async fn directory_and_booking(&self) {
        self.directory_and_booking_as(&self.key.clone()).await;
    }

    async fn directory_and_booking_as(&self, key: &str) {
        let r = self
            .json_as(
                key,
                "PUT",
                "/v1/practitioners/dr1",
                &json!({"name": "Dr Martin", "mobile": "0611111111"}),
            )
            .await;
        assert!(r.status < 300, "{}", r.text());
        let r = self
            .json_as(
                key,
                "PUT",
                "/v1/motives/m1",
                &json!({"name": "Bilan dermatologique"}),
            )
            .await;
        assert!(r.status < 300, "{}", r.text());
        let r = self
            .json_as(
                key,
                "PUT",
                "/v1/patients/p1",
                &json!({"first_name": "Jeanne", "last_name": "Dupont", "email": "jeanne@example.org", "mobile": "0612345678"}),
            )
            .await;
        assert!(r.status < 300, "{}", r.text());
        let r = self
            .json_as(
                key,
                "POST",
                "/v1/events",
                &json!({"type": "appointment.booked", "id": "a1", "patient": "p1", "practitioner": "dr1",
                        "motive": "m1", "start": APPOINTMENT, "location": "12 rue des Lilas, Paris",
                        "source": "staff"}),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.text());
    }

    /// Moves the clock to D-1 13:00 and sends what is due: the SMS reminder goes.
    async fn send_the_sms_reminder(&self) {
        let at: jiff::Timestamp = "2026-03-04T13:00:00+01:00".parse().unwrap();
        self.clock.set(at);
        self.recorder.set_now(at);
        self.engine.dispatch_all_due().await.unwrap();
    }

    /// The token of the last SMS's link to practice `practice`.
    fn sms_token(&self, practice: &str) -> String {
        let sms = self
            .recorder
            .sent()
            .into_iter()
            .rev()
            .find(|r| r.message.channel == Channel::Sms && r.message.practice_id == practice)
            .expect("an SMS was sent");
        token_in(&sms.message.text).unwrap_or_else(|| panic!("no link in {}", sms.message.text))
    }

    async fn page(&self, token: &str) -> Reply {
        self.send("GET", &format!("/r/{token}"), None, &[], None)
            .await
    }

    async fn answer(&self, token: &str, action: &str) -> Reply {
        let body = format!("token={token}&action={action}");
        self.send(
            "POST",
            &format!("/r/{token}"),
            None,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", &format!("http://{}", self.addr)),
            ],
            Some(body.as_bytes()),
        )
        .await
    }

    async fn timeline(&self) -> Vec<Value> {
        self.get("/v1/appointments/a1/timeline").await.json()["entries"]
            .as_array()
            .unwrap()
            .clone()
    }
}

fn token_in(text: &str) -> Option<String> {
    let start = text.find("/r/")? + 3;
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (token.len() == 16).then_some(token)
}

fn assert_patient_page_headers(r: &Reply) {
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("form-action 'self'"), "{csp}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert!(!r.text().contains("<script"), "no JavaScript");
}

// ---- a loopback receiver of the outbound webhooks ------------------------------------------

/// (webhook-id, webhook-timestamp, webhook-signature, body) of one request.
type Seen = (String, String, String, String);

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
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
        receiver.seen.lock().unwrap().push((
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
            body,
        ));
        StatusCode::NO_CONTENT
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(handle))
        .with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}
