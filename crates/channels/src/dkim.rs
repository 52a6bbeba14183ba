//! DKIM signing (RFC 6376, relaxed/relaxed) over the exact bytes that are sent.
//!
//! lettre's own signer (its `dkim` feature) hashes the header fields of the `Message`'s header
//! map at signing time. A multipart body's `Content-Type` (with its boundary) is not in that
//! map: `formatted()` writes it from the `MultiPart` afterwards. With `content-type` in `h=`, a
//! verifier hashes the serialised field that the signer never saw, so the header signature of
//! every multipart email (all of Rappel's) fails while the body hash matches — checked against
//! `mail-auth` with lettre 0.11.23. So Rappel signs the serialised message itself:
//! [`Dkim::sign`] takes the message as `lettre::Message::formatted()` writes it and returns it
//! with a `DKIM-Signature` field first, so what is signed is what the server receives.
//! RSA (PKCS #1 v1.5, SHA-256) and Ed25519 (RFC 8463) come from ring, already in the tree.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use sha2::{Digest, Sha256};

/// The header fields signed when present, in this order. Each is listed once per occurrence;
/// `From` is listed once more than it occurs (over-signing, RFC 6376 §8.15) so that a second
/// `From` added on the way breaks the signature instead of being shown to the patient.
const SIGNED: [&str; 10] = [
    "from",
    "to",
    "cc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "auto-submitted",
];

enum Key {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A DKIM signing key with its selector and domain (`RAPPEL_DKIM_*`).
#[derive(Clone)]
pub struct Dkim {
    key: Arc<Key>,
    selector: String,
    domain: String,
}

impl Dkim {
    /// Reads the private key: an RSA key in PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`, 2048
    /// to 4096 bits) or an Ed25519 seed in base64 (RFC 8463). Headers and body use relaxed
    /// canonicalisation, which survives the rewrapping relays commonly do.
    pub fn load(key_file: &Path, selector: &str, domain: &str) -> Result<Dkim, String> {
        let label = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|part| {
                    !part.is_empty()
                        && part
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                })
        };
        if !label(selector) {
            return Err(format!(
                "the DKIM selector `{selector}` is not a DNS label like `rappel`"
            ));
        }
        if !label(domain) {
            return Err(format!(
                "the DKIM domain `{domain}` is not a domain like `example.org`"
            ));
        }
        let text = std::fs::read_to_string(key_file)
            .map_err(|e| format!("{}: cannot read ({e})", key_file.display()))?;
        let text = text.trim();
        let unusable = |e: &dyn std::fmt::Display| {
            format!("{}: not a usable DKIM key ({e})", key_file.display())
        };
        let key = if let Some(rest) = text.strip_prefix("-----BEGIN RSA PRIVATE KEY-----") {
            let body = rest
                .split("-----END RSA PRIVATE KEY-----")
                .next()
                .unwrap_or_default();
            let der = BASE64
                .decode(body.split_whitespace().collect::<String>())
                .map_err(|e| unusable(&e))?;
            Key::Rsa(RsaKeyPair::from_der(&der).map_err(|e| {
                unusable(&format!("{e}; RSA keys of 2048 to 4096 bits are accepted"))
            })?)
        } else if text.starts_with("-----BEGIN") {
            return Err(format!(
                "{}: only PKCS#1 RSA keys (BEGIN RSA PRIVATE KEY) are read; convert with `openssl rsa -in key.pem -traditional -out dkim.pem`",
                key_file.display()
            ));
        } else {
            let seed = BASE64.decode(text).map_err(|e| unusable(&e))?;
            Key::Ed25519(
                Ed25519KeyPair::from_seed_unchecked(&seed)
                    .map_err(|_| unusable(&"an Ed25519 seed is 32 bytes in base64"))?,
            )
        };
        Ok(Dkim {
            key: Arc::new(key),
            selector: selector.to_string(),
            domain: domain.to_string(),
        })
    }

    /// Signs a serialised message (CRLF line ends, headers, an empty line, the body) and returns
    /// it with its `DKIM-Signature` field first. `now` is the signature's `t=` (Unix seconds).
    pub fn sign(&self, message: &[u8], now: i64) -> Vec<u8> {
        let (header, body) = split(message);
        let fields = fields(header);
        let body_hash = BASE64.encode(Sha256::digest(relaxed_body(body)));

        let mut signed = Vec::new();
        let mut canonical = Vec::new();
        for name in SIGNED {
            let occurrences: Vec<&[u8]> = fields
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, f)| *f)
                .collect();
            // RFC 6376 §5.4.2: several instances are signed from the bottom up.
            for field in occurrences.iter().rev() {
                signed.push(name);
                canonical.extend(relaxed_header(field));
                canonical.extend(b"\r\n");
            }
            if name == "from" {
                // Over-signing: a name listed once more than it occurs hashes as nothing.
                signed.push(name);
            }
        }
        let algorithm = match *self.key {
            Key::Rsa(_) => "rsa-sha256",
            Key::Ed25519(_) => "ed25519-sha256",
        };
        let h = signed.join(":");
        // Folded between tags; relaxed canonicalisation turns each fold back into one space, for
        // the signer here as for the verifier.
        let unsigned = format!(
            "DKIM-Signature: v=1; a={algorithm}; c=relaxed/relaxed; d={}; s={};\r\n\tt={now}; h={h};\r\n\tbh={body_hash};\r\n\tb=",
            self.domain, self.selector
        );
        canonical.extend(relaxed_header(unsigned.as_bytes()));
        let signature = match &*self.key {
            Key::Rsa(key) => {
                let mut out = vec![0; key.public().modulus_len()];
                key.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    &canonical,
                    &mut out,
                )
                .expect("RSA signing of a hash cannot fail with a valid key");
                out
            }
            // RFC 8463 §3: Ed25519 signs the SHA-256 hash of the canonical data (PureEdDSA).
            Key::Ed25519(key) => key.sign(&Sha256::digest(&canonical)).as_ref().to_vec(),
        };
        let signature = BASE64.encode(signature);
        let mut out = Vec::with_capacity(message.len() + unsigned.len() + signature.len() + 16);
        out.extend(unsigned.as_bytes());
        for (i, chunk) in signature.as_bytes().chunks(70).enumerate() {
            if i > 0 {
                out.extend(b"\r\n\t ");
            }
            out.extend(chunk);
        }
        out.extend(b"\r\n");
        out.extend(message);
        out
    }
}

