//! Message templates (minijinja): the built-in texts of every kind × channel in French and
//! English, a practice's own versions of them, and the sandbox both run in.
//!
//! A message is made of *parts*: an email has a `subject`, a `text` and an `html` part; an SMS
//! only a `text`; a push message a `subject` (its title) and a `text` (its body); a letter a
//! `text` (its cover page). Each part is one template. The built-in ones are in
//! `src/templates/{fr,en}/` (see the README there); a practice may replace any of them
//! ([`TemplateSet`]), and what it writes is checked first ([`check_template`]).
//!
//! ```
//! use rappel_domain::notification::{Channel, Kind};
//! use rappel_domain::template::{Locale, Part, check_template, default_source};
//! let source = default_source(Kind::Reminder, Channel::Sms, Locale::Fr, Part::Text).unwrap();
//! assert!(check_template(Kind::Reminder, Channel::Sms, Part::Text, &source).is_ok());
//! let error = check_template(Kind::Reminder, Channel::Sms, Part::Text, "{{ patient.nom }}")
//!     .unwrap_err();
//! assert_eq!(error.line, Some(1));
//! ```
//!
//! # Variables
//!
//! | variable | what it holds |
//! | --- | --- |
//! | `practice.name` | the practice's name |
//! | `patient.first_name`, `patient.last_name`, `patient.name` | the patient (absent in practitioner alerts) |
//! | `practitioner.name` | the practitioner alerted, or else the first appointment's practitioner |
//! | `appointments` | a list; each has `date_text` (« mercredi 11 mars 2026 »), `time_text` (« 09h30 », `09:30` in English), `start` (RFC 3339 with the practice's offset), `location`, `practitioner`, `motive`, `instructions` |
//! | `document.title`, `document.link` | the document of a `document` message (no `title` in SMS and push) |
//! | `task.label` | the label of a scheduled task's message |
//! | `links.page`, `links.confirm`, `links.cancel` | the patient's page to confirm or cancel the appointment, and that page opened on either form (confirmation and reminder emails, SMS reminders; absent when the practice switches links off or the message is about several appointments) |
//! | `locale` | `fr` or `en` |
//!
//! Health data is minimised (SPEC.md rule 9): in SMS and push, `motive` is present only when the
//! practice enables `show_motive_in_sms`, and `instructions` and `document.title` never are.
//! A variable that is absent prints as nothing when a message is sent; [`check_template`]
//! refuses a template that prints or iterates over a variable the sample data lacks, so a typo
//! is caught when the template is saved, not when the patient reads it. Test optional values
//! with `{% if appointment.location %}`.
//!
//! # Sandbox
//!
//! A template reaches nothing outside its variables: no loader is configured (no
//! `{% include %}`, `{% import %}` or `{% extends %}`: the crate is built without minijinja's
//! `multi_template` and `loader` features), it has no function that does I/O, it runs on a fuel
//! budget ([`FUEL`]) and a recursion limit, and its output is capped per part
//! ([`output_limit`]). HTML parts are auto-escaped: a patient named `<b>` shows as `&lt;b&gt;`.
//! When a practice's template fails at send time anyway, the built-in one is used and the
//! failure is reported in [`Rendered::template_errors`]; a message is never left unsent
//! because of its wording.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use minijinja::UndefinedBehavior;
use serde::{Deserialize, Serialize};

use crate::facts::{Appointment, Document, Motive, Patient, Practitioner};
use crate::notification::{Channel, Kind};
use crate::render::{AppointmentView, RenderInput, Rendered};

mod context;
mod sandbox;

use self::context::{
    AppointmentCtx, Context, DocumentCtx, NameCtx, PatientCtx, TaskCtx, context, is_alert,
};
pub use self::context::{MONTHS_FR, carries_answer_links, date_text, day_text, time_text};
use self::sandbox::{run, run_default};

pub mod simple;

/// The most instructions one rendering may execute: far more than any message needs, and
/// small enough that `{% for i in range(100000) %}{% for j in range(100000) %}` stops at once.
pub const FUEL: u64 = 50_000;

/// How deep nested blocks and recursive loops may go.
const RECURSION_LIMIT: usize = 32;

/// The largest template a practice may store.
pub const MAX_SOURCE_BYTES: usize = 64 * 1024;

/// Where a message goes in a practice's language. French is the default; a patient whose
/// locale starts with `en` gets English.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Locale {
    Fr,
    En,
}

impl Locale {
    pub const ALL: &'static [Locale] = &[Locale::Fr, Locale::En];

