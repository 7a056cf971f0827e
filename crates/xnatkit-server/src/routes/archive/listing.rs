//! Collection listings: projects, subjects, experiments, scans, resources.

use std::collections::{HashMap, HashSet};

use axum::response::Response;
use xnatkit_model::{ArchivePath, Level, Row, ScanSelector};

use super::Ctx;
use super::render::{
    assessor_row, experiment_row, project_row, resource_row, scan_row, subject_row, table,
};
use crate::access::Action;
use crate::archive::{project_access, required_scope, scope};
use crate::error::ApiError;
use crate::store::{Experiment, Scan, ShareKind, Subject};

const PROJECT_COLUMNS: &[&str] = &[
    "ID",
    "secondary_ID",
    "name",
    "description",
    "pi_firstname",
    "pi_lastname",
    "URI",
];
const SUBJECT_COLUMNS: &[&str] = &[
    "ID",
    "project",
    "label",
    "insert_date",
    "insert_user",
    "URI",
];
const EXPERIMENT_COLUMNS: &[&str] = &[
    "ID",
    "project",
    "label",
    "xsiType",
    "date",
    "insert_date",
    "URI",
];
const SCAN_COLUMNS: &[&str] = &[
    "xnat_imagescandata_id",
    "ID",
    "type",
    "series_description",
    "quality",
    "note",
    "xsiType",
    "URI",
];
const ASSESSOR_COLUMNS: &[&str] = &[
    "ID",
    "project",
    "label",
    "xsiType",
    "date",
    "insert_date",
    "session_ID",
    "session_label",
    "URI",
];
pub(crate) const RESOURCE_COLUMNS: &[&str] = &[
    "xnat_abstractresource_id",
    "label",
    "element_name",
    "category",
    "cat_id",
    "cat_desc",
    "format",
    "content",
    "tags",
    "file_count",
    "file_size",
];

pub(crate) async fn list(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    match path.level() {
        Level::Projects => projects(ctx).await,
        Level::Subjects => subjects(ctx, path).await,
        Level::Experiments => experiments(ctx, path).await,
        Level::Scans | Level::Scan => scans(ctx, path).await,
        Level::Resources => resources(ctx, path).await,
        Level::Assessors => assessors(ctx, path).await,
        _ => Err(ApiError::NotFound("Not Found".to_owned())),
    }
}

async fn projects(ctx: &Ctx) -> Result<Response, ApiError> {
    let mut rows = Vec::new();
    for project in ctx.state.store().projects().await? {
        if project_access(&ctx.actor(), &project)
            .await?
            .lists_project()
        {
            rows.push(project_row(&project));
        }
    }
    Ok(table("Projects", PROJECT_COLUMNS, rows, &ctx.params))
}

/// Projects whose data the caller may read (for site-wide listings).
async fn readable_projects(ctx: &Ctx) -> Result<HashSet<String>, ApiError> {
    let mut out = HashSet::new();
    for project in ctx.state.store().projects().await? {
        if project_access(&ctx.actor(), &project)
            .await?
            .can_read_data()
        {
            out.insert(project.id);
        }
    }
    Ok(out)
}

/// Which site-wide rows the caller may see: objects whose own project's
/// data it may read, or that are shared into such a project.
fn visible_site_wide(
    readable: &HashSet<String>,
    shares: &[(String, String)],
    id: &str,
    project: &str,
) -> bool {
    readable.contains(project)
        || shares
            .iter()
            .any(|(shared, into)| shared == id && readable.contains(into))
}

/// Subjects of a project as it sees them: its own and those shared into
/// it, each with its label there, by label.
pub(crate) async fn subjects_in(
    ctx: &Ctx,
    project: &str,
) -> Result<Vec<(Subject, String)>, ApiError> {
    let store = ctx.state.store();
    let mut all: Vec<(Subject, String)> = store
        .subjects(Some(project))
        .await?
        .into_iter()
        .map(|s| {
            let label = s.label.clone();
            (s, label)
        })
        .collect();
    all.extend(
        store
            .subjects_shared_into(project)
            .await?
            .into_iter()
            .map(|(s, share)| (s, share.label)),
    );
    all.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(all)
}

/// Experiments of a project (of one of its subjects, when given) as the
/// project sees them: its own and those shared into it, each with its
/// label there, by label. Sessions of a subject shared into the project
/// appear only when they are shared too.
pub(crate) async fn experiments_in(
    ctx: &Ctx,
    project: &str,
    subject: Option<&Subject>,
) -> Result<Vec<(Experiment, String)>, ApiError> {
    let store = ctx.state.store();
    let own = match subject {
        Some(s) if s.project != project => Vec::new(),
        Some(s) => store.experiments(None, Some(&s.id)).await?,
        None => store.experiments(Some(project), None).await?,
    };
    let mut all: Vec<(Experiment, String)> = own
        .into_iter()
        .filter(|e| e.project == project)
        .map(|e| {
            let label = e.label.clone();
            (e, label)
        })
        .collect();
    all.extend(
        store
            .experiments_shared_into(project)
            .await?
            .into_iter()
            .filter(|(e, _)| subject.is_none_or(|s| s.id == e.subject_id))
            .map(|(e, share)| (e, share.label)),
    );
    all.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(all)
}

