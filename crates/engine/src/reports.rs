//! Delivery reports: what a provider says became of a message after the hand-off. The provider's
//! authenticity was checked at the edge (`rappel-channels`, called by the server); here the
//! report finds its notification and moves it to `delivered` or `failed`.

use rappel_channels::bounce::{Bounce, BounceAddress, BounceOutcome};
use rappel_channels::email_events::{EmailEvent, EmailEventKind};
use rappel_channels::sms::{DeliveryReport, DeliveryStatus};
use rappel_domain::event::{Event, EventBody};
use rappel_domain::notification::{Channel, Kind};
use rappel_store::{DeliveryReportRow, NotificationRow, Status, Tx};

use crate::{Engine, EngineError, Result};

impl Engine {
    /// Applies a verified delivery report. The notification is the one whose `provider_id` is
    /// the report's; failing that, the one the report names by (practice, key), as Twilio's
    /// status callback does for an attempt whose id was never recorded (the hand-off timed out
    /// after the provider had accepted it). Unknown to both: [`EngineError::NotFound`].
    ///
    /// The rules, in order:
    /// - `delivered` is final: the patient has the message. A later `failed` about it (another
    ///   attempt's, or a provider's confused order) changes nothing.
    /// - A row waiting for a retry (`pending` after a transient failure) that a report says was
    ///   delivered becomes `delivered`: the retry would only send it twice.
    /// - A row being sent right now (`sending`) is left to its worker, whose outcome would
    ///   overwrite ours; a row never sent (`suppressed`) is left alone.
    /// - A `failed` report found by key that names another attempt than the one recorded is
    ///   about an older attempt, and says nothing of the latest.
    ///
    /// Returns whether the notification's status changed; applying a report twice changes it
    /// once.
    pub async fn apply_delivery_report(&self, report: &DeliveryReport) -> Result<bool> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let (mut row, by_id) = match tx.notification_by_provider_id(&report.provider_id).await? {
            Some(row) => (row, true),
            None => {
                let by_key = match &report.notification {
                    Some(n) => tx.notification(&n.practice_id, &n.key).await?,
                    None => None,
                };
                match by_key {
                    Some(row) => (row, false),
                    None => {
                        return Err(EngineError::not_found("message", &report.provider_id));
                    }
                }
            }
        };
        let outcome = match report.status {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        };
        note_report(
            &mut tx,
            &row,
            report.provider,
            outcome,
            report.detail.clone(),
            now,
        )
        .await?;
        let changed = match decide(&row, report, by_id) {
            None => false,
            Some(status) => {
                row.status = status;
                row.last_error = match status {
                    Status::Failed => Some(
                        report
                            .detail
                            .clone()
                            .unwrap_or_else(|| "the provider reported it undelivered".into()),
                    ),
                    _ => None,
                };
                if row.decided_at.is_none() {
                    row.decided_at = Some(now);
                }
                row.updated_at = now;
                tx.update_notification(&row).await?;
                crate::webhooks::notification_status(&mut tx, &row, now).await?;
                true
            }
        };
        tx.commit().await?;
        tracing::info!(
            practice = %row.practice_id,
            key = %row.key,
            provider = report.provider,
            reported = ?report.status,
            status = row.status.as_str(),
            changed,
            "delivery report"
        );
        Ok(changed)
    }
}

/// What became of a bounce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BounceApplied {
    /// It named one of our messages with its own return-path token: the message's status (and
    /// a document's email state) follow it. `changed` as for [`Engine::apply_delivery_report`].
    Recorded {
        practice_id: String,
        key: String,
        outcome: BounceOutcome,
        changed: bool,
    },
    /// No quoted Message-ID of ours whose row the return-path token proves: nothing done.
    Unmatched,
}

