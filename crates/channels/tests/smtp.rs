//! The SMTP transport against a real SMTP server on loopback: the small RFC 5321 server of
//! `rappel-test-support` (EHLO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT) that can accept,
//! refuse a recipient (550), defer after the data (451), refuse credentials (535) or never
//! answer.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use rappel_channels::email::{Dkim, Sender, SmtpConfig, SmtpTransport, SmtpUrl, message_id};
use rappel_channels::{CalendarEvent, ChannelError, FileOutbox, OutboundMessage, Transport};
use rappel_domain::notification::Channel;
use rappel_test_support::smtp::{Mode, SmtpServer as Server, base64_decode};
use tokio::net::TcpListener;

fn transport(url: &str, timeout: Duration) -> SmtpTransport {
    SmtpTransport::new(SmtpConfig {
        url: SmtpUrl::parse(url).unwrap(),
        sender: Sender::parse("Rappel <no-reply@cabinet.example>").unwrap(),
        timeout,
        dkim: None,
        bounce: None,
    })
}

const TEXT: &str = "Bonjour Jean Dupont,\n\nVotre rendez-vous est confirmé : mercredi 11 mars 2026 à 09h30 avec Dr Émilie Martin, 3 rue des Lilas.\n\nCabinet Médical des Lilas\n";

fn confirmation() -> OutboundMessage {
    OutboundMessage {
        html: None,
        push: None,
        letter: None,
        logo: None,
        id: "a:appt-1/confirmation/email/patient".into(),
        practice_id: "lilas".into(),
        channel: Channel::Email,
        to: "jean.dupont@example.org".into(),
        subject: Some("Confirmation de votre rendez-vous — Cabinet Médical des Lilas".into()),
        text: TEXT.into(),
        sender_name: "Cabinet Médical des Lilas".into(),
        calendar: Some(Box::new(CalendarEvent {
            uid: "appt-1@lilas".into(),
            sequence: 1,
            stamp: "2026-03-01T10:00:00Z".parse::<Timestamp>().unwrap(),
            start: "2026-03-11T08:30:00Z".parse::<Timestamp>().unwrap(),
            end: "2026-03-11T09:00:00Z".parse::<Timestamp>().unwrap(),
            summary: "Rendez-vous — Dr Émilie Martin".into(),
            location: Some("3 rue des Lilas, 75020 Paris".into()),
        })),
    }
}

#[tokio::test]
async fn a_confirmation_arrives_with_text_html_and_a_calendar_attachment() {
    let server = Server::start(Mode::Accept).await;
    let message = confirmation();
    let receipt = transport(&server.url(), Duration::from_secs(5))
        .send(&message)
        .await
        .unwrap();
    assert_eq!(receipt.provider_id, Some(message_id(&message)));

    let deliveries = server.deliveries();
    assert_eq!(deliveries.len(), 1);
    let delivery = &deliveries[0];
    assert!(delivery.accepted);
    assert_eq!(delivery.mail_from, "<no-reply@cabinet.example>");
    assert_eq!(delivery.rcpt_to, ["<jean.dupont@example.org>"]);
    assert_is_the_confirmation(&delivery.data, &message);
}

