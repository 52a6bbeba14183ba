//! Outbound webhooks: the practice software is told when a notification is sent, delivered,
//! failed or not sent (`notification.sent|delivered|failed|suppressed`), and of the patient's
//! answers (`appointment.confirmed_by_patient`, `appointment.cancel_requested`: see
//! [`crate::answers`], which queues them through [`queue_event`]).
//!
//! An event is queued in the transaction that records the status it reports, so it exists if
//! and only if the status does; [`Engine::deliver_webhooks`] then posts the queue, signed per
//! Standard Webhooks, with no transaction open during the call (claim with a lease, post,
//! record), and retries with exponential backoff from 1 minute to 6 hours between attempts,
//! giving up 24 hours after the event (status `failed`, with the last error).
//!
//! Events carry the notification's identity, never its rendered text or contact details:
//! the practice software already holds the patient file.

use jiff::{SignedDuration, Timestamp};
use rappel_channels::ChannelError;
use rappel_channels::net_guard;
use rappel_channels::sms::webhook::SigningKey;
use rappel_channels::webhook_out::timestamp_now;
use rappel_store::{DeliveryStatus, NotificationRow, Status, Tx, WebhookDelivery, WebhookEndpoint};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{Engine, EngineError, Result};

/// How long a claimed delivery is reserved for the worker posting it.
const LEASE: SignedDuration = SignedDuration::from_secs(60);
/// Deliveries one practice sends per run.
const BATCH: i64 = 50;
/// The first retry waits this long, each next one twice as long…
const FIRST_RETRY: SignedDuration = SignedDuration::from_mins(1);
/// …up to this…
const LONGEST_WAIT: SignedDuration = SignedDuration::from_hours(6);
/// …and after this since the event, it is given up.
const GIVE_UP_AFTER: SignedDuration = SignedDuration::from_hours(24);

/// The practice's endpoint as the API shows it. The secret is shown once, when it is made.
#[derive(Clone, Debug, Serialize)]
pub struct WebhookSettings {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: Timestamp,
}

/// The event type of a status, when it is one the practice software is told about.
fn event_type(status: Status) -> Option<&'static str> {
    match status {
        Status::Sent => Some("notification.sent"),
        Status::Delivered => Some("notification.delivered"),
        Status::Failed => Some("notification.failed"),
        Status::Suppressed => Some("notification.suppressed"),
        Status::Pending | Status::Sending => None,
    }
}

/// Queues the event of the notification's current status, when the practice has an endpoint
/// and the status is final or a hand-off. Call it in the transaction that records the status.
/// The event id is derived from the notification and the status, so recording the same status
/// twice queues one event.
pub(crate) async fn notification_status(
    tx: &mut Tx,
    row: &NotificationRow,
    now: Timestamp,
) -> Result<()> {
    notification_status_with(tx, &mut None, row, now).await
}

/// [`notification_status`] for a batch of one practice's rows: `has_endpoint` remembers, once
/// read, whether the practice has an endpoint, so a batch asks once rather than once per row.
pub(crate) async fn notification_status_with(
    tx: &mut Tx,
    has_endpoint: &mut Option<bool>,
    row: &NotificationRow,
    now: Timestamp,
) -> Result<()> {
    let Some(event_type) = event_type(row.status) else {
        return Ok(());
    };
    let known = match *has_endpoint {
        Some(known) => known,
        None => *has_endpoint.insert(tx.webhook_endpoint(&row.practice_id).await?.is_some()),
    };
    if !known {
        return Ok(());
    }
    let id = format!(
        "evt_{}",
        hex::encode(
            &Sha256::digest(
                format!("{}/{}/{}", row.practice_id, row.key, row.status.as_str()).as_bytes()
            )[..16]
        )
    );
    let payload = json!({
        "type": event_type,
        "timestamp": now,
        "data": {
            "key": row.key,
            "kind": row.kind,
            "channel": row.channel,
            "recipient": row.recipient,
            "status": row.status.as_str(),
            "appointments": row.appointments,
            "document": row.document,
            "reason": row.reason,
            "error": row.last_error,
        },
    });
    tx.insert_webhook_delivery(&WebhookDelivery {
        practice_id: row.practice_id.clone(),
        id,
        event_type: event_type.into(),
        payload,
        attempts: 0,
        next_attempt_at: now,
        status: DeliveryStatus::Pending,
        last_error: None,
        created_at: now,
    })
    .await?;
    Ok(())
}

/// Queues one event of another kind than a notification's status (a patient's answer,
/// issue 16), when the practice has an endpoint. Call it in the transaction that records what
/// the event reports. `identity` names the fact reported (for instance
/// `appointment.cancel_requested/APPT`): the event id is derived from it and the practice, so
/// recording the same fact twice queues one event. `data` carries identities and statuses,
/// never contact details or message text.
pub(crate) async fn queue_event(
    tx: &mut Tx,
    practice_id: &str,
    event_type: &str,
    identity: &str,
    data: serde_json::Value,
    now: Timestamp,
) -> Result<bool> {
    if tx.webhook_endpoint(practice_id).await?.is_none() {
        return Ok(false);
    }
    let id = format!(
        "evt_{}",
        hex::encode(&Sha256::digest(format!("{practice_id}/{identity}").as_bytes())[..16])
    );
    let payload = json!({
        "type": event_type,
        "timestamp": now,
        "data": data,
    });
    Ok(tx
        .insert_webhook_delivery(&WebhookDelivery {
            practice_id: practice_id.to_string(),
            id,
            event_type: event_type.into(),
            payload,
            attempts: 0,
            next_attempt_at: now,
            status: DeliveryStatus::Pending,
            last_error: None,
            created_at: now,
        })
        .await?)
}

