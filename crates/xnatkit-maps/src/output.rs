//! A run's outputs are built in memory first and written only when all of
//! them exist: each file goes to a temporary name in its folder, is fsynced
//! and renamed (xnatkit-fileio's `AtomicFile`), so an error in the input
//! leaves no partial output and a rerun replaces the files whole.

use std::path::{Path, PathBuf};

use xnatkit_fileio::AtomicFile;

use crate::Error;

/// Files of one run, by path relative to the output folder.
#[derive(Debug, Default, Clone)]
pub struct Outputs {
    pub files: Vec<(String, Vec<u8>)>,
}

impl Outputs {
    pub fn add(&mut self, name: impl Into<String>, bytes: Vec<u8>) {
        self.files.push((name.into(), bytes));
    }

    /// Writes every file under `out_dir`; returns the paths written.
    pub fn commit(&self, out_dir: &Path) -> Result<Vec<PathBuf>, Error> {
        let mut written = Vec::with_capacity(self.files.len());
        for (name, bytes) in &self.files {
            let dest = out_dir.join(name);
            let write_err = |source| Error::Write {
                path: dest.clone(),
                source,
            };
            let mut file = AtomicFile::create(&dest, None).map_err(write_err)?;
            file.write_all(bytes).map_err(write_err)?;
            file.commit().map_err(write_err)?;
            written.push(dest);
        }
        Ok(written)
    }
}
