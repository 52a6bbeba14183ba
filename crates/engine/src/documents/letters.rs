//! Documents by post: the letter of a postal notification, and the letters a practice asks
//! for by hand (posted once per document and address, priced before it confirms).

use jiff::Timestamp;
use rappel_channels::Letter;
use rappel_domain::facts::{Document, Patient};
use rappel_domain::notification::{Channel, Kind, Reason};
use rappel_store::{NotificationRow, Status, Tx};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::storage::read_document;
use crate::practice::{PracticeCtx, load_practice};
use crate::timeline::{TimelineEntry, entry};
use crate::{Engine, EngineError, Result};

impl Engine {
    /// The letter of a postal notification: the window-envelope address, the practice's
    /// letterhead and the decrypted document. A document that came as an event only (no file
    /// uploaded, as in scenarios) gives a letter with the cover page alone.
    pub(crate) async fn document_letter(
        &self,
        tx: &mut Tx,
        ctx: &PracticeCtx,
        patient: Option<&Patient>,
        document: Option<&Document>,
    ) -> Result<Option<Box<Letter>>> {
        let (Some(patient), Some(document)) = (patient, document) else {
            return Ok(None);
        };
        let pid = ctx.row.id.as_str();
        let document_pdf = match tx.document_file(pid, &document.id).await? {
            Some(file) => read_document(self.documents(), &file).await?,
            None => {
                tracing::warn!(document = %document.id, "no file for this document: the letter has its cover page only");
                Vec::new()
            }
        };
        Ok(Some(Box::new(Letter {
            document_id: document.id.clone(),
            title: document.title.clone(),
            address_block: patient
                .address
                .as_ref()
                .map(|a| a.window_block(&patient.display_name()))
                .unwrap_or_default(),
            sender_block: vec![ctx.row.name.clone()],
            date: self.now().to_zoned(ctx.tz.clone()).date(),
            logo: crate::logo::logo_image(tx, pid).await?,
            document_pdf,
        })))
    }

    /// `POST /v1/documents/{id}/resend-postal`: the practice asks for a letter by hand. It is
    /// queued as `d:DOC/manual_postal/postal/ADDRESS` (ADDRESS names the patient's postal address
    /// of the moment), never flagged as an automatic resend.
    ///
    /// A letter costs money, so a second request — a double click, a retried API call, the same
    /// button in another tab — posts nothing more: while a letter of the document is on its way
    /// (queued or being handed off), or once one went to this same address, the request answers
    /// that letter with `created: false`. Only a letter that failed or was not sent (no address,
    /// an address abroad) can be asked again, and a corrected address makes a new one. The
    /// document's open to-verify entries are marked as handled: the letter answers them.
    pub async fn resend_postal(&self, practice_id: &str, id: &str) -> Result<PostalResend> {
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let (letters, _) = ManualLetters::of(&mut tx, practice_id, id, now).await?;
        if let Some(existing) = letters.answering() {
            tx.commit().await?;
            return Ok(PostalResend {
                created: false,
                entry: entry(existing, &ctx.tz),
            });
        }
        let key = letters.next_key();
        // A letter the planner holds for later (the automatic letter of an unread document)
        // would post the same document a second time: it is cancelled, saying why.
        let planned: Vec<NotificationRow> = letters
            .letters
            .iter()
            .filter(|r| r.status == Status::Pending && !r.key.starts_with(&letters.manual_prefix()))
            .cloned()
            .collect();
        let doc = letters.document;
        for mut automatic in planned {
            automatic.status = Status::Suppressed;
            automatic.reason = Some(Reason::ManualLetterSent);
            automatic.decided_at = Some(now);
            automatic.updated_at = now;
            tx.update_notification(&automatic).await?;
            crate::webhooks::notification_status(&mut tx, &automatic, now).await?;
        }
        let mut row = NotificationRow::pending(
            practice_id,
            key,
            &doc.patient,
            "manual_postal",
            Kind::Document,
            Channel::Postal,
            now,
        );
        row.document = Some(doc.id.clone());
        tx.insert_notification(&row).await?;
        for entry in tx.inbox(practice_id, Some("to_verify"), false).await? {
            if entry.document.as_deref() == Some(id) {
                tx.resolve_inbox(practice_id, &entry.id, now).await?;
            }
        }
        tx.commit().await?;
        self.signal();
        Ok(PostalResend {
            created: true,
            entry: entry(&row, &ctx.tz),
        })
    }

