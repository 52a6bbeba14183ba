//! Rappel's imperative shell around the pure planner: it loads facts, calls
//! [`rappel_domain::plan::plan`], writes the difference in the same transaction, and sends what is
//! due through the channels. The server, the worker, `rappel simulate` and the tests all drive
//! this one engine; none of them writes SQL of its own.
//!
//! What it deliberately does not do: speak HTTP (that is `rappel-server`) or talk to providers
//! directly (that is `rappel-channels`).

pub mod answers;
pub mod backoff;
pub mod bench;
pub mod clock;
mod dashboard;
mod database;
mod dispatch;
mod documents;
mod facts;
pub mod fhir;
mod ingest;
mod logo;
mod postal;
mod practice;
mod push;
pub mod queries;
pub mod reconcile;
mod reports;
pub mod retention;
pub mod scenario;
pub mod secret;
mod simple_templates;
pub mod simulate;
mod stats;
mod tasks;
mod templates;
pub mod timeline;
mod two_way;
mod users;
mod webhooks;
mod worker;

use std::sync::Arc;

use jiff::SignedDuration;
use rappel_channels::Transport;
pub use rappel_channels::net_guard::NetPolicy;
use rappel_store::{Store, StoreError};
use tokio::sync::Notify;

pub use answers::{
    AnswerChannel, AnswerOutcome, AppointmentAnswer, AppointmentView, LinkAction, LinkPage,
    PatientAnswer,
};
pub use clock::{Clock, SimClock, SystemClock};
pub use dashboard::{AppointmentBrief, ChannelRate, Dashboard, Message, Outlook, SmsMeter};
pub use database::Database;
pub use documents::{
    DocumentDelivery, DocumentDetails, DocumentsConfig, LinkAnswer, LinkState, PostalQuote,
    PostalResend,
};
pub use ingest::{IngestReport, PutOutcome};
pub use logo::{Logo, LogoInfo};
pub use postal::{PostalCost, PostalSpend};
pub use practice::{ApiKey, PracticeCtx, api_key_parts};
pub use reports::BounceApplied;
pub use simple_templates::{simple_parts, simple_text};
pub use stats::{DispatchMetrics, LATENESS_BUCKETS};
pub use tasks::{PreviewRecipient, PreviewSkipped, TaskPreview, TaskRunView, TaskView};
pub use templates::{PreviewPart, TEST_SMS_PER_DAY, TemplateParts, TemplateView, TestSend};
pub use two_way::{InboundOutcome, REPLY_RULE, ReceivedMessage, SmsOptOutView};
pub use users::{MAX_FAILED_SIGN_INS, MIN_PASSWORD_CHARS, Role, SignIn, UiSession, User};
pub use webhooks::WebhookSettings;

