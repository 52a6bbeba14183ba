//! What letters cost (`notifications.cost_cents`). The cost is written beside a sent row rather
//! than as a field of [`crate::NotificationRow`]: it is known only once a provider has answered,
//! it is never planned or reconciled, and keeping it out of the row keeps every other reader of
//! the queue unchanged.

use jiff::Timestamp;

use super::Tx;
use super::codec::{Cols, ms};
use crate::Result;

/// One costed message: which notification, of which document, handed off when, for how much.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationCost {
    pub key: String,
    pub document: Option<String>,
    /// The hand-off instant (`decided_at`).
    pub sent_at: Timestamp,
    /// Euro cents.
    pub cost_cents: i64,
}

fn cost_row(row: &sqlx::any::AnyRow) -> Result<NotificationCost> {
    let c = Cols::new(row, "notifications");
    Ok(NotificationCost {
        key: c.text("key")?,
        document: c.opt_text("document")?,
        sent_at: c.ts("decided_at")?,
        cost_cents: c.int("cost_cents")?,
    })
}

impl Tx {
    /// Records what sending a notification cost; returns false when there is no such row.
    pub async fn set_notification_cost(
        &mut self,
        practice_id: &str,
        key: &str,
        cost_cents: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE notifications SET cost_cents = $3 WHERE practice_id = $1 AND key = $2",
        )
        .bind(practice_id)
        .bind(key)
        .bind(cost_cents)
        .execute(&mut *self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The costed messages of one document, by hand-off instant.
    pub async fn document_costs(
        &mut self,
        practice_id: &str,
        document_id: &str,
    ) -> Result<Vec<NotificationCost>> {
        let rows = sqlx::query(
            "SELECT key, document, decided_at, cost_cents FROM notifications \
             WHERE practice_id = $1 AND document = $2 AND cost_cents IS NOT NULL \
               AND decided_at IS NOT NULL \
             ORDER BY decided_at, key",
        )
        .bind(practice_id)
        .bind(document_id)
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter().map(cost_row).collect()
    }

    /// The costed postal letters of a practice handed off in `[from, to)`, by hand-off instant.
    pub async fn postal_costs(
        &mut self,
        practice_id: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<NotificationCost>> {
        let rows = sqlx::query(
            "SELECT key, document, decided_at, cost_cents FROM notifications \
             WHERE practice_id = $1 AND cost_cents IS NOT NULL \
               AND decided_at >= $2 AND decided_at < $3 AND channel = 'postal' \
             ORDER BY decided_at, key",
        )
        .bind(practice_id)
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter().map(cost_row).collect()
    }
}
