//! The page handlers: read the request, call the domain function in
//! [`crate::archive::browse`] (which checks permissions), shape the rows
//! for the template. Links are built here with every path segment
//! percent-encoded; askama then HTML-escapes them like every other value.

use std::collections::HashSet;

use askama::Template;
use axum::extract::{Form, Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use xnatkit_model::{Accessibility, ProjectRole, encode_segment};

use super::links::{actor, archive_path, project_href, session_href, subject_href};
use super::{Layout, WebError, csrf, page, require_login, see_other};
use crate::access::{Action, Caller};
use crate::archive::browse;
use crate::error::ApiError;
use crate::params::Params;
use crate::routes::archive::Ctx;
use crate::state::AppState;
use crate::store::{Resource, SessionPageQuery, SessionSort};

type PageResult = Result<Response, WebError>;

/// `1234567` → `1.2 MB`.
pub(super) fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `/app`: the projects page for a logged-in user, else the login page.
pub async fn home(caller: Caller) -> Response {
    if caller.user.is_some() {
        see_other("/app/projects")
    } else {
        see_other(crate::routes::ui::LOGIN_PATH)
    }
}

/// Ends the browser's session (token-checked) and clears its cookie. The
/// body is read as it comes, so a post without a form is refused by the
/// token check (403), not by the form parser.
pub async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> PageResult {
    let token = url::form_urlencoded::parse(&body)
        .find(|(key, _)| key == csrf::FIELD)
        .map(|(_, value)| value.into_owned());
    csrf::check(&headers, &caller, token.as_deref())?;
    if let Some(id) = &caller.session_id {
        state.store().delete_http_session(id).await?;
    }
    let mut response = see_other(crate::routes::ui::LOGIN_PATH);
    if let Some(cookie) = crate::auth::cleared_session_cookie(&state) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

#[derive(Deserialize, Default)]
pub struct FilterQuery {
    #[serde(default)]
    q: String,
}

struct ProjectLine {
    id: String,
    name: String,
    href: String,
    role: &'static str,
    accessibility: &'static str,
    readable: bool,
    subjects: String,
    sessions: String,
}

#[derive(Template)]
#[template(path = "web/projects.html")]
struct ProjectsPage {
    layout: Layout,
    filter: String,
    mine: Vec<ProjectLine>,
    others: Vec<ProjectLine>,
}

/// `/app/projects`: the caller's projects, then the public and protected
/// ones, with counts where the caller may read the data.
pub async fn projects(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<FilterQuery>,
) -> PageResult {
    require_login(&caller)?;
    let all = browse::projects_overview(&actor(&state, &caller)).await?;
    let needle = query.q.trim().to_lowercase();
    let (mut mine, mut others) = (Vec::new(), Vec::new());
    for summary in all {
        let project = &summary.project;
        if !needle.is_empty()
            && !project.id.to_lowercase().contains(&needle)
            && !project.name.to_lowercase().contains(&needle)
        {
            continue;
        }
        let (subjects, sessions) = match summary.counts {
            Some((s, e)) => (s.to_string(), e.to_string()),
            None => ("–".to_owned(), "–".to_owned()),
        };
        let line = ProjectLine {
            id: project.id.clone(),
            name: project.name.clone(),
            href: project_href(&project.id),
            role: summary.role.map_or("", ProjectRole::as_str),
            accessibility: project.accessibility.as_str(),
            readable: summary.counts.is_some(),
            subjects,
            sessions,
        };
        if summary.role.is_some() {
            mine.push(line);
        } else {
            others.push(line);
        }
    }
    let layout = Layout::new(&state, &caller, "Projects");
    Ok(page(
        StatusCode::OK,
        ProjectsPage {
            layout,
            filter: query.q,
            mine,
            others,
        }
        .render(),
    ))
}

#[derive(Deserialize)]
pub struct NewProjectForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    accessibility: String,
}

/// "New project" on the projects page: the caller becomes its owner.
pub async fn create_project(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Form(form): Form<NewProjectForm>,
) -> PageResult {
    csrf::check(&headers, &caller, form.csrf.as_deref())?;
    require_login(&caller)?;
    let level: Accessibility = form
        .accessibility
        .parse()
        .map_err(|e: xnatkit_model::access::UnknownValue| ApiError::BadRequest(e.to_string()))?;
    let id = browse::create_project(
        &actor(&state, &caller),
        form.id.trim(),
        &form.name,
        &form.description,
        level,
    )
    .await?;
    Ok(see_other(&project_href(&id)))
}

#[derive(Deserialize, Default)]
pub struct SessionsQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    dir: String,
    page: Option<i64>,
    size: Option<i64>,
}

