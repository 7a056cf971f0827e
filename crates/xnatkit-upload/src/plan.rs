//! Collating rows into XNAT sessions and scans, with xnatuploader 1.1.9's
//! naming rules:
//!
//! - session label `{Subject}_{Modality}{visit}`, the visit being the rank of
//!   the StudyDate among the subject's dates (1 = earliest);
//! - scan type = the Dataset with every character outside `[A-Za-z0-9_]`
//!   replaced by `_`, made unique per subject by appending 2, 3, ...;
//! - scan ID = SeriesNumber of the scan's first file (the scan type when empty);
//! - file name = the file's base name, in resource `DICOM`.
//!
//! One deliberate difference: visits are ranked over all selected rows,
//! including rows already uploaded. xnatuploader ranks only the rows it is
//! about to send, so a rerun after a partial upload can renumber visits and
//! put the rest of a session into the wrong one.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::config::{Config, DATASET, MappingTarget, RESOURCE, SUBJECT};
use crate::files_sheet::FileRow;

const MODALITY: &str = "DICOM:Modality";
const STUDY_DATE: &str = "DICOM:StudyDate";
const SERIES_NUMBER: &str = "DICOM:SeriesNumber";
/// The resource xnatuploader puts DICOM files in.
pub const DICOM_RESOURCE: &str = "DICOM";

/// A file to send: row index (into the rows given to [`plan`]), local path, remote name.
#[derive(Debug, Clone, PartialEq)]
pub struct FilePlan {
    pub row: usize,
    pub local: PathBuf,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScanPlan {
    pub id: String,
    pub scan_type: String,
    pub xsi_type: String,
    pub files: Vec<FilePlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourcePlan {
    pub label: String,
    pub files: Vec<FilePlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionPlan {
    pub subject: String,
    pub label: String,
    pub modality: String,
    pub xsi_type: String,
    pub date: Option<String>,
    pub fields: Vec<(String, String)>,
    pub scans: Vec<ScanPlan>,
    pub resources: Vec<ResourcePlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubjectPlan {
    pub label: String,
    pub fields: Vec<(String, String)>,
}

/// Everything a run will create and send.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub subjects: Vec<SubjectPlan>,
    pub sessions: Vec<SessionPlan>,
    /// Files that are not DICOM and belong to no single session.
    pub project_resources: Vec<ResourcePlan>,
    /// Rows that cannot be sent, with the message for their Status cell.
    pub row_errors: Vec<(usize, String)>,
}

impl Plan {
    pub fn file_count(&self) -> usize {
        self.sessions
            .iter()
            .map(|s| {
                s.scans.iter().map(|c| c.files.len()).sum::<usize>()
                    + s.resources.iter().map(|r| r.files.len()).sum::<usize>()
            })
            .sum::<usize>()
            + self
                .project_resources
                .iter()
                .map(|r| r.files.len())
                .sum::<usize>()
    }
}

/// A row that takes part in collation: selected and DICOM.
struct Member<'a> {
    index: usize,
    row: &'a FileRow,
}

fn is_dicom_row(row: &FileRow) -> bool {
    row.value(MODALITY).is_some()
}

/// xnatsutils' `sanitize_re`: anything but letters, digits and `_` becomes `_`.
pub fn sanitize_scan_type(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Groups DICOM rows by subject (in order of first appearance) and computes
/// each row's session label and scan type.
struct Collation<'a> {
    subjects: Vec<(&'a str, Vec<Member<'a>>)>,
    session_label: HashMap<usize, String>,
    scan_type: HashMap<usize, String>,
}

fn collate<'a>(rows: &'a [FileRow], take: impl Fn(&FileRow) -> bool) -> Collation<'a> {
    let mut subjects: Vec<(&str, Vec<Member>)> = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        if !take(row) || !is_dicom_row(row) {
            continue;
        }
        let Some(subject) = row.value(SUBJECT) else {
            continue;
        };
        let member = Member { index, row };
        match subjects.iter_mut().find(|(s, _)| *s == subject) {
            Some((_, members)) => members.push(member),
            None => subjects.push((subject, vec![member])),
        }
    }
    let mut session_label = HashMap::new();
    let mut scan_type = HashMap::new();
    for (subject, members) in &subjects {
        let mut dates: Vec<&str> = members
            .iter()
            .map(|m| m.row.value(STUDY_DATE).unwrap_or(""))
            .collect();
        dates.sort_unstable();
        dates.dedup();
        let mut clean: HashMap<&str, String> = HashMap::new();
        let mut used: Vec<String> = Vec::new();
        for member in members {
            let date = member.row.value(STUDY_DATE).unwrap_or("");
            let visit = dates.iter().position(|d| *d == date).unwrap_or(0) + 1;
            let modality = member.row.value(MODALITY).unwrap_or("");
            session_label.insert(member.index, format!("{subject}_{modality}{visit}"));
            let dataset = member.row.value(DATASET).unwrap_or("");
            let sanitized = clean.entry(dataset).or_insert_with(|| {
                let base = sanitize_scan_type(dataset);
                let mut candidate = base.clone();
                let mut n = 1;
                while used.contains(&candidate) {
                    n += 1;
                    candidate = format!("{base}{n}");
                }
                used.push(candidate.clone());
                candidate
            });
            scan_type.insert(member.index, sanitized.clone());
        }
    }
    Collation {
        subjects,
        session_label,
        scan_type,
    }
}

