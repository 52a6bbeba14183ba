//! Documents end to end over real HTTP (issue 5): a PDF uploaded as multipart, stored encrypted,
//! its email carrying a link, the patient's page asking for the birth date, the PDF served, the
//! consultation recorded (and the letter planned for an unread document superseded), wrong
//! answers locking the link, expired and foreign tokens, erasure removing the files.
//!
//! The HTTP client and the app harness are those of `common/mod.rs`.

use std::path::PathBuf;
use std::sync::Arc;

use jiff::SignedDuration;
use rappel_channels::Letter;
use rappel_domain::notification::Channel;
use rappel_engine::{DocumentsConfig, EngineConfig};
use rappel_server::ServerConfig;
use serde_json::{Map, Value, json};

mod common;
use common::*;

/// A fixed documents key (32 bytes, base64), as `RAPPEL_DOCUMENTS_KEY` would give it.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn temp_dir() -> PathBuf {
    let mut bytes = [0u8; 8];
    getrandom_bytes(&mut bytes);
    std::env::temp_dir().join(format!(
        "rappel-documents-test-{}-{}",
        std::process::id(),
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

fn getrandom_bytes(buf: &mut [u8]) {
    // The test needs only distinct folder names: the time and a counter are enough.
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(48);
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (n >> (8 * (i % 8))) as u8;
    }
}

fn lifen_settings() -> Map<String, Value> {
    let mut settings = Map::new();
    settings.insert("postal_on_failure".into(), json!(true));
    settings.insert("postal_unread_days".into(), json!(6));
    settings
}

async fn spawn_app() -> TestApp {
    spawn_app_with(ServerConfig::default()).await
}

async fn spawn_app_with(config: ServerConfig) -> TestApp {
    spawn_app_with_postal(config, None).await
}

/// `postal`: the letters' transport (the recorder when `None`).
async fn spawn_app_with_postal(
    config: ServerConfig,
    postal: Option<Arc<dyn rappel_channels::Transport>>,
) -> TestApp {
    spawn_app_with_transports(config, postal, None).await
}

/// `email`: the emails' transport (the recorder when `None`).
async fn spawn_app_with_transports(
    config: ServerConfig,
    postal: Option<Arc<dyn rappel_channels::Transport>>,
    email: Option<Arc<dyn rappel_channels::Transport>>,
) -> TestApp {
    let documents_dir = temp_dir();
    let app = spawn_app_from(Setup {
        config,
        engine: EngineConfig {
            public_url: "https://rappel.example".into(),
            documents: DocumentsConfig::in_dir(&documents_dir).with_key(KEY),
            ..EngineConfig::default()
        },
        postal,
        email,
        practice_name: "Cabinet Lumière",
        preset: "lifen",
        settings: lifen_settings(),
        documents_dir: Some(documents_dir),
        ..Setup::default()
    })
    .await;
    let key = app.key.clone();
    app.put_patient(&key, "p1", "1980-03-02").await;
    app
}

impl TestApp {
    fn documents_dir(&self) -> &std::path::Path {
        self.documents_dir.as_deref().expect("a documents folder")
    }

    fn advance(&self, by: SignedDuration) {
        self.clock.set(self.engine.now() + by);
    }

    async fn put_patient(&self, key: &str, id: &str, birth_date: &str) {
        let body = serde_json::to_vec(&json!({
            "first_name": "Jeanne",
            "last_name": "Dupont",
            "email": "jeanne@example.org",
            "birth_date": birth_date,
            "address": {"lines": ["12 rue des Lilas"], "postal_code": "75011", "city": "Paris"}
        }))
        .unwrap();
        let r = self
            .send(
                "PUT",
                &format!("/v1/patients/{id}"),
                Some(key),
                &[],
                Some(&body),
            )
            .await;
        assert!(r.status == 201 || r.status == 200, "{}", r.text());
    }

    async fn upload_as(&self, key: &str, id: &str, patient: &str, pdf: &[u8]) -> Reply {
        let (content_type, body) = multipart(&[
            ("id", None, id.as_bytes()),
            ("patient", None, patient.as_bytes()),
            ("title", None, "Compte rendu de consultation".as_bytes()),
            ("file", Some("compte-rendu.pdf"), pdf),
        ]);
        self.send(
            "POST",
            "/v1/documents",
            Some(key),
            &[("Content-Type", &content_type)],
            Some(&body),
        )
        .await
    }

    async fn upload(&self, id: &str, pdf: &[u8]) -> Reply {
        self.upload_as(&self.key.clone(), id, "p1", pdf).await
    }

    /// Sends what is due and returns the link of the newest document email.
    async fn link_of_latest_email(&self) -> String {
        self.engine.dispatch_all_due().await.unwrap();
        let sent = self.recorder.sent();
        let email = sent
            .iter()
            .rev()
            .find(|r| r.message.channel == Channel::Email)
            .expect("a document email");
        let text = &email.message.text;
        let start = text
            .find("https://rappel.example/d/")
            .unwrap_or_else(|| panic!("no link in {text}"));
        let link: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "-_:/.".contains(*c))
            .collect();
        link.trim_start_matches("https://rappel.example")
            .to_string()
    }

    async fn answer(&self, path: &str, birth_date: &str) -> Reply {
        let body = format!(
            "birth_date=&birth_date_text={}",
            birth_date.replace('/', "%2F")
        );
        self.send(
            "POST",
            path,
            None,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(body.as_bytes()),
        )
        .await
    }
}

