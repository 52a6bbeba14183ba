//! Set-at-a-time reads and writes: the facts of many patients in one query per table, many
//! notifications in one statement. Ingestion and dispatch work on batches (hundreds of events or
//! claimed messages per transaction); one round trip per row through `sqlx::Any` was what capped
//! their throughput.
//!
//! Every function here means exactly what a loop over its single-row counterpart (in
//! `notifications.rs`, `directory.rs`, `events.rs`) means; the conformance suite checks both
//! against each other on both backends. Id lists are cut into chunks so that no statement
//! carries more parameters than SQLite accepts.

use jiff::Timestamp;
use rappel_domain::facts::{Appointment, Document, Motive, Patient, Practitioner};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::any::{Any, AnyArguments};
use sqlx::query::Query;

use super::codec::{Arg, Cols, bind_all, json_element, json_rows, ms, opt_ms, pack_json, to_json};
use super::notifications::notification_from_cols;
use super::routes::Route;
use super::{Tx, changed_at, notification_arg, notification_args};
use crate::{Backend, NotificationRow, Result, Status, StoreError};

/// Ids per lookup on SQLite (its `IN (…)` list; PostgreSQL takes them all as one array).
const IDS_PER_QUERY: usize = 200;
/// The lengths an SQLite lookup is padded to (see [`Tx::select_in`]).
const LOOKUP_SIZES: [usize; 9] = [1, 2, 4, 8, 16, 32, 64, 128, IDS_PER_QUERY];
/// Rows per multi-row INSERT or UPDATE: 24 columns × 400 rows stays well under SQLite's limit of
/// 32,766 parameters (and PostgreSQL's 65,535).
const ROWS_PER_STATEMENT: usize = 400;
/// SQLite's scratch table of the batch updates of notifications (one per write connection,
/// created as it opens; [`Tx::write_columns_through_scratch`]): the columns of `notifications`,
/// without types or constraints, keyed as it is. It holds rows only inside a write.
pub(crate) const SQLITE_SCRATCH: &str = "CREATE TEMP TABLE IF NOT EXISTS notification_writes ( \
       practice_id, key, patient_id, rule, kind, channel, recipient, appointments, document, \
       task, auto_resend, due_at, window_end, status, reason, decided_at, attempts, \
       lease_owner, lease_until, last_error, rendered, provider_id, created_at, updated_at, \
       PRIMARY KEY (practice_id, key))";
/// The sizes, largest first, of the multi-row INSERTs of notifications on SQLite (see
/// [`Tx::insert_notifications`]).
const INSERT_CHUNKS: [usize; 5] = [256, 64, 16, 4, 1];

/// `rows` cut into chunks of the given sizes (largest first, the last one 1), the largest that
/// fits each time: a few distinct lengths, so a few statement texts to keep prepared.
fn fixed_chunks<'r, T>(rows: &'r [T], sizes: &[usize]) -> Vec<&'r [T]> {
    let mut out = Vec::new();
    let mut rest = rows;
    while !rest.is_empty() {
        let size = sizes
            .iter()
            .copied()
            .find(|&size| size <= rest.len())
            .expect("the last size is 1");
        let (chunk, after) = rest.split_at(size);
        out.push(chunk);
        rest = after;
    }
    out
}

/// `rows` cut into the chunks of a multi-row INSERT of at most `per_statement` rows. On SQLite
/// they take the few fixed sizes of [`INSERT_CHUNKS`] (capped at `per_statement`), so that each
/// size's text stays prepared on the write connection, as the notifications' insert already did,
/// instead of being compiled again at each batch (the personal links of a dispatch batch and
/// their routes, issue 18, session 13). PostgreSQL keeps every text prepared in the server
/// whatever its length.
pub(super) fn insert_chunks<T>(backend: Backend, rows: &[T], per_statement: usize) -> Vec<&[T]> {
    match backend {
        Backend::Postgres => rows.chunks(per_statement).collect(),
        Backend::Sqlite => {
            let sizes: Vec<usize> = INSERT_CHUNKS
                .iter()
                .copied()
                .filter(|&size| size <= per_statement)
                .collect();
            fixed_chunks(rows, &sizes)
        }
    }
}

/// The rows grouped by practice, in the order each practice first appears: a batch statement
/// writes the rows of one practice only, so that every statement stays within one practice
/// (issue 18; a batch of a dispatch can hold several practices' rows).
fn by_practice<T>(rows: impl IntoIterator<Item = T>, practice: impl Fn(&T) -> &str) -> Vec<Vec<T>> {
    let mut groups: Vec<Vec<T>> = Vec::new();
    for row in rows {
        match groups
            .iter_mut()
            .find(|g| practice(&g[0]) == practice(&row))
        {
            Some(group) => group.push(row),
            None => groups.push(vec![row]),
        }
    }
    groups
}

/// Runs `work` while the database runs `statement`, and returns both outputs.
///
/// A statement's first poll hands it to the database (to SQLite's connection thread, or onto
/// PostgreSQL's socket) and then waits for the result: the work is done in that wait, on this
/// thread, instead of after it. A batch insert encodes its next chunk so: on SQLite, where one
/// ingestion is one thread of Rust then one of SQLite taking turns, encoding the next 256
/// notifications (their JSON, their arguments) overlaps inserting these.
async fn overlapped<S: Future, T>(statement: S, work: impl FnOnce() -> T) -> (S::Output, T) {
    let mut statement = std::pin::pin!(statement);
    let early =
        std::future::poll_fn(|cx| std::task::Poll::Ready(statement.as_mut().poll(cx))).await;
    let done = work();
    let output = match early {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => statement.await,
    };
    (output, done)
}