struct SortColumn {
    label: &'static str,
    href: String,
    active: bool,
}

struct SessionLine {
    label: String,
    href: String,
    subject: String,
    subject_href: String,
    date: String,
    modality: String,
    scans: i64,
    xsi_type: String,
}

#[derive(Template)]
#[template(path = "web/project.html")]
struct ProjectPage {
    layout: Layout,
    id: String,
    name: String,
    description: String,
    project_href: String,
    tab: &'static str,
    filter: String,
    sort: &'static str,
    dir: &'static str,
    arrow: &'static str,
    columns: Vec<SortColumn>,
    rows: Vec<SessionLine>,
    total: i64,
    first: i64,
    last: i64,
    page: i64,
    pages: i64,
    prev_href: Option<String>,
    next_href: Option<String>,
}

/// Rows per page unless `?size=` asks otherwise (10 to 200).
const PAGE_SIZE: i64 = 50;

fn sessions_link(
    base: &str,
    filter: &str,
    sort: SessionSort,
    descending: bool,
    page: i64,
    size: i64,
) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if !filter.is_empty() {
        query.append_pair("q", filter);
    }
    query.append_pair("sort", sort.as_str());
    query.append_pair("dir", if descending { "desc" } else { "asc" });
    if page > 1 {
        query.append_pair("page", &page.to_string());
    }
    if size != PAGE_SIZE {
        query.append_pair("size", &size.to_string());
    }
    format!("{base}?{}", query.finish())
}

/// `/app/projects/P`: the Sessions tab, one page at a time, filtered and
/// sorted in SQL.
pub async fn project(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<SessionsQuery>,
) -> PageResult {
    require_login(&caller)?;
    let sort = SessionSort::parse(&query.sort);
    let descending = query.dir == "desc";
    let size = query.size.unwrap_or(PAGE_SIZE).clamp(10, 200);
    let wanted_page = query.page.unwrap_or(1).max(1);
    let filter = query.q.trim().to_owned();
    let mut request = SessionPageQuery {
        project: &id,
        filter: &filter,
        sort,
        descending,
        limit: size,
        offset: (wanted_page - 1).saturating_mul(size),
    };
    let (project, _access, mut sessions) =
        browse::project_sessions(&actor(&state, &caller), &request).await?;
    let pages = ((sessions.total + size - 1) / size).max(1);
    let page_number = wanted_page.min(pages);
    if page_number != wanted_page {
        // Past the end (the filter shrank the list): show the last page.
        request.offset = (page_number - 1) * size;
        sessions = state.store().session_page(&request).await?;
    }
    let base = project_href(&project.id);
    let columns = [
        (SessionSort::Label, "Session"),
        (SessionSort::Subject, "Subject"),
        (SessionSort::Date, "Date"),
        (SessionSort::Modality, "Modality"),
    ]
    .into_iter()
    .map(|(column, label)| {
        let active = column == sort;
        // A click on the sorted column flips its direction.
        let flip = active && !descending;
        SortColumn {
            label,
            href: sessions_link(&base, &filter, column, flip, 1, size),
            active,
        }
    })
    .collect();
    let rows: Vec<SessionLine> = sessions
        .rows
        .into_iter()
        .map(|row| SessionLine {
            href: session_href(&project.id, &row.subject_label, &row.label),
            subject_href: subject_href(&project.id, &row.subject_label),
            label: row.label,
            subject: row.subject_label,
            date: row.date,
            modality: row.modality,
            scans: row.scan_count,
            xsi_type: row.xsi_type,
        })
        .collect();
    let first = if sessions.total == 0 {
        0
    } else {
        (page_number - 1) * size + 1
    };
    let last = (page_number - 1) * size + i64::try_from(rows.len()).unwrap_or(0);
    let layout =
        Layout::new(&state, &caller, project.id.clone()).crumb("Projects", "/app/projects");
    let rendered = ProjectPage {
        layout,
        id: project.id.clone(),
        name: project.name.clone(),
        description: project.description.clone(),
        tab: "sessions",
        filter: filter.clone(),
        sort: sort.as_str(),
        dir: if descending { "desc" } else { "asc" },
        arrow: if descending { "▼" } else { "▲" },
        columns,
        rows,
        total: sessions.total,
        first,
        last,
        page: page_number,
        pages,
        prev_href: (page_number > 1)
            .then(|| sessions_link(&base, &filter, sort, descending, page_number - 1, size)),
        next_href: (page_number < pages)
            .then(|| sessions_link(&base, &filter, sort, descending, page_number + 1, size)),
        project_href: base,
    }
    .render();
    Ok(page(StatusCode::OK, rendered))
}

