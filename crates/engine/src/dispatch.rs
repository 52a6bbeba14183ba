//! Dispatch: claim what is due, decide at that moment (window, quiet hours, contacts, quota),
//! render from the current facts, hand off with no transaction open, record the outcome.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use rappel_channels::{ChannelError, LogoImage, OutboundMessage, PushTarget, Receipt, Transport};
use rappel_domain::facts::{Document, EmailDelivery};
use rappel_domain::gate::{self, Destination};
use rappel_domain::notification::{Channel, Kind, Reason, Recipient};
use rappel_domain::plan::{SendDecision, send_decision};
use rappel_domain::policy::{InboxBox, InboxSpec, Trigger};
use rappel_domain::render::{AppointmentView, RenderInput};
use rappel_domain::template::{MONTHS_FR, TemplateSet};
use rappel_store::{DocumentLink, InboxRow, NotificationRow, Status, Tx};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::facts::FactCache;
use crate::ingest::replan;
use crate::practice::{PracticeCtx, load_practice};
use crate::{Engine, Result};

/// What the read phase of a dispatch concluded for one claimed row.
enum Step {
    /// Settled without a provider; the write phase records it.
    Settle(Box<NotificationRow>, Settle),
    /// The message must go. Boxed: it is large.
    Send(Box<Ready>),
}

/// How a row is settled without a provider.
enum Settle {
    /// Not sent, for this reason.
    Suppress(Reason),
    /// Not yet (quiet hours): pending again at the row's new `due_at`.
    Defer,
    /// A notification-centre entry rather than a message: written, and the row marked sent.
    Inbox,
}

/// What the rows of one practice in a dispatch batch read, loaded once for the batch.
struct PracticeBatch {
    ctx: PracticeCtx,
    facts: FactCache,
    templates: TemplateSet,
    /// The practice's logo, read on first use (`None` until then).
    logo: Option<Option<Arc<LogoImage>>>,
}

impl PracticeBatch {
    /// The practice, its templates, and the facts its rows among `rows` refer to.
    async fn load(
        tx: &mut Tx,
        practice_id: &str,
        rows: &[NotificationRow],
    ) -> Result<PracticeBatch> {
        let ctx = load_practice(tx, practice_id).await?;
        let templates = crate::templates::load_templates(tx, practice_id).await?;
        let mine: Vec<&NotificationRow> = rows
            .iter()
            .filter(|r| r.practice_id == practice_id)
            .collect();
        let mut facts = FactCache::default();
        facts
            .load(
                tx,
                practice_id,
                mine.iter().map(|r| &r.patient_id),
                mine.iter().filter_map(|r| match &r.recipient {
                    Recipient::Practitioner(id) => Some(id),
                    Recipient::Patient(_) => None,
                }),
                [],
                mine.iter().flat_map(|r| &r.appointments),
            )
            .await?;
        facts.load_references(tx, practice_id).await?;
        Ok(PracticeBatch {
            ctx,
            facts,
            templates,
            logo: None,
        })
    }
}

/// A claimed notification that must go, rendered and ready for its channel.
struct Ready {
    row: NotificationRow,
    message: OutboundMessage,
    rendered: serde_json::Value,
    /// An SMS: the month (practice time) and the billable segments it takes from the quota,
    /// taken by the write phase before it goes.
    sms: Option<(String, i64)>,
    /// An email that carries a document: its personal link, stored by the write phase before
    /// the email goes.
    link: Option<DocumentLink>,
    /// A confirmation or reminder that carries the patient's link to confirm or cancel
    /// (`crate::answers`), stored by the write phase before the message goes.
    answer_link: Option<rappel_store::AppointmentLink>,
    /// A push message: every subscription (device) of the patient; `message.push` is the first.
    devices: Vec<PushTarget>,
    /// The subscriptions the push service said no longer exist, filled by the hand-off.
    gone: Vec<String>,
}

