//! The Pipelines pages: a project's runs (the Pipelines tab, paged and
//! filtered in SQL, newest first), one run with its logs and outputs, the
//! Pipelines panel of a session page, and the launch forms.
//!
//! Everything goes through the engine's domain functions, never its HTTP
//! handlers: the runs and logs are [`containers`] (what
//! `/xapi/projects/P/containers` and its log route read, with the same
//! read check), a launch is [`launch::launch_each`] (the work of the REST
//! bulk launch: edit rights on each object, the wrapper enabled for the
//! site and the project, the inputs resolved), so a page can launch no
//! more than the API would — and a refused launch shows the engine's own
//! message. The wrappers offered are those enabled in the project
//! ([`commands::available`]).

use std::collections::{BTreeMap, HashSet};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use xnatkit_engine::JobStatus;
use xnatkit_engine::resolve::root_input;
use xnatkit_model::encode_segment;

use super::links::{actor, project_href, session_href};
use super::{Layout, WebError, csrf, page, require_login, see_other};
use crate::access::{Action, Caller};
use crate::archive::browse::readable_project;
use crate::engine::commands;
use crate::engine::containers::{self, RunOutput};
use crate::engine::launch::{self, BulkOutcome};
use crate::error::ApiError;
use crate::routes::archive::images::UNASSIGNED_TYPE;
use crate::state::AppState;
use crate::store::{Experiment, JobRow, RunPageQuery, RunRow, Scan, SessionFilter};

type PageResult = Result<Response, WebError>;

/// Runs per page of the Pipelines tab unless `?size=` asks otherwise.
const PAGE_SIZE: i64 = 50;

/// Runs shown in a session's Pipelines panel (the tab lists them all).
const SESSION_RUNS: i64 = 20;

/// The end of a log shown on a run's page (the whole file is one click
/// away through the Container Service's log route).
const LOG_TAIL_BYTES: u64 = 256 * 1024;

/// Refused targets listed on a launch's result page.
const SHOWN_FAILURES: usize = 50;

/// The statuses the tab filters on, with their labels.
const STATUSES: [(&str, &str); 5] = [
    ("Created", "Queued"),
    ("Running", "Running"),
    ("Complete", "Complete"),
    ("Failed", "Failed"),
    ("Killed", "Killed"),
];

fn pipelines_href(project: &str) -> String {
    format!("{}/pipelines", project_href(project))
}

fn run_href(project: &str, id: i64) -> String {
    format!("{}/{id}", pipelines_href(project))
}

/// `1764989563000` → `2025-12-06 02:52:43 UTC`.
fn when(ms: i64) -> String {
    if ms <= 0 {
        return "–".to_owned();
    }
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// `75_000` → `1 min 15 s`.
fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

fn is_active(status: &str) -> bool {
    !JobStatus::parse(status).is_some_and(JobStatus::is_terminal)
}

/// A run's duration: from its start to its end, or until now while it runs.
fn run_duration(job: &JobRow, started: i64) -> String {
    if started <= 0 {
        return if is_active(&job.status) {
            "queued".to_owned()
        } else {
            "–".to_owned()
        };
    }
    let end = if is_active(&job.status) {
        xnatkit_model::now_ms()
    } else {
        job.status_time
    };
    duration(end - started)
}

/// CSS class of a status badge.
fn status_class(status: &str) -> &'static str {
    match JobStatus::parse(status) {
        Some(JobStatus::Complete) => "status ok",
        Some(s) if s.is_terminal() => "status failed",
        _ => "status active",
    }
}

/// Names of wrappers and commands by ID, for a page of runs.
struct Names {
    wrappers: BTreeMap<i64, String>,
    commands: BTreeMap<i64, String>,
}

impl Names {
    async fn load(state: &AppState) -> Result<Self, WebError> {
        let store = state.store();
        Ok(Self {
            wrappers: store
                .wrappers()
                .await?
                .into_iter()
                .map(|w| (w.id, w.name))
                .collect(),
            commands: store
                .commands()
                .await?
                .into_iter()
                .map(|c| (c.id, c.name))
                .collect(),
        })
    }

    fn wrapper(&self, job: &JobRow) -> String {
        self.wrappers
            .get(&job.wrapper_id)
            .cloned()
            .unwrap_or_else(|| format!("wrapper {}", job.wrapper_id))
    }

