//! Twilio Programmable Messaging: `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`
//! with HTTP Basic authentication (account SID, auth token) and a form-encoded body (`To`,
//! `From` or `MessagingServiceSid`, `Body`, `StatusCallback`). A created message is `201` with
//! its `sid`; an error is JSON `{code, message, more_info, status}`.
//!
//! Twilio has no idempotency key on message creation: a hand-off retried after a time-out may be
//! sent twice, and nothing on Twilio's side can drop the copy. What we can do is let the status
//! callback name the notification (`?practice=…&key=…`), so a report about an attempt whose
//! `sid` we never recorded still finds its row.
//!
//! Twilio picks the encoding itself from the body (GSM-7 when every character allows it, UCS-2
//! otherwise), exactly as [`analyze`](rappel_domain::sms::analyze) does; `SmartEncoded` is left
//! off so that the text the patient receives is the one we rendered and counted.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::header::CONTENT_TYPE;
use ring::hmac;
use serde::Deserialize;

use super::{
    ConfigError, DeliveryReport, DeliveryStatus, Http, InboundSms, NotificationRef, ReportError,
    Sender, SmsOptions, body_info, form_pairs, param, recipient, redact_numbers,
};
use crate::{OutboundMessage, Receipt, SendFuture, Transport};

/// What [`TwilioSms::new`] needs.
#[derive(Clone)]
pub struct Config {
    /// `https://api.twilio.com` in production.
    pub base_url: String,
    /// `AC` and 32 hexadecimal digits.
    pub account_sid: String,
    pub auth_token: String,
    /// A Twilio number in E.164, an alphanumeric sender ID, or a Messaging Service SID (`MG…`).
    pub from: String,
    /// Where Twilio posts status changes (Rappel's `/v1/webhooks/sms/twilio`); `None` asks for
    /// no reports.
    pub status_callback: Option<String>,
    pub options: SmsOptions,
}

impl Config {
    pub fn new(account_sid: &str, auth_token: &str, from: &str) -> Config {
        Config {
            base_url: "https://api.twilio.com".into(),
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
            from: from.into(),
            status_callback: None,
            options: SmsOptions::default(),
        }
    }
}

impl std::fmt::Debug for Config {
    // The auth token is a credential: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("from", &self.from)
            .field("status_callback", &self.status_callback)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Where a Twilio message comes from.
#[derive(Clone, Debug)]
enum From {
    Sender(Sender),
    /// A Messaging Service picks the number or sender ID itself.
    Service(String),
}

/// SMS through Twilio.
pub struct TwilioSms {
    http: Http,
    messages_url: String,
    account_sid: String,
    auth_token: String,
    from: From,
    status_callback: Option<String>,
}

impl TwilioSms {
    pub fn new(config: Config) -> Result<TwilioSms, ConfigError> {
        if !is_sid(&config.account_sid, "AC") {
            return Err(ConfigError::new(
                "account_sid",
                "a Twilio account SID is AC followed by 32 hexadecimal digits",
            ));
        }
        if config.auth_token.trim().is_empty() {
            return Err(ConfigError::new("auth_token", "the auth token is empty"));
        }
        let from = if config.from.starts_with("MG") && is_sid(&config.from, "MG") {
            From::Service(config.from.clone())
        } else {
            From::Sender(Sender::parse(&config.from).map_err(|e| ConfigError::new("from", e))?)
        };
        let base = checked_url("base_url", &config.base_url)?;
        if let Some(url) = &config.status_callback {
            checked_url("status_callback", url)?;
        }
        Ok(TwilioSms {
            http: Http::new(config.options)?,
            messages_url: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                base.trim_end_matches('/'),
                config.account_sid
            ),
            account_sid: config.account_sid,
            auth_token: config.auth_token,
            from,
            status_callback: config.status_callback,
        })
    }

