//! Email: the MIME message every email transport sends, and delivery over SMTP.
//!
//! [`build`] turns an [`OutboundMessage`] into one RFC 5322 message: a plain-text part, an HTML
//! part made from the same text (every character escaped, links made clickable), and for
//! appointments an iCalendar attachment `rendezvous.ics`. The file outbox writes exactly this
//! message, so the embedded default shows what a mail server would receive.
//!
//! [`SmtpTransport`] hands the message to an SMTP server (lettre, rustls, a connection pool) and
//! classifies every failure once: a refusal of this message (5xx, an address that does not parse)
//! is permanent; everything about the path or our configuration (4xx, refused connection,
//! timeout, TLS, authentication) is worth retrying.
//!
//! ```no_run
//! use rappel_channels::email::{Sender, SmtpConfig, SmtpTransport, SmtpUrl};
//! # fn demo() -> Result<(), String> {
//! let transport = SmtpTransport::new(SmtpConfig {
//!     url: SmtpUrl::parse("smtp://relay:secret@mail.example.org:587?tls=required")?,
//!     sender: Sender::parse("Rappel <no-reply@example.org>")?,
//!     timeout: std::time::Duration::from_secs(30),
//!     dkim: None,
//!     bounce: None,
//! });
//! # Ok(()) }
//! ```
//!
//! A message that carries the practice's logo (appointments booked by the practice's staff) shows
//! it at the top of the HTML as an inline image: the HTML and the PNG travel together in a
//! `multipart/related` part and the `<img>` points at the PNG's `Content-ID` (RFC 2392 `cid:`).
//! Not a `data:` URI: Gmail strips them and Outlook for Windows blocks them, while `cid:` images
//! show in Gmail, Outlook, Apple Mail and Thunderbird, usually without the "show remote images"
//! prompt (nothing is fetched from a server), and the part is `Content-Disposition: inline`, so
//! clients do not list it among the attachments.
//!
//! Bounces come back to the envelope sender: the From address, or with a [`BounceAddress`] a
//! per-message `bounce+TOKEN@…` that `rappel bounce` reads (see `bounce`). Deliberately absent:
//! any template language — the HTML is the text, escaped.

use std::sync::Mutex;
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sha2::{Digest, Sha256};

pub use crate::bounce::BounceAddress;
pub use crate::dkim::Dkim;
use crate::{
    CalendarEvent, ChannelError, LogoImage, OutboundMessage, Receipt, SendFuture, Transport,
};

/// The From address of every email. Its display name is replaced, per message, by the
/// practice's name; the configured name is used only when a message carries none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sender {
    mailbox: Mailbox,
}

impl Sender {
    pub fn parse(text: &str) -> Result<Sender, String> {
        text.trim()
            .parse::<Mailbox>()
            .map(|mailbox| Sender { mailbox })
            .map_err(|e| {
                format!("`{text}` is not a sender like `Cabinet <no-reply@example.org>` ({e})")
            })
    }

    /// The domain of the address, the natural DKIM signing domain.
    pub fn domain(&self) -> &str {
        self.mailbox.email.domain()
    }

    fn mailbox_named(&self, name: &str) -> Mailbox {
        let name = one_line(name);
        let name = if name.is_empty() {
            self.mailbox.name.clone()
        } else {
            Some(name)
        };
        Mailbox::new(name, self.mailbox.email.clone())
    }
}

impl Default for Sender {
    fn default() -> Sender {
        Sender::parse("Rappel <no-reply@localhost>").expect("the default sender parses")
    }
}

/// The Message-ID of a notification: the same for every attempt, so a receiving server or a
/// mail client recognises a retried hand-off as the same message. The practice is part of the
/// hash because identity keys are unique only within a practice.
pub fn message_id(message: &OutboundMessage) -> String {
    let digest = Sha256::digest(format!("{}/{}", message.practice_id, message.id).as_bytes());
    format!("<{}@rappel>", hex::encode(&digest[..]))
}

