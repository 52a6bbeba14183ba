//! Web Push: a notification to the browser or phone a patient subscribed from, through the push
//! service the browser chose (Mozilla's, Google's FCM, Apple's, Microsoft's…).
//!
//! Three RFCs make one request:
//!
//! - RFC 8030 (the protocol): `POST` to the subscription's endpoint with `TTL` (how long the
//!   push service keeps the message for a device that is offline), `Urgency`, and `Topic`, which
//!   makes a newer message with the same topic replace one still waiting;
//! - RFC 8291 (message encryption): the payload is encrypted for the subscription's P-256 key
//!   (`p256dh`) and authentication secret (`auth`) as one `aes128gcm` record (RFC 8188), so the
//!   push service carries it without being able to read it;
//! - RFC 8292 (VAPID): `Authorization: vapid t=<JWT>, k=<public key>`, a short-lived ES256 token
//!   that tells the push service which application server sends, so that a subscription made for
//!   our public key cannot be used by anyone else.
//!
//! ```no_run
//! # fn demo() -> Result<(), rappel_channels::sms::ConfigError> {
//! use rappel_channels::push::{Config, VapidKey, WebPush};
//!
//! let key = VapidKey::from_base64url("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw").unwrap();
//! let transport = WebPush::new(Config::new(key, "mailto:technique@cabinet.example"))?;
//! # Ok(()) }
//! ```
//!
//! The message the service worker receives is the JSON `{"title", "body", "tag"}`: the subject
//! (or the practice's name), the rendered text, and the notification's identity key, which the
//! service worker can use as the notification's `tag` so that a resent message replaces the
//! first on screen.
//!
//! | the push service answered | classified as |
//! | --- | --- |
//! | 201, 202 (any 2xx) | sent; its `Location` (the push message resource) becomes the receipt |
//! | 404, 410 | [`ChannelError::Gone`]: the subscription expired or was withdrawn |
//! | 413 | [`ChannelError::Permanent`] (cannot happen: longer payloads are refused before sending) |
//! | 429, 5xx, connection failure, time-out | [`ChannelError::Transient`], with `Retry-After` when given |
//! | 401, 403 | [`ChannelError::Transient`]: our VAPID key or subject is refused, not the message |
//! | other 4xx, 3xx | [`ChannelError::Permanent`] |
//!
//! As for SMS, 401 and 403 depart from "4xx is permanent" on purpose: they say our VAPID setup
//! is wrong (a rotated key, a subject the service refuses), which is true of every message. Retrying
//! keeps the queued reminders until an operator fixes it; each still stops at the end of its
//! window with the push service's answer as its last error.
//!
//! What this module deliberately does not do: read configuration (the binary builds the
//! transport from its environment), log an endpoint or a payload (an endpoint is a capability,
//! a payload is health data), or pad payloads to hide their length (reminders all have about
//! the same length; RFC 8291 allows padding and it can be added here without changing callers).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jiff::{SignedDuration, Timestamp};
use p256::ecdsa::signature::Signer as _;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::{PublicKey, SecretKey};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, LOCATION};
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::{aead, digest, hkdf};
use serde_json::json;

use crate::net_guard::{self, NetPolicy};
use crate::sms::ConfigError;
use crate::{ChannelError, OutboundMessage, Receipt, SendFuture, Transport};

/// The largest body a push service must accept (RFC 8030 §7.2). Ours is one record: the 86-byte
/// header, the payload, its delimiter and the 16-byte tag.
pub const MAX_BODY: usize = 4096;
/// The longest payload that fits in [`MAX_BODY`] (RFC 8291 §4: 3993 octets).
pub const MAX_PAYLOAD: usize = MAX_BODY - HEADER_LEN - 1 - TAG_LEN;

/// salt (16) ‖ rs (4) ‖ idlen (1) ‖ keyid (the 65-byte uncompressed ephemeral public key).
const HEADER_LEN: usize = 16 + 4 + 1 + 65;
const TAG_LEN: usize = 16;
/// The record size announced in the header. One record always suffices (see [`MAX_PAYLOAD`]),
/// and 4096 is what RFC 8291 recommends.
const RECORD_SIZE: u32 = 4096;
/// How long a VAPID token is valid. RFC 8292 allows at most 24 hours; a shorter life limits what
/// a leaked token is worth. A token is signed for every request, so it never needs refreshing.
const TOKEN_LIFETIME: SignedDuration = SignedDuration::from_hours(12);

