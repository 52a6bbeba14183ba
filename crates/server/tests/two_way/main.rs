//! Two-way SMS over real HTTP (issue 16): incoming SMS posted the way each provider posts them
//! (Twilio's signed form, OVHcloud's token callback, the gateway's Standard-Webhooks JSON),
//! right and forged; every keyword; free text to the « Messages reçus » box; a STOP followed by
//! a due reminder, suppressed with its reason; and the outbound webhooks received by a loopback
//! server, their signatures checked.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use rappel_channels::sms::twilio;
use rappel_channels::sms::webhook::SigningKey;
use rappel_engine::{EngineConfig, NetPolicy};
use rappel_server::{ServerConfig, WebhookSecrets};
use serde_json::{Value, json};
use tokio::net::TcpListener;

#[path = "../common/mod.rs"]
mod common;
use common::*;

mod inbound;
mod keywords;
mod practice;

const TWILIO_TOKEN: &str = "twilio-auth-token";
const OVH_TOKEN: &str = "ovh-callback-token";
const GATEWAY_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The patient's mobile, as the providers write it.
const MOBILE: &str = "+33612345678";

fn secrets() -> WebhookSecrets {
    WebhookSecrets {
        twilio_auth_token: Some(TWILIO_TOKEN.into()),
        ovh_callback_token: Some(OVH_TOKEN.into()),
        sms_webhook_key: Some(SigningKey::parse(GATEWAY_SECRET).unwrap()),
        bounce: None,
        bounce_webhook_token: None,
        brevo_webhook_token: None,
        mailjet_webhook_token: None,
    }
}

async fn spawn() -> TestApp {
    spawn_app_from(Setup {
        config: ServerConfig {
            webhooks: secrets(),
            ..ServerConfig::default()
        },
        engine: EngineConfig {
            net: NetPolicy::loopback_for_tests(),
            ..EngineConfig::default()
        },
        ..Setup::default()
    })
    .await
}

/// One request the loopback receiver got.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// The practice software: a loopback server that keeps every event posted to it.
async fn receiver() -> (SocketAddr, Arc<Mutex<Vec<Received>>>) {
    let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
    let state = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string()
                    };
                    state.lock().unwrap().push(Received {
                        id: h("webhook-id"),
                        timestamp: h("webhook-timestamp"),
                        signature: h("webhook-signature"),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

/// `application/x-www-form-urlencoded`, as Twilio posts it.
fn form(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

impl TestApp {
    /// A practitioner, patient p1 with a mobile, and two appointments: a1 on Wednesday 4 March
    /// (its SMS reminder goes on Tuesday at 13:00) and a2 on Friday 6 March (Thursday 13:00).
    async fn patient_with_appointments(&self) {
        for (path, body) in [
            ("/v1/practitioners/dr1", json!({"name": "Dr Martin"})),
            (
                "/v1/patients/p1",
                json!({"first_name": "Jeanne", "last_name": "Dupont", "mobile": "06 12 34 56 78"}),
            ),
        ] {
            let r = self.json("PUT", path, &body).await;
            assert!(r.status == 200 || r.status == 201, "{path}: {}", r.text());
        }
        for (id, start) in [
            ("a1", "2026-03-04T09:30:00+01:00"),
            ("a2", "2026-03-06T10:00:00+01:00"),
        ] {
            let r = self
                .post_events(&json!({
                    "type": "appointment.booked", "id": id, "patient": "p1",
                    "practitioner": "dr1", "start": start, "source": "staff"
                }))
                .await;
            assert_eq!(r.status, 202, "{}", r.text());
        }
    }

    /// Moves the clock and sends what is due.
    async fn at(&self, instant: &str) {
        let now: Timestamp = instant.parse().unwrap();
        self.clock.set(now);
        self.recorder.set_now(now);
        self.engine.dispatch_all_due().await.unwrap();
    }

    /// p1's reminder of a1 went by SMS: Rappel now knows whose message p1's number answers.
    async fn reminder_sent(&self) {
        self.patient_with_appointments().await;
        self.at("2026-03-03T13:00:00+01:00").await;
        assert!(
            self.sms_texts()
                .iter()
                .any(|t| t.contains("Rappel") || t.contains("rappel")),
            "the reminder went: {:?}",
            self.sms_texts()
        );
    }

    fn sms_texts(&self) -> Vec<String> {
        self.recorder
            .sent()
            .into_iter()
            .filter(|r| r.message.channel == rappel_domain::notification::Channel::Sms)
            .map(|r| r.message.text)
            .collect()
    }

    /// Twilio's incoming message webhook, signed with `token`.
    async fn twilio_inbound(&self, sid: &str, from: &str, body: &str, token: &str) -> Reply {
        let path = "/v1/webhooks/sms/twilio/inbound";
        let params: Vec<(String, String)> = [
            ("ToCountry", "FR"),
            ("SmsMessageSid", sid),
            ("NumMedia", "0"),
            ("SmsSid", sid),
            ("SmsStatus", "received"),
            ("Body", body),
            ("To", "+33700000000"),
            ("NumSegments", "1"),
            ("MessageSid", sid),
            ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
            ("From", from),
            ("ApiVersion", "2010-04-01"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        let url = format!("{}{path}", self.engine.config().public_url);
        let signature = twilio::signature(token, &url, &params);
        self.request(
            "POST",
            path,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Signature", &signature),
            ],
            form(&params).as_bytes(),
        )
        .await
    }

    async fn opt_out(&self) -> Value {
        let r = self.get("/v1/patients/p1/sms-opt-out").await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    async fn received(&self, handled: bool) -> Vec<Value> {
        let r = self
            .get(&format!("/v1/received-messages?handled={handled}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["items"].as_array().unwrap().clone()
    }

    async fn sms_rows(&self) -> Vec<Value> {
        let r = self.get("/v1/notifications?channel=sms&limit=200").await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["items"].as_array().unwrap().clone()
    }
}
