//! What the web interface shows at a glance: messages of a day, failures, the SMS quota, delivery
//! rates, and the sent box with the patients' names.

use std::collections::HashMap;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp, ToSpan};
use rappel_domain::contact::{Contact, PhoneNumber};
use rappel_domain::facts::{Appointment, Patient, Practitioner};
use rappel_domain::gate;
use rappel_domain::notification::{Channel, Reason, Recipient};
use rappel_store::{NotificationFilter, NotificationRow, Status, Tx};

use crate::practice::{PracticeCtx, load_practice};
use crate::{Engine, EngineError, Result};

/// One notification with the name of the patient it concerns.
#[derive(Clone, Debug)]
pub struct Message {
    pub row: NotificationRow,
    /// "Jeanne Dupont"; `None` once the patient was erased.
    pub patient_name: Option<String>,
    /// For a message still planned: what the send-time checks say of it today.
    pub outlook: Option<Outlook>,
    /// The practitioner's name for a practitioner alert (the patient's is `patient_name`).
    pub practitioner_name: Option<String>,
    /// Where it went (the address at hand-off) or, not sent yet, where it would go today: the
    /// email address, mobile number or postal address of the patient, or of the practitioner
    /// for an alert. `None` for push messages and when there is no such contact.
    pub recipient_address: Option<String>,
    /// The (first) appointment it is about: when, and with whom.
    pub appointment: Option<AppointmentBrief>,
}

/// An appointment as a message's row shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppointmentBrief {
    pub id: String,
    pub start: Timestamp,
    /// The practitioner's name (their id when unknown).
    pub practitioner: String,
}

/// What will become of a planned message if nothing changes before it is due: the dispatcher's
/// own checks ([`gate::check_patient`]) on today's facts, so that the practice sees at once
/// that an SMS to a landline will not go instead of « Prévu » until it fails. Computed on
/// every read, so a corrected contact shows at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outlook {
    /// It would be refused with this reason.
    WillNotGo(Reason),
    /// Quiet hours moved it to their end (SPEC.md rule 6).
    AfterQuietHours,
}

/// The month's SMS consumption against the quota.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsMeter {
    /// `YYYY-MM` in the practice's time zone.
    pub month: String,
    pub messages: i64,
    pub segments: i64,
    /// `None`: no quota.
    pub quota: Option<i64>,
}

/// Outcomes of one channel's messages over a period.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelRate {
    pub channel: String,
    /// Handed to the provider (sent, then maybe delivered or failed later).
    pub handed_off: i64,
    pub delivered: i64,
    pub failed: i64,
    pub suppressed: i64,
}

#[derive(Clone, Debug)]
pub struct Dashboard {
    pub today: Date,
    /// Messages due today and tomorrow (local days), by due time; suppressed ones included so
    /// the practice sees what will *not* go and why.
    pub today_messages: Vec<Message>,
    pub tomorrow_messages: Vec<Message>,
    /// Failures of the last 7 days, newest first.
    pub recent_failures: Vec<Message>,
    pub to_verify_open: usize,
    pub notifications_open: usize,
    pub sms: SmsMeter,
    /// The last 30 days, per channel.
    pub rates: Vec<ChannelRate>,
}

/// Most messages one day of the dashboard lists.
const DAY_LIMIT: i64 = 200;

