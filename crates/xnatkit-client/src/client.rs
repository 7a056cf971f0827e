//! The connection to one XNAT server: login, the session cookie, transparent
//! re-login when the session expires, retries, and status-to-error mapping.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::sync::RwLock;
use url::Url;

use crate::error::{ClientError, Result};
use crate::retry::{RetryPolicy, parse_retry_after};

/// How to authenticate.
#[derive(Clone)]
pub enum Credentials {
    /// A user name and password.
    Password { user: String, password: String },
    /// An XNAT alias token (`alias`/`secret`), issued to `user`.
    Token {
        user: String,
        alias: String,
        secret: String,
    },
}

impl std::fmt::Debug for Credentials {
    // Secrets never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password { user, .. } => write!(f, "Password {{ user: {user:?} }}"),
            Self::Token { user, alias, .. } => {
                write!(f, "Token {{ user: {user:?}, alias: {alias:?} }}")
            }
        }
    }
}

impl Credentials {
    /// The person behind the credentials, for messages.
    pub fn user(&self) -> &str {
        match self {
            Self::Password { user, .. } | Self::Token { user, .. } => user,
        }
    }

    fn basic(&self) -> (&str, &str) {
        match self {
            Self::Password { user, password } => (user, password),
            Self::Token { alias, secret, .. } => (alias, secret),
        }
    }
}

/// Connection options.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Extra trusted CA certificates (PEM bundle) for servers with a private CA.
    pub ca_bundle: Option<PathBuf>,
    pub retry: RetryPolicy,
    pub connect_timeout: Duration,
    /// Longest silence while reading a response before the attempt fails.
    pub read_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            ca_bundle: None,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(120),
        }
    }
}

/// A request body that can be produced again for a retry.
#[derive(Debug, Clone)]
pub enum RequestBody {
    Empty,
    Bytes(bytes::Bytes, &'static str),
    Form(Vec<(String, String)>),
    /// A local file, streamed (re-opened for every attempt).
    File(PathBuf, &'static str),
    /// A zip of these files, streamed as it is built.
    Zip(Vec<xnatkit_fileio::ArchiveEntry>),
}

/// One request, described so that it can be sent again.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// Server-relative path starting with `/` (e.g. `/data/projects`).
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: RequestBody,
    pub headers: Vec<(header::HeaderName, String)>,
    /// Safe to repeat after a failure that may have reached the server
    /// (GET, HEAD, PUT of a whole object to a fixed path). Never set it for
    /// a POST that could create data twice.
    pub idempotent: bool,
    /// Human description for errors, e.g. `project "P1"`.
    pub what: String,
}

impl Request {
    pub fn get(path: impl Into<String>, what: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: RequestBody::Empty,
            headers: Vec::new(),
            idempotent: true,
            what: what.into(),
        }
    }

    pub fn new(method: Method, path: impl Into<String>, what: impl Into<String>) -> Self {
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE
        );
        Self {
            method,
            idempotent,
            ..Self::get(path, what)
        }
    }

    pub fn query(mut self, key: &str, value: impl Into<String>) -> Self {
        self.query.push((key.to_owned(), value.into()));
        self
    }

    pub fn body(mut self, body: RequestBody) -> Self {
        self.body = body;
        self
    }

    pub fn header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

#[derive(Debug, Default)]
struct SessionState {
    /// The JSESSIONID; `None` means HTTP Basic on every request.
    jsession: Option<String>,
    /// Bumped on every login so concurrent 401s trigger one re-login only.
    generation: u64,
}

/// An authenticated connection to one XNAT server. Cheap to share behind an
/// `Arc`; all methods take `&self` and may run concurrently.
#[derive(Debug)]
pub struct XnatClient {
    http: reqwest::Client,
    /// Base URL without trailing slash, e.g. `https://xnat.example.org/xnat`.
    base: String,
    credentials: Credentials,
    session: RwLock<SessionState>,
    retry: RetryPolicy,
}

const SESSION_COOKIE: &str = "JSESSIONID";

