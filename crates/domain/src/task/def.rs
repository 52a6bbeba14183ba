//! A task's definition: its checks and its occurrences in the practice's time zone.
//!
//! Over 700 lines, for one concern: about 440 of code and the tests of the periodicities across
//! daylight-saving switches and month ends, which need every case spelt out.

use jiff::{
    Timestamp,
    civil::{Date, Time, Weekday},
    tz::TimeZone,
};
use serde::{Deserialize, Serialize};

use super::cron::Cron;
use crate::notification::Channel;

/// Missed appointments in `range`; patients whose birthday is the run date (29 February: 28
/// February in common years); patients last seen more than `recall_months` months ago with
/// nothing booked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskType {
    MissedAppointments,
    Birthdays,
    Recall,
}

/// Monthly runs on the first date's day of the month, or the last day of shorter months.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Every {
    Day,
    Week,
    Month,
}

/// A task as SCENARIOS.md `[[tasks]]` and `/v1/tasks` spell it. The periodicity is either
/// `every` (with `days` for weekly tasks and `time`) or a five-field `cron` expression in practice
/// time, never both.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskDef {
    /// Chosen by the client, 1 to 128 characters, no control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 128,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$"
        )
    )]
    pub id: String,
    /// Shown in the message (Relance des RDV manqués).
    #[serde(default)]
    pub label: String,
    #[serde(rename = "type")]
    pub task_type: TaskType,
    /// Local date of the first run.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub first_date: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Every>,
    /// Instead of `every`/`days`/`time`: `minute hour day-of-month month day-of-week` in
    /// practice time, with `*`, lists, ranges, steps and names (`30 8 * * mon-fri`). When both
    /// day fields are restricted, a day matching either runs (as in Vixie cron). See [`Cron`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// With `every: week`: `mon` to `sun`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
    /// The local run time of an `every` task, HH:MM. A time skipped by the spring clock change
    /// runs an hour later; one repeated in autumn runs once.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hh_mm")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub time: Option<Time>,
    /// `[a, b]`: from D+a to D+b relative to the run date, a ≤ b ≤ 0 (missed appointments;
    /// `[-1, -1]`: the day before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 2, max_items = 2))]
    pub range: Option<[i32; 2]>,
    /// Only these practitioners' patients; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub practitioners: Option<Vec<String>>,
    pub channel: Channel,
    /// The message template's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Leave out patients with an appointment to come.
    #[serde(default)]
    pub exclude_patients_with_later_appointment: bool,
    /// Missed appointments: leave out patients who came to the practice after the missed
    /// appointment.
    #[serde(default)]
    pub exclude_patients_seen_since: bool,
    /// Recall: months since the last visit, 1 to 120.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 120))]
    pub recall_months: Option<i32>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// Run times are written `HH:MM` as in SCENARIOS.md (seconds only when there are some), so a
