//! Image assessors of a session: finding them by ID or label, creating and
//! updating them from a type and XPath fields, deleting them with their
//! files. Permissions follow the parent session (reading needs the
//! session's data, writing needs the right to create or edit in its
//! project), as in XNAT.

use std::collections::BTreeMap;

use xnatkit_model::{ArchivePath, AssessorType, Label, encode_segment};

use super::files::remove_dirs;
use super::objects::Written;
use super::{Actor, Error, ResourceOwner, Result, Scope, required_scope};
use crate::access::Action;
use crate::store::{Assessor, Experiment, NewAssessor, Owner};

/// What an assessor PUT asks for; `None` keeps what is stored.
#[derive(Debug, Clone, Default)]
pub struct AssessorChanges {
    pub label: Option<String>,
    pub xsi_type: Option<AssessorType>,
    /// XPath field steps below the type (`procstatus`,
    /// `validation/status`) with their values; an empty value clears.
    pub fields: Vec<(String, String)>,
    /// Nested records as XNAT's items `children` JSON (server-side
    /// writers such as the QA pipeline, and XML documents).
    pub children: Option<String>,
    /// The record is replaced: the fields given are all it keeps (and
    /// `children` its nested records), as XNAT's PUT of an XML document does.
    pub replace: bool,
}

/// The session a path names and the assessor in it, when it exists.
pub struct Found {
    pub scope: Scope,
    pub session: Experiment,
    pub assessor: Option<Assessor>,
}

/// Resolves `…/experiments/E/assessors/A` without checking permissions.
pub async fn find(actor: &Actor<'_>, path: &ArchivePath) -> Result<Found> {
    let scope = required_scope(actor, path).await?;
    let session = scope.experiment(path)?.clone();
    let assessor = match &path.assessor {
        Some(key) => actor.state.store().assessor_in(&session.id, key).await?,
        None => None,
    };
    Ok(Found {
        scope,
        session,
        assessor,
    })
}

/// The assessors of the session a path names, for a caller who may read it.
pub async fn list(actor: &Actor<'_>, path: &ArchivePath) -> Result<(Found, Vec<Assessor>)> {
    let found = find(actor, path).await?;
    found.scope.check(Action::ReadData)?;
    let all = actor.state.store().assessors(&found.session.id).await?;
    Ok((found, all))
}

/// The assessor a path names, for a caller who may read its session.
pub async fn get(actor: &Actor<'_>, path: &ArchivePath) -> Result<(Found, Assessor)> {
    let found = find(actor, path).await?;
    found.scope.check(Action::ReadData)?;
    let assessor = found
        .assessor
        .clone()
        .ok_or_else(|| Error::not_found(format!("assessor {}", missing_key(path))))?;
    Ok((found, assessor))
}

fn missing_key(path: &ArchivePath) -> &str {
    path.assessor.as_deref().unwrap_or("")
}

