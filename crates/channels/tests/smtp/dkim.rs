//! DKIM, checked by an independent verifier.

use super::*;
use crate::messages::assert_is_the_confirmation;

/// The RFC 8032 test vector 1 secret key, as a base64 Ed25519 seed, and its public key.
pub(super) const ED25519_SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
pub(super) const ED25519_PUBLIC: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

/// A DNS TXT cache for the independent verifier: the test publishes the key here, so the
/// verifier never queries a real resolver.
#[derive(Default)]
pub(super) struct TxtRecords(Mutex<std::collections::HashMap<String, mail_auth::Txt>>);

impl mail_auth::ResolverCache<String, mail_auth::Txt> for TxtRecords {
    fn get<Q>(&self, name: &Q) -> Option<mail_auth::Txt>
    where
        String: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().get(name).cloned()
    }

    fn remove<Q>(&self, name: &Q) -> Option<mail_auth::Txt>
    where
        String: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().remove(name)
    }

    fn insert(&self, name: String, value: mail_auth::Txt, _: std::time::Instant) {
        self.0.lock().unwrap().insert(name, value);
    }
}

/// Verifies the DKIM signatures of a message as received, with Stalwart's `mail-auth` (an
/// implementation independent of ours) and `record` published at `rappel._domainkey.DOMAIN`.
pub(super) async fn independent_dkim_results(raw: &str, domain: &str, record: &str) -> Vec<String> {
    use mail_auth::common::parse::TxtRecordParser;
    use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
    let txt = TxtRecords::default();
    let key = mail_auth::common::verify::DomainKey::parse(record.as_bytes()).unwrap();
    mail_auth::ResolverCache::insert(
        &txt,
        format!("rappel._domainkey.{domain}."),
        mail_auth::Txt::from(key),
        std::time::Instant::now() + Duration::from_secs(3600),
    );
    // A resolver with no name server: a lookup the cache cannot answer fails here.
    let verifier = mail_auth::MessageAuthenticator::new(
        ResolverConfig::from_parts(None, vec![], Vec::<NameServerConfig>::new()),
        ResolverOpts::default(),
    )
    .unwrap();
    let message = mail_auth::AuthenticatedMessage::parse(raw.as_bytes()).expect("a message");
    let params = mail_auth::Parameters::new(&message).with_txt_cache(&txt);
    verifier
        .verify_dkim(params)
        .await
        .iter()
        .map(|output| format!("{:?}", output.result()))
        .collect()
}

/// Every kind of email Rappel sends: confirmation with `.ics`, reminder without, with the
/// practice's logo, with a practice's own HTML, and one whose subject lettre folds.
pub(super) fn every_kind_of_email() -> Vec<(&'static str, OutboundMessage)> {
    let logo = Some(Arc::new(rappel_channels::LogoImage {
        png: b"\x89PNG\r\n\x1a\n-the-logo-bytes".repeat(40),
        width: 150,
        height: 40,
    }));
    vec![
        ("confirmation with .ics", confirmation()),
        (
            "reminder without .ics",
            OutboundMessage {
                id: "a:appt-1/reminder/email/patient".into(),
                calendar: None,
                ..confirmation()
            },
        ),
        (
            "confirmation with logo",
            OutboundMessage {
                logo: logo.clone(),
                ..confirmation()
            },
        ),
        (
            "reminder with logo",
            OutboundMessage {
                calendar: None,
                logo,
                ..confirmation()
            },
        ),
        (
            "the practice's HTML",
            OutboundMessage {
                html: Some("<html><body><p>Bonjour <b>Jean</b> \u{e9}t\u{e9}   \t</p>\n\n\n</body></html>".into()),
                calendar: None,
                ..confirmation()
            },
        ),
        (
            "a subject that starts with a long non-ASCII word",
            OutboundMessage {
                subject: Some("Rendez-vous\u{a0}confirmé\u{a0}chez\u{a0}le\u{a0}Dr\u{a0}Émilie\u{a0}Martin\u{a0}au\u{a0}cabinet".into()),
                ..confirmation()
            },
        ),
        (
            "a long ASCII subject and a plain name",
            OutboundMessage {
                subject: Some(format!("Re: {}", "rappel de votre rendez-vous ".repeat(6))),
                sender_name: "Cabinet Lilas".into(),
                text: "Bonjour,  \n\n  deux  espaces\t\n\n\n".into(),
                ..confirmation()
            },
        ),
    ]
}

