//! Tenant isolation.

use super::*;

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
