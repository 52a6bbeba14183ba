//! Scheduled tasks (the programmateur, seed 001): definitions, their occurrences in local time,
//! and who a run selects. Pure: the engine claims occurrences and sends the messages.
//!
//! ```
//! use jiff::civil::date;
//! use rappel_domain::task::Cron;
//! // At 08:30 on weekdays, and at 10:00 on the 1st of the month whatever its weekday.
//! let cron = Cron::parse("30 8 * * mon-fri").unwrap();
//! assert!(cron.matches_date(date(2026, 3, 2))); // a Monday
//! assert!(!cron.matches_date(date(2026, 3, 1))); // a Sunday
//! ```
//!
//! A task runs on *occurrences*: a local date (or, for a cron expression that fires several times a
//! day, a local date and time) whose identity is [`Occurrence::key`]. The engine records one run
//! per key, which is what makes an occurrence run once across every node. Wall-clock times follow
//! the practice's time zone through the daylight-saving switches: a time that does not exist
//! (02:30 on the spring-forward day in Europe/Paris) runs at the same offset after the gap
//! (03:30), and a time that exists twice (02:30 on the autumn day) runs once, at its first instance.
//!
//! What this module deliberately does not do: read the clock, load facts or decide whether a
//! message may go (contacts, switches, quota, quiet hours are the dispatcher's, through
//! [`crate::gate`] and [`crate::plan::send_decision`], as for any other message).

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

/// A task as SCENARIOS.md `[[tasks]]` and `/v1/tasks` spell it. The periodicity is either
/// `every` (with `days` for weekly tasks and `time`) or a five-field `cron` expression in practice
/// time, never both.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDef {
    pub id: String,
    #[serde(default)]
    pub label: String,
    #[serde(rename = "type")]
    pub task_type: TaskType,
    pub first_date: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Every>,
    /// `minute hour day-of-month month day-of-week`, in practice-local time (see [`Cron`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
    /// The local run time of an `every` task.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hh_mm")]
    pub time: Option<Time>,
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

// ---- cron ------------------------------------------------------------------------------------

/// A five-field cron expression, `minute hour day-of-month month day-of-week`, read as Vixie cron
/// reads it: `*`, numbers, `a-b` ranges, `/step` on `*` or on a range (`5/15` is `5-59/15`),
/// comma lists, month names `jan`…`dec` and day names `sun`…`sat` (`mon-sun` is the whole week;
/// 0 and 7 are both Sunday). When both day fields are restricted a date matches either of them
/// (`0 9 1 * mon`: the 1st of the month *and* every Monday); when one starts with `*`, only the
/// other one counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    /// Bit 0 is Sunday.
    days_of_week: u8,
    dom_star: bool,
    dow_star: bool,
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The value of `names[0]`.
    first_name_value: u32,
}

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    first_name_value: 0,
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    first_name_value: 0,
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    first_name_value: 0,
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    first_name_value: 1,
};
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    first_name_value: 0,
};

impl Cron {
    /// Parses an expression; the error says which field is wrong and why.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            ));
        }
        // Fields are read left to right, so the error names the first wrong one.
        let minutes = parse_field(fields[0], &MINUTE)?;
        let hours = parse_field(fields[1], &HOUR)? as u32;
        let days_of_month = parse_field(fields[2], &DAY_OF_MONTH)? as u32;
        let months = parse_field(fields[3], &MONTH)? as u16;
        let mut days_of_week = parse_field(fields[4], &DAY_OF_WEEK)?;
        // 7 is Sunday too.
        if days_of_week & (1 << 7) != 0 {
            days_of_week = (days_of_week | 1) & !(1 << 7);
        }
        Ok(Cron {
            minutes,
            hours,
            days_of_month,
            months,
            days_of_week: days_of_week as u8,
            dom_star: fields[2].starts_with('*'),
            dow_star: fields[4].starts_with('*'),
        })
    }

    /// Whether the expression fires on that date (at one of [`Cron::times`]).
    pub fn matches_date(&self, date: Date) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The wall times of a matching date, earliest first.
    pub fn times(&self) -> impl Iterator<Item = Time> + '_ {
        (0..24i8)
            .filter(|h| self.hours & (1 << h) != 0)
            .flat_map(move |h| {
                (0..60i8)
                    .filter(|m| self.minutes & (1 << m) != 0)
                    .map(move |m| Time::constant(h, m, 0, 0))
            })
    }

    /// More than one run a day: occurrences are then keyed by date and time.
    pub fn fires_several_times_a_day(&self) -> bool {
        self.hours.count_ones() * self.minutes.count_ones() > 1
    }

    /// False for expressions that name no existing day (`0 9 30 feb *`).
    pub fn can_fire(&self) -> bool {
        if self.dom_star || !self.dow_star {
            // A weekday counts, and every month has every weekday.
            return true;
        }
        // Only the day of the month counts: one of them must exist in one of the months.
        const LONGEST: [u32; 13] = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        (1..=12).any(|m| {
            self.months & (1 << m) != 0
                && (1..=LONGEST[m]).any(|d| self.days_of_month & (1 << d) != 0)
        })
    }
}

