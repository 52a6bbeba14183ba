//! The monthly SMS quota (atomic: concurrent workers never exceed the limit).

use super::Tx;
use super::codec::Cols;
use crate::Result;

impl Tx {
    /// Counts one SMS of `segments` segments in `month` (`YYYY-MM`, practice time) if fewer than
    /// `limit` messages were counted so far (or `limit` is `None`); returns whether it was counted.
    pub async fn try_consume_sms(
        &mut self,
        practice_id: &str,
        month: &str,
        limit: Option<i64>,
        segments: i64,
    ) -> Result<bool> {
        sqlx::query(
            "INSERT INTO sms_usage (practice_id, month, messages, segments) VALUES ($1, $2, 0, 0) \
             ON CONFLICT (practice_id, month) DO NOTHING",
        )
        .bind(practice_id)
        .bind(month)
        .execute(&mut *self.inner)
        .await?;
        // A single conditional UPDATE: PostgreSQL re-checks the condition on the latest row
        // version after waiting for a concurrent writer, and SQLite has one writer at a time, so
        // the check and the increment cannot be split by another worker. The limit is on billed
        // SMS (segments), what the practice pays (SPEC.md decision 9): a message that would pass
        // it is refused whole.
        let done = sqlx::query(
            "UPDATE sms_usage SET messages = messages + 1, segments = segments + $4 \
             WHERE practice_id = $1 AND month = $2 AND ($3 IS NULL OR segments + $4 <= $3)",
        )
        .bind(practice_id)
        .bind(month)
        .bind(limit)
        .bind(segments)
        .execute(&mut *self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// (messages, segments) counted in `month`.
    pub async fn sms_usage(&mut self, practice_id: &str, month: &str) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT messages, segments FROM sms_usage WHERE practice_id = $1 AND month = $2",
        )
        .bind(practice_id)
        .bind(month)
        .fetch_optional(&mut *self.inner)
        .await?;
        match row {
            None => Ok((0, 0)),
            Some(row) => {
                let c = Cols::new(&row, "sms_usage");
                Ok((c.int("messages")?, c.int("segments")?))
            }
        }
    }
}
