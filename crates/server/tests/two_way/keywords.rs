//! Keywords, the received box, OUI and ANNULER through the answers core.

use super::*;

#[tokio::test]
async fn start_and_oui_lift_the_opt_out_and_each_keyword_is_answered() {
    let app = spawn().await;
    app.reminder_sent().await;
    let mut n = 10;
    let mut say = |text: &'static str| {
        n += 1;
        let sid = format!("SM{n:032}");
        let app = &app;
        async move {
            // A minute apart, so that the box lists them in order.
            app.clock
                .set(app.engine.now() + jiff::SignedDuration::from_mins(1));
            let r = app.twilio_inbound(&sid, MOBILE, text, TWILIO_TOKEN).await;
            assert_eq!(r.status, 204, "{text}: {}", r.text());
            app.engine.dispatch_all_due().await.unwrap();
            app.sms_texts().last().cloned().unwrap_or_default()
        }
    };
    assert!(say("stop").await.contains("plus de SMS"));
    assert_eq!(app.opt_out().await["opted_out"], true);
    assert!(say(" START ").await.contains("réactivés"));
    assert_eq!(app.opt_out().await["opted_out"], false);
    assert!(say("Start").await.contains("déjà activés"));
    assert!(say("ARRET !").await.contains("plus de SMS"));
    let answer = say("Oui.").await;
    // OUI while opted out: SMS back on, then the next appointment confirmed.
    assert!(answer.contains("réactivés"), "{answer}");
    assert!(
        answer.contains("présence au rendez-vous du mercredi 4 mars 2026 à 09h30 est confirmée"),
        "{answer}"
    );
    assert_eq!(app.opt_out().await["opted_out"], false);
    // The keywords are kept, handled, with what they were.
    let all = app.received(true).await;
    let keywords: Vec<&str> = all.iter().filter_map(|m| m["keyword"].as_str()).collect();
    assert_eq!(keywords, ["confirm", "stop", "start", "start", "stop"]);
    app.stop().await;
}