/// Logs an update that found fewer notifications than it was given (rows that do not exist are
/// left alone).
fn warn_unless_updated(expected: usize, updated: u64) {
    if updated < expected as u64 {
        tracing::warn!(expected, updated, "update of unknown notifications");
    }
}

/// The names of the columns of [`notification_columns!`], by position.
const COLUMN_NAMES: [&str; 24] = [
    "practice_id",
    "key",
    "patient_id",
    "rule",
    "kind",
    "channel",
    "recipient",
    "appointments",
    "document",
    "task",
    "auto_resend",
    "due_at",
    "window_end",
    "status",
    "reason",
    "decided_at",
    "attempts",
    "lease_owner",
    "lease_until",
    "last_error",
    "rendered",
    "provider_id",
    "created_at",
    "updated_at",
];

/// The columns a dispatch's outcome writes ([`Tx::update_notification_outcomes`]).
const OUTCOME_COLUMNS: [usize; 10] = [13, 14, 15, 16, 17, 18, 19, 20, 21, 23];
/// Where the audit copy (`rendered`, column 20) is among [`OUTCOME_COLUMNS`]…
const COPY_POSITION: usize = 7;
/// …and those columns without it, for [`crate::Store::encode_outcome_with_copy`].
const OUTCOME_COLUMNS_BUT_COPY: [usize; 9] = [13, 14, 15, 16, 17, 18, 19, 21, 23];
const _: () = assert!(OUTCOME_COLUMNS[COPY_POSITION] == 20);

/// The arguments of one row's update: the columns written, then its practice and key.
pub(crate) struct EncodedRow {
    practice_id: String,
    args: Vec<Arg>,
}

impl EncodedRow {
    fn new(n: &NotificationRow, columns: &[usize]) -> Result<EncodedRow> {
        let mut args = Vec::with_capacity(columns.len() + 2);
        for &c in columns {
            args.push(notification_arg(n, c)?);
        }
        args.push(Arg::Text(n.practice_id.clone()));
        args.push(Arg::Text(n.key.clone()));
        Ok(EncodedRow {
            practice_id: n.practice_id.clone(),
            args,
        })
    }
}

/// A dispatch's outcome for one claimed row, encoded before its write transaction begins
/// ([`crate::Store::encode_outcome`], then [`Tx::write_outcomes`]): the audit copy serialized
/// and packed while no transaction waits, since on SQLite every write of this
/// process takes one turn.
pub struct EncodedOutcome {
    row: EncodedRow,
    provider_id: Option<String>,
    due: Option<super::due::DueChange>,
}

impl super::Store {
    /// Encodes a dispatch's outcome for [`Tx::write_outcomes`], before the write transaction
    /// that records it begins.
    pub fn encode_outcome(&self, row: &NotificationRow) -> Result<EncodedOutcome> {
        EncodedOutcome::new(row, None)
    }

    /// [`crate::Store::encode_outcome`] of a row whose audit copy is already JSON text: `copy` is
    /// written as the row's `rendered`, whatever `row.rendered` holds. A dispatch serializes the
    /// copy once, straight from the rendered message, instead of building a `serde_json::Value`
    /// that is cloned into the row and serialized again here (issue 18, session 19). `copy` must
    /// be one JSON value, as a read decodes it (checked in debug builds, hence by the tests).
    pub fn encode_outcome_with_copy(
        &self,
        row: &NotificationRow,
        copy: &str,
    ) -> Result<EncodedOutcome> {
        debug_assert!(
            serde_json::from_str::<serde::de::IgnoredAny>(copy).is_ok(),
            "an audit copy that is not JSON"
        );
        EncodedOutcome::new(row, Some(copy))
    }
}

impl EncodedOutcome {
    fn new(n: &NotificationRow, copy: Option<&str>) -> Result<EncodedOutcome> {
        use super::due::DueChange;
        // The outcome writes the lease and not the due time: a pending row's claimable instant
        // is not known here (its practice's summary is recomputed), a sending row's is its
        // lease end (see `Tx::note_written_columns`).
        let due = match n.status {
            Status::Pending => Some(DueChange::Recompute),
            _ => super::due::claimable_at(n).map(DueChange::Earliest),
        };
        let row = match copy {
            // The copy's column is left out of the row's own encoding, then given the text.
            Some(copy) => {
                let mut row = EncodedRow::new(n, &OUTCOME_COLUMNS_BUT_COPY)?;
                row.args
                    .insert(COPY_POSITION, Arg::OptBlob(Some(pack_json(copy))));
                row
            }
            None => EncodedRow::new(n, &OUTCOME_COLUMNS)?,
        };
        debug_assert_eq!(row.args.len(), OUTCOME_COLUMNS.len() + 2);
        Ok(EncodedOutcome {
            row,
            provider_id: n.provider_id.clone(),
            due,
        })
    }
}

/// One event to append to the log (see [`Tx::insert_events`]).
#[derive(Clone, Debug)]
pub struct NewEvent<'a> {
    pub at: Timestamp,
    pub received_at: Timestamp,
    pub event_type: &'a str,
    pub body: &'a Value,
}

