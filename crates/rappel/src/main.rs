//! The `rappel` binary: one process that plays every role (API, worker, CLI tools).
//!
//! Configuration comes from built-in defaults, then an optional `rappel.toml`, then `RAPPEL_*`
//! environment variables, then flags; it is validated once at start-up, and a bad value stops
//! the process with one message naming the setting (exit status 2).

mod bench;
mod bench_dispatch;
mod bench_isolation;
mod config;
mod demo;
mod providers;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rappel_channels::email::{SmtpConfig, SmtpTransport};
use rappel_channels::{FileOutbox, Transport};
use rappel_engine::scenario::{Scenario, check};
use rappel_engine::simulate::{human, simulate};
use rappel_engine::{Engine, EngineConfig, SystemClock, Transports};
use rappel_store::Store;

use crate::config::Config;

/// The planner and the dispatcher allocate many small strings (identity keys, rendered texts);
/// mimalloc serves them about twice as fast as the system allocator (`rappel bench plan`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "rappel",
    version,
    about = "Rappel — patient-communication engine"
)]
struct Cli {
    /// Configuration file (default: ./rappel.toml when present).
    #[arg(long, global = true)]
    config: Option<std::path::PathBuf>,
    /// Database URL (RAPPEL_DATABASE_URL): sqlite://PATH or postgres://…
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// HTTP API and dispatch worker in one process.
    Serve {
        /// Address to listen on (RAPPEL_LISTEN).
        #[arg(long)]
        listen: Option<String>,
        /// Run the API only (multi-node deployments run `rappel worker` elsewhere).
        #[arg(long)]
        no_worker: bool,
        /// On an empty database, create a demo practice with patients and appointments.
        #[arg(long)]
        demo: bool,
    },
    /// The dispatch worker and task scheduler alone.
    Worker,
    /// Apply database migrations.
    Migrate,
    /// Manage practices.
    Practice {
        #[command(subcommand)]
        command: PracticeCommand,
    },
    /// Manage the people who sign in to the web interface.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Run a scenario file through the real engine on a simulated clock.
    Simulate {
        file: std::path::PathBuf,
        /// Machine-readable output (SCENARIOS.md).
        #[arg(long)]
        json: bool,
        /// Also check the scenario's [expect] section; exit 1 when it does not hold.
        #[arg(long)]
        check: bool,
    },
    /// For every message the policy considered in a scenario: sent when, or why not.
    Explain { file: std::path::PathBuf },
    /// Inspect and validate policies.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Assemble a practice's letters of one day (RAPPEL_PRINT_DIR/PRACTICE/YYYY-MM-DD/) into one
    /// PDF to print and a CSV list, for practices that post their letters themselves
    /// (RAPPEL_POSTAL_PROVIDER=print).
    PrintBatch {
        /// The practice; may be left out when the database has only one.
        #[arg(long)]
        practice: Option<String>,
        /// The day (YYYY-MM-DD); by default today in the practice's time zone.
        #[arg(long)]
        date: Option<jiff::civil::Date>,
    },
    /// Read one bounce on standard input (what Postfix's pipe(8) hands a command) and record
    /// what it says of the message it came back for. Exit 0 when handled or ignorable (not a
    /// bounce, not ours), 75 (EX_TEMPFAIL: the MTA keeps it and retries) when the database or
    /// the configuration fails.
    Bounce {
        /// The address the bounce was delivered to (pipe(8)'s `${original_recipient}`); by
        /// default the bounce's own Delivered-To, X-Original-To and To fields are read.
        #[arg(long)]
        recipient: Option<String>,
    },
    /// Delete the history each practice keeps no longer (setting `history_retention_months`,
    /// 13 by default): what the worker does every hour. Prints what went.
    Retention,
    /// Web Push (VAPID) keys.
    Vapid {
        #[command(subcommand)]
        command: VapidCommand,
    },
    /// Benchmarks that print their figures: the whole dispatch path (flags below),
    /// `bench plan` for the planner alone, or `bench isolation` for one practice's reads
    /// during another's flood.
    #[command(args_conflicts_with_subcommands = true)]
    Bench {
        #[command(subcommand)]
        command: Option<bench::BenchCommand>,
        #[command(flatten)]
        dispatch: bench_dispatch::DispatchArgs,
    },
}

