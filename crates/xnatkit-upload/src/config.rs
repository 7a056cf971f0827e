//! The Configuration worksheet: "Paths", "Mappings" and "XNAT" sections, laid
//! out exactly as xnatuploader 1.1.9 writes and reads them.
//!
//! Layout (read row by row): a value in column A starts a section (case-insensitive
//! name); a value in column B is a key of the current section; the values from
//! column C on are that key's values. Other text in column A (e.g. "Instructions")
//! starts a section this reader ignores.
//!
//! Extensions (ignored by xnatuploader, which only shows them as extra columns):
//! mapping keys `Subject:<name>` / `Session:<name>` set custom variables (XNAT
//! `fields`) on subjects / sessions; a `Resource` mapping sends matched files that
//! are not DICOM to a resource of that name.

use std::path::Path;

use umya_spreadsheet::Worksheet;

use crate::error::Error;
use crate::pattern::PatternSet;
use crate::workbook::{CONFIGURATION_SHEET, Workbook, cell_text};

pub const SUBJECT: &str = "Subject";
pub const SESSION: &str = "Session";
pub const DATASET: &str = "Dataset";
pub const RESOURCE: &str = "Resource";

/// Prefix of mapping sources read from the DICOM header, e.g. `DICOM:StudyDate`.
pub const DICOM_PREFIX: &str = "DICOM:";

/// One row of the "Mappings" section: a value built by joining the named
/// captures / DICOM attributes, spaces replaced by `_`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub key: String,
    pub sources: Vec<String>,
}

/// Where a mapped value goes.
#[derive(Debug, Clone, PartialEq)]
pub enum MappingTarget {
    Subject,
    Session,
    Dataset,
    Resource,
    SubjectField(String),
    SessionField(String),
    /// Only shown in the Files worksheet.
    Other,
}

impl Mapping {
    pub fn target(&self) -> MappingTarget {
        match self.key.as_str() {
            SUBJECT => MappingTarget::Subject,
            SESSION => MappingTarget::Session,
            DATASET => MappingTarget::Dataset,
            RESOURCE => MappingTarget::Resource,
            key => {
                if let Some(name) = key.strip_prefix("Subject:") {
                    MappingTarget::SubjectField(name.trim().to_lowercase())
                } else if let Some(name) = key.strip_prefix("Session:") {
                    MappingTarget::SessionField(name.trim().to_lowercase())
                } else {
                    MappingTarget::Other
                }
            }
        }
    }
}

/// The parsed Configuration worksheet.
#[derive(Debug, Clone)]
pub struct Config {
    pub pattern_sets: Vec<PatternSet>,
    pub mappings: Vec<Mapping>,
    /// Keys and first values of the "XNAT" section, in order.
    pub xnat: Vec<(String, Option<String>)>,
}

impl Config {
    /// Reads and validates the Configuration worksheet of `workbook`.
    pub fn read(workbook: &Workbook) -> Result<Self, Error> {
        let sheet = workbook.require_sheet(
            CONFIGURATION_SHEET,
            "create a workbook with `xnatkit upload init --spreadsheet FILE`",
        )?;
        Self::from_sheet(sheet)
    }