/// The placeholder of the `n`th parameter (from 1). Statements here are long and are bound
/// in textual order, so SQLite gets anonymous `?`: sqlx looks each numbered parameter up by
/// name, and SQLite's lookup is a linear scan, which made binding a statement of thousands of
/// `$N` quadratic (most of the time of a batch went there). Appended to a statement being built
/// (no allocation per parameter).
fn push_param(sql: &mut String, backend: Backend, n: usize) {
    match backend {
        Backend::Sqlite => sql.push('?'),
        Backend::Postgres => {
            use std::fmt::Write as _;
            let _ = write!(sql, "${n}");
        }
    }
}

/// The placeholders of parameters `first`, `first + 1`, … for `count` of them.
pub(super) fn placeholders(backend: Backend, first: usize, count: usize) -> String {
    let mut out = String::with_capacity(count * 8);
    for i in 0..count {
        if i > 0 {
            out.push_str(", ");
        }
        push_param(&mut out, backend, first + i);
    }
    out
}

/// A statement of many rows. On SQLite it is not kept prepared: sqlx keeps up to 100 statements
/// per connection, a compiled statement of thousands of parameters weighs about as much as its
/// text many times over, and the chunks' varying lengths make many different texts, so the cache
/// made the process's memory grow with the queue. PostgreSQL keeps its prepared
/// statements in the server, and re-planning them each time would cost more.
pub(super) fn big_query(backend: Backend, sql: &str) -> Query<'_, Any, AnyArguments<'_>> {
    sqlx::query(sql).persistent(backend == Backend::Postgres)
}

/// Unique ids, so a chunk never asks twice for the same row.
fn distinct(ids: &[String]) -> Vec<&String> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter().filter(|id| seen.insert(id.as_str())).collect()
}

/// A read of the rows of many ids, `{head} WHERE practice_id = ? AND {column} … {filter}`, then
/// `{order}`, in one of two shapes by backend:
/// - PostgreSQL: the ids go as one array literal, and each is looked up by a `LATERAL`
///   sub-select, `{column} = lookup.lookup_id`: one statement text whatever the number of ids,
///   so it stays prepared, and a plan that cannot be anything but one index descent per id on
///   both columns (`OFFSET 0` keeps the sub-select from being merged into a join the planner
///   could then reorder). Its two earlier shapes cost more: one `{column} = $n` arm per id joined
///   with UNION ALL took an executor node per arm at each run and, once the tables had grown, a
///   parallel plan whose workers were started for every lookup (200 appointments in 15 ms); and
///   `{column} = ANY($2)` was planned, by the custom plans of a statement's first runs or by a
///   generic plan made while the table was small, as a read of every entry of the practice in
///   another index led by `practice_id` with the ids as a filter (ingestion fell from 6,500 to
///   1,800 bookings/s; issue 18, session 12).
/// - SQLite: one `{column} IN (…)` list. SQLite looks each listed id up in the index whatever its
///   statistics, and a compound of hundreds of arms costs it a cursor per arm (the lookups of a
///   dispatch batch took twice as long).
///
/// On SQLite the rows come back as one JSON text (`json_group_array(json_array({columns})
/// {order})` over the statement, `codec::json_rows`): through `sqlx::Any` each row of a few
/// hundred cost about four times as much (ARCHITECTURE.md, "Rows as one JSON text"), and on
/// ingestion these reads hold the write turn.
struct Lookup<'a> {
    head: &'a str,
    column: &'a str,
    /// Bound after the ids, one argument for each `{}`.
    filter: &'a str,
    extra: &'a [Arg],
    /// Names result columns only.
    order: &'a str,
    /// The result columns the caller reads (`, `-separated names).
    columns: &'static str,
}

impl Lookup<'_> {
    /// `filter` with its parameters, appended to a statement being built.
    fn push_filter(&self, backend: Backend, sql: &mut String, args: &mut Vec<Arg>) {
        for (j, piece) in self.filter.split("{}").enumerate() {
            if j > 0 {
                args.push(self.extra[j - 1].clone());
                push_param(sql, backend, args.len());
            }
            sql.push_str(piece);
        }
    }

    /// The statement and its arguments for these ids (on SQLite at most [`IDS_PER_QUERY`],
    /// padded with NULLs to the next of [`LOOKUP_SIZES`]).
    fn statement(
        &self,
        backend: Backend,
        practice_id: &str,
        ids: &[&String],
    ) -> (String, Vec<Arg>) {
        let mut args = vec![Arg::Text(practice_id.to_string())];
        let mut sql = match backend {
            Backend::Postgres => {
                args.push(Arg::Text(text_array(ids)));
                let mut inner = format!(
                    "{} WHERE practice_id = $1 AND {} = lookup.lookup_id",
                    self.head, self.column
                );
                self.push_filter(backend, &mut inner, &mut args);
                format!(
                    "SELECT * FROM unnest(CAST($2 AS TEXT[])) AS lookup (lookup_id) \
                     CROSS JOIN LATERAL ({inner} OFFSET 0) AS found"
                )
            }
            Backend::Sqlite => {
                // The statement stays prepared (it is read on every batch), so its ids are
                // padded to one of a few lengths with NULLs, which match nothing (`= NULL` is
                // never true): a handful of texts per lookup instead of one per possible
                // length, which bounds what the connections' statement caches hold.
                let len = LOOKUP_SIZES
                    .iter()
                    .copied()
                    .find(|&n| n >= ids.len())
                    .unwrap_or(ids.len());
                args.extend((0..len).map(|i| Arg::OptText(ids.get(i).map(|id| (*id).clone()))));
                let mut sql = format!(
                    "{} WHERE practice_id = ? AND {} IN ({})",
                    self.head,
                    self.column,
                    vec!["?"; len].join(", ")
                );
                self.push_filter(backend, &mut sql, &mut args);
                let elements: Vec<String> = self.columns.split(", ").map(json_element).collect();
                let order = match self.order {
                    "" => String::new(),
                    order => format!(" {order}"),
                };
                return (
                    format!(
                        "SELECT json_group_array(json_array({}){order}) AS found FROM ({sql})",
                        elements.join(", ")
                    ),
                    args,
                );
            }
        };
        if !self.order.is_empty() {
            sql.push(' ');
            sql.push_str(self.order);
        }
        (sql, args)
    }
}