/// Checks every part of the confirmation email, as SMTP received it or as the outbox wrote it.
fn assert_is_the_confirmation(data: &str, message: &OutboundMessage) {
    assert!(
        !data.replace("\r\n", "").contains('\n'),
        "bare LF in the message"
    );
    let email = parse_part(data);
    assert_eq!(
        email.header("From").map(decode_words).as_deref(),
        Some("Cabinet Médical des Lilas <no-reply@cabinet.example>")
    );
    assert_eq!(email.header("To"), Some("jean.dupont@example.org"));
    assert_eq!(
        email.header("Subject").map(decode_words).as_deref(),
        message.subject.as_deref()
    );
    let id = email.header("Message-ID").unwrap();
    assert_eq!(id, message_id(message));
    assert_eq!(id.len(), "<@rappel>".len() + 64, "{id}");
    assert_eq!(email.header("Auto-Submitted"), Some("auto-generated"));
    assert!(email.content_type().starts_with("multipart/mixed"));

    let [alternative, calendar] = &email.children[..] else {
        panic!("two parts expected: {:#?}", email.children.len());
    };
    assert!(
        alternative
            .content_type()
            .starts_with("multipart/alternative")
    );
    let [text, html] = &alternative.children[..] else {
        panic!("text and HTML expected");
    };
    assert!(text.content_type().starts_with("text/plain"));
    assert_eq!(
        String::from_utf8(text.body.clone())
            .unwrap()
            .replace("\r\n", "\n"),
        TEXT
    );
    assert!(html.content_type().starts_with("text/html"));
    let html = String::from_utf8(html.body.clone()).unwrap();
    assert!(html.contains("<html lang=\"fr\">"));
    assert!(html.contains(">Cabinet Médical des Lilas</div>"));
    assert!(html.contains("Votre rendez-vous est confirmé : mercredi 11 mars 2026 à 09h30"));

    assert!(
        calendar
            .content_type()
            .starts_with("text/calendar; charset=utf-8; method=PUBLISH"),
        "{}",
        calendar.content_type()
    );
    let disposition = calendar.header("Content-Disposition").unwrap();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(disposition.contains("rendezvous.ics"), "{disposition}");
    let ics = String::from_utf8(calendar.body.clone()).unwrap();
    assert!(ics.ends_with("\r\n"));
    assert!(
        !ics.replace("\r\n", "").contains('\n'),
        "bare LF in the calendar"
    );
    let physical: Vec<&str> = ics.trim_end_matches("\r\n").split("\r\n").collect();
    assert!(physical.iter().all(|l| l.len() <= 75), "{physical:?}");
    let unfolded = ics.replace("\r\n ", "");
    let lines: Vec<&str> = unfolded.trim_end_matches("\r\n").split("\r\n").collect();
    assert_eq!(lines.first(), Some(&"BEGIN:VCALENDAR"));
    assert_eq!(lines.last(), Some(&"END:VCALENDAR"));
    for expected in [
        "VERSION:2.0",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        "UID:appt-1@lilas",
        "DTSTAMP:20260301T100000Z",
        "DTSTART:20260311T083000Z",
        "DTEND:20260311T090000Z",
        "SUMMARY:Rendez-vous — Dr Émilie Martin",
        "LOCATION:3 rue des Lilas\\, 75020 Paris",
        "END:VEVENT",
    ] {
        assert!(
            lines.contains(&expected),
            "{expected} missing from {lines:#?}"
        );
    }
    // Every content line is NAME[;PARAMS]:VALUE.
    assert!(
        lines
            .iter()
            .all(|l| l.split_once(':').is_some_and(|(name, _)| !name.is_empty()))
    );
}

#[tokio::test]
async fn a_reminder_without_calendar_is_text_and_html_only() {
    let server = Server::start(Mode::Accept).await;
    let message = OutboundMessage {
        html: None,
        push: None,
        letter: None,
        logo: None,
        id: "a:appt-1/reminder/email/patient".into(),
        calendar: None,
        ..confirmation()
    };
    transport(&server.url(), Duration::from_secs(5))
        .send(&message)
        .await
        .unwrap();
    let email = parse_part(&server.deliveries()[0].data);
    assert!(email.content_type().starts_with("multipart/alternative"));
    assert_eq!(email.children.len(), 2);
    assert!(!server.deliveries()[0].data.contains("text/calendar"));
}