/// How urgent a message is (RFC 8030 §5.3): a push service may hold back `low` messages to save
/// a phone's battery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Urgency {
    VeryLow,
    Low,
    #[default]
    Normal,
    High,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::VeryLow => "very-low",
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }

    pub fn parse(text: &str) -> Option<Urgency> {
        match text.trim() {
            "very-low" => Some(Urgency::VeryLow),
            "low" => Some(Urgency::Low),
            "normal" => Some(Urgency::Normal),
            "high" => Some(Urgency::High),
            _ => None,
        }
    }
}

/// The application server's VAPID key pair (P-256). Browsers subscribe with its public key; the
/// private key signs every request's token.
#[derive(Clone)]
pub struct VapidKey {
    signing: p256::ecdsa::SigningKey,
    /// The uncompressed public key, base64url: the `k=` of every request, and the
    /// `applicationServerKey` the web page gives `pushManager.subscribe`.
    public: String,
}

impl VapidKey {
    /// From the raw 32-byte private scalar in base64url, the form `web-push generate-vapid-keys`
    /// and [`VapidKey::private_base64url`] print.
    pub fn from_base64url(text: &str) -> Result<VapidKey, String> {
        let bytes =
            decode_base64url(text).ok_or_else(|| "the private key is not base64url".to_string())?;
        if bytes.len() != 32 {
            return Err(format!(
                "the private key is {} bytes long; a P-256 private key is 32 bytes",
                bytes.len()
            ));
        }
        let secret = SecretKey::from_slice(&bytes)
            .map_err(|_| "the private key is not a valid P-256 scalar".to_string())?;
        Ok(VapidKey::from_secret(&secret))
    }

    /// From a PEM file's text: PKCS#8 (`BEGIN PRIVATE KEY`, as `openssl genpkey` writes it) or
    /// SEC1 (`BEGIN EC PRIVATE KEY`, as `openssl ecparam -genkey` writes it).
    pub fn from_pem(text: &str) -> Result<VapidKey, String> {
        use p256::pkcs8::DecodePrivateKey as _;
        let secret = if text.contains("BEGIN EC PRIVATE KEY") {
            SecretKey::from_sec1_pem(text)
                .map_err(|e| format!("not a P-256 key in SEC1 PEM form ({e})"))?
        } else {
            SecretKey::from_pkcs8_pem(text)
                .map_err(|e| format!("not a P-256 key in PKCS#8 PEM form ({e})"))?
        };
        Ok(VapidKey::from_secret(&secret))
    }

    /// A new random key pair (`rappel vapid generate`).
    pub fn generate() -> VapidKey {
        VapidKey::from_secret(&random_secret())
    }

    fn from_secret(secret: &SecretKey) -> VapidKey {
        VapidKey {
            signing: p256::ecdsa::SigningKey::from(secret),
            public: B64.encode(secret.public_key().to_encoded_point(false).as_bytes()),
        }
    }

    /// The public key, uncompressed and base64url: what the web page subscribes with.
    pub fn public_base64url(&self) -> &str {
        &self.public
    }

    /// The private scalar, base64url: what `RAPPEL_VAPID_PRIVATE_KEY` takes. Print it once, to
    /// an operator; never log it.
    pub fn private_base64url(&self) -> String {
        B64.encode(self.signing.to_bytes())
    }

    /// The `Authorization` header for a request to `origin` (RFC 8292 §2 and §3).
    fn authorization(&self, origin: &str, subject: &str, now: Timestamp) -> String {
        let header = B64.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = B64.encode(
            json!({
                "aud": origin,
                "exp": (now + TOKEN_LIFETIME).as_second(),
                "sub": subject,
            })
            .to_string(),
        );
        let input = format!("{header}.{claims}");
        // ES256 is the fixed 64-byte r ‖ s form (RFC 7518 §3.4), which is what `to_bytes` gives.
        let signature: p256::ecdsa::Signature = self.signing.sign(input.as_bytes());
        format!(
            "vapid t={input}.{}, k={}",
            B64.encode(signature.to_bytes()),
            self.public
        )
    }
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// What [`WebPush::new`] needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub key: VapidKey,
    /// Who to contact about our traffic: `mailto:…` or `https:…` (the JWT's `sub`). Push
    /// services write there before they block a misbehaving sender.
    pub subject: String,
    /// How long a push service keeps a message for a device that is offline (`TTL`). A reminder
    /// that arrives a day late is worse than none, hence a day by default.
    pub ttl: Duration,
    pub urgency: Urgency,
    /// The longest a whole request may take, connection included.
    pub timeout: Duration,
    /// Where requests may go beyond public https addresses ([`crate::net_guard`]).
    pub net: NetPolicy,
}

