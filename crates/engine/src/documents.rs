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

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use rappel_channels::Letter;
use rappel_domain::event::{Event, EventBody};
use rappel_domain::facts::{Document, Patient};
use rappel_domain::notification::{Channel, Kind, Reason};
use rappel_store::{DocumentFile, DocumentLink, NotificationRow, Status, StoreError, Tx};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::practice::{PracticeCtx, load_practice};
use crate::secret::{random_bytes, token_hash};
use crate::timeline::{TimelineEntry, entry, format_instant};
use crate::{Engine, EngineError, IngestReport, Result};

/// Where documents are kept and how links behave. `Default` reads `RAPPEL_DOCUMENTS_DIR`
/// (default `data/documents`) and `RAPPEL_DOCUMENTS_KEY` (32 bytes, base64); without a key, one
/// is generated into `data/documents.key` on first use, with a warning.
#[derive(Clone)]
pub struct DocumentsConfig {
    pub dir: PathBuf,
    /// The key as configured (base64). `None`: use, or create, `key_file`.
    pub key: Option<String>,
    pub key_file: PathBuf,
    /// How long a link stays valid.
    pub link_ttl: SignedDuration,
    /// Wrong birth dates before a link locks.
    pub max_attempts: i64,
    /// How long a locked link stays locked.
    pub lock: SignedDuration,
    /// The key once resolved: read or generated once per process.
    resolved: Arc<Mutex<Option<[u8; 32]>>>,
}

impl std::fmt::Debug for DocumentsConfig {
    // Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentsConfig")
            .field("dir", &self.dir)
            .field("key_configured", &self.key.is_some())
            .field("key_file", &self.key_file)
            .field("link_ttl", &self.link_ttl)
            .finish_non_exhaustive()
    }
}

impl Default for DocumentsConfig {
    fn default() -> DocumentsConfig {
        let dir = std::env::var_os("RAPPEL_DOCUMENTS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("data/documents"));
        let mut config = DocumentsConfig::in_dir(dir);
        config.key = std::env::var("RAPPEL_DOCUMENTS_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty());
        config
    }
}

impl DocumentsConfig {
    /// Documents in `dir`, the key generated beside it (`<dir>.key`) unless one is set.
    pub fn in_dir(dir: impl Into<PathBuf>) -> DocumentsConfig {
        let dir = dir.into();
        let key_file = dir.with_extension("key");
        DocumentsConfig {
            dir,
            key: None,
            key_file,
            link_ttl: SignedDuration::from_hours(24 * 30),
            max_attempts: 5,
            lock: SignedDuration::from_hours(1),
            resolved: Arc::new(Mutex::new(None)),
        }
    }

    /// The same folder with a fixed key (base64 of 32 bytes).
    pub fn with_key(mut self, key_base64: impl Into<String>) -> DocumentsConfig {
        self.key = Some(key_base64.into());
        self.resolved = Arc::new(Mutex::new(None));
        self
    }

    fn key(&self) -> Result<[u8; 32]> {
        let mut resolved = self.resolved.lock().expect("documents key lock");
        if let Some(key) = *resolved {
            return Ok(key);
        }
        let key = match &self.key {
            // A configuration mistake is the operator's, not the API client's: a server error.
            Some(text) => decode_key(text)
                .map_err(|reason| storage_error(format!("RAPPEL_DOCUMENTS_KEY: {reason}")))?,
            None => match std::fs::read_to_string(&self.key_file) {
                Ok(text) => decode_key(&text).map_err(|reason| {
                    storage_error(format!("{}: {reason}", self.key_file.display()))
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let mut key = [0u8; 32];
                    getrandom::fill(&mut key).expect("the OS provides randomness");
                    if let Some(parent) = self.key_file.parent() {
                        std::fs::create_dir_all(parent).map_err(io_error)?;
                    }
                    std::fs::write(&self.key_file, STANDARD.encode(key)).map_err(io_error)?;
                    tracing::warn!(
                        file = %self.key_file.display(),
                        "RAPPEL_DOCUMENTS_KEY is not set: generated a documents key; \
                         keep it safe (without it the stored documents cannot be read)"
                    );
                    key
                }
                Err(e) => return Err(io_error(e)),
            },
        };
        *resolved = Some(key);
        Ok(key)
    }
}

fn decode_key(text: &str) -> std::result::Result<[u8; 32], &'static str> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| "expected 32 bytes in base64")?;
    bytes.try_into().map_err(|_| "expected 32 bytes in base64")
}

/// Disk and cryptography failures have no variant of their own in [`EngineError`]: like a
/// database failure they are the operator's problem, logged and answered as a server error.
fn storage_error(reason: impl Into<String>) -> EngineError {
    EngineError::Store(StoreError::Corrupt {
        table: "document_files",
        reason: reason.into(),
    })
}

fn io_error(e: std::io::Error) -> EngineError {
    storage_error(format!("documents folder: {e}"))
}

fn aad(practice_id: &str, document_id: &str) -> String {
    format!("{practice_id}/{document_id}")
}

fn cipher(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256 key"))
}

/// Seals `plain`; returns the nonce and the ciphertext with its tag.
fn seal(key: &[u8; 32], aad: &str, plain: &[u8]) -> ([u8; NONCE_LEN], Vec<u8>) {
    let nonce = random_bytes::<NONCE_LEN>();
    let mut buffer = plain.to_vec();
    cipher(key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_bytes()),
            &mut buffer,
        )
        .expect("AES-GCM seals any PDF under 64 GiB");
    (nonce, buffer)
}

fn open(key: &[u8; 32], aad: &str, nonce: &str, mut sealed: Vec<u8>) -> Result<Vec<u8>> {
    let nonce: [u8; NONCE_LEN] = STANDARD
        .decode(nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| storage_error("a document's nonce is not 12 bytes of base64"))?;
    let plain = cipher(key)
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_bytes()),
            &mut sealed,
        )
        .map_err(|_| storage_error("a document file does not open with the documents key"))?;
    let len = plain.len();
    sealed.truncate(len);
    Ok(sealed)
}

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

