//! Rappel's HTTP API: JSON under `/v1` for practice software, `problem+json` errors, a
//! Prometheus `/metrics`, and an OpenAPI document derived from the routes and their types (see
//! `docs`) with a browsable page.
//!
//! ```no_run
//! # async fn demo(engine: rappel_engine::Engine) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! rappel_server::serve(engine, listener, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```
//!
//! Every `/v1` operation is scoped to the practice of the API key it carries: another
//! practice's id answers 404 exactly like an id that does not exist, so a key cannot even
//! learn which ids other practices use.
//!
//! `/health`, `/metrics` and the documentation (`/v1/openapi.json`, `/v1/docs`) need no key:
//! they hold no practice data. `/metrics` shows counts across all practices, so it belongs on
//! the operators' network, not on the public internet.
//!
//! `/v1/webhooks/sms/{provider}` takes no key either: SMS providers call it with delivery
//! reports, and each report must prove its origin by the provider's signature (or, for OVH, a
//! secret token in the URL) checked against [`WebhookSecrets`].
//!
//! What this crate deliberately does not do: decide anything about notifications or write SQL.
//! It parses and checks what comes in (contacts strictly, at this boundary), hands it to
//! [`rappel_engine::Engine`], and shapes the answer. It does not run the dispatch loop either:
//! the binary runs it beside the server.

mod docs;
mod error;
mod extract;
mod listen;
mod metrics;
mod rate_limit;
mod routes;
mod ui;
mod validate;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::{Json, Router, middleware};
use rappel_engine::Engine;
use serde_json::json;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;

use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;

/// How the HTTP layer protects itself. The defaults suit one practice-software integration
/// per key; a bulk import may need a larger `burst`.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest accepted request body, in bytes (413 above it).
    pub body_limit: usize,
    /// Requests per second each API key may sustain (a token bucket's refill rate).
    pub rate_per_second: f64,
    /// Requests an API key may send at once before the rate applies (the bucket's size).
    pub burst: u32,
    /// Most events one `POST /v1/events` may carry: a batch is one transaction.
    pub max_events_per_request: usize,
    /// What proves an SMS provider's delivery report authentic (`/v1/webhooks/sms/…`).
    pub webhooks: WebhookSecrets,
    /// Largest accepted document (`POST /v1/documents`), in bytes (413 above it).
    pub document_limit: usize,
    /// Marks the web interface's session cookie `Secure` (set it when served over https).
    pub secure_cookies: bool,
    /// The public URL the interface is reached at (`RAPPEL_PUBLIC_URL`): the origin a sign-in
    /// form must come from and may send the browser back to, besides the request's own `Host`.
    pub public_url: Option<String>,
    /// A connection that has not sent a whole request head within this time is closed (an idle
    /// keep-alive connection too): slow-loris clients cannot hold connections.
    pub header_read_timeout: Duration,
    /// A request body must arrive whole within this time of the request's start (408 after).
    pub request_timeout: Duration,
    /// Connections served at once; the next ones wait in the listen backlog.
    pub max_connections: usize,
    /// What bounds the cost of sign-in attempts.
    pub sign_in: SignInLimits,
}

/// Each sign-in attempt costs an Argon2id verification (19 MiB, tens of milliseconds): these
/// limits keep a flood of attempts from taking the memory and the CPU of everyone else.
#[derive(Clone, Debug)]
pub struct SignInLimits {
    /// Attempts one client address may make in a row before the rate applies (IPv6 addresses
    /// count by their /64 network). Behind a reverse proxy every client has the proxy's address.
    pub per_address_burst: u32,
    /// Attempts per minute one client address may sustain.
    pub per_address_per_minute: f64,
    /// Attempts the whole server takes in a row before the global rate applies.
    pub global_burst: u32,
    /// Attempts per second the whole server sustains.
    pub global_per_second: f64,
    /// Password verifications computed at once.
    pub concurrent_hashes: usize,
    /// How long an attempt waits for a verification slot before the answer is 503.
    pub hash_wait: Duration,
}

impl Default for SignInLimits {
    fn default() -> SignInLimits {
        SignInLimits {
            per_address_burst: 20,
            per_address_per_minute: 20.0,
            global_burst: 50,
            global_per_second: 10.0,
            concurrent_hashes: 2,
            hash_wait: Duration::from_secs(2),
        }
    }
}

