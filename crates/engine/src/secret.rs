//! The engine's secrets in one place: random tokens, the hash a token is stored as, and a
//! comparison whose time does not depend on where two secrets differ.
//!
//! A token handed out (an API key's secret, a session cookie, a document link) is stored only as
//! its SHA-256 ([`token_hash`]): a leaked database does not let anyone in, and a lookup by hash
//! needs no comparison in Rust. A secret that is compared in Rust (a CSRF token, a webhook's
//! bearer token) goes through [`constant_time_eq`].
//!
//! ```
//! use rappel_engine::secret::{constant_time_eq, random_hex, token_hash};
//! let token = random_hex(32);
//! assert_eq!(token.len(), 64);
//! assert_eq!(token_hash(&token).len(), 64);
//! assert!(constant_time_eq(token.as_bytes(), token.clone().as_bytes()));
//! ```

/// `N` bytes from the operating system's randomness.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    bytes
}

/// `bytes` random bytes as lower-case hex (twice as many characters): ids and tokens.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS provides randomness");
    hex::encode(buf)
}

/// The pure half, shared with the store and the channels.
pub use rappel_domain::secret::{constant_time_eq, token_hash};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_secrets_compare_equal_and_any_difference_does_not() {
        assert!(constant_time_eq(b"token", b"token"));
        assert!(!constant_time_eq(b"token", b"tokeN"));
        assert!(!constant_time_eq(b"token", b"token2"));
        assert!(!constant_time_eq(b"", b"t"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn the_token_hash_is_the_sha256_in_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn random_tokens_have_their_length_and_differ() {
        let a = random_hex(16);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_hex(16));
        assert_ne!(random_bytes::<32>(), random_bytes::<32>());
    }
}
