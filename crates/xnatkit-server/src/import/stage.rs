//! From a spooled upload to staged instance files. Archives (zip, tar,
//! tar.gz, sniffed by content because client file names and content types
//! lie) are extracted by `xnatkit-fileio` with its entry-name checks and limits;
//! anything else is taken as a single instance.

use std::path::{Path, PathBuf};

use xnatkit_fileio::ExtractLimits;

use crate::archive::Error;

/// One file to read as DICOM.
#[derive(Debug, Clone)]
pub struct StagedFile {
    pub path: PathBuf,
    /// What the user knows it as: the entry name inside the upload, or
    /// `upload` for a single-file body. Used in every message about it.
    pub name: String,
}

/// The files of one upload, and whether it was an archive.
#[derive(Debug)]
pub struct Staged {
    pub files: Vec<StagedFile>,
    pub from_archive: bool,
}

/// Name given in messages to a body that is not an archive.
pub const SINGLE_FILE_NAME: &str = "upload";

/// Unpacks `spooled` below `stage_dir` (which must not exist yet). Blocking:
/// run it on the blocking pool. Errors never mention the server's paths.
pub fn unpack(spooled: &Path, stage_dir: &Path, limits: &ExtractLimits) -> Result<Staged, Error> {
    let hide_paths = |err: xnatkit_fileio::Error| {
        let api = Error::from(err);
        let clean = |msg: &str| {
            msg.replace(&spooled.display().to_string(), "the upload")
                .replace(&format!("{}/", stage_dir.display()), "")
        };
        match api {
            Error::Invalid(m) => Error::Invalid(clean(&m)),
            Error::TooLarge(m) => Error::TooLarge(clean(&m)),
            other => other,
        }
    };
    match xnatkit_fileio::sniff_file(spooled).map_err(hide_paths)? {
        Some(kind) => {
            let extracted = xnatkit_fileio::extract_archive(spooled, kind, stage_dir, limits)
                .map_err(hide_paths)?;
            let mut files: Vec<StagedFile> = extracted
                .into_iter()
                .map(|file| StagedFile {
                    path: stage_dir.join(&file.rel_path),
                    name: file.rel_path.to_string_lossy().replace('\\', "/"),
                })
                .collect();
            files.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(Staged {
                files,
                from_archive: true,
            })
        }
        None => {
            std::fs::create_dir_all(stage_dir)
                .map_err(|e| Error::Internal(format!("creating {}: {e}", stage_dir.display())))?;
            let path = stage_dir.join(SINGLE_FILE_NAME);
            std::fs::rename(spooled, &path)
                .map_err(|e| Error::Internal(format!("staging {}: {e}", spooled.display())))?;
            Ok(Staged {
                files: vec![StagedFile {
                    path,
                    name: SINGLE_FILE_NAME.to_owned(),
                }],
                from_archive: false,
            })
        }
    }
}
