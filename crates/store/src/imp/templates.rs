//! A practice's own message templates, part by part. The same SQL on both backends.

use jiff::Timestamp;
use sqlx::any::AnyRow;

use super::Tx;
use super::codec::{Cols, ms};
use crate::Result;

/// One templated part a practice rewrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateRow {
    pub practice_id: String,
    /// `reminder`, `confirmation`… (the domain's `Kind`).
    pub kind: String,
    pub channel: String,
    /// `fr` or `en`.
    pub locale: String,
    /// `subject`, `text` or `html`.
    pub part: String,
    pub source: String,
    pub updated_at: Timestamp,
}

const TEMPLATE_COLUMNS: &str = "practice_id, kind, channel, locale, part, source, updated_at";

fn template_from_row(row: &AnyRow) -> Result<TemplateRow> {
    let c = Cols::new(row, "templates");
    Ok(TemplateRow {
        practice_id: c.text("practice_id")?,
        kind: c.text("kind")?,
        channel: c.text("channel")?,
        locale: c.text("locale")?,
        part: c.text("part")?,
        source: c.text("source")?,
        updated_at: c.ts("updated_at")?,
    })
}

impl Tx {
    /// Every part the practice rewrote, ordered by kind, channel, locale and part.
    pub async fn templates(&mut self, practice_id: &str) -> Result<Vec<TemplateRow>> {
        let sql = format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE practice_id = $1 \
             ORDER BY kind, channel, locale, part"
        );
        let rows = sqlx::query(&sql)
            .bind(practice_id)
            .fetch_all(&mut *self.inner)
            .await?;
        rows.iter().map(template_from_row).collect()
    }

    /// Creates or replaces one part.
    pub async fn put_template(&mut self, row: &TemplateRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO templates (practice_id, kind, channel, locale, part, source, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (practice_id, kind, channel, locale, part) \
             DO UPDATE SET source = excluded.source, updated_at = excluded.updated_at",
        )
        .bind(&row.practice_id)
        .bind(&row.kind)
        .bind(&row.channel)
        .bind(&row.locale)
        .bind(&row.part)
        .bind(&row.source)
        .bind(ms(row.updated_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// Removes every part of a kind × channel × locale; returns how many there were.
    pub async fn delete_templates(
        &mut self,
        practice_id: &str,
        kind: &str,
        channel: &str,
        locale: &str,
    ) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM templates \
             WHERE practice_id = $1 AND kind = $2 AND channel = $3 AND locale = $4",
        )
        .bind(practice_id)
        .bind(kind)
        .bind(channel)
        .bind(locale)
        .execute(&mut *self.inner)
        .await?;
        Ok(done.rows_affected())
    }
}
