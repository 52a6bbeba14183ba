//! Black-box tests of the scheduled-task API (`/v1/tasks`): the real router on a loopback port,
//! a fresh in-memory database and a simulated clock per test, HTTP spoken for real. The test
//! drives the scheduler and the dispatcher itself (`run_due_tasks`, `dispatch_all_due`), as the
//! worker loop of the binary does. The app and the HTTP client are those of `common/mod.rs`.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

mod common;
use common::*;

// ---- the app (common/mod.rs), and its helpers for these tests ---------------------------------

impl TestApp {
    /// Another practice on the same server, and its key.
    async fn other_practice(&self) -> String {
        self.engine
            .create_practice("Cabinet B", "doctolib", "Europe/Paris", Map::new())
            .await
            .expect("practice")
            .api_key
    }

    fn set_clock(&self, at: &str) {
        self.clock.set(at.parse::<Timestamp>().unwrap());
    }

    async fn send_as(&self, method: &str, path: &str, key: &str, body: Option<&Value>) -> Reply {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
        self.send(method, path, Some(key), &[], bytes.as_deref())
            .await
    }

    async fn put_patient(&self, id: &str, body: Value) {
        let r = self.json("PUT", &format!("/v1/patients/{id}"), &body).await;
        assert!(r.status == 201 || r.status == 200, "{}", r.text());
    }
}

/// A birthday task every day at 09:00 from the test's first day, by email.
fn birthday_task() -> Value {
    json!({
        "id": "bday",
        "label": "Joyeux anniversaire",
        "type": "birthdays",
        "first_date": "2026-03-02",
        "every": "day",
        "time": "09:00",
        "channel": "email"
    })
}

/// `base` with `changes` merged in (`null` removes a member).
fn with(base: Value, changes: Value) -> Value {
    let mut object = base.as_object().unwrap().clone();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            object.remove(k);
        } else {
            object.insert(k.clone(), v.clone());
        }
    }
    Value::Object(object)
}

// ---- the tasks API -------------------------------------------------------------------------------

