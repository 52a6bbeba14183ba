//! Issue 13's findings, each proven over real HTTP against the spawned server: outbound
//! requests only to public addresses (webhooks, push), the SMS test send bounded, the plan and
//! quota the operator's, decompression bombs refused at upload, one id rule for event bodies,
//! NUL characters refused on both stores, and outbox files one per practice and message.
//!
//! The HTTP client and the app harness are those of `common/mod.rs`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rappel_engine::{DocumentsConfig, EngineConfig, NetPolicy, TEST_SMS_PER_DAY};
use rappel_store::WebhookEndpoint;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

#[path = "../common/mod.rs"]
mod common;
use common::*;

mod input;
mod operator;
mod ssrf;

// ---- helpers -------------------------------------------------------------------------------------

async fn app_with(net: NetPolicy) -> TestApp {
    spawn_app_from(Setup {
        engine: EngineConfig {
            net,
            ..EngineConfig::default()
        },
        ..Setup::default()
    })
    .await
}

/// A webhook receiver on loopback that records the paths it is posted to.
async fn receiver() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let state = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let state = state.clone();
            async move {
                state.lock().unwrap().push("/hook".to_string());
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

impl TestApp {
    /// A practitioner, a patient with an email address and a mobile, and a booking: one
    /// confirmation email is due at once.
    async fn one_booking(&self) {
        for (path, body) in [
            ("/v1/practitioners/dr1", json!({"name": "Dr Martin"})),
            (
                "/v1/patients/p1",
                json!({"first_name": "Jeanne", "last_name": "Dupont",
                       "email": "jeanne@example.org", "mobile": "06 12 34 56 78"}),
            ),
        ] {
            let r = self.json("PUT", path, &body).await;
            assert!(r.status == 200 || r.status == 201, "{path}: {}", r.text());
        }
        let r = self
            .post_events(&json!({
                "type": "appointment.booked", "id": "a1", "patient": "p1",
                "practitioner": "dr1", "start": "2026-03-12T09:30:00+01:00", "source": "staff"
            }))
            .await;
        assert_eq!(r.status, 202, "{}", r.text());
    }

    /// The practice's webhook deliveries after the booking was sent and events were posted.
    async fn deliveries(&self) -> Vec<Value> {
        self.get("/v1/webhook/deliveries").await.json()["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn settings(&self) -> Value {
        self.get("/v1/settings").await.json()["settings"].clone()
    }
}
