//! Putting files into the archive so that a file and its row change
//! together or not at all, across failures and `kill -9`: the file side of
//! the journal protocol written down in [`crate::store::journal`].
//!
//! A [`MoveBatch`] collects the files of one operation — moved from a
//! source (staging, prearchive) with [`MoveBatch::add_move`], or already
//! written fresh under [`MoveBatch::temp_for`] with [`MoveBatch::add_fresh`].
//! [`MoveBatch::stage`] journals the moves as pending and moves the bytes
//! under their hidden in-flight names; the caller then commits its rows in
//! one transaction together with [`MoveBatch::commit_record`]; after that
//! [`MoveBatch::finish`] renames the files into place. [`MoveBatch::abort`]
//! undoes a batch whose rows were not committed. A per-batch lock is not
//! needed here: callers serialise writers of the same final names (the
//! session lock of imports, the resource commit lock of uploads).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::archive::Error;
use crate::crash;
use crate::store::{FileMove, JournalCommit, Store};

/// Marker in the names of in-flight files: `.{name}.xnk-{op}`. Recovery
/// removes any file carrying it that the journal does not explain.
pub const IN_FLIGHT_MARKER: &str = ".xnk-";

/// Bytes of the final name kept in the in-flight name (NAME_MAX is 255).
const TEMP_NAME_STEM_BYTES: usize = 200;

#[derive(Debug)]
struct Planned {
    /// `None` for bytes written fresh under `temp`.
    source: Option<PathBuf>,
    temp: PathBuf,
    dest: PathBuf,
    /// Size and MD5 when the writer already computed them.
    known: Option<(i64, String)>,
}

/// The files of one operation on their way into the archive.
#[derive(Debug)]
pub struct MoveBatch {
    op: String,
    data_dir: PathBuf,
    files: Vec<Planned>,
    /// Sources moved under their in-flight names so far (for abort).
    moved: usize,
}

/// Size and MD5 of a file as it will be under its final name.
pub type Digests = HashMap<PathBuf, (i64, String)>;

impl MoveBatch {
    /// A new batch below `data_dir` (paths are journaled relative to it).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            op: uuid::Uuid::new_v4().simple().to_string(),
            data_dir: data_dir.to_path_buf(),
            files: Vec::new(),
            moved: 0,
        }
    }

    /// The hidden in-flight name of `dest` in this batch (same folder, so the
    /// final step is a rename).
    pub fn temp_for(&self, dest: &Path) -> PathBuf {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut end = name.len().min(TEMP_NAME_STEM_BYTES);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let temp = format!(".{}{IN_FLIGHT_MARKER}{}", &name[..end], self.op);
        dest.with_file_name(temp)
    }

    /// Moves `source` to `dest` (a rename: everything lives on the data
    /// directory's file system). `known` is the source's size and MD5 when
    /// the writer computed them; otherwise [`MoveBatch::stage`] reads them.
    pub fn add_move(&mut self, source: PathBuf, dest: PathBuf, known: Option<(i64, String)>) {
        let temp = self.temp_for(&dest);
        self.files.push(Planned {
            source: Some(source),
            temp,
            dest,
            known,
        });
    }

    /// Bytes already written and fsynced at `temp_for(&dest)`, with their
    /// size and MD5.
    pub fn add_fresh(&mut self, dest: PathBuf, size: i64, md5: String) {
        let temp = self.temp_for(&dest);
        self.files.push(Planned {
            source: None,
            temp,
            dest,
            known: Some((size, md5)),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    fn rel(&self, path: &Path) -> String {
        path.strip_prefix(&self.data_dir)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }

    fn journal_entry(&self, file: &Planned) -> FileMove {
        FileMove {
            source: file
                .source
                .as_deref()
                .map(|s| self.rel(s))
                .unwrap_or_default(),
            temp: self.rel(&file.temp),
            dest: self.rel(&file.dest),
        }
    }

    /// Journals the moves as pending, then moves every source under its
    /// in-flight name and digests it there. On failure everything moved so
    /// far goes back and the journal entries are dropped.
    pub async fn stage(&mut self, store: &Store) -> Result<Digests, Error> {
        let pending: Vec<FileMove> = self
            .files
            .iter()
            .filter(|f| f.source.is_some())
            .map(|f| self.journal_entry(f))
            .collect();
        if !pending.is_empty() {
            store.journal_pending(&self.op, &pending).await?;
        }
        let plan: Vec<StageStep> = self
            .files
            .iter()
            .map(|f| (f.source.clone(), f.temp.clone(), f.known.clone()))
            .collect();
        if plan
            .iter()
            .all(|(source, _, known)| source.is_none() && known.is_some())
        {
            // Only fresh files with known digests: nothing to move or read.
            return Ok(self
                .files
                .iter()
                .filter_map(|f| f.known.clone().map(|d| (f.dest.clone(), d)))
                .collect());
        }
        let outcome = tokio::task::spawn_blocking(move || stage_blocking(&plan))
            .await
            .map_err(|e| Error::Internal(format!("archive file mover failed: {e}")))?;
        match outcome {
            Ok(digests) => {
                self.moved = self.files.len();
                crash::point("files.staged");
                Ok(self
                    .files
                    .iter()
                    .zip(digests)
                    .map(|(f, d)| (f.dest.clone(), d))
                    .collect())
            }
            Err((moved, err)) => {
                self.moved = moved;
                self.undo(store).await;
                Err(err)
            }
        }
    }

    /// What the transaction committing the rows must record.
    pub fn commit_record(&self) -> JournalCommit {
        JournalCommit {
            op: self.op.clone(),
            fresh: self
                .files
                .iter()
                .filter(|f| f.source.is_none())
                .map(|f| self.journal_entry(f))
                .collect(),
        }
    }

    /// After the rows were committed: renames every file into place, makes
    /// the renames durable and drops the journal entries. A failure here
    /// leaves the entries for start-up recovery, which completes the renames.
    pub async fn finish(self, store: &Store) -> Result<(), Error> {
        crash::point("files.committed");
        let renames: Vec<(PathBuf, PathBuf)> = self
            .files
            .iter()
            .map(|f| (f.temp.clone(), f.dest.clone()))
            .collect();
        tokio::task::spawn_blocking(move || finish_blocking(&renames))
            .await
            .map_err(|e| Error::Internal(format!("archive file mover failed: {e}")))??;
        crash::point("files.renamed");
        store.journal_forget(&self.op).await?;
        Ok(())
    }

    /// Undoes a batch whose rows were not committed: moved files go back to
    /// their sources, fresh ones are removed, the journal entries dropped.
    pub async fn abort(self, store: &Store) {
        self.undo(store).await;
    }

    async fn undo(&self, store: &Store) {
        let undo: Vec<(Option<PathBuf>, PathBuf)> = self
            .files
            .iter()
            .enumerate()
            .filter(|(i, f)| f.source.is_none() || *i < self.moved)
            .map(|(_, f)| (f.source.clone(), f.temp.clone()))
            .collect();
        let _ = tokio::task::spawn_blocking(move || {
            for (source, temp) in undo {
                roll_back(source.as_deref(), &temp);
            }
        })
        .await;
        if let Err(err) = store.journal_forget(&self.op).await {
            // Recovery rolls the same entries back again, harmlessly.
            tracing::warn!("dropping file-move journal {}: {err}", self.op);
        }
    }
}

/// Moves `temp` back to `source`, or removes it when the bytes were fresh.
/// A missing `temp` means this was done already.
pub fn roll_back(source: Option<&Path>, temp: &Path) {
    let outcome = match source {
        Some(source) => {
            if let Some(parent) = source.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            std::fs::rename(temp, source)
        }
        None => std::fs::remove_file(temp),
    };
    if let Err(err) = outcome
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("rolling back {}: {err}", temp.display());
    }
}

/// Source (if moved), in-flight name, and size + MD5 when known.
type StageStep = (Option<PathBuf>, PathBuf, Option<(i64, String)>);

/// Blocking part of [`MoveBatch::stage`]: on error, how many sources were
/// moved before it.
fn stage_blocking(plan: &[StageStep]) -> Result<Vec<(i64, String)>, (usize, Error)> {
    let mut digests = Vec::with_capacity(plan.len());
    for (done, (source, temp, known)) in plan.iter().enumerate() {
        let step = || -> Result<(i64, String), Error> {
            if let Some(source) = source {
                if let Some(parent) = temp.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        Error::Internal(format!("creating {}: {e}", parent.display()))
                    })?;
                }
                std::fs::rename(source, temp)
                    .map_err(|e| Error::Internal(format!("moving {}: {e}", source.display())))?;
            }
            if let Some(known) = known {
                return Ok(known.clone());
            }
            let stored = xnatkit_fileio::md5_file(temp)
                .map_err(|e| Error::Internal(format!("digesting {}: {e}", temp.display())))?;
            Ok((
                i64::try_from(stored.size).unwrap_or(i64::MAX),
                stored.md5_hex,
            ))
        };
        match step() {
            Ok(digest) => digests.push(digest),
            // The source of the failing step did not move if its rename failed,
            // and moved if digesting failed: count it, roll_back tolerates both.
            Err(err) => return Err((done + usize::from(source.is_some()), err)),
        }
    }
    Ok(digests)
}

