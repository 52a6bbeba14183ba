//! Letters: manual postal resends, posted once per document and address.

use super::*;

#[tokio::test]
async fn a_manual_postal_resend_queues_a_letter_with_the_document() {
    let app = spawn_app().await;
    let pdf = sample_pdf("A");
    assert_eq!(app.upload("d1", &pdf).await.status, 201);
    app.engine.dispatch_all_due().await.unwrap();
    let r = app
        .send(
            "POST",
            "/v1/documents/d1/resend-postal",
            Some(&app.key.clone()),
            &[],
            Some(b""),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let key = r.json()["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("d:d1/manual_postal/postal/"), "{key}");
    assert_eq!(r.json()["auto_resend"], false);
    assert_eq!(r.json()["created"], true);
    app.engine.dispatch_all_due().await.unwrap();
    let letters: Vec<_> = app
        .recorder
        .sent()
        .into_iter()
        .filter(|r| r.message.channel == Channel::Postal)
        .collect();
    assert_eq!(letters.len(), 1);
    let letter = letters[0].message.letter.as_deref().expect("a letter");
    assert_eq!(letter.document_pdf, pdf, "the decrypted document");
    assert_eq!(letter.address_block.last().unwrap(), "75011 PARIS");
    assert_eq!(letter.sender_block, ["Cabinet Lumière"]);
    assert_eq!(
        app.send(
            "POST",
            "/v1/documents/nope/resend-postal",
            Some(&app.key.clone()),
            &[],
            Some(b"")
        )
        .await
        .status,
        404
    );
    app.stop().await;
}

/// A letter costs money: a second request for the same document and address — a double click,
/// a retried call — posts nothing more, answers the first letter with 200, and a corrected
/// address makes a new letter.
#[tokio::test]
async fn a_manual_postal_resend_is_posted_once_per_document_and_address() {
    let app = spawn_app().await;
    assert_eq!(app.upload("d1", &sample_pdf("A")).await.status, 201);
    app.engine.dispatch_all_due().await.unwrap();
    let key = app.key.clone();
    let resend = || async {
        app.send(
            "POST",
            "/v1/documents/d1/resend-postal",
            Some(&key),
            &[],
            Some(b""),
        )
        .await
    };
    let first = resend().await;
    assert_eq!(first.status, 202, "{}", first.text());
    // Again while the letter is queued, then again once it went: the same letter, no other.
    let queued = resend().await;
    assert_eq!(queued.status, 200, "{}", queued.text());
    assert_eq!(queued.json()["created"], false);
    assert_eq!(queued.json()["key"], first.json()["key"]);
    app.engine.dispatch_all_due().await.unwrap();
    let sent = resend().await;
    assert_eq!(sent.status, 200, "{}", sent.text());
    assert_eq!(sent.json()["key"], first.json()["key"]);
    app.engine.dispatch_all_due().await.unwrap();
    let letters = |app: &TestApp| {
        app.recorder
            .sent()
            .into_iter()
            .filter(|r| r.message.channel == Channel::Postal)
            .count()
    };
    assert_eq!(letters(&app), 1, "one letter for one document and address");

    // The patient moves: a letter to the new address is a new letter.
    let body = serde_json::to_vec(&json!({
        "first_name": "Jeanne",
        "last_name": "Dupont",
        "email": "jeanne@example.org",
        "birth_date": "1980-03-02",
        "address": {"lines": ["3 place du Marché"], "postal_code": "69002", "city": "Lyon"}
    }))
    .unwrap();
    let r = app
        .send("PUT", "/v1/patients/p1", Some(&key), &[], Some(&body))
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    let moved = resend().await;
    assert_eq!(moved.status, 202, "{}", moved.text());
    assert_ne!(moved.json()["key"], first.json()["key"]);
    app.engine.dispatch_all_due().await.unwrap();
    assert_eq!(letters(&app), 2);
    app.stop().await;
}

/// The letter that answers a to-verify entry (no email, an address): once asked for, the entry
/// is handled and asking again posts nothing.
#[tokio::test]
async fn a_letter_asked_from_the_to_verify_box_closes_its_entry_and_is_not_repeated() {
    let app = spawn_app().await;
    let key = app.key.clone();
    let off = serde_json::to_vec(&json!({"postal_on_failure": false})).unwrap();
    let r = app
        .send("PATCH", "/v1/settings", Some(&key), &[], Some(&off))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = serde_json::to_vec(&json!({
        "first_name": "Odile",
        "last_name": "Garnier",
        "address": {"lines": ["5 rue Victor Hugo"], "postal_code": "69002", "city": "Lyon"}
    }))
    .unwrap();
    let r = app
        .send("PUT", "/v1/patients/p9", Some(&key), &[], Some(&body))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let event = serde_json::to_vec(
        &json!({"type": "document.sent", "id": "d9", "patient": "p9", "title": "Compte rendu"}),
    )
    .unwrap();
    let r = app
        .send("POST", "/v1/events", Some(&key), &[], Some(&event))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    app.engine.dispatch_all_due().await.unwrap();
    let open = || async {
        let entries = app.get("/v1/inbox?box=to_verify").await.json();
        entries["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["document"] == "d9")
            .count()
    };
    assert_eq!(open().await, 1, "the document waits in the to-verify box");
    let resend = || async {
        app.send(
            "POST",
            "/v1/documents/d9/resend-postal",
            Some(&key),
            &[],
            Some(b""),
        )
        .await
    };
    assert_eq!(resend().await.status, 202);
    assert_eq!(open().await, 0, "the letter answers the entry");
    app.engine.dispatch_all_due().await.unwrap();
    let again = resend().await;
    assert_eq!(again.status, 200, "{}", again.text());
    app.engine.dispatch_all_due().await.unwrap();
    let details = app.get("/v1/documents/d9").await.json();
    let letters: Vec<_> = details["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == "postal" && d["status"] == "sent")
        .collect();
    assert_eq!(letters.len(), 1, "{details}");
    app.stop().await;
}

#[tokio::test]
async fn the_to_verify_box_names_the_document_the_patient_the_reason_and_what_to_do_next() {
    let app = spawn_app().await;
    let key = app.key.clone();
    let body = serde_json::to_vec(&json!({
        "first_name": "Yves",
        "last_name": "Marchand",
        "email": "yves@example.org",
        "birth_date": "1970-01-01"
    }))
    .unwrap();
    let r = app
        .send("PUT", "/v1/patients/p4", Some(&key), &[], Some(&body))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        app.upload_as(&key, "d4", "p4", &sample_pdf("A"))
            .await
            .status,
        201
    );
    app.engine.dispatch_all_due().await.unwrap();
    let bounce =
        serde_json::to_vec(&json!({"type": "delivery.bounced", "document": "d4"})).unwrap();
    let r = app
        .send("POST", "/v1/events", Some(&key), &[], Some(&bounce))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    app.engine.dispatch_all_due().await.unwrap();

    let inbox = app.get("/v1/inbox?box=to_verify").await.json();
    let items = inbox["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{inbox}");
    let entry = &items[0];
    assert_eq!(entry["document"], "d4");
    assert_eq!(entry["document_title"], "Compte rendu de consultation");
    assert_eq!(entry["patient_name"], "Yves Marchand");
    assert!(
        entry["reason"]
            .as_str()
            .unwrap()
            .contains("aucune adresse postale"),
        "{entry}"
    );
    assert_eq!(
        entry["actions"],
        json!(["fix_address", "fix_email", "resolve"])
    );
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_document_routes() {
    let app = spawn_app().await;
    let doc = app
        .send("GET", "/v1/openapi.json", None, &[], None)
        .await
        .json();
    for (method, path) in [
        ("post", "/v1/documents"),
        ("get", "/v1/documents/{id}"),
        ("post", "/v1/documents/{id}/resend-postal"),
        ("get", "/d/{token}"),
        ("post", "/d/{token}"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    app.stop().await;
}

/// A manual letter still waiting when the patient is re-planned (any change to their file) stays
/// pending: reconciliation leaves the rows it did not plan alone (tasks, manual resends).
#[tokio::test]
async fn a_pending_manual_letter_survives_a_replan_of_its_patient() {
    let app = spawn_app().await;
    assert_eq!(app.upload("d1", &sample_pdf("A")).await.status, 201);
    app.engine.dispatch_all_due().await.unwrap();
    let key = app.key.clone();
    let r = app
        .send(
            "POST",
            "/v1/documents/d1/resend-postal",
            Some(&key),
            &[],
            Some(b""),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let manual_key = r.json()["key"].clone();
    app.put_patient(&key, "p1", "1980-03-03").await;
    let details = app.get("/v1/documents/d1").await.json();
    let manual = details["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"] == manual_key)
        .cloned()
        .unwrap();
    assert_eq!(manual["status"], "planned", "{manual}");
    assert!(manual["reason"].is_null(), "{manual}");
    app.stop().await;
}
