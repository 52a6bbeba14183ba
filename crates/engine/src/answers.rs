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
//! # Links
//!
//! Confirmation and reminder emails carry « Confirmer ma présence » and « Annuler le
//! rendez-vous », SMS reminders one short link (`RAPPEL_PUBLIC_URL/r/TOKEN`, 16 characters of
//! token). The dispatcher asks [`answer_link`] for one when it renders such a message about one
//! appointment, unless the practice switched `appointment_links` off (or, for SMS only,
//! `appointment_links_sms`: the link makes a reminder about two SMS instead of one, which
//! Maddie's preset, whose plans count a small SMS quota, leaves to the practice to switch on). A token is 96 random bits
//! that exist only in the message (the store keeps their SHA-256, and the audit copy of the
//! message masks them); it is good until the start the message announced.
//! [`Engine::appointment_link_page`] says what the page shows and [`Engine::answer_by_link`]
//! applies the patient's choice; an unknown, expired or switched-off link is
//! [`LinkPage::Unknown`], whatever the reason, so the page reveals nothing.
//!
//! What it deliberately does not do: render pages or SMS replies (the server and the two-way
//! SMS module do), or decide for the practice software: the webhook events tell it, and it
//! stays the owner of the agenda.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use rappel_domain::event::{Event, EventBody};
use rappel_domain::facts::{Appointment, AppointmentStatus, CancelledBy};
use rappel_domain::notification::{Channel, Recipient};
use rappel_domain::render::AnswerLinks;
use rappel_domain::template::{Locale, carries_answer_links, date_text, time_text};
use rappel_store::{AppointmentAnswerRow, AppointmentLink, NotificationRow, Tx};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::practice::{PracticeCtx, load_practice};
use crate::secret::{self, token_hash};
use crate::{Engine, EngineError, Result};

/// The default of `patient_cancel_cutoff_hours`.
pub const DEFAULT_CANCEL_CUTOFF_HOURS: i64 = 4;

/// Random bytes of a link's token: 96 bits, 16 characters of base64url.
const TOKEN_BYTES: usize = 12;

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

// ---- links --------------------------------------------------------------------------------------

/// A link's token: 96 random bits in base64url (16 characters, short enough for an SMS); it is
/// stored as its hash (`secret::token_hash`) like every other token.
fn new_token() -> String {
    URL_SAFE_NO_PAD.encode(secret::random_bytes::<TOKEN_BYTES>())
}

fn page_url(public_url: &str, token: &str) -> String {
    format!("{}/r/{token}", public_url.trim_end_matches('/'))
}

/// Whether the practice's messages of that channel carry links: `appointment_links` for all,
/// and `appointment_links_sms` for SMS, where the link costs characters, hence SMS.
pub(crate) fn links_on(ctx: &PracticeCtx, channel: Channel) -> bool {
    ctx.settings.is_on("appointment_links")
        && match channel {
            Channel::Email => true,
            Channel::Sms => ctx.settings.is_on("appointment_links_sms"),
            Channel::Push | Channel::Postal | Channel::Inbox => false,
        }
}

/// Links as long as real ones, for the template preview: the SMS counter counts the same
/// characters as at send time.
pub(crate) fn sample_links(public_url: &str) -> AnswerLinks {
    AnswerLinks::for_page(page_url(public_url, "AbCdEfGhIjKlMnOp"))
}

/// A new link for the message being rendered, when it carries one: a confirmation or reminder
/// email or an SMS reminder, to the patient, about one booked appointment that has not started,
/// from a practice that has not switched links off. The dispatcher stores the row (in its write
/// phase, before the message goes) and renders the links. Returns the row, the links and the
/// token (which the audit copy of the message masks).
pub(crate) fn answer_link(
    ctx: &PracticeCtx,
    row: &NotificationRow,
    appointments: &[Appointment],
    public_url: &str,
    now: Timestamp,
) -> Option<(AppointmentLink, AnswerLinks, String)> {
    if !carries_answer_links(row.kind, row.channel)
        || !matches!(row.recipient, Recipient::Patient(_))
        || !links_on(ctx, row.channel)
    {
        return None;
    }
    // A grouped message about several appointments carries no link: one link is one appointment.
    let [appointment] = appointments else {
        return None;
    };
    if !appointment.is_active() || appointment.start <= now {
        return None;
    }
    let token = new_token();
    let link = AppointmentLink {
        practice_id: ctx.row.id.clone(),
        token_hash: token_hash(&token),
        appointment_id: appointment.id.clone(),
        patient_id: appointment.patient.clone(),
        start: appointment.start,
        expires_at: appointment.start,
        created_at: now,
    };
    Some((
        link,
        AnswerLinks::for_page(page_url(public_url, &token)),
        token,
    ))
}

