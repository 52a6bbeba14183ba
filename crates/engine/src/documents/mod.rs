//! Documents sent to patients: their files, encrypted at rest, and the expiring links through
//! which patients consult them (SPEC.md rule 9: a document is never attached to an email).
//!
//! A document's PDF is sealed with AES-256-GCM into one file per document, named by a random id,
//! in the documents folder; the row in `document_files` says where it is and holds its nonce. The
//! additional authenticated data is `practice/document`, so a file moved under another row does
//! not open. A link's token is 32 random bytes that exist only in the email: the store keeps
//! their SHA-256. Opening a link asks for the patient's birth date; five wrong answers lock the
//! link for an hour, and the first successful download is the `document.consulted` event that the
//! unread rule waits for.
//!
//! What it deliberately does not do: render pages (the server does) or talk to a postal provider
//! (the channels do). It hands the server a decision and the channels a [`Letter`].
//!
//! `storage.rs` keeps the files, `letters.rs` the letters.

mod letters;
mod storage;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jiff::Timestamp;
use jiff::civil::Date;
use rappel_domain::event::{Event, EventBody};
use rappel_domain::facts::{Document, Patient};
use rappel_store::{DocumentFile, DocumentLink, Tx};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::practice::{PracticeCtx, load_practice};
use crate::secret::{random_bytes, token_hash};
use crate::timeline::{TimelineEntry, entry, format_instant};
use crate::{Engine, EngineError, IngestReport, Result};

pub use self::letters::{PostalQuote, PostalResend};
pub use self::storage::DocumentsConfig;
use self::storage::{aad, read_document, remove_file, seal, storage_error, write_durably};

/// What `GET /v1/documents/{id}` shows: the facts, the file, and every message about it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Document))]
pub struct DocumentDetails {
    pub id: String,
    pub patient: String,
    pub title: String,
    pub sent_at: String,
    /// `pending`, `sent`, `delivered` or `failed`: what became of the email.
    pub email: &'static str,
    pub consulted_at: Option<String>,
    pub file: Option<FileInfo>,
    /// The document's notifications (email, letters, inbox), in order.
    pub deliveries: Vec<DocumentDelivery>,
}

/// One message about a document, with what it cost when it was a letter.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentDelivery {
    #[serde(flatten)]
    pub entry: TimelineEntry,
    /// Euro cents, as the letter's transport reported it at hand-off.
    pub cost_cents: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileInfo {
    pub size: i64,
    pub sha256: String,
}

/// What a link's page should show before any answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Ask for the birth date. Only the practice is named: whoever holds the link (a forwarded
    /// or overheard email) learns nothing about the document before the birth date is checked.
    Open {
        practice: String,
    },
    /// Too many wrong answers; try again after `until` (practice-local, formatted).
    Locked {
        until: String,
    },
    Expired,
    /// No such link (or its document or patient is gone): nothing to reveal.
    Unknown,
}

/// What a birth-date answer gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkAnswer {
    Document { title: String, pdf: Vec<u8> },
    Wrong { remaining: i64 },
    Locked { until: String },
    Expired,
    Unknown,
}

/// What `open_link` found, inside its transaction.
enum Found {
    /// Boxed: the practice's context is large and most lookups end in a state.
    Link(Box<(DocumentLink, PracticeCtx, Document, Patient)>),
    State(LinkState),
}

impl Engine {
    fn documents(&self) -> &DocumentsConfig {
        &self.config().documents
    }