    fn command(&self, job: &JobRow) -> String {
        self.commands
            .get(&job.command_id)
            .cloned()
            .unwrap_or_else(|| format!("command {}", job.command_id))
    }
}

/// A PNG output shown inline, and the file it comes from.
pub struct Image {
    pub src: String,
    pub name: String,
}

/// An output of a run: its resource with a link, and its PNGs.
pub struct OutputLine {
    pub what: String,
    pub href: String,
    pub files: i64,
    pub images: Vec<Image>,
}

impl OutputLine {
    fn of(output: RunOutput, session_page: Option<&str>) -> Self {
        let what = match &output.assessor {
            Some(assessor) => format!("assessor {assessor}, resource {}", output.label),
            None => format!("resource {}", output.label),
        };
        let images = output
            .images
            .iter()
            .map(|path| Image {
                src: format!(
                    "{}/files/{}",
                    output.resource_uri,
                    path.split('/')
                        .map(encode_segment)
                        .collect::<Vec<_>>()
                        .join("/")
                ),
                name: path.clone(),
            })
            .collect();
        // The session page lists the resource in its Files panel; without
        // one, the REST listing of its files.
        let href = session_page
            .map(|s| format!("{s}#files"))
            .unwrap_or_else(|| format!("{}/files", output.resource_uri));
        Self {
            what,
            href,
            files: output.file_count,
            images,
        }
    }
}

/// One run in a table.
pub struct RunLine {
    pub id: i64,
    pub href: String,
    pub wrapper: String,
    pub command: String,
    pub object: String,
    pub object_href: Option<String>,
    pub user: String,
    pub status: String,
    pub status_class: &'static str,
    pub started: String,
    pub duration: String,
    pub message: String,
    pub outputs: Vec<OutputLine>,
}

fn run_line(row: &RunRow, names: &Names) -> RunLine {
    let job = &row.job;
    let object_href = (!row.session_label.is_empty())
        .then(|| session_href(&job.project, &row.subject_label, &row.session_label));
    let session = if row.session_label.is_empty() {
        job.root_uri.clone()
    } else {
        row.session_label.clone()
    };
    let object = if row.scan_id.is_empty() {
        session
    } else {
        format!("{session} scan {}", row.scan_id)
    };
    RunLine {
        id: job.id,
        href: run_href(&job.project, job.id),
        wrapper: names.wrapper(job),
        command: names.command(job),
        object,
        object_href,
        user: job.username.clone(),
        status: job.status.clone(),
        status_class: status_class(&job.status),
        started: when(if row.started > 0 {
            row.started
        } else {
            job.created
        }),
        duration: run_duration(job, row.started),
        message: job.message.clone(),
        outputs: Vec::new(),
    }
}

/// A wrapper the launch forms offer.
pub struct WrapperChoice {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// `Session` or `Scan`: what it runs on.
    pub kind: String,
}

/// The wrappers enabled for the site and `project` that run on sessions
/// or scans (the only objects a launch takes), optionally only those
/// fitting one of `types` (xsi types).
async fn launchable(
    state: &AppState,
    project: &str,
    types: Option<&[String]>,
) -> Result<Vec<WrapperChoice>, WebError> {
    let mut out = Vec::new();
    for summary in commands::available(state, Some(project), None).await? {
        if !summary.enabled {
            continue;
        }
        if let Some(types) = types
            && !summary
                .wrapper_contexts
                .iter()
                .any(|c| types.iter().any(|t| commands::context_fits(c, t)))
        {
            continue;
        }
        let found = commands::wrapper(state, summary.wrapper_id).await?;
        let Some(root) = root_input(&found.wrapper) else {
            continue;
        };
        if root.kind != "Session" && root.kind != "Scan" {
            continue;
        }
        out.push(WrapperChoice {
            id: summary.wrapper_id,
            name: summary.wrapper_name,
            description: summary.wrapper_description,
            kind: root.kind.clone(),
        });
    }
    Ok(out)
}

#[derive(Deserialize, Default)]
pub struct RunsQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    session: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    subject: String,
    page: Option<i64>,
    size: Option<i64>,
    launched: Option<usize>,
}

struct TypeChoice {
    value: String,
    count: i64,
}

