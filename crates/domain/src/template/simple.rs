//! The simple editor's language: a message written as plain text with fields in braces
//! (« Bonjour {Prénom}, »), from which every part of the channel is produced — the plain text,
//! and for an email the HTML alternative too (paragraphs, links) — as ordinary minijinja
//! templates that go through [`check_template`](super::check_template) like any other.
//!
//! Rules, as the editor explains them to the practice:
//! - a field is its French name in braces: `{Prénom}`, `{Date du rendez-vous}`…; the fields a
//!   kind × channel has are [`Field::available`] (no appointment in a document message, no
//!   motive, instructions or document title in an SMS or push: SPEC.md rule 9);
//! - a blank line separates paragraphs;
//! - a line whose fields are all empty for a message (no instructions, no place…) is left out,
//!   with its paragraph when every line of it is;
//! - in an email's HTML part every paragraph is a `<p>`, the lines of a paragraph are joined by
//!   `<br>`, web addresses and `{Lien du document}` become links.
//!
//! The compiled templates start with a marker comment; [`decompile`] reads them back into the
//! simple text, and answers `None` for a template written (or edited) as code, which the editor
//! then shows in its advanced mode only.

mod fields;

use minijinja::UndefinedBehavior;

use self::fields::why_absent;
use super::{AppointmentCtx, DocumentCtx, NameCtx, PatientCtx, TaskCtx, default_source};
use super::{
    Channel, Context, Kind, Locale, Part, carries_answer_links, frames, is_alert, parts, run,
};

pub use self::fields::{Field, available_list};

/// The first line of every compiled part: how [`decompile`] knows the simple editor wrote it.
pub const MARKER: &str = "{#- Écrit avec l'éditeur simple de Rappel : modifier ce code le fait passer en mode avancé. -#}";

/// A message as the simple editor holds it: the subject (email subject, push title) and the body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimpleMessage {
    pub subject: Option<String>,
    pub body: String,
}

/// Why a simple text cannot be compiled: the part (`subject` or `text`), the line (1-based) and
/// the reason, in French.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{part} line {line}: {reason}", part = part.as_str())]
pub struct SimpleError {
    pub part: Part,
    pub line: usize,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Text(String),
    Field(Field),
}

/// The segments of one line, every `{…}` a field of that kind and channel.
fn parse_line(
    line: &str,
    kind: Kind,
    channel: Channel,
    part: Part,
    number: usize,
) -> Result<Vec<Segment>, SimpleError> {
    let error = |reason: String| SimpleError {
        part,
        line: number,
        reason,
    };
    let mut segments = Vec::new();
    let mut rest = line;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            segments.push(Segment::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 1..];
        let Some(close) = after
            .find(['}', '{'])
            .filter(|&c| after[c..].starts_with('}'))
        else {
            return Err(error(
                "une accolade « { » ouvre un champ qui n'est pas fermé par « } » (par exemple \
                 {Prénom})"
                    .into(),
            ));
        };
        let label = &after[..close];
        let Some(field) = Field::parse(label) else {
            return Err(error(format!(
                "« {{{label}}} » n'est pas un champ connu ; les champs de ce message sont : {}",
                available_list(kind, channel)
            )));
        };
        if !field.available(kind, channel) {
            return Err(error(format!(
                "le champ {} n'existe pas dans ce message ({}) ; les champs de ce message sont : {}",
                field.token(),
                why_absent(field, channel),
                available_list(kind, channel)
            )));
        }
        segments.push(Segment::Field(field));
        rest = &after[close + 1..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Text(rest.to_string()));
    }
    Ok(segments)
}

/// The `{% set when %}…{% endset %}` block of a built-in frame.
fn when_block(frame: &str) -> &str {
    let start = frame.find("{% set when %}").unwrap_or(0);
    let end = frame[start..]
        .find("{% endset %}")
        .map(|e| start + e + "{% endset %}".len())
        .unwrap_or(start);
    &frame[start..end]
}

