//! Inbound SMS per provider: the "Done when" and the verification of each request.

use super::*;

#[tokio::test]
async fn a_stop_posted_as_a_twilio_inbound_webhook_turns_the_patients_sms_off_with_its_reason() {
    let app = spawn().await;
    app.reminder_sent().await;
    let before = app.sms_texts().len();

    let r = app
        .twilio_inbound(
            "SM00000000000000000000000000000001",
            MOBILE,
            "Arrêt",
            TWILIO_TOKEN,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let opt_out = app.opt_out().await;
    assert_eq!(opt_out["opted_out"], true, "{opt_out}");
    assert_eq!(opt_out["source"], "sms");
    assert_eq!(opt_out["opted_out_at"], "2026-03-03T12:00:00Z");

    // The acknowledgement goes through the queue, to the number that wrote.
    app.engine.dispatch_all_due().await.unwrap();
    let texts = app.sms_texts();
    assert_eq!(texts.len(), before + 1, "{texts:?}");
    assert!(
        texts
            .last()
            .unwrap()
            .contains("vous ne recevrez plus de SMS"),
        "{texts:?}"
    );
    let ack = app.recorder.sent().last().unwrap().message.clone();
    assert_eq!(ack.to, MOBILE);

    // a2's reminder is due on Thursday 5 March at 13:00: not sent, with the reason.
    app.at("2026-03-05T13:00:00+01:00").await;
    assert_eq!(app.sms_texts().len(), before + 1, "no SMS after the STOP");
    let rows = app.sms_rows().await;
    let reminder = rows
        .iter()
        .find(|r| {
            r["appointments"]
                .as_array()
                .is_some_and(|a| a.contains(&json!("a2")))
        })
        .unwrap_or_else(|| panic!("a2's SMS reminder: {rows:#?}"));
    assert_eq!(reminder["status"], "suppressed", "{reminder}");
    assert_eq!(reminder["reason"], "patient_sms_disabled", "{reminder}");

    app.stop().await;
}

// ---- verification ----------------------------------------------------------------------------

#[tokio::test]
async fn a_forged_or_unsigned_twilio_inbound_is_401_and_changes_nothing() {
    let app = spawn().await;
    app.reminder_sent().await;
    let forged = app
        .twilio_inbound(
            "SM00000000000000000000000000000002",
            MOBILE,
            "STOP",
            "wrong token",
        )
        .await;
    assert_eq!(forged.status, 401, "{}", forged.text());
    assert_eq!(
        forged.header("content-type"),
        Some("application/problem+json")
    );
    let unsigned = app
        .request(
            "POST",
            "/v1/webhooks/sms/twilio/inbound",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"MessageSid=SM1&From=%2B33612345678&Body=STOP",
        )
        .await;
    assert_eq!(unsigned.status, 401);
    assert_eq!(app.opt_out().await["opted_out"], false);
    assert!(app.received(true).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn ovh_reply_callbacks_need_the_token_and_are_read_from_the_query() {
    let app = spawn().await;
    app.reminder_sent().await;
    let path = |token: &str| {
        format!(
            "/v1/webhooks/sms/ovh/inbound?token={token}&id=48151623&senderid=0033612345678\
             &message=STOP&date=2026-03-03+13%3A05%3A00"
        )
    };
    let r = app.request("GET", &path("guess"), &[], b"").await;
    assert_eq!(r.status, 401);
    assert_eq!(app.opt_out().await["opted_out"], false);
    let r = app.request("GET", &path(OVH_TOKEN), &[], b"").await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(app.opt_out().await["opted_out"], true);
    // OVH calling again: one message, one opt-out.
    let r = app.request("GET", &path(OVH_TOKEN), &[], b"").await;
    assert_eq!(r.status, 204);
    assert_eq!(app.received(true).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn gateway_inbound_posts_are_checked_per_standard_webhooks() {
    let app = spawn().await;
    app.reminder_sent().await;
    let now = app.engine.now();
    let post = |secret: &'static str, at: Timestamp, text: &'static str| {
        let body =
            json!({"id": "in_1", "from": MOBILE, "to": "+33700000000", "text": text}).to_string();
        let signature =
            SigningKey::parse(secret)
                .unwrap()
                .sign("msg_1", at.as_second(), body.as_bytes());
        (body, signature, at.as_second().to_string())
    };
    let send = |(body, signature, ts): (String, String, String)| {
        let app = &app;
        async move {
            app.request(
                "POST",
                "/v1/webhooks/sms/webhook/inbound",
                &[
                    ("Content-Type", "application/json"),
                    ("webhook-id", "msg_1"),
                    ("webhook-timestamp", &ts),
                    ("webhook-signature", &signature),
                ],
                body.as_bytes(),
            )
            .await
        }
    };
    let other = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==";
    assert_eq!(send(post(other, now, "Bonjour")).await.status, 401);
    let stale = now - jiff::SignedDuration::from_mins(10);
    assert_eq!(
        send(post(GATEWAY_SECRET, stale, "Bonjour")).await.status,
        401
    );
    assert!(app.received(true).await.is_empty());
    let r = send(post(
        GATEWAY_SECRET,
        now,
        "Je serai en retard de 10 minutes",
    ))
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let items = app.received(false).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["text"], "Je serai en retard de 10 minutes");
    assert_eq!(items[0]["provider"], "webhook");
    app.stop().await;
}
