//! The SMS transports against emulated providers: a small axum server on loopback per test
//! plays Twilio, OVHcloud or a practice's gateway, checks the request against the provider's
//! documented shape (path, authentication, signature, fields) and gives the documented answers,
//! so that each answer's classification (sent, permanent, transient) is what a real provider
//! would get from us.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use jiff::SignedDuration;
use rappel_channels::sms::webhook::SigningKey;
use rappel_channels::sms::{ConfigError, OvhSms, SmsOptions, TwilioSms, WebhookSms};
use rappel_channels::sms::{ovh, twilio, webhook};
use rappel_channels::{ChannelError, OutboundMessage, Transport};
use rappel_domain::notification::Channel;
use serde_json::{Value, json};

// ---- an emulated provider ------------------------------------------------------------------------

/// One request as the provider received it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    /// Path and query.
    uri: String,
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

    fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// What the provider answers.
#[derive(Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

fn answer(status: u16, body: Value) -> Answer {
    Answer {
        status,
        headers: vec![("content-type", "application/json".into())],
        body: body.to_string(),
        delay: Duration::ZERO,
    }
}

#[derive(Clone)]
struct Provider {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Arc<Mutex<Answer>>,
}

impl Provider {
    async fn start(answer: Answer) -> Provider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let provider = Provider {
            addr: listener.local_addr().unwrap(),
            seen: Arc::default(),
            answer: Arc::new(Mutex::new(answer)),
        };
        let app = Router::new().fallback(handle).with_state(provider.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        provider
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn only_request(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        seen.into_iter().next().unwrap()
    }
}

async fn handle(State(provider): State<Provider>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    provider.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts.headers,
        body: body.to_vec(),
    });
    let answer = provider.answer.lock().unwrap().clone();
    tokio::time::sleep(answer.delay).await;
    let mut response = Response::builder().status(StatusCode::from_u16(answer.status).unwrap());
    for (name, value) in answer.headers {
        response = response.header(name, value);
    }
    response.body(Body::from(answer.body)).unwrap()
}

fn message(text: &str) -> OutboundMessage {
    OutboundMessage {
        html: None,
        push: None,
        letter: None,
        logo: None,
        id: "a:apt1/reminder_sms/sms/patient:p1".into(),
        practice_id: "cab1".into(),
        channel: Channel::Sms,
        to: "+33612345678".into(),
        subject: None,
        text: text.into(),
        sender_name: "Cabinet Martin".into(),
        calendar: None,
    }
}

fn options() -> SmsOptions {
    SmsOptions {
        rate_per_second: 1000.0,
        timeout: Duration::from_millis(500),
    }
}

