//! A practice's own SMS gateway, reached by a signed webhook: `POST {url}` with the JSON body
//! `{id, to, text, sender, encoding, segments}`, signed per the Standard Webhooks scheme
//! (<https://www.standardwebhooks.com>): headers `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, the key given as
//! `whsec_<base64>`. 2xx is accepted; 4xx refused (see the classification in [`super`]); 429 and
//! 5xx retried.
//!
//! This is the one SMS way out with an idempotency key: `webhook-id` (and the body's `id`) is a
//! digest of the notification, the same for every attempt, which is exactly what the scheme
//! tells receivers to deduplicate on. It is also the message's `provider_id`, so the gateway's
//! delivery reports, `{id, status}` signed the same way, find their notification.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use jiff::{SignedDuration, Timestamp};
use rappel_domain::sms::SmsEncoding;
use reqwest::header::CONTENT_TYPE;
use ring::hmac;
use serde::Deserialize;
use serde_json::json;

use super::{
    ConfigError, DeliveryReport, DeliveryStatus, Http, InboundSms, ReportError, Sender, SmsOptions,
    body_info, message_ref, recipient, redact_numbers,
};
use crate::{ChannelError, OutboundMessage, Receipt, SendFuture, Transport};

/// How far a report's `webhook-timestamp` may be from our clock: the scheme's replay window.
const TOLERANCE: SignedDuration = SignedDuration::from_mins(5);

/// A Standard Webhooks signing key, from its `whsec_<base64>` form.
#[derive(Clone)]
pub struct SigningKey(hmac::Key);

impl SigningKey {
    pub fn parse(secret: &str) -> Result<SigningKey, String> {
        let encoded = secret
            .strip_prefix("whsec_")
            .ok_or_else(|| "expected whsec_ followed by the base64 key".to_string())?;
        let bytes = BASE64
            .decode(encoded)
            .map_err(|_| "the part after whsec_ is not base64".to_string())?;
        // The scheme asks for 24 to 64 random bytes; fewer would be guessable.
        if bytes.len() < 16 {
            return Err(format!(
                "the key is {} bytes long; use at least 24 random bytes",
                bytes.len()
            ));
        }
        Ok(SigningKey(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    /// The `webhook-signature` value (`v1,<base64>`) of a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = hmac::sign(&self.0, &signed_content(id, timestamp, body));
        format!("v1,{}", BASE64.encode(tag.as_ref()))
    }

    /// Whether one of the space-separated `v1,` signatures of `header` signs this message.
    fn verifies(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        let content = signed_content(id, timestamp, body);
        header.split_whitespace().any(|candidate| {
            candidate
                .strip_prefix("v1,")
                .and_then(|b64| BASE64.decode(b64).ok())
                .is_some_and(|tag| hmac::verify(&self.0, &content, &tag).is_ok())
        })
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(…)")
    }
}

fn signed_content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    content
}

/// What [`WebhookSms::new`] needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub url: String,
    pub key: SigningKey,
    /// The sender the gateway should use: a sender ID or a number.
    pub sender: String,
    pub options: SmsOptions,
}

/// SMS through a practice's own gateway.
pub struct WebhookSms {
    http: Http,
    url: String,
    key: SigningKey,
    sender: Sender,
}

impl WebhookSms {
    pub fn new(config: Config) -> Result<WebhookSms, ConfigError> {
        match reqwest::Url::parse(&config.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => {
                return Err(ConfigError::new(
                    "url",
                    format!("`{}` is not an http:// or https:// URL", config.url),
                ));
            }
        }
        let sender = Sender::parse(&config.sender).map_err(|e| ConfigError::new("sender", e))?;
        Ok(WebhookSms {
            http: Http::new(config.options)?,
            url: config.url,
            key: config.key,
            sender,
        })
    }

    async fn deliver(&self, message: &OutboundMessage) -> Result<Receipt, ChannelError> {
        let to = recipient(message)?;
        let info = body_info(message)?;
        let id = format!("msg_{}", message_ref(message));
        let body = json!({
            "id": id,
            "to": to,
            "text": message.text,
            "sender": self.sender.as_str(),
            "encoding": match info.encoding {
                SmsEncoding::Gsm7 => "gsm7",
                SmsEncoding::Ucs2 => "ucs2",
            },
            "segments": info.segments,
        })
        .to_string();
        // A fresh timestamp and signature for each attempt, the same id: as the scheme says.
        let timestamp = Timestamp::now().as_second();
        let request = self
            .http
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                self.key.sign(&id, timestamp, body.as_bytes()),
            )
            .body(body);
        let answer = self.http.send("the SMS gateway", request).await?;
        if !answer.status.is_success() {
            let reason = std::str::from_utf8(&answer.body)
                .ok()
                .map(|text| text.trim().chars().take(300).collect::<String>())
                .filter(|text| !text.is_empty())
                .map(|text| redact_numbers(&text));
            return Err(answer.failure("the SMS gateway", reason));
        }
        Ok(Receipt::with_id(id))
    }
}

