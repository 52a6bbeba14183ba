//! What the practice's letters cost, and the print batch's day, both by the engine's clock in the
//! practice's time zone (SPEC.md rule 5): a month or a day is the practice's, not the machine's.
//!
//! What it deliberately does not do: price anything. A letter's cost is what its transport
//! reported at hand-off (the provider's price, or the configured tariff), recorded by dispatch.

use std::path::Path;

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use rappel_channels::postal::{Batch, assemble_batch};
use serde::Serialize;

use crate::practice::load_practice;
use crate::timeline::format_instant;
use crate::{Engine, EngineError, Result};

/// One letter of the month, as `GET /v1/postal/costs` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostalCost {
    /// The notification's identity key.
    pub key: String,
    pub document: Option<String>,
    /// The hand-off, practice-local with its offset.
    pub sent_at: String,
    pub cost_cents: i64,
}

/// A practice's postal spend over one calendar month of its own time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostalSpend {
    /// `YYYY-MM`.
    pub month: String,
    pub currency: &'static str,
    pub letters: usize,
    pub total_cents: i64,
    pub items: Vec<PostalCost>,
}

/// `YYYY-MM` → the first day of that month.
fn parse_month(text: &str) -> Result<Date> {
    let invalid = || EngineError::invalid("month", format!("`{text}` is not a month like 2026-11"));
    let (year, month) = text.trim().split_once('-').ok_or_else(invalid)?;
    if year.len() != 4 || month.len() != 2 {
        return Err(invalid());
    }
    let year: i16 = year.parse().map_err(|_| invalid())?;
    let month: i8 = month.parse().map_err(|_| invalid())?;
    Date::new(year, month, 1).map_err(|_| invalid())
}

impl Engine {
    /// Today in the practice's time zone, by the engine's clock.
    pub async fn practice_today(&self, practice_id: &str) -> Result<Date> {
        let now = self.now();
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        tx.commit().await?;
        Ok(now.to_zoned(ctx.tz).date())
    }

    /// The letters handed off during `month` (`YYYY-MM`, the practice's calendar month; the
    /// current month by the engine's clock when `None`) and what they cost.
    pub async fn postal_costs(
        &self,
        practice_id: &str,
        month: Option<&str>,
    ) -> Result<PostalSpend> {
        let now = self.now();
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let first = match month {
            Some(text) => parse_month(text)?,
            None => now.to_zoned(ctx.tz.clone()).date().first_of_month(),
        };
        let bound = |day: Date| -> Result<Timestamp> {
            day.to_zoned(ctx.tz.clone())
                .map(|z| z.timestamp())
                .map_err(|e| EngineError::invalid("month", e.to_string()))
        };
        let next = first
            .checked_add(1.month())
            .map_err(|e| EngineError::invalid("month", e.to_string()))?;
        let rows = tx
            .postal_costs(practice_id, bound(first)?, bound(next)?)
            .await?;
        tx.commit().await?;
        let items: Vec<PostalCost> = rows
            .into_iter()
            .map(|r| PostalCost {
                key: r.key,
                document: r.document,
                sent_at: format_instant(r.sent_at, &ctx.tz),
                cost_cents: r.cost_cents,
            })
            .collect();
        Ok(PostalSpend {
            month: first.strftime("%Y-%m").to_string(),
            currency: "EUR",
            letters: items.len(),
            total_cents: items.iter().map(|i| i.cost_cents).sum(),
            items,
        })
    }

    /// The one practice of this database, for commands that may leave it unnamed.
    pub async fn sole_practice(&self) -> Result<String> {
        let mut tx = self.store().begin_read().await?;
        let practices = tx.practices().await?;
        tx.commit().await?;
        match &practices[..] {
            [one] => Ok(one.id.clone()),
            [] => Err(EngineError::invalid(
                "practice",
                "this database has no practice",
            )),
            many => Err(EngineError::invalid(
                "practice",
                format!(
                    "this database has {} practices: name one ({})",
                    many.len(),
                    many.iter()
                        .map(|p| p.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// `rappel print-batch`: assembles the practice's letters of `date` (today in the practice's
    /// time zone, by the engine's clock, when `None`) from the print folder `dir`.
    pub async fn print_batch(
        &self,
        dir: &Path,
        practice_id: &str,
        date: Option<Date>,
    ) -> Result<Batch> {
        let date = match date {
            Some(date) => date,
            None => self.practice_today(practice_id).await?,
        };
        let (dir, practice) = (dir.to_path_buf(), practice_id.to_string());
        tokio::task::spawn_blocking(move || assemble_batch(&dir, &practice, date))
            .await
            .map_err(|e| EngineError::invalid("print batch", e.to_string()))?
            .map_err(|e| EngineError::invalid("print batch", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_written_year_dash_month() {
        assert_eq!(
            parse_month("2026-11").unwrap(),
            jiff::civil::date(2026, 11, 1)
        );
        for bad in ["2026-13", "2026/11", "26-11", "2026-1", "novembre", ""] {
            assert!(parse_month(bad).is_err(), "{bad}");
        }
    }
}