struct MemberLine {
    username: String,
    name: String,
}

struct MemberGroup {
    title: &'static str,
    members: Vec<MemberLine>,
}

#[derive(Template)]
#[template(path = "web/access.html")]
struct AccessPage {
    layout: Layout,
    id: String,
    name: String,
    project_href: String,
    tab: &'static str,
    accessibility: &'static str,
    /// Each level, and whether it is the current one.
    levels: Vec<(&'static str, bool)>,
    can_manage: bool,
    groups: Vec<MemberGroup>,
    notice: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct NoticeQuery {
    done: Option<String>,
}

/// The message after a change, from a closed list: a link can name the
/// change but cannot put its own words on the page.
fn done_notice(done: Option<&str>) -> Option<String> {
    let text = match done? {
        "added" => "The user was given the role (if that account exists).",
        "removed" => "The user was removed from the project.",
        "accessibility" => "The accessibility was changed.",
        _ => return None,
    };
    Some(text.to_owned())
}

/// `/app/projects/P/access`: owners, members and collaborators; owners
/// (and site admins) also get the forms that change them.
pub async fn access(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    require_login(&caller)?;
    let (project, access, members) = browse::project_members(&actor(&state, &caller), &id).await?;
    let can_manage = access
        .check(Action::Manage, &format!("project {}", project.id))
        .is_ok();
    let mut groups = Vec::new();
    for (role, title) in [
        (ProjectRole::Owner, "Owners"),
        (ProjectRole::Member, "Members"),
        (ProjectRole::Collaborator, "Collaborators"),
    ] {
        let mut lines = Vec::new();
        for member in members.iter().filter(|m| m.role == role) {
            let name = state
                .store()
                .user(&member.username)
                .await?
                .map(|u| format!("{} {}", u.first_name, u.last_name))
                .unwrap_or_default();
            lines.push(MemberLine {
                username: member.username.clone(),
                name,
            });
        }
        groups.push(MemberGroup {
            title,
            members: lines,
        });
    }
    let base = project_href(&project.id);
    let layout = Layout::new(&state, &caller, "Access")
        .crumb("Projects", "/app/projects")
        .crumb(project.id.clone(), base.clone());
    let rendered = AccessPage {
        layout,
        id: project.id.clone(),
        name: project.name.clone(),
        project_href: base,
        tab: "access",
        accessibility: project.accessibility.as_str(),
        levels: ["private", "protected", "public"]
            .into_iter()
            .map(|level| (level, level == project.accessibility.as_str()))
            .collect(),
        can_manage,
        groups,
        notice: done_notice(query.done.as_deref()),
    }
    .render();
    Ok(page(StatusCode::OK, rendered))
}

#[derive(Deserialize)]
pub struct MemberForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    action: String,
    username: String,
    role: Option<String>,
}

/// Adds or removes a project user from the Access tab.
pub async fn change_member(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<MemberForm>,
) -> PageResult {
    csrf::check(&headers, &caller, form.csrf.as_deref())?;
    require_login(&caller)?;
    let actor = actor(&state, &caller);
    let username = form.username.trim();
    let done = match form.action.as_str() {
        "add" => {
            let role: ProjectRole = form
                .role
                .as_deref()
                .unwrap_or("collaborator")
                .parse()
                .map_err(|e: xnatkit_model::access::UnknownValue| {
                    ApiError::BadRequest(e.to_string())
                })?;
            browse::set_member_role(&actor, &id, username, role).await?;
            "added"
        }
        "remove" => {
            browse::remove_member(&actor, &id, username).await?;
            "removed"
        }
        other => {
            return Err(WebError(ApiError::BadRequest(format!(
                "unknown action {other:?}; use add or remove"
            ))));
        }
    };
    Ok(back_to_access(&id, done))
}

#[derive(Deserialize)]
pub struct AccessibilityForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    accessibility: String,
}

