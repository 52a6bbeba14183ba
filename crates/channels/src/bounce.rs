//! Bounces: the per-message return path (VERP) and the reading of what comes back to it.
//!
//! With `RAPPEL_BOUNCE_DOMAIN`, every email leaves with the envelope sender
//! `bounce+TOKEN@domain`, where TOKEN is an HMAC-SHA-256 (truncated to 160 bits, base32) of the
//! practice and the notification's identity key under a server secret. The token is not stored:
//! a bounce is matched to its message by the Message-ID it quotes (ours are recognisable,
//! `<64 hex digits@rappel>`, and the `provider_id` of the sent row), and the token of the address
//! it was sent to proves it, because only this server can compute the token of that row. So a
//! bounce is never trusted for its text alone, and guessing a token is as hard as forging the
//! HMAC. [`parse`] reads a bounce: an RFC 3464 delivery status notification
//! (`multipart/report; report-type=delivery-status`) or a plain non-DSN bounce.

use base64::Engine as _;

/// The VERP return path: the bounce domain and the secret that makes tokens unguessable.
#[derive(Clone)]
pub struct BounceAddress {
    domain: String,
    key: ring::hmac::Key,
}

impl BounceAddress {
    /// `domain` receives the bounces (its MX hands `bounce+*` to `rappel bounce`); `secret` is
    /// at least 32 bytes, the same on every Rappel process.
    pub fn new(domain: &str, secret: &[u8]) -> Result<BounceAddress, String> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if !domain.contains('.') || !domain.split('.').all(label_ok) {
            return Err(format!(
                "`{domain}` is not a domain like bounces.example.org"
            ));
        }
        if secret.len() < 32 {
            return Err("the bounce secret must be at least 32 bytes".into());
        }
        Ok(BounceAddress {
            domain,
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
        })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The token of one notification: 32 lower-case base32 characters.
    pub fn token(&self, practice_id: &str, key: &str) -> String {
        let tag = ring::hmac::sign(&self.key, format!("{practice_id}\n{key}").as_bytes());
        base32(&tag.as_ref()[..20])
    }

    /// The envelope sender of one notification's email.
    pub fn address(&self, practice_id: &str, key: &str) -> String {
        format!("bounce+{}@{}", self.token(practice_id, key), self.domain)
    }

    /// Whether `token` is the one of this notification (compared in constant time).
    pub fn verify(&self, token: &str, practice_id: &str, key: &str) -> bool {
        let expected = self.token(practice_id, key);
        let token = token.to_ascii_lowercase();
        crate::sms::constant_time_eq(expected.as_bytes(), token.as_bytes())
    }

    /// The tokens of the VERP addresses of this domain that appear in `text` (a recipient
    /// given by the MTA, or the headers of the bounce).
    pub fn tokens_in(&self, text: &str) -> Vec<String> {
        let lower = text.to_ascii_lowercase();
        let suffix = format!("@{}", self.domain);
        let mut out = Vec::new();
        let mut rest = lower.as_str();
        while let Some(at) = rest.find("bounce+") {
            let after = &rest[at + 7..];
            let end = after
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(after.len());
            if after[end..].starts_with(&suffix) && !out.iter().any(|t| t == &after[..end]) {
                out.push(after[..end].to_string());
            }
            rest = &after[end..];
        }
        out
    }
}

impl std::fmt::Debug for BounceAddress {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BounceAddress")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// RFC 4648 base32, lower case, without padding: a local part that survives case folding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// What a bounce says became of the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BounceOutcome {
    /// 5.x.x: refused for good.
    Failed,
    /// 4.x.x: the sending server keeps trying; not a failure yet.
    Delayed,
    /// 2.x.x: a success DSN (the recipient's server took it).
    Delivered,
}

/// A bounce, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bounce {
    pub outcome: BounceOutcome,
    /// The enhanced status code (RFC 3463), `5.1.1`.
    pub status: String,
    /// The remote server's words (`smtp; 550 5.1.1 <…>: user unknown`), at most 300 characters.
    /// It may name the recipient's address: it goes to the sent box, never to an info log.
    pub diagnostic: Option<String>,
    /// Rappel's Message-IDs quoted by the bounce (`<hex@rappel>`), first seen first.
    pub message_ids: Vec<String>,
    /// Whether it is an RFC 3464 DSN (otherwise a plain bounce read for its status code).
    pub dsn: bool,
}

