//! Bounds on slow HTTP clients, for plain HTTP and HTTPS alike: a request
//! head must arrive within [`ServerConfig::header_read_timeout`] (hyper's
//! own timer, set on the connection builder here), and a request body may
//! not stall for more than [`ServerConfig::body_idle_timeout`] between two
//! chunks (a layer around every route). The body bound is per chunk, not
//! per request, so a multi-gigabyte upload that keeps sending is never cut
//! off; one that stops is answered 408 and its connection closed, and the
//! handler's own clean-up removes whatever it had spooled.
//!
//! [`ServerConfig::header_read_timeout`]: crate::ServerConfig::header_read_timeout
//! [`ServerConfig::body_idle_timeout`]: crate::ServerConfig::body_idle_timeout

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto::Builder;

/// Why a request body stopped: the client sent nothing for too long.
#[derive(Debug, thiserror::Error)]
#[error("the request body sent nothing for {} s; resend the request", .0.as_secs())]
pub struct BodyStalled(Duration);

/// Bounds the wait for request heads on `server`: the first request of a
/// connection (including the silent phase before hyper knows whether it
/// speaks HTTP/1 or HTTP/2, which hyper's own timer does not cover) and
/// every later HTTP/1 request head.
pub fn limit_heads<A: axum_server::Address, Acc>(
    server: axum_server::Server<A, Acc>,
    header_read_timeout: Duration,
) -> axum_server::Server<A, Acc> {
    let mut server = server.first_request_timeout(header_read_timeout);
    limit_builder(server.http_builder(), header_read_timeout);
    server
}

fn limit_builder(builder: &mut Builder<TokioExecutor>, header_read_timeout: Duration) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_read_timeout);
}

/// Wraps every route of `router` with the body idle timeout.
pub fn limit_bodies(router: Router, idle: Duration) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        idle,
        body_idle_timeout,
    ))
}

async fn body_idle_timeout(State(idle): State<Duration>, request: Request, next: Next) -> Response {
    let stalled = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let body = idle_limited(body, idle, stalled.clone());
    let response = next.run(Request::from_parts(parts, body)).await;
    if !stalled.load(Ordering::Acquire) {
        return response;
    }
    // Whatever the handler made of the broken body, the client's answer is
    // that its request timed out; the rest of its body is never read.
    let mut timeout = (StatusCode::REQUEST_TIMEOUT, BodyStalled(idle).to_string()).into_response();
    let headers = timeout.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    timeout
}

/// `body`, ending in a [`BodyStalled`] error when no chunk arrives within
/// `idle` of being asked for.
fn idle_limited(body: Body, idle: Duration, stalled: Arc<AtomicBool>) -> Body {
    let chunks = body.into_data_stream();
    let limited = futures::stream::unfold(Some(chunks), move |chunks| {
        let stalled = stalled.clone();
        async move {
            let mut chunks = chunks?;
            match tokio::time::timeout(idle, chunks.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some(chunks))),
                Ok(None) => None,
                Err(_) => {
                    stalled.store(true, Ordering::Release);
                    Some((Err(axum::Error::new(BodyStalled(idle))), None))
                }
            }
        }
    });
    Body::from_stream(limited)
}

/// Serves `router` over plain HTTP on `listener` until `shutdown`
/// completes, then lets requests in flight finish.
pub async fn serve_plain(
    listener: tokio::net::TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp(listener.into_std()?)?.handle(handle.clone());
    let server = limit_heads(server, header_read_timeout);
    let stopper = tokio::spawn(async move {
        shutdown.await;
        handle.graceful_shutdown(None);
    });
    let served = server.serve(router.into_make_service()).await;
    stopper.abort();
    served
}