#[derive(Template)]
#[template(path = "web/pipelines.html")]
struct PipelinesPage {
    layout: Layout,
    id: String,
    name: String,
    project_href: String,
    tab: &'static str,
    notice: Option<String>,
    status: String,
    statuses: Vec<(&'static str, &'static str, bool)>,
    session: String,
    session_label: String,
    runs: Vec<RunLine>,
    total: i64,
    first: i64,
    last: i64,
    page: i64,
    pages: i64,
    prev_href: Option<String>,
    next_href: Option<String>,
    /// The runs table's own address, polled while a run is active.
    poll_href: Option<String>,
    can_launch: bool,
    wrappers: Vec<WrapperChoice>,
    filter: String,
    subject: String,
    matching: i64,
    types: Vec<TypeChoice>,
}

fn runs_link(base: &str, status: &str, session: &str, page: i64, size: i64) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if !status.is_empty() {
        query.append_pair("status", status);
    }
    if !session.is_empty() {
        query.append_pair("session", session);
    }
    if page > 1 {
        query.append_pair("page", &page.to_string());
    }
    if size != PAGE_SIZE {
        query.append_pair("size", &size.to_string());
    }
    let query = query.finish();
    if query.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{query}")
    }
}

/// `/app/projects/P/pipelines`: the project's runs, newest first, one page
/// at a time (filtered by status, optionally of one session), and the
/// launch form for those who may launch.
pub async fn project_runs(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    Query(query): Query<RunsQuery>,
) -> PageResult {
    require_login(&caller)?;
    let actor = actor(&state, &caller);
    let (found, access) = readable_project(&actor, &project).await?;
    let status = if STATUSES.iter().any(|(s, _)| *s == query.status) {
        query.status.clone()
    } else {
        String::new()
    };
    let session = query.session.trim().to_owned();
    let size = query.size.unwrap_or(PAGE_SIZE).clamp(10, 200);
    let wanted = query.page.unwrap_or(1).max(1);
    let mut request = RunPageQuery {
        project: &found.id,
        session: &session,
        status: &status,
        limit: size,
        offset: (wanted - 1).saturating_mul(size),
    };
    let mut runs = containers::page(&actor, &request).await?;
    let pages = ((runs.total + size - 1) / size).max(1);
    let page_number = wanted.min(pages);
    if page_number != wanted {
        request.offset = (page_number - 1) * size;
        runs = containers::page(&actor, &request).await?;
    }
    let names = Names::load(&state).await?;
    let lines: Vec<RunLine> = runs.rows.iter().map(|r| run_line(r, &names)).collect();
    let session_label = if session.is_empty() {
        String::new()
    } else {
        state
            .store()
            .experiment_by_id(&session)
            .await?
            .filter(|e| e.project == found.id)
            .map_or_else(|| session.clone(), |e| e.label)
    };
    let base = pipelines_href(&found.id);
    let poll_href = lines
        .iter()
        .any(|l| is_active(&l.status))
        .then(|| runs_link(&base, &status, &session, page_number, size));
    let can_launch = access
        .check(Action::Edit, &format!("project {}", found.id))
        .is_ok();
    let filter = SessionFilter {
        project: &found.id,
        filter: query.q.trim(),
        subject: query.subject.trim(),
    };
    let (wrappers, matching, types) = if can_launch {
        let store = state.store();
        let (types, _) = store.download_choices(&filter).await?;
        (
            launchable(&state, &found.id, None).await?,
            store.download_session_count(&filter).await?,
            types
                .into_iter()
                .map(|c| TypeChoice {
                    value: if c.value.is_empty() {
                        UNASSIGNED_TYPE.to_owned()
                    } else {
                        c.value
                    },
                    count: c.count,
                })
                .collect(),
        )
    } else {
        (Vec::new(), 0, Vec::new())
    };
    let first = if runs.total == 0 {
        0
    } else {
        (page_number - 1) * size + 1
    };
    let last = (page_number - 1) * size + i64::try_from(lines.len()).unwrap_or(0);
    let layout = Layout::new(&state, &caller, "Pipelines")
        .crumb("Projects", "/app/projects")
        .crumb(found.id.clone(), project_href(&found.id));
    let rendered = PipelinesPage {
        layout,
        id: found.id.clone(),
        name: found.name.clone(),
        project_href: project_href(&found.id),
        tab: "pipelines",
        notice: query
            .launched
            .map(|n| format!("Launched {n} run{}.", if n == 1 { "" } else { "s" })),
        statuses: STATUSES
            .iter()
            .map(|&(value, label)| (value, label, value == status))
            .collect(),
        prev_href: (page_number > 1)
            .then(|| runs_link(&base, &status, &session, page_number - 1, size)),
        next_href: (page_number < pages)
            .then(|| runs_link(&base, &status, &session, page_number + 1, size)),
        status,
        session,
        session_label,
        runs: lines,
        total: runs.total,
        first,
        last,
        page: page_number,
        pages,
        poll_href,
        can_launch,
        wrappers,
        filter: filter.filter.to_owned(),
        subject: filter.subject.to_owned(),
        matching,
        types,
    }
    .render();
    Ok(page(StatusCode::OK, rendered))
}