    pub fn from_sheet(sheet: &Worksheet) -> Result<Self, Error> {
        let (max_col, max_row) = sheet.highest_column_and_row();
        let mut section: Option<String> = None;
        let mut paths: Vec<(String, Vec<String>)> = Vec::new();
        let mut mappings: Vec<Mapping> = Vec::new();
        let mut xnat: Vec<(String, Option<String>)> = Vec::new();
        let mut seen = [false; 3];
        for row in 1..=max_row {
            let head = cell_text(sheet, 1, row);
            if !head.is_empty() {
                section = Some(head.to_lowercase());
            }
            let key = cell_text(sheet, 2, row);
            let Some(current) = section.as_deref() else {
                continue;
            };
            if key.is_empty() {
                continue;
            }
            let values: Vec<String> = (3..=max_col.max(3))
                .map(|col| cell_text(sheet, col, row))
                .filter(|v| !v.is_empty())
                .collect();
            match current {
                "paths" => {
                    seen[0] = true;
                    if paths.iter().any(|(label, _)| *label == key) {
                        return Err(Error::Config(format!(
                            "pattern set label '{key}' is used twice (row {row}); give each set its own label"
                        )));
                    }
                    paths.push((key, values));
                }
                "mappings" => {
                    seen[1] = true;
                    if mappings.iter().any(|m| m.key == key) {
                        return Err(Error::Config(format!(
                            "mapping '{key}' is defined twice (row {row}); keep one"
                        )));
                    }
                    mappings.push(Mapping {
                        key,
                        sources: values,
                    });
                }
                "xnat" => {
                    seen[2] = true;
                    xnat.push((key, values.into_iter().next()));
                }
                _ => {}
            }
        }
        let missing: Vec<&str> = ["Paths", "Mappings", "XNAT"]
            .iter()
            .zip(seen)
            .filter(|(_, s)| !s)
            .map(|(n, _)| *n)
            .collect();
        if !missing.is_empty() {
            return Err(Error::Config(format!(
                "missing section(s) {}; put the section name in column A and its keys in column B",
                missing.join(", ")
            )));
        }
        let pattern_sets = paths
            .iter()
            .map(|(label, patterns)| PatternSet::parse(label, patterns))
            .collect::<Result<Vec<_>, _>>()?;
        for required in [SUBJECT, DATASET] {
            match mappings.iter().find(|m| m.key == required) {
                None => {
                    return Err(Error::Config(format!(
                        "the Mappings section has no '{required}' row; add one naming the values it is built from"
                    )));
                }
                Some(m) if m.sources.is_empty() => {
                    return Err(Error::Config(format!(
                        "mapping '{required}' names no values; put capture names (e.g. ID) or DICOM:Attribute in column C on"
                    )));
                }
                Some(_) => {}
            }
        }
        let config = Self {
            pattern_sets,
            mappings,
            xnat,
        };
        config.check_sources()?;
        Ok(config)
    }

    /// Every mapping source must be a capture of some pattern set or a DICOM attribute.
    fn check_sources(&self) -> Result<(), Error> {
        let captures = self.capture_names();
        for mapping in &self.mappings {
            for source in &mapping.sources {
                if let Some(attribute) = source.strip_prefix(DICOM_PREFIX) {
                    if crate::dicom_values::lookup_supported(attribute).is_none() {
                        return Err(Error::Config(format!(
                            "mapping '{}' uses {source}, which this uploader cannot read; supported: {}",
                            mapping.key,
                            crate::dicom_values::SUPPORTED.join(", ")
                        )));
                    }
                } else if !captures.contains(source) {
                    return Err(Error::Config(format!(
                        "mapping '{}' uses '{source}', which no pattern captures; add {{{source}}} to a pattern or fix the name",
                        mapping.key
                    )));
                }
            }
        }
        Ok(())
    }

    /// Capture names of all pattern sets, in order of first appearance.
    pub fn capture_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for set in &self.pattern_sets {
            for name in set.capture_names() {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }

    pub fn mapping(&self, key: &str) -> Option<&Mapping> {
        self.mappings.iter().find(|m| m.key == key)
    }

    /// A value of the "XNAT" section (`Project`, `Server`, ...).
    pub fn xnat_value(&self, key: &str) -> Option<&str> {
        self.xnat
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| v.as_deref())
    }
}

const HELP_TEXT: &str = "
Paths are a set of patterns to be matched against file paths in the source directory.

Values in curly brackets like {SubjectName} are captured into variables.
Variables with names in all caps like {YYYY} will only match numbers.
The special value * and ** match one or more than one intervening directory.

Mappings are used to combine the variables captured from a path to the
XNAT hierarchy Subject / Session / Dataset.

