//! The queue's statements are planned on the indexes meant for them, by a planner that has no
//! statistics (issue 18, session 10).
//!
//! A fresh database, a table that grew since its last ANALYZE (or a server with autovacuum off),
//! and SQLite, which keeps no statistics unless asked: the planners then see every index led by
//! `practice_id` as equally good for `practice_id = $1`. They once took the provider id's index
//! for the summary's recomputation (SQLite) and for the read of many patients' notifications
//! (PostgreSQL's cached generic plan), and read every row of the practice for each: dispatch on
//! SQLite fell to 900 messages/s and ingestion on PostgreSQL to 180 bookings/s on 100,000 rows.
//! Here each statement's plan is read (`EXPLAIN QUERY PLAN`; PostgreSQL's generic plan, the one
//! a prepared statement keeps) on an empty, never analyzed database, and must reach
//! `notifications` only through the expected index. The read of an appointment's notifications
//! is checked too (session 18): with an `ORDER BY due_at, key` both planners walked the
//! practice's every row in `notifications_due` rather than sort a patient's few.

// The conformance macro of the shared harness is not used here.
#[allow(unused_macros, unused_imports)]
mod common;

use common::{Cleanup, Flavor, clean, open, with_database};
use rappel_store::admin::{
    APPOINTMENT_NOTIFICATIONS, PATIENT_NOTIFICATIONS, PURGE_EXPIRED_ROUTES,
    list_notifications_statement, notifications_of_patients_statement, queue_statements,
};
use rappel_store::{Backend, NotificationFilter, Status};

/// The dashboard's read of a practice's recent failures (`Engine::dashboard`): failed, due since
/// an instant, in due order.
fn failed_since() -> String {
    list_notifications_statement(&NotificationFilter {
        status: Some(Status::Failed),
        since: Some(jiff::Timestamp::UNIX_EPOCH),
        limit: 500,
        ..NotificationFilter::default()
    })
}
use sqlx::Row;

/// What each statement must use to reach `notifications`, whatever else its plan says.
fn expected(name: &str) -> &'static [&'static str] {
    match name {
        // A row being sent is stored `pending` with its lease (migration 0024): the queue has
        // one index.
        "recompute the summary" => &["notifications_pending"],
        "claim on SQLite: rows" => &["notifications_pending"],
        // Each claimed row found by its rowid: no index of the table (see `check`).
        "claim on SQLite: update" => &[],
        // The update finds each claimed row by its place (`ctid`): see `check`.
        "claim on PostgreSQL" => &["notifications_pending"],
        "patients' notifications"
        | "a patient's notifications"
        | "an appointment's notifications" => &["notifications_patient"],
        // The dashboard's recent failures (migration 0025).
        "failed messages since" => &["notifications_failed"],
        other => panic!("no expectation for {other}"),
    }
}

/// The indexes a plan reaches `notifications` through, and whether it reads the table whole.
fn accesses(plan: &str) -> (Vec<String>, bool) {
    let mut indexes = Vec::new();
    let mut whole = false;
    for line in plan.lines() {
        let line = line.trim();
        // SQLite: "SEARCH notifications USING INDEX x (…)", "SCAN notifications";
        // PostgreSQL: "Index Scan using x on notifications", "Seq Scan on notifications".
        if line.contains("SCAN notifications") || line.contains("Seq Scan on notifications") {
            whole = true;
        }
        for marker in [
            "USING INDEX ",
            "USING COVERING INDEX ",
            "Index Scan using ",
            "Index Only Scan using ",
            "Bitmap Index Scan on ",
        ] {
            if let Some(rest) = line.split(marker).nth(1) {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name.starts_with("notifications") || name.starts_with("sqlite_autoindex_notif") {
                    indexes.push(name);
                }
            }
        }
    }
    (indexes, whole)
}

/// The URL of the database `open` made, for a connection of the test's own.
fn url_of(cleanup: &Cleanup) -> String {
    match cleanup {
        Cleanup::Files(path) => format!("sqlite://{}", path.display()),
        Cleanup::PostgresDatabase { admin_url, name } => with_database(admin_url, name),
        Cleanup::Nothing => unreachable!("a file or a database"),
    }
}