/// Changes the project's accessibility from the Access tab.
pub async fn change_accessibility(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<AccessibilityForm>,
) -> PageResult {
    csrf::check(&headers, &caller, form.csrf.as_deref())?;
    require_login(&caller)?;
    let level: Accessibility = form
        .accessibility
        .parse()
        .map_err(|e: xnatkit_model::access::UnknownValue| ApiError::BadRequest(e.to_string()))?;
    browse::set_accessibility(&actor(&state, &caller), &id, level).await?;
    Ok(back_to_access(&id, "accessibility"))
}

fn back_to_access(project: &str, done: &'static str) -> Response {
    see_other(&format!("{}/access?done={done}", project_href(project)))
}

struct SessionLink {
    label: String,
    id: String,
    href: String,
}

#[derive(Template)]
#[template(path = "web/subject.html")]
struct SubjectPage {
    layout: Layout,
    label: String,
    id: String,
    project: String,
    project_href: String,
    sessions: Vec<SessionLink>,
    /// The Custom variables panel (`web/custom_fields.html`).
    custom_fields: Vec<(String, String)>,
    can_edit: bool,
    fields_href: String,
    delete_href: Option<String>,
    kind: &'static str,
}

/// `/app/projects/P/subjects/S`.
pub async fn subject(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, subject)): Path<(String, String)>,
) -> PageResult {
    require_login(&caller)?;
    let path = archive_path(&project, &subject, None, None)?;
    let (scope, found, sessions) = browse::subject_view(&actor(&state, &caller), &path).await?;
    let (custom_fields, can_edit) =
        browse::custom_fields(&actor(&state, &caller), &scope, &path).await?;
    let may_delete = super::edit::may_delete(&scope);
    let project_id = scope.project.id.clone();
    let label = scope.subject_label().unwrap_or(&found.label).to_owned();
    let sessions = sessions
        .into_iter()
        .map(|(id, session)| SessionLink {
            href: session_href(&project_id, &label, &session),
            label: session,
            id,
        })
        .collect();
    let layout = Layout::new(&state, &caller, format!("Subject {label}"))
        .crumb("Projects", "/app/projects")
        .crumb(project_id.clone(), project_href(&project_id));
    let here = subject_href(&project_id, &label);
    let rendered = SubjectPage {
        layout,
        label,
        id: found.id,
        project_href: project_href(&project_id),
        project: project_id,
        sessions,
        custom_fields,
        can_edit,
        fields_href: format!("{here}/fields"),
        delete_href: may_delete.then(|| format!("{here}/delete")),
        kind: "subject",
    }
    .render();
    Ok(page(StatusCode::OK, rendered))
}

struct ScanLine {
    id: String,
    scan_type: String,
    description: String,
    quality: String,
    formats: Vec<String>,
    size: String,
    files: i64,
    view_href: Option<String>,
    delete_href: String,
}

struct AssessorLine {
    label: String,
    xsi_type: String,
    formats: Vec<String>,
}

struct ResourcePick {
    id: i64,
    label: String,
    files: i64,
    size: String,
}

struct ResourceGroup {
    title: String,
    resources: Vec<ResourcePick>,
}

#[derive(Template)]
#[template(path = "web/session.html")]
struct SessionPage {
    layout: Layout,
    label: String,
    id: String,
    xsi_type: String,
    date: String,
    time: String,
    modality: String,
    note: String,
    project: String,
    project_href: String,
    subject: String,
    subject_href: String,
    scans: Vec<ScanLine>,
    total_size: String,
    total_files: i64,
    assessors: Vec<AssessorLine>,
    groups: Vec<ResourceGroup>,
    download_href: String,
    /// Where the Upload files panel posts (`web::upload::session_files`).
    upload_href: String,
    view_href: Option<String>,
    /// The Custom variables panel (`web/custom_fields.html`).
    custom_fields: Vec<(String, String)>,
    can_edit: bool,
    fields_href: String,
    delete_href: Option<String>,
    kind: &'static str,
    /// Scans may be deleted here (not through a share).
    can_delete: bool,
    pipelines: super::pipelines::SessionPipelines,
}

