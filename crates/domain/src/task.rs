//! Scheduled tasks (the programmateur, seed 001): definitions, their occurrences in local time,
//! and who a run selects. Pure: the engine claims occurrences and sends the messages.

use jiff::{
    Timestamp,
    civil::{Date, Time, Weekday},
    tz::TimeZone,
};
use serde::{Deserialize, Serialize};

use crate::facts::{Appointment, AppointmentStatus, Patient};
use crate::notification::Channel;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskType {
    MissedAppointments,
    Birthdays,
    Recall,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Every {
    Day,
    Week,
    Month,
}

/// A task as SCENARIOS.md `[[tasks]]` and `/v1/tasks` spell it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDef {
    pub id: String,
    #[serde(default)]
    pub label: String,
    #[serde(rename = "type")]
    pub task_type: TaskType,
    pub first_date: Date,
    pub every: Every,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
    pub time: Time,
    /// `[a, b]`: from D+a to D+b relative to the run date (missed appointments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[i32; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub practitioners: Option<Vec<String>>,
    pub channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default)]
    pub exclude_patients_with_later_appointment: bool,
    #[serde(default)]
    pub exclude_patients_seen_since: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recall_months: Option<i32>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

impl TaskDef {
    /// Refuses combinations that cannot run, with the reason.
    pub fn check(&self) -> Result<(), String> {
        if !matches!(self.channel, Channel::Email | Channel::Sms) {
            return Err("channel: a task sends by email or sms".into());
        }
        match self.every {
            Every::Week if self.days.is_empty() => {
                return Err("days: a weekly task needs at least one day (mon … sun)".into());
            }
            Every::Week => {
                for d in &self.days {
                    weekday(d).ok_or_else(|| format!("days: `{d}` is not a day (mon … sun)"))?;
                }
            }
            _ if !self.days.is_empty() => {
                return Err("days: only weekly tasks (every = \"week\") take days".into());
            }
            _ => {}
        }
        match self.task_type {
            TaskType::MissedAppointments => {
                let [a, b] = self
                    .range
                    .ok_or("range: missed_appointments needs a range like [-1, -1]")?;
                if a > b {
                    return Err("range: the first day must not come after the last".into());
                }
                if b > 0 {
                    return Err("range: missed appointments are in the past (days ≤ 0)".into());
                }
            }
            TaskType::Recall => {
                if self.recall_months.is_none_or(|m| m <= 0) {
                    return Err("recall_months: a recall needs a number of months > 0".into());
                }
            }
            TaskType::Birthdays => {}
        }
        if self.recall_months.is_some() && self.task_type != TaskType::Recall {
            return Err("recall_months: only for recall tasks".into());
        }
        Ok(())
    }

    /// Whether the task runs on that local date.
    pub fn runs_on(&self, date: Date) -> bool {
        if date < self.first_date {
            return false;
        }
        match self.every {
            Every::Day => true,
            Every::Week => self
                .days
                .iter()
                .filter_map(|d| weekday(d))
                .any(|w| w == date.weekday()),
            // On the first date's day of month, or the month's last day when it is shorter.
            Every::Month => {
                let want = self.first_date.day();
                date.day() == want.min(date.days_in_month())
            }
        }
    }

    /// The latest occurrence (local date and instant) at or before `now`, if any.
    pub fn latest_due(&self, tz: &TimeZone, now: Timestamp) -> Option<(Date, Timestamp)> {
        let today = now.to_zoned(tz.clone()).date();
        let mut date = today;
        // At most a year back (a monthly task on the 31st needs up to a month).
        for _ in 0..400 {
            if date < self.first_date {
                return None;
            }
            if self.runs_on(date) {
                let at = local(tz, date, self.time);
                if at <= now {
                    return Some((date, at));
                }
            }
            date = date.yesterday().ok()?;
        }
        None
    }

