//! The planner: `plan(context, facts, now)` computes every notification the policy wants for one
//! patient's appointments and documents — to send, or suppressed with the reason.
//!
//! It is a pure function (SPEC.md rule 1): no I/O, no clock reads; `now` is an argument. The
//! engine calls it after every change and reconciles its answer with what is stored. The unit of
//! planning is the patient, because grouping ("one SMS per patient-day") needs all of a patient's
//! appointments at once.
//!
//! What it deliberately does not decide: contact validity, patient switches and the SMS quota.
//! Those are checked when a message is due ([`crate::gate`]), from the facts of that moment, so a
//! patient who fixes an address in time still gets the message.
//!
//! One concern, one file (some 760 lines): the planner is one pure function and its steps
//! (appointments, documents, grouping, online booking) share the slots and conditions they
//! compute; split, each would import the others' internals.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp, civil::Date, tz::TimeZone};

use crate::facts::{
    Appointment, AppointmentStatus, Document, EmailDelivery, Motive, Move, Patient, Practitioner,
};
use crate::notification::{Channel, Desired, DesiredState, Kind, Reason, Recipient};
use crate::policy::{Audience, Grouping, Policy, Rule, Trigger};
use crate::settings::Settings;

/// The practice-wide part of the planner's input.
#[derive(Clone, Copy)]
pub struct PlanContext<'a> {
    pub policy: &'a Policy,
    pub settings: &'a Settings,
    pub tz: &'a TimeZone,
}

/// One patient's facts: the appointments and documents that can still produce messages, and the
/// practitioners and motives they refer to.
#[derive(Clone, Copy)]
pub struct PatientFacts<'a> {
    pub patient: &'a Patient,
    pub appointments: &'a [Appointment],
    pub documents: &'a [Document],
    pub practitioners: &'a BTreeMap<String, Practitioner>,
    pub motives: &'a BTreeMap<String, Motive>,
    /// Keys and appointments of the patient's grouped messages already handed off: an
    /// appointment they announced is not announced again.
    pub sent_groups: &'a [(String, Vec<String>)],
}

/// Computes the desired notifications for one patient. Deterministic: the same input gives the
/// same output in the same order.
pub fn plan(ctx: PlanContext<'_>, facts: PatientFacts<'_>, now: Timestamp) -> Vec<Desired> {
    let mut out = Vec::with_capacity(8 * facts.appointments.len() + 2 * facts.documents.len());
    // Grouped rules merge per patient, appointment day, kind and channel — across rules, so an
    // appointment reminded on D-2 and another on D-1 of the same day still make one SMS.
    let mut groups: BTreeMap<(Date, Kind, Channel), Vec<Desired>> = BTreeMap::new();
    // Local dates, computed once: every day-relative rule and every key needs them.
    let dates: Vec<(Date, String)> = facts
        .appointments
        .iter()
        .map(|a| {
            let date = ctx.local_date(a.start);
            (date, format!("/{date}"))
        })
        .collect();
    for rule in &ctx.policy.rules {
        if rule.on.is_document() {
            for doc in facts.documents {
                plan_document(ctx, facts, rule, doc, now, &mut out);
            }
            continue;
        }
        for (appt, (date, date_suffix)) in facts.appointments.iter().zip(&dates) {
            let before = out.len();
            plan_appointment(ctx, facts, rule, appt, *date, date_suffix, now, &mut out);
            if rule.group == Some(Grouping::PatientDay) {
                let date = *date;
                for desired in out.drain(before..) {
                    groups
                        .entry((date, desired.kind, desired.channel))
                        .or_default()
                        .push(desired);
                }
            }
        }
    }
    for ((date, kind, channel), members) in groups {
        group_patient_day(facts, kind, date, channel, members, &mut out);
    }
    out
}

