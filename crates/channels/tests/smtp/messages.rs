//! What each email holds: text, HTML, the calendar, the logo, the return path.

use super::*;

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
pub(super) fn assert_is_the_confirmation(data: &str, message: &OutboundMessage) {
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
