//! The directory: patients and their contacts.

use super::*;

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
