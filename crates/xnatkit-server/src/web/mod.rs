//! The web interface: server-rendered pages under `/app/` for people in a
//! browser, next to the REST API that scripts use.
//!
//! Why server-rendered: the pages come from the same domain functions as
//! the REST API ([`crate::archive::browse`], the download selection of
//! `routes::archive::download`), so a page can never show more than the
//! REST listing would, and every page is testable with plain HTTP. There is
//! no Node in the build: templates are askama (compiled in, escaping every
//! value), and the only script besides ours is one vendored htmx file,
//! served from the binary like the stylesheet ([`assets`]).
//!
//! Security model ([`csrf`]): every unsafe request from a page carries the
//! per-session form token and must not come from another site; pages get a
//! Content-Security-Policy that allows scripts from this site only (no
//! inline script anywhere); the session cookie is `HttpOnly; SameSite=Lax`
//! ([`crate::auth`]). Deep links mirror the REST paths:
//! `/app/projects/P/subjects/S/experiments/E` ↔ `/data/projects/P/…`.

mod admin;
mod assets;
pub mod csrf;
mod download;
mod edit;
mod links;
mod manage;
mod pages;
mod pipelines;
mod prearchive;
mod upload;

use askama::Template;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::access::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// The CSP of every page: scripts, styles and requests from this site
/// only, no inline script or style, forms post only here, never framed.
pub const PAGE_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The web pages and their assets.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/app", get(pages::home))
        .route("/app/", get(pages::home))
        .route("/app/logout", post(pages::logout))
        .merge(static_routes())
        .route("/app/viewer", get(pages::viewer))
        // Uploads are limited by the import's own configurable maximum.
        .route(
            "/app/upload",
            get(upload::form)
                .post(upload::upload)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/app/projects",
            get(pages::projects).post(pages::create_project),
        )
        .route("/app/projects/{project}", get(pages::project))
        .route("/app/projects/{project}/access", get(pages::access))
        .route(
            "/app/projects/{project}/download",
            get(download::dialog).post(download::download),
        )
        .route(
            "/app/projects/{project}/prearchive",
            get(prearchive::list).post(prearchive::act),
        )
        .route(
            "/app/projects/{project}/prearchive/{timestamp}/{folder}",
            get(prearchive::detail),
        )
        .route(
            "/app/projects/{project}/access/members",
            post(pages::change_member),
        )
        .route(
            "/app/projects/{project}/access/accessibility",
            post(pages::change_accessibility),
        )
        .route(
            "/app/projects/{project}/pipelines",
            get(pipelines::project_runs).post(pipelines::launch_project),
        )
        .route(
            "/app/projects/{project}/pipelines/{run}",
            get(pipelines::run),
        )
        .route(
            "/app/projects/{project}/subjects/{subject}/experiments/{experiment}/pipelines",
            post(pipelines::launch_session),
        )
        .route("/app/admin/users", get(admin::users).post(admin::create))
        .route("/app/admin/users/{username}", post(admin::change))
        .route(
            "/app/projects/{project}/subjects/{subject}/fields",
            post(edit::subject_fields),
        )
        .route(
            "/app/projects/{project}/subjects/{subject}/experiments/{experiment}/fields",
            post(edit::session_fields),
        )
        .route(
            "/app/projects/{project}/subjects/{subject}/delete",
            get(edit::confirm_subject).post(edit::delete_subject),
        )
        .route(
            "/app/projects/{project}/subjects/{subject}/experiments/{experiment}/delete",
            get(edit::confirm_session).post(edit::delete_session),
        )
        .route(
            "/app/projects/{project}/subjects/{subject}/experiments/{experiment}/scans/{scan}/delete",
            get(edit::confirm_scan).post(edit::delete_scan),
        )
        .route("/app/projects/{project}/manage", get(manage::manage))
        .route(
            "/app/projects/{project}/manage/prearchive",
            post(manage::set_prearchive),
        )
        .route(
            "/app/projects/{project}/manage/pipelines",
            post(manage::set_pipeline),
        )
        .route(
            "/app/projects/{project}/manage/email",
            post(manage::set_email),
        )
        .route(
            "/app/projects/{project}/subjects/{subject}",
            get(pages::subject),
        )
        .route(
            "/app/projects/{project}/subjects/{subject}/experiments/{experiment}",
            get(pages::session),
        )
        .route(
            "/app/projects/{project}/subjects/{subject}/experiments/{experiment}/download",
            get(pages::download),
        )
        .route(
            "/app/projects/{project}/subjects/{subject}/experiments/{experiment}/files",
            post(upload::session_files).layer(DefaultBodyLimit::disable()),
        )
}

