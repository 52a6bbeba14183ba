//! Dispatch: claim what is due, decide at that moment (window, quiet hours, contacts, quota),
//! render from the current facts, hand off with no transaction open, record the outcome.
//!
//! `prepare.rs` decides and renders one claimed row, `record.rs` records the outcomes of the
//! hand-offs, `push.rs` reaches every device of a patient, `quota.rs` holds the monthly SMS quota.

mod prepare;
mod push;
mod quota;
mod record;

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use rappel_channels::{ChannelError, LogoImage, OutboundMessage, PushTarget};
use rappel_domain::notification::{Channel, Kind, Reason, Recipient};
use rappel_domain::policy::{InboxSpec, Trigger};
use rappel_domain::template::TemplateSet;
use rappel_store::{DocumentLink, InboxRow, NotificationRow, Status, Tx};
use sha2::{Digest, Sha256};

use self::push::send_to_every_device;
pub(crate) use self::quota::sms_quota;
use self::quota::sms_quota_alert;
use crate::facts::FactCache;
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
    /// The audit copy of the message, as the JSON text stored with the row (`prepare::audit_copy`).
    rendered: String,
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
        let claimed = self.claim_batch().await?;
        let count = claimed.len();
        if count > 0 {
            self.process_batch(claimed).await;
            self.signal();
        }
        Ok(count)
    }

    /// Dispatches until nothing is due, as the worker's loop does: up to
    /// [`EngineConfig::in_flight`](crate::EngineConfig::in_flight) claimed batches are processed
    /// at once, each in a task of its own, so the next batch is claimed, decided and rendered
    /// while the hand-offs and the record of the one before run (a batch of real hand-offs waits
    /// on the providers; a record waits on the database's commit). Returns when a claim finds
    /// nothing and every batch it started is recorded. A failed claim is returned after the
    /// batches in flight finish. The order of the hand-offs across batches is not fixed
    /// (within one batch it never was): [`Engine::dispatch_all_due`], one batch after the
    /// other, is what the simulator and the tests use.
    pub async fn dispatch_due_overlapped(&self) -> Result<usize> {
        let in_flight = self.config().in_flight.max(1);
        let mut running = tokio::task::JoinSet::new();
        let mut total = 0;
        let outcome = loop {
            while running.len() >= in_flight {
                finished(running.join_next().await);
            }
            let claimed = match self.claim_batch().await {
                Ok(claimed) => claimed,
                Err(error) => break Err(error),
            };
            if claimed.is_empty() {
                break Ok(total);
            }
            total += claimed.len();
            let engine = self.clone();
            running.spawn(async move {
                engine.process_batch(claimed).await;
                engine.signal();
            });
        };
        while let Some(joined) = running.join_next().await {
            finished(Some(joined));
        }
        return outcome;

        fn finished(joined: Option<std::result::Result<(), tokio::task::JoinError>>) {
            // A batch that panicked keeps its leases: its rows are claimed again after them.
            if let Some(Err(error)) = joined {
                tracing::error!(%error, "a dispatch batch panicked; its messages are retried after their lease");
            }
        }
    }

    /// Claims up to a batch of the due notifications, leased to this worker.
    async fn claim_batch(&self) -> Result<Vec<NotificationRow>> {
        let now = self.now();
        Ok(self
            .store()
            .claim_due(
                now,
                &self.config().worker_id,
                now + self.config().lease,
                self.config().batch,
            )
            .await?)
    }

    /// Dispatches until nothing is due at the current instant, one batch after the other.
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
        let mut answer_links = Vec::new();
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
                        answer_links.push(link.clone());
                    }
                    ready.push(*item);
                }
            }
        }
        tx.insert_appointment_links(&answer_links).await?;
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
        record::document_email_outcome(tx, ctx, row, record::DocumentEmail::Failed, now).await
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