impl Engine {
    /// Claims one batch of due notifications and processes it. Returns how many were claimed.
    ///
    /// The batch takes three steps and never holds a transaction across a provider call: every
    /// claimed message is decided and rendered (reading in a read-only transaction, writing
    /// only what must be written before a hand-off), the hand-offs run concurrently, and one
    /// transaction records every outcome. Batching the database work is what lets one worker
    /// dispatch thousands of messages a second on SQLite.
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
        if count > 0 {
            self.process_batch(claimed).await;
            self.signal();
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

    async fn process_batch(&self, rows: Vec<NotificationRow>) {
        let ready = match self.prepare_all(&rows).await {
            Ok(ready) => ready,
            Err(error) if rows.len() > 1 => {
                // Nothing was sent: retry the rows one by one, so that one row that cannot be
                // processed does not hold the others back.
                tracing::warn!(%error, "batch preparation failed; processing its rows one by one");
                for row in rows {
                    Box::pin(self.process_batch(vec![row])).await;
                }
                return;
            }
            Err(error) => {
                // Its lease expires and another attempt follows: nothing is lost.
                tracing::warn!(key = %rows[0].key, %error, "dispatch failed; will retry after the lease");
                return;
            }
        };
        if ready.is_empty() {
            return;
        }
        let outcomes = self.send_all(ready).await;
        let handed_off = self.now();
        for (ready, outcome) in &outcomes {
            self.inner.stats.record(
                ready.row.channel,
                outcome.as_ref().map(|_| ()),
                ready.row.due_at,
                handed_off,
            );
        }
        if let Err(error) = self.record_all(&outcomes).await {
            // The messages are gone: record each outcome on its own rather than send again.
            tracing::warn!(%error, "recording a batch failed; recording its rows one by one");
            for outcome in &outcomes {
                if let Err(error) = self.record_all(std::slice::from_ref(outcome)).await {
                    tracing::error!(key = %outcome.0.row.key, %error, "cannot record a hand-off; the lease will expire and the message may be sent again");
                }
            }
        }
    }

    /// Decides and renders every claimed row, in two phases.
    ///
    /// The read phase runs in a read-only transaction: the facts of the whole batch (patients,
    /// appointments, practitioners, motives), each practice's templates and logo are read once,
    /// not once per row, and every row is decided and rendered. On SQLite it does not take the
    /// write turn, so one worker renders while another claims or records.
    ///
    /// The write phase, one write transaction, runs only when a row needs one: suppressions,
    /// deferrals and inbox entries, the SMS quota (taken atomically; an SMS over it is
    /// suppressed instead of sent), and the personal links of document emails. A batch of plain
    /// emails, push messages and letters writes nothing before its hand-offs.
    async fn prepare_all(&self, rows: &[NotificationRow]) -> Result<Vec<Ready>> {
        let now = self.now();
        let mut tx = self.store().begin_read().await?;
        let mut practices: BTreeMap<String, PracticeBatch> = BTreeMap::new();
        for row in rows {
            if !practices.contains_key(&row.practice_id) {
                let batch = PracticeBatch::load(&mut tx, &row.practice_id, rows).await?;
                practices.insert(row.practice_id.clone(), batch);
            }
        }
        let mut steps = Vec::with_capacity(rows.len());
        for row in rows {
            let batch = practices.get_mut(&row.practice_id).expect("loaded above");
            steps.push(self.prepare(&mut tx, batch, row, now).await?);
        }
        tx.commit().await?;
        let writes = steps.iter().any(|step| match step {
            Step::Settle(..) => true,
            Step::Send(ready) => {
                ready.sms.is_some() || ready.link.is_some() || ready.answer_link.is_some()
            }
        });
        if !writes {
            return Ok(steps
                .into_iter()
                .filter_map(|step| match step {
                    Step::Send(ready) => Some(*ready),
                    Step::Settle(..) => None,
                })
                .collect());
        }
        let mut tx = self.store().begin().await?;
        let mut ready = Vec::with_capacity(steps.len());
        for step in steps {
            match step {
                Step::Settle(mut row, settle) => {
                    let ctx = &practices[&row.practice_id].ctx;
                    self.settle(&mut tx, ctx, &mut row, settle, now).await?;
                }
                Step::Send(item) => {
                    let ctx = &practices[&item.row.practice_id].ctx;
                    let pid = ctx.row.id.as_str();
                    if let Some((month, segments)) = &item.sms {
                        let quota = sms_quota(ctx);
                        if !tx.try_consume_sms(pid, month, quota, *segments).await? {
                            let mut row = item.row.clone();
                            row.lease_owner = None;
                            row.lease_until = None;
                            self.suppress(&mut tx, ctx, &mut row, Reason::QuotaExhausted, now)
                                .await?;
                            if let Some(limit) = quota {
                                sms_quota_alert(&mut tx, pid, month, limit, true, now).await?;
                            }
                            continue;
                        }
                        if let Some(limit) = quota {
                            sms_quota_alert(&mut tx, pid, month, limit, false, now).await?;
                        }
                    }
                    if let Some(link) = &item.link {
                        tx.insert_document_link(link).await?;
                    }
                    if let Some(link) = &item.answer_link {
                        tx.insert_appointment_link(link).await?;
                    }
                    ready.push(*item);
                }
            }
        }
        tx.commit().await?;
        Ok(ready)
    }

    /// Records a row that the read phase settled without a provider.
    async fn settle(
        &self,
        tx: &mut Tx,
        ctx: &PracticeCtx,
        row: &mut NotificationRow,
        settle: Settle,
        now: Timestamp,
    ) -> Result<()> {
        match settle {
            Settle::Suppress(reason) => self.suppress(tx, ctx, row, reason, now).await,
            Settle::Defer => Ok(tx.update_notification(row).await?),
            Settle::Inbox => {
                if let Some(spec) = ctx.policy.rule(&row.rule).and_then(|r| r.inbox.as_ref()) {
                    add_inbox(tx, ctx, row, spec, now).await?;
                }
                row.status = Status::Sent;
                row.decided_at = Some(now);
                Ok(tx.update_notification(row).await?)
            }
        }
    }

    /// Hands every ready message to its channel, concurrently.
    async fn send_all(
        &self,
        ready: Vec<Ready>,
    ) -> Vec<(
        Ready,
        std::result::Result<rappel_channels::Receipt, ChannelError>,
    )> {
        let mut tasks = tokio::task::JoinSet::new();
        let mut slots: Vec<
            Option<(
                Ready,
                std::result::Result<rappel_channels::Receipt, ChannelError>,
            )>,
        > = Vec::new();
        for (index, item) in ready.into_iter().enumerate() {
            let transport = match item.row.channel {
                Channel::Email => self.inner.transports.email.clone(),
                Channel::Sms => self.inner.transports.sms.clone(),
                Channel::Push => self.inner.transports.push.clone(),
                Channel::Postal => self.inner.transports.postal.clone(),
                Channel::Inbox => unreachable!("inbox entries are written in prepare"),
            };
            slots.push(None);
            tasks.spawn(async move {
                let mut item = item;
                let outcome = if item.devices.len() > 1 {
                    send_to_every_device(&transport, &mut item).await
                } else {
                    let outcome = transport.send(&item.message).await;
                    if let (Err(ChannelError::Gone(_)), Some(target)) =
                        (&outcome, item.message.push.as_deref())
                    {
                        item.gone.push(target.endpoint.clone());
                    }
                    outcome
                };
                (index, item, outcome)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((index, item, outcome)) => slots[index] = Some((item, outcome)),
                // A transport that panicked: the row keeps its lease and is retried after it.
                Err(error) => tracing::error!(%error, "a channel panicked during a hand-off"),
            }
        }
        slots.into_iter().flatten().collect()
    }

    /// Records every outcome in one transaction. Hand-offs that need nothing but their row
    /// written (the common case) are written together; any other outcome first writes those
    /// collected before it, so every row is recorded in the order of the batch, as one by one.
    async fn record_all(
        &self,
        outcomes: &[(
            Ready,
            std::result::Result<rappel_channels::Receipt, ChannelError>,
        )],
    ) -> Result<()> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let mut practices: BTreeMap<String, (PracticeCtx, Option<bool>)> = BTreeMap::new();
        let mut plain: Vec<NotificationRow> = Vec::new();
        for (ready, outcome) in outcomes {
            let pid = &ready.row.practice_id;
            if !practices.contains_key(pid) {
                let ctx = load_practice(&mut tx, pid).await?;
                practices.insert(pid.clone(), (ctx, None));
            }
            let (ctx, has_endpoint) = practices.get_mut(pid).expect("loaded above");
            let mut row = ready.row.clone();
            row.lease_owner = None;
            row.lease_until = None;
            row.updated_at = now;
            match outcome {
                Ok(receipt) => {
                    // Whose message a reply from this number answers (two-way SMS).
                    if row.channel == Channel::Sms
                        && matches!(row.recipient, Recipient::Patient(_))
                        && !ready.message.to.is_empty()
                    {
                        tx.record_sms_sent(&ready.message.to, pid, &row.patient_id, &row.key, now)
                            .await?;
                    }
                    row.status = Status::Sent;
                    row.decided_at = Some(now);
                    row.rendered = Some(ready.rendered.clone());
                    row.provider_id = receipt.provider_id.clone();
                    row.last_error = None;
                    let inbox = ctx.policy.rule(&row.rule).and_then(|r| r.inbox.as_ref());
                    // A cost (letters) is written beside the row, so it leaves the fast path.
                    if inbox.is_none()
                        && !is_document_email(ctx, &row)
                        && receipt.cost_cents.is_none()
                        && ready.gone.is_empty()
                    {
                        crate::webhooks::notification_status_with(&mut tx, has_endpoint, &row, now)
                            .await?;
                        plain.push(row);
                        continue;
                    }
                    tx.update_notification_outcomes(&std::mem::take(&mut plain))
                        .await?;
                    tx.update_notification(&row).await?;
                    if let Some(cents) = receipt.cost_cents {
                        tx.set_notification_cost(pid, &row.key, i64::from(cents))
                            .await?;
                    }
                    self.after_document_hand_off(&mut tx, ctx, &row, now)
                        .await?;
                    if let Some(spec) = inbox {
                        add_inbox(&mut tx, ctx, &row, spec, now).await?;
                    }
                }
                Err(error) => {
                    tx.update_notification_outcomes(&std::mem::take(&mut plain))
                        .await?;
                    self.record_failure(&mut tx, ctx, &mut row, error.clone(), now)
                        .await?;
                }
            }
            for endpoint in &ready.gone {
                forget_push_subscription(&mut tx, ctx, &row.patient_id, endpoint, now).await?;
            }
            crate::webhooks::notification_status_with(&mut tx, has_endpoint, &row, now).await?;
        }
        tx.update_notification_outcomes(&plain).await?;
        tx.commit().await?;
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
                if row
                    .kind
                    .expires_at(row.window_end)
                    .is_some_and(|end| next >= end)
                {
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
            // The subscription itself is forgotten by the caller (`Ready::gone`).
            ChannelError::Gone(_) => {
                row.status = Status::Failed;
                row.decided_at = Some(now);
                tx.update_notification(row).await?;
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

    /// Decides and, when the message must go, renders it. Reads only (`tx` is the read phase's
    /// transaction): what must be written is returned, for the write phase.
    async fn prepare(
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
        let pid = ctx.row.id.as_str();
        let claimed = row;
        let mut row = row.clone();
        row.lease_owner = None;
        row.lease_until = None;
        row.updated_at = now;
        // The answer to a patient's SMS: its text was decided when the SMS came (two_way.rs).
        if crate::two_way::is_reply(&row) {
            return Ok(match crate::two_way::reply_message(ctx, &row, now) {
                Ok((message, rendered, sms)) => Step::Send(Box::new(Ready {
                    row: claimed.clone(),
                    message,
                    rendered,
                    sms: Some(sms),
                    link: None,
                    answer_link: None,
                    devices: Vec::new(),
                    gone: Vec::new(),
                })),
                Err(reason) => Step::Settle(Box::new(row), Settle::Suppress(reason)),
            });
        }
        match send_decision(ctx.plan_ctx(), row.kind, row.channel, row.window_end, now) {
            SendDecision::Passed => {
                return Ok(Step::Settle(
                    Box::new(row),
                    Settle::Suppress(Reason::WindowPassed),
                ));
            }
            SendDecision::Defer(until) => {
                row.status = Status::Pending;
                row.due_at = until;
                row.attempts = row.attempts.saturating_sub(1);
                return Ok(Step::Settle(Box::new(row), Settle::Defer));
            }
            SendDecision::Send => {}
        }
        if facts.is_erased(tx, pid, &row.patient_id).await? {
            return Ok(Step::Settle(
                Box::new(row),
                Settle::Suppress(Reason::PatientErased),
            ));
        }
        let patient = facts.patient(tx, pid, &row.patient_id).await?;
        let (address, recipient_practitioner) = match &row.recipient {
            Recipient::Patient(_) => {
                let Some(patient) = &patient else {
                    return Ok(Step::Settle(
                        Box::new(row),
                        Settle::Suppress(Reason::PatientErased),
                    ));
                };
                let destination =
                    gate::check_patient(&ctx.policy, &ctx.settings, patient, row.channel);
                match destination.map(|d| address_of(d, &patient.display_name())) {
                    Err(reason) => {
                        return Ok(Step::Settle(Box::new(row), Settle::Suppress(reason)));
                    }
                    Ok(None) => return Ok(Step::Settle(Box::new(row), Settle::Inbox)),
                    Ok(Some(address)) => (address, None),
                }
            }
            Recipient::Practitioner(id) => {
                let Some(p) = facts.practitioner(tx, pid, id).await? else {
                    return Ok(Step::Settle(
                        Box::new(row),
                        Settle::Suppress(Reason::Superseded),
                    ));
                };
                match gate::check_practitioner(&p, row.channel).map(|d| address_of(d, &p.name)) {
                    Err(reason) => {
                        return Ok(Step::Settle(Box::new(row), Settle::Suppress(reason)));
                    }
                    Ok(None) => return Ok(Step::Settle(Box::new(row), Settle::Inbox)),
                    Ok(Some(address)) => (address, Some(p)),
                }
            }
        };
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
            crate::answers::answer_link(ctx, &row, &appointments, &self.config().public_url, now);
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
                &appointments,
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
        let mut rendered = serde_json::to_value(&rendered).unwrap_or_else(|_| json!({}));
        // For the audit view: where it went (the address of the moment, which the file may
        // change later) and, for an SMS, how many SMS it is billed as. Erasure forgets both with
        // the rest of `rendered`.
        if let Some(map) = rendered.as_object_mut() {
            if matches!(row.channel, Channel::Email | Channel::Sms) && !message.to.is_empty() {
                map.insert("to".into(), json!(message.to));
            }
            if let Some((_, segments)) = &sms {
                map.insert("billed_sms".into(), json!(segments));
            }
        }
        // The link is a capability: the copy kept for audit must not open the document.
        // The token itself is masked: the HTML body escapes the link's slashes.
        if let Some(token) = document_link.as_deref().and_then(|l| l.rsplit('/').next())
            && let Ok(text) = serde_json::to_string(&rendered)
            && let Ok(masked) = serde_json::from_str(&text.replace(token, "lien-personnel"))
        {
            rendered = masked;
        }
        // The same for the patient's link to confirm or cancel.
        if let Some((_, _, token)) = &answer
            && let Ok(text) = serde_json::to_string(&rendered)
            && let Ok(masked) =
                serde_json::from_str(&text.replace(token.as_str(), "lien-personnel"))
        {
            rendered = masked;
        }
        Ok(Step::Send(Box::new(Ready {
            row: claimed.clone(),
            message,
            rendered,
            sms,
            link,
            answer_link: answer.map(|(link, _, _)| link),
            devices,
            gone: Vec::new(),
        })))
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
        crate::webhooks::notification_status(tx, row, now).await?;
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

/// Hands a push message to each of the patient's devices, concurrently.
///
/// The message is sent when one device accepted it: a device that failed meanwhile is not
/// tried again, since the patient has it on another. Subscriptions the push service says are
/// gone are forgotten whatever the others answered (`Ready::gone`). When no device accepted
/// it, a transient error wins (the message is retried later, on the devices left), then a
/// permanent one, and only when every device is gone does the message fail as gone.
async fn send_to_every_device(
    transport: &Arc<dyn Transport>,
    item: &mut Ready,
) -> std::result::Result<Receipt, ChannelError> {
    let mut tasks = tokio::task::JoinSet::new();
    for device in &item.devices {
        let mut message = item.message.clone();
        message.to = device.endpoint.clone();
        message.push = Some(Box::new(device.clone()));
        let transport = transport.clone();
        tasks.spawn(async move {
            let outcome = transport.send(&message).await;
            (message.to, outcome)
        });
    }
    let mut accepted = None;
    let mut transient = None;
    let mut permanent = None;
    let mut gone = None;
    while let Some(joined) = tasks.join_next().await {
        let (endpoint, outcome) = match joined {
            Ok(done) => done,
            Err(error) => (
                String::new(),
                Err(ChannelError::Transient {
                    reason: format!("the push channel panicked: {error}"),
                    retry_after: None,
                }),
            ),
        };
        match outcome {
            Ok(receipt) => {
                accepted.get_or_insert(receipt);
            }
            Err(error @ ChannelError::Transient { .. }) => {
                transient.get_or_insert(error);
            }
            Err(error @ ChannelError::Permanent(_)) => {
                permanent.get_or_insert(error);
            }
            Err(error @ ChannelError::Gone(_)) => {
                item.gone.push(endpoint);
                gone.get_or_insert(error);
            }
        }
    }
    item.gone.sort_unstable();
    match (accepted, transient, permanent, gone) {
        (Some(receipt), ..) => Ok(receipt),
        (None, Some(error), ..)
        | (None, None, Some(error), _)
        | (None, None, None, Some(error)) => Err(error),
        (None, None, None, None) => Err(ChannelError::Transient {
            reason: "no device answered".into(),
            retry_after: None,
        }),
    }
}

/// The push service says this subscription no longer exists: the patient forgets it and is
/// re-planned, so their later push messages go to their next subscription or, with none left,
/// are re-planned for a patient without push instead of failing one by one.
async fn forget_push_subscription(
    tx: &mut Tx,
    ctx: &PracticeCtx,
    patient_id: &str,
    endpoint: &str,
    now: Timestamp,
) -> Result<()> {
    let pid = ctx.row.id.as_str();
    let Some(mut patient) = tx.patient_for_update(pid, patient_id).await? else {
        return Ok(());
    };
    let before = patient.push_subscriptions.len();
    patient
        .push_subscriptions
        .retain(|s| s.endpoint != endpoint);
    if patient.push_subscriptions.len() != before {
        tx.upsert_patient(pid, &patient, now).await?;
        replan(tx, ctx, patient_id, now).await?;
    }
    Ok(())
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
pub(crate) fn sms_quota(ctx: &PracticeCtx) -> Option<i64> {
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

/// Tells the notification centre, once a month each, when 80 % of the monthly SMS quota is
/// spent and when it is spent entirely (an SMS was not sent for it). Entries have one id per
/// practice, month and threshold, so the many SMS of a busy month add each entry once.
async fn sms_quota_alert(
    tx: &mut Tx,
    practice_id: &str,
    month: &str,
    limit: i64,
    exhausted: bool,
    now: Timestamp,
) -> Result<()> {
    // The quota counts billed SMS (segments, SPEC.md decision 9).
    let (_, billed) = tx.sms_usage(practice_id, month).await?;
    let of_month = french_month_complement(month);
    // Spent entirely (the last SMS of the quota went, or one was refused): one entry; 80 %
    // spent: another, before it.
    let (threshold, title, text) = if exhausted || billed >= limit {
        (
            "100",
            "Quota de SMS atteint".to_string(),
            format!(
                "Les {limit} SMS du forfait {of_month} sont envoyés : les SMS suivants ne partent \
                 pas (motif « quota épuisé ») jusqu'au 1er du mois prochain. Les emails \
                 continuent de partir."
            ),
        )
    } else if billed * 5 >= limit * 4 {
        (
            "80",
            "Quota de SMS bientôt atteint".to_string(),
            format!(
                "{billed} SMS sur les {limit} du forfait {of_month} sont envoyés. Une fois le \
                 quota atteint, les SMS ne partent plus jusqu'au 1er du mois prochain."
            ),
        )
    } else {
        return Ok(());
    };
    let id = hex::encode(&Sha256::digest(format!("sms_quota/{month}/{threshold}").as_bytes())[..8]);
    tx.insert_inbox(&InboxRow {
        practice_id: practice_id.to_string(),
        id,
        inbox: InboxBox::Notifications.as_str().to_string(),
        document: None,
        patient_id: None,
        title,
        text,
        created_at: now,
        resolved_at: None,
    })
    .await?;
    Ok(())
}

/// `2026-03` → « de mars 2026 », `2026-04` → « d'avril 2026 ».
fn french_month_complement(month: &str) -> String {
    let name = month
        .split_once('-')
        .and_then(|(year, m)| match m.parse::<usize>() {
            Ok(n @ 1..=12) => Some(format!("{} {year}", MONTHS_FR[n - 1])),
            _ => None,
        })
        .unwrap_or_else(|| month.to_string());
    if name.starts_with(['a', 'o']) {
        format!("d'{name}")
    } else {
        format!("de {name}")
    }
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
