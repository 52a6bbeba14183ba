//! The queue's rows (`notifications`): one by one, by patient, appointment, document or
//! provider id, the filtered lists of the API, and the counts by status. The claim is in
//! `due.rs`, the batch reads and writes in `batch.rs`.

use sqlx::any::AnyRow;

use super::Tx;
use super::codec::{
    Arg, Cols, SqlBuilder, bind_all, flag, like_escape, ms, opt_ms, pack_json, to_json,
};
use super::routes::Route;
use crate::{Backend, NotificationFilter, NotificationRow, Result, Status};

impl Tx {
    /// Every notification of the patient's scope (reconciliation input), by key.
    pub async fn patient_notifications(
        &mut self,
        practice_id: &str,
        patient_id: &str,
    ) -> Result<Vec<NotificationRow>> {
        let rows = sqlx::query(PATIENT_NOTIFICATIONS)
            .bind(practice_id)
            .bind(patient_id)
            .fetch_all(&mut *self.inner)
            .await?;
        let mut found = rows
            .iter()
            .map(notification_from_row)
            .collect::<Result<Vec<_>>>()?;
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
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
    /// in whichever practice routed it at the hand-off (`lookup_routes`), then read within that
    /// practice. Provider ids are unique per provider account; should two practices' rows share
    /// one, the first practice to route it is answered.
    pub async fn notification_by_provider_id(
        &mut self,
        provider_id: &str,
    ) -> Result<Option<NotificationRow>> {
        let Some(practice_id) = self.route(Route::ProviderMessage, provider_id).await? else {
            return Ok(None);
        };
        let row = sqlx::query(concat!(
            "SELECT ",
            notification_columns!(),
            " FROM notifications WHERE practice_id = $1 AND provider_id = $2 \
             ORDER BY key LIMIT 1"
        ))
        .bind(practice_id)
        .bind(provider_id)
        .fetch_optional(&mut *self.inner)
        .await?;
        row.as_ref().map(notification_from_row).transpose()
    }

    pub async fn insert_notification(&mut self, n: &NotificationRow) -> Result<()> {
        let mut args = notification_args(n)?;
        let query = match self.backend {
            Backend::Postgres => sqlx::query(concat!(
                "INSERT INTO notifications (",
                notification_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                 $16, $17, $18, $19, $20, $21, $22, $23, $24)"
            )),
            // The row's place in the table, by due minute (`placement.rs`).
            Backend::Sqlite => {
                let rowid = self.place_notifications(&[n.due_at]).await?[0];
                args.push(Arg::Int(rowid));
                sqlx::query(concat!(
                    "INSERT INTO notifications (",
                    notification_columns!(),
                    ", rowid) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                     $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)"
                ))
            }
        };
        bind_all(query, &args).execute(&mut *self.inner).await?;
        self.route_provider_ids(std::slice::from_ref(n)).await?;
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
        let done = bind_all(query, &args).execute(&mut *self.inner).await?;
        if done.rows_affected() == 0 {
            tracing::warn!(practice = %n.practice_id, key = %n.key, "update of an unknown notification");
        }
        self.route_provider_ids(std::slice::from_ref(n)).await?;
        self.note_due(std::slice::from_ref(n));
        Ok(())
    }

    pub async fn list_notifications(
        &mut self,
        practice_id: &str,
        filter: &NotificationFilter,
    ) -> Result<Vec<NotificationRow>> {
        let sql = list_statement(practice_id, filter);
        let rows = bind_all(sqlx::query(&sql.text), &sql.args)
            .fetch_all(&mut *self.inner)
            .await?;
        rows.iter().map(notification_from_row).collect()
    }