/// Session label of every matched DICOM row (scan time: all rows count).
pub fn session_labels(rows: &[FileRow]) -> HashMap<usize, String> {
    collate(rows, |_| true).session_label
}

pub fn count_sessions(labels: &HashMap<usize, String>) -> usize {
    let mut distinct: Vec<&String> = labels.values().collect();
    distinct.sort();
    distinct.dedup();
    distinct.len()
}

pub fn count_scans(rows: &[FileRow]) -> usize {
    let c = collate(rows, |_| true);
    let mut keys: Vec<(String, String)> = c
        .session_label
        .iter()
        .map(|(i, l)| (l.clone(), c.scan_type.get(i).cloned().unwrap_or_default()))
        .collect();
    keys.sort();
    keys.dedup();
    keys.len()
}

/// Row indices in xnatuploader's order: per subject, per session:scan group in
/// order of first appearance, files in order; rows outside any group
/// (resource files) follow in their original order.
pub fn collate_order(rows: &[FileRow]) -> Vec<usize> {
    let c = collate(rows, |_| true);
    let mut order = Vec::with_capacity(rows.len());
    for (_, members) in &c.subjects {
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for m in members {
            let key = format!(
                "{}:{}",
                c.session_label.get(&m.index).map_or("", String::as_str),
                c.scan_type.get(&m.index).map_or("", String::as_str)
            );
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, g)) => g.push(m.index),
                None => groups.push((key, vec![m.index])),
            }
        }
        order.extend(groups.into_iter().flat_map(|(_, g)| g));
    }
    let grouped: std::collections::HashSet<usize> = order.iter().copied().collect();
    order.extend((0..rows.len()).filter(|i| !grouped.contains(i)));
    order
}

/// Checks a row the user may have edited; `Err` is its Status message.
fn check_row(row: &FileRow) -> Result<(), String> {
    if row.file.trim().is_empty() {
        return Err("File is empty; put the file's path back or set Upload to N".to_owned());
    }
    let subject = row
        .value(SUBJECT)
        .ok_or("Subject is empty; fill it in or set Upload to N")?;
    if !xnatkit_model::label::is_valid_label(subject) {
        return Err(format!(
            "Subject '{subject}' has characters XNAT does not allow in labels (use letters, digits, _ and -)"
        ));
    }
    if is_dicom_row(row) {
        let dataset = row
            .value(DATASET)
            .ok_or("Dataset is empty; fill it in or set Upload to N")?;
        if sanitize_scan_type(dataset).is_empty() {
            return Err("Dataset is empty; fill it in or set Upload to N".to_owned());
        }
    } else if row.value(RESOURCE).is_none() {
        return Err(
            "DICOM:Modality is empty and no Resource is set; rescan or set Upload to N".to_owned(),
        );
    }
    Ok(())
}

