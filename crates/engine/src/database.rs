//! Opening the database: what the binary does before it has an engine, without reaching the
//! store itself (ARCHITECTURE.md, "Architecture invariants").

use std::sync::Arc;

use rappel_store::Store;

use crate::{Clock, Engine, EngineConfig, Result, Transports};

/// A database opened by [`Database::connect`], to be brought up to date with
/// [`Database::migrate`] and handed to [`Engine::with_database`].
pub struct Database {
    store: Store,
}

impl Database {
    /// Opens the database at `url`: `sqlite://PATH` (created when missing) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Database> {
        Ok(Database {
            store: Store::connect(url).await?,
        })
    }

    /// Applies the migrations the database lacks (processes starting together apply each once).
    pub async fn migrate(&self) -> Result<()> {
        Ok(self.store.migrate().await?)
    }

    /// Closes every connection ([`Engine::close`]).
    pub async fn close(&self) {
        self.store.close().await;
    }
}

impl Engine {
    /// The engine over an opened database.
    pub fn with_database(
        database: Database,
        clock: Arc<dyn Clock>,
        transports: Transports,
        config: EngineConfig,
    ) -> Engine {
        Engine::new(database.store, clock, transports, config)
    }

    /// Closes every connection of the engine's database, once its work is done (`rappel serve`
    /// and `rappel worker` when they stop). On an SQLite file the last connection to close
    /// copies the write-ahead log back into the database file and removes the `-wal` and
    /// `-shm` files, so that the file alone is the whole database for whoever copies it next;
    /// a process stopped without it loses nothing (SQLite replays the log at the next open).
    pub async fn close(&self) {
        self.store().close().await;
    }

    /// How many practices the database holds (`rappel serve --demo` fills only an empty one).
    pub async fn practice_count(&self) -> Result<usize> {
        let mut tx = self.store().begin_read().await?;
        let practices = tx.practices().await?;
        tx.commit().await?;
        Ok(practices.len())
    }
}