impl PlanContext<'_> {
    pub fn local_date(&self, at: Timestamp) -> Date {
        at.to_zoned(self.tz.clone()).date()
    }

    /// The instant of a local wall-clock time; in a DST gap it moves forward, in a fold it takes
    /// the earlier instant (jiff's "compatible" disambiguation, as calendars do).
    pub fn local_instant(&self, date: Date, time: jiff::civil::Time) -> Timestamp {
        date.to_datetime(time)
            .to_zoned(self.tz.clone())
            .map(|z| z.timestamp())
            .unwrap_or_else(|_| {
                date.to_datetime(time)
                    .to_zoned(TimeZone::UTC)
                    .expect("UTC")
                    .timestamp()
            })
    }

    /// The first instant at or after `at` outside the channel's quiet hours.
    pub fn after_quiet_hours(&self, channel: Channel, at: Timestamp) -> Timestamp {
        let Some((start, end)) = self.settings.quiet_hours(channel) else {
            return at;
        };
        let zoned = at.to_zoned(self.tz.clone());
        let time = zoned.time();
        let date = zoned.date();
        let quiet = if start < end {
            time >= start && time < end
        } else {
            time >= start || time < end
        };
        if !quiet {
            return at;
        }
        let end_date = if start > end && time >= start {
            date.tomorrow().unwrap_or(date)
        } else {
            date
        };
        self.local_instant(end_date, end)
    }
}

/// What the dispatcher does with a due message, from its stored due instant and window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendDecision {
    Send,
    /// In quiet hours: wait until then.
    Defer(Timestamp),
    /// Its window ended (or it would arrive after the appointment): `window_passed`.
    Passed,
}

/// Decides, at `now`, whether a due message goes now, waits for the end of quiet hours, or is no
/// longer useful. Shared by the planner and the dispatcher so both apply the same rule 6 and
/// decision 1: a change notice's `window_end` is the appointment's original start, which quiet
/// hours yield to, and it never expires.
pub fn send_decision(
    ctx: PlanContext<'_>,
    kind: Kind,
    channel: Channel,
    window_end: Option<Timestamp>,
    now: Timestamp,
) -> SendDecision {
    let expires = kind.expires_at(window_end);
    if expires.is_some_and(|end| now >= end) {
        return SendDecision::Passed;
    }
    let at = ctx.after_quiet_hours(channel, now);
    if at == now {
        return SendDecision::Send;
    }
    if kind.is_change_notice() && window_end.is_some_and(|start| at >= start) {
        return SendDecision::Send;
    }
    if expires.is_some_and(|end| at >= end) {
        return SendDecision::Passed;
    }
    SendDecision::Defer(at)
}

/// The raw timing of one occurrence before quiet hours.
struct Slot {
    due: Timestamp,
    window_end: Option<Timestamp>,
}

/// Whether a rule applies, and if not, whether that deserves an explanation.
enum Applies {
    Yes,
    No,
    Suppressed(Reason),
}

