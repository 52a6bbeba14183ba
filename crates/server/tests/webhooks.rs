//! Black-box tests of `/v1/webhooks/sms/{provider}`: the real router on a loopback port, a fresh
//! in-memory database per test, and delivery reports posted the way each provider posts them,
//! signed (or forged) with the secrets the server was configured with.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rappel_channels::Recorder;
use rappel_channels::sms::twilio;
use rappel_channels::sms::webhook::SigningKey;
use rappel_domain::notification::{Channel, Kind, Recipient};
use rappel_engine::{Engine, EngineConfig, SimClock, Transports};
use rappel_server::{ServerConfig, WebhookSecrets};
use rappel_store::{NotificationRow, Status, Store};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const START: &str = "2026-03-02T08:00:00+01:00";
const TWILIO_TOKEN: &str = "twilio-auth-token";
const OVH_TOKEN: &str = "ovh-callback-token";
const GATEWAY_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const KEY: &str = "a:apt1/reminder_sms/sms/patient:p1";

// ---- the app (after tests/api.rs) -----------------------------------------------------------------

struct TestApp {
    addr: SocketAddr,
    engine: Engine,
    practice: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

fn secrets() -> WebhookSecrets {
    WebhookSecrets {
        twilio_auth_token: Some(TWILIO_TOKEN.into()),
        ovh_callback_token: Some(OVH_TOKEN.into()),
        sms_webhook_key: Some(SigningKey::parse(GATEWAY_SECRET).unwrap()),
    }
}

async fn spawn_app() -> TestApp {
    spawn_app_with(secrets()).await
}

async fn spawn_app_with(webhooks: WebhookSecrets) -> TestApp {
    let store = Store::connect("sqlite::memory:")
        .await
        .expect("in-memory store");
    store.migrate().await.expect("migrations");
    let clock = SimClock::new(START.parse().unwrap());
    let engine = Engine::new(
        store,
        Arc::new(clock),
        Transports::all(Arc::new(Recorder::default())),
        EngineConfig::default(),
    );
    let practice = engine
        .create_practice("Cabinet A", "doctolib", "Europe/Paris", Map::new())
        .await
        .expect("practice")
        .id;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, stop) = oneshot::channel::<()>();
    let config = ServerConfig {
        webhooks,
        ..ServerConfig::default()
    };
    let server = tokio::spawn(rappel_server::serve_with(
        engine.clone(),
        config,
        listener,
        async move {
            let _ = stop.await;
        },
    ));
    TestApp {
        addr,
        engine,
        practice,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

impl TestApp {
    /// An SMS handed to the provider, known to it as `provider_id`.
    async fn sent_sms(&self, key: &str, provider_id: &str) {
        let at: Timestamp = START.parse().unwrap();
        let row = NotificationRow {
            practice_id: self.practice.clone(),
            key: key.into(),
            patient_id: "p1".into(),
            rule: "reminder_sms".into(),
            kind: Kind::Reminder,
            channel: Channel::Sms,
            recipient: Recipient::Patient("p1".into()),
            appointments: vec!["apt1".into()],
            document: None,
            task: None,
            auto_resend: false,
            due_at: at,
            window_end: None,
            status: Status::Sent,
            reason: None,
            decided_at: Some(at),
            attempts: 1,
            lease_owner: None,
            lease_until: None,
            last_error: None,
            rendered: Some(json!({"text": "Rappel"})),
            provider_id: Some(provider_id.into()),
            created_at: at,
            updated_at: at,
        };
        let mut tx = self.engine.store().begin().await.unwrap();
        tx.insert_notification(&row).await.unwrap();
        tx.commit().await.unwrap();
    }

    async fn row(&self, key: &str) -> NotificationRow {
        let mut tx = self.engine.store().begin().await.unwrap();
        let row = tx.notification(&self.practice, key).await.unwrap().unwrap();
        tx.commit().await.unwrap();
        row
    }

    /// A Twilio status callback to `path_and_query`, signed with `token` as Twilio would.
    async fn twilio_callback(
        &self,
        path_and_query: &str,
        params: &[(&str, &str)],
        token: &str,
    ) -> Reply {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let url = format!("{}{path_and_query}", self.engine.config().public_url);
        let signature = twilio::signature(token, &url, &params);
        let body = form(&params);
        self.request(
            "POST",
            path_and_query,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Signature", &signature),
            ],
            body.as_bytes(),
        )
        .await
    }

    fn twilio_path(&self) -> String {
        let query = form(&[
            ("practice".to_string(), self.practice.clone()),
            ("key".to_string(), KEY.to_string()),
        ]);
        format!("/v1/webhooks/sms/twilio?{query}")
    }

    /// A gateway report signed per Standard Webhooks at `at`.
    async fn gateway_report(&self, body: &Value, at: Timestamp, secret: &str) -> Reply {
        let body = body.to_string();
        let signature =
            SigningKey::parse(secret)
                .unwrap()
                .sign("evt_1", at.as_second(), body.as_bytes());
        self.request(
            "POST",
            "/v1/webhooks/sms/webhook",
            &[
                ("Content-Type", "application/json"),
                ("webhook-id", "evt_1"),
                ("webhook-timestamp", &at.as_second().to_string()),
                ("webhook-signature", &signature),
            ],
            body.as_bytes(),
        )
        .await
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        http(self.addr, method, path, &headers, body).await
    }

    async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let ended = tokio::time::timeout(Duration::from_secs(5), server).await;
            ended
                .expect("the server stops after shutdown")
                .unwrap()
                .unwrap();
        }
    }
}