impl std::fmt::Debug for Dkim {
    // The key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dkim")
            .field("selector", &self.selector)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// The header (with the CRLF of its last line) and the body of a message.
fn split(message: &[u8]) -> (&[u8], &[u8]) {
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => (&message[..at + 2], &message[at + 4..]),
        None => (message, b""),
    }
}

/// The header fields of a header block: each field's name and its whole text (continuation
/// lines included, without the final CRLF).
fn fields(header: &[u8]) -> Vec<(&str, &[u8])> {
    let mut out: Vec<(&str, &[u8])> = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at < header.len() {
        let end = header[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(header.len(), |p| at + p);
        let next = (end + 2).min(header.len());
        let continues = matches!(header.get(next), Some(b' ' | b'\t'));
        if !continues {
            let field = &header[start..end];
            let name = field
                .iter()
                .position(|&c| c == b':')
                .and_then(|colon| std::str::from_utf8(&field[..colon]).ok())
                .map(str::trim_end)
                .unwrap_or_default();
            out.push((name, field));
            start = next;
        }
        at = next;
    }
    out
}

/// RFC 6376 §3.4.2: the name in lower case; the value unfolded, each run of spaces and tabs one
/// space, none at its end; no whitespace around the colon. Without the final CRLF.
fn relaxed_header(field: &[u8]) -> Vec<u8> {
    let colon = field.iter().position(|&c| c == b':').unwrap_or(field.len());
    let mut out: Vec<u8> = field[..colon]
        .iter()
        .filter(|c| !matches!(c, b' ' | b'\t'))
        .map(u8::to_ascii_lowercase)
        .collect();
    out.push(b':');
    let mut space = false;
    let mut started = false;
    for &c in field.get(colon + 1..).unwrap_or_default() {
        match c {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => space = true,
            c => {
                if space && started {
                    out.push(b' ');
                }
                space = false;
                started = true;
                out.push(c);
            }
        }
    }
    out
}

/// RFC 6376 §3.4.4: each run of spaces and tabs one space, none at a line's end, no empty lines
/// at the end, and a non-empty body ends with CRLF.
fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut lines: Vec<&[u8]> = body.split(|&c| c == b'\n').collect();
    // A body ending with CRLF splits into a last empty piece that is not a line.
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut space = false;
        for &c in line {
            if matches!(c, b' ' | b'\t') {
                space = true;
            } else {
                if space {
                    out.push(b' ');
                }
                space = false;
                out.push(c);
            }
        }
        out.extend(b"\r\n");
    }
    while out.ends_with(b"\r\n\r\n") {
        out.truncate(out.len() - 2);
    }
    if out == b"\r\n" {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxed_headers_lose_the_space_after_the_colon_even_before_a_fold() {
        assert_eq!(
            relaxed_header(b"Subject: \r\n =?utf-8?b?QQ==?=\r\n =?utf-8?b?Qg==?=  "),
            b"subject:=?utf-8?b?QQ==?= =?utf-8?b?Qg==?="
        );
        assert_eq!(relaxed_header(b"To :\tA  \t B"), b"to:A B");
        assert_eq!(relaxed_header(b"Subject: Re: x"), b"subject:Re: x");
    }

    #[test]
    fn relaxed_bodies_follow_rfc_6376() {
        // RFC 6376 §3.4.6's example body, relaxed.
        assert_eq!(relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n"), b" C\r\nD E\r\n");
        assert_eq!(relaxed_body(b""), b"");
        assert_eq!(relaxed_body(b"\r\n\r\n"), b"");
        assert_eq!(relaxed_body(b"no end"), b"no end\r\n");
    }

    #[test]
    fn fields_keep_their_continuation_lines() {
        let header = b"From: a@b\r\nSubject: \r\n x\r\n\ty\r\nTo: c@d\r\n";
        let fields = fields(header);
        let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["From", "Subject", "To"]);
        assert_eq!(fields[1].1, b"Subject: \r\n x\r\n\ty");
    }
}
