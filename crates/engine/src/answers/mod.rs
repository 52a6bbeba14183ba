//! The patient answers back (issue 16): a confirmation or a cancellation of an appointment,
//! whether it comes from the appointment page behind a link (`/r/{token}`) or from an SMS reply.
//!
//! # The core, for every channel
//!
//! - [`Engine::confirm_appointment`]`(practice, appointment, channel, at)` records that the
//!   patient will come. The answer is stored on the appointment (`appointment_answers`) with
//!   the start it was about, so a later move makes it stale ([`AppointmentAnswer::current`]);
//!   the API (`GET /v1/appointments/{id}`, `patient_answer`), the timeline page and the
//!   dashboard show it. It queues the webhook event `appointment.confirmed_by_patient`.
//! - [`Engine::cancel_appointment_for_patient`]`(practice, appointment, channel, at)` cancels
//!   on the patient's behalf until `patient_cancel_cutoff_hours` (practice option, default 4)
//!   before the start. The cancellation is an ordinary `appointment.cancelled` event with
//!   `by = "patient"`, applied through the normal ingestion path in the same transaction as the
//!   answer and its webhook event `appointment.cancel_requested` (`by: "patient"`, the channel,
//!   the instant): the plan follows (reminders superseded, the practitioner's alert per the
//!   preset) and nothing is half done.
//! - Both return an [`AnswerOutcome`] — done, already done, too late (with the practice's
//!   telephone, `practice_phone`), the appointment no longer booked, moved, or past, unknown —
//!   that each caller turns into its own words: a page, or an SMS reply. A repeated answer is
//!   [`AnswerOutcome::AlreadyDone`] and changes nothing; no second event is queued.
//! - [`Engine::next_appointment`]`(practice, patient, at)`: the patient's next booked
//!   appointment, the one an SMS keyword (`OUI`, `ANNULER`) is about.
//! - [`Engine::appointment_answer`]: the stored answer, for the API and the interface.
//!
//! # Links (`links.rs`)
//!
//! Confirmation and reminder emails carry « Confirmer ma présence » and « Annuler le
//! rendez-vous », SMS reminders one short link (`RAPPEL_PUBLIC_URL/r/TOKEN`, 16 characters of
//! token). The dispatcher asks `answer_link` for one when it renders such a message about one
//! appointment, unless the practice switched `appointment_links` off (or, for SMS only,
//! `appointment_links_sms`: the link makes a reminder about two SMS instead of one, which
//! Maddie's preset, whose plans count a small SMS quota, leaves to the practice to switch on).
//! A token is two characters for the moment it was made (where it goes in the indexes) and 84
//! random bits that exist only in the message (the store keeps those two characters and the
//! token's SHA-256, and the audit copy of the message masks it); it is good until the start the
//! message announced.
//! [`Engine::appointment_link_page`] says what the page shows and [`Engine::answer_by_link`]
//! applies the patient's choice; an unknown, expired or switched-off link is
//! [`LinkPage::Unknown`], whatever the reason, so the page reveals nothing.
//!
//! What it deliberately does not do: render pages or SMS replies (the server and the two-way
//! SMS module do), or decide for the practice software: the webhook events tell it, and it
//! stays the owner of the agenda.

mod links;

use jiff::{SignedDuration, Timestamp};
use rappel_domain::event::{Event, EventBody};
use rappel_domain::facts::{Appointment, AppointmentStatus, CancelledBy};
use rappel_store::{AppointmentAnswerRow, Tx};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::practice::{PracticeCtx, load_practice};
use crate::{Engine, EngineError, Result};

pub use self::links::{AppointmentView, LinkAction, LinkPage};
pub(crate) use self::links::{answer_link, links_on, sample_links};

/// The default of `patient_cancel_cutoff_hours`.
pub const DEFAULT_CANCEL_CUTOFF_HOURS: i64 = 4;