    pub fn as_str(self) -> &'static str {
        match self {
            Locale::Fr => "fr",
            Locale::En => "en",
        }
    }

    /// `fr` or `en` exactly (what the API and the database carry).
    pub fn parse(text: &str) -> Option<Locale> {
        match text {
            "fr" => Some(Locale::Fr),
            "en" => Some(Locale::En),
            _ => None,
        }
    }

    /// The locale for a patient's `locale` field: `en`, `en-GB`, `en_US`… → English; anything
    /// else, or nothing, → French.
    pub fn for_patient(locale: Option<&str>) -> Locale {
        match locale {
            Some(l) if l.trim().to_ascii_lowercase().starts_with("en") => Locale::En,
            _ => Locale::Fr,
        }
    }
}

/// One templated part of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// The email subject, or the push title.
    Subject,
    /// The plain text: email text, SMS, push body, letter cover page.
    Text,
    /// The email's HTML alternative.
    Html,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Text => "text",
            Part::Html => "html",
        }
    }

    pub fn parse(text: &str) -> Option<Part> {
        match text {
            "subject" => Some(Part::Subject),
            "text" => Some(Part::Text),
            "html" => Some(Part::Html),
            _ => None,
        }
    }
}

/// The parts a message of that channel has (none for the practice inbox, which has no template).
pub fn parts(channel: Channel) -> &'static [Part] {
    match channel {
        Channel::Email => &[Part::Subject, Part::Text, Part::Html],
        Channel::Sms | Channel::Postal => &[Part::Text],
        Channel::Push => &[Part::Subject, Part::Text],
        Channel::Inbox => &[],
    }
}

/// The most bytes a part may render to: an SMS of 1 KiB is already 7 segments.
pub fn output_limit(channel: Channel, part: Part) -> usize {
    match (channel, part) {
        (_, Part::Subject) => 1024,
        (Channel::Sms | Channel::Push, _) => 1024,
        _ => 64 * 1024,
    }
}

/// Which template: a kind of message, on a channel, in a locale, one of its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TemplateKey {
    pub kind: Kind,
    pub channel: Channel,
    pub locale: Locale,
    pub part: Part,
}

/// A practice's own templates, replacing the built-in ones part by part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateSet {
    sources: BTreeMap<TemplateKey, String>,
}

impl TemplateSet {
    pub fn insert(&mut self, key: TemplateKey, source: String) {
        self.sources.insert(key, source);
    }

    pub fn get(&self, key: &TemplateKey) -> Option<&str> {
        self.sources.get(key).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&TemplateKey, &str)> {
        self.sources.iter().map(|(k, v)| (k, v.as_str()))
    }
}

/// Why a template was refused, and on which line (1-based) when the engine knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}{reason}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct TemplateError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub reason: String,
}

// ---- the built-in templates -----------------------------------------------------------------

#[derive(Deserialize)]
struct KindTexts {
    subject: String,
    body: String,
    body_short: Option<String>,
    body_postal: Option<String>,
}

struct Frames {
    kinds: HashMap<String, KindTexts>,
    email_subject: &'static str,
    email_text: &'static str,
    email_html: &'static str,
    sms_text: &'static str,
    push_title: &'static str,
    push_body: &'static str,
    postal_text: &'static str,
}

macro_rules! frames {
    ($locale:literal) => {
        Frames {
            kinds: toml::from_str(include_str!(concat!("templates/", $locale, "/kinds.toml")))
                .expect(concat!("templates/", $locale, "/kinds.toml is valid")),
            email_subject: include_str!(concat!("templates/", $locale, "/email_subject.jinja")),
            email_text: include_str!(concat!("templates/", $locale, "/email_text.jinja")),
            email_html: include_str!(concat!("templates/", $locale, "/email_html.jinja")),
            sms_text: include_str!(concat!("templates/", $locale, "/sms_text.jinja")),
            push_title: include_str!(concat!("templates/", $locale, "/push_title.jinja")),
            push_body: include_str!(concat!("templates/", $locale, "/push_body.jinja")),
            postal_text: include_str!(concat!("templates/", $locale, "/postal_text.jinja")),
        }
    };
}

fn frames(locale: Locale) -> &'static Frames {
    static FR: OnceLock<Frames> = OnceLock::new();
    static EN: OnceLock<Frames> = OnceLock::new();
    match locale {
        Locale::Fr => FR.get_or_init(|| frames!("fr")),
        Locale::En => EN.get_or_init(|| frames!("en")),
    }
}