/// A small, real PDF: a one-page letter with no document of its own.
fn sample_pdf(title: &str) -> Vec<u8> {
    rappel_channels::postal::letter_pdf(
        &Letter {
            document_id: "source".into(),
            title: title.into(),
            address_block: vec!["Mme Jeanne Dupont".into(), "75011 PARIS".into()],
            sender_block: vec!["Laboratoire".into()],
            date: jiff::civil::date(2026, 3, 1),
            logo: None,
            document_pdf: Vec::new(),
        },
        jiff::civil::date(2026, 3, 1),
    )
    .unwrap()
}

fn multipart(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----rappel-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file_name, value) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file_name {
            Some(file_name) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\n\
                     Content-Type: application/pdf\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn files_in(dir: &std::path::Path) -> Vec<Vec<u8>> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| std::fs::read(e.path()).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

// ---- tests ----------------------------------------------------------------------------------------

#[tokio::test]
async fn an_uploaded_document_is_stored_encrypted_mailed_as_a_link_and_consulted_with_the_birth_date()
 {
    let app = spawn_app().await;
    let pdf = sample_pdf("Compte rendu");
    let r = app.upload("d1", &pdf).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["document"]["email"], "pending");
    assert_eq!(r.json()["document"]["file"]["size"], pdf.len());

    // One file, and not the PDF in clear.
    let stored = files_in(app.documents_dir());
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].starts_with(b"%PDF-"));
    assert_eq!(
        stored[0].len(),
        pdf.len() + 16,
        "ciphertext and its GCM tag"
    );

    // The same upload again changes nothing; another file under the same id is refused.
    let again = app.upload("d1", &pdf).await;
    assert_eq!(again.status, 200, "{}", again.text());
    let other = app.upload("d1", &sample_pdf("Autre")).await;
    assert_eq!(other.status, 422, "{}", other.text());

    // The email carries a link, never the document.
    let link = app.link_of_latest_email().await;
    let sent = app.recorder.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].message.letter.is_none());
    let token = link.trim_start_matches("/d/");
    assert_eq!(token.len(), 43, "32 random bytes in base64url: {token}");
    // The copy kept for audit does not hold the token.
    let mut tx = app.engine.store().begin().await.unwrap();
    let practice = tx.practices().await.unwrap()[0].id.clone();
    let rows = tx.document_notifications(&practice, "d1").await.unwrap();
    tx.commit().await.unwrap();
    let rendered = rows
        .iter()
        .find(|r| r.channel == Channel::Email)
        .and_then(|r| r.rendered.clone())
        .unwrap();
    assert!(!rendered.to_string().contains(token), "{rendered}");

    // The page asks for the birth date, without JavaScript, and cannot be framed.
    let page = app.send("GET", &link, None, &[], None).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("type=\"date\""));
    assert!(page.text().contains("JJ/MM/AAAA"));
    // Nothing about the document before the birth date is checked: only who sent it.
    assert!(
        page.text()
            .contains("Cabinet Lumière vous a transmis un document.")
    );
    assert!(!page.text().contains("Compte rendu"), "{}", page.text());
    assert!(!page.text().contains("<script"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );

    // Wrong: the form again, in French.
    let wrong = app.answer(&link, "03/02/1980").await;
    assert_eq!(wrong.status, 422);
    assert!(
        wrong.text().contains("ne correspond pas"),
        "{}",
        wrong.text()
    );
    assert!(wrong.text().contains("4 essais"));
    assert!(!wrong.text().contains("Compte rendu"), "{}", wrong.text());

    // Right: the PDF itself, and the consultation is recorded.
    let right = app.answer(&link, "02/03/1980").await;
    assert_eq!(right.status, 200, "{}", right.text());
    assert_eq!(right.header("content-type"), Some("application/pdf"));
    assert!(
        right
            .header("content-disposition")
            .unwrap()
            .starts_with("inline")
    );
    assert_eq!(right.header("cache-control"), Some("no-store"));
    assert_eq!(right.body, pdf);

    let details = app.get("/v1/documents/d1").await.json();
    assert!(details["consulted_at"].is_string(), "{details}");
    // The letter planned for an unread document is no longer wanted.
    let postal: Vec<&Value> = details["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == "postal")
        .collect();
    assert_eq!(postal.len(), 1, "{details}");
    assert_eq!(postal[0]["status"], "suppressed");
    assert_eq!(postal[0]["reason"], "superseded");

    // Six days later nothing goes by post.
    app.advance(SignedDuration::from_hours(24 * 7));
    app.engine.dispatch_all_due().await.unwrap();
    assert!(
        app.recorder
            .sent()
            .iter()
            .all(|r| r.message.channel != Channel::Postal)
    );
    app.stop().await;
}

#[tokio::test]
async fn five_wrong_birth_dates_lock_the_link_for_an_hour() {
    let app = spawn_app().await;
    assert_eq!(app.upload("d1", &sample_pdf("A")).await.status, 201);
    let link = app.link_of_latest_email().await;
    for left in (1..5).rev() {
        let r = app.answer(&link, "01/01/1990").await;
        assert_eq!(r.status, 422);
        assert!(r.text().contains(&format!("{left} essai")), "{}", r.text());
    }
    let locked = app.answer(&link, "01/01/1990").await;
    assert_eq!(locked.status, 429);
    assert!(locked.text().contains("bloqué"), "{}", locked.text());
    // Even the right date waits for the end of the lock.
    assert_eq!(app.answer(&link, "02/03/1980").await.status, 429);
    assert_eq!(app.send("GET", &link, None, &[], None).await.status, 429);
    app.advance(SignedDuration::from_mins(61));
    let r = app.answer(&link, "02/03/1980").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.starts_with(b"%PDF-"));
    app.stop().await;
}