impl Engine {
    /// Applies a bounce that came back to a VERP address (`rappel bounce`, `POST
    /// /v1/webhooks/email/dsn`). `tokens` are the return-path tokens the bounce was addressed
    /// to; a row is acted on only when one of them is that row's (see ARCHITECTURE.md,
    /// "Bounces").
    ///
    /// - 5.x.x: the email is `failed` with the status code and the server's words; a document's
    ///   email becomes bounced, exactly as the `delivery.bounced` event makes it, so the
    ///   document's postal rules apply (a letter with `postal_on_failure`, else to verify).
    /// - 2.x.x (a success DSN): `delivered`; a document's email is delivered as with the
    ///   `delivery.delivered` event, which starts the unread timer.
    /// - 4.x.x: the delay is noted on the row (its last error), which stays `sent`.
    pub async fn apply_bounce(
        &self,
        bounce: &Bounce,
        tokens: &[String],
        verp: &BounceAddress,
    ) -> Result<BounceApplied> {
        let mut found = None;
        {
            let mut tx = self.store().begin().await?;
            for id in &bounce.message_ids {
                if let Some(row) = tx.notification_by_provider_id(id).await?
                    && row.channel == Channel::Email
                    && tokens
                        .iter()
                        .any(|t| verp.verify(t, &row.practice_id, &row.key))
                {
                    found = Some((id.clone(), row));
                    break;
                }
            }
            tx.commit().await?;
        }
        let Some((provider_id, row)) = found else {
            tracing::info!(
                dsn = bounce.dsn,
                quoted = bounce.message_ids.len(),
                "a bounce matched none of our messages; ignored"
            );
            return Ok(BounceApplied::Unmatched);
        };
        let detail = match &bounce.diagnostic {
            Some(d) => format!("{} {d}", bounce.status),
            None => bounce.status.clone(),
        };
        let provider = if bounce.dsn { "dsn" } else { "bounce" };
        let changed = self
            .record_email_outcome(&row, provider_id, provider, bounce.outcome, detail)
            .await?;
        tracing::info!(
            practice = %row.practice_id,
            key = %row.key,
            status = %bounce.status,
            outcome = ?bounce.outcome,
            changed,
            "bounce"
        );
        Ok(BounceApplied::Recorded {
            practice_id: row.practice_id,
            key: row.key,
            outcome: bounce.outcome,
            changed,
        })
    }
}

impl Engine {
    /// Applies an event of an email service (Brevo, Mailjet) whose token the server checked.
    /// The message is the one whose `provider_id` is the event's Message-ID; unknown:
    /// [`EngineError::NotFound`]. A spam complaint turns the patient's email notifications
    /// off (`email_notifications: false`, the switch a practice can turn back on), and the
    /// message's row says why.
    pub async fn apply_email_event(&self, event: &EmailEvent) -> Result<bool> {
        let row = {
            let mut tx = self.store().begin().await?;
            let row = tx.notification_by_provider_id(&event.message_id).await?;
            tx.commit().await?;
            row.filter(|r| r.channel == Channel::Email)
                .ok_or_else(|| EngineError::not_found("message", &event.message_id))?
        };
        let detail = event.detail.clone().unwrap_or_default();
        let changed = match event.kind {
            EmailEventKind::Delivered => {
                self.record_email_outcome(
                    &row,
                    event.message_id.clone(),
                    event.provider,
                    BounceOutcome::Delivered,
                    detail,
                )
                .await?
            }
            EmailEventKind::Failed => {
                self.record_email_outcome(
                    &row,
                    event.message_id.clone(),
                    event.provider,
                    BounceOutcome::Failed,
                    detail,
                )
                .await?
            }
            EmailEventKind::Delayed => {
                self.record_email_outcome(
                    &row,
                    event.message_id.clone(),
                    event.provider,
                    BounceOutcome::Delayed,
                    detail,
                )
                .await?
            }
            EmailEventKind::Complaint => self.email_complaint(&row, event.provider).await?,
        };
        tracing::info!(
            practice = %row.practice_id,
            key = %row.key,
            provider = event.provider,
            kind = ?event.kind,
            changed,
            "email event"
        );
        Ok(changed)
    }

