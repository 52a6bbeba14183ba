//! Retention: what a practice no longer needs leaves the tables in small batches, so that they
//! stay the size of the working set however long the practice has used Rappel.
//!
//! One batch is one short write transaction scoped by `practice_id`: finished messages (sent,
//! delivered, failed, suppressed) decided before the horizon, with the reports providers sent
//! about them (their rendered content — a message body is health data — goes with the row),
//! the to-verify entries handled before it, and the outbound webhook events delivered or given
//! up before it; the patients' SMS handled before it (their text is health data), the appointment
//! links that expired before it, and the record of the last SMS sent to a number before it (a
//! reply that late no longer answers anything). Open work (planned or being sent), open entries
//! and unhandled received messages are never touched.

use jiff::Timestamp;

use super::Tx;
use super::codec::ms;
use crate::Result;

/// What one batch removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub notifications: u64,
    pub delivery_reports: u64,
    pub inbox_entries: u64,
    pub webhook_deliveries: u64,
    pub received_messages: u64,
    pub appointment_links: u64,
    pub sms_last_sent: u64,
}

impl Purged {
    /// Whether any table gave a whole batch: there may be more behind it.
    pub fn filled(&self, limit: u32) -> bool {
        let limit = u64::from(limit);
        self.notifications >= limit
            || self.inbox_entries >= limit
            || self.webhook_deliveries >= limit
            || self.received_messages >= limit
            || self.appointment_links >= limit
            || self.sms_last_sent >= limit
    }
}

impl std::ops::AddAssign for Purged {
    fn add_assign(&mut self, other: Purged) {
        self.notifications += other.notifications;
        self.delivery_reports += other.delivery_reports;
        self.inbox_entries += other.inbox_entries;
        self.webhook_deliveries += other.webhook_deliveries;
        self.received_messages += other.received_messages;
        self.appointment_links += other.appointment_links;
        self.sms_last_sent += other.sms_last_sent;
    }
}

/// The finished messages of a practice decided before `$2`, at most `$3`. `due_at < $2` comes
/// first so that the `(practice_id, due_at, key)` index bounds the scan: a message is decided at
/// or after it is due, so nothing decided before the horizon is due after it.
const OLD_MESSAGES: &str = "SELECT key FROM notifications \
     WHERE practice_id = $1 AND due_at < $2 \
       AND status IN ('sent', 'delivered', 'failed', 'suppressed') \
       AND COALESCE(decided_at, updated_at) < $2 \
     ORDER BY due_at, key LIMIT $3";

impl Tx {
    /// Removes one batch (at most `limit` rows of each table) of what `practice_id` finished
    /// before `before`. Call it again while [`Purged::filled`] says so.
    pub async fn purge_history(
        &mut self,
        practice_id: &str,
        before: Timestamp,
        limit: u32,
    ) -> Result<Purged> {
        let before = ms(before);
        let limit = i64::from(limit);
        let reports = sqlx::query(&format!(
            "DELETE FROM delivery_reports WHERE practice_id = $1 \
             AND notification_key IN ({OLD_MESSAGES})"
        ))
        .bind(practice_id)
        .bind(before)
        .bind(limit)
        .execute(&mut *self.inner)
        .await?;
        // The provider ids' routes of the same batch, before the rows that name them go.
        self.purge_batch(
            &format!(
                "DELETE FROM lookup_routes WHERE kind = 'provider_message' AND practice_id = $1 \
                 AND lookup_key IN ( \
                   SELECT provider_id FROM notifications WHERE practice_id = $1 \
                     AND key IN ({OLD_MESSAGES}))"
            ),
            practice_id,
            before,
            limit,
        )
        .await?;
        let notifications = sqlx::query(&format!(
            "DELETE FROM notifications WHERE practice_id = $1 AND key IN ({OLD_MESSAGES})"
        ))
        .bind(practice_id)
        .bind(before)
        .bind(limit)
        .execute(&mut *self.inner)
        .await?;
        let inbox = sqlx::query(
            "DELETE FROM inbox WHERE practice_id = $1 AND id IN ( \
               SELECT id FROM inbox WHERE practice_id = $1 \
                 AND resolved_at IS NOT NULL AND resolved_at < $2 \
               ORDER BY resolved_at, id LIMIT $3)",
        )
        .bind(practice_id)
        .bind(before)
        .bind(limit)
        .execute(&mut *self.inner)
        .await?;
        let webhooks = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE practice_id = $1 AND id IN ( \
               SELECT id FROM webhook_deliveries WHERE practice_id = $1 \
                 AND status IN ('delivered', 'failed') AND created_at < $2 \
               ORDER BY created_at, id LIMIT $3)",
        )
        .bind(practice_id)
        .bind(before)
        .bind(limit)
        .execute(&mut *self.inner)
        .await?;
        let received = self
            .purge_batch(
                "DELETE FROM received_messages WHERE practice_id = $1 AND id IN ( \
                   SELECT id FROM received_messages WHERE practice_id = $1 \
                     AND handled_at IS NOT NULL AND handled_at < $2 \
                   ORDER BY handled_at, id LIMIT $3)",
                practice_id,
                before,
                limit,
            )
            .await?;
        // The links' routes first, chosen by the same ordered batch as the links themselves.
        self.purge_batch(
            "DELETE FROM lookup_routes WHERE kind = 'appointment_link' AND practice_id = $1 \
             AND lookup_key IN ( \
               SELECT token_hash FROM appointment_links WHERE practice_id = $1 \
                 AND expires_at < $2 \
               ORDER BY expires_at, token_hash LIMIT $3)",
            practice_id,
            before,
            limit,
        )
        .await?;
        let links = self
            .purge_batch(
                "DELETE FROM appointment_links WHERE practice_id = $1 AND token_hash IN ( \
                   SELECT token_hash FROM appointment_links WHERE practice_id = $1 \
                     AND expires_at < $2 \
                   ORDER BY expires_at, token_hash LIMIT $3)",
                practice_id,
                before,
                limit,
            )
            .await?;
        let last_sent = self
            .purge_batch(
                "DELETE FROM sms_last_sent WHERE practice_id = $1 AND number_hash IN ( \
                   SELECT number_hash FROM sms_last_sent WHERE practice_id = $1 \
                     AND sent_at < $2 \
                   ORDER BY sent_at, number_hash LIMIT $3)",
                practice_id,
                before,
                limit,
            )
            .await?;
        Ok(Purged {
            notifications: notifications.rows_affected(),
            delivery_reports: reports.rows_affected(),
            inbox_entries: inbox.rows_affected(),
            webhook_deliveries: webhooks.rows_affected(),
            received_messages: received,
            appointment_links: links,
            sms_last_sent: last_sent,
        })
    }

    /// Runs one `DELETE` of a batch bound as `($1 practice, $2 horizon, $3 limit)`.
    async fn purge_batch(
        &mut self,
        sql: &str,
        practice_id: &str,
        before: i64,
        limit: i64,
    ) -> Result<u64> {
        let done = sqlx::query(sql)
            .bind(practice_id)
            .bind(before)
            .bind(limit)
            .execute(&mut *self.inner)
            .await?;
        Ok(done.rows_affected())
    }
}
