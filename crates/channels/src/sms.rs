//! SMS through the providers' HTTP APIs, and the delivery reports they send back.
//!
//! Three [`Transport`](crate::Transport)s, one per way out:
//!
//! - [`TwilioSms`]: Twilio's Programmable Messaging (`POST …/Accounts/{sid}/Messages.json`);
//! - [`OvhSms`]: OVHcloud's SMS API (`POST /1.0/sms/{service}/jobs`, signed requests);
//! - [`WebhookSms`]: a practice's own gateway, called with a JSON body signed per the Standard
//!   Webhooks scheme.
//!
//! ```no_run
//! # fn demo() -> Result<(), rappel_channels::sms::ConfigError> {
//! use rappel_channels::sms::{SmsOptions, TwilioSms, twilio};
//!
//! let transport = TwilioSms::new(twilio::Config {
//!     status_callback: Some("https://rappel.example/v1/webhooks/sms/twilio".into()),
//!     ..twilio::Config::new("AC0123456789abcdef0123456789abcdef", "token", "DrMartin")
//! })?;
//! # Ok(()) }
//! ```
//!
//! Every transport checks its settings when it is built (a sender ID that operators would refuse
//! is a start-up error, not a thousand failed messages), takes the recipient in E.164 as the
//! engine hands it, tells the provider the encoding [`analyze`] chose where the provider has a
//! field for it, waits for its rate limit instead of failing, and classifies every failure once:
//!
//! | what happened | classified as |
//! | --- | --- |
//! | 2xx | sent; the provider's id becomes the receipt |
//! | 400, 409, 422… (the provider refuses *this* message: invalid number, unsubscribed…) | [`ChannelError::Permanent`] with the provider's reason |
//! | 429, 408, 5xx, connection failure, time-out | [`ChannelError::Transient`], with `Retry-After` when given |
//! | 401, 403, 404, 3xx (our credentials, account or URL are wrong) | [`ChannelError::Transient`] |
//!
//! The last line departs from "4xx is permanent" on purpose: those answers say nothing about the
//! message, only about our configuration. Failing every queued reminder for good because a token
//! was rotated would lose them; retrying keeps them until the operator fixes the setting, and
//! each one still stops at the end of its window (`window_passed`), with the provider's answer as
//! its last error.
//!
//! A time-out is retried although the provider may have accepted the message before it: that is
//! the at-least-once hand-off of ARCHITECTURE.md. Each transport uses the provider's idempotency
//! mechanism where it has one (see each module); only the webhook has one.
//!
//! The inbound half, [`twilio::report`], [`ovh::report`] and [`webhook::report`], checks that a
//! delivery report really comes from the provider and turns it into a [`DeliveryReport`]; the
//! server routes it, the engine applies it. [`twilio::inbound`], [`ovh::inbound`] and
//! [`webhook::inbound`] do the same for the SMS a patient sends back ([`InboundSms`]), each
//! proven the way that provider proves its delivery reports.
//!
//! What this module deliberately does not do: rewrite the text ([`to_gsm7_lossy`] is a
//! template author's choice, never applied silently to a patient's message), log a phone number
//! or a body (SPEC.md rule 9), or read any configuration itself: the binary builds the transports
//! from its environment.
//!
//! [`analyze`]: rappel_domain::sms::analyze
//! [`to_gsm7_lossy`]: rappel_domain::sms::to_gsm7_lossy

pub mod ovh;
pub mod twilio;
pub mod webhook;

use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rappel_domain::sms::{SmsInfo, analyze, validate_sender_id};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio::time::Instant;

use crate::{ChannelError, OutboundMessage};

pub use ovh::OvhSms;
pub use twilio::TwilioSms;
pub use webhook::WebhookSms;

/// Settings every SMS transport shares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SmsOptions {
    /// Messages per second this transport hands to the provider, at most. A message over the rate
    /// waits for its turn: providers answer bursts with 429s or, worse, silent drops.
    pub rate_per_second: f64,
    /// The longest a whole request may take, connection included. Past it the attempt is a
    /// transient failure.
    pub timeout: Duration,
}