    /// `POST /v1/documents`: keeps the PDF encrypted and applies `document.sent`, exactly as
    /// `POST /v1/events` would. Sending the same file again changes nothing; another file under
    /// the same id is refused.
    ///
    /// The file and its row go together: the sealed file is written under a temporary name,
    /// flushed to disk and renamed into place (a crash leaves either no file or a whole one), its
    /// row is committed next (on failure the file is removed), and if the event cannot be applied
    /// the row and the file are removed again. A second upload of the same document never writes
    /// over the stored file: it writes a file of its own, and removes it when it finds the
    /// document already has one. The one trace a crash can leave is a temporary or orphan file in
    /// the folder, never a row without its file.
    pub async fn upload_document(
        &self,
        practice_id: &str,
        id: &str,
        patient: &str,
        title: &str,
        pdf: &[u8],
    ) -> Result<IngestReport> {
        // A document may become a letter, built in memory: what would inflate past the budget
        // (a decompression bomb) is refused before anything is stored. Decoding takes up to
        // some tens of milliseconds, off the async workers.
        let owned = pdf.to_vec();
        tokio::task::spawn_blocking(move || rappel_channels::postal::check_document_pdf(&owned))
            .await
            .map_err(|e| storage_error(format!("the PDF check stopped: {e}")))?
            .map_err(|reason| EngineError::invalid("file", reason))?;
        let config = self.documents().clone();
        let sha256 = hex::encode(Sha256::digest(pdf));
        let mut tx = self.store().begin().await?;
        load_practice(&mut tx, practice_id).await?;
        let existing = tx.document_file(practice_id, id).await?;
        let known_before = tx.document(practice_id, id).await?.is_some();
        tx.commit().await?;
        let event = Event {
            at: None,
            body: EventBody::DocumentSent {
                id: id.to_string(),
                patient: patient.to_string(),
                title: title.to_string(),
            },
        };
        let same_file = |file: &DocumentFile| {
            if file.sha256 == sha256 {
                Ok(())
            } else {
                Err(EngineError::invalid(
                    "file",
                    format!("document `{id}` was already sent with another file"),
                ))
            }
        };
        if let Some(file) = existing {
            same_file(&file)?;
            return self.ingest(practice_id, &[event]).await;
        }
        let key = config.key()?;
        let (nonce, sealed) = seal(&key, &aad(practice_id, id), pdf);
        let name = format!("{}.bin", hex::encode(random_bytes::<16>()));
        let path = config.dir.join(&name);
        write_durably(&config.dir, &name, sealed).await?;
        let row = DocumentFile {
            practice_id: practice_id.to_string(),
            document_id: id.to_string(),
            path: name.clone(),
            nonce: STANDARD.encode(nonce),
            size: pdf.len() as i64,
            sha256: sha256.clone(),
            created_at: self.now(),
        };
        let inserted = async {
            let mut tx = self.store().begin().await?;
            let inserted = tx.insert_document_file(&row).await?;
            let on_record = tx.document_file(practice_id, id).await?;
            tx.commit().await?;
            Ok::<_, EngineError>((inserted, on_record))
        }
        .await;
        match inserted {
            Err(error) => {
                remove_file(&path).await;
                return Err(error);
            }
            Ok((false, on_record)) => {
                // A concurrent upload of the same document won: its file is the one on record.
                remove_file(&path).await;
                if let Some(file) = on_record {
                    same_file(&file)?;
                }
                return self.ingest(practice_id, &[event]).await;
            }
            Ok((true, _)) => {}
        }
        match self.ingest(practice_id, &[event]).await {
            Ok(report) => Ok(report),
            Err(error) => {
                // Undo our row, then our file, unless a simultaneous upload of the same file
                // has meanwhile sent the new document on the strength of our row. Should the
                // database refuse even that, the row still names a whole file: retrying the same
                // upload completes it.
                let undone = async {
                    let mut tx = self.store().begin().await?;
                    let sent_by_another =
                        !known_before && tx.document(practice_id, id).await?.is_some();
                    let undo =
                        !sent_by_another && tx.delete_document_file(practice_id, id, &name).await?;
                    tx.commit().await?;
                    Ok::<_, EngineError>(undo)
                }
                .await;
                match undone {
                    Ok(true) => remove_file(&path).await,
                    Ok(false) => {}
                    Err(undo) => {
                        tracing::warn!(document = id, error = %undo, "cannot undo a document's file row after a failed upload; it is kept with its file")
                    }
                }
                Err(error)
            }
        }
    }

