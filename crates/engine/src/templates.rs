//! A practice's message templates: reading, checking and storing its own versions of the
//! built-in ones, rendering with them at send time, the live preview, and the test send
//! (Doctolib's « envoi test »: any template, to any address, on sample data, at once).

use std::sync::Arc;

use jiff::civil::Time;
use jiff::{SignedDuration, Timestamp, ToSpan};
use rappel_channels::{OutboundMessage, PushTarget, Transport};
use rappel_domain::contact::{EmailAddress, MobileNumber};
use rappel_domain::notification::{Channel, Kind};
use rappel_domain::render::{RenderInput, Rendered, render_with};
use rappel_domain::template::{
    Locale, Part, Sample, TemplateError, TemplateKey, TemplateSet, check_template, default_source,
    parts, preview_on,
};
use rappel_store::{TemplateRow, Tx};
use serde::Serialize;

use crate::practice::{PracticeCtx, load_practice};

/// Test SMS one practice may send a day (practice time), besides counting against its quota.
pub const TEST_SMS_PER_DAY: i64 = 10;
use crate::{Engine, EngineError, Result};

/// The parts of one template as the API reads and writes them. An absent part uses the
/// built-in one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TemplateParts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

impl TemplateParts {
    fn get(&self, part: Part) -> Option<&String> {
        match part {
            Part::Subject => self.subject.as_ref(),
            Part::Text => self.text.as_ref(),
            Part::Html => self.html.as_ref(),
        }
    }

    fn set(&mut self, part: Part, source: String) {
        match part {
            Part::Subject => self.subject = Some(source),
            Part::Text => self.text = Some(source),
            Part::Html => self.html = Some(source),
        }
    }
}

/// One kind × channel × locale: the source in force for each part and where it comes from.
#[derive(Clone, Debug, Serialize)]
pub struct TemplateView {
    pub kind: Kind,
    pub channel: Channel,
    pub locale: &'static str,
    /// `practice` when the practice rewrote at least one part, else `default`.
    pub origin: &'static str,
    /// The parts the practice rewrote.
    pub overridden: Vec<&'static str>,
    /// The effective source of every part.
    pub parts: TemplateParts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

/// What a preview made of each part given: its output, or why it cannot be used.
#[derive(Clone, Debug, Serialize)]
pub struct PreviewPart {
    pub part: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<TemplateError>,
    /// For an SMS text: how many segments it takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_segments: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_encoding: Option<&'static str>,
}

/// What a test send did.
#[derive(Clone, Debug, Serialize)]
pub struct TestSend {
    pub kind: Kind,
    pub channel: Channel,
    pub to: String,
    pub rendered: Rendered,
    /// True when the channel's transport accepted the message.
    pub accepted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The channels that have templates (the practice inbox has none).
fn templated(channel: Channel) -> Result<()> {
    if parts(channel).is_empty() {
        return Err(EngineError::invalid(
            "channel",
            format!("`{channel}` messages have no template (email, sms, push, postal have)"),
        ));
    }
    Ok(())
}

/// The practice's own templates, as rendering uses them.
pub(crate) async fn load_templates(tx: &mut Tx, practice_id: &str) -> Result<TemplateSet> {
    let mut set = TemplateSet::default();
    for row in tx.templates(practice_id).await? {
        // A row this version does not understand (a kind removed since) is skipped, not fatal.
        let (Some(kind), Some(channel), Some(locale), Some(part)) = (
            Kind::parse(&row.kind),
            Channel::parse(&row.channel),
            Locale::parse(&row.locale),
            Part::parse(&row.part),
        ) else {
            continue;
        };
        set.insert(
            TemplateKey {
                kind,
                channel,
                locale,
                part,
            },
            row.source,
        );
    }
    Ok(set)
}

/// Renders a message at send time with the practice's templates (late binding, rule 3). A
/// practice template that fails is replaced by the built-in one for this message and logged;
/// the failure also stays in the rendered content stored with the notification.
pub(crate) async fn render_for(
    tx: &mut Tx,
    practice_id: &str,
    input: &RenderInput<'_>,
) -> Result<Rendered> {
    let set = load_templates(tx, practice_id).await?;
    Ok(render_using(practice_id, &set, input))
}

/// [`render_for`] with the practice's templates already loaded (a dispatch batch loads them once).
pub(crate) fn render_using(
    practice_id: &str,
    set: &TemplateSet,
    input: &RenderInput<'_>,
) -> Rendered {
    let rendered = render_with(input, (!set.is_empty()).then_some(set));
    for error in &rendered.template_errors {
        tracing::warn!(practice = practice_id, kind = %input.kind, channel = %input.channel, %error,
            "a practice template failed; the built-in one was used");
    }
    rendered
}

/// Tomorrow at 09:30 in the practice's time zone: the sample appointment of a test send.
fn tomorrow_morning(ctx: &PracticeCtx, now: Timestamp) -> Timestamp {
    let today = now.to_zoned(ctx.tz.clone()).date();
    today
        .checked_add(1.day())
        .ok()
        .and_then(|d| {
            d.to_datetime(Time::constant(9, 30, 0, 0))
                .to_zoned(ctx.tz.clone())
                .ok()
        })
        .map(|z| z.timestamp())
        .unwrap_or(now + SignedDuration::from_hours(24))
}

impl Engine {
    /// The transport of a channel, for messages that do not go through the queue.
    pub(crate) fn transport(&self, channel: Channel) -> Option<Arc<dyn Transport>> {
        let t = &self.inner.transports;
        match channel {
            Channel::Email => Some(t.email.clone()),
            Channel::Sms => Some(t.sms.clone()),
            Channel::Push => Some(t.push.clone()),
            Channel::Postal => Some(t.postal.clone()),
            Channel::Inbox => None,
        }
    }

