//! Two-way SMS (issue 16): what a patient's SMS reply does.
//!
//! [`Engine::receive_sms`] takes an incoming SMS whose provider the channel already verified,
//! and:
//!
//! 1. attaches it to a patient by the number, within the practice whose message it answers:
//!    the last SMS sent to that number, whatever the practice (`Tx::last_sms_to`, the one
//!    lookup that cannot know the practice). A number nobody sent to is stored nowhere;
//! 2. stores it once (`received_messages`, keyed by provider and provider id: a provider that
//!    calls twice is answered once), with the appointment it most likely answers (the
//!    patient's next one);
//! 3. applies its keyword ([`rappel_domain::reply`]): `STOP` / `ARRET` set the SMS opt-out,
//!    `START` lifts it, `OUI` lifts it too, then confirms the next appointment, `ANNULER`
//!    cancels it until the practice's cutoff (both through the answers core,
//!    [`crate::answers`], with channel `sms`, in the same transaction); anything else — and a
//!    keyword that could not do what it asked (no appointment to confirm, too late to cancel)
//!    — waits in the « Messages reçus » box for a person;
//! 4. queues the short French answer as an ordinary SMS row (`reply:{id}`, rule
//!    [`REPLY_RULE`]), which the dispatcher sends through the normal path: the quota is taken
//!    when, and only when, it goes;
//! 5. queues the outbound webhook events (`patient.sms_opted_out`, `patient.sms_opted_in`,
//!    `message.received`), which carry identities, never the text.
//!
//! The answer to a `STOP` is sent although the patient just opted out: it is the one message
//! that tells them it worked, the customary acknowledgement of an opt-out. It goes to the number
//! that wrote, not to the file's mobile, and only the opt-out part of the gate is skipped.
//!
//! What this module does not do: log what a patient wrote (health data) or their number.

use jiff::{SignedDuration, Timestamp};
use rappel_channels::OutboundMessage;
use rappel_channels::sms::InboundSms;
use rappel_domain::contact::{Contact, MobileNumber};
use rappel_domain::facts::Appointment;
use rappel_domain::notification::{Channel, Kind, Reason};
use rappel_domain::reply::{self, Keyword};
use rappel_domain::template::{Locale, date_text, time_text};
use rappel_store::{NotificationRow, ReceivedMessageRow, SmsOptOut, Tx, received_message_id};
use serde::Serialize;
use serde_json::{Value, json};

use crate::answers::{AnswerChannel, AnswerOutcome};
use crate::practice::{PracticeCtx, load_practice};
use crate::{Engine, EngineError, Result};

/// The rule of the rows that carry an answer to a patient's SMS. `manual_`: made outside the
/// planner, so reconciliation never cancels it.
pub const REPLY_RULE: &str = "manual_sms_reply";
/// An answer that could not go within this delay is no longer an answer.
const REPLY_WINDOW: SignedDuration = SignedDuration::from_hours(1);
/// At most this many entries in one listing of the box.
const LISTING_LIMIT: i64 = 500;

/// What became of an incoming SMS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InboundOutcome {
    /// No SMS was ever sent to that number (or its patient was erased): nothing stored.
    UnknownNumber,
    /// The provider sent this message before: already handled.
    Duplicate,
    /// Attached to a patient of a practice and handled.
    Received {
        practice_id: String,
        patient_id: String,
        id: String,
        /// The keyword it consisted of; `None`: it waits in the « Messages reçus » box.
        keyword: Option<Keyword>,
    },
}

/// One received message as the API and the web interface show it.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceivedMessage {
    pub id: String,
    pub patient: String,
    /// The patient's name, for the box.
    #[serde(skip)]
    pub patient_name: Option<String>,
    /// The appointment it most likely answers (the patient's next one when it came).
    pub appointment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub appointment_start: Option<Timestamp>,
    /// `twilio`, `ovh`, `webhook` or `simulate`.
    pub provider: String,
    /// `confirm`, `cancel`, `stop`, `start`, or null for free text.
    pub keyword: Option<String>,
    /// What the patient wrote (health data).
    pub text: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub received_at: Timestamp,
    /// When it was handled: at once for a keyword, by the practice for free text.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub handled_at: Option<Timestamp>,
}

