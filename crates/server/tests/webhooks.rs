//! Black-box tests of `/v1/webhooks/sms/{provider}`: the real router on a loopback port, a fresh
//! in-memory database per test, and delivery reports posted the way each provider posts them,
//! signed (or forged) with the secrets the server was configured with.

use jiff::Timestamp;
use rappel_channels::sms::twilio;
use rappel_channels::sms::webhook::SigningKey;
use rappel_domain::notification::{Channel, Kind, Recipient};
use rappel_server::{ServerConfig, WebhookSecrets};
use rappel_store::{NotificationRow, Status};
use serde_json::{Value, json};

mod common;
use common::*;

const TWILIO_TOKEN: &str = "twilio-auth-token";
const OVH_TOKEN: &str = "ovh-callback-token";
const GATEWAY_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const KEY: &str = "a:apt1/reminder_sms/sms/patient:p1";

// ---- the app (common/mod.rs) ---------------------------------------------------------------------

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

async fn spawn_app() -> TestApp {
    spawn_app_with(secrets()).await
}

async fn spawn_app_with(webhooks: WebhookSecrets) -> TestApp {
    common::spawn_app_with(ServerConfig {
        webhooks,
        ..ServerConfig::default()
    })
    .await
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
