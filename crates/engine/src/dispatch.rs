//! Dispatch: claim what is due, decide at that moment (window, quiet hours, contacts, quota),
//! render from the current facts, hand off with no transaction open, record the outcome.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use rappel_channels::{ChannelError, OutboundMessage};
use rappel_domain::facts::{Document, EmailDelivery};
use rappel_domain::gate;
use rappel_domain::notification::{Channel, Kind, Reason, Recipient};
use rappel_domain::plan::{SendDecision, send_decision};
use rappel_domain::policy::{InboxSpec, Trigger};
use rappel_domain::render::{AppointmentView, RenderInput, render};
use rappel_store::{InboxRow, NotificationRow, Status, Tx};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::ingest::replan;
use crate::practice::{PracticeCtx, load_practice};
use crate::{Engine, Result};

/// What the pre-send check concluded.
enum Prepared {
    Send(OutboundMessage, serde_json::Value),
    /// Handled without a provider (inbox entries, suppressions, deferrals).
    Done,
}

impl Engine {
    /// Claims one batch of due notifications and processes it. Returns how many were claimed.
    pub async fn dispatch_batch(&self) -> Result<usize> {
        let now = self.now();
        let lease_until = now + self.config().lease;
        let claimed = self
            .store()
            .claim_due(
                now,
                &self.config().worker_id,
                lease_until,
                self.config().batch,
            )
            .await?;
        let count = claimed.len();
        for row in claimed {
            if let Err(error) = self.process(row.clone()).await {
                // The lease expires and another attempt follows: nothing is lost.
                tracing::warn!(key = %row.key, %error, "dispatch failed; will retry after the lease");
            }
        }
        Ok(count)
    }

    /// Dispatches until nothing is due at the current instant.
    pub async fn dispatch_all_due(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let n = self.dispatch_batch().await?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }

    async fn process(&self, row: NotificationRow) -> Result<()> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let ctx = load_practice(&mut tx, &row.practice_id).await?;
        let prepared = self.prepare(&mut tx, &ctx, &row, now).await?;
        tx.commit().await?;
        let Prepared::Send(message, rendered) = prepared else {
            return Ok(());
        };
        let transport = match row.channel {
            Channel::Email => &self.inner.transports.email,
            Channel::Sms => &self.inner.transports.sms,
            Channel::Push => &self.inner.transports.push,
            Channel::Postal => &self.inner.transports.postal,
            Channel::Inbox => unreachable!("inbox entries are written in prepare"),
        };
        // No transaction is open across the provider call.
        let outcome = transport.send(&message).await;
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let mut row = row;
        row.lease_owner = None;
        row.lease_until = None;
        row.updated_at = now;
        match outcome {
            Ok(receipt) => {
                row.status = Status::Sent;
                row.decided_at = Some(now);
                row.rendered = Some(rendered);
                row.provider_id = receipt.provider_id;
                row.last_error = None;
                tx.update_notification(&row).await?;
                self.after_document_hand_off(&mut tx, &ctx, &row, now)
                    .await?;
                if row.channel != Channel::Inbox
                    && let Some(spec) = ctx.policy.rule(&row.rule).and_then(|r| r.inbox.as_ref())
                {
                    add_inbox(&mut tx, &ctx, &row, spec, now).await?;
                }
            }
            Err(error) => {
                self.record_failure(&mut tx, &ctx, &mut row, error, now)
                    .await?;
            }
        }
        tx.commit().await?;
        self.signal();
        Ok(())
    }

    async fn record_failure(
        &self,
        tx: &mut Tx,
        ctx: &PracticeCtx,
        row: &mut NotificationRow,
        error: ChannelError,
        now: Timestamp,
    ) -> Result<()> {
        row.last_error = Some(error.to_string());
        match error {
            ChannelError::Transient { retry_after, .. } => {
                // Exponential backoff with jitter, never past the moment the message stops being
                // useful: then it is not sent (`window_passed`), and the last error says why.
                let base =
                    SignedDuration::from_secs(30 * 2i64.pow(row.attempts.clamp(0, 10) as u32));
                let jitter = SignedDuration::from_millis(
                    (row.key.len() as i64 * 7919 + now.as_millisecond()) % 5000,
                );
                let wait = retry_after
                    .unwrap_or(base + jitter)
                    .min(SignedDuration::from_hours(6));
                let next = now + wait;
                if row.window_end.is_some_and(|end| next >= end) {
                    row.status = Status::Suppressed;
                    row.reason = Some(Reason::WindowPassed);
                    row.decided_at = Some(now);
                } else {
                    row.status = Status::Pending;
                    row.due_at = next;
                }
                tx.update_notification(row).await?;
            }
            ChannelError::Permanent(_) => {
                row.status = Status::Failed;
                row.decided_at = Some(now);
                tx.update_notification(row).await?;
                self.after_permanent_failure(tx, ctx, row, now).await?;
            }
        }
        Ok(())
    }

    /// A document email accepted by the mail system starts the document's unread timer.
    async fn after_document_hand_off(
        &self,
        tx: &mut Tx,
        ctx: &PracticeCtx,
        row: &NotificationRow,
        now: Timestamp,
    ) -> Result<()> {
        let Some(doc_id) = row
            .document
            .as_deref()
            .filter(|_| is_document_email(ctx, row))
        else {
            return Ok(());
        };
        let pid = ctx.row.id.as_str();
        if let Some(mut doc) = tx.document(pid, doc_id).await?
            && matches!(doc.email, EmailDelivery::Pending)
        {
            doc.email = EmailDelivery::Sent { at: now };
            tx.upsert_document(pid, &doc).await?;
            replan(tx, ctx, &doc.patient, now).await?;
        }
        Ok(())
    }

    /// A document email that cannot be delivered triggers the document-failure rules (postal
    /// resend, to-verify box) exactly as a bounce does.
    async fn after_permanent_failure(
        &self,
        tx: &mut Tx,
        ctx: &PracticeCtx,
        row: &NotificationRow,
        now: Timestamp,
    ) -> Result<()> {
        let Some(doc_id) = row
            .document
            .as_deref()
            .filter(|_| is_document_email(ctx, row))
        else {
            return Ok(());
        };
        let pid = ctx.row.id.as_str();
        if let Some(mut doc) = tx.document(pid, doc_id).await?
            && !matches!(doc.email, EmailDelivery::Failed { .. })
        {
            doc.email = EmailDelivery::Failed { at: now };
            tx.upsert_document(pid, &doc).await?;
            replan(tx, ctx, &doc.patient, now).await?;
        }
        Ok(())
    }

    /// Decides and, when the message must go, renders it. Runs in the claim's follow-up
    /// transaction; suppressions, deferrals and inbox entries are written here.
    async fn prepare(
        &self,
        tx: &mut Tx,
        ctx: &PracticeCtx,
        row: &NotificationRow,
        now: Timestamp,
    ) -> Result<Prepared> {
        let pid = ctx.row.id.as_str();
        let mut row = row.clone();
        row.lease_owner = None;
        row.lease_until = None;
        row.updated_at = now;
        match send_decision(ctx.plan_ctx(), row.channel, row.window_end, now) {
            SendDecision::Passed => {
                self.suppress(tx, ctx, &mut row, Reason::WindowPassed, now)
                    .await?;
                return Ok(Prepared::Done);
            }
            SendDecision::Defer(until) => {
                row.status = Status::Pending;
                row.due_at = until;
                row.attempts = row.attempts.saturating_sub(1);
                tx.update_notification(&row).await?;
                return Ok(Prepared::Done);
            }
            SendDecision::Send => {}
        }
        if tx.is_erased(pid, &row.patient_id).await? {
            self.suppress(tx, ctx, &mut row, Reason::PatientErased, now)
                .await?;
            return Ok(Prepared::Done);
        }
        let patient = tx.patient(pid, &row.patient_id).await?;
        let (address, recipient_practitioner) = match &row.recipient {
            Recipient::Patient(_) => {
                let Some(patient) = &patient else {
                    self.suppress(tx, ctx, &mut row, Reason::PatientErased, now)
                        .await?;
                    return Ok(Prepared::Done);
                };
                if let Err(reason) =
                    gate::check_patient(&ctx.policy, &ctx.settings, patient, row.channel)
                {
                    self.suppress(tx, ctx, &mut row, reason, now).await?;
                    return Ok(Prepared::Done);
                }
                let address = match row.channel {
                    Channel::Email => patient.email.clone().unwrap_or_default(),
                    Channel::Sms => patient
                        .mobile
                        .as_deref()
                        .and_then(|m| rappel_domain::contact::MobileNumber::parse(m).ok())
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                    Channel::Push => patient
                        .push_subscriptions
                        .first()
                        .map(|s| s.endpoint.clone())
                        .unwrap_or_else(|| "app".into()),
                    Channel::Postal => patient
                        .address
                        .as_ref()
                        .map(|a| a.window_block(&patient.display_name()).join("\n"))
                        .unwrap_or_default(),
                    Channel::Inbox => String::new(),
                };
                (address, None)
            }
            Recipient::Practitioner(id) => {
                let Some(p) = tx.practitioner(pid, id).await? else {
                    self.suppress(tx, ctx, &mut row, Reason::Superseded, now)
                        .await?;
                    return Ok(Prepared::Done);
                };
                if let Err(reason) = gate::check_practitioner(&p, row.channel) {
                    self.suppress(tx, ctx, &mut row, reason, now).await?;
                    return Ok(Prepared::Done);
                }
                let address = match row.channel {
                    Channel::Email => p.email.clone().unwrap_or_default(),
                    _ => p
                        .mobile
                        .as_deref()
                        .and_then(|m| rappel_domain::contact::MobileNumber::parse(m).ok())
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                };
                (address, Some(p))
            }
        };
        let rule = ctx.policy.rule(&row.rule);
        if row.channel == Channel::Inbox {
            if let Some(spec) = rule.and_then(|r| r.inbox.as_ref()) {
                add_inbox(tx, ctx, &row, spec, now).await?;
            }
            row.status = Status::Sent;
            row.decided_at = Some(now);
            tx.update_notification(&row).await?;
            return Ok(Prepared::Done);
        }
        // Render from the facts of this moment (late binding).
        let mut appointments = Vec::new();
        for id in &row.appointments {
            if let Some(a) = tx.appointment(pid, id).await? {
                appointments.push(a);
            }
        }
        let mut practitioners = BTreeMap::new();
        let mut motives = BTreeMap::new();
        for a in &appointments {
            if let Some(p) = tx.practitioner(pid, &a.practitioner).await? {
                practitioners.insert(p.id.clone(), p);
            }
            if let Some(m) = &a.motive
                && let Some(found) = tx.motive(pid, m).await?
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
        let rendered = render(&RenderInput {
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
            document_link: document.as_ref().map(|d| {
                format!(
                    "{}/d/{}",
                    self.config().public_url.trim_end_matches('/'),
                    link_token(&ctx.row.id, &d.id)
                )
            }),
            task_label: task_label.as_deref(),
            show_motive: ctx.settings.is_on("show_motive_in_sms"),
        });
        if row.channel == Channel::Sms {
            let segments = rappel_domain::sms::analyze(&rendered.text).segments.max(1) as i64;
            let month = now.to_zoned(ctx.tz.clone()).strftime("%Y-%m").to_string();
            if !tx
                .try_consume_sms(pid, &month, sms_quota(ctx), segments)
                .await?
            {
                self.suppress(tx, ctx, &mut row, Reason::QuotaExhausted, now)
                    .await?;
                return Ok(Prepared::Done);
            }
        }
        let message = OutboundMessage {
            id: row.key.clone(),
            practice_id: pid.to_string(),
            channel: row.channel,
            to: address,
            subject: rendered.subject.clone(),
            text: rendered.text.clone(),
            // An email's From shows the practice's name; `sms_sender` is the short alphanumeric
            // SMS sender ("CABINET" by default), which would look odd in a mailbox.
            sender_name: match row.channel {
                Channel::Email => ctx.row.name.clone(),
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
        let rendered = serde_json::to_value(&rendered).unwrap_or_else(|_| json!({}));
        Ok(Prepared::Send(message, rendered))
    }

    async fn suppress(
        &self,
        tx: &mut Tx,
        ctx: &PracticeCtx,
        row: &mut NotificationRow,
        reason: Reason,
        now: Timestamp,
    ) -> Result<()> {
        row.status = Status::Suppressed;
        row.reason = Some(reason);
        row.decided_at = Some(now);
        row.updated_at = now;
        tx.update_notification(row).await?;
        if let Some(spec) = ctx
            .policy
            .rule(&row.rule)
            .and_then(|r| r.inbox_if_not_sent.as_ref())
            && spec.reasons.contains(&reason)
        {
            add_inbox(tx, ctx, row, spec, now).await?;
        }
        // A document email that cannot go (no usable email) is a failed delivery.
        self.after_permanent_failure(tx, ctx, row, now).await
    }
}

/// The email that carries a document to its patient (not a letter, not another rule's email).
fn is_document_email(ctx: &PracticeCtx, row: &NotificationRow) -> bool {
    row.kind == Kind::Document
        && row.channel == Channel::Email
        && ctx
            .policy
            .rule(&row.rule)
            .is_some_and(|r| r.on == Trigger::DocumentSent)
}

/// The monthly SMS quota in force, if any (`[quota]` of the policy).
fn sms_quota(ctx: &PracticeCtx) -> Option<i64> {
    let spec = ctx.policy.quota.as_ref()?;
    if !spec
        .when
        .iter()
        .all(|(o, values)| ctx.settings.is_one_of(o, values))
    {
        return None;
    }
    ctx.settings.integer(&spec.sms_per_month)
}

/// The unguessable part of a document link. The documents issue replaces this derivation with
/// stored, expiring random tokens; it never contains the document itself.
fn link_token(practice_id: &str, document_id: &str) -> String {
    hex::encode(&Sha256::digest(format!("{practice_id}/{document_id}").as_bytes())[..16])
}

async fn add_inbox(
    tx: &mut Tx,
    ctx: &PracticeCtx,
    row: &NotificationRow,
    spec: &InboxSpec,
    now: Timestamp,
) -> Result<()> {
    let pid = ctx.row.id.as_str();
    let patient = tx.patient(pid, &row.patient_id).await?;
    let name = patient
        .map(|p| p.display_name())
        .unwrap_or_else(|| row.patient_id.clone());
    let title_of_doc = match &row.document {
        Some(id) => tx
            .document(pid, id)
            .await?
            .map(|d| d.title)
            .unwrap_or_default(),
        None => String::new(),
    };
    let days = ctx
        .policy
        .rule(&row.rule)
        .and_then(|r| r.timing.days_option.as_ref())
        .and_then(|o| ctx.settings.integer(o))
        .map(|d| d.to_string())
        .unwrap_or_default();
    let fill = |t: &str| {
        t.replace("{patient}", &name)
            .replace("{title}", &title_of_doc)
            .replace("{days}", &days)
    };
    let id = hex::encode(
        &Sha256::digest(format!("{}/{}", row.key, spec.inbox.as_str()).as_bytes())[..8],
    );
    tx.insert_inbox(&InboxRow {
        practice_id: pid.to_string(),
        id,
        inbox: spec.inbox.as_str().to_string(),
        document: row.document.clone(),
        patient_id: Some(row.patient_id.clone()),
        title: fill(&spec.title),
        text: fill(&spec.text),
        created_at: now,
        resolved_at: None,
    })
    .await?;
    Ok(())
}