/// How the patient answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AnswerChannel {
    /// The appointment page behind a link of an email or an SMS.
    Link,
    /// A reply to an SMS (`OUI`, `ANNULER`).
    Sms,
}

impl AnswerChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerChannel::Link => "link",
            AnswerChannel::Sms => "sms",
        }
    }

    fn parse(text: &str) -> Option<AnswerChannel> {
        match text {
            "link" => Some(AnswerChannel::Link),
            "sms" => Some(AnswerChannel::Sms),
            _ => None,
        }
    }
}

/// What the patient said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PatientAnswer {
    Confirmed,
    Cancelled,
}

impl PatientAnswer {
    pub fn as_str(self) -> &'static str {
        match self {
            PatientAnswer::Confirmed => "confirmed",
            PatientAnswer::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Option<PatientAnswer> {
        match text {
            "confirmed" => Some(PatientAnswer::Confirmed),
            "cancelled" => Some(PatientAnswer::Cancelled),
            _ => None,
        }
    }

    /// In French, for the interface: « Présence confirmée », « Annulé par le patient ».
    pub fn french(self) -> &'static str {
        match self {
            PatientAnswer::Confirmed => "Présence confirmée par le patient",
            PatientAnswer::Cancelled => "Annulé par le patient",
        }
    }
}

/// The patient's latest answer about an appointment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppointmentAnswer {
    pub answer: PatientAnswer,
    pub channel: AnswerChannel,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    /// False when the appointment moved since: the patient has not answered about the new time.
    pub current: bool,
}

/// What an answer did. Callers turn it into a page or an SMS reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnswerOutcome {
    /// Recorded now (and, for a cancellation, applied).
    Done,
    /// The same answer was already recorded: nothing changed, no event was queued again.
    AlreadyDone,
    /// Too late to cancel this way: less than `cutoff_hours` before the start. `phone` is the
    /// practice's (`practice_phone`) when it has given one.
    TooLate {
        cutoff_hours: i64,
        phone: Option<String>,
    },
    /// The appointment is no longer booked: cancelled (by the practice, or by the patient
    /// through another way than this answer's), or deleted.
    NoLongerBooked { by_patient: bool },
    /// The appointment moved since the message the patient answers: it is now at `start`.
    /// Only links know which time the patient saw; SMS keywords are about the next appointment.
    Moved { start: Timestamp },
    /// The appointment has started, happened, or was marked missed.
    Past,
    /// No such appointment, or its patient was erased.
    Unknown,
}

/// The practice's cancellation cutoff, in hours before the start.
fn cutoff_hours(ctx: &PracticeCtx) -> i64 {
    ctx.settings
        .integer("patient_cancel_cutoff_hours")
        .unwrap_or(DEFAULT_CANCEL_CUTOFF_HOURS)
}

fn practice_phone(ctx: &PracticeCtx) -> Option<String> {
    ctx.settings
        .text("practice_phone")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
}

/// Whether the patient may still cancel online at `at`.
fn before_cutoff(ctx: &PracticeCtx, appointment: &Appointment, at: Timestamp) -> bool {
    at < appointment.start - SignedDuration::from_hours(cutoff_hours(ctx))
}

/// What stands in the way of any answer, before its own checks.
fn closed(appointment: &Appointment, at: Timestamp) -> Option<AnswerOutcome> {
    match appointment.status {
        AppointmentStatus::Cancelled { by, .. } => Some(AnswerOutcome::NoLongerBooked {
            by_patient: by == CancelledBy::Patient,
        }),
        AppointmentStatus::Deleted { .. } => {
            Some(AnswerOutcome::NoLongerBooked { by_patient: false })
        }
        AppointmentStatus::NoShow { .. } | AppointmentStatus::Attended { .. } => {
            Some(AnswerOutcome::Past)
        }
        AppointmentStatus::Booked if appointment.start <= at => Some(AnswerOutcome::Past),
        AppointmentStatus::Booked => None,
    }
}

