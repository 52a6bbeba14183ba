//! Errors common to every route: problems, authentication, limits.

use super::*;

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
