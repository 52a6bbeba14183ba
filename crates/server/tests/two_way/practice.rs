//! What the practice hears and sees: outbound webhooks, the web interface, the quota.

use super::*;

#[tokio::test]
async fn opt_outs_opt_ins_and_received_messages_reach_the_practice_software_signed() {
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
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    app.reminder_sent().await;
    for (n, text) in ["STOP", "START", "Pouvez-vous me rappeler ?"]
        .iter()
        .enumerate()
    {
        let r = app
            .twilio_inbound(&format!("SM{:032}", 100 + n), MOBILE, text, TWILIO_TOKEN)
            .await;
        assert_eq!(r.status, 204);
    }
    app.engine.deliver_webhooks().await.unwrap();
    let key = SigningKey::parse(&secret).unwrap();
    let events: Vec<Value> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            rappel_test_support::signed::dump(&secret, &r.id, &r.timestamp, &r.signature, &r.body);
            let ts: i64 = r.timestamp.parse().unwrap();
            assert_eq!(
                key.sign(&r.id, ts, r.body.as_bytes()),
                r.signature,
                "a valid Standard Webhooks signature"
            );
            serde_json::from_str(&r.body).unwrap()
        })
        .collect();
    let of = |t: &str| -> Vec<&Value> { events.iter().filter(|e| e["type"] == t).collect() };
    let out = of("patient.sms_opted_out");
    assert_eq!(out.len(), 1, "{events:#?}");
    assert_eq!(out[0]["data"]["patient"], "p1");
    assert_eq!(out[0]["data"]["source"], "sms");
    let back_in = of("patient.sms_opted_in");
    assert_eq!(back_in.len(), 1, "{events:#?}");
    let received = of("message.received");
    assert_eq!(received.len(), 3, "{events:#?}");
    let free = received
        .iter()
        .find(|e| e["data"]["keyword"].is_null())
        .expect("the free text");
    assert_eq!(free["data"]["appointment"], "a1");
    assert_eq!(free["data"]["channel"], "sms");
    // Identities only: never the text nor the number.
    for e in &events {
        let text = e.to_string();
        assert!(
            !text.contains("rappeler") && !text.contains("612345678"),
            "{text}"
        );
    }
    app.stop().await;
}
// ---- the web interface ------------------------------------------------------------------------

impl TestApp {
    /// Signs a secretary in; returns the session cookie and the CSRF token of the pages.
    async fn signed_in(&self) -> (String, String) {
        self.engine
            .create_user(
                &self.practice,
                "accueil@cabinet.test",
                "Samia",
                rappel_engine::Role::Secretariat,
                "un-mot-de-passe-solide",
            )
            .await
            .unwrap();
        let r = self
            .request(
                "POST",
                "/connexion",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                b"email=accueil@cabinet.test&password=un-mot-de-passe-solide",
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.text());
        let cookie = r
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let home = self.request("GET", "/", &[("Cookie", &cookie)], b"").await;
        let page = home.text();
        let at = page.find("name=\"_csrf\" value=\"").expect("a CSRF field");
        let csrf = page[at + 20..].split('"').next().unwrap().to_string();
        (cookie, csrf)
    }
}

#[tokio::test]
async fn the_received_box_and_the_patient_page_show_what_the_patient_wrote_and_their_stop() {
    let app = spawn().await;
    app.reminder_sent().await;
    let (cookie, csrf) = app.signed_in().await;
    app.twilio_inbound(
        "SM00000000000000000000000000000041",
        MOBILE,
        "Je serai en retard <b>10 min</b>",
        TWILIO_TOKEN,
    )
    .await;
    let page = app
        .request("GET", "/messages-recus", &[("Cookie", &cookie)], b"")
        .await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("Messages reçus"), "{html}");
    assert!(html.contains("Jeanne Dupont"), "{html}");
    assert!(
        html.contains("Je serai en retard &lt;b&gt;10 min&lt;/b&gt;"),
        "escaped: {html}"
    );
    assert!(
        html.contains("04/03/2026 à 09:30"),
        "the appointment concerned: {html}"
    );
    let id = app.received(false).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .request(
            "POST",
            &format!("/messages-recus/{id}/traiter"),
            &[
                ("Cookie", &cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            format!("_csrf={csrf}").as_bytes(),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(app.received(false).await.is_empty());

    // STOP: the patient page says so, with the date, and the practice can lift it.
    app.twilio_inbound(
        "SM00000000000000000000000000000042",
        MOBILE,
        "STOP",
        TWILIO_TOKEN,
    )
    .await;
    let html = app
        .request("GET", "/patients/p1", &[("Cookie", &cookie)], b"")
        .await
        .text();
    assert!(html.contains("désactivés par le patient"), "{html}");
    assert!(
        html.contains("réponse STOP le 03/03/2026 à 13:00"),
        "{html}"
    );
    let r = app
        .request(
            "POST",
            "/patients/p1/sms-reactiver",
            &[
                ("Cookie", &cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            format!("_csrf={csrf}").as_bytes(),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(app.opt_out().await["opted_out"], false);
    // Without the CSRF token, nothing happens.
    app.twilio_inbound(
        "SM00000000000000000000000000000043",
        MOBILE,
        "STOP",
        TWILIO_TOKEN,
    )
    .await;
    let r = app
        .request(
            "POST",
            "/patients/p1/sms-reactiver",
            &[
                ("Cookie", &cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            b"",
        )
        .await;
    assert_ne!(r.status, 303);
    assert_eq!(app.opt_out().await["opted_out"], true);
    app.stop().await;
}

#[tokio::test]
async fn an_answer_takes_quota_only_when_it_goes_and_none_left_suppresses_it() {
    let app = spawn().await;
    let mut quota = serde_json::Map::new();
    quota.insert("sms_quota_per_month".into(), json!(1));
    app.engine
        .set_operator_settings(&app.practice, &quota)
        .await
        .unwrap();
    // The reminder takes the month's one SMS.
    app.reminder_sent().await;
    let before = app.sms_texts().len();
    let r = app
        .twilio_inbound(
            "SM00000000000000000000000000000051",
            MOBILE,
            "STOP",
            TWILIO_TOKEN,
        )
        .await;
    assert_eq!(r.status, 204);
    app.engine.dispatch_all_due().await.unwrap();
    // The STOP is recorded all the same; its answer is not sent, and says why.
    assert_eq!(app.opt_out().await["opted_out"], true);
    assert_eq!(app.sms_texts().len(), before, "no SMS over the quota");
    let rows = app.sms_rows().await;
    let answer = rows
        .iter()
        .find(|r| r["key"].as_str().is_some_and(|k| k.starts_with("reply:")))
        .unwrap_or_else(|| panic!("the answer's row: {rows:#?}"));
    assert_eq!(answer["status"], "suppressed", "{answer}");
    assert_eq!(answer["reason"], "quota_exhausted", "{answer}");
    app.stop().await;
}
