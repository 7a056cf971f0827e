//! All-or-nothing file writes with inline MD5.
//!
//! Not `tempfile::NamedTempFile`: it creates files with mode 0600 (archive
//! files must be readable like any other file the server writes), and we
//! want the `.<name>.part-<random>` naming so leftovers of a killed process
//! are recognisable and never collide with real file names.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::Error;

/// Write buffer size: big enough to keep syscalls rare for small writes
/// (`io::copy` hands out 8 KiB), small enough not to matter per file.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Facts about a stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Size in bytes.
    pub size: u64,
    /// MD5 digest, lower-case hex (what XNAT catalogs carry).
    pub md5_hex: String,
}

/// Writes bytes to `dest` atomically.
///
/// Data goes to a hidden temp file in the same directory
/// (`.<name>.part-<random>`; parent directories are created), hashed with MD5
/// while written, limited to `max_bytes`. [`AtomicFile::commit`] fsyncs the
/// file, renames it over `dest` and fsyncs the directory. On any error, or
/// when dropped before `commit`, the temp file is removed and `dest` is left
/// untouched.
#[derive(Debug)]
pub struct AtomicFile {
    dest: PathBuf,
    temp_path: PathBuf,
    state: TempState,
    hasher: Md5,
    written: u64,
    max_bytes: Option<u64>,
}

/// Where the temp file is in its life; Drop removes it unless `Gone`.
#[derive(Debug)]
enum TempState {
    Open(BufWriter<File>),
    /// Flushed, fsynced and closed, still under the temp name.
    Sealed,
    /// Removed after a failure, or renamed to `dest`.
    Gone,
}

impl AtomicFile {
    /// Starts writing `dest`; `max_bytes` of `None` means unlimited.
    pub fn create(dest: &Path, max_bytes: Option<u64>) -> Result<Self, Error> {
        let name = dest.file_name().ok_or_else(|| {
            Error::io(
                dest,
                io::Error::new(io::ErrorKind::InvalidInput, "destination has no file name"),
            )
        })?;
        let dir = parent_dir(dest);
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let (temp_path, file) = create_unique_temp(dir, &name.to_string_lossy())?;
        Ok(Self {
            dest: dest.to_path_buf(),
            temp_path,
            state: TempState::Open(BufWriter::with_capacity(WRITE_BUFFER_BYTES, file)),
            hasher: Md5::new(),
            written: 0,
            max_bytes,
        })
    }

    /// The final path this file will have after [`AtomicFile::commit`].
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends `buf`. Exceeding `max_bytes` removes the temp file and fails
    /// with [`Error::TooLarge`]; so does any I/O error (with [`Error::Io`]).
    pub fn write_all(&mut self, buf: &[u8]) -> Result<(), Error> {
        let TempState::Open(file) = &mut self.state else {
            return Err(self.no_longer_writable());
        };
        let new_total = self.written.saturating_add(buf.len() as u64);
        if let Some(limit) = self.max_bytes
            && new_total > limit
        {
            self.discard();
            return Err(Error::TooLarge {
                what: "file".to_owned(),
                path: self.dest.clone(),
                limit,
            });
        }
        if let Err(e) = file.write_all(buf) {
            self.discard();
            return Err(Error::io(&self.temp_path, e));
        }
        self.hasher.update(buf);
        self.written = new_total;
        Ok(())
    }

    /// Writes out the buffered bytes and frees the write buffer; later
    /// writes go straight to the temp file. For callers that keep many
    /// finished files open until they commit them together (a map's
    /// dozens of outputs held 64 KiB each).
    pub fn release_buffer(&mut self) -> Result<(), Error> {
        let TempState::Open(writer) = std::mem::replace(&mut self.state, TempState::Sealed) else {
            return Err(self.no_longer_writable());
        };
        match writer.into_inner() {
            Ok(file) => {
                self.state = TempState::Open(BufWriter::with_capacity(0, file));
                Ok(())
            }
            Err(e) => {
                let e = e.into_error();
                self.discard();
                Err(Error::io(&self.temp_path, e))
            }
        }
    }

    /// Makes the file durable under its final name and returns its size and
    /// MD5. An existing file at `dest` is replaced.
    pub fn commit(mut self) -> Result<StoredFile, Error> {
        let stored = self.seal()?;
        rename_into_place(&self.temp_path, &self.dest)?;
        self.state = TempState::Gone;
        sync_dir(parent_dir(&self.dest))?;
        Ok(stored)
    }