    /// What a manual letter of the document would cost, before the practice asks for it: the
    /// postal transport's tariff for the letter's pages (the covering page and the document's),
    /// `None` when the transport has no price (the file outbox). `already` is the letter a
    /// request would answer instead of posting a new one ([`Engine::resend_postal`]).
    pub async fn postal_quote(&self, practice_id: &str, id: &str) -> Result<PostalQuote> {
        let now = self.now();
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let (letters, patient) = ManualLetters::of(&mut tx, practice_id, id, now).await?;
        let already = letters.answering().map(|r| entry(r, &ctx.tz));
        let file = tx.document_file(practice_id, id).await?;
        tx.commit().await?;
        let pages = match &file {
            Some(file) => {
                let pdf = read_document(self.documents(), file).await?;
                rappel_channels::postal::page_count(&pdf).ok()
            }
            None => None,
        };
        let address = patient.as_ref().and_then(|p| {
            p.address
                .as_ref()
                .map(|a| a.window_block(&p.display_name()))
        });
        Ok(PostalQuote {
            cost_cents: pages
                .and_then(|pages| self.inner.transports.postal.letter_cost_cents(pages + 1)),
            address,
            already,
        })
    }
}

/// The answer to a manual postal resend: the letter, and whether this request queued it.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostalResend {
    pub created: bool,
    #[serde(flatten)]
    pub entry: TimelineEntry,
}

/// The price and destination of a manual letter, shown before the practice confirms it.
#[derive(Clone, Debug, Serialize)]
pub struct PostalQuote {
    pub cost_cents: Option<u32>,
    /// The address block the letter would carry; `None` when the file has no address.
    pub address: Option<Vec<String>>,
    /// The letter a request would answer instead of posting another.
    pub already: Option<TimelineEntry>,
}

/// The postal letters of a document, seen by a request for a manual one.
struct ManualLetters {
    document: Document,
    /// `d:DOC/manual_postal/postal/ADDRESS`, ADDRESS naming the patient's address of the moment.
    prefix: String,
    letters: Vec<NotificationRow>,
    now: Timestamp,
}

impl ManualLetters {
    async fn of(
        tx: &mut Tx,
        practice_id: &str,
        id: &str,
        now: Timestamp,
    ) -> Result<(ManualLetters, Option<Patient>)> {
        let Some(document) = tx.document(practice_id, id).await? else {
            return Err(EngineError::not_found("document", id));
        };
        let patient = tx.patient(practice_id, &document.patient).await?;
        let prefix = format!(
            "d:{id}/manual_postal/postal/{}",
            address_tag(patient.as_ref())
        );
        let letters = tx
            .document_notifications(practice_id, id)
            .await?
            .into_iter()
            .filter(|r| r.channel == Channel::Postal)
            .collect();
        Ok((
            ManualLetters {
                document,
                prefix,
                letters,
                now,
            },
            patient,
        ))
    }

    /// The letter a new request would repeat: one on its way (due now or being handed off — a
    /// letter the planner holds for days ahead is not one yet), or one not failed to this address.
    fn answering(&self) -> Option<&NotificationRow> {
        let in_flight = self.letters.iter().find(|r| {
            r.status == Status::Sending || (r.status == Status::Pending && r.due_at <= self.now)
        });
        in_flight.or_else(|| {
            self.letters.iter().find(|r| {
                r.key.starts_with(&self.prefix)
                    && !matches!(r.status, Status::Failed | Status::Suppressed)
            })
        })
    }

    /// What every manual letter's key of this document starts with, whatever the address.
    fn manual_prefix(&self) -> String {
        format!("d:{}/manual_postal/", self.document.id)
    }

    /// The key of a new manual letter: the address's, numbered after failed ones.
    fn next_key(&self) -> String {
        let earlier = self
            .letters
            .iter()
            .filter(|r| r.key.starts_with(&self.prefix))
            .count();
        if earlier == 0 {
            self.prefix.clone()
        } else {
            format!("{}.{}", self.prefix, earlier + 1)
        }
    }
}

/// A short name of the patient's postal address of the moment, so that a manual letter is
/// posted once per document and address.
fn address_tag(patient: Option<&Patient>) -> String {
    let Some(address) = patient.and_then(|p| p.address.as_ref()) else {
        return "none".into();
    };
    let block = address.window_block("").join("\n");
    hex::encode(&Sha256::digest(block.as_bytes())[..6])
}