fn when_frame(channel: Channel, locale: Locale, html: bool) -> &'static str {
    let f = frames(locale);
    when_block(match channel {
        Channel::Email if html => f.email_html,
        Channel::Email => f.email_text,
        Channel::Sms => f.sms_text,
        Channel::Push => f.push_body,
        Channel::Postal => f.postal_text,
        Channel::Inbox => f.sms_text,
    })
}

struct Parsed {
    /// Paragraphs of lines of segments.
    paragraphs: Vec<Vec<Vec<Segment>>>,
}

fn parse_body(kind: Kind, channel: Channel, body: &str) -> Result<Parsed, SimpleError> {
    let mut paragraphs: Vec<Vec<Vec<Segment>>> = Vec::new();
    let mut current: Vec<Vec<Segment>> = Vec::new();
    for (index, raw) in body.lines().enumerate() {
        let line = raw.trim_end();
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
            continue;
        }
        current.push(parse_line(line, kind, channel, Part::Text, index + 1)?);
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    if paragraphs.is_empty() {
        return Err(SimpleError {
            part: Part::Text,
            line: 1,
            reason: "le message est vide : écrivez son texte.".into(),
        });
    }
    Ok(Parsed { paragraphs })
}

fn fields_of(lines: &[Vec<Segment>]) -> Vec<Field> {
    let mut fields = Vec::new();
    for line in lines {
        for segment in line {
            if let Segment::Field(f) = segment
                && !fields.contains(f)
            {
                fields.push(*f);
            }
        }
    }
    fields
}

fn condition(fields: &[Field]) -> Option<String> {
    (!fields.is_empty()).then(|| {
        fields
            .iter()
            .map(|f| f.var())
            .collect::<Vec<_>>()
            .join(" or ")
    })
}

fn preamble(fields: &[Field], channel: Channel, locale: Locale, html: bool) -> String {
    let mut out = String::from(MARKER);
    out.push('\n');
    let mut sorted = fields.to_vec();
    sorted.sort();
    sorted.dedup();
    for field in sorted {
        out.push_str(&field.definition(when_frame(channel, locale, html)));
        out.push('\n');
    }
    out
}

fn text_line(segments: &[Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Text(t) => out.push_str(t),
            Segment::Field(f) => {
                out.push_str("{{ ");
                out.push_str(f.var());
                out.push_str(" }}");
            }
        }
    }
    out
}

fn compile_text(parsed: &Parsed, channel: Channel, locale: Locale) -> String {
    let all: Vec<Field> = parsed
        .paragraphs
        .iter()
        .flat_map(|p| fields_of(p))
        .collect();
    let mut out = preamble(&all, channel, locale, false);
    for (index, paragraph) in parsed.paragraphs.iter().enumerate() {
        // A paragraph is left out when every one of its lines is.
        let whole = paragraph
            .iter()
            .all(|line| line.iter().any(|s| matches!(s, Segment::Field(_))))
            .then(|| condition(&fields_of(paragraph)))
            .flatten();
        if let Some(c) = &whole {
            out.push_str(&format!("{{% if {c} %}}\n"));
        }
        if index > 0 {
            out.push('\n');
        }
        for line in paragraph {
            let own = condition(&fields_of(std::slice::from_ref(line)));
            if let Some(c) = &own {
                out.push_str(&format!("{{% if {c} %}}\n"));
            }
            out.push_str(&text_line(line));
            out.push('\n');
            if own.is_some() {
                out.push_str("{% endif %}\n");
            }
        }
        if whole.is_some() {
            out.push_str("{% endif %}\n");
        }
    }
    out
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

const LINK_STYLE: &str = "color:#1f4e79;";

/// Literal text as HTML, its web addresses as links.
fn html_text(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    loop {
        let next = ["https://", "http://"]
            .iter()
            .filter_map(|scheme| rest.find(scheme))
            .min();
        let Some(start) = next else {
            out.push_str(&escape_html(rest));
            return out;
        };
        out.push_str(&escape_html(&rest[..start]));
        let tail = &rest[start..];
        let mut end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        // Punctuation that ends a sentence is not part of the address.
        while end > 0 && tail[..end].ends_with(['.', ',', ';', ':', ')', '!', '?', '»']) {
            end -= tail[..end].chars().next_back().map_or(1, char::len_utf8);
        }
        let url = &tail[..end];
        let escaped = escape_html(url);
        out.push_str(&format!(
            "<a href=\"{escaped}\" style=\"{LINK_STYLE}\">{escaped}</a>"
        ));
        rest = &tail[end..];
    }
}

fn html_line(segments: &[Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Text(t) => out.push_str(&html_text(t)),
            Segment::Field(
                f @ (Field::DocumentLink
                | Field::AnswerPage
                | Field::ConfirmLink
                | Field::CancelLink),
            ) => {
                let var = f.var();
                out.push_str(&format!(
                    "<a href=\"{{{{ {var} }}}}\" style=\"{LINK_STYLE}\">{{{{ {var} }}}}</a>"
                ))
            }
            Segment::Field(f) => {
                out.push_str("{{ ");
                out.push_str(f.var());
                out.push_str(" }}");
            }
        }
    }
    out
}