fn parse_field(text: &str, field: &Field) -> Result<u64, String> {
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!(
                "the {} field `{text}` has an empty item",
                field.name
            ));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step = number(step).filter(|s| *s >= 1).ok_or_else(|| {
                    format!(
                        "the step `{step}` in the {} field must be a number ≥ 1",
                        field.name
                    )
                })?;
                (range, Some(step))
            }
            None => (item, None),
        };
        let (low, high) = if range == "*" {
            (field.min, field.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let low = value(a, field, false)?;
            let high = value(b, field, true)?;
            if low > high {
                return Err(format!(
                    "the range `{range}` in the {} field goes backwards",
                    field.name
                ));
            }
            (low, high)
        } else {
            let low = value(range, field, false)?;
            // `5/15` means from 5 to the end, every 15, as in Vixie cron and cronie.
            (low, if step.is_some() { field.max } else { low })
        };
        let step = step.unwrap_or(1);
        let mut v = low;
        while v <= high {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A number or a name. `sun` ending a range is 7, so that `mon-sun` is the whole week.
fn value(text: &str, field: &Field, range_end: bool) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    let v = match field.names.iter().position(|n| *n == lower) {
        Some(i) if range_end && field.name == DAY_OF_WEEK.name && i == 0 => 7,
        Some(i) => i as u32 + field.first_name_value,
        None => number(text).ok_or_else(|| {
            let names = if field.names.is_empty() {
                String::new()
            } else {
                format!(
                    " or a name ({} … {})",
                    field.names[0],
                    field.names[field.names.len() - 1]
                )
            };
            format!(
                "`{text}` in the {} field is not a number{names}",
                field.name
            )
        })?,
    };
    if v < field.min || v > field.max {
        return Err(format!(
            "`{text}` is out of range for the {} field ({}-{})",
            field.name, field.min, field.max
        ));
    }
    Ok(v)
}

// ---- selection -------------------------------------------------------------------------------

/// One message a run wants: to a patient, about these appointments (missed ones).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selected {
    pub patient: String,
    pub appointments: Vec<String>,
}

/// Why a patient the task's criteria matched is left out by one of its exclusions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// `exclude_patients_with_later_appointment`: the patient has an appointment to come.
    LaterAppointment,
    /// `exclude_patients_seen_since`: the patient came to the practice after the missed one.
    SeenSince,
}

impl Exclusion {
    pub fn as_str(self) -> &'static str {
        match self {
            Exclusion::LaterAppointment => "later_appointment",
            Exclusion::SeenSince => "seen_since",
        }
    }

    /// The explanation a practice manager reads, in French.
    pub fn french(self) -> &'static str {
        match self {
            Exclusion::LaterAppointment => "le patient a déjà un prochain rendez-vous",
            Exclusion::SeenSince => "le patient est venu au cabinet depuis",
        }
    }
}

/// A matched patient left out, with the appointments that matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excluded {
    pub patient: String,
    pub appointments: Vec<String>,
    pub reason: Exclusion,
}

/// What a run selects: the messages it wants, and the matched patients its exclusions leave
/// out (so that a run can say how many it matched and why it skipped some).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub selected: Vec<Selected>,
    pub excluded: Vec<Excluded>,
}

impl Selection {
    /// Every patient the criteria matched, selected or excluded.
    pub fn matched(&self) -> usize {
        self.selected.len() + self.excluded.len()
    }
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
    select_explained(task, tz, run_date, run_at, patients, history).selected
}

