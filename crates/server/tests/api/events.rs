//! Events, timelines, idempotency and dispatch.

use super::*;

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