/// The pages' stylesheet and scripts (also served by the OHIF listener,
/// whose login page uses them).
pub fn static_routes() -> Router<AppState> {
    Router::new().route("/app/static/{name}", get(assets::asset))
}

/// A link in the breadcrumb.
#[derive(Debug, Clone)]
pub struct Crumb {
    pub label: String,
    pub href: String,
}

/// What every page's frame shows: title, breadcrumb, who is logged in and
/// the form token the page's forms carry.
#[derive(Debug, Clone)]
pub struct Layout {
    pub site: String,
    pub title: String,
    pub crumbs: Vec<Crumb>,
    pub user: Option<String>,
    /// A site admin is logged in (the header links to Admin → Users).
    pub admin: bool,
    pub csrf: String,
    /// Idle seconds before the session ends (for the logout warning).
    pub session_timeout_s: u64,
}

impl Layout {
    pub fn new(state: &AppState, caller: &Caller, title: impl Into<String>) -> Self {
        Self {
            site: state.config().site_id.clone(),
            title: title.into(),
            crumbs: Vec::new(),
            user: caller.username().map(str::to_owned),
            admin: caller.is_admin(),
            csrf: caller
                .session_id
                .as_deref()
                .map(csrf::form_token)
                .unwrap_or_default(),
            session_timeout_s: state.config().session_timeout.as_secs(),
        }
    }

    pub fn crumb(mut self, label: impl Into<String>, href: impl Into<String>) -> Self {
        self.crumbs.push(Crumb {
            label: label.into(),
            href: href.into(),
        });
        self
    }
}

/// A rendered page with the page CSP; a template error is a 500.
pub fn page(status: StatusCode, rendered: askama::Result<String>) -> Response {
    match rendered {
        Ok(html) => {
            let mut response = (status, html).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_CONTENT_SECURITY_POLICY),
            );
            response
        }
        Err(err) => ApiError::Internal(format!("rendering a page: {err}")).into_response(),
    }
}

#[derive(Template)]
#[template(path = "web/error.html")]
struct ErrorPage {
    layout: Layout,
    message: String,
}

/// A refusal or failure shown as a page with XNAT's status: 404 for what
/// the caller may not see, 403 for what it sees but may not do. An
/// anonymous caller gets a bare 401, which the authentication layer turns
/// into the login redirect for a browser (and which carries no
/// `WWW-Authenticate`, so no browser shows its own password dialog).
#[derive(Debug)]
pub struct WebError(pub ApiError);

impl<E: Into<ApiError>> From<E> for WebError {
    fn from(err: E) -> Self {
        Self(err.into())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        match &self.0 {
            ApiError::Unauthorized(_) => {
                return (StatusCode::UNAUTHORIZED, "Login required").into_response();
            }
            ApiError::Internal(detail) => tracing::error!("{detail}"),
            _ => {}
        }
        let message = match &self.0 {
            ApiError::Internal(_) => "Internal server error".to_owned(),
            other => other.to_string(),
        };
        let title = status.canonical_reason().unwrap_or("Error").to_owned();
        let layout = Layout {
            site: String::new(),
            title,
            crumbs: vec![Crumb {
                label: "Projects".to_owned(),
                href: "/app/projects".to_owned(),
            }],
            user: None,
            admin: false,
            csrf: String::new(),
            session_timeout_s: 0,
        };
        page(status, ErrorPage { layout, message }.render())
    }
}

/// The caller, or the 401 that sends a browser to the login page: every
/// page but the login page needs a logged-in user.
pub fn require_login(caller: &Caller) -> Result<(), WebError> {
    if caller.user.is_none() {
        return Err(WebError(ApiError::Unauthorized(
            "Login required".to_owned(),
        )));
    }
    Ok(())
}

/// A 303 to a path on this site.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
