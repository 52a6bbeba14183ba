//! The `rappel` binary: one process that plays every role (API, worker, CLI tools).
//!
//! Configuration comes from built-in defaults, then an optional `rappel.toml`, then `RAPPEL_*`
//! environment variables, then flags; it is validated once at start-up, and a bad value stops
//! the process with one message naming the setting (exit status 2).

mod bench;
mod bench_dispatch;
mod bench_isolation;
mod cli;
mod config;
mod demo;
mod providers;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use rappel_channels::email::{SmtpConfig, SmtpTransport};
use rappel_channels::{FileOutbox, Transport};
use rappel_engine::{Database, Engine, EngineConfig, SystemClock, Transports};

use crate::cli::Cli;
use crate::config::Config;

/// The planner and the dispatcher allocate many small strings (identity keys, rendered texts);
/// mimalloc serves them about twice as fast as the system allocator (`rappel bench plan`).
/// Built without transparent huge pages (`no_thp`, workspace Cargo.toml): with them, each arena
/// region first touched cost a 2 MB page zeroed by the kernel (`clear_page_erms` in profiles of
/// the dispatch burst), and `rappel bench` peaked at 130–186 MB instead of 82–102 MB, with no
/// measurable difference in throughput (issue 18, session 16).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAPPEL_LOG")
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The database of the configuration, migrated.
async fn open_database(config: &Config) -> anyhow::Result<Database> {
    let database = Database::connect(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                config.redacted_database_url()
            )
        })?;
    database
        .migrate()
        .await
        .context("cannot apply the migrations")?;
    Ok(database)
}

fn engine(
    config: &Config,
    database: Database,
    sms: &providers::Sms,
    push: &providers::Push,
) -> anyhow::Result<Engine> {
    tracing::info!(provider = sms.provider, "SMS way out");
    match &push.public_key {
        Some(key) => tracing::info!(vapid_public_key = %key, "push messages go through Web Push"),
        None => tracing::info!("push messages go to the outbox (no RAPPEL_VAPID_PRIVATE_KEY)"),
    }
    let outbox = FileOutbox::new(&config.outbox_dir)
        .with_context(|| {
            format!(
                "cannot create the outbox folder {}",
                config.outbox_dir.display()
            )
        })?
        .with_sender(config.smtp_from.clone());
    let outbox: Arc<dyn Transport> = Arc::new(outbox);
    let email: Arc<dyn Transport> = match &config.smtp {
        Some(url) => {
            tracing::info!(smtp = %url.redacted(), "emails go to the SMTP server");
            Arc::new(SmtpTransport::new(SmtpConfig {
                url: url.clone(),
                sender: config.smtp_from.clone(),
                timeout: config.smtp_timeout,
                dkim: config.dkim.clone(),
                bounce: config.bounce.clone(),
            }))
        }
        None => outbox.clone(),
    };
    Ok(Engine::with_database(
        database,
        Arc::new(SystemClock),
        Transports {
            email,
            sms: sms.transport.clone().unwrap_or_else(|| outbox.clone()),
            push: match &push.transport {
                Some(web_push) => Arc::new(providers::PushRouter {
                    web_push: web_push.clone(),
                    app: outbox.clone(),
                }),
                None => outbox.clone(),
            },
            postal: postal_transport()?,
        },
        EngineConfig {
            public_url: config.public_url.clone(),
            lease: jiff::SignedDuration::try_from(config.lease)
                .unwrap_or(jiff::SignedDuration::from_secs(60)),
            batch: config.batch,
            in_flight: config.in_flight,
            net: providers::net_policy_from_env().map_err(anyhow::Error::msg)?,
            test_sms_country_codes: providers::test_sms_country_codes_from_env()
                .map_err(anyhow::Error::msg)?,
            ..EngineConfig::default()
        },
    ))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Where the print batch's letters go (`RAPPEL_PRINT_DIR`, default `data/print`).
fn print_dir() -> std::path::PathBuf {
    std::env::var_os("RAPPEL_PRINT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "data/print".into())
}

/// The way out for letters (`RAPPEL_POSTAL_PROVIDER`): `print` (the default: the practice prints
/// and posts them; `rappel print-batch`), or `maileva` (La Poste's API, with
/// `RAPPEL_MAILEVA_CLIENT_ID`, `RAPPEL_MAILEVA_CLIENT_SECRET` and optionally
/// `RAPPEL_MAILEVA_API_URL`, `RAPPEL_MAILEVA_TOKEN_URL`). What a letter costs comes from
/// `RAPPEL_POSTAL_POSTAGE_CENTS`, `RAPPEL_POSTAL_POSTAGE_HEAVY_CENTS` and
/// `RAPPEL_POSTAL_SHEET_CENTS`, each defaulting to the provider's figure in [`PostalTariff`].
///
/// [`PostalTariff`]: rappel_channels::postal::PostalTariff
fn postal_transport() -> anyhow::Result<Arc<dyn Transport>> {
    use rappel_channels::postal::{MailevaConfig, PostalApi, PostalTariff, PrintBatch};
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let cents = |name: &str, default: u32| -> anyhow::Result<u32> {
        match var(name) {
            Some(text) => text
                .trim()
                .parse()
                .with_context(|| format!("{name}: expected a whole number of euro cents")),
            None => Ok(default),
        }
    };
    let tariff = |default: PostalTariff| -> anyhow::Result<PostalTariff> {
        Ok(PostalTariff {
            postage_cents: cents("RAPPEL_POSTAL_POSTAGE_CENTS", default.postage_cents)?,
            postage_heavy_cents: cents(
                "RAPPEL_POSTAL_POSTAGE_HEAVY_CENTS",
                default.postage_heavy_cents,
            )?,
            per_sheet_cents: cents("RAPPEL_POSTAL_SHEET_CENTS", default.per_sheet_cents)?,
        })
    };
    match var("RAPPEL_POSTAL_PROVIDER").as_deref().unwrap_or("print") {
        "print" => {
            tracing::info!(dir = %print_dir().display(), "letters go to the print batch");
            Ok(Arc::new(
                PrintBatch::new(print_dir()).with_tariff(tariff(PostalTariff::PRINT)?),
            ))
        }
        "maileva" => {
            let required = |name: &str| {
                var(name).with_context(|| {
                    format!("{name} is required with RAPPEL_POSTAL_PROVIDER=maileva")
                })
            };
            tracing::info!("letters go to Maileva");
            Ok(Arc::new(PostalApi::maileva(MailevaConfig {
                api_url: var("RAPPEL_MAILEVA_API_URL")
                    .unwrap_or_else(|| "https://api.maileva.com".into()),
                token_url: var("RAPPEL_MAILEVA_TOKEN_URL").unwrap_or_else(|| {
                    "https://connexion.maileva.com/auth/realms/services/protocol/openid-connect/token".into()
                }),
                client_id: required("RAPPEL_MAILEVA_CLIENT_ID")?,
                client_secret: required("RAPPEL_MAILEVA_CLIENT_SECRET")?,
                tariff: tariff(PostalTariff::MAILEVA)?,
                timeout: std::time::Duration::from_secs(30),
            })))
        }
        other => anyhow::bail!(
            "RAPPEL_POSTAL_PROVIDER: `{other}` is not supported (use print or maileva)"
        ),
    }
}