    /// Flushes, fsyncs and closes the temp file but keeps it under its temp
    /// name. Extraction uses this so that no entry appears under its real
    /// name before the whole archive was read successfully.
    pub(crate) fn stage(mut self) -> Result<StagedFile, Error> {
        let stored = self.seal()?;
        self.state = TempState::Gone;
        Ok(StagedFile {
            temp_path: std::mem::take(&mut self.temp_path),
            dest: std::mem::take(&mut self.dest),
            stored,
            pending: true,
        })
    }

    /// Flush + fsync + close, returning size and digest. On failure the temp
    /// file is removed.
    fn seal(&mut self) -> Result<StoredFile, Error> {
        let TempState::Open(writer) = std::mem::replace(&mut self.state, TempState::Sealed) else {
            return Err(self.no_longer_writable());
        };
        let synced = writer
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
            .and_then(|file| file.sync_all());
        if let Err(e) = synced {
            self.discard();
            return Err(Error::io(&self.temp_path, e));
        }
        let digest = std::mem::take(&mut self.hasher).finalize();
        Ok(StoredFile {
            size: self.written,
            md5_hex: hex::encode(digest),
        })
    }

    fn discard(&mut self) {
        if !matches!(self.state, TempState::Gone) {
            // Close before removing (matters on Windows only).
            self.state = TempState::Gone;
            remove_quietly(&self.temp_path);
        }
    }

    fn no_longer_writable(&self) -> Error {
        Error::io(
            &self.dest,
            io::Error::other("an earlier write to this file failed; start the file again"),
        )
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        self.discard();
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        AtomicFile::write_all(self, buf)?;
        Ok(buf.len())
    }

    /// Data only becomes visible on `commit`, so there is nothing useful to
    /// flush early; the buffered bytes are flushed and fsynced there.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A complete, fsynced temp file waiting to be renamed to `dest`. Dropped
/// without [`StagedFile::persist`], it removes the temp file.
#[derive(Debug)]
pub(crate) struct StagedFile {
    temp_path: PathBuf,
    pub(crate) dest: PathBuf,
    pub(crate) stored: StoredFile,
    pending: bool,
}

impl StagedFile {
    /// Renames the temp file to its destination. The caller fsyncs the
    /// directories once all files are in place.
    pub(crate) fn persist(mut self) -> Result<(), Error> {
        rename_into_place(&self.temp_path, &self.dest)?;
        self.pending = false;
        Ok(())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if self.pending {
            remove_quietly(&self.temp_path);
        }
    }
}

/// MD5 and size of a file on disk, read in 64 KiB chunks.
pub fn md5_file(path: &Path) -> Result<StoredFile, Error> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; WRITE_BUFFER_BYTES];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e)),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok(StoredFile {
        size,
        md5_hex: hex::encode(hasher.finalize()),
    })
}

pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Bytes of the destination name kept in the temp name, so that a 255-byte
/// name plus the `.` and `.part-<16 hex>` decoration still fits NAME_MAX.
const TEMP_NAME_STEM_BYTES: usize = 200;

