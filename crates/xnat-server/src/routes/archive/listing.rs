//! Collection listings: projects, subjects, experiments, scans, resources.

use std::collections::{HashMap, HashSet};

use axum::response::Response;
use xnat_model::{ArchivePath, Level, Row, ScanSelector};

use super::Ctx;
use super::render::{experiment_row, project_row, resource_row, scan_row, subject_row, table};
use super::resolve::{project_access, required_scope, scope};
use crate::access::Action;
use crate::error::ApiError;
use crate::store::Scan;

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
        _ => Err(ApiError::NotFound("Not Found".to_owned())),
    }
}

async fn projects(ctx: &Ctx) -> Result<Response, ApiError> {
    let mut rows = Vec::new();
    for project in ctx.state.store().projects().await? {
        if project_access(ctx, &project).await?.lists_project() {
            rows.push(project_row(&project));
        }
    }
    Ok(table("Projects", PROJECT_COLUMNS, rows, &ctx.params))
}

/// Projects whose data the caller may read (for site-wide listings).
async fn readable_projects(ctx: &Ctx) -> Result<HashSet<String>, ApiError> {
    let mut out = HashSet::new();
    for project in ctx.state.store().projects().await? {
        if project_access(ctx, &project).await?.can_read_data() {
            out.insert(project.id);
        }
    }
    Ok(out)
}

async fn subjects(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let store = ctx.state.store();
    let subjects = match scope(ctx, path).await? {
        Some(scope) => {
            scope.check(Action::ReadData)?;
            store.subjects(Some(&scope.project.id)).await?
        }
        None => {
            let readable = readable_projects(ctx).await?;
            let mut all = store.subjects(None).await?;
            all.retain(|s| readable.contains(&s.project));
            all
        }
    };
    let rows = subjects.iter().map(subject_row).collect();
    Ok(table("Subjects", SUBJECT_COLUMNS, rows, &ctx.params))
}

async fn experiments(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let store = ctx.state.store();
    let experiments = match scope(ctx, path).await? {
        Some(scope) => {
            scope.check(Action::ReadData)?;
            if path.subject.is_some() {
                let subject = scope.subject(path)?;
                store.experiments(None, Some(&subject.id)).await?
            } else {
                store.experiments(Some(&scope.project.id), None).await?
            }
        }
        None => {
            let readable = readable_projects(ctx).await?;
            let mut all = store.experiments(None, None).await?;
            all.retain(|e| readable.contains(&e.project));
            all
        }
    };
    let mut labels: HashMap<String, String> = HashMap::new();
    let mut rows = Vec::with_capacity(experiments.len());
    for e in &experiments {
        if !labels.contains_key(&e.subject_id) {
            let label = store
                .subject_by_id(&e.subject_id)
                .await?
                .map(|s| s.label)
                .unwrap_or_default();
            labels.insert(e.subject_id.clone(), label);
        }
        let label = labels.get(&e.subject_id).map(String::as_str).unwrap_or("");
        rows.push(experiment_row(e, label));
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
    let scope = required_scope(ctx, path).await?;
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
    let scope = required_scope(ctx, path).await?;
    scope.check(Action::ReadData)?;
    let owner = scope.resource_owner(ctx, path).await?;
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
