//! OVHcloud's SMS API: `POST {base}/1.0/sms/{serviceName}/jobs`, signed with OVH's application
//! key scheme — headers `X-Ovh-Application`, `X-Ovh-Consumer`, `X-Ovh-Timestamp` and
//! `X-Ovh-Signature = "$1$" + hex(SHA1(AS + "+" + CK + "+" + METHOD + "+" + URL + "+" + BODY +
//! "+" + TIMESTAMP))`. The body is JSON (`message`, `receivers`, `sender`, `noStopClause`,
//! `coding`, `charset`, `tag`); the answer lists the created `ids` and the `invalidReceivers`.
//!
//! OVH has no idempotency key on jobs either: a retry after a time-out may send twice. The `tag`
//! is a short digest of the notification, the same for every attempt, so that the copies can be
//! found in OVH's console and `GET /sms/{service}/outgoing?tag=…`.
//!
//! Delivery reports: OVH calls the SMS account's callback URL (a setting of the account, not of
//! the job) with `id`, `ptt`, `date`, `description` (the DLR state) and `descriptionDlr` in the
//! query string. Those calls are not signed, so the URL registered with OVH carries a secret
//! token (`?token=…`) that [`report`] compares in constant time.
//!
//! The timestamp comes from this machine's clock; OVH refuses requests more than a few minutes
//! off its own time, so the host needs NTP (the `GET /auth/time` offset dance is not done).

use rappel_domain::sms::SmsEncoding;
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::json;

use super::{
    ConfigError, DeliveryReport, DeliveryStatus, Http, InboundSms, ReportError, Sender, SmsOptions,
    body_info, constant_time_eq, form_pairs, message_ref, param, recipient, redact_numbers, to_hex,
};
use crate::{ChannelError, OutboundMessage, Receipt, SendFuture, Transport};

/// What [`OvhSms::new`] needs.
#[derive(Clone)]
pub struct Config {
    /// `https://eu.api.ovh.com` for OVHcloud Europe.
    pub base_url: String,
    pub application_key: String,
    pub application_secret: String,
    pub consumer_key: String,
    /// The SMS account, `sms-ab12345-1`.
    pub service_name: String,
    /// A sender declared (and approved) on the SMS account: a sender ID or a number.
    pub sender: String,
    pub options: SmsOptions,
}

impl Config {
    pub fn new(
        application_key: &str,
        application_secret: &str,
        consumer_key: &str,
        service_name: &str,
        sender: &str,
    ) -> Config {
        Config {
            base_url: "https://eu.api.ovh.com".into(),
            application_key: application_key.into(),
            application_secret: application_secret.into(),
            consumer_key: consumer_key.into(),
            service_name: service_name.into(),
            sender: sender.into(),
            options: SmsOptions::default(),
        }
    }
}

impl std::fmt::Debug for Config {
    // The application secret and the consumer key are credentials: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &self.base_url)
            .field("application_key", &self.application_key)
            .field("service_name", &self.service_name)
            .field("sender", &self.sender)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// SMS through OVHcloud.
pub struct OvhSms {
    http: Http,
    jobs_url: String,
    application_key: String,
    application_secret: String,
    consumer_key: String,
    sender: Sender,
}

impl OvhSms {
    pub fn new(config: Config) -> Result<OvhSms, ConfigError> {
        for (field, value) in [
            ("application_key", &config.application_key),
            ("application_secret", &config.application_secret),
            ("consumer_key", &config.consumer_key),
        ] {
            if value.trim().is_empty() {
                return Err(ConfigError::new(field, "is empty"));
            }
        }
        // It becomes a path segment: only what OVH's account names are made of.
        if config.service_name.is_empty()
            || !config
                .service_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(ConfigError::new(
                "service_name",
                "expected the SMS account's name, such as sms-ab12345-1",
            ));
        }
        let sender = Sender::parse(&config.sender).map_err(|e| ConfigError::new("sender", e))?;
        let base = match reqwest::Url::parse(&config.base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => config.base_url.clone(),
            _ => {
                return Err(ConfigError::new(
                    "base_url",
                    format!("`{}` is not an http:// or https:// URL", config.base_url),
                ));
            }
        };
        Ok(OvhSms {
            http: Http::new(config.options)?,
            jobs_url: format!(
                "{}/1.0/sms/{}/jobs",
                base.trim_end_matches('/'),
                config.service_name
            ),
            application_key: config.application_key,
            application_secret: config.application_secret,
            consumer_key: config.consumer_key,
            sender,
        })
    }

