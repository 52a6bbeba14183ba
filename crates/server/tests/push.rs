//! `PUT` and `DELETE /v1/patients/{id}/push-subscriptions` through the real router on a
//! loopback port, with a fresh in-memory database.

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;
use common::*;

const P256DH: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
const ENDPOINT: &str = "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk";

/// The app of `common/mod.rs`, for a practice named "Cabinet".
async fn spawn_app() -> TestApp {
    spawn_app_from(Setup {
        practice_name: "Cabinet",
        ..Setup::default()
    })
    .await
}

impl TestApp {
    /// One request with `Connection: close`; answers the status and the JSON body, if any.
    async fn send_json(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Authorization: Bearer {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.addr,
            self.key,
            body.len()
        );
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").expect("a complete answer");
        assert!(
            !head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "this client reads only sized bodies"
        );
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let json = serde_json::from_str(body).unwrap_or(Value::Null);
        (status, json)
    }

    async fn put_patient(&self) {
        let (status, _) = self
            .send_json(
                "PUT",
                "/v1/patients/p1",
                Some(&json!({"first_name": "Jeanne", "last_name": "Durand"})),
            )
            .await;
        assert_eq!(status, 201);
    }
}

fn subscription(endpoint: &str) -> Value {
    json!({
        "endpoint": endpoint,
        "expirationTime": null,
        "keys": {"p256dh": P256DH, "auth": AUTH},
    })
}

#[tokio::test]
async fn a_browser_subscription_is_recorded_replaced_and_removed() {
    let app = spawn_app().await;
    app.put_patient().await;
    let path = "/v1/patients/p1/push-subscriptions";

    let (status, body) = app
        .send_json("PUT", path, Some(&subscription(ENDPOINT)))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["endpoint"], ENDPOINT);
    let (status, _) = app
        .send_json("PUT", path, Some(&subscription(ENDPOINT)))
        .await;
    assert_eq!(status, 200, "the same endpoint again replaces it");
    let patient = app.engine.patient(&app.practice, "p1").await.unwrap();
    assert_eq!(patient.push_subscriptions.len(), 1);
    assert_eq!(patient.push_subscriptions[0].p256dh, P256DH);
    // The keys go in and are never read back: the patient as the API answers it has none.
    let (status, answered) = app.send_json("GET", "/v1/patients/p1", None).await;
    assert_eq!(status, 200);
    assert!(answered.get("push_subscriptions").is_none(), "{answered}");
    assert!(!answered.to_string().contains(AUTH), "{answered}");

    // Replacing the patient from the practice software keeps the browser's subscription.
    let (status, answered_put) = app
        .send_json(
            "PUT",
            "/v1/patients/p1",
            Some(&json!({"first_name": "Jeanne", "last_name": "Martin"})),
        )
        .await;
    assert_eq!(status, 200);
    assert!(!answered_put.to_string().contains(AUTH), "{answered_put}");
    let patient = app.engine.patient(&app.practice, "p1").await.unwrap();
    assert_eq!(patient.push_subscriptions.len(), 1);

    let encoded: String = form_encode(ENDPOINT);
    let (status, _) = app
        .send_json("DELETE", &format!("{path}?endpoint={encoded}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, problem) = app
        .send_json("DELETE", &format!("{path}?endpoint={encoded}"), None)
        .await;
    assert_eq!(status, 404, "{problem}");
    let patient = app.engine.patient(&app.practice, "p1").await.unwrap();
    assert!(patient.push_subscriptions.is_empty());
}

#[tokio::test]
async fn a_bad_subscription_is_refused_naming_the_field() {
    let app = spawn_app().await;
    app.put_patient().await;
    let path = "/v1/patients/p1/push-subscriptions";
    let cases = [
        (subscription("http://push.example.net/x"), "endpoint"),
        (subscription("https://10.0.0.1/x"), "endpoint"),
        (
            json!({"endpoint": ENDPOINT, "keys": {"p256dh": "BCVx", "auth": AUTH}}),
            "keys.p256dh",
        ),
        (
            json!({"endpoint": ENDPOINT, "keys": {"p256dh": P256DH, "auth": "c2hvcnQ"}}),
            "keys.auth",
        ),
        (json!({"endpoint": ENDPOINT}), "keys"),
    ];
    for (body, field) in cases {
        let (status, problem) = app.send_json("PUT", path, Some(&body)).await;
        assert_eq!(status, 422, "{body} → {problem}");
        assert_eq!(problem["field"], field, "{body} → {problem}");
    }
    let (status, _) = app
        .send_json(
            "PUT",
            "/v1/patients/nobody/push-subscriptions",
            Some(&subscription(ENDPOINT)),
        )
        .await;
    assert_eq!(status, 404);
}

/// `application/x-www-form-urlencoded` for a query value.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