#[tokio::test]
async fn expired_unknown_and_malformed_tokens_reveal_nothing() {
    let app = spawn_app().await;
    assert_eq!(app.upload("d1", &sample_pdf("A")).await.status, 201);
    let link = app.link_of_latest_email().await;
    let unknown = app
        .send(
            "GET",
            "/d/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            None,
            &[],
            None,
        )
        .await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.text().contains("Lien indisponible"));
    assert!(!unknown.text().contains("Compte rendu"));
    assert_eq!(
        app.send("GET", "/d/nope", None, &[], None).await.status,
        404
    );
    assert_eq!(app.answer("/d/nope", "02/03/1980").await.status, 404);

    app.advance(SignedDuration::from_hours(24 * 31));
    let expired = app.send("GET", &link, None, &[], None).await;
    assert_eq!(expired.status, 410);
    assert!(!expired.text().contains("Compte rendu"));
    assert_eq!(app.answer(&link, "02/03/1980").await.status, 410);
    app.stop().await;
}

#[tokio::test]
async fn another_practice_sees_neither_the_document_nor_opens_it_with_its_own_patient() {
    let app = spawn_app().await;
    let other = app
        .engine
        .create_practice("Cabinet B", "lifen", "Europe/Paris", lifen_settings())
        .await
        .unwrap()
        .api_key;
    app.put_patient(&other, "p1", "1975-01-01").await;
    assert_eq!(app.upload("d1", &sample_pdf("A")).await.status, 201);
    let link = app.link_of_latest_email().await;
    // Practice B's key does not see practice A's document.
    let r = app
        .send("GET", "/v1/documents/d1", Some(&other), &[], None)
        .await;
    assert_eq!(r.status, 404);
    // B has a patient p1 too: their birth date does not open A's document.
    assert_eq!(app.answer(&link, "01/01/1975").await.status, 422);
    app.stop().await;
}

