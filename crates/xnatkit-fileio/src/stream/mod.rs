//! Streaming zip and tar.gz output with flat memory use, for download
//! responses. The archive writers run on a blocking thread behind the
//! bounded channel of [`channel`]; see there for the memory bound.

mod channel;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use crate::safe_relative_path;
pub use channel::{ByteStream, CHUNK_BYTES, CHUNKS_IN_FLIGHT};
use channel::{ChannelWriter, spawn_producer};

/// Entries this large need zip64 headers; zip must be told before writing.
const ZIP64_THRESHOLD: u64 = 0xFFFF_FFFF;

/// Mode bits given to every archived file: the archive is a download, not a
/// backup, so the owner's permissions on the server do not matter.
const ENTRY_MODE: u32 = 0o644;

/// One file to put into a streamed archive.
#[derive(Debug, Clone)]
pub struct ArchiveEntry {
    /// Path inside the archive, '/'-separated and relative; checked with
    /// [`safe_relative_path`] at stream time.
    pub name: String,
    /// The file on disk to read.
    pub source: PathBuf,
    /// Expected size; used to choose zip64 before the data is read (the
    /// file's current size is used when that is larger).
    pub size: u64,
    /// Modification time for the entry; the file's own mtime when `None`.
    pub modified: Option<SystemTime>,
}

/// How zip entries are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZipCompression {
    /// No compression: DICOM pixel data hardly compresses, and deflating it
    /// costs more CPU than the network time it saves on a LAN. This is what
    /// XNAT sends unless asked otherwise.
    Stored,
    /// Deflate at the given level (1 fastest … 9 smallest).
    Deflated(u8),
    /// Deflate at the fastest level.
    #[default]
    DeflatedFast,
}

/// Streams a zip of `entries` (Deflate, fast level; zip64 where needed).
/// See the module docs for the memory bound. A source file that is missing
/// or unreadable at stream time ends the stream with an `io::Error` naming
/// it. Spawns its producer on the Tokio blocking pool when called inside a
/// runtime, else on a plain thread.
pub fn zip_stream(entries: Vec<ArchiveEntry>) -> ByteStream {
    zip_stream_with(entries, ZipCompression::DeflatedFast)
}

/// [`zip_stream`] with a chosen compression.
pub fn zip_stream_with(entries: Vec<ArchiveEntry>, compression: ZipCompression) -> ByteStream {
    spawn_producer(move |out| write_zip(&entries, compression, out)).0
}

/// Streams `len` bytes of `file` starting at `start`, for a plain file
/// download (with or without an HTTP Range). Reads run on a blocking thread
/// straight into the chunks handed to the consumer, so each byte is copied
/// once on its way to the socket; `tokio::fs::File` would copy it twice.
/// A file that ends before `len` bytes ends the stream with an
/// `UnexpectedEof` error naming `path`, so a response with a promised
/// Content-Length can never look complete when it is not.
pub fn file_range_stream(file: File, start: u64, len: u64, path: PathBuf) -> ByteStream {
    spawn_producer(move |mut out| {
        send_file_range(&file, start, len, &path, &mut out)?;
        Ok(out)
    })
    .0
}

fn send_file_range(
    file: &File,
    start: u64,
    len: u64,
    path: &Path,
    out: &mut ChannelWriter,
) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let mut offset = start;
    let end = start.saturating_add(len);
    while offset < end {
        let want = usize::try_from(end - offset).map_or(CHUNK_BYTES, |n| n.min(CHUNK_BYTES));
        let mut chunk = bytes::BytesMut::zeroed(want);
        let mut filled = 0;
        while filled < want {
            match file.read_at(&mut chunk[filled..], offset + filled as u64) {
                Ok(0) => {
                    return Err(named(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("file ended {} bytes early", end - offset - filled as u64),
                    )));
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(named(e)),
            }
        }
        offset += want as u64;
        out.send_owned(chunk.freeze())?;
    }
    Ok(())
}

/// Streams a gzip-compressed tar of `entries`; same behaviour as
/// [`zip_stream`].
pub fn tar_gz_stream(entries: Vec<ArchiveEntry>) -> ByteStream {
    spawn_producer(move |out| write_tar_gz(&entries, out)).0
}

/// The entries as an uncompressed tar (XNAT's `format=tar`), built on a
/// blocking thread like [`tar_gz_stream`].
pub fn tar_stream(entries: Vec<ArchiveEntry>) -> ByteStream {
    spawn_producer(move |out| write_tar(&entries, out)).0
}

fn write_tar(entries: &[ArchiveEntry], out: ChannelWriter) -> io::Result<ChannelWriter> {
    let abandoned = out.abandon_handle();
    let result = build_tar(entries, out);
    if result.is_err() {
        abandoned.store(true, Ordering::Relaxed);
    }
    result
}

fn write_zip(
    entries: &[ArchiveEntry],
    compression: ZipCompression,
    out: ChannelWriter,
) -> io::Result<ChannelWriter> {
    let abandoned = out.abandon_handle();
    let mut zip = zip::ZipWriter::new_stream(out);
    let added = entries
        .iter()
        .try_for_each(|entry| add_zip_entry(&mut zip, entry, compression));
    if let Err(e) = added {
        abandoned.store(true, Ordering::Relaxed);
        return Err(e);
    }
    match zip.finish() {
        Ok(stream_writer) => Ok(stream_writer.into_inner()),
        Err(e) => {
            abandoned.store(true, Ordering::Relaxed);
            Err(zip_to_io(e))
        }
    }
}

