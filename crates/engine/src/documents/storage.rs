//! Where documents' files are kept and how they are sealed: the folder, the key, AES-256-GCM
//! with `practice/document` as additional data, and files written durably.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jiff::SignedDuration;
use rappel_store::{DocumentFile, StoreError};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::secret::random_bytes;
use crate::{EngineError, Result};

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

    pub(super) fn key(&self) -> Result<[u8; 32]> {
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
pub(super) fn storage_error(reason: impl Into<String>) -> EngineError {
    EngineError::Store(StoreError::Corrupt {
        table: "document_files",
        reason: reason.into(),
    })
}

fn io_error(e: std::io::Error) -> EngineError {
    storage_error(format!("documents folder: {e}"))
}

pub(super) fn aad(practice_id: &str, document_id: &str) -> String {
    format!("{practice_id}/{document_id}")
}

fn cipher(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256 key"))
}

/// Seals `plain`; returns the nonce and the ciphertext with its tag.
pub(super) fn seal(key: &[u8; 32], aad: &str, plain: &[u8]) -> ([u8; NONCE_LEN], Vec<u8>) {
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

pub(super) async fn read_document(
    config: &DocumentsConfig,
    file: &DocumentFile,
) -> Result<Vec<u8>> {
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
pub(super) async fn write_durably(dir: &Path, name: &str, bytes: Vec<u8>) -> Result<()> {
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

pub(super) async fn remove_file(path: &Path) {
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
