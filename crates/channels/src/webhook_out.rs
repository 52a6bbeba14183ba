//! Outbound webhooks to the practice software: one signed `POST` per event, per the Standard
//! Webhooks scheme (<https://www.standardwebhooks.com>) — the very signing of the SMS gateway
//! ([`crate::sms::webhook::SigningKey`]): headers `webhook-id` (the event id, the same on every
//! attempt, for the receiver to drop repeats), `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
//!
//! The answer is classified here, once: 2xx delivered; 408, 429, 5xx, timeouts and connection
//! failures are worth retrying; any other status is refused for good (the receiver answered and
//! said no: a wrong URL, a key it does not know). Retrying and giving up are the engine's.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};

use crate::ChannelError;
use crate::net_guard::{self, NetPolicy};
use crate::sms::webhook::SigningKey;

/// The HTTP client of outbound webhooks; cheap to clone.
#[derive(Clone, Debug)]
pub struct WebhookClient {
    client: reqwest::Client,
    policy: NetPolicy,
}

impl Default for WebhookClient {
    fn default() -> WebhookClient {
        WebhookClient::new(Duration::from_secs(10), NetPolicy::default())
    }
}

impl WebhookClient {
    /// A client that connects only where `policy` permits ([`crate::net_guard`]).
    pub fn new(timeout: Duration, policy: NetPolicy) -> WebhookClient {
        let client = net_guard::client_builder(policy)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .expect("a client with rustls and no custom settings builds");
        WebhookClient { client, policy }
    }

    /// Posts one event, signed with `key` at `timestamp` (seconds since the epoch).
    pub async fn post(
        &self,
        url: &str,
        key: &SigningKey,
        id: &str,
        timestamp: i64,
        body: &str,
    ) -> Result<(), ChannelError> {
        // Checked again at each attempt: the operator's policy may have changed since the URL
        // was registered, and reqwest does not pass an IP literal to the guarded resolver.
        let url = net_guard::check_url(url, &self.policy)
            .map_err(|refusal| ChannelError::Permanent(format!("the webhook URL: {refusal}")))?;
        let request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, "Rappel-Webhooks/1")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                key.sign(id, timestamp, body.as_bytes()),
            )
            .body(body.to_string());
        let response = request.send().await.map_err(|error| {
            // Refused or unreachable, and no more: a cause such as "connection refused" would
            // tell a practice which ports are open on the receiver's host.
            let reason = net_guard::failure_text(&error, "the webhook receiver");
            if net_guard::is_refusal(&error) {
                ChannelError::Permanent(reason)
            } else {
                ChannelError::Transient {
                    reason,
                    retry_after: None,
                }
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(SignedDuration::from_secs);
        Err(classify(status, retry_after))
    }
}

/// What a non-2xx answer means for the next attempt.
pub fn classify(status: StatusCode, retry_after: Option<SignedDuration>) -> ChannelError {
    let reason = format!("the webhook receiver answered HTTP {}", status.as_u16());
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        ChannelError::Transient {
            reason,
            retry_after,
        }
    } else {
        ChannelError::Permanent(reason)
    }
}

/// A new Standard Webhooks key, `whsec_<base64>`, from random bytes the caller drew.
pub fn secret_from_bytes(bytes: &[u8]) -> String {
    use base64::Engine as _;
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The current time as a `webhook-timestamp` (the receiver checks it against its own clock, so
/// this is the real clock, not the engine's simulated one).
pub fn timestamp_now() -> i64 {
    Timestamp::now().as_second()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_and_throttling_are_retried_other_refusals_are_not() {
        assert!(classify(StatusCode::INTERNAL_SERVER_ERROR, None).is_retryable());
        assert!(classify(StatusCode::SERVICE_UNAVAILABLE, None).is_retryable());
        assert!(classify(StatusCode::TOO_MANY_REQUESTS, None).is_retryable());
        assert!(classify(StatusCode::REQUEST_TIMEOUT, None).is_retryable());
        assert!(!classify(StatusCode::NOT_FOUND, None).is_retryable());
        assert!(!classify(StatusCode::UNAUTHORIZED, None).is_retryable());
        assert!(!classify(StatusCode::GONE, None).is_retryable());
    }
}
