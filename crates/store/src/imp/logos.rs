//! A practice's logo (`practice_logos`): the PNG the engine made, already resized. The store
//! checks nothing about the image; the engine decodes and re-encodes every logo before it gets
//! here.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;

use super::Tx;
use super::codec::{Cols, ms};
use crate::Result;

/// A stored logo.
#[derive(Clone, PartialEq, Eq)]
pub struct LogoRow {
    pub practice_id: String,
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for LogoRow {
    // The bytes say nothing useful in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogoRow")
            .field("practice_id", &self.practice_id)
            .field("png_len", &self.png.len())
            .field("width", &self.width)
            .field("height", &self.height)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl Tx {
    /// Stores the practice's logo, replacing the one it had.
    pub async fn put_logo(&mut self, logo: &LogoRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO practice_logos (practice_id, png_base64, width, height, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (practice_id) DO UPDATE SET png_base64 = excluded.png_base64, \
               width = excluded.width, height = excluded.height, updated_at = excluded.updated_at",
        )
        .bind(&logo.practice_id)
        .bind(STANDARD.encode(&logo.png))
        .bind(i64::from(logo.width))
        .bind(i64::from(logo.height))
        .bind(ms(logo.updated_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    pub async fn logo(&mut self, practice_id: &str) -> Result<Option<LogoRow>> {
        let row = sqlx::query(
            "SELECT practice_id, png_base64, width, height, updated_at FROM practice_logos \
             WHERE practice_id = $1",
        )
        .bind(practice_id)
        .fetch_optional(&mut *self.inner)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let c = Cols::new(&row, "practice_logos");
        let png = STANDARD
            .decode(c.text("png_base64")?)
            .map_err(|e| c.corrupt("png_base64", e))?;
        let size = |column: &str| -> Result<u32> {
            let value = c.int(column)?;
            u32::try_from(value).map_err(|e| c.corrupt(column, e))
        };
        Ok(Some(LogoRow {
            practice_id: c.text("practice_id")?,
            png,
            width: size("width")?,
            height: size("height")?,
            updated_at: c.ts("updated_at")?,
        }))
    }

    /// Removes the practice's logo; returns whether it had one.
    pub async fn delete_logo(&mut self, practice_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM practice_logos WHERE practice_id = $1")
            .bind(practice_id)
            .execute(&mut *self.inner)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
