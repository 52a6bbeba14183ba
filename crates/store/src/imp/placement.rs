//! SQLite: where a new notification row goes in the table, by its due minute (issue 18).
//!
//! A SQLite table is a b-tree ordered by `rowid`, and a row's place there is where its page is:
//! left to SQLite, a row's `rowid` is the next integer, so rows sit in the order they were
//! planned. A booking plans its messages together (a confirmation due now, reminders due days
//! later), so the messages that come due together, and that one claim takes, were spread one
//! per page: a dispatch burst wrote 2.3 pages of WAL per message, claim and record. Rows placed
//! by due minute sit with the rows due beside them, and a claim of 500 rewrites a few dozen
//! pages instead of 500 (0.44 pages a message on a copy of a bench database ordered so).
//!
//! A row inserted now gets `rowid = minute << 32 | n`: `minute` is its due instant in minutes
//! since the epoch (clamped to 1 ..= 2³¹ − 1, so rows of every instant fit in an `i64` and never
//! meet the small rowids that rows of earlier versions were given), `n` counts the rows of that
//! minute in the order they were planned. The next `n` of a minute is read from the table
//! (`MAX(rowid)` in the minute's range: one seek in the table's own b-tree) once per
//! transaction, which holds SQLite's write lock, so two writers never pick the same rowid.
//!
//! Only the place depends on the due time: a row keeps its rowid when it is replanned, and
//! nothing reads rowids (rows are found by `(practice_id, key)`; `VACUUM` may renumber them).
//! PostgreSQL places rows itself (a heap), so none of this applies there.

use std::collections::HashMap;

use jiff::Timestamp;

use super::Tx;
use super::codec::{Cols, ms};
use crate::Result;

/// Rows a due minute holds before its rowids would run into the next minute's.
const PER_MINUTE: i64 = 1 << 32;

/// The next rowid of each due minute this transaction has placed rows in.
pub(crate) type Placement = HashMap<i64, i64>;

/// The due minute that places a row (see the module comment).
fn minute(due_at: Timestamp) -> i64 {
    ms(due_at).div_euclid(60_000).clamp(1, (1 << 31) - 1)
}

impl Tx {
    /// SQLite: the rowids of new notification rows due at these instants, in order (see the
    /// module comment).
    pub(crate) async fn place_notifications(&mut self, due: &[Timestamp]) -> Result<Vec<i64>> {
        let minutes: Vec<i64> = due.iter().map(|&at| minute(at)).collect();
        let mut unknown: Vec<i64> = minutes
            .iter()
            .copied()
            .filter(|m| !self.placement.contains_key(m))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        if !unknown.is_empty() {
            let list = serde_json::to_string(&unknown).expect("a list of integers");
            let rows = sqlx::query(
                "SELECT minute.value AS minute, (SELECT MAX(rowid) FROM notifications \
                   WHERE rowid BETWEEN minute.value * 4294967296 \
                     AND minute.value * 4294967296 + 4294967295) AS last \
                 FROM json_each($1) AS minute",
            )
            .bind(list)
            .fetch_all(&mut *self.inner)
            .await?;
            for row in &rows {
                let cols = Cols::new(row, "notifications");
                let minute = cols.int("minute")?;
                let next = match cols.opt_int("last")? {
                    Some(last) => last + 1,
                    None => minute * PER_MINUTE,
                };
                self.placement.insert(minute, next);
            }
        }
        Ok(minutes
            .iter()
            .map(|m| {
                let next = self
                    .placement
                    .get_mut(m)
                    .expect("every minute was read above");
                let rowid = *next;
                // 2³² rows due in one minute would spill into the next minute's rowids (and a
                // collision there fails the insert, it overwrites nothing).
                *next += 1;
                rowid
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_stay_clear_of_legacy_rowids_and_fit_an_i64() {
        assert_eq!(minute(Timestamp::UNIX_EPOCH), 1);
        assert_eq!(minute("1960-01-01T00:00:00Z".parse().unwrap()), 1);
        let late = minute(Timestamp::MAX);
        assert_eq!(late, (1 << 31) - 1);
        assert!(late.checked_mul(PER_MINUTE).is_some());
        let t: Timestamp = "2026-12-06T10:00:59Z".parse().unwrap();
        assert_eq!(minute(t), minute("2026-12-06T10:00:00Z".parse().unwrap()));
        assert_eq!(
            minute(t) + 1,
            minute("2026-12-06T10:01:00Z".parse().unwrap())
        );
    }
}
