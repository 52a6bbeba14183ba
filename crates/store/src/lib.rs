//! Rappel's persistence: one API over SQLite (the embedded default) and PostgreSQL (several
//! `rappel` processes sharing one database). Only SQL lives here.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rappel_store::StoreError> {
//! let store = rappel_store::Store::connect("sqlite::memory:").await?;
//! store.migrate().await?;
//! let mut tx = store.begin().await?;
//! assert!(tx.practice("nope").await?.is_none());
//! tx.commit().await?;
//! # Ok(()) }
//! ```
//!
//! Both backends go through `sqlx::Any` with the same SQL text, so they cannot drift apart; the
//! few places where the dialects differ (`FOR UPDATE SKIP LOCKED`, upserts) branch on
//! [`Backend`]. Instants are stored as epoch milliseconds (BIGINT) and structured facts as JSON
//! text, which both backends index and compare the same way. Every primary key and index starts
//! with the practice id, so the schema can be sharded by practice (SPEC.md "Scale"); the
//! exceptions are the lookups that cannot know the practice (ARCHITECTURE.md lists them, and
//! `tests/statement_scope.rs` checks every statement against that list). Workers find the
//! practices with due work in a small per-practice summary (`practice_due`), then claim inside
//! one practice at a time.
//!
//! What it deliberately does not do: decide anything. Planning, reconciliation and the send
//! decision live in `rappel-domain` and `rappel-engine`; this crate stores their results.

use jiff::Timestamp;
use rappel_domain::notification::{Channel, Kind, Reason, Recipient};
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
    #[error("unsupported database URL `{0}` (use sqlite://PATH, sqlite::memory: or postgres://…)")]
    UnsupportedUrl(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A practice (the tenant).
#[derive(Clone, Debug, PartialEq)]
pub struct PracticeRow {
    pub id: String,
    pub name: String,
    /// A preset name (`doctolib`, …) or `custom`.
    pub preset: String,
    /// The policy TOML when `preset = "custom"`.
    pub policy: Option<String>,
    pub timezone: String,
    /// The practice's option values (validated by the engine against the policy).
    pub settings: Map<String, Value>,
    pub created_at: Timestamp,
}

/// Where a notification stands in the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Waiting for `due_at`.
    Pending,
    /// Claimed by a worker holding a lease.
    Sending,
    /// Handed to the provider.
    Sent,
    /// The provider reported delivery.
    Delivered,
    /// Permanently failed (`last_error` says why).
    Failed,
    /// Not sent, for `reason`.
    Suppressed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
            Status::Suppressed => "suppressed",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Some(match text {
            "pending" => Status::Pending,
            "sending" => Status::Sending,
            "sent" => Status::Sent,
            "delivered" => Status::Delivered,
            "failed" => Status::Failed,
            "suppressed" => Status::Suppressed,
            _ => return None,
        })
    }
}

/// One row of the queue (the `notifications` table).
#[derive(Clone, Debug, PartialEq)]
pub struct NotificationRow {
    pub practice_id: String,
    /// The planner's identity key, unique within the practice.
    pub key: String,
    /// The patient whose facts produced it (the reconciliation scope).
    pub patient_id: String,
    pub rule: String,
    pub kind: Kind,
    pub channel: Channel,
    pub recipient: Recipient,
    pub appointments: Vec<String>,
    pub document: Option<String>,
    pub task: Option<String>,
    pub auto_resend: bool,
    pub due_at: Timestamp,
    pub window_end: Option<Timestamp>,
    pub status: Status,
    pub reason: Option<Reason>,
    /// When the current status was decided (hand-off, suppression).
    pub decided_at: Option<Timestamp>,
    pub attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
    pub last_error: Option<String>,
    /// What was sent, rendered at hand-off (subject, text, html…), kept for audit.
    pub rendered: Option<Value>,
    pub provider_id: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl NotificationRow {
    /// A message to the patient due at `now` that nobody has claimed: the start of every row the
    /// engine queues, the planner's (`reconcile`) as well as task runs, manual resends and
    /// SMS replies. The caller sets what else it knows (recipient, appointments, document, task,
    /// due time, window).
    pub fn pending(
        practice_id: &str,
        key: String,
        patient_id: &str,
        rule: &str,
        kind: Kind,
        channel: Channel,
        now: Timestamp,
    ) -> NotificationRow {
        NotificationRow {
            practice_id: practice_id.to_string(),
            key,
            patient_id: patient_id.to_string(),
            rule: rule.to_string(),
            kind,
            channel,
            recipient: Recipient::Patient(patient_id.to_string()),
            appointments: Vec::new(),
            document: None,
            task: None,
            auto_resend: false,
            due_at: now,
            window_end: None,
            status: Status::Pending,
            reason: None,
            decided_at: None,
            attempts: 0,
            lease_owner: None,
            lease_until: None,
            last_error: None,
            rendered: None,
            provider_id: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Filters of the sent box (`GET /v1/notifications`). `cursor` is the `(due_at ms, key)` of the
/// last row of the previous page; rows come by `due_at`, then key.
#[derive(Clone, Debug, Default)]
pub struct NotificationFilter {
    pub status: Option<Status>,
    pub channel: Option<Channel>,
    pub kind: Option<Kind>,
    pub since: Option<Timestamp>,
    /// Rows due before this instant (the dashboard's "today", "tomorrow").
    pub until: Option<Timestamp>,
    pub patient_id: Option<String>,
    pub cursor: Option<(Timestamp, String)>,
    pub limit: i64,
    /// Latest due first (the web interface's sent box); `cursor` then continues backwards.
    pub newest_first: bool,
}

/// An entry of the to-verify box or of the notification centre.
#[derive(Clone, Debug, PartialEq)]
pub struct InboxRow {
    pub practice_id: String,
    pub id: String,
    pub inbox: String,
    pub document: Option<String>,
    pub patient_id: Option<String>,
    pub title: String,
    pub text: String,
    pub created_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
}

/// One event as received, for audit and idempotency.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    pub practice_id: String,
    pub seq: i64,
    pub at: Timestamp,
    pub received_at: Timestamp,
    pub event_type: String,
    pub body: Value,
}

/// A scheduled task definition (programmateur), stored as the JSON of SCENARIOS.md `[[tasks]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRow {
    pub practice_id: String,
    pub id: String,
    pub definition: Value,
    pub active: bool,
    pub created_at: Timestamp,
}

/// One run of a task for one occurrence (its local date); unique per (practice, task, occurrence),
/// which is what makes an occurrence run once across all nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRunRow {
    pub practice_id: String,
    pub task_id: String,
    pub occurrence: String,
    pub scheduled_for: Timestamp,
    pub started_at: Timestamp,
    pub summary: Value,
}

pub mod admin;
mod imp;
pub use imp::templates::TemplateRow;
pub use imp::users::{SessionRow, UserRow};
pub use imp::webhooks::{DeliveryStatus, WebhookDelivery, WebhookEndpoint};
pub use imp::{
    AppointmentAnswerRow, AppointmentLink, DeliveryReportRow, DocumentFile, DocumentLink,
    EncodedOutcome, LastSms, LogoRow, NewEvent, NotificationCost, Purged, ReceivedMessageRow,
    SmsOptOut, Store, Tx, WorkListener, received_message_id,
};
