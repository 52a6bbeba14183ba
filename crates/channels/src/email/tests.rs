use super::*;
use jiff::Timestamp;

fn event() -> CalendarEvent {
    CalendarEvent {
        uid: "appt-1@practice-1".into(),
        sequence: 2,
        stamp: "2026-03-01T10:00:00Z".parse::<Timestamp>().unwrap(),
        start: "2026-03-11T08:30:00Z".parse::<Timestamp>().unwrap(),
        end: "2026-03-11T09:00:00Z".parse::<Timestamp>().unwrap(),
        summary: "Rendez-vous — Dr Émilie Martin".into(),
        location: Some("12, rue de la Paix; 2e étage\nBâtiment B \\ porte 3".into()),
    }
}

#[test]
fn ics_escapes_text_values_and_keeps_times_in_utc() {
    let ics = ics(&event());
    assert!(ics.ends_with("END:VCALENDAR\r\n"));
    assert!(
        !ics.replace("\r\n", "").contains('\n'),
        "bare LF in {ics:?}"
    );
    let unfolded = ics.replace("\r\n ", "");
    let lines: Vec<&str> = unfolded.split("\r\n").collect();
    assert_eq!(lines[0], "BEGIN:VCALENDAR");
    assert!(lines.contains(&"METHOD:PUBLISH"));
    assert!(lines.contains(&"UID:appt-1@practice-1"));
    assert!(lines.contains(&"SEQUENCE:2"));
    assert!(lines.contains(&"DTSTAMP:20260301T100000Z"));
    assert!(lines.contains(&"DTSTART:20260311T083000Z"));
    assert!(lines.contains(&"DTEND:20260311T090000Z"));
    assert!(lines.contains(&"SUMMARY:Rendez-vous — Dr Émilie Martin"));
    assert!(
        lines.contains(&"LOCATION:12\\, rue de la Paix\\; 2e étage\\nBâtiment B \\\\ porte 3"),
        "{lines:?}"
    );
}

#[test]
fn ics_lines_are_folded_at_75_octets_without_splitting_a_character() {
    let long = CalendarEvent {
        summary: format!("Rendez-vous — {}", "Éloïse ".repeat(30)),
        ..event()
    };
    let ics = ics(&long);
    for line in ics.split("\r\n") {
        assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
    }
    let summary: Vec<&str> = ics
        .split("\r\n")
        .skip_while(|l| !l.starts_with("SUMMARY:"))
        .take_while(|l| l.starts_with("SUMMARY:") || l.starts_with(' '))
        .collect();
    assert!(summary.len() > 3, "{summary:?}");
    assert!(summary[1..].iter().all(|l| l.starts_with(' ')));
    // Unfolding restores the value exactly (each piece is valid UTF-8: it is a &str).
    let unfolded: String = summary
        .iter()
        .enumerate()
        .map(|(i, l)| if i == 0 { *l } else { &l[1..] })
        .collect();
    assert_eq!(unfolded, format!("SUMMARY:{}", ics_text(&long.summary)));
}

#[test]
fn a_short_line_is_not_folded_and_a_75_octet_line_stays_whole() {
    assert_eq!(ics_fold("VERSION:2.0"), "VERSION:2.0\r\n");
    let exact = "X".repeat(75);
    assert_eq!(ics_fold(&exact), format!("{exact}\r\n"));
    let over = "X".repeat(76);
    assert_eq!(ics_fold(&over), format!("{}\r\n X\r\n", "X".repeat(75)));
}

#[test]
fn html_escapes_everything_and_links_only_web_addresses() {
    let html = html_body(
        "Bonjour <b>Jean</b> & \"Marie\",\n\nVotre document : https://rappel.example/d/ab?x=1&y=2. Merci\njavascript:alert(1)\n\nCabinet",
        "Cabinet <Dupont> & fils",
    );
    assert!(html.contains("Bonjour &lt;b&gt;Jean&lt;/b&gt; &amp; &quot;Marie&quot;,"));
    assert!(html.contains(
            "<a href=\"https://rappel.example/d/ab?x=1&amp;y=2\" style=\"color:#1f4e79;\">https://rappel.example/d/ab?x=1&amp;y=2</a>. Merci<br>\njavascript:alert(1)</p>"
        ));
    assert!(html.contains("<title>Cabinet &lt;Dupont&gt; &amp; fils</title>"));
    assert!(!html.contains("<b>"));
    assert_eq!(html.matches("<p style=\"margin:0 0 16px;\">").count(), 3);
}

#[test]
fn smtp_urls_are_checked_and_their_password_is_hidden() {
    let url = SmtpUrl::parse("smtp://relay:s%40cret@mail.example.org:587?tls=required").unwrap();
    assert_eq!(
        url.redacted(),
        "smtp://relay:***@mail.example.org:587?tls=required"
    );
    assert!(url.encrypted);
    assert!(!format!("{url:?}").contains("cret"));
    assert!(
        SmtpUrl::parse("smtps://mail.example.org")
            .unwrap()
            .encrypted
    );
    assert!(!SmtpUrl::parse("smtp://127.0.0.1:2525").unwrap().encrypted);
    for bad in [
        "mail.example.org",
        "http://mail.example.org",
        "smtp://",
        "smtp://:25",
        "smtp://mail.example.org?tls=sometimes",
    ] {
        assert!(SmtpUrl::parse(bad).is_err(), "{bad} was accepted");
    }
    let error = SmtpUrl::parse("ftp://u:hunter2@x").unwrap_err();
    assert!(!error.contains("hunter2"), "{error}");
}

#[test]
fn the_sender_keeps_its_address_and_takes_the_practice_name() {
    let sender = Sender::parse("Rappel <no-reply@cabinet.example>").unwrap();
    assert_eq!(sender.domain(), "cabinet.example");
    let named = sender.mailbox_named("Cabinet \"Dupont\"\n<x@evil.example>");
    assert_eq!(named.email.to_string(), "no-reply@cabinet.example");
    assert_eq!(
        named.name.as_deref(),
        Some("Cabinet \"Dupont\" <x@evil.example>")
    );
    assert_eq!(sender.mailbox_named("").name.as_deref(), Some("Rappel"));
    assert!(Sender::parse("not an address").is_err());
}