#[tokio::test]
async fn every_email_passes_an_independent_dkim_verification_with_rsa_and_ed25519_keys() {
    let dir = temp_dir("dkim");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let ed25519 = dir.join("dkim.key");
    std::fs::write(&ed25519, format!("{ED25519_SEED}\n")).unwrap();
    let rsa_public = std::fs::read_to_string(fixtures.join("dkim-rsa.pub.b64")).unwrap();
    let keys = [
        (
            "ed25519",
            ed25519,
            format!("v=DKIM1; k=ed25519; p={ED25519_PUBLIC}"),
        ),
        (
            "rsa",
            fixtures.join("dkim-rsa.pem"),
            format!("v=DKIM1; k=rsa; p={}", rsa_public.trim()),
        ),
    ];
    for (algorithm, key, record) in keys {
        let server = Server::start(Mode::Accept).await;
        let transport = SmtpTransport::new(SmtpConfig {
            url: SmtpUrl::parse(&server.url()).unwrap(),
            sender: Sender::parse("Rappel <no-reply@cabinet.example>").unwrap(),
            timeout: Duration::from_secs(5),
            dkim: Some(Dkim::load(&key, "rappel", "cabinet.example").unwrap()),
            bounce: None,
        });
        let kinds = every_kind_of_email();
        for (_, message) in &kinds {
            transport.send(message).await.unwrap();
        }
        let deliveries = server.deliveries();
        assert_eq!(deliveries.len(), kinds.len());
        for ((kind, _), delivery) in kinds.iter().zip(&deliveries) {
            let data = &delivery.data;
            assert!(
                data.starts_with(&format!("DKIM-Signature: v=1; a={algorithm}-sha256;")),
                "{kind}: {data}"
            );
            let results = independent_dkim_results(data, "cabinet.example", &record).await;
            assert_eq!(results, ["Pass"], "{algorithm}, {kind}:\n{data}");

            // The same verifier fails the message once a signed header or the body changes,
            // so the pass above is not a verifier that passes everything.
            let forged = data.replacen("jean.dupont@example.org", "eve@example.org", 1);
            let results = independent_dkim_results(&forged, "cabinet.example", &record).await;
            assert_ne!(results, ["Pass"], "{algorithm}, {kind}: a forged To passed");
            let (head, body) = data.split_once("\r\n\r\n").unwrap();
            let altered = format!("{head}\r\n\r\n{}", body.replacen('a', "b", 1));
            let results = independent_dkim_results(&altered, "cabinet.example", &record).await;
            assert_ne!(
                results,
                ["Pass"],
                "{algorithm}, {kind}: an altered body passed"
            );
        }
        // Another key published for the selector: nothing verifies.
        let other = format!("v=DKIM1; k=ed25519; p={}", "A".repeat(43) + "=");
        let results =
            independent_dkim_results(&deliveries[0].data, "cabinet.example", &other).await;
        assert_ne!(results, ["Pass"]);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_pkcs8_key_is_refused_with_the_command_that_converts_it() {
    let dir = temp_dir("pkcs8");
    let key = dir.join("dkim.pem");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let error = Dkim::load(&key, "rappel", "cabinet.example").unwrap_err();
    assert!(error.contains("-traditional"), "{error}");
    assert!(Dkim::load(&key, "bad selector", "cabinet.example").is_err());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn the_outbox_writes_the_very_message_smtp_sends() {
    let dir = temp_dir("outbox");
    let outbox = FileOutbox::new(&dir)
        .unwrap()
        .with_sender(Sender::parse("Rappel <no-reply@cabinet.example>").unwrap());
    let message = confirmation();
    let receipt = outbox.send(&message).await.unwrap();
    let path = receipt.provider_id.unwrap();
    assert!(path.ends_with(".eml"), "{path}");
    let eml = std::fs::read_to_string(&path).unwrap();
    assert_is_the_confirmation(&eml, &message);
    std::fs::remove_dir_all(dir).unwrap();
}
