//! The write after the hand-offs: each outcome recorded, with what follows from it (a
//! document's unread timer, the rules of a failed delivery, a retry with backoff).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use rappel_channels::ChannelError;
use rappel_domain::facts::EmailDelivery;
use rappel_domain::notification::{Channel, Reason, Recipient};
use rappel_store::{EncodedOutcome, NotificationRow, Status, Tx};

use super::push::forget_push_subscription;
use super::{Ready, add_inbox, is_document_email};
use crate::ingest::replan;
use crate::practice::{PracticeCtx, load_practice};
use crate::{Engine, Result};

impl Engine {
    /// Records every outcome in one transaction. Hand-offs that need nothing but their row
    /// written (the common case) are written together; any other outcome first writes those
    /// collected before it, so every row is recorded in the order of the batch, as one by one.
    pub(super) async fn record_all(
        &self,
        outcomes: &[(
            Ready,
            std::result::Result<rappel_channels::Receipt, ChannelError>,
        )],
    ) -> Result<()> {
        let now = self.now();
        // Before the write transaction, which on SQLite holds the process's one write turn:
        // each practice's context, read in a read-only transaction, and each handed-off row as
        // it will be written, encoded (the audit copy serialized and packed).
        let mut practices: BTreeMap<String, (PracticeCtx, Option<bool>)> = BTreeMap::new();
        let mut read = self.store().begin_read().await?;
        for (ready, _) in outcomes {
            let pid = &ready.row.practice_id;
            if !practices.contains_key(pid) {
                let ctx = load_practice(&mut read, pid).await?;
                practices.insert(pid.clone(), (ctx, None));
            }
        }
        read.commit().await?;
        let mut rows = Vec::with_capacity(outcomes.len());
        for (ready, outcome) in outcomes {
            let mut row = ready.row.clone();
            row.lease_owner = None;
            row.lease_until = None;
            row.updated_at = now;
            let encoded = match outcome {
                Ok(receipt) => {
                    row.status = Status::Sent;
                    row.decided_at = Some(now);
                    row.provider_id = receipt.provider_id.clone();
                    row.last_error = None;
                    Some(
                        self.store()
                            .encode_outcome_with_copy(&row, &ready.rendered)?,
                    )
                }
                Err(_) => None,
            };
            rows.push((row, encoded));
        }
        let mut tx = self.store().begin().await?;
        let mut plain: Vec<EncodedOutcome> = Vec::new();
        for ((ready, outcome), (mut row, encoded)) in outcomes.iter().zip(rows) {
            let pid = &ready.row.practice_id;
            let (ctx, has_endpoint) = practices.get_mut(pid).expect("loaded above");
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
                    let inbox = ctx.policy.rule(&row.rule).and_then(|r| r.inbox.as_ref());
                    // A cost (letters) is written beside the row, so it leaves the fast path.
                    if inbox.is_none()
                        && !is_document_email(ctx, &row)
                        && receipt.cost_cents.is_none()
                        && ready.gone.is_empty()
                    {
                        crate::webhooks::notification_status_with(&mut tx, has_endpoint, &row, now)
                            .await?;
                        plain.extend(encoded);
                        continue;
                    }
                    tx.write_outcomes(std::mem::take(&mut plain)).await?;
                    // The copy is JSON text this process serialized (`prepare::audit_copy`).
                    row.rendered = serde_json::from_str(&ready.rendered).ok();
                    tx.update_notification(&row).await?;
                    if let Some(cents) = receipt.cost_cents {
                        tx.set_notification_cost(pid, &row.key, i64::from(cents))
                            .await?;
                    }
                    document_email_outcome(&mut tx, ctx, &row, DocumentEmail::HandedOff, now)
                        .await?;
                    if let Some(spec) = inbox {
                        add_inbox(&mut tx, ctx, &row, spec, now).await?;
                    }
                }
                Err(error) => {
                    tx.write_outcomes(std::mem::take(&mut plain)).await?;
                    self.record_failure(&mut tx, ctx, &mut row, error.clone(), now)
                        .await?;
                }
            }
            for endpoint in &ready.gone {
                forget_push_subscription(&mut tx, ctx, &row.patient_id, endpoint, now).await?;
            }
            crate::webhooks::notification_status_with(&mut tx, has_endpoint, &row, now).await?;
        }
        tx.write_outcomes(plain).await?;
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
                document_email_outcome(tx, ctx, row, DocumentEmail::Failed, now).await?;
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
}

/// What the outcome of the email that carries a document does to the document.
#[derive(Clone, Copy)]
pub(super) enum DocumentEmail {
    /// Accepted by the mail system: a pending email is sent, which starts the unread timer.
    HandedOff,
    /// Refused for good, or never sendable (no usable email): the email failed, which triggers
    /// the document-failure rules (postal resend, to-verify box) exactly as a bounce does.
    Failed,
}

impl DocumentEmail {
    /// The document's email state after this outcome, or `None` when it does not move (a
    /// hand-off of an email no longer pending, a failure already recorded).
    fn next(self, email: EmailDelivery, now: Timestamp) -> Option<EmailDelivery> {
        match (self, email) {
            (DocumentEmail::HandedOff, EmailDelivery::Pending) => {
                Some(EmailDelivery::Sent { at: now })
            }
            (DocumentEmail::HandedOff, _) => None,
            (DocumentEmail::Failed, EmailDelivery::Failed { .. }) => None,
            (DocumentEmail::Failed, _) => Some(EmailDelivery::Failed { at: now }),
        }
    }
}

/// Applies the outcome of a document's email to the document and re-plans its patient; nothing
/// for any other row (a letter, another rule's email).
pub(super) async fn document_email_outcome(
    tx: &mut Tx,
    ctx: &PracticeCtx,
    row: &NotificationRow,
    outcome: DocumentEmail,
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
        && let Some(email) = outcome.next(doc.email, now)
    {
        doc.email = email;
        tx.upsert_document(pid, &doc).await?;
        replan(tx, ctx, &doc.patient, now).await?;
    }
    Ok(())
}