You can also use metadata from the DICOM files in the mappings, by
using the syntax \"DICOM:MetadataName\" - for example, DICOM:StudyDate

Mapping rows named Subject:<name> or Session:<name> set custom variables on
subjects or sessions; a Resource row sends matched files that are not DICOM
to a resource of that name (read by xnatkit, ignored by xnatuploader).

The XNAT section configures the XNAT project ID and server.
";

/// Writes a new workbook with the default Configuration worksheet (the
/// seed's example, cell for cell where xnatuploader puts it). Refuses to
/// replace an existing file unless `overwrite`.
pub fn write_default(path: &Path, overwrite: bool) -> Result<(), Error> {
    if path.exists() && !overwrite {
        return Err(Error::WorkbookExists {
            path: path.to_owned(),
        });
    }
    let mut book = umya_spreadsheet::new_file();
    let sheet = book.sheet_mut(0).map_err(|e| Error::WorkbookWrite {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    sheet.set_name(CONFIGURATION_SHEET);
    for column in ["A", "B", "C", "D", "E"] {
        sheet.column_dimension_mut(column).set_width(25.0);
    }
    let cells: &[(&str, &str)] = &[
        ("A1", "Instructions"),
        ("A2", HELP_TEXT),
        ("A4", "Configuration"),
        ("A5", "Paths"),
        ("B5", "DICOM"),
        ("C5", "{SubjectName}-{ID}"),
        ("D5", "**"),
        ("E5", "{Directory}"),
        ("F5", "{filename}.dcm"),
        ("A10", "Mappings"),
        ("B10", SUBJECT),
        ("C10", "ID"),
        ("B11", SESSION),
        ("C11", "DICOM:StudyDate"),
        ("B12", DATASET),
        ("C12", "Directory"),
        ("A14", "XNAT"),
        ("B14", "Project"),
        ("C14", "Test001"),
        ("B15", "Server"),
        ("C15", "http://localhost:8080"),
        ("B16", "AllowFields"),
        ("C16", "AccessionNumber"),
        ("B17", "SkipImageTypes"),
        ("C17", "DOSE_INFO"),
    ];
    for (coordinate, value) in cells {
        sheet.cell_mut(*coordinate).set_value_string(*value);
    }
    sheet
        .cell_mut("A2")
        .style_mut()
        .alignment_mut()
        .set_wrap_text(true);
    sheet.add_merge_cells("A2:F2");
    sheet.row_dimension_mut(2).set_height(90.0);
    Workbook::from_book(path, book).save()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_workbook_reads_back_as_the_seed_example() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.xlsx");
        write_default(&path, false).unwrap();
        assert!(write_default(&path, false).is_err());
        let config = Config::read(&Workbook::open(&path).unwrap()).unwrap();
        assert_eq!(config.pattern_sets.len(), 1);
        assert_eq!(config.pattern_sets[0].label, "DICOM");
        assert_eq!(
            config.capture_names(),
            ["SubjectName", "ID", "Directory", "filename"]
        );
        let keys: Vec<&str> = config.mappings.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["Subject", "Session", "Dataset"]);
        assert_eq!(
            config.mapping("Session").unwrap().sources,
            ["DICOM:StudyDate"]
        );
        assert_eq!(config.xnat_value("Project"), Some("Test001"));
        assert_eq!(config.xnat_value("Server"), Some("http://localhost:8080"));
    }

    #[test]
    fn custom_variable_keys_have_targets() {
        let m = |key: &str| Mapping {
            key: key.to_owned(),
            sources: vec![],
        };
        assert_eq!(
            m("Subject:Group").target(),
            MappingTarget::SubjectField("group".into())
        );
        assert_eq!(
            m("Session:timepoint").target(),
            MappingTarget::SessionField("timepoint".into())
        );
        assert_eq!(m("Notes").target(), MappingTarget::Other);
    }
}