#[tokio::test]
async fn a_logo_travels_as_an_inline_image_of_the_html_not_as_an_attachment() {
    let server = Server::start(Mode::Accept).await;
    let png = b"\x89PNG\r\n\x1a\n-the-logo-bytes".to_vec();
    let message = OutboundMessage {
        logo: Some(Arc::new(rappel_channels::LogoImage {
            png: png.clone(),
            width: 150,
            height: 40,
        })),
        ..confirmation()
    };
    transport(&server.url(), Duration::from_secs(5))
        .send(&message)
        .await
        .unwrap();
    let email = parse_part(&server.deliveries()[0].data);
    let [alternative, calendar] = &email.children[..] else {
        panic!("the alternative and the calendar expected");
    };
    assert!(calendar.content_type().starts_with("text/calendar"));
    let [text, related] = &alternative.children[..] else {
        panic!("text and related HTML expected");
    };
    assert!(text.content_type().starts_with("text/plain"));
    assert!(
        related.content_type().starts_with("multipart/related"),
        "{}",
        related.content_type()
    );
    let [html, image] = &related.children[..] else {
        panic!("the HTML and its image expected");
    };
    let html = String::from_utf8(html.body.clone()).unwrap();
    assert!(
        html.contains(
            r#"<img src="cid:logo@rappel" width="150" height="40" alt="Cabinet Médical des Lilas""#
        ),
        "{html}"
    );
    assert!(
        html.find("cid:logo@rappel") < html.find(">Cabinet Médical des Lilas</div>"),
        "the logo heads the message"
    );
    assert!(image.content_type().starts_with("image/png"));
    assert_eq!(image.header("Content-ID"), Some("<logo@rappel>"));
    assert!(
        image
            .header("Content-Disposition")
            .is_some_and(|d| d.starts_with("inline")),
        "not listed among the attachments"
    );
    assert_eq!(image.body, png);

    // A practice's own HTML gets the same header first in its body.
    let custom = OutboundMessage {
        html: Some("<html><BODY class=\"x\"><p>Bonjour</p></BODY></html>".into()),
        ..message.clone()
    };
    transport(&server.url(), Duration::from_secs(5))
        .send(&custom)
        .await
        .unwrap();
    let email = parse_part(&server.deliveries()[1].data);
    let html = &email.children[0].children[1].children[0];
    let html = String::from_utf8(html.body.clone())
        .unwrap()
        .replace("\r\n", "\n");
    assert!(
        html.starts_with("<html><BODY class=\"x\">\n<div style=\"padding:12px 20px 8px;background:#ffffff;\"><img src=\"cid:logo@rappel\""),
        "{html}"
    );
    assert!(
        html.trim_end().ends_with("<p>Bonjour</p></BODY></html>"),
        "{html}"
    );

    // Without a logo, no image and no related part.
    transport(&server.url(), Duration::from_secs(5))
        .send(&confirmation())
        .await
        .unwrap();
    assert!(!server.deliveries()[2].data.contains("multipart/related"));
    assert!(!server.deliveries()[2].data.contains("cid:"));
}

#[tokio::test]
async fn a_refused_recipient_is_a_permanent_failure() {
    let server = Server::start(Mode::RejectRecipient).await;
    let error = transport(&server.url(), Duration::from_secs(5))
        .send(&confirmation())
        .await
        .unwrap_err();
    let ChannelError::Permanent(reason) = &error else {
        panic!("permanent expected, got {error:?}");
    };
    assert!(reason.contains("550"), "{reason}");
    assert!(!error.is_retryable());
    assert!(server.deliveries().is_empty());
}