/// `application/x-www-form-urlencoded`, as Twilio posts it.
fn form(pairs: &[(String, String)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                other => format!("%{other:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

// ---- a minimal HTTP/1.1 client (copied from tests/api.rs) ----------------------------------------

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Asserts an RFC 9457 problem with this status, and returns its body.
    fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let body = self.json();
        assert_eq!(body["status"], status);
        for member in ["type", "title", "detail"] {
            assert!(body[member].is_string(), "problem without {member}: {body}");
        }
        body
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Reply {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    // Written concurrently with the read: a server may answer (413) before reading everything.
    let write = tokio::spawn(async move {
        let _ = writer.write_all(&bytes).await;
        writer
    });
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                // A reset after the answer (the server closed with our body unread) ends it.
                Err(_) => break,
            }
        }
    })
    .await;
    read.expect("the server answers within 20 s");
    drop(write.await);
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else if let Some((_, len)) = headers.iter().find(|(n, _)| n == "content-length") {
        rest[..len.parse::<usize>().unwrap().min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = std::str::from_utf8(&data[..eol]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        let start = eol + 2;
        body.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    body
}

// ---- Twilio ------------------------------------------------------------------------------------------

const SID: &str = "SM0123456789abcdef0123456789abcdef";

fn twilio_status(status: &str) -> Vec<(&str, &str)> {
    vec![
        ("MessageSid", SID),
        ("SmsSid", SID),
        ("MessageStatus", status),
        ("SmsStatus", status),
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("To", "+33612345678"),
        ("ApiVersion", "2010-04-01"),
    ]
}

#[tokio::test]
async fn a_valid_twilio_delivered_report_marks_the_sms_delivered() {
    let app = spawn_app().await;
    app.sent_sms(KEY, SID).await;
    let r = app
        .twilio_callback(
            &app.twilio_path(),
            &twilio_status("delivered"),
            TWILIO_TOKEN,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let row = app.row(KEY).await;
    assert_eq!(row.status, Status::Delivered);
    assert_eq!(row.last_error, None);

    // Twilio may call again: nothing changes.
    let r = app
        .twilio_callback(
            &app.twilio_path(),
            &twilio_status("delivered"),
            TWILIO_TOKEN,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(app.row(KEY).await, row);
    app.stop().await;
}

#[tokio::test]
async fn an_undelivered_twilio_report_marks_the_sms_failed_with_the_error_code() {
    let app = spawn_app().await;
    app.sent_sms(KEY, SID).await;
    let mut params = twilio_status("undelivered");
    params.push(("ErrorCode", "30003"));
    let r = app
        .twilio_callback(&app.twilio_path(), &params, TWILIO_TOKEN)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let row = app.row(KEY).await;
    assert_eq!(row.status, Status::Failed);
    assert_eq!(
        row.last_error.as_deref(),
        Some("twilio error 30003 (undelivered)")
    );
    app.stop().await;
}

#[tokio::test]
async fn an_intermediate_twilio_status_is_acknowledged_and_changes_nothing() {
    let app = spawn_app().await;
    app.sent_sms(KEY, SID).await;
    let r = app
        .twilio_callback(&app.twilio_path(), &twilio_status("sent"), TWILIO_TOKEN)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(app.row(KEY).await.status, Status::Sent);
    app.stop().await;
}

#[tokio::test]
async fn a_forged_or_unsigned_twilio_report_is_401_and_changes_nothing() {
    let app = spawn_app().await;
    app.sent_sms(KEY, SID).await;
    let before = app.row(KEY).await;

    let forged = app
        .twilio_callback(&app.twilio_path(), &twilio_status("delivered"), "guessed")
        .await;
    let problem = forged.problem(401);
    assert!(
        !problem.to_string().contains("+336"),
        "nothing of the report is echoed: {problem}"
    );

    let body = "MessageSid=SM0123456789abcdef0123456789abcdef&MessageStatus=delivered";
    let unsigned = app
        .request(
            "POST",
            &app.twilio_path(),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
        .await;
    unsigned.problem(401);

    // Signed for another URL (the signature covers the notification named in the query).
    let other = format!(
        "/v1/webhooks/sms/twilio?practice={}&key=other",
        app.practice
    );
    let params = twilio_status("undelivered");
    let url = format!("{}{other}", app.engine.config().public_url);
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let signature = twilio::signature(TWILIO_TOKEN, &url, &owned);
    let body = form(&owned);
    let replayed = app
        .request(
            "POST",
            &app.twilio_path(),
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Signature", &signature),
            ],
            body.as_bytes(),
        )
        .await;
    replayed.problem(401);

    assert_eq!(app.row(KEY).await, before);
    app.stop().await;
}

#[tokio::test]
async fn a_report_for_an_unknown_message_is_404() {
    let app = spawn_app().await;
    app.sent_sms(KEY, SID).await;
    let mut params = twilio_status("delivered");
    params[0] = ("MessageSid", "SMffffffffffffffffffffffffffffffff");
    params[1] = ("SmsSid", "SMffffffffffffffffffffffffffffffff");
    // Neither the sid nor the notification named in the callback URL is known.
    let path = format!("/v1/webhooks/sms/twilio?practice={}&key=nope", app.practice);
    app.twilio_callback(&path, &params, TWILIO_TOKEN)
        .await
        .problem(404);
    assert_eq!(app.row(KEY).await.status, Status::Sent);
    app.stop().await;
}

#[tokio::test]
async fn a_twilio_report_whose_sid_was_never_recorded_finds_its_notification_by_key() {
    let app = spawn_app().await;
    // The hand-off timed out after Twilio accepted it: the row waits for a retry, with no sid.
    app.sent_sms(KEY, "SM-of-another-attempt").await;
    let mut tx = app.engine.store().begin().await.unwrap();
    let mut row = tx.notification(&app.practice, KEY).await.unwrap().unwrap();
    row.status = Status::Pending;
    row.provider_id = None;
    tx.update_notification(&row).await.unwrap();
    tx.commit().await.unwrap();

    let r = app
        .twilio_callback(
            &app.twilio_path(),
            &twilio_status("delivered"),
            TWILIO_TOKEN,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        app.row(KEY).await.status,
        Status::Delivered,
        "the retry would only send it twice"
    );
    app.stop().await;
}

// ---- OVH ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn ovh_reports_are_applied_with_the_callback_token_and_refused_without_it() {
    let app = spawn_app().await;
    app.sent_sms(KEY, "26934871").await;
    let query = "id=26934871&ptt=23&date=2026-03-02+08%3A00%3A05&description=2\
                 &descriptionDlr=Invalid+MSISDN";

    let forged = app
        .request(
            "GET",
            &format!("/v1/webhooks/sms/ovh?token=guess&{query}"),
            &[],
            b"",
        )
        .await;
    forged.problem(401);
    app.request("GET", &format!("/v1/webhooks/sms/ovh?{query}"), &[], b"")
        .await
        .problem(401);
    assert_eq!(app.row(KEY).await.status, Status::Sent);

    let r = app
        .request(
            "GET",
            &format!("/v1/webhooks/sms/ovh?token={OVH_TOKEN}&{query}"),
            &[],
            b"",
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let row = app.row(KEY).await;
    assert_eq!(row.status, Status::Failed);
    assert_eq!(
        row.last_error.as_deref(),
        Some("ovh ptt 23: Invalid MSISDN")
    );
    app.stop().await;
}

// ---- a practice's gateway -------------------------------------------------------------------------------

#[tokio::test]
async fn a_gateway_report_signed_per_standard_webhooks_is_applied_and_a_stale_one_refused() {
    let app = spawn_app().await;
    app.sent_sms(KEY, "msg_0123abcd").await;
    let report = json!({"id": "msg_0123abcd", "status": "delivered"});

    // Signed with the right key, but ten minutes ago by the server's clock: a replay.
    let stale = app.engine.now() - jiff::SignedDuration::from_mins(10);
    app.gateway_report(&report, stale, GATEWAY_SECRET)
        .await
        .problem(401);
    let other_key = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0";
    app.gateway_report(&report, app.engine.now(), other_key)
        .await
        .problem(401);
    assert_eq!(app.row(KEY).await.status, Status::Sent);

    let r = app
        .gateway_report(&report, app.engine.now(), GATEWAY_SECRET)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(app.row(KEY).await.status, Status::Delivered);
    app.stop().await;
}

// ---- the route itself ------------------------------------------------------------------------------------

#[tokio::test]
async fn a_provider_without_a_configured_secret_has_its_reports_refused() {
    let app = spawn_app_with(WebhookSecrets::default()).await;
    app.sent_sms(KEY, SID).await;
    app.twilio_callback(
        &app.twilio_path(),
        &twilio_status("delivered"),
        TWILIO_TOKEN,
    )
    .await
    .problem(401);
    assert_eq!(app.row(KEY).await.status, Status::Sent);
    app.stop().await;
}

#[tokio::test]
async fn unknown_providers_are_404_and_get_is_for_ovh_only() {
    let app = spawn_app().await;
    app.request("POST", "/v1/webhooks/sms/sinch", &[], b"")
        .await
        .problem(404);
    app.request("GET", &app.twilio_path(), &[], b"")
        .await
        .problem(405);
    app.stop().await;
}
