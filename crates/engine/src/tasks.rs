//! Scheduled tasks (the programmateur): their definitions, their runs, and a dry run.
//!
//! Each due occurrence is claimed once across all nodes (a unique run row, inserted in the same
//! transaction as the run's messages), its recipients selected by the pure
//! [`rappel_domain::task::select_explained`], and its messages queued as ordinary notifications
//! keyed `t:TASK/OCCURRENCE/PATIENT/CHANNEL`: switches, contacts, quota and quiet hours apply at
//! send time as for any message, and a patient's timeline explains a message that was not sent.
//!
//! After downtime only the latest missed occurrence runs, once, and its run records how late it
//! was. A run records what it knew when it ran (how many patients matched, how many the task's
//! exclusions left out and why); what became of its messages is read from the queue when the
//! runs are listed, since the dispatcher decides later and asynchronously.
//!
//! One concern, one file (some 710 lines): the definitions, the claim of an occurrence, the dry
//! run and the run share the loading and checking of a task; who a run selects is the domain's
//! (`task::select`), and its messages are dispatched as any other.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use rappel_domain::facts::{Appointment, Motive, Practitioner};
use rappel_domain::gate;
use rappel_domain::notification::{Channel, Kind, Reason};
use rappel_domain::plan::{SendDecision, send_decision};
use rappel_domain::render::{AppointmentView, RenderInput, Rendered, render};
use rappel_domain::task::{
    InvalidTask, Occurrence, Selection, TaskDef, TaskType, select_explained,
};
use rappel_store::{NotificationRow, Status, StoreError, TaskRow, TaskRunRow, Tx};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::practice::{PracticeCtx, load_practice};
use crate::timeline::format_instant;
use crate::{Engine, EngineError, Result};

/// A run later than this after its scheduled instant says `late` (the engine was down, or busy).
const LATE_AFTER_MS: i64 = 60_000;

/// A task as the API shows it: its definition, and when it was created and runs next.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Task))]
pub struct TaskView {
    #[serde(flatten)]
    pub definition: TaskDef,
    /// When the task was created (a request that sends it is refused).
    #[cfg_attr(feature = "openapi", schema(format = DateTime, read_only))]
    pub created_at: String,
    /// The next run (in the past when one is due and waits for the scheduler); null when the
    /// task is inactive or will not run again (a request that sends it is refused).
    #[cfg_attr(feature = "openapi", schema(format = DateTime, read_only))]
    pub next_run_at: Option<String>,
}

/// One run of a task, with what became of its messages so far.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TaskRun))]
pub struct TaskRunView {
    /// `YYYY-MM-DD`, or `YYYY-MM-DDTHH:MM` for a cron task that fires several times a day.
    pub occurrence: String,
    pub scheduled_for: String,
    pub started_at: String,
    /// Started more than a minute after `scheduled_for` (the engine was down at the run time).
    pub late: bool,
    pub late_ms: i64,
    /// Patients the task's criteria matched (= queued + excluded).
    pub matched: i64,
    /// Messages the run queued.
    pub queued: i64,
    /// Handed to the provider (sent or delivered).
    pub sent: i64,
    /// Waiting: due later (quiet hours) or being sent.
    pub pending: i64,
    pub failed: i64,
    /// Patients not messaged, by reason: the task's exclusions (`later_appointment`,
    /// `seen_since`) and the send-time reasons of SPEC.md rule 4 (`no_email`, `quota_exhausted`…).
    pub skipped: BTreeMap<String, i64>,
}