/// Plans a run over `rows`: rows selected for upload whose status is not
/// `success`. Rows already uploaded still count for visit numbering.
pub fn plan(config: &Config, rows: &[FileRow]) -> Plan {
    let mut row_errors: Vec<(usize, String)> = Vec::new();
    let mut valid = vec![false; rows.len()];
    for (index, row) in rows.iter().enumerate() {
        if let Some(unclear) = &row.upload_unclear {
            row_errors.push((
                index,
                format!("Upload is '{unclear}'; write Y to upload this file or N to leave it out"),
            ));
            continue;
        }
        if !row.upload {
            continue;
        }
        match check_row(row) {
            Ok(()) => valid[index] = true,
            Err(message) if !row.is_success() => row_errors.push((index, message)),
            Err(_) => {}
        }
    }
    let c = collate(rows, |row| row.upload);
    let c_valid = |i: usize| valid[i];

    let mut subjects: Vec<SubjectPlan> = Vec::new();
    let mut sessions: Vec<SessionPlan> = Vec::new();
    let mut used_names: HashMap<(String, String), usize> = HashMap::new();
    for (subject, members) in &c.subjects {
        for m in members.iter().filter(|m| c_valid(m.index)) {
            let label = c.session_label[&m.index].clone();
            let scan_type = c.scan_type[&m.index].clone();
            let modality = m.row.value(MODALITY).unwrap_or("").to_owned();
            let subject_plan = match subjects.iter_mut().find(|s| s.label == *subject) {
                Some(s) => s,
                None => {
                    subjects.push(SubjectPlan {
                        label: subject.to_string(),
                        fields: Vec::new(),
                    });
                    let last = subjects.len() - 1;
                    &mut subjects[last]
                }
            };
            add_fields(config, m.row, &mut subject_plan.fields, true);
            let session = match sessions.iter().position(|s| s.label == label) {
                Some(p) => &mut sessions[p],
                None => {
                    sessions.push(SessionPlan {
                        subject: subject.to_string(),
                        label: label.clone(),
                        xsi_type: session_xsi_type(&modality),
                        modality: modality.clone(),
                        date: m.row.value(STUDY_DATE).map(str::to_owned),
                        fields: Vec::new(),
                        scans: Vec::new(),
                        resources: Vec::new(),
                    });
                    let last = sessions.len() - 1;
                    &mut sessions[last]
                }
            };
            add_fields(config, m.row, &mut session.fields, false);
            let scan = match session.scans.iter().position(|s| s.scan_type == scan_type) {
                Some(p) => &mut session.scans[p],
                None => {
                    let id = m
                        .row
                        .value(SERIES_NUMBER)
                        .map(str::to_owned)
                        .unwrap_or_else(|| scan_type.clone());
                    session.scans.push(ScanPlan {
                        id,
                        scan_type: scan_type.clone(),
                        xsi_type: xnatkit_dicom::SessionKind::scan_xsi_type(&modality).to_owned(),
                        files: Vec::new(),
                    });
                    let last = session.scans.len() - 1;
                    &mut session.scans[last]
                }
            };
            if m.row.is_success() {
                continue;
            }
            let name = remote_name(&m.row.file);
            let key = (format!("{label}/{scan_type}"), name.clone());
            if let Some(&other) = used_names.get(&key) {
                row_errors.push((
                    m.index,
                    format!(
                        "file name {name} is also used by worksheet row {} in scan {scan_type} of {label}; rename one of the files",
                        rows[other].sheet_row
                    ),
                ));
                continue;
            }
            used_names.insert(key, m.index);
            scan.files.push(FilePlan {
                row: m.index,
                local: PathBuf::from(&m.row.file),
                name,
            });
        }
    }

    // Files that are not DICOM: into the session whose DICOM files share the
    // longest folder prefix with them, else into a project resource.
    let mut project_resources: Vec<ResourcePlan> = Vec::new();
    let project_owner = "project";
    let common_root = common_folder(rows.iter().map(|r| Path::new(&r.file)));
    for (index, row) in rows.iter().enumerate() {
        if !valid[index] || is_dicom_row(row) || row.is_success() {
            continue;
        }
        let Some(resource) = row.value(RESOURCE) else {
            continue;
        };
        let resource = sanitize_scan_type(resource);
        let subject = row.value(SUBJECT).unwrap_or("");
        let target = closest_session(&c, rows, index, subject);
        let mut file = FilePlan {
            row: index,
            local: PathBuf::from(&row.file),
            name: remote_name(&row.file),
        };
        let (resources, owner) =
            match target.and_then(|l| sessions.iter_mut().find(|s| s.label == l)) {
                Some(session) => (&mut session.resources, session.label.clone()),
                None => {
                    // Project resources keep the folders below the scanned
                    // tree, so files of different subjects and visits stay apart.
                    let relative = Path::new(&row.file)
                        .strip_prefix(&common_root)
                        .map(|p| p.to_string_lossy().replace('\\', "/"))
                        .unwrap_or_else(|_| format!("{subject}/{}", file.name));
                    file.name = relative;
                    (&mut project_resources, project_owner.to_owned())
                }
            };
        let key = (format!("{owner}/resource/{resource}"), file.name.clone());
        if let Some(&other) = used_names.get(&key) {
            row_errors.push((
                index,
                format!(
                    "file name {} is also used by worksheet row {} in resource {resource}; rename one of the files",
                    file.name, rows[other].sheet_row
                ),
            ));
            continue;
        }
        used_names.insert(key, index);
        push_file(resources, &resource, file);
    }
    for session in &mut sessions {
        session.scans.retain(|s| !s.files.is_empty());
    }
    sessions.retain(|s| !s.scans.is_empty() || !s.resources.is_empty());
    subjects
        .retain(|sub| sessions.iter().any(|s| s.subject == sub.label) || !sub.fields.is_empty());
    row_errors.sort_by_key(|(i, _)| *i);
    Plan {
        subjects,
        sessions,
        project_resources,
        row_errors,
    }
}