impl Engine {
    pub async fn dashboard(&self, practice_id: &str) -> Result<Dashboard> {
        let now = self.now();
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let local = now.to_zoned(ctx.tz.clone());
        let today = local.date();
        let start_of = |date: Date| -> Result<Timestamp> {
            date.to_zoned(ctx.tz.clone())
                .map(|z| z.timestamp())
                .map_err(|e| EngineError::invalid("date", e.to_string()))
        };
        let tomorrow = today
            .checked_add(1.day())
            .map_err(|e| EngineError::invalid("date", e.to_string()))?;
        let after = tomorrow
            .checked_add(1.day())
            .map_err(|e| EngineError::invalid("date", e.to_string()))?;
        let day = |from: Timestamp, until: Timestamp| NotificationFilter {
            since: Some(from),
            until: Some(until),
            limit: DAY_LIMIT,
            ..NotificationFilter::default()
        };
        let today_rows = tx
            .list_notifications(practice_id, &day(start_of(today)?, start_of(tomorrow)?))
            .await?;
        let tomorrow_rows = tx
            .list_notifications(practice_id, &day(start_of(tomorrow)?, start_of(after)?))
            .await?;
        let week_ago = now - SignedDuration::from_hours(24 * 7);
        let mut failures = tx
            .list_notifications(
                practice_id,
                &NotificationFilter {
                    status: Some(Status::Failed),
                    since: Some(week_ago - SignedDuration::from_hours(24 * 30)),
                    limit: 500,
                    ..NotificationFilter::default()
                },
            )
            .await?;
        // Filtered by due time in SQL (the index), by failure time here.
        failures.retain(|r| r.decided_at.unwrap_or(r.updated_at) >= week_ago);
        failures.sort_by_key(|r| std::cmp::Reverse(r.updated_at));
        failures.truncate(20);
        let inbox = tx.inbox(practice_id, None, false).await?;
        let month = local.strftime("%Y-%m").to_string();
        let (messages, segments) = tx.sms_usage(practice_id, &month).await?;
        let stats = tx
            .notification_stats(
                practice_id,
                now - SignedDuration::from_hours(24 * 30),
                now + SignedDuration::from_secs(1),
            )
            .await?;
        let mut names = HashMap::new();
        let today_messages = with_names(&mut tx, &ctx, today_rows, &mut names).await?;
        let tomorrow_messages = with_names(&mut tx, &ctx, tomorrow_rows, &mut names).await?;
        let recent_failures = with_names(&mut tx, &ctx, failures, &mut names).await?;
        tx.commit().await?;
        Ok(Dashboard {
            today,
            today_messages,
            tomorrow_messages,
            recent_failures,
            to_verify_open: inbox.iter().filter(|e| e.inbox == "to_verify").count(),
            notifications_open: inbox.iter().filter(|e| e.inbox == "notifications").count(),
            sms: SmsMeter {
                month,
                messages,
                segments,
                quota: crate::dispatch::sms_quota(&ctx),
            },
            rates: rates(&stats),
        })
    }

    /// The messages due on one local day (the dashboard's day navigation), by due time;
    /// suppressed ones included.
    pub async fn day_messages(&self, practice_id: &str, day: Date) -> Result<Vec<Message>> {
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let start_of = |date: Date| -> Result<Timestamp> {
            date.to_zoned(ctx.tz.clone())
                .map(|z| z.timestamp())
                .map_err(|e| EngineError::invalid("date", e.to_string()))
        };
        let next = day
            .checked_add(1.day())
            .map_err(|e| EngineError::invalid("date", e.to_string()))?;
        let rows = tx
            .list_notifications(
                practice_id,
                &NotificationFilter {
                    since: Some(start_of(day)?),
                    until: Some(start_of(next)?),
                    limit: DAY_LIMIT,
                    ..NotificationFilter::default()
                },
            )
            .await?;
        let mut names = HashMap::new();
        let messages = with_names(&mut tx, &ctx, rows, &mut names).await?;
        tx.commit().await?;
        Ok(messages)
    }

    /// The sent box with patients' names: one page by due time, then key.
    pub async fn messages(
        &self,
        practice_id: &str,
        filter: &NotificationFilter,
    ) -> Result<(Vec<Message>, Option<(Timestamp, String)>)> {
        let limit = filter.limit.max(1);
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let probe = NotificationFilter {
            limit: limit + 1,
            ..filter.clone()
        };
        let mut rows = tx.list_notifications(practice_id, &probe).await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next = more
            .then(|| rows.last().map(|r| (r.due_at, r.key.clone())))
            .flatten();
        let mut names = HashMap::new();
        let messages = with_names(&mut tx, &ctx, rows, &mut names).await?;
        tx.commit().await?;
        Ok((messages, next))
    }

