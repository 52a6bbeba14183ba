//! Configuration: defaults, then `rappel.toml`, then `RAPPEL_*` variables, then flags; validated
//! once, with a message naming the setting at fault.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rappel_channels::email::{BounceAddress, Dkim, Sender, SmtpUrl};
use serde::Deserialize;

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub listen: SocketAddr,
    pub public_url: String,
    pub outbox_dir: PathBuf,
    /// Emails go to this SMTP server when set, to the outbox folder otherwise.
    pub smtp: Option<SmtpUrl>,
    /// The From address of emails (its name is replaced by the practice's).
    pub smtp_from: Sender,
    /// Bounds one SMTP hand-off: connection, TLS, authentication, dialogue.
    pub smtp_timeout: Duration,
    pub dkim: Option<Dkim>,
    /// The per-message return path (`RAPPEL_BOUNCE_DOMAIN` and `RAPPEL_BOUNCE_SECRET`).
    pub bounce: Option<BounceAddress>,
    /// The token a relay presents to `POST /v1/webhooks/email/dsn` (`RAPPEL_BOUNCE_WEBHOOK_TOKEN`).
    pub bounce_webhook_token: Option<Token>,
    /// How long a worker holds the notifications it claimed (`RAPPEL_LEASE_SECONDS`): after a
    /// crash, another worker takes them once this has passed.
    pub lease: Duration,
    /// How many due notifications one claim takes (`RAPPEL_WORKER_BATCH`).
    pub batch: i64,
    /// How many claimed batches the worker processes at once (`RAPPEL_WORKER_IN_FLIGHT`).
    pub in_flight: usize,
    /// A connection that has not sent a whole request head in this time is closed
    /// (`RAPPEL_HEADER_TIMEOUT_SECONDS`).
    pub header_timeout: Duration,
    /// A request body must arrive whole within this time (`RAPPEL_REQUEST_TIMEOUT_SECONDS`).
    pub request_timeout: Duration,
    /// Connections served at once (`RAPPEL_MAX_CONNECTIONS`); more wait in the backlog.
    pub max_connections: usize,
}

/// A secret setting: its `Debug` hides the value, so a logged `Config` shows none.
#[derive(Clone)]
pub struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    listen: Option<String>,
    smtp_url: Option<String>,
    smtp_from: Option<String>,
    smtp_timeout: Option<u64>,
    dkim_key_file: Option<PathBuf>,
    dkim_selector: Option<String>,
    dkim_domain: Option<String>,
    bounce_domain: Option<String>,
    bounce_secret: Option<String>,
    bounce_webhook_token: Option<String>,
    public_url: Option<String>,
    outbox_dir: Option<PathBuf>,
}

