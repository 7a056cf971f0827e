//! The project's Manage tab (owners and site admins): the prearchive
//! setting, which pipelines run on archive, who gets the archive email.
//! Each form calls the domain function its REST twin calls
//! (`/data/projects/P/prearchive_code/C`, `/xapi/projects/P/wrappers/W/enabled`
//! with `/xapi/projects/P/events/subscription`,
//! `/xapi/projects/P/archive-email`).

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use xnatkit_model::encode_segment;

use super::{Layout, WebError, csrf, page, require_login, see_other};
use crate::access::Caller;
use crate::access::ingest::prearchive_code_access;
use crate::archive::Actor;
use crate::archive_email;
use crate::engine::project_pipelines::{self, ProjectPipeline};
use crate::error::ApiError;
use crate::state::AppState;

type PageResult = Result<Response, WebError>;

/// XNAT's three prearchive settings, as the Manage tab names them.
const PREARCHIVE_CHOICES: [(i64, &str); 3] = [
    (0, "Manual: sessions wait in the prearchive"),
    (4, "Auto-archive: sessions go to the archive"),
    (
        5,
        "Auto-archive, overwrite: sessions go to the archive and replace existing files",
    ),
];

#[derive(Template)]
#[template(path = "web/manage.html")]
struct ManagePage {
    layout: Layout,
    id: String,
    name: String,
    project_href: String,
    tab: &'static str,
    notice: Option<String>,
    prearchive: Vec<(i64, &'static str, bool)>,
    pipelines: Vec<ProjectPipeline>,
    recipients: String,
    email_on: bool,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<String> {
    let text = match done? {
        "prearchive" => "The prearchive setting was saved.",
        "pipeline" => "The pipeline setting was saved.",
        "email" => "The archive email recipients were saved.",
        _ => return None,
    };
    Some(text.to_owned())
}

fn manage_href(project: &str) -> String {
    format!("/app/projects/{}/manage", encode_segment(project))
}

/// `/app/projects/P/manage`.
pub async fn manage(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> PageResult {
    require_login(&caller)?;
    let project = prearchive_code_access(&state, &caller, &id, true).await?;
    let actor = Actor {
        state: &state,
        caller: &caller,
    };
    let code = state.store().prearchive_code(&project.id).await?;
    let pipelines = project_pipelines::list(&actor, &project.id).await?;
    let recipients = archive_email::recipients(&actor, &project.id).await?;
    let base = format!("/app/projects/{}", encode_segment(&project.id));
    let layout = Layout::new(&state, &caller, "Manage")
        .crumb("Projects", "/app/projects")
        .crumb(project.id.clone(), base.clone());
    let rendered = ManagePage {
        layout,
        id: project.id.clone(),
        name: project.name.clone(),
        project_href: base,
        tab: "manage",
        notice: notice(query.done.as_deref()),
        prearchive: PREARCHIVE_CHOICES
            .iter()
            .map(|&(value, label)| (value, label, value == code))
            .collect(),
        pipelines,
        recipients: recipients.join("\n"),
        email_on: state.config().smtp.is_some(),
    }
    .render();
    Ok(page(StatusCode::OK, rendered))
}

#[derive(Deserialize)]
pub struct PrearchiveForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    code: i64,
}

pub async fn set_prearchive(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<PrearchiveForm>,
) -> PageResult {
    csrf::check(&headers, &caller, form.csrf.as_deref())?;
    require_login(&caller)?;
    let project = prearchive_code_access(&state, &caller, &id, true).await?;
    if !PREARCHIVE_CHOICES.iter().any(|&(c, _)| c == form.code) {
        return Err(WebError(ApiError::BadRequest(format!(
            "prearchive setting {} is not one of 0 (manual), 4 (auto-archive), 5 (overwrite)",
            form.code
        ))));
    }
    state
        .store()
        .set_prearchive_code(&project.id, form.code)
        .await?;
    Ok(see_other(&format!(
        "{}?done=prearchive",
        manage_href(&project.id)
    )))
}

#[derive(Deserialize)]
pub struct PipelineForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    wrapper: i64,
    /// `off`, `enabled` or `on-archive`.
    mode: String,
}

pub async fn set_pipeline(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<PipelineForm>,
) -> PageResult {
    csrf::check(&headers, &caller, form.csrf.as_deref())?;
    require_login(&caller)?;
    let (enabled, on_archive) = match form.mode.as_str() {
        "off" => (false, false),
        "enabled" => (true, false),
        "on-archive" => (true, true),
        other => {
            return Err(WebError(ApiError::BadRequest(format!(
                "unknown pipeline setting {other:?}; use off, enabled or on-archive"
            ))));
        }
    };
    let actor = Actor {
        state: &state,
        caller: &caller,
    };
    project_pipelines::set(&actor, &id, form.wrapper, enabled, on_archive).await?;
    Ok(see_other(&format!("{}?done=pipeline", manage_href(&id))))
}

#[derive(Deserialize)]
pub struct EmailForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    #[serde(default)]
    recipients: String,
}

pub async fn set_email(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<EmailForm>,
) -> PageResult {
    csrf::check(&headers, &caller, form.csrf.as_deref())?;
    require_login(&caller)?;
    let actor = Actor {
        state: &state,
        caller: &caller,
    };
    let addresses = archive_email::split_addresses(&form.recipients);
    archive_email::set_recipients(&actor, &id, &addresses).await?;
    Ok(see_other(&format!("{}?done=email", manage_href(&id))))
}
