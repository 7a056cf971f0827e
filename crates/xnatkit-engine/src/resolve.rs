//! A launch made concrete: the wrapper's inputs filled from the launch
//! parameters and the root object, derived inputs found among the root's
//! resources, command inputs substituted into the command line through
//! their replacement keys (`#name#`), mounts given their sources, and each
//! output paired with the handler that files it. The result is stored with
//! the job, so any worker (this server or another on the same database)
//! runs exactly what the launch accepted.
//!
//! Matchers are a small subset of the Container Service's JSONPath
//! filters, the ones its own commands use: `'X' in @.resources[*].label`
//! and `@.field == 'X'`, joined with `&&` and `||` (`&&` binds tighter).
//!
//! A derived input of type `Scan` or `Assessor` picks a child of its
//! session: the one the launch names in a parameter of the input's name
//! (by ID, label or URI), else the first that matches its matcher.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xnatkit_model::container::{
    Command, ContainerInput, ContainerOutput, OutputHandler, Wrapper, WrapperInput,
};

use crate::validate::BUILTIN_TYPE;

/// The launch parameter every wrapper takes: `true` replaces outputs an
/// earlier run filed (otherwise such a run fails and leaves them).
pub const OVERWRITE: &str = "overwrite";

/// Wrapper input types that name an object of the archive.
pub const OBJECT_TYPES: [&str; 6] = [
    "Project", "Subject", "Session", "Scan", "Assessor", "Resource",
];

/// A resource of the root object, with its folder on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XnatResource {
    pub label: String,
    pub uri: String,
    pub directory: PathBuf,
}

/// The object a launch runs on, as the server found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XnatObject {
    /// The wrapper input type it satisfies (`Scan`, `Session`, ...).
    pub kind: String,
    pub xsi_type: String,
    /// Accession ID (session) or scan ID (scan).
    pub id: String,
    pub label: String,
    /// `/data/experiments/E[/scans/S]`.
    pub uri: String,
    pub project: String,
    /// The session's accession ID, for scans and sessions.
    pub session_id: String,
    pub scan_type: String,
    pub resources: Vec<XnatResource>,
    /// For a session: its scans and assessors (with their resources), for
    /// derived inputs of type `Scan` or `Assessor`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<XnatObject>,
}

impl XnatObject {
    pub(crate) fn property(&self, name: &str) -> Option<String> {
        Some(match name {
            "id" | "ID" => self.id.clone(),
            "label" => self.label.clone(),
            "uri" => self.uri.clone(),
            "project-id" | "project" => self.project.clone(),
            "scan-type" | "type" => self.scan_type.clone(),
            "xsiType" | "xsi-type" => self.xsi_type.clone(),
            "session-id" => self.session_id.clone(),
            _ => return None,
        })
    }
}

/// How an output is filed. The one place that maps output-handler types
/// to what the server does with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputKind {
    /// The files become a resource of the parent object.
    Resource,
    /// The files become a resource of a new image assessor of the parent's
    /// session. XNAT's Container Service reads an assessor XML document the
    /// command wrote; this server builds the assessor itself: an
    /// `xnat:qcAssessmentData` with the scan's statistics when the files
    /// hold QA reports (`qa.json`), an `xnat:imageAssessorData` otherwise.
    Assessor,
}

impl OutputKind {
    pub fn of(handler: &OutputHandler) -> Result<Self, String> {
        match handler.kind.as_str() {
            "Resource" => Ok(Self::Resource),
            "Assessor" => Ok(Self::Assessor),
            other => Err(format!(
                "output handler {} has type {other:?}; this server files outputs as type \"Resource\" or \"Assessor\"",
                handler.name
            )),
        }
    }
}

/// Why a launch cannot run; the message is what the caller sees.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ResolveError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NoMatch(String),
}

/// A mount of the job: an input with its source folder, or an output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedMount {
    pub name: String,
    /// The path the command line uses for it.
    pub path: String,
    pub writable: bool,
    /// For inputs: the server folder whose files it shows.
    pub source: Option<PathBuf>,
}

