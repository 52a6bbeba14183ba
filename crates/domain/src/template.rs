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
use std::io::Write;
use std::sync::OnceLock;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::{Deserialize, Serialize};

use crate::facts::{Appointment, Document, Motive, Patient, Practitioner};
use crate::notification::{Channel, Kind};
use crate::render::{AppointmentView, RenderInput, Rendered};

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

// ---- the sandbox ------------------------------------------------------------------------------

fn environment(part: Part, undefined: UndefinedBehavior) -> Environment<'static> {
    let mut env = Environment::new();
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .expect("the default delimiters are valid");
    env.set_syntax(syntax);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    env.set_undefined_behavior(undefined);
    env.set_auto_escape_callback(move |_| match part {
        Part::Html => AutoEscape::Html,
        Part::Subject | Part::Text => AutoEscape::None,
    });
    env
}

/// A writer that refuses to grow past its limit, which stops the rendering.
struct Capped {
    out: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.limit {
            self.exceeded = true;
            return Err(std::io::Error::other("output limit"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn run(
    source: &str,
    channel: Channel,
    part: Part,
    context: &Value,
    undefined: UndefinedBehavior,
) -> Result<String, TemplateError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(TemplateError {
            line: None,
            reason: format!(
                "the template is {} bytes long; the limit is {MAX_SOURCE_BYTES}",
                source.len()
            ),
        });
    }
    let env = environment(part, undefined);
    let template = env.template_from_str(source).map_err(describe)?;
    render_capped(&template, channel, part, context)
}

/// Renders a compiled template, stopping it at the part's output limit.
fn render_capped(
    template: &minijinja::Template<'_, '_>,
    channel: Channel,
    part: Part,
    context: &Value,
) -> Result<String, TemplateError> {
    let limit = output_limit(channel, part);
    let mut capped = Capped {
        out: Vec::new(),
        limit,
        exceeded: false,
    };
    let outcome = template.render_captured_to(context.clone(), &mut capped);
    if capped.exceeded {
        return Err(TemplateError {
            line: None,
            reason: format!(
                "the {part} would be longer than {limit} bytes",
                part = part.as_str()
            ),
        });
    }
    outcome.map_err(describe)?;
    String::from_utf8(capped.out).map_err(|_| TemplateError {
        line: None,
        reason: "the output is not UTF-8".into(),
    })
}

/// Renders a built-in template, compiled once per process: every message that has no practice
/// template goes through here, and compiling is most of the cost of a rendering.
fn run_default(key: TemplateKey, context: &Value) -> Result<String, TemplateError> {
    static COMPILED: OnceLock<HashMap<TemplateKey, Environment<'static>>> = OnceLock::new();
    let compiled = COMPILED.get_or_init(|| {
        let mut map = HashMap::new();
        for &kind in Kind::ALL {
            for &channel in Channel::ALL {
                for &locale in Locale::ALL {
                    for &part in parts(channel) {
                        let key = TemplateKey {
                            kind,
                            channel,
                            locale,
                            part,
                        };
                        let Some(source) = cached_default(key) else {
                            continue;
                        };
                        let mut env = environment(part, UndefinedBehavior::Lenient);
                        // A built-in template that does not compile is caught by the tests;
                        // here it would fall back to the practice name (see `render_with`).
                        if env.add_template("built-in", source).is_ok() {
                            map.insert(key, env);
                        }
                    }
                }
            }
        }
        map
    });
    let template = compiled
        .get(&key)
        .and_then(|env| env.get_template("built-in").ok())
        .ok_or_else(|| TemplateError {
            line: None,
            reason: "no built-in template".into(),
        })?;
    render_capped(&template, key.channel, key.part, context)
}

fn describe(error: minijinja::Error) -> TemplateError {
    use minijinja::ErrorKind;
    let reason = match error.kind() {
        ErrorKind::OutOfFuel => {
            "the template runs too long (a loop too large?) and was stopped".to_string()
        }
        ErrorKind::UndefinedError => format!(
            "{}: this variable does not exist here (see the list of variables; in SMS and push \
             there is no `instructions`, no document title, and `motive` only when the practice \
             shows motives)",
            error.detail().unwrap_or("undefined value")
        ),
        _ if error.to_string().contains("template") && error.kind() != ErrorKind::SyntaxError => {
            format!(
                "{}: templates cannot include, import or extend other templates",
                error.detail().unwrap_or_default()
            )
        }
        _ => match error.detail() {
            Some(detail) => format!("{}: {detail}", error.kind()),
            None => error.kind().to_string(),
        },
    };
    TemplateError {
        line: error.line(),
        reason,
    }
}

// ---- the context ------------------------------------------------------------------------------

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
struct Context {
    locale: &'static str,
    practice: NameCtx,
    #[serde(skip_serializing_if = "Option::is_none")]
    patient: Option<PatientCtx>,
    #[serde(skip_serializing_if = "Option::is_none")]
    practitioner: Option<NameCtx>,
    appointments: Vec<AppointmentCtx>,
    #[serde(skip_serializing_if = "Option::is_none")]
    document: Option<DocumentCtx>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<TaskCtx>,
    #[serde(skip_serializing_if = "Option::is_none")]
    links: Option<crate::render::AnswerLinks>,
}

#[derive(Serialize)]
struct NameCtx {
    name: String,
}

#[derive(Serialize)]
struct PatientCtx {
    first_name: String,
    last_name: String,
    name: String,
}

#[derive(Serialize)]
struct AppointmentCtx {
    date_text: String,
    time_text: String,
    start: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    practitioner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    motive: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instructions: Option<String>,
}

#[derive(Serialize)]
struct DocumentCtx {
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<String>,
}

#[derive(Serialize)]
struct TaskCtx {
    label: String,
}

/// Which messages carry the patient's links to confirm or cancel (issue 16): confirmation and
/// reminder emails (two buttons) and SMS reminders (one short link).
pub fn carries_answer_links(kind: Kind, channel: Channel) -> bool {
    matches!(
        (kind, channel),
        (Kind::Confirmation | Kind::Reminder, Channel::Email) | (Kind::Reminder, Channel::Sms)
    )
}

fn is_alert(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::PractitionerBooking | Kind::PractitionerCancellation | Kind::PractitionerMove
    )
}

fn context(input: &RenderInput<'_>, locale: Locale) -> Value {
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
