//! The Web Push transport against a push service played on loopback by an axum server. The
//! test holds what a browser holds (the subscription's private key and auth secret), so it
//! checks what a real push service and browser would: the VAPID token (ES256 signature against
//! the `k=` key, audience, expiry, subject), the RFC 8030 headers, and the body, which it
//! decrypts per RFC 8291 with code of its own rather than the transport's.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jiff::{SignedDuration, Timestamp};
use p256::ecdsa::signature::Verifier as _;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::{PublicKey, SecretKey};
use rappel_channels::push::{Config, VapidKey, WebPush};
use rappel_channels::{ChannelError, OutboundMessage, PushTarget, Transport};
use rappel_domain::notification::Channel;
use ring::{aead, hmac};
use serde_json::{Value, json};

const SUBJECT: &str = "mailto:technique@cabinet.example";

/// One request as the push service received it.
#[derive(Clone)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }
}

/// The push service: `/push/ok` accepts, `/push/gone` answers 410, `/push/busy` 429 with
/// `Retry-After: 120`, `/push/vapid` 403.
#[derive(Clone)]
struct PushService {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn receive(
    State(seen): State<Arc<Mutex<Vec<Seen>>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    seen.lock().unwrap().push(Seen {
        path: format!("/push/{name}"),
        headers,
        body: body.to_vec(),
    });
    match name.as_str() {
        "ok" => (
            StatusCode::CREATED,
            [("location", "https://push.example/m/42")],
        )
            .into_response(),
        "gone" => (StatusCode::GONE, "subscription expired").into_response(),
        "busy" => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "120")]).into_response(),
        _ => (StatusCode::FORBIDDEN, "invalid JWT").into_response(),
    }
}

async fn push_service() -> PushService {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/push/{name}", axum::routing::post(receive))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    PushService { addr, seen }
}

/// What the browser keeps of its subscription.
struct Browser {
    private: SecretKey,
    auth: [u8; 16],
}

impl Browser {
    fn new() -> Browser {
        let private = SecretKey::from_slice(&[7u8; 32]).unwrap();
        Browser {
            private,
            auth: *b"0123456789abcdef",
        }
    }

    fn target(&self, endpoint: String) -> PushTarget {
        PushTarget {
            endpoint,
            p256dh: B64.encode(self.private.public_key().to_encoded_point(false).as_bytes()),
            auth: B64.encode(self.auth),
        }
    }

    /// RFC 8291 §3 and RFC 8188 §2, from the receiving side.
    fn decrypt(&self, body: &[u8]) -> Vec<u8> {
        let salt = &body[..16];
        let rs = u32::from_be_bytes(body[16..20].try_into().unwrap());
        assert_eq!(rs, 4096, "record size");
        let idlen = body[20] as usize;
        assert_eq!(
            idlen, 65,
            "the key id is the sender's uncompressed public key"
        );
        let as_public = &body[21..21 + idlen];
        let ciphertext = &body[21 + idlen..];
        let sender = PublicKey::from_sec1_bytes(as_public).expect("a P-256 point");
        let ecdh = p256::ecdh::diffie_hellman(self.private.to_nonzero_scalar(), sender.as_affine());
        let ua_public = self.private.public_key().to_encoded_point(false);

        let hmac_sha256 = |key: &[u8], parts: &[&[u8]]| -> Vec<u8> {
            let key = hmac::Key::new(hmac::HMAC_SHA256, key);
            let mut context = hmac::Context::with_key(&key);
            for part in parts {
                context.update(part);
            }
            context.sign().as_ref().to_vec()
        };
        let prk_key = hmac_sha256(&self.auth, &[ecdh.raw_secret_bytes()]);
        let ikm = hmac_sha256(
            &prk_key,
            &[b"WebPush: info\0", ua_public.as_bytes(), as_public, &[1]],
        );
        let prk = hmac_sha256(salt, &[&ikm]);
        let cek = &hmac_sha256(&prk, &[b"Content-Encoding: aes128gcm\0", &[1]])[..16];
        let nonce = &hmac_sha256(&prk, &[b"Content-Encoding: nonce\0", &[1]])[..12];

        let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, cek).unwrap());
        let mut record = ciphertext.to_vec();
        let plain = key
            .open_in_place(
                aead::Nonce::try_assume_unique_for_key(nonce).unwrap(),
                aead::Aad::empty(),
                &mut record,
            )
            .expect("the body decrypts with the subscription's keys");
        // The last record ends with the delimiter 0x02, then only zero padding.
        let end = plain.iter().rposition(|&b| b != 0).expect("a delimiter");
        assert_eq!(plain[end], 0x02, "the last record's delimiter");
        plain[..end].to_vec()
    }
}

