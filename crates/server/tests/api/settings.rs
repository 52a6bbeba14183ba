//! Settings, the sent box, online booking and the to-verify box.

use super::*;

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
