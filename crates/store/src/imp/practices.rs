//! The practices (tenants) and their API keys.

use jiff::Timestamp;
use rappel_domain::secret::constant_time_eq;
use serde_json::{Map, Value};
use sqlx::any::AnyRow;

use super::Tx;
use super::codec::{Cols, ms, to_json};
use crate::{PracticeRow, Result};

const PRACTICE_COLUMNS: &str = "id, name, preset, policy, timezone, settings, created_at";

impl Tx {
    pub async fn insert_practice(&mut self, practice: &PracticeRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO practices (id, name, preset, policy, timezone, settings, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&practice.id)
        .bind(&practice.name)
        .bind(&practice.preset)
        .bind(practice.policy.clone())
        .bind(&practice.timezone)
        .bind(to_json("practices", &practice.settings)?)
        .bind(ms(practice.created_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    pub async fn practice(&mut self, id: &str) -> Result<Option<PracticeRow>> {
        let sql = format!("SELECT {PRACTICE_COLUMNS} FROM practices WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&mut *self.inner)
            .await?;
        row.as_ref().map(practice_from_row).transpose()
    }

    pub async fn practices(&mut self) -> Result<Vec<PracticeRow>> {
        let sql = format!("SELECT {PRACTICE_COLUMNS} FROM practices ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&mut *self.inner).await?;
        rows.iter().map(practice_from_row).collect()
    }

    pub async fn update_practice_settings(
        &mut self,
        id: &str,
        settings: &Map<String, Value>,
    ) -> Result<()> {
        sqlx::query("UPDATE practices SET settings = $2 WHERE id = $1")
            .bind(id)
            .bind(to_json("practices", settings)?)
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }

    /// Stores an API key as (practice, key id, SHA-256 hash of the secret).
    pub async fn insert_api_key(
        &mut self,
        practice_id: &str,
        key_id: &str,
        secret_hash: &str,
        created_at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (practice_id, key_id, secret_hash, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(practice_id)
        .bind(key_id)
        .bind(secret_hash)
        .bind(ms(created_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// True when that key id exists for that practice with that hash.
    pub async fn api_key_matches(
        &mut self,
        practice_id: &str,
        key_id: &str,
        secret_hash: &str,
    ) -> Result<bool> {
        let row =
            sqlx::query("SELECT secret_hash FROM api_keys WHERE practice_id = $1 AND key_id = $2")
                .bind(practice_id)
                .bind(key_id)
                .fetch_optional(&mut *self.inner)
                .await?;
        let Some(row) = row else { return Ok(false) };
        let stored = Cols::new(&row, "api_keys").text("secret_hash")?;
        Ok(constant_time_eq(stored.as_bytes(), secret_hash.as_bytes()))
    }
}

fn practice_from_row(row: &AnyRow) -> Result<PracticeRow> {
    let c = Cols::new(row, "practices");
    Ok(PracticeRow {
        id: c.text("id")?,
        name: c.text("name")?,
        preset: c.text("preset")?,
        policy: c.opt_text("policy")?,
        timezone: c.text("timezone")?,
        settings: c.json("settings")?,
        created_at: c.ts("created_at")?,
    })
}
