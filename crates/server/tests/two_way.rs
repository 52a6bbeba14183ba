//! Two-way SMS over real HTTP (issue 16): incoming SMS posted the way each provider posts them
//! (Twilio's signed form, OVHcloud's token callback, the gateway's Standard-Webhooks JSON),
//! right and forged; every keyword; free text to the « Messages reçus » box; a STOP followed by
//! a due reminder, suppressed with its reason; and the outbound webhooks received by a loopback
//! server, their signatures checked.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use rappel_channels::sms::twilio;
use rappel_channels::sms::webhook::SigningKey;
use rappel_engine::{EngineConfig, NetPolicy};
use rappel_server::{ServerConfig, WebhookSecrets};
use serde_json::{Value, json};
use tokio::net::TcpListener;

mod common;
use common::*;

const TWILIO_TOKEN: &str = "twilio-auth-token";
const OVH_TOKEN: &str = "ovh-callback-token";
const GATEWAY_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The patient's mobile, as the providers write it.
const MOBILE: &str = "+33612345678";

fn secrets() -> WebhookSecrets {
    WebhookSecrets {
        twilio_auth_token: Some(TWILIO_TOKEN.into()),
        ovh_callback_token: Some(OVH_TOKEN.into()),
        sms_webhook_key: Some(SigningKey::parse(GATEWAY_SECRET).unwrap()),
        bounce: None,
        bounce_webhook_token: None,
        brevo_webhook_token: None,
        mailjet_webhook_token: None,
    }
}

async fn spawn() -> TestApp {
    spawn_app_from(Setup {
        config: ServerConfig {
            webhooks: secrets(),
            ..ServerConfig::default()
        },
        engine: EngineConfig {
            net: NetPolicy::loopback_for_tests(),
            ..EngineConfig::default()
        },
        ..Setup::default()
    })
    .await
}

/// One request the loopback receiver got.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// The practice software: a loopback server that keeps every event posted to it.
async fn receiver() -> (SocketAddr, Arc<Mutex<Vec<Received>>>) {
    let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
    let state = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string()
                    };
                    state.lock().unwrap().push(Received {
                        id: h("webhook-id"),
                        timestamp: h("webhook-timestamp"),
                        signature: h("webhook-signature"),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

/// `application/x-www-form-urlencoded`, as Twilio posts it.
fn form(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

impl TestApp {
    /// A practitioner, patient p1 with a mobile, and two appointments: a1 on Wednesday 4 March
    /// (its SMS reminder goes on Tuesday at 13:00) and a2 on Friday 6 March (Thursday 13:00).
    async fn patient_with_appointments(&self) {
        for (path, body) in [
            ("/v1/practitioners/dr1", json!({"name": "Dr Martin"})),
            (
                "/v1/patients/p1",
                json!({"first_name": "Jeanne", "last_name": "Dupont", "mobile": "06 12 34 56 78"}),
            ),
        ] {
            let r = self.json("PUT", path, &body).await;
            assert!(r.status == 200 || r.status == 201, "{path}: {}", r.text());
        }
        for (id, start) in [
            ("a1", "2026-03-04T09:30:00+01:00"),
            ("a2", "2026-03-06T10:00:00+01:00"),
        ] {
            let r = self
                .post_events(&json!({
                    "type": "appointment.booked", "id": id, "patient": "p1",
                    "practitioner": "dr1", "start": start, "source": "staff"
                }))
                .await;
            assert_eq!(r.status, 202, "{}", r.text());
        }
    }

    /// Moves the clock and sends what is due.
    async fn at(&self, instant: &str) {
        let now: Timestamp = instant.parse().unwrap();
        self.clock.set(now);
        self.recorder.set_now(now);
        self.engine.dispatch_all_due().await.unwrap();
    }

    /// p1's reminder of a1 went by SMS: Rappel now knows whose message p1's number answers.
    async fn reminder_sent(&self) {
        self.patient_with_appointments().await;
        self.at("2026-03-03T13:00:00+01:00").await;
        assert!(
            self.sms_texts()
                .iter()
                .any(|t| t.contains("Rappel") || t.contains("rappel")),
            "the reminder went: {:?}",
            self.sms_texts()
        );
    }

    fn sms_texts(&self) -> Vec<String> {
        self.recorder
            .sent()
            .into_iter()
            .filter(|r| r.message.channel == rappel_domain::notification::Channel::Sms)
            .map(|r| r.message.text)
            .collect()
    }

    /// Twilio's incoming message webhook, signed with `token`.
    async fn twilio_inbound(&self, sid: &str, from: &str, body: &str, token: &str) -> Reply {
        let path = "/v1/webhooks/sms/twilio/inbound";
        let params: Vec<(String, String)> = [
            ("ToCountry", "FR"),
            ("SmsMessageSid", sid),
            ("NumMedia", "0"),
            ("SmsSid", sid),
            ("SmsStatus", "received"),
            ("Body", body),
            ("To", "+33700000000"),
            ("NumSegments", "1"),
            ("MessageSid", sid),
            ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
            ("From", from),
            ("ApiVersion", "2010-04-01"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        let url = format!("{}{path}", self.engine.config().public_url);
        let signature = twilio::signature(token, &url, &params);
        self.request(
            "POST",
            path,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Signature", &signature),
            ],
            form(&params).as_bytes(),
        )
        .await
    }

    async fn opt_out(&self) -> Value {
        let r = self.get("/v1/patients/p1/sms-opt-out").await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    async fn received(&self, handled: bool) -> Vec<Value> {
        let r = self
            .get(&format!("/v1/received-messages?handled={handled}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["items"].as_array().unwrap().clone()
    }

    async fn sms_rows(&self) -> Vec<Value> {
        let r = self.get("/v1/notifications?channel=sms&limit=200").await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["items"].as_array().unwrap().clone()
    }
}

// ---- the "Done when" ------------------------------------------------------------------

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

// ---- keywords and the box ---------------------------------------------------------------------

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

// ---- outbound webhooks ------------------------------------------------------------------------

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