    /// The first occurrence strictly after `after`.
    pub fn next_after(&self, tz: &TimeZone, after: Timestamp) -> Option<(Date, Timestamp)> {
        let mut date = after.to_zoned(tz.clone()).date().max(self.first_date);
        for _ in 0..400 {
            if self.runs_on(date) {
                let at = local(tz, date, self.time);
                if at > after {
                    return Some((date, at));
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

fn local(tz: &TimeZone, date: Date, time: Time) -> Timestamp {
    date.to_datetime(time)
        .to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

pub fn weekday(text: &str) -> Option<Weekday> {
    Some(match text {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return None,
    })
}

/// One message a run wants: to a patient, about these appointments (missed ones).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selected {
    pub patient: String,
    pub appointments: Vec<String>,
}

/// Who an occurrence on `run_date` selects. `history` holds every appointment of the practice
/// that matters (at least the range and everything after it; all of them for recalls).
pub fn select(
    task: &TaskDef,
    tz: &TimeZone,
    run_date: Date,
    run_at: Timestamp,
    patients: &[Patient],
    history: &[Appointment],
) -> Vec<Selected> {
    let practitioner_ok = |a: &Appointment| {
        task.practitioners
            .as_ref()
            .is_none_or(|list| list.contains(&a.practitioner))
    };
    let date_of = |t: Timestamp| t.to_zoned(tz.clone()).date();
    let mut out: Vec<Selected> = Vec::new();
    match task.task_type {
        TaskType::MissedAppointments => {
            let [a, b] = task.range.unwrap_or([-1, -1]);
            let (Ok(from), Ok(to)) = (
                run_date.checked_add(jiff::Span::new().days(a)),
                run_date.checked_add(jiff::Span::new().days(b)),
            ) else {
                return out;
            };
            for appt in history {
                let d = date_of(appt.start);
                if !(matches!(appt.status, AppointmentStatus::NoShow { .. })
                    && d >= from
                    && d <= to
                    && practitioner_ok(appt))
                {
                    continue;
                }
                let later = history.iter().any(|o| {
                    o.patient == appt.patient
                        && o.id != appt.id
                        && o.start > appt.start
                        && o.is_active()
                        && o.start > run_at
                });
                if task.exclude_patients_with_later_appointment && later {
                    continue;
                }
                let seen = history.iter().any(|o| {
                    o.patient == appt.patient
                        && o.start > appt.start
                        && matches!(o.status, AppointmentStatus::Attended { .. })
                });
                if task.exclude_patients_seen_since && seen {
                    continue;
                }
                match out.iter_mut().find(|s| s.patient == appt.patient) {
                    Some(s) => s.appointments.push(appt.id.clone()),
                    None => out.push(Selected {
                        patient: appt.patient.clone(),
                        appointments: vec![appt.id.clone()],
                    }),
                }
            }
        }
        TaskType::Birthdays => {
            for p in patients {
                let Some(birth) = p.birth_date else { continue };
                // Born on 29 February: celebrated on 28 February in common years.
                let (m, d) = (birth.month(), birth.day());
                let hit = (run_date.month(), run_date.day()) == (m, d)
                    || (m == 2
                        && d == 29
                        && !run_date.in_leap_year()
                        && run_date.month() == 2
                        && run_date.day() == 28);
                let with_practitioner = task.practitioners.is_none()
                    || history
                        .iter()
                        .any(|a| a.patient == p.id && practitioner_ok(a));
                if hit && with_practitioner {
                    out.push(Selected {
                        patient: p.id.clone(),
                        appointments: Vec::new(),
                    });
                }
            }
        }
        TaskType::Recall => {
            let months = task.recall_months.unwrap_or(6);
            let Ok(limit) = run_date.checked_sub(jiff::Span::new().months(months)) else {
                return out;
            };
            for p in patients {
                let mine: Vec<&Appointment> =
                    history.iter().filter(|a| a.patient == p.id).collect();
                let last_seen = mine
                    .iter()
                    .filter(|a| {
                        matches!(a.status, AppointmentStatus::Attended { .. }) && practitioner_ok(a)
                    })
                    .map(|a| date_of(a.start))
                    .max();
                let booked = mine.iter().any(|a| a.is_active() && a.start > run_at);
                if let Some(last) = last_seen
                    && last < limit
                    && !booked
                {
                    out.push(Selected {
                        patient: p.id.clone(),
                        appointments: Vec::new(),
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.patient.cmp(&b.patient));
    out
}
