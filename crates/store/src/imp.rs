//! The SQL behind [`Store`] and [`Tx`]. SIGNATURES ARE THE CONTRACT with the engine.
//!
//! Every query is written once, with `$N` placeholders that both backends accept, and binds
//! only the types `sqlx::Any` carries everywhere (see [`codec`]). The dialects differ in four
//! places only, each branching on [`Backend`]: how a write transaction starts, how `claim_due`
//! and `patient_for_update` lock rows, and which migration folder applies.

mod answers;
mod codec;
mod notify;
pub use notify::WorkListener;
mod costs;
mod documents;
mod logos;
mod reports;
mod retention;
mod routes;
pub(crate) mod templates;
mod two_way;
pub(crate) mod users;

pub use answers::{AppointmentAnswerRow, AppointmentLink};
pub use costs::NotificationCost;
pub use documents::{DocumentFile, DocumentLink};
pub use logos::LogoRow;
pub use reports::DeliveryReportRow;
pub use retention::Purged;
pub use two_way::{LastSms, ReceivedMessageRow, SmsOptOut, received_message_id};

use std::sync::Once;

use jiff::Timestamp;
use rappel_domain::facts::{
    Appointment, AppointmentStatus, Document, Motive, Patient, Practitioner,
};
use serde_json::{Map, Value};
use sqlx::Executor;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;

use self::codec::{Arg, Cols, SqlBuilder, bind_all, flag, like_escape, ms, opt_ms, to_json};
use crate::{
    Backend, EventRow, InboxRow, NotificationFilter, NotificationRow, PracticeRow, Result, Status,
    StoreError, TaskRow, TaskRunRow,
};

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: sqlx::AnyPool,
    backend: Backend,
    /// Kept for PostgreSQL's LISTEN connection, which `Any` cannot open.
    url: std::sync::Arc<str>,
    /// SQLite has one writer at a time. Its busy handler retries with sleeps, so under steady
    /// contention a waiting writer can starve past the busy timeout ("database is locked");
    /// queueing this process's writers on a fair async mutex first makes them take turns.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Write transactions this handle has begun (both backends): what proves that a request
    /// which should only read (a GET, a refused API key) never asked for the write turn.
    writes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// A write transaction (`BEGIN IMMEDIATE` on SQLite). Dropped without `commit`, it rolls back.
pub struct Tx {
    inner: sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    /// SQLite: this process's turn to write, released after the transaction (fields drop in
    /// order: the transaction first).
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// What this transaction's notification writes do to the per-practice summary, applied
    /// just before it commits (`due.rs`).
    due: due::DueChanges,
}

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

static INSTALL_DRIVERS: Once = Once::new();

/// SQLite's write transaction. `query_only` is a property of the connection, which a read
/// transaction set (and which stays set when it returns to the pool, also after a rollback), so
/// every write transaction clears it first; both statements go in one round trip.
const SQLITE_BEGIN_WRITE: &str = "PRAGMA query_only = OFF; BEGIN IMMEDIATE";
/// SQLite's read transaction: deferred, so it takes no lock until it reads (and then only a WAL
/// snapshot), and `query_only`, so that a write through it is an error.
const SQLITE_BEGIN_READ: &str = "BEGIN DEFERRED; PRAGMA query_only = ON";

/// The columns of `notifications`, in the order [`notification_args`] binds them.
macro_rules! notification_columns {
    () => {
        "practice_id, key, patient_id, rule, kind, channel, recipient, appointments, document, \
         task, auto_resend, due_at, window_end, status, reason, decided_at, attempts, \
         lease_owner, lease_until, last_error, rendered, provider_id, created_at, updated_at"
    };
}

/// The patient's SMS opt-out date (`sms_opt_outs`, issue 16), read with the patient's file:
/// every read of a patient the dispatcher, the dashboard and the tasks gate on carries it.
macro_rules! sms_opt_out_column {
    () => {
        "(SELECT o.opted_out_at FROM sms_opt_outs o \
          WHERE o.practice_id = patients.practice_id AND o.patient_id = patients.id) \
          AS sms_opt_out"
    };
}

/// A patient row read with `sms_opt_out_column!`.
fn patient_with_opt_out(row: &AnyRow) -> Result<Patient> {
    let c = Cols::new(row, "patients");
    let mut patient: Patient = c.json("data")?;
    patient.sms_opt_out = c.opt_ts("sms_opt_out")?;
    Ok(patient)
}

// After the macro, which it uses.
mod batch;
pub use batch::NewEvent;
mod due;

const PRACTICE_COLUMNS: &str = "id, name, preset, policy, timezone, settings, created_at";
const INBOX_COLUMNS: &str =
    "practice_id, id, inbox, document, patient_id, title, body, created_at, resolved_at";
const TASK_RUN_COLUMNS: &str =
    "practice_id, task_id, occurrence, scheduled_for, started_at, summary";

/// What `connect` made of the URL it was given.
struct Target {
    backend: Backend,
    url: String,
    in_memory: bool,
}

fn parse_url(url: &str) -> Result<Target> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target {
            backend: Backend::Postgres,
            url: url.to_string(),
            in_memory: false,
        });
    }
    if !url.starts_with("sqlite:") {
        return Err(StoreError::UnsupportedUrl(url.to_string()));
    }
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let url = if in_memory || url.contains("mode=") {
        url.to_string()
    } else {
        // With `Any` there are no `SqliteConnectOptions` to ask for the file to be created;
        // the URL's `mode=rwc` says the same thing.
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}mode=rwc")
    };
    Ok(Target {
        backend: Backend::Sqlite,
        url,
        in_memory,
    })
}

