//! A fault-injecting HTTP/1.1 proxy for tests: it sits between a client (the
//! CLI or `xnatkit-client`) and a real server and forwards every request
//! unchanged, except that the first N requests matching a [`Rule`] get a
//! [`Fault`] instead: a 503/429 with `Retry-After` (with or without the
//! server having done the work), a connection dropped or stalled in the
//! middle of the response body, or a body of the test's making in place of
//! the server's. It records every request it saw, with the time it arrived,
//! for the test to check what the client did.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;

/// What to do to a matching request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer `status` with `Retry-After: retry_after` without forwarding
    /// (the request body is read and thrown away): the server never saw it.
    Refuse { status: u16, retry_after: String },
    /// Forward the request, let the server do the work, then replace its
    /// answer with `status` and `Retry-After` (a gateway that timed out).
    ForwardThenRefuse { status: u16, retry_after: String },
    /// Forward, pass the status, headers and the first `after` bytes of the
    /// body, then drop the connection.
    CutBody { after: usize },
    /// Forward, pass the status, headers and the first `after` bytes of the
    /// body, then send nothing more while keeping the connection open: a
    /// stalled server, which only the client's read timeout ends.
    StallBody { after: usize },
    /// Forward, keep the status and headers (but the length), and send
    /// `body` instead of the server's body: a hostile or broken server.
    ReplaceBody(Bytes),
}

/// Which requests get a fault, and how many of them.
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: Method,
    /// Substring of the request path (not the query).
    pub path_contains: String,
    /// Match only a path equal to `path_contains`.
    pub exact: bool,
    /// How many matching requests get the fault; later ones pass.
    pub times: usize,
    pub fault: Fault,
}

impl Rule {
    pub fn new(method: Method, path_contains: &str, times: usize, fault: Fault) -> Self {
        Self {
            method,
            path_contains: path_contains.to_owned(),
            exact: false,
            times,
            fault,
        }
    }

    /// A rule for requests whose path is exactly `path`.
    pub fn exact(method: Method, path: &str, times: usize, fault: Fault) -> Self {
        Self {
            exact: true,
            ..Self::new(method, path, times, fault)
        }
    }
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub range: Option<String>,
    pub at: Instant,
    /// The fault injected, if any.
    pub fault: Option<Fault>,
}

struct State {
    upstream: SocketAddr,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
}

impl State {
    /// Records the request and takes the fault of the first live rule.
    fn admit(&self, req: &Request<Incoming>) -> Option<Fault> {
        let path = req.uri().path().to_owned();
        let fault = {
            let mut rules = self.rules.lock().unwrap();
            rules
                .iter_mut()
                .find(|r| {
                    r.times > 0
                        && r.method == req.method()
                        && if r.exact {
                            path == r.path_contains
                        } else {
                            path.contains(&r.path_contains)
                        }
                })
                .map(|r| {
                    r.times -= 1;
                    r.fault.clone()
                })
        };
        self.seen.lock().unwrap().push(Seen {
            method: req.method().clone(),
            path,
            query: req.uri().query().map(str::to_owned),
            range: req
                .headers()
                .get(hyper::header::RANGE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            at: Instant::now(),
            fault: fault.clone(),
        });
        fault
    }
}

/// A running proxy; stops with its runtime on drop.
pub struct FaultProxy {
    pub url: String,
    state: Arc<State>,
    /// Never read: it owns the proxy's tasks, and dropping it stops them.
    _runtime: tokio::runtime::Runtime,
}

impl FaultProxy {
    /// Listens on a loopback port and forwards to `upstream`.
    pub fn start(upstream: SocketAddr, rules: Vec<Rule>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(State {
            upstream,
            rules: Mutex::new(rules),
            seen: Mutex::new(Vec::new()),
        });
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accept_state = state.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = accept_state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    // A dropped connection (CutBody) ends here with an error.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url,
            state,
            _runtime: runtime,
        }
    }

    /// Every request seen so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Requests whose method is `method` and whose path contains `needle`.
    pub fn seen_matching(&self, method: &Method, needle: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == *method && s.path.contains(needle))
            .collect()
    }
}

