//! Black-box tests of the HTTP API: the real router served on a loopback port, a fresh
//! in-memory database and a simulated clock per test, and HTTP spoken for real by a minimal
//! HTTP/1.1 client (`common/mod.rs`) so that status lines, headers and bodies are what a client
//! sees.

use jiff::{SignedDuration, Timestamp};
use rappel_server::ServerConfig;
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;

mod common;
use common::*;

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

// ---- operations -----------------------------------------------------------------------------------

#[tokio::test]
async fn health_answers_ok_without_an_api_key() {
    let app = spawn_app().await;
    let r = app.send("GET", "/health", None, &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": "ok"}));
    app.stop().await;
}

#[tokio::test]
async fn serve_returns_once_shutdown_completes() {
    let app = spawn_app().await;
    let addr = app.addr;
    app.stop().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_show_the_queue() {
    let app = spawn_app().await;
    app.seed_directory().await;
    app.post_events(&booking("a1", "2026-03-12T09:30:00+01:00"))
        .await;
    app.get("/v1/patients/nobody").await;
    app.send("GET", "/v1/settings", None, &[], None).await;
    let r = app.send("GET", "/metrics", None, &[], None).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = r.text();
    for line in [
        "rappel_http_requests_total{method=\"PUT\",route=\"/v1/patients/{id}\",status=\"201\"} 1",
        "rappel_http_requests_total{method=\"GET\",route=\"/v1/patients/{id}\",status=\"404\"} 1",
        "rappel_http_requests_total{method=\"GET\",route=\"/v1/settings\",status=\"401\"} 1",
        "rappel_http_requests_total{method=\"POST\",route=\"/v1/events\",status=\"202\"} 1",
        "rappel_events_ingested_total{outcome=\"applied\"} 1",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    assert!(
        text.contains("rappel_notifications{status=\"pending\",channel=\"email\"}"),
        "{text}"
    );
    let depth: i64 = text
        .lines()
        .find_map(|l| l.strip_prefix("rappel_queue_depth "))
        .expect("queue depth")
        .parse()
        .unwrap();
    assert!(depth > 0, "a booking plans messages: {text}");
    assert!(text.contains("rappel_dispatch_lag_seconds 0.000"), "{text}");
    // Ids never become label values: the route template does.
    assert!(!text.contains("nobody"));
    assert!(
        text.contains("rappel_handoff_lateness_seconds_count 0"),
        "nothing handed off yet: {text}"
    );

    // The confirmation goes: one hand-off, on time.
    app.engine.dispatch_all_due().await.unwrap();
    let text = app.send("GET", "/metrics", None, &[], None).await.text();
    for line in [
        "rappel_handoffs_total{channel=\"email\",outcome=\"sent\"} 1",
        "rappel_handoff_lateness_seconds_bucket{le=\"0.1\"} 1",
        "rappel_handoff_lateness_seconds_bucket{le=\"+Inf\"} 1",
        "rappel_handoff_lateness_seconds_count 1",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    app.stop().await;
}

/// Every route the server registers is served, and is in the document (and on the page) unless
/// it is one of the deliberate exclusions. The list comes from the registrations themselves
/// (`rappel_server::registered_routes`): the API's routes are registered with their
/// description (`OpenApiRouter`), the web interface's pages through a recording router.
#[tokio::test]
async fn the_openapi_document_and_the_docs_page_describe_every_route() {
    let app = spawn_app().await;
    let r = app.send("GET", "/v1/openapi.json", None, &[], None).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let page = app.send("GET", "/v1/docs", None, &[], None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(
        page.header("content-security-policy"),
        Some("default-src 'none'; style-src 'unsafe-inline'")
    );
    let html = page.text();
    assert!(html.starts_with("<!DOCTYPE html>"));

    let routes = rappel_server::registered_routes();
    assert!(routes.len() > 90, "only {} routes registered", routes.len());
    for route in &routes {
        let (method, path) = (route.method.as_str(), route.path.as_str());
        // Served: a request reaches the route (no fallback 404, no 405), with the practice's
        // key for the API. Placeholders become `x`, an id that exists nowhere.
        let concrete: String = path
            .split('/')
            .map(|part| if part.starts_with('{') { "x" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        let verb = if method == "*" { "GET" } else { method };
        let reply = app
            .send(&verb.to_uppercase(), &concrete, Some(&app.key), &[], None)
            .await;
        let fallback = reply.status == 404
            && (reply.text().contains("no route for")
                || reply.text().contains("aucune page de Rappel"));
        assert!(!fallback, "{method} {path} is registered but not served");
        if method != "*" {
            assert_ne!(
                reply.status, 405,
                "{method} {path} is registered but not served"
            );
        }
        if route.documented {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} is not documented"
            );
            assert!(html.contains(path), "{path} missing from the page");
        } else {
            // The one deliberate exclusion: the web interface's pages (HTML for a signed-in
            // person, not an API). None of them may take an API path.
            let api = path.starts_with("/v1") || path.starts_with("/d/") || path.starts_with("/r/");
            assert!(
                !api && path != "/health" && path != "/metrics",
                "{path} is registered as a page of the web interface"
            );
            assert!(doc["paths"].get(path).is_none(), "{path}");
        }
    }
    // And the document describes nothing that is not served.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            assert!(
                routes
                    .iter()
                    .any(|r| r.documented && &r.path == path && &r.method == method),
                "{method} {path} is documented but not registered"
            );
        }
    }
    assert!(html.contains("id=\"problem-invalid-request\""));
    assert!(!html.contains("<script"), "the page runs no script");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page loads nothing from elsewhere"
    );
    app.stop().await;
}

// ---- errors common to every route ---------------------------------------------------------------

/// Issue 13, row 18: what a bad path parameter gets is a problem, and the document says so for
/// every operation that takes one: 422 for an id over 128 characters or with a control
/// character (which the id's schema also excludes), 400 for a parameter that is not valid
/// percent-encoded UTF-8, the patient's document page included.
#[tokio::test]
async fn bad_path_parameters_get_the_problems_the_document_lists() {
    let app = spawn_app().await;
    let long = "x".repeat(129);
    let r = app.get(&format!("/v1/patients/{long}")).await;
    assert_eq!(r.problem(422)["field"], "id");
    let r = app.get("/v1/patients/a%01b").await;
    assert_eq!(r.problem(422)["field"], "id");
    let r = app.get("/v1/patients/a%C2%85b").await;
    assert_eq!(
        r.problem(422)["field"],
        "id",
        "C1 controls are controls too"
    );
    app.get("/v1/patients/%FF").await.problem(400);
    app.send("GET", "/d/%FF", None, &[], None)
        .await
        .problem(400);
    app.send("POST", "/d/%FF", None, &[], Some(b"birth_date=1980-03-02"))
        .await
        .problem(400);

    let doc = app
        .send("GET", "/v1/openapi.json", None, &[], None)
        .await
        .json();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.contains('{') {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let Some(responses) = op.get("responses") else {
                continue;
            };
            assert!(responses["400"].is_object(), "{method} {path}: no 400");
            if path.starts_with("/v1/") {
                assert!(responses["422"].is_object(), "{method} {path}: no 422");
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 25,
        "only {checked} operations with path parameters"
    );
    let id = &doc["paths"]["/v1/patients/{id}"]["get"]["parameters"][0]["schema"];
    assert_eq!(id["maxLength"], 128);
    let pattern = id["pattern"].as_str().unwrap();
    assert!(
        pattern.contains("\\u0000-\\u001f") && pattern.contains("\\u007f-\\u009f"),
        "{pattern}"
    );
    app.stop().await;
}

#[tokio::test]
async fn v1_routes_answer_401_problem_json_without_a_valid_key() {
    let app = spawn_app().await;
    let none = app.send("GET", "/v1/settings", None, &[], None).await;
    none.problem(401);
    assert!(
        none.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    let wrong = app
        .send(
            "GET",
            "/v1/settings",
            Some("rpl_nope_nope_0123456789abcdef0123456789abcdef"),
            &[],
            None,
        )
        .await;
    wrong.problem(401);
    // The right practice and key id with a wrong secret is no better.
    let mut forged = app.key.clone();
    forged.pop();
    forged.push(if app.key.ends_with('0') { '1' } else { '0' });
    app.get_as(&forged, "/v1/settings").await.problem(401);
    let basic = app
        .send(
            "GET",
            "/v1/settings",
            None,
            &[("Authorization", "Basic dXNlcjpwYXNz")],
            None,
        )
        .await;
    basic.problem(401);
    // A write without a key changes nothing.
    let r = app
        .send(
            "PUT",
            "/v1/patients/p1",
            None,
            &[],
            Some(br#"{"first_name":"X"}"#),
        )
        .await;
    r.problem(401);
    app.get("/v1/patients/p1").await.problem(404);
    app.stop().await;
}

/// Issue 13, row 8: a refused key and a read never take the write turn. On SQLite a write
/// transaction queues behind every other practice's writes, so a GET (or a stranger's request)
/// that took one waited seconds behind a flood of batches; the store's counter of write
/// transactions proves none is begun.
#[tokio::test]
async fn a_refused_key_and_every_read_write_nothing() {
    let app = spawn_app().await;
    app.seed_directory().await;
    let r = app
        .post_events(&json!([booking("a1", "2026-03-09T10:00:00+01:00")]))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let task = json!({"id": "bday", "label": "Anniversaire", "type": "birthdays",
        "first_date": "2026-03-02", "every": "day", "time": "09:00", "channel": "email"});
    assert_eq!(app.json("POST", "/v1/tasks", &task).await.status, 201);
    let store = app.engine.store().clone();
    let before = store.write_transactions();

    let mut forged = app.key.clone();
    forged.pop();
    forged.push(if app.key.ends_with('0') { '1' } else { '0' });
    let bad_keys = [
        forged.as_str(),
        "rpl_nope_nope_0123456789abcdef0123456789abcdef",
        "not-a-key",
        "",
    ];
    for key in bad_keys {
        app.get_as(key, "/v1/settings").await.problem(401);
        app.json_as(key, "PUT", "/v1/patients/p2", &jeanne())
            .await
            .problem(401);
        app.json_as(
            key,
            "POST",
            "/v1/events",
            &json!([booking("a2", "2026-03-10T10:00:00+01:00")]),
        )
        .await
        .problem(401);
        app.json_as(
            key,
            "PATCH",
            "/v1/settings",
            &json!({"reminder_sms": false}),
        )
        .await
        .problem(401);
    }
    assert_eq!(
        store.write_transactions(),
        before,
        "a request with a refused key wrote"
    );

    for path in [
        "/v1/practitioners/dr1",
        "/v1/motives/m1",
        "/v1/patients/p1",
        "/v1/patients/p1/timeline",
        "/v1/patients/p1/online-booking",
        "/v1/appointments/a1",
        "/v1/appointments/a1/timeline",
        "/v1/settings",
        "/v1/notifications",
        "/v1/notifications?status=pending&limit=1",
        "/v1/inbox",
        "/v1/tasks",
        "/v1/tasks/bday",
        "/v1/tasks/bday/runs",
        "/v1/templates",
        "/v1/templates/reminder/sms",
        "/v1/webhook/deliveries",
        "/v1/postal/costs?month=2026-03",
        "/metrics",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    // Reads that find nothing write nothing either.
    for path in [
        "/v1/patients/nobody",
        "/v1/documents/nothing",
        "/v1/settings/logo",
        "/v1/webhook",
    ] {
        assert_eq!(app.get(path).await.status, 404, "{path}");
    }
    assert_eq!(
        app.send("GET", "/d/unknown-token", None, &[], None)
            .await
            .status,
        404
    );
    assert_eq!(store.write_transactions(), before, "a read wrote");
    app.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_as_problem_json() {
    let app = spawn_app().await;
    app.get("/v1/nothing-here").await.problem(404);
    app.send("DELETE", "/v1/settings", Some(&app.key), &[], None)
        .await
        .problem(405);
    app.stop().await;
}

#[tokio::test]
async fn malformed_json_is_400_and_a_wrong_shape_is_422_naming_the_field() {
    let app = spawn_app().await;
    let bad = app
        .send(
            "PUT",
            "/v1/practitioners/dr1",
            Some(&app.key),
            &[],
            Some(br#"{"name": "Dr"#),
        )
        .await;
    let problem = bad.problem(400);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    let empty = app
        .send(
            "PUT",
            "/v1/practitioners/dr1",
            Some(&app.key),
            &[],
            Some(b""),
        )
        .await;
    empty.problem(400);
    let wrong_type = app
        .json("PUT", "/v1/practitioners/dr1", &json!({"name": 5}))
        .await;
    assert_eq!(wrong_type.problem(422)["field"], "name");
    let missing = app
        .json("PUT", "/v1/practitioners/dr1", &json!({"email": "a@b.fr"}))
        .await;
    assert_eq!(missing.problem(422)["field"], "name");
    let unknown = app
        .json(
            "PUT",
            "/v1/motives/m1",
            &json!({"name": "Consultation", "colour": "blue"}),
        )
        .await;
    assert!(
        unknown.problem(422)["detail"]
            .as_str()
            .unwrap()
            .contains("colour")
    );
    let text = app
        .send(
            "PUT",
            "/v1/motives/m1",
            Some(&app.key),
            &[("Content-Type", "text/plain")],
            Some(b"hello"),
        )
        .await;
    text.problem(415);
    app.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app().await;
    let mut big = b"[".to_vec();
    let event =
        br#"{"type":"appointment.deleted","id":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"#;
    while big.len() <= 1024 * 1024 + 10 {
        big.extend_from_slice(event);
    }
    big.pop();
    big.push(b']');
    let r = app
        .send("POST", "/v1/events", Some(&app.key), &[], Some(&big))
        .await;
    r.problem(413);
    app.stop().await;
}

#[tokio::test]
async fn an_api_key_over_its_rate_gets_429_with_retry_after_and_other_keys_do_not() {
    let app = spawn_app_with(ServerConfig {
        rate_per_second: 0.01,
        burst: 3,
        ..ServerConfig::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(app.get("/v1/settings").await.status, 200);
    }
    let limited = app.get("/v1/settings").await;
    limited.problem(429);
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1);
    let other = app.other_practice("doctolib").await;
    assert_eq!(app.get_as(&other, "/v1/settings").await.status, 200);
    // Health and metrics are not behind the key's limit.
    assert_eq!(
        app.send("GET", "/health", None, &[], None).await.status,
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn an_internal_error_is_500_and_does_not_reveal_its_cause() {
    let app = spawn_app().await;
    app.engine.store().close().await;
    let r = app.get("/v1/settings").await;
    let problem = r.problem(500);
    let detail = problem["detail"].as_str().unwrap().to_lowercase();
    assert!(
        !detail.contains("pool") && !detail.contains("sql"),
        "{detail}"
    );
    app.stop().await;
}

// ---- the directory --------------------------------------------------------------------------

#[tokio::test]
async fn put_creates_with_201_then_the_same_body_is_200_unchanged_and_get_reads_it_back() {
    let app = spawn_app().await;
    let r = app.json("PUT", "/v1/patients/p1", &jeanne()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("location"), Some("/v1/patients/p1"));
    let created = r.json();
    assert_eq!(created["mobile"], "+33612345678", "stored in E.164");
    assert_eq!(created["address"]["country"], "FR");
    let again = app.json("PUT", "/v1/patients/p1", &jeanne()).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json(), created);
    // The same patient in another spelling of the same number is still unchanged.
    let mut respelled = jeanne();
    respelled["mobile"] = json!("+33 6 12 34 56 78");
    respelled["id"] = json!("p1");
    assert_eq!(
        app.json("PUT", "/v1/patients/p1", &respelled).await.status,
        200
    );
    assert_eq!(app.get("/v1/patients/p1").await.json(), created);
    // A change replaces.
    let mut moved = jeanne();
    moved["email"] = json!("jeanne.dupont@example.org");
    let r = app.json("PUT", "/v1/patients/p1", &moved).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        app.get("/v1/patients/p1").await.json()["email"],
        "jeanne.dupont@example.org"
    );

    for (path, body) in [
        (
            "/v1/practitioners/dr1",
            json!({"name": "Dr Martin", "mobile": "06 11 11 11 11"}),
        ),
        (
            "/v1/motives/m1",
            json!({"name": "Consultation", "notifications": false}),
        ),
    ] {
        let first = app.json("PUT", path, &body).await;
        assert_eq!(first.status, 201, "{}", first.text());
        assert_eq!(app.json("PUT", path, &body).await.status, 200);
        assert_eq!(app.get(path).await.json(), first.json());
    }
    assert_eq!(
        app.get("/v1/motives/m1").await.json()["notifications"],
        false
    );
    app.get("/v1/practitioners/nobody").await.problem(404);
    app.get("/v1/motives/nothing").await.problem(404);
    app.get("/v1/patients/nobody").await.problem(404);
    app.stop().await;
}

#[tokio::test]
async fn a_body_id_other_than_the_path_id_is_422_naming_id() {
    let app = spawn_app().await;
    let r = app
        .json(
            "PUT",
            "/v1/practitioners/dr1",
            &json!({"id": "dr2", "name": "Dr Martin"}),
        )
        .await;
    assert_eq!(r.problem(422)["field"], "id");
    app.get("/v1/practitioners/dr1").await.problem(404);
    app.get("/v1/practitioners/dr2").await.problem(404);
    app.stop().await;
}

#[tokio::test]
async fn contacts_are_checked_strictly_and_a_bad_phone_number_is_422_naming_mobile() {
    let app = spawn_app().await;
    let cases = [
        ("mobile", json!("not a number")),
        ("mobile", json!("06 12 34")),
        ("email", json!("jeanne\u{7}@example.org")),
        ("email", json!("x".repeat(300))),
        ("email", json!(42)),
        ("birth_date", json!("02/03/1980")),
        ("mobile", json!(612345678)),
    ];
    for (field, value) in cases {
        let mut body = jeanne();
        body[field] = value.clone();
        let r = app.json("PUT", "/v1/patients/p1", &body).await;
        let problem = r.problem(422);
        assert_eq!(problem["field"], field, "{value}: {problem}");
        // The reason is given, but never the refused value itself.
        assert!(!problem["detail"].as_str().unwrap().is_empty());
    }
    let mut bad_code = jeanne();
    bad_code["address"]["postal_code"] = json!("7501");
    let problem = app
        .json("PUT", "/v1/patients/p1", &bad_code)
        .await
        .problem(422);
    assert_eq!(problem["field"], "address.postal_code");
    let mut long_line = jeanne();
    long_line["address"]["lines"] = json!(["12 rue des Lilas, escalier B, 3e étage, porte gauche"]);
    let problem = app
        .json("PUT", "/v1/patients/p1", &long_line)
        .await
        .problem(422);
    assert_eq!(problem["field"], "address.lines");
    app.get("/v1/patients/p1").await.problem(404);

    // A landline is a phone number: accepted here, reported by the planner when it wants an SMS.
    let mut landline = jeanne();
    landline["mobile"] = json!("01 23 45 67 89");
    let r = app.json("PUT", "/v1/patients/p1", &landline).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["mobile"], "+33123456789");

    // The same checks apply to a patient.updated event.
    let r = app
        .post_events(&json!({"type": "patient.updated", "id": "p1", "mobile": "call me"}))
        .await;
    assert_eq!(r.problem(422)["field"], "mobile");
    let r = app
        .post_events(&json!([
            {"type": "patient.updated", "id": "p1", "first_name": "Jeanne"},
            {"type": "patient.updated", "id": "p1", "email": "no\u{7}pe"},
        ]))
        .await;
    assert_eq!(r.problem(422)["field"], "events[1].email");
    // An email that is present but does not parse is kept as typed (SPEC.md decision 7: it
    // counts as no email, and the planner reports `invalid_email`); the record is not refused.
    let typo = app
        .post_events(&json!({"type": "patient.updated", "id": "p1", "email": " jeanne@gmail "}))
        .await;
    assert_eq!(typo.status, 202, "{}", typo.text());
    assert_eq!(
        app.get("/v1/patients/p1").await.json()["email"],
        "jeanne@gmail"
    );
    // Read back from the store, the kept email is the same contact: the same update is
    // "unchanged".
    let again = app
        .post_events(&json!({"type": "patient.updated", "id": "p1", "email": "jeanne@gmail"}))
        .await;
    assert_eq!(again.json(), json!({"applied": 0, "unchanged": 1}));
    let ok = app
        .post_events(&json!({"type": "patient.updated", "id": "p1", "mobile": "07 00 00 00 01"}))
        .await;
    assert_eq!(ok.status, 202, "{}", ok.text());
    assert_eq!(
        app.get("/v1/patients/p1").await.json()["mobile"],
        "+33700000001"
    );
    app.stop().await;
}

// ---- events, timelines and dispatch -------------------------------------------------------------

#[tokio::test]
async fn a_booking_shows_planned_messages_then_sent_ones_after_dispatch() {
    let app = spawn_app().await;
    app.seed_directory().await;
    let r = app
        .post_events(&booking("a1", "2026-03-12T09:30:00+01:00"))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json(), json!({"applied": 1, "unchanged": 0}));

    let appointment = app.get("/v1/appointments/a1").await;
    assert_eq!(appointment.status, 200);
    let appointment = appointment.json();
    assert_eq!(appointment["status"], "booked");
    assert_eq!(appointment["patient"], "p1");

    let timeline = app.get("/v1/appointments/a1/timeline").await.json();
    let entries = timeline["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(
        entries.iter().all(|e| e["status"] == "planned"),
        "{timeline}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "confirmation" && e["channel"] == "email"),
        "{timeline}"
    );
    assert!(
        entries.iter().any(|e| e["kind"] == "reminder"),
        "{timeline}"
    );

    app.advance(SignedDuration::from_mins(1));
    let dispatched = app.engine.dispatch_all_due().await.unwrap();
    assert!(dispatched >= 1);
    let timeline = app.get("/v1/appointments/a1/timeline").await.json();
    let entries = timeline["entries"].as_array().unwrap();
    let sent: Vec<&Value> = entries.iter().filter(|e| e["status"] == "sent").collect();
    assert_eq!(sent.len(), 1, "{timeline}");
    assert_eq!(sent[0]["kind"], "confirmation");
    assert!(
        entries.iter().any(|e| e["status"] == "planned"),
        "reminders still wait: {timeline}"
    );
    assert_eq!(app.recorder.sent().len(), 1);

    let patient = app.get("/v1/patients/p1/timeline").await.json();
    assert_eq!(patient["entries"].as_array().unwrap().len(), entries.len());
    app.get("/v1/appointments/a404").await.problem(404);
    app.get("/v1/appointments/a404/timeline").await.problem(404);
    app.get("/v1/patients/nobody/timeline").await.problem(404);
    app.stop().await;
}

#[tokio::test]
async fn the_same_event_twice_is_unchanged_the_second_time() {
    let app = spawn_app().await;
    app.seed_directory().await;
    let event = booking("a1", "2026-03-12T09:30:00+01:00");
    assert_eq!(
        app.post_events(&event).await.json(),
        json!({"applied": 1, "unchanged": 0})
    );
    let again = app.post_events(&event).await;
    assert_eq!(again.status, 202);
    assert_eq!(again.json(), json!({"applied": 0, "unchanged": 1}));
    app.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_another_body() {
    let app = spawn_app().await;
    app.seed_directory().await;
    let body = serde_json::to_vec(&booking("a1", "2026-03-12T09:30:00+01:00")).unwrap();
    let headers = [("Idempotency-Key", "3f0c9a4e-0d5b-4c61-9d7e-1a2b3c4d5e6f")];
    let first = app
        .send("POST", "/v1/events", Some(&app.key), &headers, Some(&body))
        .await;
    assert_eq!(first.status, 202);
    assert_eq!(first.json(), json!({"applied": 1, "unchanged": 0}));
    assert_eq!(first.header("idempotent-replayed"), None);
    // The retry gets the very first answer, not "unchanged".
    let replay = app
        .send("POST", "/v1/events", Some(&app.key), &headers, Some(&body))
        .await;
    assert_eq!(replay.status, 202);
    assert_eq!(replay.json(), json!({"applied": 1, "unchanged": 0}));
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let other = serde_json::to_vec(&booking("a2", "2026-03-13T09:30:00+01:00")).unwrap();
    let misuse = app
        .send("POST", "/v1/events", Some(&app.key), &headers, Some(&other))
        .await;
    assert_eq!(misuse.problem(422)["field"], "Idempotency-Key");
    app.get("/v1/appointments/a2").await.problem(404);

    // A refusal is remembered as well: the same request gets the same 422.
    let bad = serde_json::to_vec(
        &json!({"type": "appointment.moved", "id": "a404", "start": "2026-03-14T09:30:00+01:00"}),
    )
    .unwrap();
    let refused_headers = [("Idempotency-Key", "second-key")];
    let refused = app
        .send(
            "POST",
            "/v1/events",
            Some(&app.key),
            &refused_headers,
            Some(&bad),
        )
        .await;
    let problem = refused.problem(422);
    let replayed = app
        .send(
            "POST",
            "/v1/events",
            Some(&app.key),
            &refused_headers,
            Some(&bad),
        )
        .await;
    assert_eq!(replayed.problem(422), problem);
    // Keys belong to a practice: another practice may use the same key for its own request.
    let other_key = app.other_practice("doctolib").await;
    app.seed_directory_as(&other_key).await;
    let theirs = app
        .send(
            "POST",
            "/v1/events",
            Some(&other_key),
            &headers,
            Some(&other),
        )
        .await;
    assert_eq!(theirs.status, 202, "{}", theirs.text());
    assert_eq!(theirs.json(), json!({"applied": 1, "unchanged": 0}));
    app.stop().await;
}

#[tokio::test]
async fn bad_events_are_422_naming_the_event_and_field_and_nothing_of_the_batch_is_applied() {
    let app = spawn_app().await;
    app.seed_directory().await;
    let unknown = app
        .post_events(&json!({"type": "appointment.exploded", "id": "a1"}))
        .await;
    let problem = unknown.problem(422);
    assert_eq!(problem["field"], "type");
    let detail = problem["detail"].as_str().unwrap();
    for valid in [
        "appointment.booked",
        "patient.updated",
        "document.consulted",
    ] {
        assert!(detail.contains(valid), "{detail}");
    }
    let batch = json!([
        booking("a1", "2026-03-12T09:30:00+01:00"),
        {"type": "appointment.moved", "id": "a1", "start": "next tuesday"},
    ]);
    assert_eq!(
        app.post_events(&batch).await.problem(422)["field"],
        "events[1].start"
    );
    // Checked by the engine: the appointment starts before it was booked.
    let batch = json!([
        booking("a1", "2026-03-12T09:30:00+01:00"),
        booking("a2", "2026-03-01T09:30:00+01:00"),
    ]);
    assert_eq!(
        app.post_events(&batch).await.problem(422)["field"],
        "events[1].start"
    );
    app.get("/v1/appointments/a1").await.problem(404);
    // A reference to a patient the practice does not have.
    let mut stranger = booking("a3", "2026-03-12T09:30:00+01:00");
    stranger["patient"] = json!("p404");
    assert_eq!(
        app.post_events(&stranger).await.problem(422)["field"],
        "patient"
    );
    let missing = app
        .post_events(&json!({"type": "appointment.cancelled", "id": "a1"}))
        .await;
    assert_eq!(missing.problem(422)["field"], "by");
    assert_eq!(app.post_events(&json!([])).await.status, 422);
    assert_eq!(app.post_events(&json!("hello")).await.status, 422);
    // `at` is optional and, when given, dates the event.
    let dated = booking("a5", "2026-03-12T09:30:00+01:00");
    let mut dated = dated.as_object().unwrap().clone();
    dated.insert("at".into(), json!("2026-03-01T18:00:00+01:00"));
    let r = app.post_events(&Value::Object(dated)).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let booked_at: Timestamp = app.get("/v1/appointments/a5").await.json()["booked_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(booked_at, "2026-03-01T18:00:00+01:00".parse().unwrap());
    app.stop().await;
}

#[tokio::test]
async fn erasing_a_patient_is_204_and_cancels_their_pending_messages() {
    let app = spawn_app().await;
    app.seed_directory().await;
    app.post_events(&booking("a1", "2026-03-12T09:30:00+01:00"))
        .await;
    let planned = app.get("/v1/notifications?status=planned").await.json();
    assert!(!planned["items"].as_array().unwrap().is_empty());

    let r = app
        .send("DELETE", "/v1/patients/p1", Some(&app.key), &[], None)
        .await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    app.get("/v1/patients/p1").await.problem(404);
    let planned = app.get("/v1/notifications?status=planned").await.json();
    assert_eq!(planned["items"], json!([]), "nothing is left to send");
    let timeline = app.get("/v1/appointments/a1/timeline").await.json();
    let entries = timeline["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    for entry in entries {
        assert_eq!(entry["status"], "suppressed", "{entry}");
        assert_eq!(entry["reason"], "patient_erased", "{entry}");
    }
    app.advance(SignedDuration::from_hours(24 * 11));
    app.engine.dispatch_all_due().await.unwrap();
    assert!(
        app.recorder.sent().is_empty(),
        "nothing was sent after the erasure"
    );
    // Erasing again is harmless; writing personal data under the erased id is refused.
    assert_eq!(
        app.send("DELETE", "/v1/patients/p1", Some(&app.key), &[], None)
            .await
            .status,
        204
    );
    assert_eq!(
        app.json("PUT", "/v1/patients/p1", &jeanne())
            .await
            .problem(422)["field"],
        "id"
    );
    app.send("DELETE", "/v1/patients/nobody", Some(&app.key), &[], None)
        .await
        .problem(404);
    app.stop().await;
}

// ---- tenant isolation --------------------------------------------------------------------------

#[tokio::test]
async fn a_practice_key_never_reads_or_changes_another_practices_data() {
    let app = spawn_app().await;
    app.seed_directory().await;
    app.post_events(&booking("a1", "2026-03-12T09:30:00+01:00"))
        .await;
    let b = app.other_practice("doctolib").await;

    for (path, unknown_path) in [
        ("/v1/patients/p1", "/v1/patients/p9"),
        ("/v1/practitioners/dr1", "/v1/practitioners/dr9"),
        ("/v1/motives/m1", "/v1/motives/m9"),
        ("/v1/appointments/a1", "/v1/appointments/a9"),
        (
            "/v1/appointments/a1/timeline",
            "/v1/appointments/a9/timeline",
        ),
        ("/v1/patients/p1/timeline", "/v1/patients/p9/timeline"),
        (
            "/v1/patients/p1/online-booking",
            "/v1/patients/p9/online-booking",
        ),
    ] {
        let theirs = app.get_as(&b, path).await.problem(404);
        let unknown = app.get_as(&b, unknown_path).await.problem(404);
        // Exactly like an unknown id: the same answer but for the id it names.
        let theirs_detail = theirs["detail"].as_str().unwrap().replace("1`", "9`");
        assert_eq!(theirs_detail, unknown["detail"], "{path}");
        assert_eq!(theirs["type"], unknown["type"], "{path}");
    }
    let page = app.get_as(&b, "/v1/notifications").await.json();
    assert_eq!(page["items"], json!([]));
    app.send("DELETE", "/v1/patients/p1", Some(&b), &[], None)
        .await
        .problem(404);
    // B cancelling "a1" is about an appointment B does not have.
    let r = app
        .json_as(
            &b,
            "POST",
            "/v1/events",
            &json!({"type": "appointment.cancelled", "id": "a1", "by": "patient"}),
        )
        .await;
    r.problem(422);
    // B's own p1 is a new patient, and A's is untouched.
    let mut other = jeanne();
    other["first_name"] = json!("Bernadette");
    assert_eq!(
        app.json_as(&b, "PUT", "/v1/patients/p1", &other)
            .await
            .status,
        201
    );
    assert_eq!(
        app.get("/v1/patients/p1").await.json()["first_name"],
        "Jeanne"
    );
    assert_eq!(
        app.get("/v1/appointments/a1").await.json()["status"],
        "booked"
    );
    let settings = app
        .json_as(
            &b,
            "PATCH",
            "/v1/settings",
            &json!({"no_show_block_threshold": 1}),
        )
        .await;
    assert_eq!(settings.status, 200);
    assert_eq!(
        app.get("/v1/settings").await.json()["settings"]["no_show_block_threshold"],
        3
    );
    app.stop().await;
}

// ---- settings, the sent box, online booking, the inbox ---------------------------------------

#[tokio::test]
async fn settings_show_resolved_values_and_options_and_a_patch_checks_keys_and_types() {
    let app = spawn_app().await;
    let r = app.get("/v1/settings").await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["preset"], "doctolib");
    assert_eq!(doc["timezone"], "Europe/Paris");
    assert_eq!(doc["settings"]["no_show_block_threshold"], 3);
    let option = &doc["options"]["no_show_block_threshold"];
    assert_eq!(option["type"], "integer");
    assert_eq!(option["default"], 3);
    assert_eq!(option["locked"], false);
    assert!(option["label"].as_str().unwrap().contains("absences"));

    let r = app
        .json(
            "PATCH",
            "/v1/settings",
            &json!({"no_show_block_threshold": 5}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["settings"]["no_show_block_threshold"], 5);
    assert_eq!(
        app.get("/v1/settings").await.json()["settings"]["no_show_block_threshold"],
        5
    );

    let unknown = app
        .json("PATCH", "/v1/settings", &json!({"colour": "blue"}))
        .await;
    assert_eq!(unknown.problem(422)["field"], "colour");
    let wrong = app
        .json(
            "PATCH",
            "/v1/settings",
            &json!({"no_show_block_threshold": "many"}),
        )
        .await;
    assert_eq!(wrong.problem(422)["field"], "no_show_block_threshold");
    assert_eq!(
        app.json("PATCH", "/v1/settings", &json!([1])).await.status,
        422
    );
    app.stop().await;
}

#[tokio::test]
async fn the_sent_box_pages_with_an_opaque_cursor_and_refuses_bad_filters() {
    let app = spawn_app().await;
    app.seed_directory().await;
    for (id, start) in [
        ("a1", "2026-03-12T09:30:00+01:00"),
        ("a2", "2026-03-16T10:00:00+01:00"),
        ("a3", "2026-03-19T11:00:00+01:00"),
    ] {
        assert_eq!(app.post_events(&booking(id, start)).await.status, 202);
    }
    let all = app.get("/v1/notifications?limit=500").await.json();
    let everything: Vec<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect();
    assert!(everything.len() >= 4, "{all}");
    assert_eq!(all["next_cursor"], Value::Null);

    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let path = match &cursor {
            Some(c) => format!("/v1/notifications?limit=2&cursor={c}"),
            None => "/v1/notifications?limit=2".to_string(),
        };
        let page = app.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let page = page.json();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        walked.extend(items.iter().map(|e| e["key"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(walked, everything);

    let emails = app
        .get("/v1/notifications?channel=email&kind=confirmation")
        .await
        .json();
    let emails = emails["items"].as_array().unwrap();
    assert_eq!(emails.len(), 3);
    assert!(
        emails
            .iter()
            .all(|e| e["channel"] == "email" && e["kind"] == "confirmation")
    );
    let later = app
        .get("/v1/notifications?since=2026-03-15T00:00:00%2B01:00")
        .await;
    assert_eq!(later.status, 200, "{}", later.text());
    assert!(later.json()["items"].as_array().unwrap().len() < everything.len());

    for (query, field) in [
        ("status=lost", "status"),
        ("channel=pigeon", "channel"),
        ("kind=gossip", "kind"),
        ("since=yesterday", "since"),
        ("cursor=zz", "cursor"),
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("colour=blue", "colour"),
    ] {
        let r = app.get(&format!("/v1/notifications?{query}")).await;
        assert_eq!(r.problem(422)["field"], field, "{query}");
    }
    app.stop().await;
}

#[tokio::test]
async fn online_booking_is_refused_after_three_unexcused_absences() {
    let app = spawn_app().await;
    app.seed_directory().await;
    let r = app.get("/v1/patients/p1/online-booking").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"allowed": true, "reason": null}));
    for (i, day) in ["2026-01-05", "2026-01-12", "2026-01-19"]
        .iter()
        .enumerate()
    {
        let id = format!("old{i}");
        let mut event = booking(&id, &format!("{day}T09:30:00+01:00"));
        event["at"] = json!(format!("{day}T08:00:00+01:00"));
        let events = json!([event, {"type": "appointment.no_show", "id": id, "at": format!("{day}T10:00:00+01:00")}]);
        let r = app.post_events(&events).await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
    let answer = app.get("/v1/patients/p1/online-booking").await.json();
    assert_eq!(answer["allowed"], false);
    assert!(answer["reason"].as_str().unwrap().contains('3'));
    assert_eq!(
        app.get("/v1/appointments/old0").await.json()["status"],
        "no_show"
    );
    app.get("/v1/patients/nobody/online-booking")
        .await
        .problem(404);
    app.stop().await;
}

#[tokio::test]
async fn the_to_verify_box_lists_an_undeliverable_document_and_resolving_it_is_scoped() {
    let app = spawn_app().await;
    let lifen = app.other_practice("lifen").await;
    let patient = json!({"first_name": "Yves", "last_name": "Marchand",
        "address": {"lines": ["1 rue Nationale"], "postal_code": "59000", "city": "Lille"}});
    assert_eq!(
        app.json_as(&lifen, "PUT", "/v1/patients/p2", &patient)
            .await
            .status,
        201
    );
    let r = app
        .json_as(
            &lifen,
            "POST",
            "/v1/events",
            &json!({"type": "document.sent", "id": "d2", "patient": "p2", "title": "Ordonnance"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let empty = app.get_as(&lifen, "/v1/inbox").await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json()["items"], json!([]));
    // The document email cannot go (no email): that is a failure, which goes to the box.
    app.engine.dispatch_all_due().await.unwrap();
    app.engine.dispatch_all_due().await.unwrap();

    let inbox = app.get_as(&lifen, "/v1/inbox?box=to_verify").await.json();
    let items = inbox["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{inbox}");
    assert_eq!(items[0]["box"], "to_verify");
    assert_eq!(items[0]["document"], "d2");
    let id = items[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.get_as(&lifen, "/v1/inbox?box=notifications")
            .await
            .json()["items"],
        json!([])
    );

    // Another practice cannot resolve it, nor see it.
    app.send(
        "POST",
        &format!("/v1/inbox/{id}/resolve"),
        Some(&app.key),
        &[],
        None,
    )
    .await
    .problem(404);
    assert_eq!(app.get("/v1/inbox").await.json()["items"], json!([]));

    let resolved = app
        .send(
            "POST",
            &format!("/v1/inbox/{id}/resolve"),
            Some(&lifen),
            &[],
            None,
        )
        .await;
    assert_eq!(resolved.status, 200, "{}", resolved.text());
    assert!(resolved.json()["resolved_at"].is_string());
    assert_eq!(
        app.get_as(&lifen, "/v1/inbox").await.json()["items"],
        json!([])
    );
    let with_resolved = app.get_as(&lifen, "/v1/inbox?resolved=true").await.json();
    assert_eq!(with_resolved["items"].as_array().unwrap().len(), 1);
    let again = app
        .send(
            "POST",
            &format!("/v1/inbox/{id}/resolve"),
            Some(&lifen),
            &[],
            None,
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["resolved_at"], resolved.json()["resolved_at"]);

    app.send("POST", "/v1/inbox/nothing/resolve", Some(&lifen), &[], None)
        .await
        .problem(404);
    assert_eq!(
        app.get_as(&lifen, "/v1/inbox?box=spam").await.problem(422)["field"],
        "box"
    );
    app.stop().await;
}
