//! The documents' files and links (`document_files`, `document_links`). The bytes themselves are
//! never here: the engine keeps them encrypted on disk and stores where, and how to open them.

use jiff::Timestamp;

use super::Tx;
use super::codec::{Cols, ms, opt_ms};
use super::routes::Route;
use crate::{Result, StoreError};

/// Where a document's encrypted file is, and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentFile {
    pub practice_id: String,
    pub document_id: String,
    /// Relative to the documents folder: a random name that says nothing about the patient.
    pub path: String,
    /// The AES-GCM nonce the file was sealed with (base64).
    pub nonce: String,
    /// Size of the plain PDF, in bytes.
    pub size: i64,
    /// SHA-256 of the plain PDF (hex).
    pub sha256: String,
    pub created_at: Timestamp,
}

/// One link sent to the patient, known by the hash of its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentLink {
    pub practice_id: String,
    pub token_hash: String,
    pub document_id: String,
    pub expires_at: Timestamp,
    /// Wrong birth dates since the last lock.
    pub failed_attempts: i64,
    pub locked_until: Option<Timestamp>,
    /// First successful download through this link.
    pub consulted_at: Option<Timestamp>,
}

const FILE_COLUMNS: &str = "practice_id, document_id, path, nonce, size, sha256, created_at";
const LINK_COLUMNS: &str =
    "practice_id, token_hash, document_id, expires_at, failed_attempts, locked_until, consulted_at";

fn file_row(row: &sqlx::any::AnyRow) -> Result<DocumentFile> {
    let c = Cols::new(row, "document_files");
    Ok(DocumentFile {
        practice_id: c.text("practice_id")?,
        document_id: c.text("document_id")?,
        path: c.text("path")?,
        nonce: c.text("nonce")?,
        size: c.int("size")?,
        sha256: c.text("sha256")?,
        created_at: c.ts("created_at")?,
    })
}

fn link_row(row: &sqlx::any::AnyRow) -> Result<DocumentLink> {
    let c = Cols::new(row, "document_links");
    Ok(DocumentLink {
        practice_id: c.text("practice_id")?,
        token_hash: c.text("token_hash")?,
        document_id: c.text("document_id")?,
        expires_at: c.ts("expires_at")?,
        failed_attempts: c.int("failed_attempts")?,
        locked_until: c.opt_ts("locked_until")?,
        consulted_at: c.opt_ts("consulted_at")?,
    })
}

