//! The variables a template sees (see the table in the module's documentation), and the
//! French and English dates and times they show.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use minijinja::Value;
use serde::Serialize;

use super::Locale;
use crate::notification::{Channel, Kind};
use crate::render::RenderInput;

const WEEKDAYS_FR: [&str; 7] = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
];
/// The months in French, January first (dates in texts, letters, notices).
pub const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const WEEKDAYS_EN: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `mercredi 11 mars 2026` / `Wednesday 11 March 2026`, in the practice's time zone.
pub fn date_text(at: Timestamp, tz: &TimeZone, locale: Locale) -> String {
    day_text(at.to_zoned(tz.clone()).date(), locale)
}

/// `mercredi 11 mars 2026` / `Wednesday 11 March 2026` for a calendar day.
pub fn day_text(date: jiff::civil::Date, locale: Locale) -> String {
    let (weekdays, months) = match locale {
        Locale::Fr => (WEEKDAYS_FR, MONTHS_FR),
        Locale::En => (WEEKDAYS_EN, MONTHS_EN),
    };
    format!(
        "{} {} {} {}",
        weekdays[date.weekday().to_monday_zero_offset() as usize],
        date.day(),
        months[(date.month() - 1) as usize],
        date.year()
    )
}

/// `09h30` / `09:30`, in the practice's time zone.
pub fn time_text(at: Timestamp, tz: &TimeZone, locale: Locale) -> String {
    let z = at.to_zoned(tz.clone());
    match locale {
        Locale::Fr => format!("{:02}h{:02}", z.hour(), z.minute()),
        Locale::En => format!("{:02}:{:02}", z.hour(), z.minute()),
    }
}

#[derive(Serialize)]
pub(super) struct Context {
    pub(super) locale: &'static str,
    pub(super) practice: NameCtx,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) patient: Option<PatientCtx>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) practitioner: Option<NameCtx>,
    pub(super) appointments: Vec<AppointmentCtx>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) document: Option<DocumentCtx>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) task: Option<TaskCtx>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) links: Option<crate::render::AnswerLinks>,
}

#[derive(Serialize)]
pub(super) struct NameCtx {
    pub(super) name: String,
}

#[derive(Serialize)]
pub(super) struct PatientCtx {
    pub(super) first_name: String,
    pub(super) last_name: String,
    pub(super) name: String,
}

#[derive(Serialize)]
pub(super) struct AppointmentCtx {
    pub(super) date_text: String,
    pub(super) time_text: String,
    pub(super) start: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) practitioner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) motive: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) instructions: Option<String>,
}

#[derive(Serialize)]
pub(super) struct DocumentCtx {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) link: Option<String>,
}

#[derive(Serialize)]
pub(super) struct TaskCtx {
    pub(super) label: String,
}

/// Which messages carry the patient's links to confirm or cancel (issue 16): confirmation and
/// reminder emails (two buttons) and SMS reminders (one short link).
pub fn carries_answer_links(kind: Kind, channel: Channel) -> bool {
    matches!(
        (kind, channel),
        (Kind::Confirmation | Kind::Reminder, Channel::Email) | (Kind::Reminder, Channel::Sms)
    )
}

pub(super) fn is_alert(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::PractitionerBooking | Kind::PractitionerCancellation | Kind::PractitionerMove
    )
}

pub(super) fn context(input: &RenderInput<'_>, locale: Locale) -> Value {
    // SMS and push are read on lock screens and over shoulders (rule 9).
    let short = matches!(input.channel, Channel::Sms | Channel::Push);
    let appointments = input
        .appointments
        .iter()
        .map(|v| {
            let a = v.appointment;
            let z = a.start.to_zoned(input.tz.clone());
            AppointmentCtx {
                date_text: date_text(a.start, input.tz, locale),
                time_text: time_text(a.start, input.tz, locale),
                start: z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
                location: a.location.clone(),
                practitioner: v.practitioner.map(|p| p.name.clone()),
                motive: v
                    .motive
                    .filter(|_| input.show_motive || !short)
                    .map(|m| m.name.clone()),
                instructions: v
                    .motive
                    .filter(|_| !short)
                    .and_then(|m| m.instructions.clone()),
            }
        })
        .collect();
    let practitioner = input
        .practitioner
        .or_else(|| input.appointments.iter().find_map(|v| v.practitioner))
        .map(|p| NameCtx {
            name: p.name.clone(),
        });
    let patient = input
        .patient
        .filter(|_| !is_alert(input.kind))
        .map(|p| PatientCtx {
            first_name: p.first_name.clone(),
            last_name: p.last_name.clone(),
            name: p.display_name(),
        });
    let document =
        (input.kind == Kind::Document || input.document.is_some()).then(|| DocumentCtx {
            title: (!short).then(|| {
                input
                    .document
                    .map(|d| d.title.clone())
                    .unwrap_or_else(|| "document".into())
            }),
            link: input.document_link.clone(),
        });
    let task = (input.kind == Kind::Task || input.task_label.is_some()).then(|| TaskCtx {
        label: input
            .task_label
            .map(String::from)
            .unwrap_or_else(|| match locale {
                Locale::Fr => "Message du cabinet".into(),
                Locale::En => "A message from your practice".into(),
            }),
    });
    Value::from(minijinja::value::Serde(Context {
        locale: locale.as_str(),
        practice: NameCtx {
            name: input.practice_name.to_string(),
        },
        patient,
        practitioner,
        appointments,
        document,
        task,
        links: input.answer_links.clone(),
    }))
}