fn text(status: StatusCode, retry_after: Option<&str>, body: &'static str) -> Response<ProxyBody> {
    let mut response = Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "text/plain");
    if let Some(wait) = retry_after {
        response = response.header(hyper::header::RETRY_AFTER, wait);
    }
    response
        .body(
            Full::new(Bytes::from_static(body.as_bytes()))
                .map_err(|never| match never {})
                .boxed(),
        )
        .unwrap()
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let fault = state.admit(&req);
    if let Some(Fault::Refuse {
        status,
        retry_after,
    }) = &fault
    {
        // Read the whole body first, as a server would, so the client is
        // not cut off while still sending.
        let _ = req.into_body().collect().await;
        return Ok(text(
            StatusCode::from_u16(*status).unwrap(),
            Some(retry_after),
            "injected fault: try again later\n",
        ));
    }
    let response = match forward(state.upstream, req).await {
        Ok(r) => r,
        Err(err) => {
            // Test output: the failing test shows why the proxy answered 502.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("fault proxy: upstream failed: {err}");
            }
            return Ok(text(
                StatusCode::BAD_GATEWAY,
                None,
                "proxy: upstream failed\n",
            ));
        }
    };
    Ok(match fault {
        Some(Fault::ForwardThenRefuse {
            status,
            retry_after,
        }) => {
            // The server did the work; the client must not learn it.
            let _ = response.into_body().collect().await;
            text(
                StatusCode::from_u16(status).unwrap(),
                Some(&retry_after),
                "injected fault: try again later\n",
            )
        }
        Some(Fault::CutBody { after }) => {
            let (parts, body) = response.into_parts();
            Response::from_parts(parts, cut_after(body, after, false))
        }
        Some(Fault::StallBody { after }) => {
            let (parts, body) = response.into_parts();
            Response::from_parts(parts, cut_after(body, after, true))
        }
        Some(Fault::ReplaceBody(body)) => {
            let (mut parts, server_body) = response.into_parts();
            let _ = server_body.collect().await;
            parts.headers.remove(hyper::header::CONTENT_LENGTH);
            parts.headers.remove(hyper::header::TRANSFER_ENCODING);
            Response::from_parts(
                parts,
                Full::new(body).map_err(|never| match never {}).boxed(),
            )
        }
        _ => response.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed()),
    })
}

/// One request on a fresh upstream connection.
async fn forward(
    upstream: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Incoming>, BoxError> {
    let stream = tokio::net::TcpStream::connect(upstream).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender.send_request(req).await?)
}

/// Passes the first `after` bytes of `body`, waits for them to reach the
/// client, then fails the body so hyper drops the connection mid-response
/// — or, when `stall`, never sends another byte.
fn cut_after(body: Incoming, after: usize, stall: bool) -> ProxyBody {
    struct Cut {
        body: Incoming,
        left: usize,
        done: bool,
    }
    let stream = futures::stream::unfold(
        Cut {
            body,
            left: after,
            done: false,
        },
        move |mut cut| async move {
            if cut.done {
                return None;
            }
            if cut.left == 0 && stall {
                std::future::pending::<()>().await;
            }
            if cut.left == 0 {
                // Give the bytes already written time to leave the socket.
                tokio::time::sleep(Duration::from_millis(50)).await;
                cut.done = true;
                let err: BoxError = "injected fault: connection dropped mid-body".into();
                return Some((Err(err), cut));
            }
            match cut.body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(mut data) => {
                        if data.len() > cut.left {
                            data.truncate(cut.left);
                        }
                        cut.left -= data.len();
                        Some((Ok(Frame::data(data)), cut))
                    }
                    Err(frame) => Some((Ok(frame), cut)),
                },
                Some(Err(e)) => {
                    cut.done = true;
                    Some((Err(Box::new(e) as BoxError), cut))
                }
                // The body was shorter than `after`: nothing to cut.
                None => None,
            }
        },
    );
    BodyExt::boxed(StreamBody::new(stream))
}
