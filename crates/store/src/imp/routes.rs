//! The routing table of the lookups that cannot know the practice (`lookup_routes`, issue 18):
//! a document link's or an appointment link's token hash, a sign-in's login, a session
//! cookie's token hash. Each names
//! the practice; the row itself is then read within that practice. On Citus this table is
//! distributed by its own key, apart from the practices' tables (ARCHITECTURE.md "Citus").

use super::Tx;
use super::codec::{Cols, opt_ms};
use crate::Result;
use jiff::Timestamp;

/// What a route's key is.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Route {
    DocumentLink,
    AppointmentLink,
    Login,
    Session,
}

impl Route {
    fn as_str(self) -> &'static str {
        match self {
            Route::DocumentLink => "document_link",
            Route::AppointmentLink => "appointment_link",
            Route::Login => "login",
            Route::Session => "session",
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
        sqlx::query("DELETE FROM lookup_routes WHERE expires_at <= $1")
            .bind(now.as_millisecond())
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }
}
