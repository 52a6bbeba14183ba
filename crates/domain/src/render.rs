//! Messages rendered from the facts at the moment of sending (SPEC.md rule 3), through the
//! templates of [`crate::template`]: the built-in French and English ones, or a practice's own.
//!
//! SMS and push bodies carry only date, time, practitioner and place (rule 9): no motive unless
//! the practice enables it, never a diagnosis. Documents are never attached: the email carries a
//! link.

use jiff::{Timestamp, tz::TimeZone};

use serde::Serialize;

use crate::facts::{Appointment, Document, Motive, Patient, Practitioner};
use crate::notification::{Channel, Kind};
use crate::template::{self, Locale, TemplateSet};

/// One appointment as a message mentions it.
pub struct AppointmentView<'a> {
    pub appointment: &'a Appointment,
    pub practitioner: Option<&'a Practitioner>,
    pub motive: Option<&'a Motive>,
}

/// The URLs of a patient's appointment page (`/r/{token}`): the page itself (the one short link
/// of an SMS), and the page opened on its confirm or cancel form (the email's two buttons).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AnswerLinks {
    pub page: String,
    pub confirm: String,
    pub cancel: String,
}

impl AnswerLinks {
    /// The links of the page at `page` (`https://…/r/TOKEN`).
    pub fn for_page(page: String) -> AnswerLinks {
        AnswerLinks {
            confirm: format!("{page}?choix=confirmer"),
            cancel: format!("{page}?choix=annuler"),
            page,
        }
    }
}

pub struct RenderInput<'a> {
    pub practice_name: &'a str,
    pub tz: &'a TimeZone,
    pub kind: Kind,
    pub channel: Channel,
    pub patient: Option<&'a Patient>,
    /// Set when the recipient is a practitioner (alerts).
    pub practitioner: Option<&'a Practitioner>,
    pub appointments: Vec<AppointmentView<'a>>,
    pub document: Option<&'a Document>,
    pub document_link: Option<String>,
    /// The patient's links to confirm or cancel the appointment (issue 16), when the message
    /// carries them: reminders and confirmations about one appointment, if the practice has not
    /// switched them off.
    pub answer_links: Option<AnswerLinks>,
    pub task_label: Option<&'a str>,
    pub show_motive: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rendered {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub text: String,
    /// The email's HTML alternative.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// A practice template that failed at send time, replaced by the built-in one for this
    /// message: kept with the rendered content so the practice can see and fix it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub template_errors: Vec<String>,
}

/// `mercredi 11 mars 2026 à 09h30`, in the practice's time zone.
pub fn french_datetime(at: Timestamp, tz: &TimeZone) -> String {
    format!(
        "{} à {}",
        template::date_text(at, tz, Locale::Fr),
        template::time_text(at, tz, Locale::Fr)
    )
}

/// Renders with the built-in templates, in the patient's locale.
pub fn render(input: &RenderInput<'_>) -> Rendered {
    template::render_with(input, None)
}

/// Renders with a practice's own templates where it has them (see [`template::render_with`]).
pub fn render_with(input: &RenderInput<'_>, templates: Option<&TemplateSet>) -> Rendered {
    template::render_with(input, templates)
}
