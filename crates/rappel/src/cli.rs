//! The command line: its clap definitions and what each command does.
//!
//! One concern, one file (some 700 lines): each command's clap definition sits next to what it
//! does; anything longer than wiring lives in the engine or in its own module (`providers`,
//! `bench_*`).

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rappel_engine::Engine;
use rappel_engine::scenario::{Scenario, check};
use rappel_engine::simulate::{human, simulate};

use crate::config::Config;
use crate::{
    bench, bench_dispatch, demo, engine, init_tracing, open_database, print_dir, providers,
    shutdown_signal,
};

#[derive(Parser)]
#[command(
    name = "rappel",
    version,
    about = "Rappel — patient-communication engine"
)]
pub(crate) struct Cli {
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
        /// Also check the scenario's `[expect]` section; exit 1 when it does not hold.
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

pub(crate) async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
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
                && let Err(error) = engine.notify_workers().await
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

async fn run_service(
    command: Command,
    config: Config,
    sms: providers::Sms,
    push: providers::Push,
) -> anyhow::Result<ExitCode> {
    match command {
        Command::Migrate => {
            open_database(&config).await?.close().await;
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
            let database = open_database(&config).await?;
            let engine = engine(&config, database, &sms, &push)?;
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
            let database = open_database(&config).await?;
            let engine = engine(&config, database, &sms, &push)?;
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
            let database = open_database(&config).await?;
            let engine = engine(&config, database, &sms, &push)?;
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
                let database = open_database(&config).await?;
                engine(&config, database, &sms, &push)
            };
            return Ok(run_bounce(&config, engine, recipient).await);
        }
        Command::Retention => {
            let database = open_database(&config).await?;
            let engine = engine(&config, database, &sms, &push)?;
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
            let database = open_database(&config).await?;
            let engine = engine(&config, database, &sms, &push)?;
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
            let database = open_database(&config).await?;
            let engine = engine(&config, database, &sms, &push)?;
            tracing::info!("worker started");
            engine.run_worker(shutdown_signal()).await;
            engine.close().await;
        }
        Command::Serve {
            no_worker, demo, ..
        } => {
            let database = open_database(&config).await?;
            let engine = engine(&config, database, &sms, &push)?;
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
                    engine
                        .run_worker(async move {
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
            engine.close().await;
        }
        _ => unreachable!("handled in run"),
    }
    Ok(ExitCode::SUCCESS)
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
