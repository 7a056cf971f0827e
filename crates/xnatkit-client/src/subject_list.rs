//! Reading the subject list of an export: a CSV or a spreadsheet (xlsx, xls,
//! ods) with one subject label per row.
//!
//! The subject column is found by its header (`subject`, `Subject label`,
//! `PatientID`, `Patientnummer`, …) or named with `--column` (header text,
//! column letter or 1-based number). Numbers typed into Excel cells arrive
//! as floats (`125586.0`) and become the label `125586`. Blank rows are
//! skipped; a cell that cannot be a label is reported with its row number.

use std::path::Path;

use calamine::{Data, Reader};
use xnatkit_model::Label;

/// Why a subject list cannot be used. Row numbers are 1-based, as a
/// spreadsheet program shows them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    #[error("cannot read subject list {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error(
        "subject list {path}: unsupported file type; use .csv, .tsv, .txt, .xlsx, .xlsm, .xls or .ods"
    )]
    UnsupportedType { path: String },
    #[error("subject list {path} contains no subject labels")]
    Empty { path: String },
    #[error(
        "subject list {path}: no subject column among the headers [{headers}]; name it with --column"
    )]
    NoSubjectColumn { path: String, headers: String },
    #[error("subject list {path}: column {column:?} not found; headers are [{headers}]")]
    ColumnNotFound {
        path: String,
        column: String,
        headers: String,
    },
    #[error("subject list {path}, row {row}: {reason}")]
    BadCell {
        path: String,
        row: usize,
        reason: String,
    },
}

/// One subject of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedSubject {
    pub label: String,
    /// 1-based row in the sheet or file.
    pub row: usize,
}

/// Header names (lower case, spaces/underscores/dashes removed) recognised
/// as the subject column, best first.
const SUBJECT_HEADERS: &[&str] = &[
    "subject",
    "subjectlabel",
    "subjectid",
    "subjects",
    "patientid",
    "patientnumber",
    "patientnummer",
    "patientnummers",
    "patient",
    "participant",
    "participantid",
    "label",
    "id",
];

fn normalise_header(h: &str) -> String {
    h.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// A cell as read from any source.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Empty,
    Text(String),
    Number(f64),
    Other(String),
}

impl Cell {
    fn is_empty(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Text(t) => t.trim().is_empty(),
            _ => false,
        }
    }

    fn header_text(&self) -> String {
        match self {
            Self::Text(t) => t.trim().to_owned(),
            Self::Number(n) => n.to_string(),
            Self::Other(o) => o.clone(),
            Self::Empty => String::new(),
        }
    }

    /// The label this cell holds, or why it holds none.
    fn to_label(&self) -> Result<String, String> {
        let text = match self {
            Self::Empty => return Err("empty cell".into()),
            Self::Number(n) => {
                if n.fract() != 0.0 || !n.is_finite() {
                    return Err(format!(
                        "{n} is not a subject label (labels are whole numbers or text)"
                    ));
                }
                format!("{n:.0}")
            }
            Self::Text(t) => {
                let t = t.trim();
                // A CSV exported from Excel can carry `125586.0`.
                match t.strip_suffix(".0") {
                    Some(int) if !int.is_empty() && int.chars().all(|c| c.is_ascii_digit()) => {
                        int.to_owned()
                    }
                    _ => t.to_owned(),
                }
            }
            Self::Other(o) => return Err(format!("{o} is not a subject label")),
        };
        Label::parse(&text)
            .map(Label::into_string)
            .map_err(|e| match e {
                xnatkit_model::LabelError::InvalidChar { found: ' ', .. } => format!(
                    "subject label {text:?} contains a space; XNAT labels use only letters, digits, '_' and '-'"
                ),
                other => other.to_string(),
            })
    }
}

/// Reads the subject list at `path`. `column` is the `--column` option.
pub fn read_subject_list(
    path: &Path,
    column: Option<&str>,
) -> Result<Vec<ListedSubject>, ListError> {
    let display = path.display().to_string();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rows = match ext.as_str() {
        "csv" | "tsv" | "txt" => read_csv(path)?,
        "xlsx" | "xlsm" | "xlsb" | "xls" | "ods" => read_sheet(path)?,
        _ => return Err(ListError::UnsupportedType { path: display }),
    };
    subjects_from_rows(&display, &rows, column)
}