/// What the page of an open link shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppointmentView {
    pub practice: String,
    /// « mercredi 11 mars 2026 », « 09h30 », in the practice's time zone.
    pub date_text: String,
    pub time_text: String,
    pub practitioner: Option<String>,
    pub location: Option<String>,
    /// Only when the practice shows motives (`show_motive_in_sms`).
    pub motive: Option<String>,
    /// The patient's current answer about this time, if any.
    pub answer: Option<PatientAnswer>,
    /// Whether cancelling online is still possible; if not, `phone` is the practice's.
    pub can_cancel: bool,
    pub cutoff_hours: i64,
    pub phone: Option<String>,
}

/// What `/r/{token}` shows, or what an answer through it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkPage {
    /// The appointment, and what the patient may still do.
    Open(Box<AppointmentView>),
    /// The answer was applied (or had been): the page shows the appointment and the answer.
    Answered {
        view: Box<AppointmentView>,
        answer: PatientAnswer,
        already: bool,
    },
    /// Cancelling came too late: the page gives the practice's telephone.
    TooLate(Box<AppointmentView>),
    /// The appointment is no longer booked.
    NoLongerBooked {
        practice: String,
        by_patient: bool,
        phone: Option<String>,
    },
    /// The appointment moved: here is its new date.
    Moved {
        practice: String,
        date_text: String,
        time_text: String,
        phone: Option<String>,
    },
    /// The appointment has started or happened.
    Past { practice: String },
    /// Unknown, expired, switched off, or its patient erased: nothing to reveal.
    Unknown,
}

/// The patient's choice on the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkAction {
    Confirm,
    Cancel,
}

/// An open link with what it names, inside a transaction.
struct Found {
    link: AppointmentLink,
    ctx: PracticeCtx,
    appointment: Appointment,
}

impl Engine {
    async fn find_appointment_link(
        &self,
        tx: &mut Tx,
        token: &str,
        now: Timestamp,
    ) -> Result<Option<Found>> {
        // A token is 16 characters; anything else cannot be one (and is not hashed for nothing).
        if token.len() != 16
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Ok(None);
        }
        let Some(link) = tx.appointment_link_by_hash(&token_hash(token)).await? else {
            return Ok(None);
        };
        if link.expires_at <= now {
            return Ok(None);
        }
        let ctx = load_practice(tx, &link.practice_id).await?;
        if !ctx.settings.is_on("appointment_links") {
            return Ok(None);
        }
        let Some(appointment) =
            load_appointment(tx, &link.practice_id, &link.appointment_id).await?
        else {
            return Ok(None);
        };
        Ok(Some(Found {
            link,
            ctx,
            appointment,
        }))
    }

    /// `GET /r/{token}`: what the page shows. Reads only.
    pub async fn appointment_link_page(&self, token: &str) -> Result<LinkPage> {
        let now = self.now();
        let mut tx = self.store().begin_read().await?;
        let Some(found) = self.find_appointment_link(&mut tx, token, now).await? else {
            tx.commit().await?;
            return Ok(LinkPage::Unknown);
        };
        let answer = tx
            .appointment_answer(&found.link.practice_id, &found.appointment.id)
            .await?
            .and_then(|row| answer_of(row, &found.appointment))
            .filter(|a| a.current)
            .map(|a| a.answer);
        let motive = match &found.appointment.motive {
            Some(m) if found.ctx.settings.is_on("show_motive_in_sms") => {
                tx.motive(&found.link.practice_id, m).await?.map(|m| m.name)
            }
            _ => None,
        };
        let practitioner = tx
            .practitioner(&found.link.practice_id, &found.appointment.practitioner)
            .await?
            .map(|p| p.name);
        tx.commit().await?;
        Ok(page_of(&found, now, answer, practitioner, motive, None))
    }

    /// `POST /r/{token}`: applies the patient's choice through the core above
    /// ([`AnswerChannel::Link`]) and says what the page shows next.
    pub async fn answer_by_link(&self, token: &str, action: LinkAction) -> Result<LinkPage> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let Some(found) = self.find_appointment_link(&mut tx, token, now).await? else {
            tx.commit().await?;
            return Ok(LinkPage::Unknown);
        };
        let pid = found.link.practice_id.clone();
        // A link names the time the patient was told; a moved appointment is answered on the
        // page of the new time, not through this one.
        let outcome =
            if found.appointment.is_active() && found.appointment.start != found.link.start {
                AnswerOutcome::Moved {
                    start: found.appointment.start,
                }
            } else {
                match action {
                    LinkAction::Confirm => {
                        confirm_in(
                            &mut tx,
                            &pid,
                            &found.appointment.id,
                            AnswerChannel::Link,
                            now,
                            now,
                        )
                        .await?
                    }
                    LinkAction::Cancel => {
                        cancel_in(
                            &mut tx,
                            &pid,
                            &found.appointment.id,
                            AnswerChannel::Link,
                            now,
                            now,
                        )
                        .await?
                    }
                }
            };
        let practitioner = tx
            .practitioner(&pid, &found.appointment.practitioner)
            .await?
            .map(|p| p.name);
        let motive = match &found.appointment.motive {
            Some(m) if found.ctx.settings.is_on("show_motive_in_sms") => {
                tx.motive(&pid, m).await?.map(|m| m.name)
            }
            _ => None,
        };
        tx.commit().await?;
        if outcome == AnswerOutcome::Done && action == LinkAction::Cancel {
            self.work_added();
        }
        let answer = match action {
            LinkAction::Confirm => PatientAnswer::Confirmed,
            LinkAction::Cancel => PatientAnswer::Cancelled,
        };
        Ok(page_of(
            &found,
            now,
            Some(answer),
            practitioner,
            motive,
            Some(outcome),
        ))
    }
}

