//! Black-box tests of the HTTP API: the real router served on a loopback port, a fresh
//! in-memory database and a simulated clock per test, and HTTP spoken for real by a minimal
//! HTTP/1.1 client (`common/mod.rs`) so that status lines, headers and bodies are what a client
//! sees.

use jiff::{SignedDuration, Timestamp};
use rappel_server::ServerConfig;
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;

#[path = "../common/mod.rs"]
mod common;
use common::*;

mod directory;
mod errors;
mod events;
mod operations;
mod settings;
mod tenants;

// ---- the app (common/mod.rs), and its helpers for these tests ---------------------------------

impl TestApp {
    /// Another practice on the same server, and its key.
    async fn other_practice(&self, preset: &str) -> String {
        self.engine
            .create_practice("Cabinet B", preset, "Europe/Paris", Map::new())
            .await
            .expect("practice")
            .api_key
    }

    fn advance(&self, by: SignedDuration) {
        self.clock.set(self.engine.now() + by);
    }

    /// Dr Martin, the visit reason `m1` and Jeanne Dupont (`p1`), with email and mobile.
    async fn seed_directory(&self) {
        self.seed_directory_as(&self.key.clone()).await;
    }

    async fn seed_directory_as(&self, key: &str) {
        let r = self
            .json_as(
                key,
                "PUT",
                "/v1/practitioners/dr1",
                &json!({"name": "Dr Martin", "email": "martin@cabinet.example"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let r = self
            .json_as(
                key,
                "PUT",
                "/v1/motives/m1",
                &json!({"name": "Consultation", "instructions": "Apportez votre carte Vitale."}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let r = self.json_as(key, "PUT", "/v1/patients/p1", &jeanne()).await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
}

fn jeanne() -> Value {
    json!({
        "first_name": "Jeanne",
        "last_name": "Dupont",
        "email": "jeanne@example.org",
        "mobile": "06 12 34 56 78",
        "birth_date": "1980-03-02",
        "address": {"lines": ["12 rue des Lilas"], "postal_code": "75011", "city": "Paris"}
    })
}

fn booking(id: &str, start: &str) -> Value {
    json!({
        "type": "appointment.booked",
        "id": id,
        "patient": "p1",
        "practitioner": "dr1",
        "motive": "m1",
        "start": start,
        "source": "staff"
    })
}
