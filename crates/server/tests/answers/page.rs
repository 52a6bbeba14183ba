//! The appointment page: confirm, cancel, the cutoff, neutral answers, the link's length in a preview.

use super::*;

#[tokio::test]
async fn the_reminder_link_shows_the_appointment_and_confirms_it() {
    let app = spawn_app_from(loopback_setup(Map::new())).await;
    app.directory_and_booking().await;
    app.send_the_sms_reminder().await;
    let sms = app
        .recorder
        .sent()
        .into_iter()
        .find(|r| r.message.channel == Channel::Sms)
        .unwrap();
    assert!(
        sms.message.text.contains("https://rdv.example/r/"),
        "{}",
        sms.message.text
    );
    let token = app.sms_token(&app.practice);

    let page = app.page(&token).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_patient_page_headers(&page);
    let html = page.text();
    for shown in [
        "jeudi 5 mars 2026",
        "10h00",
        "Dr Martin",
        "12 rue des Lilas, Paris",
        "Confirmer ma présence",
        "Annuler le rendez-vous",
        "Cabinet A",
    ] {
        assert!(html.contains(shown), "{shown} missing in {html}");
    }
    // No motive: the practice does not show motives.
    assert!(!html.contains("Bilan"), "{html}");
    // Opening the page changed nothing.
    assert_eq!(
        app.get("/v1/appointments/a1").await.json()["patient_answer"],
        Value::Null
    );

    let done = app.answer(&token, "confirm").await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert_patient_page_headers(&done);
    assert!(
        done.text().contains("votre présence est confirmée"),
        "{}",
        done.text()
    );
    let again = app.answer(&token, "confirm").await;
    assert!(again.text().contains("déjà confirmé"), "{}", again.text());

    let appointment = app.get("/v1/appointments/a1").await.json();
    assert_eq!(appointment["status"], "booked");
    assert_eq!(appointment["patient_answer"]["answer"], "confirmed");
    assert_eq!(appointment["patient_answer"]["channel"], "link");
    assert_eq!(appointment["patient_answer"]["current"], true);

    // The page of a confirmed appointment says so, and still offers to cancel.
    let html = app.page(&token).await.text();
    assert!(html.contains("Vous avez confirmé votre présence"), "{html}");
    assert!(html.contains("Annuler le rendez-vous"), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn the_email_buttons_open_the_page_on_one_form() {
    let app = spawn_app_from(loopback_setup(Map::new())).await;
    app.directory_and_booking().await;
    app.engine.dispatch_all_due().await.unwrap();
    let email = app
        .recorder
        .sent()
        .into_iter()
        .find(|r| r.message.channel == Channel::Email)
        .expect("the confirmation email");
    let html = email.message.html.unwrap();
    assert!(html.contains(">Confirmer ma présence</a>"), "{html}");
    assert!(html.contains(">Annuler le rendez-vous</a>"), "{html}");
    // The HTML part escapes the URL's slashes; the text part carries it as is.
    let token = token_in(&email.message.text).unwrap();
    assert!(html.contains(&token), "{html}");
    let cancel = app
        .send("GET", &format!("/r/{token}?choix=annuler"), None, &[], None)
        .await;
    assert_eq!(cancel.status, 200);
    assert!(cancel.text().contains("Annuler votre rendez-vous"));
    assert!(!cancel.text().contains("Confirmer ma présence"));
    // A GET never cancels (mail scanners open links).
    assert_eq!(
        app.get("/v1/appointments/a1").await.json()["status"],
        "booked"
    );
    app.stop().await;
}

#[tokio::test]
async fn cancelling_before_the_cutoff_cancels_through_ingestion_and_tells_the_practice() {
    let app = spawn_app_from(loopback_setup(Map::new())).await;
    let receiver = Receiver::default();
    let receiver_addr = spawn_receiver(receiver.clone()).await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let r = app
        .json(
            "PUT",
            "/v1/webhook",
            &json!({"url": format!("http://{receiver_addr}/hook"), "secret": secret}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    app.directory_and_booking().await;
    app.send_the_sms_reminder().await;
    let token = app.sms_token(&app.practice);

    let done = app.answer(&token, "cancel").await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert!(
        done.text().contains("Votre rendez-vous est annulé"),
        "{}",
        done.text()
    );
    let appointment = app.get("/v1/appointments/a1").await.json();
    assert_eq!(appointment["status"], "cancelled");
    assert_eq!(appointment["by"], "patient");
    assert_eq!(appointment["patient_answer"]["answer"], "cancelled");
    // The plan followed: the reminder email of D-1 is superseded, the practitioner is alerted.
    let timeline = app.timeline().await;
    assert!(
        timeline.iter().any(|e| e["kind"] == "reminder"
            && e["status"] == "suppressed"
            && e["reason"] == "superseded"),
        "{timeline:?}"
    );
    assert!(
        timeline
            .iter()
            .any(|e| e["kind"] == "practitioner_cancellation"),
        "{timeline:?}"
    );
    // Twice is once.
    let again = app.answer(&token, "cancel").await;
    assert!(again.text().contains("déjà annulé"), "{}", again.text());
    let page = app.page(&token).await;
    assert!(
        page.text().contains("annulé à votre demande"),
        "{}",
        page.text()
    );
    assert!(!page.text().contains("<form"), "{}", page.text());

    // The practice software hears of it once, signed.
    app.engine.deliver_webhooks().await.unwrap();
    let seen = receiver.seen.lock().unwrap().clone();
    let key = SigningKey::parse(secret).unwrap();
    let cancels: Vec<Value> = seen
        .iter()
        .filter_map(|(id, ts, signature, body)| {
            let event: Value = serde_json::from_str(body).unwrap();
            (event["type"] == "appointment.cancel_requested").then(|| {
                rappel_test_support::signed::dump(secret, id, ts, signature, body);
                assert_eq!(
                    &key.sign(id, ts.parse().unwrap(), body.as_bytes()),
                    signature
                );
                event
            })
        })
        .collect();
    assert_eq!(cancels.len(), 1, "{seen:?}");
    let data = &cancels[0]["data"];
    assert_eq!(data["appointment"], "a1");
    assert_eq!(data["patient"], "p1");
    assert_eq!(data["by"], "patient");
    assert_eq!(data["channel"], "link");
    assert_eq!(data["at"], "2026-03-04T12:00:00Z");
    // No contact details or text in the event.
    assert!(
        !seen
            .iter()
            .any(|s| s.3.contains("jeanne@example.org") || s.3.contains("0612345678"))
    );
    app.stop().await;
}

#[tokio::test]
async fn after_the_cutoff_the_page_gives_the_practice_phone_and_nothing_changes() {
    let mut settings = Map::new();
    settings.insert("patient_cancel_cutoff_hours".into(), json!(24));
    settings.insert("practice_phone".into(), json!("01 23 45 67 89"));
    let app = spawn_app_from(loopback_setup(settings)).await;
    app.directory_and_booking().await;
    app.send_the_sms_reminder().await;
    let token = app.sms_token(&app.practice);
    let before = app.timeline().await;

    let page = app.page(&token).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("href=\"tel:0123456789\""), "{html}");
    assert!(html.contains("trop tard pour annuler en ligne"), "{html}");
    assert!(
        !html.contains("value=\"cancel\""),
        "no cancel button: {html}"
    );
    assert!(html.contains("Confirmer ma présence"), "{html}");

    // A cancel posted anyway (an old page left open) is refused.
    let refused = app.answer(&token, "cancel").await;
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(refused.text().contains("01 23 45 67 89"));
    let appointment = app.get("/v1/appointments/a1").await.json();
    assert_eq!(appointment["status"], "booked");
    assert_eq!(appointment["patient_answer"], Value::Null);
    let after = app.timeline().await;
    assert_eq!(before, after, "nothing changed");
    app.stop().await;
}

#[tokio::test]
async fn expired_unknown_guessed_and_switched_off_links_all_get_the_same_neutral_page() {
    let app = spawn_app_from(loopback_setup(Map::new())).await;
    app.directory_and_booking().await;
    app.send_the_sms_reminder().await;
    let token = app.sms_token(&app.practice);
    assert_eq!(app.page(&token).await.status, 200);

    let neutral = app.page("AAAAAAAAAAAAAAAA").await;
    assert_eq!(neutral.status, 404);
    assert_patient_page_headers(&neutral);
    let neutral_body = neutral.text();
    assert!(neutral_body.contains("Lien indisponible"));
    assert!(!neutral_body.contains("Cabinet A"));

    // Guessing: a few hundred tokens, of every shape, give the same page and change nothing.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..300 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let guess: String = format!("{state:016x}{i}").chars().take(16).collect();
        let r = if i % 2 == 0 {
            app.page(&guess).await
        } else {
            app.answer(&guess, "cancel").await
        };
        assert_eq!(r.status, 404, "{guess}");
        assert_eq!(r.text(), neutral_body, "{guess}");
    }
    // A token one character off is as unknown as any other.
    let mut near = token.clone();
    let last = near.pop().unwrap();
    near.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(app.page(&near).await.text(), neutral_body);
    assert_eq!(
        app.get("/v1/appointments/a1").await.json()["status"],
        "booked"
    );

    // The practice switches links off: the link stops working, with the same page.
    let r = app
        .json(
            "PATCH",
            "/v1/settings",
            &json!({"appointment_links": false}),
        )
        .await;
    assert!(r.status < 300, "{}", r.text());
    let off = app.page(&token).await;
    assert_eq!((off.status, off.text()), (404, neutral_body.clone()));
    let r = app
        .json("PATCH", "/v1/settings", &json!({"appointment_links": true}))
        .await;
    assert!(r.status < 300, "{}", r.text());

    // At the appointment's start the link has expired: the same page again.
    app.clock.set(APPOINTMENT.parse().unwrap());
    let expired = app.page(&token).await;
    assert_eq!((expired.status, expired.text()), (404, neutral_body));
    app.stop().await;
}

#[tokio::test]
async fn a_practice_that_switches_links_off_sends_none() {
    let mut settings = Map::new();
    settings.insert("appointment_links".into(), json!(false));
    let app = spawn_app_from(loopback_setup(settings)).await;
    app.directory_and_booking().await;
    app.engine.dispatch_all_due().await.unwrap();
    app.send_the_sms_reminder().await;
    let sent = app.recorder.sent();
    assert!(sent.iter().any(|r| r.message.channel == Channel::Sms));
    for r in sent {
        assert!(!r.message.text.contains("/r/"), "{}", r.message.text);
        assert!(!r.message.html.unwrap_or_default().contains("/r/"));
    }
    app.stop().await;
}

#[tokio::test]
async fn a_token_answers_only_for_its_own_practice() {
    let app = spawn_app_from(loopback_setup(Map::new())).await;
    let other = app
        .engine
        .create_practice("Cabinet B", "doctolib", "Europe/Paris", Map::new())
        .await
        .unwrap();
    // The same ids in both practices.
    app.directory_and_booking().await;
    app.directory_and_booking_as(&other.api_key).await;
    app.send_the_sms_reminder().await;
    let token_b = app.sms_token(&other.id);
    let page = app.page(&token_b).await;
    assert!(page.text().contains("Cabinet B"), "{}", page.text());
    assert!(!page.text().contains("Cabinet A"));
    assert_eq!(app.answer(&token_b, "cancel").await.status, 200);
    // B's appointment a1 is cancelled; A's a1 is untouched.
    assert_eq!(
        app.get_as(&other.api_key, "/v1/appointments/a1")
            .await
            .json()["status"],
        "cancelled"
    );
    assert_eq!(
        app.get("/v1/appointments/a1").await.json()["status"],
        "booked"
    );
    // A document link's page does not know appointment tokens, and the reverse.
    assert_eq!(
        app.send("GET", &format!("/d/{token_b}"), None, &[], None)
            .await
            .status,
        404
    );
    app.stop().await;
}

#[tokio::test]
async fn a_forged_post_is_refused() {
    let app = spawn_app_from(loopback_setup(Map::new())).await;
    app.directory_and_booking().await;
    app.send_the_sms_reminder().await;
    let token = app.sms_token(&app.practice);
    let path = format!("/r/{token}");
    // Another site's page posting the form.
    let foreign = app
        .send(
            "POST",
            &path,
            None,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", "https://evil.example"),
            ],
            Some(format!("token={token}&action=cancel").as_bytes()),
        )
        .await;
    assert_eq!(foreign.status, 403, "{}", foreign.text());
    // A form without the page's token.
    let tokenless = app
        .send(
            "POST",
            &path,
            None,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(b"action=cancel"),
        )
        .await;
    assert_eq!(tokenless.status, 403);
    assert_patient_page_headers(&tokenless);
    assert_eq!(
        app.get("/v1/appointments/a1").await.json()["status"],
        "booked"
    );
    app.stop().await;
}
#[tokio::test]
async fn the_template_preview_counts_the_link_as_long_as_this_server_makes_it() {
    let app = spawn_app_from(loopback_setup(Map::new())).await;
    let preview = |text: &'static str| {
        let app = &app;
        async move {
            let r = app
                .json(
                    "POST",
                    "/v1/templates/preview",
                    &json!({"kind": "reminder", "channel": "sms", "text": text}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()["parts"][0].clone()
        }
    };
    let part = preview("RDV{% if links %} {{ links.page }}{% endif %}").await;
    let output = part["output"].as_str().unwrap().to_string();
    // This server's public URL and a token of the real length (16 characters).
    assert_eq!(
        output.len(),
        "RDV https://rdv.example/r/".len() + 16,
        "{output}"
    );
    assert!(output.starts_with("RDV https://rdv.example/r/"), "{output}");
    // The built-in reminder with its link: counted as the SMS it will be billed as.
    let builtin = app
        .json(
            "POST",
            "/v1/templates/preview",
            &json!({"kind": "reminder", "channel": "sms"}),
        )
        .await
        .json()["parts"][0]
        .clone();
    let text = builtin["output"].as_str().unwrap();
    assert!(
        text.contains("Confirmer ou annuler : https://rdv.example/r/"),
        "{text}"
    );
    assert_eq!(
        builtin["sms_segments"],
        rappel_domain::sms::analyze(text).segments,
        "{builtin}"
    );
    // Links switched off: the preview shows none, as the messages will.
    let r = app
        .json(
            "PATCH",
            "/v1/settings",
            &json!({"appointment_links_sms": false}),
        )
        .await;
    assert!(r.status < 300, "{}", r.text());
    let part = preview("RDV{% if links %} {{ links.page }}{% endif %}").await;
    assert_eq!(part["output"], "RDV");
    app.stop().await;
}