fn message(endpoint: String, browser: &Browser) -> OutboundMessage {
    OutboundMessage {
        id: "a:a1/reminder_push_d1/push/patient:p1".into(),
        practice_id: "prac".into(),
        channel: Channel::Push,
        to: endpoint.clone(),
        subject: None,
        text: "Rappel : rendez-vous demain à 10:00 avec Dr Martin.".into(),
        sender_name: "Cabinet du Parc".into(),
        calendar: None,
        html: None,
        push: Some(Box::new(browser.target(endpoint))),
        letter: None,
        logo: None,
    }
}

fn transport(key: &VapidKey) -> WebPush {
    // The push service of these tests listens on loopback, over plain http.
    WebPush::new(Config {
        net: rappel_channels::net_guard::NetPolicy::loopback_for_tests(),
        ..Config::new(key.clone(), SUBJECT)
    })
    .unwrap()
}

/// Checks the VAPID `Authorization` header as a push service does (RFC 8292 §2–3) and answers
/// the public key it names.
fn verify_vapid(header: &str, origin: &str) -> String {
    let rest = header.strip_prefix("vapid ").expect("the vapid scheme");
    let mut token = None;
    let mut key = None;
    for param in rest.split(',') {
        let (name, value) = param.trim().split_once('=').unwrap();
        match name {
            "t" => token = Some(value.to_string()),
            "k" => key = Some(value.to_string()),
            other => panic!("unexpected parameter {other}"),
        }
    }
    let (token, key) = (token.expect("t="), key.expect("k="));
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWS compact serialization");
    let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    let claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["aud"], origin);
    assert_eq!(claims["sub"], SUBJECT);
    let exp = claims["exp"].as_i64().expect("a numeric exp");
    let now = Timestamp::now().as_second();
    assert!(
        exp > now && exp <= now + 24 * 3600,
        "exp is in the next 24 h"
    );
    let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(&B64.decode(&key).unwrap())
        .expect("k= is a P-256 public key");
    let signature =
        p256::ecdsa::Signature::from_slice(&B64.decode(parts[2]).unwrap()).expect("r ‖ s");
    public
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .expect("the token is signed by the k= key");
    key
}

#[tokio::test]
async fn a_push_message_is_encrypted_for_the_subscription_and_signed_with_vapid() {
    let service = push_service().await;
    let browser = Browser::new();
    let key = VapidKey::generate();
    let endpoint = format!("http://{}/push/ok", service.addr);
    let receipt = transport(&key)
        .send(&message(endpoint, &browser))
        .await
        .unwrap();
    assert_eq!(
        receipt.provider_id.as_deref(),
        Some("https://push.example/m/42")
    );

    let seen = service.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.path, "/push/ok");
    assert_eq!(seen.header("ttl"), "86400");
    assert_eq!(seen.header("urgency"), "normal");
    assert_eq!(seen.header("content-encoding"), "aes128gcm");
    let topic = seen.header("topic");
    assert!(
        topic.len() <= 32
            && topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "a Topic of at most 32 base64url characters: {topic}"
    );
    let k = verify_vapid(
        seen.header("authorization"),
        &format!("http://{}", service.addr),
    );
    assert_eq!(k, key.public_base64url());

    let payload: Value = serde_json::from_slice(&browser.decrypt(&seen.body)).unwrap();
    assert_eq!(
        payload,
        json!({
            "title": "Cabinet du Parc",
            "body": "Rappel : rendez-vous demain à 10:00 avec Dr Martin.",
            "tag": "a:a1/reminder_push_d1/push/patient:p1",
        })
    );
}

