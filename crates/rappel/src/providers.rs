//! The SMS way out, chosen at start-up: `RAPPEL_SMS_PROVIDER` (`twilio`, `ovh`, `webhook`, or
//! unset for the outbox folder) and the chosen provider's variables, all checked before anything
//! runs, so that a wrong setting stops the process with a message naming the variable instead of
//! failing every SMS later. Also the secrets that prove delivery reports authentic, and the
//! Web Push way out (`RAPPEL_VAPID_*`, see [`Push`]).
//!
//! The variables are read here rather than in `config.rs` because they have no `rappel.toml`
//! counterpart: they are credentials, which belong in the environment (or a secret store that
//! fills it), not in a file next to the binary.

use std::sync::Arc;

use rappel_channels::net_guard::NetPolicy;
use rappel_channels::push::{self, Urgency, VapidKey, WebPush};
use rappel_channels::sms::webhook::SigningKey;
use rappel_channels::sms::{
    ConfigError, OvhSms, SmsOptions, TwilioSms, WebhookSms, ovh, twilio, webhook,
};
use rappel_channels::{OutboundMessage, SendFuture, Transport};
use rappel_server::WebhookSecrets;

/// The SMS settings of this process.
pub struct Sms {
    /// Where SMS go; `None` for the outbox folder.
    pub transport: Option<Arc<dyn Transport>>,
    /// `twilio`, `ovh`, `webhook` or `outbox`, for the start-up log.
    pub provider: &'static str,
    /// What authenticates each provider's delivery reports on `/v1/webhooks/sms/…`.
    pub webhooks: WebhookSecrets,
}