/// Builds the MIME message of an email notification: text and HTML alternatives, and the
/// `rendezvous.ics` attachment when the message carries a calendar event. An address that does
/// not parse is a permanent failure: no retry will make it valid.
pub fn build(message: &OutboundMessage, sender: &Sender) -> Result<lettre::Message, ChannelError> {
    let to: Mailbox = message
        .to
        .trim()
        .parse()
        .map_err(|e| ChannelError::Permanent(format!("invalid recipient address ({e})")))?;
    let practice = one_line(&message.sender_name);
    let logo = message.logo.as_deref();
    // The practice's template made it (escaped there); without one, the escaped text.
    let html = match (&message.html, logo) {
        (Some(html), None) => html.clone(),
        (Some(html), Some(logo)) => with_logo_header(html, logo, &practice),
        (None, logo) => html_page(&message.text, &practice, logo),
    };
    let alternative = match logo {
        None => MultiPart::alternative_plain_html(message.text.clone(), html),
        Some(logo) => {
            let png = Body::new_with_encoding(logo.png.clone(), ContentTransferEncoding::Base64)
                .map_err(|_| ChannelError::Permanent("cannot encode the logo".into()))?;
            MultiPart::alternative()
                .singlepart(SinglePart::plain(message.text.clone()))
                .multipart(
                    MultiPart::related()
                        .singlepart(SinglePart::html(html))
                        .singlepart(
                            Attachment::new_inline(LOGO_CONTENT_ID.into())
                                .body(png, ContentType::parse("image/png").expect("a valid type")),
                        ),
                )
        }
    };
    let body = match &message.calendar {
        None => alternative,
        Some(event) => {
            // Base64 keeps the CRLF line endings and the folding of the calendar byte for byte.
            let ics = Body::new_with_encoding(ics(event), ContentTransferEncoding::Base64)
                .map_err(|_| ChannelError::Permanent("cannot encode the calendar".into()))?;
            let content_type = ContentType::parse("text/calendar; charset=utf-8; method=PUBLISH")
                .expect("a valid content type");
            MultiPart::mixed()
                .multipart(alternative)
                .singlepart(Attachment::new("rendezvous.ics".into()).body(ics, content_type))
        }
    };
    lettre::Message::builder()
        .from(sender.mailbox_named(&practice))
        .to(to)
        .message_id(Some(message_id(message)))
        .subject(one_line(message.subject.as_deref().unwrap_or_default()))
        .header(AutoSubmitted)
        .header(BrevoCustom(crate::email_events::custom_id(&message_id(
            message,
        ))))
        .header(MailjetCustomId(crate::email_events::custom_id(
            &message_id(message),
        )))
        .multipart(body)
        .map_err(|e| ChannelError::Permanent(format!("cannot build the email ({e})")))
}

/// `Auto-Submitted: auto-generated` (RFC 3834): out-of-office responders do not answer it.
#[derive(Clone)]
struct AutoSubmitted;

impl lettre::message::header::Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

/// `X-Mailin-custom`: Brevo echoes it in its event webhooks (see `email_events`).
#[derive(Clone)]
struct BrevoCustom(String);

