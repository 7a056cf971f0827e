//! The OHIF viewer (`serve --ohif-dir DIR`): an unmodified prebuilt OHIF
//! (`scripts/setup-ohif.sh` installs `@ohif/app`'s `dist/`) served at the
//! root of a second listener, because its `index.html` and bundles use
//! absolute paths (`/app.bundle….js`, `/app-config.js`).
//!
//! That listener is the same server, not a proxy: besides OHIF's files it
//! answers DICOMweb (`/xapi/dicomweb/…`, the routes of
//! [`crate::routes::dicomweb`]) and the login page, through the same
//! authentication layer and state. So the viewer's requests are
//! same-origin (no CORS), carry the session cookie, and see exactly what
//! the logged-in user may read. Cookies ignore ports, so a login on the
//! main listener also holds here, and the reverse.
//!
//! Nothing in DIR is changed: `/app-config.js` is generated here (our
//! DICOMweb as the only data source, pixels by WADO-URI so that stack views
//! need neither frames nor SharedArrayBuffer), and `index.html` gets a
//! Content-Security-Policy that allows its two inline scripts by hash.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::access::Caller;
use crate::error::{ApiError, ServerError};
use crate::state::AppState;

/// Where the viewer is served (`--ohif-dir`, `--ohif-listen`).
#[derive(Debug, Clone)]
pub struct OhifConfig {
    /// An OHIF `dist/` folder (holds `index.html`).
    pub dir: PathBuf,
    /// The viewer's own listener: OHIF must be at the root of its origin.
    pub listen: SocketAddr,
}

/// OHIF's study list and viewer route (`/viewer?StudyInstanceUIDs=…`).
pub const VIEWER_ROUTE: &str = "/viewer";

/// What the viewer listener serves besides the files of DIR, loaded once at
/// start-up.
#[derive(Debug)]
pub struct OhifSite {
    dir: PathBuf,
    index_html: Bytes,
    app_config: Bytes,
    csp: HeaderValue,
}

impl OhifSite {
    /// Reads DIR's `index.html` and prepares the generated configuration
    /// and the page policy.
    pub async fn load(config: &OhifConfig, site_name: &str) -> Result<Self, ServerError> {
        let dir = config.dir.clone();
        let index_path = dir.join("index.html");
        let index_html =
            tokio::fs::read(&index_path)
                .await
                .map_err(|err| ServerError::OhifDir {
                    path: dir.clone(),
                    reason: format!("cannot read index.html ({err})"),
                })?;
        let index_text = String::from_utf8_lossy(&index_html);
        if !index_text.contains("/app-config.js") {
            return Err(ServerError::OhifDir {
                path: dir,
                reason: "its index.html does not load /app-config.js, so it is no OHIF build"
                    .to_owned(),
            });
        }
        let csp =
            HeaderValue::from_str(&content_security_policy(&inline_script_hashes(&index_text)))
                .map_err(|err| ServerError::OhifDir {
                    path: dir.clone(),
                    reason: format!("cannot form its Content-Security-Policy ({err})"),
                })?;
        Ok(Self {
            dir,
            index_html: Bytes::from(index_html),
            app_config: Bytes::from(app_config(site_name)),
            csp,
        })
    }
}

/// `'sha256-…'` of every inline `<script>` of OHIF's `index.html` (it sets
/// `window.PUBLIC_URL` inline), so the policy needs no `'unsafe-inline'`.
fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        rest = &rest[start..];
        let Some(open_end) = rest.find('>') else {
            break;
        };
        let open_tag = &rest[..open_end];
        let body_start = open_end + 1;
        let Some(close) = rest[body_start..].find("</script>") else {
            break;
        };
        let body = &rest[body_start..body_start + close];
        if !open_tag.contains(" src=") && !body.is_empty() {
            let digest = Sha256::digest(body.as_bytes());
            hashes.push(format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            ));
        }
        rest = &rest[body_start + close..];
    }
    hashes
}

/// The viewer's policy: everything from this origin only; what OHIF needs
/// beyond the pages' policy is WebAssembly compilation (its codecs),
/// workers, `blob:`/`data:` images and fonts, and inline styles (React sets
/// `style` attributes). Never framed, no plugins, no foreign requests.
fn content_security_policy(script_hashes: &[String]) -> String {
    let mut script_src = String::from("'self' 'wasm-unsafe-eval'");
    for hash in script_hashes {
        script_src.push(' ');
        script_src.push_str(hash);
    }
    format!(
        "default-src 'self'; script-src {script_src}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; \
         worker-src 'self' blob:; media-src 'self' blob:; object-src 'none'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'self'"
    )
}

