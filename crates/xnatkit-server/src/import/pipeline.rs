//! Staged files → sessions. Headers are read in parallel (pixel data never
//! read), every instance is routed with the caller's project rights, the
//! instances are grouped per study and destination, and each group goes to
//! the archive or the prearchive as the request and the project's
//! `prearchive_code` say. Data no rule routes lands in the prearchive as
//! Unassigned; an archive attempt that conflicts leaves the data in the
//! prearchive (status CONFLICT) so nothing sent is lost.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use xnatkit_dicom::{
    ExistingSession, FALLBACK_SESSION_LABEL, InstanceRef, Route, RoutingHints, SortedStudy,
    route_with, sort_instances_with,
};

use super::archive::{ArchiveError, ArchiveTarget, archive_study};
use super::options::{Destination, ImportHandler, ImportOptions, Overwrite};
use super::stage::Staged;
use crate::access::Caller;
use crate::access::ingest::may_put_into;
pub(crate) use crate::access::ingest::project_access;
use crate::archive::Error;
use crate::prearchive::{self, PlaceRequest, status};
use crate::state::AppState;
use crate::store::UNASSIGNED;

/// Reads the headers of staged files and imports them. Unparsable files fail
/// the whole import (naming the file) unless `Ignore-Unparsable` is set.
pub async fn import_staged(
    state: &AppState,
    caller: &Caller,
    options: &ImportOptions,
    staged: Staged,
    stage_dir: &Path,
) -> Result<Vec<String>, Error> {
    let paths: Vec<_> = staged.files.iter().map(|f| f.path.clone()).collect();
    let names: HashMap<_, _> = staged
        .files
        .iter()
        .map(|f| (f.path.clone(), f.name.clone()))
        .collect();
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let headers =
        tokio::task::spawn_blocking(move || xnatkit_dicom::read_headers_parallel(&paths, jobs))
            .await
            .map_err(|e| Error::Internal(format!("header reader failed: {e}")))?;
    let stage_prefix = format!("{}/", stage_dir.display());
    let mut instances = Vec::with_capacity(headers.len());
    let mut skipped = Vec::new();
    for (path, result) in headers {
        let name = names.get(&path).cloned().unwrap_or_default();
        match result {
            Ok(header) => instances.push(InstanceRef { path, header }),
            Err(err) if err.is_unparsable() => {
                // xnatkit-dicom names the staged path; say the entry name once instead.
                let full = err.to_string();
                let reason = full
                    .strip_prefix(&format!("{}: ", path.display()))
                    .map_or_else(|| full.replace(&stage_prefix, ""), str::to_owned);
                if !staged.from_archive {
                    return Err(Error::Invalid(format!(
                        "the request body is neither a zip, tar or tar.gz archive nor a DICOM file ({reason}); send one of those"
                    )));
                }
                if !options.ignore_unparsable {
                    return Err(Error::Invalid(format!(
                        "unable to read DICOM object {name}: {reason}; remove it or add Ignore-Unparsable=true"
                    )));
                }
                skipped.push(name);
            }
            Err(err) => {
                return Err(Error::Internal(format!("reading {name}: {err}")));
            }
        }
    }
    if instances.is_empty() {
        let what = if staged.files.is_empty() {
            "the archive holds no files".to_owned()
        } else {
            format!("{} files skipped as unparsable", skipped.len())
        };
        return Err(Error::Invalid(format!(
            "Upload did not include parsable files for session generation ({what})"
        )));
    }
    if !skipped.is_empty() {
        tracing::info!(
            "import skipped {} unparsable files: {}",
            skipped.len(),
            skipped.join(", ")
        );
    }
    import_instances(state, caller, options, instances).await
}

/// Which projects an import may route into at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectScope {
    /// Any project the caller may put data into.
    Any,
    /// Only this project (a receiver bound to one project); data routed
    /// elsewhere by its headers goes to this project too.
    Only(String),
}

