//! XNAT's download catalogs (`CatalogApi`, under `/xapi/archive`), which
//! XNAT's "Download Images" dialog, its scripts and the Desktop Client
//! use: `POST …/download` or `…/downloadwithsize` with
//! `{"sessions": ["P:SUBJECT:LABEL:ID", …], "scan_types": […],
//! "scan_formats": […], "resources": [session resource labels],
//! "assessors": [assessor types], "options": ["simplified", …]}` answers a catalog
//! ID (and the total size); `GET …/download/{id}` and `…/{id}/xml` give
//! the catalog as XML, `…/{id}/zip` streams its files. The selection is
//! [`crate::routes::archive::images`], the one the web dialog uses, with
//! the same read check per project.
//!
//! Catalogs are kept in memory per user for [`CATALOG_LIFETIME`], as XNAT
//! caches them per user; the files are resolved again when one is read, so
//! a catalog never serves a file deleted since.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::access::Caller;
use crate::error::ApiError;
use crate::params::Params;
use crate::routes::archive::Ctx;
use crate::routes::archive::images::{
    ImagePick, PathOptions, SessionChoice, chosen_sessions, select_images, stream_selection,
    xml_text,
};
use crate::state::AppState;
use crate::store::DownloadSession;

/// How long a catalog ID stays valid.
pub const CATALOG_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Catalogs kept in all; the oldest go first.
const MAX_CATALOGS: usize = 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/xapi/archive/download", post(create_catalog))
        .route(
            "/xapi/archive/downloadwithsize",
            post(create_catalog_with_size),
        )
        .route("/xapi/archive/download/{id}", get(catalog_xml))
        .route("/xapi/archive/download/{id}/xml", get(catalog_xml_file))
        .route("/xapi/archive/download/{id}/zip", get(catalog_zip))
}

/// A catalog as requested: the sessions per project and what to take.
#[derive(Clone)]
struct Catalog {
    user: String,
    created: Instant,
    projects: BTreeMap<String, HashSet<String>>,
    pick: ImagePick,
}

static CATALOGS: LazyLock<Mutex<HashMap<String, Catalog>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// XNAT's request body: lists of strings by key (a single string is read
/// as a list of one).
#[derive(Deserialize)]
#[serde(untagged)]
enum Values {
    Many(Vec<String>),
    One(String),
}

fn list(body: &HashMap<String, Values>, key: &str) -> Vec<String> {
    match body.get(key) {
        Some(Values::Many(v)) => v.clone(),
        Some(Values::One(v)) => v.split(',').map(|s| s.trim().to_owned()).collect(),
        None => Vec::new(),
    }
}

fn options(values: &[String]) -> PathOptions {
    let on = |name: &str| {
        values.iter().any(|v| {
            let (key, value) = v.split_once('=').unwrap_or((v, "true"));
            key.trim().eq_ignore_ascii_case(name) && value.trim() != "false"
        })
    };
    PathOptions {
        project_in_path: on("projectIncludedInPath"),
        subject_in_path: on("subjectIncludedInPath"),
        simplified: on("simplified"),
    }
}

fn user_key(caller: &Caller) -> String {
    caller.username().unwrap_or("guest").to_owned()
}

fn ctx(state: AppState, caller: Caller, headers: HeaderMap) -> Ctx {
    Ctx {
        state,
        caller,
        method: Method::GET,
        params: Params::from_query(Some("format=zip")),
        headers,
    }
}

/// The sessions of a catalog, per project, after each project's read check.
async fn resolve(
    ctx: &Ctx,
    catalog: &Catalog,
) -> Result<Vec<(String, Vec<DownloadSession>)>, ApiError> {
    let mut out = Vec::new();
    for (project, ids) in &catalog.projects {
        let choice = SessionChoice {
            only: Some(ids.clone()),
            ..SessionChoice::default()
        };
        out.push((
            project.clone(),
            chosen_sessions(ctx, project, &choice).await?,
        ));
    }
    Ok(out)
}

async fn build(
    state: AppState,
    caller: Caller,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(String, u64), ApiError> {
    let body: HashMap<String, Values> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the download request must be a JSON object of string lists (sessions, scan_types, scan_formats, resources, assessors, options): {e}"
        ))
    })?;
    let sessions = list(&body, "sessions");
    if sessions.is_empty() {
        return Err(ApiError::BadRequest(
            "no sessions in the download request; send \"sessions\": [\"PROJECT:SUBJECT:LABEL:ID\", …]"
                .to_owned(),
        ));
    }
    let mut projects: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for session in &sessions {
        let atoms: Vec<&str> = session.split(':').collect();
        let [project, _subject, label, id] = atoms[..] else {
            return Err(ApiError::BadRequest(format!(
                "session {session} is not PROJECT:SUBJECT:LABEL:ID"
            )));
        };
        let entry = projects.entry(project.to_owned()).or_default();
        entry.insert(if id.is_empty() { label } else { id }.to_owned());
    }
    let catalog = Catalog {
        user: user_key(&caller),
        created: Instant::now(),
        projects,
        pick: ImagePick {
            scan_types: list(&body, "scan_types").into_iter().collect(),
            formats: list(&body, "scan_formats").into_iter().collect(),
            resources: list(&body, "resources").into_iter().collect(),
            assessors: list(&body, "assessors").into_iter().collect(),
            options: options(&list(&body, "options")),
        },
    };
    let ctx = ctx(state, caller, headers);
    let mut size = 0u64;
    for (project, sessions) in resolve(&ctx, &catalog).await? {
        for file in select_images(&ctx, &project, &sessions, &catalog.pick).await? {
            size += file.entry.size;
        }
    }
    let id = format!(
        "{}-{}{:04}",
        catalog.user,
        chrono::Utc::now().format("%Y%m%d_%H%M%S%3f"),
        rand::random::<u16>() % 10_000
    );
    let mut catalogs = CATALOGS
        .lock()
        .map_err(|_| ApiError::Internal("download catalogs lock poisoned".to_owned()))?;
    catalogs.retain(|_, c| c.created.elapsed() < CATALOG_LIFETIME);
    while catalogs.len() >= MAX_CATALOGS {
        let oldest = catalogs
            .iter()
            .min_by_key(|(_, c)| c.created)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(key) => catalogs.remove(&key),
            None => break,
        };
    }
    catalogs.insert(id.clone(), catalog);
    Ok((id, size))
}

