//! The read phase of one claimed row: whether it goes now, and what it says. `prepare` runs the
//! steps in order, each a function below: the answer to a patient's SMS (decided when the SMS
//! came), the send decision of this moment (window, quiet hours), the addressee (the gate and
//! the address), the content rendered from the facts of this moment with its links, the message
//! for its channel, and the copy kept for audit. Nothing is written here.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use rappel_channels::{LogoImage, OutboundMessage, PushTarget};
use rappel_domain::facts::{Appointment, Document, Patient, Practitioner};
use rappel_domain::gate::{self, Destination};
use rappel_domain::notification::{Channel, Kind, Reason, Recipient};
use rappel_domain::plan::{SendDecision, send_decision};
use rappel_domain::render::{AnswerLinks, AppointmentView, RenderInput, Rendered};
use rappel_domain::template::TemplateSet;
use rappel_store::{AppointmentLink, DocumentLink, NotificationRow, Status, Tx};
use serde::Serialize;

use super::{PracticeBatch, Ready, Settle, Step};
use crate::facts::FactCache;
use crate::practice::PracticeCtx;
use crate::{Engine, Result};

/// Whom a message goes to and where, as the gate allows it at this moment.
struct Addressee {
    /// The patient the row is about, also when it goes to a practitioner.
    patient: Option<Patient>,
    /// The address on the row's channel (empty for the notification centre).
    address: String,
    /// The practitioner a practitioner's alert goes to.
    practitioner: Option<Practitioner>,
}

/// A message rendered from the facts of this moment, with what its hand-off needs.
struct Content {
    appointments: Vec<Appointment>,
    practitioners: BTreeMap<String, Practitioner>,
    document: Option<Document>,
    /// A document email's personal link: the row the write phase stores…
    link: Option<DocumentLink>,
    /// …and the URL the email carries.
    document_link: Option<String>,
    /// The patient's link to confirm or cancel: its row, the URLs, the token.
    answer: Option<(AppointmentLink, AnswerLinks, String)>,
    rendered: Rendered,
    /// An SMS: the month (practice time) and the billable segments it takes from the quota.
    sms: Option<(String, i64)>,
}

impl Engine {
    /// Decides and, when the message must go, renders it. Reads only (`tx` is the read phase's
    /// transaction): what must be written is returned, for the write phase.
    pub(super) async fn prepare(
        &self,
        tx: &mut Tx,
        batch: &mut PracticeBatch,
        row: &NotificationRow,
        now: Timestamp,
    ) -> Result<Step> {
        let PracticeBatch {
            ctx,
            facts,
            templates,
            logo,
        } = batch;
        let ctx = &*ctx;
        // The claimed row is read as it is; a copy is made only for what is written: the row
        // as it goes (`Ready::row`) or as it is settled here (`released`).
        if crate::two_way::is_reply(row) {
            return Ok(reply(ctx, row, now));
        }
        if let Some(step) = decide_now(ctx, row, now) {
            return Ok(step);
        }
        let addressee = match addressee(tx, ctx, facts, row).await? {
            Ok(addressee) => addressee,
            Err(settle) => return Ok(Step::Settle(Box::new(released(row, now)), settle)),
        };
        let content = self
            .render_content(tx, ctx, facts, templates, row, &addressee, now)
            .await?;
        let (message, devices) = self
            .outbound_message(tx, ctx, logo, row, addressee, &content, now)
            .await?;
        let rendered = audit_copy(row, &message, &content);
        Ok(Step::Send(Box::new(Ready {
            row: row.clone(),
            message,
            rendered,
            sms: content.sms,
            link: content.link,
            answer_link: content.answer.map(|(link, _, _)| link),
            devices,
            gone: Vec::new(),
        })))
    }