/// Projects the instances may be routed to, keyed by the candidate text
/// found (hint or header value), mapped to the project's canonical ID.
struct ProjectGate {
    usable: HashMap<String, String>,
}

impl ProjectGate {
    async fn build(
        state: &AppState,
        caller: &Caller,
        options: &ImportOptions,
        scope: &ProjectScope,
        instances: &[InstanceRef],
    ) -> Result<Self, Error> {
        let hints = &options.hints;
        let candidates = RefCell::new(BTreeSet::new());
        for instance in instances {
            // Every candidate is offered to the closure in XNAT's order;
            // refusing all of them collects the complete set.
            route_with(&instance.header, hints, |candidate| {
                candidates.borrow_mut().insert(candidate.to_owned());
                false
            });
        }
        let mut usable = HashMap::new();
        for candidate in candidates.into_inner() {
            let Some((project, access)) = project_access(state, caller, &candidate).await? else {
                continue;
            };
            if let ProjectScope::Only(only) = scope
                && !only.eq_ignore_ascii_case(&project.id)
            {
                continue;
            }
            match may_put_into(&access, &project.id, options.overwrite) {
                Ok(()) => {
                    usable.insert(candidate, project.id);
                }
                // An explicit project the caller may not write to is an
                // error, not a silent detour to the prearchive.
                Err(refusal) if hints.project.as_deref() == Some(candidate.as_str()) => {
                    return Err(refusal);
                }
                Err(_) => {}
            }
        }
        Ok(Self { usable })
    }
}

/// Instances of one study going to one destination.
struct Group {
    route: Route,
    instances: Vec<InstanceRef>,
}

type GroupKey = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<bool>,
);

fn group_instances(
    instances: Vec<InstanceRef>,
    hints: &RoutingHints,
    gate: &ProjectGate,
) -> Vec<Group> {
    let mut groups: BTreeMap<GroupKey, Group> = BTreeMap::new();
    for instance in instances {
        let mut route = route_with(&instance.header, hints, |c| gate.usable.contains_key(c));
        route.project = route
            .project
            .and_then(|candidate| gate.usable.get(&candidate).cloned());
        let key = (
            instance.header.study_instance_uid.clone(),
            route.project.clone(),
            route.subject.clone(),
            route.session.clone(),
            route.auto_archive,
        );
        groups
            .entry(key)
            .or_insert_with(|| Group {
                route,
                instances: Vec::new(),
            })
            .instances
            .push(instance);
    }
    groups.into_values().collect()
}

/// Sorts a group into its session (scans, IDs, file names). The route is
/// fixed, so exactly one study comes out.
pub(crate) fn sort_group(route: &Route, instances: &[InstanceRef]) -> Option<SortedStudy> {
    let hints = RoutingHints {
        project: route.project.clone(),
        subject: route.subject.clone(),
        session: route.session.clone(),
    };
    sort_instances_with(instances.to_vec(), &hints, |_| true)
        .into_iter()
        .next()
}

/// Routes, groups and stores instances whose headers are known (uploads and
/// the C-STORE receiver). Returns one `/data/...` URI per session touched.
pub async fn import_instances(
    state: &AppState,
    caller: &Caller,
    options: &ImportOptions,
    instances: Vec<InstanceRef>,
) -> Result<Vec<String>, Error> {
    import_instances_in(state, caller, options, &ProjectScope::Any, instances).await
}

/// [`import_instances`] limited to the projects `scope` allows.
pub async fn import_instances_in(
    state: &AppState,
    caller: &Caller,
    options: &ImportOptions,
    scope: &ProjectScope,
    instances: Vec<InstanceRef>,
) -> Result<Vec<String>, Error> {
    let gate = ProjectGate::build(state, caller, options, scope, &instances).await?;
    let groups = group_instances(instances, &options.hints, &gate);
    if options.handler == ImportHandler::SessionImporter
        && options.destination != Destination::Prearchive
        && groups.len() > 1
    {
        return Err(Error::Invalid(format!(
            "Upload included files for multiple imaging sessions ({} studies); send one study per request or use dest=/prearchive",
            groups.len()
        )));
    }
    let mut uris = Vec::with_capacity(groups.len());
    for group in groups {
        uris.push(place_group(state, caller, options, group).await?);
    }
    Ok(uris)
}