/// [`select`], with the patients the exclusions leave out and why.
pub fn select_explained(
    task: &TaskDef,
    tz: &TimeZone,
    run_date: Date,
    run_at: Timestamp,
    patients: &[Patient],
    history: &[Appointment],
) -> Selection {
    let practitioner_ok = |a: &Appointment| {
        task.practitioners
            .as_ref()
            .is_none_or(|list| list.contains(&a.practitioner))
    };
    let date_of = |t: Timestamp| t.to_zoned(tz.clone()).date();
    // An appointment to come, booked and not cancelled.
    let has_later = |patient: &str, after: Timestamp| {
        history
            .iter()
            .any(|o| o.patient == patient && o.is_active() && o.start > after && o.start > run_at)
    };
    let mut out = Selection::default();
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
                let seen = history.iter().any(|o| {
                    o.patient == appt.patient
                        && o.start > appt.start
                        && matches!(o.status, AppointmentStatus::Attended { .. })
                });
                let exclusion = if task.exclude_patients_with_later_appointment
                    && has_later(&appt.patient, appt.start)
                {
                    Some(Exclusion::LaterAppointment)
                } else if task.exclude_patients_seen_since && seen {
                    Some(Exclusion::SeenSince)
                } else {
                    None
                };
                match exclusion {
                    Some(reason) => {
                        add_excluded(&mut out.excluded, &appt.patient, &appt.id, reason)
                    }
                    None => match out.selected.iter_mut().find(|s| s.patient == appt.patient) {
                        Some(s) => s.appointments.push(appt.id.clone()),
                        None => out.selected.push(Selected {
                            patient: appt.patient.clone(),
                            appointments: vec![appt.id.clone()],
                        }),
                    },
                }
            }
            // A patient with one missed appointment kept and another excluded gets the message
            // about the one kept: they are selected, not excluded.
            let selected = &out.selected;
            out.excluded
                .retain(|e| !selected.iter().any(|s| s.patient == e.patient));
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
                if !(hit && with_practitioner) {
                    continue;
                }
                if task.exclude_patients_with_later_appointment && has_later(&p.id, run_at) {
                    out.excluded.push(Excluded {
                        patient: p.id.clone(),
                        appointments: Vec::new(),
                        reason: Exclusion::LaterAppointment,
                    });
                } else {
                    out.selected.push(Selected {
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
                // "Nothing booked" is part of what a recall is, not an exclusion.
                let booked = mine.iter().any(|a| a.is_active() && a.start > run_at);
                if let Some(last) = last_seen
                    && last < limit
                    && !booked
                {
                    out.selected.push(Selected {
                        patient: p.id.clone(),
                        appointments: Vec::new(),
                    });
                }
            }
        }
    }
    out.selected.sort_by(|a, b| a.patient.cmp(&b.patient));
    out.excluded.sort_by(|a, b| a.patient.cmp(&b.patient));
    out
}