#[derive(Subcommand)]
enum PracticeCommand {
    /// Create a practice; prints {"id": …, "api_key": …} once (the key is stored only hashed).
    Create {
        name: String,
        /// A shipped preset: doctolib, rosa, maddie or lifen.
        #[arg(long, required_unless_present = "policy", conflicts_with = "policy")]
        preset: Option<String>,
        /// The practice's own policy file instead of a preset (`rappel policy check FILE`).
        #[arg(long)]
        policy: Option<std::path::PathBuf>,
        #[arg(long, default_value = "Europe/Paris")]
        timezone: String,
    },
    /// Set what the operator controls for a practice (its key and web interface cannot): the
    /// plan and the monthly SMS quota. Prints the resulting values as JSON.
    Set {
        /// The practice's id (`rappel practice create` printed it).
        #[arg(long)]
        id: String,
        /// The plan, one of the preset's choices (maddie: pro, sms_historic, essentiel).
        #[arg(long)]
        plan: Option<String>,
        /// SMS per month, or `none` for no quota.
        #[arg(long)]
        sms_quota: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user of a practice; prints {"id", "email", "role"} (and the password when it
    /// was generated). The password comes from RAPPEL_USER_PASSWORD, or is generated.
    Create {
        /// The practice's id (`rappel practice create` printed it).
        #[arg(long)]
        practice: String,
        /// The address they sign in with.
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// `admin` (changes settings, templates, tasks, users) or `secretariat`.
        #[arg(long, default_value = "admin")]
        role: String,
    },
}

#[derive(Subcommand)]
enum VapidCommand {
    /// Print a new key pair as {"public_key": …, "private_key": …}: the private key goes in
    /// RAPPEL_VAPID_PRIVATE_KEY, the public key in the web page that subscribes browsers.
    Generate,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a policy file; report mistakes with line and reason.
    Check { file: std::path::PathBuf },
    /// Print a shipped preset.
    Show { preset: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Simulate {
            file,
            json,
            check: want_check,
        } => Ok(run_simulate(&file, json, want_check, false).await),
        Command::Explain { file } => Ok(run_simulate(&file, false, false, true).await),
        Command::Policy { command } => Ok(run_policy(command)),
        Command::Vapid {
            command: VapidCommand::Generate,
        } => {
            let key = rappel_channels::push::VapidKey::generate();
            println!(
                "{}",
                serde_json::json!({
                    "public_key": key.public_base64url(),
                    "private_key": key.private_base64url(),
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command: Some(command),
            ..
        } => bench::run(command).await,
        Command::Bench {
            command: None,
            dispatch,
        } => bench_dispatch::run(dispatch).await,
        command => {
            let listen = match &command {
                Command::Serve { listen, .. } => listen.clone(),
                _ => None,
            };
            // A bounce refused for a configuration mistake would be lost; EX_TEMPFAIL keeps it
            // in the MTA's queue until the mistake is fixed.
            let config_error = if matches!(command, Command::Bounce { .. }) {
                EX_TEMPFAIL
            } else {
                2
            };
            let config = match Config::load(cli.config.as_deref(), cli.database_url, listen) {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("configuration error: {error}");
                    return Ok(ExitCode::from(config_error));
                }
            };
            let sms = match providers::Sms::from_env(&config.public_url) {
                Ok(sms) => sms,
                Err(error) => {
                    eprintln!("configuration error: {error}");
                    return Ok(ExitCode::from(2));
                }
            };
            let push = match providers::Push::from_env() {
                Ok(push) => push,
                Err(error) => {
                    eprintln!("configuration error: {error}");
                    return Ok(ExitCode::from(2));
                }
            };
            init_tracing();
            run_service(command, config, sms, push).await
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAPPEL_LOG")
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn run_simulate(
    file: &std::path::Path,
    json: bool,
    want_check: bool,
    explain: bool,
) -> ExitCode {
    let name = file.display().to_string();
    let source = match std::fs::read_to_string(file) {
        Ok(source) => source,
        Err(e) => {
            eprintln!("{name}: cannot read the file: {e}");
            return ExitCode::from(2);
        }
    };
    let scenario = match Scenario::parse(&name, &source) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let output = match simulate(&name, &scenario).await {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&output).expect("output serializes")
        );
    } else {
        print!("{}", human(&output, explain));
    }
    if want_check {
        let failures = scenario
            .expect
            .as_ref()
            .map(|e| check(e, &output))
            .unwrap_or_default();
        if !failures.is_empty() {
            for f in &failures {
                eprintln!("{name}: {f}");
            }
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn run_policy(command: PolicyCommand) -> ExitCode {
    match command {
        PolicyCommand::Show { preset } => match rappel_domain::policy::preset_source(&preset) {
            Some(source) => {
                print!("{source}");
                ExitCode::SUCCESS
            }
            None => {
                let names: Vec<_> = rappel_domain::policy::PRESETS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect();
                eprintln!(
                    "unknown preset `{preset}` (available: {})",
                    names.join(", ")
                );
                ExitCode::from(2)
            }
        },
        PolicyCommand::Check { file } => {
            let name = file.display().to_string();
            let source = match std::fs::read_to_string(&file) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{name}: cannot read the file: {e}");
                    return ExitCode::from(2);
                }
            };
            match rappel_domain::policy::Policy::parse(&source) {
                Ok(policy) => {
                    println!(
                        "{name}: ok — policy `{}` with {} rules and {} options",
                        policy.name,
                        policy.rules.len(),
                        policy.options.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(mut e) => {
                    e.file = Some(name);
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// sysexits.h's EX_TEMPFAIL: an MTA's pipe transport keeps the message and tries again later.
const EX_TEMPFAIL: u8 = 75;

/// `rappel bounce`: reads the bounce, finds its message, records the outcome.
async fn run_bounce(
    config: &Config,
    engine: impl AsyncFnOnce() -> anyhow::Result<Engine>,
    recipient: Option<String>,
) -> ExitCode {
    use std::io::Read;
    let Some(verp) = &config.bounce else {
        eprintln!(
            "configuration error: RAPPEL_BOUNCE_DOMAIN and RAPPEL_BOUNCE_SECRET are needed to match bounces to messages"
        );
        return ExitCode::from(EX_TEMPFAIL);
    };
    // Bounces quote at most the original message; 20 MB is more than any relay returns.
    let mut raw = Vec::new();
    // One blocking read before any other work of this short-lived process.
    if let Err(error) = std::io::stdin()
        .take(20 * 1024 * 1024)
        .read_to_end(&mut raw)
    {
        eprintln!("cannot read the bounce: {error}");
        return ExitCode::from(EX_TEMPFAIL);
    }
    let Some(bounce) = rappel_channels::bounce::parse(&raw) else {
        tracing::info!(bytes = raw.len(), "not a bounce; ignored");
        return ExitCode::SUCCESS;
    };
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len());
    let mut tokens = recipient.map(|r| verp.tokens_in(&r)).unwrap_or_default();
    for token in verp.tokens_in(&String::from_utf8_lossy(&raw[..head_end])) {
        if !tokens.contains(&token) {
            tokens.push(token);
        }
    }
    let engine = match engine().await {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!("{error:#}");
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    match engine.apply_bounce(&bounce, &tokens, verp).await {
        Ok(applied) => {
            tracing::debug!(?applied, "bounce handled");
            // A bounce may have planned a letter: wake the workers now (PostgreSQL), awaited
            // here because this process exits before a background notification would go.
            if matches!(applied, rappel_engine::BounceApplied::Recorded { .. })
                && engine.store().backend() == rappel_store::Backend::Postgres
                && let Err(error) = engine.store().notify_work().await
            {
                tracing::debug!(%error, "cannot notify the workers; they will poll");
            }
            ExitCode::SUCCESS
        }
        Err(rappel_engine::EngineError::Store(error)) => {
            eprintln!("database error, the MTA will retry: {error}");
            ExitCode::from(EX_TEMPFAIL)
        }
        Err(error) => {
            // The bounce is read and its message found, but the engine refused what follows
            // (a document erased since, say): retrying would not change that.
            tracing::warn!(%error, "bounce not applied");
            ExitCode::SUCCESS
        }
    }
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                config.redacted_database_url()
            )
        })?;
    store
        .migrate()
        .await
        .context("cannot apply the migrations")?;
    Ok(store)
}

fn engine(
    config: &Config,
    store: Store,
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
    Ok(Engine::new(
        store,
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
            net: providers::net_policy_from_env().map_err(anyhow::Error::msg)?,
            test_sms_country_codes: providers::test_sms_country_codes_from_env()
                .map_err(anyhow::Error::msg)?,
            ..EngineConfig::default()
        },
    ))
}

async fn run_service(
    command: Command,
    config: Config,
    sms: providers::Sms,
    push: providers::Push,
) -> anyhow::Result<ExitCode> {
    match command {
        Command::Migrate => {
            open_store(&config).await?;
            println!("migrations applied to {}", config.redacted_database_url());
        }
        Command::Practice {
            command:
                PracticeCommand::Create {
                    name,
                    preset,
                    policy,
                    timezone,
                },
        } => {
            let store = open_store(&config).await?;
            let engine = engine(&config, store, &sms, &push)?;
            let created = match (preset, policy) {
                (_, Some(file)) => {
                    let source = std::fs::read_to_string(&file)
                        .with_context(|| format!("cannot read {}", file.display()))?;
                    if let Err(mut e) = rappel_domain::policy::Policy::parse(&source) {
                        e.file = Some(file.display().to_string());
                        eprintln!("{e}");
                        return Ok(ExitCode::from(2));
                    }
                    engine
                        .create_practice_with_policy(&name, source, &timezone)
                        .await
                }
                (Some(preset), None) => {
                    engine
                        .create_practice(&name, &preset, &timezone, Default::default())
                        .await
                }
                (None, None) => unreachable!("clap requires --preset or --policy"),
            };
            match created {
                Ok(key) => println!("{}", serde_json::to_string(&key)?),
                Err(rappel_engine::EngineError::Invalid { field, reason }) => {
                    eprintln!("{field}: {reason}");
                    return Ok(ExitCode::from(2));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Command::Practice {
            command:
                PracticeCommand::Set {
                    id,
                    plan,
                    sms_quota,
                },
        } => {
            let mut patch = serde_json::Map::new();
            if let Some(plan) = plan {
                patch.insert("plan".into(), serde_json::Value::from(plan));
            }
            if let Some(quota) = sms_quota {
                let value = match quota.trim() {
                    "none" => serde_json::Value::Null,
                    text => match text.parse::<u32>() {
                        Ok(n) => serde_json::Value::from(n),
                        Err(_) => {
                            eprintln!("sms-quota: `{text}` is not a number of SMS nor `none`");
                            return Ok(ExitCode::from(2));
                        }
                    },
                };
                patch.insert("sms_quota_per_month".into(), value);
            }
            if patch.is_empty() {
                eprintln!("practice set: give --plan or --sms-quota");
                return Ok(ExitCode::from(2));
            }
            let store = open_store(&config).await?;
            let engine = engine(&config, store, &sms, &push)?;
            match engine.set_operator_settings(&id, &patch).await {
                Ok(settings) => {
                    let out: serde_json::Map<String, serde_json::Value> =
                        rappel_domain::settings::OPERATOR_SETTINGS
                            .iter()
                            .map(|key| {
                                let value = settings.get(key).cloned().unwrap_or_default();
                                (key.to_string(), value)
                            })
                            .collect();
                    println!("{}", serde_json::Value::Object(out));
                }
                Err(rappel_engine::EngineError::Invalid { field, reason }) => {
                    eprintln!("{field}: {reason}");
                    return Ok(ExitCode::from(2));
                }
                Err(rappel_engine::EngineError::NotFound { what, id }) => {
                    eprintln!("id: {what} `{id}` does not exist");
                    return Ok(ExitCode::from(2));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Command::User {
            command:
                UserCommand::Create {
                    practice,
                    email,
                    name,
                    role,
                },
        } => {
            let Some(role) = rappel_engine::Role::parse(&role) else {
                eprintln!("role: `{role}` is not a role (admin or secretariat)");
                return Ok(ExitCode::from(2));
            };
            let (password, generated) = match std::env::var("RAPPEL_USER_PASSWORD") {
                Ok(p) if !p.is_empty() => (p, false),
                _ => (generate_password(), true),
            };
            let store = open_store(&config).await?;
            let engine = engine(&config, store, &sms, &push)?;
            match engine
                .create_user(&practice, &email, &name, role, &password)
                .await
            {
                Ok(user) => {
                    let mut out = serde_json::json!({
                        "id": user.id,
                        "email": user.email,
                        "role": user.role.as_str(),
                    });
                    if generated {
                        out["password"] = serde_json::Value::from(password);
                    }
                    println!("{out}");
                }
                Err(rappel_engine::EngineError::Invalid { field, reason }) => {
                    eprintln!("{field}: {reason}");
                    return Ok(ExitCode::from(2));
                }
                Err(rappel_engine::EngineError::NotFound { what, id }) => {
                    eprintln!("practice: {what} `{id}` does not exist");
                    return Ok(ExitCode::from(2));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Command::Bounce { recipient } => {
            let engine = async || {
                let store = open_store(&config).await?;
                engine(&config, store, &sms, &push)
            };
            return Ok(run_bounce(&config, engine, recipient).await);
        }
        Command::Retention => {
            let store = open_store(&config).await?;
            let engine = engine(&config, store, &sms, &push)?;
            let purged = engine.enforce_retention().await?;
            println!(
                "deleted {} messages ({} provider reports), {} handled to-verify entries, {} webhook events",
                purged.notifications,
                purged.delivery_reports,
                purged.inbox_entries,
                purged.webhook_deliveries
            );
        }
        Command::PrintBatch { practice, date } => {
            let store = open_store(&config).await?;
            let engine = engine(&config, store, &sms, &push)?;
            let batch = async {
                let practice = match practice {
                    Some(practice) => practice,
                    None => engine.sole_practice().await?,
                };
                engine.print_batch(&print_dir(), &practice, date).await
            }
            .await;
            match batch {
                Ok(batch) => println!(
                    "{}",
                    serde_json::json!({
                        "pdf": batch.pdf.display().to_string(),
                        "csv": batch.csv.display().to_string(),
                        "letters": batch.letters,
                        "pages": batch.pages,
                        "cost_cents": batch.cost_cents,
                    })
                ),
                Err(rappel_engine::EngineError::Invalid { field, reason }) => {
                    eprintln!("{field}: {reason}");
                    return Ok(ExitCode::from(2));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Command::Worker => {
            let store = open_store(&config).await?;
            let engine = engine(&config, store, &sms, &push)?;
            tracing::info!("worker started");
            worker_loop(engine, shutdown_signal()).await;
        }
        Command::Serve {
            no_worker, demo, ..
        } => {
            let store = open_store(&config).await?;
            let engine = engine(&config, store, &sms, &push)?;
            if demo {
                demo::seed(&engine, &config).await?;
            }
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            tracing::info!(address = %config.listen, "listening");
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let worker = (!no_worker).then(|| {
                let engine = engine.clone();
                let mut rx = stop_rx.clone();
                tokio::spawn(async move {
                    worker_loop(engine, async move {
                        let _ = rx.changed().await;
                    })
                    .await
                })
            });
            let mut rx = stop_rx.clone();
            let server_config = rappel_server::ServerConfig {
                webhooks: rappel_server::WebhookSecrets {
                    bounce: config.bounce.clone(),
                    bounce_webhook_token: config.bounce_webhook_token.clone().map(|t| t.0),
                    ..sms.webhooks.clone()
                },
                // Served over https (behind a proxy or not): the session cookie never goes in clear.
                secure_cookies: config.public_url.starts_with("https://"),
                public_url: Some(config.public_url.clone()),
                header_read_timeout: config.header_timeout,
                request_timeout: config.request_timeout,
                max_connections: config.max_connections,
                ..rappel_server::ServerConfig::default()
            };
            let server = tokio::spawn(rappel_server::serve_with(
                engine.clone(),
                server_config,
                listener,
                async move {
                    let _ = rx.changed().await;
                },
            ));
            shutdown_signal().await;
            tracing::info!("shutting down: finishing in-flight work");
            let _ = stop_tx.send(true);
            let _ = server.await;
            if let Some(worker) = worker {
                let _ = worker.await;
            }
        }
        _ => unreachable!("handled in run"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs due tasks and dispatches due messages, then sleeps until the next due instant or a
/// wake-up from the engine. A batch in progress finishes before shutdown.
/// How often the worker deletes the history practices keep no longer.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

async fn worker_loop(engine: Engine, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    // On PostgreSQL the commits of other processes wake this loop (LISTEN/NOTIFY); on SQLite
    // one process owns the database and its own wake-ups are enough.
    let mut listener = match engine.store().listen_work().await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(%error, "cannot LISTEN for work; polling every 5 s instead");
            None
        }
    };
    let longest_sleep = std::time::Duration::from_secs(if listener.is_some() { 60 } else { 5 });
    // Consecutive rounds that failed: the next waits longer (with jitter, at most a minute),
    // instead of retrying at once while the queue says "due now". The first failure of an
    // outage is logged with its cause, the others at debug, and the recovery once.
    let mut backoff = rappel_engine::backoff::Backoff::default();
    let mut listen_backoff = rappel_engine::backoff::Backoff::default();
    let mut next_retention = std::time::Instant::now();
    loop {
        let mut failure: Option<String> = None;
        if let Err(error) = engine.run_due_tasks().await {
            failure = Some(format!("scheduled tasks: {error}"));
        }
        if let Err(error) = engine.dispatch_all_due().await {
            failure = Some(format!("dispatch: {error}"));
        }
        if let Err(error) = engine.deliver_webhooks().await {
            failure = Some(format!("webhook delivery: {error}"));
        }
        // Retention runs at start and then hourly; a failed pass is tried again next round.
        if std::time::Instant::now() >= next_retention {
            match engine.enforce_retention().await {
                Ok(_) => next_retention = std::time::Instant::now() + RETENTION_EVERY,
                Err(error) => failure = Some(format!("retention: {error}")),
            }
        }
        let next_due = match engine.store().next_due().await {
            Ok(next) => next,
            Err(error) => {
                failure = Some(format!("next due instant: {error}"));
                None
            }
        };
        let next_task = engine.next_task_due().await.ok().flatten();
        let pause = match &failure {
            Some(cause) => {
                let (pause, first) = backoff.failed(rappel_engine::backoff::jitter());
                if first {
                    tracing::error!(%cause, retry_in_s = pause.as_secs_f64(), "the worker's round failed; waiting longer after each failure (at most 60 s) until the database answers again");
                } else {
                    tracing::debug!(%cause, retry_in_s = pause.as_secs_f64(), "the worker's round failed again");
                }
                Some(pause)
            }
            None => {
                if backoff.succeeded() {
                    tracing::info!("the worker's round works again; back to normal scheduling");
                }
                None
            }
        };
        let now = engine.now();
        let wait = [next_due, next_task]
            .into_iter()
            .flatten()
            .min()
            .map(|t| {
                t.duration_since(now)
                    .max(jiff::SignedDuration::ZERO)
                    .unsigned_abs()
            })
            .unwrap_or(longest_sleep)
            .min(longest_sleep);
        let wait = pause.map_or(wait, |pause| wait.max(pause));
        tokio::select! {
            _ = &mut shutdown => return,
            _ = engine.wait_for_work(wait) => {}
            signal = async {
                match listener.as_mut() {
                    Some(listener) => listener.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                match signal {
                    Ok(_) => {
                        listen_backoff.succeeded();
                    }
                    Err(error) => {
                        // Without the connection, wake-ups stop: poll instead, waiting longer
                        // while the database does not answer.
                        let (pause, first) = listen_backoff.failed(rappel_engine::backoff::jitter());
                        if first {
                            tracing::warn!(%error, "lost the LISTEN connection; reconnecting");
                        }
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }
    }
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

/// A password to hand over once: 16 characters from an alphabet without look-alikes.
fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    // Bytes at or above the largest multiple of the alphabet's length are drawn again, so
    // every character is equally likely.
    let limit = 256 - 256 % ALPHABET.len();
    let mut out = String::with_capacity(16);
    while out.len() < 16 {
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte).expect("the OS provides randomness");
        if usize::from(byte[0]) < limit {
            out.push(ALPHABET[usize::from(byte[0]) % ALPHABET.len()] as char);
        }
    }
    out
}