/// A patient's SMS opt-out as the API and the patient page show it.
#[derive(Clone, Debug, Serialize)]
pub struct SmsOptOutView {
    pub opted_out_at: Timestamp,
    /// `sms`: the patient's STOP.
    pub source: String,
}

impl Engine {
    /// Handles an SMS a patient sent back (see the module's documentation).
    pub async fn receive_sms(&self, sms: &InboundSms) -> Result<InboundOutcome> {
        let now = self.now();
        let number = e164(&sms.from_e164());
        let mut tx = self.store().begin().await?;
        let Some(last) = tx.last_sms_to(&number).await? else {
            drop(tx);
            tracing::debug!(
                provider = sms.provider,
                "incoming SMS from a number no message was sent to: ignored"
            );
            return Ok(InboundOutcome::UnknownNumber);
        };
        let pid = last.practice_id.clone();
        let ctx = load_practice(&mut tx, &pid).await?;
        let Some(patient) = tx.patient(&pid, &last.patient_id).await? else {
            drop(tx);
            tracing::debug!(
                provider = sms.provider,
                "incoming SMS from an erased patient's number: ignored"
            );
            return Ok(InboundOutcome::UnknownNumber);
        };
        let keyword = reply::keyword(&sms.text);
        let next = next_appointment(&mut tx, &pid, &patient.id, now).await?;
        let id = received_message_id(sms.provider, &sms.provider_message_id);
        let row = ReceivedMessageRow {
            practice_id: pid.clone(),
            id: id.clone(),
            patient_id: patient.id.clone(),
            appointment_id: next.as_ref().map(|a| a.id.clone()),
            provider: sms.provider.to_string(),
            keyword: keyword.map(|k| k.as_str().to_string()),
            body: sms.text.clone(),
            received_at: now,
            handled_at: None,
        };
        if !tx.insert_received_message(&row).await? {
            drop(tx);
            return Ok(InboundOutcome::Duplicate);
        }
        let name = &ctx.row.name;
        let mut answer: Vec<String> = Vec::new();
        // Whether the keyword did all it asked: otherwise (no appointment to confirm, too late
        // to cancel…) the message also waits in the box, for a person to call back.
        let mut handled = false;
        if let Some(keyword) = keyword {
            let opted_out = tx.sms_opt_out(&pid, &patient.id).await?;
            match keyword {
                Keyword::Stop => {
                    let new = tx
                        .insert_sms_opt_out(&SmsOptOut {
                            practice_id: pid.clone(),
                            patient_id: patient.id.clone(),
                            number: number.clone(),
                            opted_out_at: now,
                            source: "sms".into(),
                        })
                        .await?;
                    if new {
                        opted_out_event(&mut tx, &pid, &patient.id, "sms", now).await?;
                    }
                    answer.push(reply::opted_out_text(name));
                    handled = true;
                }
                Keyword::Start | Keyword::Confirm => {
                    if opted_out.is_some() {
                        tx.delete_sms_opt_out(&pid, &patient.id).await?;
                        opted_in_event(&mut tx, &pid, &patient.id, "sms", now).await?;
                        answer.push(reply::opted_in_text(name));
                    } else if keyword == Keyword::Start {
                        answer.push(reply::already_opted_in_text(name));
                    }
                    handled = keyword == Keyword::Start;
                    if keyword == Keyword::Confirm {
                        let (text, done) = match &next {
                            None => (no_appointment_text(name), false),
                            Some(a) => {
                                let outcome = crate::answers::confirm_in(
                                    &mut tx,
                                    &pid,
                                    &a.id,
                                    AnswerChannel::Sms,
                                    now,
                                    now,
                                )
                                .await?;
                                confirm_text(&ctx, a, &outcome)
                            }
                        };
                        answer.push(text);
                        handled = done;
                    }
                }
                Keyword::Cancel => {
                    let (text, done) = match &next {
                        None => (no_appointment_text(name), false),
                        Some(a) => {
                            let outcome = crate::answers::cancel_in(
                                &mut tx,
                                &pid,
                                &a.id,
                                AnswerChannel::Sms,
                                now,
                                now,
                            )
                            .await?;
                            cancel_text(&ctx, a, &outcome)
                        }
                    };
                    answer.push(text);
                    handled = done;
                }
            }
        }
        if handled {
            tx.resolve_received_message(&pid, &id, now).await?;
        }
        received_event(&mut tx, &row).await?;
        if !answer.is_empty() {
            queue_reply(&mut tx, &row, &number, &answer.join(" "), now).await?;
        }
        tx.commit().await?;
        self.work_added();
        Ok(InboundOutcome::Received {
            practice_id: pid,
            patient_id: patient.id,
            id,
            keyword,
        })
    }