#[derive(Deserialize, Default)]
pub struct SessionQuery {
    /// Runs just launched from the Pipelines panel.
    launched: Option<usize>,
}

fn picks(resources: &[Resource]) -> Vec<ResourcePick> {
    resources
        .iter()
        .filter(|r| r.file_count > 0)
        .map(|r| ResourcePick {
            id: r.id,
            label: r.label.clone(),
            files: r.file_count,
            size: human_size(r.file_size),
        })
        .collect()
}

/// `/app/projects/P/subjects/S/experiments/E`: the scan table, the
/// assessors and the Files panel.
pub async fn session(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, subject, experiment)): Path<(String, String, String)>,
    Query(query): Query<SessionQuery>,
) -> PageResult {
    require_login(&caller)?;
    let path = archive_path(&project, &subject, Some(&experiment), None)?;
    let view = browse::session_view(&actor(&state, &caller), &path).await?;
    let scope = &view.scope;
    let session = scope.experiment(&path)?.clone();
    let project_id = scope.project.id.clone();
    let subject_label = scope.subject_label().unwrap_or_default().to_owned();
    let label = scope
        .experiment_label()
        .unwrap_or(&session.label)
        .to_owned();
    let (custom_fields, can_edit) =
        browse::custom_fields(&actor(&state, &caller), scope, &path).await?;
    let may_delete = super::edit::may_delete(scope);
    let can_delete = !scope.names_shared() && scope.check(Action::Delete).is_ok();
    let here = session_href(&project_id, &subject_label, &label);
    let (mut total_size, mut total_files) = (0i64, 0i64);
    let mut scans = Vec::new();
    let mut groups = Vec::new();
    for item in &view.scans {
        let size: i64 = item.resources.iter().map(|r| r.file_size).sum();
        let files: i64 = item.resources.iter().map(|r| r.file_count).sum();
        total_size += size;
        total_files += files;
        let attrs = &item.scan.attrs;
        scans.push(ScanLine {
            id: item.scan.scan_id.clone(),
            scan_type: attrs.scan_type.clone(),
            description: attrs.series_description.clone(),
            quality: attrs.quality.clone(),
            formats: item.resources.iter().map(|r| r.label.clone()).collect(),
            size: human_size(size),
            files,
            view_href: if attrs.uid.is_empty() {
                None
            } else {
                view_href(&state, &session.attrs.uid, &attrs.uid)
            },
            delete_href: format!("{here}/scans/{}/delete", encode_segment(&item.scan.scan_id)),
        });
        let resources = picks(&item.resources);
        if !resources.is_empty() {
            let title = if attrs.scan_type.is_empty() {
                format!("Scan {}", item.scan.scan_id)
            } else {
                format!("Scan {} ({})", item.scan.scan_id, attrs.scan_type)
            };
            groups.push(ResourceGroup { title, resources });
        }
    }
    let resources = picks(&view.resources);
    if !resources.is_empty() {
        groups.push(ResourceGroup {
            title: "Session resources".to_owned(),
            resources,
        });
    }
    let mut assessors = Vec::new();
    for item in &view.assessors {
        assessors.push(AssessorLine {
            label: item.assessor.label.clone(),
            xsi_type: item.assessor.xsi_type.clone(),
            formats: item.resources.iter().map(|r| r.label.clone()).collect(),
        });
        let resources = picks(&item.resources);
        if !resources.is_empty() {
            groups.push(ResourceGroup {
                title: format!("Assessor {}", item.assessor.label),
                resources,
            });
        }
    }
    let scan_rows: Vec<&crate::store::Scan> = view.scans.iter().map(|s| &s.scan).collect();
    let pipelines = super::pipelines::session_panel(
        &state,
        &caller,
        &session,
        &scan_rows,
        scope.check(Action::Edit).is_ok(),
        &here,
        query.launched,
    )
    .await?;
    let layout = Layout::new(&state, &caller, format!("Session {label}"))
        .crumb("Projects", "/app/projects")
        .crumb(project_id.clone(), project_href(&project_id))
        .crumb(
            format!("Subject {subject_label}"),
            subject_href(&project_id, &subject_label),
        );
    let attrs = &session.attrs;
    let rendered = SessionPage {
        layout,
        label,
        id: session.id.clone(),
        xsi_type: session.xsi_type.clone(),
        date: attrs.date.clone(),
        time: attrs.time.clone(),
        modality: attrs.modality.clone(),
        note: attrs.note.clone(),
        project_href: project_href(&project_id),
        subject_href: subject_href(&project_id, &subject_label),
        project: project_id,
        subject: subject_label,
        scans,
        total_size: human_size(total_size),
        total_files,
        assessors,
        groups,
        download_href: format!("{here}/download"),
        upload_href: format!("{here}/files"),
        view_href: view_href(&state, &attrs.uid, ""),
        custom_fields,
        can_edit,
        fields_href: format!("{here}/fields"),
        delete_href: may_delete.then(|| format!("{here}/delete")),
        kind: "session",
        can_delete,
        pipelines,
    }
    .render();
    Ok(page(StatusCode::OK, rendered))
}