/// The wait before the next attempt after `attempts` failed ones: 1, 2, 4… minutes, at most 6 h.
fn backoff(attempts: i64) -> SignedDuration {
    let doubling = attempts.saturating_sub(1).clamp(0, 20) as u32;
    FIRST_RETRY
        .checked_mul(2i32.saturating_pow(doubling))
        .unwrap_or(LONGEST_WAIT)
        .min(LONGEST_WAIT)
}

impl Engine {
    /// Sets where the practice's events go. Without `secret`, a new one is made and returned
    /// (once: it is not shown again); a given one must be `whsec_` and base64 of ≥ 24 bytes.
    pub async fn put_webhook(
        &self,
        practice_id: &str,
        url: &str,
        secret: Option<&str>,
    ) -> Result<WebhookSettings> {
        let url = url.trim();
        if url.contains(char::is_whitespace) || url.len() > 2048 {
            return Err(EngineError::invalid(
                "url",
                "expected an https:// URL of at most 2048 characters",
            ));
        }
        // The receiver must be a public address (SSRF); each request checks again.
        net_guard::check_resolved(url, &self.config().net)
            .await
            .map_err(|refusal| EngineError::invalid("url", refusal.to_string()))?;
        let (secret, shown) = match secret {
            Some(secret) => {
                SigningKey::parse(secret)
                    .map_err(|reason| EngineError::invalid("secret", reason))?;
                (secret.to_string(), None)
            }
            None => {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes)
                    .map_err(|e| EngineError::invalid("secret", e.to_string()))?;
                let secret = rappel_channels::webhook_out::secret_from_bytes(&bytes);
                (secret.clone(), Some(secret))
            }
        };
        let endpoint = WebhookEndpoint {
            practice_id: practice_id.to_string(),
            url: url.to_string(),
            secret,
            created_at: self.now(),
        };
        let mut tx = self.store().begin().await?;
        tx.put_webhook_endpoint(&endpoint).await?;
        tx.commit().await?;
        Ok(WebhookSettings {
            url: endpoint.url,
            secret: shown,
            created_at: endpoint.created_at,
        })
    }

    pub async fn get_webhook(&self, practice_id: &str) -> Result<WebhookSettings> {
        let mut tx = self.store().begin_read().await?;
        let endpoint = tx.webhook_endpoint(practice_id).await?;
        tx.commit().await?;
        let endpoint = endpoint.ok_or_else(|| EngineError::not_found("webhook", practice_id))?;
        Ok(WebhookSettings {
            url: endpoint.url,
            secret: None,
            created_at: endpoint.created_at,
        })
    }

    /// Stops sending events; true when there was an endpoint.
    pub async fn delete_webhook(&self, practice_id: &str) -> Result<bool> {
        let mut tx = self.store().begin().await?;
        let removed = tx.delete_webhook_endpoint(practice_id).await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// The practice's latest events and where each stands.
    pub async fn webhook_deliveries(
        &self,
        practice_id: &str,
        limit: i64,
    ) -> Result<Vec<WebhookDelivery>> {
        let mut tx = self.store().begin_read().await?;
        let rows = tx.webhook_deliveries(practice_id, limit).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Posts every due event of every practice with an endpoint; returns how many were
    /// attempted. Each is claimed (lease, committed), posted with no transaction open, and its
    /// outcome recorded.
    pub async fn deliver_webhooks(&self) -> Result<usize> {
        let mut attempted = 0;
        for endpoint in self.store().webhook_endpoints().await? {
            let key = match SigningKey::parse(&endpoint.secret) {
                Ok(key) => key,
                Err(reason) => {
                    tracing::error!(practice = %endpoint.practice_id, %reason, "the webhook secret is unusable");
                    continue;
                }
            };
            loop {
                let now = self.now();
                let claimed = self
                    .store()
                    .claim_webhook_deliveries(&endpoint.practice_id, now, now + LEASE, BATCH)
                    .await?;
                if claimed.is_empty() {
                    break;
                }
                for mut delivery in claimed {
                    attempted += 1;
                    let body = delivery.payload.to_string();
                    let outcome = self
                        .inner
                        .webhooks
                        .post(&endpoint.url, &key, &delivery.id, timestamp_now(), &body)
                        .await;
                    let now = self.now();
                    match outcome {
                        Ok(()) => {
                            delivery.status = DeliveryStatus::Delivered;
                            delivery.last_error = None;
                        }
                        Err(error) => {
                            delivery.last_error = Some(error.to_string());
                            let next = match &error {
                                ChannelError::Transient { retry_after, .. } => {
                                    let wait = retry_after
                                        .unwrap_or_else(|| backoff(delivery.attempts))
                                        .clamp(FIRST_RETRY, LONGEST_WAIT);
                                    Some(now + wait)
                                }
                                _ => None,
                            };
                            match next {
                                Some(next) if next <= delivery.created_at + GIVE_UP_AFTER => {
                                    delivery.next_attempt_at = next;
                                }
                                _ => delivery.status = DeliveryStatus::Failed,
                            }
                            tracing::warn!(practice = %delivery.practice_id, id = %delivery.id,
                                attempts = delivery.attempts, %error, "a webhook delivery failed");
                        }
                    }
                    let mut tx = self.store().begin().await?;
                    tx.update_webhook_delivery(&delivery).await?;
                    tx.commit().await?;
                }
            }
        }
        Ok(attempted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_one_minute_then_double_up_to_six_hours() {
        assert_eq!(backoff(1), SignedDuration::from_mins(1));
        assert_eq!(backoff(2), SignedDuration::from_mins(2));
        assert_eq!(backoff(4), SignedDuration::from_mins(8));
        assert_eq!(backoff(10), SignedDuration::from_hours(6));
        assert_eq!(backoff(1000), SignedDuration::from_hours(6));
    }
}