#[tokio::test]
async fn a_task_is_created_with_201_read_back_listed_and_deleted_with_204() {
    let app = spawn_app().await;
    let created = app.json("POST", "/v1/tasks", &birthday_task()).await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.header("location"), Some("/v1/tasks/bday"));
    let body = created.json();
    // The same names as written, and the run times as HH:MM.
    for (field, value) in birthday_task().as_object().unwrap() {
        assert_eq!(&body[field], value, "{field}");
    }
    assert_eq!(body["active"], true);
    assert_eq!(body["created_at"], "2026-03-02T08:00:00+01:00");
    assert_eq!(body["next_run_at"], "2026-03-02T09:00:00+01:00");

    let read = app.get("/v1/tasks/bday").await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), body);
    let list = app.get("/v1/tasks").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["items"], json!([body]));

    let again = app.json("POST", "/v1/tasks", &birthday_task()).await;
    assert_eq!(
        again.problem(422)["field"],
        "id",
        "an existing id is refused"
    );

    let deleted = app
        .send_as("DELETE", "/v1/tasks/bday", &app.key, None)
        .await;
    assert_eq!(deleted.status, 204);
    app.get("/v1/tasks/bday").await.problem(404);
    app.send_as("DELETE", "/v1/tasks/bday", &app.key, None)
        .await
        .problem(404);
    assert_eq!(app.get("/v1/tasks").await.json()["items"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn a_cron_task_is_accepted_and_its_next_run_follows_the_expression() {
    let app = spawn_app().await;
    let cron = with(
        birthday_task(),
        json!({"every": null, "time": null, "cron": "30 8 * * sat,sun"}),
    );
    let created = app.json("POST", "/v1/tasks", &cron).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let body = created.json();
    assert_eq!(body["cron"], "30 8 * * sat,sun");
    assert!(body.get("every").is_none() && body.get("time").is_none());
    // Monday 2 March: the next weekend morning.
    assert_eq!(body["next_run_at"], "2026-03-07T08:30:00+01:00");
    app.stop().await;
}

#[tokio::test]
async fn invalid_definitions_are_422_problem_json_naming_the_field_and_the_reason() {
    let app = spawn_app().await;
    let missed = with(
        birthday_task(),
        json!({"type": "missed_appointments", "range": [-1, -1]}),
    );
    let cases = [
        (
            with(birthday_task(), json!({"id": null})),
            "id",
            "needs an id",
        ),
        (
            with(birthday_task(), json!({"type": "anniversary"})),
            "type",
            "unknown variant",
        ),
        (
            with(birthday_task(), json!({"every": "week"})),
            "days",
            "at least one day",
        ),
        (
            with(birthday_task(), json!({"every": "week", "days": ["lundi"]})),
            "days",
            "`lundi` is not a day",
        ),
        (
            with(birthday_task(), json!({"every": "hourly"})),
            "every",
            "unknown variant",
        ),
        (
            with(birthday_task(), json!({"every": null})),
            "every",
            "periodicity",
        ),
        (
            with(birthday_task(), json!({"cron": "0 9 * * *"})),
            "cron",
            "not both",
        ),
        (
            with(
                birthday_task(),
                json!({"every": null, "time": null, "cron": "0 25 * * *"}),
            ),
            "cron",
            "out of range for the hour field",
        ),
        (
            with(
                birthday_task(),
                json!({"every": null, "time": null, "cron": "0 9 * *"}),
            ),
            "cron",
            "expected 5 fields",
        ),
        (with(birthday_task(), json!({"time": "25:00"})), "time", ""),
        (
            with(birthday_task(), json!({"first_date": "2026-02-30"})),
            "first_date",
            "",
        ),
        (
            with(birthday_task(), json!({"channel": "postal"})),
            "channel",
            "email or sms",
        ),
        (
            with(birthday_task(), json!({"channel": "fax"})),
            "channel",
            "unknown variant",
        ),
        (
            with(missed.clone(), json!({"range": [-1, -3]})),
            "range",
            "must not come after",
        ),
        (
            with(missed.clone(), json!({"range": null})),
            "range",
            "needs a range",
        ),
        (
            with(birthday_task(), json!({"range": [-1, -1]})),
            "range",
            "only missed_appointments",
        ),
        (
            with(birthday_task(), json!({"type": "recall"})),
            "recall_months",
            "number of months",
        ),
        (
            with(
                birthday_task(),
                json!({"exclude_patients_seen_since": true}),
            ),
            "exclude_patients_seen_since",
            "only missed_appointments",
        ),
        (
            with(birthday_task(), json!({"practitioners": []})),
            "practitioners",
            "at least one",
        ),
        (
            with(birthday_task(), json!({"colour": "blue"})),
            "colour",
            "unknown field",
        ),
        (
            with(
                birthday_task(),
                json!({"next_run_at": "2026-03-02T09:00:00+01:00"}),
            ),
            "next_run_at",
            "read-only",
        ),
    ];
    for (body, field, reason) in cases {
        let r = app.json("POST", "/v1/tasks", &body).await;
        let problem = r.problem(422);
        assert_eq!(problem["field"], field, "{body}: {problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(reason), "{body}: {detail}");
    }
    let not_an_object = app
        .json("POST", "/v1/tasks", &json!([birthday_task()]))
        .await;
    not_an_object.problem(422);
    assert_eq!(app.get("/v1/tasks").await.json()["items"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn a_patch_merges_fields_checks_the_whole_and_keeps_the_id() {
    let app = spawn_app().await;
    let created = app.json("POST", "/v1/tasks", &birthday_task()).await;
    assert_eq!(created.status, 201, "{}", created.text());

    let weekly = app
        .json(
            "PATCH",
            "/v1/tasks/bday",
            &json!({"every": "week", "days": ["thu"], "time": "10:15", "channel": "sms"}),
        )
        .await;
    assert_eq!(weekly.status, 200, "{}", weekly.text());
    let body = weekly.json();
    assert_eq!(body["every"], "week");
    assert_eq!(body["days"], json!(["thu"]));
    assert_eq!(body["time"], "10:15");
    assert_eq!(body["channel"], "sms");
    assert_eq!(
        body["label"], "Joyeux anniversaire",
        "fields not in the patch stay"
    );
    assert_eq!(body["created_at"], "2026-03-02T08:00:00+01:00");
    assert_eq!(body["next_run_at"], "2026-03-05T10:15:00+01:00");
    assert_eq!(app.get("/v1/tasks/bday").await.json(), body);

    for (patch, field) in [
        (json!({"days": null}), "days"),
        (json!({"every": "fortnight"}), "every"),
        (json!({"cron": "0 9 * * *"}), "cron"),
        (json!({"time": null}), "time"),
        (json!({"type": null}), "type"),
        (json!({"id": "other"}), "id"),
        (json!({"colour": "blue"}), "colour"),
        (json!({"created_at": "2026-01-01T00:00:00Z"}), "created_at"),
    ] {
        let r = app.json("PATCH", "/v1/tasks/bday", &patch).await;
        assert_eq!(r.problem(422)["field"], field, "{patch}");
    }
    assert_eq!(
        app.get("/v1/tasks/bday").await.json(),
        body,
        "refused patches change nothing"
    );

    let paused = app
        .json("PATCH", "/v1/tasks/bday", &json!({"active": false}))
        .await;
    assert_eq!(paused.json()["next_run_at"], Value::Null);
    app.json("PATCH", "/v1/tasks/nope", &json!({"label": "x"}))
        .await
        .problem(404);
    app.stop().await;
}

#[tokio::test]
async fn another_practices_tasks_answer_404_like_unknown_ones() {
    let app = spawn_app().await;
    let created = app.json("POST", "/v1/tasks", &birthday_task()).await;
    assert_eq!(created.status, 201);
    let b = app.other_practice().await;
    for (method, path, body) in [
        ("GET", "/v1/tasks/bday", None),
        ("PATCH", "/v1/tasks/bday", Some(json!({"label": "x"}))),
        ("GET", "/v1/tasks/bday/runs", None),
        ("POST", "/v1/tasks/bday/preview", None),
        ("DELETE", "/v1/tasks/bday", None),
    ] {
        app.send_as(method, path, &b, body.as_ref())
            .await
            .problem(404);
    }
    assert_eq!(
        app.send_as("GET", "/v1/tasks", &b, None).await.json()["items"],
        json!([])
    );
    // B may use the same id for a task of its own.
    let theirs = app
        .send_as("POST", "/v1/tasks", &b, Some(&birthday_task()))
        .await;
    assert_eq!(theirs.status, 201);
    assert_eq!(
        app.get("/v1/tasks/bday").await.status,
        200,
        "A's task is untouched"
    );
    // And no key at all is 401.
    let r = http(app.addr, "GET", "/v1/tasks", &[], b"").await;
    r.problem(401);
    app.stop().await;
}

#[tokio::test]
async fn the_preview_says_who_would_get_what_then_the_run_is_counted_by_outcome() {
    let app = spawn_app().await;
    let jeanne = json!({"first_name": "Jeanne", "last_name": "Dupont", "email": "jeanne@example.org", "birth_date": "1980-03-02"});
    app.put_patient("p1", jeanne).await;
    app.put_patient(
        "p2",
        json!({"first_name": "Paul", "last_name": "Martin", "birth_date": "1975-03-02"}),
    )
    .await;
    app.put_patient(
        "p3",
        json!({"first_name": "Lou", "last_name": "Petit", "email": "lou@example.org",
               "email_notifications": false, "birth_date": "1990-03-02"}),
    )
    .await;
    app.put_patient(
        "p4",
        json!({"first_name": "Eve", "email": "eve@example.org", "birth_date": "1990-03-03"}),
    )
    .await;
    let created = app.json("POST", "/v1/tasks", &birthday_task()).await;
    assert_eq!(created.status, 201, "{}", created.text());

    let r = app
        .send_as("POST", "/v1/tasks/bday/preview", &app.key, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let preview = r.json();
    assert_eq!(preview["date"], "2026-03-02");
    assert_eq!(preview["matched"], 3);
    assert_eq!(preview["channel"], "email");
    let recipients = preview["recipients"].as_array().unwrap();
    assert_eq!(recipients.len(), 1, "{preview}");
    assert_eq!(recipients[0]["patient"], "p1");
    assert_eq!(recipients[0]["name"], "Jeanne Dupont");
    // As of the task's next run (09:00), not of the request (08:00).
    assert_eq!(preview["at"], "2026-03-02T09:00:00+01:00");
    assert_eq!(recipients[0]["send_at"], "2026-03-02T09:00:00+01:00");
    assert!(
        recipients[0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("Joyeux anniversaire"),
        "{preview}"
    );
    let skipped: Vec<(String, String)> = preview["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["patient"].as_str().unwrap().into(),
                s["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        [
            ("p2".to_string(), "no_email".to_string()),
            ("p3".to_string(), "patient_email_disabled".to_string())
        ]
    );
    // A dry run: nothing queued, nothing sent, no run recorded.
    assert_eq!(
        app.get("/v1/tasks/bday/runs").await.json()["items"],
        json!([])
    );
    let queued = app.get("/v1/notifications?kind=task").await.json();
    assert_eq!(queued["items"], json!([]));
    assert!(app.recorder.sent().is_empty());

    // The scheduler's pass at 09:00, then the dispatcher's.
    app.set_clock("2026-03-02T09:00:00+01:00");
    assert_eq!(app.engine.run_due_tasks().await.unwrap(), 1);
    app.engine.dispatch_all_due().await.unwrap();
    assert_eq!(app.engine.run_due_tasks().await.unwrap(), 0);

    let runs = app.get("/v1/tasks/bday/runs").await;
    assert_eq!(runs.status, 200, "{}", runs.text());
    let items = runs.json()["items"].clone();
    assert_eq!(
        items,
        json!([{
            "occurrence": "2026-03-02",
            "scheduled_for": "2026-03-02T09:00:00+01:00",
            "started_at": "2026-03-02T09:00:00+01:00",
            "late": false,
            "late_ms": 0,
            "matched": 3,
            "queued": 3,
            "sent": 1,
            "pending": 0,
            "failed": 0,
            "skipped": {"no_email": 1, "patient_email_disabled": 1}
        }])
    );
    assert_eq!(
        app.get("/v1/tasks/bday").await.json()["next_run_at"],
        "2026-03-03T09:00:00+01:00"
    );
    // The patient's timeline explains the message not sent.
    let timeline = app.get("/v1/patients/p2/timeline").await.json();
    let entry = timeline["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["task"] == "bday")
        .cloned()
        .expect("the task's message is in p2's timeline");
    assert_eq!(entry["status"], "suppressed");
    assert_eq!(entry["reason"], "no_email");

    // A day of downtime: the next pass runs 4 March's occurrence once, late; 3 March's is gone.
    app.clock
        .set(app.engine.now() + SignedDuration::from_hours(49));
    assert_eq!(app.engine.run_due_tasks().await.unwrap(), 1);
    let latest = app.get("/v1/tasks/bday/runs?limit=1").await.json()["items"][0].clone();
    assert_eq!(latest["occurrence"], "2026-03-04");
    assert_eq!(latest["late"], true);
    assert_eq!(latest["matched"], 0);
    for bad in ["0", "101", "ten"] {
        let r = app.get(&format!("/v1/tasks/bday/runs?limit={bad}")).await;
        assert_eq!(r.problem(422)["field"], "limit");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_task_routes() {
    let app = spawn_app().await;
    let r = http(app.addr, "GET", "/v1/openapi.json", &[], b"").await;
    let doc = r.json();
    for (method, path) in [
        ("get", "/v1/tasks"),
        ("post", "/v1/tasks"),
        ("get", "/v1/tasks/{id}"),
        ("patch", "/v1/tasks/{id}"),
        ("delete", "/v1/tasks/{id}"),
        ("get", "/v1/tasks/{id}/runs"),
        ("post", "/v1/tasks/{id}/preview"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    for schema in ["Task", "TaskList", "TaskRun", "TaskRuns", "TaskPreview"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    let page = http(app.addr, "GET", "/v1/docs", &[], b"").await.text();
    assert!(page.contains("/v1/tasks/{id}/preview"));
    app.stop().await;
}