impl Config {
    pub fn new(key: VapidKey, subject: &str) -> Config {
        Config {
            key,
            subject: subject.to_string(),
            ttl: Duration::from_secs(24 * 3600),
            urgency: Urgency::Normal,
            timeout: Duration::from_secs(10),
            net: NetPolicy::default(),
        }
    }
}

/// Push notifications through the subscribers' push services.
pub struct WebPush {
    client: reqwest::Client,
    key: VapidKey,
    subject: String,
    ttl: u64,
    urgency: Urgency,
    net: NetPolicy,
}

impl WebPush {
    pub fn new(config: Config) -> Result<WebPush, ConfigError> {
        let subject = config.subject.trim();
        let valid_subject = match subject.split_once(':') {
            Some(("mailto", address)) => address.contains('@'),
            Some(("https", _)) => reqwest::Url::parse(subject).is_ok(),
            _ => false,
        };
        if !valid_subject {
            return Err(ConfigError {
                field: "subject",
                reason: format!(
                    "`{subject}` is not a mailto: address or an https: URL (RFC 8292 §2.1)"
                ),
            });
        }
        if config.timeout.is_zero() {
            return Err(ConfigError {
                field: "timeout",
                reason: "the request time-out must be above zero".into(),
            });
        }
        // No redirects (a push service does not redirect a subscription; following one would
        // send the payload and our token somewhere the browser never chose), and connections
        // only to the addresses the policy permits.
        let client = net_guard::client_builder(config.net)
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("rappel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError {
                field: "options",
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(WebPush {
            client,
            key: config.key,
            subject: subject.to_string(),
            ttl: config.ttl.as_secs(),
            urgency: config.urgency,
            net: config.net,
        })
    }

    async fn deliver(&self, message: &OutboundMessage) -> Result<Receipt, ChannelError> {
        let target = message.push.as_deref().ok_or_else(|| {
            ChannelError::Permanent("the message carries no push subscription".into())
        })?;
        let endpoint = endpoint_url(&target.endpoint, &self.net)?;
        let keys = SubscriptionKeys::parse(&target.p256dh, &target.auth)
            .map_err(|(_, reason)| ChannelError::Permanent(reason))?;
        let payload = json!({
            "title": message.subject.as_deref().filter(|s| !s.trim().is_empty()).unwrap_or(&message.sender_name),
            "body": message.text,
            "tag": message.id,
        })
        .to_string();
        let body = encrypt(payload.as_bytes(), &keys)?;
        let authorization = self.key.authorization(
            &endpoint.origin().ascii_serialization(),
            &self.subject,
            Timestamp::now(),
        );
        let request = self
            .client
            .post(endpoint)
            .header("TTL", self.ttl.to_string())
            .header("Urgency", self.urgency.as_str())
            .header("Topic", topic(message))
            .header(CONTENT_ENCODING, "aes128gcm")
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(AUTHORIZATION, authorization)
            .body(body);
        let response = request.send().await.map_err(|e| self.request_failed(e))?;
        let status = response.status();
        let headers = response.headers().clone();
        if status.is_success() {
            return Ok(Receipt {
                provider_id: headers
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .map(String::from),
                cost_cents: None,
            });
        }
        let text = response.text().await.unwrap_or_default();
        Err(failure(status, &headers, &text, Timestamp::now()))
    }

    /// No HTTP answer: the request could not be built, sent, or finished in time.
    fn request_failed(&self, error: reqwest::Error) -> ChannelError {
        if error.is_builder() {
            return ChannelError::Permanent(format!(
                "push: cannot build the request: {}",
                error.without_url()
            ));
        }
        // Refused or unreachable, and no more: the cause would tell a practice which ports are
        // open where a subscription points.
        let reason = net_guard::failure_text(&error, "the push service");
        if net_guard::is_refusal(&error) {
            return ChannelError::Permanent(reason);
        }
        // The push service may have accepted the message before a time-out: the retry carries
        // the same `Topic`, so it replaces the first while that one is undelivered.
        ChannelError::Transient {
            reason,
            retry_after: None,
        }
    }
}

impl Transport for WebPush {
    fn send<'a>(&'a self, message: &'a OutboundMessage) -> SendFuture<'a> {
        Box::pin(self.deliver(message))
    }
}

/// What a push service's failure answer means (see the table in the module documentation).
fn failure(status: StatusCode, headers: &HeaderMap, body: &str, now: Timestamp) -> ChannelError {
    let code = status.as_u16();
    let detail: String = body.trim().chars().take(200).collect();
    let reason = if detail.is_empty() {
        format!("the push service answered HTTP {code}")
    } else {
        format!("the push service answered HTTP {code}: {detail}")
    };
    match code {
        404 | 410 => ChannelError::Gone(reason),
        429 | 500..=599 => ChannelError::Transient {
            reason,
            retry_after: retry_after(headers, now),
        },
        // The push service refuses our VAPID token or key, which is true of every message until
        // an operator fixes RAPPEL_VAPID_*: retrying loses nothing in the meantime.
        401 | 403 => ChannelError::Transient {
            reason: format!("{reason} (check RAPPEL_VAPID_PRIVATE_KEY and RAPPEL_VAPID_SUBJECT)"),
            retry_after: None,
        },
        _ => ChannelError::Permanent(reason),
    }
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 §10.2.3).
fn retry_after(headers: &HeaderMap, now: Timestamp) -> Option<SignedDuration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<i64>() {
        return Some(SignedDuration::from_secs(seconds.max(0)));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    Some(at.duration_since(now).max(SignedDuration::ZERO))
}

/// The endpoint as a URL we may post to, by [`net_guard::check_url`]: subscriptions are checked
/// when they are recorded; this is the last line (and the resolver checks named hosts).
fn endpoint_url(endpoint: &str, net: &NetPolicy) -> Result<reqwest::Url, ChannelError> {
    net_guard::check_url(endpoint, net)
        .map_err(|refusal| ChannelError::Permanent(format!("the push endpoint: {refusal}")))
}

/// RFC 8030 §5.4: a newer message with the same topic replaces an undelivered older one. The
/// same notification always has the same topic, so a retry after a time-out cannot show twice
/// on a device that was offline. 24 bytes of a digest give the 32 base64url characters allowed.
fn topic(message: &OutboundMessage) -> String {
    let digest = digest::digest(
        &digest::SHA256,
        format!("{}\n{}", message.practice_id, message.id).as_bytes(),
    );
    B64.encode(&digest.as_ref()[..24])
}

/// A subscription's keys, decoded and checked.
#[derive(Clone, PartialEq, Eq)]
pub struct SubscriptionKeys {
    /// The user agent's public key, uncompressed (65 bytes, starting with 0x04).
    p256dh: Vec<u8>,
    /// The authentication secret (16 bytes).
    auth: Vec<u8>,
}

impl SubscriptionKeys {
    /// From the base64url strings of `PushSubscription.toJSON().keys`. An error names the field
    /// (`p256dh` or `auth`) and says what is wrong.
    pub fn parse(p256dh: &str, auth: &str) -> Result<SubscriptionKeys, (&'static str, String)> {
        let public = decode_base64url(p256dh).ok_or(("p256dh", "must be base64url".to_string()))?;
        if public.len() != 65 || public[0] != 0x04 {
            return Err((
                "p256dh",
                format!(
                    "must be an uncompressed P-256 public key (65 bytes starting with 0x04), got {} bytes",
                    public.len()
                ),
            ));
        }
        if PublicKey::from_sec1_bytes(&public).is_err() {
            return Err(("p256dh", "is not a point on the P-256 curve".to_string()));
        }
        let auth = decode_base64url(auth).ok_or(("auth", "must be base64url".to_string()))?;
        if auth.len() != 16 {
            return Err((
                "auth",
                format!(
                    "must be a 16-byte authentication secret, got {} bytes",
                    auth.len()
                ),
            ));
        }
        Ok(SubscriptionKeys {
            p256dh: public,
            auth,
        })
    }
}

impl std::fmt::Debug for SubscriptionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubscriptionKeys(..)")
    }
}

