//! Creating and dropping throw-away PostgreSQL databases, for benchmarks and tests that need a
//! fresh database next to an existing server.

use sqlx::Connection;

use crate::Result;

/// Creates `<prefix>_<random>` on the server of `base_url` (any database the user may connect
/// to) and returns `(url of the new database, its name)`.
pub async fn create_postgres_database(base_url: &str, prefix: &str) -> Result<(String, String)> {
    create_postgres_database_in(base_url, prefix, None).await
}

/// [`create_postgres_database`] with the given locale (`fr_FR.utf8`: how a server set up in
/// French creates its databases) instead of the server's default; the locale must be one the
/// server's system has. A name of anything but letters, digits and `_.@-` is refused.
pub async fn create_postgres_database_in(
    base_url: &str,
    prefix: &str,
    locale: Option<&str>,
) -> Result<(String, String)> {
    let with_locale = match locale {
        None => String::new(),
        Some(locale)
            if !locale.is_empty()
                && locale
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c)) =>
        {
            format!(" TEMPLATE template0 LOCALE '{locale}'")
        }
        Some(locale) => {
            return Err(sqlx::Error::Configuration(
                format!("`{locale}` is not a locale name (letters, digits and _.@- only)").into(),
            )
            .into());
        }
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = format!("{prefix}_{}_{:x}", std::process::id(), nanos & 0xffff_ffff);
    let mut conn = sqlx::PgConnection::connect(base_url).await?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\"{with_locale}"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok((with_database(base_url, &name), name))
}

/// Drops a database made by [`create_postgres_database`], closing its remaining connections.
pub async fn drop_postgres_database(base_url: &str, name: &str) -> Result<()> {
    let mut conn = sqlx::PgConnection::connect(base_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

/// How many rows each table of the database at `url` holds (SQLite or PostgreSQL; the
/// migrations' own bookkeeping left out), by exact `count(*)`: a benchmark takes it before and
/// after a phase on its throw-away database to report the rows that phase inserted.
pub async fn table_rows(url: &str) -> Result<std::collections::BTreeMap<String, i64>> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let list = if url.starts_with("sqlite:") {
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    } else {
        "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()"
    };
    let names: Vec<String> = sqlx::query_scalar(list).fetch_all(&mut conn).await?;
    let mut rows = std::collections::BTreeMap::new();
    for name in names.into_iter().filter(|n| n != "_sqlx_migrations") {
        let count: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM \"{}\"",
            name.replace('"', "\"\"")
        ))
        .fetch_one(&mut conn)
        .await?;
        rows.insert(name, count);
    }
    conn.close().await?;
    Ok(rows)
}

/// `postgres://u@h:5432/postgres?x=y` with the database part replaced by `name`.
pub fn with_database(base_url: &str, name: &str) -> String {
    let (head, query) = match base_url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (base_url, None),
    };
    let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = head[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(head.len());
    let mut url = format!("{}/{name}", &head[..authority_end]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// The queue's statements whose plans `tests/plans.rs` checks on both backends, by name: the
/// summary's recomputation and each backend's claim. The others checked there are the read of
/// many patients' notifications ([`notifications_of_patients_statement`]), of one patient's
/// ([`PATIENT_NOTIFICATIONS`]) and of an appointment's ([`APPOINTMENT_NOTIFICATIONS`]).
pub fn queue_statements() -> [(&'static str, &'static str); 4] {
    [
        ("recompute the summary", crate::imp::due::RECOMPUTE_DUE),
        ("claim on SQLite: rows", crate::imp::due::CLAIM_SQLITE_ROWS),
        (
            "claim on SQLite: update",
            crate::imp::due::CLAIM_SQLITE_UPDATE,
        ),
        ("claim on PostgreSQL", crate::imp::due::CLAIM_POSTGRES),
    ]
}

/// The read of an appointment's notifications among its patient's
/// (`Tx::appointment_notifications`), for `tests/plans.rs`: the practice, the patient, a `LIKE`
/// pattern.
pub const APPOINTMENT_NOTIFICATIONS: &str = crate::imp::notifications::APPOINTMENT_NOTIFICATIONS;

/// The read of a patient's notifications (`Tx::patient_notifications`), for `tests/plans.rs`: the
/// practice, the patient.
pub const PATIENT_NOTIFICATIONS: &str = crate::imp::notifications::PATIENT_NOTIFICATIONS;

/// The purge of expired routes (sign-in sessions'), for the plans test: it must read the partial
/// expiry index, which holds the routes that expire and only those.
pub const PURGE_EXPIRED_ROUTES: &str = crate::imp::routes::PURGE_EXPIRED_ROUTES;

/// The read of many patients' notifications (`Tx::notifications_of_patients`) as the store sends
/// it to `backend` for `patients` ids, for `tests/plans.rs`: on PostgreSQL two parameters (the
/// practice, the ids as one text array), on SQLite the practice and one `?` per id.
pub fn notifications_of_patients_statement(backend: crate::Backend, patients: usize) -> String {
    crate::imp::batch::notifications_of_patients_statement(backend, patients)
}

/// The list of a practice's notifications (`Tx::list_notifications`) as the store sends it for
/// `filter` (practice `p`), for `tests/plans.rs`: the practice, then the filter's parameters in
/// the order of `NotificationFilter`'s fields, then the limit.
pub fn list_notifications_statement(filter: &crate::NotificationFilter) -> String {
    crate::imp::notifications::list_statement_text("p", filter)
}

#[cfg(test)]
mod tests {
    use super::{create_postgres_database_in, with_database};

    #[tokio::test]
    async fn a_locale_that_is_not_a_name_is_refused_before_anything_is_sent() {
        // No server listens on port 9: the refusal comes before the connection.
        let err = create_postgres_database_in("postgres://127.0.0.1:9/x", "t", Some("fr'; DROP"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("is not a locale name"), "{err}");
    }

    #[test]
    fn the_database_part_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "b1"),
            "postgres://postgres@127.0.0.1:5432/b1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "b2"),
            "postgres://u:p@h/b2?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "b3"), "postgres://h:1/b3");
    }
}
