//! Issue 15's "done when", with real peers: Debian's Postfix on loopback is the relay, with a
//! throwaway configuration in a temporary folder (its own queue, an SMTP listener on a free
//! loopback port, local delivery for `patients.test` where no such user exists, and a pipe(8)
//! transport handing everything for `bounces.test` to `rappel bounce`). A document is sent to a
//! mailbox that does not exist; Postfix's own DSN comes back to the message's VERP address, is
//! piped to `rappel bounce`, and the running `rappel serve` posts the letter within a minute,
//! without any event from the practice software.
//!
//! Needs root (Postfix's master), Postfix (`scripts/test.sh` installs it) and PostgreSQL
//! (`RAPPEL_TEST_POSTGRES_URL`); without Postfix or root it says so and passes without checking.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const POSTFIX: &str = "/usr/sbin/postfix";
const SECRET: &str = "test-bounce-secret-0123456789abcdef0123";

/// Stops this test's Postfix and server, whatever happens.
struct Running {
    config_dir: PathBuf,
    server: Option<Child>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        let _ = Command::new(POSTFIX)
            .arg("-c")
            .arg(&self.config_dir)
            .arg("stop")
            .output();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Postfix's main.cf and master.cf for this test only.
fn write_postfix_config(dir: &Path, smtp_port: u16, rappel_toml: &Path) {
    let etc = dir.join("etc");
    for sub in ["etc", "queue", "data"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    // Postfix's daemons run as the `postfix` user: its data folder and log file are its own.
    let chown = |path: &Path| {
        let status = Command::new("chown")
            .arg("postfix")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "chown postfix {}", path.display());
    };
    chown(&dir.join("data"));
    let log = dir.join("maillog");
    std::fs::write(&log, "").unwrap();
    chown(&log);
    let d = dir.display();
    std::fs::write(
        etc.join("main.cf"),
        format!(
            "compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.rappel-test.example
mydomain = rappel-test.example
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# Both domains are local; an empty local_recipient_maps accepts every address at SMTP time,
# so an unknown user bounces after the hand-off, as a DSN, as it would at a real provider.
mydestination = patients.test, bounces.test
local_recipient_maps =
alias_maps =
alias_database =
recipient_delimiter = +
transport_maps = inline:{{ bounces.test=rappelbounce: }}
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
smtputf8_enable = no
biff = no
"
        ),
    )
    .unwrap();
    let rappel = env!("CARGO_BIN_EXE_rappel");
    let toml = rappel_toml.display();
    std::fs::write(
        etc.join("master.cf"),
        format!(
            "127.0.0.1:{smtp_port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
rappelbounce unix - n n - - pipe flags=Rq user=nobody argv={rappel} --config {toml} bounce --recipient ${{original_recipient}}
"
        ),
    )
    .unwrap();
}

/// One request as `key`, with a body of `content_type`; answers the status and the body.
async fn http(
    port: u16,
    method: &str,
    path: &str,
    key: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let headers = [
        ("Authorization".to_string(), format!("Bearer {key}")),
        ("Content-Type".to_string(), content_type.to_string()),
    ];
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let reply = rappel_test_support::http::http(addr, method, path, &headers, body).await;
    (reply.status, reply.body)
}

fn sample_pdf() -> Vec<u8> {
    rappel_channels::postal::letter_pdf(
        &rappel_channels::Letter {
            document_id: "source".into(),
            title: "Compte rendu".into(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_sent_to_a_mailbox_that_does_not_exist_is_posted_within_a_minute() {
    if !Path::new(POSTFIX).exists() || !is_root() {
        eprintln!(
            "SKIPPED: Postfix ({POSTFIX}) and root are needed; scripts/test.sh installs Postfix"
        );
        return;
    }
    let base = std::env::var("RAPPEL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (database_url, database) =
        rappel_store::admin::create_postgres_database(&base, "rappel_test_postfix")
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL at {base} is needed (RAPPEL_TEST_POSTGRES_URL): {e}")
            });

    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("rappel-postfix-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // `rappel bounce` runs as `nobody` (pipe(8) refuses root): it reads the configuration
    // here and writes nothing but to the database (its outbox folder is created, unused).
    let open = |path: &Path, mode: &str| {
        assert!(
            Command::new("chmod")
                .arg(mode)
                .arg(path)
                .status()
                .unwrap()
                .success()
        );
    };
    open(&dir, "755");
    let outbox = dir.join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    open(&outbox, "1777");
    let toml = dir.join("rappel.toml");
    std::fs::write(
        &toml,
        format!(
            "database_url = \"{database_url}\"\noutbox_dir = \"{}\"\nbounce_domain = \"bounces.test\"\nbounce_secret = \"{SECRET}\"\n",
            outbox.display()
        ),
    )
    .unwrap();
    open(&toml, "644");

    let smtp_port = free_port();
    write_postfix_config(&dir, smtp_port, &toml);
    let config_dir = dir.join("etc");
    let mut running = Running {
        config_dir: config_dir.clone(),
        server: None,
    };
    let started = Command::new(POSTFIX)
        .arg("-c")
        .arg(&config_dir)
        .arg("start")
        .output()
        .unwrap();
    assert!(
        started.status.success(),
        "postfix start: {}{}\n{}",
        String::from_utf8_lossy(&started.stdout),
        String::from_utf8_lossy(&started.stderr),
        std::fs::read_to_string(dir.join("maillog")).unwrap_or_default()
    );

    let rappel = env!("CARGO_BIN_EXE_rappel");
    let env = [
        ("RAPPEL_DATABASE_URL", database_url.clone()),
        ("RAPPEL_OUTBOX_DIR", outbox.display().to_string()),
        ("RAPPEL_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}")),
        (
            "RAPPEL_SMTP_FROM",
            "Laboratoire <no-reply@labo.test>".to_string(),
        ),
        ("RAPPEL_BOUNCE_DOMAIN", "bounces.test".into()),
        ("RAPPEL_BOUNCE_SECRET", SECRET.into()),
        ("RAPPEL_POSTAL_PROVIDER", "print".into()),
        ("RAPPEL_PRINT_DIR", dir.join("print").display().to_string()),
        (
            "RAPPEL_DOCUMENTS_DIR",
            dir.join("documents").display().to_string(),
        ),
        (
            "RAPPEL_DOCUMENTS_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
        ),
    ];
    let created = Command::new(rappel)
        .args([
            "practice",
            "create",
            "Laboratoire des Lilas",
            "--preset",
            "lifen",
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    let key = created["api_key"].as_str().unwrap().to_string();

    let port = free_port();
    running.server = Some(
        Command::new(rappel)
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("RAPPEL_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "rappel serve did not listen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let json_type = "application/json";
    let (status, body) = http(
        port,
        "PATCH",
        "/v1/settings",
        &key,
        json_type,
        json!({"postal_on_failure": true}).to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let patient = json!({
        "first_name": "Jeanne",
        "last_name": "Dupont",
        "email": "jeanne.dupont@patients.test",
        "birth_date": "1980-03-02",
        "address": {"lines": ["12 rue des Lilas"], "postal_code": "75011", "city": "Paris"}
    });
    let (status, body) = http(
        port,
        "PUT",
        "/v1/patients/p1",
        &key,
        json_type,
        patient.to_string().as_bytes(),
    )
    .await;
    assert!(
        status == 200 || status == 201,
        "{}",
        String::from_utf8_lossy(&body)
    );

    let boundary = "rappel-postfix-test-boundary";
    let mut upload = Vec::new();
    for (name, value) in [("id", "d1"), ("patient", "p1"), ("title", "Compte rendu")] {
        upload.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    upload.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cr.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").as_bytes(),
    );
    upload.extend_from_slice(&sample_pdf());
    upload.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let sent_at = Instant::now();
    let (status, body) = http(
        port,
        "POST",
        "/v1/documents",
        &key,
        &format!("multipart/form-data; boundary={boundary}"),
        &upload,
    )
    .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));

    // Nothing else is sent to Rappel: Postfix delivers, fails, returns its DSN to the VERP
    // address, pipes it to `rappel bounce`; the server's worker posts the letter.
    let details = loop {
        let (status, body) = http(port, "GET", "/v1/documents/d1", &key, json_type, b"").await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let details: Value = serde_json::from_slice(&body).unwrap();
        let letter_sent = details["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["channel"] == "postal" && d["status"] == "sent");
        if letter_sent {
            break details;
        }
        assert!(
            sent_at.elapsed() < Duration::from_secs(60),
            "no letter within a minute: {details}\nPostfix log:\n{}",
            std::fs::read_to_string(dir.join("maillog")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let elapsed = sent_at.elapsed();
    let email = details["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "email")
        .cloned()
        .unwrap();
    assert_eq!(email["status"], "failed", "{details}");
    assert!(
        email["last_error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("bounced: 5.1.1 X-Postfix; unknown user"),
        "{email}: from the DSN, not from a refusal during the SMTP dialogue"
    );
    assert_eq!(details["email"], "failed", "{details}");
    let log = std::fs::read_to_string(dir.join("maillog")).unwrap();
    assert!(log.contains("dsn=5.1.1, status=bounced"), "{log}");
    assert!(
        log.contains("relay=rappelbounce") && log.contains("status=sent"),
        "{log}"
    );
    eprintln!(
        "letter posted {:.1} s after the upload",
        elapsed.as_secs_f64()
    );

    drop(running);
    rappel_store::admin::drop_postgres_database(&base, &database)
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