fn add_excluded(list: &mut Vec<Excluded>, patient: &str, appointment: &str, reason: Exclusion) {
    match list.iter_mut().find(|e| e.patient == patient) {
        Some(e) => e.appointments.push(appointment.to_string()),
        None => list.push(Excluded {
            patient: patient.to_string(),
            appointments: vec![appointment.to_string()],
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;
    use crate::facts::Source;

    fn paris() -> TimeZone {
        TimeZone::get("Europe/Paris").unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// The local rendering of an instant, to compare with what a practice reads.
    fn wall(t: Timestamp) -> String {
        t.to_zoned(paris())
            .strftime("%Y-%m-%dT%H:%M%:z")
            .to_string()
    }

    fn daily(time: &str) -> TaskDef {
        TaskDef {
            id: "t1".into(),
            label: "Relance".into(),
            task_type: TaskType::Birthdays,
            first_date: date(2026, 1, 1),
            every: Some(Every::Day),
            cron: None,
            days: Vec::new(),
            time: Some(time.parse().unwrap()),
            range: None,
            practitioners: None,
            channel: Channel::Email,
            template: None,
            exclude_patients_with_later_appointment: false,
            exclude_patients_seen_since: false,
            recall_months: None,
            active: true,
        }
    }

    fn with_cron(expression: &str) -> TaskDef {
        TaskDef {
            every: None,
            time: None,
            cron: Some(expression.into()),
            ..daily("08:00")
        }
    }

    fn field_of(def: &TaskDef) -> &'static str {
        def.check()
            .expect_err("the definition must be refused")
            .field
    }

    fn times(expression: &str) -> Vec<String> {
        Cron::parse(expression)
            .unwrap()
            .times()
            .map(|t| t.strftime("%H:%M").to_string())
            .collect()
    }

    /// Every occurrence from `from` (exclusive) until `until`, as wall times.
    fn occurrences(def: &TaskDef, from: &str, until: &str) -> Vec<(String, String)> {
        let until = at(until);
        let mut after = at(from);
        let mut out = Vec::new();
        while let Some(o) = def.next_after(&paris(), after) {
            if o.at >= until {
                break;
            }
            out.push((o.key.clone(), wall(o.at)));
            after = o.at;
        }
        out
    }

    // ---- cron ----

    #[test]
    fn cron_reads_lists_ranges_steps_and_stars() {
        assert_eq!(
            times("0,30 8-9 * * *"),
            ["08:00", "08:30", "09:00", "09:30"]
        );
        assert_eq!(times("*/20 7 * * *"), ["07:00", "07:20", "07:40"]);
        assert_eq!(times("10-50/20 7 * * *"), ["07:10", "07:30", "07:50"]);
        // `5/20` is `5-59/20`, as in cronie.
        assert_eq!(times("5/20 7 * * *"), ["07:05", "07:25", "07:45"]);
        assert_eq!(times("0 */8 * * *"), ["00:00", "08:00", "16:00"]);
        assert!(
            Cron::parse("0 9 * * *")
                .unwrap()
                .matches_date(date(2026, 2, 28))
        );
    }

    #[test]
    fn cron_reads_month_and_day_names_in_any_case() {
        let cron = Cron::parse("0 8 * jan,JUL *").unwrap();
        assert!(cron.matches_date(date(2026, 1, 15)));
        assert!(cron.matches_date(date(2026, 7, 1)));
        assert!(!cron.matches_date(date(2026, 3, 2)));
        let weekdays = Cron::parse("0 8 * * Mon-FRI").unwrap();
        // 2026-03-02 is a Monday.
        let week: Vec<bool> = (2..=8)
            .map(|d| weekdays.matches_date(date(2026, 3, d)))
            .collect();
        assert_eq!(week, [true, true, true, true, true, false, false]);
    }

    #[test]
    fn cron_sunday_is_0_7_or_sun_and_mon_sun_is_the_whole_week() {
        let sunday = date(2026, 3, 1);
        for expression in ["0 9 * * 0", "0 9 * * 7", "0 9 * * sun", "0 9 * * sat-sun"] {
            let cron = Cron::parse(expression).unwrap();
            assert!(cron.matches_date(sunday), "{expression}");
            assert!(!cron.matches_date(date(2026, 3, 2)), "{expression}");
        }
        let all = Cron::parse("0 9 * * mon-sun").unwrap();
        assert!((1..=7).all(|d| all.matches_date(date(2026, 3, d))));
    }

    #[test]
    fn cron_day_fields_match_either_when_both_are_restricted_as_in_vixie_cron() {
        // The 1st of the month and every Monday.
        let either = Cron::parse("0 9 1 * mon").unwrap();
        assert!(either.matches_date(date(2026, 3, 1)), "the 1st, a Sunday");
        assert!(either.matches_date(date(2026, 3, 2)), "a Monday");
        assert!(!either.matches_date(date(2026, 3, 3)));
        // Only one field restricted: only that one counts.
        let first = Cron::parse("0 9 1 * *").unwrap();
        assert!(first.matches_date(date(2026, 3, 1)));
        assert!(!first.matches_date(date(2026, 3, 2)));
        let mondays = Cron::parse("0 9 * * mon").unwrap();
        assert!(!mondays.matches_date(date(2026, 3, 1)));
        assert!(mondays.matches_date(date(2026, 3, 2)));
        // A field starting with `*` counts as unrestricted even with a step (Vixie's rule):
        // both must then match — odd days that are Mondays.
        let odd_mondays = Cron::parse("0 9 */2 * mon").unwrap();
        assert!(
            !odd_mondays.matches_date(date(2026, 3, 2)),
            "Monday the 2nd"
        );
        assert!(odd_mondays.matches_date(date(2026, 3, 9)), "Monday the 9th");
        assert!(
            !odd_mondays.matches_date(date(2026, 3, 3)),
            "Tuesday the 3rd"
        );
    }

    #[test]
    fn malformed_cron_expressions_are_refused_with_the_field_and_reason() {
        let cases = [
            ("", "expected 5 fields"),
            ("0 9 * *", "found 4"),
            ("0 9 * * * *", "found 6"),
            ("60 9 * * *", "out of range for the minute field (0-59)"),
            ("0 24 * * *", "out of range for the hour field (0-23)"),
            (
                "0 9 0 * *",
                "out of range for the day-of-month field (1-31)",
            ),
            ("0 9 * 13 *", "out of range for the month field (1-12)"),
            ("0 9 * * 8", "out of range for the day-of-week field (0-7)"),
            (
                "*/0 9 * * *",
                "the step `0` in the minute field must be a number ≥ 1",
            ),
            (
                "0 9-7 * * *",
                "the range `9-7` in the hour field goes backwards",
            ),
            (
                "0 9 * * funday",
                "`funday` in the day-of-week field is not a number or a name (sun … sat)",
            ),
            ("0 9 1,,2 * *", "has an empty item"),
            ("0 +9 * * *", "`+9` in the hour field is not a number"),
            ("a b c d e", "`a` in the minute field is not a number"),
        ];
        for (expression, want) in cases {
            let error = Cron::parse(expression).expect_err(expression);
            assert!(error.contains(want), "{expression}: {error}");
            let def = with_cron(expression);
            assert_eq!(def.check().unwrap_err().field, "cron", "{expression}");
        }
    }

    #[test]
    fn a_cron_firing_more_than_hourly_is_refused() {
        with_cron("0 * * * *").check().unwrap();
        with_cron("*/30 8-18 * * mon-fri").check().unwrap();
        let error = with_cron("*/5 * * * *").check().unwrap_err();
        assert_eq!(error.field, "cron");
        assert!(error.reason.contains("fires 288 times"), "{error}");
    }

    #[test]
    fn a_cron_that_names_no_existing_day_is_refused_but_29_february_is_not() {
        for expression in ["0 9 30 feb *", "0 9 31 apr,jun,sep,nov *"] {
            let error = with_cron(expression).check().unwrap_err();
            assert_eq!(error.field, "cron");
            assert!(error.reason.contains("never fires"), "{error}");
        }
        let leap = with_cron("0 9 29 feb *");
        leap.check().unwrap();
        let next = leap
            .next_after(&paris(), at("2026-03-01T00:00:00Z"))
            .unwrap();
        assert_eq!(next.date, date(2028, 2, 29));
        // With a weekday too, the days match either: it fires every Monday of February.
        with_cron("0 9 30 feb mon").check().unwrap();
    }

    #[test]
    fn a_cron_firing_several_times_a_day_keys_occurrences_by_date_and_time() {
        let twice = with_cron("0 9,17 * * mon-fri");
        assert_eq!(
            occurrences(
                &twice,
                "2026-03-02T00:00:00+01:00",
                "2026-03-03T00:00:00+01:00"
            ),
            [
                (
                    "2026-03-02T09:00".to_string(),
                    "2026-03-02T09:00+01:00".to_string()
                ),
                (
                    "2026-03-02T17:00".to_string(),
                    "2026-03-02T17:00+01:00".to_string()
                ),
            ]
        );
        let once = with_cron("30 8 * * mon-fri");
        assert_eq!(
            occurrences(
                &once,
                "2026-03-06T00:00:00+01:00",
                "2026-03-10T00:00:00+01:00"
            ),
            [
                (
                    "2026-03-06".to_string(),
                    "2026-03-06T08:30+01:00".to_string()
                ),
                (
                    "2026-03-09".to_string(),
                    "2026-03-09T08:30+01:00".to_string()
                ),
            ],
            "once a day: keyed by the date alone, and not at the weekend"
        );
    }

    // ---- periodicity across DST switches and month ends ----

    #[test]
    fn a_0230_run_on_the_spring_forward_day_runs_at_0330() {
        // 2026-03-29 in Europe/Paris: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
        let def = daily("02:30");
        assert_eq!(
            occurrences(
                &def,
                "2026-03-28T00:00:00+01:00",
                "2026-03-31T00:00:00+02:00"
            ),
            [
                (
                    "2026-03-28".to_string(),
                    "2026-03-28T02:30+01:00".to_string()
                ),
                (
                    "2026-03-29".to_string(),
                    "2026-03-29T03:30+02:00".to_string()
                ),
                (
                    "2026-03-30".to_string(),
                    "2026-03-30T02:30+02:00".to_string()
                ),
            ]
        );
        let cron = with_cron("30 2 * * *");
        assert_eq!(
            occurrences(
                &cron,
                "2026-03-29T00:00:00+01:00",
                "2026-03-30T00:00:00+02:00"
            ),
            [(
                "2026-03-29".to_string(),
                "2026-03-29T03:30+02:00".to_string()
            )]
        );
    }

    #[test]
    fn a_0230_run_on_the_autumn_day_runs_once_at_its_first_instance() {
        // 2026-10-25 in Europe/Paris: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
        let def = daily("02:30");
        assert_eq!(
            occurrences(
                &def,
                "2026-10-24T12:00:00+02:00",
                "2026-10-26T12:00:00+01:00"
            ),
            [
                (
                    "2026-10-25".to_string(),
                    "2026-10-25T02:30+02:00".to_string()
                ),
                (
                    "2026-10-26".to_string(),
                    "2026-10-26T02:30+01:00".to_string()
                ),
            ]
        );
        // After the second 02:30, the latest occurrence is still the first one: one run.
        let latest = def
            .latest_due(&paris(), at("2026-10-25T02:45:00+01:00"))
            .unwrap();
        assert_eq!(latest.key, "2026-10-25");
        assert_eq!(wall(latest.at), "2026-10-25T02:30+02:00");
    }

    #[test]
    fn a_half_hourly_cron_skips_the_missing_hour_and_does_not_repeat_the_doubled_one() {
        let def = with_cron("0,30 1-3 * * *");
        let spring: Vec<String> = occurrences(
            &def,
            "2026-03-29T00:00:00+01:00",
            "2026-03-30T00:00:00+02:00",
        )
        .into_iter()
        .map(|(_, w)| w)
        .collect();
        // 02:00 and 02:30 land on 03:00 and 03:30, which run once each.
        assert_eq!(
            spring,
            [
                "2026-03-29T01:00+01:00",
                "2026-03-29T01:30+01:00",
                "2026-03-29T03:00+02:00",
                "2026-03-29T03:30+02:00",
            ]
        );
        let autumn: Vec<String> = occurrences(
            &def,
            "2026-10-25T00:00:00+02:00",
            "2026-10-26T00:00:00+01:00",
        )
        .into_iter()
        .map(|(_, w)| w)
        .collect();
        assert_eq!(
            autumn,
            [
                "2026-10-25T01:00+02:00",
                "2026-10-25T01:30+02:00",
                "2026-10-25T02:00+02:00",
                "2026-10-25T02:30+02:00",
                "2026-10-25T03:00+01:00",
                "2026-10-25T03:30+01:00",
            ]
        );
    }

    #[test]
    fn monthly_on_the_31st_runs_on_the_last_day_of_shorter_months() {
        let def = TaskDef {
            every: Some(Every::Month),
            first_date: date(2026, 1, 31),
            ..daily("10:00")
        };
        let dates: Vec<String> = occurrences(
            &def,
            "2026-01-01T00:00:00+01:00",
            "2026-07-01T00:00:00+02:00",
        )
        .into_iter()
        .map(|(key, _)| key)
        .collect();
        assert_eq!(
            dates,
            [
                "2026-01-31",
                "2026-02-28",
                "2026-03-31",
                "2026-04-30",
                "2026-05-31",
                "2026-06-30"
            ]
        );
        assert!(
            def.runs_on(date(2028, 2, 29)),
            "a leap February ends on the 29th"
        );
        assert!(!def.runs_on(date(2028, 2, 28)));
        let on_the_30th = TaskDef {
            first_date: date(2026, 1, 30),
            ..def.clone()
        };
        assert!(on_the_30th.runs_on(date(2026, 2, 28)));
        assert!(on_the_30th.runs_on(date(2026, 3, 30)));
        assert!(!on_the_30th.runs_on(date(2026, 3, 31)));
    }

    #[test]
    fn a_weekly_task_runs_on_its_days_only_and_never_before_its_first_date() {
        let def = TaskDef {
            every: Some(Every::Week),
            days: vec!["mon".into(), "thu".into()],
            first_date: date(2026, 3, 3),
            ..daily("09:00")
        };
        let dates: Vec<String> = occurrences(
            &def,
            "2026-02-20T00:00:00+01:00",
            "2026-03-13T00:00:00+01:00",
        )
        .into_iter()
        .map(|(key, _)| key)
        .collect();
        assert_eq!(dates, ["2026-03-05", "2026-03-09", "2026-03-12"]);
        assert_eq!(
            def.latest_due(&paris(), at("2026-03-04T12:00:00+01:00")),
            None
        );
    }

    #[test]
    fn after_three_days_down_the_latest_due_occurrence_is_the_last_one_only() {
        let def = daily("08:00");
        let latest = def
            .latest_due(&paris(), at("2026-03-05T10:00:00+01:00"))
            .unwrap();
        assert_eq!(latest.key, "2026-03-05");
        let before = def
            .latest_due(&paris(), at("2026-03-05T07:59:00+01:00"))
            .unwrap();
        assert_eq!(before.key, "2026-03-04");
    }

    // ---- definitions ----

    #[test]
    fn the_scenarios_md_example_reads_and_writes_back_with_the_same_names() {
        let source = r#"
            id = "t1"
            label = "Relance des RDV manqués"
            type = "missed_appointments"
            first_date = "2026-03-02"
            every = "day"
            time = "08:00"
            range = [-1, -1]
            practitioners = ["dr1"]
            channel = "email"
            exclude_patients_with_later_appointment = false
            exclude_patients_seen_since = true
            active = true
        "#;
        let def: TaskDef = toml::from_str(source).unwrap();
        def.check().unwrap();
        let json = serde_json::to_value(&def).unwrap();
        assert_eq!(json["time"], "08:00");
        assert_eq!(json["every"], "day");
        assert_eq!(json["type"], "missed_appointments");
        assert!(json.get("cron").is_none());
        let back: TaskDef = serde_json::from_value(json).unwrap();
        assert_eq!(back, def);
    }

    #[test]
    fn invalid_combinations_are_refused_naming_the_field() {
        let base = daily("08:00");
        let missed = TaskDef {
            task_type: TaskType::MissedAppointments,
            range: Some([-1, -1]),
            ..base.clone()
        };
        missed.check().unwrap();
        let cases: Vec<(TaskDef, &str)> = vec![
            (
                TaskDef {
                    cron: Some("0 8 * * *".into()),
                    ..base.clone()
                },
                "cron",
            ),
            (
                TaskDef {
                    every: None,
                    ..base.clone()
                },
                "every",
            ),
            (
                TaskDef {
                    time: None,
                    ..base.clone()
                },
                "time",
            ),
            (
                TaskDef {
                    every: Some(Every::Week),
                    ..base.clone()
                },
                "days",
            ),
            (
                TaskDef {
                    every: Some(Every::Week),
                    days: vec!["lundi".into()],
                    ..base.clone()
                },
                "days",
            ),
            (
                TaskDef {
                    days: vec!["mon".into()],
                    ..base.clone()
                },
                "days",
            ),
            (
                TaskDef {
                    time: Some(Time::midnight()),
                    ..with_cron("0 8 * * *")
                },
                "time",
            ),
            (
                TaskDef {
                    days: vec!["mon".into()],
                    ..with_cron("0 8 * * *")
                },
                "days",
            ),
            (
                TaskDef {
                    channel: Channel::Postal,
                    ..base.clone()
                },
                "channel",
            ),
            (
                TaskDef {
                    range: None,
                    ..missed.clone()
                },
                "range",
            ),
            (
                TaskDef {
                    range: Some([-1, -3]),
                    ..missed.clone()
                },
                "range",
            ),
            (
                TaskDef {
                    range: Some([-1, 2]),
                    ..missed.clone()
                },
                "range",
            ),
            (
                TaskDef {
                    range: Some([-400, -1]),
                    ..missed.clone()
                },
                "range",
            ),
            (
                TaskDef {
                    range: Some([-1, -1]),
                    ..base.clone()
                },
                "range",
            ),
            (
                TaskDef {
                    task_type: TaskType::Recall,
                    ..base.clone()
                },
                "recall_months",
            ),
            (
                TaskDef {
                    task_type: TaskType::Recall,
                    recall_months: Some(0),
                    ..base.clone()
                },
                "recall_months",
            ),
            (
                TaskDef {
                    recall_months: Some(6),
                    ..base.clone()
                },
                "recall_months",
            ),
            (
                TaskDef {
                    exclude_patients_seen_since: true,
                    ..base.clone()
                },
                "exclude_patients_seen_since",
            ),
            (
                TaskDef {
                    practitioners: Some(Vec::new()),
                    ..base.clone()
                },
                "practitioners",
            ),
            (
                TaskDef {
                    id: " ".into(),
                    ..base.clone()
                },
                "id",
            ),
        ];
        for (def, field) in cases {
            assert_eq!(field_of(&def), field, "{def:?}");
        }
    }

    // ---- selection ----

    fn appointment(id: &str, patient: &str, start: &str, status: AppointmentStatus) -> Appointment {
        Appointment {
            id: id.into(),
            patient: patient.into(),
            practitioner: "dr1".into(),
            motive: None,
            start: at(start),
            duration_minutes: 30,
            location: None,
            source: Source::Staff,
            booked_at: at("2026-02-01T10:00:00+01:00"),
            status,
            moves: Vec::new(),
            version: 1,
        }
    }

    fn no_show(id: &str, patient: &str, start: &str) -> Appointment {
        let status = AppointmentStatus::NoShow {
            at: at(start) + jiff::SignedDuration::from_mins(45),
        };
        appointment(id, patient, start, status)
    }

    fn attended(id: &str, patient: &str, start: &str) -> Appointment {
        let status = AppointmentStatus::Attended {
            at: at(start) + jiff::SignedDuration::from_mins(30),
        };
        appointment(id, patient, start, status)
    }

    #[test]
    fn exclusions_leave_out_patients_with_a_later_appointment_or_seen_since_and_say_why() {
        let history = vec![
            no_show("a1", "p1", "2026-03-02T09:00:00+01:00"),
            no_show("a2", "p2", "2026-03-02T10:00:00+01:00"),
            appointment(
                "a3",
                "p2",
                "2026-03-10T10:00:00+01:00",
                AppointmentStatus::Booked,
            ),
            no_show("a4", "p3", "2026-03-02T11:00:00+01:00"),
            attended("a5", "p3", "2026-03-02T16:00:00+01:00"),
            // Out of the range (two days before).
            no_show("a6", "p4", "2026-02-28T11:00:00+01:00"),
        ];
        let task = TaskDef {
            task_type: TaskType::MissedAppointments,
            range: Some([-1, -1]),
            exclude_patients_with_later_appointment: true,
            exclude_patients_seen_since: true,
            ..daily("08:00")
        };
        let run_at = at("2026-03-03T08:00:00+01:00");
        let selection = select_explained(&task, &paris(), date(2026, 3, 3), run_at, &[], &history);
        assert_eq!(
            selection.selected,
            [Selected {
                patient: "p1".into(),
                appointments: vec!["a1".into()]
            }]
        );
        assert_eq!(
            selection.excluded,
            [
                Excluded {
                    patient: "p2".into(),
                    appointments: vec!["a2".into()],
                    reason: Exclusion::LaterAppointment
                },
                Excluded {
                    patient: "p3".into(),
                    appointments: vec!["a4".into()],
                    reason: Exclusion::SeenSince
                },
            ]
        );
        assert_eq!(selection.matched(), 3);
        // Without the exclusions, all three get the message.
        let plain = TaskDef {
            exclude_patients_with_later_appointment: false,
            exclude_patients_seen_since: false,
            ..task
        };
        let all = select(&plain, &paris(), date(2026, 3, 3), run_at, &[], &history);
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn a_recall_selects_patients_last_seen_more_than_n_months_ago_with_nothing_booked() {
        let patients: Vec<Patient> = ["p1", "p2", "p3", "p4"]
            .into_iter()
            .map(|id| Patient {
                id: id.into(),
                ..Patient::default()
            })
            .collect();
        let history = vec![
            attended("a1", "p1", "2025-08-20T09:00:00+02:00"),
            attended("a2", "p2", "2025-08-20T09:00:00+02:00"),
            appointment(
                "a3",
                "p2",
                "2026-04-01T09:00:00+02:00",
                AppointmentStatus::Booked,
            ),
            attended("a4", "p3", "2025-12-01T09:00:00+01:00"),
            // p4 never came.
            no_show("a5", "p4", "2025-06-01T09:00:00+02:00"),
        ];
        let task = TaskDef {
            task_type: TaskType::Recall,
            recall_months: Some(6),
            ..daily("08:00")
        };
        let selected = select(
            &task,
            &paris(),
            date(2026, 3, 1),
            at("2026-03-01T08:00:00+01:00"),
            &patients,
            &history,
        );
        let ids: Vec<&str> = selected.iter().map(|s| s.patient.as_str()).collect();
        assert_eq!(ids, ["p1"]);
    }

    // ---- properties ----

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// One cron field item: `*`, `*/s`, `n`, `a-b`, `a-b/s`.
        fn item(min: u32, max: u32) -> impl Strategy<Value = String> {
            (min..=max, min..=max, 1u32..=10, 0u8..5).prop_map(|(a, b, step, shape)| {
                let (low, high) = (a.min(b), a.max(b));
                match shape {
                    0 => "*".to_string(),
                    1 => format!("*/{step}"),
                    2 => low.to_string(),
                    3 => format!("{low}-{high}"),
                    _ => format!("{low}-{high}/{step}"),
                }
            })
        }

        fn field(min: u32, max: u32) -> impl Strategy<Value = String> {
            prop::collection::vec(item(min, max), 1..3).prop_map(|items| items.join(","))
        }

        /// Expressions a task accepts more often: one or two minutes an hour.
        fn task_expression() -> impl Strategy<Value = String> {
            (
                prop::collection::vec(0u32..60, 1..3),
                field(0, 23),
                field(1, 31),
                field(1, 12),
                field(0, 7),
            )
                .prop_map(|(minutes, h, dom, mon, dow)| {
                    let m: Vec<String> = minutes.iter().map(u32::to_string).collect();
                    format!("{} {h} {dom} {mon} {dow}", m.join(","))
                })
        }

        fn expression() -> impl Strategy<Value = String> {
            (
                field(0, 59),
                field(0, 23),
                field(1, 31),
                field(1, 12),
                field(0, 7),
            )
                .prop_map(|(m, h, dom, mon, dow)| format!("{m} {h} {dom} {mon} {dow}"))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

            #[test]
            fn any_text_parses_or_is_refused_without_panicking(text in "[0-9a-z*/,\\- ]{0,30}") {
                let _ = Cron::parse(&text);
            }

            #[test]
            fn well_formed_expressions_parse_and_their_times_are_sorted_and_distinct(e in expression()) {
                let cron = Cron::parse(&e).unwrap();
                let times: Vec<Time> = cron.times().collect();
                prop_assert!(!times.is_empty());
                prop_assert!(times.windows(2).all(|w| w[0] < w[1]));
                prop_assert_eq!(cron.fires_several_times_a_day(), times.len() > 1);
            }

        }

        proptest! {
            // Each case walks up to a year of dates in a debug build: fewer cases.
            #![proptest_config(ProptestConfig::with_cases(48))]

            #[test]
            fn occurrences_follow_each_other_with_distinct_keys_and_latest_due_agrees(
                e in task_expression(),
                start_hours in 0i64..(24 * 400),
            ) {
                let def = with_cron(&e);
                prop_assume!(def.check().is_ok());
                let tz = paris();
                let mut after = at("2026-01-01T00:00:00Z") + jiff::SignedDuration::from_hours(start_hours);
                let mut keys: Vec<String> = Vec::new();
                for _ in 0..12 {
                    let Some(next) = def.next_after(&tz, after) else { break };
                    prop_assert!(next.at > after);
                    prop_assert!(def.runs_on(next.date));
                    prop_assert!(!keys.contains(&next.key), "{} twice", next.key);
                    // Just at the occurrence, it is the latest due one.
                    let latest = def.latest_due(&tz, next.at);
                    prop_assert_eq!(latest.as_ref(), Some(&next));
                    keys.push(next.key.clone());
                    after = next.at;
                }
            }
        }
    }
}
