//! The practice's boxes: entries the staff must act on, until resolved.

use jiff::Timestamp;

use super::Tx;
use super::codec::{Cols, flag, ms, opt_ms};
use crate::{InboxRow, Result};

const INBOX_COLUMNS: &str =
    "practice_id, id, inbox, document, patient_id, title, body, created_at, resolved_at";

impl Tx {
    /// Inserts unless an entry with that id exists; returns whether it was inserted.
    pub async fn insert_inbox(&mut self, entry: &InboxRow) -> Result<bool> {
        let sql = format!(
            "INSERT INTO inbox ({INBOX_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (practice_id, id) DO NOTHING"
        );
        let done = sqlx::query(&sql)
            .bind(&entry.practice_id)
            .bind(&entry.id)
            .bind(&entry.inbox)
            .bind(entry.document.clone())
            .bind(entry.patient_id.clone())
            .bind(&entry.title)
            .bind(&entry.text)
            .bind(ms(entry.created_at))
            .bind(opt_ms(entry.resolved_at))
            .execute(&mut *self.inner)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Entries of the practice (of one box when `inbox` is set), newest first.
    pub async fn inbox(
        &mut self,
        practice_id: &str,
        inbox: Option<&str>,
        include_resolved: bool,
    ) -> Result<Vec<InboxRow>> {
        let sql = format!(
            "SELECT {INBOX_COLUMNS} FROM inbox \
             WHERE practice_id = $1 AND ($2 IS NULL OR inbox = $2) \
               AND ($3 = 1 OR resolved_at IS NULL) \
             ORDER BY created_at DESC, id DESC"
        );
        let rows = sqlx::query(&sql)
            .bind(practice_id)
            .bind(inbox.map(str::to_string))
            .bind(flag(include_resolved))
            .fetch_all(&mut *self.inner)
            .await?;
        rows.iter()
            .map(|row| {
                let c = Cols::new(row, "inbox");
                Ok(InboxRow {
                    practice_id: c.text("practice_id")?,
                    id: c.text("id")?,
                    inbox: c.text("inbox")?,
                    document: c.opt_text("document")?,
                    patient_id: c.opt_text("patient_id")?,
                    title: c.text("title")?,
                    text: c.text("body")?,
                    created_at: c.ts("created_at")?,
                    resolved_at: c.opt_ts("resolved_at")?,
                })
            })
            .collect()
    }

    /// Returns false when unknown (or already resolved).
    pub async fn resolve_inbox(
        &mut self,
        practice_id: &str,
        id: &str,
        at: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE inbox SET resolved_at = $3 \
             WHERE practice_id = $1 AND id = $2 AND resolved_at IS NULL",
        )
        .bind(practice_id)
        .bind(id)
        .bind(ms(at))
        .execute(&mut *self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
