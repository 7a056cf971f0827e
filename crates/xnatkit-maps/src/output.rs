//! No partial output: every file of a run goes to a temporary name in its
//! folder (xnatkit-fileio's `AtomicFile`) and is fsynced and renamed into
//! place only when all of them were made, so an error leaves no partial
//! output and a rerun replaces the files whole. [`Outputs`] builds the files
//! in memory first (small runs); [`Staged`] writes each file to its
//! temporary name as soon as it is made (a map run makes its images a
//! slice at a time and holds none of them whole).

use std::io::Write;
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
        let mut staged = Staged::new(out_dir);
        for (name, bytes) in &self.files {
            staged.add(name, bytes)?;
        }
        staged.commit()
    }
}

/// Files of one run written under temporary names, renamed on
/// [`Staged::commit`]; dropped before that, the temporary files are removed.
#[derive(Debug)]
pub struct Staged {
    out_dir: PathBuf,
    files: Vec<(String, AtomicFile)>,
}

impl Staged {
    pub fn new(out_dir: &Path) -> Self {
        Self {
            out_dir: out_dir.to_owned(),
            files: Vec::new(),
        }
    }

    /// Names of the files so far (relative to the output folder), in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|(n, _)| n.as_str())
    }

    /// A file made by `write` (which may write in pieces).
    pub fn write_with(
        &mut self,
        name: impl Into<String>,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<(), Error> {
        let name = name.into();
        let dest = self.out_dir.join(&name);
        let mut file = AtomicFile::create(&dest, None).map_err(|source| Error::Write {
            path: dest.clone(),
            source,
        })?;
        write(&mut file).map_err(|e| Error::Write {
            path: dest.clone(),
            source: fileio_error(&dest, e),
        })?;
        // The file stays open until commit; its buffer need not.
        file.release_buffer().map_err(|source| Error::Write {
            path: dest.clone(),
            source,
        })?;
        self.files.push((name, file));
        Ok(())
    }

    pub fn add(&mut self, name: impl Into<String>, bytes: &[u8]) -> Result<(), Error> {
        self.write_with(name, |w| w.write_all(bytes))
    }

    /// Fsyncs and renames every file into place; returns the paths.
    pub fn commit(self) -> Result<Vec<PathBuf>, Error> {
        let mut written = Vec::with_capacity(self.files.len());
        for (name, file) in self.files {
            let dest = self.out_dir.join(&name);
            file.commit().map_err(|source| Error::Write {
                path: dest.clone(),
                source,
            })?;
            written.push(dest);
        }
        Ok(written)
    }
}

/// The file-writing error behind an `io::Error` from [`AtomicFile`]'s
/// `Write` (it wraps its own errors), or the I/O error itself.
fn fileio_error(path: &Path, e: std::io::Error) -> xnatkit_fileio::Error {
    let io = |source| xnatkit_fileio::Error::Io {
        path: path.to_owned(),
        source,
    };
    if !e
        .get_ref()
        .is_some_and(|inner| inner.is::<xnatkit_fileio::Error>())
    {
        return io(e);
    }
    let kind = e.kind();
    match e
        .into_inner()
        .map(|inner| inner.downcast::<xnatkit_fileio::Error>())
    {
        Some(Ok(own)) => *own,
        Some(Err(other)) => io(std::io::Error::new(kind, other)),
        None => io(std::io::Error::from(kind)),
    }
}
