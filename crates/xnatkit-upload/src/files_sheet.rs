//! The Files worksheet: one row per file, columns as xnatuploader 1.1.9 writes
//! them (`Pattern, File, Filename, Upload, Status`, the mapping keys,
//! `SessionLabel`, seven `DICOM:` columns, then every capture name).

use std::collections::BTreeMap;

use umya_spreadsheet::Worksheet;

use crate::config::Config;
use crate::dicom_values::SHEET_COLUMNS;
use crate::error::Error;
use crate::workbook::{FILES_SHEET, Workbook, cell_text, clear_cells};

pub const FIXED_COLUMNS: [&str; 5] = ["Pattern", "File", "Filename", "Upload", "Status"];
pub const SESSION_LABEL: &str = "SessionLabel";
/// 1-based column of `Status`.
pub const STATUS_COLUMN: u32 = 5;
/// The status of a row that was uploaded and verified.
pub const SUCCESS: &str = "success";
/// xnatuploader's status for rows left when the user stopped the run.
pub const INTERRUPTED: &str = "Upload interrupted by user";

/// One row of the Files worksheet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileRow {
    /// 1-based worksheet row (0 for rows not yet written).
    pub sheet_row: u32,
    /// Label of the pattern set that matched, empty when none did.
    pub pattern: String,
    pub file: String,
    pub filename: String,
    pub upload: bool,
    /// The Upload cell as written, when it is neither `Y` nor `N`.
    pub upload_unclear: Option<String>,
    pub status: String,
    /// Other columns by header; empty cells are absent.
    pub values: BTreeMap<String, String>,
}

impl FileRow {
    pub fn value(&self, column: &str) -> Option<&str> {
        self.values
            .get(column)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn is_success(&self) -> bool {
        self.status.trim() == SUCCESS
    }
}

/// Column headers for a configuration, without duplicates.
pub fn headers(config: &Config) -> Vec<String> {
    let mut headers: Vec<String> = FIXED_COLUMNS.iter().map(|s| s.to_string()).collect();
    let mut push = |name: String| {
        if !headers.contains(&name) {
            headers.push(name);
        }
    };
    for mapping in &config.mappings {
        push(mapping.key.clone());
    }
    push(SESSION_LABEL.to_owned());
    for column in SHEET_COLUMNS {
        push(column.to_string());
    }
    for capture in config.capture_names() {
        push(capture);
    }
    headers
}

/// Replaces the content of the Files worksheet (created if missing; the
/// sheet's own formatting is kept) with `rows`.
pub fn write_rows(
    workbook: &mut Workbook,
    headers: &[String],
    rows: &mut [FileRow],
) -> Result<(), Error> {
    let sheet = workbook.sheet_or_new(FILES_SHEET)?;
    clear_cells(sheet);
    if sheet.column_dimension("B").is_none() {
        sheet.column_dimension_mut("B").set_width(50.0);
    }
    for (col, header) in (1u32..).zip(headers) {
        sheet.cell_mut((col, 1)).set_value_string(header.as_str());
    }
    for (row_number, row) in (2u32..).zip(rows.iter_mut()) {
        row.sheet_row = row_number;
        let fixed = [
            row.pattern.as_str(),
            row.file.as_str(),
            row.filename.as_str(),
            if row.upload { "Y" } else { "N" },
            row.status.as_str(),
        ];
        for (col, value) in (1u32..).zip(fixed) {
            if !value.is_empty() {
                sheet.cell_mut((col, row_number)).set_value_string(value);
            }
        }
        for (col, header) in (1u32..).zip(headers).skip(FIXED_COLUMNS.len()) {
            let Some(value) = row.value(header) else {
                continue;
            };
            let cell = sheet.cell_mut((col, row_number));
            // xnatuploader writes the series number as a number (pydicom's IS);
            // everything else stays text so IDs like 0001 keep their zeros.
            match (header.as_str(), value.parse::<i64>()) {
                ("DICOM:SeriesNumber", Ok(n)) => {
                    cell.set_value_number(n as f64);
                }
                _ => {
                    cell.set_value_string(value);
                }
            }
        }
    }
    Ok(())
}

/// Reads the Files worksheet. Columns are found by header; a header this
/// configuration would not produce is an error (the sheet was edited into
/// something neither tool can read reliably).
pub fn read_rows(
    workbook: &Workbook,
    config: &Config,
) -> Result<(Vec<String>, Vec<FileRow>), Error> {
    let sheet = workbook.require_sheet(
        FILES_SHEET,
        "run `xnatkit upload scan --spreadsheet FILE --dir DIR` first",
    )?;
    read_sheet(sheet, config)
}

fn read_sheet(sheet: &Worksheet, config: &Config) -> Result<(Vec<String>, Vec<FileRow>), Error> {
    let (max_col, max_row) = sheet.highest_column_and_row();
    let mut found: Vec<String> = (1..=max_col).map(|c| cell_text(sheet, c, 1)).collect();
    while found.last().is_some_and(String::is_empty) {
        found.pop();
    }
    for (index, fixed) in FIXED_COLUMNS.iter().enumerate() {
        if found.get(index).map(String::as_str) != Some(*fixed) {
            return Err(Error::FilesSheet(format!(
                "column {} must be headed '{fixed}' (found '{}'); the first five columns are {}",
                index + 1,
                found.get(index).map(String::as_str).unwrap_or(""),
                FIXED_COLUMNS.join(", ")
            )));
        }
    }
    let known = headers(config);
    for (index, header) in found.iter().enumerate().skip(FIXED_COLUMNS.len()) {
        if header.is_empty() {
            return Err(Error::FilesSheet(format!(
                "column {} has no header; every column needs one",
                index + 1
            )));
        }
        if !known.contains(header) {
            return Err(Error::FilesSheet(format!(
                "unknown column '{header}' (column {}); columns come from the Configuration worksheet: remove it, or add it there and rescan",
                index + 1
            )));
        }
    }
    let mut rows = Vec::new();
    for row_number in 2..=max_row {
        let text = |col: u32| cell_text(sheet, col, row_number);
        let file = text(2);
        let mut values = BTreeMap::new();
        for (col, header) in (1u32..).zip(&found).skip(FIXED_COLUMNS.len()) {
            let value = text(col);
            if !value.is_empty() {
                values.insert(header.clone(), value);
            }
        }
        if file.is_empty() && values.is_empty() && text(1).is_empty() {
            continue;
        }
        rows.push(FileRow {
            sheet_row: row_number,
            pattern: text(1),
            file,
            filename: text(3),
            upload: text(4).eq_ignore_ascii_case("Y"),
            upload_unclear: Some(text(4)).filter(|t| {
                !(t.is_empty() || t.eq_ignore_ascii_case("Y") || t.eq_ignore_ascii_case("N"))
            }),
            status: text(STATUS_COLUMN),
            values,
        });
    }
    Ok((found, rows))
}

/// Writes `status` into the Status cell of worksheet row `sheet_row`.
pub fn set_status(workbook: &mut Workbook, sheet_row: u32, status: &str) -> Result<(), Error> {
    let sheet = workbook.sheet_or_new(FILES_SHEET)?;
    sheet
        .cell_mut((STATUS_COLUMN, sheet_row))
        .set_value_string(status);
    Ok(())
}