    /// Every kind × channel × locale with the source in force for each part.
    pub async fn list_templates(&self, practice_id: &str) -> Result<Vec<TemplateView>> {
        let mut tx = self.store().begin_read().await?;
        let rows = tx.templates(practice_id).await?;
        tx.commit().await?;
        let mut views = Vec::new();
        for &kind in Kind::ALL {
            for &channel in Channel::ALL {
                for &locale in Locale::ALL {
                    if !parts(channel).is_empty() {
                        views.push(view(&rows, kind, channel, locale));
                    }
                }
            }
        }
        Ok(views)
    }

    pub async fn get_template(
        &self,
        practice_id: &str,
        kind: Kind,
        channel: Channel,
        locale: Locale,
    ) -> Result<TemplateView> {
        templated(channel)?;
        let mut tx = self.store().begin_read().await?;
        let rows = tx.templates(practice_id).await?;
        tx.commit().await?;
        Ok(view(&rows, kind, channel, locale))
    }

    /// Replaces the practice's version of a template: the parts given are checked and stored,
    /// the parts left out return to the built-in ones. A part that does not parse or uses an
    /// unknown variable is refused (`Invalid`, naming the part and the line); nothing is stored.
    pub async fn put_template(
        &self,
        practice_id: &str,
        kind: Kind,
        channel: Channel,
        locale: Locale,
        given: &TemplateParts,
    ) -> Result<TemplateView> {
        templated(channel)?;
        for part in [Part::Subject, Part::Text, Part::Html] {
            let Some(source) = given.get(part) else {
                continue;
            };
            if !parts(channel).contains(&part) {
                return Err(EngineError::invalid(
                    part.as_str(),
                    format!("a {channel} message has no {} part", part.as_str()),
                ));
            }
            check_template(kind, channel, part, source)
                .map_err(|error| EngineError::invalid(part.as_str(), error.to_string()))?;
        }
        if parts(channel).iter().all(|&p| given.get(p).is_none()) {
            return Err(EngineError::invalid(
                "text",
                "give at least one part (to return to the built-in template, DELETE it)",
            ));
        }
        let now = self.now();
        let mut tx = self.store().begin().await?;
        tx.delete_templates(
            practice_id,
            kind.as_str(),
            channel.as_str(),
            locale.as_str(),
        )
        .await?;
        for &part in parts(channel) {
            if let Some(source) = given.get(part) {
                tx.put_template(&TemplateRow {
                    practice_id: practice_id.to_string(),
                    kind: kind.as_str().into(),
                    channel: channel.as_str().into(),
                    locale: locale.as_str().into(),
                    part: part.as_str().into(),
                    source: source.clone(),
                    updated_at: now,
                })
                .await?;
            }
        }
        let rows = tx.templates(practice_id).await?;
        tx.commit().await?;
        Ok(view(&rows, kind, channel, locale))
    }

    /// Returns a template to the built-in one; false when the practice had not rewritten it.
    pub async fn delete_template(
        &self,
        practice_id: &str,
        kind: Kind,
        channel: Channel,
        locale: Locale,
    ) -> Result<bool> {
        templated(channel)?;
        let mut tx = self.store().begin().await?;
        let removed = tx
            .delete_templates(
                practice_id,
                kind.as_str(),
                channel.as_str(),
                locale.as_str(),
            )
            .await?;
        tx.commit().await?;
        Ok(removed > 0)
    }