/// An output with its handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedOutput {
    pub name: String,
    pub handler: String,
    pub kind: OutputKind,
    pub mount: String,
    pub path: Option<String>,
    pub glob: Option<String>,
    pub required: bool,
    pub label: String,
    pub format: String,
    pub content: String,
    pub tags: String,
    /// `/data/...` URI of the object the output is filed under.
    pub parent_uri: String,
}

/// Everything a worker needs to run a launch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedJob {
    pub command_name: String,
    pub wrapper_name: String,
    /// Set for built-in commands: which one runs.
    pub builtin: Option<String>,
    /// With input values substituted; mount paths are replaced by their
    /// folders at run time ([`ResolvedJob::command_line_on`]).
    pub command_line: String,
    pub working_directory: Option<String>,
    pub env: BTreeMap<String, String>,
    pub mounts: Vec<ResolvedMount>,
    pub inputs: Vec<ContainerInput>,
    pub outputs: Vec<ResolvedOutput>,
    pub root: XnatObject,
    /// The launch asked to replace earlier outputs.
    pub overwrite: bool,
}

/// The wrapper's external input that takes an archive object (the launch
/// root), if any.
pub fn root_input(wrapper: &Wrapper) -> Option<&WrapperInput> {
    wrapper
        .external_inputs
        .iter()
        .find(|i| OBJECT_TYPES.contains(&i.kind.as_str()))
}

pub use crate::matcher::matches;

fn resource_as_object(resource: &XnatResource, parent: &XnatObject) -> XnatObject {
    XnatObject {
        kind: "Resource".to_owned(),
        xsi_type: "xnat:resourceCatalog".to_owned(),
        id: resource.label.clone(),
        label: resource.label.clone(),
        uri: resource.uri.clone(),
        project: parent.project.clone(),
        session_id: parent.session_id.clone(),
        scan_type: String::new(),
        resources: Vec::new(),
        children: Vec::new(),
    }
}

/// Is `child` the one a launch parameter names (its ID, label or URI)?
fn names_child(value: &str, child: &XnatObject) -> bool {
    let v = value.trim();
    v == child.id
        || v == child.label
        || v == child.uri
        || v.strip_prefix("/data") == Some(&child.uri)
}

/// The child of `parent` a derived `Scan`/`Assessor` input takes.
fn derived_child(
    input: &WrapperInput,
    parent: &XnatObject,
    params: &BTreeMap<String, String>,
) -> Result<Option<XnatObject>, ResolveError> {
    let of_kind = parent.children.iter().filter(|c| c.kind == input.kind);
    if let Some(named) = params.get(&input.name).filter(|v| !v.trim().is_empty()) {
        let Some(child) = of_kind.clone().find(|c| names_child(named, c)) else {
            return Err(ResolveError::NoMatch(format!(
                "{} has no {} {named:?} (input {})",
                parent.uri,
                input.kind.to_ascii_lowercase(),
                input.name
            )));
        };
        if let Some(m) = &input.matcher
            && !matches(m, child)?
        {
            return Err(ResolveError::NoMatch(format!(
                "{} does not match input {} ({m})",
                child.uri, input.name
            )));
        }
        return Ok(Some(child.clone()));
    }
    for child in of_kind {
        let ok = match &input.matcher {
            Some(m) => matches(m, child)?,
            None => true,
        };
        if ok {
            return Ok(Some(child.clone()));
        }
    }
    if input.required.unwrap_or(false) {
        return Err(ResolveError::NoMatch(format!(
            "{} has no {} matching input {} ({}); name one in the launch",
            parent.uri,
            input.kind.to_ascii_lowercase(),
            input.name,
            input.matcher.as_deref().unwrap_or("any")
        )));
    }
    Ok(None)
}

fn truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "y"
    )
}