    async fn email_complaint(&self, row: &NotificationRow, provider: &str) -> Result<bool> {
        let patient = {
            let mut tx = self.store().begin().await?;
            let patient = tx.patient(&row.practice_id, &row.patient_id).await?;
            tx.commit().await?;
            patient
        };
        let Some(mut patient) = patient else {
            return Ok(false);
        };
        let note = format!(
            "spam complaint reported by {provider}: the patient's email notifications are turned off"
        );
        let now = self.now();
        let mut tx = self.store().begin().await?;
        note_report(&mut tx, row, provider, "complaint", Some(note.clone()), now).await?;
        if let Some(mut current) = tx.notification(&row.practice_id, &row.key).await?
            && current.last_error.as_deref() != Some(note.as_str())
        {
            current.last_error = Some(note);
            current.updated_at = now;
            tx.update_notification(&current).await?;
        }
        tx.commit().await?;
        if patient.email_notifications == Some(false) {
            return Ok(false);
        }
        patient.email_notifications = Some(false);
        self.put_patient(&row.practice_id, &patient).await?;
        Ok(true)
    }

    /// Records what became of an email after its hand-off, from a bounce or a service's event.
    /// Failed and delivered go through [`Engine::apply_delivery_report`] and, for a document's
    /// email, the `delivery.bounced` / `delivery.delivered` event, whose planner rules (postal
    /// letter, to-verify, unread timer) then follow without a second code path. A delay is noted
    /// on a `sent` row.
    async fn record_email_outcome(
        &self,
        row: &NotificationRow,
        provider_id: String,
        provider: &'static str,
        outcome: BounceOutcome,
        detail: String,
    ) -> Result<bool> {
        if outcome == BounceOutcome::Delayed {
            let now = self.now();
            let mut tx = self.store().begin().await?;
            let mut changed = false;
            note_report(&mut tx, row, provider, "delayed", Some(detail.clone()), now).await?;
            if let Some(mut current) = tx.notification(&row.practice_id, &row.key).await?
                && current.status == Status::Sent
            {
                let note = format!("delayed: {detail}");
                if current.last_error.as_deref() != Some(note.as_str()) {
                    current.last_error = Some(note);
                    current.updated_at = now;
                    tx.update_notification(&current).await?;
                    changed = true;
                }
            }
            tx.commit().await?;
            return Ok(changed);
        }
        let failed = outcome == BounceOutcome::Failed;
        let report = DeliveryReport {
            provider,
            provider_id,
            notification: None,
            status: if failed {
                DeliveryStatus::Failed
            } else {
                DeliveryStatus::Delivered
            },
            detail: failed.then(|| format!("bounced: {detail}")),
        };
        let changed = self.apply_delivery_report(&report).await?;
        if let (Some(document), Kind::Document) = (&row.document, row.kind) {
            let document = document.clone();
            let body = if failed {
                EventBody::DeliveryBounced { document }
            } else {
                EventBody::DeliveryDelivered { document }
            };
            let event = Event {
                at: Some(self.now()),
                body,
            };
            self.ingest(&row.practice_id, &[event]).await?;
        }
        Ok(changed)
    }
}

/// Keeps the report in the message's history, whatever it changes: the practice sees every
/// report with its time and code, not only the status the last one left.
async fn note_report(
    tx: &mut Tx,
    row: &NotificationRow,
    source: &str,
    outcome: &str,
    detail: Option<String>,
    now: jiff::Timestamp,
) -> Result<()> {
    tx.insert_delivery_report(&DeliveryReportRow {
        practice_id: row.practice_id.clone(),
        notification_key: row.key.clone(),
        patient_id: row.patient_id.clone(),
        at: now,
        source: source.to_string(),
        outcome: outcome.to_string(),
        detail,
    })
    .await?;
    Ok(())
}

