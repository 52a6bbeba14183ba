//! The SQL behind [`Store`] and [`Tx`]. SIGNATURES ARE THE CONTRACT with the engine.
//!
//! Every query is written once, with `$N` placeholders that both backends accept, and binds
//! only the types `sqlx::Any` carries everywhere (see [`codec`]). The dialects differ in four
//! places only, each branching on [`Backend`]: how a write transaction starts, how `claim_due`
//! and `patient_for_update` lock rows, and which migration folder applies.
//!
//! This file holds the handle, the connection, the migrations and the transactions; the
//! statements live in one file per concern beside it: `practices.rs` (practices and API keys),
//! `directory.rs` (practitioners, motives, patients, appointments, documents), `events.rs`
//! (event log and idempotency), `notifications.rs` (the queue's rows), `due.rs` (the claim),
//! `batch.rs`, `quota.rs`, `inbox.rs`, `tasks.rs`, `templates.rs`, `webhooks.rs`, `users.rs`
//! and the others, each with the codecs of its rows.

mod answers;
mod codec;
mod notify;
pub use notify::WorkListener;
mod costs;
mod documents;
mod logos;
mod reports;
mod retention;
pub(crate) mod routes;
pub(crate) mod templates;
mod two_way;
pub(crate) mod webhooks;

pub use answers::{AppointmentAnswerRow, AppointmentLink};
pub use costs::NotificationCost;
pub use documents::{DocumentFile, DocumentLink};
pub use logos::LogoRow;
pub use reports::DeliveryReportRow;
pub use retention::Purged;
pub use two_way::{LastSms, ReceivedMessageRow, SmsOptOut, received_message_id};

use std::sync::Once;

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;

use self::codec::Cols;
use self::directory::{changed_at, patient_with_opt_out};
use self::notifications::{notification_arg, notification_args, notification_from_row};
use crate::{Backend, Result, StoreError};

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    /// Every connection on PostgreSQL and for an in-memory SQLite database; for an SQLite file,
    /// the connections that write (one at a time, see `writer`).
    pool: sqlx::AnyPool,
    /// The connections of read transactions and single reads: for an SQLite file, other
    /// connections, `query_only` for good ([`Store::connect`] says why); otherwise `pool`.
    reads: sqlx::AnyPool,
    /// An SQLite file's checkpoints, run off the writers' path ([`Checkpoints`]); `Some` exactly
    /// for an SQLite file, the one store whose `reads` are connections of their own.
    checkpoints: Option<Checkpoints>,
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
    /// SQLite file, write transaction: told when it commits.
    checkpoints: Option<Checkpoints>,
    /// SQLite: the next rowid of each due minute this transaction placed rows in
    /// (`placement.rs`).
    placement: placement::Placement,
}

/// Write transactions between two checkpoints that [`Checkpoints`] starts.
const CHECKPOINT_EVERY: u64 = 8;

/// SQLite: copies the WAL back into the database file in a task of its own, every
/// [`CHECKPOINT_EVERY`] write transactions, instead of inside a writer's commit.
///
/// SQLite's automatic checkpoint runs in the commit that crosses its threshold, so the writer
/// that triggered it, and every writer queued behind it for this process's write turn, waited for
/// it: 17 commits of 24–42 ms took 1 s of the 7.8 s of write turns of a `rappel bench
/// --notifications 20000` run. A `PASSIVE` checkpoint runs beside a writer (it never takes the
/// write lock) on a connection of its own, which does nothing else. The automatic checkpoint
/// stays as a backstop, for a WAL that these did not manage to copy.
#[derive(Clone, Debug)]
struct Checkpoints {
    pool: sqlx::AnyPool,
    commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
    running: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Checkpoints {
    fn new(pool: sqlx::AnyPool) -> Checkpoints {
        Checkpoints {
            pool,
            commits: std::sync::Arc::default(),
            running: std::sync::Arc::default(),
        }
    }

    /// A write transaction committed: every [`CHECKPOINT_EVERY`], a checkpoint starts unless
    /// one is still running.
    fn committed(&self) {
        use std::sync::atomic::Ordering;
        let n = self.commits.fetch_add(1, Ordering::Relaxed) + 1;
        if !n.is_multiple_of(CHECKPOINT_EVERY) || self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let done = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_optional(&this.pool)
                .await;
            match done {
                Ok(_) | Err(sqlx::Error::PoolClosed) => {}
                // Nothing is lost: the WAL keeps the commits, and the next one copies them.
                Err(error) => {
                    tracing::warn!(%error, "SQLite checkpoint failed; the next one will try again")
                }
            }
            this.running.store(false, Ordering::Release);
        });
    }
}

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