    async fn deliver(&self, message: &OutboundMessage) -> Result<Receipt, crate::ChannelError> {
        let to = recipient(message)?;
        body_info(message)?;
        let form = {
            // The serializer is not `Send`: it must be gone before the first await.
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("To", to);
            match &self.from {
                From::Sender(sender) => form.append_pair("From", sender.as_str()),
                From::Service(sid) => form.append_pair("MessagingServiceSid", sid),
            };
            form.append_pair("Body", &message.text);
            if let Some(base) = &self.status_callback {
                form.append_pair("StatusCallback", &status_callback_url(base, message));
            }
            form.finish()
        };
        let request = self
            .http
            .client
            .post(&self.messages_url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form);
        let answer = self.http.send("Twilio", request).await?;
        if !answer.status.is_success() {
            return Err(answer.failure("Twilio", error_reason(&answer.body)));
        }
        #[derive(Deserialize)]
        struct Created {
            sid: Option<String>,
        }
        let sid = serde_json::from_slice::<Created>(&answer.body)
            .ok()
            .and_then(|c| c.sid);
        if sid.is_none() {
            // Twilio took the message; retrying would send it twice. Without its sid only the
            // callback's notification key can match a report.
            tracing::warn!(key = %message.id, "Twilio accepted a message but returned no sid");
        }
        Ok(Receipt {
            provider_id: sid,
            cost_cents: None,
        })
    }
}

impl Transport for TwilioSms {
    fn send<'a>(&'a self, message: &'a OutboundMessage) -> SendFuture<'a> {
        Box::pin(self.deliver(message))
    }
}

/// The status callback for one message: the configured URL plus the notification it reports on.
fn status_callback_url(base: &str, message: &OutboundMessage) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("practice", &message.practice_id)
        .append_pair("key", &message.id)
        .finish();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{query}")
}

/// "Twilio error 21211: …" from an error body, digits of numbers masked.
fn error_reason(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct TwilioError {
        code: Option<u64>,
        message: Option<String>,
    }
    let error: TwilioError = serde_json::from_slice(body).ok()?;
    let message = error.message.map(|m| redact_numbers(&m));
    match (error.code, message) {
        (Some(code), Some(message)) => Some(format!("error {code}: {message}")),
        (Some(code), None) => Some(format!("error {code}")),
        (None, message) => message,
    }
}

fn is_sid(text: &str, prefix: &str) -> bool {
    text.len() == 34 && text.starts_with(prefix) && text[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn checked_url(field: &'static str, url: &str) -> Result<String, ConfigError> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(url.to_string()),
        _ => Err(ConfigError::new(
            field,
            format!("`{url}` is not an http:// or https:// URL"),
        )),
    }
}

/// Twilio's request signature (`X-Twilio-Signature`): the base64 HMAC-SHA1, keyed with the auth
/// token, of the full URL Twilio called followed by every POST parameter's name and value,
/// sorted by name.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(hmac::sign(&signing_key(auth_token), &signed_data(url, params)).as_ref())
}

fn signing_key(auth_token: &str) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes())
}

fn signed_data(url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.as_bytes().to_vec();
    for (name, value) in sorted {
        data.extend_from_slice(name.as_bytes());
        data.extend_from_slice(value.as_bytes());
    }
    data
}