    /// `GET /v1/documents/{id}`.
    pub async fn document_details(&self, practice_id: &str, id: &str) -> Result<DocumentDetails> {
        let mut tx = self.store().begin_read().await?;
        let ctx = load_practice(&mut tx, practice_id).await?;
        let Some(doc) = tx.document(practice_id, id).await? else {
            return Err(EngineError::not_found("document", id));
        };
        let file = tx.document_file(practice_id, id).await?;
        let mut rows = tx.document_notifications(practice_id, id).await?;
        let costs: std::collections::BTreeMap<String, i64> = tx
            .document_costs(practice_id, id)
            .await?
            .into_iter()
            .map(|c| (c.key, c.cost_cents))
            .collect();
        tx.commit().await?;
        rows.sort_by_key(|r| (r.decided_at.unwrap_or(r.due_at), r.key.clone()));
        use rappel_domain::facts::EmailDelivery;
        Ok(DocumentDetails {
            id: doc.id.clone(),
            patient: doc.patient.clone(),
            title: doc.title.clone(),
            sent_at: format_instant(doc.sent_at, &ctx.tz),
            email: match doc.email {
                EmailDelivery::Pending => "pending",
                EmailDelivery::Sent { .. } => "sent",
                EmailDelivery::Delivered { .. } => "delivered",
                EmailDelivery::Failed { .. } => "failed",
            },
            consulted_at: doc.consulted_at.map(|t| format_instant(t, &ctx.tz)),
            file: file.map(|f| FileInfo {
                size: f.size,
                sha256: f.sha256,
            }),
            deliveries: rows
                .iter()
                .map(|r| DocumentDelivery {
                    entry: entry(r, &ctx.tz),
                    cost_cents: costs.get(&r.key).copied(),
                })
                .collect(),
        })
    }

    /// A new link for the document's email: stored as a hash, valid for the configured time.
    /// Called when the email is rendered, so every attempt carries a fresh, valid link.
    /// A fresh personal link to a document, and the row that makes it open the document. The
    /// caller stores the row (`Tx::insert_document_link`) before the link leaves the building.
    pub(crate) fn new_document_link(
        &self,
        practice_id: &str,
        document_id: &str,
        now: Timestamp,
    ) -> (DocumentLink, String) {
        let token = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let link = DocumentLink {
            practice_id: practice_id.to_string(),
            token_hash: token_hash(&token),
            document_id: document_id.to_string(),
            expires_at: now + self.documents().link_ttl,
            failed_attempts: 0,
            locked_until: None,
            consulted_at: None,
        };
        let url = format!(
            "{}/d/{token}",
            self.config().public_url.trim_end_matches('/')
        );
        (link, url)
    }

    async fn find_link(&self, tx: &mut Tx, token: &str, now: Timestamp) -> Result<Found> {
        // A token that is not what we hand out is not looked up at all.
        if token.len() != 43 || URL_SAFE_NO_PAD.decode(token).is_err() {
            return Ok(Found::State(LinkState::Unknown));
        }
        let Some(link) = tx.document_link_by_hash(&token_hash(token)).await? else {
            return Ok(Found::State(LinkState::Unknown));
        };
        let ctx = load_practice(tx, &link.practice_id).await?;
        let pid = link.practice_id.as_str();
        let Some(doc) = tx.document(pid, &link.document_id).await? else {
            return Ok(Found::State(LinkState::Unknown));
        };
        let patient = match tx.patient(pid, &doc.patient).await? {
            Some(p) if !tx.is_erased(pid, &doc.patient).await? => p,
            _ => return Ok(Found::State(LinkState::Unknown)),
        };
        if tx.document_file(pid, &doc.id).await?.is_none() {
            return Ok(Found::State(LinkState::Unknown));
        }
        if link.expires_at <= now {
            return Ok(Found::State(LinkState::Expired));
        }
        if let Some(until) = link.locked_until.filter(|u| *u > now) {
            return Ok(Found::State(LinkState::Locked {
                until: local_time(until, &ctx),
            }));
        }
        Ok(Found::Link(Box::new((link, ctx, doc, patient))))
    }

