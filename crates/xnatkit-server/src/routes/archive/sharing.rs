//! Sharing subjects and experiments into other projects (see
//! [`crate::store::sharing`]) and the experiment status:
//!
//! - `PUT {subject|experiment}/projects/{P2}[?label=L]` shares (or relabels
//!   the share); `DELETE` the same URI removes the share;
//! - `GET {subject|experiment}/projects` lists the owning project and the
//!   projects it is shared into, each with the object's label there;
//! - `GET {experiment}/status` answers `active` or `quarantine`.
//!
//! `{subject|experiment}` is any URI form the archive accepts for the
//! object; reaching it goes through [`super::resolve`] and every decision
//! through [`crate::access`].

use axum::http::{Method, StatusCode};
use axum::response::Response;
use xnatkit_model::resultset::row;
use xnatkit_model::{ArchivePath, Label, Level};

use super::Ctx;
use super::objects::attribute;
use super::render::table;
use crate::access::Action;
use crate::archive::{Scope, project_access, required_scope};
use crate::error::ApiError;
use crate::routes::text;
use crate::store::{ShareKind, ShareOutcome};

/// Handles the path if it is a sharing or status URI; `Ok(None)` otherwise.
pub(crate) async fn try_dispatch(
    ctx: &Ctx,
    segments: &[String],
) -> Result<Option<Response>, ApiError> {
    let n = segments.len();
    let last = segments.last().map(String::as_str);
    let before_last = n
        .checked_sub(2)
        .and_then(|i| segments.get(i))
        .map(String::as_str);
    let (head, target) = match (before_last, last) {
        (Some("projects"), Some(p)) if n > 2 => (&segments[..n - 2], Some(p)),
        (_, Some("projects" | "status")) => (&segments[..n - 1], None),
        _ => return Ok(None),
    };
    let Ok(path) = ArchivePath::parse(head) else {
        return Ok(None);
    };
    let kind = match path.level() {
        Level::Subject => ShareKind::Subject,
        Level::Experiment => ShareKind::Experiment,
        _ => return Ok(None),
    };
    let response = match (target, last, &ctx.method) {
        (Some(project), _, &Method::PUT | &Method::POST) => {
            put_share(ctx, &path, kind, project).await?
        }
        (Some(project), _, &Method::DELETE) => delete_share(ctx, &path, kind, project).await?,
        (None, Some("projects"), &Method::GET | &Method::HEAD) => {
            list_projects(ctx, &path, kind).await?
        }
        (None, Some("status"), &Method::GET | &Method::HEAD) if kind == ShareKind::Experiment => {
            status(ctx, &path).await?
        }
        (None, Some("status"), _) if kind == ShareKind::Subject => return Ok(None),
        _ => {
            return Err(ApiError::BadRequest(format!(
                "method {} is not supported here; share with PUT …/projects/{{PROJECT}}, unshare with DELETE",
                ctx.method
            )));
        }
    };
    Ok(Some(response))
}

/// The object the path names: (accession ID, owning project, own label).
fn named(
    scope: &Scope,
    path: &ArchivePath,
    kind: ShareKind,
) -> Result<(String, String, String), ApiError> {
    Ok(match kind {
        ShareKind::Subject => {
            let s = scope.subject(path)?;
            (s.id.clone(), s.project.clone(), s.label.clone())
        }
        ShareKind::Experiment => {
            let e = scope.experiment(path)?;
            (e.id.clone(), e.project.clone(), e.label.clone())
        }
    })
}

fn noun(kind: ShareKind) -> &'static str {
    match kind {
        ShareKind::Subject => "subject",
        ShareKind::Experiment => "experiment",
    }
}