/// One history entry of a run.
struct HistoryLine {
    status: String,
    time: String,
    by: String,
    message: String,
}

struct LogView {
    stream: &'static str,
    text: String,
    truncated: bool,
    href: String,
}

#[derive(Template)]
#[template(path = "web/pipeline_run.html")]
struct RunPage {
    layout: Layout,
    project_href: String,
    run: RunLine,
    history: Vec<HistoryLine>,
    logs: Vec<LogView>,
    exit_code: String,
    command_line: String,
    poll_href: Option<String>,
}

/// The end of a log file (at most [`LOG_TAIL_BYTES`]), as text.
async fn log_tail(path: &std::path::Path) -> Result<(String, bool), WebError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let read = async {
        let mut file = tokio::fs::File::open(path).await?;
        let len = file.metadata().await?.len();
        let start = len.saturating_sub(LOG_TAIL_BYTES);
        file.seek(std::io::SeekFrom::Start(start)).await?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).await?;
        Ok::<_, std::io::Error>((String::from_utf8_lossy(&bytes).into_owned(), start > 0))
    };
    read.await.map_err(|e| {
        WebError(ApiError::Internal(format!(
            "reading {}: {e}",
            path.display()
        )))
    })
}

/// `/app/projects/P/pipelines/ID`: one run with its history, its logs
/// (through [`containers::log`], as the xapi log route) and its outputs.
pub async fn run(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, id)): Path<(String, String)>,
) -> PageResult {
    require_login(&caller)?;
    let actor = actor(&state, &caller);
    let job = containers::job(&actor, Some(&project), &id).await?;
    let store = state.store();
    let workflow = store.workflow(job.workflow_id).await?;
    let (session_id, scan_id) = workflow.map(|w| (w.data_id, w.scan_id)).unwrap_or_default();
    let experiment: Option<Experiment> = store.experiment_by_id(&session_id).await?;
    let subject_label = match &experiment {
        Some(e) => store
            .subject_by_id(&e.subject_id)
            .await?
            .map(|s| s.label)
            .unwrap_or_default(),
        None => String::new(),
    };
    let history = store.job_history(job.id).await?;
    let started = history
        .iter()
        .find(|h| h.status == JobStatus::Running.as_str())
        .map_or(0, |h| h.time_recorded);
    let row = RunRow {
        job: job.clone(),
        session_id,
        scan_id,
        session_label: experiment
            .as_ref()
            .map(|e| e.label.clone())
            .unwrap_or_default(),
        subject_label,
        started,
    };
    let names = Names::load(&state).await?;
    let mut line = run_line(&row, &names);
    let session_page = line.object_href.clone();
    line.outputs = containers::outputs(&actor, &job)
        .await?
        .into_iter()
        .map(|o| OutputLine::of(o, session_page.as_deref()))
        .collect();
    let mut logs = Vec::new();
    for stream in ["stdout", "stderr"] {
        let (text, truncated) =
            match containers::log(&actor, Some(&job.project), &id, stream).await? {
                Some(path) => log_tail(&path).await?,
                None => (String::new(), false),
            };
        logs.push(LogView {
            stream,
            text,
            truncated,
            href: format!(
                "/xapi/projects/{}/containers/{}/logs/{stream}",
                encode_segment(&job.project),
                job.id
            ),
        });
    }
    let command_line = serde_json::from_str::<xnatkit_engine::ResolvedJob>(&job.resolved)
        .map(|r| r.command_line)
        .unwrap_or_default();
    let here = run_href(&job.project, job.id);
    let layout = Layout::new(&state, &caller, format!("Run {}", job.id))
        .crumb("Projects", "/app/projects")
        .crumb(job.project.clone(), project_href(&job.project))
        .crumb("Pipelines", pipelines_href(&job.project));
    let rendered = RunPage {
        layout,
        project_href: project_href(&job.project),
        poll_href: is_active(&job.status).then_some(here),
        history: history
            .into_iter()
            .map(|h| HistoryLine {
                status: h.status,
                time: when(h.time_recorded),
                by: if h.entity_id.is_empty() {
                    h.entity_type
                } else {
                    format!("{} {}", h.entity_type, h.entity_id)
                },
                message: h.message,
            })
            .collect(),
        logs,
        exit_code: job.exit_code.clone(),
        command_line,
        run: line,
    }
    .render();
    Ok(page(StatusCode::OK, rendered))
}