    /// The message's content, rendered from the facts of this moment (late binding), with the
    /// personal links it carries and, for an SMS, what it takes from the quota.
    #[allow(clippy::too_many_arguments)]
    async fn render_content(
        &self,
        tx: &mut Tx,
        ctx: &PracticeCtx,
        facts: &mut FactCache,
        templates: &TemplateSet,
        row: &NotificationRow,
        addressee: &Addressee,
        now: Timestamp,
    ) -> Result<Content> {
        let pid = ctx.row.id.as_str();
        let Addressee {
            patient,
            practitioner: recipient_practitioner,
            ..
        } = addressee;
        // Render from the facts of this moment (late binding).
        let mut appointments = Vec::new();
        for id in &row.appointments {
            if let Some(a) = facts.appointment(tx, pid, id).await? {
                appointments.push(a);
            }
        }
        let mut practitioners = BTreeMap::new();
        let mut motives = BTreeMap::new();
        for a in &appointments {
            if let Some(p) = facts.practitioner(tx, pid, &a.practitioner).await? {
                practitioners.insert(p.id.clone(), p);
            }
            if let Some(m) = &a.motive
                && let Some(found) = facts.motive(tx, pid, m).await?
            {
                motives.insert(found.id.clone(), found);
            }
        }
        let document: Option<Document> = match &row.document {
            Some(id) => tx.document(pid, id).await?,
            None => None,
        };
        let task_label = match &row.task {
            Some(id) => tx.task(pid, id).await?.and_then(|t| {
                t.definition
                    .get("label")
                    .and_then(|l| l.as_str())
                    .map(String::from)
            }),
            None => None,
        };
        // A fresh, expiring link per email; letters and other channels carry none.
        let (link, document_link) = match (&document, row.channel) {
            (Some(d), Channel::Email) => {
                let (link, url) = self.new_document_link(pid, &d.id, now);
                (Some(link), Some(url))
            }
            _ => (None, None),
        };
        let answer =
            crate::answers::answer_link(ctx, row, &appointments, &self.config().public_url, now);
        let input = RenderInput {
            practice_name: &ctx.row.name,
            tz: &ctx.tz,
            kind: row.kind,
            channel: row.channel,
            patient: patient.as_ref(),
            practitioner: recipient_practitioner.as_ref(),
            appointments: appointments
                .iter()
                .map(|a| AppointmentView {
                    appointment: a,
                    practitioner: practitioners.get(&a.practitioner),
                    motive: a.motive.as_ref().and_then(|m| motives.get(m)),
                })
                .collect(),
            document: document.as_ref(),
            document_link: document_link.clone(),
            answer_links: answer.as_ref().map(|(_, links, _)| links.clone()),
            task_label: task_label.as_deref(),
            show_motive: ctx.settings.is_on("show_motive_in_sms"),
        };
        let rendered = crate::templates::render_using(pid, templates, &input);
        let sms = (row.channel == Channel::Sms).then(|| {
            let segments = rappel_domain::sms::analyze(&rendered.text).segments.max(1) as i64;
            let month = now.to_zoned(ctx.tz.clone()).strftime("%Y-%m").to_string();
            (month, segments)
        });
        Ok(Content {
            appointments,
            practitioners,
            document,
            link,
            document_link,
            answer,
            rendered,
            sms,
        })
    }

