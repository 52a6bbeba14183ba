//! Rappel's channels: the only code that talks to providers. A message arrives rendered; the
//! transport hands it off and classifies any error, once, as retryable or permanent.
//!
//! This crate holds no policy and touches no database: what to send and what to do after a
//! failure are the engine's business.

pub mod bounce;
mod dkim;
pub mod email;
pub mod email_events;
pub mod net_guard;
pub mod postal;
pub mod push;
pub mod sms;
pub mod webhook_out;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use rappel_domain::notification::Channel;
use serde::Serialize;
use sha2::Digest as _;

/// A message ready to leave: channel, address and rendered content.
#[derive(Clone, Serialize)]
pub struct OutboundMessage {
    /// The notification's identity key, used as the email Message-ID and the provider
    /// idempotency key so a retried hand-off is recognised as the same message.
    pub id: String,
    pub practice_id: String,
    pub channel: Channel,
    /// Email address, E.164 number, push endpoint or postal block, per channel.
    pub to: String,
    pub subject: Option<String>,
    pub text: String,
    pub sender_name: String,
    /// The appointment as a calendar event: emails attach it as `rendezvous.ics`. Boxed: most
    /// messages have none, and the message travels by value through the dispatcher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<Box<CalendarEvent>>,
    /// An HTML body rendered from the practice's template, when it has one (email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// Where and how to encrypt a Web Push message (push).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<Box<PushTarget>>,
    /// The letter to print and post (postal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub letter: Option<Box<Letter>>,
    /// The practice's logo for the email's header (appointments booked by the practice's staff,
    /// SPEC.md `doctolib`); shared, since a batch carries the same logo many times.
    #[serde(skip)]
    pub logo: Option<Arc<LogoImage>>,
}

/// A practice's logo ready for a header or a letterhead: a PNG that fits within 150 × 75 px
/// (the engine resized it when the practice uploaded it).
#[derive(Clone, PartialEq, Eq)]
pub struct LogoImage {
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Debug for LogoImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogoImage")
            .field("png_len", &self.png.len())
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

/// A browser's push subscription (RFC 8030 endpoint, RFC 8291 keys, base64url).
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct PushTarget {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

/// A document to send by post: the recipient's window-envelope address block and the document.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct Letter {
    pub document_id: String,
    pub title: String,
    /// At most 6 lines of 38 characters (NF Z10-011), built by the domain's `PostalAddress`.
    pub address_block: Vec<String>,
    /// The practice's letterhead lines.
    pub sender_block: Vec<String>,
    /// The date printed on the letter, which is also the day of the print batch it joins: the
    /// practice-local date of the engine's clock when the letter was made, never the machine's.
    pub date: jiff::civil::Date,
    /// The practice's logo, printed at the top left of the cover page.
    #[serde(skip)]
    pub logo: Option<Arc<LogoImage>>,
    /// The document's PDF bytes (decrypted), appended after the cover page. Never logged.
    #[serde(skip)]
    pub document_pdf: Vec<u8>,
}

/// One appointment as a calendar entry (RFC 5545 VEVENT). It names the practitioner and the
/// place, never the motive: a calendar is often shared or synchronised.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CalendarEvent {
    /// Stable for the life of the appointment, so a calendar replaces the event it already holds
    /// when the appointment moves.
    pub uid: String,
    /// Grows with every change of the appointment (its version): the newer copy wins.
    pub sequence: u32,
    /// When this copy was made (DTSTAMP), from the engine's clock.
    pub stamp: Timestamp,
    pub start: Timestamp,
    pub end: Timestamp,
    pub summary: String,
    pub location: Option<String>,
}

impl std::fmt::Debug for OutboundMessage {
    // Contact details and bodies are health data: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundMessage")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// What the provider answered on success.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Receipt {
    pub provider_id: Option<String>,
    /// What the hand-off cost, in euro cents, when the channel knows it (letters: the provider's
    /// price or the configured tariff). `None` for channels that cost nothing per message here.
    pub cost_cents: Option<u32>,
}

impl Receipt {
    /// A receipt with the provider's id and no cost.
    pub fn with_id(provider_id: impl Into<String>) -> Receipt {
        Receipt {
            provider_id: Some(provider_id.into()),
            cost_cents: None,
        }
    }
}

/// A failed hand-off, classified at the edge.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The provider refused the message for good (SMTP 5xx, HTTP 4xx, invalid recipient).
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// Worth retrying later (SMTP 4xx, timeout, HTTP 5xx, 429).
    #[error("temporary failure: {reason}")]
    Transient {
        reason: String,
        retry_after: Option<jiff::SignedDuration>,
    },
    /// The address no longer exists and never will again: a Web Push subscription the browser
    /// dropped (HTTP 404 or 410 from the push service). Not retried; the engine also forgets the
    /// address, so nothing else is sent to it.
    #[error("the address no longer exists: {0}")]
    Gone(String),
}