impl lettre::message::header::Header for BrevoCustom {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Mailin-custom")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(BrevoCustom(s.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `X-MJ-CustomID`: Mailjet echoes it as `CustomID` in its events (see `email_events`).
#[derive(Clone)]
struct MailjetCustomId(String);

impl lettre::message::header::Header for MailjetCustomId {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-MJ-CustomID")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(MailjetCustomId(s.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// Collapses control characters (a newline in a practice name) into spaces: headers are one line.
fn one_line(text: &str) -> String {
    text.split(char::is_control)
        .filter(|part| !part.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The HTML version of a plain-text message: the practice's name as a header, one paragraph per
/// block of text, line breaks kept, `http(s)://` links made clickable. Everything that comes from
/// the text is escaped; no markup of the text is interpreted.
pub fn html_body(text: &str, practice_name: &str) -> String {
    html_page(text, practice_name, None)
}

/// The `Content-ID` of the logo's part, which the HTML's `<img src="cid:…">` names.
pub const LOGO_CONTENT_ID: &str = "logo@rappel";

/// The logo's header: the image at its own size (at most 150 × 75 px), on white, so that a logo
/// drawn for paper keeps its colours. `alt` is the practice's name for clients that block it.
fn logo_header(logo: &LogoImage, practice_name: &str) -> String {
    let mut alt = String::new();
    push_escaped(&mut alt, practice_name);
    format!(
        "<div style=\"padding:12px 20px 8px;background:#ffffff;\"><img src=\"cid:{LOGO_CONTENT_ID}\" \
         width=\"{}\" height=\"{}\" alt=\"{alt}\" style=\"display:block;border:0;outline:none;\"></div>\n",
        logo.width, logo.height
    )
}

/// A practice's own HTML with the logo's header first in its body (the template knows nothing
/// of the logo: it is the engine's decision, per appointment, whether one is shown).
fn with_logo_header(html: &str, logo: &LogoImage, practice_name: &str) -> String {
    let header = logo_header(logo, practice_name);
    let lower = html.to_ascii_lowercase();
    match lower
        .find("<body")
        .and_then(|start| lower[start..].find('>').map(|end| start + end + 1))
    {
        Some(at) => format!("{}\n{header}{}", &html[..at], &html[at..]),
        None => format!("{header}{html}"),
    }
}

fn html_page(text: &str, practice_name: &str, logo: Option<&LogoImage>) -> String {
    let text = text.replace("\r\n", "\n");
    let mut paragraphs = String::new();
    for block in text.split("\n\n").map(str::trim).filter(|b| !b.is_empty()) {
        paragraphs.push_str("<p style=\"margin:0 0 16px;\">");
        for (i, line) in block.lines().enumerate() {
            if i > 0 {
                paragraphs.push_str("<br>\n");
            }
            push_linked(&mut paragraphs, line.trim_end());
        }
        paragraphs.push_str("</p>\n");
    }
    let mut name = String::new();
    push_escaped(&mut name, practice_name);
    let (logo, band_radius) = match logo {
        Some(logo) => (logo_header(logo, practice_name), "0"),
        None => (String::new(), "8px 8px 0 0"),
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name}</title>
</head>
<body style="margin:0;padding:0;background:#f4f5f7;">
<div style="max-width:600px;margin:0 auto;padding:16px;font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5;color:#1f2933;">
{logo}<div style="padding:16px 20px;background:#1f4e79;color:#ffffff;border-radius:{band_radius};font-size:18px;font-weight:bold;">{name}</div>
<div style="padding:20px 20px 4px;background:#ffffff;border-radius:0 0 8px 8px;">
{paragraphs}</div>
<p style="margin:16px 0 0;font-size:12px;color:#6b7280;text-align:center;">Message automatique envoyé par {name}. Merci de ne pas y répondre.</p>
</div>
</body>
</html>
"#
    )
}

fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Escapes a line and turns each `http://` or `https://` link into an anchor. Only these two
/// schemes are linked, so no `javascript:` can become a link.
fn push_linked(out: &mut String, line: &str) {
    let mut rest = line;
    while let Some(start) = ["https://", "http://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        let (before, from_link) = rest.split_at(start);
        push_escaped(out, before);
        let end = from_link
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '«' | '»'))
            .unwrap_or(from_link.len());
        let link = from_link[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '\'']);
        if link.ends_with("//") {
            // A bare scheme is not a link.
            push_escaped(out, link);
        } else {
            out.push_str("<a href=\"");
            push_escaped(out, link);
            out.push_str("\" style=\"color:#1f4e79;\">");
            push_escaped(out, link);
            out.push_str("</a>");
        }
        rest = &from_link[link.len()..];
    }
    push_escaped(out, rest);
}

/// The iCalendar (RFC 5545) file of one appointment: `METHOD:PUBLISH`, one VEVENT with times in
/// UTC, TEXT values escaped, lines folded at 75 octets, CRLF line endings.
pub fn ics(event: &CalendarEvent) -> String {
    let utc = |t: jiff::Timestamp| t.strftime("%Y%m%dT%H%M%SZ").to_string();
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".into(),
        "PRODID:-//Rappel//Rappel//FR".into(),
        "CALSCALE:GREGORIAN".into(),
        "METHOD:PUBLISH".into(),
        "BEGIN:VEVENT".into(),
        format!("UID:{}", ics_text(&event.uid)),
        format!("SEQUENCE:{}", event.sequence),
        format!("DTSTAMP:{}", utc(event.stamp)),
        format!("DTSTART:{}", utc(event.start)),
        format!("DTEND:{}", utc(event.end)),
        format!("SUMMARY:{}", ics_text(&event.summary)),
    ];
    if let Some(location) = &event.location {
        lines.push(format!("LOCATION:{}", ics_text(location)));
    }
    lines.extend(
        [
            "STATUS:CONFIRMED",
            "TRANSP:OPAQUE",
            "END:VEVENT",
            "END:VCALENDAR",
        ]
        .map(String::from),
    );
    lines.iter().map(|line| ics_fold(line)).collect()
}