fn compile_html(parsed: &Parsed, channel: Channel, locale: Locale) -> String {
    let mut fields: Vec<Field> = parsed
        .paragraphs
        .iter()
        .flat_map(|p| fields_of(p))
        .collect();
    fields.push(Field::Practice);
    let mut out = preamble(&fields, channel, locale, true);
    let (lang, footer) = match locale {
        Locale::Fr => (
            "fr",
            "Message automatique envoyé par {{ cabinet }}. Merci de ne pas y répondre.",
        ),
        Locale::En => (
            "en",
            "Automatic message sent by {{ cabinet }}. Please do not reply.",
        ),
    };
    out.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{{{{ cabinet }}}}</title>\n</head>\n\
         <body style=\"margin:0;padding:0;background:#f4f5f7;\">\n\
         <div style=\"max-width:600px;margin:0 auto;padding:16px;font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5;color:#1f2933;\">\n\
         <div style=\"padding:16px 20px;background:#1f4e79;color:#ffffff;border-radius:8px 8px 0 0;font-size:18px;font-weight:bold;\">{{{{ cabinet }}}}</div>\n\
         <div style=\"padding:20px 20px 4px;background:#ffffff;border-radius:0 0 8px 8px;\">\n"
    ));
    for paragraph in &parsed.paragraphs {
        let whole = paragraph
            .iter()
            .all(|line| line.iter().any(|s| matches!(s, Segment::Field(_))))
            .then(|| condition(&fields_of(paragraph)))
            .flatten();
        if let Some(c) = &whole {
            out.push_str(&format!("{{% if {c} %}}\n"));
        }
        out.push_str("<p style=\"margin:0 0 16px;\">\n");
        let last = paragraph.len() - 1;
        for (index, line) in paragraph.iter().enumerate() {
            let own = condition(&fields_of(std::slice::from_ref(line)));
            if let Some(c) = &own {
                out.push_str(&format!("{{% if {c} %}}\n"));
            }
            out.push_str(&html_line(line));
            if index < last {
                out.push_str("<br>");
            }
            out.push('\n');
            if own.is_some() {
                out.push_str("{% endif %}\n");
            }
        }
        out.push_str("</p>\n");
        if whole.is_some() {
            out.push_str("{% endif %}\n");
        }
    }
    out.push_str(&format!(
        "</div>\n<p style=\"margin:16px 0 0;font-size:12px;color:#6b7280;text-align:center;\">{footer}</p>\n\
         </div>\n</body>\n</html>\n"
    ));
    out
}