impl Store {
    /// `sqlite://PATH` (file created if missing; WAL, foreign keys, busy timeout),
    /// `sqlite::memory:` (one private in-memory database: used by `rappel simulate`),
    /// or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Store> {
        INSTALL_DRIVERS.call_once(sqlx::any::install_default_drivers);
        let target = parse_url(url)?;
        let mut options = AnyPoolOptions::new();
        if target.backend == Backend::Sqlite {
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // Per-connection settings: a writer waits up to 5 s for another one instead
                    // of failing with SQLITE_BUSY, and REFERENCES clauses are enforced.
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    // In WAL mode NORMAL is durable against a crash of the process (a commit is
                    // in the WAL before it returns); only a power loss can drop the last
                    // commits. FULL would fsync every commit and cap the queue at a few hundred
                    // transactions a second.
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    // A multi-row statement (the batch writes of ingestion and dispatch) keeps
                    // a statement journal so that a failing row undoes the whole statement; in
                    // memory rather than in a temporary file, it costs no writes. (The page
                    // cache stays at SQLite's 2 MB: it is per connection, and ten connections
                    // with a larger one would put the memory target at risk.)
                    conn.execute("PRAGMA temp_store = MEMORY").await?;
                    Ok(())
                })
            });
            if target.in_memory {
                // Under `Any`, every new connection parses the URL again and so opens a new,
                // empty in-memory database: the pool must hold exactly one connection, forever.
                options = options
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
            }
        }
        let pool = options.connect(&target.url).await?;
        if target.backend == Backend::Sqlite && !target.in_memory {
            // WAL is a property of the database file, so setting it once is enough; it lets
            // readers proceed while one writer holds the lock.
            sqlx::query("PRAGMA journal_mode = WAL")
                .fetch_optional(&pool)
                .await?;
        }
        Ok(Store {
            pool,
            backend: target.backend,
            url: std::sync::Arc::from(url),
            writer: std::sync::Arc::default(),
            writes: std::sync::Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the backend's migrations (idempotent; safe with several processes starting at once).
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            // sqlx's migrator takes a PostgreSQL advisory lock around the whole run, so processes
            // starting together apply each migration once.
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
            // On SQLite its lock does nothing, and two processes opening a new file at once
            // would both create the tables. Running the migrator inside an immediate
            // transaction makes the second one wait for the first and then find nothing to do
            // (the migrator's own transactions become savepoints). `run_direct` is what `run`
            // calls once it holds a connection; `run(&mut *tx)` itself does not compile inside a
            // future that must be `Send` ("implementation of `Acquire` is not general enough").
            Backend::Sqlite => {
                self.count_write();
                let mut tx = self.pool.begin_with(SQLITE_BEGIN_WRITE).await?;
                SQLITE_MIGRATIONS.run_direct(&mut *tx).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// How many write transactions this handle (and its clones) has begun since it connected.
    pub fn write_transactions(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn count_write(&self) {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub async fn begin(&self) -> Result<Tx> {
        self.count_write();
        let inner = match self.backend {
            // A deferred SQLite transaction that reads and then writes fails with SQLITE_BUSY
            // when another writer got there first; taking the write lock up front makes it wait
            // (busy_timeout) instead.
            Backend::Sqlite => {
                // Bounded, so that a task that (wrongly) opens a second transaction while holding
                // one gets an error instead of waiting forever.
                let turn = tokio::time::timeout(
                    std::time::Duration::from_secs(30),
                    self.writer.clone().lock_owned(),
                )
                .await
                .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))?;
                let inner = self.pool.begin_with(SQLITE_BEGIN_WRITE).await?;
                return Ok(Tx {
                    inner,
                    backend: self.backend,
                    _turn: Some(turn),
                    due: Default::default(),
                });
            }
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Tx {
            inner,
            backend: self.backend,
            _turn: None,
            due: Default::default(),
        })
    }

    /// A transaction that only reads: a consistent snapshot that does not take this process's
    /// SQLite write turn, so it runs beside a writer (WAL lets readers proceed), and on
    /// PostgreSQL a `READ ONLY` transaction, which refuses any write with an error.
    ///
    /// Nothing may be written through it: on SQLite a write would have to upgrade the snapshot
    /// to the write lock, and fails with `SQLITE_BUSY` when another writer committed meanwhile.
    /// SQLite refuses it at once too ("attempt to write a readonly database"): the connection is
    /// `query_only` for the transaction, so a write slipped into a read path fails in every test
    /// rather than only under contention.
    pub async fn begin_read(&self) -> Result<Tx> {
        let inner = match self.backend {
            Backend::Sqlite => self.pool.begin_with(SQLITE_BEGIN_READ).await?,
            Backend::Postgres => self.pool.begin_with("BEGIN READ ONLY").await?,
        };
        Ok(Tx {
            inner,
            backend: self.backend,
            _turn: None,
            due: Default::default(),
        })
    }

    pub async fn close(&self) {
        self.pool.close().await
    }
}

impl Tx {
    pub async fn commit(mut self) -> Result<()> {
        self.flush_due().await?;
        self.inner.commit().await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    // ---- practices and keys ----
    pub async fn insert_practice(&mut self, practice: &PracticeRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO practices (id, name, preset, policy, timezone, settings, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&practice.id)
        .bind(&practice.name)
        .bind(&practice.preset)
        .bind(practice.policy.clone())
        .bind(&practice.timezone)
        .bind(to_json("practices", &practice.settings)?)
        .bind(ms(practice.created_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    pub async fn practice(&mut self, id: &str) -> Result<Option<PracticeRow>> {
        let sql = format!("SELECT {PRACTICE_COLUMNS} FROM practices WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&mut *self.inner)
            .await?;
        row.as_ref().map(practice_from_row).transpose()
    }

    pub async fn practices(&mut self) -> Result<Vec<PracticeRow>> {
        let sql = format!("SELECT {PRACTICE_COLUMNS} FROM practices ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&mut *self.inner).await?;
        rows.iter().map(practice_from_row).collect()
    }

    pub async fn update_practice_settings(
        &mut self,
        id: &str,
        settings: &Map<String, Value>,
    ) -> Result<()> {
        sqlx::query("UPDATE practices SET settings = $2 WHERE id = $1")
            .bind(id)
            .bind(to_json("practices", settings)?)
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }

    /// Stores an API key as (practice, key id, SHA-256 hash of the secret).
    pub async fn insert_api_key(
        &mut self,
        practice_id: &str,
        key_id: &str,
        secret_hash: &str,
        created_at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (practice_id, key_id, secret_hash, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(practice_id)
        .bind(key_id)
        .bind(secret_hash)
        .bind(ms(created_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// True when that key id exists for that practice with that hash.
    pub async fn api_key_matches(
        &mut self,
        practice_id: &str,
        key_id: &str,
        secret_hash: &str,
    ) -> Result<bool> {
        let row =
            sqlx::query("SELECT secret_hash FROM api_keys WHERE practice_id = $1 AND key_id = $2")
                .bind(practice_id)
                .bind(key_id)
                .fetch_optional(&mut *self.inner)
                .await?;
        let Some(row) = row else { return Ok(false) };
        let stored = Cols::new(&row, "api_keys").text("secret_hash")?;
        Ok(constant_time_eq(stored.as_bytes(), secret_hash.as_bytes()))
    }

    // ---- practitioners, motives, patients (create or replace by the practice's own id) ----
    pub async fn upsert_practitioner(&mut self, practice_id: &str, p: &Practitioner) -> Result<()> {
        sqlx::query(
            "INSERT INTO practitioners (practice_id, id, data) VALUES ($1, $2, $3) \
             ON CONFLICT (practice_id, id) DO UPDATE SET data = excluded.data",
        )
        .bind(practice_id)
        .bind(&p.id)
        .bind(to_json("practitioners", p)?)
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    pub async fn practitioner(
        &mut self,
        practice_id: &str,
        id: &str,
    ) -> Result<Option<Practitioner>> {
        let row = sqlx::query("SELECT data FROM practitioners WHERE practice_id = $1 AND id = $2")
            .bind(practice_id)
            .bind(id)
            .fetch_optional(&mut *self.inner)
            .await?;
        row.map(|r| Cols::new(&r, "practitioners").json("data"))
            .transpose()
    }

    pub async fn practitioners(&mut self, practice_id: &str) -> Result<Vec<Practitioner>> {
        let rows = sqlx::query("SELECT data FROM practitioners WHERE practice_id = $1 ORDER BY id")
            .bind(practice_id)
            .fetch_all(&mut *self.inner)
            .await?;
        rows.iter()
            .map(|r| Cols::new(r, "practitioners").json("data"))
            .collect()
    }

    pub async fn upsert_motive(&mut self, practice_id: &str, m: &Motive) -> Result<()> {
        sqlx::query(
            "INSERT INTO motives (practice_id, id, data) VALUES ($1, $2, $3) \
             ON CONFLICT (practice_id, id) DO UPDATE SET data = excluded.data",
        )
        .bind(practice_id)
        .bind(&m.id)
        .bind(to_json("motives", m)?)
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    pub async fn motive(&mut self, practice_id: &str, id: &str) -> Result<Option<Motive>> {
        let row = sqlx::query("SELECT data FROM motives WHERE practice_id = $1 AND id = $2")
            .bind(practice_id)
            .bind(id)
            .fetch_optional(&mut *self.inner)
            .await?;
        row.map(|r| Cols::new(&r, "motives").json("data"))
            .transpose()
    }

    pub async fn motives(&mut self, practice_id: &str) -> Result<Vec<Motive>> {
        let rows = sqlx::query("SELECT data FROM motives WHERE practice_id = $1 ORDER BY id")
            .bind(practice_id)
            .fetch_all(&mut *self.inner)
            .await?;
        rows.iter()
            .map(|r| Cols::new(r, "motives").json("data"))
            .collect()
    }

    pub async fn upsert_patient(
        &mut self,
        practice_id: &str,
        p: &Patient,
        updated_at: Timestamp,
    ) -> Result<()> {
        // An erased patient stays erased: a later event about them (a stale sync from the
        // practice software) must not bring their personal data back.
        sqlx::query(
            "INSERT INTO patients (practice_id, id, data, search, erased, updated_at) \
             VALUES ($1, $2, $3, $4, 0, $5) \
             ON CONFLICT (practice_id, id) DO UPDATE SET data = excluded.data, \
               search = excluded.search, updated_at = excluded.updated_at \
             WHERE patients.erased = 0",
        )
        .bind(practice_id)
        .bind(&p.id)
        .bind(to_json("patients", p)?)
        .bind(search_text(p))
        .bind(ms(updated_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// `None` also for an erased patient.
    pub async fn patient(&mut self, practice_id: &str, id: &str) -> Result<Option<Patient>> {
        let row = sqlx::query(concat!(
            "SELECT data, ",
            sms_opt_out_column!(),
            " FROM patients WHERE practice_id = $1 AND id = $2 AND erased = 0",
        ))
        .bind(practice_id)
        .bind(id)
        .fetch_optional(&mut *self.inner)
        .await?;
        row.map(|r| patient_with_opt_out(&r)).transpose()
    }

    /// The patient, locked until the transaction ends, for a read-modify-write of the row (a
    /// replacement that keeps the push subscriptions, a subscription added): on PostgreSQL
    /// `FOR UPDATE`, so a concurrent writer of the same patient waits instead of being lost;
    /// SQLite's write transactions already take turns. `None` also for an erased patient.
    pub async fn patient_for_update(
        &mut self,
        practice_id: &str,
        id: &str,
    ) -> Result<Option<Patient>> {
        let sql = match self.backend {
            Backend::Sqlite => concat!(
                "SELECT data, ",
                sms_opt_out_column!(),
                " FROM patients WHERE practice_id = $1 AND id = $2 AND erased = 0"
            ),
            Backend::Postgres => concat!(
                "SELECT data, ",
                sms_opt_out_column!(),
                " FROM patients WHERE practice_id = $1 AND id = $2 AND erased = 0 FOR UPDATE"
            ),
        };
        let row = sqlx::query(sql)
            .bind(practice_id)
            .bind(id)
            .fetch_optional(&mut *self.inner)
            .await?;
        row.map(|r| patient_with_opt_out(&r)).transpose()
    }

    /// Patients whose name, email or mobile contains `query` (case-insensitive), at most `limit`.
    pub async fn search_patients(
        &mut self,
        practice_id: &str,
        query: &str,
        limit: i64,
    ) -> Result<Vec<Patient>> {
        // Both sides are lower-cased in Rust rather than with SQL's LOWER(), whose notion of
        // case differs between the backends (SQLite folds ASCII only).
        let pattern = format!("%{}%", like_escape(&query.to_lowercase()));
        let rows = sqlx::query(
            "SELECT data FROM patients \
             WHERE practice_id = $1 AND erased = 0 AND search LIKE $2 ESCAPE '\\' \
             ORDER BY id LIMIT $3",
        )
        .bind(practice_id)
        .bind(pattern)
        .bind(limit.max(0))
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter()
            .map(|r| Cols::new(r, "patients").json("data"))
            .collect()
    }

    /// GDPR erasure: replaces the patient's personal data with nothing (keeps the id, marks it
    /// erased), and removes their documents' rows. Returns false if unknown.
    pub async fn erase_patient(
        &mut self,
        practice_id: &str,
        id: &str,
        at: Timestamp,
    ) -> Result<bool> {
        let blank = Patient {
            id: id.to_string(),
            ..Patient::default()
        };
        let updated = sqlx::query(
            "UPDATE patients SET data = $3, search = '', erased = 1, \
               erased_at = COALESCE(erased_at, $4), updated_at = $4 \
             WHERE practice_id = $1 AND id = $2",
        )
        .bind(practice_id)
        .bind(id)
        .bind(to_json("patients", &blank)?)
        .bind(ms(at))
        .execute(&mut *self.inner)
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM documents WHERE practice_id = $1 AND patient_id = $2")
            .bind(practice_id)
            .bind(id)
            .execute(&mut *self.inner)
            .await?;
        // What was sent to them (names, dates, links) is personal data too: the audit keeps that
        // a message went, not what it said.
        sqlx::query(
            "UPDATE notifications SET rendered = NULL              WHERE practice_id = $1 AND patient_id = $2 AND rendered IS NOT NULL",
        )
        .bind(practice_id)
        .bind(id)
        .execute(&mut *self.inner)
        .await?;
        // The boxes' texts name the patient; the entries stay (the practice's to-do), nameless.
        sqlx::query("UPDATE inbox SET body = $3 WHERE practice_id = $1 AND patient_id = $2")
            .bind(practice_id)
            .bind(id)
            .bind("Les données de ce patient ont été effacées à sa demande (RGPD).")
            .execute(&mut *self.inner)
            .await?;
        self.delete_patient_delivery_reports(practice_id, id)
            .await?;
        self.delete_patient_two_way(practice_id, id).await?;
        self.delete_patient_answers(practice_id, id).await?;
        self.redact_patient_events(practice_id, id).await?;
        Ok(true)
    }

    /// Rewrites the logged events that carried the patient's personal data (`patient.updated`:
    /// names, contacts, birth date, address; `document.sent`: the document's title) down to
    /// their identities, marked `"erased": true`. The log keeps its sequence numbers, so what
    /// happened when stays auditable.
    async fn redact_patient_events(&mut self, practice_id: &str, id: &str) -> Result<()> {
        // The quoted id narrows the scan in SQL; the JSON is checked field by field below.
        let quoted = to_json("events", id)?;
        let rows = sqlx::query(
            "SELECT seq, event_type, body FROM events \
             WHERE practice_id = $1 AND event_type IN ('patient.updated', 'document.sent') \
               AND body LIKE $2 ESCAPE '\\'",
        )
        .bind(practice_id)
        .bind(format!("%{}%", like_escape(&quoted)))
        .fetch_all(&mut *self.inner)
        .await?;
        for row in &rows {
            let c = Cols::new(row, "events");
            let seq = c.int("seq")?;
            let Value::Object(body) = c.json::<Value>("body")? else {
                continue;
            };
            let about = match c.text("event_type")?.as_str() {
                "patient.updated" => body.get("id"),
                _ => body.get("patient"),
            };
            if about.and_then(Value::as_str) != Some(id) {
                continue;
            }
            let mut kept: Map<String, Value> = body
                .into_iter()
                .filter(|(k, _)| matches!(k.as_str(), "at" | "type" | "id" | "patient"))
                .collect();
            kept.insert("erased".into(), Value::Bool(true));
            sqlx::query("UPDATE events SET body = $3 WHERE practice_id = $1 AND seq = $2")
                .bind(practice_id)
                .bind(seq)
                .bind(to_json("events", &kept)?)
                .execute(&mut *self.inner)
                .await?;
        }
        Ok(())
    }

    pub async fn is_erased(&mut self, practice_id: &str, id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT erased FROM patients WHERE practice_id = $1 AND id = $2")
            .bind(practice_id)
            .bind(id)
            .fetch_optional(&mut *self.inner)
            .await?;
        match row {
            None => Ok(false),
            Some(row) => Cols::new(&row, "patients").flag("erased"),
        }
    }

    // ---- appointments ----
    pub async fn upsert_appointment(
        &mut self,
        practice_id: &str,
        a: &Appointment,
        updated_at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO appointments \
               (practice_id, id, patient_id, start_ms, status, status_at_ms, data, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (practice_id, id) DO UPDATE SET patient_id = excluded.patient_id, \
               start_ms = excluded.start_ms, status = excluded.status, \
               status_at_ms = excluded.status_at_ms, data = excluded.data, \
               updated_at = excluded.updated_at",
        )
        .bind(practice_id)
        .bind(&a.id)
        .bind(&a.patient)
        .bind(ms(a.start))
        .bind(a.status.name())
        .bind(opt_ms(changed_at(a)))
        .bind(to_json("appointments", a)?)
        .bind(ms(updated_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    pub async fn appointment(
        &mut self,
        practice_id: &str,
        id: &str,
    ) -> Result<Option<Appointment>> {
        let row = sqlx::query("SELECT data FROM appointments WHERE practice_id = $1 AND id = $2")
            .bind(practice_id)
            .bind(id)
            .fetch_optional(&mut *self.inner)
            .await?;
        row.map(|r| Cols::new(&r, "appointments").json("data"))
            .transpose()
    }

    /// The patient's appointments starting at or after `since`, plus any whose status changed at
    /// or after `since` (a late cancellation), ordered by start.
    pub async fn patient_appointments(
        &mut self,
        practice_id: &str,
        patient_id: &str,
        since: Timestamp,
    ) -> Result<Vec<Appointment>> {
        // `status_at_ms` also counts a move, so an appointment moved into the past is returned
        // too and its pending messages can be reconciled.
        let rows = sqlx::query(
            "SELECT data FROM appointments \
             WHERE practice_id = $1 AND patient_id = $2 AND (start_ms >= $3 OR status_at_ms >= $3) \
             ORDER BY start_ms, id",
        )
        .bind(practice_id)
        .bind(patient_id)
        .bind(ms(since))
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter()
            .map(|r| Cols::new(r, "appointments").json("data"))
            .collect()
    }

    /// Every appointment of the patient (history: no-show counts, recall, timeline), by start.
    pub async fn patient_history(
        &mut self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<Vec<Appointment>> {
        let rows = sqlx::query(
            "SELECT data FROM appointments WHERE practice_id = $1 AND patient_id = $2 \
             ORDER BY start_ms, id",
        )
        .bind(practice_id)
        .bind(patient_id)
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter()
            .map(|r| Cols::new(r, "appointments").json("data"))
            .collect()
    }

    /// Appointments of the practice starting in [from, to), by start.
    pub async fn appointments_between(
        &mut self,
        practice_id: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Appointment>> {
        let rows = sqlx::query(
            "SELECT data FROM appointments \
             WHERE practice_id = $1 AND start_ms >= $2 AND start_ms < $3 ORDER BY start_ms, id",
        )
        .bind(practice_id)
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter()
            .map(|r| Cols::new(r, "appointments").json("data"))
            .collect()
    }

    /// Ids of patients with an appointment starting at or after `since` or a document sent at or
    /// after `documents_since`: whom a settings change must re-plan.
    pub async fn patients_with_open_work(
        &mut self,
        practice_id: &str,
        since: Timestamp,
        documents_since: Timestamp,
    ) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT patient_id FROM appointments WHERE practice_id = $1 AND start_ms >= $2 \
             UNION \
             SELECT patient_id FROM documents WHERE practice_id = $1 AND sent_at_ms >= $3 \
             ORDER BY patient_id",
        )
        .bind(practice_id)
        .bind(ms(since))
        .bind(ms(documents_since))
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter()
            .map(|r| Cols::new(r, "appointments").text("patient_id"))
            .collect()
    }

    /// Every non-erased patient of the practice (tasks: birthdays, recalls), by id.
    pub async fn all_patients(&mut self, practice_id: &str) -> Result<Vec<Patient>> {
        let rows = sqlx::query(concat!(
            "SELECT data, ",
            sms_opt_out_column!(),
            " FROM patients WHERE practice_id = $1 AND erased = 0 ORDER BY id",
        ))
        .bind(practice_id)
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter().map(patient_with_opt_out).collect()
    }

    // ---- documents ----
    pub async fn upsert_document(&mut self, practice_id: &str, d: &Document) -> Result<()> {
        sqlx::query(
            "INSERT INTO documents (practice_id, id, patient_id, sent_at_ms, data) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (practice_id, id) DO UPDATE SET patient_id = excluded.patient_id, \
               sent_at_ms = excluded.sent_at_ms, data = excluded.data",
        )
        .bind(practice_id)
        .bind(&d.id)
        .bind(&d.patient)
        .bind(ms(d.sent_at))
        .bind(to_json("documents", d)?)
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    pub async fn document(&mut self, practice_id: &str, id: &str) -> Result<Option<Document>> {
        let row = sqlx::query("SELECT data FROM documents WHERE practice_id = $1 AND id = $2")
            .bind(practice_id)
            .bind(id)
            .fetch_optional(&mut *self.inner)
            .await?;
        row.map(|r| Cols::new(&r, "documents").json("data"))
            .transpose()
    }

    pub async fn patient_documents(
        &mut self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<Vec<Document>> {
        let rows = sqlx::query(
            "SELECT data FROM documents WHERE practice_id = $1 AND patient_id = $2 \
             ORDER BY sent_at_ms, id",
        )
        .bind(practice_id)
        .bind(patient_id)
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter()
            .map(|r| Cols::new(r, "documents").json("data"))
            .collect()
    }

    // ---- events and idempotency ----
    /// Appends to the event log; returns its sequence number.
    pub async fn insert_event(
        &mut self,
        practice_id: &str,
        at: Timestamp,
        received_at: Timestamp,
        event_type: &str,
        body: &Value,
    ) -> Result<i64> {
        // The counter lives on the practice row: the increment locks that row until commit, so
        // concurrent transactions of one practice get distinct, gap-free numbers on both
        // backends (a `MAX(seq) + 1` would hand the same number to two PostgreSQL writers).
        let row = sqlx::query(
            "UPDATE practices SET last_event_seq = last_event_seq + 1 WHERE id = $1 \
             RETURNING last_event_seq",
        )
        .bind(practice_id)
        .fetch_optional(&mut *self.inner)
        .await?
        .ok_or(StoreError::Database(sqlx::Error::RowNotFound))?;
        let seq = Cols::new(&row, "practices").int("last_event_seq")?;
        sqlx::query(
            "INSERT INTO events (practice_id, seq, at, received_at, event_type, body) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(practice_id)
        .bind(seq)
        .bind(ms(at))
        .bind(ms(received_at))
        .bind(event_type)
        .bind(to_json("events", body)?)
        .execute(&mut *self.inner)
        .await?;
        Ok(seq)
    }

    pub async fn events(
        &mut self,
        practice_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<EventRow>> {
        let rows = sqlx::query(
            "SELECT practice_id, seq, at, received_at, event_type, body FROM events \
             WHERE practice_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(practice_id)
        .bind(after_seq)
        .bind(limit.max(0))
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter()
            .map(|row| {
                let c = Cols::new(row, "events");
                Ok(EventRow {
                    practice_id: c.text("practice_id")?,
                    seq: c.int("seq")?,
                    at: c.ts("at")?,
                    received_at: c.ts("received_at")?,
                    event_type: c.text("event_type")?,
                    body: c.json("body")?,
                })
            })
            .collect()
    }

    /// The stored answer for an `Idempotency-Key`: (request hash, status code, response body).
    pub async fn idempotency(
        &mut self,
        practice_id: &str,
        key: &str,
    ) -> Result<Option<(String, i64, Value)>> {
        let row = sqlx::query(
            "SELECT request_hash, status, response FROM idempotency_keys \
             WHERE practice_id = $1 AND key = $2",
        )
        .bind(practice_id)
        .bind(key)
        .fetch_optional(&mut *self.inner)
        .await?;
        row.map(|row| {
            let c = Cols::new(&row, "idempotency_keys");
            Ok((
                c.text("request_hash")?,
                c.int("status")?,
                c.json("response")?,
            ))
        })
        .transpose()
    }

    pub async fn save_idempotency(
        &mut self,
        practice_id: &str,
        key: &str,
        request_hash: &str,
        status: i64,
        response: &Value,
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO idempotency_keys \
               (practice_id, key, request_hash, status, response, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (practice_id, key) DO UPDATE SET request_hash = excluded.request_hash, \
               status = excluded.status, response = excluded.response, \
               created_at = excluded.created_at",
        )
        .bind(practice_id)
        .bind(key)
        .bind(request_hash)
        .bind(status)
        .bind(to_json("idempotency_keys", response)?)
        .bind(ms(at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    // ---- notifications ----
    /// Every notification of the patient's scope (reconciliation input), by key.
    pub async fn patient_notifications(
        &mut self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<Vec<NotificationRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            notification_columns!(),
            " FROM notifications WHERE practice_id = $1 AND patient_id = $2 ORDER BY key"
        ))
        .bind(practice_id)
        .bind(patient_id)
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter().map(notification_from_row).collect()
    }

    pub async fn notification(
        &mut self,
        practice_id: &str,
        key: &str,
    ) -> Result<Option<NotificationRow>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            notification_columns!(),
            " FROM notifications WHERE practice_id = $1 AND key = $2"
        ))
        .bind(practice_id)
        .bind(key)
        .fetch_optional(&mut *self.inner)
        .await?;
        row.as_ref().map(notification_from_row).transpose()
    }

    /// The notification a provider knows as `provider_id` (a delivery report names nothing else),
    /// in any practice. Provider ids are unique per provider account; should two rows share one,
    /// the first by (practice, key) is answered, so the answer is at least deterministic.
    pub async fn notification_by_provider_id(
        &mut self,
        provider_id: &str,
    ) -> Result<Option<NotificationRow>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            notification_columns!(),
            " FROM notifications WHERE provider_id = $1 ORDER BY practice_id, key LIMIT 1"
        ))
        .bind(provider_id)
        .fetch_optional(&mut *self.inner)
        .await?;
        row.as_ref().map(notification_from_row).transpose()
    }

    pub async fn insert_notification(&mut self, n: &NotificationRow) -> Result<()> {
        let query = sqlx::query(concat!(
            "INSERT INTO notifications (",
            notification_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19, $20, $21, $22, $23, $24)"
        ));
        bind_all(query, notification_args(n)?)
            .execute(&mut *self.inner)
            .await?;
        self.note_due(std::slice::from_ref(n));
        Ok(())
    }

    /// Overwrites every mutable column of the row with that (practice, key).
    pub async fn update_notification(&mut self, n: &NotificationRow) -> Result<()> {
        // Same argument order as the insert, minus `created_at` ($23), which never changes.
        let mut args = notification_args(n)?;
        args.remove(22);
        let query = sqlx::query(
            "UPDATE notifications SET patient_id = $3, rule = $4, kind = $5, channel = $6, \
               recipient = $7, appointments = $8, document = $9, task = $10, \
               auto_resend = $11, due_at = $12, window_end = $13, status = $14, reason = $15, \
               decided_at = $16, attempts = $17, lease_owner = $18, lease_until = $19, \
               last_error = $20, rendered = $21, provider_id = $22, updated_at = $23 \
             WHERE practice_id = $1 AND key = $2",
        );
        let done = bind_all(query, args).execute(&mut *self.inner).await?;
        if done.rows_affected() == 0 {
            tracing::warn!(practice = %n.practice_id, key = %n.key, "update of an unknown notification");
        }
        self.note_due(std::slice::from_ref(n));
        Ok(())
    }

    pub async fn list_notifications(
        &mut self,
        practice_id: &str,
        filter: &NotificationFilter,
    ) -> Result<Vec<NotificationRow>> {
        let mut sql = SqlBuilder::new(concat!(
            "SELECT ",
            notification_columns!(),
            " FROM notifications"
        ));
        let p = sql.arg(Arg::Text(practice_id.to_string()));
        sql.push(&format!(" WHERE practice_id = {p}"));
        if let Some(status) = filter.status {
            let p = sql.arg(Arg::Text(status.as_str().to_string()));
            sql.push(&format!(" AND status = {p}"));
        }
        if let Some(channel) = filter.channel {
            let p = sql.arg(Arg::Text(channel.as_str().to_string()));
            sql.push(&format!(" AND channel = {p}"));
        }
        if let Some(kind) = filter.kind {
            let p = sql.arg(Arg::Text(kind.as_str().to_string()));
            sql.push(&format!(" AND kind = {p}"));
        }
        if let Some(since) = filter.since {
            let p = sql.arg(Arg::Int(ms(since)));
            sql.push(&format!(" AND due_at >= {p}"));
        }
        if let Some(until) = filter.until {
            let p = sql.arg(Arg::Int(ms(until)));
            sql.push(&format!(" AND due_at < {p}"));
        }
        if let Some(patient) = &filter.patient_id {
            let p = sql.arg(Arg::Text(patient.clone()));
            sql.push(&format!(" AND patient_id = {p}"));
        }
        if let Some((due_at, key)) = &filter.cursor {
            let d = sql.arg(Arg::Int(ms(*due_at)));
            let k = sql.arg(Arg::Text(key.clone()));
            let after = if filter.newest_first { "<" } else { ">" };
            sql.push(&format!(
                " AND (due_at {after} {d} OR (due_at = {d} AND key {after} {k}))"
            ));
        }
        let l = sql.arg(Arg::Int(filter.limit.max(0)));
        if filter.newest_first {
            sql.push(&format!(" ORDER BY due_at DESC, key DESC LIMIT {l}"));
        } else {
            sql.push(&format!(" ORDER BY due_at, key LIMIT {l}"));
        }
        let rows = bind_all(sqlx::query(&sql.text), sql.args)
            .fetch_all(&mut *self.inner)
            .await?;
        rows.iter().map(notification_from_row).collect()
    }

    /// Rows whose `appointments` contain this appointment id, by due_at.
    pub async fn appointment_notifications(
        &mut self,
        practice_id: &str,
        appointment_id: &str,
    ) -> Result<Vec<NotificationRow>> {
        // `appointments` is a JSON array of strings: look for the id as a quoted JSON string,
        // then check exactly (an id that is a suffix of another's JSON text must not match).
        let quoted = to_json("notifications", appointment_id)?;
        let pattern = format!("%{}%", like_escape(&quoted));
        let rows = sqlx::query(concat!(
            "SELECT ",
            notification_columns!(),
            " FROM notifications WHERE practice_id = $1 AND appointments LIKE $2 ESCAPE '\\' \
             ORDER BY due_at, key"
        ))
        .bind(practice_id)
        .bind(pattern)
        .fetch_all(&mut *self.inner)
        .await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in &rows {
            let n = notification_from_row(row)?;
            if n.appointments.iter().any(|a| a == appointment_id) {
                found.push(n);
            }
        }
        Ok(found)
    }

    pub async fn document_notifications(
        &mut self,
        practice_id: &str,
        document_id: &str,
    ) -> Result<Vec<NotificationRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            notification_columns!(),
            " FROM notifications WHERE practice_id = $1 AND document = $2 ORDER BY due_at, key"
        ))
        .bind(practice_id)
        .bind(document_id)
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter().map(notification_from_row).collect()
    }

    /// Count of rows per (status, channel) for one practice, or all practices when `None`.
    pub async fn notification_counts(
        &mut self,
        practice_id: Option<&str>,
    ) -> Result<Vec<(String, String, i64)>> {
        let rows = match practice_id {
            Some(practice_id) => {
                sqlx::query(
                    "SELECT status, channel, COUNT(*) AS n FROM notifications \
                     WHERE practice_id = $1 GROUP BY status, channel ORDER BY status, channel",
                )
                .bind(practice_id)
                .fetch_all(&mut *self.inner)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT status, channel, COUNT(*) AS n FROM notifications \
                     GROUP BY status, channel ORDER BY status, channel",
                )
                .fetch_all(&mut *self.inner)
                .await?
            }
        };
        rows.iter()
            .map(|row| {
                let c = Cols::new(row, "notifications");
                Ok((c.text("status")?, c.text("channel")?, c.int("n")?))
            })
            .collect()
    }

    // ---- SMS quota (atomic: concurrent workers never exceed the limit) ----
    /// Counts one SMS of `segments` segments in `month` (`YYYY-MM`, practice time) if fewer than
    /// `limit` messages were counted so far (or `limit` is `None`); returns whether it was counted.
    pub async fn try_consume_sms(
        &mut self,
        practice_id: &str,
        month: &str,
        limit: Option<i64>,
        segments: i64,
    ) -> Result<bool> {
        sqlx::query(
            "INSERT INTO sms_usage (practice_id, month, messages, segments) VALUES ($1, $2, 0, 0) \
             ON CONFLICT (practice_id, month) DO NOTHING",
        )
        .bind(practice_id)
        .bind(month)
        .execute(&mut *self.inner)
        .await?;
        // A single conditional UPDATE: PostgreSQL re-checks the condition on the latest row
        // version after waiting for a concurrent writer, and SQLite has one writer at a time, so
        // the check and the increment cannot be split by another worker. The limit is on billed
        // SMS (segments), what the practice pays (SPEC.md decision 9): a message that would pass
        // it is refused whole.
        let done = sqlx::query(
            "UPDATE sms_usage SET messages = messages + 1, segments = segments + $4 \
             WHERE practice_id = $1 AND month = $2 AND ($3 IS NULL OR segments + $4 <= $3)",
        )
        .bind(practice_id)
        .bind(month)
        .bind(limit)
        .bind(segments)
        .execute(&mut *self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// (messages, segments) counted in `month`.
    pub async fn sms_usage(&mut self, practice_id: &str, month: &str) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT messages, segments FROM sms_usage WHERE practice_id = $1 AND month = $2",
        )
        .bind(practice_id)
        .bind(month)
        .fetch_optional(&mut *self.inner)
        .await?;
        match row {
            None => Ok((0, 0)),
            Some(row) => {
                let c = Cols::new(&row, "sms_usage");
                Ok((c.int("messages")?, c.int("segments")?))
            }
        }
    }

    // ---- inbox ----
    /// Inserts unless an entry with that id exists; returns whether it was inserted.
    pub async fn insert_inbox(&mut self, entry: &InboxRow) -> Result<bool> {
        let sql = format!(
            "INSERT INTO inbox ({INBOX_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (practice_id, id) DO NOTHING"
        );
        let done = sqlx::query(&sql)
            .bind(&entry.practice_id)
            .bind(&entry.id)
            .bind(&entry.inbox)
            .bind(entry.document.clone())
            .bind(entry.patient_id.clone())
            .bind(&entry.title)
            .bind(&entry.text)
            .bind(ms(entry.created_at))
            .bind(opt_ms(entry.resolved_at))
            .execute(&mut *self.inner)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Entries of the practice (of one box when `inbox` is set), newest first.
    pub async fn inbox(
        &mut self,
        practice_id: &str,
        inbox: Option<&str>,
        include_resolved: bool,
    ) -> Result<Vec<InboxRow>> {
        let sql = format!(
            "SELECT {INBOX_COLUMNS} FROM inbox \
             WHERE practice_id = $1 AND ($2 IS NULL OR inbox = $2) \
               AND ($3 = 1 OR resolved_at IS NULL) \
             ORDER BY created_at DESC, id DESC"
        );
        let rows = sqlx::query(&sql)
            .bind(practice_id)
            .bind(inbox.map(str::to_string))
            .bind(flag(include_resolved))
            .fetch_all(&mut *self.inner)
            .await?;
        rows.iter()
            .map(|row| {
                let c = Cols::new(row, "inbox");
                Ok(InboxRow {
                    practice_id: c.text("practice_id")?,
                    id: c.text("id")?,
                    inbox: c.text("inbox")?,
                    document: c.opt_text("document")?,
                    patient_id: c.opt_text("patient_id")?,
                    title: c.text("title")?,
                    text: c.text("body")?,
                    created_at: c.ts("created_at")?,
                    resolved_at: c.opt_ts("resolved_at")?,
                })
            })
            .collect()
    }

    /// Returns false when unknown (or already resolved).
    pub async fn resolve_inbox(
        &mut self,
        practice_id: &str,
        id: &str,
        at: Timestamp,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE inbox SET resolved_at = $3 \
             WHERE practice_id = $1 AND id = $2 AND resolved_at IS NULL",
        )
        .bind(practice_id)
        .bind(id)
        .bind(ms(at))
        .execute(&mut *self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- tasks ----
    pub async fn upsert_task(&mut self, task: &TaskRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO tasks (practice_id, id, definition, active, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (practice_id, id) DO UPDATE SET definition = excluded.definition, \
               active = excluded.active",
        )
        .bind(&task.practice_id)
        .bind(&task.id)
        .bind(to_json("tasks", &task.definition)?)
        .bind(flag(task.active))
        .bind(ms(task.created_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    pub async fn task(&mut self, practice_id: &str, id: &str) -> Result<Option<TaskRow>> {
        let row = sqlx::query(
            "SELECT practice_id, id, definition, active, created_at FROM tasks \
             WHERE practice_id = $1 AND id = $2",
        )
        .bind(practice_id)
        .bind(id)
        .fetch_optional(&mut *self.inner)
        .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    pub async fn tasks(&mut self, practice_id: &str) -> Result<Vec<TaskRow>> {
        let rows = sqlx::query(
            "SELECT practice_id, id, definition, active, created_at FROM tasks \
             WHERE practice_id = $1 ORDER BY id",
        )
        .bind(practice_id)
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    /// Deletes the definition; its past runs stay, as the record of what was sent.
    pub async fn delete_task(&mut self, practice_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM tasks WHERE practice_id = $1 AND id = $2")
            .bind(practice_id)
            .bind(id)
            .execute(&mut *self.inner)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the run of an occurrence unless one exists: returns whether this caller won it.
    pub async fn claim_task_run(&mut self, run: &TaskRunRow) -> Result<bool> {
        let sql = format!(
            "INSERT INTO task_runs ({TASK_RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (practice_id, task_id, occurrence) DO NOTHING"
        );
        let done = sqlx::query(&sql)
            .bind(&run.practice_id)
            .bind(&run.task_id)
            .bind(&run.occurrence)
            .bind(ms(run.scheduled_for))
            .bind(ms(run.started_at))
            .bind(to_json("task_runs", &run.summary)?)
            .execute(&mut *self.inner)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn finish_task_run(
        &mut self,
        practice_id: &str,
        task_id: &str,
        occurrence: &str,
        summary: &Value,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE task_runs SET summary = $4 \
             WHERE practice_id = $1 AND task_id = $2 AND occurrence = $3",
        )
        .bind(practice_id)
        .bind(task_id)
        .bind(occurrence)
        .bind(to_json("task_runs", summary)?)
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// The task's runs, latest occurrence first, at most `limit`.
    pub async fn task_runs(
        &mut self,
        practice_id: &str,
        task_id: &str,
        limit: i64,
    ) -> Result<Vec<TaskRunRow>> {
        let sql = format!(
            "SELECT {TASK_RUN_COLUMNS} FROM task_runs WHERE practice_id = $1 AND task_id = $2 \
             ORDER BY scheduled_for DESC, occurrence DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(practice_id)
            .bind(task_id)
            .bind(limit.max(0))
            .fetch_all(&mut *self.inner)
            .await?;
        rows.iter().map(task_run_from_row).collect()
    }

    /// The latest occurrence that ran, if any.
    pub async fn last_task_run(
        &mut self,
        practice_id: &str,
        task_id: &str,
    ) -> Result<Option<TaskRunRow>> {
        Ok(self
            .task_runs(practice_id, task_id, 1)
            .await?
            .into_iter()
            .next())
    }

    /// How the messages of one task run stand: the rows of task `task_id` whose key starts with
    /// `key_prefix` (`t:TASK/OCCURRENCE/`), counted by status and reason, ordered by status then
    /// reason (no reason first).
    pub async fn task_notification_counts(
        &mut self,
        practice_id: &str,
        task_id: &str,
        key_prefix: &str,
    ) -> Result<Vec<(Status, Option<rappel_domain::notification::Reason>, i64)>> {
        use rappel_domain::notification::Reason;
        // `task = $2` as well as the prefix: SQLite's LIKE ignores ASCII case, and task `T1`'s
        // rows must not count for task `t1`. The scan stays within the practice's rows.
        let pattern = format!("{}%", like_escape(key_prefix));
        let rows = sqlx::query(
            "SELECT status, reason, COUNT(*) AS n FROM notifications \
             WHERE practice_id = $1 AND task = $2 AND key LIKE $3 ESCAPE '\\' \
             GROUP BY status, reason",
        )
        .bind(practice_id)
        .bind(task_id)
        .bind(pattern)
        .fetch_all(&mut *self.inner)
        .await?;
        let mut counts = rows
            .iter()
            .map(|row| {
                let c = Cols::new(row, "notifications");
                Ok((
                    c.parse("status", Status::parse)?,
                    c.opt_parse("reason", Reason::parse)?,
                    c.int("n")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        // Sorted here: the backends disagree on where NULL sorts.
        counts.sort_by(|a, b| {
            (a.0.as_str(), a.1.map(Reason::as_str)).cmp(&(b.0.as_str(), b.1.map(Reason::as_str)))
        });
        Ok(counts)
    }
}

/// The arguments of an insert in [`notification_columns!`] order.
fn notification_args(n: &NotificationRow) -> Result<Vec<Arg>> {
    let rendered = n
        .rendered
        .as_ref()
        .map(|r| to_json("notifications", r))
        .transpose()?;
    Ok(vec![
        Arg::Text(n.practice_id.clone()),
        Arg::Text(n.key.clone()),
        Arg::Text(n.patient_id.clone()),
        Arg::Text(n.rule.clone()),
        Arg::Text(n.kind.as_str().to_string()),
        Arg::Text(n.channel.as_str().to_string()),
        Arg::Text(n.recipient.to_string()),
        Arg::Text(to_json("notifications", &n.appointments)?),
        Arg::OptText(n.document.clone()),
        Arg::OptText(n.task.clone()),
        Arg::Int(flag(n.auto_resend)),
        Arg::Int(ms(n.due_at)),
        Arg::OptInt(opt_ms(n.window_end)),
        Arg::Text(n.status.as_str().to_string()),
        Arg::OptText(n.reason.map(|r| r.as_str().to_string())),
        Arg::OptInt(opt_ms(n.decided_at)),
        Arg::Int(i64::from(n.attempts)),
        Arg::OptText(n.lease_owner.clone()),
        Arg::OptInt(opt_ms(n.lease_until)),
        Arg::OptText(n.last_error.clone()),
        Arg::OptText(rendered),
        Arg::OptText(n.provider_id.clone()),
        Arg::Int(ms(n.created_at)),
        Arg::Int(ms(n.updated_at)),
    ])
}

fn notification_from_row(row: &AnyRow) -> Result<NotificationRow> {
    use rappel_domain::notification::{Channel, Kind, Reason, Recipient};
    let c = Cols::new(row, "notifications");
    let attempts = c.int("attempts")?;
    Ok(NotificationRow {
        practice_id: c.text("practice_id")?,
        key: c.text("key")?,
        patient_id: c.text("patient_id")?,
        rule: c.text("rule")?,
        kind: c.parse("kind", Kind::parse)?,
        channel: c.parse("channel", Channel::parse)?,
        recipient: c.parse("recipient", Recipient::parse)?,
        appointments: c.json("appointments")?,
        document: c.opt_text("document")?,
        task: c.opt_text("task")?,
        auto_resend: c.flag("auto_resend")?,
        due_at: c.ts("due_at")?,
        window_end: c.opt_ts("window_end")?,
        status: c.parse("status", Status::parse)?,
        reason: c.opt_parse("reason", Reason::parse)?,
        decided_at: c.opt_ts("decided_at")?,
        attempts: i32::try_from(attempts).map_err(|e| c.corrupt("attempts", e))?,
        lease_owner: c.opt_text("lease_owner")?,
        lease_until: c.opt_ts("lease_until")?,
        last_error: c.opt_text("last_error")?,
        rendered: c.opt_json("rendered")?,
        provider_id: c.opt_text("provider_id")?,
        created_at: c.ts("created_at")?,
        updated_at: c.ts("updated_at")?,
    })
}

fn practice_from_row(row: &AnyRow) -> Result<PracticeRow> {
    let c = Cols::new(row, "practices");
    Ok(PracticeRow {
        id: c.text("id")?,
        name: c.text("name")?,
        preset: c.text("preset")?,
        policy: c.opt_text("policy")?,
        timezone: c.text("timezone")?,
        settings: c.json("settings")?,
        created_at: c.ts("created_at")?,
    })
}

fn task_from_row(row: &AnyRow) -> Result<TaskRow> {
    let c = Cols::new(row, "tasks");
    Ok(TaskRow {
        practice_id: c.text("practice_id")?,
        id: c.text("id")?,
        definition: c.json("definition")?,
        active: c.flag("active")?,
        created_at: c.ts("created_at")?,
    })
}

fn task_run_from_row(row: &AnyRow) -> Result<TaskRunRow> {
    let c = Cols::new(row, "task_runs");
    Ok(TaskRunRow {
        practice_id: c.text("practice_id")?,
        task_id: c.text("task_id")?,
        occurrence: c.text("occurrence")?,
        scheduled_for: c.ts("scheduled_for")?,
        started_at: c.ts("started_at")?,
        summary: c.json("summary")?,
    })
}

/// The text `search_patients` matches against: both name orders, email and mobile, lower-cased.
fn search_text(p: &Patient) -> String {
    let mut parts = vec![
        format!("{} {}", p.first_name, p.last_name),
        format!("{} {}", p.last_name, p.first_name),
    ];
    parts.extend(p.email.as_ref().map(ToString::to_string));
    parts.extend(p.mobile.as_ref().map(ToString::to_string));
    parts.join("\n").to_lowercase()
}

/// When the appointment last changed status, time or place; `None` for a booked, unmoved one.
fn changed_at(a: &Appointment) -> Option<Timestamp> {
    let status_at = match a.status {
        AppointmentStatus::Booked => None,
        AppointmentStatus::Cancelled { at, .. }
        | AppointmentStatus::Deleted { at }
        | AppointmentStatus::NoShow { at }
        | AppointmentStatus::Attended { at } => Some(at),
    };
    let moved_at = a.moves.iter().map(|m| m.at).max();
    status_at.max(moved_at)
}

/// Compares two secrets' hashes without stopping at the first difference, so the time taken
/// does not tell an attacker how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