    /// The message for its channel: a letter's pages, a push message's devices (the first is
    /// the message's own), an email's logo, the sender's name, a confirmation's calendar entry.
    #[allow(clippy::too_many_arguments)]
    async fn outbound_message(
        &self,
        tx: &mut Tx,
        ctx: &PracticeCtx,
        logo: &mut Option<Option<Arc<LogoImage>>>,
        row: &NotificationRow,
        addressee: Addressee,
        content: &Content,
        now: Timestamp,
    ) -> Result<(OutboundMessage, Vec<PushTarget>)> {
        let pid = ctx.row.id.as_str();
        let Addressee {
            patient, address, ..
        } = addressee;
        let Content {
            appointments,
            practitioners,
            document,
            rendered,
            ..
        } = content;
        let letter = match row.channel {
            Channel::Postal => {
                self.document_letter(tx, ctx, patient.as_ref(), document.as_ref())
                    .await?
            }
            _ => None,
        };
        let devices: Vec<PushTarget> = match (row.channel, &row.recipient, &patient) {
            (Channel::Push, Recipient::Patient(_), Some(patient)) => patient
                .push_subscriptions
                .iter()
                .map(|s| PushTarget {
                    endpoint: s.endpoint.clone(),
                    p256dh: s.p256dh.clone(),
                    auth: s.auth.clone(),
                })
                .collect(),
            _ => Vec::new(),
        };
        let message = OutboundMessage {
            html: rendered.html.clone(),
            // The keys travel with the message: the push transport encrypts for them.
            push: devices.first().cloned().map(Box::new),
            letter,
            logo: if crate::logo::email_shows_logo(
                row.channel,
                row.kind,
                &row.recipient,
                appointments,
            ) {
                if logo.is_none() {
                    *logo = Some(crate::logo::logo_image(tx, pid).await?);
                }
                logo.clone().flatten()
            } else {
                None
            },
            id: row.key.clone(),
            practice_id: pid.to_string(),
            channel: row.channel,
            to: address,
            subject: rendered.subject.clone(),
            text: rendered.text.clone(),
            // An email's From shows the practice's name; `sms_sender` is the short alphanumeric
            // SMS sender ("CABINET" by default), which would look odd in a mailbox.
            sender_name: match row.channel {
                // A push notification without a subject is titled with the practice's name.
                Channel::Email | Channel::Push => ctx.row.name.clone(),
                _ => ctx
                    .settings
                    .text("sms_sender")
                    .unwrap_or(&ctx.row.name)
                    .to_string(),
            },
            // Confirmations and moves carry the appointment for the patient's calendar; its UID
            // stays the same when the appointment moves, so the calendar updates its entry.
            calendar: match (row.channel, row.kind) {
                (Channel::Email, Kind::Confirmation | Kind::Moved) => {
                    appointments.iter().find(|a| a.is_active()).map(|a| {
                        Box::new(rappel_channels::CalendarEvent {
                            uid: format!("{}@{pid}", a.id),
                            sequence: a.version,
                            stamp: now,
                            start: a.start,
                            end: a.end(),
                            summary: format!(
                                "Rendez-vous — {}",
                                practitioners
                                    .get(&a.practitioner)
                                    .map_or(ctx.row.name.as_str(), |p| p.name.as_str())
                            ),
                            location: a.location.clone(),
                        })
                    })
                }
                _ => None,
            },
        };
        Ok((message, devices))
    }
}

/// The claimed row as it is written when the read phase settles it: its lease given back.
fn released(claimed: &NotificationRow, now: Timestamp) -> NotificationRow {
    let mut row = claimed.clone();
    row.lease_owner = None;
    row.lease_until = None;
    row.updated_at = now;
    row
}

/// The answer to a patient's SMS: its text was decided when the SMS came (two_way.rs).
fn reply(ctx: &PracticeCtx, claimed: &NotificationRow, now: Timestamp) -> Step {
    match crate::two_way::reply_message(ctx, claimed, now) {
        Ok((message, rendered, sms)) => Step::Send(Box::new(Ready {
            row: claimed.clone(),
            message,
            rendered: rendered.to_string(),
            sms: Some(sms),
            link: None,
            answer_link: None,
            devices: Vec::new(),
            gone: Vec::new(),
        })),
        Err(reason) => Step::Settle(Box::new(released(claimed, now)), Settle::Suppress(reason)),
    }
}

/// The send decision of this moment: `None` when the row may go now, else how it is settled (a
/// passed window; quiet hours, after which the row is pending again).
fn decide_now(ctx: &PracticeCtx, claimed: &NotificationRow, now: Timestamp) -> Option<Step> {
    match send_decision(
        ctx.plan_ctx(),
        claimed.kind,
        claimed.channel,
        claimed.window_end,
        now,
    ) {
        SendDecision::Passed => Some(Step::Settle(
            Box::new(released(claimed, now)),
            Settle::Suppress(Reason::WindowPassed),
        )),
        SendDecision::Defer(until) => {
            let mut row = released(claimed, now);
            row.status = Status::Pending;
            row.due_at = until;
            row.attempts = row.attempts.saturating_sub(1);
            Some(Step::Settle(Box::new(row), Settle::Defer))
        }
        SendDecision::Send => None,
    }
}