/// The built-in template of that part, as a practice would copy it to write its own; `None`
/// for a part the channel does not have.
pub fn default_source(kind: Kind, channel: Channel, locale: Locale, part: Part) -> Option<String> {
    let frames = frames(locale);
    let texts = frames.kinds.get(kind.as_str())?;
    let (frame, body) = match (channel, part) {
        (Channel::Email, Part::Subject) => (frames.email_subject, &texts.body),
        (Channel::Email, Part::Text) => (frames.email_text, &texts.body),
        (Channel::Email, Part::Html) => (frames.email_html, &texts.body),
        (Channel::Sms, Part::Text) => (
            frames.sms_text,
            texts.body_short.as_ref().unwrap_or(&texts.body),
        ),
        (Channel::Push, Part::Subject) => (frames.push_title, &texts.body),
        (Channel::Push, Part::Text) => (
            frames.push_body,
            texts.body_short.as_ref().unwrap_or(&texts.body),
        ),
        (Channel::Postal, Part::Text) => (
            frames.postal_text,
            texts.body_postal.as_ref().unwrap_or(&texts.body),
        ),
        _ => return None,
    };
    Some(
        frame
            .replace("[[subject]]", &texts.subject)
            .replace("[[body]]", body),
    )
}

/// The built-in sources, joined once (they are rendered for every message).
fn cached_default(key: TemplateKey) -> Option<&'static str> {
    static CACHE: OnceLock<HashMap<TemplateKey, String>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| {
        let mut map = HashMap::new();
        for &kind in Kind::ALL {
            for &channel in Channel::ALL {
                for &locale in Locale::ALL {
                    for &part in parts(channel) {
                        if let Some(source) = default_source(kind, channel, locale, part) {
                            map.insert(
                                TemplateKey {
                                    kind,
                                    channel,
                                    locale,
                                    part,
                                },
                                source,
                            );
                        }
                    }
                }
            }
        }
        map
    });
    cache.get(&key).map(String::as_str)
}

/// Tidies a rendered part: a subject is one line, an SMS or push text has no trailing blank.
fn finish(channel: Channel, part: Part, output: String) -> String {
    match (channel, part) {
        (_, Part::Subject) => output.split_whitespace().collect::<Vec<_>>().join(" "),
        (Channel::Sms | Channel::Push, _) => output.trim().to_string(),
        _ => output,
    }
}

// ---- rendering --------------------------------------------------------------------------------

/// Renders a message from the practice's templates where it has them, the built-in ones
/// elsewhere, in the patient's locale.
pub fn render_with(input: &RenderInput<'_>, overrides: Option<&TemplateSet>) -> Rendered {
    let locale = Locale::for_patient(input.patient.and_then(|p| p.locale.as_deref()));
    let context = context(input, locale);
    let mut rendered = Rendered {
        subject: None,
        text: String::new(),
        html: None,
        template_errors: Vec::new(),
    };
    for &part in parts(input.channel) {
        let key = TemplateKey {
            kind: input.kind,
            channel: input.channel,
            locale,
            part,
        };
        let own = overrides.and_then(|set| set.get(&key)).map(|source| {
            run(
                source,
                input.channel,
                part,
                &context,
                UndefinedBehavior::Lenient,
            )
        });
        let output = match own {
            Some(Ok(output)) => output,
            other => {
                if let Some(Err(error)) = other {
                    rendered
                        .template_errors
                        .push(format!("{}: {error}", part.as_str()));
                }
                run_default(key, &context).unwrap_or_else(|error| {
                    rendered
                        .template_errors
                        .push(format!("{} (built-in): {error}", part.as_str()));
                    input.practice_name.to_string()
                })
            }
        };
        let output = finish(input.channel, part, output);
        match part {
            Part::Subject => rendered.subject = Some(output),
            Part::Text => rendered.text = output,
            Part::Html => rendered.html = Some(output),
        }
    }
    rendered
}

/// Renders one source on the sample data of that kind and channel, as the live preview shows
/// it; refuses it as [`check_template`] does.
pub fn preview(
    kind: Kind,
    channel: Channel,
    part: Part,
    locale: Locale,
    source: &str,
) -> Result<String, TemplateError> {
    let sample = Sample::new("Cabinet Exemple", "Dr Exemple", sample_start(), locale);
    preview_on(&sample.input(kind, channel, false), part, locale, source)
}

