//! The connection loop: what `axum::serve` does, plus the limits it lacks against slow clients.
//!
//! `axum::serve` gives hyper no timer, so hyper's header read timeout never runs, and it
//! accepts every connection it is offered: a client that sends one header byte now and then
//! (slow-loris) holds a connection, a task and a file descriptor for ever, and enough of them
//! exhaust the process. Here:
//! - at most [`ServerConfig::max_connections`] connections are served at once; the next ones
//!   wait in the kernel's listen backlog until one ends (so a burst is delayed, not refused);
//! - a connection that has not sent a complete request head within
//!   [`ServerConfig::header_read_timeout`] is closed, and that includes an idle keep-alive
//!   connection waiting for its next request;
//! - a request body must arrive whole within [`ServerConfig::request_timeout`] of the request's
//!   start ([`body_deadline`]), else the answer is 408 and the connection closes.
//!
//! Each request carries the peer's address as axum's `ConnectInfo<SocketAddr>` (the sign-in's
//! per-address limit reads it).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::ServerConfig;
use crate::error::ApiError;

/// Serves `app` on `listener` until `shutdown` completes, then lets the requests in flight
/// finish (idle connections close at once).
pub(crate) async fn serve(
    app: Router,
    config: &ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let header_timeout = config.header_read_timeout;
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // The permit is taken before `accept`: past the cap, connections stay in the backlog.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a little rather than spin, as axum::serve does.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: Request<_>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move {
                let request = request.map(Body::new);
                tower_service::Service::call(&mut app, request).await
            }
        });
        let mut stopped = stopped.clone();
        connections.spawn(async move {
            let _permit = permit;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            let outcome = tokio::select! {
                outcome = connection.as_mut() => outcome,
                _ = stopped.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = outcome {
                // A client that went away or was too slow: nothing the operator must act on.
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
        // Forget the connections that ended, so the set holds only live ones.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Gives the request body until [`ServerConfig::request_timeout`] after the request's start to
/// arrive whole. A body still incomplete then fails the handler's read, and the answer becomes
/// a 408 that closes the connection, whatever the handler made of the failed read.
pub(crate) async fn body_deadline(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let late = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let body = Body::new(DeadlineBody {
        inner: body,
        deadline: Box::pin(tokio::time::sleep(timeout)),
        late: late.clone(),
    });
    let response = next.run(Request::from_parts(parts, body)).await;
    if !late.load(Ordering::Relaxed) {
        return response;
    }
    let mut response = ApiError::RequestTimeout.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request body that fails once its deadline has passed.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    late: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTooSlow;

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        // Both fields are `Unpin` (the body and the timer are boxed), so the wrapper is too.
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.late.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTooSlow))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