async fn place_group(
    state: &AppState,
    caller: &Caller,
    options: &ImportOptions,
    group: Group,
) -> Result<String, Error> {
    let study = sort_group(&group.route, &group.instances)
        .ok_or_else(|| Error::Internal("a study group sorted to nothing".to_owned()))?;
    let label = group
        .route
        .session
        .clone()
        .unwrap_or_else(|| FALLBACK_SESSION_LABEL.to_owned());
    let source = options.source.clone();
    let receiving = if options.handler == ImportHandler::GradualDicom {
        status::RECEIVING
    } else {
        status::READY
    };
    let Some(project) = group.route.project.clone() else {
        let placed = prearchive::place(
            state,
            PlaceRequest {
                project: UNASSIGNED,
                folder: &label,
                study: &study,
                instances: &group.instances,
                status: receiving,
                message: "",
                source: &source,
            },
        )
        .await?;
        return Ok(format!("/data{}", prearchive::session_uri(&placed)));
    };
    let code = state.store().prearchive_code(&project).await?;
    let to_archive = match options.destination {
        Destination::Archive => true,
        Destination::Prearchive => false,
        // Gradual uploads collect in the prearchive; the project setting
        // applies when the session is built (see `prearchive::sweep`).
        Destination::Default if options.handler == ImportHandler::GradualDicom => {
            options.direct_archive
        }
        Destination::Default => {
            options.direct_archive
                || options
                    .auto_archive
                    .or(group.route.auto_archive)
                    .unwrap_or(code >= 4)
        }
    };
    if !to_archive {
        let placed = prearchive::place(
            state,
            PlaceRequest {
                project: &project,
                folder: &label,
                study: &study,
                instances: &group.instances,
                status: receiving,
                message: "",
                source: &source,
            },
        )
        .await?;
        return Ok(format!("/data{}", prearchive::session_uri(&placed)));
    }
    let overwrite = match (options.overwrite, options.destination, code) {
        (explicit, _, _) if explicit != Overwrite::None => explicit,
        (_, Destination::Default, 5) if !options.direct_archive => Overwrite::Replace,
        (_, Destination::Default, _) if !options.direct_archive => Overwrite::Append,
        _ => Overwrite::None,
    };
    let target = ArchiveTarget {
        project: project.clone(),
        subject: group.route.subject.clone().unwrap_or_else(|| label.clone()),
        label: label.clone(),
    };
    let created_by = caller.username().unwrap_or("admin").to_owned();
    let archived = archive_study(
        state,
        &created_by,
        &target,
        &group.instances,
        &study,
        &ExistingSession::default(),
        overwrite,
    )
    .await;
    match archived {
        Ok(uri) => Ok(uri),
        Err(failure) => {
            // The files are back where they were: keep them in the
            // prearchive, flagged, so the user can fix and archive later.
            let (flag, message, error) = match failure {
                ArchiveError::Conflict(message) => {
                    (status::CONFLICT, message.clone(), Error::Conflict(message))
                }
                ArchiveError::Failed(error) => (status::ERROR, error.to_string(), error),
            };
            let placed = prearchive::place(
                state,
                PlaceRequest {
                    project: &project,
                    folder: &label,
                    study: &study,
                    instances: &group.instances,
                    status: flag,
                    message: &message,
                    source: &source,
                },
            )
            .await?;
            let kept = format!("/data{}", prearchive::session_uri(&placed));
            Err(match error {
                Error::Conflict(m) => {
                    Error::Conflict(format!("{m}; the data is kept in the prearchive at {kept}"))
                }
                other => other,
            })
        }
    }
}
