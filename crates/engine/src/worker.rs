//! The dispatch worker's loop: what `rappel worker` and `rappel serve` run beside the API.
//!
//! Each round runs the due tasks, dispatches the due messages and delivers the webhook events,
//! then sleeps until the next due instant, a wake-up from this process ([`Engine::signal`]) or,
//! on PostgreSQL, from another one (`LISTEN`/`NOTIFY`). A round that fails (the database is
//! down) makes the next wait longer ([`crate::backoff`]), so an outage is not a hot loop.

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
        let longest_sleep = std::time::Duration::from_secs(if listener.is_some() { 60 } else { 5 });
        // Consecutive rounds that failed: the next waits longer (with jitter, at most a minute),
        // instead of retrying at once while the queue says "due now". The first failure of an
        // outage is logged with its cause, the others at debug, and the recovery once.
        let mut backoff = crate::backoff::Backoff::default();
        let mut listen_backoff = crate::backoff::Backoff::default();
        let mut next_retention = std::time::Instant::now();
        loop {
            let mut failure: Option<String> = None;
            if let Err(error) = self.run_due_tasks().await {
                failure = Some(format!("scheduled tasks: {error}"));
            }
            if let Err(error) = self.dispatch_all_due().await {
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
            let next_due = match self.store().next_due().await {
                Ok(next) => next,
                Err(error) => {
                    failure = Some(format!("next due instant: {error}"));
                    None
                }
            };
            let next_task = self.next_task_due().await.ok().flatten();
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
            let wait = pause.map_or(wait, |pause| wait.max(pause));
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.wait_for_work(wait) => {}
                signal = async {
                    match listener.as_mut() {
                        Some(listener) => listener.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    match signal {
                        Ok(_) => {
                            listen_backoff.succeeded();
                        }
                        Err(error) => {
                            // Without the connection, wake-ups stop: poll instead, waiting longer
                            // while the database does not answer.
                            let (pause, first) = listen_backoff.failed(crate::backoff::jitter());
                            if first {
                                tracing::warn!(%error, "lost the LISTEN connection; reconnecting");
                            }
                            tokio::time::sleep(pause).await;
                        }
                    }
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
