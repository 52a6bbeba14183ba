//! Scheduled tasks (programmateur): their definitions, the claim of each occurrence's run,
//! and how a run's messages stand.

use serde_json::Value;
use sqlx::any::AnyRow;

use super::Tx;
use super::codec::{Cols, flag, like_escape, ms, to_json};
use crate::{Result, Status, TaskRow, TaskRunRow};

const TASK_RUN_COLUMNS: &str =
    "practice_id, task_id, occurrence, scheduled_for, started_at, summary";

impl Tx {
    pub async fn upsert_task(&mut self, task: &TaskRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO tasks (practice_id, id, definition, active, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (practice_id, id) DO UPDATE SET definition = excluded.definition, \
               active = excluded.active",
        )
        .bind(&task.practice_id)
        .bind(&task.id)
        .bind(to_json("tasks", &task.definition)?)
        .bind(flag(task.active))
        .bind(ms(task.created_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    pub async fn task(&mut self, practice_id: &str, id: &str) -> Result<Option<TaskRow>> {
        let row = sqlx::query(
            "SELECT practice_id, id, definition, active, created_at FROM tasks \
             WHERE practice_id = $1 AND id = $2",
        )
        .bind(practice_id)
        .bind(id)
        .fetch_optional(&mut *self.inner)
        .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    pub async fn tasks(&mut self, practice_id: &str) -> Result<Vec<TaskRow>> {
        let rows = sqlx::query(
            "SELECT practice_id, id, definition, active, created_at FROM tasks \
             WHERE practice_id = $1 ORDER BY id",
        )
        .bind(practice_id)
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    /// Deletes the definition; its past runs stay, as the record of what was sent.
    pub async fn delete_task(&mut self, practice_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM tasks WHERE practice_id = $1 AND id = $2")
            .bind(practice_id)
            .bind(id)
            .execute(&mut *self.inner)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the run of an occurrence unless one exists: returns whether this caller won it.
    pub async fn claim_task_run(&mut self, run: &TaskRunRow) -> Result<bool> {
        let sql = format!(
            "INSERT INTO task_runs ({TASK_RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (practice_id, task_id, occurrence) DO NOTHING"
        );
        let done = sqlx::query(&sql)
            .bind(&run.practice_id)
            .bind(&run.task_id)
            .bind(&run.occurrence)
            .bind(ms(run.scheduled_for))
            .bind(ms(run.started_at))
            .bind(to_json("task_runs", &run.summary)?)
            .execute(&mut *self.inner)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn finish_task_run(
        &mut self,
        practice_id: &str,
        task_id: &str,
        occurrence: &str,
        summary: &Value,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE task_runs SET summary = $4 \
             WHERE practice_id = $1 AND task_id = $2 AND occurrence = $3",
        )
        .bind(practice_id)
        .bind(task_id)
        .bind(occurrence)
        .bind(to_json("task_runs", summary)?)
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// The task's runs, latest occurrence first, at most `limit`.
    pub async fn task_runs(
        &mut self,
        practice_id: &str,
        task_id: &str,
        limit: i64,
    ) -> Result<Vec<TaskRunRow>> {
        let sql = format!(
            "SELECT {TASK_RUN_COLUMNS} FROM task_runs WHERE practice_id = $1 AND task_id = $2 \
             ORDER BY scheduled_for DESC, occurrence DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(practice_id)
            .bind(task_id)
            .bind(limit.max(0))
            .fetch_all(&mut *self.inner)
            .await?;
        rows.iter().map(task_run_from_row).collect()
    }

    /// The latest occurrence that ran, if any.
    pub async fn last_task_run(
        &mut self,
        practice_id: &str,
        task_id: &str,
    ) -> Result<Option<TaskRunRow>> {
        Ok(self
            .task_runs(practice_id, task_id, 1)
            .await?
            .into_iter()
            .next())
    }

    /// How the messages of one task run stand: the rows of task `task_id` whose key starts with
    /// `key_prefix` (`t:TASK/OCCURRENCE/`), counted by status and reason, ordered by status then
    /// reason (no reason first).
    pub async fn task_notification_counts(
        &mut self,
        practice_id: &str,
        task_id: &str,
        key_prefix: &str,
    ) -> Result<Vec<(Status, Option<rappel_domain::notification::Reason>, i64)>> {
        use rappel_domain::notification::Reason;
        // `task = $2` as well as the prefix: SQLite's LIKE ignores ASCII case, and task `T1`'s
        // rows must not count for task `t1`. The scan stays within the practice's rows.
        let pattern = format!("{}%", like_escape(key_prefix));
        let rows = sqlx::query(concat!(
            "SELECT ",
            read_status!(),
            " AS status, reason, COUNT(*) AS n FROM notifications \
             WHERE practice_id = $1 AND task = $2 AND key LIKE $3 ESCAPE '\\' \
             GROUP BY 1, 2"
        ))
        .bind(practice_id)
        .bind(task_id)
        .bind(pattern)
        .fetch_all(&mut *self.inner)
        .await?;
        let mut counts = rows
            .iter()
            .map(|row| {
                let c = Cols::new(row, "notifications");
                Ok((
                    c.parse("status", Status::parse)?,
                    c.opt_parse("reason", Reason::parse)?,
                    c.int("n")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        // Sorted here: the backends disagree on where NULL sorts.
        counts.sort_by(|a, b| {
            (a.0.as_str(), a.1.map(Reason::as_str)).cmp(&(b.0.as_str(), b.1.map(Reason::as_str)))
        });
        Ok(counts)
    }
}

fn task_from_row(row: &AnyRow) -> Result<TaskRow> {
    let c = Cols::new(row, "tasks");
    Ok(TaskRow {
        practice_id: c.text("practice_id")?,
        id: c.text("id")?,
        definition: c.json("definition")?,
        active: c.flag("active")?,
        created_at: c.ts("created_at")?,
    })
}

fn task_run_from_row(row: &AnyRow) -> Result<TaskRunRow> {
    let c = Cols::new(row, "task_runs");
    Ok(TaskRunRow {
        practice_id: c.text("practice_id")?,
        task_id: c.text("task_id")?,
        occurrence: c.text("occurrence")?,
        scheduled_for: c.ts("scheduled_for")?,
        started_at: c.ts("started_at")?,
        summary: c.json("summary")?,
    })
}