    /// Renders the given sources on the practice's sample data (its name, its first
    /// practitioner, an appointment tomorrow at 09:30), for the editor's live preview.
    pub async fn preview_template(
        &self,
        practice_id: &str,
        kind: Kind,
        channel: Channel,
        locale: Locale,
        given: &TemplateParts,
    ) -> Result<Vec<PreviewPart>> {
        templated(channel)?;
        let (ctx, sample) = self.sample(practice_id, locale).await?;
        let mut input = sample.input(kind, channel, ctx.settings.is_on("show_motive_in_sms"));
        // The patient's links as long as this server's, so the preview counts the same SMS;
        // none when the practice switched them off.
        input.answer_links = input
            .answer_links
            .filter(|_| crate::answers::links_on(&ctx, channel))
            .map(|_| crate::answers::sample_links(&self.config().public_url));
        let mut out = Vec::new();
        for &part in parts(channel) {
            let default;
            let source = match given.get(part) {
                Some(source) => source,
                None => {
                    default = default_source(kind, channel, locale, part).unwrap_or_default();
                    &default
                }
            };
            let (output, error) = match preview_on(&input, part, locale, source) {
                Ok(output) => (Some(output), None),
                Err(error) => (None, Some(error)),
            };
            let sms = (channel == Channel::Sms && part == Part::Text)
                .then(|| output.as_deref().map(rappel_domain::sms::analyze))
                .flatten();
            out.push(PreviewPart {
                part: part.as_str(),
                sms_segments: sms.as_ref().map(|info| info.segments),
                sms_encoding: sms.map(|info| match info.encoding {
                    rappel_domain::sms::SmsEncoding::Gsm7 => "gsm7",
                    rappel_domain::sms::SmsEncoding::Ucs2 => "ucs2",
                }),
                output,
                error,
            });
        }
        Ok(out)
    }