static INSTALL_DRIVERS: Once = Once::new();

/// SQLite's write transaction on a write connection of a file database.
const SQLITE_BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
/// SQLite's read transaction on a read connection (`query_only` for good): deferred, so it takes
/// no lock until it reads, and then only a WAL snapshot.
const SQLITE_BEGIN_READ: &str = "BEGIN DEFERRED";
/// The same two on the one connection of an in-memory database, which both kinds share: there
/// `query_only` is set by each read transaction (and stays set when the connection returns to the
/// pool, also after a rollback), so each write transaction clears it first.
const SQLITE_SHARED_BEGIN_WRITE: &str = "PRAGMA query_only = OFF; BEGIN IMMEDIATE";
const SQLITE_SHARED_BEGIN_READ: &str = "BEGIN DEFERRED; PRAGMA query_only = ON";

/// The columns of `notifications`, in the order [`notifications::notification_args`] binds them.
macro_rules! notification_columns {
    () => {
        "practice_id, key, patient_id, rule, kind, channel, recipient, appointments, document, \
         task, auto_resend, due_at, window_end, status, reason, decided_at, attempts, \
         lease_owner, lease_until, last_error, rendered, provider_id, created_at, updated_at"
    };
}

/// A notification's status as read by a statement that filters or counts by it: a row being
/// sent is stored `pending` with its lease (`notifications::stored_status`, migration 0024).
macro_rules! read_status {
    () => {
        "CASE WHEN status = 'pending' AND lease_owner IS NOT NULL THEN 'sending' ELSE status END"
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

// After the macros, which they use.
pub(crate) mod batch;
pub use batch::{EncodedOutcome, NewEvent};
mod directory;
pub(crate) mod due;
mod events;
mod inbox;
pub(crate) mod notifications;
mod placement;
mod practices;
mod quota;
mod tasks;
pub(crate) mod users;

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

/// The options of an SQLite pool: the per-connection settings, and `query_only` for good on the
/// read connections of a file (`read`).
fn sqlite_pool(read: bool) -> AnyPoolOptions {
    AnyPoolOptions::new().after_connect(move |conn, _meta| {
        Box::pin(async move {
            // Per-connection settings: a writer waits up to 5 s for another one instead of
            // failing with SQLITE_BUSY, and REFERENCES clauses are enforced.
            conn.execute("PRAGMA busy_timeout = 5000").await?;
            conn.execute("PRAGMA foreign_keys = ON").await?;
            // In WAL mode NORMAL is durable against a crash of the process (a commit is in the
            // WAL before it returns); only a power loss can drop the last commits. FULL would
            // fsync every commit and cap the queue at a few hundred transactions a second.
            conn.execute("PRAGMA synchronous = NORMAL").await?;
            // A multi-row statement (the batch writes of ingestion and dispatch) keeps a
            // statement journal so that a failing row undoes the whole statement; in memory
            // rather than in a temporary file, it costs no writes.
            conn.execute("PRAGMA temp_store = MEMORY").await?;
            // SQLite's automatic checkpoint, at 40,000 pages (160 MB of WAL) rather than 1,000,
            // is a backstop: a file store checkpoints in a task of its own ([`Checkpoints`]). At
            // 1,000 pages, when it was the only one, dispatch ran 10 % slower (6,341 → 5,783
            // messages/s, medians of three, `rappel bench --notifications 20000`). At 10,000 it
            // still ran in the writer's commits during ingestion: a commit of 1,000 bookings
            // writes 2,400–3,500 pages, so a few of them crossed it before the task's turn (every
            // eight commits) came, and 10 % of a 100,000-booking run's samples were that
            // checkpoint; at 40,000, 4,683 and 5,004 → 6,862 and 6,314 bookings/s
            // (`--notifications 100000 --scattered-ids`, issue 18, session 22).
            conn.execute("PRAGMA wal_autocheckpoint = 40000").await?;
            // A burst can leave the WAL file that long; when the writer starts the log again from
            // its beginning (after a checkpoint that copied all of it), it cuts the file back to
            // 64 MB rather than keeping its largest size on disk for good.
            conn.execute("PRAGMA journal_size_limit = 67108864").await?;
            if read {
                conn.execute("PRAGMA query_only = ON").await?;
            } else {
                // A write connection's page cache is 16 MB instead of SQLite's 2 MB: ingestion
                // inserts five rows a booking into `notifications` and its indexes, at places
                // spread over each index (due times), and with 2 MB most of those pages are read
                // back from the file at each batch. 5,000 rows into a table of up to 100,000 took
                // 244–280 ms with 2 MB and 153–166 ms with 16 MB (SQLite 3.51 from Python, the
                // migrations' schema); `rappel bench` ingestion, medians of five in alternation,
                // 9,007 → 10,295 bookings/s. There is one write connection (see
                // `Store::connect`); the eight read connections keep 2 MB each.
                conn.execute("PRAGMA cache_size = -16000").await?;
                // The scratch table of the batch updates (`batch::SQLITE_SCRATCH`).
                conn.execute(batch::SQLITE_SCRATCH).await?;
            }
            Ok(())
        })
    })
}

impl Store {
    /// `sqlite://PATH` (file created if missing; WAL, foreign keys, busy timeout),
    /// `sqlite::memory:` (one private in-memory database: used by `rappel simulate`),
    /// or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Store> {
        INSTALL_DRIVERS.call_once(sqlx::any::install_default_drivers);
        let target = parse_url(url)?;
        if target.backend == Backend::Postgres {
            let pool = AnyPoolOptions::new().connect(&target.url).await?;
            return Ok(Store::new(pool.clone(), pool, None, target.backend, url));
        }
        if target.in_memory {
            // Under `Any`, every new connection parses the URL again and so opens a new, empty
            // in-memory database: the pool must hold exactly one connection, forever.
            let pool = sqlite_pool(false)
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect(&target.url)
                .await?;
            return Ok(Store::new(pool.clone(), pool, None, target.backend, url));
        }
        // A file has three pools. Writers take turns (`writer`) on one connection: SQLite
        // drops a connection's whole page cache when another connection has committed since
        // its last transaction, and the pool hands out its idle connections in turn, so with
        // two write connections every write transaction began on a cold cache (issue 18,
        // session 22: 298,000 → 159,000 `pread` calls in a `rappel bench --scattered-ids` run;
        // dispatch 21,993 → 24,539 messages/s, medians of twelve). Reads get eight connections
        // that are `query_only` from the moment they open: setting that pragma at each
        // transaction, as the in-memory database does, makes SQLite discard every statement the
        // connection has prepared (a pragma flag change expires them), so each statement was
        // compiled again at each transaction. The checkpoints ([`Checkpoints`]) have a
        // connection of their own, beside the writer.
        let pool = sqlite_pool(false)
            .max_connections(1)
            .connect(&target.url)
            .await?;
        // WAL is a property of the database file, so setting it once is enough; it lets readers
        // proceed while one writer holds the lock.
        sqlx::query("PRAGMA journal_mode = WAL")
            .fetch_optional(&pool)
            .await?;
        let reads = sqlite_pool(true)
            .max_connections(8)
            .connect(&target.url)
            .await?;
        let checkpoints = AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    Ok(())
                })
            })
            .connect(&target.url)
            .await?;
        Ok(Store::new(
            pool,
            reads,
            Some(checkpoints),
            target.backend,
            url,
        ))
    }

    fn new(
        pool: sqlx::AnyPool,
        reads: sqlx::AnyPool,
        checkpoints: Option<sqlx::AnyPool>,
        backend: Backend,
        url: &str,
    ) -> Store {
        Store {
            checkpoints: checkpoints.map(Checkpoints::new),
            pool,
            reads,
            backend,
            url: std::sync::Arc::from(url),
            writer: std::sync::Arc::default(),
            writes: std::sync::Arc::default(),
        }
    }

    /// The pool a single read (outside a transaction) uses.
    pub(crate) fn read_pool(&self) -> &sqlx::AnyPool {
        &self.reads
    }

    /// SQLite's `BEGIN` for a write transaction and for a read transaction on this store: on a
    /// file (which has checkpoints, and read connections `query_only` for good) neither sets
    /// `query_only`; the in-memory database's one shared connection sets it at each transaction.
    fn sqlite_begin(&self) -> (&'static str, &'static str) {
        if self.checkpoints.is_some() {
            (SQLITE_BEGIN_WRITE, SQLITE_BEGIN_READ)
        } else {
            (SQLITE_SHARED_BEGIN_WRITE, SQLITE_SHARED_BEGIN_READ)
        }
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
                let mut tx = self.pool.begin_with(self.sqlite_begin().0).await?;
                SQLITE_MIGRATIONS.run_direct(&mut *tx).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// The newest migration the database has applied, when it is newer than every migration
    /// this build knows: a newer version of Rappel migrated it, and this process's statements
    /// may no longer mean what they did (migration 0024 changed what a claim writes, for one).
    /// `None` when this build knows every applied migration.
    ///
    /// `rappel serve` and `rappel worker` refuse to start on such a database (the migrator
    /// finds an applied migration it does not have); the worker's loop asks this at each round
    /// and stops claiming while it is so, which covers a process already running when the newer
    /// version migrated the database (a rolling upgrade).
    pub async fn newer_schema(&self) -> Result<Option<i64>> {
        let known = match self.backend {
            Backend::Postgres => &POSTGRES_MIGRATIONS,
            Backend::Sqlite => &SQLITE_MIGRATIONS,
        }
        .iter()
        .map(|migration| migration.version)
        .max()
        .unwrap_or(0);
        let row = sqlx::query("SELECT MAX(version) AS newest FROM _sqlx_migrations")
            .fetch_one(self.read_pool())
            .await?;
        let newest = Cols::new(&row, "_sqlx_migrations").opt_int("newest")?;
        Ok(newest.filter(|&newest| newest > known))
    }

    /// Records a migration of that version as sqlx's migrator records one it applied: what a
    /// newer version of Rappel leaves in the database ([`Store::newer_schema`]). For tests.
    #[cfg(feature = "test-support")]
    pub async fn record_newer_migration(&self, version: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES ($1, 'a newer version', TRUE, $2, 0)",
        )
        .bind(version)
        .bind(vec![0u8])
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes the record of that migration (a newer version's, rolled back). For tests.
    #[cfg(feature = "test-support")]
    pub async fn forget_migration(&self, version: i64) -> Result<()> {
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
            .bind(version)
            .execute(&self.pool)
            .await?;
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
                let inner = self.pool.begin_with(self.sqlite_begin().0).await?;
                return Ok(Tx {
                    inner,
                    backend: self.backend,
                    _turn: Some(turn),
                    due: Default::default(),
                    placement: Default::default(),
                    checkpoints: self.checkpoints.clone(),
                });
            }
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Tx {
            inner,
            backend: self.backend,
            _turn: None,
            due: Default::default(),
            placement: Default::default(),
            checkpoints: None,
        })
    }

    /// A transaction that only reads: a consistent snapshot that does not take this process's
    /// SQLite write turn, so it runs beside a writer (WAL lets readers proceed), and on
    /// PostgreSQL a `READ ONLY` transaction, which refuses any write with an error.
    ///
    /// Nothing may be written through it: on SQLite a write would have to upgrade the snapshot
    /// to the write lock, and fails with `SQLITE_BUSY` when another writer committed meanwhile.
    /// SQLite refuses it at once too ("attempt to write a readonly database"): the connection is
    /// `query_only` (for good, or for the transaction on an in-memory database), so a write
    /// slipped into a read path fails in every test rather than only under contention.
    pub async fn begin_read(&self) -> Result<Tx> {
        let inner = match self.backend {
            Backend::Sqlite => self.reads.begin_with(self.sqlite_begin().1).await?,
            Backend::Postgres => self.reads.begin_with("BEGIN READ ONLY").await?,
        };
        Ok(Tx {
            inner,
            backend: self.backend,
            _turn: None,
            due: Default::default(),
            placement: Default::default(),
            checkpoints: None,
        })
    }

    pub async fn close(&self) {
        close_pool(&self.pool).await;
        close_pool(&self.reads).await;
        // An SQLite file's checkpoint connection too: the last connection to close copies the
        // WAL back and removes it.
        if let Some(checkpoints) = &self.checkpoints {
            close_pool(&checkpoints.pool).await;
        }
    }
}

/// Closes every connection of a pool. sqlx's `close` can return with one still open: a
/// connection released just before it is put back in the idle queue by a task of its own, and a
/// pool of one connection waits for that connection's permit, not for the queue, so it finds
/// the queue empty and returns; the connection then stays open until the process exits, and on
/// an SQLite file its write-ahead log is left behind (seen once in CI, `tests/practice_set.rs`,
/// after `rappel migrate`). Closing again closes what came back; bounded to about a second.
async fn close_pool(pool: &sqlx::AnyPool) {
    for _ in 0..200 {
        pool.close().await;
        if pool.size() == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

impl Tx {
    pub async fn commit(mut self) -> Result<()> {
        self.flush_due().await?;
        self.inner.commit().await?;
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.committed();
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}