    /// Every report providers sent about one message after its hand-off, oldest first.
    pub async fn message_reports(
        &self,
        practice_id: &str,
        key: &str,
    ) -> Result<Vec<rappel_store::DeliveryReportRow>> {
        let mut tx = self.store().begin_read().await?;
        load_practice(&mut tx, practice_id).await?;
        let reports = tx.delivery_reports(practice_id, key).await?;
        tx.commit().await?;
        Ok(reports)
    }

    /// One notification by its key, with what was rendered at hand-off.
    pub async fn message(&self, practice_id: &str, key: &str) -> Result<Message> {
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let row = tx
            .notification(practice_id, key)
            .await?
            .ok_or_else(|| EngineError::not_found("notification", key))?;
        let mut names = HashMap::new();
        let mut found = with_names(&mut tx, &ctx, vec![row], &mut names).await?;
        tx.commit().await?;
        Ok(found.remove(0))
    }

    /// An appointment and every message considered for it, sent or not, in time order.
    pub async fn appointment_messages(
        &self,
        practice_id: &str,
        id: &str,
    ) -> Result<(rappel_domain::facts::Appointment, Vec<Message>)> {
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let appointment = tx
            .appointment(practice_id, id)
            .await?
            .ok_or_else(|| EngineError::not_found("appointment", id))?;
        let mut rows = tx
            .appointment_notifications(practice_id, &appointment.patient, id)
            .await?;
        rows.sort_by_key(|r| (r.decided_at.unwrap_or(r.due_at), r.key.clone()));
        let mut names = HashMap::new();
        let messages = with_names(&mut tx, &ctx, rows, &mut names).await?;
        tx.commit().await?;
        Ok((appointment, messages))
    }

    /// A patient's messages, sent or not, in time order, and their appointments.
    pub async fn patient_messages(
        &self,
        practice_id: &str,
        id: &str,
    ) -> Result<(Vec<rappel_domain::facts::Appointment>, Vec<Message>)> {
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        if tx.patient(practice_id, id).await?.is_none() {
            return Err(EngineError::not_found("patient", id));
        }
        let appointments = tx.patient_history(practice_id, id).await?;
        let mut rows = tx.patient_notifications(practice_id, id).await?;
        rows.sort_by_key(|r| (r.decided_at.unwrap_or(r.due_at), r.key.clone()));
        let mut names = HashMap::new();
        let messages = with_names(&mut tx, &ctx, rows, &mut names).await?;
        tx.commit().await?;
        Ok((appointments, messages))
    }

    /// The practice's practitioners, by id (the settings page edits their alert contacts).
    pub async fn practitioners(
        &self,
        practice_id: &str,
    ) -> Result<Vec<rappel_domain::facts::Practitioner>> {
        let mut tx = self.store().begin_read().await?;
        load_practice(&mut tx, practice_id).await?;
        let found = tx.practitioners(practice_id).await?;
        tx.commit().await?;
        Ok(found)
    }

    /// Patients whose name, email or mobile contains `query`, at most `limit`.
    pub async fn search_patients(
        &self,
        practice_id: &str,
        query: &str,
        limit: i64,
    ) -> Result<Vec<rappel_domain::facts::Patient>> {
        let query = phone_fragment(query).unwrap_or_else(|| query.to_string());
        let mut tx = self.store().begin_read().await?;
        load_practice(&mut tx, practice_id).await?;
        let found = tx.search_patients(practice_id, &query, limit).await?;
        tx.commit().await?;
        Ok(found)
    }