/// The page for a found link: after an answer (`outcome`), or on opening it.
fn page_of(
    found: &Found,
    now: Timestamp,
    answer: Option<PatientAnswer>,
    practitioner: Option<String>,
    motive: Option<String>,
    outcome: Option<AnswerOutcome>,
) -> LinkPage {
    let ctx = &found.ctx;
    let appointment = &found.appointment;
    let practice = ctx.row.name.clone();
    let phone = practice_phone(ctx);
    let view = |answer: Option<PatientAnswer>| {
        Box::new(AppointmentView {
            practice: practice.clone(),
            date_text: date_text(appointment.start, &ctx.tz, Locale::Fr),
            time_text: time_text(appointment.start, &ctx.tz, Locale::Fr),
            practitioner: practitioner.clone(),
            location: appointment.location.clone(),
            motive: motive.clone(),
            answer,
            can_cancel: before_cutoff(ctx, appointment, now),
            cutoff_hours: cutoff_hours(ctx),
            phone: phone.clone(),
        })
    };
    let moved = |start: Timestamp| LinkPage::Moved {
        practice: practice.clone(),
        date_text: date_text(start, &ctx.tz, Locale::Fr),
        time_text: time_text(start, &ctx.tz, Locale::Fr),
        phone: phone.clone(),
    };
    let outcome = match outcome {
        Some(outcome) => outcome,
        None => {
            return match closed(appointment, now) {
                Some(AnswerOutcome::NoLongerBooked { by_patient }) => LinkPage::NoLongerBooked {
                    practice,
                    by_patient,
                    phone,
                },
                Some(_) => LinkPage::Past { practice },
                None if appointment.start != found.link.start => moved(appointment.start),
                None => LinkPage::Open(view(answer)),
            };
        }
    };
    match outcome {
        AnswerOutcome::Done => LinkPage::Answered {
            view: view(answer),
            answer: answer.unwrap_or(PatientAnswer::Confirmed),
            already: false,
        },
        AnswerOutcome::AlreadyDone => LinkPage::Answered {
            view: view(answer),
            answer: answer.unwrap_or(PatientAnswer::Confirmed),
            already: true,
        },
        AnswerOutcome::TooLate { .. } => LinkPage::TooLate(view(None)),
        AnswerOutcome::NoLongerBooked { by_patient } => LinkPage::NoLongerBooked {
            practice,
            by_patient,
            phone,
        },
        AnswerOutcome::Moved { start } => moved(start),
        AnswerOutcome::Past => LinkPage::Past { practice },
        AnswerOutcome::Unknown => LinkPage::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_has_96_random_bits_in_16_url_safe_characters() {
        let a = new_token();
        let b = new_token();
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len() * 8, 96);
    }

    #[test]
    fn the_sample_link_is_as_long_as_a_real_one() {
        let sample = sample_links("https://rappel.example/");
        let real = page_url("https://rappel.example", &new_token());
        assert_eq!(sample.page.len(), real.len());
    }
}