    /// Renders a message of that kind on sample data through the practice's templates and
    /// hands it to the channel's transport at once, outside the queue: nothing is stored.
    /// `to` is checked for the channel (an email address, a mobile number, an https push
    /// endpoint with its keys).
    pub async fn test_send(
        &self,
        practice_id: &str,
        kind: Kind,
        channel: Channel,
        to: &str,
        locale: Locale,
        push_keys: Option<(String, String)>,
    ) -> Result<TestSend> {
        let (address, push) = match channel {
            Channel::Email => (
                EmailAddress::parse(to)
                    .map_err(|e| EngineError::invalid("to", e.to_string()))?
                    .to_string(),
                None,
            ),
            Channel::Sms => {
                let number = MobileNumber::parse(to)
                    .map_err(|e| EngineError::invalid("to", e.to_string()))?;
                // A test send is one click away for anyone with a practice key: it does not
                // leave for premium-rate destinations abroad.
                if !self
                    .config()
                    .test_sms_country_codes
                    .contains(&number.country_code())
                {
                    return Err(EngineError::invalid(
                        "to",
                        format!(
                            "a test SMS goes only to numbers of these country codes: {}",
                            self.config()
                                .test_sms_country_codes
                                .iter()
                                .map(|c| format!("+{c}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                (number.to_string(), None)
            }
            Channel::Push => {
                let endpoint = to.trim();
                // The same address check as subscriptions and the dispatcher (SSRF).
                rappel_channels::net_guard::check_resolved(endpoint, &self.config().net)
                    .await
                    .map_err(|refusal| {
                        EngineError::invalid("to", format!("the push endpoint: {refusal}"))
                    })?;
                let (p256dh, auth) = push_keys.unwrap_or_default();
                (
                    endpoint.to_string(),
                    Some(Box::new(PushTarget {
                        endpoint: endpoint.to_string(),
                        p256dh,
                        auth,
                    })),
                )
            }
            Channel::Postal | Channel::Inbox => {
                return Err(EngineError::invalid(
                    "channel",
                    "a test send goes by email, sms or push",
                ));
            }
        };
        let (ctx, sample) = self.sample(practice_id, locale).await?;
        let sender_name = match channel {
            Channel::Email => ctx.row.name.clone(),
            _ => ctx
                .settings
                .text("sms_sender")
                .unwrap_or(&ctx.row.name)
                .to_string(),
        };
        if channel == Channel::Sms
            && let Some(name) = rappel_domain::sms::impersonated_name(&sender_name)
        {
            return Err(EngineError::invalid(
                "sms_sender",
                format!("this sender name passes for a public service or company (`{name}`)"),
            ));
        }
        let mut tx = self.store().begin().await?;
        let mut input = sample.input(kind, channel, ctx.settings.is_on("show_motive_in_sms"));
        // The patient's links as long as this server's, so the preview counts the same SMS;
        // none when the practice switched them off.
        input.answer_links = input
            .answer_links
            .filter(|_| crate::answers::links_on(&ctx, channel))
            .map(|_| crate::answers::sample_links(&self.config().public_url));
        let rendered = render_for(&mut tx, practice_id, &input).await?;
        if channel == Channel::Sms {
            // A test SMS costs what any SMS costs: it counts against the month's quota, and
            // against a small daily cap of its own (counted in the same table, under the day).
            let local = self.now().to_zoned(ctx.tz.clone());
            let day = format!("test/{}", local.strftime("%Y-%m-%d"));
            if !tx
                .try_consume_sms(practice_id, &day, Some(TEST_SMS_PER_DAY), 1)
                .await?
            {
                return Err(EngineError::invalid(
                    "channel",
                    format!("at most {TEST_SMS_PER_DAY} test SMS a day; try again tomorrow"),
                ));
            }
            let month = local.strftime("%Y-%m").to_string();
            let segments = rappel_domain::sms::analyze(&rendered.text).segments.max(1) as i64;
            let quota = crate::dispatch::sms_quota(&ctx);
            if !tx
                .try_consume_sms(practice_id, &month, quota, segments)
                .await?
            {
                return Err(EngineError::invalid(
                    "channel",
                    "this month's SMS quota is spent; a test SMS counts against it",
                ));
            }
        }
        tx.commit().await?;
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| EngineError::invalid("to", e.to_string()))?;
        let message = OutboundMessage {
            id: format!("test-{}", hex::encode(id)),
            practice_id: practice_id.to_string(),
            channel,
            to: address.clone(),
            subject: rendered.subject.clone(),
            text: rendered.text.clone(),
            sender_name,
            calendar: None,
            html: rendered.html.clone(),
            push,
            letter: None,
            logo: None,
        };
        let transport = self
            .transport(channel)
            .expect("email, sms and push have one");
        let outcome = transport.send(&message).await;
        let (accepted, provider_id, error) = match outcome {
            Ok(receipt) => (true, receipt.provider_id, None),
            Err(error) => (false, None, Some(error.to_string())),
        };
        Ok(TestSend {
            kind,
            channel,
            to: address,
            rendered,
            accepted,
            provider_id,
            error,
        })
    }

    /// The practice and its sample: « Jeanne Exemple », tomorrow at 09:30 with the practice's
    /// first practitioner (or « Dr Exemple »).
    async fn sample(&self, practice_id: &str, locale: Locale) -> Result<(PracticeCtx, Sample)> {
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let practitioner = tx
            .practitioners(practice_id)
            .await?
            .into_iter()
            .next()
            .map(|p| p.name)
            .unwrap_or_else(|| "Dr Exemple".into());
        tx.commit().await?;
        let start = tomorrow_morning(&ctx, self.now());
        let mut sample = Sample::new(&ctx.row.name, &practitioner, start, locale);
        sample.tz = ctx.tz.clone();
        Ok((ctx, sample))
    }
}

fn view(rows: &[TemplateRow], kind: Kind, channel: Channel, locale: Locale) -> TemplateView {
    let mut parts_in_force = TemplateParts::default();
    let mut overridden = Vec::new();
    let mut updated_at = None;
    for &part in parts(channel) {
        let own = rows.iter().find(|r| {
            r.kind == kind.as_str()
                && r.channel == channel.as_str()
                && r.locale == locale.as_str()
                && r.part == part.as_str()
        });
        let source = match own {
            Some(row) => {
                overridden.push(part.as_str());
                updated_at = updated_at.max(Some(row.updated_at));
                row.source.clone()
            }
            None => default_source(kind, channel, locale, part).unwrap_or_default(),
        };
        parts_in_force.set(part, source);
    }
    TemplateView {
        kind,
        channel,
        locale: locale.as_str(),
        origin: if overridden.is_empty() {
            "default"
        } else {
            "practice"
        },
        overridden,
        parts: parts_in_force,
        updated_at,
    }
}