fn compile_subject(
    kind: Kind,
    channel: Channel,
    locale: Locale,
    subject: &str,
) -> Result<String, SimpleError> {
    let mut lines = subject.lines().filter(|l| !l.trim().is_empty());
    let line = lines.next().map(str::trim).unwrap_or_default();
    if line.is_empty() {
        return Err(SimpleError {
            part: Part::Subject,
            line: 1,
            reason: match channel {
                Channel::Push => "le titre est vide : écrivez-le.".into(),
                _ => "l'objet est vide : écrivez-le.".into(),
            },
        });
    }
    if lines.next().is_some() {
        return Err(SimpleError {
            part: Part::Subject,
            line: 2,
            reason: "l'objet tient sur une seule ligne.".into(),
        });
    }
    let segments = parse_line(line, kind, channel, Part::Subject, 1)?;
    let fields = fields_of(std::slice::from_ref(&segments));
    let mut out = preamble(&fields, channel, locale, false);
    out.push_str(&text_line(&segments));
    out.push('\n');
    Ok(out)
}

/// The minijinja source of every part of the channel, from the simple text.
pub fn compile(
    kind: Kind,
    channel: Channel,
    locale: Locale,
    message: &SimpleMessage,
) -> Result<Vec<(Part, String)>, SimpleError> {
    let parsed = parse_body(kind, channel, &message.body)?;
    let mut out = Vec::new();
    for &part in parts(channel) {
        let source = match part {
            Part::Subject => compile_subject(
                kind,
                channel,
                locale,
                message.subject.as_deref().unwrap_or_default(),
            )?,
            Part::Text => compile_text(&parsed, channel, locale),
            Part::Html => compile_html(&parsed, channel, locale),
        };
        out.push((part, source));
    }
    Ok(out)
}

/// The simple text of one compiled part (its lines, fields back in braces), or `None` when it
/// was not written by [`compile`].
fn decompile_part(source: &str) -> Option<String> {
    let rest = source.strip_prefix(MARKER)?.strip_prefix('\n')?;
    let mut lines = Vec::new();
    let mut in_set_block = false;
    for line in rest.lines() {
        if in_set_block {
            in_set_block = !line.contains("{% endset %}");
            continue;
        }
        if line.starts_with("{% set ") {
            in_set_block =
                line.starts_with("{% set rendez_vous %}") && !line.contains("{% endset %}");
            continue;
        }
        if line.starts_with("{% if ") || line == "{% endif %}" {
            continue;
        }
        let mut text = String::new();
        let mut rest = line;
        while let Some(open) = rest.find("{{ ") {
            text.push_str(&rest[..open]);
            let after = &rest[open + 3..];
            let close = after.find(" }}")?;
            text.push_str(&Field::from_var(&after[..close])?.token());
            rest = &after[close + 3..];
        }
        text.push_str(rest);
        lines.push(text);
    }
    Some(lines.join("\n").trim_matches('\n').to_string())
}

/// The simple text of a stored template when the simple editor wrote it (every part as
/// [`compile`] makes it from that text), else `None`.
pub fn decompile(
    kind: Kind,
    channel: Channel,
    locale: Locale,
    sources: &[(Part, &str)],
) -> Option<SimpleMessage> {
    let source_of = |part: Part| {
        sources
            .iter()
            .find(|(p, _)| *p == part)
            .map(|(_, source)| *source)
    };
    let body = decompile_part(source_of(Part::Text)?)?;
    let subject = match parts(channel).contains(&Part::Subject) {
        true => Some(decompile_part(source_of(Part::Subject)?)?),
        false => None,
    };
    let message = SimpleMessage { subject, body };
    let compiled = compile(kind, channel, locale, &message).ok()?;
    compiled
        .iter()
        .all(|(part, source)| source_of(*part) == Some(source.as_str()))
        .then_some(message)
}