impl Sms {
    /// From the process environment; an empty variable counts as unset.
    pub fn from_env(public_url: &str) -> Result<Sms, String> {
        Sms::from_vars(
            |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()),
            public_url,
        )
    }

    /// From `var`, which answers a variable's value (tests pass a map). `public_url` is where
    /// providers reach this server (`RAPPEL_PUBLIC_URL`).
    fn from_vars(var: impl Fn(&str) -> Option<String>, public_url: &str) -> Result<Sms, String> {
        let required = |name: &str, what: &str| {
            var(name).ok_or_else(|| format!("{name}: required with {what}"))
        };
        // The only proof an email service's event carries: it must not be guessable.
        let token = |var: &dyn Fn(&str) -> Option<String>, name: &str| match var(name) {
            Some(token) if token.len() < 24 => {
                Err(format!("{name}: use at least 24 random characters"))
            }
            token => Ok(token),
        };
        let webhooks = WebhookSecrets {
            twilio_auth_token: var("RAPPEL_TWILIO_AUTH_TOKEN"),
            ovh_callback_token: match var("RAPPEL_OVH_CALLBACK_TOKEN") {
                // It is the only proof an OVH report carries: it must not be guessable.
                Some(token) if token.len() < 16 => {
                    return Err(
                        "RAPPEL_OVH_CALLBACK_TOKEN: use at least 16 random characters".into(),
                    );
                }
                token => token,
            },
            sms_webhook_key: var("RAPPEL_SMS_WEBHOOK_SECRET")
                .map(|secret| {
                    SigningKey::parse(&secret)
                        .map_err(|e| format!("RAPPEL_SMS_WEBHOOK_SECRET: {e}"))
                })
                .transpose()?,
            // Set from the configuration by `main` (they are not SMS settings).
            bounce: None,
            bounce_webhook_token: None,
            brevo_webhook_token: token(&var, "RAPPEL_BREVO_WEBHOOK_TOKEN")?,
            mailjet_webhook_token: token(&var, "RAPPEL_MAILJET_WEBHOOK_TOKEN")?,
        };
        let options = SmsOptions {
            rate_per_second: match var("RAPPEL_SMS_RATE_PER_S") {
                None => SmsOptions::default().rate_per_second,
                Some(text) => text.trim().parse().map_err(|_| {
                    format!(
                        "RAPPEL_SMS_RATE_PER_S: `{text}` is not a number of messages per second"
                    )
                })?,
            },
            ..SmsOptions::default()
        };
        let provider = var("RAPPEL_SMS_PROVIDER");
        let (provider, transport): (&'static str, Arc<dyn Transport>) = match provider.as_deref() {
            None => {
                return Ok(Sms {
                    transport: None,
                    provider: "outbox",
                    webhooks,
                });
            }
            Some("twilio") => {
                let with = "RAPPEL_SMS_PROVIDER=twilio";
                let from = var("RAPPEL_TWILIO_FROM")
                    .or_else(|| var("RAPPEL_SMS_SENDER"))
                    .ok_or_else(|| {
                        format!(
                            "RAPPEL_TWILIO_FROM: required with {with} (a Twilio number, a sender \
                             ID or a Messaging Service SID; RAPPEL_SMS_SENDER serves when unset)"
                        )
                    })?;
                let from_var = if var("RAPPEL_TWILIO_FROM").is_some() {
                    "RAPPEL_TWILIO_FROM"
                } else {
                    "RAPPEL_SMS_SENDER"
                };
                let config = twilio::Config {
                    status_callback: Some(format!(
                        "{}/v1/webhooks/sms/twilio",
                        public_url.trim_end_matches('/')
                    )),
                    options,
                    ..twilio::Config::new(
                        &required("RAPPEL_TWILIO_ACCOUNT_SID", with)?,
                        &required("RAPPEL_TWILIO_AUTH_TOKEN", with)?,
                        &from,
                    )
                };
                let transport = TwilioSms::new(config).map_err(|e| {
                    named(e, |field| match field {
                        "account_sid" => "RAPPEL_TWILIO_ACCOUNT_SID",
                        "auth_token" => "RAPPEL_TWILIO_AUTH_TOKEN",
                        "from" => from_var,
                        "status_callback" => "RAPPEL_PUBLIC_URL",
                        _ => "RAPPEL_SMS_RATE_PER_S",
                    })
                })?;
                ("twilio", Arc::new(transport))
            }
            Some("ovh") => {
                let with = "RAPPEL_SMS_PROVIDER=ovh";
                let config = ovh::Config {
                    options,
                    ..ovh::Config::new(
                        &required("RAPPEL_OVH_APP_KEY", with)?,
                        &required("RAPPEL_OVH_APP_SECRET", with)?,
                        &required("RAPPEL_OVH_CONSUMER_KEY", with)?,
                        &required("RAPPEL_OVH_SERVICE", with)?,
                        &required("RAPPEL_SMS_SENDER", with)?,
                    )
                };
                let transport = OvhSms::new(config).map_err(|e| {
                    named(e, |field| match field {
                        "application_key" => "RAPPEL_OVH_APP_KEY",
                        "application_secret" => "RAPPEL_OVH_APP_SECRET",
                        "consumer_key" => "RAPPEL_OVH_CONSUMER_KEY",
                        "service_name" => "RAPPEL_OVH_SERVICE",
                        "sender" => "RAPPEL_SMS_SENDER",
                        _ => "RAPPEL_SMS_RATE_PER_S",
                    })
                })?;
                ("ovh", Arc::new(transport))
            }
            Some("webhook") => {
                let with = "RAPPEL_SMS_PROVIDER=webhook";
                let key = webhooks
                    .sms_webhook_key
                    .clone()
                    .ok_or_else(|| format!("RAPPEL_SMS_WEBHOOK_SECRET: required with {with}"))?;
                let config = webhook::Config {
                    url: required("RAPPEL_SMS_WEBHOOK_URL", with)?,
                    key,
                    sender: required("RAPPEL_SMS_SENDER", with)?,
                    options,
                };
                let transport = WebhookSms::new(config).map_err(|e| {
                    named(e, |field| match field {
                        "url" => "RAPPEL_SMS_WEBHOOK_URL",
                        "sender" => "RAPPEL_SMS_SENDER",
                        _ => "RAPPEL_SMS_RATE_PER_S",
                    })
                })?;
                ("webhook", Arc::new(transport))
            }
            Some(other) => {
                return Err(format!(
                    "RAPPEL_SMS_PROVIDER: `{other}` is not one of twilio, ovh, webhook (unset: SMS \
                     are written to the outbox folder)"
                ));
            }
        };
        Ok(Sms {
            transport: Some(transport),
            provider,
            webhooks,
        })
    }
}