/// Reads a bounce. `None` for a message that is not one (no DSN, and no status code nor
/// failure wording): an auto-reply, say, which is ignored.
pub fn parse(raw: &[u8]) -> Option<Bounce> {
    let text = String::from_utf8_lossy(raw);
    let text = text.replace("\r\n", "\n");
    let message_ids = rappel_message_ids(&text);
    let (head, _) = text.split_once("\n\n").unwrap_or((&text, ""));
    let content_type = header(head, "content-type").unwrap_or_default();
    let lower_type = content_type.to_ascii_lowercase();
    if lower_type.contains("multipart/report")
        && lower_type.contains("delivery-status")
        && let Some(bounce) = parse_dsn(&text, message_ids.clone())
    {
        return Some(bounce);
    }
    // A plain bounce: its first enhanced status code, or a generic permanent failure when it
    // says it failed without one.
    let body = decoded_text(&text);
    let found = enhanced_status(&body);
    let lower = body.to_ascii_lowercase();
    let (status, line) = match found {
        Some(found) => found,
        None if [
            "undeliverable",
            "delivery has failed",
            "could not be delivered",
            "user unknown",
            "mailbox unavailable",
            "returned mail",
        ]
        .iter()
        .any(|w| lower.contains(w)) =>
        {
            ("5.0.0".to_string(), None)
        }
        None => return None,
    };
    Some(Bounce {
        outcome: outcome_of(&status),
        status,
        diagnostic: line.map(|l| clip(&l)),
        message_ids,
        dsn: false,
    })
}

fn parse_dsn(text: &str, message_ids: Vec<String>) -> Option<Bounce> {
    let lower = text.to_ascii_lowercase();
    let start = lower.find("content-type: message/delivery-status")?;
    let part = &text[start..];
    // The part's own headers end at its first empty line; its body, at the next boundary.
    let (_, body) = part.split_once("\n\n")?;
    let body = body.split("\n--").next().unwrap_or(body);
    // Per-message fields first, then one block per recipient (RFC 3464 §2.1): the first block
    // with an Action is the recipient's.
    let blocks: Vec<String> = body
        .split("\n\n")
        .map(|b| b.replace("\n ", " ").replace("\n\t", " "))
        .collect();
    let block = blocks
        .iter()
        .find(|b| header(b, "action").is_some())
        .or(blocks.last())?;
    let action = header(block, "action")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let status = header(block, "status")
        .and_then(|s| enhanced_status(&s).map(|(code, _)| code))
        .unwrap_or_else(|| {
            match action.as_str() {
                "delivered" | "relayed" | "expanded" => "2.0.0",
                "delayed" => "4.0.0",
                _ => "5.0.0",
            }
            .into()
        });
    let outcome = match action.as_str() {
        "delivered" | "relayed" | "expanded" => BounceOutcome::Delivered,
        "delayed" => BounceOutcome::Delayed,
        "failed" => BounceOutcome::Failed,
        _ => outcome_of(&status),
    };
    Some(Bounce {
        outcome,
        status,
        diagnostic: header(block, "diagnostic-code").map(|d| clip(&d)),
        message_ids,
        dsn: true,
    })
}

fn outcome_of(status: &str) -> BounceOutcome {
    match status.as_bytes().first() {
        Some(b'2') => BounceOutcome::Delivered,
        Some(b'4') => BounceOutcome::Delayed,
        _ => BounceOutcome::Failed,
    }
}

