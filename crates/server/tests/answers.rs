//! The patient answers back (issue 16), over real HTTP: the appointment page behind a
//! reminder's link (`/r/{token}`: confirm, cancel before and after the cutoff, expired, foreign,
//! guessed, switched off, forged), the appointment's answer in the API and as FHIR R4, and the
//! signed webhook events on a loopback receiver — ending with the "Done when" flow
//! through the file outbox.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use rappel_channels::sms::webhook::SigningKey;
use rappel_domain::notification::Channel;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

mod common;
use common::*;

/// The appointment: Thursday 5 March 2026 at 10:00, booked on Monday 2 March at 08:00 (START).
const APPOINTMENT: &str = "2026-03-05T10:00:00+01:00";

fn loopback_setup(settings: Map<String, Value>) -> Setup {
    Setup {
        engine: rappel_engine::EngineConfig {
            net: rappel_engine::NetPolicy::loopback_for_tests(),
            public_url: "https://rdv.example".into(),
            ..Default::default()
        },
        settings,
        ..Setup::default()
    }
}

impl TestApp {
    async fn directory_and_booking(&self) {
        self.directory_and_booking_as(&self.key.clone()).await;
    }

    async fn directory_and_booking_as(&self, key: &str) {
        let r = self
            .json_as(
                key,
                "PUT",
                "/v1/practitioners/dr1",
                &json!({"name": "Dr Martin", "mobile": "0611111111"}),
            )
            .await;
        assert!(r.status < 300, "{}", r.text());
        let r = self
            .json_as(
                key,
                "PUT",
                "/v1/motives/m1",
                &json!({"name": "Bilan dermatologique"}),
            )
            .await;
        assert!(r.status < 300, "{}", r.text());
        let r = self
            .json_as(
                key,
                "PUT",
                "/v1/patients/p1",
                &json!({"first_name": "Jeanne", "last_name": "Dupont", "email": "jeanne@example.org", "mobile": "0612345678"}),
            )
            .await;
        assert!(r.status < 300, "{}", r.text());
        let r = self
            .json_as(
                key,
                "POST",
                "/v1/events",
                &json!({"type": "appointment.booked", "id": "a1", "patient": "p1", "practitioner": "dr1",
                        "motive": "m1", "start": APPOINTMENT, "location": "12 rue des Lilas, Paris",
                        "source": "staff"}),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.text());
    }

    /// Moves the clock to D-1 13:00 and sends what is due: the SMS reminder goes.
    async fn send_the_sms_reminder(&self) {
        let at: jiff::Timestamp = "2026-03-04T13:00:00+01:00".parse().unwrap();
        self.clock.set(at);
        self.recorder.set_now(at);
        self.engine.dispatch_all_due().await.unwrap();
    }

    /// The token of the last SMS's link to practice `practice`.
    fn sms_token(&self, practice: &str) -> String {
        let sms = self
            .recorder
            .sent()
            .into_iter()
            .rev()
            .find(|r| r.message.channel == Channel::Sms && r.message.practice_id == practice)
            .expect("an SMS was sent");
        token_in(&sms.message.text).unwrap_or_else(|| panic!("no link in {}", sms.message.text))
    }

    async fn page(&self, token: &str) -> Reply {
        self.send("GET", &format!("/r/{token}"), None, &[], None)
            .await
    }

    async fn answer(&self, token: &str, action: &str) -> Reply {
        let body = format!("token={token}&action={action}");
        self.send(
            "POST",
            &format!("/r/{token}"),
            None,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", &format!("http://{}", self.addr)),
            ],
            Some(body.as_bytes()),
        )
        .await
    }

    async fn timeline(&self) -> Vec<Value> {
        self.get("/v1/appointments/a1/timeline").await.json()["entries"]
            .as_array()
            .unwrap()
            .clone()
    }
}

fn token_in(text: &str) -> Option<String> {
    let start = text.find("/r/")? + 3;
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (token.len() == 16).then_some(token)
}

fn assert_patient_page_headers(r: &Reply) {
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("form-action 'self'"), "{csp}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert!(!r.text().contains("<script"), "no JavaScript");
}

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

// ---- FHIR R4 --------------------------------------------------------------------------------------

/// The codes of the R4 value sets the resource uses (hl7.org/fhir/R4/valueset-appointmentstatus,
/// valueset-participationstatus, valueset-participantrequired), copied from the specification.
const APPOINTMENT_STATUS: &[&str] = &[
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
];
const PARTICIPATION_STATUS: &[&str] = &["accepted", "declined", "tentative", "needs-action"];
const PARTICIPANT_REQUIRED: &[&str] = &["required", "optional", "information-only"];

