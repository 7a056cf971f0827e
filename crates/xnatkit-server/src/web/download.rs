//! The "Download images" dialog of a project (or of a subject, or of some
//! sessions): sessions chosen by the table's filter and resolved on the
//! server ("all N matching", never thousands of checkboxes), scan types
//! and formats with counts from SQL, XNAT's path options, and one
//! streamed zip or tar.gz from a plain form POST. The selection and the
//! streaming are [`crate::routes::archive::images`], shared with XNAT's
//! `/xapi/archive/download…` routes.

use std::collections::HashSet;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use xnatkit_model::encode_segment;

use super::{Layout, WebError, csrf, page, require_login};
use crate::access::Caller;
use crate::archive::Actor;
use crate::archive::browse::readable_project;
use crate::error::ApiError;
use crate::params::Params;
use crate::routes::archive::Ctx;
use crate::routes::archive::images::{
    ImagePick, PathOptions, SessionChoice, UNASSIGNED_TYPE, download_images,
};
use crate::state::AppState;
use crate::store::SessionFilter;

/// Sessions listed on the page as a sample of the selection.
const SHOWN_SESSIONS: usize = 10;

struct Choice {
    value: String,
    label: String,
    count: i64,
}

struct SessionSample {
    label: String,
    subject: String,
}

#[derive(Template)]
#[template(path = "web/download.html")]
struct DownloadPage {
    layout: Layout,
    id: String,
    name: String,
    project_href: String,
    tab: &'static str,
    filter: String,
    subject: String,
    only: Vec<String>,
    total: usize,
    sample: Vec<SessionSample>,
    types: Vec<Choice>,
    formats: Vec<Choice>,
    /// XNAT's "Additional Resources" (session resources by label) and
    /// "Assessments" (assessors by type), unticked at first.
    resources: Vec<Choice>,
    assessors: Vec<Choice>,
    cli_command: String,
    curl_command: String,
}

/// Sessions listed in the curl command at most; past that the command
/// says how to list them rather than growing without bound.
const CURL_SESSIONS: usize = 50;

fn values_of(choices: &[Choice]) -> Vec<String> {
    choices.iter().map(|c| c.value.clone()).collect()
}

/// The same selection (every type and format listed) through XNAT's
/// catalog API, for scripts: `downloadwithsize`, then `…/{id}/zip`.
fn catalog_command(
    project: &str,
    sessions: &[crate::store::DownloadSession],
    total: usize,
    types: &[String],
    formats: &[String],
) -> String {
    let listed: Vec<String> = if total <= CURL_SESSIONS {
        sessions
            .iter()
            .map(|s| format!("{project}:{}:{}:{}", s.subject_label, s.label, s.id))
            .collect()
    } else {
        vec![format!(
            "PROJECT:SUBJECT:LABEL:ID of each of the {total} sessions"
        )]
    };
    let body = serde_json::json!({
        "sessions": listed,
        "scan_types": types,
        "scan_formats": formats,
        "options": ["simplified"],
    });
    let body = body.to_string().replace('\'', "'\\''");
    format!(
        "curl -u \"$USER\" -H 'Content-Type: application/json' -d '{body}' \"$XNAT/xapi/archive/downloadwithsize\"\n\
         curl -u \"$USER\" -o {project}.zip \"$XNAT/xapi/archive/download/ID/zip\"   # ID from the answer"
    )
}

