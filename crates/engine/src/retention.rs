//! Retention (issue 18): each practice keeps its finished messages, their providers' reports,
//! its handled to-verify entries and its delivered webhook events for
//! `history_retention_months` (13 by default, 4 to 120); the worker's hourly pass deletes what is
//! older, in batches of [`BATCH`] rows per table, one short write transaction per batch, so
//! that a practice's backlog never holds a long lock.
//!
//! The months count in the practice's time zone from the engine's clock. Planned and sending
//! messages are never touched whatever their age, and the planner never plans a deleted message
//! again: it only re-reads appointments of the last three days and documents of the last 90
//! (the shortest retention allowed is four months, `settings::RETENTION_MONTHS`).

use jiff::{Timestamp, ToSpan};
use rappel_store::Purged;

use crate::practice::PracticeCtx;
use crate::{Engine, Result};

/// Rows of each table one transaction deletes at most.
pub const BATCH: u32 = 500;

impl Engine {
    /// Deletes, practice by practice, what each keeps no longer; returns the totals. A practice
    /// whose stored settings no longer resolve is skipped (and named in the log), not purged
    /// with a guessed retention.
    pub async fn enforce_retention(&self) -> Result<Purged> {
        let now = self.now();
        let practices = {
            let mut tx = self.store().begin_read().await?;
            let list = tx.practices().await?;
            tx.commit().await?;
            list
        };
        let mut total = Purged::default();
        for row in practices {
            let id = row.id.clone();
            let ctx = match PracticeCtx::build(row) {
                Ok(ctx) => ctx,
                Err(error) => {
                    tracing::warn!(practice = %id, %error, "retention skipped: the practice's settings do not resolve");
                    continue;
                }
            };
            let horizon = retention_horizon(&ctx, now);
            loop {
                let mut tx = self.store().begin().await?;
                let purged = tx.purge_history(&id, horizon, BATCH).await?;
                tx.commit().await?;
                total += purged;
                if !purged.filled(BATCH) {
                    break;
                }
            }
        }
        if total != Purged::default() {
            tracing::info!(
                notifications = total.notifications,
                delivery_reports = total.delivery_reports,
                inbox_entries = total.inbox_entries,
                webhook_deliveries = total.webhook_deliveries,
                received_messages = total.received_messages,
                appointment_links = total.appointment_links,
                sms_last_sent = total.sms_last_sent,
                "retention: deleted history older than each practice keeps"
            );
        }
        Ok(total)
    }
}

/// The instant before which the practice keeps nothing finished: `now` minus its retention in
/// calendar months of its own time zone (a 31 March minus one month is the 28 or 29 February).
pub(crate) fn retention_horizon(ctx: &PracticeCtx, now: Timestamp) -> Timestamp {
    let months = ctx.settings.retention_months();
    now.to_zoned(ctx.tz.clone())
        .checked_sub(months.months())
        .map(|zoned| zoned.timestamp())
        .unwrap_or(Timestamp::MIN)
}
