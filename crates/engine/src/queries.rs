//! Read-only questions the HTTP API asks (one fact, the sent box, the inbox, online booking,
//! metrics), plus the two small writes that belong with them: resolving an inbox entry and
//! remembering the answer given to an `Idempotency-Key`.
//!
//! Each method opens its own short transaction and goes through the store's [`Tx`] methods, so
//! the server never writes SQL. "Not found" is always scoped to the practice: another
//! practice's id answers exactly like an id that does not exist.

use jiff::{SignedDuration, Timestamp};
use rappel_domain::facts::{Appointment, Motive, Patient, Practitioner};
use rappel_domain::plan;
use rappel_store::{InboxRow, NotificationFilter, Tx};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::practice::load_practice;
use crate::timeline::{TimelineEntry, entry, format_instant};
use crate::{Engine, EngineError, Result};

/// One page of the sent box.
#[derive(Debug, Clone)]
pub struct NotificationPage {
    pub items: Vec<TimelineEntry>,
    /// `(due_at, key)` of the last row when more rows follow: the next page's cursor.
    pub next: Option<(Timestamp, String)>,
}

/// An entry of the to-verify box or of the notification centre, as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InboxEntry {
    pub id: String,
    #[serde(rename = "box")]
    pub inbox: String,
    pub document: Option<String>,
    pub patient: Option<String>,
    pub title: String,
    pub text: String,
    pub created_at: String,
    pub resolved_at: Option<String>,
    /// The document's title, the patient's name, and why the entry exists, in French.
    pub document_title: Option<String>,
    pub patient_name: Option<String>,
    pub reason: Option<String>,
    /// What the practice can do next: `resend_postal`, `fix_email`, `fix_address`, `resolve`.
    pub actions: Vec<&'static str>,
}

/// Whether a patient may still book online, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OnlineBooking {
    pub allowed: bool,
    pub reason: Option<String>,
}

/// What a request carrying an `Idempotency-Key` should do.
#[derive(Debug, Clone, PartialEq)]
pub enum Idempotency {
    /// First use of the key: do the work, then [`Engine::remember_answer`] with this hash.
    New { request_hash: String },
    /// The same request was answered before: give the same answer again.
    Replay { status: u16, body: Value },
    /// The key was used for a different request body.
    Mismatch,
}

impl Engine {
    pub async fn practitioner(&self, practice_id: &str, id: &str) -> Result<Practitioner> {
        let mut tx = self.read(practice_id).await?;
        let found = tx.practitioner(practice_id, id).await?;
        tx.commit().await?;
        found.ok_or_else(|| EngineError::not_found("practitioner", id))
    }

    pub async fn motive(&self, practice_id: &str, id: &str) -> Result<Motive> {
        let mut tx = self.read(practice_id).await?;
        let found = tx.motive(practice_id, id).await?;
        tx.commit().await?;
        found.ok_or_else(|| EngineError::not_found("motive", id))
    }

    /// An erased patient is not found: their personal data no longer exists.
    pub async fn patient(&self, practice_id: &str, id: &str) -> Result<Patient> {
        let mut tx = self.read(practice_id).await?;
        let found = tx.patient(practice_id, id).await?;
        tx.commit().await?;
        found.ok_or_else(|| EngineError::not_found("patient", id))
    }

    /// True when the patient was erased (GDPR): their id must not collect personal data again.
    pub async fn is_patient_erased(&self, practice_id: &str, id: &str) -> Result<bool> {
        let mut tx = self.read(practice_id).await?;
        let erased = tx.is_erased(practice_id, id).await?;
        tx.commit().await?;
        Ok(erased)
    }

    pub async fn appointment(&self, practice_id: &str, id: &str) -> Result<Appointment> {
        let mut tx = self.read(practice_id).await?;
        let found = tx.appointment(practice_id, id).await?;
        tx.commit().await?;
        found.ok_or_else(|| EngineError::not_found("appointment", id))
    }

