//! The queue's per-practice summary (`practice_due`, issue 18) and the claim that uses it.
//!
//! Every claim stays inside one practice (`WHERE practice_id = $1 … FOR UPDATE SKIP LOCKED`), so
//! the schema can be distributed by practice (Citus refuses `FOR UPDATE` across shards). Workers
//! find the practices with due work by one scan of `practice_due`, the one statement of the
//! queue that reads across practices.
//!
//! The summary's rule: a practice's `next_due_at` is never later than the earliest instant at
//! which one of its rows becomes claimable (a pending row's `due_at`, a sending row's
//! `lease_until`); it may be earlier, and a claim in that practice then finds nothing and
//! recomputes it. Two writers keep it:
//! - a transaction that writes notifications remembers, per practice, the earliest claimable
//!   instant among the rows it wrote, and lowers the summary to it just before it commits (an
//!   upsert that only ever lowers it), after all its other writes, so it holds the summary's
//!   row lock only while committing and never waits for a notification row while holding it;
//! - a claim that took fewer rows than it asked for recomputes the summary from the rows, in two
//!   statements: the first takes the summary row's lock (waiting for a writer that is lowering it
//!   to commit), the second, with a snapshot taken after that lock, reads the truth. A writer that
//!   commits later lowers it again. So on PostgreSQL's read-committed transactions no
//!   interleaving leaves it late. A claim that took all it asked for leaves it as it is (due: it
//!   was, or the practice would not have been scanned) and records only its turn.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::codec::{Cols, json_rows, ms};
use super::notifications::{notification_column_names, notification_from_cols};
use super::{Store, Tx, notification_from_row};
use crate::{Backend, NotificationRow, Result, Status, StoreError};

/// What a transaction must do to the summary of one practice before it commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DueChange {
    /// Lower `next_due_at` to this instant (epoch ms) if it is later or unknown.
    Earliest(i64),
    /// Recompute it from the rows (a write whose rows' claimable instant is not known here).
    Recompute,
}

/// The practices to recompute or lower, by practice id (sorted: two transactions take the
/// summary rows' locks in the same order).
pub(crate) type DueChanges = BTreeMap<String, DueChange>;

/// Lowers the summary; creates the practice's row when it has none.
const LOWER_DUE: &str = "INSERT INTO practice_due (practice_id, next_due_at, turn_at) \
     VALUES ($1, $2, 0) \
     ON CONFLICT (practice_id) DO UPDATE SET next_due_at = excluded.next_due_at \
     WHERE practice_due.next_due_at IS NULL OR practice_due.next_due_at > excluded.next_due_at";

/// The first statement of a recomputation: creates the row if needed and takes its lock
/// (PostgreSQL's `ON CONFLICT DO UPDATE` locks the row it updates), recording a claim's turn.
const LOCK_DUE_FOR_TURN: &str = "INSERT INTO practice_due (practice_id, next_due_at, turn_at) \
     VALUES ($1, NULL, $2) \
     ON CONFLICT (practice_id) DO UPDATE SET turn_at = excluded.turn_at";
const LOCK_DUE: &str = "INSERT INTO practice_due (practice_id, next_due_at, turn_at) \
     VALUES ($1, NULL, 0) \
     ON CONFLICT (practice_id) DO UPDATE SET turn_at = practice_due.turn_at";

/// The second statement: the truth, read by a statement that starts after the lock is held.
///
/// A row being sent is stored `pending` with its lease (`notifications::stored_status`), so
/// `notifications_pending` lists the rows waiting and the rows in flight alike. The first arm
/// reads the earliest row waiting (past the rows in flight, which sit at the head of the index:
/// at most the batches being sent); the second, the claimable instant of each row in flight
/// before it (its lease end, or its due time if later). A row in flight due after the earliest
/// one waiting cannot become claimable before it: its lease began after it was due. Each arm
/// reads `notifications_pending` in its order: SQLite without statistics planned `MIN(…)` on
/// whichever index is led by practice_id and read every row of the practice (session 10). The
/// bound of the second arm is the `MIN` of the earliest waiting row and the largest instant,
/// rather than `COALESCE((… ORDER BY due_at LIMIT 1), …)`: PostgreSQL plans a `MIN` over a
/// `UNION ALL` for the first row (the index in its order), where it planned the lone
/// `ORDER BY … LIMIT 1`, without statistics, as a bitmap scan of the practice's every pending
/// row and a sort (142 ms at 400,000 rows; the p99 lateness of `rappel bench --notifications
/// 100000` went from 43 ms to 1.6 s before this was found, session 23).
pub(crate) const RECOMPUTE_DUE: &str = "UPDATE practice_due SET next_due_at = ( \
       SELECT MIN(c.t) FROM ( \
         SELECT t FROM ( \
           SELECT due_at AS t FROM notifications \
           WHERE practice_id = $1 AND status = 'pending' AND lease_owner IS NULL \
           ORDER BY due_at LIMIT 1) AS p \
         UNION ALL \
         SELECT CASE WHEN lease_until > due_at THEN lease_until ELSE due_at END AS t \
         FROM notifications \
         WHERE practice_id = $1 AND status = 'pending' AND lease_owner IS NOT NULL \
           AND due_at <= ( \
             SELECT MIN(b.t) FROM ( \
               SELECT t FROM ( \
                 SELECT due_at AS t FROM notifications \
                 WHERE practice_id = $1 AND status = 'pending' AND lease_owner IS NULL \
                 ORDER BY due_at LIMIT 1) AS w \
               UNION ALL SELECT 9223372036854775807) AS b)) AS c) \
     WHERE practice_id = $1";

