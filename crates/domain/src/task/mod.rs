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

mod cron;
mod def;
mod select;

pub use cron::Cron;
pub use def::{Every, InvalidTask, Occurrence, TaskDef, TaskType, weekday};
pub use select::{Excluded, Exclusion, Selected, Selection, select, select_explained};

/// What the tests of the three parts share: the practice's zone, instants and definitions.
#[cfg(test)]
mod fixtures {
    use jiff::{Timestamp, civil::date, tz::TimeZone};

    use super::*;
    use crate::notification::Channel;

    pub(super) fn paris() -> TimeZone {
        TimeZone::get("Europe/Paris").unwrap()
    }

    pub(super) fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// The local rendering of an instant, to compare with what a practice reads.
    pub(super) fn wall(t: Timestamp) -> String {
        t.to_zoned(paris())
            .strftime("%Y-%m-%dT%H:%M%:z")
            .to_string()
    }

    pub(super) fn daily(time: &str) -> TaskDef {
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

    pub(super) fn with_cron(expression: &str) -> TaskDef {
        TaskDef {
            every: None,
            time: None,
            cron: Some(expression.into()),
            ..daily("08:00")
        }
    }

    pub(super) fn field_of(def: &TaskDef) -> &'static str {
        def.check()
            .expect_err("the definition must be refused")
            .field
    }

    /// Every occurrence from `from` (exclusive) until `until`, as wall times.
    pub(super) fn occurrences(def: &TaskDef, from: &str, until: &str) -> Vec<(String, String)> {
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
}
