//! The SMS way out, chosen at start-up: `RAPPEL_SMS_PROVIDER` (`twilio`, `ovh`, `webhook`, or
//! unset for the outbox folder) and the chosen provider's variables, all checked before anything
//! runs, so that a wrong setting stops the process with a message naming the variable instead of
//! failing every SMS later. Also the secrets that prove delivery reports authentic.
//!
//! The variables are read here rather than in `config.rs` because they have no `rappel.toml`
//! counterpart: they are credentials, which belong in the environment (or a secret store that
//! fills it), not in a file next to the binary.

use std::sync::Arc;

use rappel_channels::Transport;
use rappel_channels::sms::webhook::SigningKey;
use rappel_channels::sms::{
    ConfigError, OvhSms, SmsOptions, TwilioSms, WebhookSms, ovh, twilio, webhook,
};
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

/// A transport's complaint about one of its fields, told with the variable that set it.
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