    /// The patient's rows whose `appointments` contain this appointment id, by due_at.
    ///
    /// Every row about an appointment is its patient's: a plan, a task run and an answer to an
    /// SMS write rows of one patient about that patient's appointments, and an appointment never
    /// changes patient (a booking under an id already booked with other details is refused).
    /// So the rows are looked for among the patient's (`notifications_patient`), not among all
    /// the practice's, which a large practice holds by the million (issue 18, session 18).
    pub async fn appointment_notifications(
        &mut self,
        practice_id: &str,
        patient_id: &str,
        appointment_id: &str,
    ) -> Result<Vec<NotificationRow>> {
        // `appointments` is a JSON array of strings: look for the id as a quoted JSON string,
        // then check exactly (an id that is a suffix of another's JSON text must not match).
        let quoted = to_json("notifications", appointment_id)?;
        let pattern = format!("%{}%", like_escape(&quoted));
        let rows = sqlx::query(APPOINTMENT_NOTIFICATIONS)
            .bind(practice_id)
            .bind(patient_id)
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
        found.sort_by(|a, b| (a.due_at, &a.key).cmp(&(b.due_at, &b.key)));
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
                sqlx::query(concat!(
                    "SELECT ",
                    read_status!(),
                    " AS status, channel, COUNT(*) AS n \
                     FROM notifications WHERE practice_id = $1 GROUP BY 1, 2 ORDER BY 1, 2"
                ))
                .bind(practice_id)
                .fetch_all(&mut *self.inner)
                .await?
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    read_status!(),
                    " AS status, channel, COUNT(*) AS n \
                     FROM notifications GROUP BY 1, 2 ORDER BY 1, 2"
                ))
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
}

/// The arguments of an insert in [`notification_columns!`] order.
pub(super) fn notification_args(n: &NotificationRow) -> Result<Vec<Arg>> {
    (0..NOTIFICATION_COLUMNS)
        .map(|c| notification_arg(n, c))
        .collect()
}

/// How many columns [`notification_columns!`] names.
pub(super) const NOTIFICATION_COLUMNS: usize = 24;

/// The argument of the column at position `c` of [`notification_columns!`]: an update that
/// writes a few columns (a dispatch's outcome) builds those only, and serializes none of the
/// planner's JSON columns it leaves alone. The audit copy (`rendered`) is packed
/// ([`pack_json`]).
pub(super) fn notification_arg(n: &NotificationRow, c: usize) -> Result<Arg> {
    Ok(match c {
        0 => Arg::Text(n.practice_id.clone()),
        1 => Arg::Text(n.key.clone()),
        2 => Arg::Text(n.patient_id.clone()),
        3 => Arg::Text(n.rule.clone()),
        4 => Arg::Text(n.kind.as_str().to_string()),
        5 => Arg::Text(n.channel.as_str().to_string()),
        6 => Arg::Text(n.recipient.to_string()),
        7 => Arg::Text(to_json("notifications", &n.appointments)?),
        8 => Arg::OptText(n.document.clone()),
        9 => Arg::OptText(n.task.clone()),
        10 => Arg::Int(flag(n.auto_resend)),
        11 => Arg::Int(ms(n.due_at)),
        12 => Arg::OptInt(opt_ms(n.window_end)),
        13 => Arg::Text(stored_status(n.status).to_string()),
        14 => Arg::OptText(n.reason.map(|r| r.as_str().to_string())),
        15 => Arg::OptInt(opt_ms(n.decided_at)),
        16 => Arg::Int(i64::from(n.attempts)),
        17 => Arg::OptText(match n.status {
            Status::Pending => None,
            // A row being sent is a pending row with a lease owner (see `stored_status`).
            Status::Sending => Some(n.lease_owner.clone().unwrap_or_default()),
            _ => n.lease_owner.clone(),
        }),
        18 => Arg::OptInt(match n.status {
            Status::Pending => None,
            _ => opt_ms(n.lease_until),
        }),
        19 => Arg::OptText(n.last_error.clone()),
        20 => {
            let json = n
                .rendered
                .as_ref()
                .map(|r| to_json("notifications", r))
                .transpose()?;
            Arg::OptBlob(json.map(|j| pack_json(&j)))
        }
        21 => Arg::OptText(n.provider_id.clone()),
        22 => Arg::Int(ms(n.created_at)),
        23 => Arg::Int(ms(n.updated_at)),
        _ => unreachable!("notification_columns! names {NOTIFICATION_COLUMNS} columns"),
    })
}