#[tokio::test]
async fn uploads_are_checked_for_size_type_and_fields() {
    let app = spawn_app_with(ServerConfig {
        document_limit: 2000,
        ..ServerConfig::default()
    })
    .await;
    let mut big = sample_pdf("A");
    big.splice(10..10, std::iter::repeat_n(b' ', 3000));
    assert_eq!(app.upload("d1", &big).await.status, 413);
    let r = app.upload("d1", b"<html>not a pdf</html>").await;
    assert_eq!(r.status, 415, "{}", r.text());
    let truncated = &sample_pdf("A")[..200];
    assert_eq!(app.upload("d1", truncated).await.status, 415);
    let json = app
        .send(
            "POST",
            "/v1/documents",
            Some(&app.key.clone()),
            &[],
            Some(b"{}"),
        )
        .await;
    assert_eq!(json.status, 415);
    let unknown_patient = app
        .upload_as(&app.key.clone(), "d1", "nobody", &sample_pdf("A"))
        .await;
    assert_eq!(unknown_patient.status, 422, "{}", unknown_patient.text());
    assert!(
        files_in(app.documents_dir()).is_empty(),
        "a refused upload leaves no file"
    );
    app.stop().await;
}

#[tokio::test]
async fn erasing_the_patient_deletes_their_document_files() {
    let app = spawn_app().await;
    assert_eq!(app.upload("d1", &sample_pdf("A")).await.status, 201);
    let link = app.link_of_latest_email().await;
    assert_eq!(files_in(app.documents_dir()).len(), 1);
    let r = app
        .send(
            "DELETE",
            "/v1/patients/p1",
            Some(&app.key.clone()),
            &[],
            None,
        )
        .await;
    assert!(r.status < 300, "{}", r.text());
    assert!(files_in(app.documents_dir()).is_empty());
    assert_eq!(app.send("GET", &link, None, &[], None).await.status, 404);
    app.stop().await;
}

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

#[tokio::test]
async fn a_bounced_document_is_printed_as_a_letter_with_the_decrypted_document_appended() {
    let print_dir = temp_dir();
    let app = spawn_app_with_postal(
        ServerConfig::default(),
        Some(Arc::new(rappel_channels::postal::PrintBatch::new(
            &print_dir,
        ))),
    )
    .await;
    let key = app.key.clone();
    let pdf =
        rappel_channels::postal::merge_pdfs(&[sample_pdf("Page 1"), sample_pdf("Page 2")]).unwrap();
    assert_eq!(app.upload("d1", &pdf).await.status, 201);
    app.engine.dispatch_all_due().await.unwrap();
    let bounce =
        serde_json::to_vec(&json!({"type": "delivery.bounced", "document": "d1"})).unwrap();
    let r = app
        .send("POST", "/v1/events", Some(&key), &[], Some(&bounce))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    app.engine.dispatch_all_due().await.unwrap();

    let details = app.get("/v1/documents/d1").await.json();
    let letter = details["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "postal")
        .cloned()
        .unwrap();
    assert_eq!(letter["status"], "sent", "{details}");
    assert_eq!(letter["auto_resend"], true);
    // The notification centre says what happened — not the reason of the unread rule's letter,
    // which the failure's letter replaced.
    let centre = app.get("/v1/inbox?box=notifications").await.json();
    let entry = &centre["items"][0];
    assert_eq!(
        entry["reason"],
        "l'email n'a pas pu être remis : le document a été renvoyé par voie postale",
        "{centre}"
    );
    // Three pages on two sheets: one « Lettre verte » stamp up to 20 g, by the default tariff.
    assert_eq!(letter["cost_cents"], 152, "{letter}");
    let email = details["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "email")
        .cloned()
        .unwrap();
    assert!(email["cost_cents"].is_null(), "{email}");
    let spend = app.get("/v1/postal/costs?month=2026-03").await.json();
    assert_eq!(spend["letters"], 1, "{spend}");
    assert_eq!(spend["total_cents"], 152, "{spend}");
    assert_eq!(spend["items"][0]["document"], "d1", "{spend}");
    let spend = app.get("/v1/postal/costs").await.json();
    assert_eq!(
        spend["month"], "2026-03",
        "the engine clock's month: {spend}"
    );
    assert_eq!(
        app.get("/v1/postal/costs?month=2026-02").await.json()["letters"],
        0
    );
    app.get("/v1/postal/costs?month=mars").await.problem(422);

    // The print batch of the engine clock's day in the practice's time zone.
    let batch = app
        .engine
        .print_batch(&print_dir, &app.practice, None)
        .await
        .unwrap();
    assert!(
        batch.pdf.to_string_lossy().contains("2026-03-02"),
        "{batch:?}"
    );
    assert_eq!(batch.letters, 1);
    assert_eq!(
        batch.pages, 3,
        "the cover page and the document's two pages"
    );
    let csv = std::fs::read_to_string(&batch.csv).unwrap();
    assert!(
        csv.contains("Jeanne Dupont;75011 PARIS;Compte rendu de consultation;3"),
        "{csv}"
    );
    app.stop().await;
    std::fs::remove_dir_all(&print_dir).unwrap();
}

/// Records emails like the SMTP transport does: the receipt is the email's Message-ID.
#[derive(Clone, Default)]
struct MessageIdRecorder(rappel_channels::Recorder);

impl rappel_channels::Transport for MessageIdRecorder {
    fn send<'a>(
        &'a self,
        message: &'a rappel_channels::OutboundMessage,
    ) -> rappel_channels::SendFuture<'a> {
        Box::pin(async move {
            self.0.send(message).await?;
            Ok(rappel_channels::Receipt::with_id(
                rappel_channels::email::message_id(message),
            ))
        })
    }
}