/// The Web Push way out: `RAPPEL_VAPID_PRIVATE_KEY` (the raw 32-byte P-256 scalar, base64url)
/// or `RAPPEL_VAPID_PRIVATE_KEY_FILE` (a PEM file, PKCS#8 or SEC1), with `RAPPEL_VAPID_SUBJECT`
/// (`mailto:…` or `https:…`) and optionally `RAPPEL_PUSH_URGENCY` (`normal` by default). With no
/// key, push messages are written to the outbox folder.
pub struct Push {
    /// Where push messages go; `None` for the outbox folder.
    pub transport: Option<Arc<dyn Transport>>,
    /// The VAPID public key browsers must subscribe with, for the start-up log.
    pub public_key: Option<String>,
}

impl Push {
    /// From the process environment; an empty variable counts as unset.
    pub fn from_env() -> Result<Push, String> {
        Push::from_vars(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Push, String> {
        let key = match (
            var("RAPPEL_VAPID_PRIVATE_KEY"),
            var("RAPPEL_VAPID_PRIVATE_KEY_FILE"),
        ) {
            (Some(_), Some(_)) => {
                return Err("RAPPEL_VAPID_PRIVATE_KEY_FILE: set either it or \
                            RAPPEL_VAPID_PRIVATE_KEY, not both"
                    .into());
            }
            (Some(text), None) => Some(
                VapidKey::from_base64url(&text)
                    .map_err(|e| format!("RAPPEL_VAPID_PRIVATE_KEY: {e}"))?,
            ),
            (None, Some(path)) => {
                let pem = std::fs::read_to_string(&path).map_err(|e| {
                    format!("RAPPEL_VAPID_PRIVATE_KEY_FILE: cannot read {path}: {e}")
                })?;
                Some(
                    VapidKey::from_pem(&pem)
                        .map_err(|e| format!("RAPPEL_VAPID_PRIVATE_KEY_FILE: {e}"))?,
                )
            }
            (None, None) => None,
        };
        let Some(key) = key else {
            if var("RAPPEL_VAPID_SUBJECT").is_some() {
                return Err(
                    "RAPPEL_VAPID_PRIVATE_KEY: required with RAPPEL_VAPID_SUBJECT \
                            (`rappel vapid generate` makes a key pair)"
                        .into(),
                );
            }
            return Ok(Push {
                transport: None,
                public_key: None,
            });
        };
        let subject = var("RAPPEL_VAPID_SUBJECT").ok_or_else(|| {
            "RAPPEL_VAPID_SUBJECT: required with a VAPID key (mailto:… or https:…, where push \
             services can reach the operator)"
                .to_string()
        })?;
        let urgency = match var("RAPPEL_PUSH_URGENCY") {
            None => Urgency::Normal,
            Some(text) => Urgency::parse(&text).ok_or_else(|| {
                format!("RAPPEL_PUSH_URGENCY: `{text}` is not one of very-low, low, normal, high")
            })?,
        };
        let public_key = key.public_base64url().to_string();
        let transport = WebPush::new(push::Config {
            urgency,
            net: net_policy(&var)?,
            ..push::Config::new(key, &subject)
        })
        .map_err(|e| {
            named(e, |field| match field {
                "subject" => "RAPPEL_VAPID_SUBJECT",
                _ => "RAPPEL_VAPID_PRIVATE_KEY",
            })
        })?;
        Ok(Push {
            transport: Some(Arc::new(transport)),
            public_key: Some(public_key),
        })
    }
}

/// Push messages with a browser subscription go through Web Push; the others (a patient marked
/// `push` by the practice software for its own mobile application, with no subscription) keep
/// going where they went before Web Push existed, the outbox, instead of failing.
pub struct PushRouter {
    pub web_push: Arc<dyn Transport>,
    pub app: Arc<dyn Transport>,
}

impl Transport for PushRouter {
    fn send<'a>(&'a self, message: &'a OutboundMessage) -> SendFuture<'a> {
        match message.push {
            Some(_) => self.web_push.send(message),
            None => self.app.send(message),
        }
    }
}

/// A transport's complaint about one of its fields, told with the variable that set it.
/// What the operator allows of the URLs practices give (webhooks, push endpoints) beyond
/// public https addresses: `RAPPEL_ALLOW_HTTP_WEBHOOKS=1` plain http (still to public
/// addresses), `RAPPEL_ALLOW_LOOPBACK_TARGETS=1` this machine's loopback (development and tests
/// only: on a server it lets any practice reach the services listening on loopback).
pub fn net_policy_from_env() -> Result<NetPolicy, String> {
    net_policy(&|name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
}

fn net_policy(var: &impl Fn(&str) -> Option<String>) -> Result<NetPolicy, String> {
    let flag = |name: &str| -> Result<bool, String> {
        match var(name).as_deref().map(str::trim) {
            None | Some("0" | "false" | "no") => Ok(false),
            Some("1" | "true" | "yes") => Ok(true),
            Some(other) => Err(format!("{name}: `{other}` is not 1 or 0")),
        }
    };
    Ok(NetPolicy {
        allow_http: flag("RAPPEL_ALLOW_HTTP_WEBHOOKS")?,
        allow_loopback: flag("RAPPEL_ALLOW_LOOPBACK_TARGETS")?,
    })
}

/// The country calling codes a test SMS may go to (`RAPPEL_TEST_SMS_COUNTRY_CODES`, e.g.
/// `33,262,32`); France and its overseas territories when unset.
pub fn test_sms_country_codes_from_env() -> Result<Vec<u16>, String> {
    test_sms_country_codes(std::env::var("RAPPEL_TEST_SMS_COUNTRY_CODES").ok())
}

fn test_sms_country_codes(value: Option<String>) -> Result<Vec<u16>, String> {
    let Some(text) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(rappel_engine::FRENCH_COUNTRY_CODES.to_vec());
    };
    text.split(',')
        .map(|code| {
            let code = code.trim().trim_start_matches('+');
            code.parse::<u16>()
                .ok()
                .filter(|c| (1..=999).contains(c))
                .ok_or_else(|| {
                    format!("RAPPEL_TEST_SMS_COUNTRY_CODES: `{code}` is not a country calling code like 33")
                })
        })
        .collect()
}

fn named(error: ConfigError, variable: impl Fn(&str) -> &'static str) -> String {
    format!("{}: {}", variable(error.field), error.reason)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const PUBLIC_URL: &str = "https://rappel.example";

    fn load(vars: &[(&str, &str)]) -> Result<Sms, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        Sms::from_vars(|name| vars.get(name).cloned(), PUBLIC_URL)
    }

    fn error(vars: &[(&str, &str)]) -> String {
        match load(vars) {
            Err(error) => error,
            Ok(sms) => panic!("accepted, with provider {}", sms.provider),
        }
    }

    const TWILIO: &[(&str, &str)] = &[
        ("RAPPEL_SMS_PROVIDER", "twilio"),
        (
            "RAPPEL_TWILIO_ACCOUNT_SID",
            "AC0123456789abcdef0123456789abcdef",
        ),
        ("RAPPEL_TWILIO_AUTH_TOKEN", "token"),
        ("RAPPEL_TWILIO_FROM", "DrMartin"),
    ];

    fn with(
        base: &[(&'static str, &'static str)],
        extra: &[(&'static str, &'static str)],
    ) -> Vec<(&'static str, &'static str)> {
        let mut vars: Vec<_> = base
            .iter()
            .filter(|(n, _)| !extra.iter().any(|(e, _)| e == n))
            .copied()
            .collect();
        vars.extend_from_slice(extra);
        vars
    }

    #[test]
    fn without_a_provider_sms_go_to_the_outbox() {
        let sms = load(&[]).unwrap();
        assert!(sms.transport.is_none());
        assert_eq!(sms.provider, "outbox");
        assert!(sms.webhooks.twilio_auth_token.is_none());
    }

    #[test]
    fn twilio_is_built_from_its_variables_and_its_token_verifies_reports() {
        let sms = load(TWILIO).unwrap();
        assert!(sms.transport.is_some());
        assert_eq!(sms.provider, "twilio");
        assert_eq!(sms.webhooks.twilio_auth_token.as_deref(), Some("token"));
    }

    #[test]
    fn a_missing_or_bad_variable_is_named() {
        assert!(error(&[("RAPPEL_SMS_PROVIDER", "sinch")]).starts_with("RAPPEL_SMS_PROVIDER:"),);
        let missing: Vec<_> = TWILIO
            .iter()
            .filter(|(n, _)| *n != "RAPPEL_TWILIO_AUTH_TOKEN")
            .copied()
            .collect();
        assert!(error(&missing).starts_with("RAPPEL_TWILIO_AUTH_TOKEN: required"));
        assert!(
            error(&with(TWILIO, &[("RAPPEL_TWILIO_FROM", "Dr.Martin")]))
                .starts_with("RAPPEL_TWILIO_FROM:")
        );
        assert!(
            error(&with(TWILIO, &[("RAPPEL_TWILIO_ACCOUNT_SID", "AC12")]))
                .starts_with("RAPPEL_TWILIO_ACCOUNT_SID:")
        );
        assert!(
            error(&with(TWILIO, &[("RAPPEL_SMS_RATE_PER_S", "fast")]))
                .starts_with("RAPPEL_SMS_RATE_PER_S:")
        );
        assert!(
            error(&with(TWILIO, &[("RAPPEL_SMS_RATE_PER_S", "-1")]))
                .starts_with("RAPPEL_SMS_RATE_PER_S:")
        );
    }

    #[test]
    fn twilio_falls_back_to_the_common_sender_and_names_it_when_it_is_wrong() {
        let no_from: Vec<_> = TWILIO
            .iter()
            .filter(|(n, _)| *n != "RAPPEL_TWILIO_FROM")
            .copied()
            .collect();
        assert!(error(&no_from).starts_with("RAPPEL_TWILIO_FROM: required"));
        assert!(load(&with(&no_from, &[("RAPPEL_SMS_SENDER", "DrMartin")])).is_ok());
        assert!(
            error(&with(&no_from, &[("RAPPEL_SMS_SENDER", "Dr Hélène")]))
                .starts_with("RAPPEL_SMS_SENDER:")
        );
    }

    #[test]
    fn ovh_needs_its_keys_service_and_sender() {
        let ovh = [
            ("RAPPEL_SMS_PROVIDER", "ovh"),
            ("RAPPEL_OVH_APP_KEY", "ak"),
            ("RAPPEL_OVH_APP_SECRET", "as"),
            ("RAPPEL_OVH_CONSUMER_KEY", "ck"),
            ("RAPPEL_OVH_SERVICE", "sms-ab12345-1"),
            ("RAPPEL_SMS_SENDER", "DrMartin"),
            ("RAPPEL_OVH_CALLBACK_TOKEN", "0123456789abcdef0123"),
        ];
        let sms = load(&ovh).unwrap();
        assert_eq!(sms.provider, "ovh");
        assert!(sms.webhooks.ovh_callback_token.is_some());
        assert!(
            error(&with(&ovh, &[("RAPPEL_OVH_SERVICE", "sms/../me")]))
                .starts_with("RAPPEL_OVH_SERVICE:")
        );
        assert!(
            error(&with(&ovh, &[("RAPPEL_OVH_CALLBACK_TOKEN", "short")]))
                .starts_with("RAPPEL_OVH_CALLBACK_TOKEN:")
        );
        let no_sender: Vec<_> = ovh
            .iter()
            .filter(|(n, _)| *n != "RAPPEL_SMS_SENDER")
            .copied()
            .collect();
        assert!(error(&no_sender).starts_with("RAPPEL_SMS_SENDER: required"));
    }

    fn load_push(vars: &[(&str, &str)]) -> Result<Push, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        Push::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn push_goes_to_the_outbox_without_a_vapid_key_and_through_web_push_with_one() {
        let outbox = load_push(&[]).unwrap();
        assert!(outbox.transport.is_none());
        let key = VapidKey::generate();
        let private = key.private_base64url();
        let push = load_push(&[
            ("RAPPEL_VAPID_PRIVATE_KEY", &private),
            ("RAPPEL_VAPID_SUBJECT", "mailto:technique@cabinet.example"),
            ("RAPPEL_PUSH_URGENCY", "high"),
        ])
        .unwrap();
        assert!(push.transport.is_some());
        assert_eq!(push.public_key.as_deref(), Some(key.public_base64url()));
    }

    #[test]
    fn a_missing_or_bad_vapid_variable_is_named() {
        let error = |vars: &[(&str, &str)]| match load_push(vars) {
            Err(error) => error,
            Ok(_) => panic!("accepted"),
        };
        let private = VapidKey::generate().private_base64url();
        assert!(
            error(&[("RAPPEL_VAPID_PRIVATE_KEY", &private)])
                .starts_with("RAPPEL_VAPID_SUBJECT: required")
        );
        assert!(
            error(&[("RAPPEL_VAPID_SUBJECT", "mailto:a@b.example")])
                .starts_with("RAPPEL_VAPID_PRIVATE_KEY: required")
        );
        assert!(
            error(&[
                ("RAPPEL_VAPID_PRIVATE_KEY", "c2hvcnQ"),
                ("RAPPEL_VAPID_SUBJECT", "mailto:a@b.example"),
            ])
            .starts_with("RAPPEL_VAPID_PRIVATE_KEY:")
        );
        assert!(
            error(&[
                ("RAPPEL_VAPID_PRIVATE_KEY", &private),
                ("RAPPEL_VAPID_SUBJECT", "a@b.example"),
            ])
            .starts_with("RAPPEL_VAPID_SUBJECT:")
        );
        assert!(
            error(&[
                ("RAPPEL_VAPID_PRIVATE_KEY", &private),
                ("RAPPEL_VAPID_SUBJECT", "mailto:a@b.example"),
                ("RAPPEL_PUSH_URGENCY", "urgent"),
            ])
            .starts_with("RAPPEL_PUSH_URGENCY:")
        );
        assert!(
            error(&[
                ("RAPPEL_VAPID_PRIVATE_KEY_FILE", "/nonexistent/vapid.pem"),
                ("RAPPEL_VAPID_SUBJECT", "mailto:a@b.example"),
            ])
            .starts_with("RAPPEL_VAPID_PRIVATE_KEY_FILE:")
        );
    }

    #[test]
    fn a_vapid_key_can_come_from_a_pkcs8_pem_file() {
        // Made for this test with `openssl genpkey -algorithm EC -pkeyopt
        // ec_paramgen_curve:P-256`; its public key is what `openssl pkey -pubout` prints.
        let pem = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgbYrx2Wo+qpaqP0Fd
9JoWFEMkp8C9+VdIFBiyeGXky0qhRANCAAQXj2/zke8kqA5x5UWNtYlAGl2oqJ+J
XnPtODenacmkJwtE19zeQUKMOYD16VwUGZX7mHWYr2xEH0spbWxXdkIm
-----END PRIVATE KEY-----
";
        let path = std::env::temp_dir().join(format!("rappel-vapid-{}.pem", std::process::id()));
        std::fs::write(&path, pem).unwrap();
        let push = load_push(&[
            ("RAPPEL_VAPID_PRIVATE_KEY_FILE", path.to_str().unwrap()),
            ("RAPPEL_VAPID_SUBJECT", "https://cabinet.example/contact"),
        ]);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            push.unwrap().public_key.as_deref(),
            Some(
                "BBePb_OR7ySoDnHlRY21iUAaXaion4lec-04N6dpyaQnC0TX3N5BQow5gPXpXBQZlfuYdZivbEQfSyltbFd2QiY"
            )
        );
    }