fn check(name: &str, plan: &str) {
    if matches!(
        name,
        "patients' notifications" | "a patient's notifications" | "an appointment's notifications"
    ) {
        // Its index's second column must be searched, not filtered: a plan that walks every
        // entry of the practice in `notifications_patient` and filters the patients uses the
        // right index and still reads the whole practice (the `= ANY($2)` shape's plan on an
        // empty table, session 12).
        let searched = plan.lines().any(|line| {
            (line.contains("Index Cond:") && line.contains("patient_id ="))
                || line.contains("patient_id=?")
        });
        assert!(
            searched,
            "{name}: patient_id is not an index condition:\n{plan}"
        );
    }
    if name == "recompute the summary" {
        // The rows in flight are read up to the earliest row waiting, a range of the index, not
        // the practice's every open row.
        let bounded = plan.lines().any(|line| {
            (line.contains("Index Cond:") && line.contains("due_at <="))
                || line.contains("due_at<?")
        });
        assert!(
            bounded,
            "{name}: the rows in flight are not a range:\n{plan}"
        );
        // Each read walks the index in due order and stops: a bitmap scan reads every pending
        // row of the practice to sort them (PostgreSQL's generic plan for the bound of the rows
        // in flight, without statistics: 142 ms at 400,000 rows, session 23).
        assert!(
            !plan.contains("Bitmap Heap Scan on notifications"),
            "{name}: reads the practice's every pending row:\n{plan}"
        );
    }
    if name == "claim on PostgreSQL" {
        assert!(
            plan.contains("Tid Scan on notifications"),
            "{name}: the update does not find its rows by ctid:\n{plan}"
        );
    }
    let (indexes, whole) = accesses(plan);
    assert!(!whole, "{name}: reads notifications whole:\n{plan}");
    if name == "claim on SQLite: update" {
        assert!(
            plan.contains("SEARCH notifications USING INTEGER PRIMARY KEY (rowid=?)"),
            "{name}: the update does not find its rows by rowid:\n{plan}"
        );
    } else {
        assert!(
            !indexes.is_empty(),
            "{name}: no index of notifications:\n{plan}"
        );
    }
    for index in &indexes {
        assert!(
            expected(name).contains(&index.as_str()),
            "{name}: reaches notifications through {index}, expected one of {:?}:\n{plan}",
            expected(name)
        );
    }
}

/// A fresh SQLite file with the migrations applied, and a connection of its own to read plans.
async fn migrated_sqlite_file() -> (sqlx::SqliteConnection, Cleanup) {
    let (store, cleanup) = open(Flavor::SqliteFile).await;
    store.migrate().await.unwrap();
    let conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url_of(&cleanup))
        .await
        .unwrap();
    (conn, cleanup)
}

/// SQLite's `EXPLAIN QUERY PLAN` of `sql`, a step per line.
async fn sqlite_plan(conn: &mut sqlx::SqliteConnection, name: &str, sql: &str) -> Vec<String> {
    let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
        .fetch_all(conn)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    rows.iter().map(|r| r.get::<String, _>("detail")).collect()
}

#[tokio::test]
async fn sqlite_plans_the_queue_on_its_indexes() {
    let (mut conn, cleanup) = migrated_sqlite_file().await;
    let patients = notifications_of_patients_statement(Backend::Sqlite, 2);
    let failed = failed_since();
    let statements = queue_statements()
        .into_iter()
        .filter(|(name, _)| *name != "claim on PostgreSQL")
        .chain([
            ("patients' notifications", patients.as_str()),
            ("a patient's notifications", PATIENT_NOTIFICATIONS),
            ("an appointment's notifications", APPOINTMENT_NOTIFICATIONS),
            ("failed messages since", failed.as_str()),
        ]);
    for (name, sql) in statements {
        check(name, &sqlite_plan(&mut conn, name, sql).await.join("\n"));
    }
    drop(conn);
    clean(cleanup).await;
}