/// A form's fields, repeated keys kept.
fn pairs_of(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn value<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.trim())
        .unwrap_or_default()
}

fn values(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, v)| k == key && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect()
}

/// The token check of a launch form, then its fields.
fn checked_form(
    headers: &HeaderMap,
    caller: &Caller,
    body: &[u8],
) -> Result<Vec<(String, String)>, WebError> {
    let pairs = pairs_of(body);
    let token = pairs
        .iter()
        .find(|(k, _)| k == csrf::FIELD)
        .map(|(_, v)| v.as_str());
    csrf::check(headers, caller, token)?;
    require_login(caller)?;
    Ok(pairs)
}

fn wrapper_of(pairs: &[(String, String)]) -> Result<i64, WebError> {
    value(pairs, "wrapper").parse().map_err(|_| {
        WebError(ApiError::BadRequest(
            "choose a pipeline to launch".to_owned(),
        ))
    })
}

/// A refused target on the result page.
struct FailureLine {
    target: String,
    message: String,
}

#[derive(Template)]
#[template(path = "web/pipeline_launch.html")]
struct LaunchPage {
    layout: Layout,
    wrapper: String,
    launched: usize,
    runs_href: String,
    back_href: String,
    failures: Vec<FailureLine>,
    more: usize,
}

/// Launches wrapper `wrapper_id` on `targets` through the engine (each
/// target checked as the REST bulk launch checks it). All queued: a 303
/// to `back` with the count. Otherwise a page with every refusal in the
/// engine's words, with the status of the first refusal when nothing was
/// queued (403 for a user who may not edit, 400 for a bad launch).
#[allow(clippy::too_many_arguments)]
async fn launch_and_answer(
    state: &AppState,
    caller: &Caller,
    project: &str,
    wrapper_id: i64,
    targets: Vec<String>,
    overwrite: bool,
    back: &str,
    fragment: &str,
) -> PageResult {
    let found = commands::wrapper(state, wrapper_id).await?;
    let mut params = BTreeMap::new();
    if overwrite
        && found
            .wrapper
            .external_inputs
            .iter()
            .any(|i| i.name == "overwrite")
    {
        params.insert("overwrite".to_owned(), "true".to_owned());
    }
    let BulkOutcome { launches, .. } = launch::launch_each(
        &actor(state, caller),
        Some(project),
        &found,
        &params,
        targets,
    )
    .await?;
    let mut launched = 0;
    let mut failures = Vec::new();
    let mut first_status = None;
    for one in launches {
        match one.result {
            Ok(_) => launched += 1,
            Err(err) => {
                let message = err.to_string();
                let status = ApiError::from(err).status();
                first_status.get_or_insert(status);
                failures.push(FailureLine {
                    target: one.target,
                    message,
                });
            }
        }
    }
    let separator = if back.contains('?') { '&' } else { '?' };
    if failures.is_empty() {
        return Ok(see_other(&format!(
            "{back}{separator}launched={launched}{fragment}"
        )));
    }
    let status = if launched == 0 {
        first_status.unwrap_or(StatusCode::BAD_REQUEST)
    } else {
        StatusCode::OK
    };
    let more = failures.len().saturating_sub(SHOWN_FAILURES);
    failures.truncate(SHOWN_FAILURES);
    let layout = Layout::new(state, caller, format!("Launch {}", found.wrapper.name))
        .crumb("Projects", "/app/projects")
        .crumb(project.to_owned(), project_href(project))
        .crumb("Pipelines", pipelines_href(project));
    let rendered = LaunchPage {
        layout,
        wrapper: found.wrapper.name.clone(),
        launched,
        runs_href: pipelines_href(project),
        back_href: format!("{back}{fragment}"),
        failures,
        more,
    }
    .render();
    Ok(page(status, rendered))
}