/// Checks and reads a status callback: `url` is the full URL Twilio called (our public URL,
/// path and query), `signature` the `X-Twilio-Signature` header, `body` the form it posted.
/// `Ok(None)` for a status that is not final (`queued`, `sent`…).
pub fn report(
    auth_token: &str,
    url: &str,
    signature: Option<&str>,
    body: &[u8],
) -> Result<Option<DeliveryReport>, ReportError> {
    let params = verified_form(auth_token, url, signature, body)?;
    let provider_id = param(&params, "MessageSid")
        .or_else(|| param(&params, "SmsSid"))
        .ok_or_else(|| ReportError::Malformed("no MessageSid".into()))?;
    let status = param(&params, "MessageStatus")
        .or_else(|| param(&params, "SmsStatus"))
        .ok_or_else(|| ReportError::Malformed("no MessageStatus".into()))?;
    let (status, detail) = match status {
        "delivered" | "read" => (DeliveryStatus::Delivered, None),
        "undelivered" | "failed" | "canceled" => {
            let detail = match param(&params, "ErrorCode") {
                Some(code) => format!("twilio error {code} ({status})"),
                None => format!("twilio reported the message {status}"),
            };
            (DeliveryStatus::Failed, Some(detail))
        }
        // accepted, scheduled, queued, sending, sent, receiving, received: not final.
        _ => return Ok(None),
    };
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let query = form_pairs(query.as_bytes());
    let notification = match (param(&query, "practice"), param(&query, "key")) {
        (Some(practice_id), Some(key)) => Some(NotificationRef {
            practice_id: practice_id.to_string(),
            key: key.to_string(),
        }),
        _ => None,
    };
    Ok(Some(DeliveryReport {
        provider: "twilio",
        provider_id: provider_id.to_string(),
        notification,
        status,
        detail,
    }))
}

/// Checks and reads Twilio's incoming message webhook, the request Twilio makes to the
/// number's (or Messaging Service's) "A message comes in" URL, which is
/// `{RAPPEL_PUBLIC_URL}/v1/webhooks/sms/twilio/inbound`:
///
/// ```text
/// POST /v1/webhooks/sms/twilio/inbound
/// Content-Type: application/x-www-form-urlencoded
/// X-Twilio-Signature: <base64 HMAC-SHA1(auth token, URL + sorted name/value pairs)>
///
/// MessageSid=SM…&AccountSid=AC…&From=%2B33612345678&To=%2B33700000000&Body=STOP&NumMedia=0&…
/// ```
///
/// (Twilio, "Messaging webhooks: incoming message", and "Webhooks security" for the signature,
/// the same scheme as the status callbacks [`report`] checks.) Every posted parameter is signed,
/// including the ones Rappel does not read (`FromCity`, `NumSegments`…). `url` is the full URL
/// Twilio called, `signature` the `X-Twilio-Signature` header, `body` the posted form.
pub fn inbound(
    auth_token: &str,
    url: &str,
    signature: Option<&str>,
    body: &[u8],
) -> Result<InboundSms, ReportError> {
    let params = verified_form(auth_token, url, signature, body)?;
    let provider_message_id = param(&params, "MessageSid")
        .or_else(|| param(&params, "SmsMessageSid"))
        .or_else(|| param(&params, "SmsSid"))
        .ok_or_else(|| ReportError::Malformed("no MessageSid".into()))?;
    let from = param(&params, "From").ok_or_else(|| ReportError::Malformed("no From".into()))?;
    Ok(InboundSms {
        provider: "twilio",
        provider_message_id: provider_message_id.to_string(),
        from: from.to_string(),
        to: param(&params, "To").map(str::to_string),
        // A message with only a picture has no Body: it is an empty text.
        text: param(&params, "Body").unwrap_or_default().to_string(),
    })
}

