//! Configuration: defaults, then `rappel.toml`, then `RAPPEL_*` variables, then flags; validated
//! once, with a message naming the setting at fault.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub listen: SocketAddr,
    pub public_url: String,
    pub outbox_dir: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    listen: Option<String>,
    smtp_url: Option<String>,
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
        if let Some(url) = smtp_url {
            // Real SMTP delivery (lettre) is the dispatch issue's work; refusing the setting is
            // better than silently writing to the outbox when a mail server was asked for.
            return Err(format!(
                "RAPPEL_SMTP_URL: SMTP delivery is not available in this version yet (got `{}`); unset it to write emails to the outbox folder",
                url.split('@').next_back().unwrap_or("")
            ));
        }
        let public_url = public_url.unwrap_or_else(|| format!("http://{listen}"));
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(format!(
                "RAPPEL_PUBLIC_URL: `{public_url}` must start with http:// or https://"
            ));
        }
        Ok(Config {
            database_url,
            listen,
            public_url,
            outbox_dir,
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