/// Applies XPath field changes to stored fields, refusing fields the type
/// does not have (a typo would otherwise be stored and never read back).
fn merged_fields(
    kind: AssessorType,
    stored: &BTreeMap<String, String>,
    changes: &[(String, String)],
) -> Result<BTreeMap<String, String>> {
    let mut fields = stored.clone();
    for (name, value) in changes {
        let Some(canonical) = kind.field(name) else {
            return Err(Error::Invalid(format!(
                "{kind} has no field {name}; it has {}",
                xnatkit_model::assessor::COMMON_FIELDS
                    .iter()
                    .chain(kind.fields())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        if value.is_empty() {
            fields.remove(canonical);
        } else {
            fields.insert(canonical.to_owned(), value.clone());
        }
    }
    Ok(fields)
}

/// Creates the assessor a path names or updates it.
pub async fn put(
    actor: &Actor<'_>,
    path: &ArchivePath,
    changes: &AssessorChanges,
) -> Result<Written> {
    let found = find(actor, path).await?;
    let store = actor.state.store();
    if let Some(assessor) = &found.assessor {
        found.scope.check(Action::Edit)?;
        let kind = match changes.xsi_type {
            Some(kind) => kind,
            None => stored_type(assessor)?,
        };
        if let Some(raw) = &changes.label
            && raw != &assessor.label
        {
            let label = parse_label(raw)?;
            store
                .rename_assessor(&assessor.id, label.as_str())
                .await
                .map_err(|e| label_conflict(e, label.as_str(), &assessor.project))?;
        }
        let kept = if changes.replace {
            BTreeMap::new()
        } else {
            assessor.fields.clone()
        };
        let fields = merged_fields(kind, &kept, &changes.fields)?;
        store
            .update_assessor(
                &assessor.id,
                kind.as_str(),
                &fields,
                changes.children.as_deref(),
            )
            .await?;
        return Ok(Written::Updated(assessor.id.clone()));
    }
    found.scope.check(Action::Create)?;
    let kind = changes.xsi_type.ok_or_else(|| {
        Error::Invalid(format!(
            "creating assessor {} needs xsiType= (one of {})",
            missing_key(path),
            AssessorType::ALL.map(AssessorType::as_str).join(", ")
        ))
    })?;
    let raw = changes.label.as_deref().unwrap_or(missing_key(path));
    let label = parse_label(raw)?;
    let fields = merged_fields(kind, &BTreeMap::new(), &changes.fields)?;
    let user = actor.caller.require_user()?;
    let id = create(
        actor,
        &found.session,
        label.as_str(),
        kind,
        &fields,
        changes.children.as_deref().unwrap_or(""),
        &user.username,
    )
    .await?;
    Ok(Written::Created(id))
}

/// Creates an assessor of `session` (the caller's rights already checked):
/// the entry point for server-side writers such as the pipeline engine.
pub async fn create(
    actor: &Actor<'_>,
    session: &Experiment,
    label: &str,
    kind: AssessorType,
    fields: &BTreeMap<String, String>,
    children: &str,
    created_by: &str,
) -> Result<String> {
    actor
        .state
        .store()
        .create_assessor(
            &actor.state.config().site_id,
            &NewAssessor {
                project: &session.project,
                session_id: &session.id,
                label,
                xsi_type: kind.as_str(),
                fields,
                children,
                created_by,
            },
        )
        .await
        .map_err(|e| label_conflict(e, label, &session.project))
}

/// Deletes the assessor a path names with its files.
pub async fn delete(actor: &Actor<'_>, path: &ArchivePath) -> Result<()> {
    let found = find(actor, path).await?;
    found.scope.check(Action::ReadData)?;
    let assessor = found
        .assessor
        .ok_or_else(|| Error::not_found(format!("assessor {}", missing_key(path))))?;
    found.scope.check(Action::Delete)?;
    remove(actor, &assessor).await
}

/// Deletes an assessor (rights already checked): rows first, then files,
/// so a crash in between leaves unreferenced files, never rows without them.
pub async fn remove(actor: &Actor<'_>, assessor: &Assessor) -> Result<()> {
    let store = actor.state.store();
    let dirs = store
        .resources(&Owner::Assessor(assessor.id.clone()))
        .await?
        .into_iter()
        .map(|r| r.dir)
        .collect();
    store.delete_assessor(&assessor.id).await?;
    remove_dirs(actor.state, dirs).await;
    Ok(())
}

/// Where an assessor's resources live: `ASSESSORS/{label}` in its
/// session's folder, as XNAT lays them out.
pub fn resource_owner(session: &Experiment, assessor: &Assessor) -> ResourceOwner {
    ResourceOwner {
        owner: Owner::Assessor(assessor.id.clone()),
        project: session.project.clone(),
        base_dir: format!(
            "{}/arc001/{}/ASSESSORS/{}",
            session.project, session.label, assessor.label
        ),
        uri: format!(
            "/data/experiments/{}/assessors/{}",
            session.id,
            encode_segment(&assessor.id)
        ),
        scan: None,
        assessor_label: Some(assessor.label.clone()),
    }
}

/// The stored type of an assessor, refusing a type this server does not
/// know (a row written by a newer version).
pub fn stored_type(assessor: &Assessor) -> Result<AssessorType> {
    AssessorType::parse(&assessor.xsi_type).ok_or_else(|| {
        Error::Invalid(format!(
            "assessor {} has type {}, which this server does not know",
            assessor.id, assessor.xsi_type
        ))
    })
}

fn parse_label(raw: &str) -> Result<Label> {
    Label::parse(raw)
        .map_err(|e| Error::InvalidLabel(format!("Invalid character in assessor label: {e}")))
}

fn label_conflict(err: sqlx::Error, label: &str, project: &str) -> Error {
    if err
        .as_database_error()
        .is_some_and(|d| d.is_unique_violation())
    {
        Error::Conflict(format!(
            "label {label} is already used by an experiment or assessor in project {project}; choose another label"
        ))
    } else {
        err.into()
    }
}