fn push_file(resources: &mut Vec<ResourcePlan>, label: &str, file: FilePlan) {
    match resources.iter_mut().find(|r| r.label == label) {
        Some(r) => r.files.push(file),
        None => resources.push(ResourcePlan {
            label: label.to_owned(),
            files: vec![file],
        }),
    }
}

fn closest_session(c: &Collation, rows: &[FileRow], index: usize, subject: &str) -> Option<String> {
    let folder = Path::new(&rows[index].file).parent()?;
    let members = &c.subjects.iter().find(|(s, _)| *s == subject)?.1;
    let mut best: BTreeMap<usize, Vec<&String>> = BTreeMap::new();
    for m in members {
        let shared = Path::new(&m.row.file)
            .parent()
            .map(|p| common_prefix(p, folder))
            .unwrap_or(0);
        if let Some(label) = c.session_label.get(&m.index) {
            best.entry(shared).or_default().push(label);
        }
    }
    let (_, labels) = best.into_iter().next_back()?;
    let first = labels.first()?;
    labels.iter().all(|l| l == first).then(|| (*first).clone())
}

/// The deepest folder containing every file.
fn common_folder<'a>(files: impl Iterator<Item = &'a Path>) -> PathBuf {
    let mut root: Option<PathBuf> = None;
    for file in files {
        let Some(folder) = file.parent() else {
            continue;
        };
        root = Some(match root {
            None => folder.to_owned(),
            Some(r) => r
                .components()
                .zip(folder.components())
                .take_while(|(x, y)| x == y)
                .map(|(x, _)| x)
                .collect(),
        });
    }
    root.unwrap_or_default()
}

fn common_prefix(a: &Path, b: &Path) -> usize {
    a.components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .count()
}

fn add_fields(config: &Config, row: &FileRow, fields: &mut Vec<(String, String)>, subject: bool) {
    for mapping in &config.mappings {
        let name = match (mapping.target(), subject) {
            (MappingTarget::SubjectField(n), true) | (MappingTarget::SessionField(n), false) => n,
            _ => continue,
        };
        if let Some(value) = row.value(&mapping.key)
            && !fields.iter().any(|(n, _)| *n == name)
        {
            fields.push((name, value.to_owned()));
        }
    }
}

/// The file's base name: xnatuploader stores every file under it.
pub fn remote_name(file: &str) -> String {
    Path::new(file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.to_owned())
}

/// Session type for a modality; `MR` when unknown, as xnatuploader falls back.
pub fn session_xsi_type(modality: &str) -> String {
    let kind = xnatkit_dicom::SessionKind::from_modalities([modality]);
    match kind {
        xnatkit_dicom::SessionKind::Other => "xnat:mrSessionData".to_owned(),
        k => k.session_xsi_type().to_owned(),
    }
}