    /// The appointment-timeline box: the patients whose name (or email, or phone number)
    /// matches, each with their appointments, newest first, and the practitioners' names by id.
    pub async fn find_appointments(
        &self,
        practice_id: &str,
        query: &str,
        limit: i64,
    ) -> Result<(Vec<(Patient, Vec<Appointment>)>, HashMap<String, String>)> {
        let query = phone_fragment(query).unwrap_or_else(|| query.trim().to_string());
        let mut tx = self.store().begin_read().await?;
        load_practice(&mut tx, practice_id).await?;
        let patients = tx.search_patients(practice_id, &query, limit).await?;
        let mut out = Vec::with_capacity(patients.len());
        for patient in patients {
            let mut appointments = tx.patient_history(practice_id, &patient.id).await?;
            appointments.sort_by_key(|a| std::cmp::Reverse(a.start));
            out.push((patient, appointments));
        }
        let names = tx
            .practitioners(practice_id)
            .await?
            .into_iter()
            .map(|p| (p.id, p.name))
            .collect();
        tx.commit().await?;
        Ok((out, names))
    }

    /// The month's SMS meter alone (the settings page shows it beside the quota option).
    pub async fn sms_meter(&self, practice_id: &str) -> Result<SmsMeter> {
        let now = self.now();
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let month = now.to_zoned(ctx.tz.clone()).strftime("%Y-%m").to_string();
        let (messages, segments) = tx.sms_usage(practice_id, &month).await?;
        tx.commit().await?;
        Ok(SmsMeter {
            month,
            messages,
            segments,
            quota: crate::dispatch::sms_quota(&ctx),
        })
    }
}

/// A search that is a phone number, or part of one, as typed at the desk (« 06 12 34 56 78 »,
/// « 06.12 », « +33 6 12 »): the digits without separators and without the national trunk `0`,
/// which is how they appear inside the stored E.164 form (`+33612345678`). `None` for a name.
fn phone_fragment(query: &str) -> Option<String> {
    let query = query.trim();
    let phone_like = query
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '.' | '-' | '+' | '(' | ')'));
    let digits: String = query
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    if !phone_like || digits.chars().filter(char::is_ascii_digit).count() < 2 {
        return None;
    }
    Some(match digits.strip_prefix('0') {
        Some(rest) if !rest.starts_with('0') => rest.to_string(),
        _ => digits,
    })
}

async fn with_names(
    tx: &mut Tx,
    ctx: &PracticeCtx,
    rows: Vec<NotificationRow>,
    patients: &mut HashMap<String, Option<Patient>>,
) -> Result<Vec<Message>> {
    let practice_id = ctx.row.id.as_str();
    let mut practitioners: HashMap<String, Option<Practitioner>> = HashMap::new();
    let mut appointments: HashMap<String, Option<Appointment>> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        if !patients.contains_key(&row.patient_id) {
            let patient = tx.patient(practice_id, &row.patient_id).await?;
            patients.insert(row.patient_id.clone(), patient);
        }
        let patient = patients.get(&row.patient_id).and_then(Option::as_ref);
        let patient_name = patient.map(|p| {
            format!("{} {}", p.first_name, p.last_name)
                .trim()
                .to_string()
        });
        let appointment = match row.appointments.first() {
            Some(id) => {
                if !appointments.contains_key(id) {
                    let found = tx.appointment(practice_id, id).await?;
                    appointments.insert(id.clone(), found);
                }
                appointments.get(id).cloned().flatten()
            }
            None => None,
        };
        let mut wanted: Vec<String> = appointment.iter().map(|a| a.practitioner.clone()).collect();
        if let Recipient::Practitioner(id) = &row.recipient {
            wanted.push(id.clone());
        }
        for id in wanted {
            if let std::collections::hash_map::Entry::Vacant(slot) = practitioners.entry(id) {
                let found = tx.practitioner(practice_id, slot.key()).await?;
                slot.insert(found);
            }
        }
        let practitioner_of = |id: &str| practitioners.get(id).and_then(Option::as_ref);
        let practitioner_name = match &row.recipient {
            Recipient::Practitioner(id) => practitioner_of(id).map(|p| p.name.clone()),
            Recipient::Patient(_) => None,
        };
        let sent_to = row
            .rendered
            .as_ref()
            .and_then(|r| r.get("to"))
            .and_then(|to| to.as_str())
            .map(String::from);
        // A mobile number as the practice writes it (« 06 12 34 56 78 »).
        let recipient_address = match sent_to {
            // The address a message went to, as recorded (E.164 for an SMS).
            Some(to) if row.channel == Channel::Sms => {
                Some(PhoneNumber::parse(&to).map(|n| n.national()).unwrap_or(to))
            }
            Some(to) => Some(to),
            None => match &row.recipient {
                Recipient::Practitioner(id) => {
                    practitioner_of(id).and_then(|p| match row.channel {
                        Channel::Email => p.email.as_ref().map(ToString::to_string),
                        Channel::Sms => p.mobile.as_ref().map(Contact::national),
                        _ => None,
                    })
                }
                Recipient::Patient(_) => patient.and_then(|p| match row.channel {
                    Channel::Email => p.email.as_ref().map(ToString::to_string),
                    Channel::Sms => p.mobile.as_ref().map(Contact::national),
                    Channel::Postal => p.address.as_ref().map(|a| a.lines().join(", ")),
                    _ => None,
                }),
            },
        };
        let appointment = appointment.map(|a| AppointmentBrief {
            practitioner: practitioner_of(&a.practitioner)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| a.practitioner.clone()),
            id: a.id,
            start: a.start,
        });
        let outlook = outlook(ctx, &row, patient);
        out.push(Message {
            row,
            patient_name,
            outlook,
            practitioner_name,
            recipient_address,
            appointment,
        });
    }
    Ok(out)
}