/// Errors the engine reports to its callers; the server maps them to HTTP answers.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{what} `{id}` not found")]
    NotFound { what: &'static str, id: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EngineError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> EngineError {
        EngineError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn not_found(what: &'static str, id: &str) -> EngineError {
        EngineError::NotFound {
            what,
            id: id.to_string(),
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// The transports of each channel.
#[derive(Clone)]
pub struct Transports {
    pub email: Arc<dyn Transport>,
    pub sms: Arc<dyn Transport>,
    pub push: Arc<dyn Transport>,
    pub postal: Arc<dyn Transport>,
}

impl Transports {
    /// One transport for every channel (the file outbox, the simulator's recorder).
    pub fn all(transport: Arc<dyn Transport>) -> Transports {
        Transports {
            email: transport.clone(),
            sms: transport.clone(),
            push: transport.clone(),
            postal: transport,
        }
    }
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Base of the links in messages (`RAPPEL_PUBLIC_URL`).
    pub public_url: String,
    /// Names this process's leases, so a crashed worker's claims can be told apart.
    pub worker_id: String,
    /// How long a claimed notification stays reserved for this worker.
    pub lease: SignedDuration,
    /// How many due notifications one claim takes.
    pub batch: i64,
    /// How many claimed batches a worker's loop processes at once
    /// ([`Engine::dispatch_due_overlapped`]): with two, the next batch is claimed and prepared
    /// while the hand-offs and the record of the one before run.
    pub in_flight: usize,
    /// Where documents are kept, their key, and how patients' links behave.
    pub documents: DocumentsConfig,
    /// What the operator allows of the URLs practices give (webhooks, push endpoints) beyond
    /// public https addresses: plain http, loopback. Never a practice setting.
    pub net: NetPolicy,
    /// The country calling codes a test SMS may go to (`RAPPEL_TEST_SMS_COUNTRY_CODES`):
    /// France and its overseas departments and territories by default.
    pub test_sms_country_codes: Vec<u16>,
}

/// France (33) and its overseas departments and territories: Réunion and Mayotte (262),
/// Saint-Pierre-et-Miquelon (508), Guadeloupe and the Saint-Martin/Barthélemy (590), Guyane
/// (594), Martinique (596), Wallis-et-Futuna (681), Nouvelle-Calédonie (687), Polynésie (689).
pub const FRENCH_COUNTRY_CODES: &[u16] = &[33, 262, 508, 590, 594, 596, 681, 687, 689];

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            public_url: "http://127.0.0.1:8080".into(),
            worker_id: format!("worker-{}", std::process::id()),
            lease: SignedDuration::from_secs(60),
            batch: 100,
            in_flight: 2,
            documents: DocumentsConfig::default(),
            net: NetPolicy::default(),
            test_sms_country_codes: FRENCH_COUNTRY_CODES.to_vec(),
        }
    }
}

/// How long one webhook request may take, connection included.
const WEBHOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    transports: Transports,
    wake: Notify,
    config: EngineConfig,
    stats: stats::DispatchStats,
    /// Failed sign-ins of addresses that have no account, so that they lock like real ones.
    unknown_logins: users::UnknownLogins,
    /// Posts the practices' webhook events, only where `config.net` permits.
    webhooks: rappel_channels::webhook_out::WebhookClient,
}

impl Engine {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        transports: Transports,
        config: EngineConfig,
    ) -> Engine {
        let webhooks =
            rappel_channels::webhook_out::WebhookClient::new(WEBHOOK_TIMEOUT, config.net);
        Engine {
            inner: Arc::new(Inner {
                store,
                clock,
                transports,
                wake: Notify::new(),
                config,
                stats: Default::default(),
                unknown_logins: Default::default(),
                webhooks,
            }),
        }
    }

    /// The store under the engine, for the engine itself: the server and the binary go through
    /// the engine's methods (crates/rappel/tests/tidy.rs).
    #[cfg(not(feature = "test-support"))]
    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The store under the engine, for tests that look beneath it (feature `test-support`,
    /// enabled by dev-dependencies only, so no shipped build has it).
    #[cfg(feature = "test-support")]
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn now(&self) -> jiff::Timestamp {
        self.inner.clock.now()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// What this process's dispatcher has handed off since it started (`/metrics`).
    pub fn dispatch_metrics(&self) -> DispatchMetrics {
        self.inner.stats.snapshot()
    }

    /// Wakes this process's dispatch loop: new work may be due.
    pub fn signal(&self) {
        self.inner.wake.notify_one();
    }

    /// New work was committed: wakes this process's loop and, on PostgreSQL, the workers of
    /// every other process (`NOTIFY`), so none of them has to poll.
    pub fn work_added(&self) {
        self.signal();
        if self.store().backend() == rappel_store::Backend::Postgres
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let store = self.store().clone();
            runtime.spawn(async move {
                if let Err(error) = store.notify_work().await {
                    tracing::debug!(%error, "cannot notify the other workers; they will poll");
                }
            });
        }
    }
}

impl Engine {
    /// Waits until [`Engine::signal`] is called or `timeout` elapses.
    pub async fn wait_for_work(&self, timeout: std::time::Duration) {
        let _ = tokio::time::timeout(timeout, self.inner.wake.notified()).await;
    }
}