/// Whom the row goes to and where, or how it is settled when it must not go: an erased patient,
/// a contact or switch the gate refuses, a practitioner no longer known; an inbox entry, which
/// goes to no one.
async fn addressee(
    tx: &mut Tx,
    ctx: &PracticeCtx,
    facts: &mut FactCache,
    row: &NotificationRow,
) -> Result<std::result::Result<Addressee, Settle>> {
    let pid = ctx.row.id.as_str();
    if facts.is_erased(tx, pid, &row.patient_id).await? {
        return Ok(Err(Settle::Suppress(Reason::PatientErased)));
    }
    let patient = facts.patient(tx, pid, &row.patient_id).await?;
    let (address, recipient_practitioner) = match &row.recipient {
        Recipient::Patient(_) => {
            let Some(patient) = &patient else {
                return Ok(Err(Settle::Suppress(Reason::PatientErased)));
            };
            let destination = gate::check_patient(&ctx.policy, &ctx.settings, patient, row.channel);
            match destination.map(|d| address_of(d, &patient.display_name())) {
                Err(reason) => return Ok(Err(Settle::Suppress(reason))),
                Ok(None) => return Ok(Err(Settle::Inbox)),
                Ok(Some(address)) => (address, None),
            }
        }
        Recipient::Practitioner(id) => {
            let Some(p) = facts.practitioner(tx, pid, id).await? else {
                return Ok(Err(Settle::Suppress(Reason::Superseded)));
            };
            match gate::check_practitioner(&p, row.channel).map(|d| address_of(d, &p.name)) {
                Err(reason) => return Ok(Err(Settle::Suppress(reason))),
                Ok(None) => return Ok(Err(Settle::Inbox)),
                Ok(Some(address)) => (address, Some(p)),
            }
        }
    };
    Ok(Ok(Addressee {
        patient,
        address,
        practitioner: recipient_practitioner,
    }))
}

/// The address a transport is handed for what the gate allows, built from the parsed contact
/// (never blank, so a message cannot go to an empty address); `None` for an inbox entry, which
/// goes to no one. `name` heads a letter's address block.
fn address_of(destination: Destination<'_>, name: &str) -> Option<String> {
    Some(match destination {
        Destination::Email(email) => email.to_string(),
        Destination::Sms(mobile) => mobile.e164().to_string(),
        // A patient with several subscriptions (a phone and a laptop) is reached on each
        // (`send_to_every_device`); this is the first. Without one (`push = true` in a scenario:
        // the practice's own app), the message goes to `app` through the outbox.
        Destination::Push(devices) => devices
            .first()
            .map(|s| s.endpoint.clone())
            .unwrap_or_else(|| "app".into()),
        Destination::Postal(address) => address.window_block(name).join("\n"),
        Destination::Inbox => return None,
    })
}

/// The copy of the rendered message kept for audit, as the JSON text stored with the row: the
/// rendered parts, with the personal links' tokens masked, where it went and, for an SMS, how
/// many SMS it is billed as.
///
/// Serialized once, straight from the rendered strings: building a `serde_json::Value` of the
/// copy (each text copied into it), cloning it into the row and serializing it at the write was
/// about 6 % of the process's CPU samples in an SQLite burst (issue 18, session 19). The fields
/// come in the order a `Value`'s map gave them (sorted by name), so a copy is the same text as
/// before and packs as well against the dictionary made from such copies
/// (`audit_dictionary_1.json` in the store).
fn audit_copy(row: &NotificationRow, message: &OutboundMessage, content: &Content) -> String {
    let Content {
        rendered,
        sms,
        document_link,
        answer,
        ..
    } = content;
    // A link is a capability: the copy kept for audit must not open the document, nor confirm
    // or cancel the appointment. Its token is masked in every text of the message (the HTML
    // body escapes the link's slashes, never the token's URL-safe characters). Masked in the
    // strings themselves, before the copy becomes JSON: a round trip of the whole copy through
    // JSON text per link was a tenth of the dispatcher's own time (issue 18, session 12).
    let tokens: Vec<&str> = document_link
        .as_deref()
        .and_then(|l| l.rsplit('/').next())
        .into_iter()
        .chain(answer.as_ref().map(|(_, _, token)| token.as_str()))
        .filter(|token| !token.is_empty())
        .collect();
    let mask = |text| masked(text, &tokens);
    // For the audit view: where it went (the address of the moment, which the file may change
    // later) and, for an SMS, how many SMS it is billed as. Erasure forgets both with the rest
    // of `rendered`.
    let copy = AuditCopy {
        billed_sms: sms.as_ref().map(|(_, segments)| *segments),
        html: rendered.html.as_deref().map(mask),
        subject: rendered.subject.as_deref().map(mask),
        template_errors: rendered.template_errors.iter().map(|e| mask(e)).collect(),
        text: mask(&rendered.text),
        to: (matches!(row.channel, Channel::Email | Channel::Sms) && !message.to.is_empty())
            .then_some(message.to.as_str()),
    };
    // Strings and integers only: serializing cannot fail.
    serde_json::to_string(&copy).unwrap_or_else(|_| "{}".into())
}