/// The status the report moves the row to, if any (the rules of `apply_delivery_report`).
fn decide(row: &NotificationRow, report: &DeliveryReport, by_id: bool) -> Option<Status> {
    let target = match report.status {
        DeliveryStatus::Delivered => Status::Delivered,
        DeliveryStatus::Failed => Status::Failed,
    };
    let about_another_attempt = !by_id
        && row
            .provider_id
            .as_ref()
            .is_some_and(|id| *id != report.provider_id);
    match (row.status, target) {
        (Status::Delivered, _) => None,
        (Status::Sending | Status::Suppressed, _) => None,
        (_, Status::Failed) if about_another_attempt => None,
        (Status::Failed, Status::Failed) if row.last_error == report.detail => None,
        (Status::Pending, Status::Failed) => None,
        (Status::Sent | Status::Failed | Status::Pending, target) => Some(target),
    }
}

#[cfg(test)]
mod tests {
    use rappel_channels::sms::NotificationRef;
    use rappel_domain::notification::{Channel, Kind};

    use super::*;

    fn row(status: Status, provider_id: Option<&str>) -> NotificationRow {
        let at = "2026-03-02T08:00:00Z".parse().unwrap();
        NotificationRow {
            appointments: vec!["a1".into()],
            status,
            decided_at: Some(at),
            attempts: 1,
            provider_id: provider_id.map(String::from),
            ..NotificationRow::pending(
                "cab1",
                "a:1/reminder_sms/sms/patient:p1".into(),
                "p1",
                "reminder_sms",
                Kind::Reminder,
                Channel::Sms,
                at,
            )
        }
    }

    fn report(status: DeliveryStatus, provider_id: &str) -> DeliveryReport {
        DeliveryReport {
            provider: "twilio",
            provider_id: provider_id.into(),
            notification: Some(NotificationRef {
                practice_id: "cab1".into(),
                key: "a:1/reminder_sms/sms/patient:p1".into(),
            }),
            status,
            detail: (status == DeliveryStatus::Failed).then(|| "twilio error 30003".into()),
        }
    }

    use DeliveryStatus::{Delivered, Failed};

    #[test]
    fn a_sent_message_becomes_delivered_or_failed() {
        let sent = row(Status::Sent, Some("SM1"));
        assert_eq!(
            decide(&sent, &report(Delivered, "SM1"), true),
            Some(Status::Delivered)
        );
        assert_eq!(
            decide(&sent, &report(Failed, "SM1"), true),
            Some(Status::Failed)
        );
    }

    #[test]
    fn delivered_is_final() {
        let delivered = row(Status::Delivered, Some("SM1"));
        assert_eq!(decide(&delivered, &report(Failed, "SM1"), true), None);
        assert_eq!(decide(&delivered, &report(Delivered, "SM1"), true), None);
        let failed = row(Status::Failed, Some("SM1"));
        assert_eq!(
            decide(&failed, &report(Delivered, "SM1"), true),
            Some(Status::Delivered),
            "a late delivery receipt beats an earlier failure"
        );
    }

    #[test]
    fn a_retry_waiting_for_a_message_reported_delivered_is_cancelled_by_it() {
        let waiting = row(Status::Pending, None);
        assert_eq!(
            decide(&waiting, &report(Delivered, "SM0"), false),
            Some(Status::Delivered)
        );
        assert_eq!(decide(&waiting, &report(Failed, "SM0"), false), None);
    }

    #[test]
    fn rows_being_sent_or_never_sent_are_left_alone() {
        for status in [Status::Sending, Status::Suppressed] {
            let r = row(status, None);
            assert_eq!(decide(&r, &report(Delivered, "SM0"), false), None);
            assert_eq!(decide(&r, &report(Failed, "SM0"), false), None);
        }
    }

    #[test]
    fn a_failure_of_an_older_attempt_says_nothing_of_the_latest() {
        let latest = row(Status::Sent, Some("SM2"));
        assert_eq!(decide(&latest, &report(Failed, "SM1"), false), None);
        assert_eq!(
            decide(&latest, &report(Delivered, "SM1"), false),
            Some(Status::Delivered),
            "but the patient did get the older one"
        );
    }
}