#[derive(Debug, Deserialize)]
pub struct ViewerQuery {
    #[serde(rename = "StudyInstanceUIDs", default)]
    study: String,
    #[serde(rename = "initialSeriesInstanceUID", default)]
    series: String,
}

/// The "View" links' target under `/app/viewer?StudyInstanceUIDs=…`
/// (so pages need not know the viewer's address): a 303 to OHIF on the
/// viewer listener of the host this browser uses ([`crate::viewer`]).
pub async fn viewer(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<ViewerQuery>,
) -> PageResult {
    require_login(&caller)?;
    let Some(ohif) = &state.config().ohif else {
        return Err(WebError(ApiError::NotFound(
            "the viewer is not enabled on this server; start it with --ohif-dir (see docs/viewer.md)"
                .to_owned(),
        )));
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    Ok(see_other(&crate::viewer::viewer_url(
        host,
        state.config().tls.is_some(),
        ohif.listen.port(),
        &viewer_query(&query.study, &query.series),
    )))
}

/// OHIF's query for a study, and optionally the series it opens first.
fn viewer_query(study: &str, series: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("StudyInstanceUIDs", study);
    if !series.is_empty() {
        query.append_pair("initialSeriesInstanceUID", series);
    }
    query.finish()
}

/// The page's link to the viewer for a study (or one of its series), when
/// the server runs one and the session is a DICOM study.
fn view_href(state: &AppState, study: &str, series: &str) -> Option<String> {
    (state.config().ohif.is_some() && !study.is_empty())
        .then(|| format!("/app/viewer?{}", viewer_query(study, series)))
}

/// `…/experiments/E/download?format=zip|tar.gz&r=ID&r=ID…`: the Files
/// panel's selection as one streamed archive, through the REST download's
/// selection and streaming (same read check, same entry layout). A GET,
/// so it changes nothing and needs no form token.
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((project, subject, experiment)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> PageResult {
    require_login(&caller)?;
    let params = Params::from_query(query.as_deref());
    let picked: HashSet<i64> = params
        .pairs()
        .iter()
        .filter(|(key, _)| key == "r")
        .filter_map(|(_, value)| value.parse().ok())
        .collect();
    if picked.is_empty() {
        return Err(WebError(ApiError::BadRequest(
            "no files selected; tick at least one resource in the Files panel".to_owned(),
        )));
    }
    let path = archive_path(&project, &subject, Some(&experiment), None)?;
    let ctx = Ctx {
        state,
        caller,
        method: Method::GET,
        params,
        headers,
    };
    let mut response =
        crate::routes::archive::download::download_session_resources(&ctx, &path, &picked).await?;
    // The archive is a file, not a page: no page CSP needed, but keep it
    // out of caches like every answer with user data.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response.into_response())
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_read_like_file_managers() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1_500), "1.5 KB");
        assert_eq!(human_size(2_000_000_000), "2.0 GB");
    }
}