impl Transport for WebhookSms {
    fn send<'a>(&'a self, message: &'a OutboundMessage) -> SendFuture<'a> {
        Box::pin(self.deliver(message))
    }
}

/// The headers of a Standard Webhooks request, as received.
#[derive(Clone, Copy, Debug, Default)]
pub struct SignedHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Checks and reads a delivery report from the gateway: a JSON body `{"id", "status", "error"?}`
/// signed like our requests, within five minutes of `now`. `status` is `delivered` or
/// `failed`/`undelivered`; any other (`queued`, `sent`…) is not final and gives `Ok(None)`.
pub fn report(
    key: &SigningKey,
    headers: SignedHeaders<'_>,
    body: &[u8],
    now: Timestamp,
) -> Result<Option<DeliveryReport>, ReportError> {
    verify(key, headers, body, now)?;

    #[derive(Deserialize)]
    struct Report {
        id: String,
        status: String,
        error: Option<String>,
    }
    let report: Report = serde_json::from_slice(body)
        .map_err(|e| ReportError::Malformed(format!("expected {{\"id\", \"status\"}}: {e}")))?;
    let status = match report.status.as_str() {
        "delivered" => DeliveryStatus::Delivered,
        "failed" | "undelivered" => DeliveryStatus::Failed,
        _ => return Ok(None),
    };
    let detail = (status == DeliveryStatus::Failed).then(|| match report.error {
        Some(error) => format!("gateway: {}", redact_numbers(&error)),
        None => format!("the gateway reported the message {}", report.status),
    });
    Ok(Some(DeliveryReport {
        provider: "webhook",
        provider_id: report.id,
        notification: None,
        status,
        detail,
    }))
}

/// Checks a Standard Webhooks signature (`webhook-id`, `webhook-timestamp` within five minutes
/// of `now`, `webhook-signature`) over `body`.
fn verify(
    key: &SigningKey,
    headers: SignedHeaders<'_>,
    body: &[u8],
    now: Timestamp,
) -> Result<(), ReportError> {
    let (Some(id), Some(timestamp), Some(signature)) =
        (headers.id, headers.timestamp, headers.signature)
    else {
        return Err(ReportError::Unauthenticated(
            "webhook-id, webhook-timestamp and webhook-signature are required",
        ));
    };
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| ReportError::Unauthenticated("webhook-timestamp is not a number"))?;
    let sent = Timestamp::from_second(timestamp)
        .map_err(|_| ReportError::Unauthenticated("webhook-timestamp is out of range"))?;
    if sent.duration_since(now).abs() > TOLERANCE {
        return Err(ReportError::Unauthenticated(
            "webhook-timestamp is more than five minutes away",
        ));
    }
    if !key.verifies(id, timestamp, body, signature) {
        return Err(ReportError::Unauthenticated(
            "webhook-signature does not match",
        ));
    }

    Ok(())
}