fn finish_blocking(renames: &[(PathBuf, PathBuf)]) -> Result<(), Error> {
    let mut dirs = BTreeSet::new();
    for (temp, dest) in renames {
        match std::fs::rename(temp, dest) {
            Ok(()) => {}
            // Already renamed (a retried finish).
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && dest.exists() => {}
            Err(err) => {
                return Err(Error::Internal(format!(
                    "moving {} into place: {err}",
                    dest.display()
                )));
            }
        }
        if let Some(parent) = dest.parent() {
            dirs.insert(parent.to_path_buf());
        }
    }
    for dir in dirs {
        sync_dir(&dir);
    }
    Ok(())
}

/// Makes renames in `dir` durable (best effort: a failure only weakens the
/// guarantee for a power loss, not for a process crash).
pub fn sync_dir(dir: &Path) {
    if let Err(err) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!("syncing {}: {err}", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_names_sit_next_to_the_final_name_and_fit_name_max() {
        let batch = MoveBatch::new(Path::new("/data"));
        let temp = batch.temp_for(Path::new("/data/archive/P/r/sub/a.dcm"));
        assert_eq!(temp.parent(), Some(Path::new("/data/archive/P/r/sub")));
        let name = temp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".a.dcm.xnk-"), "{name}");
        let long = "é".repeat(127);
        let temp = batch.temp_for(&Path::new("/data/x").join(&long));
        assert!(temp.file_name().unwrap().len() <= 255);
    }

    #[test]
    fn roll_back_restores_the_source_or_drops_fresh_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("staging/one");
        let temp = dir.path().join("archive/.one.xnk-1");
        std::fs::create_dir_all(temp.parent().unwrap()).unwrap();
        std::fs::write(&temp, b"bytes").unwrap();
        roll_back(Some(&source), &temp);
        assert_eq!(std::fs::read(&source).unwrap(), b"bytes");
        assert!(!temp.exists());
        // Done already: nothing happens.
        roll_back(Some(&source), &temp);
        assert!(source.exists());
        std::fs::write(&temp, b"fresh").unwrap();
        roll_back(None, &temp);
        assert!(!temp.exists());
    }
}
