//! Scheduled tasks: each due occurrence is claimed once across all nodes (a unique run row), its
//! recipients selected by the pure [`rappel_domain::task::select`], and its messages queued as
//! ordinary notifications — switches, contacts, quota and quiet hours apply as for any message.

use jiff::{SignedDuration, Timestamp};
use rappel_domain::notification::{Channel, Kind, Recipient};
use rappel_domain::task::{TaskDef, select};
use rappel_store::{NotificationRow, Status, TaskRow, TaskRunRow};
use serde_json::json;

use crate::practice::load_practice;
use crate::{Engine, EngineError, Result};

impl Engine {
    /// Creates or replaces a task after checking it.
    pub async fn put_task(&self, practice_id: &str, def: &TaskDef) -> Result<()> {
        def.check().map_err(|reason| {
            let (field, reason) = reason
                .split_once(": ")
                .map(|(f, r)| (f.to_string(), r.to_string()))
                .unwrap_or(("task".into(), reason));
            EngineError::invalid(field, reason)
        })?;
        let now = self.now();
        let mut tx = self.store().begin().await?;
        load_practice(&mut tx, practice_id).await?;
        let created_at = tx
            .task(practice_id, &def.id)
            .await?
            .map(|t| t.created_at)
            .unwrap_or(now);
        tx.upsert_task(&TaskRow {
            practice_id: practice_id.to_string(),
            id: def.id.clone(),
            definition: serde_json::to_value(def).expect("tasks serialize"),
            active: def.active,
            created_at,
        })
        .await?;
        tx.commit().await?;
        self.signal();
        Ok(())
    }

    /// The next instant a task of any practice is due (for the scheduler's sleep).
    pub async fn next_task_due(&self) -> Result<Option<Timestamp>> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let mut next: Option<Timestamp> = None;
        for practice in tx.practices().await? {
            let ctx = load_practice(&mut tx, &practice.id).await?;
            for task in tx.tasks(&practice.id).await? {
                let Some(def) = active_def(&task) else {
                    continue;
                };
                let last = tx.last_task_run(&practice.id, &task.id).await?;
                let from = last
                    .map(|r| r.scheduled_for)
                    .unwrap_or(task.created_at - SignedDuration::from_nanos(1))
                    .max(task.created_at - SignedDuration::from_nanos(1));
                if let Some((_, at)) = def.next_after(&ctx.tz, from.min(now)) {
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
            let mut tx = self.store().begin().await?;
            let ctx = load_practice(&mut tx, &practice.id).await?;
            for task in tx.tasks(&practice.id).await? {
                let Some(def) = active_def(&task) else {
                    continue;
                };
                let Some((date, at)) = def.latest_due(&ctx.tz, now) else {
                    continue;
                };
                // An occurrence that was already past when the task was created does not run.
                if at < task.created_at {
                    continue;
                }
                let occurrence = date.to_string();
                let run = TaskRunRow {
                    practice_id: practice.id.clone(),
                    task_id: task.id.clone(),
                    occurrence: occurrence.clone(),
                    scheduled_for: at,
                    started_at: now,
                    summary: json!({}),
                };
                if let Some(last) = tx.last_task_run(&practice.id, &task.id).await?
                    && last.occurrence >= occurrence
                {
                    continue;
                }
                if !tx.claim_task_run(&run).await? {
                    continue;
                }
                let from = date
                    .checked_add(
                        jiff::Span::new().days(def.range.map(|r| r[0]).unwrap_or(0).min(0) - 1),
                    )
                    .unwrap_or(date);
                let from_ts = ctx
                    .plan_ctx()
                    .local_instant(from, jiff::civil::Time::midnight());
                let history = match def.task_type {
                    rappel_domain::task::TaskType::MissedAppointments => {
                        tx.appointments_between(&practice.id, from_ts, Timestamp::MAX)
                            .await?
                    }
                    _ => {
                        tx.appointments_between(&practice.id, Timestamp::MIN, Timestamp::MAX)
                            .await?
                    }
                };
                let patients = tx.all_patients(&practice.id).await?;
                let selected = select(&def, &ctx.tz, date, now, &patients, &history);
                let end_of_day = ctx.plan_ctx().local_instant(
                    date.tomorrow().unwrap_or(date),
                    jiff::civil::Time::midnight(),
                );
                for s in &selected {
                    let key = format!("t:{}/{}/{}/{}", task.id, occurrence, s.patient, def.channel);
                    if tx.notification(&practice.id, &key).await?.is_some() {
                        continue;
                    }
                    tx.insert_notification(&NotificationRow {
                        practice_id: practice.id.clone(),
                        key,
                        patient_id: s.patient.clone(),
                        rule: format!("task:{}", task.id),
                        kind: Kind::Task,
                        channel: def.channel,
                        recipient: Recipient::Patient(s.patient.clone()),
                        appointments: s.appointments.clone(),
                        document: None,
                        task: Some(task.id.clone()),
                        auto_resend: false,
                        due_at: now,
                        window_end: Some(end_of_day.max(now + SignedDuration::from_hours(1))),
                        status: Status::Pending,
                        reason: None,
                        decided_at: None,
                        attempts: 0,
                        lease_owner: None,
                        lease_until: None,
                        last_error: None,
                        rendered: None,
                        provider_id: None,
                        created_at: now,
                        updated_at: now,
                    })
                    .await?;
                }
                let late_ms = now.duration_since(at).as_millis() as i64;
                tx.finish_task_run(
                    &practice.id,
                    &task.id,
                    &occurrence,
                    &json!({"matched": selected.len(), "late_ms": late_ms, "late": late_ms > 60_000}),
                )
                .await?;
                ran += 1;
            }
            tx.commit().await?;
        }
        if ran > 0 {
            self.signal();
        }
        Ok(ran)
    }
}

fn active_def(task: &TaskRow) -> Option<TaskDef> {
    if !task.active {
        return None;
    }
    let def: TaskDef = serde_json::from_value(task.definition.clone()).ok()?;
    (def.active && matches!(def.channel, Channel::Email | Channel::Sms)).then_some(def)
}