/// Resolves a launch of `wrapper` of `command` on `root` with the caller's
/// `params` (wrapper input name → value).
pub fn resolve(
    command: &Command,
    wrapper: &Wrapper,
    root: &XnatObject,
    params: &BTreeMap<String, String>,
) -> Result<ResolvedJob, ResolveError> {
    let root_name = root_input(wrapper).map(|i| i.name.clone()).ok_or_else(|| {
        ResolveError::Invalid(format!(
            "wrapper {} has no external input that takes an archive object",
            wrapper.name
        ))
    })?;
    let root_def = root_input(wrapper)
        .map(|i| i.kind.clone())
        .unwrap_or_default();
    if root_def != root.kind {
        return Err(ResolveError::Invalid(format!(
            "wrapper {} runs on a {root_def}, and {} is a {}",
            wrapper.name, root.uri, root.kind
        )));
    }
    for known in params.keys() {
        if known == OVERWRITE {
            continue;
        }
        let is_input = wrapper
            .external_inputs
            .iter()
            .chain(&wrapper.derived_inputs)
            .any(|i| &i.name == known)
            || command.inputs.iter().any(|i| &i.name == known);
        if !is_input {
            return Err(ResolveError::Invalid(format!(
                "wrapper {} has no input named {known:?}",
                wrapper.name
            )));
        }
    }
    let mut container_inputs = Vec::new();
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut objects: BTreeMap<String, XnatObject> = BTreeMap::new();
    let mut mount_sources: BTreeMap<String, PathBuf> = BTreeMap::new();

    for input in &wrapper.external_inputs {
        let value = if input.name == root_name {
            if let Some(matcher) = &input.matcher
                && !matches(matcher, root)?
            {
                return Err(ResolveError::NoMatch(format!(
                    "{} does not match wrapper input {} ({matcher})",
                    root.uri, input.name
                )));
            }
            objects.insert(input.name.clone(), root.clone());
            root.uri.clone()
        } else {
            match params.get(&input.name).or(input.default_value.as_ref()) {
                Some(v) => v.clone(),
                None if input.required.unwrap_or(false) => {
                    return Err(ResolveError::Invalid(format!(
                        "input {} is required; add it to the launch",
                        input.name
                    )));
                }
                None => String::new(),
            }
        };
        container_inputs.push(ContainerInput {
            kind: "wrapper-external".to_owned(),
            name: input.name.clone(),
            value: value.clone(),
            sensitive: false,
        });
        values.insert(input.name.clone(), value);
    }
    for input in &wrapper.derived_inputs {
        let parent_name = input.derived_from_wrapper_input.clone().unwrap_or_default();
        let parent = objects.get(&parent_name).cloned().ok_or_else(|| {
            ResolveError::Invalid(format!(
                "derived input {} needs {parent_name:?}, which is not an archive object here",
                input.name
            ))
        })?;
        let value = if input.kind == "Resource" {
            let mut found = None;
            for resource in &parent.resources {
                let as_object = resource_as_object(resource, &parent);
                let ok = match &input.matcher {
                    Some(m) => matches(m, &as_object)?,
                    None => true,
                };
                if ok {
                    found = Some((resource.clone(), as_object));
                    break;
                }
            }
            let Some((resource, as_object)) = found else {
                if input.required.unwrap_or(false) {
                    return Err(ResolveError::NoMatch(format!(
                        "{} has no resource matching {} ({})",
                        parent.uri,
                        input.name,
                        input.matcher.as_deref().unwrap_or("any")
                    )));
                }
                continue;
            };
            if let Some(mount) = &input.provides_files_for_command_mount {
                mount_sources.insert(mount.clone(), resource.directory.clone());
            }
            objects.insert(input.name.clone(), as_object);
            resource.uri
        } else if input.kind == "Scan" || input.kind == "Assessor" {
            let Some(child) = derived_child(input, &parent, params)? else {
                continue;
            };
            let uri = child.uri.clone();
            objects.insert(input.name.clone(), child);
            uri
        } else if let Some(prop) = &input.derived_from_xnat_object_property {
            parent.property(prop).ok_or_else(|| {
                ResolveError::Invalid(format!(
                    "derived input {}: property {prop:?} is not known (id, label, uri, project-id, scan-type, xsiType)",
                    input.name
                ))
            })?
        } else {
            parent.uri.clone()
        };
        container_inputs.push(ContainerInput {
            kind: "wrapper-derived".to_owned(),
            name: input.name.clone(),
            value: value.clone(),
            sensitive: false,
        });
        values.insert(input.name.clone(), value);
    }

    // Command inputs: from the wrapper input that provides them, else the
    // launch parameter of that name, else the default.
    let mut command_line = command.command_line.clone();
    let mut env = command.environment_variables.clone();
    for input in &command.inputs {
        let provided = wrapper
            .external_inputs
            .iter()
            .chain(&wrapper.derived_inputs)
            .find(|w| w.provides_value_for_command_input.as_deref() == Some(&input.name))
            .and_then(|w| values.get(&w.name));
        let raw = provided
            .or_else(|| params.get(&input.name))
            .or(input.default_value.as_ref())
            .cloned();
        let raw = match raw {
            Some(v) => v,
            None if input.required => {
                return Err(ResolveError::Invalid(format!(
                    "command input {} is required; add it to the launch",
                    input.name
                )));
            }
            None => String::new(),
        };
        let value = if input.kind == "boolean" {
            let on = truthy(&raw);
            match (on, &input.true_value, &input.false_value) {
                (true, Some(t), _) => t.clone(),
                (false, _, Some(f)) => f.clone(),
                _ => on.to_string(),
            }
        } else {
            raw
        };
        let rendered = match (&input.command_line_flag, value.is_empty()) {
            (Some(flag), false) => format!(
                "{flag}{}{value}",
                input.command_line_separator.as_deref().unwrap_or(" ")
            ),
            _ => value.clone(),
        };
        let key = input
            .replacement_key
            .clone()
            .unwrap_or_else(|| format!("#{}#", input.name));
        command_line = command_line.replace(&key, &rendered);
        for v in env.values_mut() {
            *v = v.replace(&key, &value);
        }
        container_inputs.push(ContainerInput {
            kind: "command".to_owned(),
            name: input.name.clone(),
            value,
            sensitive: input.sensitive.unwrap_or(false),
        });
    }

    let mounts: Vec<ResolvedMount> = command
        .mounts
        .iter()
        .map(|m| ResolvedMount {
            name: m.name.clone(),
            path: m.path.clone(),
            writable: m.writable,
            source: mount_sources.get(&m.name).cloned(),
        })
        .collect();
    for mount in mounts.iter().filter(|m| !m.writable) {
        if mount.source.is_none() {
            return Err(ResolveError::Invalid(format!(
                "input mount {} gets no files: no wrapper input provides files for it",
                mount.name
            )));
        }
    }

    let mut outputs = Vec::new();
    for handler in &wrapper.output_handlers {
        let output = command
            .outputs
            .iter()
            .find(|o| o.name == handler.accepts_command_output)
            .ok_or_else(|| {
                ResolveError::Invalid(format!(
                    "output handler {} accepts unknown output {}",
                    handler.name, handler.accepts_command_output
                ))
            })?;
        let parent = objects.get(&handler.as_a_child_of).ok_or_else(|| {
            ResolveError::Invalid(format!(
                "output handler {} files under {}, which is not an archive object here",
                handler.name, handler.as_a_child_of
            ))
        })?;
        let kind = OutputKind::of(handler).map_err(ResolveError::Invalid)?;
        outputs.push(ResolvedOutput {
            name: output.name.clone(),
            handler: handler.name.clone(),
            kind,
            mount: output.mount.clone(),
            path: output.path.clone(),
            glob: output.glob.clone(),
            required: output.required.unwrap_or(true),
            label: handler.label.clone().unwrap_or_else(|| output.name.clone()),
            format: handler.format.clone().unwrap_or_default(),
            content: handler.content.clone().unwrap_or_default(),
            tags: handler.tags.join(","),
            parent_uri: parent.uri.clone(),
        });
    }
    let overwrite = values.get(OVERWRITE).is_some_and(|v| truthy(v))
        || params.get(OVERWRITE).is_some_and(|v| truthy(v));
    let builtin = (command.kind.as_deref() == Some(BUILTIN_TYPE)).then(|| command.name.clone());
    Ok(ResolvedJob {
        command_name: command.name.clone(),
        wrapper_name: wrapper.name.clone(),
        builtin,
        command_line,
        working_directory: command.working_directory.clone(),
        env,
        mounts,
        inputs: container_inputs,
        outputs,
        root: root.clone(),
        overwrite,
    })
}