async fn subjects(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let store = ctx.state.store();
    // (subject, its label in the listed project)
    let subjects: Vec<(Subject, String)> = match scope(&ctx.actor(), path).await? {
        Some(scope) => {
            scope.check(Action::ReadData)?;
            subjects_in(ctx, &scope.project.id).await?
        }
        None => {
            let readable = readable_projects(ctx).await?;
            let shares = store.all_shares(ShareKind::Subject).await?;
            let mut all = store.subjects(None).await?;
            all.retain(|s| visible_site_wide(&readable, &shares, &s.id, &s.project));
            all.into_iter()
                .map(|s| {
                    let label = s.label.clone();
                    (s, label)
                })
                .collect()
        }
    };
    let rows = subjects.iter().map(|(s, l)| subject_row(s, l)).collect();
    Ok(table("Subjects", SUBJECT_COLUMNS, rows, &ctx.params))
}

async fn experiments(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let store = ctx.state.store();
    // Subject labels as the listed project knows them, where they differ.
    let mut labels: HashMap<String, String> = HashMap::new();
    // (experiment, its label in the listed project)
    let experiments: Vec<(Experiment, String)> = match scope(&ctx.actor(), path).await? {
        Some(scope) => {
            scope.check(Action::ReadData)?;
            let project = scope.project.id.clone();
            if path.subject.is_some() {
                let subject = scope.subject(path)?;
                if let Some(label) = scope.subject_label() {
                    labels.insert(subject.id.clone(), label.to_owned());
                }
                experiments_in(ctx, &project, Some(subject)).await?
            } else {
                for (s, share) in store.subjects_shared_into(&project).await? {
                    labels.insert(s.id, share.label);
                }
                experiments_in(ctx, &project, None).await?
            }
        }
        None => {
            let readable = readable_projects(ctx).await?;
            let shares = store.all_shares(ShareKind::Experiment).await?;
            let mut all = store.experiments(None, None).await?;
            all.retain(|e| visible_site_wide(&readable, &shares, &e.id, &e.project));
            all.into_iter()
                .map(|e| {
                    let label = e.label.clone();
                    (e, label)
                })
                .collect()
        }
    };
    let mut rows = Vec::with_capacity(experiments.len());
    for (e, label) in &experiments {
        if !labels.contains_key(&e.subject_id) {
            let subject_label = store
                .subject_by_id(&e.subject_id)
                .await?
                .map(|s| s.label)
                .unwrap_or_default();
            labels.insert(e.subject_id.clone(), subject_label);
        }
        let subject_label = labels.get(&e.subject_id).map(String::as_str).unwrap_or("");
        rows.push(experiment_row(e, label, subject_label));
    }
    Ok(table("Experiments", EXPERIMENT_COLUMNS, rows, &ctx.params))
}

/// Scans of a session, narrowed to `ALL` / `1,2` / scan types when given.
pub(crate) fn select_scans(all: Vec<Scan>, selector: Option<&ScanSelector>) -> Vec<Scan> {
    match selector {
        None | Some(ScanSelector::All) => all,
        Some(ScanSelector::Ids(ids)) => all
            .into_iter()
            .filter(|s| {
                ids.iter()
                    .any(|id| *id == s.scan_id || s.attrs.scan_type.eq_ignore_ascii_case(id))
            })
            .collect(),
    }
}

async fn scans(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let scope = required_scope(&ctx.actor(), path).await?;
    scope.check(Action::ReadData)?;
    let experiment = scope.experiment(path)?;
    let scans = select_scans(
        ctx.state.store().scans(&experiment.id).await?,
        path.scans.as_ref(),
    );
    let rows: Vec<Row> = scans.iter().map(scan_row).collect();
    Ok(table("Scans", SCAN_COLUMNS, rows, &ctx.params))
}

async fn resources(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let scope = required_scope(&ctx.actor(), path).await?;
    scope.check(Action::ReadData)?;
    let owner = scope.resource_owner(&ctx.actor(), path).await?;
    let (category, cat_id) = match &owner.scan {
        Some(scan) => ("scans", scan.scan_id.clone()),
        None => ("resources", String::new()),
    };
    let rows = ctx
        .state
        .store()
        .resources(&owner.owner)
        .await?
        .iter()
        .map(|r| resource_row(r, category, &cat_id))
        .collect();
    Ok(table("Resources", RESOURCE_COLUMNS, rows, &ctx.params))
}

/// A session's assessors; `xsiType=` filters, `columns=` may add fields by
/// XPath (`proc:genProcData/procstatus`).
async fn assessors(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let (found, all) = crate::archive::assessors::list(&ctx.actor(), path).await?;
    let extra: Vec<String> = ctx
        .params
        .get("columns")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|c| c.contains('/') && c.contains(':'))
        .map(str::to_owned)
        .collect();
    let rows = all
        .iter()
        .map(|a| assessor_row(a, &found.session, &extra))
        .collect();
    let mut columns: Vec<&str> = ASSESSOR_COLUMNS.to_vec();
    columns.extend(extra.iter().map(String::as_str));
    Ok(table("Assessors", &columns, rows, &ctx.params))
}