/// The R4 `Appointment` rules a resource of ours must meet: the required elements (`status`,
/// `participant` 1..*, each with `status`), the invariants app-1 (a participant has a type or an
/// actor), app-2 (start and end together), app-3 (only proposed or cancelled ones lack them) and
/// app-4 (a cancelation reason only when cancelled or noshow), codes from the value sets, FHIR
/// ids and instants in their regular expressions, and no element the resource does not define.
fn check_r4_appointment(resource: &Value) {
    const ELEMENTS: &[&str] = &[
        "resourceType",
        "id",
        "meta",
        "implicitRules",
        "language",
        "text",
        "contained",
        "extension",
        "modifierExtension",
        "identifier",
        "status",
        "cancelationReason",
        "serviceCategory",
        "serviceType",
        "specialty",
        "appointmentType",
        "reasonCode",
        "reasonReference",
        "priority",
        "description",
        "supportingInformation",
        "start",
        "end",
        "minutesDuration",
        "slot",
        "created",
        "comment",
        "patientInstruction",
        "basedOn",
        "participant",
        "requestedPeriod",
    ];
    let object = resource.as_object().expect("an object");
    for key in object.keys() {
        assert!(
            ELEMENTS.contains(&key.as_str()),
            "`{key}` is not an R4 Appointment element"
        );
    }
    assert_eq!(resource["resourceType"], "Appointment");
    let status = resource["status"].as_str().expect("status is required");
    assert!(APPOINTMENT_STATUS.contains(&status), "{status}");
    if let Some(id) = resource.get("id") {
        let id = id.as_str().unwrap();
        assert!(
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
            "{id}"
        );
    }
    let instant = |v: &Value| {
        let text = v.as_str().expect("an instant is a string");
        // R4 instant: YYYY-MM-DDThh:mm:ss(.sss)(Z|+hh:mm), seconds and zone required.
        assert!(text.parse::<jiff::Timestamp>().is_ok(), "{text}");
        assert!(text.len() >= 20 && text.as_bytes()[10] == b'T', "{text}");
    };
    assert_eq!(
        resource.get("start").is_some(),
        resource.get("end").is_some(),
        "app-2"
    );
    match (resource.get("start"), resource.get("end")) {
        (Some(start), Some(end)) => {
            instant(start);
            instant(end);
        }
        _ => assert!(
            ["proposed", "cancelled", "waitlist"].contains(&status),
            "app-3"
        ),
    }
    if resource.get("cancelationReason").is_some() {
        assert!(["cancelled", "noshow"].contains(&status), "app-4");
    }
    if let Some(minutes) = resource.get("minutesDuration") {
        assert!(minutes.as_u64().is_some_and(|m| m >= 1), "positiveInt");
    }
    let participants = resource["participant"]
        .as_array()
        .expect("participant 1..*");
    assert!(!participants.is_empty());
    for p in participants {
        for key in p.as_object().unwrap().keys() {
            assert!(
                [
                    "id",
                    "extension",
                    "modifierExtension",
                    "type",
                    "actor",
                    "required",
                    "status",
                    "period"
                ]
                .contains(&key.as_str()),
                "`{key}` is not an element of Appointment.participant"
            );
        }
        let status = p["status"]
            .as_str()
            .expect("participant.status is required");
        assert!(PARTICIPATION_STATUS.contains(&status), "{status}");
        if let Some(required) = p.get("required") {
            assert!(PARTICIPANT_REQUIRED.contains(&required.as_str().unwrap()));
        }
        assert!(p.get("actor").is_some() || p.get("type").is_some(), "app-1");
        if let Some(actor) = p.get("actor") {
            for key in actor.as_object().unwrap().keys() {
                assert!(
                    ["reference", "type", "identifier", "display"].contains(&key.as_str()),
                    "`{key}` is not an element of Reference"
                );
            }
            if let Some(reference) = actor.get("reference") {
                let reference = reference.as_str().unwrap();
                let (kind, id) = reference.split_once('/').unwrap();
                assert!(["Patient", "Practitioner", "Location"].contains(&kind));
                assert!(!id.is_empty() && id.len() <= 64);
            }
        }
    }
}

/// With `RAPPEL_FHIR_DUMP_DIR` set, each resource checked is also written there, for
/// `scripts/fhir_schema_check.sh` to validate against HL7's R4 JSON schema.
fn dump(name: &str, resource: &Value) {
    if let Some(dir) = std::env::var_os("RAPPEL_FHIR_DUMP_DIR") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_vec_pretty(resource).unwrap(),
        )
        .unwrap();
    }
}

fn patient_participant(resource: &Value) -> Value {
    resource["participant"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["actor"]["type"] == "Patient")
        .cloned()
        .unwrap()
}