/// The root input kind of wrapper `wrapper_id` (`Session` or `Scan`).
async fn root_kind(state: &AppState, wrapper_id: i64) -> Result<String, WebError> {
    let found = commands::wrapper(state, wrapper_id).await?;
    Ok(root_input(&found.wrapper)
        .map(|r| r.kind.clone())
        .unwrap_or_default())
}

fn scan_uri(session_id: &str, scan: &str) -> String {
    format!(
        "/experiments/{}/scans/{}",
        encode_segment(session_id),
        encode_segment(scan)
    )
}

fn session_uri(session_id: &str) -> String {
    format!("/experiments/{}", encode_segment(session_id))
}

fn kind_refused(kind: &str) -> WebError {
    WebError(ApiError::BadRequest(format!(
        "this pipeline runs on a {}; the pages launch on sessions and scans — use the REST API",
        if kind.is_empty() { "nothing" } else { kind }
    )))
}

/// `POST /app/projects/P/pipelines`: launch a wrapper on every session the
/// filter matches (`q`, `subject`: "all N matching", resolved here as the
/// Download images dialog resolves them), or for a scan-level wrapper on
/// their scans of the ticked types.
pub async fn launch_project(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(project): Path<String>,
    body: axum::body::Bytes,
) -> PageResult {
    let pairs = checked_form(&headers, &caller, &body)?;
    let wrapper_id = wrapper_of(&pairs)?;
    let (found, _) = readable_project(&actor(&state, &caller), &project).await?;
    let filter = SessionFilter {
        project: &found.id,
        filter: value(&pairs, "q"),
        subject: value(&pairs, "subject"),
    };
    let sessions = state.store().download_sessions(&filter).await?;
    if sessions.is_empty() {
        return Err(WebError(ApiError::BadRequest(
            "no session matches the filter: nothing to launch".to_owned(),
        )));
    }
    let kind = root_kind(&state, wrapper_id).await?;
    let targets: Vec<String> = match kind.as_str() {
        "Session" => sessions.iter().map(|s| session_uri(&s.id)).collect(),
        "Scan" => {
            let types: HashSet<String> = values(&pairs, "type").into_iter().collect();
            if types.is_empty() {
                return Err(WebError(ApiError::BadRequest(
                    "this pipeline runs on scans: tick at least one scan type".to_owned(),
                )));
            }
            let mut targets = Vec::new();
            for session in &sessions {
                for scan in state.store().scans(&session.id).await? {
                    let scan_type = if scan.attrs.scan_type.is_empty() {
                        UNASSIGNED_TYPE
                    } else {
                        scan.attrs.scan_type.as_str()
                    };
                    if types.contains(scan_type) {
                        targets.push(scan_uri(&session.id, &scan.scan_id));
                    }
                }
            }
            if targets.is_empty() {
                return Err(WebError(ApiError::BadRequest(
                    "no scan of the ticked types in the matching sessions: nothing to launch"
                        .to_owned(),
                )));
            }
            targets
        }
        other => return Err(kind_refused(other)),
    };
    let overwrite = value(&pairs, "overwrite") == "true";
    launch_and_answer(
        &state,
        &caller,
        &found.id,
        wrapper_id,
        targets,
        overwrite,
        &pipelines_href(&found.id),
        "",
    )
    .await
}