#[allow(clippy::too_many_arguments)]
fn plan_appointment(
    ctx: PlanContext<'_>,
    facts: PatientFacts<'_>,
    rule: &Rule,
    appt: &Appointment,
    date: Date,
    date_suffix: &str,
    now: Timestamp,
    out: &mut Vec<Desired>,
) {
    // (anchor instant, occurrence suffix of the identity key, the start the message is about:
    // a move notice's is the start before the move). Most triggers have one occurrence, so the
    // first is kept out of the vector: planning allocates as little as it can.
    let mut first: Option<(Timestamp, Occurrence, Timestamp)> = None;
    let mut more: Vec<(Timestamp, Occurrence, Timestamp)> = Vec::new();
    match (rule.on, appt.status) {
        (Trigger::Booked, AppointmentStatus::Booked) => {
            first = Some((appt.booked_at, Occurrence::Once, appt.start));
        }
        (Trigger::Scheduled, AppointmentStatus::Booked) => {
            // Keyed by the appointment's local date: a move to another day is a new reminder
            // (the old one is superseded), and moving back restores the original one.
            first = Some((appt.booked_at, Occurrence::Day, appt.start));
        }
        (Trigger::Moved, AppointmentStatus::Booked) => {
            let delay = rule.timing.delay.unwrap_or(SignedDuration::ZERO);
            // Changes within the delay of the episode's first change join it: one message with
            // the final state (SPEC.md rule 7; the delay runs from the first change, decision 10).
            // An episode whose final state is the one it started from (moved, then moved back)
            // changed nothing and announces nothing.
            let mut episodes: Vec<(&Move, &Move)> = Vec::new();
            for mv in &appt.moves {
                match episodes.last_mut() {
                    Some((first_move, last_move))
                        if delay > SignedDuration::ZERO && mv.at < first_move.at + delay =>
                    {
                        *last_move = mv;
                    }
                    _ => episodes.push((mv, mv)),
                }
            }
            let duration = SignedDuration::from_mins(i64::from(appt.duration_minutes));
            for (first_move, last_move) in episodes {
                let unchanged = first_move.from_start == last_move.to_start
                    && first_move.from_location == last_move.to_location;
                // "On D-1 or D of the original date": the date before the episode's first move
                // (decision 10). A change recorded after the appointment ended tells nobody
                // anything useful (decision 5).
                if unchanged
                    || first_move.at >= first_move.from_start + duration
                    || !change_on_days_ok(ctx, rule, first_move.at, first_move.from_start)
                {
                    continue;
                }
                let occurrence = (
                    first_move.at,
                    Occurrence::At(first_move.at.as_millisecond()),
                    first_move.from_start,
                );
                if first.is_none() {
                    first = Some(occurrence);
                } else {
                    more.push(occurrence);
                }
            }
        }
        (Trigger::Cancelled, AppointmentStatus::Cancelled { at, by, .. }) => {
            let by_ok = rule
                .when
                .cancelled_by
                .as_ref()
                .is_none_or(|list| list.contains(&by));
            if by_ok && at < appt.end() && change_on_days_ok(ctx, rule, at, appt.start) {
                first = Some((at, Occurrence::Once, appt.start));
            }
        }
        (Trigger::Deleted, AppointmentStatus::Deleted { at }) if at < appt.end() => {
            first = Some((at, Occurrence::Once, appt.start));
        }
        (Trigger::NoShow, AppointmentStatus::NoShow { at }) => {
            first = Some((at, Occurrence::Once, appt.start));
        }
        _ => {}
    }
    if first.is_none() {
        return;
    }
    let applies = appointment_conditions(ctx, facts, rule, appt);
    if matches!(applies, Applies::No) {
        return;
    }
    for (anchor, occurrence, about_start) in first.into_iter().chain(more) {
        let Some(slot) = appointment_slot(ctx, rule, appt, date, anchor) else {
            continue;
        };
        let bound = if rule.to != Audience::Patient {
            Bound::None
        } else if rule.kind.announces_appointment() {
            Bound::Start(appt.start)
        } else if rule.kind.is_change_notice() {
            Bound::OriginalStart(about_start)
        } else {
            Bound::None
        };
        for (channel, recipient) in recipients(facts, rule, appt).into_iter().flatten() {
            let mut key = String::with_capacity(64);
            let _ = write!(key, "a:{}/{}/{}/{}", appt.id, rule.id, channel, recipient);
            match occurrence {
                Occurrence::Once => {}
                Occurrence::Day => key.push_str(date_suffix),
                Occurrence::At(ms) => {
                    let _ = write!(key, "/{ms}");
                }
            }
            let mut desired = finish(
                ctx,
                rule,
                key,
                facts.patient,
                channel,
                recipient,
                &slot,
                bound,
                now,
            );
            desired.appointments = vec![appt.id.clone()];
            if let Applies::Suppressed(reason) = applies {
                desired.state = DesiredState::Suppressed(reason);
            }
            out.push(desired);
        }
    }
}

/// The last part of an identity key: what distinguishes occurrences of one rule.
#[derive(Clone, Copy)]
enum Occurrence {
    /// The rule fires once per appointment (booking, cancellation…).
    Once,
    /// Once per appointment date (reminders).
    Day,
    /// Once per coalesced group of changes, named by its first change (moves).
    At(i64),
}

fn change_on_days_ok(
    ctx: PlanContext<'_>,
    rule: &Rule,
    change_at: Timestamp,
    reference_start: Timestamp,
) -> bool {
    let Some(days) = &rule.when.change_on_days else {
        return true;
    };
    let d = ctx.local_date(reference_start);
    let change_day = ctx.local_date(change_at);
    let diff = (change_day - d).get_days();
    days.contains(&diff)
}

