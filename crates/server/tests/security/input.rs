//! Rows 11, 14, 15 and 17: decompression bombs, one id rule, NUL characters, outbox file names.

use super::*;

/// A one-page PDF whose content stream is `zeros` bytes of zeros, Flate-compressed: a few
/// hundred kilobytes that inflate to `zeros` bytes.
pub(super) fn bomb_pdf(zeros: usize) -> Vec<u8> {
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

pub(super) fn multipart(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
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

pub(super) async fn nul_checks(app: &TestApp) {
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
pub(super) struct TestAppKey<'a> {
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