    #[tokio::test]
    async fn push_messages_without_a_browser_subscription_keep_going_to_the_outbox() {
        use rappel_channels::{PushTarget, Recorder};
        let (web_push, app) = (Recorder::default(), Recorder::default());
        let router = PushRouter {
            web_push: Arc::new(web_push.clone()),
            app: Arc::new(app.clone()),
        };
        let mut message = OutboundMessage {
            id: "a:a1/reminder_push_d1/push/patient:p1".into(),
            practice_id: "prac".into(),
            channel: rappel_domain::notification::Channel::Push,
            to: "app".into(),
            subject: None,
            text: "Rappel".into(),
            sender_name: "Cabinet".into(),
            calendar: None,
            html: None,
            push: None,
            letter: None,
            logo: None,
        };
        router.send(&message).await.unwrap();
        message.push = Some(Box::new(PushTarget::default()));
        router.send(&message).await.unwrap();
        assert_eq!((app.sent().len(), web_push.sent().len()), (1, 1));
        assert!(app.sent()[0].message.push.is_none());
    }

    #[test]
    fn outbound_addresses_are_public_https_unless_the_operator_says_otherwise() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(net_policy(&vars(&[])).unwrap(), NetPolicy::default());
        let both = net_policy(&vars(&[
            ("RAPPEL_ALLOW_HTTP_WEBHOOKS", "1"),
            ("RAPPEL_ALLOW_LOOPBACK_TARGETS", "true"),
        ]))
        .unwrap();
        assert!(both.allow_http && both.allow_loopback);
        let error = net_policy(&vars(&[("RAPPEL_ALLOW_LOOPBACK_TARGETS", "maybe")])).unwrap_err();
        assert!(
            error.starts_with("RAPPEL_ALLOW_LOOPBACK_TARGETS:"),
            "{error}"
        );
    }

    #[test]
    fn test_sms_countries_default_to_france_and_are_calling_codes() {
        assert!(test_sms_country_codes(None).unwrap().contains(&33));
        assert_eq!(
            test_sms_country_codes(Some("33, +32,41".into())).unwrap(),
            vec![33, 32, 41]
        );
        let error = test_sms_country_codes(Some("FR".into())).unwrap_err();
        assert!(
            error.starts_with("RAPPEL_TEST_SMS_COUNTRY_CODES:"),
            "{error}"
        );
    }

    #[test]
    fn the_webhook_needs_a_url_and_a_whsec_secret() {
        let gateway = [
            ("RAPPEL_SMS_PROVIDER", "webhook"),
            (
                "RAPPEL_SMS_WEBHOOK_URL",
                "https://gateway.cabinet.example/sms",
            ),
            (
                "RAPPEL_SMS_WEBHOOK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
            ("RAPPEL_SMS_SENDER", "DrMartin"),
        ];
        let sms = load(&gateway).unwrap();
        assert_eq!(sms.provider, "webhook");
        assert!(sms.webhooks.sms_webhook_key.is_some());
        assert!(
            error(&with(&gateway, &[("RAPPEL_SMS_WEBHOOK_SECRET", "hunter2")]))
                .starts_with("RAPPEL_SMS_WEBHOOK_SECRET:")
        );
        assert!(
            error(&with(&gateway, &[("RAPPEL_SMS_WEBHOOK_URL", "gateway")]))
                .starts_with("RAPPEL_SMS_WEBHOOK_URL:")
        );
    }
}