    /// `GET /d/{token}`: what the page should show.
    pub async fn document_link_state(&self, token: &str) -> Result<LinkState> {
        let now = self.now();
        let mut tx = self.store().begin_read().await?;
        let found = self.find_link(&mut tx, token, now).await?;
        tx.commit().await?;
        Ok(match found {
            Found::State(state) => state,
            Found::Link(found) => LinkState::Open {
                practice: found.1.row.name,
            },
        })
    }

    /// `POST /d/{token}`: checks the birth date; on success returns the PDF, and the first
    /// success through this link records the consultation (`document.consulted`).
    pub async fn open_document_link(&self, token: &str, birth_date: Date) -> Result<LinkAnswer> {
        let now = self.now();
        let config = self.documents().clone();
        let mut tx = self.store().begin().await?;
        let (mut link, ctx, doc, patient) = match self.find_link(&mut tx, token, now).await? {
            Found::State(state) => {
                tx.commit().await?;
                return Ok(match state {
                    LinkState::Locked { until } => LinkAnswer::Locked { until },
                    LinkState::Expired => LinkAnswer::Expired,
                    LinkState::Open { .. } | LinkState::Unknown => LinkAnswer::Unknown,
                });
            }
            Found::Link(found) => *found,
        };
        // A patient without a birth date on file cannot prove anything: every answer is wrong,
        // and the page tells them to call the practice after the lock.
        if patient.birth_date != Some(birth_date) {
            let until = now + config.lock;
            let counted = tx
                .record_document_link_failure(
                    &link.practice_id,
                    &link.token_hash,
                    config.max_attempts,
                    until,
                )
                .await?
                .ok_or_else(|| EngineError::not_found("document link", &link.document_id))?;
            tx.commit().await?;
            return Ok(match counted.locked_until {
                Some(locked) if locked > now => LinkAnswer::Locked {
                    until: local_time(locked, &ctx),
                },
                _ => LinkAnswer::Wrong {
                    remaining: config.max_attempts - counted.failed_attempts,
                },
            });
        }
        let file = tx
            .document_file(&link.practice_id, &doc.id)
            .await?
            .ok_or_else(|| EngineError::not_found("document", &doc.id))?;
        // Opened before anything is recorded: a file that cannot be read is not a consultation.
        let pdf = read_document(&config, &file).await?;
        let first = link.consulted_at.is_none();
        link.failed_attempts = 0;
        link.locked_until = None;
        link.consulted_at = link.consulted_at.or(Some(now));
        tx.update_document_link(&link).await?;
        tx.commit().await?;
        if first {
            self.ingest(
                &link.practice_id,
                &[Event {
                    at: Some(now),
                    body: EventBody::DocumentConsulted { id: doc.id.clone() },
                }],
            )
            .await?;
        }
        Ok(LinkAnswer::Document {
            title: doc.title,
            pdf,
        })
    }

    /// GDPR erasure: the patient's document files go with them. Runs inside the erasure's
    /// transaction, before the documents' rows are removed; the files are deleted at once, since
    /// erasure was asked for even if the transaction then had to be retried.
    pub(crate) async fn erase_document_files(
        &self,
        tx: &mut Tx,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<()> {
        let dir = self.documents().dir.clone();
        for file in tx
            .delete_patient_document_files(practice_id, patient_id)
            .await?
        {
            remove_file(&dir.join(&file.path)).await;
        }
        Ok(())
    }
}

fn local_time(at: Timestamp, ctx: &PracticeCtx) -> String {
    at.to_zoned(ctx.tz.clone())
        .strftime("%d/%m/%Y à %H:%M")
        .to_string()
}