/// Renders one source on the given input (a practice's own sample, for its preview and test
/// send), strictly: an unknown variable is an error, not an empty string.
pub fn preview_on(
    input: &RenderInput<'_>,
    part: Part,
    locale: Locale,
    source: &str,
) -> Result<String, TemplateError> {
    let channel = input.channel;
    if !parts(channel).contains(&part) {
        return Err(TemplateError {
            line: None,
            reason: format!(
                "a {channel} message has no {} part (it has: {})",
                part.as_str(),
                parts(channel)
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let context = context(input, locale);
    run(
        source,
        channel,
        part,
        &context,
        UndefinedBehavior::SemiStrict,
    )
    .map(|output| finish(channel, part, output))
}

/// Checks a template before it is stored: it must parse, and render on sample data without
/// touching a variable that does not exist there (minijinja's `SemiStrict` undefined behaviour:
/// printing, iterating or reading an attribute of an unknown variable fails; `{% if x %}` on an
/// absent one is allowed, because optional values such as a location must be testable), within
/// the fuel and output limits.
pub fn check_template(
    kind: Kind,
    channel: Channel,
    part: Part,
    source: &str,
) -> Result<(), TemplateError> {
    for &locale in Locale::ALL {
        preview(kind, channel, part, locale, source)?;
    }
    Ok(())
}

/// 11 March 2026 at 09:30 in Paris: a Wednesday, the fixed instant of checks and previews.
pub fn sample_start() -> Timestamp {
    "2026-03-11T08:30:00Z".parse().expect("a valid instant")
}

/// The sample data of previews, checks and test sends: the patient « Jeanne Exemple » and one
/// appointment with a practitioner, a place, a motive and its instructions.
pub struct Sample {
    pub practice_name: String,
    pub tz: TimeZone,
    pub patient: Patient,
    pub practitioner: Practitioner,
    pub motive: Motive,
    pub appointment: Appointment,
    pub document: Document,
}

impl Sample {
    pub fn new(
        practice_name: &str,
        practitioner_name: &str,
        start: Timestamp,
        locale: Locale,
    ) -> Sample {
        let patient = Patient {
            id: "sample-patient".into(),
            first_name: "Jeanne".into(),
            last_name: "Exemple".into(),
            locale: Some(locale.as_str().into()),
            ..Patient::default()
        };
        let practitioner = Practitioner {
            id: "sample-practitioner".into(),
            name: practitioner_name.into(),
            email: None,
            mobile: None,
        };
        let (motive_name, instructions, location, title) = match locale {
            Locale::Fr => (
                "Consultation",
                "Merci d'arriver 10 minutes en avance.",
                "12 rue de la Paix, 75002 Paris",
                "Compte rendu de consultation",
            ),
            Locale::En => (
                "Consultation",
                "Please arrive 10 minutes early.",
                "12 rue de la Paix, 75002 Paris",
                "Consultation report",
            ),
        };
        let motive = Motive {
            id: "sample-motive".into(),
            name: motive_name.into(),
            notifications: true,
            instructions: Some(instructions.into()),
        };
        // Built from JSON so that a field added to the facts later keeps its default here.
        let appointment: Appointment = serde_json::from_value(serde_json::json!({
            "id": "sample-appointment",
            "patient": patient.id,
            "practitioner": practitioner.id,
            "motive": motive.id,
            "start": start,
            "duration_minutes": 20,
            "location": location,
            "source": "staff",
            "booked_at": start,
            "status": "booked",
            "version": 1,
        }))
        .expect("the sample appointment is valid");
        let document: Document = serde_json::from_value(serde_json::json!({
            "id": "sample-document",
            "patient": patient.id,
            "title": title,
            "sent_at": start,
            "email": {"state": "pending"},
        }))
        .expect("the sample document is valid");
        Sample {
            practice_name: practice_name.into(),
            tz: TimeZone::get("Europe/Paris").expect("bundled time zone"),
            patient,
            practitioner,
            motive,
            appointment,
            document,
        }
    }

    /// The render input of a message of that kind and channel on this sample.
    pub fn input(&self, kind: Kind, channel: Channel, show_motive: bool) -> RenderInput<'_> {
        let alert = is_alert(kind);
        RenderInput {
            practice_name: &self.practice_name,
            tz: &self.tz,
            kind,
            channel,
            patient: (!alert).then_some(&self.patient),
            practitioner: alert.then_some(&self.practitioner),
            appointments: if kind == Kind::Document {
                Vec::new()
            } else {
                vec![AppointmentView {
                    appointment: &self.appointment,
                    practitioner: Some(&self.practitioner),
                    motive: Some(&self.motive),
                }]
            },
            document: (kind == Kind::Document).then_some(&self.document),
            document_link: (kind == Kind::Document)
                .then(|| "https://rappel.example/d/exemple".to_string()),
            // As long as a real one: 16 characters of token after `/r/`.
            answer_links: carries_answer_links(kind, channel).then(|| {
                crate::render::AnswerLinks::for_page(
                    "https://rappel.example/r/AbCdEfGhIjKlMnOp".to_string(),
                )
            }),
            task_label: (kind == Kind::Task).then_some(match self.patient.locale.as_deref() {
                Some("en") => "We have not seen you for a while",
                _ => "Nous ne vous avons pas vu depuis un moment",
            }),
            show_motive,
        }
    }
}

#[cfg(test)]
mod tests;