impl Default for SmsOptions {
    fn default() -> SmsOptions {
        SmsOptions {
            rate_per_second: 10.0,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A setting a transport cannot work with, found when it is built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConfigError {
    /// The field of the provider's `Config` at fault (`from`, `account_sid`, `options.rate_per_second`…).
    pub field: &'static str,
    pub reason: String,
}

impl ConfigError {
    fn new(field: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            field,
            reason: reason.into(),
        }
    }
}

/// Who a message appears to come from: a number the patient could answer, or an alphanumeric
/// sender ID ("DrMartin") that operators display instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sender {
    Number(String),
    Alphanumeric(String),
}

impl Sender {
    /// An E.164 number (`+33…`) or a sender ID that [`validate_sender_id`] accepts.
    pub fn parse(text: &str) -> Result<Sender, String> {
        if text.starts_with('+') {
            return is_e164(text)
                .then(|| Sender::Number(text.to_string()))
                .ok_or_else(|| {
                    "a sender number must be in E.164 form: + then 8 to 15 digits".to_string()
                });
        }
        validate_sender_id(text).map_err(|e| e.to_string())?;
        Ok(Sender::Alphanumeric(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Sender::Number(text) | Sender::Alphanumeric(text) => text,
        }
    }
}

/// What became of a message once the provider handed it on, as its delivery report says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// The handset received it.
    Delivered,
    /// The operator gave up (unknown number, handset unreachable until the message expired…).
    Failed,
}

/// The notification a report names in its own words (Twilio's status callback carries them
/// back), for when the provider's id was never recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationRef {
    pub practice_id: String,
    pub key: String,
}

/// A delivery report whose authenticity was checked, with a final status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryReport {
    /// `twilio`, `ovh` or `webhook`, for logs.
    pub provider: &'static str,
    /// The provider's id of the message: the `provider_id` of the receipt.
    pub provider_id: String,
    pub notification: Option<NotificationRef>,
    pub status: DeliveryStatus,
    /// Why it failed, in the provider's terms (`twilio error 30003`), for the sent box.
    pub detail: Option<String>,
}

/// Why an incoming delivery report is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Missing or wrong signature, token or timestamp: it is not from the provider.
    #[error("unauthenticated report: {0}")]
    Unauthenticated(&'static str),
    /// Authentic, but without what a report must carry.
    #[error("malformed report: {0}")]
    Malformed(String),
}

/// An SMS a patient sent back, whose authenticity was checked: Twilio's inbound message
/// webhook ([`twilio::inbound`]), OVHcloud's reply callback ([`ovh::inbound`]) or the gateway's
/// signed inbound POST ([`webhook::inbound`]). `Debug` shows neither number nor text: both are
/// a patient's data.
#[derive(Clone, PartialEq, Eq)]
pub struct InboundSms {
    /// `twilio`, `ovh` or `webhook`: the provider path a reply goes back through.
    pub provider: &'static str,
    /// The provider's id of the incoming message (`MessageSid`, OVH's `id`, the gateway's `id`):
    /// a provider that calls twice is answered once.
    pub provider_message_id: String,
    /// The patient's number as the provider gives it (E.164 for Twilio and the gateway; OVH may
    /// write `0033…`, which [`InboundSms::from_e164`] reads too).
    pub from: String,
    /// Our number or short code the patient wrote to, when the provider says.
    pub to: Option<String>,
    /// What the patient wrote.
    pub text: String,
}

impl InboundSms {
    /// The sender's number in E.164 (`+33612345678`): `00` becomes `+`, spaces and dots go.
    pub fn from_e164(&self) -> String {
        let compact: String = self
            .from
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
            .collect();
        match compact.strip_prefix("00") {
            Some(rest) => format!("+{rest}"),
            None => compact,
        }
    }
}

impl std::fmt::Debug for InboundSms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundSms")
            .field("provider", &self.provider)
            .field("provider_message_id", &self.provider_message_id)
            .finish_non_exhaustive()
    }
}

// ---- what every transport does the same way ------------------------------------------------------