/// `POST …/experiments/E/pipelines`: the session page's launch, on the
/// session or on its ticked scans.
pub async fn launch_session(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((project, subject, experiment)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> PageResult {
    let pairs = checked_form(&headers, &caller, &body)?;
    let wrapper_id = wrapper_of(&pairs)?;
    let path = super::links::archive_path(&project, &subject, Some(&experiment), None)?;
    let view = crate::archive::browse::session_view(&actor(&state, &caller), &path).await?;
    let session = view.scope.experiment(&path)?.clone();
    let kind = root_kind(&state, wrapper_id).await?;
    let targets: Vec<String> = match kind.as_str() {
        "Session" => vec![session_uri(&session.id)],
        "Scan" => {
            let picked: HashSet<String> = values(&pairs, "scan").into_iter().collect();
            let targets: Vec<String> = view
                .scans
                .iter()
                .filter(|s| picked.contains(&s.scan.scan_id))
                .map(|s| scan_uri(&session.id, &s.scan.scan_id))
                .collect();
            if targets.is_empty() {
                return Err(WebError(ApiError::BadRequest(
                    "this pipeline runs on scans: tick at least one scan".to_owned(),
                )));
            }
            targets
        }
        other => return Err(kind_refused(other)),
    };
    let here = session_href(
        &view.scope.project.id,
        view.scope.subject_label().unwrap_or_default(),
        view.scope.experiment_label().unwrap_or(&session.label),
    );
    let overwrite = value(&pairs, "overwrite") == "true";
    launch_and_answer(
        &state,
        &caller,
        &session.project,
        wrapper_id,
        targets,
        overwrite,
        &here,
        "#pipelines",
    )
    .await
}

/// A scan the session panel's launch form offers.
pub struct ScanPick {
    pub id: String,
    pub label: String,
}

/// The session page's Pipelines panel.
pub struct SessionPipelines {
    /// The caller may see the runs (reads the session's own project).
    pub visible: bool,
    pub runs: Vec<RunLine>,
    pub total: i64,
    pub all_href: String,
    pub poll_href: Option<String>,
    pub can_launch: bool,
    pub wrappers: Vec<WrapperChoice>,
    pub scans: Vec<ScanPick>,
    pub launch_href: String,
    pub notice: Option<String>,
}

/// The Pipelines panel of a session page (`here`): its latest runs (on the
/// session and its scans) with their PNG outputs, and the launch form for
/// those who may edit the session.
pub async fn session_panel(
    state: &AppState,
    caller: &Caller,
    session: &Experiment,
    scans: &[&Scan],
    can_edit: bool,
    here: &str,
    launched: Option<usize>,
) -> Result<SessionPipelines, WebError> {
    let actor = actor(state, caller);
    let visible = containers::may_see_runs(&actor, &session.project).await?;
    let mut panel = SessionPipelines {
        visible,
        runs: Vec::new(),
        total: 0,
        all_href: runs_link(
            &pipelines_href(&session.project),
            "",
            &session.id,
            1,
            PAGE_SIZE,
        ),
        poll_href: None,
        can_launch: false,
        wrappers: Vec::new(),
        scans: Vec::new(),
        launch_href: format!("{here}/pipelines"),
        notice: launched.map(|n| format!("Launched {n} run{}.", if n == 1 { "" } else { "s" })),
    };
    if !visible {
        return Ok(panel);
    }
    let runs = containers::page(
        &actor,
        &RunPageQuery {
            project: &session.project,
            session: &session.id,
            status: "",
            limit: SESSION_RUNS,
            offset: 0,
        },
    )
    .await?;
    let names = Names::load(state).await?;
    for row in &runs.rows {
        let mut line = run_line(row, &names);
        // Links stay on this page (the session may be shown in a project
        // that shares it).
        line.object_href = None;
        line.outputs = containers::outputs(&actor, &row.job)
            .await?
            .into_iter()
            .map(|o| OutputLine::of(o, Some(here)))
            .collect();
        panel.runs.push(line);
    }
    panel.total = runs.total;
    panel.poll_href = panel
        .runs
        .iter()
        .any(|r| is_active(&r.status))
        .then(|| here.to_owned());
    if can_edit {
        let mut types: Vec<String> = vec![session.xsi_type.clone()];
        types.extend(scans.iter().map(|s| s.xsi_type.clone()));
        panel.wrappers = launchable(state, &session.project, Some(&types)).await?;
        panel.scans = scans
            .iter()
            .map(|s| ScanPick {
                id: s.scan_id.clone(),
                label: if s.attrs.scan_type.is_empty() {
                    format!("Scan {}", s.scan_id)
                } else {
                    format!("Scan {} ({})", s.scan_id, s.attrs.scan_type)
                },
            })
            .collect();
        panel.can_launch = true;
    }
    Ok(panel)
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_read_like_clocks() {
        assert_eq!(duration(0), "0 s");
        assert_eq!(duration(59_999), "59 s");
        assert_eq!(duration(75_000), "1 min 15 s");
        assert_eq!(duration(3_723_000), "1 h 2 min");
    }
}