    async fn deliver(&self, message: &OutboundMessage) -> Result<Receipt, ChannelError> {
        let to = recipient(message)?;
        let info = body_info(message)?;
        let body = json!({
            "message": message.text,
            "receivers": [to],
            "sender": self.sender.as_str(),
            // Reminders are transactional, not marketing: no "STOP" mention to append.
            "noStopClause": true,
            "coding": match info.encoding {
                SmsEncoding::Gsm7 => "7bit",
                SmsEncoding::Ucs2 => "8bit",
            },
            "charset": "UTF-8",
            "tag": &message_ref(message)[..20],
        })
        .to_string();
        let timestamp = jiff::Timestamp::now().as_second();
        let request = self
            .http
            .client
            .post(&self.jobs_url)
            .header(CONTENT_TYPE, "application/json")
            .header("X-Ovh-Application", &self.application_key)
            .header("X-Ovh-Consumer", &self.consumer_key)
            .header("X-Ovh-Timestamp", timestamp.to_string())
            .header(
                "X-Ovh-Signature",
                signature(
                    &self.application_secret,
                    &self.consumer_key,
                    "POST",
                    &self.jobs_url,
                    &body,
                    timestamp,
                ),
            )
            .body(body);
        let answer = self.http.send("OVH", request).await?;
        if !answer.status.is_success() {
            let reason = error_reason(&answer.body).map(|reason| {
                match answer
                    .headers
                    .get("X-Ovh-QueryId")
                    .and_then(|v| v.to_str().ok())
                {
                    Some(query) => format!("{reason} (query {query})"),
                    None => reason,
                }
            });
            return Err(answer.failure("OVH", reason));
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Job {
            #[serde(default)]
            ids: Vec<serde_json::Value>,
            #[serde(default)]
            invalid_receivers: Vec<serde_json::Value>,
        }
        let job: Job = serde_json::from_slice(&answer.body).map_err(|e| {
            // OVH took the job (2xx): retrying could send twice, so this is not transient.
            ChannelError::Permanent(format!("OVH answered 2xx with an unreadable job: {e}"))
        })?;
        if !job.invalid_receivers.is_empty() {
            return Err(ChannelError::Permanent(
                "OVH refused the recipient's number as invalid".into(),
            ));
        }
        let Some(id) = job.ids.first() else {
            return Err(ChannelError::Permanent(
                "OVH created no message for the recipient".into(),
            ));
        };
        let id = match id {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        Ok(Receipt::with_id(id))
    }
}

impl Transport for OvhSms {
    fn send<'a>(&'a self, message: &'a OutboundMessage) -> SendFuture<'a> {
        Box::pin(self.deliver(message))
    }
}

/// OVH's request signature: `$1$` and the hexadecimal SHA-1 of the application secret, consumer
/// key, method, full URL, body and timestamp joined with `+`.
pub fn signature(
    application_secret: &str,
    consumer_key: &str,
    method: &str,
    url: &str,
    body: &str,
    timestamp: i64,
) -> String {
    let signed = format!("{application_secret}+{consumer_key}+{method}+{url}+{body}+{timestamp}");
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, signed.as_bytes());
    format!("$1${}", to_hex(digest.as_ref()))
}

fn error_reason(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct OvhError {
        message: Option<String>,
    }
    let error: OvhError = serde_json::from_slice(body).ok()?;
    error.message.map(|m| redact_numbers(&m))
}

/// Checks and reads a delivery report OVH sent to the callback URL: `token` is the secret the
/// registered URL carries, `query` the query string OVH called (a form body, if any, is read
/// too). `Ok(None)` for a state that is not final.
///
/// The DLR state (`description`, `dlr` in OVH's older callbacks) decides: 1 delivered; 2 failed;
/// 16 refused (not billed); 0, 4 and 8 pending. Without it, the `ptt` code does: 4 delivered;
/// 1, 2 and 3 pending; any other a failure.
pub fn report(
    token: &str,
    query: &str,
    body: &[u8],
) -> Result<Option<DeliveryReport>, ReportError> {
    let mut params = form_pairs(query.as_bytes());
    params.extend(form_pairs(body));
    let given =
        param(&params, "token").ok_or(ReportError::Unauthenticated("no token in the URL"))?;
    if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
        return Err(ReportError::Unauthenticated("wrong token"));
    }
    let provider_id = param(&params, "id").ok_or_else(|| ReportError::Malformed("no id".into()))?;
    let ptt = param(&params, "ptt");
    let dlr = param(&params, "description").or_else(|| param(&params, "dlr"));
    let status = match (dlr, ptt) {
        (Some("1"), _) => Some(DeliveryStatus::Delivered),
        (Some("2" | "16"), _) => Some(DeliveryStatus::Failed),
        (Some("0" | "4" | "8"), _) => None,
        (Some(other), _) => {
            return Err(ReportError::Malformed(format!(
                "unknown DLR state `{other}`"
            )));
        }
        (None, Some("4")) => Some(DeliveryStatus::Delivered),
        (None, Some("1" | "2" | "3")) => None,
        (None, Some(_)) => Some(DeliveryStatus::Failed),
        (None, None) => return Err(ReportError::Malformed("no description nor ptt".into())),
    };
    let Some(status) = status else {
        return Ok(None);
    };
    let detail = (status == DeliveryStatus::Failed).then(|| {
        let text = param(&params, "descriptionDlr").map(redact_numbers);
        match (ptt, text) {
            (Some(ptt), Some(text)) => format!("ovh ptt {ptt}: {text}"),
            (Some(ptt), None) => format!("ovh ptt {ptt}"),
            (None, Some(text)) => format!("ovh: {text}"),
            (None, None) => "ovh reported the message undelivered".to_string(),
        }
    });
    Ok(Some(DeliveryReport {
        provider: "ovh",
        provider_id: provider_id.to_string(),
        notification: None,
        status,
        detail,
    }))
}