/// base64url with or without its `=` padding, as browsers and libraries variously write it.
fn decode_base64url(text: &str) -> Option<Vec<u8>> {
    B64.decode(text.trim().trim_end_matches('=')).ok()
}

/// Encrypts `payload` for a subscription with a fresh ephemeral key and salt (RFC 8291).
pub fn encrypt(payload: &[u8], keys: &SubscriptionKeys) -> Result<Vec<u8>, ChannelError> {
    let ephemeral = random_secret();
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| ChannelError::Transient {
            reason: "the system's random number generator failed".into(),
            retry_after: None,
        })?;
    encrypt_with(payload, keys, &ephemeral.to_bytes().into(), &salt)
}

/// Encrypts `payload` with the given ephemeral private key and salt: the whole `aes128gcm` body,
/// header included. Both must be fresh for every message; they are parameters so that RFC
/// 8291's example can be reproduced byte for byte.
pub fn encrypt_with(
    payload: &[u8],
    keys: &SubscriptionKeys,
    ephemeral_private: &[u8; 32],
    salt: &[u8; 16],
) -> Result<Vec<u8>, ChannelError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(ChannelError::Permanent(format!(
            "the push payload is {} bytes long; a push message carries at most {MAX_PAYLOAD}",
            payload.len()
        )));
    }
    let as_secret = SecretKey::from_slice(ephemeral_private)
        .map_err(|_| ChannelError::Permanent("invalid ephemeral key".into()))?;
    let as_public = as_secret.public_key().to_encoded_point(false);
    let ua_public = PublicKey::from_sec1_bytes(&keys.p256dh)
        .map_err(|_| ChannelError::Permanent("the subscription's p256dh key is invalid".into()))?;
    let shared = p256::ecdh::diffie_hellman(as_secret.to_nonzero_scalar(), ua_public.as_affine());

    // RFC 8291 §3.4: IKM = HKDF(auth, ecdh_secret, "WebPush: info" ‖ 0 ‖ ua_public ‖ as_public, 32)
    let mut ikm = [0u8; 32];
    hkdf_sha256(
        &keys.auth,
        shared.raw_secret_bytes(),
        &[b"WebPush: info\0", &keys.p256dh, as_public.as_bytes()],
        &mut ikm,
    );
    // RFC 8188 §2.2 and §2.3: the content encryption key and the nonce, from the salt.
    let mut cek = [0u8; 16];
    hkdf_sha256(salt, &ikm, &[b"Content-Encoding: aes128gcm\0"], &mut cek);
    let mut nonce = [0u8; 12];
    hkdf_sha256(salt, &ikm, &[b"Content-Encoding: nonce\0"], &mut nonce);

    let mut body = Vec::with_capacity(HEADER_LEN + payload.len() + 1 + TAG_LEN);
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65);
    body.extend_from_slice(as_public.as_bytes());
    // One record, the last: the payload then its delimiter 0x02 (RFC 8188 §2), no padding. The
    // first record's nonce is the derived nonce itself (sequence number 0).
    let mut record = Vec::with_capacity(payload.len() + 1 + TAG_LEN);
    record.extend_from_slice(payload);
    record.push(0x02);
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_128_GCM, &cek).expect("a 16-byte AES-128 key"),
    );
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(nonce),
        aead::Aad::empty(),
        &mut record,
    )
    .map_err(|_| ChannelError::Permanent("cannot encrypt the push payload".into()))?;
    body.extend_from_slice(&record);
    debug_assert!(body.len() <= MAX_BODY);
    Ok(body)
}

/// HKDF-SHA-256 (RFC 5869) of at most 32 bytes: extract with `salt`, expand with `info`.
fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    hkdf::Salt::new(hkdf::HKDF_SHA256, salt)
        .extract(ikm)
        .expand(info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .expect("an HKDF output of at most 32 bytes");
}

/// A uniformly random P-256 private key from the system's generator.
fn random_secret() -> SecretKey {
    let rng = SystemRandom::new();
    loop {
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes)
            .expect("the system's random number generator");
        // Out of range (zero or above the group order) with a probability below 2^-32.
        if let Ok(secret) = SecretKey::from_slice(&bytes) {
            return secret;
        }
    }
}

#[cfg(test)]
mod tests;