/// The choice of sessions from the query or the form: `q`, `subject` and
/// any number of `s` (session IDs or labels).
fn session_choice(pairs: &[(String, String)]) -> SessionChoice {
    let value = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let only: HashSet<String> = pairs
        .iter()
        .filter(|(k, v)| k == "s" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    SessionChoice {
        filter: value("q"),
        subject: value("subject"),
        only: (!only.is_empty()).then_some(only),
    }
}

fn pairs_of(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn ctx_for(state: AppState, caller: Caller, headers: HeaderMap, format: &str) -> Ctx {
    let params = Params::from_query(Some(&format!("format={}", encode_segment(format))));
    Ctx {
        state,
        caller,
        method: Method::GET,
        params,
        headers,
    }
}

/// `GET /app/projects/P/download?q=&subject=&s=…`: the dialog.
pub async fn dialog(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    require_login(&caller)?;
    let (found, _) = readable_project(
        &Actor {
            state: &state,
            caller: &caller,
        },
        &project,
    )
    .await?;
    let pairs = pairs_of(query.as_deref().unwrap_or_default().as_bytes());
    let choice = session_choice(&pairs);
    let filter = SessionFilter {
        project: &found.id,
        filter: &choice.filter,
        subject: &choice.subject,
    };
    // A chosen list is short: resolve it whole. Otherwise count in SQL and
    // read only the rows the page shows (a project may hold 10,000).
    let (total, sessions) = if choice.only.is_some() {
        let ctx = ctx_for(state.clone(), caller.clone(), headers, "zip");
        let sessions =
            crate::routes::archive::images::chosen_sessions(&ctx, &found.id, &choice).await?;
        (sessions.len(), sessions)
    } else {
        let store = state.store();
        let total = store.download_session_count(&filter).await?;
        let shown = store
            .download_sessions_up_to(&filter, CURL_SESSIONS as i64 + 1)
            .await?;
        (usize::try_from(total).unwrap_or(usize::MAX), shown)
    };
    let (types, formats) = state.store().download_choices(&filter).await?;
    let types: Vec<Choice> = types
        .into_iter()
        .map(|c| {
            let value = if c.value.is_empty() {
                UNASSIGNED_TYPE.to_owned()
            } else {
                c.value
            };
            Choice {
                label: value.clone(),
                value,
                count: c.count,
            }
        })
        .collect();
    let as_choices = |counted: Vec<crate::store::Counted>| -> Vec<Choice> {
        counted
            .into_iter()
            .map(|c| Choice {
                label: c.value.clone(),
                value: c.value,
                count: c.count,
            })
            .collect()
    };
    let formats = as_choices(formats);
    let (resources, assessors) = state.store().download_extras(&filter).await?;
    let (resources, assessors) = (as_choices(resources), as_choices(assessors));
    let target = if choice.subject.is_empty() {
        found.id.clone()
    } else {
        format!("{}/{}", found.id, choice.subject)
    };
    let cli_command = format!("xnatkit download {target} -o ./{}", found.id);
    let curl_command = catalog_command(
        &found.id,
        &sessions,
        total,
        &values_of(&types),
        &values_of(&formats),
    );
    let project_href = format!("/app/projects/{}", encode_segment(&found.id));
    let layout = Layout::new(&state, &caller, format!("Download images: {}", found.id))
        .crumb("Projects", "/app/projects")
        .crumb(found.id.clone(), project_href.clone());
    let mut only: Vec<String> = choice.only.iter().flatten().cloned().collect();
    only.sort();
    let rendered = DownloadPage {
        layout,
        name: found.name.clone(),
        id: found.id.clone(),
        project_href,
        tab: "download",
        filter: choice.filter,
        subject: choice.subject,
        only,
        total,
        sample: sessions
            .iter()
            .take(SHOWN_SESSIONS)
            .map(|s| SessionSample {
                label: s.label.clone(),
                subject: s.subject_label.clone(),
            })
            .collect(),
        types,
        formats,
        resources,
        assessors,
        cli_command,
        curl_command,
    }
    .render();
    Ok(page(StatusCode::OK, rendered))
}

/// `POST /app/projects/P/download`: the chosen images as one streamed
/// archive. The body is read as it comes so the token check answers a
/// post without a form (403), not the form parser.
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(project): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, WebError> {
    require_login(&caller)?;
    let pairs = pairs_of(&body);
    let token = pairs
        .iter()
        .find(|(k, _)| k == csrf::FIELD)
        .map(|(_, v)| v.as_str());
    csrf::check(&headers, &caller, token)?;
    let all = |key: &str| -> HashSet<String> {
        pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let on = |key: &str| pairs.iter().any(|(k, v)| k == key && v != "false");
    let pick = ImagePick {
        scan_types: all("type"),
        formats: all("format"),
        resources: all("resource"),
        assessors: all("assessor"),
        options: PathOptions {
            project_in_path: on("projectIncludedInPath"),
            subject_in_path: on("subjectIncludedInPath"),
            simplified: on("simplified"),
        },
    };
    let scans_picked = !pick.scan_types.is_empty() && !pick.formats.is_empty();
    if !scans_picked && pick.resources.is_empty() && pick.assessors.is_empty() {
        return Err(WebError(ApiError::BadRequest(
            "nothing to download: tick at least one scan type and one scan format, a session resource or an assessment".to_owned(),
        )));
    }
    let archive = pairs
        .iter()
        .find(|(k, _)| k == "archive")
        .map(|(_, v)| v.as_str())
        .unwrap_or("zip");
    if !matches!(archive, "zip" | "tar" | "tar.gz") {
        return Err(WebError(ApiError::BadRequest(format!(
            "archive format {archive} is not offered; choose zip, tar or tar.gz"
        ))));
    }
    let choice = session_choice(&pairs);
    let ctx = ctx_for(state, caller, headers, archive);
    let mut response = download_images(&ctx, &project, &choice, &pick).await?;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response.into_response())
}