#[tokio::test]
async fn a_deferred_message_is_transient_and_its_retry_carries_the_same_message_id() {
    let server = Server::start(Mode::DeferAfterData).await;
    let transport = transport(&server.url(), Duration::from_secs(5));
    let message = confirmation();
    let error = transport.send(&message).await.unwrap_err();
    assert!(
        matches!(&error, ChannelError::Transient { reason, retry_after: None } if reason.contains("451")),
        "{error:?}"
    );
    server.set_mode(Mode::Accept);
    transport.send(&message).await.unwrap();

    let deliveries = server.deliveries();
    assert_eq!(
        deliveries.iter().map(|d| d.accepted).collect::<Vec<_>>(),
        [false, true]
    );
    let ids: Vec<String> = deliveries
        .iter()
        .map(|d| {
            parse_part(&d.data)
                .header("Message-ID")
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[0], message_id(&message));
}

#[tokio::test]
async fn a_server_that_is_down_is_a_transient_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let error = transport(&format!("smtp://{addr}"), Duration::from_secs(5))
        .send(&confirmation())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ChannelError::Transient { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_silent_server_times_out_as_transient_and_the_next_hand_off_starts_afresh() {
    let server = Server::start(Mode::Stall).await;
    let transport = transport(&server.url(), Duration::from_millis(500));
    let started = std::time::Instant::now();
    let error = transport.send(&confirmation()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(&error, ChannelError::Transient { reason, .. } if reason.contains("within")),
        "{error:?}"
    );
    server.set_mode(Mode::Accept);
    transport.send(&confirmation()).await.unwrap();
    assert_eq!(server.deliveries().len(), 1);
}

#[tokio::test]
async fn a_failed_tls_handshake_is_transient() {
    // The server speaks plain SMTP; the client expects implicit TLS.
    let server = Server::start(Mode::Accept).await;
    let error = transport(&format!("smtps://{}", server.addr), Duration::from_secs(5))
        .send(&confirmation())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ChannelError::Transient { .. }),
        "{error:?}"
    );
    assert!(server.deliveries().is_empty());
}

#[tokio::test]
async fn required_starttls_that_the_server_does_not_offer_is_transient_and_sends_nothing() {
    let server = Server::start(Mode::Accept).await;
    let error = transport(
        &format!("smtp://{}?tls=required", server.addr),
        Duration::from_secs(5),
    )
    .send(&confirmation())
    .await
    .unwrap_err();
    assert!(
        matches!(&error, ChannelError::Transient { .. }),
        "{error:?}"
    );
    assert!(server.deliveries().is_empty());
}

#[tokio::test]
async fn credentials_in_the_url_are_percent_decoded() {
    let server = Server::start(Mode::RequireAuth("relay", "p@ss:w0rd/")).await;
    transport(
        &format!("smtp://relay:p%40ss%3Aw0rd%2F@{}", server.addr),
        Duration::from_secs(5),
    )
    .send(&confirmation())
    .await
    .unwrap();
    assert_eq!(
        *server.logins.lock().unwrap(),
        [("relay".to_string(), "p@ss:w0rd/".to_string())]
    );
    assert_eq!(server.deliveries().len(), 1);
}