/// Escapes a TEXT value (RFC 5545 §3.3.11): backslash, semicolon, comma and newlines.
fn ics_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line (RFC 5545 §3.1): at most 75 octets per physical line, continuation
/// lines start with one space, and a UTF-8 character is never split. Ends with CRLF.
fn ics_fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 64 * 3 + 2);
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
    out
}

/// A validated `RAPPEL_SMTP_URL`:
///
/// - `smtp://host:25` — no encryption, for a relay on the same machine or network;
/// - `smtp://host:587?tls=required` — STARTTLS, refused if the server does not offer it;
/// - `smtp://host:587?tls=opportunistic` — STARTTLS when offered;
/// - `smtps://host:465` — implicit TLS;
/// - `smtp://user:password@host…` — authentication; percent-encode reserved characters
///   (`p%40ss` for `p@ss`).
///
/// Certificates are checked against the Mozilla roots (webpki-roots). Its `Debug` hides the
/// password.
#[derive(Clone)]
pub struct SmtpUrl {
    builder: AsyncSmtpTransportBuilder,
    redacted: String,
    encrypted: bool,
    host: String,
}

impl SmtpUrl {
    pub fn parse(url: &str) -> Result<SmtpUrl, String> {
        let redacted = redact(url);
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            format!("`{redacted}` is not a URL like smtp://host:587?tls=required")
        })?;
        if scheme != "smtp" && scheme != "smtps" {
            return Err(format!(
                "`{redacted}`: the scheme must be smtp:// or smtps://, not {scheme}://"
            ));
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_port = authority.rsplit('@').next().unwrap_or_default();
        let host = match host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host_port.split(':').next().unwrap_or_default(),
        };
        if host.is_empty() {
            return Err(format!("`{redacted}` names no host"));
        }
        let tls = rest
            .split_once('?')
            .map(|(_, query)| query)
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("tls="));
        let encrypted = scheme == "smtps" || matches!(tls, Some("required"));
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|e| {
            format!("`{redacted}` ({e}); use smtp://host:25, smtp://host:587?tls=required or smtps://host:465")
        })?;
        Ok(SmtpUrl {
            builder,
            redacted,
            encrypted,
            host: host.to_string(),
        })
    }

    /// The URL without its password, for messages and logs.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SmtpUrl").field(&self.redacted).finish()
    }
}

/// `smtp://user:***@host…`: the password never reaches a log.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => url.to_string(),
    }
}

/// Everything [`SmtpTransport`] needs, validated.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    pub url: SmtpUrl,
    pub sender: Sender,
    /// Bounds a whole hand-off: connection, TLS, authentication and the SMTP dialogue.
    pub timeout: Duration,
    pub dkim: Option<Dkim>,
    /// The per-message return path (`RAPPEL_BOUNCE_DOMAIN`); without it the envelope sender is
    /// the From address.
    pub bounce: Option<BounceAddress>,
}

/// Sends emails to an SMTP server, reusing connections.
pub struct SmtpTransport {
    config: SmtpConfig,
    /// Built on the first send (lettre's pool needs a running Tokio runtime) and replaced after a
    /// timeout. A send cut short by the timeout returns its connection to the pool in the middle
    /// of a dialogue, and the next message would read the previous one's replies; dropping the
    /// whole pool closes that connection instead.
    pool: Mutex<Option<AsyncSmtpTransport<Tokio1Executor>>>,
}

impl SmtpTransport {
    pub fn new(config: SmtpConfig) -> SmtpTransport {
        if !config.url.encrypted && !is_local(&config.url.host) {
            tracing::warn!(
                smtp = %config.url.redacted(),
                "SMTP without TLS to a remote host: add ?tls=required or use smtps://"
            );
        }
        SmtpTransport {
            config,
            pool: Mutex::new(None),
        }
    }

