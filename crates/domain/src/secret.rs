//! The two pure operations on secrets, for every crate: the hash a token is stored as, and a
//! comparison whose time does not depend on where two secrets differ. Drawing random tokens reads
//! the operating system, so it lives in the engine (`rappel_engine::secret`, which re-exports
//! these two).
//!
//! ```
//! use rappel_domain::secret::{constant_time_eq, token_hash};
//! assert_eq!(token_hash("abc").len(), 64);
//! assert!(constant_time_eq(b"same", b"same"));
//! assert!(!constant_time_eq(b"same", b"sane"));
//! assert!(!constant_time_eq(b"same", b"same2"));
//! ```

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token is stored as: its SHA-256, in lower-case hex. The tokens are long random
/// strings, so a plain hash is enough (no salt, no slow hash: nothing to guess).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether two secrets are equal, in a time that depends neither on where they differ nor on
/// their lengths: both are hashed first, then the digests compared with `subtle`. (An operator's
/// bearer token is compared with what a caller presents, so even its length is not told.)
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    Sha256::digest(a).ct_eq(&Sha256::digest(b)).into()
}