fn add_zip_entry<W: Write>(
    zip: &mut zip::ZipWriter<zip::write::StreamWriter<W>>,
    entry: &ArchiveEntry,
    compression: ZipCompression,
) -> io::Result<()> {
    let name = checked_name(&entry.name)?;
    let (mut file, meta) = open_source(entry)?;
    let size = meta.len().max(entry.size);
    let modified = entry.modified.or_else(|| meta.modified().ok());
    let (method, level) = match compression {
        ZipCompression::Stored => (zip::CompressionMethod::Stored, None),
        ZipCompression::Deflated(level) => (
            zip::CompressionMethod::Deflated,
            Some(i64::from(level.clamp(1, 9))),
        ),
        ZipCompression::DeflatedFast => (zip::CompressionMethod::Deflated, Some(1)),
    };
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(method)
        .compression_level(level)
        .large_file(size >= ZIP64_THRESHOLD)
        .unix_permissions(ENTRY_MODE)
        .last_modified_time(zip_time(modified));
    zip.start_file(name, options).map_err(zip_to_io)?;
    copy_source(&mut file, zip, &entry.source)
}

fn write_tar_gz(entries: &[ArchiveEntry], out: ChannelWriter) -> io::Result<ChannelWriter> {
    let abandoned = out.abandon_handle();
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let result = build_tar(entries, gz).and_then(flate2::write::GzEncoder::finish);
    if result.is_err() {
        abandoned.store(true, Ordering::Relaxed);
    }
    result
}

/// Every entry into a tar written to `out`; returns `out` once the tar's
/// end blocks are written.
fn build_tar<W: Write>(entries: &[ArchiveEntry], out: W) -> io::Result<W> {
    let mut tar = tar::Builder::new(out);
    entries
        .iter()
        .try_for_each(|entry| add_tar_entry(&mut tar, entry))?;
    tar.into_inner()
}

fn add_tar_entry<W: Write>(tar: &mut tar::Builder<W>, entry: &ArchiveEntry) -> io::Result<()> {
    let name = checked_name(&entry.name)?;
    let (file, meta) = open_source(entry)?;
    let modified = entry.modified.or_else(|| meta.modified().ok());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(meta.len());
    header.set_mode(ENTRY_MODE);
    header.set_mtime(unix_seconds(modified));
    // The header promises meta.len() bytes; ExactReader makes a file that
    // changes size meanwhile an error instead of a corrupt archive.
    let data = ExactReader {
        inner: file,
        remaining: meta.len(),
        path: &entry.source,
    };
    tar.append_data(&mut header, name, data)
}

/// The entry name in '/'-form, after the same validation as uploads get:
/// a bad name in our own listing must not produce a dangerous archive.
fn checked_name(name: &str) -> io::Result<String> {
    let path = safe_relative_path(name).map_err(io::Error::from)?;
    let parts: Vec<_> = path.iter().map(|c| c.to_string_lossy()).collect();
    Ok(parts.join("/"))
}

fn open_source(entry: &ArchiveEntry) -> io::Result<(File, std::fs::Metadata)> {
    let named = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!(
                "archive entry {:?}: {}: {e}",
                entry.name,
                entry.source.display()
            ),
        )
    };
    let file = File::open(&entry.source).map_err(named)?;
    let meta = file.metadata().map_err(named)?;
    Ok((file, meta))
}

/// Like `io::copy`, but read errors name the source file, so the consumer
/// sees which file broke the stream.
fn copy_source(source: &mut File, out: &mut impl Write, path: &Path) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display())));
            }
        };
        out.write_all(&buf[..n])?;
    }
}

struct ExactReader<'a> {
    inner: File,
    remaining: u64,
    path: &'a Path,
}

impl Read for ExactReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self
            .inner
            .read(&mut buf[..want])
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} shrank while it was being archived", self.path.display()),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

fn zip_to_io(err: zip::result::ZipError) -> io::Error {
    match err {
        zip::result::ZipError::Io(e) => e,
        other => io::Error::other(other),
    }
}

/// Zip stores local calendar time without zone; we use UTC so archives do
/// not depend on the server's zone. Times before 1980 (zip's epoch) fall
/// back to 1980-01-01.
fn zip_time(modified: Option<SystemTime>) -> zip::DateTime {
    modified
        .map(time::OffsetDateTime::from)
        .map(|t| time::PrimitiveDateTime::new(t.date(), t.time()))
        .and_then(|t| zip::DateTime::try_from(t).ok())
        .unwrap_or_default()
}

fn unix_seconds(modified: Option<SystemTime>) -> u64 {
    modified
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn zip_producer_stops_when_receiver_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("data");
        // Random-ish data so deflate cannot shrink it into a few chunks.
        let data: Vec<u8> = (0..4_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(&source, &data).unwrap();
        let entries = (0..5)
            .map(|i| ArchiveEntry {
                name: format!("f{i}.bin"),
                source: source.clone(),
                size: data.len() as u64,
                modified: None,
            })
            .collect::<Vec<_>>();
        let (mut stream, report) =
            spawn_producer(move |out| write_zip(&entries, ZipCompression::DeflatedFast, out));
        stream.next().await.unwrap().unwrap();
        drop(stream);
        let result = tokio::time::timeout(Duration::from_secs(10), report.result)
            .await
            .expect("zip producer kept running")
            .unwrap();
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        assert!(report.bytes_sent.load(Ordering::Relaxed) < data.len() as u64);
    }

    #[test]
    fn zip_time_handles_old_and_missing_times() {
        assert_eq!(zip_time(None), zip::DateTime::default());
        assert_eq!(
            zip_time(Some(SystemTime::UNIX_EPOCH)),
            zip::DateTime::default()
        );
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let z = zip_time(Some(t));
        assert_eq!((z.year(), z.month(), z.day(), z.hour()), (2023, 11, 14, 22));
    }
}
