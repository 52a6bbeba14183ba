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

#[path = "../common/mod.rs"]
mod common;
use common::*;

mod bounces;
mod links;
mod postal;

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
