//! The template editor for non-developers: a message written as text with fields
//! (`rappel_domain::template::simple`), compiled to the parts of its channel and stored as the
//! practice's templates through the same checks as code; and which kinds × channels a
//! practice's policy can send at all (the editor lists only those).

use rappel_domain::notification::{Channel, Kind};
use rappel_domain::template::simple::{self, SimpleMessage};
use rappel_domain::template::{Locale, Part, parts};

use crate::practice::load_practice;
use crate::{Engine, EngineError, Result, TemplateParts, TemplateView};

/// The parts of a simple text, or why it cannot be compiled (`Invalid` naming the part,
/// `line N: reason` in French).
pub fn simple_parts(
    kind: Kind,
    channel: Channel,
    locale: Locale,
    message: &SimpleMessage,
) -> Result<TemplateParts> {
    let compiled = simple::compile(kind, channel, locale, message).map_err(|e| {
        EngineError::invalid(e.part.as_str(), format!("line {}: {}", e.line, e.reason))
    })?;
    let mut out = TemplateParts::default();
    for (part, source) in compiled {
        match part {
            Part::Subject => out.subject = Some(source),
            Part::Text => out.text = Some(source),
            Part::Html => out.html = Some(source),
        }
    }
    Ok(out)
}

/// The simple text of a template in force: the built-in text written with fields, the
/// practice's own text when the simple editor wrote it, `None` when it was written as code.
pub fn simple_text(view: &TemplateView, locale: Locale) -> Option<SimpleMessage> {
    if view.origin == "default" {
        return Some(simple::default_message(view.kind, view.channel, locale));
    }
    let mut sources = Vec::new();
    for &part in parts(view.channel) {
        let source = match part {
            Part::Subject => view.parts.subject.as_deref(),
            Part::Text => view.parts.text.as_deref(),
            Part::Html => view.parts.html.as_deref(),
        }?;
        sources.push((part, source));
    }
    simple::decompile(view.kind, view.channel, locale, &sources)
}

impl Engine {
    /// Stores a template written in the simple editor: compiled, then checked and stored as
    /// [`Engine::put_template`] does.
    pub async fn put_simple_template(
        &self,
        practice_id: &str,
        kind: Kind,
        channel: Channel,
        locale: Locale,
        message: &SimpleMessage,
    ) -> Result<TemplateView> {
        let given = simple_parts(kind, channel, locale, message)?;
        self.put_template(practice_id, kind, channel, locale, &given)
            .await
    }

    /// The kinds × channels this practice can send: its policy's rules (their channels and
    /// fallbacks), a scheduled task's message by email or SMS, and, when the policy sends
    /// documents, a document by post (the manual postal resend of the to-verify box). The
    /// practice inbox has no template.
    pub async fn sendable_templates(&self, practice_id: &str) -> Result<Vec<(Kind, Channel)>> {
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        tx.commit().await?;
        let mut out: Vec<(Kind, Channel)> =
            vec![(Kind::Task, Channel::Email), (Kind::Task, Channel::Sms)];
        if ctx.policy.rules.iter().any(|r| r.kind == Kind::Document) {
            out.push((Kind::Document, Channel::Postal));
        }
        for rule in &ctx.policy.rules {
            for &channel in rule.channels.iter().chain(rule.fallback.iter()) {
                out.push((rule.kind, channel));
            }
        }
        out.retain(|(_, channel)| !parts(*channel).is_empty());
        out.sort_by_key(|(kind, channel)| {
            (
                Kind::ALL.iter().position(|k| k == kind),
                Channel::ALL.iter().position(|c| c == channel),
            )
        });
        out.dedup();
        Ok(out)
    }
}