impl Tx {
    /// Records a document's file; returns false (and changes nothing) when the document already
    /// has one: a document's content never changes once sent.
    pub async fn insert_document_file(&mut self, file: &DocumentFile) -> Result<bool> {
        let sql = format!(
            "INSERT INTO document_files ({FILE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (practice_id, document_id) DO NOTHING"
        );
        let done = sqlx::query(&sql)
            .bind(&file.practice_id)
            .bind(&file.document_id)
            .bind(&file.path)
            .bind(&file.nonce)
            .bind(file.size)
            .bind(&file.sha256)
            .bind(ms(file.created_at))
            .execute(&mut *self.inner)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets a document's file row, only if it still names the file at `path` (an upload undoing
    /// its own row never removes another upload's); returns whether a row went.
    pub async fn delete_document_file(
        &mut self,
        practice_id: &str,
        document_id: &str,
        path: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM document_files WHERE practice_id = $1 AND document_id = $2 AND path = $3",
        )
        .bind(practice_id)
        .bind(document_id)
        .bind(path)
        .execute(&mut *self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn document_file(
        &mut self,
        practice_id: &str,
        document_id: &str,
    ) -> Result<Option<DocumentFile>> {
        let sql = format!(
            "SELECT {FILE_COLUMNS} FROM document_files WHERE practice_id = $1 AND document_id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(practice_id)
            .bind(document_id)
            .fetch_optional(&mut *self.inner)
            .await?;
        row.as_ref().map(file_row).transpose()
    }

    /// Deletes the file rows and links of every document of a patient (GDPR erasure) and returns
    /// the file rows, so that the caller can remove the files. Call it before
    /// [`Tx::erase_patient`], which removes the documents themselves.
    pub async fn delete_patient_document_files(
        &mut self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<Vec<DocumentFile>> {
        let sql = format!(
            "SELECT {FILE_COLUMNS} FROM document_files WHERE practice_id = $1 AND document_id IN \
               (SELECT id FROM documents WHERE practice_id = $1 AND patient_id = $2) \
             ORDER BY document_id"
        );
        let rows = sqlx::query(&sql)
            .bind(practice_id)
            .bind(patient_id)
            .fetch_all(&mut *self.inner)
            .await?;
        let files = rows.iter().map(file_row).collect::<Result<Vec<_>>>()?;
        let tokens: Vec<String> = sqlx::query(
            "SELECT token_hash FROM document_links WHERE practice_id = $1 AND document_id IN \
               (SELECT id FROM documents WHERE practice_id = $1 AND patient_id = $2)",
        )
        .bind(practice_id)
        .bind(patient_id)
        .fetch_all(&mut *self.inner)
        .await?
        .iter()
        .map(|r| Cols::new(r, "document_links").text("token_hash"))
        .collect::<Result<_>>()?;
        self.delete_routes(Route::DocumentLink, practice_id, &tokens)
            .await?;
        for table in ["document_files", "document_links"] {
            let sql = format!(
                "DELETE FROM {table} WHERE practice_id = $1 AND document_id IN \
                   (SELECT id FROM documents WHERE practice_id = $1 AND patient_id = $2)"
            );
            sqlx::query(&sql)
                .bind(practice_id)
                .bind(patient_id)
                .execute(&mut *self.inner)
                .await?;
        }
        Ok(files)
    }

    /// Stores the link and its route (the token hash names the practice).
    pub async fn insert_document_link(&mut self, link: &DocumentLink) -> Result<()> {
        if !self
            .insert_route(
                Route::DocumentLink,
                &link.token_hash,
                &link.practice_id,
                None,
            )
            .await?
        {
            return Err(StoreError::Corrupt {
                table: "lookup_routes",
                reason: "a document link's token hash is already in use".into(),
            });
        }
        let sql = format!(
            "INSERT INTO document_links ({LINK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        );
        sqlx::query(&sql)
            .bind(&link.practice_id)
            .bind(&link.token_hash)
            .bind(&link.document_id)
            .bind(ms(link.expires_at))
            .bind(link.failed_attempts)
            .bind(opt_ms(link.locked_until))
            .bind(opt_ms(link.consulted_at))
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }

    /// The link with that token hash, whatever its practice: the patient's URL names no
    /// practice, and the token alone is the capability.
    pub async fn document_link_by_hash(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<DocumentLink>> {
        match self.route(Route::DocumentLink, token_hash).await? {
            Some(practice_id) => self.document_link(&practice_id, token_hash).await,
            None => Ok(None),
        }
    }

    /// The practice's link with that token hash.
    async fn document_link(
        &mut self,
        practice_id: &str,
        token_hash: &str,
    ) -> Result<Option<DocumentLink>> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM document_links WHERE practice_id = $1 AND token_hash = $2"
        );
        let row = sqlx::query(&sql)
            .bind(practice_id)
            .bind(token_hash)
            .fetch_optional(&mut *self.inner)
            .await?;
        row.as_ref().map(link_row).transpose()
    }

    /// The links of one document of a practice, oldest expiry first.
    pub async fn document_links(
        &mut self,
        practice_id: &str,
        document_id: &str,
    ) -> Result<Vec<DocumentLink>> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM document_links WHERE practice_id = $1 AND document_id = $2 \
             ORDER BY expires_at, token_hash"
        );
        let rows = sqlx::query(&sql)
            .bind(practice_id)
            .bind(document_id)
            .fetch_all(&mut *self.inner)
            .await?;
        rows.iter().map(link_row).collect()
    }

    /// Counts one wrong answer, atomically (two phones answering at once both count): the
    /// `max_attempts`-th one resets the count and locks the link until `lock_until`. Returns
    /// the link as it now stands (`None` when unknown).
    pub async fn record_document_link_failure(
        &mut self,
        practice_id: &str,
        token_hash: &str,
        max_attempts: i64,
        lock_until: Timestamp,
    ) -> Result<Option<DocumentLink>> {
        sqlx::query(
            "UPDATE document_links SET \
               failed_attempts = CASE WHEN failed_attempts + 1 >= $3 THEN 0 \
                 ELSE failed_attempts + 1 END, \
               locked_until = CASE WHEN failed_attempts + 1 >= $3 THEN $4 ELSE locked_until END \
             WHERE practice_id = $1 AND token_hash = $2",
        )
        .bind(practice_id)
        .bind(token_hash)
        .bind(max_attempts)
        .bind(ms(lock_until))
        .execute(&mut *self.inner)
        .await?;
        self.document_link(practice_id, token_hash).await
    }

    /// Writes a link's counters (attempts, lock, consultation) back.
    pub async fn update_document_link(&mut self, link: &DocumentLink) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE document_links SET failed_attempts = $3, locked_until = $4, consulted_at = $5 \
             WHERE practice_id = $1 AND token_hash = $2",
        )
        .bind(&link.practice_id)
        .bind(&link.token_hash)
        .bind(link.failed_attempts)
        .bind(opt_ms(link.locked_until))
        .bind(opt_ms(link.consulted_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
