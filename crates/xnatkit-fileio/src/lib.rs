//! `xnatkit-fileio`: safe, streaming file and archive I/O shared by the archive
//! server, the DICOM importer and the client.
//!
//! It owns four things:
//! - **name validation** for client-supplied paths: [`SafeRelPath`], the
//!   one type through which a client-derived name may reach the disk (built
//!   only by validation, turned into a path only by joining it onto a
//!   root), and [`safe_relative_path`] for plain relative `PathBuf`s;
//! - **atomic writes** that hash MD5 on the way and never leave a
//!   half-written file under the final name ([`AtomicFile`],
//!   [`write_stream_atomic`], plus [`md5_file`]);
//! - **extraction** of uploaded zip / tar / tar.gz archives with entry-name
//!   checks, size/count/ratio limits and all-or-nothing semantics
//!   ([`extract_archive`], [`sniff_archive_kind`]);
//! - **streamed archive output** (zip, tar.gz) with flat memory use for
//!   download responses ([`zip_stream`], [`tar_gz_stream`]).
//!
//! Everything here is blocking except [`write_stream_atomic`] and the
//! streams; call the blocking functions from `spawn_blocking` in async code.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use xnatkit_fileio::{AtomicFile, safe_relative_path};
//!
//! let root = tempfile::tempdir()?;
//! // Client-supplied names are checked before they touch the disk.
//! assert!(safe_relative_path("../../etc/passwd").is_err());
//! let rel = safe_relative_path("scan 1//./image.dcm")?;
//!
//! let mut file = AtomicFile::create(&root.path().join(&rel), Some(1 << 20))?;
//! file.write_all(b"DICM")?;
//! let stored = file.commit()?; // visible under its name only now
//! assert_eq!(stored.size, 4);
//! assert_eq!(stored.md5_hex, "b6011a01a799bdd230f6ff2716fda6f5");
//! # Ok(()) }
//! ```
//!
//! A download handler hands a stream straight to the HTTP body, e.g.
//! `axum::body::Body::from_stream(xnatkit_fileio::zip_stream(entries))`.

mod atomic;
mod error;
mod extract;
mod path;
mod sniff;
mod stream;
mod upload;

pub use atomic::{AtomicFile, StoredFile, md5_file};
pub use error::Error;
pub use extract::{ExtractLimits, ExtractedFile, extract_any_archive, extract_archive};
pub use path::{MAX_COMPONENT_BYTES, MAX_PATH_BYTES, SafeRelPath, safe_relative_path};
pub use sniff::{ArchiveKind, SNIFF_LEN, sniff_archive_kind, sniff_file};
pub use stream::{
    ArchiveEntry, ByteStream, CHUNK_BYTES, CHUNKS_IN_FLIGHT, ZipCompression, file_range_stream,
    tar_gz_stream, tar_stream, zip_stream, zip_stream_with,
};
pub use upload::write_stream_atomic;