/// OHIF's `window.config`: our DICOMweb root on this origin as its only
/// data source. WADO-URI returns each stored file whole, which OHIF's
/// stack viewport decodes itself; QIDO answers `includefield`.
fn app_config(site_name: &str) -> String {
    let friendly = serde_json::Value::String(format!("xnatkit {site_name}")).to_string();
    format!(
        r#"// Generated by xnatkit serve --ohif-dir: the DICOMweb of this server.
(function () {{
  var root = window.location.origin + '{root}';
  window.config = {{
    routerBasename: null,
    extensions: [],
    modes: [],
    customizationService: {{}},
    showStudyList: true,
    maxNumberOfWebWorkers: 3,
    showWarningMessageForCrossOrigin: false,
    showCPUFallbackMessage: true,
    showLoadingIndicator: true,
    strictZSpacingForVolumeViewport: true,
    useSharedArrayBuffer: 'FALSE',
    maxNumRequests: {{ interaction: 100, thumbnail: 5, prefetch: 25 }},
    showErrorDetails: 'always',
    defaultDataSourceName: 'xnatkit',
    dataSources: [
      {{
        namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
        sourceName: 'xnatkit',
        configuration: {{
          friendlyName: {friendly},
          name: 'xnatkit',
          qidoRoot: root,
          wadoRoot: root,
          wadoUriRoot: root + '/wado',
          qidoSupportsIncludeField: true,
          imageRendering: 'wadouri',
          thumbnailRendering: 'wadouri',
          enableStudyLazyLoad: true,
          supportsFuzzyMatching: false,
          supportsWildcard: true,
          supportsReject: false,
          staticWado: false,
          singlepart: 'bulkdata,video,pdf',
          bulkDataURI: {{ enabled: true }},
          omitQuotationForMultipartRequest: true,
        }},
      }},
    ],
    // A session that ended while the viewer was open: log in again and
    // come back here.
    httpErrorHandler: function (error) {{
      if (error && error.status === 401) {{
        var here = window.location.pathname + window.location.search;
        window.location.assign('{login}?next=' + encodeURIComponent(here));
      }}
    }},
  }};
}})();
"#,
        root = crate::routes::dicomweb::ROOT,
        login = crate::routes::ui::LOGIN_PATH,
    )
}

/// The viewer listener's router: OHIF's files, the generated configuration,
/// DICOMweb and the login page, behind the same layers as the main app.
pub fn app(state: AppState, site: Arc<OhifSite>) -> Router {
    let ohif = Router::new()
        .route("/app-config.js", get(serve_app_config))
        .fallback(serve_ohif)
        .with_state(site);
    let routed = Router::new()
        .merge(crate::routes::dicomweb::routes())
        .merge(crate::routes::ui::routes())
        .merge(crate::web::static_routes())
        .fallback_service(ohif);
    crate::routes::layered(routed, state).layer(middleware::from_fn(no_password_dialog))
}

/// A 401 here goes to OHIF's scripts, which send the user to the login page
/// ([`app_config`]); XNAT's `WWW-Authenticate: Basic` would make the browser
/// ask for a password in its own dialog instead.
async fn no_password_dialog(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().remove(header::WWW_AUTHENTICATE);
    response
}

async fn serve_app_config(State(site): State<Arc<OhifSite>>) -> Response {
    let mut response = site.app_config.clone().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A file of DIR, else (OHIF's own routes: `/`, `/viewer`, …) its
/// `index.html` for a logged-in user; anonymous visitors get the 401 that
/// the authentication layer turns into the login page.
async fn serve_ohif(
    State(site): State<Arc<OhifSite>>,
    caller: Caller,
    method: Method,
    request: Request,
) -> Response {
    if !matches!(method, Method::GET | Method::HEAD) {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on the viewer's files"),
        )
            .into_response();
    }
    let path = request.uri().path();
    if let Some(file) = file_in(&site.dir, path)
        && path != "/index.html"
        && let Ok(meta) = tokio::fs::metadata(&file).await
        && meta.is_file()
    {
        return match tokio::fs::File::open(&file).await {
            Ok(opened) => {
                let mut response = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
                    opened,
                    256 * 1024,
                ))
                .into_response();
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_TYPE, content_type(&file));
                if let Ok(len) = HeaderValue::from_str(&meta.len().to_string()) {
                    headers.insert(header::CONTENT_LENGTH, len);
                }
                // Bundles have content hashes in their names; the rest is
                // small. An hour spares reloads without pinning old builds.
                headers.insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("private, max-age=3600"),
                );
                response
            }
            Err(err) => {
                ApiError::Internal(format!("opening {}: {err}", file.display())).into_response()
            }
        };
    }
    if caller.user.is_none() {
        return ApiError::Unauthorized("Login required to use the viewer".to_owned())
            .into_response();
    }
    let mut response = site.index_html.clone().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CONTENT_SECURITY_POLICY, site.csp.clone());
    response
}