    /// The sent box: one page of the practice's notifications by due time, then key.
    pub async fn list_notifications(
        &self,
        practice_id: &str,
        filter: &NotificationFilter,
    ) -> Result<NotificationPage> {
        let limit = filter.limit.max(1);
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        // One row more than asked tells whether another page follows without a COUNT.
        let probe = NotificationFilter {
            limit: limit + 1,
            ..filter.clone()
        };
        let mut rows = tx.list_notifications(practice_id, &probe).await?;
        tx.commit().await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next = if more {
            rows.last().map(|r| (r.due_at, r.key.clone()))
        } else {
            None
        };
        Ok(NotificationPage {
            items: rows.iter().map(|r| entry(r, &ctx.tz)).collect(),
            next,
        })
    }

    /// Entries of one box (or both), newest first; resolved ones only when asked.
    pub async fn inbox(
        &self,
        practice_id: &str,
        inbox: Option<&str>,
        include_resolved: bool,
    ) -> Result<Vec<InboxEntry>> {
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let rows = tx.inbox(practice_id, inbox, include_resolved).await?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut entry = inbox_entry(row, &ctx.tz);
            explain_inbox_entry(&mut tx, practice_id, row, &mut entry).await?;
            entries.push(entry);
        }
        tx.commit().await?;
        Ok(entries)
    }

    /// Marks an inbox entry resolved. Resolving it again is harmless and returns it as it is.
    pub async fn resolve_inbox(&self, practice_id: &str, id: &str) -> Result<InboxEntry> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let Some(mut row) = tx
            .inbox(practice_id, None, true)
            .await?
            .into_iter()
            .find(|r| r.id == id)
        else {
            return Err(EngineError::not_found("inbox entry", id));
        };
        if row.resolved_at.is_none() && tx.resolve_inbox(practice_id, id, now).await? {
            row.resolved_at = Some(now);
        }
        let mut entry = inbox_entry(&row, &ctx.tz);
        explain_inbox_entry(&mut tx, practice_id, &row, &mut entry).await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// Whether the patient may book online (the policy's no-show threshold over their history).
    pub async fn online_booking(
        &self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<OnlineBooking> {
        let now = self.now();
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        if tx.patient(practice_id, patient_id).await?.is_none() {
            return Err(EngineError::not_found("patient", patient_id));
        }
        let history = tx.patient_history(practice_id, patient_id).await?;
        tx.commit().await?;
        let (allowed, reason) =
            plan::online_booking(&ctx.policy, &ctx.settings, &history, now, &ctx.tz);
        Ok(OnlineBooking { allowed, reason })
    }

    /// Notifications per (status, channel) across all practices, for `/metrics`.
    pub async fn notification_counts(&self) -> Result<Vec<(String, String, i64)>> {
        let mut tx = self.store().begin_read().await?;
        let counts = tx.notification_counts(None).await?;
        tx.commit().await?;
        Ok(counts)
    }

    /// How long the most overdue claimable notification has been waiting (zero when nothing is
    /// overdue): a dispatcher that keeps up keeps this near zero.
    pub async fn dispatch_lag(&self) -> Result<SignedDuration> {
        let now = self.now();
        Ok(match self.store().next_due().await? {
            Some(due) if due < now => now.duration_since(due),
            _ => SignedDuration::ZERO,
        })
    }

    /// Looks up an `Idempotency-Key` of the practice against the request body it comes with.
    pub async fn idempotency(
        &self,
        practice_id: &str,
        key: &str,
        request_body: &[u8],
    ) -> Result<Idempotency> {
        let request_hash = hex::encode(Sha256::digest(request_body));
        let mut tx = self.read(practice_id).await?;
        let stored = tx.idempotency(practice_id, key).await?;
        tx.commit().await?;
        Ok(match stored {
            None => Idempotency::New { request_hash },
            Some((hash, status, body)) if hash == request_hash => Idempotency::Replay {
                status: status_code(status),
                body,
            },
            Some(_) => Idempotency::Mismatch,
        })
    }

    /// Stores the answer given to a key's first use and returns the answer to send. When two
    /// requests with the same key raced past [`Engine::idempotency`], the first stored answer
    /// wins and is returned to the second as well (the engine already made its events no-ops).
    pub async fn remember_answer(
        &self,
        practice_id: &str,
        key: &str,
        request_hash: &str,
        status: u16,
        body: &Value,
    ) -> Result<(u16, Value)> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        if tx.practice(practice_id).await?.is_none() {
            return Err(EngineError::not_found("practice", practice_id));
        }
        if let Some((hash, stored_status, stored_body)) = tx.idempotency(practice_id, key).await?
            && hash == request_hash
        {
            tx.commit().await?;
            return Ok((status_code(stored_status), stored_body));
        }
        tx.save_idempotency(practice_id, key, request_hash, i64::from(status), body, now)
            .await?;
        tx.commit().await?;
        Ok((status, body.clone()))
    }

    /// A read-only transaction on an existing practice (an unknown practice is `NotFound`).
    async fn read(&self, practice_id: &str) -> Result<Tx> {
        let mut tx = self.store().begin_read().await?;
        if tx.practice(practice_id).await?.is_none() {
            return Err(EngineError::not_found("practice", practice_id));
        }
        Ok(tx)
    }
}

