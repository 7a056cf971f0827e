//! Errors of this crate. Each message names the thing at fault and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read workbook {path}: {detail}")]
    WorkbookRead { path: PathBuf, detail: String },

    #[error("cannot save workbook {path}: {detail}")]
    WorkbookWrite { path: PathBuf, detail: String },

    #[error(
        "workbook {path} cannot be written ({detail}); close it in Excel or make it writable, then rerun"
    )]
    WorkbookLocked { path: PathBuf, detail: String },

    #[error(
        "workbook {path} already exists; pass --force to replace it, or choose another --spreadsheet name"
    )]
    WorkbookExists { path: PathBuf },

    #[error("workbook {path} has no worksheet named '{sheet}'; {hint}")]
    MissingSheet {
        path: PathBuf,
        sheet: String,
        hint: &'static str,
    },

    #[error("Configuration worksheet: {0}")]
    Config(String),

    #[error("Configuration worksheet, pattern set '{label}', pattern '{pattern}': {detail}")]
    Pattern {
        label: String,
        pattern: String,
        detail: String,
    },

    #[error("Files worksheet: {0}")]
    FilesSheet(String),

    #[error("cannot read directory {path}: {detail}")]
    Directory { path: PathBuf, detail: String },

    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
