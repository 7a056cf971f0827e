//! The workflow routes: `/data/workflows[/{id}]`,
//! `/data/services/workflows[/{pipeline}]` (pyxnat's `Pipeline.status()`)
//! and `/data/projects/{p}/pipelines[/{name}]` (pyxnat's
//! `Pipeline.exists()`: a wrapper of that name).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use xnatkit_model::{ResultSet, Row};

use super::{numeric, ok};
use crate::access::{Action, Caller};
use crate::archive::{Actor, project_access};
use crate::engine::{commands, workflows};
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/data/workflows", get(list_all))
        .route("/data/workflows/{wid}", get(get_one))
        .route("/data/services/workflows", get(service))
        .route("/data/services/workflows/{pipeline}", get(service))
        .route("/data/projects/{project}/pipelines", get(pipelines))
        .route(
            "/data/projects/{project}/pipelines/{name}",
            get(pipeline).head(pipeline),
        )
}

fn table(title: &str, columns: &[&str], rows: Vec<Row>, q: &BTreeMap<String, String>) -> Response {
    let mut set = ResultSet::new(title, columns);
    for row in rows {
        set.push(row);
    }
    let csv = q
        .get("format")
        .is_some_and(|f| f.eq_ignore_ascii_case("csv"));
    let (body, mime) = if csv {
        (set.to_csv(), "text/csv; charset=utf-8")
    } else {
        (set.to_json(), "application/json; charset=utf-8")
    };
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    response
}

async fn list_all(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let rows = workflows::list(
        &Actor {
            state: &state,
            caller: &caller,
        },
        q.get("pipeline_name").map(String::as_str),
        q.get("project").map(String::as_str),
        q.get("experiment")
            .or_else(|| q.get("ID"))
            .map(String::as_str),
    )
    .await?;
    Ok(table(
        "Workflows",
        &workflows::COLUMNS,
        rows.iter().map(workflows::row).collect(),
        &q,
    ))
}

async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(wid): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let w = workflows::get(
        &Actor {
            state: &state,
            caller: &caller,
        },
        numeric(&wid, "workflow")?,
    )
    .await?;
    Ok(table(
        "Workflows",
        &workflows::COLUMNS,
        vec![workflows::row(&w)],
        &q,
    ))
}

async fn service(
    State(state): State<AppState>,
    caller: Caller,
    pipeline: Option<Path<String>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_user()?;
    let pipeline = pipeline.map(|Path(p)| p);
    let mut rows = workflows::list(
        &Actor {
            state: &state,
            caller: &caller,
        },
        pipeline.as_deref(),
        q.get("project").map(String::as_str),
        q.get("experiment").map(String::as_str),
    )
    .await?;
    if let Some(status) = q.get("status") {
        rows.retain(|w| w.status.eq_ignore_ascii_case(status));
    }
    // LATEST (the default): the newest row per (session, scan, pipeline).
    let all = q
        .get("display")
        .is_some_and(|d| d.eq_ignore_ascii_case("ALL"));
    if !all {
        let mut newest: BTreeMap<(String, String, String), usize> = BTreeMap::new();
        for (i, w) in rows.iter().enumerate() {
            newest.insert(
                (
                    w.data_id.clone(),
                    w.scan_id.clone(),
                    w.pipeline_name.clone(),
                ),
                i,
            );
        }
        let keep: std::collections::BTreeSet<usize> = newest.into_values().collect();
        rows = rows
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep.contains(i))
            .map(|(_, w)| w)
            .collect();
    }
    Ok(table(
        "Workflows",
        &workflows::COLUMNS,
        rows.iter().map(workflows::row).collect(),
        &q,
    ))
}

async fn check_project(state: &AppState, caller: &Caller, project: &str) -> Result<(), ApiError> {
    let found = state
        .store()
        .project(project)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("project {project}")))?;
    project_access(&Actor { state, caller }, &found)
        .await?
        .check(Action::ReadProject, &format!("project {project}"))?;
    Ok(())
}

async fn pipelines(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    check_project(&state, &caller, &project).await?;
    let rows: Vec<Row> = commands::available(&state, Some(&project), None)
        .await?
        .into_iter()
        .map(|a| {
            [
                ("Name", a.wrapper_name),
                ("Description", a.wrapper_description),
                ("Datatype", a.root_element_name),
                ("Enabled", a.enabled.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
        })
        .collect();
    Ok(table(
        "Pipelines",
        &["Name", "Description", "Datatype", "Enabled"],
        rows,
        &q,
    ))
}

async fn pipeline(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_project(&state, &caller, &project).await?;
    commands::wrapper_by_name(&state, &name).await?;
    Ok(ok())
}