fn read_csv(path: &Path) -> Result<Vec<Vec<Cell>>, ListError> {
    let unreadable = |reason: String| ListError::Unreadable {
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| unreadable("not UTF-8 text; save it as CSV UTF-8".into()))?;
    let text = text.trim_start_matches('\u{feff}');
    let first = text.lines().next().unwrap_or_default();
    // Excel writes `;` in locales with a decimal comma; tabs for .tsv.
    let delimiter = [b'\t', b';', b',']
        .into_iter()
        .max_by_key(|d| first.bytes().filter(|b| b == d).count())
        .filter(|d| first.as_bytes().contains(d))
        .unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| ListError::BadCell {
            path: path.display().to_string(),
            row: i + 1,
            reason: e.to_string(),
        })?;
        rows.push(
            record
                .iter()
                .map(|f| {
                    if f.trim().is_empty() {
                        Cell::Empty
                    } else {
                        Cell::Text(f.to_owned())
                    }
                })
                .collect(),
        );
    }
    Ok(rows)
}

fn read_sheet(path: &Path) -> Result<Vec<Vec<Cell>>, ListError> {
    let unreadable = |reason: String| ListError::Unreadable {
        path: path.display().to_string(),
        reason,
    };
    let mut workbook = calamine::open_workbook_auto(path).map_err(|e| unreadable(e.to_string()))?;
    let sheet = workbook
        .sheet_names()
        .first()
        .cloned()
        .ok_or_else(|| unreadable("the workbook has no sheets".into()))?;
    let range = workbook
        .worksheet_range(&sheet)
        .map_err(|e| unreadable(format!("sheet {sheet:?}: {e}")))?;
    // Row numbers must match what the user sees, so pad the rows above the
    // used range.
    let (first_row, first_col) = range.start().unwrap_or((0, 0));
    let mut rows: Vec<Vec<Cell>> = (0..first_row).map(|_| Vec::new()).collect();
    for row in range.rows() {
        let mut cells: Vec<Cell> = (0..first_col).map(|_| Cell::Empty).collect();
        cells.extend(row.iter().map(|d| match d {
            Data::Empty => Cell::Empty,
            Data::String(s) => Cell::Text(s.clone()),
            Data::Float(f) => Cell::Number(*f),
            #[allow(clippy::cast_precision_loss)]
            Data::Int(i) => Cell::Number(*i as f64),
            Data::Bool(b) => Cell::Other(format!("the boolean {b}")),
            Data::DateTime(d) => Cell::Other(format!("a date ({d})")),
            Data::DateTimeIso(d) => Cell::Other(format!("a date ({d})")),
            Data::DurationIso(d) => Cell::Other(format!("a duration ({d})")),
            Data::Error(e) => Cell::Other(format!("a formula error ({e})")),
        }));
        rows.push(cells);
    }
    Ok(rows)
}

/// Column letters (`A`, `AB`) to a 0-based index.
fn column_letters(text: &str) -> Option<usize> {
    if text.is_empty() || text.len() > 3 || !text.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let mut n = 0usize;
    for c in text.to_ascii_uppercase().bytes() {
        n = n * 26 + usize::from(c - b'A' + 1);
    }
    Some(n - 1)
}