/// What a run of the task would do now, written nowhere.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskPreview {
    pub task: String,
    /// The local date the preview runs the task for: today, in practice time.
    pub date: String,
    pub at: String,
    pub channel: Channel,
    pub matched: usize,
    pub recipients: Vec<PreviewRecipient>,
    pub skipped: Vec<PreviewSkipped>,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewRecipient {
    pub patient: String,
    pub name: String,
    pub appointments: Vec<String>,
    /// Now, or the end of the channel's quiet hours.
    pub send_at: String,
    /// The message as it would be rendered now.
    pub message: Rendered,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewSkipped {
    pub patient: String,
    pub appointments: Vec<String>,
    pub reason: String,
    /// The reason in French, for the practice.
    pub explanation: String,
}

fn invalid(error: InvalidTask) -> EngineError {
    EngineError::invalid(error.field, error.reason)
}

fn corrupt(task: &str, error: impl std::fmt::Display) -> EngineError {
    EngineError::Store(StoreError::Corrupt {
        table: "tasks",
        reason: format!("task `{task}`: {error}"),
    })
}

fn definition(row: &TaskRow) -> Result<TaskDef> {
    serde_json::from_value(row.definition.clone()).map_err(|e| corrupt(&row.id, e))
}

fn task_row(practice_id: &str, def: &TaskDef, created_at: Timestamp) -> TaskRow {
    TaskRow {
        practice_id: practice_id.to_string(),
        id: def.id.clone(),
        definition: serde_json::to_value(def).expect("tasks serialize"),
        active: def.active,
        created_at,
    }
}

impl Engine {
    /// Creates or replaces a task after checking it (scenario files; the API creates with
    /// [`Engine::create_task`] and changes with [`Engine::patch_task`]).
    pub async fn put_task(&self, practice_id: &str, def: &TaskDef) -> Result<()> {
        def.check().map_err(invalid)?;
        let now = self.now();
        let mut tx = self.store().begin().await?;
        load_practice(&mut tx, practice_id).await?;
        let created_at = tx
            .task(practice_id, &def.id)
            .await?
            .map(|t| t.created_at)
            .unwrap_or(now);
        tx.upsert_task(&task_row(practice_id, def, created_at))
            .await?;
        tx.commit().await?;
        self.work_added();
        Ok(())
    }

    /// Creates a task; an existing id is refused (a change is a PATCH).
    pub async fn create_task(&self, practice_id: &str, def: &TaskDef) -> Result<TaskView> {
        def.check().map_err(invalid)?;
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        if tx.task(practice_id, &def.id).await?.is_some() {
            return Err(EngineError::invalid(
                "id",
                format!(
                    "a task `{}` already exists; PATCH /v1/tasks/{} changes it",
                    def.id, def.id
                ),
            ));
        }
        let row = task_row(practice_id, def, now);
        tx.upsert_task(&row).await?;
        let view = task_view(&mut tx, &ctx, &row, now).await?;
        tx.commit().await?;
        self.work_added();
        Ok(view)
    }

    pub async fn get_task(&self, practice_id: &str, id: &str) -> Result<TaskView> {
        let now = self.now();
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let row = tx
            .task(practice_id, id)
            .await?
            .ok_or_else(|| EngineError::not_found("task", id))?;
        let view = task_view(&mut tx, &ctx, &row, now).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// The practice's tasks, by id.
    pub async fn list_tasks(&self, practice_id: &str) -> Result<Vec<TaskView>> {
        let now = self.now();
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let mut views = Vec::new();
        for row in tx.tasks(practice_id).await? {
            views.push(task_view(&mut tx, &ctx, &row, now).await?);
        }
        tx.commit().await?;
        Ok(views)
    }

    /// Merges `patch` onto the stored definition (JSON merge patch: a member replaces the
    /// field, `null` removes it), checks the result as a whole and stores it. The task keeps
    /// its creation instant and its runs: an occurrence that already ran does not run again
    /// because its time changed.
    pub async fn patch_task(
        &self,
        practice_id: &str,
        id: &str,
        patch: &Map<String, Value>,
    ) -> Result<TaskView> {
        if let Some(other) = patch.get("id").filter(|v| !v.is_null())
            && other.as_str() != Some(id)
        {
            return Err(EngineError::invalid(
                "id",
                format!("a task's id cannot change (`{id}`)"),
            ));
        }
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let row = tx
            .task(practice_id, id)
            .await?
            .ok_or_else(|| EngineError::not_found("task", id))?;
        let Value::Object(mut merged) = row.definition.clone() else {
            return Err(corrupt(id, "the definition is not a JSON object"));
        };
        for (field, value) in patch {
            if value.is_null() {
                merged.remove(field);
            } else {
                merged.insert(field.clone(), value.clone());
            }
        }
        merged.insert("id".into(), Value::String(id.to_string()));
        let def: TaskDef = serde_json::from_value(Value::Object(merged)).map_err(|e| {
            let reason = e.to_string();
            match quoted(&reason, "missing field `") {
                Some(field) => EngineError::invalid(field, "this field is required"),
                None => EngineError::invalid(
                    quoted(&reason, "unknown field `").unwrap_or("task"),
                    reason.clone(),
                ),
            }
        })?;
        def.check().map_err(invalid)?;
        let row = task_row(practice_id, &def, row.created_at);
        tx.upsert_task(&row).await?;
        let view = task_view(&mut tx, &ctx, &row, now).await?;
        tx.commit().await?;
        self.work_added();
        Ok(view)
    }

    /// Deletes a task; its past runs and their messages stay, as the record of what was sent.
    pub async fn delete_task(&self, practice_id: &str, id: &str) -> Result<()> {
        let mut tx = self.store().begin().await?;
        load_practice(&mut tx, practice_id).await?;
        if !tx.delete_task(practice_id, id).await? {
            return Err(EngineError::not_found("task", id));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The task's latest runs (at most `limit`, latest first), with their messages' counts.
    pub async fn task_runs(
        &self,
        practice_id: &str,
        id: &str,
        limit: i64,
    ) -> Result<Vec<TaskRunView>> {
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        if tx.task(practice_id, id).await?.is_none() {
            return Err(EngineError::not_found("task", id));
        }
        let mut views = Vec::new();
        for run in tx.task_runs(practice_id, id, limit).await? {
            let counts = tx
                .task_notification_counts(practice_id, id, &run_key_prefix(id, &run.occurrence))
                .await?;
            views.push(run_view(&run, &counts, &ctx));
        }
        tx.commit().await?;
        Ok(views)
    }

    /// Who the task's next run would message, with the message each would get and when, and
    /// who it would skip and why — a run waiting to happen, else the next one by the schedule,
    /// else (an inactive or finished task) a run now. The selection is made as of that run's
    /// date and time, from today's facts. Writes nothing.
    pub async fn preview_task(&self, practice_id: &str, id: &str) -> Result<TaskPreview> {
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let row = tx
            .task(practice_id, id)
            .await?
            .ok_or_else(|| EngineError::not_found("task", id))?;
        let def = definition(&row)?;
        let last = tx.last_task_run(practice_id, id).await?;
        let current = self.now();
        let now = active_def(&row)
            .and_then(|active| {
                pending_occurrence(&active, &row, last.as_ref(), &ctx, current)
                    .map(|o| o.at.max(current))
                    .or_else(|| upcoming(&active, &row, last.as_ref(), &ctx, current).map(|o| o.at))
            })
            .unwrap_or(current);
        let date = now.to_zoned(ctx.tz.clone()).date();
        let selection = select_for(&mut tx, &ctx, &def, date, now).await?;
        let mut recipients = Vec::new();
        let mut skipped: Vec<PreviewSkipped> = selection
            .excluded
            .iter()
            .map(|e| PreviewSkipped {
                patient: e.patient.clone(),
                appointments: e.appointments.clone(),
                reason: e.reason.as_str().to_string(),
                explanation: e.reason.french().to_string(),
            })
            .collect();
        let mut practitioners: BTreeMap<String, Option<Practitioner>> = BTreeMap::new();
        let mut motives: BTreeMap<String, Option<Motive>> = BTreeMap::new();
        for s in &selection.selected {
            let skip = |reason: Reason| PreviewSkipped {
                patient: s.patient.clone(),
                appointments: s.appointments.clone(),
                reason: reason.as_str().to_string(),
                explanation: reason.french().to_string(),
            };
            // The dispatcher's checks, in its order: timing, erasure, contacts and switches.
            let send_at = match send_decision(ctx.plan_ctx(), Kind::Task, def.channel, None, now) {
                SendDecision::Send => now,
                SendDecision::Defer(at) => at,
                SendDecision::Passed => {
                    skipped.push(skip(Reason::WindowPassed));
                    continue;
                }
            };
            let patient = match tx.patient(practice_id, &s.patient).await? {
                Some(p) if !tx.is_erased(practice_id, &s.patient).await? => p,
                _ => {
                    skipped.push(skip(Reason::PatientErased));
                    continue;
                }
            };
            if let Err(reason) =
                gate::check_patient(&ctx.policy, &ctx.settings, &patient, def.channel)
            {
                skipped.push(skip(reason));
                continue;
            }
            let mut appointments: Vec<Appointment> = Vec::new();
            for a in &s.appointments {
                if let Some(found) = tx.appointment(practice_id, a).await? {
                    if !practitioners.contains_key(&found.practitioner) {
                        let p = tx.practitioner(practice_id, &found.practitioner).await?;
                        practitioners.insert(found.practitioner.clone(), p);
                    }
                    if let Some(m) = &found.motive
                        && !motives.contains_key(m)
                    {
                        let motive = tx.motive(practice_id, m).await?;
                        motives.insert(m.clone(), motive);
                    }
                    appointments.push(found);
                }
            }
            // As the dispatcher renders it (late binding: from the facts of now).
            let message = render(&RenderInput {
                practice_name: &ctx.row.name,
                tz: &ctx.tz,
                kind: Kind::Task,
                channel: def.channel,
                patient: Some(&patient),
                practitioner: None,
                appointments: appointments
                    .iter()
                    .map(|a| AppointmentView {
                        appointment: a,
                        practitioner: practitioners.get(&a.practitioner).and_then(Option::as_ref),
                        motive: a
                            .motive
                            .as_ref()
                            .and_then(|m| motives.get(m))
                            .and_then(Option::as_ref),
                    })
                    .collect(),
                document: None,
                document_link: None,
                answer_links: None,
                task_label: Some(&def.label),
                show_motive: ctx.settings.is_on("show_motive_in_sms"),
            });
            recipients.push(PreviewRecipient {
                patient: s.patient.clone(),
                name: patient.display_name(),
                appointments: s.appointments.clone(),
                send_at: format_instant(send_at, &ctx.tz),
                message,
            });
        }
        // Only reads happened: nothing to keep.
        drop(tx);
        skipped.sort_by(|a, b| a.patient.cmp(&b.patient));
        Ok(TaskPreview {
            task: def.id.clone(),
            date: date.to_string(),
            at: format_instant(now, &ctx.tz),
            channel: def.channel,
            matched: selection.matched(),
            recipients,
            skipped,
        })
    }

    /// The next instant a task of any practice is due (for the scheduler's sleep); in the
    /// past when an occurrence waits to run.
    pub async fn next_task_due(&self) -> Result<Option<Timestamp>> {
        let now = self.now();
        let mut tx = self.store().begin_read().await?;
        let mut next: Option<Timestamp> = None;
        for practice in tx.practices().await? {
            let ctx = load_practice(&mut tx, &practice.id).await?;
            for task in tx.tasks(&practice.id).await? {
                let Some(def) = active_def(&task) else {
                    continue;
                };
                let last = tx.last_task_run(&practice.id, &task.id).await?;
                let at = match pending_occurrence(&def, &task, last.as_ref(), &ctx, now) {
                    Some(due) => Some(due.at),
                    None => upcoming(&def, &task, last.as_ref(), &ctx, now).map(|o| o.at),
                };
                if let Some(at) = at {
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
            }
        }
        tx.commit().await?;
        Ok(next)
    }

    /// Runs every task occurrence that is due and has not run. After downtime only the latest
    /// missed occurrence runs (once), and its run says how late it was.
    pub async fn run_due_tasks(&self) -> Result<usize> {
        let now = self.now();
        let mut ran = 0;
        let practices = {
            let mut tx = self.store().begin().await?;
            let list = tx.practices().await?;
            tx.commit().await?;
            list
        };
        for practice in practices {
            // One transaction per practice: the run rows (the claims) and the messages commit
            // together, so a crash in between leaves the occurrence unclaimed, not half-sent.
            // On PostgreSQL a second node inserting the same run row waits for this commit and
            // then finds it taken.
            let mut tx = self.store().begin().await?;
            let ctx = load_practice(&mut tx, &practice.id).await?;
            for task in tx.tasks(&practice.id).await? {
                let Some(def) = active_def(&task) else {
                    continue;
                };
                let last = tx.last_task_run(&practice.id, &task.id).await?;
                let Some(occurrence) = pending_occurrence(&def, &task, last.as_ref(), &ctx, now)
                else {
                    continue;
                };
                let claim = TaskRunRow {
                    practice_id: practice.id.clone(),
                    task_id: task.id.clone(),
                    occurrence: occurrence.key.clone(),
                    scheduled_for: occurrence.at,
                    started_at: now,
                    summary: json!({}),
                };
                if !tx.claim_task_run(&claim).await? {
                    continue;
                }
                let summary = run_occurrence(&mut tx, &ctx, &def, &occurrence, now).await?;
                tx.finish_task_run(&practice.id, &task.id, &occurrence.key, &summary)
                    .await?;
                ran += 1;
            }
            tx.commit().await?;
        }
        if ran > 0 {
            self.work_added();
        }
        Ok(ran)
    }
}

/// Selects the occurrence's patients, queues one message each, and returns the run's summary.
async fn run_occurrence(
    tx: &mut Tx,
    ctx: &PracticeCtx,
    def: &TaskDef,
    occurrence: &Occurrence,
    now: Timestamp,
) -> Result<Value> {
    let practice_id = ctx.row.id.as_str();
    let selection = select_for(tx, ctx, def, occurrence.date, now).await?;
    let mut queued = 0;
    for s in &selection.selected {
        let key = format!(
            "{}{}/{}",
            run_key_prefix(&def.id, &occurrence.key),
            s.patient,
            def.channel
        );
        if tx.notification(practice_id, &key).await?.is_some() {
            continue;
        }
        let mut row = NotificationRow::pending(
            practice_id,
            key,
            &s.patient,
            &format!("task:{}", def.id),
            Kind::Task,
            def.channel,
            now,
        );
        row.appointments = s.appointments.clone();
        row.task = Some(def.id.clone());
        // No end-of-day limit (SPEC.md decision 2): `pending` has no `window_end`, so a message
        // held by quiet hours waits for their end (a recall decided at 21:30 goes at 08:00).
        tx.insert_notification(&row).await?;
        queued += 1;
    }
    let mut excluded: BTreeMap<&str, i64> = BTreeMap::new();
    for e in &selection.excluded {
        *excluded.entry(e.reason.as_str()).or_default() += 1;
    }
    let late_ms = now.duration_since(occurrence.at).as_millis() as i64;
    Ok(json!({
        "matched": selection.matched(),
        "queued": queued,
        "excluded": excluded,
        "late_ms": late_ms,
        "late": late_ms > LATE_AFTER_MS,
    }))
}

/// Loads what the task's type needs and selects its patients for a run on `date` at `now`.
async fn select_for(
    tx: &mut Tx,
    ctx: &PracticeCtx,
    def: &TaskDef,
    date: jiff::civil::Date,
    now: Timestamp,
) -> Result<Selection> {
    let practice_id = ctx.row.id.as_str();
    let history = match def.task_type {
        // The range and everything after it: later appointments and visits since count.
        TaskType::MissedAppointments => {
            let first_day = def.range.map(|r| r[0]).unwrap_or(0).min(0) - 1;
            let from = date
                .checked_add(jiff::Span::new().days(first_day))
                .unwrap_or(date);
            let from_ts = ctx
                .plan_ctx()
                .local_instant(from, jiff::civil::Time::midnight());
            tx.appointments_between(practice_id, from_ts, Timestamp::MAX)
                .await?
        }
        TaskType::Birthdays | TaskType::Recall => {
            tx.appointments_between(practice_id, Timestamp::MIN, Timestamp::MAX)
                .await?
        }
    };
    let patients = tx.all_patients(practice_id).await?;
    Ok(select_explained(
        def, &ctx.tz, date, now, &patients, &history,
    ))
}

/// The start of the identity keys of one run's messages.
fn run_key_prefix(task: &str, occurrence: &str) -> String {
    format!("t:{task}/{occurrence}/")
}

/// The occurrence that is due at `now` and has not run, if any: the latest one at or before
/// `now` (earlier missed ones are never run), not older than the task, and later than the last
/// run (by instant and by key, so that a changed run time does not run a period twice).
fn pending_occurrence(
    def: &TaskDef,
    task: &TaskRow,
    last: Option<&TaskRunRow>,
    ctx: &PracticeCtx,
    now: Timestamp,
) -> Option<Occurrence> {
    let due = def.latest_due(&ctx.tz, now)?;
    // An occurrence that was already past when the task was created does not run.
    if due.at < task.created_at {
        return None;
    }
    if let Some(last) = last
        && (last.scheduled_for >= due.at || last.occurrence == due.key)
    {
        return None;
    }
    Some(due)
}

/// The first occurrence after `now` that would run.
fn upcoming(
    def: &TaskDef,
    task: &TaskRow,
    last: Option<&TaskRunRow>,
    ctx: &PracticeCtx,
    now: Timestamp,
) -> Option<Occurrence> {
    let mut after = now.max(task.created_at - SignedDuration::from_nanos(1));
    // At most two steps: the last run's key can only be taken by the first occurrence after now
    // (when the run time moved later the same day).
    for _ in 0..2 {
        let next = def.next_after(&ctx.tz, after)?;
        if last.is_some_and(|l| l.occurrence == next.key) {
            after = next.at;
            continue;
        }
        return Some(next);
    }
    None
}

async fn task_view(
    tx: &mut Tx,
    ctx: &PracticeCtx,
    row: &TaskRow,
    now: Timestamp,
) -> Result<TaskView> {
    let def = definition(row)?;
    let next_run_at = match active_def(row) {
        Some(def) => {
            let last = tx.last_task_run(&row.practice_id, &row.id).await?;
            pending_occurrence(&def, row, last.as_ref(), ctx, now)
                .or_else(|| upcoming(&def, row, last.as_ref(), ctx, now))
                .map(|o| format_instant(o.at, &ctx.tz))
        }
        None => None,
    };
    Ok(TaskView {
        definition: def,
        created_at: format_instant(row.created_at, &ctx.tz),
        next_run_at,
    })
}

fn run_view(
    run: &TaskRunRow,
    counts: &[(Status, Option<Reason>, i64)],
    ctx: &PracticeCtx,
) -> TaskRunView {
    let int = |name: &str| run.summary.get(name).and_then(Value::as_i64);
    let mut skipped: BTreeMap<String, i64> = BTreeMap::new();
    if let Some(Value::Object(excluded)) = run.summary.get("excluded") {
        for (reason, n) in excluded {
            *skipped.entry(reason.clone()).or_default() += n.as_i64().unwrap_or(0);
        }
    }
    let (mut sent, mut pending, mut failed, mut in_queue) = (0, 0, 0, 0);
    for (status, reason, n) in counts {
        in_queue += n;
        match status {
            Status::Sent | Status::Delivered => sent += n,
            Status::Pending | Status::Sending => pending += n,
            Status::Failed => failed += n,
            Status::Suppressed => {
                let reason = reason.map_or("unknown", |r| r.as_str());
                *skipped.entry(reason.to_string()).or_default() += n;
            }
        }
    }
    let late_ms = int("late_ms")
        .unwrap_or_else(|| run.started_at.duration_since(run.scheduled_for).as_millis() as i64);
    TaskRunView {
        occurrence: run.occurrence.clone(),
        scheduled_for: format_instant(run.scheduled_for, &ctx.tz),
        started_at: format_instant(run.started_at, &ctx.tz),
        late: run
            .summary
            .get("late")
            .and_then(Value::as_bool)
            .unwrap_or(late_ms > LATE_AFTER_MS),
        late_ms,
        matched: int("matched").unwrap_or(in_queue),
        queued: int("queued").unwrap_or(in_queue),
        sent,
        pending,
        failed,
        skipped,
    }
}

/// The text between `marker` and the next backquote (`missing field `type``).
fn quoted<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let start = text.find(marker)? + marker.len();
    let rest = &text[start..];
    Some(&rest[..rest.find('`')?])
}

fn active_def(task: &TaskRow) -> Option<TaskDef> {
    if !task.active {
        return None;
    }
    let def: TaskDef = serde_json::from_value(task.definition.clone()).ok()?;
    (def.active && matches!(def.channel, Channel::Email | Channel::Sms)).then_some(def)
}