#[tokio::test]
async fn refused_credentials_are_transient_because_they_are_not_the_message_s_fault() {
    let server = Server::start(Mode::RequireAuth("relay", "right")).await;
    let error = transport(
        &format!("smtp://relay:wrong@{}", server.addr),
        Duration::from_secs(5),
    )
    .send(&confirmation())
    .await
    .unwrap_err();
    assert!(
        matches!(&error, ChannelError::Transient { reason, .. } if reason.contains("535")),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_unparsable_recipient_is_permanent_and_never_reaches_the_server() {
    let server = Server::start(Mode::Accept).await;
    let message = OutboundMessage {
        html: None,
        push: None,
        letter: None,
        logo: None,
        to: "jean.dupont(at)example.org".into(),
        ..confirmation()
    };
    let error = transport(&server.url(), Duration::from_secs(5))
        .send(&message)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ChannelError::Permanent(reason) if reason.contains("recipient")),
        "{error:?}"
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn connections_are_reused_from_one_message_to_the_next() {
    let server = Server::start(Mode::Accept).await;
    let transport = transport(&server.url(), Duration::from_secs(5));
    for key in ["a:1/confirmation/email/p", "a:2/confirmation/email/p"] {
        let message = OutboundMessage {
            html: None,
            push: None,
            letter: None,
            logo: None,
            id: key.into(),
            ..confirmation()
        };
        transport.send(&message).await.unwrap();
        // The connection goes back to the pool in a task of its own. On a paused clock this
        // sleep ends only when no task has anything left to do, that one included, however busy
        // the machine; the clock runs again for the next hand-off, whose timeouts are real.
        tokio::time::pause();
        tokio::time::sleep(Duration::from_millis(100)).await;
        tokio::time::resume();
    }
    assert_eq!(server.deliveries().len(), 2);
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

/// The RFC 8032 test vector 1 secret key, as a base64 Ed25519 seed, and its public key.
const ED25519_SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
const ED25519_PUBLIC: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

/// A DNS TXT cache for the independent verifier: the test publishes the key here, so the
/// verifier never queries a real resolver.
#[derive(Default)]
struct TxtRecords(Mutex<std::collections::HashMap<String, mail_auth::Txt>>);

impl mail_auth::ResolverCache<String, mail_auth::Txt> for TxtRecords {
    fn get<Q>(&self, name: &Q) -> Option<mail_auth::Txt>
    where
        String: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().get(name).cloned()
    }

    fn remove<Q>(&self, name: &Q) -> Option<mail_auth::Txt>
    where
        String: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().remove(name)
    }

    fn insert(&self, name: String, value: mail_auth::Txt, _: std::time::Instant) {
        self.0.lock().unwrap().insert(name, value);
    }
}

/// Verifies the DKIM signatures of a message as received, with Stalwart's `mail-auth` (an
/// implementation independent of ours) and `record` published at `rappel._domainkey.DOMAIN`.
async fn independent_dkim_results(raw: &str, domain: &str, record: &str) -> Vec<String> {
    use mail_auth::common::parse::TxtRecordParser;
    use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
    let txt = TxtRecords::default();
    let key = mail_auth::common::verify::DomainKey::parse(record.as_bytes()).unwrap();
    mail_auth::ResolverCache::insert(
        &txt,
        format!("rappel._domainkey.{domain}."),
        mail_auth::Txt::from(key),
        std::time::Instant::now() + Duration::from_secs(3600),
    );
    // A resolver with no name server: a lookup the cache cannot answer fails here.
    let verifier = mail_auth::MessageAuthenticator::new(
        ResolverConfig::from_parts(None, vec![], Vec::<NameServerConfig>::new()),
        ResolverOpts::default(),
    )
    .unwrap();
    let message = mail_auth::AuthenticatedMessage::parse(raw.as_bytes()).expect("a message");
    let params = mail_auth::Parameters::new(&message).with_txt_cache(&txt);
    verifier
        .verify_dkim(params)
        .await
        .iter()
        .map(|output| format!("{:?}", output.result()))
        .collect()
}

/// Every kind of email Rappel sends: confirmation with `.ics`, reminder without, with the
/// practice's logo, with a practice's own HTML, and one whose subject lettre folds.
fn every_kind_of_email() -> Vec<(&'static str, OutboundMessage)> {
    let logo = Some(Arc::new(rappel_channels::LogoImage {
        png: b"\x89PNG\r\n\x1a\n-the-logo-bytes".repeat(40),
        width: 150,
        height: 40,
    }));
    vec![
        ("confirmation with .ics", confirmation()),
        (
            "reminder without .ics",
            OutboundMessage {
                id: "a:appt-1/reminder/email/patient".into(),
                calendar: None,
                ..confirmation()
            },
        ),
        (
            "confirmation with logo",
            OutboundMessage {
                logo: logo.clone(),
                ..confirmation()
            },
        ),
        (
            "reminder with logo",
            OutboundMessage {
                calendar: None,
                logo,
                ..confirmation()
            },
        ),
        (
            "the practice's HTML",
            OutboundMessage {
                html: Some("<html><body><p>Bonjour <b>Jean</b> \u{e9}t\u{e9}   \t</p>\n\n\n</body></html>".into()),
                calendar: None,
                ..confirmation()
            },
        ),
        (
            "a subject that starts with a long non-ASCII word",
            OutboundMessage {
                subject: Some("Rendez-vous\u{a0}confirmé\u{a0}chez\u{a0}le\u{a0}Dr\u{a0}Émilie\u{a0}Martin\u{a0}au\u{a0}cabinet".into()),
                ..confirmation()
            },
        ),
        (
            "a long ASCII subject and a plain name",
            OutboundMessage {
                subject: Some(format!("Re: {}", "rappel de votre rendez-vous ".repeat(6))),
                sender_name: "Cabinet Lilas".into(),
                text: "Bonjour,  \n\n  deux  espaces\t\n\n\n".into(),
                ..confirmation()
            },
        ),
    ]
}

#[tokio::test]
async fn every_email_passes_an_independent_dkim_verification_with_rsa_and_ed25519_keys() {
    let dir = temp_dir("dkim");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let ed25519 = dir.join("dkim.key");
    std::fs::write(&ed25519, format!("{ED25519_SEED}\n")).unwrap();
    let rsa_public = std::fs::read_to_string(fixtures.join("dkim-rsa.pub.b64")).unwrap();
    let keys = [
        (
            "ed25519",
            ed25519,
            format!("v=DKIM1; k=ed25519; p={ED25519_PUBLIC}"),
        ),
        (
            "rsa",
            fixtures.join("dkim-rsa.pem"),
            format!("v=DKIM1; k=rsa; p={}", rsa_public.trim()),
        ),
    ];
    for (algorithm, key, record) in keys {
        let server = Server::start(Mode::Accept).await;
        let transport = SmtpTransport::new(SmtpConfig {
            url: SmtpUrl::parse(&server.url()).unwrap(),
            sender: Sender::parse("Rappel <no-reply@cabinet.example>").unwrap(),
            timeout: Duration::from_secs(5),
            dkim: Some(Dkim::load(&key, "rappel", "cabinet.example").unwrap()),
            bounce: None,
        });
        let kinds = every_kind_of_email();
        for (_, message) in &kinds {
            transport.send(message).await.unwrap();
        }
        let deliveries = server.deliveries();
        assert_eq!(deliveries.len(), kinds.len());
        for ((kind, _), delivery) in kinds.iter().zip(&deliveries) {
            let data = &delivery.data;
            assert!(
                data.starts_with(&format!("DKIM-Signature: v=1; a={algorithm}-sha256;")),
                "{kind}: {data}"
            );
            let results = independent_dkim_results(data, "cabinet.example", &record).await;
            assert_eq!(results, ["Pass"], "{algorithm}, {kind}:\n{data}");

            // The same verifier fails the message once a signed header or the body changes,
            // so the pass above is not a verifier that passes everything.
            let forged = data.replacen("jean.dupont@example.org", "eve@example.org", 1);
            let results = independent_dkim_results(&forged, "cabinet.example", &record).await;
            assert_ne!(results, ["Pass"], "{algorithm}, {kind}: a forged To passed");
            let (head, body) = data.split_once("\r\n\r\n").unwrap();
            let altered = format!("{head}\r\n\r\n{}", body.replacen('a', "b", 1));
            let results = independent_dkim_results(&altered, "cabinet.example", &record).await;
            assert_ne!(
                results,
                ["Pass"],
                "{algorithm}, {kind}: an altered body passed"
            );
        }
        // Another key published for the selector: nothing verifies.
        let other = format!("v=DKIM1; k=ed25519; p={}", "A".repeat(43) + "=");
        let results =
            independent_dkim_results(&deliveries[0].data, "cabinet.example", &other).await;
        assert_ne!(results, ["Pass"]);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_pkcs8_key_is_refused_with_the_command_that_converts_it() {
    let dir = temp_dir("pkcs8");
    let key = dir.join("dkim.pem");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let error = Dkim::load(&key, "rappel", "cabinet.example").unwrap_err();
    assert!(error.contains("-traditional"), "{error}");
    assert!(Dkim::load(&key, "bad selector", "cabinet.example").is_err());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn the_outbox_writes_the_very_message_smtp_sends() {
    let dir = temp_dir("outbox");
    let outbox = FileOutbox::new(&dir)
        .unwrap()
        .with_sender(Sender::parse("Rappel <no-reply@cabinet.example>").unwrap());
    let message = confirmation();
    let receipt = outbox.send(&message).await.unwrap();
    let path = receipt.provider_id.unwrap();
    assert!(path.ends_with(".eml"), "{path}");
    let eml = std::fs::read_to_string(&path).unwrap();
    assert_is_the_confirmation(&eml, &message);
    std::fs::remove_dir_all(dir).unwrap();
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir =
        std::env::temp_dir().join(format!("rappel-smtp-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// A minimal MIME reader: enough to check what lettre wrote, independently of lettre.

#[derive(Debug)]
struct Part {
    headers: Vec<(String, String)>,
    /// Decoded (base64, quoted-printable) for leaf parts.
    body: Vec<u8>,
    children: Vec<Part>,
}

impl Part {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_type(&self) -> &str {
        self.header("Content-Type").unwrap_or("text/plain")
    }
}

fn parse_part(raw: &str) -> Part {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().expect("a continuation follows a header");
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.to_string(), value.trim().to_string()));
        }
    }
    let mut part = Part {
        headers,
        body: Vec::new(),
        children: Vec::new(),
    };
    let content_type = part.content_type().to_string();
    if content_type.starts_with("multipart/") {
        let boundary = content_type
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
            .expect("a boundary")
            .trim_matches('"')
            .to_string();
        for piece in body.split(&format!("--{boundary}")).skip(1) {
            if piece.starts_with("--") {
                break;
            }
            let piece = piece.strip_prefix("\r\n").unwrap_or(piece);
            let piece = piece.strip_suffix("\r\n").unwrap_or(piece);
            part.children.push(parse_part(piece));
        }
    } else {
        part.body = match part
            .header("Content-Transfer-Encoding")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("base64") => base64_decode(body),
            Some("quoted-printable") => qp_decode(body),
            _ => body.as_bytes().to_vec(),
        };
    }
    part
}

fn qp_decode(text: &str) -> Vec<u8> {
    let bytes = text.replace("=\r\n", "").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`); the blanks between two
/// adjacent encoded words are dropped, as the RFC says.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, word) = rest.split_at(start);
        let Some(end) = word[2..].find("?=").map(|e| e + 4) else {
            break;
        };
        let inner = &word[2..end - 2];
        let mut fields = inner.splitn(3, '?');
        let (_charset, encoding, text) = (
            fields.next().unwrap(),
            fields.next().unwrap().to_ascii_lowercase(),
            fields.next().unwrap(),
        );
        if !(after_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        let bytes = match encoding.as_str() {
            "b" => base64_decode(text),
            _ => qp_decode(&text.replace('_', " ")),
        };
        out.push_str(&String::from_utf8(bytes).unwrap());
        rest = &word[end..];
        after_word = true;
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn with_a_bounce_domain_each_email_has_its_own_unguessable_return_path() {
    use rappel_channels::email::BounceAddress;
    let server = Server::start(Mode::Accept).await;
    let verp = BounceAddress::new("bounces.cabinet.example", &[42; 32]).unwrap();
    let transport = SmtpTransport::new(SmtpConfig {
        url: SmtpUrl::parse(&server.url()).unwrap(),
        sender: Sender::parse("Rappel <no-reply@cabinet.example>").unwrap(),
        timeout: Duration::from_secs(5),
        dkim: None,
        bounce: Some(verp.clone()),
    });
    let first = confirmation();
    let second = OutboundMessage {
        id: "a:appt-2/confirmation/email/patient".into(),
        ..confirmation()
    };
    transport.send(&first).await.unwrap();
    transport.send(&second).await.unwrap();
    let deliveries = server.deliveries();
    let tokens: Vec<String> = deliveries
        .iter()
        .map(|d| {
            let from = d.mail_from.trim_matches(['<', '>']);
            let tokens = verp.tokens_in(from);
            assert_eq!(tokens.len(), 1, "{from}");
            assert!(from.ends_with("@bounces.cabinet.example"), "{from}");
            tokens[0].clone()
        })
        .collect();
    assert_ne!(tokens[0], tokens[1]);
    assert!(verp.verify(&tokens[0], "lilas", &first.id));
    assert!(verp.verify(&tokens[1], "lilas", &second.id));
    assert!(!verp.verify(&tokens[0], "lilas", &second.id));
    // The From header the patient sees is unchanged.
    assert!(deliveries[0].data.contains("<no-reply@cabinet.example>"));
    assert!(!deliveries[0].data.contains("bounce+"));
}
