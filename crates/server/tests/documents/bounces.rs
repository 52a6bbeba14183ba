//! Bounces and delivery reports: a DSN from the relay, Brevo and Mailjet events.

use super::*;

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
pub(super) struct MessageIdRecorder(rappel_channels::Recorder);

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

pub(super) const BOUNCE_WEBHOOK_TOKEN: &str = "relay-token-0123456789abcdef0123456789";

/// A DSN as Postfix writes it (RFC 3464): the human part, the delivery status, the original
/// headers.
pub(super) fn postfix_dsn(
    to: &str,
    message_id: &str,
    action: &str,
    status: &str,
    diagnostic: &str,
) -> String {
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

pub(super) const BREVO_TOKEN: &str = "brevo-token-0123456789abcdef0123";
pub(super) const MAILJET_TOKEN: &str = "mailjet-password-0123456789abcdef";

pub(super) async fn spawn_app_with_email_services() -> (TestApp, MessageIdRecorder) {
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

pub(super) fn email_row(details: &Value) -> Value {
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
pub(super) async fn message_page(app: &TestApp, key: &str) -> String {
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