/// `text` with every token replaced, borrowed when it holds none.
fn masked<'t>(text: &'t str, tokens: &[&str]) -> Cow<'t, str> {
    if tokens.iter().any(|token| text.contains(token)) {
        Cow::Owned(tokens.iter().fold(text.to_string(), |text, token| {
            text.replace(token, "lien-personnel")
        }))
    } else {
        Cow::Borrowed(text)
    }
}

/// The audit copy as it is stored: [`Rendered`]'s parts, then `to` and `billed_sms`, every
/// field named as before and in the order of their names (see [`audit_copy`]).
#[derive(Serialize)]
struct AuditCopy<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    billed_sms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    html: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    template_errors: Vec<Cow<'a, str>>,
    text: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rappel_domain::notification::Kind;
    use serde_json::json;

    fn row(channel: Channel) -> NotificationRow {
        NotificationRow::pending(
            "cab",
            "a:rdv-1/confirmation/email".into(),
            "p1",
            "confirmation",
            Kind::Confirmation,
            channel,
            "2026-03-01T09:00:00Z".parse().unwrap(),
        )
    }

    fn message(channel: Channel, to: &str) -> OutboundMessage {
        OutboundMessage {
            id: "k".into(),
            practice_id: "cab".into(),
            channel,
            to: to.into(),
            subject: None,
            text: String::new(),
            html: None,
            sender_name: String::new(),
            calendar: None,
            push: None,
            letter: None,
            logo: None,
        }
    }

    fn content(rendered: Rendered, document_link: Option<&str>, sms: Option<i64>) -> Content {
        Content {
            appointments: Vec::new(),
            practitioners: BTreeMap::new(),
            document: None,
            link: None,
            document_link: document_link.map(String::from),
            answer: None,
            rendered,
            sms: sms.map(|segments| ("2026-03".to_string(), segments)),
        }
    }

    /// The copy is the text the earlier `serde_json::Value` of it serialized to, byte for byte
    /// (the order of its fields included), so it packs against the dictionary made from such
    /// copies as it did; the token of a personal link is masked in every part.
    #[test]
    fn the_audit_copy_is_the_text_its_value_was() {
        let token = "AbCdEfGhIjKlMnOp";
        let link = format!("https://rappel.example/d/{token}");
        let email = Rendered {
            subject: Some("Votre document « bilan »".into()),
            text: format!("Bonjour,\nLien : {link}\n"),
            html: Some(format!("<a href=\"{link}\">Consulter</a> \"é\" \\ \u{1}")),
            template_errors: vec![format!("text: {token} inconnu")],
        };
        let copy = audit_copy(
            &row(Channel::Email),
            &message(Channel::Email, "jeanne@example.org"),
            &content(email, Some(&link), None),
        );
        let mut expected = json!({
            "subject": "Votre document « bilan »",
            "text": "Bonjour,\nLien : https://rappel.example/d/lien-personnel\n",
            "html": "<a href=\"https://rappel.example/d/lien-personnel\">Consulter</a> \"é\" \\ \u{1}",
            "template_errors": ["text: lien-personnel inconnu"],
        });
        expected["to"] = json!("jeanne@example.org");
        assert_eq!(copy, expected.to_string());

        let sms = Rendered {
            subject: None,
            text: "RDV demain 09h30".into(),
            html: None,
            template_errors: Vec::new(),
        };
        let copy = audit_copy(
            &row(Channel::Sms),
            &message(Channel::Sms, "+33612345678"),
            &content(sms, None, Some(2)),
        );
        assert_eq!(
            copy,
            json!({"text": "RDV demain 09h30", "to": "+33612345678", "billed_sms": 2}).to_string()
        );

        // A push message names no address in its copy.
        let push = Rendered {
            subject: Some("Cabinet".into()),
            text: "RDV demain".into(),
            html: None,
            template_errors: Vec::new(),
        };
        let copy = audit_copy(
            &row(Channel::Push),
            &message(Channel::Push, "https://push.example/abc"),
            &content(push, None, None),
        );
        assert_eq!(copy, r#"{"subject":"Cabinet","text":"RDV demain"}"#);
    }
}