/// Only sessions' routes expire; the expiry index holds only those (migration 0018), so that the
/// routes written with every appointment link and provider id do not each add an entry nobody
/// reads. The purge must still find the expired ones through it, not by reading every route.
#[tokio::test]
async fn sqlite_purges_expired_routes_through_the_partial_expiry_index() {
    let (mut conn, cleanup) = migrated_sqlite_file().await;
    let plan = sqlite_plan(&mut conn, "purge of expired routes", PURGE_EXPIRED_ROUTES).await;
    assert!(
        plan.iter()
            .any(|step| step.contains("USING INDEX lookup_routes_expiry")),
        "{plan:?}"
    );
    let partial: String = sqlx::query_scalar(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'lookup_routes_expiry'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(
        partial.contains("WHERE expires_at IS NOT NULL"),
        "{partial}"
    );
    drop(conn);
    clean(cleanup).await;
}

#[tokio::test]
async fn postgres_generic_plans_use_the_queue_indexes() {
    postgres_generic_plans(0).await;
}

/// The same on a table of 500,000 pending rows that was never analyzed (a bench's database on a
/// server without autovacuum; any table between two ANALYZEs): the planner then knows the
/// table's size but not what is in it, and a lone `ORDER BY due_at LIMIT 1` of the summary's
/// recomputation became a bitmap scan of every pending row and a sort (session 23). On an empty
/// table the same statement was planned on the index.
#[tokio::test]
async fn postgres_generic_plans_use_the_queue_indexes_on_a_large_table_without_statistics() {
    postgres_generic_plans(100_000).await;
}

/// Checks the generic plans after `bookings` × 5 pending rows were put in practice `p`.
async fn postgres_generic_plans(bookings: i64) {
    let (store, cleanup) = open(Flavor::Postgres).await;
    store.migrate().await.unwrap();
    let url = url_of(&cleanup);
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    if bookings > 0 {
        sqlx::raw_sql(&format!(
            "INSERT INTO practices (id, name, preset, policy, timezone, settings, created_at) \
             VALUES ('p', 'P', 'doctolib', NULL, 'Europe/Paris', '{{}}', 0); \
             INSERT INTO notifications (practice_id, key, patient_id, rule, kind, channel, \
               recipient, appointments, document, task, auto_resend, due_at, window_end, status, \
               reason, decided_at, attempts, lease_owner, lease_until, last_error, rendered, \
               provider_id, created_at, updated_at) \
             SELECT 'p', 'p:a' || lpad(i::text, 8, '0') || '/confirmation_email/email/' || r, \
               'p' || i, 'rule' || r, 'reminder', 'sms', 'patient:p' || lpad(i::text, 8, '0'), \
               '[{{\"id\":\"a' || i || '\",\"start\":\"2026-12-08T10:00:00+01:00\"}}]', \
               NULL, NULL, 0, 1000 * i + r, NULL, 'pending', NULL, NULL, 0, NULL, NULL, NULL, \
               NULL, NULL, 0, 0 \
             FROM generate_series(1, {bookings}) AS i, generate_series(0, 4) AS r"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    // The plan a prepared statement keeps after its first executions, made without statistics.
    sqlx::raw_sql("SET plan_cache_mode = force_generic_plan")
        .execute(&mut conn)
        .await
        .unwrap();
    let patients = notifications_of_patients_statement(Backend::Postgres, 2);
    let failed = failed_since();
    let statements = queue_statements()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("claim on SQLite"))
        .chain([
            ("patients' notifications", patients.as_str()),
            ("a patient's notifications", PATIENT_NOTIFICATIONS),
            ("an appointment's notifications", APPOINTMENT_NOTIFICATIONS),
            ("failed messages since", failed.as_str()),
        ]);
    for (i, (name, sql)) in statements.enumerate() {
        // Parameters typed as the store binds them: text, except the claim's instants and limit.
        let types = match name {
            "recompute the summary" => "text",
            "claim on PostgreSQL" => "text, bigint, bigint, bigint, text",
            "an appointment's notifications" => "text, text, text",
            "failed messages since" => "text, bigint, bigint",
            _ => "text, text",
        };
        let args = match name {
            "recompute the summary" => "'p'",
            "claim on PostgreSQL" => "'w', 2, 1, 10, 'p'",
            "an appointment's notifications" => "'p', 'p0', '%\"a1\"%'",
            "a patient's notifications" => "'p', 'p0'",
            "failed messages since" => "'p', 0, 500",
            _ => "'p', '{\"p0\",\"p1\"}'",
        };
        sqlx::raw_sql(&format!("PREPARE q{i} ({types}) AS {sql}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let rows = sqlx::query(&format!("EXPLAIN EXECUTE q{i} ({args})"))
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let plan: Vec<String> = rows
            .iter()
            .map(|r| r.get::<String, _>("QUERY PLAN"))
            .collect();
        check(name, &plan.join("\n"));
    }
    drop(conn);
    clean(cleanup).await;
}