impl Config {
    pub fn load(
        path: Option<&Path>,
        database_flag: Option<String>,
        listen_flag: Option<String>,
    ) -> Result<Config, String> {
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("rappel.toml")).filter(|p| p.exists()),
        };
        let from_file = match &file {
            None => FileConfig::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
                toml::from_str(&text).map_err(|e| {
                    let line = e
                        .span()
                        .map(|s| text[..s.start].matches('\n').count() + 1)
                        .unwrap_or(1);
                    format!("{}: line {line}: {}", p.display(), e.message())
                })?
            }
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let database_url = database_flag
            .or_else(|| env("RAPPEL_DATABASE_URL"))
            .or(from_file.database_url)
            .unwrap_or_else(|| "sqlite://rappel.db".into());
        let listen = listen_flag
            .or_else(|| env("RAPPEL_LISTEN"))
            .or(from_file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let smtp_url = env("RAPPEL_SMTP_URL").or(from_file.smtp_url);
        let smtp_from = env("RAPPEL_SMTP_FROM").or(from_file.smtp_from);
        let smtp_timeout =
            match env("RAPPEL_SMTP_TIMEOUT") {
                Some(v) => Some(v.parse::<u64>().map_err(|_| {
                    format!("RAPPEL_SMTP_TIMEOUT: `{v}` is not a number of seconds")
                })?),
                None => from_file.smtp_timeout,
            };
        let dkim_key_file = env("RAPPEL_DKIM_KEY_FILE")
            .map(PathBuf::from)
            .or(from_file.dkim_key_file);
        let dkim_selector = env("RAPPEL_DKIM_SELECTOR").or(from_file.dkim_selector);
        let dkim_domain = env("RAPPEL_DKIM_DOMAIN").or(from_file.dkim_domain);
        let bounce_domain = env("RAPPEL_BOUNCE_DOMAIN").or(from_file.bounce_domain);
        let bounce_secret = env("RAPPEL_BOUNCE_SECRET").or(from_file.bounce_secret);
        let bounce_webhook_token =
            env("RAPPEL_BOUNCE_WEBHOOK_TOKEN").or(from_file.bounce_webhook_token);
        let public_url = env("RAPPEL_PUBLIC_URL").or(from_file.public_url);
        let outbox_dir = env("RAPPEL_OUTBOX_DIR")
            .map(PathBuf::from)
            .or(from_file.outbox_dir)
            .unwrap_or_else(|| "outbox".into());

        let listen: SocketAddr = listen.parse().map_err(|_| {
            format!("RAPPEL_LISTEN: `{listen}` is not an address like 127.0.0.1:8080")
        })?;
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(format!(
                "RAPPEL_DATABASE_URL: `{database_url}` is not a database URL (sqlite://rappel.db or postgres://user@host/db)"
            ));
        }
        let smtp = smtp_url
            .map(|url| SmtpUrl::parse(&url).map_err(|e| format!("RAPPEL_SMTP_URL: {e}")))
            .transpose()?;
        let smtp_from = match smtp_from {
            Some(from) => Sender::parse(&from).map_err(|e| format!("RAPPEL_SMTP_FROM: {e}"))?,
            None => Sender::default(),
        };
        let smtp_timeout = match smtp_timeout {
            None => Duration::from_secs(30),
            Some(secs @ 1..=600) => Duration::from_secs(secs),
            Some(secs) => {
                return Err(format!(
                    "RAPPEL_SMTP_TIMEOUT: {secs} s is outside 1 to 600 seconds"
                ));
            }
        };
        // A DKIM key is loaded, and its errors reported, at start-up; a setting that would be
        // silently ignored is refused like any other mistake.
        let dkim = match (dkim_key_file, dkim_selector) {
            (None, None) if dkim_domain.is_none() => None,
            (Some(file), Some(selector)) => {
                if smtp.is_none() {
                    return Err(
                        "RAPPEL_DKIM_KEY_FILE: DKIM signs what goes to a mail server; set RAPPEL_SMTP_URL too".into(),
                    );
                }
                let domain = dkim_domain.unwrap_or_else(|| smtp_from.domain().to_string());
                Some(
                    Dkim::load(&file, &selector, &domain)
                        .map_err(|e| format!("RAPPEL_DKIM_KEY_FILE: {e}"))?,
                )
            }
            (None, _) => {
                return Err(
                    "RAPPEL_DKIM_KEY_FILE: DKIM signing needs the private key file (RAPPEL_DKIM_SELECTOR or RAPPEL_DKIM_DOMAIN is set without it)".into(),
                );
            }
            (Some(_), None) => {
                return Err(
                    "RAPPEL_DKIM_SELECTOR: DKIM signing needs the selector published in DNS (`<selector>._domainkey.<domain>`)".into(),
                );
            }
        };
        // The secret makes return-path tokens unguessable; without it a domain would give every
        // message a forgeable address, so the pair is required together.
        let bounce = match (bounce_domain, bounce_secret) {
            (None, None) => None,
            (Some(domain), Some(secret)) => Some(
                BounceAddress::new(&domain, secret.as_bytes())
                    .map_err(|e| format!("RAPPEL_BOUNCE_DOMAIN: {e}"))?,
            ),
            (Some(_), None) => {
                return Err("RAPPEL_BOUNCE_SECRET: the return-path tokens need a secret of at least 32 characters (`openssl rand -hex 32`)".into());
            }
            (None, Some(_)) => {
                return Err("RAPPEL_BOUNCE_DOMAIN: RAPPEL_BOUNCE_SECRET is set without the domain that receives bounces".into());
            }
        };
        let bounce_webhook_token = bounce_webhook_token.map(Token);
        if let Some(Token(token)) = &bounce_webhook_token {
            if token.len() < 32 {
                return Err("RAPPEL_BOUNCE_WEBHOOK_TOKEN: at least 32 characters".into());
            }
            if bounce.is_none() {
                return Err("RAPPEL_BOUNCE_WEBHOOK_TOKEN: bounces are matched by their return path; set RAPPEL_BOUNCE_DOMAIN and RAPPEL_BOUNCE_SECRET too".into());
            }
        }
        let public_url = public_url.unwrap_or_else(|| format!("http://{listen}"));
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(format!(
                "RAPPEL_PUBLIC_URL: `{public_url}` must start with http:// or https://"
            ));
        }
        let number = |name: &str,
                      default: u64,
                      range: std::ops::RangeInclusive<u64>|
         -> Result<u64, String> {
            match std::env::var(name).ok().filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(text) => text
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        format!(
                            "{name}: `{text}` is not a whole number between {} and {}",
                            range.start(),
                            range.end()
                        )
                    }),
            }
        };
        let lease = Duration::from_secs(number("RAPPEL_LEASE_SECONDS", 60, 2..=3600)?);
        let batch = number("RAPPEL_WORKER_BATCH", 100, 1..=10_000)? as i64;
        let in_flight = number("RAPPEL_WORKER_IN_FLIGHT", 2, 1..=16)? as usize;
        let header_timeout =
            Duration::from_secs(number("RAPPEL_HEADER_TIMEOUT_SECONDS", 15, 1..=600)?);
        let request_timeout =
            Duration::from_secs(number("RAPPEL_REQUEST_TIMEOUT_SECONDS", 60, 1..=3600)?);
        let max_connections = number("RAPPEL_MAX_CONNECTIONS", 512, 1..=100_000)? as usize;
        Ok(Config {
            database_url,
            listen,
            public_url,
            outbox_dir,
            smtp,
            smtp_from,
            smtp_timeout,
            dkim,
            bounce,
            bounce_webhook_token,
            lease,
            batch,
            in_flight,
            header_timeout,
            request_timeout,
            max_connections,
        })
    }

    /// The database URL without its password, for messages.
    pub fn redacted_database_url(&self) -> String {
        match (self.database_url.find("://"), self.database_url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let creds = &self.database_url[scheme + 3..at];
                let user = creds.split(':').next().unwrap_or("");
                format!(
                    "{}{user}:***{}",
                    &self.database_url[..scheme + 3],
                    &self.database_url[at..]
                )
            }
            _ => self.database_url.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads a `rappel.toml` with these lines (the `RAPPEL_*` variables are unset in tests).
    fn load(toml: &str) -> Result<Config, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos();
        let path =
            std::env::temp_dir().join(format!("rappel-config-{}-{nanos}.toml", std::process::id()));
        std::fs::write(&path, toml).expect("temp file");
        let config = Config::load(
            Some(&path),
            Some("sqlite://test.db".into()),
            Some("127.0.0.1:8080".into()),
        );
        std::fs::remove_file(&path).expect("temp file");
        config
    }

    #[test]
    fn smtp_settings_are_validated_and_the_password_never_shows() {
        let config = load(
            "smtp_url = \"smtp://relay:s3cret@mail.example.org:587?tls=required\"\nsmtp_from = \"Cabinet <rdv@cabinet.example>\"\n",
        )
        .expect("valid");
        let smtp = config.smtp.as_ref().expect("SMTP configured");
        assert_eq!(
            smtp.redacted(),
            "smtp://relay:***@mail.example.org:587?tls=required"
        );
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(config.smtp_from.domain(), "cabinet.example");
        assert_eq!(config.smtp_timeout, Duration::from_secs(30));
        assert!(config.dkim.is_none());

        let without = load("").expect("valid");
        assert!(without.bounce.is_none());
        assert!(without.smtp.is_none());
        assert_eq!(without.smtp_from, Sender::default());
    }

    #[test]
    fn a_bounce_domain_with_its_secret_gives_a_return_path_whose_secret_never_shows() {
        let config = load(
            "bounce_domain = \"Bounces.Example.org\"\nbounce_secret = \"0123456789abcdef0123456789abcdef\"\nbounce_webhook_token = \"0123456789abcdef0123456789abcdef\"\n",
        )
        .expect("valid");
        let bounce = config.bounce.as_ref().expect("VERP configured");
        assert_eq!(bounce.domain(), "bounces.example.org");
        assert!(!format!("{config:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn a_bad_smtp_setting_is_refused_with_its_name() {
        for (toml, name) in [
            ("smtp_url = \"ftp://mail.example.org\"", "RAPPEL_SMTP_URL:"),
            ("smtp_url = \"smtp://\"", "RAPPEL_SMTP_URL:"),
            (
                "smtp_url = \"smtp://mail.example.org?tls=maybe\"",
                "RAPPEL_SMTP_URL:",
            ),
            ("smtp_from = \"no address\"", "RAPPEL_SMTP_FROM:"),
            ("smtp_timeout = 0", "RAPPEL_SMTP_TIMEOUT:"),
            ("dkim_selector = \"rappel\"", "RAPPEL_DKIM_KEY_FILE:"),
            (
                "smtp_url = \"smtp://127.0.0.1:25\"\ndkim_key_file = \"/nonexistent/dkim.key\"",
                "RAPPEL_DKIM_SELECTOR:",
            ),
            (
                "smtp_url = \"smtp://127.0.0.1:25\"\ndkim_key_file = \"/nonexistent/dkim.key\"\ndkim_selector = \"rappel\"",
                "RAPPEL_DKIM_KEY_FILE:",
            ),
            (
                "bounce_domain = \"bounces.example.org\"",
                "RAPPEL_BOUNCE_SECRET:",
            ),
            (
                "bounce_secret = \"0123456789abcdef0123456789abcdef\"",
                "RAPPEL_BOUNCE_DOMAIN:",
            ),
            (
                "bounce_domain = \"bounces.example.org\"\nbounce_secret = \"short\"",
                "RAPPEL_BOUNCE_DOMAIN:",
            ),
            (
                "bounce_webhook_token = \"0123456789abcdef0123456789abcdef\"",
                "RAPPEL_BOUNCE_WEBHOOK_TOKEN:",
            ),
        ] {
            let error = load(toml).expect_err(toml);
            assert!(error.starts_with(name), "{toml}: {error}");
        }
    }
}
