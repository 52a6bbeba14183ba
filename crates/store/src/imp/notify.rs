//! Wake-ups across processes. On PostgreSQL a commit that adds due work sends `NOTIFY
//! rappel_work`, and idle workers LISTEN for it instead of polling; on SQLite (one process) the
//! engine's in-process notification is enough and these are no-ops.

use sqlx::postgres::PgListener;

use super::Store;
use crate::{Backend, Result};

/// The channel name shared by every `rappel` process on one database.
const CHANNEL: &str = "rappel_work";

/// A dedicated PostgreSQL connection listening for work signals.
pub struct WorkListener {
    listener: PgListener,
}

impl WorkListener {
    /// Waits for the next signal. Returns an error when the connection is lost; `PgListener`
    /// reconnects on the next call.
    pub async fn recv(&mut self) -> Result<()> {
        self.listener.recv().await?;
        Ok(())
    }
}

impl Store {
    /// Tells the other processes sharing this database that work may be due now.
    pub async fn notify_work(&self) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// A listener for [`Store::notify_work`] signals; `None` on SQLite.
    pub async fn listen_work(&self) -> Result<Option<WorkListener>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = PgListener::connect(&self.url).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(WorkListener { listener }))
    }
}