/// What [`Tx::select_in`] found: rows (PostgreSQL) or the rows of JSON texts (SQLite), each
/// read through [`Cols`].
enum Found {
    Rows(Vec<sqlx::any::AnyRow>),
    Json {
        names: Vec<&'static str>,
        rows: Vec<Vec<Value>>,
    },
}

impl Found {
    fn decode<T>(
        &self,
        table: &'static str,
        read: impl Fn(&Cols<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        match self {
            Found::Rows(rows) => rows.iter().map(|r| read(&Cols::new(r, table))).collect(),
            Found::Json { names, rows } => rows
                .iter()
                .map(|values| read(&Cols::json_row(names, values, table)))
                .collect(),
        }
    }
}

/// PostgreSQL's text form of an array of these strings, each element quoted (so that no id is
/// read as `NULL` or split), `"` and `\` escaped.
fn text_array(ids: &[&String]) -> String {
    let mut out = String::with_capacity(2 + ids.iter().map(|id| id.len() + 3).sum::<usize>());
    out.push('{');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in id.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// The statement [`Tx::notifications_of_patients`] runs for `patients` ids on `backend`, for
/// `tests/plans.rs`, which reads its plan.
pub(crate) fn notifications_of_patients_statement(backend: Backend, patients: usize) -> String {
    let ids: Vec<String> = (0..patients).map(|i| format!("p{i}")).collect();
    let ids: Vec<&String> = ids.iter().collect();
    NOTIFICATIONS_OF_PATIENTS.statement(backend, "p", &ids).0
}

/// [`Tx::notifications_of_patients`]'s lookup.
const NOTIFICATIONS_OF_PATIENTS: Lookup<'static> = Lookup {
    head: concat!("SELECT ", notification_columns!(), " FROM notifications"),
    column: "patient_id",
    filter: "",
    extra: &[],
    order: "ORDER BY patient_id, key",
    columns: notification_columns!(),
};

impl Tx {
    /// Runs the lookup, on SQLite chunk by chunk, and returns every row.
    async fn select_in(
        &mut self,
        lookup: Lookup<'_>,
        table: &'static str,
        practice_id: &str,
        ids: &[String],
    ) -> Result<Found> {
        let ids = distinct(ids);
        if self.backend == Backend::Postgres {
            if ids.is_empty() {
                return Ok(Found::Rows(Vec::new()));
            }
            // One array parameter, however long.
            let (sql, args) = lookup.statement(self.backend, practice_id, &ids);
            let rows = bind_all(sqlx::query(&sql), &args)
                .fetch_all(&mut *self.inner)
                .await?;
            return Ok(Found::Rows(rows));
        }
        let names: Vec<&'static str> = lookup.columns.split(", ").collect();
        let mut out = Vec::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let (sql, args) = lookup.statement(self.backend, practice_id, chunk);
            let row = bind_all(sqlx::query(&sql), &args)
                .fetch_one(&mut *self.inner)
                .await?;
            let text = Cols::new(&row, table).text("found")?;
            out.extend(json_rows(&text, &names, table)?);
        }
        Ok(Found::Json { names, rows: out })
    }

    async fn data_by_id<T: DeserializeOwned>(
        &mut self,
        table: &'static str,
        practice_id: &str,
        ids: &[String],
    ) -> Result<Vec<T>> {
        let rows = self
            .select_in(
                Lookup {
                    head: &format!("SELECT data FROM {table}"),
                    column: "id",
                    filter: "",
                    extra: &[],
                    order: "",
                    columns: "data",
                },
                table,
                practice_id,
                ids,
            )
            .await?;
        rows.decode(table, |c| c.json("data"))
    }

    /// The patients among `ids` that exist, erased ones included, with their erased flag (an
    /// erased patient's data is blank): what [`Tx::patient`] and [`Tx::is_erased`] answer, for
    /// many ids at once. In no particular order.
    pub async fn patients_by_id(
        &mut self,
        practice_id: &str,
        ids: &[String],
    ) -> Result<Vec<(Patient, bool)>> {
        let rows = self
            .select_in(
                Lookup {
                    head: concat!(
                        "SELECT data, erased, ",
                        sms_opt_out_column!(),
                        " FROM patients"
                    ),
                    column: "id",
                    filter: "",
                    extra: &[],
                    order: "",
                    columns: "data, erased, sms_opt_out",
                },
                "patients",
                practice_id,
                ids,
            )
            .await?;
        rows.decode("patients", |c| {
            Ok((super::patient_with_opt_out(c)?, c.flag("erased")?))
        })
    }