async fn fhir(app: &TestApp, key: &str) -> Value {
    let r = app
        .send(
            "GET",
            "/v1/appointments/a1",
            Some(key),
            &[("Accept", "application/fhir+json")],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/fhir+json"));
    r.json()
}

#[tokio::test]
async fn the_appointment_as_fhir_r4_follows_the_patient_answer() {
    let app = spawn_app_from(loopback_setup(Map::new())).await;
    app.directory_and_booking().await;
    let key = app.key.clone();
    let booked = fhir(&app, &key).await;
    check_r4_appointment(&booked);
    dump("booked", &booked);
    assert_eq!(booked["id"], "a1");
    assert_eq!(booked["status"], "booked");
    assert_eq!(booked["start"], "2026-03-05T09:00:00Z");
    assert_eq!(booked["end"], "2026-03-05T09:30:00Z");
    assert_eq!(patient_participant(&booked)["status"], "needs-action");
    assert_eq!(
        patient_participant(&booked)["actor"]["reference"],
        "Patient/p1"
    );
    let practitioner = booked["participant"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["actor"]["type"] == "Practitioner")
        .unwrap()
        .clone();
    assert_eq!(practitioner["actor"]["reference"], "Practitioner/dr1");
    assert_eq!(practitioner["actor"]["display"], "Dr Martin");

    app.send_the_sms_reminder().await;
    let token = app.sms_token(&app.practice);
    app.answer(&token, "confirm").await;
    let confirmed = fhir(&app, &key).await;
    check_r4_appointment(&confirmed);
    dump("confirmed", &confirmed);
    assert_eq!(patient_participant(&confirmed)["status"], "accepted");

    app.answer(&token, "cancel").await;
    let cancelled = fhir(&app, &key).await;
    check_r4_appointment(&cancelled);
    dump("cancelled", &cancelled);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(patient_participant(&cancelled)["status"], "declined");
    assert_eq!(
        cancelled["cancelationReason"]["text"],
        "Annulé par le patient"
    );

    // Plain JSON stays the default; another practice's id is 404 either way.
    let plain = app.get("/v1/appointments/a1").await;
    assert_eq!(plain.header("content-type"), Some("application/json"));
    let stranger = app
        .engine
        .create_practice("Cabinet C", "doctolib", "Europe/Paris", Map::new())
        .await
        .unwrap();
    app.send(
        "GET",
        "/v1/appointments/a1",
        Some(&stranger.api_key),
        &[("Accept", "application/fhir+json")],
        None,
    )
    .await
    .problem(404);
    app.stop().await;
}

#[test]
fn an_id_fhir_cannot_hold_is_given_as_an_identifier_only() {
    let appointment: rappel_domain::facts::Appointment = serde_json::from_value(json!({
        "id": "rdv 2026/03 #1", "patient": "p/1", "practitioner": "dr1",
        "start": "2026-03-05T09:00:00Z", "duration_minutes": 0, "source": "staff",
        "booked_at": "2026-03-01T09:00:00Z", "status": "no_show", "at": "2026-03-05T10:00:00Z",
        "version": 2
    }))
    .unwrap();
    let resource = rappel_engine::fhir::appointment_resource("cab 1", &appointment, None, None);
    check_r4_appointment(&resource);
    dump("noshow-with-non-fhir-ids", &resource);
    assert!(resource.get("id").is_none());
    assert_eq!(resource["status"], "noshow");
    assert_eq!(resource["identifier"][0]["value"], "rdv 2026/03 #1");
    assert_eq!(
        resource["identifier"][0]["system"],
        "urn:rappel:cab%201:appointment"
    );
    let patient = patient_participant(&resource);
    assert!(patient["actor"].get("reference").is_none());
    assert_eq!(patient["actor"]["identifier"]["value"], "p/1");
}

// ---- the "Done when" -------------------------------------------------------------------

/// (webhook-id, webhook-timestamp, webhook-signature, body) of one request.
type Seen = (String, String, String, String);

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn spawn_receiver(receiver: Receiver) -> SocketAddr {
    async fn handle(
        axum::extract::State(receiver): axum::extract::State<Receiver>,
        headers: HeaderMap,
        body: String,
    ) -> StatusCode {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        receiver.seen.lock().unwrap().push((
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
            body,
        ));
        StatusCode::NO_CONTENT
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(handle))
        .with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

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
    assert_eq!(
        key.sign(&id, ts.parse().unwrap(), body.as_bytes()),
        signature
    );
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["data"]["by"], "patient");
    app.stop().await;
    let _ = std::fs::remove_dir_all(&outbox_dir);
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