/// A token bucket holding one token, refilled every `1 / rate` seconds, kept as the instant the
/// next token is due (the "virtual scheduling" form of GCRA). Callers queue in arrival order:
/// each reserves the next free slot under the lock, then sleeps until it without holding it.
struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    fn new(per_second: f64) -> Result<RateLimiter, ConfigError> {
        if !(per_second.is_finite() && per_second > 0.0 && per_second <= 10_000.0) {
            return Err(ConfigError::new(
                "options.rate_per_second",
                format!("expected a number of messages per second above 0 (got {per_second})"),
            ));
        }
        Ok(RateLimiter {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(Instant::now()),
        })
    }

    async fn acquire(&self) {
        let slot = {
            // A poisoned lock only means another sender panicked between two lines that cannot
            // leave the instant inconsistent.
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// The HTTP client and the rate limit of one transport.
struct Http {
    client: reqwest::Client,
    limiter: RateLimiter,
    timeout: Duration,
}

impl Http {
    fn new(options: SmsOptions) -> Result<Http, ConfigError> {
        if options.timeout.is_zero() {
            return Err(ConfigError::new(
                "options.timeout",
                "the request time-out must be above zero",
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(5)))
            // A redirect on a POST would be followed as a GET by default, and would mean our
            // base URL is wrong: better to see the 3xx.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rappel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ConfigError::new("options", format!("cannot build the HTTP client: {e}"))
            })?;
        Ok(Http {
            client,
            limiter: RateLimiter::new(options.rate_per_second)?,
            timeout: options.timeout,
        })
    }

    /// Waits for the rate limit, sends, and reads the whole answer.
    async fn send(
        &self,
        provider: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, ChannelError> {
        self.limiter.acquire().await;
        let response = request
            .send()
            .await
            .map_err(|e| self.request_failed(provider, e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.request_failed(provider, e))?;
        Ok(Answer {
            status,
            headers,
            body: body.to_vec(),
        })
    }

    /// No HTTP answer: the request could not be built, sent, or finished in time.
    fn request_failed(&self, provider: &str, error: reqwest::Error) -> ChannelError {
        if error.is_builder() {
            return ChannelError::Permanent(format!(
                "{provider}: cannot build the request: {}",
                error.without_url()
            ));
        }
        let reason = if error.is_timeout() {
            // The provider may have accepted the message before the time-out: the retry can
            // send it twice (the at-least-once hand-off).
            format!(
                "{provider}: no answer within {} ms",
                self.timeout.as_millis()
            )
        } else {
            format!("{provider}: {}", error.without_url())
        };
        ChannelError::Transient {
            reason,
            retry_after: None,
        }
    }
}

/// A provider's whole HTTP answer.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    /// The failure this non-2xx answer means; `reason` is the provider's own explanation.
    fn failure(&self, provider: &str, reason: Option<String>) -> ChannelError {
        let status = self.status.as_u16();
        let reason = match reason {
            Some(reason) => format!("{provider} answered HTTP {status}: {reason}"),
            None => format!("{provider} answered HTTP {status}"),
        };
        match status {
            408 | 429 | 500..=599 => ChannelError::Transient {
                reason,
                retry_after: retry_after(&self.headers, Timestamp::now()),
            },
            // Our credentials, account or URL, not the message: see the module documentation.
            300..=399 | 401 | 403 | 404 => ChannelError::Transient {
                reason: format!("{reason} (check the provider settings)"),
                retry_after: None,
            },
            _ => ChannelError::Permanent(reason),
        }
    }
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 §10.2.3).
fn retry_after(headers: &HeaderMap, now: Timestamp) -> Option<SignedDuration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<i64>() {
        return Some(SignedDuration::from_secs(seconds.max(0)));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    Some(at.duration_since(now).max(SignedDuration::ZERO))
}

/// The recipient, which the engine hands in E.164 already; anything else is refused for good.
fn recipient(message: &OutboundMessage) -> Result<&str, ChannelError> {
    if is_e164(&message.to) {
        Ok(&message.to)
    } else {
        Err(ChannelError::Permanent(
            "the recipient is not a number in E.164 form".into(),
        ))
    }
}

fn is_e164(text: &str) -> bool {
    text.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// The body's encoding and segments; an empty body is not sent (it would cost a segment).
fn body_info(message: &OutboundMessage) -> Result<SmsInfo, ChannelError> {
    if message.text.is_empty() {
        return Err(ChannelError::Permanent("the SMS body is empty".into()));
    }
    Ok(analyze(&message.text))
}

/// A stable, opaque name for the notification outside Rappel: the same for every attempt at it,
/// different for every (practice, key). Providers see this rather than our keys, which name
/// patients and appointments.
fn message_ref(message: &OutboundMessage) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{}\n{}", message.practice_id, message.id).as_bytes(),
    );
    to_hex(&digest.as_ref()[..16])
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Provider messages may quote the recipient ("The 'To' number +336… is not valid"); a failure
/// reason is stored and shown, so runs of 6 digits or more are masked.
fn redact_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() >= 6 {
            out.push_str(&digits[..2]);
            out.push('…');
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

/// The one comparison of secrets of the workspace (hashed first, then compared in constant time).
pub(crate) use rappel_domain::secret::constant_time_eq;

/// `application/x-www-form-urlencoded` pairs, in order.
fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {

    /// N senders at R messages a second go out (N-1)/R seconds apart in all, each 1/R after
    /// the one before, in arrival order — on tokio's paused clock, so no test waits.
    #[tokio::test(start_paused = true)]
    async fn n_sends_at_r_per_second_are_spaced_one_over_r_apart() {
        let limiter = std::sync::Arc::new(RateLimiter::new(10.0).unwrap());
        let started = Instant::now();
        let mut sends = tokio::task::JoinSet::new();
        for _ in 0..5 {
            let limiter = limiter.clone();
            sends.spawn(async move {
                limiter.acquire().await;
                Instant::now()
            });
        }
        let mut at: Vec<Duration> = sends
            .join_all()
            .await
            .into_iter()
            .map(|t| t - started)
            .collect();
        at.sort();
        let ms: Vec<u128> = at.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 100, 200, 300, 400]);
        // After a quiet second the bucket is full again: the next send goes at once.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = Instant::now();
        limiter.acquire().await;
        assert_eq!(Instant::now() - before, Duration::ZERO);
    }
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now: Timestamp = "2026-03-02T08:00:00Z".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(
            retry_after(&headers, now),
            Some(SignedDuration::from_secs(7))
        );
        headers.insert(
            RETRY_AFTER,
            "Mon, 02 Mar 2026 08:01:30 GMT".parse().unwrap(),
        );
        assert_eq!(
            retry_after(&headers, now),
            Some(SignedDuration::from_secs(90))
        );
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn e164_numbers_are_a_plus_and_8_to_15_digits_not_starting_with_0() {
        assert!(is_e164("+33612345678"));
        assert!(!is_e164("0612345678"));
        assert!(!is_e164("+0612345678"));
        assert!(!is_e164("+33 6 12 34 56 78"));
        assert!(!is_e164("+1234567"));
        assert!(!is_e164(""));
    }

    #[test]
    fn senders_are_e164_numbers_or_sender_ids_operators_accept() {
        assert_eq!(
            Sender::parse("DrMartin"),
            Ok(Sender::Alphanumeric("DrMartin".into()))
        );
        assert_eq!(
            Sender::parse("+33612345678"),
            Ok(Sender::Number("+33612345678".into()))
        );
        assert!(Sender::parse("Dr Hélène").is_err());
        assert!(Sender::parse("+33 6").is_err());
        assert!(Sender::parse("0612345678").is_err(), "digits only");
    }

    #[test]
    fn long_digit_runs_are_masked_in_provider_messages() {
        assert_eq!(
            redact_numbers("The 'To' number +33612345678 is not valid (21211)"),
            "The 'To' number +33… is not valid (21211)"
        );
    }

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(constant_time_eq(b"token", b"token"));
        assert!(!constant_time_eq(b"token", b"tokeN"));
        assert!(!constant_time_eq(b"token", b"token2"));
    }
}
