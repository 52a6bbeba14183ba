//! The event log (a gap-free sequence per practice) and the stored answers of
//! `Idempotency-Key` requests.

use jiff::Timestamp;
use serde_json::Value;

use super::Tx;
use super::codec::{Cols, ms, to_json};
use crate::{EventRow, Result, StoreError};

impl Tx {
    /// Appends to the event log; returns its sequence number.
    pub async fn insert_event(
        &mut self,
        practice_id: &str,
        at: Timestamp,
        received_at: Timestamp,
        event_type: &str,
        body: &Value,
    ) -> Result<i64> {
        // The counter lives on the practice row: the increment locks that row until commit, so
        // concurrent transactions of one practice get distinct, gap-free numbers on both
        // backends (a `MAX(seq) + 1` would hand the same number to two PostgreSQL writers).
        let row = sqlx::query(
            "UPDATE practices SET last_event_seq = last_event_seq + 1 WHERE id = $1 \
             RETURNING last_event_seq",
        )
        .bind(practice_id)
        .fetch_optional(&mut *self.inner)
        .await?
        .ok_or(StoreError::Database(sqlx::Error::RowNotFound))?;
        let seq = Cols::new(&row, "practices").int("last_event_seq")?;
        sqlx::query(
            "INSERT INTO events (practice_id, seq, at, received_at, event_type, body) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(practice_id)
        .bind(seq)
        .bind(ms(at))
        .bind(ms(received_at))
        .bind(event_type)
        .bind(to_json("events", body)?)
        .execute(&mut *self.inner)
        .await?;
        Ok(seq)
    }

    pub async fn events(
        &mut self,
        practice_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<EventRow>> {
        let rows = sqlx::query(
            "SELECT practice_id, seq, at, received_at, event_type, body FROM events \
             WHERE practice_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(practice_id)
        .bind(after_seq)
        .bind(limit.max(0))
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter()
            .map(|row| {
                let c = Cols::new(row, "events");
                Ok(EventRow {
                    practice_id: c.text("practice_id")?,
                    seq: c.int("seq")?,
                    at: c.ts("at")?,
                    received_at: c.ts("received_at")?,
                    event_type: c.text("event_type")?,
                    body: c.json("body")?,
                })
            })
            .collect()
    }

    /// The stored answer for an `Idempotency-Key`: (request hash, status code, response body).
    pub async fn idempotency(
        &mut self,
        practice_id: &str,
        key: &str,
    ) -> Result<Option<(String, i64, Value)>> {
        let row = sqlx::query(
            "SELECT request_hash, status, response FROM idempotency_keys \
             WHERE practice_id = $1 AND key = $2",
        )
        .bind(practice_id)
        .bind(key)
        .fetch_optional(&mut *self.inner)
        .await?;
        row.map(|row| {
            let c = Cols::new(&row, "idempotency_keys");
            Ok((
                c.text("request_hash")?,
                c.int("status")?,
                c.json("response")?,
            ))
        })
        .transpose()
    }

    pub async fn save_idempotency(
        &mut self,
        practice_id: &str,
        key: &str,
        request_hash: &str,
        status: i64,
        response: &Value,
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO idempotency_keys \
               (practice_id, key, request_hash, status, response, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (practice_id, key) DO UPDATE SET request_hash = excluded.request_hash, \
               status = excluded.status, response = excluded.response, \
               created_at = excluded.created_at",
        )
        .bind(practice_id)
        .bind(key)
        .bind(request_hash)
        .bind(status)
        .bind(to_json("idempotency_keys", response)?)
        .bind(ms(at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }
}