/// The summary scan: the practices with due work, least recently served first.
pub(crate) const DUE_PRACTICES: &str = "SELECT practice_id FROM practice_due \
     WHERE next_due_at <= $1 ORDER BY turn_at, practice_id LIMIT $2";

/// The earliest instant of the summary: when the worker must look again.
pub(crate) const NEXT_DUE: &str = "SELECT MIN(next_due_at) AS t FROM practice_due";

/// The claim inside one practice. The candidates are picked in a MATERIALIZED CTE so that the
/// locking subquery runs exactly once; a plain `IN (subquery … LIMIT … SKIP LOCKED)` may be
/// re-evaluated by the planner and then lock (and claim) more rows than it returned.
///
/// The due rows come from `notifications_pending` in due-time order, stopping at the limit: the
/// rows waiting, and the rows in flight whose lease has expired (a row being sent is stored
/// `pending` with its lease, `notifications::stored_status`); the rows in flight with a live
/// lease are read and passed over (at most the batches being sent). The claim writes the lease
/// columns only, which no index names: on a page with room (the table's `fillfactor`,
/// migration 0024) PostgreSQL keeps the new version beside the old one and adds no index entry
/// (a HOT update). It wrote `status = 'sending'` before, which the partial indexes name, so each
/// claimed row took an entry in each of the table's four indexes (issue 18, session 23).
///
/// The update finds each locked row by its place in the table (`ctid`, a Tid Scan) rather than
/// by a descent of the primary key: a row locked by this statement cannot move before the
/// statement updates it. One case differs from the key: a due row that another transaction
/// rewrote (a replanning) and committed after this statement began is locked in its new version,
/// which this statement's snapshot may not see: it may then be left out of this claim, pending
/// and due, for the next claim to take (the key's descent would have followed it to its new
/// version at once). 1 µs a row instead of 6 (EXPLAIN ANALYZE, 500 rows), about a fifth of the
/// claim (issue 18, session 16).
pub(crate) const CLAIM_POSTGRES: &str = concat!(
    "WITH due AS MATERIALIZED ( \
       SELECT ctid AS row_id FROM notifications \
       WHERE practice_id = $5 AND status = 'pending' AND due_at <= $3 \
         AND (lease_until IS NULL OR lease_until < $3) \
       ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
     UPDATE notifications SET lease_owner = $1, \
       lease_until = $2, attempts = attempts + 1, updated_at = $3 \
     FROM due WHERE practice_id = $5 AND ctid = due.row_id \
     RETURNING ",
    notification_columns!()
);

/// SQLite's claim, two statements in the batch's write transaction. SQLite has one writer at a
/// time and `begin` holds the write lock, so nothing interleaves with them. The rows go out as
/// one JSON text rather than as rows (`UPDATE … RETURNING` gave 500 rows through `sqlx::Any`, at
/// about 20 µs a row of the write turn against 5 µs as JSON, ARCHITECTURE.md): first the due
/// rows in due-time order from `notifications_pending` (rows waiting, and rows in flight whose
/// lease has expired, as [`CLAIM_POSTGRES`] takes them), each as it is before the claim, in the
/// order of `notification_columns!()` (`codec::json_rows`; the audit copy, a BLOB, as its hex
/// digits), with their rowids…
///
/// Reading the rows in the statement that finds them spares a second lookup of each, by its key,
/// after the update (issue 18, session 21); [`Claimed::decode`] then writes the lease into each
/// row as [`CLAIM_SQLITE_UPDATE`] wrote it in the table.
pub(crate) const CLAIM_SQLITE_ROWS: &str = "SELECT json_group_array(rid) AS ids, \
       json_group_array(json_array( \
         practice_id, key, patient_id, rule, kind, channel, recipient, appointments, document, \
         task, auto_resend, due_at, window_end, status, reason, decided_at, attempts, \
         lease_owner, lease_until, last_error, \
         CASE WHEN typeof(rendered) = 'blob' THEN json_array(hex(rendered)) ELSE rendered END, \
         provider_id, created_at, updated_at)) AS claimed, count(*) AS n \
     FROM ( \
       SELECT rowid AS rid, * FROM notifications \
       WHERE practice_id = $1 AND status = 'pending' AND due_at <= $2 \
         AND (lease_until IS NULL OR lease_until < $2) \
       ORDER BY due_at LIMIT $3)";

