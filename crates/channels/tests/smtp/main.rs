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

mod dkim;
mod failures;
mod messages;

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