/// The built-in text of that kind and channel written with fields, as the simple editor shows
/// it: the built-in template rendered with each field's token as its value, the list of
/// appointments as `{Rendez-vous}`.
pub fn default_message(kind: Kind, channel: Channel, locale: Locale) -> SimpleMessage {
    let mut message = default_message_from(kind, channel, locale, true);
    if kind == Kind::Task {
        // A task's built-in text names appointments only when the task's selection has some (a
        // missed appointment does, a birthday or a recall does not). Rendered with one, the
        // simple text would read « {Tâche} : {Rendez-vous}. », which a birthday saved from it
        // turns into « … : . ». The simple text is the one without appointments, with the
        // appointment on a line of its own after the task's label: a line whose fields are all
        // empty is left out of the compiled template, so it shows only when there is one.
        let plain = default_message_from(kind, channel, locale, false);
        let label = format!("{}.", Field::TaskLabel.token());
        let line = match locale {
            Locale::Fr => "Rendez-vous : {}. N'hésitez pas à reprendre rendez-vous.",
            Locale::En => "Appointment: {}. Feel free to book a new appointment.",
        }
        .replace("{}", &Field::Appointments.token());
        if let Some(at) = plain.body.find(&label) {
            let end = at + label.len();
            message.body = format!("{}\n{line}{}", &plain.body[..end], &plain.body[end..]);
            message.subject = plain.subject;
        }
    }
    message
}

/// The built-in text rendered with each field's token, with one appointment or none.
fn default_message_from(
    kind: Kind,
    channel: Channel,
    locale: Locale,
    with_appointment: bool,
) -> SimpleMessage {
    let context = placeholder_context(kind, channel, locale, with_appointment);
    let render = |source: &str| {
        run(
            source,
            channel,
            Part::Text,
            &context,
            UndefinedBehavior::Lenient,
        )
        .unwrap_or_default()
    };
    let when = render(&format!(
        "{}{{{{ when }}}}",
        when_frame(channel, locale, false)
    ));
    let part_text = |part: Part| {
        default_source(kind, channel, locale, part).map(|source| {
            let out = render(&source);
            let out = if when.is_empty() {
                out
            } else {
                out.replace(&when, &Field::Appointments.token())
            };
            out.trim().to_string()
        })
    };
    SimpleMessage {
        subject: part_text(Part::Subject)
            .filter(|_| parts(channel).contains(&Part::Subject))
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")),
        body: part_text(Part::Text).unwrap_or_default(),
    }
}

fn placeholder_context(
    kind: Kind,
    channel: Channel,
    locale: Locale,
    with_appointment: bool,
) -> minijinja::Value {
    let token = |f: Field| f.available(kind, channel).then(|| f.token());
    let appointments = if kind == Kind::Document || !with_appointment {
        Vec::new()
    } else {
        vec![AppointmentCtx {
            date_text: Field::Date.token(),
            time_text: Field::Time.token(),
            start: String::new(),
            location: token(Field::Location),
            practitioner: token(Field::Practitioner),
            motive: token(Field::Motive),
            instructions: token(Field::Instructions),
        }]
    };
    let context = Context {
        locale: locale.as_str(),
        practice: NameCtx {
            name: Field::Practice.token(),
        },
        patient: (!is_alert(kind)).then(|| PatientCtx {
            first_name: Field::FirstName.token(),
            last_name: Field::LastName.token(),
            name: Field::PatientName.token(),
        }),
        practitioner: token(Field::Practitioner).map(|name| NameCtx { name }),
        appointments,
        document: (kind == Kind::Document).then(|| DocumentCtx {
            title: token(Field::DocumentTitle),
            link: token(Field::DocumentLink),
        }),
        task: (kind == Kind::Task).then(|| TaskCtx {
            label: Field::TaskLabel.token(),
        }),
        links: super::carries_answer_links(kind, channel).then(|| crate::render::AnswerLinks {
            page: Field::AnswerPage.token(),
            confirm: Field::ConfirmLink.token(),
            cancel: Field::CancelLink.token(),
        }),
    };
    minijinja::Value::from(minijinja::value::Serde(context))
}

#[cfg(test)]
mod tests;