/// The appointment, when it exists and its patient was not erased.
async fn load_appointment(
    tx: &mut Tx,
    practice_id: &str,
    appointment_id: &str,
) -> Result<Option<Appointment>> {
    let Some(appointment) = tx.appointment(practice_id, appointment_id).await? else {
        return Ok(None);
    };
    if tx.is_erased(practice_id, &appointment.patient).await? {
        return Ok(None);
    }
    Ok(Some(appointment))
}

fn answer_of(row: AppointmentAnswerRow, appointment: &Appointment) -> Option<AppointmentAnswer> {
    Some(AppointmentAnswer {
        answer: PatientAnswer::parse(&row.answer)?,
        channel: AnswerChannel::parse(&row.channel)?,
        at: row.at,
        current: row.start == appointment.start,
    })
}

impl Engine {
    /// Records that the patient will come to the appointment (see the module's documentation).
    pub async fn confirm_appointment(
        &self,
        practice_id: &str,
        appointment_id: &str,
        channel: AnswerChannel,
        at: Timestamp,
    ) -> Result<AnswerOutcome> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let outcome = confirm_in(&mut tx, practice_id, appointment_id, channel, at, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Cancels the appointment on the patient's behalf, until the practice's cutoff (see the
    /// module's documentation).
    pub async fn cancel_appointment_for_patient(
        &self,
        practice_id: &str,
        appointment_id: &str,
        channel: AnswerChannel,
        at: Timestamp,
    ) -> Result<AnswerOutcome> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let outcome = cancel_in(&mut tx, practice_id, appointment_id, channel, at, now).await?;
        tx.commit().await?;
        if outcome == AnswerOutcome::Done {
            self.work_added();
        }
        Ok(outcome)
    }

    /// The patient's next booked appointment starting after `at`, the one an SMS keyword is
    /// about; `None` when there is none (or the patient is unknown or erased).
    pub async fn next_appointment(
        &self,
        practice_id: &str,
        patient_id: &str,
        at: Timestamp,
    ) -> Result<Option<Appointment>> {
        let mut tx = self.store().begin_read().await?;
        let next = if tx.is_erased(practice_id, patient_id).await? {
            None
        } else {
            tx.patient_appointments(practice_id, patient_id, at)
                .await?
                .into_iter()
                .filter(|a| a.is_active() && a.start > at)
                .min_by_key(|a| (a.start, a.id.clone()))
        };
        tx.commit().await?;
        Ok(next)
    }

    /// The patient's latest answer about the appointment, if any.
    pub async fn appointment_answer(
        &self,
        practice_id: &str,
        appointment_id: &str,
    ) -> Result<Option<AppointmentAnswer>> {
        let mut tx = self.store().begin_read().await?;
        let Some(appointment) = tx.appointment(practice_id, appointment_id).await? else {
            return Err(EngineError::not_found("appointment", appointment_id));
        };
        let row = tx.appointment_answer(practice_id, appointment_id).await?;
        tx.commit().await?;
        Ok(row.and_then(|row| answer_of(row, &appointment)))
    }

    /// The answers about the appointments starting in `[from, until)`, by appointment id.
    pub async fn appointment_answers_between(
        &self,
        practice_id: &str,
        from: Timestamp,
        until: Timestamp,
    ) -> Result<std::collections::BTreeMap<String, AppointmentAnswer>> {
        let mut tx = self.store().begin_read().await?;
        let rows = tx
            .appointment_answers_between(practice_id, from, until)
            .await?;
        let mut answers = std::collections::BTreeMap::new();
        for row in rows {
            if let Some(appointment) = tx.appointment(practice_id, &row.appointment_id).await?
                && let Some(answer) = answer_of(row, &appointment)
            {
                answers.insert(appointment.id.clone(), answer);
            }
        }
        tx.commit().await?;
        Ok(answers)
    }
}

/// [`Engine::confirm_appointment`] in the caller's write transaction.
pub(crate) async fn confirm_in(
    tx: &mut Tx,
    practice_id: &str,
    appointment_id: &str,
    channel: AnswerChannel,
    at: Timestamp,
    now: Timestamp,
) -> Result<AnswerOutcome> {
    let Some(appointment) = load_appointment(tx, practice_id, appointment_id).await? else {
        return Ok(AnswerOutcome::Unknown);
    };
    if let Some(outcome) = closed(&appointment, at) {
        return Ok(outcome);
    }
    if let Some(previous) = tx.appointment_answer(practice_id, appointment_id).await?
        && previous.answer == PatientAnswer::Confirmed.as_str()
        && previous.start == appointment.start
    {
        return Ok(AnswerOutcome::AlreadyDone);
    }
    tx.put_appointment_answer(&AppointmentAnswerRow {
        practice_id: practice_id.to_string(),
        appointment_id: appointment.id.clone(),
        patient_id: appointment.patient.clone(),
        answer: PatientAnswer::Confirmed.as_str().into(),
        channel: channel.as_str().into(),
        start: appointment.start,
        at,
    })
    .await?;
    // One event per start the patient confirmed: confirming again after a move is news.
    crate::webhooks::queue_event(
        tx,
        practice_id,
        "appointment.confirmed_by_patient",
        &format!(
            "appointment.confirmed_by_patient/{}/{}",
            appointment.id,
            appointment.start.as_millisecond()
        ),
        json!({
            "appointment": appointment.id,
            "patient": appointment.patient,
            "start": appointment.start,
            "channel": channel.as_str(),
            "at": at,
        }),
        now,
    )
    .await?;
    Ok(AnswerOutcome::Done)
}

/// [`Engine::cancel_appointment_for_patient`] in the caller's write transaction; the caller
/// calls [`Engine::work_added`] after committing a [`AnswerOutcome::Done`].
pub(crate) async fn cancel_in(
    tx: &mut Tx,
    practice_id: &str,
    appointment_id: &str,
    channel: AnswerChannel,
    at: Timestamp,
    now: Timestamp,
) -> Result<AnswerOutcome> {
    let ctx = load_practice(tx, practice_id).await?;
    let Some(appointment) = load_appointment(tx, practice_id, appointment_id).await? else {
        return Ok(AnswerOutcome::Unknown);
    };
    if let Some(outcome) = closed(&appointment, at) {
        // A second cancellation by the patient (a second click, `ANNULER` twice) is done.
        return Ok(match outcome {
            AnswerOutcome::NoLongerBooked { by_patient: true } => AnswerOutcome::AlreadyDone,
            other => other,
        });
    }
    if !before_cutoff(&ctx, &appointment, at) {
        return Ok(AnswerOutcome::TooLate {
            cutoff_hours: cutoff_hours(&ctx),
            phone: practice_phone(&ctx),
        });
    }
    crate::ingest::ingest_in(
        tx,
        practice_id,
        &[Event {
            at: Some(at),
            body: EventBody::AppointmentCancelled {
                id: appointment.id.clone(),
                by: CancelledBy::Patient,
                excused: None,
            },
        }],
        now,
    )
    .await?;
    tx.put_appointment_answer(&AppointmentAnswerRow {
        practice_id: practice_id.to_string(),
        appointment_id: appointment.id.clone(),
        patient_id: appointment.patient.clone(),
        answer: PatientAnswer::Cancelled.as_str().into(),
        channel: channel.as_str().into(),
        start: appointment.start,
        at,
    })
    .await?;
    crate::webhooks::queue_event(
        tx,
        practice_id,
        "appointment.cancel_requested",
        &format!("appointment.cancel_requested/{}", appointment.id),
        json!({
            "appointment": appointment.id,
            "patient": appointment.patient,
            "start": appointment.start,
            "by": "patient",
            "channel": channel.as_str(),
            "at": at,
        }),
        now,
    )
    .await?;
    Ok(AnswerOutcome::Done)
}