/// The posted form, once `X-Twilio-Signature` proves Twilio sent it for this URL.
fn verified_form(
    auth_token: &str,
    url: &str,
    signature: Option<&str>,
    body: &[u8],
) -> Result<Vec<(String, String)>, ReportError> {
    let signature =
        signature.ok_or(ReportError::Unauthenticated("no X-Twilio-Signature header"))?;
    let params = form_pairs(body);
    let tag = BASE64
        .decode(signature.trim())
        .map_err(|_| ReportError::Unauthenticated("X-Twilio-Signature is not base64"))?;
    // ring compares in constant time.
    hmac::verify(&signing_key(auth_token), &signed_data(url, &params), &tag)
        .map_err(|_| ReportError::Unauthenticated("X-Twilio-Signature does not match"))?;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_signature_matches_twilios_published_example() {
        // From Twilio's request-validation documentation and helper-library tests.
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ]);
        assert_eq!(
            signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "GvWf1cFY/Q7PnoempGyD5oXAezc="
        );
    }

    fn callback(status: &str, extra: &[(&str, &str)]) -> (String, Vec<u8>, String) {
        let url = "https://rappel.example/v1/webhooks/sms/twilio?practice=p1&key=a%3A1%2Fr";
        let mut params = pairs(&[
            ("MessageSid", "SM0123"),
            ("MessageStatus", status),
            ("AccountSid", "AC0123"),
        ]);
        params.extend(pairs(extra));
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        let sig = signature("token", url, &params);
        (url.to_string(), body.into_bytes(), sig)
    }

    #[test]
    fn a_signed_delivered_callback_is_a_delivery_naming_the_notification() {
        let (url, body, sig) = callback("delivered", &[]);
        let report = report("token", &url, Some(&sig), &body).unwrap().unwrap();
        assert_eq!(report.provider_id, "SM0123");
        assert_eq!(report.status, DeliveryStatus::Delivered);
        assert_eq!(
            report.notification,
            Some(NotificationRef {
                practice_id: "p1".into(),
                key: "a:1/r".into()
            })
        );
    }

    #[test]
    fn an_undelivered_callback_is_a_failure_with_twilios_error_code() {
        let (url, body, sig) = callback("undelivered", &[("ErrorCode", "30003")]);
        let report = report("token", &url, Some(&sig), &body).unwrap().unwrap();
        assert_eq!(report.status, DeliveryStatus::Failed);
        assert_eq!(
            report.detail.as_deref(),
            Some("twilio error 30003 (undelivered)")
        );
    }

    #[test]
    fn intermediate_statuses_are_not_reports() {
        let (url, body, sig) = callback("sent", &[]);
        assert_eq!(report("token", &url, Some(&sig), &body), Ok(None));
    }

    #[test]
    fn a_callback_with_a_wrong_or_missing_signature_is_refused() {
        let (url, body, sig) = callback("delivered", &[]);
        assert!(matches!(
            report("other token", &url, Some(&sig), &body),
            Err(ReportError::Unauthenticated(_))
        ));
        assert!(matches!(
            report("token", &url, None, &body),
            Err(ReportError::Unauthenticated(_))
        ));
        let tampered = String::from_utf8(body).unwrap().replace("SM0123", "SM9999");
        assert!(matches!(
            report("token", &url, Some(&sig), tampered.as_bytes()),
            Err(ReportError::Unauthenticated(_))
        ));
        let other_url = url.replace("key=a", "key=b");
        assert!(matches!(
            report("token", &other_url, Some(&sig), tampered.as_bytes()),
            Err(ReportError::Unauthenticated(_))
        ));
    }

    #[test]
    fn a_signed_incoming_message_is_read_and_a_forged_one_refused() {
        let url = "https://rappel.example/v1/webhooks/sms/twilio/inbound";
        let params = pairs(&[
            ("MessageSid", "SM11111111111111111111111111111111"),
            ("AccountSid", "AC0123"),
            ("From", "+33612345678"),
            ("To", "+33700000000"),
            ("Body", "Arrêt"),
            ("NumMedia", "0"),
        ]);
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        let sig = signature("token", url, &params);
        let sms = inbound("token", url, Some(&sig), body.as_bytes()).unwrap();
        assert_eq!(sms.provider, "twilio");
        assert_eq!(sms.from, "+33612345678");
        assert_eq!(sms.to.as_deref(), Some("+33700000000"));
        assert_eq!(sms.text, "Arrêt");
        assert!(
            !format!("{sms:?}").contains("3361"),
            "Debug hides the number"
        );
        let forged = body.replace("Arr%C3%AAt", "OUI");
        assert!(matches!(
            inbound("token", url, Some(&sig), forged.as_bytes()),
            Err(ReportError::Unauthenticated(_))
        ));
        assert!(matches!(
            inbound("token", url, None, body.as_bytes()),
            Err(ReportError::Unauthenticated(_))
        ));
    }
}