fn appointment_conditions(
    ctx: PlanContext<'_>,
    facts: PatientFacts<'_>,
    rule: &Rule,
    appt: &Appointment,
) -> Applies {
    let w = &rule.when;
    let lead = appt.lead();
    if w.lead_over.is_some_and(|min| lead <= min) || w.lead_at_most.is_some_and(|max| lead > max) {
        return Applies::No;
    }
    if w.source
        .as_ref()
        .is_some_and(|list| !list.contains(&appt.source))
    {
        return Applies::No;
    }
    if let Some(applies) = option_conditions(ctx, rule) {
        return applies;
    }
    let motive_off = appt
        .motive
        .as_ref()
        .and_then(|m| facts.motives.get(m))
        .is_some_and(|m| !m.notifications);
    if rule.to == Audience::Patient && !w.ignore_motive && motive_off {
        return Applies::Suppressed(Reason::MotiveNotificationsDisabled);
    }
    Applies::Yes
}

/// The option-based conditions; `None` when they all hold.
fn option_conditions(ctx: PlanContext<'_>, rule: &Rule) -> Option<Applies> {
    let w = &rule.when;
    if w.option_off.as_ref().is_some_and(|o| ctx.settings.is_on(o)) {
        return Some(Applies::No);
    }
    if w.options
        .iter()
        .any(|(o, values)| !ctx.settings.is_one_of(o, values))
    {
        return Some(Applies::No);
    }
    if w.option.as_ref().is_some_and(|o| !ctx.settings.is_on(o)) {
        return Some(Applies::Suppressed(Reason::OptionDisabled));
    }
    None
}

fn appointment_slot(
    ctx: PlanContext<'_>,
    rule: &Rule,
    appt: &Appointment,
    date: Date,
    anchor: Timestamp,
) -> Option<Slot> {
    let t = &rule.timing;
    if let Some(delay) = t.delay {
        return Some(Slot {
            due: anchor + delay,
            window_end: None,
        });
    }
    if let Some(day) = t.day {
        let date = date.checked_add(jiff::Span::new().days(day)).ok()?;
        let (start, end) = match (t.window, t.from) {
            (Some((a, b)), _) => (ctx.local_instant(date, a), Some(ctx.local_instant(date, b))),
            (None, Some(a)) => (ctx.local_instant(date, a), None),
            (None, None) => (ctx.local_instant(date, jiff::civil::Time::midnight()), None),
        };
        if let Some(late) = t.late_after_booking
            && appt.planned_at() >= start
        {
            return Some(Slot {
                due: appt.planned_at() + late,
                window_end: None,
            });
        }
        return Some(Slot {
            due: start,
            window_end: end,
        });
    }
    if let Some(before) = t.before_start {
        let due = appt.start - before;
        return Some(Slot {
            due,
            window_end: t.grace.map(|g| due + g),
        });
    }
    if let Some(cap) = t.halfway_cap {
        let half = SignedDuration::from_millis(appt.lead().as_millis() as i64 / 2);
        let due = std::cmp::max(appt.start - cap, appt.planned_at() + half);
        return Some(Slot {
            due,
            window_end: None,
        });
    }
    None
}

/// The channels and recipients of one rule for one appointment (at most two: a practitioner's
/// email and mobile).
fn recipients(
    facts: PatientFacts<'_>,
    rule: &Rule,
    appt: &Appointment,
) -> [Option<(Channel, Recipient)>; 2] {
    match rule.to {
        Audience::Patient => [
            Some((
                patient_channel(facts.patient, rule),
                Recipient::Patient(appt.patient.clone()),
            )),
            None,
        ],
        Audience::Practitioner => {
            let mut found = [None, None];
            let Some(practitioner) = facts.practitioners.get(&appt.practitioner) else {
                return found;
            };
            let reachable = rule.channels.iter().filter(|c| match c {
                Channel::Email => practitioner.email.is_some(),
                Channel::Sms => practitioner.mobile.is_some(),
                _ => false,
            });
            for (slot, channel) in found.iter_mut().zip(reachable) {
                *slot = Some((*channel, Recipient::Practitioner(practitioner.id.clone())));
            }
            found
        }
    }
}

/// The rule's channel, or its fallback when the patient has no usable contact for the first.
fn patient_channel(patient: &Patient, rule: &Rule) -> Channel {
    let primary = rule.channels[0];
    let Some(fallback) = rule.fallback else {
        return primary;
    };
    if has_usable_contact(patient, primary) {
        primary
    } else {
        fallback
    }
}