/// … then their lease, each row found by its rowid (one descent of the table, where a key's is
/// two: the primary key's index, then the table). The unary `+` keeps the practice a check of
/// each row found, not an index to walk: without it SQLite read every entry of the practice in
/// `notifications_due` and tested its rowid against the list (`tests/plans.rs`). The status
/// stays `pending`: a row with a lease owner is being sent (`notifications::stored_status`), and
/// the row keeps its one entry in `notifications_pending`.
pub(crate) const CLAIM_SQLITE_UPDATE: &str = "UPDATE notifications SET \
       lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3 \
     WHERE +practice_id = $4 AND rowid IN (SELECT value FROM json_each($5))";

/// The instant at which a row as written becomes claimable, if it ever does.
pub(crate) fn claimable_at(n: &NotificationRow) -> Option<i64> {
    match n.status {
        Status::Pending => Some(ms(n.due_at)),
        Status::Sending => n.lease_until.map(ms),
        _ => None,
    }
}

impl Store {
    /// The earliest instant at which a notification of any practice may be claimable (a pending
    /// row's due time or a sending row's lease end), from the per-practice summary. It may be
    /// earlier than the truth (a claim then finds nothing and corrects the summary), never later.
    pub async fn next_due(&self) -> Result<Option<Timestamp>> {
        let row = sqlx::query(NEXT_DUE).fetch_one(self.read_pool()).await?;
        Cols::new(&row, "practice_due").opt_ts("t")
    }