    /// The practitioners among `ids` that exist, in no particular order.
    pub async fn practitioners_by_id(
        &mut self,
        practice_id: &str,
        ids: &[String],
    ) -> Result<Vec<Practitioner>> {
        self.data_by_id("practitioners", practice_id, ids).await
    }

    /// The motives among `ids` that exist, in no particular order.
    pub async fn motives_by_id(
        &mut self,
        practice_id: &str,
        ids: &[String],
    ) -> Result<Vec<Motive>> {
        self.data_by_id("motives", practice_id, ids).await
    }

    /// The appointments among `ids` that exist, in no particular order.
    pub async fn appointments_by_id(
        &mut self,
        practice_id: &str,
        ids: &[String],
    ) -> Result<Vec<Appointment>> {
        self.data_by_id("appointments", practice_id, ids).await
    }

    /// [`Tx::patient_appointments`] of every patient in `patient_ids`, grouped by patient and
    /// within a patient ordered by start, then id.
    pub async fn appointments_of_patients(
        &mut self,
        practice_id: &str,
        patient_ids: &[String],
        since: Timestamp,
    ) -> Result<Vec<Appointment>> {
        let rows = self
            .select_in(
                Lookup {
                    head: "SELECT data, patient_id, start_ms, id FROM appointments",
                    column: "patient_id",
                    filter: " AND (start_ms >= {} OR status_at_ms >= {})",
                    extra: &[Arg::Int(ms(since)), Arg::Int(ms(since))],
                    order: "ORDER BY patient_id, start_ms, id",
                    columns: "data",
                },
                "appointments",
                practice_id,
                patient_ids,
            )
            .await?;
        rows.decode("appointments", |c| c.json("data"))
    }

    /// [`Tx::patient_documents`] of every patient in `patient_ids`, grouped by patient and
    /// within a patient ordered by sending time, then id.
    pub async fn documents_of_patients(
        &mut self,
        practice_id: &str,
        patient_ids: &[String],
    ) -> Result<Vec<Document>> {
        let rows = self
            .select_in(
                Lookup {
                    head: "SELECT data, patient_id, sent_at_ms, id FROM documents",
                    column: "patient_id",
                    filter: "",
                    extra: &[],
                    order: "ORDER BY patient_id, sent_at_ms, id",
                    columns: "data",
                },
                "documents",
                practice_id,
                patient_ids,
            )
            .await?;
        rows.decode("documents", |c| c.json("data"))
    }

    /// [`Tx::patient_notifications`] of every patient in `patient_ids`, grouped by patient and
    /// within a patient ordered by key.
    pub async fn notifications_of_patients(
        &mut self,
        practice_id: &str,
        patient_ids: &[String],
    ) -> Result<Vec<NotificationRow>> {
        let rows = self
            .select_in(
                NOTIFICATIONS_OF_PATIENTS,
                "notifications",
                practice_id,
                patient_ids,
            )
            .await?;
        rows.decode("notifications", notification_from_cols)
    }