const BOUNCE_WEBHOOK_TOKEN: &str = "relay-token-0123456789abcdef0123456789";

/// A DSN as Postfix writes it (RFC 3464): the human part, the delivery status, the original
/// headers.
fn postfix_dsn(to: &str, message_id: &str, action: &str, status: &str, diagnostic: &str) -> String {
    format!(
        "Return-Path: <>\r\nDelivered-To: {to}\r\nFrom: MAILER-DAEMON@mx.example (Mail Delivery System)\r\n\
Subject: Undelivered Mail Returned to Sender\r\nTo: {to}\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"B1\"\r\nMessage-Id: <20260302.1@mx.example>\r\n\r\n\
--B1\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
I'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.\r\n\r\n\
--B1\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n\
Reporting-MTA: dns; mx.example\r\nX-Postfix-Queue-ID: 4F2A1\r\nArrival-Date: Mon,  2 Mar 2026 09:00:00 +0100 (CET)\r\n\r\n\
Final-Recipient: rfc822; jeanne@example.org\r\nOriginal-Recipient: rfc822;jeanne@example.org\r\nAction: {action}\r\n\
Status: {status}\r\nRemote-MTA: dns; mx.example.org\r\nDiagnostic-Code: smtp; {diagnostic}\r\n\r\n\
--B1\r\nContent-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n\
From: Cabinet <no-reply@cabinet.example>\r\nTo: jeanne@example.org\r\nMessage-ID: {message_id}\r\nSubject: Document\r\n\r\n--B1--\r\n"
    )
}