fn local_time(at: Timestamp, ctx: &PracticeCtx) -> String {
    at.to_zoned(ctx.tz.clone())
        .strftime("%d/%m/%Y à %H:%M")
        .to_string()
}

async fn read_document(config: &DocumentsConfig, file: &DocumentFile) -> Result<Vec<u8>> {
    let sealed = tokio::fs::read(config.dir.join(&file.path))
        .await
        .map_err(io_error)?;
    open(
        &config.key()?,
        &aad(&file.practice_id, &file.document_id),
        &file.nonce,
        sealed,
    )
}

/// Writes `bytes` as `dir/name` so that the name only ever shows a whole file: a temporary file
/// is written and flushed to disk, then renamed (atomic within a folder), then the folder itself
/// is flushed so the rename survives a power cut.
async fn write_durably(dir: &Path, name: &str, bytes: Vec<u8>) -> Result<()> {
    let (dir, name) = (dir.to_path_buf(), name.to_string());
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        std::fs::create_dir_all(&dir)?;
        let temp = dir.join(format!(".{name}.tmp"));
        let written = (|| {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&temp, dir.join(&name))
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written?;
        // Flushing a folder is how POSIX makes a rename durable; other systems may refuse to
        // open a folder as a file, which loses only that guarantee.
        if let Ok(folder) = std::fs::File::open(&dir) {
            let _ = folder.sync_all();
        }
        Ok::<_, std::io::Error>(())
    })
    .await
    .map_err(|e| storage_error(format!("documents folder: {e}")))?
    .map_err(io_error)
}

async fn remove_file(path: &Path) {
    if let Err(error) = tokio::fs::remove_file(path).await
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %path.display(), %error, "cannot remove a document file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_document_opens_only_with_its_key_and_its_row() {
        let key = random_bytes::<32>();
        let (nonce, sealed) = seal(&key, "p/d1", b"%PDF-1.4 secret");
        assert_ne!(&sealed[..], b"%PDF-1.4 secret");
        let nonce = STANDARD.encode(nonce);
        assert_eq!(
            open(&key, "p/d1", &nonce, sealed.clone()).unwrap(),
            b"%PDF-1.4 secret"
        );
        assert!(open(&key, "p/d2", &nonce, sealed.clone()).is_err());
        assert!(open(&random_bytes::<32>(), "p/d1", &nonce, sealed).is_err());
    }

    #[test]
    fn a_missing_key_is_generated_once_and_then_read_back() {
        let dir =
            std::env::temp_dir().join(format!("rappel-keys-{}", hex::encode(random_bytes::<8>())));
        let config = DocumentsConfig::in_dir(dir.join("documents"));
        let first = config.key().unwrap();
        let again = DocumentsConfig::in_dir(dir.join("documents"))
            .key()
            .unwrap();
        assert_eq!(first, again);
        assert!(dir.join("documents.key").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
