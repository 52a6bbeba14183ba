//! Issue 13's findings, each proven over real HTTP against the spawned server: outbound
//! requests only to public addresses (webhooks, push), the SMS test send bounded, the plan and
//! quota the operator's, decompression bombs refused at upload, one id rule for event bodies,
//! NUL characters refused on both stores, and outbox files one per practice and message.
//!
//! The HTTP client and the app harness are those of `common/mod.rs`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rappel_engine::{DocumentsConfig, EngineConfig, NetPolicy, TEST_SMS_PER_DAY};
use rappel_store::WebhookEndpoint;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

mod common;
use common::*;

// ---- helpers -------------------------------------------------------------------------------------

async fn app_with(net: NetPolicy) -> TestApp {
    spawn_app_from(Setup {
        engine: EngineConfig {
            net,
            ..EngineConfig::default()
        },
        ..Setup::default()
    })
    .await
}

/// A webhook receiver on loopback that records the paths it is posted to.
async fn receiver() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let state = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let state = state.clone();
            async move {
                state.lock().unwrap().push("/hook".to_string());
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

impl TestApp {
    /// A practitioner, a patient with an email address and a mobile, and a booking: one
    /// confirmation email is due at once.
    async fn one_booking(&self) {
        for (path, body) in [
            ("/v1/practitioners/dr1", json!({"name": "Dr Martin"})),
            (
                "/v1/patients/p1",
                json!({"first_name": "Jeanne", "last_name": "Dupont",
                       "email": "jeanne@example.org", "mobile": "06 12 34 56 78"}),
            ),
        ] {
            let r = self.json("PUT", path, &body).await;
            assert!(r.status == 200 || r.status == 201, "{path}: {}", r.text());
        }
        let r = self
            .post_events(&json!({
                "type": "appointment.booked", "id": "a1", "patient": "p1",
                "practitioner": "dr1", "start": "2026-03-12T09:30:00+01:00", "source": "staff"
            }))
            .await;
        assert_eq!(r.status, 202, "{}", r.text());
    }

    /// The practice's webhook deliveries after the booking was sent and events were posted.
    async fn deliveries(&self) -> Vec<Value> {
        self.get("/v1/webhook/deliveries").await.json()["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn settings(&self) -> Value {
        self.get("/v1/settings").await.json()["settings"].clone()
    }
}

// ---- rows 2 and 3: SSRF --------------------------------------------------------------------------

/// The audit's URLs, and the other spellings of a private address a browser understands.
const PRIVATE_URLS: &[&str] = &[
    "https://127.0.0.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/hook",
    "https://0x7f000001/hook",
    "https://127.1/hook",
    "https://0177.0.0.1/hook",
    "https://2130706433/hook",
    "https://localhost./hook",
    "https://localhost/hook",
    "https://10.0.0.8/hook",
    "https://192.168.1.1/hook",
    "https://100.64.0.1/hook",
    "https://[fd12::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:a9fe:a9fe]/hook",
    "https://0.0.0.0/hook",
];

#[tokio::test]
async fn webhook_urls_to_private_addresses_or_with_userinfo_are_refused_naming_url() {
    let app = app_with(NetPolicy::default()).await;
    for url in PRIVATE_URLS {
        let problem = app
            .json("PUT", "/v1/webhook", &json!({"url": url}))
            .await
            .problem(422);
        assert_eq!(problem["field"], "url", "{url}: {problem}");
    }
    for url in [
        "https://user:secret@hooks.example.org/hook",
        "https://user@hooks.example.org/hook",
        "http://hooks.example.org/hook",
        "ftp://hooks.example.org/hook",
    ] {
        let problem = app
            .json("PUT", "/v1/webhook", &json!({"url": url}))
            .await
            .problem(422);
        assert_eq!(problem["field"], "url", "{url}: {problem}");
    }
    assert_eq!(app.get("/v1/webhook").await.status, 404, "nothing stored");
    // A public https URL is accepted (its name need not resolve from here).
    let r = app
        .json(
            "PUT",
            "/v1/webhook",
            &json!({"url": "https://hooks.example.org/rappel"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    app.stop().await;
}

#[tokio::test]
async fn the_operator_allowance_admits_loopback_and_events_reach_it() {
    let app = app_with(NetPolicy::loopback_for_tests()).await;
    let (addr, seen) = receiver().await;
    let r = app
        .json(
            "PUT",
            "/v1/webhook",
            &json!({"url": format!("http://{addr}/hook")}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Still not the metadata service, nor a private network: the allowance is for loopback.
    for url in ["http://169.254.169.254/x", "http://10.0.0.8/x"] {
        let problem = app
            .json("PUT", "/v1/webhook", &json!({"url": url}))
            .await
            .problem(422);
        assert_eq!(problem["field"], "url");
    }
    app.one_booking().await;
    app.engine.dispatch_all_due().await.unwrap();
    app.engine.deliver_webhooks().await.unwrap();
    assert!(
        !seen.lock().unwrap().is_empty(),
        "the receiver got the event"
    );
    for d in app.deliveries().await {
        assert_eq!(d["status"], "delivered", "{d}");
    }
    app.stop().await;
}

/// DNS rebinding and URLs stored before the check: the request itself goes only to checked
/// addresses, so an endpoint stored with a loopback address is refused when the event leaves,
/// the receiver listening there gets nothing, and the error does not say what is listening.
#[tokio::test]
async fn at_send_time_a_private_address_is_refused_and_nothing_reaches_it() {
    let app = app_with(NetPolicy::default()).await;
    let (addr, seen) = receiver().await;
    let port = addr.port();
    let mut tx = app.engine.store().begin().await.unwrap();
    tx.put_webhook_endpoint(&WebhookEndpoint {
        practice_id: app.practice.clone(),
        url: format!("https://127.1:{port}/hook"),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        created_at: app.engine.now(),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    app.one_booking().await;
    app.engine.dispatch_all_due().await.unwrap();
    app.engine.deliver_webhooks().await.unwrap();
    assert!(seen.lock().unwrap().is_empty(), "nothing reached loopback");
    let deliveries = app.deliveries().await;
    assert!(!deliveries.is_empty());
    for d in deliveries {
        assert_eq!(d["status"], "failed", "{d}");
        let error = d["last_error"].as_str().unwrap();
        assert!(error.contains("not a public one"), "{error}");
        assert!(!error.contains(&port.to_string()), "{error}");
    }
    app.stop().await;
}

/// A closed port and a port where something that is not HTTP listens give the very same
/// error: the deliveries' `last_error` is no port scanner.
#[tokio::test]
async fn a_closed_port_and_an_open_one_read_the_same_in_last_error() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let open = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_addr = open.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = open.accept().await {
            drop(socket);
        }
    });
    let mut errors = Vec::new();
    for addr in [closed, open_addr] {
        let app = app_with(NetPolicy::loopback_for_tests()).await;
        let r = app
            .json(
                "PUT",
                "/v1/webhook",
                &json!({"url": format!("http://{addr}/hook")}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        app.one_booking().await;
        app.engine.dispatch_all_due().await.unwrap();
        app.engine.deliver_webhooks().await.unwrap();
        let deliveries = app.deliveries().await;
        let error = deliveries[0]["last_error"].as_str().unwrap().to_string();
        assert!(!error.contains(&addr.port().to_string()), "{error}");
        assert!(!error.contains("os error"), "{error}");
        errors.push(error);
        app.stop().await;
    }
    assert_eq!(errors[0], errors[1]);
    assert!(errors[0].contains("unreachable"), "{}", errors[0]);
}

#[tokio::test]
async fn push_subscriptions_and_push_test_sends_to_private_addresses_are_refused() {
    let app = app_with(NetPolicy::default()).await;
    app.one_booking().await;
    let keys = json!({
        "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        "auth": "BTBZMqHH6r4Tts7J_aSIgg"
    });
    for endpoint in PRIVATE_URLS {
        let problem = app
            .json(
                "PUT",
                "/v1/patients/p1/push-subscriptions",
                &json!({"endpoint": endpoint, "keys": keys}),
            )
            .await
            .problem(422);
        assert_eq!(problem["field"], "endpoint", "{endpoint}: {problem}");
        let problem = app
            .json(
                "POST",
                "/v1/test-send",
                &json!({"kind": "reminder", "channel": "push", "to": endpoint,
                        "p256dh": keys["p256dh"], "auth": keys["auth"]}),
            )
            .await
            .problem(422);
        assert_eq!(problem["field"], "to", "{endpoint}: {problem}");
    }
    let problem = app
        .json(
            "PUT",
            "/v1/patients/p1/push-subscriptions",
            &json!({"endpoint": "https://me:pw@fcm.googleapis.com/fcm/send/x", "keys": keys}),
        )
        .await
        .problem(422);
    assert_eq!(problem["field"], "endpoint");
    assert!(
        app.recorder.sent().iter().all(|r| r.message.push.is_none()),
        "no push message left"
    );
    let r = app
        .json(
            "PUT",
            "/v1/patients/p1/push-subscriptions",
            &json!({"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "keys": keys}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    app.stop().await;
}

// ---- row 6: the SMS test send --------------------------------------------------------------------

async fn test_sms(app: &TestApp, to: &str) -> Reply {
    app.json(
        "POST",
        "/v1/test-send",
        &json!({"kind": "reminder", "channel": "sms", "to": to}),
    )
    .await
}

#[tokio::test]
async fn a_test_sms_goes_only_to_french_numbers_and_stops_at_the_daily_cap() {
    let app = spawn_app().await;
    for abroad in ["+44 7700 900123", "+1 415 555 0100", "+225 07 00 00 00 00"] {
        let problem = test_sms(&app, abroad).await.problem(422);
        assert_eq!(problem["field"], "to", "{abroad}: {problem}");
    }
    // Overseas France is France.
    assert_eq!(test_sms(&app, "+262 692 12 34 56").await.status, 202);
    for _ in 1..TEST_SMS_PER_DAY {
        let r = test_sms(&app, "06 12 34 56 78").await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
    let problem = test_sms(&app, "06 12 34 56 78").await.problem(422);
    assert_eq!(problem["field"], "channel", "{problem}");
    let sms = |app: &TestApp| {
        app.recorder
            .sent()
            .iter()
            .filter(|r| r.message.channel == rappel_domain::notification::Channel::Sms)
            .count()
    };
    assert_eq!(sms(&app) as i64, TEST_SMS_PER_DAY);
    // The next day (practice time), the cap starts again.
    app.clock
        .set(app.engine.now() + jiff::SignedDuration::from_hours(24));
    assert_eq!(test_sms(&app, "06 12 34 56 78").await.status, 202);
    // Test SMS count in the month's usage, as any SMS does.
    let meter = app.engine.sms_meter(&app.practice).await.unwrap();
    assert_eq!(meter.messages, TEST_SMS_PER_DAY + 1);
    app.stop().await;
}

#[tokio::test]
async fn a_test_sms_counts_against_the_quota() {
    let mut settings = Map::new();
    settings.insert("plan".into(), json!("essentiel"));
    settings.insert("sms_quota_per_month".into(), json!(2));
    let app = spawn_app_from(Setup {
        preset: "maddie",
        settings,
        ..Setup::default()
    })
    .await;
    assert_eq!(test_sms(&app, "06 12 34 56 78").await.status, 202);
    assert_eq!(test_sms(&app, "06 12 34 56 78").await.status, 202);
    let problem = test_sms(&app, "06 12 34 56 78").await.problem(422);
    assert_eq!(problem["field"], "channel");
    assert!(
        problem["detail"].as_str().unwrap().contains("quota"),
        "{problem}"
    );
    app.stop().await;
}

#[tokio::test]
async fn sender_names_that_impersonate_public_services_are_refused() {
    let app = spawn_app().await;
    let before = app.settings().await["sms_sender"].clone();
    for sender in [
        "AMELI",
        "Ameli",
        "A M E L I",
        "CPAM",
        "IMPOTS",
        "DGFIP",
        "CAF",
        "LaPoste",
    ] {
        let problem = app
            .json("PATCH", "/v1/settings", &json!({"sms_sender": sender}))
            .await
            .problem(422);
        assert_eq!(problem["field"], "sms_sender", "{sender}: {problem}");
    }
    assert_eq!(app.settings().await["sms_sender"], before);
    let r = app
        .json("PATCH", "/v1/settings", &json!({"sms_sender": "Cabinet A"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    app.stop().await;
    // A sender stored before names were checked (written here straight to the store) stops
    // the test send too.
    let app = spawn_app().await;
    let mut legacy = Map::new();
    legacy.insert("sms_sender".into(), json!("AMELI"));
    let mut tx = app.engine.store().begin().await.unwrap();
    tx.update_practice_settings(&app.practice, &legacy)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let problem = test_sms(&app, "06 12 34 56 78").await.problem(422);
    assert_eq!(problem["field"], "sms_sender");
    assert!(app.recorder.sent().is_empty());
    app.stop().await;
}

// ---- row 7: the plan and the quota are the operator's ------------------------------------------

async fn maddie_app() -> TestApp {
    let mut settings = Map::new();
    settings.insert("plan".into(), json!("essentiel"));
    settings.insert("sms_quota_per_month".into(), json!(50));
    spawn_app_from(Setup {
        preset: "maddie",
        settings,
        ..Setup::default()
    })
    .await
}

#[tokio::test]
async fn a_practice_key_cannot_change_its_plan_or_quota_but_the_operator_can() {
    let app = maddie_app().await;
    let problem = app
        .json(
            "PATCH",
            "/v1/settings",
            &json!({"plan": "pro", "sms_quota_per_month": 100000000}),
        )
        .await
        .problem(422);
    assert_eq!(problem["field"], "plan", "{problem}");
    let problem = app
        .json(
            "PATCH",
            "/v1/settings",
            &json!({"sms_quota_per_month": 100000000}),
        )
        .await
        .problem(422);
    assert_eq!(problem["field"], "sms_quota_per_month", "{problem}");
    // Nor through an event.
    let problem = app
        .post_events(&json!({"type": "settings.updated", "plan": "pro"}))
        .await
        .problem(422);
    assert!(
        problem["field"].as_str().unwrap().ends_with("plan"),
        "{problem}"
    );
    let settings = app.settings().await;
    assert_eq!(settings["plan"], "essentiel");
    assert_eq!(settings["sms_quota_per_month"], 50);
    // Sending back what was read is no change, and is accepted with the other settings.
    let r = app
        .json(
            "PATCH",
            "/v1/settings",
            &json!({"plan": "essentiel", "sms_quota_per_month": 50, "sms_sender": "Cabinet"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The operator's way (`rappel practice set`).
    let mut patch = Map::new();
    patch.insert("plan".into(), json!("pro"));
    patch.insert("sms_quota_per_month".into(), json!(500));
    app.engine
        .set_operator_settings(&app.practice, &patch)
        .await
        .unwrap();
    let settings = app.settings().await;
    assert_eq!(settings["plan"], "pro");
    assert_eq!(settings["sms_quota_per_month"], 500);
    app.stop().await;
}

#[tokio::test]
async fn the_web_interface_shows_the_plan_and_ignores_a_forged_one() {
    let app = maddie_app().await;
    app.engine
        .create_user(
            &app.practice,
            "admin@cabinet.test",
            "Alice",
            rappel_engine::Role::Admin,
            "un-mot-de-passe-solide",
        )
        .await
        .unwrap();
    let origin = format!("http://{}", app.addr);
    let form = |path: &str, body: String, cookie: Option<String>| {
        let origin = origin.clone();
        let path = path.to_string();
        let app = &app;
        async move {
            let mut headers = vec![
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded".to_string(),
                ),
                ("Origin", origin),
            ];
            if let Some(cookie) = cookie {
                headers.push(("Cookie", format!("rappel_session={cookie}")));
            }
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            app.send("POST", &path, None, &headers, Some(body.as_bytes()))
                .await
        }
    };
    let reply = form(
        "/connexion",
        "email=admin@cabinet.test&password=un-mot-de-passe-solide".into(),
        None,
    )
    .await;
    assert_eq!(reply.status, 303, "{}", reply.text());
    let token = reply
        .header("set-cookie")
        .unwrap()
        .trim_start_matches("rappel_session=")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let cookie = format!("rappel_session={token}");
    let page = app
        .send("GET", "/parametres", None, &[("Cookie", &cookie)], None)
        .await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        !html.contains("name=\"opt.plan\"") && !html.contains("name=\"opt.sms_quota_per_month\""),
        "the plan and quota are not form fields"
    );
    assert!(
        html.contains("fixé par l'opérateur"),
        "shown as the operator's"
    );
    let at = html.find("name=\"_csrf\" value=\"").unwrap();
    let csrf = html[at + 20..].split('"').next().unwrap().to_string();
    let reply = form(
        "/parametres",
        format!("_csrf={csrf}&opt.plan=pro&opt.sms_quota_per_month=100000000"),
        Some(token),
    )
    .await;
    assert!(reply.status < 500, "{}", reply.text());
    let settings = app.settings().await;
    assert_eq!(settings["plan"], "essentiel");
    assert_eq!(settings["sms_quota_per_month"], 50);
    app.stop().await;
}

// ---- row 11: decompression bombs -----------------------------------------------------------------

/// A one-page PDF whose content stream is `zeros` bytes of zeros, Flate-compressed: a few
/// hundred kilobytes that inflate to `zeros` bytes.
fn bomb_pdf(zeros: usize) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(chunk.len());
        encoder.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    let stream = encoder.finish().unwrap();
    let mut pdf = b"%PDF-1.5\n".to_vec();
    let mut offsets = Vec::new();
    let objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>".to_vec(),
        {
            let mut s = format!(
                "<< /Length {} /Filter /FlateDecode >>\nstream\n",
                stream.len()
            )
            .into_bytes();
            s.extend_from_slice(&stream);
            s.extend_from_slice(b"\nendstream");
            s
        },
    ];
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        pdf.extend_from_slice(body);
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

fn multipart(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----rappel-security-boundary-5Xq8";
    let mut body = Vec::new();
    for (name, file_name, value) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let disposition = match file_name {
            Some(file) => format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                 Content-Type: application/pdf\r\n\r\n"
            ),
            None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn a_pdf_that_inflates_past_the_budget_is_refused_at_upload_and_nothing_is_stored() {
    let dir = std::env::temp_dir().join(format!(
        "rappel-security-bomb-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    ));
    let app = spawn_app_from(Setup {
        engine: EngineConfig {
            documents: DocumentsConfig::in_dir(&dir)
                .with_key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
            ..EngineConfig::default()
        },
        preset: "lifen",
        documents_dir: Some(dir.clone()),
        ..Setup::default()
    })
    .await;
    app.one_booking().await;
    let upload = |pdf: Vec<u8>, id: &'static str| {
        let app = &app;
        async move {
            let (content_type, body) = multipart(&[
                ("id", None, id.as_bytes()),
                ("patient", None, b"p1"),
                ("title", None, b"Compte rendu"),
                ("file", Some("cr.pdf"), &pdf),
            ]);
            app.send(
                "POST",
                "/v1/documents",
                Some(&app.key),
                &[("Content-Type", &content_type)],
                Some(&body),
            )
            .await
        }
    };
    let bomb = bomb_pdf(200 * 1024 * 1024);
    assert!(
        bomb.len() < 400 * 1024,
        "a small file: {} bytes",
        bomb.len()
    );
    let problem = upload(bomb, "d1").await.problem(422);
    assert_eq!(problem["field"], "file", "{problem}");
    assert_eq!(app.get("/v1/documents/d1").await.status, 404);
    let files = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(files, 0, "no file was written");
    // The same shape within the budget is an ordinary document.
    let r = upload(bomb_pdf(1024 * 1024), "d2").await;
    assert_eq!(r.status, 201, "{}", r.text());
    app.stop().await;
}

// ---- row 14: one id rule everywhere --------------------------------------------------------------

#[tokio::test]
async fn ids_in_event_bodies_follow_the_rule_of_rest_paths() {
    let app = spawn_app().await;
    app.one_booking().await;
    let long = "x".repeat(10_000);
    let cases = [
        (
            json!({"type": "patient.updated", "id": long, "last_name": "Dupont"}),
            "id",
        ),
        (
            json!({"type": "appointment.booked", "id": "a2", "patient": "p\u{7}1",
                   "practitioner": "dr1", "start": "2026-03-13T09:30:00+01:00", "source": "staff"}),
            "patient",
        ),
        (
            json!({"type": "appointment.booked", "id": "a2", "patient": "p1",
                   "practitioner": "dr1", "motive": "m\n1",
                   "start": "2026-03-13T09:30:00+01:00", "source": "staff"}),
            "motive",
        ),
        (
            json!({"type": "document.sent", "id": "", "patient": "p1", "title": "CR"}),
            "id",
        ),
        (
            json!({"type": "delivery.bounced", "document": long}),
            "document",
        ),
        (
            json!({"type": "appointment.cancelled", "id": long, "by": "patient"}),
            "id",
        ),
    ];
    for (event, field) in &cases {
        let problem = app.post_events(event).await.problem(422);
        assert_eq!(problem["field"], *field, "{problem}");
        // In a batch, the event is named and nothing of the batch is applied.
        let batch = json!([
            {"type": "patient.updated", "id": "p9", "last_name": "Martin"},
            event,
        ]);
        let problem = app.post_events(&batch).await.problem(422);
        assert_eq!(problem["field"], format!("events[1].{field}"), "{problem}");
        assert_eq!(app.get("/v1/patients/p9").await.status, 404);
    }
    app.stop().await;
}

// ---- row 15: NUL characters, on both stores ------------------------------------------------------

async fn nul_checks(app: &TestApp) {
    let cases = [
        (
            "PUT",
            "/v1/patients/p1",
            json!({"first_name": "Jea\u{0}nne", "last_name": "Dupont"}),
            "first_name",
        ),
        (
            "PATCH",
            "/v1/settings",
            json!({"quiet_hours_sms": "21:00-08:00\u{0}"}),
            "quiet_hours_sms",
        ),
        (
            "POST",
            "/v1/events",
            json!([
                {"type": "patient.updated", "id": "p2", "last_name": "Martin"},
                {"type": "patient.updated", "id": "p3", "address": {"lines": ["1 rue\u{0}"], "postal_code": "75011", "city": "Paris"}},
            ]),
            "events[1].address.lines[0]",
        ),
        (
            "POST",
            "/v1/events",
            json!({"type": "patient.updated", "id": "p2", "last_name": "Mar\u{0}tin"}),
            "last_name",
        ),
        (
            "PUT",
            "/v1/practitioners/dr2",
            json!({"name": "Dr\u{0}"}),
            "name",
        ),
        (
            "PUT",
            "/v1/webhook",
            json!({"url": "https://hooks.example.org/\u{0}"}),
            "url",
        ),
    ];
    for (method, path, body, field) in cases {
        let problem = app.json(method, path, &body).await.problem(422);
        assert_eq!(problem["field"], field, "{method} {path}: {problem}");
    }
    // A key with a NUL is named too, and the answer is valid JSON.
    let problem = app
        .json("PATCH", "/v1/settings", &json!({"a\u{0}b": true}))
        .await
        .problem(422);
    assert!(problem["field"].is_string(), "{problem}");
    // Nothing of it was stored.
    assert_eq!(app.get("/v1/patients/p1").await.status, 404);
    assert_eq!(app.get("/v1/patients/p2").await.status, 404);
    // The same request with an Idempotency-Key stores its refusal, which must itself be storable.
    let body =
        serde_json::to_vec(&json!({"type": "patient.updated", "id": "p2", "x\u{0}": 1})).unwrap();
    let r = app
        .send(
            "POST",
            "/v1/events",
            Some(&app.key),
            &[("Idempotency-Key", "nul-1")],
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    // The web interface's forms too (here the sign-in, before any account is looked up).
    let origin = format!("http://{}", app.addr);
    let r = app
        .send(
            "POST",
            "/connexion",
            None,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", &origin),
            ],
            Some(b"email=ali%00ce%40cabinet.test&password=un-mot-de-passe"),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
}

#[tokio::test]
async fn a_nul_character_in_any_string_is_422_naming_the_field_on_sqlite() {
    let app = spawn_app().await;
    nul_checks(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_nul_character_in_any_string_is_422_naming_the_field_on_postgresql() {
    let admin = std::env::var("RAPPEL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let (url, name) = rappel_store::admin::create_postgres_database(&admin, "rappel_nul")
        .await
        .expect(
            "PostgreSQL is needed for this test: start it or set RAPPEL_TEST_POSTGRES_URL \
             (scripts/test.sh does both)",
        );
    let app = spawn_app_from(Setup {
        database_url: Some(url),
        ..Setup::default()
    })
    .await;
    nul_checks(&app).await;
    app.stop().await;
    let _ = rappel_store::admin::drop_postgres_database(&admin, &name).await;
}

// ---- row 17: outbox file names -------------------------------------------------------------------

#[tokio::test]
async fn two_practices_messages_with_the_same_identity_key_are_two_outbox_files() {
    let dir = std::env::temp_dir().join(format!(
        "rappel-security-outbox-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    ));
    let outbox = rappel_channels::FileOutbox::new(&dir).unwrap();
    let app = spawn_app_from(Setup {
        transport: Some(Arc::new(outbox)),
        ..Setup::default()
    })
    .await;
    let other = app
        .engine
        .create_practice("Cabinet B", "doctolib", "Europe/Paris", Map::new())
        .await
        .unwrap();
    // The same booking (same ids, so the same identity keys) in both practices.
    app.one_booking().await;
    let as_other = TestAppKey {
        app: &app,
        key: other.api_key.clone(),
    };
    as_other.one_booking().await;
    app.engine.dispatch_all_due().await.unwrap();
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let emails: Vec<&String> = names.iter().filter(|n| n.ends_with(".eml")).collect();
    let sms: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("sms") && n.ends_with(".json"))
        .collect();
    assert_eq!(emails.len(), 2, "one confirmation email each: {names:?}");
    assert!(
        emails.iter().any(|n| n.contains(&app.practice))
            && emails.iter().any(|n| n.contains(&other.id)),
        "{names:?}"
    );
    assert_eq!(sms.len() % 2, 0, "SMS come in pairs too: {names:?}");
    std::fs::remove_dir_all(&dir).unwrap();
    app.stop().await;
}

/// The app's requests as another practice's key.
struct TestAppKey<'a> {
    app: &'a TestApp,
    key: String,
}

impl TestAppKey<'_> {
    async fn one_booking(&self) {
        for (path, body) in [
            ("/v1/practitioners/dr1", json!({"name": "Dr Martin"})),
            (
                "/v1/patients/p1",
                json!({"first_name": "Jeanne", "last_name": "Dupont",
                       "email": "jeanne@example.org", "mobile": "06 12 34 56 78"}),
            ),
        ] {
            let r = self.app.json_as(&self.key, "PUT", path, &body).await;
            assert!(r.status == 200 || r.status == 201, "{path}: {}", r.text());
        }
        let r = self
            .app
            .json_as(
                &self.key,
                "POST",
                "/v1/events",
                &json!({
                    "type": "appointment.booked", "id": "a1", "patient": "p1",
                    "practitioner": "dr1", "start": "2026-03-12T09:30:00+01:00", "source": "staff"
                }),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
}