fn create_unique_temp(dir: &Path, name: &str) -> Result<(PathBuf, File), Error> {
    let mut stem_end = name.len().min(TEMP_NAME_STEM_BYTES);
    while !name.is_char_boundary(stem_end) {
        stem_end -= 1;
    }
    let name = &name[..stem_end];
    // A few attempts are plenty: 64 random bits collide only by accident of
    // a leftover file with exactly the same suffix.
    let mut last_err = None;
    for _ in 0..4 {
        let temp_path = dir.join(format!(".{name}.part-{:016x}", rand::random::<u64>()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
        {
            Ok(file) => return Ok((temp_path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                last_err = Some(e);
            }
            Err(e) => return Err(Error::io(&temp_path, e)),
        }
    }
    Err(Error::io(
        dir,
        last_err.unwrap_or_else(|| io::Error::other("no unique temp name")),
    ))
}

fn rename_into_place(temp_path: &Path, dest: &Path) -> Result<(), Error> {
    fs::rename(temp_path, dest).map_err(|e| Error::io(dest, e))
}

/// Makes a rename durable: without this a crash can lose the new directory
/// entry even though the file data was fsynced.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

pub(crate) fn remove_quietly(path: &Path) {
    // Best effort during cleanup: the original error is what the caller
    // needs to see, and a vanished file is the desired end state anyway.
    let _ = fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_after_releasing_the_buffer_land_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        let mut file = AtomicFile::create(&dest, None).unwrap();
        file.write_all(b"head ").unwrap();
        file.release_buffer().unwrap();
        file.write_all(b"tail").unwrap();
        let stored = file.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"head tail");
        assert_eq!(stored.size, 9);
        assert_eq!(stored.md5_hex, hex::encode(Md5::digest(b"head tail")));
    }

    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn commit_writes_file_with_md5_and_creates_parents() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a/b/file.txt");
        let mut file = AtomicFile::create(&dest, None).unwrap();
        file.write_all(b"hello ").unwrap();
        file.write_all(b"world").unwrap();
        let stored = file.commit().unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"hello world");
        assert_eq!(stored.size, 11);
        assert_eq!(stored.md5_hex, "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(names_in(&dir.path().join("a/b")), ["file.txt"]);
        assert_eq!(md5_file(&dest).unwrap(), stored);
    }

    #[test]
    fn temp_file_is_hidden_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.dcm");
        let mut file = AtomicFile::create(&dest, None).unwrap();
        file.write_all(b"x").unwrap();
        let names = names_in(dir.path());
        assert_eq!(names.len(), 1);
        assert!(names[0].starts_with(".f.dcm.part-"), "{names:?}");
        assert!(!dest.exists());
        file.commit().unwrap();
        assert_eq!(names_in(dir.path()), ["f.dcm"]);
    }

    #[test]
    fn drop_without_commit_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        let mut file = AtomicFile::create(&dest, None).unwrap();
        file.write_all(&[7u8; 100_000]).unwrap();
        drop(file);
        assert!(names_in(dir.path()).is_empty());
    }

    #[test]
    fn commit_replaces_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        fs::write(&dest, b"old content that is longer").unwrap();
        let mut file = AtomicFile::create(&dest, None).unwrap();
        file.write_all(b"new").unwrap();
        // Until commit, readers still see the old file.
        assert_eq!(fs::read(&dest).unwrap(), b"old content that is longer");
        file.commit().unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        assert_eq!(names_in(dir.path()), ["f"]);
    }

    #[test]
    fn size_limit_stops_and_removes_temp() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        fs::write(&dest, b"keep me").unwrap();
        let mut file = AtomicFile::create(&dest, Some(10)).unwrap();
        file.write_all(b"12345").unwrap();
        file.write_all(b"67890").unwrap();
        let err = file.write_all(b"1").unwrap_err();
        assert!(matches!(err, Error::TooLarge { limit: 10, .. }), "{err}");
        assert!(err.to_string().contains("limit of 10"), "{err}");
        // The temp is gone even while the AtomicFile still exists.
        assert_eq!(names_in(dir.path()), ["f"]);
        assert!(file.write_all(b"x").is_err());
        assert!(file.commit().is_err());
        assert_eq!(fs::read(&dest).unwrap(), b"keep me");
    }

    #[test]
    fn works_with_io_copy() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("copy");
        let data = vec![42u8; 300_000];
        let mut file = AtomicFile::create(&dest, None).unwrap();
        io::copy(&mut &data[..], &mut file).unwrap();
        assert_eq!(file.commit().unwrap().size, 300_000);
        assert_eq!(fs::read(&dest).unwrap(), data);

        let mut limited = AtomicFile::create(&dest, Some(1000)).unwrap();
        let err = io::copy(&mut &data[..], &mut limited).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
    }

    #[test]
    fn longest_allowed_name_still_gets_a_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let name = "é".repeat(127) + "x";
        assert_eq!(name.len(), 255);
        let dest = dir.path().join(&name);
        let mut file = AtomicFile::create(&dest, None).unwrap();
        file.write_all(b"data").unwrap();
        file.commit().unwrap();
        assert_eq!(names_in(dir.path()), [name]);
    }

    #[test]
    fn empty_file_has_md5_of_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("empty");
        let stored = AtomicFile::create(&dest, Some(0))
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(stored.size, 0);
        assert_eq!(stored.md5_hex, "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = md5_file(&missing).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        // A file where a directory is needed.
        fs::write(dir.path().join("plain"), b"").unwrap();
        let err = AtomicFile::create(&dir.path().join("plain/x"), None).unwrap_err();
        assert!(err.to_string().contains("plain"), "{err}");
    }
}