fn outlook(ctx: &PracticeCtx, row: &NotificationRow, patient: Option<&Patient>) -> Option<Outlook> {
    if row.status != Status::Pending {
        return None;
    }
    if let (Recipient::Patient(_), Some(patient)) = (&row.recipient, patient)
        && let Err(reason) = gate::check_patient(&ctx.policy, &ctx.settings, patient, row.channel)
    {
        return Some(Outlook::WillNotGo(reason));
    }
    let (_, end) = ctx.settings.quiet_hours(row.channel)?;
    let local = row.due_at.to_zoned(ctx.tz.clone()).time();
    (local == end).then_some(Outlook::AfterQuietHours)
}

fn rates(stats: &[(String, String, i64)]) -> Vec<ChannelRate> {
    let mut by_channel: Vec<ChannelRate> = Vec::new();
    for (channel, status, n) in stats {
        let i = match by_channel.iter().position(|r| &r.channel == channel) {
            Some(i) => i,
            None => {
                by_channel.push(ChannelRate {
                    channel: channel.clone(),
                    ..ChannelRate::default()
                });
                by_channel.len() - 1
            }
        };
        let rate = &mut by_channel[i];
        match Status::parse(status) {
            Some(Status::Sent) => rate.handed_off += n,
            Some(Status::Delivered) => {
                rate.handed_off += n;
                rate.delivered += n;
            }
            Some(Status::Failed) => {
                rate.handed_off += n;
                rate.failed += n;
            }
            Some(Status::Suppressed) => rate.suppressed += n,
            _ => {}
        }
    }
    by_channel
}

#[cfg(test)]
mod tests {
    use super::phone_fragment;

    #[test]
    fn a_phone_number_typed_at_the_desk_is_searched_as_stored() {
        assert_eq!(
            phone_fragment("06 12 34 56 78").as_deref(),
            Some("612345678")
        );
        assert_eq!(phone_fragment("06.12").as_deref(), Some("612"));
        assert_eq!(phone_fragment("+33 6 12").as_deref(), Some("+33612"));
        assert_eq!(phone_fragment("12 34").as_deref(), Some("1234"));
        assert_eq!(phone_fragment("Dupont"), None);
        assert_eq!(phone_fragment("7"), None);
    }
}