fn permanent(outcome: Result<rappel_channels::Receipt, ChannelError>) -> String {
    match outcome {
        Err(ChannelError::Permanent(reason)) => reason,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

fn transient(
    outcome: Result<rappel_channels::Receipt, ChannelError>,
) -> (String, Option<SignedDuration>) {
    match outcome {
        Err(ChannelError::Transient {
            reason,
            retry_after,
        }) => (reason, retry_after),
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

// ---- Twilio ----------------------------------------------------------------------------------------

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "twilio-auth-token";

fn twilio_at(provider: &Provider, from: &str) -> TwilioSms {
    TwilioSms::new(twilio::Config {
        base_url: provider.base(),
        status_callback: Some("https://rappel.example/v1/webhooks/sms/twilio".into()),
        options: options(),
        ..twilio::Config::new(SID, TOKEN, from)
    })
    .expect("valid Twilio settings")
}

fn twilio_created() -> Answer {
    answer(
        201,
        json!({"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued",
               "account_sid": SID, "num_segments": "1"}),
    )
}

#[tokio::test]
async fn twilio_gets_the_documented_form_with_basic_auth_and_its_sid_is_the_receipt() {
    let provider = Provider::start(twilio_created()).await;
    let transport = twilio_at(&provider, "DrMartin");
    let receipt = transport
        .send(&message("Rappel : RDV demain à 14h30."))
        .await
        .unwrap();
    assert_eq!(
        receipt.provider_id.as_deref(),
        Some("SM0123456789abcdef0123456789abcdef")
    );

    let seen = provider.only_request();
    assert_eq!(seen.method, "POST");
    assert_eq!(
        seen.uri,
        format!("/2010-04-01/Accounts/{SID}/Messages.json")
    );
    let credentials = seen
        .header("authorization")
        .strip_prefix("Basic ")
        .expect("Basic auth");
    assert_eq!(
        BASE64.decode(credentials).unwrap(),
        format!("{SID}:{TOKEN}").into_bytes()
    );
    assert_eq!(
        seen.header("content-type"),
        "application/x-www-form-urlencoded"
    );
    let form = seen.form();
    let field = |name: &str| {
        form.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("To"), Some("+33612345678"));
    assert_eq!(field("From"), Some("DrMartin"));
    assert_eq!(field("Body"), Some("Rappel : RDV demain à 14h30."));
    assert_eq!(field("MessagingServiceSid"), None);
    assert_eq!(
        field("StatusCallback"),
        Some(
            "https://rappel.example/v1/webhooks/sms/twilio?practice=cab1&key=a%3Aapt1%2Freminder_sms%2Fsms%2Fpatient%3Ap1"
        ),
        "the callback names the notification"
    );
}

#[tokio::test]
async fn twilio_with_a_messaging_service_sends_its_sid_instead_of_from() {
    let provider = Provider::start(twilio_created()).await;
    let service = "MG0123456789abcdef0123456789abcdef";
    twilio_at(&provider, service)
        .send(&message("Rappel"))
        .await
        .unwrap();
    let form = provider.only_request().form();
    assert!(form.contains(&("MessagingServiceSid".into(), service.into())));
    assert!(!form.iter().any(|(n, _)| n == "From"));
}

#[tokio::test]
async fn twilio_400_is_permanent_with_twilios_code_and_message_and_the_number_masked() {
    let provider = Provider::start(answer(
        400,
        json!({"code": 21211, "message": "The 'To' number +33612345678 is not a valid phone number.",
               "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}),
    ))
    .await;
    let reason = permanent(
        twilio_at(&provider, "DrMartin")
            .send(&message("Rappel"))
            .await,
    );
    assert!(reason.contains("error 21211"), "{reason}");
    assert!(reason.contains("is not a valid phone number"), "{reason}");
    assert!(!reason.contains("612345678"), "{reason}");

    *provider.answer.lock().unwrap() = answer(
        400,
        json!({"code": 21610, "message": "Attempt to send to unsubscribed recipient",
               "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400}),
    );
    let reason = permanent(
        twilio_at(&provider, "DrMartin")
            .send(&message("Rappel"))
            .await,
    );
    assert!(reason.contains("error 21610"), "{reason}");
}

#[tokio::test]
async fn twilio_429_is_transient_and_keeps_retry_after() {
    let mut too_many = answer(
        429,
        json!({"code": 20429, "message": "Too Many Requests", "status": 429}),
    );
    too_many.headers.push(("retry-after", "7".into()));
    let provider = Provider::start(too_many).await;
    let (reason, retry_after) = transient(
        twilio_at(&provider, "DrMartin")
            .send(&message("Rappel"))
            .await,
    );
    assert_eq!(retry_after, Some(SignedDuration::from_secs(7)));
    assert!(reason.contains("429"), "{reason}");
}

#[tokio::test]
async fn twilio_500_is_transient() {
    let provider = Provider::start(answer(500, json!({"message": "oops"}))).await;
    let (reason, retry_after) = transient(
        twilio_at(&provider, "DrMartin")
            .send(&message("Rappel"))
            .await,
    );
    assert!(reason.contains("500"), "{reason}");
    assert_eq!(retry_after, None);
}

#[tokio::test]
async fn twilio_refusing_our_credentials_is_transient_so_queued_messages_survive_a_fix() {
    let provider = Provider::start(answer(
        401,
        json!({"code": 20003, "message": "Authenticate", "status": 401}),
    ))
    .await;
    let (reason, _) = transient(
        twilio_at(&provider, "DrMartin")
            .send(&message("Rappel"))
            .await,
    );
    assert!(reason.contains("20003"), "{reason}");
}

#[tokio::test]
async fn twilio_answering_too_late_is_a_transient_timeout() {
    let mut slow = twilio_created();
    slow.delay = Duration::from_secs(3);
    let provider = Provider::start(slow).await;
    let (reason, _) = transient(
        twilio_at(&provider, "DrMartin")
            .send(&message("Rappel"))
            .await,
    );
    assert!(reason.contains("no answer within 500 ms"), "{reason}");
}

#[tokio::test]
async fn twilio_settings_are_checked_when_the_transport_is_built() {
    let build = |sid: &str, from: &str| TwilioSms::new(twilio::Config::new(sid, TOKEN, from));
    let error = |result: Result<TwilioSms, ConfigError>| match result {
        Err(error) => error,
        Ok(_) => panic!("accepted"),
    };
    assert_eq!(error(build(SID, "Dr.Martin")).field, "from");
    assert_eq!(error(build(SID, "CabinetMedicalMartin")).field, "from");
    assert_eq!(error(build(SID, "+33 6 12")).field, "from");
    assert_eq!(error(build("AC123", "DrMartin")).field, "account_sid");
    assert!(build(SID, "+33612345678").is_ok());
    let zero_rate = TwilioSms::new(twilio::Config {
        options: SmsOptions {
            rate_per_second: 0.0,
            ..SmsOptions::default()
        },
        ..twilio::Config::new(SID, TOKEN, "DrMartin")
    });
    assert_eq!(error(zero_rate).field, "options.rate_per_second");
}

#[tokio::test]
async fn a_recipient_not_in_e164_is_refused_without_calling_the_provider() {
    let provider = Provider::start(twilio_created()).await;
    let mut bad = message("Rappel");
    bad.to = "06 12 34 56 78".into();
    permanent(twilio_at(&provider, "DrMartin").send(&bad).await);
    let mut empty = message("");
    empty.to = "+33612345678".into();
    permanent(twilio_at(&provider, "DrMartin").send(&empty).await);
    assert!(provider.seen().is_empty());
}

// ---- OVHcloud ----------------------------------------------------------------------------------------

const AK: &str = "ovh-app-key";
const AS: &str = "ovh-app-secret";
const CK: &str = "ovh-consumer-key";

fn ovh_at(provider: &Provider, sender: &str) -> OvhSms {
    OvhSms::new(ovh::Config {
        base_url: provider.base(),
        options: options(),
        ..ovh::Config::new(AK, AS, CK, "sms-ab12345-1", sender)
    })
    .expect("valid OVH settings")
}

fn ovh_job_created() -> Answer {
    answer(
        200,
        json!({"ids": [26934871], "invalidReceivers": [], "totalCreditsRemoved": 1,
               "validReceivers": ["+33612345678"]}),
    )
}

#[tokio::test]
async fn ovh_gets_a_signed_job_with_the_documented_body_and_its_id_is_the_receipt() {
    let provider = Provider::start(ovh_job_created()).await;
    let receipt = ovh_at(&provider, "DrMartin")
        .send(&message("Rappel : RDV demain à 14h30."))
        .await
        .unwrap();
    assert_eq!(receipt.provider_id.as_deref(), Some("26934871"));

    let seen = provider.only_request();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri, "/1.0/sms/sms-ab12345-1/jobs");
    assert_eq!(seen.header("x-ovh-application"), AK);
    assert_eq!(seen.header("x-ovh-consumer"), CK);
    assert_eq!(seen.header("content-type"), "application/json");
    let timestamp = seen.header("x-ovh-timestamp");
    let now = jiff::Timestamp::now().as_second();
    assert!((timestamp.parse::<i64>().unwrap() - now).abs() < 60);
    // The signature recomputed here from its definition, independently of the transport.
    let url = format!("{}/1.0/sms/sms-ab12345-1/jobs", provider.base());
    let mut signed = format!("{AS}+{CK}+POST+{url}+").into_bytes();
    signed.extend_from_slice(&seen.body);
    signed.extend_from_slice(format!("+{timestamp}").as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &signed);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(seen.header("x-ovh-signature"), format!("$1${hex}"));

    let body = seen.json();
    assert_eq!(body["message"], "Rappel : RDV demain à 14h30.");
    assert_eq!(body["receivers"], json!(["+33612345678"]));
    assert_eq!(body["sender"], "DrMartin");
    assert_eq!(body["noStopClause"], true);
    assert_eq!(body["coding"], "7bit");
    assert_eq!(body["charset"], "UTF-8");
    let tag = body["tag"].as_str().unwrap();
    assert!(!tag.is_empty() && tag.len() <= 20, "{tag}");
    assert!(!tag.contains("apt1"), "the tag is a digest, not the key");
}

#[tokio::test]
async fn ovh_coding_follows_the_encoding_the_text_needs() {
    let provider = Provider::start(ovh_job_created()).await;
    let transport = ovh_at(&provider, "DrMartin");
    transport.send(&message("Reçu, à demain")).await.unwrap();
    transport.send(&message("Recu, à demain")).await.unwrap();
    let seen = provider.seen();
    assert_eq!(seen[0].json()["coding"], "8bit", "ç is not GSM-7");
    assert_eq!(seen[1].json()["coding"], "7bit");
    assert_eq!(
        seen[0].json()["tag"],
        seen[1].json()["tag"],
        "the same notification, the same tag"
    );
}

#[tokio::test]
async fn ovh_listing_the_recipient_as_invalid_is_permanent() {
    let provider = Provider::start(answer(
        200,
        json!({"ids": [], "invalidReceivers": ["+33612345678"], "totalCreditsRemoved": 0,
               "validReceivers": []}),
    ))
    .await;
    let reason = permanent(ovh_at(&provider, "DrMartin").send(&message("Rappel")).await);
    assert!(reason.contains("invalid"), "{reason}");
}

#[tokio::test]
async fn ovh_400_is_permanent_with_ovhs_message() {
    let mut refused = answer(
        400,
        json!({"class": "Client::BadRequest", "message": "Sender DrMartin does not exist"}),
    );
    refused
        .headers
        .push(("x-ovh-queryid", "EU.ext-1.abc".into()));
    let provider = Provider::start(refused).await;
    let reason = permanent(ovh_at(&provider, "DrMartin").send(&message("Rappel")).await);
    assert!(
        reason.contains("Sender DrMartin does not exist"),
        "{reason}"
    );
    assert!(reason.contains("EU.ext-1.abc"), "{reason}");
}

#[tokio::test]
async fn ovh_429_500_and_a_slow_answer_are_transient() {
    let mut too_many = answer(429, json!({"message": "Too many requests"}));
    too_many.headers.push(("retry-after", "30".into()));
    let provider = Provider::start(too_many).await;
    let transport = ovh_at(&provider, "DrMartin");
    let (_, retry_after) = transient(transport.send(&message("Rappel")).await);
    assert_eq!(retry_after, Some(SignedDuration::from_secs(30)));

    *provider.answer.lock().unwrap() = answer(500, json!({"message": "Internal server error"}));
    let (reason, _) = transient(transport.send(&message("Rappel")).await);
    assert!(reason.contains("500"), "{reason}");

    let mut slow = ovh_job_created();
    slow.delay = Duration::from_secs(3);
    *provider.answer.lock().unwrap() = slow;
    let (reason, _) = transient(transport.send(&message("Rappel")).await);
    assert!(reason.contains("no answer"), "{reason}");
}

#[test]
fn ovh_settings_are_checked_when_the_transport_is_built() {
    let build = |service: &str, sender: &str| {
        OvhSms::new(ovh::Config::new(AK, AS, CK, service, sender))
            .err()
            .map(|e| e.field)
    };
    assert_eq!(build("sms-ab12345-1", "Dr Hélène"), Some("sender"));
    assert_eq!(build("sms/../me", "DrMartin"), Some("service_name"));
    assert_eq!(build("sms-ab12345-1", "DrMartin"), None);
}

// ---- a practice's gateway (Standard Webhooks) --------------------------------------------------------

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn gateway_at(provider: &Provider, rate_per_second: f64) -> WebhookSms {
    WebhookSms::new(webhook::Config {
        url: format!("{}/sms/send", provider.base()),
        key: SigningKey::parse(SECRET).unwrap(),
        sender: "DrMartin".into(),
        options: SmsOptions {
            rate_per_second,
            ..options()
        },
    })
    .expect("valid gateway settings")
}

fn accepted() -> Answer {
    answer(202, json!({"accepted": true}))
}

#[tokio::test]
async fn the_gateway_gets_a_standard_webhooks_signature_that_verifies() {
    let provider = Provider::start(accepted()).await;
    let transport = gateway_at(&provider, 1000.0);
    let receipt = transport
        .send(&message("Rappel : RDV demain, 3e étage 😀"))
        .await
        .unwrap();

    let seen = provider.only_request();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri, "/sms/send");
    let id = seen.header("webhook-id");
    let timestamp = seen.header("webhook-timestamp");
    rappel_test_support::signed::dump(
        SECRET,
        id,
        timestamp,
        seen.header("webhook-signature"),
        std::str::from_utf8(&seen.body).unwrap(),
    );
    // Verified here from the scheme's definition, with the key decoded from `whsec_`.
    let key = BASE64
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(&seen.body);
    let expected = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        &content,
    );
    assert_eq!(
        seen.header("webhook-signature"),
        format!("v1,{}", BASE64.encode(expected.as_ref()))
    );

    let body = seen.json();
    assert_eq!(body["id"], id);
    assert_eq!(body["to"], "+33612345678");
    assert_eq!(body["text"], "Rappel : RDV demain, 3e étage 😀");
    assert_eq!(body["sender"], "DrMartin");
    assert_eq!(body["encoding"], "ucs2");
    assert_eq!(body["segments"], 1);
    assert_eq!(receipt.provider_id.as_deref(), Some(id));
}

#[tokio::test]
async fn the_gateway_sees_the_same_webhook_id_for_every_attempt_at_a_notification() {
    let provider = Provider::start(answer(503, json!({}))).await;
    let transport = gateway_at(&provider, 1000.0);
    transient(transport.send(&message("Rappel")).await);
    *provider.answer.lock().unwrap() = accepted();
    transport.send(&message("Rappel")).await.unwrap();
    let mut other = message("Rappel");
    other.practice_id = "cab2".into();
    transport.send(&other).await.unwrap();
    let seen = provider.seen();
    assert_eq!(
        seen[0].header("webhook-id"),
        seen[1].header("webhook-id"),
        "a retry is recognisable as the same message"
    );
    assert_ne!(
        seen[1].header("webhook-id"),
        seen[2].header("webhook-id"),
        "the same key in another practice is another message"
    );
    assert_eq!(seen[1].json()["encoding"], "gsm7");
}

#[tokio::test]
async fn the_gateway_4xx_is_permanent_and_429_5xx_and_slowness_are_transient() {
    let provider = Provider::start(Answer {
        status: 422,
        headers: vec![("content-type", "text/plain".into())],
        body: "unknown destination network".into(),
        delay: Duration::ZERO,
    })
    .await;
    let transport = gateway_at(&provider, 1000.0);
    let reason = permanent(transport.send(&message("Rappel")).await);
    assert!(reason.contains("unknown destination network"), "{reason}");

    let mut too_many = answer(429, json!({}));
    too_many.headers.push(("retry-after", "12".into()));
    *provider.answer.lock().unwrap() = too_many;
    let (_, retry_after) = transient(transport.send(&message("Rappel")).await);
    assert_eq!(retry_after, Some(SignedDuration::from_secs(12)));

    *provider.answer.lock().unwrap() = answer(502, json!({}));
    transient(transport.send(&message("Rappel")).await);

    let mut slow = accepted();
    slow.delay = Duration::from_secs(3);
    *provider.answer.lock().unwrap() = slow;
    let (reason, _) = transient(transport.send(&message("Rappel")).await);
    assert!(reason.contains("no answer"), "{reason}");
}

/// Concurrent senders all get through the rate limit (its spacing is tested on a paused clock
/// in `sms.rs`).
#[tokio::test]
async fn concurrent_sends_through_the_rate_limit_all_arrive() {
    let provider = Provider::start(accepted()).await;
    let transport = Arc::new(gateway_at(&provider, 50.0));
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let transport = transport.clone();
        sends.spawn(async move { transport.send(&message("Rappel")).await });
    }
    while let Some(outcome) = sends.join_next().await {
        outcome.unwrap().unwrap();
    }
    assert_eq!(provider.seen().len(), 5);
}

#[test]
fn the_gateway_settings_are_checked_when_the_transport_is_built() {
    let build = |url: &str, sender: &str| {
        WebhookSms::new(webhook::Config {
            url: url.into(),
            key: SigningKey::parse(SECRET).unwrap(),
            sender: sender.into(),
            options: SmsOptions::default(),
        })
        .err()
        .map(|e| e.field)
    };
    assert_eq!(build("ftp://gateway", "DrMartin"), Some("url"));
    assert_eq!(build("https://gateway.example/sms", "X"), Some("sender"));
    assert_eq!(build("https://gateway.example/sms", "DrMartin"), None);
}