fn status_code(stored: i64) -> u16 {
    u16::try_from(stored).unwrap_or(500)
}

fn inbox_entry(row: &InboxRow, tz: &jiff::tz::TimeZone) -> InboxEntry {
    InboxEntry {
        id: row.id.clone(),
        inbox: row.inbox.clone(),
        document: row.document.clone(),
        patient: row.patient_id.clone(),
        title: row.title.clone(),
        text: row.text.clone(),
        created_at: format_instant(row.created_at, tz),
        resolved_at: row.resolved_at.map(|at| format_instant(at, tz)),
        document_title: None,
        patient_name: None,
        reason: None,
        actions: Vec::new(),
    }
}

/// Names the document and the patient of an entry, says why it exists and what can be done:
/// a letter is possible only to a French address on file; a failed email calls for checking
/// the address on file; an entry can always be marked as dealt with.
async fn explain_inbox_entry(
    tx: &mut rappel_store::Tx,
    practice_id: &str,
    row: &InboxRow,
    entry: &mut InboxEntry,
) -> Result<()> {
    use rappel_domain::facts::EmailDelivery;
    use rappel_domain::notification::{Channel, Reason};
    use rappel_store::Status;
    let patient = match &row.patient_id {
        Some(id) => tx.patient(practice_id, id).await?,
        None => None,
    };
    entry.patient_name = patient.as_ref().map(|p| p.display_name());
    let mut actions = Vec::new();
    if let Some(doc_id) = &row.document
        && let Some(doc) = tx.document(practice_id, doc_id).await?
    {
        entry.document_title = Some(doc.title.clone());
        let letters: Vec<_> = tx
            .document_notifications(practice_id, doc_id)
            .await?
            .into_iter()
            .filter(|n| n.channel == Channel::Postal)
            .collect();
        // Why no letter went: asked only when none went, and never a letter replaced by another
        // (the unread rule's letter is superseded once the failure's letter is planned).
        let posted = letters
            .iter()
            .any(|n| matches!(n.status, Status::Sent | Status::Delivered | Status::Sending));
        let letter_reason = if posted {
            None
        } else {
            letters
                .iter()
                .filter_map(|n| n.reason)
                .find(|r| *r != Reason::Superseded)
        };
        let email_failed = matches!(doc.email, EmailDelivery::Failed { .. });
        entry.reason = Some(match (letter_reason, email_failed) {
            (Some(reason), true) => format!(
                "l'email n'a pas pu être remis et le courrier n'a pas pu partir : {}",
                reason.french()
            ),
            (Some(reason), false) => format!(
                "document non consulté et le courrier n'a pas pu partir : {}",
                reason.french()
            ),
            (None, true) if row.inbox == "notifications" => {
                "l'email n'a pas pu être remis : le document a été renvoyé par voie postale".into()
            }
            (None, true) => "l'email n'a pas pu être remis".into(),
            (None, false) if posted => {
                "document non consulté : il a été renvoyé par voie postale".into()
            }
            (None, false) => "document non consulté".into(),
        });
        let address_ok = patient
            .as_ref()
            .and_then(|p| p.address.as_ref())
            .is_some_and(|a| a.is_france());
        if row.inbox == "to_verify" {
            if address_ok {
                actions.push("resend_postal");
            } else {
                actions.push("fix_address");
            }
            if email_failed {
                actions.push("fix_email");
            }
        }
    }
    if row.resolved_at.is_none() {
        actions.push("resolve");
    }
    entry.actions = actions;
    Ok(())
}
