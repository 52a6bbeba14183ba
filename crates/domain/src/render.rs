//! Default French message texts, rendered from the facts at the moment of sending (SPEC.md rule 3).
//!
//! SMS and push bodies carry only date, time, practitioner and place (rule 9): no motive unless
//! the practice enables it, never a diagnosis. Documents are never attached: the email carries a
//! link. Editable templates (minijinja) replace these defaults in the dispatch issue.

use jiff::{Timestamp, tz::TimeZone};
use serde::Serialize;

use crate::facts::{Appointment, Document, Motive, Patient, Practitioner};
use crate::notification::{Channel, Kind};

/// One appointment as a message mentions it.
pub struct AppointmentView<'a> {
    pub appointment: &'a Appointment,
    pub practitioner: Option<&'a Practitioner>,
    pub motive: Option<&'a Motive>,
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
    pub task_label: Option<&'a str>,
    pub show_motive: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rendered {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub text: String,
}

const WEEKDAYS: [&str; 7] = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
];
const MONTHS: [&str; 12] = [
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

/// `mercredi 11 mars 2026 à 09h30`, in the practice's time zone.
pub fn french_datetime(at: Timestamp, tz: &TimeZone) -> String {
    let z = at.to_zoned(tz.clone());
    format!(
        "{} {} {} {} à {:02}h{:02}",
        WEEKDAYS[z.weekday().to_monday_zero_offset() as usize],
        z.day(),
        MONTHS[(z.month() - 1) as usize],
        z.year(),
        z.hour(),
        z.minute()
    )
}

pub fn render(input: &RenderInput<'_>) -> Rendered {
    let short = matches!(input.channel, Channel::Sms | Channel::Push);
    let when: Vec<String> = input
        .appointments
        .iter()
        .map(|v| describe(v, input.tz, input.show_motive || !short))
        .collect();
    let list = when.join(if short { " ; " } else { "\n- " });
    let greeting = input
        .patient
        .map(|p| format!("Bonjour {},", p.display_name()))
        .unwrap_or_else(|| "Bonjour,".to_string());
    let practice = input.practice_name;
    let (subject, body) = match input.kind {
        Kind::Confirmation => (
            "Confirmation de votre rendez-vous",
            format!("Votre rendez-vous est confirmé : {list}."),
        ),
        Kind::Reminder => (
            "Rappel de votre rendez-vous",
            format!("Nous vous rappelons votre rendez-vous : {list}."),
        ),
        Kind::Moved => (
            "Votre rendez-vous a été déplacé",
            format!("Votre rendez-vous a été modifié. Nouvel horaire : {list}."),
        ),
        Kind::Cancellation => (
            "Annulation de votre rendez-vous",
            format!(
                "Votre rendez-vous du {list} est annulé. Contactez le cabinet pour en fixer un autre."
            ),
        ),
        Kind::Deletion => (
            "Suppression de votre rendez-vous",
            format!("Votre rendez-vous du {list} a été supprimé de l'agenda."),
        ),
        Kind::NoShow => (
            "Vous avez manqué votre dernier rendez-vous ?",
            format!(
                "Le praticien nous indique que personne ne s'est présenté au rendez-vous du {list}, ou que celui-ci a été annulé tardivement. Si cela devait se présenter à nouveau, pensez à annuler votre rendez-vous plus de 48 heures à l'avance, afin de libérer l'horaire pour un autre patient."
            ),
        ),
        Kind::PractitionerBooking => (
            "Nouveau rendez-vous pris en ligne",
            format!("Nouveau rendez-vous pris en ligne : {list}."),
        ),
        Kind::PractitionerCancellation => (
            "Rendez-vous annulé",
            format!("Rendez-vous annulé : {list}."),
        ),
        Kind::PractitionerMove => (
            "Rendez-vous déplacé",
            format!("Rendez-vous déplacé : {list}."),
        ),
        Kind::Document => {
            let title = input
                .document
                .map(|d| d.title.as_str())
                .unwrap_or("document");
            let body = match (input.channel, &input.document_link) {
                (Channel::Postal, _) => {
                    format!("Veuillez trouver ci-joint le document « {title} ».")
                }
                (_, Some(link)) => format!(
                    "Un document vous a été envoyé : « {title} ». Consultez-le de façon sécurisée ici : {link} (votre date de naissance vous sera demandée)."
                ),
                (_, None) => format!("Un document vous a été envoyé : « {title} »."),
            };
            ("Un document vous a été envoyé", body)
        }
        Kind::Task => {
            let label = input.task_label.unwrap_or("Message du cabinet");
            let body = if when.is_empty() {
                format!("{label}.")
            } else {
                format!("{label} : {list}. N'hésitez pas à reprendre rendez-vous.")
            };
            ("Message de votre cabinet", body)
        }
    };
    let instructions: Vec<&str> = if short {
        Vec::new()
    } else {
        input
            .appointments
            .iter()
            .filter_map(|v| v.motive.and_then(|m| m.instructions.as_deref()))
            .collect()
    };
    if short {
        return Rendered {
            subject: None,
            text: format!("{practice} : {body}"),
        };
    }
    let is_alert = matches!(
        input.kind,
        Kind::PractitionerBooking | Kind::PractitionerCancellation | Kind::PractitionerMove
    );
    let mut text = if is_alert {
        format!("{body}\n")
    } else {
        format!("{greeting}\n\n{body}\n")
    };
    if !instructions.is_empty() {
        text.push_str("\nConsignes : ");
        text.push_str(&instructions.join(" "));
        text.push('\n');
    }
    text.push_str(&format!("\n{practice}\n"));
    Rendered {
        subject: Some(format!("{subject} — {practice}")),
        text,
    }
}

fn describe(view: &AppointmentView<'_>, tz: &TimeZone, with_motive: bool) -> String {
    let a = view.appointment;
    let mut out = french_datetime(a.start, tz);
    if let Some(p) = view.practitioner {
        out.push_str(&format!(" avec {}", p.name));
    }
    if let Some(location) = &a.location {
        out.push_str(&format!(", {location}"));
    }
    if with_motive && let Some(m) = view.motive {
        out.push_str(&format!(" ({})", m.name));
    }
    out
}