    /// [`Tx::upsert_appointment`] of each, in one statement per chunk. An id must appear once.
    pub async fn upsert_appointments(
        &mut self,
        practice_id: &str,
        appointments: &[Appointment],
        updated_at: Timestamp,
    ) -> Result<()> {
        let backend = self.backend;
        let chunks: Vec<&[Appointment]> = appointments.chunks(ROWS_PER_STATEMENT).collect();
        let encode = |i: usize| -> Result<(String, Vec<Arg>)> {
            let chunk = chunks[i];
            let mut sql = String::from(
                "INSERT INTO appointments \
                   (practice_id, id, patient_id, start_ms, status, status_at_ms, data, updated_at) \
                 VALUES ",
            );
            let mut args = Vec::with_capacity(chunk.len() * 8);
            for (i, a) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                sql.push_str(&placeholders(backend, args.len() + 1, 8));
                sql.push(')');
                args.extend([
                    Arg::Text(practice_id.to_string()),
                    Arg::Text(a.id.clone()),
                    Arg::Text(a.patient.clone()),
                    Arg::Int(ms(a.start)),
                    Arg::Text(a.status.name().to_string()),
                    Arg::OptInt(opt_ms(changed_at(a))),
                    Arg::Text(to_json("appointments", a)?),
                    Arg::Int(ms(updated_at)),
                ]);
            }
            sql.push_str(
                " ON CONFLICT (practice_id, id) DO UPDATE SET patient_id = excluded.patient_id, \
                   start_ms = excluded.start_ms, status = excluded.status, \
                   status_at_ms = excluded.status_at_ms, data = excluded.data, \
                   updated_at = excluded.updated_at",
            );
            Ok((sql, args))
        };
        self.execute_encoded(chunks.len(), backend == Backend::Postgres, encode)
            .await?;
        Ok(())
    }

    /// Appends the events to the log in order; returns their sequence numbers, as that many
    /// calls of [`Tx::insert_event`] would.
    pub async fn insert_events(
        &mut self,
        practice_id: &str,
        events: &[NewEvent<'_>],
    ) -> Result<Vec<i64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // One increment by the number of events reserves the whole range under the practice
        // row's lock, exactly as one increment per event would.
        let row = sqlx::query(
            "UPDATE practices SET last_event_seq = last_event_seq + $2 WHERE id = $1 \
             RETURNING last_event_seq",
        )
        .bind(practice_id)
        .bind(events.len() as i64)
        .fetch_optional(&mut *self.inner)
        .await?
        .ok_or(StoreError::Database(sqlx::Error::RowNotFound))?;
        let last = Cols::new(&row, "practices").int("last_event_seq")?;
        let first = last - events.len() as i64 + 1;
        let seqs: Vec<i64> = (first..=last).collect();
        let backend = self.backend;
        let chunks: Vec<(&[NewEvent<'_>], &[i64])> = events
            .chunks(ROWS_PER_STATEMENT)
            .zip(seqs.chunks(ROWS_PER_STATEMENT))
            .collect();
        let encode = |i: usize| -> Result<(String, Vec<Arg>)> {
            let (chunk, seq_chunk) = chunks[i];
            let mut sql = String::from(
                "INSERT INTO events (practice_id, seq, at, received_at, event_type, body) VALUES ",
            );
            let mut args = Vec::with_capacity(chunk.len() * 6);
            for (i, (e, seq)) in chunk.iter().zip(seq_chunk).enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                sql.push_str(&placeholders(backend, args.len() + 1, 6));
                sql.push(')');
                args.extend([
                    Arg::Text(practice_id.to_string()),
                    Arg::Int(*seq),
                    Arg::Int(ms(e.at)),
                    Arg::Int(ms(e.received_at)),
                    Arg::Text(e.event_type.to_string()),
                    Arg::Text(to_json("events", e.body)?),
                ]);
            }
            Ok((sql, args))
        };
        self.execute_encoded(chunks.len(), backend == Backend::Postgres, encode)
            .await?;
        Ok(seqs)
    }

    /// [`Tx::insert_notification`] of each, in one statement per chunk.
    ///
    /// On SQLite the chunks take a few fixed sizes (256, 64, 16, 4, 1 rows: `INSERT_CHUNKS`) and
    /// their statements stay prepared: compiling a statement of 400 rows at each batch took a
    /// tenth of the insert's time, and the write connection keeps five texts (a compiled 256-row
    /// insert weighs about 550 kB).
    pub async fn insert_notifications(&mut self, rows: &[NotificationRow]) -> Result<()> {
        const INSERT: &str = concat!("INSERT INTO notifications (", notification_columns!(), ")");
        const PLACED_INSERT: &str = concat!(
            "INSERT INTO notifications (rowid, ",
            notification_columns!(),
            ")"
        );
        let groups = by_practice(rows, |n| n.practice_id.as_str());
        let chunks: Vec<&[&NotificationRow]> = match self.backend {
            Backend::Postgres => groups
                .iter()
                .flat_map(|g| g.chunks(ROWS_PER_STATEMENT))
                .collect(),
            Backend::Sqlite => groups
                .iter()
                .flat_map(|g| fixed_chunks(g, &INSERT_CHUNKS))
                .collect(),
        };
        // SQLite: each row's place in the table, by due minute (`placement.rs`), for the whole
        // batch at once (the same rowids as chunk by chunk: the places are handed out in order).
        let rowids = match self.backend {
            Backend::Sqlite => {
                let due: Vec<Timestamp> = chunks
                    .iter()
                    .flat_map(|c| c.iter().map(|n| n.due_at))
                    .collect();
                self.place_notifications(&due).await?
            }
            Backend::Postgres => Vec::new(),
        };
        let backend = self.backend;
        let first_rows: Vec<usize> = chunks
            .iter()
            .scan(0, |first, chunk| {
                let this = *first;
                *first += chunk.len();
                Some(this)
            })
            .collect();
        let encode = |i: usize| -> Result<(String, Vec<Arg>)> {
            let (head, width) = match backend {
                Backend::Sqlite => (PLACED_INSERT, 25),
                Backend::Postgres => (INSERT, 24),
            };
            let mut sql = String::from(head);
            sql.push_str(" VALUES ");
            let mut args = Vec::with_capacity(chunks[i].len() * width);
            for (j, n) in chunks[i].iter().enumerate() {
                if j > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                sql.push_str(&placeholders(backend, args.len() + 1, width));
                sql.push(')');
                if let Some(&rowid) = rowids.get(first_rows[i] + j) {
                    args.push(Arg::Int(rowid));
                }
                args.extend(notification_args(n)?);
            }
            Ok((sql, args))
        };
        // Kept prepared on both backends (see above for SQLite).
        self.execute_encoded(chunks.len(), true, encode).await?;
        self.route_provider_ids(rows).await?;
        self.note_due(rows);
        Ok(())
    }

    /// Runs `count` statements, the `i`th encoded by `encode(i)` while the database runs the
    /// one before it ([`overlapped`]); `persistent` as [`sqlx::query::Query::persistent`].
    async fn execute_encoded(
        &mut self,
        count: usize,
        persistent: bool,
        encode: impl Fn(usize) -> Result<(String, Vec<Arg>)>,
    ) -> Result<()> {
        let mut next = if count > 0 { Some(encode(0)?) } else { None };
        for i in 0..count {
            let (sql, args) = next.take().expect("encoded while the one before ran");
            let statement =
                bind_all(sqlx::query(&sql).persistent(persistent), &args).execute(&mut *self.inner);
            let (done, encoded) = overlapped(statement, || {
                (i + 1 < count).then(|| encode(i + 1)).transpose()
            })
            .await;
            done?;
            next = encoded?;
        }
        Ok(())
    }

    /// [`Tx::update_notification`] of each, in one `UPDATE … FROM (VALUES …)` per chunk. A
    /// (practice, key) must appear once; rows that do not exist are left alone (and logged).
    pub async fn update_notifications(&mut self, rows: &[NotificationRow]) -> Result<()> {
        // Every column of `notification_args` but the key and `created_at`, which never changes.
        let all: Vec<usize> = (2..22).chain([23]).collect();
        self.update_columns(rows, &all).await
    }

    /// Writes what a dispatch decides about claimed rows — status, reason, decision time,
    /// attempts, lease, last error, rendered content, provider id, update time — and leaves
    /// the planner's columns (patient, rule, recipient, appointments, due time, window…) as they
    /// are. While a row is claimed nothing else writes those (reconciliation revises pending
    /// rows only), so for a claimed row this is [`Tx::update_notifications`]; it is cheaper
    /// because the indexes on the planner's columns are not rewritten.
    pub async fn update_notification_outcomes(&mut self, rows: &[NotificationRow]) -> Result<()> {
        let outcomes = rows
            .iter()
            .map(|row| EncodedOutcome::new(row, None))
            .collect::<Result<Vec<_>>>()?;
        self.write_outcomes(outcomes).await
    }

    /// [`Tx::update_notification_outcomes`] of rows encoded before the transaction began
    /// ([`crate::Store::encode_outcome`]), in the same order.
    pub async fn write_outcomes(&mut self, outcomes: Vec<EncodedOutcome>) -> Result<()> {
        let mut encoded = Vec::with_capacity(outcomes.len());
        let mut routed = Vec::new();
        for outcome in outcomes {
            if let Some(change) = outcome.due {
                self.note_due_change(&outcome.row.practice_id, change);
            }
            if let Some(provider_id) = outcome.provider_id {
                routed.push((provider_id, outcome.row.practice_id.clone()));
            }
            encoded.push(outcome.row);
        }
        self.write_columns(encoded, &OUTCOME_COLUMNS).await?;
        let routed: Vec<(&str, &str)> = routed
            .iter()
            .map(|(id, practice)| (id.as_str(), practice.as_str()))
            .collect();
        self.insert_routes(Route::ProviderMessage, &routed).await?;
        Ok(())
    }

    /// Sets, for each row, the columns at these positions of `notification_args` (the key
    /// columns 0 and 1 identify the row).
    async fn update_columns(&mut self, rows: &[NotificationRow], columns: &[usize]) -> Result<()> {
        let encoded = rows
            .iter()
            .map(|n| EncodedRow::new(n, columns))
            .collect::<Result<Vec<_>>>()?;
        self.write_columns(encoded, columns).await?;
        self.note_written_columns(rows, columns);
        Ok(())
    }

    /// Writes encoded rows: on SQLite one statement a row, on PostgreSQL one `UPDATE … FROM
    /// (VALUES …)` per practice and chunk.
    async fn write_columns(&mut self, rows: Vec<EncodedRow>, columns: &[usize]) -> Result<()> {
        if self.backend == Backend::Sqlite {
            return self.write_columns_through_scratch(rows, columns).await;
        }
        let groups = by_practice(rows, |r: &EncodedRow| r.practice_id.as_str());
        for group in groups {
            let mut group = group.into_iter().peekable();
            while group.peek().is_some() {
                let chunk: Vec<EncodedRow> = group.by_ref().take(ROWS_PER_STATEMENT).collect();
                self.write_values_chunk(chunk, columns).await?;
            }
        }
        Ok(())
    }

    /// One PostgreSQL `UPDATE … FROM (VALUES …)` of rows of one practice.
    async fn write_values_chunk(
        &mut self,
        chunk: Vec<EncodedRow>,
        columns: &[usize],
    ) -> Result<()> {
        // VALUES columns are named column1, column2…; each row's values are its practice and
        // key, then its columns. The casts give PostgreSQL their types (a VALUES list of bare
        // parameters would be text, and NULL has none).
        let set: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, &c)| format!("{} = v.column{}", COLUMN_NAMES[c], i + 3))
            .collect();
        let mut sql = format!("UPDATE notifications SET {} FROM (VALUES ", set.join(", "));
        let rows = chunk.len();
        let practice_id = chunk[0].practice_id.clone();
        let mut args = Vec::with_capacity(rows * (columns.len() + 2) + 1);
        for (i, mut row) in chunk.into_iter().enumerate() {
            // Encoded as the columns then the practice and key (SQLite's statement order).
            row.args.rotate_right(2);
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for (j, arg) in row.args.iter().enumerate() {
                if j > 0 {
                    sql.push_str(", ");
                }
                let ty = match arg {
                    Arg::Int(_) | Arg::OptInt(_) => "BIGINT",
                    Arg::Text(_) | Arg::OptText(_) => "TEXT",
                    Arg::OptBlob(_) => "BYTEA",
                };
                sql.push_str("CAST(");
                push_param(&mut sql, self.backend, args.len() + j + 1);
                sql.push_str(" AS ");
                sql.push_str(ty);
                sql.push(')');
            }
            sql.push(')');
            args.extend(row.args);
        }
        // The chunk's one practice, also as a parameter: a distributed database (Citus)
        // then sends the whole statement to that practice's shard.
        sql.push_str(
            ") AS v WHERE notifications.practice_id = v.column1 \
             AND notifications.key = v.column2 AND notifications.practice_id = ",
        );
        push_param(&mut sql, self.backend, args.len() + 1);
        args.push(Arg::Text(practice_id));
        let done = bind_all(big_query(self.backend, &sql), &args)
            .execute(&mut *self.inner)
            .await?;
        warn_unless_updated(rows, done.rows_affected());
        Ok(())
    }

    /// [`Tx::write_columns`] on SQLite: the rows go into the connection's scratch table
    /// ([`SQLITE_SCRATCH`]) in multi-row INSERTs, then one UPDATE per practice sets their columns
    /// from it, each row found by its primary key, and the scratch table is emptied.
    ///
    /// What this replaced, one single-row UPDATE per row (several to a query text), cost the
    /// connection's thread a result sent back per row and SQLite a statement run per row; the
    /// record of a dispatch batch of 500 held the write turn 6–8 ms (issue 18, session 20). The
    /// UPDATE reads the scratch table through its primary key, so its time grows with its rows,
    /// not with their square as `UPDATE … FROM (VALUES …)` does on SQLite (117 ms for 200
    /// rows, session 11): VALUES has no index to look a row up by.
    async fn write_columns_through_scratch(
        &mut self,
        rows: Vec<EncodedRow>,
        columns: &[usize],
    ) -> Result<()> {
        let names: Vec<&str> = columns.iter().map(|&c| COLUMN_NAMES[c]).collect();
        let names = names.join(", ");
        let per_row = columns.len() + 2;
        for group in by_practice(rows, |r: &EncodedRow| r.practice_id.as_str()) {
            let practice_id = group[0].practice_id.clone();
            let count = group.len();
            let sizes: Vec<usize> = fixed_chunks(&group, &INSERT_CHUNKS)
                .iter()
                .map(|chunk| chunk.len())
                .collect();
            let mut group = group.into_iter();
            for size in sizes {
                // Each row's arguments are its columns, then its practice and key.
                let mut sql = format!(
                    "INSERT OR REPLACE INTO temp.notification_writes ({names}, practice_id, key) \
                     VALUES "
                );
                for i in 0..size {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push('(');
                    sql.push_str(&placeholders(self.backend, per_row * i + 1, per_row));
                    sql.push(')');
                }
                let args: Vec<Arg> = group.by_ref().take(size).flat_map(|row| row.args).collect();
                // Kept prepared: the chunks take the few sizes of `INSERT_CHUNKS`.
                bind_all(sqlx::query(&sql), &args)
                    .execute(&mut *self.inner)
                    .await?;
            }
            // Two statements, one request: the UPDATE's rows, then the scratch table's.
            let sql = format!(
                "UPDATE notifications SET ({names}) = (SELECT {names} \
                 FROM temp.notification_writes AS w \
                 WHERE w.practice_id = notifications.practice_id AND w.key = notifications.key) \
                 WHERE practice_id = $1 AND key IN ( \
                 SELECT key FROM temp.notification_writes WHERE practice_id = $1); \
                 DELETE FROM temp.notification_writes;"
            );
            let done = sqlx::query(&sql)
                .bind(&practice_id)
                .execute(&mut *self.inner)
                .await?;
            // Both statements' rows: the UPDATE's and the scratch table's `count`.
            warn_unless_updated(count, done.rows_affected().saturating_sub(count as u64));
        }
        Ok(())
    }

    /// Tells the summary about rows written with these columns.
    fn note_written_columns(&mut self, rows: &[NotificationRow], columns: &[usize]) {
        // The summary learns each row's claimable instant from the columns written: a pending
        // row whose due time was not written, or a sending row whose lease end was not, has one
        // this transaction does not know, and its practice's summary is recomputed instead.
        let writes_due = columns.contains(&11);
        let writes_lease = columns.contains(&18);
        for n in rows {
            let known = match n.status {
                Status::Pending => writes_due,
                Status::Sending => writes_lease,
                _ => true,
            };
            if known {
                self.note_due(std::slice::from_ref(n));
            } else {
                self.note_due_change(&n.practice_id, super::due::DueChange::Recompute);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{INSERT_CHUNKS, fixed_chunks};

    #[test]
    fn fixed_chunks_cover_every_row_once_in_order_with_the_largest_sizes_that_fit() {
        let rows: Vec<usize> = (0..5000).collect();
        let chunks = fixed_chunks(&rows, &INSERT_CHUNKS);
        let lengths: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(lengths[..19], [256; 19]);
        assert_eq!(lengths[19..], [64, 64, 4, 4]);
        assert_eq!(chunks.concat(), rows);
        let lengths: Vec<usize> = fixed_chunks(&rows[..500], &INSERT_CHUNKS)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(lengths, [256, 64, 64, 64, 16, 16, 16, 4]);
        assert!(fixed_chunks::<usize>(&[], &INSERT_CHUNKS).is_empty());
        assert_eq!(
            fixed_chunks(&rows[..3], &INSERT_CHUNKS),
            [&[0][..], &[1], &[2]]
        );
    }
}