pub fn has_usable_contact(patient: &Patient, channel: Channel) -> bool {
    match channel {
        Channel::Email => patient.email.as_ref().is_some_and(|e| e.valid().is_some()),
        Channel::Sms => patient
            .mobile
            .as_ref()
            .is_some_and(|m| m.mobile().is_some()),
        Channel::Push => patient.has_push(),
        Channel::Postal => patient.address.is_some(),
        Channel::Inbox => true,
    }
}

/// What limits a message's usefulness, from the appointment it is about (SPEC.md decision 1).
#[derive(Clone, Copy)]
enum Bound {
    /// Nothing: practitioner alerts (they go even when the appointment has started), no-show
    /// emails, documents.
    None,
    /// A confirmation or reminder to the patient: not sent once the appointment has started.
    Start(Timestamp),
    /// A cancellation, deletion or move notice to the patient: quiet hours yield to the
    /// appointment's start before the change.
    OriginalStart(Timestamp),
}

/// Applies quiet hours and windows to a slot and builds the desired notification.
#[allow(clippy::too_many_arguments)]
fn finish(
    ctx: PlanContext<'_>,
    rule: &Rule,
    key: String,
    patient: &Patient,
    channel: Channel,
    recipient: Recipient,
    slot: &Slot,
    bound: Bound,
    now: Timestamp,
) -> Desired {
    let released = ctx.after_quiet_hours(channel, slot.due);
    let (due, window_end) = match bound {
        // Held past the original start, a notice would come too late to spare the trip: it
        // goes when planned, quiet hours notwithstanding.
        Bound::OriginalStart(start) if released != slot.due && released >= start => {
            (slot.due, Some(start))
        }
        Bound::OriginalStart(start) => (released, Some(start)),
        Bound::None | Bound::Start(_) => {
            // A message held back by quiet hours waits for their end even past its window
            // (rule 6), but never past the appointment it announces.
            let explicit_end = if released == slot.due {
                slot.window_end
            } else {
                None
            };
            let cap = match bound {
                Bound::Start(start) => Some(start),
                _ => None,
            };
            let window_end = match (explicit_end, cap) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (released, window_end)
        }
    };
    let expires = rule.kind.expires_at(window_end);
    let state = if now > due {
        match send_decision(ctx, rule.kind, channel, window_end, now) {
            SendDecision::Passed => DesiredState::Suppressed(Reason::WindowPassed),
            _ => DesiredState::Pending,
        }
    } else if expires.is_some_and(|end| due >= end) {
        DesiredState::Suppressed(Reason::WindowPassed)
    } else {
        DesiredState::Pending
    };
    Desired {
        key,
        patient: patient.id.clone(),
        rule: rule.id.clone(),
        kind: rule.kind,
        channel,
        recipient,
        appointments: Vec::new(),
        document: None,
        task: None,
        auto_resend: rule.auto_resend,
        due,
        window_end,
        state,
    }
}

fn plan_document(
    ctx: PlanContext<'_>,
    facts: PatientFacts<'_>,
    rule: &Rule,
    doc: &Document,
    now: Timestamp,
    out: &mut Vec<Desired>,
) {
    let anchor = match (rule.on, doc.email) {
        (Trigger::DocumentSent, _) => doc.sent_at,
        (Trigger::DocumentFailed, EmailDelivery::Failed { at }) => at,
        (Trigger::DocumentUnread, EmailDelivery::Delivered { at } | EmailDelivery::Sent { at }) => {
            let Some(days) = rule
                .timing
                .days_option
                .as_ref()
                .and_then(|o| ctx.settings.integer(o))
            else {
                return;
            };
            let due = at + SignedDuration::from_hours(24 * days);
            // Consulted in time: nothing more to do.
            if doc.consulted_at.is_some_and(|c| c <= due) {
                return;
            }
            at
        }
        _ => return,
    };
    let applies = option_conditions(ctx, rule).unwrap_or(Applies::Yes);
    if matches!(applies, Applies::No) {
        return;
    }
    let due = match (&rule.timing.delay, &rule.timing.days_option) {
        (Some(delay), _) => anchor + *delay,
        (None, Some(opt)) => match ctx.settings.integer(opt) {
            Some(days) => anchor + SignedDuration::from_hours(24 * days),
            None => return,
        },
        _ => return,
    };
    let slot = Slot {
        due,
        window_end: None,
    };
    let channel = patient_channel(facts.patient, rule);
    let recipient = Recipient::Patient(doc.patient.clone());
    let key = format!("d:{}/{}/{}", doc.id, rule.id, channel);
    let mut desired = finish(
        ctx,
        rule,
        key,
        facts.patient,
        channel,
        recipient,
        &slot,
        Bound::None,
        now,
    );
    desired.document = Some(doc.id.clone());
    if let Applies::Suppressed(reason) = applies {
        desired.state = DesiredState::Suppressed(reason);
    }
    out.push(desired);
}

