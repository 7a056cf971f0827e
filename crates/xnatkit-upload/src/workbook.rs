//! Opening, checking and saving the workbook.
//!
//! Saving never touches the original until the new content is complete:
//! it is written to a temporary file next to it, synced, and renamed over it.
//! umya's own `write` renames too but does not sync, and uses a fixed temp name.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use umya_spreadsheet::{Workbook as Book, Worksheet};

use crate::error::Error;

/// Name of the worksheet with the configuration (as xnatuploader).
pub const CONFIGURATION_SHEET: &str = "Configuration";
/// Name of the worksheet with one row per file (as xnatuploader).
pub const FILES_SHEET: &str = "Files";

/// An xlsx workbook loaded in memory, with the path it came from.
pub struct Workbook {
    path: PathBuf,
    book: Book,
}

impl Workbook {
    /// Reads the workbook at `path`.
    pub fn open(path: &Path) -> Result<Self, Error> {
        if !path.is_file() {
            return Err(Error::WorkbookRead {
                path: path.to_owned(),
                detail: "no such file; create it with `xnatkit upload init --spreadsheet FILE`"
                    .to_owned(),
            });
        }
        let book = umya_spreadsheet::reader::xlsx::read(path).map_err(|e| Error::WorkbookRead {
            path: path.to_owned(),
            detail: format!("{e}; is it an .xlsx workbook?"),
        })?;
        Ok(Self {
            path: path.to_owned(),
            book,
        })
    }

    /// Wraps a new in-memory workbook that will be saved at `path`.
    pub fn from_book(path: &Path, book: Book) -> Self {
        Self {
            path: path.to_owned(),
            book,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn sheet(&self, name: &str) -> Option<&Worksheet> {
        self.book.sheet_by_name(name).ok()
    }

    /// The named sheet, or a clear error with a hint about what to run.
    pub fn require_sheet(&self, name: &str, hint: &'static str) -> Result<&Worksheet, Error> {
        self.sheet(name).ok_or_else(|| Error::MissingSheet {
            path: self.path.clone(),
            sheet: name.to_owned(),
            hint,
        })
    }

    pub fn sheet_mut(&mut self, name: &str) -> Option<&mut Worksheet> {
        self.book.sheet_by_name_mut(name).ok()
    }

    /// The named sheet, created at the end of the workbook when missing.
    pub fn sheet_or_new(&mut self, name: &str) -> Result<&mut Worksheet, Error> {
        if self.book.sheet_by_name(name).is_err() {
            self.book
                .new_sheet(name)
                .map_err(|e| Error::WorkbookWrite {
                    path: self.path.clone(),
                    detail: format!("cannot add worksheet '{name}': {e}"),
                })?;
        }
        self.book
            .sheet_by_name_mut(name)
            .map_err(|e| Error::WorkbookWrite {
                path: self.path.clone(),
                detail: format!("worksheet '{name}': {e}"),
            })
    }

    /// Fails early, before any work, when the workbook cannot be replaced:
    /// read-only file, or a directory that does not allow the temp file.
    pub fn check_writable(&self) -> Result<(), Error> {
        check_writable(&self.path)
    }

    /// Saves atomically: temp file in the same directory, fsync, rename.
    pub fn save(&self) -> Result<(), Error> {
        let fail = |detail: String| Error::WorkbookWrite {
            path: self.path.clone(),
            detail,
        };
        let temp = temp_path(&self.path);
        let result = (|| -> Result<(), Error> {
            let file = File::create(&temp).map_err(|e| fail(format!("{}: {e}", temp.display())))?;
            let mut writer = BufWriter::new(file);
            umya_spreadsheet::writer::xlsx::write_writer(&self.book, &mut writer)
                .map_err(|e| fail(e.to_string()))?;
            writer.flush().map_err(|e| fail(e.to_string()))?;
            let file = writer.into_inner().map_err(|e| fail(e.to_string()))?;
            file.sync_all().map_err(|e| fail(e.to_string()))?;
            std::fs::rename(&temp, &self.path).map_err(|e| fail(e.to_string()))?;
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        } else if let Some(dir) = self.path.parent() {
            // The rename is durable only once the directory entry is synced.
            if let Ok(dir) = File::open(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            }) {
                let _ = dir.sync_all();
            }
        }
        result
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "workbook.xlsx".to_owned());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// See [`Workbook::check_writable`].
pub fn check_writable(path: &Path) -> Result<(), Error> {
    let locked = |detail: String| Error::WorkbookLocked {
        path: path.to_owned(),
        detail,
    };
    // Excel keeps a `~$name` owner file next to a workbook it has open.
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
        let owner = dir.join(format!("~${}", name.to_string_lossy()));
        if owner.exists() {
            return Err(locked(format!(
                "it is open in Excel ({} exists)",
                owner.display()
            )));
        }
    }
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| locked(e.to_string()))?;
    let temp = temp_path(path);
    File::create(&temp).map_err(|e| locked(format!("cannot create {}: {e}", temp.display())))?;
    let _ = std::fs::remove_file(&temp);
    Ok(())
}

/// Text of a cell (`""` when empty); numbers as Excel shows them (`4`, not `4.0`).
pub fn cell_text(sheet: &Worksheet, col: u32, row: u32) -> String {
    sheet
        .cell((col, row))
        .map(|c| c.value().trim().to_owned())
        .unwrap_or_default()
}

/// Removes every cell of a sheet, keeping the sheet and its column formats.
pub fn clear_cells(sheet: &mut Worksheet) {
    let coordinates: Vec<(u32, u32)> = sheet
        .cells()
        .iter()
        .map(|c| (c.coordinate().col_num(), c.coordinate().row_num()))
        .collect();
    for coordinate in coordinates {
        sheet.remove_cell(coordinate);
    }
}