#[tokio::test]
async fn the_subject_titles_the_notification_when_there_is_one() {
    let service = push_service().await;
    let browser = Browser::new();
    let mut message = message(format!("http://{}/push/ok", service.addr), &browser);
    message.subject = Some("Votre rendez-vous".into());
    transport(&VapidKey::generate())
        .send(&message)
        .await
        .unwrap();
    let seen = service.seen.lock().unwrap()[0].clone();
    let payload: Value = serde_json::from_slice(&browser.decrypt(&seen.body)).unwrap();
    assert_eq!(payload["title"], "Votre rendez-vous");
}

#[tokio::test]
async fn a_subscription_the_push_service_no_longer_knows_is_gone() {
    let service = push_service().await;
    let browser = Browser::new();
    let error = transport(&VapidKey::generate())
        .send(&message(
            format!("http://{}/push/gone", service.addr),
            &browser,
        ))
        .await
        .unwrap_err();
    assert!(matches!(error, ChannelError::Gone(_)), "{error:?}");
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn a_busy_push_service_is_retried_after_the_time_it_asks() {
    let service = push_service().await;
    let browser = Browser::new();
    let error = transport(&VapidKey::generate())
        .send(&message(
            format!("http://{}/push/busy", service.addr),
            &browser,
        ))
        .await
        .unwrap_err();
    match error {
        ChannelError::Transient { retry_after, .. } => {
            assert_eq!(retry_after, Some(SignedDuration::from_secs(120)));
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_vapid_token_is_retried_because_it_is_our_configuration() {
    let service = push_service().await;
    let browser = Browser::new();
    let error = transport(&VapidKey::generate())
        .send(&message(
            format!("http://{}/push/vapid", service.addr),
            &browser,
        ))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert!(error.to_string().contains("RAPPEL_VAPID"), "{error}");
}

#[tokio::test]
async fn a_message_without_keys_or_too_long_is_refused_before_sending() {
    let service = push_service().await;
    let browser = Browser::new();
    let push = transport(&VapidKey::generate());
    let mut without_keys = message(format!("http://{}/push/ok", service.addr), &browser);
    without_keys.push = None;
    assert!(matches!(
        push.send(&without_keys).await,
        Err(ChannelError::Permanent(_))
    ));
    let mut too_long = message(format!("http://{}/push/ok", service.addr), &browser);
    too_long.text = "x".repeat(4000);
    assert!(matches!(
        push.send(&too_long).await,
        Err(ChannelError::Permanent(_))
    ));
    assert!(
        service.seen.lock().unwrap().is_empty(),
        "nothing was posted"
    );
}

/// The transport as production builds it: public https addresses only.
fn strict_transport(key: &VapidKey) -> WebPush {
    WebPush::new(Config::new(key.clone(), SUBJECT)).unwrap()
}

#[tokio::test]
async fn a_plain_http_endpoint_is_refused() {
    let browser = Browser::new();
    let error = strict_transport(&VapidKey::generate())
        .send(&message("http://push.example/x".into(), &browser))
        .await
        .unwrap_err();
    assert!(matches!(error, ChannelError::Permanent(_)), "{error:?}");
}

/// SSRF: without the operator's allowance, no spelling of a loopback address reaches the
/// service listening there, and the error says "refused" without any connection detail.
#[tokio::test]
async fn a_loopback_endpoint_in_any_spelling_is_refused_and_nothing_reaches_it() {
    let service = push_service().await;
    let browser = Browser::new();
    let port = service.addr.port();
    let transport = strict_transport(&VapidKey::generate());
    for host in [
        "127.0.0.1",
        "127.1",
        "0x7f000001",
        "0177.0.0.1",
        "[::1]",
        "localhost.",
    ] {
        let error = transport
            .send(&message(format!("https://{host}:{port}/push/ok"), &browser))
            .await
            .unwrap_err();
        let ChannelError::Permanent(reason) = &error else {
            panic!("{host}: {error:?}");
        };
        assert!(reason.contains("not a public one"), "{host}: {reason}");
        assert!(!reason.contains(&port.to_string()), "{host}: {reason}");
    }
    assert!(
        service.seen.lock().unwrap().is_empty(),
        "nothing was posted"
    );
}