    fn pool(&self) -> AsyncSmtpTransport<Tokio1Executor> {
        let mut pool = self.pool.lock().expect("smtp pool lock");
        pool.get_or_insert_with(|| {
            self.config
                .url
                .builder
                .clone()
                .timeout(Some(self.config.timeout))
                .pool_config(
                    PoolConfig::new()
                        .max_size(4)
                        .idle_timeout(Duration::from_secs(60)),
                )
                .build()
        })
        .clone()
    }

    fn discard_pool(&self) {
        self.pool.lock().expect("smtp pool lock").take();
    }
}

impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn is_local(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Transport for SmtpTransport {
    fn send<'a>(&'a self, message: &'a OutboundMessage) -> SendFuture<'a> {
        Box::pin(async move {
            let email = build(message, &self.config.sender)?;
            let mut envelope = email.envelope().clone();
            if let Some(bounce) = &self.config.bounce {
                let from = bounce
                    .address(&message.practice_id, &message.id)
                    .parse::<lettre::Address>()
                    .map_err(|e| {
                        ChannelError::Permanent(format!("invalid bounce address ({e})"))
                    })?;
                envelope = lettre::address::Envelope::new(Some(from), envelope.to().to_vec())
                    .map_err(|e| {
                        ChannelError::Permanent(format!("cannot build the envelope ({e})"))
                    })?;
            }
            let mut raw = email.formatted();
            if let Some(dkim) = &self.config.dkim {
                // Signed over the very bytes handed to the server (see `dkim`).
                raw = dkim.sign(&raw, jiff::Timestamp::now().as_second());
            }
            let id = message_id(message);
            let ascii_recipient = message.to.is_ascii();
            let pool = self.pool();
            match tokio::time::timeout(self.config.timeout, pool.send_raw(&envelope, &raw)).await {
                Ok(Ok(_)) => Ok(Receipt::with_id(id)),
                Ok(Err(error)) => {
                    let error = classify(&error, ascii_recipient);
                    tracing::debug!(message = %id, %error, "SMTP hand-off failed");
                    Err(error)
                }
                Err(_) => {
                    self.discard_pool();
                    Err(ChannelError::Transient {
                        reason: format!(
                            "the SMTP server did not complete the hand-off within {} s",
                            self.config.timeout.as_secs_f64()
                        ),
                        retry_after: None,
                    })
                }
            }
        })
    }
}

/// SMTP replies that are 5xx but say nothing about the message: the server refuses our
/// credentials or wants encryption first (530, 534, 535, 538). Failing every message for good
/// because of a configuration mistake would lose them; retried, they go once it is fixed.
const CONFIGURATION_REPLIES: [u16; 4] = [530, 534, 535, 538];

/// The edge's one classification of an SMTP failure.
fn classify(error: &lettre::transport::smtp::Error, ascii_recipient: bool) -> ChannelError {
    let mut reason = error.to_string();
    if reason.len() > 300 {
        let cut = (0..=300)
            .rev()
            .find(|&i| reason.is_char_boundary(i))
            .unwrap_or(0);
        reason.truncate(cut);
        reason.push('…');
    }
    let transient = |reason: String| ChannelError::Transient {
        reason,
        retry_after: None,
    };
    if let Some(code) = error.status() {
        return if error.is_permanent() && !CONFIGURATION_REPLIES.contains(&u16::from(code)) {
            ChannelError::Permanent(format!("the SMTP server refused the message: {reason}"))
        } else {
            transient(format!("the SMTP server deferred the message: {reason}"))
        };
    }
    if error.is_client() && !ascii_recipient {
        // The one client-side refusal that belongs to the message: an internationalised address
        // and a server without SMTPUTF8.
        return ChannelError::Permanent(format!(
            "the SMTP server cannot take this address: {reason}"
        ));
    }
    // Refused or dropped connections, timeouts, TLS failures, unparsable replies, a server
    // without STARTTLS or without a common authentication mechanism: the path or our
    // configuration, not this message.
    if error.is_timeout() {
        return transient(format!("the SMTP server timed out: {reason}"));
    }
    transient(format!("cannot reach the SMTP server: {reason}"))
}

#[cfg(test)]
mod tests;