/// `PUT …/projects/{P2}[?label=L]`: needs read on the object and create
/// (member or owner) in P2; the label (default: the object's own) must be
/// free in P2. A repeat with the same label is a no-op (200).
async fn put_share(
    ctx: &Ctx,
    path: &ArchivePath,
    kind: ShareKind,
    target: &str,
) -> Result<Response, ApiError> {
    let store = ctx.state.store();
    let user = ctx.caller.require_user()?;
    let scope = required_scope(&ctx.actor(), path).await?;
    scope.check(Action::ReadData)?;
    let (id, own_project, own_label) = named(&scope, path, kind)?;
    if ctx.params.flag("primary") {
        return Err(ApiError::BadRequest(
            "primary=true (moving a subject or experiment to another project) is not supported by this server; share it without primary".to_owned(),
        ));
    }
    let project = store
        .project(target)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Unable to identify project: {target}")))?;
    let access = project_access(&ctx.actor(), &project).await?;
    access.check(Action::Create, &format!("project {}", project.id))?;
    if project.id == own_project {
        return Err(ApiError::Conflict(format!(
            "Already assigned to project: {}",
            project.id
        )));
    }
    let label = match attribute(ctx, "label").filter(|l| !l.is_empty()) {
        Some(raw) => Label::parse(&raw).map_err(|e| {
            ApiError::InvalidLabel(format!("Invalid character in {} label: {e}", noun(kind)))
        })?,
        None => Label::parse(&own_label)?,
    };
    match store
        .share(kind, &id, &project.id, label.as_str(), &user.username)
        .await?
    {
        ShareOutcome::LabelTaken => Err(ApiError::Conflict(format!(
            "Label already in use: {label} (another {} in project {} has it)",
            noun(kind),
            project.id
        ))),
        ShareOutcome::Created | ShareOutcome::Relabelled | ShareOutcome::Unchanged => {
            Ok(text(StatusCode::OK, id))
        }
    }
}

/// `DELETE …/projects/{P2}`: removes the share into P2 (never the object).
/// The owners of either project may.
async fn delete_share(
    ctx: &Ctx,
    path: &ArchivePath,
    kind: ShareKind,
    target: &str,
) -> Result<Response, ApiError> {
    let store = ctx.state.store();
    let scope = required_scope(&ctx.actor(), path).await?;
    scope.check(Action::ReadData)?;
    let (id, own_project, _) = named(&scope, path, kind)?;
    let project = store
        .project(target)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Unable to identify project: {target}")))?;
    if project.id == own_project {
        return Err(ApiError::Conflict(format!(
            "{id} belongs to project {own_project}; delete the {} itself to remove it there",
            noun(kind)
        )));
    }
    let own = store
        .project(&own_project)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("project {own_project}")))?;
    let own_access = project_access(&ctx.actor(), &own).await?;
    if own_access
        .check(Action::Delete, &format!("project {own_project}"))
        .is_err()
    {
        let access = project_access(&ctx.actor(), &project).await?;
        access.check(Action::Delete, &format!("project {}", project.id))?;
    }
    if !store.unshare(kind, &id, &project.id).await? {
        return Err(ApiError::not_found(format!(
            "{} {id} is not shared into project {}",
            noun(kind),
            project.id
        )));
    }
    Ok(text(StatusCode::OK, ""))
}

/// `GET …/projects`: XNAT's table of the owning project and the projects
/// the object is shared into (those the caller can see), each with the
/// object's label there.
async fn list_projects(
    ctx: &Ctx,
    path: &ArchivePath,
    kind: ShareKind,
) -> Result<Response, ApiError> {
    let store = ctx.state.store();
    let scope = required_scope(&ctx.actor(), path).await?;
    scope.check(Action::ReadData)?;
    let (id, own_project, own_label) = named(&scope, path, kind)?;
    let mut rows = Vec::new();
    let mut entries = vec![(own_project, own_label)];
    entries.extend(
        store
            .shares(kind, &id)
            .await?
            .into_iter()
            .map(|s| (s.project, s.label)),
    );
    for (i, (project_id, label)) in entries.into_iter().enumerate() {
        let Some(project) = store.project(&project_id).await? else {
            continue;
        };
        // The owning project's ID and the object's own label are in the
        // object itself; anything more about a project (its name), and
        // projects shared into, only when the caller can see them.
        let visible = project_access(&ctx.actor(), &project)
            .await?
            .lists_project();
        if i > 0 && !visible {
            continue;
        }
        let (secondary_id, name) = if visible {
            (project.secondary_id.clone(), project.name.clone())
        } else {
            (String::new(), String::new())
        };
        rows.push(row([
            ("label", label),
            ("ID", project.id.clone()),
            ("Secondary_ID", secondary_id),
            ("Name", name),
            ("URI", format!("/data/projects/{}", project.id)),
        ]));
    }
    Ok(table(
        "Projects",
        &["label", "ID", "Secondary_ID", "Name", "URI"],
        rows,
        &ctx.params,
    ))
}

/// `GET {experiment}/status`: `active` or `quarantine`, as plain text.
async fn status(ctx: &Ctx, path: &ArchivePath) -> Result<Response, ApiError> {
    let scope = required_scope(&ctx.actor(), path).await?;
    scope.check(Action::ReadData)?;
    let experiment = scope.experiment(path)?;
    Ok(text(StatusCode::OK, experiment.status.as_str().to_owned()))
}
