//! A practice's outbound webhooks: its endpoint and the delivery queue. The same SQL on both
//! backends except the delivery claim, which locks with `FOR UPDATE SKIP LOCKED` on PostgreSQL
//! as `claim_due` does.

use jiff::Timestamp;
use serde_json::Value;
use sqlx::any::AnyRow;

use super::codec::{Cols, ms, to_json};
use super::{Store, Tx};
use crate::{Backend, Result};

/// Where a practice's status changes are posted, and the key that signs them.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub practice_id: String,
    pub url: String,
    /// The Standard Webhooks key, `whsec_<base64>`.
    pub secret: String,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for WebhookEndpoint {
    // The secret signs what the practice software trusts: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("practice_id", &self.practice_id)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Where an outbound webhook event stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for `next_attempt_at` (or being attempted: claiming moves it forward).
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Refused for good, or still failing after the retry period.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// One event of the outbound webhook queue.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookDelivery {
    pub practice_id: String,
    /// The event id: the `webhook-id` of every attempt, so the receiver can drop repeats.
    pub id: String,
    /// `notification.sent`, `notification.delivered`, `notification.failed`,
    /// `notification.suppressed`.
    pub event_type: String,
    /// The JSON body posted.
    pub payload: Value,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub status: DeliveryStatus,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
}

const DELIVERY_COLUMNS: &str = "practice_id, id, event_type, payload, attempts, next_attempt_at, \
                                status, last_error, created_at";

fn endpoint_from_row(row: &AnyRow) -> Result<WebhookEndpoint> {
    let c = Cols::new(row, "webhook_endpoints");
    Ok(WebhookEndpoint {
        practice_id: c.text("practice_id")?,
        url: c.text("url")?,
        secret: c.text("secret")?,
        created_at: c.ts("created_at")?,
    })
}

fn delivery_from_row(row: &AnyRow) -> Result<WebhookDelivery> {
    let c = Cols::new(row, "webhook_deliveries");
    Ok(WebhookDelivery {
        practice_id: c.text("practice_id")?,
        id: c.text("id")?,
        event_type: c.text("event_type")?,
        payload: c.json("payload")?,
        attempts: c.int("attempts")?,
        next_attempt_at: c.ts("next_attempt_at")?,
        status: c.parse("status", DeliveryStatus::parse)?,
        last_error: c.opt_text("last_error")?,
        created_at: c.ts("created_at")?,
    })
}

impl Tx {
    /// Creates or replaces the practice's endpoint.
    pub async fn put_webhook_endpoint(&mut self, endpoint: &WebhookEndpoint) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhook_endpoints (practice_id, url, secret, created_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (practice_id) DO UPDATE SET url = excluded.url, \
               secret = excluded.secret, created_at = excluded.created_at",
        )
        .bind(&endpoint.practice_id)
        .bind(&endpoint.url)
        .bind(&endpoint.secret)
        .bind(ms(endpoint.created_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    pub async fn webhook_endpoint(&mut self, practice_id: &str) -> Result<Option<WebhookEndpoint>> {
        let row = sqlx::query(
            "SELECT practice_id, url, secret, created_at FROM webhook_endpoints \
             WHERE practice_id = $1",
        )
        .bind(practice_id)
        .fetch_optional(&mut *self.inner)
        .await?;
        row.as_ref().map(endpoint_from_row).transpose()
    }

    /// Removes the endpoint; true when there was one. Its pending deliveries stay, and are
    /// marked failed by the next delivery run.
    pub async fn delete_webhook_endpoint(&mut self, practice_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM webhook_endpoints WHERE practice_id = $1")
            .bind(practice_id)
            .execute(&mut *self.inner)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Queues an event; an event already queued under that id is left as it is.
    pub async fn insert_webhook_delivery(&mut self, d: &WebhookDelivery) -> Result<bool> {
        let sql = format!(
            "INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (practice_id, id) DO NOTHING"
        );
        let done = sqlx::query(&sql)
            .bind(&d.practice_id)
            .bind(&d.id)
            .bind(&d.event_type)
            .bind(to_json("webhook_deliveries", &d.payload)?)
            .bind(d.attempts)
            .bind(ms(d.next_attempt_at))
            .bind(d.status.as_str())
            .bind(d.last_error.clone())
            .bind(ms(d.created_at))
            .execute(&mut *self.inner)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records the outcome of an attempt (status, attempts, next attempt, last error).
    pub async fn update_webhook_delivery(&mut self, d: &WebhookDelivery) -> Result<()> {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $3, attempts = $4, next_attempt_at = $5, \
               last_error = $6 WHERE practice_id = $1 AND id = $2",
        )
        .bind(&d.practice_id)
        .bind(&d.id)
        .bind(d.status.as_str())
        .bind(d.attempts)
        .bind(ms(d.next_attempt_at))
        .bind(d.last_error.clone())
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// The practice's most recent events, newest first.
    pub async fn webhook_deliveries(
        &mut self,
        practice_id: &str,
        limit: i64,
    ) -> Result<Vec<WebhookDelivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE practice_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(practice_id)
            .bind(limit.max(0))
            .fetch_all(&mut *self.inner)
            .await?;
        rows.iter().map(delivery_from_row).collect()
    }
}

impl Store {
    /// The practices with an endpoint (a small table: one row per practice at most).
    pub async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>> {
        let rows = sqlx::query(
            "SELECT practice_id, url, secret, created_at FROM webhook_endpoints \
             ORDER BY practice_id",
        )
        .fetch_all(self.read_pool())
        .await?;
        rows.iter().map(endpoint_from_row).collect()
    }

    /// Claims up to `limit` pending deliveries of one practice due at `now`: their
    /// `next_attempt_at` becomes `lease_until` and `attempts` grows by one, committed before
    /// they are returned, so no other worker takes them until the lease ends. Oldest first.
    pub async fn claim_webhook_deliveries(
        &self,
        practice_id: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<WebhookDelivery>> {
        let sql = match self.backend {
            // A MATERIALIZED CTE runs the locking subquery exactly once (see `claim_due`).
            Backend::Postgres => format!(
                "WITH due AS MATERIALIZED ( \
                   SELECT id AS due_id FROM webhook_deliveries \
                   WHERE practice_id = $1 AND status = 'pending' AND next_attempt_at <= $2 \
                   ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                 UPDATE webhook_deliveries SET next_attempt_at = $3, attempts = attempts + 1 \
                 FROM due WHERE practice_id = $1 AND id = due_id \
                 RETURNING {DELIVERY_COLUMNS}"
            ),
            // SQLite: `begin` holds the write lock; the select and update cannot interleave.
            Backend::Sqlite => format!(
                "UPDATE webhook_deliveries SET next_attempt_at = $3, attempts = attempts + 1 \
                 WHERE practice_id = $1 AND id IN ( \
                   SELECT id FROM webhook_deliveries \
                   WHERE practice_id = $1 AND status = 'pending' AND next_attempt_at <= $2 \
                   ORDER BY next_attempt_at, id LIMIT $4) \
                 RETURNING {DELIVERY_COLUMNS}"
            ),
        };
        let mut tx = self.begin().await?;
        let rows = sqlx::query(&sql)
            .bind(practice_id)
            .bind(ms(now))
            .bind(ms(lease_until))
            .bind(limit.max(0))
            .fetch_all(&mut *tx.inner)
            .await?;
        let mut claimed = rows
            .iter()
            .map(delivery_from_row)
            .collect::<Result<Vec<_>>>()?;
        tx.commit().await?;
        claimed.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(claimed)
    }
}