/// The value of the first field `name` in a block of (unfolded) header lines.
fn header(block: &str, name: &str) -> Option<String> {
    let unfolded = block.replace("\n ", " ").replace("\n\t", " ");
    unfolded.lines().find_map(|line| {
        let (field, value) = line.split_once(':')?;
        field
            .trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}

/// The first enhanced status code (`class.subject.detail`, class 2, 4 or 5) and its line.
fn enhanced_status(text: &str) -> Option<(String, Option<String>)> {
    for line in text.lines() {
        let bytes = line.as_bytes();
        for (i, &c) in bytes.iter().enumerate() {
            if !matches!(c, b'2' | b'4' | b'5') || bytes.get(i + 1) != Some(&b'.') {
                continue;
            }
            if i > 0 && (bytes[i - 1].is_ascii_digit() || bytes[i - 1] == b'.') {
                continue;
            }
            let rest = &line[i + 2..];
            let subject: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if subject.is_empty() || subject.len() > 3 {
                continue;
            }
            let rest = &rest[subject.len()..];
            let Some(rest) = rest.strip_prefix('.') else {
                continue;
            };
            let detail: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if detail.is_empty() || detail.len() > 3 {
                continue;
            }
            if rest[detail.len()..].starts_with(|c: char| c.is_ascii_digit() || c == '.') {
                continue;
            }
            return Some((
                format!("{}.{subject}.{detail}", c as char),
                Some(line.trim().to_string()),
            ));
        }
    }
    None
}

/// The text of a plain bounce with its base64 parts decoded, so that a status code inside one
/// is found. Quoted-printable text is readable enough as it is.
fn decoded_text(text: &str) -> String {
    let mut out = String::from(text);
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("content-transfer-encoding: base64") {
        let start = from + at;
        if let Some(body_at) = text[start..].find("\n\n") {
            let body = &text[start + body_at + 2..];
            let end = body.find("\n--").unwrap_or(body.len());
            let compact: String = body[..end].split_whitespace().collect();
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact) {
                out.push('\n');
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        from = start + 1;
    }
    out
}

/// Every `<64 hex digits@rappel>` in the text: the Message-IDs Rappel gives its emails.
fn rappel_message_ids(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("@rappel>") {
        let before = &rest[..at];
        if let Some(open) = before.rfind('<') {
            let id = &before[open + 1..];
            if id.len() == 64 && id.bytes().all(|c| c.is_ascii_hexdigit()) {
                let id = format!("<{}@rappel>", id.to_ascii_lowercase());
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        }
        rest = &rest[at + 8..];
    }
    out
}

/// The words with an `@` (the patient's address, quoted by most servers) become `[adresse]`:
/// a report's words reach the sent box and the practice software's webhook, which carry
/// statuses, not contacts.
pub(crate) fn redact_addresses(text: &str) -> String {
    text.split_whitespace()
        .map(|word| {
            if word.contains('@') {
                "[adresse]"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn clip(text: &str) -> String {
    let text = redact_addresses(text);
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verp() -> BounceAddress {
        BounceAddress::new("Bounces.Cabinet.Example", &[7; 32]).unwrap()
    }

    #[test]
    fn tokens_are_bound_to_the_practice_and_the_notification() {
        let verp = verp();
        let token = verp.token("lilas", "d:doc-1/document/email");
        assert_eq!(token.len(), 32);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert!(verp.verify(&token, "lilas", "d:doc-1/document/email"));
        assert!(verp.verify(&token.to_uppercase(), "lilas", "d:doc-1/document/email"));
        assert!(!verp.verify(&token, "other", "d:doc-1/document/email"));
        assert!(!verp.verify(&token, "lilas", "d:doc-2/document/email"));
        let other_secret = BounceAddress::new("bounces.cabinet.example", &[8; 32]).unwrap();
        assert!(!other_secret.verify(&token, "lilas", "d:doc-1/document/email"));
        let address = verp.address("lilas", "d:doc-1/document/email");
        assert_eq!(address, format!("bounce+{token}@bounces.cabinet.example"));
        assert!(address.split('@').next().unwrap().len() <= 64);
        assert_eq!(
            verp.tokens_in(&format!("To: <{}>\nX-Original-To: BOUNCE+{}@BOUNCES.cabinet.example\nbounce+x@elsewhere.example", address, token.to_uppercase())),
            [token]
        );
        assert!(BounceAddress::new("bounces.cabinet.example", b"short").is_err());
        assert!(BounceAddress::new("not a domain", &[7; 32]).is_err());
    }

    #[test]
    fn enhanced_status_codes_are_found_but_not_inside_other_numbers() {
        assert_eq!(
            enhanced_status("550 5.1.1 <x@y>: Recipient address rejected").map(|s| s.0),
            Some("5.1.1".into())
        );
        assert_eq!(enhanced_status("version 1.5.1.1 and 12.4.5"), None);
        assert_eq!(
            enhanced_status("4.4.1 delayed").map(|s| s.0),
            Some("4.4.1".into())
        );
    }

    #[test]
    fn addresses_are_left_out_of_a_report_s_words() {
        assert_eq!(
            clip("550 5.1.1 <jeanne@example.org>: Recipient  address rejected"),
            "550 5.1.1 [adresse] Recipient address rejected"
        );
    }

    #[test]
    fn a_plain_bounce_without_a_status_or_failure_wording_is_not_a_bounce() {
        assert_eq!(
            parse(b"Subject: Out of office\r\n\r\nI am away until Monday.\r\n"),
            None
        );
    }
}
