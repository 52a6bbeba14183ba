//! The dispatch worker's loop: what `rappel worker` and `rappel serve` run beside the API.
//!
//! Each round runs the due tasks, dispatches the due messages and delivers the webhook events,
//! then sleeps until the next due instant, a wake-up from this process ([`Engine::signal`]) or,
//! on PostgreSQL, from another one (`LISTEN`/`NOTIFY`). A round that fails (the database is
//! down) makes the next wait longer ([`crate::backoff`]), so an outage is not a hot loop: it is
//! logged once at error level with its cause, each retry at debug, and the recovery once. The
//! LISTEN connection has a backoff of its own; while it is down the loop polls every 5 s, and
//! its reconnection attempts never start a round. `tests/database_outage.rs` cuts PostgreSQL
//! off through a proxy and counts the rounds, the connections and the log lines.
//!
//! Each round first asks whether a newer version of Rappel migrated the database
//! ([`rappel_store::Store::newer_schema`]); while it has, the loop claims and runs nothing and
//! says so once (a process left running through a rolling upgrade must not claim with
//! statements the new schema no longer means). `tests/engine.rs` checks it on SQLite.

use std::future::Future;

use crate::Engine;

/// How often the worker deletes the history practices keep no longer (`retention`).
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

impl Engine {
    /// Runs due tasks and dispatches due messages, then sleeps until the next due instant or a
    /// wake-up from the engine, until `shutdown` completes. A batch in progress finishes before
    /// shutdown.
    pub async fn run_worker(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        // On PostgreSQL the commits of other processes wake this loop (LISTEN/NOTIFY); on SQLite
        // one process owns the database and its own wake-ups are enough.
        let mut listener = match self.store().listen_work().await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot LISTEN for work; polling every 5 s instead");
                None
            }
        };
        // Consecutive rounds that failed: the next waits longer (with jitter, at most a minute),
        // instead of retrying at once while the queue says "due now". The first failure of an
        // outage is logged with its cause, the others at debug, and the recovery once.
        let mut backoff = crate::backoff::Backoff::default();
        // The LISTEN connection backs off on its own: while it is down, the next reconnection is
        // not tried before `listen_retry_at`, and the loop polls every 5 s since no other
        // process can wake it. Its failures never start a round of their own.
        let mut listen_backoff = crate::backoff::Backoff::default();
        let mut listen_retry_at: Option<tokio::time::Instant> = None;
        let mut next_retention = std::time::Instant::now();
        // The newest migration of the database while it is newer than this build's: the loop
        // then claims nothing (`Store::newer_schema`).
        let mut newer_schema: Option<i64> = None;
        loop {
            let mut failure: Option<String> = None;
            match self.store().newer_schema().await {
                Ok(newer) => {
                    match (newer_schema, newer) {
                        (None, Some(version)) => tracing::error!(
                            migration = version,
                            "a newer version of Rappel migrated the database: this worker stops claiming messages and running tasks; stop this process and start the new version"
                        ),
                        (Some(_), None) => {
                            tracing::info!(
                                "the database's migrations are this version's again; the worker resumes"
                            )
                        }
                        _ => {}
                    }
                    newer_schema = newer;
                }
                // Not a reason to stop: if the database is down, the round's own statements say
                // so; the last answer stands until the next one.
                Err(error) => tracing::debug!(%error, "cannot read the database's migrations"),
            }
            if newer_schema.is_none() {
                if let Err(error) = self.run_due_tasks().await {
                    failure = Some(format!("scheduled tasks: {error}"));
                }
                if let Err(error) = self.dispatch_due_overlapped().await {
                    failure = Some(format!("dispatch: {error}"));
                }
                if let Err(error) = self.deliver_webhooks().await {
                    failure = Some(format!("webhook delivery: {error}"));
                }
                // Retention runs at start and then hourly; a failed pass is tried again next round.
                if std::time::Instant::now() >= next_retention {
                    match self.enforce_retention().await {
                        Ok(_) => next_retention = std::time::Instant::now() + RETENTION_EVERY,
                        Err(error) => failure = Some(format!("retention: {error}")),
                    }
                }
            }
            // Paused by a newer schema, the worker keeps no due instant: it sleeps its longest.
            let (next_due, next_task) = if newer_schema.is_some() {
                (None, None)
            } else {
                let next_due = match self.store().next_due().await {
                    Ok(next) => next,
                    Err(error) => {
                        failure = Some(format!("next due instant: {error}"));
                        None
                    }
                };
                (next_due, self.next_task_due().await.ok().flatten())
            };
            let longest_sleep = std::time::Duration::from_secs(
                if listener.is_some() && listen_retry_at.is_none() {
                    60
                } else {
                    5
                },
            );
            let pause = match &failure {
                Some(cause) => {
                    let (pause, first) = backoff.failed(crate::backoff::jitter());
                    if first {
                        tracing::error!(%cause, retry_in_s = pause.as_secs_f64(), "the worker's round failed; waiting longer after each failure (at most 60 s) until the database answers again");
                    } else {
                        tracing::debug!(%cause, retry_in_s = pause.as_secs_f64(), "the worker's round failed again");
                    }
                    Some(pause)
                }
                None => {
                    if backoff.succeeded() {
                        tracing::info!("the worker's round works again; back to normal scheduling");
                    }
                    None
                }
            };
            let now = self.now();
            let wait = [next_due, next_task]
                .into_iter()
                .flatten()
                .min()
                .map(|t| {
                    t.duration_since(now)
                        .max(jiff::SignedDuration::ZERO)
                        .unsigned_abs()
                })
                .unwrap_or(longest_sleep)
                .min(longest_sleep);
            // After a failure the backoff alone says when to try again: the next due instant is
            // unknown (its query may have failed) or is what failed, so waiting for it would be
            // a hot loop when it is now, or a minute when it is unknown.
            let wait = pause.unwrap_or(wait);
            let mut deadline = tokio::time::Instant::now() + wait;
            // Waits until the deadline, this process's signal or another process's NOTIFY. A
            // lost LISTEN connection is noted and the wait goes on: it is not a reason to run a
            // round, so an outage does not make a round per reconnection attempt.
            loop {
                let listen = async {
                    match listener.as_mut() {
                        Some(listener) => {
                            if let Some(at) = listen_retry_at {
                                tokio::time::sleep_until(at).await;
                            }
                            listener.recv().await
                        }
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = self.wait_for_work(deadline.saturating_duration_since(tokio::time::Instant::now())) => break,
                    signal = listen => match signal {
                        Ok(()) => {
                            listen_backoff.succeeded();
                            listen_retry_at = None;
                            break;
                        }
                        Err(error) => {
                            // `PgListener` reconnects on the next `recv`; until then this loop
                            // polls. Not an outage of its own: if the database is down, the
                            // round says so.
                            let (listen_pause, first) = listen_backoff.failed(crate::backoff::jitter());
                            if first {
                                tracing::info!(%error, "lost the LISTEN connection; polling every 5 s until it is back");
                            }
                            let now = tokio::time::Instant::now();
                            listen_retry_at = Some(now + listen_pause);
                            // Without wake-ups, a wait of a minute would hold others' work
                            // that long: poll within 5 s, but never sooner than the rounds'
                            // own backoff allows.
                            let poll = std::time::Duration::from_secs(5).max(pause.unwrap_or_default());
                            deadline = deadline.min(now + poll);
                        }
                    },
                }
            }
        }
    }
}

impl Engine {
    /// Wakes the workers of other processes now (PostgreSQL `NOTIFY`; nothing to do on SQLite),
    /// awaited, for a short-lived process that exits before [`Engine::work_added`]'s background
    /// notification would go (`rappel bounce`).
    pub async fn notify_workers(&self) -> crate::Result<()> {
        if self.store().backend() == rappel_store::Backend::Postgres {
            self.store().notify_work().await?;
        }
        Ok(())
    }
}