/// One message per patient and appointment day: the pending members merge into one message
/// keyed by the day and its first appointment; the others keep their own keys marked `grouped`.
/// Appointments an already-sent message of that day announced are left out, so an appointment
/// booked after the day's SMS went still gets one of its own.
fn group_patient_day(
    facts: PatientFacts<'_>,
    kind: Kind,
    date: Date,
    channel: Channel,
    mut members: Vec<Desired>,
    out: &mut Vec<Desired>,
) {
    let prefix = format!("p:{}/{}/{}/{}/", facts.patient.id, date, kind, channel);
    let covered: std::collections::BTreeSet<&str> = facts
        .sent_groups
        .iter()
        .filter(|(key, _)| key.starts_with(&prefix))
        .flat_map(|(_, appointments)| appointments.iter().map(String::as_str))
        .collect();
    members.retain(|d| !covered.contains(d.appointments[0].as_str()));
    let starts: BTreeMap<&str, Timestamp> = facts
        .appointments
        .iter()
        .map(|a| (a.id.as_str(), a.start))
        .collect();
    let start_of = |d: &Desired| starts.get(d.appointments[0].as_str()).copied();
    members.sort_by_key(|d| (d.due, start_of(d)));
    let pending: Vec<usize> = members
        .iter()
        .enumerate()
        .filter(|(_, d)| d.state == DesiredState::Pending)
        .map(|(i, _)| i)
        .collect();
    let Some(&leader) = pending.first() else {
        out.extend(members);
        return;
    };
    let mut group = members[leader].clone();
    let mut ids: Vec<(Option<Timestamp>, String)> = pending
        .iter()
        .map(|&i| (start_of(&members[i]), members[i].appointments[0].clone()))
        .collect();
    ids.sort();
    group.appointments = ids.into_iter().map(|(_, id)| id).collect();
    group.key = format!("{prefix}{}", group.appointments[0]);
    group.window_end = pending.iter().filter_map(|&i| members[i].window_end).min();
    for (i, mut member) in members.into_iter().enumerate() {
        if i == leader {
            continue;
        }
        if member.state == DesiredState::Pending {
            member.state = DesiredState::Suppressed(Reason::Grouped);
        }
        out.push(member);
    }
    out.push(group);
}

/// Whether the patient may book online (Doctolib's block after repeated unexcused no-shows).
pub fn online_booking(
    policy: &Policy,
    settings: &Settings,
    appointments: &[Appointment],
    now: Timestamp,
    tz: &TimeZone,
) -> (bool, Option<String>) {
    let Some(spec) = &policy.online_booking else {
        return (true, None);
    };
    let Some(threshold) = settings.integer(&spec.no_show_threshold).filter(|t| *t > 0) else {
        return (true, None);
    };
    let since = now
        .to_zoned(tz.clone())
        .checked_sub(jiff::Span::new().months(spec.window_months))
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::MIN);
    let missed = appointments
        .iter()
        .filter(|a| a.start >= since && a.start <= now)
        .filter(|a| {
            matches!(
                a.status,
                AppointmentStatus::NoShow { .. }
                    | AppointmentStatus::Cancelled { excused: false, .. }
            )
        })
        .count() as i64;
    if missed >= threshold {
        (
            false,
            Some(format!(
                "{missed} absences non excusées sur les {} derniers mois (seuil : {threshold})",
                spec.window_months
            )),
        )
    } else {
        (true, None)
    }
}
