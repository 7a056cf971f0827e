//! Extraction of uploaded zip / tar / tar.gz archives with path validation,
//! size limits and all-or-nothing semantics.
//!
//! Every regular file is first written completely (fsynced) under a hidden
//! temp name next to its destination; only after the whole archive was read
//! without error are the temp files renamed into place. A failure at any
//! point removes the temp files, the files this call created and the
//! directories it created.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::atomic::{StagedFile, parent_dir, remove_quietly, sync_dir};
use crate::{ArchiveKind, AtomicFile, Error, StoredFile, safe_relative_path};

/// Limits applied while extracting, against the bytes actually written (an
/// entry's header claims are only used to refuse early).
#[derive(Debug, Clone)]
pub struct ExtractLimits {
    /// Sum of the sizes of all extracted files.
    pub max_total_bytes: u64,
    /// Number of entries of any type (files, directories, links, ...).
    pub max_entries: u64,
    /// Maximum uncompressed/compressed ratio: per entry for zip, for the
    /// whole archive for tar.gz (its entries are not compressed one by one).
    pub max_ratio: u64,
}

impl Default for ExtractLimits {
    /// 64 GiB, a million entries, ratio 1000 (deflate itself tops out near
    /// 1032:1, so only all-zero data or a crafted bomb gets there).
    fn default() -> Self {
        Self {
            max_total_bytes: 64 << 30,
            max_entries: 1_000_000,
            max_ratio: 1000,
        }
    }
}

/// One file written by [`extract_archive`].
#[derive(Debug, Clone)]
pub struct ExtractedFile {
    /// Normalised path relative to the destination directory.
    pub rel_path: PathBuf,
    /// Size and MD5 of what was written.
    pub stored: StoredFile,
}

/// Extracts every regular file of `archive` below `dest_dir`.
///
/// Entry names are checked with [`safe_relative_path`]; an unsafe name fails
/// the whole extraction with [`Error::UnsafePath`] naming it. Directories,
/// symlinks, hard links and device/FIFO entries are skipped (directories
/// are created as needed for files). A name that occurs twice keeps the
/// later content, as `unzip`/`tar` would. Files already present in
/// `dest_dir` under an entry's name are replaced. On error nothing of this
/// call remains: no temp files, no new files, no new directories.
///
/// Blocking: call it from `tokio::task::spawn_blocking` in async code.
pub fn extract_archive(
    archive: &Path,
    kind: ArchiveKind,
    dest_dir: &Path,
    limits: &ExtractLimits,
) -> Result<Vec<ExtractedFile>, Error> {
    let mut run = Extraction::new(archive, dest_dir, limits);
    let read = match kind {
        ArchiveKind::Zip => run.read_zip(),
        ArchiveKind::Tar => run.read_tar(false),
        ArchiveKind::TarGz => run.read_tar(true),
    };
    match read.and_then(|()| run.move_into_place()) {
        Ok(files) => Ok(files),
        Err(e) => {
            run.roll_back();
            Err(e)
        }
    }
}

/// [`extract_archive`] after sniffing the format; fails with
/// [`Error::NotAnArchive`] for anything else.
pub fn extract_any_archive(
    archive: &Path,
    dest_dir: &Path,
    limits: &ExtractLimits,
) -> Result<Vec<ExtractedFile>, Error> {
    let kind = crate::sniff_file(archive)?.ok_or_else(|| Error::NotAnArchive {
        path: archive.to_path_buf(),
    })?;
    extract_archive(archive, kind, dest_dir, limits)
}

/// Copy buffer for entry data.
const COPY_BUFFER_BYTES: usize = 64 * 1024;

/// The most an entry may expand to, before the total budget is applied.
struct EntryCap {
    max_bytes: u64,
    compressed: u64,
}

struct Extraction<'a> {
    archive: &'a Path,
    dest_dir: &'a Path,
    limits: &'a ExtractLimits,
    entries_seen: u64,
    bytes_written: u64,
    staged: Vec<StagedFile>,
    staged_index: HashMap<PathBuf, usize>,
    /// Directories created by this call, parents before children.
    created_dirs: Vec<PathBuf>,
    /// Files renamed into place that did not exist before this call.
    created_files: Vec<PathBuf>,
    dest_dir_ready: bool,
}

impl<'a> Extraction<'a> {
    fn new(archive: &'a Path, dest_dir: &'a Path, limits: &'a ExtractLimits) -> Self {
        Self {
            archive,
            dest_dir,
            limits,
            entries_seen: 0,
            bytes_written: 0,
            staged: Vec::new(),
            staged_index: HashMap::new(),
            created_dirs: Vec::new(),
            created_files: Vec::new(),
            dest_dir_ready: false,
        }
    }