/// The secrets that prove a delivery report comes from its provider. A provider without its
/// secret has every report refused: a report that cannot be verified is never applied.
#[derive(Clone, Default)]
pub struct WebhookSecrets {
    /// Twilio's auth token, which keys `X-Twilio-Signature`.
    pub twilio_auth_token: Option<String>,
    /// The `?token=` of the callback URL registered with OVH.
    pub ovh_callback_token: Option<String>,
    /// The Standard Webhooks key shared with a practice's SMS gateway.
    pub sms_webhook_key: Option<rappel_channels::sms::webhook::SigningKey>,
    /// The return path whose tokens prove a bounce's message (`RAPPEL_BOUNCE_DOMAIN`).
    pub bounce: Option<rappel_channels::bounce::BounceAddress>,
    /// The bearer token a mail relay presents to `POST /v1/webhooks/email/dsn`: an operator's
    /// secret (`RAPPEL_BOUNCE_WEBHOOK_TOKEN`), since a relay holds no practice's key.
    pub bounce_webhook_token: Option<String>,
    /// What Brevo presents to `POST /v1/webhooks/email/brevo` (`RAPPEL_BREVO_WEBHOOK_TOKEN`):
    /// a bearer token, or the password of the basic credentials in the registered URL.
    pub brevo_webhook_token: Option<String>,
    /// The password of the basic credentials in the URL registered with Mailjet
    /// (`RAPPEL_MAILJET_WEBHOOK_TOKEN`), as Mailjet documents for its event API.
    pub mailjet_webhook_token: Option<String>,
}

impl std::fmt::Debug for WebhookSecrets {
    // Which secrets are set, never their values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecrets")
            .field("twilio_auth_token", &self.twilio_auth_token.is_some())
            .field("ovh_callback_token", &self.ovh_callback_token.is_some())
            .field("sms_webhook_key", &self.sms_webhook_key.is_some())
            .field("bounce", &self.bounce)
            .field("bounce_webhook_token", &self.bounce_webhook_token.is_some())
            .field("brevo_webhook_token", &self.brevo_webhook_token.is_some())
            .field(
                "mailjet_webhook_token",
                &self.mailjet_webhook_token.is_some(),
            )
            .finish()
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            body_limit: 1024 * 1024,
            rate_per_second: 50.0,
            burst: 100,
            max_events_per_request: 1000,
            webhooks: WebhookSecrets::default(),
            document_limit: 10 * 1024 * 1024,
            secure_cookies: false,
            public_url: None,
            header_read_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(60),
            max_connections: 512,
            sign_in: SignInLimits::default(),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub engine: Engine,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<Metrics>,
    pub limiter: Arc<RateLimiter>,
    /// Sign-in attempts per client address, and for the whole server.
    pub sign_in_per_address: Arc<RateLimiter>,
    pub sign_in_global: Arc<RateLimiter>,
    /// Slots for the password verifications of sign-ins.
    pub hashes: Arc<tokio::sync::Semaphore>,
}

/// The API with the default [`ServerConfig`].
pub fn router(engine: Engine) -> Router {
    router_with(engine, ServerConfig::default())
}

pub fn router_with(engine: Engine, config: ServerConfig) -> Router {
    let state = AppState {
        engine,
        limiter: Arc::new(RateLimiter::new(config.rate_per_second, config.burst)),
        sign_in_per_address: Arc::new(RateLimiter::new(
            config.sign_in.per_address_per_minute / 60.0,
            config.sign_in.per_address_burst,
        )),
        sign_in_global: Arc::new(RateLimiter::new(
            config.sign_in.global_per_second,
            config.sign_in.global_burst,
        )),
        hashes: Arc::new(tokio::sync::Semaphore::new(
            config.sign_in.concurrent_hashes.max(1),
        )),
        config: Arc::new(config),
        metrics: Arc::new(Metrics::default()),
    };
    let body_limit = state.config.body_limit;
    let request_timeout = state.config.request_timeout;
    let (api, _) = api_routes(&state.config).split_for_parts();
    let (public, _) = public_routes().split_for_parts();
    // Only matched routes authenticate: an unknown path is a plain 404 for everyone.
    let api = api.route_layer(middleware::from_fn_with_state(
        state.clone(),
        extract::require_api_key,
    ));
    api.merge(public)
        .merge(ui::router(state.clone()))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            request_timeout,
            listen::body_deadline,
        ))
        .with_state(state)
}

