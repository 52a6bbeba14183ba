//! The routing table of the lookups that cannot know the practice (`lookup_routes`, issue 18):
//! a document link's or an appointment link's token hash, a sign-in's login, a session
//! cookie's token hash, a provider's message id (a delivery report names nothing else). Each names
//! the practice; the row itself is then read within that practice. On Citus this table is
//! distributed by its own key, apart from the practices' tables (ARCHITECTURE.md "Citus").

use super::Tx;
use super::batch::{insert_chunks, placeholders};
use super::codec::{Cols, opt_ms};
use crate::{Backend, NotificationRow, Result};
use jiff::Timestamp;

/// The purge of expired routes: only sessions' routes have an expiry, and the partial index
/// `lookup_routes_expiry` (migration 0018) holds only those (`tests/plans.rs`).
pub(crate) const PURGE_EXPIRED_ROUTES: &str = "DELETE FROM lookup_routes WHERE expires_at <= $1";

/// Rows per statement of [`Tx::route_provider_ids`]: a worker's batch (100 by default) in one.
const ROUTES_PER_STATEMENT: usize = 256;

/// What a route's key is.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Route {
    DocumentLink,
    AppointmentLink,
    Login,
    Session,
    /// A provider's id of a handed-off message, routed at the hand-off that got it.
    ProviderMessage,
}

impl Route {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Route::DocumentLink => "document_link",
            Route::AppointmentLink => "appointment_link",
            Route::Login => "login",
            Route::Session => "session",
            Route::ProviderMessage => "provider_message",
        }
    }
}

impl Tx {
    /// The practice the key belongs to, if it is known.
    pub(crate) async fn route(&mut self, kind: Route, key: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT practice_id FROM lookup_routes WHERE kind = $1 AND lookup_key = $2",
        )
        .bind(kind.as_str())
        .bind(key)
        .fetch_optional(&mut *self.inner)
        .await?;
        row.map(|r| Cols::new(&r, "lookup_routes").text("practice_id"))
            .transpose()
    }

    /// Routes the key to the practice; false (and nothing changes) when the key is taken.
    pub(crate) async fn insert_route(
        &mut self,
        kind: Route,
        key: &str,
        practice_id: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO lookup_routes (kind, lookup_key, practice_id, expires_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (kind, lookup_key) DO NOTHING",
        )
        .bind(kind.as_str())
        .bind(key)
        .bind(practice_id)
        .bind(opt_ms(expires_at))
        .execute(&mut *self.inner)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Routes the provider ids these rows carry to their practices, in one statement per
    /// chunk. A provider id already routed keeps its route (a retry's new id gets its own; the
    /// old one then finds no row, as before).
    pub(crate) async fn route_provider_ids(&mut self, rows: &[NotificationRow]) -> Result<()> {
        let routed: Vec<(&str, &str)> = rows
            .iter()
            .filter_map(|n| Some((n.provider_id.as_deref()?, n.practice_id.as_str())))
            .collect();
        self.insert_routes(Route::ProviderMessage, &routed).await?;
        Ok(())
    }

    /// Routes each `(key, practice)` (without expiry), in one statement per chunk; a key already
    /// routed keeps its route. Returns how many were routed.
    pub(crate) async fn insert_routes(
        &mut self,
        kind: Route,
        routed: &[(&str, &str)],
    ) -> Result<u64> {
        let mut inserted = 0;
        for chunk in insert_chunks(self.backend, routed, ROUTES_PER_STATEMENT) {
            let sql = routes_insert(self.backend, chunk.len(), 1);
            // Kept prepared: the chunks take a few fixed lengths (`insert_chunks`).
            let mut query = sqlx::query(&sql);
            for (key, practice) in chunk {
                query = query.bind(kind.as_str()).bind(*key).bind(*practice);
            }
            inserted += query.execute(&mut *self.inner).await?.rows_affected();
        }
        Ok(inserted)
    }

    /// Forgets the keys' routes (of this practice only).
    pub(crate) async fn delete_routes(
        &mut self,
        kind: Route,
        practice_id: &str,
        keys: &[String],
    ) -> Result<()> {
        for key in keys {
            sqlx::query(
                "DELETE FROM lookup_routes \
                 WHERE kind = $1 AND lookup_key = $2 AND practice_id = $3",
            )
            .bind(kind.as_str())
            .bind(key)
            .bind(practice_id)
            .execute(&mut *self.inner)
            .await?;
        }
        Ok(())
    }

    /// Forgets the routes of every session expired at `now` (their sessions no longer sign
    /// anyone in).
    pub(crate) async fn delete_expired_routes(&mut self, now: Timestamp) -> Result<()> {
        sqlx::query(PURGE_EXPIRED_ROUTES)
            .bind(now.as_millisecond())
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }
}

/// The multi-row INSERT of `count` routes (without expiry) whose parameters start at `first`:
/// each route's kind, key and practice. A key already routed keeps its route.
pub(crate) fn routes_insert(backend: Backend, count: usize, first: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO lookup_routes (kind, lookup_key, practice_id, expires_at) VALUES ",
    );
    for i in 0..count {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&placeholders(backend, first + 3 * i, 3));
        sql.push_str(", NULL)");
    }
    sql.push_str(" ON CONFLICT (kind, lookup_key) DO NOTHING");
    sql
}