/// Checks and reads an SMS a patient sent back, as the practice's gateway posts it to
/// `{RAPPEL_PUBLIC_URL}/v1/webhooks/sms/webhook/inbound`, signed like its delivery reports
/// (Standard Webhooks, the same `whsec_` key, five minutes of tolerance):
///
/// ```text
/// POST /v1/webhooks/sms/webhook/inbound
/// Content-Type: application/json
/// webhook-id: msg_2Kx…            (unique per incoming message; a repeat is answered once)
/// webhook-timestamp: 1764871331
/// webhook-signature: v1,<base64 HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>
///
/// {"id": "in_8f2c", "from": "+33612345678", "to": "+33700000000", "text": "STOP"}
/// ```
///
/// `id` (the gateway's id of the incoming message) may be left out, then `webhook-id` is used;
/// `from` is the patient's number in E.164; `to` (our number) is optional; `text` is the body,
/// UTF-8.
pub fn inbound(
    key: &SigningKey,
    headers: SignedHeaders<'_>,
    body: &[u8],
    now: Timestamp,
) -> Result<InboundSms, ReportError> {
    verify(key, headers, body, now)?;
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inbound {
        id: Option<String>,
        from: String,
        to: Option<String>,
        text: String,
    }
    let parsed: Inbound = serde_json::from_slice(body).map_err(|e| {
        ReportError::Malformed(format!(
            "expected {{\"from\", \"text\", \"id\"?, \"to\"?}}: {e}"
        ))
    })?;
    let id = parsed
        .id
        .or_else(|| headers.id.map(str::to_string))
        .unwrap_or_default();
    Ok(InboundSms {
        provider: "webhook",
        provider_message_id: id,
        from: parsed.from,
        to: parsed.to,
        text: parsed.text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn the_signature_matches_the_standard_webhooks_test_vector() {
        let key = SigningKey::parse(SECRET).unwrap();
        assert_eq!(
            key.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn keys_must_be_whsec_and_base64() {
        assert!(SigningKey::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(SigningKey::parse("whsec_not base64!").is_err());
        assert!(SigningKey::parse("whsec_c2hvcnQ=").is_err(), "5 bytes");
    }

    fn signed(body: &str, at: i64) -> (String, String, String) {
        let key = SigningKey::parse(SECRET).unwrap();
        let id = "evt_1".to_string();
        let signature = key.sign(&id, at, body.as_bytes());
        (id, at.to_string(), signature)
    }

    #[test]
    fn a_signed_report_within_five_minutes_is_read() {
        let key = SigningKey::parse(SECRET).unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let body = r#"{"id":"msg_abc","status":"failed","error":"absent subscriber"}"#;
        let (id, ts, sig) = signed(body, 1_800_000_100);
        let headers = SignedHeaders {
            id: Some(&id),
            timestamp: Some(&ts),
            signature: Some(&format!("v1,bm9wZQ== {sig}")),
        };
        let report = report(&key, headers, body.as_bytes(), now)
            .unwrap()
            .unwrap();
        assert_eq!(report.provider_id, "msg_abc");
        assert_eq!(report.status, DeliveryStatus::Failed);
        assert_eq!(report.detail.as_deref(), Some("gateway: absent subscriber"));
    }

    #[test]
    fn an_old_unsigned_or_tampered_report_is_refused() {
        let key = SigningKey::parse(SECRET).unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let body = r#"{"id":"msg_abc","status":"delivered"}"#;
        let (id, ts, sig) = signed(body, 1_800_000_000 - 301);
        let old = SignedHeaders {
            id: Some(&id),
            timestamp: Some(&ts),
            signature: Some(&sig),
        };
        assert!(matches!(
            report(&key, old, body.as_bytes(), now),
            Err(ReportError::Unauthenticated(_))
        ));
        let (id, ts, sig) = signed(body, 1_800_000_000);
        let fresh = SignedHeaders {
            id: Some(&id),
            timestamp: Some(&ts),
            signature: Some(&sig),
        };
        assert!(report(&key, fresh, body.as_bytes(), now).is_ok());
        let tampered = body.replace("msg_abc", "msg_abd");
        assert!(matches!(
            report(&key, fresh, tampered.as_bytes(), now),
            Err(ReportError::Unauthenticated(_))
        ));
        assert!(matches!(
            report(&key, SignedHeaders::default(), body.as_bytes(), now),
            Err(ReportError::Unauthenticated(_))
        ));
    }

    #[test]
    fn a_signed_inbound_post_is_read_and_a_forged_or_stale_one_refused() {
        let key = SigningKey::parse(SECRET).unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let body = r#"{"id":"in_1","from":"+33612345678","text":"Annuler"}"#;
        let (id, ts, sig) = signed(body, 1_800_000_010);
        let headers = SignedHeaders {
            id: Some(&id),
            timestamp: Some(&ts),
            signature: Some(&sig),
        };
        let sms = inbound(&key, headers, body.as_bytes(), now).unwrap();
        assert_eq!(sms.provider_message_id, "in_1");
        assert_eq!(sms.text, "Annuler");
        assert!(matches!(
            inbound(
                &key,
                headers,
                body.replace("Annuler", "OUI").as_bytes(),
                now
            ),
            Err(ReportError::Unauthenticated(_))
        ));
        let later = Timestamp::from_second(1_800_000_400).unwrap();
        assert!(matches!(
            inbound(&key, headers, body.as_bytes(), later),
            Err(ReportError::Unauthenticated(_))
        ));
        let bad = r#"{"from":"+33612345678"}"#;
        let (id, ts, sig) = signed(bad, 1_800_000_000);
        let headers = SignedHeaders {
            id: Some(&id),
            timestamp: Some(&ts),
            signature: Some(&sig),
        };
        assert!(matches!(
            inbound(&key, headers, bad.as_bytes(), now),
            Err(ReportError::Malformed(_))
        ));
    }
}