impl ResolvedJob {
    /// The command line with each mount's path replaced by its folder
    /// `folders[name]`, where the path stands as a whole word or a path
    /// prefix (`/input`, `/input/x`, `--out=/output`).
    pub fn command_line_on(&self, folders: &BTreeMap<String, PathBuf>) -> String {
        let mut pairs: Vec<(&str, &Path)> = self
            .mounts
            .iter()
            .filter(|m| !m.path.is_empty())
            .filter_map(|m| folders.get(&m.name).map(|f| (m.path.as_str(), f.as_path())))
            .collect();
        // Longer paths first, so /output/x is not taken for /output.
        pairs.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let line = &self.command_line;
        let mut out = String::with_capacity(line.len());
        let mut i = 0;
        'scan: while i < line.len() {
            let before_ok = i == 0
                || line[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '='));
            if before_ok {
                for (path, folder) in &pairs {
                    if line[i..].starts_with(path) {
                        let after = line[i + path.len()..].chars().next();
                        if after.is_none_or(|c| c.is_whitespace() || matches!(c, '/' | '"' | '\''))
                        {
                            out.push_str(&folder.to_string_lossy());
                            i += path.len();
                            continue 'scan;
                        }
                    }
                }
            }
            let Some(c) = line[i..].chars().next() else {
                break;
            };
            out.push(c);
            i += c.len_utf8();
        }
        out
    }

    /// The `outputs` of the container record.
    pub fn container_outputs(&self) -> Vec<ContainerOutput> {
        self.outputs
            .iter()
            .map(|o| ContainerOutput {
                name: format!("{}:{}", o.name, o.handler),
                from_command_output: o.name.clone(),
                from_output_handler: o.handler.clone(),
                kind: "Resource".to_owned(),
                required: o.required,
                mount: o.mount.clone(),
                label: o.label.clone(),
                handled_by: o.handler.clone(),
                via_wrapup_container: String::new(),
                created: None,
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::builtin;

    fn scan(resources: &[&str]) -> XnatObject {
        scan_of_type("T1", resources)
    }

    /// Scan 3 of session `XNAT_E00001` in project `P`, of `scan_type`,
    /// with a resource per label (also the matcher tests' fixture).
    pub(crate) fn scan_of_type(scan_type: &str, resources: &[&str]) -> XnatObject {
        XnatObject {
            kind: "Scan".to_owned(),
            xsi_type: "xnat:mrScanData".to_owned(),
            id: "3".to_owned(),
            label: "3".to_owned(),
            uri: "/data/experiments/XNAT_E00001/scans/3".to_owned(),
            project: "P".to_owned(),
            session_id: "XNAT_E00001".to_owned(),
            scan_type: scan_type.to_owned(),
            resources: resources
                .iter()
                .map(|l| XnatResource {
                    label: (*l).to_owned(),
                    uri: format!("/data/experiments/XNAT_E00001/scans/3/resources/{l}"),
                    directory: PathBuf::from(format!("/archive/P/SCANS/3/{l}")),
                })
                .collect(),
            children: Vec::new(),
        }
    }

    #[test]
    fn dcm2niix_resolves_on_a_scan_with_dicom() {
        let cmd = builtin::commands().remove(0);
        let job = resolve(&cmd, &cmd.xnat[0], &scan(&["DICOM"]), &BTreeMap::new()).unwrap();
        assert_eq!(job.builtin.as_deref(), Some("dcm2niix"));
        assert_eq!(job.outputs[0].label, "NIFTI");
        assert_eq!(
            job.outputs[0].parent_uri,
            "/data/experiments/XNAT_E00001/scans/3"
        );
        let input = job.mounts.iter().find(|m| m.name == "dicom-in").unwrap();
        assert_eq!(
            input.source.as_deref(),
            Some(Path::new("/archive/P/SCANS/3/DICOM"))
        );
        assert!(!job.overwrite);
        let folders = BTreeMap::from([
            ("dicom-in".to_owned(), PathBuf::from("/w/in")),
            ("nifti-out".to_owned(), PathBuf::from("/w/out")),
        ]);
        assert_eq!(
            job.command_line_on(&folders),
            "dcm2niix -z y -b y -w 1 -f %s_%p -o /w/out /w/in"
        );
    }

    #[test]
    fn a_scan_without_dicom_is_refused() {
        let cmd = builtin::commands().remove(0);
        let err = resolve(&cmd, &cmd.xnat[0], &scan(&["NIFTI"]), &BTreeMap::new()).unwrap_err();
        assert!(matches!(err, ResolveError::NoMatch(_)), "{err}");
    }

    #[test]
    fn inputs_fill_replacement_keys_with_flags() {
        let cmd: Command = serde_json::from_str(
            r##"{"name":"fit","type":"xnatkit","command-line":"fit.sh #MODEL# #THR# /in /out",
            "mounts":[{"name":"in","path":"/in"},{"name":"out","writable":true,"path":"/out"}],
            "inputs":[{"name":"model","replacement-key":"#MODEL#","default-value":"mono"},
                      {"name":"thr","replacement-key":"#THR#","command-line-flag":"--thr","command-line-separator":"="}],
            "outputs":[{"name":"maps","mount":"out"}],
            "xnat":[{"name":"fit-scan","contexts":["xnat:imageScanData"],
              "external-inputs":[{"name":"scan","type":"Scan"}],
              "derived-inputs":[{"name":"d","type":"Resource","matcher":"@.label == 'DICOM'","derived-from-wrapper-input":"scan","provides-files-for-command-mount":"in"}],
              "output-handlers":[{"name":"h","type":"Resource","accepts-command-output":"maps","as-a-child-of-wrapper-input":"scan","label":"MAPS"}]}]}"##,
        )
        .unwrap();
        crate::validate(&cmd, false).unwrap();
        let params = BTreeMap::from([("thr".to_owned(), "0.5".to_owned())]);
        let job = resolve(&cmd, &cmd.xnat[0], &scan(&["DICOM"]), &params).unwrap();
        assert_eq!(job.command_line, "fit.sh mono --thr=0.5 /in /out");
        let bad = BTreeMap::from([("nope".to_owned(), "1".to_owned())]);
        assert!(resolve(&cmd, &cmd.xnat[0], &scan(&["DICOM"]), &bad).is_err());
    }

    #[test]
    fn the_t1_map_takes_its_time_base_and_echo_spacing_as_command_inputs() {
        let cmd = builtin::commands()
            .into_iter()
            .find(|c| c.name == "t1-sr-map")
            .unwrap();
        let command_inputs = |job: &ResolvedJob| -> BTreeMap<String, String> {
            job.inputs
                .iter()
                .filter(|i| i.kind == "command")
                .map(|i| (i.name.clone(), i.value.clone()))
                .collect()
        };
        let job = resolve(&cmd, &cmd.xnat[0], &scan(&["DICOM"]), &BTreeMap::new()).unwrap();
        assert_eq!(
            command_inputs(&job),
            BTreeMap::from([
                ("echo-spacing".to_owned(), String::new()),
                ("time-base".to_owned(), "repetition".to_owned()),
            ])
        );
        let params = BTreeMap::from([
            ("time-base".to_owned(), "recovery".to_owned()),
            ("echo-spacing".to_owned(), "10".to_owned()),
        ]);
        let job = resolve(&cmd, &cmd.xnat[0], &scan(&["DICOM"]), &params).unwrap();
        assert_eq!(command_inputs(&job), params);
        assert_eq!(
            job.command_line,
            "xnatkit-maps t1-sr-map --time-base recovery --echo-spacing 10 /input /output"
        );
        // What the worker hands the built-in is what the maps crate takes.
        let options = xnatkit_pipelines::builtin::map_options(
            xnatkit_pipelines::builtin::Builtin::T1SrMap,
            &command_inputs(&job),
        )
        .unwrap();
        assert_eq!(options.t1_time_base.map(|b| b.name()), Some("recovery"));
        assert_eq!(options.echo_spacing_ms, Some(10.0));
    }

    #[test]
    fn mount_paths_are_replaced_only_as_paths() {
        let mut job = resolve(
            &builtin::commands().remove(0),
            &builtin::commands().remove(0).xnat[0],
            &scan(&["DICOM"]),
            &BTreeMap::new(),
        )
        .unwrap();
        job.command_line = "x /input/a --o=/output /inputs y/input".to_owned();
        let folders = BTreeMap::from([
            ("dicom-in".to_owned(), PathBuf::from("/I")),
            ("nifti-out".to_owned(), PathBuf::from("/O")),
        ]);
        assert_eq!(
            job.command_line_on(&folders),
            "x /I/a --o=/O /inputs y/input"
        );
    }
}
