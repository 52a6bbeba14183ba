//! Signed webhook requests the tests checked, handed to an implementation Rappel did not write.
//!
//! A test that checks a Standard Webhooks signature with Rappel's own signer proves only that
//! the two halves agree. With `RAPPEL_WEBHOOK_DUMP_DIR` set, each request a test checked is also
//! written there (secret, `webhook-id`, `webhook-timestamp`, `webhook-signature`, body), and
//! `scripts/webhook_signature_check.sh` verifies every one with the reference library of the
//! specification (PyPI's `standardwebhooks`).

use std::sync::atomic::{AtomicUsize, Ordering};

static WRITTEN: AtomicUsize = AtomicUsize::new(0);

/// Writes one signed request for the independent check, when `RAPPEL_WEBHOOK_DUMP_DIR` is set.
pub fn dump(secret: &str, id: &str, timestamp: &str, signature: &str, body: &str) {
    let Some(dir) = std::env::var_os("RAPPEL_WEBHOOK_DUMP_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let n = WRITTEN.fetch_add(1, Ordering::Relaxed);
    let name = format!("{}-{n}.json", std::process::id());
    let record = serde_json::json!({
        "secret": secret,
        "webhook-id": id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signature,
        "body": body,
    });
    std::fs::write(dir.join(name), serde_json::to_vec(&record).unwrap()).unwrap();
}