#[tokio::test]
async fn free_text_lands_in_the_box_with_the_patient_and_appointment_and_is_handled_there() {
    let app = spawn().await;
    app.reminder_sent().await;
    let before = app.sms_texts().len();
    let r = app
        .twilio_inbound(
            "SM00000000000000000000000000000003",
            MOBILE,
            "Oui mais je serai en retard",
            TWILIO_TOKEN,
        )
        .await;
    assert_eq!(r.status, 204);
    app.engine.dispatch_all_due().await.unwrap();
    assert_eq!(app.sms_texts().len(), before, "free text is not answered");
    let open = app.received(false).await;
    assert_eq!(open.len(), 1, "{open:?}");
    let m = &open[0];
    assert_eq!(m["patient"], "p1");
    assert_eq!(m["appointment"], "a1");
    assert_eq!(m["text"], "Oui mais je serai en retard");
    assert_eq!(m["keyword"], Value::Null);
    assert_eq!(m["handled_at"], Value::Null);
    let id = m["id"].as_str().unwrap();
    let r = app
        .json(
            "POST",
            &format!("/v1/received-messages/{id}/resolve"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(app.received(false).await.is_empty());
    assert_eq!(app.received(true).await.len(), 1);
    // Another practice sees nothing of it.
    let other = app
        .engine
        .create_practice("Cabinet B", "doctolib", "Europe/Paris", Default::default())
        .await
        .unwrap();
    let r = app
        .get_as(&other.api_key, "/v1/received-messages?handled=true")
        .await;
    assert_eq!(r.json()["items"], json!([]));
    let r = app
        .send(
            "POST",
            &format!("/v1/received-messages/{id}/resolve"),
            Some(&other.api_key),
            &[],
            Some(b"{}"),
        )
        .await;
    assert_eq!(r.status, 404);
    app.stop().await;
}

#[tokio::test]
async fn a_number_no_message_was_sent_to_is_answered_204_and_stored_nowhere() {
    let app = spawn().await;
    app.patient_with_appointments().await;
    let r = app
        .twilio_inbound(
            "SM00000000000000000000000000000004",
            MOBILE,
            "STOP",
            TWILIO_TOKEN,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(app.opt_out().await["opted_out"], false);
    assert!(app.received(true).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn the_practice_lifts_an_opt_out_through_the_api() {
    let app = spawn().await;
    app.reminder_sent().await;
    app.twilio_inbound(
        "SM00000000000000000000000000000005",
        MOBILE,
        "STOP",
        TWILIO_TOKEN,
    )
    .await;
    assert_eq!(app.opt_out().await["opted_out"], true);
    // A replacement of the file by the practice software does not lift it.
    let r = app
        .json(
            "PUT",
            "/v1/patients/p1",
            &json!({"first_name": "Jeanne", "last_name": "Dupont", "mobile": "06 12 34 56 78",
                    "sms_notifications": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(app.opt_out().await["opted_out"], true);
    let r = app
        .send(
            "DELETE",
            "/v1/patients/p1/sms-opt-out",
            Some(&app.key),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(app.opt_out().await["opted_out"], false);
    assert_eq!(app.get("/v1/patients/nobody/sms-opt-out").await.status, 404);
    app.stop().await;
}
// ---- OUI and ANNULER, through the answers core -----------------------------------------------

#[tokio::test]
async fn oui_confirms_the_next_appointment_and_tells_the_practice_software() {
    let app = spawn().await;
    let (addr, seen) = receiver().await;
    let r = app
        .json(
            "PUT",
            "/v1/webhook",
            &json!({"url": format!("http://{addr}/hook")}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    app.reminder_sent().await;
    let r = app
        .twilio_inbound(
            "SM00000000000000000000000000000021",
            MOBILE,
            "CONFIRME",
            TWILIO_TOKEN,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    app.engine.dispatch_all_due().await.unwrap();
    let answer = app.sms_texts().last().cloned().unwrap();
    assert!(answer.contains("est confirmée"), "{answer}");
    let a1 = app.get("/v1/appointments/a1").await.json();
    assert_eq!(a1["patient_answer"]["answer"], "confirmed", "{a1}");
    assert_eq!(a1["patient_answer"]["channel"], "sms", "{a1}");
    // Handled at once: nothing waits in the box.
    assert!(app.received(false).await.is_empty());
    app.engine.deliver_webhooks().await.unwrap();
    let types: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        types.contains(&"appointment.confirmed_by_patient".to_string()),
        "{types:?}"
    );
    assert!(types.contains(&"message.received".to_string()), "{types:?}");
    app.stop().await;
}

#[tokio::test]
async fn annuler_cancels_before_the_cutoff_and_is_refused_after_it() {
    let app = spawn().await;
    app.reminder_sent().await;
    // Tuesday 13:00; a1 is on Wednesday 09:30: well before the 4-hour cutoff.
    let r = app
        .twilio_inbound(
            "SM00000000000000000000000000000031",
            MOBILE,
            "annuler",
            TWILIO_TOKEN,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    app.engine.dispatch_all_due().await.unwrap();
    let answer = app.sms_texts().last().cloned().unwrap();
    assert!(
        answer.contains("votre rendez-vous du mercredi 4 mars 2026 à 09h30 est annulé"),
        "{answer}"
    );
    let a1 = app.get("/v1/appointments/a1").await.json();
    let text = a1.to_string();
    assert!(
        text.contains("\"cancelled\"") && text.contains("\"by\":\"patient\""),
        "cancelled by the patient: {a1}"
    );
    assert!(app.received(false).await.is_empty());

    // The next appointment is now a2 (Friday 10:00); on Friday at 07:00 it is too late.
    app.at("2026-03-06T07:00:00+01:00").await;
    let before = app.sms_texts().len();
    let r = app
        .twilio_inbound(
            "SM00000000000000000000000000000032",
            MOBILE,
            "ANNULER",
            TWILIO_TOKEN,
        )
        .await;
    assert_eq!(r.status, 204);
    app.engine.dispatch_all_due().await.unwrap();
    let texts = app.sms_texts();
    assert_eq!(texts.len(), before + 1, "{texts:?}");
    assert!(
        texts.last().unwrap().contains("trop tard pour annuler"),
        "{texts:?}"
    );
    let a2 = app.get("/v1/appointments/a2").await.json();
    assert!(
        !a2.to_string().contains("\"cancelled\""),
        "still booked: {a2}"
    );
    // The practice must call back: the request waits in the box, with its appointment.
    let open = app.received(false).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["keyword"], "cancel");
    assert_eq!(open[0]["appointment"], "a2");
    app.stop().await;
}
