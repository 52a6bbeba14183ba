//! "What was sent, what will be sent, and why not the rest" (SPEC.md rule 4), for an appointment
//! or a patient, in the shape of `rappel simulate --json` entries.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rappel_store::{NotificationRow, Status};
use serde::Serialize;

use crate::practice::load_practice;
use crate::{Engine, EngineError, Result};

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEntry {
    /// Hand-off instant (sent), decision instant (suppressed), or planned instant (pending).
    pub at: String,
    /// `sent`, `delivered`, `failed`, `planned`, `sending` or `suppressed`.
    pub status: &'static str,
    pub channel: String,
    pub recipient: String,
    pub kind: String,
    pub appointments: Vec<String>,
    pub document: Option<String>,
    pub task: Option<String>,
    pub auto_resend: bool,
    pub reason: Option<String>,
    /// The reason in French, for the practice.
    pub explanation: Option<String>,
    pub last_error: Option<String>,
    pub key: String,
}

pub fn format_instant(at: Timestamp, tz: &TimeZone) -> String {
    at.to_zoned(tz.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

pub fn entry(row: &NotificationRow, tz: &TimeZone) -> TimelineEntry {
    let status = match row.status {
        Status::Pending => "planned",
        Status::Sending => "sending",
        Status::Sent => "sent",
        Status::Delivered => "delivered",
        Status::Failed => "failed",
        Status::Suppressed => "suppressed",
    };
    let at = match row.status {
        Status::Pending | Status::Sending => row.due_at,
        _ => row.decided_at.unwrap_or(row.due_at),
    };
    TimelineEntry {
        at: format_instant(at, tz),
        status,
        channel: row.channel.to_string(),
        recipient: row.recipient.to_string(),
        kind: row.kind.to_string(),
        appointments: row.appointments.clone(),
        document: row.document.clone(),
        task: row.task.clone(),
        auto_resend: row.auto_resend,
        reason: row.reason.map(|r| r.to_string()),
        explanation: row.reason.map(|r| r.french().to_string()),
        last_error: row.last_error.clone(),
        key: row.key.clone(),
    }
}

impl Engine {
    pub async fn appointment_timeline(
        &self,
        practice_id: &str,
        appointment_id: &str,
    ) -> Result<Vec<TimelineEntry>> {
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let appointment = tx
            .appointment(practice_id, appointment_id)
            .await?
            .ok_or_else(|| EngineError::not_found("appointment", appointment_id))?;
        let mut rows = tx
            .appointment_notifications(practice_id, &appointment.patient, appointment_id)
            .await?;
        tx.commit().await?;
        rows.sort_by_key(|r| (r.decided_at.unwrap_or(r.due_at), r.key.clone()));
        Ok(rows.iter().map(|r| entry(r, &ctx.tz)).collect())
    }

    pub async fn patient_timeline(
        &self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<Vec<TimelineEntry>> {
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        if tx.patient(practice_id, patient_id).await?.is_none() {
            return Err(EngineError::not_found("patient", patient_id));
        }
        let mut rows = tx.patient_notifications(practice_id, patient_id).await?;
        tx.commit().await?;
        rows.sort_by_key(|r| (r.decided_at.unwrap_or(r.due_at), r.key.clone()));
        Ok(rows.iter().map(|r| entry(r, &ctx.tz)).collect())
    }
}