impl XnatClient {
    /// Connects and logs in. Fails with [`ClientError::LoginFailed`] on
    /// wrong credentials and [`ClientError::Unreachable`] when nothing answers.
    pub async fn connect(
        server: &str,
        credentials: Credentials,
        options: ClientOptions,
    ) -> Result<Self> {
        let base = normalize_server(server)?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .pool_max_idle_per_host(64)
            .user_agent(concat!("xnatkit/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &options.ca_bundle {
            let pem = std::fs::read(path).map_err(|e| {
                ClientError::Invalid(format!("CA bundle {}: cannot read it: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ClientError::Invalid(format!(
                    "CA bundle {}: not a PEM certificate bundle ({e})",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(ClientError::Invalid(format!(
                    "CA bundle {}: contains no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    path.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| ClientError::InvalidServerUrl {
            url: server.to_owned(),
            reason: format!("cannot set up HTTP client: {e}"),
        })?;
        let client = Self {
            http,
            base,
            credentials,
            session: RwLock::new(SessionState::default()),
            retry: options.retry,
        };
        client.login(0).await?;
        Ok(client)
    }

    /// The server's base URL (no trailing slash).
    pub fn server(&self) -> &str {
        &self.base
    }

    /// The user name behind the credentials.
    pub fn user(&self) -> &str {
        self.credentials.user()
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Logs in with HTTP Basic on `GET /data/JSESSION` and keeps the session
    /// id, so later requests skip password hashing on the server. When
    /// `seen_generation` is older than the current one another task already
    /// renewed the session and nothing is sent.
    async fn login(&self, seen_generation: u64) -> Result<()> {
        let mut state = self.session.write().await;
        if state.generation != seen_generation {
            return Ok(());
        }
        let (user, secret) = self.credentials.basic();
        let url = self.url("/data/JSESSION", &[])?;
        let mut attempt = 0;
        let response = loop {
            let sent = self
                .http
                .get(url.clone())
                .basic_auth(user, Some(secret))
                .send()
                .await;
            match sent {
                Ok(r)
                    if should_retry_status(r.status())
                        && attempt + 1 < self.retry.max_attempts
                        && !beyond_retry_cap(r.headers()) =>
                {
                    let wait = retry_after(r.headers());
                    tokio::time::sleep(self.retry.delay(attempt, wait)).await;
                }
                Ok(r) => break r,
                Err(e)
                    if attempt + 1 < self.retry.max_attempts.min(3)
                        && (e.is_connect() || e.is_timeout())
                        && !is_certificate_error(&e) =>
                {
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                }
                Err(e) => return Err(self.connect_error(&e)),
            }
            attempt += 1;
        };
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(ClientError::LoginFailed {
                server: self.base.clone(),
                user: self.credentials.user().to_owned(),
            });
        }
        if !status.is_success() {
            return Err(ClientError::Http {
                method: "GET".into(),
                url: url.to_string(),
                status: status.as_u16(),
                message: format!("login failed: {}", status_text(status)),
            });
        }
        let cookie = session_cookie(response.headers());
        let body = response.text().await.unwrap_or_default();
        let body = body.trim();
        if body.starts_with('<') {
            return Err(ClientError::Decode {
                url: url.to_string(),
                reason: "an HTML page instead of a session id; is this the XNAT base URL?".into(),
            });
        }
        let from_body = (!body.is_empty()
            && body.len() <= 256
            && body
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .then(|| body.to_owned());
        state.jsession = cookie.or(from_body);
        state.generation += 1;
        tracing::debug!(server = %self.base, session = state.jsession.is_some(), "logged in");
        Ok(())
    }

    /// Builds the absolute URL for a server-relative path.
    pub fn url(&self, path: &str, query: &[(String, String)]) -> Result<Url> {
        let joined = if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/{path}", self.base)
        };
        let mut url = Url::parse(&joined).map_err(|e| ClientError::InvalidServerUrl {
            url: joined.clone(),
            reason: e.to_string(),
        })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends a request with authentication, retries and re-login, and
    /// returns the response whatever its status (see [`Self::send`]).
    pub async fn send_raw(&self, request: &Request) -> Result<reqwest::Response> {
        let url = self.url(&request.path, &request.query)?;
        let mut attempt: u32 = 0;
        let mut relogged = false;
        loop {
            let (jsession, generation) = {
                let state = self.session.read().await;
                (state.jsession.clone(), state.generation)
            };
            let builder = self
                .build(request, url.clone(), jsession.as_deref())
                .await?;
            let can_retry = attempt + 1 < self.retry.max_attempts;
            match builder.send().await {
                Err(err) => {
                    // A refused connection never reached the server, so even
                    // a POST may be repeated; anything later only when the
                    // request is idempotent.
                    // An untrusted certificate stays untrusted: no retry.
                    let retryable = !is_certificate_error(&err)
                        && (err.is_connect() || (request.idempotent && !err.is_builder()));
                    if retryable && can_retry {
                        tracing::debug!(%url, attempt, error = %err, "retrying");
                        tokio::time::sleep(self.retry.delay(attempt, None)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(if err.is_connect() {
                        self.connect_error(&err)
                    } else {
                        ClientError::Transport {
                            method: request.method.to_string(),
                            url: url.to_string(),
                            reason: describe_reqwest(&err),
                        }
                    });
                }
                Ok(response) => {
                    let status = response.status();
                    if status == StatusCode::UNAUTHORIZED && !relogged {
                        // The session expired mid-run: log in again once and
                        // repeat. A 401 means nothing was done, so this is
                        // safe for every method.
                        tracing::info!(server = %self.base, "session expired; logging in again");
                        relogged = true;
                        self.login(generation).await?;
                        continue;
                    }
                    if should_retry_status(status) && request.idempotent && can_retry {
                        if beyond_retry_cap(response.headers()) {
                            return Ok(response);
                        }
                        let wait = retry_after(response.headers());
                        tracing::debug!(%url, attempt, %status, "retrying");
                        tokio::time::sleep(self.retry.delay(attempt, wait)).await;
                        attempt += 1;
                        continue;
                    }
                    return Ok(response);
                }
            }
        }
    }

    /// The error for a request that never got an answer: an untrusted TLS
    /// certificate says so (and how to fix it), anything else is
    /// "cannot reach".
    fn connect_error(&self, err: &reqwest::Error) -> ClientError {
        let reason = describe_reqwest(err);
        if is_certificate_error(err) {
            ClientError::UntrustedCertificate {
                server: self.base.clone(),
                reason,
            }
        } else {
            ClientError::Unreachable {
                server: self.base.clone(),
                reason,
            }
        }
    }

    /// Sends a request and maps non-2xx statuses to errors.
    pub async fn send(&self, request: &Request) -> Result<reqwest::Response> {
        let response = self.send_raw(request).await?;
        self.check(request, response).await
    }

    /// Turns a non-success response into the matching error.
    pub async fn check(
        &self,
        request: &Request,
        response: reqwest::Response,
    ) -> Result<reqwest::Response> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let url = response.url().to_string();
        let wait = retry_after(response.headers());
        let body = response.text().await.unwrap_or_default();
        let mut message = short_message(&body).unwrap_or_else(|| status_text(status));
        if let Some(wait) = wait
            && (status == StatusCode::SERVICE_UNAVAILABLE
                || status == StatusCode::TOO_MANY_REQUESTS)
        {
            message.push_str(&format!(
                " (the server asks to retry after {} s; run the same command again later)",
                wait.as_secs()
            ));
        }
        Err(match status {
            StatusCode::NOT_FOUND => ClientError::NotFound {
                what: request.what.clone(),
                server: self.base.clone(),
            },
            StatusCode::UNAUTHORIZED => ClientError::LoginFailed {
                server: self.base.clone(),
                user: self.credentials.user().to_owned(),
            },
            StatusCode::FORBIDDEN => ClientError::Forbidden {
                what: request.what.clone(),
                server: self.base.clone(),
                message,
            },
            _ => ClientError::Http {
                method: request.method.to_string(),
                url,
                status: status.as_u16(),
                message,
            },
        })
    }

    async fn build(
        &self,
        request: &Request,
        url: Url,
        jsession: Option<&str>,
    ) -> Result<reqwest::RequestBuilder> {
        let mut builder = self.http.request(request.method.clone(), url);
        match jsession {
            Some(id) => {
                builder = builder.header(header::COOKIE, format!("{SESSION_COOKIE}={id}"));
            }
            None => {
                let (user, secret) = self.credentials.basic();
                builder = builder.basic_auth(user, Some(secret));
            }
        }
        for (name, value) in &request.headers {
            builder = builder.header(name.clone(), value.as_str());
        }
        builder = match &request.body {
            RequestBody::Empty => builder,
            RequestBody::Bytes(bytes, content_type) => builder
                .header(header::CONTENT_TYPE, *content_type)
                .body(bytes.clone()),
            RequestBody::Form(pairs) => builder.form(pairs),
            RequestBody::File(path, content_type) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| ClientError::io(path, e))?;
                let len = file
                    .metadata()
                    .await
                    .map_err(|e| ClientError::io(path, e))?
                    .len();
                let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
                builder
                    .header(header::CONTENT_TYPE, *content_type)
                    .header(header::CONTENT_LENGTH, len)
                    .body(reqwest::Body::wrap_stream(stream))
            }
            RequestBody::Zip(entries) => {
                let stream = xnatkit_fileio::zip_stream(entries.clone());
                builder
                    .header(header::CONTENT_TYPE, "application/zip")
                    .body(reqwest::Body::wrap_stream(stream))
            }
        };
        Ok(builder)
    }

    /// Ends the server session (`DELETE /data/JSESSION`). Errors are
    /// ignored: the session expires on its own anyway.
    pub async fn disconnect(&self) {
        let request = Request::new(Method::DELETE, "/data/JSESSION", "session");
        if let Err(err) = self.send(&request).await {
            tracing::debug!(error = %err, "logout request failed");
        }
    }
}

/// Validates and normalises a server URL: scheme required (http/https), no
/// query, no trailing slash.
pub fn normalize_server(server: &str) -> Result<String> {
    let trimmed = server.trim();
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        // Like xnatutils: a bare host means https unless it is loopback.
        let loopback = trimmed.starts_with("127.") || trimmed.starts_with("localhost");
        format!("{}://{trimmed}", if loopback { "http" } else { "https" })
    };
    let url = Url::parse(&with_scheme).map_err(|e| ClientError::InvalidServerUrl {
        url: server.to_owned(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ClientError::InvalidServerUrl {
            url: server.to_owned(),
            reason: "use an http:// or https:// URL".into(),
        });
    }
    if url.host_str().is_none() {
        return Err(ClientError::InvalidServerUrl {
            url: server.to_owned(),
            reason: "no host name".into(),
        });
    }
    let mut text = url.to_string();
    if let Some(q) = text.find(['?', '#']) {
        text.truncate(q);
    }
    Ok(text.trim_end_matches('/').to_owned())
}

fn should_retry_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// "Come back in an hour": a `Retry-After` beyond the cap ends the retries
/// at once (the answer's message says when, see `check`) rather than
/// stalling the run or asking again regardless.
fn beyond_retry_cap(headers: &HeaderMap) -> bool {
    retry_after(headers).is_some_and(|w| w > crate::retry::MAX_RETRY_AFTER)
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v: &HeaderValue| v.to_str().ok())
        .find_map(|cookie| {
            let first = cookie.split(';').next()?.trim();
            let (name, value) = first.split_once('=')?;
            (name == SESSION_COOKIE && !value.is_empty()).then(|| value.to_owned())
        })
}

fn status_text(status: StatusCode) -> String {
    status
        .canonical_reason()
        .map_or_else(|| status.as_u16().to_string(), str::to_owned)
}

/// The first meaningful line of an error body (XNAT sends plain text or,
/// from older versions, HTML with the message in an `<h3>`).
fn short_message(body: &str) -> Option<String> {
    let body = body.trim();
    if body.is_empty() {
        return None;
    }
    let text = if let Some(start) = body.find("<h3>") {
        let rest = &body[start + 4..];
        rest.split("</h3>").next().unwrap_or(rest)
    } else if body.starts_with('<') {
        return None;
    } else {
        body
    };
    let line = text.lines().next().unwrap_or(text).trim();
    let mut line: String = line.chars().take(200).collect();
    if line.is_empty() {
        return None;
    }
    if text.len() > line.len() {
        line.push('…');
    }
    Some(line)
}

/// True when the TLS handshake failed because the server's certificate did
/// not verify (rustls: "invalid peer certificate: UnknownIssuer", expired,
/// wrong name, ...).
fn is_certificate_error(err: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(err);
    while let Some(s) = source {
        if s.to_string().contains("invalid peer certificate") {
            return true;
        }
        source = s.source();
    }
    false
}

/// reqwest's Display hides the interesting part (connection refused, DNS)
/// in the source chain; walk it for a one-line reason.
pub(crate) fn describe_reqwest(err: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(err);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    if err.is_timeout() {
        return "timed out".into();
    }
    parts.last().cloned().unwrap_or_else(|| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_normalised() {
        assert_eq!(
            normalize_server("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_server("xnat.example.org/xnat/").unwrap(),
            "https://xnat.example.org/xnat"
        );
        assert!(normalize_server("ftp://x").is_err());
        assert!(normalize_server("http://").is_err());
    }

    #[test]
    fn error_bodies_become_one_line() {
        assert_eq!(
            short_message("Not Found\nmore").as_deref(),
            Some("Not Found…")
        );
        assert_eq!(
            short_message("<html><h3>Bad thing</h3></html>").as_deref(),
            Some("Bad thing")
        );
        assert_eq!(short_message("<html></html>"), None);
    }
}