/// The file under DIR that a URL path names, or `None` for a path that
/// could leave DIR (`..`, backslashes, NUL) or names a hidden file.
fn file_in(dir: &Path, url_path: &str) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(url_path)
        .decode_utf8()
        .ok()?;
    let mut file = dir.to_path_buf();
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        if segment.starts_with('.') || segment.contains('\\') || segment.contains('\0') {
            return None;
        }
        file.push(segment);
    }
    (file != dir).then_some(file)
}

fn content_type(file: &Path) -> HeaderValue {
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    HeaderValue::from_static(match extension.as_str() {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "xml" => "application/xml",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    })
}

/// Where the main listener's "View" links go: OHIF's viewer for these
/// studies on the viewer's port of the host the browser already uses (the
/// session cookie then holds there too).
pub fn viewer_url(request_host: &str, tls: bool, ohif_port: u16, query: &str) -> String {
    let host = host_without_port(request_host);
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{host}:{ohif_port}{VIEWER_ROUTE}?{query}")
}

fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return rest
            .split(']')
            .next()
            .map_or(host, |inner| &host[..inner.len() + 2]);
    }
    host.rsplit_once(':').map_or(host, |(name, _port)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_hashed_and_src_scripts_are_not() {
        let html = r#"<script>window.PUBLIC_URL="/"</script><script src="/app-config.js"></script><script defer="defer" src="/a.js"></script>"#;
        let hashes = inline_script_hashes(html);
        assert_eq!(hashes.len(), 1);
        let expected = base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(br#"window.PUBLIC_URL="/""#));
        assert_eq!(hashes[0], format!("'sha256-{expected}'"));
        let policy = content_security_policy(&hashes);
        assert!(policy.contains(&hashes[0]));
        assert!(!policy.contains("'unsafe-eval'"));
        assert!(!policy.contains("script-src 'self' 'unsafe-inline'"));
    }

    #[test]
    fn url_paths_never_leave_the_folder() {
        let dir = Path::new("/srv/ohif");
        assert_eq!(
            file_in(dir, "/assets/x.png"),
            Some(PathBuf::from("/srv/ohif/assets/x.png"))
        );
        assert_eq!(file_in(dir, "/../etc/passwd"), None);
        assert_eq!(file_in(dir, "/%2e%2e/etc/passwd"), None);
        assert_eq!(file_in(dir, "/.xnatkit-ohif-version"), None);
        assert_eq!(file_in(dir, "/a%5c..%5cb"), None);
        assert_eq!(file_in(dir, "/"), None);
    }

    #[test]
    fn view_links_keep_the_browsers_host_and_change_the_port() {
        assert_eq!(
            viewer_url("127.0.0.1:8080", false, 8081, "StudyInstanceUIDs=1.2"),
            "http://127.0.0.1:8081/viewer?StudyInstanceUIDs=1.2"
        );
        assert_eq!(
            viewer_url("xnat.example.org", true, 8443, "StudyInstanceUIDs=1.2"),
            "https://xnat.example.org:8443/viewer?StudyInstanceUIDs=1.2"
        );
        assert_eq!(
            viewer_url("[::1]:8080", false, 8081, "q"),
            "http://[::1]:8081/viewer?q"
        );
    }

    #[test]
    fn the_generated_config_points_at_our_dicomweb() {
        let config = app_config("XNAT");
        assert!(config.contains("'/xapi/dicomweb'"));
        assert!(config.contains("imageRendering: 'wadouri'"));
        assert!(config.contains("\"xnatkit XNAT\""));
    }
}