/// The `status` a row is stored with. A row being sent is stored `pending` with its lease
/// (`lease_owner` not null), and read back as `sending` ([`notification_from_cols`]); a
/// pending row is stored without one. So a claim writes only the lease columns, which no index
/// names, and PostgreSQL can keep the new version of the row on its page without a new entry
/// in any index (a HOT update; migration 0024, issue 18, session 23); before, the claim changed
/// `status`, which the queue's partial indexes name, and each claimed row took a new entry in
/// the table's every index. The statements that count rows by status read it through
/// `read_status!()`.
/// The text of the list's statement for `filter`, for `admin::list_notifications_statement`.
pub(crate) fn list_statement_text(practice_id: &str, filter: &NotificationFilter) -> String {
    list_statement(practice_id, filter).text
}

/// The list's statement (`Tx::list_notifications`) and its arguments.
pub(super) fn list_statement(practice_id: &str, filter: &NotificationFilter) -> SqlBuilder {
    let mut sql = SqlBuilder::new(concat!(
        "SELECT ",
        notification_columns!(),
        " FROM notifications"
    ));
    let p = sql.arg(Arg::Text(practice_id.to_string()));
    sql.push(&format!(" WHERE practice_id = {p}"));
    if let Some(status) = filter.status {
        // A literal (one of the statuses' fixed names), not a parameter: the planners can then
        // use `notifications_failed` (migration 0025), whose predicate a parameter never proves.
        sql.push(&format!(" AND status = '{}'", stored_status(status)));
        match status {
            Status::Pending => sql.push(" AND lease_owner IS NULL"),
            Status::Sending => sql.push(" AND lease_owner IS NOT NULL"),
            _ => {}
        }
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
    sql
}

pub(crate) fn stored_status(status: Status) -> &'static str {
    match status {
        Status::Sending => Status::Pending.as_str(),
        status => status.as_str(),
    }
}

pub(super) fn notification_from_row(row: &AnyRow) -> Result<NotificationRow> {
    notification_from_cols(&Cols::new(row, "notifications"))
}

/// The names of `notification_columns!()`, in order: a row's values in a JSON array of rows
/// (`codec::json_rows`).
pub(super) fn notification_column_names() -> Vec<&'static str> {
    notification_columns!().split(", ").collect()
}

/// A notification from its columns, whether a row of the database or one of a JSON array.
pub(super) fn notification_from_cols(c: &Cols<'_>) -> Result<NotificationRow> {
    use rappel_domain::notification::{Channel, Kind, Reason, Recipient};
    let attempts = c.int("attempts")?;
    let lease_owner = c.opt_text("lease_owner")?;
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
        status: match c.parse("status", Status::parse)? {
            Status::Pending if lease_owner.is_some() => Status::Sending,
            status => status,
        },
        reason: c.opt_parse("reason", Reason::parse)?,
        decided_at: c.opt_ts("decided_at")?,
        attempts: i32::try_from(attempts).map_err(|e| c.corrupt("attempts", e))?,
        lease_owner,
        lease_until: c.opt_ts("lease_until")?,
        last_error: c.opt_text("last_error")?,
        rendered: c.opt_packed_json("rendered")?,
        provider_id: c.opt_text("provider_id")?,
        created_at: c.ts("created_at")?,
        updated_at: c.ts("updated_at")?,
    })
}

/// [`Tx::patient_notifications`]: the practice, the patient. Without an `ORDER BY key`: the rows
/// are sorted after, in Rust. `notifications_patient` holds no key (migration 0023), and with the
/// order in the statement SQLite walked the practice's every row in the primary key rather than
/// sort a patient's few (migration 0005); `tests/plans.rs` checks its plan.
pub(crate) const PATIENT_NOTIFICATIONS: &str = concat!(
    "SELECT ",
    notification_columns!(),
    " FROM notifications WHERE practice_id = $1 AND patient_id = $2"
);

/// [`Tx::appointment_notifications`]: the practice, the patient, the `LIKE` pattern of the
/// appointment's quoted id. Without an `ORDER BY`: the rows are sorted after, in Rust, since
/// `ORDER BY due_at, key` made both planners walk the practice's every row in `notifications_due`
/// to skip a sort of a few rows (`tests/plans.rs`).
pub(crate) const APPOINTMENT_NOTIFICATIONS: &str = concat!(
    "SELECT ",
    notification_columns!(),
    " FROM notifications WHERE practice_id = $1 AND patient_id = $2 \
     AND appointments LIKE $3 ESCAPE '\\'"
);