/// definition reads back as it was written.
mod hh_mm {
    use jiff::civil::Time;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &Option<Time>, s: S) -> Result<S::Ok, S::Error> {
        match time {
            Some(t) if t.second() == 0 && t.subsec_nanosecond() == 0 => {
                s.serialize_str(&format!("{:02}:{:02}", t.hour(), t.minute()))
            }
            Some(t) => s.serialize_str(&t.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Time>, D::Error> {
        Option::<Time>::deserialize(d)
    }
}

/// Why a definition cannot run: the field at fault and the reason, for a 422 or a scenario error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidTask {
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> InvalidTask {
    InvalidTask {
        field,
        reason: reason.into(),
    }
}

/// The furthest back a missed-appointments range may reach.
const MAX_RANGE_DAYS: i32 = 366;
/// The longest recall period, in months (ten years).
const MAX_RECALL_MONTHS: i32 = 120;
/// The most occurrences a cron task may have in a day.
const MAX_RUNS_PER_DAY: usize = 24;

impl TaskDef {
    /// Refuses combinations that cannot run, naming the field and the reason.
    pub fn check(&self) -> Result<(), InvalidTask> {
        if self.id.trim().is_empty() {
            return Err(invalid("id", "a task needs an id"));
        }
        if !matches!(self.channel, Channel::Email | Channel::Sms) {
            return Err(invalid("channel", "a task sends by email or sms"));
        }
        match (&self.every, &self.cron) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "cron",
                    "give either `every` (day, week, month) or `cron`, not both",
                ));
            }
            (None, None) => {
                return Err(invalid(
                    "every",
                    "a task needs a periodicity: `every` (day, week, month) or a `cron` expression",
                ));
            }
            (Some(every), None) => self.check_every(*every)?,
            (None, Some(text)) => self.check_cron(text)?,
        }
        if let Some(list) = &self.practitioners {
            if list.is_empty() {
                return Err(invalid(
                    "practitioners",
                    "leave it out for every practitioner, or list at least one",
                ));
            }
            if list.iter().any(|p| p.trim().is_empty()) {
                return Err(invalid("practitioners", "a practitioner id is empty"));
            }
        }
        match self.task_type {
            TaskType::MissedAppointments => {
                let [a, b] = self.range.ok_or_else(|| {
                    invalid("range", "missed_appointments needs a range like [-1, -1]")
                })?;
                if a > b {
                    return Err(invalid(
                        "range",
                        "the first day must not come after the last",
                    ));
                }
                if b > 0 {
                    return Err(invalid(
                        "range",
                        "missed appointments are in the past (days ≤ 0)",
                    ));
                }
                if a < -MAX_RANGE_DAYS {
                    return Err(invalid(
                        "range",
                        format!("a range reaches at most {MAX_RANGE_DAYS} days back"),
                    ));
                }
            }
            TaskType::Recall => match self.recall_months {
                None => {
                    return Err(invalid(
                        "recall_months",
                        "a recall needs a number of months > 0",
                    ));
                }
                Some(m) if m <= 0 => {
                    return Err(invalid(
                        "recall_months",
                        "a recall needs a number of months > 0",
                    ));
                }
                Some(m) if m > MAX_RECALL_MONTHS => {
                    return Err(invalid(
                        "recall_months",
                        format!("at most {MAX_RECALL_MONTHS} months"),
                    ));
                }
                Some(_) => {}
            },
            TaskType::Birthdays => {}
        }
        if self.range.is_some() && self.task_type != TaskType::MissedAppointments {
            return Err(invalid(
                "range",
                "only missed_appointments tasks search a range of days",
            ));
        }
        if self.recall_months.is_some() && self.task_type != TaskType::Recall {
            return Err(invalid("recall_months", "only for recall tasks"));
        }
        if self.exclude_patients_seen_since && self.task_type != TaskType::MissedAppointments {
            return Err(invalid(
                "exclude_patients_seen_since",
                "only missed_appointments tasks have a missed appointment to have come since",
            ));
        }
        Ok(())
    }

    fn check_every(&self, every: Every) -> Result<(), InvalidTask> {
        if self.time.is_none() {
            return Err(invalid(
                "time",
                "a task with `every` needs a local run time like \"08:00\"",
            ));
        }
        match every {
            Every::Week if self.days.is_empty() => Err(invalid(
                "days",
                "a weekly task needs at least one day (mon … sun)",
            )),
            Every::Week => {
                for d in &self.days {
                    weekday(d).ok_or_else(|| {
                        invalid("days", format!("`{d}` is not a day (mon … sun)"))
                    })?;
                }
                Ok(())
            }
            _ if !self.days.is_empty() => Err(invalid(
                "days",
                "only weekly tasks (every = \"week\") take days",
            )),
            _ => Ok(()),
        }
    }

    fn check_cron(&self, text: &str) -> Result<(), InvalidTask> {
        let cron = Cron::parse(text).map_err(|reason| invalid("cron", reason))?;
        if !cron.can_fire() {
            return Err(invalid(
                "cron",
                "this expression never fires (no such day in the months given)",
            ));
        }
        // Every occurrence messages every selected patient again: an expression firing every
        // few minutes would flood them.
        let per_day = cron.times().count();
        if per_day > MAX_RUNS_PER_DAY {
            return Err(invalid(
                "cron",
                format!(
                    "a task runs at most {MAX_RUNS_PER_DAY} times a day (once an hour); this \
                     expression fires {per_day} times"
                ),
            ));
        }
        if self.time.is_some() {
            return Err(invalid(
                "time",
                "a cron task takes its run times from `cron`; leave `time` out",
            ));
        }
        if !self.days.is_empty() {
            return Err(invalid(
                "days",
                "a cron task takes its days from `cron`; leave `days` out",
            ));
        }
        Ok(())
    }

    fn schedule(&self) -> Option<Schedule> {
        match (&self.every, &self.cron) {
            (Some(every), None) => Some(Schedule::Every {
                every: *every,
                days: self.days.iter().filter_map(|d| weekday(d)).collect(),
                time: self.time?,
            }),
            (None, Some(text)) => Cron::parse(text).ok().map(Schedule::Cron),
            _ => None,
        }
    }

    /// Whether the task runs on that local date.
    pub fn runs_on(&self, date: Date) -> bool {
        self.schedule()
            .is_some_and(|schedule| self.runs_on_with(&schedule, date))
    }

    fn runs_on_with(&self, schedule: &Schedule, date: Date) -> bool {
        if date < self.first_date {
            return false;
        }
        match schedule {
            Schedule::Every { every, days, .. } => match every {
                Every::Day => true,
                Every::Week => days.contains(&date.weekday()),
                // On the first date's day of month, or the month's last day when it is shorter.
                Every::Month => {
                    let want = self.first_date.day();
                    date.day() == want.min(date.days_in_month())
                }
            },
            Schedule::Cron(cron) => cron.matches_date(date),
        }
    }

    /// The occurrences on one local date, earliest first, one per distinct instant.
    fn occurrences_on(&self, schedule: &Schedule, tz: &TimeZone, date: Date) -> Vec<Occurrence> {
        if !self.runs_on_with(schedule, date) {
            return Vec::new();
        }
        match schedule {
            Schedule::Every { time, .. } => vec![Occurrence {
                key: date.to_string(),
                date,
                at: local(tz, date, *time),
            }],
            Schedule::Cron(cron) => {
                let several = cron.fires_several_times_a_day();
                let mut out: Vec<Occurrence> = Vec::new();
                for time in cron.times() {
                    let at = local(tz, date, time);
                    // Keyed by the wall time the instant really has: 02:30 on the spring-forward
                    // day is 03:30, the same occurrence as a 03:30 in the same expression.
                    let key = if several {
                        let wall = at.to_zoned(tz.clone());
                        format!("{date}T{:02}:{:02}", wall.hour(), wall.minute())
                    } else {
                        date.to_string()
                    };
                    if !out.iter().any(|o| o.key == key) {
                        out.push(Occurrence { key, date, at });
                    }
                }
                out.sort_by_key(|o| o.at);
                out
            }
        }
    }

    /// The latest occurrence at or before `now`, if any.
    pub fn latest_due(&self, tz: &TimeZone, now: Timestamp) -> Option<Occurrence> {
        let schedule = self.schedule()?;
        let mut date = now.to_zoned(tz.clone()).date();
        for _ in 0..schedule.horizon_days() {
            if date < self.first_date {
                return None;
            }
            let found = self
                .occurrences_on(&schedule, tz, date)
                .into_iter()
                .rev()
                .find(|o| o.at <= now);
            if found.is_some() {
                return found;
            }
            date = date.yesterday().ok()?;
        }
        None
    }

    /// The first occurrence strictly after `after`.
    pub fn next_after(&self, tz: &TimeZone, after: Timestamp) -> Option<Occurrence> {
        let schedule = self.schedule()?;
        let mut date = after.to_zoned(tz.clone()).date().max(self.first_date);
        for _ in 0..schedule.horizon_days() {
            let found = self
                .occurrences_on(&schedule, tz, date)
                .into_iter()
                .find(|o| o.at > after);
            if found.is_some() {
                return found;
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

/// A definition's periodicity, parsed once per search.
enum Schedule {
    Every {
        every: Every,
        days: Vec<Weekday>,
        time: Time,
    },
    Cron(Cron),
}

impl Schedule {
    /// How many days a search walks before giving up. A monthly task needs a month; a cron
    /// expression for 29 February may wait eight years (2096 → 2104).
    fn horizon_days(&self) -> usize {
        match self {
            Schedule::Every { .. } => 400,
            Schedule::Cron(_) => 366 * 8 + 2,
        }
    }
}

/// One occurrence of a task: its identity (`YYYY-MM-DD`, or `YYYY-MM-DDTHH:MM` for a cron
/// expression that fires several times a day), its local date and its instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occurrence {
    pub key: String,
    pub date: Date,
    pub at: Timestamp,
}

/// A local wall time as an instant. A time in the spring-forward gap moves forward by the gap's
/// length; a time in the autumn fold is its first (summer-time) instance — jiff's "compatible"
/// disambiguation, the behaviour of RFC 5545 and of most calendars.
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

#[cfg(test)]
mod tests;