impl ChannelError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ChannelError::Permanent(_) | ChannelError::Gone(_) => false,
            ChannelError::Transient { .. } => true,
        }
    }
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Receipt, ChannelError>> + Send + 'a>>;

/// A way out for messages of one or more channels.
pub trait Transport: Send + Sync {
    fn send<'a>(&'a self, message: &'a OutboundMessage) -> SendFuture<'a>;

    /// What a letter of `pages` pages would cost through this transport, in euro cents, so that
    /// the practice sees the price before it asks for one. `None`: no price is known here (the
    /// channel costs nothing per message, or the transport writes files).
    fn letter_cost_cents(&self, pages: usize) -> Option<u32> {
        let _ = pages;
        None
    }
}

/// Writes every message to a folder instead of sending it: emails as real `.eml` files (open
/// them in any mail client), other channels as JSON. The embedded default needs no mail server.
pub struct FileOutbox {
    dir: PathBuf,
    sender: email::Sender,
}

impl FileOutbox {
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<FileOutbox> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(FileOutbox {
            dir,
            sender: email::Sender::default(),
        })
    }

    /// The same outbox with emails from `sender`, as the SMTP transport would send them.
    pub fn with_sender(self, sender: email::Sender) -> FileOutbox {
        FileOutbox { sender, ..self }
    }

    /// `{channel}-{practice}-{key}-{digest}.{ext}`: one file per practice and message. Identity
    /// keys are chosen per practice (two practices may book appointment `a1`), and the readable
    /// part replaces what a file name cannot hold with `_`, so the digest of the exact practice
    /// and key keeps two messages from ever sharing a file.
    fn file_name(&self, message: &OutboundMessage, ext: &str) -> PathBuf {
        let safe = |text: &str| -> String {
            text.chars()
                .take(80)
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        let digest =
            sha2::Sha256::digest(format!("{}\n{}", message.practice_id, message.id).as_bytes());
        self.dir.join(format!(
            "{}-{}-{}-{}.{ext}",
            message.channel,
            safe(&message.practice_id),
            safe(&message.id),
            hex::encode(&digest[..6])
        ))
    }
}

impl Transport for FileOutbox {
    fn send<'a>(&'a self, message: &'a OutboundMessage) -> SendFuture<'a> {
        Box::pin(async move {
            let (path, bytes) = match message.channel {
                Channel::Email => (
                    self.file_name(message, "eml"),
                    email::build(message, &self.sender)?.formatted(),
                ),
                _ => (
                    self.file_name(message, "json"),
                    serde_json::to_vec_pretty(message)
                        .map_err(|e| ChannelError::Permanent(e.to_string()))?,
                ),
            };
            tokio::fs::write(&path, bytes)
                .await
                .map_err(|e| ChannelError::Transient {
                    reason: format!("cannot write to the outbox: {e}"),
                    retry_after: None,
                })?;
            Ok(Receipt::with_id(path.display().to_string()))
        })
    }
}

/// The full MIME message (text, HTML, calendar attachment) exactly as the SMTP transport sends
/// it, from the default sender. See [`email::build`].
pub fn email_bytes(message: &OutboundMessage) -> Result<Vec<u8>, ChannelError> {
    Ok(email::build(message, &email::Sender::default())?.formatted())
}

/// One hand-off as [`Recorder`] saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub at: Timestamp,
    pub message: OutboundMessage,
}

/// Accepts every message and remembers it: the simulated channels of `rappel simulate` and of
/// tests. `now` is the simulated clock.
#[derive(Clone, Default)]
pub struct Recorder {
    sent: Arc<Mutex<Vec<Recorded>>>,
    now: Arc<Mutex<Option<Timestamp>>>,
}

impl Recorder {
    pub fn set_now(&self, now: Timestamp) {
        *self.now.lock().expect("recorder lock") = Some(now);
    }

    pub fn sent(&self) -> Vec<Recorded> {
        self.sent.lock().expect("recorder lock").clone()
    }
}

impl Transport for Recorder {
    fn send<'a>(&'a self, message: &'a OutboundMessage) -> SendFuture<'a> {
        Box::pin(async move {
            let at = self
                .now
                .lock()
                .expect("recorder lock")
                .unwrap_or(Timestamp::UNIX_EPOCH);
            self.sent.lock().expect("recorder lock").push(Recorded {
                at,
                message: message.clone(),
            });
            Ok(Receipt::with_id(format!("sim-{}", message.id)))
        })
    }
}