/// Checks and reads an incoming SMS from OVHcloud's reply callback: the URL set as the SMS
/// account's callback for answers (« SMS réponses », `smsResponse` of
/// `PUT /sms/{serviceName}` with `responseType: cgi`, or a virtual number's `callBack`), which is
/// `{RAPPEL_PUBLIC_URL}/v1/webhooks/sms/ovh/inbound?token=SECRET`. OVH calls it with `GET` and
/// these query parameters (a form-encoded `POST` body is read the same way):
///
/// ```text
/// GET /v1/webhooks/sms/ovh/inbound?token=SECRET&id=12345678&senderid=%2B33612345678
///     &message=STOP&date=2026-12-04+18%3A02%3A11&receiver=%2B33700000000
/// ```
///
/// `id` is OVH's id of the incoming message, `senderid` the patient's number (E.164, or
/// `0033…` in older accounts), `message` the text, `date` when OVH received it; `receiver` (or
/// `to`) our number when given. Like delivery reports, nothing is signed: the secret token of
/// the registered URL is what proves the call (compared in constant time).
pub fn inbound(token: &str, query: &str, body: &[u8]) -> Result<InboundSms, ReportError> {
    let mut params = form_pairs(query.as_bytes());
    params.extend(form_pairs(body));
    let given =
        param(&params, "token").ok_or(ReportError::Unauthenticated("no token in the URL"))?;
    if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
        return Err(ReportError::Unauthenticated("wrong token"));
    }
    let id = param(&params, "id").ok_or_else(|| ReportError::Malformed("no id".into()))?;
    let from = param(&params, "senderid")
        .or_else(|| param(&params, "sender"))
        .ok_or_else(|| ReportError::Malformed("no senderid".into()))?;
    Ok(InboundSms {
        provider: "ovh",
        provider_message_id: id.to_string(),
        from: from.to_string(),
        to: param(&params, "receiver")
            .or_else(|| param(&params, "to"))
            .map(str::to_string),
        text: param(&params, "message").unwrap_or_default().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_dollar_one_and_the_sha1_of_the_joined_parts() {
        // SHA-1("AS+CK+GET+https://eu.api.ovh.com/1.0/me++1366560945"), computed independently.
        let expected = to_hex(
            ring::digest::digest(
                &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
                b"AS+CK+GET+https://eu.api.ovh.com/1.0/me++1366560945",
            )
            .as_ref(),
        );
        assert_eq!(
            signature(
                "AS",
                "CK",
                "GET",
                "https://eu.api.ovh.com/1.0/me",
                "",
                1366560945
            ),
            format!("$1${expected}")
        );
        assert_eq!(expected.len(), 40);
    }

    #[test]
    fn a_report_with_the_right_token_maps_the_dlr_state() {
        let delivered = report("s3cret", "token=s3cret&id=123&ptt=4&description=1", b"")
            .unwrap()
            .unwrap();
        assert_eq!(delivered.provider_id, "123");
        assert_eq!(delivered.status, DeliveryStatus::Delivered);
        let failed = report(
            "s3cret",
            "token=s3cret&id=124&ptt=23&description=2&descriptionDlr=Invalid+MSISDN",
            b"",
        )
        .unwrap()
        .unwrap();
        assert_eq!(failed.status, DeliveryStatus::Failed);
        assert_eq!(failed.detail.as_deref(), Some("ovh ptt 23: Invalid MSISDN"));
        assert_eq!(
            report("s3cret", "token=s3cret&id=125&ptt=3&description=8", b""),
            Ok(None)
        );
        let old_style = report("s3cret", "token=s3cret&id=126&dlr=16", b"")
            .unwrap()
            .unwrap();
        assert_eq!(old_style.status, DeliveryStatus::Failed);
    }

    #[test]
    fn a_report_without_the_right_token_is_refused() {
        assert_eq!(
            report("s3cret", "id=123&description=1", b""),
            Err(ReportError::Unauthenticated("no token in the URL"))
        );
        assert_eq!(
            report("s3cret", "token=guess&id=123&description=1", b""),
            Err(ReportError::Unauthenticated("wrong token"))
        );
    }

    #[test]
    fn an_incoming_sms_with_the_right_token_is_read_and_without_it_refused() {
        let query = "token=s3cret&id=987&senderid=0033612345678&message=Oui+merci&date=2026-12-04+18%3A02%3A11";
        let sms = inbound("s3cret", query, b"").unwrap();
        assert_eq!(sms.provider, "ovh");
        assert_eq!(sms.provider_message_id, "987");
        assert_eq!(sms.from_e164(), "+33612345678");
        assert_eq!(sms.text, "Oui merci");
        assert_eq!(
            inbound("s3cret", &query.replace("s3cret", "guess"), b""),
            Err(ReportError::Unauthenticated("wrong token"))
        );
        assert_eq!(
            inbound("s3cret", "id=987&senderid=0033612345678&message=STOP", b""),
            Err(ReportError::Unauthenticated("no token in the URL"))
        );
    }
}
