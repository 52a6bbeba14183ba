//! The "Done when": a booking, its reminder's link, a cancellation the practice software hears signed.

use super::*;

#[tokio::test]
async fn done_when_a_booking_s_reminder_link_from_the_outbox_cancels_and_the_practice_hears_it_signed()
 {
    let outbox_dir = std::env::temp_dir().join(format!(
        "rappel-answers-outbox-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    ));
    let outbox = rappel_channels::FileOutbox::new(&outbox_dir).unwrap();
    let app = spawn_app_from(Setup {
        transport: Some(Arc::new(outbox)),
        ..loopback_setup(Map::new())
    })
    .await;
    let receiver = Receiver::default();
    let receiver_addr = spawn_receiver(receiver.clone()).await;
    let r = app
        .json(
            "PUT",
            "/v1/webhook",
            &json!({"url": format!("http://{receiver_addr}/hook")}),
        )
        .await;
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    // The booking, with curl's requests.
    app.directory_and_booking().await;
    app.send_the_sms_reminder().await;
    // The reminder SMS as the outbox wrote it.
    let file = std::fs::read_dir(&outbox_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("sms-") && name.contains("reminder") || {
                name.starts_with("sms-")
                    && std::fs::read_to_string(p)
                        .unwrap_or_default()
                        .contains("rappelons")
            }
        })
        .expect("the SMS reminder in the outbox");
    let sms: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let text = sms["text"].as_str().unwrap();
    let url_start = text.find("https://rdv.example/r/").expect("the link");
    let path = &text[url_start + "https://rdv.example".len()..];
    let path: String = path.chars().take_while(|c| !c.is_whitespace()).collect();
    let token = token_in(&path).unwrap();
    // Opens it, cancels.
    assert_eq!(app.page(&token).await.status, 200);
    let done = app.answer(&token, "cancel").await;
    assert_eq!(done.status, 200, "{}", done.text());
    // The timeline shows it.
    let timeline = app.timeline().await;
    assert!(
        timeline
            .iter()
            .any(|e| e["kind"] == "reminder" && e["reason"] == "superseded"),
        "{timeline:?}"
    );
    assert_eq!(
        app.get("/v1/appointments/a1").await.json()["status"],
        "cancelled"
    );
    // And the practice software, signed.
    app.engine.deliver_webhooks().await.unwrap();
    let key = SigningKey::parse(&secret).unwrap();
    let seen = receiver.seen.lock().unwrap().clone();
    let (id, ts, signature, body) = seen
        .iter()
        .find(|s| s.3.contains("appointment.cancel_requested"))
        .expect("the cancellation event")
        .clone();
    rappel_test_support::signed::dump(&secret, &id, &ts, &signature, &body);
    assert_eq!(
        key.sign(&id, ts.parse().unwrap(), body.as_bytes()),
        signature
    );
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["data"]["by"], "patient");
    app.stop().await;
    let _ = std::fs::remove_dir_all(&outbox_dir);
}