    /// Claims up to `limit` notifications that are pending and due at `now`, or `sending` with an
    /// expired lease: sets status `sending`, `lease_owner`, `lease_until`, `attempts + 1` and
    /// commits before returning them, most overdue first.
    ///
    /// Fair across practices: the practices with due work (at most `limit` of them, least
    /// recently served first) each get an equal share of the batch, then the practices that
    /// filled their share get what is left. So a burst of thousands of messages in one practice
    /// delays another practice's due message by one batch at most. Each practice's claim is
    /// scoped by its `practice_id` and, when it takes fewer rows than it asked, recomputes that
    /// practice's summary; on PostgreSQL it is its own short transaction (`FOR UPDATE SKIP
    /// LOCKED`, so concurrent workers never get the same row), on SQLite two statements in the
    /// batch's one write transaction (`CLAIM_SQLITE_ROWS`, then `CLAIM_SQLITE_UPDATE`).
    pub async fn claim_due(
        &self,
        now: Timestamp,
        owner: &str,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<NotificationRow>> {
        let limit = limit.max(0);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let practices: Vec<String> = sqlx::query(DUE_PRACTICES)
            .bind(ms(now))
            .bind(limit)
            .fetch_all(self.read_pool())
            .await?
            .iter()
            .map(|row| Cols::new(row, "practice_due").text("practice_id"))
            .collect::<Result<_>>()?;
        if practices.is_empty() {
            return Ok(Vec::new());
        }
        let share = (limit / practices.len() as i64).max(1);
        // SQLite has one writer at a time: the whole batch takes one write turn. PostgreSQL
        // claims each practice in its own short transaction (on Citus, one shard each).
        let mut shared = match self.backend {
            Backend::Sqlite => Some(self.begin().await?),
            Backend::Postgres => None,
        };
        let mut claimed: Vec<Claimed> = Vec::new();
        let mut count = 0;
        let mut more = Vec::new();
        for practice in &practices {
            let left = limit - count;
            if left <= 0 {
                break;
            }
            let asked = share.min(left);
            let rows = self
                .claim_in_practice(shared.as_mut(), practice, now, owner, lease_until, asked)
                .await?;
            if rows.len() as i64 == asked {
                more.push(practice);
            }
            count += rows.len() as i64;
            claimed.push(rows);
        }
        for practice in more {
            let left = limit - count;
            if left <= 0 {
                break;
            }
            let rows = self
                .claim_in_practice(shared.as_mut(), practice, now, owner, lease_until, left)
                .await?;
            count += rows.len() as i64;
            claimed.push(rows);
        }
        if let Some(tx) = shared {
            tx.commit().await?;
        }
        // SQLite's rows are decoded once the write turn is given back: about 1 ms for 500 rows,
        // which the turn held on top of its 7–8 ms (issue 18, session 17). A row that cannot be
        // read keeps its lease and is claimed again when it expires (`StoreError::Corrupt`).
        let mut claimed = claimed
            .into_iter()
            .map(Claimed::decode)
            .collect::<Result<Vec<_>>>()?
            .concat();
        // RETURNING gives no order; workers expect the most overdue first.
        claimed.sort_by(|a, b| {
            (a.due_at, &a.practice_id, &a.key).cmp(&(b.due_at, &b.practice_id, &b.key))
        });
        Ok(claimed)
    }

    /// Claims up to `limit` due rows of one practice and keeps its summary (see
    /// [`Tx::claim_in_practice`]), in `shared` or else in a transaction of its own.
    async fn claim_in_practice(
        &self,
        shared: Option<&mut Tx>,
        practice_id: &str,
        now: Timestamp,
        owner: &str,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Claimed> {
        if let Some(tx) = shared {
            return tx
                .claim_in_practice(practice_id, now, owner, lease_until, limit)
                .await;
        }
        let mut tx = self.begin().await?;
        let claimed = tx
            .claim_in_practice(practice_id, now, owner, lease_until, limit)
            .await?;
        tx.commit().await?;
        Ok(claimed)
    }
}

/// The rows one practice's claim took: PostgreSQL's, read, or SQLite's as the one JSON text of
/// [`CLAIM_SQLITE_ROWS`] (the rows before the claim) and the lease it gave them, read by
/// [`Claimed::decode`] after the write transaction.
enum Claimed {
    Rows(Vec<NotificationRow>),
    Json {
        count: usize,
        text: String,
        lease: Lease,
    },
}

/// What [`CLAIM_SQLITE_UPDATE`] wrote into each claimed row.
struct Lease {
    owner: String,
    until: Timestamp,
    at: Timestamp,
}

impl Lease {
    /// The row as the claim left it: `lease_owner = $1, lease_until = $2, attempts =
    /// attempts + 1, updated_at = $3`, hence `sending` (`notifications::stored_status`).
    fn apply(&self, n: &mut NotificationRow) {
        n.status = Status::Sending;
        n.lease_owner = Some(self.owner.clone());
        n.lease_until = Some(self.until);
        n.attempts += 1;
        n.updated_at = self.at;
    }
}

impl Claimed {
    fn len(&self) -> usize {
        match self {
            Claimed::Rows(rows) => rows.len(),
            Claimed::Json { count, .. } => *count,
        }
    }

    fn decode(self) -> Result<Vec<NotificationRow>> {
        match self {
            Claimed::Rows(rows) => Ok(rows),
            Claimed::Json { text, lease, .. } => {
                let names = notification_column_names();
                json_rows(&text, &names, "notifications")?
                    .iter()
                    .map(|values| {
                        let mut n = notification_from_cols(&Cols::json_row(
                            &names,
                            values,
                            "notifications",
                        ))?;
                        lease.apply(&mut n);
                        Ok(n)
                    })
                    .collect()
            }
        }
    }
}

impl Tx {
    /// Claims up to `limit` due rows of one practice; recomputes its summary when it took fewer
    /// than `limit`, else records only the practice's turn.
    async fn claim_in_practice(
        &mut self,
        practice_id: &str,
        now: Timestamp,
        owner: &str,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Claimed> {
        let claimed = match self.backend {
            Backend::Postgres => {
                let rows = sqlx::query(CLAIM_POSTGRES)
                    .bind(owner)
                    .bind(ms(lease_until))
                    .bind(ms(now))
                    .bind(limit)
                    .bind(practice_id)
                    .fetch_all(&mut *self.inner)
                    .await?;
                Claimed::Rows(
                    rows.iter()
                        .map(notification_from_row)
                        .collect::<Result<Vec<_>>>()?,
                )
            }
            Backend::Sqlite => {
                self.claim_sqlite(practice_id, now, owner, lease_until, limit)
                    .await?
            }
        };
        if claimed.len() as i64 == limit {
            // A claim that took all it asked for leaves the summary due (there may be more rows
            // due, and a summary earlier than the truth is allowed) and records only its turn:
            // during a burst, the recomputation read past the rows just claimed, whose old
            // versions PostgreSQL's partial index still lists (issue 18, session 17). The claim
            // that takes fewer rows than it asked recomputes it.
            sqlx::query(LOCK_DUE_FOR_TURN)
                .bind(practice_id)
                .bind(ms(now))
                .execute(&mut *self.inner)
                .await?;
        } else {
            self.recompute_due(practice_id, Some(now)).await?;
        }
        Ok(claimed)
    }

    /// SQLite's claim ([`CLAIM_SQLITE_ROWS`], then [`CLAIM_SQLITE_UPDATE`]).
    async fn claim_sqlite(
        &mut self,
        practice_id: &str,
        now: Timestamp,
        owner: &str,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Claimed> {
        let row = sqlx::query(CLAIM_SQLITE_ROWS)
            .bind(practice_id)
            .bind(ms(now))
            .bind(limit)
            .fetch_one(&mut *self.inner)
            .await?;
        let cols = Cols::new(&row, "notifications");
        let count = usize::try_from(cols.int("n")?).unwrap_or(0);
        if count == 0 {
            return Ok(Claimed::Rows(Vec::new()));
        }
        let done = sqlx::query(CLAIM_SQLITE_UPDATE)
            .bind(owner)
            .bind(ms(lease_until))
            .bind(ms(now))
            .bind(practice_id)
            .bind(cols.text("ids")?)
            .execute(&mut *self.inner)
            .await?;
        // The write lock has been held since the read: every row read is there to update.
        if done.rows_affected() != count as u64 {
            return Err(StoreError::Corrupt {
                table: "notifications",
                reason: format!(
                    "a claim in practice {practice_id} read {count} rows and updated {}",
                    done.rows_affected()
                ),
            });
        }
        Ok(Claimed::Json {
            count,
            text: cols.text("claimed")?,
            // As the table holds them: whole milliseconds.
            lease: Lease {
                owner: owner.to_string(),
                until: Timestamp::from_millisecond(ms(lease_until)).unwrap_or(lease_until),
                at: Timestamp::from_millisecond(ms(now)).unwrap_or(now),
            },
        })
    }

    /// Remembers that `rows` were written as they are: the summary of their practices is
    /// lowered to their earliest claimable instant when the transaction commits.
    pub(crate) fn note_due(&mut self, rows: &[NotificationRow]) {
        for n in rows {
            if let Some(at) = claimable_at(n) {
                self.note_due_change(&n.practice_id, DueChange::Earliest(at));
            }
        }
    }

    pub(crate) fn note_due_change(&mut self, practice_id: &str, change: DueChange) {
        let merged = match (self.due.get(practice_id), change) {
            (Some(DueChange::Recompute), _) | (_, DueChange::Recompute) => DueChange::Recompute,
            (Some(DueChange::Earliest(a)), DueChange::Earliest(b)) => {
                DueChange::Earliest((*a).min(b))
            }
            (None, change) => change,
        };
        self.due.insert(practice_id.to_string(), merged);
    }

    /// Applies the remembered changes; called by `commit`, after every other write.
    pub(crate) async fn flush_due(&mut self) -> Result<()> {
        for (practice_id, change) in std::mem::take(&mut self.due) {
            match change {
                DueChange::Earliest(at) => {
                    sqlx::query(LOWER_DUE)
                        .bind(&practice_id)
                        .bind(at)
                        .execute(&mut *self.inner)
                        .await?;
                }
                DueChange::Recompute => self.recompute_due(&practice_id, None).await?,
            }
        }
        Ok(())
    }

    /// Sets the practice's summary to the truth: lock its row first, then read in a new
    /// statement (see the module's comment). `turn` records a claim's turn.
    async fn recompute_due(&mut self, practice_id: &str, turn: Option<Timestamp>) -> Result<()> {
        let lock = match turn {
            Some(at) => sqlx::query(LOCK_DUE_FOR_TURN)
                .bind(practice_id)
                .bind(ms(at)),
            None => sqlx::query(LOCK_DUE).bind(practice_id),
        };
        lock.execute(&mut *self.inner).await?;
        sqlx::query(RECOMPUTE_DUE)
            .bind(practice_id)
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imp::codec::json_element;

    /// The claim's read lists the columns in the order of `notification_columns!()`, each as
    /// `codec::json_rows` reads it.
    #[test]
    fn the_sqlite_claim_reads_every_column_in_order() {
        let elements: Vec<String> = notification_column_names()
            .into_iter()
            .map(json_element)
            .collect();
        let read: String = CLAIM_SQLITE_ROWS
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let expected = format!("json_group_array(json_array( {}))", elements.join(", "));
        assert!(read.contains(&expected), "{read}\n{expected}");
    }
}