/// `POST /xapi/archive/download`: the catalog's ID as text.
async fn create_catalog(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (id, _) = build(state, caller, headers, body).await?;
    Ok(id.into_response())
}

/// `POST /xapi/archive/downloadwithsize`: `{"id", "size",
/// "resourcesOfUnknownSize"}`, all strings as XNAT sends them.
async fn create_catalog_with_size(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (id, size) = build(state, caller, headers, body).await?;
    let answer = serde_json::json!({
        "id": id,
        "size": size.to_string(),
        "resourcesOfUnknownSize": "0",
    });
    Ok(super::json(answer.to_string()))
}

/// The caller's catalog `id`, or 404 (also for another user's catalog).
fn cached(caller: &Caller, id: &str) -> Result<Catalog, ApiError> {
    let catalogs = CATALOGS
        .lock()
        .map_err(|_| ApiError::Internal("download catalogs lock poisoned".to_owned()))?;
    catalogs
        .get(id)
        .filter(|c| c.user == user_key(caller) && c.created.elapsed() < CATALOG_LIFETIME)
        .cloned()
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "No catalog with ID {id} was found; create one with POST /xapi/archive/downloadwithsize"
            ))
        })
}

/// The catalog in XNAT's `cat:Catalog` form: one entry set per session,
/// one entry per file (its archive URI, its path in the zip, size, MD5).
async fn render_xml(ctx: &Ctx, id: &str, catalog: &Catalog) -> Result<String, ApiError> {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<cat:Catalog xmlns:cat=\"http://nrg.wustl.edu/catalog\" ID=\"{}\">\n<cat:sets>\n",
        xml_text(id)
    );
    for (project, sessions) in resolve(ctx, catalog).await? {
        for session in &sessions {
            xml.push_str(&format!(
                "<cat:entrySet ID=\"{}\" description=\"Project: {}, subject: {}, label: {}\">\n<cat:entries>\n",
                xml_text(&session.id),
                xml_text(&project),
                xml_text(&session.subject_label),
                xml_text(&session.label)
            ));
            let files =
                select_images(ctx, &project, std::slice::from_ref(session), &catalog.pick).await?;
            for file in files {
                let field = |key: &str| xml_text(file.row.get(key).map_or("", String::as_str));
                xml.push_str(&format!(
                    "<cat:entry ID=\"{}\" URI=\"{}\" name=\"{}\" size=\"{}\" digest=\"{}\"/>\n",
                    xml_text(&file.entry.name),
                    field("URI"),
                    field("Name"),
                    file.entry.size,
                    field("digest")
                ));
            }
            xml.push_str("</cat:entries>\n</cat:entrySet>\n");
        }
    }
    xml.push_str("</cat:sets>\n</cat:Catalog>\n");
    Ok(xml)
}

fn xml_response(xml: String, attachment: Option<&str>) -> Response {
    let mut response = xml.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    if let Some(name) = attachment
        && let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.xml\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// `GET /xapi/archive/download/{id}`.
async fn catalog_xml(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let catalog = cached(&caller, &id)?;
    let ctx = ctx(state, caller, headers);
    Ok(xml_response(render_xml(&ctx, &id, &catalog).await?, None))
}

/// `GET /xapi/archive/download/{id}/xml`: the same, as a file.
async fn catalog_xml_file(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let catalog = cached(&caller, &id)?;
    let ctx = ctx(state, caller, headers);
    Ok(xml_response(
        render_xml(&ctx, &id, &catalog).await?,
        Some(&id),
    ))
}

/// `GET /xapi/archive/download/{id}/zip`: the catalog's files as one
/// streamed zip.
async fn catalog_zip(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let catalog = cached(&caller, &id)?;
    let ctx = ctx(state, caller, headers);
    let mut selected = Vec::new();
    for (project, sessions) in resolve(&ctx, &catalog).await? {
        selected.extend(select_images(&ctx, &project, &sessions, &catalog.pick).await?);
    }
    stream_selection(&ctx, selected, &id)
}