#[tokio::test]
async fn a_dsn_posted_by_the_relay_fails_the_email_and_the_document_goes_by_post() {
    let verp =
        rappel_channels::bounce::BounceAddress::new("bounces.cabinet.example", &[9; 32]).unwrap();
    let config = ServerConfig {
        webhooks: rappel_server::WebhookSecrets {
            bounce: Some(verp.clone()),
            bounce_webhook_token: Some(BOUNCE_WEBHOOK_TOKEN.into()),
            ..Default::default()
        },
        ..ServerConfig::default()
    };
    let email = MessageIdRecorder::default();
    let app = spawn_app_with_transports(config, None, Some(Arc::new(email.clone()))).await;
    assert_eq!(app.upload("d1", &sample_pdf("CR")).await.status, 201);
    app.engine.dispatch_all_due().await.unwrap();
    let sent = email.0.sent();
    assert_eq!(sent.len(), 1);
    let message = &sent[0].message;
    let message_id = rappel_channels::email::message_id(message);
    let to = verp.address(&message.practice_id, &message.id);
    let post = |token: Option<&'static str>, body: String| {
        let app = &app;
        async move {
            let auth = token.map(|t| format!("Bearer {t}"));
            let headers: Vec<(&str, &str)> = auth
                .as_deref()
                .map(|a| vec![("authorization", a)])
                .unwrap_or_default();
            app.send(
                "POST",
                "/v1/webhooks/email/dsn",
                None,
                &headers,
                Some(body.as_bytes()),
            )
            .await
        }
    };
    let email_of = |details: &Value| {
        details["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["channel"] == "email")
            .cloned()
            .unwrap()
    };
    let failed = postfix_dsn(
        &to,
        &message_id,
        "failed",
        "5.1.1",
        "550 5.1.1 <jeanne@example.org>: Recipient address rejected: User unknown",
    );

    // No token, a wrong token: refused, nothing changes.
    assert_eq!(post(None, failed.clone()).await.status, 401);
    let wrong = post(
        Some("relay-token-0123456789abcdef0123456788"),
        failed.clone(),
    )
    .await;
    assert_eq!(wrong.status, 401);
    wrong.problem(401);
    // The right relay, but a bounce to a return path that is not this message's (a forged
    // DSN quoting the Message-ID): ignored.
    let forged = failed.replace(&to, &verp.address(&message.practice_id, "d:other/x/email"));
    assert_eq!(post(Some(BOUNCE_WEBHOOK_TOKEN), forged).await.status, 204);
    // A delay is noted, the email stays sent. Reports come after the hand-off.
    app.advance(SignedDuration::from_mins(10));
    let delayed = postfix_dsn(
        &to,
        &message_id,
        "delayed",
        "4.4.1",
        "451 4.4.1 try again later",
    );
    assert_eq!(post(Some(BOUNCE_WEBHOOK_TOKEN), delayed).await.status, 204);
    let details = app.get("/v1/documents/d1").await.json();
    assert_eq!(email_of(&details)["status"], "sent", "{details}");
    assert!(details.to_string().contains("4.4.1"), "{details}");
    let history = message_page(&app, "d:d1/document_email/email").await;
    assert!(
        history.contains(
            "02/03/2026 à 08:10 — remise retardée par le serveur de messagerie du destinataire (avis de non-remise) : <code>4.4.1 smtp; 451 4.4.1 try again later</code>"
        ),
        "{history}"
    );
    // Only the unread rule's letter, days away: no letter goes for a delay.
    assert!(
        !details["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["channel"] == "postal" && d["status"] != "planned"),
        "{details}"
    );

    // The real bounce, a while later: failed with its code, and the document's postal rule
    // sends a letter without any event from the practice software.
    app.advance(SignedDuration::from_mins(5));
    assert_eq!(
        post(Some(BOUNCE_WEBHOOK_TOKEN), failed.clone())
            .await
            .status,
        204
    );
    app.engine.dispatch_all_due().await.unwrap();
    let details = app.get("/v1/documents/d1").await.json();
    let email_row = email_of(&details);
    assert_eq!(email_row["status"], "failed", "{details}");
    assert!(email_row.to_string().contains("5.1.1"), "{email_row}");
    // The patient's address quoted by the server stays out of the report's words.
    assert!(!email_row.to_string().contains("jeanne@"), "{email_row}");
    let letter = details["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "postal" && d["status"] == "sent")
        .cloned()
        .unwrap_or_else(|| panic!("no letter sent: {details}"));
    assert_eq!(letter["status"], "sent", "{details}");
    // The message's history in the web interface shows every report, each with its time, who
    // sent it and its code: the delay, then the failure.
    let history = message_page(&app, "d:d1/document_email/email").await;
    assert!(history.contains("remise retardée"), "{history}");
    assert!(
        history.contains(
            "02/03/2026 à 08:15 — échec signalé par le serveur de messagerie du destinataire (avis de non-remise) : <code>bounced: 5.1.1 smtp; 550 5.1.1"
        ),
        "{history}"
    );
    assert!(
        history.find("remise retardée") < history.find("échec signalé"),
        "oldest first: {history}"
    );
    // The same bounce again changes nothing (the MTA may hand it twice), not even the history.
    assert_eq!(post(Some(BOUNCE_WEBHOOK_TOKEN), failed).await.status, 204);
    app.engine.dispatch_all_due().await.unwrap();
    let history = message_page(&app, "d:d1/document_email/email").await;
    assert_eq!(history.matches("échec signalé").count(), 1, "{history}");
    let again = app.get("/v1/documents/d1").await.json();
    assert_eq!(
        again["deliveries"].as_array().unwrap().len(),
        details["deliveries"].as_array().unwrap().len(),
        "{again}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_success_dsn_marks_the_document_email_delivered() {
    let verp =
        rappel_channels::bounce::BounceAddress::new("bounces.cabinet.example", &[9; 32]).unwrap();
    let config = ServerConfig {
        webhooks: rappel_server::WebhookSecrets {
            bounce: Some(verp.clone()),
            bounce_webhook_token: Some(BOUNCE_WEBHOOK_TOKEN.into()),
            ..Default::default()
        },
        ..ServerConfig::default()
    };
    let email = MessageIdRecorder::default();
    let app = spawn_app_with_transports(config, None, Some(Arc::new(email.clone()))).await;
    assert_eq!(app.upload("d1", &sample_pdf("CR")).await.status, 201);
    app.engine.dispatch_all_due().await.unwrap();
    let message = email.0.sent()[0].message.clone();
    let dsn = postfix_dsn(
        &verp.address(&message.practice_id, &message.id),
        &rappel_channels::email::message_id(&message),
        "delivered",
        "2.0.0",
        "250 2.0.0 Ok: queued as 9F1",
    );
    let r = app
        .send(
            "POST",
            "/v1/webhooks/email/dsn",
            None,
            &[("authorization", &format!("Bearer {BOUNCE_WEBHOOK_TOKEN}"))],
            Some(dsn.as_bytes()),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let details = app.get("/v1/documents/d1").await.json();
    let email_row = details["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "email")
        .cloned()
        .unwrap();
    assert_eq!(email_row["status"], "delivered", "{details}");
    assert_eq!(details["email"], "delivered", "{details}");
    app.stop().await;
}

const BREVO_TOKEN: &str = "brevo-token-0123456789abcdef0123";
const MAILJET_TOKEN: &str = "mailjet-password-0123456789abcdef";

async fn spawn_app_with_email_services() -> (TestApp, MessageIdRecorder) {
    let config = ServerConfig {
        webhooks: rappel_server::WebhookSecrets {
            brevo_webhook_token: Some(BREVO_TOKEN.into()),
            mailjet_webhook_token: Some(MAILJET_TOKEN.into()),
            ..Default::default()
        },
        ..ServerConfig::default()
    };
    let email = MessageIdRecorder::default();
    let app = spawn_app_with_transports(config, None, Some(Arc::new(email.clone()))).await;
    (app, email)
}

fn email_row(details: &Value) -> Value {
    details["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "email")
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn a_brevo_hard_bounce_fails_the_email_and_the_document_goes_by_post() {
    let (app, email) = spawn_app_with_email_services().await;
    assert_eq!(app.upload("d1", &sample_pdf("CR")).await.status, 201);
    app.engine.dispatch_all_due().await.unwrap();
    let message = email.0.sent()[0].message.clone();
    let message_id = rappel_channels::email::message_id(&message);
    let custom = rappel_channels::email_events::custom_id(&message_id);
    // Brevo's documented hard_bounce payload, with the headers Rappel set echoed back.
    let event = json!({
        "event": "hard_bounce", "email": "jeanne@example.org", "id": 26224,
        "date": "2026-03-02 09:10:00", "ts": 1772439000, "message-id": message_id,
        "ts_event": 1772439000, "subject": "Document", "X-Mailin-custom": custom,
        "sending_ip": "185.41.28.109", "reason": "550 5.1.1 mailbox does not exist",
        "ts_epoch": 1772439000000_i64
    })
    .to_string();
    let post = |auth: String| {
        let app = &app;
        let event = event.clone();
        async move {
            app.send(
                "POST",
                "/v1/webhooks/email/brevo",
                None,
                &[("authorization", auth.as_str())],
                Some(event.as_bytes()),
            )
            .await
        }
    };
    post("Bearer brevo-token-0123456789abcdef0124".into())
        .await
        .problem(401);
    assert_eq!(
        email_row(&app.get("/v1/documents/d1").await.json())["status"],
        "sent"
    );
    let r = post(format!("Bearer {BREVO_TOKEN}")).await;
    assert_eq!(r.status, 204, "{}", r.text());
    app.engine.dispatch_all_due().await.unwrap();
    let details = app.get("/v1/documents/d1").await.json();
    let row = email_row(&details);
    assert_eq!(row["status"], "failed", "{details}");
    assert!(
        row["last_error"]
            .as_str()
            .unwrap()
            .contains("hard_bounce: 550 5.1.1"),
        "{row}"
    );
    assert!(
        details["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["channel"] == "postal" && d["status"] == "sent"),
        "{details}"
    );
    app.stop().await;
}

#[tokio::test]
async fn mailjet_events_mark_delivered_and_a_spam_complaint_turns_the_patient_s_emails_off() {
    use base64::Engine as _;
    let (app, email) = spawn_app_with_email_services().await;
    assert_eq!(app.upload("d1", &sample_pdf("CR")).await.status, 201);
    app.engine.dispatch_all_due().await.unwrap();
    let message = email.0.sent()[0].message.clone();
    let custom =
        rappel_channels::email_events::custom_id(&rappel_channels::email::message_id(&message));
    // Mailjet calls the URL registered with basic credentials (https://user:password@host/…).
    let basic = |password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("rappel:{password}"))
        )
    };
    let post = |auth: String, body: String| {
        let app = &app;
        async move {
            app.send(
                "POST",
                "/v1/webhooks/email/mailjet",
                None,
                &[("authorization", auth.as_str())],
                Some(body.as_bytes()),
            )
            .await
        }
    };
    let sent = json!([{
        "event": "sent", "time": 1772439000, "MessageID": 19421777835146490_i64,
        "Message_GUID": "1ab23cd4-e567-8901-2345-6789f0gh1i2j", "email": "jeanne@example.org",
        "mj_campaign_id": 7257, "mj_contact_id": 4, "customcampaign": "", "CustomID": custom,
        "Payload": "", "mj_message_id": "19421777835146490",
        "smtp_reply": "250 2.0.0 OK 1772439000 c1si1234"
    }])
    .to_string();
    post(basic("wrong-password-0123456789abcdef"), sent.clone())
        .await
        .problem(401);
    let r = post(basic(MAILJET_TOKEN), sent).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let details = app.get("/v1/documents/d1").await.json();
    assert_eq!(email_row(&details)["status"], "delivered", "{details}");
    assert_eq!(details["email"], "delivered", "{details}");

    let spam = json!([{
        "event": "spam", "time": 1772440000, "MessageID": 19421777835146490_i64,
        "email": "jeanne@example.org", "mj_campaign_id": 7257, "mj_contact_id": 4,
        "customcampaign": "", "CustomID": custom, "Payload": "", "source": "JMRPP"
    }])
    .to_string();
    let r = post(basic(MAILJET_TOKEN), spam).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let patient = app.get("/v1/patients/p1").await.json();
    assert_eq!(patient["email_notifications"], false, "{patient}");
    let row = email_row(&app.get("/v1/documents/d1").await.json());
    assert!(
        row["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("spam complaint reported by mailjet"),
        "{row}"
    );
    // A second document is not emailed any more.
    assert_eq!(app.upload("d2", &sample_pdf("CR 2")).await.status, 201);
    app.engine.dispatch_all_due().await.unwrap();
    assert_eq!(email.0.sent().len(), 1);
    app.stop().await;
}

/// The message's page of the web interface (`/envoyes/KEY`), as a signed-in admin sees it.
async fn message_page(app: &TestApp, key: &str) -> String {
    const PASSWORD: &str = "un-mot-de-passe-solide";
    let _ = app
        .engine
        .create_user(
            &app.practice,
            "admin@labo.test",
            "Alice",
            rappel_engine::Role::Admin,
            PASSWORD,
        )
        .await;
    let body = format!("email=admin%40labo.test&password={PASSWORD}");
    let reply = app
        .send(
            "POST",
            "/connexion",
            None,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(body.as_bytes()),
        )
        .await;
    assert_eq!(reply.status, 303, "{}", reply.text());
    let cookie = reply
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let path = format!("/envoyes/{}", key.replace(':', "%3A").replace('/', "%2F"));
    let page = app
        .send("GET", &path, None, &[("Cookie", cookie.as_str())], None)
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    page.text()
}
