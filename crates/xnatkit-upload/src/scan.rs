//! Pass one: walk a directory, match every file against the pattern sets,
//! read the DICOM headers the rows need (header only, in parallel) and build
//! the rows of the Files worksheet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{Config, MappingTarget};
use crate::dicom_values;
use crate::error::Error;
use crate::files_sheet::{FileRow, SESSION_LABEL, headers, write_rows};
use crate::plan;
use crate::workbook::Workbook;

/// Files xnatuploader never lists.
const IGNORED_NAMES: &[&str] = &[".DS_Store"];

#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Also list files no pattern matched (with the reason), not selected.
    pub include_unmatched: bool,
    /// Threads for reading DICOM headers.
    pub jobs: usize,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanSummary {
    pub files_seen: usize,
    pub matched: usize,
    pub unmatched: usize,
    pub sessions: usize,
    pub scans: usize,
}

/// Scans `dir`, writes the Files worksheet of the workbook at `spreadsheet`
/// (other sheets untouched) and saves it atomically.
pub fn scan_to_workbook(
    spreadsheet: &Path,
    dir: &Path,
    options: &ScanOptions,
) -> Result<ScanSummary, Error> {
    let mut workbook = Workbook::open(spreadsheet)?;
    let config = Config::read(&workbook)?;
    workbook.check_writable()?;
    let (mut rows, summary) = scan_dir(&config, dir, options)?;
    let headers = headers(&config);
    write_rows(&mut workbook, &headers, &mut rows)?;
    workbook.save()?;
    Ok(summary)
}

/// Scans `dir` and returns the rows in the order xnatuploader writes them:
/// matched files grouped by subject, then session and scan; unmatched last.
pub fn scan_dir(
    config: &Config,
    dir: &Path,
    options: &ScanOptions,
) -> Result<(Vec<FileRow>, ScanSummary), Error> {
    let files = list_files(dir)?;
    let mut matched: Vec<(PathBuf, String, BTreeMap<String, String>)> = Vec::new();
    let mut unmatched: Vec<(PathBuf, String)> = Vec::new();
    for (path, parts) in &files {
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let hit = config
            .pattern_sets
            .iter()
            .find_map(|set| set.match_parts(&parts).map(|c| (set.label.clone(), c)));
        match hit {
            Some((label, captures)) => matched.push((path.clone(), label, captures)),
            None => unmatched.push((path.clone(), "matches no pattern set".to_owned())),
        }
    }
    let mut to_read: Vec<PathBuf> = matched.iter().map(|(p, _, _)| p.clone()).collect();
    if options.include_unmatched {
        to_read.extend(unmatched.iter().map(|(p, _)| p.clone()));
    }
    let headers: BTreeMap<PathBuf, Result<xnatkit_dicom::DicomHeader, xnatkit_dicom::Error>> =
        xnatkit_dicom::read_headers_parallel(&to_read, options.jobs)
            .into_iter()
            .collect();

    let wants_resources = config.mapping(crate::config::RESOURCE).is_some();
    let mut rows: Vec<FileRow> = Vec::new();
    let mut unmatched_rows: Vec<FileRow> = Vec::new();
    for (path, label, captures) in matched {
        let mut values = captures;
        let header = headers.get(&path);
        let refusal = match header {
            Some(Ok(h)) => {
                values.extend(dicom_values::values(h));
                dicom_values::refusal(h).map(str::to_owned)
            }
            Some(Err(e)) if !e.is_unparsable() => Some(format!("cannot read DICOM header: {e}")),
            _ if wants_resources => None,
            _ => Some("File is not a DICOM".to_owned()),
        };
        let is_dicom = matches!(header, Some(Ok(_)));
        let mut row = base_row(&path, &label);
        let outcome = match refusal {
            Some(reason) => Err(reason),
            None => map_row(config, &values, is_dicom),
        };
        match outcome {
            Ok(mapped) => {
                row.values = values.into_iter().chain(mapped).collect();
                row.upload = true;
                rows.push(row);
            }
            Err(reason) => {
                row.values = values;
                row.status = format!("unmatched: {reason}");
                unmatched_rows.push(row);
            }
        }
    }
    for (path, reason) in unmatched {
        let mut row = base_row(&path, "");
        if let Some(Ok(h)) = headers.get(&path) {
            row.values.extend(dicom_values::values(h));
        }
        row.status = format!("unmatched: {reason}");
        unmatched_rows.push(row);
    }

    let ordered = plan::collate_order(&rows);
    let labels = plan::session_labels(&rows);
    let mut ordered_rows: Vec<FileRow> = Vec::with_capacity(rows.len());
    for index in ordered {
        let mut row = rows[index].clone();
        if let Some(label) = labels.get(&index) {
            row.values.insert(SESSION_LABEL.to_owned(), label.clone());
        }
        ordered_rows.push(row);
    }
    let summary = ScanSummary {
        files_seen: files.len(),
        matched: ordered_rows.len(),
        unmatched: unmatched_rows.len(),
        sessions: plan::count_sessions(&labels),
        scans: plan::count_scans(&ordered_rows),
    };
    if options.include_unmatched {
        ordered_rows.extend(unmatched_rows);
    }
    Ok((ordered_rows, summary))
}

fn base_row(path: &Path, label: &str) -> FileRow {
    FileRow {
        pattern: label.to_owned(),
        file: path.to_string_lossy().into_owned(),
        filename: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ..FileRow::default()
    }
}

/// The mapped columns of one file, or why it cannot be uploaded.
/// Subject and Dataset (DICOM) or Subject and Resource (other files) must
/// resolve; the other mappings are left empty when their values are missing.
fn map_row(
    config: &Config,
    values: &BTreeMap<String, String>,
    is_dicom: bool,
) -> Result<Vec<(String, String)>, String> {
    let mut mapped = Vec::new();
    for mapping in &config.mappings {
        let required = match mapping.target() {
            MappingTarget::Subject => true,
            MappingTarget::Session | MappingTarget::Dataset => is_dicom,
            MappingTarget::Resource => !is_dicom,
            _ => false,
        };
        match join_sources(&mapping.sources, values) {
            Ok(value) => mapped.push((mapping.key.clone(), value)),
            Err(missing) if required => {
                return Err(format!("{}: value {missing} not found", mapping.key));
            }
            Err(_) => {}
        }
    }
    Ok(mapped)
}

/// xnatuploader's mapping rule: concatenate the named values, spaces → `_`.
pub fn join_sources(
    sources: &[String],
    values: &BTreeMap<String, String>,
) -> Result<String, String> {
    let mut joined = String::new();
    for source in sources {
        match values.get(source).filter(|v| !v.is_empty()) {
            Some(v) => joined.push_str(v),
            None => return Err(source.clone()),
        }
    }
    Ok(joined.replace(' ', "_"))
}

/// Every regular file under `dir`, sorted part by part (as Python sorts
/// `Path`s, so rows come out in xnatuploader's order), with its relative parts.
fn list_files(dir: &Path) -> Result<Vec<(PathBuf, Vec<String>)>, Error> {
    if !dir.is_dir() {
        return Err(Error::Directory {
            path: dir.to_owned(),
            detail: "not a directory; pass the folder to scan with --dir".to_owned(),
        });
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(true) {
        let entry = entry.map_err(|e| Error::Directory {
            path: dir.to_owned(),
            detail: e.to_string(),
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        if IGNORED_NAMES.contains(&name.as_ref()) {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(dir) else {
            continue;
        };
        let parts: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        files.push((entry.path().to_owned(), parts));
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(files)
}