fn subjects_from_rows(
    path: &str,
    rows: &[Vec<Cell>],
    column: Option<&str>,
) -> Result<Vec<ListedSubject>, ListError> {
    let Some(header_idx) = rows.iter().position(|r| r.iter().any(|c| !c.is_empty())) else {
        return Err(ListError::Empty { path: path.into() });
    };
    let header = &rows[header_idx];
    let headers_text = || {
        header
            .iter()
            .map(Cell::header_text)
            .filter(|h| !h.is_empty())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let by_name = |want: &str| {
        header
            .iter()
            .position(|c| normalise_header(&c.header_text()) == normalise_header(want))
    };
    let (col, data_start) = match column {
        Some(wanted) => {
            if let Some(i) = by_name(wanted) {
                (i, header_idx + 1)
            } else if let Ok(n) = wanted.parse::<usize>()
                && n >= 1
            {
                (n - 1, first_data_row(rows, header_idx, n - 1))
            } else if let Some(i) = column_letters(wanted) {
                (i, first_data_row(rows, header_idx, i))
            } else {
                return Err(ListError::ColumnNotFound {
                    path: path.into(),
                    column: wanted.into(),
                    headers: headers_text(),
                });
            }
        }
        None => {
            let found = SUBJECT_HEADERS.iter().find_map(|want| {
                header
                    .iter()
                    .position(|c| normalise_header(&c.header_text()) == *want)
            });
            match found {
                Some(i) => (i, header_idx + 1),
                None => {
                    let used: Vec<usize> = (0..header.len())
                        .filter(|i| {
                            rows.iter()
                                .any(|r| r.get(*i).is_some_and(|c| !c.is_empty()))
                        })
                        .collect();
                    if used.len() != 1 {
                        return Err(ListError::NoSubjectColumn {
                            path: path.into(),
                            headers: headers_text(),
                        });
                    }
                    (used[0], first_data_row(rows, header_idx, used[0]))
                }
            }
        }
    };
    let mut subjects: Vec<ListedSubject> = Vec::new();
    for (i, row) in rows.iter().enumerate().skip(data_start) {
        let Some(cell) = row.get(col).filter(|c| !c.is_empty()) else {
            continue;
        };
        let label = cell.to_label().map_err(|reason| ListError::BadCell {
            path: path.into(),
            row: i + 1,
            reason,
        })?;
        if subjects.iter().any(|s| s.label == label) {
            tracing::warn!(row = i + 1, %label, "subject listed twice; exporting it once");
            continue;
        }
        subjects.push(ListedSubject { label, row: i + 1 });
    }
    if subjects.is_empty() {
        return Err(ListError::Empty { path: path.into() });
    }
    Ok(subjects)
}

/// Without a recognised header, the first row is a header when it is all
/// text above rows that hold numbers (in any column), or when its cell in
/// the subject column cannot be a label; otherwise it is data (a bare list
/// of labels).
fn first_data_row(rows: &[Vec<Cell>], header_idx: usize, col: usize) -> usize {
    let numeric = |c: &Cell| match c {
        Cell::Number(_) => true,
        Cell::Text(t) => {
            let t = t.trim();
            !t.is_empty() && t.chars().all(|ch| ch.is_ascii_digit() || ch == '.')
        }
        _ => false,
    };
    let first = &rows[header_idx];
    let all_text = first
        .iter()
        .filter(|c| !c.is_empty())
        .all(|c| matches!(c, Cell::Text(_)) && !numeric(c));
    let numbers_below = rows
        .iter()
        .skip(header_idx + 1)
        .any(|r| r.iter().any(numeric));
    let unusable = match first.get(col) {
        Some(Cell::Text(t)) => Label::parse(t.trim()).is_err(),
        _ => false,
    };
    if (all_text && numbers_below) || unusable {
        header_idx + 1
    } else {
        header_idx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(v: &[ListedSubject]) -> Vec<&str> {
        v.iter().map(|s| s.label.as_str()).collect()
    }

    #[test]
    fn xlsx_numbers_become_labels_and_blank_rows_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Patientnummers.xlsx");
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.write_string(0, 0, "Patientnummer").unwrap();
        sheet.write_string(0, 1, "note").unwrap();
        sheet.write_number(1, 0, 125_586.0).unwrap();
        sheet.write_string(3, 0, "339193").unwrap();
        sheet.write_string(4, 0, "SUBJ_7").unwrap();
        book.save(&path).unwrap();
        let got = read_subject_list(&path, None).unwrap();
        assert_eq!(labels(&got), ["125586", "339193", "SUBJ_7"]);
        assert_eq!(got[1].row, 4);
    }

    #[test]
    fn headerless_numeric_column_and_column_option() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.csv");
        std::fs::write(&path, "125586\n339193.0\n\n370941\n").unwrap();
        assert_eq!(
            labels(&read_subject_list(&path, None).unwrap()),
            ["125586", "339193", "370941"]
        );
        std::fs::write(&path, "a;Who\n1;S1\n2;S2\n").unwrap();
        assert_eq!(
            labels(&read_subject_list(&path, Some("who")).unwrap()),
            ["S1", "S2"]
        );
        assert_eq!(
            labels(&read_subject_list(&path, Some("B")).unwrap()),
            ["S1", "S2"]
        );
        assert!(matches!(
            read_subject_list(&path, Some("zzz_nope")),
            Err(ListError::ColumnNotFound { .. })
        ));
    }

    #[test]
    fn bad_input_is_reported_with_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.csv");
        std::fs::write(&path, "subject\nS1\nbad label\n").unwrap();
        let err = read_subject_list(&path, None).unwrap_err().to_string();
        assert!(err.contains("row 3") && err.contains("space"), "{err}");
        std::fs::write(&path, "subject\n\n").unwrap();
        assert!(matches!(
            read_subject_list(&path, None),
            Err(ListError::Empty { .. })
        ));
        std::fs::write(&path, "").unwrap();
        assert!(matches!(
            read_subject_list(&path, None),
            Err(ListError::Empty { .. })
        ));
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        assert!(matches!(
            read_subject_list(&path, None),
            Err(ListError::NoSubjectColumn { .. })
        ));
        let other = dir.path().join("l.pdf");
        std::fs::write(&other, "x").unwrap();
        assert!(read_subject_list(&other, None).is_err());
    }
}
