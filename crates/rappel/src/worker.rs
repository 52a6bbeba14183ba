//! The dispatch worker's loop.

use rappel_engine::Engine;

/// Runs due tasks and dispatches due messages, then sleeps until the next due instant or a
/// wake-up from the engine. A batch in progress finishes before shutdown.
pub(crate) async fn worker_loop(engine: Engine, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    // On PostgreSQL the commits of other processes wake this loop (LISTEN/NOTIFY); on SQLite
    // one process owns the database and its own wake-ups are enough.
    let mut listener = match engine.store().listen_work().await {
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
    let mut backoff = rappel_engine::backoff::Backoff::default();
    let mut listen_backoff = rappel_engine::backoff::Backoff::default();
    loop {
        let mut failure: Option<String> = None;
        if let Err(error) = engine.run_due_tasks().await {
            failure = Some(format!("scheduled tasks: {error}"));
        }
        if let Err(error) = engine.dispatch_all_due().await {
            failure = Some(format!("dispatch: {error}"));
        }
        if let Err(error) = engine.deliver_webhooks().await {
            failure = Some(format!("webhook delivery: {error}"));
        }
        let next_due = match engine.store().next_due().await {
            Ok(next) => next,
            Err(error) => {
                failure = Some(format!("next due instant: {error}"));
                None
            }
        };
        let next_task = engine.next_task_due().await.ok().flatten();
        let pause = match &failure {
            Some(cause) => {
                let (pause, first) = backoff.failed(rappel_engine::backoff::jitter());
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
        let now = engine.now();
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
            _ = engine.wait_for_work(wait) => {}
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
                        let (pause, first) = listen_backoff.failed(rappel_engine::backoff::jitter());
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