/// Every `/v1` route behind the API key, each registered with its description: the handlers'
/// `#[utoipa::path]` say what the document says about them, so a route cannot be served without
/// being documented.
fn api_routes(config: &ServerConfig) -> OpenApiRouter<AppState> {
    use routes::{documents, events, facts, inbox, people, push, replies, settings, tasks};
    // The multipart envelope adds a little to the file itself.
    let upload_limit = DefaultBodyLimit::max(config.document_limit.saturating_add(64 * 1024));
    let (schemas, paths, upload) = routes!(documents::upload);
    OpenApiRouter::new()
        .routes(routes!(people::get_practitioner, people::put_practitioner))
        .routes(routes!(people::get_motive, people::put_motive))
        .routes(routes!(
            people::get_patient,
            people::put_patient,
            people::delete_patient
        ))
        .routes(routes!(push::put_subscription, push::delete_subscription))
        .routes(routes!(facts::patient_timeline))
        .routes(routes!(facts::online_booking))
        .routes(routes!(facts::appointment))
        .routes(routes!(facts::appointment_timeline))
        .routes(routes!(events::post_events))
        .routes((schemas, paths, upload.layer(upload_limit)))
        .routes(routes!(documents::get))
        .routes(routes!(documents::resend_postal))
        .routes(routes!(settings::get_settings, settings::patch_settings))
        .routes(routes!(facts::notifications))
        .routes(routes!(inbox::list))
        .routes(routes!(inbox::resolve))
        .routes(routes!(replies::list))
        .routes(routes!(replies::resolve))
        .routes(routes!(replies::get_opt_out, replies::lift_opt_out))
        .routes(routes!(tasks::list, tasks::create))
        .routes(routes!(tasks::get, tasks::patch, tasks::delete))
        .routes(routes!(tasks::runs))
        .routes(routes!(tasks::preview))
        .merge(routes::templates::routes())
        .merge(routes::postal::routes())
}

/// The routes that need no API key: what holds no practice data (health, metrics, this
/// documentation), what providers call and prove by their own means (the webhooks), and the
/// patient's pages, whose link's token is the only credential.
fn public_routes() -> OpenApiRouter<AppState> {
    use routes::{appointment_links, links, replies, webhooks};
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(metrics::render))
        .routes(routes!(docs::openapi))
        .routes(routes!(docs::page))
        // Called by SMS providers, which prove themselves by signature instead of an API key.
        .routes(routes!(webhooks::sms_report))
        // The SMS patients send back, proven like the delivery reports (two-way SMS).
        .routes(routes!(replies::sms_inbound))
        // Bounces posted by a mail relay, authenticated by the operator's bearer token.
        .routes(routes!(webhooks::email_dsn))
        // Email services' event webhooks, authenticated by the operator's token.
        .routes(routes!(webhooks::email_events))
        .routes(routes!(links::page, links::submit))
        .routes(routes!(appointment_links::page, appointment_links::submit))
}

/// The document of every route [`api_routes`] and [`public_routes`] register.
pub(crate) fn registered_openapi() -> utoipa::openapi::OpenApi {
    OpenApiRouter::<AppState>::with_openapi(docs::ApiDoc::openapi())
        .merge(api_routes(&ServerConfig::default()))
        .merge(public_routes())
        .into_openapi()
}

/// A route the server registers, for the test that every one is documented.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredRoute {
    /// `get`, `post`…, or `*` for a page of the web interface (registered with its methods by
    /// `ui::pages`, which are not recorded).
    pub method: String,
    pub path: String,
    /// Served and in the document (every API route); false for the web interface's pages, the
    /// one deliberate exclusion: HTML for a signed-in person, not an API.
    pub documented: bool,
}

/// Every route [`router`] serves, from the registrations themselves (not a list kept beside
/// them): the API's from its document, the web interface's as `ui::pages` recorded them.
#[doc(hidden)]
pub fn registered_routes() -> Vec<RegisteredRoute> {
    let mut all = Vec::new();
    for (path, item) in registered_openapi().paths.paths {
        let item = serde_json::to_value(item).unwrap_or_default();
        for method in [
            "get", "put", "post", "patch", "delete", "head", "options", "trace",
        ] {
            if item.get(method).is_some() {
                all.push(RegisteredRoute {
                    method: method.into(),
                    path: path.clone(),
                    documented: true,
                });
            }
        }
    }
    all.extend(ui::pages().paths().map(|path| RegisteredRoute {
        method: "*".into(),
        path: path.to_string(),
        documented: false,
    }));
    all
}

/// Serves the API with the default [`ServerConfig`] until `shutdown` completes; requests in
/// flight then finish before this returns.
pub async fn serve(
    engine: Engine,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(engine, ServerConfig::default(), listener, shutdown).await
}

pub async fn serve_with(
    engine: Engine,
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "HTTP API listening");
    }
    let app = router_with(engine, config.clone());
    listen::serve(app, &config, listener, shutdown).await
}

#[utoipa::path(
    get,
    path = "/health",
    tag = "Operations",
    operation_id = "health",
    summary = "Liveness",
    security(),
    responses((status = 200, description = "`{\"status\": \"ok\"}`", content_type = "application/json")),
)]
async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}