    /// A scenario's `patient.replied` (SCENARIOS.md): the patient answers from their mobile, and
    /// the reply goes exactly the way of one from a provider. `seq` (the event's index) names
    /// the message, so that two identical replies are two messages.
    pub async fn simulated_reply(
        &self,
        practice_id: &str,
        patient_id: &str,
        text: &str,
        seq: usize,
    ) -> Result<InboundOutcome> {
        let patient = self.patient(practice_id, patient_id).await?;
        let mobile = patient
            .mobile
            .as_ref()
            .and_then(Contact::mobile)
            .ok_or_else(|| {
                EngineError::invalid(
                    "patient",
                    format!("patient `{patient_id}` has no mobile number to reply from"),
                )
            })?;
        self.receive_sms(&InboundSms {
            provider: "simulate",
            provider_message_id: format!("{}-{seq}", self.now().as_millisecond()),
            from: mobile.to_string(),
            to: None,
            text: text.to_string(),
        })
        .await
    }

    /// The practice's received messages, newest first: those waiting, or all of them (keywords
    /// included) with `include_handled`.
    pub async fn received_messages(
        &self,
        practice_id: &str,
        include_handled: bool,
    ) -> Result<Vec<ReceivedMessage>> {
        let mut tx = self.store().begin_read().await?;
        let rows = tx
            .received_messages(practice_id, include_handled, LISTING_LIMIT)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let patient = tx.patient(practice_id, &row.patient_id).await?;
            let appointment = match &row.appointment_id {
                Some(id) => tx.appointment(practice_id, id).await?,
                None => None,
            };
            out.push(ReceivedMessage {
                id: row.id,
                patient: row.patient_id,
                patient_name: patient.map(|p| p.display_name()).filter(|n| !n.is_empty()),
                appointment: row.appointment_id,
                appointment_start: appointment.map(|a| a.start),
                provider: row.provider,
                keyword: row.keyword,
                text: row.body,
                received_at: row.received_at,
                handled_at: row.handled_at,
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Marks a received message handled. `NotFound` for an id the practice does not have;
    /// `Ok(false)` when it was already handled.
    pub async fn resolve_received_message(&self, practice_id: &str, id: &str) -> Result<bool> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        if tx.received_message(practice_id, id).await?.is_none() {
            return Err(EngineError::not_found("received message", id));
        }
        let done = tx.resolve_received_message(practice_id, id, now).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// The patient's SMS opt-out, if any. `NotFound` for an unknown patient.
    pub async fn sms_opt_out(
        &self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<Option<SmsOptOutView>> {
        let mut tx = self.store().begin_read().await?;
        if tx.patient(practice_id, patient_id).await?.is_none() {
            return Err(EngineError::not_found("patient", patient_id));
        }
        let found = tx.sms_opt_out(practice_id, patient_id).await?;
        tx.commit().await?;
        Ok(found.map(|o| SmsOptOutView {
            opted_out_at: o.opted_out_at,
            source: o.source,
        }))
    }

    /// The practice lifts a patient's SMS opt-out (the patient asked them, by phone or at the
    /// desk). `by` is `api` or `ui`. Returns whether there was one; `NotFound` for an unknown
    /// patient.
    pub async fn lift_sms_opt_out(
        &self,
        practice_id: &str,
        patient_id: &str,
        by: &str,
    ) -> Result<bool> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        if tx.patient(practice_id, patient_id).await?.is_none() {
            return Err(EngineError::not_found("patient", patient_id));
        }
        let lifted = tx.delete_sms_opt_out(practice_id, patient_id).await?;
        if lifted {
            opted_in_event(&mut tx, practice_id, patient_id, by, now).await?;
        }
        tx.commit().await?;
        if lifted {
            tracing::info!(
                practice_id,
                patient_id,
                by,
                "SMS opt-out lifted by the practice"
            );
        }
        Ok(lifted)
    }
}

/// « mercredi 4 mars 2026 à 09h30 », in the practice's time zone.
fn when(ctx: &PracticeCtx, appointment: &Appointment) -> String {
    format!(
        "{} à {}",
        date_text(appointment.start, &ctx.tz, Locale::Fr),
        time_text(appointment.start, &ctx.tz, Locale::Fr)
    )
}

/// The answer to `OUI`, and whether the confirmation is recorded.
fn confirm_text(
    ctx: &PracticeCtx,
    appointment: &Appointment,
    outcome: &AnswerOutcome,
) -> (String, bool) {
    let name = &ctx.row.name;
    match outcome {
        AnswerOutcome::Done | AnswerOutcome::AlreadyDone => (
            format!(
                "{name} : merci, votre présence au rendez-vous du {} est confirmée.",
                when(ctx, appointment)
            ),
            true,
        ),
        _ => (no_appointment_text(name), false),
    }
}

/// The answer to `ANNULER`, and whether the cancellation is done.
fn cancel_text(
    ctx: &PracticeCtx,
    appointment: &Appointment,
    outcome: &AnswerOutcome,
) -> (String, bool) {
    let name = &ctx.row.name;
    match outcome {
        AnswerOutcome::Done => (
            format!(
                "{name} : votre rendez-vous du {} est annulé.",
                when(ctx, appointment)
            ),
            true,
        ),
        AnswerOutcome::AlreadyDone => (
            format!(
                "{name} : votre rendez-vous du {} est déjà annulé.",
                when(ctx, appointment)
            ),
            true,
        ),
        AnswerOutcome::TooLate {
            cutoff_hours,
            phone,
        } => (
            format!(
                "{name} : il est trop tard pour annuler par SMS (moins de {cutoff_hours} h avant le rendez-vous). {}",
                match phone {
                    Some(phone) => format!("Appelez le cabinet au {phone}."),
                    None => "Appelez le cabinet.".to_string(),
                }
            ),
            false,
        ),
        _ => (no_appointment_text(name), false),
    }
}

fn no_appointment_text(practice_name: &str) -> String {
    format!("{practice_name} : nous ne trouvons pas de rendez-vous à venir. Contactez le cabinet.")
}

/// The number in E.164 when it parses as a mobile, else as given: the same form the dispatcher
/// hands to the providers and records in `sms_last_sent`.
fn e164(number: &str) -> String {
    MobileNumber::parse(number)
        .map(|m| m.to_string())
        .unwrap_or_else(|_| number.to_string())
}

/// The patient's next active appointment that has not started: [`Engine::next_appointment`]
/// in the caller's transaction.
async fn next_appointment(
    tx: &mut Tx,
    practice_id: &str,
    patient_id: &str,
    now: Timestamp,
) -> Result<Option<Appointment>> {
    Ok(tx
        .patient_appointments(practice_id, patient_id, now)
        .await?
        .into_iter()
        .filter(|a| a.is_active() && a.start > now)
        .min_by_key(|a| (a.start, a.id.clone())))
}

/// Queues the answer SMS: due now, to the number that wrote, for at most an hour.
async fn queue_reply(
    tx: &mut Tx,
    received: &ReceivedMessageRow,
    number: &str,
    text: &str,
    now: Timestamp,
) -> Result<()> {
    let mut row = NotificationRow::pending(
        &received.practice_id,
        format!("reply:{}", received.id),
        &received.patient_id,
        REPLY_RULE,
        // Not a message kind the planner knows: an answer is no template's business. `task`
        // is the kind of the rows made outside the planner; the rule says what it is.
        Kind::Task,
        Channel::Sms,
        now,
    );
    row.appointments = received.appointment_id.iter().cloned().collect();
    row.window_end = Some(now + REPLY_WINDOW);
    row.rendered = Some(json!({ "to": number, "text": text }));
    tx.insert_notification(&row).await?;
    Ok(())
}

/// Whether a claimed row is the answer to a patient's SMS.
pub(crate) fn is_reply(row: &NotificationRow) -> bool {
    row.rule == REPLY_RULE && row.key.starts_with("reply:") && row.channel == Channel::Sms
}

/// The message of an answer row, or why it does not go: too late (`window_passed`) or
/// without its text (`patient_erased`: erasure forgets what was queued).
pub(crate) fn reply_message(
    ctx: &PracticeCtx,
    row: &NotificationRow,
    now: Timestamp,
) -> std::result::Result<(OutboundMessage, Value, (String, i64)), Reason> {
    if row.window_end.is_some_and(|end| now >= end) {
        return Err(Reason::WindowPassed);
    }
    let rendered = row.rendered.as_ref().ok_or(Reason::PatientErased)?;
    let to = rendered["to"].as_str().unwrap_or_default().to_string();
    let text = rendered["text"].as_str().unwrap_or_default().to_string();
    if to.is_empty() || text.is_empty() {
        return Err(Reason::PatientErased);
    }
    let segments = rappel_domain::sms::analyze(&text).segments.max(1) as i64;
    let month = now.to_zoned(ctx.tz.clone()).strftime("%Y-%m").to_string();
    let message = OutboundMessage {
        id: row.key.clone(),
        practice_id: row.practice_id.clone(),
        channel: Channel::Sms,
        to: to.clone(),
        subject: None,
        text: text.clone(),
        html: None,
        sender_name: ctx
            .settings
            .text("sms_sender")
            .unwrap_or(&ctx.row.name)
            .to_string(),
        calendar: None,
        push: None,
        letter: None,
        logo: None,
    };
    let rendered = json!({ "text": text, "to": to, "billed_sms": segments });
    Ok((message, rendered, (month, segments)))
}

// ---- outbound webhook events -------------------------------------------------------------------

async fn opted_out_event(
    tx: &mut Tx,
    practice_id: &str,
    patient_id: &str,
    source: &str,
    now: Timestamp,
) -> Result<()> {
    crate::webhooks::queue_event(
        tx,
        practice_id,
        "patient.sms_opted_out",
        &format!(
            "patient.sms_opted_out/{patient_id}/{}",
            now.as_millisecond()
        ),
        json!({ "patient": patient_id, "source": source, "at": now }),
        now,
    )
    .await
    .map(|_| ())
}

async fn opted_in_event(
    tx: &mut Tx,
    practice_id: &str,
    patient_id: &str,
    source: &str,
    now: Timestamp,
) -> Result<()> {
    crate::webhooks::queue_event(
        tx,
        practice_id,
        "patient.sms_opted_in",
        &format!("patient.sms_opted_in/{patient_id}/{}", now.as_millisecond()),
        json!({ "patient": patient_id, "source": source, "at": now }),
        now,
    )
    .await
    .map(|_| ())
}

/// `message.received`: that the patient wrote, what it was (a keyword or free text) and where
/// to read it (`GET /v1/received-messages`), never the text itself.
async fn received_event(tx: &mut Tx, row: &ReceivedMessageRow) -> Result<()> {
    crate::webhooks::queue_event(
        tx,
        &row.practice_id,
        "message.received",
        &format!("message.received/{}", row.id),
        json!({
            "id": row.id,
            "patient": row.patient_id,
            "appointment": row.appointment_id,
            "channel": "sms",
            "keyword": row.keyword,
            "received_at": row.received_at,
        }),
        row.received_at,
    )
    .await
    .map(|_| ())
}