    fn read_zip(&mut self) -> Result<(), Error> {
        let archive = self.archive;
        let zip_error = |entry: Option<String>, source| Error::Zip {
            archive: archive.to_path_buf(),
            entry,
            source,
        };
        let file = File::open(archive).map_err(|e| Error::io(archive, e))?;
        let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| zip_error(None, e))?;
        if zip.len() as u64 > self.limits.max_entries {
            return Err(self.too_many_entries());
        }
        for index in 0..zip.len() {
            self.count_entry()?;
            let name_hint = zip
                .name_for_index(index)
                .and_then(Result::ok)
                .map(|n| n.into_owned());
            let mut entry = zip
                .by_index(index)
                .map_err(|e| zip_error(name_hint.clone(), e))?;
            if !is_regular_zip_file(&entry) {
                continue;
            }
            let name = entry
                .name()
                .map_err(|e| zip_error(name_hint, e))?
                .into_owned();
            let compressed = entry.compressed_size();
            let cap = EntryCap {
                max_bytes: compressed.max(1).saturating_mul(self.limits.max_ratio),
                compressed,
            };
            // Refuse on the header's claim before writing anything; the
            // copy loop still checks the real byte count.
            if entry.size() > cap.max_bytes {
                return Err(self.bomb(&name, &cap));
            }
            if entry.size() > self.remaining_budget() {
                return Err(self.over_total());
            }
            self.add_file(&name, &mut entry, &cap, |e| Error::Zip {
                archive: archive.to_path_buf(),
                entry: Some(name.clone()),
                source: zip::result::ZipError::Io(e),
            })?;
        }
        Ok(())
    }

    fn read_tar(&mut self, gzipped: bool) -> Result<(), Error> {
        let archive_path = self.archive;
        let tar_error = |entry: Option<String>, source| Error::Tar {
            archive: archive_path.to_path_buf(),
            entry,
            source,
        };
        let file = File::open(archive_path).map_err(|e| Error::io(archive_path, e))?;
        let compressed_len = file
            .metadata()
            .map_err(|e| Error::io(archive_path, e))?
            .len();
        let reader: Box<dyn Read> = if gzipped {
            // Multi-member: pigz and `cat a.gz b.gz` produce several members.
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
        } else {
            Box::new(BufReader::new(file))
        };
        let cap = EntryCap {
            max_bytes: if gzipped {
                compressed_len.max(1).saturating_mul(self.limits.max_ratio)
            } else {
                u64::MAX
            },
            compressed: compressed_len,
        };
        let mut tar = tar::Archive::new(reader);
        let entries = tar.entries().map_err(|e| tar_error(None, e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| tar_error(None, e))?;
            self.count_entry()?;
            let entry_type = entry.header().entry_type();
            let is_file = entry_type.is_file() || entry_type.is_gnu_sparse();
            if !is_file {
                continue;
            }
            // Checked only for files: skipped entries never touch the disk.
            let name = match String::from_utf8(entry.path_bytes().into_owned()) {
                Ok(name) => name,
                Err(e) => {
                    return Err(Error::UnsafePath {
                        name: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                        reason: "the name is not valid UTF-8",
                    });
                }
            };
            if name.ends_with('/') {
                continue;
            }
            if entry.size() > self.remaining_budget() {
                return Err(self.over_total());
            }
            // For tar.gz the ratio applies to the running total of the whole
            // archive, so the cap left for this entry shrinks as we go.
            let entry_cap = EntryCap {
                max_bytes: cap.max_bytes.saturating_sub(self.bytes_written),
                compressed: cap.compressed,
            };
            self.add_file(&name, &mut entry, &entry_cap, |e| {
                tar_error(Some(name.clone()), e)
            })?;
        }
        Ok(())
    }

    fn add_file(
        &mut self,
        name: &str,
        data: &mut dyn Read,
        cap: &EntryCap,
        read_error: impl Fn(io::Error) -> Error,
    ) -> Result<(), Error> {
        let rel_path = safe_relative_path(name)?;
        let dest = self.dest_dir.join(&rel_path);
        self.create_parent_dirs(&rel_path)?;
        let mut file = AtomicFile::create(&dest, None)?;
        let mut buf = vec![0u8; COPY_BUFFER_BYTES];
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(e)),
            };
            let entry_total = file.written() + n as u64;
            if entry_total > cap.max_bytes {
                return Err(self.bomb(name, cap));
            }
            if entry_total > self.remaining_budget() {
                return Err(self.over_total());
            }
            file.write_all(&buf[..n])?;
        }
        let staged = file.stage()?;
        self.bytes_written += staged.stored.size;
        match self.staged_index.get(&rel_path) {
            Some(&i) => {
                self.bytes_written -= self.staged[i].stored.size;
                // Replacing drops the earlier temp file.
                self.staged[i] = staged;
            }
            None => {
                self.staged_index.insert(rel_path, self.staged.len());
                self.staged.push(staged);
            }
        }
        Ok(())
    }

    /// Creates the directories between `dest_dir` and the file, remembering
    /// the new ones. Refuses to go through a symlink: a link already inside
    /// the destination could point anywhere.
    fn create_parent_dirs(&mut self, rel_path: &Path) -> Result<(), Error> {
        if !self.dest_dir_ready {
            self.create_dest_dir()?;
        }
        let Some(rel_parent) = rel_path.parent() else {
            return Ok(());
        };
        let mut dir = self.dest_dir.to_path_buf();
        for component in rel_parent.components() {
            dir.push(component);
            match fs::symlink_metadata(&dir) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(Error::io(
                        &dir,
                        io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            "exists and is not a directory; an archive entry needs \
                             it as one",
                        ),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                    self.created_dirs.push(dir.clone());
                }
                Err(e) => return Err(Error::io(&dir, e)),
            }
        }
        Ok(())
    }

    /// Creates `dest_dir` and any missing ancestors, recording them so a
    /// failed extraction into a new directory leaves no empty directory.
    fn create_dest_dir(&mut self) -> Result<(), Error> {
        let mut missing = Vec::new();
        let mut dir = self.dest_dir;
        loop {
            match fs::symlink_metadata(dir) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    missing.push(dir.to_path_buf());
                    match dir.parent() {
                        Some(parent) if !parent.as_os_str().is_empty() => dir = parent,
                        _ => break,
                    }
                }
                Err(e) => return Err(Error::io(dir, e)),
            }
        }
        for dir in missing.into_iter().rev() {
            fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
            self.created_dirs.push(dir);
        }
        self.dest_dir_ready = true;
        Ok(())
    }

    fn move_into_place(&mut self) -> Result<Vec<ExtractedFile>, Error> {
        let mut extracted = Vec::with_capacity(self.staged.len());
        let mut dirs = BTreeSet::new();
        let mut rel_by_index: Vec<(usize, PathBuf)> =
            self.staged_index.drain().map(|(rel, i)| (i, rel)).collect();
        rel_by_index.sort_unstable_by_key(|(i, _)| *i);
        let staged = std::mem::take(&mut self.staged);
        for ((_, rel_path), file) in rel_by_index.into_iter().zip(staged) {
            let existed = fs::symlink_metadata(&file.dest).is_ok();
            let dest = file.dest.clone();
            let stored = file.stored.clone();
            file.persist()?;
            if !existed {
                self.created_files.push(dest.clone());
            }
            dirs.insert(parent_dir(&dest).to_path_buf());
            extracted.push(ExtractedFile { rel_path, stored });
        }
        for dir in &dirs {
            sync_dir(dir)?;
        }
        if !self.created_dirs.is_empty() {
            sync_dir(self.dest_dir)?;
        }
        Ok(extracted)
    }

    fn roll_back(&mut self) {
        // Dropping staged files removes their temp files.
        self.staged.clear();
        for file in self.created_files.drain(..) {
            remove_quietly(&file);
        }
        for dir in self.created_dirs.drain(..).rev() {
            // Best effort: only empty directories go, which is all we made.
            let _ = fs::remove_dir(&dir);
        }
    }

    fn count_entry(&mut self) -> Result<(), Error> {
        self.entries_seen += 1;
        if self.entries_seen > self.limits.max_entries {
            return Err(self.too_many_entries());
        }
        Ok(())
    }

    fn remaining_budget(&self) -> u64 {
        self.limits
            .max_total_bytes
            .saturating_sub(self.bytes_written)
    }

    fn too_many_entries(&self) -> Error {
        Error::TooLarge {
            what: "number of entries in archive".to_owned(),
            path: self.archive.to_path_buf(),
            limit: self.limits.max_entries,
        }
    }

    fn over_total(&self) -> Error {
        Error::TooLarge {
            what: "extracted size of archive".to_owned(),
            path: self.archive.to_path_buf(),
            limit: self.limits.max_total_bytes,
        }
    }

    fn bomb(&self, name: &str, cap: &EntryCap) -> Error {
        Error::ArchiveBomb {
            archive: self.archive.to_path_buf(),
            entry: name.to_owned(),
            compressed: cap.compressed,
            max_ratio: self.limits.max_ratio,
        }
    }
}

/// Regular files only: zip marks directories by a trailing slash and
/// symlinks, FIFOs and devices through the Unix mode bits.
fn is_regular_zip_file<R: Read>(entry: &zip::read::ZipFile<'_, R>) -> bool {
    const FILE_TYPE_MASK: u32 = 0o170_000;
    const REGULAR_FILE: u32 = 0o100_000;
    if entry.is_dir() || entry.is_symlink() {
        return false;
    }
    match entry.unix_mode() {
        Some(mode) if mode & FILE_TYPE_MASK != 0 => mode & FILE_TYPE_MASK == REGULAR_FILE,
        _ => true,
    }
}
